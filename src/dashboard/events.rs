//! The events page: what Kubernetes reported about the namespace's objects as a timeline (newest first, grouped by
//! object, warnings marked), filtered by a GET form that works without script, and kept live: the timeline alone is
//! fetched again when the live stream says events changed. Read with the signed-in user's own client.

use askama::Template;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::assets::{HTMX_PATH, HTMX_SSE_PATH};
use super::i18n::Translation;
use super::page_error::PageError;
use super::paths::{self, with_query};
use super::reply::render;
use super::respond::{PageVisit, PartVisit, Visit};
use super::user_sessions::Session;
use crate::tenant::timeline::{self, EventType, Filter, Group, MAX_EVENTS, Timeline};

/// `?kind=&type=`, as the filter form sends them.
#[derive(Debug, Default, Deserialize)]
pub struct FilterQuery {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default, rename = "type")]
    type_: Option<String>,
}

impl FilterQuery {
    fn filter(&self) -> Filter {
        Filter::parse(self.kind.as_deref(), self.type_.as_deref())
    }
}

/// One object's events as shown, with a link to the object's view where the dashboard has one.
pub struct GroupView {
    /// The object and its events.
    pub group: Group,
    /// Where the object's view is.
    pub link: Option<String>,
}

/// The timeline as shown: a section the page swaps in again when events change.
#[derive(Template)]
#[template(path = "events_timeline.html", config = "src/dashboard/askama.toml")]
struct TimelineFragment {
    text: &'static Translation,
    /// Where this section, with the same filter, is fetched again.
    url: String,
    groups: Vec<GroupView>,
    timeline: Timeline,
    shown: usize,
}

/// The events page.
#[derive(Template)]
#[template(path = "events.html", config = "src/dashboard/askama.toml")]
struct EventsPage<'a> {
    text: &'static Translation,
    session: &'a Session,
    action: String,
    live: String,
    htmx_path: &'static str,
    htmx_sse_path: &'static str,
    kind: String,
    type_: &'static str,
    types: [(&'static str, &'static str); 2],
    timeline: TimelineFragment,
}

fn fragment(text: &'static Translation, instance_id: &str, filter: &Filter, timeline: Timeline) -> TimelineFragment {
    let path = paths::EventsTimeline { instance_id: instance_id.to_owned() };
    let kind = filter.kind.as_deref().unwrap_or_default();
    let url = with_query(path, &[("kind", kind), ("type", filter.type_.map_or("", EventType::as_str))]);
    let groups = timeline
        .groups
        .iter()
        .map(|group| GroupView {
            link: group.view.map(|kind| {
                let (instance_id, kind) = (instance_id.to_owned(), kind.as_str().to_owned());
                paths::Object { instance_id, kind, name: group.name.clone() }.to_string()
            }),
            group: group.clone(),
        })
        .collect();
    let shown = timeline.matched.min(MAX_EVENTS);
    TimelineFragment { text, url, groups, timeline, shown }
}

fn events_page<'a>(
    text: &'static Translation,
    session: &'a Session,
    filter: &Filter,
    timeline: Timeline,
) -> EventsPage<'a> {
    let instance_id = &session.tenant.instance_id;
    EventsPage {
        text,
        session,
        action: paths::Events { instance_id: instance_id.clone() }.to_string(),
        live: paths::Live { instance_id: instance_id.clone() }.to_string(),
        htmx_path: HTMX_PATH,
        htmx_sse_path: HTMX_SSE_PATH,
        kind: filter.kind.clone().unwrap_or_default(),
        type_: filter.type_.map_or("", EventType::as_str),
        types: [("Normal", text.events_normal), ("Warning", text.events_warning)],
        timeline: fragment(text, instance_id, filter, timeline),
    }
}

/// GET /instances/:instance_id/events — the timeline with its filter, read as the signed-in user.
pub async fn page(_: paths::Events, Query(query): Query<FilterQuery>, visit: PageVisit) -> Result<Response, PageError> {
    let Visit { session, text, .. } = visit;
    let filter = query.filter();
    let timeline = timeline::read(&session.client, &session.tenant.namespace, &filter).await?;
    Ok(render(StatusCode::OK, &events_page(text, &session, &filter, timeline)))
}

/// GET /instances/:instance_id/events/timeline — the timeline alone, with the same filter (what the live page swaps
/// in).
pub async fn timeline(
    _: paths::EventsTimeline,
    Query(query): Query<FilterQuery>,
    visit: PartVisit,
) -> Result<Response, PageError> {
    let Visit { session, instance_id, text, .. } = visit;
    let filter = query.filter();
    let timeline = timeline::read(&session.client, &session.tenant.namespace, &filter).await?;
    Ok(render(StatusCode::OK, &fragment(text, &instance_id, &filter, timeline)))
}

#[cfg(test)]
mod tests {
    use super::super::i18n;
    use super::*;
    use crate::tenant::objects::Kind;
    use crate::tenant::timeline::Entry;

    fn entry(type_: EventType, reason: &str) -> Entry {
        let message = format!("{reason} <b>happened</b>");
        Entry { type_, reason: reason.into(), message, count: 3, last_seen: "5m".into(), seen_at: None }
    }

    #[tokio::test]
    async fn the_timeline_marks_warnings_in_words_links_objects_and_keeps_its_filter_live() {
        let session = super::super::user_sessions::test_session("inst-1");
        let timeline = Timeline {
            groups: vec![
                Group {
                    kind: "Pod".into(),
                    name: "web-1".into(),
                    view: Some(Kind::Pods),
                    warning: true,
                    entries: vec![entry(EventType::Warning, "BackOff"), entry(EventType::Normal, "Pulled")],
                },
                Group { kind: "Node".into(), name: "n1".into(), view: None, warning: false, entries: vec![] },
            ],
            kinds: vec!["Node".into(), "Pod".into()],
            matched: 250,
            cut: true,
            not_allowed: false,
        };
        let filter = Filter::parse(Some("Pod"), Some("Warning"));
        let html = events_page(&i18n::EN, &session, &filter, timeline).render().expect("renders");
        assert!(
            html.contains(
                r#"hx-get="/instances/inst-1/events/timeline?kind=Pod&#38;type=Warning" hx-trigger="sse:events""#
            ),
            "{html}"
        );
        assert!(
            html.contains(r#"<a href="/instances/inst-1/objects/pods/web-1" id="events-Pod-web-1">Pod/web-1</a>"#),
            "{html}"
        );
        assert!(html.contains("Node/n1") && !html.contains("objects/nodes"), "no view, no link: {html}");
        assert!(html.contains(r#"<span class="marker">⚠ Warning</span>"#), "a marker in words: {html}");
        assert!(html.contains(r#"<option value="Pod" selected>Pod</option>"#), "{html}");
        assert!(html.contains(r#"<option value="Warning" selected>Warning</option>"#), "{html}");
        assert!(html.contains("200 / 250"), "the cut is said: {html}");
        assert!(html.contains("&#60;b&#62;happened") && !html.contains("<b>happened"), "escaped: {html}");
        assert!(html.contains(r#"<label for="event-kind">"#) && html.contains(r#"<label for="event-type">"#));
        assert!(!html.contains("style="), "no inline style: {html}");
    }
}
