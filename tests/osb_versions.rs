//! Every answer carries exactly the fields of the OSB API version the request declares, against the real control
//! plane: a client written for an older version (Kubernetes Service Catalog's Go client declares 2.14) must never
//! meet a field its version did not define. The expected keys are written here from the specification's release
//! notes, independently of the broker's own table.

mod support;

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use support::broker::*;

const VERSIONS: [&str; 5] = ["2.13", "2.14", "2.15", "2.16", "2.17"];

/// The minor version of "2.x".
fn minor(version: &str) -> u32 {
    version.trim_start_matches("2.").parse().expect("2.x")
}

fn keys(value: &Value) -> BTreeSet<String> {
    value.as_object().unwrap_or_else(|| panic!("an object: {value}")).keys().cloned().collect()
}

/// `base` plus each `(minor, key)` whose version is at most `version`.
fn expected(version: &str, base: &[&str], added: &[(u32, &str)]) -> BTreeSet<String> {
    let mut keys: BTreeSet<String> = base.iter().map(|k| (*k).to_owned()).collect();
    keys.extend(added.iter().filter(|(since, _)| *since <= minor(version)).map(|(_, key)| (*key).to_owned()));
    keys
}

fn assert_keys(version: &str, what: &str, answer: &Value, base: &[&str], added: &[(u32, &str)]) {
    assert_eq!(keys(answer), expected(version, base, added), "{what} at {version}: {answer}");
}

/// `endpoints` as Kubernetes Service Catalog's Go client (sigs.k8s.io/go-open-service-broker-client/v2, which sends
/// 2.14) declares it: `Ports []uint16`.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct GoEndpoint {
    host: String,
    ports: Vec<u16>,
    protocol: Option<String>,
}

/// That client's `BindResponse`; like Go's encoding/json, fields it does not know are ignored.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct GoBindResponse {
    credentials: Option<Map<String, Value>>,
    syslog_drain_url: Option<String>,
    route_service_url: Option<String>,
    volume_mounts: Option<Vec<Value>>,
    endpoints: Option<Vec<GoEndpoint>>,
}

