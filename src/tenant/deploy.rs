//! Deploying a container from the dashboard: a tenant's form becomes the same objects a `container-app` instance is
//! made of (one builder, [`ContainerApp`]), sized by the tenant and labelled as made by the dashboard. Everything is
//! done with the signed-in user's own client: first a server-side dry run (`dryRun=All`), so that RBAC, the quota, the
//! LimitRange and Pod Security admission all answer before anything exists, then the same objects applied
//! (server-side apply under the dashboard's field manager; a second deploy of the same name is an update).

use std::fmt::Debug;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Event, LimitRange, Pod, ResourceQuota, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::apps::{FIELD_MANAGER, user_error};
use crate::catalog::quantity;
use crate::k8s::names::{DnsLabel, LABEL_APP, LABEL_MANAGED_BY, MANAGED_BY_DASHBOARD, QUOTA_NAME};
use crate::k8s::quota;
use crate::k8s::workload::{ContainerApp, Workload};
use crate::lifecycle::app_quota_needed;
use crate::lifecycle::model::LastOperation;
use crate::lifecycle::progress::{Refusals, progress};
use crate::lifecycle::{Broker, Result};

/// Longest app name: its objects' names and the pods' generated names (`<name>-<hash>-<id>`) stay within limits.
pub const MAX_NAME: usize = 50;

/// Something wrong with a deploy, tied to the form field it is about when it can be (`None`: the whole app, as a
/// quota or Pod Security refusal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The form field (`image`, `cpu_limit`, ...).
    pub field: Option<&'static str>,
    /// What is wrong, in the form's or the cluster's words.
    pub message: String,
    /// Whether RBAC refused the identity itself (it may not make such objects at all), rather than the app.
    pub denied: bool,
}

/// The objects a deploy applies, in the order they are applied.
#[derive(Debug, Clone)]
pub struct DeployObjects {
    /// The app as the builder holds it.
    pub app: ContainerApp,
    /// Its Deployment.
    pub deployment: Deployment,
    /// Its Service.
    pub service: Service,
    /// Its Ingress, when a host was given.
    pub ingress: Option<Ingress>,
    /// Its autoscaler, when autoscaling was asked.
    pub autoscaler: Option<HorizontalPodAutoscaler>,
}

impl DeployObjects {
    /// Every object as YAML, separated as a multi-document file: exactly what [`Broker::deploy`] applies.
    pub fn yaml(&self) -> String {
        let mut documents = vec![to_yaml(&self.deployment), to_yaml(&self.service)];
        documents.extend(self.ingress.as_ref().map(to_yaml));
        documents.extend(self.autoscaler.as_ref().map(to_yaml));
        documents.join("---\n")
    }
}

fn to_yaml<K: Resource<DynamicType = ()> + Serialize>(object: &K) -> String {
    // Typed objects carry no apiVersion/kind of their own; the preview shows them as a manifest would.
    let mut value = serde_json::to_value(object).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.insert("apiVersion".to_owned(), K::api_version(&()).into());
        map.insert("kind".to_owned(), K::kind(&()).into());
    }
    serde_norway::to_string(&value).unwrap_or_default()
}

/// Whether `name` is an RFC 1035 label of at most [`MAX_NAME`] characters (what a Service's name must be).
pub fn is_app_name(name: &str) -> bool {
    DnsLabel::parse(name)
        .is_ok_and(|label| label.len() <= MAX_NAME && label.starts_with(|c: char| c.is_ascii_lowercase()))
}

/// The objects of `app`.
pub fn objects(app: ContainerApp) -> DeployObjects {
    DeployObjects {
        deployment: app.deployment(),
        service: app.service(),
        ingress: app.ingress(),
        autoscaler: app.autoscaler(),
        app,
    }
}

