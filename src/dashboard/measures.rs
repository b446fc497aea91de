//! How the dashboard writes measured use for people: cores and MiB rather than millicores and bytes, use against
//! requests and limits in percent (or "no limit"), a sparkline of each pod's last hour, the quota's "in use now", the
//! month's usage and the autoscalers' state. The numbers come from [`crate::tenant`] and the broker; this module only
//! words and shapes them.

use std::collections::HashMap;

use super::i18n::Translation;
use super::sparkline::{self, Sparkline, Words};
use crate::lifecycle::usage::{PodHistory, UsageTotals};
use crate::tenant::apps::AutoscalerState;
use crate::tenant::overview::{InUseNow, Measured, QuotaUse, Usage};

const KIB: f64 = 1024.0;
const MIB: f64 = KIB * 1024.0;
const GIB: f64 = MIB * 1024.0;

/// CPU in cores, with as many decimals as make three digits ("0.25 cores", "1.02 cores", "12.5 cores").
#[allow(clippy::cast_precision_loss)]
pub fn cores(text: &Translation, millicores: u64) -> String {
    let cores = millicores as f64 / 1000.0;
    let decimals = if millicores == 0 {
        0
    } else if cores >= 10.0 {
        1
    } else if cores >= 0.1 {
        2
    } else {
        3
    };
    format!("{cores:.decimals$} {}", text.cores)
}

/// Memory in the largest binary unit that keeps it at least 1 ("512 KiB", "245 MiB", "1.50 GiB").
#[allow(clippy::cast_precision_loss)]
pub fn bytes(bytes: u64) -> String {
    let value = bytes as f64;
    if value >= GIB {
        format!("{:.2} GiB", value / GIB)
    } else if value >= MIB {
        format!("{:.0} MiB", value / MIB)
    } else if value >= KIB {
        format!("{:.0} KiB", value / KIB)
    } else {
        format!("{bytes} B")
    }
}

/// An amount of hours with two decimals at most, and its unit ("12.5 core-hours").
fn hours(amount: f64, unit: &str) -> String {
    let text = format!("{amount:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} {unit}")
}

/// One resource's use as shown: what is used now, then against the request and the limit.
pub struct Figures {
    /// In use now, in human units.
    pub used: String,
    /// `request 0.50 cores · 204 %`, or `no request`.
    pub request: String,
    /// `limit 1.00 cores · 102 %`, or `no limit`.
    pub limit: String,
    /// The share for a bar: of the limit, else of the request, at most 100.
    pub meter: Option<u64>,
}

fn figures(text: &Translation, measured: Measured, unit: impl Fn(u64) -> String) -> Figures {
    let against = |word: &str, amount: Option<u64>, percent: Option<u64>, none: &str| match (amount, percent) {
        (Some(amount), Some(percent)) => format!("{word} {} · {percent} %", unit(amount)),
        (Some(amount), None) => format!("{word} {}", unit(amount)),
        (None, _) => none.to_owned(),
    };
    Figures {
        used: unit(measured.used),
        request: against(text.usage_request, measured.request, measured.percent_of_request(), text.no_request),
        limit: against(text.usage_limit, measured.limit, measured.percent_of_limit(), text.no_limit),
        meter: measured.percent_of_limit().or(measured.percent_of_request()).map(|percent| percent.min(100)),
    }
}

/// One workload's row.
pub struct WorkloadRow {
    /// `Deployment` or `StatefulSet`.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// Its pods measured.
    pub pods: usize,
    /// CPU.
    pub cpu: Figures,
    /// Memory.
    pub memory: Figures,
}

/// One pod's row, with its last hour.
pub struct PodRow {
    /// The pod.
    pub name: String,
    /// CPU.
    pub cpu: Figures,
    /// Memory.
    pub memory: Figures,
    /// Its CPU over the last hour, once sampled.
    pub cpu_history: Option<Sparkline>,
    /// Its memory over the last hour, once sampled.
    pub memory_history: Option<Sparkline>,
}

