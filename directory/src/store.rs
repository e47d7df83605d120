//! Persistence of catalogue entries. [`Store`] is implemented in memory ([`MemoryStore`]) and
//! on redb ([`RedbStore`]); the catalogue is the only writer and batches its changes.

mod memory;
mod redb_store;

use gaiamesh_protocol::{
    codec::{DecodeError, EncodeError},
    identity::PublicKey,
};
pub use memory::MemoryStore;
pub use redb_store::{RedbStore, copy_table};

use crate::entry::{Entry, Evidence};

/// One change in a write batch.
#[derive(Clone, Debug)]
pub enum Change {
    /// Insert or replace the subject's entry.
    Put(Entry),
    /// Remove the subject's entry.
    Remove(PublicKey),
    /// Record equivocation evidence (bounded per subject by the store).
    Evidence(Evidence),
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed (I/O, corruption, full disk).
    #[error("storage: {0}")]
    Storage(#[from] redb::Error),
    /// A stored value does not decode (corruption or a newer schema).
    #[error("stored value is unreadable: {0}")]
    Corrupt(#[from] DecodeError),
    /// A value could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// Storage of entries keyed by subject.
pub trait Store {
    /// The entry of `subject`.
    fn get(&self, subject: &PublicKey) -> Result<Option<Entry>, StoreError>;
    /// Applies `batch` atomically: after a crash either all of it or none of it is visible.
    fn write(&mut self, batch: Vec<Change>) -> Result<(), StoreError>;
    /// Calls `f` with every entry, in subject order.
    fn for_each(&self, f: &mut dyn FnMut(Entry)) -> Result<(), StoreError>;
    /// Number of entries.
    fn len(&self) -> Result<u64, StoreError>;
    /// Whether there are no entries.
    fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }
    /// All recorded equivocation evidence.
    fn evidence(&self) -> Result<Vec<Evidence>, StoreError>;
}

/// Most evidence records kept per subject; more add nothing to the proof.
pub const MAX_EVIDENCE_PER_SUBJECT: usize = 4;
