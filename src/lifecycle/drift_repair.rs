//! Drift repair: what makes a namespace a tenant's virtual cluster (its Pod Security labels, its quota, container
//! limits and default-deny NetworkPolicy, the broker's RoleBindings of its owner, bindings, members and dashboard
//! watch) is watched cluster-wide by the broker's labels, and whatever of it is deleted or changed outside the broker
//! is put back within seconds, with the same server-side apply of the same typed objects a provision makes.
//!
//! - The watches ([`kube::runtime::watcher`], with its back-off) select `managed-by=caas-broker`, `protected=true` and
//!   an instance label, and keep nothing but a fingerprint per object (its content without status and bookkeeping
//!   metadata): a deletion, a change of that fingerprint, or an object a fresh list no longer shows after a lost
//!   watch is reported. What a watch lists first, and objects it sees made, are only noted.
//! - Reports are gathered per namespace until it has been quiet for [`QUIET`] (at most [`LONGEST_WAIT`]), so a burst
//!   (a namespace being deleted, a provision applying everything) costs one check.
//! - A check reads the namespace fresh and repairs nothing of a namespace that is gone or being deleted (no
//!   resurrection), not provisioned yet or being updated (those apply everything themselves), of another namespace
//!   prefix (another broker's, such as a test's), or of the layout before version 2.0. The wanted object is built
//!   from the instance's plan and parameters, read from the namespace's annotations; a binding's or member's
//!   RoleBinding only while its ServiceAccount exists (unbinding and removing a member delete that first).
//! - The apply is a repair when it made or changed something: the object was absent, or the apply changed its
//!   fingerprint (a server-side apply that changes nothing writes nothing). Each repair is counted in
//!   `caas_broker_repairs_total{kind}`, logged, and recorded as a `Repaired` Warning Event in the tenant namespace,
//!   which the dashboard shows as an alert (and which outlives a restart of the broker or a switch of replicas).
//! - A check races an update of the instance (by this replica or another) when it read the record before the update
//!   and applies after it: the namespace's own apply carries the `resourceVersion` read (a server-side apply
//!   precondition), so a record an update just wrote is never written back; and when the record changed during the
//!   check, the check is made again on the new record, and what the stale pass wrote is not counted as a repair.
//! - Several replicas may repair the same object at once: the applies are the same, under the one field manager, so
//!   the second finds nothing left to change (at worst both count and record it).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, EventSource, LimitRange, Namespace, ObjectReference, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{DeleteParams, PostParams, Preconditions};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event as Watched};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::instances::stored::StoredInstance;
use super::members::Role;
use super::{Broker, Result};
use crate::k8s::binding::ANNOTATION_BINDING_ID;
use crate::k8s::names::*;
use crate::k8s::repository::Repository;
use crate::k8s::virtual_cluster::VirtualCluster;
use crate::k8s::{apply, is_conflict, is_not_found};

/// How long a namespace's objects must have been quiet before it is checked.
const QUIET: Duration = Duration::from_millis(500);
/// The longest a report waits for quiet: a namespace that never quiets down is checked all the same.
const LONGEST_WAIT: Duration = Duration::from_secs(3);
/// How long a check that failed (the apiserver away) waits before it is tried again.
const RETRY: Duration = Duration::from_secs(5);
/// Passes a check makes at most while the record it repairs from keeps changing under it.
const PASSES: usize = 3;
/// Namespaces checked at once.
const CONCURRENT_CHECKS: usize = 8;
/// The reason of the Event a repair records in the tenant namespace (the dashboard shows it as an alert).
pub const REASON_REPAIRED: &str = "Repaired";

/// A kind of object drift repair watches and puts back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ManagedKind {
    /// The tenant namespace: its Pod Security and broker labels.
    Namespace,
    /// The plan's ResourceQuota.
    ResourceQuota,
    /// The plan's container LimitRange.
    LimitRange,
    /// The default-deny NetworkPolicy.
    NetworkPolicy,
    /// The RoleBindings of the owner, bindings, members and the broker's dashboard watch.
    RoleBinding,
}

