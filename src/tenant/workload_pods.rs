//! The pods of a workload (a Deployment's, StatefulSet's or ReplicaSet's), found as the signed-in user by the
//! workload's own selector: whose logs the dashboard shows together.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::ListParams;
use kube::core::Selector;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

use super::objects::Kind;

/// Most pods of one workload read together: each is a request to the apiserver (and, followed, a connection held).
pub const MAX_PODS: usize = 10;

/// A workload's pods, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadPods {
    /// The first [`MAX_PODS`] pods' names and their first container's name.
    pub pods: Vec<(String, String)>,
    /// How many pods the workload has in all.
    pub total: usize,
}

/// Whether `kind` has pods of its own whose logs can be read together.
pub fn has_pods(kind: Kind) -> bool {
    matches!(kind, Kind::Deployments | Kind::StatefulSets | Kind::ReplicaSets)
}

/// The pods of the workload `name` of `kind` in `namespace`, read as the user of `client`; `None` when it is not a
/// workload with pods ([`has_pods`]), does not exist, selects nothing it could own, or the user may not read it.
pub async fn pods_of(
    client: &Client,
    namespace: &str,
    kind: Kind,
    name: &str,
) -> Result<Option<WorkloadPods>, kube::Error> {
    if !crate::k8s::names::is_object_name(name) {
        return Ok(None);
    }
    let selector = match kind {
        Kind::Deployments => selector_of::<Deployment>(client, namespace, name, |d| d.spec.map(|s| s.selector)).await,
        Kind::StatefulSets => selector_of::<StatefulSet>(client, namespace, name, |s| s.spec.map(|s| s.selector)).await,
        Kind::ReplicaSets => selector_of::<ReplicaSet>(client, namespace, name, |r| r.spec.map(|s| s.selector)).await,
        _ => return Ok(None),
    };
    let Some(selector) = forbidden_as_none(selector)?.flatten() else { return Ok(None) };
    // A selector that selects every pod is no workload's own (apps/v1 refuses one): nothing is shown for it.
    let Some(selector) = Selector::try_from(selector).ok().filter(|selector| !selector.selects_all()) else {
        return Ok(None);
    };
    let (pods, params) =
        (Api::<Pod>::namespaced(client.clone(), namespace), ListParams::default().labels_from(&selector));
    let Some(listed) = forbidden_as_none(pods.list(&params).await)? else { return Ok(None) };
    let mut pods = listed.items;
    pods.sort_by(|a, b| {
        let key = |pod: &Pod| (pod.metadata.creation_timestamp.clone().map(|t| t.0), pod.metadata.name.clone());
        key(a).cmp(&key(b))
    });
    let total = pods.len();
    let pods = pods
        .into_iter()
        .filter_map(|pod| {
            let container = pod.spec?.containers.first()?.name.clone();
            Some((pod.metadata.name?, container))
        })
        .take(MAX_PODS)
        .collect();
    Ok(Some(WorkloadPods { pods, total }))
}

/// The selector of the workload `name` of type `K`, if it exists.
async fn selector_of<K>(
    client: &Client,
    namespace: &str,
    name: &str,
    selector: impl FnOnce(K) -> Option<LabelSelector>,
) -> Result<Option<LabelSelector>, kube::Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    Ok(Api::<K>::namespaced(client.clone(), namespace).get_opt(name).await?.and_then(selector))
}

/// What the user may not read, as nothing: a workload they may not see is one that does not exist to them.
fn forbidden_as_none<T>(answer: Result<T, kube::Error>) -> Result<Option<T>, kube::Error> {
    match answer {
        Ok(found) => Ok(Some(found)),
        Err(kube::Error::Api(status)) if status.code == 403 => Ok(None),
        Err(error) => Err(error),
    }
}
