//! How far a workload has come, read from its pods: scheduled, installing (the SteamCMD step), starting the display
//! (a session's container runs, its startup probe has not passed), starting the application (started, not ready: a
//! session's application window is not on the display yet), ready; or why it failed (image pull, crash loop, quota
//! refused), in words a developer can act on.

use k8s_openapi::api::core::v1::{ContainerStateTerminated, ContainerStatus, Pod};

use super::model::{LastOperation, OperationState};

/// Waiting reasons that will not fix themselves.
const IMAGE_PULL: [&str; 4] = ["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"];
const CRASHING: [&str; 2] = ["CrashLoopBackOff", "CreateContainerConfigError"];

/// What the cluster refused a workload, from its Warning events, so that last_operation says it in the cluster's
/// words instead of a bare "waiting".
#[derive(Debug, Clone, Copy, Default)]
pub struct Refusals<'a> {
    /// The latest refusal of the controller to create a pod (a `FailedCreate` event, e.g. "exceeded quota"): the
    /// operation fails, as the controller does not retry it by itself soon.
    pub pod_creation: Option<&'a str>,
    /// The latest reason a volume claim of the workload cannot bind (`ProvisioningFailed`, `FailedBinding`: no
    /// volume and no storage class, a provisioner that cannot serve the node): the operation goes on, since an
    /// operator who adds a volume or a storage class lets it finish, but says why it waits.
    pub volume_claim: Option<&'a str>,
}

/// The state of a workload that should have `expected` ready pods, given its pods and what the cluster refused it.
pub fn progress(expected: i32, pods: &[Pod], refusals: Refusals<'_>) -> LastOperation {
    if expected == 0 {
        return if pods.is_empty() {
            LastOperation::new(OperationState::Succeeded, "stopped; the volume is kept")
        } else {
            LastOperation::new(OperationState::InProgress, "stopping")
        };
    }
    for pod in pods {
        if let Some(failure) = failure(pod) {
            return LastOperation::new(OperationState::Failed, failure);
        }
    }
    if (pods.len() as i32) < expected
        && let Some(message) = refusals.pod_creation
    {
        return LastOperation::new(OperationState::Failed, format!("the cluster refused to create a pod: {message}"));
    }
    let ready = pods.iter().filter(|pod| is_ready(pod)).count() as i32;
    if ready >= expected {
        let restarts = pods.iter().filter_map(out_of_memory).next().map(|why| format!("; {why}")).unwrap_or_default();
        return LastOperation::new(OperationState::Succeeded, format!("{ready} of {expected} pods ready{restarts}"));
    }
    if let Some(message) = refusals.volume_claim {
        return LastOperation::new(
            OperationState::InProgress,
            format!(
                "waiting for a volume, which the cluster cannot provide yet: {message}; {ready} of {expected} pods ready"
            ),
        );
    }
    let stage = pods.iter().map(stage).min().unwrap_or(Stage::Creating);
    // While a pod waits for a node, the scheduler's own words say why (no node fits, an unbound volume claim, ...).
    let why = match stage {
        Stage::Scheduling => pods
            .iter()
            .find_map(unschedulable)
            .map(|why| format!(": {}", why.trim_end_matches('.')))
            .unwrap_or_default(),
        _ => String::new(),
    };
    LastOperation::new(
        OperationState::InProgress,
        format!("{}{why}; {ready} of {expected} pods ready", stage.describe()),
    )
}

/// The scheduler's message on a pod it could not place.
fn unschedulable(pod: &Pod) -> Option<String> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    let scheduled = conditions.iter().find(|c| c.type_ == "PodScheduled" && c.status != "True")?;
    scheduled.message.clone().filter(|message| !message.is_empty())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Creating,
    Scheduling,
    Installing,
    Starting,
    StartingDisplay,
    StartingApplication,
    Ready,
}

impl Stage {
    fn describe(self) -> &'static str {
        match self {
            Stage::Creating => "creating the pod",
            Stage::Scheduling => "waiting for a node",
            Stage::Installing => "installing the application with SteamCMD",
            Stage::Starting => "starting",
            Stage::StartingDisplay => "starting the display",
            Stage::StartingApplication => "starting the application",
            Stage::Ready => "ready",
        }
    }
}

