//! What tenants run, on a real node (`tests/cluster/real-node.sh`: kubelet, containerd, CNI bridge, kube-proxy and
//! kube-router enforcing NetworkPolicy, local-path volumes), driven through the OSB API as a platform drives it:
//!
//! - the virtual cluster's default-deny policy really blocks other tenants (ingress) and the tenant's own pods from
//!   leaving the namespace (egress), while the tenant's pods reach each other;
//! - a container app really serves, through the Service the binding names; stop, start, restart and scale really
//!   happen; an app over its memory limit is OOM-killed and last_operation says so;
//! - a streaming session runs the session image as a real pod with a provisioned volume, and headless Chromium sees
//!   the app's pixels through noVNC with the binding's password only (time to first frame and frame rate printed);
//! - a Selkies session without an Ingress on the dashboard's session page: the page embeds its stream through the
//!   dashboard's proxy (the apiserver's service proxy, as the signed-in `edit` member), Chromium sees the app's pixels,
//!   a key pressed there repaints the app, the overlay counts frames; a `view` member gets no stream;
//! - an autoscaled container app really scales: a load generator in the tenant's namespace drives its CPU over the
//!   target, the cluster's autoscaler adds pods from metrics-server's figures, and removes them once the load stops;
//! - the LimitRange's defaults reach the container's cgroup, and a pod the quota refuses fails the operation with
//!   the quota's words.
//!
//! The node is shared machine-wide, so these tests take turns. They fail, naming the command to run, when the real
//! node is not up.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod, Service};
use kube::Api;
use kube::api::{DeleteParams, ListParams, LogParams, PostParams};
use serde_json::{Value, json};
use support::broker::{Answer, MEDIUM, MICRO, SMALL, TestBroker};
use support::cluster::{TestNamespace, cluster, eventually, repo_root};
use support::dashboard::{cookie_of, instance_with_binding, path_of, serve_on, sign_in};
use support::http::send;
use support::real_node::{
    CPU_720P, NODE, NODE_TURN, STREAMING, assert_ready, body, id, image, kubectl, node_pod, on_the_real_node,
    virtual_cluster,
};

const APP: &str = "d3bc9dcc-7e6e-4233-b13e-fbae81b08a60";
const APP_SMALL: &str = "278427c7-d889-4e85-9efa-d530be419e8f";

/// The colour the session's test app paints (tests/browser/colour_app.py); the probe looks for it.
const APP_COLOUR: &str = "#ff00aa";

/// A broker whose workloads go to the real node.
async fn broker() -> TestBroker {
    assert_ready(&[]).await;
    TestBroker::start(on_the_real_node).await
}

