//! The append-only, hash-chained audit log (`DATA_DIR/audit.redb`): agreements, transfers,
//! receipts and refusals, on the provider's and on the consumer's side.
//!
//! Entry `n` holds the hash of entry `n-1`; each entry's hash (BLAKE3 of its encoding) is
//! signed by the node key, and so is the head (the last sequence number and hash). An edited
//! entry breaks its hash or signature, a removed one breaks the chain, and a removed tail
//! no longer matches the signed head — none of which can be repaired without the node key.
//! [`verify_chain`] is the pure check; [`AuditLog`] stores the records in redb.

use std::{path::Path, sync::Mutex};

use gaiamesh_directory::store::copy_table;
use gaiamesh_protocol::{
    codec,
    identity::{Domain, Keypair, PublicKey, Signature},
    time::UnixMillis,
};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::contract::{Agreement, AgreementId, Receipt};

const ENTRIES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("audit_entries_v1");
const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("audit_meta_v1");
/// Derived index: agreement id → seq of its entry.
const AGREEMENTS: TableDefinition<'_, &[u8], u64> = TableDefinition::new("audit_agreements_v1");
/// Derived index: `asset\0consumer key` → agreements the provider made.
const COUNTS: TableDefinition<'_, &[u8], u32> = TableDefinition::new("audit_counts_v1");

/// Largest encoded record.
pub const MAX_RECORD_BYTES: usize = 16 * 1024;
/// Most entries one `list` returns.
pub const MAX_LIST: usize = 10_000;

/// Which side of an exchange this node was on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// It served the data.
    Provider,
    /// It received the data.
    Consumer,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A finalized agreement, signed by both.
    Agreement {
        /// This node's side.
        role: Role,
        /// Its id.
        id: AgreementId,
        /// The agreement.
        agreement: Box<Agreement>,
    },
    /// A negotiation or transfer that was refused or terminated.
    Refusal {
        /// This node's side.
        role: Role,
        /// The other peer.
        peer: String,
        /// The asset asked for.
        asset: String,
        /// The purpose stated.
        purpose: String,
        /// Why.
        reason: String,
    },
    /// A transfer (or a part of one, after a drop) ended.
    Transfer {
        /// This node's side.
        role: Role,
        /// Under which agreement.
        agreement: AgreementId,
        /// Which file (index in the manifest).
        file: u32,
        /// Where it started (non-zero: resumed).
        offset: u64,
        /// Bytes moved this time.
        bytes: u64,
        /// `completed`, or what went wrong.
        outcome: String,
    },
    /// The consumer's signed receipt.
    Receipt {
        /// This node's side.
        role: Role,
        /// The receipt.
        receipt: Box<Receipt>,
    },
    /// A compute job's usage record, signed by the provider and countersigned by the
    /// consumer (appended last so that older logs decode unchanged).
    Usage {
        /// This node's side.
        role: Role,
        /// The record.
        record: Box<crate::compute::UsageRecord>,
    },
}

impl Event {
    /// Short kind name.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Agreement { .. } => "agreement",
            Event::Refusal { .. } => "refusal",
            Event::Transfer { .. } => "transfer",
            Event::Receipt { .. } => "receipt",
            Event::Usage { .. } => "usage",
        }
    }
}

/// One entry of the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Position, from 0.
    pub seq: u64,
    /// When.
    pub at: UnixMillis,
    /// Hash of the previous entry (zeros for the first).
    pub prev: [u8; 32],
    /// What.
    pub event: Event,
}

impl Entry {
    /// The JSON view of the entry (hashes and ids in hex) that the API and the CLI show.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "seq": self.seq,
            "at": self.at,
            "prev": hex::encode(self.prev),
            "kind": self.event.kind(),
            "event": self.event,
        })
    }

    /// BLAKE3 of its encoding.
    pub fn hash(&self) -> Result<[u8; 32], AuditError> {
        Ok(*blake3::hash(&codec::encode("audit entry", self, MAX_RECORD_BYTES)?).as_bytes())
    }
}

