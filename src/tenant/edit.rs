//! One object edited as YAML, as the signed-in user: the object as they may edit it (without what Kubernetes keeps
//! for itself), a review of their edit (a server-side dry run of server-side apply, compared field by field with the
//! live object, or what the cluster would refuse and why) and the edit applied. Every request is made with the
//! user's own client under the dashboard's field manager ([`FIELD_MANAGER`]) and never forced: a field another
//! manager owns is a conflict shown to the user, not taken from it.

use kube::api::{DynamicObject, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::Value;

use super::apps::FIELD_MANAGER;
use super::objects::Kind;
use crate::k8s::access::{self, Permission};
use crate::k8s::names;
use crate::lifecycle::{Error, Result};

/// The largest YAML an edit may send: far above any object a tenant writes by hand, far below what would hurt.
pub const MAX_YAML_BYTES: usize = 256 * 1024;

/// Metadata Kubernetes sets itself: left out of the YAML to edit, and of an edit sent (as `kubectl edit` does);
/// `resourceVersion` stays, so that an edit of an object changed meanwhile is refused rather than applied over it.
const SYSTEM_METADATA: [&str; 6] =
    ["managedFields", "creationTimestamp", "generation", "uid", "selfLink", "deletionGracePeriodSeconds"];

/// What the comparison of the live object with the dry run's ignores: bookkeeping every write changes.
const IGNORED: [&str; 4] =
    ["metadata.managedFields", "metadata.resourceVersion", "metadata.generation", "metadata.creationTimestamp"];

/// One field that an edit changes, at its path (`spec.replicas`, `spec.template.spec.containers[web].image`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A field whose value changes.
    Changed {
        /// Where.
        path: String,
        /// Its value now, as JSON.
        before: String,
        /// Its value after the edit, as JSON.
        after: String,
    },
    /// A field the edit adds.
    Added {
        /// Where.
        path: String,
        /// Its value, as JSON.
        value: String,
    },
    /// A field the edit removes.
    Removed {
        /// Where.
        path: String,
        /// Its value now, as JSON.
        value: String,
    },
}

/// Why an edit was not reviewed or applied: the user's to read and act on.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The YAML is no object of this kind and name (it does not parse, names another object, is too long).
    #[error("{0}")]
    Invalid(String),
    /// Kubernetes refused it as the user: RBAC, admission (the tenant guard, the quota, Pod Security), validation.
    /// The message is the apiserver's, verbatim.
    #[error("{message}")]
    Refused {
        /// The apiserver's status code (403, 422, ...).
        code: u16,
        /// The apiserver's message.
        message: String,
    },
    /// Fields the edit changes belong to other field managers; nothing is forced.
    #[error("{message}")]
    Conflict {
        /// The apiserver's message.
        message: String,
        /// Each field and who manages it (`.spec.replicas`, `conflict with "kubectl" using apps/v1`).
        fields: Vec<(String, String)>,
    },
    /// The object changed since the YAML was read (its `resourceVersion` is not the live one).
    #[error("{0}")]
    Stale(String),
    /// The object is gone, or the user may not read it.
    #[error("there is no such object")]
    NoSuchObject,
}

impl Refusal {
    /// The status a page saying this answers with.
    pub fn code(&self) -> u16 {
        match self {
            Refusal::Invalid(_) => 400,
            Refusal::Refused { code, .. } => *code,
            Refusal::Conflict { .. } | Refusal::Stale(_) => 409,
            Refusal::NoSuchObject => 404,
        }
    }
}

/// Whether the identity of `client` may edit objects of `kind` in `namespace` (server-side apply is a `patch`), as
/// Kubernetes decides: whether the editor is offered. The apiserver still decides each edit.
pub async fn may_edit(client: &Client, namespace: &str, kind: Kind, name: &str) -> Result<bool> {
    let group = kind.api_resource().group;
    let permission = Permission { verb: "patch", group: &group, resource: kind.as_str() };
    Ok(access::allowed_named(client, namespace, permission, name).await?)
}

/// `kind`/`name` of `namespace` as YAML to edit, read with `client` (the identity's own): without status and the
/// metadata Kubernetes sets itself. `None` when there is no such object or the identity may not read it.
pub async fn editable_yaml(client: &Client, namespace: &str, kind: Kind, name: &str) -> Result<Option<String>> {
    let Some(live) = live(client, namespace, kind, name).await? else { return Ok(None) };
    let mut object = serde_json::to_value(live).map_err(|error| Error::internal(format!("{name}: {error}")))?;
    strip(&mut object);
    serde_norway::to_string(&object).map(Some).map_err(|error| Error::internal(format!("YAML of {name}: {error}")))
}