impl ManagedKind {
    /// Every kind, one watch each.
    pub const ALL: [ManagedKind; 5] = [
        ManagedKind::Namespace,
        ManagedKind::ResourceQuota,
        ManagedKind::LimitRange,
        ManagedKind::NetworkPolicy,
        ManagedKind::RoleBinding,
    ];

    /// The Kubernetes kind, as metrics, logs and Events name it.
    pub fn as_str(self) -> &'static str {
        match self {
            ManagedKind::Namespace => "Namespace",
            ManagedKind::ResourceQuota => "ResourceQuota",
            ManagedKind::LimitRange => "LimitRange",
            ManagedKind::NetworkPolicy => "NetworkPolicy",
            ManagedKind::RoleBinding => "RoleBinding",
        }
    }

    fn api_version(self) -> &'static str {
        match self {
            ManagedKind::NetworkPolicy => "networking.k8s.io/v1",
            ManagedKind::RoleBinding => "rbac.authorization.k8s.io/v1",
            _ => "v1",
        }
    }
}

/// What was seen of a RoleBinding that the cluster may no longer show: whose it was, and its role.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct LastSeen {
    binding_id: Option<String>,
    member: Option<String>,
    role: Option<String>,
}

impl LastSeen {
    /// What `self` knows, completed by `newer` (who an object is for is taken from when it was first seen).
    fn or(self, newer: LastSeen) -> LastSeen {
        LastSeen {
            binding_id: self.binding_id.or(newer.binding_id),
            member: self.member.or(newer.member),
            role: self.role.or(newer.role),
        }
    }
}

/// What one pass of a check did: on which version of the namespace's record, whether the namespace's own apply found
/// the record changed, and what it repaired.
struct Pass {
    instance_id: String,
    version: Option<String>,
    raced: bool,
    repaired: Vec<(ManagedKind, String, &'static str)>,
}

/// One object seen deleted or changed.
#[derive(Debug, Clone)]
struct Drifted {
    namespace: String,
    kind: ManagedKind,
    name: String,
    last_seen: LastSeen,
}

/// The watches and the task that repairs what they report; they stop when this is dropped (with the broker).
#[derive(Default)]
pub(super) struct Repairs {
    tasks: std::sync::OnceLock<Vec<AbortHandle>>,
    /// Watches that have listed once: from then on they report what happens to what they listed.
    listed: Arc<AtomicUsize>,
}

/// The kinds watched, one watch each.
const WATCHES: usize = ManagedKind::ALL.len();

impl Drop for Repairs {
    fn drop(&mut self) {
        self.tasks.get().into_iter().flatten().for_each(AbortHandle::abort);
    }
}

impl Broker {
    /// Starts drift repair: the watches of the virtual clusters' objects and the
    /// task that puts back what they report. Starting it again does nothing; it stops with the broker. Needs a Tokio
    /// runtime.
    pub fn repair_drift(self: &Arc<Self>) {
        self.repairs.tasks.get_or_init(|| {
            // Every kind's count shows from the start, at 0, so that a rate can be taken of it before any repair.
            for kind in ManagedKind::ALL {
                crate::metrics::global().repairs_of(kind.as_str());
            }
            let (report, reports) = mpsc::unbounded_channel();
            let (client, listed) = (&self.client, &self.repairs.listed);
            let watches = [
                spawn_watch(Api::<Namespace>::all(client.clone()), ManagedKind::Namespace, &report, listed),
                spawn_watch(Api::<ResourceQuota>::all(client.clone()), ManagedKind::ResourceQuota, &report, listed),
                spawn_watch(Api::<LimitRange>::all(client.clone()), ManagedKind::LimitRange, &report, listed),
                spawn_watch(Api::<NetworkPolicy>::all(client.clone()), ManagedKind::NetworkPolicy, &report, listed),
                spawn_watch(Api::<RoleBinding>::all(client.clone()), ManagedKind::RoleBinding, &report, listed),
            ];
            debug_assert_eq!(watches.len(), WATCHES);
            let mut tasks = watches.to_vec();
            tasks.push(tokio::spawn(repair_reported(Arc::downgrade(self), reports)).abort_handle());
            tasks
        });
    }

