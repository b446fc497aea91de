//! Bindings: each one a ServiceAccount of its own in the identity namespace (see [`super::identities`]), bound to
//! one built-in role in the tenant namespace, with a bound token from the TokenRequest API; and a record Secret in
//! the broker's namespace so that every replica, and a restarted broker, returns the same credentials. Unbinding
//! deletes the ServiceAccount, which revokes its tokens.

use std::collections::BTreeMap;

use futures::future::OptionFuture;

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde_json::{Map, Value};

use super::credentials;
use super::instances::InstanceRecords;
use super::instances::stored::StoredInstance;
use super::model::{BindRequest, BindingMetadata, BindingResponse, Endpoint, LastOperation, OperationState};
use super::parameters::{self, BindParameters, SchemaKind};
use super::{Broker, deleted};
use super::{Error, Result};
use crate::k8s::binding::*;
use crate::k8s::names::{self, *};
use crate::k8s::repository::Repository;
use crate::k8s::virtual_cluster::owned_by;
use crate::k8s::watched::Cached;
use crate::k8s::{apply, is_conflict, is_not_found};

/// The `operation` value of an unbind, for `last_operation` after the binding is gone.
pub const OPERATION_UNBIND: &str = "unbind";
/// Annotation with the binding's effective parameters.
const ANNOTATION_BINDING_PARAMETERS: &str = "caas-broker.io/binding-parameters";
/// Annotation with the parameters as requested (what an identical repeat must match).
const ANNOTATION_REQUESTED: &str = "caas-broker.io/requested";
/// The `operation` of an asynchronous bind.
pub const OPERATION_BIND: &str = "bind";

/// How a bind ended: 201 or 200.
#[derive(Debug)]
pub enum Bound {
    /// Made by this request.
    Created(BindingResponse),
    /// Already there with identical attributes: the same credentials.
    AlreadyExists(BindingResponse),
    /// Accepted; complete when the workload is ready (202, credentials through GET binding).
    InProgress(&'static str),
}

/// How an unbind ended: 200 or 202.
#[derive(Debug)]
pub enum Unbound {
    /// Deleted: its ServiceAccount and RoleBinding are gone and its tokens refused (200).
    Done,
    /// The tokens are refused but the objects are still being deleted; `last_operation` follows them (202).
    InProgress(&'static str),
}

/// What a bind decided on the fresh records.
enum Decided {
    /// The answer, complete.
    Answered(Bound),
    /// A new binding of a virtual cluster, to be issued.
    Issue(Box<Issue>),
}

/// A new binding of a virtual cluster, decided: what its record and identity are made of.
struct Issue {
    instance: StoredInstance,
    parameters: Map<String, Value>,
    identity: BindingIdentity,
}

/// A binding's identity: the role its RoleBinding grants, its token's lifetime, and the namespace that owns it.
#[derive(PartialEq)]
struct BindingIdentity {
    role: String,
    expiration: u64,
    owner: Option<OwnerReference>,
}

/// The instance's plan must be the request's, bindable, and given an app when it requires one.
fn check_binding_plan(
    instance_id: &str,
    instance: &StoredInstance,
    service: &crate::catalog::Service,
    plan: &crate::catalog::Plan,
    request: &BindRequest,
) -> Result<()> {
    if instance.attributes.service_id != service.id || instance.attributes.plan_id != plan.id {
        return Err(Error::BadRequest(format!("service_id and plan_id must be those of instance {instance_id}")));
    }
    if !service.bindable(plan) {
        return Err(Error::BadRequest(format!("plan {} is not bindable", plan.name)));
    }
    if plan.broker.requires_app && request.app_guid().is_none() {
        return Err(Error::RequiresApp);
    }
    Ok(())
}

/// A binding as its record holds it.
struct BindingRecord {
    instance_id: String,
    requested: Value,
    parameters: Map<String, Value>,
    response: BindingResponse,
    pending: bool,
}

impl BindingRecord {
    fn from_secret(secret: &Secret) -> Option<BindingRecord> {
        let annotations = secret.metadata.annotations.as_ref()?;
        let json = |key: &str| annotations.get(key).and_then(|text| serde_json::from_str::<Value>(text).ok());
        let credentials = secret.data.as_ref()?.get(RECORD_CREDENTIALS_KEY)?;
        let credentials: Value = serde_json::from_slice(&credentials.0).ok()?;
        let metadata: Option<BindingMetadata> = serde_json::from_value(json(ANNOTATION_METADATA)?).ok()?;
        let endpoints: Vec<Endpoint> = serde_json::from_value(json(ANNOTATION_ENDPOINTS)?).ok()?;
        let parameters = match json(ANNOTATION_BINDING_PARAMETERS)? {
            Value::Object(map) => map,
            _ => return None,
        };
        Some(BindingRecord {
            instance_id: annotations.get(ANNOTATION_INSTANCE_ID)?.clone(),
            requested: json(ANNOTATION_REQUESTED)?,
            parameters,
            response: BindingResponse { credentials, metadata, endpoints, parameters: None },
            pending: annotations.contains_key(ANNOTATION_PENDING),
        })
    }
}

impl Broker {
    fn objects(&self, instance_id: &str, binding_id: &str) -> BindingObjects {
        BindingObjects {
            binding_id: binding_id.to_owned(),
            instance_id: instance_id.to_owned(),
            namespace: self.namespace_of(instance_id),
            broker_namespace: self.options.broker_namespace.clone(),
            identity_namespace: self.options.identity_namespace.clone(),
        }
    }

