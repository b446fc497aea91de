//! Who the visitor of a dashboard page is (from the session cookie), and the extractors every handler takes: a
//! signed-in [`Visit`] of an instance's pages, or the refusal of one.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Path};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;

use super::DashboardState;
use super::i18n::Translation;
use super::page_error::PageError;
use super::reply::{session_id, text_for};
use super::user_sessions::Session;
use crate::lifecycle::Error;

/// Who the visitor is for an instance's pages.
pub enum Visitor {
    /// Signed in to this instance.
    SignedIn(String, Box<Session>),
    /// Signed in to another instance: nothing of this one is theirs.
    OfAnotherInstance,
    /// Not signed in.
    Anonymous,
}

/// Who the visitor of `instance_id`'s pages is, from their session cookie.
pub fn visitor(state: &DashboardState, jar: &CookieJar, instance_id: &str) -> Visitor {
    let Some(id) = session_id(jar) else { return Visitor::Anonymous };
    match state.sessions.find(&id) {
        Some(session) if session.tenant.instance_id == instance_id => Visitor::SignedIn(id, Box::new(session)),
        Some(_) => Visitor::OfAnotherInstance,
        None => Visitor::Anonymous,
    }
}

/// The signed-in session of `instance_id`'s pages, or why the visitor has none: a visitor of another instance is
/// refused (403); one not signed in is to sign in (see [`PageError::SignIn`]: a page, `page`, is sent there).
pub fn signed_in(
    state: &DashboardState,
    jar: &CookieJar,
    instance_id: &str,
    page: bool,
) -> Result<(String, Box<Session>), PageError> {
    match visitor(state, jar, instance_id) {
        Visitor::SignedIn(id, session) => Ok((id, session)),
        Visitor::OfAnotherInstance => Err(PageError::Forbidden(|text| text.other_instance)),
        Visitor::Anonymous => Err(PageError::SignIn { instance_id: instance_id.to_owned(), page }),
    }
}

/// Whether the session `session_id` may go on: when it is due (see [`super::user_sessions::Sessions::due_for_check`]), the
/// broker checks that its identity is unchanged (the same ServiceAccount, the same role), which is how an unbind, a
/// member's removal or a change of role made through another replica reaches this one; if not, every session of that
/// identity here ends. A check the apiserver does not answer lets the session go on: what it reads as the user is
/// refused anyway if the identity is gone.
pub async fn still_signed_in(state: &DashboardState, session_id: &str, session: &Session) -> bool {
    if !state.sessions.due_for_check(session_id) {
        return !session.is_ended();
    }
    match state.broker.still_signed_in(&session.tenant, &session.credential).await {
        Ok(true) => true,
        Ok(false) => {
            let ended = state.sessions.end_identity(&session.tenant.username);
            tracing::info!(
                instance_id = session.tenant.instance_id,
                user = session.tenant.username,
                sessions = ended,
                "dashboard sessions ended: the identity was removed or its role changed"
            );
            false
        }
        Err(error) => {
            tracing::warn!(instance_id = session.tenant.instance_id, %error, "a session's identity could not be checked");
            !session.is_ended()
        }
    }
}

/// The status and the words to answer a refused request with: what Kubernetes or the broker said about the user's own
/// request is theirs to read; an internal failure is not explained.
pub fn refusal(text: &'static Translation, error: &Error) -> (StatusCode, String) {
    let status = match error {
        Error::BadRequest(_) => StatusCode::BAD_REQUEST,
        Error::Denied { .. } => StatusCode::FORBIDDEN,
        Error::NotFound(_) | Error::Gone(_) => StatusCode::NOT_FOUND,
        Error::Conflict(_) | Error::Concurrency(_) => StatusCode::CONFLICT,
        Error::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        Error::Unprocessable { .. } | Error::MaintenanceInfoConflict(_) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let said = match error {
        Error::Internal { .. } => text.unavailable.to_owned(),
        other => other.to_string(),
    };
    (status, said)
}

/// A signed-in visit to one instance's pages: the visitor's session and its id, the instance the path names, and the
/// words for their language. A handler that takes one runs only for a visitor signed in to that instance; anyone else
/// gets [`signed_in`]'s answer — for a page (`PAGE`) the sign-in page, for a fragment or a stream 401.
pub struct Visit<const PAGE: bool> {
    /// The session's id (to end it when the user's token no longer works).
    pub session_id: String,
    /// The session.
    pub session: Box<Session>,
    /// The instance in the path (`/instances/{instance_id}/...`).
    pub instance_id: String,
    /// The words in the visitor's language.
    pub text: &'static Translation,
}

/// A visit to a whole page.
pub type PageVisit = Visit<true>;
/// A visit to a part of a page (a fragment htmx swaps in) or a stream.
pub type PartVisit = Visit<false>;

impl<const PAGE: bool> FromRequestParts<DashboardState> for Visit<PAGE> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &DashboardState) -> Result<Self, Response> {
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let text = text_for(&parts.headers);
        let Some(instance_id) = params.get("instance_id").cloned() else {
            return Err(PageError::anonymous(StatusCode::NOT_FOUND, |text| text.not_found).into_response());
        };
        let jar = CookieJar::from_headers(&parts.headers);
        let (session_id, session) = signed_in(state, &jar, &instance_id, PAGE).map_err(IntoResponse::into_response)?;
        if !still_signed_in(state, &session_id, &session).await {
            return Err(PageError::SignIn { instance_id, page: PAGE }.into_response());
        }
        Ok(Visit { session_id, session, instance_id, text })
    }
}
