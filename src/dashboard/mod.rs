//! The tenant dashboard: a second face, beside the OSB API, on a listener of its own, over the tenant's domain
//! ([`crate::tenant`]) and, for sign-in and members, the lifecycle ([`crate::lifecycle`]). Tenants sign in to one
//! virtual cluster with a token of one of its identities (see [`crate::lifecycle::Tenant`]); every read is then made
//! as that identity, so Kubernetes' RBAC decides what they see, and they can take that identity to kubectl
//! (a kubeconfig with a short-lived token). Pages are rendered on the server (askama) and work without script; the
//! only scripts, vendored htmx and its SSE extension, make parts of them update in place when the live stream (see
//! [`live`]) says something changed. The session cookie holds a random id only, the token stays in this process's
//! memory.

mod apps;
mod assets;
mod deploy;
mod edit;
mod endpoint;
mod events;
mod expiring;
pub mod fleet;
mod guard;
mod i18n;
mod limit;
pub mod live;
mod login;
mod logs;
mod map;
mod measures;
mod members;
mod novnc;
mod objects;
mod open_streams;
mod page_error;
mod pages;
mod paths;
mod reply;
mod respond;
mod search;
mod selkies;
mod session_proxy;
mod sparkline;
mod stream;
mod streaming;
mod terminal;
mod user_sessions;
mod workload_logs;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use axum_extra::routing::RouterExt;

use crate::config::Settings;
use crate::lifecycle::Broker;
use user_sessions::Sessions;

/// How the dashboard is served, from the configuration and the address it is bound to.
#[derive(Debug, Clone)]
pub struct DashboardOptions {
    /// Where tenants reach the dashboard (`scheme://host[:port]`, maybe a path); its origin is the only one whose
    /// forms are accepted.
    pub base_url: String,
    /// How long a sign-in lasts.
    pub session_lifetime: Duration,
    /// Most sessions held at once.
    pub max_sessions: usize,
    /// Most long-lived streams one sign-in holds open at once.
    pub max_streams_per_session: usize,
    /// Most long-lived streams one identity holds open at once.
    pub max_streams_per_identity: usize,
    /// Most sessions of one identity held at once.
    pub max_sessions_per_identity: usize,
    /// How long a session is used before its identity is checked again.
    pub session_recheck: Duration,
    /// Sign-in attempts per minute per client address.
    pub sign_ins_per_minute_per_address: u32,
    /// Sign-in attempts per minute per token.
    pub sign_ins_per_minute_per_token: u32,
    /// The header naming the client behind a proxy, if any.
    pub client_address_header: Option<axum::http::HeaderName>,
    /// Sign-in through a generic OpenID Connect provider, if configured.
    pub oidc: Option<crate::config::OidcSettings>,
    /// Cloud Foundry's single sign-on, if configured.
    pub cf_sso: Option<crate::config::CfSsoSettings>,
    /// How long a terminal into a container lasts, idle and at most.
    pub terminal: terminal::Limits,
}

impl DashboardOptions {
    /// The options of a dashboard bound to `bound` (which resolves a `dashboard.listen` with port 0).
    pub fn from_settings(settings: &Settings, bound: std::net::SocketAddr) -> DashboardOptions {
        DashboardOptions {
            base_url: settings.dashboard_own_url(bound),
            session_lifetime: Duration::from_secs(settings.dashboard.session_seconds),
            max_sessions: settings.dashboard.max_sessions,
            max_streams_per_session: settings.dashboard.max_streams_per_session,
            max_streams_per_identity: settings.dashboard.max_streams_per_identity,
            max_sessions_per_identity: settings.dashboard.max_sessions_per_identity,
            session_recheck: Duration::from_secs(settings.dashboard.session_recheck_seconds),
            sign_ins_per_minute_per_address: settings.dashboard.sign_ins_per_minute_per_address,
            sign_ins_per_minute_per_token: settings.dashboard.sign_ins_per_minute_per_token,
            client_address_header: settings
                .dashboard
                .client_address_header
                .as_deref()
                .and_then(|name| axum::http::HeaderName::from_bytes(name.as_bytes()).ok()),
            oidc: settings.dashboard.oidc.clone(),
            cf_sso: settings.dashboard.cf_sso.clone(),
            terminal: terminal::Limits {
                idle: Duration::from_secs(settings.dashboard.terminal_idle_seconds),
                longest: Duration::from_secs(settings.dashboard.terminal_max_seconds),
                debug_image: settings.dashboard.debug_image.clone(),
            },
        }
    }
}

