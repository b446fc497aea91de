//! The broker's configuration: built-in defaults that work against the local control plane, then an optional file,
//! then `CAAS_BROKER__SECTION__KEY` environment variables. Anything invalid stops start-up with a message naming the
//! key, before the broker listens.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::Toleration;
use serde::Deserialize;

use crate::k8s::names::{DnsLabel, is_dns_subdomain};

/// Defaults, written as a configuration file so that they document themselves.
const DEFAULTS: &str = r#"
listen: "127.0.0.1:8080"
auth:
  username: broker
  password: broker-dev-password
kubernetes:
  namespace_prefix: "caas-"
  broker_namespace: caas-broker-system
  identity_namespace: caas-broker-identities
  dashboard_watch_role: caas-broker-dashboard-watch
  request_timeout_seconds: 20
bindings:
  default_expiration_seconds: 86400
  max_expiration_seconds: 604800
workloads:
  session_image: "ghcr.io/caas-broker/streaming-session:1.0.0"
limits:
  body_bytes: 1048576
  sync_timeout_seconds: 30
  header_timeout_seconds: 10
  body_timeout_seconds: 10
  max_connections: 1024
policy:
  one_instance_per_organization: false
  tenant_guard: caas-broker
  require_tenant_guard: true
dashboard:
  listen: "127.0.0.1:8081"
  session_seconds: 28800
  max_sessions: 10000
  max_streams_per_session: 8
  max_streams_per_identity: 16
log:
  format: human
  level: info
usage:
  enabled: true
  sample_seconds: 30
  checkpoint_seconds: 300
  retention_months: 13
"#;

/// The password the defaults carry; accepted only while the broker listens on loopback.
pub const DEV_PASSWORD: &str = "broker-dev-password";

/// All settings, section by section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// HTTP Basic credentials platforms must present.
    pub auth: AuthSettings,
    /// Catalog file; the catalog compiled into the binary when absent.
    #[serde(default)]
    pub catalog: Option<PathBuf>,
    /// How the broker reaches and lays out the cluster.
    pub kubernetes: KubernetesSettings,
    /// The tenants' dashboard: its own listener, apart from the OSB API and its credentials.
    pub dashboard: DashboardSettings,
    /// Credentials handed to bound applications.
    pub bindings: BindingSettings,
    /// Workload plans (streaming sessions, container apps).
    pub workloads: WorkloadSettings,
    /// Request limits.
    pub limits: LimitSettings,
    /// Admission policies.
    pub policy: PolicySettings,
    /// Ingresses of tenants.
    #[serde(default)]
    pub ingress: IngressSettings,
    /// Logging.
    pub log: LogSettings,
    /// TLS for the broker's own listener; plain HTTP when absent (behind a platform router that terminates TLS).
    #[serde(default)]
    pub tls: Option<TlsSettings>,
    /// Where Prometheus scrapes `/metrics`.
    #[serde(default)]
    pub metrics: MetricsSettings,
    /// Usage accounting: how often the broker samples tenant namespaces and checkpoints what they used.
    pub usage: UsageSettings,
    /// The clusters tenants are placed on; empty: only the one `kubernetes` connects to.
    #[serde(default)]
    pub clusters: Vec<ClusterSettings>,
}

/// One cluster tenants may be placed on (docs/operations.md, "Several clusters"). Exactly one is the home, the cluster
/// `kubernetes` connects to, which also keeps where every instance on another cluster lives.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSettings {
    /// What placements, parameters, logs and metrics call it.
    pub name: String,
    /// The cluster `kubernetes.*` connects to.
    #[serde(default)]
    pub home: bool,
    /// The broker's kubeconfig for this cluster (not for the home).
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// Its context; the current one when absent.
    #[serde(default)]
    pub context: Option<String>,
    /// What plans (`cluster_labels`) select clusters by, such as `region` or `gpu`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Scales the free capacity placement compares; 0: only when a provision names it.
    #[serde(default = "one")]
    pub weight: u32,
    /// No new instance is placed here; those already here keep working.
    #[serde(default)]
    pub cordoned: bool,
    /// The apiserver URL bound applications use; the kubeconfig's when absent (the home: `kubernetes.public_server`).
    #[serde(default)]
    pub public_server: Option<String>,
    /// PEM file of the CA bound applications trust for `public_server`.
    #[serde(default)]
    pub public_ca_file: Option<PathBuf>,
}

fn one() -> u32 {
    1
}

/// Usage accounting (docs/operations.md, "Usage accounting"): every replica samples each tenant namespace every
/// `sample_seconds` and writes what it counted into the usage records every `checkpoint_seconds`. After a restart, the
/// span from the last checkpoint to the first new sample is counted at that sample's rates when it is at most 3
/// checkpoint intervals long, and not at all when it is longer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageSettings {
    /// Whether the broker accounts usage at all.
    pub enabled: bool,
    /// Seconds between two samples of every tenant namespace (the metrics API, pods, claims).
    pub sample_seconds: u64,
    /// Seconds between two checkpoints of what was counted into the usage records.
    pub checkpoint_seconds: u64,
    /// Months a usage record is kept (the current one included), after its instance is gone too.
    pub retention_months: u32,
}

