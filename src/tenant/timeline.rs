//! A namespace's events as a timeline people can follow: newest first, grouped by the object they are about, warnings
//! marked, filtered by the object's kind and the event's type, bounded. Read with the identity's own client, so
//! Kubernetes' RBAC decides; an identity that may not list events gets [`Timeline::not_allowed`].

use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::ListParams;
use kube::{Api, Client};

use super::objects::{Kind, age};
use crate::lifecycle::Result;

/// Most events shown, newest first: a namespace in trouble holds thousands.
pub const MAX_EVENTS: usize = 200;
/// Longest kind a filter names (Kubernetes' kinds are far shorter): longer is no filter.
const MAX_KIND: usize = 63;

/// An event's type, as Kubernetes records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Things going as they should.
    Normal,
    /// Something to look at.
    Warning,
}

impl EventType {
    /// The type named `name` (`Normal`, `Warning`), if it is one.
    pub fn parse(name: &str) -> Option<EventType> {
        match name {
            "Normal" => Some(EventType::Normal),
            "Warning" => Some(EventType::Warning),
            _ => None,
        }
    }

    /// Its name as Kubernetes writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// Which events to show: every field `None` shows all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only events about objects of this kind (`Pod`, `Deployment`, as `involvedObject.kind` says).
    pub kind: Option<String>,
    /// Only events of this type.
    pub type_: Option<EventType>,
}

impl Filter {
    /// The filter a form asks for: empty or unknown values filter nothing.
    pub fn parse(kind: Option<&str>, type_: Option<&str>) -> Filter {
        let kind = kind.map(str::trim).filter(|kind| {
            !kind.is_empty() && kind.len() <= MAX_KIND && kind.chars().all(|c| c.is_ascii_alphanumeric())
        });
        Filter { kind: kind.map(str::to_owned), type_: type_.and_then(EventType::parse) }
    }

    fn admits(&self, event: &Event) -> bool {
        let kind = event.involved_object.kind.as_deref().unwrap_or_default();
        self.kind.as_deref().is_none_or(|wanted| wanted == kind)
            && self.type_.is_none_or(|wanted| wanted == type_of(event))
    }
}

/// One event as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its type.
    pub type_: EventType,
    /// Kubernetes' one-word reason (`BackOff`, `Scheduled`).
    pub reason: String,
    /// What happened, in the reporter's words.
    pub message: String,
    /// How often it happened.
    pub count: i32,
    /// How long ago it was last seen (`42s`, `5m`).
    pub last_seen: String,
    /// When it was last seen, if it says.
    pub seen_at: Option<jiff::Timestamp>,
}

/// The events about one object, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The object's kind (`Pod`).
    pub kind: String,
    /// The object's name.
    pub name: String,
    /// The dashboard kind whose view shows the object, if it shows that kind.
    pub view: Option<Kind>,
    /// Whether any of its events is a warning.
    pub warning: bool,
    /// Its events, newest first.
    pub entries: Vec<Entry>,
}

/// What the identity sees of a namespace's events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline {
    /// The groups, the one with the newest event first.
    pub groups: Vec<Group>,
    /// The kinds of object events are about, for the kind filter's choices, sorted.
    pub kinds: Vec<String>,
    /// How many events the filter admitted, shown or not.
    pub matched: usize,
    /// Whether more than [`MAX_EVENTS`] matched, so only the newest are shown.
    pub cut: bool,
    /// Kubernetes refused to list events to the identity.
    pub not_allowed: bool,
}

/// Reads the events of `namespace` with `client` (the identity's own) and arranges those `filter` admits.
pub async fn read(client: &Client, namespace: &str, filter: &Filter) -> Result<Timeline> {
    match Api::<Event>::namespaced(client.clone(), namespace).list(&ListParams::default()).await {
        Ok(listed) => Ok(arrange(listed.items, filter, jiff::Timestamp::now())),
        Err(kube::Error::Api(status)) if status.code == 403 => {
            Ok(Timeline { not_allowed: true, ..Timeline::default() })
        }
        Err(error) => Err(error.into()),
    }
}

/// `events` as a timeline: those `filter` admits, the newest [`MAX_EVENTS`] of them, grouped by the object they are
/// about (the group with the newest event first); `now` dates them.
pub fn arrange(mut events: Vec<Event>, filter: &Filter, now: jiff::Timestamp) -> Timeline {
    let mut kinds: Vec<String> = events.iter().filter_map(|event| event.involved_object.kind.clone()).collect();
    kinds.sort();
    kinds.dedup();
    events.retain(|event| filter.admits(event));
    events.sort_by_key(|event| std::cmp::Reverse(last_seen(event)));
    let matched = events.len();
    let mut groups: Vec<Group> = Vec::new();
    for event in events.iter().take(MAX_EVENTS) {
        let about = &event.involved_object;
        let (kind, name) = (about.kind.clone().unwrap_or_default(), about.name.clone().unwrap_or_default());
        let entry = Entry {
            type_: type_of(event),
            reason: event.reason.clone().unwrap_or_default(),
            message: event.message.clone().unwrap_or_default(),
            count: event.count.unwrap_or(1),
            last_seen: age(last_seen(event).map(Time).as_ref(), now),
            seen_at: last_seen(event),
        };
        let warning = entry.type_ == EventType::Warning;
        match groups.iter_mut().find(|group| group.kind == kind && group.name == name) {
            Some(group) => {
                group.warning |= warning;
                group.entries.push(entry);
            }
            None => groups.push(Group { view: view_of(&kind), kind, name, warning, entries: vec![entry] }),
        }
    }
    Timeline { groups, kinds, matched, cut: matched > MAX_EVENTS, not_allowed: false }
}

