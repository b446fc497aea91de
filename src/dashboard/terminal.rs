//! A terminal into a container: a page (xterm.js, vendored, driven by the dashboard's own `terminal-1.js`) and its
//! WebSocket, which carries the user's keys and the terminal's size to a shell opened as them
//! ([`crate::tenant::terminal`]) and the shell's output back. Only for a user Kubernetes lets `create pods/exec`
//! (asked before anything is opened: 403 otherwise, as for an upgrade from another origin, which
//! [`super::guard::same_origin_writes`] refuses, or without a sign-in); one of the user's open streams
//! ([`super::open_streams`], 429 beyond), re-checked as them, so an unbind or a member's removal closes it; closed after
//! [`Limits::idle`] without input and after [`Limits::longest`] in any case; messages of at most
//! [`MAX_MESSAGE_BYTES`]. The browser is told why it closed (a close code of [`Closed`]). The session log is kept by the
//! page itself (what the browser received, the last MiB) and downloaded from it: nothing of the session is kept here.
//!
//! For images without a shell, the page offers a debug container (to a user Kubernetes lets `patch
//! pods/ephemeralcontainers`): [`debug`] adds one beside the chosen container, waits until it runs and opens the
//! terminal into it.

use std::time::Duration;

use askama::Template;
use axum::Form;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::DashboardState;
use super::assets::{TERMINAL_PATH, XTERM_CSS_PATH, XTERM_FIT_PATH, XTERM_PATH};
use super::i18n::Translation;
use super::open_streams::{self, Needs};
use super::page_error::PageError;
use super::paths::{self, with_query};
use super::reply::{render, see_other};
use super::respond::{PageVisit, PartVisit, Visit, refusal};
use super::user_sessions::Session;
use crate::lifecycle::Error;
use crate::tenant::apps::user_error;
use crate::tenant::terminal::{self, Running, Shell, Size};

/// The largest message the browser may send (a paste of this much at once is cut off: the socket closes).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// The most output read from the shell at once, one WebSocket message.
const OUTPUT_CHUNK_BYTES: usize = 16 * 1024;
/// How often the dashboard pings the browser, so that a proxy between them does not take a quiet terminal for a dead
/// connection before [`Limits::idle`].
const PING: Duration = Duration::from_secs(30);

/// The most a debug container may take to start (its image pulled, if it must be).
const DEBUG_PATIENCE: Duration = Duration::from_secs(90);

/// How long a terminal lasts, and what a debug container runs.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Without input.
    pub idle: Duration,
    /// In any case (a debug container's too).
    pub longest: Duration,
    /// The image of debug containers.
    pub debug_image: String,
}

/// The page's and the socket's query: which container and shell (the first running container and `/bin/sh` by
/// default).
#[derive(Deserialize)]
pub struct TerminalQuery {
    container: Option<String>,
    shell: Option<String>,
}

/// The debug form: the container a debug container goes beside.
#[derive(Deserialize)]
pub struct DebugForm {
    target: String,
}

/// What the page's script sends: keys typed (or pasted), or the terminal's new size.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
enum FromBrowser {
    Input(String),
    Resize { cols: u16, rows: u16 },
}

/// Why the dashboard closed a terminal: the close code the page shows its words for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closed {
    /// No input for [`Limits::idle`].
    Idle = 4001,
    /// Open for [`Limits::longest`].
    Longest = 4002,
    /// The sign-in ended, or the user may no longer exec.
    Revoked = 4003,
    /// The shell ended.
    Exited = 4004,
    /// The shell could not be started (the image has no such shell).
    Failed = 4005,
    /// The browser sent what the page never sends.
    Unexpected = 4006,
}

/// The terminal page.
#[derive(Template)]
#[template(path = "terminal.html", config = "src/dashboard/askama.toml")]
struct TerminalPage<'a> {
    text: &'static Translation,
    session: &'a Session,
    pod: &'a str,
    workloads: String,
    action: String,
    socket: String,
    limits: String,
    containers: Vec<String>,
    container: String,
    debug: Option<String>,
    targets: Vec<String>,
    refused: Option<String>,
    shells: Vec<&'static str>,
    shell: &'static str,
    xterm_path: &'static str,
    xterm_fit_path: &'static str,
    xterm_css_path: &'static str,
    terminal_path: &'static str,
}

