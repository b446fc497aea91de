//! The objects that make a namespace a tenant's virtual cluster, built as typed k8s-openapi structs from the
//! instance's desired state. Pure functions: applying them is [`super::apply`]'s job.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    LimitRange, LimitRangeItem, LimitRangeSpec, Namespace, ResourceQuota, ResourceQuotaSpec, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta, OwnerReference,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::names::*;
use crate::catalog::{ContainerLimits, PodSecurityLevel};

/// Everything the broker knows about a virtual cluster it should build.
#[derive(Debug, Clone)]
pub struct VirtualCluster {
    /// Namespace name.
    pub namespace: String,
    /// Labels every object of the instance carries (managed-by, instance, service, plan, organization, space).
    pub labels: BTreeMap<String, String>,
    /// Annotations of the namespace (exact ids, context, parameters, maintenance version, ...).
    pub annotations: BTreeMap<String, String>,
    /// ResourceQuota `spec.hard`.
    pub quota: BTreeMap<String, String>,
    /// LimitRange defaults.
    pub limits: ContainerLimits,
    /// Pod Security level to enforce.
    pub pod_security: PodSecurityLevel,
    /// Namespaces allowed to connect to the tenant's pods.
    pub allow_ingress_from_namespaces: Vec<String>,
    /// The owner ServiceAccount's name, in `identity_namespace`.
    pub owner: String,
    /// Where the owner's ServiceAccount lives: out of the tenant's reach (`kubernetes.identity_namespace`).
    pub identity_namespace: String,
    /// The domain the instance's Ingress hosts must fall under, when limited (written on the namespace as
    /// [`ANNOTATION_INGRESS_DOMAIN`], where the tenant guard reads it).
    pub ingress_domain: Option<String>,
}

impl VirtualCluster {
    fn meta(&self, name: &str, protected: bool) -> ObjectMeta {
        let mut labels = self.labels.clone();
        if protected {
            labels.insert(LABEL_PROTECTED.to_owned(), "true".to_owned());
        }
        ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(self.namespace.clone()),
            labels: Some(labels),
            ..ObjectMeta::default()
        }
    }

    /// The namespace, with the instance's labels, Pod Security labels and annotations.
    pub fn namespace(&self) -> Namespace {
        let mut labels = self.labels.clone();
        labels.insert(LABEL_PROTECTED.to_owned(), "true".to_owned());
        labels.insert(LABEL_POD_SECURITY_ENFORCE.to_owned(), self.pod_security.as_str().to_owned());
        labels.insert(LABEL_POD_SECURITY_ENFORCE_VERSION.to_owned(), "latest".to_owned());
        // Tenants see what "restricted" would refuse even where "baseline" is enforced.
        labels.insert(LABEL_POD_SECURITY_WARN.to_owned(), PodSecurityLevel::Restricted.as_str().to_owned());
        labels.insert(LABEL_POD_SECURITY_AUDIT.to_owned(), PodSecurityLevel::Restricted.as_str().to_owned());
        let mut annotations = self.annotations.clone();
        if let Some(domain) = &self.ingress_domain {
            annotations.insert(ANNOTATION_INGRESS_DOMAIN.to_owned(), domain.clone());
        }
        Namespace {
            metadata: ObjectMeta {
                name: Some(self.namespace.clone()),
                labels: Some(labels),
                annotations: Some(annotations),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        }
    }

    /// The plan's ResourceQuota.
    pub fn resource_quota(&self) -> ResourceQuota {
        ResourceQuota {
            metadata: self.meta(QUOTA_NAME, true),
            spec: Some(ResourceQuotaSpec { hard: Some(quantities(&self.quota)), ..ResourceQuotaSpec::default() }),
            ..ResourceQuota::default()
        }
    }

    /// The plan's container defaults and bounds.
    pub fn limit_range(&self) -> LimitRange {
        let optional = |values: &BTreeMap<String, String>| (!values.is_empty()).then(|| quantities(values));
        LimitRange {
            metadata: self.meta(LIMIT_RANGE_NAME, true),
            spec: Some(LimitRangeSpec {
                limits: vec![LimitRangeItem {
                    type_: "Container".to_owned(),
                    default: optional(&self.limits.default),
                    default_request: optional(&self.limits.default_request),
                    max: optional(&self.limits.max),
                    ..LimitRangeItem::default()
                }],
            }),
        }
    }

    /// Denies all traffic in and out of the namespace except between its own pods, DNS lookups, and connections from
    /// the namespaces the tenant allowed.
    pub fn network_policy(&self) -> NetworkPolicy {
        let same_namespace = NetworkPolicyPeer { pod_selector: Some(LabelSelector::default()), ..Default::default() };
        let mut ingress_from = vec![same_namespace.clone()];
        if !self.allow_ingress_from_namespaces.is_empty() {
            ingress_from.push(NetworkPolicyPeer {
                namespace_selector: Some(LabelSelector {
                    match_expressions: Some(vec![LabelSelectorRequirement {
                        key: "kubernetes.io/metadata.name".to_owned(),
                        operator: "In".to_owned(),
                        values: Some(self.allow_ingress_from_namespaces.clone()),
                    }]),
                    ..LabelSelector::default()
                }),
                ..Default::default()
            });
        }
        let dns_port = |protocol: &str| NetworkPolicyPort {
            port: Some(IntOrString::Int(53)),
            protocol: Some(protocol.to_owned()),
            ..Default::default()
        };
        NetworkPolicy {
            metadata: self.meta(NETWORK_POLICY_NAME, true),
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(LabelSelector::default()),
                policy_types: Some(vec!["Ingress".to_owned(), "Egress".to_owned()]),
                ingress: Some(vec![NetworkPolicyIngressRule { from: Some(ingress_from), ports: None }]),
                egress: Some(vec![
                    NetworkPolicyEgressRule { to: Some(vec![same_namespace]), ports: None },
                    NetworkPolicyEgressRule {
                        to: Some(vec![NetworkPolicyPeer {
                            namespace_selector: Some(LabelSelector::default()),
                            pod_selector: Some(LabelSelector {
                                match_labels: Some(BTreeMap::from([("k8s-app".to_owned(), "kube-dns".to_owned())])),
                                ..LabelSelector::default()
                            }),
                            ..Default::default()
                        }]),
                        ports: Some(vec![dns_port("UDP"), dns_port("TCP")]),
                    },
                ]),
            }),
        }
    }

    /// The ServiceAccount of the tenant's owner, in the identity namespace, owned by the tenant namespace `owner` so
    /// that deleting the namespace also deletes it (and revokes its tokens) even if the broker never gets to.
    pub fn owner_service_account(&self, owner: Option<OwnerReference>) -> ServiceAccount {
        let mut metadata = self.meta(&self.owner, true);
        metadata.namespace = Some(self.identity_namespace.clone());
        metadata.owner_references = owner.map(|owner| vec![owner]);
        ServiceAccount { metadata, automount_service_account_token: Some(false), ..ServiceAccount::default() }
    }

    /// Grants the owner the built-in `admin` ClusterRole in the tenant namespace (and nowhere else).
    pub fn owner_role_binding(&self) -> RoleBinding {
        role_binding(self.meta(OWNER_ROLE_BINDING_NAME, true), "admin", &self.owner, &self.identity_namespace)
    }
}

