//! How a namespace's objects relate, as the identity sees them: Ingress → Service (its backends), Service → pods (its
//! selector), Deployment → ReplicaSet → pods and StatefulSet → pods (owner references), pod → claim (a volume),
//! claim → volume, autoscaler → its target. [`relate`] computes it from listed objects alone; [`read`] lists them
//! with the identity's own client, leaving out the kinds Kubernetes does not let it list.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::ListParams;
use kube::{Api, Client};
use serde::de::DeserializeOwned;

use super::objects::Kind;
use crate::lifecycle::Result;

/// Most objects on a map: more is no longer readable.
pub const MAX_NODES: usize = 150;

/// What an object on the map is, in the order of the map's columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeKind {
    /// An Ingress: the way in from outside.
    Ingress,
    /// A Service.
    Service,
    /// A pod.
    Pod,
    /// A ReplicaSet.
    ReplicaSet,
    /// A StatefulSet.
    StatefulSet,
    /// A Deployment.
    Deployment,
    /// A HorizontalPodAutoscaler.
    Autoscaler,
    /// A PersistentVolumeClaim.
    Claim,
    /// The PersistentVolume a claim is bound to (cluster-wide: known by name only).
    Volume,
}

impl NodeKind {
    /// The kind as Kubernetes names it (`Ingress`, `PersistentVolumeClaim`).
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Ingress => "Ingress",
            NodeKind::Service => "Service",
            NodeKind::Pod => "Pod",
            NodeKind::ReplicaSet => "ReplicaSet",
            NodeKind::StatefulSet => "StatefulSet",
            NodeKind::Deployment => "Deployment",
            NodeKind::Autoscaler => "HorizontalPodAutoscaler",
            NodeKind::Claim => "PersistentVolumeClaim",
            NodeKind::Volume => "PersistentVolume",
        }
    }

    /// The dashboard kind whose view shows it, if there is one.
    pub fn view(self) -> Option<Kind> {
        Some(match self {
            NodeKind::Ingress => Kind::Ingresses,
            NodeKind::Service => Kind::Services,
            NodeKind::Pod => Kind::Pods,
            NodeKind::ReplicaSet => Kind::ReplicaSets,
            NodeKind::StatefulSet => Kind::StatefulSets,
            NodeKind::Deployment => Kind::Deployments,
            NodeKind::Claim => Kind::PersistentVolumeClaims,
            NodeKind::Autoscaler | NodeKind::Volume => return None,
        })
    }

    fn parse(kind: &str) -> Option<NodeKind> {
        [NodeKind::ReplicaSet, NodeKind::StatefulSet, NodeKind::Deployment].into_iter().find(|k| k.as_str() == kind)
    }
}

/// How one object relates to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Relation {
    /// An Ingress sends requests to a Service.
    RoutesTo,
    /// A Service sends requests to the pods its selector picks.
    Selects,
    /// An owner made (and manages) the object: Deployment → ReplicaSet → pod, StatefulSet → pod.
    Owns,
    /// A pod mounts a claim.
    Mounts,
    /// A claim is bound to a volume.
    BoundTo,
    /// An autoscaler scales its target.
    Scales,
}

/// One object on the map.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Node {
    /// What it is.
    pub kind: NodeKind,
    /// Its name.
    pub name: String,
}

/// One relation: `from` and `to` index [`Map::nodes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edge {
    /// The object the relation starts at.
    pub from: usize,
    /// The one it leads to.
    pub to: usize,
    /// How they relate.
    pub relation: Relation,
}

/// A namespace's objects and how they relate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Map {
    /// The objects, kind by kind (in [`NodeKind`]'s order), by name.
    pub nodes: Vec<Node>,
    /// The relations among them.
    pub edges: Vec<Edge>,
    /// Whether there were more than [`MAX_NODES`] objects, so some are left out.
    pub cut: bool,
    /// The kinds Kubernetes did not let the identity list.
    pub left_out: Vec<NodeKind>,
}

