//! Service instances: provision, update, deprovision, fetch and `last_operation`, every one computed from and
//! written to the cluster, so that any replica answers the same and retries converge. One dispatch for both kinds:
//! a virtual cluster (a namespace that records it, here) and a workload plan placed in one ([`workload`]); what an
//! instance's record holds is [`stored`].

pub(super) mod stored;
mod virtual_cluster;
pub(super) mod workload;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Map, Value};

use self::stored::{Attributes, StoredInstance, context_names};
use self::workload::WorkloadRecord;
use crate::k8s::names;
use crate::k8s::watched::Cached;
use crate::lifecycle::model::{
    FetchedInstance, InstanceMetadata, InstanceResponse, LastOperation, MaintenanceVersion, OperationState,
    OriginatingIdentity, ProvisionRequest, UpdateRequest,
};
use crate::lifecycle::parameters::SchemaKind;
use crate::lifecycle::{Broker, check_maintenance};
use crate::lifecycle::{Error, Result};

/// The `operation` value of an asynchronous provision.
pub const OPERATION_PROVISION: &str = "provision";
/// The `operation` value of an asynchronous deprovision.
pub const OPERATION_DEPROVISION: &str = "deprovision";

/// How a provision ended, which the protocol layer turns into 201, 200 or 202.
#[derive(Debug)]
pub enum Provisioned {
    /// Made by this request (201).
    Created(InstanceResponse),
    /// Already there with identical attributes (200).
    AlreadyExists(InstanceResponse),
    /// Accepted; the platform polls `last_operation` (202).
    InProgress(InstanceResponse),
}

/// How a deprovision ended: 200 or 202.
#[derive(Debug)]
pub enum Deprovisioned {
    /// Deleted: nothing of it is left in the cluster (200).
    Done,
    /// Deleting; the platform polls `last_operation` with this operation (202).
    InProgress(String),
}

/// How an update ended: 200 or 202.
#[derive(Debug)]
pub enum Updated {
    /// Applied (200).
    Done(InstanceResponse),
    /// Applying; the platform polls `last_operation` (202).
    InProgress(InstanceResponse),
}

impl Broker {
    /// 400 for an id whose namespace would be the broker's own, the identity namespace or a system namespace, or
    /// that could stand for another id's hash (see [`names::refused_instance_id`]): refused before anything is made.
    fn check_instance_id(&self, instance_id: &str) -> Result<()> {
        let reserved = [self.options.broker_namespace.as_str(), self.options.identity_namespace.as_str()];
        match names::refused_instance_id(&self.options.namespace_prefix, instance_id, &reserved) {
            Some(why) => Err(Error::BadRequest(why)),
            None => Ok(()),
        }
    }

    /// PUT /v2/service_instances/:instance_id
    pub async fn provision(
        &self,
        instance_id: &str,
        request: ProvisionRequest,
        identity: Option<OriginatingIdentity>,
        accepts_incomplete: bool,
    ) -> Result<Provisioned> {
        self.check_instance_id(instance_id)?;
        self.require_tenant_guard().await?;
        let (service, plan) = self.service_and_plan(&request.service_id, &request.plan_id)?;
        if request.organization_guid.is_empty() {
            return Err(Error::BadRequest("organization_guid is required".to_owned()));
        }
        if request.space_guid.is_empty() {
            return Err(Error::BadRequest("space_guid is required".to_owned()));
        }
        check_maintenance(plan, request.maintenance_info.as_ref())?;
        let parameters = request.parameters.unwrap_or_default();
        self.schemas.validate(&plan.id, SchemaKind::Create, &parameters)?;
        if service.broker.kind.is_workload() && !accepts_incomplete {
            return Err(Error::AsyncRequired);
        }

        let wanted = StoredInstance {
            instance_id: instance_id.to_owned(),
            attributes: Attributes {
                service_id: service.id.clone(),
                plan_id: plan.id.clone(),
                organization_guid: request.organization_guid,
                space_guid: request.space_guid,
                parameters,
            },
            context: context_names(request.context.as_ref()),
            maintenance_version: plan.maintenance_version().map(str::to_owned),
            owner: names::owner_account(instance_id),
            identity_namespace: Some(self.options.identity_namespace.clone()),
            created_by: identity.as_ref().map(OriginatingIdentity::describe),
            provisioned: false,
            terminating: false,
            age_seconds: 0,
        };
        if service.broker.kind.is_workload() {
            return self.provision_workload(service, wanted).await;
        }
        self.provision_virtual_cluster(service, instance_id, wanted, accepts_incomplete).await
    }