/// Asks the cluster, as the user and changing nothing (a server-side dry run of server-side apply), what `yaml`
/// would do to `kind`/`name`: every field it changes, or why it would be refused.
pub async fn review(
    client: &Client,
    namespace: &str,
    kind: Kind,
    name: &str,
    yaml: &str,
) -> Result<std::result::Result<Vec<Change>, Refusal>> {
    let edited = match parse(kind, namespace, name, yaml) {
        Ok(edited) => edited,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let Some(before) = live(client, namespace, kind, name).await? else { return Ok(Err(Refusal::NoSuchObject)) };
    let after = match apply(client, namespace, kind, name, &edited, true).await? {
        Ok(after) => after,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let (before, after) = (to_json(&before)?, to_json(&after)?);
    Ok(Ok(diff(&before, &after)))
}

/// Applies `yaml` to `kind`/`name` as the user (server-side apply under [`FIELD_MANAGER`], not forced).
pub async fn apply_yaml(
    client: &Client,
    namespace: &str,
    kind: Kind,
    name: &str,
    yaml: &str,
) -> Result<std::result::Result<(), Refusal>> {
    let edited = match parse(kind, namespace, name, yaml) {
        Ok(edited) => edited,
        Err(refusal) => return Ok(Err(refusal)),
    };
    Ok(apply(client, namespace, kind, name, &edited, false).await?.map(|_| ()))
}

/// `yaml` as the object it must be: a mapping of `kind`'s apiVersion and kind, naming `name` in `namespace` (or no
/// namespace); what Kubernetes sets itself is dropped.
pub fn parse(kind: Kind, namespace: &str, name: &str, yaml: &str) -> std::result::Result<Value, Refusal> {
    if yaml.len() > MAX_YAML_BYTES {
        return Err(Refusal::Invalid(format!("the YAML is longer than {} KiB", MAX_YAML_BYTES / 1024)));
    }
    let mut object: Value =
        serde_norway::from_str(yaml).map_err(|error| Refusal::Invalid(format!("the YAML does not parse: {error}")))?;
    if !object.is_object() {
        return Err(Refusal::Invalid("the YAML is not an object (a mapping of apiVersion, kind, metadata...)".into()));
    }
    let resource = kind.api_resource();
    let text = |path: &str| object.pointer(path).and_then(Value::as_str).map(str::to_owned);
    let same = |what: &str, found: Option<String>, wanted: &str| match found {
        Some(found) if found == wanted => Ok(()),
        found => Err(Refusal::Invalid(format!(
            "{what} cannot change here (it is {wanted:?}, the YAML says {:?}): edit another object from its own page",
            found.unwrap_or_default()
        ))),
    };
    same("apiVersion", text("/apiVersion"), &resource.api_version)?;
    same("kind", text("/kind"), &resource.kind)?;
    same("metadata.name", text("/metadata/name"), name)?;
    if let Some(other) = text("/metadata/namespace").filter(|found| found != namespace) {
        same("metadata.namespace", Some(other), namespace)?;
    }
    strip(&mut object);
    Ok(object)
}

/// Removes status and the metadata Kubernetes sets itself from `object`.
fn strip(object: &mut Value) {
    let Some(object) = object.as_object_mut() else { return };
    object.remove("status");
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in SYSTEM_METADATA {
            metadata.remove(field);
        }
    }
}

async fn live(client: &Client, namespace: &str, kind: Kind, name: &str) -> Result<Option<DynamicObject>> {
    if kind == Kind::Events || !names::is_object_name(name) {
        return Ok(None);
    }
    match api(client, namespace, kind).get_opt(name).await {
        Ok(found) => Ok(found),
        Err(kube::Error::Api(status)) if status.code == 403 => Ok(None),
        Err(error) => Err(error.into()),
    }
}

fn api(client: &Client, namespace: &str, kind: Kind) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &kind.api_resource())
}

fn to_json(object: &DynamicObject) -> Result<Value> {
    serde_json::to_value(object).map_err(|error| Error::internal(format!("an object as JSON: {error}")))
}

/// Server-side apply of `object` as the user, a dry run when `dry_run`: the object as it is (or would be) after, or
/// the user's reason why not. An answer of the cluster being away is an error, not a refusal.
async fn apply(
    client: &Client,
    namespace: &str,
    kind: Kind,
    name: &str,
    object: &Value,
    dry_run: bool,
) -> Result<std::result::Result<DynamicObject, Refusal>> {
    let mut params = PatchParams::apply(FIELD_MANAGER);
    params.dry_run = dry_run;
    match api(client, namespace, kind).patch(name, &params, &Patch::Apply(object)).await {
        Ok(after) => Ok(Ok(after)),
        Err(kube::Error::Api(status)) if status.code < 500 && status.code != 429 => Ok(Err(refusal(&status))),
        Err(error) => Err(error.into()),
    }
}

