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

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::DashboardState;
use super::i18n::Translation;
use super::limit::ClientAddress;
use super::page_error::PageError;
use super::pages::{start_session, too_many};
use super::paths;
use super::reply::see_other;
use super::respond::{Visitor, visitor};
use crate::config::{CfSsoSettings, OidcSettings};
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
    pub fn buttons(&self, text: &'static Translation, instance_id: &str) -> Vec<(String, &'static str)> {
        let instance_id = || instance_id.to_owned();
        let mut buttons = Vec::new();
        if self.oidc.is_some() {
            buttons.push((paths::LoginOidc { instance_id: instance_id() }.to_string(), text.sign_in_oidc));
        }
        if self.cf.is_some() {
            buttons.push((paths::LoginCf { instance_id: instance_id() }.to_string(), text.sign_in_cf));
        }
        buttons
    }

    fn provider(&self, kind: ProviderKind) -> Option<&provider::Provider> {
        match kind {
            ProviderKind::Oidc => self.oidc.as_ref().map(|login| &login.provider),
            ProviderKind::CloudFoundry => self.cf.as_ref().map(|login| &login.provider),
        }
    }

    /// The pre-login cookie holding `value`, sent back to the callback only, for `max_age` seconds (0: removed).
    fn cookie(&self, value: String, max_age: u64) -> Cookie<'static> {
        let max_age = i64::try_from(max_age).unwrap_or(i64::MAX);
        Cookie::build((LOGIN_COOKIE, value))
            .path(CALLBACK_PATH)
            .http_only(true)
            .same_site(SameSite::Lax)
            .max_age(cookie::time::Duration::seconds(max_age))
            .secure(self.secure_cookie)
            .build()
    }
}

/// GET /instances/:instance_id/login/oidc — off to the OpenID Connect provider.
pub async fn start_oidc(
    paths::LoginOidc { instance_id }: paths::LoginOidc,
    state: State<DashboardState>,
    address: ClientAddress,
    jar: CookieJar,
) -> Result<Response, PageError> {
    start(state, instance_id, address, jar, ProviderKind::Oidc).await
}

/// GET /instances/:instance_id/login/cf — off to Cloud Foundry's UAA.
pub async fn start_cf(
    paths::LoginCf { instance_id }: paths::LoginCf,
    state: State<DashboardState>,
    address: ClientAddress,
    jar: CookieJar,
) -> Result<Response, PageError> {
    start(state, instance_id, address, jar, ProviderKind::CloudFoundry).await
}

/// Sends the browser to the provider with a new `state`, `nonce` and PKCE challenge, remembered under a new
/// pre-login cookie. A link (GET), not a form: the page's policy lets forms post only to the dashboard itself.
async fn start(
    State(state): State<DashboardState>,
    instance_id: String,
    address: ClientAddress,
    jar: CookieJar,
    kind: ProviderKind,
) -> Result<Response, PageError> {
    if let Visitor::OfAnotherInstance = visitor(&state, &jar, &instance_id) {
        return Err(PageError::Forbidden(|text| text.other_instance));
    }
    if let Err(wait) = state.limits.take(&address, None) {
        tracing::info!(instance_id, client = address.0, "a sign-in through an identity provider throttled");
        return Ok(too_many(wait));
    }
    let Some(provider) = state.logins.provider(kind) else {
        return Err(PageError::anonymous(StatusCode::NOT_FOUND, |text| text.not_found));
    };
    let started = provider.start().await.map_err(|error| {
        tracing::warn!(instance_id, %error, "a sign-in could not start at the identity provider");
        PageError::anonymous(StatusCode::SERVICE_UNAVAILABLE, |text| text.provider_unavailable)
    })?;
    let id = state.logins.pending.add(&instance_id, kind, started.state, started.nonce, started.verifier).map_err(
        |error| {
            tracing::error!(%error, "no randomness for a sign-in");
            PageError::anonymous(StatusCode::INTERNAL_SERVER_ERROR, |text| text.unavailable)
        },
    )?;
    let cookie = state.logins.cookie(id, pending::PENDING_LIFETIME.as_secs());
    Ok((jar.add(cookie), see_other(&started.url)).into_response())
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
    jar: CookieJar,
    Query(query): Query<Callback>,
) -> Response {
    if let Err(wait) = state.limits.take(&address, None) {
        tracing::info!(client = address.0, "a sign-in's return from an identity provider throttled");
        return too_many(wait);
    }
    let pending = jar.get(LOGIN_COOKIE).and_then(|cookie| state.logins.pending.take(cookie.value()));
    let answer = match pending {
        None => Err(PageError::anonymous(StatusCode::BAD_REQUEST, |text| text.login_failed)),
        Some(pending) => finish(&state, jar.clone(), query, pending).await,
    };
    (jar.add(state.logins.cookie(String::new(), 0)), answer).into_response()
}

async fn finish(
    state: &DashboardState,
    jar: CookieJar,
    query: Callback,
    pending: pending::PendingLogin,
) -> Result<Response, PageError> {
    let instance_id = pending.instance_id.clone();
    let refused = |why: &str| {
        tracing::info!(instance_id, why, "a sign-in through an identity provider was refused");
        Err(PageError::anonymous(StatusCode::FORBIDDEN, |text| text.login_failed))
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
            return Err(PageError::anonymous(StatusCode::SERVICE_UNAVAILABLE, |text| text.provider_unavailable));
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
    let name = member.map_err(|outcome| outcome.answer(&instance_id))?;
    match state.broker.sign_in_member(&instance_id, &name, state.sessions.lifetime()).await {
        Ok(Some((tenant, credential))) => Ok(start_session(state, jar, tenant, credential).await?.into_response()),
        Ok(None) => Err(Outcome::NotInvited.answer(&instance_id)),
        Err(crate::lifecycle::Error::NotFound(_)) => {
            Err(PageError::anonymous(StatusCode::NOT_FOUND, |text| text.not_found))
        }
        Err(crate::lifecycle::Error::BadRequest(_)) => Err(Outcome::NotInvited.answer(&instance_id)),
        Err(error) => {
            tracing::warn!(instance_id, %error, "a member could not be signed in");
            Err(PageError::anonymous(StatusCode::SERVICE_UNAVAILABLE, |text| text.unavailable))
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
    fn answer(&self, instance_id: &str) -> PageError {
        tracing::info!(instance_id, outcome = ?self, "a verified user was not signed in");
        match self {
            Outcome::NotInvited => PageError::anonymous(StatusCode::FORBIDDEN, |text| text.not_invited),
            Outcome::NoPermission => PageError::anonymous(StatusCode::FORBIDDEN, |text| text.cf_no_permission),
            Outcome::Unavailable => {
                PageError::anonymous(StatusCode::SERVICE_UNAVAILABLE, |text| text.provider_unavailable)
            }
            Outcome::Failed => PageError::anonymous(StatusCode::INTERNAL_SERVER_ERROR, |text| text.unavailable),
        }
    }
}
