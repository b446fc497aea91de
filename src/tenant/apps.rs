//! The apps of a virtual cluster (its Deployments and StatefulSets) and what a signed-in tenant may do to them from the
//! dashboard: stop, start, restart, scale, autoscale, delete.
//!
//! Two kinds of app, two paths, one rule — the tenant's own identity decides:
//! - an app the tenant made is changed with the tenant's own client, so the apiserver's RBAC and admission decide;
//! - an app of a workload plan (a streaming session, a container app) is changed through the same code as the OSB
//!   update and deprovision, so that its record and what the platform reads stay true, and only after Kubernetes
//!   says the tenant's identity may make that change itself (SelfSubjectAccessReview).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PropagationPolicy};
use kube::{Api, Client};
use serde_json::{Map, Value, json};

use crate::k8s::access::{self, Permission};
use crate::k8s::names::{self, LABEL_INSTANCE, LABEL_MANAGED_BY, MANAGED_BY};
use crate::k8s::workload::Autoscale;
use crate::lifecycle::model::UpdateRequest;
use crate::lifecycle::{Broker, Error, PlanApp, PlanInstance, Result, Tenant};

/// Where a stopped app remembers how many pods it had, to come back to that count.
pub const ANNOTATION_REPLICAS_BEFORE_STOP: &str = "caas-broker.io/replicas-before-stop";
/// The pod template annotation `kubectl rollout restart` sets: the same, so both tools restart alike.
pub const ANNOTATION_RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
/// The field manager of changes made for a signed-in user (their own identity makes them).
pub const FIELD_MANAGER: &str = "caas-dashboard";
/// Most pods an app may be scaled to from the dashboard (the container-app plan's own limit); the quota decides below it.
pub const MAX_REPLICAS: i32 = 50;

/// The kinds of app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Controller {
    /// `apps/v1` Deployment.
    Deployment,
    /// `apps/v1` StatefulSet.
    StatefulSet,
}

impl Controller {
    /// The kind as Kubernetes spells it.
    pub fn kind(self) -> &'static str {
        match self {
            Controller::Deployment => "Deployment",
            Controller::StatefulSet => "StatefulSet",
        }
    }

    /// The plural resource, as in URLs and RBAC rules.
    pub fn resource(self) -> &'static str {
        match self {
            Controller::Deployment => "deployments",
            Controller::StatefulSet => "statefulsets",
        }
    }

    /// The kind from its plural resource name.
    pub fn from_resource(resource: &str) -> Option<Controller> {
        [Controller::Deployment, Controller::StatefulSet].into_iter().find(|kind| kind.resource() == resource)
    }
}

/// Something to do to an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Scale to zero, remembering the count.
    Stop,
    /// Scale back to the remembered count (one if none).
    Start,
    /// Replace every pod, one by one, as `kubectl rollout restart` does.
    Restart,
    /// Run this many pods.
    Scale(i32),
    /// Scale between min and max pods on CPU use (a HorizontalPodAutoscaler).
    Autoscale(Autoscale),
    /// Remove the autoscaler; the pods stay as many as they are.
    StopAutoscaling,
    /// Delete the app (and its autoscaler).
    Delete,
}

