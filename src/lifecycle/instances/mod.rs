//! Service instances: provision, update, deprovision, fetch and `last_operation`, every one computed from and
//! written to the cluster, so that any replica answers the same and retries converge. One dispatch for both kinds:
//! a virtual cluster (a namespace that records it, here) and a workload plan placed in one ([`workload`]); what an
//! instance's record holds is [`stored`].

pub(super) mod stored;
pub(super) mod workload;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{LimitRange, Namespace, ResourceQuota, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams, PropagationPolicy};
use serde_json::{Map, Value};

use self::stored::{Attributes, StoredInstance, context_names};
use self::workload::WorkloadRecord;
use crate::catalog::{PodSecurityLevel, Service, quantity};
use crate::k8s::names::{self, *};
use crate::k8s::repository::Repository;
use crate::k8s::virtual_cluster::{VirtualCluster, owned_by};
use crate::k8s::watched::Cached;
use crate::k8s::{apply, is_conflict, is_not_found};
use crate::lifecycle::model::{
    FetchedInstance, InstanceMetadata, InstanceResponse, LastOperation, MaintenanceVersion, OperationState,
    OriginatingIdentity, ProvisionRequest, UpdateRequest,
};
use crate::lifecycle::parameters::SchemaKind;
use crate::lifecycle::{Broker, check_maintenance, deleted};
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

/// Whether the cluster has finished setting up a virtual cluster: quota usage computed (until then quota admission
/// refuses pods) and the default ServiceAccount made (until then pods are refused too).
#[derive(Debug, PartialEq, Eq)]
enum Readiness {
    Ready,
    Waiting(&'static str),
}

impl Broker {
    pub(in crate::lifecycle) fn namespaces(&self) -> &Repository<Namespace> {
        &self.records.namespaces
    }

    pub(in crate::lifecycle) fn namespace_of(&self, instance_id: &str) -> String {
        names::namespace(&self.options.namespace_prefix, instance_id)
    }

    /// 400 for an id whose namespace would be the broker's own, the identity namespace or a system namespace, or
    /// that could stand for another id's hash (see [`names::refused_instance_id`]): refused before anything is made.
    fn check_instance_id(&self, instance_id: &str) -> Result<()> {
        let reserved = [self.options.broker_namespace.as_str(), self.options.identity_namespace.as_str()];
        match names::refused_instance_id(&self.options.namespace_prefix, instance_id, &reserved) {
            Some(why) => Err(Error::BadRequest(why)),
            None => Ok(()),
        }
    }

    /// The instance's namespace and what it records, if the namespace exists and belongs to this instance id.
    pub(in crate::lifecycle) async fn find(&self, instance_id: &str) -> Result<Option<(Namespace, StoredInstance)>> {
        let Some(namespace) = self.namespaces().get_opt(&self.namespace_of(instance_id)).await? else {
            return Ok(None);
        };
        Ok(StoredInstance::from_namespace(&namespace)
            .filter(|stored| stored.instance_id == instance_id)
            .map(|stored| (namespace, stored)))
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
        let dashboard_url = self.dashboard_url(instance_id);

        let stored = self.find_or_claim(&wanted, service).await?;
        let created_now = stored.is_none();
        if let Some(stored) = &stored {
            let differences = stored.attributes.differences(&wanted.attributes);
            if !differences.is_empty() {
                return Err(Error::Conflict(format!(
                    "instance {instance_id} already exists with a different {}",
                    differences.join(", ")
                )));
            }
            if stored.terminating {
                return Err(Error::Concurrency(format!("instance {instance_id} is being deleted; retry later")));
            }
            if stored.provisioned && self.readiness(stored).await? == Readiness::Ready {
                return Ok(Provisioned::AlreadyExists(InstanceResponse { dashboard_url, operation: None }));
            }
        }
        // Converge: a first request, or a retry of one that was interrupted, applies every object.
        let record = stored.unwrap_or(wanted);
        if let Err(error) = self.apply_virtual_cluster(service, &record).await {
            if created_now {
                self.delete_namespace_quietly(instance_id).await;
            }
            return Err(error);
        }
        let response = InstanceResponse { dashboard_url, operation: None };
        match self.wait_until_ready(&record, accepts_incomplete).await? {
            Readiness::Ready if created_now => Ok(Provisioned::Created(response)),
            Readiness::Ready => Ok(Provisioned::AlreadyExists(response)),
            Readiness::Waiting(_) => Ok(Provisioned::InProgress(InstanceResponse {
                operation: Some(OPERATION_PROVISION.to_owned()),
                ..response
            })),
        }
    }