/// The running containers of `pod`, and the chosen one of them and the shell; `Ok(None)` when the visitor may not
/// open terminals (403), `NotFound` for a pod they cannot read or a container that does not run.
async fn choice(
    session: &Session,
    pod: &str,
    query: TerminalQuery,
) -> Result<Option<(Running, Option<String>, Shell)>, PageError> {
    let (client, namespace) = (&session.client, session.tenant.namespace.as_str());
    if !terminal::may_open(client, namespace).await.map_err(Error::from)? {
        return Ok(None);
    }
    let no_such = || PageError::NotFound(|text| text.live_no_such_object);
    let Some(running) = terminal::running_containers(client, namespace, pod).await.map_err(Error::from)? else {
        return Err(no_such());
    };
    let containers = running.all();
    let shell = match query.shell.filter(|shell| !shell.is_empty()) {
        Some(path) => Shell::parse(&path).ok_or_else(no_such)?,
        None => Shell::default(),
    };
    let container = match query.container.filter(|container| !container.is_empty()) {
        Some(chosen) if containers.contains(&chosen) => Some(chosen),
        Some(_) => return Err(no_such()),
        None => containers.first().cloned(),
    };
    Ok(Some((running, container, shell)))
}

/// GET /instances/:instance_id/terminal/:pod — the terminal page; 403 for a user who may not exec, 404 alike for a
/// pod that does not exist and one they may not read.
pub async fn page(
    path: paths::Terminal,
    State(state): State<DashboardState>,
    Query(query): Query<TerminalQuery>,
    visit: PageVisit,
) -> Result<Response, PageError> {
    let Visit { session, text, .. } = visit;
    show(&state, &session, text, &path, query, None).await
}

/// The terminal page of `path`, saying `refused` (with its status) when a debug container was refused.
async fn show(
    state: &DashboardState,
    session: &Session,
    text: &'static Translation,
    path: &paths::Terminal,
    query: TerminalQuery,
    refused: Option<(StatusCode, String)>,
) -> Result<Response, PageError> {
    let (pod, instance_id) = (&path.pod, &path.instance_id);
    let (choice, may_debug) =
        tokio::join!(choice(session, pod, query), terminal::may_debug(&session.client, &session.tenant.namespace));
    let Some((running, container, shell)) = choice? else {
        return Err(PageError::Forbidden(|text| text.terminal_not_allowed));
    };
    let container = container.unwrap_or_default();
    let socket = paths::TerminalSocket { instance_id: instance_id.clone(), pod: pod.clone() };
    let debug = paths::TerminalDebug { instance_id: instance_id.clone(), pod: pod.clone() };
    let minutes = |limit: Duration| (limit.as_secs() / 60).to_string();
    let (status, refused) = refused.map_or((StatusCode::OK, None), |(status, said)| (status, Some(said)));
    let page = TerminalPage {
        text,
        session,
        pod,
        workloads: paths::Workloads { instance_id: instance_id.clone() }.to_string(),
        action: path.to_string(),
        socket: with_query(socket, &[("container", &container), ("shell", shell.path())]),
        limits: text
            .terminal_limits
            .replace("{idle}", &minutes(state.terminal.idle))
            .replace("{longest}", &minutes(state.terminal.longest)),
        containers: running.all(),
        container,
        debug: may_debug.map_err(Error::from)?.then(|| debug.to_string()),
        targets: running.containers,
        refused,
        shells: Shell::ALL.map(Shell::path).to_vec(),
        shell: shell.path(),
        xterm_path: XTERM_PATH,
        xterm_fit_path: XTERM_FIT_PATH,
        xterm_css_path: XTERM_CSS_PATH,
        terminal_path: TERMINAL_PATH,
    };
    Ok(render(status, &page))
}

/// POST /instances/:instance_id/terminal/:pod/debug — adds a debug container beside the form's container, as the
/// signed-in user, and opens the terminal into it once it runs. 403 for a user who may not add one; what Kubernetes
/// refused (admission: Pod Security, the tenant guard) is said on the terminal page; 504 when it did not run in time.
pub async fn debug(
    path: paths::TerminalDebug,
    State(state): State<DashboardState>,
    visit: PageVisit,
    Form(form): Form<DebugForm>,
) -> Result<Response, PageError> {
    let Visit { session, text, .. } = visit;
    let (client, namespace) = (&session.client, session.tenant.namespace.as_str());
    let paths::TerminalDebug { instance_id, pod } = path;
    if !terminal::may_debug(client, namespace).await.map_err(Error::from)? {
        return Err(PageError::Forbidden(|text| text.terminal_debug_not_allowed));
    }
    let running = terminal::running_containers(client, namespace, &pod).await.map_err(Error::from)?;
    if !running.is_some_and(|running| running.containers.contains(&form.target)) {
        return Err(PageError::NotFound(|text| text.live_no_such_object));
    }
    let (image, lasting) = (&state.terminal.debug_image, state.terminal.longest);
    let added =
        terminal::add_debug_container(client, namespace, &pod, &form.target, image, lasting, DEBUG_PATIENCE).await;
    let user = &session.tenant.username;
    let terminal = paths::Terminal { instance_id, pod };
    match added {
        Ok(Some(name)) => {
            tracing::info!(user, pod = terminal.pod, target = form.target, name, "a debug container was added");
            Ok(see_other(&with_query(&terminal, &[("container", &name)])))
        }
        Ok(None) => Err(PageError::Message {
            status: StatusCode::GATEWAY_TIMEOUT,
            words: |text| text.terminal_debug_late,
            signed_in: true,
        }),
        Err(error) => {
            let refused = refusal(text, &user_error(error));
            tracing::info!(user, pod = terminal.pod, said = refused.1, "a debug container was refused");
            let query = TerminalQuery { container: None, shell: None };
            show(&state, &session, text, &terminal, query, Some(refused)).await
        }
    }
}

