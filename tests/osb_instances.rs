//! The virtual-cluster service end to end over the OSB API, against the real control plane: what each request
//! answers, exactly, and what it leaves in the cluster.

mod support;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use k8s_openapi::api::core::v1::{ConfigMap, LimitRange, Namespace, Pod, ResourceQuota, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::{Value, json};
use support::broker::*;
use support::cluster::eventually;

fn instance_id() -> String {
    format!("{:08x}-1111-4222-8333-{:012x}", rand::random::<u32>(), rand::random::<u64>() & 0xffff_ffff_ffff)
}

async fn namespace_exists(broker: &TestBroker, instance: &str) -> bool {
    Api::<Namespace>::all(broker.client.clone()).get_opt(&broker.namespace(instance)).await.expect("get").is_some()
}

fn assert_osb_error(answer: &Answer, status: StatusCode, code: &str) {
    assert_eq!(answer.status, status, "{answer:?}");
    assert_eq!(answer.body["error"], code, "{answer:?}");
    let description = answer.body["description"].as_str().unwrap_or_default();
    assert!(!description.is_empty(), "an OSB error carries a description: {answer:?}");
}

#[tokio::test]
async fn catalog_requires_credentials_and_a_2x_version_and_echoes_the_request_identity() {
    let broker = TestBroker::start(|_| {}).await;
    let ok = broker.call(Method::GET, "/v2/catalog", None).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.headers["x-broker-api-request-identity"], "req-1234");
    assert_eq!(ok.body["services"][0]["id"], CAAS);
    assert!(ok.body["services"][0]["plans"][0].get("broker").is_none());

    let no_auth = broker
        .raw(
            axum::http::Request::get("/v2/catalog")
                .header("x-broker-api-version", "2.15")
                .header("x-broker-api-request-identity", "req-401")
                .body(axum::body::Body::empty())
                .expect("request"),
        )
        .await;
    assert_osb_error(&no_auth, StatusCode::UNAUTHORIZED, "Unauthorized");
    assert_eq!(no_auth.headers["x-broker-api-request-identity"], "req-401");
    assert!(no_auth.headers.contains_key("www-authenticate"));

    let mut wrong_password = osb_request(Method::GET, "/v2/catalog", None, &[]);
    wrong_password.headers_mut().insert("authorization", "Basic YnJva2VyOm5vcGU=".parse().expect("header"));
    assert_osb_error(&broker.raw(wrong_password).await, StatusCode::UNAUTHORIZED, "Unauthorized");

    for version in ["", "3.0", "two", "2", "1.14"] {
        let mut request = osb_request(Method::GET, "/v2/catalog", None, &[]);
        request.headers_mut().insert("x-broker-api-version", version.parse().expect("header"));
        let answer = broker.raw(request).await;
        assert_osb_error(&answer, StatusCode::PRECONDITION_FAILED, "PreconditionFailed");
        assert_eq!(answer.headers["x-broker-api-request-identity"], "req-1234");
    }
    let mut missing = osb_request(Method::GET, "/v2/catalog", None, &[]);
    missing.headers_mut().remove("x-broker-api-version");
    assert_osb_error(&broker.raw(missing).await, StatusCode::PRECONDITION_FAILED, "PreconditionFailed");

    let unknown_route = broker.call(Method::GET, "/v2/nothing", None).await;
    assert_osb_error(&unknown_route, StatusCode::NOT_FOUND, "NotFound");
    let wrong_method = broker.call(Method::POST, "/v2/catalog", None).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn provision_builds_the_virtual_cluster_and_repeats_are_idempotent() {
    let mut broker = TestBroker::start(|_| {}).await;
    let id = instance_id();
    let body = provision_body(SMALL, "org-1", json!({ "allow_ingress_from_namespaces": ["ingress-nginx"] }));
    let request = osb_request(
        Method::PUT,
        &format!("/v2/service_instances/{id}"),
        Some(body.to_string()),
        &[("x-broker-api-originating-identity", &cf_identity("Jane.Doe"))],
    );
    let created = broker.raw(request).await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    assert_eq!(created.body, json!({ "dashboard_url": format!("https://dashboard.example.test/instances/{id}") }));

    let ns = broker.namespace(&id);
    let client = broker.client.clone();
    let namespace = Api::<Namespace>::all(client.clone()).get(&ns).await.expect("namespace");
    let labels = namespace.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels["pod-security.kubernetes.io/enforce"], "baseline");
    assert_eq!(labels["caas-broker.io/instance"], id);
    assert_eq!(labels["caas-broker.io/plan"], "small");
    assert_eq!(labels["caas-broker.io/organization"], "org-1");
    assert_eq!(labels["caas-broker.io/space"], "space-1");
    let annotations = namespace.metadata.annotations.unwrap_or_default();
    assert_eq!(annotations["caas-broker.io/instance-id"], id);
    assert_eq!(annotations["caas-broker.io/created-by"], "cloudfoundry Jane.Doe");
    let context: Value = serde_json::from_str(&annotations["caas-broker.io/context"]).expect("context JSON");
    assert_eq!(context["organization_name"], "acme");

