//! Turning samples into usage: each sample gives rates (cores, bytes, GPUs, pods in use or reserved right now), a
//! span between two samples is counted at the later sample's rates (the metrics API's figures are averages over the
//! window before it), and every span is split at UTC hour boundaries into hourly buckets.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use super::model::UsageTotals;

/// What is in use and reserved at one moment, per second: integrating it over a span gives [`UsageTotals`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    /// Cores in use (metrics API); 0 when it did not answer (use is then not counted).
    pub cpu_cores: f64,
    /// Bytes in use (working set).
    pub memory_bytes: f64,
    /// Cores requested by running pods.
    pub cpu_requested_cores: f64,
    /// Bytes requested by running pods.
    pub memory_requested_bytes: f64,
    /// GPUs requested by running pods.
    pub gpus: f64,
    /// Bytes claimed by PersistentVolumeClaims.
    pub storage_bytes: f64,
    /// Streaming sessions' pods running.
    pub session_pods: f64,
}

impl Rates {
    /// What these rates amount to over `seconds`.
    pub fn over(&self, seconds: f64) -> UsageTotals {
        UsageTotals {
            cpu_core_seconds: self.cpu_cores * seconds,
            memory_byte_seconds: self.memory_bytes * seconds,
            cpu_requested_core_seconds: self.cpu_requested_cores * seconds,
            memory_requested_byte_seconds: self.memory_requested_bytes * seconds,
            gpu_seconds: self.gpus * seconds,
            storage_byte_seconds: self.storage_bytes * seconds,
            session_pod_seconds: self.session_pods * seconds,
        }
    }

    /// Adds `other`'s rates (a pod's to its namespace's).
    pub fn add(&mut self, other: &Rates) {
        self.cpu_cores += other.cpu_cores;
        self.memory_bytes += other.memory_bytes;
        self.cpu_requested_cores += other.cpu_requested_cores;
        self.memory_requested_bytes += other.memory_requested_bytes;
        self.gpus += other.gpus;
        self.storage_bytes += other.storage_bytes;
        self.session_pods += other.session_pods;
    }
}

/// A span of time counted at one set of rates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    /// Where it starts.
    pub start: Timestamp,
    /// Where it ends (after `start`).
    pub end: Timestamp,
    /// Its rates.
    pub rates: Rates,
}

impl Segment {
    /// The part of this segment within `[from, to)`, if any.
    pub fn within(&self, from: Timestamp, to: Timestamp) -> Option<Segment> {
        let (start, end) = (self.start.max(from), self.end.min(to));
        (start < end).then_some(Segment { start, end, rates: self.rates })
    }
}

/// Usage per UTC hour, by the hour's start.
pub type Hours = BTreeMap<Timestamp, UsageTotals>;

/// The start of the UTC hour `at` falls in.
pub fn hour_of(at: Timestamp) -> Timestamp {
    Timestamp::from_second(at.as_second().div_euclid(3600) * 3600).unwrap_or(at)
}

/// Adds `segment` to `hours`, split at hour boundaries; returns what it added in all.
pub fn add_segment(hours: &mut Hours, segment: &Segment) -> UsageTotals {
    let mut added = UsageTotals::default();
    let mut at = segment.start;
    while at < segment.end {
        let hour = hour_of(at);
        let next = hour.checked_add(SignedDuration::from_hours(1)).unwrap_or(segment.end).min(segment.end);
        let counted = segment.rates.over(next.duration_since(at).as_secs_f64());
        *hours.entry(hour).or_default() += counted;
        added += counted;
        at = next;
    }
    added
}

/// A UTC calendar month: what one usage record covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    /// The year.
    pub year: i16,
    /// The month, 1 to 12.
    pub month: i8,
}

impl Month {
    /// The month `at` falls in.
    pub fn of(at: Timestamp) -> Month {
        let date = at.to_zoned(jiff::tz::TimeZone::UTC).date();
        Month { year: date.year(), month: date.month() }
    }

    /// When it starts.
    pub fn start(self) -> Timestamp {
        jiff::civil::date(self.year, self.month, 1)
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map_or(Timestamp::MIN, |zoned| zoned.timestamp())
    }

