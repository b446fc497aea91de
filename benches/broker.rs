//! Benchmarks against the local real control plane, each beside a baseline measured in the same run:
//!
//! - virtual-cluster provision latency (request → every object in place and the cluster done with it) against
//!   `kubectl apply --server-side` of the same objects and against the floor, the same writes by a minimal client;
//! - bind latency (request → usable kubeconfig) against kubectl and a minimal client;
//! - throughput: virtual clusters provisioned and deprovisioned at concurrency 1, 8 and 32, the provisions against
//!   the same writes made by a minimal client at the same concurrency;
//! - HTTP: `GET /v2/catalog`, `last_operation` and `GET` instance requests per second and p99 at 64 connections
//!   (wrk), the catalog also from brokerapi v13 serving the same services and from a bare static server of the same
//!   bytes (the floor), both in `benches/peers`; the instance reads against their floor, 64 direct apiserver GETs of
//!   the instance's namespace at once;
//! - memory: the broker's resident set idle, and with many instances in its copy of the records while serving;
//! - scale: many virtual clusters provisioned through the broker binary on one control plane at a fixed concurrency,
//!   against the floor at the same concurrency, with the broker's resident set and `last_operation` latency sampled
//!   throughout, and what the apiserver, etcd and the controller manager spent (CPU, memory) meanwhile.
//!
//! Run with `cargo bench --bench broker` (sizes from BENCH_LATENCY_N, BENCH_THROUGHPUT_N, BENCH_MEMORY_N,
//! BENCH_SCALE_N; BENCH_ONLY=scale runs the scale section alone). It prints a Markdown report; docs/benchmarks.md
//! keeps the latest one.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use caas_broker::catalog::{Catalog, PodSecurityLevel};
use caas_broker::k8s::virtual_cluster::VirtualCluster;
use caas_broker::k8s::{apply, names};
use futures::StreamExt;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{ConfigMap, LimitRange, Namespace, ResourceQuota, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::wait::await_condition;
use kube::{Api, Client};
use serde_json::json;
use support::broker::*;
use support::cluster::cluster;
use support::process::start_broker;

/// Labels what the memory section makes, to delete it in one request.
const BENCH_LABEL: &str = "caas-broker.io/bench-run";

fn size(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn summary(mut samples: Vec<Duration>) -> String {
    samples.sort();
    format!(
        "{:>8.1} ms | {:>8.1} ms",
        percentile(&samples, 0.5).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3
    )
}

/// The same objects the broker makes for a small virtual cluster.
fn objects(namespace: &str) -> VirtualCluster {
    let catalog = Catalog::built_in();
    let plan = catalog.services[0].plans.iter().find(|p| p.name == "small").expect("small plan").clone();
    VirtualCluster {
        namespace: namespace.to_owned(),
        labels: BTreeMap::from([(names::LABEL_MANAGED_BY.to_owned(), "bench".to_owned())]),
        annotations: BTreeMap::new(),
        quota: plan.broker.quota.clone(),
        limits: plan.broker.limits.clone().unwrap_or_default(),
        pod_security: PodSecurityLevel::Baseline,
        allow_ingress_from_namespaces: Vec::new(),
        owner: "owner".to_owned(),
        // The same writes as the broker's, kept in one namespace so the baselines need nothing set up beforehand.
        identity_namespace: namespace.to_owned(),
        ingress_domain: None,
    }
}

async fn minimal_client_provision(client: &Client, cluster: &VirtualCluster) {
    let ns = &cluster.namespace;
    apply(&Api::<Namespace>::all(client.clone()), &cluster.namespace()).await.expect("namespace");
    apply(&Api::<ResourceQuota>::namespaced(client.clone(), ns), &cluster.resource_quota()).await.expect("quota");
    apply(&Api::<LimitRange>::namespaced(client.clone(), ns), &cluster.limit_range()).await.expect("limits");
    apply(&Api::<NetworkPolicy>::namespaced(client.clone(), ns), &cluster.network_policy()).await.expect("policy");
    apply(&Api::<ServiceAccount>::namespaced(client.clone(), ns), &cluster.owner_service_account(None))
        .await
        .expect("sa");
    apply(&Api::<RoleBinding>::namespaced(client.clone(), ns), &cluster.owner_role_binding()).await.expect("rb");
}

/// [`minimal_client_provision`], then what the broker waits for before it answers that a virtual cluster is usable:
/// the quota computed by its controller and the default ServiceAccount made by its controller (pods are refused until
/// both), each watched.
async fn minimal_client_usable(client: &Client, cluster: &VirtualCluster) {
    minimal_client_provision(client, cluster).await;
    let ns = &cluster.namespace;
    let computed = |quota: Option<&ResourceQuota>| {
        quota.and_then(|q| q.status.as_ref()?.hard.as_ref()).is_some_and(|hard| !hard.is_empty())
    };
    let quota = await_condition(Api::<ResourceQuota>::namespaced(client.clone(), ns), names::QUOTA_NAME, computed);
    let made = |account: Option<&ServiceAccount>| account.is_some();
    let account = await_condition(Api::<ServiceAccount>::namespaced(client.clone(), ns), "default", made);
    let (quota, account) = tokio::join!(quota, account);
    quota.expect("the quota computed");
    account.expect("the default ServiceAccount");
}

fn kubectl_apply(cluster: &VirtualCluster) {
    let docs = [
        serde_json::to_value(cluster.namespace()),
        serde_json::to_value(cluster.resource_quota()),
        serde_json::to_value(cluster.limit_range()),
        serde_json::to_value(cluster.network_policy()),
        serde_json::to_value(cluster.owner_service_account(None)),
        serde_json::to_value(cluster.owner_role_binding()),
    ];
    let yaml: Vec<String> =
        docs.into_iter().map(|d| serde_norway::to_string(&d.expect("json")).expect("yaml")).collect();
    let c = support::cluster::cluster();
    let mut child = Command::new(&c.kubectl)
        .args(["--kubeconfig", c.kubeconfig.to_str().expect("path"), "apply", "--server-side", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("kubectl");
    child.stdin.take().expect("stdin").write_all(yaml.join("---\n").as_bytes()).expect("write");
    assert!(child.wait().expect("kubectl").success());
}

async fn delete_namespaces(client: &Client, prefix: &str) {
    let namespaces = Api::<Namespace>::all(client.clone());
    for ns in namespaces.list(&ListParams::default()).await.expect("list").items {
        let name = ns.metadata.name.unwrap_or_default();
        if name.starts_with(prefix) {
            let _ = namespaces.delete(&name, &DeleteParams::background()).await;
        }
    }
}

/// Waits (up to 5 minutes) until the namespace controller has removed every namespace named `prefix`…
async fn wait_until_no_namespace(client: &Client, prefix: &str) {
    let namespaces = Api::<Namespace>::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let listed = namespaces.list_metadata(&ListParams::default()).await.expect("list namespaces");
        let left = listed.items.iter().filter(|ns| ns.metadata.name.as_deref().unwrap_or_default().starts_with(prefix));
        let left = left.count();
        if left == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{left} namespaces {prefix}… still there after 5 minutes");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// One wrk run: requests per second (0 when wrk says nothing) and the table cell.
fn wrk(url: &str, auth: &str) -> (f64, String) {
    let out = Command::new("wrk")
        .args([
            "-t2",
            "-c64",
            "-d10s",
            "--latency",
            "-H",
            &format!("Authorization: Basic {auth}"),
            "-H",
            "X-Broker-API-Version: 2.17",
            url,
        ])
        .output();
    let Ok(out) = out else { return (0.0, "wrk is not installed (apt-get install wrk)".to_owned()) };
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let rps = text.lines().find_map(|l| l.strip_prefix("Requests/sec:")).unwrap_or("?").trim().to_owned();
    let p99 = text.lines().find_map(|l| l.trim().strip_prefix("99%")).unwrap_or("?").trim().to_owned();
    let non_2xx =
        text.lines().find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:")).unwrap_or("0").trim().to_owned();
    (rps.parse().unwrap_or(0.0), format!("{rps} req/s, p99 {p99}, non-2xx {non_2xx}"))
}

/// One OSB GET to the broker process, as a platform sends it; its body.
fn osb_get(port: u16, path: &str) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-sf", "-u", "broker:broker-dev-password", "-H", "X-Broker-API-Version: 2.17"])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .expect("curl");
    assert!(out.status.success(), "GET {path} failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// The floor of an instance read: `connections` tasks of this process reading namespace `name` straight from the
/// apiserver for `duration`, with no HTTP server and no broker in between; requests per second and p99.
async fn direct_namespace_gets(client: &Client, name: &str, connections: usize, duration: Duration) -> (f64, String) {
    let api: Api<Namespace> = Api::all(client.clone());
    let deadline = Instant::now() + duration;
    let readers: Vec<_> = (0..connections)
        .map(|_| {
            let (api, name) = (api.clone(), name.to_owned());
            tokio::spawn(async move {
                let mut samples = Vec::new();
                while Instant::now() < deadline {
                    let started = Instant::now();
                    api.get(&name).await.expect("GET the namespace");
                    samples.push(started.elapsed());
                }
                samples
            })
        })
        .collect();
    let mut samples = Vec::new();
    for reader in readers {
        samples.extend(reader.await.expect("a reader"));
    }
    samples.sort();
    let rate = samples.len() as f64 / duration.as_secs_f64();
    (rate, format!("{rate:.2} req/s, p99 {:.2}ms", percentile(&samples, 0.99).as_secs_f64() * 1e3))
}

/// A baseline server of `benches/peers` serving `catalog` (`brokerapi`: the Go library most Cloud Foundry brokers
/// use; `static`: a bare net/http handler writing the same bytes), built with Go on first use; its process and
/// address. Its log goes to a file beside the catalog.
fn peer(mode: &str, catalog: &std::path::Path) -> (std::process::Child, String) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let binary = dir.join("peers");
    let module = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers");
    let built = Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(&module)
        .output()
        .expect("run go build (Go builds the benchmark's peers)");
    assert!(
        built.status.success(),
        "go build in {} failed: {}",
        module.display(),
        String::from_utf8_lossy(&built.stderr)
    );
    let log = dir.join(format!("peer-{mode}.log"));
    let mut child = Command::new(&binary)
        .args(["-mode", mode, "-listen", "127.0.0.1:0", "-catalog"])
        .arg(catalog)
        .env("PEERS_USERNAME", "broker")
        .env("PEERS_PASSWORD", "broker-dev-password")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("peer log"))
        .spawn()
        .expect("start the peer");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).expect("read the peer's address");
    let address = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("the {mode} peer did not start ({line:?}); its log is {}", log.display()));
    (child, address.to_owned())
}

#[tokio::main]
async fn main() {
    // BENCH_LOG=caas_broker=debug says where each provision's time goes (on stderr).
    if let Ok(filter) = std::env::var("BENCH_LOG") {
        let filter = tracing_subscriber::EnvFilter::new(filter);
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    }
    let latency_n = size("BENCH_LATENCY_N", 200);
    let throughput_n = size("BENCH_THROUGHPUT_N", 1000);
    let memory_n = size("BENCH_MEMORY_N", 10_000);
    let scale_n = size("BENCH_SCALE_N", 200);
    let only_scale = std::env::var("BENCH_ONLY").is_ok_and(|only| only == "scale");
    let admin = cluster().admin().await;
    let run = format!("{:04x}", rand::random::<u16>());
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpu
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']))
        .unwrap_or("?");
    println!("# caas-broker benchmarks\n");
    println!(
        "Machine: {} cores ({model}); Kubernetes {} on loopback (tests/cluster), release build.\n",
        num_cpus(),
        admin.apiserver_version().await.map(|v| v.git_version).unwrap_or_default()
    );
    if only_scale {
        scale(&admin, &run, scale_n).await;
        return;
    }

    // Provision latency.
    let broker = TestBroker::start(|_| {}).await;
    // One of each path in turn, so that every path meets the cluster's controllers as busy as the others do.
    let mut by_broker = Vec::new();
    let mut by_kubectl = Vec::new();
    let mut by_client = Vec::new();
    let mut usable_by_client = Vec::new();
    for i in 0..latency_n {
        let started = Instant::now();
        provision_now(&broker, &format!("lat-{i}"), SMALL).await;
        by_broker.push(started.elapsed());
        let cluster = objects(&format!("bk{run}-{i}"));
        let started = Instant::now();
        tokio::task::block_in_place(|| kubectl_apply(&cluster));
        by_kubectl.push(started.elapsed());
        let cluster = objects(&format!("bc{run}-{i}"));
        let started = Instant::now();
        minimal_client_provision(&admin, &cluster).await;
        by_client.push(started.elapsed());
        let cluster = objects(&format!("bu{run}-{i}"));
        let started = Instant::now();
        minimal_client_usable(&admin, &cluster).await;
        usable_by_client.push(started.elapsed());
    }
    println!("## Virtual-cluster provision latency ({latency_n} instances, sequential)\n");
    println!("| path | median | p99 |\n|---|---|---|");
    println!(
        "| caas-broker PUT (sync: objects applied and the quota and ServiceAccount controllers done) | {} |",
        summary(by_broker)
    );
    println!("| kubectl apply --server-side of the same 6 objects | {} |", summary(by_kubectl));
    println!("| minimal client: the same 6 server-side applies (the floor) | {} |", summary(by_client));
    println!(
        "| minimal client: the same 6 applies, then watching until the quota and ServiceAccount controllers are done | \
         {} |\n",
        summary(usable_by_client)
    );

    // Bind latency.
    let mut bind_broker = Vec::new();
    let mut bind_client = Vec::new();
    let mut bind_kubectl = Vec::new();
    let ns = broker.namespace("lat-0");
    for i in 0..latency_n {
        let started = Instant::now();
        let answer = broker.bind("lat-0", &format!("bench-{run}-{i}"), SMALL, json!({})).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
        bind_broker.push(started.elapsed());
        let objects = caas_broker::k8s::binding::BindingObjects {
            binding_id: format!("min-{i}"),
            instance_id: "lat-0".to_owned(),
            namespace: ns.clone(),
            broker_namespace: "caas-broker-system".to_owned(),
            identity_namespace: ns.clone(),
        };
        let started = Instant::now();
        let accounts = Api::<ServiceAccount>::namespaced(admin.clone(), &ns);
        apply(&accounts, &objects.service_account(None)).await.expect("sa");
        apply(&Api::<RoleBinding>::namespaced(admin.clone(), &ns), &objects.role_binding("edit")).await.expect("rb");
        let request: TokenRequest =
            serde_json::from_value(json!({ "spec": { "expirationSeconds": 3600 } })).expect("tr");
        accounts.create_token_request(&objects.account_name(), &PostParams::default(), &request).await.expect("token");
        bind_client.push(started.elapsed());
        let c = cluster();
        let started = Instant::now();
        let name = format!("kc-{i}");
        tokio::task::block_in_place(|| {
            for args in [
                vec!["create", "serviceaccount", &name, "-n", &ns],
                vec!["create", "rolebinding", &name, "--clusterrole=edit", "-n", &ns],
                vec!["create", "token", &name, "-n", &ns, "--duration=1h"],
            ] {
                let sa = format!("--serviceaccount={ns}:{name}");
                let mut args = args;
                if args[1] == "rolebinding" {
                    args.push(&sa);
                }
                let (ok, _, err) = c.kubectl(&c.kubeconfig, &args);
                assert!(ok, "{err}");
            }
        });
        bind_kubectl.push(started.elapsed());
    }
    println!("## Bind latency ({latency_n} bindings, sequential)\n");
    println!("| path | median | p99 |\n|---|---|---|");
    println!(
        "| caas-broker PUT binding (ServiceAccount, RoleBinding, TokenRequest, record, kubeconfig) | {} |",
        summary(bind_broker)
    );
    println!("| kubectl create serviceaccount + rolebinding + token | {} |", summary(bind_kubectl));
    println!("| minimal client: the same 2 applies and the TokenRequest | {} |\n", summary(bind_client));
    delete_namespaces(&admin, &format!("bk{run}-")).await;
    delete_namespaces(&admin, &format!("bc{run}-")).await;
    delete_namespaces(&admin, &format!("bu{run}-")).await;
    // Gone before the throughput, whose synchronous deprovisions wait for the same namespace controller.
    wait_until_no_namespace(&admin, &format!("bk{run}-")).await;
    wait_until_no_namespace(&admin, &format!("bc{run}-")).await;
    wait_until_no_namespace(&admin, &format!("bu{run}-")).await;

    // Throughput.
    println!("## Throughput ({throughput_n} virtual clusters provisioned, then deprovisioned)\n");
    println!(
        "| concurrency | provisions/s | floor: the same 6 applies per instance, as many at once | the same, then \
         watching until the quota and ServiceAccount controllers are done | deprovisions/s |\n|---|---|---|---|---|"
    );
    for concurrency in [1usize, 8, 32] {
        let ids: Vec<String> = (0..throughput_n).map(|i| format!("tp{concurrency}-{i}")).collect();
        let rate = |elapsed: Duration| throughput_n as f64 / elapsed.as_secs_f64();
        let started = Instant::now();
        in_chunks(&ids, concurrency, |id| provision_now(&broker, id, MICRO)).await;
        let provisions = rate(started.elapsed());
        let raw_ids: Vec<String> = (0..throughput_n).map(|i| format!("bt{run}-{concurrency}-{i}")).collect();
        let started = Instant::now();
        in_chunks(&raw_ids, concurrency, |ns| async { minimal_client_provision(&admin, &objects(ns)).await }).await;
        let raw = rate(started.elapsed());
        let usable_ids: Vec<String> = (0..throughput_n).map(|i| format!("bw{run}-{concurrency}-{i}")).collect();
        let started = Instant::now();
        in_chunks(&usable_ids, concurrency, |ns| async { minimal_client_usable(&admin, &objects(ns)).await }).await;
        let usable = rate(started.elapsed());
        let started = Instant::now();
        in_chunks(&ids, concurrency, |id| async {
            let answer = deprovision(&broker, id, MICRO, false).await;
            assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        })
        .await;
        println!(
            "| {concurrency} | {provisions:.1} | {raw:.1}: caas-broker {:.2}x | {usable:.1}: caas-broker {:.2}x | {:.1} |",
            provisions / raw.max(0.001),
            provisions / usable.max(0.001),
            rate(started.elapsed())
        );
        // The baseline's namespaces go before the next round, whose deprovisions wait for the namespace controller.
        delete_namespaces(&admin, &format!("bt{run}-{concurrency}-")).await;
        delete_namespaces(&admin, &format!("bw{run}-{concurrency}-")).await;
        wait_until_no_namespace(&admin, &format!("bt{run}-{concurrency}-")).await;
        wait_until_no_namespace(&admin, &format!("bw{run}-{concurrency}-")).await;
    }
    println!();

    // Memory at rest, on the real binary: the median of three starts, since what the allocator keeps after start-up
    // varies from one start to the next.
    let mut idle_starts: Vec<u64> = (0..3)
        .map(|_| {
            let (mut process, _) = tokio::task::block_in_place(|| start_broker(&broker.prefix, &[]));
            let idle = rss_kib(process.id());
            process.kill().ok();
            process.wait().ok();
            idle
        })
        .collect();
    idle_starts.sort_unstable();
    // HTTP and memory under load, on the real binary.
    let (mut process, port) = tokio::task::block_in_place(|| start_broker(&broker.prefix, &[]));
    let auth = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "broker:broker-dev-password");
    println!("## HTTP at 64 connections (wrk, 10 s, 2 threads; the load generator shares the 2 cores)\n");
    println!("| request | result |\n|---|---|");
    let (ours, catalog) = tokio::task::block_in_place(|| wrk(&format!("http://127.0.0.1:{port}/v2/catalog"), &auth));
    println!("| GET /v2/catalog | {catalog} |");
    // The same catalog from the peers, in the same run: brokerapi and the floor.
    let catalog_file = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("catalog.json");
    std::fs::write(&catalog_file, osb_get(port, "/v2/catalog")).expect("write the catalog");
    for (mode, what) in [
        ("brokerapi", "brokerapi v13.0.0 (Go) serving the same services, with its Basic auth and request log"),
        ("static", "floor: a bare Go net/http handler writing the same bytes"),
    ] {
        let (mut child, address) = peer(mode, &catalog_file);
        let (theirs, cell) = tokio::task::block_in_place(|| wrk(&format!("http://{address}/v2/catalog"), &auth));
        println!("| GET /v2/catalog, {what} | {cell}; caas-broker {:.2}x |", ours / theirs.max(1.0));
        child.kill().ok();
        child.wait().ok();
    }
    // One poll first, as a platform makes after the provision: this process checks a virtual cluster's quota and
    // ServiceAccount once, at its first poll, and 64 first polls at once would measure that stampede, not the poll.
    osb_get(port, "/v2/service_instances/lat-1/last_operation");
    let (_, last) = tokio::task::block_in_place(|| {
        wrk(&format!("http://127.0.0.1:{port}/v2/service_instances/lat-1/last_operation"), &auth)
    });
    println!("| GET last_operation of a ready virtual cluster (from the copy of the records) | {last} |");
    let (fetched, fetch) =
        tokio::task::block_in_place(|| wrk(&format!("http://127.0.0.1:{port}/v2/service_instances/lat-1"), &auth));
    println!("| GET /v2/service_instances/:id of a ready virtual cluster (from the copy) | {fetch} |");
    let lat_1 = names::namespace(&broker.prefix, "lat-1");
    let (floor_rate, floor) = direct_namespace_gets(&admin, &lat_1, 64, Duration::from_secs(10)).await;
    println!(
        "| floor of both: 64 GETs of its namespace at once, straight to the apiserver from this process | \
         {floor}; GET instance at {:.2}x |\n",
        fetched / floor_rate.max(1.0)
    );
    let after_load = rss_kib(process.id());

    // Memory while serving many instances. The copy of the broker's records keeps the same metadata of a namespace and
    // of a workload record, so each instance is made as a record in the broker's namespace carrying a real instance's
    // labels and annotations under its own id: 10 000 namespaces would keep the namespace controller busy for an hour
    // after the run, records go with one request.
    let started = Instant::now();
    let ids: Vec<String> = (0..memory_n).map(|i| format!("mem-{run}-{i}")).collect();
    let model = Api::<Namespace>::all(admin.clone()).get(&broker.namespace("lat-1")).await.expect("a real instance");
    let records = Api::<ConfigMap>::namespaced(admin.clone(), "caas-broker-system");
    in_chunks(&ids, 32, |id| {
        let records = records.clone();
        let mut labels = model.metadata.labels.clone().unwrap_or_default();
        labels.insert(names::LABEL_INSTANCE.to_owned(), id.to_owned());
        labels.insert(BENCH_LABEL.to_owned(), run.clone());
        let mut annotations = model.metadata.annotations.clone().unwrap_or_default();
        annotations.insert(names::ANNOTATION_INSTANCE_ID.to_owned(), id.to_owned());
        let record = ConfigMap {
            metadata: kube::api::ObjectMeta {
                name: Some(names::dns_label("instance-", id)),
                labels: Some(labels),
                annotations: Some(annotations),
                ..kube::api::ObjectMeta::default()
            },
            ..ConfigMap::default()
        };
        async move {
            records.create(&PostParams::default(), &record).await.expect("an instance's record");
        }
    })
    .await;
    let created_in = started.elapsed();
    let scraped = Command::new("curl")
        .args(["-s", "-u", "broker:broker-dev-password", &format!("http://127.0.0.1:{port}/metrics")])
        .output();
    let cached = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("caas_broker_cache_objects{kind=\"workload_records\"}"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut held = cached(&String::from_utf8_lossy(&scraped.expect("curl").stdout));
    while held < memory_n as f64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let scraped = Command::new("curl")
            .args(["-s", "-u", "broker:broker-dev-password", &format!("http://127.0.0.1:{port}/metrics")])
            .output();
        held = cached(&String::from_utf8_lossy(&scraped.expect("curl").stdout));
    }
    assert!(held >= memory_n as f64, "the broker's copy holds {held} records, not the {memory_n} made");
    let scrape = Command::new("curl")
        .args(["-s", "-u", "broker:broker-dev-password", &format!("http://127.0.0.1:{port}/metrics")])
        .output()
        .expect("curl");
    let instances = String::from_utf8_lossy(&scrape.stdout)
        .lines()
        .filter(|l| l.starts_with("caas_broker_instances{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>();
    let (_, serving) = tokio::task::block_in_place(|| {
        wrk(&format!("http://127.0.0.1:{port}/v2/service_instances/lat-1/last_operation"), &auth)
    });
    let loaded = rss_kib(process.id());
    println!("## Memory (resident set of the broker process)\n");
    println!("| state | RSS |\n|---|---|");
    let mib = |kib: u64| format!("{:.1} MiB", kib as f64 / 1024.0);
    let starts: Vec<String> = idle_starts.iter().map(|&kib| mib(kib)).collect();
    println!("| idle, after start-up (median of 3 starts: {}) | {} |", starts.join(", "), mib(idle_starts[1]));
    println!("| after the HTTP load above | {} |", mib(after_load));
    println!(
        "| {instances} instances counted, {held} workload records in its copy (made in {created_in:.1?}), under \
         last_operation load: {serving} | {} |",
        mib(loaded)
    );
    process.kill().ok();
    process.wait().ok();
    // Clean up asynchronously: the namespace controller removes the namespaces afterwards.
    let made_here = ListParams::default().labels(&format!("{BENCH_LABEL}={run}"));
    records.delete_collection(&DeleteParams::default(), &made_here).await.expect("delete the records");
    for i in 0..latency_n {
        deprovision(&broker, &format!("lat-{i}"), SMALL, true).await;
    }
    scale(&admin, &run, scale_n).await;
}

/// Concurrency of the scale section: as many provisions at once as the throughput section's highest.
const SCALE_CONCURRENCY: usize = 32;

/// The scale section: `n` virtual clusters provisioned (synchronous PUTs, answered 201 once usable) through the broker
/// binary, [`SCALE_CONCURRENCY`] at a time, with the floor (the same applies by a minimal client, as many at once)
/// measured on up to 500 namespaces before and after; meanwhile a poller asks `last_operation` of instances already
/// made, and a sampler reads the resident set of the broker and the CPU time and resident set of the apiserver, etcd
/// and the controller manager from /proc. Everything made is deleted at the end (the namespace controller finishes
/// the deletions after the run).
async fn scale(admin: &Client, run: &str, n: usize) {
    let concurrency = SCALE_CONCURRENCY;
    let floor_n = n.min(500);
    let prefix = format!("sc{run}-");
    let (mut process, port) = tokio::task::block_in_place(|| start_broker(&prefix, &[]));
    let broker_pid = process.id();
    let state = cluster().kubeconfig.parent().expect("the cluster's state folder").to_owned();
    let pid_of = |component: &str| {
        let file = state.join(format!("pids/{component}.pid"));
        std::fs::read_to_string(&file).ok().and_then(|pid| pid.trim().parse::<u32>().ok())
    };
    let components: Vec<(&str, Option<u32>)> =
        ["kube-apiserver", "etcd", "kube-controller-manager"].into_iter().map(|c| (c, pid_of(c))).collect();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}/v2/service_instances");
    let osb = |request: reqwest::RequestBuilder| {
        request.basic_auth("broker", Some("broker-dev-password")).header("X-Broker-API-Version", "2.17")
    };

    // The floors, on `floor_n` namespaces each: the writes alone, and the writes and the controllers' work.
    let floor = |label: &'static str| {
        let names: Vec<String> = (0..floor_n).map(|i| format!("bs{run}-{label}-{i}")).collect();
        async move {
            let started = Instant::now();
            futures::stream::iter(&names)
                .map(|ns| async move {
                    match label {
                        "a" | "b" => minimal_client_provision(admin, &objects(ns)).await,
                        _ => minimal_client_usable(admin, &objects(ns)).await,
                    }
                })
                .buffer_unordered(concurrency)
                .collect::<Vec<()>>()
                .await;
            floor_n as f64 / started.elapsed().as_secs_f64()
        }
    };
    let floor_before = floor("a").await;
    let usable_before = floor("c").await;

    let usage_before: Vec<(u64, u64)> = components.iter().map(|(_, pid)| usage(*pid)).collect();
    let made = std::sync::Mutex::new(Vec::<String>::new());
    let done = std::sync::atomic::AtomicBool::new(false);
    let started = Instant::now();
    let rss_start = rss_kib(broker_pid);
    // The provisions, a window of `concurrency` at a time.
    let provisions = async {
        let latencies: Vec<Duration> = futures::stream::iter(0..n)
            .map(|i| {
                let (id, http, made, base) = (format!("sc-{i}"), &http, &made, &base);
                async move {
                    let body = provision_body(MICRO, "bench", json!({}));
                    let begun = Instant::now();
                    let answer = osb(http.put(format!("{base}/{id}"))).json(&body).send().await.expect("PUT");
                    assert_eq!(answer.status(), reqwest::StatusCode::CREATED, "{:?}", answer.text().await);
                    let took = begun.elapsed();
                    made.lock().expect("made").push(id);
                    took
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        latencies
    };
    // The poller: one `last_operation` at a time, of an instance already made, every 5 ms; each sample with how far
    // the provisions had got.
    let poller = async {
        let mut samples: Vec<(usize, Duration)> = Vec::new();
        let mut k = 0usize;
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let (count, id) = {
                let made = made.lock().expect("made");
                k = k.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (made.len(), made.get((k >> 33) % made.len().max(1)).cloned())
            };
            let Some(id) = id else { continue };
            let begun = Instant::now();
            let answer = osb(http.get(format!("{base}/{id}/last_operation"))).send().await.expect("last_operation");
            assert_eq!(answer.status(), reqwest::StatusCode::OK, "{:?}", answer.text().await);
            answer.bytes().await.expect("body");
            samples.push((count, begun.elapsed()));
        }
        samples
    };
    // The sampler: the broker's resident set every second (and its peak), progress on stderr every 10 s.
    let sampler = async {
        let mut peak = 0;
        let mut tick = 0u64;
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let rss = rss_kib(broker_pid);
            peak = peak.max(rss);
            tick += 1;
            if tick.is_multiple_of(10) {
                let count = made.lock().expect("made").len();
                let rate = count as f64 / started.elapsed().as_secs_f64();
                eprintln!("scale: {count}/{n} made, {rate:.1}/s, broker RSS {:.1} MiB", rss as f64 / 1024.0);
            }
        }
        peak
    };
    let (latencies, polls, peak) = tokio::join!(provisions, poller, sampler);
    let elapsed = started.elapsed();
    let rate = n as f64 / elapsed.as_secs_f64();
    let usage_after: Vec<(u64, u64)> = components.iter().map(|(_, pid)| usage(*pid)).collect();
    let rss_end = rss_kib(broker_pid);
    let floor_after = floor("b").await;
    let usable_after = floor("d").await;

    let mib = |kib: u64| format!("{:.1} MiB", kib as f64 / 1024.0);
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
    let mut sorted: Vec<Duration> = latencies;
    sorted.sort();
    println!("## Scale ({n} virtual clusters on one control plane, {concurrency} provisions at once)\n");
    println!("| figure | value |\n|---|---|");
    println!(
        "| caas-broker binary: synchronous PUTs (201 once usable) | {rate:.1} provisions/s ({n} in {elapsed:.0?}); \
         latency p50 {}, p99 {} |",
        ms(percentile(&sorted, 0.5)),
        ms(percentile(&sorted, 0.99))
    );
    println!(
        "| floor: the same 6 applies per instance, {concurrency} at once, {floor_n} namespaces before / after | \
         {floor_before:.1} / {floor_after:.1} provisions/s: caas-broker {:.2}x / {:.2}x |",
        rate / floor_before.max(0.001),
        rate / floor_after.max(0.001)
    );
    println!(
        "| the same, then watching until the quota and ServiceAccount controllers are done, before / after | \
         {usable_before:.1} / {usable_after:.1} provisions/s: caas-broker {:.2}x / {:.2}x |",
        rate / usable_before.max(0.001),
        rate / usable_after.max(0.001)
    );
    let mut all: Vec<Duration> = polls.iter().map(|(_, d)| *d).collect();
    all.sort();
    let mut worst = Duration::ZERO;
    let mut worst_at = 0;
    for tenth in 0..10 {
        let (from, to) = (n * tenth / 10, n * (tenth + 1) / 10);
        let mut slice: Vec<Duration> = polls.iter().filter(|(c, _)| (from..to).contains(c)).map(|(_, d)| *d).collect();
        if slice.is_empty() {
            continue;
        }
        slice.sort();
        if percentile(&slice, 0.99) > worst {
            (worst, worst_at) = (percentile(&slice, 0.99), tenth);
        }
    }
    if !all.is_empty() {
        println!(
            "| GET last_operation of instances already made, one at a time every 5 ms while they are provisioned \
             ({} polls) | p50 {}, p99 {}; worst tenth of the run (instances {}..{}): p99 {} |",
            all.len(),
            ms(percentile(&all, 0.5)),
            ms(percentile(&all, 0.99)),
            n * worst_at / 10,
            n * (worst_at + 1) / 10,
            ms(worst)
        );
    }
    println!(
        "| broker resident set: at start / peak during / at the end | {} / {} / {} |",
        mib(rss_start),
        mib(peak),
        mib(rss_end)
    );
    for (((name, pid), before), after) in components.iter().zip(&usage_before).zip(&usage_after) {
        let cpu = (after.0 - before.0) as f64 / 100.0;
        println!(
            "| {name} (pid {}): CPU during the provisions, resident set before / after | {cpu:.0} s ({:.0}% of one \
             core); {} / {} |",
            pid.map(|p| p.to_string()).unwrap_or_else(|| "?".to_owned()),
            cpu / elapsed.as_secs_f64() * 100.0,
            mib(before.1),
            mib(after.1)
        );
    }
    process.kill().ok();
    process.wait().ok();
    // Clean up: the namespaces go with one request each (the identities in the identity namespace are owned by them);
    // the namespace controller empties and removes them after the run.
    let started = Instant::now();
    let namespaces = Api::<Namespace>::all(admin.clone());
    let names: Vec<String> = (0..n)
        .map(|i| names::namespace(&prefix, &format!("sc-{i}")))
        .chain((0..floor_n).flat_map(|i| ["a", "b", "c", "d"].map(|label| format!("bs{run}-{label}-{i}"))))
        .collect();
    futures::stream::iter(&names)
        .map(|name| {
            let namespaces = namespaces.clone();
            async move { namespaces.delete(name, &DeleteParams::background()).await.map(drop).ok() }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await;
    println!(
        "| clean-up: the {} namespaces made deleted (requests) | in {:.0?}; the namespace controller removes them after |\n",
        names.len(),
        started.elapsed()
    );
}

/// The CPU time (in clock ticks of 1/100 s: user and system) and the resident set (KiB) of process `pid`; zeros
/// when it cannot be read.
fn usage(pid: Option<u32>) -> (u64, u64) {
    let Some(pid) = pid else { return (0, 0) };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (ticks(11) + ticks(12), rss_kib(pid))
}

/// A synchronous provision, as this benchmark measures it: answered 201 once the virtual cluster is usable.
async fn provision_now(broker: &TestBroker, id: &str, plan: &str) {
    let body = provision_body(plan, "bench", json!({}));
    let answer = broker.call(Method::PUT, &format!("/v2/service_instances/{id}"), Some(body)).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
}

/// A deprovision, synchronous or (`accepts_incomplete`) answered as soon as the deletion has started.
async fn deprovision(broker: &TestBroker, id: &str, plan: &str, accepts_incomplete: bool) -> Answer {
    let uri =
        format!("/v2/service_instances/{id}?service_id={CAAS}&plan_id={plan}&accepts_incomplete={accepts_incomplete}");
    broker.call(Method::DELETE, &uri, None).await
}

/// Runs `task` for every id, `concurrency` at a time.
async fn in_chunks<'a, F, Fut>(ids: &'a [String], concurrency: usize, task: F)
where
    F: Fn(&'a str) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for chunk in ids.chunks(concurrency) {
        futures::future::join_all(chunk.iter().map(|id| task(id))).await;
    }
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}
