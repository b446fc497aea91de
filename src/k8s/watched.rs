//! A watch-fed copy of the metadata of one kind of object, so that the requests a platform repeats all the time
//! (`last_operation` polls, fetches) are answered from memory instead of apiserver round trips.
//!
//! The copy says what it knows and no more ([`Cached`]): an object it holds, an object it does not hold while its
//! watch is synced, or "unknown" — its watch is not synced (starting, failed, the apiserver away), or this process has
//! just written the object and the watch has not shown that write yet (read-your-writes). A caller reads the cluster
//! whenever the copy does not know, and also on an absent object, which another replica may have made a moment ago.
//!
//! Any watch error drops the copy's claim to be synced and starts over with a fresh list after kube-runtime's standard
//! back-off, so that after an outage nothing older than the outage is served. Only metadata is kept, without
//! `managedFields`. The copy is told of this process's writes by [`super::repository::Repository`], through which
//! they are made.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Resource};
use tokio::task::AbortHandle;

/// How long a write of this process keeps the copy from answering for that object when the watch does not show the
/// write (a watch that is synced shows it within milliseconds; this only bounds the cost of a write that never came).
const UNSEEN_WRITE_PATIENCE: Duration = Duration::from_secs(10);
/// Objects per page of a list: a page is held whole while it is read, so small pages keep the peak (and what the
/// allocator keeps of it) low; 100 pages list 10 000 objects.
const LIST_PAGE: u32 = 100;

/// What the copy knows of one object.
#[derive(Debug, Clone, PartialEq)]
pub enum Cached {
    /// The object's metadata as the watch last delivered it (what the copy keeps of it).
    Present(Arc<CachedMeta>),
    /// The synced watch has not seen it (another replica may have just made it: read the cluster to be sure).
    Absent,
    /// The copy cannot answer for it: read the cluster.
    Unknown,
}

/// A watch-fed metadata copy of one kind of object (see the module documentation).
pub struct Watched {
    shared: Arc<Shared>,
    task: std::sync::OnceLock<AbortHandle>,
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let Some(task) = self.task.get() {
            task.abort();
        }
    }
}

struct Shared {
    kind: &'static str,
    /// Which label and annotation keys are kept (the others are dropped on arrival).
    keep: fn(&str) -> bool,
    state: RwLock<State>,
}

/// The objects held, by name.
type Objects = HashMap<Box<str>, Arc<CachedMeta>>;

#[derive(Default)]
struct State {
    /// The last list has been read whole and no error came since.
    synced: bool,
    objects: Objects,
    /// A list in progress: when it was asked for, and what it has delivered so far.
    relisting: Option<(Instant, Objects)>,
    /// Objects this process wrote whose write the watch has not shown yet.
    unseen_writes: HashMap<String, UnseenWrite>,
    restarts: u64,
}

/// A write of this process, not yet delivered by the watch.
struct UnseenWrite {
    /// The object's `resourceVersion` after the write; `None` for a delete answered without the object.
    version: Option<u64>,
    /// When the write had finished.
    done: Instant,
}

/// Figures for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchedFigures {
    /// Objects held.
    pub objects: usize,
    /// Whether the copy is synced.
    pub synced: bool,
    /// Times the watch failed and started over.
    pub restarts: u64,
}

impl Watched {
    /// An empty copy that knows nothing until [`Watched::start`]; `kind` names it in logs and metrics, and only the
    /// label and annotation keys `keep` accepts are held (with the name, uid, versions and timestamps).
    pub fn new(kind: &'static str, keep: fn(&str) -> bool) -> Watched {
        let shared = Shared { kind, keep, state: RwLock::default() };
        Watched { shared: Arc::new(shared), task: std::sync::OnceLock::new() }
    }