    /// Whether every watch of drift repair has listed once (and so reports what happens to the objects it listed).
    pub fn drift_watched(&self) -> bool {
        self.repairs.listed.load(Ordering::Relaxed) >= WATCHES
    }

    /// Checks the objects reported of `namespace` and puts back what drifted. The objects are built from the
    /// namespace's record as read at the start; when the record changed meanwhile (an update of the instance, made by
    /// this replica or another), what was applied may be of the record before: the check is made again on the new
    /// record, and what the stale pass wrote is not counted as a repair when the next pass sets it right.
    async fn repair_namespace(
        &self,
        namespace: &str,
        drifted: &BTreeMap<(ManagedKind, String), LastSeen>,
    ) -> Result<()> {
        let namespaces = self.namespaces();
        let mut written_stale = std::collections::BTreeSet::new();
        for _ in 0..PASSES {
            let Some(pass) = self.repair_pass(namespaces, namespace, drifted).await? else { return Ok(()) };
            let now = namespaces.get_opt(namespace).await?;
            let stable = !pass.raced && now.as_ref().map(|ns| ns.resource_version()) == Some(pass.version.clone());
            if stable {
                for (kind, name, what) in pass.repaired {
                    if !written_stale.contains(&(kind, name.clone())) {
                        self.record_repair(&pass.instance_id, namespace, kind, &name, what).await;
                    }
                }
                return Ok(());
            }
            written_stale.extend(pass.repaired.into_iter().map(|(kind, name, _)| (kind, name)));
        }
        tracing::info!(
            namespace,
            "a virtual cluster kept changing while it was checked; its next change checks it again"
        );
        Ok(())
    }

    /// One pass of [`Broker::repair_namespace`]; `None` when the namespace is not one to repair.
    async fn repair_pass(
        &self,
        namespaces: &Repository<Namespace>,
        namespace: &str,
        drifted: &BTreeMap<(ManagedKind, String), LastSeen>,
    ) -> Result<Option<Pass>> {
        // Gone: nothing of it is put back, least of all the namespace.
        let Some(current) = namespaces.get_opt(namespace).await? else { return Ok(None) };
        let Some(stored) = StoredInstance::from_namespace(&current) else { return Ok(None) };
        let ours = self.namespace_of(&stored.instance_id) == namespace;
        let current_layout = stored.identity_namespace.as_deref() == Some(self.options.identity_namespace.as_str());
        if !ours || !stored.provisioned || stored.terminating || !current_layout {
            return Ok(None);
        }
        let Some(service) = self.catalog.service(&stored.attributes.service_id) else {
            tracing::warn!(instance = %stored.instance_id, service = %stored.attributes.service_id,
                "cannot repair a virtual cluster whose service is no longer in the catalog");
            return Ok(None);
        };
        let cluster = self.virtual_cluster(service, &stored)?;
        let version = current.resource_version();
        let mut pass = Pass { instance_id: stored.instance_id.clone(), version, raced: false, repaired: Vec::new() };
        for ((kind, name), last_seen) in drifted {
            let what = match kind {
                ManagedKind::Namespace => {
                    let mut wanted = cluster.namespace();
                    // The completion marker as it is: a repair is no new provision.
                    let provisioned = current.annotations().get(ANNOTATION_PROVISIONED).cloned();
                    let annotations = wanted.metadata.annotations.get_or_insert_default();
                    annotations.extend(provisioned.map(|at| (ANNOTATION_PROVISIONED.to_owned(), at)));
                    // Only over the record as read: the namespace holds it, and an update may have just changed it.
                    wanted.metadata.resource_version = pass.version.clone();
                    match namespaces.apply(&wanted).await {
                        Ok(after) => {
                            // The record's version is now that of this write (which changed nothing of the record).
                            pass.version = after.resource_version();
                            (observe(&after).0 != observe(&current).0).then_some("changed")
                        }
                        Err(error) if is_conflict(&error) => {
                            pass.raced = true;
                            None
                        }
                        Err(error) => return Err(error.into()),
                    }
                }
                ManagedKind::ResourceQuota if name == QUOTA_NAME => {
                    self.restore_in(namespace, &cluster.resource_quota()).await?
                }
                ManagedKind::LimitRange if name == LIMIT_RANGE_NAME => {
                    self.restore_in(namespace, &cluster.limit_range()).await?
                }
                ManagedKind::NetworkPolicy if name == NETWORK_POLICY_NAME => {
                    self.restore_in(namespace, &cluster.network_policy()).await?
                }
                ManagedKind::RoleBinding => self.restore_role_binding(&stored, &cluster, name, last_seen).await?,
                // Not an object the broker makes under that name.
                _ => None,
            };
            pass.repaired.extend(what.map(|what| (*kind, name.clone(), what)));
        }
        Ok(Some(pass))
    }