    fn records(&self) -> &Repository<Secret> {
        &self.records.bindings
    }

    async fn record(&self, objects: &BindingObjects) -> Result<Option<BindingRecord>> {
        let secret = self.records().get_opt(&objects.record_name()).await?;
        let Some(secret) = secret else { return Ok(None) };
        let binding_id = secret.metadata.annotations.as_ref().and_then(|a| a.get(ANNOTATION_BINDING_ID));
        if binding_id != Some(&objects.binding_id) {
            return Ok(None);
        }
        Ok(BindingRecord::from_secret(&secret))
    }

    /// PUT /v2/service_instances/:instance_id/service_bindings/:binding_id
    pub async fn bind(
        &self,
        instance_id: &str,
        binding_id: &str,
        request: BindRequest,
        accepts_incomplete: bool,
    ) -> Result<Bound> {
        self.require_tenant_guard().await?;
        let objects = self.objects(instance_id, binding_id);
        // When the copy of the records foresees a new binding of a ready virtual cluster, its identity is applied
        // while the records the bind decides on are read fresh: one round trip fewer. Should the fresh records decide
        // otherwise, what was applied is withdrawn, so that a refused bind leaves nothing behind all the same.
        let foreseen = self.foreseen_identity(instance_id, &objects, &request);
        let speculation: OptionFuture<_> =
            foreseen.as_ref().map(|identity| self.apply_binding_identity(&objects, identity)).into();
        // Every record a bind decides on, read at once from the cluster: one round trip, not three.
        let records = async { tokio::try_join!(self.record(&objects), self.read_records(instance_id)) };
        let (read, applied) = tokio::join!(records, speculation);
        let applied = foreseen.zip(applied);
        let (decided, existed) = match read {
            Ok((existing, records)) => {
                let existed = existing.is_some();
                (
                    self.decide_bind(instance_id, &objects, &request, accepts_incomplete, existing, records).await,
                    existed,
                )
            }
            Err(error) => (Err(error), false),
        };
        let answer = match decided {
            Ok(Decided::Issue(issue)) => return self.issue_binding(&objects, &request, issue, applied).await,
            Ok(Decided::Answered(bound)) => Ok(bound),
            Err(error) => Err(error),
        };
        if applied.is_some() && !existed {
            self.withdraw_binding_identity(&objects).await;
        }
        answer
    }