/// The CPU and memory card's content, when the metrics API answers.
pub struct UsageView {
    /// Workload by workload.
    pub workloads: Vec<WorkloadRow>,
    /// Pod by pod.
    pub pods: Vec<PodRow>,
}

/// The card of `usage`, each pod with its sparklines from `history` (the pods the identity sees alone: a pod in
/// `history` but not in `usage` is not shown).
pub fn usage_view(text: &'static Translation, usage: &Usage, history: &[PodHistory]) -> UsageView {
    let history: HashMap<&str, &PodHistory> = history.iter().map(|pod| (pod.pod.as_str(), pod)).collect();
    let cpu = |m| cores(text, m);
    let workloads = usage
        .workloads
        .iter()
        .map(|workload| WorkloadRow {
            kind: workload.owner.kind,
            name: workload.owner.name.clone(),
            pods: workload.pods,
            cpu: figures(text, workload.cpu, cpu),
            memory: figures(text, workload.memory, bytes),
        })
        .collect();
    let pods = usage
        .pods
        .iter()
        .map(|pod| {
            let samples = history.get(pod.pod.as_str()).map_or(&[][..], |history| history.samples.as_slice());
            let series = |pick: fn(&crate::lifecycle::usage::UsageSample) -> u64| -> Vec<(f64, u64)> {
                samples.iter().map(|sample| (sample.at.as_millisecond() as f64 / 1000.0, pick(sample))).collect()
            };
            let words = |what| Words {
                what,
                span: text.last_hour,
                now: text.spark_now,
                max: text.spark_max,
                min: text.spark_min,
                samples: text.spark_samples,
            };
            PodRow {
                name: pod.pod.clone(),
                cpu: figures(text, pod.cpu, cpu),
                memory: figures(text, pod.memory, bytes),
                cpu_history: sparkline::draw(&series(|s| s.cpu_millicores), cpu, &words("CPU")),
                memory_history: sparkline::draw(&series(|s| s.memory_bytes), bytes, &words(text.memory)),
            }
        })
        .collect();
    UsageView { workloads, pods }
}

/// One quota line as shown: the quota's own figures and what is in use now.
pub struct QuotaLine<'a> {
    /// The quota's line.
    pub line: &'a QuotaUse,
    /// In use now, in human units, with its share of the limit; `None` where the resource is not measured.
    pub in_use: Option<(String, u8)>,
    /// A CPU or memory line of a cluster without a metrics API.
    pub in_use_unavailable: bool,
}

/// The quota's lines of `quota`.
pub fn quota_lines<'a>(text: &Translation, quota: &'a [QuotaUse]) -> Vec<QuotaLine<'a>> {
    quota
        .iter()
        .map(|line| {
            let in_use = match line.in_use {
                InUseNow::Cpu { millicores, percent } => Some((cores(text, millicores), percent)),
                InUseNow::Memory { bytes: amount, percent } => Some((bytes(amount), percent)),
                InUseNow::NotMeasured | InUseNow::Unavailable => None,
            };
            QuotaLine { line, in_use, in_use_unavailable: line.in_use == InUseNow::Unavailable }
        })
        .collect()
}

/// One line of the month's usage: what, used, reserved.
pub struct MonthLine {
    /// Its id in the page.
    pub id: &'static str,
    /// What it counts.
    pub what: &'static str,
    /// Used, in hours of its unit (`-` where only a reservation is counted).
    pub used: String,
    /// Reserved, in hours of its unit (`-` where only use is counted).
    pub reserved: String,
}

