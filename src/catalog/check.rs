//! Every rule a catalog must meet before the broker serves it: the OSB rules (unique ids and names, at least one
//! plan, schemas with `$schema`, at most 64 kB, no external `$ref`, semantic versions) and the broker's own (each
//! quota and limit quantity parses, every plan of a virtual-cluster offering says what to build).

use std::collections::HashSet;
use std::fmt;

use serde_json::Value;

use super::{Catalog, Plan, Service, ServiceKind, quantity};

/// Largest schema the OSB specification allows.
const MAX_SCHEMA_BYTES: usize = 64 * 1024;
/// The JSON Schema draft platforms are required to support.
const DRAFT_04: &str = "http://json-schema.org/draft-04/schema#";

/// One problem found in a catalog, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogError {
    /// Where: service, plan and field.
    pub location: String,
    /// What is wrong.
    pub message: String,
}

impl CatalogError {
    pub(super) fn new(location: &str, message: impl Into<String>) -> CatalogError {
        CatalogError { location: location.to_owned(), message: message.into() }
    }
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Checks a parsed catalog; returns every problem found, not just the first.
pub fn check(catalog: &Catalog) -> Result<(), Vec<CatalogError>> {
    let mut errors = Vec::new();
    let mut ids = HashSet::new();
    let mut service_names = HashSet::new();
    if catalog.services.is_empty() {
        errors.push(CatalogError::new("services", "the catalog offers no service"));
    }
    for service in &catalog.services {
        let at = format!("service {}", service.name);
        non_empty(&mut errors, &at, "id", &service.id);
        non_empty(&mut errors, &at, "name", &service.name);
        non_empty(&mut errors, &at, "description", &service.description);
        if !ids.insert(service.id.clone()) {
            errors.push(CatalogError::new(&at, format!("id {} is used twice", service.id)));
        }
        if !service_names.insert(service.name.clone()) {
            errors.push(CatalogError::new(&at, "the name is used by another service"));
        }
        if service.name.chars().any(|c| !(c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')) {
            errors.push(CatalogError::new(&at, "name: use only letters, digits, '-', '.' and '_' (CLI-friendly)"));
        }
        if let Some(client) = &service.dashboard_client {
            check_dashboard_client(&mut errors, &at, client);
        }
        if service.plans.is_empty() {
            errors.push(CatalogError::new(&at, "plans: a service needs at least one plan"));
        }
        let mut plan_names = HashSet::new();
        for plan in &service.plans {
            let at = format!("service {}, plan {}", service.name, plan.name);
            non_empty(&mut errors, &at, "id", &plan.id);
            non_empty(&mut errors, &at, "name", &plan.name);
            non_empty(&mut errors, &at, "description", &plan.description);
            if !ids.insert(plan.id.clone()) {
                errors.push(CatalogError::new(&at, format!("id {} is used twice", plan.id)));
            }
            if !plan_names.insert(plan.name.clone()) {
                errors.push(CatalogError::new(&at, "the name is used by another plan of the service"));
            }
            check_plan(&mut errors, &at, service, plan);
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// A `dashboard_client` names its id, maybe an absolute redirect URI, and never its secret: the catalog file may be
/// public (the built-in one is), so the secret comes from the configuration.
fn check_dashboard_client(errors: &mut Vec<CatalogError>, at: &str, client: &crate::catalog::DashboardClient) {
    non_empty(errors, at, "dashboard_client.id", &client.id);
    if client.secret.is_some() {
        errors.push(CatalogError::new(
            at,
            "dashboard_client.secret: do not write it in the catalog; set dashboard.cf_sso.client_secret",
        ));
    }
    if let Some(uri) = &client.redirect_uri
        && !(uri.starts_with("https://") || uri.starts_with("http://"))
    {
        errors.push(CatalogError::new(at, "dashboard_client.redirect_uri must be an absolute http(s) URL"));
    }
}

fn non_empty(errors: &mut Vec<CatalogError>, at: &str, field: &str, value: &str) {
    if value.trim().is_empty() {
        errors.push(CatalogError::new(at, format!("{field} must not be empty")));
    }
}

fn check_plan(errors: &mut Vec<CatalogError>, at: &str, service: &Service, plan: &Plan) {
    if let Some(info) = &plan.maintenance_info
        && semver::Version::parse(&info.version).is_err()
    {
        errors.push(CatalogError::new(
            at,
            format!("maintenance_info.version {:?} is not a semantic version (like 1.2.3)", info.version),
        ));
    }
    if plan.binding_rotatable && !service.bindable(plan) {
        errors.push(CatalogError::new(at, "binding_rotatable needs a bindable plan"));
    }
    let schemas = [
        ("schemas.service_instance.create.parameters", plan.create_schema()),
        ("schemas.service_instance.update.parameters", plan.update_schema()),
        ("schemas.service_binding.create.parameters", plan.binding_schema()),
    ];
    for (field, schema) in schemas {
        if let Some(schema) = schema
            && let Err(message) = check_schema(schema)
        {
            errors.push(CatalogError::new(at, format!("{field}: {message}")));
        }
    }
    match service.broker.kind {
        ServiceKind::VirtualCluster => check_virtual_cluster(errors, at, plan),
        ServiceKind::StreamingSession | ServiceKind::ContainerApp => {
            check_workload(errors, at, service.broker.kind, plan)
        }
    }
}

/// Why platforms cannot use a schema.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SchemaProblem {
    /// No `$schema` says which draft it is written in.
    #[error("the schema has no $schema")]
    NoDraft,
    /// A draft other than the one platforms must support.
    #[error("$schema is {0:?}; platforms are only required to support {DRAFT_04}")]
    OtherDraft(String),
    /// Larger than the OSB specification allows (its size in bytes).
    #[error("the schema is {0} bytes; at most {MAX_SCHEMA_BYTES} are allowed")]
    TooLarge(usize),
    /// A `$ref` outside the schema.
    #[error("external $ref {0:?}: schemas must be self-contained")]
    ExternalRef(String),
    /// Not a valid draft-04 schema itself.
    #[error("not a valid draft-04 schema: {0}")]
    Invalid(#[source] jsonschema::ValidationError<'static>),
}

/// A schema platforms can use: draft-04 declared, within the size limit, self-contained and itself valid.
pub(crate) fn check_schema(schema: &Value) -> Result<(), SchemaProblem> {
    match schema.get("$schema").and_then(Value::as_str) {
        None => return Err(SchemaProblem::NoDraft),
        Some(DRAFT_04) => {}
        Some(other) => return Err(SchemaProblem::OtherDraft(other.to_owned())),
    }
    let size = schema.to_string().len();
    if size > MAX_SCHEMA_BYTES {
        return Err(SchemaProblem::TooLarge(size));
    }
    if let Some(reference) = external_ref(schema) {
        return Err(SchemaProblem::ExternalRef(reference.to_owned()));
    }
    jsonschema::draft4::new(schema).map(|_| ()).map_err(SchemaProblem::Invalid)
}

fn external_ref(value: &Value) -> Option<&str> {
    match value {
        Value::Object(map) => map.iter().find_map(|(key, value)| match (key.as_str(), value) {
            ("$ref", Value::String(reference)) if !reference.starts_with('#') => Some(reference.as_str()),
            _ => external_ref(value),
        }),
        Value::Array(items) => items.iter().find_map(external_ref),
        _ => None,
    }
}

fn check_virtual_cluster(errors: &mut Vec<CatalogError>, at: &str, plan: &Plan) {
    let settings = &plan.broker;
    if settings.quota.is_empty() {
        errors.push(CatalogError::new(at, "broker.quota: a virtual-cluster plan needs a ResourceQuota"));
    }
    for (resource, value) in &settings.quota {
        check_quantity(errors, at, &format!("broker.quota[{resource:?}]"), value);
    }
    match &settings.limits {
        None => errors.push(CatalogError::new(at, "broker.limits: a virtual-cluster plan needs LimitRange defaults")),
        Some(limits) => {
            let groups =
                [("default", &limits.default), ("default_request", &limits.default_request), ("max", &limits.max)];
            for (group, values) in groups {
                for (resource, value) in values {
                    check_quantity(errors, at, &format!("broker.limits.{group}[{resource:?}]"), value);
                }
            }
            for (resource, request) in &limits.default_request {
                let limit = limits.default.get(resource).and_then(|l| quantity::parse(l));
                if let (Some(request), Some(limit)) = (quantity::parse(request), limit)
                    && request > limit
                {
                    errors.push(CatalogError::new(
                        at,
                        format!("broker.limits.default_request[{resource:?}] is above broker.limits.default"),
                    ));
                }
            }
        }
    }
}

fn check_workload(errors: &mut Vec<CatalogError>, at: &str, kind: ServiceKind, plan: &Plan) {
    let Some(size) = &plan.broker.workload else {
        errors.push(CatalogError::new(at, "broker.workload: a workload plan needs cpu and memory"));
        return;
    };
    check_quantity(errors, at, "broker.workload.cpu", &size.cpu);
    check_quantity(errors, at, "broker.workload.memory", &size.memory);
    if kind == ServiceKind::StreamingSession {
        match &size.storage {
            Some(storage) => check_quantity(errors, at, "broker.workload.storage", storage),
            None => errors.push(CatalogError::new(at, "broker.workload.storage: a streaming plan needs a volume size")),
        }
        let resolution = size.resolution.as_deref().unwrap_or_default();
        let valid =
            resolution.split_once('x').is_some_and(|(w, h)| w.parse::<u32>().is_ok() && h.parse::<u32>().is_ok());
        if !valid {
            errors
                .push(CatalogError::new(at, format!("broker.workload.resolution: {resolution:?} is not WIDTHxHEIGHT")));
        }
        if let Some(minutes) = size.idle_stop_minutes.filter(|m| *m > super::MAX_IDLE_STOP_MINUTES) {
            let limit = super::MAX_IDLE_STOP_MINUTES;
            errors.push(CatalogError::new(at, format!("broker.workload.idle_stop_minutes: {minutes} is over {limit}")));
        }
    }
}

fn check_quantity(errors: &mut Vec<CatalogError>, at: &str, field: &str, value: &str) {
    match quantity::parse(value) {
        Some(parsed) if parsed.0 >= 0 => {}
        Some(_) => errors.push(CatalogError::new(at, format!("{field}: {value:?} must not be negative"))),
        None => errors.push(CatalogError::new(at, format!("{field}: {value:?} is not a Kubernetes quantity"))),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{BUILT_IN, Catalog};

    fn errors_of(yaml: &str) -> Vec<String> {
        match Catalog::from_yaml(yaml) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn a_dashboard_client_names_no_secret_and_an_absolute_redirect() {
        let with = |client: &str| BUILT_IN.replacen("      id: caas-broker-dashboard\n", client, 1);
        let secret = errors_of(&with("      id: caas-broker-dashboard\n      secret: s3cret\n"));
        assert!(secret.iter().any(|e| e.contains("dashboard_client.secret: do not write it")), "{secret:#?}");
        let relative = errors_of(&with("      id: caas-broker-dashboard\n      redirect_uri: /auth/callback\n"));
        assert!(relative.iter().any(|e| e.contains("dashboard_client.redirect_uri")), "{relative:#?}");
        let empty = errors_of(&with("      id: \"\"\n"));
        assert!(empty.iter().any(|e| e.contains("dashboard_client.id must not be empty")), "{empty:#?}");
    }

    #[test]
    fn the_dashboard_client_is_served_only_with_single_sign_on_and_gets_its_secret_and_redirect() {
        let catalog = Catalog::from_yaml(BUILT_IN).expect("built-in");
        assert_eq!(catalog.dashboard_client().map(|c| c.id.as_str()), Some("caas-broker-dashboard"));
        let off = catalog.clone().for_dashboard(None, Some("https://dash.example"));
        assert!(off.dashboard_client().is_none(), "without single sign-on no client is served");
        let on = catalog.for_dashboard(Some("s3cret"), Some("https://dash.example/"));
        let client = on.dashboard_client().expect("served");
        assert_eq!(client.secret.as_deref(), Some("s3cret"));
        assert_eq!(client.redirect_uri.as_deref(), Some("https://dash.example/auth/callback"));
        let served = serde_json::to_value(&on).expect("JSON");
        assert_eq!(served["services"][0]["dashboard_client"]["id"], "caas-broker-dashboard");
    }

    #[test]
    fn each_error_names_the_plan_and_field() {
        let broken = BUILT_IN
            .replacen("requests.cpu: \"2\"", "requests.cpu: \"2 cores\"", 1)
            .replacen("version: 2.0.0", "version: one", 1)
            .replacen("name: medium", "name: small", 1)
            .replacen("id: 722b322b-49e9-40bf-8391-b0022aae6b51", "id: df58fe54-eee6-45f5-98f9-df0e3c12640f", 1);
        let errors = errors_of(&broken);
        let expect = [
            "service caas, plan small: broker.quota[\"requests.cpu\"]: \"2 cores\" is not a Kubernetes quantity",
            "service caas, plan micro: maintenance_info.version \"one\" is not a semantic version (like 1.2.3)",
            "service caas, plan small: the name is used by another plan of the service",
            "service caas, plan large: id df58fe54-eee6-45f5-98f9-df0e3c12640f is used twice",
        ];
        for expected in expect {
            assert!(errors.iter().any(|e| e == expected), "missing {expected:?} in {errors:#?}");
        }
    }

    #[test]
    fn schemas_need_draft_04_and_no_external_refs() {
        let no_schema = BUILT_IN.replacen(
            "$schema: \"http://json-schema.org/draft-04/schema#\"\n    title: Virtual",
            "title: Virtual",
            1,
        );
        assert!(
            errors_of(&no_schema)
                .iter()
                .any(|e| e.ends_with("schemas.service_instance.create.parameters: the schema has no $schema"))
        );
        let external = BUILT_IN.replacen(
            "type: string\n        enum: [baseline, restricted]",
            "$ref: \"https://example.com/s.json\"",
            1,
        );
        assert!(errors_of(&external).iter().any(|e| e.contains("external $ref \"https://example.com/s.json\"")));
    }

    #[test]
    fn oversized_schema_is_refused() {
        let big = format!("description: \"{}\"\n    title: Virtual", "x".repeat(70_000));
        let oversized = BUILT_IN.replacen("title: Virtual", &big, 1);
        assert!(errors_of(&oversized).iter().any(|e| e.contains("at most 65536 are allowed")));
    }
}