/// The objects a map is made of, as listed.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Ingresses.
    pub ingresses: Vec<Ingress>,
    /// Services.
    pub services: Vec<Service>,
    /// Pods.
    pub pods: Vec<Pod>,
    /// ReplicaSets.
    pub replica_sets: Vec<ReplicaSet>,
    /// StatefulSets.
    pub stateful_sets: Vec<StatefulSet>,
    /// Deployments.
    pub deployments: Vec<Deployment>,
    /// HorizontalPodAutoscalers.
    pub autoscalers: Vec<HorizontalPodAutoscaler>,
    /// PersistentVolumeClaims.
    pub claims: Vec<PersistentVolumeClaim>,
    /// The kinds the identity may not list.
    pub left_out: Vec<NodeKind>,
}

/// Lists what a map of `namespace` is made of with `client` (the identity's own) and relates it.
pub async fn read(client: &Client, namespace: &str) -> Result<Map> {
    let mut left_out = Vec::new();
    let (ingresses, services, pods, replica_sets, stateful_sets, deployments, autoscalers, claims) = tokio::try_join!(
        list::<Ingress>(client, namespace),
        list::<Service>(client, namespace),
        list::<Pod>(client, namespace),
        list::<ReplicaSet>(client, namespace),
        list::<StatefulSet>(client, namespace),
        list::<Deployment>(client, namespace),
        list::<HorizontalPodAutoscaler>(client, namespace),
        list::<PersistentVolumeClaim>(client, namespace),
    )?;
    let observed = Observed {
        ingresses: or_left_out(&mut left_out, NodeKind::Ingress, ingresses),
        services: or_left_out(&mut left_out, NodeKind::Service, services),
        pods: or_left_out(&mut left_out, NodeKind::Pod, pods),
        replica_sets: or_left_out(&mut left_out, NodeKind::ReplicaSet, replica_sets),
        stateful_sets: or_left_out(&mut left_out, NodeKind::StatefulSet, stateful_sets),
        deployments: or_left_out(&mut left_out, NodeKind::Deployment, deployments),
        autoscalers: or_left_out(&mut left_out, NodeKind::Autoscaler, autoscalers),
        claims: or_left_out(&mut left_out, NodeKind::Claim, claims),
        left_out: Vec::new(),
    };
    Ok(relate(&Observed { left_out, ..observed }))
}

/// The objects listed, or none with `kind` noted in `left_out` when they could not be.
fn or_left_out<T>(left_out: &mut Vec<NodeKind>, kind: NodeKind, listed: Option<Vec<T>>) -> Vec<T> {
    listed.unwrap_or_else(|| {
        left_out.push(kind);
        Vec::new()
    })
}

/// The objects of kind `K` in `namespace`, or `None` when Kubernetes refuses to list them to the identity.
async fn list<K>(client: &Client, namespace: &str) -> Result<Option<Vec<K>>>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    match Api::<K>::namespaced(client.clone(), namespace).list(&ListParams::default()).await {
        Ok(listed) => Ok(Some(listed.items)),
        Err(kube::Error::Api(status)) if status.code == 403 => Ok(None),
        Err(error) => Err(error.into()),
    }
}

fn name(metadata: &ObjectMeta) -> String {
    metadata.name.clone().unwrap_or_default()
}