/// Grants the broker itself (`broker_user`, its Kubernetes user name) the ClusterRole `watch_role` (get, list and
/// watch of what the dashboard's live view shows) in the tenant namespace `namespace` only: the dashboard's live view watches what changes there with the broker's identity (one
/// watch shared by every viewer), and the broker may watch nothing anywhere else. Protected, like every object of the
/// virtual cluster, so the tenant cannot take it away or point it elsewhere.
pub fn dashboard_watch_binding(namespace: &str, instance_id: &str, watch_role: &str, broker_user: &str) -> RoleBinding {
    let mut labels = instance_labels(instance_id);
    labels.insert(LABEL_PROTECTED.to_owned(), "true".to_owned());
    let metadata = ObjectMeta {
        name: Some(DASHBOARD_WATCH_BINDING_NAME.to_owned()),
        namespace: Some(namespace.to_owned()),
        labels: Some(labels),
        ..ObjectMeta::default()
    };
    RoleBinding { metadata, role_ref: cluster_role(watch_role), subjects: Some(vec![user_subject(broker_user)]) }
}

/// The RBAC subject a Kubernetes user name stands for: a ServiceAccount for `system:serviceaccount:<ns>:<name>` (how
/// the broker runs in a cluster), the user itself otherwise (a certificate or an OIDC identity outside it).
fn user_subject(user: &str) -> Subject {
    match user.strip_prefix("system:serviceaccount:").and_then(|rest| rest.split_once(':')) {
        Some((namespace, name)) => Subject {
            kind: "ServiceAccount".to_owned(),
            name: name.to_owned(),
            namespace: Some(namespace.to_owned()),
            ..Subject::default()
        },
        None => Subject {
            kind: "User".to_owned(),
            name: user.to_owned(),
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            ..Subject::default()
        },
    }
}

fn cluster_role(name: &str) -> RoleRef {
    RoleRef {
        api_group: Some("rbac.authorization.k8s.io".to_owned()),
        kind: "ClusterRole".to_owned(),
        name: name.to_owned(),
    }
}

