//! Names, labels and annotations: how an OSB id becomes a Kubernetes name, and every key the broker writes, in one
//! place. Names are deterministic so that a retried request finds what an earlier one made; ids that are not valid
//! Kubernetes names are hashed, and the exact id is kept in an annotation so that a hash collision is detected.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Deref;

use sha2::{Digest, Sha256};

/// The field manager of every server-side apply the broker makes.
pub const FIELD_MANAGER: &str = "caas-broker";

/// `app.kubernetes.io/managed-by` value on everything the broker makes.
pub const MANAGED_BY: &str = "caas-broker";
/// Standard label saying who manages an object.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// `app.kubernetes.io/managed-by` value on an app a tenant deployed from the dashboard: theirs, made with their own
/// identity, so the broker's plan code never takes it for one of its workload instances.
pub const MANAGED_BY_DASHBOARD: &str = "caas-dashboard";
/// Name of an app deployed from the dashboard, on its objects and pods: its pods' selector.
pub const LABEL_APP: &str = "caas-broker.io/app";
/// Marks objects tenants must not change (quota, limits, default network policy, the broker's role bindings).
pub const LABEL_PROTECTED: &str = "caas-broker.io/protected";
/// Label-safe form of the service instance id.
pub const LABEL_INSTANCE: &str = "caas-broker.io/instance";
/// Label-safe form of the binding id.
pub const LABEL_BINDING: &str = "caas-broker.io/binding";
/// Offering name.
pub const LABEL_SERVICE: &str = "caas-broker.io/service";
/// Plan name.
pub const LABEL_PLAN: &str = "caas-broker.io/plan";
/// Label-safe organization guid.
pub const LABEL_ORGANIZATION: &str = "caas-broker.io/organization";
/// Label-safe space guid.
pub const LABEL_SPACE: &str = "caas-broker.io/space";
/// Pod Security Standard enforced in a tenant namespace.
pub const LABEL_POD_SECURITY_ENFORCE: &str = "pod-security.kubernetes.io/enforce";
/// Version of the enforced standard.
pub const LABEL_POD_SECURITY_ENFORCE_VERSION: &str = "pod-security.kubernetes.io/enforce-version";
/// Standard tenants are warned about.
pub const LABEL_POD_SECURITY_WARN: &str = "pod-security.kubernetes.io/warn";
/// Standard recorded in audit logs.
pub const LABEL_POD_SECURITY_AUDIT: &str = "pod-security.kubernetes.io/audit";

/// The tenant guard's version, on each of its policies and bindings (`manifests/tenant-guard.yaml`).
pub const LABEL_GUARD_VERSION: &str = "caas-broker.io/guard-version";
/// The domain an instance's Ingress hosts must fall under (`<instance>.<ingress.domain>`), on its namespace: the
/// tenant guard reads it from there.
pub const ANNOTATION_INGRESS_DOMAIN: &str = "caas-broker.io/ingress-domain";

/// The exact OSB instance id.
pub const ANNOTATION_INSTANCE_ID: &str = "caas-broker.io/instance-id";
/// The exact OSB service id.
pub const ANNOTATION_SERVICE_ID: &str = "caas-broker.io/service-id";
/// The exact OSB plan id.
pub const ANNOTATION_PLAN_ID: &str = "caas-broker.io/plan-id";
/// The exact organization guid.
pub const ANNOTATION_ORGANIZATION_GUID: &str = "caas-broker.io/organization-guid";
/// The exact space guid.
pub const ANNOTATION_SPACE_GUID: &str = "caas-broker.io/space-guid";
/// The platform context (names of organization, space, instance), JSON.
pub const ANNOTATION_CONTEXT: &str = "caas-broker.io/context";
/// The validated parameters, JSON.
pub const ANNOTATION_PARAMETERS: &str = "caas-broker.io/parameters";
/// The maintenance version the objects were built for.
pub const ANNOTATION_MAINTENANCE_VERSION: &str = "caas-broker.io/maintenance-version";
/// Who asked for the instance (`<platform> <user>`), from the originating identity.
pub const ANNOTATION_CREATED_BY: &str = "caas-broker.io/created-by";
/// The owner ServiceAccount's name.
pub const ANNOTATION_OWNER: &str = "caas-broker.io/owner";
/// The namespace of the owner ServiceAccount; absent on instances made before version 2.0, whose owner lives in the
/// tenant namespace until a maintenance upgrade moves it.
pub const ANNOTATION_IDENTITY_NAMESPACE: &str = "caas-broker.io/identity-namespace";
/// Set, with a timestamp, once every object of the instance has been applied.
pub const ANNOTATION_PROVISIONED: &str = "caas-broker.io/provisioned-at";

