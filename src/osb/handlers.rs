//! One thin handler per OSB route: parse with the OSB extractors, ask the broker, pick the status the specification
//! prescribes for the outcome.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::api::{AsyncQuery, DeleteQuery, Empty, FetchQuery, LastOperationQuery};
use super::extract::{Identity, OsbJson, OsbPath, OsbQuery};
use super::version::{ApiVersion, Body};
use super::{OsbError, OsbResult};
use crate::catalog::Catalog;
use crate::lifecycle::model::{BindRequest, ProvisionRequest, UpdateRequest};
use crate::lifecycle::{Bound, Broker, Deprovisioned, Provisioned, Unbound, Updated};

/// Handlers share the broker.
pub type BrokerState = Arc<Broker>;

/// Counts an OSB operation by plan and outcome, then passes its answer on.
fn counted(
    broker: &Broker,
    operation: &str,
    service_id: &str,
    plan_id: &str,
    answer: crate::lifecycle::Result<Response>,
) -> OsbResult<Response> {
    let answer = answer.map_err(OsbError::from);
    let status = match &answer {
        Ok(response) => response.status().as_u16(),
        Err(error) => error.status().as_u16(),
    };
    let (service, plan) = broker.plan_names(service_id, plan_id);
    crate::metrics::global().operation(operation, &service, &plan, status);
    answer
}

/// An answer of `kind` as `version` defines it: built for the newest version, then stripped of what `version` lacks.
fn versioned<T: Serialize>(version: ApiVersion, kind: Body, status: StatusCode, body: &T) -> Response {
    match serde_json::to_value(body) {
        Ok(mut value) => {
            version.shape(kind, &mut value);
            (status, Json(value)).into_response()
        }
        Err(error) => OsbError::Unserializable(error).into_response(),
    }
}

/// The catalog serialized once per answer shape at start-up: it never changes while the broker runs, and platforms
/// fetch it often, so each request only picks its version's bytes.
pub struct CatalogBodies(BTreeMap<ApiVersion, Bytes>);

impl CatalogBodies {
    /// Serializes `catalog` for every distinct set of fields ([`ApiVersion::shapes`]).
    pub fn new(catalog: &Catalog) -> CatalogBodies {
        let full = serde_json::to_value(catalog).expect("the catalog serializes to JSON");
        let bodies = ApiVersion::shapes()
            .into_iter()
            .map(|version| {
                let mut body = full.clone();
                version.shape(Body::Catalog, &mut body);
                (version, Bytes::from(body.to_string()))
            })
            .collect();
        CatalogBodies(bodies)
    }

    fn get(&self, version: ApiVersion) -> Bytes {
        self.0.get(&version.canonical()).cloned().unwrap_or_default()
    }
}

/// GET /v2/catalog
pub async fn catalog(version: ApiVersion, Extension(bodies): Extension<Arc<CatalogBodies>>) -> Response {
    ([(CONTENT_TYPE, "application/json")], bodies.get(version)).into_response()
}

/// PUT /v2/service_instances/:instance_id
pub async fn provision(
    State(broker): State<BrokerState>,
    version: ApiVersion,
    OsbPath(instance_id): OsbPath<String>,
    OsbQuery(query): OsbQuery<AsyncQuery>,
    Identity(identity): Identity,
    OsbJson(request): OsbJson<ProvisionRequest>,
) -> OsbResult<Response> {
    let (service_id, plan_id) = (request.service_id.clone(), request.plan_id.clone());
    let answer =
        broker.provision(&instance_id, request, identity, query.accepts_incomplete).await.map(
            |outcome| match outcome {
                Provisioned::Created(body) => versioned(version, Body::Provision, StatusCode::CREATED, &body),
                Provisioned::AlreadyExists(body) => versioned(version, Body::Provision, StatusCode::OK, &body),
                Provisioned::InProgress(body) => versioned(version, Body::Provision, StatusCode::ACCEPTED, &body),
            },
        );
    counted(&broker, "provision", &service_id, &plan_id, answer)
}

/// PATCH /v2/service_instances/:instance_id
pub async fn update(
    State(broker): State<BrokerState>,
    version: ApiVersion,
    OsbPath(instance_id): OsbPath<String>,
    OsbQuery(query): OsbQuery<AsyncQuery>,
    Identity(identity): Identity,
    OsbJson(request): OsbJson<UpdateRequest>,
) -> OsbResult<Response> {
    let (service_id, plan_id) = (request.service_id.clone(), request.plan_id.clone().unwrap_or_default());
    let answer =
        broker.update(&instance_id, request, identity, query.accepts_incomplete).await.map(|outcome| match outcome {
            Updated::Done(body) => versioned(version, Body::Update, StatusCode::OK, &body),
            Updated::InProgress(body) => versioned(version, Body::Update, StatusCode::ACCEPTED, &body),
        });
    counted(&broker, "update", &service_id, &plan_id, answer)
}

/// DELETE /v2/service_instances/:instance_id
pub async fn deprovision(
    State(broker): State<BrokerState>,
    OsbPath(instance_id): OsbPath<String>,
    OsbQuery(query): OsbQuery<DeleteQuery>,
) -> OsbResult<Response> {
    let outcome = broker.deprovision(&instance_id, &query.service_id, &query.plan_id, query.accepts_incomplete).await;
    let answer = outcome.map(|outcome| match outcome {
        Deprovisioned::Done => (StatusCode::OK, Json(Empty::default())).into_response(),
        Deprovisioned::InProgress(operation) => {
            (StatusCode::ACCEPTED, Json(Empty { operation: Some(operation) })).into_response()
        }
    });
    counted(&broker, "deprovision", &query.service_id, &query.plan_id, answer)
}

