//! noVNC of a streaming session without an Ingress, served through the dashboard: each request (the page, its files,
//! its WebSocket) goes to the apiserver's service proxy of that session's Service and noVNC port only, made with the
//! signed-in user's own client — so Kubernetes' RBAC decides (`get services/proxy`: the `edit` and `admin` roles, not
//! `view`), and nothing else of the cluster is reachable (see
//! [`crate::broker::Broker::session_novnc_path`]). The WebSocket is tunnelled as bytes once both
//! sides agreed on the upgrade: the browser's handshake goes to websockify as it came, and its answer back.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;

use super::DashboardState;
use super::respond::{PartVisit, Visit, message};
use super::stream::SESSION_CHECK;
use crate::broker::{Error, percent_encode};

/// The largest noVNC file passed on (its biggest, a vendored library, is a few hundred KiB).
const MAX_FILE_BYTES: usize = 8 * 1024 * 1024;

/// The handshake headers a WebSocket upgrade passes on, both ways; cookies and the like stay behind.
const HANDSHAKE: [HeaderName; 6] = [
    header::CONNECTION,
    header::UPGRADE,
    header::SEC_WEBSOCKET_KEY,
    header::SEC_WEBSOCKET_VERSION,
    header::SEC_WEBSOCKET_PROTOCOL,
    header::SEC_WEBSOCKET_EXTENSIONS,
];

/// Where the dashboard serves the noVNC of `session_id` of the virtual cluster `instance_id`.
pub fn proxied_path(instance_id: &str, session_id: &str) -> String {
    format!("/instances/{}/sessions/{}/novnc", percent_encode(instance_id), percent_encode(session_id))
}

/// GET /instances/:instance_id/sessions/:session_id/novnc/*asset — a noVNC file, or its WebSocket.
pub async fn proxy(
    State(state): State<DashboardState>,
    Path((_, session_id, asset)): Path<(String, String, String)>,
    visit: PartVisit,
    request: Request,
) -> Response {
    let Visit { session_id: session_id_of_visitor, session, instance_id, text } = visit;
    let headers = request.headers();
    let upstream = match state.broker.session_novnc_path(&session.tenant, &session_id, &asset).await {
        Ok(upstream) => upstream,
        Err(Error::NotFound(_)) => return message(StatusCode::NOT_FOUND, text, text.not_found, true),
        Err(error) => {
            tracing::info!(instance_id, session_id, %error, "a session's noVNC could not be found");
            return message(StatusCode::SERVICE_UNAVAILABLE, text, text.unavailable, true);
        }
    };
    let upgrade = headers.get(header::UPGRADE).is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let mut outgoing = http::Request::get(upstream);
    let passed: &[HeaderName] = if upgrade { &HANDSHAKE } else { &[header::ACCEPT, header::IF_NONE_MATCH] };
    for name in passed {
        for value in headers.get_all(name) {
            outgoing = outgoing.header(name, value);
        }
    }
    let Ok(outgoing) = outgoing.body(kube::client::Body::empty()) else {
        return message(StatusCode::BAD_REQUEST, text, text.not_found, true);
    };
    let answer = match session.client.send(outgoing).await {
        Ok(answer) => answer,
        Err(error) => {
            tracing::info!(instance_id, session_id, %error, "the apiserver's proxy did not answer");
            return message(StatusCode::BAD_GATEWAY, text, text.unavailable, true);
        }
    };
    let status = answer.status();
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return message(StatusCode::FORBIDDEN, text, text.session_proxy_refused, true);
    }
    if upgrade && status == StatusCode::SWITCHING_PROTOCOLS {
        return tunnel(state.clone(), session_id_of_visitor, request, answer);
    }
    if status.is_server_error() {
        // No ready pod behind the Service (stopped, starting) or websockify not answering.
        return message(StatusCode::BAD_GATEWAY, text, text.session_not_running, true);
    }
    let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
    let etag = answer.headers().get(header::ETAG).cloned();
    let body = match http_body_util::Limited::new(answer.into_body(), MAX_FILE_BYTES).collect().await {
        Ok(body) => body.to_bytes(),
        Err(error) => {
            tracing::info!(instance_id, session_id, %error, "a noVNC file could not be passed on");
            return message(StatusCode::BAD_GATEWAY, text, text.session_not_running, true);
        }
    };
    let mut response = (status, body).into_response();
    for (name, value) in [(header::CONTENT_TYPE, content_type), (header::ETAG, etag)] {
        if let Some(value) = value {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// Answers the browser's upgrade with websockify's handshake, then carries bytes both ways until either side closes or
/// the visitor's dashboard session ends (signed out, expired).
fn tunnel(
    state: DashboardState,
    visitor: String,
    mut request: Request,
    mut answer: http::Response<kube::client::Body>,
) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    for name in [header::CONNECTION, header::UPGRADE, header::SEC_WEBSOCKET_ACCEPT, header::SEC_WEBSOCKET_PROTOCOL] {
        if let Some(value) = answer.headers().get(&name) {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response.headers_mut().entry(header::UPGRADE).or_insert(HeaderValue::from_static("websocket"));
    tokio::spawn(async move {
        let (browser, session) = tokio::join!(hyper::upgrade::on(&mut request), hyper::upgrade::on(&mut answer));
        match (browser, session) {
            (Ok(browser), Ok(session)) => {
                let (mut browser, mut session) = (TokioIo::new(browser), TokioIo::new(session));
                let signed_out = async {
                    let mut checks = tokio::time::interval(SESSION_CHECK);
                    while state.sessions.find(&visitor).is_some() {
                        checks.tick().await;
                    }
                };
                tokio::select! {
                    ended = tokio::io::copy_bidirectional(&mut browser, &mut session) => {
                        if let Err(error) = ended {
                            tracing::debug!(%error, "a noVNC WebSocket ended");
                        }
                    }
                    () = signed_out => tracing::info!("a noVNC WebSocket closed: its dashboard session ended"),
                }
            }
            (Err(error), _) | (_, Err(error)) => tracing::info!(%error, "a noVNC WebSocket could not be joined"),
        }
    });
    response
}
