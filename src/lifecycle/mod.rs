//! The OSB lifecycle: what the broker does with its own cluster-wide client, and so the one place that holds the
//! broker's privileges. Instances (virtual clusters and workload plans, [`instances`]), bindings and the identities
//! behind them, members, sign-in (reviewing a token, minting a kubeconfig), the tenant guard it requires and the
//! repair of drift, all computed from and written to the cluster. The faces (the OSB API and the dashboard) parse
//! requests and shape answers; this module decides, and [`crate::k8s`] builds the objects. The tenant's domain
//! ([`crate::tenant`]) acts as the signed-in user and comes down here only through [`for_tenants`].

mod bindings;
mod credentials;
mod dashboard_watch;
mod drift_repair;
mod error;
pub mod fleet;
pub mod for_tenants;
mod identities;
mod idle_stop;
mod instances;
pub mod members;
pub mod model;
pub mod parameters;
pub mod progress;
mod records;
pub mod revocations;
mod seen_ready;
mod sign_in;
pub mod tenant_guard;
pub mod usage;

use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::catalog::{Catalog, Plan, Service};
use crate::config::{Settings, WorkloadSettings};
use crate::k8s::ClusterEndpoint;
use crate::k8s::names::{LABEL_PLAN, LABEL_SERVICE};
use crate::k8s::workload::PodPlacement;
pub use bindings::{Bound, Unbound};
pub use drift_repair::REASON_REPAIRED;
pub use error::{Error, Result};
pub use for_tenants::{PlanApp, PlanInstance};
pub use idle_stop::IdleStop;
pub use instances::workload::{WorkloadRecord, app_quota_needed};
pub use instances::{Deprovisioned, Provisioned, Updated};
use model::RequestedMaintenance;
use parameters::ParameterSchemas;
use seen_ready::SeenReady;
pub use sign_in::{
    Credential, DASHBOARD_AUDIENCE, KUBECONFIG_TOKEN_SECONDS, Kubeconfig, Refusal, SignIn, Signer, Tenant,
};

/// Instances by (service name, plan name).
pub type InstanceCounts = std::collections::BTreeMap<(String, String), i64>;

/// How the broker lays out and paces its work, from the configuration.
#[derive(Debug, Clone)]
pub struct BrokerOptions {
    /// The name of the cluster this broker acts on (`clusters[].name`; `home` with one cluster), which a provision's
    /// `cluster` parameter must name.
    pub cluster_name: String,
    /// Prefix of tenant namespace names.
    pub namespace_prefix: String,
    /// Base URL of the dashboard, if one is served.
    pub dashboard_base_url: Option<String>,
    /// How long a request without `accepts_incomplete` may wait for the cluster.
    pub sync_timeout: Duration,
    /// One virtual cluster per organization.
    pub one_instance_per_organization: bool,
    /// The broker's own namespace (binding records).
    pub broker_namespace: String,
    /// Where owners' and bindings' ServiceAccounts live, out of every tenant's reach.
    pub identity_namespace: String,
    /// The ClusterRole of the dashboard's watches, which the broker binds to itself per tenant namespace.
    pub dashboard_watch_role: String,
    /// Token lifetime when a bind asks for none.
    pub default_expiration_seconds: u64,
    /// Longest token lifetime a bind may ask for.
    pub max_expiration_seconds: u64,
    /// Image of streaming sessions.
    pub session_image: String,
    /// RuntimeClass of GPU sessions.
    pub gpu_runtime_class: Option<String>,
    /// The nodes workload pods run on and their image pull policy.
    pub placement: PodPlacement,
    /// How long the apiserver keeps one of the record watches open (below the client's read timeout, so that a quiet
    /// watch ends cleanly and resumes instead of failing).
    pub watch_seconds: u32,
    /// The tenant guard the broker requires (`policy.tenant_guard`), or `None` when the operator opted out.
    pub tenant_guard: Option<String>,
    /// The domain under which instances publish Ingress hosts (`ingress.domain`), if limited.
    pub ingress_domain: Option<String>,
    /// How usage is accounted (`usage.*`), or `None` when it is not (`usage.enabled: false`).
    pub usage: Option<usage::UsageOptions>,
}

