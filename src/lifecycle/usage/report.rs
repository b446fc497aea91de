//! Usage for an operator: each instance's hourly buckets over a range of time, read from the records (which outlive
//! their instances) and summed.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::ListParams;
use serde::Serialize;

use super::buckets::{Month, hour_of};
use super::model::UsageTotals;
use super::record::{Accounted, LABEL_USAGE_MONTH, MANAGED_BY_USAGE, UsageRecord};
use crate::k8s::is_not_found;
use crate::k8s::names::{self, LABEL_INSTANCE, LABEL_MANAGED_BY};
use crate::lifecycle::{Broker, Error, Result};

/// Records read per request to the apiserver.
const PAGE: u32 = 50;

/// A range of time an operator asks usage for: the hours that start in `[from, to)` (`from` taken back to its hour).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageRange {
    from: Timestamp,
    to: Timestamp,
}

impl UsageRange {
    /// The longest range one request may ask for: a whole month of any length, so that one answer holds a bill.
    pub const MAX: SignedDuration = SignedDuration::from_hours(31 * 24);

    /// The range from `from` to `to`; 400 when it is empty or longer than [`UsageRange::MAX`].
    pub fn new(from: Timestamp, to: Timestamp) -> Result<UsageRange> {
        if from >= to {
            return Err(Error::BadRequest(format!("from ({from}) must be before to ({to})")));
        }
        if to.duration_since(from) > UsageRange::MAX {
            return Err(Error::BadRequest("the range may be at most 31 days: ask month by month".to_owned()));
        }
        Ok(UsageRange { from: hour_of(from), to })
    }

    /// Where it starts (an hour's start).
    pub fn from(&self) -> Timestamp {
        self.from
    }

    /// Where it ends.
    pub fn to(&self) -> Timestamp {
        self.to
    }

    /// The months it touches.
    fn months(&self) -> Vec<Month> {
        let last = Month::of(self.to.checked_sub(SignedDuration::from_nanos(1)).unwrap_or(self.to));
        let mut months = vec![Month::of(self.from)];
        while let Some(&month) = months.last()
            && month < last
        {
            months.push(month.next());
        }
        months
    }
}

/// One instance's usage over a range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceUsage {
    /// Who.
    #[serde(flatten)]
    pub instance: Accounted,
    /// The range's totals.
    pub totals: UsageTotals,
    /// Hour by hour, oldest first (hours with nothing counted are left out).
    pub hours: Vec<HourUsage>,
}

/// One hour's usage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HourUsage {
    /// The hour's start (RFC 3339, UTC).
    pub hour: String,
    /// What was used in it.
    #[serde(flatten)]
    pub usage: UsageTotals,
}

impl Broker {
    /// Every instance's usage in `range` (or `instance_id`'s alone), from the records, by instance id.
    pub async fn usage_report(&self, range: &UsageRange, instance_id: Option<&str>) -> Result<Vec<InstanceUsage>> {
        let months: Vec<String> = range.months().into_iter().map(Month::key).collect();
        let mut selector =
            format!("{LABEL_MANAGED_BY}={MANAGED_BY_USAGE},{LABEL_USAGE_MONTH} in ({})", months.join(","));
        if let Some(id) = instance_id {
            selector.push_str(&format!(",{LABEL_INSTANCE}={}", names::label_value(id)));
        }
        let api = Api::<ConfigMap>::namespaced(self.client.clone(), &self.options.broker_namespace);
        let mut params = ListParams::default().labels(&selector).limit(PAGE);
        let mut found: BTreeMap<String, InstanceUsage> = BTreeMap::new();
        loop {
            let page = match api.list(&params).await {
                Err(error) if is_not_found(&error) => break,
                page => page?,
            };
            for record in page.items.iter().filter_map(UsageRecord::from_config_map) {
                if instance_id.is_some_and(|id| id != record.instance.instance_id) {
                    continue;
                }
                let hours: Vec<_> = record.hours.range(range.from..range.to).collect();
                if hours.is_empty() {
                    continue;
                }
                let usage = found.entry(record.instance.instance_id.clone()).or_insert_with(|| InstanceUsage {
                    instance: record.instance.clone(),
                    totals: UsageTotals::default(),
                    hours: Vec::new(),
                });
                for (hour, totals) in hours {
                    usage.totals += *totals;
                    usage.hours.push(HourUsage { hour: hour.to_string(), usage: *totals });
                }
            }
            match page.metadata.continue_.filter(|token| !token.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break,
            }
        }
        let mut report: Vec<InstanceUsage> = found.into_values().collect();
        for usage in &mut report {
            usage.hours.sort_by(|a, b| a.hour.cmp(&b.hour));
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("time")
    }

    #[test]
    fn a_range_is_whole_hours_within_a_month_of_time() {
        let range = UsageRange::new(at("2026-11-30T15:20:00Z"), at("2026-12-01T01:00:00Z")).expect("a range");
        assert_eq!(range.from(), at("2026-11-30T15:00:00Z"));
        assert_eq!(range.months().into_iter().map(Month::key).collect::<Vec<_>>(), ["202611", "202612"]);
        let december = UsageRange::new(at("2026-12-01T00:00:00Z"), at("2027-01-01T00:00:00Z")).expect("a month");
        assert_eq!(december.months(), [Month::parse("202612").expect("month")]);
        for (from, to) in
            [("2026-12-01T00:00:00Z", "2026-12-01T00:00:00Z"), ("2026-12-02T00:00:00Z", "2026-12-01T00:00:00Z")]
        {
            assert!(matches!(UsageRange::new(at(from), at(to)), Err(Error::BadRequest(_))), "{from} {to}");
        }
        let year = UsageRange::new(at("2026-01-01T00:00:00Z"), at("2027-01-01T00:00:00Z"));
        assert!(matches!(year, Err(Error::BadRequest(why)) if why.contains("31 days")));
    }
}