/// Marks a member's ServiceAccount and RoleBinding (value `true`): a person invited on the dashboard.
pub const LABEL_MEMBER: &str = "caas-broker.io/member";
/// The member's name exactly as the identity provider gives it (an email, `cf:<user id>`).
pub const ANNOTATION_MEMBER: &str = "caas-broker.io/member-name";

/// The tenant's ResourceQuota.
pub const QUOTA_NAME: &str = "caas-quota";
/// The tenant's LimitRange.
pub const LIMIT_RANGE_NAME: &str = "caas-limits";
/// The tenant's default-deny NetworkPolicy.
pub const NETWORK_POLICY_NAME: &str = "caas-default-deny";
/// The owner's RoleBinding.
pub const OWNER_ROLE_BINDING_NAME: &str = "caas-owner";
/// The RoleBinding granting the broker the dashboard's watch ClusterRole (`kubernetes.dashboard_watch_role`) in one
/// tenant namespace (see [`super::virtual_cluster::dashboard_watch_binding`]), never cluster-wide.
pub const DASHBOARD_WATCH_BINDING_NAME: &str = "caas-broker-dashboard-watch";
/// The tenant namespace a workload runs in (on the workload's record).
pub const ANNOTATION_NAMESPACE: &str = "caas-broker.io/namespace";
/// The virtual cluster a workload runs in (on the workload's record).
pub const ANNOTATION_CLUSTER_INSTANCE_ID: &str = "caas-broker.io/cluster-instance-id";
/// When the broker stopped a streaming session for want of a viewer (on the workload's record, until it is woken).
pub const ANNOTATION_IDLE_STOPPED_AT: &str = "caas-broker.io/idle-stopped-at";
/// After how many minutes without a viewer it was stopped (beside [`ANNOTATION_IDLE_STOPPED_AT`]).
pub const ANNOTATION_IDLE_STOP_MINUTES: &str = "caas-broker.io/idle-stopped-after-minutes";

/// The prefix of every label and annotation key of the broker's.
const BROKER_KEY_PREFIX: &str = "caas-broker.io/";

const LABEL_VALUE_MAX: usize = 63;

/// A DNS-1123 label: 1 to 63 of `a-z`, `0-9` and `-`, starting and ending with a letter or digit. What a namespace's
/// and a Service's name must be, and nothing that could name a host, an address or a path (`a.b`, `127.0.0.1`,
/// `x/../y`): checked once, where a name comes in, so that what holds one needs no second look.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DnsLabel(String);

/// A name that is not a [`DnsLabel`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a DNS label (1 to 63 of a-z, 0-9 and '-', starting and ending with a letter or digit)")]
pub struct NotADnsLabel(pub String);

impl DnsLabel {
    /// Longest label DNS allows.
    pub const MAX: usize = 63;

    /// `name` as a label, if it is one.
    pub fn parse(name: &str) -> Result<DnsLabel, NotADnsLabel> {
        if DnsLabel::is_valid(name) { Ok(DnsLabel(name.to_owned())) } else { Err(NotADnsLabel(name.to_owned())) }
    }

    /// Whether `name` is a label, for a caller that only checks.
    pub fn is_valid(name: &str) -> bool {
        is_label(name, DnsLabel::MAX)
    }

    /// The label as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DnsLabel {
    type Error = NotADnsLabel;

    fn try_from(name: String) -> Result<DnsLabel, NotADnsLabel> {
        if DnsLabel::is_valid(&name) { Ok(DnsLabel(name)) } else { Err(NotADnsLabel(name)) }
    }
}