/// An entry with the node's signature over its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The entry.
    pub entry: Entry,
    /// Signature over `entry.hash()`.
    pub signature: Signature,
}

/// The last entry, signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// Entries in the log.
    pub len: u64,
    /// Hash of the last entry.
    pub hash: [u8; 32],
    /// Signature over `len` and `hash`.
    pub signature: Signature,
}

fn head_message(len: u64, hash: &[u8; 32]) -> Vec<u8> {
    let mut m = b"head".to_vec();
    m.extend_from_slice(&len.to_be_bytes());
    m.extend_from_slice(hash);
    m
}

/// Why the log could not be used, or where its chain is broken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The chain is broken at an entry.
    #[error("audit log broken at entry {seq}: {reason}")]
    Broken {
        /// The first bad entry.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// The signed head does not match the entries.
    #[error("audit log head: {0}")]
    Head(String),
    /// Encoding.
    #[error(transparent)]
    Encode(#[from] codec::EncodeError),
    /// The database.
    #[error("audit database: {0}")]
    Storage(#[from] redb::Error),
}

fn db_err(e: impl Into<redb::Error>) -> AuditError {
    AuditError::Storage(e.into())
}

/// What [`verify_chain`] found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Verified {
    /// Entries checked.
    pub entries: u64,
    /// Hash of the last one, hex (empty for an empty log).
    pub head: String,
}

/// Checks that `records` (stored key, bytes) form one unbroken chain signed by `key`, ending
/// at `head`.
pub fn verify_chain<I>(
    records: I,
    head: Option<&[u8]>,
    key: &PublicKey,
) -> Result<Verified, AuditError>
where
    I: IntoIterator<Item = (u64, Vec<u8>)>,
{
    let mut prev = [0u8; 32];
    let mut expected = 0u64;
    for (stored_at, bytes) in records {
        if stored_at != expected {
            return Err(AuditError::Broken {
                seq: expected,
                reason: format!("missing (the next stored entry is {stored_at})"),
            });
        }
        let broken = |reason: String| AuditError::Broken {
            seq: expected,
            reason,
        };
        let rec: Record = codec::decode("audit record", &bytes, MAX_RECORD_BYTES)
            .map_err(|e| broken(e.to_string()))?;
        if rec.entry.seq != expected {
            return Err(broken(format!("says it is entry {}", rec.entry.seq)));
        }
        if rec.entry.prev != prev {
            return Err(broken(
                "does not follow the previous entry (chain hash differs)".into(),
            ));
        }
        let hash = rec.entry.hash()?;
        if !key.verify(Domain::AuditEntry, &hash, &rec.signature) {
            return Err(broken("signature does not verify (edited)".into()));
        }
        prev = hash;
        expected += 1;
    }
    match head {
        None if expected == 0 => {}
        None => return Err(AuditError::Head("missing while there are entries".into())),
        Some(bytes) => {
            let h: Head = codec::decode("audit head", bytes, MAX_RECORD_BYTES)
                .map_err(|e| AuditError::Head(e.to_string()))?;
            if !key.verify(
                Domain::AuditEntry,
                &head_message(h.len, &h.hash),
                &h.signature,
            ) {
                return Err(AuditError::Head("signature does not verify".into()));
            }
            if h.len != expected || h.hash != prev {
                return Err(AuditError::Head(format!(
                    "signed for {} entries, the log has {expected} (entries removed from the end)",
                    h.len
                )));
            }
        }
    }
    Ok(Verified {
        entries: expected,
        head: if expected == 0 {
            String::new()
        } else {
            hex::encode(prev)
        },
    })
}

/// The audit log of one node.
pub struct AuditLog {
    db: Database,
    key: Option<Keypair>,
    append: Mutex<()>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Writes a consistent copy of the log, as of one read transaction, to a new database at
    /// `path` (a backup of a running node). Returns the number of entries copied. The copy
    /// verifies like the original: the chain and its signatures are copied byte for byte.
    pub fn snapshot_to(&self, path: &Path) -> Result<u64, AuditError> {
        let read = self.db.begin_read().map_err(db_err)?;
        let out = Database::create(path).map_err(db_err)?;
        let write = out.begin_write().map_err(db_err)?;
        let entries = copy_table(&read, &write, ENTRIES).map_err(db_err)?;
        copy_table(&read, &write, META).map_err(db_err)?;
        copy_table(&read, &write, AGREEMENTS).map_err(db_err)?;
        copy_table(&read, &write, COUNTS).map_err(db_err)?;
        write.commit().map_err(db_err)?;
        Ok(entries)
    }

    /// Opens (or creates) the log at `path`; `key` signs new entries (`None`: read only).
    pub fn open(path: &Path, key: Option<Keypair>) -> Result<Self, AuditError> {
        let db = Database::create(path).map_err(db_err)?;
        let txn = db.begin_write().map_err(db_err)?;
        txn.open_table(ENTRIES).map_err(db_err)?;
        txn.open_table(META).map_err(db_err)?;
        txn.open_table(AGREEMENTS).map_err(db_err)?;
        txn.open_table(COUNTS).map_err(db_err)?;
        txn.commit().map_err(db_err)?;
        Ok(Self {
            db,
            key,
            append: Mutex::new(()),
        })
    }

    /// Appends `event`; returns its seq.
    pub fn append(&self, event: Event, at: UnixMillis) -> Result<u64, AuditError> {
        let Some(key) = &self.key else {
            return Err(AuditError::Head("opened read-only".into()));
        };
        let _guard = self
            .append
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let txn = self.db.begin_write().map_err(db_err)?;
        let seq;
        {
            let mut entries = txn.open_table(ENTRIES).map_err(db_err)?;
            let mut meta = txn.open_table(META).map_err(db_err)?;
            let (len, prev) = match meta.get("head").map_err(db_err)? {
                Some(v) => {
                    let h: Head = codec::decode("audit head", v.value(), MAX_RECORD_BYTES)
                        .map_err(|e| AuditError::Head(e.to_string()))?;
                    (h.len, h.hash)
                }
                None => (0, [0u8; 32]),
            };
            seq = len;
            let entry = Entry {
                seq,
                at,
                prev,
                event,
            };
            let hash = entry.hash()?;
            if let Event::Agreement {
                role,
                id,
                agreement,
            } = &entry.event
            {
                txn.open_table(AGREEMENTS)
                    .map_err(db_err)?
                    .insert(id.0.as_slice(), seq)
                    .map_err(db_err)?;
                if *role == Role::Provider {
                    let k = count_key(&agreement.body.asset, &agreement.body.consumer);
                    let mut counts = txn.open_table(COUNTS).map_err(db_err)?;
                    let n = counts
                        .get(k.as_slice())
                        .map_err(db_err)?
                        .map_or(0, |v| v.value());
                    counts
                        .insert(k.as_slice(), n.saturating_add(1))
                        .map_err(db_err)?;
                }
            }
            let rec = Record {
                signature: key.sign(Domain::AuditEntry, &hash),
                entry,
            };
            let bytes = codec::encode("audit record", &rec, MAX_RECORD_BYTES)?;
            entries.insert(seq, bytes.as_slice()).map_err(db_err)?;
            let head = Head {
                len: seq + 1,
                hash,
                signature: key.sign(Domain::AuditEntry, &head_message(seq + 1, &hash)),
            };
            let hb = codec::encode("audit head", &head, MAX_RECORD_BYTES)?;
            meta.insert("head", hb.as_slice()).map_err(db_err)?;
        }
        txn.commit().map_err(db_err)?;
        Ok(seq)
    }

    /// Entries from `from` on, at most `limit` (decodable ones; [`AuditLog::verify`] says
    /// whether the chain holds).
    pub fn list(&self, from: u64, limit: usize) -> Result<Vec<Entry>, AuditError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(ENTRIES).map_err(db_err)?;
        let mut out = Vec::new();
        for item in table.range(from..).map_err(db_err)? {
            if out.len() >= limit.min(MAX_LIST) {
                break;
            }
            let (_, v) = item.map_err(db_err)?;
            if let Ok(rec) = codec::decode::<Record>("audit record", v.value(), MAX_RECORD_BYTES) {
                out.push(rec.entry);
            }
        }
        Ok(out)
    }

    /// Entries stored.
    pub fn len(&self) -> Result<u64, AuditError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        txn.open_table(ENTRIES)
            .map_err(db_err)?
            .len()
            .map_err(db_err)
    }

    /// Whether it has no entries.
    pub fn is_empty(&self) -> Result<bool, AuditError> {
        Ok(self.len()? == 0)
    }

    /// Checks the whole chain against the node's public key.
    pub fn verify(&self, key: &PublicKey) -> Result<Verified, AuditError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(ENTRIES).map_err(db_err)?;
        let meta = txn.open_table(META).map_err(db_err)?;
        let head = meta
            .get("head")
            .map_err(db_err)?
            .map(|v| v.value().to_vec());
        let mut records = Vec::new();
        for item in table.iter().map_err(db_err)? {
            let (k, v) = item.map_err(db_err)?;
            records.push((k.value(), v.value().to_vec()));
        }
        verify_chain(records, head.as_deref(), key)
    }

    /// The agreement with this id, if this node recorded it.
    pub fn agreement(&self, id: &AgreementId) -> Result<Option<Agreement>, AuditError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let Some(seq) = txn
            .open_table(AGREEMENTS)
            .map_err(db_err)?
            .get(id.0.as_slice())
            .map_err(db_err)?
            .map(|v| v.value())
        else {
            return Ok(None);
        };
        let table = txn.open_table(ENTRIES).map_err(db_err)?;
        let Some(v) = table.get(seq).map_err(db_err)? else {
            return Ok(None);
        };
        let rec: Record =
            codec::decode("audit record", v.value(), MAX_RECORD_BYTES).map_err(|e| {
                AuditError::Broken {
                    seq,
                    reason: e.to_string(),
                }
            })?;
        Ok(match rec.entry.event {
            Event::Agreement {
                agreement, id: i, ..
            } if i == *id => Some(*agreement),
            _ => None,
        })
    }

    /// Agreements this node (as provider) made with `consumer` for `asset`.
    pub fn agreements_with(&self, asset: &str, consumer: &PublicKey) -> Result<u32, AuditError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let k = count_key(asset, consumer);
        Ok(txn
            .open_table(COUNTS)
            .map_err(db_err)?
            .get(k.as_slice())
            .map_err(db_err)?
            .map_or(0, |v| v.value()))
    }
}

