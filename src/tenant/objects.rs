//! What runs in a virtual cluster, kind by kind, as one of its identities sees it: Deployments, StatefulSets,
//! ReplicaSets, pods, Services, Ingresses and volume claims, each as rows of status, ready/desired, restarts, age and
//! images, and one object as YAML (events are a timeline of their own: [`super::timeline`]). Every read is made with
//! the identity's own client, so Kubernetes' RBAC decides; a kind it may not list is [`Section::NotAllowed`], not a
//! failure of the whole view.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Event, PersistentVolumeClaim, Pod, PodSpec, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::{Api, Client};
use serde::de::DeserializeOwned;

use crate::k8s::access::{self, Permission};
use crate::k8s::names;
use crate::lifecycle::{Error, Result};

/// The kinds of object the workloads view shows and the live view watches, by their API resource name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// apps/v1 Deployments.
    Deployments,
    /// apps/v1 StatefulSets.
    StatefulSets,
    /// apps/v1 ReplicaSets.
    ReplicaSets,
    /// v1 Pods.
    Pods,
    /// v1 Services.
    Services,
    /// networking.k8s.io/v1 Ingresses.
    Ingresses,
    /// v1 PersistentVolumeClaims.
    PersistentVolumeClaims,
    /// v1 Events.
    Events,
}

impl Kind {
    /// Every kind, in the order the view shows them.
    pub const ALL: [Kind; 8] = [
        Kind::Deployments,
        Kind::StatefulSets,
        Kind::ReplicaSets,
        Kind::Pods,
        Kind::Services,
        Kind::Ingresses,
        Kind::PersistentVolumeClaims,
        Kind::Events,
    ];

    /// The API resource name (`pods`): in URLs, in live events' names and in access reviews.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Deployments => "deployments",
            Kind::StatefulSets => "statefulsets",
            Kind::ReplicaSets => "replicasets",
            Kind::Pods => "pods",
            Kind::Services => "services",
            Kind::Ingresses => "ingresses",
            Kind::PersistentVolumeClaims => "persistentvolumeclaims",
            Kind::Events => "events",
        }
    }

    /// The kind named `name` (an API resource name), if the view shows it.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// Group, version, kind and plural, for requests that name the kind at run time (watches, one object's YAML).
    pub fn api_resource(self) -> ApiResource {
        match self {
            Kind::Deployments => ApiResource::erase::<Deployment>(&()),
            Kind::StatefulSets => ApiResource::erase::<StatefulSet>(&()),
            Kind::ReplicaSets => ApiResource::erase::<ReplicaSet>(&()),
            Kind::Pods => ApiResource::erase::<Pod>(&()),
            Kind::Services => ApiResource::erase::<Service>(&()),
            Kind::Ingresses => ApiResource::erase::<Ingress>(&()),
            Kind::PersistentVolumeClaims => ApiResource::erase::<PersistentVolumeClaim>(&()),
            Kind::Events => ApiResource::erase::<Event>(&()),
        }
    }
}

/// One object as a row of the view.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row {
    /// Its name.
    pub name: String,
    /// Its state in a word or two (`Running`, `CrashLoopBackOff`, `Bound`, ...).
    pub status: String,
    /// Ready of desired (`2/3`), empty where it means nothing.
    pub ready: String,
    /// Container restarts, empty where it means nothing.
    pub restarts: String,
    /// How long ago it was made.
    pub age: String,
    /// Images, addresses or hosts.
    pub detail: String,
    /// Whether it has a YAML view of its own.
    pub has_yaml: bool,
}

/// What the identity sees of one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Section {
    /// The objects, by name.
    Listed(Vec<Row>),
    /// Kubernetes refused to list this kind to the identity.
    NotAllowed,
}

/// Reads every kind of `namespace` shown as rows (all but events) with `client` (the identity's own), at once.
pub async fn read_all(client: &Client, namespace: &str) -> Result<Vec<(Kind, Section)>> {
    let now = jiff::Timestamp::now();
    let kinds: Vec<Kind> = Kind::ALL.into_iter().filter(|kind| *kind != Kind::Events).collect();
    let sections = futures::future::try_join_all(kinds.iter().map(|&kind| read_section(client, namespace, kind, now)));
    Ok(kinds.into_iter().zip(sections.await?).collect())
}