    /// What a bind decides on the fresh records: an answer, or that a new binding of a virtual cluster is issued.
    async fn decide_bind(
        &self,
        instance_id: &str,
        objects: &BindingObjects,
        request: &BindRequest,
        accepts_incomplete: bool,
        existing: Option<BindingRecord>,
        (workload, virtual_cluster): InstanceRecords,
    ) -> Result<Decided> {
        let answered = |bound| Ok(Decided::Answered(bound));
        // An existing binding decides first (OSB checkers probe conflicts with otherwise invalid bodies).
        if let Some(record) = existing {
            return if record.instance_id == instance_id && record.requested == requested_attributes(request) {
                if record.pending && self.binding_state(instance_id, &record).await?.state != OperationState::Succeeded
                {
                    return answered(Bound::InProgress(OPERATION_BIND));
                }
                answered(Bound::AlreadyExists(record.response))
            } else {
                Err(Error::Conflict(format!("binding {} already exists with other attributes", objects.binding_id)))
            };
        }
        let (service, plan) = self.service_and_plan(&request.service_id, &request.plan_id)?;
        if let Some(record) = workload {
            if !record.stored.provisioned {
                return Err(Error::Concurrency(format!("instance {instance_id} is still being provisioned")));
            }
            if record.stored.attributes.service_id != service.id || record.stored.attributes.plan_id != plan.id {
                return Err(Error::BadRequest(format!(
                    "service_id and plan_id must be those of instance {instance_id}"
                )));
            }
            if plan.broker.requires_app && request.app_guid().is_none() {
                return Err(Error::RequiresApp);
            }
            let parameters = request.parameters.clone().unwrap_or_default();
            self.schemas.validate(&plan.id, SchemaKind::Bind, &parameters)?;
            let response = self.workload_credentials(service, &record).await?;
            let ready = self.workload_state(service, &record).await?.state == OperationState::Succeeded;
            if !ready && !accepts_incomplete {
                return Err(Error::AsyncRequired);
            }
            let saved = self.save_record(objects, &record.stored, &parameters, request, &response, !ready);
            return match saved.await? {
                Bound::Created(_) if !ready => answered(Bound::InProgress(OPERATION_BIND)),
                other => answered(other),
            };
        }
        let Some((namespace, instance)) = virtual_cluster else {
            return Err(Error::NotFound(format!("instance {instance_id} does not exist")));
        };
        if instance.terminating {
            return Err(Error::NotFound(format!("instance {instance_id} is being deleted")));
        }
        if !instance.provisioned {
            return Err(Error::Concurrency(format!("instance {instance_id} is still being provisioned; retry later")));
        }
        check_binding_plan(instance_id, &instance, service, plan, request)?;
        let parameters = self.binding_parameters(instance_id, plan, request).await?;
        let (role, expiration) = self.identity_terms(&parameters)?;
        let identity = BindingIdentity { role, expiration, owner: owned_by(&namespace) };
        Ok(Decided::Issue(Box::new(Issue { instance, parameters, identity })))
    }

    /// The role and token lifetime a binding's `parameters` ask for, within the broker's limits.
    fn identity_terms(&self, parameters: &Map<String, Value>) -> Result<(String, u64)> {
        let BindParameters { role, expiration_seconds } = parameters::parse(parameters)?;
        let expiration = match expiration_seconds {
            Some(seconds) if seconds > self.options.max_expiration_seconds => {
                return Err(Error::BadRequest(format!(
                    "parameters.expiration_seconds: at most {} is allowed",
                    self.options.max_expiration_seconds
                )));
            }
            Some(seconds) => seconds,
            None => self.options.default_expiration_seconds,
        };
        Ok((role, expiration))
    }

    /// The identity a bind will apply, foreseen from the copy of the records: `Some` only when the copy holds a
    /// ready virtual cluster that the request is valid for and no record of the binding (which a rotation would read
    /// first), so that what is applied ahead is what the fresh records will almost always decide on.
    fn foreseen_identity(
        &self,
        instance_id: &str,
        objects: &BindingObjects,
        request: &BindRequest,
    ) -> Option<BindingIdentity> {
        if request.predecessor_binding_id.as_deref().is_some_and(|id| !id.is_empty())
            || !matches!(self.records.bindings.copy().get(&objects.record_name()), Cached::Absent)
        {
            return None;
        }
        let (meta, instance) = self.cached_virtual_cluster(instance_id)?;
        if instance.terminating || !instance.provisioned {
            return None;
        }
        let (service, plan) = self.service_and_plan(&request.service_id, &request.plan_id).ok()?;
        check_binding_plan(instance_id, &instance, service, plan, request).ok()?;
        let parameters = request.parameters.clone().unwrap_or_default();
        self.schemas.validate(&plan.id, SchemaKind::Bind, &parameters).ok()?;
        let (role, expiration) = self.identity_terms(&parameters).ok()?;
        let namespace = Namespace { metadata: meta, ..Namespace::default() };
        Some(BindingIdentity { role, expiration, owner: owned_by(&namespace) })
    }

