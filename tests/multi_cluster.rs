//! One broker over two real control planes (the shared one as the home, a second one started by `cluster.sh` with its
//! own state): placement by parameter, by a plan's labels and by free capacity; bindings' kubeconfigs reaching the
//! right cluster and only their namespace, and the dashboard reading it there; a cluster stopped answering 503 for its
//! instances only while provisions go to the other and nothing is lost when it is back; a restarted broker finding
//! every instance.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod};
use kube::api::{ListParams, Patch, PatchParams};
use kube::config::Kubeconfig;
use kube::{Api, Client};
use serde_json::{Value, json};
use support::broker::{CAAS, SMALL, client_from_kubeconfig};
use support::cluster::{cluster, eventually, second_cluster};
use support::http::send;
use support::process::start_broker;

/// The built-in catalog's `large` plan, which asks for a cluster labelled `gpu=true`.
const LARGE: &str = "722b322b-49e9-40bf-8391-b0022aae6b51";
const AUTH: (&str, &str) = ("authorization", "Basic YnJva2VyOmJyb2tlci1kZXYtcGFzc3dvcmQ=");
const VERSION: (&str, &str) = ("x-broker-api-version", "2.17");

/// The broker process, stopped when the test ends, also when it fails: a broker left running would go on acting on
/// the shared control plane (idle stops, drift repair) under the next tests.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

struct Osb {
    address: SocketAddr,
}

impl Osb {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let headers = [AUTH, VERSION, ("content-type", "application/json")];
        let answer = send(self.address, method, path, &headers, &body).await;
        (answer.status, serde_json::from_str(&answer.body).unwrap_or(Value::String(answer.body)))
    }

    async fn provision(&self, id: &str, plan: &str, parameters: Value) -> (u16, Value) {
        let body = json!({ "service_id": CAAS, "plan_id": plan, "organization_guid": "org-multi",
                           "space_guid": "space-multi", "parameters": parameters });
        self.call("PUT", &format!("/v2/service_instances/{id}"), Some(body)).await
    }

    async fn fetch(&self, id: &str) -> (u16, Value) {
        self.call("GET", &format!("/v2/service_instances/{id}"), None).await
    }

    async fn deprovision(&self, id: &str, plan: &str) -> u16 {
        self.call("DELETE", &format!("/v2/service_instances/{id}?service_id={CAAS}&plan_id={plan}"), None).await.0
    }
}

async fn namespace_exists(client: &Client, name: &str) -> bool {
    Api::<Namespace>::all(client.clone()).get_opt(name).await.expect("read namespaces").is_some()
}

/// Cordons (or uncordons) every node of a cluster: placement counts only nodes that take pods.
async fn cordon_all(client: &Client, cordon: bool) {
    let nodes = Api::<Node>::all(client.clone());
    for node in nodes.list(&ListParams::default()).await.expect("nodes").items {
        let name = node.metadata.name.expect("name");
        let patch = json!({ "spec": { "unschedulable": cordon } });
        nodes.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await.expect("cordon");
    }
}

