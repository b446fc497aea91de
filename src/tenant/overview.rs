//! What a virtual cluster looks like to one of its identities: its quota and use, its container defaults, its pods
//! by state, its workloads and its alerts. Every read is made with the identity's own client (see
//! [`crate::k8s::as_user`]), so Kubernetes' RBAC decides what it may see, not the broker.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Event, LimitRange, PersistentVolumeClaim, Pod, ResourceQuota};
use kube::api::ListParams;
use kube::{Api, Client};

use super::alerts::{self, Alert, Observed};
use crate::lifecycle::Result;

/// One quota resource: how much is used of how much.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaUse {
    /// The resource (`requests.cpu`, `pods`, ...).
    pub resource: String,
    /// Used, as the apiserver writes it.
    pub used: String,
    /// The limit, as the apiserver writes it.
    pub hard: String,
    /// Used in whole percent of the limit, at most 100 (for a bar).
    pub percent: u8,
}

/// One resource's container defaults from the LimitRange.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerDefault {
    /// The resource (`cpu`, `memory`, ...).
    pub resource: String,
    /// The request a container gets when it names none.
    pub request: Option<String>,
    /// The limit a container gets when it names none.
    pub limit: Option<String>,
    /// The most a container may ask for.
    pub max: Option<String>,
}

/// The overview of one tenant namespace.
#[derive(Debug, Clone, Default)]
pub struct Overview {
    /// Quota use, resource by resource.
    pub quota: Vec<QuotaUse>,
    /// Container defaults, resource by resource.
    pub defaults: Vec<ContainerDefault>,
    /// Pods by phase (`Running`, `Pending`, ...).
    pub pods_by_phase: BTreeMap<String, usize>,
    /// Deployments.
    pub deployments: usize,
    /// StatefulSets.
    pub stateful_sets: usize,
    /// What is abnormal, most urgent first.
    pub alerts: Vec<Alert>,
    /// CPU and memory per pod, when the cluster serves the metrics API.
    pub metrics: Metrics,
}

/// What the metrics API says of a namespace's pods.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Metrics {
    /// The cluster serves no metrics API (no metrics server), or not to this identity: the page says so rather than
    /// showing zeros.
    #[default]
    Unavailable,
    /// Pod by pod.
    Pods(Vec<PodUsage>),
}

/// One pod's CPU and memory use against its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodUsage {
    /// The pod.
    pub pod: String,
    /// CPU in use, in millicores (`"12m"`).
    pub cpu: String,
    /// The pods' CPU limit, if every container has one.
    pub cpu_limit: Option<String>,
    /// Use in whole percent of the limit, at most 100.
    pub cpu_percent: Option<u8>,
    /// Memory in use, in MiB (`"45Mi"`).
    pub memory: String,
    /// The pod's memory limit, if every container has one.
    pub memory_limit: Option<String>,
    /// Use in whole percent of the limit, at most 100.
    pub memory_percent: Option<u8>,
}

/// Reads the overview of `namespace` with `client`, which carries the signed-in identity's own token.
pub async fn read(client: &Client, namespace: &str) -> Result<Overview> {
    let all = ListParams::default();
    let autoscalers = Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), namespace);
    let (quotas, limits, pods, deployments, stateful_sets, events, claims) = (
        Api::<ResourceQuota>::namespaced(client.clone(), namespace),
        Api::<LimitRange>::namespaced(client.clone(), namespace),
        Api::<Pod>::namespaced(client.clone(), namespace),
        Api::<Deployment>::namespaced(client.clone(), namespace),
        Api::<StatefulSet>::namespaced(client.clone(), namespace),
        Api::<Event>::namespaced(client.clone(), namespace),
        Api::<PersistentVolumeClaim>::namespaced(client.clone(), namespace),
    );
    // An identity that may not read autoscalers still gets its overview.
    let autoscalers = async { Ok::<_, kube::Error>(autoscalers.list(&all).await.ok()) };
    let (quotas, limits, pods, deployments, stateful_sets, events, claims, autoscalers) = tokio::try_join!(
        quotas.list(&all),
        limits.list(&all),
        pods.list(&all),
        deployments.list(&all),
        stateful_sets.list_metadata(&all),
        events.list(&all),
        claims.list(&all),
        autoscalers,
    )?;
    let autoscalers = autoscalers.map(|list| list.items).unwrap_or_default();
    let observed = Observed {
        pods: &pods.items,
        deployments: &deployments.items,
        events: &events.items,
        quotas: &quotas.items,
        claims: &claims.items,
        autoscalers: &autoscalers,
        now: Some(jiff::Timestamp::now()),
    };
    let mut pods_by_phase = BTreeMap::new();
    for pod in &pods.items {
        let phase = pod.status.as_ref().and_then(|status| status.phase.clone()).unwrap_or_else(|| "Unknown".into());
        *pods_by_phase.entry(phase).or_insert(0) += 1;
    }
    Ok(Overview {
        quota: quota_use(&quotas.items),
        defaults: container_defaults(&limits.items),
        pods_by_phase,
        deployments: deployments.items.len(),
        stateful_sets: stateful_sets.items.len(),
        alerts: alerts::classify(observed),
        metrics: metrics(client, namespace, &pods.items).await,
    })
}