impl Action {
    /// Checks the numbers a user typed before anything is sent.
    pub fn validate(&self) -> Result<()> {
        let invalid = |what: String| Err(Error::BadRequest(what));
        match self {
            Action::Scale(replicas) if !(0..=MAX_REPLICAS).contains(replicas) => {
                invalid(format!("replicas must be 0 to {MAX_REPLICAS}"))
            }
            Action::Autoscale(Autoscale { min, max, cpu_percent }) => {
                if !(1..=MAX_REPLICAS).contains(min) || !(1..=MAX_REPLICAS).contains(max) || min > max {
                    invalid(format!("autoscaling needs 1 ≤ min ≤ max ≤ {MAX_REPLICAS}"))
                } else if !(1..=100).contains(cpu_percent) {
                    invalid("the CPU target must be 1 to 100 %".to_owned())
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    /// What Kubernetes must let the user do for this action on a `kind`.
    fn permission(&self, kind: Controller) -> Permission<'static> {
        let verb = match self {
            Action::Delete => "delete",
            _ => "patch",
        };
        match self {
            Action::Autoscale(_) | Action::StopAutoscaling => {
                Permission { verb: "create", group: "autoscaling", resource: "horizontalpodautoscalers" }
            }
            _ => Permission { verb, group: "apps", resource: kind.resource() },
        }
    }
}

/// One app of a virtual cluster, as its signed-in user sees it.
#[derive(Debug, Clone)]
pub struct App {
    /// Its kind.
    pub controller: Controller,
    /// Its name.
    pub name: String,
    /// Pods wanted.
    pub desired: i32,
    /// Pods ready.
    pub ready: i32,
    /// The count a stopped app comes back to.
    pub replicas_before_stop: Option<i32>,
    /// Its autoscaler, if one targets it.
    pub autoscale: Option<Autoscale>,
    /// Its containers' images.
    pub images: Vec<String>,
    /// The workload plan instance it belongs to, if any.
    pub plan: Option<PlanApp>,
}

impl App {
    /// Whether it is scaled to zero.
    pub fn stopped(&self) -> bool {
        self.desired == 0
    }
}

/// What an autoscaler (a HorizontalPodAutoscaler) measures and does now, as its status says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoscalerState {
    /// The autoscaler's own name.
    pub name: String,
    /// The kind of app it scales (`Deployment`, `StatefulSet`, ...).
    pub target_kind: String,
    /// The app it scales.
    pub target: String,
    /// Fewest pods.
    pub min: i32,
    /// Most pods.
    pub max: i32,
    /// Its target: average CPU use in percent of the pods' requests.
    pub target_cpu_percent: Option<i32>,
    /// The average CPU use it last measured, in percent of the requests (none until it could measure).
    pub current_cpu_percent: Option<i32>,
    /// Pods it last saw.
    pub current_replicas: i32,
    /// Pods it wants.
    pub desired_replicas: i32,
    /// Whether it can compute a scale (its `ScalingActive` condition), when it has said so.
    pub scaling_active: Option<bool>,
}

impl AutoscalerState {
    /// The state of `hpa`, from its spec and status.
    pub fn of(hpa: &HorizontalPodAutoscaler) -> AutoscalerState {
        let (spec, status) = (&hpa.spec, hpa.status.clone().unwrap_or_default());
        let current_cpu_percent = status.current_metrics.iter().flatten().find_map(|metric| {
            let resource = metric.resource.as_ref().filter(|r| r.name == "cpu")?;
            resource.current.average_utilization
        });
        let scaling_active = status
            .conditions
            .iter()
            .flatten()
            .find(|condition| condition.type_ == "ScalingActive")
            .map(|condition| condition.status == "True");
        AutoscalerState {
            name: hpa.metadata.name.clone().unwrap_or_default(),
            target_kind: spec.scale_target_ref.kind.clone(),
            target: spec.scale_target_ref.name.clone(),
            min: spec.min_replicas.unwrap_or(1),
            max: spec.max_replicas,
            target_cpu_percent: cpu_target(hpa),
            current_cpu_percent,
            current_replicas: status.current_replicas.unwrap_or(0),
            desired_replicas: status.desired_replicas,
            scaling_active,
        }
    }
}

/// The autoscalers of `namespace`, read as the user, by name.
pub async fn autoscalers(user: &Client, namespace: &str) -> Result<Vec<AutoscalerState>> {
    let api = Api::<HorizontalPodAutoscaler>::namespaced(user.clone(), namespace);
    let listed = api.list(&ListParams::default()).await.map_err(user_error)?;
    let mut states: Vec<AutoscalerState> = listed.items.iter().map(AutoscalerState::of).collect();
    states.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(states)
}

/// Which app controls the signed-in user may use, as Kubernetes answers for their identity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppPermissions {
    /// Change Deployments (stop, start, restart, scale).
    pub change_deployments: bool,
    /// Change StatefulSets.
    pub change_stateful_sets: bool,
    /// Delete Deployments.
    pub delete_deployments: bool,
    /// Delete StatefulSets.
    pub delete_stateful_sets: bool,
    /// Make autoscalers.
    pub autoscale: bool,
}

impl AppPermissions {
    /// Whether the user may change an app of `kind`.
    pub fn change(&self, kind: Controller) -> bool {
        match kind {
            Controller::Deployment => self.change_deployments,
            Controller::StatefulSet => self.change_stateful_sets,
        }
    }

