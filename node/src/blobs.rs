//! The content-addressed blob store of the software repository: files under
//! `DATA_DIR/blobs/`, their state in `DATA_DIR/blobs/state.redb`.
//!
//! Each blob is `<blake3>.data` plus a pre-order bao outboard `<blake3>.obao` (16 KiB
//! chunk groups). Downloads are verified streams: [`Download::ingest`] checks every chunk
//! group against the blob's BLAKE3 root before it writes it, so a bad byte is detected
//! within 16 KiB and never stored; verified ranges are recorded only after the data is on
//! disk (fsync, then the redb commit), so an interrupted download resumes without fetching
//! them again. Ranges verified and written but not yet durable (downloads batch their
//! fsyncs) are *staged*: served to other peers from the page cache at once, never recorded,
//! forgotten on restart. Blobs are pinned (mandatory components) or not; [`BlobStore::gc`] deletes
//! unpinned ones.

use std::{
    collections::HashMap,
    fs::{File, OpenOptions},
    io::{self, Read, Write},
    path::{Path, PathBuf},
    sync::Mutex,
};

use bao_tree::{
    BaoTree, BlockSize, ChunkNum, ChunkRanges,
    io::{
        BaoContentItem,
        outboard::PreOrderOutboard,
        sync::{CreateOutboard, DecodeResponseIter, OutboardMut, encode_ranges_validated},
    },
};
use gaiamesh_protocol::{limits::MAX_BLOB_BYTES, repository::BlobHash};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

/// 16 KiB chunk groups: the unit of verification.
pub const BLOCK_SIZE: BlockSize = BlockSize::from_chunk_log(4);
/// Bytes of one chunk group.
pub const CHUNK_GROUP_BYTES: u64 = 16 * 1024;

/// Blobs with staged ranges tracked at most (one per download in progress; more are
/// served once committed).
const MAX_STAGED_BLOBS: usize = 256;

/// Blob hash → encoded [`BlobRecord`].
const BLOBS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("blobs_v1");

/// Why a blob operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    /// A file of the store could not be read or written.
    #[error("blob store file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: io::Error,
    },
    /// The state database failed.
    #[error("blob state database: {0}")]
    Database(#[from] redb::Error),
    /// A stored record does not decode (the state file is damaged).
    #[error("blob state of {0} is unreadable")]
    Corrupt(BlobHash),
    /// The blob is not in the store (or not complete where that is needed).
    #[error("blob {0} is not in the store")]
    Missing(BlobHash),
    /// A blob larger than any target may be.
    #[error("blob of {0} bytes is larger than the limit of {MAX_BLOB_BYTES}")]
    TooLarge(u64),
    /// A blob was announced with another length than the one stored.
    #[error("blob {hash} is stored with length {stored}, not {requested}")]
    LengthMismatch {
        /// The blob.
        hash: BlobHash,
        /// Length on record.
        stored: u64,
        /// Length asked for.
        requested: u64,
    },
    /// Stored data no longer matches its hash (disk corruption): it is not served.
    #[error("stored blob {hash} fails verification: {reason}")]
    Damaged {
        /// The blob.
        hash: BlobHash,
        /// What bao reported.
        reason: String,
    },
}

/// Why a received stream was refused. The ranges verified before the error are kept.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The peer sent data or hashes that do not match the blob's hash: the peer is at
    /// fault (penalise it, fetch the range elsewhere).
    #[error("bad data from the peer at byte {offset}: {reason}")]
    Verification {
        /// First byte of the chunk group that failed.
        offset: u64,
        /// What failed.
        reason: String,
    },
    /// The stream ended early (the peer stopped or lacks the range).
    #[error("stream ended before byte {offset}")]
    Truncated {
        /// Where data stopped.
        offset: u64,
    },
    /// A local failure.
    #[error(transparent)]
    Store(#[from] BlobError),
}

/// What the store remembers about a blob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRecord {
    /// Length in bytes.
    pub length: u64,
    /// Verified chunk ranges, as (start, end) chunk numbers (1 KiB chunks).
    pub verified: Vec<(u64, u64)>,
    /// Whether every byte is verified.
    pub complete: bool,
    /// Pinned blobs are never garbage collected.
    pub pinned: bool,
}

