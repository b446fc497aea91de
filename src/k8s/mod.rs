//! The Kubernetes side: names and labels, the typed objects a tenant's virtual cluster is made of, and applying them
//! with server-side apply under the broker's one field manager.

pub mod names;
pub mod virtual_cluster;

use std::fmt::Debug;

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Server-side applies `object` (create or converge), taking ownership of every field it sets.
pub async fn apply<K>(api: &Api<K>, object: &K) -> Result<K, kube::Error>
where
    K: Resource + Serialize + DeserializeOwned + Clone + Debug,
{
    let name = object.meta().name.as_deref().unwrap_or_default();
    api.patch(
        name,
        &PatchParams::apply(names::FIELD_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
}

/// Whether an apiserver error says the object does not exist.
pub fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

/// Whether an apiserver error says the object already exists or changed underneath.
pub fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}
