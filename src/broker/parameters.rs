//! Validation of `parameters` against the plan's JSON Schemas, compiled once at start-up. A refusal names the field
//! and what is wrong with it, so the developer at `cf create-service -c` knows what to fix.

use std::collections::HashMap;

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

/// The compiled schemas of every plan.
pub struct ParameterSchemas {
    validators: HashMap<(String, SchemaKind), Validator>,
}

impl ParameterSchemas {
    /// Compiles every schema of the catalog (which has been checked, so each compiles).
    pub fn compile(catalog: &Catalog) -> Result<ParameterSchemas, String> {
        let mut validators = HashMap::new();
        for plan in catalog.services.iter().flat_map(|service| &service.plans) {
            let schemas = [
                (SchemaKind::Create, plan.create_schema()),
                (SchemaKind::Update, plan.update_schema()),
                (SchemaKind::Bind, plan.binding_schema()),
            ];
            for (kind, schema) in schemas {
                if let Some(schema) = schema {
                    let validator = jsonschema::draft4::new(schema).map_err(|e| format!("plan {}: {e}", plan.name))?;
                    validators.insert((plan.id.clone(), kind), validator);
                }
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

    fn small_plan() -> String {
        let catalog = Catalog::built_in();
        catalog.services[0].plans.iter().find(|p| p.name == "small").map(|p| p.id.clone()).unwrap_or_default()
    }

    fn check(kind: SchemaKind, parameters: Value) -> Result<(), String> {
        let schemas = ParameterSchemas::compile(&Catalog::built_in()).expect("compile");
        let Value::Object(map) = parameters else { panic!("object") };
        schemas.validate(&small_plan(), kind, &map).map_err(|e| e.to_string())
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
