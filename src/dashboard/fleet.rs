//! The dashboard over several clusters: each instance's pages are served by a dashboard over the broker of the
//! cluster it lives on (whose signed-in users' clients reach that cluster's apiserver), chosen per request; the rest
//! (assets, sign-out) by the home cluster's. A sign-in holds for the instance it was made for, so each cluster's
//! dashboard keeps its own sessions.

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