/// The map of `observed`: at most [`MAX_NODES`] objects (the first kinds first), and the relations among them.
pub fn relate(observed: &Observed) -> Map {
    let mut nodes: Vec<Node> = Vec::new();
    let mut add = |kind: NodeKind, metadata: &ObjectMeta| nodes.push(Node { kind, name: name(metadata) });
    observed.ingresses.iter().for_each(|o| add(NodeKind::Ingress, &o.metadata));
    observed.services.iter().for_each(|o| add(NodeKind::Service, &o.metadata));
    observed.pods.iter().for_each(|o| add(NodeKind::Pod, &o.metadata));
    observed.replica_sets.iter().for_each(|o| add(NodeKind::ReplicaSet, &o.metadata));
    observed.stateful_sets.iter().for_each(|o| add(NodeKind::StatefulSet, &o.metadata));
    observed.deployments.iter().for_each(|o| add(NodeKind::Deployment, &o.metadata));
    observed.autoscalers.iter().for_each(|o| add(NodeKind::Autoscaler, &o.metadata));
    observed.claims.iter().for_each(|o| add(NodeKind::Claim, &o.metadata));
    let volumes = observed.claims.iter().filter_map(|claim| claim.spec.as_ref()?.volume_name.clone());
    nodes.extend(volumes.map(|name| Node { kind: NodeKind::Volume, name }));
    nodes.sort();
    nodes.dedup();
    let cut = nodes.len() > MAX_NODES;
    nodes.truncate(MAX_NODES);

    let at: BTreeMap<(NodeKind, &str), usize> =
        nodes.iter().enumerate().map(|(at, node)| ((node.kind, node.name.as_str()), at)).collect();
    let mut edges = Vec::new();
    let mut link = |from: (NodeKind, &str), to: (NodeKind, &str), relation: Relation| {
        if let (Some(&from), Some(&to)) = (at.get(&from), at.get(&to)) {
            edges.push(Edge { from, to, relation });
        }
    };
    for ingress in &observed.ingresses {
        for service in backends(ingress) {
            link((NodeKind::Ingress, &name(&ingress.metadata)), (NodeKind::Service, service), Relation::RoutesTo);
        }
    }
    for service in &observed.services {
        let selector = service.spec.as_ref().and_then(|spec| spec.selector.as_ref()).filter(|s| !s.is_empty());
        let Some(selector) = selector else { continue };
        for pod in &observed.pods {
            let labels = pod.metadata.labels.as_ref();
            if selector.iter().all(|(key, value)| labels.and_then(|labels| labels.get(key)) == Some(value)) {
                let (from, to) = (name(&service.metadata), name(&pod.metadata));
                link((NodeKind::Service, &from), (NodeKind::Pod, &to), Relation::Selects);
            }
        }
    }
    let owned = [
        observed.replica_sets.iter().map(|o| (NodeKind::ReplicaSet, &o.metadata)).collect::<Vec<_>>(),
        observed.pods.iter().map(|o| (NodeKind::Pod, &o.metadata)).collect(),
    ];
    for (kind, metadata) in owned.iter().flatten() {
        for owner in metadata.owner_references.iter().flatten() {
            let Some(owner_kind) = NodeKind::parse(&owner.kind) else { continue };
            link((owner_kind, &owner.name), (*kind, &name(metadata)), Relation::Owns);
        }
    }
    for pod in &observed.pods {
        let volumes = pod.spec.as_ref().and_then(|spec| spec.volumes.as_ref()).into_iter().flatten();
        for claim in volumes.filter_map(|volume| volume.persistent_volume_claim.as_ref()) {
            link((NodeKind::Pod, &name(&pod.metadata)), (NodeKind::Claim, &claim.claim_name), Relation::Mounts);
        }
    }
    for claim in &observed.claims {
        if let Some(volume) = claim.spec.as_ref().and_then(|spec| spec.volume_name.as_deref()) {
            link((NodeKind::Claim, &name(&claim.metadata)), (NodeKind::Volume, volume), Relation::BoundTo);
        }
    }
    for autoscaler in &observed.autoscalers {
        let target = &autoscaler.spec.scale_target_ref;
        let Some(target_kind) = NodeKind::parse(&target.kind) else { continue };
        link((NodeKind::Autoscaler, &name(&autoscaler.metadata)), (target_kind, &target.name), Relation::Scales);
    }
    edges.sort();
    edges.dedup();
    Map { nodes, edges, cut, left_out: observed.left_out.clone() }
}

/// The Services an Ingress sends requests to: its default backend's and its rules' paths'.
fn backends(ingress: &Ingress) -> Vec<&str> {
    let spec = ingress.spec.as_ref();
    let default = spec.and_then(|spec| spec.default_backend.as_ref());
    let rules = spec.and_then(|spec| spec.rules.as_ref()).into_iter().flatten();
    let paths =
        rules.filter_map(|rule| rule.http.as_ref()).flat_map(|http| http.paths.iter().map(|path| &path.backend));
    default.into_iter().chain(paths).filter_map(service_of).collect()
}