fn condition(pod: &Pod, kind: &str) -> Option<bool> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    conditions.iter().find(|c| c.type_ == kind).map(|c| c.status == "True")
}

fn is_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none() && condition(pod, "Ready") == Some(true)
}

fn stage(pod: &Pod) -> Stage {
    if is_ready(pod) {
        return Stage::Ready;
    }
    if condition(pod, "PodScheduled") != Some(true) {
        return if pod.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some() {
            Stage::Starting
        } else {
            Stage::Scheduling
        };
    }
    let status = pod.status.as_ref();
    let init_done = status.and_then(|s| s.init_container_statuses.as_ref()).is_none_or(|statuses| {
        statuses
            .iter()
            .all(|s| s.state.as_ref().and_then(|st| st.terminated.as_ref()).is_some_and(|t| t.exit_code == 0))
    });
    if !init_done {
        return Stage::Installing;
    }
    // Every container runs: started once its startup probe passed (a session's: its display is up; a container
    // without one is started as soon as it runs), then ready once its readiness probe passes.
    let containers = status.and_then(|s| s.container_statuses.as_deref()).unwrap_or_default();
    let running = |c: &ContainerStatus| c.state.as_ref().is_some_and(|state| state.running.is_some());
    if containers.is_empty() || !containers.iter().all(running) {
        Stage::Starting
    } else if containers.iter().any(|c| c.started == Some(false)) {
        Stage::StartingDisplay
    } else {
        Stage::StartingApplication
    }
}

fn statuses(pod: &Pod) -> impl Iterator<Item = &ContainerStatus> {
    let status = pod.status.as_ref();
    let init = status.and_then(|s| s.init_container_statuses.as_deref()).unwrap_or_default();
    let main = status.and_then(|s| s.container_statuses.as_deref()).unwrap_or_default();
    init.iter().chain(main)
}

/// The reason the kubelet gives a container the kernel killed for going over its memory limit.
const OOM_KILLED: &str = "OOMKilled";

/// A container of a ready pod that was killed for its memory since it started, said so (the app runs again, but its
/// memory limit is too tight for it).
fn out_of_memory(pod: &Pod) -> Option<String> {
    statuses(pod).find_map(|container| {
        let last = container.last_state.as_ref()?.terminated.as_ref()?;
        (last.reason.as_deref() == Some(OOM_KILLED)).then(|| {
            format!(
                "container {} restarted {} times, last because it went over its memory limit ({OOM_KILLED})",
                container.name, container.restart_count
            )
        })
    })
}

/// How a container's last run ended, said after its state: " (last exit code 137, OOMKilled: ...)".
fn last_exit(terminated: &ContainerStateTerminated) -> String {
    match terminated.reason.as_deref() {
        Some(OOM_KILLED) => format!(" (last exit code {}, {OOM_KILLED}: over its memory limit)", terminated.exit_code),
        _ => format!(" (last exit code {})", terminated.exit_code),
    }
}

