//! Workload instances (streaming sessions and container apps): placed into a tenant's virtual cluster, recorded by a
//! ConfigMap in the broker's namespace (tenants cannot touch it), their objects labelled with the instance so that
//! deprovisioning removes exactly them. Provision and update are asynchronous; progress is read from the pods.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{
    ConfigMap, Event, Namespace, PersistentVolumeClaim, Pod, ResourceQuota, Secret, Service as KubeService,
};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde_json::{Map, Value, json};

use super::stored::{Attributes, StoredInstance};
use crate::catalog::{Plan, Service, ServiceKind, quantity};
use crate::k8s::names::{self, *};
use crate::k8s::quota;
use crate::k8s::repository::Repository;
use crate::k8s::workload::{
    Autoscale, ContainerApp, STREAM_PORT, StreamProtocol, StreamingSession, VNC_PASSWORD_KEY, VNC_PORT, Workload,
};
use crate::k8s::{apply, is_conflict, is_not_found};
use crate::lifecycle::idle_stop::IdleStop;
use crate::lifecycle::model::{
    BindingResponse, Endpoint, InstanceResponse, LastOperation, OperationState, UpdateRequest,
};
use crate::lifecycle::parameters::{self, AppParameters, RunState, SchemaKind, SessionParameters, WorkloadParameters};
use crate::lifecycle::progress::{Refusals, progress};
use crate::lifecycle::{Broker, check_maintenance};
use crate::lifecycle::{Error, Result};

/// The `operation` of a workload update.
pub const OPERATION_UPDATE: &str = "update";

/// A workload instance as its record holds it.
#[derive(Debug, Clone)]
pub struct WorkloadRecord {
    /// OSB attributes and state.
    pub stored: StoredInstance,
    /// The tenant namespace it runs in.
    pub namespace: String,
    /// The virtual cluster it runs in.
    pub cluster_instance_id: String,
    /// When and why the broker stopped it for want of a viewer (a streaming session), until it is woken.
    pub idle_stop: Option<IdleStop>,
}

impl WorkloadRecord {
    /// The record that `meta` (a record ConfigMap's) holds, if it is `instance_id`'s.
    pub(in crate::lifecycle) fn from_meta(meta: &ObjectMeta, instance_id: &str) -> Option<WorkloadRecord> {
        let stored = StoredInstance::from_meta(meta).filter(|s| s.instance_id == instance_id)?;
        let annotation = |key: &str| meta.annotations.as_ref().and_then(|a| a.get(key)).cloned().unwrap_or_default();
        Some(WorkloadRecord {
            stored,
            namespace: annotation(ANNOTATION_NAMESPACE),
            cluster_instance_id: annotation(ANNOTATION_CLUSTER_INSTANCE_ID),
            idle_stop: idle_stop(meta),
        })
    }
}

/// The idle stop a record's annotations hold, if any.
fn idle_stop(meta: &ObjectMeta) -> Option<IdleStop> {
    let annotations = meta.annotations.as_ref()?;
    Some(IdleStop {
        at: annotations.get(ANNOTATION_IDLE_STOPPED_AT)?.parse().ok()?,
        minutes: annotations.get(ANNOTATION_IDLE_STOP_MINUTES).and_then(|m| m.parse().ok()).unwrap_or_default(),
    })
}

/// The workload a record asks for, built as the typed objects of its kind (what is applied, counted against the quota
/// and read back for its state).
enum PlannedWorkload {
    Session(StreamingSession),
    App(ContainerApp),
}

impl PlannedWorkload {
    fn workload(&self) -> &Workload {
        match self {
            PlannedWorkload::Session(session) => &session.workload,
            PlannedWorkload::App(app) => &app.workload,
        }
    }

    /// What the workload takes from its namespace's quota once it runs: its pods, their resources, its objects.
    fn quota_needed(&self) -> quota::Usage {
        let one = quantity::parse("1").unwrap_or(quantity::Milli(1000));
        let times = |amount: quantity::Milli, n: i32| quantity::Milli(amount.0 * i128::from(n));
        let mut needed = quota::Usage::new();
        let (pod, pods, objects) = match self {
            PlannedWorkload::Session(session) => {
                let set = session.stateful_set();
                let storage = session.workload.size.storage.as_deref().and_then(quantity::parse);
                quota::add(&mut needed, "persistentvolumeclaims", one);
                quota::add(&mut needed, "requests.storage", storage.unwrap_or(quantity::Milli(0)));
                (set.spec.and_then(|s| s.template.spec), 1, ["count/statefulsets.apps", "count/secrets"])
            }
            PlannedWorkload::App(app) => {
                let deployment = app.deployment();
                (deployment.spec.and_then(|s| s.template.spec), self.expected(), ["count/deployments.apps", ""])
            }
        };
        for (resource, amount) in pod.as_ref().map(quota::pod_usage).unwrap_or_default() {
            quota::add(&mut needed, &resource, times(amount, pods));
        }
        quota::add(&mut needed, "pods", times(one, pods));
        quota::add(&mut needed, "services", one);
        for object in objects.into_iter().filter(|o| !o.is_empty()) {
            quota::add(&mut needed, object, one);
        }
        needed
    }

