//! The dashboard's measured use, on the real node (`tests/cluster/real-node.sh`) with the control plane's metrics
//! server: a StatefulSet of two pods, one burning a core in a busy loop and one asleep, is read by an `edit` binding
//! in headless Chromium. The burning pod reads about one core, the StatefulSet's row the sum of its pods, the quota
//! shows what is in use now beside what is reserved, and each pod's last hour is drawn from the broker's samples.
//! Fails, naming the command to run, when the real node or the metrics API is not there.

mod support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::{Value, json};
use support::broker::SMALL;
use support::browser::Probe;
use support::cluster::{cluster, eventually};
use support::dashboard::*;
use support::real_node::{NODE_LABEL, NODE_TAINT, NODE_TURN, assert_ready, image, kubectl};

/// The metrics API's aggregated APIService, which the control plane's metrics server serves.
const METRICS_API: &str = "v1beta1.metrics.k8s.io";

/// A StatefulSet `burn` of two pods on the real node: `burn-0` burns one core, `burn-1` sleeps.
fn burner() -> StatefulSet {
    let busy = r#"if [ "$(hostname)" = burn-0 ]; then while :; do :; done; fi; exec sleep 3600"#;
    serde_json::from_value(json!({
        "metadata": { "name": "burn" },
        "spec": {
            "serviceName": "burn", "replicas": 2, "podManagementPolicy": "Parallel",
            "selector": { "matchLabels": { "app": "burn" } },
            "template": {
                "metadata": { "labels": { "app": "burn" } },
                "spec": {
                    "nodeSelector": { NODE_LABEL.0: NODE_LABEL.1 },
                    "tolerations": [{ "key": NODE_TAINT, "operator": "Equal", "value": "true", "effect": "NoSchedule" }],
                    "automountServiceAccountToken": false,
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{
                        "name": "main", "image": image("busybox"), "imagePullPolicy": "IfNotPresent",
                        "command": ["sh", "-c", busy],
                        "resources": { "requests": { "cpu": "500m", "memory": "16Mi" },
                                       "limits": { "cpu": "1", "memory": "32Mi" } }
                    }]
                }
            }
        }
    }))
    .expect("statefulset literal")
}

/// Deletes the burning StatefulSet of its namespace when the test ends, passed or failed: a core left burning would
/// slow every later test on the node.
struct Extinguish(String);

impl Drop for Extinguish {
    fn drop(&mut self) {
        let (namespace, set) = (self.0.as_str(), "statefulset/burn");
        let _ = kubectl(&["-n", namespace, "delete", set, "--wait=false", "--ignore-not-found"]);
    }
}

/// Millicores of a figure the dashboard writes in cores (`"1.02 cores"`).
fn millicores(figure: &str) -> f64 {
    let cores = figure.strip_suffix(" cores").unwrap_or_else(|| panic!("{figure:?} is no figure in cores"));
    cores.parse::<f64>().unwrap_or_else(|_| panic!("{figure:?} is no number of cores")) * 1000.0
}

/// The metrics API's CPU use of `pod` in `namespace` (as the admin reads it), in millicores, once it is listed.
async fn measured_millicores(namespace: &str, pod: &str) -> Option<f64> {
    let path = format!("/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods/{pod}");
    let request = http::Request::get(path).body(Vec::new()).expect("request");
    let metrics: Value = cluster().admin().await.request(request).await.ok()?;
    let cpu = caas_broker::catalog::quantity::parse(metrics["containers"][0]["usage"]["cpu"].as_str()?)?;
    #[allow(clippy::cast_precision_loss)]
    Some(cpu.0 as f64)
}