    /// The binding's ServiceAccount and RoleBinding. The RoleBinding names the ServiceAccount and needs nothing of
    /// it: both are applied at once.
    async fn apply_binding_identity(&self, objects: &BindingObjects, identity: &BindingIdentity) -> Result<()> {
        let bindings = Api::<RoleBinding>::namespaced(self.client.clone(), &objects.namespace);
        let (account, role_binding) =
            (objects.service_account(identity.owner.clone()), objects.role_binding(&identity.role));
        tokio::try_join!(self.apply_identity(&account), async {
            apply(&bindings, &role_binding).await.map_err(Error::from)
        })?;
        Ok(())
    }

    /// Deletes what a bind applied ahead of a decision that refused it. The answer stands either way; what cannot be
    /// deleted now is logged (an unbind or a repeated bind of the same id converges on it).
    async fn withdraw_binding_identity(&self, objects: &BindingObjects) {
        let bindings = Api::<RoleBinding>::namespaced(self.client.clone(), &objects.namespace);
        let account = objects.account_name();
        let (identity, binding) = tokio::join!(self.delete_identity(&account, &objects.namespace), async {
            deleted(bindings.delete(&account, &DeleteParams::default()).await)
        });
        match identity.and(binding) {
            Ok(_) => tracing::info!(
                binding_id = %objects.binding_id,
                "the fresh records refused a bind the copy of the records foresaw; its identity was withdrawn"
            ),
            Err(error) => {
                tracing::warn!(binding_id = %objects.binding_id, %error, "could not withdraw a refused bind's identity")
            }
        }
    }

    /// Issues a decided binding: its identity (unless applied ahead as decided), a token and the record.
    async fn issue_binding(
        &self,
        objects: &BindingObjects,
        request: &BindRequest,
        issue: Box<Issue>,
        applied: Option<(BindingIdentity, Result<()>)>,
    ) -> Result<Bound> {
        let Issue { instance, parameters, identity } = *issue;
        match applied {
            Some((foreseen, result)) if foreseen == identity => result?,
            _ => self.apply_binding_identity(objects, &identity).await?,
        }
        let lifetime = i64::try_from(identity.expiration).unwrap_or(i64::MAX);
        let token = self.request_token(&objects.account_name(), lifetime).await?;
        let credentials = credentials::credentials(
            &self.endpoint,
            &objects.namespace,
            &identity.role,
            &objects.account_name(),
            &token,
        );
        let response = BindingResponse {
            credentials,
            metadata: Some(credentials::metadata(&token)),
            endpoints: credentials::endpoints(&self.endpoint),
            parameters: None,
        };
        self.save_record(objects, &instance, &parameters, request, &response, false).await
    }

    /// The effective bind parameters: the request's, validated, or for a rotation the predecessor's.
    async fn binding_parameters(
        &self,
        instance_id: &str,
        plan: &crate::catalog::Plan,
        request: &BindRequest,
    ) -> Result<Map<String, Value>> {
        let given = request.parameters.clone().unwrap_or_default();
        self.schemas.validate(&plan.id, SchemaKind::Bind, &given)?;
        let Some(predecessor) = request.predecessor_binding_id.as_deref().filter(|id| !id.is_empty()) else {
            return Ok(given);
        };
        if !plan.binding_rotatable {
            return Err(Error::BadRequest(format!("plan {} does not allow binding rotation", plan.name)));
        }
        let record = self.record(&self.objects(instance_id, predecessor)).await?;
        let Some(record) = record.filter(|record| record.instance_id == instance_id) else {
            return Err(Error::BadRequest(format!(
                "predecessor_binding_id {predecessor:?} is not a binding of instance {instance_id}"
            )));
        };
        if !given.is_empty() && given != record.parameters {
            return Err(Error::BadRequest(
                "a rotated binding keeps its predecessor's parameters: send none or the same".to_owned(),
            ));
        }
        Ok(record.parameters)
    }

