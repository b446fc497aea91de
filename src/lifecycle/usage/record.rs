//! The usage record: one ConfigMap per instance and UTC month in the broker's namespace, which outlives the instance
//! (an operator bills the last month) and holds the month's hourly buckets, the instance's lifetime totals and
//! `through`, the moment up to which the record has counted.
//!
//! `through` is what keeps every span counted once: a replica counts only what it sampled after it, writes over the
//! version it read, and when another replica wrote first, the next read moves `through` and the span already counted
//! is dropped from what is pending ([`Pending::settle`]).

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use super::buckets::{Hours, Month, Rates, Segment, add_segment, hour_of};
use super::model::UsageTotals;
use crate::k8s::names::{
    self, ANNOTATION_INSTANCE_ID, LABEL_INSTANCE, LABEL_MANAGED_BY, LABEL_ORGANIZATION, LABEL_PLAN, LABEL_SERVICE,
    LABEL_SPACE,
};

/// `app.kubernetes.io/managed-by` of usage records: apart from the broker's instance records, so that nothing that
/// reads those (instance counts, the copy of the records, drift repair) takes a usage record for an instance.
pub const MANAGED_BY_USAGE: &str = "caas-broker-usage";
/// What a usage record accounts: `virtual-cluster` or `workload`.
pub const LABEL_USAGE_KIND: &str = "caas-broker.io/usage-kind";
/// The month (`yyyymm`, UTC) a usage record covers.
pub const LABEL_USAGE_MONTH: &str = "caas-broker.io/usage-month";
/// The moment up to which a usage record has counted (RFC 3339).
pub const ANNOTATION_USAGE_THROUGH: &str = "caas-broker.io/usage-through";
/// The instance's lifetime totals up to `through` (a JSON array in the order of [`UsageTotals::NAMES`]).
pub const ANNOTATION_USAGE_LIFETIME: &str = "caas-broker.io/usage-lifetime";
/// The record's hourly buckets (JSON: `{"2026-12-07T15": [values in the order of UsageTotals::NAMES]}`).
const HOURS_KEY: &str = "hours";
/// Most spans a replica keeps pending for one instance while it cannot write (one per sample): the oldest go first.
const MAX_PENDING: usize = 2048;

/// What an accounted instance is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A virtual cluster: everything in its namespace.
    VirtualCluster,
    /// A workload instance: its own pods and claims.
    Workload,
}

impl Kind {
    /// As labels and CSV write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::VirtualCluster => "virtual-cluster",
            Kind::Workload => "workload",
        }
    }

    fn parse(text: &str) -> Option<Kind> {
        [Kind::VirtualCluster, Kind::Workload].into_iter().find(|kind| kind.as_str() == text)
    }
}

/// Who an accounted instance is, as bills group it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Accounted {
    /// The exact instance id.
    pub instance_id: String,
    /// Virtual cluster or workload.
    pub kind: Kind,
    /// The offering's name.
    pub service: String,
    /// The plan's name.
    pub plan: String,
    /// The organization's guid (label-safe).
    pub organization: String,
    /// The space's guid (label-safe).
    pub space: String,
}

/// One instance's usage in one month, as its record holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRecord {
    /// Whose.
    pub instance: Accounted,
    /// Which month.
    pub month: Month,
    /// Up to when it has counted; `None` for a record nothing was counted in yet.
    pub through: Option<Timestamp>,
    /// The instance's totals since accounting began, through `through`.
    pub lifetime: UsageTotals,
    /// The month's hourly buckets.
    pub hours: Hours,
    /// The version read, over which it is written (`None` for a record to create).
    pub resource_version: Option<String>,
}

/// What a record's metadata says without its buckets: enough for the counters on `/metrics`.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordHead {
    /// Whose.
    pub instance: Accounted,
    /// Which month.
    pub month: Month,
    /// Lifetime totals.
    pub lifetime: UsageTotals,
}