    /// Whether the user may delete an app of `kind`.
    pub fn delete(&self, kind: Controller) -> bool {
        match kind {
            Controller::Deployment => self.delete_deployments,
            Controller::StatefulSet => self.delete_stateful_sets,
        }
    }
}

/// What an action came to, for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acted {
    /// Done in the cluster (the pods follow).
    Done,
    /// Handed to the workload plan's update or deprovision, which goes on asynchronously.
    Started,
}

/// Asks Kubernetes, as the user, which app controls they may use in `namespace`.
pub async fn app_permissions(user: &Client, namespace: &str) -> Result<AppPermissions> {
    let ask = |verb, group, resource| access::allowed(user, namespace, Permission { verb, group, resource });
    let (change_deployments, change_stateful_sets, delete_deployments, delete_stateful_sets, autoscale) = tokio::try_join!(
        ask("patch", "apps", "deployments"),
        ask("patch", "apps", "statefulsets"),
        ask("delete", "apps", "deployments"),
        ask("delete", "apps", "statefulsets"),
        ask("create", "autoscaling", "horizontalpodautoscalers"),
    )?;
    Ok(AppPermissions { change_deployments, change_stateful_sets, delete_deployments, delete_stateful_sets, autoscale })
}

/// Whether the cluster serves the resource metrics API (`metrics.k8s.io`, from a metrics server), which an
/// autoscaler needs to act: without it, an autoscaler is made but never scales.
pub async fn metrics_available(user: &Client) -> bool {
    match user.list_api_groups().await {
        Ok(groups) => groups.groups.iter().any(|group| group.name == "metrics.k8s.io"),
        Err(error) => {
            tracing::debug!(%error, "API discovery failed; metrics taken as unavailable");
            false
        }
    }
}

/// Turns the apiserver's refusal of a user's request into the domain's words: what RBAC or admission said is shown to
/// the user, since it is about their own request.
pub fn user_error(error: kube::Error) -> Error {
    match &error {
        kube::Error::Api(status) if status.code == 401 || status.code == 403 => {
            Error::Denied { message: status.message.clone(), cause: Some(error) }
        }
        kube::Error::Api(status) if status.code == 404 => Error::NotFound(status.message.clone()),
        kube::Error::Api(status) if status.code == 409 => Error::Conflict(status.message.clone()),
        kube::Error::Api(status) if status.code == 400 || status.code == 422 => {
            Error::BadRequest(status.message.clone())
        }
        _ => error.into(),
    }
}

/// The apps of the signed-in user's virtual cluster, read as the user, each with its workload plan instance.
pub async fn list(lifecycle: &Broker, user: &Client, tenant: &Tenant) -> Result<Vec<App>> {
    let namespace = tenant.namespace.as_str();
    let all = ListParams::default();
    let (deployments, stateful_sets, autoscalers) = (
        Api::<Deployment>::namespaced(user.clone(), namespace),
        Api::<StatefulSet>::namespaced(user.clone(), namespace),
        Api::<HorizontalPodAutoscaler>::namespaced(user.clone(), namespace),
    );
    let (deployments, stateful_sets, autoscalers, records) = tokio::join!(
        deployments.list(&all),
        stateful_sets.list(&all),
        autoscalers.list(&all),
        lifecycle.workload_plans(tenant),
    );
    let (deployments, stateful_sets) = (deployments.map_err(user_error)?, stateful_sets.map_err(user_error)?);
    // An identity that may see apps but not autoscalers still sees its apps.
    let autoscalers = autoscalers.map(|list| list.items).unwrap_or_default();
    let plans = records?;
    let mut apps = Vec::new();
    for deployment in deployments.items {
        let spec = deployment.spec.unwrap_or_default();
        let status = deployment.status.unwrap_or_default();
        apps.push(app(
            Controller::Deployment,
            deployment.metadata,
            (spec.replicas.unwrap_or(1), status.ready_replicas.unwrap_or(0)),
            &spec.template,
            &autoscalers,
            &plans,
        ));
    }
    for set in stateful_sets.items {
        let spec = set.spec.unwrap_or_default();
        let status = set.status.unwrap_or_default();
        apps.push(app(
            Controller::StatefulSet,
            set.metadata,
            (spec.replicas.unwrap_or(1), status.ready_replicas.unwrap_or(0)),
            &spec.template,
            &autoscalers,
            &plans,
        ));
    }
    apps.sort_by(|a, b| (a.controller.kind(), &a.name).cmp(&(b.controller.kind(), &b.name)));
    Ok(apps)
}

