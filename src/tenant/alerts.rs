//! What is abnormal in a virtual cluster, read from the objects Kubernetes already keeps (pods, Deployments, events,
//! the quota, claims): no metrics server needed. A pure function of those objects, so every page shows the same
//! alerts and tests feed it recorded objects.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Event, PersistentVolumeClaim, Pod, ResourceQuota};

use crate::catalog::quantity;

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Something does not run or cannot start; the tenant has to act.
    Critical,
    /// Something degrades or will soon fail.
    Warning,
}

/// What kind of trouble an alert reports; each kind has its own advice in every language's translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AlertKind {
    /// A container keeps crashing and Kubernetes waits longer and longer before restarting it.
    CrashLoop,
    /// A container's image cannot be pulled.
    ImagePull,
    /// A container cannot be created from its configuration (a missing ConfigMap or Secret key, ...).
    ContainerConfig,
    /// A container was killed for using more memory than its limit.
    OutOfMemory,
    /// A Deployment's rollout made no progress within its deadline.
    RolloutStuck,
    /// A Deployment cannot create its pods (quota, admission).
    ReplicaFailure,
    /// A pod cannot be placed on any node.
    FailedScheduling,
    /// A controller could not create an object (often refused by the quota).
    FailedCreate,
    /// A container's probe fails.
    Unhealthy,
    /// A quota resource is used up: new objects needing it are refused.
    QuotaExhausted,
    /// A quota resource is 80 % used or more.
    QuotaNearlyExhausted,
    /// A volume claim waits for a volume.
    ClaimPending,
    /// A container has restarted several times lately, though it runs now.
    Restarting,
    /// An autoscaler cannot scale its target (no metrics, no target, refused).
    AutoscalerStuck,
    /// An object of the virtual cluster's isolation (quota, limits, network policy, Pod Security labels, the broker's
    /// role bindings) was deleted or changed outside the broker, and the broker put it back (its `Repaired` Event).
    Repaired,
}

/// One abnormal thing: what it is, which object, how urgent, and the cluster's own words about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// What kind of trouble; the dashboard says what to do about it.
    pub kind: AlertKind,
    /// How urgent.
    pub severity: Severity,
    /// The object, as `Kind/name` (a quota alert: `ResourceQuota/<name> <resource>`).
    pub object: String,
    /// What the cluster says about it (a status message, an event's message, usage against the limit).
    pub detail: String,
}

/// The objects of one namespace the classifier looks at.
#[derive(Debug, Default, Clone, Copy)]
pub struct Observed<'a> {
    /// Pods.
    pub pods: &'a [Pod],
    /// Deployments.
    pub deployments: &'a [Deployment],
    /// Events (only warnings count).
    pub events: &'a [Event],
    /// ResourceQuotas.
    pub quotas: &'a [ResourceQuota],
    /// PersistentVolumeClaims.
    pub claims: &'a [PersistentVolumeClaim],
    /// HorizontalPodAutoscalers.
    pub autoscalers: &'a [HorizontalPodAutoscaler],
    /// Now: how recent a restart is.
    pub now: Option<jiff::Timestamp>,
}

/// Restarts that make a running container worth a warning...
const RESTARTS_WORTH_A_WARNING: i32 = 3;
/// ...when the last one is this recent (seconds).
const RECENT_RESTART_SECONDS: i64 = 15 * 60;

/// The share of a quota resource from which its use is worth a warning.
const NEARLY_EXHAUSTED_PERCENT: i128 = 80;

