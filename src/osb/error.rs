//! The one error type of the OSB protocol layer. Every failure a handler can meet becomes one of these, and each maps
//! to the status and `{"error", "description"}` body the OSB specification requires, in exactly one place.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A request the broker refuses or could not carry out, as the platform will see it.
#[derive(Debug, thiserror::Error)]
pub enum OsbError {
    /// Malformed body or query, missing mandatory field, unknown service or plan, invalid parameters.
    #[error("{0}")]
    BadRequest(String),
    /// Missing or wrong credentials.
    #[error("missing or invalid credentials")]
    Unauthorized,
    /// The entity does not exist (fetch, last_operation).
    #[error("{0}")]
    NotFound(String),
    /// The instance or binding to delete does not exist; the platform treats this as success.
    #[error("{0}")]
    Gone(String),
    /// The id exists with other attributes.
    #[error("{0}")]
    Conflict(String),
    /// The `X-Broker-API-Version` header is missing or names an unsupported version.
    #[error("{0}")]
    PreconditionFailed(String),
    /// The body is over the configured limit.
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The operation can only be done asynchronously and the platform did not send `accepts_incomplete=true`.
    #[error("this operation requires asynchronous processing: retry with accepts_incomplete=true")]
    AsyncRequired,
    /// A synchronous delete that started but did not finish within the synchronous timeout: not 200 (which means
    /// deleted) but `AsyncRequired`, whose description says that the deletion continues and a repeat follows it.
    #[error("{0}")]
    DeletionContinues(String),
    /// Another operation is in progress on the same instance or binding.
    #[error("{0}")]
    Concurrency(String),
    /// The plan needs an application to bind to.
    #[error("this service plan requires an app_guid to bind to")]
    RequiresApp,
    /// `maintenance_info.version` differs from the catalog's.
    #[error("{0}")]
    MaintenanceInfoConflict(String),
    /// A well-formed request the broker cannot carry out (for example a plan downgrade below current usage).
    #[error("{description}")]
    Unprocessable {
        /// CamelCase error code.
        code: &'static str,
        /// What the user should know.
        description: String,
    },
    /// The Kubernetes apiserver could not be reached or is overloaded; the platform may retry.
    #[error("{0}")]
    Unavailable(String),
    /// An unexpected failure; the details are in the broker's log under the request id, not in the response.
    #[error("{0}")]
    Internal(String),
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
            OsbError::BadRequest(_) => StatusCode::BAD_REQUEST,
            OsbError::Unauthorized => StatusCode::UNAUTHORIZED,
            OsbError::NotFound(_) => StatusCode::NOT_FOUND,
            OsbError::Gone(_) => StatusCode::GONE,
            OsbError::Conflict(_) => StatusCode::CONFLICT,
            OsbError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            OsbError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            OsbError::AsyncRequired
            | OsbError::DeletionContinues(_)
            | OsbError::Concurrency(_)
            | OsbError::RequiresApp
            | OsbError::MaintenanceInfoConflict(_)
            | OsbError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            OsbError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            OsbError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The CamelCase error code; the four the specification names are spelled exactly as it does.
    pub fn code(&self) -> &'static str {
        match self {
            OsbError::BadRequest(_) => "BadRequest",
            OsbError::Unauthorized => "Unauthorized",
            OsbError::NotFound(_) => "NotFound",
            OsbError::Gone(_) => "Gone",
            OsbError::Conflict(_) => "Conflict",
            OsbError::PreconditionFailed(_) => "PreconditionFailed",
            OsbError::PayloadTooLarge(_) => "PayloadTooLarge",
            OsbError::AsyncRequired | OsbError::DeletionContinues(_) => "AsyncRequired",
            OsbError::Concurrency(_) => "ConcurrencyError",
            OsbError::RequiresApp => "RequiresApp",
            OsbError::MaintenanceInfoConflict(_) => "MaintenanceInfoConflict",
            OsbError::Unprocessable { code, .. } => code,
            OsbError::Unavailable(_) => "ServiceUnavailable",
            OsbError::Internal(_) => "InternalError",
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
        let description = match &self {
            OsbError::Internal(_) => {
                "the broker failed unexpectedly; the request id in the broker's log has the details".to_owned()
            }
            other => other.to_string(),
        };
        (status, Json(ErrorBody { error: self.code(), description })).into_response()
    }
}

impl From<kube::Error> for OsbError {
    /// Apiserver answers the broker did not expect become 503 (unreachable, overloaded) or 500; the handlers turn
    /// the expected ones (not found, conflict, forbidden by quota) into domain errors before this is reached.
    fn from(error: kube::Error) -> Self {
        match &error {
            kube::Error::Api(status) if status.code == 429 || status.code >= 500 => {
                OsbError::Unavailable(format!("the Kubernetes API is unavailable ({}); retry later", status.code))
            }
            kube::Error::Api(status) => {
                OsbError::Internal(format!("Kubernetes API refused a request: {}", status.message))
            }
            kube::Error::HyperError(_) | kube::Error::Service(_) => {
                OsbError::Unavailable("the Kubernetes API cannot be reached; retry later".to_owned())
            }
            other => OsbError::Internal(format!("Kubernetes client error: {other}")),
        }
    }
}

/// The result of an OSB operation.
pub type OsbResult<T> = Result<T, OsbError>;
