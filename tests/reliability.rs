//! Reliability against the real control plane: an apiserver outage, concurrent requests on one id, many instances at
//! once, malformed input of every kind, and a broker killed (SIGKILL) at random points of provisions and binds. Each
//! test prints the cases it tried, the failures and the objects lost, and fails unless the last two are 0.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use kube::Api;
use kube::api::ListParams;
use serde_json::{Value, json};
use support::broker::*;
use support::cluster::{cluster, eventually};
use support::proxy::Proxy;

fn report(name: &str, cases: usize, failures: usize, lost: usize) {
    println!("reliability {name}: cases tried {cases}, failures {failures}, objects lost {lost}");
}

fn instance_id(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::random::<u32>())
}

/// A broker that reaches the apiserver through a proxy the test can cut, with short timeouts (and its watches
/// reopened within them).
async fn broker_behind_proxy() -> (Proxy, TestBroker) {
    let admin = cluster().admin_config().await;
    let target =
        format!("{}:{}", admin.cluster_url.host().unwrap_or("127.0.0.1"), admin.cluster_url.port_u16().unwrap_or(443));
    let proxy = Proxy::start(target.parse().expect("apiserver address")).await;
    let mut config = admin.clone();
    config.cluster_url = format!("https://127.0.0.1:{}", proxy.address.port()).parse().expect("url");
    config.connect_timeout = Some(Duration::from_secs(2));
    config.read_timeout = Some(Duration::from_secs(10));
    let broker = TestBroker::start_with_config(config, caas_broker::catalog::Catalog::built_in(), |settings| {
        settings.kubernetes.request_timeout_seconds = 10;
    });
    (proxy, broker)
}

#[tokio::test]
async fn an_apiserver_outage_gets_quick_osb_errors_and_retries_converge() {
    let (proxy, broker) = broker_behind_proxy().await;
    let id = instance_id("outage");
    let uri = format!("/v2/service_instances/{id}");
    let body = provision_body(SMALL, "org-outage", json!({}));

    proxy.cut();
    let mut cases = 0;
    let mut failures = Vec::new();
    let requests = [
        (Method::PUT, uri.clone(), Some(body.clone())),
        (Method::GET, format!("{uri}/last_operation?operation=provision"), None),
        (Method::GET, uri.clone(), None),
        (Method::DELETE, format!("{uri}?service_id={CAAS}&plan_id={SMALL}"), None),
        (Method::PUT, format!("{uri}/service_bindings/b1"), Some(json!({ "service_id": CAAS, "plan_id": SMALL }))),
    ];
    for (method, path, body) in requests {
        cases += 1;
        let started = Instant::now();
        let answer = broker.call(method.clone(), &path, body).await;
        let quick = started.elapsed() < Duration::from_secs(10);
        let osb_error =
            answer.status == StatusCode::SERVICE_UNAVAILABLE && answer.body["error"] == "ServiceUnavailable";
        if !(quick && osb_error) {
            failures.push(format!("{method} {path}: {answer:?} after {:?}", started.elapsed()));
        }
    }
    let ready = broker.raw(axum::http::Request::get("/readyz").body(axum::body::Body::empty()).expect("req")).await;
    cases += 1;
    if ready.status != StatusCode::SERVICE_UNAVAILABLE {
        failures.push(format!("/readyz during the outage: {}", ready.status));
    }

    proxy.restore();
    let retried = broker.call(Method::PUT, &uri, Some(body.clone())).await;
    cases += 1;
    if retried.status != StatusCode::CREATED {
        failures.push(format!("retry after the outage: {retried:?}"));
    }
    let state = broker.call(Method::GET, &format!("{uri}/last_operation"), None).await;
    let lost = usize::from(state.body["state"] != "succeeded");
    report("apiserver outage", cases, failures.len(), lost);
    assert!(failures.is_empty() && lost == 0, "{failures:#?} {state:?}");
    broker.deprovision(&id, SMALL).await;
}

