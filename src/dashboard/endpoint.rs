//! The endpoint tester page: choose a Service or Ingress of this namespace, a port, a path, a method, headers and a
//! body; the dashboard sends the request as the signed-in user through the apiserver's service proxy (see
//! [`crate::tenant::endpoint`] for what confines it) and shows the answer as text, never as HTML.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum_extra::extract::CookieJar;

use super::DashboardState;
use super::i18n::Translation;
use super::page_error::PageError;
use super::paths;
use super::reply::{render, text_for};
use super::respond::signed_in;
use super::user_sessions::Session;
use crate::tenant::endpoint::{self, METHODS, TargetChoice, TryAnswer, TryError, TryRequest, TryTarget};

/// A test request as the form gives it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct TryForm {
    /// `service/<name>` or `ingress/<name>`.
    pub target: String,
    /// A port of the Service (ignored for an Ingress).
    pub port: String,
    /// Path (and query) on the target, starting with `/`.
    pub path: String,
    /// One of [`METHODS`].
    pub method: String,
    /// `Name: value` lines.
    pub headers: String,
    /// The request body.
    pub body: String,
}

impl TryForm {
    /// The request the form asks for; a target of neither kind is refused.
    fn request(&self) -> Result<TryRequest, TryError> {
        let (kind, name) = self.target.split_once('/').unwrap_or(("", ""));
        let name = name.to_owned();
        let target = match kind {
            "service" => TryTarget::Service { name, port: self.port.trim().parse::<i32>().ok() },
            "ingress" => TryTarget::Ingress { name },
            _ => return Err(TryError::Refused("the target must be a Service or an Ingress".to_owned())),
        };
        Ok(TryRequest {
            target,
            method: self.method.clone(),
            path: self.path.clone(),
            headers: self.headers.clone(),
            body: self.body.clone(),
        })
    }
}

/// The tester page, with the last request's answer or why it was not made.
#[derive(Template)]
#[template(path = "try.html", config = "src/dashboard/askama.toml")]
struct TryPage<'a> {
    text: &'static Translation,
    session: &'a Session,
    action: String,
    targets: Vec<TargetChoice>,
    methods: [&'static str; 7],
    form: TryForm,
    answer: Option<TryAnswer>,
    /// What went wrong: the words before it, and it.
    problem: Option<(&'static str, String)>,
}

impl TryPage<'_> {
    fn selected(&self, target: &TargetChoice) -> bool {
        self.form.target == format!("{}/{}", target.kind, target.name)
    }

    fn latency_ms(&self) -> u128 {
        self.answer.as_ref().map_or(0, |answer| answer.latency.as_millis())
    }
}

async fn show(
    state: &DashboardState,
    (jar, headers): (&CookieJar, &HeaderMap),
    path: paths::Try,
    form: Option<TryForm>,
) -> Result<Response, PageError> {
    let text = text_for(headers);
    let instance_id = path.instance_id.as_str();
    let (_, session) = signed_in(state, jar, instance_id, true)?;
    let namespace = &session.tenant.namespace;
    let targets = endpoint::targets(&session.client, namespace).await?;
    let (status, answer, problem) = match &form {
        None => (StatusCode::OK, None, None),
        // Kubernetes said at sign-in that this identity may not use the service proxy: nothing is sent.
        Some(_) if !session.abilities.send_requests => {
            (StatusCode::FORBIDDEN, None, Some((text.try_denied, "services/proxy is not allowed".to_owned())))
        }
        Some(form) => match tried(&session, form).await {
            Ok(answer) => (StatusCode::OK, Some(answer), None),
            Err(error) => {
                let (status, words) = match &error {
                    TryError::Refused(_) => (StatusCode::BAD_REQUEST, text.try_refused),
                    TryError::NoReadyEndpoint(_) => (StatusCode::CONFLICT, text.try_no_endpoint),
                    TryError::Denied(_) => (StatusCode::FORBIDDEN, text.try_denied),
                    TryError::Failed(_) => (StatusCode::BAD_GATEWAY, text.try_failed),
                };
                tracing::info!(instance_id, user = session.tenant.username, target = form.target, %error, "endpoint test not answered");
                (status, None, Some((words, error.to_string())))
            }
        },
    };
    let page = TryPage {
        text,
        session: &session,
        action: path.to_string(),
        targets,
        methods: METHODS,
        form: form.unwrap_or_else(|| TryForm { port: "80".to_owned(), path: "/".to_owned(), ..TryForm::default() }),
        answer,
        problem,
    };
    Ok(render(status, &page))
}

/// The answer to the form's request, sent as the user to their own namespace.
async fn tried(session: &Session, form: &TryForm) -> Result<TryAnswer, TryError> {
    endpoint::try_request(&session.client, &session.tenant.namespace, &form.request()?).await
}

/// GET /instances/:instance_id/try — the tester, its targets read as the user.
pub async fn page(
    path: paths::Try,
    State(state): State<DashboardState>,
    jar: CookieJar,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    show(&state, (&jar, &headers), path, None).await
}

/// POST /instances/:instance_id/try — sends the request, as the user, and shows the answer.
pub async fn send(
    path: paths::Try,
    State(state): State<DashboardState>,
    jar: CookieJar,
    headers: HeaderMap,
    Form(form): Form<TryForm>,
) -> Result<Response, PageError> {
    show(&state, (&jar, &headers), path, Some(form)).await
}
