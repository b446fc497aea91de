//! Where each instance on a cluster other than the home lives: one ConfigMap per such instance in the broker's
//! namespace of the home cluster, read through a watch-fed copy. An instance without one lives on the home, which is
//! how instances made before a second cluster was added are found. The record is written before the instance is made
//! there, so an interrupted provision is repeated on the same cluster, and removed once it is gone (or its provision
//! was refused). Recorded rather than searched for: a search cannot tell "gone" from "on a cluster that is down".

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{DeleteParams, PostParams};

use crate::k8s::names::{self, ANNOTATION_INSTANCE_ID, FIELD_MANAGER, is_broker_key};
use crate::k8s::repository::Repository;
use crate::k8s::watched::Cached;
use crate::k8s::{is_conflict, is_not_found};
use crate::lifecycle::{Error, Result};

/// The label naming the cluster a placement record sends its instance to.
pub const LABEL_PLACEMENT_CLUSTER: &str = "caas-broker.io/placement-cluster";

/// The placement records, in the home cluster.
pub struct Placements {
    records: Repository<ConfigMap>,
}

impl Placements {
    /// The records in `broker_namespace` of the home cluster `client` reaches.
    pub fn new(client: &Client, broker_namespace: &str) -> Placements {
        Placements { records: Repository::namespaced(client, broker_namespace, "placements", is_broker_key) }
    }

    /// Starts the copy's watch (see [`Repository::start`]).
    pub fn start(&self, watch_seconds: u32) {
        self.records.start(LABEL_PLACEMENT_CLUSTER, watch_seconds);
    }

    /// The cluster `instance_id` was placed on, if not the home; from the copy when it can answer.
    pub async fn lookup(&self, instance_id: &str) -> Result<Option<String>> {
        let name = record_name(instance_id);
        let meta = match self.records.copy().get(&name) {
            Cached::Present(kept) => Some(kept.meta()),
            Cached::Absent => None,
            Cached::Unknown => self.records.get_opt(&name).await?.map(|record| record.metadata),
        };
        Ok(meta.and_then(|meta| cluster_of(&meta, instance_id)))
    }

    /// Records that `instance_id` lives on `cluster`; when another request recorded it first, the cluster recorded.
    pub async fn record(&self, instance_id: &str, cluster: &str) -> Result<String> {
        let record = ConfigMap {
            metadata: ObjectMeta {
                name: Some(record_name(instance_id)),
                labels: Some(BTreeMap::from([(LABEL_PLACEMENT_CLUSTER.to_owned(), cluster.to_owned())])),
                annotations: Some(BTreeMap::from([(ANNOTATION_INSTANCE_ID.to_owned(), instance_id.to_owned())])),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        };
        let params = PostParams { field_manager: Some(FIELD_MANAGER.to_owned()), ..PostParams::default() };
        match self.records.create(&params, &record).await {
            Ok(_) => Ok(cluster.to_owned()),
            Err(error) if is_conflict(&error) => match self.records.get_opt(&record_name(instance_id)).await? {
                Some(existing) => cluster_of(&existing.metadata, instance_id).ok_or_else(|| {
                    Error::internal(format!("the placement record of instance {instance_id} holds another id"))
                }),
                None => Err(Error::Concurrency(format!("instance {instance_id} is being placed; retry"))),
            },
            Err(error) => Err(error.into()),
        }
    }

    /// Forgets where `instance_id` lives (it is gone, or was never made).
    pub async fn forget(&self, instance_id: &str) -> Result<()> {
        match self.records.delete(&record_name(instance_id), &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(error) if is_not_found(&error) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }
}

/// The record's name: a DNS label derived from the id (hashed when long or unusual).
fn record_name(instance_id: &str) -> String {
    names::dns_label("caas-placement-", instance_id)
}

/// The cluster a record names, when it is the record of `instance_id` (not of another id with the same name).
fn cluster_of(meta: &ObjectMeta, instance_id: &str) -> Option<String> {
    let annotated = meta.annotations.as_ref()?.get(ANNOTATION_INSTANCE_ID)?;
    (annotated == instance_id).then(|| meta.labels.as_ref()?.get(LABEL_PLACEMENT_CLUSTER).cloned())?
}
