//! The watch-fed copy of the broker's records, on the real apiserver and through the `caas-broker` process (so that
//! its own `/metrics` count its own apiserver calls): repeated `last_operation` polls and fetches of a ready instance
//! make no apiserver reads; the process reads its own writes at once; a change made by someone else reaches the
//! answers through the watch; an instance made behind the copy's back is never reported missing.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::broker::{CAAS as SERVICE, MICRO, SMALL};
use support::cluster::cluster;
use support::http::{curl, sample};

const BINARY: &str = env!("CARGO_BIN_EXE_caas-broker");

/// The broker process, stopped when dropped; its log is kept in a file named in every failure.
struct Broker {
    process: Child,
    base: String,
    log: std::path::PathBuf,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Broker {
    fn start() -> Broker {
        let cluster = cluster();
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let log = std::env::temp_dir().join(format!("record-cache-{port}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let process = Command::new(BINARY)
            .env("KUBECONFIG", &cluster.kubeconfig)
            .env("CAAS_BROKER__LISTEN", format!("127.0.0.1:{port}"))
            .env("CAAS_BROKER__DASHBOARD__LISTEN", "127.0.0.1:0")
            .env("CAAS_BROKER__LOG__LEVEL", "info")
            // Usage accounting reads tenant namespaces in the background; what is counted here is what requests cost.
            .env("CAAS_BROKER__USAGE__ENABLED", "false")
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .expect("start the broker");
        let broker = Broker { process, base: format!("http://127.0.0.1:{port}"), log };
        broker.wait_for("the broker to serve and its copy of the records to sync", |b| {
            let metrics = b.get("/metrics").1;
            ["namespaces", "workload_records", "binding_records"]
                .iter()
                .all(|kind| sample(&metrics, &format!("caas_broker_cache_synced{{kind=\"{kind}\"}}")) == Some(1.0))
        });
        broker
    }

    fn wait_for(&self, what: &str, mut done: impl FnMut(&Broker) -> bool) {
        let started = Instant::now();
        while !done(self) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "waited 30 s for {what} (log: {})",
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// (status, body) of an OSB request.
    fn osb(&self, method: &str, path: &str, body: Option<&str>) -> (String, String) {
        let url = format!("{}{path}", self.base);
        let mut args = vec!["-u", "broker:broker-dev-password", "-H", "X-Broker-API-Version: 2.17", "-X", method];
        if let Some(body) = body {
            args.extend(["-H", "Content-Type: application/json", "-d", body]);
        }
        args.push(&url);
        curl(&args)
    }

    fn get(&self, path: &str) -> (String, String) {
        curl(&["-u", "broker:broker-dev-password", &format!("{}{path}", self.base)])
    }

    fn json(&self, method: &str, path: &str, body: Option<&str>) -> (String, Value) {
        let (status, text) = self.osb(method, path, body);
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Reads (GETs, watches included) the broker has made of the apiserver so far, from its own metrics.
    fn apiserver_reads(&self) -> f64 {
        let metrics = self.get("/metrics").1;
        metrics
            .lines()
            .filter(|line| line.starts_with("caas_broker_kubernetes_request_duration_seconds_count{method=\"GET\""))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

fn provision_body(plan: &str) -> String {
    format!(r#"{{"service_id":"{SERVICE}","plan_id":"{plan}","organization_guid":"org-cache","space_guid":"s"}}"#)
}

#[test]
fn polls_and_fetches_of_a_ready_instance_are_answered_without_apiserver_reads() {
    let broker = Broker::start();
    let id = format!("cache-{:08x}", rand::random::<u32>());
    let uri = format!("/v2/service_instances/{id}");
    let (status, body) = broker.osb("PUT", &uri, Some(&provision_body(MICRO)));
    assert_eq!(status, "201", "{body}");
    // The first poll checks the quota and the default ServiceAccount once; the copy answers from then on.
    let (_, first) = broker.json("GET", &format!("{uri}/last_operation"), None);
    assert_eq!(first["state"], "succeeded", "{first}");
    let (status, bound) = broker.json(
        "PUT",
        &format!("{uri}/service_bindings/{id}-b"),
        Some(&format!(r#"{{"service_id":"{SERVICE}","plan_id":"{MICRO}"}}"#)),
    );
    assert_eq!(status, "201", "{bound}");

    let before = broker.apiserver_reads();
    let polls = 50;
    for _ in 0..polls {
        let (status, state) = broker.json("GET", &format!("{uri}/last_operation"), None);
        assert_eq!((status.as_str(), &state["state"]), ("200", &Value::from("succeeded")), "{state}");
        let (status, fetched) = broker.json("GET", &uri, None);
        assert_eq!((status.as_str(), &fetched["plan_id"]), ("200", &Value::from(MICRO)), "{fetched}");
        let (status, state) = broker.json("GET", &format!("{uri}/service_bindings/{id}-b/last_operation"), None);
        assert_eq!((status.as_str(), &state["state"]), ("200", &Value::from("succeeded")), "{state}");
    }
    let reads = broker.apiserver_reads() - before;
    println!("record_cache: {} polls and fetches of a ready instance made {reads} apiserver reads", 3 * polls);
    // The watches re-open every 15 s (a GET each): a few reads may fall in; one per request would be 150.
    assert!(reads <= 6.0, "{} requests made {reads} apiserver reads (log: {})", 3 * polls, broker.log.display());
    let metrics = broker.get("/metrics").1;
    let cached = sample(&metrics, "caas_broker_cache_objects{kind=\"namespaces\"}").expect("cache size in /metrics");
    assert!(cached >= 1.0, "{metrics}");
    assert!(sample(&metrics, "caas_broker_instances{service=\"caas\",plan=\"micro\"}").is_some_and(|n| n >= 1.0));

    // Its own write, read at once: the plan change shows in the next fetch, not a moment later.
    let patch = format!(r#"{{"service_id":"{SERVICE}","plan_id":"{SMALL}"}}"#);
    let (status, body) = broker.osb("PATCH", &uri, Some(&patch));
    assert_eq!(status, "200", "{body}");
    let (_, fetched) = broker.json("GET", &uri, None);
    assert_eq!(fetched["plan_id"], SMALL, "the process reads its own write: {fetched}");

    // Someone else's change (the namespace deleted behind the broker's back) reaches the answers through the watch.
    let namespace = format!("caas-{id}");
    let (ok, _, err) = cluster().kubectl(&cluster().kubeconfig, &["delete", "namespace", &namespace, "--wait=false"]);
    assert!(ok, "kubectl delete namespace {namespace}: {err}");
    broker.wait_for("last_operation to see the deletion", |b| {
        let (_, state) = b.json("GET", &format!("{uri}/last_operation"), None);
        state["description"].as_str().is_some_and(|d| d.contains("deleting"))
    });
    let (status, body) = broker.osb("GET", &uri, None);
    assert_eq!(status, "404", "a terminating instance is not fetched: {body}");
    let query = format!("service_id={SERVICE}&plan_id={SMALL}");
    let (status, body) = broker.osb("DELETE", &format!("{uri}/service_bindings/{id}-b?{query}"), None);
    assert!(status == "200" || status == "410", "{status} {body}");
    let (status, body) = broker.osb("DELETE", &format!("{uri}?{query}"), None);
    assert!(status == "200" || status == "410", "{status} {body}");
}

#[test]
fn an_instance_made_behind_the_copys_back_is_never_reported_missing() {
    // A second process is the other replica: what the first makes, it reads at once (a miss reads the cluster).
    let (maker, reader) = (Broker::start(), Broker::start());
    for n in 0..5 {
        let id = format!("cache-miss-{n}-{:08x}", rand::random::<u32>());
        let uri = format!("/v2/service_instances/{id}");
        let (status, body) = maker.osb("PUT", &uri, Some(&provision_body(MICRO)));
        assert_eq!(status, "201", "{body}");
        let (status, fetched) = reader.json("GET", &uri, None);
        assert_eq!(
            status,
            "200",
            "the other replica fetched a fresh instance: {fetched} (log: {})",
            reader.log.display()
        );
        let (status, state) = reader.json("GET", &format!("{uri}/last_operation"), None);
        assert_eq!((status.as_str(), &state["state"]), ("200", &Value::from("succeeded")), "{state}");

        // An asynchronous delete on one replica, polled at once on the other: in progress or done, never failed.
        let query = format!("service_id={SERVICE}&plan_id={MICRO}&accepts_incomplete=true");
        let (status, body) = maker.osb("DELETE", &format!("{uri}?{query}"), None);
        assert_eq!(status, "202", "{body}");
        let (status, state) = reader.json("GET", &format!("{uri}/last_operation?operation=deprovision"), None);
        assert_eq!(status, "200", "{state}");
        assert!(state["state"] == "in progress" || state["state"] == "succeeded", "{state}");
        reader.wait_for("the deletion to finish", |b| {
            b.json("GET", &format!("{uri}/last_operation?operation=deprovision"), None).1["state"] == "succeeded"
        });
    }
}
