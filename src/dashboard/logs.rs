//! A pod's logs, read with the signed-in user's own client: a page with the last lines of the chosen container (what
//! works without scripts), kept current by a stream (Server-Sent Events) that follows the container's log and sends
//! the last lines again whenever new ones came, at most once per [`LOG_COALESCE`]. Bounded every way: the last
//! [`MAX_LINES`] lines of at most [`MAX_LINE_CHARS`] characters each, cut as they are read (a line of any length never
//! sits in memory whole), a page's read at most [`MAX_READ_BYTES`]; a followed log counts as one of the user's open
//! streams and is re-checked as them (see [`super::open_streams`]). The stream ends when the log ends (the pod or
//! container went away) or the user may no longer read it, and is dropped, with its apiserver connection, when the page
//! goes away: no task stays behind.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::BoxStream;
use futures::{AsyncBufReadExt, Stream, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::LogParams;
use serde::Deserialize;

use super::DashboardState;
use super::assets::{HTMX_PATH, HTMX_SSE_PATH};
use super::i18n::Translation;
use super::open_streams::{self, Needs};
use super::page_error::PageError;
use super::paths::{self, with_query};
use super::reply::render;
use super::respond::{PageVisit, PartVisit, Visit};
use super::user_sessions::Session;
use crate::lifecycle::Error;

/// Most lines shown.
pub const MAX_LINES: usize = 500;
/// Longest line shown, in characters; longer ones are cut.
pub const MAX_LINE_CHARS: usize = 2000;
/// The most bytes a page's (not followed) read of a log takes from the apiserver.
pub const MAX_READ_BYTES: i64 = 4 * 1024 * 1024;
/// The most bytes of one line kept while it is read: enough for [`MAX_LINE_CHARS`] characters and one more (a
/// character is at most 4 bytes), so that [`cut`] still marks a line cut here.
const MAX_LINE_BYTES: usize = 4 * (MAX_LINE_CHARS + 1);
/// The shortest time between two updates of a followed log.
const LOG_COALESCE: Duration = Duration::from_secs(1);

/// The page's query: which container.
#[derive(Deserialize)]
pub struct LogQuery {
    container: Option<String>,
}

/// The logs page.
#[derive(Template)]
#[template(path = "pod_logs.html", config = "src/dashboard/askama.toml")]
struct LogsPage<'a> {
    text: &'static Translation,
    session: &'a Session,
    pod: &'a str,
    workloads: String,
    action: String,
    stream: String,
    containers: Vec<String>,
    container: String,
    lines: Vec<String>,
    htmx_path: &'static str,
    htmx_sse_path: &'static str,
}

/// The pod's containers (init containers first) and the one chosen (the first regular one by default); `None` when
/// the pod does not exist, Kubernetes refuses to show it, or it has no such container.
async fn container_of(
    session: &Session,
    pod: &str,
    chosen: Option<String>,
) -> Result<Option<(Vec<String>, String)>, kube::Error> {
    if !crate::k8s::names::is_object_name(pod) {
        return Ok(None);
    }
    let pods = Api::<Pod>::namespaced(session.client.clone(), &session.tenant.namespace);
    let pod = match pods.get_opt(pod).await {
        Ok(Some(pod)) => pod,
        Ok(None) => return Ok(None),
        Err(kube::Error::Api(status)) if status.code == 403 => return Ok(None),
        Err(error) => return Err(error),
    };
    let spec = pod.spec.unwrap_or_default();
    let first = spec.containers.first().map(|container| container.name.clone());
    let names: Vec<String> =
        spec.init_containers.iter().flatten().chain(spec.containers.iter()).map(|c| c.name.clone()).collect();
    let Some(chosen) = chosen.filter(|c| !c.is_empty()).or(first) else { return Ok(None) };
    Ok(names.contains(&chosen).then_some((names, chosen)))
}

/// The last [`MAX_LINES`] lines of `container`, followed or not (then at most [`MAX_READ_BYTES`] of them).
pub(super) fn log_params(container: &str, follow: bool) -> LogParams {
    LogParams {
        container: Some(container.to_owned()),
        follow,
        tail_lines: Some(MAX_LINES as i64),
        limit_bytes: (!follow).then_some(MAX_READ_BYTES),
        ..LogParams::default()
    }
}

