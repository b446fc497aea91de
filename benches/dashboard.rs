//! The dashboard against the local real control plane, each figure beside a baseline measured in the same run:
//!
//! - overview pages per second at `BENCH_DASHBOARD_CONNECTIONS` connections (wrk, 10 s), signed in as a binding,
//!   against the same reads (the overview's seven lists, as the same identity) made directly by a minimal client at
//!   the same concurrency, and by kubectl one after another;
//! - memory: this process's resident set (the dashboard is served in it) idle, then with `BENCH_LIVE_PAGES` live
//!   pages open on one namespace, with the number of Kubernetes watches they share (one per kind, whatever the number
//!   of pages) and how long a pod's creation takes to reach every page.
//!
//! Run with `cargo bench --bench dashboard`. It asserts nothing and prints a Markdown report; docs/benchmarks.md keeps
//! the latest one.

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use caas_broker::tenant::overview;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use support::broker::SMALL;
use support::cluster::{cluster, eventually};
use support::dashboard::{cookie_of, instance_with_binding, serve, sign_in};
use support::process::rss_mib;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn size(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One wrk run of `url` with `cookie` at `connections`: the table cell.
fn wrk(url: &str, cookie: &str, connections: usize) -> String {
    let out = Command::new("wrk")
        .args(["-t2", &format!("-c{connections}"), "-d10s", "--latency", "-H", &format!("Cookie: {cookie}"), url])
        .output();
    let Ok(out) = out else { return "wrk is not installed (apt-get install wrk)".to_owned() };
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field =
        |prefix: &str| text.lines().find_map(|l| l.trim().strip_prefix(prefix)).unwrap_or("?").trim().to_owned();
    let non_2xx = text.lines().find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:")).unwrap_or("0");
    format!("{} pages/s, p99 {}, non-2xx {}", field("Requests/sec:"), field("99%"), non_2xx.trim())
}

/// The overview's reads made directly as the same identity, by `connections` tasks for 10 s: the cell.
async fn direct_reads(client: &kube::Client, namespace: &str, connections: usize) -> String {
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(10);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, namespace, done) = (client.clone(), namespace.to_owned(), done.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                overview::read(&client, &namespace).await.expect("the overview's reads");
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.expect("reader");
    }
    format!("{:.1} overviews/s", done.load(Ordering::Relaxed) as f64 / 10.0)
}

/// The overview's reads with kubectl as the same identity, `runs` times one after another: the cell.
fn kubectl_reads(kubeconfig: &std::path::Path, namespace: &str, runs: usize) -> String {
    let started = Instant::now();
    for _ in 0..runs {
        let kinds = "resourcequotas,limitranges,pods,deployments,statefulsets,events,persistentvolumeclaims";
        let (ok, _, err) = cluster().kubectl(kubeconfig, &["get", kinds, "-n", namespace, "-o", "json"]);
        assert!(ok, "kubectl get: {err}");
    }
    format!("{:.1} overviews/s", runs as f64 / started.elapsed().as_secs_f64())
}

/// Opens a live page's event stream; returns the connection once its headers came.
async fn open_live(address: SocketAddr, path: &str, cookie: &str) -> tokio::net::TcpStream {
    let mut connection = tokio::net::TcpStream::connect(address).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nhost: {address}\r\ncookie: {cookie}\r\n\r\n");
    connection.write_all(request.as_bytes()).await.expect("send");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        connection.read_exact(&mut byte).await.expect("the stream's headers");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head));
    connection
}

/// Reads `connection` until an event for pods came.
async fn until_pods_event(connection: &mut tokio::net::TcpStream) {
    let mut seen = String::new();
    let mut buffer = [0u8; 1024];
    while !seen.contains("event: pods") {
        let count = connection.read(&mut buffer).await.expect("read");
        assert!(count > 0, "the stream ended");
        seen.push_str(&String::from_utf8_lossy(&buffer[..count]));
    }
}

fn gauge(name: &str) -> String {
    let text = caas_broker::metrics::global().encode();
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')).unwrap_or("?").trim().to_owned()
}