impl BrokerOptions {
    /// The options the settings describe.
    pub fn from_settings(settings: &Settings) -> BrokerOptions {
        BrokerOptions {
            cluster_name: settings.home_cluster_name().to_owned(),
            namespace_prefix: settings.kubernetes.namespace_prefix.clone(),
            dashboard_base_url: settings.published_dashboard_url(settings.dashboard.listen),
            sync_timeout: Duration::from_secs(settings.limits.sync_timeout_seconds),
            one_instance_per_organization: settings.policy.one_instance_per_organization,
            broker_namespace: settings.kubernetes.broker_namespace.clone(),
            identity_namespace: settings.kubernetes.identity_namespace.clone(),
            dashboard_watch_role: settings.kubernetes.dashboard_watch_role.clone(),
            default_expiration_seconds: settings.bindings.default_expiration_seconds,
            max_expiration_seconds: settings.bindings.max_expiration_seconds,
            session_image: settings.workloads.session_image.clone(),
            gpu_runtime_class: settings.workloads.gpu_runtime_class.clone(),
            placement: PodPlacement::from(&settings.workloads),
            watch_seconds: watch_seconds(settings.kubernetes.request_timeout_seconds),
            tenant_guard: settings.policy.require_tenant_guard.then(|| settings.policy.tenant_guard.clone()),
            ingress_domain: settings.ingress.domain.clone(),
            usage: settings.usage.enabled.then(|| usage::UsageOptions {
                sample: Duration::from_secs(settings.usage.sample_seconds),
                checkpoint: Duration::from_secs(settings.usage.checkpoint_seconds),
                retention_months: settings.usage.retention_months,
            }),
        }
    }
}

impl From<&WorkloadSettings> for PodPlacement {
    /// Where the `workloads` settings put workload pods, and how their images are pulled.
    fn from(settings: &WorkloadSettings) -> PodPlacement {
        PodPlacement {
            node_selector: settings.node_labels(),
            tolerations: settings.taint_tolerations(),
            image_pull_policy: settings.image_pull_policy.map(|policy| format!("{policy:?}")),
        }
    }
}

/// The broker: its catalog, compiled parameter schemas and a client of the cluster that holds all of its state.
pub struct Broker {
    catalog: Arc<Catalog>,
    schemas: ParameterSchemas,
    client: Client,
    endpoint: ClusterEndpoint,
    options: BrokerOptions,
    /// Virtual clusters already seen ready, which `last_operation` need not check again.
    seen_ready: SeenReady,
    /// The broker's records, written through repositories that keep the watch-fed copy repeated reads are answered
    /// from in step.
    records: records::Records,
    /// The broker's own Kubernetes user name, once asked (see `dashboard_watch`).
    own_user: tokio::sync::OnceCell<String>,
    /// Who is told at once when an identity loses access (the dashboard's sessions).
    revocations: revocations::Revocations,
    /// The tenant guard provision and bind require; `None` when the operator opted out.
    guard: Option<Arc<tenant_guard::TenantGuard>>,
    /// Drift repair's watches and task, once started (see [`Broker::repair_drift`]).
    repairs: drift_repair::Repairs,
    /// The watch that stops sessions without a viewer, once started (see [`Broker::stop_idle_sessions`]).
    idle_watch: idle_stop::IdleWatch,
    /// Usage accounting's pending samples, pods' recent use and task (see [`Broker::account_usage`]).
    usage: usage::Accounting,
}

impl Broker {
    /// A broker serving `catalog` on the cluster `client` reaches, handing out credentials for `endpoint`.
    pub fn new(
        catalog: Catalog,
        client: Client,
        endpoint: ClusterEndpoint,
        options: BrokerOptions,
    ) -> Result<Broker, parameters::SchemaError> {
        let schemas = ParameterSchemas::compile(&catalog)?;
        let records = records::Records::new(&client, &options.broker_namespace);
        let guard =
            options.tenant_guard.as_deref().map(|name| Arc::new(tenant_guard::TenantGuard::new(client.clone(), name)));
        Ok(Broker {
            guard,
            catalog: Arc::new(catalog),
            schemas,
            endpoint,
            client,
            options,
            seen_ready: SeenReady::default(),
            records,
            own_user: tokio::sync::OnceCell::new(),
            revocations: revocations::Revocations::default(),
            repairs: drift_repair::Repairs::default(),
            idle_watch: idle_stop::IdleWatch::default(),
            usage: usage::Accounting::default(),
        })
    }

