//! The OSB request and response bodies and query strings, as the specification defines them. Unknown fields are
//! ignored (the specification requires it); mandatory fields default to empty so that their absence is reported as a
//! clear 400 by the broker rather than as a deserializer message.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// `accepts_incomplete` and the other query parameters of PUT and PATCH.
#[derive(Debug, Default, Deserialize)]
pub struct AsyncQuery {
    /// Whether the platform polls `last_operation` for an asynchronous answer.
    #[serde(default, deserialize_with = "boolean")]
    pub accepts_incomplete: bool,
}

/// Query of DELETE instance and DELETE binding.
#[derive(Debug, Default, Deserialize)]
pub struct DeleteQuery {
    /// Offering id, mandatory.
    #[serde(default)]
    pub service_id: String,
    /// Plan id, mandatory.
    #[serde(default)]
    pub plan_id: String,
    /// Whether the platform polls `last_operation` for an asynchronous answer.
    #[serde(default, deserialize_with = "boolean")]
    pub accepts_incomplete: bool,
}

/// Query of the `last_operation` endpoints; all are hints.
#[derive(Debug, Default, Deserialize)]
pub struct LastOperationQuery {
    /// Offering id.
    #[serde(default)]
    pub service_id: Option<String>,
    /// Plan id.
    #[serde(default)]
    pub plan_id: Option<String>,
    /// The `operation` the broker returned with its 202.
    #[serde(default)]
    pub operation: Option<String>,
}

/// Query of GET instance and GET binding; hints.
#[derive(Debug, Default, Deserialize)]
pub struct FetchQuery {
    /// Offering id.
    #[serde(default)]
    pub service_id: Option<String>,
    /// Plan id.
    #[serde(default)]
    pub plan_id: Option<String>,
}

fn boolean<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    let text = String::deserialize(deserializer)?;
    match text.as_str() {
        "true" | "True" | "TRUE" => Ok(true),
        "" | "false" | "False" | "FALSE" => Ok(false),
        other => Err(serde::de::Error::custom(format!("expected true or false, got {other:?}"))),
    }
}

/// `maintenance_info` in a request; only the version is considered.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RequestedMaintenance {
    /// The version the platform believes the plan has.
    #[serde(default)]
    pub version: Option<String>,
}

/// PUT /v2/service_instances/:instance_id body.
#[derive(Debug, Default, Deserialize)]
pub struct ProvisionRequest {
    /// Offering id.
    #[serde(default)]
    pub service_id: String,
    /// Plan id.
    #[serde(default)]
    pub plan_id: String,
    /// Platform context (CF: organization and space guids and names, instance name).
    #[serde(default)]
    pub context: Option<Map<String, Value>>,
    /// Organization guid (deprecated but required).
    #[serde(default)]
    pub organization_guid: String,
    /// Space guid (deprecated but required).
    #[serde(default)]
    pub space_guid: String,
    /// Configuration parameters, validated against the plan's schema.
    #[serde(default)]
    pub parameters: Option<Map<String, Value>>,
    /// The maintenance version the platform expects.
    #[serde(default)]
    pub maintenance_info: Option<RequestedMaintenance>,
}

/// PATCH /v2/service_instances/:instance_id body.
#[derive(Debug, Default, Deserialize)]
pub struct UpdateRequest {
    /// Offering id.
    #[serde(default)]
    pub service_id: String,
    /// The new plan; absent means no change.
    #[serde(default)]
    pub plan_id: Option<String>,
    /// Platform context, possibly with new names.
    #[serde(default)]
    pub context: Option<Map<String, Value>>,
    /// New parameters, merged over the current ones; absent means no change.
    #[serde(default)]
    pub parameters: Option<Map<String, Value>>,
    /// What the platform believes the instance was.
    #[serde(default)]
    pub previous_values: Option<Value>,
    /// The maintenance version to move to.
    #[serde(default)]
    pub maintenance_info: Option<RequestedMaintenance>,
}

/// Body of a provision or update answer.
#[derive(Debug, Default, Serialize)]
pub struct InstanceResponse {
    /// Where the tenant's dashboard is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dashboard_url: Option<String>,
    /// Handed back on `last_operation` while the work is in progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
}