    /// Claims the instance id by creating its namespace (atomic: two concurrent provisions cannot both create it) and
    /// returns `None`, or returns what the existing namespace records.
    async fn find_or_claim(&self, wanted: &StoredInstance, service: &Service) -> Result<Option<StoredInstance>> {
        if let Some((_, stored)) = self.find(&wanted.instance_id).await? {
            return Ok(Some(stored));
        }
        // No namespace of this instance yet: the create below decides between concurrent requests for the same id.
        if self.options.one_instance_per_organization {
            self.check_organization_has_no_instance(wanted, service).await?;
        }
        let namespace = self.virtual_cluster(service, wanted)?.namespace();
        let params = PostParams { field_manager: Some(FIELD_MANAGER.to_owned()), ..PostParams::default() };
        match self.namespaces().create(&params, &namespace).await {
            Ok(_) => Ok(None),
            Err(error) if is_conflict(&error) => match self.find(&wanted.instance_id).await? {
                Some((_, stored)) => Ok(Some(stored)),
                None => Err(Error::Conflict(format!(
                    "namespace {} exists but does not belong to instance {}",
                    self.namespace_of(&wanted.instance_id),
                    wanted.instance_id
                ))),
            },
            Err(error) => Err(error.into()),
        }
    }

    async fn check_organization_has_no_instance(&self, wanted: &StoredInstance, service: &Service) -> Result<()> {
        let selector = format!(
            "{LABEL_SERVICE}={},{LABEL_ORGANIZATION}={}",
            names::label_value(&service.name),
            names::label_value(&wanted.attributes.organization_guid)
        );
        let existing = self.namespaces().list_metadata(&ListParams::default().labels(&selector)).await?;
        let own = self.namespace_of(&wanted.instance_id);
        if let Some(other) = existing.items.iter().find(|ns| ns.metadata.name.as_deref() != Some(own.as_str())) {
            let other = other.metadata.name.clone().unwrap_or_default();
            return Err(Error::Unprocessable {
                code: "InstanceLimitReached",
                description: format!(
                    "organization {} already has a {} instance (namespace {other}); this broker allows one per organization",
                    wanted.attributes.organization_guid, service.name
                ),
            });
        }
        Ok(())
    }