    /// Applies `wanted` in `namespace`; what had happened to it when that was a repair.
    async fn restore_in<K>(&self, namespace: &str, wanted: &K) -> Result<Option<&'static str>, kube::Error>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope> + Serialize + DeserializeOwned + Clone + Debug,
        K::DynamicType: Default,
    {
        let api = Api::<K>::namespaced(self.client.clone(), namespace);
        let before = api.get_opt(&wanted.name_any()).await?;
        restore(&api, wanted, before).await
    }

    /// Puts back the RoleBinding `name` of the virtual cluster, when it is one of the broker's that should be there.
    async fn restore_role_binding(
        &self,
        stored: &StoredInstance,
        cluster: &VirtualCluster,
        name: &str,
        last_seen: &LastSeen,
    ) -> Result<Option<&'static str>> {
        let api = Api::<RoleBinding>::namespaced(self.client.clone(), &cluster.namespace);
        let before = api.get_opt(name).await?;
        let wanted = if name == OWNER_ROLE_BINDING_NAME {
            Some(cluster.owner_role_binding())
        } else if name == DASHBOARD_WATCH_BINDING_NAME {
            Some(self.dashboard_watch_wanted(&cluster.namespace, &stored.instance_id).await?)
        } else if let Some(binding_id) = &last_seen.binding_id {
            self.binding_role_binding_wanted(&stored.instance_id, binding_id).await?
        } else if let Some(member) = &last_seen.member {
            // A member's role is held by its RoleBinding alone: the one it has, or had when last seen.
            let role = before.as_ref().map(|binding| binding.role_ref.name.clone()).or(last_seen.role.clone());
            match role.as_deref().map(Role::parse) {
                Some(Ok(role)) => self.member_role_binding_wanted(&stored.instance_id, member, role).await?,
                _ => None,
            }
        } else {
            None
        };
        // Only under its own name: annotations are no proof of whose a RoleBinding is.
        let Some(wanted) = wanted.filter(|wanted| wanted.metadata.name.as_deref() == Some(name)) else {
            return Ok(None);
        };
        if let Some(current) = &before
            && current.role_ref != wanted.role_ref
        {
            // A role cannot be changed in place: the RoleBinding was made anew with another; replace it (only the one
            // read, should it change meanwhile).
            let params = DeleteParams {
                preconditions: Some(Preconditions { uid: current.metadata.uid.clone(), resource_version: None }),
                ..DeleteParams::default()
            };
            match api.delete(name, &params).await {
                Err(error) if !is_not_found(&error) => return Err(error.into()),
                _ => {}
            }
            apply(&api, &wanted).await?;
            return Ok(Some("given another role"));
        }
        Ok(restore(&api, &wanted, before).await?)
    }

