//! Prometheus metrics, served at `/metrics` in the text exposition format: HTTP requests by route and status with
//! their latencies, OSB operations by plan and outcome, apiserver call latencies, and instances by plan (counted from
//! the cluster at scrape time, so every replica reports the same truth).
//!
//! One registry per process: metrics describe the process, and every part of it (router, Kubernetes client) records
//! into the same one.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::atomic::AtomicU64;
use std::task::{Context, Poll};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of an HTTP request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// Route template, e.g. `/v2/service_instances/{instance_id}`.
    pub route: String,
    /// HTTP method.
    pub method: String,
    /// Response status code.
    pub status: u16,
}

/// Labels of a route's latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// Route template.
    pub route: String,
    /// HTTP method.
    pub method: String,
}

/// Labels of an OSB operation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    /// provision, update, deprovision, bind, unbind.
    pub operation: String,
    /// Offering name.
    pub service: String,
    /// Plan name.
    pub plan: String,
    /// succeeded (2xx), refused (4xx) or failed (5xx).
    pub outcome: String,
}

/// Labels of an apiserver call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    /// HTTP method of the call.
    pub method: String,
    /// Status code, or `error` when there was no answer.
    pub status: String,
}

/// Labels of the instance count.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PlanLabels {
    /// Offering name.
    pub service: String,
    /// Plan name.
    pub plan: String,
}

/// Labels of the copy of one kind of the broker's records.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    /// namespaces, workload_records or binding_records.
    pub kind: String,
}

/// Labels of a cluster's gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterLabels {
    /// The cluster's name (`clusters[].name`).
    pub cluster: String,
}

/// Labels of a drift repair.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RepairLabels {
    /// The kind of object put back: Namespace, ResourceQuota, LimitRange, NetworkPolicy or RoleBinding.
    pub kind: String,
}

/// Labels of an instance's usage counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UsageLabels {
    /// The organization's guid (label-safe).
    pub organization: String,
    /// The space's guid (label-safe).
    pub space: String,
    /// Offering name.
    pub service: String,
    /// Plan name.
    pub plan: String,
    /// The exact instance id.
    pub instance: String,
    /// virtual-cluster or workload.
    pub kind: String,
}

