use std::collections::BTreeMap;

use gaiamesh_protocol::identity::PublicKey;

use super::{Change, MAX_EVIDENCE_PER_SUBJECT, Store, StoreError};
use crate::entry::{Entry, Evidence};

/// Entries in memory: for tests, the simulator and light nodes.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    entries: BTreeMap<PublicKey, Entry>,
    evidence: BTreeMap<PublicKey, Vec<Evidence>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Store for MemoryStore {
    fn get(&self, subject: &PublicKey) -> Result<Option<Entry>, StoreError> {
        Ok(self.entries.get(subject).cloned())
    }

    fn write(&mut self, batch: Vec<Change>) -> Result<(), StoreError> {
        for change in batch {
            match change {
                Change::Put(e) => {
                    self.entries.insert(e.subject(), e);
                }
                Change::Remove(s) => {
                    self.entries.remove(&s);
                }
                Change::Evidence(ev) => {
                    let list = self.evidence.entry(ev.subject).or_default();
                    if list.len() < MAX_EVIDENCE_PER_SUBJECT {
                        list.push(ev);
                    }
                }
            }
        }
        Ok(())
    }

    fn for_each(&self, f: &mut dyn FnMut(Entry)) -> Result<(), StoreError> {
        self.entries.values().cloned().for_each(f);
        Ok(())
    }

    fn len(&self) -> Result<u64, StoreError> {
        Ok(self.entries.len() as u64)
    }

    fn evidence(&self) -> Result<Vec<Evidence>, StoreError> {
        Ok(self.evidence.values().flatten().cloned().collect())
    }
}
