//! A streaming session's own page: where it stands (in the platform's words), its plan and resolution, the SteamCMD
//! install's last log lines (followed live through the logs stream), stop / start / restart, the VNC password on
//! demand, and an **Open** button to its noVNC page.
//!
//! Who may do what is Kubernetes' answer for the signed-in identity: the controls show when a SelfSubjectAccessReview
//! says so, and the server refuses what the identity may not do (actions go through [`crate::lifecycle::Broker::act`],
//! the password is read with the user's own client — whoever may `get secrets` in the namespace, as kubectl would let
//! them). The password never travels in a URL the dashboard or noVNC could log: it is revealed in the answer to a
//! POST, and Open is a POST answered with a redirect to the session's noVNC page — behind its Ingress, or else
//! through the dashboard's proxy ([`super::novnc`]) — whose *fragment* carries it (a browser sends no fragment to any
//! server; noVNC reads its settings from there).
//!
//! A Selkies session's stream is embedded in the page instead (with full screen, sound, gamepad and statistics, driven
//! by `static/session-stream-1.js`): a frame of the dashboard's proxy ([`super::selkies`], which presents the password
//! itself, so it never reaches the browser), or of the session's Ingress with the password in the fragment for whoever
//! may read it. A session the broker stopped for want of a viewer says so, and its Open starts it again; the page then
//! follows its progress and shows the stream once its first frame arrives.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use serde::Deserialize;

use super::DashboardState;
use super::apps::Notice;
use super::assets::{HTMX_PATH, HTMX_SSE_PATH, SESSION_STREAM_PATH};
use super::i18n::Translation;
use super::logs::{cut, log_params};
use super::page_error::PageError;
use super::paths::{self, with_query};
use super::reply::{render, see_other};
use super::respond::{PageVisit, PartVisit, Visit, refusal};
use super::user_sessions::Session;
use crate::k8s::access::{self, Permission};
use crate::lifecycle::Error;
use crate::lifecycle::model::OperationState;
use crate::tenant;
use crate::tenant::apps::{Action, Controller};
use crate::tenant::streaming::{INSTALL_CONTAINER, SessionView};

/// Changing a session (stop, start, restart) patches its StatefulSet.
const CHANGE: Permission<'static> = Permission { verb: "patch", group: "apps", resource: "statefulsets" };
/// Reading its password reads its Secret.
const READ_PASSWORD: Permission<'static> = Permission { verb: "get", group: "", resource: "secrets" };
/// Opening a session without an Ingress goes through the apiserver's proxy of its Service (see [`super::novnc`]).
const PROXY: Permission<'static> = Permission { verb: "get", group: "", resource: "services/proxy" };

/// The session page.
#[derive(Template)]
#[template(path = "session.html", config = "src/dashboard/askama.toml")]
struct SessionPage<'a> {
    text: &'static Translation,
    session: &'a Session,
    card: SessionCard,
    password: Option<String>,
    notice: Option<Notice>,
    live: String,
    lines: Vec<String>,
    log_page: String,
    log_stream: Option<String>,
    htmx_path: &'static str,
    htmx_sse_path: &'static str,
    stream: Option<StreamFrame>,
    stream_script: &'static str,
}

/// A Selkies stream the page embeds.
struct StreamFrame {
    /// The page its frame loads.
    url: String,
    /// The overlay's labels, as JSON for the script.
    labels: String,
}

/// The part of the page that follows the session's state: re-read (as the user) whenever the live stream says its
/// pods or StatefulSets changed, and swapped *inside* a container that stays (an element replaced whole would drop
/// the re-read htmx queued on it meanwhile, and with it the last change).
#[derive(Template)]
#[template(path = "session_card.html", config = "src/dashboard/askama.toml")]
struct SessionCard {
    text: &'static Translation,
    view: SessionView,
    state: &'static str,
    change: bool,
    reveal: bool,
    open: bool,
    action: String,
    /// Whether the stream can be shown now: a Selkies session that runs and is ready.
    ready: bool,
}