impl BlobRecord {
    fn ranges(&self) -> ChunkRanges {
        let mut r = ChunkRanges::empty();
        for (a, b) in &self.verified {
            r |= ChunkRanges::from(ChunkNum(*a)..ChunkNum(*b));
        }
        r
    }

    /// Bytes verified so far.
    pub fn verified_bytes(&self) -> u64 {
        self.verified
            .iter()
            .map(|(a, b)| (b - a) * 1024)
            .sum::<u64>()
            .min(self.length)
    }
}

pub(crate) fn ranges_to_vec(r: &ChunkRanges) -> Vec<(u64, u64)> {
    // Boundaries alternate start, end; our sets are always bounded (an even count).
    r.boundaries()
        .chunks_exact(2)
        .map(|pair| (pair[0].0, pair[1].0))
        .collect()
}

/// The chunks of a blob of `length` bytes.
fn all_chunks(length: u64) -> ChunkRanges {
    ChunkRanges::from(ChunkNum(0)..ChunkNum(length.div_ceil(1024)))
}

/// The blob store of one node.
#[derive(Debug)]
pub struct BlobStore {
    dir: PathBuf,
    db: Database,
    /// Verified and written, not yet durable nor recorded: servable, not trusted on restart.
    staged: Mutex<HashMap<BlobHash, ChunkRanges>>,
}

impl BlobStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, BlobError> {
        std::fs::create_dir_all(dir).map_err(|source| BlobError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let db = Database::create(dir.join("state.redb")).map_err(redb::Error::from)?;
        let txn = db.begin_write().map_err(redb::Error::from)?;
        txn.open_table(BLOBS).map_err(redb::Error::from)?;
        txn.commit().map_err(redb::Error::from)?;
        Ok(Self {
            dir: dir.to_owned(),
            db,
            staged: Mutex::new(HashMap::new()),
        })
    }

    fn data_path(&self, h: &BlobHash) -> PathBuf {
        self.dir.join(format!("{h}.data"))
    }

    fn outboard_path(&self, h: &BlobHash) -> PathBuf {
        self.dir.join(format!("{h}.obao"))
    }

    fn io(path: &Path) -> impl FnOnce(io::Error) -> BlobError + '_ {
        move |source| BlobError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    /// The record of `hash`, if any.
    pub fn get(&self, hash: &BlobHash) -> Result<Option<BlobRecord>, BlobError> {
        let txn = self.db.begin_read().map_err(redb::Error::from)?;
        let table = txn.open_table(BLOBS).map_err(redb::Error::from)?;
        let Some(v) = table.get(hash.0.as_slice()).map_err(redb::Error::from)? else {
            return Ok(None);
        };
        postcard::from_bytes(v.value())
            .map(Some)
            .map_err(|_| BlobError::Corrupt(*hash))
    }

    /// The record of `hash` and the ranges that may be served: the recorded ones and the
    /// staged ones (verified and written, their fsync pending).
    pub fn servable(
        &self,
        hash: &BlobHash,
    ) -> Result<Option<(BlobRecord, ChunkRanges)>, BlobError> {
        let Some(rec) = self.get(hash)? else {
            return Ok(None);
        };
        let mut ranges = rec.ranges();
        if let Ok(staged) = self.staged.lock()
            && let Some(s) = staged.get(hash)
        {
            ranges |= s.clone();
        }
        Ok(Some((rec, ranges)))
    }

    /// Marks verified, written ranges as servable before their commit.
    fn stage(&self, hash: &BlobHash, got: &ChunkRanges) {
        if got.is_empty() {
            return;
        }
        if let Ok(mut staged) = self.staged.lock() {
            if staged.len() >= MAX_STAGED_BLOBS && !staged.contains_key(hash) {
                return; // served once committed
            }
            *staged.entry(*hash).or_insert_with(ChunkRanges::empty) |= got.clone();
        }
    }