    /// Starts watching the metadata of what `api` reaches, `selector` chosen, with watches the apiserver closes after
    /// `watch_seconds` (below the client's read timeout, so that a quiet watch ends cleanly and resumes). Starting an
    /// already started copy does nothing. The watch stops when the copy is dropped.
    pub fn start<K>(&self, api: Api<PartialObjectMeta<K>>, selector: &str, watch_seconds: u32)
    where
        K: Resource + Clone + std::fmt::Debug + Send + Sync + 'static,
        K::DynamicType: Default,
    {
        let config = watcher::Config::default().labels(selector).timeout(watch_seconds.max(1)).page_size(LIST_PAGE);
        let shared = self.shared.clone();
        self.task.get_or_init(|| tokio::spawn(shared.watch(api, config)).abort_handle());
    }

    /// What the copy knows of the object called `name`.
    pub fn get(&self, name: &str) -> Cached {
        let state = self.shared.read();
        if !state.synced || state.unseen_writes.get(name).is_some_and(|w| w.done.elapsed() < UNSEEN_WRITE_PATIENCE) {
            return Cached::Unknown;
        }
        match state.objects.get(name) {
            Some(meta) => Cached::Present(meta.clone()),
            None => Cached::Absent,
        }
    }

    /// Every object held, when the copy is synced; `None` when it cannot answer for all of them.
    pub fn all(&self) -> Option<Vec<Arc<CachedMeta>>> {
        let state = self.shared.read();
        let trusted = state.synced && state.unseen_writes.values().all(|w| w.done.elapsed() >= UNSEEN_WRITE_PATIENCE);
        trusted.then(|| state.objects.values().cloned().collect())
    }

    /// Records a write this process made (create, apply, update, or a delete answered with the object): the copy does
    /// not answer for the object until the watch has shown this version of it or a later one.
    pub(super) fn wrote(&self, written: &ObjectMeta) {
        let Some(name) = written.name.clone() else { return };
        let version = written.resource_version.as_deref().and_then(|v| v.parse::<u64>().ok());
        let mut state = self.shared.write();
        let held =
            state.objects.get(name.as_str()).and_then(|kept| kept.resource_version.as_deref()?.parse::<u64>().ok());
        if let (Some(held), Some(version)) = (held, version)
            && held >= version
        {
            return; // the watch was quicker than the write's answer
        }
        state.unseen_writes.insert(name, UnseenWrite { version, done: Instant::now() });
    }

    /// Records a delete this process made that was answered without the object: the copy does not answer for it
    /// until the watch has shown it gone.
    pub(super) fn deleted(&self, name: &str) {
        self.shared.write().unseen_writes.insert(name.to_owned(), UnseenWrite { version: None, done: Instant::now() });
    }

    /// Figures for `/metrics`.
    pub fn figures(&self) -> WatchedFigures {
        let state = self.shared.read();
        WatchedFigures { objects: state.objects.len(), synced: state.synced, restarts: state.restarts }
    }

    /// The name of the kind, as given to [`Watched::new`].
    pub fn kind(&self) -> &'static str {
        self.shared.kind
    }
}

impl Shared {
    fn read(&self) -> RwLockReadGuard<'_, State> {
        // A panic while the lock was held cannot leave the state inconsistent in a way that matters: a later event or
        // restart sets it right.
        self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs watches one after the other, each from a full list to its first error, kube-runtime's back-off between.
    async fn watch<K>(self: Arc<Self>, api: Api<PartialObjectMeta<K>>, config: watcher::Config)
    where
        K: Resource + Clone + std::fmt::Debug + Send + Sync + 'static,
        K::DynamicType: Default,
    {
        let mut events = std::pin::pin!(relisting(api, config).default_backoff());
        while let Some(event) = events.next().await {
            match event {
                Ok(event) => self.apply(event),
                Err(error) => self.lost(&error.to_string()),
            }
        }
    }

