//! The broker's records in the cluster, one [`Repository`] per kind, and the watch-fed copy of them that the reads a
//! platform repeats all the time (`last_operation` polls, fetches, `/metrics`) are answered from: the instances'
//! namespaces, the workload records and the binding records, metadata only (a binding record's credentials are never
//! held in the copy).
//!
//! Decisions (provision, bind, update, deprovision) never read the copy: they read the cluster, and write through the
//! repositories, which note each write so that the copy does not answer for an object until its watch has shown it.
//! An answer the copy makes that the cluster could contradict a moment later (an instance missing, an operation
//! failed) is confirmed by a read of the cluster before it is given.

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::Client;

use crate::k8s::binding::is_binding_state_key;
use crate::k8s::names::{LABEL_MANAGED_BY, MANAGED_BY, is_broker_key};
use crate::k8s::repository::Repository;
use crate::k8s::watched::Watched;

/// The records, one repository per kind, each with its copy.
pub(super) struct Records {
    /// The virtual clusters' namespaces (cluster-wide, the broker's label).
    pub namespaces: Repository<Namespace>,
    /// Workload records: ConfigMaps in the broker's namespace.
    pub workloads: Repository<ConfigMap>,
    /// Binding records: Secrets in the broker's namespace (their metadata only in the copy).
    pub bindings: Repository<Secret>,
}

impl Records {
    pub(super) fn new(client: &Client, broker_namespace: &str) -> Records {
        Records {
            namespaces: Repository::all(client, "namespaces", is_broker_key),
            workloads: Repository::namespaced(client, broker_namespace, "workload_records", is_broker_key),
            bindings: Repository::namespaced(client, broker_namespace, "binding_records", is_binding_state_key),
        }
    }

    /// Starts the copies' watches of the broker's objects (see [`Repository::start`]).
    pub(super) fn start(&self, watch_seconds: u32) {
        let selector = format!("{LABEL_MANAGED_BY}={MANAGED_BY}");
        self.namespaces.start(&selector, watch_seconds);
        self.workloads.start(&selector, watch_seconds);
        self.bindings.start(&selector, watch_seconds);
    }

    /// Every copy, for `/metrics`.
    pub(super) fn all(&self) -> [&Watched; 3] {
        [self.namespaces.copy(), self.workloads.copy(), self.bindings.copy()]
    }
}
