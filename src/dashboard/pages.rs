//! The dashboard's pages: sign-in, the overview of a virtual cluster, sign-out. Handlers are thin: who the visitor is
//! comes from the session, what they may see from the broker (as them), the words from [`super::i18n`].

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use serde::Deserialize;

use super::DashboardState;
use super::i18n::Translation;
use super::limit::ClientAddress;
use super::measures::{self, MonthLine, QuotaLine, UsageView};
use super::page_error::PageError;
use super::paths;
use super::reply::{COOKIE, message, render, see_other, session_id, text_for};
use super::respond::{PageVisit, PartVisit, Visit, Visitor, visitor};
use super::user_sessions::{Session, StartError};
use crate::lifecycle::PlanApp;
use crate::lifecycle::usage::{PodHistory, UsageTotals};
use crate::lifecycle::{Credential, Error, Refusal, SignIn};
use crate::tenant::abilities::Abilities;
use crate::tenant::overview::{self, ContainerDefault, Metrics, Overview};

/// The sign-in page.
#[derive(Template)]
#[template(path = "login.html", config = "src/dashboard/askama.toml")]
struct LoginPage<'a> {
    text: &'static Translation,
    instance_id: &'a str,
    action: String,
    error: Option<&'static str>,
    /// A button per identity provider configured: (where it starts, its label).
    providers: Vec<(String, &'static str)>,
}

/// One alert as shown.
struct AlertLine {
    severity: &'static str,
    critical: bool,
    object: String,
    detail: String,
    advice: &'static str,
}

/// The alerts alone, for the live overview to swap in.
#[derive(Template)]
#[template(path = "alerts.html", config = "src/dashboard/askama.toml")]
struct AlertsFragment {
    text: &'static Translation,
    alerts: Vec<AlertLine>,
    live_alerts: Option<String>,
}

/// The CPU and memory card: on the overview, and alone for it to swap in every 30 s (use is no object change to hear
/// of).
#[derive(Template)]
#[template(path = "metrics.html", config = "src/dashboard/askama.toml")]
struct MetricsFragment {
    text: &'static Translation,
    /// Where the card alone is fetched again.
    url: String,
    /// CPU and memory per workload and pod; `None` when the metrics API does not answer.
    usage: Option<UsageView>,
}

fn metrics_card(
    text: &'static Translation,
    session: &Session,
    metrics: &Metrics,
    history: &[PodHistory],
) -> MetricsFragment {
    let usage = match metrics {
        Metrics::Available(usage) => Some(measures::usage_view(text, usage, history)),
        Metrics::Unavailable => None,
    };
    let url = paths::Usage { instance_id: session.tenant.instance_id.clone() }.to_string();
    MetricsFragment { text, url, usage }
}

/// GET /instances/:instance_id/usage — the CPU and memory card alone, read as the signed-in user, with the broker's
/// samples of the pods they see.
pub async fn usage(
    _: paths::Usage,
    State(state): State<DashboardState>,
    visit: PartVisit,
) -> Result<Response, PageError> {
    let Visit { session, text, .. } = visit;
    let metrics = overview::usage(&session.client, &session.tenant.namespace).await?;
    let history = state.broker.pod_history(&session.tenant);
    Ok(render(StatusCode::OK, &metrics_card(text, &session, &metrics, &history)))
}

/// The overview of a virtual cluster.
#[derive(Template)]
#[template(path = "overview.html", config = "src/dashboard/askama.toml")]
struct OverviewPage<'a> {
    text: &'static Translation,
    session: &'a Session,
    alerts: Vec<AlertLine>,
    live_alerts: Option<String>,
    workloads: String,
    live: String,
    htmx_path: &'static str,
    htmx_sse_path: &'static str,
    quota: Vec<QuotaLine<'a>>,
    defaults: &'a [ContainerDefault],
    pods: Vec<(&'a str, usize)>,
    deployments: usize,
    stateful_sets: usize,
    plans: &'a [PlanApp],
    metrics_card: MetricsFragment,
    /// The month's usage; `None` when it cannot be read.
    month: Option<Vec<MonthLine>>,
    apps_link: String,
    kubeconfig_action: String,
    kubeconfig_file: String,
    token_hours: i64,
}

