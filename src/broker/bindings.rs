//! Bindings: each one a ServiceAccount of its own in the identity namespace (see [`super::identities`]), bound to
//! one built-in role in the tenant namespace, with a bound token from the TokenRequest API; and a record Secret in
//! the broker's namespace so that every replica, and a restarted broker, returns the same credentials. Unbinding
//! deletes the ServiceAccount, which revokes its tokens.

use std::collections::BTreeMap;

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde_json::{Map, Value};

use super::credentials::{self, IssuedToken};
use super::instance::StoredInstance;
use super::model::{BindRequest, BindingMetadata, BindingResponse, Endpoint, LastOperation, OperationState};
use super::parameters::SchemaKind;
use super::{Broker, cache, deleted};
use super::{Error, Result};
use crate::k8s::binding::*;
use crate::k8s::names::{self, *};
use crate::k8s::virtual_cluster::owned_by;
use crate::k8s::{apply, is_conflict, is_not_found};

/// The `operation` value of an unbind, for `last_operation` after the binding is gone.
pub const OPERATION_UNBIND: &str = "unbind";
/// The role of a binding that asks for none.
const DEFAULT_ROLE: &str = "edit";
/// Annotation with the binding's effective parameters.
const ANNOTATION_BINDING_PARAMETERS: &str = "caas-broker.io/binding-parameters";
/// Annotation with the parameters as requested (what an identical repeat must match).
const ANNOTATION_REQUESTED: &str = "caas-broker.io/requested";
/// Set on a binding accepted before its workload was ready: it is complete once the workload is.
pub(super) const ANNOTATION_PENDING: &str = "caas-broker.io/pending";
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

    fn records(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &self.options.broker_namespace)
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
        let objects = self.objects(instance_id, binding_id);
        let requested = requested_attributes(&request);
        // Every record a bind decides on, read at once from the cluster: one round trip, not three.
        let (existing, (workload, virtual_cluster)) =
            tokio::try_join!(self.record(&objects), self.read_records(instance_id))?;
        // An existing binding decides first (OSB checkers probe conflicts with otherwise invalid bodies).
        if let Some(record) = existing {
            return if record.instance_id == instance_id && record.requested == requested {
                if record.pending && self.binding_state(instance_id, &record).await?.state != OperationState::Succeeded
                {
                    return Ok(Bound::InProgress(OPERATION_BIND));
                }
                Ok(Bound::AlreadyExists(record.response))
            } else {
                Err(Error::Conflict(format!("binding {binding_id} already exists with other attributes")))
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
            let saved = self.save_record(&objects, &record.stored, &parameters, &request, &response, !ready);
            return match saved.await? {
                Bound::Created(_) if !ready => Ok(Bound::InProgress(OPERATION_BIND)),
                other => Ok(other),
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
        if instance.attributes.service_id != service.id || instance.attributes.plan_id != plan.id {
            return Err(Error::BadRequest(format!("service_id and plan_id must be those of instance {instance_id}")));
        }
        if !service.bindable(plan) {
            return Err(Error::BadRequest(format!("plan {} is not bindable", plan.name)));
        }
        if plan.broker.requires_app && request.app_guid().is_none() {
            return Err(Error::RequiresApp);
        }
        let parameters = self.binding_parameters(instance_id, plan, &request).await?;
        let role = parameters.get("role").and_then(Value::as_str).unwrap_or(DEFAULT_ROLE).to_owned();
        let expiration = match parameters.get("expiration_seconds").and_then(Value::as_u64) {
            Some(seconds) if seconds > self.options.max_expiration_seconds => {
                return Err(Error::BadRequest(format!(
                    "parameters.expiration_seconds: at most {} is allowed",
                    self.options.max_expiration_seconds
                )));
            }
            Some(seconds) => seconds,
            None => self.options.default_expiration_seconds,
        };

        let token = self.issue_credentials(&objects, &role, expiration, owned_by(&namespace)).await?;
        let credentials =
            credentials::credentials(&self.endpoint, &objects.namespace, &role, &objects.account_name(), &token);
        let response = BindingResponse {
            credentials,
            metadata: Some(credentials::metadata(&token)),
            endpoints: credentials::endpoints(&self.endpoint),
            parameters: None,
        };
        self.save_record(&objects, &instance, &parameters, &request, &response, false).await
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

    /// The binding's ServiceAccount and RoleBinding, and a token for it.
    async fn issue_credentials(
        &self,
        objects: &BindingObjects,
        role: &str,
        expiration: u64,
        owner: Option<OwnerReference>,
    ) -> Result<IssuedToken> {
        // The RoleBinding names the ServiceAccount and needs nothing of it: both are applied at once.
        let bindings = Api::<RoleBinding>::namespaced(self.client.clone(), &objects.namespace);
        let (account, role_binding) = (objects.service_account(owner), objects.role_binding(role));
        tokio::try_join!(self.apply_identity(&account), async {
            apply(&bindings, &role_binding).await.map_err(Error::from)
        })?;
        self.request_token(&objects.account_name(), i64::try_from(expiration).unwrap_or(i64::MAX)).await
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
            Ok(created) => {
                cache::wrote(&self.cache.bindings, &created);
                Ok(Bound::Created(response.clone()))
            }
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
            && let Some(kept) = cache::present(&self.cache.bindings, &objects.record_name())
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
        let result = self.records().delete(name, &DeleteParams::default()).await;
        cache::deleting(&self.cache.bindings, name, &result);
        deleted(result)
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
