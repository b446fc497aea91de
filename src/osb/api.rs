//! What only the OSB wire has: the query strings of its routes and the body of answers that carry nothing but an
//! operation. The request and answer bodies of the operations themselves are the broker's
//! ([`crate::lifecycle::model`]), which the handlers read and write as they are.

use serde::{Deserialize, Deserializer, Serialize};

/// `accepts_incomplete` and the other query parameters of PUT and PATCH.
#[derive(Debug, Default, Deserialize)]
pub struct AsyncQuery {
    /// Whether the platform polls `last_operation` for an asynchronous answer.
    #[serde(default, deserialize_with = "boolean")]
    pub accepts_incomplete: bool,
}

/// Query of DELETE instance and DELETE binding.
#[derive(Debug, Default, Deserialize)]
pub struct DeleteQuery {
    /// Offering id, mandatory.
    #[serde(default)]
    pub service_id: String,
    /// Plan id, mandatory.
    #[serde(default)]
    pub plan_id: String,
    /// Whether the platform polls `last_operation` for an asynchronous answer.
    #[serde(default, deserialize_with = "boolean")]
    pub accepts_incomplete: bool,
}

/// Query of the `last_operation` endpoints; all are hints.
#[derive(Debug, Default, Deserialize)]
pub struct LastOperationQuery {
    /// Offering id.
    #[serde(default)]
    pub service_id: Option<String>,
    /// Plan id.
    #[serde(default)]
    pub plan_id: Option<String>,
    /// The `operation` the broker returned with its 202.
    #[serde(default)]
    pub operation: Option<String>,
}

/// Query of GET instance and GET binding; hints.
#[derive(Debug, Default, Deserialize)]
pub struct FetchQuery {
    /// Offering id.
    #[serde(default)]
    pub service_id: Option<String>,
    /// Plan id.
    #[serde(default)]
    pub plan_id: Option<String>,
}

fn boolean<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    let text = String::deserialize(deserializer)?;
    match text.as_str() {
        "true" | "True" | "TRUE" => Ok(true),
        "" | "false" | "False" | "FALSE" => Ok(false),
        other => Err(serde::de::Error::custom(format!("expected true or false, got {other:?}"))),
    }
}

/// Body of DELETE and of answers that carry nothing.
#[derive(Debug, Default, Serialize)]
pub struct Empty {
    /// Handed back on `last_operation` while the deletion is in progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
}
