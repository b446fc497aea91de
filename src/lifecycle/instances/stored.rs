//! A service instance as the cluster records it. The namespace *is* the instance: its labels and annotations hold the
//! OSB attributes, so any broker replica, and a restarted one, reads the same truth.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Map, Value};

use crate::k8s::names::*;

/// The attributes that make two provision requests for one id "identical" (OSB: 200 vs 409).
#[derive(Debug, Clone, PartialEq)]
pub struct Attributes {
    /// Offering id.
    pub service_id: String,
    /// Plan id.
    pub plan_id: String,
    /// Organization guid.
    pub organization_guid: String,
    /// Space guid.
    pub space_guid: String,
    /// Validated parameters.
    pub parameters: Map<String, Value>,
}

impl Attributes {
    /// Names the attributes in which `other` differs, for a 409's description.
    pub fn differences(&self, other: &Attributes) -> Vec<&'static str> {
        let mut differences = Vec::new();
        if self.service_id != other.service_id {
            differences.push("service_id");
        }
        if self.plan_id != other.plan_id {
            differences.push("plan_id");
        }
        if self.organization_guid != other.organization_guid {
            differences.push("organization_guid");
        }
        if self.space_guid != other.space_guid {
            differences.push("space_guid");
        }
        if self.parameters != other.parameters {
            differences.push("parameters");
        }
        differences
    }
}

/// What the broker reads back from an instance's namespace.
#[derive(Debug, Clone)]
pub struct StoredInstance {
    /// The exact instance id.
    pub instance_id: String,
    /// OSB attributes.
    pub attributes: Attributes,
    /// Platform context names.
    pub context: Map<String, Value>,
    /// The maintenance version its objects were built for.
    pub maintenance_version: Option<String>,
    /// The owner ServiceAccount.
    pub owner: String,
    /// Where the owner ServiceAccount lives; `None` for an instance of the layout before 2.0 (in the tenant namespace).
    pub identity_namespace: Option<String>,
    /// Who created it.
    pub created_by: Option<String>,
    /// Every object has been applied.
    pub provisioned: bool,
    /// The namespace is being deleted.
    pub terminating: bool,
    /// Seconds since the namespace was created.
    pub age_seconds: i64,
}

impl StoredInstance {
    /// Reads the instance from its namespace; `None` when the namespace is not an instance made by this broker.
    pub fn from_namespace(namespace: &Namespace) -> Option<StoredInstance> {
        let mut stored = StoredInstance::from_meta(&namespace.metadata)?;
        stored.terminating |= namespace.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
        Some(stored)
    }

    /// Reads the instance from the annotations of the object that records it (a namespace, or a workload's record).
    pub fn from_meta(metadata: &ObjectMeta) -> Option<StoredInstance> {
        let annotations = metadata.annotations.as_ref()?;
        let text = |key: &str| annotations.get(key).cloned();
        let json_map = |key: &str| -> Map<String, Value> {
            text(key).and_then(|json| serde_json::from_str(&json).ok()).unwrap_or_default()
        };
        let age_seconds = metadata
            .creation_timestamp
            .as_ref()
            .map(|created| jiff::Timestamp::now().as_second() - created.0.as_second())
            .unwrap_or_default();
        Some(StoredInstance {
            instance_id: text(ANNOTATION_INSTANCE_ID)?,
            attributes: Attributes {
                service_id: text(ANNOTATION_SERVICE_ID)?,
                plan_id: text(ANNOTATION_PLAN_ID)?,
                organization_guid: text(ANNOTATION_ORGANIZATION_GUID).unwrap_or_default(),
                space_guid: text(ANNOTATION_SPACE_GUID).unwrap_or_default(),
                parameters: json_map(ANNOTATION_PARAMETERS),
            },
            context: json_map(ANNOTATION_CONTEXT),
            maintenance_version: text(ANNOTATION_MAINTENANCE_VERSION),
            owner: text(ANNOTATION_OWNER).unwrap_or_else(|| "owner".to_owned()),
            identity_namespace: text(ANNOTATION_IDENTITY_NAMESPACE),
            created_by: text(ANNOTATION_CREATED_BY),
            provisioned: annotations.contains_key(ANNOTATION_PROVISIONED),
            terminating: metadata.deletion_timestamp.is_some(),
            age_seconds,
        })
    }

    /// The namespace annotations that record this instance (`provisioned` adds the completion marker).
    pub fn annotations(&self, provisioned: bool) -> BTreeMap<String, String> {
        let mut annotations = BTreeMap::from([
            (ANNOTATION_INSTANCE_ID.to_owned(), self.instance_id.clone()),
            (ANNOTATION_SERVICE_ID.to_owned(), self.attributes.service_id.clone()),
            (ANNOTATION_PLAN_ID.to_owned(), self.attributes.plan_id.clone()),
            (ANNOTATION_ORGANIZATION_GUID.to_owned(), self.attributes.organization_guid.clone()),
            (ANNOTATION_SPACE_GUID.to_owned(), self.attributes.space_guid.clone()),
            (ANNOTATION_PARAMETERS.to_owned(), Value::Object(self.attributes.parameters.clone()).to_string()),
            (ANNOTATION_CONTEXT.to_owned(), Value::Object(self.context.clone()).to_string()),
            (ANNOTATION_OWNER.to_owned(), self.owner.clone()),
        ]);
        if let Some(namespace) = &self.identity_namespace {
            annotations.insert(ANNOTATION_IDENTITY_NAMESPACE.to_owned(), namespace.clone());
        }
        if let Some(version) = &self.maintenance_version {
            annotations.insert(ANNOTATION_MAINTENANCE_VERSION.to_owned(), version.clone());
        }
        if let Some(created_by) = &self.created_by {
            annotations.insert(ANNOTATION_CREATED_BY.to_owned(), created_by.clone());
        }
        if provisioned {
            annotations.insert(ANNOTATION_PROVISIONED.to_owned(), jiff::Timestamp::now().to_string());
        }
        annotations
    }
}

/// The context keys worth keeping (names and guids; annotations and unknown keys are dropped).
pub fn context_names(context: Option<&Map<String, Value>>) -> Map<String, Value> {
    const KEPT: [&str; 8] = [
        "platform",
        "organization_guid",
        "organization_name",
        "space_guid",
        "space_name",
        "instance_name",
        "namespace",
        "clusterid",
    ];
    context
        .map(|context| {
            context
                .iter()
                .filter(|(key, value)| KEPT.contains(&key.as_str()) && value.is_string())
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect()
        })
        .unwrap_or_default()
}