/// Where `/metrics` is served: on the OSB listener behind the broker's own credentials (the default: what the
/// metrics tell, instance counts and request rates, is the operator's business), or on a listener of its own without
/// credentials, for a scraper that cannot send them (bind it where only the scraper reaches it).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// A listener for `/metrics` alone, plain HTTP, without credentials; `/metrics` is then not on the OSB listener.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
}

/// HTTP Basic credentials.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSettings").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

/// The cluster side.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSettings {
    /// Kubeconfig file; in-cluster or `KUBECONFIG` when absent.
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context; the current one when absent.
    #[serde(default)]
    pub context: Option<String>,
    /// Prefix of tenant namespace names.
    pub namespace_prefix: String,
    /// The broker's own namespace, where binding records live.
    pub broker_namespace: String,
    /// Where the identities the broker hands out live (owners' and bindings' ServiceAccounts): a namespace no
    /// tenant can reach, so that no tenant can mint tokens for, impersonate or run pods as them.
    pub identity_namespace: String,
    /// The ClusterRole the broker binds to itself in each tenant namespace for the dashboard's live view (its
    /// watches); the operator makes it (`manifests/rbac.yaml`), named per release by the Helm chart.
    pub dashboard_watch_role: String,
    /// Timeout of one apiserver request.
    pub request_timeout_seconds: u64,
    /// The apiserver URL bound applications use; the broker's own when absent.
    #[serde(default)]
    pub public_server: Option<String>,
    /// PEM file of the CA bound applications trust for `public_server`; the broker's own when absent.
    #[serde(default)]
    pub public_ca_file: Option<PathBuf>,
}

/// Workload plans.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSettings {
    /// Image of streaming sessions (`images/streaming-session`): the SteamCMD init step and the session itself.
    pub session_image: String,
    /// RuntimeClass of GPU sessions (e.g. `nvidia`), when the cluster needs one.
    #[serde(default)]
    pub gpu_runtime_class: Option<String>,
    /// Pull policy of workload images; Kubernetes' default for the tag when absent. `Never` or `IfNotPresent` where
    /// the nodes hold the images already (an air-gapped site).
    #[serde(default)]
    pub image_pull_policy: Option<PullPolicy>,
    /// Node labels workload pods require, as `key=value` (a node pool set aside for tenants' workloads).
    #[serde(default)]
    pub node_selector: Vec<String>,
    /// Taints of that node pool that workload pods tolerate, written as `kubectl taint` writes them:
    /// `key[=value][:effect]` (any value when it has none, every effect when it names none).
    #[serde(default)]
    pub tolerations: Vec<String>,
}

impl WorkloadSettings {
    /// The node labels of `node_selector` as a map (checked by `Settings::check`).
    pub fn node_labels(&self) -> BTreeMap<String, String> {
        self.node_selector
            .iter()
            .filter_map(|pair| pair.split_once('='))
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect()
    }

    /// The tolerations of the taints of `tolerations` (checked by `Settings::check`).
    pub fn taint_tolerations(&self) -> Vec<Toleration> {
        self.tolerations.iter().map(|taint| toleration(taint)).collect()
    }
}

/// The toleration of a taint written `key[=value][:effect]`.
fn toleration(taint: &str) -> Toleration {
    let (rest, effect) = match taint.rsplit_once(':') {
        Some((rest, effect)) => (rest, Some(effect.to_owned())),
        None => (taint, None),
    };
    let (key, value) = match rest.split_once('=') {
        Some((key, value)) => (key, Some(value.to_owned())),
        None => (rest, None),
    };
    Toleration {
        key: Some(key.to_owned()),
        operator: Some(if value.is_some() { "Equal" } else { "Exists" }.to_owned()),
        value,
        effect,
        toleration_seconds: None,
    }
}

/// Kubernetes' image pull policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum PullPolicy {
    /// Pull at every container start.
    Always,
    /// Pull only when the node lacks the image.
    IfNotPresent,
    /// Never pull: the node must hold the image.
    Never,
}

/// Credentials handed to bound applications.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindingSettings {
    /// Token lifetime when a bind does not ask for one.
    pub default_expiration_seconds: u64,
    /// The longest token lifetime a bind may ask for.
    pub max_expiration_seconds: u64,
}

