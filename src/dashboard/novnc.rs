//! noVNC of a streaming session without an Ingress, served through the dashboard: each request (the page, its files,
//! its WebSocket) goes to the apiserver's service proxy of that session's Service and noVNC port only, made with the
//! signed-in user's own client — so Kubernetes' RBAC decides (`get services/proxy`: the `edit` and `admin` roles, not
//! `view`), and nothing else of the cluster is reachable (see
//! [`crate::lifecycle::Broker::session_novnc_path`]). The WebSocket is tunnelled as bytes once both
//! sides agreed on the upgrade: the browser's handshake goes to websockify as it came, and its answer back.
//!
//! What the session's container serves lands on the dashboard's own origin, and that container is the tenant's: an
//! editor could serve a page of their own there and have it run, with the dashboard's authority, in the browser of an
//! admin who clicks Open. So a file is passed on only when it is byte for byte a file of noVNC 1.3.0 (Debian's
//! `novnc` 1:1.3.0-1, what the session image installs), checked against the SHA-256 list in
//! `static/novnc-1.3.0.sha256` (made with `cd /usr/share/novnc && find -L . -type f | LC_ALL=C sort | xargs sha256sum`),
//! with the content type of its name, never the container's headers or error pages. Only the WebSocket's bytes (the
//! VNC protocol, which noVNC decodes and never runs) come from the container as they are. A session image with another
//! noVNC is refused here, and reached through its Ingress instead.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;

use super::DashboardState;
use super::open_streams::{self, Needs, StreamSlot};
use super::page_error::PageError;
use super::paths::NovncAsset;
use super::respond::{PartVisit, Visit};
use crate::lifecycle::Error;
use crate::tenant;

/// How long the session's Service may take to answer through the apiserver's proxy (a stopped or starting session,
/// an apiserver that is retried) before the visitor is told it does not answer.
const UPSTREAM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// How long a noVNC file may take to arrive once its answer started.
const FILE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

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

