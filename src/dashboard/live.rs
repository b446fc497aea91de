//! What keeps dashboard pages live: a hub of Kubernetes watches, **one per (namespace, kind), shared by every viewer**
//! of that namespace, started when its first viewer comes and stopped when its last one leaves. Watches carry
//! metadata only and are made with the broker's identity (granted per tenant namespace); viewers only learn *which
//! kind* changed, at most once per [`COALESCE`], and re-read that kind with their own client, so RBAC still decides
//! what they see. Which kinds a viewer may hear of is checked with their client before they subscribe.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use kube::api::{ApiResource, DynamicObject};
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Api, Client};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::tenant::objects::Kind;

/// The shortest time between two events of one kind: a rollout's burst of changes is one re-read per page.
pub const COALESCE: Duration = Duration::from_millis(500);
/// How long one watch request lasts before it is renewed from where it was (the apiserver's limit is lower than 300).
const WATCH_SECONDS: u32 = 280;

/// Where changes come from: something that, for one namespace and kind, signals `changed` at every change it sees
/// and runs until dropped. The hub's only view of Kubernetes, so that its sharing can be tested alone.
pub trait WatchSource: Send + Sync + 'static {
    /// Watches `kind` in `namespace`, signalling each change on `changed` (a `try_send`: a full channel already
    /// holds a pending change), forever, recovering from errors itself.
    fn watch(&self, namespace: String, kind: Kind, changed: mpsc::Sender<()>) -> BoxFuture<'static, ()>;
}

/// Watches of the real cluster, with the broker's own client.
pub struct KubeWatches {
    /// The broker's client.
    pub client: Client,
}

impl WatchSource for KubeWatches {
    fn watch(&self, namespace: String, kind: Kind, changed: mpsc::Sender<()>) -> BoxFuture<'static, ()> {
        let resource = kind.api_resource();
        let api = Api::<PartialObjectMeta<DynamicObject>>::namespaced_with(self.client.clone(), &namespace, &resource);
        watch_forever(api, resource, namespace, changed).boxed()
    }
}

/// Watches `api`'s objects' metadata with kube-runtime's watcher, which renews the watch from the last version seen,
/// lists again when that version is too old, and pauses with its standard back-off after an error (the apiserver
/// gone). Signals a change once the objects have been listed, and at each change from then on.
async fn watch_forever(
    api: Api<PartialObjectMeta<DynamicObject>>,
    resource: ApiResource,
    namespace: String,
    changed: mpsc::Sender<()>,
) {
    let config = watcher::Config::default().timeout(WATCH_SECONDS);
    let mut events = std::pin::pin!(watcher(api, config).default_backoff());
    while let Some(event) = events.next().await {
        match event {
            // What is there already is not news; once it is listed, the viewers read the kind again (what changed
            // while the page that started this watch loaded, or before a relist, is not heard of otherwise).
            Ok(Event::Init | Event::InitApply(_)) => {}
            Ok(Event::InitDone | Event::Apply(_) | Event::Delete(_)) => {
                let _ = changed.try_send(());
            }
            Err(error) => tracing::warn!(%error, namespace, kind = resource.plural, "a dashboard watch failed"),
        }
    }
}

/// One running watch and how many viewers hear of it.
struct Running {
    viewers: usize,
    task: JoinHandle<()>,
}

/// The watches of one namespace and the channel their changes go out on.
struct Namespace {
    changes: broadcast::Sender<Kind>,
    kinds: HashMap<Kind, Running>,
}

/// The live view's shared watches, namespace by namespace.
#[derive(Clone)]
pub struct Hub {
    source: Arc<dyn WatchSource>,
    namespaces: Arc<Mutex<HashMap<String, Namespace>>>,
}

impl Hub {
    /// A hub watching through `source`.
    pub fn new(source: Arc<dyn WatchSource>) -> Hub {
        Hub { source, namespaces: Arc::default() }
    }