    /// Pods that should be ready.
    fn expected(&self) -> i32 {
        match self {
            PlannedWorkload::Session(session) => i32::from(session.workload.running),
            PlannedWorkload::App(app) if !app.workload.running => 0,
            PlannedWorkload::App(app) => app.autoscale.as_ref().map_or(app.replicas, |a| a.min),
        }
    }
}

/// What a container app takes from its namespace's quota once it runs, counted as for a container-app instance.
pub fn app_quota_needed(app: &ContainerApp) -> quota::Usage {
    PlannedWorkload::App(app.clone()).quota_needed()
}

impl Broker {
    fn workload_records(&self) -> &Repository<ConfigMap> {
        &self.records.workloads
    }

    pub(in crate::lifecycle) fn record_name(instance_id: &str) -> String {
        names::dns_label("instance-", instance_id)
    }

    /// The record of a workload instance, if `instance_id` is one, read from the cluster.
    pub(in crate::lifecycle) async fn workload(&self, instance_id: &str) -> Result<Option<WorkloadRecord>> {
        let record = self.workload_records().get_opt(&Broker::record_name(instance_id)).await?;
        Ok(record.and_then(|record| WorkloadRecord::from_meta(&record.metadata, instance_id)))
    }

    fn record_object(&self, record: &WorkloadRecord, provisioned: bool) -> ConfigMap {
        let mut annotations = record.stored.annotations(provisioned);
        annotations.insert(ANNOTATION_NAMESPACE.to_owned(), record.namespace.clone());
        annotations.insert(ANNOTATION_CLUSTER_INSTANCE_ID.to_owned(), record.cluster_instance_id.clone());
        if let Some(stop) = &record.idle_stop {
            annotations.insert(ANNOTATION_IDLE_STOPPED_AT.to_owned(), stop.at.to_string());
            annotations.insert(ANNOTATION_IDLE_STOP_MINUTES.to_owned(), stop.minutes.to_string());
        }
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(Broker::record_name(&record.stored.instance_id)),
                namespace: Some(self.options.broker_namespace.clone()),
                labels: Some({
                    let attributes = &record.stored.attributes;
                    let (service, plan) = self.plan_names(&attributes.service_id, &attributes.plan_id);
                    ManagedLabels { instance_id: &record.stored.instance_id, service: &service, plan: &plan }.to_map()
                }),
                annotations: Some(annotations),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }

    /// The records of the workload instances placed in a virtual cluster.
    pub(in crate::lifecycle) async fn workload_records_in(
        &self,
        cluster_instance_id: &str,
    ) -> Result<Vec<WorkloadRecord>> {
        let selector = format!("{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_SERVICE}");
        let records = match self.workload_records().list_metadata(&ListParams::default().labels(&selector)).await {
            Ok(records) => records.items,
            Err(error) if is_not_found(&error) => Vec::new(),
            Err(error) => return Err(error.into()),
        };
        Ok(records
            .into_iter()
            .filter_map(|record| {
                let stored = StoredInstance::from_meta(&record.metadata)?;
                let idle_stop = idle_stop(&record.metadata);
                let annotations = record.metadata.annotations.unwrap_or_default();
                (annotations.get(ANNOTATION_CLUSTER_INSTANCE_ID)? == cluster_instance_id).then(|| WorkloadRecord {
                    stored,
                    namespace: annotations.get(ANNOTATION_NAMESPACE).cloned().unwrap_or_default(),
                    cluster_instance_id: cluster_instance_id.to_owned(),
                    idle_stop,
                })
            })
            .collect())
    }

    /// The workload instances placed in a virtual cluster, described for the user (`container-app instance <id>`).
    pub(in crate::lifecycle) async fn workloads_in(&self, cluster_instance_id: &str) -> Result<Vec<String>> {
        Ok(self
            .workload_records_in(cluster_instance_id)
            .await?
            .iter()
            .map(|record| {
                let attributes = &record.stored.attributes;
                let (service, _) = self.plan_names(&attributes.service_id, &attributes.plan_id);
                format!("{service} instance {}", record.stored.instance_id)
            })
            .collect())
    }