    /// Where to listen for identities losing access in this process (see [`revocations`]).
    pub fn revocations(&self) -> &revocations::Revocations {
        &self.revocations
    }

    /// The catalog, as served.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Starts the watches that keep the copy of the broker's records (see [`records`]); until they have listed, and
    /// whenever they fail, every read goes to the cluster. Needs a Tokio runtime; the watches stop with the broker.
    pub fn watch_records(&self) {
        self.records.start(self.options.watch_seconds);
    }

    /// Checks the tenant guard now and then every minute, saying in the log while it is not in force (nothing when
    /// the operator opted out). Needs a Tokio runtime; the checks stop with the broker.
    pub fn watch_tenant_guard(&self) {
        if let Some(guard) = &self.guard {
            tenant_guard::TenantGuard::watch(guard);
        }
    }

    /// The tenant guard's state (a few seconds old at most), or `None` when the operator opted out of it.
    pub async fn tenant_guard(&self) -> Option<tenant_guard::Verdict> {
        Some(self.guard.as_ref()?.verdict().await)
    }

    /// 503 while the tenant guard the broker requires is not in force: a tenant made now could undo its isolation.
    async fn require_tenant_guard(&self) -> Result<()> {
        match self.tenant_guard().await {
            None | Some(tenant_guard::Verdict::InForce) => Ok(()),
            Some(verdict) => Err(Error::unavailable(verdict.describe())),
        }
    }

    /// What the copy of the broker's records holds and how its watches fare, for `/metrics`.
    pub fn cache_figures(&self) -> Vec<(&'static str, crate::k8s::watched::WatchedFigures)> {
        self.records.all().into_iter().map(|copy| (copy.kind(), copy.figures())).collect()
    }

    /// The cluster client (readiness checks).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The offering and plan a request names; 400 when either is missing, empty or unknown.
    fn service_and_plan(&self, service_id: &str, plan_id: &str) -> Result<(&Service, &Plan)> {
        let service = self.service(service_id)?;
        if plan_id.is_empty() {
            return Err(Error::BadRequest("plan_id is required".to_owned()));
        }
        let plan = service.plan(plan_id).ok_or_else(|| {
            Error::BadRequest(format!("plan_id {plan_id:?} is not a plan of service {}", service.name))
        })?;
        Ok((service, plan))
    }

    fn service(&self, service_id: &str) -> Result<&Service> {
        if service_id.is_empty() {
            return Err(Error::BadRequest("service_id is required".to_owned()));
        }
        self.catalog
            .service(service_id)
            .ok_or_else(|| Error::BadRequest(format!("service_id {service_id:?} is not in the catalog")))
    }

    /// Offering and plan names for ids (`unknown` for what the catalog does not have), for labels and metrics.
    pub fn plan_names(&self, service_id: &str, plan_id: &str) -> (String, String) {
        let service = self.catalog.service(service_id);
        let plan = service.and_then(|service| service.plan(plan_id));
        (
            service.map_or_else(|| "unknown".to_owned(), |s| s.name.clone()),
            plan.map_or_else(|| "unknown".to_owned(), |p| p.name.clone()),
        )
    }

    /// Instances by (service, plan) name: virtual-cluster namespaces and workload records, from the copy of the
    /// records when it can answer for all of them, else counted from the cluster.
    pub async fn count_instances(&self) -> Result<InstanceCounts, kube::Error> {
        use k8s_openapi::api::core::v1::{ConfigMap, Namespace};

        let mut counts = InstanceCounts::new();
        if let (Some(namespaces), Some(records)) =
            (self.records.namespaces.copy().all(), self.records.workloads.copy().all())
        {
            for kept in namespaces.iter().chain(&records) {
                count_one(kept.label(LABEL_SERVICE), kept.label(LABEL_PLAN), &mut counts);
            }
            return Ok(counts);
        }
        count_by_plan(&kube::Api::<Namespace>::all(self.client.clone()), &mut counts).await?;
        let records = kube::Api::<ConfigMap>::namespaced(self.client.clone(), &self.options.broker_namespace);
        match count_by_plan(&records, &mut counts).await {
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            other => other?,
        }
        Ok(counts)
    }