/// POST /instances/:instance_id/kubeconfig — a kubeconfig for the signed-in identity, as a download (a POST: it mints
/// a credential, so it takes the same cross-site check as every other change).
pub async fn kubeconfig(
    _: paths::Kubeconfig,
    State(state): State<DashboardState>,
    visit: PageVisit,
) -> Result<Response, PageError> {
    let Visit { session_id, session, instance_id, .. } = visit;
    match state.broker.kubeconfig(&session.tenant, &session.credential).await {
        Ok(kubeconfig) => {
            let disposition = format!("attachment; filename=\"{}\"", kubeconfig_file(&session.tenant.namespace));
            let identity = session.identity();
            let role = identity.role.as_deref().unwrap_or("none");
            tracing::info!(instance_id, user = identity.username, role, expires_at = %kubeconfig.expires_at, "kubeconfig downloaded");
            let mut response = (StatusCode::OK, kubeconfig.yaml).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/yaml; charset=utf-8"));
            if let Ok(value) = HeaderValue::from_str(&disposition) {
                headers.insert(header::CONTENT_DISPOSITION, value);
            }
            Ok(response)
        }
        Err(Error::Unavailable { .. }) => Err(PageError::Unavailable),
        Err(error @ Error::Denied { .. }) => {
            // The session's own token is refused (revoked, expired): the session ends with it.
            tracing::info!(instance_id, user = %session.tenant.username, %error, "no kubeconfig: the session ends");
            state.sessions.end(&session_id);
            Err(PageError::SignIn { instance_id, page: true })
        }
        Err(Error::Conflict(_)) => Err(PageError::signed_in(StatusCode::CONFLICT, |text| text.kubeconfig_too_late)),
        Err(error) => {
            tracing::warn!(instance_id, %error, "no kubeconfig for the signed-in user");
            Err(PageError::signed_in(StatusCode::INTERNAL_SERVER_ERROR, |text| text.unavailable))
        }
    }
}

/// The name a downloaded kubeconfig is saved as (the namespace is a DNS label: safe in a file name and a header).
fn kubeconfig_file(namespace: &str) -> String {
    format!("{namespace}.kubeconfig")
}

/// The sign-in form's fields.
#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    token: String,
}

/// GET /instances/:instance_id — the overview, read with the signed-in user's own token.
pub async fn overview(
    _: paths::Overview,
    State(state): State<DashboardState>,
    visit: PageVisit,
) -> Result<Response, PageError> {
    let Visit { session, instance_id, text, .. } = visit;
    let (read, plans, month) = tokio::join!(
        overview::read(&session.client, &session.tenant.namespace),
        state.broker.workload_plans(&session.tenant),
        state.broker.month_usage(&session.tenant),
    );
    let plans = plans.unwrap_or_else(|error| {
        tracing::warn!(instance_id, %error, "the workload plans of a virtual cluster could not be read");
        Vec::new()
    });
    let month = month
        .inspect_err(
            |error| tracing::warn!(instance_id, %error, "the month's usage of a virtual cluster could not be read"),
        )
        .ok();
    let history = state.broker.pod_history(&session.tenant);
    let measured = Measured { history: &history, month: month.as_ref() };
    Ok(render(StatusCode::OK, &overview_page(text, &session, &read?, &plans, measured)))
}

/// GET /instances/:instance_id/alerts — the overview's alerts alone, read as the signed-in user (what the live
/// overview swaps in when pods, events or Deployments change).
pub async fn alerts(path: paths::Alerts, visit: PartVisit) -> Result<Response, PageError> {
    let Visit { session, text, .. } = visit;
    let overview = overview::read(&session.client, &session.tenant.namespace).await?;
    let live_alerts = Some(path.to_string());
    Ok(render(StatusCode::OK, &AlertsFragment { text, alerts: alert_lines(text, &overview), live_alerts }))
}

