//! The apps page: a virtual cluster's Deployments and StatefulSets (the tenant's own and the workload plans'), with the
//! controls the signed-in identity may use — stop, start, restart, scale, autoscale, delete. Which controls show is
//! asked of Kubernetes for that identity; what happens is decided by Kubernetes too (see [`crate::tenant::apps`]):
//! a forged form gets the apiserver's refusal, not a change.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::DashboardState;
use super::i18n::Translation;
use super::measures::{self, AutoscalerLine};
use super::page_error::PageError;
use super::paths::{self, with_query};
use super::reply::{render, see_other};
use super::respond::{PageVisit, PartVisit, Visit, refusal};
use super::user_sessions::Session;
use crate::k8s::workload::Autoscale;
use crate::lifecycle::Error;
use crate::lifecycle::model::OperationState;
use crate::tenant;
use crate::tenant::apps::{Acted, Action, App, AppPermissions, Controller};

/// What the page says above the list after an action, or why it was not done (the session page says it alike).
pub(super) enum Notice {
    Done(String),
    Refused(String),
}

/// The apps page.
#[derive(Template)]
#[template(path = "apps.html", config = "src/dashboard/askama.toml")]
struct AppsPage<'a> {
    text: &'static Translation,
    session: &'a Session,
    apps: Vec<AppLine<'a>>,
    may_change_any: bool,
    metrics_available: bool,
    notice: Option<Notice>,
    live: String,
    htmx_path: &'static str,
    htmx_sse_path: &'static str,
    autoscalers: AutoscalersFragment,
}

/// The autoscalers' live state: on the apps and workloads pages, and alone for them to swap in (at each change of
/// the apps they scale, and every 15 s, since a measure is no object change to hear of).
#[derive(Template)]
#[template(path = "autoscalers.html", config = "src/dashboard/askama.toml")]
pub(super) struct AutoscalersFragment {
    text: &'static Translation,
    /// Where the fragment alone is fetched again.
    url: String,
    /// Each autoscaler; `None` when the identity may not read them.
    lines: Option<Vec<AutoscalerLine>>,
}

impl AutoscalersFragment {
    /// The fragment without any autoscaler.
    #[cfg(test)]
    pub(super) fn empty(text: &'static Translation, url: &str) -> AutoscalersFragment {
        AutoscalersFragment { text, url: url.to_owned(), lines: Some(Vec::new()) }
    }
}

/// The autoscalers of the signed-in user's namespace, read as the user.
pub(super) async fn autoscalers_fragment(
    text: &'static Translation,
    session: &Session,
) -> Result<AutoscalersFragment, PageError> {
    let url = paths::Autoscalers { instance_id: session.tenant.instance_id.clone() }.to_string();
    let lines = match tenant::apps::autoscalers(&session.client, &session.tenant.namespace).await {
        Ok(states) => Some(measures::autoscaler_lines(text, &states)),
        Err(Error::Denied { .. }) => None,
        Err(Error::Unavailable { .. }) => return Err(PageError::Unavailable),
        Err(error) => {
            tracing::warn!(instance_id = session.tenant.instance_id, %error, "the autoscalers could not be read");
            None
        }
    };
    Ok(AutoscalersFragment { text, url, lines })
}

/// GET /instances/:instance_id/autoscalers — the autoscalers' state alone, read as the signed-in user.
pub async fn autoscalers(_: paths::Autoscalers, visit: PartVisit) -> Result<Response, PageError> {
    let Visit { session, text, .. } = visit;
    Ok(render(StatusCode::OK, &autoscalers_fragment(text, &session).await?))
}

/// One app as shown, with the controls its viewer may use.
struct AppLine<'a> {
    app: &'a App,
    action: String,
    state: &'static str,
    plan_state: Option<String>,
    change: bool,
    scale: bool,
    autoscale: bool,
    delete: bool,
}

/// `?done=` after an action, naming it.
#[derive(Deserialize)]
pub struct Done {
    #[serde(default)]
    done: Option<String>,
    #[serde(default)]
    app: Option<String>,
}