    /// Forgets staged ranges that are now committed (recorded).
    fn unstage(&self, hash: &BlobHash, committed: &ChunkRanges) {
        if let Ok(mut staged) = self.staged.lock()
            && let Some(s) = staged.get_mut(hash)
        {
            *s -= committed.clone();
            if s.is_empty() {
                staged.remove(hash);
            }
        }
    }

    /// Every blob on record.
    pub fn list(&self) -> Result<Vec<(BlobHash, BlobRecord)>, BlobError> {
        let txn = self.db.begin_read().map_err(redb::Error::from)?;
        let table = txn.open_table(BLOBS).map_err(redb::Error::from)?;
        let mut out = Vec::new();
        for item in table.iter().map_err(redb::Error::from)? {
            let (k, v) = item.map_err(redb::Error::from)?;
            let mut h = [0u8; 32];
            if k.value().len() == 32 {
                h.copy_from_slice(k.value());
            }
            let hash = BlobHash(h);
            let rec = postcard::from_bytes(v.value()).map_err(|_| BlobError::Corrupt(hash))?;
            out.push((hash, rec));
        }
        Ok(out)
    }

    fn put(&self, hash: &BlobHash, rec: &BlobRecord) -> Result<(), BlobError> {
        let bytes = postcard::to_stdvec(rec).map_err(|_| BlobError::Corrupt(*hash))?;
        let txn = self.db.begin_write().map_err(redb::Error::from)?;
        {
            let mut table = txn.open_table(BLOBS).map_err(redb::Error::from)?;
            table
                .insert(hash.0.as_slice(), bytes.as_slice())
                .map_err(redb::Error::from)?;
        }
        txn.commit().map_err(redb::Error::from)?;
        Ok(())
    }

    /// Makes the written ranges `got` of a blob durable (fsync of its data and outboard) and
    /// records them as verified. Returns the new record.
    pub fn commit(&self, hash: &BlobHash, got: &ChunkRanges) -> Result<BlobRecord, BlobError> {
        for p in [self.data_path(hash), self.outboard_path(hash)] {
            let f = OpenOptions::new()
                .write(true)
                .open(&p)
                .map_err(Self::io(&p))?;
            f.sync_data().map_err(Self::io(&p))?;
        }
        let rec = self.add_verified(hash, got)?;
        self.unstage(hash, got);
        Ok(rec)
    }

    /// Records `got` as verified, in one write transaction (several downloads of one blob
    /// may run at once: the union never loses ranges). Returns the new record.
    fn add_verified(&self, hash: &BlobHash, got: &ChunkRanges) -> Result<BlobRecord, BlobError> {
        let txn = self.db.begin_write().map_err(redb::Error::from)?;
        let rec = {
            let mut table = txn.open_table(BLOBS).map_err(redb::Error::from)?;
            let current: BlobRecord =
                match table.get(hash.0.as_slice()).map_err(redb::Error::from)? {
                    Some(v) => {
                        postcard::from_bytes(v.value()).map_err(|_| BlobError::Corrupt(*hash))?
                    }
                    None => return Err(BlobError::Missing(*hash)),
                };
            let all = current.ranges() | got.clone();
            let rec = BlobRecord {
                complete: all.is_superset(&all_chunks(current.length)),
                verified: ranges_to_vec(&all),
                ..current
            };
            let bytes = postcard::to_stdvec(&rec).map_err(|_| BlobError::Corrupt(*hash))?;
            table
                .insert(hash.0.as_slice(), bytes.as_slice())
                .map_err(redb::Error::from)?;
            rec
        };
        txn.commit().map_err(redb::Error::from)?;
        Ok(rec)
    }

    /// Adds the bytes of `source` as a complete blob (the publisher's side): copies them into
    /// the store while computing the outboard. Returns its hash and length.
    pub fn import(&self, source: impl Read, pinned: bool) -> Result<(BlobHash, u64), BlobError> {
        self.import_limited(source, pinned, MAX_BLOB_BYTES)
    }

