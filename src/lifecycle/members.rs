//! Members: people a virtual cluster's admins invite on its dashboard, each named as the identity provider names them
//! and given one built-in role (`admin`, `edit`, `view`) in the tenant namespace. A member is held exactly like a
//! binding's identity (see [`crate::k8s::member`]): revoking deletes its ServiceAccount, which revokes every token it
//! was given, and a member signs in with a token of its own ServiceAccount, so Kubernetes' RBAC decides what it may do.
//!
//! Who may manage members is Kubernetes' answer too: whoever may create RoleBindings in the tenant namespace, asked
//! with the *user's* client ([`may_manage_members`]); the broker then makes the objects, since the identity namespace
//! is out of every tenant's reach.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams, Preconditions};

use super::instances::stored::StoredInstance;
use super::sign_in::{Claims, Credential, Signer, Tenant};
use super::{Broker, Error, Result, deleted};

use crate::k8s::member::MemberObjects;
use crate::k8s::names::{self, ANNOTATION_MEMBER, LABEL_INSTANCE, LABEL_MEMBER};
use crate::k8s::virtual_cluster::owned_by;
use crate::k8s::{apply, is_conflict, is_not_found};

/// Longest member name: an email or a provider's user id is far shorter; anything longer is not a name.
pub const MAX_MEMBER_NAME_BYTES: usize = 256;
/// Prefix of the members Cloud Foundry's single sign-on makes (`cf:<user id>`): reserved, so that no name another
/// identity provider gives can ever be taken for a Cloud Foundry user's.
pub const CF_MEMBER_PREFIX: &str = "cf:";
/// Shortest token lifetime the TokenRequest API grants.
const MIN_TOKEN_SECONDS: u64 = 600;
/// How long a revocation waits for the apiserver to refuse the member's tokens (it caches an accepted token ~10 s).
const REVOCATION_PATIENCE: Duration = Duration::from_secs(30);

/// A role a member may have: one of the built-in ClusterRoles, bound in the tenant namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything in the namespace, including its RoleBindings (so: managing members).
    Admin,
    /// Workloads and their configuration, not RBAC.
    Edit,
    /// Read only, secrets excepted.
    View,
}

impl Role {
    /// Every role, strongest first (the order forms offer them in).
    pub const ALL: [Role; 3] = [Role::Admin, Role::Edit, Role::View];

    /// The ClusterRole's name, which is also how forms and pages spell the role.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Edit => "edit",
            Role::View => "view",
        }
    }

    /// The role a form names; 400 for anything else.
    pub fn parse(text: &str) -> Result<Role> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| Error::BadRequest(format!("role must be admin, edit or view, not {text:?}")))
    }
}

/// One person who may sign in to a virtual cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The name the identity provider gives (for the owner: who asked for the instance, or its account's name).
    pub name: String,
    /// The role bound now; `None` while a change of role replaces the RoleBinding.
    pub role: Option<Role>,
    /// The virtual cluster's owner: always admin, never changed or removed here.
    pub owner: bool,
}

/// Checks a member's name: 1 to [`MAX_MEMBER_NAME_BYTES`] bytes, no control characters, no surrounding spaces.
/// `invited` names (typed by an admin, or given by a generic identity provider) may not take the prefix reserved for
/// Cloud Foundry users.
pub fn validate_name(name: &str, invited: bool) -> Result<()> {
    let bad = |why: &str| Err(Error::BadRequest(format!("a member's name {why}")));
    if name.is_empty() {
        return bad("is required");
    }
    if name.len() > MAX_MEMBER_NAME_BYTES {
        return bad(&format!("is at most {MAX_MEMBER_NAME_BYTES} bytes"));
    }
    if name.chars().any(char::is_control) {
        return bad("has no control characters");
    }
    if name.trim() != name {
        return bad("neither starts nor ends with a space");
    }
    if invited && name.starts_with(CF_MEMBER_PREFIX) {
        return bad(&format!("may not start with {CF_MEMBER_PREFIX:?}: it is kept for Cloud Foundry's users"));
    }
    Ok(())
}