/// Body of GET instance.
#[derive(Debug, Serialize)]
pub struct FetchedInstance {
    /// Offering id.
    pub service_id: String,
    /// Plan id.
    pub plan_id: String,
    /// Where the tenant's dashboard is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dashboard_url: Option<String>,
    /// The current parameters.
    pub parameters: Map<String, Value>,
    /// The version the objects were built for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maintenance_info: Option<MaintenanceVersion>,
    /// Labels and attributes shown to users.
    pub metadata: InstanceMetadata,
}

/// `maintenance_info` in an answer.
#[derive(Debug, Serialize)]
pub struct MaintenanceVersion {
    /// Semantic version.
    pub version: String,
}

/// OSB 2.16 instance metadata.
#[derive(Debug, Default, Serialize)]
pub struct InstanceMetadata {
    /// Shown to users.
    pub labels: Map<String, Value>,
    /// May change platform behaviour (none here).
    pub attributes: Map<String, Value>,
}

/// State of an asynchronous operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum OperationState {
    /// Still working.
    #[serde(rename = "in progress")]
    InProgress,
    /// Done.
    #[serde(rename = "succeeded")]
    Succeeded,
    /// Given up; the description says why.
    #[serde(rename = "failed")]
    Failed,
}

/// Body of `last_operation`.
#[derive(Debug, Serialize)]
pub struct LastOperation {
    /// Where the operation stands.
    pub state: OperationState,
    /// What is happening or what went wrong, for the user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl LastOperation {
    /// An operation in this state with this description.
    pub fn new(state: OperationState, description: impl Into<String>) -> LastOperation {
        LastOperation { state, description: Some(description.into()) }
    }
}

/// Body of DELETE and of answers that carry nothing.
#[derive(Debug, Default, Serialize)]
pub struct Empty {
    /// Handed back on `last_operation` while the deletion is in progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
}

/// `bind_resource` of a bind request.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BindResource {
    /// The application being bound.
    #[serde(default)]
    pub app_guid: Option<String>,
    /// The route, for route services.
    #[serde(default)]
    pub route: Option<String>,
}

/// PUT /v2/service_instances/:instance_id/service_bindings/:binding_id body.
#[derive(Debug, Default, Deserialize)]
pub struct BindRequest {
    /// Offering id.
    #[serde(default)]
    pub service_id: String,
    /// Plan id.
    #[serde(default)]
    pub plan_id: String,
    /// Deprecated app guid.
    #[serde(default)]
    pub app_guid: Option<String>,
    /// What is being bound.
    #[serde(default)]
    pub bind_resource: Option<BindResource>,
    /// Platform context.
    #[serde(default)]
    pub context: Option<Map<String, Value>>,
    /// Bind parameters, validated against the plan's schema.
    #[serde(default)]
    pub parameters: Option<Map<String, Value>>,
    /// The binding whose credentials this one replaces (OSB 2.17 rotation).
    #[serde(default)]
    pub predecessor_binding_id: Option<String>,
}

impl BindRequest {
    /// The application guid, from `bind_resource` or the deprecated field.
    pub fn app_guid(&self) -> Option<&str> {
        self.bind_resource
            .as_ref()
            .and_then(|resource| resource.app_guid.as_deref())
            .or(self.app_guid.as_deref())
            .filter(|guid| !guid.is_empty())
    }
}

/// A network endpoint of a binding (for firewalls).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Host name or address.
    pub host: String,
    /// Ports, e.g. `["443"]`.
    pub ports: Vec<String>,
    /// `tcp`, `udp` or `all`.
    pub protocol: String,
}

/// OSB 2.17 binding metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BindingMetadata {
    /// When the credentials stop working (ISO 8601).
    pub expires_at: String,
    /// When to rotate (ISO 8601).
    pub renew_before: String,
}

/// Body of bind (200/201) and of GET binding.
#[derive(Debug, Clone, Serialize)]
pub struct BindingResponse {
    /// What the application uses to reach its virtual cluster.
    pub credentials: Value,
    /// Expiry, for credentials that expire.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BindingMetadata>,
    /// Where the credentials lead.
    pub endpoints: Vec<Endpoint>,
    /// The binding's parameters (GET binding only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Map<String, Value>>,
}
