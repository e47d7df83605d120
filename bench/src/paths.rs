//! The hot paths, one module each; every `run` returns the rows of its path.

pub mod idle;
pub mod query;
pub mod reconcile;
pub mod sim;
pub mod transfer;