impl Broker {
    fn member_objects(&self, instance_id: &str, member: &str) -> MemberObjects {
        MemberObjects {
            instance_id: instance_id.to_owned(),
            member: member.to_owned(),
            namespace: self.namespace_of(instance_id),
            identity_namespace: self.options.identity_namespace.clone(),
        }
    }

    /// The virtual cluster `instance_id`, provisioned and not being deleted; 404 otherwise.
    async fn live_cluster(&self, instance_id: &str) -> Result<(Namespace, StoredInstance)> {
        match self.find(instance_id).await? {
            Some((namespace, instance)) if !instance.terminating && instance.provisioned => Ok((namespace, instance)),
            _ => Err(Error::NotFound(format!("there is no virtual cluster {instance_id}"))),
        }
    }

    fn role_bindings(&self, namespace: &str) -> Api<RoleBinding> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// Every member of the virtual cluster, its owner first, then by name.
    pub async fn members(&self, instance_id: &str) -> Result<Vec<Member>> {
        let (_, instance) = self.live_cluster(instance_id).await?;
        let selector = format!("{LABEL_MEMBER}=true,{LABEL_INSTANCE}={}", names::label_value(instance_id));
        let accounts = Api::<ServiceAccount>::namespaced(self.client.clone(), &self.options.identity_namespace);
        let accounts = match accounts.list_metadata(&ListParams::default().labels(&selector)).await {
            Err(error) if is_not_found(&error) => Vec::new(),
            other => other?.items,
        };
        // A hash collision would name another member's account: only the exact name counts.
        let names: Vec<String> = accounts
            .into_iter()
            .filter_map(|account| {
                let name = account.metadata.annotations?.get(ANNOTATION_MEMBER)?.clone();
                (account.metadata.name? == names::member_account(instance_id, &name)).then_some(name)
            })
            .collect();
        // Each role by name: a few reads, not a list of every RoleBinding of the namespace.
        let bindings = self.role_bindings(&self.namespace_of(instance_id));
        let accounts: Vec<String> = names.iter().map(|name| names::member_account(instance_id, name)).collect();
        let roles = futures::future::try_join_all(accounts.iter().map(|account| bindings.get_opt(account))).await?;
        let mut members: Vec<Member> = names
            .into_iter()
            .zip(roles)
            .map(|(name, binding)| Member {
                role: binding.and_then(|binding| Role::parse(&binding.role_ref.name).ok()),
                name,
                owner: false,
            })
            .collect();
        members.sort_by(|a, b| a.name.cmp(&b.name));
        let owner = Member {
            name: instance.created_by.clone().unwrap_or_else(|| instance.owner.clone()),
            role: Some(Role::Admin),
            owner: true,
        };
        members.insert(0, owner);
        Ok(members)
    }

    /// Whether `name` is a member of the virtual cluster `objects` describe: its ServiceAccount exists and names
    /// exactly `name` (a hashed account name could stand for another).
    async fn is_member(&self, objects: &MemberObjects, name: &str) -> Result<bool> {
        let accounts = Api::<ServiceAccount>::namespaced(self.client.clone(), &objects.identity_namespace);
        let account = match accounts.get_opt(&objects.account_name()).await {
            Err(error) if is_not_found(&error) => None,
            other => other?,
        };
        let exact = account.and_then(|a| a.metadata.annotations).and_then(|a| a.get(ANNOTATION_MEMBER).cloned());
        Ok(exact.as_deref() == Some(name))
    }

    /// The member of that name, if there is one.
    pub async fn member(&self, instance_id: &str, name: &str) -> Result<Option<Member>> {
        let objects = self.member_objects(instance_id, name);
        if !self.is_member(&objects, name).await? {
            return Ok(None);
        }
        let binding = self.role_bindings(&objects.namespace).get_opt(&objects.account_name()).await?;
        let role = binding.and_then(|binding| Role::parse(&binding.role_ref.name).ok());
        Ok(Some(Member { name: name.to_owned(), role, owner: false }))
    }