/// The form field a field path of the apiserver's answer is about, if one is.
fn form_field(path: &str, message: &str) -> Option<&'static str> {
    let about = |resource: &str| message.contains(resource) || path.contains(resource);
    let field = if path.ends_with(".image") {
        "image"
    } else if path.contains("containerPort") || path.contains("targetPort") {
        "port"
    } else if path.contains(".env") {
        "env"
    } else if path.contains("resources.requests") || path.contains("resources.limits") {
        let kind = if path.contains("limits") { "limit" } else { "request" };
        match (about("memory"), about("cpu"), kind) {
            (true, _, "limit") => "memory_limit",
            (true, _, _) => "memory_request",
            (_, true, "limit") => "cpu_limit",
            _ => "cpu_request",
        }
    } else if path == "spec.replicas" {
        "replicas"
    } else if path.starts_with("metadata.name") {
        "name"
    } else if path.contains(".host") {
        "ingress_host"
    } else if path.contains("minReplicas") {
        "min"
    } else if path.contains("maxReplicas") {
        "max"
    } else if path.contains("averageUtilization") {
        "cpu_percent"
    } else {
        return None;
    };
    Some(field)
}

/// The apiserver's refusal as field errors: one per cause it names a field of; otherwise its message, tied to the
/// field a LimitRange bound is about (`maximum cpu usage per Container ...`) or to no field (quota, Pod Security).
pub fn refusals(error: &kube::Error) -> Vec<FieldError> {
    let kube::Error::Api(status) = error else {
        return vec![FieldError { field: None, message: error.to_string(), denied: false }];
    };
    // RBAC says "User ... cannot <verb> resource ..."; admission's refusals (quota, LimitRange, Pod Security) are
    // 403 too, but about the object.
    let denied = status.code == 403 && status.message.contains(" cannot ");
    let causes = status.details.as_ref().map(|details| details.causes.as_slice()).unwrap_or_default();
    let named: Vec<FieldError> = causes
        .iter()
        .filter(|cause| !cause.field.is_empty())
        .map(|cause| FieldError {
            field: form_field(&cause.field, &cause.message),
            message: format!("{}: {}", cause.field, cause.message),
            denied,
        })
        .collect();
    if !named.is_empty() {
        return named;
    }
    let message = &status.message;
    let bound = |word: &str| {
        message.contains(&format!("{word} cpu usage")) || message.contains(&format!("{word} memory usage"))
    };
    let field = if bound("maximum") || bound("minimum") {
        let limit = message.contains("limit is");
        Some(match (message.contains("memory usage"), limit) {
            (true, true) => "memory_limit",
            (true, false) => "memory_request",
            (false, true) => "cpu_limit",
            (false, false) => "cpu_request",
        })
    } else {
        None
    };
    vec![FieldError { field, message: message.clone(), denied }]
}

/// What a dry run or a deploy came to: refused (nothing changed), or the objects the cluster holds now.
pub enum Deployed {
    /// The cluster refused, field by field.
    Refused(Vec<FieldError>),
    /// The objects were (or, in a dry run, would be) applied.
    Applied,
}

fn dry_run_pod(objects: &DeployObjects) -> Pod {
    let template = objects.deployment.spec.as_ref().map(|spec| spec.template.clone()).unwrap_or_default();
    let workload = &objects.app.workload;
    Pod {
        metadata: ObjectMeta {
            name: Some(format!("{}-dry-run", workload.name)),
            namespace: Some(workload.namespace.clone()),
            ..template.metadata.unwrap_or_default()
        },
        spec: template.spec,
        ..Pod::default()
    }
}

async fn apply_as<K>(user: &Client, namespace: &str, object: &K, dry_run: bool) -> std::result::Result<K, kube::Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Serialize
        + DeserializeOwned
        + Clone
        + Debug,
{
    let mut params = PatchParams::apply(FIELD_MANAGER).force();
    params.dry_run = dry_run;
    let name = object.meta().name.as_deref().unwrap_or_default();
    Api::<K>::namespaced(user.clone(), namespace).patch(name, &params, &Patch::Apply(object)).await
}

/// Where an app deployed from the dashboard runs and how its image is pulled: the operator's placement of every
/// workload, as for a container-app instance.
pub fn deploy_base(lifecycle: &Broker, namespace: &str) -> Workload {
    Workload::unnamed(namespace, lifecycle.workload_placement().clone())
}