/// GET /instances/:instance_id/sessions/:session_id/novnc/*asset — a noVNC file, or its WebSocket.
pub async fn proxy(
    State(state): State<DashboardState>,
    Path(NovncAsset { instance_id, session_id, asset }): Path<NovncAsset>,
    visit: PartVisit,
    request: Request,
) -> Result<Response, PageError> {
    let Visit { session_id: session_id_of_visitor, session, .. } = visit;
    let headers = request.headers();
    let upgrade = headers.get(header::UPGRADE).is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"websocket"));
    // A WebSocket is one of the user's open streams: refused before anything is asked when they hold too many.
    let slot = if upgrade {
        match state.streams.open(&session_id_of_visitor, &session.tenant.username) {
            Some(slot) => Some(slot),
            None => return Err(open_streams::too_many()),
        }
    } else {
        None
    };
    let asked = ask_session(&state, &session, (&session_id, &asset), headers, upgrade);
    let asked = tokio::time::timeout(UPSTREAM_TIMEOUT, asked);
    let answer = match asked.await {
        Ok(Ok(answer)) => answer,
        Ok(Err(Asked::NotFound)) => return Err(PageError::NotFound(|text| text.not_found)),
        Ok(Err(Asked::Failed(error))) => {
            tracing::info!(instance_id, session_id, error, "a session's noVNC could not be reached");
            return Err(PageError::Unavailable);
        }
        Err(_) => {
            tracing::info!(instance_id, session_id, "a session's noVNC did not answer within 5 s");
            return Err(PageError::signed_in(StatusCode::SERVICE_UNAVAILABLE, |text| text.session_not_running));
        }
    };
    let status = answer.status();
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return Err(PageError::Forbidden(|text| text.session_proxy_refused));
    }
    if let Some(slot) = slot
        && status == StatusCode::SWITCHING_PROTOCOLS
    {
        return Ok(tunnel(state.clone(), session_id_of_visitor, slot, request, answer));
    }
    if status.is_server_error() {
        // No ready pod behind the Service (stopped, starting) or websockify not answering.
        return Err(PageError::signed_in(StatusCode::BAD_GATEWAY, |text| text.session_not_running));
    }
    if status == StatusCode::NOT_MODIFIED {
        // The browser keeps the copy it has, which was checked when it was passed on.
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    if status != StatusCode::OK {
        return Err(PageError::NotFound(|text| text.not_found));
    }
    let etag = answer.headers().get(header::ETAG).cloned();
    let body = http_body_util::Limited::new(answer.into_body(), MAX_FILE_BYTES).collect();
    let body = match tokio::time::timeout(FILE_TIMEOUT, body).await.unwrap_or_else(|_| Err("timed out".into())) {
        Ok(body) => body.to_bytes(),
        Err(error) => {
            tracing::info!(instance_id, session_id, %error, "a noVNC file could not be passed on");
            return Err(PageError::signed_in(StatusCode::BAD_GATEWAY, |text| text.session_not_running));
        }
    };
    // The apiserver's proxy rewrites the links of an HTML page it passes on, so noVNC's page never arrives as it was
    // sent: the dashboard answers with its own copy of it (the session's answer said it is up and the user may
    // reach it).
    let body = if NOVNC_PAGES.contains(&asset.as_str()) { axum::body::Bytes::from_static(NOVNC_PAGE) } else { body };
    let Some(content_type) = known_file(&asset, &body) else {
        tracing::warn!(instance_id, session_id, asset, "a session served a file that is not noVNC 1.3.0's; refused");
        return Err(PageError::signed_in(StatusCode::BAD_GATEWAY, |text| text.session_novnc_unknown));
    };
    let mut response = (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response();
    if let Some(etag) = etag {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}

/// Why a session's noVNC could not be asked.
enum Asked {
    /// No such session in the visitor's virtual cluster (or no such file name).
    NotFound,
    /// The broker or the apiserver failed; what to log.
    Failed(String),
}

/// Asks the session's noVNC for `asset` through the apiserver's service proxy, as the visitor, passing on the headers
/// a file request or a WebSocket handshake needs (and nothing else: no cookie).
async fn ask_session(
    state: &DashboardState,
    session: &super::user_sessions::Session,
    (session_id, asset): (&str, &str),
    headers: &axum::http::HeaderMap,
    upgrade: bool,
) -> Result<http::Response<kube::client::Body>, Asked> {
    let upstream = match tenant::streaming::novnc_path(&state.broker, &session.tenant, session_id, asset).await {
        Ok(upstream) => upstream,
        Err(Error::NotFound(_)) => return Err(Asked::NotFound),
        Err(error) => return Err(Asked::Failed(error.to_string())),
    };
    let mut outgoing = http::Request::get(upstream);
    let passed: &[HeaderName] = if upgrade { &HANDSHAKE } else { &[header::ACCEPT, header::IF_NONE_MATCH] };
    for name in passed {
        for value in headers.get_all(name) {
            outgoing = outgoing.header(name, value);
        }
    }
    let outgoing = outgoing.body(kube::client::Body::empty()).map_err(|_| Asked::NotFound)?;
    session.client.send(outgoing).await.map_err(|error| Asked::Failed(format!("the apiserver's proxy: {error}")))
}

/// noVNC 1.3.0's page (`vnc.html`, MPL-2.0), as Debian's package has it.
const NOVNC_PAGE: &[u8] = include_bytes!("static/novnc-1.3.0-vnc.html");
/// The names noVNC's page has (`vnc_auto.html` is a link to `vnc.html`).
const NOVNC_PAGES: [&str; 2] = ["vnc.html", "vnc_auto.html"];

/// noVNC 1.3.0's files: path (relative to its web root) → SHA-256, hex.
static NOVNC_FILES: std::sync::LazyLock<std::collections::HashMap<&'static str, &'static str>> =
    std::sync::LazyLock::new(|| {
        include_str!("static/novnc-1.3.0.sha256")
            .lines()
            .filter_map(|line| line.split_once("  ").map(|(hash, path)| (path, hash)))
            .collect()
    });

/// The content type to serve `body` with when it is exactly noVNC 1.3.0's file `asset`; `None` for anything else.
fn known_file(asset: &str, body: &[u8]) -> Option<&'static str> {
    use sha2::Digest;
    let expected = NOVNC_FILES.get(asset)?;
    let actual: String = sha2::Sha256::digest(body).iter().map(|byte| format!("{byte:02x}")).collect();
    if actual != *expected {
        return None;
    }
    let extension = asset.rsplit_once('.').map_or("", |(_, extension)| extension);
    Some(match extension {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "mp3" => "audio/mpeg",
        "oga" => "audio/ogg",
        "ttf" => "font/ttf",
        "woff" => "font/woff",
        _ => "application/octet-stream",
    })
}

/// Answers the browser's upgrade with websockify's handshake, then carries bytes both ways until either side closes,
/// the visitor's dashboard session ends (signed out, expired, ended by an unbind or removal) or Kubernetes no longer
/// lets them reach the session (`services/proxy`); the tunnel holds one of their stream slots meanwhile.
fn tunnel(
    state: DashboardState,
    visitor: String,
    slot: StreamSlot,
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
                let needs = Needs {
                    verb: "get",
                    group: String::new(),
                    resource: "services".to_owned(),
                    subresource: Some("proxy"),
                };
                tokio::select! {
                    ended = tokio::io::copy_bidirectional(&mut browser, &mut session) => {
                        if let Err(error) = ended {
                            tracing::debug!(%error, "a noVNC WebSocket ended");
                        }
                    }
                    () = open_streams::revoked(state, visitor, needs, slot) => {
                        tracing::info!("a noVNC WebSocket closed: its user may no longer have it");
                    }
                }
            }
            (Err(error), _) | (_, Err(error)) => tracing::info!(%error, "a noVNC WebSocket could not be joined"),
        }
    });
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_novncs_own_bytes_are_passed_on_with_the_type_of_their_name() {
        let page = include_bytes!("static/novnc-1.3.0.sha256");
        assert_eq!(NOVNC_FILES.len(), 117, "the list has every file of the package");
        assert!(NOVNC_FILES.contains_key("vnc.html") && NOVNC_FILES.contains_key("app/ui.js"));
        assert_eq!(known_file("vnc.html", page), None, "other bytes under a known name");
        assert_eq!(known_file("evil.html", b""), None, "a name noVNC does not have");
        for name in NOVNC_PAGES {
            assert_eq!(
                known_file(name, NOVNC_PAGE),
                Some("text/html; charset=utf-8"),
                "the page's own copy is noVNC's"
            );
        }
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert!(NOVNC_FILES.values().all(|hash| hash.len() == 64 && *hash != empty));
    }
}
