//! The deploy page: a form that becomes a container app ([`DeployForm::app`]; deployed by
//! [`crate::tenant::deploy`]), checked by the cluster in a dry run as the signed-in user before anything is applied,
//! with the cluster's refusals shown beside the fields they are about and a YAML preview of exactly what will be
//! applied; after a deploy, the app's progress, kept live by the live stream.

use std::collections::BTreeMap;

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::DashboardState;
use super::assets::{HTMX_PATH, HTMX_SSE_PATH};
use super::i18n::Translation;
use super::page_error::PageError;
use super::paths::{self, with_query};
use super::reply::{render, see_other};
use super::respond::{PageVisit, PartVisit, Visit};
use super::user_sessions::Session;
use crate::catalog::{WorkloadSize, quantity};
use crate::k8s::names::{LABEL_APP, LABEL_MANAGED_BY, MANAGED_BY_DASHBOARD};
use crate::k8s::workload::{Autoscale, ContainerApp, Resources, Workload};
use crate::lifecycle::Error;
use crate::lifecycle::model::OperationState;
use crate::tenant;
use crate::tenant::apps::{Action, MAX_REPLICAS};
use crate::tenant::deploy::{self, Deployed, FieldError, MAX_NAME, is_app_name};

/// The deploy form as typed, every field a string, so that each can be refused on its own.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DeployForm {
    /// The app's name (its objects' names).
    pub name: String,
    /// The container image.
    pub image: String,
    /// The container's port.
    pub port: String,
    /// Pods, when not autoscaled.
    pub replicas: String,
    /// Environment variables, one `NAME=value` a line.
    pub env: String,
    /// CPU request.
    pub cpu_request: String,
    /// CPU limit.
    pub cpu_limit: String,
    /// Memory request.
    pub memory_request: String,
    /// Memory limit.
    pub memory_limit: String,
    /// Host of an Ingress; none when empty.
    pub ingress_host: String,
    /// `on` when autoscaling is wanted.
    pub autoscale: String,
    /// Fewest pods when autoscaled.
    pub min: String,
    /// Most pods when autoscaled.
    pub max: String,
    /// Target CPU use, percent of the request.
    pub cpu_percent: String,
}

/// What is wrong with the form's `field`.
fn invalid(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError { field: Some(field), message: message.into(), denied: false }
}

impl DeployForm {
    /// The app the form describes, for `namespace`; or every field that is wrong, each with why. The cluster's own
    /// rules (a request above its limit, a host that is no host, the quota) are left to the dry run.
    pub fn app(&self, namespace: &str, base: &Workload) -> Result<ContainerApp, Vec<FieldError>> {
        let mut errors = Vec::new();
        let name = self.name.trim();
        if !is_app_name(name) {
            errors.push(invalid(
                "name",
                format!(
                    "1 to {MAX_NAME} of a-z, 0-9 and '-', starting with a letter and ending with a letter or digit"
                ),
            ));
        }
        let image = self.image.trim();
        if image.is_empty() || image.len() > 512 || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
            errors.push(invalid("image", "an image reference, e.g. registry.example/team/app:1.2"));
        }
        let mut number = |field: &'static str, value: &str, range: std::ops::RangeInclusive<i32>| match value
            .trim()
            .parse::<i32>()
        {
            Ok(number) if range.contains(&number) => number,
            _ => {
                errors.push(invalid(field, format!("a whole number from {} to {}", range.start(), range.end())));
                0
            }
        };
        let port = number("port", &self.port, 1..=65535);
        let replicas = number("replicas", &self.replicas, 0..=MAX_REPLICAS);
        let autoscale = (self.autoscale == "on").then(|| Autoscale {
            min: number("min", &self.min, 1..=MAX_REPLICAS),
            max: number("max", &self.max, 1..=MAX_REPLICAS),
            cpu_percent: number("cpu_percent", &self.cpu_percent, 1..=100),
        });
        if let Some(autoscale) = &autoscale
            && let Err(error) = Action::Autoscale(autoscale.clone()).validate()
        {
            errors.push(invalid("max", error.to_string()));
        }
        let mut quantity_of = |field: &'static str, value: &str| {
            let value = value.trim();
            if quantity::parse(value).is_none() || value.starts_with('-') {
                errors.push(invalid(field, "a Kubernetes quantity, e.g. 250m or 1 (CPU), 256Mi or 1Gi (memory)"));
            }
            value.to_owned()
        };
        let resources = Resources {
            cpu_request: quantity_of("cpu_request", &self.cpu_request),
            cpu_limit: quantity_of("cpu_limit", &self.cpu_limit),
            memory_request: quantity_of("memory_request", &self.memory_request),
            memory_limit: quantity_of("memory_limit", &self.memory_limit),
        };
        let env = environment(&self.env).unwrap_or_else(|error| {
            errors.push(error);
            BTreeMap::new()
        });
        let host = self.ingress_host.trim();
        if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            errors.push(invalid("ingress_host", "a host name, e.g. app.example.com, or nothing"));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let workload = Workload {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            labels: BTreeMap::from([
                (LABEL_MANAGED_BY.to_owned(), MANAGED_BY_DASHBOARD.to_owned()),
                (LABEL_APP.to_owned(), name.to_owned()),
            ]),
            size: WorkloadSize::default(),
            resources: Some(resources),
            running: true,
            restart: None,
            ingress_host: (!host.is_empty()).then(|| host.to_owned()),
            ..base.clone()
        };
        Ok(ContainerApp {
            workload,
            image: image.to_owned(),
            port,
            replicas,
            env,
            autoscale,
            scale_down_after_seconds: None,
            path: "/".to_owned(),
        })
    }
}

