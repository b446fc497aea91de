//! The operator's usage API on the OSB listener, behind the broker's own credentials: `GET /usage?from=&to=` (RFC
//! 3339 times, at most 31 days apart) with an optional `instance_id`, answering each instance's usage hour by hour as
//! JSON, or as CSV (`Accept: text/csv` or `format=csv`: one row per instance and hour). It needs no
//! `X-Broker-API-Version`: it is no OSB call, and what reads it (a billing job, `curl`) sends none.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::extract::OsbQuery;
use super::handlers::BrokerState;
use super::middleware::{self, Credentials};
use super::{OsbError, OsbResult};
use crate::lifecycle::usage::UsageTotals;
use crate::lifecycle::usage::report::{InstanceUsage, UsageRange};

/// `/usage`, behind `credentials`.
pub fn router(brokers: Vec<BrokerState>, credentials: Arc<Credentials>) -> axum::Router {
    axum::Router::new()
        .route("/usage", get(usage))
        .with_state(Arc::new(brokers))
        .layer(axum::middleware::from_fn_with_state(credentials, middleware::authenticate))
}

/// What `/usage` takes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsageQuery {
    from: String,
    to: String,
    instance_id: Option<String>,
    format: Option<String>,
}

/// How the answer is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
}

impl Format {
    /// `format=` when given, else `Accept`: CSV when it names `text/csv`.
    fn chosen(format: Option<&str>, headers: &HeaderMap) -> OsbResult<Format> {
        match format {
            Some("json") => Ok(Format::Json),
            Some("csv") => Ok(Format::Csv),
            Some(other) => Err(OsbError::Malformed(format!("format {other:?} is not json or csv"))),
            None => {
                let accept = headers.get(ACCEPT).and_then(|value| value.to_str().ok()).unwrap_or_default();
                Ok(if accept.split(',').any(|kind| kind.trim().starts_with("text/csv")) {
                    Format::Csv
                } else {
                    Format::Json
                })
            }
        }
    }
}

/// `GET /usage`.
async fn usage(
    State(brokers): State<Arc<Vec<BrokerState>>>,
    headers: HeaderMap,
    OsbQuery(query): OsbQuery<UsageQuery>,
) -> OsbResult<Response> {
    let format = Format::chosen(query.format.as_deref(), &headers)?;
    let time = |name: &str, text: &str| {
        text.parse::<jiff::Timestamp>().map_err(|error| {
            OsbError::Malformed(format!("{name} {text:?} is not an RFC 3339 time (2026-12-01T00:00:00Z): {error}"))
        })
    };
    let range = UsageRange::new(time("from", &query.from)?, time("to", &query.to)?)?;
    if let Some(id) = &query.instance_id
        && (id.is_empty() || id.len() > 256)
    {
        return Err(OsbError::Malformed("instance_id must be 1 to 256 characters".to_owned()));
    }
    // Each cluster keeps the usage of its own instances.
    let mut report = Vec::new();
    for broker in brokers.iter() {
        report.extend(broker.usage_report(&range, query.instance_id.as_deref()).await?);
    }
    Ok(match format {
        Format::Json => Json(serde_json::json!({
            "from": range.from().to_string(),
            "to": range.to().to_string(),
            "instances": report,
        }))
        .into_response(),
        Format::Csv => {
            let body = csv(&report).map_err(|error| OsbError::Malformed(format!("cannot write CSV: {error}")))?;
            ([(CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"))], body).into_response()
        }
    })
}

/// One row per instance and hour: the hour, who, and each counter.
fn csv(report: &[InstanceUsage]) -> Result<String, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let head = ["hour", "instance_id", "kind", "service", "plan", "organization", "space"];
    writer.write_record(head.iter().chain(&UsageTotals::NAMES))?;
    for usage in report {
        let who = &usage.instance;
        for hour in &usage.hours {
            let mut row = vec![
                hour.hour.clone(),
                who.instance_id.clone(),
                who.kind.as_str().to_owned(),
                who.service.clone(),
                who.plan.clone(),
                who.organization.clone(),
                who.space.clone(),
            ];
            row.extend(hour.usage.values().iter().map(|value| value.to_string()));
            writer.write_record(&row)?;
        }
    }
    let bytes = writer.into_inner().map_err(|error| csv::Error::from(error.into_error()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::usage::record::{Accounted, Kind};
    use crate::lifecycle::usage::report::HourUsage;

    #[test]
    fn csv_rows_are_one_per_instance_and_hour_with_odd_ids_quoted() {
        let usage = InstanceUsage {
            instance: Accounted {
                instance_id: "a,\"b\"".to_owned(),
                kind: Kind::Workload,
                service: "container-app".to_owned(),
                plan: "small".to_owned(),
                organization: "org".to_owned(),
                space: "space".to_owned(),
            },
            totals: UsageTotals::default(),
            hours: vec![HourUsage {
                hour: "2026-12-07T15:00:00Z".to_owned(),
                usage: UsageTotals { cpu_core_seconds: 61.5, ..UsageTotals::default() },
            }],
        };
        let text = csv(&[usage]).expect("csv");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "hour,instance_id,kind,service,plan,organization,space,cpu_core_seconds,\
            memory_byte_seconds,cpu_requested_core_seconds,memory_requested_byte_seconds,gpu_seconds,\
            storage_byte_seconds,session_pod_seconds"
        );
        assert_eq!(
            lines[1],
            "2026-12-07T15:00:00Z,\"a,\"\"b\"\"\",workload,container-app,small,org,space,61.5,0,0,0,0,0,0"
        );
        assert_eq!(lines.len(), 2);
    }

    #[test]
    fn the_format_is_asked_for_by_parameter_or_accept() {
        let mut headers = HeaderMap::new();
        assert_eq!(Format::chosen(None, &headers).ok(), Some(Format::Json));
        headers.insert(ACCEPT, HeaderValue::from_static("text/csv"));
        assert_eq!(Format::chosen(None, &headers).ok(), Some(Format::Csv));
        assert_eq!(Format::chosen(Some("json"), &headers).ok(), Some(Format::Json));
        assert!(matches!(Format::chosen(Some("xml"), &headers), Err(OsbError::Malformed(_))));
    }
}
