//! # gaiamesh-sim
//!
//! Deterministic discrete-event simulator for gaiamesh federations (DESIGN §10).
//!
//! Not implemented yet: this crate is scaffolding for the simulator issue, which starts once
//! the directory core exists.