fn app(
    controller: Controller,
    metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    (desired, ready): (i32, i32),
    template: &k8s_openapi::api::core::v1::PodTemplateSpec,
    autoscalers: &[HorizontalPodAutoscaler],
    plans: &[PlanApp],
) -> App {
    let name = metadata.name.unwrap_or_default();
    let annotations = metadata.annotations.unwrap_or_default();
    let autoscale = autoscalers.iter().find_map(|hpa| -> Option<Autoscale> {
        let spec = &hpa.spec;
        let target = &spec.scale_target_ref;
        (target.kind == controller.kind() && target.name == name).then(|| Autoscale {
            min: spec.min_replicas.unwrap_or(1),
            max: spec.max_replicas,
            cpu_percent: cpu_target(hpa).unwrap_or(0),
        })
    });
    let images = template
        .spec
        .iter()
        .flat_map(|pod| pod.containers.iter())
        .filter_map(|container| container.image.clone())
        .collect();
    App {
        controller,
        replicas_before_stop: annotations.get(ANNOTATION_REPLICAS_BEFORE_STOP).and_then(|n| n.parse().ok()),
        plan: plan_of(&metadata.labels.unwrap_or_default(), plans.iter().map(|plan| plan.instance_id.as_str()))
            .and_then(|id| plans.iter().find(|plan| plan.instance_id == id))
            .cloned(),
        name,
        desired,
        ready,
        autoscale,
        images,
    }
}

/// Does `action` to the app `kind`/`name` of the signed-in user's virtual cluster, as the user (see the module).
pub async fn act(
    lifecycle: &Broker,
    user: &Client,
    tenant: &Tenant,
    kind: Controller,
    name: &str,
    action: Action,
) -> Result<Acted> {
    action.validate()?;
    let namespace = tenant.namespace.as_str();
    let labels = object_meta(user, namespace, kind, name).await?.0.labels.unwrap_or_default();
    let plans = lifecycle.plan_instances(tenant).await?;
    let ids = plans.iter().map(|plan| plan.instance_id.as_str());
    let plan = plan_of(&labels, ids).and_then(|id| plans.iter().find(|plan| plan.instance_id == id));
    match plan {
        Some(plan) => act_on_plan(lifecycle, user, tenant, kind, plan, action).await,
        None => act_as_user(user, namespace, kind, name, action).await.map(|()| Acted::Done),
    }
}