/// Every alert the objects show, most urgent first, one per kind and object.
pub fn classify(observed: Observed<'_>) -> Vec<Alert> {
    let mut alerts = Vec::new();
    observed.pods.iter().for_each(|pod| pod_alerts(pod, observed.now, &mut alerts));
    observed.deployments.iter().for_each(|deployment| deployment_alerts(deployment, &mut alerts));
    // The newest event first: of several about one object, the alert tells the latest.
    let mut events: Vec<&Event> = observed.events.iter().collect();
    events.sort_by_key(|event| std::cmp::Reverse(event_time(event)));
    events.into_iter().for_each(|event| event_alerts(event, &mut alerts));
    observed.quotas.iter().for_each(|quota| quota_alerts(quota, &mut alerts));
    observed.claims.iter().for_each(|claim| claim_alerts(claim, &mut alerts));
    observed.autoscalers.iter().for_each(|autoscaler| autoscaler_alerts(autoscaler, &mut alerts));
    let mut seen = BTreeSet::new();
    alerts.retain(|alert| seen.insert((alert.kind, alert.object.clone())));
    alerts.sort_by(|a, b| (a.severity, a.kind, &a.object).cmp(&(b.severity, b.kind, &b.object)));
    alerts
}

fn name_of(metadata: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    metadata.name.as_deref().unwrap_or("?")
}

fn pod_alerts(pod: &Pod, now: Option<jiff::Timestamp>, alerts: &mut Vec<Alert>) {
    let Some(status) = &pod.status else { return };
    let containers = status.init_container_statuses.iter().flatten().chain(status.container_statuses.iter().flatten());
    for container in containers {
        let object = format!("Pod/{} ({})", name_of(&pod.metadata), container.name);
        let waiting = container.state.as_ref().and_then(|state| state.waiting.as_ref());
        if let Some(waiting) = waiting {
            let kind = match waiting.reason.as_deref() {
                Some("CrashLoopBackOff") => Some(AlertKind::CrashLoop),
                Some("ImagePullBackOff" | "ErrImagePull" | "InvalidImageName") => Some(AlertKind::ImagePull),
                Some("CreateContainerConfigError" | "CreateContainerError") => Some(AlertKind::ContainerConfig),
                _ => None,
            };
            if let Some(kind) = kind {
                let reason = waiting.reason.as_deref().unwrap_or_default();
                let detail = match waiting.message.as_deref() {
                    Some(message) => format!("{reason}: {message}"),
                    None => reason.to_owned(),
                };
                alerts.push(Alert { kind, severity: Severity::Critical, object: object.clone(), detail });
            }
        }
        let last = container.last_state.as_ref().and_then(|state| state.terminated.as_ref());
        if let Some(terminated) = last.filter(|terminated| terminated.reason.as_deref() == Some("OOMKilled")) {
            let detail = format!("exit code {}, {} restart(s)", terminated.exit_code, container.restart_count);
            alerts.push(Alert { kind: AlertKind::OutOfMemory, severity: Severity::Warning, object, detail });
            continue;
        }
        // Restarts that piled up lately, on a container that is not (or no longer) waiting in a crash loop.
        let recent = |finished: &jiff::Timestamp| {
            now.is_some_and(|now| now.as_second() - finished.as_second() <= RECENT_RESTART_SECONDS)
        };
        let last_restart = last.and_then(|terminated| terminated.finished_at.as_ref()).map(|time| time.0);
        if container.restart_count >= RESTARTS_WORTH_A_WARNING
            && waiting.is_none()
            && last_restart.as_ref().is_some_and(recent)
        {
            let terminated =
                last.map(|t| format!(", last exit code {} ({})", t.exit_code, t.reason.as_deref().unwrap_or("?")));
            let detail = format!("{} restarts{}", container.restart_count, terminated.unwrap_or_default());
            alerts.push(Alert { kind: AlertKind::Restarting, severity: Severity::Warning, object, detail });
        }
    }
}

