use std::path::Path;

use gaiamesh_protocol::identity::PublicKey;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use super::{Change, MAX_EVIDENCE_PER_SUBJECT, Store, StoreError};
use crate::entry::{Entry, Evidence};

/// Entries by subject key (32 bytes) → encoded [`Entry`]. Versioned name: a schema change
/// gets a new table and a migration, never a silent reinterpretation.
const ENTRIES: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("directory_entries_v1");
/// Evidence by (subject ‖ index) → encoded [`Evidence`].
const EVIDENCE: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("directory_evidence_v1");

/// Entries in a redb database file. One writer (the catalogue); each [`Store::write`] is one
/// ACID transaction, so a crash leaves a batch either applied or not. Clones are handles on
/// the same database: a node writes through one while readers use another (redb readers
/// see the last committed transaction and never wait for a writer).
#[derive(Clone, Debug)]
pub struct RedbStore {
    db: std::sync::Arc<Database>,
}

fn db_err(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Storage(e.into())
}

impl RedbStore {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(db_err)?;
        let txn = db.begin_write().map_err(db_err)?;
        txn.open_table(ENTRIES).map_err(db_err)?;
        txn.open_table(EVIDENCE).map_err(db_err)?;
        txn.commit().map_err(db_err)?;
        Ok(Self { db: db.into() })
    }

    /// Writes a consistent copy of the store, as of one read transaction, to a new database
    /// at `path` (a backup of a running node: writers go on meanwhile). Returns the number of
    /// entries copied.
    pub fn snapshot_to(&self, path: &Path) -> Result<u64, StoreError> {
        let read = self.db.begin_read().map_err(db_err)?;
        let out = Database::create(path).map_err(db_err)?;
        let write = out.begin_write().map_err(db_err)?;
        let entries = copy_table(&read, &write, ENTRIES).map_err(db_err)?;
        copy_table(&read, &write, EVIDENCE).map_err(db_err)?;
        write.commit().map_err(db_err)?;
        Ok(entries)
    }
}

/// Copies every row of `def` from `read` into `write`; returns how many. A consistent copy
/// of a table as of `read`'s snapshot, for backups of a running node's databases.
pub fn copy_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    read: &redb::ReadTransaction,
    write: &redb::WriteTransaction,
    def: TableDefinition<'_, K, V>,
) -> Result<u64, redb::Error> {
    let from = read.open_table(def)?;
    let mut to = write.open_table(def)?;
    let mut n = 0;
    for row in from.iter()? {
        let (k, v) = row?;
        to.insert(k.value(), v.value())?;
        n += 1;
    }
    Ok(n)
}

impl Store for RedbStore {
    fn get(&self, subject: &PublicKey) -> Result<Option<Entry>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(ENTRIES).map_err(db_err)?;
        let key = subject.to_bytes();
        match table.get(key.as_slice()).map_err(db_err)? {
            Some(v) => Ok(Some(Entry::decode(v.value())?)),
            None => Ok(None),
        }
    }

    fn write(&mut self, batch: Vec<Change>) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut entries = txn.open_table(ENTRIES).map_err(db_err)?;
            let mut evidence = txn.open_table(EVIDENCE).map_err(db_err)?;
            for change in batch {
                match change {
                    Change::Put(e) => {
                        let key = e.subject().to_bytes();
                        entries
                            .insert(key.as_slice(), e.encode()?.as_slice())
                            .map_err(db_err)?;
                    }
                    Change::Remove(s) => {
                        entries.remove(s.to_bytes().as_slice()).map_err(db_err)?;
                    }
                    Change::Evidence(ev) => {
                        let subject = ev.subject.to_bytes();
                        let mut lo = subject.to_vec();
                        lo.push(0);
                        let mut hi = subject.to_vec();
                        hi.push(u8::MAX);
                        let count = evidence
                            .range(lo.as_slice()..=hi.as_slice())
                            .map_err(db_err)?
                            .count();
                        if count < MAX_EVIDENCE_PER_SUBJECT {
                            let mut key = subject.to_vec();
                            key.push(u8::try_from(count).unwrap_or(u8::MAX));
                            evidence
                                .insert(key.as_slice(), ev.encode()?.as_slice())
                                .map_err(db_err)?;
                        }
                    }
                }
            }
        }
        txn.commit().map_err(db_err)
    }

    fn for_each(&self, f: &mut dyn FnMut(Entry)) -> Result<(), StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(ENTRIES).map_err(db_err)?;
        for item in table.iter().map_err(db_err)? {
            let (_, v) = item.map_err(db_err)?;
            f(Entry::decode(v.value())?);
        }
        Ok(())
    }

    fn len(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(ENTRIES).map_err(db_err)?;
        table.len().map_err(db_err)
    }

    fn evidence(&self) -> Result<Vec<Evidence>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(EVIDENCE).map_err(db_err)?;
        let mut out = Vec::new();
        for item in table.iter().map_err(db_err)? {
            let (_, v) = item.map_err(db_err)?;
            out.push(Evidence::decode(v.value())?);
        }
        Ok(out)
    }
}
