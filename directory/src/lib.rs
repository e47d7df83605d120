//! # gaiamesh-directory
//!
//! The federation catalogue, without any network code: the node and the simulator both use it.
//!
//! - [`store`]: a [`store::Store`] trait with [`store::MemoryStore`] and [`store::RedbStore`]
//!   (versioned tables, one writer, one transaction per batch).
//! - [`merge`]: the merge rules — valid signature and membership, not expired, strictly
//!   higher seq; equivocation keeps the smaller hash and records evidence.
//! - [`catalogue::Catalogue`]: the store behind the merge rules, with in-memory facets and
//!   indexes for [`query`] (parser with column errors, planner, executor, explain).
//! - [`reconcile`]: range-based set reconciliation as a sans-IO state machine.
//! - [`dht`]: the DHT key scheme and the light-mode query plan.
//!
//! ```
//! use gaiamesh_directory::{catalogue::{Catalogue, QueryOptions}, query, store::MemoryStore};
//! use gaiamesh_protocol::testing::{TestFederation, key, NOW};
//!
//! let fed = TestFederation::new(3, 2, true);
//! let mut cat = Catalogue::open(MemoryStore::new(), fed.trust.clone(), 1000).unwrap();
//! cat.merge(fed.signed_sd(&key(1), 1), None, NOW).unwrap();
//! let q = query::parse("service.kind = storage.object and service.price.amount < 0.02").unwrap();
//! let out = cat.query(&q, QueryOptions::default(), NOW);
//! assert_eq!(out.matches.len(), 1);
//! ```

pub mod catalogue;
mod columns;
pub mod dht;
pub mod entry;
pub mod facets;
mod index;
pub mod ingest;
pub mod merge;
pub mod query;
pub mod reconcile;
pub mod store;
