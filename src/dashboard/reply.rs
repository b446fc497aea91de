//! The shapes of a dashboard answer (a rendered page, a page that only says something, a redirect) and what a request
//! says before any session is looked up: the visitor's language and the session id their cookie carries. A leaf that
//! the visitor extractors ([`super::respond`]) and the error answers ([`super::page_error`]) both use.

use askama::Template;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;

use super::i18n::{self, Translation};

/// The session cookie's name.
pub const COOKIE: &str = "caas_dashboard_session";

/// A page that only says something (403, 404, 503).
#[derive(Template)]
#[template(path = "message.html", config = "src/dashboard/askama.toml")]
struct MessagePage {
    text: &'static Translation,
    message: &'static str,
    signed_in: bool,
}

/// The session id the request's cookie carries, if any.
pub fn session_id(jar: &CookieJar) -> Option<String> {
    jar.get(COOKIE).map(|cookie| cookie.value().to_owned()).filter(|id| !id.is_empty())
}

/// The words in the language the browser prefers.
pub fn text_for(headers: &HeaderMap) -> &'static Translation {
    i18n::negotiate(headers.get(header::ACCEPT_LANGUAGE).and_then(|value| value.to_str().ok()))
}

/// A rendered page with `status`; a template that fails to render is logged and answered 500.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response(),
        Err(error) => {
            tracing::error!(%error, "a dashboard page did not render");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered").into_response()
        }
    }
}

/// A page that only says `message`.
pub fn message(status: StatusCode, text: &'static Translation, message: &'static str, signed_in: bool) -> Response {
    render(status, &MessagePage { text, message, signed_in })
}

/// A redirect (303) to `location`, so a form post is followed by a GET.
pub fn see_other(location: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, location.to_owned())]).into_response()
}