/// An owner reference to a tenant namespace: what the garbage collector follows to delete the identities of a
/// virtual cluster together with it. `None` for a namespace not read back from the apiserver (no uid).
pub fn owned_by(namespace: &Namespace) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: "v1".to_owned(),
        kind: "Namespace".to_owned(),
        name: namespace.metadata.name.clone()?,
        uid: namespace.metadata.uid.clone()?,
        ..OwnerReference::default()
    })
}

/// A RoleBinding (in the namespace of `metadata`) of a built-in ClusterRole to the ServiceAccount `account` of
/// `account_namespace`.
pub fn role_binding(metadata: ObjectMeta, cluster_role: &str, account: &str, account_namespace: &str) -> RoleBinding {
    RoleBinding {
        metadata,
        role_ref: self::cluster_role(cluster_role),
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name: account.to_owned(),
            namespace: Some(account_namespace.to_owned()),
            ..Subject::default()
        }]),
    }
}

fn quantities(values: &BTreeMap<String, String>) -> BTreeMap<String, Quantity> {
    values.iter().map(|(key, value)| (key.clone(), Quantity(value.clone()))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> VirtualCluster {
        VirtualCluster {
            namespace: "caas-x".to_owned(),
            labels: BTreeMap::from([(LABEL_INSTANCE.to_owned(), "x".to_owned())]),
            annotations: BTreeMap::new(),
            quota: BTreeMap::from([("pods".to_owned(), "10".to_owned())]),
            limits: ContainerLimits::default(),
            pod_security: PodSecurityLevel::Restricted,
            allow_ingress_from_namespaces: vec!["ingress".to_owned()],
            owner: "caas-owner-x".to_owned(),
            identity_namespace: "identities".to_owned(),
            ingress_domain: None,
        }
    }

    #[test]
    fn the_owner_lives_in_the_identity_namespace_and_dies_with_the_tenant_namespace() {
        let cluster = sample();
        let namespace = Namespace {
            metadata: ObjectMeta { name: Some("caas-x".to_owned()), uid: Some("u-1".to_owned()), ..Default::default() },
            ..Namespace::default()
        };
        let account = cluster.owner_service_account(owned_by(&namespace));
        assert_eq!(account.metadata.namespace.as_deref(), Some("identities"));
        let owners = account.metadata.owner_references.unwrap_or_default();
        assert_eq!((owners[0].kind.as_str(), owners[0].uid.as_str()), ("Namespace", "u-1"));
        let binding = cluster.owner_role_binding();
        assert_eq!(binding.metadata.namespace.as_deref(), Some("caas-x"));
        let subject = &binding.subjects.unwrap_or_default()[0];
        assert_eq!((subject.name.as_str(), subject.namespace.as_deref()), ("caas-owner-x", Some("identities")));
        assert_eq!(binding.role_ref.name, "admin");
    }

    #[test]
    fn the_broker_may_watch_a_tenant_namespace_through_a_protected_binding_of_its_own() {
        let account = "system:serviceaccount:caas-broker-system:caas-broker";
        let binding = dashboard_watch_binding("caas-x", "x", "caas-broker-dashboard-watch", account);
        assert_eq!(binding.metadata.namespace.as_deref(), Some("caas-x"));
        assert_eq!(binding.role_ref.name, "caas-broker-dashboard-watch");
        assert_eq!(binding.metadata.labels.unwrap_or_default()[LABEL_PROTECTED], "true");
        let subject = &binding.subjects.unwrap_or_default()[0];
        assert_eq!(
            (subject.kind.as_str(), subject.name.as_str(), subject.namespace.as_deref()),
            ("ServiceAccount", "caas-broker", Some("caas-broker-system"))
        );
        let outside = dashboard_watch_binding("caas-x", "x", "watch", "kubernetes-admin");
        assert_eq!(outside.subjects.unwrap_or_default()[0].kind, "User");
    }

    #[test]
    fn namespace_carries_pod_security_and_protection() {
        let labels = sample().namespace().metadata.labels.unwrap_or_default();
        assert_eq!(labels[LABEL_POD_SECURITY_ENFORCE], "restricted");
        assert_eq!(labels[LABEL_PROTECTED], "true");
        assert_eq!(labels[LABEL_INSTANCE], "x");
    }

    #[test]
    fn network_policy_denies_by_default_but_allows_dns_and_named_namespaces() {
        let policy = serde_json::to_value(sample().network_policy()).expect("serialize");
        assert_eq!(policy["spec"]["podSelector"], serde_json::json!({}));
        assert_eq!(policy["spec"]["policyTypes"], serde_json::json!(["Ingress", "Egress"]));
        assert_eq!(policy["spec"]["egress"][1]["ports"][0]["port"], 53);
        assert_eq!(
            policy["spec"]["ingress"][0]["from"][1]["namespaceSelector"]["matchExpressions"][0]["values"][0],
            "ingress"
        );
    }
}