fn alert_lines(text: &'static Translation, overview: &Overview) -> Vec<AlertLine> {
    overview
        .alerts
        .iter()
        .map(|alert| AlertLine {
            severity: text.severity(alert.severity),
            critical: alert.severity == crate::tenant::alerts::Severity::Critical,
            object: alert.object.clone(),
            detail: alert.detail.clone(),
            advice: text.advice(alert.kind),
        })
        .collect()
}

/// What the broker itself measured of a virtual cluster, beside what its user reads.
#[derive(Clone, Copy)]
struct Measured<'a> {
    /// Each pod's last hour.
    history: &'a [PodHistory],
    /// The month's usage, if it could be read.
    month: Option<&'a UsageTotals>,
}

fn overview_page<'a>(
    text: &'static Translation,
    session: &'a Session,
    overview: &'a Overview,
    plans: &'a [PlanApp],
    measured: Measured<'_>,
) -> OverviewPage<'a> {
    let instance_id = || session.tenant.instance_id.clone();
    OverviewPage {
        text,
        session,
        alerts: alert_lines(text, overview),
        live_alerts: Some(paths::Alerts { instance_id: instance_id() }.to_string()),
        workloads: paths::Workloads { instance_id: instance_id() }.to_string(),
        live: paths::Live { instance_id: instance_id() }.to_string(),
        htmx_path: super::assets::HTMX_PATH,
        htmx_sse_path: super::assets::HTMX_SSE_PATH,
        quota: measures::quota_lines(text, &overview.quota),
        defaults: &overview.defaults,
        pods: overview.pods_by_phase.iter().map(|(phase, count)| (phase.as_str(), *count)).collect(),
        deployments: overview.deployments,
        stateful_sets: overview.stateful_sets,
        plans,
        metrics_card: metrics_card(text, session, &overview.metrics, measured.history),
        month: measured.month.map(|totals| measures::month_lines(text, totals)),
        apps_link: paths::Apps { instance_id: instance_id() }.to_string(),
        kubeconfig_action: paths::Kubeconfig { instance_id: instance_id() }.to_string(),
        kubeconfig_file: kubeconfig_file(&session.tenant.namespace),
        token_hours: crate::lifecycle::KUBECONFIG_TOKEN_SECONDS / 3600,
    }
}

/// GET /instances/:instance_id/login — the form to paste a token into.
pub async fn login_form(
    paths::Login { instance_id }: paths::Login,
    State(state): State<DashboardState>,
    jar: CookieJar,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let text = text_for(&headers);
    if let Visitor::OfAnotherInstance = visitor(&state, &jar, &instance_id) {
        return Err(PageError::Forbidden(|text| text.other_instance));
    }
    let providers = state.logins.buttons(text, &instance_id);
    Ok(render(StatusCode::OK, &login_page(text, &instance_id, None, providers)))
}

fn login_page<'a>(
    text: &'static Translation,
    instance_id: &'a str,
    error: Option<&'static str>,
    providers: Vec<(String, &'static str)>,
) -> LoginPage<'a> {
    let action = paths::Login { instance_id: instance_id.to_owned() }.to_string();
    LoginPage { text, instance_id, action, error, providers }
}

