//! Selkies of a streaming session without an Ingress (`protocol: selkies`), served through the dashboard as
//! [`super::session_proxy`] describes, under `…/sessions/:session_id/stream/`: a file is passed on only when it is byte
//! for byte a file of Selkies 2.1.0's web client (the `selkies/selkies_web/` directory of the `selkies==2.1.0` wheel,
//! what the session image installs), checked against the SHA-256 list in `static/selkies-2.1.0.sha256` (made with
//! `cd selkies/selkies_web && find -L . -type f ! -name __init__.py | LC_ALL=C sort | xargs sha256sum | sed 's|  ./|  |'`),
//! its page (`index.html`) answered from the dashboard's own copy. Of its API, the client asks `api/status` (which mode
//! the server streams in) and probes `api/websockets` before it reconnects: both are answered by the dashboard once the
//! session answered `api/status`. The WebSocket `api/websockets` is tunnelled with the session's password — read with
//! the visitor's own client, so only who may read the session's Secret gets the stream — presented by the dashboard as
//! Selkies' token subprotocol, so the browser never holds the password on this path and no URL carries it.
//!
//! The session page embeds this page in a frame of the dashboard's own origin: its answers may be framed by the
//! dashboard's pages (and no one else's), and run what Selkies' client needs: WebAssembly (its Opus decoder), workers
//! from `blob:` URLs and its audio worklet from a `data:` URL, all made by its own known scripts; nothing inline.

use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine;

use super::DashboardState;
use super::page_error::PageError;
use super::paths::StreamAsset;
use super::respond::PartVisit;
use super::session_proxy::{self, FileList, OwnAnswer, WebClient};

/// What Selkies' page may do: its own scripts (and WebAssembly, its Opus decoder; its audio worklet, which it loads
/// from a `data:` URL), workers it makes from `blob:` URLs, images and media from `blob:` and `data:`, its WebSocket
/// on the dashboard's origin; framed by the dashboard's own pages only.
const SELKIES_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval' data:; worker-src 'self' blob:; \
     img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self' 'unsafe-inline'; form-action 'none'; \
     frame-ancestors 'self'; base-uri 'none'";

/// GET /instances/:instance_id/sessions/:session_id/stream/*asset — a file of Selkies' client, or its WebSocket.
pub async fn proxy(
    State(state): State<DashboardState>,
    Path(StreamAsset { instance_id, session_id, asset }): Path<StreamAsset>,
    visit: PartVisit,
    request: Request,
) -> Result<Response, PageError> {
    let mut response =
        session_proxy::pass(&state, &SELKIES, (&instance_id, &session_id, &asset), visit, request).await?;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(SELKIES_POLICY));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("SAMEORIGIN"));
    Ok(response)
}

/// The page of the session's stream, which the session page frames.
pub const PAGE: &str = "index.html";

/// Selkies 2.1.0's client as the dashboard passes it on.
static SELKIES: WebClient = WebClient {
    name: "Selkies 2.1.0",
    files: &SELKIES_FILES,
    page: SELKIES_PAGE,
    pages: &[PAGE],
    socket: "api/websockets",
    credential: Some(token_subprotocols),
    own: &[
        OwnAnswer {
            asset: "api/status",
            upstream: "api/status",
            status: StatusCode::OK,
            body: (MODE, "application/json"),
        },
        OwnAnswer {
            asset: "api/websockets",
            upstream: "api/status",
            status: StatusCode::NO_CONTENT,
            body: (b"", "text/plain"),
        },
    ],
    unknown: |text| text.session_selkies_unknown,
};

/// `api/status` as the dashboard answers it: the session streams over its WebSocket (WebRTC needs a path to the pod
/// that the dashboard does not offer).
const MODE: &[u8] = br#"{"current_mode": "websockets", "available_modes": ["websockets"], "enable_dual_mode": false}"#;

/// Selkies 2.1.0's page (`index.html`, MPL-2.0), as the wheel has it.
const SELKIES_PAGE: &[u8] = include_bytes!("static/selkies-2.1.0-index.html");

/// Selkies 2.1.0's client's files: path (relative to its web root) → SHA-256, hex.
static SELKIES_FILES: FileList =
    FileList::new(|| session_proxy::file_list(include_str!("static/selkies-2.1.0.sha256")));

/// The subprotocols that present `password` as Selkies' session token: `selkies` and `selkies.token.<base64url>`.
fn token_subprotocols(password: &str) -> Vec<String> {
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(password);
    vec!["selkies".to_owned(), format!("selkies.token.{encoded}")]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_selkies_own_bytes_are_passed_on_with_the_type_of_their_name() {
        assert_eq!(SELKIES_FILES.len(), 2006, "the list has every file of the client");
        for name in [PAGE, "assets/index-BpOBp7NB.js", "assets/selkies-core-BGbb3Bx7.js", "manifest.json"] {
            assert!(SELKIES_FILES.contains_key(name), "{name}");
        }
        assert_eq!(session_proxy::known_file(&SELKIES_FILES, PAGE, SELKIES_PAGE), Some("text/html; charset=utf-8"));
        assert_eq!(session_proxy::known_file(&SELKIES_FILES, PAGE, b"<script>evil()</script>"), None);
        assert_eq!(session_proxy::known_file(&SELKIES_FILES, "api/status", MODE), None, "no API answer is a file");
        assert_eq!(session_proxy::known_file(&SELKIES_FILES, "__init__.py", b""), None);
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert!(SELKIES_FILES.values().all(|hash| hash.len() == 64 && *hash != empty));
    }

    #[test]
    fn the_token_is_presented_as_selkies_subprotocol_in_base64url() {
        assert_eq!(token_subprotocols("a+b/c?"), ["selkies", "selkies.token.YStiL2M_"]);
        let protocols = token_subprotocols("pw");
        assert!(protocols.iter().all(|protocol| protocol.bytes().all(|b| b.is_ascii_graphic() && b != b',')));
    }
}