/// GET /v2/service_instances/:instance_id
pub async fn fetch_instance(
    State(broker): State<BrokerState>,
    version: ApiVersion,
    OsbPath(instance_id): OsbPath<String>,
    OsbQuery(_hints): OsbQuery<FetchQuery>,
) -> OsbResult<Response> {
    let instance = broker.fetch(&instance_id).await?;
    Ok(versioned(version, Body::FetchInstance, StatusCode::OK, &instance))
}

/// GET /v2/service_instances/:instance_id/last_operation
pub async fn instance_last_operation(
    State(broker): State<BrokerState>,
    version: ApiVersion,
    OsbPath(instance_id): OsbPath<String>,
    OsbQuery(query): OsbQuery<LastOperationQuery>,
) -> OsbResult<Response> {
    let state = broker.last_operation(&instance_id, query.operation.as_deref()).await?;
    Ok(versioned(version, Body::InstanceLastOperation, StatusCode::OK, &state))
}

/// PUT /v2/service_instances/:instance_id/service_bindings/:binding_id
pub async fn bind(
    State(broker): State<BrokerState>,
    version: ApiVersion,
    OsbPath((instance_id, binding_id)): OsbPath<(String, String)>,
    OsbQuery(query): OsbQuery<AsyncQuery>,
    OsbJson(request): OsbJson<BindRequest>,
) -> OsbResult<Response> {
    let (service_id, plan_id) = (request.service_id.clone(), request.plan_id.clone());
    let answer =
        broker.bind(&instance_id, &binding_id, request, query.accepts_incomplete).await.map(|outcome| match outcome {
            Bound::Created(body) => versioned(version, Body::Bind, StatusCode::CREATED, &body),
            Bound::AlreadyExists(body) => versioned(version, Body::Bind, StatusCode::OK, &body),
            Bound::InProgress(operation) => {
                let body = Empty { operation: Some(operation.to_owned()) };
                versioned(version, Body::BindAccepted, StatusCode::ACCEPTED, &body)
            }
        });
    counted(&broker, "bind", &service_id, &plan_id, answer)
}

/// GET /v2/service_instances/:instance_id/service_bindings/:binding_id
pub async fn fetch_binding(
    State(broker): State<BrokerState>,
    version: ApiVersion,
    OsbPath((instance_id, binding_id)): OsbPath<(String, String)>,
    OsbQuery(_hints): OsbQuery<FetchQuery>,
) -> OsbResult<Response> {
    let binding = broker.fetch_binding(&instance_id, &binding_id).await?;
    Ok(versioned(version, Body::FetchBinding, StatusCode::OK, &binding))
}

/// DELETE /v2/service_instances/:instance_id/service_bindings/:binding_id
pub async fn unbind(
    State(broker): State<BrokerState>,
    OsbPath((instance_id, binding_id)): OsbPath<(String, String)>,
    OsbQuery(query): OsbQuery<DeleteQuery>,
) -> OsbResult<Response> {
    let answer =
        broker.unbind(&instance_id, &binding_id, &query.service_id, &query.plan_id, query.accepts_incomplete).await;
    let answer = answer.map(|outcome| match outcome {
        Unbound::Done => (StatusCode::OK, Json(Empty::default())).into_response(),
        Unbound::InProgress(operation) => {
            (StatusCode::ACCEPTED, Json(Empty { operation: Some(operation.to_owned()) })).into_response()
        }
    });
    counted(&broker, "unbind", &query.service_id, &query.plan_id, answer)
}

/// GET /v2/service_instances/:instance_id/service_bindings/:binding_id/last_operation
pub async fn binding_last_operation(
    State(broker): State<BrokerState>,
    OsbPath((instance_id, binding_id)): OsbPath<(String, String)>,
    OsbQuery(query): OsbQuery<LastOperationQuery>,
) -> OsbResult<Response> {
    let state = broker.binding_last_operation(&instance_id, &binding_id, query.operation.as_deref()).await?;
    Ok(Json(state).into_response())
}

/// Any route the OSB API does not have.
pub async fn not_found() -> OsbError {
    OsbError::NoSuchEndpoint
}

/// A known route with a method it does not take.
pub async fn method_not_allowed() -> Response {
    let error =
        serde_json::json!({ "error": "MethodNotAllowed", "description": "this endpoint does not take that method" });
    (StatusCode::METHOD_NOT_ALLOWED, Json(error)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The catalog with every optional part the broker can serve, including its dashboard client.
    fn full_catalog() -> Catalog {
        Catalog::built_in().for_dashboard(Some("client-secret"), Some("https://dashboard.example"))
    }

    /// What answering the catalog generically gave before it was prepared: shaped for the request's own version and
    /// serialized per request, by the same path every other answer takes.
    async fn generic_answer(version: ApiVersion, catalog: &Catalog) -> Bytes {
        let response = versioned(version, Body::Catalog, StatusCode::OK, catalog);
        axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("the generic answer's body")
    }

    #[tokio::test]
    async fn the_prepared_catalog_is_byte_for_byte_the_generic_answer_for_every_version() {
        let offered = full_catalog();
        let bodies = Arc::new(CatalogBodies::new(&offered));
        // Every 2.x minor up to well past the newest the broker knows, and one too large to count.
        let minors = (0..=40).map(|minor| format!("2.{minor}")).chain(["2.99999999".to_owned()]);
        for header in minors {
            let version = ApiVersion::parse(&header).expect("a 2.x version");
            let response = catalog(version, Extension(bodies.clone())).await;
            assert_eq!(response.status(), StatusCode::OK, "{header}");
            assert_eq!(response.headers()[CONTENT_TYPE], "application/json", "{header}");
            let served = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("the served body");
            assert!(!served.is_empty(), "{header}");
            assert_eq!(served, generic_answer(version, &offered).await, "{header}");
        }
    }
}
