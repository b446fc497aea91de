//! One object's YAML editor: a plain text area with its lines numbered by the server (no script: the page is
//! served under a policy that forbids inline script, and a text area needs none), a review that shows what the
//! cluster would change field by field or why it refuses, and the edit applied. The Kubernetes work, as the
//! signed-in user, is [`crate::tenant::edit`]'s.

use askama::Template;
use axum::Form;
use axum::http::StatusCode;
use axum::response::Response;

use super::i18n::Translation;
use super::page_error::PageError;
use super::paths;
use super::reply::{render, see_other};
use super::respond::{PageVisit, Visit};
use super::user_sessions::Session;
use crate::tenant::edit::{self, Change, MAX_YAML_BYTES, Refusal};
use crate::tenant::objects::Kind;

/// Lines the editor numbers beyond the YAML's own, for what the user adds.
const SPARE_LINES: usize = 15;

/// What the editor says above the YAML.
pub enum Outcome {
    /// Nothing yet: the object as it is.
    Blank,
    /// What the cluster would change (a dry run).
    Changes(Vec<ChangeView>),
    /// Why it would not, or did not: a heading, the apiserver's (or the parser's) words, and the fields in conflict.
    Refused {
        /// What kind of refusal, in the visitor's language.
        heading: &'static str,
        /// The detail, verbatim.
        message: String,
        /// Each field in conflict and who manages it.
        conflicts: Vec<(String, String)>,
    },
}

/// One changed field as shown.
pub struct ChangeView {
    /// `changed`, `added` or `removed` (its class).
    pub class: &'static str,
    /// Where.
    pub path: String,
    /// `1 → 3`, or the value added or removed.
    pub value: String,
}

/// The editor.
#[derive(Template)]
#[template(path = "object_edit.html", config = "src/dashboard/askama.toml")]
struct EditPage<'a> {
    text: &'static Translation,
    session: &'a Session,
    kind: &'static str,
    name: &'a str,
    object: String,
    action: String,
    yaml: &'a str,
    rows: usize,
    gutter: String,
    outcome: Outcome,
    may_edit: bool,
}

/// The editor's form.
#[derive(Debug, serde::Deserialize)]
pub struct EditForm {
    /// The object as YAML.
    yaml: String,
    /// `review` or `apply`.
    intent: String,
}

fn change_view(change: Change) -> ChangeView {
    match change {
        Change::Changed { path, before, after } => {
            ChangeView { class: "changed", path, value: format!("{before} → {after}") }
        }
        Change::Added { path, value } => ChangeView { class: "added", path, value },
        Change::Removed { path, value } => ChangeView { class: "removed", path, value },
    }
}

fn refused(text: &'static Translation, refusal: Refusal) -> Outcome {
    let heading = match &refusal {
        Refusal::Invalid(_) => text.edit_invalid,
        Refusal::Conflict { .. } => text.edit_conflict,
        Refusal::Stale(_) => text.edit_stale,
        Refusal::Refused { .. } | Refusal::NoSuchObject => text.edit_refused,
    };
    let conflicts = match &refusal {
        Refusal::Conflict { fields, .. } => fields.clone(),
        _ => Vec::new(),
    };
    Outcome::Refused { heading, message: refusal.to_string(), conflicts }
}

fn editor<'a>(
    text: &'static Translation,
    session: &'a Session,
    (instance_id, kind, name): (&str, Kind, &'a str),
    yaml: &'a str,
    outcome: Outcome,
    may_edit: bool,
) -> EditPage<'a> {
    let rows = yaml.lines().count().max(1) + SPARE_LINES;
    let ids = || (instance_id.to_owned(), kind.as_str().to_owned(), name.to_owned());
    let (instance_id, kind_name, name_owned) = ids();
    let object = paths::Object { instance_id, kind: kind_name, name: name_owned }.to_string();
    let (instance_id, kind_name, name_owned) = ids();
    let action = paths::ObjectEdit { instance_id, kind: kind_name, name: name_owned }.to_string();
    EditPage {
        text,
        session,
        kind: kind.as_str(),
        name,
        object,
        action,
        yaml,
        rows,
        gutter: (1..=rows).map(|line| line.to_string()).collect::<Vec<_>>().join("\n"),
        outcome,
        may_edit,
    }
}

/// GET /instances/:instance_id/objects/:kind/:name/edit — the object as YAML to edit, for an identity Kubernetes
/// lets change it.
pub async fn form(
    paths::ObjectEdit { instance_id, kind, name }: paths::ObjectEdit,
    visit: PageVisit,
) -> Result<Response, PageError> {
    let Visit { session, text, .. } = visit;
    let Some(kind) = Kind::parse(&kind) else { return Err(PageError::NotFound(|text| text.live_no_such_object)) };
    let namespace = &session.tenant.namespace;
    let Some(yaml) = edit::editable_yaml(&session.client, namespace, kind, &name).await? else {
        return Err(PageError::NotFound(|text| text.live_no_such_object));
    };
    if !edit::may_edit(&session.client, namespace, kind, &name).await? {
        return Err(PageError::Forbidden(|text| text.edit_not_allowed));
    }
    let page = editor(text, &session, (&instance_id, kind, &name), &yaml, Outcome::Blank, true);
    Ok(render(StatusCode::OK, &page))
}