impl std::str::FromStr for DnsLabel {
    type Err = NotADnsLabel;

    fn from_str(name: &str) -> Result<DnsLabel, NotADnsLabel> {
        DnsLabel::parse(name)
    }
}

impl Deref for DnsLabel {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for DnsLabel {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DnsLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<DnsLabel> for String {
    fn from(label: DnsLabel) -> String {
        label.0
    }
}

/// Whether `name` is 1 to `max` of `a-z`, `0-9` and `-`, starting and ending with a letter or digit: the one rule
/// behind [`DnsLabel`], [`is_dns_subdomain`] and [`is_object_name`].
fn is_label(name: &str, max: usize) -> bool {
    let bytes = name.as_bytes();
    let edge = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    (1..=max).contains(&bytes.len())
        && bytes.first().is_some_and(edge)
        && bytes.last().is_some_and(edge)
        && bytes.iter().all(|b| edge(b) || *b == b'-')
}

/// Whether `name` is a DNS name of at most `max` characters: [`DnsLabel`]s joined by dots (a domain, a host).
pub fn is_dns_subdomain(name: &str, max: usize) -> bool {
    name.len() <= max && name.split('.').all(DnsLabel::is_valid)
}

/// Whether `name` can be the name of a Kubernetes object (what the apiserver calls a DNS-1123 subdomain: at most 253
/// characters, dot-separated parts of `a-z`, `0-9` and `-` that start and end with a letter or digit, of any length).
/// Anything else names nothing, and must not reach a request path (`a/../b`).
pub fn is_object_name(name: &str) -> bool {
    const MAX: usize = 253;
    name.len() <= MAX && name.split('.').all(|part| is_label(part, MAX))
}

/// The labels of the objects the broker makes for a service instance of a plan (a workload's objects and record, a
/// virtual cluster's namespace objects): who manages them, the instance (what deprovisioning finds them by), its
/// offering and its plan, each value label-safe.
#[derive(Debug, Clone, Copy)]
pub struct ManagedLabels<'a> {
    /// The instance id.
    pub instance_id: &'a str,
    /// The offering's name.
    pub service: &'a str,
    /// The plan's name.
    pub plan: &'a str,
}

impl ManagedLabels<'_> {
    /// The labels as an object's metadata holds them.
    pub fn to_map(self) -> BTreeMap<String, String> {
        let mut labels = instance_labels(self.instance_id);
        labels.insert(LABEL_SERVICE.to_owned(), label_value(self.service));
        labels.insert(LABEL_PLAN.to_owned(), label_value(self.plan));
        labels
    }
}

/// Who manages an object and the instance it belongs to: the labels every object the broker makes for an instance
/// carries (a binding's and a member's add their own to them).
pub fn instance_labels(instance_id: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_MANAGED_BY.to_owned(), MANAGED_BY.to_owned()),
        (LABEL_INSTANCE.to_owned(), label_value(instance_id)),
    ])
}

/// Whether a label or annotation key is one of the broker's own: what an instance's record is read from (and counted
/// by), and what the copy of the records keeps of a namespace or a workload record.
pub fn is_broker_key(key: &str) -> bool {
    key.starts_with(BROKER_KEY_PREFIX)
}

/// The label value for an id: the id itself when it is a valid label value, otherwise `h-` and a hash.
pub fn label_value(id: &str) -> String {
    let valid = !id.is_empty()
        && id.len() <= LABEL_VALUE_MAX
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && id.as_bytes()[0].is_ascii_alphanumeric()
        && id.as_bytes()[id.len() - 1].is_ascii_alphanumeric();
    if valid { id.to_owned() } else { format!("h-{}", &hash(id)[..40]) }
}

/// The namespace of an instance: `<prefix><id>` when that is a valid namespace name, otherwise `<prefix>` and a hash.
pub fn namespace(prefix: &str, instance_id: &str) -> String {
    dns_label(prefix, instance_id)
}

/// A DNS-1123 label `<prefix><id>`, or `<prefix>` and a hash of the id when that would not be valid or unique.
pub fn dns_label(prefix: &str, id: &str) -> String {
    short_label(prefix, id, 63)
}