/// `?done=` after an action, naming it.
#[derive(Deserialize)]
pub struct Done {
    #[serde(default)]
    done: Option<String>,
}

/// An action's form.
#[derive(Deserialize)]
pub struct ActionForm {
    action: String,
}

impl ActionForm {
    /// The one of stop, start and restart it asks for; anything else is a bad request.
    fn action(&self) -> Result<Action, Error> {
        match self.action.as_str() {
            "stop" => Ok(Action::Stop),
            "start" => Ok(Action::Start),
            "restart" => Ok(Action::Restart),
            other => Err(Error::BadRequest(format!("a session has no action {other:?}"))),
        }
    }
}

/// GET /instances/:instance_id/sessions/:session_id
pub async fn page(
    paths::StreamingSession { session_id, .. }: paths::StreamingSession,
    State(state): State<DashboardState>,
    Query(done): Query<Done>,
    visit: PageVisit,
) -> Result<Response, PageError> {
    let Visit { session, text, .. } = visit;
    let notice = done.done.map(Notice::Done);
    show(&state, text, &session, &session_id, StatusCode::OK, notice, None).await
}

/// The page with `status`, `notice` and maybe the revealed `password`, read as the signed-in user.
async fn show(
    state: &DashboardState,
    text: &'static Translation,
    session: &Session,
    session_id: &str,
    status: StatusCode,
    notice: Option<Notice>,
    password: Option<String>,
) -> Result<Response, PageError> {
    let card = card(state, text, session, session_id).await?;
    let view = &card.view;
    let lines = if view.installs { install_log(session, view).await } else { Vec::new() };
    let (instance_id, pod) = (&session.tenant.instance_id, &view.pod);
    let log_page = paths::PodLogs { instance_id: instance_id.clone(), pod: pod.clone() };
    let log_stream = paths::PodLogStream { instance_id: instance_id.clone(), pod: pod.clone() };
    let install = [("container", INSTALL_CONTAINER)];
    let stream = stream_frame(state, text, session, session_id, &card).await;
    let policy = stream.as_ref().and_then(|stream| frame_policy(&stream.url));
    let page = SessionPage {
        text,
        session,
        password,
        notice,
        live: paths::Live { instance_id: instance_id.clone() }.to_string(),
        lines,
        log_page: with_query(log_page, &install),
        log_stream: (view.installs && !view.stopped).then(|| with_query(log_stream, &install)),
        card,
        htmx_path: HTMX_PATH,
        htmx_sse_path: HTMX_SSE_PATH,
        stream,
        stream_script: SESSION_STREAM_PATH,
    };
    let mut response = render(status, &page);
    if let Some(policy) = policy {
        response.headers_mut().insert(axum::http::header::CONTENT_SECURITY_POLICY, policy);
    }
    Ok(response)
}

/// The Selkies stream the page embeds, when the session streams with Selkies, is not stopped and the user may see it:
/// through the dashboard's proxy when they may use it and read the password (which the dashboard presents for them),
/// or from the session's Ingress with the password, read as them.
async fn stream_frame(
    state: &DashboardState,
    text: &'static Translation,
    session: &Session,
    session_id: &str,
    card: &SessionCard,
) -> Option<StreamFrame> {
    let view = &card.view;
    if !view.selkies || view.stopped || !card.open {
        return None;
    }
    let password = match view.ingress_host {
        Some(_) => tenant::streaming::password(&state.broker, &session.client, &session.tenant, session_id).await.ok(),
        None => None,
    };
    let proxied = paths::Stream { instance_id: session.tenant.instance_id.clone(), session_id: session_id.to_owned() };
    let url = view.selkies_url(password.as_deref(), &proxied.to_string())?;
    let (latency, fps, bitrate) = text.stream_stats;
    Some(StreamFrame { url, labels: serde_json::json!([latency, fps, bitrate]).to_string() })
}

