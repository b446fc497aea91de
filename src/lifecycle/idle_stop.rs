//! Idle sessions sleep: a streaming session with no viewer for its `idle_stop_minutes` stops itself (its entrypoint
//! writes `idle-stop: …` to the container's termination log and exits), and the broker, which watches its sessions'
//! pods, scales the session to zero with its volume kept and records on the workload's record when and after how many
//! minutes. The record keeps it stopped: every apply of the session (an update that changes something else, another
//! replica) builds it with no pod until an update gives `state` again (the dashboard's Open sends `running`), which
//! wakes it and clears the record.
//!
//! - The broker may watch pods only in tenant namespaces (the dashboard's watch role, bound in each), never
//!   cluster-wide: a watch of the streaming sessions' records (metadata, in the broker's namespace) keeps one watch of
//!   pods per namespace that holds sessions, started with its first session and stopped with its last.
//! - A pod is acted on when its session container's current or last run ended with that message; a message older
//!   than the record's last write (a session woken before its old pod was gone) is not.
//! - Several replicas see the same pod: the record is written over the version read (a server-side apply
//!   precondition), so one of them stops the session and counts it; the others find it stopped.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Weak};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, ContainerStateTerminated, Pod};
use kube::Api;
use kube::api::ListParams;
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watcher};
use tokio::task::AbortHandle;

use super::instances::workload::WorkloadRecord;
use super::{Broker, Result};
use crate::catalog::ServiceKind;
use crate::k8s::names::{
    self, ANNOTATION_CLUSTER_INSTANCE_ID, ANNOTATION_NAMESPACE, ANNOTATION_PROVISIONED, LABEL_INSTANCE,
    LABEL_MANAGED_BY, LABEL_SERVICE, MANAGED_BY,
};

/// How the session container's termination message starts when it stopped for want of a viewer.
pub const IDLE_STOP_MESSAGE: &str = "idle-stop:";
/// The session's container, whose termination says why it stopped.
const SESSION_CONTAINER: &str = "session";

/// A session the broker stopped for want of a viewer: when, and after how many minutes without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdleStop {
    /// When the broker stopped it.
    pub at: jiff::Timestamp,
    /// Minutes without a viewer it was given.
    pub minutes: u32,
}

impl IdleStop {
    /// The record's words for it, as the platform and the dashboard show them.
    pub fn describe(&self) -> String {
        let unit = if self.minutes == 1 { "minute" } else { "minutes" };
        format!("stopped after {} {unit} without a viewer", self.minutes)
    }

    /// Pod-hours saved from when it stopped until `now` (when it is woken or deleted).
    pub fn saved_hours(&self, now: jiff::Timestamp) -> f64 {
        let seconds = now.duration_since(self.at).as_secs_f64();
        seconds.max(0.0) / 3600.0
    }
}

/// The watches' task, once started; it stops when this is dropped (with the broker), and the pod watches with it.
#[derive(Default)]
pub(super) struct IdleWatch(std::sync::OnceLock<Option<AbortHandle>>);

impl Drop for IdleWatch {
    fn drop(&mut self) {
        if let Some(Some(task)) = self.0.get() {
            task.abort();
        }
    }
}

/// A task aborted when this is dropped.
struct Aborting(AbortHandle);

impl Drop for Aborting {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The pod watch of one tenant namespace and the sessions there that keep it.
struct NamespaceWatch {
    sessions: BTreeSet<String>,
    _task: Aborting,
}

impl Broker {
    /// Starts the watch of the streaming sessions' pods that stops the idle ones (nothing when the catalog has no
    /// streaming service). Starting it again does nothing; it stops with the broker. Needs a Tokio runtime.
    pub fn stop_idle_sessions(self: &Arc<Self>) {
        self.idle_watch.0.get_or_init(|| {
            let services: Vec<String> = self
                .catalog
                .services
                .iter()
                .filter(|s| s.broker.kind == ServiceKind::StreamingSession)
                .map(|s| names::label_value(&s.name))
                .collect();
            if services.is_empty() {
                return None;
            }
            // Both counts show from the start, at 0, so that a rate can be taken of them before any stop.
            let metrics = crate::metrics::global();
            metrics.session_idle_stops.inc_by(0);
            metrics.session_idle_saved_pod_hours.inc_by(0.0);
            let selector = format!("{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_SERVICE} in ({})", services.join(","));
            let records =
                Api::<PartialObjectMeta<ConfigMap>>::namespaced(self.client.clone(), &self.options.broker_namespace);
            Some(tokio::spawn(watch_sessions(Arc::downgrade(self), records, selector)).abort_handle())
        });
    }

