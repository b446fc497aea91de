//! The dashboard's scripts — vendored htmx and its Server-Sent Events extension, vendored xterm.js with its fit add-on
//! and stylesheet (see `static/README.md`), and its own scripts of a session's embedded stream and of a terminal —
//! compiled into the binary and served under versioned paths with long caching: a new version is a new path, so a cached old one is
//! never used with new pages.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// Where pages load htmx from.
pub const HTMX_PATH: &str = "/static/htmx-2.0.11.min.js";
/// Where pages load htmx's SSE extension from (after htmx).
pub const HTMX_SSE_PATH: &str = "/static/htmx-ext-sse-2.2.4.min.js";
/// Where a session page loads the script of its embedded stream.
pub const SESSION_STREAM_PATH: &str = "/static/session-stream-1.js";

/// Where the terminal page loads xterm.js from.
pub const XTERM_PATH: &str = "/static/xterm-6.0.0.min.js";
/// Where the terminal page loads xterm.js's fit add-on from (after xterm.js).
pub const XTERM_FIT_PATH: &str = "/static/xterm-addon-fit-0.11.0.min.js";
/// Where the terminal page loads xterm.js's stylesheet from.
pub const XTERM_CSS_PATH: &str = "/static/xterm-6.0.0.css";
/// Where the terminal page loads its own script (after xterm.js and its add-on).
pub const TERMINAL_PATH: &str = "/static/terminal-1.js";

const HTMX: &[u8] = include_bytes!("static/htmx-2.0.11.min.js");
const HTMX_SSE: &[u8] = include_bytes!("static/htmx-ext-sse-2.2.4.min.js");
const SESSION_STREAM: &[u8] = include_bytes!("static/session-stream-1.js");
const XTERM: &[u8] = include_bytes!("static/xterm-6.0.0.min.js");
const XTERM_FIT: &[u8] = include_bytes!("static/xterm-addon-fit-0.11.0.min.js");
const XTERM_CSS: &[u8] = include_bytes!("static/xterm-6.0.0.css");
const TERMINAL: &[u8] = include_bytes!("static/terminal-1.js");

fn script(body: &'static [u8]) -> Response {
    file("text/javascript; charset=utf-8", body)
}

fn file(content_type: &'static str, body: &'static [u8]) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=31536000, immutable")], body)
        .into_response()
}

/// GET [`HTMX_PATH`].
pub async fn htmx() -> Response {
    script(HTMX)
}

/// GET [`HTMX_SSE_PATH`].
pub async fn htmx_sse() -> Response {
    script(HTMX_SSE)
}

/// GET [`SESSION_STREAM_PATH`].
pub async fn session_stream() -> Response {
    script(SESSION_STREAM)
}

/// GET [`XTERM_PATH`].
pub async fn xterm() -> Response {
    script(XTERM)
}

/// GET [`XTERM_FIT_PATH`].
pub async fn xterm_fit() -> Response {
    script(XTERM_FIT)
}

/// GET [`XTERM_CSS_PATH`].
pub async fn xterm_css() -> Response {
    file("text/css; charset=utf-8", XTERM_CSS)
}

/// GET [`TERMINAL_PATH`].
pub async fn terminal() -> Response {
    script(TERMINAL)
}