/// The name of `instance_id`'s record of `month`: `usage-<id>-<yyyymm>` (the id hashed when it is not a DNS label).
pub fn record_name(instance_id: &str, month: Month) -> String {
    format!("{}-{}", names::short_label("usage-", instance_id, 56), month.key())
}

impl UsageRecord {
    /// A record of `month` for `instance`, nothing counted in it yet, carrying the lifetime totals before it.
    pub fn new(instance: Accounted, month: Month, lifetime: UsageTotals) -> UsageRecord {
        UsageRecord { instance, month, through: None, lifetime, hours: Hours::new(), resource_version: None }
    }

    /// The month's totals.
    pub fn month_totals(&self) -> UsageTotals {
        let mut totals = UsageTotals::default();
        for hour in self.hours.values() {
            totals += *hour;
        }
        totals
    }

    /// Counts what `pending` holds after `through` and within the month; says whether anything was counted.
    /// The first sample's span reaches back to `through` when that is at most `gap_bound` before it (a restart),
    /// and is left uncounted otherwise.
    pub fn count(&mut self, pending: &Pending, gap_bound: SignedDuration) -> bool {
        let from = self.through.map_or(self.month.start(), |through| through.max(self.month.start()));
        let to = self.month.end();
        let gap = match (pending.first, self.through) {
            (Some((at, rates)), Some(through)) if through < at && at.duration_since(through) <= gap_bound => {
                Some(Segment { start: through, end: at, rates })
            }
            _ => None,
        };
        let mut counted = false;
        for part in gap.iter().chain(&pending.segments).filter_map(|segment| segment.within(from, to)) {
            self.lifetime += add_segment(&mut self.hours, &part);
            self.through = Some(self.through.map_or(part.end, |through| through.max(part.end)));
            counted = true;
        }
        counted
    }

    /// The record as a ConfigMap in `namespace`, written over the version read.
    pub fn to_config_map(&self, namespace: &str) -> ConfigMap {
        let hours: BTreeMap<String, [f64; 7]> =
            self.hours.iter().map(|(hour, totals)| (hour_key(*hour), rounded(totals))).collect();
        let mut annotations = BTreeMap::from([
            (ANNOTATION_INSTANCE_ID.to_owned(), self.instance.instance_id.clone()),
            (ANNOTATION_USAGE_LIFETIME.to_owned(), json_array(&rounded(&self.lifetime))),
        ]);
        if let Some(through) = self.through {
            annotations.insert(ANNOTATION_USAGE_THROUGH.to_owned(), through.to_string());
        }
        let instance = &self.instance;
        let labels = BTreeMap::from([
            (LABEL_MANAGED_BY.to_owned(), MANAGED_BY_USAGE.to_owned()),
            (LABEL_INSTANCE.to_owned(), names::label_value(&instance.instance_id)),
            (LABEL_SERVICE.to_owned(), names::label_value(&instance.service)),
            (LABEL_PLAN.to_owned(), names::label_value(&instance.plan)),
            (LABEL_ORGANIZATION.to_owned(), names::label_value(&instance.organization)),
            (LABEL_SPACE.to_owned(), names::label_value(&instance.space)),
            (LABEL_USAGE_KIND.to_owned(), instance.kind.as_str().to_owned()),
            (LABEL_USAGE_MONTH.to_owned(), self.month.key()),
        ]);
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(record_name(&instance.instance_id, self.month)),
                namespace: Some(namespace.to_owned()),
                labels: Some(labels),
                annotations: Some(annotations),
                resource_version: self.resource_version.clone(),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([(HOURS_KEY.to_owned(), serde_json::to_string(&hours).unwrap_or_default())])),
            ..ConfigMap::default()
        }
    }

    /// The record a ConfigMap holds; `None` when it is not a usage record the broker can read.
    pub fn from_config_map(config_map: &ConfigMap) -> Option<UsageRecord> {
        let head = RecordHead::from_meta(&config_map.metadata)?;
        let hours_json = config_map.data.as_ref()?.get(HOURS_KEY)?;
        let hours: BTreeMap<String, [f64; 7]> = serde_json::from_str(hours_json).ok()?;
        let hours = hours
            .into_iter()
            .map(|(key, values)| Some((parse_hour_key(&key)?, UsageTotals::from_values(values))))
            .collect::<Option<Hours>>()?;
        let annotations = config_map.metadata.annotations.as_ref()?;
        Some(UsageRecord {
            instance: head.instance,
            month: head.month,
            through: annotations.get(ANNOTATION_USAGE_THROUGH).and_then(|through| through.parse().ok()),
            lifetime: head.lifetime,
            hours,
            resource_version: config_map.metadata.resource_version.clone(),
        })
    }
}