#[tokio::test]
async fn chromium_reads_a_burning_pod_at_one_core_its_workload_summed_and_the_quota_in_use_now() {
    let _turn = NODE_TURN.lock().await;
    assert_ready(&["busybox"]).await;
    let (_, available, _) = kubectl(&[
        "get",
        "apiservice",
        METRICS_API,
        "-o",
        r#"jsonpath={.status.conditions[?(@.type=="Available")].status}"#,
    ]);
    assert_eq!(
        available, "True",
        "the metrics API ({METRICS_API}) is not Available: run `bash tests/cluster/cluster.sh up` (it runs the metrics server)"
    );
    let served = serve().await;
    let broker = &served.broker;
    let (id, url, token) = instance_with_binding(broker, "edit").await;
    let namespace = broker.namespace(&id);
    let sets = Api::<StatefulSet>::namespaced(cluster().admin().await, &namespace);
    sets.create(&PostParams::default(), &burner()).await.expect("create the burning StatefulSet");
    let _extinguish = Extinguish(namespace.clone());

    // The metrics server scrapes the kubelet every few seconds; a rate needs two scrapes of a running container.
    let last = std::sync::Mutex::new(None);
    let what = "the metrics API to measure burn-0 at about a core (readings below, per try)";
    let admin_reading = eventually(Duration::from_secs(180), what, || async {
        let readings =
            (measured_millicores(&namespace, "burn-0").await, measured_millicores(&namespace, "burn-1").await);
        if *last.lock().expect("lock") != Some(readings) {
            eprintln!("metrics API: burn-0, burn-1 at {readings:?} millicores");
            *last.lock().expect("lock") = Some(readings);
        }
        let (burning, asleep) = readings;
        (asleep.is_some() && burning.is_some_and(|m| m >= 750.0)).then_some(burning)
    })
    .await;
    eprintln!("metrics API: burn-0 at {admin_reading:?} millicores");

    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("dashboard-metrics-{id}"));
    std::fs::create_dir_all(&dir).expect("probe directory");
    let (profile, screenshot) = (dir.join("profile"), dir.join("overview.png"));
    let probe = Probe::start(
        "metrics_probe.mjs",
        &[
            ("PROBE_URL", url.as_ref()),
            ("PROBE_TOKEN", token.as_ref()),
            ("PROBE_USER_DATA_DIR", profile.as_os_str()),
            ("PROBE_SCREENSHOT", screenshot.as_os_str()),
        ],
    );
    let report = probe.report().await;
    eprintln!("probe report: {report}");
    assert_eq!(report["metricsUnavailable"], false, "the edit binding reads the metrics API: {report}");
    assert_eq!(report["consoleErrors"], json!([]), "no policy violation or error in the page: {report}");
    assert_eq!(report["phoneOverflowPx"], 0, "readable on a phone without scrolling sideways: {report}");

    // The burning pod reads one core (±25 %), against its request and its limit; the sleeping one next to nothing.
    let pod = |name: &str| {
        let pods = report["pods"].as_array().cloned().unwrap_or_default();
        pods.into_iter().find(|pod| pod["pod"] == name).unwrap_or_else(|| panic!("no row for {name}: {report}"))
    };
    let (burning, asleep) = (pod("burn-0"), pod("burn-1"));
    let burning_cpu = millicores(burning["cpu"]["used"].as_str().unwrap_or_default());
    assert!((750.0..=1250.0).contains(&burning_cpu), "burn-0 reads {burning_cpu} millicores in Chromium: {report}");
    let against = burning["cpu"]["against"].as_array().cloned().unwrap_or_default();
    let against: Vec<&str> = against.iter().filter_map(Value::as_str).collect();
    assert!(
        against.len() == 2
            && against[0].starts_with("request 0.50 cores · ")
            && against[1].starts_with("limit 1.00 cores · "),
        "{report}"
    );
    assert_eq!(report["refresh"]["status"], 200, "the card fetched again on its own: {report}");
    let refreshed = millicores(report["refresh"]["burning"].as_str().unwrap_or_default());
    assert!(refreshed > 100.0, "burn-0 still burns after the refresh, yet reads {refreshed} millicores: {report}");
    let asleep_cpu = millicores(asleep["cpu"]["used"].as_str().unwrap_or_default());
    assert!(asleep_cpu < 100.0, "burn-1 sleeps, yet reads {asleep_cpu} millicores: {report}");
    assert!(burning["memory"]["used"].as_str().is_some_and(|m| m.ends_with("KiB") || m.ends_with("MiB")), "{report}");

    // The StatefulSet's row is the sum of its two pods' rows.
    let workloads = report["workloads"].as_array().cloned().unwrap_or_default();
    let set = workloads.iter().find(|w| w["workload"] == "StatefulSet/burn").unwrap_or_else(|| panic!("{report}"));
    assert_eq!(set["pods"], "2", "{report}");
    let summed = millicores(set["cpu"].as_str().unwrap_or_default());
    assert!((summed - (burning_cpu + asleep_cpu)).abs() <= 15.0, "{summed} is not the pods' sum: {report}");
    let set_against: Vec<&str> = set["against"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    assert!(set_against.iter().any(|a| a.starts_with("request 1.00 cores · ")), "two requests of 0.5: {report}");

    // The quota: what requests reserve (the apiserver's count) and, beside it, what is in use now.
    let quota = report["quota"].as_array().cloned().unwrap_or_default();
    let requests = quota.iter().find(|q| q["resource"] == "requests.cpu").unwrap_or_else(|| panic!("{report}"));
    assert_eq!(requests["words"], "CPU reserved", "the row speaks words, the raw name on hover: {report}");
    assert_eq!(requests["reserved"], "1 / 2", "two pods reserve 500m each: {report}");
    let in_use = millicores(requests["inUse"].as_str().unwrap_or_default());
    assert!((750.0..=1350.0).contains(&in_use), "in use now beside reserved: {report}");
    let pods_line = quota.iter().find(|q| q["resource"] == "pods").unwrap_or_else(|| panic!("{report}"));
    assert_eq!(pods_line["inUse"], Value::Null, "the metrics API measures CPU and memory only: {report}");

    // History: once the broker has sampled the pods, each has a sparkline of its last hour, its numbers in its title.
    assert_eq!(burning["cpu"]["collecting"], 0, "{report}");
    let sparklines = burning["cpu"]["sparklines"].as_array().cloned().unwrap_or_default();
    assert_eq!(sparklines.len(), 1, "burn-0's CPU sparkline: {report}");
    let title = sparklines[0]["title"].as_str().unwrap_or_default();
    assert_eq!(sparklines[0]["label"].as_str(), Some(title), "its accessible name says the same: {report}");
    assert!(title.starts_with("CPU, last hour: now ") && title.contains(" (samples: "), "{report}");
    let highest = title.split(", highest ").nth(1).and_then(|rest| rest.split(',').next()).unwrap_or_default();
    assert!((750.0..=1250.0).contains(&millicores(highest)), "the sparkline's highest sample: {report}");
    let drawn = sparklines[0]["points"].as_str().is_some() || sparklines[0]["dot"] == true;
    assert!(drawn && sparklines[0]["width"].as_f64().is_some_and(|w| w > 0.0), "{report}");
    assert!(report["month"].as_str().is_some_and(|m| m.contains("core-hours")), "the month's usage card: {report}");

    sets.delete("burn", &DeleteParams::default()).await.expect("delete the burning StatefulSet");
    broker.deprovision(&id, SMALL).await;
}