/// The tenants' dashboard, served by the same process on a listener of its own: tenants sign in there with their
/// own tokens and never see the OSB API or its credentials.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardSettings {
    /// Address and port of the dashboard's listener.
    pub listen: SocketAddr,
    /// Base URL tenants reach the dashboard at (an instance's dashboard is `<base_url>/instances/<instance_id>`);
    /// `http(s)://<listen>` when absent, which is right when tenants reach the listener directly.
    #[serde(default)]
    pub base_url: Option<String>,
    /// How long a sign-in lasts.
    pub session_seconds: u64,
    /// Most sessions held at once (each holds a token in memory); when full, a new sign-in is refused (503) rather
    /// than anyone signed out.
    pub max_sessions: usize,
    /// Most long-lived streams (live pages, followed logs, noVNC) one sign-in holds open at once; 429 beyond.
    pub max_streams_per_session: usize,
    /// Most long-lived streams one identity holds open at once over all its sign-ins; 429 beyond.
    pub max_streams_per_identity: usize,
    /// Most sessions of one identity held at once; a new one ends that identity's oldest, never another's.
    #[serde(default = "default_sessions_per_identity")]
    pub max_sessions_per_identity: usize,
    /// How long a session is used before the broker checks again that its identity is unchanged (its ServiceAccount,
    /// its role): how soon another replica's unbind, member removal or role change ends it.
    #[serde(default = "default_session_recheck_seconds")]
    pub session_recheck_seconds: u64,
    /// Sign-in attempts a client address may make per minute (in a burst of as many); 429 beyond.
    #[serde(default = "default_sign_ins_per_address")]
    pub sign_ins_per_minute_per_address: u32,
    /// Sign-in attempts one token may make per minute; 429 beyond.
    #[serde(default = "default_sign_ins_per_token")]
    pub sign_ins_per_minute_per_token: u32,
    /// Behind a proxy: the header whose last address is the client's (e.g. `X-Forwarded-For`), for the per-address
    /// limit; the connection's peer when absent. Set it only when a proxy always writes it.
    #[serde(default)]
    pub client_address_header: Option<String>,
    /// Sign-in of invited members through a generic OpenID Connect provider (K-PaaS: Keycloak); none when absent.
    #[serde(default)]
    pub oidc: Option<OidcSettings>,
    /// Cloud Foundry's dashboard single sign-on (UAA and the Cloud Controller); none when absent.
    #[serde(default)]
    pub cf_sso: Option<CfSsoSettings>,
    /// How long a terminal into a container stays open without input before the dashboard closes it.
    #[serde(default = "default_terminal_idle_seconds")]
    pub terminal_idle_seconds: u64,
    /// The longest a terminal into a container stays open, input or not.
    #[serde(default = "default_terminal_max_seconds")]
    pub terminal_max_seconds: u64,
    /// The image of a debug container (an ephemeral container with a shell, for images without one); it must have
    /// `sh` and `sleep` and run as a user other than root.
    #[serde(default = "default_debug_image")]
    pub debug_image: String,
}

fn default_sessions_per_identity() -> usize {
    20
}

fn default_session_recheck_seconds() -> u64 {
    10
}

fn default_terminal_idle_seconds() -> u64 {
    15 * 60
}

fn default_terminal_max_seconds() -> u64 {
    4 * 3600
}

fn default_debug_image() -> String {
    "docker.io/library/busybox:1.36".to_owned()
}

fn default_sign_ins_per_address() -> u32 {
    30
}

fn default_sign_ins_per_token() -> u32 {
    10
}

/// A generic OpenID Connect provider members sign in with: the value of `user_claim` in their verified ID token is
/// the member name an admin invited.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSettings {
    /// The issuer (`https://...`); its discovery document names the endpoints and the signing keys.
    pub issuer: String,
    /// The dashboard's client id at the provider.
    pub client_id: String,
    /// The client's secret (from a Secret or the environment, never the catalog).
    pub client_secret: String,
    /// Scopes asked for, space-separated; `openid` is always asked for.
    #[serde(default = "default_oidc_scopes")]
    pub scopes: String,
    /// The ID token claim that names the user (`email` must be verified by the provider).
    #[serde(default = "default_user_claim")]
    pub user_claim: String,
    /// PEM file of the CA that signs the provider's certificate, when it is not publicly trusted.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// Cloud Foundry's dashboard single sign-on: the user signs in at UAA with the catalog's `dashboard_client`, then the
/// Cloud Controller says, with the user's own token, whether they may manage (admin) or read (view) the instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CfSsoSettings {
    /// UAA's issuer (`https://uaa.<system domain>/oauth/token`), whose discovery document names the authorization and
    /// token endpoints and the signing keys.
    pub issuer: String,
    /// The client id; the catalog's `dashboard_client.id` when absent.
    #[serde(default)]
    pub client_id: Option<String>,
    /// The client's secret (from a Secret or the environment): served in the catalog's `dashboard_client` so that
    /// the Cloud Controller can register the client, and never written in the catalog file.
    pub client_secret: String,
    /// Scopes asked for, space-separated.
    #[serde(default = "default_cf_scopes")]
    pub scopes: String,
    /// The Cloud Controller API (`https://api.<system domain>`).
    pub api_url: String,
    /// PEM file of the CA that signs UAA's and the Cloud Controller's certificates, when not publicly trusted.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_oidc_scopes() -> String {
    "openid email".to_owned()
}

fn default_user_claim() -> String {
    "email".to_owned()
}

fn default_cf_scopes() -> String {
    "openid cloud_controller_service_permissions.read".to_owned()
}

/// Request limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    /// Largest request body accepted (413 above).
    pub body_bytes: usize,
    /// How long a synchronous request (without `accepts_incomplete`) may wait for the cluster to finish.
    pub sync_timeout_seconds: u64,
    /// How long a client may take to send a request's head, and how long a kept-alive connection may sit idle before
    /// its next one (both listeners); the connection is closed after it.
    pub header_timeout_seconds: u64,
    /// The longest pause allowed between two parts of a request body (408 after it).
    pub body_timeout_seconds: u64,
    /// Most connections each listener holds at once; beyond it, new connections wait to be accepted until one closes.
    pub max_connections: usize,
}

/// Admission policies.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySettings {
    /// Allow one virtual cluster per organization, as the PaaS-TA broker did.
    pub one_instance_per_organization: bool,
    /// Name of the tenant guard the broker requires: its ValidatingAdmissionPolicies and bindings are
    /// `<name>-tenant-guard`, `<name>-no-legacy-tokens`, ... (`caas-broker` for `manifests/tenant-guard.yaml`, the
    /// release's full name for the Helm chart's).
    pub tenant_guard: String,
    /// Refuse provision and bind, and fail `/readyz`, while the tenant guard is not in force. `false` is unsafe:
    /// tenants' isolation then rests on RBAC alone (an `admin` binding can delete its default-deny NetworkPolicy).
    pub require_tenant_guard: bool,
}

