//! What can go wrong in a broker operation, in the domain's terms: the request is invalid, the thing is not there or
//! is busy, the cluster cannot do it now. Every face over the broker (the OSB API, the tenant dashboard)
//! decides for itself how to show these; the OSB statuses and bodies are in `osb::error`.

/// An operation the broker refused or could not carry out.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A missing mandatory field, an unknown service or plan, invalid parameters, a request that contradicts the
    /// instance it names.
    #[error("{0}")]
    BadRequest(String),
    /// The instance or binding asked for does not exist (fetch, last_operation, bind to a missing instance).
    #[error("{0}")]
    NotFound(String),
    /// The instance or binding to delete does not exist: what the caller wanted is already true.
    #[error("{0}")]
    Gone(String),
    /// The id exists with other attributes.
    #[error("{0}")]
    Conflict(String),
    /// The operation can only be done asynchronously and the caller does not accept an incomplete answer.
    #[error("this operation requires asynchronous processing: retry with accepts_incomplete=true")]
    AsyncRequired,
    /// A synchronous delete that started but did not finish within the synchronous timeout: the deletion continues,
    /// and a repeat of the request follows it.
    #[error("{0}")]
    DeletionContinues(String),
    /// Another operation is in progress on the same instance or binding.
    #[error("{0}")]
    Concurrency(String),
    /// The plan needs an application to bind to.
    #[error("this service plan requires an app_guid to bind to")]
    RequiresApp,
    /// The maintenance version the caller expects differs from the catalog's.
    #[error("{0}")]
    MaintenanceInfoConflict(String),
    /// A well-formed request the broker cannot carry out (for example a plan downgrade below current usage).
    #[error("{description}")]
    Unprocessable {
        /// CamelCase code naming the reason, for programs (`InstanceInUse`, `UsageExceedsPlan`, ...).
        code: &'static str,
        /// What the user should know.
        description: String,
    },
    /// Kubernetes refused a signed-in user's request (RBAC, the tenant guard, admission): a face acting as a user
    /// shows the apiserver's reason.
    #[error("{0}")]
    Denied(String),
    /// The Kubernetes apiserver could not be reached or is overloaded; the caller may retry.
    #[error("{0}")]
    Unavailable(String),
    /// An unexpected failure; the details belong in the broker's log, not in front of the user.
    #[error("{0}")]
    Internal(String),
}

/// The outcome of a broker operation; `E` is left open so that `Result<T, kube::Error>` still reads as usual.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<kube::Error> for Error {
    /// Apiserver answers the broker did not expect become [`Error::Unavailable`] (unreachable, overloaded) or
    /// [`Error::Internal`]; the operations turn the expected ones (not found, conflict, forbidden by quota) into
    /// domain errors before this is reached.
    fn from(error: kube::Error) -> Self {
        match &error {
            kube::Error::Api(status) if status.code == 429 || status.code >= 500 => {
                Error::Unavailable(format!("the Kubernetes API is unavailable ({}); retry later", status.code))
            }
            kube::Error::Api(status) => {
                Error::Internal(format!("Kubernetes API refused a request: {}", status.message))
            }
            kube::Error::HyperError(_) | kube::Error::Service(_) => {
                Error::Unavailable("the Kubernetes API cannot be reached; retry later".to_owned())
            }
            other => Error::Internal(format!("Kubernetes client error: {other}")),
        }
    }
}