    /// The RoleBinding of the member `name` of the virtual cluster `instance_id` with `role`, for drift repair;
    /// `None` when `name` is no member (any more): its ServiceAccount gone (removing a member deletes it first), so
    /// that a repair never undoes a removal.
    pub(super) async fn member_role_binding_wanted(
        &self,
        instance_id: &str,
        name: &str,
        role: Role,
    ) -> Result<Option<RoleBinding>> {
        let objects = self.member_objects(instance_id, name);
        Ok(self.is_member(&objects, name).await?.then(|| objects.role_binding(role.as_str())))
    }

    /// Invites `name` with `role`: 409 when already a member (change the role instead).
    pub async fn invite(&self, instance_id: &str, name: &str, role: Role) -> Result<()> {
        validate_name(name, true)?;
        self.add_member(instance_id, name, role).await
    }

    async fn add_member(&self, instance_id: &str, name: &str, role: Role) -> Result<()> {
        let (namespace, _) = self.live_cluster(instance_id).await?;
        if self.member(instance_id, name).await?.is_some() {
            return Err(Error::Conflict(format!("{name} is already a member: change their role instead")));
        }
        let objects = self.member_objects(instance_id, name);
        self.apply_identity(&objects.service_account(owned_by(&namespace))).await?;
        apply(&self.role_bindings(&objects.namespace), &objects.role_binding(role.as_str())).await?;
        tracing::info!(instance_id, member = name, role = role.as_str(), "member invited");
        Ok(())
    }

    /// Gives the member `name` the role `role` in place of the one it has: the RoleBinding's role cannot change, so it
    /// is deleted, then made anew, never leaving two roles (or a stronger one) bound at once. 404 for no such member.
    pub async fn change_role(&self, instance_id: &str, name: &str, role: Role) -> Result<()> {
        validate_name(name, false)?;
        self.live_cluster(instance_id).await?;
        let Some(member) = self.member(instance_id, name).await? else {
            return Err(Error::NotFound(format!("{name} is not a member")));
        };
        if member.role == Some(role) {
            return Ok(());
        }
        let objects = self.member_objects(instance_id, name);
        let bindings = self.role_bindings(&objects.namespace);
        if let Some(current) = bindings.get_opt(&objects.account_name()).await? {
            // Only the binding just read: a concurrent change that replaced it first wins, and this one is refused.
            let params = DeleteParams {
                preconditions: Some(Preconditions { uid: current.metadata.uid, resource_version: None }),
                ..DeleteParams::default()
            };
            if let Err(error) = bindings.delete(&objects.account_name(), &params).await
                && !is_not_found(&error)
            {
                return Err(if is_conflict(&error) {
                    Error::Conflict(format!("{name}'s role was changed at the same time: reload and try again"))
                } else {
                    error.into()
                });
            }
        }
        // Sessions opened with the old role end as it goes: whoever holds one signs in again, with the new one.
        self.revocations.tell(&super::revocations::Revoked::Identity(self.username_of(&objects.account_name())));
        let params = PostParams { field_manager: Some(names::FIELD_MANAGER.to_owned()), ..PostParams::default() };
        match bindings.create(&params, &objects.role_binding(role.as_str())).await {
            Ok(_) => {}
            Err(error) if is_conflict(&error) => {
                return Err(Error::Conflict(format!(
                    "{name}'s role was changed at the same time: reload and try again"
                )));
            }
            Err(error) => return Err(error.into()),
        }
        tracing::info!(instance_id, member = name, role = role.as_str(), "member's role changed");
        Ok(())
    }

    /// Makes `name` a member with exactly `role` (inviting or changing as needed): what a sign-in through Cloud
    /// Foundry does with the permissions the Cloud Controller gives.
    pub async fn ensure_member(&self, instance_id: &str, name: &str, role: Role) -> Result<()> {
        validate_name(name, false)?;
        match self.member(instance_id, name).await? {
            None => match self.add_member(instance_id, name, role).await {
                // Two sign-ins of the same person at once: the other made it; converge on the role.
                Err(Error::Conflict(_)) => self.change_role(instance_id, name, role).await,
                other => other,
            },
            Some(member) if member.role == Some(role) => Ok(()),
            Some(_) => self.change_role(instance_id, name, role).await,
        }
    }