    /// The RoleBinding of binding `binding_id` of the virtual cluster `instance_id` as its bind made it, for drift
    /// repair; `None` when the binding is not whole: no record of it on this instance, or its ServiceAccount gone (an
    /// unbind deletes that first), so that a repair never undoes an unbind.
    pub(super) async fn binding_role_binding_wanted(
        &self,
        instance_id: &str,
        binding_id: &str,
    ) -> Result<Option<RoleBinding>> {
        let objects = self.objects(instance_id, binding_id);
        let Some(record) = self.record(&objects).await?.filter(|record| record.instance_id == instance_id) else {
            return Ok(None);
        };
        let accounts = Api::<ServiceAccount>::namespaced(self.client.clone(), &objects.identity_namespace);
        let account = match accounts.get_opt(&objects.account_name()).await {
            Err(error) if is_not_found(&error) => None,
            other => other?,
        };
        let role = parameters::parse::<BindParameters>(&record.parameters)?.role;
        Ok(account.map(|_| objects.role_binding(&role)))
    }

    /// Creates the record; when a concurrent identical bind won the race, answers with its credentials instead.
    async fn save_record(
        &self,
        objects: &BindingObjects,
        instance: &StoredInstance,
        parameters: &Map<String, Value>,
        request: &BindRequest,
        response: &BindingResponse,
        pending: bool,
    ) -> Result<Bound> {
        let requested = &requested_attributes(request);
        let mut annotations = BTreeMap::from([
            (ANNOTATION_REQUESTED.to_owned(), requested.to_string()),
            (ANNOTATION_BINDING_PARAMETERS.to_owned(), Value::Object(parameters.clone()).to_string()),
            (ANNOTATION_METADATA.to_owned(), serde_json::to_string(&response.metadata).unwrap_or_default()),
            (ANNOTATION_ENDPOINTS.to_owned(), serde_json::to_string(&response.endpoints).unwrap_or_default()),
            (ANNOTATION_SERVICE_ID.to_owned(), instance.attributes.service_id.clone()),
            (ANNOTATION_PLAN_ID.to_owned(), instance.attributes.plan_id.clone()),
        ]);
        if let Some(app) = request.app_guid() {
            annotations.insert(ANNOTATION_APP_GUID.to_owned(), app.to_owned());
        }
        if let Some(predecessor) = &request.predecessor_binding_id {
            annotations.insert(ANNOTATION_PREDECESSOR.to_owned(), predecessor.clone());
        }
        if pending {
            annotations.insert(ANNOTATION_PENDING.to_owned(), "true".to_owned());
        }
        let record = objects.record(annotations, response.credentials.to_string());
        let params = PostParams { field_manager: Some(FIELD_MANAGER.to_owned()), ..PostParams::default() };
        let mut created = self.records().create(&params, &record).await;
        if created.as_ref().is_err_and(is_not_found) {
            // The broker's namespace is missing (a broker run by hand, before its first record): make it, once.
            self.ensure_namespace(&self.options.broker_namespace).await?;
            created = self.records().create(&params, &record).await;
        }
        match created {
            Ok(_) => Ok(Bound::Created(response.clone())),
            Err(error) if is_conflict(&error) => match self.record(objects).await? {
                Some(existing) if existing.requested == *requested && existing.instance_id == objects.instance_id => {
                    Ok(Bound::AlreadyExists(existing.response))
                }
                _ => {
                    Err(Error::Conflict(format!("binding {} already exists with other attributes", objects.binding_id)))
                }
            },
            Err(error) => Err(error.into()),
        }
    }

    /// GET /v2/service_instances/:instance_id/service_bindings/:binding_id
    pub async fn fetch_binding(&self, instance_id: &str, binding_id: &str) -> Result<BindingResponse> {
        let record = self.record(&self.objects(instance_id, binding_id)).await?;
        let not_found = || Error::NotFound(format!("binding {binding_id} does not exist"));
        let record = record.filter(|record| record.instance_id == instance_id).ok_or_else(not_found)?;
        if record.pending && self.binding_state(instance_id, &record).await?.state != OperationState::Succeeded {
            return Err(Error::NotFound(format!("binding {binding_id} is still in progress")));
        }
        Ok(BindingResponse { parameters: Some(record.parameters), ..record.response })
    }

