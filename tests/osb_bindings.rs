//! Bindings over the OSB API against the real control plane: the credentials work with the real kubectl and the Rust
//! client, repeats return the same credentials, rotation keeps the role, unbinding revokes at once.

mod support;

use axum::http::{Method, StatusCode};
use base64::Engine;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::{Value, json};
use support::broker::*;
use support::cluster::cluster;

fn id(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

fn now_seconds() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64
}

fn seconds_until(timestamp: &Value) -> i64 {
    let at: jiff::Timestamp = timestamp.as_str().expect("timestamp string").parse().expect("ISO 8601");
    at.as_second() - now_seconds()
}

fn is_status(result: &Result<impl std::fmt::Debug, kube::Error>, code: u16) -> bool {
    matches!(result, Err(kube::Error::Api(status)) if status.code == code)
}

/// No binding ServiceAccount of the instance is left in (or was made in) the tenant namespace, nor in the identity
/// namespace.
async fn assert_no_binding_accounts(broker: &TestBroker, instance: &str) {
    let selector = format!("caas-broker.io/instance={}", caas_broker::k8s::names::label_value(instance));
    for namespace in [broker.namespace(instance), broker.settings.kubernetes.identity_namespace.clone()] {
        let accounts = Api::<ServiceAccount>::namespaced(broker.client.clone(), &namespace);
        let listed = accounts.list(&ListParams::default().labels(&selector)).await.expect("list service accounts");
        let names: Vec<String> = listed.items.into_iter().filter_map(|a| a.metadata.name).collect();
        assert!(names.iter().all(|n| !n.starts_with("caas-binding-")), "binding accounts in {namespace}: {names:?}");
    }
}

/// Writes a kubeconfig to a temporary file for kubectl.
fn kubeconfig_file(text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("binding-{:016x}.kubeconfig", rand::random::<u64>()));
    std::fs::write(&path, text).expect("write kubeconfig");
    path
}

