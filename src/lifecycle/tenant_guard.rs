//! Whether the tenant guard is in force: the ValidatingAdmissionPolicies (and their bindings) that keep tenants from
//! undoing their isolation (`manifests/tenant-guard.yaml`, the Helm chart's, the BOSH job's pre-start). Without them
//! an `admin` binding deletes its namespace's default-deny NetworkPolicy, so the broker refuses to provision or bind
//! (and is not ready) until every policy and binding is there in the version it expects, unless the operator opted
//! out (`policy.require_tenant_guard: false`, unsafe). The answer is cached for a few seconds: requests never wait
//! for more than one check at a time, and most for none.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::{ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde::Deserialize;

use crate::k8s::names::LABEL_GUARD_VERSION;

/// The guard's version this broker expects, at least, on every policy and binding (label [`LABEL_GUARD_VERSION`]);
/// raised whenever the policies change in a way the broker relies on.
pub const GUARD_VERSION: &str = "2";

/// The policies of the guard, each `<name>-<suffix>` and bound by a binding of the same name.
pub const POLICY_SUFFIXES: [&str; 6] =
    ["tenant-guard", "no-legacy-tokens", "no-token-minting", "no-external-ips", "ingress-hosts", "no-gpu-env"];

/// The guard as the repository has it: the policies an operator applies, named `caas-broker-<suffix>`, counting
/// ServiceAccounts of `caas-broker-identities` as tenant credentials.
const MANIFESTS: &str = include_str!("../../manifests/tenant-guard.yaml");
/// The identity namespace [`MANIFESTS`] names.
const MANIFESTS_IDENTITY_NAMESPACE: &str = "caas-broker-identities";
/// The field manager of `caas-broker tenant-guard apply`.
const FIELD_MANAGER: &str = "caas-broker-tenant-guard";

