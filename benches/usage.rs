//! The cost of usage accounting: the broker binary's CPU time and resident set while it accounts many virtual clusters
//! (each a tenant namespace with a few running pods on kwok's simulated nodes), against the same binary, the same
//! instances and the same span of time with accounting off (`usage.enabled: false`), measured in the same run.
//!
//! Each namespace carries what the broker's copy of its records keeps of a virtual cluster (its labels and instance
//! annotation), without the quota and the rest a provision makes: accounting reads only the namespace, its pods and
//! claims and the metrics API. kwok's pods have no metrics (no kubelet): the metrics API is asked and answers nothing
//! for them, as it does on a cluster without metrics-server.
//!
//! Run with `cargo bench --bench usage` (BENCH_USAGE_N instances, default 1000; BENCH_USAGE_PODS pods each, default 2;
//! BENCH_USAGE_SECONDS of measurement per mode, default 180). It prints a Markdown report; docs/benchmarks.md keeps
//! the latest one.

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::Child;
use std::time::{Duration, Instant};

use caas_broker::k8s::names;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use support::cluster::cluster;

fn size(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A namespace as the broker's copy of its records sees a virtual cluster, in organization `organization`.
fn namespace(name: &str, instance: &str, organization: &str) -> Namespace {
    serde_json::from_value(json!({
        "metadata": {
            "name": name,
            "labels": { names::LABEL_MANAGED_BY: names::MANAGED_BY, names::LABEL_INSTANCE: instance,
                        names::LABEL_SERVICE: "caas", names::LABEL_PLAN: "small",
                        names::LABEL_ORGANIZATION: organization, names::LABEL_SPACE: "bench" },
            "annotations": { names::ANNOTATION_INSTANCE_ID: instance },
        }
    }))
    .expect("namespace")
}

/// A pod kwok runs (bound to one of its nodes: two nodes of 110 pods would not hold them through the scheduler).
fn pod(name: &str, node: usize) -> Pod {
    serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": {
            "nodeName": format!("kwok-node-{node}"),
            "containers": [{ "name": "c", "image": "example.invalid/app:1",
                             "resources": { "requests": { "cpu": "10m", "memory": "16Mi" } } }],
        }
    }))
    .expect("pod")
}

/// The broker binary accounting (or not) the namespaces named `prefix`…, sampling every 30 s and checkpointing every
/// 60 s.
fn start_broker(prefix: &str, accounting: bool) -> Child {
    let accounting = accounting.to_string();
    let env = [
        ("CAAS_BROKER__USAGE__ENABLED", accounting.as_str()),
        ("CAAS_BROKER__USAGE__SAMPLE_SECONDS", "30"),
        ("CAAS_BROKER__USAGE__CHECKPOINT_SECONDS", "60"),
    ];
    support::process::start_broker(prefix, &env).0
}

/// CPU seconds (user and system) a process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis: state is the 3rd field, utime the 14th, stime the 15th.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(14) + ticks(15)) / 100.0
}

/// One mode's figures: CPU seconds per minute and the resident set at the end (peak of the samples taken).
struct Figures {
    cpu_per_minute: f64,
    rss_end: f64,
    rss_peak: f64,
}

/// Runs the broker for `seconds` after a start-up minute (its copy of the records listed), sampling its memory.
async fn measure(prefix: &str, accounting: bool, seconds: u64) -> Figures {
    let mut process = tokio::task::block_in_place(|| start_broker(prefix, accounting));
    let pid = process.id();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let (cpu_start, started) = (cpu_seconds(pid), Instant::now());
    let mut rss_peak: f64 = 0.0;
    while started.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_secs(5)).await;
        rss_peak = rss_peak.max(support::process::rss_mib(&pid.to_string()));
    }
    let cpu = cpu_seconds(pid) - cpu_start;
    let figures = Figures {
        cpu_per_minute: cpu * 60.0 / started.elapsed().as_secs_f64(),
        rss_end: support::process::rss_mib(&pid.to_string()),
        rss_peak,
    };
    process.kill().ok();
    process.wait().ok();
    figures
}

