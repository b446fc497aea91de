//! Usage accounting: what each virtual cluster and each workload instance consumed, for an operator who bills
//! tenants or just wants to see who uses the GPUs, and the short per-pod history the dashboard draws.
//!
//! The broker samples every tenant namespace with its own client (the metrics API for use, the pods' requests for
//! what is reserved, claims for storage), integrates the samples over time into hourly buckets per instance, and
//! checkpoints them into records in its own namespace ([`record`]). docs/operations.md says how accurate it is.
//!
//! - Every replica samples; each checkpoint writes over the version read and counts only what lies after the record's
//!   `through`, so a span is counted once whichever replica writes it.
//! - The counters on `/metrics` are the records' lifetime totals, the same on every replica, never going down.

pub mod buckets;
pub mod model;
pub mod record;
pub mod report;
mod sampler;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod};
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::PartialObjectMeta;
use tokio::task::AbortHandle;

pub use model::{PodHistory, UsageSample, UsageTotals};
use record::{Accounted, Kind, LABEL_USAGE_MONTH, MANAGED_BY_USAGE, Pending, RecordHead, UsageRecord, record_name};

use super::Broker;
use crate::catalog::ServiceKind;
use crate::k8s::names::{
    self, ANNOTATION_INSTANCE_ID, ANNOTATION_NAMESPACE, ANNOTATION_ORGANIZATION_GUID, ANNOTATION_SPACE_GUID,
    LABEL_MANAGED_BY, LABEL_ORGANIZATION, LABEL_PLAN, LABEL_SERVICE, LABEL_SPACE,
};
use crate::k8s::{is_conflict, is_not_found, pod_metrics};

/// Tenant namespaces sampled at once.
const CONCURRENT_SAMPLES: usize = 8;
/// Most samples kept per pod for the dashboard (the last hour at most).
const HISTORY_SAMPLES: usize = 120;
/// Most pods per namespace whose history is kept.
const HISTORY_PODS: usize = 50;
/// How often old records are looked for.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// How accounting is paced, from the configuration (`usage.*`).
#[derive(Debug, Clone, Copy)]
pub struct UsageOptions {
    /// Between two samples.
    pub sample: Duration,
    /// Between two checkpoints.
    pub checkpoint: Duration,
    /// Months a record is kept, the current one included.
    pub retention_months: u32,
}

impl UsageOptions {
    /// The longest span counted without a sample at both ends: a restart's gap up to it is counted at the first new
    /// sample's rates, a longer one is not (nor a stall of the sampler as long).
    pub fn gap_bound(&self) -> SignedDuration {
        SignedDuration::try_from(self.checkpoint * 3).unwrap_or(SignedDuration::from_secs(900))
    }
}

/// What accounting holds in this process: what it sampled and has not yet seen checkpointed, and the pods' recent
/// use; the task that samples and checkpoints, which stops with the broker.
#[derive(Default)]
pub(in crate::lifecycle) struct Accounting {
    state: Mutex<State>,
    task: std::sync::OnceLock<AbortHandle>,
}

impl Drop for Accounting {
    fn drop(&mut self) {
        if let Some(task) = self.task.get() {
            task.abort();
        }
    }
}

#[derive(Default)]
struct State {
    /// By instance id.
    tracked: HashMap<String, Tracked>,
    /// By namespace, then pod: the pods' recent use.
    history: HashMap<String, BTreeMap<String, VecDeque<UsageSample>>>,
    /// Whether the metrics API's silence was said in the log (said once, until it answers again).
    metrics_silence_said: bool,
}

struct Tracked {
    who: Accounted,
    pending: Pending,
}