    /// Takes in one event.
    fn apply<K>(&self, event: Event<PartialObjectMeta<K>>) {
        let mut state = self.write();
        match event {
            Event::Init => state.relisting = Some((Instant::now(), HashMap::new())),
            Event::InitApply(object) => {
                let kept = CachedMeta::new(object.metadata, self.keep);
                state.saw(&kept.name, kept.resource_version.as_deref(), false);
                if let Some((_, listed)) = &mut state.relisting {
                    listed.insert(kept.name.clone(), Arc::new(kept));
                }
            }
            Event::InitDone => {
                let Some((asked, listed)) = state.relisting.take() else { return };
                // The list was asked for after these writes had finished, so it shows them.
                state.unseen_writes.retain(|_, write| write.done >= asked);
                state.objects = listed;
                state.synced = true;
                tracing::debug!(kind = self.kind, objects = state.objects.len(), "watch synced");
            }
            Event::Apply(object) => {
                let kept = CachedMeta::new(object.metadata, self.keep);
                state.saw(&kept.name, kept.resource_version.as_deref(), false);
                state.objects.insert(kept.name.clone(), Arc::new(kept));
            }
            Event::Delete(object) => {
                let kept = CachedMeta::new(object.metadata, self.keep);
                state.saw(&kept.name, kept.resource_version.as_deref(), true);
                state.objects.remove(&kept.name);
            }
        }
    }

    /// The watch failed: the copy stops answering until a new list has been read.
    fn lost(&self, error: &str) {
        let mut state = self.write();
        state.synced = false;
        state.relisting = None;
        state.restarts += 1;
        tracing::warn!(kind = self.kind, %error, "watch failed; reading the cluster directly until it has listed again");
    }
}

/// The events of kube-runtime's watcher of `api`, with a new watcher (one that starts with a full list) after each
/// error: a watcher would go on from the last version it saw, and what it then delivers is never marked complete, so
/// the copy could not tell when it may answer again.
fn relisting<K>(
    api: Api<PartialObjectMeta<K>>,
    config: watcher::Config,
) -> impl Stream<Item = watcher::Result<Event<PartialObjectMeta<K>>>>
where
    K: Resource + Clone + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default,
{
    type Events<K> = BoxStream<'static, watcher::Result<Event<PartialObjectMeta<K>>>>;
    futures::stream::unfold(None, move |running: Option<Events<K>>| {
        let mut events = running.unwrap_or_else(|| watcher::watcher(api.clone(), config.clone()).boxed());
        async move {
            let event = events.next().await?;
            let running = event.is_ok().then_some(events);
            Some((event, running))
        }
    })
}

impl State {
    /// The watch delivered `name` at `version` (`gone`: its deletion): a write of this process that it shows is seen.
    fn saw(&mut self, name: &str, version: Option<&str>, gone: bool) {
        let Some(write) = self.unseen_writes.get(name) else { return };
        let delivered = version.and_then(|v| v.parse::<u64>().ok());
        let shown = match (write.version, delivered) {
            // Resource versions of built-in kinds are comparable integers (Kubernetes 1.35, KEP-5504).
            (Some(written), Some(delivered)) => delivered >= written,
            (None, _) => gone,
            (Some(_), None) => false,
        };
        if shown {
            self.unseen_writes.remove(name);
        }
        let patience = UNSEEN_WRITE_PATIENCE;
        self.unseen_writes.retain(|_, write| write.done.elapsed() < patience);
    }
}

/// One object's metadata as the copy holds it: its identity, versions and timestamps, and the kept labels and
/// annotations packed in one string each (a map per object would cost several times the text it holds).
#[derive(Debug, PartialEq)]
pub struct CachedMeta {
    name: Box<str>,
    namespace: Option<Box<str>>,
    uid: Option<Box<str>>,
    resource_version: Option<Box<str>>,
    creation_timestamp: Option<Time>,
    deletion_timestamp: Option<Time>,
    labels: PackedMap,
    annotations: PackedMap,
}

impl CachedMeta {
    fn new(meta: ObjectMeta, keep: fn(&str) -> bool) -> CachedMeta {
        CachedMeta {
            name: meta.name.unwrap_or_default().into(),
            namespace: meta.namespace.map(String::into_boxed_str),
            uid: meta.uid.map(String::into_boxed_str),
            resource_version: meta.resource_version.map(String::into_boxed_str),
            creation_timestamp: meta.creation_timestamp,
            deletion_timestamp: meta.deletion_timestamp,
            labels: PackedMap::new(meta.labels, keep),
            annotations: PackedMap::new(meta.annotations, keep),
        }
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A kept label's value.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key)
    }