/// The user's reason in the apiserver's refusal: a conflict of field managers names each field and its manager.
fn refusal(status: &kube::core::Status) -> Refusal {
    let message = status.message.clone();
    let causes = status.details.iter().flat_map(|details| details.causes.iter());
    let fields: Vec<(String, String)> = causes
        .filter(|cause| cause.reason == "FieldManagerConflict")
        .map(|cause| (cause.field.clone(), cause.message.clone()))
        .collect();
    match status.code {
        409 if !fields.is_empty() => Refusal::Conflict { message, fields },
        409 => Refusal::Stale(message),
        404 => Refusal::NoSuchObject,
        code => Refusal::Refused { code, message },
    }
}

/// Every field that differs between `before` and `after`, as `kubectl diff` would show it, by path: objects key by
/// key, lists of named items (containers, ports, env) by name, other lists item by item; what [`IGNORED`] names and
/// what is alike are left out.
pub fn diff(before: &Value, after: &Value) -> Vec<Change> {
    let mut changes = Vec::new();
    walk("", before, after, &mut changes);
    changes
}

fn walk(path: &str, before: &Value, after: &Value, changes: &mut Vec<Change>) {
    if IGNORED.contains(&path) || before == after {
        return;
    }
    match (before, after) {
        (Value::Object(before), Value::Object(after)) => {
            let field = |key: &str| if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") };
            for (key, old) in before {
                match after.get(key) {
                    Some(new) => walk(&field(key), old, new, changes),
                    None => removed(&field(key), old, changes),
                }
            }
            for (key, new) in after.iter().filter(|(key, _)| !before.contains_key(*key)) {
                added(&field(key), new, changes);
            }
        }
        (Value::Array(old), Value::Array(new)) => match (named(old), named(new)) {
            (Some(old), Some(new)) => {
                for (name, value) in &old {
                    match find(&new, name) {
                        Some(now) => walk(&format!("{path}[{name}]"), value, now, changes),
                        None => removed(&format!("{path}[{name}]"), value, changes),
                    }
                }
                for (name, value) in new.iter().filter(|(name, _)| find(&old, name).is_none()) {
                    added(&format!("{path}[{name}]"), value, changes);
                }
            }
            _ => {
                for (at, value) in old.iter().enumerate() {
                    match new.get(at) {
                        Some(now) => walk(&format!("{path}[{at}]"), value, now, changes),
                        None => removed(&format!("{path}[{at}]"), value, changes),
                    }
                }
                for (at, value) in new.iter().enumerate().skip(old.len()) {
                    added(&format!("{path}[{at}]"), value, changes);
                }
            }
        },
        _ => changes.push(Change::Changed { path: path.to_owned(), before: compact(before), after: compact(after) }),
    }
}

fn added(path: &str, value: &Value, changes: &mut Vec<Change>) {
    if !IGNORED.contains(&path) {
        changes.push(Change::Added { path: path.to_owned(), value: compact(value) });
    }
}

fn removed(path: &str, value: &Value, changes: &mut Vec<Change>) {
    if !IGNORED.contains(&path) {
        changes.push(Change::Removed { path: path.to_owned(), value: compact(value) });
    }
}

/// The item named `name` of `items`.
fn find<'a>(items: &[(&str, &'a Value)], name: &str) -> Option<&'a Value> {
    items.iter().find(|(named, _)| *named == name).map(|(_, value)| *value)
}

/// The items of a list by their `name`, in order, when every item is an object with a name of its own.
fn named(items: &[Value]) -> Option<Vec<(&str, &Value)>> {
    let mut by_name: Vec<(&str, &Value)> = Vec::with_capacity(items.len());
    for item in items {
        let name = item.get("name")?.as_str()?;
        if by_name.iter().any(|(seen, _)| *seen == name) {
            return None;
        }
        by_name.push((name, item));
    }
    (!items.is_empty()).then_some(by_name)
}

