//! Names, labels and annotations: how an OSB id becomes a Kubernetes name, and every key the broker writes, in one
//! place. Names are deterministic so that a retried request finds what an earlier one made; ids that are not valid
//! Kubernetes names are hashed, and the exact id is kept in an annotation so that a hash collision is detected.

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

const LABEL_VALUE_MAX: usize = 63;

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
    if crate::config::is_dns_label(&candidate) && candidate.len() <= max && !id.starts_with("h-") {
        candidate
    } else {
        let room = max.saturating_sub(prefix.len() + 2).min(40);
        format!("{prefix}h-{}", &hash(id)[..room])
    }
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

fn hash(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::is_dns_label;

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
            assert!(is_dns_label(&name), "{name:?} from {id:?}");
            let label = label_value(id);
            assert!(label.len() <= 63);
            assert!(seen.insert(name), "two ids share a name");
        }
        assert_ne!(namespace("caas-", "abc"), namespace("caas-", "ABC"));
        assert_eq!(namespace("caas-", "0"), "caas-0");
    }

    #[test]
    fn owner_names_are_valid_and_distinct_per_instance() {
        assert_eq!(owner_account("abc"), "caas-owner-abc");
        assert!(is_dns_label(&owner_account(&"u".repeat(100))));
        assert_ne!(owner_account("A"), owner_account("a"));
    }
}