    /// Whether anyone watches `namespace` now (its watches run).
    pub fn is_watched(&self, namespace: &str) -> bool {
        self.lock().contains_key(namespace)
    }

    /// Watches running, across namespaces.
    pub fn watches(&self) -> usize {
        self.lock().values().map(|namespace| namespace.kinds.len()).sum()
    }

    /// Hears of changes of `kinds` in `namespace` until the subscription is dropped; starts the watches no one ran.
    pub fn subscribe(&self, namespace: &str, kinds: Vec<Kind>) -> Subscription {
        let metrics = crate::metrics::global();
        let mut namespaces = self.lock();
        let watched = namespaces
            .entry(namespace.to_owned())
            .or_insert_with(|| Namespace { changes: broadcast::channel(64).0, kinds: HashMap::new() });
        // A watch that already runs said nothing of what changed while this viewer's page loaded: the viewer reads
        // those kinds again once (a new watch says so itself once it has caught up).
        let mut running_already = Vec::new();
        for &kind in &kinds {
            let running = watched.kinds.entry(kind).or_insert_with(|| {
                metrics.dashboard_watches.inc();
                Running { viewers: 0, task: self.start(namespace, kind, watched.changes.clone()) }
            });
            if running.viewers > 0 {
                running_already.push(kind);
            }
            running.viewers += 1;
        }
        metrics.dashboard_viewers.inc();
        let changes = watched.changes.subscribe();
        Subscription { hub: self.clone(), namespace: namespace.to_owned(), kinds, changes, catch_up: running_already }
    }

    /// Runs the watch of `kind` in `namespace`, relaying its changes to `out` at most once per [`COALESCE`].
    fn start(&self, namespace: &str, kind: Kind, out: broadcast::Sender<Kind>) -> JoinHandle<()> {
        let (changed, mut pending) = mpsc::channel(1);
        let watch = self.source.watch(namespace.to_owned(), kind, changed);
        tokio::spawn(async move {
            let relay = async move {
                while pending.recv().await.is_some() {
                    let _ = out.send(kind);
                    tokio::time::sleep(COALESCE).await;
                }
            };
            tokio::join!(watch, relay);
        })
    }