/// An action's form: which action, and its numbers as typed.
#[derive(Deserialize)]
pub struct ActionForm {
    action: String,
    #[serde(default)]
    replicas: String,
    #[serde(default)]
    min: String,
    #[serde(default)]
    max: String,
    #[serde(default)]
    cpu: String,
}

impl ActionForm {
    /// The action the form asks for; a number that is no number is a bad request.
    fn action(&self) -> Result<Action, Error> {
        let number = |field: &str, value: &str| {
            value.trim().parse::<i32>().map_err(|_| Error::BadRequest(format!("{field} must be a whole number")))
        };
        let action = match self.action.as_str() {
            "stop" => Action::Stop,
            "start" => Action::Start,
            "restart" => Action::Restart,
            "scale" => Action::Scale(number("replicas", &self.replicas)?),
            "autoscale" => Action::Autoscale(Autoscale {
                min: number("min", &self.min)?,
                max: number("max", &self.max)?,
                cpu_percent: number("cpu", &self.cpu)?,
            }),
            "stop-autoscaling" => Action::StopAutoscaling,
            "delete" => Action::Delete,
            other => return Err(Error::BadRequest(format!("there is no action {other:?}"))),
        };
        action.validate()?;
        Ok(action)
    }
}

/// GET /instances/:instance_id/apps
pub async fn page(
    _: paths::Apps,
    State(state): State<DashboardState>,
    Query(done): Query<Done>,
    visit: PageVisit,
) -> Result<Response, PageError> {
    let Visit { session, text, .. } = visit;
    let notice = done.done.map(|action| Notice::Done(format!("{action}: {}", done.app.unwrap_or_default())));
    show(&state, text, &session, StatusCode::OK, notice).await
}

/// The page with `status` and `notice`, read as the signed-in user.
async fn show(
    state: &DashboardState,
    text: &'static Translation,
    session: &Session,
    status: StatusCode,
    notice: Option<Notice>,
) -> Result<Response, PageError> {
    let namespace = &session.tenant.namespace;
    let (apps, permissions, metrics, autoscalers) = tokio::join!(
        tenant::apps::list(&state.broker, &session.client, &session.tenant),
        crate::tenant::apps::app_permissions(&session.client, namespace),
        crate::tenant::apps::metrics_available(&session.client),
        autoscalers_fragment(text, session),
    );
    let (apps, permissions) = match (apps, permissions) {
        (Ok(apps), Ok(permissions)) => (apps, permissions),
        (Err(Error::Unavailable { .. }), _) | (_, Err(Error::Unavailable { .. })) => {
            return Err(PageError::Unavailable);
        }
        (Err(error), _) | (_, Err(error)) => {
            tracing::warn!(instance_id = session.tenant.instance_id, %error, "the apps could not be read as the signed-in user");
            return Err(PageError::Forbidden(|text| text.apps_unreadable));
        }
    };
    let page = apps_page(text, session, &apps, permissions, metrics, notice, autoscalers?);
    Ok(render(status, &page))
}