    /// Counts, logs and records (an Event in the tenant namespace, which the dashboard shows) one repair.
    async fn record_repair(&self, instance_id: &str, namespace: &str, kind: ManagedKind, name: &str, what: &str) {
        crate::metrics::global().repaired(kind.as_str());
        tracing::warn!(
            instance = instance_id,
            namespace,
            kind = kind.as_str(),
            name,
            what,
            "an object of a virtual cluster was {what} outside the broker: restored"
        );
        let now = Time(jiff::Timestamp::now());
        let event = Event {
            metadata: ObjectMeta {
                generate_name: Some("caas-broker-repaired-".to_owned()),
                namespace: Some(namespace.to_owned()),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                api_version: Some(kind.api_version().to_owned()),
                kind: Some(kind.as_str().to_owned()),
                name: Some(name.to_owned()),
                namespace: Some(namespace.to_owned()),
                ..ObjectReference::default()
            },
            reason: Some(REASON_REPAIRED.to_owned()),
            message: Some(format!("{}/{name} was {what} outside the broker; the broker restored it", kind.as_str())),
            type_: Some("Warning".to_owned()),
            count: Some(1),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            source: Some(EventSource { component: Some(MANAGED_BY.to_owned()), host: None }),
            reporting_component: Some(MANAGED_BY.to_owned()),
            ..Event::default()
        };
        let events = Api::<Event>::namespaced(self.client.clone(), namespace);
        if let Err(error) = events.create(&PostParams::default(), &event).await {
            tracing::warn!(instance = instance_id, namespace, %error, "could not record a repair as an Event");
        }
    }
}

/// Applies `wanted` (whose state before was `before`); what had happened to it when the apply made or changed it.
/// Changed means changed in what the fingerprint holds: a status written meanwhile (a quota's use) is no repair.
async fn restore<K>(api: &Api<K>, wanted: &K, before: Option<K>) -> Result<Option<&'static str>, kube::Error>
where
    K: Resource + Serialize + DeserializeOwned + Clone + Debug,
{
    let after = apply(api, wanted).await?;
    Ok(match before {
        None => Some("deleted"),
        Some(before) if observe(&before).0 != observe(&after).0 => Some("changed"),
        Some(_) => None,
    })
}

fn spawn_watch<K>(
    api: Api<K>,
    kind: ManagedKind,
    report: &mpsc::UnboundedSender<Drifted>,
    listed: &Arc<AtomicUsize>,
) -> AbortHandle
where
    K: Resource + Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static,
{
    tokio::spawn(watch(api, kind, report.clone(), listed.clone())).abort_handle()
}

/// An object's place, `<namespace>/<name>` (a namespace's namespace is its own name): one string, since the watches
/// of a large cluster hold tens of thousands.
type Key = Box<str>;

/// What a watch holds of an object: its fingerprint, and whose RoleBinding it is (only for a binding's or member's).
type Seen = (u64, Option<Box<LastSeen>>);

/// Reports every object `api` reaches with the broker's protected-instance labels that is deleted or changed (see
/// the module documentation); counts itself in `listed` once it has listed; ends when nobody takes reports any more.
async fn watch<K>(api: Api<K>, kind: ManagedKind, report: mpsc::UnboundedSender<Drifted>, listed: Arc<AtomicUsize>)
where
    K: Resource + Serialize + DeserializeOwned + Clone + Debug + Send + 'static,
{
    let selector = format!("{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_PROTECTED}=true,{LABEL_INSTANCE}");
    let config = watcher::Config::default().labels(&selector);
    let mut seen: HashMap<Key, Seen> = HashMap::new();
    let mut listing: Option<HashMap<Key, Seen>> = None;
    let mut counted = false;
    let send = |key: &str, last_seen: Option<Box<LastSeen>>| {
        let (namespace, name) = key.split_once('/').unwrap_or((key, key));
        let (namespace, name) = (namespace.to_owned(), name.to_owned());
        report.send(Drifted { namespace, kind, name, last_seen: last_seen.map(|s| *s).unwrap_or_default() }).is_ok()
    };
    let mut events = std::pin::pin!(watcher::watcher(api, config).default_backoff());
    while let Some(event) = events.next().await {
        let delivered = match event {
            Ok(Watched::Init) => {
                listing = Some(HashMap::new());
                true
            }
            Ok(Watched::InitApply(object)) => {
                if let Some(listed) = &mut listing {
                    listed.insert(key(&object), observe(&object));
                }
                true
            }
            Ok(Watched::InitDone) => {
                if !std::mem::replace(&mut counted, true) {
                    listed.fetch_add(1, Ordering::Relaxed);
                }
                let listed = listing.take().unwrap_or_default();
                // What a watch that was lost missed: deletions, and changes.
                let missed: Vec<(Key, Option<Box<LastSeen>>)> = seen
                    .iter()
                    .filter(|(key, (fingerprint, _))| listed.get(*key).is_none_or(|(now, _)| now != fingerprint))
                    .map(|(key, (_, last_seen))| (key.clone(), last_seen.clone()))
                    .collect();
                seen = listed;
                missed.into_iter().all(|(key, last_seen)| send(&key, last_seen))
            }
            Ok(Watched::Apply(object)) => {
                let (key, (fingerprint, last_seen)) = (key(&object), observe(&object));
                match seen.remove(&key) {
                    Some((before, known)) => {
                        let last_seen = merge(known, last_seen);
                        seen.insert(key.clone(), (fingerprint, last_seen.clone()));
                        before == fingerprint || send(&key, last_seen)
                    }
                    None => {
                        seen.insert(key, (fingerprint, last_seen));
                        true
                    }
                }
            }
            Ok(Watched::Delete(object)) => {
                let (key, (_, last_seen)) = (key(&object), observe(&object));
                let last_seen = match seen.remove(&key) {
                    Some((_, known)) => merge(known, last_seen),
                    None => last_seen,
                };
                send(&key, last_seen)
            }
            Err(error) => {
                tracing::warn!(kind = kind.as_str(), %error,
                    "drift watch failed; it starts over (a 403 means the list/watch rules of manifests/rbac.yaml are missing)");
                true
            }
        };
        if !delivered {
            return;
        }
    }
}