/// `NAME=value` lines as environment variables; blank lines are skipped.
fn environment(text: &str) -> Result<BTreeMap<String, String>, FieldError> {
    let mut env = BTreeMap::new();
    for (number, line) in text.lines().enumerate().filter(|(_, line)| !line.trim().is_empty()) {
        let (name, value) = line.split_once('=').unwrap_or((line, ""));
        let name = name.trim();
        if name.is_empty() || !line.contains('=') || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("env", format!("line {}: NAME=value", number + 1)));
        }
        env.insert(name.to_owned(), value.to_owned());
    }
    Ok(env)
}

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
    text: &'static Translation,
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
    text: &'static Translation,
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

fn fields(text: &'static Translation, form: &DeployForm, errors: &[FieldError]) -> Vec<FieldView> {
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
    text: &'static Translation,
    session: &'a Session,
    form: &DeployForm,
    errors: &[FieldError],
    outcome: Outcome,
) -> DeployPage<'a> {
    let instance_id = || session.tenant.instance_id.clone();
    DeployPage {
        text,
        session,
        action: paths::Deploy { instance_id: instance_id() }.to_string(),
        live: paths::Live { instance_id: instance_id() }.to_string(),
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
pub async fn form(_: paths::Deploy, Query(query): Query<AppQuery>, visit: PageVisit) -> Result<Response, PageError> {
    let Visit { session, text, .. } = visit;
    let defaults = match deploy::limit_defaults(&session.client, &session.tenant.namespace).await {
        Err(Error::Denied { .. }) => [None, None, None, None],
        read => read?,
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
    // Asked of Kubernetes at sign-in (a change of role ends the session).
    shown.may_deploy = session.abilities.deploy;
    if let Some(app) = query.app.filter(|app| is_app_name(app)) {
        match progress_of(text, &session, &app).await.render() {
            Ok(html) => shown.progress = Some(html),
            Err(error) => tracing::error!(%error, "the deploy progress did not render"),
        }
    }
    Ok(render(StatusCode::OK, &shown))
}

/// POST /instances/:instance_id/deploy — a dry run (`intent=dry-run`) or a deploy, both as the user.
pub async fn submit(
    paths::Deploy { instance_id }: paths::Deploy,
    State(state): State<DashboardState>,
    visit: PageVisit,
    Form(submitted): Form<Submitted>,
) -> Result<Response, PageError> {
    let Visit { session, text, .. } = visit;
    let form = &submitted.form;
    let base = tenant::deploy::deploy_base(&state.broker, &session.tenant.namespace);
    let app = match form.app(&session.tenant.namespace, &base) {
        Ok(app) => app,
        Err(errors) => {
            return Ok(render(StatusCode::BAD_REQUEST, &page(text, &session, form, &errors, Outcome::Invalid)));
        }
    };
    let objects = deploy::objects(app);
    let name = objects.app.workload.name.clone();
    let deploying = submitted.intent == "deploy";
    let outcome = if deploying {
        tenant::deploy::deploy(&session.client, &objects).await
    } else {
        tenant::deploy::dry_run(&session.client, &objects).await
    };
    let user = &session.tenant.username;
    match outcome {
        Ok(Deployed::Applied) if deploying => {
            tracing::info!(instance_id, user, app = name, "dashboard deploy");
            Ok(see_other(&with_query(paths::Deploy { instance_id }, &[("app", &name)])))
        }
        Ok(Deployed::Applied) => {
            let mut shown = page(text, &session, form, &[], Outcome::Accepted);
            shown.yaml = Some(objects.yaml());
            Ok(render(StatusCode::OK, &shown))
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
            Ok(render(status, &shown))
        }
        Err(Error::Unavailable { .. }) => Err(PageError::Unavailable),
        Err(error) => {
            tracing::warn!(instance_id, user, app = name, %error, "a dashboard deploy failed");
            Err(PageError::signed_in(StatusCode::BAD_GATEWAY, |text| text.unavailable))
        }
    }
}

/// GET /instances/:instance_id/deploy/progress?app= — the progress fragment alone.
pub async fn progress(
    _: paths::DeployProgress,
    Query(query): Query<AppQuery>,
    visit: PartVisit,
) -> Result<Response, PageError> {
    let Visit { session, text, .. } = visit;
    let Some(app) = query.app.filter(|app| is_app_name(app)) else {
        return Err(PageError::NotFound(|text| text.no_such_app));
    };
    Ok(render(StatusCode::OK, &progress_of(text, &session, &app).await))
}

async fn progress_of(text: &'static Translation, session: &Session, app: &str) -> ProgressFragment {
    let read = tenant::deploy::deploy_progress(&session.client, &session.tenant.namespace, app).await;
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
        url: with_query(paths::DeployProgress { instance_id: session.tenant.instance_id.clone() }, &[("app", app)]),
        app: app.to_owned(),
        class,
        state,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> DeployForm {
        DeployForm {
            name: "web".into(),
            image: "example/web:1".into(),
            port: "8080".into(),
            replicas: "2".into(),
            env: "GREETING=hello=world\n\nMODE=prod".into(),
            cpu_request: "100m".into(),
            cpu_limit: "500m".into(),
            memory_request: "128Mi".into(),
            memory_limit: "256Mi".into(),
            ingress_host: String::new(),
            autoscale: String::new(),
            min: String::new(),
            max: String::new(),
            cpu_percent: String::new(),
        }
    }

    fn base() -> Workload {
        Workload { ingress_class: Some("nginx".into()), ..Workload::unnamed("caas-x", Default::default()) }
    }

    #[test]
    fn a_valid_form_is_a_dashboard_labelled_app_with_its_own_sizes() {
        let app = form().app("caas-x", &base()).expect("valid");
        assert_eq!(app.env.get("GREETING").map(String::as_str), Some("hello=world"));
        let objects = deploy::objects(app);
        let pod = objects.deployment.spec.as_ref().and_then(|s| s.template.spec.clone()).expect("pod");
        let resources = pod.containers[0].resources.clone().expect("resources");
        assert_eq!(resources.limits.expect("limits")["memory"].0, "256Mi");
        assert_eq!(resources.requests.expect("requests")["cpu"].0, "100m");
        let selector = objects.deployment.spec.as_ref().and_then(|s| s.selector.match_labels.clone());
        assert_eq!(selector, Some(BTreeMap::from([(LABEL_APP.to_owned(), "web".to_owned())])));
        assert_eq!(objects.deployment.metadata.labels.as_ref().expect("labels")[LABEL_MANAGED_BY], "caas-dashboard");
        assert!(objects.ingress.is_none() && objects.autoscaler.is_none());
        let yaml = objects.yaml();
        assert!(yaml.contains("kind: Deployment") && yaml.contains("kind: Service") && yaml.contains("---"), "{yaml}");
    }

    #[test]
    fn every_wrong_field_is_named_and_nothing_is_built() {
        let wrong = DeployForm {
            name: "Web_1".into(),
            image: "has space".into(),
            port: "0".into(),
            replicas: "51".into(),
            env: "NOEQUALS".into(),
            cpu_limit: "lots".into(),
            autoscale: "on".into(),
            min: "3".into(),
            max: "2".into(),
            cpu_percent: "80".into(),
            ..form()
        };
        let errors = wrong.app("caas-x", &base()).expect_err("invalid");
        let fields: Vec<_> = errors.iter().filter_map(|e| e.field).collect();
        assert_eq!(fields, ["name", "image", "port", "replicas", "max", "cpu_limit", "env"]);
    }
}