/// GET /instances/:instance_id/terminal/:pod/socket — the terminal's WebSocket. Refused before anything is opened:
/// 403 without a sign-in to this instance or to a user who may not exec (an upgrade from another origin never gets
/// here), 429 over the user's open streams, 404 for what the page would not show, 400 for a request that is no
/// WebSocket upgrade.
pub async fn socket(
    paths::TerminalSocket { instance_id, pod }: paths::TerminalSocket,
    State(state): State<DashboardState>,
    Query(query): Query<TerminalQuery>,
    visit: Result<PartVisit, Response>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, PageError> {
    let Ok(Visit { session_id, session, .. }) = visit else {
        return Err(PageError::Forbidden(|text| text.terminal_not_allowed));
    };
    let Some(slot) = state.streams.open(&session_id, &session.tenant.username) else {
        return Err(open_streams::too_many());
    };
    let Some((_, container, shell)) = choice(&session, &pod, query).await? else {
        return Err(PageError::Forbidden(|text| text.terminal_not_allowed));
    };
    let Some(container) = container else { return Err(PageError::NotFound(|text| text.terminal_no_container)) };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return Ok(rejection.into_response()),
    };
    let needs = Needs {
        verb: terminal::EXEC.verb,
        group: String::new(),
        resource: terminal::EXEC.resource.to_owned(),
        subresource: Some(terminal::EXEC_SUBRESOURCE),
    };
    let limits = state.terminal.clone();
    let revoked = open_streams::revoked(state.clone(), session_id, needs, slot);
    let upgrade = upgrade.max_message_size(MAX_MESSAGE_BYTES).max_frame_size(MAX_MESSAGE_BYTES);
    Ok(upgrade.on_upgrade(move |socket| async move {
        let namespace = &session.tenant.namespace;
        let size = Size::bounded(80, 24);
        let opened = terminal::open(&session.client, namespace, &pod, &container, shell, size).await;
        let closed = match opened {
            Ok(shell) => relay(socket, shell, limits, revoked).await,
            Err(error) => {
                tracing::info!(instance_id, pod, container, %error, "a terminal could not be opened");
                close(socket, Closed::Failed).await
            }
        };
        tracing::info!(instance_id, pod, container, user = session.tenant.username, ?closed, "a terminal closed");
    }))
}

/// Carries the browser's input and size to `shell` and its output back until either side ends, a limit is reached or
/// `revoked` resolves; says why, to the browser too.
async fn relay(
    socket: WebSocket,
    mut shell: terminal::Terminal,
    limits: Limits,
    revoked: impl Future<Output = ()>,
) -> Option<Closed> {
    let (mut to_browser, mut from_browser) = socket.split();
    let mut output = vec![0; OUTPUT_CHUNK_BYTES];
    let idle = tokio::time::sleep(limits.idle);
    let longest = tokio::time::sleep(limits.longest);
    let mut pings = tokio::time::interval_at(tokio::time::Instant::now() + PING, PING);
    tokio::pin!(idle, longest, revoked);
    let closed = loop {
        tokio::select! {
            read = shell.output.read(&mut output) => match read {
                Ok(0) | Err(_) => match shell.ended().await {
                    terminal::Ended::Exited => break Closed::Exited,
                    terminal::Ended::NotStarted(said) => {
                        tracing::info!(said, "a terminal's shell could not be started");
                        break Closed::Failed;
                    }
                },
                Ok(read) => {
                    let bytes = axum::body::Bytes::copy_from_slice(&output[..read]);
                    if to_browser.send(Message::Binary(bytes)).await.is_err() {
                        return None;
                    }
                }
            },
            message = from_browser.next() => match message {
                Some(Ok(Message::Text(message))) => match serde_json::from_str(message.as_str()) {
                    Ok(FromBrowser::Input(keys)) => {
                        idle.as_mut().reset(tokio::time::Instant::now() + limits.idle);
                        if shell.input.write_all(keys.as_bytes()).await.is_err() {
                            break Closed::Exited;
                        }
                    }
                    Ok(FromBrowser::Resize { cols, rows }) => shell.resize(Size::bounded(cols, rows)),
                    Err(_) => break Closed::Unexpected,
                },
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Binary(_))) => break Closed::Unexpected,
                Some(Ok(Message::Close(_)) | Err(_)) | None => return None,
            },
            () = &mut idle => break Closed::Idle,
            () = &mut longest => break Closed::Longest,
            () = &mut revoked => break Closed::Revoked,
            _ = pings.tick() => {
                if to_browser.send(Message::Ping(axum::body::Bytes::new())).await.is_err() {
                    return None;
                }
            }
        }
    };
    let frame = CloseFrame { code: closed as u16, reason: format!("{closed:?}").to_lowercase().into() };
    let _ = to_browser.send(Message::Close(Some(frame))).await;
    Some(closed)
}