fn deployment_alerts(deployment: &Deployment, alerts: &mut Vec<Alert>) {
    let conditions = deployment.status.as_ref().and_then(|status| status.conditions.as_ref());
    for condition in conditions.into_iter().flatten() {
        let kind = match (condition.type_.as_str(), condition.status.as_str(), condition.reason.as_deref()) {
            ("Progressing", "False", Some("ProgressDeadlineExceeded")) => AlertKind::RolloutStuck,
            ("ReplicaFailure", "True", _) => AlertKind::ReplicaFailure,
            _ => continue,
        };
        alerts.push(Alert {
            kind,
            severity: Severity::Critical,
            object: format!("Deployment/{}", name_of(&deployment.metadata)),
            detail: condition.message.clone().unwrap_or_default(),
        });
    }
}

fn event_alerts(event: &Event, alerts: &mut Vec<Alert>) {
    if event.type_.as_deref() != Some("Warning") {
        return;
    }
    let (kind, severity) = match event.reason.as_deref() {
        Some("FailedScheduling") => (AlertKind::FailedScheduling, Severity::Critical),
        Some("FailedCreate") => (AlertKind::FailedCreate, Severity::Critical),
        Some("Unhealthy") => (AlertKind::Unhealthy, Severity::Warning),
        Some(crate::lifecycle::REASON_REPAIRED) => (AlertKind::Repaired, Severity::Warning),
        _ => return,
    };
    let involved = &event.involved_object;
    let object = format!("{}/{}", involved.kind.as_deref().unwrap_or("?"), involved.name.as_deref().unwrap_or("?"));
    let mut detail = event.message.clone().unwrap_or_default();
    if kind == AlertKind::Repaired
        && let Some(time) = event_time(event)
    {
        // When it was restored: the tenant compares it with what they saw fail.
        detail = format!("{detail} ({})", time.strftime("%Y-%m-%d %H:%M:%S UTC"));
    }
    alerts.push(Alert { kind, severity, object, detail });
}

/// When an event last happened, as far as it says.
fn event_time(event: &Event) -> Option<jiff::Timestamp> {
    let last = event.last_timestamp.as_ref().map(|time| time.0);
    let created = || event.metadata.creation_timestamp.as_ref().map(|time| time.0);
    last.or(event.event_time.as_ref().map(|time| time.0)).or_else(created)
}

fn quota_alerts(quota: &ResourceQuota, alerts: &mut Vec<Alert>) {
    let Some(status) = &quota.status else { return };
    let (Some(hard), Some(used)) = (&status.hard, &status.used) else { return };
    for (resource, limit) in hard {
        let Some(percent) = used.get(resource).and_then(|used| percent_used(&used.0, &limit.0)) else { continue };
        let (kind, severity) = match percent {
            100.. => (AlertKind::QuotaExhausted, Severity::Critical),
            NEARLY_EXHAUSTED_PERCENT.. => (AlertKind::QuotaNearlyExhausted, Severity::Warning),
            _ => continue,
        };
        let object = format!("ResourceQuota/{} {resource}", name_of(&quota.metadata));
        let detail = format!("{} of {} ({percent} %)", used[resource].0, limit.0);
        alerts.push(Alert { kind, severity, object, detail });
    }
}

/// Use of a quota resource in whole percent of its limit (rounded down); `None` when either is not a quantity or the
/// limit is zero.
pub fn percent_used(used: &str, hard: &str) -> Option<i128> {
    let (used, hard) = (quantity::parse(used)?, quantity::parse(hard)?);
    (hard.0 > 0).then(|| used.0.saturating_mul(100) / hard.0)
}

fn claim_alerts(claim: &PersistentVolumeClaim, alerts: &mut Vec<Alert>) {
    if claim.status.as_ref().and_then(|status| status.phase.as_deref()) != Some("Pending") {
        return;
    }
    alerts.push(Alert {
        kind: AlertKind::ClaimPending,
        severity: Severity::Warning,
        object: format!("PersistentVolumeClaim/{}", name_of(&claim.metadata)),
        detail: "waiting for a volume".to_owned(),
    });
}