/// The lines of `reader`, each cut to at most [`MAX_LINE_BYTES`] bytes as it is read (the rest of a longer line is
/// skipped, never buffered).
pub(super) fn bounded_lines<R>(reader: R) -> BoxStream<'static, std::io::Result<String>>
where
    R: futures::AsyncBufRead + Unpin + Send + 'static,
{
    futures::stream::unfold(Some(reader), |reader| async move {
        let mut reader = reader?;
        let mut line = Vec::new();
        loop {
            let buffer = match reader.fill_buf().await {
                Ok(buffer) => buffer,
                Err(error) => return Some((Err(error), None)),
            };
            if buffer.is_empty() {
                return (!line.is_empty()).then(|| (Ok(String::from_utf8_lossy(&line).into_owned()), None));
            }
            let end = buffer.iter().position(|byte| *byte == b'\n');
            let part = &buffer[..end.unwrap_or(buffer.len())];
            let room = MAX_LINE_BYTES.saturating_sub(line.len());
            line.extend_from_slice(&part[..part.len().min(room)]);
            let read = end.map_or(buffer.len(), |at| at + 1);
            reader.consume_unpin(read);
            if end.is_some() {
                return Some((Ok(String::from_utf8_lossy(&line).into_owned()), Some(reader)));
            }
        }
    })
    .boxed()
}

/// A line as shown: at most [`MAX_LINE_CHARS`] characters.
pub fn cut(line: &str) -> String {
    match line.char_indices().nth(MAX_LINE_CHARS) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line.to_owned(),
    }
}

/// GET /instances/:instance_id/pods/:pod/logs — the last lines of a container; 404 alike for a pod that does not
/// exist and one the user may not read.
pub async fn page(
    path: paths::PodLogs,
    Query(query): Query<LogQuery>,
    visit: PageVisit,
) -> Result<Response, PageError> {
    let Visit { session, text, .. } = visit;
    let (pod, instance_id) = (&path.pod, &path.instance_id);
    let Some((containers, container)) = container_of(&session, pod, query.container).await.map_err(Error::from)? else {
        return Err(PageError::NotFound(|text| text.live_no_such_object));
    };
    let pods = Api::<Pod>::namespaced(session.client.clone(), &session.tenant.namespace);
    let lines = match pods.log_stream(pod, &log_params(&container, false)).await {
        Ok(reader) => {
            let mut lines = bounded_lines(reader);
            let mut kept = LastLines::default();
            while let Some(Ok(line)) = lines.next().await {
                kept.keep(line);
            }
            kept.0.into()
        }
        Err(error) => {
            // What the apiserver says when the node keeps no logs (a simulated node) or the container never ran.
            tracing::info!(instance_id, pod, %error, "no logs for a pod");
            Vec::new()
        }
    };
    let stream = paths::PodLogStream { instance_id: instance_id.clone(), pod: pod.clone() };
    let page = LogsPage {
        text,
        session: &session,
        pod,
        workloads: paths::Workloads { instance_id: instance_id.clone() }.to_string(),
        stream: with_query(stream, &[("container", &container)]),
        action: path.to_string(),
        containers,
        container,
        lines,
        htmx_path: HTMX_PATH,
        htmx_sse_path: HTMX_SSE_PATH,
    };
    Ok(render(StatusCode::OK, &page))
}

/// GET /instances/:instance_id/pods/:pod/logs/stream — follows a container's log: `lines` events, each the last lines
/// (escaped HTML, for the page's `<pre>`). 404 for what the page would not show; a log the apiserver will not follow
/// ends the stream after one event saying there are no logs.
pub async fn stream(
    paths::PodLogStream { instance_id, pod }: paths::PodLogStream,
    State(state): State<DashboardState>,
    Query(query): Query<LogQuery>,
    visit: PartVisit,
) -> Result<Response, PageError> {
    let Visit { session_id: id, session, text, .. } = visit;
    let Some(slot) = state.streams.open(&id, &session.tenant.username) else {
        return Err(open_streams::too_many());
    };
    let Some((_, container)) = container_of(&session, &pod, query.container).await.map_err(Error::from)? else {
        return Err(PageError::NotFound(|text| text.live_no_such_object));
    };
    let pods = Api::<Pod>::namespaced(session.client.clone(), &session.tenant.namespace);
    let lines: BoxStream<'static, std::io::Result<String>> =
        match pods.log_stream(&pod, &log_params(&container, true)).await {
            Ok(reader) => bounded_lines(reader),
            Err(error) => {
                tracing::info!(instance_id, pod, %error, "no log to follow for a pod");
                let none = Event::default().event("lines").data(escape(text.live_no_logs));
                return Ok(Sse::new(futures::stream::iter([Ok::<_, Infallible>(none)])).into_response());
            }
        };
    let needs = Needs { verb: "get", group: String::new(), resource: "pods".to_owned(), subresource: Some("log") };
    let ended = open_streams::revoked(state.clone(), id, needs, slot);
    let updates = updates(lines, LastLines::default());
    Ok(Sse::new(updates.take_until(ended)).keep_alive(KeepAlive::default()).into_response())
}