impl RecordHead {
    /// What a usage record's metadata says; `None` when it is not one.
    pub fn from_meta(meta: &ObjectMeta) -> Option<RecordHead> {
        let labels = meta.labels.as_ref()?;
        let annotations = meta.annotations.as_ref()?;
        if labels.get(LABEL_MANAGED_BY).map(String::as_str) != Some(MANAGED_BY_USAGE) {
            return None;
        }
        let label = |key: &str| labels.get(key).cloned().unwrap_or_default();
        let lifetime: [f64; 7] = serde_json::from_str(annotations.get(ANNOTATION_USAGE_LIFETIME)?).ok()?;
        Some(RecordHead {
            instance: Accounted {
                instance_id: annotations.get(ANNOTATION_INSTANCE_ID)?.clone(),
                kind: Kind::parse(labels.get(LABEL_USAGE_KIND)?)?,
                service: label(LABEL_SERVICE),
                plan: label(LABEL_PLAN),
                organization: label(LABEL_ORGANIZATION),
                space: label(LABEL_SPACE),
            },
            month: Month::parse(labels.get(LABEL_USAGE_MONTH)?)?,
            lifetime: UsageTotals::from_values(lifetime),
        })
    }
}

/// What one replica sampled of one instance and has not yet seen counted in its record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pending {
    /// This process's first sample of the instance: its span starts at the record's `through` (see
    /// [`UsageRecord::count`]), known only once the record is read.
    pub first: Option<(Timestamp, Rates)>,
    /// Spans between samples, oldest first.
    pub segments: Vec<Segment>,
    /// The last sample's time.
    pub last: Option<Timestamp>,
}

impl Pending {
    /// Adds a sample taken at `at`: the span since the last sample at its rates, unless it is longer than
    /// `gap_bound` (the sampler was stopped: that span is not counted).
    pub fn sample(&mut self, at: Timestamp, rates: Rates, gap_bound: SignedDuration) {
        match self.last {
            Some(last) if at <= last => return,
            Some(last) if at.duration_since(last) <= gap_bound => {
                self.segments.push(Segment { start: last, end: at, rates });
                if self.segments.len() > MAX_PENDING {
                    self.segments.remove(0);
                }
            }
            Some(_) => {}
            None => self.first = Some((at, rates)),
        }
        self.last = Some(at);
    }

    /// Drops what `record` has counted (or another replica counted in it): every span before its `through`, and the
    /// first sample's gap once a record of its month has been read.
    pub fn settle(&mut self, record: &UsageRecord) {
        if self.first.is_some_and(|(at, _)| at < record.month.end()) {
            self.first = None;
        }
        let Some(through) = record.through else { return };
        self.segments.retain_mut(|segment| {
            segment.start = segment.start.max(through);
            segment.start < segment.end
        });
    }

    /// The months this holds spans in, oldest first.
    pub fn months(&self) -> Vec<Month> {
        let start = self.first.map(|(at, _)| at).or_else(|| self.segments.first().map(|s| s.start));
        let (Some(start), Some(end)) = (start, self.last) else { return Vec::new() };
        let mut months = vec![Month::of(start)];
        while let Some(&month) = months.last()
            && month < Month::of(end)
        {
            months.push(month.next());
        }
        months
    }
}