fn compact(value: &Value) -> String {
    value.to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment(replicas: i64, image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": "web", "namespace": "ns", "resourceVersion": "41", "generation": 1,
                          "managedFields": [{ "manager": "a", "time": "2026-01-01T00:00:00Z" }] },
            "spec": { "replicas": replicas,
                      "template": { "spec": { "containers": [{ "name": "web", "image": image },
                                                             { "name": "side", "image": "side:1" }] } } }
        })
    }

    #[test]
    fn a_diff_names_each_changed_field_by_its_path_and_ignores_bookkeeping() {
        let before = deployment(1, "web:1");
        let mut after = deployment(3, "web:1");
        after["metadata"]["resourceVersion"] = json!("42");
        after["metadata"]["generation"] = json!(2);
        after["metadata"]["managedFields"][0]["time"] = json!("2026-01-02T00:00:00Z");
        assert_eq!(
            diff(&before, &after),
            vec![Change::Changed { path: "spec.replicas".into(), before: "1".into(), after: "3".into() }]
        );
        assert_eq!(diff(&before, &before), vec![]);
    }

    #[test]
    fn named_items_are_matched_by_name_and_additions_and_removals_are_whole() {
        let before = deployment(1, "web:1");
        let mut after = deployment(1, "web:2");
        let containers = after["spec"]["template"]["spec"]["containers"].as_array_mut().expect("containers");
        containers.remove(1);
        containers.insert(0, json!({ "name": "init", "image": "init:1" }));
        after["spec"]["paused"] = json!(true);
        after["metadata"]["labels"] = json!({ "app": "web" });
        let changes = diff(&before, &after);
        let path = "spec.template.spec.containers";
        assert_eq!(
            changes,
            vec![
                Change::Added { path: "metadata.labels".into(), value: r#"{"app":"web"}"#.into() },
                Change::Changed {
                    path: format!("{path}[web].image"),
                    before: r#""web:1""#.into(),
                    after: r#""web:2""#.into()
                },
                Change::Removed { path: format!("{path}[side]"), value: r#"{"image":"side:1","name":"side"}"#.into() },
                Change::Added { path: format!("{path}[init]"), value: r#"{"image":"init:1","name":"init"}"#.into() },
                Change::Added { path: "spec.paused".into(), value: "true".into() },
            ]
        );
        let (old, new) = (json!({ "ips": ["a", "b"] }), json!({ "ips": ["a", "c", "d"] }));
        assert_eq!(
            diff(&old, &new),
            vec![
                Change::Changed { path: "ips[1]".into(), before: r#""b""#.into(), after: r#""c""#.into() },
                Change::Added { path: "ips[2]".into(), value: r#""d""#.into() },
            ]
        );
    }

    #[test]
    fn an_edit_must_parse_and_name_the_same_object() {
        let yaml = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  uid: x\n  resourceVersion: '7'\nspec:\n  replicas: 3\nstatus:\n  replicas: 1\n";
        let parsed = parse(Kind::Deployments, "ns", "web", yaml).expect("parses");
        assert_eq!(parsed["spec"]["replicas"], 3);
        assert_eq!(parsed["metadata"], json!({ "name": "web", "resourceVersion": "7" }), "uid is Kubernetes'");
        assert!(parsed.get("status").is_none());
        let bad = parse(Kind::Deployments, "ns", "web", "apiVersion: apps/v1\nkind: Deployment\nspec: [\n  a: b\n");
        assert!(matches!(&bad, Err(Refusal::Invalid(why)) if why.contains("line")), "{bad:?}");
        for (other, what) in [
            (yaml.replace("name: web", "name: other"), "metadata.name"),
            (yaml.replace("kind: Deployment", "kind: StatefulSet"), "kind"),
            (yaml.replace("name: web", "name: web\n  namespace: elsewhere"), "metadata.namespace"),
        ] {
            let refused = parse(Kind::Deployments, "ns", "web", &other);
            assert!(matches!(&refused, Err(Refusal::Invalid(why)) if why.starts_with(what)), "{refused:?}");
        }
        assert!(
            parse(Kind::Deployments, "ns", "web", &yaml.replace("name: web", "name: web\n  namespace: ns")).is_ok()
        );
        assert!(matches!(parse(Kind::Deployments, "ns", "web", "- a\n"), Err(Refusal::Invalid(_))));
        let long = format!("{yaml}# {}\n", "x".repeat(MAX_YAML_BYTES));
        assert!(
            matches!(parse(Kind::Deployments, "ns", "web", &long), Err(Refusal::Invalid(why)) if why.contains("256 KiB"))
        );
    }

    #[test]
    fn a_conflict_of_managers_is_told_from_a_stale_version() {
        let mut status = kube::core::Status::failure("Apply failed with 1 conflict", "Conflict").with_code(409);
        let stale = refusal(&status);
        assert!(matches!(stale, Refusal::Stale(_)), "{stale:?}");
        let details = json!({ "causes": [{ "reason": "FieldManagerConflict", "field": ".spec.replicas",
                                           "message": "conflict with \"kubectl\" using apps/v1" }] });
        status.details = Some(serde_json::from_value(details).expect("details"));
        let conflict = refusal(&status);
        assert!(
            matches!(&conflict, Refusal::Conflict { fields, .. } if fields == &[(".spec.replicas".to_owned(), r#"conflict with "kubectl" using apps/v1"#.to_owned())]),
            "{conflict:?}"
        );
        let forbidden = refusal(&kube::core::Status::failure("denied by guard", "Forbidden").with_code(403));
        assert!(matches!(forbidden, Refusal::Refused { code: 403, ref message } if message == "denied by guard"));
    }
}
