//! Inverted indexes over the indexed fields: (field, value) → subjects.

use std::collections::{BTreeSet, HashMap, HashSet};

use gaiamesh_protocol::identity::PublicKey;

use crate::facets::{FIELDS, Facets, Field, Level, Value};

/// Postings of every indexed field. Hash sets: an indexed query intersects postings by
/// membership tests (one per candidate), and sorts only the subjects that pass.
#[derive(Debug, Default)]
pub(crate) struct Index {
    postings: HashMap<(&'static str, String), HashSet<PublicKey>>,
}

/// The lower-cased index values of one indexed field in `f`.
pub(crate) fn values_of(field: &Field, f: &Facets) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut add = |v: &Value| match v {
        Value::Str(s) => {
            out.insert(s.to_lowercase());
        }
        Value::List(xs) => out.extend(xs.iter().map(|s| s.to_lowercase())),
        _ => {}
    };
    match field.level {
        Level::Node => add(&f.node()[field.slot]),
        Level::Service => f.services().for_each(|s| add(&s[field.slot])),
    }
    out
}

impl Index {
    pub(crate) fn insert(&mut self, f: &Facets) {
        for field in FIELDS.iter().filter(|x| x.indexed) {
            for v in values_of(field, f) {
                self.postings
                    .entry((field.name, v))
                    .or_default()
                    .insert(f.subject);
            }
        }
    }

    /// Moves `new.subject` from `old`'s postings to `new`'s, touching only the values that
    /// differ: a re-published record usually changes no indexed value, and then no posting.
    pub(crate) fn replace(&mut self, old: &Facets, new: &Facets) {
        debug_assert_eq!(old.subject, new.subject);
        for field in FIELDS.iter().filter(|x| x.indexed) {
            let before = values_of(field, old);
            let after = values_of(field, new);
            if before == after {
                continue;
            }
            for v in before.difference(&after) {
                self.remove_posting(field.name, v.clone(), &old.subject);
            }
            for v in after.difference(&before) {
                self.postings
                    .entry((field.name, v.clone()))
                    .or_default()
                    .insert(new.subject);
            }
        }
    }

    fn remove_posting(&mut self, field: &'static str, value: String, subject: &PublicKey) {
        let key = (field, value);
        if let Some(set) = self.postings.get_mut(&key) {
            set.remove(subject);
            if set.is_empty() {
                self.postings.remove(&key);
            }
        }
    }

    pub(crate) fn remove(&mut self, f: &Facets) {
        for field in FIELDS.iter().filter(|x| x.indexed) {
            for v in values_of(field, f) {
                self.remove_posting(field.name, v, &f.subject);
            }
        }
    }

    pub(crate) fn lookup(&self, field: &Field, value: &str) -> Option<&HashSet<PublicKey>> {
        self.postings.get(&(field.name, value.to_owned()))
    }

    pub(crate) fn count(&self, field: &Field, value: &str) -> usize {
        self.lookup(field, value).map_or(0, HashSet::len)
    }
}
