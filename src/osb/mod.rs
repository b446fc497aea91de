//! The OSB face of the broker: routes, extractors, middleware, how errors become OSB answers and how answers are
//! shaped per API version. It knows HTTP and the OSB specification; what an operation *means*, what it takes and
//! returns and what can go wrong is the lifecycle's business ([`crate::lifecycle`]), which knows nothing of this module.

pub mod api;
mod error;
pub mod extract;
pub mod fleet;
mod handlers;
pub mod identity;
pub mod middleware;
pub mod usage;
pub mod version;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

pub use error::{OsbError, OsbResult};
use extract::BodyLimit;
pub use handlers::BrokerState;
use middleware::Credentials;

/// The OSB routes, behind request identity, authentication and version checks, in that order.
pub fn router(broker: BrokerState, credentials: Credentials, body_limit: usize) -> Router {
    let credentials = Arc::new(credentials);
    let catalog = Arc::new(handlers::CatalogBodies::new(broker.catalog()));
    Router::new()
        .route("/v2/catalog", get(handlers::catalog))
        .route(
            "/v2/service_instances/{instance_id}",
            get(handlers::fetch_instance)
                .put(handlers::provision)
                .patch(handlers::update)
                .delete(handlers::deprovision),
        )
        .route("/v2/service_instances/{instance_id}/last_operation", get(handlers::instance_last_operation))
        .route(
            "/v2/service_instances/{instance_id}/service_bindings/{binding_id}",
            get(handlers::fetch_binding).put(handlers::bind).delete(handlers::unbind),
        )
        .route(
            "/v2/service_instances/{instance_id}/service_bindings/{binding_id}/last_operation",
            get(handlers::binding_last_operation),
        )
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .fallback(handlers::not_found)
        .with_state(broker)
        .layer(axum::middleware::from_fn(middleware::require_api_version))
        .layer(axum::middleware::from_fn_with_state(credentials, middleware::authenticate))
        .layer(axum::Extension(BodyLimit(body_limit)))
        .layer(axum::Extension(catalog))
}
