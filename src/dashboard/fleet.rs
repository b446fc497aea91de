//! The dashboard over several clusters: each instance's pages are served by a dashboard over the broker of the
//! cluster it lives on (whose signed-in users' clients reach that cluster's apiserver), chosen per request; the rest
//! (assets, sign-out) by the home cluster's. A sign-in holds for the instance it was made for, so each cluster's
//! dashboard keeps its own sessions, and its own sign-ins under way at an identity provider: the provider's return
//! (one address for all) is offered to each cluster's dashboard until one knows it.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;

use crate::lifecycle::fleet::Fleet;

struct Dispatch {
    fleet: Arc<Fleet>,
    dashboards: HashMap<String, Router>,
    home: Router,
}

/// The dashboard of every cluster of `fleet`, each instance's pages served by its cluster's.
pub fn router(fleet: Arc<Fleet>, options: super::DashboardOptions) -> Router {
    let dashboards: HashMap<String, Router> = fleet
        .members()
        .iter()
        .map(|member| {
            (member.name.clone(), super::router(member.broker.clone(), options.clone(), member.config.clone()))
        })
        .collect();
    let home = dashboards.get(&fleet.home().name).cloned().expect("the home cluster's dashboard");
    Router::new().fallback(instance).with_state(Arc::new(Dispatch { fleet, dashboards, home }))
}

/// A request for one instance's pages, forwarded to its cluster's dashboard (503 naming the cluster when it is
/// down); any other to the home's.
async fn instance(State(dispatch): State<Arc<Dispatch>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    if path == super::login::CALLBACK_PATH {
        return provider_return(&dispatch, request).await;
    }
    let Some((instance_id, _)) = crate::osb::fleet::instance_in_path(&path, "/instances/") else {
        return dispatch.home.clone().oneshot(request).await.unwrap_or_else(|never| match never {});
    };
    match dispatch.fleet.locate(&instance_id).await {
        Ok(member) => {
            let dashboard = dispatch.dashboards.get(&member.name).cloned().expect("every cluster's dashboard");
            dashboard.oneshot(request).await.unwrap_or_else(|never| match never {})
        }
        Err(error) => {
            let headers = [(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")];
            (StatusCode::SERVICE_UNAVAILABLE, headers, error.to_string()).into_response()
        }
    }
}

/// An identity provider's return: answered by the cluster's dashboard that holds the sign-in it ends, the home's
/// first (each other one answers 400 without changing anything, not knowing its cookie); the home's 400 when none
/// does.
async fn provider_return(dispatch: &Dispatch, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let others = dispatch.dashboards.iter().filter(|(name, _)| **name != dispatch.fleet.home().name);
    let mut refused = None;
    for dashboard in std::iter::once(&dispatch.home).chain(others.map(|(_, dashboard)| dashboard)) {
        let again = Request::from_parts(parts.clone(), axum::body::Body::empty());
        let answer = dashboard.clone().oneshot(again).await.unwrap_or_else(|never| match never {});
        if answer.status() != StatusCode::BAD_REQUEST {
            return answer;
        }
        refused.get_or_insert(answer);
    }
    refused.unwrap_or_else(|| StatusCode::BAD_REQUEST.into_response())
}