/// Reads the metrics API's pod metrics of `namespace` as the user; [`Metrics::Unavailable`] when it does not answer.
async fn metrics(client: &Client, namespace: &str, pods: &[Pod]) -> Metrics {
    let path = format!("/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods");
    let request = match http::Request::get(path).body(Vec::new()) {
        Ok(request) => request,
        Err(_) => return Metrics::Unavailable,
    };
    match client.request::<serde_json::Value>(request).await {
        Ok(list) => Metrics::Pods(pod_usage(&list, pods)),
        Err(error) => {
            tracing::debug!(%error, namespace, "no pod metrics");
            Metrics::Unavailable
        }
    }
}

/// Each pod of a `PodMetricsList` with its use summed over its containers, against the sum of its containers' limits.
pub fn pod_usage(list: &serde_json::Value, pods: &[Pod]) -> Vec<PodUsage> {
    use crate::catalog::quantity::{self, Milli};
    const MI: i128 = 1024 * 1024 * 1000;
    let percent = |used: i128, limit: Option<i128>| {
        limit.filter(|l| *l > 0).map(|l| u8::try_from((used.saturating_mul(100) / l).clamp(0, 100)).unwrap_or(100))
    };
    let mut lines: Vec<PodUsage> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| {
            let name = item["metadata"]["name"].as_str()?.to_owned();
            let containers = item["containers"].as_array()?;
            let used = |resource: &str| {
                containers
                    .iter()
                    .filter_map(|c| c["usage"][resource].as_str().and_then(quantity::parse))
                    .map(|m| m.0)
                    .sum::<i128>()
            };
            let (cpu, memory) = (used("cpu"), used("memory"));
            let pod = pods.iter().find(|pod| pod.metadata.name.as_deref() == Some(name.as_str()));
            let limit = |resource: &str| {
                let containers = pod?.spec.as_ref()?.containers.iter();
                let limits: Option<Vec<Milli>> = containers
                    .map(|c| c.resources.as_ref()?.limits.as_ref()?.get(resource).and_then(|q| quantity::parse(&q.0)))
                    .collect();
                limits.map(|limits| limits.iter().map(|m| m.0).sum::<i128>())
            };
            let (cpu_limit, memory_limit) = (limit("cpu"), limit("memory"));
            Some(PodUsage {
                pod: name,
                cpu: format!("{cpu}m"),
                cpu_limit: cpu_limit.map(|l| format!("{l}m")),
                cpu_percent: percent(cpu, cpu_limit),
                memory: format!("{}Mi", memory / MI),
                memory_limit: memory_limit.map(|l| format!("{}Mi", l / MI)),
                memory_percent: percent(memory, memory_limit),
            })
        })
        .collect();
    lines.sort_by(|a, b| a.pod.cmp(&b.pod));
    lines
}

/// Use against the limit of every resource of every quota (a resource without use yet counts as 0).
pub fn quota_use(quotas: &[ResourceQuota]) -> Vec<QuotaUse> {
    let mut lines = Vec::new();
    for status in quotas.iter().filter_map(|quota| quota.status.as_ref()) {
        let used = status.used.clone().unwrap_or_default();
        for (resource, hard) in status.hard.iter().flatten() {
            let used = used.get(resource).map_or_else(|| "0".to_owned(), |used| used.0.clone());
            let percent = alerts::percent_used(&used, &hard.0).unwrap_or(0).clamp(0, 100);
            let percent = u8::try_from(percent).unwrap_or(100);
            lines.push(QuotaUse { resource: resource.clone(), used, hard: hard.0.clone(), percent });
        }
    }
    lines
}

