//! The deploy page: a form that becomes a container app (see [`crate::broker::deploy`]), checked by the cluster in a
//! dry run as the signed-in user before anything is applied, with the cluster's refusals shown beside the fields they
//! are about and a YAML preview of exactly what will be applied; after a deploy, the app's progress, kept live by the
//! live stream.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::DashboardState;
use super::assets::{HTMX_PATH, HTMX_SSE_PATH};
use super::i18n::Text;
use super::respond::{PageVisit, PartVisit, Visit, message, read_failed, render, see_other};
use super::sessions::Session;
use super::workloads::instance_path;
use crate::broker::deploy::{self, DeployForm, Deployed, FieldError};
use crate::broker::model::OperationState;
use crate::broker::{Error, percent_encode};
use crate::k8s::access::{self, Permission};

/// One input of the form as shown: its value as typed and what is wrong with it.
struct FieldView {
    name: &'static str,
    label: &'static str,
    value: String,
    /// `text`, `number`, `textarea` or `checkbox`.
    input: &'static str,
    errors: Vec<String>,
}

/// What the page says about the last check.
enum Outcome {
    /// Nothing checked yet.
    Blank,
    /// The form's own fields are wrong.
    Invalid,
    /// The cluster refuses; these refusals are about no one field.
    Refused(Vec<String>),
    /// The cluster would accept (a dry run).
    Accepted,
}

/// The deploy page.
#[derive(Template)]
#[template(path = "deploy.html", config = "src/dashboard/askama.toml")]
struct DeployPage<'a> {
    text: &'static Text,
    session: &'a Session,
    action: String,
    fields: Vec<FieldView>,
    outcome: Outcome,
    yaml: Option<String>,
    /// The progress fragment, rendered (and so escaped) on its own.
    progress: Option<String>,
    /// Whether Kubernetes lets the identity make Deployments here (asked, as a courtesy: the apiserver still decides).
    may_deploy: bool,
    live: String,
    htmx_path: &'static str,
    htmx_sse_path: &'static str,
}

/// A deployed app's progress, alone: what the page swaps in when the live stream says its pods changed.
#[derive(Template)]
#[template(path = "deploy_progress.html", config = "src/dashboard/askama.toml")]
struct ProgressFragment {
    text: &'static Text,
    app: String,
    url: String,
    /// `succeeded`, `in-progress`, `failed`; empty when there is no such app.
    class: &'static str,
    state: &'static str,
    detail: String,
}

/// `?app=` naming the app whose progress to show.
#[derive(Deserialize)]
pub struct AppQuery {
    #[serde(default)]
    app: Option<String>,
}

/// The form's fields and which button was pressed.
#[derive(Deserialize)]
pub struct Submitted {
    /// `dry-run` or `deploy`.
    #[serde(default)]
    intent: String,
    #[serde(flatten)]
    form: DeployForm,
}

fn deploy_path(instance_id: &str) -> String {
    format!("{}/deploy", instance_path(instance_id))
}

fn fields(text: &'static Text, form: &DeployForm, errors: &[FieldError]) -> Vec<FieldView> {
    let field = |name: &'static str, label: &'static str, value: &str, input: &'static str| FieldView {
        name,
        label,
        value: value.to_owned(),
        input,
        errors: errors.iter().filter(|e| e.field == Some(name)).map(|e| e.message.clone()).collect(),
    };
    vec![
        field("name", text.app_name, &form.name, "text"),
        field("image", text.image, &form.image, "text"),
        field("port", text.container_port, &form.port, "number"),
        field("replicas", text.pods, &form.replicas, "number"),
        field("cpu_request", text.cpu_request, &form.cpu_request, "text"),
        field("cpu_limit", text.cpu_limit, &form.cpu_limit, "text"),
        field("memory_request", text.memory_request, &form.memory_request, "text"),
        field("memory_limit", text.memory_limit, &form.memory_limit, "text"),
        field("env", text.env_lines, &form.env, "textarea"),
        field("ingress_host", text.ingress_host, &form.ingress_host, "text"),
        field("autoscale", text.autoscale_on, &form.autoscale, "checkbox"),
        field("min", text.min, &form.min, "number"),
        field("max", text.max_pods, &form.max, "number"),
        field("cpu_percent", text.cpu_percent, &form.cpu_percent, "number"),
    ]
}

fn page<'a>(
    text: &'static Text,
    session: &'a Session,
    form: &DeployForm,
    errors: &[FieldError],
    outcome: Outcome,
) -> DeployPage<'a> {
    let base = instance_path(&session.tenant.instance_id);
    DeployPage {
        text,
        session,
        action: deploy_path(&session.tenant.instance_id),
        live: format!("{base}/live"),
        fields: fields(text, form, errors),
        outcome,
        yaml: None,
        progress: None,
        may_deploy: true,
        htmx_path: HTMX_PATH,
        htmx_sse_path: HTMX_SSE_PATH,
    }
}

