//! The crate's one error type.

use std::path::PathBuf;

/// Why a token was not accepted, or why the reviewer could not be set up.
///
/// The first five variants answer a review: [`ReviewError::Rejected`],
/// [`ReviewError::WrongAudience`], [`ReviewError::Expired`] and [`ReviewError::TooLarge`] are
/// the client's fault (SASL outcome `auth`); [`ReviewError::Unavailable`] is ours or the API
/// server's and fails closed (the broker may answer `sys-temp`). The others come from
/// configuration.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// The API server answered: the token is not valid (`status.error`, or
    /// `status.authenticated` false).
    #[error("the API server rejected the token: {0}")]
    Rejected(String),
    /// With an audience configured: `status.audiences` does not contain it.
    #[error("the token is not for audience {wanted:?} (the API server reported {got:?})")]
    WrongAudience {
        /// The configured audience.
        wanted: String,
        /// What the API server reported in `status.audiences`.
        got: Vec<String>,
    },
    /// The token's `exp` claim has passed (checked locally before any request).
    #[error("the token has expired")]
    Expired,
    /// The API server could not be asked (connect error, TLS, timeout, 5xx, 401/403 for our own
    /// credential, an unparseable answer): the review fails closed.
    #[error("the API server could not review the token: {0}")]
    Unavailable(String),
    /// The token is longer than `token_bytes_max`.
    #[error("the token is {bytes} bytes, more than the {bytes_max} allowed")]
    TooLarge {
        /// The token's length.
        bytes: usize,
        /// The limit it broke.
        bytes_max: usize,
    },
    /// A kubeconfig, in-cluster file or credential is missing or wrong.
    #[error("{}: {field}: {reason}", file.display())]
    Config {
        /// The file at fault (the kubeconfig, a file it names, or an in-cluster file).
        file: PathBuf,
        /// The field at fault, as the file spells it (`users[dev].user.token`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A [`crate::ReviewerSettings`] value is out of range.
    #[error("reviewer setting {field}: {reason}")]
    Settings {
        /// The setting's field name.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl ReviewError {
    /// A [`ReviewError::Config`] for `file` and `field`.
    pub(crate) fn config(
        file: impl Into<PathBuf>,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> ReviewError {
        ReviewError::Config {
            file: file.into(),
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Whether the client's token is at fault (as opposed to the API server or our setup).
    pub fn is_token_fault(&self) -> bool {
        matches!(
            self,
            ReviewError::Rejected(_)
                | ReviewError::WrongAudience { .. }
                | ReviewError::Expired
                | ReviewError::TooLarge { .. }
        )
    }
}