/// Like [`dns_label`], at most `max` characters (a StatefulSet's name must leave room for its revision hash).
pub fn short_label(prefix: &str, id: &str, max: usize) -> String {
    let candidate = format!("{prefix}{id}");
    if DnsLabel::is_valid(&candidate) && candidate.len() <= max && !id.starts_with("h-") {
        candidate
    } else {
        let room = max.saturating_sub(prefix.len() + 2).min(40);
        format!("{prefix}h-{}", &hash(id)[..room])
    }
}

/// The domain an instance's Ingress hosts fall under when Ingress hosts are limited to `domain`
/// (`ingress.domain`): `<instance>.<domain>`, `<instance>` being the id, or `h-` and its hash when the id is not a
/// DNS label.
pub fn ingress_domain(instance_id: &str, domain: &str) -> String {
    format!("{}.{domain}", dns_label("", instance_id))
}

/// Whether `host` falls under `domain` as the tenant guard sees it: `domain` itself or `<anything>.<domain>`.
pub fn host_under(host: &str, domain: &str) -> bool {
    host == domain || host.strip_suffix(domain).is_some_and(|head| head.len() > 1 && head.ends_with('.'))
}

/// The name of an instance's owner ServiceAccount in the identity namespace (unique per instance; who asked for the
/// instance is recorded in [`ANNOTATION_CREATED_BY`]).
pub fn owner_account(instance_id: &str) -> String {
    dns_label("caas-owner-", instance_id)
}

/// The name of a member's ServiceAccount in the identity namespace (and of its RoleBinding in the tenant namespace):
/// a hash of the instance id and the member's name, since a name may be any string and the same person may be a
/// member of several virtual clusters.
pub fn member_account(instance_id: &str, member: &str) -> String {
    format!("caas-member-{}", &hash(&format!("{instance_id}\n{member}"))[..40])
}

/// Namespaces every cluster has, which no instance may ever be given.
pub const SYSTEM_NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

