//! Why a command to the node failed. The variant says what kind of failure it was; the API
//! turns it into an HTTP status in one place (`api/problem.rs`), and the CLI prints the
//! message.

/// Why a command (from the API or the CLI) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum CommandError {
    /// The request is well-formed but refused: an invalid document, a release that does not
    /// verify, a field out of range. HTTP 422.
    #[error("{0}")]
    Invalid(String),
    /// What the request names does not exist here. HTTP 404.
    #[error("{0}")]
    NotFound(String),
    /// Not possible in the node's state now (no document to re-publish, no valid release, a
    /// light node asked what the DHT cannot answer). HTTP 409.
    #[error("{0}")]
    Conflict(String),
    /// Too much of this is already in progress; retry later. HTTP 503.
    #[error("{0}")]
    Busy(String),
    /// Local storage or another internal failure. HTTP 500.
    #[error("{0}")]
    Internal(String),
    /// The event loop has stopped. HTTP 503.
    #[error("the node is shutting down")]
    ShuttingDown,
}

impl CommandError {
    /// An internal failure with what was being done.
    pub(crate) fn internal(doing: &str, e: impl std::fmt::Display) -> Self {
        Self::Internal(format!("{doing}: {e}"))
    }

    /// A refusal, from any error's message.
    pub(crate) fn invalid(e: impl std::fmt::Display) -> Self {
        Self::Invalid(e.to_string())
    }
}