#[tokio::main]
async fn main() {
    let connections = size("BENCH_DASHBOARD_CONNECTIONS", 16);
    let live_pages = size("BENCH_LIVE_PAGES", 100);
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpu.lines().find_map(|l| l.strip_prefix("model name")).map(|m| m.trim_start_matches([' ', '\t', ':']));
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());

    let served = serve().await;
    let broker = &served.broker;
    let (id, _, token) = instance_with_binding(broker, "edit").await;
    let namespace = broker.namespace(&id);
    let admin = cluster().admin().await;
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": { "name": "web" },
        "spec": { "replicas": 3, "selector": { "matchLabels": { "app": "web" } },
                  "template": { "metadata": { "labels": { "app": "web" } },
                                "spec": { "containers": [{ "name": "web", "image": "example.invalid/web:1" }] } } }
    }))
    .expect("deployment");
    Api::<Deployment>::namespaced(admin.clone(), &namespace)
        .create(&PostParams::default(), &deployment)
        .await
        .expect("create the deployment");
    let pods = Api::<Pod>::namespaced(admin.clone(), &namespace);
    eventually(Duration::from_secs(60), "three pods", || async {
        (pods.list(&Default::default()).await.ok()?.items.len() == 3).then_some(())
    })
    .await;
    let signed_in = sign_in(&served, &format!("/instances/{id}/login"), &token, &served.origin).await;
    let cookie = cookie_of(&signed_in);
    let user =
        kube::Client::try_from(caas_broker::k8s::as_user(&cluster().admin_config().await, &token)).expect("client");
    let kubeconfig = std::env::temp_dir().join(format!("bench-dashboard-{}.kubeconfig", std::process::id()));
    let endpoint = caas_broker::k8s::ClusterEndpoint::from_config(&cluster().admin_config().await);
    let ca = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, endpoint.ca_pem.unwrap_or_default());
    let as_user = format!(
        "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: '{}', certificate-authority-data: {ca}}}}}]\n\
         users: [{{name: u, user: {{token: '{token}'}}}}]\ncontexts: [{{name: x, context: {{cluster: c, user: u}}}}]\ncurrent-context: x\n",
        endpoint.server
    );
    std::fs::write(&kubeconfig, as_user).expect("write the user's kubeconfig");

    println!("<!-- Written from the output of: cargo bench --bench dashboard (default sizes) -->");
    println!("# caas-broker dashboard benchmarks\n");
    println!(
        "Machine: {cores} cores ({}); Kubernetes on loopback (tests/cluster), release build; the dashboard is served in \
         the benchmark's own process, wrk and the control plane share the same cores.\n",
        model.unwrap_or("?")
    );
    println!("## Overview pages at {connections} connections (10 s; a namespace with a Deployment of 3 pods)\n");
    println!("| path | result |\n|---|---|");
    let url = format!("{}/instances/{id}", served.origin);
    let pages = tokio::task::spawn_blocking({
        let cookie = cookie.clone();
        move || wrk(&url, &cookie, connections)
    })
    .await
    .expect("wrk");
    println!("| dashboard GET /instances/{{id}} (7 lists as the user, alerts, rendered HTML; wrk) | {pages} |");
    println!(
        "| minimal client: the same 7 lists as the same user, {connections} at once | {} |",
        direct_reads(&user, &namespace, connections).await
    );
    let kubectl = tokio::task::spawn_blocking({
        let (kubeconfig, namespace) = (kubeconfig.clone(), namespace.clone());
        move || kubectl_reads(&kubeconfig, &namespace, 20)
    })
    .await
    .expect("kubectl");
    println!("| kubectl get of the same 7 kinds as the same user, one after another | {kubectl} |");
    std::fs::remove_file(&kubeconfig).ok();

    println!("\n## Live pages on one namespace (resident set of this process, which serves the dashboard)\n");
    println!("| state | RSS | Kubernetes watches | viewers |\n|---|---|---|---|");
    println!(
        "| signed in, no live page | {:.1} MiB | {} | {} |",
        rss_mib("self"),
        gauge("caas_broker_dashboard_watches"),
        gauge("caas_broker_dashboard_viewers")
    );
    let path = format!("/instances/{id}/live");
    let mut streams = Vec::new();
    let opening = Instant::now();
    for _ in 0..live_pages {
        streams.push(open_live(served.address, &path, &cookie).await);
    }
    let opened = opening.elapsed();
    println!(
        "| {live_pages} live pages open (opened in {:.1} s: 16 access reviews each) | {:.1} MiB | {} | {} |",
        opened.as_secs_f64(),
        rss_mib("self"),
        gauge("caas_broker_dashboard_watches"),
        gauge("caas_broker_dashboard_viewers")
    );
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": "bench-live" },
        "spec": { "containers": [{ "name": "app", "image": "example.invalid/app:1" }] }
    }))
    .expect("pod");
    let created = Instant::now();
    pods.create(&PostParams::default(), &pod).await.expect("create a pod");
    futures::future::join_all(streams.iter_mut().map(until_pods_event)).await;
    let fan_out = created.elapsed();
    println!(
        "| after a pod's creation reached all {live_pages} pages ({:.0} ms from the create call) | {:.1} MiB | {} | {} |",
        fan_out.as_secs_f64() * 1e3,
        rss_mib("self"),
        gauge("caas_broker_dashboard_watches"),
        gauge("caas_broker_dashboard_viewers")
    );
    drop(streams);
    broker.deprovision(&id, SMALL).await;
}
