//! A fixed-size bit set of segment indexes.

/// Which of `len` segments are set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bits {
    words: Vec<u64>,
    len: u32,
    count: u32,
}

impl Bits {
    /// `len` segments, none set.
    pub fn new(len: u32) -> Self {
        Self {
            words: vec![0; len.div_ceil(64) as usize],
            len,
            count: 0,
        }
    }

    /// `len` segments, all set.
    pub fn full(len: u32) -> Self {
        let mut b = Self::new(len);
        for i in 0..len {
            b.insert(i);
        }
        b
    }

    /// Number of segments.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether there are no segments at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Segments set.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Whether every segment is set.
    pub fn is_full(&self) -> bool {
        self.count == self.len
    }

    /// Whether `i` is set (false beyond the end).
    pub fn contains(&self, i: u32) -> bool {
        i < self.len
            && self
                .words
                .get((i / 64) as usize)
                .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// Sets `i`; whether it was new (false beyond the end).
    pub fn insert(&mut self, i: u32) -> bool {
        if i >= self.len {
            return false;
        }
        let Some(w) = self.words.get_mut((i / 64) as usize) else {
            return false;
        };
        let m = 1 << (i % 64);
        let new = *w & m == 0;
        *w |= m;
        self.count += u32::from(new);
        new
    }

    /// Clears `i`; whether it was set.
    pub fn remove(&mut self, i: u32) -> bool {
        if i >= self.len {
            return false;
        }
        let Some(w) = self.words.get_mut((i / 64) as usize) else {
            return false;
        };
        let m = 1 << (i % 64);
        let was = *w & m != 0;
        *w &= !m;
        self.count -= u32::from(was);
        was
    }

    /// Clears every segment.
    pub fn clear(&mut self) {
        self.words.iter_mut().for_each(|w| *w = 0);
        self.count = 0;
    }

    /// The set segments, in order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(wi, &w)| {
            let mut bits = w;
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let b = bits.trailing_zeros();
                bits &= bits - 1;
                Some(wi as u32 * 64 + b)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_count_iter() {
        let mut b = Bits::new(130);
        assert!(b.insert(0) && b.insert(64) && b.insert(129));
        assert!(!b.insert(64), "already set");
        assert!(!b.insert(130), "beyond the end");
        assert_eq!(b.count(), 3);
        assert_eq!(b.iter().collect::<Vec<_>>(), vec![0, 64, 129]);
        assert!(b.remove(64) && !b.remove(64));
        assert_eq!(b.count(), 2);
        assert!(Bits::full(130).is_full());
        assert_eq!(Bits::full(130).iter().count(), 130);
    }
}
