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
    #[error("{message}")]
    Denied {
        /// What the user is told.
        message: String,
        /// The apiserver's answer, when it refused.
        #[source]
        cause: Option<kube::Error>,
    },
    /// The Kubernetes apiserver could not be reached or is overloaded; the caller may retry.
    #[error("{message}")]
    Unavailable {
        /// What the user is told.
        message: String,
        /// The apiserver's answer or the client's failure, when one is why.
        #[source]
        cause: Option<kube::Error>,
    },
    /// An unexpected failure; the details belong in the broker's log, not in front of the user.
    #[error("{message}")]
    Internal {
        /// What went wrong.
        message: String,
        /// The apiserver's answer or the client's failure, when one is why.
        #[source]
        cause: Option<kube::Error>,
    },
}

impl Error {
    /// [`Error::Denied`] for a reason of the broker's own.
    pub fn denied(message: impl Into<String>) -> Error {
        Error::Denied { message: message.into(), cause: None }
    }

    /// [`Error::Unavailable`] for a reason of the broker's own.
    pub fn unavailable(message: impl Into<String>) -> Error {
        Error::Unavailable { message: message.into(), cause: None }
    }

    /// [`Error::Internal`] for a reason of the broker's own.
    pub fn internal(message: impl Into<String>) -> Error {
        Error::Internal { message: message.into(), cause: None }
    }
}

/// The outcome of a broker operation; `E` is left open so that `Result<T, kube::Error>` still reads as usual.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<kube::Error> for Error {
    /// Apiserver answers the broker did not expect become [`Error::Unavailable`] (unreachable, overloaded) or
    /// [`Error::Internal`]; the operations turn the expected ones (not found, conflict, forbidden by quota) into
    /// domain errors before this is reached.
    fn from(error: kube::Error) -> Self {
        let (unavailable, message) = match &error {
            kube::Error::Api(status) if status.code == 429 || status.code >= 500 => {
                (true, format!("the Kubernetes API is unavailable ({}); retry later", status.code))
            }
            kube::Error::Api(status) => (false, format!("Kubernetes API refused a request: {}", status.message)),
            kube::Error::HyperError(_) | kube::Error::Service(_) => {
                (true, "the Kubernetes API cannot be reached; retry later".to_owned())
            }
            other => (false, format!("Kubernetes client error: {other}")),
        };
        let cause = Some(error);
        if unavailable { Error::Unavailable { message, cause } } else { Error::Internal { message, cause } }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    fn api_error(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(kube::core::Status::failure(message, "Reason").with_code(code).boxed())
    }

    /// The status code an error's cause carries, as a caller finds it.
    fn cause_code(error: &Error) -> Option<u16> {
        match error.source()?.downcast_ref::<kube::Error>()? {
            kube::Error::Api(status) => Some(status.code),
            _ => None,
        }
    }

    #[test]
    fn apiserver_answers_keep_their_cause_and_their_words() {
        let busy = Error::from(api_error(503, "etcd is busy"));
        assert!(matches!(busy, Error::Unavailable { .. }));
        assert_eq!(busy.to_string(), "the Kubernetes API is unavailable (503); retry later");
        assert_eq!(cause_code(&busy), Some(503));
        let refused = Error::from(api_error(422, "spec.replicas: Invalid value"));
        assert!(matches!(refused, Error::Internal { .. }));
        assert_eq!(refused.to_string(), "Kubernetes API refused a request: spec.replicas: Invalid value");
        assert_eq!(cause_code(&refused), Some(422));
        assert!(Error::internal("no token").source().is_none(), "the broker's own reasons have no cause");
    }
}