/// The page's policy when it frames `url` from another origin (the session's Ingress): the dashboard's, with that
/// host allowed in frames; `None` for a frame of the dashboard's own origin, which its policy allows, and for a host
/// that is not a plain host name (nothing else may reach the policy).
fn frame_policy(url: &str) -> Option<axum::http::HeaderValue> {
    let host = url.strip_prefix("https://")?.split(['/', '#', '?']).next()?;
    if host.is_empty() || !host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':')) {
        return None;
    }
    let policy = format!("{}; frame-src 'self' https://{host}", super::guard::CONTENT_SECURITY_POLICY);
    axum::http::HeaderValue::from_str(&policy).ok()
}

/// The session's state and the controls the user may use, asked of the broker and of Kubernetes as the user.
async fn card(
    state: &DashboardState,
    text: &'static Translation,
    session: &Session,
    session_id: &str,
) -> Result<SessionCard, PageError> {
    let namespace = &session.tenant.namespace;
    let (view, change, reveal, proxy) = tokio::join!(
        tenant::streaming::view(&state.broker, &session.tenant, session_id),
        access::allowed(&session.client, namespace, CHANGE),
        access::allowed(&session.client, namespace, READ_PASSWORD),
        access::allowed(&session.client, namespace, PROXY),
    );
    let view = view.map_err(|error| refused_page(&error))?;
    let (change, reveal, proxy) = match (change, reveal, proxy) {
        (Ok(change), Ok(reveal), Ok(proxy)) => (change, reveal, proxy),
        (Err(error), _, _) | (_, Err(error), _) | (_, _, Err(error)) => return Err(refused_page(&Error::from(error))),
    };
    Ok(SessionCard {
        text,
        state: match view.state.state {
            OperationState::Succeeded if view.stopped => text.app_stopped,
            OperationState::Succeeded => text.app_ready,
            OperationState::InProgress => text.app_starting,
            OperationState::Failed => text.app_failed,
        },
        change,
        reveal,
        open: reveal && (view.ingress_host.is_some() || proxy),
        action: session_path(&session.tenant.instance_id, session_id).to_string(),
        ready: view.selkies && !view.stopped && view.state.state == OperationState::Succeeded,
        view,
    })
}

/// The session page's path.
fn session_path(instance_id: &str, session_id: &str) -> paths::StreamingSession {
    paths::StreamingSession { instance_id: instance_id.to_owned(), session_id: session_id.to_owned() }
}

/// GET /instances/:instance_id/sessions/:session_id/card — the session's state and controls alone, for the page's
/// live part.
pub async fn card_fragment(
    paths::SessionCard { session_id, .. }: paths::SessionCard,
    State(state): State<DashboardState>,
    visit: PartVisit,
) -> Result<Response, PageError> {
    let Visit { session, text, .. } = visit;
    Ok(render(StatusCode::OK, &card(&state, text, &session, &session_id).await?))
}

/// The page's answer to a session it cannot show: not found alike for no session and another cluster's.
fn refused_page(error: &Error) -> PageError {
    match error {
        Error::NotFound(_) | Error::Gone(_) => PageError::NotFound(|text| text.not_found),
        Error::Unavailable { .. } => PageError::Unavailable,
        _ => {
            tracing::warn!(%error, "a session page could not be read as the signed-in user");
            PageError::Forbidden(|text| text.apps_unreadable)
        }
    }
}

/// The install step's last lines, read as the user; none when the pod or its log is not there (yet, or any more).
async fn install_log(session: &Session, view: &SessionView) -> Vec<String> {
    let pods = Api::<Pod>::namespaced(session.client.clone(), &session.tenant.namespace);
    match pods.logs(&view.pod, &log_params(INSTALL_CONTAINER, false)).await {
        Ok(log) => log.lines().map(cut).collect(),
        Err(error) => {
            tracing::debug!(pod = view.pod, %error, "no install log for a session");
            Vec::new()
        }
    }
}