fn apps_page<'a>(
    text: &'static Translation,
    session: &'a Session,
    apps: &'a [App],
    permissions: AppPermissions,
    metrics_available: bool,
    notice: Option<Notice>,
    autoscalers: AutoscalersFragment,
) -> AppsPage<'a> {
    let instance_id = &session.tenant.instance_id;
    let lines: Vec<AppLine<'a>> = apps
        .iter()
        .map(|app| {
            let change = permissions.change(app.controller);
            // A streaming session is one pod by design: it is stopped and started, never scaled.
            let session_plan = app.plan.as_ref().is_some_and(|plan| plan.service_name == "streaming-session");
            let action = paths::AppAction {
                instance_id: instance_id.clone(),
                resource: app.controller.resource().to_owned(),
                name: app.name.clone(),
            };
            AppLine {
                app,
                action: action.to_string(),
                state: if app.stopped() {
                    text.app_stopped
                } else if app.ready >= app.desired {
                    text.app_ready
                } else {
                    text.app_starting
                },
                plan_state: app.plan.as_ref().map(|plan| {
                    let state = match plan.state.state {
                        OperationState::Succeeded => text.app_ready,
                        OperationState::InProgress => text.app_starting,
                        OperationState::Failed => text.app_failed,
                    };
                    match &plan.state.description {
                        Some(description) if !description.is_empty() => format!("{state}: {description}"),
                        _ => state.to_owned(),
                    }
                }),
                change,
                scale: change && !session_plan && app.autoscale.is_none(),
                autoscale: change && permissions.autoscale && !session_plan,
                delete: permissions.delete(app.controller),
            }
        })
        .collect();
    AppsPage {
        text,
        session,
        may_change_any: lines.iter().any(|line| line.change || line.delete),
        apps: lines,
        metrics_available,
        notice,
        live: paths::Live { instance_id: instance_id.clone() }.to_string(),
        htmx_path: super::assets::HTMX_PATH,
        htmx_sse_path: super::assets::HTMX_SSE_PATH,
        autoscalers,
    }
}

