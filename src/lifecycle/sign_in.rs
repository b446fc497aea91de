//! Who may see a virtual cluster on the dashboard: the holder of a token of one of the
//! instance's own identities (its owner's ServiceAccount or a binding's, both in the identity namespace). The token is
//! checked by the apiserver (TokenReview) with the broker's client; what the holder may then read or do is decided by
//! Kubernetes' RBAC, since the dashboard reads as that identity (see [`crate::tenant::overview`]).

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::Api;
use kube::api::PostParams;

use super::{Broker, Error, Result};
use crate::k8s::binding::ANNOTATION_BINDING_ID;
use crate::k8s::names::{
    self, ANNOTATION_MEMBER, LABEL_BINDING, LABEL_INSTANCE, LABEL_MEMBER, OWNER_ROLE_BINDING_NAME,
};

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
    /// Which of the instance's identities it is, named as people know it.
    pub signer: Signer,
}

/// Which of a virtual cluster's identities signed in, named as its users know it (the binding's id, the member's name
/// at their identity provider) rather than by its ServiceAccount: what the dashboard says a session is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signer {
    /// The instance's owner.
    Owner,
    /// A binding, by its exact id.
    Binding(String),
    /// A member, by their name at their identity provider (see [`super::members`]).
    Member(String),
}

impl Signer {
    /// The identity the ServiceAccount `account` is, from its labels and annotations; `None` for one that is neither
    /// the owner `owner`, a binding nor a member.
    fn of(account: &ServiceAccount, owner: &str) -> Option<Signer> {
        let name = account.metadata.name.as_deref().unwrap_or_default();
        let labels = account.metadata.labels.clone().unwrap_or_default();
        let annotation = |key: &str| account.metadata.annotations.as_ref().and_then(|all| all.get(key)).cloned();
        if name == owner {
            Some(Signer::Owner)
        } else if let Some(label) = labels.get(LABEL_BINDING) {
            Some(Signer::Binding(annotation(ANNOTATION_BINDING_ID).unwrap_or_else(|| label.clone())))
        } else if labels.contains_key(LABEL_MEMBER) {
            Some(Signer::Member(annotation(ANNOTATION_MEMBER).unwrap_or_else(|| name.to_owned())))
        } else {
            None
        }
    }
}

/// A kubeconfig for a signed-in identity's own ServiceAccount, with a short-lived token.
#[derive(Debug, Clone)]
pub struct Kubeconfig {
    /// The YAML document (CA embedded, the tenant namespace as its context).
    pub yaml: String,
    /// When the apiserver stops accepting its token.
    pub expires_at: jiff::Timestamp,
}

/// How long a downloaded kubeconfig works at most: short, since it is a copy of the identity outside the broker's
/// reach; a new one is a click away. Never longer than the session's own token (see [`Broker::kubeconfig`]).
pub const KUBECONFIG_TOKEN_SECONDS: i64 = 3600;

/// The audience the dashboard's kubeconfig tokens carry beside the apiserver's: the apiserver accepts them (one of
/// their audiences is its own), and the sign-in, which reads the audiences of a token the apiserver has verified,
/// refuses them, so that a downloaded kubeconfig cannot be turned into a new session (and a new kubeconfig, and so on
/// past the first token's end).
pub const DASHBOARD_AUDIENCE: &str = "caas-broker.io/dashboard-kubeconfig";

/// Shortest token lifetime the TokenRequest API grants.
const MIN_TOKEN_SECONDS: i64 = 600;
/// Kept off a kubeconfig token's lifetime, so that it ends before the session's token even when the apiserver's clock
/// starts it a little later than the broker computed.
const EXPIRY_MARGIN_SECONDS: i64 = 30;

/// The token a session was opened with, and what the broker found it to be at sign-in: what the session is re-checked
/// against, and what bounds the kubeconfigs minted for it.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// The token (a ServiceAccount's JWT).
    pub token: String,
    /// When the apiserver stops accepting it (its `exp`); `None` for a token that never expires.
    pub expires_at: Option<jiff::Timestamp>,
    /// The uid of the ServiceAccount it was issued for: an account deleted and made anew is not the same identity.
    pub account_uid: Option<String>,
    /// The RoleBinding that gives the identity its role in the tenant namespace.
    pub role_binding: String,
    /// The role bound at sign-in (its ClusterRole's name), if any.
    pub role: Option<String>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Credential")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("account_uid", &self.account_uid)
            .field("role_binding", &self.role_binding)
            .field("role", &self.role)
            .finish()
    }
}