    /// The desired virtual cluster for a recorded instance: what provision, update and drift repair apply.
    pub(in crate::lifecycle) fn virtual_cluster(
        &self,
        service: &Service,
        record: &StoredInstance,
    ) -> Result<VirtualCluster> {
        let plan = service.plan(&record.attributes.plan_id).ok_or_else(|| {
            Error::internal(format!("plan {} is no longer in the catalog", record.attributes.plan_id))
        })?;
        let parameters = &record.attributes.parameters;
        let pod_security = match parameters.get("pod_security").and_then(Value::as_str) {
            Some("restricted") => PodSecurityLevel::Restricted,
            Some(_) => PodSecurityLevel::Baseline,
            None => plan.broker.pod_security,
        };
        let allow_ingress_from_namespaces = parameters
            .get("allow_ingress_from_namespaces")
            .and_then(Value::as_array)
            .map(|names| names.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default();
        let mut labels =
            ManagedLabels { instance_id: &record.instance_id, service: &service.name, plan: &plan.name }.to_map();
        labels.insert(LABEL_ORGANIZATION.to_owned(), names::label_value(&record.attributes.organization_guid));
        labels.insert(LABEL_SPACE.to_owned(), names::label_value(&record.attributes.space_guid));
        Ok(VirtualCluster {
            namespace: self.namespace_of(&record.instance_id),
            labels,
            annotations: record.annotations(false),
            quota: plan.broker.quota.clone(),
            limits: plan.broker.limits.clone().unwrap_or_default(),
            pod_security,
            allow_ingress_from_namespaces,
            owner: record.owner.clone(),
            identity_namespace: self.options.identity_namespace.clone(),
            ingress_domain: self
                .options
                .ingress_domain
                .as_deref()
                .map(|domain| names::ingress_domain(&record.instance_id, domain)),
        })
    }

    /// The record as the current layout has it: the owner in the identity namespace. Instances made before
    /// version 2.0 had it in the tenant namespace; the next apply (a maintenance upgrade, any update) moves it.
    fn in_current_layout(&self, record: &StoredInstance) -> StoredInstance {
        StoredInstance {
            owner: names::owner_account(&record.instance_id),
            identity_namespace: Some(self.options.identity_namespace.clone()),
            ..record.clone()
        }
    }

    /// Applies every object of the virtual cluster in the current layout, then marks the namespace provisioned.
    async fn apply_virtual_cluster(&self, service: &Service, record: &StoredInstance) -> Result<()> {
        let legacy_owner = record.identity_namespace.is_none().then(|| record.owner.clone());
        let record = &self.in_current_layout(record);
        let mut cluster = self.virtual_cluster(service, record)?;
        let namespace = cluster.namespace.clone();
        let client = self.client.clone();
        let applied = self.namespaces().apply(&cluster.namespace()).await?;
        apply(&Api::<ResourceQuota>::namespaced(client.clone(), &namespace), &cluster.resource_quota()).await?;
        apply(&Api::<LimitRange>::namespaced(client.clone(), &namespace), &cluster.limit_range()).await?;
        apply(&Api::<NetworkPolicy>::namespaced(client.clone(), &namespace), &cluster.network_policy()).await?;
        self.apply_identity(&cluster.owner_service_account(owned_by(&applied))).await?;
        apply(&Api::<RoleBinding>::namespaced(client.clone(), &namespace), &cluster.owner_role_binding()).await?;
        self.apply_dashboard_watch(&namespace, &record.instance_id).await?;
        if let Some(legacy_owner) = legacy_owner {
            // The owner's old ServiceAccount, which the tenant could mint tokens for: deleting it revokes them.
            let accounts = Api::<ServiceAccount>::namespaced(client, &namespace);
            if deleted(accounts.delete(&legacy_owner, &DeleteParams::default()).await)? {
                tracing::info!(instance = %record.instance_id, account = %legacy_owner, "moved the owner out of the tenant namespace");
            }
        }
        cluster.annotations = record.annotations(true);
        self.namespaces().apply(&cluster.namespace()).await?;
        Ok(())
    }

    async fn readiness(&self, record: &StoredInstance) -> Result<Readiness> {
        let namespace = self.namespace_of(&record.instance_id);
        let quotas = Api::<ResourceQuota>::namespaced(self.client.clone(), &namespace);
        let accounts = Api::<ServiceAccount>::namespaced(self.client.clone(), &namespace);
        let (quota, default_account) = tokio::try_join!(quotas.get_opt(QUOTA_NAME), accounts.get_opt("default"))?;
        let computed = quota.is_some_and(|quota| {
            let wanted = quota.spec.and_then(|spec| spec.hard).unwrap_or_default();
            let seen = quota.status.and_then(|status| status.hard).unwrap_or_default();
            wanted.len() == seen.len()
                && wanted
                    .iter()
                    .all(|(key, value)| seen.get(key).and_then(|s| quantity::parse(&s.0)) == quantity::parse(&value.0))
        });
        if !computed {
            return Ok(Readiness::Waiting("the quota controller is computing the namespace's quota"));
        }
        if default_account.is_none() {
            return Ok(Readiness::Waiting("the namespace's default ServiceAccount is being created"));
        }
        Ok(Readiness::Ready)
    }

    /// Asynchronous requests get the state right away; synchronous ones wait up to the configured timeout.
    async fn wait_until_ready(&self, record: &StoredInstance, accepts_incomplete: bool) -> Result<Readiness> {
        let deadline = tokio::time::Instant::now() + self.options.sync_timeout;
        // Even an asynchronous request waits a moment: the controllers usually finish within it, and a 201 saves the
        // platform a round of polling.
        let patience = if accepts_incomplete { Duration::from_secs(2) } else { self.options.sync_timeout };
        let give_up = tokio::time::Instant::now() + patience;
        loop {
            let readiness = self.readiness(record).await?;
            if readiness == Readiness::Ready || tokio::time::Instant::now() >= give_up.min(deadline) {
                if let (Readiness::Waiting(what), false) = (&readiness, accepts_incomplete) {
                    return Err(Error::unavailable(format!("the cluster did not finish in time: {what}")));
                }
                return Ok(readiness);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn delete_namespace_quietly(&self, instance_id: &str) {
        let name = self.namespace_of(instance_id);
        if let Err(error) = self.namespaces().delete(&name, &DeleteParams::background()).await
            && !is_not_found(&error)
        {
            tracing::warn!(namespace = %name, %error, "could not remove a half-made namespace");
        }
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
        let Some((_, stored)) = self.find(instance_id).await? else {
            return Err(Error::NotFound(format!("instance {instance_id} does not exist")));
        };
        if stored.attributes.service_id != service.id {
            return Err(Error::BadRequest(format!("instance {instance_id} is not of service {}", service.name)));
        }
        if stored.terminating {
            return Err(Error::Concurrency(format!("instance {instance_id} is being deleted")));
        }
        if !stored.provisioned {
            return Err(Error::Concurrency(format!("instance {instance_id} is still being provisioned; retry later")));
        }
        let current_plan = service.plan(&stored.attributes.plan_id);
        let target_id = request.plan_id.as_deref().filter(|id| !id.is_empty()).unwrap_or(&stored.attributes.plan_id);
        let (_, target) = self.service_and_plan(&service.id, target_id)?;
        if target.id != stored.attributes.plan_id && !current_plan.is_some_and(|plan| service.plan_updateable(plan)) {
            return Err(Error::Unprocessable {
                code: "PlanChangeNotSupported",
                description: format!("the plan of a {} instance cannot be changed", service.name),
            });
        }
        check_maintenance(target, request.maintenance_info.as_ref())?;

        let mut updated = stored.clone();
        updated.attributes.plan_id = target.id.clone();
        updated.maintenance_version = target.maintenance_version().map(str::to_owned);
        if let Some(changes) = request.parameters {
            self.schemas.validate(&target.id, SchemaKind::Update, &without_nulls(&changes))?;
            updated.attributes.parameters = merge(&stored.attributes.parameters, changes);
            self.schemas.validate(&target.id, SchemaKind::Update, &updated.attributes.parameters)?;
        }
        if request.context.is_some() {
            let mut context = stored.context.clone();
            context.extend(context_names(request.context.as_ref()));
            updated.context = context;
        }
        if let Some(identity) = identity {
            tracing::info!(instance = instance_id, by = %identity.describe(), "update requested");
        }
        if target.id != stored.attributes.plan_id {
            self.check_usage_fits(instance_id, &target.name, &target.broker.quota).await?;
        }
        self.apply_virtual_cluster(service, &updated).await?;
        Ok(Updated::Done(InstanceResponse { dashboard_url: self.dashboard_url(instance_id), operation: None }))
    }

    /// Refuses a plan change when the namespace already uses more than the new plan allows.
    async fn check_usage_fits(&self, instance_id: &str, plan: &str, hard: &BTreeMap<String, String>) -> Result<()> {
        let namespace = self.namespace_of(instance_id);
        let quota = Api::<ResourceQuota>::namespaced(self.client.clone(), &namespace).get_opt(QUOTA_NAME).await?;
        let used = quota.and_then(|q| q.status).and_then(|s| s.used).unwrap_or_default();
        let over: Vec<String> = hard
            .iter()
            .filter_map(|(resource, limit)| {
                let in_use = used.get(resource)?;
                (quantity::parse(&in_use.0)? > quantity::parse(limit)?)
                    .then(|| format!("{resource} (in use {}, plan {plan} allows {limit})", in_use.0))
            })
            .collect();
        if over.is_empty() {
            Ok(())
        } else {
            Err(Error::Unprocessable {
                code: "UsageExceedsPlan",
                description: format!(
                    "cannot change to plan {plan}: the virtual cluster uses more than it allows: {}; free resources first",
                    over.join(", ")
                ),
            })
        }
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
        let Some((_, stored)) = self.find(instance_id).await? else {
            return Err(Error::Gone(format!("instance {instance_id} does not exist")));
        };
        if !stored.terminating {
            let hosted = self.workloads_in(instance_id).await?;
            if !hosted.is_empty() {
                return Err(Error::Unprocessable {
                    code: "InstanceInUse",
                    description: format!(
                        "virtual cluster {instance_id} still runs {}: delete {} first",
                        hosted.join(", "),
                        if hosted.len() == 1 { "it" } else { "them" }
                    ),
                });
            }
        }
        // Platforms unbind first; whatever bindings remain are removed with the instance. Identities go first, so
        // that they are revoked now (the garbage collector would also remove them with the namespace).
        self.delete_binding_records(instance_id).await?;
        self.delete_identities_of(instance_id).await?;
        self.revocations.tell(&crate::lifecycle::revocations::Revoked::Instance(instance_id.to_owned()));
        let name = self.namespace_of(instance_id);
        if !stored.terminating {
            let params =
                DeleteParams { propagation_policy: Some(PropagationPolicy::Background), ..DeleteParams::default() };
            match self.namespaces().delete(&name, &params).await {
                Ok(_) => tracing::info!(instance = instance_id, namespace = %name, "deleting the virtual cluster"),
                Err(error) if is_not_found(&error) => {
                    return Err(Error::Gone(format!("instance {instance_id} does not exist")));
                }
                Err(error) => return Err(error.into()),
            }
        }
        if accepts_incomplete {
            return Ok(Deprovisioned::InProgress(OPERATION_DEPROVISION.to_owned()));
        }
        // 200 means deleted: wait until the namespace controller has emptied and removed the namespace.
        let left = self.wait_until_gone(self.options.sync_timeout, || self.namespace_left(&name)).await?;
        match left {
            None => Ok(Deprovisioned::Done),
            Some(remaining) => Err(self.deletion_continues(&format!("instance {instance_id}"), &remaining)),
        }
    }

    /// What is left of a deleted virtual cluster: its namespace while it terminates (a namespace of that name that is
    /// not being deleted is a new instance's, so this one is gone).
    async fn namespace_left(&self, name: &str) -> Result<Option<String>> {
        let namespace = self.namespaces().get_opt(name).await?;
        Ok(namespace
            .filter(|namespace| namespace.metadata.deletion_timestamp.is_some())
            .map(|_| format!("namespace {name} is terminating")))
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
        if stored.terminating {
            return Ok(LastOperation::new(OperationState::InProgress, "deleting the virtual cluster's namespace"));
        }
        if deprovisioning {
            return Ok(LastOperation::new(
                OperationState::Failed,
                "the virtual cluster was not deleted; retry the deletion",
            ));
        }
        if !stored.provisioned {
            return Ok(if self.provisioning_interrupted(&stored) {
                LastOperation::new(
                    OperationState::Failed,
                    "provisioning was interrupted before the virtual cluster was complete; delete the instance and create it again",
                )
            } else {
                LastOperation::new(OperationState::InProgress, "creating the virtual cluster's objects")
            });
        }
        if !self.seen_ready.contains(&namespace) {
            if let Readiness::Waiting(what) = self.readiness(&stored).await? {
                return Ok(LastOperation::new(OperationState::InProgress, what));
            }
            self.seen_ready.insert(&namespace);
        }
        Ok(LastOperation::new(
            OperationState::Succeeded,
            match &stored.maintenance_version {
                Some(version) => format!("the virtual cluster is ready (maintenance version {version})"),
                None => "the virtual cluster is ready".to_owned(),
            },
        ))
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
