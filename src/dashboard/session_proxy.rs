//! A streaming session's web client served through the dashboard, for sessions without an Ingress: each request (the
//! page, its files, its WebSocket) goes to the apiserver's service proxy of that session's Service and stream port
//! only, made with the signed-in user's own client — so Kubernetes' RBAC decides (`get services/proxy`: the `edit` and
//! `admin` roles, not `view`), and nothing else of the cluster is reachable (see
//! [`crate::tenant::streaming::stream_path`]). The WebSocket is tunnelled as bytes once both sides agreed on the
//! upgrade: the browser's handshake goes to the session as it came, and its answer back.
//!
//! What the session's container serves lands on the dashboard's own origin, and that container is the tenant's: an
//! editor could serve a page of their own there and have it run, with the dashboard's authority, in the browser of an
//! admin who clicks Open. So a file is passed on only when it is byte for byte a file of the one web client the
//! dashboard knows for the session's protocol ([`WebClient`]: noVNC's in [`super::novnc`], Selkies' in
//! [`super::selkies`]), with the content type of its name, never the container's headers or error pages; the few
//! answers of its API the client needs are the dashboard's own. Only the WebSocket's bytes (a stream protocol, which the
//! client decodes and never runs) come from the container as they are.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;

use super::DashboardState;
use super::open_streams::{self, Needs, StreamSlot};
use super::page_error::{Localized, PageError};
use super::respond::{PartVisit, Visit};
use crate::lifecycle::Error;
use crate::tenant;

/// How long the session's Service may take to answer through the apiserver's proxy (a stopped or starting session,
/// an apiserver that is retried) before the visitor is told it does not answer.
const UPSTREAM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// How long a file may take to arrive once its answer started.
const FILE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The largest file passed on (the biggest of either client, a bundled script, is about a megabyte).
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

/// The SHA-256 of every file of a web client: path (relative to its web root) → hex.
pub type FileList = std::sync::LazyLock<std::collections::HashMap<&'static str, &'static str>>;

/// Reads a list made with `find -L . -type f | LC_ALL=C sort | xargs sha256sum | sed 's|  ./|  |'`.
pub fn file_list(list: &'static str) -> std::collections::HashMap<&'static str, &'static str> {
    list.lines().filter_map(|line| line.split_once("  ").map(|(hash, path)| (path, hash))).collect()
}

/// An answer of the dashboard's own to a path of the client's API: asked of the session first (so that the user's
/// RBAC and the session's state decide as for a file), then answered with fixed bytes rather than the container's.
pub struct OwnAnswer {
    /// The path the browser asks for.
    pub asset: &'static str,
    /// The path asked of the session instead.
    pub upstream: &'static str,
    /// The status answered when the session answered 200.
    pub status: StatusCode,
    /// The body and its content type.
    pub body: (&'static [u8], &'static str),
}

/// One web client the dashboard passes on, and how its WebSocket is reached.
pub struct WebClient {
    /// What it is, for the log ("noVNC 1.3.0").
    pub name: &'static str,
    /// Its files.
    pub files: &'static FileList,
    /// Its page, answered from the dashboard's own copy: the apiserver's proxy rewrites the links of an HTML page it
    /// passes on, so the page never arrives as it was sent.
    pub page: &'static [u8],
    /// The names its page has.
    pub pages: &'static [&'static str],
    /// The path of its WebSocket.
    pub socket: &'static str,
    /// The subprotocols presenting the session's password on the WebSocket, given it; `None`: the browser presents
    /// it itself (noVNC's VNC authentication).
    pub credential: Option<fn(&str) -> Vec<String>>,
    /// Answers of the dashboard's own (see [`OwnAnswer`]).
    pub own: &'static [OwnAnswer],
    /// What the visitor is told when the session serves another client.
    pub unknown: Localized,
}