    /// PATCH /v2/service_instances/:instance_id
    pub async fn update(
        &self,
        instance_id: &str,
        request: UpdateRequest,
        identity: Option<OriginatingIdentity>,
        accepts_incomplete: bool,
    ) -> Result<Updated> {
        let service = self.service(&request.service_id)?;
        if let Some(record) = self.workload(instance_id).await? {
            if record.stored.attributes.service_id != service.id {
                return Err(Error::BadRequest(format!("instance {instance_id} is not of service {}", service.name)));
            }
            return self.update_workload(service, record, request, accepts_incomplete).await.map(Updated::InProgress);
        }
        self.update_virtual_cluster(service, instance_id, request, identity).await
    }

    /// DELETE /v2/service_instances/:instance_id
    pub async fn deprovision(
        &self,
        instance_id: &str,
        service_id: &str,
        plan_id: &str,
        accepts_incomplete: bool,
    ) -> Result<Deprovisioned> {
        let (service, _) = self.service_and_plan(service_id, plan_id)?;
        if let Some(record) = self.workload(instance_id).await? {
            let operation = self.deprovision_workload(service, record, !accepts_incomplete).await?;
            return Ok(if accepts_incomplete { Deprovisioned::InProgress(operation) } else { Deprovisioned::Done });
        }
        self.deprovision_virtual_cluster(instance_id, accepts_incomplete).await
    }

    /// What records an instance, from the copy of the broker's records; `None` when the copy does not hold it (absent,
    /// or it cannot answer) or holds a workload record and `workloads` is false: the caller reads the cluster.
    fn cached(&self, instance_id: &str, workloads: bool) -> Option<Recorded> {
        match self.records.workloads.copy().get(&Broker::record_name(instance_id)) {
            Cached::Present(kept) => {
                let record = WorkloadRecord::from_meta(&kept.meta(), instance_id);
                return record.filter(|_| workloads).map(Recorded::Workload);
            }
            Cached::Unknown => return None,
            Cached::Absent => {}
        }
        let meta = self.records.namespaces.present(&self.namespace_of(instance_id))?.meta();
        let stored = StoredInstance::from_meta(&meta).filter(|stored| stored.instance_id == instance_id)?;
        Some(Recorded::VirtualCluster(Box::new(meta), stored))
    }

    /// A virtual cluster's namespace (its metadata) and record, from the copy of the broker's records; `None` when the
    /// copy does not hold it as one.
    pub(in crate::lifecycle) fn cached_virtual_cluster(
        &self,
        instance_id: &str,
    ) -> Option<(ObjectMeta, StoredInstance)> {
        match self.cached(instance_id, false)? {
            Recorded::VirtualCluster(meta, stored) => Some((*meta, stored)),
            Recorded::Workload(_) | Recorded::Nothing => None,
        }
    }

    /// The records of an instance, read fresh from the cluster: the kind the copy of the records names (only a hint:
    /// when the cluster does not have it, the other kind is read too), or both kinds at once when the copy does not
    /// know the instance. One round trip either way, and one read, not two, for an instance the copy holds.
    pub(in crate::lifecycle) async fn read_records(&self, instance_id: &str) -> Result<InstanceRecords> {
        let workload_hint = self.records.workloads.copy().get(&Broker::record_name(instance_id));
        let cluster_hint = self.records.namespaces.present(&self.namespace_of(instance_id)).is_some();
        match (workload_hint, cluster_hint) {
            (Cached::Present(_), _) => match self.workload(instance_id).await? {
                Some(record) => Ok((Some(record), None)),
                None => Ok((None, self.find(instance_id).await?)),
            },
            (Cached::Absent, true) => match self.find(instance_id).await? {
                Some(found) => Ok((None, Some(found))),
                None => Ok((self.workload(instance_id).await?, None)),
            },
            _ => Ok(tokio::try_join!(self.workload(instance_id), self.find(instance_id))?),
        }
    }