/// Every metric of the process.
pub struct Metrics {
    registry: Registry,
    /// HTTP requests by route, method and status.
    pub http_requests: Family<HttpLabels, Counter>,
    /// HTTP latency by route and method.
    pub http_duration: Family<RouteLabels, Histogram>,
    /// OSB operations by plan and outcome.
    pub operations: Family<OperationLabels, Counter>,
    /// Apiserver call latency.
    pub apiserver_duration: Family<ApiLabels, Histogram>,
    /// Instances by plan, set at each scrape.
    pub instances: Family<PlanLabels, Gauge>,
    /// The dashboard's live view: Kubernetes watches running (one per namespace and kind, shared by its viewers).
    pub dashboard_watches: Gauge,
    /// The dashboard's live view: open live pages (event streams).
    pub dashboard_viewers: Gauge,
    /// Whether each cluster answered its last check (1) or not (0), where the broker serves several.
    pub cluster_up: Family<ClusterLabels, Gauge>,
    /// Instances on each cluster, set at each scrape, where the broker serves several.
    pub cluster_instances: Family<ClusterLabels, Gauge>,
    /// Objects in the watch-fed copy of the broker's records, by kind.
    pub cache_objects: Family<CacheLabels, Gauge>,
    /// Whether that copy answers (1) or every read goes to the cluster (0), by kind.
    pub cache_synced: Family<CacheLabels, Gauge>,
    /// Times a watch of that copy failed and started over with a new list, by kind.
    pub cache_watch_restarts: Family<CacheLabels, Counter>,
    /// Objects of virtual clusters deleted or changed outside the broker and put back, by kind.
    pub repairs: Family<RepairLabels, Counter>,
    /// Streaming sessions the broker stopped because nobody had watched them for their idle time.
    pub session_idle_stops: Counter,
    /// Pod-hours the idle stops saved: a counter, not a gauge, because saved time only grows and a rate of it (pod-hours
    /// saved per hour) is what an operator charts. A session stopped for idleness adds the hours it stayed stopped
    /// when it ends that stop, woken (an update with `state`) or deleted; a session still asleep adds nothing yet,
    /// so the count lags by the sleeps in progress and is never an estimate.
    pub session_idle_saved_pod_hours: Counter<f64, AtomicU64>,
    /// Usage per instance, one counter per quantity in the order of [`crate::lifecycle::usage::UsageTotals::NAMES`]:
    /// the usage records' lifetime totals (see [`crate::lifecycle::usage`]), so every replica shows the same.
    pub usage: [Family<UsageLabels, Counter<f64, AtomicU64>>; 7],
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// The process's metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let mut registry = Registry::with_prefix("caas_broker");
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_duration =
            Family::<RouteLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        let operations = Family::<OperationLabels, Counter>::default();
        let apiserver_duration =
            Family::<ApiLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        let instances = Family::<PlanLabels, Gauge>::default();
        registry.register("http_requests", "HTTP requests answered", http_requests.clone());
        registry.register("http_request_duration_seconds", "Time to answer an HTTP request", http_duration.clone());
        registry.register("osb_operations", "OSB operations by plan and outcome", operations.clone());
        registry.register(
            "kubernetes_request_duration_seconds",
            "Time the Kubernetes apiserver took to answer a call",
            apiserver_duration.clone(),
        );
        registry.register("instances", "Service instances by plan, counted from the cluster", instances.clone());
        let (dashboard_watches, dashboard_viewers) = (Gauge::default(), Gauge::default());
        registry.register(
            "dashboard_watches",
            "Kubernetes watches the dashboard's live view runs, one per namespace and kind",
            dashboard_watches.clone(),
        );
        registry.register("dashboard_viewers", "Open live dashboard pages", dashboard_viewers.clone());
        let (cluster_up, cluster_instances) = (Family::default(), Family::default());
        registry.register(
            "cluster_up",
            "Whether each cluster answered its last check (1) or not (0)",
            cluster_up.clone(),
        );
        registry.register("cluster_instances", "Service instances on each cluster", cluster_instances.clone());
        let (cache_objects, cache_synced) = (Family::default(), Family::default());
        let cache_watch_restarts = Family::<CacheLabels, Counter>::default();
        registry.register(
            "cache_objects",
            "Objects in the watch-fed copy of the broker's records",
            cache_objects.clone(),
        );
        registry.register(
            "cache_synced",
            "Whether the copy of the broker's records answers (1) or reads go to the cluster (0)",
            cache_synced.clone(),
        );
        registry.register(
            "cache_watch_restarts",
            "Times a watch of the copy of the broker's records failed and listed again",
            cache_watch_restarts.clone(),
        );
        let repairs = Family::<RepairLabels, Counter>::default();
        registry.register(
            "repairs",
            "Objects of virtual clusters deleted or changed outside the broker and put back, by kind",
            repairs.clone(),
        );
        let session_idle_stops = Counter::default();
        registry.register(
            "session_idle_stops",
            "Streaming sessions stopped because nobody had watched them for their idle time",
            session_idle_stops.clone(),
        );
        let session_idle_saved_pod_hours = Counter::<f64, AtomicU64>::default();
        registry.register(
            "session_idle_saved_pod_hours",
            "Pod-hours streaming sessions stayed stopped for idleness, counted when they are woken or deleted",
            session_idle_saved_pod_hours.clone(),
        );
        let usage: [Family<UsageLabels, Counter<f64, AtomicU64>>; 7] = Default::default();
        let help = [
            "CPU in use (metrics API), in core-seconds",
            "Memory in use (metrics API, working set), in byte-seconds",
            "CPU requested by running pods, in core-seconds",
            "Memory requested by running pods, in byte-seconds",
            "GPUs (nvidia.com/gpu) requested by running pods, in GPU-seconds",
            "Storage claimed by PersistentVolumeClaims, in byte-seconds",
            "Streaming sessions' pods running, in pod-seconds",
        ];
        for ((name, help), family) in crate::lifecycle::usage::UsageTotals::NAMES.iter().zip(help).zip(&usage) {
            registry.register(format!("usage_{name}"), format!("{help}, per instance"), family.clone());
        }
        Metrics {
            registry,
            http_requests,
            http_duration,
            operations,
            apiserver_duration,
            instances,
            dashboard_watches,
            dashboard_viewers,
            cluster_up,
            cluster_instances,
            cache_objects,
            cache_synced,
            cache_watch_restarts,
            repairs,
            session_idle_stops,
            session_idle_saved_pod_hours,
            usage,
        }
    })
}