/// Why the guard could not be rendered or applied.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// A document of `manifests/tenant-guard.yaml` is not YAML.
    #[error("tenant-guard.yaml: {0}")]
    Yaml(#[source] serde_norway::Error),
    /// A document, renamed, is not the object its kind says.
    #[error("tenant-guard.yaml: {0}")]
    Object(#[source] serde_json::Error),
    /// A document, renamed, is no longer JSON.
    #[error("{0}")]
    Renamed(#[source] serde_json::Error),
    /// A document is neither a policy nor a binding.
    #[error("tenant-guard.yaml: unexpected kind {0:?}")]
    UnexpectedKind(Option<String>),
    /// The apiserver refused an object.
    #[error("applying {kind} {name}: {source}")]
    Apply {
        /// The object's kind.
        kind: &'static str,
        /// Its name.
        name: String,
        /// The apiserver's answer.
        #[source]
        source: kube::Error,
    },
    /// Everything was applied, yet the broker's own check does not find the guard in force.
    #[error("{}", .0.describe())]
    NotInForce(Verdict),
}

/// The guard's policies and bindings for a broker whose guard is `name` and whose identity namespace is
/// `identity_namespace`: [`MANIFESTS`] renamed, as the Helm chart renders them.
pub fn manifests(
    name: &str,
    identity_namespace: &str,
) -> Result<(Vec<ValidatingAdmissionPolicy>, Vec<ValidatingAdmissionPolicyBinding>), GuardError> {
    let identities = |namespace: &str| format!("system:serviceaccount:{namespace}:");
    let mut policies = Vec::new();
    let mut bindings = Vec::new();
    for document in serde_norway::Deserializer::from_str(MANIFESTS) {
        let mut object = serde_json::Value::deserialize(document).map_err(GuardError::Yaml)?;
        let rename = |value: &mut serde_json::Value| {
            if let Some(suffix) = value.as_str().and_then(|old| old.strip_prefix("caas-broker-")) {
                *value = serde_json::Value::String(format!("{name}-{suffix}"));
            }
        };
        rename(&mut object["metadata"]["name"]);
        let text =
            object.to_string().replace(&identities(MANIFESTS_IDENTITY_NAMESPACE), &identities(identity_namespace));
        let mut object: serde_json::Value = serde_json::from_str(&text).map_err(GuardError::Renamed)?;
        match object["kind"].as_str() {
            Some("ValidatingAdmissionPolicy") => {
                policies.push(serde_json::from_value(object).map_err(GuardError::Object)?)
            }
            Some("ValidatingAdmissionPolicyBinding") => {
                rename(&mut object["spec"]["policyName"]);
                bindings.push(serde_json::from_value(object).map_err(GuardError::Object)?)
            }
            other => return Err(GuardError::UnexpectedKind(other.map(str::to_owned))),
        }
    }
    Ok((policies, bindings))
}

/// Applies the guard [`manifests`] renders (server-side, taking over fields other managers set), then waits until
/// the broker's own check finds it in force; returns the names applied. What `caas-broker tenant-guard apply` does,
/// with an operator's credentials (the BOSH release's pre-start).
pub async fn apply(client: &Client, name: &str, identity_namespace: &str) -> Result<Vec<String>, GuardError> {
    let (policies, bindings) = manifests(name, identity_namespace)?;
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut applied = Vec::new();
    let policy_api = Api::<ValidatingAdmissionPolicy>::all(client.clone());
    for policy in &policies {
        let name = policy.name_any();
        policy_api.patch(&name, &params, &Patch::Apply(policy)).await.map_err(|source| GuardError::Apply {
            kind: "ValidatingAdmissionPolicy",
            name: name.clone(),
            source,
        })?;
        applied.push(format!("ValidatingAdmissionPolicy {name}"));
    }
    let binding_api = Api::<ValidatingAdmissionPolicyBinding>::all(client.clone());
    for binding in &bindings {
        let name = binding.name_any();
        binding_api.patch(&name, &params, &Patch::Apply(binding)).await.map_err(|source| GuardError::Apply {
            kind: "ValidatingAdmissionPolicyBinding",
            name: name.clone(),
            source,
        })?;
        applied.push(format!("ValidatingAdmissionPolicyBinding {name}"));
    }
    match TenantGuard::new(client.clone(), name).check().await {
        Verdict::InForce => Ok(applied),
        other => Err(GuardError::NotInForce(other)),
    }
}

/// How long a verdict is reused before the cluster is asked again.
const FRESH_FOR: Duration = Duration::from_secs(5);
/// How often the guard is checked in the background (and, while it is not in force, said in the log).
const LOG_EVERY: Duration = Duration::from_secs(60);

/// What the last check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every policy and binding is there, in the expected version, denying.
    InForce,
    /// What is missing or not as expected, one entry per object ("ValidatingAdmissionPolicy x: missing").
    Missing(Vec<String>),
    /// The cluster could not be asked (unreachable, or the broker may not list the policies).
    Unknown(String),
}

impl Verdict {
    /// What an operator reads: what is wrong and what to do.
    pub fn describe(&self) -> String {
        match self {
            Verdict::InForce => "the tenant guard is in force".to_owned(),
            Verdict::Missing(missing) => format!(
                "the tenant guard is not in force ({}): apply manifests/tenant-guard.yaml (the Helm chart and the \
                 BOSH job's pre-start install it), or set policy.require_tenant_guard: false \
                 (unsafe)",
                missing.join("; ")
            ),
            Verdict::Unknown(why) => format!("cannot check the tenant guard: {why}"),
        }
    }
}

/// The guard a broker expects, and what it last found.
pub struct TenantGuard {
    client: Client,
    /// Policy and binding names the broker expects.
    names: Vec<String>,
    /// The last verdict and when it was reached; the lock also makes concurrent requests share one check.
    last: tokio::sync::Mutex<Option<(Instant, Verdict)>>,
    /// When a missing guard was last said in the log.
    logged: std::sync::Mutex<Option<Instant>>,
}

impl TenantGuard {
    /// The guard named `name` (policies `<name>-tenant-guard`, ...), checked with `client`.
    pub fn new(client: Client, name: &str) -> TenantGuard {
        TenantGuard {
            client,
            names: POLICY_SUFFIXES.iter().map(|suffix| format!("{name}-{suffix}")).collect(),
            last: tokio::sync::Mutex::new(None),
            logged: std::sync::Mutex::new(None),
        }
    }

    /// The verdict, at most [`FRESH_FOR`] old. A check the cluster did not answer is not kept: the next request asks
    /// again, so a broker serves again as soon as the apiserver is back, not a few seconds later.
    pub async fn verdict(&self) -> Verdict {
        let mut last = self.last.lock().await;
        if let Some((at, verdict)) = last.as_ref()
            && at.elapsed() < FRESH_FOR
        {
            return verdict.clone();
        }
        let verdict = self.check().await;
        self.log(&verdict);
        *last = match verdict {
            Verdict::Unknown(_) => None,
            _ => Some((Instant::now(), verdict.clone())),
        };
        verdict
    }

    /// Checks now, then every [`LOG_EVERY`] while the guard lives (the broker holds it): a broker that gets no
    /// requests still says in its log, once a minute, that the guard is missing.
    pub fn watch(guard: &Arc<TenantGuard>) {
        let weak: Weak<TenantGuard> = Arc::downgrade(guard);
        tokio::spawn(async move {
            loop {
                let Some(guard) = weak.upgrade() else { return };
                guard.verdict().await;
                drop(guard);
                tokio::time::sleep(LOG_EVERY).await;
            }
        });
    }

    async fn check(&self) -> Verdict {
        let policies = Api::<ValidatingAdmissionPolicy>::all(self.client.clone());
        let bindings = Api::<ValidatingAdmissionPolicyBinding>::all(self.client.clone());
        let params = ListParams::default();
        let (policies, bindings) = match tokio::try_join!(policies.list(&params), bindings.list(&params)) {
            Ok(lists) => lists,
            Err(error) => return Verdict::Unknown(format!("listing ValidatingAdmissionPolicies failed: {error}")),
        };
        let mut missing = Vec::new();
        for name in &self.names {
            match policies.items.iter().find(|policy| policy.name_any() == *name) {
                None => missing.push(format!("ValidatingAdmissionPolicy {name}: missing")),
                Some(policy) => missing.extend(wrong_version("ValidatingAdmissionPolicy", name, policy.labels())),
            }
            match bindings.items.iter().find(|binding| binding.name_any() == *name) {
                None => missing.push(format!("ValidatingAdmissionPolicyBinding {name}: missing")),
                Some(binding) => {
                    missing.extend(wrong_version("ValidatingAdmissionPolicyBinding", name, binding.labels()));
                    let spec = &binding.spec;
                    if spec.policy_name != *name {
                        missing.push(format!("ValidatingAdmissionPolicyBinding {name}: does not bind policy {name}"));
                    }
                    if !spec.validation_actions.iter().any(|action| action == "Deny") {
                        missing.push(format!("ValidatingAdmissionPolicyBinding {name}: validationActions lack Deny"));
                    }
                }
            }
        }
        if missing.is_empty() { Verdict::InForce } else { Verdict::Missing(missing) }
    }

    /// Says a guard that is not in force in the log at most once per [`LOG_EVERY`], and says when it is back.
    fn log(&self, verdict: &Verdict) {
        let mut logged = self.logged.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match verdict {
            Verdict::InForce => {
                if logged.take().is_some() {
                    tracing::info!("the tenant guard is in force again: provision and bind are served");
                }
            }
            other => {
                if logged.is_none_or(|at| at.elapsed() >= LOG_EVERY) {
                    tracing::error!(problem = %other.describe(), "refusing provision and bind, not ready");
                    *logged = Some(Instant::now());
                }
            }
        }
    }
}

/// "<kind> <name>: version X, expected Y or later" when the object's guard version is older than [`GUARD_VERSION`]
/// (a newer guard is accepted: an operator applies a new release's guard before its brokers, and the old brokers stay
/// ready meanwhile).
fn wrong_version(kind: &str, name: &str, labels: &std::collections::BTreeMap<String, String>) -> Option<String> {
    let expected: u32 = GUARD_VERSION.parse().unwrap_or(u32::MAX);
    match labels.get(LABEL_GUARD_VERSION) {
        Some(version) if version.parse::<u32>().is_ok_and(|version| version >= expected) => None,
        Some(other) => Some(format!("{kind} {name}: version {other}, expected {GUARD_VERSION} or later")),
        None => Some(format!("{kind} {name}: no {LABEL_GUARD_VERSION} label, expected {GUARD_VERSION} or later")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifests_hold_exactly_the_guard_the_broker_expects() {
        let (policies, bindings) = manifests("rel-x", "rel-identities").expect("the manifests parse");
        let expected: Vec<String> = POLICY_SUFFIXES.iter().map(|suffix| format!("rel-x-{suffix}")).collect();
        let names = |items: Vec<(String, Option<String>)>| {
            for (name, version) in &items {
                assert_eq!(version.as_deref(), Some(GUARD_VERSION), "{name} carries the broker's guard version");
            }
            items.into_iter().map(|(name, _)| name).collect::<Vec<_>>()
        };
        let version = |labels: &std::collections::BTreeMap<String, String>| labels.get(LABEL_GUARD_VERSION).cloned();
        assert_eq!(names(policies.iter().map(|p| (p.name_any(), version(p.labels()))).collect()), expected);
        assert_eq!(names(bindings.iter().map(|b| (b.name_any(), version(b.labels()))).collect()), expected);
        for binding in &bindings {
            let spec = &binding.spec;
            assert_eq!(spec.policy_name, binding.name_any());
        }
        let text = serde_json::to_string(&policies).expect("json");
        assert!(text.contains("system:serviceaccount:rel-identities:") && !text.contains("caas-broker-identities"));
    }

    #[test]
    fn versions_other_than_the_expected_one_are_named() {
        let mut labels = std::collections::BTreeMap::new();
        assert!(wrong_version("K", "n", &labels).is_some_and(|why| why.contains("no caas-broker.io/guard-version")));
        labels.insert(LABEL_GUARD_VERSION.to_owned(), "1".to_owned());
        assert_eq!(wrong_version("K", "n", &labels).as_deref(), Some("K n: version 1, expected 2 or later"));
        labels.insert(LABEL_GUARD_VERSION.to_owned(), "two".to_owned());
        assert!(wrong_version("K", "n", &labels).is_some(), "not a version");
        labels.insert(LABEL_GUARD_VERSION.to_owned(), GUARD_VERSION.to_owned());
        assert_eq!(wrong_version("K", "n", &labels), None);
        labels.insert(LABEL_GUARD_VERSION.to_owned(), "3".to_owned());
        assert_eq!(wrong_version("K", "n", &labels), None, "a newer guard is accepted");
    }

    #[test]
    fn a_missing_guard_is_described_with_what_to_do() {
        let verdict = Verdict::Missing(vec!["ValidatingAdmissionPolicy x-tenant-guard: missing".to_owned()]);
        let text = verdict.describe();
        assert!(text.contains("x-tenant-guard: missing") && text.contains("manifests/tenant-guard.yaml"), "{text}");
    }
}