    /// What records an instance, read from the cluster.
    async fn recorded(&self, instance_id: &str) -> Result<Recorded> {
        Ok(match self.read_records(instance_id).await? {
            (Some(record), _) => Recorded::Workload(record),
            (None, Some((namespace, stored))) => Recorded::VirtualCluster(Box::new(namespace.metadata), stored),
            (None, None) => Recorded::Nothing,
        })
    }

    /// Answers from the copy of the records when it holds the instance (a workload's only if `workloads`) and the
    /// answer is one a moment's lag cannot make wrong (`settled`); otherwise from the cluster.
    async fn answer<T, F, Fut>(
        &self,
        instance_id: &str,
        workloads: bool,
        settled: fn(&Result<T>) -> bool,
        answer: F,
    ) -> Result<T>
    where
        F: Fn(Recorded) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        if let Some(recorded) = self.cached(instance_id, workloads) {
            let cached = answer(recorded).await;
            if settled(&cached) {
                return cached;
            }
        }
        answer(self.recorded(instance_id).await?).await
    }

    /// Whether an instance of this id is recorded here (being made, made or being deleted), read from the cluster:
    /// where the fleet sends a repeated provision.
    pub async fn holds(&self, instance_id: &str) -> Result<bool> {
        Ok(!matches!(self.recorded(instance_id).await?, Recorded::Nothing))
    }

    /// GET /v2/service_instances/:instance_id
    pub async fn fetch(&self, instance_id: &str) -> Result<FetchedInstance> {
        // "Not found" from the copy may be a moment old (made ready, or made at all, by another replica): confirm it.
        let settled = |answer: &Result<FetchedInstance>| !matches!(answer, Err(Error::NotFound(_)));
        self.answer(instance_id, true, settled, |recorded| async move { self.fetched(instance_id, recorded) }).await
    }

    fn fetched(&self, instance_id: &str, recorded: Recorded) -> Result<FetchedInstance> {
        let not_found = || Error::NotFound(format!("instance {instance_id} does not exist"));
        let stored = match recorded {
            Recorded::Workload(record) => {
                if !record.stored.provisioned {
                    return Err(not_found());
                }
                let mut labels = Map::new();
                labels.insert("namespace".to_owned(), Value::String(record.namespace.clone()));
                labels.insert("cluster_instance_id".to_owned(), Value::String(record.cluster_instance_id.clone()));
                // A session the broker stopped for want of a viewer says so, and since when, until it is woken.
                if let Some(stop) = &record.idle_stop {
                    labels.insert("state".to_owned(), Value::String(stop.describe()));
                    labels.insert("idle_stopped_at".to_owned(), Value::String(stop.at.to_string()));
                    labels.insert("idle_stopped_after_minutes".to_owned(), Value::String(stop.minutes.to_string()));
                }
                return Ok(FetchedInstance {
                    service_id: record.stored.attributes.service_id.clone(),
                    plan_id: record.stored.attributes.plan_id.clone(),
                    dashboard_url: self.dashboard_url(instance_id),
                    parameters: Broker::workload_parameters(&record),
                    maintenance_info: record
                        .stored
                        .maintenance_version
                        .clone()
                        .map(|version| MaintenanceVersion { version }),
                    metadata: InstanceMetadata { labels, attributes: Map::new() },
                });
            }
            Recorded::VirtualCluster(_, stored) => stored,
            Recorded::Nothing => return Err(not_found()),
        };
        if !stored.provisioned || stored.terminating {
            return Err(not_found());
        }
        let plan_name = self
            .catalog
            .service(&stored.attributes.service_id)
            .and_then(|service| service.plan(&stored.attributes.plan_id))
            .map(|plan| plan.name.clone());
        let mut labels = Map::new();
        labels.insert("namespace".to_owned(), Value::String(self.namespace_of(instance_id)));
        if let Some(plan) = plan_name {
            labels.insert("plan".to_owned(), Value::String(plan));
        }
        Ok(FetchedInstance {
            service_id: stored.attributes.service_id,
            plan_id: stored.attributes.plan_id,
            dashboard_url: self.dashboard_url(instance_id),
            parameters: stored.attributes.parameters,
            maintenance_info: stored.maintenance_version.map(|version| MaintenanceVersion { version }),
            metadata: InstanceMetadata { labels, attributes: Map::new() },
        })
    }

    /// GET /v2/service_instances/:instance_id/last_operation
    pub async fn last_operation(&self, instance_id: &str, operation: Option<&str>) -> Result<LastOperation> {
        if let Some(namespace) = operation.and_then(|op| op.strip_prefix(OPERATION_DEPROVISION)?.strip_prefix(':')) {
            return self.workload_deletion_state(instance_id, namespace).await;
        }
        // In progress or succeeded from the copy is at most a moment old, and the platform polls again; a failure or
        // a missing instance could be the copy lagging (a deletion just started, an instance just made): confirm it.
        // A workload's state is read from its pods and controllers anyway, so its record is read fresh with them: an
        // update's poll must not be judged by the parameters before the update.
        let settled = |answer: &Result<LastOperation>| match answer {
            Ok(answer) => answer.state != OperationState::Failed,
            Err(error) => !matches!(error, Error::NotFound(_)),
        };
        let state = |recorded| self.operation_state(instance_id, operation, recorded);
        self.answer(instance_id, false, settled, state).await
    }

    async fn operation_state(
        &self,
        instance_id: &str,
        operation: Option<&str>,
        recorded: Recorded,
    ) -> Result<LastOperation> {
        let deprovisioning = operation.is_some_and(|op| op.starts_with(OPERATION_DEPROVISION));
        let (namespace, stored) = match recorded {
            Recorded::Workload(record) => {
                let (service, _) = self.workload_service(&record)?;
                return self.workload_state(service, &record).await;
            }
            Recorded::VirtualCluster(namespace, stored) => (namespace, stored),
            // Nothing is kept once an instance is gone, so "deleted" and "never existed" look alike. A poll of a
            // deprovision (the platform sends back our `operation`) is answered as the conformance checkers want,
            // 200 succeeded; any other poll is of an instance the broker does not know: 404, as for any unknown id
            // (410 is only for a finished asynchronous delete, and a poll without our `operation` is not one).
            Recorded::Nothing if deprovisioning => {
                return Ok(LastOperation::new(OperationState::Succeeded, "the virtual cluster has been deleted"));
            }
            Recorded::Nothing => return Err(Error::NotFound(format!("instance {instance_id} does not exist"))),
        };
        self.virtual_cluster_state(&namespace, &stored, deprovisioning).await
    }
}

/// An instance's workload record and its virtual cluster's namespace, as read from the cluster.
pub(in crate::lifecycle) type InstanceRecords = (Option<WorkloadRecord>, Option<(Namespace, StoredInstance)>);

/// What records an instance: a workload record, a virtual cluster's namespace (its metadata), or nothing.
enum Recorded {
    Workload(WorkloadRecord),
    VirtualCluster(Box<ObjectMeta>, StoredInstance),
    Nothing,
}

/// The parameters that set something (a `null` asks to remove a parameter, so it is not validated as a value).
pub(in crate::lifecycle) fn without_nulls(changes: &Map<String, Value>) -> Map<String, Value> {
    changes.iter().filter(|(_, value)| !value.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Merges update parameters over the current ones: a key given replaces, a key given as `null` is removed.
pub(in crate::lifecycle) fn merge(current: &Map<String, Value>, changes: Map<String, Value>) -> Map<String, Value> {
    let mut merged = current.clone();
    for (key, value) in changes {
        if value.is_null() {
            merged.remove(&key);
        } else {
            merged.insert(key, value);
        }
    }
    merged
}