async fn make_instances(admin: &Client, prefix: &str, organization: &str, n: usize, pods_each: usize) {
    futures::stream::iter(0..n)
        .map(|i| async move {
            let instance = format!("{prefix}vc-{i}");
            let name = names::namespace(prefix, &format!("vc-{i}"));
            Api::<Namespace>::all(admin.clone())
                .create(&PostParams::default(), &namespace(&name, &instance, organization))
                .await
                .expect("create a namespace");
            let pods = Api::<Pod>::namespaced(admin.clone(), &name);
            for p in 0..pods_each {
                pods.create(&PostParams::default(), &pod(&format!("p{p}"), 1 + (i + p) % 2))
                    .await
                    .expect("create a pod");
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
}

async fn clean_up(admin: &Client, prefix: &str, organization: &str) {
    let namespaces = Api::<Namespace>::all(admin.clone());
    let listed = namespaces.list_metadata(&ListParams::default()).await.expect("list namespaces");
    for name in listed.items.into_iter().filter_map(|ns| ns.metadata.name).filter(|n| n.starts_with(prefix)) {
        let _ = namespaces.delete(&name, &DeleteParams::background()).await;
    }
    let records = Api::<ConfigMap>::namespaced(admin.clone(), "caas-broker-system");
    let selector =
        format!("{}=caas-broker-usage,{}={organization}", names::LABEL_MANAGED_BY, names::LABEL_ORGANIZATION);
    let _ = records.delete_collection(&DeleteParams::background(), &ListParams::default().labels(&selector)).await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = size("BENCH_USAGE_N", 1000);
    let pods_each = size("BENCH_USAGE_PODS", 2);
    let seconds = size("BENCH_USAGE_SECONDS", 180) as u64;
    let run = format!("{:05x}", rand::random::<u32>() & 0xfffff);
    let prefix = format!("bu{run}-");
    let organization = format!("bench-{run}");
    let admin = cluster().admin().await;

    let started = Instant::now();
    make_instances(&admin, &prefix, &organization, n, pods_each).await;
    let made = started.elapsed();
    // The same instances and the same span, accounting off first and then on.
    let off = measure(&prefix, false, seconds).await;
    let on = measure(&prefix, true, seconds).await;
    let selector =
        format!("{}=caas-broker-usage,{}={organization}", names::LABEL_MANAGED_BY, names::LABEL_ORGANIZATION);
    let records = Api::<ConfigMap>::namespaced(admin.clone(), "caas-broker-system")
        .list_metadata(&ListParams::default().labels(&selector))
        .await
        .map_or(0, |list| list.items.len());
    clean_up(&admin, &prefix, &organization).await;

    println!("## Usage accounting ({n} virtual clusters, {pods_each} running pods each on kwok's nodes)\n");
    println!(
        "{n} namespaces and {} pods made in {:.0} s. Each mode ran {seconds} s after a 30 s start; sampling every 30 s, \
         checkpoints every 60 s; {records} usage records written.\n",
        n * pods_each,
        made.as_secs_f64()
    );
    println!("| broker | CPU (s per minute) | resident set at the end | peak |\n|---|---|---|---|");
    for (what, figures) in [("accounting off (`usage.enabled: false`)", &off), ("accounting on", &on)] {
        println!(
            "| {what} | {:.2} | {:.1} MiB | {:.1} MiB |",
            figures.cpu_per_minute, figures.rss_end, figures.rss_peak
        );
    }
    println!(
        "\nAccounting costs {:.2} CPU-seconds per minute ({:.1} % of a core) and {:.1} MiB for {n} instances.",
        on.cpu_per_minute - off.cpu_per_minute,
        (on.cpu_per_minute - off.cpu_per_minute) / 60.0 * 100.0,
        on.rss_end - off.rss_end
    );
}