fn service_of(backend: &IngressBackend) -> Option<&str> {
    backend.service.as_ref().map(|service| service.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn object<T: DeserializeOwned>(value: Value) -> T {
        serde_json::from_value(value).expect("object")
    }

    fn owned_by(kind: &str, name: &str) -> Value {
        let uid = format!("uid-{name}");
        json!([{ "apiVersion": "apps/v1", "kind": kind, "name": name, "uid": uid, "controller": true }])
    }

    fn observed() -> Observed {
        Observed {
            ingresses: vec![object(
                json!({ "metadata": { "name": "web" }, "spec": { "rules": [{ "host": "web.example",
                "http": { "paths": [{ "path": "/", "pathType": "Prefix",
                    "backend": { "service": { "name": "web", "port": { "number": 80 } } } }] } }] } }),
            )],
            services: vec![
                object(json!({ "metadata": { "name": "web" }, "spec": { "selector": { "app": "web" } } })),
                object(json!({ "metadata": { "name": "headless" }, "spec": {} })),
            ],
            pods: vec![
                object(
                    json!({ "metadata": { "name": "web-abc-1", "labels": { "app": "web", "pod-template-hash": "abc" },
                    "ownerReferences": owned_by("ReplicaSet", "web-abc") },
                    "spec": { "containers": [],
                        "volumes": [{ "name": "data", "persistentVolumeClaim": { "claimName": "data" } }] } }),
                ),
                object(json!({ "metadata": { "name": "db-0", "labels": { "app": "db" },
                    "ownerReferences": owned_by("StatefulSet", "db") }, "spec": { "containers": [] } })),
            ],
            replica_sets: vec![object(
                json!({ "metadata": { "name": "web-abc", "ownerReferences": owned_by("Deployment", "web") } }),
            )],
            stateful_sets: vec![object(json!({ "metadata": { "name": "db" },
                "spec": { "selector": {}, "serviceName": "db", "template": {} } }))],
            deployments: vec![object(
                json!({ "metadata": { "name": "web" }, "spec": { "selector": {}, "template": {} } }),
            )],
            autoscalers: vec![object(json!({ "metadata": { "name": "web" },
                "spec": { "maxReplicas": 3,
                    "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "web" } } }))],
            claims: vec![object(json!({ "metadata": { "name": "data" }, "spec": { "volumeName": "pv-1" } }))],
            left_out: vec![],
        }
    }

    fn said(map: &Map) -> Vec<String> {
        let node = |at: usize| format!("{}/{}", map.nodes[at].kind.as_str(), map.nodes[at].name);
        map.edges.iter().map(|edge| format!("{} {:?} {}", node(edge.from), edge.relation, node(edge.to))).collect()
    }

    #[test]
    fn ingress_service_pods_owners_claims_and_autoscalers_are_related() {
        let map = relate(&observed());
        let mut edges = said(&map);
        edges.sort();
        assert_eq!(
            edges,
            [
                "Deployment/web Owns ReplicaSet/web-abc",
                "HorizontalPodAutoscaler/web Scales Deployment/web",
                "Ingress/web RoutesTo Service/web",
                "PersistentVolumeClaim/data BoundTo PersistentVolume/pv-1",
                "Pod/web-abc-1 Mounts PersistentVolumeClaim/data",
                "ReplicaSet/web-abc Owns Pod/web-abc-1",
                "Service/web Selects Pod/web-abc-1",
                "StatefulSet/db Owns Pod/db-0",
            ]
        );
        assert_eq!(map.nodes.len(), 11);
        assert!(!map.cut);
    }

    #[test]
    fn a_kind_left_out_leaves_its_relations_out_and_is_said() {
        let observed = Observed { services: vec![], left_out: vec![NodeKind::Service], ..observed() };
        let map = relate(&observed);
        assert!(said(&map).iter().all(|edge| !edge.contains("Service/")), "{:?}", said(&map));
        assert_eq!(map.left_out, [NodeKind::Service]);
    }

    #[test]
    fn at_most_max_nodes_are_shown_and_the_cut_is_said() {
        let pods = (0..MAX_NODES + 3).map(|i| object(json!({ "metadata": { "name": format!("p{i:03}") } }))).collect();
        let map = relate(&Observed { pods, ..Observed::default() });
        assert_eq!((map.nodes.len(), map.cut), (MAX_NODES, true));
    }
}
