//! The endpoint tester page: choose a Service or Ingress of this namespace, a port, a path, a method, headers and a
//! body; the dashboard sends the request as the signed-in user through the apiserver's service proxy (see
//! [`crate::tenant::endpoint`] for what confines it) and shows the answer as text, never as HTML.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::DashboardState;
use super::i18n::Text;
use super::objects::instance_path;
use super::respond::{read_failed, render, signed_in, text_for};
use super::user_sessions::Session;
use crate::tenant::endpoint::{self, METHODS, TargetChoice, TryAnswer, TryError, TryForm};

/// The tester page, with the last request's answer or why it was not made.
#[derive(Template)]
#[template(path = "try.html", config = "src/dashboard/askama.toml")]
struct TryPage<'a> {
    text: &'static Text,
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

async fn show(state: &DashboardState, headers: &HeaderMap, instance_id: &str, form: Option<TryForm>) -> Response {
    let text = text_for(headers);
    let (id, session) = match signed_in(state, headers, instance_id, true) {
        Ok(signed_in) => signed_in,
        Err(answer) => return *answer,
    };
    let namespace = &session.tenant.namespace;
    let targets = match endpoint::targets(&session.client, namespace).await {
        Ok(targets) => targets,
        Err(error) => return read_failed(state, text, &id, instance_id, error),
    };
    let (status, answer, problem) = match &form {
        None => (StatusCode::OK, None, None),
        Some(form) => match endpoint::try_request(&session.client, namespace, form).await {
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
    let base = instance_path(instance_id);
    let page = TryPage {
        text,
        session: &session,
        action: format!("{base}/try"),
        targets,
        methods: METHODS,
        form: form.unwrap_or_else(|| TryForm { port: "80".to_owned(), path: "/".to_owned(), ..TryForm::default() }),
        answer,
        problem,
    };
    render(status, &page)
}

/// GET /instances/:instance_id/try — the tester, its targets read as the user.
pub async fn page(
    State(state): State<DashboardState>,
    Path(instance_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    show(&state, &headers, &instance_id, None).await
}

/// POST /instances/:instance_id/try — sends the request, as the user, and shows the answer.
pub async fn send(
    State(state): State<DashboardState>,
    Path(instance_id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<TryForm>,
) -> Response {
    show(&state, &headers, &instance_id, Some(form)).await
}