/// What the claims of a ServiceAccount token say (read once the apiserver has verified its signature).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Claims {
    /// `exp`.
    pub expires_at: Option<jiff::Timestamp>,
    /// `aud`.
    pub audiences: Vec<String>,
    /// `kubernetes.io.serviceaccount.uid`.
    pub account_uid: Option<String>,
}

impl Claims {
    /// The claims of a JWT's payload; nothing for what is not one.
    pub(super) fn of(token: &str) -> Claims {
        use base64::Engine;
        let payload = token.split('.').nth(1).unwrap_or_default().trim_end_matches('=');
        let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload) else {
            return Claims::default();
        };
        let Ok(claims) = serde_json::from_slice::<serde_json::Value>(&bytes) else { return Claims::default() };
        let audiences = match &claims["aud"] {
            serde_json::Value::String(one) => vec![one.clone()],
            serde_json::Value::Array(many) => many.iter().filter_map(|a| a.as_str().map(str::to_owned)).collect(),
            _ => Vec::new(),
        };
        Claims {
            expires_at: claims["exp"].as_i64().and_then(|exp| jiff::Timestamp::from_second(exp).ok()),
            audiences,
            account_uid: claims["kubernetes.io"]["serviceaccount"]["uid"].as_str().map(str::to_owned),
        }
    }

    /// Whether the dashboard minted the token for a kubeconfig (see [`DASHBOARD_AUDIENCE`]).
    pub(super) fn minted_by_dashboard(&self) -> bool {
        self.audiences.iter().any(|audience| audience == DASHBOARD_AUDIENCE)
    }
}

/// What the apiserver says of a token it accepts.
struct Reviewed {
    username: String,
    /// The audiences it accepted the token for (empty: its own, unnamed).
    audiences: Vec<String>,
}

/// Why a token does not open an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The apiserver does not accept the token (malformed, expired, revoked).
    TokenNotAccepted,
    /// The token is valid but belongs to no identity of this instance.
    NotAnIdentityOfThisInstance,
    /// The token is one the dashboard minted for a kubeconfig: it may be used with kubectl, not to sign in again.
    MintedByDashboard,
}