    let quota = Api::<ResourceQuota>::namespaced(client.clone(), &ns).get("caas-quota").await.expect("quota");
    let hard = quota.spec.and_then(|s| s.hard).unwrap_or_default();
    assert_eq!(hard["requests.cpu"].0, "2");
    assert_eq!(hard["limits.memory"].0, "2Gi");
    assert_eq!(hard["requests.storage"].0, "10Gi");
    assert_eq!(hard["pods"].0, "20");
    assert_eq!(hard["services.loadbalancers"].0, "0");
    assert_eq!(hard["requests.nvidia.com/gpu"].0, "0");
    assert_eq!(hard.len(), 17);
    let limits = Api::<LimitRange>::namespaced(client.clone(), &ns).get("caas-limits").await.expect("limits");
    let item = &limits.spec.expect("spec").limits[0];
    assert_eq!(item.default_request.as_ref().expect("default request")["cpu"].0, "100m");
    let policy = Api::<NetworkPolicy>::namespaced(client.clone(), &ns).get("caas-default-deny").await.expect("policy");
    let policy = serde_json::to_value(policy).expect("json");
    assert_eq!(
        policy["spec"]["ingress"][0]["from"][1]["namespaceSelector"]["matchExpressions"][0]["values"],
        json!(["ingress-nginx"])
    );
    // The owner lives in the identity namespace, owned by the tenant namespace, and has admin in the tenant namespace.
    let identities = broker.settings.kubernetes.identity_namespace.clone();
    let owner_name = caas_broker::k8s::names::owner_account(&id);
    let owner = Api::<ServiceAccount>::namespaced(client.clone(), &identities).get(&owner_name).await.expect("owner");
    let owned_by = owner.metadata.owner_references.unwrap_or_default();
    assert_eq!(owned_by.len(), 1, "owner ServiceAccount is owned by the tenant namespace");
    assert_eq!((owned_by[0].kind.as_str(), owned_by[0].name.as_str()), ("Namespace", ns.as_str()));
    assert_eq!(Some(&owned_by[0].uid), namespace.metadata.uid.as_ref());
    let tenant_accounts = Api::<ServiceAccount>::namespaced(client.clone(), &ns).list(&Default::default()).await;
    let tenant_accounts: Vec<_> =
        tenant_accounts.expect("list").items.into_iter().filter_map(|a| a.metadata.name).collect();
    assert!(
        tenant_accounts.iter().all(|a| a == "default"),
        "no broker identity in the tenant namespace: {tenant_accounts:?}"
    );
    let binding = Api::<RoleBinding>::namespaced(client.clone(), &ns).get("caas-owner").await.expect("binding");
    assert_eq!(binding.role_ref.name, "admin");
    let subject = &binding.subjects.expect("subjects")[0];
    assert_eq!((subject.name.as_str(), subject.namespace.as_deref()), (owner_name.as_str(), Some(identities.as_str())));
    for managed in [
        labels.get("caas-broker.io/protected"),
        quota.metadata.labels.as_ref().and_then(|l| l.get("caas-broker.io/protected")),
    ] {
        assert_eq!(managed.map(String::as_str), Some("true"));
    }

    // Identical repeat: 200 with the same body, nothing new.
    let again = broker.call(Method::PUT, &format!("/v2/service_instances/{id}"), Some(body.clone())).await;
    assert_eq!(again.status, StatusCode::OK, "{again:?}");
    assert_eq!(again.body, created.body);
    let again_async = broker
        .call(Method::PUT, &format!("/v2/service_instances/{id}?accepts_incomplete=true"), Some(body.clone()))
        .await;
    assert_eq!(again_async.status, StatusCode::OK, "{again_async:?}");

    // Same id, other attributes: 409, and the instance is unchanged.
    for (field, value) in [("plan_id", json!(MICRO)), ("organization_guid", json!("org-2")), ("parameters", json!({}))]
    {
        let mut other = body.clone();
        other[field] = value;
        let conflict = broker.call(Method::PUT, &format!("/v2/service_instances/{id}"), Some(other)).await;
        assert_osb_error(&conflict, StatusCode::CONFLICT, "Conflict");
        assert!(conflict.body["description"].as_str().unwrap_or_default().contains(field), "{conflict:?}");
    }
    let quota = Api::<ResourceQuota>::namespaced(client.clone(), &ns).get("caas-quota").await.expect("quota");
    assert_eq!(quota.spec.and_then(|s| s.hard).unwrap_or_default()["requests.cpu"].0, "2");

    // The instance is retrievable, from a restarted broker too.
    broker.restart();
    let fetched = broker.call(Method::GET, &format!("/v2/service_instances/{id}"), None).await;
    assert_eq!(fetched.status, StatusCode::OK, "{fetched:?}");
    assert_eq!(fetched.body["service_id"], CAAS);
    assert_eq!(fetched.body["plan_id"], SMALL);
    assert_eq!(fetched.body["parameters"], json!({ "allow_ingress_from_namespaces": ["ingress-nginx"] }));
    assert_eq!(fetched.body["maintenance_info"]["version"], "2.0.0");
    let state = broker.call(Method::GET, &format!("/v2/service_instances/{id}/last_operation"), None).await;
    assert_eq!(state.body["state"], "succeeded", "{state:?}");

    broker.deprovision(&id, SMALL).await;
    assert!(!namespace_exists(&broker, &id).await);
}

