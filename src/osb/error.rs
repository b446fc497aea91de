//! How a failure becomes an OSB answer. The broker's errors ([`lifecycle::Error`]) and the refusals only the protocol
//! has (credentials, API version, a body that does not parse) are [`OsbError`]s, and each maps to the status and
//! `{"error", "description"}` body the OSB specification requires, in exactly one place.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::lifecycle;

/// A request the OSB API refuses or could not carry out, as the platform will see it.
#[derive(Debug, thiserror::Error)]
pub enum OsbError {
    /// What the broker refused or failed at.
    #[error(transparent)]
    Broker(#[from] lifecycle::Error),
    /// A body, query string or path that does not parse, or a body that is not JSON: refused before the broker sees
    /// the request.
    #[error("{0}")]
    Malformed(String),
    /// Missing or wrong credentials.
    #[error("missing or invalid credentials")]
    Unauthorized,
    /// A path the OSB API does not have.
    #[error("no such OSB endpoint")]
    NoSuchEndpoint,
    /// The `X-Broker-API-Version` header is missing or names an unsupported version.
    #[error("{0}")]
    PreconditionFailed(String),
    /// The body is over the configured limit.
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The body paused longer than the listener allows (`limits.body_timeout_seconds`) before it was whole.
    #[error("the request body stopped arriving before it was complete: send it at once")]
    BodyTimeout,
    /// The broker's answer could not be turned into JSON.
    #[error("an answer could not be serialized: {0}")]
    Unserializable(serde_json::Error),
}

/// The OSB error body.
#[derive(Debug, Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    description: String,
}

impl OsbError {
    /// The HTTP status the specification prescribes for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            OsbError::Broker(error) => match error {
                lifecycle::Error::BadRequest(_) => StatusCode::BAD_REQUEST,
                lifecycle::Error::NotFound(_) => StatusCode::NOT_FOUND,
                lifecycle::Error::Gone(_) => StatusCode::GONE,
                lifecycle::Error::Conflict(_) => StatusCode::CONFLICT,
                lifecycle::Error::AsyncRequired
                | lifecycle::Error::DeletionContinues(_)
                | lifecycle::Error::Concurrency(_)
                | lifecycle::Error::RequiresApp
                | lifecycle::Error::MaintenanceInfoConflict(_)
                | lifecycle::Error::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                lifecycle::Error::Denied { .. } => StatusCode::FORBIDDEN,
                lifecycle::Error::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
                lifecycle::Error::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            },
            OsbError::Malformed(_) => StatusCode::BAD_REQUEST,
            OsbError::Unauthorized => StatusCode::UNAUTHORIZED,
            OsbError::NoSuchEndpoint => StatusCode::NOT_FOUND,
            OsbError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            OsbError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            OsbError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            OsbError::Unserializable(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The CamelCase error code; the four the specification names are spelled exactly as it does.
    pub fn code(&self) -> &'static str {
        match self {
            OsbError::Broker(error) => match error {
                lifecycle::Error::BadRequest(_) => "BadRequest",
                lifecycle::Error::NotFound(_) => "NotFound",
                lifecycle::Error::Gone(_) => "Gone",
                lifecycle::Error::Conflict(_) => "Conflict",
                lifecycle::Error::AsyncRequired | lifecycle::Error::DeletionContinues(_) => "AsyncRequired",
                lifecycle::Error::Concurrency(_) => "ConcurrencyError",
                lifecycle::Error::RequiresApp => "RequiresApp",
                lifecycle::Error::MaintenanceInfoConflict(_) => "MaintenanceInfoConflict",
                lifecycle::Error::Unprocessable { code, .. } => code,
                lifecycle::Error::Denied { .. } => "Forbidden",
                lifecycle::Error::Unavailable { .. } => "ServiceUnavailable",
                lifecycle::Error::Internal { .. } => "InternalError",
            },
            OsbError::Malformed(_) => "BadRequest",
            OsbError::Unauthorized => "Unauthorized",
            OsbError::NoSuchEndpoint => "NotFound",
            OsbError::PreconditionFailed(_) => "PreconditionFailed",
            OsbError::PayloadTooLarge(_) => "PayloadTooLarge",
            OsbError::BodyTimeout => "RequestTimeout",
            OsbError::Unserializable(_) => "InternalError",
        }
    }
}

impl IntoResponse for OsbError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, code = self.code(), "request failed");
        } else {
            tracing::info!(error = %self, code = self.code(), "request refused");
        }
        let description = if status == StatusCode::INTERNAL_SERVER_ERROR {
            "the broker failed unexpectedly; the request id in the broker's log has the details".to_owned()
        } else {
            self.to_string()
        };
        (status, Json(ErrorBody { error: self.code(), description })).into_response()
    }
}

/// The result of an OSB request.
pub type OsbResult<T> = Result<T, OsbError>;