    /// [`Self::import`] of at most `limit` bytes: a larger source is refused once `limit` + 1
    /// bytes were read, not after it was copied whole. Each import writes its own temporary
    /// file, so concurrent imports never mix their bytes.
    fn import_limited(
        &self,
        source: impl Read,
        pinned: bool,
        limit: u64,
    ) -> Result<(BlobHash, u64), BlobError> {
        let temp = tempfile::Builder::new()
            .prefix("import-")
            .suffix(".tmp")
            .tempfile_in(&self.dir)
            .map_err(Self::io(&self.dir))?;
        let tmp = temp.path().to_owned();
        let mut file = temp.as_file();
        let length = io::copy(&mut source.take(limit.saturating_add(1)), &mut file)
            .map_err(Self::io(&tmp))?;
        if length > limit {
            // Dropping `temp` removes the file.
            return Err(BlobError::TooLarge(length));
        }
        file.sync_all().map_err(Self::io(&tmp))?;
        let file = File::open(&tmp).map_err(Self::io(&tmp))?;
        let ob = PreOrderOutboard::<Vec<u8>>::create(&file, BLOCK_SIZE).map_err(Self::io(&tmp))?;
        let hash = BlobHash(*ob.root.as_bytes());
        let (data, obao) = (self.data_path(&hash), self.outboard_path(&hash));
        std::fs::write(&obao, &ob.data).map_err(Self::io(&obao))?;
        temp.persist(&data).map_err(|e| BlobError::Io {
            path: data.display().to_string(),
            source: e.error,
        })?;
        let pinned = pinned || self.get(&hash)?.is_some_and(|r| r.pinned);
        self.put(
            &hash,
            &BlobRecord {
                length,
                verified: ranges_to_vec(&all_chunks(length)),
                complete: true,
                pinned,
            },
        )?;
        Ok((hash, length))
    }

    /// Opens (or creates) a blob file for reading and positioned writes, keeping its bytes.
    fn open_rw(path: &Path) -> Result<File, BlobError> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(Self::io(path))
    }

    fn outboard(&self, hash: &BlobHash, length: u64) -> Result<PreOrderOutboard<File>, BlobError> {
        let path = self.outboard_path(hash);
        let data = Self::open_rw(&path)?;
        Ok(PreOrderOutboard {
            root: blake3::Hash::from_bytes(hash.0),
            tree: BaoTree::new(length, BLOCK_SIZE),
            data,
        })
    }

    /// Writes the verified stream of `ranges` (chunk numbers) of a blob to `out` (the
    /// serving side). The data is verified against the outboard as it is read, so a
    /// damaged file is refused instead of served.
    pub fn encode(
        &self,
        hash: &BlobHash,
        ranges: &ChunkRanges,
        out: impl Write,
    ) -> Result<(), BlobError> {
        let (rec, servable) = self.servable(hash)?.ok_or(BlobError::Missing(*hash))?;
        if !servable.is_superset(ranges) && !rec.complete {
            return Err(BlobError::Missing(*hash));
        }
        let path = self.data_path(hash);
        let data = File::open(&path).map_err(Self::io(&path))?;
        let ob = self.outboard(hash, rec.length)?;
        encode_ranges_validated(&data, &ob, ranges, out).map_err(|e| BlobError::Damaged {
            hash: *hash,
            reason: format!("{e:?}"),
        })
    }

    /// Starts or resumes downloading `hash` of `length` bytes.
    pub fn download(&self, hash: BlobHash, length: u64) -> Result<Download<'_>, BlobError> {
        if length > MAX_BLOB_BYTES {
            return Err(BlobError::TooLarge(length));
        }
        let rec = match self.get(&hash)? {
            Some(r) if r.length != length => {
                return Err(BlobError::LengthMismatch {
                    hash,
                    stored: r.length,
                    requested: length,
                });
            }
            Some(r) => r,
            None => {
                let r = BlobRecord {
                    length,
                    verified: Vec::new(),
                    complete: false,
                    pinned: false,
                };
                self.put(&hash, &r)?;
                r
            }
        };
        let path = self.data_path(&hash);
        let data = Self::open_rw(&path)?;
        let outboard = self.outboard(&hash, length)?;
        Ok(Download {
            store: self,
            hash,
            rec,
            data,
            outboard,
        })
    }

    /// Pins or unpins a blob.
    pub fn set_pinned(&self, hash: &BlobHash, pinned: bool) -> Result<(), BlobError> {
        let mut rec = self.get(hash)?.ok_or(BlobError::Missing(*hash))?;
        rec.pinned = pinned;
        self.put(hash, &rec)
    }

    /// Deletes every unpinned blob (complete or partial) that `keep` does not name.
    /// Returns the bytes freed.
    pub fn gc(&self, keep: &[BlobHash]) -> Result<u64, BlobError> {
        let mut freed = 0;
        for (hash, rec) in self.list()? {
            if rec.pinned || keep.contains(&hash) {
                continue;
            }
            let txn = self.db.begin_write().map_err(redb::Error::from)?;
            {
                let mut table = txn.open_table(BLOBS).map_err(redb::Error::from)?;
                table.remove(hash.0.as_slice()).map_err(redb::Error::from)?;
            }
            txn.commit().map_err(redb::Error::from)?;
            if let Ok(mut staged) = self.staged.lock() {
                staged.remove(&hash);
            }
            for p in [self.data_path(&hash), self.outboard_path(&hash)] {
                match std::fs::remove_file(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(source) => return Err(Self::io(&p)(source)),
                }
            }
            freed += rec.verified_bytes();
        }
        Ok(freed)
    }

    /// Opens a complete blob for reading.
    pub fn open_blob(&self, hash: &BlobHash) -> Result<File, BlobError> {
        match self.get(hash)? {
            Some(r) if r.complete => {
                let p = self.data_path(hash);
                File::open(&p).map_err(Self::io(&p))
            }
            _ => Err(BlobError::Missing(*hash)),
        }
    }
}