#[tokio::test]
async fn bind_hands_out_working_scoped_credentials_and_unbind_revokes_them() {
    let mut broker = TestBroker::start(|_| {}).await;
    let instance = id("inst");
    broker.provision(&instance, SMALL, json!({})).await;
    let namespace = broker.namespace(&instance);
    let binding = id("bind");

    let created =
        broker.bind(&instance, &binding, SMALL, json!({ "parameters": { "expiration_seconds": 3600 } })).await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let credentials = &created.body["credentials"];
    assert_eq!(credentials["namespace"], namespace);
    assert_eq!(credentials["role"], "edit");
    assert_eq!(credentials["server"], broker.endpoint.server);
    let ca = base64::engine::general_purpose::STANDARD
        .decode(credentials["certificate_authority_data"].as_str().expect("CA data"))
        .expect("base64");
    assert!(String::from_utf8_lossy(&ca).starts_with("-----BEGIN CERTIFICATE-----"));
    let lifetime = seconds_until(&created.body["metadata"]["expires_at"]);
    assert!((3500..=3700).contains(&lifetime), "expires in {lifetime}s, asked for 3600");
    let renew = seconds_until(&created.body["metadata"]["renew_before"]);
    assert!(renew < lifetime && renew > lifetime / 2, "renew_before {renew}s, expires {lifetime}s");
    let port = broker.endpoint.server.rsplit(':').next().expect("port");
    assert_eq!(created.body["endpoints"], json!([{ "host": "127.0.0.1", "ports": [port], "protocol": "tcp" }]));

    // The kubeconfig works as it is, with the real kubectl: edit may create, and sees only its namespace.
    let kubeconfig = credentials["kubeconfig"].as_str().expect("kubeconfig");
    let file = kubeconfig_file(kubeconfig);
    let cluster = cluster();
    let (ok, _, err) = cluster.kubectl(&file, &["create", "configmap", "from-kubectl", "--from-literal=a=b"]);
    assert!(ok, "edit creates in its namespace: {err}");
    let (ok, out, _) =
        cluster.kubectl(&file, &["get", "configmap", "from-kubectl", "-o", "jsonpath={.metadata.namespace}"]);
    assert!(ok);
    assert_eq!(out, namespace, "the kubeconfig's context points at the tenant namespace");
    let (ok, _, err) = cluster.kubectl(&file, &["get", "pods", "-n", "default"]);
    assert!(!ok && err.contains("Forbidden"), "other namespaces are forbidden: {err}");

    // Credentials are nowhere in the instance's annotations.
    let token = credentials["token"].as_str().expect("token").to_owned();
    let ns = Api::<Namespace>::all(broker.client.clone()).get(&namespace).await.expect("namespace");
    assert!(!serde_json::to_string(&ns).expect("json").contains(&token));

    // Identical repeat: 200 with the same credentials; other parameters: 409.
    let again = broker.bind(&instance, &binding, SMALL, json!({ "parameters": { "expiration_seconds": 3600 } })).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["credentials"]["token"], token.as_str());
    let conflict = broker.bind(&instance, &binding, SMALL, json!({ "parameters": { "role": "admin" } })).await;
    assert_eq!(conflict.status, StatusCode::CONFLICT, "{conflict:?}");
    assert_eq!(conflict.body["error"], "Conflict");

    // GET binding returns the same credentials, also from a restarted broker.
    broker.restart();
    let uri = format!("/v2/service_instances/{instance}/service_bindings/{binding}");
    let fetched = broker.call(Method::GET, &uri, None).await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.body["credentials"], created.body["credentials"]);
    assert_eq!(fetched.body["metadata"], created.body["metadata"]);
    assert_eq!(fetched.body["parameters"], json!({ "expiration_seconds": 3600 }));
    let state = broker.call(Method::GET, &format!("{uri}/last_operation"), None).await;
    assert_eq!(state.body["state"], "succeeded");

    // Unbind: the token stops working at once (401), the record and objects are gone.
    let client = client_from_kubeconfig(kubeconfig).await;
    let pods = Api::<Pod>::namespaced(client.clone(), &namespace);
    assert!(pods.list(&ListParams::default()).await.is_ok());
    let unbound = broker.unbind(&instance, &binding, SMALL).await;
    assert_eq!((unbound.status, unbound.body.clone()), (StatusCode::OK, json!({})));
    let refused = pods.list(&ListParams::default()).await;
    assert!(is_status(&refused, 401), "a deleted binding's token must be refused with 401: {refused:?}");
    assert_no_binding_accounts(&broker, &instance).await;
    let records = Api::<Secret>::namespaced(broker.client.clone(), &broker.settings.kubernetes.broker_namespace);
    let selector = format!("caas-broker.io/binding={binding}");
    assert!(records.list(&ListParams::default().labels(&selector)).await.expect("list").items.is_empty());
    assert_eq!(broker.unbind(&instance, &binding, SMALL).await.status, StatusCode::GONE);
    assert_eq!(broker.call(Method::GET, &uri, None).await.status, StatusCode::NOT_FOUND);
    let after = broker.call(Method::GET, &format!("{uri}/last_operation?operation=unbind"), None).await;
    assert_eq!(after.body["state"], "succeeded");
    std::fs::remove_file(file).ok();
    broker.deprovision(&instance, SMALL).await;
}

#[tokio::test]
async fn bad_binds_are_refused_and_create_nothing() {
    let broker = TestBroker::start(|_| {}).await;
    let instance = id("inst");
    broker.provision(&instance, MICRO, json!({})).await;
    let binding = id("bind");
    let cases = [
        (json!({ "service_id": "" }), StatusCode::BAD_REQUEST, "service_id"),
        (json!({ "plan_id": "nope" }), StatusCode::BAD_REQUEST, "plan_id"),
        (json!({ "plan_id": SMALL }), StatusCode::BAD_REQUEST, "plan_id"),
        (json!({ "parameters": { "role": "cluster-admin" } }), StatusCode::BAD_REQUEST, "parameters.role"),
        (
            json!({ "parameters": { "expiration_seconds": 60 } }),
            StatusCode::BAD_REQUEST,
            "parameters.expiration_seconds",
        ),
        (
            json!({ "parameters": { "expiration_seconds": 10_000_000 } }),
            StatusCode::BAD_REQUEST,
            "parameters.expiration_seconds",
        ),
        (json!({ "predecessor_binding_id": "never-existed" }), StatusCode::BAD_REQUEST, "predecessor_binding_id"),
    ];
    for (extra, status, mentions) in cases {
        let answer = broker.bind(&instance, &binding, MICRO, extra.clone()).await;
        assert_eq!(answer.status, status, "{extra}: {answer:?}");
        let description = answer.body["description"].as_str().unwrap_or_default();
        assert!(description.contains(mentions), "{extra}: {description}");
    }
    let unknown = broker.bind(&id("missing"), &binding, MICRO, json!({})).await;
    assert_eq!((unknown.status, unknown.body["error"].clone()), (StatusCode::NOT_FOUND, json!("NotFound")));
    assert_no_binding_accounts(&broker, &instance).await;
    let uri = format!("/v2/service_instances/{instance}/service_bindings/{binding}");
    assert_eq!(broker.call(Method::GET, &uri, None).await.status, StatusCode::NOT_FOUND);
    let missing_ids = broker.call(Method::DELETE, &format!("{uri}?plan_id={MICRO}"), None).await;
    assert_eq!(missing_ids.status, StatusCode::BAD_REQUEST);
    broker.deprovision(&instance, MICRO).await;
}