fn write_config(dir: &std::path::Path, second_kubeconfig: &std::path::Path) -> std::path::PathBuf {
    let config = dir.join("broker.yaml");
    let yaml = format!(
        "clusters:\n  - {{ name: home, home: true, labels: {{ region: one }} }}\n  - {{ name: b, kubeconfig: {}, labels: \
         {{ region: two, gpu: \"true\" }} }}\n",
        second_kubeconfig.display()
    );
    std::fs::write(&config, yaml).expect("write the configuration");
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_are_placed_across_two_control_planes_and_one_going_down_stays_local() {
    let home = cluster();
    let second = second_cluster();
    let (home_client, b_client) = (home.admin().await, second.admin().await);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("multi-{:08x}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = write_config(&dir, &second.kubeconfig);
    let prefix = format!("mc{:04x}-", rand::random::<u16>());
    cordon_all(&b_client, true).await;
    let start = || {
        let (process, port) = start_broker(&prefix, &[("CAAS_BROKER_CONFIG", config.to_str().expect("path"))]);
        (Running(process), port)
    };
    let (broker, port) = start();
    let osb = Osb { address: ([127, 0, 0, 1], port).into() };
    let id = |name: &str| format!("{prefix}{name}");
    let namespace = |name: &str| caas_broker::k8s::names::namespace(&prefix, &id(name));

    // By the plan's labels: large asks for gpu=true, which only b has. With b's nodes cordoned (before the broker
    // starts, so that its first look at b finds no room), no cluster fits, and
    // the 422 says why for each;
    // by capacity, a small one then goes to the home.
    let refused = eventually(Duration::from_secs(30), "b measured as full", || async {
        let (status, body) = osb.provision(&id("gpu-full"), LARGE, json!({})).await;
        (status == 422 && body["description"].as_str().is_some_and(|why| why.contains("b: 0.0 CPU"))).then_some(body)
    })
    .await;
    assert_eq!(refused["error"], "NoClusterFits", "{refused}");
    let why = refused["description"].as_str().unwrap_or_default();
    assert!(why.contains("home: not labelled gpu=true") && why.contains("b: 0.0 CPU and 0.0 GiB free"), "{why}");
    assert!(
        !namespace_exists(&b_client, &namespace("gpu-full")).await
            && !namespace_exists(&home_client, &namespace("gpu-full")).await
    );
    let (status, body) = osb.provision(&id("roomy"), SMALL, json!({})).await;
    assert_eq!(status, 201, "{body}");
    assert!(namespace_exists(&home_client, &namespace("roomy")).await, "b has no room: the home");
    cordon_all(&b_client, false).await;
    let (status, body) = eventually(Duration::from_secs(30), "b measured with room again", || async {
        let answer = osb.provision(&id("gpu"), LARGE, json!({})).await;
        (answer.0 != 422).then_some(answer)
    })
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(namespace_exists(&b_client, &namespace("gpu")).await, "the GPU plan went to the GPU cluster");

    // By parameter: on b, recorded in the home, nothing of it on the home.
    let (status, body) = osb.provision(&id("named"), SMALL, json!({ "cluster": "b" })).await;
    assert_eq!(status, 201, "{body}");
    let dashboard_url = body["dashboard_url"].as_str().expect("a dashboard_url").to_owned();
    assert!(namespace_exists(&b_client, &namespace("named")).await, "the namespace is on b");
    assert!(!namespace_exists(&home_client, &namespace("named")).await, "and not on the home");
    let records = Api::<ConfigMap>::namespaced(home_client.clone(), "caas-broker-system");
    let placed = records.list(&ListParams::default().labels("caas-broker.io/placement-cluster=b")).await.expect("list");
    assert!(
        placed
            .items
            .iter()
            .any(|r| r.metadata.annotations.as_ref().and_then(|a| a.get("caas-broker.io/instance-id"))
                == Some(&id("named"))),
        "the placement is recorded in the home"
    );
    let (status, body) = osb.provision(&id("nowhere"), SMALL, json!({ "cluster": "c" })).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("BadRequest")), "{body}");
    assert!(body["description"].as_str().unwrap_or_default().contains("no cluster named \"c\" (clusters: home, b)"));

    // A binding of the instance on b: its kubeconfig reaches b, its namespace only.
    let bind = json!({ "service_id": CAAS, "plan_id": SMALL, "parameters": { "role": "edit" } });
    let binding = format!("/v2/service_instances/{}/service_bindings/{}", id("named"), id("binding"));
    let (status, bound) = osb.call("PUT", &binding, Some(bind)).await;
    assert_eq!(status, 201, "{bound}");
    let kubeconfig =
        Kubeconfig::from_yaml(bound["credentials"]["kubeconfig"].as_str().expect("kubeconfig")).expect("parse");
    let b_server = Kubeconfig::read_from(&second.kubeconfig).expect("b's kubeconfig").clusters[0]
        .cluster
        .as_ref()
        .expect("cluster")
        .server
        .clone();
    assert_eq!(kubeconfig.clusters[0].cluster.as_ref().expect("cluster").server, b_server, "b's apiserver");
    let tenant = client_from_kubeconfig(bound["credentials"]["kubeconfig"].as_str().expect("kubeconfig")).await;
    Api::<Pod>::namespaced(tenant.clone(), &namespace("named"))
        .list(&ListParams::default())
        .await
        .expect("its own namespace");
    let elsewhere = Api::<Pod>::namespaced(tenant, "kube-system").list(&ListParams::default()).await;
    assert!(matches!(&elsewhere, Err(kube::Error::Api(s)) if s.code == 403), "{elsewhere:?}");

    // Its dashboard: signed in with the binding's token, its pages read from b as the binding.
    let (origin, page) = dashboard_url.split_at(dashboard_url.find("/instances/").expect("a dashboard path"));
    let dashboard: SocketAddr = origin.trim_start_matches("http://").parse().expect("the dashboard's address");
    let token = bound["credentials"]["token"].as_str().expect("a token");
    let form = [("content-type", "application/x-www-form-urlencoded"), ("origin", origin)];
    let signed = send(dashboard, "POST", &format!("{page}/login"), &form, &format!("token={token}")).await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    let cookie = signed.header("set-cookie").and_then(|c| c.split(';').next()).expect("a session cookie").to_owned();
    let overview = send(dashboard, "GET", page, &[("cookie", &cookie)], "").await;
    assert_eq!(overview.status, 200, "{}", overview.body);
    assert!(overview.body.contains(&namespace("named")), "the overview of b's namespace: {}", overview.body);

    // b stops: its instances answer 503 naming it, the home's answer, new provisions go to the home.
    second.down();
    let down = eventually(Duration::from_secs(30), "b seen down", || async {
        let (status, body) = osb.fetch(&id("named")).await;
        (status == 503).then_some(body)
    })
    .await;
    assert!(
        down["description"].as_str().unwrap_or_default().contains("lives on cluster b, which is unreachable"),
        "{down}"
    );
    assert_eq!(osb.fetch(&id("roomy")).await.0, 200, "the home's instance answers");
    let (status, body) = osb.provision(&id("while-down"), SMALL, json!({})).await;
    assert_eq!(status, 201, "{body}");
    assert!(namespace_exists(&home_client, &namespace("while-down")).await);
    let (status, body) = osb.provision(&id("gpu-down"), LARGE, json!({})).await;
    assert_eq!((status, body["error"].as_str()), (422, Some("NoClusterFits")), "{body}");
    let unreachable = send(dashboard, "GET", page, &[("cookie", &cookie)], "").await;
    assert_eq!(unreachable.status, 503, "{}", unreachable.body);
    assert!(unreachable.body.contains("lives on cluster b"), "{}", unreachable.body);
    let ready = send(osb.address, "GET", "/readyz", &[], "").await;
    assert_eq!(ready.status, 200, "the home is up: {}", ready.body);
    assert!(ready.body.contains("cluster b: unreachable"), "{}", ready.body);
    let metrics = send(osb.address, "GET", "/metrics", &[AUTH], "").await;
    assert!(metrics.body.contains("caas_broker_cluster_up{cluster=\"b\"} 0"), "{}", metrics.body);
    assert!(metrics.body.contains("caas_broker_cluster_up{cluster=\"home\"} 1"), "{}", metrics.body);

    // b is back: nothing lost; a restarted broker finds every instance where it is.
    second.start_again();
    eventually(Duration::from_secs(60), "b's instance answering again", || async {
        (osb.fetch(&id("named")).await.0 == 200).then_some(())
    })
    .await;
    drop(broker);
    let (broker, port) = start();
    let osb = Osb { address: ([127, 0, 0, 1], port).into() };
    for name in ["named", "gpu", "roomy", "while-down"] {
        let (status, body) = eventually(Duration::from_secs(30), "the restarted broker answering", || async {
            let answer = osb.fetch(&id(name)).await;
            (answer.0 != 503).then_some(answer)
        })
        .await;
        assert_eq!(status, 200, "{name}: {body}");
    }
    let fetched = osb.call("GET", &binding, None).await;
    assert_eq!(fetched.0, 200, "{:?}", fetched.1);

    // Deprovisions empty both clusters and the placement records.
    assert_eq!(osb.call("DELETE", &format!("{binding}?service_id={CAAS}&plan_id={SMALL}"), None).await.0, 200);
    for (name, plan) in [("named", SMALL), ("gpu", LARGE), ("roomy", SMALL), ("while-down", SMALL)] {
        assert_eq!(osb.deprovision(&id(name), plan).await, 200, "{name}");
    }
    let left = records.list(&ListParams::default().labels("caas-broker.io/placement-cluster")).await.expect("list");
    let ours: Vec<_> = left
        .items
        .iter()
        .filter_map(|r| r.metadata.annotations.as_ref()?.get("caas-broker.io/instance-id"))
        .filter(|instance| instance.starts_with(&prefix))
        .collect();
    assert!(ours.is_empty(), "placement records left: {ours:?}");
    drop(broker);
    second.down();
}