fn key<K: Resource>(object: &K) -> Key {
    let name = object.meta().name.as_deref().unwrap_or_default();
    format!("{}/{name}", object.meta().namespace.as_deref().unwrap_or(name)).into_boxed_str()
}

/// Whose RoleBinding an object is: as first seen, completed by what is seen now.
fn merge(known: Option<Box<LastSeen>>, now: Option<Box<LastSeen>>) -> Option<Box<LastSeen>> {
    match (known, now) {
        (Some(known), Some(now)) => Some(Box::new(known.or(*now))),
        (known, now) => known.or(now),
    }
}

/// An object's fingerprint (its content but its status and bookkeeping metadata: what the broker sets and what a
/// tenant could change), and whose RoleBinding it is when it is a binding's or a member's.
fn observe<K: Resource + Serialize>(object: &K) -> Seen {
    let mut value = serde_json::to_value(object).unwrap_or(Value::Null);
    let text = |value: &Value| value.as_str().map(str::to_owned);
    let annotations = &value["metadata"]["annotations"];
    let last_seen = LastSeen {
        binding_id: text(&annotations[ANNOTATION_BINDING_ID]),
        member: text(&annotations[ANNOTATION_MEMBER]),
        role: text(&value["roleRef"]["name"]),
    };
    if let Value::Object(fields) = &mut value {
        fields.remove("status");
        if let Some(Value::Object(metadata)) = fields.get_mut("metadata") {
            metadata.retain(|key, _| key == "labels" || key == "annotations");
        }
    }
    let mut hasher = std::hash::DefaultHasher::new();
    value.to_string().hash(&mut hasher);
    let whose = last_seen.binding_id.is_some() || last_seen.member.is_some();
    (hasher.finish(), whose.then(|| Box::new(last_seen)))
}

/// The reports of one namespace waiting to be checked.
struct Pending {
    first: Instant,
    last: Instant,
    drifted: BTreeMap<(ManagedKind, String), LastSeen>,
}

impl Pending {
    fn due(&self) -> Instant {
        (self.last + QUIET).min(self.first + LONGEST_WAIT)
    }
}

