//! What the signed-in user may do with their virtual cluster's members, asked with their own client
//! (SelfSubjectAccessReview), so that Kubernetes' RBAC decides; the changes themselves are the lifecycle's
//! ([`crate::lifecycle::members`]), made only after this says yes.

use crate::k8s::access::{self, Permission};
use crate::lifecycle::Result;

/// What a user may do with a virtual cluster's members, as Kubernetes answers for the RoleBindings of its namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembersAccess {
    /// They may create RoleBindings there (in practice: an admin): list, invite, change, remove.
    Manage,
    /// They may list RoleBindings there: see who has which role.
    Read,
    /// Neither (`edit`, `view`): not even who the members are.
    Hidden,
}

/// What the user whose client this is may do with the members of the virtual cluster in `namespace`, asked with the
/// user's own client (SelfSubjectAccessReview), so that Kubernetes' RBAC decides.
pub async fn members_access(user: &kube::Client, namespace: &str) -> Result<MembersAccess> {
    if may_manage_members(user, namespace).await? {
        return Ok(MembersAccess::Manage);
    }
    Ok(if user_may(user, namespace, "list").await? { MembersAccess::Read } else { MembersAccess::Hidden })
}

/// Whether the user whose client this is may manage the members of the virtual cluster in `namespace`: Kubernetes
/// says they may create RoleBindings there (in practice: they are an admin). Asked with the user's own client.
pub async fn may_manage_members(user: &kube::Client, namespace: &str) -> Result<bool> {
    user_may(user, namespace, "create").await
}

/// Whether the user may `verb` RoleBindings in `namespace`.
async fn user_may(user: &kube::Client, namespace: &str, verb: &str) -> Result<bool> {
    let permission = Permission { verb, group: "rbac.authorization.k8s.io", resource: "rolebindings" };
    Ok(access::allowed(user, namespace, permission).await?)
}