fn autoscaler_alerts(autoscaler: &HorizontalPodAutoscaler, alerts: &mut Vec<Alert>) {
    let conditions = autoscaler.status.as_ref().and_then(|status| status.conditions.as_ref());
    for condition in conditions.into_iter().flatten() {
        let stuck =
            matches!((condition.type_.as_str(), condition.status.as_str()), ("AbleToScale" | "ScalingActive", "False"));
        if stuck {
            let reason = condition.reason.as_deref().unwrap_or(&condition.type_);
            let detail = format!("{reason}: {}", condition.message.as_deref().unwrap_or_default());
            let object = format!("HorizontalPodAutoscaler/{}", name_of(&autoscaler.metadata));
            alerts.push(Alert { kind: AlertKind::AutoscalerStuck, severity: Severity::Warning, object, detail });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
        serde_json::from_value(value).expect("a recorded object")
    }

    /// A pod as the apiserver records one whose container crash-loops after having been OOM-killed.
    fn crash_looping_pod() -> Pod {
        object(json!({
            "metadata": { "name": "web-1", "namespace": "caas-a" },
            "status": { "phase": "Running", "containerStatuses": [{
                "name": "web", "image": "example/web:1", "imageID": "", "ready": false, "restartCount": 5,
                "state": { "waiting": { "reason": "CrashLoopBackOff",
                                        "message": "back-off 2m40s restarting failed container=web" } },
                "lastState": { "terminated": { "exitCode": 137, "reason": "OOMKilled" } }
            }]}
        }))
    }

    fn waiting_pod(name: &str, reason: &str) -> Pod {
        object(json!({
            "metadata": { "name": name },
            "status": { "phase": "Pending", "containerStatuses": [{
                "name": "app", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                "state": { "waiting": { "reason": reason } } }]}
        }))
    }

    #[test]
    fn containers_waiting_for_a_bad_reason_are_critical_and_oom_kills_warned() {
        let pods = [
            crash_looping_pod(),
            waiting_pod("pull", "ErrImagePull"),
            waiting_pod("cfg", "CreateContainerConfigError"),
        ];
        let alerts = classify(Observed { pods: &pods, ..Observed::default() });
        let kinds: Vec<_> = alerts.iter().map(|a| (a.kind, a.severity, a.object.as_str())).collect();
        assert_eq!(
            kinds,
            [
                (AlertKind::CrashLoop, Severity::Critical, "Pod/web-1 (web)"),
                (AlertKind::ImagePull, Severity::Critical, "Pod/pull (app)"),
                (AlertKind::ContainerConfig, Severity::Critical, "Pod/cfg (app)"),
                (AlertKind::OutOfMemory, Severity::Warning, "Pod/web-1 (web)"),
            ]
        );
        assert_eq!(alerts[0].detail, "CrashLoopBackOff: back-off 2m40s restarting failed container=web");
        assert_eq!(alerts[1].detail, "ErrImagePull", "the reason alone when there is no message");
    }

    #[test]
    fn healthy_objects_raise_nothing() {
        let pod: Pod = object(json!({ "metadata": { "name": "ok" }, "status": { "phase": "Running",
            "containerStatuses": [{ "name": "a", "image": "x", "imageID": "", "ready": true, "restartCount": 0,
                                    "state": { "running": {} } }] } }));
        let deployment: Deployment = object(json!({ "metadata": { "name": "d" }, "status": { "conditions": [
            { "type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable" },
            { "type": "Available", "status": "True" } ] } }));
        let normal: Event = object(json!({ "metadata": { "name": "e" }, "involvedObject": {}, "type": "Normal",
                                          "reason": "Scheduled" }));
        let quota: ResourceQuota = object(json!({ "metadata": { "name": "q" },
            "status": { "hard": { "pods": "10" }, "used": { "pods": "7" } } }));
        let observed = Observed {
            pods: &[pod],
            deployments: &[deployment],
            events: &[normal],
            quotas: &[quota],
            ..Observed::default()
        };
        assert_eq!(classify(observed), []);
    }

    #[test]
    fn stuck_and_failing_deployments_are_critical() {
        let deployment: Deployment = object(json!({ "metadata": { "name": "api" }, "status": { "conditions": [
            { "type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
              "message": "ReplicaSet \"api-1\" has timed out progressing." },
            { "type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
              "message": "pods \"api-1-x\" is forbidden: exceeded quota: caas-quota" } ] } }));
        let alerts = classify(Observed { deployments: &[deployment], ..Observed::default() });
        let kinds: Vec<_> = alerts.iter().map(|a| (a.kind, a.object.as_str())).collect();
        assert_eq!(kinds, [(AlertKind::RolloutStuck, "Deployment/api"), (AlertKind::ReplicaFailure, "Deployment/api")]);
        assert!(alerts[1].detail.contains("exceeded quota"));
    }

    #[test]
    fn warning_events_that_matter_are_kept_once_per_object() {
        let event = |reason: &str, kind: &str, name: &str, type_: &str| -> Event {
            object(json!({ "metadata": { "name": format!("{name}.{reason}") }, "type": type_, "reason": reason,
                           "message": format!("{reason} says why"),
                           "involvedObject": { "kind": kind, "name": name } }))
        };
        let events = [
            event("FailedScheduling", "Pod", "big", "Warning"),
            event("FailedScheduling", "Pod", "big", "Warning"),
            event("FailedCreate", "ReplicaSet", "api-1", "Warning"),
            event("Unhealthy", "Pod", "web-1", "Warning"),
            event("BackOff", "Pod", "web-1", "Warning"),
            event("Unhealthy", "Pod", "web-2", "Normal"),
        ];
        let alerts = classify(Observed { events: &events, ..Observed::default() });
        let kinds: Vec<_> = alerts.iter().map(|a| (a.kind, a.severity, a.object.as_str())).collect();
        assert_eq!(
            kinds,
            [
                (AlertKind::FailedScheduling, Severity::Critical, "Pod/big"),
                (AlertKind::FailedCreate, Severity::Critical, "ReplicaSet/api-1"),
                (AlertKind::Unhealthy, Severity::Warning, "Pod/web-1"),
            ]
        );
    }

    #[test]
    fn quota_use_warns_from_80_percent_and_is_critical_when_used_up() {
        let quota: ResourceQuota = object(json!({ "metadata": { "name": "caas-quota" }, "status": {
            "hard": { "pods": "10", "requests.cpu": "2", "requests.memory": "4Gi", "services": "5" },
            "used": { "pods": "10", "requests.cpu": "1600m", "requests.memory": "1Gi", "services": "0" } } }));
        let alerts = classify(Observed { quotas: &[quota], ..Observed::default() });
        let kinds: Vec<_> = alerts.iter().map(|a| (a.kind, a.object.as_str(), a.detail.as_str())).collect();
        assert_eq!(
            kinds,
            [
                (AlertKind::QuotaExhausted, "ResourceQuota/caas-quota pods", "10 of 10 (100 %)"),
                (AlertKind::QuotaNearlyExhausted, "ResourceQuota/caas-quota requests.cpu", "1600m of 2 (80 %)"),
            ]
        );
        assert_eq!(percent_used("1", "0"), None, "a zero limit is not a share");
        assert_eq!(percent_used("lots", "1"), None);
    }

    #[test]
    fn pending_claims_are_warned() {
        let pending: PersistentVolumeClaim =
            object(json!({ "metadata": { "name": "data-0" }, "status": { "phase": "Pending" } }));
        let bound: PersistentVolumeClaim =
            object(json!({ "metadata": { "name": "data-1" }, "status": { "phase": "Bound" } }));
        let alerts = classify(Observed { claims: &[pending, bound], ..Observed::default() });
        assert_eq!(alerts.len(), 1);
        assert_eq!(
            (alerts[0].kind, alerts[0].object.as_str()),
            (AlertKind::ClaimPending, "PersistentVolumeClaim/data-0")
        );
    }

    #[test]
    fn recent_repeated_restarts_are_warned_and_old_or_few_are_not() {
        let now: jiff::Timestamp = "2026-12-01T10:00:00Z".parse().expect("time");
        let pod = |name: &str, restarts: i32, finished: &str| -> Pod {
            object(json!({ "metadata": { "name": name }, "status": { "containerStatuses": [{
                "name": "web", "image": "x", "imageID": "", "ready": true, "restartCount": restarts,
                "state": { "running": { "startedAt": finished } },
                "lastState": { "terminated": { "exitCode": 2, "reason": "Error", "finishedAt": finished } } }] } }))
        };
        let pods = [
            pod("flapping", 4, "2026-12-01T09:55:00Z"),
            pod("long-ago", 9, "2026-12-01T08:00:00Z"),
            pod("once", 1, "2026-12-01T09:59:00Z"),
        ];
        let alerts = classify(Observed { pods: &pods, now: Some(now), ..Observed::default() });
        let kinds: Vec<_> = alerts.iter().map(|a| (a.kind, a.object.as_str(), a.detail.as_str())).collect();
        assert_eq!(kinds, [(AlertKind::Restarting, "Pod/flapping (web)", "4 restarts, last exit code 2 (Error)")]);
    }

    #[test]
    fn autoscalers_that_cannot_scale_are_warned() {
        let stuck: HorizontalPodAutoscaler = object(json!({ "metadata": { "name": "web" },
            "spec": { "scaleTargetRef": { "kind": "Deployment", "name": "web" }, "maxReplicas": 3 },
            "status": { "desiredReplicas": 0, "conditions": [
                { "type": "AbleToScale", "status": "True", "reason": "SucceededGetScale" },
                { "type": "ScalingActive", "status": "False", "reason": "FailedGetResourceMetric",
                  "message": "the HPA was unable to compute the replica count: unable to get metrics" } ] } }));
        let fine: HorizontalPodAutoscaler = object(json!({ "metadata": { "name": "api" },
            "spec": { "scaleTargetRef": { "kind": "Deployment", "name": "api" }, "maxReplicas": 3 },
            "status": { "desiredReplicas": 1, "conditions": [
                { "type": "ScalingActive", "status": "True", "reason": "ValidMetricFound" } ] } }));
        let alerts = classify(Observed { autoscalers: &[stuck, fine], ..Observed::default() });
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(
            (alerts[0].kind, alerts[0].object.as_str()),
            (AlertKind::AutoscalerStuck, "HorizontalPodAutoscaler/web")
        );
        assert!(alerts[0].detail.starts_with("FailedGetResourceMetric: the HPA was unable"), "{alerts:?}");
    }

    #[test]
    fn a_repair_is_told_with_what_was_restored_and_when_the_latest_first() {
        let repaired = |name: &str, at: &str, message: &str| -> Event {
            object(json!({ "metadata": { "name": name }, "type": "Warning", "reason": "Repaired",
                "involvedObject": { "kind": "NetworkPolicy", "name": "caas-default-deny" },
                "message": message, "lastTimestamp": at }))
        };
        let events = [
            repaired("a", "2026-12-07T05:00:00Z", "NetworkPolicy/caas-default-deny was changed"),
            repaired("b", "2026-12-07T06:30:15Z", "NetworkPolicy/caas-default-deny was deleted"),
        ];
        let alerts = classify(Observed { events: &events, ..Observed::default() });
        assert_eq!(alerts.len(), 1, "one alert per object: {alerts:?}");
        assert_eq!(
            (alerts[0].kind, alerts[0].severity, alerts[0].object.as_str(), alerts[0].detail.as_str()),
            (
                AlertKind::Repaired,
                Severity::Warning,
                "NetworkPolicy/caas-default-deny",
                "NetworkPolicy/caas-default-deny was deleted (2026-12-07 06:30:15 UTC)"
            )
        );
    }
}
