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
use crate::k8s::pod_metrics;
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
    /// What the metrics API measures in use now, beside what the quota counts as reserved.
    pub in_use: InUseNow,
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
    /// Pod by pod, workload by workload, and in all.
    Available(Usage),
}

/// The use the metrics API measured in a namespace, as the identity may see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// Each pod, by name.
    pub pods: Vec<PodUsage>,
    /// Each Deployment and StatefulSet with pods measured: the sum of its pods.
    pub workloads: Vec<WorkloadUsage>,
    /// CPU in use by every pod measured, in millicores.
    pub cpu_millicores: u64,
    /// Memory in use by every pod measured (working set), in bytes.
    pub memory_bytes: u64,
}

/// One resource's use against what the pods asked for: millicores of CPU or bytes of memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Measured {
    /// In use now.
    pub used: u64,
    /// What is reserved (the sum of the requests), if every container names one.
    pub request: Option<u64>,
    /// The most it may use (the sum of the limits), if every container has one.
    pub limit: Option<u64>,
}

impl Measured {
    /// Use in whole percent of the request (above 100 when a pod uses more than it reserved).
    pub fn percent_of_request(&self) -> Option<u64> {
        percent(self.used, self.request)
    }

    /// Use in whole percent of the limit.
    pub fn percent_of_limit(&self) -> Option<u64> {
        percent(self.used, self.limit)
    }

    /// The sum of two: a request or limit only if both have one.
    fn plus(self, other: Measured) -> Measured {
        let add = |a: Option<u64>, b: Option<u64>| Some(a?.saturating_add(b?));
        Measured {
            used: self.used.saturating_add(other.used),
            request: add(self.request, other.request),
            limit: add(self.limit, other.limit),
        }
    }
}

fn percent(used: u64, of: Option<u64>) -> Option<u64> {
    of.filter(|of| *of > 0).map(|of| u64::try_from(u128::from(used) * 100 / u128::from(of)).unwrap_or(u64::MAX))
}

/// The Deployment or StatefulSet a pod belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Owner {
    /// `Deployment` or `StatefulSet`.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
}

/// One pod's CPU and memory use against its requests and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodUsage {
    /// The pod.
    pub pod: String,
    /// The workload it belongs to, if any.
    pub owner: Option<Owner>,
    /// CPU, in millicores.
    pub cpu: Measured,
    /// Memory (working set), in bytes.
    pub memory: Measured,
}

/// One workload's use: the sum of its pods'.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadUsage {
    /// The workload.
    pub owner: Owner,
    /// Its pods measured.
    pub pods: usize,
    /// CPU, in millicores.
    pub cpu: Measured,
    /// Memory (working set), in bytes.
    pub memory: Measured,
}

/// What the metrics API measures of a quota's resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InUseNow {
    /// Nothing: the resource is not CPU or memory (pods, services, storage...).
    NotMeasured,
    /// CPU or memory, but the metrics API does not answer.
    Unavailable,
    /// CPU in use by the namespace's pods, in millicores, and in whole percent of the quota's limit.
    Cpu {
        /// Millicores in use.
        millicores: u64,
        /// Percent of the quota's limit, at most 100 (for a bar).
        percent: u8,
    },
    /// Memory in use by the namespace's pods, in bytes, and in whole percent of the quota's limit.
    Memory {
        /// Bytes in use.
        bytes: u64,
        /// Percent of the quota's limit, at most 100 (for a bar).
        percent: u8,
    },
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
    let names: Vec<String> = deployments.items.iter().filter_map(|d| d.metadata.name.clone()).collect();
    let metrics = metrics(client, namespace, &pods.items, &names).await;
    let mut quota = quota_use(&quotas.items);
    in_use_now(&mut quota, &metrics);
    Ok(Overview {
        quota,
        defaults: container_defaults(&limits.items),
        pods_by_phase,
        deployments: deployments.items.len(),
        stateful_sets: stateful_sets.items.len(),
        alerts: alerts::classify(observed),
        metrics,
    })
}

/// Reads what the CPU and memory card alone shows (what the live overview refreshes): the metrics API's use of the
/// pods of `namespace` that `client` (the identity's own) may list, pod by pod and workload by workload.
pub async fn usage(client: &Client, namespace: &str) -> Result<Metrics> {
    let all = ListParams::default();
    let (pods, deployments) =
        (Api::<Pod>::namespaced(client.clone(), namespace), Api::<Deployment>::namespaced(client.clone(), namespace));
    let (pods, deployments) = tokio::try_join!(pods.list(&all), deployments.list_metadata(&all))?;
    let names: Vec<String> = deployments.items.into_iter().filter_map(|d| d.metadata.name).collect();
    Ok(metrics(client, namespace, &pods.items, &names).await)
}

