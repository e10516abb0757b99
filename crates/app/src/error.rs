//! The use-case error: what went wrong, in terms the API can turn into a status and a code.

use wagate_store::StoreError;

/// Why a use case did not complete.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The object does not exist for this account (or belongs to another).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A field is invalid.
    #[error("{message}")]
    InvalidField {
        /// The offending parameter.
        param: String,
        /// What is wrong with it.
        message: String,
    },
    /// The feature is not available here (e.g. a sandbox control outside the sandbox).
    #[error("{0}")]
    Forbidden(String),
    /// The store failed: an internal error, never the caller's fault.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else that is our fault.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    /// An invalid-field error.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::InvalidField {
            param: param.into(),
            message: message.into(),
        }
    }
}

/// Result of a use case.
pub type AppResult<T> = Result<T, AppError>;
