//! The logs of a workload's pods together (a Deployment's, StatefulSet's or ReplicaSet's), read with the signed-in
//! user's own client: each line names its pod, the lines of every pod are merged in the order they were written (the
//! kubelet's timestamps), and a filter keeps lines holding a text or of a least severity. As the one pod's logs (see
//! [`super::logs`]): a page that works without script, kept current by one stream that follows every pod's log; bounded
//! the same way, and at most [`MAX_PODS`] pods, so one view holds at most that many connections to the apiserver.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::LogParams;
use serde::Deserialize;

use super::DashboardState;
use super::assets::{HTMX_PATH, HTMX_SSE_PATH};
use super::i18n::Translation;
use super::logs::{Kept, MAX_LINES, MAX_READ_BYTES, bounded_lines, cut, escape, updates};
use super::open_streams::{self, Needs};
use super::page_error::PageError;
use super::paths::{self, with_query};
use super::reply::render;
use super::respond::{PageVisit, PartVisit, Visit};
use super::user_sessions::Session;
use crate::lifecycle::Error;
use crate::tenant::objects::Kind;
use crate::tenant::workload_pods::{self, WorkloadPods};

/// Longest text a filter looks for, in characters.
const MAX_FILTER_CHARS: usize = 200;

/// The page's query: a text to look for and the least severity shown (`warning`, `error`; anything else: all).
#[derive(Debug, Default, Deserialize)]
pub struct WorkloadLogQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    level: String,
}

/// How bad a line says things are, from the words it holds (as log viewers guess it: `error`, `fatal`, `panic`...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Anything else.
    Info,
    /// A line that warns.
    Warning,
    /// A line that tells of an error.
    Error,
}

impl Severity {
    /// The severity `line` reads as.
    pub fn of(line: &str) -> Severity {
        let line = line.to_lowercase();
        if ["error", "fatal", "panic", "critical", "exception"].iter().any(|word| line.contains(word)) {
            Severity::Error
        } else if line.contains("warn") {
            Severity::Warning
        } else {
            Severity::Info
        }
    }

    /// Its name in the query and the page's classes.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// Which lines are shown, parsed once from the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFilter {
    /// Lines must hold this text (lower-cased; empty: any line).
    text: String,
    /// Lines must be at least this bad.
    least: Severity,
}

impl LogFilter {
    /// The filter the query asks for; a text longer than [`MAX_FILTER_CHARS`] is cut there.
    pub fn from_query(query: &WorkloadLogQuery) -> LogFilter {
        let least = match query.level.as_str() {
            "warning" => Severity::Warning,
            "error" => Severity::Error,
            _ => Severity::Info,
        };
        LogFilter { text: query.q.trim().chars().take(MAX_FILTER_CHARS).collect::<String>().to_lowercase(), least }
    }

    /// Whether `line` is shown.
    pub fn keeps(&self, line: &str) -> bool {
        Severity::of(line) >= self.least && (self.text.is_empty() || line.to_lowercase().contains(&self.text))
    }
}

/// One line of a pod's log and when the kubelet says it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodLine {
    at: Option<jiff::Timestamp>,
    pod: String,
    text: String,
}

impl PodLine {
    /// `raw` as the kubelet sends it with timestamps (`2026-12-07T10:00:00.123456789Z the line`), from `pod`.
    fn read(pod: &str, raw: &str) -> PodLine {
        let (at, text) = match raw.split_once(' ') {
            Some((stamp, text)) => match stamp.parse::<jiff::Timestamp>() {
                Ok(at) => (Some(at), text),
                Err(_) => (None, raw),
            },
            None => (None, raw),
        };
        PodLine { at, pod: pod.to_owned(), text: cut(text) }
    }
}

/// The last [`MAX_LINES`] lines the filter keeps, of every pod, in the order they were written.
pub struct MergedLines {
    lines: Vec<PodLine>,
    filter: LogFilter,
}

impl MergedLines {
    fn new(filter: LogFilter) -> MergedLines {
        MergedLines { lines: Vec::new(), filter }
    }
}

impl Kept for MergedLines {
    type Line = PodLine;

    fn keep(&mut self, line: PodLine) {
        if !self.filter.keeps(&line.text) {
            return;
        }
        let at = self.lines.partition_point(|kept| kept.at <= line.at);
        self.lines.insert(at, line);
        if self.lines.len() > MAX_LINES {
            self.lines.remove(0);
        }
    }