/// Reads the metrics API's pod metrics of `namespace` as the user; [`Metrics::Unavailable`] when it does not answer.
async fn metrics(client: &Client, namespace: &str, pods: &[Pod], deployments: &[String]) -> Metrics {
    match pod_metrics::fetch(client, namespace).await {
        Ok(list) => Metrics::Available(measured(&list, pods, deployments)),
        Err(error) => {
            tracing::debug!(%error, namespace, "no pod metrics");
            Metrics::Unavailable
        }
    }
}

/// The pods of a `PodMetricsList` (those of `pods` alone: what the identity may list), their workloads (of the
/// Deployments named `deployments`, and StatefulSets) and the sum.
pub fn measured(list: &serde_json::Value, pods: &[Pod], deployments: &[String]) -> Usage {
    let pods = pod_usage(list, pods, deployments);
    let workloads = workload_usage(&pods);
    let total = |pick: fn(&PodUsage) -> u64| pods.iter().map(pick).fold(0u64, u64::saturating_add);
    Usage { cpu_millicores: total(|pod| pod.cpu.used), memory_bytes: total(|pod| pod.memory.used), pods, workloads }
}

/// Each pod of a `PodMetricsList` that is among `pods`, with its use summed over its containers, against the sums of
/// its containers' requests and limits, and the Deployment (of those named `deployments`) or StatefulSet it belongs to.
pub fn pod_usage(list: &serde_json::Value, pods: &[Pod], deployments: &[String]) -> Vec<PodUsage> {
    use crate::catalog::quantity;
    let mut lines: Vec<PodUsage> = pod_metrics::pods(list)
        .filter_map(|used| {
            let name = used.pod;
            let pod = pods.iter().find(|pod| pod.metadata.name.as_deref() == Some(name))?;
            let specified = |resource: &str, limits: bool| {
                let containers = pod.spec.as_ref()?.containers.iter();
                let amounts: Option<Vec<i128>> = containers
                    .map(|c| {
                        let resources = c.resources.as_ref()?;
                        let amounts = if limits { resources.limits.as_ref() } else { resources.requests.as_ref() };
                        amounts?.get(resource).and_then(|q| quantity::parse(&q.0)).map(|m| m.0)
                    })
                    .collect();
                amounts.map(|amounts| amounts.iter().sum::<i128>())
            };
            // Quantities parse to thousandths: millicores of CPU, thousandths of a byte of memory.
            let measured = |resource: &str, used: i128, per_unit: i128| Measured {
                used: whole(used / per_unit),
                request: specified(resource, false).map(|m| whole(m / per_unit)),
                limit: specified(resource, true).map(|m| whole(m / per_unit)),
            };
            Some(PodUsage {
                pod: name.to_owned(),
                owner: owner(pod, deployments),
                cpu: measured("cpu", used.cpu, 1),
                memory: measured("memory", used.memory, 1000),
            })
        })
        .collect();
    lines.sort_by(|a, b| a.pod.cmp(&b.pod));
    lines
}

fn whole(amount: i128) -> u64 {
    u64::try_from(amount.max(0)).unwrap_or(u64::MAX)
}

/// The Deployment or StatefulSet that runs `pod`: its StatefulSet, or the Deployment (of those named `deployments`)
/// whose ReplicaSet it is, named, as the Deployment controller names them, after the Deployment and the pod template's
/// hash.
fn owner(pod: &Pod, deployments: &[String]) -> Option<Owner> {
    let controller = pod.metadata.owner_references.iter().flatten().find(|owner| owner.controller == Some(true))?;
    match controller.kind.as_str() {
        "StatefulSet" => Some(Owner { kind: "StatefulSet", name: controller.name.clone() }),
        "ReplicaSet" => {
            let hash = pod.metadata.labels.as_ref()?.get("pod-template-hash")?;
            let name = controller.name.strip_suffix(hash.as_str())?.strip_suffix('-')?;
            deployments
                .iter()
                .any(|deployment| deployment == name)
                .then(|| Owner { kind: "Deployment", name: name.to_owned() })
        }
        _ => None,
    }
}

