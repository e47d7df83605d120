//! Compute-to-data: a WebAssembly algorithm (a WASI preview 2 command component) runs next to
//! the data it is allowed to see, sandboxed and metered, and only its result leaves.
//!
//! - **What the algorithm sees**: the dataset as its standard input (read-only, streamed, every
//!   byte counted), its arguments, and nothing else: no preopened directory, no environment, no
//!   network (a component that imports `wasi:sockets` or `wasi:http` is refused before it
//!   starts, see [`Algorithm::check`]). Its result is its standard output, bounded.
//! - **Limits** ([`Limits`]): linear memory (a denied `memory.grow` ends the job with
//!   [`StopReason::Memory`]), fuel for CPU ([`StopReason::Fuel`]), wall-clock time via epoch
//!   interruption ([`StopReason::WallClock`]), result size ([`StopReason::Output`]) and a
//!   cancellation flag ([`StopReason::Cancelled`]).
//! - **Metering** ([`Usage`]): fuel consumed (wasmtime's instruction-count proxy; the same
//!   number for the same algorithm and input on any machine), wall time, peak linear memory,
//!   bytes read and written.
//!
//! The [`Sandbox`] holds the engine (one compiled-code cache and one epoch ticker per node);
//! [`Sandbox::run`] is blocking and meant for a worker thread.

mod error;
mod limits;
pub mod manifest;
mod sandbox;
mod stdio;
mod usage;

pub use error::ComputeError;
pub use gaiamesh_exchange::metering::Usage;
pub use limits::Limits;
pub use manifest::Manifest;
pub use sandbox::{Algorithm, Sandbox};
pub use usage::{Report, StopReason};