/// Whether `id` has the shape of a hashed name (`h-` and lowercase hex digits, as [`label_value`] and
/// [`short_label`] write them): such an id, taken as it is, could stand for another id's hash.
pub fn looks_hashed(id: &str) -> bool {
    id.strip_prefix("h-")
        .is_some_and(|hex| !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// Why the instance id `id` may not be used with namespace prefix `prefix`, or `None` when it may: its namespace
/// would be one of `reserved` (the broker's own and the identity namespace) or a system namespace, or the id looks
/// like another id's hash.
pub fn refused_instance_id(prefix: &str, id: &str, reserved: &[&str]) -> Option<String> {
    if looks_hashed(id) {
        return Some(format!(
            "instance id {id:?} has the shape of a hashed name (h- and hex digits) and could stand for another id: \
             use another id"
        ));
    }
    let namespace = namespace(prefix, id);
    (reserved.contains(&namespace.as_str()) || SYSTEM_NAMESPACES.contains(&namespace.as_str())).then(|| {
        format!("instance id {id:?} would be given namespace {namespace:?}, which is reserved: use another id")
    })
}

fn hash(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_labels_are_dns_labels() {
        for good in ["web", "app-1", "0", &"a".repeat(63)] {
            assert_eq!(DnsLabel::parse(good).as_deref(), Ok(good));
        }
        let bad = ["", "Web", "127.0.0.1", "169.254.169.254", "kubernetes.default", "a/../b", "-a", "a-", "a:80"];
        for bad in bad.into_iter().chain([&*"a".repeat(64)]) {
            assert_eq!(DnsLabel::parse(bad), Err(NotADnsLabel(bad.to_owned())), "{bad}");
            assert!(DnsLabel::try_from(bad.to_owned()).is_err() && bad.parse::<DnsLabel>().is_err(), "{bad}");
        }
        assert_eq!(DnsLabel::parse("web").map(|label| label.to_string()).as_deref(), Ok("web"));
    }

    #[test]
    fn only_object_names_name_objects() {
        for name in ["web", "web-6d4b5c7f9-x2x7k", "a.b-c", "0", &"a".repeat(253)] {
            assert!(is_object_name(name), "{name}");
        }
        for name in ["", "a/../b", "Web", "-a", "a-", "a b", "a%2Fb", "a..b", "a.-b", &"a".repeat(254)] {
            assert!(!is_object_name(name), "{name}");
        }
    }

    #[test]
    fn dns_names_are_labels_joined_by_dots() {
        assert!(is_dns_subdomain("apps.example.com", 253));
        for bad in ["example..com", "*.example.com", ".example.com", "Example.com", &format!("{}.com", "a".repeat(64))]
        {
            assert!(!is_dns_subdomain(bad, 253), "{bad}");
        }
        assert!(!is_dns_subdomain("apps.example.com", 10));
    }

    #[test]
    fn managed_labels_name_the_instance_its_offering_and_plan() {
        let labels = ManagedLabels { instance_id: "a b", service: "container-app", plan: "small" }.to_map();
        let expected = [
            (LABEL_MANAGED_BY, MANAGED_BY),
            (LABEL_INSTANCE, &label_value("a b")),
            (LABEL_SERVICE, "container-app"),
            (LABEL_PLAN, "small"),
        ];
        assert_eq!(labels, expected.map(|(key, value)| (key.to_owned(), value.to_owned())).into());
    }

    #[test]
    fn guid_ids_are_used_as_they_are() {
        let id = "3f1e2a7c-8b4d-4e5f-9a6b-1c2d3e4f5a6b";
        assert_eq!(namespace("caas-", id), format!("caas-{id}"));
        assert_eq!(label_value(id), id);
    }

    #[test]
    fn odd_ids_are_hashed_into_valid_distinct_names() {
        let odd = ["UPPER", "a/b", "ü", "0", &"x".repeat(80), "-leading", "h-deadbeef", "with space", ""];
        let mut seen = std::collections::HashSet::new();
        for id in odd {
            let name = namespace("caas-", id);
            assert!(DnsLabel::is_valid(&name), "{name:?} from {id:?}");
            let label = label_value(id);
            assert!(label.len() <= 63);
            assert!(seen.insert(name), "two ids share a name");
        }
        assert_ne!(namespace("caas-", "abc"), namespace("caas-", "ABC"));
        assert_eq!(namespace("caas-", "0"), "caas-0");
    }

    #[test]
    fn ids_that_reach_reserved_namespaces_or_look_hashed_are_refused() {
        let reserved = ["caas-broker-system", "caas-broker-identities"];
        for id in ["broker-system", "broker-identities", "h-0", "h-deadbeef", &format!("h-{}", "a".repeat(40))] {
            assert!(refused_instance_id("caas-", id, &reserved).is_some(), "{id:?} must be refused");
        }
        assert!(refused_instance_id("", "kube-system", &reserved).is_some(), "a system namespace");
        assert!(refused_instance_id("kube-", "public", &reserved).is_some(), "a system namespace");
        for id in ["3f1e2a7c-8b4d-4e5f-9a6b-1c2d3e4f5a6b", "h-", "h-xyz", "h-DEAD", "broker", "UPPER", "a/b"] {
            assert_eq!(refused_instance_id("caas-", id, &reserved), None, "{id:?} is fine");
        }
    }

    #[test]
    fn ingress_hosts_fall_under_the_instance_domain() {
        let domain = ingress_domain("3f1e2a7c", "apps.example.com");
        assert_eq!(domain, "3f1e2a7c.apps.example.com");
        assert!(ingress_domain("UPPER", "apps.example.com").starts_with("h-"));
        assert!(host_under("web.3f1e2a7c.apps.example.com", &domain));
        assert!(host_under("3f1e2a7c.apps.example.com", &domain));
        for foreign in ["apps.example.com", "x3f1e2a7c.apps.example.com", ".3f1e2a7c.apps.example.com", "bank.com"] {
            assert!(!host_under(foreign, &domain), "{foreign}");
        }
    }

    #[test]
    fn owner_names_are_valid_and_distinct_per_instance() {
        assert_eq!(owner_account("abc"), "caas-owner-abc");
        assert!(DnsLabel::is_valid(&owner_account(&"u".repeat(100))));
        assert_ne!(owner_account("A"), owner_account("a"));
    }
}
