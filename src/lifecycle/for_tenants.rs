//! The narrow way from the tenant's domain ([`crate::tenant`], which acts as the signed-in user) down to the OSB
//! lifecycle: what a tenant's pages need to know of the workload plans placed in its virtual cluster (which they are,
//! their state, a streaming session's objects) and where the operator places workloads. Everything here is read with
//! the broker's client, scoped to the tenant's own virtual cluster; a change to a workload plan goes through the OSB
//! update and deprovision themselves, after the tenant's domain has asked Kubernetes whether the user may make it.

use super::instances::workload::WorkloadRecord;
use super::model::{LastOperation, OperationState};
use super::{Broker, Error, Result, Tenant};
use crate::k8s::workload::{PodPlacement, StreamingSession};

/// A workload plan instance placed in a tenant's virtual cluster: what identifies it to the OSB operations.
#[derive(Debug, Clone)]
pub struct PlanInstance {
    /// The workload instance's id.
    pub instance_id: String,
    /// Its offering's id.
    pub service_id: String,
    /// Its plan's id.
    pub plan_id: String,
}

/// A workload plan instance as a tenant's pages show it.
#[derive(Debug, Clone)]
pub struct PlanApp {
    /// The workload instance's id.
    pub instance_id: String,
    /// Its offering (`streaming-session`, `container-app`).
    pub service_name: String,
    /// Its plan.
    pub plan_name: String,
    /// Its state as the platform reads it (`last_operation`).
    pub state: LastOperation,
    /// The minutes without a viewer after which the broker stopped it, while it is stopped for that (a streaming
    /// session; the dashboard says "stopped after N minutes without a viewer", and its Open wakes it).
    pub idle_stopped_after: Option<u32>,
}

impl Broker {
    /// The workload plan instances placed in `tenant`'s virtual cluster.
    pub async fn plan_instances(&self, tenant: &Tenant) -> Result<Vec<PlanInstance>> {
        let records = self.workload_records_in(&tenant.instance_id).await?;
        Ok(records.iter().map(plan_instance).collect())
    }

    /// The workload plan instances placed in `tenant`'s virtual cluster, with their state as the platform reads it.
    pub async fn workload_plans(&self, tenant: &Tenant) -> Result<Vec<PlanApp>> {
        let records = self.workload_records_in(&tenant.instance_id).await?;
        let states = futures::future::join_all(records.iter().map(|record| self.state_of(record))).await;
        Ok(records
            .iter()
            .zip(states)
            .map(|(record, state)| {
                self.plan_app(
                    record,
                    state.unwrap_or_else(|e| LastOperation::new(OperationState::Failed, e.to_string())),
                )
            })
            .collect())
    }

    /// The streaming session `session_id` of `tenant`'s virtual cluster with its state; not found alike for an id
    /// that is no session and a session of another virtual cluster.
    pub async fn streaming_session(&self, tenant: &Tenant, session_id: &str) -> Result<(PlanApp, StreamingSession)> {
        let (record, session) = self.session_of(tenant, session_id).await?;
        let state = self.state_of(&record).await?;
        Ok((self.plan_app(&record, state), session))
    }

    /// The objects of the streaming session `session_id` of `tenant`'s virtual cluster, without reading its state
    /// (a noVNC page asks for dozens of files); not found as [`Broker::streaming_session`] is.
    pub async fn streaming_session_objects(&self, tenant: &Tenant, session_id: &str) -> Result<StreamingSession> {
        Ok(self.session_of(tenant, session_id).await?.1)
    }

    /// Where workload pods run and how their images are pulled: the operator's placement, which an app deployed from
    /// the dashboard gets as a container-app instance does.
    pub fn workload_placement(&self) -> &PodPlacement {
        &self.options.placement
    }

    /// A workload's state as the platform reads it.
    async fn state_of(&self, record: &WorkloadRecord) -> Result<LastOperation> {
        self.workload_state(self.workload_service(record)?.0, record).await
    }

    /// A record with its state and names.
    fn plan_app(&self, record: &WorkloadRecord, state: LastOperation) -> PlanApp {
        let attributes = &record.stored.attributes;
        let (service_name, plan_name) = self.plan_names(&attributes.service_id, &attributes.plan_id);
        PlanApp {
            instance_id: record.stored.instance_id.clone(),
            service_name,
            plan_name,
            state,
            idle_stopped_after: record.idle_stop.map(|stop| stop.minutes),
        }
    }

    /// The record and objects of `session_id` if it is a streaming session placed in `tenant`'s virtual cluster.
    async fn session_of(&self, tenant: &Tenant, session_id: &str) -> Result<(WorkloadRecord, StreamingSession)> {
        let not_found = || Error::NotFound(format!("there is no streaming session {session_id} in this cluster"));
        let record = self.workload(session_id).await?.ok_or_else(not_found)?;
        if record.cluster_instance_id != tenant.instance_id || record.namespace != tenant.namespace {
            return Err(not_found());
        }
        let session = self.streaming_session_of(&record)?.ok_or_else(not_found)?;
        Ok((record, session))
    }
}

fn plan_instance(record: &WorkloadRecord) -> PlanInstance {
    let attributes = &record.stored.attributes;
    PlanInstance {
        instance_id: record.stored.instance_id.clone(),
        service_id: attributes.service_id.clone(),
        plan_id: attributes.plan_id.clone(),
    }
}

impl Broker {
    /// The recent use of each pod of `tenant`'s namespace, for the dashboard's sparklines (the accounting sampler's
    /// last hour; empty until it has sampled).
    pub fn pod_history(&self, tenant: &Tenant) -> Vec<super::usage::PodHistory> {
        self.recent_use(&tenant.namespace)
    }

    /// What `tenant`'s virtual cluster consumed in the current calendar month (UTC), for the dashboard.
    pub async fn month_usage(&self, tenant: &Tenant) -> Result<super::usage::UsageTotals> {
        self.usage_this_month(&tenant.instance_id).await
    }
}
