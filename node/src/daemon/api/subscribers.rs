//! At most `max` `/api/v1/events` streams at once: a new subscriber closes the oldest stream,
//! so neither forgotten dashboards nor a flood of clients hold the node's memory.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
};

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::oneshot;

/// The open event streams, oldest first.
#[derive(Debug)]
pub(super) struct Subscribers {
    max: usize,
    state: Mutex<State>,
    /// `gaiamesh_api_event_subscribers`.
    open: Gauge,
}

#[derive(Debug, Default)]
struct State {
    next: u64,
    /// (id, closes the stream when sent or dropped).
    open: VecDeque<(u64, oneshot::Sender<()>)>,
}

/// One open stream's place; frees it when dropped.
#[derive(Debug)]
pub(super) struct Subscription {
    id: u64,
    owner: Arc<Subscribers>,
    /// Resolves when a newer subscriber took this stream's place.
    pub(super) closed: oneshot::Receiver<()>,
}

impl Subscribers {
    pub(super) fn new(max: usize, open: Gauge) -> Arc<Self> {
        Arc::new(Self {
            max,
            state: Mutex::default(),
            open,
        })
    }

    fn count(&self, s: &State) {
        self.open
            .set(i64::try_from(s.open.len()).unwrap_or(i64::MAX));
    }

    /// A place for a new stream, closing the oldest streams beyond `max`; `None` when event
    /// streams are disabled (`max` = 0).
    pub(super) fn join(self: &Arc<Self>) -> Option<Subscription> {
        if self.max == 0 {
            return None;
        }
        let mut s = self.state.lock().ok()?;
        while s.open.len() >= self.max {
            if let Some((_, close)) = s.open.pop_front() {
                let _ = close.send(());
            }
        }
        let id = s.next;
        s.next += 1;
        let (tx, rx) = oneshot::channel();
        s.open.push_back((id, tx));
        self.count(&s);
        Some(Subscription {
            id,
            owner: self.clone(),
            closed: rx,
        })
    }

    /// Streams open now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.state.lock().map(|s| s.open.len()).unwrap_or(0)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Ok(mut s) = self.owner.state.lock() {
            s.open.retain(|(id, _)| *id != self.id);
            self.owner.count(&s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_stream_makes_room_and_dropped_ones_free_their_place() {
        let gauge = Gauge::default();
        let subs = Subscribers::new(2, gauge.clone());
        let mut a = subs.join().unwrap();
        let mut b = subs.join().unwrap();
        assert_eq!(subs.len(), 2);
        let mut c = subs.join().unwrap();
        assert_eq!(subs.len(), 2);
        assert!(a.closed.try_recv().is_ok(), "the oldest was closed");
        assert!(b.closed.try_recv().is_err(), "b still open");
        drop(b);
        assert_eq!(subs.len(), 1);
        assert_eq!(gauge.get(), 1);
        let _d = subs.join().unwrap();
        assert!(c.closed.try_recv().is_err(), "room was free: c stays");
        drop(a);
        assert_eq!(subs.len(), 2);
    }

    #[test]
    fn zero_disables_streams() {
        assert!(Subscribers::new(0, Gauge::default()).join().is_none());
    }
}
