//! The node's share of the Kademlia DHT, in its own redb file (`dht.redb`; safe to delete,
//! peers re-publish into it).
//!
//! - Value records are only `sd/<PeerId>`: every put is validated like the catalogue
//!   validates a record (signature, membership, revocation, expiry) and kept only if it wins
//!   under the merge rules, so a peer cannot overwrite a newer version or plant garbage.
//! - Provider records are only `attr/<announced field>/<value>` and `blob/<hex>` keys, with a
//!   cap per key and in total.
//!
//! Expiry is kept as wall-clock milliseconds (a record's own `expires_at`; a provider
//! record's TTL) and translated to and from the monotonic `Instant`s Kademlia uses.

use std::{
    borrow::Cow,
    path::Path,
    time::{Duration, Instant},
};

use gaiamesh_directory::dht::{self, DhtRecordError};
use gaiamesh_protocol::{federation::FederationTrust, sd::SignedSelfDescription};
use libp2p::{
    Multiaddr, PeerId,
    kad::{ProviderRecord, Record, RecordKey, store},
};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};
use tracing::warn;

/// `sd/<PeerId>` → the encoded signed self-description.
const RECORDS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("dht_records_v1");
/// `len(key) as u16 BE ‖ key ‖ provider PeerId bytes` → [`StoredProvider`].
const PROVIDERS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("dht_providers_v1");

/// Capacity limits of a [`DhtStore`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct DhtLimits {
    /// Value records at most.
    pub(crate) max_records: u64,
    /// Provider records for one key at most (a light query on a very common attribute sees
    /// at most this many providers per DHT node it asks).
    pub(crate) max_providers_per_key: usize,
    /// Provider records in total at most.
    pub(crate) max_providers: u64,
}

impl Default for DhtLimits {
    fn default() -> Self {
        Self {
            max_records: 200_000,
            max_providers_per_key: 512,
            max_providers: 1_000_000,
        }
    }
}