    /// A kept annotation's value.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key)
    }

    /// The metadata as Kubernetes types it, with what was kept (for readers written against `ObjectMeta`).
    pub fn meta(&self) -> ObjectMeta {
        ObjectMeta {
            name: Some(self.name.to_string()),
            namespace: self.namespace.as_deref().map(str::to_owned),
            uid: self.uid.as_deref().map(str::to_owned),
            resource_version: self.resource_version.as_deref().map(str::to_owned),
            creation_timestamp: self.creation_timestamp.clone(),
            deletion_timestamp: self.deletion_timestamp.clone(),
            labels: Some(self.labels.map()),
            annotations: Some(self.annotations.map()),
            ..ObjectMeta::default()
        }
    }
}

/// Keys and values in one string, with where each ends.
#[derive(Debug, PartialEq, Default)]
struct PackedMap {
    text: Box<str>,
    /// Per pair, the end of its key and the end of its value in `text` (a pair starts where the one before ends).
    ends: Box<[(u32, u32)]>,
}

impl PackedMap {
    fn new(map: Option<BTreeMap<String, String>>, keep: fn(&str) -> bool) -> PackedMap {
        let mut text = String::new();
        let mut ends = Vec::new();
        for (key, value) in map.into_iter().flatten().filter(|(key, _)| keep(key)) {
            text.push_str(&key);
            let key_end = text.len();
            text.push_str(&value);
            let (Ok(key_end), Ok(value_end)) = (u32::try_from(key_end), u32::try_from(text.len())) else { break };
            ends.push((key_end, value_end));
        }
        PackedMap { text: text.into_boxed_str(), ends: ends.into_boxed_slice() }
    }

    fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut start = 0;
        self.ends.iter().map(move |&(key_end, value_end)| {
            let (key_end, value_end) = (key_end as usize, value_end as usize);
            let pair = (&self.text[start..key_end], &self.text[key_end..value_end]);
            start = value_end;
            pair
        })
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, value)| value)
    }

    fn map(&self) -> BTreeMap<String, String> {
        self.iter().map(|(key, value)| (key.to_owned(), value.to_owned())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Namespace;

    fn object(name: &str, version: &str) -> PartialObjectMeta<Namespace> {
        let metadata = ObjectMeta {
            name: Some(name.to_owned()),
            resource_version: Some(version.to_owned()),
            managed_fields: Some(vec![Default::default()]),
            labels: Some([("kept/a", "1"), ("other", "2")].map(|(k, v)| (k.to_owned(), v.to_owned())).into()),
            finalizers: Some(vec!["kubernetes".to_owned()]),
            ..ObjectMeta::default()
        };
        PartialObjectMeta { types: None, metadata, _phantom: std::marker::PhantomData }
    }

    fn synced(names: &[(&str, &str)]) -> Watched {
        let watched = Watched::new("namespaces", |key| key.starts_with("kept/"));
        watched.shared.apply::<Namespace>(Event::Init);
        for (name, version) in names {
            watched.shared.apply(Event::InitApply(object(name, version)));
        }
        watched.shared.apply::<Namespace>(Event::InitDone);
        assert!(watched.figures().synced);
        watched
    }

    fn version(cached: Cached) -> Option<String> {
        match cached {
            Cached::Present(kept) => kept.meta().resource_version,
            other => panic!("expected an object, got {other:?}"),
        }
    }

    #[test]
    fn nothing_is_known_before_the_first_list_is_whole() {
        let watched = Watched::new("namespaces", |key| key.starts_with("kept/"));
        assert_eq!(watched.get("a"), Cached::Unknown);
        watched.shared.apply::<Namespace>(Event::Init);
        watched.shared.apply(Event::InitApply(object("a", "5")));
        assert_eq!(watched.get("a"), Cached::Unknown, "half a list is not the cluster");
        assert_eq!(watched.all(), None);
        watched.shared.apply::<Namespace>(Event::InitDone);
        assert_eq!(version(watched.get("a")).as_deref(), Some("5"));
        assert_eq!(watched.get("b"), Cached::Absent);
    }

    #[test]
    fn events_change_the_copy_and_only_what_is_needed_is_kept() {
        let watched = synced(&[("a", "5")]);
        watched.shared.apply(Event::Apply(object("a", "7")));
        watched.shared.apply(Event::Apply(object("b", "8")));
        let Cached::Present(a) = watched.get("a") else { panic!("a is there") };
        let meta = a.meta();
        assert_eq!(meta.resource_version.as_deref(), Some("7"));
        assert_eq!((&meta.managed_fields, &meta.finalizers), (&None, &None));
        let labels: Vec<&str> = meta.labels.iter().flatten().map(|(key, _)| key.as_str()).collect();
        assert_eq!(labels, ["kept/a"], "only the kept keys");
        assert_eq!((a.label("kept/a"), a.label("other"), a.annotation("kept/a")), (Some("1"), None, None));
        watched.shared.apply(Event::Delete(object("a", "9")));
        assert_eq!(watched.get("a"), Cached::Absent);
        assert_eq!(watched.figures(), WatchedFigures { objects: 1, synced: true, restarts: 0 });
    }

    #[test]
    fn kept_labels_and_annotations_read_back_as_they_were() {
        let pairs = |entries: &[(&str, &str)]| -> BTreeMap<String, String> {
            entries.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
        };
        let annotations = pairs(&[("kept/a", ""), ("kept/b", r#"{"x":"ü"}"#), ("kept/c", "3"), ("dropped", "4")]);
        let meta = ObjectMeta {
            name: Some("n".to_owned()),
            uid: Some("u".to_owned()),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        };
        let kept = CachedMeta::new(meta, |key| key.starts_with("kept/"));
        assert_eq!(kept.annotation("kept/b"), Some(r#"{"x":"ü"}"#));
        assert_eq!(kept.annotation("kept/a"), Some(""));
        assert_eq!(kept.annotation("dropped"), None);
        let back = kept.meta();
        assert_eq!(back.annotations, Some(pairs(&[("kept/a", ""), ("kept/b", r#"{"x":"ü"}"#), ("kept/c", "3")])));
        assert_eq!(
            (back.name.as_deref(), back.uid.as_deref(), back.labels),
            (Some("n"), Some("u"), Some(BTreeMap::new()))
        );
    }

    #[test]
    fn a_relist_replaces_the_copy_and_drops_what_it_does_not_list() {
        let watched = synced(&[("a", "5"), ("b", "6")]);
        watched.shared.apply::<Namespace>(Event::Init);
        watched.shared.apply(Event::InitApply(object("b", "10")));
        assert_eq!(version(watched.get("a")).as_deref(), Some("5"), "the old copy serves until the list is whole");
        watched.shared.apply::<Namespace>(Event::InitDone);
        assert_eq!(watched.get("a"), Cached::Absent, "deleted while the watch was away");
        assert_eq!(version(watched.get("b")).as_deref(), Some("10"));
    }

    #[test]
    fn an_error_stops_the_copy_answering_until_a_new_list() {
        let watched = synced(&[("a", "5")]);
        watched.shared.lost("connection refused");
        assert_eq!(watched.get("a"), Cached::Unknown);
        assert_eq!(watched.all(), None);
        assert_eq!(watched.figures(), WatchedFigures { objects: 1, synced: false, restarts: 1 });
        watched.shared.apply::<Namespace>(Event::Init);
        watched.shared.apply(Event::InitApply(object("a", "6")));
        watched.shared.apply::<Namespace>(Event::InitDone);
        assert_eq!(version(watched.get("a")).as_deref(), Some("6"));
    }

    #[test]
    fn an_own_write_is_read_from_the_cluster_until_the_watch_shows_it() {
        let watched = synced(&[("a", "5")]);
        watched.wrote(&object("a", "12").metadata);
        assert_eq!(watched.get("a"), Cached::Unknown);
        watched.shared.apply(Event::Apply(object("a", "11")));
        assert_eq!(watched.get("a"), Cached::Unknown, "an older event does not show the write");
        watched.shared.apply(Event::Apply(object("a", "12")));
        assert_eq!(version(watched.get("a")).as_deref(), Some("12"));
        assert!(watched.all().is_some());
    }

    #[test]
    fn an_own_write_the_watch_showed_first_is_not_waited_for() {
        let watched = synced(&[("a", "5")]);
        watched.shared.apply(Event::Apply(object("a", "12")));
        watched.wrote(&object("a", "12").metadata);
        assert_eq!(version(watched.get("a")).as_deref(), Some("12"));
    }

    #[test]
    fn an_own_delete_is_read_from_the_cluster_until_the_watch_shows_it_gone() {
        let watched = synced(&[("a", "5")]);
        watched.deleted("a");
        assert_eq!(watched.get("a"), Cached::Unknown);
        assert_eq!(watched.all(), None, "a count would include what this process deleted");
        watched.shared.apply(Event::Apply(object("a", "6")));
        assert_eq!(watched.get("a"), Cached::Unknown);
        watched.shared.apply(Event::Delete(object("a", "7")));
        assert_eq!(watched.get("a"), Cached::Absent);
    }

    #[test]
    fn a_list_asked_for_after_a_write_shows_it() {
        let watched = synced(&[]);
        watched.wrote(&object("a", "3").metadata);
        watched.shared.apply::<Namespace>(Event::Init);
        watched.shared.apply::<Namespace>(Event::InitDone);
        assert_eq!(watched.get("a"), Cached::Absent, "the relist saw the cluster after the write");
    }

    /// An apiserver whose `n`th list holds one namespace, `listed-n`, and whose first watch fails (500); later
    /// watches stay open without an event.
    fn failing_once() -> kube::Client {
        use http_body_util::{BodyExt, Full, StreamBody};
        use hyper::body::{Bytes, Frame};
        use std::convert::Infallible;
        use std::sync::atomic::{AtomicUsize, Ordering};

        let (lists, watches) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
            let watch = request.uri().query().unwrap_or_default().contains("watch=true");
            let (status, body) = if !watch {
                let n = lists.fetch_add(1, Ordering::SeqCst) + 1;
                let item = format!(r#"{{"metadata":{{"name":"listed-{n}","resourceVersion":"{n}"}}}}"#);
                let list = format!(r#"{{"metadata":{{"resourceVersion":"{n}"}},"items":[{item}]}}"#);
                (200, Full::new(Bytes::from(list)).boxed())
            } else if watches.fetch_add(1, Ordering::SeqCst) == 0 {
                let failed = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","code":500}"#;
                (500, Full::new(Bytes::from(failed)).boxed())
            } else {
                let never = futures::stream::pending::<Result<Frame<Bytes>, Infallible>>();
                (200, BodyExt::boxed(StreamBody::new(never)))
            };
            let mut response = http::Response::new(body);
            *response.status_mut() = http::StatusCode::from_u16(status).expect("a status");
            async move { Ok::<_, Infallible>(response) }
        });
        kube::Client::new(service, "default")
    }

    #[tokio::test]
    async fn a_watch_error_starts_over_with_a_fresh_list() {
        let watched = Watched::new("namespaces", |_| true);
        watched.start(Api::<PartialObjectMeta<Namespace>>::all(failing_once()), "", 10);
        for _ in 0..400 {
            if watched.figures().restarts == 1 && matches!(watched.get("listed-2"), Cached::Present(_)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(matches!(watched.get("listed-2"), Cached::Present(_)), "listed again after the failed watch");
        assert_eq!(watched.get("listed-1"), Cached::Absent, "the new list replaced the old");
        assert_eq!(watched.figures(), WatchedFigures { objects: 1, synced: true, restarts: 1 });
    }
}
