//! Validation of `parameters` against the plan's JSON Schemas, compiled once at start-up. A refusal names the field
//! and what is wrong with it, so the developer at `cf create-service -c` knows what to fix.

use std::collections::HashMap;
use std::sync::Arc;

use jsonschema::Validator;
use serde_json::{Map, Value};

use super::{Error, Result};
use crate::catalog::Catalog;

/// Which of a plan's schemas applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaKind {
    /// Provision.
    Create,
    /// Update.
    Update,
    /// Bind.
    Bind,
}

/// The compiled schemas of every plan. Plans that share a schema (through the catalog's YAML anchors) share its
/// compiled validator: its pattern automata are the larger part of the broker's memory at rest.
pub struct ParameterSchemas {
    validators: HashMap<(String, SchemaKind), Arc<Validator>>,
}

impl ParameterSchemas {
    /// Compiles every schema of the catalog (which has been checked, so each compiles).
    pub fn compile(catalog: &Catalog) -> Result<ParameterSchemas, String> {
        let mut validators = HashMap::new();
        let mut compiled: Vec<(&Value, Arc<Validator>)> = Vec::new();
        for plan in catalog.services.iter().flat_map(|service| &service.plans) {
            let schemas = [
                (SchemaKind::Create, plan.create_schema()),
                (SchemaKind::Update, plan.update_schema()),
                (SchemaKind::Bind, plan.binding_schema()),
            ];
            for (kind, schema) in schemas {
                let Some(schema) = schema else { continue };
                let validator = match compiled.iter().find(|(seen, _)| *seen == schema) {
                    Some((_, validator)) => Arc::clone(validator),
                    None => {
                        let validator =
                            jsonschema::draft4::new(schema).map_err(|e| format!("plan {}: {e}", plan.name))?;
                        let validator = Arc::new(validator);
                        compiled.push((schema, Arc::clone(&validator)));
                        validator
                    }
                };
                validators.insert((plan.id.clone(), kind), validator);
            }
        }
        Ok(ParameterSchemas { validators })
    }

    /// Checks `parameters` against the plan's schema of this kind. A plan without such a schema takes no
    /// parameters: any given are refused rather than silently ignored.
    pub fn validate(&self, plan_id: &str, kind: SchemaKind, parameters: &Map<String, Value>) -> Result<()> {
        let Some(validator) = self.validators.get(&(plan_id.to_owned(), kind)) else {
            return match parameters.keys().next() {
                None => Ok(()),
                Some(key) => Err(Error::BadRequest(format!("parameters.{key}: this plan takes no parameters"))),
            };
        };
        let instance = Value::Object(parameters.clone());
        let problems: Vec<String> = validator
            .iter_errors(&instance)
            .take(5)
            .map(|error| {
                let pointer = error.instance_path().to_string();
                let field: String = pointer.split('/').filter(|s| !s.is_empty()).map(|s| format!(".{s}")).collect();
                format!("parameters{field}: {error}")
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::BadRequest(format!("invalid parameters: {}", problems.join("; "))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_id(service: &str, plan: &str) -> String {
        let catalog = Catalog::built_in();
        let service = catalog.services.iter().find(|s| s.name == service).expect("service");
        service.plans.iter().find(|p| p.name == plan).map(|p| p.id.clone()).expect("plan")
    }

    fn small_plan() -> String {
        plan_id("caas", "small")
    }

    fn check_plan(plan_id: &str, kind: SchemaKind, parameters: Value) -> Result<(), String> {
        let schemas = ParameterSchemas::compile(&Catalog::built_in()).expect("compile");
        let Value::Object(map) = parameters else { panic!("object") };
        schemas.validate(plan_id, kind, &map).map_err(|e| e.to_string())
    }

    fn check(kind: SchemaKind, parameters: Value) -> Result<(), String> {
        check_plan(&small_plan(), kind, parameters)
    }

    #[test]
    fn plans_sharing_a_schema_share_its_validator() {
        let schemas = ParameterSchemas::compile(&Catalog::built_in()).expect("compile");
        let validator = |service, plan, kind| Arc::clone(&schemas.validators[&(plan_id(service, plan), kind)]);
        let small = validator("container-app", "small", SchemaKind::Create);
        assert!(Arc::ptr_eq(&small, &validator("container-app", "large", SchemaKind::Create)));
        assert!(!Arc::ptr_eq(&small, &validator("container-app", "small", SchemaKind::Update)));
        assert!(!Arc::ptr_eq(&small, &validator("streaming-session", "cpu-720p", SchemaKind::Create)));
    }

    #[test]
    fn names_are_kubernetes_names_of_their_kind() {
        let app = plan_id("container-app", "small");
        let create = |extra: Value| {
            let mut parameters = serde_json::json!({"image": "nginx:1.27", "port": 80});
            parameters.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
            check_plan(&app, SchemaKind::Create, parameters)
        };
        let subdomain = format!("{}.{}", "a".repeat(126), "b".repeat(126));
        assert_eq!(create(serde_json::json!({ "ingress_class": subdomain })), Ok(()));
        assert_eq!(create(serde_json::json!({ "ingress_class": "a" })), Ok(()));
        for refused in [format!("{subdomain}c"), "Nginx".into(), "-nginx".into(), "nginx.".into(), String::new()] {
            let error = create(serde_json::json!({ "ingress_class": refused })).expect_err(&refused);
            assert!(error.contains("parameters.ingress_class"), "{error}");
        }
        let label = "n".repeat(63);
        let allow = |namespace: &str| {
            check(SchemaKind::Create, serde_json::json!({ "allow_ingress_from_namespaces": [namespace] }))
        };
        assert_eq!(allow(&label), Ok(()));
        for refused in [format!("{label}n"), "a.b".into(), "ingress-".into()] {
            let error = allow(&refused).expect_err(&refused);
            assert!(error.contains("parameters.allow_ingress_from_namespaces.0"), "{error}");
        }
    }

    #[test]
    fn valid_parameters_pass() {
        assert_eq!(check(SchemaKind::Create, serde_json::json!({"pod_security": "restricted"})), Ok(()));
        assert_eq!(check(SchemaKind::Bind, serde_json::json!({"role": "view", "expiration_seconds": 3600})), Ok(()));
    }

    #[test]
    fn refusals_name_the_field() {
        let error = check(SchemaKind::Create, serde_json::json!({"pod_security": "privileged"})).expect_err("refused");
        assert!(error.starts_with("invalid parameters: parameters.pod_security: "), "{error}");
        assert!(error.contains("privileged"), "{error}");
        let error = check(SchemaKind::Create, serde_json::json!({"color": "red"})).expect_err("refused");
        assert!(error.contains("color"), "{error}");
        let error = check(SchemaKind::Bind, serde_json::json!({"expiration_seconds": "soon"})).expect_err("refused");
        assert!(error.contains("parameters.expiration_seconds"), "{error}");
    }
}
