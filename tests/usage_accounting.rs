//! Usage accounting as an operator relies on it:
//!
//! - the usage API answers only with the broker's credentials and refuses bad ranges and formats with a 400 that
//!   says why;
//! - two replicas sampling the same virtual cluster count each second once (one core reserved for a span is that many
//!   core-seconds in the record, the API and the dashboard's month figure);
//! - on the real node (`tests/cluster/real-node.sh`, with the metrics API of `tests/cluster/cluster.sh`), a pod that
//!   burns one core for 60 s grows its virtual cluster's CPU use by 60 ± 15 core-seconds, on `/metrics` and in the
//!   API; the broker killed with SIGKILL and started again shows the same totals (nothing counted twice, nothing
//!   lost), and the CSV of that hour, filtered by the instance, holds that instance's rows only.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use base64::Engine;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use support::broker::TestBroker;
use support::cluster::{cluster, eventually};
use support::http::{curl, sample};
use support::real_node::{NODE_TURN, assert_ready, id, kubectl, node_pod};

const BINARY: &str = env!("CARGO_BIN_EXE_caas-broker");
const PASSWORD: &str = "a-long-test-password";
const CAAS: &str = "df246006-e192-4292-807d-2b0ec6395bdf";
const SMALL: &str = "7d749e64-5d0a-4bb1-899c-03fd6ff4547f";

/// A GET of the usage API in-process, with `credentials` (user:password) when given.
async fn usage(broker: &TestBroker, query: &str, credentials: Option<&str>) -> (StatusCode, Value) {
    let mut request = Request::builder().method(Method::GET).uri(format!("/usage?{query}"));
    if let Some(credentials) = credentials {
        let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
        request = request.header("authorization", format!("Basic {encoded}"));
    }
    let answer = broker.raw(request.body(Body::empty()).expect("request")).await;
    (answer.status, answer.body)
}