#[tokio::test]
async fn bad_provision_requests_are_refused_and_leave_nothing() {
    let broker = TestBroker::start(|_| {}).await;
    let id = instance_id();
    let uri = format!("/v2/service_instances/{id}");
    let good = provision_body(MICRO, "org-1", json!({}));
    let with = |field: &str, value: Value| {
        let mut body = good.clone();
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = good.clone();
        body.as_object_mut().expect("object").remove(field);
        body
    };
    let cases: Vec<(&str, Value, StatusCode, &str, &str)> = vec![
        ("no service_id", without("service_id"), StatusCode::BAD_REQUEST, "BadRequest", "service_id"),
        ("empty service_id", with("service_id", json!("")), StatusCode::BAD_REQUEST, "BadRequest", "service_id"),
        ("unknown service", with("service_id", json!("nope")), StatusCode::BAD_REQUEST, "BadRequest", "service_id"),
        ("no plan_id", without("plan_id"), StatusCode::BAD_REQUEST, "BadRequest", "plan_id"),
        ("unknown plan", with("plan_id", json!("nope")), StatusCode::BAD_REQUEST, "BadRequest", "plan_id"),
        ("no organization", without("organization_guid"), StatusCode::BAD_REQUEST, "BadRequest", "organization_guid"),
        ("empty space", with("space_guid", json!("")), StatusCode::BAD_REQUEST, "BadRequest", "space_guid"),
        ("wrong type", with("plan_id", json!(7)), StatusCode::BAD_REQUEST, "BadRequest", "plan_id"),
        (
            "parameters not an object",
            with("parameters", json!([1])),
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "parameters",
        ),
        (
            "invalid parameter",
            with("parameters", json!({ "pod_security": "privileged" })),
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "parameters.pod_security",
        ),
        (
            "unknown parameter",
            with("parameters", json!({ "colour": 1 })),
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "colour",
        ),
        (
            "old maintenance version",
            with("maintenance_info", json!({ "version": "0.9.0" })),
            StatusCode::UNPROCESSABLE_ENTITY,
            "MaintenanceInfoConflict",
            "0.9.0",
        ),
    ];
    for (case, body, status, code, mentions) in cases {
        let answer = broker.call(Method::PUT, &uri, Some(body)).await;
        assert_osb_error(&answer, status, code);
        let description = answer.body["description"].as_str().unwrap_or_default();
        assert!(description.contains(mentions), "{case}: {description:?} should mention {mentions}");
    }
    // Malformed bodies and headers.
    type RawCase<'a> = (&'a str, Option<String>, &'a [(&'a str, &'a str)], StatusCode);
    let raw_cases: Vec<RawCase> = vec![
        ("malformed JSON", Some("{\"service_id\": ".to_owned()), &[], StatusCode::BAD_REQUEST),
        ("not an object", Some("[]".to_owned()), &[], StatusCode::BAD_REQUEST),
        ("wrong content type", Some(good.to_string()), &[("content-type", "text/plain")], StatusCode::BAD_REQUEST),
        ("huge body", Some(format!("{{\"x\":\"{}\"}}", "a".repeat(2 << 20))), &[], StatusCode::PAYLOAD_TOO_LARGE),
        ("bad accepts_incomplete", Some(good.to_string()), &[], StatusCode::BAD_REQUEST),
    ];
    for (case, body, headers, status) in raw_cases {
        let uri =
            if case == "bad accepts_incomplete" { format!("{uri}?accepts_incomplete=maybe") } else { uri.clone() };
        let mut request = osb_request(Method::PUT, &uri, body, &[]);
        for (name, value) in headers {
            request.headers_mut().insert(*name, value.parse().expect("header"));
        }
        let answer = broker.raw(request).await;
        assert_eq!(answer.status, status, "{case}: {answer:?}");
        assert!(answer.body["error"].is_string() && answer.body["description"].is_string(), "{case}: {answer:?}");
    }
    assert!(!namespace_exists(&broker, &id).await, "a refused request must not create anything");
}

#[tokio::test]
async fn asynchronous_lifecycle_reports_through_last_operation() {
    let broker = TestBroker::start(|_| {}).await;
    let id = instance_id();
    broker.provision(&id, MICRO, json!({})).await;
    let done = broker.wait_for_state(&id, "provision", "succeeded").await;
    assert_eq!(done.body["description"], "the virtual cluster is ready (maintenance version 2.0.0)");

    // Unknown operation values are tolerated.
    let odd =
        broker.call(Method::GET, &format!("/v2/service_instances/{id}/last_operation?operation=%E2%9C%93"), None).await;
    assert_eq!(odd.body["state"], "succeeded", "{odd:?}");

    let delete = format!("/v2/service_instances/{id}?service_id={CAAS}&plan_id={MICRO}&accepts_incomplete=true");
    let accepted = broker.call(Method::DELETE, &delete, None).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{accepted:?}");
    assert_eq!(accepted.body, json!({ "operation": "deprovision" }));
    let fetched = broker.call(Method::GET, &format!("/v2/service_instances/{id}"), None).await;
    assert_osb_error(&fetched, StatusCode::NOT_FOUND, "NotFound");
    broker.wait_for_state(&id, "deprovision", "succeeded").await;
    assert!(!namespace_exists(&broker, &id).await);

    // Once gone: DELETE is 410 (never 5xx), last_operation of the deletion stays succeeded.
    let gone = broker.call(Method::DELETE, &delete, None).await;
    assert_osb_error(&gone, StatusCode::GONE, "Gone");
    let still = broker
        .call(Method::GET, &format!("/v2/service_instances/{id}/last_operation?operation=deprovision"), None)
        .await;
    assert_eq!((still.status, still.body["state"].clone()), (StatusCode::OK, json!("succeeded")));
    let unknown = broker
        .call(Method::GET, &format!("/v2/service_instances/{}/last_operation?operation=provision", instance_id()), None)
        .await;
    assert_osb_error(&unknown, StatusCode::NOT_FOUND, "NotFound");
    let missing_ids = broker.call(Method::DELETE, &format!("/v2/service_instances/{id}?plan_id={MICRO}"), None).await;
    assert_osb_error(&missing_ids, StatusCode::BAD_REQUEST, "BadRequest");
}