/// An action on a workload plan's app: allowed only if the user's identity may make that change itself, then
/// carried out by the OSB update or deprovision.
async fn act_on_plan(
    lifecycle: &Broker,
    user: &Client,
    tenant: &Tenant,
    kind: Controller,
    plan: &PlanInstance,
    action: Action,
) -> Result<Acted> {
    let permission = action.permission(kind);
    if !access::allowed(user, &tenant.namespace, permission).await.map_err(user_error)? {
        return Err(Error::denied(format!(
            "{} may not {} {} in namespace {}",
            tenant.username, permission.verb, permission.resource, tenant.namespace
        )));
    }
    let instance_id = plan.instance_id.as_str();
    let parameters: Map<String, Value> = match action {
        Action::Stop => [("state".to_owned(), json!("stopped"))].into_iter().collect(),
        Action::Start => [("state".to_owned(), json!("running"))].into_iter().collect(),
        Action::Restart => [("restart".to_owned(), json!(restart_token()))].into_iter().collect(),
        Action::Scale(replicas) => [("replicas".to_owned(), json!(replicas))].into_iter().collect(),
        Action::Autoscale(Autoscale { min, max, cpu_percent }) => {
            let autoscale = json!({ "min": min, "max": max, "cpu_percent": cpu_percent });
            [("autoscale".to_owned(), autoscale)].into_iter().collect()
        }
        Action::StopAutoscaling => [("autoscale".to_owned(), Value::Null)].into_iter().collect(),
        Action::Delete => {
            lifecycle.deprovision(instance_id, &plan.service_id, &plan.plan_id, true).await?;
            tracing::info!(instance_id, user = %tenant.username, "workload instance deleted from the dashboard");
            return Ok(Acted::Started);
        }
    };
    let request =
        UpdateRequest { service_id: plan.service_id.clone(), parameters: Some(parameters), ..UpdateRequest::default() };
    let _ = lifecycle.update(instance_id, request, None, true).await?;
    tracing::info!(instance_id, user = %tenant.username, ?action, "workload instance updated from the dashboard");
    Ok(Acted::Started)
}

/// The workload plan instance (of `ids`, those placed in this virtual cluster) an app's labels point at: the
/// broker's labels naming it. A tenant who copies those labels onto an app of its own only reaches that same instance
/// of its own cluster, which it may change anyway.
fn plan_of<'a>(labels: &BTreeMap<String, String>, mut ids: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    if labels.get(LABEL_MANAGED_BY).map(String::as_str) != Some(MANAGED_BY) {
        return None;
    }
    let instance = labels.get(LABEL_INSTANCE)?;
    ids.find(|id| &names::label_value(id) == instance)
}

fn cpu_target(hpa: &HorizontalPodAutoscaler) -> Option<i32> {
    hpa.spec.metrics.as_ref()?.iter().find_map(|metric| {
        let resource = metric.resource.as_ref().filter(|r| r.name == "cpu")?;
        resource.target.average_utilization
    })
}