/// POST /instances/:instance_id/login — checks the token and starts a session. An unknown instance is refused like a
/// token that does not open it, so that the form does not tell which instances exist.
pub async fn login(
    paths::Login { instance_id }: paths::Login,
    State(state): State<DashboardState>,
    address: ClientAddress,
    jar: CookieJar,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    let text = text_for(&headers);
    if let Visitor::OfAnotherInstance = visitor(&state, &jar, &instance_id) {
        return Err(PageError::Forbidden(|text| text.other_instance));
    }
    if let Err(wait) = state.limits.take(&address, Some(&form.token)) {
        tracing::info!(instance_id, client = address.0, "dashboard sign-in throttled");
        return Ok(too_many(wait));
    }
    let providers = state.logins.buttons(text, &instance_id);
    let refused = |said| Ok(render(StatusCode::FORBIDDEN, &login_page(text, &instance_id, Some(said), providers)));
    let unavailable = PageError::anonymous(StatusCode::SERVICE_UNAVAILABLE, |text| text.unavailable);
    let (tenant, credential) = match state.broker.sign_in(&instance_id, &form.token).await {
        Ok(SignIn::Accepted(tenant, credential)) => (tenant, credential),
        Ok(SignIn::Refused(reason @ Refusal::MintedByDashboard)) => {
            tracing::info!(instance_id, ?reason, "dashboard sign-in refused");
            return refused(text.kubeconfig_token_refused);
        }
        Ok(SignIn::Refused(reason)) => {
            tracing::info!(instance_id, ?reason, "dashboard sign-in refused");
            return refused(text.refused);
        }
        Err(Error::NotFound(_)) => return refused(text.refused),
        Err(Error::Unavailable { .. }) => return Err(unavailable),
        Err(error) => {
            tracing::error!(instance_id, %error, "dashboard sign-in failed");
            return Err(unavailable);
        }
    };
    Ok(start_session(&state, jar, tenant, credential).await.into_response())
}

/// 429: too many sign-in attempts; try again after `wait`.
pub(super) fn too_many(wait: std::time::Duration) -> Response {
    let retry_after = [(header::RETRY_AFTER, wait.as_secs().max(1).to_string())];
    (retry_after, PageError::anonymous(StatusCode::TOO_MANY_REQUESTS, |text| text.too_many_sign_ins)).into_response()
}

/// Starts a session for `tenant`, whose requests are then made with `credential`'s token, ending the visitor's
/// previous one; sends them to the overview with the session cookie, which lasts as long as the session. Every way of
/// signing in ends here.
pub(super) async fn start_session(
    state: &DashboardState,
    jar: CookieJar,
    tenant: crate::lifecycle::Tenant,
    credential: Credential,
) -> Result<(CookieJar, Response), PageError> {
    let failed = || PageError::anonymous(StatusCode::INTERNAL_SERVER_ERROR, |text| text.unavailable);
    let client = match kube::Client::try_from(crate::k8s::as_user(&state.user_base, &credential.token)) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "cannot build a client for a signed-in user");
            return Err(failed());
        }
    };
    if let Some(previous) = session_id(&jar) {
        state.sessions.end(&previous);
    }
    let instance_id = tenant.instance_id.clone();
    tracing::info!(instance_id, user = %tenant.username, "signed in to the dashboard");
    let abilities = Abilities::of(&client, &tenant.namespace).await;
    let (id, lifetime) = match state.sessions.start(tenant, client, credential, abilities) {
        Ok(started) => started,
        Err(StartError::Full) => {
            tracing::warn!(instance_id, "dashboard sign-in refused: dashboard.max_sessions are held");
            return Err(PageError::anonymous(StatusCode::SERVICE_UNAVAILABLE, |text| text.sessions_full));
        }
        Err(StartError::Expired) => return Err(PageError::anonymous(StatusCode::FORBIDDEN, |text| text.refused)),
        Err(error @ StartError::Random(_)) => {
            tracing::error!(%error, "no session started");
            return Err(failed());
        }
    };
    let cookie = session_cookie(id, lifetime.as_secs(), state.secure_cookie);
    Ok((jar.add(cookie), see_other(&paths::Overview { instance_id }.to_string())))
}