    fn html(&self) -> String {
        let shown = self.lines.iter().map(|line| {
            let text = format!("{} │ {}", escape(&line.pod), escape(&line.text));
            match Severity::of(&line.text) {
                Severity::Info => text,
                severity => format!(r#"<span class="log-{}">{text}</span>"#, severity.as_str()),
            }
        });
        shown.collect::<Vec<_>>().join("\n")
    }
}

/// The workload's logs page.
#[derive(Template)]
#[template(path = "workload_logs.html", config = "src/dashboard/askama.toml")]
struct WorkloadLogsPage<'a> {
    text: &'static Translation,
    session: &'a Session,
    kind: &'a str,
    name: &'a str,
    workloads: String,
    action: String,
    stream: String,
    query: WorkloadLogQuery,
    least: &'static str,
    shown_pods: usize,
    total_pods: usize,
    html: String,
    htmx_path: &'static str,
    htmx_sse_path: &'static str,
}

/// What a log of `pod`'s `container` is read with: the last lines, with the kubelet's timestamps, followed or not
/// (then at most `bytes`).
fn params(container: &str, follow: bool, bytes: i64) -> LogParams {
    LogParams {
        container: Some(container.to_owned()),
        follow,
        timestamps: true,
        tail_lines: Some(MAX_LINES as i64),
        limit_bytes: (!follow).then_some(bytes),
        ..LogParams::default()
    }
}

/// The workload of the path and its pods, as the user sees them; 404 alike for what does not exist and what they may
/// not read.
async fn workload(session: &Session, kind: &str, name: &str) -> Result<(Kind, WorkloadPods), PageError> {
    let not_found = || PageError::NotFound(|text| text.live_no_such_object);
    let kind = Kind::parse(kind).filter(|kind| workload_pods::has_pods(*kind)).ok_or_else(not_found)?;
    let pods = workload_pods::pods_of(&session.client, &session.tenant.namespace, kind, name).await;
    Ok((kind, pods.map_err(Error::from)?.ok_or_else(not_found)?))
}

/// The lines of `pod`'s `container`, read or followed with `params`, as they come; nothing for a log the apiserver
/// will not give (a simulated node keeps none, a container that never ran).
async fn pod_lines(pods: &Api<Pod>, pod: String, params: LogParams) -> BoxStream<'static, std::io::Result<PodLine>> {
    match pods.log_stream(&pod, &params).await {
        Ok(reader) => bounded_lines(reader).map_ok(move |raw| PodLine::read(&pod, &raw)).boxed(),
        Err(error) => {
            tracing::info!(pod, %error, "no logs for a pod");
            futures::stream::empty().boxed()
        }
    }
}

/// GET /instances/:instance_id/objects/:kind/:name/logs — the last lines of every pod of a workload, merged, filtered.
pub async fn page(
    path: paths::ObjectLogs,
    Query(query): Query<WorkloadLogQuery>,
    visit: PageVisit,
) -> Result<Response, PageError> {
    let Visit { session, text, .. } = visit;
    let (kind, found) = workload(&session, &path.kind, &path.name).await?;
    let filter = LogFilter::from_query(&query);
    let pods = Api::<Pod>::namespaced(session.client.clone(), &session.tenant.namespace);
    let bytes = MAX_READ_BYTES / i64::try_from(found.pods.len().max(1)).unwrap_or(1);
    let reads =
        found.pods.iter().map(|(pod, container)| pod_lines(&pods, pod.clone(), params(container, false, bytes)));
    let mut lines = futures::stream::select_all(futures::future::join_all(reads).await);
    let mut merged = MergedLines::new(filter.clone());
    while let Some(Ok(line)) = lines.next().await {
        merged.keep(line);
    }
    let stream = paths::ObjectLogStream {
        instance_id: path.instance_id.clone(),
        kind: path.kind.clone(),
        name: path.name.clone(),
    };
    let page = WorkloadLogsPage {
        text,
        session: &session,
        kind: kind.as_str(),
        name: &path.name,
        workloads: paths::Workloads { instance_id: path.instance_id.clone() }.to_string(),
        action: path.to_string(),
        stream: with_query(stream, &[("q", &query.q), ("level", filter.least.as_str())]),
        least: filter.least.as_str(),
        query,
        shown_pods: found.pods.len(),
        total_pods: found.total,
        html: merged.html(),
        htmx_path: HTMX_PATH,
        htmx_sse_path: HTMX_SSE_PATH,
    };
    Ok(render(StatusCode::OK, &page))
}