/// Now, as `kubectl rollout restart` writes it: a new value every time.
fn restart_token() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// An action on an app the tenant made, with the tenant's own client.
async fn act_as_user(user: &Client, namespace: &str, kind: Controller, name: &str, action: Action) -> Result<()> {
    let params = PatchParams::default();
    let merge = |patch: Value| async move {
        match kind {
            Controller::Deployment => Api::<Deployment>::namespaced(user.clone(), namespace)
                .patch(name, &params, &Patch::Merge(patch))
                .await
                .map(|_| ()),
            Controller::StatefulSet => Api::<StatefulSet>::namespaced(user.clone(), namespace)
                .patch(name, &params, &Patch::Merge(patch))
                .await
                .map(|_| ()),
        }
        .map_err(user_error)
    };
    let autoscalers = Api::<HorizontalPodAutoscaler>::namespaced(user.clone(), namespace);
    match action {
        Action::Stop => {
            let current = replicas(user, namespace, kind, name).await?;
            if current == 0 {
                return Ok(());
            }
            merge(json!({
                "metadata": { "annotations": { ANNOTATION_REPLICAS_BEFORE_STOP: current.to_string() } },
                "spec": { "replicas": 0 }
            }))
            .await
        }
        Action::Start => {
            let annotations = annotations(user, namespace, kind, name).await?;
            let before = annotations.get(ANNOTATION_REPLICAS_BEFORE_STOP).and_then(|n| n.parse::<i32>().ok());
            let replicas = before.filter(|n| (1..=MAX_REPLICAS).contains(n)).unwrap_or(1);
            merge(json!({
                "metadata": { "annotations": { ANNOTATION_REPLICAS_BEFORE_STOP: null } },
                "spec": { "replicas": replicas }
            }))
            .await
        }
        Action::Restart => {
            merge(json!({ "spec": { "template": { "metadata": { "annotations": {
                ANNOTATION_RESTARTED_AT: restart_token()
            } } } } }))
            .await
        }
        Action::Scale(replicas) => {
            if autoscalers.get_opt(name).await.map_err(user_error)?.is_some() {
                return Err(Error::Conflict(format!(
                    "{name} is autoscaled: change its autoscaler or stop autoscaling to set the number of pods"
                )));
            }
            merge(json!({
                "metadata": { "annotations": { ANNOTATION_REPLICAS_BEFORE_STOP: null } },
                "spec": { "replicas": replicas }
            }))
            .await
        }
        Action::Autoscale(autoscale) => {
            let hpa = autoscaler(namespace, kind, name, &autoscale);
            let apply = PatchParams::apply(FIELD_MANAGER).force();
            autoscalers.patch(name, &apply, &Patch::Apply(&hpa)).await.map(|_| ()).map_err(user_error)
        }
        Action::StopAutoscaling => match autoscalers.delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(error) if crate::k8s::is_not_found(&error) => Ok(()),
            Err(error) => Err(user_error(error)),
        },
        Action::Delete => {
            let background =
                DeleteParams { propagation_policy: Some(PropagationPolicy::Background), ..Default::default() };
            match kind {
                Controller::Deployment => {
                    Api::<Deployment>::namespaced(user.clone(), namespace).delete(name, &background).await.map(|_| ())
                }
                Controller::StatefulSet => {
                    Api::<StatefulSet>::namespaced(user.clone(), namespace).delete(name, &background).await.map(|_| ())
                }
            }
            .map_err(user_error)?;
            // Its autoscaler would otherwise point at nothing; one the user may not delete stays (it harms nothing).
            match autoscalers.get_opt(name).await {
                Ok(Some(hpa)) if hpa.spec.scale_target_ref.name == name => {
                    if let Err(error) = autoscalers.delete(name, &DeleteParams::default()).await {
                        tracing::info!(%error, name, "the deleted app's autoscaler stays");
                    }
                }
                _ => {}
            }
            Ok(())
        }
    }
}

async fn object_meta(
    user: &Client,
    namespace: &str,
    kind: Controller,
    name: &str,
) -> Result<(k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, i32)> {
    match kind {
        Controller::Deployment => Api::<Deployment>::namespaced(user.clone(), namespace)
            .get(name)
            .await
            .map(|d| (d.metadata, d.spec.and_then(|s| s.replicas).unwrap_or(1))),
        Controller::StatefulSet => Api::<StatefulSet>::namespaced(user.clone(), namespace)
            .get(name)
            .await
            .map(|s| (s.metadata, s.spec.and_then(|s| s.replicas).unwrap_or(1))),
    }
    .map_err(user_error)
}

async fn replicas(user: &Client, namespace: &str, kind: Controller, name: &str) -> Result<i32> {
    object_meta(user, namespace, kind, name).await.map(|(_, replicas)| replicas)
}

async fn annotations(user: &Client, namespace: &str, kind: Controller, name: &str) -> Result<BTreeMap<String, String>> {
    object_meta(user, namespace, kind, name).await.map(|(meta, _)| meta.annotations.unwrap_or_default())
}

