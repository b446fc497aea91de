//! One sample of one tenant namespace: its running pods' requests, its claims, its pods' use from the metrics API,
//! read with the broker's client (the dashboard's watch role, bound per tenant namespace, lets it) and turned into
//! rates for the namespace as a whole and for each workload instance in it.

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};

use super::buckets::Rates;
use crate::catalog::quantity;
use crate::k8s::names::LABEL_INSTANCE;
use crate::k8s::pod_metrics;

/// The resource GPUs are requested as.
const GPU: &str = "nvidia.com/gpu";

/// What one sample of a namespace found.
#[derive(Debug, Default, PartialEq)]
pub struct NamespaceRates {
    /// Everything in the namespace: the virtual cluster's rates.
    pub namespace: Rates,
    /// By the `caas-broker.io/instance` label of pods and claims: each workload instance's rates.
    pub by_instance: HashMap<String, Rates>,
    /// Each running pod's use (millicores, bytes), when the metrics API answered.
    pub pods: BTreeMap<String, (u64, u64)>,
}

/// A quantity's value in its unit (cores, bytes, GPUs), `None` when it is not a quantity.
fn amount(text: &str) -> Option<f64> {
    quantity::parse(text).map(|milli| milli.0 as f64 / 1000.0)
}

/// Turns a namespace's pods, claims and pod metrics (a `PodMetricsList`, `None` when the metrics API did not answer)
/// into rates. `session_labels` are the instance labels of streaming sessions, whose running pods count as session
/// pods. Only running pods count; a pod's requests are its containers' (a GPU asked for only as a limit counts, since
/// an extended resource's request is its limit).
pub fn rates(
    pods: &[Pod],
    claims: &[PersistentVolumeClaim],
    metrics: Option<&serde_json::Value>,
    session_labels: &[String],
) -> NamespaceRates {
    let mut found = NamespaceRates::default();
    let mut running: HashMap<&str, Option<&String>> = HashMap::new();
    for pod in pods {
        let phase = pod.status.as_ref().and_then(|status| status.phase.as_deref());
        if phase != Some("Running") || pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let label = pod.metadata.labels.as_ref().and_then(|labels| labels.get(LABEL_INSTANCE));
        running.insert(pod.metadata.name.as_deref().unwrap_or_default(), label);
        let mut pod_rates = Rates::default();
        for container in pod.spec.iter().flat_map(|spec| &spec.containers) {
            let resources = container.resources.as_ref();
            let requested = |resource: &str| {
                let request = resources.and_then(|r| r.requests.as_ref()?.get(resource));
                request.and_then(|q| amount(&q.0)).unwrap_or(0.0)
            };
            pod_rates.cpu_requested_cores += requested("cpu");
            pod_rates.memory_requested_bytes += requested("memory");
            let gpu_limit = resources.and_then(|r| r.limits.as_ref()?.get(GPU)).and_then(|q| amount(&q.0));
            pod_rates.gpus += resources
                .and_then(|r| r.requests.as_ref()?.get(GPU))
                .and_then(|q| amount(&q.0))
                .or(gpu_limit)
                .unwrap_or(0.0);
        }
        if label.is_some_and(|label| session_labels.contains(label)) {
            pod_rates.session_pods = 1.0;
        }
        add(&mut found, label, &pod_rates);
    }
    for claim in claims.iter().filter(|claim| claim.metadata.deletion_timestamp.is_none()) {
        let requested = claim.spec.as_ref().and_then(|spec| spec.resources.as_ref()?.requests.as_ref()?.get("storage"));
        let bytes = requested.and_then(|q| amount(&q.0)).unwrap_or(0.0);
        let label = claim.metadata.labels.as_ref().and_then(|labels| labels.get(LABEL_INSTANCE));
        add(&mut found, label, &Rates { storage_bytes: bytes, ..Rates::default() });
    }
    for used in metrics.into_iter().flat_map(pod_metrics::pods) {
        let Some(label) = running.get(used.pod) else { continue };
        let (cores, bytes) = (used.cpu as f64 / 1000.0, used.memory as f64 / 1000.0);
        found.pods.insert(used.pod.to_owned(), ((cores * 1000.0).round() as u64, bytes.round() as u64));
        add(&mut found, *label, &Rates { cpu_cores: cores, memory_bytes: bytes, ..Rates::default() });
    }
    found
}

fn add(found: &mut NamespaceRates, label: Option<&String>, rates: &Rates) {
    found.namespace.add(rates);
    if let Some(label) = label {
        found.by_instance.entry(label.clone()).or_default().add(rates);
    }
}

