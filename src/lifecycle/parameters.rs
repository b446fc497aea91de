//! Validation of `parameters` against the plan's JSON Schemas, compiled once at start-up, and the types valid
//! workload parameters parse into, with the defaults the schemas state. A refusal names the field and what is wrong
//! with it, so the developer at `cf create-service -c` knows what to fix.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use jsonschema::Validator;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::{Error, Result};
use crate::catalog::{Catalog, PodSecurityLevel};
use crate::k8s::workload::StreamProtocol;

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

/// A plan's schema that does not compile (a catalog that passed its checks has none).
#[derive(Debug, thiserror::Error)]
#[error("plan {plan}: {source}")]
pub struct SchemaError {
    /// The plan's name.
    pub plan: String,
    /// What the compiler said.
    #[source]
    pub source: jsonschema::ValidationError<'static>,
}

/// The compiled schemas of every plan. Plans that share a schema (through the catalog's YAML anchors) share its
/// compiled validator: its pattern automata are the larger part of the broker's memory at rest.
pub struct ParameterSchemas {
    validators: HashMap<(String, SchemaKind), Arc<Validator>>,
}

impl ParameterSchemas {
    /// Compiles every schema of the catalog (which has been checked, so each compiles).
    pub fn compile(catalog: &Catalog) -> Result<ParameterSchemas, SchemaError> {
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
                        let validator = jsonschema::draft4::new(schema)
                            .map_err(|source| SchemaError { plan: plan.name.clone(), source })?;
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

/// `parameters`, which passed their schema, as `T` (one of the types below, which mirror the schemas); 400 naming the
/// field when they do not fit it after all (a number beyond the type's range).
pub fn parse<T: DeserializeOwned>(parameters: &Map<String, Value>) -> Result<T> {
    serde_path_to_error::deserialize(Value::Object(parameters.clone())).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { String::new() } else { format!(".{path}") };
        Error::BadRequest(format!("invalid parameters: parameters{field}: {}", e.inner()))
    })
}

/// A virtual cluster's parameters (provision and update), after their schema.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ClusterParameters {
    /// The Pod Security level its namespace enforces; the plan's when absent.
    pub pod_security: Option<PodSecurityLevel>,
    /// Namespaces (an ingress controller's) whose pods may connect to this virtual cluster's pods.
    pub allow_ingress_from_namespaces: Vec<String>,
    /// The cluster it is placed on, when the provision chose one (see [`crate::lifecycle::fleet`]).
    pub cluster: Option<String>,
}

/// A binding's parameters, after their schema.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct BindParameters {
    /// The built-in role the credentials get in the namespace (`admin`, `edit`, `view`).
    pub role: String,
    /// The token's lifetime; the broker's default when absent.
    pub expiration_seconds: Option<u64>,
}

impl Default for BindParameters {
    /// What the binding schema states when a key is left out.
    fn default() -> BindParameters {
        BindParameters { role: "edit".to_owned(), expiration_seconds: None }
    }
}

/// What every workload's parameters hold (a streaming session's and a container app's alike). Keys a type does not
/// name are ignored, as the schema has refused them already; a key left out takes the default the schema states.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(default)]
pub struct WorkloadParameters {
    /// The virtual cluster to run in; the organization's only one when absent.
    pub cluster_instance_id: Option<String>,
    /// Whether the pods run, or are scaled to zero (an update's `state`).
    pub state: RunState,
    /// The restart token: any new value restarts the pods.
    pub restart: Option<String>,
    /// Host of an Ingress; none when absent.
    pub ingress_host: Option<String>,
    /// IngressClass of that Ingress; the cluster's default when absent.
    pub ingress_class: Option<String>,
}

/// A workload's `state`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// The pods run.
    #[default]
    Running,
    /// Scaled to zero; a session keeps its volume.
    Stopped,
}