/// Reads the objects of one kind of `namespace` with `client` (the identity's own); `now` dates their age. Events
/// are no rows (see [`super::timeline`]): their section is empty.
pub async fn read_section(client: &Client, namespace: &str, kind: Kind, now: jiff::Timestamp) -> Result<Section> {
    let listed = match kind {
        Kind::Deployments => rows(client, namespace, |d: &Deployment| deployment_row(d, now)).await,
        Kind::StatefulSets => rows(client, namespace, |s: &StatefulSet| stateful_set_row(s, now)).await,
        Kind::ReplicaSets => rows(client, namespace, |r: &ReplicaSet| replica_set_row(r, now)).await,
        Kind::Pods => rows(client, namespace, |p: &Pod| pod_row(p, now)).await,
        Kind::Services => rows(client, namespace, |s: &Service| service_row(s, now)).await,
        Kind::Ingresses => rows(client, namespace, |i: &Ingress| ingress_row(i, now)).await,
        Kind::PersistentVolumeClaims => rows(client, namespace, |c: &PersistentVolumeClaim| claim_row(c, now)).await,
        Kind::Events => Ok(Vec::new()),
    };
    match listed {
        Ok(rows) => Ok(Section::Listed(rows)),
        Err(kube::Error::Api(status)) if status.code == 403 => Ok(Section::NotAllowed),
        Err(error) => Err(error.into()),
    }
}

async fn rows<K>(client: &Client, namespace: &str, row: impl Fn(&K) -> Row) -> Result<Vec<Row>, kube::Error>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let listed = Api::<K>::namespaced(client.clone(), namespace).list(&ListParams::default()).await?;
    let mut rows: Vec<Row> = listed.items.iter().map(row).collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}

