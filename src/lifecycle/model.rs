//! What the broker's operations take and return: the request bodies of provision, update and bind, their answers,
//! where an asynchronous operation stands, and who asked. They are the OSB specification's shapes because OSB is
//! what the broker speaks, and they keep their serde derives so that a face can read and write them as they are;
//! the fields some API versions lack are removed by that face, not here.
//!
//! Unknown fields are ignored (the specification requires it); mandatory fields default to empty so that their
//! absence is reported as a clear bad request by the broker rather than as a deserializer message.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `maintenance_info` in a request; only the version is considered.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RequestedMaintenance {
    /// The version the platform believes the plan has.
    #[serde(default)]
    pub version: Option<String>,
}

/// What a provision asks for (the body of OSB's PUT /v2/service_instances/:instance_id).
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

/// What an update asks for (the body of OSB's PATCH /v2/service_instances/:instance_id).
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

/// What a provision or update answers.
#[derive(Debug, Default, Serialize)]
pub struct InstanceResponse {
    /// Where the tenant's dashboard is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dashboard_url: Option<String>,
    /// Handed back on `last_operation` while the work is in progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
}

/// An instance as a fetch shows it (the body of OSB's GET /v2/service_instances/:instance_id).
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

/// Where an asynchronous operation stands (the body of OSB's `last_operation`).
#[derive(Debug, Clone, Serialize)]
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

/// What a bind asks for (the body of OSB's PUT /v2/service_instances/:instance_id/service_bindings/:binding_id).
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

/// A binding's credentials, as a bind answers them and a fetch shows them.
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

/// Who, on the platform, asked for an operation: recorded on what it creates and logged for audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginatingIdentity {
    /// `cloudfoundry`, `kubernetes`, or another platform's name.
    pub platform: String,
    /// The user: `user_id` on Cloud Foundry, `username` on Kubernetes.
    pub user: Option<String>,
}

impl OriginatingIdentity {
    /// `<platform> <user>`, for the audit annotation.
    pub fn describe(&self) -> String {
        format!("{} {}", self.platform, self.user.as_deref().unwrap_or("(unknown user)"))
    }
}
