//! What the tests on the real node (`tests/cluster/real-node.sh`) share: where the node is, the images it holds, a
//! broker that sends workloads to it, and pods pinned to it.

use std::process::Command;

use caas_broker::config::{PullPolicy, Settings};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use serde_json::{Value, json};

use super::broker::{TestBroker, provision_body};
use super::cluster::{cluster, repo_root};

/// The real node `tests/cluster/real-node.sh` joins, its label and its taint.
pub const NODE: &str = "caas-real-node";
pub const NODE_LABEL: (&str, &str) = ("type", "real");
pub const NODE_TAINT: &str = "caas.dev/real-node";

/// The catalog's streaming-session offering and its cpu-720p plan.
pub const STREAMING: &str = "9d24743d-2818-4042-bdf2-2ec0927842b2";
pub const CPU_720P: &str = "40fd48d3-6eca-489c-bde5-0254076bc445";

/// One test at a time on the one real node (its two cores hold one session and little else).
pub static NODE_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A fresh id with `prefix`, so that runs never meet each other's objects.
pub fn id(prefix: &str) -> String {
    format!("{prefix}-{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

/// The reference `images/build.sh` gives its image `name` (the node imported it under that name).
pub fn image(name: &str) -> String {
    let out = Command::new("bash")
        .arg(repo_root().join("images/build.sh"))
        .arg("--list")
        .output()
        .expect("run images/build.sh");
    assert!(out.status.success(), "images/build.sh --list failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some(name)).then(|| words.next().map(str::to_owned)).flatten()
        })
        .unwrap_or_else(|| panic!("images/build.sh --list names no image {name}"))
}

/// Fails, naming the command to run, when the real node is not Ready or lacks one of `images`.
pub async fn assert_ready(images: &[&str]) {
    let admin = cluster().admin().await;
    let node = Api::<Node>::all(admin).get_opt(NODE).await.expect("read the real node");
    let status = node.as_ref().and_then(|n| n.status.clone()).unwrap_or_default();
    let ready = status.conditions.iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True");
    assert!(ready, "the real node {NODE} is not Ready: run `bash tests/cluster/real-node.sh up` (status: {status:?})");
    let held: Vec<String> = status.images.iter().flatten().flat_map(|i| i.names.clone().unwrap_or_default()).collect();
    for name in images {
        let reference = image(name);
        assert!(
            held.contains(&reference),
            "the node lacks {reference}: run `bash tests/cluster/real-node.sh images {name}`"
        );
    }
}

/// Sends workloads to the real node, as an operator sets it for a node pool of its own.
pub fn on_the_real_node(settings: &mut Settings) {
    settings.workloads.node_selector = vec![format!("{}={}", NODE_LABEL.0, NODE_LABEL.1)];
    settings.workloads.tolerations = vec![format!("{NODE_TAINT}=true:NoSchedule")];
    settings.workloads.image_pull_policy = Some(PullPolicy::IfNotPresent);
}

/// A provision request of `plan` of `service` for `org` with `parameters`, as Cloud Foundry sends it.
pub fn body(service: &str, plan: &str, org: &str, parameters: Value) -> Value {
    json!({ "service_id": service, "plan_id": plan, "organization_guid": org, "space_guid": "space-1",
            "context": { "platform": "cloudfoundry", "organization_guid": org }, "parameters": parameters })
}

/// A virtual cluster of `plan` for `org`, ready; its id and namespace.
pub async fn virtual_cluster(broker: &TestBroker, org: &str, plan: &str) -> (String, String) {
    let instance = id("vc");
    let uri = format!("/v2/service_instances/{instance}?accepts_incomplete=true");
    let answer = broker.call(axum::http::Method::PUT, &uri, Some(provision_body(plan, org, json!({})))).await;
    assert!(answer.status.is_success(), "{answer:?}");
    broker.wait_for_state(&instance, "provision", "succeeded").await;
    let namespace = broker.namespace(&instance);
    (instance, namespace)
}

/// `kubectl` with the admin kubeconfig.
pub fn kubectl(args: &[&str]) -> (bool, String, String) {
    let cluster = cluster();
    cluster.kubectl(&cluster.kubeconfig, args)
}

/// A pod pinned to the real node, labelled `labels`; `command` runs in the busybox image.
pub fn node_pod(name: &str, labels: Value, command: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": { "name": name, "labels": labels },
        "spec": {
            "nodeSelector": { NODE_LABEL.0: NODE_LABEL.1 },
            "tolerations": [{ "key": NODE_TAINT, "operator": "Equal", "value": "true", "effect": "NoSchedule" }],
            "automountServiceAccountToken": false,
            "terminationGracePeriodSeconds": 1,
            "containers": [{ "name": "main", "image": image("busybox"), "imagePullPolicy": "IfNotPresent",
                             "command": ["sh", "-c", command] }]
        }
    }))
    .expect("pod literal")
}
