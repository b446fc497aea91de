//! Proof that the local control plane is a real one: RBAC, TokenRequest, quota admission, the scheduler with the
//! simulated kubelets, and the namespace controller all act as on a production cluster.

mod support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Pod, ResourceQuota, ServiceAccount};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{ListParams, PostParams};
use kube::config::AuthInfo;
use kube::{Api, Client};
use serde::de::DeserializeOwned;
use serde_json::json;
use support::cluster::{TestNamespace, cluster, delete_namespace_and_wait, eventually};

fn object<T: DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).expect("valid object literal")
}

fn forbidden(result: Result<impl std::fmt::Debug, kube::Error>) -> bool {
    matches!(result, Err(kube::Error::Api(status)) if status.code == 403)
}

#[tokio::test]
async fn apiserver_reports_the_pinned_release() {
    let client = cluster().admin().await;
    let version = client.apiserver_version().await.expect("version");
    let pinned = std::fs::read_to_string(support::cluster::repo_root().join("tests/cluster/kubernetes/go.mod"))
        .expect("read go.mod");
    let pinned = pinned
        .lines()
        .find_map(|line| line.trim().trim_start_matches("require ").strip_prefix("k8s.io/kubernetes "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("go.mod pins k8s.io/kubernetes");
    assert_eq!(version.git_version, pinned);
}

#[tokio::test]
async fn bound_token_reaches_its_namespace_and_is_refused_elsewhere() {
    let admin = cluster().admin().await;
    let own = TestNamespace::create(&admin, "rbac-own").await;
    let other = TestNamespace::create(&admin, "rbac-other").await;

    let accounts = Api::<ServiceAccount>::namespaced(admin.clone(), &own.name);
    accounts
        .create(&PostParams::default(), &object(json!({ "metadata": { "name": "reader" } })))
        .await
        .expect("create ServiceAccount");
    let binding: RoleBinding = object(json!({
        "metadata": { "name": "reader-view" },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view" },
        "subjects": [{ "kind": "ServiceAccount", "name": "reader", "namespace": own.name }]
    }));
    Api::<RoleBinding>::namespaced(admin.clone(), &own.name)
        .create(&PostParams::default(), &binding)
        .await
        .expect("create RoleBinding");

    let request: TokenRequest = object(json!({ "spec": { "audiences": [], "expirationSeconds": 600 } }));
    let issued = accounts.create_token_request("reader", &PostParams::default(), &request).await.expect("TokenRequest");
    let status = issued.status.expect("TokenRequest has a status");
    let expires = status.expiration_timestamp.expect("TokenRequest says when the token expires");
    let lifetime = expires.0.as_second() - now_seconds();
    assert!((540..=660).contains(&lifetime), "token expires in {lifetime}s, asked for 600s");

    let mut config = cluster().admin_config().await;
    config.auth_info =
        AuthInfo { token: Some(status.token.expect("TokenRequest returns a token").into()), ..AuthInfo::default() };
    let reader = Client::try_from(config).expect("token client");

    let pods_own = Api::<Pod>::namespaced(reader.clone(), &own.name).list(&ListParams::default()).await;
    assert!(pods_own.is_ok(), "view may list pods in its namespace: {pods_own:?}");
    let pods_other = Api::<Pod>::namespaced(reader.clone(), &other.name).list(&ListParams::default()).await;
    assert!(forbidden(pods_other), "listing pods in another namespace must be 403");
    let create_own = Api::<ServiceAccount>::namespaced(reader, &own.name)
        .create(&PostParams::default(), &object(json!({ "metadata": { "name": "sneaky" } })))
        .await;
    assert!(forbidden(create_own), "view must not create");
}

fn now_seconds() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970").as_secs() as i64
}

#[tokio::test]
async fn resource_quota_refuses_a_pod_over_it() {
    let admin = cluster().admin().await;
    let ns = TestNamespace::create(&admin, "quota").await;
    let quota: ResourceQuota = object(json!({
        "metadata": { "name": "small" },
        "spec": { "hard": { "requests.cpu": "500m", "limits.cpu": "1", "pods": "5" } }
    }));
    Api::<ResourceQuota>::namespaced(admin.clone(), &ns.name)
        .create(&PostParams::default(), &quota)
        .await
        .expect("create quota");
    // The quota controller must have computed usage before admission can charge against it.
    let quotas = Api::<ResourceQuota>::namespaced(admin.clone(), &ns.name);
    eventually(Duration::from_secs(30), "quota status", || async {
        quotas.get("small").await.ok()?.status?.used.map(|_| ())
    })
    .await;

    let pod = |name: &str, cpu: &str| -> Pod {
        object(json!({
            "metadata": { "name": name },
            "spec": { "containers": [{ "name": "app", "image": "example.invalid/app:1",
                "resources": { "requests": { "cpu": cpu }, "limits": { "cpu": cpu } } }] }
        }))
    };
    let pods = Api::<Pod>::namespaced(admin.clone(), &ns.name);
    // Quota admission charges against the quota as the apiserver's informer has it, which may lag the controller's
    // status under load: wait (by server-side dry runs, which change nothing) until admission itself enforces it.
    let dry_run = PostParams { dry_run: true, ..PostParams::default() };
    eventually(Duration::from_secs(30), "quota admission to enforce the new quota", || async {
        pods.create(&dry_run, &pod("too-big", "2")).await.is_err().then_some(())
    })
    .await;
    let over = pods.create(&PostParams::default(), &pod("too-big", "2")).await;
    match over {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 403);
            assert!(status.message.contains("exceeded quota"), "unexpected refusal: {}", status.message);
        }
        other => panic!("a pod over the quota must be refused, got {other:?}"),
    }
    pods.create(&PostParams::default(), &pod("fits", "200m")).await.expect("a pod within the quota is admitted");
}

#[tokio::test]
async fn deployment_pods_become_ready_on_simulated_nodes() {
    let admin = cluster().admin().await;
    let ns = TestNamespace::create(&admin, "deploy").await;
    let deployment: Deployment = object(json!({
        "metadata": { "name": "web" },
        "spec": {
            "replicas": 2,
            "selector": { "matchLabels": { "app": "web" } },
            "template": {
                "metadata": { "labels": { "app": "web" } },
                "spec": { "containers": [{ "name": "web", "image": "example.invalid/web:1" }] }
            }
        }
    }));
    let deployments = Api::<Deployment>::namespaced(admin.clone(), &ns.name);
    deployments.create(&PostParams::default(), &deployment).await.expect("create deployment");
    eventually(Duration::from_secs(60), "2 ready replicas", || async {
        let ready = deployments.get("web").await.ok()?.status?.ready_replicas?;
        (ready == 2).then_some(())
    })
    .await;
    let pods = Api::<Pod>::namespaced(admin, &ns.name).list(&ListParams::default()).await.expect("list pods");
    assert_eq!(pods.items.len(), 2);
    for pod in pods.items {
        let node = pod.spec.and_then(|spec| spec.node_name).unwrap_or_default();
        assert!(node.starts_with("kwok-node-"), "pod scheduled onto {node:?}");
        assert_eq!(pod.status.and_then(|status| status.phase).as_deref(), Some("Running"));
    }
}

#[tokio::test]
async fn deleted_namespace_disappears() {
    let admin = cluster().admin().await;
    let ns = TestNamespace::create(&admin, "delete").await;
    Api::<ServiceAccount>::namespaced(admin.clone(), &ns.name)
        .create(&PostParams::default(), &object(json!({ "metadata": { "name": "leftover" } })))
        .await
        .expect("create content");
    delete_namespace_and_wait(&admin, &ns.name).await;
}