/// Asks the cluster, as the user and changing nothing, whether it would take `objects`: every object and one of
/// the app's pods (which the quota, the LimitRange and Pod Security admission judge) in a server-side dry run,
/// and the app's pods together against what the quota has left.
pub async fn dry_run(user: &Client, objects: &DeployObjects) -> Result<Deployed> {
    let namespace = objects.app.workload.namespace.as_str();
    let mut refused = Vec::new();
    record(&mut refused, apply_as(user, namespace, &objects.deployment, true).await)?;
    // The pod is asked about only for what admission says of it: a Deployment the cluster finds invalid would
    // have its pod refused again for the same reasons.
    let deployment_valid = refused.is_empty();
    record(&mut refused, apply_as(user, namespace, &objects.service, true).await)?;
    if let Some(ingress) = &objects.ingress {
        record(&mut refused, apply_as(user, namespace, ingress, true).await)?;
    }
    if let Some(autoscaler) = &objects.autoscaler {
        record(&mut refused, apply_as(user, namespace, autoscaler, true).await)?;
    }
    if deployment_valid {
        record(&mut refused, apply_as(user, namespace, &dry_run_pod(objects), true).await)?;
    }
    if refused.is_empty() {
        let quotas = Api::<ResourceQuota>::namespaced(user.clone(), namespace);
        let quota = quotas.get_opt(QUOTA_NAME).await.map_err(user_error)?;
        let mut needed = app_quota_needed(&objects.app);
        let current = Api::<Deployment>::namespaced(user.clone(), namespace)
            .get_opt(&objects.app.workload.name)
            .await
            .map_err(user_error)?;
        if let Some(spec) = current.and_then(|deployment| deployment.spec) {
            // An update replaces the app's pods and keeps its objects: only the difference counts.
            let pods = i128::from(spec.replicas.unwrap_or(1));
            let mut in_use = spec.template.spec.as_ref().map(quota::pod_usage).unwrap_or_default();
            in_use.insert("pods".to_owned(), quantity::Milli(1000));
            for (resource, amount) in in_use {
                quota::add(&mut needed, &resource, quantity::Milli(-amount.0 * pods));
            }
            needed.retain(|resource, _| {
                resource == "pods" || resource.starts_with("requests.") || resource.starts_with("limits.")
            });
        }
        let short = quota::shortfalls(&needed, quota.as_ref());
        if !short.is_empty() {
            refused.push(FieldError {
                field: Some("replicas"),
                message: format!("exceeded quota: {}", short.join("; ")),
                denied: false,
            });
        }
    }
    Ok(if refused.is_empty() { Deployed::Applied } else { Deployed::Refused(refused) })
}

/// Deploys `objects` as the user: a dry run first (nothing is applied when the cluster would refuse any of it),
/// then each object server-side applied; an Ingress or autoscaler an earlier deploy of this app made and this one
/// no longer asks for is removed.
pub async fn deploy(user: &Client, objects: &DeployObjects) -> Result<Deployed> {
    if let Deployed::Refused(refused) = dry_run(user, objects).await? {
        return Ok(Deployed::Refused(refused));
    }
    let namespace = objects.app.workload.namespace.as_str();
    let name = objects.app.workload.name.as_str();
    let applied = async {
        apply_as(user, namespace, &objects.deployment, false).await?;
        apply_as(user, namespace, &objects.service, false).await?;
        match &objects.ingress {
            Some(ingress) => drop(apply_as(user, namespace, ingress, false).await?),
            None => remove_ours::<Ingress>(user, namespace, name).await?,
        }
        match &objects.autoscaler {
            Some(autoscaler) => drop(apply_as(user, namespace, autoscaler, false).await?),
            None => remove_ours::<HorizontalPodAutoscaler>(user, namespace, name).await?,
        }
        Ok::<_, kube::Error>(())
    };
    match applied.await {
        Ok(()) => Ok(Deployed::Applied),
        Err(error @ kube::Error::Api(_)) => Ok(Deployed::Refused(refusals(&error))),
        Err(error) => Err(error.into()),
    }
}