/// Closes `socket`, saying why.
async fn close(mut socket: WebSocket, closed: Closed) -> Option<Closed> {
    let frame = CloseFrame { code: closed as u16, reason: format!("{closed:?}").to_lowercase().into() };
    let _ = socket.send(Message::Close(Some(frame))).await;
    Some(closed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_browser_sends_input_or_a_size_and_nothing_else() {
        let input: FromBrowser = serde_json::from_str(r#"{"input":"ls\r"}"#).expect("input");
        assert_eq!(input, FromBrowser::Input("ls\r".into()));
        let resize: FromBrowser = serde_json::from_str(r#"{"resize":{"cols":100,"rows":30}}"#).expect("resize");
        assert_eq!(resize, FromBrowser::Resize { cols: 100, rows: 30 });
        assert!(serde_json::from_str::<FromBrowser>(r#"{"exec":"rm"}"#).is_err());
        assert!(serde_json::from_str::<FromBrowser>(r#"{"resize":{"cols":-1,"rows":30}}"#).is_err());
    }

    #[tokio::test]
    async fn the_page_runs_only_its_own_files_and_says_why_a_terminal_closed() {
        let session = super::super::user_sessions::test_session("inst-1");
        let text = &super::super::i18n::KO;
        let page = TerminalPage {
            text,
            session: &session,
            pod: "web-<1>",
            workloads: "/instances/inst-1/workloads".into(),
            action: "/instances/inst-1/terminal/web".into(),
            socket: "/instances/inst-1/terminal/web/socket?container=main&shell=%2Fbin%2Fsh".into(),
            limits: "15".into(),
            containers: vec!["main".into(), "side".into()],
            container: "side".into(),
            debug: Some("/instances/inst-1/terminal/web/debug".into()),
            targets: vec!["main".into()],
            refused: Some("denied <by> policy".into()),
            shells: Shell::ALL.map(Shell::path).to_vec(),
            shell: "/bin/bash",
            xterm_path: XTERM_PATH,
            xterm_fit_path: XTERM_FIT_PATH,
            xterm_css_path: XTERM_CSS_PATH,
            terminal_path: TERMINAL_PATH,
        };
        let html = page.render().expect("renders");
        assert!(html.contains("web-&#60;1&#62;") && !html.contains("web-<1>"), "escaped: {html}");
        let scripts: Vec<&str> = html.match_indices("<script").map(|(at, _)| &html[at..at + 50]).collect();
        assert_eq!(scripts.len(), 3, "xterm.js, its add-on and the page's own script: {scripts:?}");
        assert!(!html.contains("style=") && !html.contains("<style"), "no inline style: {html}");
        assert!(
            html.contains(r#"<option value="side" selected>"#)
                && html.contains(r#"<option value="/bin/bash" selected>"#)
        );
        assert!(html.contains(&format!(
            r#"data-closed-{}="{}""#,
            Closed::Revoked as u16,
            text.terminal_closed_revoked
        )));
        assert!(html.contains(r#"<label for="shell">"#) && html.contains(r#"<label for="container">"#), "{html}");
        assert!(html.contains(r#"<form method="post" action="/instances/inst-1/terminal/web/debug""#), "{html}");
        assert!(html.contains(r#"<label for="target">"#) && html.contains("denied &#60;by&#62; policy"), "{html}");
    }
}