    /// The dashboard's origin (`https://host[:port]`), when a dashboard is configured: the one page that frames a
    /// session's stream from another origin.
    fn dashboard_origin(&self) -> Option<String> {
        origin(self.options.dashboard_base_url.as_deref()?)
    }

    /// The dashboard of an instance, when a dashboard is configured.
    fn dashboard_url(&self, instance_id: &str) -> Option<String> {
        let base = self.options.dashboard_base_url.as_deref()?;
        Some(format!("{}/instances/{}", base.trim_end_matches('/'), utf8_percent_encode(instance_id, URL_COMPONENT)))
    }
}

/// The origin (`scheme://host[:port]`) of an absolute URL: what a browser compares when one page frames another.
fn origin(url: &str) -> Option<String> {
    let url: http::Uri = url.parse().ok()?;
    Some(format!("{}://{}", url.scheme_str()?, url.authority()?))
}

/// Adds the broker's objects in `api` to `counts` by their service and plan labels, reading the metadata a page at a
/// time: a scrape of `/metrics` must not hold ten thousand namespaces in memory at once.
async fn count_by_plan<K>(api: &kube::Api<K>, counts: &mut InstanceCounts) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    use crate::k8s::names::{LABEL_MANAGED_BY, MANAGED_BY};
    const PAGE: u32 = 500;
    let selector = format!("{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_SERVICE},{LABEL_PLAN}");
    let mut params = kube::api::ListParams::default().labels(&selector).limit(PAGE);
    loop {
        let page = api.list_metadata(&params).await?;
        for item in &page.items {
            let label = |key: &str| item.metadata.labels.as_ref()?.get(key).map(String::as_str);
            count_one(label(LABEL_SERVICE), label(LABEL_PLAN), counts);
        }
        match page.metadata.continue_.filter(|token| !token.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(()),
        }
    }
}

/// Counts one of the broker's objects by its service and plan labels (objects without both are not instances).
fn count_one(service: Option<&str>, plan: Option<&str>, counts: &mut InstanceCounts) {
    if let (Some(service), Some(plan)) = (service, plan) {
        *counts.entry((service.to_owned(), plan.to_owned())).or_insert(0) += 1;
    }
}

/// How long a record watch stays open: 5 s below the client's read timeout (`request_timeout_seconds`), at most the
/// 290 s client-go uses.
fn watch_seconds(request_timeout_seconds: u64) -> u32 {
    u32::try_from(request_timeout_seconds.saturating_sub(5).clamp(1, 290)).unwrap_or(290)
}

/// `maintenance_info.version` of a request must be the plan's; `{}` or no version counts as not sent.
fn check_maintenance(plan: &Plan, requested: Option<&RequestedMaintenance>) -> Result<()> {
    let Some(requested) = requested.and_then(|m| m.version.as_deref()) else {
        return Ok(());
    };
    match plan.maintenance_version() {
        Some(version) if version == requested => Ok(()),
        Some(version) => Err(Error::MaintenanceInfoConflict(format!(
            "maintenance_info.version {requested:?} does not match plan {}'s version {version:?}: refresh the catalog",
            plan.name
        ))),
        None => Err(Error::MaintenanceInfoConflict(format!(
            "plan {} has no maintenance_info, but the request names version {requested:?}",
            plan.name
        ))),
    }
}

/// Ok(true) when deleted, Ok(false) when it was not there.
fn deleted<T>(result: Result<T, kube::Error>) -> Result<bool> {
    match result {
        Ok(_) => Ok(true),
        Err(error) if crate::k8s::is_not_found(&error) => Ok(false),
        Err(error) => Err(error.into()),
    }
}

