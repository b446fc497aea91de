//! What Kubernetes lets an identity do, asked as that identity (SelfSubjectAccessReview): how the dashboard decides which
//! controls to show a signed-in user. Showing is a courtesy only; the apiserver still decides every request.

use k8s_openapi::api::authorization::v1::{ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec};
use kube::api::PostParams;
use kube::{Api, Client};

/// One permission to ask about: `verb` on `resource` of API `group` ("" for the core group) in `namespace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission<'a> {
    /// `get`, `list`, `watch`, `create`, `patch`, `delete`...
    pub verb: &'a str,
    /// The API group.
    pub group: &'a str,
    /// The resource, plural (`deployments`).
    pub resource: &'a str,
}

/// Whether the identity `client` authenticates as may do `permission` in `namespace`. Any authenticated identity may
/// ask this about itself (the built-in `system:basic-user` role).
pub async fn allowed(client: &Client, namespace: &str, permission: Permission<'_>) -> Result<bool, kube::Error> {
    allowed_on(client, namespace, permission, None).await
}

/// Whether the identity `client` authenticates as may do `permission` in `namespace`, on the resource's
/// `subresource` when one is named (`pods/log`, `services/proxy`).
pub async fn allowed_on(
    client: &Client,
    namespace: &str,
    permission: Permission<'_>,
    subresource: Option<&str>,
) -> Result<bool, kube::Error> {
    review(client, namespace, permission, subresource, None).await
}

/// Whether the identity `client` authenticates as may do `permission` on the object `name` in `namespace` (a rule
/// of RBAC may name objects).
pub async fn allowed_named(
    client: &Client,
    namespace: &str,
    permission: Permission<'_>,
    name: &str,
) -> Result<bool, kube::Error> {
    review(client, namespace, permission, None, Some(name)).await
}

async fn review(
    client: &Client,
    namespace: &str,
    permission: Permission<'_>,
    subresource: Option<&str>,
    name: Option<&str>,
) -> Result<bool, kube::Error> {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(namespace.to_owned()),
                verb: Some(permission.verb.to_owned()),
                group: Some(permission.group.to_owned()),
                resource: Some(permission.resource.to_owned()),
                subresource: subresource.map(str::to_owned),
                name: name.map(str::to_owned),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let answer = Api::<SelfSubjectAccessReview>::all(client.clone()).create(&PostParams::default(), &review).await?;
    Ok(answer.status.is_some_and(|status| status.allowed && !status.denied.unwrap_or(false)))
}
