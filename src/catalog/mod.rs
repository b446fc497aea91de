//! The service catalog: what the broker offers (served at `GET /v2/catalog`) and, for each plan, what it builds.
//!
//! The catalog is one YAML file (`catalog/catalog.yaml`, compiled into the binary as the default). Its OSB fields are
//! served as written; the `broker:` keys carry what the broker acts on and are never served. It is checked in full
//! at load time (see [`check`]), so the rest of the broker can rely on every plan being complete and valid.

mod check;
pub mod quantity;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use check::{CatalogError, check};

/// The catalog compiled into the binary, used when no catalog file is configured.
pub const BUILT_IN: &str = include_str!("../../catalog/catalog.yaml");

/// The whole catalog, as served and as acted on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Catalog {
    /// The service offerings.
    pub services: Vec<Service>,
}

/// A service offering (OSB "Service Offering Object").
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Service {
    /// Globally unique, immutable id.
    pub id: String,
    /// CLI-friendly name, unique in the catalog.
    pub name: String,
    /// Short description.
    pub description: String,
    /// Tags shown by platforms.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Platform features the service needs (none for this broker).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    /// Whether instances can be bound (plans may override).
    pub bindable: bool,
    /// Whether GET instance works.
    #[serde(default)]
    pub instances_retrievable: bool,
    /// Whether GET binding works.
    #[serde(default)]
    pub bindings_retrievable: bool,
    /// Whether the platform may send context-only updates.
    #[serde(default)]
    pub allow_context_updates: bool,
    /// Whether plans can be changed (plans may override).
    #[serde(default)]
    pub plan_updateable: bool,
    /// The OAuth client of the dashboard's Cloud Foundry single sign-on, which the Cloud Controller registers at UAA.
    /// The file names it (id, maybe redirect_uri); the secret comes from the configuration ([`Catalog::for_dashboard`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboard_client: Option<DashboardClient>,
    /// Display metadata in the Cloud Foundry conventions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// The plans, at least one.
    pub plans: Vec<Plan>,
    /// What kind of thing the broker builds for this offering. Never served.
    #[serde(skip_serializing)]
    pub broker: ServiceSettings,
}

/// OSB's `dashboard_client` of a service offering: the OAuth client Cloud Foundry registers for its dashboard.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DashboardClient {
    /// The client id at UAA.
    pub id: String,
    /// The client secret: never in the catalog file (which may be public); filled in from the configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Where UAA sends the user back: the dashboard's `/auth/callback` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
}

/// Broker-only settings of a service offering.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSettings {
    /// What an instance of this offering is.
    pub kind: ServiceKind,
}

/// What an instance of an offering is, and so which part of the broker handles it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceKind {
    /// A namespace-scoped virtual cluster.
    VirtualCluster,
    /// An interactive streaming session deployed into a virtual cluster.
    StreamingSession,
    /// A container image run as a web app in a virtual cluster.
    ContainerApp,
}

impl ServiceKind {
    /// Whether instances are workloads placed in a tenant's virtual cluster.
    pub fn is_workload(self) -> bool {
        self != ServiceKind::VirtualCluster
    }
}

/// A service plan (OSB "Service Plan Object").
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// Globally unique, immutable id.
    pub id: String,
    /// CLI-friendly name, unique in its offering.
    pub name: String,
    /// Short description.
    pub description: String,
    /// Display metadata (bullets, costs, displayName).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Whether the plan is free.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free: Option<bool>,
    /// Overrides the offering's `bindable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bindable: Option<bool>,
    /// Whether bindings may name a `predecessor_binding_id` (OSB 2.17 rotation).
    #[serde(default)]
    pub binding_rotatable: bool,
    /// Overrides the offering's `plan_updateable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_updateable: Option<bool>,
    /// JSON Schemas (draft-04) of the parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schemas: Option<Schemas>,
    /// Seconds a platform should poll an asynchronous operation before giving up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_polling_duration: Option<u64>,
    /// The version of what the broker builds for this plan; a new version offers an upgrade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance_info: Option<MaintenanceInfo>,
    /// What the broker builds for this plan. Never served.
    #[serde(skip_serializing)]
    pub broker: PlanSettings,
}

/// Parameter schemas of a plan, in the OSB layout.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Schemas {
    /// Schemas for instance create and update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_instance: Option<InstanceSchemas>,
    /// Schema for bind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_binding: Option<BindingSchemas>,
}

/// Instance schemas.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InstanceSchemas {
    /// Provision parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<ParametersSchema>,
    /// Update parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<ParametersSchema>,
}

/// Binding schemas.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BindingSchemas {
    /// Bind parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<ParametersSchema>,
}

/// One JSON Schema for a `parameters` object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ParametersSchema {
    /// The schema document.
    pub parameters: Value,
}