/// A streaming session's parameters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(default)]
pub struct SessionParameters {
    /// What every workload takes.
    #[serde(flatten)]
    pub workload: WorkloadParameters,
    /// The Steam application SteamCMD installs; none runs one the session image holds.
    pub steam_app_id: Option<u64>,
    /// Secret in the virtual cluster with SteamCMD's `username` and `password`; anonymous login when absent.
    pub steam_credentials_secret: Option<String>,
    /// What starts the application.
    pub launch: Launch,
    /// Size of the virtual display; the plan's when absent.
    pub resolution: Option<String>,
    /// What the stream port speaks.
    pub protocol: StreamProtocol,
    /// Minutes without a viewer after which the session is stopped (0: never); the plan's when absent.
    pub idle_stop_minutes: Option<u32>,
    /// Type of the Service of the stream port.
    pub expose: String,
}

impl Default for SessionParameters {
    fn default() -> SessionParameters {
        SessionParameters {
            workload: WorkloadParameters::default(),
            steam_app_id: None,
            steam_credentials_secret: None,
            launch: Launch::default(),
            resolution: None,
            protocol: StreamProtocol::default(),
            idle_stop_minutes: None,
            expose: "ClusterIP".to_owned(),
        }
    }
}

/// The command and arguments that start a session's application, relative to its install directory.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(default)]
pub struct Launch {
    /// The command: the install's `./start.sh` unless given.
    pub command: Vec<String>,
    /// Its arguments.
    pub args: Vec<String>,
}

impl Default for Launch {
    fn default() -> Launch {
        Launch { command: vec!["./start.sh".to_owned()], args: Vec::new() }
    }
}

impl Launch {
    /// The command line: the command, the default one for an empty command too (which the schema allows), then the
    /// arguments.
    pub fn command_line(&self) -> Vec<String> {
        let command = if self.command.is_empty() { Launch::default().command } else { self.command.clone() };
        command.into_iter().chain(self.args.iter().cloned()).collect()
    }
}

/// A container app's parameters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(default)]
pub struct AppParameters {
    /// What every workload takes.
    #[serde(flatten)]
    pub workload: WorkloadParameters,
    /// The image: given at provision; an update that removes it leaves none, which the cluster refuses.
    pub image: Option<String>,
    /// The port the container listens on.
    pub port: i32,
    /// Pods, when not autoscaled.
    pub replicas: i32,
    /// Environment variables.
    pub env: BTreeMap<String, String>,
    /// Autoscaling on CPU use, if wanted.
    pub autoscale: Option<AutoscaleParameters>,
    /// Path of the Ingress rule.
    pub path: String,
}

impl Default for AppParameters {
    fn default() -> AppParameters {
        AppParameters {
            workload: WorkloadParameters::default(),
            image: None,
            port: 8080,
            replicas: 1,
            env: BTreeMap::new(),
            autoscale: None,
            path: "/".to_owned(),
        }
    }
}

/// A container app's autoscaling bounds and target.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
pub struct AutoscaleParameters {
    /// Fewest pods.
    pub min: i32,
    /// Most pods.
    pub max: i32,
    /// Target average CPU use, percent of the request.
    #[serde(default = "AutoscaleParameters::default_cpu_percent")]
    pub cpu_percent: i32,
    /// Seconds CPU use must stay below the target before pods are removed; Kubernetes' default when not given.
    #[serde(default)]
    pub scale_down_after_seconds: Option<i32>,
}

