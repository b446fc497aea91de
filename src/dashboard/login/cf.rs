//! Cloud Foundry's dashboard single sign-on: the user signs in at UAA with the catalog's `dashboard_client`, then the
//! Cloud Controller answers, to the user's own access token, what they may do with the service instance
//! (`GET /v3/service_instances/:guid/permissions`): `manage` makes them a member with role `admin`, `read` alone with
//! role `view`, neither refuses them and removes a membership an earlier sign-in made. Asked at every sign-in, so a
//! change in Cloud Foundry (a developer demoted to auditor) is followed at the next one.

use percent_encoding::utf8_percent_encode;
use serde::Deserialize;

use super::Outcome;
use super::provider::{Provider, SetupError, Verified, http_client};
use crate::config::CfSsoSettings;
use crate::lifecycle::members::{CF_MEMBER_PREFIX, Role};
use crate::lifecycle::{Broker, URL_COMPONENT};

/// UAA and the Cloud Controller.
pub struct CfLogin {
    /// UAA.
    pub provider: Provider,
    api_url: String,
}

/// The Cloud Controller's answer about one service instance.
#[derive(Debug, Deserialize, PartialEq, Eq)]
struct Permissions {
    #[serde(default)]
    read: bool,
    #[serde(default)]
    manage: bool,
}

impl CfLogin {
    /// UAA and the Cloud Controller as `settings` describe them, with the client of the catalog's `dashboard_client`
    /// (unless the settings name another id); users come back to that client's redirect URI, else to `callback`.
    pub fn new(
        settings: &CfSsoSettings,
        catalog: &crate::catalog::Catalog,
        callback: &str,
    ) -> Result<CfLogin, SetupError> {
        let client = catalog.dashboard_client();
        let client_id = settings
            .client_id
            .clone()
            .or_else(|| client.map(|client| client.id.clone()))
            .ok_or(SetupError::NoClientId)?;
        let redirect = client.and_then(|client| client.redirect_uri.clone()).unwrap_or_else(|| callback.to_owned());
        let http = http_client(settings.ca_file.as_deref())?;
        let provider =
            Provider::new(&settings.issuer, &client_id, &settings.client_secret, &settings.scopes, &redirect, http)?;
        Ok(CfLogin { provider, api_url: settings.api_url.trim_end_matches('/').to_owned() })
    }

    /// The member a verified Cloud Foundry user is for `instance_id`, made (or changed) to the role the Cloud
    /// Controller's permissions give; without any, their membership is removed and they are refused.
    pub async fn member(&self, broker: &Broker, instance_id: &str, verified: &Verified) -> Result<String, Outcome> {
        let name = format!("{CF_MEMBER_PREFIX}{}", verified.subject);
        let permissions = self.permissions(instance_id, &verified.access_token).await?;
        let role = if permissions.manage {
            Role::Admin
        } else if permissions.read {
            Role::View
        } else {
            if let Err(error) = broker.revoke(instance_id, &name).await {
                tracing::warn!(instance_id, member = name, %error, "a Cloud Foundry user without permissions could not be removed");
            }
            return Err(Outcome::NoPermission);
        };
        match broker.ensure_member(instance_id, &name, role).await {
            Ok(()) => Ok(name),
            Err(crate::lifecycle::Error::NotFound(_)) => Err(Outcome::NoPermission),
            Err(error) => {
                tracing::warn!(instance_id, member = name, %error, "a Cloud Foundry user's membership could not be set");
                Err(Outcome::Unavailable)
            }
        }
    }

    /// What the Cloud Controller lets the owner of `access_token` do with the instance. An instance it does not show
    /// them (401, 403, 404) gives no permission; anything else it answers but 200 means it is not answering properly.
    async fn permissions(&self, instance_id: &str, access_token: &str) -> Result<Permissions, Outcome> {
        let instance_id = utf8_percent_encode(instance_id, URL_COMPONENT);
        let url = format!("{}/v3/service_instances/{instance_id}/permissions", self.api_url);
        let answer = self.provider.http().get(&url).bearer_auth(access_token).send().await.map_err(|error| {
            tracing::warn!(%error, "the Cloud Controller did not answer");
            Outcome::Unavailable
        })?;
        match answer.status().as_u16() {
            200 => answer.json::<Permissions>().await.map_err(|error| {
                tracing::warn!(%error, "the Cloud Controller's permissions are not the expected JSON");
                Outcome::Unavailable
            }),
            401 | 403 | 404 => Ok(Permissions { read: false, manage: false }),
            status => {
                tracing::warn!(status, "the Cloud Controller answered the permissions request with an error");
                Err(Outcome::Unavailable)
            }
        }
    }
}
