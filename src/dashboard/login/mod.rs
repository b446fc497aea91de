//! Sign-in through an identity provider, beside the token form: a generic OpenID Connect provider ([`oidc`]: an invited
//! member signs in under the name the provider gives) and Cloud Foundry's dashboard single sign-on ([`cf`]: the Cloud
//! Controller says what the user may do with the instance). Both are the authorization code flow with PKCE
//! ([`provider`]); a short-lived pre-login cookie ties the callback to the browser that started it ([`pending`]). What
//! a sign-in ends in is always a session as a member: a token of the member's own ServiceAccount, so that Kubernetes'
//! RBAC decides what they may do.

mod cf;
mod oidc;
mod pending;
mod provider;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::DashboardState;
use super::i18n::Text;
use super::limit::ClientAddress;
use super::pages::{start_session, too_many};
use super::respond::{Visitor, cookie_value, message, see_other, text_for, visitor};
use crate::config::{CfSsoSettings, OidcSettings};
use crate::lifecycle::percent_encode;
use pending::{Pending, ProviderKind};
use provider::LoginError;

/// The pre-login cookie's name.
const LOGIN_COOKIE: &str = "caas_dashboard_login";
/// Where every provider sends the user back.
pub const CALLBACK_PATH: &str = "/auth/callback";

/// The identity providers configured, and the sign-ins under way.
pub struct Logins {
    oidc: Option<oidc::OidcLogin>,
    cf: Option<cf::CfLogin>,
    pending: Pending,
    secure_cookie: bool,
}

impl Logins {
    /// The providers the settings configure, sending users back to `<base_url>/auth/callback` (Cloud Foundry's: to
    /// its catalog client's redirect URI). A provider that cannot be set up is left out, and said so in the log.
    pub fn new(
        oidc: Option<&OidcSettings>,
        cf: Option<&CfSsoSettings>,
        catalog: &crate::catalog::Catalog,
        base_url: &str,
        max_pending: usize,
    ) -> Logins {
        let callback = format!("{}{CALLBACK_PATH}", base_url.trim_end_matches('/'));
        let oidc = oidc.and_then(|settings| {
            oidc::OidcLogin::new(settings, &callback)
                .inspect_err(|error| tracing::error!(%error, "the OpenID Connect sign-in is off"))
                .ok()
        });
        let cf = cf.and_then(|settings| {
            cf::CfLogin::new(settings, catalog, &callback)
                .inspect_err(|error| tracing::error!(%error, "the Cloud Foundry sign-in is off"))
                .ok()
        });
        Logins { oidc, cf, pending: Pending::new(max_pending), secure_cookie: base_url.starts_with("https://") }
    }

    /// The sign-in page's buttons for `instance_id`: (where the sign-in starts, its label).
    pub fn buttons(&self, text: &'static Text, instance_id: &str) -> Vec<(String, &'static str)> {
        let base = format!("/instances/{}/login", percent_encode(instance_id));
        let mut buttons = Vec::new();
        if self.oidc.is_some() {
            buttons.push((format!("{base}/oidc"), text.sign_in_oidc));
        }
        if self.cf.is_some() {
            buttons.push((format!("{base}/cf"), text.sign_in_cf));
        }
        buttons
    }

    fn provider(&self, kind: ProviderKind) -> Option<&provider::Provider> {
        match kind {
            ProviderKind::Oidc => self.oidc.as_ref().map(|login| &login.provider),
            ProviderKind::CloudFoundry => self.cf.as_ref().map(|login| &login.provider),
        }
    }