    /// Removes the member `name`: its ServiceAccount (which revokes its tokens) and its RoleBinding; returns once the
    /// apiserver refuses its tokens. Ok(false) when it was no member.
    pub async fn revoke(&self, instance_id: &str, name: &str) -> Result<bool> {
        validate_name(name, false)?;
        self.live_cluster(instance_id).await?;
        if self.member(instance_id, name).await?.is_none() {
            return Ok(false);
        }
        let objects = self.member_objects(instance_id, name);
        let account = objects.account_name();
        // A token reviewed now is cached as accepted no earlier than any of the member's: once the apiserver refuses
        // it, it refuses theirs too.
        let probe = self.request_token(&account, MIN_TOKEN_SECONDS as i64).await?;
        self.review(&probe.token).await?;
        self.delete_identity(&account, &objects.namespace).await?;
        self.revocations.tell(&super::revocations::Revoked::Identity(self.username_of(&account)));
        deleted(self.role_bindings(&objects.namespace).delete(&account, &DeleteParams::default()).await)?;
        let left = self
            .wait_until_gone(REVOCATION_PATIENCE, || async {
                Ok(self
                    .review(&probe.token)
                    .await?
                    .map(|_| "the apiserver still accepts the member's tokens".to_owned()))
            })
            .await?;
        if let Some(left) = left {
            return Err(Error::unavailable(format!("{name} was removed, but {left}; retry")));
        }
        tracing::info!(instance_id, member = name, "member revoked");
        Ok(true)
    }

    /// Signs the member `name` in: a token of its own ServiceAccount that lasts `lifetime` (at least the 10 minutes the
    /// TokenRequest API requires; the apiserver may shorten it), and the identity it opens; the session ends when that
    /// token does, as a session opened with a pasted token ends with it. `None` for no such member.
    pub async fn sign_in_member(
        &self,
        instance_id: &str,
        name: &str,
        lifetime: Duration,
    ) -> Result<Option<(Tenant, Credential)>> {
        validate_name(name, false)?;
        let (namespace, instance) = self.live_cluster(instance_id).await?;
        if self.member(instance_id, name).await?.is_none() {
            return Ok(None);
        }
        let account = names::member_account(instance_id, name);
        let seconds = i64::try_from(lifetime.as_secs().max(MIN_TOKEN_SECONDS)).unwrap_or(i64::MAX);
        let issued = match self.request_token(&account, seconds).await {
            Err(Error::NotFound(_)) => return Ok(None),
            other => other?,
        };
        let tenant = self.tenant(instance_id, &namespace, &instance, &account, Signer::Member(name.to_owned()));
        let claims = Claims { expires_at: Some(issued.expires_at), ..Claims::of(&issued.token) };
        let credential = self.credential(&tenant.namespace, &issued.token, claims, account).await?;
        Ok(Some((tenant, credential)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_the_three_built_in_ones() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()).expect("parses"), role);
        }
        for bad in ["", "Admin", "cluster-admin", "edit ", "owner"] {
            assert!(matches!(Role::parse(bad), Err(Error::BadRequest(_))), "{bad:?}");
        }
    }

    #[test]
    fn names_are_checked_and_the_cloud_foundry_prefix_is_reserved() {
        validate_name("alice@example.test", true).expect("an email");
        validate_name("앨리스", true).expect("any script");
        validate_name(&"a".repeat(MAX_MEMBER_NAME_BYTES), true).expect("the longest");
        validate_name("cf:1234-abcd", false).expect("a Cloud Foundry user, made by the broker");
        for bad in ["", " alice", "alice ", "a\nb", "a\u{0}b", &"a".repeat(MAX_MEMBER_NAME_BYTES + 1), "cf:x"] {
            assert!(matches!(validate_name(bad, true), Err(Error::BadRequest(_))), "{bad:?}");
        }
    }
}