#[tokio::test]
async fn the_catalog_has_exactly_the_fields_of_each_version() {
    let broker = TestBroker::start(|_| {}).await;
    for version in VERSIONS {
        let answer = broker.call_as(version, Method::GET, "/v2/catalog", None).await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        assert_eq!(answer.headers["content-type"], "application/json");
        let caas = &answer.body["services"][0];
        assert_eq!(caas["id"], CAAS);
        assert_keys(
            version,
            "the caas offering",
            caas,
            &["id", "name", "description", "tags", "bindable", "plan_updateable", "metadata", "plans"],
            &[(14, "instances_retrievable"), (14, "bindings_retrievable"), (16, "allow_context_updates")],
        );
        let micro = &caas["plans"][0];
        assert_eq!(micro["id"], MICRO);
        assert_keys(
            version,
            "plan micro",
            micro,
            &["id", "name", "description", "free", "bindable", "metadata", "schemas"],
            &[(15, "maximum_polling_duration"), (15, "maintenance_info"), (17, "binding_rotatable")],
        );
        // No offering or plan anywhere in the catalog carries a field newer than the version.
        let service_fields =
            [(14, "instances_retrievable"), (14, "bindings_retrievable"), (16, "allow_context_updates")];
        let plan_fields = [
            (15, "plan_updateable"),
            (15, "maximum_polling_duration"),
            (15, "maintenance_info"),
            (17, "binding_rotatable"),
        ];
        let newer = |fields: &[(u32, &'static str)]| -> Vec<&'static str> {
            fields.iter().filter(|(since, _)| minor(version) < *since).map(|(_, key)| *key).collect()
        };
        for service in answer.body["services"].as_array().expect("services") {
            for key in newer(&service_fields) {
                assert!(service.get(key).is_none(), "{key} at {version} in offering {}", service["name"]);
            }
            for plan in service["plans"].as_array().expect("plans") {
                for key in newer(&plan_fields) {
                    assert!(plan.get(key).is_none(), "{key} at {version} in plan {}", plan["name"]);
                }
            }
        }
    }
    // The newest version gets the catalog as written; a later 2.x than the broker knows gets the same.
    let newest = broker.call_as("2.17", Method::GET, "/v2/catalog", None).await;
    assert_eq!(newest.body["services"][0]["plans"][0]["binding_rotatable"], true);
    assert_eq!(broker.call_as("2.40", Method::GET, "/v2/catalog", None).await.body, newest.body);
}

#[tokio::test]
async fn instance_and_binding_answers_have_exactly_the_fields_of_each_version() {
    let broker = TestBroker::start(|_| {}).await;
    for version in VERSIONS {
        let instance = format!("versions-{}-{:08x}", minor(version), rand::random::<u32>());
        let uri = format!("/v2/service_instances/{instance}");
        let broker = &broker;
        let call = move |method: Method, uri: String, body: Option<Value>| async move {
            broker.call_as(version, method, &uri, body).await
        };

        let provisioned = call(Method::PUT, uri.clone(), Some(provision_body(MICRO, "org-1", json!({})))).await;
        assert_eq!(provisioned.status, StatusCode::CREATED, "{version}: {provisioned:?}");
        assert_keys(version, "provision", &provisioned.body, &["dashboard_url"], &[]);

        let patch = json!({ "service_id": CAAS, "parameters": { "pod_security": "restricted" } });
        let updated = call(Method::PATCH, uri.clone(), Some(patch)).await;
        assert_eq!(updated.status, StatusCode::OK, "{version}: {updated:?}");
        assert_keys(version, "update", &updated.body, &[], &[(14, "dashboard_url")]);

        let fetched = call(Method::GET, uri.clone(), None).await;
        assert_eq!(fetched.status, StatusCode::OK, "{version}: {fetched:?}");
        assert_keys(
            version,
            "fetch instance",
            &fetched.body,
            &["service_id", "plan_id", "dashboard_url", "parameters"],
            &[(15, "maintenance_info"), (16, "metadata")],
        );
        if minor(version) >= 16 {
            assert_keys(version, "instance metadata", &fetched.body["metadata"], &["labels"], &[(17, "attributes")]);
        }

        let state = call(Method::GET, format!("{uri}/last_operation"), None).await;
        assert_eq!(state.status, StatusCode::OK, "{version}: {state:?}");
        assert_keys(version, "last_operation", &state.body, &["state", "description"], &[]);

        let binding = format!("{instance}-b");
        let binding_uri = format!("{uri}/service_bindings/{binding}");
        let bind_body = json!({ "service_id": CAAS, "plan_id": MICRO, "bind_resource": { "app_guid": "app-1" } });
        let bound = call(Method::PUT, binding_uri.clone(), Some(bind_body)).await;
        assert_eq!(bound.status, StatusCode::CREATED, "{version}: {bound:?}");
        let binding_fields: &[(u32, &str)] = &[(15, "endpoints"), (16, "metadata")];
        assert_keys(version, "bind", &bound.body, &["credentials"], binding_fields);
        let fetched_binding = call(Method::GET, binding_uri.clone(), None).await;
        assert_eq!(fetched_binding.status, StatusCode::OK, "{version}: {fetched_binding:?}");
        assert_keys(version, "fetch binding", &fetched_binding.body, &["credentials", "parameters"], binding_fields);
        if minor(version) >= 16 {
            for answer in [&bound, &fetched_binding] {
                let metadata = &answer.body["metadata"];
                assert_keys(version, "binding metadata", metadata, &["expires_at"], &[(17, "renew_before")]);
            }
        }

        // What Kubernetes Service Catalog's client decodes: the bind answer at its version, and not the newest one
        // (which proves the struct is shaped as that client's).
        if version == "2.14" {
            let decoded: Result<GoBindResponse, _> = serde_json::from_value(bound.body.clone());
            assert!(decoded.is_ok(), "the 2.14 client cannot decode {}: {decoded:?}", bound.body);
            let newest = broker.call(Method::GET, &binding_uri, None).await;
            let decoded: Result<GoBindResponse, _> = serde_json::from_value(newest.body.clone());
            assert!(decoded.is_err(), "2.17's endpoints do not fit that client: {}", newest.body);
        }

        let unbind = format!("{binding_uri}?service_id={CAAS}&plan_id={MICRO}");
        assert_eq!(call(Method::DELETE, unbind, None).await.status, StatusCode::OK);
        let delete = format!("{uri}?service_id={CAAS}&plan_id={MICRO}&accepts_incomplete=true");
        let deleting = call(Method::DELETE, delete, None).await;
        assert_eq!((deleting.status, deleting.body), (StatusCode::ACCEPTED, json!({ "operation": "deprovision" })));
    }
}