/// OSB `maintenance_info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceInfo {
    /// Semantic version.
    pub version: String,
    /// What the version brings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Broker-only settings of a plan: what a virtual cluster of this plan is made of.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanSettings {
    /// ResourceQuota `spec.hard` of the tenant namespace.
    #[serde(default)]
    pub quota: BTreeMap<String, String>,
    /// LimitRange defaults for containers.
    #[serde(default)]
    pub limits: Option<ContainerLimits>,
    /// Pod Security Standard enforced in the namespace.
    #[serde(default)]
    pub pod_security: PodSecurityLevel,
    /// Binds need an application (`app_guid`); service keys are refused with `RequiresApp`.
    #[serde(default)]
    pub requires_app: bool,
    /// Size of a workload plan's pods.
    #[serde(default)]
    pub workload: Option<WorkloadSize>,
    /// Labels a cluster must carry for a virtual cluster of this plan to be placed on it (`gpu: "true"`), where the
    /// broker serves several (docs/operations.md, "Several clusters").
    #[serde(default)]
    pub cluster_labels: BTreeMap<String, String>,
}

/// What each pod of a workload plan gets.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSize {
    /// CPU request and limit.
    pub cpu: String,
    /// Memory request and limit.
    pub memory: String,
    /// Volume size (streaming sessions: the install and the Steam configuration).
    #[serde(default)]
    pub storage: Option<String>,
    /// Virtual display size, `WIDTHxHEIGHT` (streaming sessions).
    #[serde(default)]
    pub resolution: Option<String>,
    /// NVIDIA GPUs.
    #[serde(default)]
    pub gpu: u32,
    /// Minutes without a viewer after which a session is stopped, its volume kept (streaming sessions): the plan's
    /// default, which an instance's `idle_stop_minutes` overrides; never when absent or 0.
    #[serde(default)]
    pub idle_stop_minutes: Option<u32>,
}

/// The longest idle time a session may be given (a week): beyond it, stopping for idleness means nothing.
pub const MAX_IDLE_STOP_MINUTES: u32 = 10_080;

/// Container defaults and bounds of a tenant's LimitRange.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerLimits {
    /// Limits given to containers that set none.
    #[serde(default)]
    pub default: BTreeMap<String, String>,
    /// Requests given to containers that set none.
    #[serde(default)]
    pub default_request: BTreeMap<String, String>,
    /// Largest limits a container may set.
    #[serde(default)]
    pub max: BTreeMap<String, String>,
}

/// Pod Security Standards level (`pod-security.kubernetes.io/enforce`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PodSecurityLevel {
    /// Prevents known privilege escalations; runs most workloads unchanged.
    #[default]
    Baseline,
    /// Current pod hardening best practice.
    Restricted,
}

impl PodSecurityLevel {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            PodSecurityLevel::Baseline => "baseline",
            PodSecurityLevel::Restricted => "restricted",
        }
    }
}

impl Catalog {
    /// Parses and checks a catalog document.
    pub fn from_yaml(text: &str) -> Result<Catalog, Vec<CatalogError>> {
        let mut value: serde_norway::Value =
            serde_norway::from_str(text).map_err(|e| vec![CatalogError::new("catalog", e.to_string())])?;
        value.apply_merge().map_err(|e| vec![CatalogError::new("catalog", e.to_string())])?;
        let catalog: Catalog =
            serde_norway::from_value(value).map_err(|e| vec![CatalogError::new("catalog", e.to_string())])?;
        check(&catalog)?;
        Ok(catalog)
    }

    /// Reads, parses and checks a catalog file.
    pub fn from_file(path: &Path) -> Result<Catalog, Vec<CatalogError>> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| vec![CatalogError::new(&path.display().to_string(), e.to_string())])?;
        Catalog::from_yaml(&text)
    }

    /// The built-in catalog.
    pub fn built_in() -> Catalog {
        #[allow(clippy::expect_used)]
        Catalog::from_yaml(BUILT_IN).expect("the built-in catalog passes its own checks (tested)")
    }

    /// The catalog as served with the dashboard at `dashboard_url`: with Cloud Foundry's single sign-on configured
    /// (`secret`), every `dashboard_client` gets that secret and, when it names none, the redirect URI
    /// `<dashboard_url>/auth/callback`; without it, no `dashboard_client` is served (a platform would register a client
    /// that cannot sign anyone in).
    pub fn for_dashboard(mut self, secret: Option<&str>, dashboard_url: Option<&str>) -> Catalog {
        for service in &mut self.services {
            service.dashboard_client = match (service.dashboard_client.take(), secret, dashboard_url) {
                (Some(mut client), Some(secret), Some(url)) => {
                    client.secret = Some(secret.to_owned());
                    client.redirect_uri.get_or_insert_with(|| format!("{}/auth/callback", url.trim_end_matches('/')));
                    Some(client)
                }
                _ => None,
            };
        }
        self
    }

    /// The dashboard client of the first offering that has one (the dashboard's Cloud Foundry sign-in uses it).
    pub fn dashboard_client(&self) -> Option<&DashboardClient> {
        self.services.iter().find_map(|service| service.dashboard_client.as_ref())
    }

    /// The service with this id.
    pub fn service(&self, service_id: &str) -> Option<&Service> {
        self.services.iter().find(|service| service.id == service_id)
    }
}