    /// Writes a workload's record over the version `resource_version` of it (a server-side apply precondition);
    /// `false` when the record changed since that version was read.
    pub(in crate::lifecycle) async fn write_workload_record(
        &self,
        record: &WorkloadRecord,
        resource_version: Option<String>,
    ) -> Result<bool> {
        let mut object = self.record_object(record, true);
        object.metadata.resource_version = resource_version;
        match self.workload_records().apply(&object).await {
            Ok(_) => Ok(true),
            Err(error) if is_conflict(&error) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// Provisions a workload: validated by the caller; always asynchronous.
    pub(in crate::lifecycle) async fn provision_workload(
        &self,
        service: &Service,
        wanted: StoredInstance,
    ) -> Result<super::Provisioned> {
        let dashboard_url = self.dashboard_url(&wanted.instance_id);
        let accepted = || {
            super::Provisioned::InProgress(InstanceResponse {
                dashboard_url: dashboard_url.clone(),
                operation: Some(super::OPERATION_PROVISION.to_owned()),
            })
        };
        if let Some(existing) = self.workload(&wanted.instance_id).await? {
            return self.repeat_provision(service, existing, &wanted, dashboard_url).await;
        }
        let (cluster_instance_id, namespace) = self.place(&wanted).await?;
        let record = WorkloadRecord { stored: wanted, namespace, cluster_instance_id, idle_stop: None };
        self.check_fits(service, &record).await?;
        self.check_ingress_host(&record)?;
        self.ensure_namespace(&self.options.broker_namespace).await?;
        let params = PostParams { field_manager: Some(FIELD_MANAGER.to_owned()), ..PostParams::default() };
        match self.workload_records().create(&params, &self.record_object(&record, false)).await {
            Ok(_) => {}
            Err(error) if is_conflict(&error) => {
                let existing = self.workload(&record.stored.instance_id).await?.ok_or_else(|| {
                    Error::Concurrency(format!("instance {} is changing; retry", record.stored.instance_id))
                })?;
                return self.repeat_provision(service, existing, &record.stored, dashboard_url).await;
            }
            Err(error) => return Err(error.into()),
        }
        if let Err(error) = self.apply_workload(service, &record).await {
            self.delete_workload_objects(service, &record).await.ok();
            let name = Broker::record_name(&record.stored.instance_id);
            self.workload_records().delete(&name, &DeleteParams::default()).await.ok();
            return Err(error);
        }
        self.workload_records().apply(&self.record_object(&record, true)).await?;
        Ok(accepted())
    }

    /// 400 for an Ingress host outside the virtual cluster's domain, when Ingress hosts are limited
    /// (`ingress.domain`): the tenant guard would refuse the Ingress, and the broker says so before making anything.
    fn check_ingress_host(&self, record: &WorkloadRecord) -> Result<()> {
        let Some(domain) = &self.options.ingress_domain else { return Ok(()) };
        let parameters: WorkloadParameters = parameters::parse(&record.stored.attributes.parameters)?;
        let Some(host) = parameters.ingress_host else { return Ok(()) };
        let allowed = names::ingress_domain(&record.cluster_instance_id, domain);
        if names::host_under(&host, &allowed) {
            return Ok(());
        }
        Err(Error::BadRequest(format!(
            "parameters.ingress_host {host:?} is not under this virtual cluster's domain: use {allowed} or \
             <name>.{allowed}"
        )))
    }

    async fn repeat_provision(
        &self,
        service: &Service,
        existing: WorkloadRecord,
        wanted: &StoredInstance,
        dashboard_url: Option<String>,
    ) -> Result<super::Provisioned> {
        let differences = existing.stored.attributes.differences(&wanted.attributes);
        if !differences.is_empty() {
            return Err(Error::Conflict(format!(
                "instance {} already exists with a different {}",
                wanted.instance_id,
                differences.join(", ")
            )));
        }
        let response = InstanceResponse { dashboard_url, operation: None };
        let state = self.workload_state(service, &existing).await?;
        Ok(if state.state == OperationState::Succeeded {
            super::Provisioned::AlreadyExists(response)
        } else {
            super::Provisioned::InProgress(InstanceResponse {
                operation: Some(super::OPERATION_PROVISION.to_owned()),
                ..response
            })
        })
    }

    /// Refuses a workload that its virtual cluster's quota cannot hold beside what already runs there, saying what
    /// it needs and what is in use (the quota admission would otherwise refuse its pods minutes later).
    async fn check_fits(&self, service: &Service, record: &WorkloadRecord) -> Result<()> {
        let built = self.build(service, record)?;
        if built.expected() == 0 {
            return Ok(());
        }
        let quotas = Api::<ResourceQuota>::namespaced(self.client.clone(), &record.namespace);
        let short = quota::shortfalls(&built.quota_needed(), quotas.get_opt(QUOTA_NAME).await?.as_ref());
        if short.is_empty() {
            return Ok(());
        }
        Err(Error::Unprocessable {
            code: "QuotaExceeded",
            description: format!(
                "this {} does not fit in virtual cluster {}: {}; free resources there, choose a smaller plan, or \
                 upgrade the virtual cluster's plan",
                service.name,
                record.cluster_instance_id,
                short.join("; ")
            ),
        })
    }

    /// The virtual cluster a workload goes into: the one named by `cluster_instance_id`, or the organization's only one.
    async fn place(&self, wanted: &StoredInstance) -> Result<(String, String)> {
        let organization = &wanted.attributes.organization_guid;
        let parameters: WorkloadParameters = parameters::parse(&wanted.attributes.parameters)?;
        if let Some(cluster) = parameters.cluster_instance_id.as_deref() {
            let Some((namespace, stored)) = self.find(cluster).await? else {
                return Err(Error::BadRequest(format!(
                    "parameters.cluster_instance_id: {cluster:?} is not a virtual cluster of this broker"
                )));
            };
            if stored.attributes.organization_guid != *organization {
                return Err(Error::BadRequest(format!(
                    "parameters.cluster_instance_id: virtual cluster {cluster:?} belongs to another organization"
                )));
            }
            if !stored.provisioned || stored.terminating {
                return Err(Error::BadRequest(format!(
                    "parameters.cluster_instance_id: virtual cluster {cluster:?} is being created or deleted; retry when it is ready"
                )));
            }
            return Ok((cluster.to_owned(), namespace.metadata.name.unwrap_or_default()));
        }
        let candidates = self.organization_virtual_clusters(organization).await?;
        match candidates.as_slice() {
            [(namespace, stored)] => Ok((stored.instance_id.clone(), namespace.clone())),
            [] => Err(Error::BadRequest(format!(
                "organization {organization} has no virtual cluster to run this in: create one first \
                 (cf create-service caas small my-cluster), or name one with parameters.cluster_instance_id"
            ))),
            several => Err(Error::BadRequest(format!(
                "organization {organization} has {} virtual clusters: choose one with parameters.cluster_instance_id ({})",
                several.len(),
                several.iter().map(|(_, s)| s.instance_id.as_str()).collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    /// The organization's virtual clusters here that are made and not being deleted, as (namespace, record): where a
    /// workload without `cluster_instance_id` goes, and how the fleet finds the cluster that holds them.
    pub(in crate::lifecycle) async fn organization_virtual_clusters(
        &self,
        organization: &str,
    ) -> Result<Vec<(String, StoredInstance)>> {
        let cluster_services: Vec<String> = self
            .catalog
            .services
            .iter()
            .filter(|s| s.broker.kind == ServiceKind::VirtualCluster)
            .map(|s| names::label_value(&s.name))
            .collect();
        let selector = format!("{LABEL_ORGANIZATION}={}", names::label_value(organization));
        let listed = Api::<Namespace>::all(self.client.clone()).list(&ListParams::default().labels(&selector)).await?;
        let candidates: Vec<(String, StoredInstance)> = listed
            .items
            .iter()
            .filter(|ns| {
                ns.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(LABEL_SERVICE))
                    .is_some_and(|s| cluster_services.contains(s))
            })
            .filter_map(|ns| Some((ns.metadata.name.clone()?, StoredInstance::from_namespace(ns)?)))
            .filter(|(_, s)| s.attributes.organization_guid == *organization && s.provisioned && !s.terminating)
            .collect();
        Ok(candidates)
    }

    fn build(&self, service: &Service, record: &WorkloadRecord) -> Result<PlannedWorkload> {
        let plan = service.plan(&record.stored.attributes.plan_id).ok_or_else(|| {
            Error::internal(format!("plan {} is no longer in the catalog", record.stored.attributes.plan_id))
        })?;
        let size = plan.broker.workload.clone().unwrap_or_default();
        let given = &record.stored.attributes.parameters;
        let prefix = if service.broker.kind == ServiceKind::StreamingSession { "session-" } else { "app-" };
        let workload = |common: WorkloadParameters| Workload {
            name: names::short_label(prefix, &record.stored.instance_id, 50),
            namespace: record.namespace.clone(),
            labels: ManagedLabels { instance_id: &record.stored.instance_id, service: &service.name, plan: &plan.name }
                .to_map(),
            // A session stopped for want of a viewer stays stopped until an update gives its state again.
            running: common.state == RunState::Running && record.idle_stop.is_none(),
            restart: common.restart,
            ingress_host: common.ingress_host,
            ingress_class: common.ingress_class,
            size: size.clone(),
            resources: None,
            placement: self.options.placement.clone(),
        };
        Ok(match service.broker.kind {
            ServiceKind::StreamingSession => {
                let session: SessionParameters = parameters::parse(given)?;
                let framed_by = session.workload.ingress_host.as_ref().and(self.dashboard_origin());
                PlannedWorkload::Session(StreamingSession {
                    workload: workload(session.workload),
                    image: self.options.session_image.clone(),
                    steam_app_id: session.steam_app_id,
                    steam_credentials_secret: session.steam_credentials_secret,
                    launch: session.launch.command_line(),
                    resolution: session.resolution.or(size.resolution).unwrap_or_else(|| "1280x720".to_owned()),
                    expose: session.expose,
                    runtime_class: self.options.gpu_runtime_class.clone(),
                    protocol: session.protocol,
                    idle_stop_minutes: session.idle_stop_minutes.or(size.idle_stop_minutes).unwrap_or_default(),
                    framed_by,
                })
            }
            ServiceKind::ContainerApp => {
                let app: AppParameters = parameters::parse(given)?;
                PlannedWorkload::App(ContainerApp {
                    workload: workload(app.workload),
                    image: app.image.unwrap_or_default(),
                    port: app.port,
                    replicas: app.replicas,
                    env: app.env,
                    scale_down_after_seconds: app.autoscale.as_ref().and_then(|a| a.scale_down_after_seconds),
                    autoscale: app.autoscale.map(|a| Autoscale { min: a.min, max: a.max, cpu_percent: a.cpu_percent }),
                    path: app.path,
                })
            }
            ServiceKind::VirtualCluster => {
                return Err(Error::internal("a virtual cluster is not a workload".to_owned()));
            }
        })
    }

    pub(in crate::lifecycle) async fn apply_workload(&self, service: &Service, record: &WorkloadRecord) -> Result<()> {
        let built = self.build(service, record)?;
        let ns = &record.namespace;
        let client = self.client.clone();
        let ingresses = Api::<Ingress>::namespaced(client.clone(), ns);
        let name = built.workload().name.clone();
        let ingress = match &built {
            PlannedWorkload::Session(session) => {
                let secrets = Api::<Secret>::namespaced(client.clone(), ns);
                if secrets.get_opt(&session.vnc_secret_name()).await?.is_none() {
                    match secrets.create(&PostParams::default(), &session.vnc_secret(&vnc_password()?)).await {
                        Ok(_) => {}
                        Err(error) if is_conflict(&error) => {}
                        Err(error) => return Err(error.into()),
                    }
                }
                apply(&Api::<StatefulSet>::namespaced(client.clone(), ns), &session.stateful_set()).await?;
                apply(&Api::<KubeService>::namespaced(client.clone(), ns), &session.service()).await?;
                session.ingress()
            }
            PlannedWorkload::App(app) => {
                apply(&Api::<Deployment>::namespaced(client.clone(), ns), &app.deployment()).await?;
                apply(&Api::<KubeService>::namespaced(client.clone(), ns), &app.service()).await?;
                let autoscalers = Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), ns);
                match app.autoscaler() {
                    Some(autoscaler) => {
                        apply(&autoscalers, &autoscaler).await?;
                    }
                    None => ignore_missing(autoscalers.delete(&name, &DeleteParams::default()).await)?,
                }
                app.ingress()
            }
        };
        match ingress {
            Some(ingress) => {
                apply(&ingresses, &ingress).await?;
            }
            None => ignore_missing(ingresses.delete(&name, &DeleteParams::default()).await)?,
        }
        Ok(())
    }

    async fn delete_workload_objects(&self, service: &Service, record: &WorkloadRecord) -> Result<()> {
        let built = self.build(service, record)?;
        let name = built.workload().name.clone();
        let ns = &record.namespace;
        let client = self.client.clone();
        let params = DeleteParams::background();
        ignore_missing(Api::<Ingress>::namespaced(client.clone(), ns).delete(&name, &params).await)?;
        ignore_missing(Api::<KubeService>::namespaced(client.clone(), ns).delete(&name, &params).await)?;
        match &built {
            PlannedWorkload::Session(session) => {
                ignore_missing(Api::<StatefulSet>::namespaced(client.clone(), ns).delete(&name, &params).await)?;
                ignore_missing(
                    Api::<Secret>::namespaced(client.clone(), ns).delete(&session.vnc_secret_name(), &params).await,
                )?;
                let selector = format!("{LABEL_INSTANCE}={}", names::label_value(&record.stored.instance_id));
                let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns);
                ignore_missing(claims.delete_collection(&params, &ListParams::default().labels(&selector)).await)?;
            }
            PlannedWorkload::App(_) => {
                ignore_missing(
                    Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), ns).delete(&name, &params).await,
                )?;
                ignore_missing(Api::<Deployment>::namespaced(client.clone(), ns).delete(&name, &params).await)?;
            }
        }
        Ok(())
    }

    /// Where a workload stands, from its controller and pods.
    pub(in crate::lifecycle) async fn workload_state(
        &self,
        service: &Service,
        record: &WorkloadRecord,
    ) -> Result<LastOperation> {
        if !record.stored.provisioned {
            return Ok(if self.provisioning_interrupted(&record.stored) {
                LastOperation::new(
                    OperationState::Failed,
                    "provisioning was interrupted; delete the instance and create it again",
                )
            } else {
                LastOperation::new(OperationState::InProgress, "creating the workload's objects")
            });
        }
        let built = self.build(service, record)?;
        let name = built.workload().name.clone();
        let ns = &record.namespace;
        let selector = format!("{LABEL_INSTANCE}={}", names::label_value(&record.stored.instance_id));
        let pods =
            Api::<Pod>::namespaced(self.client.clone(), ns).list(&ListParams::default().labels(&selector)).await?;
        // Whether the pods run the current template; and, for an app, why its Deployment cannot create one now
        // (its ReplicaFailure condition: current, unlike events, which outlive what they report).
        let (rolled_out, replica_failure) = match &built {
            PlannedWorkload::Session(_) => {
                let set = Api::<StatefulSet>::namespaced(self.client.clone(), ns).get_opt(&name).await?;
                let rolled_out = set.is_some_and(|set| {
                    let generation = set.metadata.generation.unwrap_or_default();
                    let status = set.status.unwrap_or_default();
                    status.observed_generation.unwrap_or_default() >= generation
                        && status.update_revision.is_some()
                        && status.update_revision == status.current_revision
                });
                (rolled_out, None)
            }
            PlannedWorkload::App(_) => {
                let deployment = Api::<Deployment>::namespaced(self.client.clone(), ns).get_opt(&name).await?;
                let replicas = deployment.as_ref().and_then(|d| d.spec.as_ref()?.replicas).unwrap_or(1);
                let generation = deployment.as_ref().and_then(|d| d.metadata.generation).unwrap_or_default();
                let status = deployment.and_then(|d| d.status).unwrap_or_default();
                let rolled_out = status.observed_generation.unwrap_or_default() >= generation
                    && generation > 0
                    && status.updated_replicas.unwrap_or_default() >= replicas
                    && status.replicas.unwrap_or_default() == replicas;
                let failure =
                    status.conditions.unwrap_or_default().into_iter().find_map(|c| {
                        (c.type_ == "ReplicaFailure" && c.status == "True").then_some(c.message).flatten()
                    });
                (rolled_out, failure)
            }
        };
        // Warnings, and the volume controller's FailedBinding, which it reports as a Normal event ("no persistent
        // volumes available for this claim...") although it is why a claim waits.
        let events = Api::<Event>::namespaced(self.client.clone(), ns).list(&ListParams::default()).await?;
        let warnings: Vec<&Event> = events
            .items
            .iter()
            .filter(|e| e.type_.as_deref() == Some("Warning") || e.reason.as_deref() == Some("FailedBinding"))
            .collect();
        // The latest matching warning, as "<object>: <message>" or the message alone.
        let latest = |matches: &dyn Fn(&Event) -> bool, named: bool| {
            let event =
                warnings.iter().filter(|e| matches(e)).max_by_key(|e| e.last_timestamp.as_ref().map(|t| t.0))?;
            let message = event.message.clone()?;
            Some(match (&event.involved_object.name, named) {
                (Some(object), true) => format!("{object}: {message}"),
                _ => message,
            })
        };
        let failed_create = latest(
            &|e| {
                e.reason.as_deref() == Some("FailedCreate")
                    && e.involved_object.name.as_deref().is_some_and(|n| n.starts_with(&name))
            },
            false,
        );
        // A session's claim (its one pod's, data-<name>-0) while it is unbound, and why, if the cluster said so.
        let unbound: Vec<String> = match &built {
            PlannedWorkload::Session(_) => {
                let claim = format!("data-{name}-0");
                let found = Api::<PersistentVolumeClaim>::namespaced(self.client.clone(), ns).get_opt(&claim).await?;
                found
                    .filter(|c| c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending"))
                    .map(|_| vec![claim])
                    .unwrap_or_default()
            }
            PlannedWorkload::App(_) => Vec::new(),
        };
        let claim_refusal = latest(
            &|e| {
                matches!(e.reason.as_deref(), Some("ProvisioningFailed" | "FailedBinding"))
                    && e.involved_object.kind.as_deref() == Some("PersistentVolumeClaim")
                    && e.involved_object.name.as_ref().is_some_and(|claim| unbound.contains(claim))
            },
            true,
        );
        // A workload being stopped is stopped once its last pod is gone, not while a terminating one still serves.
        let live: Vec<Pod> = if built.expected() == 0 {
            pods.items
        } else {
            pods.items.into_iter().filter(|p| p.metadata.deletion_timestamp.is_none()).collect()
        };
        let pod_creation = replica_failure.clone().or(failed_create);
        let refusals = Refusals { pod_creation: pod_creation.as_deref(), volume_claim: claim_refusal.as_deref() };
        let state = progress(built.expected(), &live, refusals);
        if let Some(stop) = record.idle_stop.filter(|_| state.state == OperationState::Succeeded) {
            return Ok(LastOperation::new(
                OperationState::Succeeded,
                format!(
                    "{} (at {}); the volume is kept; an update with state \"running\" wakes it",
                    stop.describe(),
                    stop.at.strftime("%Y-%m-%d %H:%M UTC")
                ),
            ));
        }
        if state.state == OperationState::Succeeded && !rolled_out {
            // The old pods serve, but a new one cannot be made (e.g. the quota has no room for the rollout's surge).
            if let Some(message) = replica_failure {
                return Ok(LastOperation::new(
                    OperationState::Failed,
                    format!("the cluster refused to create a pod of the new version: {message}"),
                ));
            }
            return Ok(LastOperation::new(OperationState::InProgress, "rolling out the new version of the pods"));
        }
        Ok(state)
    }

    /// PATCH for a workload: always asynchronous.
    pub(in crate::lifecycle) async fn update_workload(
        &self,
        service: &Service,
        record: WorkloadRecord,
        request: UpdateRequest,
        accepts_incomplete: bool,
    ) -> Result<InstanceResponse> {
        let instance_id = record.stored.instance_id.clone();
        let target_id =
            request.plan_id.as_deref().filter(|id| !id.is_empty()).unwrap_or(&record.stored.attributes.plan_id);
        let (_, target) = self.service_and_plan(&service.id, target_id)?;
        check_maintenance(target, request.maintenance_info.as_ref())?;
        let mut updated = record.clone();
        updated.stored.attributes.plan_id = target.id.clone();
        updated.stored.maintenance_version = target.maintenance_version().map(str::to_owned);
        if let Some(changes) = request.parameters {
            self.schemas.validate(&target.id, SchemaKind::Update, &super::without_nulls(&changes))?;
            // A state given again (the dashboard's Open gives "running") ends a stop for want of a viewer.
            if changes.contains_key("state") {
                updated.idle_stop = None;
            }
            if changes.get("cluster_instance_id").is_some_and(|c| c.as_str() != Some(&record.cluster_instance_id)) {
                return Err(Error::BadRequest(
                    "parameters.cluster_instance_id: a workload cannot move to another virtual cluster".to_owned(),
                ));
            }
            updated.stored.attributes.parameters = super::merge(&record.stored.attributes.parameters, changes);
            self.schemas.validate(&target.id, SchemaKind::Update, &updated.stored.attributes.parameters)?;
            self.check_ingress_host(&updated)?;
        }
        if !accepts_incomplete {
            return Err(Error::AsyncRequired);
        }
        self.apply_workload(service, &updated).await?;
        self.workload_records().apply(&self.record_object(&updated, true)).await?;
        if let (Some(stop), None) = (record.idle_stop, updated.idle_stop) {
            count_saved(&stop);
            tracing::info!(instance = %instance_id, "woke a streaming session stopped for want of a viewer");
        }
        Ok(InstanceResponse {
            dashboard_url: self.dashboard_url(&instance_id),
            operation: Some(OPERATION_UPDATE.to_owned()),
        })
    }

    /// DELETE for a workload: removes its objects (volume included) and its record. Asynchronously the pods go in the
    /// background; a synchronous request (`wait`) keeps the record, so that a repeat finds and follows the deletion,
    /// until every object is gone, and fails with `AsyncRequired` if that takes longer than the synchronous timeout.
    pub(in crate::lifecycle) async fn deprovision_workload(
        &self,
        service: &Service,
        record: WorkloadRecord,
        wait: bool,
    ) -> Result<String> {
        let instance_id = &record.stored.instance_id;
        self.delete_binding_records(instance_id).await?;
        self.delete_workload_objects(service, &record).await?;
        if wait {
            let (id, ns) = (instance_id.as_str(), record.namespace.as_str());
            let left = self.wait_until_gone(self.options.sync_timeout, || self.workload_objects_left(id, ns)).await?;
            if let Some(remaining) = left {
                return Err(self.deletion_continues(&format!("instance {instance_id}"), &remaining));
            }
        }
        let name = Broker::record_name(instance_id);
        ignore_missing(self.workload_records().delete(&name, &DeleteParams::default()).await)?;
        if let Some(stop) = &record.idle_stop {
            count_saved(stop);
        }
        Ok(format!("{}:{}", super::OPERATION_DEPROVISION, record.namespace))
    }

    /// The objects of a deleted workload still in its namespace (pods, controllers, services, volumes...); `None` when
    /// nothing is left. Pods are listed by the instance label; every other object is looked up by the name the
    /// workload gives it (a session's or an app's: the record, and with it the kind, may be gone already), so that the
    /// broker needs no permission to list Secrets or controllers in tenant namespaces.
    async fn workload_objects_left(&self, instance_id: &str, ns: &str) -> Result<Option<String>> {
        let selector = format!("{LABEL_INSTANCE}={}", names::label_value(instance_id));
        let pods = match Api::<Pod>::namespaced(self.client.clone(), ns)
            .list_metadata(&ListParams::default().labels(&selector))
            .await
        {
            Ok(pods) => pods.items.len(),
            Err(error) if is_not_found(&error) => 0,
            Err(error) => return Err(error.into()),
        };
        let session = names::short_label("session-", instance_id, 50);
        let app = names::short_label("app-", instance_id, 50);
        let client = &self.client;
        let (set, secret, claim, session_service, session_ingress, deployment, autoscaler, app_service, app_ingress) =
            tokio::try_join!(
                exists::<StatefulSet>(client, ns, session.clone()),
                exists::<Secret>(client, ns, format!("{session}-vnc")),
                exists::<PersistentVolumeClaim>(client, ns, format!("data-{session}-0")),
                exists::<KubeService>(client, ns, session.clone()),
                exists::<Ingress>(client, ns, session),
                exists::<Deployment>(client, ns, app.clone()),
                exists::<HorizontalPodAutoscaler>(client, ns, app.clone()),
                exists::<KubeService>(client, ns, app.clone()),
                exists::<Ingress>(client, ns, app),
            )?;
        let found =
            [set, secret, claim, session_service, session_ingress, deployment, autoscaler, app_service, app_ingress];
        let mut left: Vec<String> = found.into_iter().flatten().collect();
        if pods > 0 {
            left.insert(0, format!("{pods} pod(s)"));
        }
        Ok((!left.is_empty()).then(|| format!("left in namespace {ns}: {}", left.join(", "))))
    }

    /// last_operation of a deleted workload: done when none of its objects (pods, volumes...) is left in the namespace
    /// the operation names.
    pub(in crate::lifecycle) async fn workload_deletion_state(
        &self,
        instance_id: &str,
        namespace: &str,
    ) -> Result<LastOperation> {
        if !DnsLabel::is_valid(namespace) {
            return Ok(LastOperation::new(OperationState::Succeeded, "the workload has been deleted"));
        }
        Ok(match self.workload_objects_left(instance_id, namespace).await? {
            None => LastOperation::new(OperationState::Succeeded, "the workload has been deleted"),
            Some(left) => LastOperation::new(OperationState::InProgress, format!("deleting the workload: {left}")),
        })
    }

    /// Credentials of a workload binding: where to reach it.
    pub(in crate::lifecycle) async fn workload_credentials(
        &self,
        service: &Service,
        record: &WorkloadRecord,
    ) -> Result<BindingResponse> {
        let built = self.build(service, record)?;
        let workload = built.workload();
        let host = format!("{}.{}.svc.cluster.local", workload.name, record.namespace);
        let (credentials, port) = match &built {
            PlannedWorkload::Session(session) => {
                let secret = Api::<Secret>::namespaced(self.client.clone(), &record.namespace)
                    .get_opt(&session.vnc_secret_name())
                    .await?
                    .ok_or_else(|| Error::Concurrency("the session's VNC secret is not there yet; retry".to_owned()))?;
                let password = secret
                    .data
                    .and_then(|data| data.get(VNC_PASSWORD_KEY).map(|p| String::from_utf8_lossy(&p.0).into_owned()))
                    .unwrap_or_default();
                let base = match &workload.ingress_host {
                    Some(ingress) => format!("https://{ingress}/"),
                    None => format!("http://{host}:{STREAM_PORT}/"),
                };
                // Selkies' page is the stream port's root (its WebSocket asks for the password as its token);
                // noVNC's is vnc.html.
                let mut credentials = json!({
                    "stream_url": base,
                    "stream_protocol": session.protocol.as_str(),
                    "vnc_host": host,
                    "vnc_port": STREAM_PORT,
                    "vnc_protocol": "websocket",
                    "vnc_password": password,
                    // A native VNC client: `kubectl port-forward pod/<name>-0 5900` with the virtual cluster's
                    // credentials, then localhost:5900 with the password (reachable no other way).
                    "native_vnc_port": VNC_PORT,
                    "pod": format!("{}-0", workload.name),
                });
                if session.protocol == StreamProtocol::Novnc {
                    credentials["stream_url"] = json!(format!("{base}vnc.html"));
                    credentials["novnc_url"] = credentials["stream_url"].clone();
                }
                (credentials, STREAM_PORT)
            }
            PlannedWorkload::App(_) => {
                let mut urls = vec![format!("http://{host}")];
                if let Some(ingress) = &workload.ingress_host {
                    urls.insert(0, format!("https://{ingress}"));
                }
                (json!({ "url": urls[0], "urls": urls, "host": host, "port": 80 }), 80)
            }
        };
        Ok(BindingResponse {
            credentials,
            metadata: None,
            endpoints: vec![Endpoint { host, ports: vec![port.to_string()], protocol: "tcp".to_owned() }],
            parameters: None,
        })
    }

    /// The objects of a streaming session instance, as built from its record; `None` for a workload of another kind
    /// (what a face that shows sessions needs without knowing how workloads are built).
    pub(in crate::lifecycle) fn streaming_session_of(
        &self,
        record: &WorkloadRecord,
    ) -> Result<Option<StreamingSession>> {
        let service = self.workload_service(record)?.0;
        Ok(match self.build(service, record)? {
            PlannedWorkload::Session(session) => Some(session),
            PlannedWorkload::App(_) => None,
        })
    }

    /// The workload's service and plan from the catalog.
    pub(in crate::lifecycle) fn workload_service(&self, record: &WorkloadRecord) -> Result<(&Service, &Plan)> {
        let attributes: &Attributes = &record.stored.attributes;
        self.service_and_plan(&attributes.service_id, &attributes.plan_id)
            .map_err(|_| Error::internal(format!("service {} is no longer in the catalog", attributes.service_id)))
    }

    /// A workload's FetchedInstance parameters (all of them: nothing secret is a parameter).
    pub(in crate::lifecycle) fn workload_parameters(record: &WorkloadRecord) -> Map<String, Value> {
        record.stored.attributes.parameters.clone()
    }
}

/// Counts the pod-hours a session stopped for want of a viewer saved, now that it is woken or deleted.
fn count_saved(stop: &IdleStop) {
    crate::metrics::global().session_idle_saved_pod_hours.inc_by(stop.saved_hours(jiff::Timestamp::now()));
}

/// Eight random characters (only the first 8 of a VNC password count); a random source that fails is an error, never
/// a guessable password.
fn vnc_password() -> Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|error| {
        tracing::error!(%error, "the operating system's random source failed");
        Error::internal(format!("no VNC password could be made: the random source failed ({error})"))
    })?;
    Ok(bytes.iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect())
}

/// `Some("<Kind> <name>")` when the object exists (none in a namespace that is gone).
async fn exists<K>(client: &kube::Client, namespace: &str, name: String) -> Result<Option<String>>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api = Api::<K>::namespaced(client.clone(), namespace);
    match api.get_metadata_opt(&name).await {
        Ok(found) => Ok(found.map(|_| format!("{} {name}", K::kind(&())))),
        Err(error) if is_not_found(&error) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// A delete whose object was already gone is as good as done.
fn ignore_missing<T>(result: Result<T, kube::Error>) -> Result<()> {
    crate::lifecycle::deleted(result).map(|_| ())
}
