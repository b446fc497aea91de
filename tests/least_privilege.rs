//! The broker runs with the least privilege that works: the manifests' ClusterRole and Role, applied to the real
//! control plane, are all a broker needs for a full provision, bind, unbind and deprovision of every service (a
//! missing rule makes a request fail and this test with it), the dashboard's sign-in and kubeconfig and drift repair
//! included, and they do not let it do what it does not need.

mod support;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
use k8s_openapi::api::core::v1::{Event, PersistentVolume, Pod, Secret, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::Api;
use kube::api::{ListParams, PostParams, WatchParams};
use kube::config::AuthInfo;
use serde_json::json;
use support::broker::*;
use support::cluster::{cluster, eventually, repo_root};

const STREAMING: &str = "9d24743d-2818-4042-bdf2-2ec0927842b2";
const CPU_720P: &str = "40fd48d3-6eca-489c-bde5-0254076bc445";
const APP: &str = "d3bc9dcc-7e6e-4233-b13e-fbae81b08a60";
const APP_SMALL: &str = "278427c7-d889-4e85-9efa-d530be419e8f";

/// Applies the broker's namespace and RBAC from `manifests/` and returns a client config with its ServiceAccount's token.
async fn broker_service_account_config() -> kube::Config {
    let cluster = cluster();
    for file in ["namespace.yaml", "rbac.yaml", "deployment.yaml"] {
        let path = repo_root().join("manifests").join(file);
        let path = path.to_str().expect("path");
        let (ok, _, err) = cluster.kubectl(&cluster.kubeconfig, &["apply", "--dry-run=server", "-f", path]);
        assert!(ok, "server-side dry run of {file}: {err}");
        let (ok, _, err) =
            cluster.kubectl(&cluster.kubeconfig, &["apply", "--server-side", "--force-conflicts", "-f", path]);
        assert!(ok, "apply {file}: {err}");
    }
    let admin = cluster.admin().await;
    let request: TokenRequest =
        serde_json::from_value(json!({ "spec": { "expirationSeconds": 3600 } })).expect("request");
    let accounts = Api::<ServiceAccount>::namespaced(admin, "caas-broker-system");
    let issued = accounts.create_token_request("caas-broker", &PostParams::default(), &request).await.expect("token");
    let token = issued.status.and_then(|s| s.token).expect("token");
    let mut config = cluster.admin_config().await;
    config.auth_info = AuthInfo { token: Some(token.into()), ..AuthInfo::default() };
    config
}

/// Whether `client`'s identity may `verb` `resource` (core group) in `namespace`, as the apiserver says.
async fn may(client: &kube::Client, namespace: &str, verb: &str, resource: &str) -> bool {
    let review: SelfSubjectAccessReview = serde_json::from_value(json!({ "spec": { "resourceAttributes": {
        "namespace": namespace, "verb": verb, "resource": resource } } }))
    .expect("review");
    let answer = Api::<SelfSubjectAccessReview>::all(client.clone()).create(&PostParams::default(), &review).await;
    answer.expect("access review").status.is_some_and(|status| status.allowed)
}

/// Whether `client` may list pod metrics (`metrics.k8s.io`) in `namespace`.
async fn may_read_pod_metrics(client: &kube::Client, namespace: &str) -> bool {
    let review: SelfSubjectAccessReview = serde_json::from_value(json!({ "spec": { "resourceAttributes": {
        "namespace": namespace, "verb": "list", "group": "metrics.k8s.io", "resource": "pods" } } }))
    .expect("review");
    let answer = Api::<SelfSubjectAccessReview>::all(client.clone()).create(&PostParams::default(), &review).await;
    answer.expect("access review").status.is_some_and(|status| status.allowed)
}

fn forbidden<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> bool {
    matches!(result, Err(kube::Error::Api(status)) if status.code == 403)
}

#[tokio::test]
async fn every_service_works_under_the_manifests_role_and_nothing_more() {
    install_tenant_guard();
    let config = broker_service_account_config().await;
    let broker = TestBroker::start_with_config(config, caas_broker::catalog::Catalog::built_in(), |_| {});
    let org = format!("org-lp-{:06x}", rand::random::<u32>() & 0xffffff);

    // Virtual cluster, binding, credentials in use, unbinding.
    let cluster_id = format!("lp-{:08x}", rand::random::<u32>());
    let put = |id: String, body: serde_json::Value| {
        let uri = format!("/v2/service_instances/{id}?accepts_incomplete=true");
        let broker = &broker;
        async move { broker.call(Method::PUT, &uri, Some(body)).await }
    };
    let created = put(cluster_id.clone(), provision_body(SMALL, &org, json!({}))).await;
    assert!(created.status.is_success(), "{created:?}");
    broker.wait_for_state(&cluster_id, "provision", "succeeded").await;
    // The copy of the records that polls are answered from lists and watches under these rules too (without them
    // every read would silently go to the cluster).
    eventually(Duration::from_secs(20), "the copy of the records to sync under the manifests' rules", || async {
        broker.records_copy_synced().then_some(())
    })
    .await;
    let namespace = broker.namespace(&cluster_id);
    let dashboard_domain = broker.domain.clone();
    // Drift repair lists, watches, repairs and records under these rules too: what an operator deletes comes back.
    eventually(Duration::from_secs(20), "the drift watches to list under the manifests' rules", || async {
        broker.domain.drift_watched().then_some(())
    })
    .await;
    let operator = cluster().admin().await;
    let policies = Api::<NetworkPolicy>::namespaced(operator.clone(), &namespace);
    policies.delete("caas-default-deny", &Default::default()).await.expect("delete the policy as an operator");
    eventually(Duration::from_secs(10), "the policy to be repaired under the manifests' rules", || async {
        policies.get_opt("caas-default-deny").await.expect("read the policy").map(|_| ())
    })
    .await;
    let events = Api::<Event>::namespaced(operator, &namespace);
    eventually(Duration::from_secs(10), "the repair recorded as an Event", || async {
        let listed = events.list(&ListParams::default()).await.expect("list events").items;
        listed.iter().any(|event| event.reason.as_deref() == Some("Repaired")).then_some(())
    })
    .await;
    for role in ["admin", "edit", "view"] {
        let binding = format!("{cluster_id}-{role}");
        let bound = broker.bind(&cluster_id, &binding, SMALL, json!({ "parameters": { "role": role } })).await;
        assert_eq!(bound.status, StatusCode::CREATED, "{role}: {bound:?}");
        let client =
            client_from_kubeconfig(bound.body["credentials"]["kubeconfig"].as_str().expect("kubeconfig")).await;
        assert!(Api::<Pod>::namespaced(client, &namespace).list(&ListParams::default()).await.is_ok());
        // The dashboard's sign-in (TokenReview, the identity's ServiceAccount) and kubeconfig download (a token for
        // that ServiceAccount) need nothing more either.
        let token = bound.body["credentials"]["token"].as_str().expect("token");
        let signed_in = dashboard_domain.sign_in(&cluster_id, token).await.expect("dashboard sign-in");
        let caas_broker::lifecycle::SignIn::Accepted(tenant, credential) = signed_in else {
            panic!("{role}: {signed_in:?}")
        };
        let kubeconfig =
            dashboard_domain.kubeconfig(&tenant, &credential).await.expect("the dashboard's kubeconfig download");
        assert!(kubeconfig.yaml.contains(&namespace), "{role}");
    }
    // The dashboard's live view: the broker may watch a tenant namespace (through the RoleBinding it made there at
    // provision) and nowhere else; the first live viewer of an instance re-grants it idempotently.
    dashboard_domain.allow_dashboard_watch(&cluster_id).await.expect("the broker grants itself the dashboard's watch");
    let pods = Api::<Pod>::namespaced(broker.client.clone(), &namespace);
    let events = pods.watch_metadata(&WatchParams::default().timeout(1), "0").await.expect("watch a tenant namespace");
    futures::pin_mut!(events);
    let first = futures::TryStreamExt::try_next(&mut events).await;
    assert!(first.is_ok(), "the tenant namespace's pods are watched: {first:?}");
    for elsewhere in ["kube-system", "default", "caas-broker-system"] {
        assert!(!may(&broker.client, elsewhere, "watch", "pods").await, "the broker may not watch {elsewhere}");
        let pods = Api::<Pod>::namespaced(broker.client.clone(), elsewhere);
        let refused = pods.watch_metadata(&WatchParams::default().timeout(1), "0").await;
        let refused = match refused {
            Err(error) => Err(error),
            Ok(events) => {
                futures::pin_mut!(events);
                futures::TryStreamExt::try_next(&mut events).await.map(|_| ())
            }
        };
        assert!(forbidden(refused), "watching pods in {elsewhere}");
    }
    assert!(may(&broker.client, &namespace, "watch", "pods").await);
    assert!(!may(&broker.client, &namespace, "watch", "secrets").await, "only the live view's kinds");
    // Usage accounting reads pod metrics through the same role: in tenant namespaces only.
    assert!(may_read_pod_metrics(&broker.client, &namespace).await, "pod metrics of a tenant namespace");
    for elsewhere in ["kube-system", "default"] {
        assert!(!may_read_pod_metrics(&broker.client, elsewhere).await, "pod metrics of {elsewhere}");
    }

    // The dashboard's members: invited, listed, given another role, signed in with a token of their own, removed.
    {
        use caas_broker::lifecycle::members::Role;
        let alice = "alice@example.test";
        dashboard_domain.invite(&cluster_id, alice, Role::View).await.expect("invite a member");
        dashboard_domain.change_role(&cluster_id, alice, Role::Edit).await.expect("change a member's role");
        let members = dashboard_domain.members(&cluster_id).await.expect("list the members");
        assert!(members.iter().any(|m| m.name == alice && m.role == Some(Role::Edit)), "{members:?}");
        let signed_in = dashboard_domain.sign_in_member(&cluster_id, alice, std::time::Duration::from_secs(3600));
        let (tenant, _) = signed_in.await.expect("a member's sign-in").expect("alice is a member");
        assert_eq!(tenant.namespace, namespace);
        assert!(dashboard_domain.revoke(&cluster_id, alice).await.expect("remove a member"));
    }
    let unbound = broker.unbind(&cluster_id, &format!("{cluster_id}-view"), SMALL).await;
    assert_eq!(unbound.status, StatusCode::OK, "{unbound:?}");
    let update = broker
        .call(
            Method::PATCH,
            &format!("/v2/service_instances/{cluster_id}"),
            Some(json!({ "service_id": CAAS, "plan_id": MEDIUM })),
        )
        .await;
    assert_eq!(update.status, StatusCode::OK, "{update:?}");

    // A container app and a streaming session in it, bound and removed.
    let app = format!("{cluster_id}-app");
    let body = json!({ "service_id": APP, "plan_id": APP_SMALL, "organization_guid": org, "space_guid": "s",
                       "parameters": { "image": "example.invalid/a:1", "port": 8080, "ingress_host": "a.example.test",
                                       "autoscale": { "min": 1, "max": 2 } } });
    assert_eq!(put(app.clone(), body).await.status, StatusCode::ACCEPTED);
    broker.wait_for_state(&app, "provision", "succeeded").await;
    assert_eq!(
        broker.bind(&app, &format!("{app}-b"), APP_SMALL, json!({ "service_id": APP })).await.status,
        StatusCode::CREATED
    );
    let session = format!("{cluster_id}-ss");
    let claim = format!("data-{}-0", caas_broker::k8s::names::short_label("session-", &session, 50));
    let admin = cluster().admin().await;
    support::cluster::reserve_volume(&admin, &format!("{session}-pv"), &namespace, &claim).await;
    let body = json!({ "service_id": STREAMING, "plan_id": CPU_720P, "organization_guid": org, "space_guid": "s",
                       "parameters": { "steam_app_id": 1007, "cluster_instance_id": cluster_id } });
    assert_eq!(put(session.clone(), body).await.status, StatusCode::ACCEPTED);
    broker.wait_for_state(&session, "provision", "succeeded").await;
    let bound = broker.bind(&session, &format!("{session}-b"), CPU_720P, json!({ "service_id": STREAMING })).await;
    assert_eq!(bound.status, StatusCode::CREATED, "{bound:?}");
    for (id, service, plan) in [(&app, APP, APP_SMALL), (&session, STREAMING, CPU_720P)] {
        let uri = format!("/v2/service_instances/{id}?service_id={service}&plan_id={plan}&accepts_incomplete=true");
        let deleting = broker.call(Method::DELETE, &uri, None).await;
        assert_eq!(deleting.status, StatusCode::ACCEPTED, "{deleting:?}");
        let operation = deleting.body["operation"].as_str().expect("operation").to_owned();
        broker.wait_for_state(id, &operation, "succeeded").await;
    }
    broker.deprovision(&cluster_id, MEDIUM).await;
    Api::<PersistentVolume>::all(admin).delete(&format!("{session}-pv"), &Default::default()).await.ok();

    // What the role does not allow.
    let client = broker.client.clone();
    assert!(
        forbidden(Api::<Secret>::all(client.clone()).list(&ListParams::default()).await),
        "list secrets cluster-wide"
    );
    assert!(forbidden(Api::<Secret>::namespaced(client.clone(), "kube-system").list(&ListParams::default()).await));
    assert!(forbidden(Api::<Pod>::namespaced(client.clone(), "kube-system").get("anything").await));
    let escalation: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": { "name": "lp-escalation" },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin" },
        "subjects": [{ "kind": "ServiceAccount", "name": "caas-broker", "namespace": "caas-broker-system" }]
    }))
    .expect("crb");
    assert!(forbidden(Api::<ClusterRoleBinding>::all(client).create(&PostParams::default(), &escalation).await));
}