#[tokio::test]
async fn the_copy_of_the_records_serves_nothing_stale_across_an_outage() {
    let (proxy, broker) = broker_behind_proxy().await;
    let synced = r#"caas_broker_cache_synced{kind="namespaces"}"#;
    let (kept, deleted) = (instance_id("cached-kept"), instance_id("cached-deleted"));
    for id in [&kept, &deleted] {
        broker.provision(id, SMALL, json!({})).await;
        broker.wait_for_state(id, "provision", "succeeded").await;
    }
    eventually(Duration::from_secs(20), "the copy to sync", || async {
        (broker.metric(synced).await == Some(1.0)).then_some(())
    })
    .await;
    let restarts_before = broker.metric(r#"caas_broker_cache_watch_restarts_total{kind="namespaces"}"#).await;

    // The broker loses the apiserver; meanwhile one instance is deleted by someone else.
    proxy.cut();
    let admin_client = cluster().admin().await;
    let deleted_namespace = broker.namespace(&deleted);
    Api::<Namespace>::all(admin_client.clone()).delete(&deleted_namespace, &Default::default()).await.expect("delete");
    eventually(Duration::from_secs(20), "the copy to stop answering", || async {
        (broker.metric(synced).await == Some(0.0)).then_some(())
    })
    .await;
    let mut failures = Vec::new();
    let mut cases = 0;
    for id in [&kept, &deleted] {
        for path in [format!("/v2/service_instances/{id}/last_operation"), format!("/v2/service_instances/{id}")] {
            cases += 1;
            let answer = broker.call(Method::GET, &path, None).await;
            if answer.status != StatusCode::SERVICE_UNAVAILABLE {
                failures
                    .push(format!("GET {path} during the outage, from a copy that cannot vouch for it: {answer:?}"));
            }
        }
    }

    // Back: the watches list again, and the answers show what changed while they were away.
    proxy.restore();
    eventually(Duration::from_secs(30), "the copy to sync again", || async {
        (broker.metric(synced).await == Some(1.0)).then_some(())
    })
    .await;
    let restarts = broker.metric(r#"caas_broker_cache_watch_restarts_total{kind="namespaces"}"#).await;
    cases += 1;
    if restarts.unwrap_or_default() <= restarts_before.unwrap_or_default() {
        failures.push(format!("watch restarts in /metrics: {restarts_before:?} before, {restarts:?} after"));
    }
    let gone = broker.call(Method::GET, &format!("/v2/service_instances/{deleted}"), None).await;
    let polled = broker.call(Method::GET, &format!("/v2/service_instances/{kept}/last_operation"), None).await;
    cases += 2;
    if gone.status != StatusCode::NOT_FOUND {
        failures.push(format!("the instance deleted during the outage is fetched after it: {gone:?}"));
    }
    if polled.body["state"] != "succeeded" {
        failures.push(format!("the kept instance after the outage: {polled:?}"));
    }
    report("the copy of the records across an outage", cases, failures.len(), 0);
    assert!(failures.is_empty(), "{failures:#?}");
    broker.deprovision(&kept, SMALL).await;
}

#[tokio::test]
async fn fifty_parallel_requests_on_one_id_make_one_object() {
    let broker = TestBroker::start(|_| {}).await;
    let id = instance_id("same");
    let uri = format!("/v2/service_instances/{id}");
    let body = provision_body(SMALL, "org-same", json!({}));
    let answers = futures::future::join_all((0..50).map(|_| broker.call(Method::PUT, &uri, Some(body.clone())))).await;
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for answer in &answers {
        *statuses.entry(answer.status.as_u16()).or_default() += 1;
    }
    let namespaces = Api::<Namespace>::all(broker.client.clone())
        .list(&ListParams::default().labels(&format!("caas-broker.io/instance={id}")))
        .await
        .expect("list");
    let provision_ok = statuses.get(&201) == Some(&1) && statuses.get(&200) == Some(&49) && namespaces.items.len() == 1;

    let binding = format!("{id}-b");
    let binds = futures::future::join_all((0..50).map(|_| broker.bind(&id, &binding, SMALL, json!({})))).await;
    let created = binds.iter().filter(|a| a.status == StatusCode::CREATED).count();
    let repeated = binds.iter().filter(|a| a.status == StatusCode::OK).count();
    let fetched = broker.call(Method::GET, &format!("{uri}/service_bindings/{binding}"), None).await;
    let token = &fetched.body["credentials"]["token"];
    let same = binds.iter().filter(|a| a.status == StatusCode::OK).all(|a| &a.body["credentials"]["token"] == token);
    let identities = &broker.settings.kubernetes.identity_namespace;
    let accounts = Api::<ServiceAccount>::namespaced(broker.client.clone(), identities)
        .list(&ListParams::default().labels(&format!("caas-broker.io/instance={id}")))
        .await
        .expect("accounts");
    let binding_accounts = accounts
        .items
        .iter()
        .filter(|a| a.metadata.name.as_deref().is_some_and(|n| n.starts_with("caas-binding-")))
        .count();
    let bind_ok = created == 1 && repeated == 49 && same && binding_accounts == 1;
    report("50 parallel on one id", 100, usize::from(!provision_ok) + usize::from(!bind_ok), 0);
    assert!(provision_ok, "provision statuses {statuses:?}, namespaces {}", namespaces.items.len());
    assert!(
        bind_ok,
        "binds: {created} created, {repeated} repeated, same credentials {same}, accounts {binding_accounts}"
    );
    broker.deprovision(&id, SMALL).await;
}

#[tokio::test]
async fn two_hundred_parallel_instances_all_succeed() {
    let broker = TestBroker::start(|_| {}).await;
    let ids: Vec<String> = (0..200).map(|i| format!("many-{i:03}-{:06x}", rand::random::<u32>() & 0xffffff)).collect();
    let started = Instant::now();
    let answers = futures::future::join_all(ids.iter().map(|id| {
        let body = provision_body(MICRO, "org-many", json!({}));
        let uri = format!("/v2/service_instances/{id}?accepts_incomplete=true");
        let broker = &broker;
        async move { broker.call(Method::PUT, &uri, Some(body)).await }
    }))
    .await;
    let failures: Vec<&Answer> =
        answers.iter().filter(|a| !(a.status == StatusCode::CREATED || a.status == StatusCode::ACCEPTED)).collect();
    for id in &ids {
        broker.wait_for_state(id, "provision", "succeeded").await;
    }
    let listed = Api::<Namespace>::all(broker.client.clone()).list(&ListParams::default()).await.expect("list");
    let present: BTreeSet<String> = listed.items.into_iter().filter_map(|n| n.metadata.name).collect();
    let lost = ids.iter().filter(|id| !present.contains(&broker.namespace(id))).count();
    println!("200 parallel provisions answered in {:?}", started.elapsed());
    report("200 parallel instances", ids.len(), failures.len(), lost);
    assert!(failures.is_empty() && lost == 0, "{failures:#?}");
    futures::future::join_all(ids.iter().map(|id| {
        let uri = format!("/v2/service_instances/{id}?service_id={CAAS}&plan_id={MICRO}");
        let broker = &broker;
        async move { broker.call(Method::DELETE, &uri, None).await }
    }))
    .await;
}

#[tokio::test]
async fn malformed_input_never_gets_a_5xx_and_changes_nothing() {
    let broker = TestBroker::start(|_| {}).await;
    let huge_parameters = json!({ "allow_ingress_from_namespaces": vec!["a"; 100_000] });
    let odd_ids = ["%00", "%F0%9F%92%A5", "..", "a%2Fb", "%20", &"x".repeat(2000), "%E4%BD%A0%E5%A5%BD", "%FF"];
    let mut cases: Vec<(String, Method, String, Option<String>)> = Vec::new();
    for id in odd_ids {
        let body = provision_body(MICRO, "org-bad", json!({ "pod_security": 7 })).to_string();
        cases.push((format!("odd id {id:.20}"), Method::PUT, format!("/v2/service_instances/{id}"), Some(body)));
        cases.push((format!("odd id get {id:.20}"), Method::GET, format!("/v2/service_instances/{id}"), None));
        cases.push((
            format!("odd id last_operation {id:.20}"),
            Method::GET,
            format!("/v2/service_instances/{id}/last_operation"),
            None,
        ));
        cases.push((
            format!("odd id delete {id:.20}"),
            Method::DELETE,
            format!("/v2/service_instances/{id}?service_id={CAAS}&plan_id={MICRO}"),
            None,
        ));
    }
    let bodies = [
        ("truncated", "{\"service_id\":".to_owned()),
        ("array", "[1,2,3]".to_owned()),
        ("number", "42".to_owned()),
        ("string", "\"text\"".to_owned()),
        ("null", "null".to_owned()),
        ("trailing garbage", format!("{} x", provision_body(MICRO, "o", json!({})))),
        ("nested deeply", format!("{}{}", "[".repeat(10_000), "]".repeat(10_000))),
        ("wrong types", json!({ "service_id": 1, "plan_id": [], "organization_guid": {}, "space_guid": true }).to_string()),
        ("parameters string", json!({ "service_id": CAAS, "plan_id": MICRO, "organization_guid": "o", "space_guid": "s", "parameters": "x" }).to_string()),
        ("huge parameters", provision_body(MICRO, "o", huge_parameters).to_string()),
        ("unicode everywhere", json!({ "service_id": "💥", "plan_id": "你好", "organization_guid": "\u{0}", "space_guid": "\u{202e}" }).to_string()),
        ("invalid utf-8", String::from_utf8_lossy(b"{\"service_id\":\"\xff\xfe\"}").into_owned()),
        ("oversize", format!("{{\"x\":\"{}\"}}", "a".repeat(3 << 20))),
        ("unknown maintenance", provision_body(MICRO, "o", json!({})).to_string().replace("2.0.0", "x.y")),
    ];
    let id = instance_id("bad");
    for (name, body) in bodies {
        cases.push((
            format!("provision body {name}"),
            Method::PUT,
            format!("/v2/service_instances/{id}"),
            Some(body.clone()),
        ));
        cases.push((
            format!("update body {name}"),
            Method::PATCH,
            format!("/v2/service_instances/{id}"),
            Some(body.clone()),
        ));
        cases.push((
            format!("bind body {name}"),
            Method::PUT,
            format!("/v2/service_instances/{id}/service_bindings/b"),
            Some(body),
        ));
    }
    for query in [
        "accepts_incomplete=maybe",
        "service_id=&plan_id=",
        "operation=%FF%FE",
        "accepts_incomplete=true&accepts_incomplete=false",
    ] {
        cases.push((format!("query {query}"), Method::DELETE, format!("/v2/service_instances/{id}?{query}"), None));
        cases.push((
            format!("last_operation {query}"),
            Method::GET,
            format!("/v2/service_instances/{id}/last_operation?{query}"),
            None,
        ));
    }
    let mut failures = Vec::new();
    for (name, method, uri, body) in &cases {
        let request = osb_request(method.clone(), uri, body.clone(), &[]);
        let answer = broker.raw(request).await;
        let osb_body = answer.body.get("error").is_some_and(Value::is_string) || answer.status.is_success();
        if answer.status.is_server_error() || !osb_body || answer.status.is_success() && method == Method::PUT {
            failures.push(format!("{name}: {} {}", answer.status, answer.body));
        }
    }
    let namespaces = Api::<Namespace>::all(broker.client.clone()).list(&ListParams::default()).await.expect("list");
    let left = namespaces
        .items
        .iter()
        .filter(|n| n.metadata.name.as_deref().is_some_and(|n| n.starts_with(&broker.prefix)))
        .count();
    report("malformed input", cases.len(), failures.len(), 0);
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(left, 0, "refused requests left namespaces behind");
}

/// The broker as a process that the test kills and restarts.
struct BrokerProcess {
    child: Option<Child>,
    port: u16,
    prefix: String,
    log: std::path::PathBuf,
}

impl BrokerProcess {
    fn start(port: u16, prefix: &str, log: &std::path::Path) -> BrokerProcess {
        let mut process = BrokerProcess { child: None, port, prefix: prefix.to_owned(), log: log.to_owned() };
        process.spawn();
        process
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_caas-broker"))
            .env("KUBECONFIG", &cluster().kubeconfig)
            .env("CAAS_BROKER__LISTEN", format!("127.0.0.1:{}", self.port))
            .env("CAAS_BROKER__DASHBOARD__LISTEN", "127.0.0.1:0")
            .env("CAAS_BROKER__KUBERNETES__NAMESPACE_PREFIX", &self.prefix)
            .env("CAAS_BROKER__AUTH__PASSWORD", "crash-test-password")
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start the broker");
        self.child = Some(child);
        let started = Instant::now();
        while curl(self.port, "GET", "/healthz", None).0 != 200 {
            assert!(started.elapsed() < Duration::from_secs(20), "the broker did not restart");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One OSB request with curl (status, body); status 0 when the broker died under it.
fn curl(port: u16, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let url = format!("http://127.0.0.1:{port}{path}");
    let mut command = Command::new("curl");
    command.args([
        "-sS",
        "--max-time",
        // Longer than the broker's synchronous timeout (30 s): a slow synchronous delete answers, it is not cut off.
        "45",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        "-X",
        method,
        "-u",
        "broker:crash-test-password",
    ]);
    command.args(["-H", "X-Broker-API-Version: 2.15", "-H", "Content-Type: application/json"]);
    if let Some(body) = body {
        command.args(["-d", body]);
    }
    let out = command.arg(&url).output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (status.trim().parse().unwrap_or(0), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_at_random_points_converges_under_the_platforms_retries() {
    let prefix = format!("k{:05x}-", rand::random::<u32>() & 0xfffff);
    let log = std::env::temp_dir().join(format!("crash-{prefix}log"));
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let mut broker = tokio::task::block_in_place(|| BrokerProcess::start(port, &prefix, &log));
    let client = cluster().admin().await;
    let operations = 100;
    let mut expected_instances = BTreeSet::new();
    let mut expected_bindings: BTreeMap<String, String> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut tokens = Vec::new();
    let mut current: Option<String> = None;

    for step in 0..operations {
        // Even steps provision a new instance, odd steps bind the previous one.
        let (method, path, body, instance) = if step % 2 == 0 {
            let id = format!("crash-{prefix}{step:03}");
            let body = provision_body(MICRO, "org-crash", json!({})).to_string();
            ("PUT", format!("/v2/service_instances/{id}"), body, id)
        } else {
            let Some(id) = current.clone() else {
                // The instance this bind was for was removed by orphan mitigation: nothing to bind.
                continue;
            };
            let body = json!({ "service_id": CAAS, "plan_id": MICRO }).to_string();
            ("PUT", format!("/v2/service_instances/{id}/service_bindings/{id}-b"), body, id)
        };
        let delay = Duration::from_millis(rand::random::<u64>() % 120);
        let request = {
            let (path, body) = (path.clone(), body.clone());
            std::thread::spawn(move || curl(port, method, &path, Some(&body)))
        };
        std::thread::sleep(delay);
        tokio::task::block_in_place(|| {
            broker.kill();
            broker.spawn();
        });
        let first = request.join().expect("request thread");
        // The platform: orphan mitigation (DELETE) for every fourth step, retries until success otherwise.
        let mitigate = step % 4 == 3 || step % 4 == 0 && first.0 == 0 && rand::random::<bool>();
        if mitigate {
            let query = format!("service_id={CAAS}&plan_id={MICRO}");
            let delete = format!("{path}?{query}");
            // A synchronous delete that cannot finish within the broker's timeout answers 422 and the deletion goes on;
            // the platform repeats it, as orphan mitigation does, until 200 or 410.
            let mut answer = tokio::task::block_in_place(|| curl(port, "DELETE", &delete, None));
            for _ in 0..5 {
                if answer.0 != 422 || !answer.1.contains("AsyncRequired") {
                    break;
                }
                answer = tokio::task::block_in_place(|| curl(port, "DELETE", &delete, None));
            }
            if answer.0 != 200 && answer.0 != 410 {
                failures.push(format!("step {step}: orphan mitigation answered {} {}", answer.0, answer.1));
            }
            if step % 2 == 0 {
                current = None;
            } else {
                expected_bindings.remove(&instance);
            }
            continue;
        }
        let mut answer = first;
        for _ in 0..20 {
            if matches!(answer.0, 200 | 201) {
                break;
            }
            answer = tokio::task::block_in_place(|| curl(port, method, &path, Some(&body)));
        }
        if !matches!(answer.0, 200 | 201) {
            failures.push(format!("step {step}: the retries did not converge: {} {}", answer.0, answer.1));
            continue;
        }
        if step % 2 == 0 {
            expected_instances.insert(instance.clone());
            current = Some(instance);
        } else if let Ok(body) = serde_json::from_str::<Value>(&answer.1) {
            tokens.push(body["credentials"]["token"].as_str().unwrap_or_default().to_owned());
            expected_bindings.insert(instance.clone(), format!("{instance}-b"));
        }
    }
    tokio::task::block_in_place(|| broker.kill());

    // Every instance and binding either complete or cleanly absent.
    let mut lost = 0;
    let namespaces = Api::<Namespace>::all(client.clone()).list(&ListParams::default()).await.expect("list");
    let mine: BTreeSet<String> = namespaces
        .items
        .iter()
        .filter(|n| n.metadata.deletion_timestamp.is_none())
        .filter_map(|n| n.metadata.name.clone())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    for instance in &expected_instances {
        let namespace = caas_broker::k8s::names::namespace(&prefix, instance);
        if !mine.contains(&namespace) {
            lost += 1;
            failures.push(format!("instance {instance} was acknowledged but its namespace is gone"));
        }
    }
    let orphans: Vec<&String> = mine
        .iter()
        .filter(|n| !expected_instances.iter().any(|i| caas_broker::k8s::names::namespace(&prefix, i) == **n))
        .collect();
    let records = Api::<Secret>::namespaced(client.clone(), "caas-broker-system")
        .list(&ListParams::default())
        .await
        .expect("records");
    let record_instances: BTreeSet<String> = records
        .items
        .iter()
        .filter_map(|r| r.metadata.annotations.as_ref()?.get("caas-broker.io/instance-id").cloned())
        .filter(|id| id.starts_with("crash-") && mine.iter().any(|n| n.ends_with(id.as_str())))
        .collect();
    for (instance, binding) in &expected_bindings {
        if !record_instances.contains(instance) {
            lost += 1;
            failures.push(format!("binding {binding} was acknowledged but its record is gone"));
        }
        let account = format!("caas-binding-{binding}");
        let identities = Api::<ServiceAccount>::namespaced(client.clone(), "caas-broker-identities");
        if identities.get_opt(&account).await.expect("sa").is_none() {
            lost += 1;
            failures.push(format!("binding {binding} has no ServiceAccount"));
        }
    }
    let orphan_records: Vec<&String> =
        record_instances.iter().filter(|i| !expected_bindings.contains_key(*i)).collect();
    // No token reached the log.
    let mut logs = String::new();
    std::fs::File::open(&log).and_then(|mut f| f.read_to_string(&mut logs)).expect("read log");
    let leaked = tokens.iter().filter(|t| !t.is_empty() && logs.contains(t.as_str())).count();

    report(
        "broker killed at random points",
        operations,
        failures.len() + orphans.len() + orphan_records.len() + leaked,
        lost,
    );
    // Clean up before asserting, so a failure leaves nothing behind either.
    for namespace in &mine {
        let _ = Api::<Namespace>::all(client.clone()).delete(namespace, &Default::default()).await;
    }
    for record in records.items.iter().filter(|r| {
        r.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("caas-broker.io/instance-id"))
            .is_some_and(|id| record_instances.contains(id))
    }) {
        let name = record.metadata.name.clone().unwrap_or_default();
        let _ =
            Api::<Secret>::namespaced(client.clone(), "caas-broker-system").delete(&name, &Default::default()).await;
    }
    std::fs::remove_file(&log).ok();
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(orphans.is_empty(), "orphaned namespaces: {orphans:?}");
    assert!(orphan_records.is_empty(), "orphaned binding records: {orphan_records:?}");
    assert_eq!(leaked, 0, "tokens in the broker's log");
    eventually(Duration::from_secs(90), "the crash test's namespaces to go", || async {
        let left = Api::<Namespace>::all(client.clone()).list(&ListParams::default()).await.ok()?;
        (!left.items.iter().any(|n| n.metadata.name.as_deref().is_some_and(|n| n.starts_with(&prefix)))).then_some(())
    })
    .await;
}
