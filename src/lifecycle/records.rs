//! The broker's watch-fed copy of its own records, which the reads a platform repeats all the time (`last_operation`
//! polls, fetches, `/metrics`) are answered from: the instances' namespaces, the workload records and the binding
//! records, metadata only (a binding record's credentials are never held here).
//!
//! Decisions (provision, bind, update, deprovision) never read the copy: they read the cluster, and the writes they
//! make are noted here so that the copy does not answer for an object until its watch has shown the write. An answer
//! the copy makes that the cluster could contradict a moment later (an instance missing, an operation failed) is
//! confirmed by a read of the cluster before it is given.

use std::sync::Arc;

use either::Either;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::core::PartialObjectMeta;
use kube::core::Status;
use kube::{Api, Client, Resource};

use super::bindings::ANNOTATION_PENDING;
use crate::k8s::binding::ANNOTATION_BINDING_ID;
use crate::k8s::names::{ANNOTATION_INSTANCE_ID, LABEL_MANAGED_BY, MANAGED_BY};
use crate::k8s::watched::{Cached, Kept, Watched};

/// The prefix of every label and annotation key of the broker's.
const BROKER_KEY_PREFIX: &str = "caas-broker.io/";

/// The copies, one per kind of record.
pub(super) struct Records {
    /// The virtual clusters' namespaces (cluster-wide, the broker's label).
    pub namespaces: Watched,
    /// Workload records: ConfigMaps in the broker's namespace.
    pub workloads: Watched,
    /// Binding records: Secrets in the broker's namespace (their metadata only).
    pub bindings: Watched,
}

impl Records {
    pub(super) fn new() -> Records {
        Records {
            namespaces: Watched::new("namespaces", is_broker_key),
            workloads: Watched::new("workload_records", is_broker_key),
            bindings: Watched::new("binding_records", is_binding_state_key),
        }
    }

    /// Starts the watches (see [`Watched::start`]).
    pub(super) fn start(&self, client: &Client, broker_namespace: &str, watch_seconds: u32) {
        let selector = format!("{LABEL_MANAGED_BY}={MANAGED_BY}");
        self.namespaces.start(Api::<PartialObjectMeta<Namespace>>::all(client.clone()), &selector, watch_seconds);
        let configmaps = Api::<PartialObjectMeta<ConfigMap>>::namespaced(client.clone(), broker_namespace);
        self.workloads.start(configmaps, &selector, watch_seconds);
        let secrets = Api::<PartialObjectMeta<Secret>>::namespaced(client.clone(), broker_namespace);
        self.bindings.start(secrets, &selector, watch_seconds);
    }

    /// Every copy, for `/metrics`.
    pub(super) fn all(&self) -> [&Watched; 3] {
        [&self.namespaces, &self.workloads, &self.bindings]
    }
}

/// The broker's own labels and annotations: what an instance record is read from (and counted by).
fn is_broker_key(key: &str) -> bool {
    key.starts_with(BROKER_KEY_PREFIX)
}

/// What a binding's poll needs of its record: whose it is and whether it waits for its workload (not the requested
/// parameters, metadata or endpoints, which only a fetch reads, from the cluster).
fn is_binding_state_key(key: &str) -> bool {
    [ANNOTATION_BINDING_ID, ANNOTATION_INSTANCE_ID, ANNOTATION_PENDING].contains(&key)
}

/// The object's metadata when the copy holds it; `None` when it is absent or the copy cannot answer.
pub(super) fn present(copy: &Watched, name: &str) -> Option<Arc<Kept>> {
    match copy.get(name) {
        Cached::Present(meta) => Some(meta),
        Cached::Absent | Cached::Unknown => None,
    }
}

/// Notes a write of this process in `copy` (see [`Watched::wrote`]).
pub(super) fn wrote<K: Resource>(copy: &Watched, written: &K) {
    copy.wrote(written.meta());
}

/// Notes a delete of this process in `copy`, whatever its outcome (a failed delete only costs reads of the cluster).
pub(super) fn deleting<K: Resource>(copy: &Watched, name: &str, result: &Result<Either<K, Status>, kube::Error>) {
    match result {
        Ok(Either::Left(object)) => copy.wrote(object.meta()),
        _ => copy.deleted(name),
    }
}