/// The container defaults and bounds of every LimitRange, resource by resource.
pub fn container_defaults(limit_ranges: &[LimitRange]) -> Vec<ContainerDefault> {
    let mut by_resource: BTreeMap<String, ContainerDefault> = BTreeMap::new();
    let items = limit_ranges.iter().filter_map(|range| range.spec.as_ref()).flat_map(|spec| spec.limits.iter());
    for item in items.filter(|item| item.type_ == "Container") {
        let mut set = |values: &Option<BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
                       pick: fn(&mut ContainerDefault) -> &mut Option<String>| {
            for (resource, value) in values.iter().flatten() {
                let entry = by_resource
                    .entry(resource.clone())
                    .or_insert_with(|| ContainerDefault { resource: resource.clone(), ..ContainerDefault::default() });
                *pick(entry) = Some(value.0.clone());
            }
        };
        set(&item.default_request, |d| &mut d.request);
        set(&item.default, |d| &mut d.limit);
        set(&item.max, |d| &mut d.max);
    }
    by_resource.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quota_use_is_a_share_of_each_limit_capped_for_bars() {
        let quota: ResourceQuota = serde_json::from_value(json!({ "metadata": { "name": "q" }, "status": {
            "hard": { "pods": "10", "requests.memory": "1Gi", "services": "4" },
            "used": { "pods": "3", "requests.memory": "2Gi" } } }))
        .expect("quota");
        let lines: Vec<_> = quota_use(&[quota]).into_iter().map(|q| (q.resource, q.used, q.hard, q.percent)).collect();
        assert_eq!(
            lines,
            [
                ("pods".into(), "3".into(), "10".into(), 30),
                ("requests.memory".into(), "2Gi".into(), "1Gi".into(), 100),
                ("services".into(), "0".into(), "4".into(), 0),
            ]
        );
    }

    #[test]
    fn container_defaults_gather_request_limit_and_max_by_resource() {
        let range: LimitRange = serde_json::from_value(json!({ "metadata": { "name": "l" }, "spec": { "limits": [
            { "type": "Container", "default": { "cpu": "500m", "memory": "512Mi" },
              "defaultRequest": { "cpu": "100m" }, "max": { "memory": "2Gi" } },
            { "type": "Pod", "max": { "cpu": "8" } } ] } }))
        .expect("limit range");
        let defaults = container_defaults(&[range]);
        assert_eq!(
            defaults,
            [
                ContainerDefault {
                    resource: "cpu".into(),
                    request: Some("100m".into()),
                    limit: Some("500m".into()),
                    max: None
                },
                ContainerDefault {
                    resource: "memory".into(),
                    request: None,
                    limit: Some("512Mi".into()),
                    max: Some("2Gi".into())
                },
            ]
        );
    }

    #[test]
    fn pod_metrics_are_summed_per_pod_against_the_limits() {
        let pods: Vec<Pod> = serde_json::from_value(serde_json::json!([
            { "metadata": { "name": "web-1" }, "spec": { "containers": [
                { "name": "a", "resources": { "limits": { "cpu": "500m", "memory": "256Mi" } } },
                { "name": "b", "resources": { "limits": { "cpu": "500m", "memory": "256Mi" } } } ] } },
            { "metadata": { "name": "free" }, "spec": { "containers": [{ "name": "a" }] } }
        ]))
        .expect("pods");
        let list = serde_json::json!({ "items": [
            { "metadata": { "name": "web-1" }, "containers": [
                { "name": "a", "usage": { "cpu": "250000000n", "memory": "131072Ki" } },
                { "name": "b", "usage": { "cpu": "50m", "memory": "128Mi" } } ] },
            { "metadata": { "name": "free" }, "containers": [{ "name": "a", "usage": { "cpu": "1", "memory": "1Gi" } }] }
        ] });
        let usage = pod_usage(&list, &pods);
        assert_eq!(usage.len(), 2);
        assert_eq!(
            usage[1],
            PodUsage {
                pod: "web-1".into(),
                cpu: "300m".into(),
                cpu_limit: Some("1000m".into()),
                cpu_percent: Some(30),
                memory: "256Mi".into(),
                memory_limit: Some("512Mi".into()),
                memory_percent: Some(50),
            }
        );
        assert_eq!((usage[0].cpu.as_str(), usage[0].cpu_limit.as_deref(), usage[0].cpu_percent), ("1000m", None, None));
    }
}