/// POST /instances/:instance_id/sessions/:session_id — stop, start or restart, through the broker as the apps page
/// does (the workload plan's update, after Kubernetes says the user may patch StatefulSets).
pub async fn act(
    paths::StreamingSession { instance_id, session_id }: paths::StreamingSession,
    State(state): State<DashboardState>,
    visit: PageVisit,
    Form(form): Form<ActionForm>,
) -> Result<Response, PageError> {
    let Visit { session, text, .. } = visit;
    let outcome = async {
        let action = form.action()?;
        let view = tenant::streaming::view(&state.broker, &session.tenant, &session_id).await?;
        tenant::apps::act(&state.broker, &session.client, &session.tenant, Controller::StatefulSet, &view.name, action)
            .await
    }
    .await;
    let user = &session.tenant.username;
    match outcome {
        Ok(_) => {
            tracing::info!(instance_id, user, session_id, action = form.action, "dashboard session action");
            Ok(see_other(&with_query(session_path(&instance_id, &session_id), &[("done", &form.action)])))
        }
        Err(error @ Error::NotFound(_)) => Err(refused_page(&error)),
        Err(error) => {
            let (status, said) = refusal(text, &error);
            tracing::info!(instance_id, user, session_id, action = form.action, %error, "dashboard session action refused");
            show(&state, text, &session, &session_id, status, Some(Notice::Refused(said)), None).await
        }
    }
}

/// POST /instances/:instance_id/sessions/:session_id/password — the page with the password shown, if Kubernetes lets
/// the user read the session's Secret (the answer is not cached; the password is never logged).
pub async fn reveal(
    paths::SessionPassword { instance_id, session_id }: paths::SessionPassword,
    State(state): State<DashboardState>,
    visit: PageVisit,
) -> Result<Response, PageError> {
    let Visit { session, text, .. } = visit;
    match tenant::streaming::password(&state.broker, &session.client, &session.tenant, &session_id).await {
        Ok(password) => {
            tracing::info!(instance_id, user = session.tenant.username, session_id, "session password revealed");
            show(&state, text, &session, &session_id, StatusCode::OK, None, Some(password)).await
        }
        Err(error @ Error::NotFound(_)) => Err(refused_page(&error)),
        Err(error) => {
            let (status, said) = refusal(text, &error);
            show(&state, text, &session, &session_id, status, Some(Notice::Refused(said)), None).await
        }
    }
}