/// POST /instances/:instance_id/apps/:resource/:name — one action, made as the signed-in user.
pub async fn act(
    paths::AppAction { instance_id, resource, name }: paths::AppAction,
    State(state): State<DashboardState>,
    visit: PageVisit,
    Form(form): Form<ActionForm>,
) -> Result<Response, PageError> {
    let Visit { session, text, .. } = visit;
    let Some(kind) = Controller::from_resource(&resource) else {
        return Err(PageError::NotFound(|text| text.not_found));
    };
    let outcome = match form.action() {
        Ok(action) => tenant::apps::act(&state.broker, &session.client, &session.tenant, kind, &name, action).await,
        Err(error) => Err(error),
    };
    let user = &session.tenant.username;
    match outcome {
        Ok(Acted::Done | Acted::Started) => {
            tracing::info!(instance_id, user, kind = kind.kind(), name, action = form.action, "dashboard action");
            let apps = paths::Apps { instance_id };
            Ok(see_other(&with_query(apps, &[("done", &form.action), ("app", &name)])))
        }
        Err(error) => {
            let (status, said) = refusal(text, &error);
            tracing::info!(instance_id, user, kind = kind.kind(), name, action = form.action, %error, "dashboard action refused");
            show(&state, text, &session, status, Some(Notice::Refused(said))).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::i18n;
    use super::*;
    use crate::lifecycle::PlanApp;
    use crate::lifecycle::model::LastOperation;

    fn session() -> Session {
        super::super::user_sessions::test_session("inst-1")
    }

    fn apps() -> Vec<App> {
        vec![
            App {
                controller: Controller::Deployment,
                name: "web<b>".to_owned(),
                desired: 2,
                ready: 1,
                replicas_before_stop: None,
                autoscale: None,
                images: vec!["example/web:1".to_owned()],
                plan: None,
            },
            App {
                controller: Controller::StatefulSet,
                name: "session-x".to_owned(),
                desired: 0,
                ready: 0,
                replicas_before_stop: None,
                autoscale: None,
                images: vec![],
                plan: Some(PlanApp {
                    instance_id: "x".to_owned(),
                    service_name: "streaming-session".to_owned(),
                    plan_name: "cpu-720p".to_owned(),
                    state: LastOperation::new(OperationState::Succeeded, "stopped"),
                    idle_stopped_after: None,
                }),
            },
        ]
    }

    #[tokio::test]
    async fn controls_show_only_what_the_identity_may_do() {
        let session = session();
        let apps = apps();
        let all = AppPermissions {
            change_deployments: true,
            change_stateful_sets: true,
            delete_deployments: true,
            delete_stateful_sets: true,
            autoscale: true,
        };
        let state = crate::tenant::apps::AutoscalerState {
            name: "web".into(),
            target_kind: "Deployment".into(),
            target: "web<b>".into(),
            min: 1,
            max: 4,
            target_cpu_percent: Some(50),
            current_cpu_percent: Some(180),
            current_replicas: 1,
            desired_replicas: 4,
            scaling_active: Some(true),
        };
        let autoscalers = |text: &'static Translation| AutoscalersFragment {
            text,
            url: "/instances/inst-1/autoscalers".into(),
            lines: Some(measures::autoscaler_lines(text, std::slice::from_ref(&state))),
        };
        let html =
            apps_page(&i18n::EN, &session, &apps, all, false, None, autoscalers(&i18n::EN)).render().expect("renders");
        assert!(html.contains(r#"action="/instances/inst-1/apps/deployments/web%3Cb%3E""#), "{html}");
        assert!(html.contains("web&#60;b&#62;") || html.contains("web&lt;b&gt;"), "escaped: {html}");
        assert!(html.contains(r#"value="stop""#) && html.contains(r#"value="scale""#), "{html}");
        assert!(html.contains(r#"value="start""#), "the stopped session can be started: {html}");
        assert!(html.contains(i18n::EN.metrics_missing), "{html}");
        assert!(html.contains("streaming-session / cpu-720p"), "{html}");
        assert!(!html.contains("style="), "{html}");
        let scripts: Vec<&str> = html.match_indices("<script").map(|(at, _)| &html[at..at + 40]).collect();
        assert_eq!(scripts.len(), 2, "only the two vendored scripts of the live view: {scripts:?}");
        assert!(html.contains(r#"sse-connect="/instances/inst-1/live""#), "{html}");
        assert!(
            html.contains(r#"<section class="card wide" id="autoscalers" hx-get="/instances/inst-1/autoscalers" hx-trigger="sse:deployments, sse:statefulsets, every 15s" hx-swap="outerHTML">"#),
            "the autoscalers are kept live: {html}"
        );
        assert!(
            html.contains(
                r#"<td class="num cpu">180 % / 50 %</td><td class="num pods">1 → 4</td><td class="num range">1–4</td>"#
            ),
            "{html}"
        );
        assert!(html.contains("Deployment/web&#60;b&#62;"), "escaped: {html}");
        let scale_forms = html.matches(r#"value="scale""#).count();
        assert_eq!(scale_forms, 1, "a streaming session is not scaled: {html}");

        let view = AppPermissions::default();
        let html =
            apps_page(&i18n::KO, &session, &apps, view, true, None, autoscalers(&i18n::KO)).render().expect("renders");
        assert!(!html.contains(r#"name="action""#), "a viewer gets no control at all: {html}");
        assert!(html.contains(i18n::KO.apps_view_only) && html.contains(r#"lang="ko""#), "{html}");
        assert!(html.contains(i18n::KO.autoscalers) && html.contains(i18n::KO.autoscaler_pods), "{html}");
        let unreadable = AutoscalersFragment { text: &i18n::EN, url: String::new(), lines: None };
        assert!(unreadable.render().expect("renders").contains(i18n::EN.autoscalers_unreadable));
    }

    #[test]
    fn forms_name_one_action_with_whole_numbers() {
        let form = |action: &str, replicas: &str| ActionForm {
            action: action.to_owned(),
            replicas: replicas.to_owned(),
            min: "1".to_owned(),
            max: "3".to_owned(),
            cpu: "70".to_owned(),
        };
        assert_eq!(form("scale", " 3 ").action().expect("scale"), Action::Scale(3));
        assert!(matches!(form("scale", "three").action(), Err(Error::BadRequest(_))));
        assert!(matches!(form("scale", "99").action(), Err(Error::BadRequest(_))));
        assert!(matches!(form("reboot", "").action(), Err(Error::BadRequest(_))));
        assert_eq!(
            form("autoscale", "").action().expect("autoscale"),
            Action::Autoscale(Autoscale { min: 1, max: 3, cpu_percent: 70 })
        );
    }
}