/// Whether the identity of `client` may list and watch `kind` in `namespace`, as Kubernetes decides (a
/// SelfSubjectAccessReview made with that client): what the live view asks before telling it anything.
pub async fn may_watch(client: &Client, namespace: &str, kind: Kind) -> Result<bool> {
    let (group, resource) = (kind.api_resource().group, kind.as_str());
    for verb in ["list", "watch"] {
        if !access::allowed(client, namespace, Permission { verb, group: &group, resource }).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// One object of `kind` in `namespace` as YAML, read with `client` (the identity's own), without its managed fields
/// (bookkeeping of who set what, longer than the object). `None` when there is no such object or Kubernetes refuses
/// to show it, alike, so that a page does not tell what exists where one may not look.
pub async fn object_yaml(client: &Client, namespace: &str, kind: Kind, name: &str) -> Result<Option<String>> {
    if kind == Kind::Events || !names::is_object_name(name) {
        return Ok(None);
    }
    let api = Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &kind.api_resource());
    let mut object = match api.get_opt(name).await {
        Ok(Some(object)) => object,
        Ok(None) => return Ok(None),
        Err(kube::Error::Api(status)) if status.code == 403 => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    object.metadata.managed_fields = None;
    serde_norway::to_string(&object).map(Some).map_err(|error| Error::internal(format!("YAML of {name}: {error}")))
}

fn base_row(metadata: &ObjectMeta, now: jiff::Timestamp) -> Row {
    Row {
        name: metadata.name.clone().unwrap_or_default(),
        age: age(metadata.creation_timestamp.as_ref(), now),
        has_yaml: true,
        ..Row::default()
    }
}

fn images(spec: Option<&PodSpec>) -> String {
    let containers = spec.map(|spec| spec.containers.as_slice()).unwrap_or_default();
    containers.iter().filter_map(|container| container.image.as_deref()).collect::<Vec<_>>().join(", ")
}

/// A controller's row: ready of desired, and whether it got there.
fn controller_row(
    metadata: &ObjectMeta,
    now: jiff::Timestamp,
    ready: i32,
    desired: i32,
    spec: Option<&PodSpec>,
) -> Row {
    let status = if ready >= desired { "Ready" } else { "Progressing" };
    Row {
        status: status.to_owned(),
        ready: format!("{ready}/{desired}"),
        detail: images(spec),
        ..base_row(metadata, now)
    }
}

fn deployment_row(deployment: &Deployment, now: jiff::Timestamp) -> Row {
    let spec = deployment.spec.as_ref();
    let desired = spec.and_then(|spec| spec.replicas).unwrap_or(1);
    let ready = deployment.status.as_ref().and_then(|status| status.ready_replicas).unwrap_or(0);
    let mut row =
        controller_row(&deployment.metadata, now, ready, desired, spec.and_then(|s| s.template.spec.as_ref()));
    let failing = deployment.status.iter().flat_map(|status| status.conditions.iter().flatten()).find(|condition| {
        (condition.type_ == "Progressing" || condition.type_ == "ReplicaFailure")
            && condition.status == if condition.type_ == "Progressing" { "False" } else { "True" }
    });
    if let Some(condition) = failing {
        row.status = condition.reason.clone().unwrap_or_else(|| condition.type_.clone());
    }
    row
}

fn stateful_set_row(set: &StatefulSet, now: jiff::Timestamp) -> Row {
    let spec = set.spec.as_ref();
    let desired = spec.and_then(|spec| spec.replicas).unwrap_or(1);
    let ready = set.status.as_ref().and_then(|status| status.ready_replicas).unwrap_or(0);
    controller_row(&set.metadata, now, ready, desired, spec.and_then(|s| s.template.spec.as_ref()))
}

fn replica_set_row(set: &ReplicaSet, now: jiff::Timestamp) -> Row {
    let spec = set.spec.as_ref();
    let desired = spec.and_then(|spec| spec.replicas).unwrap_or(1);
    let ready = set.status.as_ref().and_then(|status| status.ready_replicas).unwrap_or(0);
    let template = spec.and_then(|s| s.template.as_ref()).and_then(|t| t.spec.as_ref());
    controller_row(&set.metadata, now, ready, desired, template)
}

fn pod_row(pod: &Pod, now: jiff::Timestamp) -> Row {
    let status = pod.status.as_ref();
    let containers = status.and_then(|status| status.container_statuses.as_deref()).unwrap_or_default();
    let desired = pod.spec.as_ref().map_or(containers.len(), |spec| spec.containers.len());
    let ready = containers.iter().filter(|container| container.ready).count();
    let restarts: i32 = containers.iter().map(|container| container.restart_count).sum();
    let waiting =
        containers.iter().filter_map(|container| container.state.as_ref()?.waiting.as_ref()?.reason.clone()).next();
    let phase = status.and_then(|status| status.phase.clone()).unwrap_or_else(|| "Unknown".to_owned());
    let status = match (&pod.metadata.deletion_timestamp, waiting) {
        (Some(_), _) => "Terminating".to_owned(),
        (None, Some(reason)) => reason,
        (None, None) => phase,
    };
    Row {
        status,
        ready: format!("{ready}/{desired}"),
        restarts: restarts.to_string(),
        detail: images(pod.spec.as_ref()),
        ..base_row(&pod.metadata, now)
    }
}

fn service_row(service: &Service, now: jiff::Timestamp) -> Row {
    let spec = service.spec.as_ref();
    let ports = spec.and_then(|spec| spec.ports.as_deref()).unwrap_or_default();
    let ports: Vec<String> =
        ports.iter().map(|port| format!("{}/{}", port.port, port.protocol.as_deref().unwrap_or("TCP"))).collect();
    let address = spec.and_then(|spec| spec.cluster_ip.clone()).unwrap_or_default();
    Row {
        status: spec.and_then(|spec| spec.type_.clone()).unwrap_or_else(|| "ClusterIP".to_owned()),
        detail: format!("{address} {}", ports.join(", ")).trim().to_owned(),
        ..base_row(&service.metadata, now)
    }
}

fn ingress_row(ingress: &Ingress, now: jiff::Timestamp) -> Row {
    let rules = ingress.spec.as_ref().and_then(|spec| spec.rules.as_deref()).unwrap_or_default();
    let hosts: Vec<&str> = rules.iter().filter_map(|rule| rule.host.as_deref()).collect();
    let addresses = ingress.status.as_ref().and_then(|s| s.load_balancer.as_ref()?.ingress.as_ref());
    let status = if addresses.is_some_and(|a| !a.is_empty()) { "Ready" } else { "Pending" };
    Row { status: status.to_owned(), detail: hosts.join(", "), ..base_row(&ingress.metadata, now) }
}

fn claim_row(claim: &PersistentVolumeClaim, now: jiff::Timestamp) -> Row {
    let status = claim.status.as_ref();
    let capacity: BTreeMap<_, _> = status.and_then(|status| status.capacity.clone()).unwrap_or_default();
    let class = claim.spec.as_ref().and_then(|spec| spec.storage_class_name.clone()).unwrap_or_default();
    let size = capacity.get("storage").map(|quantity| quantity.0.clone()).unwrap_or_default();
    Row {
        status: status.and_then(|status| status.phase.clone()).unwrap_or_else(|| "Pending".to_owned()),
        detail: format!("{size} {class}").trim().to_owned(),
        ..base_row(&claim.metadata, now)
    }
}

/// How long ago `since` was, in the largest whole unit (`42s`, `5m`, `3h`, `12d`), as kubectl shows it.
pub fn age(since: Option<&Time>, now: jiff::Timestamp) -> String {
    let Some(since) = since else { return "-".to_owned() };
    let seconds = now.as_second().saturating_sub(since.0.as_second()).max(0);
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m", seconds / 60),
        3600..86400 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_kubectls() {
        let now = jiff::Timestamp::from_second(1_000_000).expect("now");
        let at = |seconds_ago: i64| Time(jiff::Timestamp::from_second(1_000_000 - seconds_ago).expect("then"));
        assert_eq!(age(Some(&at(42)), now), "42s");
        assert_eq!(age(Some(&at(5 * 60 + 3)), now), "5m");
        assert_eq!(age(Some(&at(3 * 3600)), now), "3h");
        assert_eq!(age(Some(&at(12 * 86400)), now), "12d");
        assert_eq!(age(None, now), "-");
    }
}