    /// DELETE /v2/service_instances/:instance_id/service_bindings/:binding_id
    pub async fn unbind(
        &self,
        instance_id: &str,
        binding_id: &str,
        service_id: &str,
        plan_id: &str,
        accepts_incomplete: bool,
    ) -> Result<Unbound> {
        self.service_and_plan(service_id, plan_id)?;
        let objects = self.objects(instance_id, binding_id);
        let record = self.record(&objects).await?;
        if record.as_ref().is_some_and(|record| record.instance_id != instance_id) {
            return Err(Error::Gone(format!("binding {binding_id} does not exist on instance {instance_id}")));
        }
        // The ServiceAccount first: deleting it revokes every token it was issued, at once.
        let mut existed = record.is_some();
        let account = objects.account_name();
        existed |= self.delete_identity(&account, &objects.namespace).await?;
        self.revocations.tell(&super::revocations::Revoked::Identity(self.username_of(&account)));
        let bindings = Api::<RoleBinding>::namespaced(self.client.clone(), &objects.namespace);
        existed |= deleted(bindings.delete(&account, &DeleteParams::default()).await)?;
        if !existed {
            return Err(Error::Gone(format!("binding {binding_id} does not exist")));
        }
        // 200 means deleted: the objects gone and the token refused, not just being deleted. The record stays until
        // then, so that a repeat (or last_operation of an asynchronous unbind) finds the binding and finishes it.
        let token = record.as_ref().and_then(|r| r.response.credentials.get("token")).and_then(Value::as_str);
        let patience = if accepts_incomplete { std::time::Duration::from_secs(2) } else { self.options.sync_timeout };
        match self.wait_until_gone(patience, || self.binding_left(&objects, token)).await? {
            None => {
                self.delete_record(&objects.record_name()).await?;
                Ok(Unbound::Done)
            }
            Some(_) if accepts_incomplete => Ok(Unbound::InProgress(OPERATION_UNBIND)),
            Some(remaining) => Err(self.deletion_continues(&format!("binding {binding_id}"), &remaining)),
        }
    }

    /// What is left of a deleted binding's objects while they are being deleted: its ServiceAccount (in the identity
    /// namespace, or in the tenant namespace for a binding made before 2.0) and its RoleBinding.
    async fn binding_objects_left(&self, objects: &BindingObjects) -> Result<Option<String>> {
        let account = objects.account_name();
        let identities = Api::<ServiceAccount>::namespaced(self.client.clone(), &objects.identity_namespace);
        let legacy = Api::<ServiceAccount>::namespaced(self.client.clone(), &objects.namespace);
        let bindings = Api::<RoleBinding>::namespaced(self.client.clone(), &objects.namespace);
        let (identity_left, legacy_left, binding_left) =
            tokio::try_join!(identities.get_opt(&account), legacy.get_opt(&account), bindings.get_opt(&account))?;
        let left: Vec<String> = [
            (identity_left.is_some(), format!("ServiceAccount {account} in namespace {}", objects.identity_namespace)),
            (legacy_left.is_some(), format!("ServiceAccount {account} in namespace {}", objects.namespace)),
            (binding_left.is_some(), format!("RoleBinding {account} in namespace {}", objects.namespace)),
        ]
        .into_iter()
        .filter_map(|(left, what)| left.then_some(what))
        .collect();
        Ok((!left.is_empty()).then(|| left.join(", ")))
    }

    /// What keeps an unbind from being done: objects still being deleted, or the binding's token still accepted
    /// (the apiserver caches a token it accepted for up to 10 s after its ServiceAccount is deleted).
    async fn binding_left(&self, objects: &BindingObjects, token: Option<&str>) -> Result<Option<String>> {
        if let Some(left) = self.binding_objects_left(objects).await? {
            return Ok(Some(left));
        }
        let Some(token) = token else { return Ok(None) };
        let review = TokenReview {
            spec: TokenReviewSpec { token: token.to_owned(), ..TokenReviewSpec::default() },
            ..TokenReview::default()
        };
        let answer = Api::<TokenReview>::all(self.client.clone()).create(&PostParams::default(), &review).await?;
        let accepted = answer.status.and_then(|status| status.authenticated).unwrap_or(false);
        Ok(accepted.then(|| "the apiserver still accepts the binding's token (it caches tokens up to 10 s)".to_owned()))
    }