/// GET /instances/:instance_id/deploy — the form, sized from the namespace's LimitRange (read as the user), and
/// with `?app=` the progress of that app.
pub async fn form(State(state): State<DashboardState>, Query(query): Query<AppQuery>, visit: PageVisit) -> Response {
    let Visit { session_id: id, session, instance_id, text } = visit;
    let defaults = match deploy::limit_defaults(&session.client, &session.tenant.namespace).await {
        Ok(defaults) => defaults,
        Err(Error::Denied { .. }) => [None, None, None, None],
        Err(error) => return read_failed(&state, text, &id, &instance_id, error),
    };
    let [cpu_request, cpu_limit, memory_request, memory_limit] = defaults.map(Option::unwrap_or_default);
    let blank = DeployForm {
        port: "8080".to_owned(),
        replicas: "1".to_owned(),
        cpu_request,
        cpu_limit,
        memory_request,
        memory_limit,
        min: "1".to_owned(),
        max: "3".to_owned(),
        cpu_percent: "80".to_owned(),
        ..DeployForm::default()
    };
    let mut shown = page(text, &session, &blank, &[], Outcome::Blank);
    let create = Permission { verb: "create", group: "apps", resource: "deployments" };
    shown.may_deploy = access::allowed(&session.client, &session.tenant.namespace, create).await.unwrap_or(true);
    if let Some(app) = query.app.filter(|app| deploy::is_app_name(app)) {
        match progress_of(&state, text, &session, &app).await.render() {
            Ok(html) => shown.progress = Some(html),
            Err(error) => tracing::error!(%error, "the deploy progress did not render"),
        }
    }
    render(StatusCode::OK, &shown)
}

/// POST /instances/:instance_id/deploy — a dry run (`intent=dry-run`) or a deploy, both as the user.
pub async fn submit(
    State(state): State<DashboardState>,
    visit: PageVisit,
    Form(submitted): Form<Submitted>,
) -> Response {
    let Visit { session, instance_id, text, .. } = visit;
    let form = &submitted.form;
    let base = state.broker.deploy_base(&session.tenant.namespace);
    let app = match form.app(&session.tenant.namespace, &base) {
        Ok(app) => app,
        Err(errors) => return render(StatusCode::BAD_REQUEST, &page(text, &session, form, &errors, Outcome::Invalid)),
    };
    let objects = deploy::objects(app);
    let name = objects.app.workload.name.clone();
    let deploying = submitted.intent == "deploy";
    let outcome = if deploying {
        state.broker.deploy(&session.client, &objects).await
    } else {
        state.broker.dry_run(&session.client, &objects).await
    };
    let user = &session.tenant.username;
    match outcome {
        Ok(Deployed::Applied) if deploying => {
            tracing::info!(instance_id, user, app = name, "dashboard deploy");
            see_other(&format!("{}?app={}", deploy_path(&instance_id), percent_encode(&name)))
        }
        Ok(Deployed::Applied) => {
            let mut shown = page(text, &session, form, &[], Outcome::Accepted);
            shown.yaml = Some(objects.yaml());
            render(StatusCode::OK, &shown)
        }
        Ok(Deployed::Refused(errors)) => {
            tracing::info!(
                instance_id,
                user,
                app = name,
                deploying,
                refusals = errors.len(),
                "dashboard deploy refused"
            );
            let general = errors.iter().filter(|e| e.field.is_none()).map(|e| e.message.clone()).collect();
            // RBAC's refusal of the identity is a 403, as the apiserver answered; the app's refusals are a 422.
            let status =
                if errors.iter().any(|e| e.denied) { StatusCode::FORBIDDEN } else { StatusCode::UNPROCESSABLE_ENTITY };
            let mut shown = page(text, &session, form, &errors, Outcome::Refused(general));
            shown.yaml = Some(objects.yaml());
            shown.may_deploy = status != StatusCode::FORBIDDEN;
            render(status, &shown)
        }
        Err(Error::Unavailable { .. }) => message(StatusCode::SERVICE_UNAVAILABLE, text, text.unavailable, true),
        Err(error) => {
            tracing::warn!(instance_id, user, app = name, %error, "a dashboard deploy failed");
            message(StatusCode::BAD_GATEWAY, text, text.unavailable, true)
        }
    }
}

/// GET /instances/:instance_id/deploy/progress?app= — the progress fragment alone.
pub async fn progress(
    State(state): State<DashboardState>,
    Query(query): Query<AppQuery>,
    visit: PartVisit,
) -> Response {
    let Visit { session, text, .. } = visit;
    let Some(app) = query.app.filter(|app| deploy::is_app_name(app)) else {
        return message(StatusCode::NOT_FOUND, text, text.no_such_app, true);
    };
    render(StatusCode::OK, &progress_of(&state, text, &session, &app).await)
}

async fn progress_of(state: &DashboardState, text: &'static Text, session: &Session, app: &str) -> ProgressFragment {
    let read = state.broker.deploy_progress(&session.client, &session.tenant.namespace, app).await;
    let (class, state, detail) = match read {
        Ok(Some(operation)) => {
            let (class, state) = match operation.state {
                OperationState::Succeeded => ("succeeded", text.app_ready),
                OperationState::InProgress => ("in-progress", text.app_starting),
                OperationState::Failed => ("failed", text.app_failed),
            };
            (class, state, operation.description.unwrap_or_default())
        }
        Ok(None) => ("", text.no_such_app, String::new()),
        Err(error) => ("", text.unavailable, error.to_string()),
    };
    ProgressFragment {
        text,
        url: format!("{}/progress?app={}", deploy_path(&session.tenant.instance_id), percent_encode(app)),
        app: app.to_owned(),
        class,
        state,
        detail,
    }
}