/// Why the store refused a record.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DhtStoreError {
    /// The record or key is invalid.
    #[error(transparent)]
    Invalid(#[from] DhtRecordError),
    /// At capacity.
    #[error("the DHT store is full ({0})")]
    Full(&'static str),
    /// The database failed.
    #[error("DHT storage: {0}")]
    Storage(#[from] redb::Error),
}

fn storage(e: impl Into<redb::Error>) -> DhtStoreError {
    DhtStoreError::Storage(e.into())
}

impl From<DhtStoreError> for store::Error {
    fn from(e: DhtStoreError) -> Self {
        match e {
            DhtStoreError::Full("provider records") => store::Error::MaxProvidedKeys,
            DhtStoreError::Full(_) => store::Error::MaxRecords,
            // Kademlia's error type has no variant for an invalid value; the real reason is
            // logged where it happens (inbound puts are validated before they get here).
            DhtStoreError::Invalid(_) | DhtStoreError::Storage(_) => store::Error::ValueTooLarge,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct StoredProvider {
    /// Wall-clock expiry, if any.
    expires_ms: Option<u64>,
    /// Multiaddr bytes.
    addresses: Vec<Vec<u8>>,
}

/// Kademlia's record store for a gaiamesh node.
pub(crate) struct DhtStore {
    db: Database,
    local: PeerId,
    trust: FederationTrust,
    limits: DhtLimits,
    /// Non-durable commits since the last durable one.
    unsynced: std::cell::Cell<u32>,
    last_sync: std::cell::Cell<Instant>,
}

/// A durable commit after this many non-durable ones or this long, whichever first. The
/// DHT share is a cache that peers re-publish into: losing the last few seconds of it in a
/// crash costs nothing, while an fsync per provider record (thousands when a federation
/// starts) stalled the event loop and gossip with it.
const SYNC_EVERY_WRITES: u32 = 512;
const SYNC_EVERY: Duration = Duration::from_secs(10);

impl std::fmt::Debug for DhtStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DhtStore")
            .field("local", &self.local)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    crate::now().0
}

fn to_wall(expires: Option<Instant>) -> Option<u64> {
    expires.map(|t| {
        let left = t.saturating_duration_since(Instant::now());
        now_ms().saturating_add(u64::try_from(left.as_millis()).unwrap_or(u64::MAX))
    })
}

fn to_instant(expires_ms: u64) -> Instant {
    Instant::now() + Duration::from_millis(expires_ms.saturating_sub(now_ms()))
}

fn provider_prefix(key: &[u8]) -> Vec<u8> {
    let len = u16::try_from(key.len()).unwrap_or(u16::MAX);
    let mut p = Vec::with_capacity(2 + key.len() + 38);
    p.extend_from_slice(&len.to_be_bytes());
    p.extend_from_slice(key);
    p
}

fn provider_row(key: &[u8], provider: &PeerId) -> Vec<u8> {
    let mut row = provider_prefix(key);
    row.extend_from_slice(&provider.to_bytes());
    row
}

impl DhtStore {
    /// Opens (or creates) the store at `path`.
    pub(crate) fn open(
        path: &Path,
        local: PeerId,
        trust: FederationTrust,
        limits: DhtLimits,
    ) -> Result<Self, DhtStoreError> {
        let db = Database::create(path).map_err(storage)?;
        let txn = db.begin_write().map_err(storage)?;
        txn.open_table(RECORDS).map_err(storage)?;
        txn.open_table(PROVIDERS).map_err(storage)?;
        txn.commit().map_err(storage)?;
        Ok(Self {
            db,
            local,
            trust,
            limits,
            unsynced: std::cell::Cell::new(0),
            last_sync: std::cell::Cell::new(Instant::now()),
        })
    }

    /// A write transaction, durable only now and then (see [`SYNC_EVERY_WRITES`]).
    fn begin_write(&self) -> Result<redb::WriteTransaction, redb::Error> {
        let mut txn = self.db.begin_write()?;
        let due = self.unsynced.get() >= SYNC_EVERY_WRITES
            || self.last_sync.get().elapsed() >= SYNC_EVERY;
        if due {
            self.unsynced.set(0);
            self.last_sync.set(Instant::now());
        } else {
            self.unsynced.set(self.unsynced.get() + 1);
            txn.set_durability(redb::Durability::None)
                .map_err(|e| redb::Error::Corrupted(e.to_string()))?;
        }
        Ok(txn)
    }

    /// Replaces the trust the store validates against (after a revocation list).
    pub(crate) fn set_trust(&mut self, trust: FederationTrust) {
        self.trust = trust;
    }

    /// Validates and stores a `sd/` record. `Ok(false)`: valid, but the stored version wins.
    pub(crate) fn try_put(&mut self, key: &[u8], value: &[u8]) -> Result<bool, DhtStoreError> {
        let incoming = dht::validate_sd_record(&self.trust, key, value, crate::now())?;
        let txn = self.begin_write().map_err(storage)?;
        {
            let mut table = txn.open_table(RECORDS).map_err(storage)?;
            let stored = table
                .get(key)
                .map_err(storage)?
                .map(|v| SignedSelfDescription::decode(v.value()));
            match stored {
                Some(Ok(old)) if !dht::replaces(&old, &incoming) => return Ok(false),
                Some(_) => {}
                None if table.len().map_err(storage)? >= self.limits.max_records => {
                    return Err(DhtStoreError::Full("records"));
                }
                None => {}
            }
            table.insert(key, value).map_err(storage)?;
        }
        txn.commit().map_err(storage)?;
        Ok(true)
    }

    /// Validates and stores a provider record.
    pub(crate) fn try_add_provider(
        &mut self,
        record: &ProviderRecord,
    ) -> Result<(), DhtStoreError> {
        dht::validate_provider_key(record.key.as_ref())?;
        let row = provider_row(record.key.as_ref(), &record.provider);
        let value = postcard::to_stdvec(&StoredProvider {
            expires_ms: to_wall(record.expires),
            addresses: record
                .addresses
                .iter()
                .take(8)
                .map(Multiaddr::to_vec)
                .collect(),
        })
        .map_err(|_| DhtStoreError::Full("provider encoding"))?;
        let txn = self.begin_write().map_err(storage)?;
        {
            let mut table = txn.open_table(PROVIDERS).map_err(storage)?;
            if table.get(row.as_slice()).map_err(storage)?.is_none() {
                let prefix = provider_prefix(record.key.as_ref());
                let for_key = table
                    .range(prefix.as_slice()..)
                    .map_err(storage)?
                    .take_while(|r| {
                        r.as_ref()
                            .is_ok_and(|(k, _)| k.value().starts_with(&prefix))
                    })
                    .count();
                if for_key >= self.limits.max_providers_per_key
                    || table.len().map_err(storage)? >= self.limits.max_providers
                {
                    return Err(DhtStoreError::Full("provider records"));
                }
            }
            table
                .insert(row.as_slice(), value.as_slice())
                .map_err(storage)?;
        }
        txn.commit().map_err(storage)?;
        Ok(())
    }

    fn decode_record(key: &[u8], value: &[u8], now: u64) -> Option<Record> {
        let sd = SignedSelfDescription::decode(value).ok()?;
        if sd.sd.expires_at.0 <= now {
            return None;
        }
        Some(Record {
            key: RecordKey::new(&key),
            value: value.to_vec(),
            publisher: Some(sd.sd.subject.to_peer_id()),
            expires: Some(to_instant(sd.sd.expires_at.0)),
        })
    }

    fn decode_provider(key: &[u8], row: &[u8], value: &[u8], now: u64) -> Option<ProviderRecord> {
        let stored: StoredProvider = postcard::from_bytes(value).ok()?;
        if stored.expires_ms.is_some_and(|e| e <= now) {
            return None;
        }
        let provider = PeerId::from_bytes(row.get(2 + key.len()..)?).ok()?;
        Some(ProviderRecord {
            key: RecordKey::new(&key),
            provider,
            expires: stored.expires_ms.map(to_instant),
            addresses: stored
                .addresses
                .iter()
                .filter_map(|a| Multiaddr::try_from(a.clone()).ok())
                .collect(),
        })
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&redb::ReadTransaction) -> Result<T, redb::Error>,
    ) -> Option<T> {
        let result = self
            .db
            .begin_read()
            .map_err(redb::Error::from)
            .and_then(|txn| f(&txn));
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                warn!(error = %e, "DHT store read failed");
                None
            }
        }
    }

    fn write(&self, f: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>) {
        let result = self.begin_write().and_then(|txn| {
            f(&txn)?;
            txn.commit().map_err(redb::Error::from)
        });
        if let Err(e) = result {
            warn!(error = %e, "DHT store write failed");
        }
    }

    fn all_providers(&self, only_local: bool) -> Vec<ProviderRecord> {
        let now = now_ms();
        self.read(|txn| {
            let table = txn.open_table(PROVIDERS)?;
            let mut out = Vec::new();
            for row in table.iter()? {
                let (k, v) = row?;
                let row = k.value();
                let Some(len) = row
                    .get(..2)
                    .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
                else {
                    continue;
                };
                let Some(key) = row.get(2..2 + len) else {
                    continue;
                };
                if let Some(p) = Self::decode_provider(key, row, v.value(), now)
                    && (!only_local || p.provider == self.local)
                {
                    out.push(p);
                }
            }
            Ok(out)
        })
        .unwrap_or_default()
    }
}

impl Drop for DhtStore {
    /// Persists the non-durable commits on a clean shutdown.
    fn drop(&mut self) {
        if self.unsynced.get() > 0
            && let Ok(txn) = self.db.begin_write()
        {
            let _ = txn.commit();
        }
    }
}

impl store::RecordStore for DhtStore {
    type RecordsIter<'a> = std::vec::IntoIter<Cow<'a, Record>>;
    type ProvidedIter<'a> = std::vec::IntoIter<Cow<'a, ProviderRecord>>;

    fn get(&self, k: &RecordKey) -> Option<Cow<'_, Record>> {
        let now = now_ms();
        self.read(|txn| {
            let table = txn.open_table(RECORDS)?;
            Ok(table
                .get(k.as_ref())?
                .and_then(|v| Self::decode_record(k.as_ref(), v.value(), now)))
        })
        .flatten()
        .map(Cow::Owned)
    }

    fn put(&mut self, r: Record) -> store::Result<()> {
        self.try_put(r.key.as_ref(), &r.value)
            .map(|_| ())
            .map_err(|e| {
                warn!(error = %e, "DHT record refused");
                e.into()
            })
    }

    fn remove(&mut self, k: &RecordKey) {
        self.write(|txn| {
            txn.open_table(RECORDS)?.remove(k.as_ref())?;
            Ok(())
        });
    }

    fn records(&self) -> Self::RecordsIter<'_> {
        let now = now_ms();
        self.read(|txn| {
            let table = txn.open_table(RECORDS)?;
            let mut out = Vec::new();
            for row in table.iter()? {
                let (k, v) = row?;
                if let Some(r) = Self::decode_record(k.value(), v.value(), now) {
                    out.push(Cow::Owned(r));
                }
            }
            Ok(out)
        })
        .unwrap_or_default()
        .into_iter()
    }

    fn add_provider(&mut self, record: ProviderRecord) -> store::Result<()> {
        self.try_add_provider(&record).map_err(|e| {
            warn!(error = %e, "DHT provider record refused");
            e.into()
        })
    }

    fn providers(&self, key: &RecordKey) -> Vec<ProviderRecord> {
        let now = now_ms();
        let prefix = provider_prefix(key.as_ref());
        self.read(|txn| {
            let table = txn.open_table(PROVIDERS)?;
            let mut out = Vec::new();
            for row in table.range(prefix.as_slice()..)? {
                let (k, v) = row?;
                if !k.value().starts_with(&prefix) {
                    break;
                }
                if let Some(p) = Self::decode_provider(key.as_ref(), k.value(), v.value(), now) {
                    out.push(p);
                }
            }
            // Kademlia answers a provider lookup with at most k (20) of these. In stored
            // order every node would return the same 20; shuffled, the ~20 nodes a lookup
            // asks return different samples, so a lookup sees all of a key's providers
            // when there are up to about a hundred.
            rand::seq::SliceRandom::shuffle(out.as_mut_slice(), &mut rand::thread_rng());
            Ok(out)
        })
        .unwrap_or_default()
    }

    fn provided(&self) -> Self::ProvidedIter<'_> {
        self.all_providers(true)
            .into_iter()
            .map(Cow::Owned)
            .collect::<Vec<_>>()
            .into_iter()
    }

    fn remove_provider(&mut self, k: &RecordKey, p: &PeerId) {
        let row = provider_row(k.as_ref(), p);
        self.write(|txn| {
            txn.open_table(PROVIDERS)?.remove(row.as_slice())?;
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use gaiamesh_protocol::testing::{TestFederation, example_documents, key};
    use libp2p::kad::store::RecordStore;

    use super::*;

    fn open(dir: &Path, fed: &TestFederation, limits: DhtLimits) -> DhtStore {
        DhtStore::open(
            &dir.join("dht.redb"),
            key(9).public().to_peer_id(),
            fed.trust.clone(),
            limits,
        )
        .unwrap()
    }

    fn record(fed: &TestFederation, seed: u8, seq: u64, doc: usize) -> (Vec<u8>, Vec<u8>) {
        let k = key(seed);
        let sd = fed.sign_document_at(&k, seq, example_documents()[doc].clone(), crate::now());
        (dht::sd_key(&k.public()), sd.encode().unwrap())
    }

    #[test]
    fn keeps_the_winning_version_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let fed = TestFederation::new(3, 2, true);
        let (key1, v1) = record(&fed, 1, 10, 0);
        let (_, v2) = record(&fed, 1, 11, 1);
        {
            let mut s = open(dir.path(), &fed, DhtLimits::default());
            assert!(s.try_put(&key1, &v2).unwrap());
            assert!(
                !s.try_put(&key1, &v1).unwrap(),
                "a lower seq never replaces"
            );
            let got = s.get(&RecordKey::new(&key1)).unwrap();
            assert_eq!(got.value, v2);
            assert_eq!(got.publisher, Some(key(1).public().to_peer_id()));
            assert!(got.expires.is_some());
        }
        let s = open(dir.path(), &fed, DhtLimits::default());
        assert_eq!(s.get(&RecordKey::new(&key1)).unwrap().value, v2);
        assert_eq!(s.records().count(), 1);
    }

    #[test]
    fn refuses_forged_misplaced_and_foreign_records() {
        let dir = tempfile::tempdir().unwrap();
        let fed = TestFederation::new(3, 2, true);
        let mut s = open(dir.path(), &fed, DhtLimits::default());
        let (key1, v1) = record(&fed, 1, 10, 0);
        let (key2, _) = record(&fed, 2, 10, 0);
        let mut forged = v1.clone();
        let n = forged.len() - 1;
        forged[n] ^= 0x40;
        for (k, v) in [(&key1, &forged), (&key2, &v1), (&b"attr/x/y".to_vec(), &v1)] {
            let err = s.try_put(k, v).unwrap_err();
            assert!(matches!(err, DhtStoreError::Invalid(_)), "{err}");
            assert!(s.put(Record::new(k.clone(), v.clone())).is_err());
        }
        let other = TestFederation::with_seed(7, 3, 2, true);
        let (k3, v3) = record(&other, 3, 10, 0);
        assert!(s.try_put(&k3, &v3).is_err(), "another federation's member");
        assert_eq!(s.records().count(), 0, "nothing invalid was stored");
        assert!(s.try_put(&key1, &v1).unwrap());
    }

    #[test]
    fn provider_records_are_bounded_and_validated() {
        let dir = tempfile::tempdir().unwrap();
        let fed = TestFederation::new(3, 2, true);
        let limits = DhtLimits {
            max_providers_per_key: 3,
            ..DhtLimits::default()
        };
        let mut s = open(dir.path(), &fed, limits);
        let k = RecordKey::new(&b"attr/node.location.country/de");
        let provider = |i: u8| ProviderRecord {
            key: k.clone(),
            provider: key(i).public().to_peer_id(),
            expires: Some(Instant::now() + Duration::from_secs(60)),
            addresses: vec!["/ip4/127.0.0.1/udp/4001/quic-v1".parse().unwrap()],
        };
        for i in 0..3 {
            s.add_provider(provider(i)).unwrap();
        }
        s.add_provider(provider(1)).unwrap();
        assert!(s.add_provider(provider(5)).is_err(), "per-key cap");
        let got = s.providers(&k);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].addresses.len(), 1);
        s.remove_provider(&k, &key(0).public().to_peer_id());
        assert_eq!(s.providers(&k).len(), 2);
        let bad = ProviderRecord {
            key: RecordKey::new(&b"attr/node.energy.pue/1"),
            ..provider(4)
        };
        assert!(s.add_provider(bad).is_err());
        let mut own = provider(9);
        own.key = RecordKey::new(&b"attr/node.kind/cloud");
        s.add_provider(own).unwrap();
        assert_eq!(s.provided().count(), 1);
        let expired = ProviderRecord {
            key: RecordKey::new(&b"attr/node.kind/edge"),
            expires: Some(Instant::now()),
            ..provider(4)
        };
        s.add_provider(expired).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert!(
            s.providers(&RecordKey::new(&b"attr/node.kind/edge"))
                .is_empty()
        );
    }
}