/// GET one file (or the WebSocket) of `client` of the session `session_id`, for the visitor.
pub async fn pass(
    state: &DashboardState,
    client: &'static WebClient,
    (instance_id, session_id, asset): (&str, &str, &str),
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
    let own = client.own.iter().find(|own| !upgrade && own.asset == asset);
    let upstream = Upstream { session_id, asset: own.map_or(asset, |own| own.upstream), upgrade, client };
    let asked = tokio::time::timeout(UPSTREAM_TIMEOUT, ask_session(state, &session, upstream, headers));
    let answer = match asked.await {
        Ok(Ok(answer)) => answer,
        Ok(Err(Asked::NotFound)) => return Err(PageError::NotFound(|text| text.not_found)),
        Ok(Err(Asked::Refused)) => return Err(PageError::Forbidden(|text| text.session_proxy_refused)),
        Ok(Err(Asked::Failed(error))) => {
            tracing::info!(instance_id, session_id, error, client = client.name, "a session could not be reached");
            return Err(PageError::Unavailable);
        }
        Err(_) => {
            tracing::info!(instance_id, session_id, client = client.name, "a session did not answer within 5 s");
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
        // No ready pod behind the Service (stopped, starting) or the session's server not answering.
        return Err(PageError::signed_in(StatusCode::BAD_GATEWAY, |text| text.session_not_running));
    }
    if let Some(own) = own {
        if status != StatusCode::OK {
            return Err(PageError::NotFound(|text| text.not_found));
        }
        let (body, content_type) = own.body;
        return Ok((own.status, [(header::CONTENT_TYPE, content_type)], body).into_response());
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
            tracing::info!(instance_id, session_id, %error, client = client.name, "a file could not be passed on");
            return Err(PageError::signed_in(StatusCode::BAD_GATEWAY, |text| text.session_not_running));
        }
    };
    // The session's answer said it is up and the user may reach it: its page is the dashboard's own copy.
    let body = if client.pages.contains(&asset) { axum::body::Bytes::from_static(client.page) } else { body };
    let Some(content_type) = known_file(client.files, asset, &body) else {
        tracing::warn!(
            instance_id,
            session_id,
            asset,
            client = client.name,
            "a session served an unknown file; refused"
        );
        return Err(PageError::signed_in(StatusCode::BAD_GATEWAY, client.unknown));
    };
    let mut response = (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response();
    if let Some(etag) = etag {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}

/// What is asked of a session.
struct Upstream<'a> {
    session_id: &'a str,
    asset: &'a str,
    upgrade: bool,
    client: &'static WebClient,
}

/// Why a session could not be asked.
enum Asked {
    /// No such session in the visitor's virtual cluster (or no such file name).
    NotFound,
    /// Kubernetes does not let the visitor read the session's password.
    Refused,
    /// The broker or the apiserver failed; what to log.
    Failed(String),
}

/// Asks the session for its file or WebSocket through the apiserver's service proxy, as the visitor, passing on the
/// headers a file request or a WebSocket handshake needs (and nothing else: no cookie) — and, for a client whose
/// WebSocket wants it, the session's password, read as the visitor, in the handshake's subprotocols (never in a URL).
async fn ask_session(
    state: &DashboardState,
    session: &super::user_sessions::Session,
    Upstream { session_id, asset, upgrade, client }: Upstream<'_>,
    headers: &axum::http::HeaderMap,
) -> Result<http::Response<kube::client::Body>, Asked> {
    let not_found = |error: Error| match error {
        Error::NotFound(_) => Asked::NotFound,
        error => Asked::Failed(error.to_string()),
    };
    let upstream =
        tenant::streaming::stream_path(&state.broker, &session.tenant, session_id, asset).await.map_err(not_found)?;
    let mut outgoing = http::Request::get(upstream);
    let passed: &[HeaderName] = if upgrade { &HANDSHAKE } else { &[header::ACCEPT, header::IF_NONE_MATCH] };
    let credential = client.credential.filter(|_| upgrade && asset == client.socket);
    for name in passed {
        if credential.is_some() && name == header::SEC_WEBSOCKET_PROTOCOL {
            continue;
        }
        for value in headers.get_all(name) {
            outgoing = outgoing.header(name, value);
        }
    }
    if let Some(credential) = credential {
        let tenant = &session.tenant;
        let password = match tenant::streaming::password(&state.broker, &session.client, tenant, session_id).await {
            Ok(password) => password,
            Err(Error::NotFound(_)) => return Err(Asked::NotFound),
            Err(Error::Denied { .. }) => return Err(Asked::Refused),
            Err(error) => return Err(Asked::Failed(error.to_string())),
        };
        // The dashboard's subprotocols replace the browser's: it offers them on the visitor's behalf.
        outgoing = outgoing.header(header::SEC_WEBSOCKET_PROTOCOL, credential(&password).join(", "));
    }
    let outgoing = outgoing.body(kube::client::Body::empty()).map_err(|_| Asked::NotFound)?;
    session.client.send(outgoing).await.map_err(|error| Asked::Failed(format!("the apiserver's proxy: {error}")))
}

/// The content type to serve `body` with when it is exactly the file `asset` of `files`; `None` for anything else.
pub fn known_file(files: &FileList, asset: &str, body: &[u8]) -> Option<&'static str> {
    use sha2::Digest;
    let expected = files.get(asset)?;
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
        "wasm" => "application/wasm",
        "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    })
}

/// Answers the browser's upgrade with the session's handshake, then carries bytes both ways until either side closes,
/// the visitor's dashboard session ends (signed out, expired, ended by an unbind or removal) or Kubernetes no longer
/// lets them reach the session (`services/proxy`); the tunnel holds one of their stream slots meanwhile. A subprotocol
/// the session chose is passed on only when the browser offered it (the dashboard may have offered its own).
fn tunnel(
    state: DashboardState,
    visitor: String,
    slot: StreamSlot,
    mut request: Request,
    mut answer: http::Response<kube::client::Body>,
) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    for name in [header::CONNECTION, header::UPGRADE, header::SEC_WEBSOCKET_ACCEPT] {
        if let Some(value) = answer.headers().get(&name) {
            response.headers_mut().insert(name, value.clone());
        }
    }
    if let Some(chosen) = answer.headers().get(header::SEC_WEBSOCKET_PROTOCOL)
        && offered(request.headers(), chosen)
    {
        response.headers_mut().insert(header::SEC_WEBSOCKET_PROTOCOL, chosen.clone());
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
                            tracing::debug!(%error, "a session's WebSocket ended");
                        }
                    }
                    () = open_streams::revoked(state, visitor, needs, slot) => {
                        tracing::info!("a session's WebSocket closed: its user may no longer have it");
                    }
                }
            }
            (Err(error), _) | (_, Err(error)) => tracing::info!(%error, "a session's WebSocket could not be joined"),
        }
    });
    response
}

/// Whether the browser's handshake `headers` offered the subprotocol `chosen`.
fn offered(headers: &axum::http::HeaderMap, chosen: &HeaderValue) -> bool {
    let chosen = chosen.to_str().unwrap_or_default().trim();
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|protocol| protocol.trim() == chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chosen_subprotocol_goes_back_only_when_the_browser_offered_it() {
        let mut headers = axum::http::HeaderMap::new();
        assert!(!offered(&headers, &HeaderValue::from_static("selkies")), "the browser offered none");
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static("binary, selkies"));
        assert!(offered(&headers, &HeaderValue::from_static("selkies")));
        assert!(offered(&headers, &HeaderValue::from_static("binary")));
        assert!(!offered(&headers, &HeaderValue::from_static("selkies.token.eA")));
    }
}