/// Gathers the reports per namespace and checks each namespace once it is quiet; a check that fails is tried again.
async fn repair_reported(broker: Weak<Broker>, mut reports: mpsc::UnboundedReceiver<Drifted>) {
    let mut pending: HashMap<String, Pending> = HashMap::new();
    loop {
        let due = pending.values().map(Pending::due).min();
        let wait = async {
            match due {
                Some(due) => tokio::time::sleep_until(due).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            report = reports.recv() => {
                let Some(drifted) = report else { return };
                let now = Instant::now();
                let entry = pending.entry(drifted.namespace).or_insert_with(|| Pending {
                    first: now,
                    last: now,
                    drifted: BTreeMap::new(),
                });
                entry.last = now;
                let known = entry.drifted.remove(&(drifted.kind, drifted.name.clone())).unwrap_or_default();
                entry.drifted.insert((drifted.kind, drifted.name), known.or(drifted.last_seen));
            }
            () = wait => {
                let now = Instant::now();
                let ready: Vec<String> =
                    pending.iter().filter(|(_, p)| p.due() <= now).map(|(namespace, _)| namespace.clone()).collect();
                let ready: Vec<(String, Pending)> =
                    ready.into_iter().filter_map(|namespace| pending.remove_entry(&namespace)).collect();
                let Some(broker) = broker.upgrade() else { return };
                let failed: Vec<(String, Pending)> = futures::stream::iter(ready)
                    .map(|(namespace, waiting)| {
                        let broker = &broker;
                        async move {
                            match broker.repair_namespace(&namespace, &waiting.drifted).await {
                                Ok(()) => None,
                                Err(error) => {
                                    tracing::warn!(namespace, %error,
                                        "could not check a virtual cluster's objects; trying again");
                                    Some((namespace, waiting))
                                }
                            }
                        }
                    })
                    .buffer_unordered(CONCURRENT_CHECKS)
                    .filter_map(std::future::ready)
                    .collect()
                    .await;
                let later = Instant::now() + RETRY;
                for (namespace, mut waiting) in failed {
                    (waiting.first, waiting.last) = (later, later);
                    pending.entry(namespace).or_insert(waiting);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::rbac::v1::RoleRef;

    fn binding(labels: &[(&str, &str)], status_like: &str) -> RoleBinding {
        RoleBinding {
            metadata: ObjectMeta {
                name: Some("caas-member-x".to_owned()),
                namespace: Some("caas-a".to_owned()),
                resource_version: Some(status_like.to_owned()),
                labels: Some(labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()),
                annotations: Some([(ANNOTATION_MEMBER.to_owned(), "alice".to_owned())].into()),
                ..ObjectMeta::default()
            },
            role_ref: RoleRef { api_group: None, kind: "ClusterRole".to_owned(), name: "view".to_owned() },
            subjects: None,
        }
    }

    #[test]
    fn only_what_the_broker_sets_or_a_tenant_changes_moves_the_fingerprint() {
        let (first, seen) = observe(&binding(&[(LABEL_PROTECTED, "true")], "1"));
        let (bookkeeping, _) = observe(&binding(&[(LABEL_PROTECTED, "true")], "2"));
        let (relabelled, _) = observe(&binding(&[(LABEL_PROTECTED, "false")], "3"));
        assert_eq!(first, bookkeeping, "a new resourceVersion alone is no drift");
        assert_ne!(first, relabelled);
        let expected = LastSeen { binding_id: None, member: Some("alice".to_owned()), role: Some("view".to_owned()) };
        assert_eq!(seen.as_deref(), Some(&expected));
        assert_eq!(&*key(&binding(&[], "1")), "caas-a/caas-member-x");
        let quota = ResourceQuota {
            metadata: ObjectMeta { name: Some("q".to_owned()), ..ObjectMeta::default() },
            ..Default::default()
        };
        assert_eq!(observe(&quota).1, None, "only a binding's or member's RoleBinding is told whose it is");
    }

    #[test]
    fn whose_a_role_binding_is_is_taken_from_when_it_was_first_seen() {
        let first = LastSeen { binding_id: None, member: Some("alice".to_owned()), role: Some("view".to_owned()) };
        let stripped = LastSeen { binding_id: None, member: None, role: Some("admin".to_owned()) };
        assert_eq!(first.clone().or(stripped), first);
        assert_eq!(LastSeen::default().or(first.clone()), first);
    }
}
