//! The identities the broker hands out (each virtual cluster's owner, each binding) are ServiceAccounts in the
//! identity namespace, not in the tenant namespace. Inside its own namespace a tenant with `edit` or `admin` can mint
//! tokens for, impersonate and run pods as any ServiceAccount there; none of those permissions reaches another
//! namespace, so identities kept here cannot be turned into a stronger or longer-lived credential. The RoleBindings
//! that give them their role stay in the tenant namespace, so what they may do is unchanged.
//!
//! Each identity is owned (an owner reference) by its tenant namespace: deleting the virtual cluster deletes its
//! identities even when the broker is interrupted, and the broker deletes them itself first so that they are revoked
//! at once. Nothing here is per-replica state: any replica finds an identity by its deterministic name.

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};

use super::credentials::IssuedToken;
use super::{Broker, deleted};
use super::{Error, Result};
use crate::k8s::names::{self, LABEL_INSTANCE, LABEL_MANAGED_BY, LABEL_POD_SECURITY_ENFORCE, MANAGED_BY};
use crate::k8s::{apply, is_conflict, is_not_found};

impl Broker {
    fn identities(&self) -> Api<ServiceAccount> {
        Api::namespaced(self.client.clone(), &self.options.identity_namespace)
    }

    /// Applies an identity's ServiceAccount in the identity namespace, making the namespace on first use.
    pub(super) async fn apply_identity(&self, account: &ServiceAccount) -> Result<()> {
        match apply(&self.identities(), account).await {
            Err(error) if is_not_found(&error) => {
                self.ensure_namespace(&self.options.identity_namespace).await?;
                apply(&self.identities(), account).await?;
            }
            other => {
                other?;
            }
        }
        Ok(())
    }

    /// A new token of the identity `account` that the apiserver accepts for `seconds` (it may shorten that to its own
    /// `--service-account-max-token-expiration`); [`Error::NotFound`] when the identity no longer exists.
    pub(super) async fn request_token(&self, account: &str, seconds: i64) -> Result<IssuedToken> {
        self.request_token_for(account, seconds, Vec::new()).await
    }

    /// [`Broker::request_token`] for `audiences` (none: the apiserver's own).
    pub(super) async fn request_token_for(
        &self,
        account: &str,
        seconds: i64,
        audiences: Vec<String>,
    ) -> Result<IssuedToken> {
        let audiences = (!audiences.is_empty()).then_some(audiences);
        let spec = TokenRequestSpec { expiration_seconds: Some(seconds), audiences, ..TokenRequestSpec::default() };
        let request = TokenRequest { spec: Some(spec), ..TokenRequest::default() };
        let issued = match self.identities().create_token_request(account, &PostParams::default(), &request).await {
            Ok(issued) => issued,
            Err(error) if is_not_found(&error) => {
                return Err(Error::NotFound(format!("identity {account} no longer exists")));
            }
            Err(error) => return Err(error.into()),
        };
        let status = issued.status.ok_or_else(|| Error::internal("TokenRequest returned no status".to_owned()))?;
        let token = status.token.ok_or_else(|| Error::internal("TokenRequest returned no token".to_owned()))?;
        let expires_at = status
            .expiration_timestamp
            .map(|time| time.0)
            .ok_or_else(|| Error::internal("TokenRequest returned no expiry".to_owned()))?;
        Ok(IssuedToken { token, issued_at: jiff::Timestamp::now(), expires_at })
    }

    /// Deletes one identity; also its copy in `legacy_namespace`, where instances and bindings made before version
    /// 2.0 kept it. Ok(true) when either existed.
    pub(super) async fn delete_identity(&self, name: &str, legacy_namespace: &str) -> Result<bool> {
        let legacy = Api::<ServiceAccount>::namespaced(self.client.clone(), legacy_namespace);
        let params = DeleteParams::default();
        let identities = self.identities();
        let (current, old) = tokio::join!(identities.delete(name, &params), legacy.delete(name, &params));
        Ok(deleted(current)? | deleted(old)?)
    }

    /// Deletes every identity of an instance (its owner and its bindings' ServiceAccounts), revoking their tokens.
    pub(super) async fn delete_identities_of(&self, instance_id: &str) -> Result<()> {
        let selector = format!("{LABEL_INSTANCE}={}", names::label_value(instance_id));
        let listed = ListParams::default().labels(&selector);
        match self.identities().delete_collection(&DeleteParams::default(), &listed).await {
            Err(error) if !is_not_found(&error) => Err(error.into()),
            _ => Ok(()),
        }
    }

    /// Makes one of the broker's own namespaces (records, identities) when it is missing (the manifests and the Helm
    /// chart make them; a broker run by hand does it itself); two replicas may race.
    pub(super) async fn ensure_namespace(&self, name: &str) -> Result<()> {
        let namespaces = Api::<Namespace>::all(self.client.clone());
        if namespaces.get_opt(name).await?.is_some() {
            return Ok(());
        }
        let namespace = Namespace {
            metadata: kube::api::ObjectMeta {
                name: Some(name.to_owned()),
                labels: Some(
                    [
                        (LABEL_MANAGED_BY.to_owned(), MANAGED_BY.to_owned()),
                        // Nothing of the broker's runs pods there; whatever does must be restricted.
                        (LABEL_POD_SECURITY_ENFORCE.to_owned(), "restricted".to_owned()),
                    ]
                    .into(),
                ),
                ..Default::default()
            },
            ..Namespace::default()
        };
        match namespaces.create(&PostParams::default(), &namespace).await {
            Err(error) if !is_conflict(&error) => Err(error.into()),
            _ => Ok(()),
        }
    }
}