/// A download in progress: verified chunk groups go to disk, the rest is missing.
#[derive(Debug)]
pub struct Download<'a> {
    store: &'a BlobStore,
    hash: BlobHash,
    rec: BlobRecord,
    data: File,
    outboard: PreOrderOutboard<File>,
}

impl Download<'_> {
    /// The chunk ranges still missing.
    pub fn missing(&self) -> ChunkRanges {
        all_chunks(self.rec.length) - self.rec.ranges()
    }

    /// Whether every byte is verified.
    pub fn is_complete(&self) -> bool {
        self.rec.complete
    }

    /// Bytes verified so far.
    pub fn verified_bytes(&self) -> u64 {
        self.rec.verified_bytes()
    }

    /// Reads the verified stream of `ranges` from `encoded`. Each chunk group is checked
    /// against the blob's hash before it is written; on a mismatch or early end the groups
    /// verified before it are kept and recorded, and the error says where it happened.
    /// Returns the bytes newly verified.
    pub fn ingest(&mut self, encoded: impl Read, ranges: &ChunkRanges) -> Result<u64, IngestError> {
        let (got, result) = self.write_verified(encoded, ranges);
        let before = self.rec.verified_bytes();
        if !got.is_empty() {
            // Data first, then the record: a crash between the two re-fetches, never trusts
            // unwritten bytes.
            self.rec = self.store.commit(&self.hash, &got)?;
        }
        result.map(|()| self.rec.verified_bytes() - before)
    }

    /// Like [`Self::ingest`], but the verified groups are written without fsync and not
    /// recorded: the caller batches them into [`BlobStore::commit`] (a crash before that
    /// re-fetches them; nothing unwritten is ever trusted). They are staged meanwhile:
    /// served to other peers at once. Returns the ranges written and the error that
    /// stopped the stream, if any.
    pub fn ingest_deferred(
        &mut self,
        encoded: impl Read,
        ranges: &ChunkRanges,
    ) -> (ChunkRanges, Result<(), IngestError>) {
        let (got, result) = self.write_verified(encoded, ranges);
        self.store.stage(&self.hash, &got);
        (got, result)
    }

    fn write_verified(
        &mut self,
        encoded: impl Read,
        ranges: &ChunkRanges,
    ) -> (ChunkRanges, Result<(), IngestError>) {
        let root = blake3::Hash::from_bytes(self.hash.0);
        let tree = BaoTree::new(self.rec.length, BLOCK_SIZE);
        let mut got = ChunkRanges::empty();
        let mut result = Ok(());
        let mut next_offset = 0;
        for item in DecodeResponseIter::new(root, tree, encoded, ranges) {
            match item {
                Ok(BaoContentItem::Parent(p)) => {
                    if let Err(e) = self.outboard.save(p.node, &p.pair) {
                        result = Err(BlobError::Io {
                            path: self.store.outboard_path(&self.hash).display().to_string(),
                            source: e,
                        }
                        .into());
                        break;
                    }
                }
                Ok(BaoContentItem::Leaf(leaf)) => {
                    let path = self.store.data_path(&self.hash);
                    if let Err(source) = positioned_write(&mut self.data, leaf.offset, &leaf.data) {
                        result = Err(BlobError::Io {
                            path: path.display().to_string(),
                            source,
                        }
                        .into());
                        break;
                    }
                    let start = leaf.offset / 1024;
                    let end = (leaf.offset + leaf.data.len() as u64).div_ceil(1024);
                    got |= ChunkRanges::from(ChunkNum(start)..ChunkNum(end));
                    next_offset = leaf.offset + leaf.data.len() as u64;
                }
                Err(e) => {
                    use bao_tree::io::DecodeError as D;
                    result = Err(match e {
                        D::LeafNotFound(c) => IngestError::Truncated {
                            offset: c.to_bytes(),
                        },
                        D::ParentNotFound(_) => IngestError::Truncated {
                            offset: next_offset,
                        },
                        D::LeafHashMismatch(c) => IngestError::Verification {
                            offset: c.to_bytes(),
                            reason: "chunk group hash mismatch".into(),
                        },
                        D::ParentHashMismatch(n) => IngestError::Verification {
                            offset: next_offset,
                            reason: format!("parent hash mismatch at tree node {n:?}"),
                        },
                        // The peer's stream failed or ended.
                        D::Io(_) => IngestError::Truncated {
                            offset: next_offset,
                        },
                    });
                    break;
                }
            }
        }
        (got, result)
    }
}