#[tokio::test]
async fn update_changes_plan_and_parameters_and_refuses_a_downgrade_below_usage() {
    let broker = TestBroker::start(|_| {}).await;
    let id = instance_id();
    broker.provision(&id, MEDIUM, json!({})).await;
    let ns = broker.namespace(&id);
    let uri = format!("/v2/service_instances/{id}");
    let quotas = Api::<ResourceQuota>::namespaced(broker.client.clone(), &ns);

    // Upgrade to Pod Security restricted by parameter; plan stays.
    let answer = broker
        .call(Method::PATCH, &uri, Some(json!({ "service_id": CAAS, "parameters": { "pod_security": "restricted" } })))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    let namespace = Api::<Namespace>::all(broker.client.clone()).get(&ns).await.expect("namespace");
    assert_eq!(namespace.metadata.labels.unwrap_or_default()["pod-security.kubernetes.io/enforce"], "restricted");

    // Use 3 CPUs of requests: a pod that restricted Pod Security admits.
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": "busy" },
        "spec": {
            "securityContext": { "runAsNonRoot": true, "runAsUser": 1000, "seccompProfile": { "type": "RuntimeDefault" } },
            "containers": [{ "name": "app", "image": "example.invalid/app:1",
                "securityContext": { "allowPrivilegeEscalation": false, "capabilities": { "drop": ["ALL"] } },
                "resources": { "requests": { "cpu": "3", "memory": "1Gi" }, "limits": { "cpu": "3", "memory": "1Gi" } } }]
        }
    }))
    .expect("pod");
    // Quota usage must be computed before the pod is admitted; retry while the controller catches up.
    let pods = Api::<Pod>::namespaced(broker.client.clone(), &ns);
    eventually(Duration::from_secs(30), "the pod to be admitted", || async {
        pods.create(&PostParams::default(), &pod).await.ok()
    })
    .await;
    eventually(Duration::from_secs(30), "quota usage of 3 CPUs", || async {
        let used = quotas.get("caas-quota").await.ok()?.status?.used?;
        (used.get("requests.cpu")?.0 == "3").then_some(())
    })
    .await;

    // Downgrade to micro (1 CPU): refused, naming the resource; the quota is unchanged.
    let refused = broker.call(Method::PATCH, &uri, Some(json!({ "service_id": CAAS, "plan_id": MICRO }))).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{refused:?}");
    let description = refused.body["description"].as_str().unwrap_or_default();
    assert!(description.contains("requests.cpu (in use 3, plan micro allows 1)"), "{description}");
    let hard = quotas.get("caas-quota").await.expect("quota").spec.and_then(|s| s.hard).unwrap_or_default();
    assert_eq!(hard["requests.cpu"].0, "4");

    // A maintenance version the plan does not have: 422 MaintenanceInfoConflict.
    let conflict = broker
        .call(
            Method::PATCH,
            &uri,
            Some(json!({ "service_id": CAAS, "plan_id": SMALL, "maintenance_info": { "version": "3.0.0" } })),
        )
        .await;
    assert_osb_error(&conflict, StatusCode::UNPROCESSABLE_ENTITY, "MaintenanceInfoConflict");

    // Change to small (2 CPUs < 3 used) is refused; after freeing the pod it goes through.
    let refused = broker.call(Method::PATCH, &uri, Some(json!({ "service_id": CAAS, "plan_id": SMALL }))).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{refused:?}");
    pods.delete("busy", &Default::default()).await.expect("delete pod");
    eventually(Duration::from_secs(30), "quota usage to drop", || async {
        let used = quotas.get("caas-quota").await.ok()?.status?.used?;
        (used.get("requests.cpu")?.0 == "0").then_some(())
    })
    .await;
    let changed = broker
        .call(
            Method::PATCH,
            &uri,
            Some(json!({ "service_id": CAAS, "plan_id": SMALL, "maintenance_info": { "version": "2.0.0" } })),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{changed:?}");
    let hard = quotas.get("caas-quota").await.expect("quota").spec.and_then(|s| s.hard).unwrap_or_default();
    assert_eq!(hard["requests.cpu"].0, "2");
    let fetched = broker.call(Method::GET, &uri, None).await;
    assert_eq!(fetched.body["plan_id"], SMALL);
    assert_eq!(fetched.body["parameters"], json!({ "pod_security": "restricted" }));

    // Invalid update parameters and unknown instances.
    let invalid = broker
        .call(Method::PATCH, &uri, Some(json!({ "service_id": CAAS, "parameters": { "pod_security": 1 } })))
        .await;
    assert_osb_error(&invalid, StatusCode::BAD_REQUEST, "BadRequest");
    let missing = broker.call(Method::PATCH, &uri, Some(json!({ "plan_id": SMALL }))).await;
    assert_osb_error(&missing, StatusCode::BAD_REQUEST, "BadRequest");
    let unknown = broker
        .call(Method::PATCH, &format!("/v2/service_instances/{}", instance_id()), Some(json!({ "service_id": CAAS })))
        .await;
    assert_osb_error(&unknown, StatusCode::NOT_FOUND, "NotFound");

    broker.deprovision(&id, SMALL).await;
}

#[tokio::test]
async fn maintenance_upgrade_reapplies_every_object() {
    let broker = TestBroker::start(|_| {}).await;
    let id = instance_id();
    broker.provision(&id, MICRO, json!({})).await;
    let ns = broker.namespace(&id);
    // Someone (an old broker version, an operator) removed and altered managed objects.
    let policies = Api::<NetworkPolicy>::namespaced(broker.client.clone(), &ns);
    policies.delete("caas-default-deny", &Default::default()).await.expect("delete policy");
    let limits = Api::<LimitRange>::namespaced(broker.client.clone(), &ns);
    limits.delete("caas-limits", &Default::default()).await.expect("delete limits");
    let upgrade = json!({
        "service_id": CAAS,
        "maintenance_info": { "version": "2.0.0" },
        "previous_values": { "plan_id": MICRO, "maintenance_info": { "version": "1.0.0" } }
    });
    let answer = broker.call(Method::PATCH, &format!("/v2/service_instances/{id}"), Some(upgrade)).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert!(policies.get_opt("caas-default-deny").await.expect("get").is_some());
    assert!(limits.get_opt("caas-limits").await.expect("get").is_some());
    broker.deprovision(&id, MICRO).await;
}