/// Ingresses of tenants.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngressSettings {
    /// The domain each virtual cluster publishes Ingress hosts under: `<anything>.<instance>.<domain>` (or
    /// `<instance>.<domain>` itself), where `<instance>` is the instance id (its hash, `h-...`, when the id is not a
    /// DNS label). The broker writes the instance's domain on its namespace and the tenant guard refuses other hosts;
    /// hosts are not limited when absent.
    #[serde(default)]
    pub domain: Option<String>,
}

/// Logging.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// Human-readable lines or JSON objects.
    pub format: LogFormat,
    /// `tracing` filter directive, e.g. `info` or `caas_broker=debug,info`; `RUST_LOG` overrides it.
    pub level: String,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// For people at a terminal.
    Human,
    /// For log collectors.
    Json,
}

/// TLS certificate and key, PEM.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// Certificate chain file.
    pub cert: PathBuf,
    /// Private key file.
    pub key: PathBuf,
}

/// Why the configuration cannot be used; what it says names the key, and stops start-up.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The defaults, the file and the environment do not make settings of the right shape (an unknown key, a value of
    /// the wrong type, a file that cannot be read).
    #[error("invalid configuration: {0}")]
    Shape(#[source] config::ConfigError),
    /// A key holds a value the broker cannot work with.
    #[error("invalid configuration: {key}: {why}")]
    Invalid {
        /// The key, `section.key`.
        key: String,
        /// What is wrong with its value.
        why: String,
    },
    /// A file a key names cannot be read.
    #[error("invalid configuration: {key}: cannot read {}: {source}", path.display())]
    Unreadable {
        /// The key.
        key: String,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `log.level` is not a filter directive.
    #[error("invalid configuration: log.level: {0}")]
    LogLevel(#[source] tracing_subscriber::filter::ParseError),
}

impl SettingsError {
    fn invalid(key: &str, why: &str) -> SettingsError {
        SettingsError::Invalid { key: key.to_owned(), why: why.to_owned() }
    }
}

impl Settings {
    /// The name of the cluster `kubernetes` connects to: the home's in `clusters`, `home` when there is no list.
    pub fn home_cluster_name(&self) -> &str {
        self.clusters.iter().find(|cluster| cluster.home).map_or("home", |cluster| cluster.name.as_str())
    }
}

/// Checks the cluster list: unique names of at most 40 of [a-z0-9-], exactly one home (without a kubeconfig of its
/// own), every other with a readable kubeconfig and an https `public_server`.
fn check_clusters(clusters: &[ClusterSettings]) -> Result<(), SettingsError> {
    if clusters.is_empty() {
        return Ok(());
    }
    let mut names = std::collections::BTreeSet::new();
    for (index, cluster) in clusters.iter().enumerate() {
        let key = |field: &str| format!("clusters[{index}].{field}");
        if cluster.name.len() > 40 || !DnsLabel::is_valid(&cluster.name) {
            return Err(SettingsError::invalid(&key("name"), "must be at most 40 of [a-z0-9-]"));
        }
        if !names.insert(cluster.name.as_str()) {
            return Err(SettingsError::invalid(&key("name"), &format!("{} is named twice", cluster.name)));
        }
        if cluster.home && (cluster.kubeconfig.is_some() || cluster.context.is_some()) {
            let why = "the home cluster is the one kubernetes.kubeconfig and kubernetes.context connect to";
            return Err(SettingsError::invalid(&key("kubeconfig"), why));
        }
        match &cluster.kubeconfig {
            None if !cluster.home => {
                return Err(SettingsError::invalid(
                    &key("kubeconfig"),
                    "is required for a cluster other than the home",
                ));
            }
            Some(path) if !path.is_file() => {
                return Err(SettingsError::invalid(&key("kubeconfig"), &format!("{} is not a file", path.display())));
            }
            _ => {}
        }
        if cluster.public_server.as_deref().is_some_and(|url| !url.starts_with("https://")) {
            return Err(SettingsError::invalid(&key("public_server"), "must be an https:// URL"));
        }
        if let Some(path) = cluster.public_ca_file.as_ref().filter(|path| !path.is_file()) {
            return Err(SettingsError::invalid(&key("public_ca_file"), &format!("{} is not a file", path.display())));
        }
    }
    match clusters.iter().filter(|cluster| cluster.home).count() {
        1 => Ok(()),
        count => Err(SettingsError::invalid("clusters", &format!("exactly one must be home: true ({count} are)"))),
    }
}

/// Checks what both identity providers need: an https issuer (http only on loopback, for a local provider), a readable
/// CA file if one is named, and a secret.
fn check_provider(
    key: &str,
    issuer: &str,
    ca_file: Option<&std::path::Path>,
    secret: &str,
) -> Result<(), SettingsError> {
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"].iter().any(|p| issuer.starts_with(p));
    if !issuer.starts_with("https://") && !loopback {
        return Err(SettingsError::invalid(&format!("{key}.issuer"), "must be an https:// URL"));
    }
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|source| SettingsError::Unreadable {
            key: format!("{key}.ca_file"),
            path: path.to_owned(),
            source,
        })?;
        if reqwest::Certificate::from_pem_bundle(&pem).map_or(true, |certificates| certificates.is_empty()) {
            let why = format!("{} holds no PEM certificate", path.display());
            return Err(SettingsError::invalid(&format!("{key}.ca_file"), &why));
        }
    }
    if secret.is_empty() {
        return Err(SettingsError::invalid(&format!("{key}.client_secret"), "must not be empty"));
    }
    Ok(())
}

