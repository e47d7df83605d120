//! The discrete-event core: virtual time in microseconds and a queue ordered by (time,
//! insertion order), so events at the same instant run in the order they were scheduled and
//! a run depends only on the scenario and the seed.

use std::{cmp::Ordering, collections::BinaryHeap};

/// Virtual time in microseconds since the start of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(pub u64);

impl SimTime {
    /// From milliseconds.
    pub const fn from_ms(ms: u64) -> Self {
        Self(ms * 1000)
    }

    /// From seconds.
    pub const fn from_secs(s: u64) -> Self {
        Self(s * 1_000_000)
    }

    /// In (fractional) seconds.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }

    /// In (fractional) milliseconds.
    pub fn as_ms_f64(self) -> f64 {
        self.0 as f64 / 1e3
    }

    /// `self + us`, saturating.
    pub fn plus_us(self, us: u64) -> Self {
        Self(self.0.saturating_add(us))
    }
}

impl std::fmt::Display for SimTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.3}s", self.as_secs_f64())
    }
}

struct Scheduled<E> {
    at: SimTime,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Scheduled<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<E> Eq for Scheduled<E> {}
impl<E> PartialOrd for Scheduled<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Scheduled<E> {
    /// Reversed: the heap pops the earliest (time, seq) first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// The event queue.
pub struct Queue<E> {
    heap: BinaryHeap<Scheduled<E>>,
    next_seq: u64,
    now: SimTime,
    processed: u64,
}

impl<E> Default for Queue<E> {
    fn default() -> Self {
        Self {
            heap: BinaryHeap::new(),
            next_seq: 0,
            now: SimTime(0),
            processed: 0,
        }
    }
}

impl<E> Queue<E> {
    /// The current virtual time (of the last event popped).
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Events popped so far.
    pub fn processed(&self) -> u64 {
        self.processed
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no event waits.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Schedules `event` at `at` (never before now).
    pub fn at(&mut self, at: SimTime, event: E) {
        let at = at.max(self.now);
        self.heap.push(Scheduled {
            at,
            seq: self.next_seq,
            event,
        });
        self.next_seq += 1;
    }

    /// Schedules `event` `us` microseconds from now.
    pub fn after(&mut self, us: u64, event: E) {
        let at = self.now.plus_us(us);
        self.at(at, event);
    }

    /// Pops the next event if it is not later than `until`, advancing time.
    pub fn pop_until(&mut self, until: SimTime) -> Option<(SimTime, E)> {
        if self.heap.peek().is_none_or(|s| s.at > until) {
            return None;
        }
        let s = self.heap.pop()?;
        self.now = s.at;
        self.processed += 1;
        Some((s.at, s.event))
    }
}

impl<E> std::fmt::Debug for Queue<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_then_insertion_order() {
        let mut q = Queue::default();
        q.at(SimTime(5), "b");
        q.at(SimTime(1), "a");
        q.at(SimTime(5), "c");
        q.at(SimTime(9), "late");
        let mut out = vec![];
        while let Some((t, e)) = q.pop_until(SimTime(5)) {
            out.push((t.0, e));
        }
        assert_eq!(out, vec![(1, "a"), (5, "b"), (5, "c")]);
        assert_eq!(q.now(), SimTime(5));
        q.after(1, "next");
        assert_eq!(q.pop_until(SimTime(100)), Some((SimTime(6), "next")));
        assert_eq!(q.len(), 1);
    }
}
