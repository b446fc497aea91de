//! The objects of a binding: a ServiceAccount of its own in the identity namespace, out of the tenant's reach
//! (deleting it revokes every token it was issued), and in the tenant namespace a RoleBinding granting it the
//! requested built-in role there; in the broker's namespace the record Secret that lets any replica answer GET
//! binding with the same credentials.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::names::{self, *};
use super::virtual_cluster::role_binding;

/// Key of the credentials JSON in a binding record.
pub const RECORD_CREDENTIALS_KEY: &str = "credentials";
/// The exact binding id.
pub const ANNOTATION_BINDING_ID: &str = "caas-broker.io/binding-id";
/// The predecessor of a rotated binding.
pub const ANNOTATION_PREDECESSOR: &str = "caas-broker.io/predecessor-binding-id";
/// The bound application.
pub const ANNOTATION_APP_GUID: &str = "caas-broker.io/app-guid";
/// Binding metadata (expiry), JSON.
pub const ANNOTATION_METADATA: &str = "caas-broker.io/binding-metadata";
/// Endpoints, JSON.
pub const ANNOTATION_ENDPOINTS: &str = "caas-broker.io/endpoints";
/// Set on a binding accepted before its workload was ready: it is complete once the workload is.
pub const ANNOTATION_PENDING: &str = "caas-broker.io/pending";

/// Where a binding's objects are and what they are called.
#[derive(Debug, Clone)]
pub struct BindingObjects {
    /// Exact binding id.
    pub binding_id: String,
    /// Exact instance id.
    pub instance_id: String,
    /// Tenant namespace.
    pub namespace: String,
    /// The broker's namespace, where the record lives.
    pub broker_namespace: String,
    /// Where the binding's ServiceAccount lives.
    pub identity_namespace: String,
}

impl BindingObjects {
    /// Name of the binding's ServiceAccount (in the identity namespace; bindings made before version 2.0 have it in
    /// the tenant namespace) and of its RoleBinding in the tenant namespace.
    pub fn account_name(&self) -> String {
        names::dns_label("caas-binding-", &self.binding_id)
    }

    /// Name of the record Secret in the broker's namespace.
    pub fn record_name(&self) -> String {
        names::dns_label("binding-", &self.binding_id)
    }

    /// Labels of every object of the binding.
    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut labels = names::instance_labels(&self.instance_id);
        labels.insert(LABEL_BINDING.to_owned(), names::label_value(&self.binding_id));
        labels.insert(LABEL_PROTECTED.to_owned(), "true".to_owned());
        labels
    }

    fn tenant_meta(&self) -> ObjectMeta {
        ObjectMeta {
            name: Some(self.account_name()),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.labels()),
            annotations: Some(BTreeMap::from([(ANNOTATION_BINDING_ID.to_owned(), self.binding_id.clone())])),
            ..ObjectMeta::default()
        }
    }

    /// The binding's own ServiceAccount, in the identity namespace, owned by the tenant namespace so that it goes
    /// with the virtual cluster.
    pub fn service_account(&self, owner: Option<OwnerReference>) -> ServiceAccount {
        identity_account(self.tenant_meta(), &self.identity_namespace, owner)
    }

    /// Grants the ServiceAccount the built-in ClusterRole `role` in the tenant namespace only.
    pub fn role_binding(&self, role: &str) -> RoleBinding {
        role_binding(self.tenant_meta(), role, &self.account_name(), &self.identity_namespace)
    }

    /// The record: credentials in `data`, everything else in annotations.
    pub fn record(&self, annotations: BTreeMap<String, String>, credentials_json: String) -> Secret {
        let mut all = annotations;
        all.insert(ANNOTATION_BINDING_ID.to_owned(), self.binding_id.clone());
        all.insert(ANNOTATION_INSTANCE_ID.to_owned(), self.instance_id.clone());
        Secret {
            metadata: ObjectMeta {
                name: Some(self.record_name()),
                namespace: Some(self.broker_namespace.clone()),
                labels: Some(self.labels()),
                annotations: Some(all),
                ..ObjectMeta::default()
            },
            type_: Some("caas-broker.io/binding".to_owned()),
            string_data: Some(BTreeMap::from([(RECORD_CREDENTIALS_KEY.to_owned(), credentials_json)])),
            ..Secret::default()
        }
    }
}

/// What a binding's poll needs of its record: whose it is and whether it waits for its workload (not the requested
/// parameters, metadata or endpoints, which only a fetch reads, from the cluster). The copy of the binding records
/// keeps these annotations alone.
pub fn is_binding_state_key(key: &str) -> bool {
    [ANNOTATION_BINDING_ID, ANNOTATION_INSTANCE_ID, ANNOTATION_PENDING].contains(&key)
}

/// An identity's ServiceAccount: `metadata` moved to the identity namespace, owned by the tenant namespace `owner` so
/// that it goes with the virtual cluster, and with no token mounted anywhere (the broker requests its tokens).
/// Bindings and members are both made of one.
pub fn identity_account(
    metadata: ObjectMeta,
    identity_namespace: &str,
    owner: Option<OwnerReference>,
) -> ServiceAccount {
    let mut metadata = metadata;
    metadata.namespace = Some(identity_namespace.to_owned());
    metadata.owner_references = owner.map(|owner| vec![owner]);
    ServiceAccount { metadata, automount_service_account_token: Some(false), ..Default::default() }
}
