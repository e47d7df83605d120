//! What can go wrong asking a node's API: each error names the node and the request.

use std::{path::PathBuf, time::Duration};

/// A failed request to a node's API.
#[derive(Debug, thiserror::Error)]
pub enum ApiClientError {
    /// The data dir has no `api.json`: no node runs on it.
    #[error("no node is running on {} (no api.json)", dir.display())]
    NotRunning {
        /// The data dir.
        dir: PathBuf,
    },
    /// `api.json` exists but no process holds the data dir: a node killed with `kill -9`.
    #[error(
        "no node is running on {} (its api.json is left from a node that did not stop cleanly)",
        dir.display()
    )]
    Stale {
        /// The data dir.
        dir: PathBuf,
    },
    /// `api.json` cannot be read or is not what a node writes.
    #[error("{}: {reason}", path.display())]
    BadInfo {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The node did not answer in time.
    #[error("{request} on the node at {node}: no answer within {}", humantime::format_duration(*timeout))]
    Timeout {
        /// The node's API address.
        node: String,
        /// `METHOD /path`.
        request: String,
        /// How long the client waited.
        timeout: Duration,
    },
    /// The node could not be reached (connection refused, reset, …).
    #[error("{request} on the node at {node}: cannot reach it: {source}")]
    Unreachable {
        /// The node's API address.
        node: String,
        /// `METHOD /path`.
        request: String,
        /// What the HTTP client saw.
        #[source]
        source: ureq::Error,
    },
    /// The node refused the request with a problem document (RFC 9457).
    #[error(
        "{request} on the node at {node}: {status} {detail}{}",
        parameter.as_ref().map(|p| format!(" ({p})")).unwrap_or_default()
    )]
    Refused {
        /// The node's API address.
        node: String,
        /// `METHOD /path`.
        request: String,
        /// The HTTP status.
        status: u16,
        /// The problem's `detail`.
        detail: String,
        /// The parameter or body field at fault, when the node named one.
        parameter: Option<String>,
    },
    /// The answer is not what the API describes (not JSON of the declared type, too large,
    /// an error without a problem document).
    #[error("{request} on the node at {node}: unexpected answer (HTTP {status}): {reason}")]
    BadAnswer {
        /// The node's API address.
        node: String,
        /// `METHOD /path`.
        request: String,
        /// The HTTP status.
        status: u16,
        /// What is wrong with it.
        reason: String,
    },
}

impl ApiClientError {
    /// The HTTP status of a refusal or an unexpected answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Refused { status, .. } | Self::BadAnswer { status, .. } => Some(*status),
            _ => None,
        }
    }
}
