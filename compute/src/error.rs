//! Why an algorithm could not be run at all (before it started).

/// A refusal before the algorithm starts.
#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    /// Not a WebAssembly component wasmtime can compile (a core module, garbage, a newer
    /// component-model feature).
    #[error("not a runnable WebAssembly component: {0}")]
    Invalid(String),
    /// It asks for a capability compute jobs do not provide.
    #[error("the algorithm imports {import}, which compute jobs do not provide ({why})")]
    ForbiddenImport {
        /// The interface, e.g. `wasi:sockets/tcp@0.2.6`.
        import: String,
        /// `no network`, `not a WASI interface`, …
        why: &'static str,
    },
    /// It is not a command: it exports no `wasi:cli/run`.
    #[error("the algorithm is not a WASI command (it exports no wasi:cli/run): {0}")]
    NotACommand(String),
    /// The dataset cannot be opened.
    #[error("cannot open the dataset {path}: {source}")]
    Dataset {
        /// Where it should be.
        path: String,
        /// Why not.
        #[source]
        source: std::io::Error,
    },
    /// The engine could not be set up (a wasmtime configuration error).
    #[error("the WebAssembly engine could not be set up: {0}")]
    Engine(String),
}
