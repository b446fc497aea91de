//! GET /instances/:instance_id/live — the stream (Server-Sent Events) that keeps a signed-in user's pages live: one
//! event per kind that changed in their namespace, named after the kind and carrying nothing else, so a viewer learns
//! no more than "something of this kind changed" and re-reads it as themselves. Only kinds Kubernetes lets them list
//! and watch there (asked with their own client) are subscribed to; the stream ends when the page goes away or the
//! session ends.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};

use super::DashboardState;
use super::live::Subscription;
use super::respond::{PartVisit, Visit, message};
use crate::broker::workloads_view::{self, Kind};

/// How often a stream checks that its session still lives (signed out, expired: the stream ends).
const SESSION_CHECK: Duration = Duration::from_secs(15);

/// GET /instances/:instance_id/live.
pub async fn live(State(state): State<DashboardState>, visit: PartVisit) -> Response {
    let Visit { session_id: id, session, instance_id, text } = visit;
    let namespace = session.tenant.namespace.clone();
    let reviews = Kind::ALL.map(|kind| workloads_view::may_watch(&session.client, &namespace, kind));
    let allowed = match futures::future::try_join_all(reviews).await {
        Ok(allowed) => allowed,
        Err(error) => {
            tracing::warn!(instance_id, %error, "could not ask what the signed-in user may watch");
            return message(StatusCode::SERVICE_UNAVAILABLE, text, text.unavailable, true);
        }
    };
    let kinds: Vec<Kind> =
        Kind::ALL.into_iter().zip(allowed).filter_map(|(kind, allowed)| allowed.then_some(kind)).collect();
    if kinds.is_empty() {
        return message(StatusCode::FORBIDDEN, text, text.live_not_allowed, true);
    }
    if !state.hub.is_watched(&namespace) {
        // Instances made before the live view have no watch RoleBinding for the broker yet.
        if let Err(error) = state.broker.allow_dashboard_watch(&instance_id).await {
            tracing::error!(instance_id, %error, "the broker could not grant itself the dashboard's watch");
            return message(StatusCode::SERVICE_UNAVAILABLE, text, text.unavailable, true);
        }
    }
    let subscription = state.hub.subscribe(&namespace, kinds);
    Sse::new(events(state, id, subscription)).keep_alive(KeepAlive::default()).into_response()
}

/// The events of `subscription`, until the session `session_id` ends.
fn events(
    state: DashboardState,
    session_id: String,
    subscription: Subscription,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let checks = tokio::time::interval_at(tokio::time::Instant::now() + SESSION_CHECK, SESSION_CHECK);
    futures::stream::unfold((subscription, checks), move |(mut subscription, mut checks)| {
        let state = state.clone();
        let session_id = session_id.clone();
        async move {
            loop {
                tokio::select! {
                    changed = subscription.next() => {
                        let kinds = changed?;
                        let events = kinds.into_iter().map(|kind| Ok(Event::default().event(kind.as_str()).data(kind.as_str())));
                        return Some((futures::stream::iter(events.collect::<Vec<_>>()), (subscription, checks)));
                    }
                    _ = checks.tick() => {
                        state.sessions.find(&session_id)?;
                    }
                }
            }
        }
    })
    .flatten()
}