/// How far the dashboard app `name` has come, read as the user: its pods' stages, or why it fails (an image
/// that cannot be pulled, a crash loop, pods the cluster refused to create).
pub async fn deploy_progress(user: &Client, namespace: &str, name: &str) -> Result<Option<LastOperation>> {
    let deployments = Api::<Deployment>::namespaced(user.clone(), namespace);
    let Some(deployment) = deployments.get_opt(name).await.map_err(user_error)? else { return Ok(None) };
    let expected = deployment.spec.and_then(|spec| spec.replicas).unwrap_or(1);
    let selector = format!("{LABEL_APP}={name}");
    let pods = Api::<Pod>::namespaced(user.clone(), namespace)
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(user_error)?;
    let events = Api::<Event>::namespaced(user.clone(), namespace)
        .list(&ListParams::default().fields("reason=FailedCreate,involvedObject.kind=ReplicaSet"))
        .await
        .map(|list| list.items)
        .unwrap_or_default();
    let prefix = format!("{name}-");
    let refused = events
        .iter()
        .filter(|event| event.involved_object.name.as_deref().is_some_and(|n| n.starts_with(&prefix)))
        .max_by_key(|event| event.last_timestamp.as_ref().map(|t| t.0))
        .and_then(|event| event.message.as_deref());
    let refusals = Refusals { pod_creation: refused, ..Refusals::default() };
    Ok(Some(progress(expected, &pods.items, refusals)))
}

/// Adds the apiserver's refusal of one object to `refused`; an apiserver that fails (5xx) or cannot be reached fails
/// the whole dry run instead, since it said nothing about the app.
fn record<K>(refused: &mut Vec<FieldError>, outcome: std::result::Result<K, kube::Error>) -> Result<()> {
    match outcome {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code >= 500 => Err(kube::Error::Api(status).into()),
        Err(error @ kube::Error::Api(_)) => {
            refused.extend(refusals(&error));
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}

/// Deletes `name` of kind `K` if the dashboard made it (a tenant's own object of that name is left alone).
async fn remove_ours<K>(user: &Client, namespace: &str, name: &str) -> std::result::Result<(), kube::Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()> + DeserializeOwned + Clone + Debug,
{
    let api = Api::<K>::namespaced(user.clone(), namespace);
    let Some(found) = api.get_opt(name).await? else { return Ok(()) };
    let ours = found.meta().labels.as_ref().and_then(|labels| labels.get(LABEL_MANAGED_BY));
    if ours.map(String::as_str) == Some(MANAGED_BY_DASHBOARD) {
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(error) if crate::k8s::is_not_found(&error) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// The container defaults of the namespace's LimitRange, read as the user, as the form's starting values:
/// (CPU request, CPU limit, memory request, memory limit).
pub async fn limit_defaults(user: &Client, namespace: &str) -> Result<[Option<String>; 4]> {
    let ranges = Api::<LimitRange>::namespaced(user.clone(), namespace)
        .list(&ListParams::default())
        .await
        .map_err(user_error)?;
    let defaults = super::overview::container_defaults(&ranges.items);
    let of = |resource: &str, limit: bool| {
        defaults
            .iter()
            .find(|d| d.resource == resource)
            .and_then(|d| if limit { d.limit.clone() } else { d.request.clone() })
    };
    Ok([of("cpu", false), of("cpu", true), of("memory", false), of("memory", true)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_field_paths_map_to_form_fields() {
        assert_eq!(form_field("spec.template.spec.containers[0].image", ""), Some("image"));
        assert_eq!(
            form_field(
                "spec.template.spec.containers[0].resources.requests",
                "must be less than or equal to memory limit"
            ),
            Some("memory_request")
        );
        assert_eq!(form_field("spec.rules[0].host", "a lowercase RFC 1123 subdomain"), Some("ingress_host"));
        assert_eq!(form_field("spec.template.spec.securityContext", ""), None);
        let status = kube::core::Status::failure(
            "pods \"web-dry-run\" is forbidden: maximum cpu usage per Container is 1, but limit is 2",
            "Forbidden",
        )
        .with_code(403);
        let limit = refusals(&kube::Error::Api(status.boxed()));
        assert_eq!((limit[0].field, limit[0].denied), (Some("cpu_limit"), false));
        let rbac = kube::core::Status::failure(
            "deployments.apps \"web\" is forbidden: User \"v\" cannot patch resource \"deployments\"",
            "Forbidden",
        )
        .with_code(403);
        let denied = refusals(&kube::Error::Api(rbac.boxed()));
        assert_eq!((denied[0].field, denied[0].denied), (None, true));
    }
}
