//! The OSB API version a request declares, and the one table of which response field each version introduced.
//!
//! Clients decode answers into structs written for the version they declare, and some fail on fields they do not
//! know in a shape they do not expect: Kubernetes Service Catalog's Go client (2.14) rejects every bind response that
//! carries 2.15's `endpoints`, whose `ports` are strings where its struct has `[]uint16`. So an answer carries only
//! what the declared version defines. The handlers build each answer for the newest version and [`ApiVersion::shape`]
//! removes, in this one place, every field the declared version does not have.

use std::fmt;

use axum::extract::FromRequestParts;
use axum::http::HeaderName;
use axum::http::request::Parts;
use serde_json::Value;

use super::OsbError;

/// The header a platform declares its OSB API version in.
pub const API_VERSION: HeaderName = HeaderName::from_static("x-broker-api-version");

/// An `X-Broker-API-Version` of major version 2 (the only major the broker accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    minor: u16,
}

impl ApiVersion {
    /// Schemas in the catalog, originating identity.
    pub const V2_13: ApiVersion = ApiVersion { minor: 13 };
    /// GET instance and binding, asynchronous bindings.
    pub const V2_14: ApiVersion = ApiVersion { minor: 14 };
    /// Binding endpoints, maintenance_info, plan-level plan_updateable, maximum_polling_duration (what CF sends).
    pub const V2_15: ApiVersion = ApiVersion { minor: 15 };
    /// Instance and binding metadata, context updates.
    pub const V2_16: ApiVersion = ApiVersion { minor: 16 };
    /// Binding rotation, `renew_before`, instance metadata attributes.
    pub const V2_17: ApiVersion = ApiVersion { minor: 17 };
    /// The newest version the broker speaks: a client declaring a later 2.x gets its answers.
    pub const NEWEST: ApiVersion = ApiVersion::V2_17;
    /// The oldest version the broker claims to speak (older 2.x clients are answered without the newer fields).
    pub const OLDEST: ApiVersion = ApiVersion::V2_13;

    /// Parses `2.<minor>`; `None` for any other major or a malformed value. A minor too large to count is simply
    /// newer than the broker.
    pub fn parse(header: &str) -> Option<ApiVersion> {
        let (major, minor) = header.trim().split_once('.')?;
        if major != "2" || minor.is_empty() || !minor.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(ApiVersion { minor: minor.parse().unwrap_or(u16::MAX) })
    }

    /// Whether answers to this version may carry `field`.
    pub fn has(self, field: &Introduced) -> bool {
        self >= field.since
    }

    /// The oldest version whose answers are the same as this one's: answers depend only on this, so a catalog
    /// serialized once per such version serves every version.
    pub fn canonical(self) -> ApiVersion {
        let newest_known = FIELDS.iter().map(|field| field.since).filter(|since| *since <= self).max();
        newest_known.unwrap_or(ApiVersion { minor: 0 })
    }

    /// Every distinct answer shape, one version each (see [`ApiVersion::canonical`]).
    pub fn shapes() -> Vec<ApiVersion> {
        let mut versions: Vec<ApiVersion> = FIELDS.iter().map(|field| field.since).collect();
        versions.push(ApiVersion { minor: 0 });
        versions.sort();
        versions.dedup();
        versions
    }

    /// Removes from `body`, an answer of kind `kind` built for the newest version, every field this version lacks.
    pub fn shape(self, kind: Body, body: &mut Value) {
        for field in FIELDS.iter().filter(|field| field.body == kind && !self.has(field)) {
            let path: Vec<&str> = field.path.split('.').collect();
            remove(body, &path);
        }
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "2.{}", self.minor)
    }
}

/// Removes the field at `path` (`*` stands for every element of an array).
fn remove(value: &mut Value, path: &[&str]) {
    match path {
        [] => {}
        [last] => {
            if let Value::Object(map) = value {
                map.remove(*last);
            }
        }
        ["*", rest @ ..] => {
            if let Value::Array(items) = value {
                items.iter_mut().for_each(|item| remove(item, rest));
            }
        }
        [key, rest @ ..] => {
            if let Some(child) = value.get_mut(*key) {
                remove(child, rest);
            }
        }
    }
}

/// The answers whose fields depend on the version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// GET /v2/catalog.
    Catalog,
    /// PUT instance (200, 201, 202).
    Provision,
    /// PATCH instance (200, 202).
    Update,
    /// GET instance.
    FetchInstance,
    /// GET instance last_operation.
    InstanceLastOperation,
    /// PUT binding with credentials (200, 201).
    Bind,
    /// PUT binding accepted (202).
    BindAccepted,
    /// GET binding.
    FetchBinding,
}

/// A response field and the version that introduced it.
#[derive(Debug, Clone, Copy)]
pub struct Introduced {
    /// The answer it is part of.
    pub body: Body,
    /// Dotted path from the answer's root; `*` is every element of an array.
    pub path: &'static str,
    /// The first version that defines it.
    pub since: ApiVersion,
}

const fn field(body: Body, path: &'static str, since: ApiVersion) -> Introduced {
    Introduced { body, path, since }
}

