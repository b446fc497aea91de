//! GET /instances/:instance_id/live — the stream (Server-Sent Events) that keeps a signed-in user's pages live: one
//! event per kind that changed in their namespace, named after the kind and carrying nothing else, so a viewer learns
//! no more than "something of this kind changed" and re-reads it as themselves. Only kinds Kubernetes lets them list
//! and watch there (asked with their own client) are subscribed to; the stream ends when the page goes away, the
//! session ends or the user may no longer watch (see [`super::open_streams`]).

use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};

use super::DashboardState;
use super::live::Subscription;
use super::open_streams::{self, Needs};
use super::page_error::PageError;
use super::paths;
use super::respond::{PartVisit, Visit};
use crate::tenant::objects::{self, Kind};

/// GET /instances/:instance_id/live.
pub async fn live(
    _: paths::Live,
    State(state): State<DashboardState>,
    visit: PartVisit,
) -> Result<Response, PageError> {
    let Visit { session_id: id, session, instance_id, .. } = visit;
    // Before anything is asked of the apiserver: a user over their limit costs nothing more than this answer.
    let Some(slot) = state.streams.open(&id, &session.tenant.username) else {
        return Err(open_streams::too_many());
    };
    let namespace = session.tenant.namespace.clone();
    let reviews = Kind::ALL.map(|kind| objects::may_watch(&session.client, &namespace, kind));
    let allowed = match futures::future::try_join_all(reviews).await {
        Ok(allowed) => allowed,
        Err(error) => {
            tracing::warn!(instance_id, %error, "could not ask what the signed-in user may watch");
            return Err(PageError::Unavailable);
        }
    };
    let kinds: Vec<Kind> =
        Kind::ALL.into_iter().zip(allowed).filter_map(|(kind, allowed)| allowed.then_some(kind)).collect();
    if kinds.is_empty() {
        return Err(PageError::Forbidden(|text| text.live_not_allowed));
    }
    if !state.hub.is_watched(&namespace) {
        // Instances made before the live view have no watch RoleBinding for the broker yet.
        if let Err(error) = state.broker.allow_dashboard_watch(&instance_id).await {
            tracing::error!(instance_id, %error, "the broker could not grant itself the dashboard's watch");
            return Err(PageError::Unavailable);
        }
    }
    let first = kinds[0];
    let needs = Needs {
        verb: "watch",
        group: first.api_resource().group,
        resource: first.as_str().to_owned(),
        subresource: None,
    };
    let subscription = state.hub.subscribe(&namespace, kinds);
    let ended = open_streams::revoked(state.clone(), id, needs, slot);
    Ok(Sse::new(events(subscription).take_until(ended)).keep_alive(KeepAlive::default()).into_response())
}

/// The events of `subscription`: one per kind that changed, named after it.
fn events(subscription: Subscription) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold(subscription, |mut subscription| async move {
        let kinds = subscription.next().await?;
        let events = kinds.into_iter().map(|kind| Ok(Event::default().event(kind.as_str()).data(kind.as_str())));
        Some((futures::stream::iter(events.collect::<Vec<_>>()), subscription))
    })
    .flatten()
}
