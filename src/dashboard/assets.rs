//! The dashboard's scripts — vendored htmx and its Server-Sent Events extension (see `static/README.md`), and its own
//! script of a session's embedded stream — compiled into the binary and served under versioned paths with long caching: a new version is a new path, so a cached old one is
//! never used with new pages.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// Where pages load htmx from.
pub const HTMX_PATH: &str = "/static/htmx-2.0.11.min.js";
/// Where pages load htmx's SSE extension from (after htmx).
pub const HTMX_SSE_PATH: &str = "/static/htmx-ext-sse-2.2.4.min.js";
/// Where a session page loads the script of its embedded stream.
pub const SESSION_STREAM_PATH: &str = "/static/session-stream-1.js";

const HTMX: &[u8] = include_bytes!("static/htmx-2.0.11.min.js");
const HTMX_SSE: &[u8] = include_bytes!("static/htmx-ext-sse-2.2.4.min.js");
const SESSION_STREAM: &[u8] = include_bytes!("static/session-stream-1.js");

fn script(body: &'static [u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        body,
    )
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
