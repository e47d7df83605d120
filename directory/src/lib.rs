//! # gaiamesh-directory
//!
//! The federation catalogue: store (memory and redb), merge rules, indexes, query language,
//! set reconciliation and the DHT key scheme. No network code; the node and the simulator
//! both use it.
//!
//! Not implemented yet: this crate is scaffolding for the directory-core issue. Accepting a
//! record already works through `gaiamesh_protocol::sd::SignedSelfDescription::check`, which
//! the merge rules will call.