#[tokio::test]
async fn interrupted_provision_is_converged_by_a_retry_and_cleaned_by_a_delete() {
    let broker = TestBroker::start(|_| {}).await;
    let id = instance_id();
    broker.provision(&id, MICRO, json!({})).await;
    let ns = broker.namespace(&id);
    // Simulate a broker killed half way: the completion marker and some objects are missing.
    let namespaces = Api::<Namespace>::all(broker.client.clone());
    let patch = json!({ "metadata": { "annotations": { "caas-broker.io/provisioned-at": null } } });
    namespaces.patch(&ns, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch)).await.expect("patch");
    let quotas = Api::<ResourceQuota>::namespaced(broker.client.clone(), &ns);
    quotas.delete("caas-quota", &Default::default()).await.expect("delete quota");

    // Fetches and polls are answered from the broker's watched copy of its records, which sees this change a moment
    // after the apiserver does: wait for the answers themselves.
    let fetched = eventually(Duration::from_secs(20), "the fetch to say the instance is not there", || async {
        let fetched = broker.call(Method::GET, &format!("/v2/service_instances/{id}"), None).await;
        (fetched.status == StatusCode::NOT_FOUND).then_some(fetched)
    })
    .await;
    assert_osb_error(&fetched, StatusCode::NOT_FOUND, "NotFound");
    let poll = format!("/v2/service_instances/{id}/last_operation?operation=provision");
    let state = eventually(Duration::from_secs(20), "the poll to say the provision is in progress", || async {
        let state = broker.call(Method::GET, &poll, None).await;
        (state.body["state"] == "in progress").then_some(state)
    })
    .await;
    assert_eq!(state.status, StatusCode::OK, "{state:?}");

    // The platform's retry converges.
    let retry = broker
        .call(Method::PUT, &format!("/v2/service_instances/{id}"), Some(provision_body(MICRO, "org-1", json!({}))))
        .await;
    assert_eq!(retry.status, StatusCode::OK, "{retry:?}");
    assert!(quotas.get_opt("caas-quota").await.expect("get").is_some());

    // Interrupt again; this time the platform deletes (orphan mitigation, synchronous): 200, then gone.
    namespaces.patch(&ns, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch)).await.expect("patch");
    let delete = format!("/v2/service_instances/{id}?service_id={CAAS}&plan_id={MICRO}");
    let deleted = broker.call(Method::DELETE, &delete, None).await;
    assert_eq!((deleted.status, deleted.body.clone()), (StatusCode::OK, json!({})));
    eventually(Duration::from_secs(60), "the namespace to go", || async {
        namespaces.get_opt(&ns).await.expect("get").is_none().then_some(())
    })
    .await;
    let again = broker.call(Method::DELETE, &delete, None).await;
    assert_osb_error(&again, StatusCode::GONE, "Gone");
}

#[tokio::test]
async fn one_instance_per_organization_when_configured() {
    let broker = TestBroker::start(|settings| settings.policy.one_instance_per_organization = true).await;
    let org = format!("org-{:x}", rand::random::<u32>());
    let first = instance_id();
    let broker = &broker;
    let put = |id: &str, org: &str| {
        let body = provision_body(MICRO, org, json!({}));
        let uri = format!("/v2/service_instances/{id}");
        async move { broker.call(Method::PUT, &uri, Some(body)).await }
    };
    assert_eq!(put(&first, &org).await.status, StatusCode::CREATED);
    let second = instance_id();
    let refused = put(&second, &org).await;
    assert_osb_error(&refused, StatusCode::UNPROCESSABLE_ENTITY, "InstanceLimitReached");
    assert!(!namespace_exists(broker, &second).await);
    assert_eq!(put(&second, "another-org").await.status, StatusCode::CREATED);
    let listed = Api::<Namespace>::all(broker.client.clone())
        .list(&ListParams::default().labels(&format!("caas-broker.io/organization={org}")))
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 1);
    broker.deprovision(&first, MICRO).await;
    broker.deprovision(&second, MICRO).await;
}