/// The last lines of `lines` as `lines` events, one per batch of lines that came within [`LOG_COALESCE`], as `kept`
/// keeps and shows them.
pub(super) fn updates<K: Kept>(
    lines: BoxStream<'static, std::io::Result<K::Line>>,
    kept: K,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let tail = Tail { lines, kept, ended: false };
    futures::stream::unfold(tail, |mut tail| async move {
        tail.next_batch().await?;
        let event = Event::default().event("lines").data(tail.kept.html());
        Some((Ok(event), tail))
    })
}

/// The lines a followed log keeps, and how they are shown.
pub(super) trait Kept: Send + 'static {
    /// One line as read.
    type Line: Send + 'static;
    /// Keeps `line`, dropping the oldest beyond the most kept.
    fn keep(&mut self, line: Self::Line);
    /// The kept lines, escaped HTML for the page's `<pre>`.
    fn html(&self) -> String;
}

/// The last [`MAX_LINES`] lines of one container's log, each cut to [`MAX_LINE_CHARS`].
#[derive(Default)]
struct LastLines(VecDeque<String>);

impl Kept for LastLines {
    type Line = String;

    fn keep(&mut self, line: String) {
        if self.0.len() == MAX_LINES {
            self.0.pop_front();
        }
        self.0.push_back(cut(&line));
    }

    fn html(&self) -> String {
        self.0.iter().map(|line| escape(line)).collect::<Vec<_>>().join("\n")
    }
}

/// A followed log and what is kept of it.
struct Tail<K: Kept> {
    lines: BoxStream<'static, std::io::Result<K::Line>>,
    kept: K,
    ended: bool,
}

impl<K: Kept> Tail<K> {
    /// Waits for at least one new line and gathers those that follow within [`LOG_COALESCE`]; `None` once the log
    /// ended and everything was sent.
    async fn next_batch(&mut self) -> Option<()> {
        if self.ended {
            return None;
        }
        match self.lines.next().await {
            Some(Ok(line)) => self.kept.keep(line),
            _ => {
                self.ended = true;
                return None;
            }
        }
        let pause = tokio::time::sleep(LOG_COALESCE);
        tokio::pin!(pause);
        loop {
            tokio::select! {
                _ = &mut pause => return Some(()),
                next = self.lines.next() => match next {
                    Some(Ok(line)) => self.kept.keep(line),
                    _ => {
                        self.ended = true;
                        return Some(());
                    }
                },
            }
        }
    }
}

/// `text` safe inside HTML.
pub(super) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_followed_log_keeps_the_last_lines_cut_and_escaped_and_ends_with_the_log() {
        let many = (0..MAX_LINES + 20).map(|n| Ok(format!("line {n} <b>")));
        let long = std::iter::once(Ok("x".repeat(MAX_LINE_CHARS + 10)));
        let lines = futures::stream::iter(many.chain(long).collect::<Vec<_>>()).boxed();
        let events: Vec<_> = updates(lines, LastLines::default()).collect().await;
        assert_eq!(events.len(), 1, "one batch: everything came at once, and then the log ended");
        let mut tail = Tail { lines: futures::stream::empty().boxed(), kept: LastLines::default(), ended: false };
        for n in 0..MAX_LINES + 20 {
            tail.kept.keep(format!("line {n} <b>"));
        }
        tail.kept.keep("x".repeat(MAX_LINE_CHARS + 10));
        let html = tail.kept.html();
        assert_eq!(html.lines().count(), MAX_LINES);
        assert!(html.starts_with("line 21 &lt;b&gt;"), "{}", &html[..40]);
        assert!(html.ends_with(&format!("{}…", "x".repeat(MAX_LINE_CHARS))));
        assert!(tail.next_batch().await.is_none(), "an ended log sends nothing more");
    }

    #[tokio::test]
    async fn lines_are_cut_as_they_are_read_whatever_their_length() {
        let huge = "é".repeat(3 * 1024 * 1024);
        let log = format!("first\n{huge}\nlast\nno newline at the end");
        let reader = futures::io::BufReader::with_capacity(8192, futures::io::Cursor::new(log.into_bytes()));
        let lines: Vec<String> = bounded_lines(reader).map(|line| line.expect("line")).collect().await;
        assert_eq!(lines.len(), 4, "{:?}", lines.iter().map(String::len).collect::<Vec<_>>());
        assert_eq!(
            (lines[0].as_str(), lines[2].as_str(), lines[3].as_str()),
            ("first", "last", "no newline at the end")
        );
        assert!(lines[1].len() <= MAX_LINE_BYTES, "a 6 MiB line is kept as {} bytes", lines[1].len());
        assert_eq!(cut(&lines[1]), format!("{}…", "é".repeat(MAX_LINE_CHARS)), "and shown cut as any long line");
    }
}