#[tokio::test]
async fn rotation_issues_new_credentials_with_the_predecessors_role() {
    let broker = TestBroker::start(|_| {}).await;
    let instance = id("inst");
    broker.provision(&instance, MICRO, json!({})).await;
    let namespace = broker.namespace(&instance);
    let first = id("first");
    let params = json!({ "role": "view", "expiration_seconds": 7200 });
    let original = broker.bind(&instance, &first, MICRO, json!({ "parameters": params })).await;
    assert_eq!(original.status, StatusCode::CREATED);
    let second = id("second");
    let rotated = broker.bind(&instance, &second, MICRO, json!({ "predecessor_binding_id": first })).await;
    assert_eq!(rotated.status, StatusCode::CREATED, "{rotated:?}");
    assert_eq!(rotated.body["credentials"]["role"], "view");
    assert_ne!(rotated.body["credentials"]["token"], original.body["credentials"]["token"]);
    let lifetime = seconds_until(&rotated.body["metadata"]["expires_at"]);
    assert!((7000..=7300).contains(&lifetime), "the predecessor's expiration is kept: {lifetime}");
    let fetched =
        broker.call(Method::GET, &format!("/v2/service_instances/{instance}/service_bindings/{second}"), None).await;
    assert_eq!(fetched.body["parameters"], params);

    // Both credentials work until the predecessor is unbound; the rotated one can view but not create.
    for answer in [&original, &rotated] {
        let client =
            client_from_kubeconfig(answer.body["credentials"]["kubeconfig"].as_str().expect("kubeconfig")).await;
        let configmaps = Api::<ConfigMap>::namespaced(client, &namespace);
        assert!(configmaps.list(&ListParams::default()).await.is_ok());
        let create = configmaps
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({ "metadata": { "name": "x" } })).expect("cm"),
            )
            .await;
        assert!(is_status(&create, 403), "view must not create: {create:?}");
    }
    assert_eq!(broker.unbind(&instance, &first, MICRO).await.status, StatusCode::OK);
    let client = client_from_kubeconfig(rotated.body["credentials"]["kubeconfig"].as_str().expect("kubeconfig")).await;
    assert!(Api::<ConfigMap>::namespaced(client, &namespace).list(&ListParams::default()).await.is_ok());

    // A rotation may not change the parameters.
    let third = id("third");
    let changed = broker
        .bind(&instance, &third, MICRO, json!({ "predecessor_binding_id": second, "parameters": { "role": "admin" } }))
        .await;
    assert_eq!(changed.status, StatusCode::BAD_REQUEST, "{changed:?}");

    // Deprovision removes the remaining binding's record.
    broker.deprovision(&instance, MICRO).await;
    let records = Api::<Secret>::namespaced(broker.client.clone(), &broker.settings.kubernetes.broker_namespace);
    let selector = format!("caas-broker.io/instance={instance}");
    assert!(records.list(&ListParams::default().labels(&selector)).await.expect("list").items.is_empty());
}

