//! The workloads pages: every kind the view shows as a table (one section per kind, which the page re-fetches when
//! the live stream says that kind changed), and one object as YAML. Read with the signed-in user's own client.

use askama::Template;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;

use super::assets::{HTMX_PATH, HTMX_SSE_PATH};
use super::i18n::Translation;
use super::page_error::PageError;
use super::paths;
use super::reply::render;
use super::respond::{PageVisit, PartVisit, Visit};
use super::user_sessions::Session;
use crate::tenant::objects::{self, Kind, Row, Section};

/// One kind's section as shown.
pub struct SectionView {
    /// The kind's API resource name (ids, live event names).
    pub kind: &'static str,
    /// Where the section alone is fetched again.
    pub url: String,
    /// The instance whose objects these are.
    pub instance_id: String,
    /// Whether rows link to their logs (pods).
    pub logs: bool,
    /// Whether rows link to the logs of their pods together (workloads).
    pub pod_logs: bool,
    /// Whether running rows link to a terminal (pods, for a user Kubernetes lets exec).
    pub terminal: bool,
    /// Whether the identity may not list this kind.
    pub not_allowed: bool,
    /// The objects.
    pub rows: Vec<Row>,
}

impl SectionView {
    /// Where `row`'s YAML is.
    pub fn object_link(&self, row: &Row) -> String {
        let (instance_id, kind) = (self.instance_id.clone(), self.kind.to_owned());
        paths::Object { instance_id, kind, name: row.name.clone() }.to_string()
    }

    /// Where the logs of `row`'s pods are (a workload's).
    pub fn pod_logs_link(&self, row: &Row) -> String {
        let (instance_id, kind) = (self.instance_id.clone(), self.kind.to_owned());
        paths::ObjectLogs { instance_id, kind, name: row.name.clone() }.to_string()
    }

    /// Where `row`'s logs are (a pod's).
    pub fn logs_link(&self, row: &Row) -> String {
        paths::PodLogs { instance_id: self.instance_id.clone(), pod: row.name.clone() }.to_string()
    }

    /// Where a terminal into `row` opens (a running pod's), if this user may open one.
    pub fn terminal_link(&self, row: &Row) -> Option<String> {
        let pod = row.name.clone();
        (self.terminal && row.status == "Running")
            .then(|| paths::Terminal { instance_id: self.instance_id.clone(), pod }.to_string())
    }
}

/// The workloads page.
#[derive(Template)]
#[template(path = "workloads.html", config = "src/dashboard/askama.toml")]
struct WorkloadsPage<'a> {
    text: &'static Translation,
    session: &'a Session,
    overview: String,
    events: String,
    live: String,
    htmx_path: &'static str,
    htmx_sse_path: &'static str,
    sections: Vec<SectionView>,
    autoscalers: super::apps::AutoscalersFragment,
}

/// One section alone, for the page to swap in.
#[derive(Template)]
#[template(path = "workloads_section.html", config = "src/dashboard/askama.toml")]
struct SectionFragment {
    text: &'static Translation,
    section: SectionView,
}

/// One object as YAML.
#[derive(Template)]
#[template(path = "object_yaml.html", config = "src/dashboard/askama.toml")]
struct ObjectPage<'a> {
    text: &'static Translation,
    session: &'a Session,
    kind: &'static str,
    name: &'a str,
    workloads: String,
    yaml: String,
    /// The editor, when Kubernetes lets the identity change the object.
    edit: Option<String>,
    /// Whether the page follows an edit applied.
    applied: bool,
}

/// What the object's page says after an edit: `?done=applied`.
#[derive(Debug, serde::Deserialize)]
pub struct Shown {
    done: Option<String>,
}

/// Whether the signed-in user may open terminals: asked only for the pods' section, which offers them.
async fn may_exec(session: &Session, kind: Kind) -> Result<bool, crate::lifecycle::Error> {
    if kind != Kind::Pods {
        return Ok(false);
    }
    Ok(crate::tenant::terminal::may_open(&session.client, &session.tenant.namespace).await?)
}

fn section_view(instance_id: &str, kind: Kind, section: Section, terminal: bool) -> SectionView {
    let (not_allowed, rows) = match section {
        Section::Listed(rows) => (false, rows),
        Section::NotAllowed => (true, Vec::new()),
    };
    let instance_id = instance_id.to_owned();
    SectionView {
        kind: kind.as_str(),
        url: paths::WorkloadsSection { instance_id: instance_id.clone(), kind: kind.as_str().to_owned() }.to_string(),
        instance_id,
        logs: kind == Kind::Pods,
        pod_logs: crate::tenant::workload_pods::has_pods(kind),
        terminal: terminal && kind == Kind::Pods,
        not_allowed,
        rows,
    }
}

/// GET /instances/:instance_id/workloads — every kind, read as the signed-in user.
pub async fn page(_: paths::Workloads, visit: PageVisit) -> Result<Response, PageError> {
    let Visit { session, instance_id, text, .. } = visit;
    let (sections, autoscalers, terminal) = tokio::join!(
        objects::read_all(&session.client, &session.tenant.namespace),
        super::apps::autoscalers_fragment(text, &session),
        may_exec(&session, Kind::Pods),
    );
    let terminal = terminal?;
    let sections = sections?.into_iter().map(|(kind, section)| section_view(&instance_id, kind, section, terminal));
    Ok(render(StatusCode::OK, &workloads_page(text, &session, sections.collect(), autoscalers?)))
}

