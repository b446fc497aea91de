//! Service instances of the virtual-cluster kind: a namespace that records the instance on itself (its labels and
//! annotations), with its quota, limits, network policy, owner identity and RoleBinding. What provision, update and
//! deprovision do for this kind once [`super`] has checked the request and dispatched it here, and what its
//! `last_operation` says.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::{LimitRange, Namespace, ResourceQuota, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams, PropagationPolicy, WatchEvent, WatchParams};

use super::stored::{StoredInstance, context_names};
use super::{Deprovisioned, OPERATION_DEPROVISION, OPERATION_PROVISION, Provisioned, Updated, merge, without_nulls};
use crate::catalog::{Service, quantity};
use crate::k8s::names::{self, *};
use crate::k8s::repository::Repository;
use crate::k8s::virtual_cluster::{VirtualCluster, owned_by};
use crate::k8s::{apply, is_conflict, is_not_found};
use crate::lifecycle::model::{InstanceResponse, LastOperation, OperationState, OriginatingIdentity, UpdateRequest};
use crate::lifecycle::parameters::{self, ClusterParameters, SchemaKind};
use crate::lifecycle::{Broker, check_maintenance, deleted};
use crate::lifecycle::{Error, Result};

/// Whether the cluster has finished setting up a virtual cluster: quota usage computed (until then quota admission
/// refuses pods) and the default ServiceAccount made (until then pods are refused too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Readiness {
    Ready,
    Waiting(&'static str),
}

/// What claiming an instance id found.
enum Claim {
    /// This request made the namespace: here as the apiserver returned it.
    Made(Namespace),
    /// The namespace exists and records this instance.
    Found(StoredInstance),
}

/// What the cluster answered to the writes of a virtual cluster that readiness is judged from.
struct Applied {
    /// The namespace, marked provisioned.
    namespace: Namespace,
    /// The ResourceQuota, with the status its controller had computed by then.
    quota: ResourceQuota,
}

/// Whether the quota controller has computed `quota` as it is specified (until then quota admission refuses pods).
fn quota_computed(quota: Option<&ResourceQuota>) -> bool {
    quota.is_some_and(|quota| {
        let wanted = quota.spec.as_ref().and_then(|spec| spec.hard.as_ref());
        let seen = quota.status.as_ref().and_then(|status| status.hard.as_ref());
        let (wanted, seen) = (wanted.cloned().unwrap_or_default(), seen.cloned().unwrap_or_default());
        wanted.len() == seen.len()
            && wanted
                .iter()
                .all(|(key, value)| seen.get(key).and_then(|s| quantity::parse(&s.0)) == quantity::parse(&value.0))
    })
}

impl Broker {
    pub(in crate::lifecycle) fn namespaces(&self) -> &Repository<Namespace> {
        &self.records.namespaces
    }