/// The session cookie: the random id only, out of scripts' reach, not sent along cross-site sub-requests or posts;
/// it lasts `max_age_seconds` (0: it is removed).
fn session_cookie(id: String, max_age_seconds: u64, secure: bool) -> Cookie<'static> {
    let max_age = i64::try_from(max_age_seconds).unwrap_or(i64::MAX);
    Cookie::build((COOKIE, id))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(cookie::time::Duration::seconds(max_age))
        .secure(secure)
        .build()
}

/// POST /logout — ends the session and forgets its token; back to the instance's sign-in page.
pub async fn logout(State(state): State<DashboardState>, jar: CookieJar, headers: HeaderMap) -> Response {
    let text = text_for(&headers);
    let Some(id) = session_id(&jar) else {
        return PageError::anonymous(StatusCode::UNAUTHORIZED, |text| text.not_found).into_response();
    };
    let instance = state.sessions.find(&id).map(|session| session.tenant.instance_id);
    state.sessions.end(&id);
    let answer = match instance {
        Some(instance_id) => see_other(&paths::Login { instance_id }.to_string()),
        None => message(StatusCode::OK, text, text.not_found, false),
    };
    (jar.add(session_cookie(String::new(), 0, state.secure_cookie)), answer).into_response()
}

/// GET /dashboard.css — the only style sheet (no inline style: the policy allows none).
pub async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        include_str!("dashboard.css"),
    )
        .into_response()
}

/// GET /favicon.ico — there is no icon; browsers ask anyway, and a 404 would be an error in every page's console.
pub async fn no_icon() -> Response {
    (StatusCode::NO_CONTENT, [(header::CACHE_CONTROL, "public, max-age=86400")]).into_response()
}

/// Any other path.
pub async fn not_found() -> PageError {
    PageError::anonymous(StatusCode::NOT_FOUND, |text| text.not_found)
}

#[cfg(test)]
mod tests {
    use super::super::i18n;
    use super::*;
    use crate::lifecycle::usage::UsageSample;
    use crate::tenant::alerts::{Alert, AlertKind, Severity};
    use crate::tenant::overview::{InUseNow, Measured as Use, Owner, PodUsage, QuotaUse, Usage, WorkloadUsage};

    const NO_MEASURES: Measured<'static> = Measured { history: &[], month: None };

    fn session() -> Session {
        super::super::user_sessions::test_session("inst-1")
    }

    fn overview() -> Overview {
        Overview {
            quota: vec![
                QuotaUse {
                    resource: "pods".into(),
                    used: "9".into(),
                    hard: "10".into(),
                    percent: 90,
                    in_use: InUseNow::NotMeasured,
                },
                QuotaUse {
                    resource: "requests.cpu".into(),
                    used: "500m".into(),
                    hard: "2".into(),
                    percent: 25,
                    in_use: InUseNow::Unavailable,
                },
            ],
            defaults: vec![ContainerDefault {
                resource: "cpu".into(),
                request: Some("100m".into()),
                ..Default::default()
            }],
            pods_by_phase: [("Running".to_owned(), 2)].into(),
            deployments: 1,
            stateful_sets: 0,
            metrics: Metrics::Unavailable,
            alerts: vec![Alert {
                kind: AlertKind::CrashLoop,
                severity: Severity::Critical,
                object: "Pod/web-1 (web)".into(),
                detail: "back-off <script>alert(1)</script>".into(),
            }],
        }
    }

