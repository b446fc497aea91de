//! The objects of a member, a person invited to a virtual cluster on its dashboard: held exactly like a binding's
//! identity (see [`super::binding`]), a ServiceAccount of its own in the identity namespace, out of the tenant's reach,
//! and in the tenant namespace a RoleBinding granting it one built-in role there. Deleting the ServiceAccount revokes
//! every token the member was given; both carry the instance label, so deprovisioning removes them with the bindings'.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::binding::identity_account;
use super::names::{self, *};
use super::virtual_cluster::role_binding;

/// Where a member's objects are and what they are called.
#[derive(Debug, Clone)]
pub struct MemberObjects {
    /// Exact instance id.
    pub instance_id: String,
    /// The member's name as the identity provider gives it.
    pub member: String,
    /// Tenant namespace, where the RoleBinding is.
    pub namespace: String,
    /// Where the member's ServiceAccount lives.
    pub identity_namespace: String,
}

impl MemberObjects {
    /// Name of the member's ServiceAccount and of its RoleBinding.
    pub fn account_name(&self) -> String {
        names::member_account(&self.instance_id, &self.member)
    }

    /// Labels of both objects: the instance's (what deprovisioning deletes by) and the member mark.
    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut labels = names::instance_labels(&self.instance_id);
        labels.insert(LABEL_MEMBER.to_owned(), "true".to_owned());
        labels.insert(LABEL_PROTECTED.to_owned(), "true".to_owned());
        labels
    }

    fn meta(&self) -> ObjectMeta {
        ObjectMeta {
            name: Some(self.account_name()),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.labels()),
            annotations: Some(BTreeMap::from([
                (ANNOTATION_MEMBER.to_owned(), self.member.clone()),
                (ANNOTATION_INSTANCE_ID.to_owned(), self.instance_id.clone()),
            ])),
            ..ObjectMeta::default()
        }
    }

    /// The member's own ServiceAccount in the identity namespace, owned by the tenant namespace.
    pub fn service_account(&self, owner: Option<OwnerReference>) -> ServiceAccount {
        identity_account(self.meta(), &self.identity_namespace, owner)
    }

    /// Grants the member the built-in ClusterRole `role` in the tenant namespace only.
    pub fn role_binding(&self, role: &str) -> RoleBinding {
        role_binding(self.meta(), role, &self.account_name(), &self.identity_namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(member: &str) -> MemberObjects {
        MemberObjects {
            instance_id: "inst-1".to_owned(),
            member: member.to_owned(),
            namespace: "caas-inst-1".to_owned(),
            identity_namespace: "ids".to_owned(),
        }
    }

    #[test]
    fn a_member_is_an_identity_with_its_name_kept_exactly_and_a_role_in_the_tenant_namespace_only() {
        let alice = objects("Alice@Example.test");
        let account = alice.service_account(None);
        assert_eq!(account.metadata.namespace.as_deref(), Some("ids"));
        assert_eq!(account.automount_service_account_token, Some(false));
        let annotations = account.metadata.annotations.expect("annotations");
        assert_eq!(annotations[ANNOTATION_MEMBER], "Alice@Example.test");
        assert_eq!(account.metadata.labels.expect("labels")[LABEL_INSTANCE], "inst-1");
        let binding = alice.role_binding("view");
        assert_eq!(binding.metadata.namespace.as_deref(), Some("caas-inst-1"));
        assert_eq!((binding.role_ref.kind.as_str(), binding.role_ref.name.as_str()), ("ClusterRole", "view"));
        let subject = &binding.subjects.expect("subjects")[0];
        assert_eq!((subject.name.as_str(), subject.namespace.as_deref()), (alice.account_name().as_str(), Some("ids")));
        assert!(names::DnsLabel::is_valid(&alice.account_name()));
        assert_ne!(alice.account_name(), objects("alice@example.test").account_name(), "names are exact");
        let mut elsewhere = objects("Alice@Example.test");
        elsewhere.instance_id = "inst-2".to_owned();
        assert_ne!(alice.account_name(), elsewhere.account_name(), "one identity per virtual cluster");
    }
}