fn type_of(event: &Event) -> EventType {
    event.type_.as_deref().and_then(EventType::parse).unwrap_or(EventType::Normal)
}

/// The dashboard kind whose view shows objects of `kind` (as `involvedObject.kind` names it).
pub fn view_of(kind: &str) -> Option<Kind> {
    Some(match kind {
        "Deployment" => Kind::Deployments,
        "StatefulSet" => Kind::StatefulSets,
        "ReplicaSet" => Kind::ReplicaSets,
        "Pod" => Kind::Pods,
        "Service" => Kind::Services,
        "Ingress" => Kind::Ingresses,
        "PersistentVolumeClaim" => Kind::PersistentVolumeClaims,
        _ => return None,
    })
}

/// When an event was last seen: its last timestamp, else its (newer API's) event time, else when it was recorded.
fn last_seen(event: &Event) -> Option<jiff::Timestamp> {
    let micro = event.event_time.as_ref().map(|time| time.0);
    let created = event.metadata.creation_timestamp.as_ref().map(|time| time.0);
    event.last_timestamp.as_ref().map(|time| time.0).or(micro).or(created)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(kind: &str, name: &str, type_: &str, reason: &str, seconds_ago: i64) -> Event {
        let at = jiff::Timestamp::from_second(1_000_000 - seconds_ago).expect("then").to_string();
        serde_json::from_value(json!({
            "metadata": { "name": format!("{name}.{reason}") },
            "involvedObject": { "kind": kind, "name": name },
            "type": type_, "reason": reason, "message": format!("{reason} of {name}"),
            "count": 2, "lastTimestamp": at,
        }))
        .expect("event")
    }

    fn now() -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_000_000).expect("now")
    }

    #[test]
    fn events_are_grouped_by_object_newest_first_with_warnings_marked() {
        let events = vec![
            event("Pod", "web-1", "Normal", "Scheduled", 300),
            event("Deployment", "web", "Normal", "ScalingReplicaSet", 200),
            event("Pod", "web-1", "Warning", "BackOff", 10),
            event("Node", "n1", "Normal", "Ready", 100),
        ];
        let timeline = arrange(events, &Filter::default(), now());
        let groups: Vec<(&str, &str, bool, Option<Kind>)> =
            timeline.groups.iter().map(|g| (g.kind.as_str(), g.name.as_str(), g.warning, g.view)).collect();
        assert_eq!(
            groups,
            [
                ("Pod", "web-1", true, Some(Kind::Pods)),
                ("Node", "n1", false, None),
                ("Deployment", "web", false, Some(Kind::Deployments))
            ]
        );
        let pod: Vec<&str> = timeline.groups[0].entries.iter().map(|entry| entry.reason.as_str()).collect();
        assert_eq!(pod, ["BackOff", "Scheduled"], "newest first within the group");
        assert_eq!((timeline.groups[0].entries[0].last_seen.as_str(), timeline.groups[0].entries[0].count), ("10s", 2));
        assert_eq!(timeline.kinds, ["Deployment", "Node", "Pod"]);
        assert_eq!((timeline.matched, timeline.cut), (4, false));
    }

    #[test]
    fn filters_keep_only_the_kind_and_type_asked_and_unknown_values_filter_nothing() {
        let events = || {
            vec![
                event("Pod", "a", "Warning", "Failed", 1),
                event("Pod", "b", "Normal", "Pulled", 2),
                event("Deployment", "d", "Warning", "Stuck", 3),
            ]
        };
        let warnings = arrange(events(), &Filter::parse(None, Some("Warning")), now());
        assert_eq!(warnings.matched, 2);
        assert!(warnings.groups.iter().all(|group| group.entries.iter().all(|e| e.type_ == EventType::Warning)));
        let pod_warnings = arrange(events(), &Filter::parse(Some("Pod"), Some("Warning")), now());
        assert_eq!(pod_warnings.groups.len(), 1);
        assert_eq!(pod_warnings.groups[0].name, "a");
        assert_eq!(pod_warnings.kinds, ["Deployment", "Pod"], "the choices stay every kind");
        assert_eq!(Filter::parse(Some(""), Some("Bogus")), Filter::default());
        assert_eq!(Filter::parse(Some("Pod/<x>"), None), Filter::default());
    }

    #[test]
    fn at_most_the_newest_max_events_are_shown_and_the_cut_is_said() {
        let events: Vec<Event> = (0..MAX_EVENTS as i64 + 5).map(|at| event("Pod", "p", "Normal", "R", at)).collect();
        let timeline = arrange(events, &Filter::default(), now());
        assert_eq!((timeline.matched, timeline.cut), (MAX_EVENTS + 5, true));
        assert_eq!(timeline.groups[0].entries.len(), MAX_EVENTS);
        assert_eq!(timeline.groups[0].entries[0].last_seen, "0s");
    }
}