    fn cookie(&self, value: &str, max_age: u64) -> String {
        let secure = if self.secure_cookie { "; Secure" } else { "" };
        format!("{LOGIN_COOKIE}={value}; Path={CALLBACK_PATH}; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
    }
}

/// GET /instances/:instance_id/login/oidc — off to the OpenID Connect provider.
pub async fn start_oidc(
    state: State<DashboardState>,
    path: Path<String>,
    address: ClientAddress,
    headers: HeaderMap,
) -> Response {
    start(state, path, address, headers, ProviderKind::Oidc).await
}

/// GET /instances/:instance_id/login/cf — off to Cloud Foundry's UAA.
pub async fn start_cf(
    state: State<DashboardState>,
    path: Path<String>,
    address: ClientAddress,
    headers: HeaderMap,
) -> Response {
    start(state, path, address, headers, ProviderKind::CloudFoundry).await
}

/// Sends the browser to the provider with a new `state`, `nonce` and PKCE challenge, remembered under a new
/// pre-login cookie. A link (GET), not a form: the page's policy lets forms post only to the dashboard itself.
async fn start(
    State(state): State<DashboardState>,
    Path(instance_id): Path<String>,
    address: ClientAddress,
    headers: HeaderMap,
    kind: ProviderKind,
) -> Response {
    let text = text_for(&headers);
    if let Visitor::OfAnotherInstance = visitor(&state, &headers, &instance_id) {
        return message(StatusCode::FORBIDDEN, text, text.other_instance, true);
    }
    if let Err(wait) = state.limits.take(&address, None) {
        tracing::info!(instance_id, client = address.0, "a sign-in through an identity provider throttled");
        return too_many(text, wait);
    }
    let Some(provider) = state.logins.provider(kind) else {
        return message(StatusCode::NOT_FOUND, text, text.not_found, false);
    };
    let started = match provider.start().await {
        Ok(started) => started,
        Err(error) => {
            tracing::warn!(instance_id, %error, "a sign-in could not start at the identity provider");
            return message(StatusCode::SERVICE_UNAVAILABLE, text, text.provider_unavailable, false);
        }
    };
    let id = match state.logins.pending.add(&instance_id, kind, started.state, started.nonce, started.verifier) {
        Ok(id) => id,
        Err(error) => {
            tracing::error!(%error, "no randomness for a sign-in");
            return message(StatusCode::INTERNAL_SERVER_ERROR, text, text.unavailable, false);
        }
    };
    let mut response = see_other(&started.url);
    set_cookie(&mut response, &state.logins.cookie(&id, pending::PENDING_LIFETIME.as_secs()));
    response
}

fn set_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// What a provider sends the browser back with.
#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// GET /auth/callback — checks the `state` against the pre-login cookie's, exchanges the code and verifies the ID
/// token, then signs the user in as the member they are; the pre-login cookie is used once, whatever happens.
pub async fn callback(
    State(state): State<DashboardState>,
    address: ClientAddress,
    headers: HeaderMap,
    Query(query): Query<Callback>,
) -> Response {
    let text = text_for(&headers);
    if let Err(wait) = state.limits.take(&address, None) {
        tracing::info!(client = address.0, "a sign-in's return from an identity provider throttled");
        return too_many(text, wait);
    }
    let pending = cookie_value(&headers, LOGIN_COOKIE).and_then(|id| state.logins.pending.take(&id));
    let mut response = match pending {
        None => message(StatusCode::BAD_REQUEST, text, text.login_failed, false),
        Some(pending) => finish(&state, &headers, text, query, pending).await,
    };
    set_cookie(&mut response, &state.logins.cookie("", 0));
    response
}

async fn finish(
    state: &DashboardState,
    headers: &HeaderMap,
    text: &'static Text,
    query: Callback,
    pending: pending::PendingLogin,
) -> Response {
    let instance_id = pending.instance_id.clone();
    let refused = |why: &str| {
        tracing::info!(instance_id, why, "a sign-in through an identity provider was refused");
        message(StatusCode::FORBIDDEN, text, text.login_failed, false)
    };
    if let Some(error) = &query.error {
        return refused(&format!("the provider answered {error:?}"));
    }
    let state_matches =
        query.state.as_deref().is_some_and(|sent| bool::from(sent.as_bytes().ct_eq(pending.state.secret().as_bytes())));
    if !state_matches {
        return refused("the state does not match the one sent");
    }
    let (Some(code), Some(provider)) = (query.code.as_deref(), state.logins.provider(pending.provider)) else {
        return refused("no code, or the provider is no longer configured");
    };
    let verified = match provider.finish(code, &pending.nonce, pending.verifier).await {
        Ok(verified) => verified,
        Err(LoginError::Refused(why)) => return refused(&why),
        Err(LoginError::Unavailable(error)) => {
            tracing::warn!(instance_id, %error, "the identity provider did not answer");
            return message(StatusCode::SERVICE_UNAVAILABLE, text, text.provider_unavailable, false);
        }
    };
    let member = match pending.provider {
        ProviderKind::Oidc => match &state.logins.oidc {
            Some(login) => login.member(&verified),
            None => Err(Outcome::Failed),
        },
        ProviderKind::CloudFoundry => match &state.logins.cf {
            Some(login) => login.member(&state.broker, &instance_id, &verified).await,
            None => Err(Outcome::Failed),
        },
    };
    let name = match member {
        Ok(name) => name,
        Err(outcome) => return outcome.answer(text, &instance_id),
    };
    match state.broker.sign_in_member(&instance_id, &name, state.sessions.lifetime()).await {
        Ok(Some((tenant, credential))) => start_session(state, headers, text, tenant, credential),
        Ok(None) => Outcome::NotInvited.answer(text, &instance_id),
        Err(crate::lifecycle::Error::NotFound(_)) => message(StatusCode::NOT_FOUND, text, text.not_found, false),
        Err(crate::lifecycle::Error::BadRequest(_)) => Outcome::NotInvited.answer(text, &instance_id),
        Err(error) => {
            tracing::warn!(instance_id, %error, "a member could not be signed in");
            message(StatusCode::SERVICE_UNAVAILABLE, text, text.unavailable, false)
        }
    }
}

/// Why a verified user is not signed in.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Not a member (OpenID Connect): ask an admin for an invitation.
    NotInvited,
    /// Cloud Foundry gives them no permission on the instance.
    NoPermission,
    /// The provider or the Cloud Controller did not answer.
    Unavailable,
    /// Something that should not happen; in the log.
    Failed,
}

impl Outcome {
    fn answer(&self, text: &'static Text, instance_id: &str) -> Response {
        tracing::info!(instance_id, outcome = ?self, "a verified user was not signed in");
        match self {
            Outcome::NotInvited => message(StatusCode::FORBIDDEN, text, text.not_invited, false),
            Outcome::NoPermission => message(StatusCode::FORBIDDEN, text, text.cf_no_permission, false),
            Outcome::Unavailable => message(StatusCode::SERVICE_UNAVAILABLE, text, text.provider_unavailable, false),
            Outcome::Failed => message(StatusCode::INTERNAL_SERVER_ERROR, text, text.unavailable, false),
        }
    }
}
