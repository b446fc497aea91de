//! The long-lived streams a signed-in user holds open — live pages (Server-Sent Events), followed logs, noVNC
//! WebSockets — limited and re-checked. Limited: at most so many per sign-in and per identity (over all of its
//! sign-ins), so that one user cannot hold the server's tasks, connections and memory (429 beyond, see
//! [`OpenStreams::open`]). Ended with the sign-in: at once when it ends on this replica (an unbind, a member's removal
//! or a role change made here ends every sign-in of that identity), and otherwise re-checked every [`RECHECK`], as the
//! user, that the sign-in still stands and Kubernetes still lets them do what the stream does; a revoked token (401)
//! or a lost role (403, or a review that says no) ends it, on whichever replica serves it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;

use super::DashboardState;
use super::page_error::PageError;
use super::respond::still_signed_in;
use super::user_sessions::Session;
use crate::k8s::access::{self, Permission};

/// How often an open stream checks that its user may still have it.
pub const RECHECK: Duration = Duration::from_secs(15);

/// The answer to a stream refused because its user holds as many open as they may (429).
pub fn too_many() -> PageError {
    PageError::signed_in(StatusCode::TOO_MANY_REQUESTS, |text| text.too_many_streams)
}

/// How many streams are open, per sign-in and per identity.
pub struct OpenStreams {
    counts: Mutex<HashMap<Holder, usize>>,
    per_session: usize,
    per_identity: usize,
}

/// Who holds streams: one sign-in (its session id), or one identity (its Kubernetes user name) over all its sign-ins.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Holder {
    Session(String),
    Identity(String),
}

impl OpenStreams {
    /// No stream open yet; at most `per_session` per sign-in and `per_identity` per identity.
    pub fn new(per_session: usize, per_identity: usize) -> Arc<OpenStreams> {
        Arc::new(OpenStreams { counts: Mutex::default(), per_session, per_identity })
    }

    /// A slot for one more stream of sign-in `session_id` of `identity`, held until it is dropped; `None` when either
    /// already holds as many as it may.
    pub fn open(self: &Arc<Self>, session_id: &str, identity: &str) -> Option<StreamSlot> {
        let holders = [Holder::Session(session_id.to_owned()), Holder::Identity(identity.to_owned())];
        let mut counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let full = |holder: &Holder, max: usize| counts.get(holder).copied().unwrap_or_default() >= max;
        if full(&holders[0], self.per_session) || full(&holders[1], self.per_identity) {
            return None;
        }
        for holder in &holders {
            *counts.entry(holder.clone()).or_default() += 1;
        }
        Some(StreamSlot { streams: self.clone(), holders })
    }
}

/// One open stream's place in the count, given back when the stream ends (the slot is dropped with it).
pub struct StreamSlot {
    streams: Arc<OpenStreams>,
    holders: [Holder; 2],
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut counts = self.streams.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for holder in &self.holders {
            if let Some(count) = counts.get_mut(holder) {
                *count -= 1;
                if *count == 0 {
                    counts.remove(holder);
                }
            }
        }
    }
}

/// What a stream lets its user do, asked again at every re-check: `verb` on `resource` (of API `group`, maybe its
/// `subresource`) in their namespace.
#[derive(Debug, Clone)]
pub struct Needs {
    /// `watch`, `get`...
    pub verb: &'static str,
    /// The API group ("" for the core group).
    pub group: String,
    /// The resource, plural.
    pub resource: String,
    /// `log`, `proxy`... or none.
    pub subresource: Option<&'static str>,
}

/// Resolves when the stream of sign-in `session_id` must end: at once when the sign-in ends on this replica (signed
/// out, expired, ended by an unbind, a member's removal or a role change), and at the latest at the next re-check
/// when another replica made that change or Kubernetes no longer lets the user do what `needs` says. Holds `slot`
/// until then (or until the stream is dropped with it), so a stream and its place in the count go together.
pub async fn revoked(state: DashboardState, session_id: String, needs: Needs, slot: StreamSlot) {
    let _slot = slot;
    let Some(session) = state.sessions.find(&session_id) else { return };
    tokio::select! {
        () = session.ended() => tracing::info!(user = session.tenant.username, "a dashboard stream ended: its sign-in ended"),
        () = rechecked_until_refused(&state, &session_id, &session, &needs) => {}
    }
}

/// Every [`RECHECK`], that the sign-in is still good (the identity unchanged, as [`still_signed_in`] checks) and that
/// Kubernetes still lets its user do what `needs` says; returns when either is no longer so.
async fn rechecked_until_refused(state: &DashboardState, session_id: &str, session: &Session, needs: &Needs) {
    let mut checks = tokio::time::interval_at(tokio::time::Instant::now() + RECHECK, RECHECK);
    let user = session.tenant.username.as_str();
    loop {
        checks.tick().await;
        if !still_signed_in(state, session_id, session).await {
            tracing::info!(user, "a dashboard stream ended: its sign-in ended");
            return;
        }
        let permission = Permission { verb: needs.verb, group: &needs.group, resource: &needs.resource };
        let namespace = &session.tenant.namespace;
        match access::allowed_on(&session.client, namespace, permission, needs.subresource).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(user, ?needs, "a dashboard stream ended: no longer allowed");
                return;
            }
            Err(kube::Error::Api(status)) if status.code == 401 || status.code == 403 => {
                tracing::info!(user, code = status.code, "a dashboard stream ended: refused");
                return;
            }
            // The apiserver is away: the stream's own upstream fails with it, or goes on when it is back.
            Err(error) => tracing::debug!(%error, "a dashboard stream's re-check could not be made"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_counted_per_sign_in_and_per_identity_and_freed_when_they_end() {
        let streams = OpenStreams::new(2, 3);
        let a1 = streams.open("a", "kim").expect("first of a");
        let a2 = streams.open("a", "kim").expect("second of a");
        assert!(streams.open("a", "kim").is_none(), "a third for one sign-in");
        let b1 = streams.open("b", "kim").expect("another sign-in of kim");
        assert!(streams.open("b", "kim").is_none(), "a fourth for one identity");
        let other = streams.open("c", "lee").expect("another identity is not held back by kim");
        drop(a1);
        let a3 = streams.open("a", "kim").expect("a slot is freed when its stream ends");
        drop((a2, a3, b1, other));
        assert!(streams.counts.lock().expect("lock").is_empty(), "nothing kept of holders with no stream");
    }
}