    pub(in crate::lifecycle) fn namespace_of(&self, instance_id: &str) -> String {
        names::namespace(&self.options.namespace_prefix, instance_id)
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

    /// 400 when the `cluster` parameter names another cluster than this broker's: the fleet sends each provision to
    /// the cluster it names, and a virtual cluster does not move between clusters on an update (`updating`;
    /// docs/operations.md, "Moving a virtual cluster").
    fn check_cluster_parameter(
        &self,
        parameters: &serde_json::Map<String, serde_json::Value>,
        updating: bool,
    ) -> Result<()> {
        let wanted: ClusterParameters = parameters::parse(parameters)?;
        match wanted.cluster {
            Some(cluster) if cluster != self.options.cluster_name && updating => Err(Error::BadRequest(format!(
                "parameters.cluster: a virtual cluster cannot move to another cluster ({cluster:?}); make a new \
                 instance there and move the workloads (docs/operations.md, \"Moving a virtual cluster\")"
            ))),
            Some(cluster) if cluster != self.options.cluster_name => {
                Err(Error::BadRequest(format!("parameters.cluster: there is no cluster named {cluster:?}")))
            }
            _ => Ok(()),
        }
    }

    /// Provisions a virtual cluster: claims its namespace, applies every object and waits (briefly, or up to the
    /// synchronous timeout) until the cluster has set it up.
    pub(super) async fn provision_virtual_cluster(
        &self,
        service: &Service,
        instance_id: &str,
        wanted: StoredInstance,
        accepts_incomplete: bool,
    ) -> Result<Provisioned> {
        let dashboard_url = self.dashboard_url(instance_id);
        self.check_cluster_parameter(&wanted.attributes.parameters, false)?;
        let started = std::time::Instant::now();
        let (stored, made) = match self.find_or_claim(&wanted, service).await? {
            Claim::Made(namespace) => (None, Some(namespace)),
            Claim::Found(stored) => (Some(stored), None),
        };
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
        let claimed = started.elapsed();
        // Converge: a first request, or a retry of one that was interrupted, applies every object.
        let record = stored.unwrap_or(wanted);
        let applied = match self.apply_virtual_cluster(service, &record, made).await {
            Ok(applied) => applied,
            Err(error) => {
                if created_now {
                    self.delete_namespace_quietly(instance_id).await;
                }
                return Err(error);
            }
        };
        let written = started.elapsed();
        let response = InstanceResponse { dashboard_url, operation: None };
        let readiness = self.wait_until_ready(&record, &applied, accepts_incomplete).await?;
        // Where a provision's time goes (the wait is the cluster's controllers': see docs/benchmarks.md, "Scale").
        tracing::debug!(
            instance = instance_id,
            claim_ms = claimed.as_millis() as u64,
            writes_ms = (written - claimed).as_millis() as u64,
            controllers_ms = (started.elapsed() - written).as_millis() as u64,
            "provision timed"
        );
        match readiness {
            Readiness::Ready if created_now => Ok(Provisioned::Created(response)),
            Readiness::Ready => Ok(Provisioned::AlreadyExists(response)),
            Readiness::Waiting(_) => Ok(Provisioned::InProgress(InstanceResponse {
                operation: Some(OPERATION_PROVISION.to_owned()),
                ..response
            })),
        }
    }

    /// Claims the instance id by creating its namespace (atomic: two concurrent provisions cannot both create it), or
    /// finds what the existing namespace records. The create goes first, so that a new instance (the usual case) costs
    /// no read: only a retry the copy of the records knows, or a broker allowing one instance per organization (whose
    /// check must not count the instance's own namespace as another), reads the cluster before.
    async fn find_or_claim(&self, wanted: &StoredInstance, service: &Service) -> Result<Claim> {
        let known = self.namespaces().present(&self.namespace_of(&wanted.instance_id)).is_some();
        if (known || self.options.one_instance_per_organization)
            && let Some((_, stored)) = self.find(&wanted.instance_id).await?
        {
            return Ok(Claim::Found(stored));
        }
        if self.options.one_instance_per_organization {
            self.check_organization_has_no_instance(wanted, service).await?;
        }
        let namespace = self.virtual_cluster(service, wanted)?.namespace();
        let params = PostParams { field_manager: Some(FIELD_MANAGER.to_owned()), ..PostParams::default() };
        match self.namespaces().create(&params, &namespace).await {
            Ok(made) => Ok(Claim::Made(made)),
            Err(error) if is_conflict(&error) => match self.find(&wanted.instance_id).await? {
                Some((_, stored)) => Ok(Claim::Found(stored)),
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
        let parameters: ClusterParameters = parameters::parse(&record.attributes.parameters)?;
        let pod_security = parameters.pod_security.unwrap_or(plan.broker.pod_security);
        let allow_ingress_from_namespaces = parameters.allow_ingress_from_namespaces;
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

    /// Applies every object of the virtual cluster in the current layout, then marks the namespace provisioned: the
    /// namespace first (unless `made` is it, just created by this request from the same record), then everything in
    /// it and its owner at once (none of them depends on another), then the mark, which so still comes last.
    async fn apply_virtual_cluster(
        &self,
        service: &Service,
        record: &StoredInstance,
        made: Option<Namespace>,
    ) -> Result<Applied> {
        let legacy_owner = record.identity_namespace.is_none().then(|| record.owner.clone());
        let record = &self.in_current_layout(record);
        let mut cluster = self.virtual_cluster(service, record)?;
        let namespace = cluster.namespace.clone();
        let client = self.client.clone();
        let applied = match made {
            Some(made) => made,
            None => self.namespaces().apply(&cluster.namespace()).await?,
        };
        let quotas = Api::<ResourceQuota>::namespaced(client.clone(), &namespace);
        let limits = Api::<LimitRange>::namespaced(client.clone(), &namespace);
        let policies = Api::<NetworkPolicy>::namespaced(client.clone(), &namespace);
        let role_bindings = Api::<RoleBinding>::namespaced(client.clone(), &namespace);
        let owner = cluster.owner_service_account(owned_by(&applied));
        let (quota, ..) = tokio::try_join!(
            async { Ok::<_, Error>(apply(&quotas, &cluster.resource_quota()).await?) },
            async { Ok(apply(&limits, &cluster.limit_range()).await?) },
            async { Ok(apply(&policies, &cluster.network_policy()).await?) },
            async { Ok(apply(&role_bindings, &cluster.owner_role_binding()).await?) },
            self.apply_identity(&owner),
            self.apply_dashboard_watch(&namespace, &record.instance_id),
        )?;
        if let Some(legacy_owner) = legacy_owner {
            // The owner's old ServiceAccount, which the tenant could mint tokens for: deleting it revokes them.
            let accounts = Api::<ServiceAccount>::namespaced(client, &namespace);
            if deleted(accounts.delete(&legacy_owner, &DeleteParams::default()).await)? {
                tracing::info!(instance = %record.instance_id, account = %legacy_owner, "moved the owner out of the tenant namespace");
            }
        }
        cluster.annotations = record.annotations(true);
        let namespace = self.namespaces().apply(&cluster.namespace()).await?;
        Ok(Applied { namespace, quota })
    }

    async fn readiness(&self, record: &StoredInstance) -> Result<Readiness> {
        let namespace = self.namespace_of(&record.instance_id);
        let quotas = Api::<ResourceQuota>::namespaced(self.client.clone(), &namespace);
        let accounts = Api::<ServiceAccount>::namespaced(self.client.clone(), &namespace);
        let (quota, default_account) = tokio::try_join!(quotas.get_opt(QUOTA_NAME), accounts.get_opt("default"))?;
        if !quota_computed(quota.as_ref()) {
            return Ok(Readiness::Waiting("the quota controller is computing the namespace's quota"));
        }
        if default_account.is_none() {
            return Ok(Readiness::Waiting("the namespace's default ServiceAccount is being created"));
        }
        Ok(Readiness::Ready)
    }

    /// Asynchronous requests get the state after a moment (the controllers usually finish within it, and a 201 saves
    /// the platform a round of polling); synchronous ones wait up to the configured timeout. The quota is watched,
    /// not polled (as its apply returned it, then its changes), so that the answer comes as soon as its controller is
    /// done; the default ServiceAccount is read after it. A virtual cluster seen ready is remembered for
    /// `last_operation` (see [`crate::lifecycle::seen_ready`]).
    async fn wait_until_ready(
        &self,
        record: &StoredInstance,
        applied: &Applied,
        accepts_incomplete: bool,
    ) -> Result<Readiness> {
        let patience = if accepts_incomplete { Duration::from_secs(2) } else { self.options.sync_timeout };
        let give_up = tokio::time::Instant::now() + patience.min(self.options.sync_timeout);
        let namespace = self.namespace_of(&record.instance_id);
        let quota_computed_now = async {
            if quota_computed(Some(&applied.quota)) {
                return Ok(());
            }
            // From the version the apply returned: no list first, whose consistent read could wait for the
            // apiserver's cache to catch up with writes of other kinds.
            let quotas = Api::<ResourceQuota>::namespaced(self.client.clone(), &namespace);
            let version = applied.quota.metadata.resource_version.clone().unwrap_or_default();
            let params = WatchParams::default().fields(&format!("metadata.name={QUOTA_NAME}"));
            let mut events = std::pin::pin!(quotas.watch(&params, &version).await?);
            while let Some(event) = events.try_next().await? {
                match event {
                    WatchEvent::Added(quota) | WatchEvent::Modified(quota) if quota_computed(Some(&quota)) => {
                        return Ok(());
                    }
                    WatchEvent::Error(status) => return Err(kube::Error::Api(status)),
                    _ => {}
                }
            }
            Err(kube::Error::Service("the watch of the quota ended".into()))
        };
        // Read once the quota is (the broker may not watch ServiceAccounts): made by its controller as the namespace
        // appeared, it is almost always there by then.
        let account_made = async {
            let accounts = Api::<ServiceAccount>::namespaced(self.client.clone(), &namespace);
            let mut pause = Duration::from_millis(10);
            while accounts.get_opt("default").await?.is_none() {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Ok::<(), kube::Error>(())
        };
        let watched = tokio::time::timeout_at(give_up, async {
            match quota_computed_now.await {
                Ok(()) => (Ok(()), account_made.await),
                Err(error) => (Err(error), Ok(())),
            }
        });
        let readiness = match watched.await {
            Ok((Ok(()), Ok(()))) => Readiness::Ready,
            Ok((quota, account)) => {
                if let Err(error) = quota {
                    tracing::warn!(%namespace, %error, "cannot watch the virtual cluster's quota: polling it");
                }
                if let Err(error) = account {
                    tracing::warn!(%namespace, %error, "cannot read the virtual cluster's default ServiceAccount");
                }
                loop {
                    let readiness = self.readiness(record).await?;
                    if readiness == Readiness::Ready || tokio::time::Instant::now() >= give_up {
                        break readiness;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            // A last look, to say what is missing.
            Err(_) => self.readiness(record).await?,
        };
        match readiness {
            Readiness::Ready => self.seen_ready.insert(&applied.namespace.metadata),
            Readiness::Waiting(what) if !accepts_incomplete => {
                return Err(Error::unavailable(format!("the cluster did not finish in time: {what}")));
            }
            Readiness::Waiting(_) => {}
        }
        Ok(readiness)
    }

    async fn delete_namespace_quietly(&self, instance_id: &str) {
        let name = self.namespace_of(instance_id);
        if let Err(error) = self.namespaces().delete(&name, &DeleteParams::background()).await
            && !is_not_found(&error)
        {
            tracing::warn!(namespace = %name, %error, "could not remove a half-made namespace");
        }
    }

    /// Updates a virtual cluster: a plan change (when the plan allows it and the usage fits), parameters, context.
    pub(super) async fn update_virtual_cluster(
        &self,
        service: &Service,
        instance_id: &str,
        request: UpdateRequest,
        identity: Option<OriginatingIdentity>,
    ) -> Result<Updated> {
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
            self.check_cluster_parameter(&updated.attributes.parameters, true)?;
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
        self.apply_virtual_cluster(service, &updated, None).await?;
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

    /// Deprovisions a virtual cluster: refused while workloads run in it; its bindings and identities go first.
    pub(super) async fn deprovision_virtual_cluster(
        &self,
        instance_id: &str,
        accepts_incomplete: bool,
    ) -> Result<Deprovisioned> {
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

    /// A virtual cluster's state as `last_operation` reports it: being deleted, not deleted when a deletion was polled,
    /// interrupted or still being made, waiting for the cluster's controllers, or ready.
    pub(super) async fn virtual_cluster_state(
        &self,
        namespace: &ObjectMeta,
        stored: &StoredInstance,
        deprovisioning: bool,
    ) -> Result<LastOperation> {
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
            return Ok(if self.provisioning_interrupted(stored) {
                LastOperation::new(
                    OperationState::Failed,
                    "provisioning was interrupted before the virtual cluster was complete; delete the instance and create it again",
                )
            } else {
                LastOperation::new(OperationState::InProgress, "creating the virtual cluster's objects")
            });
        }
        if !self.seen_ready.contains(namespace) {
            if let Readiness::Waiting(what) = self.readiness(stored).await? {
                return Ok(LastOperation::new(OperationState::InProgress, what));
            }
            self.seen_ready.insert(namespace);
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
