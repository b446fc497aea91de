//! Who may see a virtual cluster through a face other than the OSB API: the holder of a token of one of the
//! instance's own identities (its owner's ServiceAccount or a binding's, both in the identity namespace). The token is
//! checked by the apiserver (TokenReview) with the broker's client; what the holder may then read or do is decided by
//! Kubernetes' RBAC, since the face reads as that identity (see [`super::overview`]).

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use kube::api::PostParams;

use super::{Broker, Error, Result};
use crate::k8s::names::{self, LABEL_BINDING, LABEL_INSTANCE, LABEL_MEMBER};

/// Longest token accepted for review: service-account tokens are about 1 KiB; anything far longer is not one.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// A signed-in identity's virtual cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// The exact instance id.
    pub instance_id: String,
    /// The tenant namespace, where every read is made.
    pub namespace: String,
    /// The offering's name.
    pub service_name: String,
    /// The plan's name.
    pub plan_name: String,
    /// The ServiceAccount the token belongs to (`system:serviceaccount:<namespace>:<name>`).
    pub username: String,
    /// That ServiceAccount's name in the identity namespace.
    pub account: String,
    /// The member's name as their identity provider gives it, when a member signed in (see [`super::members`]).
    pub member: Option<String>,
}

/// A kubeconfig for a signed-in identity's own ServiceAccount, with a short-lived token.
#[derive(Debug, Clone)]
pub struct Kubeconfig {
    /// The YAML document (CA embedded, the tenant namespace as its context).
    pub yaml: String,
    /// When the apiserver stops accepting its token.
    pub expires_at: jiff::Timestamp,
}

/// How long a downloaded kubeconfig works: short, since it is a copy of the identity outside the broker's reach; a
/// new one is a click away.
pub const KUBECONFIG_TOKEN_SECONDS: i64 = 3600;

/// Why a token does not open an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The apiserver does not accept the token (malformed, expired, revoked).
    TokenNotAccepted,
    /// The token is valid but belongs to no identity of this instance.
    NotAnIdentityOfThisInstance,
}

/// What a sign-in with a token comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignIn {
    /// The token is one of the instance's identities'.
    Accepted(Tenant),
    /// It is not.
    Refused(Refusal),
}

impl Broker {
    /// Checks that `token` is accepted by the apiserver and belongs to the owner or a binding of the virtual cluster
    /// `instance_id`; 404 ([`Error::NotFound`]) when there is no such virtual cluster.
    pub async fn sign_in(&self, instance_id: &str, token: &str) -> Result<SignIn> {
        let Some((namespace, instance)) = self.find(instance_id).await? else {
            return Err(Error::NotFound(format!("there is no virtual cluster {instance_id}")));
        };
        if instance.terminating {
            return Err(Error::NotFound(format!("virtual cluster {instance_id} is being deleted")));
        }
        let token = token.trim();
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES || token.chars().any(char::is_whitespace) {
            return Ok(SignIn::Refused(Refusal::TokenNotAccepted));
        }
        let Some(username) = self.review(token).await? else {
            return Ok(SignIn::Refused(Refusal::TokenNotAccepted));
        };
        let prefix = format!("system:serviceaccount:{}:", self.options.identity_namespace);
        let Some(account) = username.strip_prefix(&prefix) else {
            return Ok(SignIn::Refused(Refusal::NotAnIdentityOfThisInstance));
        };
        if !self.is_identity_of(instance_id, &instance.owner, account).await? {
            return Ok(SignIn::Refused(Refusal::NotAnIdentityOfThisInstance));
        }
        Ok(SignIn::Accepted(self.tenant(instance_id, &namespace, &instance, account)))
    }

    /// The signed-in identity `account` (a ServiceAccount of the identity namespace) of the virtual cluster
    /// `instance_id`, whose namespace and record are `namespace` and `instance`.
    pub(super) fn tenant(
        &self,
        instance_id: &str,
        namespace: &k8s_openapi::api::core::v1::Namespace,
        instance: &super::instance::StoredInstance,
        account: &str,
    ) -> Tenant {
        let (service_name, plan_name) = self.plan_names(&instance.attributes.service_id, &instance.attributes.plan_id);
        Tenant {
            instance_id: instance_id.to_owned(),
            namespace: namespace.metadata.name.clone().unwrap_or_default(),
            service_name,
            plan_name,
            username: format!("system:serviceaccount:{}:{account}", self.options.identity_namespace),
            account: account.to_owned(),
            member: None,
        }
    }

    /// A kubeconfig for the signed-in identity's own ServiceAccount with a new token that lasts
    /// [`KUBECONFIG_TOKEN_SECONDS`]: what the identity may do with it is what its role allows in its namespace, no more.
    /// The broker requests the token (tenants cannot reach the identity namespace); deleting the binding revokes it.
    pub async fn kubeconfig(&self, tenant: &Tenant) -> Result<Kubeconfig> {
        let issued =
            self.request_token(&tenant.account, KUBECONFIG_TOKEN_SECONDS).await.map_err(|error| match error {
                Error::NotFound(_) => Error::NotFound(format!("identity {} no longer exists", tenant.username)),
                other => other,
            })?;
        let yaml = super::credentials::kubeconfig(&self.endpoint, &tenant.namespace, &tenant.account, &issued.token);
        Ok(Kubeconfig { yaml, expires_at: issued.expires_at })
    }

    /// The user the apiserver authenticates `token` as, if it does.
    pub(super) async fn review(&self, token: &str) -> Result<Option<String>> {
        let review = TokenReview {
            spec: TokenReviewSpec { token: token.to_owned(), ..TokenReviewSpec::default() },
            ..TokenReview::default()
        };
        let answer = Api::<TokenReview>::all(self.client.clone()).create(&PostParams::default(), &review).await?;
        let status = answer.status.unwrap_or_default();
        Ok(status.authenticated.unwrap_or(false).then_some(status.user.and_then(|user| user.username)).flatten())
    }

    /// Whether the ServiceAccount `account` of the identity namespace is the instance's owner or one of its bindings'.
    async fn is_identity_of(&self, instance_id: &str, owner: &str, account: &str) -> Result<bool> {
        let identities = Api::<ServiceAccount>::namespaced(self.client.clone(), &self.options.identity_namespace);
        let Some(found) = identities.get_opt(account).await? else { return Ok(false) };
        let labels = found.metadata.labels.unwrap_or_default();
        let of_instance = labels.get(LABEL_INSTANCE) == Some(&names::label_value(instance_id));
        Ok(of_instance && (account == owner || labels.contains_key(LABEL_BINDING) || labels.contains_key(LABEL_MEMBER)))
    }
}