    #[tokio::test]
    async fn the_overview_shows_quota_bars_defaults_pods_and_escaped_alerts_in_the_browsers_language() {
        let session = session();
        let overview = overview();
        let plans = vec![PlanApp {
            instance_id: "app-1".to_owned(),
            service_name: "container-app".to_owned(),
            plan_name: "medium".to_owned(),
            state: crate::lifecycle::model::LastOperation::new(
                crate::lifecycle::model::OperationState::InProgress,
                "waiting for a node",
            ),
            idle_stopped_after: None,
        }];
        let html = overview_page(&i18n::EN, &session, &overview, &plans, NO_MEASURES).render().expect("renders");
        assert!(html.contains(r#"<html lang="en">"#));
        assert!(html.contains("container-app / medium") && html.contains("waiting for a node"), "{html}");
        assert!(html.contains(r#"href="/instances/inst-1/apps""#), "{html}");
        assert!(html.contains(r#"id="metrics-unavailable""#), "metrics unavailable, not zero: {html}");
        assert!(
            html.contains(r#"<meter id="quota-pods" min="0" max="100" low="80" high="99" optimum="0" value="90">"#),
            "{html}"
        );
        assert!(html.contains("9 / 10"));
        assert!(html.contains("100m"));
        assert!(html.contains("Running") && html.contains("small"));
        assert!(html.contains("Pod/web-1 (web)") && html.contains(i18n::EN.advice(AlertKind::CrashLoop)));
        assert!(!html.contains("<script>"), "no inline script, and the cluster's words are escaped: {html}");
        assert!(
            html.contains(r#"hx-get="/instances/inst-1/alerts" hx-trigger="sse:pods, sse:events, sse:deployments""#)
        );
        assert!(html.contains("&lt;script&gt;") || html.contains("&#60;script&#62;"), "{html}");
        assert!(!html.contains("style="), "no inline style: the policy forbids it");
        assert!(html.contains(r#"<form method="post" action="/instances/inst-1/kubeconfig""#), "{html}");
        assert!(html.contains(r#"export KUBECONFIG="$PWD/caas-inst-1.kubeconfig""#), "copyable commands: {html}");
        assert!(html.contains(r#"$env:KUBECONFIG = "$PWD\caas-inst-1.kubeconfig""#), "and for PowerShell: {html}");
        assert!(
            html.contains(r#"<td class="in-use" id="in-use-requests.cpu"><span class="muted">unavailable"#),
            "{html}"
        );
        assert!(html.contains(r#"id="month-unavailable""#), "{html}");
        let korean = overview_page(&i18n::KO, &session, &overview, &plans, NO_MEASURES).render().expect("renders");
        assert!(korean.contains(r#"<html lang="ko">"#) && korean.contains("쿼터") && korean.contains("경고"));
    }

    #[tokio::test]
    async fn measured_use_shows_per_workload_and_pod_with_sparklines_quota_in_use_and_the_month() {
        let session = session();
        let mut overview = overview();
        overview.quota[1].in_use = InUseNow::Cpu { millicores: 1020, percent: 51 };
        let burn = Use { used: 1020, request: Some(100), limit: None };
        let memory = Use { used: 245 * 1024 * 1024, request: None, limit: Some(512 * 1024 * 1024) };
        let owner = Owner { kind: "Deployment", name: "burn".into() };
        overview.metrics = Metrics::Available(Usage {
            pods: vec![
                PodUsage { pod: "burn-1".into(), owner: Some(owner.clone()), cpu: burn, memory },
                PodUsage { pod: "burn-2".into(), owner: Some(owner.clone()), cpu: burn, memory },
            ],
            workloads: vec![WorkloadUsage {
                owner,
                pods: 2,
                cpu: Use { used: 2040, request: Some(200), limit: None },
                memory: Use { used: 490 * 1024 * 1024, request: None, limit: Some(1024 * 1024 * 1024) },
            }],
            cpu_millicores: 2040,
            memory_bytes: 490 * 1024 * 1024,
        });
        let at = |second| jiff::Timestamp::from_second(second).expect("time");
        let samples = vec![
            UsageSample { at: at(0), cpu_millicores: 990, memory_bytes: 200 << 20 },
            UsageSample { at: at(30), cpu_millicores: 1020, memory_bytes: 245 << 20 },
        ];
        let history = vec![PodHistory { pod: "burn-1".into(), samples }];
        let month = UsageTotals { cpu_core_seconds: 5400.0, ..UsageTotals::default() };
        let measured = Measured { history: &history, month: Some(&month) };
        let html = overview_page(&i18n::EN, &session, &overview, &[], measured).render().expect("renders");
        assert!(!html.contains(r#"id="metrics-unavailable""#), "{html}");
        assert!(
            html.contains(
                r#"<section class="card" id="metrics" hx-get="/instances/inst-1/usage" hx-trigger="every 30s""#
            ),
            "the card is kept current: {html}"
        );
        let workload = html.split(r#"<tr data-workload="Deployment/burn">"#).nth(1).expect("the workload's row");
        assert!(workload.contains(r#"<td class="num pods">2</td>"#), "{workload}");
        assert!(workload.contains(r#"<span class="used">2.04 cores</span>"#), "{workload}");
        assert!(workload.contains("request 0.20 cores · 1020 %") && workload.contains("no limit"), "{workload}");
        assert!(workload.contains("limit 1.00 GiB · 47 %") && workload.contains("no request"), "{workload}");
        let pod = html.split(r#"<tr data-pod="burn-1">"#).nth(1).expect("the pod's row");
        let pod = pod.split("</tr>").next().expect("row");
        assert!(pod.contains(r#"<span class="used">1.02 cores</span>"#), "{pod}");
        assert!(
            pod.contains(
                "<title>CPU, last hour: now 1.02 cores, highest 1.02 cores, lowest 0.99 cores (samples: 2)</title>"
            ),
            "{pod}"
        );
        assert!(pod.contains("<title>Memory, last hour: now 245 MiB"), "{pod}");
        let other = html.split(r#"<tr data-pod="burn-2">"#).nth(1).expect("the other pod's row");
        let other = other.split("</tr>").next().expect("row");
        assert!(other.contains(i18n::EN.history_collecting) && !other.contains("<svg"), "{other}");
        assert!(
            html.contains(r#"<td class="in-use" id="in-use-requests.cpu"><span class="now">1.02 cores</span>"#),
            "{html}"
        );
        assert!(html.contains(r#"<tr id="month-cpu"><td>CPU</td><td class="num used">1.5 core-hours</td>"#), "{html}");
        assert!(!html.contains("style="), "no inline style: {html}");
        let korean = overview_page(&i18n::KO, &session, &overview, &[], measured).render().expect("renders");
        assert!(korean.contains("1.02 코어") && korean.contains(i18n::KO.month_usage), "{korean}");
    }

    #[test]
    fn the_sign_in_page_posts_to_its_instance_and_says_why_a_token_was_refused() {
        let html = login_page(&i18n::EN, "a b", Some(i18n::EN.refused), Vec::new()).render().expect("renders");
        assert!(!html.contains("providers"), "no provider, only the token form: {html}");
        let buttons = vec![("/instances/a%20b/login/oidc".to_owned(), i18n::EN.sign_in_oidc)];
        let with_provider = login_page(&i18n::EN, "a b", None, buttons).render().expect("renders");
        assert!(with_provider.contains(r#"<a class="button" href="/instances/a%20b/login/oidc">"#), "{with_provider}");
        assert!(with_provider.contains(r#"type="password""#), "the token form stays");
        assert!(html.contains(r#"action="/instances/a%20b/login""#), "{html}");
        assert!(html.contains(r#"type="password""#) && html.contains(i18n::EN.refused));
        assert!(!html.contains("<script"));
    }

    #[test]
    fn the_cookie_is_http_only_same_site_expiring_and_secure_over_https() {
        assert_eq!(
            session_cookie("abc".into(), 60, false).to_string(),
            "caas_dashboard_session=abc; HttpOnly; SameSite=Lax; Path=/; Max-Age=60"
        );
        assert!(session_cookie("abc".into(), 60, true).to_string().contains("; Secure"));
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("other=1; caas_dashboard_session=abc"));
        assert_eq!(session_id(&CookieJar::from_headers(&headers)).as_deref(), Some("abc"));
    }
}