/// Polls `last_operation` until the operation is no longer in progress; on time-out, says what it last answered.
async fn finished(broker: &TestBroker, instance: &str, operation: &str, limit: Duration) -> Answer {
    let uri = format!("/v2/service_instances/{instance}/last_operation?operation={operation}");
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let answer = broker.call(Method::GET, &uri, None).await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        if answer.body["state"] != "in progress" {
            return answer;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {operation} of {instance} to finish; it last answered {}",
            answer.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn succeeded(broker: &TestBroker, instance: &str, operation: &str, limit: Duration) -> Answer {
    let answer = finished(broker, instance, operation, limit).await;
    assert_eq!(answer.body["state"], "succeeded", "{operation} of {instance}: {answer:?}");
    answer
}

async fn update(broker: &TestBroker, instance: &str, parameters: Value) {
    let uri = format!("/v2/service_instances/{instance}?accepts_incomplete=true");
    let answer = broker.call(Method::PATCH, &uri, Some(json!({ "service_id": APP, "parameters": parameters }))).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{answer:?}");
}

async fn delete_workload(broker: &TestBroker, instance: &str, service: &str, plan: &str) {
    let uri = format!("/v2/service_instances/{instance}?service_id={service}&plan_id={plan}&accepts_incomplete=true");
    let answer = broker.call(Method::DELETE, &uri, None).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{answer:?}");
    succeeded(broker, instance, "deprovision", Duration::from_secs(120)).await;
}

/// The running pods of a workload instance.
async fn pods_of(broker: &TestBroker, namespace: &str, instance: &str) -> Vec<Pod> {
    let selector = format!("caas-broker.io/instance={}", caas_broker::k8s::names::label_value(instance));
    let pods = Api::<Pod>::namespaced(broker.client.clone(), namespace);
    let pods = pods.list(&ListParams::default().labels(&selector)).await.expect("list pods");
    pods.items.into_iter().filter(|p| p.metadata.deletion_timestamp.is_none()).collect()
}

/// Whether the pod says it is Ready.
fn is_ready(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|status| status.conditions.as_ref());
    conditions.is_some_and(|all| all.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The pod's node and its containers' ids and start times, proof that containerd really runs it.
fn really_running(pod: &Pod) -> Vec<(String, String)> {
    assert_eq!(
        pod.spec.as_ref().and_then(|s| s.node_name.as_deref()),
        Some(NODE),
        "{:?} is not on {NODE}",
        pod.metadata.name
    );
    let statuses = pod.status.as_ref().and_then(|s| s.container_statuses.clone()).unwrap_or_default();
    statuses
        .iter()
        .map(|s| {
            let id = s.container_id.clone().unwrap_or_default();
            assert!(id.starts_with("containerd://"), "container {} has no containerd id: {s:?}", s.name);
            let started = s.state.as_ref().and_then(|st| st.running.as_ref()).and_then(|r| r.started_at.clone());
            (id, started.map(|t| t.0.to_string()).unwrap_or_default())
        })
        .collect()
}

/// The ClusterIP and port of the Service a binding's `host` (`<service>.<namespace>.svc.cluster.local`) names: the
/// machine has no cluster DNS, kube-proxy serves the address.
async fn service_address(broker: &TestBroker, host: &str, port: u64) -> String {
    let mut parts = host.split('.');
    let (name, namespace) = (parts.next().expect("service"), parts.next().expect("namespace"));
    let service = Api::<Service>::namespaced(broker.client.clone(), namespace).get(name).await.expect("the Service");
    let ip = service.spec.and_then(|s| s.cluster_ip).expect("a ClusterIP");
    format!("{ip}:{port}")
}

/// An HTTP GET from this machine: (status, body), or None when nothing answered within 5 s.
fn http_get(url: &str) -> Option<(u16, String)> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", "-o", "-", "-w", "\n%{http_code}", url])
        .stdin(Stdio::null())
        .output()
        .expect("run curl");
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n')?;
    Some((status.trim().parse().ok()?, body.to_owned()))
}

/// What the container app of these tests says in every answer (its `GREETING`): an answer without it came from
/// something else on the way — on some machines an egress proxy answers for an address no rule routes yet, such as a
/// Service kube-proxy has not programmed, or one whose last endpoint has just gone.
const APP_GREETING: &str = "hello from the real node";

/// The app's answer to `url`, if the app answers.
fn app_answer(url: &str) -> Option<String> {
    http_get(url).filter(|(status, body)| *status == 200 && body.contains(APP_GREETING)).map(|(_, body)| body)
}

/// The app's first answer from `url`, which must come within 10 s; says how long it took after the first try.
async fn answers(url: &str) -> String {
    let started = Instant::now();
    let answer =
        eventually(Duration::from_secs(10), &format!("the app's answer from {url}"), || async { app_answer(url) })
            .await;
    println!("{url} answered {:.1} s after the workload was reported ready", started.elapsed().as_secs_f64());
    answer
}

/// Creates the pod and waits until it runs and is ready; its IP.
async fn running_pod(client: &kube::Client, namespace: &str, pod: Pod) -> String {
    let pods = Api::<Pod>::namespaced(client.clone(), namespace);
    let name = pod.metadata.name.clone().expect("name");
    pods.create(&PostParams::default(), &pod).await.expect("create pod");
    eventually(Duration::from_secs(90), &format!("pod {namespace}/{name} to run"), || async {
        let pod = pods.get(&name).await.ok()?;
        let status = pod.status?;
        let ready = status.conditions?.iter().any(|c| c.type_ == "Ready" && c.status == "True");
        ready.then_some(status.pod_ip).flatten()
    })
    .await
}

/// Deletes a pod and waits until it is gone (its quota released).
async fn delete_pod(client: &kube::Client, namespace: &str, name: &str) {
    let pods = Api::<Pod>::namespaced(client.clone(), namespace);
    pods.delete(name, &DeleteParams::default()).await.expect("delete the pod");
    eventually(Duration::from_secs(60), &format!("pod {namespace}/{name} to be gone"), || async {
        pods.get_opt(name).await.expect("read the pod").is_none().then_some(())
    })
    .await;
}

/// Whether `from` (a pod) gets an answer from `url` within 3 s.
fn reaches(namespace: &str, from: &str, url: &str) -> bool {
    // (busybox's wget crashes with -T: `timeout` bounds it instead.)
    let (ok, out, _) = kubectl(&["exec", "-n", namespace, from, "--", "timeout", "3", "wget", "-q", "-O", "-", url]);
    ok && out.contains("served by")
}

/// Waits until `from` reaches `url` (`expected`) or is refused (`!expected`), then checks that it stays so for three
/// more tries: a policy takes effect when kube-router has seen the pods, within seconds.
fn settles(namespace: &str, from: &str, url: &str, expected: bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while reaches(namespace, from, url) != expected {
        assert!(
            Instant::now() < deadline,
            "{namespace}/{from} {} {url} after 30 s",
            if expected { "still cannot reach" } else { "still reaches" }
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    for _ in 0..3 {
        assert_eq!(reaches(namespace, from, url), expected, "{namespace}/{from} -> {url} changed its mind");
    }
}

const SERVE: &str =
    "mkdir -p /tmp/www && echo \"served by $HOSTNAME\" > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www";

#[tokio::test]
async fn the_default_deny_policy_blocks_other_tenants_and_the_way_out() {
    let _turn = NODE_TURN.lock().await;
    let broker = broker().await;
    let (a, ns_a) = virtual_cluster(&broker, &id("org-a"), MICRO).await;
    let (b, ns_b) = virtual_cluster(&broker, &id("org-b"), MICRO).await;
    let open = TestNamespace::create(&broker.client, "open").await;
    let client = &broker.client;

    let server_a = running_pod(client, &ns_a, node_pod("server", json!({ "app": "server" }), SERVE)).await;
    let service: Service = serde_json::from_value(json!({
        "metadata": { "name": "server" },
        "spec": { "selector": { "app": "server" }, "ports": [{ "port": 80, "targetPort": 8080 }] }
    }))
    .expect("service literal");
    let service = Api::<Service>::namespaced(client.clone(), &ns_a).create(&PostParams::default(), &service).await;
    let service_a = service.expect("create the Service").spec.and_then(|s| s.cluster_ip).expect("ClusterIP");
    let server_open = running_pod(client, &open.name, node_pod("server", json!({ "app": "server" }), SERVE)).await;
    for (namespace, pod) in [(&ns_a, "client"), (&ns_b, "client"), (&open.name, "client")] {
        running_pod(client, namespace, node_pod(pod, json!({ "app": "client" }), "exec sleep 3600")).await;
    }
    let (pod_a, pod_a_svc, pod_open) =
        (format!("http://{server_a}:8080/"), format!("http://{service_a}/"), format!("http://{server_open}:8080/"));

    // Inside tenant A: its pods reach each other, directly and through the Service.
    settles(&ns_a, "client", &pod_a, true);
    settles(&ns_a, "client", &pod_a_svc, true);
    // Unrestricted pods reach each other (the network works) ...
    settles(&open.name, "client", &pod_open, true);
    // ... but neither another tenant nor any other namespace reaches tenant A's pod or Service (ingress) ...
    settles(&ns_b, "client", &pod_a, false);
    settles(&ns_b, "client", &pod_a_svc, false);
    settles(&open.name, "client", &pod_a, false);
    // ... and tenant A's pods do not get out to another namespace (egress), though that pod accepts anyone.
    settles(&ns_a, "client", &pod_open, false);
    // This machine (the node) reaches tenant A's pod: kubelet probes depend on it.
    assert!(
        http_get(&pod_a).is_some_and(|(status, body)| status == 200 && body.contains("served by server")),
        "the node does not reach {pod_a}"
    );

    // Allowing another namespace in (the virtual cluster's parameter) opens tenant A to it, and to it alone.
    let uri = format!("/v2/service_instances/{a}?accepts_incomplete=true");
    let parameters = json!({ "allow_ingress_from_namespaces": [open.name] });
    let answer = broker
        .call(Method::PATCH, &uri, Some(json!({ "service_id": support::broker::CAAS, "parameters": parameters })))
        .await;
    assert!(answer.status.is_success(), "{answer:?}");
    if answer.status == StatusCode::ACCEPTED {
        succeeded(&broker, &a, "update", Duration::from_secs(60)).await;
    }
    settles(&open.name, "client", &pod_a, true);
    settles(&ns_b, "client", &pod_a, false);

    broker.deprovision(&a, MICRO).await;
    broker.deprovision(&b, MICRO).await;
}

#[tokio::test]
async fn a_container_app_really_serves_stops_restarts_scales_and_reports_oom_kills() {
    let _turn = NODE_TURN.lock().await;
    let broker = broker().await;
    let org = id("org");
    let (cluster_id, namespace) = virtual_cluster(&broker, &org, SMALL).await;
    let parameters = json!({ "cluster_instance_id": cluster_id, "image": image("webapp"), "port": 8080,
                             "replicas": 1, "env": { "GREETING": APP_GREETING } });
    let app = provision_app(&broker, &org, parameters).await;

    // Succeeded means served: the binding's Service answers at once, from the pod on the real node.
    let (credentials, address) = bind_app(&broker, &app).await;
    assert_eq!(credentials["url"], format!("http://{}", credentials["host"].as_str().expect("host")));
    let whoami = format!("http://{address}/cgi-bin/whoami");
    let pods = pods_of(&broker, &namespace, &app).await;
    assert_eq!(pods.len(), 1);
    let first = really_running(&pods[0]);
    // (kube-proxy programs the Service's new endpoint within a moment of the pod turning ready.)
    let answer = answers(&whoami).await;
    let pod_name = pods[0].metadata.name.clone().expect("name");
    assert!(answer.contains(&pod_name), "{answer}");

    // Stopped really stops: no pod, nothing answers.
    update(&broker, &app, json!({ "state": "stopped" })).await;
    succeeded(&broker, &app, "update", Duration::from_secs(90)).await;
    assert!(pods_of(&broker, &namespace, &app).await.is_empty(), "pods left after stop");
    // (The Service's rules follow the pod's removal within moments, seconds when the machine is loaded: wait for
    // silence, then expect it to last.)
    eventually(Duration::from_secs(30), "the stopped app to stop answering", || async {
        app_answer(&whoami).is_none().then_some(())
    })
    .await;
    for _ in 0..3 {
        assert_eq!(app_answer(&whoami), None, "a stopped app still answers");
    }
    update(&broker, &app, json!({ "state": "running" })).await;
    succeeded(&broker, &app, "update", Duration::from_secs(90)).await;
    answers(&whoami).await;

    // A restart starts new containers.
    let before = really_running(&pods_of(&broker, &namespace, &app).await[0]);
    update(&broker, &app, json!({ "restart": "r1" })).await;
    succeeded(&broker, &app, "update", Duration::from_secs(90)).await;
    let pods = pods_of(&broker, &namespace, &app).await;
    assert_eq!(pods.len(), 1, "one pod after the restart");
    let after = really_running(&pods[0]);
    assert_ne!(after[0].0, before[0].0, "the restart kept the container");
    assert_ne!(after, first);

    // Two replicas really answer, each in turn.
    update(&broker, &app, json!({ "replicas": 2 })).await;
    succeeded(&broker, &app, "update", Duration::from_secs(90)).await;
    let pods = pods_of(&broker, &namespace, &app).await;
    assert_eq!(pods.len(), 2);
    let names: BTreeSet<String> = pods.iter().filter_map(|p| p.metadata.name.clone()).collect();
    // (kube-proxy adds the new pod to the Service a moment after it turns ready: ask until both have answered.)
    let answered = std::sync::Mutex::new(BTreeSet::new());
    eventually(Duration::from_secs(60), "every replica answering through the Service", || async {
        let mut answered = answered.lock().expect("answered");
        if let Some(text) = app_answer(&whoami) {
            answered.extend(names.iter().filter(|name| text.contains(name.as_str())).cloned());
        }
        (*answered == names).then_some(())
    })
    .await;
    delete_workload(&broker, &app, APP, APP_SMALL).await;

    // An app that needs more memory than its 256 MiB limit is killed by the kernel, and the platform hears why.
    let hungry = id("app");
    let parameters = json!({ "cluster_instance_id": cluster_id, "image": image("webapp"), "port": 8080,
                             "env": { "ALLOCATE_MB": "400" } });
    let uri = format!("/v2/service_instances/{hungry}?accepts_incomplete=true");
    let accepted = broker.call(Method::PUT, &uri, Some(body(APP, APP_SMALL, &org, parameters))).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{accepted:?}");
    let failed = finished(&broker, &hungry, "provision", Duration::from_secs(180)).await;
    assert_eq!(failed.body["state"], "failed", "{failed:?}");
    let description = failed.body["description"].as_str().unwrap_or_default();
    assert!(description.contains("OOMKilled: over its memory limit"), "{description}");
    let pods = pods_of(&broker, &namespace, &hungry).await;
    let last =
        pods[0].status.as_ref().and_then(|s| s.container_statuses.as_ref()).and_then(|s| s[0].last_state.clone());
    let killed = last.and_then(|l| l.terminated).expect("a terminated container");
    assert_eq!((killed.reason.as_deref(), killed.exit_code), (Some("OOMKilled"), 137));
    delete_workload(&broker, &hungry, APP, APP_SMALL).await;
    broker.deprovision(&cluster_id, SMALL).await;
}

/// Provisions a container app of the small plan with `parameters` and waits until it succeeded; its id.
async fn provision_app(broker: &TestBroker, org: &str, parameters: Value) -> String {
    let app = id("app");
    let uri = format!("/v2/service_instances/{app}?accepts_incomplete=true");
    let accepted = broker.call(Method::PUT, &uri, Some(body(APP, APP_SMALL, org, parameters))).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{accepted:?}");
    succeeded(broker, &app, "provision", Duration::from_secs(120)).await;
    app
}

/// Binds `app`: the binding's credentials, and the address of the Service they name.
async fn bind_app(broker: &TestBroker, app: &str) -> (Value, String) {
    let bound = broker.bind(app, &format!("{app}-b"), APP_SMALL, json!({ "service_id": APP })).await;
    assert_eq!(bound.status, StatusCode::CREATED, "{bound:?}");
    let credentials = bound.body["credentials"].clone();
    let host = credentials["host"].as_str().expect("host");
    let address = service_address(broker, host, credentials["port"].as_u64().expect("port")).await;
    (credentials, address)
}

/// The autoscaler's view of its app: (replicas it wants, average CPU use in percent of the request, as it measured).
async fn autoscaler_state(autoscalers: &Api<HorizontalPodAutoscaler>, name: &str) -> (i32, Option<i32>) {
    let status = autoscalers.get(name).await.expect("read the autoscaler").status.unwrap_or_default();
    let utilisation = status.current_metrics.iter().flatten().find_map(|metric| {
        metric.resource.as_ref().filter(|r| r.name == "cpu").and_then(|r| r.current.average_utilization)
    });
    (status.desired_replicas, utilisation)
}

/// The app's Deployment's ready pods.
async fn ready_replicas(deployments: &Api<Deployment>, name: &str) -> i32 {
    let deployment = deployments.get(name).await.expect("read the Deployment");
    deployment.status.and_then(|s| s.ready_replicas).unwrap_or(0)
}

#[tokio::test]
async fn an_autoscaled_app_scales_out_under_load_and_back_in_when_it_stops() {
    let _turn = NODE_TURN.lock().await;
    let broker = broker().await;
    let org = id("org");
    let (cluster_id, namespace) = virtual_cluster(&broker, &org, SMALL).await;
    let autoscale = json!({ "min": 1, "max": 3, "cpu_percent": 20, "scale_down_after_seconds": 15 });
    let parameters = json!({ "cluster_instance_id": cluster_id, "image": image("webapp"), "port": 8080,
                             "env": { "GREETING": APP_GREETING }, "autoscale": autoscale });
    let app = provision_app(&broker, &org, parameters).await;
    let (_, address) = bind_app(&broker, &app).await;
    answers(&format!("http://{address}/cgi-bin/whoami")).await;

    // The broker's autoscaler: its bounds, its target and the scale-down window asked for.
    let client = &broker.client;
    let autoscalers = Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), &namespace);
    let deployments = Api::<Deployment>::namespaced(client.clone(), &namespace);
    let listed = autoscalers.list(&ListParams::default()).await.expect("list autoscalers").items;
    assert_eq!(listed.len(), 1, "one autoscaler, the app's: {listed:?}");
    let (name, spec) = (listed[0].metadata.name.clone().expect("name"), listed[0].spec.clone());
    assert_eq!(
        (spec.scale_target_ref.kind.as_str(), spec.scale_target_ref.name.as_str()),
        ("Deployment", name.as_str())
    );
    assert_eq!((spec.min_replicas, spec.max_replicas), (Some(1), 3));
    let window = spec.behavior.and_then(|b| b.scale_down).and_then(|rules| rules.stabilization_window_seconds);
    assert_eq!(window, Some(15));
    assert_eq!(ready_replicas(&deployments, &name).await, 1);

    // Idle, the autoscaler measures the app (metrics-server scrapes the node's kubelet) and keeps one pod.
    let (_, idle) = eventually(Duration::from_secs(120), "the autoscaler to measure the idle app", || async {
        let (desired, utilisation) = autoscaler_state(&autoscalers, &name).await;
        utilisation.map(|u| (desired, u))
    })
    .await;
    println!("idle: the autoscaler measured {idle} % of the CPU request");

    // Load from a pod in the tenant's own namespace: four clients asking the app's CGI without a pause.
    let url = format!("http://{address}/cgi-bin/whoami");
    let loop_ = format!("while :; do wget -q -O /dev/null {url}; done");
    let command = format!("for i in 1 2 3 4; do ({loop_}) & done; wait");
    let started = Instant::now();
    running_pod(client, &namespace, node_pod("load", json!({}), &command)).await;
    let busy = eventually(Duration::from_secs(180), "the autoscaler to scale out to 2 pods or more", || async {
        let (desired, utilisation) = autoscaler_state(&autoscalers, &name).await;
        let ready = ready_replicas(&deployments, &name).await;
        (desired >= 2 && ready >= 2).then_some((desired, ready, utilisation))
    })
    .await;
    println!(
        "under load: {} ready pods ({} wanted, CPU at {:?} % of the request) {:.0} s after the load started",
        busy.1,
        busy.0,
        busy.2,
        started.elapsed().as_secs_f64()
    );
    // The ready pods are the app's and really run; one more may still be starting when the autoscaler wants 3.
    let pods = pods_of(&broker, &namespace, &app).await;
    let ready: Vec<&Pod> = pods.iter().filter(|pod| is_ready(pod)).collect();
    assert!(ready.len() >= 2, "the ready pods are the app's: {pods:?}");
    for pod in ready {
        really_running(pod);
    }

    // The load stops: after its window the autoscaler goes back to its minimum.
    delete_pod(client, &namespace, "load").await;
    let stopped = Instant::now();
    eventually(Duration::from_secs(240), "the autoscaler to scale back in to 1 pod", || async {
        let (desired, _) = autoscaler_state(&autoscalers, &name).await;
        let pods = pods_of(&broker, &namespace, &app).await;
        (desired == 1 && pods.len() == 1).then_some(())
    })
    .await;
    println!("back to 1 pod {:.0} s after the load stopped", stopped.elapsed().as_secs_f64());

    delete_workload(&broker, &app, APP, APP_SMALL).await;
    broker.deprovision(&cluster_id, SMALL).await;
}

#[tokio::test]
async fn limit_range_defaults_reach_the_cgroup_and_quota_refusals_reach_last_operation() {
    let _turn = NODE_TURN.lock().await;
    let broker = broker().await;
    let org = id("org");
    let (cluster_id, namespace) = virtual_cluster(&broker, &org, MICRO).await;
    let client = &broker.client;

    // A pod that asks for nothing gets the plan's defaults (limits 500m CPU and 512 MiB, requests 100m), and the
    // kernel enforces them: read from the container's own cgroup (v1 here).
    let read = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us \
                /sys/fs/cgroup/cpu/cpu.cfs_period_us /sys/fs/cgroup/cpu/cpu.shares; exec sleep 3600";
    running_pod(client, &namespace, node_pod("defaults", json!({}), read)).await;
    let logs = Api::<Pod>::namespaced(client.clone(), &namespace).logs("defaults", &LogParams::default()).await;
    let values: Vec<u64> =
        logs.expect("the pod's log").split_whitespace().map(|v| v.parse().expect("a number")).collect();
    assert_eq!(values, vec![512 * 1024 * 1024, 50_000, 100_000, 102], "memory limit, CPU quota/period, CPU shares");
    delete_pod(client, &namespace, "defaults").await;

    // An app that fits, then a tenant's pod that takes the rest of the memory: the app's next pod (its restart) is
    // refused by the quota, and last_operation says so in the quota's words.
    let app = id("app");
    let parameters = json!({ "cluster_instance_id": cluster_id, "image": image("webapp"), "port": 8080 });
    let uri = format!("/v2/service_instances/{app}?accepts_incomplete=true");
    let accepted = broker.call(Method::PUT, &uri, Some(body(APP, APP_SMALL, &org, parameters))).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{accepted:?}");
    succeeded(&broker, &app, "provision", Duration::from_secs(120)).await;
    let mut hog = node_pod("hog", json!({}), "exec sleep 3600");
    let limits = json!({ "cpu": "100m", "memory": "768Mi" });
    hog.spec.as_mut().expect("spec").containers[0].resources =
        Some(serde_json::from_value(json!({ "requests": limits, "limits": limits })).expect("resources"));
    running_pod(client, &namespace, hog).await;
    update(&broker, &app, json!({ "restart": "r1" })).await;
    let refused = finished(&broker, &app, "update", Duration::from_secs(90)).await;
    assert_eq!(refused.body["state"], "failed", "{refused:?}");
    let description = refused.body["description"].as_str().unwrap_or_default();
    assert!(description.starts_with("the cluster refused to create a pod of the new version: "), "{description}");
    assert!(
        description.contains("exceeded quota: caas-quota") && description.contains("limits.memory"),
        "{description}"
    );
    assert_eq!(pods_of(&broker, &namespace, &app).await.len(), 1, "the running pod stays");

    delete_pod(client, &namespace, "hog").await;
    delete_workload(&broker, &app, APP, APP_SMALL).await;
    broker.deprovision(&cluster_id, MICRO).await;
}

#[tokio::test]
async fn a_streaming_session_runs_on_the_node_and_chromium_sees_it_through_its_service() {
    let _turn = NODE_TURN.lock().await;
    let mut broker = broker().await;
    // The session image with a local test app added (SteamCMD cannot download here): the same entrypoint and stack.
    broker.settings.workloads.session_image = image("streaming-session-test");
    let node = Api::<Node>::all(broker.client.clone()).get(NODE).await.expect("the real node");
    let images = node.status.and_then(|s| s.images).unwrap_or_default();
    assert!(
        images
            .iter()
            .flat_map(|i| i.names.iter().flatten())
            .any(|name| *name == broker.settings.workloads.session_image),
        "the node lacks {}: run `bash tests/cluster/real-node.sh images streaming-session-test`",
        broker.settings.workloads.session_image
    );
    broker.restart();
    let org = id("org");
    let (cluster_id, namespace) = virtual_cluster(&broker, &org, MEDIUM).await;
    let session = id("ss");
    let parameters = json!({ "cluster_instance_id": cluster_id, "protocol": "novnc",
                             "launch": { "command": ["python3", "/opt/caas-test/colour_app.py", APP_COLOUR] } });
    let uri = format!("/v2/service_instances/{session}?accepts_incomplete=true");
    let started = Instant::now();
    let accepted = broker.call(Method::PUT, &uri, Some(body(STREAMING, CPU_720P, &org, parameters))).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{accepted:?}");
    succeeded(&broker, &session, "provision", Duration::from_secs(300)).await;
    println!("streaming session: ready {:.1} s after the provision request", started.elapsed().as_secs_f64());

    // Its volume was provisioned on the node by the default StorageClass.
    let claims = Api::<PersistentVolumeClaim>::namespaced(broker.client.clone(), &namespace);
    let claim = claims.list(&ListParams::default()).await.expect("claims").items.pop().expect("the session's claim");
    let volume = claim.spec.as_ref().and_then(|s| s.volume_name.clone()).expect("a bound claim");
    let pv = Api::<PersistentVolume>::all(broker.client.clone()).get(&volume).await.expect("the volume");
    let path = pv.spec.as_ref().and_then(|s| {
        s.host_path.as_ref().map(|h| h.path.clone()).or_else(|| s.local.as_ref().map(|l| l.path.clone()))
    });
    let path = path.expect("a node-local volume");
    assert!(Path::new(&path).is_dir(), "the volume's folder {path} is not on this machine");
    let pods = pods_of(&broker, &namespace, &session).await;
    assert_eq!(pods.len(), 1);
    really_running(&pods[0]);

    let bound = broker.bind(&session, &format!("{session}-b"), CPU_720P, json!({ "service_id": STREAMING })).await;
    assert_eq!(bound.status, StatusCode::CREATED, "{bound:?}");
    let credentials = &bound.body["credentials"];
    let password = credentials["vnc_password"].as_str().expect("password").to_owned();
    let address = service_address(
        &broker,
        credentials["vnc_host"].as_str().expect("host"),
        credentials["vnc_port"].as_u64().expect("port"),
    )
    .await;
    let report = novnc_probe(&[
        ("PROBE_BASE_URL", format!("http://{address}")),
        ("PROBE_PASSWORD", password.clone()),
        ("PROBE_WRONG_PASSWORD", wrong_password(&password)),
    ]);
    let number = |pointer: &str| report.pointer(pointer).and_then(Value::as_f64).unwrap_or(-1.0);
    let wrong = &report["wrong"];
    assert_eq!(wrong["appFrameSeen"], false, "a wrong password showed the app: {wrong}");
    assert!(number("/wrong/pageColourShare") < 0.01, "a wrong password showed the app's colour: {wrong}");
    let right = &report["right"];
    let share = number("/right/canvasColourShare");
    assert!(share > 0.8, "the app's colour covers only {:.1}% of the canvas: {right}", share * 100.0);
    let (first_frame_ms, fps) = (number("/right/timeToFirstFrameMs"), number("/right/framesPerSecond"));
    assert!(first_frame_ms > 0.0, "no first frame: {right}");
    assert!(fps > 0.0, "the canvas did not change while the app animated: {right}");
    println!(
        "streaming session on the real node: time to first frame {first_frame_ms:.0} ms (page loaded at {:.0} ms, \
         first canvas update at {:.0} ms), {fps:.1} frames/s ({:.1} canvas updates/s), the app's colour on {:.1}% of \
         the canvas",
        number("/right/timeToDomContentLoadedMs"),
        number("/right/timeToFirstCanvasUpdateMs"),
        number("/right/canvasUpdatesPerSecond"),
        share * 100.0
    );

    // Stopping keeps the volume; starting again comes back on it.
    let patch = json!({ "service_id": STREAMING, "parameters": { "state": "stopped" } });
    assert_eq!(broker.call(Method::PATCH, &uri, Some(patch)).await.status, StatusCode::ACCEPTED);
    succeeded(&broker, &session, "update", Duration::from_secs(120)).await;
    assert!(pods_of(&broker, &namespace, &session).await.is_empty(), "a stopped session keeps a pod");
    let kept = claims.get(claim.metadata.name.as_deref().expect("name")).await.expect("the claim is kept");
    assert_eq!(kept.spec.and_then(|s| s.volume_name), Some(volume.clone()));
    let patch = json!({ "service_id": STREAMING, "parameters": { "state": "running" } });
    assert_eq!(broker.call(Method::PATCH, &uri, Some(patch)).await.status, StatusCode::ACCEPTED);
    succeeded(&broker, &session, "update", Duration::from_secs(180)).await;

    delete_workload(&broker, &session, STREAMING, CPU_720P).await;
    eventually(Duration::from_secs(60), "the session's volume to be deleted", || async {
        let left = Api::<PersistentVolume>::all(broker.client.clone()).get_opt(&volume).await.ok()?;
        (left.is_none() && !Path::new(&path).exists()).then_some(())
    })
    .await;
    broker.deprovision(&cluster_id, MEDIUM).await;
}

/// A password that differs from `password` in its first character (VNC compares only the first eight).
fn wrong_password(password: &str) -> String {
    let first = if password.starts_with('x') { 'y' } else { 'x' };
    format!("{first}{}", &password[1..])
}

/// Runs `tests/browser/novnc_probe.mjs` against a noVNC page (`target`: the probe's variables naming it); its JSON
/// report.
fn novnc_probe(target: &[(&str, String)]) -> Value {
    browser_probe("novnc_probe.mjs", target)
}

/// Runs `tests/browser/<script>` against `target` (its environment), and returns the JSON it reports.
fn browser_probe(script: &str, target: &[(&str, String)]) -> Value {
    let dir = std::env::temp_dir().join(format!("caas-real-node-probe-{:08x}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).expect("probe dir");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    let output = Command::new("node")
        .arg(repo_root().join("tests/browser").join(script))
        .current_dir(repo_root().join("tests/browser"))
        .envs(target.iter().map(|(name, value)| (name, value)))
        .env("PROBE_COLOUR", APP_COLOUR)
        .env("PROBE_USER_DATA_DIR", dir.join("profile"))
        .env("PROBE_OUT_DIR", &dir)
        .env("PROBE_MEASURE_MS", "5000")
        .env("CHROMIUM", chromium)
        .stdin(Stdio::null())
        .output()
        .expect("run node (tests/browser/install-deps.sh installs it)");
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser probe {script} failed ({}); screenshots in {}:\n{log}",
        output.status,
        dir.display()
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let report: Value =
        serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("the probe printed no JSON ({e}): {text}\n{log}"));
    if report.get("failure").is_none() {
        std::fs::remove_dir_all(&dir).ok();
    } else {
        println!("{script}: screenshots kept in {}", dir.display());
    }
    report
}

/// The colour the test app paints on the key "2" (`tests/browser/colour_app.py`).
const KEY_COLOUR: &str = "#00c0ff";
/// The colour the test app paints on a gamepad button, read from /dev/input/js0 through the joystick interposer.
const GAMEPAD_COLOUR: &str = "#20e020";

#[tokio::test]
async fn the_dashboards_session_page_embeds_a_selkies_stream_through_the_members_own_service_proxy() {
    let _turn = NODE_TURN.lock().await;
    assert_ready(&[]).await;
    let session_image = image("streaming-session-test");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the dashboard");
    let served = support::dashboard::serve_on(listener, |settings| {
        on_the_real_node(settings);
        settings.workloads.session_image = session_image;
    })
    .await;
    let broker = &served.broker;
    let org = id("org");
    let (cluster_id, namespace) = virtual_cluster(broker, &org, MEDIUM).await;
    let token_of = |answer: &Answer| answer.body["credentials"]["token"].as_str().expect("token").to_owned();
    let bound = broker
        .bind(&cluster_id, &format!("{cluster_id}-edit"), MEDIUM, json!({ "parameters": { "role": "edit" } }))
        .await;
    assert_eq!(bound.status, StatusCode::CREATED, "{bound:?}");
    let viewer = broker
        .bind(&cluster_id, &format!("{cluster_id}-view"), MEDIUM, json!({ "parameters": { "role": "view" } }))
        .await;
    assert_eq!(viewer.status, StatusCode::CREATED, "{viewer:?}");
    let session = id("ss");
    let parameters = json!({ "cluster_instance_id": cluster_id, "protocol": "selkies",
                             "launch": { "command": ["python3", "/opt/caas-test/colour_app.py", APP_COLOUR] } });
    let uri = format!("/v2/service_instances/{session}?accepts_incomplete=true");
    let accepted = broker.call(Method::PUT, &uri, Some(body(STREAMING, CPU_720P, &org, parameters))).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{accepted:?}");
    succeeded(broker, &session, "provision", Duration::from_secs(300)).await;

    let overview = format!("/instances/{cluster_id}");
    let page = format!("{overview}/sessions/{session}");
    let signed_in = sign_in(&served, &format!("{overview}/login"), &token_of(&bound), &served.origin).await;
    assert_eq!(signed_in.status, 303, "{signed_in:?}");
    let editor = cookie_of(&signed_in);
    let target = [
        ("PROBE_DASHBOARD_PAGE", format!("{}{page}", served.origin)),
        ("PROBE_COOKIE", editor.clone()),
        ("PROBE_KEY", "2".to_owned()),
        ("PROBE_KEY_COLOUR", KEY_COLOUR.to_owned()),
    ];
    // The dashboard is served on this test's runtime: the probe waits elsewhere.
    let probe = [&target[..], &[("PROBE_GAMEPAD_COLOUR", GAMEPAD_COLOUR.to_owned())]].concat();
    let report = tokio::task::spawn_blocking(move || browser_probe("stream_probe.mjs", &probe)).await.expect("ran");
    assert_eq!(report.get("failure"), None, "{report}");
    assert_eq!(report["framePath"], format!("{page}/stream/index.html"), "the dashboard's proxy: {report}");
    let number = |pointer: &str| report.pointer(pointer).and_then(Value::as_f64).unwrap_or(-1.0);
    let share = number("/colourShare");
    assert!(share > 0.95, "the app's colour covers only {:.1}% of the stream: {report}", share * 100.0);
    let key_share = number("/keyColourShare");
    assert!(key_share > 0.95, "the key press did not repaint the app ({:.1}%): {report}", key_share * 100.0);
    // The game's way: the pod's app reads /dev/input/js0, which the preloaded interposer connects to Selkies.
    let pad_share = number("/gamepadColourShare");
    assert!(pad_share > 0.95, "the gamepad's button did not repaint the app ({:.1}%): {report}", pad_share * 100.0);
    let fps = number("/overlay/fps");
    assert!(fps > 0.0, "the overlay shows no frames per second: {report}");
    assert_eq!(report["waitingHidden"], true, "{report}");
    let violations: Vec<&Value> = report["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter(|error| error.as_str().is_some_and(|text| text.contains("Content Security Policy")))
        .collect();
    assert!(violations.is_empty(), "the page's policy refused something Selkies needs: {violations:?}");
    println!(
        "Selkies through the dashboard's proxy: first frame {:.0} ms after navigation, key to colour {:.0} ms, \
         gamepad button to colour {:.0} ms, overlay {}, the app's colour on {:.1}% of the stream",
        number("/timeToFirstFrameMs"),
        number("/keyToColourMs"),
        number("/gamepadToColourMs"),
        report["overlay"]["text"],
        share * 100.0
    );

    // A viewer (no services/proxy, no secrets): no stream on the page, and the proxy refuses them.
    let reader = sign_in(&served, &format!("{overview}/login"), &token_of(&viewer), &served.origin).await;
    assert_eq!(reader.status, 303, "{reader:?}");
    let reader = cookie_of(&reader);
    let seen = send(served.address, "GET", &page, &[("cookie", reader.as_str())], "").await;
    assert_eq!(seen.status, 200, "{seen:?}");
    assert!(!seen.body.contains("<iframe"), "{}", seen.body);
    for asset in ["index.html", "api/websockets"] {
        let path = format!("{page}/stream/{asset}");
        let refused = send(served.address, "GET", &path, &[("cookie", reader.as_str())], "").await;
        assert_eq!(refused.status, 403, "{asset}: {refused:?}");
    }

    // Stopped (its pod gone), the session's page offers Open, which starts it again; the page shows the stream once
    // the session is ready and its first frame arrived.
    let form = [("cookie", editor.as_str()), ("origin", served.origin.as_str())];
    let form = [form[0], form[1], ("content-type", "application/x-www-form-urlencoded")];
    let stopped = send(served.address, "POST", &page, &form, "action=stop").await;
    assert_eq!(stopped.status, 303, "{stopped:?}");
    eventually(Duration::from_secs(120), "the session's pod is gone", || async {
        pods_of(broker, &namespace, &session).await.is_empty().then_some(())
    })
    .await;
    let wake = [&target[..], &[("PROBE_OPEN", "1".to_owned())]].concat();
    let report = tokio::task::spawn_blocking(move || browser_probe("stream_probe.mjs", &wake)).await.expect("ran");
    assert_eq!(report.get("failure"), None, "{report}");
    assert_eq!((&report["opened"], &report["openedPath"]), (&json!(true), &json!(page)), "{report}");
    let share = report["colourShare"].as_f64().unwrap_or(-1.0);
    assert!(share > 0.95, "after Open, the app's colour covers only {:.1}% of the stream: {report}", share * 100.0);
    println!(
        "Selkies woken by Open on the dashboard: the stream showed the app {:.1} s after its page was opened",
        report["timeToFirstFrameMs"].as_f64().unwrap_or(-1.0) / 1000.0
    );

    delete_workload(broker, &session, STREAMING, CPU_720P).await;
    broker.deprovision(&cluster_id, MEDIUM).await;
}

#[tokio::test]
async fn an_app_deployed_from_the_dashboard_answers_through_the_endpoint_tester() {
    let _turn = NODE_TURN.lock().await;
    assert_ready(&[]).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the dashboard");
    let served = serve_on(listener, on_the_real_node).await;
    let (id, url, token) = instance_with_binding(&served.broker, "edit").await;
    let base = path_of(&url, &served.origin);
    let signed_in = sign_in(&served, &format!("{base}/login"), &token, &served.origin).await;
    assert_eq!(signed_in.status, 303, "{signed_in:?}");
    let cookie = cookie_of(&signed_in);

    let image = image("webapp");
    let form = [
        ("name", "web"),
        ("image", image.as_str()),
        ("port", "8080"),
        ("replicas", "1"),
        ("env", "GREETING=hello from the dashboard"),
        ("cpu_request", "100m"),
        ("cpu_limit", "500m"),
        ("memory_request", "64Mi"),
        ("memory_limit", "128Mi"),
        ("intent", "deploy"),
    ];
    let deployed = served.post(&format!("{base}/deploy"), &cookie, &form).await;
    assert_eq!(deployed.status, 303, "{deployed:?}");
    let started = std::sync::Mutex::new(Instant::now());
    let seen = std::sync::Mutex::new(Vec::<String>::new());
    let progress = |app: &'static str, state: &'static str| {
        let (cookie, base, seen, started) = (&cookie, &base, &seen, &started);
        let served = &served;
        async move {
            let path = format!("{base}/deploy/progress?app={app}");
            let fragment = send(served.address, "GET", &path, &[("cookie", cookie)], "").await;
            let detail = fragment.body.split("id=\"progress-detail\">").nth(1).and_then(|d| d.split('<').next());
            let mut seen = seen.lock().expect("seen");
            if let Some(detail) = detail.filter(|d| seen.last().is_none_or(|last| !last.ends_with(d))) {
                let since = started.lock().expect("started").elapsed();
                seen.push(format!("{:.1} s: {detail}", since.as_secs_f64()));
            }
            fragment.body.contains(&format!("data-state=\"{state}\"")).then_some(fragment.body)
        }
    };
    eventually(Duration::from_secs(120), "the dashboard showing the app ready", || progress("web", "succeeded")).await;
    println!("the dashboard's progress of web: {:?}", seen.lock().expect("seen"));

    // The tester, through the apiserver's service proxy as the editor: the pod on the real node answers (the
    // tenant's default-deny policy admits the node's own traffic, which the apiserver's proxy is).
    let try_form = [
        ("target", "service/web"),
        ("port", "80"),
        ("path", "/cgi-bin/whoami"),
        ("method", "GET"),
        ("headers", "Accept: application/json"),
        ("body", ""),
    ];
    // (The endpoint controller publishes a ready pod in the Service's EndpointSlice a moment after it turns ready;
    // until then the tester says nothing can answer.)
    let tried = eventually(Duration::from_secs(30), "the Service's endpoint published", || async {
        let tried = served.post(&format!("{base}/try"), &cookie, &try_form).await;
        (tried.status != 409).then_some(tried)
    })
    .await;
    assert_eq!(tried.status, 200, "{tried:?}");
    assert!(tried.body.contains(r#"<dd id="answer-status">200</dd>"#), "{}", tried.body);
    let latency = tried.body.split(r#"id="answer-latency">"#).nth(1).and_then(|l| l.split('<').next());
    println!("the tester's request through the service proxy took {}", latency.unwrap_or("?"));
    assert!(
        tried.body.contains("&quot;greeting&quot;: &quot;hello from the dashboard&quot;")
            || tried.body.contains("&#34;greeting&#34;: &#34;hello from the dashboard&#34;"),
        "pretty JSON, escaped: {}",
        tried.body
    );
    let index = try_form.map(|(key, value)| if key == "path" { (key, "/") } else { (key, value) });
    let page = served.post(&format!("{base}/try"), &cookie, &index).await;
    assert!(page.body.contains(r#"<dd id="answer-status">200</dd>"#), "the index page: {}", page.body);
    let shown = page.body.contains("caas webapp") && !page.body.contains("<h1>caas webapp</h1>");
    assert!(shown, "the app's HTML is shown as text, escaped: {}", page.body);

    // The pod's log, read on the dashboard as the editor: busybox httpd logs each answer it gave (`<peer>: response:200`),
    // the tester's among them.
    let namespace = served.broker.namespace(&id);
    let pods = Api::<Pod>::namespaced(cluster().admin().await, &namespace).list(&ListParams::default()).await;
    let pod = pods.expect("list the pods").items.into_iter().find_map(|pod| pod.metadata.name).expect("web's pod");
    let logs = eventually(Duration::from_secs(30), "the tester's request in the pod's log", || async {
        let (path, headers) = (format!("{base}/pods/{pod}/logs"), [("cookie", cookie.as_str())]);
        let page = send(served.address, "GET", &path, &headers, "").await;
        assert_eq!(page.status, 200, "{page:?}");
        page.body.contains("response:200").then_some(page.body)
    })
    .await;
    assert!(logs.contains(&format!("{base}/pods/{pod}/logs/stream")), "the log is followed live: {logs}");

    // Two pods' logs together: scaled to two, each pod answers once, and the Deployment's logs page shows both pods'
    // answers, each line naming its pod, filtered by text and by severity.
    let scale = [("action", "scale"), ("replicas", "2")];
    assert_eq!(served.post(&format!("{base}/apps/deployments/web"), &cookie, &scale).await.status, 303);
    let admin = Api::<Pod>::namespaced(cluster().admin().await, &namespace);
    let both = eventually(Duration::from_secs(90), "two ready pods of web", || async {
        let pods = admin.list(&ListParams::default()).await.expect("list the pods").items;
        let names: Vec<String> =
            pods.iter().filter(|pod| is_ready(pod)).filter_map(|pod| pod.metadata.name.clone()).collect();
        (names.len() == 2).then_some(names)
    })
    .await;
    let kubeconfig = &cluster().kubeconfig;
    for pod in &both {
        let (answered, _, err) = cluster()
            .kubectl(kubeconfig, &["get", "--raw", &format!("/api/v1/namespaces/{namespace}/pods/{pod}:8080/proxy/")]);
        assert!(answered, "{pod} answers through the pod proxy: {err}");
    }
    let together = format!("{base}/objects/deployments/web/logs");
    let merged = eventually(Duration::from_secs(30), "both pods' answers on the Deployment's logs page", || async {
        let page = served.get(&format!("{together}?q=response%3A200&level=info"), &cookie).await;
        assert_eq!(page.status, 200, "{page:?}");
        both.iter().all(|pod| page.body.contains(&format!("{pod} │ "))).then_some(page.body)
    })
    .await;
    assert!(merged.contains(r#"id="pods-shown">Pods: 2</span>"#), "{merged}");
    let lines = merged.split(r#"sse-swap="lines">"#).nth(1).and_then(|rest| rest.split("</pre>").next()).unwrap_or("");
    assert!(lines.lines().all(|line| line.contains("response:200")), "only the lines holding the text: {lines}");
    assert!(merged.contains(&format!("{together}/stream?q=response%3A200&#38;level=info")), "followed live: {merged}");
    let errors = served.get(&format!("{together}?level=error"), &cookie).await;
    assert!(!errors.body.contains("response:200") && errors.body.contains("No lines"), "{}", errors.body);
    let workloads = served.get(&format!("{base}/workloads"), &cookie).await;
    assert!(
        workloads.body.contains(&format!(r#"href="{together}""#)),
        "linked from the workloads page: {}",
        workloads.body
    );

    let deleted = served.post(&format!("{base}/apps/deployments/web"), &cookie, &[("action", "delete")]).await;
    assert_eq!(deleted.status, 303, "{deleted:?}");

    // An image the node does not hold and cannot pull: the progress fails, saying why.
    let missing = form.map(|(key, value)| match key {
        "name" => (key, "missing"),
        "image" => (key, "localhost/caas/no-such-image:1"),
        _ => (key, value),
    });
    let deployed = served.post(&format!("{base}/deploy"), &cookie, &missing).await;
    assert_eq!(deployed.status, 303, "{deployed:?}");
    seen.lock().expect("seen").clear();
    *started.lock().expect("started") = Instant::now();
    let failed = eventually(Duration::from_secs(120), "the dashboard showing the pull failure", || {
        progress("missing", "failed")
    })
    .await;
    println!("the dashboard's progress of missing: {:?}", seen.lock().expect("seen"));
    assert!(failed.contains("image pull failed for container app"), "{failed}");
    served.broker.deprovision(&id, SMALL).await;
}