/// The autoscaler a user asks for: named after its app, CPU utilisation against the pods' requests.
fn autoscaler(namespace: &str, kind: Controller, name: &str, autoscale: &Autoscale) -> Value {
    json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": { "name": name, "namespace": namespace },
        "spec": {
            "scaleTargetRef": { "apiVersion": "apps/v1", "kind": kind.kind(), "name": name },
            "minReplicas": autoscale.min,
            "maxReplicas": autoscale.max,
            "metrics": [{ "type": "Resource", "resource": {
                "name": "cpu", "target": { "type": "Utilization", "averageUtilization": autoscale.cpu_percent }
            } }]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_autoscalers_state_is_its_range_target_measure_and_replicas() {
        let hpa: HorizontalPodAutoscaler = serde_json::from_value(json!({
            "metadata": { "name": "web" },
            "spec": { "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "web" },
                      "minReplicas": 1, "maxReplicas": 4,
                      "metrics": [{ "type": "Resource", "resource": { "name": "cpu",
                                    "target": { "type": "Utilization", "averageUtilization": 50 } } }] },
            "status": { "currentReplicas": 2, "desiredReplicas": 3,
                        "currentMetrics": [{ "type": "Resource", "resource": { "name": "cpu",
                                             "current": { "averageUtilization": 87, "averageValue": "87m" } } }],
                        "conditions": [{ "type": "ScalingActive", "status": "True" }] }
        }))
        .expect("autoscaler");
        let state = AutoscalerState::of(&hpa);
        assert_eq!(
            state,
            AutoscalerState {
                name: "web".into(),
                target_kind: "Deployment".into(),
                target: "web".into(),
                min: 1,
                max: 4,
                target_cpu_percent: Some(50),
                current_cpu_percent: Some(87),
                current_replicas: 2,
                desired_replicas: 3,
                scaling_active: Some(true),
            }
        );
        let mut fresh = hpa;
        fresh.status = None;
        let fresh = AutoscalerState::of(&fresh);
        assert_eq!((fresh.current_cpu_percent, fresh.scaling_active), (None, None), "not measured yet: not zero");
    }

    #[test]
    fn numbers_a_user_types_are_checked_before_anything_is_sent() {
        assert!(Action::Scale(0).validate().is_ok() && Action::Scale(MAX_REPLICAS).validate().is_ok());
        assert!(matches!(Action::Scale(-1).validate(), Err(Error::BadRequest(_))));
        assert!(matches!(Action::Scale(MAX_REPLICAS + 1).validate(), Err(Error::BadRequest(_))));
        let autoscale = |min, max, cpu_percent| Action::Autoscale(Autoscale { min, max, cpu_percent });
        assert!(autoscale(1, 3, 70).validate().is_ok());
        for wrong in [autoscale(0, 3, 70), autoscale(4, 3, 70), autoscale(1, 51, 70), autoscale(1, 3, 0)] {
            assert!(matches!(wrong.validate(), Err(Error::BadRequest(_))), "{wrong:?}");
        }
    }

    #[test]
    fn each_action_asks_for_the_permission_it_uses() {
        let of = |action: Action, kind| action.permission(kind);
        assert_eq!(of(Action::Stop, Controller::Deployment).verb, "patch");
        assert_eq!(of(Action::Delete, Controller::StatefulSet).resource, "statefulsets");
        assert_eq!(of(Action::Delete, Controller::StatefulSet).verb, "delete");
        assert_eq!(of(Action::StopAutoscaling, Controller::Deployment).resource, "horizontalpodautoscalers");
        assert_eq!(Controller::from_resource("deployments"), Some(Controller::Deployment));
        assert_eq!(Controller::from_resource("pods"), None);
    }

    #[test]
    fn an_app_belongs_to_a_plan_only_by_the_brokers_labels_of_an_instance_in_this_cluster() {
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
        };
        let ids = || ["app-1", "a b"].into_iter();
        let ours = labels(&[(LABEL_MANAGED_BY, MANAGED_BY), (LABEL_INSTANCE, "app-1")]);
        assert_eq!(plan_of(&ours, ids()), Some("app-1"));
        let hashed = labels(&[(LABEL_MANAGED_BY, MANAGED_BY), (LABEL_INSTANCE, &names::label_value("a b"))]);
        assert_eq!(plan_of(&hashed, ids()), Some("a b"), "ids that are no label value are hashed");
        assert_eq!(plan_of(&labels(&[(LABEL_INSTANCE, "app-1")]), ids()), None, "not made by the broker");
        let other = labels(&[(LABEL_MANAGED_BY, MANAGED_BY), (LABEL_INSTANCE, "app-2")]);
        assert_eq!(plan_of(&other, ids()), None, "no such workload in this cluster");
    }
}