fn positioned_write(file: &mut File, offset: u64, data: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.write_all_at(data, offset)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Non-repeating bytes (a tampered position can be found by its content).
    fn content(n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 32);
        let mut block = 0u64;
        while out.len() < n {
            out.extend_from_slice(blake3::hash(&block.to_le_bytes()).as_bytes());
            block += 1;
        }
        out.truncate(n);
        out
    }

    /// A publisher's and a downloader's store (keep the dirs alive while they are used).
    fn two_stores() -> ((tempfile::TempDir, tempfile::TempDir), BlobStore, BlobStore) {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (src, dst) = (
            BlobStore::open(a.path()).unwrap(),
            BlobStore::open(b.path()).unwrap(),
        );
        ((a, b), src, dst)
    }

    fn stream(store: &BlobStore, h: &BlobHash, ranges: &ChunkRanges) -> Vec<u8> {
        let mut out = Vec::new();
        store.encode(h, ranges, &mut out).unwrap();
        out
    }

    #[test]
    fn a_blob_moves_between_stores_verified_and_resumable() {
        let (_dirs, src, dst) = two_stores();
        let bytes = content(300_000);
        let (h, len) = src.import(bytes.as_slice(), true).unwrap();
        assert_eq!(h, BlobHash::of(&bytes), "the address is the BLAKE3 hash");
        assert_eq!(len, 300_000);
        // First half, then the rest after "restarting" (a new Download on the same store).
        let first = ChunkRanges::from(ChunkNum(0)..ChunkNum(128));
        let mut d = dst.download(h, len).unwrap();
        let n = d
            .ingest(stream(&src, &h, &first).as_slice(), &first)
            .unwrap();
        assert_eq!(n, 128 * 1024);
        drop(d);
        let mut d = dst.download(h, len).unwrap();
        let missing = d.missing();
        assert_eq!(ranges_to_vec(&missing), vec![(128, 293)]);
        d.ingest(stream(&src, &h, &missing).as_slice(), &missing)
            .unwrap();
        assert!(d.is_complete());
        let mut copy = Vec::new();
        dst.open_blob(&h).unwrap().read_to_end(&mut copy).unwrap();
        assert_eq!(copy, bytes);
        // The copy can be served on.
        let all = all_chunks(len);
        assert!(!stream(&dst, &h, &all).is_empty());
    }

    #[test]
    fn staged_ranges_are_served_at_once_but_recorded_only_when_committed() {
        let (dirs, src, dst) = two_stores();
        let bytes = content(300_000);
        let (h, len) = src.import(bytes.as_slice(), true).unwrap();
        let first = ChunkRanges::from(ChunkNum(0)..ChunkNum(128));
        let mut d = dst.download(h, len).unwrap();
        let (got, r) = d.ingest_deferred(stream(&src, &h, &first).as_slice(), &first);
        r.unwrap();
        assert_eq!(got, first);
        drop(d);
        // Servable (HAVE lists it, a third node can fetch it verified) ...
        let (rec, servable) = dst.servable(&h).unwrap().unwrap();
        assert_eq!(servable, first);
        assert!(rec.verified.is_empty(), "not recorded before its commit");
        let relay = tempfile::tempdir().unwrap();
        let third = BlobStore::open(relay.path()).unwrap();
        let mut d3 = third.download(h, len).unwrap();
        d3.ingest(stream(&dst, &h, &first).as_slice(), &first)
            .unwrap();
        assert_eq!(d3.verified_bytes(), 128 * 1024);
        // ... but ranges neither staged nor recorded are not.
        let rest = all_chunks(len) - first.clone();
        assert!(matches!(
            dst.encode(&h, &rest, Vec::new()),
            Err(BlobError::Missing(_))
        ));
        // A restart forgets staged ranges: they are fetched again, never trusted unsynced.
        drop(dst);
        let dst = BlobStore::open(dirs.1.path()).unwrap();
        assert!(dst.servable(&h).unwrap().unwrap().1.is_empty());
        assert!(dst.encode(&h, &first, Vec::new()).is_err());
        // Committed: recorded, and no longer staged.
        let mut d = dst.download(h, len).unwrap();
        let (got, r) = d.ingest_deferred(stream(&src, &h, &first).as_slice(), &first);
        r.unwrap();
        drop(d);
        let rec = dst.commit(&h, &got).unwrap();
        assert_eq!(rec.verified, vec![(0, 128)]);
        assert!(dst.staged.lock().unwrap().is_empty());
        // gc forgets staged ranges with the blob.
        let mut d = dst.download(h, len).unwrap();
        let (_, r) = d.ingest_deferred(stream(&src, &h, &rest).as_slice(), &rest);
        r.unwrap();
        drop(d);
        assert!(
            dst.servable(&h)
                .unwrap()
                .unwrap()
                .1
                .is_superset(&all_chunks(len))
        );
        dst.gc(&[]).unwrap();
        assert!(dst.servable(&h).unwrap().is_none());
        assert!(dst.staged.lock().unwrap().is_empty());
    }

    #[test]
    fn a_tampered_chunk_is_detected_within_one_chunk_group_and_never_stored() {
        let (_dirs, src, dst) = two_stores();
        let bytes = content(200_000);
        let (h, len) = src.import(bytes.as_slice(), false).unwrap();
        let all = all_chunks(len);
        let mut s = stream(&src, &h, &all);
        // Flip one byte in the data of the 5th chunk group (the stream interleaves parent
        // hashes; find the data by content).
        let target = 5 * CHUNK_GROUP_BYTES as usize + 100;
        let needle = &bytes[target..target + 32];
        let at = s.windows(32).position(|w| w == needle).unwrap();
        s[at] ^= 0xff;
        let mut d = dst.download(h, len).unwrap();
        let err = d.ingest(s.as_slice(), &all).unwrap_err();
        match err {
            IngestError::Verification { offset, .. } => {
                assert_eq!(offset, 5 * CHUNK_GROUP_BYTES, "detected at the bad group")
            }
            other => panic!("{other}"),
        }
        // The 5 good groups before it are kept; the bad one is not stored.
        assert_eq!(d.verified_bytes(), 5 * CHUNK_GROUP_BYTES);
        assert!(!d.is_complete());
        let missing = d.missing();
        assert_eq!(ranges_to_vec(&missing)[0].0, 5 * 16);
        // Fetched "elsewhere" (a good stream), the download completes.
        d.ingest(stream(&src, &h, &missing).as_slice(), &missing)
            .unwrap();
        assert!(d.is_complete());
    }

    #[test]
    fn concurrent_imports_keep_their_own_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(BlobStore::open(dir.path()).unwrap());
        let handles: Vec<_> = (0..4u8)
            .map(|i| {
                let store = store.clone();
                std::thread::spawn(move || {
                    let bytes: Vec<u8> = (0..300_000u32).map(|j| (j as u8) ^ i).collect();
                    let (h, len) = store.import(bytes.as_slice(), false).unwrap();
                    (h, len, bytes)
                })
            })
            .collect();
        for handle in handles {
            let (h, len, bytes) = handle.join().unwrap();
            assert_eq!(len, bytes.len() as u64);
            assert_eq!(h.0, *blake3::hash(&bytes).as_bytes());
            let mut stored = Vec::new();
            store
                .open_blob(&h)
                .unwrap()
                .read_to_end(&mut stored)
                .unwrap();
            assert_eq!(stored, bytes);
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn an_oversize_import_stops_reading_at_the_limit() {
        /// An endless source that counts what was read from it.
        struct Endless(u64);
        impl Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                buf.fill(7);
                self.0 += buf.len() as u64;
                Ok(buf.len())
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let mut source = Endless(0);
        let err = store
            .import_limited(&mut source, false, 100_000)
            .unwrap_err();
        assert!(matches!(err, BlobError::TooLarge(100_001)), "{err}");
        assert!(source.0 <= 100_001 + 64 * 1024, "read {} bytes", source.0);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "only state.redb"
        );
    }

    #[test]
    fn truncated_streams_and_wrong_lengths_are_reported() {
        let (_dirs, src, dst) = two_stores();
        let (h, len) = src.import(content(100_000).as_slice(), false).unwrap();
        let all = all_chunks(len);
        let s = stream(&src, &h, &all);
        let mut d = dst.download(h, len).unwrap();
        let err = d.ingest(&s[..s.len() / 2], &all).unwrap_err();
        assert!(matches!(err, IngestError::Truncated { .. }), "{err}");
        assert!(d.verified_bytes() > 0);
        drop(d);
        assert!(matches!(
            dst.download(h, len + 1).unwrap_err(),
            BlobError::LengthMismatch { .. }
        ));
        assert!(matches!(
            dst.download(h, MAX_BLOB_BYTES + 1).unwrap_err(),
            BlobError::TooLarge(_)
        ));
        // Serving a partial blob's missing range is refused.
        let mut out = Vec::new();
        assert!(dst.encode(&h, &all, &mut out).is_err());
    }

    #[test]
    fn gc_keeps_pinned_and_named_blobs() {
        let a = tempfile::tempdir().unwrap();
        let s = BlobStore::open(a.path()).unwrap();
        let (pinned, _) = s.import(&b"mandatory"[..], true).unwrap();
        let (kept, _) = s.import(&b"in the current release"[..], false).unwrap();
        let (old, _) = s.import(&b"an old optional component"[..], false).unwrap();
        let freed = s.gc(&[kept]).unwrap();
        assert_eq!(freed, 25);
        assert!(s.get(&pinned).unwrap().is_some());
        assert!(s.get(&kept).unwrap().is_some());
        assert!(s.get(&old).unwrap().is_none());
        assert!(!a.path().join(format!("{old}.data")).exists());
        s.set_pinned(&pinned, false).unwrap();
        s.gc(&[]).unwrap();
        assert!(s.list().unwrap().is_empty());
    }

    #[test]
    fn damaged_stored_data_is_not_served() {
        let a = tempfile::tempdir().unwrap();
        let s = BlobStore::open(a.path()).unwrap();
        let (h, len) = s.import(content(50_000).as_slice(), false).unwrap();
        let path = a.path().join(format!("{h}.data"));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[20_000] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        let mut out = Vec::new();
        let err = s.encode(&h, &all_chunks(len), &mut out).unwrap_err();
        assert!(matches!(err, BlobError::Damaged { .. }), "{err}");
    }
}