/// What a sign-in with a token comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant, reason = "made once per sign-in and moved straight into the session")]
pub enum SignIn {
    /// The token is one of the instance's identities'.
    Accepted(Tenant, Credential),
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
        let Some(reviewed) = self.review_token(token).await? else {
            return Ok(SignIn::Refused(Refusal::TokenNotAccepted));
        };
        // The apiserver verified the token's signature: its claims are what it was issued with.
        let claims = Claims::of(token);
        if claims.minted_by_dashboard() {
            return Ok(SignIn::Refused(Refusal::MintedByDashboard));
        }
        let prefix = format!("system:serviceaccount:{}:", self.options.identity_namespace);
        let Some(account) = reviewed.username.strip_prefix(&prefix) else {
            return Ok(SignIn::Refused(Refusal::NotAnIdentityOfThisInstance));
        };
        let Some(signer) = self.identity_of(instance_id, &instance.owner, account).await? else {
            return Ok(SignIn::Refused(Refusal::NotAnIdentityOfThisInstance));
        };
        let tenant = self.tenant(instance_id, &namespace, &instance, account, signer);
        let role_binding = role_binding_of(&instance.owner, account);
        let credential = self.credential(&tenant.namespace, token, claims, role_binding).await?;
        Ok(SignIn::Accepted(tenant, credential))
    }

    /// The session credential of `token`, with the role the identity's RoleBinding `role_binding` gives it now.
    pub(super) async fn credential(
        &self,
        namespace: &str,
        token: &str,
        claims: Claims,
        role_binding: String,
    ) -> Result<Credential> {
        let role = self.bound_role(namespace, &role_binding).await?;
        Ok(Credential {
            token: token.to_owned(),
            expires_at: claims.expires_at,
            account_uid: claims.account_uid,
            role_binding,
            role,
        })
    }

    /// The role the RoleBinding `name` gives in `namespace` (its ClusterRole's name), if it exists.
    async fn bound_role(&self, namespace: &str, name: &str) -> Result<Option<String>> {
        let bindings = Api::<RoleBinding>::namespaced(self.client.clone(), namespace);
        Ok(bindings.get_opt(name).await?.map(|binding| binding.role_ref.name))
    }

    /// Whether the identity a session was opened with is still what it was: its ServiceAccount the same one (not
    /// deleted, not made anew), its role the same. Asked with the broker's client, so that any replica can tell,
    /// whichever replica unbound, removed or changed it.
    pub async fn still_signed_in(&self, tenant: &Tenant, credential: &Credential) -> Result<bool> {
        let identities = Api::<ServiceAccount>::namespaced(self.client.clone(), &self.options.identity_namespace);
        let (account, role) = tokio::join!(
            identities.get_opt(&tenant.account),
            self.bound_role(&tenant.namespace, &credential.role_binding)
        );
        let Some(account) = account? else { return Ok(false) };
        let same_account = credential.account_uid.is_none() || account.metadata.uid == credential.account_uid;
        Ok(same_account && role? == credential.role)
    }

    /// The Kubernetes user name of the identity `account` (a ServiceAccount of the identity namespace).
    pub(super) fn username_of(&self, account: &str) -> String {
        format!("system:serviceaccount:{}:{account}", self.options.identity_namespace)
    }

    /// The signed-in identity `account` (a ServiceAccount of the identity namespace) of the virtual cluster
    /// `instance_id`, whose namespace and record are `namespace` and `instance`, known to its users as `signer`.
    pub(super) fn tenant(
        &self,
        instance_id: &str,
        namespace: &k8s_openapi::api::core::v1::Namespace,
        instance: &super::instances::stored::StoredInstance,
        account: &str,
        signer: Signer,
    ) -> Tenant {
        let (service_name, plan_name) = self.plan_names(&instance.attributes.service_id, &instance.attributes.plan_id);
        Tenant {
            instance_id: instance_id.to_owned(),
            namespace: namespace.metadata.name.clone().unwrap_or_default(),
            service_name,
            plan_name,
            username: self.username_of(account),
            account: account.to_owned(),
            signer,
        }
    }

    /// A kubeconfig for the signed-in identity's own ServiceAccount with a new token: what the identity may do with it
    /// is what its role allows in its namespace, no more. The broker requests the token (tenants cannot reach the
    /// identity namespace); deleting the binding revokes it.
    ///
    /// Only for a session whose own token the apiserver still accepts ([`Error::Denied`] otherwise), and never for
    /// longer than that token lasts: at most [`KUBECONFIG_TOKEN_SECONDS`], ending before it; [`Error::Conflict`] when
    /// it ends within the 10 minutes the TokenRequest API grants at least. The token carries [`DASHBOARD_AUDIENCE`],
    /// so it cannot sign in.
    pub async fn kubeconfig(&self, tenant: &Tenant, credential: &Credential) -> Result<Kubeconfig> {
        let reviewed = self.review_token(&credential.token).await?;
        let Some(reviewed) = reviewed.filter(|reviewed| reviewed.username == tenant.username) else {
            return Err(Error::denied("the session's token is no longer accepted".to_owned()));
        };
        let now = jiff::Timestamp::now();
        let seconds = match credential.expires_at {
            Some(end) => (end.as_second() - now.as_second() - EXPIRY_MARGIN_SECONDS).min(KUBECONFIG_TOKEN_SECONDS),
            None => KUBECONFIG_TOKEN_SECONDS,
        };
        if seconds < MIN_TOKEN_SECONDS {
            return Err(Error::Conflict(
                "the session's token ends within 10 minutes: sign in with a fresh token for a kubeconfig".to_owned(),
            ));
        }
        // The apiserver's own audiences (named by the review, else by the session token, which it accepted), and ours.
        let mut audiences =
            if reviewed.audiences.is_empty() { Claims::of(&credential.token).audiences } else { reviewed.audiences };
        audiences.retain(|audience| audience != DASHBOARD_AUDIENCE);
        if audiences.is_empty() {
            return Err(Error::internal("the apiserver's audiences are unknown: no kubeconfig is minted".to_owned()));
        }
        audiences.push(DASHBOARD_AUDIENCE.to_owned());
        let issued =
            self.request_token_for(&tenant.account, seconds, audiences).await.map_err(|error| match error {
                Error::NotFound(_) => Error::denied(format!("identity {} no longer exists", tenant.username)),
                other => other,
            })?;
        if credential.expires_at.is_some_and(|end| issued.expires_at > end) {
            return Err(Error::internal("the apiserver issued a token outliving the session's".to_owned()));
        }
        let yaml = super::credentials::kubeconfig(&self.endpoint, &tenant.namespace, &tenant.account, &issued.token);
        Ok(Kubeconfig { yaml, expires_at: issued.expires_at })
    }

    /// The user the apiserver authenticates `token` as, if it does.
    pub(super) async fn review(&self, token: &str) -> Result<Option<String>> {
        Ok(self.review_token(token).await?.map(|reviewed| reviewed.username))
    }

    /// What the apiserver says of `token` for its own audiences, if it accepts it.
    async fn review_token(&self, token: &str) -> Result<Option<Reviewed>> {
        let review = TokenReview {
            spec: TokenReviewSpec { token: token.to_owned(), ..TokenReviewSpec::default() },
            ..TokenReview::default()
        };
        let answer = Api::<TokenReview>::all(self.client.clone()).create(&PostParams::default(), &review).await?;
        let status = answer.status.unwrap_or_default();
        if !status.authenticated.unwrap_or(false) {
            return Ok(None);
        }
        let Some(username) = status.user.and_then(|user| user.username) else { return Ok(None) };
        Ok(Some(Reviewed { username, audiences: status.audiences.unwrap_or_default() }))
    }

    /// Which identity of the instance the ServiceAccount `account` of the identity namespace is (its owner, one of its
    /// bindings or members), if it is one.
    async fn identity_of(&self, instance_id: &str, owner: &str, account: &str) -> Result<Option<Signer>> {
        let identities = Api::<ServiceAccount>::namespaced(self.client.clone(), &self.options.identity_namespace);
        let Some(found) = identities.get_opt(account).await? else { return Ok(None) };
        let of_instance = found.metadata.labels.as_ref().and_then(|labels| labels.get(LABEL_INSTANCE))
            == Some(&names::label_value(instance_id));
        Ok(if of_instance { Signer::of(&found, owner) } else { None })
    }
}

