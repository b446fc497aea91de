//! What protects every dashboard answer: headers that keep pages from running anything but their own files, from
//! being framed and from leaking their URL, and a refusal of any state-changing request that does not come from the
//! dashboard's own pages (cross-site request forgery), decided by `Origin` or `Sec-Fetch-Site`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Scripts, styles, forms and event streams from the dashboard only (its vendored htmx: no inline script, no eval),
/// never in a frame.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// `scheme://host[:port]` of a base URL, lower-cased, as browsers send it in `Origin`.
pub fn origin_of(base_url: &str) -> String {
    let (scheme, rest) = base_url.split_once("://").unwrap_or(("http", base_url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    format!("{scheme}://{authority}").to_ascii_lowercase()
}

/// Whether a request that may change something comes from the dashboard's own pages: its `Origin` is the dashboard's,
/// or, without an `Origin` that says where (absent, or `null`, which is what browsers send for a form post from a page
/// with `Referrer-Policy: no-referrer`), the browser says `Sec-Fetch-Site: same-origin`.
pub fn is_same_origin(headers: &axum::http::HeaderMap, origin: &str) -> bool {
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    match text("origin").filter(|sent| *sent != "null") {
        Some(sent) => sent.eq_ignore_ascii_case(origin),
        None => text("sec-fetch-site") == Some("same-origin"),
    }
}

/// Refuses (403) every request but GET, HEAD and OPTIONS that does not come from the dashboard's own origin — and a
/// WebSocket handshake too, though a GET: it opens a two-way channel (a session's noVNC) that another site's page could
/// otherwise open with the visitor's cookie.
pub async fn same_origin_writes(State(origin): State<Arc<String>>, request: Request, next: Next) -> Response {
    let upgrade = request.headers().contains_key(header::UPGRADE);
    let safe = matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) && !upgrade;
    if !safe && !is_same_origin(request.headers(), &origin) {
        return (StatusCode::FORBIDDEN, "cross-site request refused: send it from the dashboard's own pages")
            .into_response();
    }
    next.run(request).await
}

/// Adds the security headers to every answer; pages hold a tenant's data, so nothing is cached. An answer that set its
/// own policy or framing keeps it (a session's stream, which the session page frames).
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.entry(header::CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.entry(header::X_FRAME_OPTIONS).or_insert(HeaderValue::from_static("DENY"));
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (header::HeaderName::from_static(name), HeaderValue::from_static(value)))
            .collect()
    }

    #[test]
    fn the_origin_is_scheme_and_authority() {
        assert_eq!(origin_of("https://Dash.Example.com/base/"), "https://dash.example.com");
        assert_eq!(origin_of("http://127.0.0.1:8081"), "http://127.0.0.1:8081");
    }

    #[test]
    fn only_the_dashboards_own_origin_may_write() {
        let own = "http://127.0.0.1:8081";
        assert!(is_same_origin(&headers(&[("origin", "http://127.0.0.1:8081")]), own));
        assert!(is_same_origin(&headers(&[("sec-fetch-site", "same-origin")]), own));
        let no_referrer_post = headers(&[("origin", "null"), ("sec-fetch-site", "same-origin")]);
        assert!(is_same_origin(&no_referrer_post, own), "a form post from a no-referrer page");
        let sandboxed = headers(&[("origin", "null"), ("sec-fetch-site", "cross-site")]);
        assert!(!is_same_origin(&sandboxed, own));
        assert!(!is_same_origin(&headers(&[("origin", "null")]), own));
        assert!(!is_same_origin(&headers(&[("origin", "https://evil.example")]), own));
        let lying = headers(&[("origin", "https://evil.example"), ("sec-fetch-site", "same-origin")]);
        assert!(!is_same_origin(&lying, own), "a foreign Origin decides");
        assert!(!is_same_origin(&headers(&[("sec-fetch-site", "cross-site")]), own));
        assert!(!is_same_origin(&HeaderMap::new(), own), "no proof of origin, no write");
    }
}