impl Settings {
    /// Loads the defaults, then `file` if given, then the environment (`CAAS_BROKER__AUTH__PASSWORD=...`), and checks
    /// the result.
    pub fn load(file: Option<&std::path::Path>) -> Result<Settings, SettingsError> {
        let mut builder =
            config::Config::builder().add_source(config::File::from_str(DEFAULTS, config::FileFormat::Yaml));
        if let Some(file) = file {
            builder = builder.add_source(config::File::from(file).required(true));
        }
        let builder = builder.add_source(
            config::Environment::with_prefix("CAAS_BROKER")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("workloads.node_selector")
                .with_list_parse_key("workloads.tolerations"),
        );
        let settings: Settings =
            builder.build().and_then(config::Config::try_deserialize).map_err(SettingsError::Shape)?;
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> Result<(), SettingsError> {
        let invalid = |key: &str, why: &str| Err(SettingsError::invalid(key, why));
        if self.auth.username.is_empty() {
            return invalid("auth.username", "must not be empty");
        }
        if self.auth.password.len() < 8 {
            return invalid("auth.password", "must have at least 8 characters");
        }
        if self.auth.password == DEV_PASSWORD && !self.listen.ip().is_loopback() {
            return invalid("auth.password", "the development default is only allowed on a loopback address; set one");
        }
        if !DnsLabel::is_valid(&self.kubernetes.broker_namespace) {
            return invalid("kubernetes.broker_namespace", "must be a valid namespace name");
        }
        if !DnsLabel::is_valid(&self.kubernetes.identity_namespace) {
            return invalid("kubernetes.identity_namespace", "must be a valid namespace name");
        }
        if !DnsLabel::is_valid(&self.kubernetes.dashboard_watch_role) {
            return invalid("kubernetes.dashboard_watch_role", "must be a ClusterRole name of at most 63 of [a-z0-9-]");
        }
        let prefix = &self.kubernetes.namespace_prefix;
        if prefix.len() > 20 || !DnsLabel::is_valid(&format!("{prefix}x")) {
            return invalid(
                "kubernetes.namespace_prefix",
                "must be at most 20 of [a-z0-9-], starting with a letter or digit",
            );
        }
        if let Some(why) = overlapping_namespaces(&self.kubernetes) {
            return invalid("kubernetes.namespace_prefix", &why);
        }
        let guard = &self.policy.tenant_guard;
        if guard.len() > 46 || !DnsLabel::is_valid(guard) {
            return invalid(
                "policy.tenant_guard",
                "must be at most 46 of [a-z0-9-] (the policies' names add a suffix)",
            );
        }
        if let Some(domain) = &self.ingress.domain
            && !is_dns_subdomain(domain, 253 - 64)
        {
            return invalid("ingress.domain", "must be a DNS name of at most 189 characters (e.g. apps.example.com)");
        }
        if self.kubernetes.request_timeout_seconds == 0 {
            return invalid("kubernetes.request_timeout_seconds", "must be at least 1");
        }
        if self.bindings.default_expiration_seconds < 600 {
            return invalid("bindings.default_expiration_seconds", "must be at least 600 (the apiserver's minimum)");
        }
        if self.bindings.max_expiration_seconds < self.bindings.default_expiration_seconds {
            return invalid("bindings.max_expiration_seconds", "must not be below bindings.default_expiration_seconds");
        }
        if let Some(url) = &self.kubernetes.public_server
            && !url.starts_with("https://")
        {
            return invalid("kubernetes.public_server", "must be an https:// URL");
        }
        if let Some(path) = &self.kubernetes.public_ca_file
            && !path.is_file()
        {
            return invalid("kubernetes.public_ca_file", &format!("{} is not a readable file", path.display()));
        }
        check_clusters(&self.clusters)?;
        if self.limits.body_bytes < 1024 {
            return invalid("limits.body_bytes", "must be at least 1024");
        }
        if !(1..=55).contains(&self.limits.sync_timeout_seconds) {
            return invalid("limits.sync_timeout_seconds", "must be 1 to 55 (platforms give up after about 60 s)");
        }
        if !(1..=60).contains(&self.limits.header_timeout_seconds) {
            return invalid("limits.header_timeout_seconds", "must be 1 to 60");
        }
        if !(1..=60).contains(&self.limits.body_timeout_seconds) {
            return invalid("limits.body_timeout_seconds", "must be 1 to 60");
        }
        if self.limits.max_connections < 16 {
            return invalid("limits.max_connections", "must be at least 16");
        }
        if self.dashboard.max_streams_per_session == 0 {
            return invalid("dashboard.max_streams_per_session", "must be at least 1");
        }
        if self.dashboard.max_streams_per_identity < self.dashboard.max_streams_per_session {
            return invalid(
                "dashboard.max_streams_per_identity",
                "must not be below dashboard.max_streams_per_session",
            );
        }
        if let Some(metrics) = self.metrics.listen
            && (metrics == self.listen || metrics == self.dashboard.listen)
            && metrics.port() != 0
        {
            return invalid("metrics.listen", "must differ from listen and dashboard.listen");
        }
        if !(5..=300).contains(&self.usage.sample_seconds) {
            return invalid("usage.sample_seconds", "must be 5 to 300");
        }
        if !(self.usage.sample_seconds..=3600).contains(&self.usage.checkpoint_seconds) {
            return invalid("usage.checkpoint_seconds", "must be usage.sample_seconds to 3600");
        }
        if !(1..=120).contains(&self.usage.retention_months) {
            return invalid("usage.retention_months", "must be 1 to 120");
        }
        if let Some(url) = &self.dashboard.base_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return invalid("dashboard.base_url", "must be an http:// or https:// URL");
        }
        if self.dashboard.base_url.is_none() && self.dashboard.listen.ip().is_unspecified() {
            return invalid("dashboard.base_url", "must be set when dashboard.listen is not one address (0.0.0.0, ::)");
        }
        if self.dashboard.listen == self.listen && self.listen.port() != 0 {
            return invalid("dashboard.listen", "must differ from listen (the OSB API)");
        }
        if !(60..=7 * 86400).contains(&self.dashboard.session_seconds) {
            return invalid("dashboard.session_seconds", "must be 60 to 604800");
        }
        if self.dashboard.max_sessions == 0 {
            return invalid("dashboard.max_sessions", "must be at least 1");
        }
        if self.dashboard.max_sessions_per_identity == 0 {
            return invalid("dashboard.max_sessions_per_identity", "must be at least 1");
        }
        if !(1..=300).contains(&self.dashboard.session_recheck_seconds) {
            return invalid("dashboard.session_recheck_seconds", "must be 1 to 300");
        }
        if !(10..=86400).contains(&self.dashboard.terminal_idle_seconds) {
            return invalid("dashboard.terminal_idle_seconds", "must be 10 to 86400");
        }
        if !(60..=86400).contains(&self.dashboard.terminal_max_seconds) {
            return invalid("dashboard.terminal_max_seconds", "must be 60 to 86400");
        }
        if self.dashboard.debug_image.trim().is_empty() {
            return invalid("dashboard.debug_image", "must name an image");
        }
        if self.dashboard.sign_ins_per_minute_per_address == 0 || self.dashboard.sign_ins_per_minute_per_token == 0 {
            return invalid("dashboard.sign_ins_per_minute_per_address", "and _per_token must be at least 1");
        }
        if let Some(header) = &self.dashboard.client_address_header
            && axum::http::HeaderName::from_bytes(header.as_bytes()).is_err()
        {
            return invalid("dashboard.client_address_header", "must be a header name");
        }
        if let Some(oidc) = &self.dashboard.oidc {
            check_provider("dashboard.oidc", &oidc.issuer, oidc.ca_file.as_deref(), &oidc.client_secret)?;
            if oidc.client_id.is_empty() {
                return invalid("dashboard.oidc.client_id", "must not be empty");
            }
            if oidc.user_claim.is_empty() {
                return invalid("dashboard.oidc.user_claim", "must not be empty");
            }
        }
        if let Some(cf) = &self.dashboard.cf_sso {
            check_provider("dashboard.cf_sso", &cf.issuer, cf.ca_file.as_deref(), &cf.client_secret)?;
            if !(cf.api_url.starts_with("https://") || cf.api_url.starts_with("http://")) {
                return invalid("dashboard.cf_sso.api_url", "must be an http(s):// URL");
            }
        }
        for pair in &self.workloads.node_selector {
            let valid = pair.split_once('=').is_some_and(|(key, value)| {
                let name = key.rsplit('/').next().unwrap_or_default();
                !name.is_empty() && !value.contains('=') && key.len() <= 316 && value.len() <= 63
            });
            if !valid {
                return invalid("workloads.node_selector", &format!("{pair:?} is not key=value"));
            }
        }
        for taint in &self.workloads.tolerations {
            let parsed = toleration(taint);
            if parsed.key.as_deref().is_none_or(str::is_empty) {
                return invalid("workloads.tolerations", &format!("{taint:?} has no key (key[=value][:effect])"));
            }
            if let Some(effect) = &parsed.effect
                && !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect.as_str())
            {
                return invalid(
                    "workloads.tolerations",
                    &format!("{taint:?}: effect {effect:?} is not NoSchedule, PreferNoSchedule or NoExecute"),
                );
            }
        }
        if let Some(tls) = &self.tls {
            for (key, path) in [("tls.cert", &tls.cert), ("tls.key", &tls.key)] {
                if !path.is_file() {
                    return invalid(key, &format!("{} is not a readable file", path.display()));
                }
            }
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return Err(SettingsError::LogLevel(e));
        }
        Ok(())
    }
}