/// What every handler shares.
struct Dashboard {
    broker: Arc<Broker>,
    sessions: Sessions,
    /// The broker's own client configuration, minus its credentials: what a signed-in user's client is made from.
    user_base: kube::Config,
    /// Cookies only over HTTPS when the dashboard is reached over HTTPS.
    secure_cookie: bool,
    /// The live view's watches, shared by every viewer of a namespace.
    hub: live::Hub,
    /// The long-lived streams users hold open, counted against their limits.
    streams: Arc<open_streams::OpenStreams>,
    /// The identity providers users may sign in with, and the sign-ins under way there.
    logins: login::Logins,
    /// How often one address or one token may try to sign in.
    limits: limit::SignInLimits,
    /// How long a terminal into a container lasts.
    terminal: terminal::Limits,
}

type DashboardState = Arc<Dashboard>;

/// The dashboard's routes, behind its security headers and cross-site request check. `cluster` is the broker's client
/// configuration: signed-in users' clients reach the same apiserver with the same CA, with their own token.
pub fn router(broker: Arc<Broker>, options: DashboardOptions, cluster: kube::Config) -> Router {
    let origin = guard::origin_of(&options.base_url);
    let hub = live::Hub::new(Arc::new(live::KubeWatches { client: broker.client().clone() }));
    let logins = login::Logins::new(
        options.oidc.as_ref(),
        options.cf_sso.as_ref(),
        broker.catalog(),
        &options.base_url,
        options.max_sessions,
    );
    let sessions = Sessions::new(user_sessions::SessionLimits {
        lifetime: options.session_lifetime,
        max: options.max_sessions,
        per_identity: options.max_sessions_per_identity,
        recheck: options.session_recheck,
    });
    sessions.listen(broker.revocations());
    let limits = limit::SignInLimits {
        per_address: limit::RateLimit::new(options.sign_ins_per_minute_per_address, limit::MAX_KEYS),
        per_token: limit::RateLimit::new(options.sign_ins_per_minute_per_token, limit::MAX_KEYS),
        address_header: options.client_address_header.clone(),
    };
    let state = Arc::new(Dashboard {
        hub,
        streams: open_streams::OpenStreams::new(options.max_streams_per_session, options.max_streams_per_identity),
        logins,
        broker,
        sessions,
        limits,
        terminal: options.terminal.clone(),
        user_base: cluster,
        secure_cookie: origin.starts_with("https://"),
    });
    Router::new()
        .typed_get(pages::overview)
        .typed_get(pages::login_form)
        .typed_post(pages::login)
        .typed_post(pages::kubeconfig)
        .typed_get(apps::page)
        .typed_post(apps::act)
        .typed_get(apps::autoscalers)
        .typed_get(deploy::form)
        .typed_post(deploy::submit)
        .typed_get(deploy::progress)
        .typed_get(endpoint::page)
        .typed_post(endpoint::send)
        .typed_get(pages::alerts)
        .typed_get(pages::usage)
        .typed_get(objects::page)
        .typed_get(objects::section)
        .typed_get(objects::object)
        .typed_get(edit::form)
        .typed_post(edit::submit)
        .typed_get(events::page)
        .typed_get(events::timeline)
        .typed_get(search::page)
        .typed_get(map::page)
        .typed_get(stream::live)
        .typed_get(logs::page)
        .typed_get(logs::stream)
        .typed_get(workload_logs::page)
        .typed_get(workload_logs::stream)
        .typed_get(streaming::page)
        .typed_post(streaming::act)
        .typed_post(streaming::reveal)
        .typed_post(streaming::open)
        .typed_get(streaming::card_fragment)
        .typed_get(terminal::page)
        .typed_get(terminal::socket)
        .typed_post(terminal::debug)
        .route(paths::NOVNC_ASSET, get(novnc::proxy))
        .route(paths::STREAM_ASSET, get(selkies::proxy))
        .route(assets::HTMX_PATH, get(assets::htmx))
        .route(assets::HTMX_SSE_PATH, get(assets::htmx_sse))
        .route(assets::SESSION_STREAM_PATH, get(assets::session_stream))
        .route(assets::XTERM_PATH, get(assets::xterm))
        .route(assets::XTERM_FIT_PATH, get(assets::xterm_fit))
        .route(assets::XTERM_CSS_PATH, get(assets::xterm_css))
        .route(assets::TERMINAL_PATH, get(assets::terminal))
        .typed_get(login::start_oidc)
        .typed_get(login::start_cf)
        .route(login::CALLBACK_PATH, get(login::callback))
        .typed_get(members::page)
        .typed_post(members::invite)
        .typed_post(members::change_role)
        .typed_post(members::revoke)
        .route("/logout", post(pages::logout))
        .route("/dashboard.css", get(pages::stylesheet))
        .route("/favicon.ico", get(pages::no_icon))
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), page_error::answer_errors))
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(Arc::new(origin), guard::same_origin_writes))
        .layer(axum::middleware::from_fn(guard::security_headers))
}