/// The RoleBinding that gives the identity `account` its role: the owner's has a name of its own, a binding's or a
/// member's is named as its account.
pub(super) fn role_binding_of(owner: &str, account: &str) -> String {
    if account == owner { OWNER_ROLE_BINDING_NAME.to_owned() } else { account.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn jwt(claims: serde_json::Value) -> String {
        let encode = |value: &serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("json"))
        };
        format!("{}.{}.signature", encode(&serde_json::json!({ "alg": "RS256" })), encode(&claims))
    }

    #[test]
    fn claims_are_read_from_a_jwt_and_the_dashboard_audience_marks_a_kubeconfig_token() {
        let token = jwt(serde_json::json!({
            "aud": ["https://kubernetes.default.svc", DASHBOARD_AUDIENCE], "exp": 1_700_000_600,
            "kubernetes.io": { "serviceaccount": { "name": "a", "uid": "u-1" } }
        }));
        let claims = Claims::of(&token);
        assert_eq!(claims.expires_at, Some(jiff::Timestamp::from_second(1_700_000_600).expect("ts")));
        assert_eq!(claims.account_uid.as_deref(), Some("u-1"));
        assert!(claims.minted_by_dashboard());
        let plain = Claims::of(&jwt(serde_json::json!({ "aud": "https://kubernetes.default.svc" })));
        assert_eq!(plain.audiences, ["https://kubernetes.default.svc"]);
        assert!(!plain.minted_by_dashboard() && plain.expires_at.is_none());
        assert_eq!(Claims::of("not-a-jwt"), Claims::default());
        assert_eq!(Claims::of("a.!!!.c"), Claims::default());
    }

    #[test]
    fn an_identity_is_named_from_its_account() {
        let account = |name: &str, labels: &[(&str, &str)], annotations: &[(&str, &str)]| {
            let map = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
            ServiceAccount {
                metadata: kube::api::ObjectMeta {
                    name: Some(name.to_owned()),
                    labels: Some(map(labels)),
                    annotations: Some(map(annotations)),
                    ..Default::default()
                },
                ..Default::default()
            }
        };
        let owner = account("caas-owner-x", &[], &[]);
        assert_eq!(Signer::of(&owner, "caas-owner-x"), Some(Signer::Owner));
        let binding = account("caas-binding-ceo", &[(LABEL_BINDING, "ceo")], &[(ANNOTATION_BINDING_ID, "CEO.admin")]);
        assert_eq!(Signer::of(&binding, "caas-owner-x"), Some(Signer::Binding("CEO.admin".to_owned())));
        let member = account("caas-member-1", &[(LABEL_MEMBER, "true")], &[(ANNOTATION_MEMBER, "kim@example")]);
        assert_eq!(Signer::of(&member, "caas-owner-x"), Some(Signer::Member("kim@example".to_owned())));
        assert_eq!(Signer::of(&account("caas-owner-y", &[], &[]), "caas-owner-x"), None, "another's owner is no one");
    }

    #[test]
    fn the_owner_has_its_own_role_binding() {
        assert_eq!(role_binding_of("caas-owner-x", "caas-owner-x"), OWNER_ROLE_BINDING_NAME);
        assert_eq!(role_binding_of("caas-owner-x", "caas-binding-y"), "caas-binding-y");
    }
}
