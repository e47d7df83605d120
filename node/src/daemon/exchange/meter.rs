//! What the provider sent under each agreement, so that the consumer's receipt can be
//! answered with a signed usage record of the transfer (bytes, duration): the same metering
//! as a compute job's. Bounded: the oldest agreement's count goes when [`MAX_METERED`] are
//! kept (its receipt is then metered from the agreement's size, without a duration).

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::Instant,
};

use gaiamesh_exchange::contract::AgreementId;
use gaiamesh_protocol::time::UnixMillis;

/// Agreements counted at once.
const MAX_METERED: usize = 4096;

/// One agreement's transfer so far.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sent {
    /// When its first file request arrived.
    pub(crate) started_at: UnixMillis,
    since: Instant,
    /// Bytes read and sent (a resumed file counts what was sent again).
    pub(crate) bytes: u64,
}

impl Sent {
    /// Microseconds from the first request until now.
    pub(crate) fn wall_us(&self) -> u64 {
        u64::try_from(self.since.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

/// The counts of the transfers in progress.
#[derive(Debug, Default)]
pub(crate) struct TransferMeter {
    sent: Mutex<HashMap<AgreementId, Sent>>,
}

impl TransferMeter {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<AgreementId, Sent>> {
        self.sent.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A file request under `id` starts (the transfer starts with the first).
    pub(crate) fn begin(&self, id: AgreementId, now: UnixMillis) {
        let mut sent = self.lock();
        if sent.contains_key(&id) {
            return;
        }
        if sent.len() >= MAX_METERED
            && let Some(oldest) = sent.iter().min_by_key(|(_, s)| s.since).map(|(k, _)| *k)
        {
            sent.remove(&oldest);
        }
        sent.insert(
            id,
            Sent {
                started_at: now,
                since: Instant::now(),
                bytes: 0,
            },
        );
    }

    /// `bytes` more were sent under `id`.
    pub(crate) fn add(&self, id: AgreementId, bytes: u64) {
        if let Some(s) = self.lock().get_mut(&id) {
            s.bytes = s.bytes.saturating_add(bytes);
        }
    }

    /// The transfer under `id` ended (its receipt arrived): its count, taken out.
    pub(crate) fn take(&self, id: AgreementId) -> Option<Sent> {
        self.lock().remove(&id)
    }
}

#[cfg(test)]
mod tests {
    use gaiamesh_exchange::contract::AgreementId;
    use gaiamesh_protocol::time::UnixMillis;

    use super::{MAX_METERED, TransferMeter};

    #[test]
    fn bytes_add_up_per_agreement_and_the_oldest_goes_first() {
        let m = TransferMeter::default();
        let (a, b) = (AgreementId([1; 32]), AgreementId([2; 32]));
        m.begin(a, UnixMillis(10));
        m.add(a, 100);
        m.begin(a, UnixMillis(20)); // a second file: the start stays
        m.add(a, 50);
        m.add(b, 7); // never begun: not counted
        let sent = m.take(a).unwrap();
        assert_eq!((sent.bytes, sent.started_at), (150, UnixMillis(10)));
        assert!(m.take(a).is_none() && m.take(b).is_none());
        for i in 0..=MAX_METERED {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&(i as u64).to_le_bytes());
            m.begin(AgreementId(id), UnixMillis(i as u64));
        }
        assert!(m.take(AgreementId([0; 32])).is_none(), "the oldest went");
        assert_eq!(m.lock().len(), MAX_METERED);
    }
}