/// An instance to sample: who it is, its namespace, and for a workload its pods' instance label.
struct Sampled {
    who: Accounted,
    namespace: String,
    workload_label: Option<String>,
    session: bool,
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Broker {
    /// Starts accounting (nothing when `usage.enabled` is false): samples every `usage.sample_seconds`, checkpoints
    /// every `usage.checkpoint_seconds`, deletes records past `usage.retention_months`. Starting it again does
    /// nothing; it stops with the broker. Needs a Tokio runtime.
    pub fn account_usage(self: &Arc<Self>) {
        let Some(options) = self.options.usage else { return };
        self.usage.task.get_or_init(|| tokio::spawn(account(Arc::downgrade(self), options)).abort_handle());
    }

    /// The instances to account, from the copy of the records (`None` while it cannot answer for all of them):
    /// this broker's virtual clusters and the workloads in their namespaces.
    fn accounted(&self) -> Option<Vec<Sampled>> {
        let (namespaces, workloads) = (self.records.namespaces.copy().all()?, self.records.workloads.copy().all()?);
        let prefix = &self.options.namespace_prefix;
        let mut sampled = Vec::new();
        for namespace in namespaces.iter().filter(|n| n.name().starts_with(prefix.as_str())) {
            let Some(instance_id) = namespace.annotation(ANNOTATION_INSTANCE_ID) else { continue };
            let label = |key: &str| namespace.label(key).unwrap_or_default().to_owned();
            sampled.push(Sampled {
                who: Accounted {
                    instance_id: instance_id.to_owned(),
                    kind: Kind::VirtualCluster,
                    service: label(LABEL_SERVICE),
                    plan: label(LABEL_PLAN),
                    organization: label(LABEL_ORGANIZATION),
                    space: label(LABEL_SPACE),
                },
                namespace: namespace.name().to_owned(),
                workload_label: None,
                session: false,
            });
        }
        for workload in &workloads {
            let (Some(instance_id), Some(namespace)) =
                (workload.annotation(ANNOTATION_INSTANCE_ID), workload.annotation(ANNOTATION_NAMESPACE))
            else {
                continue;
            };
            if !namespace.starts_with(prefix.as_str()) {
                continue;
            }
            let service = workload.label(LABEL_SERVICE).unwrap_or_default();
            let session = self
                .catalog
                .services
                .iter()
                .any(|s| names::label_value(&s.name) == service && s.broker.kind == ServiceKind::StreamingSession);
            let guid = |key: &str| names::label_value(workload.annotation(key).unwrap_or_default());
            sampled.push(Sampled {
                who: Accounted {
                    instance_id: instance_id.to_owned(),
                    kind: Kind::Workload,
                    service: service.to_owned(),
                    plan: workload.label(LABEL_PLAN).unwrap_or_default().to_owned(),
                    organization: guid(ANNOTATION_ORGANIZATION_GUID),
                    space: guid(ANNOTATION_SPACE_GUID),
                },
                namespace: namespace.to_owned(),
                workload_label: Some(names::label_value(instance_id)),
                session,
            });
        }
        Some(sampled)
    }

    /// Samples every accounted namespace once and adds what it found to what is pending.
    async fn sample_usage(&self, gap_bound: SignedDuration) {
        let Some(instances) = self.accounted() else {
            tracing::debug!("the copy of the records cannot answer yet; usage is sampled once it can");
            return;
        };
        let mut by_namespace: BTreeMap<String, Vec<&Sampled>> = BTreeMap::new();
        for instance in &instances {
            by_namespace.entry(instance.namespace.clone()).or_default().push(instance);
        }
        // Owned work for the concurrent reads: each namespace with its virtual cluster and its sessions' labels.
        let work: Vec<(String, Option<String>, Vec<String>)> = by_namespace
            .iter()
            .map(|(namespace, instances)| {
                let cluster = instances.iter().find(|i| i.workload_label.is_none()).map(|i| i.who.instance_id.clone());
                let sessions = instances.iter().filter(|i| i.session).filter_map(|i| i.workload_label.clone());
                (namespace.clone(), cluster, sessions.collect())
            })
            .collect();
        let samples: Vec<_> = futures::stream::iter(work)
            .map(|(namespace, cluster, sessions)| self.sample_namespace(namespace, cluster, sessions))
            .buffer_unordered(CONCURRENT_SAMPLES)
            .collect()
            .await;
        let mut state = lock(&self.usage.state);
        let mut silent = false;
        let mut alive = std::collections::HashSet::new();
        for (namespace, sample) in samples {
            let Some((at, rates, metrics_answered)) = sample else { continue };
            silent |= !metrics_answered;
            for instance in by_namespace.get(&namespace).into_iter().flatten() {
                let found = match &instance.workload_label {
                    None => rates.namespace,
                    Some(label) => rates.by_instance.get(label).copied().unwrap_or_default(),
                };
                alive.insert(instance.who.instance_id.clone());
                let tracked = state
                    .tracked
                    .entry(instance.who.instance_id.clone())
                    .or_insert_with(|| Tracked { who: instance.who.clone(), pending: Pending::default() });
                tracked.who = instance.who.clone();
                tracked.pending.sample(at, found, gap_bound);
            }
            if metrics_answered {
                let pods = state.history.entry(namespace).or_default();
                pods.retain(|pod, _| rates.pods.contains_key(pod));
                for (pod, (cpu_millicores, memory_bytes)) in &rates.pods {
                    if pods.len() >= HISTORY_PODS && !pods.contains_key(pod) {
                        continue;
                    }
                    let samples = pods.entry(pod.clone()).or_default();
                    samples.push_back(UsageSample { at, cpu_millicores: *cpu_millicores, memory_bytes: *memory_bytes });
                    sampler::keep_recent(samples, at, HISTORY_SAMPLES);
                }
            }
        }
        state.history.retain(|namespace, _| by_namespace.contains_key(namespace));
        // An instance no longer there keeps what it has pending until that is checkpointed.
        state.tracked.retain(|id, tracked| alive.contains(id) || !tracked.pending.segments.is_empty());
        if silent != state.metrics_silence_said {
            state.metrics_silence_said = silent;
            if silent {
                tracing::warn!(
                    "the metrics API (metrics.k8s.io) does not answer for some tenant namespaces: CPU and memory in \
                     use are not counted there until it does (requests, GPUs, storage and sessions still are)"
                );
            } else {
                tracing::info!("the metrics API answers again: CPU and memory in use are counted");
            }
        }
    }

    /// One sample of `namespace`, the namespace of virtual cluster `cluster` (`sessions` are the labels of its
    /// streaming sessions): when it was taken, its rates, and whether the metrics API answered; `None` when the pods
    /// or claims could not be read (nothing is counted for that round).
    async fn sample_namespace(
        &self,
        namespace: String,
        cluster: Option<String>,
        sessions: Vec<String>,
    ) -> (String, Option<(Timestamp, sampler::NamespaceRates, bool)>) {
        let pods = Api::<Pod>::namespaced(self.client.clone(), &namespace);
        let claims = Api::<PersistentVolumeClaim>::namespaced(self.client.clone(), &namespace);
        let metrics = async { pod_metrics::fetch(&self.client, &namespace).await.ok() };
        let all = ListParams::default();
        let (pods, claims, metrics) = tokio::join!(pods.list(&all), claims.list(&all), metrics);
        let at = Timestamp::now();
        let (pods, claims) = match (pods, claims) {
            (Ok(pods), Ok(claims)) => (pods.items, claims.items),
            (Err(error), _) | (_, Err(error)) => {
                tracing::debug!(%error, namespace, "a tenant namespace could not be sampled; this round is not counted");
                // An instance made before the broker granted itself the watch role at provision: grant it now.
                if matches!(&error, kube::Error::Api(status) if status.code == 403)
                    && let Some(cluster) = &cluster
                    && let Err(error) = self.apply_dashboard_watch(&namespace, cluster).await
                {
                    tracing::warn!(%error, namespace, "the broker cannot grant itself the reading of a tenant namespace");
                }
                return (namespace, None);
            }
        };
        let rates = sampler::rates(&pods, &claims, metrics.as_ref(), &sessions);
        (namespace, Some((at, rates, metrics.is_some())))
    }

    /// Writes what is pending into the records, month by month, each over the version read.
    async fn checkpoint_usage(&self) {
        let work: Vec<(Accounted, Pending)> = lock(&self.usage.state)
            .tracked
            .values()
            .filter(|t| t.pending.first.is_some() || !t.pending.segments.is_empty())
            .map(|t| (t.who.clone(), t.pending.clone()))
            .collect();
        let gap_bound = self.options.usage.map(|u| u.gap_bound()).unwrap_or(SignedDuration::from_secs(900));
        let writes = futures::stream::iter(work)
            .map(|(who, pending)| async move {
                for month in pending.months() {
                    match self.checkpoint_month(&who, month, &pending, gap_bound).await {
                        Ok(None) => return,
                        Ok(Some(record)) => {
                            if let Some(tracked) = lock(&self.usage.state).tracked.get_mut(&who.instance_id) {
                                tracked.pending.settle(&record);
                            }
                            crate::metrics::global().set_usage(&record.instance, &record.lifetime);
                        }
                        Err(error) if is_conflict(&error) => {
                            tracing::debug!(instance = %who.instance_id, "another replica wrote the usage record \
                                first; what it counted is dropped at the next checkpoint");
                            return;
                        }
                        Err(error) => {
                            tracing::warn!(%error, instance = %who.instance_id,
                                "the usage record could not be written; the next checkpoint tries again");
                            return;
                        }
                    }
                }
            })
            .buffer_unordered(CONCURRENT_SAMPLES);
        writes.collect::<Vec<()>>().await;
        let mut state = lock(&self.usage.state);
        let bound = Timestamp::now().checked_sub(gap_bound).unwrap_or(Timestamp::MIN);
        // An instance gone, whose pending was written (or is too old to be), is forgotten.
        state.tracked.retain(|_, t| t.pending.last.is_some_and(|last| last > bound) || !t.pending.segments.is_empty());
    }

    /// Counts `pending` into `who`'s record of `month` and writes it over the version read (creates it, carrying the
    /// previous month's lifetime totals, when there is none); the record as written, or as read when nothing was new,
    /// or `None` when the record there cannot be read (it is left alone, and said in the log).
    async fn checkpoint_month(
        &self,
        who: &Accounted,
        month: buckets::Month,
        pending: &Pending,
        gap_bound: SignedDuration,
    ) -> Result<Option<UsageRecord>, kube::Error> {
        let records = self.usage_records();
        let existing = records.get_opt(&record_name(&who.instance_id, month)).await?;
        let mut record = match existing.as_ref().map(UsageRecord::from_config_map) {
            Some(Some(record)) => record,
            Some(None) => {
                tracing::warn!(instance = %who.instance_id, month = month.key(),
                    "a usage record cannot be read; it is left as it is and this month is not counted");
                return Ok(None);
            }
            None => {
                let previous = records.get_opt(&record_name(&who.instance_id, month.previous())).await?;
                let lifetime = previous.as_ref().and_then(|p| RecordHead::from_meta(&p.metadata)).map(|h| h.lifetime);
                UsageRecord::new(who.clone(), month, lifetime.unwrap_or_default())
            }
        };
        record.instance = who.clone();
        if !record.count(pending, gap_bound) {
            return Ok(Some(record));
        }
        let object = record.to_config_map(&self.options.broker_namespace);
        // A patch that carries the version read is refused (409) when another replica wrote since.
        let written = match &record.resource_version {
            Some(_) => {
                let name = record_name(&who.instance_id, month);
                records.patch(&name, &PatchParams::default(), &Patch::Merge(&object)).await?
            }
            None => records.create(&PostParams::default(), &object).await?,
        };
        record.resource_version = written.metadata.resource_version;
        Ok(Some(record))
    }

    /// The usage records' API: ConfigMaps in the broker's namespace.
    fn usage_records(&self) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), &self.options.broker_namespace)
    }

    /// Sets the counters on `/metrics` from the records of this month and the last (an instance gone last month still
    /// shows), read as metadata: every replica shows the same totals.
    async fn publish_usage_totals(&self) {
        let now = buckets::Month::of(Timestamp::now());
        let selector = format!(
            "{LABEL_MANAGED_BY}={MANAGED_BY_USAGE},{LABEL_USAGE_MONTH} in ({},{})",
            now.key(),
            now.previous().key()
        );
        let heads = match self.usage_heads(&selector).await {
            Ok(heads) => heads,
            Err(error) => {
                tracing::warn!(%error, "could not read the usage records for /metrics; the counters stay as they were");
                return;
            }
        };
        let mut latest: HashMap<String, RecordHead> = HashMap::new();
        for head in heads {
            match latest.get(&head.instance.instance_id) {
                Some(kept) if kept.month >= head.month => {}
                _ => {
                    latest.insert(head.instance.instance_id.clone(), head);
                }
            }
        }
        for head in latest.values() {
            crate::metrics::global().set_usage(&head.instance, &head.lifetime);
        }
    }

    /// The metadata of the usage records `selector` finds, a page at a time.
    async fn usage_heads(&self, selector: &str) -> Result<Vec<RecordHead>, kube::Error> {
        let api = Api::<PartialObjectMeta<ConfigMap>>::namespaced(self.client.clone(), &self.options.broker_namespace);
        let mut params = ListParams::default().labels(selector).limit(500);
        let mut heads = Vec::new();
        loop {
            let page = match api.list_metadata(&params).await {
                Err(error) if is_not_found(&error) => return Ok(heads),
                page => page?,
            };
            heads.extend(page.items.iter().filter_map(|item| RecordHead::from_meta(&item.metadata)));
            match page.metadata.continue_.filter(|token| !token.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => return Ok(heads),
            }
        }
    }

    /// Deletes the usage records older than `retention_months` (the current month counts as one).
    async fn expire_usage_records(&self, retention_months: u32) {
        let now = buckets::Month::of(Timestamp::now());
        let heads = match self.usage_heads(&format!("{LABEL_MANAGED_BY}={MANAGED_BY_USAGE}")).await {
            Ok(heads) => heads,
            Err(error) => {
                tracing::warn!(%error, "could not list the usage records to expire old ones; retried in an hour");
                return;
            }
        };
        let records = self.usage_records();
        for head in heads.iter().filter(|h| now.since(h.month) >= i32::try_from(retention_months).unwrap_or(i32::MAX)) {
            let name = record_name(&head.instance.instance_id, head.month);
            match records.delete(&name, &DeleteParams::default()).await {
                Ok(_) => tracing::info!(record = name, "deleted a usage record past its retention"),
                Err(error) if is_not_found(&error) => {}
                Err(error) => tracing::warn!(%error, record = name, "could not delete an expired usage record"),
            }
        }
    }

    /// The recent use of each pod of `namespace`, oldest sample first, by pod name.
    pub(in crate::lifecycle) fn recent_use(&self, namespace: &str) -> Vec<PodHistory> {
        let state = lock(&self.usage.state);
        let pods = state.history.get(namespace).into_iter().flatten();
        pods.map(|(pod, samples)| PodHistory { pod: pod.clone(), samples: samples.iter().copied().collect() }).collect()
    }

    /// `instance_id`'s usage in the current month, from its record (zero when it has none yet).
    pub(in crate::lifecycle) async fn usage_this_month(&self, instance_id: &str) -> super::Result<UsageTotals> {
        let name = record_name(instance_id, buckets::Month::of(Timestamp::now()));
        let record = self.usage_records().get_opt(&name).await?;
        Ok(record.as_ref().and_then(UsageRecord::from_config_map).map(|r| r.month_totals()).unwrap_or_default())
    }
}

/// The accounting task: samples, checkpoints and expires, until the broker is gone.
async fn account(broker: Weak<Broker>, options: UsageOptions) {
    use tokio::time::{Instant, MissedTickBehavior, interval, interval_at};
    let mut samples = interval(options.sample);
    samples.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut checkpoints = interval_at(Instant::now() + options.checkpoint, options.checkpoint);
    checkpoints.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut expired_at: Option<Instant> = None;
    if let Some(broker) = broker.upgrade() {
        broker.publish_usage_totals().await;
    }
    loop {
        tokio::select! {
            _ = samples.tick() => {
                let Some(broker) = broker.upgrade() else { return };
                broker.sample_usage(options.gap_bound()).await;
            }
            _ = checkpoints.tick() => {
                let Some(broker) = broker.upgrade() else { return };
                broker.checkpoint_usage().await;
                broker.publish_usage_totals().await;
                if expired_at.is_none_or(|at| at.elapsed() >= RETENTION_EVERY) {
                    broker.expire_usage_records(options.retention_months).await;
                    expired_at = Some(Instant::now());
                }
            }
        }
    }
}