/// Why a pod will not become ready by itself, if it will not.
fn failure(pod: &Pod) -> Option<String> {
    for container in statuses(pod) {
        let waiting = container.state.as_ref().and_then(|state| state.waiting.as_ref());
        let reason = waiting.and_then(|w| w.reason.as_deref()).unwrap_or_default();
        let message = waiting.and_then(|w| w.message.as_deref()).unwrap_or("");
        if IMAGE_PULL.contains(&reason) {
            return Some(format!("image pull failed for container {} ({reason}): {message}", container.name));
        }
        if CRASHING.contains(&reason) {
            let exit = container.last_state.as_ref().and_then(|state| state.terminated.as_ref());
            let exit = exit.map(last_exit).unwrap_or_default();
            return Some(format!("container {} is crashing ({reason}){exit}: {message}", container.name));
        }
        // Between two starts the kubelet may show the failed run itself (terminated) instead of its back-off (a
        // CrashLoopBackOff wait): a container that failed again after a restart is crash looping all the same.
        let failed_again = container.state.as_ref().and_then(|state| state.terminated.as_ref());
        if let Some(terminated) = failed_again.filter(|t| t.exit_code != 0 && container.restart_count >= 1) {
            return Some(format!(
                "container {} is crashing (restarted {} times){}",
                container.name,
                container.restart_count,
                last_exit(terminated)
            ));
        }
    }
    let status = pod.status.as_ref()?;
    if status.phase.as_deref() == Some("Failed") {
        return Some(format!("the pod failed: {}", status.message.as_deref().unwrap_or("no message")));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({ "metadata": { "name": "p" }, "spec": { "containers": [] }, "status": status }))
            .expect("pod")
    }

    #[test]
    fn ready_pods_succeed_and_stopped_workloads_succeed_without_pods() {
        let ready = pod(
            json!({ "conditions": [{ "type": "PodScheduled", "status": "True" }, { "type": "Ready", "status": "True" }] }),
        );
        assert_eq!(progress(1, &[ready], Refusals::default()).state, OperationState::Succeeded);
        assert_eq!(progress(0, &[], Refusals::default()).state, OperationState::Succeeded);
        assert_eq!(progress(2, &[], Refusals::default()).state, OperationState::InProgress);
    }

    #[test]
    fn stages_are_reported() {
        let unscheduled =
            pod(json!({ "conditions": [{ "type": "PodScheduled", "status": "False", "reason": "Unschedulable" }] }));
        assert_eq!(
            progress(1, &[unscheduled], Refusals::default()).description.as_deref(),
            Some("waiting for a node; 0 of 1 pods ready")
        );
        let unbound =
            pod(json!({ "conditions": [{ "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims." }] }));
        assert_eq!(
            progress(1, &[unbound], Refusals::default()).description.as_deref(),
            Some(
                "waiting for a node: 0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims; \
                 0 of 1 pods ready"
            )
        );
        let installing = pod(json!({
            "conditions": [{ "type": "PodScheduled", "status": "True" }],
            "initContainerStatuses": [{ "name": "steamcmd", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
                "state": { "running": { "startedAt": "2026-01-01T00:00:00Z" } } }]
        }));
        assert_eq!(
            progress(1, &[installing], Refusals::default()).description.as_deref(),
            Some("installing the application with SteamCMD; 0 of 1 pods ready")
        );
        let session = |started: bool, ready: bool| {
            let ready = if ready { "True" } else { "False" };
            pod(json!({
                "conditions": [{ "type": "PodScheduled", "status": "True" }, { "type": "Ready", "status": ready }],
                "initContainerStatuses": [{ "name": "steamcmd", "ready": false, "restartCount": 0, "image": "i",
                    "imageID": "", "state": { "terminated": { "exitCode": 0 } } }],
                "containerStatuses": [{ "name": "session", "ready": false, "restartCount": 0, "image": "i",
                    "imageID": "", "started": started,
                    "state": { "running": { "startedAt": "2026-01-01T00:00:00Z" } } }]
            }))
        };
        let described = |pod: Pod| progress(1, &[pod], Refusals::default());
        let display = described(session(false, false));
        assert_eq!(display.state, OperationState::InProgress);
        assert_eq!(display.description.as_deref(), Some("starting the display; 0 of 1 pods ready"));
        let application = described(session(true, false));
        assert_eq!(application.state, OperationState::InProgress);
        assert_eq!(application.description.as_deref(), Some("starting the application; 0 of 1 pods ready"));
        let visible = described(session(true, true));
        assert_eq!(visible.state, OperationState::Succeeded, "ready: the application's window is visible");
        let creating = pod(json!({
            "conditions": [{ "type": "PodScheduled", "status": "True" }],
            "containerStatuses": [{ "name": "session", "ready": false, "restartCount": 0, "image": "i",
                "imageID": "", "started": false, "state": { "waiting": { "reason": "ContainerCreating" } } }]
        }));
        assert_eq!(described(creating).description.as_deref(), Some("starting; 0 of 1 pods ready"));
    }

    #[test]
    fn failures_name_their_reason() {
        let pulling = pod(
            json!({ "containerStatuses": [{ "name": "app", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
            "state": { "waiting": { "reason": "ImagePullBackOff", "message": "Back-off pulling image \"nope:1\"" } } }] }),
        );
        let answer = progress(1, &[pulling], Refusals::default());
        assert_eq!(answer.state, OperationState::Failed);
        assert!(
            answer.description.unwrap_or_default().contains("image pull failed for container app (ImagePullBackOff)")
        );
        let crashing = pod(
            json!({ "containerStatuses": [{ "name": "app", "ready": false, "restartCount": 5, "image": "i", "imageID": "",
            "state": { "waiting": { "reason": "CrashLoopBackOff", "message": "back-off 5m0s" } },
            "lastState": { "terminated": { "exitCode": 137 } } }] }),
        );
        assert!(
            progress(1, &[crashing], Refusals::default())
                .description
                .unwrap_or_default()
                .contains("crashing (CrashLoopBackOff) (last exit code 137)")
        );
        let refusals = Refusals {
            pod_creation: Some("pods \"x\" is forbidden: exceeded quota: caas-quota"),
            ..Refusals::default()
        };
        let quota = progress(1, &[], refusals);
        assert_eq!(quota.state, OperationState::Failed);
        assert!(quota.description.unwrap_or_default().contains("exceeded quota"));
    }

    #[test]
    fn out_of_memory_kills_are_named() {
        let status = |state: serde_json::Value, ready: bool| {
            pod(json!({
                "conditions": [{ "type": "PodScheduled", "status": "True" }, { "type": "Ready", "status": if ready { "True" } else { "False" } }],
                "containerStatuses": [{ "name": "app", "ready": ready, "restartCount": 3, "image": "i", "imageID": "",
                "state": state, "lastState": { "terminated": { "exitCode": 137, "reason": "OOMKilled" } } }]
            }))
        };
        let crashing = status(json!({ "waiting": { "reason": "CrashLoopBackOff", "message": "back-off 40s" } }), false);
        let answer = progress(1, &[crashing], Refusals::default());
        assert_eq!(answer.state, OperationState::Failed);
        assert_eq!(
            answer.description.as_deref(),
            Some(
                "container app is crashing (CrashLoopBackOff) (last exit code 137, OOMKilled: over its memory limit): \
                 back-off 40s"
            )
        );
        // The kubelet may show the failed run instead of the back-off between two starts.
        let killed_again = status(
            json!({ "terminated": { "exitCode": 137, "reason": "OOMKilled", "startedAt": "2026-01-01T00:00:00Z" } }),
            false,
        );
        let answer = progress(1, &[killed_again], Refusals::default());
        assert_eq!(answer.state, OperationState::Failed);
        assert_eq!(
            answer.description.as_deref(),
            Some(
                "container app is crashing (restarted 3 times) (last exit code 137, OOMKilled: over its memory limit)"
            )
        );
        let recovered = status(json!({ "running": { "startedAt": "2026-01-01T00:00:00Z" } }), true);
        let answer = progress(1, &[recovered], Refusals::default());
        assert_eq!(answer.state, OperationState::Succeeded);
        assert_eq!(
            answer.description.as_deref(),
            Some(
                "1 of 1 pods ready; container app restarted 3 times, last because it went over its memory limit (OOMKilled)"
            )
        );
    }

    #[test]
    fn a_claim_that_cannot_bind_is_named_until_the_pods_are_ready() {
        let waiting =
            pod(json!({ "conditions": [{ "type": "PodScheduled", "status": "False", "reason": "Unschedulable" }] }));
        let why = "no persistent volumes available for this claim and no storage class is set";
        let refusals = Refusals { volume_claim: Some(why), ..Refusals::default() };
        let answer = progress(1, &[waiting], refusals);
        assert_eq!(answer.state, OperationState::InProgress);
        let expected = format!("waiting for a volume, which the cluster cannot provide yet: {why}; 0 of 1 pods ready");
        assert_eq!(answer.description.as_deref(), Some(expected.as_str()));
        let ready = pod(
            json!({ "conditions": [{ "type": "PodScheduled", "status": "True" }, { "type": "Ready", "status": "True" }] }),
        );
        assert_eq!(progress(1, &[ready], refusals).state, OperationState::Succeeded, "an old event of a bound claim");
    }
}