/// A pod's recent samples, bounded: what [`super::Accounting`] keeps per pod for the dashboard.
pub fn keep_recent(samples: &mut std::collections::VecDeque<super::UsageSample>, at: Timestamp, most: usize) {
    let hour_ago = at.checked_sub(jiff::SignedDuration::from_hours(1)).unwrap_or(at);
    while samples.front().is_some_and(|sample| sample.at < hour_ago) || samples.len() > most {
        samples.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(name: &str, instance: Option<&str>, phase: &str, requests: serde_json::Value) -> Pod {
        let labels = instance.map_or_else(|| json!({}), |i| json!({ LABEL_INSTANCE: i }));
        serde_json::from_value(json!({
            "metadata": { "name": name, "labels": labels },
            "spec": { "containers": [{ "name": "c", "resources": { "requests": requests } }] },
            "status": { "phase": phase },
        }))
        .expect("pod")
    }

    #[test]
    fn a_namespace_counts_its_running_pods_claims_and_use_and_each_instance_its_own() {
        let pods = [
            pod("web-1", Some("app"), "Running", json!({ "cpu": "500m", "memory": "1Gi" })),
            pod("session-0", Some("sess"), "Running", json!({ "cpu": "1", "nvidia.com/gpu": "1" })),
            pod("loose", None, "Running", json!({ "cpu": "250m" })),
            pod("done", Some("app"), "Succeeded", json!({ "cpu": "8" })),
        ];
        let claims: Vec<PersistentVolumeClaim> = vec![
            serde_json::from_value(json!({ "metadata": { "name": "data", "labels": { LABEL_INSTANCE: "sess" } },
                "spec": { "resources": { "requests": { "storage": "2Gi" } } } }))
            .expect("claim"),
        ];
        let metrics = json!({ "items": [
            { "metadata": { "name": "web-1" }, "containers": [{ "usage": { "cpu": "1000123456n", "memory": "10Mi" } }] },
            { "metadata": { "name": "loose" }, "containers": [{ "usage": { "cpu": "250m", "memory": "1Mi" } }] },
            { "metadata": { "name": "done" }, "containers": [{ "usage": { "cpu": "1", "memory": "1Mi" } }] },
        ] });
        let found = rates(&pods, &claims, Some(&metrics), &["sess".to_owned()]);
        assert_eq!(found.namespace.cpu_requested_cores, 1.75);
        assert_eq!(found.namespace.memory_requested_bytes, 1073741824.0);
        assert_eq!(found.namespace.gpus, 1.0);
        assert_eq!(found.namespace.storage_bytes, 2.0 * 1073741824.0);
        assert_eq!(found.namespace.session_pods, 1.0);
        assert!(
            (found.namespace.cpu_cores - 1.251).abs() < 1e-9,
            "rounded up to millicores: {}",
            found.namespace.cpu_cores
        );
        let app = &found.by_instance["app"];
        assert_eq!((app.cpu_requested_cores, app.session_pods), (0.5, 0.0));
        assert!((app.cpu_cores - 1.001).abs() < 1e-9);
        assert_eq!(found.by_instance["sess"].storage_bytes, 2.0 * 1073741824.0);
        assert_eq!(found.pods.keys().collect::<Vec<_>>(), ["loose", "web-1"], "only running pods");
        assert_eq!(found.pods["web-1"], (1001, 10 * 1024 * 1024));
    }

    #[test]
    fn without_the_metrics_api_use_is_not_counted() {
        let pods = [pod("web-1", Some("app"), "Running", json!({ "cpu": "500m" }))];
        let found = rates(&pods, &[], None, &[]);
        assert_eq!(found.namespace.cpu_cores, 0.0);
        assert_eq!(found.namespace.cpu_requested_cores, 0.5);
        assert!(found.pods.is_empty());
    }

    #[test]
    fn a_pods_history_keeps_the_last_hour_and_at_most_so_many() {
        let at = |s: &str| -> Timestamp { s.parse().expect("time") };
        let sample = |t: &str| super::super::UsageSample { at: at(t), cpu_millicores: 1, memory_bytes: 1 };
        let mut samples: std::collections::VecDeque<_> =
            ["2026-12-07T13:59:00Z", "2026-12-07T14:30:00Z", "2026-12-07T14:59:00Z"].map(sample).into();
        keep_recent(&mut samples, at("2026-12-07T15:00:00Z"), 10);
        assert_eq!(samples.len(), 2);
        keep_recent(&mut samples, at("2026-12-07T15:00:00Z"), 1);
        assert_eq!(samples.front().map(|s| s.at), Some(at("2026-12-07T14:59:00Z")));
    }
}
