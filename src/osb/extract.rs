//! Extractors that turn every malformed request into an OSB error body instead of axum's plain-text rejections:
//! bodies (content type, size limit, JSON), query strings, and the originating identity.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::OsbError;
use super::identity;
use crate::lifecycle::model::OriginatingIdentity;

/// A JSON body: 400 for a wrong content type or malformed JSON, 413 over the configured limit.
pub struct OsbJson<T>(pub T);

/// The largest body accepted, set once by the router as a request extension.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OsbJson<T> {
    type Rejection = OsbError;

    async fn from_request(request: Request, state: &S) -> Result<Self, OsbError> {
        if let Some(content_type) = request.headers().get(CONTENT_TYPE) {
            let content_type = content_type.to_str().unwrap_or_default().to_ascii_lowercase();
            let essence = content_type.split(';').next().unwrap_or_default().trim();
            if essence != "application/json" && !(essence.starts_with("application/") && essence.ends_with("+json")) {
                return Err(OsbError::Malformed(format!("the body must be application/json, not {essence:?}")));
            }
        }
        let limit = request.extensions().get::<BodyLimit>().map_or(1 << 20, |limit| limit.0);
        let body = request.into_body();
        let bytes = axum::body::to_bytes(body, limit).await.map_err(|error| {
            if caused_by::<http_body_util::LengthLimitError>(&error) {
                OsbError::PayloadTooLarge(limit)
            } else if caused_by::<tower_http::timeout::TimeoutError>(&error) {
                OsbError::BodyTimeout
            } else {
                OsbError::Malformed("the request body could not be read".to_owned())
            }
        })?;
        let _ = state;
        parse(&bytes).map(OsbJson)
    }
}

/// Whether `E` is among the causes of `error`.
fn caused_by<E: std::error::Error + 'static>(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if current.is::<E>() {
            return true;
        }
        source = current.source();
    }
    false
}

fn parse<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, OsbError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return serde_json::from_slice(b"{}").map_err(|e| OsbError::Malformed(format!("the body is required: {e}")));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let place = if path == "." { String::new() } else { format!("{path}: ") };
        OsbError::Malformed(format!("the body is not valid for this request: {place}{}", e.inner()))
    })?;
    deserializer.end().map_err(|e| OsbError::Malformed(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

/// A query string; 400 with the reason when it does not parse.
pub struct OsbQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for OsbQuery<T> {
    type Rejection = OsbError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, OsbError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| OsbQuery(value))
            .map_err(|rejection| OsbError::Malformed(format!("invalid query string: {}", rejection.body_text())))
    }
}

/// The originating identity, when the platform sent a well-formed one.
pub struct Identity(pub Option<OriginatingIdentity>);

impl<S: Send + Sync> FromRequestParts<S> for Identity {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(identity::HEADER).and_then(|value| value.to_str().ok());
        let identity = header.and_then(|value| {
            let parsed = identity::parse(value);
            if parsed.is_none() {
                tracing::warn!("ignoring a malformed X-Broker-API-Originating-Identity header");
            }
            parsed
        });
        Ok(Identity(identity))
    }
}

/// Path parameters (percent-decoded ids); 400 when they do not decode.
pub struct OsbPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for OsbPath<T> {
    type Rejection = OsbError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, OsbError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| OsbPath(value))
            .map_err(|rejection| OsbError::Malformed(format!("invalid id in the path: {}", rejection.body_text())))
    }
}