/// An hour as a record's bucket key: `2026-12-07T15` (UTC).
fn hour_key(hour: Timestamp) -> String {
    hour.strftime("%Y-%m-%dT%H").to_string()
}

fn parse_hour_key(key: &str) -> Option<Timestamp> {
    let at: Timestamp = format!("{key}:00:00Z").parse().ok()?;
    (hour_of(at) == at).then_some(at)
}

/// Values rounded to thousandths: what a bill needs, in fewer characters.
fn rounded(totals: &UsageTotals) -> [f64; 7] {
    totals.values().map(|value| (value * 1000.0).round() / 1000.0)
}

fn json_array(values: &[f64; 7]) -> String {
    serde_json::to_string(values).unwrap_or_else(|_| "[0,0,0,0,0,0,0]".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("time")
    }

    fn cluster() -> Accounted {
        Accounted {
            instance_id: "vc-1".to_owned(),
            kind: Kind::VirtualCluster,
            service: "caas".to_owned(),
            plan: "small".to_owned(),
            organization: "org".to_owned(),
            space: "space".to_owned(),
        }
    }

    const BOUND: SignedDuration = SignedDuration::from_secs(900);

    fn one_core() -> Rates {
        Rates { cpu_cores: 1.0, ..Rates::default() }
    }

    /// Samples every 30 s from `from` to `to` (both included).
    fn sampled(pending: &mut Pending, from: &str, to: &str) {
        let (mut t, to) = (at(from), at(to));
        while t <= to {
            pending.sample(t, one_core(), BOUND);
            t = t.checked_add(SignedDuration::from_secs(30)).expect("time");
        }
    }

    #[test]
    fn two_replicas_count_each_span_once_whichever_writes_first() {
        let month = Month::of(at("2026-12-07T15:00:00Z"));
        let mut record = UsageRecord::new(cluster(), month, UsageTotals::default());
        // Both replicas sample the same pod burning one core, a few seconds apart.
        let (mut a, mut b) = (Pending::default(), Pending::default());
        sampled(&mut a, "2026-12-07T15:00:00Z", "2026-12-07T15:05:00Z");
        sampled(&mut b, "2026-12-07T15:00:10Z", "2026-12-07T15:05:10Z");
        // A writes first: 300 s. B read the record before A wrote, so its write fails; A's write is what counts.
        let read_by_b = record.clone();
        assert!(record.count(&a, BOUND));
        a.settle(&record);
        assert_eq!(record.through, Some(at("2026-12-07T15:05:00Z")));
        assert_eq!(record.lifetime.cpu_core_seconds, 300.0);
        assert!(a.segments.is_empty());
        let mut lost = read_by_b;
        assert!(lost.count(&b, BOUND), "B counted in its own copy, which the precondition refuses to write");
        // B reads again: only what it sampled after A's `through` is left to count.
        b.settle(&record);
        assert_eq!(b.segments.iter().map(|s| s.end.duration_since(s.start).as_secs()).sum::<i64>(), 10);
        sampled(&mut b, "2026-12-07T15:05:40Z", "2026-12-07T15:10:10Z");
        assert!(record.count(&b, BOUND));
        b.settle(&record);
        // A samples on; its spans before B's `through` are dropped, not counted again.
        sampled(&mut a, "2026-12-07T15:05:30Z", "2026-12-07T15:10:30Z");
        a.settle(&record);
        assert!(record.count(&a, BOUND));
        assert_eq!(record.through, Some(at("2026-12-07T15:10:30Z")));
        assert_eq!(record.lifetime.cpu_core_seconds, 630.0, "15:00:00 to 15:10:30, each second once");
        assert_eq!(record.month_totals().cpu_core_seconds, 630.0);
    }

    #[test]
    fn after_a_restart_a_short_gap_is_filled_at_the_first_rate_and_a_long_one_is_not() {
        let month = Month::of(at("2026-12-07T15:00:00Z"));
        let mut record = UsageRecord::new(cluster(), month, UsageTotals::default());
        record.through = Some(at("2026-12-07T15:00:00Z"));
        let mut restarted = Pending::default();
        sampled(&mut restarted, "2026-12-07T15:02:00Z", "2026-12-07T15:03:00Z");
        assert!(record.count(&restarted, BOUND));
        assert_eq!(record.lifetime.cpu_core_seconds, 180.0, "120 s of gap at the first sample's rate, 60 s sampled");
        restarted.settle(&record);
        assert_eq!(restarted.first, None);

        let mut record = UsageRecord::new(cluster(), month, UsageTotals::default());
        record.through = Some(at("2026-12-07T15:00:00Z"));
        let mut late = Pending::default();
        sampled(&mut late, "2026-12-07T15:20:00Z", "2026-12-07T15:21:00Z");
        assert!(record.count(&late, BOUND));
        assert_eq!(record.lifetime.cpu_core_seconds, 60.0, "a gap over the bound is left uncounted");
        assert_eq!(record.through, Some(at("2026-12-07T15:21:00Z")));
    }

    #[test]
    fn a_sampler_that_stalled_counts_nothing_for_the_stall() {
        let mut pending = Pending::default();
        pending.sample(at("2026-12-07T15:00:00Z"), one_core(), BOUND);
        pending.sample(at("2026-12-07T15:00:30Z"), one_core(), BOUND);
        pending.sample(at("2026-12-07T16:00:30Z"), one_core(), BOUND);
        pending.sample(at("2026-12-07T16:00:00Z"), one_core(), BOUND);
        assert_eq!(pending.segments.len(), 1);
        assert_eq!(pending.last, Some(at("2026-12-07T16:00:30Z")));
    }

    #[test]
    fn a_span_across_months_goes_to_both_records_and_lifetime_carries_over() {
        let mut pending = Pending::default();
        sampled(&mut pending, "2026-12-31T23:59:30Z", "2027-01-01T00:00:30Z");
        let months: Vec<String> = pending.months().into_iter().map(Month::key).collect();
        assert_eq!(months, ["202612", "202701"]);
        let mut december = UsageRecord::new(cluster(), Month::parse("202612").expect("month"), UsageTotals::default());
        assert!(december.count(&pending, BOUND));
        pending.settle(&december);
        assert_eq!(december.lifetime.cpu_core_seconds, 30.0);
        let mut january = UsageRecord::new(cluster(), Month::parse("202701").expect("month"), december.lifetime);
        assert!(january.count(&pending, BOUND));
        assert_eq!(january.month_totals().cpu_core_seconds, 30.0);
        assert_eq!(january.lifetime.cpu_core_seconds, 60.0);
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let mut pending = Pending::default();
        sampled(&mut pending, "2026-12-07T14:59:00Z", "2026-12-07T15:01:00Z");
        let month = Month::of(at("2026-12-07T15:00:00Z"));
        let mut record = UsageRecord::new(cluster(), month, UsageTotals { gpu_seconds: 5.0, ..UsageTotals::default() });
        record.count(&pending, BOUND);
        let mut config_map = record.to_config_map("caas-broker-system");
        assert_eq!(config_map.metadata.name.as_deref(), Some("usage-vc-1-202612"));
        config_map.metadata.resource_version = Some("7".to_owned());
        let read = UsageRecord::from_config_map(&config_map).expect("a usage record");
        assert_eq!(read.resource_version.as_deref(), Some("7"));
        assert_eq!(UsageRecord { resource_version: None, ..read }, record);
        assert_eq!(RecordHead::from_meta(&config_map.metadata).expect("head").lifetime.gpu_seconds, 5.0);
        config_map.metadata.labels.as_mut().expect("labels").insert(LABEL_MANAGED_BY.into(), "caas-broker".into());
        assert_eq!(UsageRecord::from_config_map(&config_map), None, "an instance's record is not a usage record");
        assert!(record_name(&"x".repeat(80), month).len() <= 63);
    }
}