    /// GET /v2/service_instances/:instance_id/service_bindings/:binding_id/last_operation
    pub async fn binding_last_operation(
        &self,
        instance_id: &str,
        binding_id: &str,
        operation: Option<&str>,
    ) -> Result<LastOperation> {
        let unbinding = operation.is_some_and(|op| op.starts_with(OPERATION_UNBIND));
        let objects = self.objects(instance_id, binding_id);
        // A binding whose credentials were handed out stays done: the copy of the records can say so.
        if !unbinding
            && let Some(kept) = self.records.bindings.present(&objects.record_name())
            && kept.annotation(ANNOTATION_BINDING_ID) == Some(binding_id)
            && kept.annotation(ANNOTATION_INSTANCE_ID) == Some(instance_id)
            && kept.annotation(ANNOTATION_PENDING).is_none()
        {
            return Ok(LastOperation::new(OperationState::Succeeded, "the credentials are ready"));
        }
        let record = self.record(&objects).await?.filter(|r| r.instance_id == instance_id);
        let exists = record.is_some();
        match (exists, unbinding, operation) {
            (true, false, _) => match record {
                Some(record) => self.binding_state(instance_id, &record).await,
                None => Ok(LastOperation::new(OperationState::Succeeded, "the credentials are ready")),
            },
            (true, true, _) => {
                // An asynchronous unbind not finished yet: finish it once its objects are gone and its token refused.
                let token = record.as_ref().and_then(|r| r.response.credentials.get("token")).and_then(Value::as_str);
                if let Some(remaining) = self.binding_left(&objects, token).await? {
                    return Ok(LastOperation::new(OperationState::InProgress, format!("revoking: {remaining}")));
                }
                self.delete_record(&objects.record_name()).await?;
                Ok(LastOperation::new(OperationState::Succeeded, "the credentials have been revoked"))
            }
            // Nothing is kept of a deleted binding: a poll of an unbind (our `operation`) succeeded, as the checkers
            // want; any other poll is of a binding the broker does not know (404, as the specification says).
            (false, true, _) => Ok(LastOperation::new(OperationState::Succeeded, "the credentials have been revoked")),
            (false, false, _) => Err(Error::NotFound(format!("binding {binding_id} does not exist"))),
        }
    }

    /// A pending binding is as far as its workload: done when the workload is ready.
    async fn binding_state(&self, instance_id: &str, record: &BindingRecord) -> Result<LastOperation> {
        if !record.pending {
            return Ok(LastOperation::new(OperationState::Succeeded, "the credentials are ready"));
        }
        let Some(workload) = self.workload(instance_id).await? else {
            return Ok(LastOperation::new(OperationState::Failed, "the instance no longer exists"));
        };
        let (service, _) = self.workload_service(&workload)?;
        let state = self.workload_state(service, &workload).await?;
        Ok(match state.state {
            OperationState::Succeeded => LastOperation::new(OperationState::Succeeded, "the credentials are ready"),
            _ => state,
        })
    }

    /// Deletes a binding record; true when it was there.
    async fn delete_record(&self, name: &str) -> Result<bool> {
        deleted(self.records().delete(name, &DeleteParams::default()).await)
    }

    /// Deletes the records of every binding of an instance (its ServiceAccounts go with the namespace).
    pub(super) async fn delete_binding_records(&self, instance_id: &str) -> Result<()> {
        let selector = format!("{LABEL_INSTANCE}={}", names::label_value(instance_id));
        let records = self.records();
        let listed = match records.list_metadata(&ListParams::default().labels(&selector)).await {
            Ok(listed) => listed,
            Err(error) if is_not_found(&error) => return Ok(()),
            Err(error) => return Err(error.into()),
        };
        for record in listed.items {
            let exact = record.metadata.annotations.as_ref().and_then(|a| a.get(ANNOTATION_INSTANCE_ID));
            if exact.is_some_and(|id| id == instance_id)
                && let Some(name) = record.metadata.name
            {
                self.delete_record(&name).await?;
            }
        }
        Ok(())
    }
}

/// What makes two bind requests identical.
fn requested_attributes(request: &BindRequest) -> Value {
    serde_json::json!({
        "service_id": request.service_id,
        "plan_id": request.plan_id,
        "app_guid": request.app_guid(),
        "parameters": request.parameters.clone().unwrap_or_default(),
        "predecessor_binding_id": request.predecessor_binding_id,
    })
}