fn count_key(asset: &str, consumer: &PublicKey) -> Vec<u8> {
    let mut k = asset.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&consumer.to_bytes());
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(n: u32) -> Event {
        Event::Refusal {
            role: Role::Provider,
            peer: format!("peer{n}"),
            asset: "a".into(),
            purpose: "p".into(),
            reason: "no".into(),
        }
    }

    type Raw = (Vec<(u64, Vec<u8>)>, Option<Vec<u8>>);

    fn raw(path: &Path) -> Raw {
        let db = Database::create(path).unwrap();
        let txn = db.begin_read().unwrap();
        let t = txn.open_table(ENTRIES).unwrap();
        let recs = t
            .iter()
            .unwrap()
            .map(|i| {
                let (k, v) = i.unwrap();
                (k.value(), v.value().to_vec())
            })
            .collect();
        let head = txn
            .open_table(META)
            .unwrap()
            .get("head")
            .unwrap()
            .map(|v| v.value().to_vec());
        (recs, head)
    }

    #[test]
    fn a_chain_verifies_and_any_edit_or_removal_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.redb");
        let key = Keypair::generate();
        let public = key.public();
        {
            let log = AuditLog::open(&path, Some(key.clone())).unwrap();
            assert_eq!(log.verify(&public).unwrap().entries, 0);
            for i in 0..5 {
                assert_eq!(
                    log.append(refusal(i), UnixMillis(u64::from(i))).unwrap(),
                    u64::from(i)
                );
            }
            assert_eq!(log.verify(&public).unwrap().entries, 5);
            assert_eq!(log.list(3, 10).unwrap().len(), 2);
        }
        let (recs, head) = raw(&path);
        verify_chain(recs.clone(), head.as_deref(), &public).unwrap();
        // Another key did not sign it.
        assert!(
            verify_chain(recs.clone(), head.as_deref(), &Keypair::generate().public()).is_err()
        );

        // Edited: the reason of entry 2 changed, re-encoded, signature kept.
        let mut edited = recs.clone();
        let mut rec: Record = codec::decode("r", &edited[2].1, MAX_RECORD_BYTES).unwrap();
        if let Event::Refusal { reason, .. } = &mut rec.entry.event {
            *reason = "yes".into();
        }
        edited[2].1 = postcard::to_stdvec(&rec).unwrap();
        let e = verify_chain(edited, head.as_deref(), &public).unwrap_err();
        assert!(matches!(e, AuditError::Broken { seq: 2, .. }), "{e}");

        // One flipped byte anywhere in an entry.
        let mut flipped = recs.clone();
        let last = flipped[1].1.len() - 1;
        flipped[1].1[last] ^= 1;
        let e = verify_chain(flipped, head.as_deref(), &public).unwrap_err();
        assert!(matches!(e, AuditError::Broken { seq: 1, .. }), "{e}");

        // Removed from the middle.
        let mut removed = recs.clone();
        removed.remove(3);
        let e = verify_chain(removed, head.as_deref(), &public).unwrap_err();
        assert!(matches!(e, AuditError::Broken { seq: 3, .. }), "{e}");

        // Removed from the end: the head says 5.
        let mut truncated = recs.clone();
        truncated.pop();
        let e = verify_chain(truncated, head.as_deref(), &public).unwrap_err();
        assert!(matches!(e, AuditError::Head(_)), "{e}");

        // Removed everywhere after 0 and renumbered: entry 1's chain hash differs.
        let mut renumbered = recs;
        renumbered.remove(1);
        for (i, r) in renumbered.iter_mut().enumerate() {
            r.0 = i as u64;
        }
        let e = verify_chain(renumbered, head.as_deref(), &public).unwrap_err();
        assert!(matches!(e, AuditError::Broken { seq: 1, .. }), "{e}");
    }

    #[test]
    fn agreements_are_indexed_and_counted() {
        use crate::contract::AgreementBody;
        use gaiamesh_protocol::federation::FederationId;
        let dir = tempfile::tempdir().unwrap();
        let (p, c) = (Keypair::generate(), Keypair::generate());
        let log = AuditLog::open(&dir.path().join("a.redb"), Some(p.clone())).unwrap();
        let body = AgreementBody {
            federation: FederationId([0; 32]),
            provider: p.public(),
            consumer: c.public(),
            consumer_registration: "vatID:DE1".into(),
            asset: "x".into(),
            manifest_blake3: String::new(),
            size: 1,
            files: 1,
            purpose: "r".into(),
            onward_transfer: false,
            policy: String::new(),
            policy_blake3: String::new(),
            nonce: [0; 16],
            agreed_at: UnixMillis(0),
            expires_at: UnixMillis(1),
        };
        let a = Agreement {
            provider_signature: body.sign(&p).unwrap(),
            consumer_signature: body.sign(&c).unwrap(),
            body,
        };
        let id = a.verify().unwrap();
        assert_eq!(log.agreements_with("x", &c.public()).unwrap(), 0);
        log.append(
            Event::Agreement {
                role: Role::Provider,
                id,
                agreement: Box::new(a.clone()),
            },
            UnixMillis(0),
        )
        .unwrap();
        assert_eq!(log.agreements_with("x", &c.public()).unwrap(), 1);
        assert_eq!(log.agreements_with("y", &c.public()).unwrap(), 0);
        assert_eq!(log.agreement(&id).unwrap(), Some(a));
        assert_eq!(log.agreement(&AgreementId([9; 32])).unwrap(), None);
        let ro = AuditLog::open(&dir.path().join("b.redb"), None).unwrap();
        assert!(ro.append(refusal(0), UnixMillis(0)).is_err());
    }
}