impl Metrics {
    /// Sets the instance counts (a full replacement: plans that have none left drop to zero).
    pub fn set_instances(&self, counts: &BTreeMap<(String, String), i64>) {
        self.instances.clear();
        for ((service, plan), count) in counts {
            self.instances.get_or_create(&PlanLabels { service: service.clone(), plan: plan.clone() }).set(*count);
        }
    }

    /// Sets the figures of the copy of the broker's records, kind by kind.
    /// Sets whether `cluster` answered its last check.
    pub fn set_cluster_up(&self, cluster: &str, up: bool) {
        self.cluster_up.get_or_create(&ClusterLabels { cluster: cluster.to_owned() }).set(i64::from(up));
    }

    /// Sets how many instances `cluster` holds.
    pub fn set_cluster_instances(&self, cluster: &str, instances: i64) {
        self.cluster_instances.get_or_create(&ClusterLabels { cluster: cluster.to_owned() }).set(instances);
    }

    /// Sets the figures of the copy of the broker's records, kind by kind.
    pub fn set_cache(&self, figures: &[(&str, crate::k8s::watched::WatchedFigures)]) {
        for (kind, figures) in figures {
            let labels = CacheLabels { kind: (*kind).to_owned() };
            self.cache_objects.get_or_create(&labels).set(i64::try_from(figures.objects).unwrap_or(i64::MAX));
            self.cache_synced.get_or_create(&labels).set(i64::from(figures.synced));
            let restarts = self.cache_watch_restarts.get_or_create(&labels);
            restarts.inc_by(figures.restarts.saturating_sub(restarts.get()));
        }
    }

    /// Sets an instance's usage counters to its record's lifetime totals; a counter never goes down (a total older
    /// than the one shown, read from another replica's earlier write, leaves it as it is).
    pub fn set_usage(
        &self,
        instance: &crate::lifecycle::usage::record::Accounted,
        lifetime: &crate::lifecycle::usage::UsageTotals,
    ) {
        let labels = UsageLabels {
            organization: instance.organization.clone(),
            space: instance.space.clone(),
            service: instance.service.clone(),
            plan: instance.plan.clone(),
            instance: instance.instance_id.clone(),
            kind: instance.kind.as_str().to_owned(),
        };
        for (family, value) in self.usage.iter().zip(lifetime.values()) {
            let counter = family.get_or_create(&labels);
            let more = value - counter.get();
            if more > 0.0 {
                counter.inc_by(more);
            }
        }
    }

    /// Counts one object of `kind` put back by drift repair.
    pub fn repaired(&self, kind: &str) {
        self.repairs_of(kind).inc();
    }

    /// The count of drift repairs of `kind` (made at 0 when there was none).
    pub fn repairs_of(&self, kind: &str) -> Counter {
        self.repairs.get_or_create(&RepairLabels { kind: kind.to_owned() }).clone()
    }

    /// Records the outcome of an OSB operation from its HTTP status.
    pub fn operation(&self, operation: &str, service: &str, plan: &str, status: u16) {
        let outcome = match status {
            200..=299 => "succeeded",
            400..=499 => "refused",
            _ => "failed",
        };
        let labels = OperationLabels {
            operation: operation.to_owned(),
            service: service.to_owned(),
            plan: plan.to_owned(),
            outcome: outcome.to_owned(),
        };
        self.operations.get_or_create(&labels).inc();
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

/// A tower layer for the Kubernetes client that times every apiserver call.
#[derive(Clone, Copy, Debug, Default)]
pub struct ApiserverTiming;

impl<S> tower::Layer<S> for ApiserverTiming {
    type Service = Timed<S>;

    fn layer(&self, inner: S) -> Timed<S> {
        Timed { inner }
    }
}

/// The service [`ApiserverTiming`] wraps around the client's stack.
pub struct Timed<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, R> tower::Service<http::Request<B>> for Timed<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request.method().to_string();
        let started = Instant::now();
        let future = self.inner.call(request);
        Box::pin(async move {
            let result = future.await;
            let status = match &result {
                Ok(response) => response.status().as_u16().to_string(),
                Err(_) => "error".to_owned(),
            };
            global()
                .apiserver_duration
                .get_or_create(&ApiLabels { method, status })
                .observe(started.elapsed().as_secs_f64());
            result
        })
    }
}