    /// Scales the session whose pod `pod` stopped for want of a viewer to zero and records it, unless its record
    /// says it was written since (woken) or it is stopped already.
    async fn stop_idle(&self, pod: &Pod, finished: &ContainerStateTerminated) -> Result<()> {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
        let Some(label) = pod.metadata.labels.as_ref().and_then(|labels| labels.get(LABEL_INSTANCE)) else {
            return Ok(());
        };
        let selector = format!("{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_INSTANCE}={label}");
        let listed = self.records.workloads.list_metadata(&ListParams::default().labels(&selector)).await?;
        let found = listed.items.into_iter().find_map(|meta| {
            let instance_id = meta.metadata.annotations.as_ref()?.get(names::ANNOTATION_INSTANCE_ID)?.clone();
            let record = WorkloadRecord::from_meta(&meta.metadata, &instance_id)?;
            (record.namespace == namespace).then_some((record, meta.metadata))
        });
        let Some((record, meta)) = found else { return Ok(()) };
        if !record.stored.provisioned {
            return Ok(());
        }
        let (service, _) = self.workload_service(&record)?;
        if record.idle_stop.is_some() {
            // Recorded, but its pod lives on (the scaling failed after the record was written): scale it now.
            return self.apply_workload(service, &record).await;
        }
        // Written (provisioned, updated, woken) after the session stopped: the message is of a run before that.
        let written =
            meta.annotations.as_ref().and_then(|a| a.get(ANNOTATION_PROVISIONED)?.parse::<jiff::Timestamp>().ok());
        let stopped = finished.finished_at.as_ref().map(|time| time.0);
        if let (Some(written), Some(stopped)) = (written, stopped)
            && stopped < written
        {
            return Ok(());
        }
        let Some(session) = self.streaming_session_of(&record)? else { return Ok(()) };
        if !session.workload.running {
            return Ok(());
        }
        let mut stopped = record.clone();
        stopped.idle_stop = Some(IdleStop { at: jiff::Timestamp::now(), minutes: session.idle_stop_minutes });
        // Over the version read: another replica that stopped it first makes this a conflict.
        if !self.write_workload_record(&stopped, meta.resource_version.clone()).await? {
            return Ok(());
        }
        crate::metrics::global().session_idle_stops.inc();
        tracing::info!(instance = %record.stored.instance_id, namespace, minutes = session.idle_stop_minutes,
            "stopping a streaming session without a viewer; its volume is kept");
        self.apply_workload(service, &stopped).await
    }
}

/// The watch of the sessions' records: keeps one pod watch per tenant namespace that holds sessions.
async fn watch_sessions(broker: Weak<Broker>, records: Api<PartialObjectMeta<ConfigMap>>, selector: String) {
    let mut watching: HashMap<String, NamespaceWatch> = HashMap::new();
    // What a list in progress has shown so far (a first list, or a new one after the watch was lost).
    // By namespace: the virtual cluster it is, and the sessions there.
    let mut listing: Option<HashMap<String, (String, BTreeSet<String>)>> = None;
    let config = watcher::Config::default().labels(&selector);
    let mut events = std::pin::pin!(watcher(records, config).default_backoff());
    while let Some(event) = events.next().await {
        let session = |meta: &PartialObjectMeta<ConfigMap>| {
            let annotations = meta.metadata.annotations.as_ref()?;
            let cluster = annotations.get(ANNOTATION_CLUSTER_INSTANCE_ID)?.clone();
            Some((annotations.get(ANNOTATION_NAMESPACE)?.clone(), cluster, meta.metadata.name.clone()?))
        };
        let Some(owner) = broker.upgrade() else { return };
        match event {
            Ok(Event::Init) => listing = Some(HashMap::new()),
            Ok(Event::InitApply(meta)) => {
                if let (Some(listed), Some((namespace, cluster, name))) = (listing.as_mut(), session(&meta)) {
                    listed.entry(namespace).or_insert_with(|| (cluster, BTreeSet::new())).1.insert(name);
                }
            }
            Ok(Event::InitDone) => {
                let listed = listing.take().unwrap_or_default();
                watching.retain(|namespace, _| listed.contains_key(namespace));
                for (namespace, (cluster, sessions)) in listed {
                    owner.watch_namespace(&mut watching, &broker, &selector, namespace, cluster).sessions = sessions;
                }
            }
            Ok(Event::Apply(meta)) => {
                if let Some((namespace, cluster, name)) = session(&meta) {
                    owner.watch_namespace(&mut watching, &broker, &selector, namespace, cluster).sessions.insert(name);
                }
            }
            Ok(Event::Delete(meta)) => {
                if let Some((namespace, _, name)) = session(&meta)
                    && let Some(watch) = watching.get_mut(&namespace)
                {
                    watch.sessions.remove(&name);
                    if watch.sessions.is_empty() {
                        watching.remove(&namespace);
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "the watch of streaming sessions' records failed; it starts over"),
        }
    }
}

impl Broker {
    /// The pod watch of `namespace`, the namespace of virtual cluster `cluster`, started if it was not.
    fn watch_namespace<'a>(
        &self,
        watching: &'a mut HashMap<String, NamespaceWatch>,
        broker: &Weak<Broker>,
        selector: &str,
        namespace: String,
        cluster: String,
    ) -> &'a mut NamespaceWatch {
        watching.entry(namespace).or_insert_with_key(|namespace| {
            let pods = Api::<Pod>::namespaced(self.client.clone(), namespace);
            let watch = watch_pods(broker.clone(), pods, selector.to_owned(), namespace.clone(), cluster);
            let task = tokio::spawn(watch);
            NamespaceWatch { sessions: BTreeSet::new(), _task: Aborting(task.abort_handle()) }
        })
    }
}

/// The watch of the sessions' pods of one namespace: each one whose session container stopped for want of a viewer
/// is acted on.
async fn watch_pods(broker: Weak<Broker>, pods: Api<Pod>, selector: String, namespace: String, cluster: String) {
    // The broker's right to watch there, which an instance made before the dashboard's live view gets only when its
    // dashboard's first live viewer comes (an idempotent apply, which drift repair keeps in place afterwards).
    if let Some(owner) = broker.upgrade()
        && let Err(error) = owner.apply_dashboard_watch(&namespace, &cluster).await
    {
        tracing::warn!(%error, namespace, "the broker cannot grant itself the watch of a tenant namespace's pods");
    }
    let config = watcher::Config::default().labels(&selector);
    let mut events = std::pin::pin!(watcher(pods, config).default_backoff().applied_objects());
    while let Some(event) = events.next().await {
        let pod = match event {
            Ok(pod) => pod,
            Err(error) => {
                tracing::warn!(%error, namespace, "the watch of streaming sessions' pods failed; it starts over");
                continue;
            }
        };
        let Some(finished) = idle_stopped(&pod) else { continue };
        let Some(broker) = broker.upgrade() else { return };
        if let Err(error) = broker.stop_idle(&pod, finished).await {
            tracing::warn!(%error, pod = pod.metadata.name.as_deref().unwrap_or_default(), namespace,
                "a streaming session without a viewer could not be stopped; its next stop tries again");
        }
    }
}

/// The run of a live pod's session container that ended for want of a viewer: its current state or its last one.
pub(super) fn idle_stopped(pod: &Pod) -> Option<&ContainerStateTerminated> {
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    let session = statuses.iter().find(|status| status.name == SESSION_CONTAINER)?;
    let states = [session.state.as_ref(), session.last_state.as_ref()];
    states.into_iter().flatten().filter_map(|state| state.terminated.as_ref()).find(|terminated| {
        terminated.message.as_deref().is_some_and(|message| message.trim_start().starts_with(IDLE_STOP_MESSAGE))
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(deleting: bool, status: serde_json::Value) -> Pod {
        let mut metadata = json!({ "name": "session-x-0", "namespace": "caas-x" });
        if deleting {
            metadata["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        serde_json::from_value(json!({ "metadata": metadata, "spec": { "containers": [] }, "status": status }))
            .expect("pod")
    }

    fn session(state: serde_json::Value, last_state: serde_json::Value) -> serde_json::Value {
        json!({ "containerStatuses": [{ "name": "session", "ready": false, "restartCount": 1, "image": "i",
            "imageID": "", "state": state, "lastState": last_state }] })
    }

    #[test]
    fn an_idle_stop_is_read_from_the_current_or_the_last_run_of_the_session_container() {
        let message = json!({ "exitCode": 0, "message": "idle-stop: no viewer for 1 minutes" });
        let running = json!({ "running": { "startedAt": "2026-01-01T00:00:00Z" } });
        let ended = pod(false, session(json!({ "terminated": message }), json!({})));
        assert_eq!(idle_stopped(&ended).and_then(|t| t.message.as_deref()), Some("idle-stop: no viewer for 1 minutes"));
        let restarted = pod(false, session(running.clone(), json!({ "terminated": message })));
        assert!(idle_stopped(&restarted).is_some(), "the kubelet restarted it before the broker saw it");
        assert!(idle_stopped(&pod(true, session(running.clone(), json!({ "terminated": message })))).is_none());
        let crashed = json!({ "terminated": { "exitCode": 1, "message": "Xvfb failed" } });
        assert!(idle_stopped(&pod(false, session(running.clone(), crashed))).is_none());
        let other = json!({ "containerStatuses": [{ "name": "sidecar", "ready": false, "restartCount": 0,
            "image": "i", "imageID": "", "state": { "terminated": message } }] });
        assert!(idle_stopped(&pod(false, other)).is_none(), "only the session container says it");
        assert!(idle_stopped(&pod(false, json!({}))).is_none());
    }

    #[test]
    fn an_idle_stop_says_how_long_and_counts_the_hours_it_saved() {
        let at: jiff::Timestamp = "2026-01-01T10:00:00Z".parse().expect("time");
        let stop = IdleStop { at, minutes: 30 };
        assert_eq!(stop.describe(), "stopped after 30 minutes without a viewer");
        assert_eq!(IdleStop { at, minutes: 1 }.describe(), "stopped after 1 minute without a viewer");
        let later: jiff::Timestamp = "2026-01-01T11:30:00Z".parse().expect("time");
        assert!((stop.saved_hours(later) - 1.5).abs() < 1e-9);
        assert_eq!(stop.saved_hours("2026-01-01T09:00:00Z".parse().expect("time")), 0.0, "never negative");
    }
}
