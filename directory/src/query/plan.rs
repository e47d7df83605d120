use std::fmt;

use super::{Cmp, Expr, Literal, Op};
use crate::facets::Field;

/// How a query reads the catalogue.
#[derive(Clone, Debug, PartialEq)]
pub enum Access {
    /// Candidates from one index: the nodes with any of `values` in `field`.
    Index {
        /// The indexed field.
        field: &'static Field,
        /// The values looked up (lower case).
        values: Vec<String>,
        /// Candidates the index yields.
        candidates: usize,
    },
    /// Every entry.
    FullScan {
        /// Entries in the catalogue.
        entries: usize,
    },
}

/// The chosen plan: an access path, then `filter` on every candidate (node, service) row.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryPlan {
    /// How candidates are found.
    pub access: Access,
    /// The full predicate, evaluated on each candidate.
    pub filter: Expr,
}

impl fmt::Display for QueryPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.access {
            Access::Index {
                field,
                values,
                candidates,
            } => writeln!(
                f,
                "access: index {} in [{}] -> {candidates} candidate node(s)",
                field.name,
                values.join(", ")
            )?,
            Access::FullScan { entries } => writeln!(
                f,
                "access: full scan of {entries} node(s) (no indexed equality in a top-level `and`)"
            )?,
        }
        write!(f, "filter: {}", self.filter)
    }
}

/// The index usable for a comparison: equality-like on an indexed field.
fn index_lookup(c: &Cmp) -> Option<(&'static Field, Vec<String>)> {
    if !c.field.indexed || !matches!(c.op, Op::Eq | Op::In | Op::Has) {
        return None;
    }
    let values = c
        .values
        .iter()
        .map(|v| match v {
            Literal::Str(s) => Some(s.clone()),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    Some((c.field, values))
}

/// Picks the most selective index among the top-level conjuncts of `expr`; `postings`
/// returns how many nodes an index lookup yields. Falls back to a full scan.
pub fn plan(expr: &Expr, entries: usize, postings: impl Fn(&Field, &str) -> usize) -> QueryPlan {
    let conjuncts: Vec<&Expr> = match expr {
        Expr::And(xs) => xs.iter().collect(),
        other => vec![other],
    };
    let best = conjuncts
        .iter()
        .filter_map(|e| match e {
            Expr::Cmp(c) => index_lookup(c),
            _ => None,
        })
        .map(|(field, values)| {
            let n = values.iter().map(|v| postings(field, v)).sum::<usize>();
            (n, field, values)
        })
        .min_by_key(|(n, field, _)| (*n, field.name));
    let access = match best {
        Some((candidates, field, values)) if candidates < entries || entries == 0 => {
            Access::Index {
                field,
                values,
                candidates,
            }
        }
        _ => Access::FullScan { entries },
    };
    QueryPlan {
        access,
        filter: expr.clone(),
    }
}
