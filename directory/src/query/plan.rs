use std::fmt;

use super::{Cmp, Expr, Literal, Op};
use crate::facets::Field;

/// One index lookup: the nodes with any of `values` in `field`.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexLookup {
    /// The indexed field.
    pub field: &'static Field,
    /// The values looked up (lower case).
    pub values: Vec<String>,
    /// Nodes the lookup yields.
    pub nodes: usize,
}

/// How a query reads the catalogue.
#[derive(Clone, Debug, PartialEq)]
pub enum Access {
    /// Candidates from the smallest index lookup (`driver`), kept only when they are also in
    /// every lookup of `intersect`.
    Index {
        /// The most selective lookup; its nodes are visited.
        driver: IndexLookup,
        /// Further lookups each candidate must also appear in.
        intersect: Vec<IndexLookup>,
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

impl fmt::Display for IndexLookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "index {} in [{}] ({} node(s))",
            self.field.name,
            self.values.join(", "),
            self.nodes
        )
    }
}

impl fmt::Display for QueryPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.access {
            Access::Index { driver, intersect } => {
                write!(f, "access: {driver}")?;
                for i in intersect {
                    write!(f, "\n        ∩ {i}")?;
                }
                writeln!(f)?;
            }
            Access::FullScan { entries } => {
                writeln!(
                    f,
                    "access: full scan of {entries} node(s) (no index narrows the candidates)"
                )?;
            }
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

/// Plans `expr`: every top-level `and` term that is an equality on an indexed field becomes an
/// index lookup (`postings` says how many nodes a value yields); the smallest drives, the
/// others filter candidates by membership. Without such terms: a full scan.
pub fn plan(expr: &Expr, entries: usize, postings: impl Fn(&Field, &str) -> usize) -> QueryPlan {
    let conjuncts: Vec<&Expr> = match expr {
        Expr::And(xs) => xs.iter().collect(),
        other => vec![other],
    };
    let mut lookups: Vec<IndexLookup> = conjuncts
        .iter()
        .filter_map(|e| match e {
            Expr::Cmp(c) => index_lookup(c),
            _ => None,
        })
        .map(|(field, values)| {
            let nodes = values.iter().map(|v| postings(field, v)).sum::<usize>();
            IndexLookup {
                field,
                values,
                nodes,
            }
        })
        .collect();
    lookups.sort_by(|a, b| a.nodes.cmp(&b.nodes).then(a.field.name.cmp(b.field.name)));
    let access = if lookups.is_empty() || (lookups[0].nodes >= entries && entries > 0) {
        Access::FullScan { entries }
    } else {
        let driver = lookups.remove(0);
        // A lookup that matches (nearly) everything filters nothing; skip it.
        lookups.retain(|l| l.nodes < entries);
        Access::Index {
            driver,
            intersect: lookups,
        }
    };
    QueryPlan {
        access,
        filter: expr.clone(),
    }
}