/// GET /instances/:instance_id/objects/:kind/:name/logs/stream — follows every pod's log of the workload: `lines`
/// events, each the last lines the filter keeps (escaped HTML). One of the user's open streams, re-checked as them,
/// open until the page goes away or the user may no longer read the logs.
pub async fn stream(
    path: paths::ObjectLogStream,
    State(state): State<DashboardState>,
    Query(query): Query<WorkloadLogQuery>,
    visit: PartVisit,
) -> Result<Response, PageError> {
    let Visit { session_id: id, session, .. } = visit;
    let Some(slot) = state.streams.open(&id, &session.tenant.username) else {
        return Err(open_streams::too_many());
    };
    let (_, found) = workload(&session, &path.kind, &path.name).await?;
    let pods = Api::<Pod>::namespaced(session.client.clone(), &session.tenant.namespace);
    let follows = found.pods.iter().map(|(pod, container)| pod_lines(&pods, pod.clone(), params(container, true, 0)));
    let lines = futures::stream::select_all(futures::future::join_all(follows).await).boxed();
    let needs = Needs { verb: "get", group: String::new(), resource: "pods".to_owned(), subresource: Some("log") };
    let ended = open_streams::revoked(state.clone(), id, needs, slot);
    // Once every log ended (or none could be followed: pods on a node that keeps no logs), the stream stays open,
    // quiet, rather than ending: a browser reconnects to an ended stream at once, re-reading every pod, again and again.
    let updates = updates(lines, MergedLines::new(LogFilter::from_query(&query))).chain(futures::stream::pending());
    Ok(Sse::new(updates.take_until(ended)).keep_alive(KeepAlive::default()).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(q: &str, level: &str) -> WorkloadLogQuery {
        WorkloadLogQuery { q: q.to_owned(), level: level.to_owned() }
    }

    #[test]
    fn lines_are_judged_by_their_words_and_filtered_by_text_and_severity() {
        assert_eq!(Severity::of("GET / 200"), Severity::Info);
        assert_eq!(Severity::of("level=warn msg=slow"), Severity::Warning);
        assert_eq!(Severity::of("ERROR: connection refused"), Severity::Error);
        assert_eq!(Severity::of("thread 'main' panicked"), Severity::Error);
        let warnings = LogFilter::from_query(&query("", "warning"));
        assert!(warnings.keeps("WARN disk") && warnings.keeps("fatal: no") && !warnings.keeps("ok"));
        let text = LogFilter::from_query(&query("  Refused ", "nonsense"));
        assert!(text.keeps("connection refused") && !text.keeps("connection reset"), "{text:?}");
        assert_eq!(LogFilter::from_query(&query(&"x".repeat(500), "")).text.len(), MAX_FILTER_CHARS);
    }

    #[test]
    fn lines_of_several_pods_merge_in_the_order_they_were_written_escaped_and_marked() {
        let mut merged = MergedLines::new(LogFilter::from_query(&query("", "")));
        merged.keep(PodLine::read("web-b", "2026-12-07T10:00:02.5Z second <b>"));
        merged.keep(PodLine::read("web-a", "2026-12-07T10:00:01Z first"));
        merged.keep(PodLine::read("web-a", "2026-12-07T10:00:03.000000001Z error: third"));
        assert_eq!(
            merged.html(),
            "web-a │ first\nweb-b │ second &lt;b&gt;\n<span class=\"log-error\">web-a │ error: third</span>"
        );
        for n in 0..MAX_LINES + 5 {
            merged.keep(PodLine::read("web-a", &format!("2026-12-07T11:00:00.{n:09}Z line {n}")));
        }
        assert_eq!(merged.lines.len(), MAX_LINES, "the oldest go");
        assert_eq!(merged.lines[0].text, "line 5");
        let stampless = PodLine::read("p", "no stamp here");
        assert_eq!((stampless.at, stampless.text.as_str()), (None, "no stamp here"));
    }
}