/// Each workload's pods summed, by kind and name.
pub fn workload_usage(pods: &[PodUsage]) -> Vec<WorkloadUsage> {
    let mut by_owner: BTreeMap<&Owner, WorkloadUsage> = BTreeMap::new();
    for pod in pods {
        let Some(owner) = &pod.owner else { continue };
        by_owner
            .entry(owner)
            .and_modify(|sum| {
                sum.pods += 1;
                sum.cpu = sum.cpu.plus(pod.cpu);
                sum.memory = sum.memory.plus(pod.memory);
            })
            .or_insert_with(|| WorkloadUsage { owner: owner.clone(), pods: 1, cpu: pod.cpu, memory: pod.memory });
    }
    by_owner.into_values().collect()
}

/// Sets what is in use now beside the quota's CPU and memory lines (`cpu`, `requests.cpu`, `limits.cpu`, alike for
/// memory), from `metrics`.
pub fn in_use_now(quota: &mut [QuotaUse], metrics: &Metrics) {
    use crate::catalog::quantity;
    for line in quota {
        let cpu = match line.resource.as_str() {
            "cpu" | "requests.cpu" | "limits.cpu" => true,
            "memory" | "requests.memory" | "limits.memory" => false,
            _ => continue,
        };
        let Metrics::Available(usage) = metrics else {
            line.in_use = InUseNow::Unavailable;
            continue;
        };
        // The quota's limit in thousandths (millicores, thousandths of a byte), as the use is counted below.
        let hard = quantity::parse(&line.hard).map(|m| m.0);
        let share = |used_thousandths: i128| {
            let share = hard.filter(|h| *h > 0).map_or(0, |h| (used_thousandths.saturating_mul(100) / h).clamp(0, 100));
            u8::try_from(share).unwrap_or(100)
        };
        line.in_use = if cpu {
            let millicores = usage.cpu_millicores;
            InUseNow::Cpu { millicores, percent: share(i128::from(millicores)) }
        } else {
            let bytes = usage.memory_bytes;
            InUseNow::Memory { bytes, percent: share(i128::from(bytes).saturating_mul(1000)) }
        };
    }
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
            let (resource, hard, in_use) = (resource.clone(), hard.0.clone(), InUseNow::NotMeasured);
            lines.push(QuotaUse { resource, used, hard, percent, in_use });
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

    /// A Deployment `web` with two pods (one of two containers), a StatefulSet `db` with one, and a bare pod.
    fn recorded() -> (Vec<Pod>, Vec<String>, serde_json::Value) {
        let owned = |kind: &str, name: &str| {
            json!([{ "apiVersion": "apps/v1", "kind": kind, "name": name,
                                                      "uid": "u", "controller": true }])
        };
        let resources = |cpu: &str, memory: &str| {
            json!({ "requests": { "cpu": cpu, "memory": memory },
                                                          "limits": { "cpu": "500m", "memory": "256Mi" } })
        };
        let pods: Vec<Pod> = serde_json::from_value(json!([
            { "metadata": { "name": "web-7d9f-a", "labels": { "pod-template-hash": "7d9f" },
                            "ownerReferences": owned("ReplicaSet", "web-7d9f") },
              "spec": { "containers": [
                { "name": "a", "resources": resources("100m", "64Mi") },
                { "name": "b", "resources": resources("100m", "64Mi") } ] } },
            { "metadata": { "name": "web-7d9f-b", "labels": { "pod-template-hash": "7d9f" },
                            "ownerReferences": owned("ReplicaSet", "web-7d9f") },
              "spec": { "containers": [{ "name": "a", "resources": resources("200m", "128Mi") }] } },
            { "metadata": { "name": "db-0", "ownerReferences": owned("StatefulSet", "db") },
              "spec": { "containers": [{ "name": "a", "resources": { "requests": { "cpu": "1" } } }] } },
            { "metadata": { "name": "free" }, "spec": { "containers": [{ "name": "a" }] } }
        ]))
        .expect("pods");
        let deployments = vec!["web".to_owned()];
        let list = json!({ "items": [
            { "metadata": { "name": "web-7d9f-a" }, "containers": [
                { "name": "a", "usage": { "cpu": "250000000n", "memory": "131072Ki" } },
                { "name": "b", "usage": { "cpu": "50m", "memory": "128Mi" } } ] },
            { "metadata": { "name": "web-7d9f-b" }, "containers": [
                { "name": "a", "usage": { "cpu": "100m", "memory": "64Mi" } } ] },
            { "metadata": { "name": "db-0" }, "containers": [{ "name": "a", "usage": { "cpu": "1", "memory": "1Gi" } }] },
            { "metadata": { "name": "free" }, "containers": [{ "name": "a", "usage": { "cpu": "3m", "memory": "1Mi" } }] },
            { "metadata": { "name": "unlisted" }, "containers": [{ "name": "a", "usage": { "cpu": "9", "memory": "9Gi" } }] }
        ] });
        (pods, deployments, list)
    }

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn pod_metrics_are_summed_per_pod_against_requests_and_limits() {
        let (pods, deployments, list) = recorded();
        let usage = pod_usage(&list, &pods, &deployments);
        let names: Vec<_> = usage.iter().map(|pod| pod.pod.as_str()).collect();
        assert_eq!(names, ["db-0", "free", "web-7d9f-a", "web-7d9f-b"], "only pods the identity may list");
        assert_eq!(
            usage[2],
            PodUsage {
                pod: "web-7d9f-a".into(),
                owner: Some(Owner { kind: "Deployment", name: "web".into() }),
                cpu: Measured { used: 300, request: Some(200), limit: Some(1000) },
                memory: Measured { used: 256 * MIB, request: Some(128 * MIB), limit: Some(512 * MIB) },
            }
        );
        assert_eq!((usage[2].cpu.percent_of_request(), usage[2].cpu.percent_of_limit()), (Some(150), Some(30)));
        assert_eq!((usage[2].memory.percent_of_request(), usage[2].memory.percent_of_limit()), (Some(200), Some(50)));
        let db = &usage[0];
        assert_eq!(db.owner, Some(Owner { kind: "StatefulSet", name: "db".into() }));
        assert_eq!(db.cpu, Measured { used: 1000, request: Some(1000), limit: None }, "no limit is no limit");
        assert_eq!(db.memory, Measured { used: 1024 * MIB, request: None, limit: None }, "nor a request");
        assert_eq!((db.memory.percent_of_request(), db.memory.percent_of_limit()), (None, None));
        assert_eq!((usage[1].owner.as_ref(), usage[1].cpu.used), (None, 3), "a bare pod belongs to no workload");
    }

    #[test]
    fn a_workload_is_the_sum_of_its_pods_and_reserves_only_what_each_pod_names() {
        let (pods, deployments, list) = recorded();
        let usage = measured(&list, &pods, &deployments);
        assert_eq!(
            usage.workloads,
            [
                WorkloadUsage {
                    owner: Owner { kind: "Deployment", name: "web".into() },
                    pods: 2,
                    cpu: Measured { used: 400, request: Some(400), limit: Some(1500) },
                    memory: Measured { used: 320 * MIB, request: Some(256 * MIB), limit: Some(768 * MIB) },
                },
                WorkloadUsage {
                    owner: Owner { kind: "StatefulSet", name: "db".into() },
                    pods: 1,
                    cpu: Measured { used: 1000, request: Some(1000), limit: None },
                    memory: Measured { used: 1024 * MIB, request: None, limit: None },
                },
            ]
        );
        assert_eq!((usage.cpu_millicores, usage.memory_bytes), (1403, 1345 * MIB), "every listed pod, in all");
        let no_deployment = pod_usage(&list, &pods, &[]);
        assert!(no_deployment.iter().all(|pod| pod.owner.as_ref().is_none_or(|o| o.kind == "StatefulSet")));
    }

    #[test]
    fn the_quota_shows_cpu_and_memory_in_use_now_or_says_metrics_are_unavailable() {
        let quota: ResourceQuota = serde_json::from_value(json!({ "metadata": { "name": "q" }, "status": {
            "hard": { "pods": "10", "requests.cpu": "2", "limits.memory": "4Gi", "cpu": "0" },
            "used": { "pods": "3", "requests.cpu": "1500m" } } }))
        .expect("quota");
        let (pods, deployments, list) = recorded();
        let mut lines = quota_use(&[quota]);
        in_use_now(&mut lines, &Metrics::Available(measured(&list, &pods, &deployments)));
        let in_use: Vec<_> = lines.iter().map(|line| (line.resource.as_str(), line.in_use)).collect();
        assert_eq!(
            in_use,
            [
                ("cpu", InUseNow::Cpu { millicores: 1403, percent: 0 }),
                ("limits.memory", InUseNow::Memory { bytes: 1345 * MIB, percent: 32 }),
                ("pods", InUseNow::NotMeasured),
                ("requests.cpu", InUseNow::Cpu { millicores: 1403, percent: 70 }),
            ]
        );
        in_use_now(&mut lines, &Metrics::Unavailable);
        let unavailable: Vec<_> = lines.iter().map(|line| line.in_use).collect();
        assert_eq!(
            unavailable,
            [InUseNow::Unavailable, InUseNow::Unavailable, InUseNow::NotMeasured, InUseNow::Unavailable],
            "never zeros"
        );
    }
}