/// POST /instances/:instance_id/sessions/:session_id/open — a redirect to the session's noVNC page (behind its
/// Ingress, or the dashboard's proxy), the password in the URL's fragment (see the module); refused as the password is.
/// A Selkies session is shown on its own page: Open goes there, after starting the session when it is stopped
/// (refused as stop and start are).
pub async fn open(
    paths::SessionOpen { instance_id, session_id }: paths::SessionOpen,
    State(state): State<DashboardState>,
    visit: PageVisit,
) -> Result<Response, PageError> {
    let Visit { session, text, .. } = visit;
    let opened = async {
        let view = tenant::streaming::view(&state.broker, &session.tenant, &session_id).await?;
        if view.selkies {
            // The stream is on the session's page: a stopped session is started first (its volume was kept).
            let page = session_path(&instance_id, &session_id);
            if !view.stopped {
                return Ok(format!("{page}#stream"));
            }
            let (broker, client, tenant) = (&state.broker, &session.client, &session.tenant);
            tenant::apps::act(broker, client, tenant, Controller::StatefulSet, &view.name, Action::Start).await?;
            return Ok(format!("{}#stream", with_query(page, &[("done", "start")])));
        }
        let password =
            tenant::streaming::password(&state.broker, &session.client, &session.tenant, &session_id).await?;
        let proxied = paths::Novnc { instance_id: instance_id.clone(), session_id: session_id.clone() };
        Ok::<_, Error>(view.novnc_url(&password, &proxied.to_string()))
    }
    .await;
    match opened {
        Ok(url) => {
            tracing::info!(instance_id, user = session.tenant.username, session_id, "session opened");
            Ok(see_other(&url))
        }
        Err(error @ Error::NotFound(_)) => Err(refused_page(&error)),
        Err(error) => {
            let (status, said) = refusal(text, &error);
            show(&state, text, &session, &session_id, status, Some(Notice::Refused(said)), None).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::i18n;
    use super::*;
    use crate::lifecycle::model::LastOperation;

    fn view(stopped: bool) -> SessionView {
        SessionView {
            instance_id: "ss-1".to_owned(),
            service_name: "streaming-session".to_owned(),
            plan_name: "cpu-720p".to_owned(),
            state: LastOperation::new(
                OperationState::InProgress,
                "installing the application (SteamCMD); 0 of 1 pods ready",
            ),
            stopped,
            idle_stopped_after: None,
            resolution: "1600x900".to_owned(),
            name: "session-ss-1".to_owned(),
            pod: "session-ss-1-0".to_owned(),
            installs: true,
            ingress_host: None,
            selkies: false,
        }
    }

    fn page_with(session: &Session, view: SessionView, may: bool, password: Option<&str>, stream: bool) -> String {
        SessionPage {
            text: &i18n::EN,
            session,
            card: SessionCard {
                text: &i18n::EN,
                state: i18n::EN.app_starting,
                change: may,
                reveal: may,
                open: may,
                action: session_path("inst-1", &view.instance_id).to_string(),
                ready: view.selkies && !view.stopped,
                view,
            },
            password: password.map(str::to_owned),
            notice: None,
            live: "/instances/inst-1/live".to_owned(),
            lines: vec!["Update state (0x61) downloading, progress: 42.00 <b>".to_owned()],
            log_page: "/instances/inst-1/pods/session-ss-1-0/logs?container=steamcmd".to_owned(),
            log_stream: Some("/instances/inst-1/pods/session-ss-1-0/logs/stream?container=steamcmd".to_owned()),
            htmx_path: HTMX_PATH,
            htmx_sse_path: HTMX_SSE_PATH,
            stream: stream.then(|| StreamFrame {
                url: "/instances/inst-1/stream/index.html".to_owned(),
                labels: r#"["latency","frames/s","Mbit/s"]"#.to_owned(),
            }),
            stream_script: SESSION_STREAM_PATH,
        }
        .render()
        .expect("renders")
    }

    fn page(session: &Session, view: SessionView, may: bool, password: Option<&str>) -> String {
        let stream = view.selkies && !view.stopped && may;
        page_with(session, view, may, password, stream)
    }

    #[tokio::test]
    async fn a_selkies_session_shows_its_stream_on_the_page_and_an_idle_one_says_why_it_stopped() {
        let session = super::super::user_sessions::test_session("inst-1");
        let selkies =
            |stopped: bool, idle: Option<u32>| SessionView { selkies: true, idle_stopped_after: idle, ..view(stopped) };
        let html = page(&session, selkies(false, None), true, None);
        for shown in [
            r#"<iframe id="stream""#,
            r#"data-src="/instances/inst-1/stream/index.html""#,
            r#"allow="fullscreen; autoplay; gamepad"#,
            r#"id="stream-fullscreen""#,
            r#"id="stream-sound""#,
            r#"id="stream-gamepad" hidden"#,
            r#"id="stream-stats""#,
            r#"id="stream-waiting""#,
            r#"<script src="/static/session-stream-1.js" defer></script>"#,
            "<span hidden data-ready></span>",
        ] {
            assert!(html.contains(shown), "{shown}: {html}");
        }
        assert!(!html.contains(r#"id="open""#), "a running stream is on the page already: {html}");
        assert!(!html.contains(" src=\"/instances/inst-1/stream"), "loaded by the script once ready: {html}");
        assert!(!html.contains("<script>") && !html.contains("style="), "the CSP forbids inline: {html}");

        let html = page(&session, selkies(true, Some(30)), true, None);
        assert!(html.contains("Stopped after 30 minutes without a viewer."), "{html}");
        assert!(
            html.contains(r#"<form method="post" action="/instances/inst-1/sessions/ss-1/open"><button"#),
            "{html}"
        );
        assert!(!html.contains("<iframe") && !html.contains("data-ready"), "{html}");
        let html = page(&session, selkies(true, Some(30)), false, None);
        assert!(!html.contains(r#"id="open""#) && !html.contains("Open starts it"), "no waking without patch: {html}");
        let html = page(&session, selkies(true, None), true, None);
        assert!(!html.contains("without a viewer"), "stopped by its user: {html}");
        let html = page(&session, view(false), true, None);
        assert!(!html.contains("<iframe") && !html.contains("session-stream"), "noVNC stays in its tab: {html}");
    }

    #[test]
    fn only_an_ingress_frame_widens_the_pages_policy_to_its_own_origin() {
        let policy = frame_policy("https://play.example.com/#token=x").expect("a policy");
        let policy = policy.to_str().expect("text");
        assert!(policy.ends_with("frame-src 'self' https://play.example.com"), "{policy}");
        assert!(policy.contains("script-src 'self';") && policy.contains("frame-ancestors 'none'"), "{policy}");
        assert_eq!(frame_policy("/instances/i/sessions/s/stream/index.html"), None);
        assert_eq!(frame_policy("https://a.example; script-src *"), None, "a host name only");
    }

    #[tokio::test]
    async fn controls_and_the_password_show_only_when_allowed_and_asked_for() {
        let session = super::super::user_sessions::test_session("inst-1");
        let html = page(&session, view(false), true, None);
        for shown in [r#"value="stop""#, r#"value="restart""#, r#"id="reveal""#, r#"id="open""#, "installing the"] {
            assert!(html.contains(shown), "{shown}: {html}");
        }
        assert!(html.contains(r#"action="/instances/inst-1/sessions/ss-1/open" target="_blank""#), "{html}");
        assert!(html.contains("progress: 42.00 &#60;b&#62;") || html.contains("progress: 42.00 &lt;b&gt;"), "{html}");
        assert!(html.contains(r#"sse-connect="/instances/inst-1/pods/session-ss-1-0/logs/stream"#), "{html}");
        assert!(html.contains(r#"hx-get="/instances/inst-1/sessions/ss-1/card""#), "follows the state: {html}");
        assert!(!html.contains(r#"id="password""#), "not before it is asked for: {html}");
        assert!(!html.contains("<script>") && !html.contains("style="), "the CSP forbids inline: {html}");

        let html = page(&session, view(false), true, Some("s3cr<t"));
        assert!(html.contains(r#"<code id="password">s3cr&#60;t</code>"#) || html.contains("s3cr&lt;t"), "{html}");

        let html = page(&session, view(true), false, None);
        for hidden in [r#"name="action""#, r#"id="reveal""#, r#"id="open""#] {
            assert!(!html.contains(hidden), "{hidden}: {html}");
        }
    }

    #[test]
    fn a_session_has_three_actions_only() {
        let form = |action: &str| ActionForm { action: action.to_owned() };
        assert_eq!(form("stop").action().expect("stop"), Action::Stop);
        assert_eq!(form("start").action().expect("start"), Action::Start);
        assert_eq!(form("restart").action().expect("restart"), Action::Restart);
        for refused in ["scale", "delete", ""] {
            assert!(matches!(form(refused).action(), Err(Error::BadRequest(_))), "{refused}");
        }
    }
}