/// POST /instances/:instance_id/objects/:kind/:name/edit — the edit reviewed (`intent=review`: a dry run as the
/// user, and what it would change) or applied (`intent=apply`, then back to the object). Whatever Kubernetes
/// refuses is shown with its words and its status, nothing changed.
pub async fn submit(
    paths::ObjectEdit { instance_id, kind, name }: paths::ObjectEdit,
    visit: PageVisit,
    Form(form): Form<EditForm>,
) -> Result<Response, PageError> {
    let Visit { session, text, .. } = visit;
    let Some(kind) = Kind::parse(&kind) else { return Err(PageError::NotFound(|text| text.live_no_such_object)) };
    if form.yaml.len() > MAX_YAML_BYTES {
        return Err(PageError::signed_in(StatusCode::PAYLOAD_TOO_LARGE, |text| text.edit_too_large));
    }
    let (client, namespace, user) = (&session.client, &session.tenant.namespace, &session.tenant.username);
    let outcome = match form.intent.as_str() {
        "review" => edit::review(client, namespace, kind, &name, &form.yaml)
            .await?
            .map(|changes| Outcome::Changes(changes.into_iter().map(change_view).collect())),
        "apply" => match edit::apply_yaml(client, namespace, kind, &name, &form.yaml).await? {
            Ok(()) => {
                tracing::info!(instance_id, user, kind = kind.as_str(), name, "dashboard edit applied");
                let object = paths::Object { instance_id, kind: kind.as_str().to_owned(), name };
                return Ok(see_other(&paths::with_query(object, &[("done", "applied")])));
            }
            Err(refusal) => Err(refusal),
        },
        _ => return Err(PageError::signed_in(StatusCode::BAD_REQUEST, |text| text.form_invalid)),
    };
    let (status, outcome) = match outcome {
        Ok(changes) => (StatusCode::OK, changes),
        Err(Refusal::NoSuchObject) => return Err(PageError::NotFound(|text| text.live_no_such_object)),
        Err(refusal) => {
            tracing::info!(instance_id, user, kind = kind.as_str(), name, intent = form.intent, %refusal, "dashboard edit refused");
            let status = StatusCode::from_u16(refusal.code()).unwrap_or(StatusCode::BAD_REQUEST);
            (status, refused(text, refusal))
        }
    };
    let may_edit = edit::may_edit(client, namespace, kind, &name).await?;
    Ok(render(status, &editor(text, &session, (&instance_id, kind, &name), &form.yaml, outcome, may_edit)))
}

#[cfg(test)]
mod tests {
    use super::super::i18n;
    use super::*;

    #[tokio::test]
    async fn the_editor_numbers_its_lines_labels_its_controls_and_runs_no_script() {
        let session = super::super::user_sessions::test_session("inst-1");
        let yaml = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  note: <script>alert(1)</script>\n";
        let changes = vec![
            change_view(Change::Changed { path: "spec.replicas".into(), before: "1".into(), after: "3".into() }),
            change_view(Change::Added { path: "spec.paused".into(), value: "true".into() }),
        ];
        let page =
            editor(&i18n::KO, &session, ("inst-1", Kind::Services, "web"), yaml, Outcome::Changes(changes), true);
        let html = page.render().expect("renders");
        assert!(html.contains(r#"<form method="post" action="/instances/inst-1/objects/services/web/edit""#), "{html}");
        assert!(html.contains(r#"<label for="yaml">오브젝트의 YAML</label>"#), "{html}");
        assert!(html.contains(r#"rows="20""#) && html.contains("\n19\n20</pre>"), "5 lines and 15 spare: {html}");
        assert!(html.contains(">변경 사항 검토</button>") && html.contains(">적용</button>"), "{html}");
        assert!(html.contains("<code>spec.replicas</code>: 1 → 3"), "{html}");
        assert!(html.contains("&#60;script&#62;") && !html.contains("<script"), "escaped, no script: {html}");
        assert!(!html.contains("style="), "no inline style: {html}");

        let refusal = Refusal::Conflict {
            message: "Apply failed with 1 conflict".into(),
            fields: vec![(".spec.replicas".into(), r#"conflict with "other" using apps/v1"#.into())],
        };
        let page =
            editor(&i18n::EN, &session, ("inst-1", Kind::Services, "web"), yaml, refused(&i18n::EN, refusal), false);
        let html = page.render().expect("renders");
        assert!(
            html.contains(i18n::EN.edit_conflict) && html.contains("<td><code>.spec.replicas</code></td>"),
            "{html}"
        );
        assert!(!html.contains(r#"id="edit-apply""#), "no control for whom Kubernetes refuses: {html}");
    }
}