/// Every optional response field added by OSB 2.13 or later (from the specification's release notes), whether or not
/// the broker sends it today, so that a field added to an answer later is gated the day it is added. Fields older
/// than 2.13 are always sent. Whole answers of 2.14 endpoints (GET instance, GET binding, binding last_operation) are
/// served to older versions as 2.14 defines them: clients of those versions do not call them.
pub const FIELDS: &[Introduced] = &[
    field(Body::Catalog, "services.*.plans.*.schemas", ApiVersion::V2_13),
    field(Body::Catalog, "services.*.instances_retrievable", ApiVersion::V2_14),
    field(Body::Catalog, "services.*.bindings_retrievable", ApiVersion::V2_14),
    field(Body::Catalog, "services.*.plans.*.plan_updateable", ApiVersion::V2_15),
    field(Body::Catalog, "services.*.plans.*.maximum_polling_duration", ApiVersion::V2_15),
    field(Body::Catalog, "services.*.plans.*.maintenance_info", ApiVersion::V2_15),
    field(Body::Catalog, "services.*.allow_context_updates", ApiVersion::V2_16),
    field(Body::Catalog, "services.*.plans.*.binding_rotatable", ApiVersion::V2_17),
    field(Body::Provision, "metadata", ApiVersion::V2_16),
    field(Body::Provision, "metadata.attributes", ApiVersion::V2_17),
    field(Body::Update, "dashboard_url", ApiVersion::V2_14),
    field(Body::Update, "metadata", ApiVersion::V2_16),
    field(Body::Update, "metadata.attributes", ApiVersion::V2_17),
    field(Body::FetchInstance, "maintenance_info", ApiVersion::V2_15),
    field(Body::FetchInstance, "metadata", ApiVersion::V2_16),
    field(Body::FetchInstance, "metadata.attributes", ApiVersion::V2_17),
    field(Body::InstanceLastOperation, "instance_usable", ApiVersion::V2_16),
    field(Body::InstanceLastOperation, "update_repeatable", ApiVersion::V2_16),
    field(Body::Bind, "endpoints", ApiVersion::V2_15),
    field(Body::Bind, "metadata", ApiVersion::V2_16),
    field(Body::Bind, "metadata.renew_before", ApiVersion::V2_17),
    field(Body::BindAccepted, "operation", ApiVersion::V2_14),
    field(Body::FetchBinding, "endpoints", ApiVersion::V2_15),
    field(Body::FetchBinding, "metadata", ApiVersion::V2_16),
    field(Body::FetchBinding, "metadata.renew_before", ApiVersion::V2_17),
];

impl<S: Send + Sync> FromRequestParts<S> for ApiVersion {
    type Rejection = OsbError;

    /// The version the request declares; the version middleware has already refused anything else with 412.
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, OsbError> {
        let header = parts.headers.get(&API_VERSION).and_then(|value| value.to_str().ok()).unwrap_or_default();
        ApiVersion::parse(header).ok_or_else(|| unsupported(header))
    }
}

/// The 412 for a version the broker does not speak, naming the one to send.
pub fn unsupported(header: &str) -> OsbError {
    let header = header.trim();
    let shown = if header.is_empty() { "missing".to_owned() } else { format!("{header:?}") };
    OsbError::PreconditionFailed(format!(
        "X-Broker-API-Version is {shown}; this broker speaks OSB API 2.x ({} to {}): send {}",
        ApiVersion::OLDEST,
        ApiVersion::NEWEST,
        ApiVersion::NEWEST
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_major_two_only() {
        assert_eq!(ApiVersion::parse("2.14"), Some(ApiVersion::V2_14));
        assert_eq!(ApiVersion::parse(" 2.17 "), Some(ApiVersion::V2_17));
        assert!(ApiVersion::parse("2.99999999") > Some(ApiVersion::NEWEST));
        for bad in ["", "2", "2.", "3.0", "1.14", "two", "2.x", "2.-1"] {
            assert_eq!(ApiVersion::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn answers_lose_exactly_the_fields_newer_than_the_version() {
        let bind = json!({
            "credentials": { "token": "t" },
            "endpoints": [{ "host": "h", "ports": ["443"], "protocol": "tcp" }],
            "metadata": { "expires_at": "a", "renew_before": "b" }
        });
        let keys = |version: ApiVersion| {
            let mut body = bind.clone();
            version.shape(Body::Bind, &mut body);
            body
        };
        assert_eq!(keys(ApiVersion::V2_14), json!({ "credentials": { "token": "t" } }));
        assert_eq!(keys(ApiVersion::V2_15).as_object().map(|o| o.len()), Some(2));
        assert_eq!(keys(ApiVersion::V2_16)["metadata"], json!({ "expires_at": "a" }));
        assert_eq!(keys(ApiVersion::V2_17), bind);
        assert_eq!(keys(ApiVersion::parse("2.40").expect("version")), bind);

        let mut catalog = json!({ "services": [{ "id": "s", "allow_context_updates": true,
            "plans": [{ "id": "p", "binding_rotatable": true, "maintenance_info": { "version": "1.0.0" } }] }] });
        ApiVersion::V2_15.shape(Body::Catalog, &mut catalog);
        assert_eq!(
            catalog,
            json!({ "services": [{ "id": "s", "plans": [{ "id": "p", "maintenance_info": { "version": "1.0.0" } }] }] })
        );
    }

    #[test]
    fn versions_with_the_same_fields_share_a_canonical_version() {
        assert_eq!(ApiVersion::parse("2.12").map(ApiVersion::canonical), ApiVersion::parse("2.0"));
        assert_eq!(ApiVersion::V2_13.canonical(), ApiVersion::V2_13);
        assert_eq!(ApiVersion::parse("2.18").map(ApiVersion::canonical), Some(ApiVersion::V2_17));
        assert_eq!(ApiVersion::shapes().len(), 6);
        assert!(ApiVersion::shapes().iter().all(|version| version.canonical() == *version));
    }
}