/// The month usage card's lines of `totals`.
pub fn month_lines(text: &Translation, totals: &UsageTotals) -> Vec<MonthLine> {
    let per_hour = |seconds: f64| seconds / 3600.0;
    let gib_hours = |byte_seconds: f64| byte_seconds / GIB / 3600.0;
    let none = || "-".to_owned();
    vec![
        MonthLine {
            id: "month-cpu",
            what: "CPU",
            used: hours(per_hour(totals.cpu_core_seconds), text.core_hours),
            reserved: hours(per_hour(totals.cpu_requested_core_seconds), text.core_hours),
        },
        MonthLine {
            id: "month-memory",
            what: text.memory,
            used: hours(gib_hours(totals.memory_byte_seconds), text.gib_hours),
            reserved: hours(gib_hours(totals.memory_requested_byte_seconds), text.gib_hours),
        },
        MonthLine {
            id: "month-gpu",
            what: "GPU",
            used: none(),
            reserved: hours(per_hour(totals.gpu_seconds), text.gpu_hours),
        },
        MonthLine {
            id: "month-storage",
            what: text.storage,
            used: none(),
            reserved: hours(gib_hours(totals.storage_byte_seconds), text.gib_hours),
        },
        MonthLine {
            id: "month-sessions",
            what: text.streaming_sessions,
            used: hours(per_hour(totals.session_pod_seconds), text.hours_unit),
            reserved: none(),
        },
    ]
}

/// One autoscaler as shown.
pub struct AutoscalerLine {
    /// The app it scales, `Kind/name`.
    pub app: String,
    /// `87 % / 50 %`, `not measured / 50 %`.
    pub cpu: String,
    /// `2 → 3`.
    pub pods: String,
    /// `1–4`.
    pub range: String,
    /// Whether it says it cannot scale.
    pub inactive: bool,
}