fn workloads_page<'a>(
    text: &'static Translation,
    session: &'a Session,
    sections: Vec<SectionView>,
    autoscalers: super::apps::AutoscalersFragment,
) -> WorkloadsPage<'a> {
    let instance_id = || session.tenant.instance_id.clone();
    WorkloadsPage {
        text,
        session,
        live: paths::Live { instance_id: instance_id() }.to_string(),
        overview: paths::Overview { instance_id: instance_id() }.to_string(),
        events: paths::Events { instance_id: instance_id() }.to_string(),
        htmx_path: HTMX_PATH,
        htmx_sse_path: HTMX_SSE_PATH,
        sections,
        autoscalers,
    }
}

/// GET /instances/:instance_id/workloads/:kind — one kind's section alone (what the live page swaps in).
pub async fn section(
    paths::WorkloadsSection { instance_id, kind }: paths::WorkloadsSection,
    visit: PartVisit,
) -> Result<Response, PageError> {
    let Visit { session, text, .. } = visit;
    // Events are a timeline of their own (see super::events), not a section of rows.
    let Some(kind) = Kind::parse(&kind).filter(|kind| *kind != Kind::Events) else {
        return Err(PageError::NotFound(|text| text.not_found));
    };
    let now = jiff::Timestamp::now();
    let (section, terminal) = tokio::join!(
        objects::read_section(&session.client, &session.tenant.namespace, kind, now),
        may_exec(&session, kind),
    );
    let section = section_view(&instance_id, kind, section?, terminal?);
    Ok(render(StatusCode::OK, &SectionFragment { text, section }))
}

/// GET /instances/:instance_id/objects/:kind/:name — one object as YAML, read as the signed-in user; 404 alike for
/// what does not exist and what they may not read.
pub async fn object(
    paths::Object { instance_id, kind, name }: paths::Object,
    visit: PageVisit,
    Query(shown): Query<Shown>,
) -> Result<Response, PageError> {
    let Visit { session, text, .. } = visit;
    let no_such = PageError::NotFound(|text| text.live_no_such_object);
    let Some(kind) = Kind::parse(&kind) else { return Err(no_such) };
    let Some(yaml) = objects::object_yaml(&session.client, &session.tenant.namespace, kind, &name).await? else {
        return Err(no_such);
    };
    let may_edit = crate::tenant::edit::may_edit(&session.client, &session.tenant.namespace, kind, &name).await?;
    let edit = may_edit.then(|| {
        paths::ObjectEdit { instance_id: instance_id.clone(), kind: kind.as_str().to_owned(), name: name.clone() }
            .to_string()
    });
    let workloads = paths::Workloads { instance_id }.to_string();
    let applied = shown.done.as_deref() == Some("applied");
    let page = ObjectPage { text, session: &session, kind: kind.as_str(), name: &name, workloads, yaml, edit, applied };
    Ok(render(StatusCode::OK, &page))
}

#[cfg(test)]
mod tests {
    use super::super::i18n;
    use super::*;

    fn session() -> Session {
        super::super::user_sessions::test_session("inst-1")
    }

    #[tokio::test]
    async fn the_workloads_page_is_live_escaped_and_says_what_is_not_allowed() {
        let session = session();
        let pod = Row {
            name: "web-<b>1".into(),
            status: "Running".into(),
            ready: "1/1".into(),
            restarts: "3".into(),
            age: "5m".into(),
            detail: "example.invalid/web:1 <script>alert(1)</script>".into(),
            has_yaml: true,
        };
        let sections = vec![
            section_view("inst-1", Kind::Pods, Section::Listed(vec![pod]), true),
            section_view("inst-1", Kind::Ingresses, Section::NotAllowed, false),
            section_view("inst-1", Kind::Services, Section::Listed(Vec::new()), false),
        ];
        let autoscalers = super::super::apps::AutoscalersFragment::empty(&i18n::EN, "/instances/inst-1/autoscalers");
        let html = workloads_page(&i18n::EN, &session, sections, autoscalers).render().expect("renders");
        assert!(html.contains(r#"sse-connect="/instances/inst-1/live""#), "{html}");
        assert!(
            html.contains(r#"hx-get="/instances/inst-1/workloads/pods" hx-trigger="sse:pods" hx-swap="outerHTML""#),
            "{html}"
        );
        assert!(
            html.contains(r#"<a href="/instances/inst-1/objects/pods/web-%3Cb%3E1" id="pods-web-&#60;b&#62;1">web-&#60;b&#62;1</a>"#),
            "{html}"
        );
        assert!(html.contains(r#"href="/instances/inst-1/pods/web-%3Cb%3E1/logs""#), "{html}");
        assert!(html.contains(r#"<a class="terminal" href="/instances/inst-1/terminal/web-%3Cb%3E1" id="pods-web-&#60;b&#62;1-terminal">Terminal</a>"#));
        assert!(html.contains("&#60;script&#62;") && !html.contains("<script>alert"), "escaped: {html}");
        assert!(html.contains(i18n::EN.live_not_allowed) && html.contains(i18n::EN.live_none));
        let scripts: Vec<&str> = html.match_indices("<script").map(|(at, _)| &html[at..at + 60]).collect();
        assert_eq!(scripts.len(), 2, "only the two vendored scripts: {scripts:?}");
        assert!(html.contains(&format!(r#"<script src="{HTMX_PATH}" defer></script>"#)));
        assert!(!html.contains("style=") && !html.contains("<style"), "no inline style: {html}");
        assert!(!["onclick=", "onload=", "onerror=", "javascript:"].iter().any(|inline| html.contains(inline)));
        assert!(html.contains(r#""allowEval":false"#), "htmx may not eval");
        assert!(html.contains(r#"<a href="/instances/inst-1/events">Events</a></p>"#), "the events' own page: {html}");
        assert!(html.contains(r#"id="autoscalers" hx-get="/instances/inst-1/autoscalers""#), "{html}");
        assert!(html.contains(i18n::EN.no_autoscalers), "{html}");
    }
}