#[tokio::test]
async fn plans_that_require_an_app_refuse_service_keys() {
    let text = caas_broker::catalog::BUILT_IN.replacen(
        "pod_security: baseline",
        "pod_security: baseline\n          requires_app: true",
        1,
    );
    let catalog = caas_broker::catalog::Catalog::from_yaml(&text).expect("catalog");
    let broker = TestBroker::start_with_catalog(catalog, |_| {}).await;
    let instance = id("inst");
    broker.provision(&instance, MICRO, json!({})).await;
    let service_key =
        broker.bind(&instance, &id("key"), MICRO, json!({ "bind_resource": { "credential_client_id": "cc" } })).await;
    assert_eq!(
        (service_key.status, service_key.body["error"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("RequiresApp"))
    );
    let with_app = broker.bind(&instance, &id("app"), MICRO, json!({})).await;
    assert_eq!(with_app.status, StatusCode::CREATED);
    broker.deprovision(&instance, MICRO).await;
}

#[tokio::test]
async fn concurrent_identical_binds_share_one_binding() {
    let broker = TestBroker::start(|_| {}).await;
    let instance = id("inst");
    broker.provision(&instance, MICRO, json!({})).await;
    let binding = id("bind");
    let answers = futures::future::join_all((0..8).map(|_| broker.bind(&instance, &binding, MICRO, json!({})))).await;
    let created = answers.iter().filter(|a| a.status == StatusCode::CREATED).count();
    assert!(
        created == 1 && answers.iter().all(|a| a.status == StatusCode::CREATED || a.status == StatusCode::OK),
        "{answers:?}"
    );
    let fetched =
        broker.call(Method::GET, &format!("/v2/service_instances/{instance}/service_bindings/{binding}"), None).await;
    let token = &fetched.body["credentials"]["token"];
    let ok_tokens: Vec<&Value> =
        answers.iter().filter(|a| a.status == StatusCode::OK).map(|a| &a.body["credentials"]["token"]).collect();
    assert!(ok_tokens.iter().all(|t| *t == token), "every 200 returns the recorded credentials");
    broker.deprovision(&instance, MICRO).await;
}

/// The ServiceAccount a binding's token authenticates as (namespace, name), asked of the apiserver.
async fn account_of(broker: &TestBroker, token: &str) -> (String, String) {
    use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
    let review = TokenReview {
        spec: TokenReviewSpec { token: token.to_owned(), ..TokenReviewSpec::default() },
        ..TokenReview::default()
    };
    let reviewed = Api::<TokenReview>::all(broker.client.clone()).create(&PostParams::default(), &review).await;
    let username = reviewed.expect("token review").status.and_then(|s| s.user).and_then(|u| u.username);
    let username = username.expect("the token authenticates");
    let account = username.strip_prefix("system:serviceaccount:").expect("a ServiceAccount");
    let (namespace, name) = account.split_once(':').expect("namespace:name");
    (namespace.to_owned(), name.to_owned())
}

#[tokio::test]
async fn unbind_answers_200_only_once_the_binding_objects_are_gone() {
    let broker = TestBroker::start(|settings| settings.limits.sync_timeout_seconds = 2).await;
    let instance = id("inst");
    broker.provision(&instance, SMALL, json!({})).await;
    for accepts_incomplete in [false, true] {
        let binding = id("bind");
        let created = broker.bind(&instance, &binding, SMALL, json!({})).await;
        assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
        let token = created.body["credentials"]["token"].as_str().expect("token").to_owned();
        let (identities, account) = account_of(&broker, &token).await;
        assert_eq!(identities, broker.settings.kubernetes.identity_namespace, "the binding's identity is out of reach");
        let namespace = broker.namespace(&instance);
        // A finalizer the test holds keeps the binding's RoleBinding in the cluster after it is deleted (on the
        // ServiceAccount it would also keep the token valid: the apiserver accepts tokens of a ServiceAccount for
        // 60 s after its deletion began).
        let role_bindings = Api::<RoleBinding>::namespaced(broker.client.clone(), &namespace);
        let listed = role_bindings.list(&ListParams::default()).await.expect("list role bindings");
        let name = listed
            .items
            .into_iter()
            .find(|b| b.subjects.iter().flatten().any(|s| s.kind == "ServiceAccount" && s.name == account))
            .and_then(|b| b.metadata.name)
            .expect("the binding's RoleBinding");
        let hold = json!({ "metadata": { "finalizers": ["caas-broker.test/hold"] } });
        let patch = kube::api::Patch::Merge(&hold);
        role_bindings.patch(&name, &kube::api::PatchParams::default(), &patch).await.expect("hold");

        let uri = format!("/v2/service_instances/{instance}/service_bindings/{binding}");
        let delete = format!("{uri}?service_id={CAAS}&plan_id={SMALL}&accepts_incomplete={accepts_incomplete}");
        let answer = broker.call(Method::DELETE, &delete, None).await;
        let poll = format!("{uri}/last_operation?operation=unbind");
        if accepts_incomplete {
            assert_eq!((answer.status, answer.body.clone()), (StatusCode::ACCEPTED, json!({ "operation": "unbind" })));
            let state = broker.call(Method::GET, &poll, None).await;
            assert_eq!(state.body["state"], "in progress", "{state:?}");
        } else {
            assert_eq!(
                (answer.status, answer.body["error"].clone()),
                (StatusCode::UNPROCESSABLE_ENTITY, json!("AsyncRequired"))
            );
            let description = answer.body["description"].as_str().unwrap_or_default();
            assert!(description.contains("the deletion continues"), "{description}");
        }
        let release = json!({ "metadata": { "finalizers": null } });
        role_bindings
            .patch(&name, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&release))
            .await
            .expect("release");
        if accepts_incomplete {
            let done = support::cluster::eventually(std::time::Duration::from_secs(30), "unbind succeeded", || async {
                let state = broker.call(Method::GET, &poll, None).await;
                (state.body["state"] == "succeeded").then_some(state)
            })
            .await;
            assert_eq!(done.status, StatusCode::OK);
        } else {
            // Repeats follow the deletion (422 while the apiserver still caches the token) until it is done: 200.
            let repeat = support::cluster::eventually(std::time::Duration::from_secs(30), "a repeat's 200", || async {
                let repeat = broker.call(Method::DELETE, &delete, None).await;
                assert!(
                    [StatusCode::OK, StatusCode::UNPROCESSABLE_ENTITY].contains(&repeat.status),
                    "a repeat answers 200 or 422: {repeat:?}"
                );
                (repeat.status == StatusCode::OK).then_some(repeat)
            })
            .await;
            assert_eq!(repeat.body, json!({}), "{repeat:?}");
        }
        assert!(role_bindings.get_opt(&name).await.expect("get").is_none(), "the RoleBinding is gone");
        // Done means revoked: the credentials are dead.
        let client =
            client_from_kubeconfig(created.body["credentials"]["kubeconfig"].as_str().expect("kubeconfig")).await;
        let refused = Api::<Pod>::namespaced(client, &broker.namespace(&instance)).list(&ListParams::default()).await;
        assert!(is_status(&refused, 401), "{refused:?}");
        assert_eq!(broker.call(Method::DELETE, &delete, None).await.status, StatusCode::GONE);
        assert_eq!(broker.call(Method::GET, &uri, None).await.status, StatusCode::NOT_FOUND);
    }
    broker.deprovision(&instance, SMALL).await;
}

#[tokio::test]
async fn last_operation_of_an_unknown_binding() {
    let broker = TestBroker::start(|_| {}).await;
    let instance = id("inst");
    broker.provision(&instance, MICRO, json!({})).await;
    for parent in [instance.clone(), id("never")] {
        let uri = format!("/v2/service_instances/{parent}/service_bindings/{}/last_operation", id("never"));
        for query in ["", "?operation=bind"] {
            let answer = broker.call(Method::GET, &format!("{uri}{query}"), None).await;
            assert_eq!(
                (answer.status, answer.body["error"].clone()),
                (StatusCode::NOT_FOUND, json!("NotFound")),
                "{query:?}"
            );
            assert!(answer.body["description"].is_string());
        }
        let unbound = broker.call(Method::GET, &format!("{uri}?operation=unbind"), None).await;
        assert_eq!((unbound.status, unbound.body["state"].clone()), (StatusCode::OK, json!("succeeded")));
    }
    broker.deprovision(&instance, MICRO).await;
}