impl Service {
    /// The plan of this service with this id.
    pub fn plan(&self, plan_id: &str) -> Option<&Plan> {
        self.plans.iter().find(|plan| plan.id == plan_id)
    }

    /// The plan called `name` (as instances' labels name it).
    pub fn plan_named(&self, name: &str) -> Option<&Plan> {
        self.plans.iter().find(|plan| plan.name == name)
    }

    /// Whether plans of this service can be changed, as the plan overrides it.
    pub fn plan_updateable(&self, plan: &Plan) -> bool {
        plan.plan_updateable.unwrap_or(self.plan_updateable)
    }

    /// Whether instances of this plan can be bound.
    pub fn bindable(&self, plan: &Plan) -> bool {
        plan.bindable.unwrap_or(self.bindable)
    }
}

impl Plan {
    /// The provision parameters schema, if the plan has one.
    pub fn create_schema(&self) -> Option<&Value> {
        let schema = self.schemas.as_ref()?.service_instance.as_ref()?.create.as_ref()?;
        Some(&schema.parameters)
    }

    /// The update parameters schema, if the plan has one.
    pub fn update_schema(&self) -> Option<&Value> {
        let schema = self.schemas.as_ref()?.service_instance.as_ref()?.update.as_ref()?;
        Some(&schema.parameters)
    }

    /// The bind parameters schema, if the plan has one.
    pub fn binding_schema(&self) -> Option<&Value> {
        let schema = self.schemas.as_ref()?.service_binding.as_ref()?.create.as_ref()?;
        Some(&schema.parameters)
    }

    /// The current maintenance version, if the plan has one.
    pub fn maintenance_version(&self) -> Option<&str> {
        self.maintenance_info.as_ref().map(|info| info.version.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_catalog_passes_its_checks_and_hides_broker_settings() {
        let catalog = Catalog::from_yaml(BUILT_IN).unwrap_or_else(|errors| panic!("{errors:?}"));
        let served = serde_json::to_value(&catalog).expect("serialize");
        let text = served.to_string();
        assert!(!text.contains("\"broker\""), "broker settings must not be served");
        assert!(!text.contains("x-schemas"));
        let caas = &served["services"][0];
        assert_eq!(caas["name"], "caas");
        let plans: Vec<&str> =
            caas["plans"].as_array().expect("plans").iter().filter_map(|p| p["name"].as_str()).collect();
        assert_eq!(plans, ["micro", "small", "medium", "large"]);
        assert_eq!(served["services"][1]["name"], "streaming-session");
        assert_eq!(served["services"][2]["name"], "container-app");
        let update = &served["services"][1]["plans"][0]["schemas"]["service_instance"]["update"]["parameters"];
        assert!(update["properties"]["steam_app_id"].is_object(), "merge keys are resolved: {update}");
        assert!(update["properties"]["state"].is_object());
        assert!(update["properties"].get("<<").is_none());
        assert_eq!(
            caas["plans"][1]["schemas"]["service_instance"]["create"]["parameters"]["$schema"],
            "http://json-schema.org/draft-04/schema#"
        );
    }

    /// Each streaming-session plan names the caas plans one session fits in, and the names are the true ones.
    #[test]
    fn session_plans_name_the_virtual_clusters_they_fit_in() {
        let catalog = Catalog::built_in();
        let of_kind = |kind: ServiceKind| catalog.services.iter().find(|s| s.broker.kind == kind).expect("service");
        let clusters = of_kind(ServiceKind::VirtualCluster);
        for plan in &of_kind(ServiceKind::StreamingSession).plans {
            let size = plan.broker.workload.clone().expect("size");
            let needs = [
                ("requests.cpu", size.cpu.clone()),
                ("limits.cpu", size.cpu.clone()),
                ("requests.memory", size.memory.clone()),
                ("limits.memory", size.memory.clone()),
                ("requests.storage", size.storage.clone().unwrap_or_default()),
                ("requests.nvidia.com/gpu", size.gpu.to_string()),
            ];
            let fits: Vec<&str> = clusters
                .plans
                .iter()
                .filter(|cluster| {
                    needs.iter().all(|(resource, need)| {
                        let hard = cluster.broker.quota.get(*resource).and_then(|q| quantity::parse(q));
                        hard.is_none_or(|hard| quantity::parse(need).is_some_and(|need| need <= hard))
                    })
                })
                .map(|cluster| cluster.name.as_str())
                .collect();
            let listed = match fits.as_slice() {
                [] => panic!("session plan {} fits in no caas plan", plan.name),
                [one] => (*one).to_owned(),
                [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
            };
            let expected = format!("Fits in a caas {listed} virtual cluster.");
            assert!(
                plan.description.ends_with(&expected),
                "{}: {:?} should end with {expected:?}",
                plan.name,
                plan.description
            );
        }
    }
}