    fn release(&self, namespace: &str, kinds: &[Kind]) {
        let metrics = crate::metrics::global();
        let mut namespaces = self.lock();
        if let Some(watched) = namespaces.get_mut(namespace) {
            for kind in kinds {
                let Some(running) = watched.kinds.get_mut(kind) else { continue };
                running.viewers -= 1;
                if running.viewers == 0 {
                    running.task.abort();
                    watched.kinds.remove(kind);
                    metrics.dashboard_watches.dec();
                }
            }
            if watched.kinds.is_empty() {
                namespaces.remove(namespace);
            }
        }
        metrics.dashboard_viewers.dec();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Namespace>> {
        // Every change under the lock is complete before anything can panic; go on after a panic elsewhere.
        self.namespaces.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One viewer's hearing of a namespace's changes; dropping it (the page closed) lets the watches go.
pub struct Subscription {
    hub: Hub,
    namespace: String,
    kinds: Vec<Kind>,
    changes: broadcast::Receiver<Kind>,
    /// Kinds to read again first, whose watches ran before this viewer came.
    catch_up: Vec<Kind>,
}

impl Subscription {
    /// The next kind that changed among those subscribed to. A viewer too slow to keep up hears of every kind.
    pub async fn next(&mut self) -> Option<Vec<Kind>> {
        if !self.catch_up.is_empty() {
            return Some(std::mem::take(&mut self.catch_up));
        }
        loop {
            match self.changes.recv().await {
                Ok(kind) if self.kinds.contains(&kind) => return Some(vec![kind]),
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(_)) => return Some(self.kinds.clone()),
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.release(&self.namespace, &self.kinds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts the watches it runs and lets the test signal changes on them.
    #[derive(Default)]
    struct Recorded {
        started: AtomicUsize,
        running: Arc<AtomicUsize>,
        senders: Mutex<Vec<(String, Kind, mpsc::Sender<()>)>>,
    }

    /// Decrements the running count when the watch's future is dropped (the hub aborted it).
    struct Stopped(Arc<AtomicUsize>);
    impl Drop for Stopped {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    impl WatchSource for Recorded {
        fn watch(&self, namespace: String, kind: Kind, changed: mpsc::Sender<()>) -> BoxFuture<'static, ()> {
            self.started.fetch_add(1, Ordering::SeqCst);
            self.running.fetch_add(1, Ordering::SeqCst);
            self.senders.lock().expect("lock").push((namespace, kind, changed));
            let stopped = Stopped(self.running.clone());
            async move {
                let _stopped = stopped;
                futures::future::pending::<()>().await
            }
            .boxed()
        }
    }

    impl Recorded {
        fn change(&self, namespace: &str, kind: Kind) {
            for (watched, watched_kind, sender) in self.senders.lock().expect("lock").iter() {
                if watched == namespace && *watched_kind == kind {
                    let _ = sender.try_send(());
                }
            }
        }
    }

    async fn settled(condition: impl Fn() -> bool) {
        for _ in 0..200 {
            if condition() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("never settled");
    }

    #[tokio::test]
    async fn viewers_of_a_namespace_share_one_watch_per_kind_and_the_last_to_leave_stops_it() {
        let source = Arc::new(Recorded::default());
        let hub = Hub::new(source.clone());
        let kinds = vec![Kind::Pods, Kind::Events];
        let mut viewers: Vec<Subscription> = (0..3).map(|_| hub.subscribe("caas-a", kinds.clone())).collect();
        assert_eq!(source.started.load(Ordering::SeqCst), 2, "one watch per kind for three viewers");
        assert_eq!(hub.watches(), 2);
        let other = hub.subscribe("caas-b", vec![Kind::Pods]);
        assert_eq!((source.started.load(Ordering::SeqCst), hub.watches()), (3, 3), "another namespace, its own");

        assert!(viewers[0].next().now_or_never().is_none(), "the first viewer's new watches say when they caught up");
        for viewer in &mut viewers[1..] {
            let catch_up = viewer.next().now_or_never().flatten();
            assert_eq!(catch_up, Some(kinds.clone()), "a later viewer reads the running watches' kinds again once");
        }
        source.change("caas-a", Kind::Pods);
        for viewer in &mut viewers {
            assert_eq!(viewer.next().await, Some(vec![Kind::Pods]), "every viewer hears of it");
        }
        drop(other);
        assert!(!hub.is_watched("caas-b"));
        viewers.truncate(1);
        assert_eq!(hub.watches(), 2, "a remaining viewer keeps the watches");
        viewers.clear();
        assert_eq!(hub.watches(), 0);
        assert!(!hub.is_watched("caas-a"));
        settled(|| source.running.load(Ordering::SeqCst) == 0).await;
    }

    #[tokio::test]
    async fn a_burst_of_changes_is_one_event_then_one_more_after_the_pause() {
        let source = Arc::new(Recorded::default());
        let hub = Hub::new(source.clone());
        let mut viewer = hub.subscribe("caas-a", vec![Kind::Pods, Kind::Deployments]);
        for _ in 0..10 {
            source.change("caas-a", Kind::Pods);
            tokio::task::yield_now().await;
        }
        let started = tokio::time::Instant::now();
        assert_eq!(viewer.next().await, Some(vec![Kind::Pods]));
        assert_eq!(viewer.next().await, Some(vec![Kind::Pods]), "the changes during the pause are not lost");
        assert!(started.elapsed() >= COALESCE - Duration::from_millis(50), "but wait for the pause");
        assert!(viewer.next().now_or_never().is_none(), "and they are one event, not ten");
        source.change("caas-a", Kind::Services);
        assert!(viewer.next().now_or_never().is_none(), "a kind not subscribed to is not heard of");
    }
}