/// The autoscalers' lines of `states`.
pub fn autoscaler_lines(text: &Translation, states: &[AutoscalerState]) -> Vec<AutoscalerLine> {
    let percent = |value: Option<i32>, none: &str| value.map_or_else(|| none.to_owned(), |value| format!("{value} %"));
    states
        .iter()
        .map(|state| AutoscalerLine {
            app: format!("{}/{}", state.target_kind, state.target),
            cpu: format!(
                "{} / {}",
                percent(state.current_cpu_percent, text.autoscaler_unmeasured),
                percent(state.target_cpu_percent, "-")
            ),
            pods: format!("{} → {}", state.current_replicas, state.desired_replicas),
            range: format!("{}–{}", state.min, state.max),
            inactive: state.scaling_active == Some(false),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::i18n::{EN, KO};
    use super::*;
    use crate::lifecycle::usage::UsageSample;
    use crate::tenant::overview::{Owner, PodUsage, WorkloadUsage};

    #[test]
    fn numbers_are_written_in_human_units() {
        assert_eq!(cores(&EN, 1020), "1.02 cores");
        assert_eq!(cores(&EN, 250), "0.25 cores");
        assert_eq!(cores(&EN, 3), "0.003 cores");
        assert_eq!(cores(&EN, 0), "0 cores");
        assert_eq!(cores(&EN, 12_500), "12.5 cores");
        assert_eq!(cores(&KO, 1020), "1.02 코어");
        assert_eq!(bytes(245 * 1024 * 1024 + 1000), "245 MiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024 / 2), "1.50 GiB");
        assert_eq!(bytes(512 * 1024), "512 KiB");
        assert_eq!(bytes(12), "12 B");
        assert_eq!(hours(2.5, "core-hours"), "2.5 core-hours");
        assert_eq!(hours(0.0, "hours"), "0 hours");
    }

    fn measured(used: u64, request: Option<u64>, limit: Option<u64>) -> Measured {
        Measured { used, request, limit }
    }

    #[test]
    fn use_is_shown_against_request_and_limit_or_says_there_is_none() {
        let usage = Usage {
            pods: vec![PodUsage {
                pod: "burn".into(),
                owner: None,
                cpu: measured(1020, Some(100), None),
                memory: measured(245 * 1024 * 1024, Some(256 * 1024 * 1024), Some(512 * 1024 * 1024)),
            }],
            workloads: vec![WorkloadUsage {
                owner: Owner { kind: "Deployment", name: "web".into() },
                pods: 2,
                cpu: measured(400, None, Some(2000)),
                memory: measured(0, None, None),
            }],
            cpu_millicores: 1420,
            memory_bytes: 245 * 1024 * 1024,
        };
        let view = usage_view(&EN, &usage, &[]);
        let pod = &view.pods[0];
        assert_eq!(pod.cpu.used, "1.02 cores");
        assert_eq!(pod.cpu.request, "request 0.10 cores · 1020 %", "above the request is said as it is");
        assert_eq!(pod.cpu.limit, "no limit");
        assert_eq!(pod.cpu.meter, Some(100), "the bar stops at full");
        assert_eq!((pod.memory.used.as_str(), pod.memory.limit.as_str()), ("245 MiB", "limit 512 MiB · 47 %"));
        assert_eq!(pod.memory.meter, Some(47), "the bar is of the limit when there is one");
        assert!(pod.cpu_history.is_none() && pod.memory_history.is_none(), "no history yet");
        let web = &view.workloads[0];
        assert_eq!((web.kind, web.name.as_str(), web.pods), ("Deployment", "web", 2));
        assert_eq!((web.cpu.request.as_str(), web.cpu.limit.as_str()), ("no request", "limit 2.00 cores · 20 %"));
        assert_eq!(web.memory.meter, None);
    }

    #[test]
    fn only_pods_the_identity_sees_get_their_history_drawn() {
        let usage = Usage {
            pods: vec![PodUsage {
                pod: "seen".into(),
                owner: None,
                cpu: measured(900, None, None),
                memory: measured(1024 * 1024, None, None),
            }],
            ..Usage::default()
        };
        let at = |seconds| jiff::Timestamp::from_second(seconds).expect("time");
        let sample = |seconds, cpu_millicores| UsageSample { at: at(seconds), cpu_millicores, memory_bytes: 1 << 20 };
        let history = vec![
            PodHistory { pod: "seen".into(), samples: vec![sample(0, 1000), sample(30, 900)] },
            PodHistory { pod: "hidden".into(), samples: vec![sample(0, 5)] },
        ];
        let view = usage_view(&EN, &usage, &history);
        assert_eq!(view.pods.len(), 1);
        let cpu = view.pods[0].cpu_history.as_ref().expect("drawn");
        assert_eq!(cpu.title, "CPU, last hour: now 0.90 cores, highest 1.00 cores, lowest 0.90 cores (samples: 2)");
        let memory = view.pods[0].memory_history.as_ref().expect("drawn");
        assert!(memory.title.starts_with("Memory, last hour: now 1 MiB"), "{}", memory.title);
    }

    #[test]
    fn the_month_is_counted_in_hours_of_each_unit() {
        let totals = UsageTotals {
            cpu_core_seconds: 9000.0,
            memory_byte_seconds: 2.0 * GIB * 3600.0,
            cpu_requested_core_seconds: 36_000.0,
            memory_requested_byte_seconds: 4.0 * GIB * 3600.0,
            gpu_seconds: 1800.0,
            storage_byte_seconds: 10.0 * GIB * 7200.0,
            session_pod_seconds: 5400.0,
        };
        let lines: Vec<_> = month_lines(&EN, &totals)
            .into_iter()
            .map(|line| format!("{}: {} | {}", line.what, line.used, line.reserved))
            .collect();
        assert_eq!(
            lines,
            [
                "CPU: 2.5 core-hours | 10 core-hours",
                "Memory: 2 GiB-hours | 4 GiB-hours",
                "GPU: - | 0.5 GPU-hours",
                "Storage: - | 20 GiB-hours",
                "Streaming sessions: 1.5 hours | -",
            ]
        );
        assert_eq!(month_lines(&KO, &totals)[0].used, "2.5 코어·시간");
    }

    #[test]
    fn an_autoscaler_shows_its_measure_against_its_target_and_its_pods() {
        let state = AutoscalerState {
            name: "web".into(),
            target_kind: "Deployment".into(),
            target: "web".into(),
            min: 1,
            max: 4,
            target_cpu_percent: Some(50),
            current_cpu_percent: None,
            current_replicas: 1,
            desired_replicas: 1,
            scaling_active: Some(false),
        };
        let line = &autoscaler_lines(&EN, &[state])[0];
        assert_eq!(
            (line.app.as_str(), line.cpu.as_str(), line.pods.as_str(), line.range.as_str(), line.inactive),
            ("Deployment/web", "not measured / 50 %", "1 → 1", "1–4", true)
        );
    }
}