impl Settings {
    /// The dashboard URL handed to platforms (`dashboard_url` is `<it>/instances/<id>`): `dashboard.base_url`, or else
    /// the listener `dashboard` is bound to (which differs from `dashboard.listen` when that asks for port 0), over
    /// HTTPS when the broker serves TLS, when tenants can reach it: an address other than loopback, or loopback while
    /// the OSB API is on loopback too (a broker run on a workstation). A deployed broker (OSB API on 0.0.0.0) whose
    /// dashboard stays on loopback links none until told where tenants reach it.
    pub fn published_dashboard_url(&self, bound: SocketAddr) -> Option<String> {
        if let Some(url) = &self.dashboard.base_url {
            return Some(url.trim_end_matches('/').to_owned());
        }
        let reachable = !bound.ip().is_loopback() || self.listen.ip().is_loopback();
        reachable.then(|| self.dashboard_own_url(bound))
    }

    /// The dashboard's own URL, published or not: its origin is the one its forms must come from.
    pub fn dashboard_own_url(&self, bound: SocketAddr) -> String {
        match &self.dashboard.base_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("{}://{bound}", if self.tls.is_some() { "https" } else { "http" }),
        }
    }
}

/// Why the tenant namespaces (`<prefix><id>`, `<prefix>h-<hash>`) could overlap the broker's own namespaces or a
/// system namespace, or `None`: an empty prefix lets an id name any namespace, a prefix of `kube-` or `default`
/// reaches the system's, and a broker or identity namespace in the hashed form could be an instance's. (Ids that
/// would map exactly onto the broker's namespaces are refused at provision, see
/// [`crate::k8s::names::refused_instance_id`].)
fn overlapping_namespaces(kubernetes: &KubernetesSettings) -> Option<String> {
    let prefix = kubernetes.namespace_prefix.as_str();
    if prefix.is_empty() {
        return Some("must not be empty: instance ids would name any namespace, kube-system included".to_owned());
    }
    if let Some(system) =
        ["kube-", "default"].iter().find(|system| system.starts_with(prefix) || prefix.starts_with(**system))
    {
        return Some(format!("{prefix:?} overlaps the system namespaces ({system}...)"));
    }
    let (broker, identities) = (&kubernetes.broker_namespace, &kubernetes.identity_namespace);
    if broker == identities {
        return Some(format!(
            "kubernetes.broker_namespace and kubernetes.identity_namespace must differ (both {broker:?})"
        ));
    }
    let hashed = format!("{prefix}h-");
    [broker, identities].into_iter().find(|namespace| namespace.starts_with(&hashed)).map(|namespace| {
        format!("namespace {namespace:?} lies among the tenant namespaces {hashed}<hash>: choose another prefix or namespace")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load_and_work_locally() {
        let settings = Settings::load(None).expect("defaults are valid");
        assert!(settings.listen.ip().is_loopback());
        assert_eq!(settings.kubernetes.namespace_prefix, "caas-");
        assert!(!format!("{settings:?}").contains(DEV_PASSWORD), "Debug must not print the password");
        assert_eq!(settings.dashboard.listen, "127.0.0.1:8081".parse().expect("address"));
        let base = settings.published_dashboard_url(settings.dashboard.listen);
        assert_eq!(base.as_deref(), Some("http://127.0.0.1:8081"), "the README's local run links to its dashboard");
    }

    #[test]
    fn a_cluster_list_needs_one_home_unique_names_and_a_kubeconfig_for_each_other() {
        let dir = std::env::temp_dir().join(format!("caas-config-clusters-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let kubeconfig = dir.join("b.kubeconfig");
        std::fs::write(&kubeconfig, "apiVersion: v1\nkind: Config\n").expect("write");
        let load = |clusters: &str| {
            let file = dir.join("clusters.yaml");
            std::fs::write(&file, format!("clusters:\n{clusters}")).expect("write");
            Settings::load(Some(&file)).map_err(|error| error.to_string())
        };
        let b = format!(
            "  - {{ name: b, kubeconfig: {}, labels: {{ gpu: \"true\" }}, weight: 0 }}\n",
            kubeconfig.display()
        );
        let settings = load(&format!("  - {{ name: seoul, home: true }}\n{b}")).expect("valid");
        assert_eq!(settings.home_cluster_name(), "seoul");
        assert_eq!((settings.clusters[1].weight, settings.clusters[0].weight), (0, 1), "weight 1 unless given");
        assert_eq!(settings.clusters[1].labels.get("gpu").map(String::as_str), Some("true"));
        assert_eq!(Settings::load(None).expect("defaults").home_cluster_name(), "home");
        let refused = [
            (b.clone(), "clusters: exactly one must be home: true (0 are)"),
            (format!("  - {{ name: a, home: true }}\n  - {{ name: a2, home: true }}\n{b}"), "(2 are)"),
            (format!("  - {{ name: b, home: true }}\n{b}"), "clusters[1].name: b is named twice"),
            ("  - { name: a, home: true }\n  - { name: c }\n".to_owned(), "clusters[1].kubeconfig: is required"),
            ("  - { name: a, home: true, kubeconfig: /x }\n".to_owned(), "clusters[0].kubeconfig: the home cluster"),
            ("  - { name: A_b, home: true }\n".to_owned(), "clusters[0].name: must be at most 40 of [a-z0-9-]"),
            ("  - { name: a, home: true }\n  - { name: c, kubeconfig: /nowhere }\n".to_owned(), "is not a file"),
        ];
        for (clusters, expected) in refused {
            let error = load(&clusters).expect_err(&clusters);
            assert!(error.contains(expected), "{clusters}: {error}");
        }
    }

    #[test]
    fn a_deployed_broker_links_a_dashboard_only_where_tenants_reach_it() {
        let mut settings = Settings::load(None).expect("defaults are valid");
        settings.listen = "0.0.0.0:8080".parse().expect("address");
        let loopback = settings.dashboard.listen;
        assert_eq!(settings.published_dashboard_url(loopback), None, "a pod's loopback is no tenant's");
        assert_eq!(settings.dashboard_own_url(loopback), "http://127.0.0.1:8081");
        let public = "10.0.0.5:8081".parse().expect("address");
        assert_eq!(settings.published_dashboard_url(public).as_deref(), Some("http://10.0.0.5:8081"));
        settings.dashboard.base_url = Some("https://dash.example.com/".to_owned());
        assert_eq!(settings.published_dashboard_url(loopback).as_deref(), Some("https://dash.example.com"));
    }

    #[test]
    fn identity_providers_are_optional_and_take_defaults() {
        let settings = Settings::load(None).expect("defaults are valid");
        assert!(settings.dashboard.oidc.is_none() && settings.dashboard.cf_sso.is_none(), "off unless configured");
        let dir = std::env::temp_dir().join(format!("caas-config-providers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("providers.yaml");
        let yaml = "dashboard:\n  oidc: { issuer: \"https://kc.example/realms/k\", client_id: caas, client_secret: s }\n  \
                    cf_sso: { issuer: \"https://uaa.example/oauth/token\", client_secret: t, api_url: \"https://api.example\" }\n";
        std::fs::write(&file, yaml).expect("write");
        let settings = Settings::load(Some(&file)).expect("valid");
        let oidc = settings.dashboard.oidc.expect("oidc");
        assert_eq!((oidc.scopes.as_str(), oidc.user_claim.as_str()), ("openid email", "email"));
        let cf = settings.dashboard.cf_sso.expect("cf_sso");
        assert_eq!(cf.scopes, "openid cloud_controller_service_permissions.read");
        assert_eq!(cf.client_id, None, "the catalog's dashboard_client names it");
    }

    #[test]
    fn file_errors_name_the_key() {
        let dir = std::env::temp_dir().join(format!("caas-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let cases = [
            ("limits:\n  sync_timeout_seconds: 600\n", "limits.sync_timeout_seconds"),
            ("listen: \"0.0.0.0:8080\"\n", "auth.password"),
            ("kubernetes:\n  broker_namespace: Not_Valid\n", "kubernetes.broker_namespace"),
            ("kubernetes:\n  identity_namespace: x.y\n", "kubernetes.identity_namespace"),
            ("kubernetes:\n  namespace_prefix: \"\"\n", "kubernetes.namespace_prefix"),
            ("kubernetes:\n  namespace_prefix: kube\n", "kubernetes.namespace_prefix"),
            ("kubernetes:\n  namespace_prefix: kube-t-\n", "kubernetes.namespace_prefix"),
            ("kubernetes:\n  namespace_prefix: def\n", "kubernetes.namespace_prefix"),
            ("kubernetes:\n  identity_namespace: caas-broker-system\n", "must differ"),
            ("kubernetes:\n  broker_namespace: caas-h-1\n", "kubernetes.namespace_prefix"),
            ("policy:\n  tenant_guard: Guard\n", "policy.tenant_guard"),
            ("ingress:\n  domain: \"*.example.com\"\n", "ingress.domain"),
            ("ingress:\n  domain: \"example..com\"\n", "ingress.domain"),
            ("dashboard:\n  base_url: ftp://x\n", "dashboard.base_url"),
            ("dashboard:\n  listen: \"0.0.0.0:8081\"\n", "dashboard.base_url"),
            ("dashboard:\n  listen: \"127.0.0.1:8080\"\n", "dashboard.listen"),
            ("dashboard:\n  session_seconds: 5\n", "dashboard.session_seconds"),
            ("auth:\n  passwd: x\n", "passwd"),
            ("limits:\n  body_bytes: lots\n", "body_bytes"),
            ("workloads:\n  node_selector: [type]\n", "workloads.node_selector"),
            ("workloads:\n  tolerations: [\"=x\"]\n", "workloads.tolerations"),
            ("workloads:\n  tolerations: [\"a:Sometimes\"]\n", "workloads.tolerations"),
            ("workloads:\n  image_pull_policy: Sometimes\n", "image_pull_policy"),
            (
                "dashboard:\n  oidc: { issuer: \"http://id.example\", client_id: c, client_secret: s }\n",
                "dashboard.oidc.issuer",
            ),
            (
                "dashboard:\n  oidc: { issuer: \"https://id.example\", client_id: c, client_secret: \"\" }\n",
                "client_secret",
            ),
            (
                "dashboard:\n  oidc: { issuer: \"https://id.example\", client_id: c, client_secret: s, ca_file: /nope }\n",
                "dashboard.oidc.ca_file",
            ),
            ("dashboard:\n  cf_sso: { issuer: \"https://uaa.example/oauth/token\", client_secret: s }\n", "api_url"),
            (
                "dashboard:\n  cf_sso: { issuer: \"https://u.example\", client_secret: s, api_url: \"api.example\" }\n",
                "dashboard.cf_sso.api_url",
            ),
        ];
        for (i, (yaml, key)) in cases.iter().enumerate() {
            let file = dir.join(format!("case{i}.yaml"));
            std::fs::write(&file, yaml).expect("write");
            let error = Settings::load(Some(&file)).expect_err(yaml).to_string();
            assert!(error.contains(key), "{error:?} should name {key}");
        }
    }
}