#[tokio::test]
async fn ids_with_any_characters_get_valid_hashed_namespaces() {
    let broker = TestBroker::start(|_| {}).await;
    for id in ["Ünïcode id/with slash", "0"] {
        let encoded = percent_encoding::utf8_percent_encode(id, caas_broker::lifecycle::URL_COMPONENT).to_string();
        let created = broker
            .call(
                Method::PUT,
                &format!("/v2/service_instances/{encoded}"),
                Some(provision_body(MICRO, "org-odd", json!({}))),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{id}: {created:?}");
        assert_eq!(created.body["dashboard_url"], format!("https://dashboard.example.test/instances/{encoded}"));
        let ns = broker.namespace(id);
        let namespace = Api::<Namespace>::all(broker.client.clone()).get(&ns).await.expect("namespace exists");
        assert_eq!(namespace.metadata.annotations.unwrap_or_default()["caas-broker.io/instance-id"], id);
        let fetched = broker.call(Method::GET, &format!("/v2/service_instances/{encoded}"), None).await;
        assert_eq!(fetched.status, StatusCode::OK);
        broker.deprovision(&encoded, MICRO).await;
    }
}

#[tokio::test]
async fn an_unreachable_apiserver_gets_a_quick_osb_error() {
    // A kubeconfig pointing at a closed loopback port.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let mut config = kube::Config::new(format!("https://127.0.0.1:{port}").parse().expect("url"));
    config.connect_timeout = Some(Duration::from_secs(2));
    let client = kube::Client::try_from(config).expect("client");
    let settings = caas_broker::config::Settings::load(None).expect("settings");
    let endpoint = caas_broker::k8s::ClusterEndpoint { server: format!("https://127.0.0.1:{port}"), ca_pem: None };
    let catalog = caas_broker::catalog::Catalog::built_in();
    let domain = caas_broker::server::broker(&settings, catalog, client.clone(), endpoint.clone()).expect("broker");
    let app = caas_broker::server::osb_app(&settings, domain.clone());
    let broker = TestBroker { app, domain, client, endpoint, settings, prefix: "unreachable-".to_owned() };
    let started = std::time::Instant::now();
    let answer = broker.call(Method::PUT, "/v2/service_instances/x", Some(provision_body(MICRO, "o", json!({})))).await;
    assert_osb_error(&answer, StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable");
    let answer =
        broker.call(Method::DELETE, &format!("/v2/service_instances/x?service_id={CAAS}&plan_id={MICRO}"), None).await;
    assert_osb_error(&answer, StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable");
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    let ready = broker.raw(axum::http::Request::get("/readyz").body(axum::body::Body::empty()).expect("req")).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
}

/// A token for a ServiceAccount, minted by the cluster administrator (as a tenant could under the layout before 2.0).
async fn mint_token(client: &kube::Client, namespace: &str, account: &str) -> String {
    let request: k8s_openapi::api::authentication::v1::TokenRequest =
        serde_json::from_value(json!({ "spec": { "expirationSeconds": 3600 } })).expect("token request");
    let accounts = Api::<ServiceAccount>::namespaced(client.clone(), namespace);
    let issued = accounts.create_token_request(account, &PostParams::default(), &request).await.expect("token");
    issued.status.expect("status").token.expect("token")
}

/// Whether a bearer token still gets through to the namespace: Some(true) allowed, Some(false) 401, None otherwise.
async fn token_works(token: &str, namespace: &str) -> Option<bool> {
    let mut config = support::cluster::cluster().admin_config().await;
    config.auth_info = kube::config::AuthInfo { token: Some(token.to_owned().into()), ..Default::default() };
    let client = kube::Client::try_from(config).expect("client");
    match Api::<Pod>::namespaced(client, namespace).list(&ListParams::default()).await {
        Ok(_) => Some(true),
        Err(kube::Error::Api(status)) if status.code == 401 => Some(false),
        Err(_) => None,
    }
}

/// An instance made before 2.0 kept its owner's and bindings' ServiceAccounts in the tenant namespace, where the
/// tenant could mint tokens for them. A maintenance upgrade moves it to the current layout: the owner leaves the
/// tenant namespace (tokens minted for the old one stop working), an existing binding's credentials keep working until
/// it is unbound (which then revokes them), and fetch and last_operation report the new version.
#[tokio::test]
async fn maintenance_upgrade_moves_an_instance_of_the_old_layout_out_of_the_tenants_reach() {
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::{Patch, PatchParams};
    let broker = TestBroker::start(|_| {}).await;
    let client = broker.client.clone();
    let id = instance_id();
    broker.provision(&id, MICRO, json!({})).await;
    let ns = broker.namespace(&id);
    let identities = broker.settings.kubernetes.identity_namespace.clone();
    let binding = format!("legacy-{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff);
    let bound = broker.bind(&id, &binding, MICRO, json!({})).await;
    assert_eq!(bound.status, StatusCode::CREATED, "{bound:?}");

    // Rewrite the instance and its binding as version 1.0 made them: the namespace's record first, so that drift
    // repair takes the instance for one of the old layout (which it leaves to the upgrade) before its objects change.
    let old_annotations = json!({ "metadata": { "annotations": { "caas-broker.io/identity-namespace": null,
        "caas-broker.io/owner": "owner-jane-doe", "caas-broker.io/maintenance-version": "1.0.0" } } });
    let namespaces = Api::<Namespace>::all(client.clone());
    namespaces.patch(&ns, &PatchParams::default(), &Patch::Merge(&old_annotations)).await.expect("annotations");
    let label = caas_broker::k8s::names::label_value(&id);
    let tenant_accounts = Api::<ServiceAccount>::namespaced(client.clone(), &ns);
    let identity_accounts = Api::<ServiceAccount>::namespaced(client.clone(), &identities);
    let role_bindings = Api::<RoleBinding>::namespaced(client.clone(), &ns);
    let binding_account = caas_broker::k8s::names::dns_label("caas-binding-", &binding);
    for (name, role_binding) in [("owner-jane-doe", "caas-owner"), (binding_account.as_str(), binding_account.as_str())]
    {
        let account: ServiceAccount = serde_json::from_value(json!({ "metadata": { "name": name,
            "labels": { "app.kubernetes.io/managed-by": "caas-broker", "caas-broker.io/instance": label,
                        "caas-broker.io/protected": "true" } } }))
        .expect("account");
        tenant_accounts.create(&PostParams::default(), &account).await.expect("old-layout account");
        let subjects = json!({ "subjects": [{ "kind": "ServiceAccount", "name": name, "namespace": ns }] });
        role_bindings.patch(role_binding, &PatchParams::default(), &Patch::Merge(&subjects)).await.expect("subjects");
    }
    identity_accounts.delete(&caas_broker::k8s::names::owner_account(&id), &Default::default()).await.expect("owner");
    identity_accounts.delete(&binding_account, &Default::default()).await.expect("binding account");
    let owner_token = mint_token(&client, &ns, "owner-jane-doe").await;
    let binding_token = mint_token(&client, &ns, &binding_account).await;
    let records = Api::<Secret>::namespaced(client.clone(), &broker.settings.kubernetes.broker_namespace);
    let record_name = caas_broker::k8s::names::dns_label("binding-", &binding);
    let old_token = bound.body["credentials"]["token"].as_str().expect("token");
    let credentials = bound.body["credentials"].to_string().replace(old_token, &binding_token);
    let record_patch = json!({ "stringData": { "credentials": credentials } });
    records.patch(&record_name, &PatchParams::default(), &Patch::Merge(&record_patch)).await.expect("record");
    assert_eq!(token_works(&owner_token, &ns).await, Some(true), "the old owner's token works before the upgrade");
    assert_eq!(token_works(&binding_token, &ns).await, Some(true), "the old binding's token works");
    let uri = format!("/v2/service_instances/{id}");
    assert_eq!(broker.call(Method::GET, &uri, None).await.body["maintenance_info"]["version"], "1.0.0");

    let upgrade = json!({ "service_id": CAAS, "plan_id": MICRO, "maintenance_info": { "version": "2.0.0" },
        "previous_values": { "plan_id": MICRO, "maintenance_info": { "version": "1.0.0" } } });
    let answer = broker.call(Method::PATCH, &format!("{uri}?accepts_incomplete=true"), Some(upgrade)).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");

    // The owner moved: the old ServiceAccount and its tokens are gone, the new one is out of the tenant's reach.
    assert!(tenant_accounts.get_opt("owner-jane-doe").await.expect("get").is_none(), "old owner still there");
    eventually(Duration::from_secs(15), "the old owner's token to be refused", || async {
        (token_works(&owner_token, &ns).await == Some(false)).then_some(())
    })
    .await;
    let owner = identity_accounts.get(&caas_broker::k8s::names::owner_account(&id)).await.expect("new owner");
    assert_eq!(owner.metadata.owner_references.unwrap_or_default()[0].name, ns);
    let subjects = role_bindings.get("caas-owner").await.expect("owner binding").subjects.unwrap_or_default();
    assert_eq!(subjects[0].namespace.as_deref(), Some(identities.as_str()));
    // The binding keeps working until it is unbound or rotated.
    assert_eq!(token_works(&binding_token, &ns).await, Some(true), "an existing binding keeps working");
    let fetched = broker.call(Method::GET, &uri, None).await;
    assert_eq!(fetched.body["maintenance_info"]["version"], "2.0.0", "{fetched:?}");
    let state = broker.call(Method::GET, &format!("{uri}/last_operation"), None).await;
    assert_eq!(
        state.body,
        json!({ "state": "succeeded",
        "description": "the virtual cluster is ready (maintenance version 2.0.0)" })
    );

    // Unbinding the old binding deletes its ServiceAccount in the tenant namespace: its token is refused at once.
    let unbound = broker.unbind(&id, &binding, MICRO).await;
    assert_eq!(unbound.status, StatusCode::OK, "{unbound:?}");
    assert_eq!(token_works(&binding_token, &ns).await, Some(false), "unbind revoked the old binding's token");
    assert!(tenant_accounts.get_opt(&binding_account).await.expect("get").is_none());
    broker.deprovision(&id, MICRO).await;
}

#[tokio::test]
async fn a_synchronous_deprovision_answers_200_only_once_the_namespace_is_gone() {
    let broker = TestBroker::start(|_| {}).await;
    for query in ["", "&accepts_incomplete=false"] {
        let id = instance_id();
        broker.provision(&id, MICRO, json!({})).await;
        let delete = format!("/v2/service_instances/{id}?service_id={CAAS}&plan_id={MICRO}{query}");
        let deleted = broker.call(Method::DELETE, &delete, None).await;
        assert_eq!((deleted.status, deleted.body.clone()), (StatusCode::OK, json!({})), "{query:?}: {deleted:?}");
        assert!(!namespace_exists(&broker, &id).await, "{query:?}: 200 means deleted, the namespace must be gone");
        assert_osb_error(&broker.call(Method::DELETE, &delete, None).await, StatusCode::GONE, "Gone");
    }
}

#[tokio::test]
async fn a_synchronous_deprovision_that_cannot_finish_in_time_is_async_required_and_a_repeat_follows_it() {
    let broker = TestBroker::start(|settings| settings.limits.sync_timeout_seconds = 2).await;
    let id = instance_id();
    broker.provision(&id, MICRO, json!({})).await;
    let namespace = broker.namespace(&id);
    // An object with a finalizer the test holds keeps the namespace terminating until the test lets it go.
    let held: ConfigMap = serde_json::from_value(json!({
        "metadata": { "name": "held", "finalizers": ["caas-broker.test/hold"] }
    }))
    .expect("config map");
    let config_maps = Api::<ConfigMap>::namespaced(broker.client.clone(), &namespace);
    config_maps.create(&PostParams::default(), &held).await.expect("create held object");

    let delete = format!("/v2/service_instances/{id}?service_id={CAAS}&plan_id={MICRO}");
    let refused = broker.call(Method::DELETE, &delete, None).await;
    assert_osb_error(&refused, StatusCode::UNPROCESSABLE_ENTITY, "AsyncRequired");
    let description = refused.body["description"].as_str().unwrap_or_default();
    assert!(description.contains("the deletion continues") && description.contains("repeat"), "{description}");
    let terminating = Api::<Namespace>::all(broker.client.clone()).get(&namespace).await.expect("namespace");
    assert!(terminating.metadata.deletion_timestamp.is_some(), "the deletion goes on");

    // Being deleted: last_operation says so, with or without the operation.
    for query in ["", "?operation=deprovision"] {
        let state = broker.call(Method::GET, &format!("/v2/service_instances/{id}/last_operation{query}"), None).await;
        assert_eq!((state.status, state.body["state"].clone()), (StatusCode::OK, json!("in progress")), "{query:?}");
    }
    assert_osb_error(
        &broker.call(Method::DELETE, &delete, None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "AsyncRequired",
    );

    // Once released, repeats follow the deletion to its end: 422 while it goes on, then 200 with the namespace gone
    // (or 410, when it vanished between two repeats), then 410.
    let release = json!({ "metadata": { "finalizers": null } });
    config_maps
        .patch("held", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&release))
        .await
        .expect("release");
    eventually(Duration::from_secs(60), "a repeated synchronous DELETE ends", || async {
        let answer = broker.call(Method::DELETE, &delete, None).await;
        match answer.status {
            StatusCode::OK => {
                assert_eq!(answer.body, json!({}));
                assert!(!namespace_exists(&broker, &id).await, "200 means deleted");
                Some(())
            }
            StatusCode::GONE => Some(()),
            _ => {
                assert_osb_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "AsyncRequired");
                None
            }
        }
    })
    .await;
    assert!(!namespace_exists(&broker, &id).await);
    assert_osb_error(&broker.call(Method::DELETE, &delete, None).await, StatusCode::GONE, "Gone");
}

#[tokio::test]
async fn last_operation_of_an_unknown_or_deleted_instance() {
    let broker = TestBroker::start(|_| {}).await;
    let state = |id: String, query: &'static str| {
        let uri = format!("/v2/service_instances/{id}/last_operation{query}");
        let broker = &broker;
        async move { broker.call(Method::GET, &uri, None).await }
    };
    // Never existed: 404 (an unknown instance), except a poll of a deletion, which has nothing left to do.
    let never = instance_id();
    assert_osb_error(&state(never.clone(), "").await, StatusCode::NOT_FOUND, "NotFound");
    assert_osb_error(&state(never.clone(), "?operation=provision").await, StatusCode::NOT_FOUND, "NotFound");
    let polled = state(never, "?operation=deprovision").await;
    assert_eq!((polled.status, polled.body["state"].clone()), (StatusCode::OK, json!("succeeded")));

    // Deleted by an asynchronous deprovision: its poll stays 200 succeeded (what the checkers want); without the
    // operation it is an instance the broker does not know.
    let id = instance_id();
    broker.provision(&id, MICRO, json!({})).await;
    broker.deprovision(&id, MICRO).await;
    let polled = state(id.clone(), "?operation=deprovision").await;
    assert_eq!((polled.status, polled.body["state"].clone()), (StatusCode::OK, json!("succeeded")));
    assert_osb_error(&state(id, "").await, StatusCode::NOT_FOUND, "NotFound");
}

/// Ids whose namespace would be the broker's own or its identity namespace (`<prefix><id>`), or that look like
/// another id's hash (`h-` and hex digits), are refused with 400 and an OSB error body before anything is made: no
/// namespace, no owner identity. An ordinary id beside them is provisioned.
#[tokio::test]
async fn ids_that_would_collide_with_the_brokers_names_are_refused_and_nothing_is_made() {
    let mut own = String::new();
    let broker = TestBroker::start(|settings| {
        // The broker's namespaces within this broker's prefix, so that an id can aim at them.
        let prefix = settings.kubernetes.namespace_prefix.clone();
        settings.kubernetes.broker_namespace = format!("{prefix}records");
        settings.kubernetes.identity_namespace = format!("{prefix}identities");
        own = prefix;
    })
    .await;
    let admin = support::cluster::cluster().admin().await;
    let namespaces = Api::<Namespace>::all(admin.clone());
    let accounts = Api::<ServiceAccount>::all(admin);
    for id in ["records", "identities", "h-0123abcd", &format!("h-{}", "e".repeat(40))] {
        let uri = format!("/v2/service_instances/{id}?accepts_incomplete=true");
        let answer = broker.call(Method::PUT, &uri, Some(provision_body(SMALL, "org-1", json!({})))).await;
        assert_osb_error(&answer, StatusCode::BAD_REQUEST, "BadRequest");
        let description = answer.body["description"].as_str().unwrap_or_default();
        assert!(description.contains(id), "the description names the id: {answer:?}");
        println!("{id}: {} {description}", answer.status);
        assert!(!namespace_exists(&broker, id).await, "a namespace was made for {id}");
        let owner = caas_broker::k8s::names::owner_account(id);
        let made = accounts.list_metadata(&ListParams::default().fields(&format!("metadata.name={owner}"))).await;
        assert!(made.expect("list").items.is_empty(), "an owner identity was made for {id}");
    }
    for namespace in ["records", "identities"] {
        let name = format!("{own}{namespace}");
        assert!(namespaces.get_opt(&name).await.expect("get").is_none(), "{name} was made");
    }
}

/// A broker that expects a tenant guard which is not there (named differently from the one `cluster.sh up`
/// installs, so that nothing shared is deleted): `/readyz` answers 503 naming every missing policy and binding,
/// provision and bind answer 503 with an OSB body saying what to do, and nothing is made. With the (unsafe) opt-out
/// the same broker is ready and provisions; a broker expecting the installed guard is ready.
#[tokio::test]
async fn without_its_tenant_guard_the_broker_is_not_ready_and_refuses_provision_and_bind() {
    let absent = format!("absent-{:06x}", rand::random::<u32>() & 0xffffff);
    let broker = TestBroker::start(|settings| settings.policy.tenant_guard = absent.clone()).await;
    let readyz =
        broker.raw(axum::http::Request::get("/readyz").body(axum::body::Body::empty()).expect("request")).await;
    assert_eq!(readyz.status, StatusCode::SERVICE_UNAVAILABLE, "{readyz:?}");
    let text = readyz.body.as_str().unwrap_or_default().to_owned();
    for suffix in caas_broker::lifecycle::tenant_guard::POLICY_SUFFIXES {
        for kind in ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"] {
            assert!(
                text.contains(&format!("{kind} {absent}-{suffix}: missing")),
                "/readyz does not name {kind} {suffix}: {text}"
            );
        }
    }
    println!("/readyz: {} {text}", readyz.status);

    let instance = instance_id();
    let uri = format!("/v2/service_instances/{instance}?accepts_incomplete=true");
    let answer = broker.call(Method::PUT, &uri, Some(provision_body(SMALL, "org-1", json!({})))).await;
    assert_osb_error(&answer, StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable");
    let description = answer.body["description"].as_str().unwrap_or_default();
    assert!(
        description.contains(&format!("{absent}-tenant-guard")) && description.contains("manifests/tenant-guard.yaml"),
        "the description says what is missing and what to do: {answer:?}"
    );
    assert!(!namespace_exists(&broker, &instance).await, "provision made a namespace without the guard");
    let bound = broker.bind(&instance, "b-1", SMALL, json!({})).await;
    assert_osb_error(&bound, StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable");

    // The guard cluster.sh installs, expected under its own name: ready.
    let guarded = TestBroker::start(|_| {}).await;
    let readyz =
        guarded.raw(axum::http::Request::get("/readyz").body(axum::body::Body::empty()).expect("request")).await;
    assert_eq!((readyz.status, readyz.body.as_str()), (StatusCode::OK, Some("ok")), "{readyz:?}");

    // Opted out (unsafe): the same missing guard no longer stops the broker.
    let unguarded = TestBroker::start(|settings| {
        settings.policy.tenant_guard = absent.clone();
        settings.policy.require_tenant_guard = false;
    })
    .await;
    let readyz =
        unguarded.raw(axum::http::Request::get("/readyz").body(axum::body::Body::empty()).expect("request")).await;
    assert_eq!(readyz.status, StatusCode::OK, "{readyz:?}");
    unguarded.provision(&instance, SMALL, json!({})).await;
    assert!(namespace_exists(&unguarded, &instance).await);
    unguarded.deprovision(&instance, SMALL).await;
}