impl AutoscaleParameters {
    fn default_cpu_percent() -> i32 {
        80
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::catalog::ServiceKind;

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

    /// The `default`s a schema states for its properties, nested objects' included, as the object they make.
    fn stated_defaults(schema: &Value) -> Value {
        let properties = schema.get("properties").and_then(Value::as_object).into_iter().flatten();
        let defaults = properties.filter_map(|(key, property)| {
            let nested =
                Some(stated_defaults(property)).filter(|nested| nested.as_object().is_some_and(|n| !n.is_empty()));
            Some((key.clone(), property.get("default").cloned().or(nested)?))
        });
        Value::Object(defaults.collect())
    }

    /// `value` without what states nothing: nulls, empty lists and empty objects.
    fn pruned(value: Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(key, value)| (key, pruned(value)))
                    .filter(|(_, value)| !(value.is_null() || *value == json!([]) || *value == json!({})))
                    .collect(),
            ),
            other => other,
        }
    }

    /// `over` laid over `under`, objects merged key by key.
    fn laid_over(under: Value, over: &Value) -> Value {
        match (under, over) {
            (Value::Object(mut under), Value::Object(over)) => {
                for (key, value) in over {
                    let below = under.remove(key).unwrap_or(Value::Null);
                    under.insert(key.clone(), laid_over(below, value));
                }
                Value::Object(under)
            }
            (_, over) => over.clone(),
        }
    }

    #[test]
    fn workload_parameters_default_to_what_the_catalog_states() {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog/catalog.yaml");
        let catalog = Catalog::from_file(&file).unwrap_or_else(|errors| panic!("{errors:?}"));
        let workloads = catalog.services.iter().filter(|service| service.broker.kind.is_workload());
        for (service, plan) in workloads.flat_map(|service| service.plans.iter().map(move |plan| (service, plan))) {
            // The update schema names every parameter (the create schema's and `state`, `restart`).
            let schema = plan.update_schema().expect("an update schema");
            let stated = stated_defaults(schema);
            let created = stated_defaults(plan.create_schema().expect("a create schema"));
            for (key, default) in created.as_object().into_iter().flatten() {
                assert_eq!(stated.get(key), Some(default), "{} plan {}: {key}", service.name, plan.name);
            }
            // Left out: everything but what has no default (autoscale's bounds, so that its defaults show).
            let (given, parsed) = match service.broker.kind {
                ServiceKind::StreamingSession => {
                    let given = json!({});
                    let parsed = parse::<SessionParameters>(given.as_object().expect("object")).map(to_json);
                    (given, parsed)
                }
                _ => {
                    let given = json!({ "autoscale": { "min": 2, "max": 3 } });
                    let parsed = parse::<AppParameters>(given.as_object().expect("object")).map(to_json);
                    (given, parsed)
                }
            };
            let expected = laid_over(stated, &given);
            assert_eq!(parsed.map(pruned).ok(), Some(expected.clone()), "{} plan {}", service.name, plan.name);
            assert!(jsonschema::draft4::is_valid(schema, &expected), "the defaults pass the schema: {expected}");
        }
    }

    fn to_json<T: serde::Serialize>(parameters: T) -> Value {
        serde_json::to_value(parameters).expect("serialize")
    }

    #[test]
    fn binding_parameters_default_to_what_the_catalog_states() {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog/catalog.yaml");
        let catalog = Catalog::from_file(&file).unwrap_or_else(|errors| panic!("{errors:?}"));
        let parsed = parse::<BindParameters>(&Map::new()).expect("no parameters parse");
        for plan in catalog.services.iter().filter(|s| !s.broker.kind.is_workload()).flat_map(|s| &s.plans) {
            let schema = plan.schemas.as_ref().and_then(|s| s.service_binding.as_ref()).and_then(|b| b.create.as_ref());
            let stated = schema.and_then(|schema| schema.parameters.pointer("/properties/role/default"));
            assert_eq!(stated, Some(&json!(parsed.role)), "plan {}", plan.name);
        }
        let given = json!({ "role": "view", "expiration_seconds": 900 });
        let parsed = parse::<BindParameters>(given.as_object().expect("object")).expect("parses");
        assert_eq!(parsed, BindParameters { role: "view".to_owned(), expiration_seconds: Some(900) });
        let cluster = json!({ "pod_security": "restricted", "allow_ingress_from_namespaces": ["ingress"] });
        let parsed = parse::<ClusterParameters>(cluster.as_object().expect("object")).expect("parses");
        assert_eq!(parsed.pod_security, Some(PodSecurityLevel::Restricted));
        assert_eq!(parsed.allow_ingress_from_namespaces, ["ingress"]);
        assert_eq!(parse::<ClusterParameters>(&Map::new()).expect("none"), ClusterParameters::default());
    }

    #[test]
    fn workload_parameters_parse_as_given() {
        let given = json!({
            "image": "nginx:1.27", "port": 80, "replicas": 0, "env": { "A": "1" }, "path": "/api",
            "autoscale": { "min": 1, "max": 5, "cpu_percent": 50 },
            "state": "stopped", "restart": "r1", "ingress_host": "web.example.com", "ingress_class": "nginx",
            "cluster_instance_id": "c-1", "unknown": "ignored"
        });
        let app: AppParameters = parse(given.as_object().expect("object")).expect("parses");
        assert_eq!(
            (app.image.as_deref(), app.port, app.replicas, app.path.as_str()),
            (Some("nginx:1.27"), 80, 0, "/api")
        );
        assert_eq!(
            app.autoscale,
            Some(AutoscaleParameters { min: 1, max: 5, cpu_percent: 50, scale_down_after_seconds: None })
        );
        assert_eq!(app.env, BTreeMap::from([("A".to_owned(), "1".to_owned())]));
        let workload = &app.workload;
        assert_eq!((workload.state, workload.restart.as_deref()), (RunState::Stopped, Some("r1")));
        assert_eq!(workload.ingress_host.as_deref(), Some("web.example.com"));
        assert_eq!(workload.ingress_class.as_deref(), Some("nginx"));
        assert_eq!(workload.cluster_instance_id.as_deref(), Some("c-1"));
        let session: SessionParameters = parse(
            json!({ "steam_app_id": 1007, "launch": { "command": [], "args": ["-x"] } }).as_object().expect("object"),
        )
        .expect("parses");
        assert_eq!(session.steam_app_id, Some(1007));
        assert_eq!((session.protocol, session.idle_stop_minutes), (StreamProtocol::Selkies, None), "the defaults");
        let given = json!({ "protocol": "novnc", "idle_stop_minutes": 0 });
        let novnc: SessionParameters = parse(given.as_object().expect("object")).expect("parses");
        assert_eq!((novnc.protocol, novnc.idle_stop_minutes), (StreamProtocol::Novnc, Some(0)));
        assert_eq!(session.launch.command_line(), ["./start.sh", "-x"], "an empty command is the default one");
        let error = parse::<SessionParameters>(json!({ "steam_app_id": -1 }).as_object().expect("object"));
        assert!(error.is_err_and(|e| e.to_string().starts_with("invalid parameters: parameters.steam_app_id: ")));
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
    fn a_sessions_protocol_and_idle_time_are_bounded() {
        let plan = plan_id("streaming-session", "cpu-720p");
        let with = |extra: Value| {
            let mut parameters = json!({ "steam_app_id": 1007 });
            parameters.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
            check_plan(&plan, SchemaKind::Create, parameters)
        };
        for fine in
            [json!({ "protocol": "novnc" }), json!({ "idle_stop_minutes": 0 }), json!({ "idle_stop_minutes": 10080 })]
        {
            assert_eq!(with(fine.clone()), Ok(()), "{fine}");
        }
        for (refused, field) in [
            (json!({ "protocol": "rdp" }), "parameters.protocol"),
            (json!({ "idle_stop_minutes": 10081 }), "parameters.idle_stop_minutes"),
            (json!({ "idle_stop_minutes": -1 }), "parameters.idle_stop_minutes"),
            (json!({ "idle_stop_minutes": 1.5 }), "parameters.idle_stop_minutes"),
        ] {
            let error = with(refused.clone()).expect_err("refused");
            assert!(error.contains(field), "{refused}: {error}");
        }
        let update = check_plan(&plan, SchemaKind::Update, json!({ "idle_stop_minutes": 5, "protocol": "selkies" }));
        assert_eq!(update, Ok(()), "both may change on update");
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