    /// The month after.
    pub fn next(self) -> Month {
        if self.month == 12 { Month { year: self.year + 1, month: 1 } } else { Month { month: self.month + 1, ..self } }
    }

    /// The month before.
    pub fn previous(self) -> Month {
        if self.month == 1 { Month { year: self.year - 1, month: 12 } } else { Month { month: self.month - 1, ..self } }
    }

    /// When it ends (the next month's start).
    pub fn end(self) -> Timestamp {
        self.next().start()
    }

    /// Months from `self` back to `other`, 0 when equal (negative when `other` is later).
    pub fn since(self, other: Month) -> i32 {
        (i32::from(self.year) - i32::from(other.year)) * 12 + i32::from(self.month) - i32::from(other.month)
    }

    /// `yyyymm`, as record names and labels write it.
    pub fn key(self) -> String {
        format!("{:04}{:02}", self.year, self.month)
    }

    /// The month a `yyyymm` key names.
    pub fn parse(key: &str) -> Option<Month> {
        if key.len() != 6 || !key.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (year, month) = (key[..4].parse().ok()?, key[4..].parse().ok()?);
        (1..=12).contains(&month).then_some(Month { year, month })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("time")
    }

    #[test]
    fn a_span_across_an_hour_is_split_at_the_hour() {
        let mut hours = Hours::new();
        let rates = Rates { cpu_cores: 1.0, memory_bytes: 100.0, ..Rates::default() };
        let added = add_segment(
            &mut hours,
            &Segment { start: at("2026-12-07T14:59:30Z"), end: at("2026-12-07T15:00:30Z"), rates },
        );
        assert_eq!(added.cpu_core_seconds, 60.0);
        assert_eq!(hours.len(), 2);
        assert_eq!(hours[&at("2026-12-07T14:00:00Z")].cpu_core_seconds, 30.0);
        assert_eq!(hours[&at("2026-12-07T15:00:00Z")].cpu_core_seconds, 30.0);
        assert_eq!(hours[&at("2026-12-07T15:00:00Z")].memory_byte_seconds, 3000.0);
    }

    #[test]
    fn a_long_span_fills_every_hour_it_crosses() {
        let mut hours = Hours::new();
        let rates = Rates { gpus: 2.0, ..Rates::default() };
        add_segment(&mut hours, &Segment { start: at("2026-12-07T10:30:00Z"), end: at("2026-12-07T13:15:00Z"), rates });
        let gpu: Vec<f64> = hours.values().map(|t| t.gpu_seconds).collect();
        assert_eq!(gpu, [3600.0, 7200.0, 7200.0, 1800.0]);
    }

    #[test]
    fn an_empty_or_reversed_span_counts_nothing() {
        let mut hours = Hours::new();
        let rates = Rates { cpu_cores: 1.0, ..Rates::default() };
        let t = at("2026-12-07T10:30:00Z");
        assert_eq!(add_segment(&mut hours, &Segment { start: t, end: t, rates }), UsageTotals::default());
        assert!(hours.is_empty());
        let segment = Segment { start: t, end: at("2026-12-07T10:31:00Z"), rates };
        assert_eq!(segment.within(at("2026-12-07T10:31:00Z"), at("2026-12-07T11:00:00Z")), None);
        let cut = segment.within(at("2026-12-07T10:30:30Z"), at("2026-12-07T11:00:00Z")).expect("a part");
        assert_eq!(cut.start, at("2026-12-07T10:30:30Z"));
    }

    #[test]
    fn months_name_their_records_and_bound_their_spans() {
        let december = Month::of(at("2026-12-31T23:59:59Z"));
        assert_eq!(december.key(), "202612");
        assert_eq!(Month::parse("202612"), Some(december));
        assert_eq!(december.end(), at("2027-01-01T00:00:00Z"));
        assert_eq!(december.next().key(), "202701");
        assert_eq!(december.next().previous(), december);
        assert_eq!(december.next().since(Month::parse("202601").expect("month")), 12);
        for bad in ["2026", "202613", "202600", "20261a", "2026123"] {
            assert_eq!(Month::parse(bad), None, "{bad}");
        }
    }
}
