//! A value the event loop owns and other tasks (transfer servers, the exchange) read.
//!
//! Its one writer replaces it whole, so no panic can leave it half-updated; a poisoned lock
//! is therefore recovered from. (Ignoring poisoning, as `read().is_ok_and(..)` did, turned a
//! single panic into "no peer is admitted" for the rest of the process's life.)

use std::sync::{Arc, PoisonError, RwLock};

/// A shared snapshot, written by one owner.
#[derive(Debug, Default)]
pub(crate) struct Mirror<T>(Arc<RwLock<T>>);

impl<T> Clone for Mirror<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> Mirror<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(Arc::new(RwLock::new(value)))
    }

    /// Runs `f` on the current value.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        f(&self.0.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Replaces the value.
    pub(crate) fn set(&self, value: T) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_reader_does_not_blind_the_others() {
        let m = Mirror::new(vec![1, 2, 3]);
        let reader = m.clone();
        let panicked = std::thread::spawn(move || reader.read(|_| panic!("a reader panics")))
            .join()
            .is_err();
        assert!(panicked);
        assert!(m.read(|v| v.contains(&2)), "still readable after poisoning");
        m.set(vec![4]);
        assert_eq!(m.read(Vec::len), 1);
    }
}
