//! Why a dashboard request is not answered with what it asked for ([`PageError`]), and the answer ([`answer_errors`]).
//! A handler only says what went wrong — `?` on a domain error says "refused" — and the answer is written by a layer
//! that knows the request: the visitor's language, their session and the instance the path names.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;

use super::DashboardState;
use super::i18n::Translation;
use super::paths;
use super::reply::{message, see_other, session_id, text_for};
use crate::lifecycle::Error;

/// A text of the dashboard, picked from the translation of the visitor's language once that is known.
pub type Localized = fn(&'static Translation) -> &'static str;

/// What a dashboard handler answers instead of its page; [`answer_errors`] turns it into a page that says why (in the
/// visitor's language) or a redirect.
#[derive(Debug)]
pub enum PageError {
    /// Not signed in to the instance `instance_id`, or no longer: a page is sent to the instance's sign-in page (303),
    /// a part of a page (a fragment, a stream) is refused (401), since a redirect would fill it with a sign-in form.
    SignIn {
        /// The instance whose sign-in page it is.
        instance_id: String,
        /// Whether a whole page was asked for.
        page: bool,
    },
    /// The signed-in visitor may not have this (403), and why.
    Forbidden(Localized),
    /// There is no such thing for the signed-in visitor (404), and what.
    NotFound(Localized),
    /// The cluster is away (503).
    Unavailable,
    /// Kubernetes or the broker refused a request made as the signed-in user: 503 when the cluster is away; otherwise
    /// most often their token expired or was revoked, so their session ends and they are sent to sign in again.
    Refused(Error),
    /// Any other page that only says something.
    Message {
        /// Its status.
        status: StatusCode,
        /// What it says.
        words: Localized,
        /// Whether it offers to sign out (the visitor is signed in).
        signed_in: bool,
    },
}

impl PageError {
    /// A page that only says `words` with `status`, to a signed-in visitor.
    pub fn signed_in(status: StatusCode, words: Localized) -> PageError {
        PageError::Message { status, words, signed_in: true }
    }

    /// A page that only says `words` with `status`, to a visitor who is not signed in (the sign-in pages).
    pub fn anonymous(status: StatusCode, words: Localized) -> PageError {
        PageError::Message { status, words, signed_in: false }
    }

    /// The answer to `request`.
    fn answer(&self, state: &DashboardState, request: &Asked) -> Response {
        let text = request.text;
        match self {
            PageError::SignIn { instance_id, page: true } => {
                see_other(&paths::Login { instance_id: instance_id.clone() }.to_string())
            }
            PageError::SignIn { page: false, .. } => message(StatusCode::UNAUTHORIZED, text, text.not_found, false),
            PageError::Forbidden(words) => message(StatusCode::FORBIDDEN, text, words(text), true),
            PageError::NotFound(words) => message(StatusCode::NOT_FOUND, text, words(text), true),
            PageError::Unavailable | PageError::Refused(Error::Unavailable { .. }) => {
                message(StatusCode::SERVICE_UNAVAILABLE, text, text.unavailable, true)
            }
            PageError::Refused(error) => {
                let instance_id = request.instance_id.as_deref();
                tracing::warn!(instance_id, %error, "a dashboard read as the signed-in user failed; ending the session");
                if let Some(id) = &request.session_id {
                    state.sessions.end(id);
                }
                match instance_id {
                    Some(instance_id) => see_other(&paths::Login { instance_id: instance_id.to_owned() }.to_string()),
                    None => message(StatusCode::UNAUTHORIZED, text, text.not_found, false),
                }
            }
            PageError::Message { status, words, signed_in } => message(*status, text, words(text), *signed_in),
        }
    }
}

impl From<Error> for PageError {
    fn from(error: Error) -> PageError {
        PageError::Refused(error)
    }
}

impl IntoResponse for PageError {
    /// The answer without its page yet, for [`answer_errors`] to write; what the handler adds to it (a cookie, a
    /// header) is kept.
    fn into_response(self) -> Response {
        let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
        response.extensions_mut().insert(Arc::new(self));
        response
    }
}

/// What the answer to an error needs to know of the request.
struct Asked {
    /// The words in the visitor's language.
    text: &'static Translation,
    /// The session the visitor's cookie names, if any.
    session_id: Option<String>,
    /// The instance the path names, if any.
    instance_id: Option<String>,
}

/// Writes the answer of every [`PageError`] a handler returned; any other answer passes as it is.
pub async fn answer_errors(
    State(state): State<DashboardState>,
    params: Result<Path<HashMap<String, String>>, PathRejection>,
    request: Request,
    next: Next,
) -> Response {
    let asked = Asked {
        text: text_for(request.headers()),
        session_id: session_id(&CookieJar::from_headers(request.headers())),
        instance_id: params.ok().and_then(|Path(mut params)| params.remove("instance_id")),
    };
    let response = next.run(request).await;
    let Some(error) = response.extensions().get::<Arc<PageError>>().cloned() else { return response };
    let mut answer = error.answer(&state, &asked);
    for (name, value) in response.headers() {
        answer.headers_mut().append(name, value.clone());
    }
    answer
}