impl Broker {
    /// Polls `left` (what of a deleted instance or binding is still there, `None` when nothing) for up to `patience`:
    /// a delete answers 200 only once what it deleted is gone, not while it is still being deleted. Returns what is
    /// left when time ran out.
    async fn wait_until_gone<F, Fut>(&self, patience: Duration, mut left: F) -> Result<Option<String>>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Option<String>>>,
    {
        let give_up = tokio::time::Instant::now() + patience;
        loop {
            let remaining = left().await?;
            if remaining.is_none() || tokio::time::Instant::now() >= give_up {
                return Ok(remaining);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The 422 of a synchronous delete that could not finish in time: the deletion goes on in the cluster, and a repeat
    /// of the request follows it (200 once gone).
    fn deletion_continues(&self, what: &str, remaining: &str) -> Error {
        Error::DeletionContinues(format!(
            "{what} is still being deleted after {} s ({remaining}); the deletion continues: repeat the request to \
             follow it (200 once it is gone), or send accepts_incomplete=true",
            self.options.sync_timeout.as_secs()
        ))
    }

    /// An instance still without its completion marker well after a synchronous request would have given up was
    /// interrupted (a broker killed mid-way), not slow.
    fn provisioning_interrupted(&self, stored: &instances::stored::StoredInstance) -> bool {
        stored.age_seconds > self.options.sync_timeout.as_secs() as i64 + 30
    }
}

/// What an id placed in a URL (a path segment, a query or fragment value) is percent-encoded with: everything but
/// RFC 3986's unreserved characters, so that it reads back as it was whatever it holds.
pub const URL_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_origin_of_a_url_is_its_scheme_and_authority() {
        assert_eq!(origin("https://dash.example.com/base/").as_deref(), Some("https://dash.example.com"));
        assert_eq!(origin("http://127.0.0.1:8081").as_deref(), Some("http://127.0.0.1:8081"));
        assert_eq!(origin("/relative"), None);
    }

    #[test]
    fn workloads_run_anywhere_by_default() {
        let settings = Settings::load(None).expect("defaults are valid");
        assert_eq!(PodPlacement::from(&settings.workloads), PodPlacement::default());
    }

    #[test]
    fn workload_placement_reads_selector_tolerations_and_pull_policy() {
        let dir = std::env::temp_dir().join(format!("caas-config-placement-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("placement.yaml");
        let yaml = "workloads:\n  image_pull_policy: IfNotPresent\n  node_selector: [\"caas.dev/pool=tenants\", \"type=real\"]\n  \
                    tolerations: [\"caas.dev/pool=tenants:NoSchedule\", gpu]\n";
        std::fs::write(&file, yaml).expect("write");
        let placement = PodPlacement::from(&Settings::load(Some(&file)).expect("valid").workloads);
        assert_eq!(
            placement.node_selector,
            [("caas.dev/pool", "tenants"), ("type", "real")].map(|(k, v)| (k.to_owned(), v.to_owned())).into()
        );
        assert_eq!(placement.image_pull_policy.as_deref(), Some("IfNotPresent"));
        let tolerations: Vec<_> = placement
            .tolerations
            .iter()
            .map(|t| (t.key.as_deref(), t.operator.as_deref(), t.value.as_deref(), t.effect.as_deref()))
            .collect();
        assert_eq!(
            tolerations,
            [
                (Some("caas.dev/pool"), Some("Equal"), Some("tenants"), Some("NoSchedule")),
                (Some("gpu"), Some("Exists"), None, None)
            ]
        );
    }

    #[test]
    fn a_record_watch_ends_before_the_clients_read_timeout() {
        assert_eq!(watch_seconds(20), 15, "the default request timeout");
        assert_eq!(watch_seconds(3), 1, "never zero: the apiserver would pick its own, longer timeout");
        assert_eq!(watch_seconds(3600), 290, "at most client-go's");
    }

    #[test]
    fn only_objects_with_a_service_and_a_plan_are_counted() {
        let mut counts = InstanceCounts::new();
        count_one(Some("caas"), Some("micro"), &mut counts);
        count_one(Some("caas"), Some("micro"), &mut counts);
        count_one(Some("caas"), None, &mut counts);
        count_one(None, None, &mut counts);
        assert_eq!(counts, InstanceCounts::from([(("caas".to_owned(), "micro".to_owned()), 2)]));
    }
}