#[tokio::test]
async fn the_usage_api_needs_the_brokers_credentials_and_refuses_bad_input() {
    let broker = TestBroker::start(|_| {}).await;
    let good = "broker:broker-dev-password";
    let range = "from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00Z";
    let (status, body) = usage(&broker, range, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = usage(&broker, range, Some("broker:wrong-password")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for (query, says) in [
        ("from=yesterday&to=2026-12-02T00:00:00Z", "RFC 3339"),
        ("from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z", "must be before"),
        ("from=2026-12-01T00:00:00Z&to=2026-12-01T00:00:00Z", "must be before"),
        ("from=2025-12-01T00:00:00Z&to=2026-12-01T00:00:00Z", "31 days"),
        (&format!("{range}&format=xml"), "not json or csv"),
        (&format!("{range}&colour=blue"), "colour"),
        ("to=2026-12-02T00:00:00Z", "from"),
        (&format!("{range}&instance_id="), "instance_id"),
    ] {
        let (status, body) = usage(&broker, query, Some(good)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"], "BadRequest", "{query}: {body}");
        assert!(body["description"].as_str().is_some_and(|d| d.contains(says)), "{query}: {body}");
    }
    let nobody = format!("{range}&instance_id={}", id("nobody"));
    let (status, body) = usage(&broker, &nobody, Some(good)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["instances"], json!([]), "an instance never accounted has no rows");
    assert_eq!(body["from"], "2026-12-01T00:00:00Z");
}

/// Samples every 5 s and checkpoints every 10 s (the shortest the configuration allows between them).
fn quick_accounting(settings: &mut caas_broker::config::Settings) {
    settings.usage.sample_seconds = 5;
    settings.usage.checkpoint_seconds = 10;
}

#[tokio::test]
async fn two_replicas_count_each_second_once() {
    let first = TestBroker::start(quick_accounting).await;
    let prefix = first.prefix.clone();
    let second = TestBroker::start(|settings| {
        quick_accounting(settings);
        settings.kubernetes.namespace_prefix = prefix;
    })
    .await;
    let instance = id("vc");
    first.provision(&instance, support::broker::SMALL, json!({})).await;
    let namespace = first.namespace(&instance);
    // A pod on kwok's simulated nodes requesting one core: what both replicas sample, at a rate known exactly.
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": "reserved" },
        "spec": { "containers": [{ "name": "c", "image": "example.invalid/app:1",
            "resources": { "requests": { "cpu": "1", "memory": "64Mi" }, "limits": { "cpu": "1", "memory": "64Mi" } } }],
            "nodeSelector": { "type": "kwok" } }
    }))
    .expect("pod");
    let pods = Api::<Pod>::namespaced(first.client.clone(), &namespace);
    pods.create(&PostParams::default(), &pod).await.expect("create the pod");
    eventually(Duration::from_secs(60), "the pod to run", || async {
        let pod = pods.get("reserved").await.ok()?;
        (pod.status?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;
    let running = jiff::Timestamp::now();
    tokio::time::sleep(Duration::from_secs(45)).await;

    // The record, however the two replicas' checkpoints fell: one core over the time it covers, not two.
    let month = jiff::Timestamp::now().strftime("%Y%m").to_string();
    let name = format!("usage-{instance}-{month}");
    let records = Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(first.client.clone(), "caas-broker-system");
    let record = records.get(&name).await.expect("the usage record");
    let annotations = record.metadata.annotations.clone().unwrap_or_default();
    let through: jiff::Timestamp =
        annotations["caas-broker.io/usage-through"].parse().expect("the record says through when");
    let lifetime: Vec<f64> = serde_json::from_str(&annotations["caas-broker.io/usage-lifetime"]).expect("totals");
    let elapsed = through.duration_since(running).as_secs_f64();
    let reserved = lifetime[2];
    // Counted from the first sample after the pod ran (within 5 s of it), each span once.
    assert!(
        reserved <= elapsed + 1.0 && reserved >= elapsed - 11.0,
        "one core reserved for {elapsed:.1} s counted as {reserved:.1} core-seconds by two replicas"
    );
    // The API and the month's figure the dashboard shows say the same.
    let since = running - jiff::SignedDuration::from_hours(1);
    let to = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
    let (status, body) =
        usage(&second, &format!("from={since}&to={to}&instance_id={instance}"), Some("broker:broker-dev-password"))
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let from_api = body["instances"][0]["totals"]["cpu_requested_core_seconds"].as_f64().unwrap_or(-1.0);
    assert!(from_api >= reserved, "the API says {from_api}, the record said {reserved} a moment before: {body}");
    assert_eq!(body["instances"][0]["kind"], "virtual-cluster");
    assert_eq!(body["instances"][0]["plan"], "small");
    let tenant = caas_broker::lifecycle::Tenant {
        instance_id: instance.clone(),
        namespace: namespace.clone(),
        service_name: "caas".to_owned(),
        plan_name: "small".to_owned(),
        username: String::new(),
        account: String::new(),
        signer: caas_broker::lifecycle::Signer::Owner,
    };
    let month_usage = second.domain.month_usage(&tenant).await.expect("the month's usage");
    assert!(month_usage.cpu_requested_core_seconds >= reserved, "{month_usage:?} against {reserved}");
    println!(
        "two replicas: one core reserved for {elapsed:.1} s counted {reserved:.1} core-seconds; the API {from_api:.1}, \
         the month {:.1}",
        month_usage.cpu_requested_core_seconds
    );
    first.deprovision(&instance, support::broker::SMALL).await;
    forget_usage(&first.client, &instance).await;
}

/// Deletes the usage records of a test's instance (they outlive it by design).
async fn forget_usage(client: &kube::Client, instance: &str) {
    let records = Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), "caas-broker-system");
    let selector = format!("app.kubernetes.io/managed-by=caas-broker-usage,caas-broker.io/instance={instance}");
    let deleted =
        records.delete_collection(&Default::default(), &kube::api::ListParams::default().labels(&selector)).await;
    deleted.expect("delete the test's usage records");
}

/// The broker binary, as operators run it, sampling every 5 s and checkpointing every 10 s.
struct BrokerProcess {
    child: Child,
    base: String,
    prefix: String,
    log: std::path::PathBuf,
}

impl BrokerProcess {
    fn start(port: u16, prefix: &str, log: &std::path::Path) -> BrokerProcess {
        let output = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("broker log");
        let child = Command::new(BINARY)
            .env("KUBECONFIG", &cluster().kubeconfig)
            .env("CAAS_BROKER__LISTEN", format!("127.0.0.1:{port}"))
            .env("CAAS_BROKER__DASHBOARD__LISTEN", "127.0.0.1:0")
            .env("CAAS_BROKER__AUTH__PASSWORD", PASSWORD)
            .env("CAAS_BROKER__KUBERNETES__NAMESPACE_PREFIX", prefix)
            .env("CAAS_BROKER__USAGE__SAMPLE_SECONDS", "5")
            .env("CAAS_BROKER__USAGE__CHECKPOINT_SECONDS", "10")
            .stdout(Stdio::from(output.try_clone().expect("log")))
            .stderr(Stdio::from(output))
            .spawn()
            .expect("start the broker");
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while curl(&[&format!("{base}/healthz")]).0 != "200" {
            assert!(started.elapsed() < Duration::from_secs(20), "the broker did not start: see {}", log.display());
            std::thread::sleep(Duration::from_millis(100));
        }
        BrokerProcess { child, base, prefix: prefix.to_owned(), log: log.to_owned() }
    }

    /// An authenticated call: status and body.
    fn call(&self, method: &str, path: &str, body: Option<&str>) -> (String, String) {
        let url = format!("{}{path}", self.base);
        let credentials = format!("broker:{PASSWORD}");
        let mut args = vec!["-u", &credentials, "-H", "X-Broker-API-Version: 2.17", "-X", method];
        if let Some(body) = body {
            args.extend(["-H", "Content-Type: application/json", "-d", body]);
        }
        args.push(&url);
        curl(&args)
    }

    /// A sample of `/metrics` by the start of its line.
    fn metric(&self, name: &str) -> Option<f64> {
        sample(&self.call("GET", "/metrics", None).1, name)
    }

    /// The instance's totals in the usage API from the start of the hour `since` falls in until an hour from now.
    fn totals(&self, instance: &str, since: jiff::Timestamp) -> Value {
        let (status, body) = self.call("GET", &usage_query(instance, since, "json"), None);
        assert_eq!(status, "200", "{body}");
        let body: Value = serde_json::from_str(&body).expect("JSON");
        body["instances"][0]["totals"].clone()
    }

    fn kill(&mut self, signal: &str) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args([signal, &pid]).status().expect("kill").success());
        self.child.wait().expect("wait for the broker");
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn usage_query(instance: &str, since: jiff::Timestamp, format: &str) -> String {
    let to = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
    let filter = if instance.is_empty() { String::new() } else { format!("&instance_id={instance}") };
    format!("/usage?from={since}&to={to}&format={format}{filter}")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Fails, saying what to run, unless the metrics API is served.
fn assert_metrics_api() {
    let (ok, out, err) =
        kubectl(&["get", "apiservice", "v1beta1.metrics.k8s.io", "-o", "jsonpath={.status.conditions[0].status}"]);
    assert!(
        ok && out.trim() == "True",
        "the metrics API is not Available (`tests/cluster/cluster.sh up` serves it): {out}{err}"
    );
}

#[tokio::test]
async fn a_pod_burning_a_core_for_a_minute_is_counted_once_across_a_sigkill() {
    let _turn = NODE_TURN.lock().await;
    assert_ready(&[]).await;
    assert_metrics_api();
    let log = std::env::temp_dir().join(format!("caas-usage-accounting-{}.log", std::process::id()));
    let prefix = format!("u{:05x}-", rand::random::<u32>() & 0xfffff);
    let port = free_port();
    let mut broker = BrokerProcess::start(port, &prefix, &log);
    let instance = id("vc");
    let provision = json!({ "service_id": CAAS, "plan_id": SMALL, "organization_guid": "org-usage",
        "space_guid": "space-usage" })
    .to_string();
    let (status, body) =
        broker.call("PUT", &format!("/v2/service_instances/{instance}?accepts_incomplete=true"), Some(&provision));
    assert!(status == "201" || status == "202", "{status} {body}");
    let operation = format!("/v2/service_instances/{instance}/last_operation");
    eventually(Duration::from_secs(60), "the virtual cluster to be provisioned", || async {
        broker.call("GET", &operation, None).1.contains("\"succeeded\"").then_some(())
    })
    .await;
    let namespace = caas_broker::k8s::names::namespace(&broker.prefix, &instance);
    let since = jiff::Timestamp::now();

    // One core for 60 s, then idle; its limit lets it have the whole core.
    let mut burner = node_pod("burner", json!({}), "timeout 60 sh -c 'while :; do :; done'; exec sleep 3600");
    let resources =
        json!({ "requests": { "cpu": "100m", "memory": "32Mi" }, "limits": { "cpu": "1500m", "memory": "64Mi" } });
    burner.spec.as_mut().expect("spec").containers[0].resources =
        Some(serde_json::from_value(resources).expect("resources"));
    let admin = cluster().admin().await;
    let pods = Api::<Pod>::namespaced(admin.clone(), &namespace);
    pods.create(&PostParams::default(), &burner).await.expect("create the burner");
    eventually(Duration::from_secs(90), "the burner to run", || async {
        let pod = pods.get("burner").await.ok()?;
        (pod.status?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;

    // The burn ends 60 s after its start; the metrics API lags by its resolution, the records by a checkpoint.
    let cpu = |totals: &Value| totals["cpu_core_seconds"].as_f64().unwrap_or(0.0);
    tokio::time::sleep(Duration::from_secs(60)).await;
    let settled = eventually(Duration::from_secs(120), "the CPU count to settle after the burn", || async {
        let first = cpu(&broker.totals(&instance, since));
        tokio::time::sleep(Duration::from_secs(25)).await;
        let second = cpu(&broker.totals(&instance, since));
        (first > 0.0 && (second - first).abs() < 2.0).then_some(second)
    })
    .await;
    assert!(
        (45.0..=75.0).contains(&settled),
        "60 ± 15 core-seconds expected, counted {settled} (log: {})",
        log.display()
    );
    let series = format!(
        "caas_broker_usage_cpu_core_seconds_total{{organization=\"org-usage\",space=\"space-usage\",service=\"caas\",\
         plan=\"small\",instance=\"{instance}\",kind=\"virtual-cluster\"}}"
    );
    let shown = eventually(Duration::from_secs(30), "the counter on /metrics", || async {
        broker.metric(&series).filter(|shown| (shown - settled).abs() < 2.0)
    })
    .await;

    // Killed without a chance to write anything, then started again: the same totals, not more, not less.
    broker.kill("-KILL");
    let mut broker = BrokerProcess::start(port, &prefix, &log);
    let after_restart = broker.metric(&series).expect("the counter right after the restart");
    assert!((after_restart - shown).abs() < 2.0, "shown {shown} before the SIGKILL, {after_restart} after");
    tokio::time::sleep(Duration::from_secs(25)).await;
    let later = cpu(&broker.totals(&instance, since));
    assert!((later - settled).abs() < 2.0, "{settled} before the SIGKILL, {later} two checkpoints after it");
    let counter = broker.metric(&series).expect("the counter");
    assert!(counter >= after_restart && (counter - later).abs() < 2.0, "counter {counter}, API {later}");

    // The CSV of these hours: that instance's rows only when filtered; among the others when not.
    let (status, csv) = broker.call("GET", &usage_query(&instance, since, "csv"), None);
    assert_eq!(status, "200", "{csv}");
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert!(!rows.is_empty() && rows.len() <= 2, "{csv}");
    assert!(rows.iter().all(|row| row.split(',').nth(1) == Some(instance.as_str())), "{csv}");
    let counted: f64 = rows.iter().filter_map(|row| row.split(',').nth(7)?.parse::<f64>().ok()).sum();
    assert!((counted - later).abs() < 2.0, "the CSV's hours add up to {counted}, the totals say {later}");
    let (status, all) = broker.call("GET", &usage_query("", since, "csv"), None);
    assert_eq!(status, "200");
    assert!(all.lines().any(|row| row.split(',').nth(1) == Some(instance.as_str())), "{all}");

    println!(
        "usage accounting: a core burnt for 60 s counted {settled:.1} core-seconds; /metrics {shown:.1} before the \
         SIGKILL, {after_restart:.1} right after, {counter:.1} two checkpoints later; the CSV's {} rows add up to \
         {counted:.1}",
        rows.len()
    );
    let query = format!("service_id={CAAS}&plan_id={SMALL}");
    let (status, body) = broker.call("DELETE", &format!("/v2/service_instances/{instance}?{query}"), None);
    assert!(status == "200" || status == "202", "{status} {body}");
    broker.kill("-TERM");
    let _ = std::fs::remove_file(&broker.log);
    forget_usage(&admin, &instance).await;
}
