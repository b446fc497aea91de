//! The OSB API over several clusters: every request about an instance goes, as it came, to the OSB routes of the
//! cluster it lives on (each over that cluster's own broker); a provision of a new instance first asks the fleet where
//! it goes. Everything else (the catalog, requests for unknown ids) goes to the home cluster's routes.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;

use super::OsbError;
use super::middleware::{self, Credentials};
use crate::lifecycle::fleet::{Fleet, ProvisionWish};

/// The fleet and each cluster's OSB routes, by cluster name.
struct Dispatch {
    fleet: Arc<Fleet>,
    routes: HashMap<String, Router>,
    home: Router,
    body_limit: usize,
}

/// Routes each request about an instance to `routes[cluster]` (each cluster's OSB routes), behind `credentials`
/// (so that no one unauthenticated makes the fleet look anything up); the rest to the home cluster's.
pub fn router(
    fleet: Arc<Fleet>,
    routes: HashMap<String, Router>,
    credentials: Arc<Credentials>,
    body_limit: usize,
) -> Router {
    let home = routes.get(&fleet.home().name).cloned().expect("the home cluster's routes");
    Router::new()
        .fallback(instance)
        .with_state(Arc::new(Dispatch { fleet, routes, home, body_limit }))
        .layer(axum::middleware::from_fn_with_state(credentials, middleware::authenticate))
}

/// The instance id a request path is about (decoded), and what follows it, when the path starts with `prefix` (such
/// as `/v2/service_instances/`). Read from the path itself: a path parameter taken here would stay in the request
/// and confuse the routes it is forwarded to.
pub(crate) fn instance_in_path<'a>(path: &'a str, prefix: &str) -> Option<(String, &'a str)> {
    let tail = path.strip_prefix(prefix)?;
    let (segment, rest) = tail.split_once('/').unwrap_or((tail, ""));
    let id = percent_encoding::percent_decode_str(segment).decode_utf8().ok()?;
    (!id.is_empty()).then(|| (id.into_owned(), rest))
}

/// One request, forwarded to the routes of the cluster its instance lives on (the home's when about no instance).
async fn instance(State(dispatch): State<Arc<Dispatch>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let Some((instance_id, rest)) = instance_in_path(&path, "/v2/service_instances/") else {
        return dispatch.home.clone().oneshot(request).await.unwrap_or_else(|never| match never {});
    };
    let provision = request.method() == Method::PUT && rest.is_empty();
    let (request, member) = if provision {
        let (parts, body) = request.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, dispatch.body_limit).await else {
            return OsbError::PayloadTooLarge(dispatch.body_limit).into_response();
        };
        // A body that is not what a provision takes goes to the home, whose routes say what is wrong with it.
        let wish: ProvisionWish = serde_json::from_slice(&bytes).unwrap_or_default();
        match dispatch.fleet.place(&instance_id, &wish).await {
            Ok(member) => (Request::from_parts(parts, Body::from(bytes)), member),
            Err(error) => return OsbError::from(error).into_response(),
        }
    } else {
        match dispatch.fleet.locate(&instance_id).await {
            Ok(member) => (request, member),
            Err(error) => return OsbError::from(error).into_response(),
        }
    };
    let deleting = request.method() == Method::DELETE && rest.is_empty();
    let polling = rest == "last_operation";
    let routes = dispatch.routes.get(&member.name).cloned().expect("every cluster's routes");
    let answer = routes.oneshot(request).await.unwrap_or_else(|never| match never {});
    let status = answer.status();
    // Where it lived is forgotten once it is gone there: a refused provision, a finished delete.
    let gone = (provision && !status.is_success())
        || (deleting && matches!(status, StatusCode::OK | StatusCode::GONE))
        || (polling && status == StatusCode::GONE);
    if gone {
        dispatch.fleet.forget_if_gone(&instance_id, &member).await;
    }
    answer
}
