//! Columnar copies of the numeric query fields, so that a full scan over numbers reads a few
//! contiguous arrays of `f64` instead of every entry's value array (issue 22: the row layout
//! made an unselective query over 100k entries memory-bound, 1.3–2.0× SQLite's time).
//!
//! Entries live in slots (a slab with a free list): each node slot has one `f64` per numeric
//! node field, each service slot one per numeric service field, and a missing value is NaN,
//! which compares like [`Value::Missing`] does (false for every comparison but `!=`). The
//! columns follow every change of the catalogue's facets, in place. A query whose
//! comparisons are all numeric ([`compile`]) is evaluated here; anything else (strings,
//! lists, `alive`, sorting) takes the row path, and both give the same matches in the same
//! order (tested against each other).

use std::collections::HashMap;

use gaiamesh_protocol::identity::PublicKey;

use crate::{
    catalogue::Match,
    facets::{FIELDS, Facets, FieldType, Level, Value},
    query::{Cmp, Expr, Literal, Op},
};

/// Marks a free slot.
const FREE: u32 = u32::MAX;

/// Column index of each numeric field, by level and field slot (`None`: not numeric).
fn column_of(level: Level, slot: usize) -> Option<usize> {
    FIELDS
        .iter()
        .filter(|f| f.level == level && f.ty == FieldType::Num)
        .position(|f| f.slot == slot)
}

fn numeric_slots(level: Level) -> Vec<usize> {
    FIELDS
        .iter()
        .filter(|f| f.level == level && f.ty == FieldType::Num)
        .map(|f| f.slot)
        .collect()
}

fn number(v: Option<&Value>) -> f64 {
    match v {
        Some(Value::Num(x)) => *x,
        _ => f64::NAN,
    }
}

/// The numeric columns of every entry.
#[derive(Debug)]
pub(crate) struct Columns {
    node_slots: Vec<usize>,
    service_slots: Vec<usize>,
    /// Node slot → subject (`None`: free), seq, and its service slots in document order.
    subjects: Vec<Option<PublicKey>>,
    seqs: Vec<u64>,
    services_of: Vec<Vec<u32>>,
    slot_of: HashMap<PublicKey, u32>,
    free_nodes: Vec<u32>,
    /// One column per numeric node field, indexed by node slot.
    node: Vec<Vec<f64>>,
    /// Service slot → its node slot (`FREE`: free) and its index in the document.
    service_node: Vec<u32>,
    service_index: Vec<u32>,
    free_services: Vec<u32>,
    /// One column per numeric service field, indexed by service slot.
    service: Vec<Vec<f64>>,
}

impl Default for Columns {
    fn default() -> Self {
        let (node_slots, service_slots) =
            (numeric_slots(Level::Node), numeric_slots(Level::Service));
        Self {
            node: vec![Vec::new(); node_slots.len()],
            service: vec![Vec::new(); service_slots.len()],
            node_slots,
            service_slots,
            subjects: Vec::new(),
            seqs: Vec::new(),
            services_of: Vec::new(),
            slot_of: HashMap::new(),
            free_nodes: Vec::new(),
            service_node: Vec::new(),
            service_index: Vec::new(),
            free_services: Vec::new(),
        }
    }
}

impl Columns {
    /// Records `f`, replacing the subject's previous version.
    pub(crate) fn upsert(&mut self, f: &Facets) {
        self.remove(&f.subject);
        let slot = match self.free_nodes.pop() {
            Some(s) => s,
            None => {
                self.subjects.push(None);
                self.seqs.push(0);
                self.services_of.push(Vec::new());
                for c in &mut self.node {
                    c.push(f64::NAN);
                }
                u32::try_from(self.subjects.len() - 1).unwrap_or(FREE)
            }
        };
        let s = slot as usize;
        self.subjects[s] = Some(f.subject);
        self.seqs[s] = f.seq;
        let node = f.node();
        for (c, &field) in self.node.iter_mut().zip(&self.node_slots) {
            c[s] = number(node.get(field));
        }
        let mut mine = std::mem::take(&mut self.services_of[s]);
        mine.clear();
        for (i, svc) in f.services().enumerate() {
            let r = match self.free_services.pop() {
                Some(r) => r,
                None => {
                    self.service_node.push(FREE);
                    self.service_index.push(0);
                    for c in &mut self.service {
                        c.push(f64::NAN);
                    }
                    u32::try_from(self.service_node.len() - 1).unwrap_or(FREE)
                }
            };
            let ru = r as usize;
            self.service_node[ru] = slot;
            self.service_index[ru] = u32::try_from(i).unwrap_or(u32::MAX);
            for (c, &field) in self.service.iter_mut().zip(&self.service_slots) {
                c[ru] = number(svc.get(field));
            }
            mine.push(r);
        }
        self.services_of[s] = mine;
        self.slot_of.insert(f.subject, slot);
    }

    /// Forgets `subject`.
    pub(crate) fn remove(&mut self, subject: &PublicKey) {
        let Some(slot) = self.slot_of.remove(subject) else {
            return;
        };
        let s = slot as usize;
        self.subjects[s] = None;
        for r in std::mem::take(&mut self.services_of[s]) {
            self.service_node[r as usize] = FREE;
            self.free_services.push(r);
        }
        self.free_nodes.push(slot);
    }

    /// Every (node, service) row satisfying `expr`, in the row path's order (subject, then
    /// service index).
    pub(crate) fn scan(&self, expr: &ColExpr) -> Vec<Match> {
        let mut out: Vec<(u32, Option<u32>)> = Vec::new();
        for (r, &node) in self.service_node.iter().enumerate() {
            if node != FREE && expr.eval(self, node as usize, Some(r)) {
                out.push((node, Some(self.service_index[r])));
            }
        }
        for (s, services) in self.services_of.iter().enumerate() {
            if services.is_empty() && self.subjects[s].is_some() && expr.eval(self, s, None) {
                out.push((u32::try_from(s).unwrap_or(FREE), None));
            }
        }
        let mut matches: Vec<Match> = out
            .into_iter()
            .filter_map(|(node, index)| {
                Some(Match {
                    subject: (*self.subjects.get(node as usize)?)?,
                    seq: self.seqs[node as usize],
                    service_index: index.map(|i| i as usize),
                })
            })
            .collect();
        matches.sort_unstable_by(|a, b| {
            a.subject
                .cmp(&b.subject)
                .then_with(|| a.service_index.cmp(&b.service_index))
        });
        matches
    }
}

/// A query compiled to the columns.
#[derive(Clone, Debug)]
pub(crate) enum ColExpr {
    And(Vec<ColExpr>),
    Or(Vec<ColExpr>),
    Not(Box<ColExpr>),
    Cmp {
        level: Level,
        column: usize,
        op: Op,
        values: Vec<f64>,
    },
}

/// `expr` over the columns, when every comparison in it is numeric; `None` otherwise.
pub(crate) fn compile(expr: &Expr) -> Option<ColExpr> {
    Some(match expr {
        Expr::And(xs) => ColExpr::And(xs.iter().map(compile).collect::<Option<_>>()?),
        Expr::Or(xs) => ColExpr::Or(xs.iter().map(compile).collect::<Option<_>>()?),
        Expr::Not(x) => ColExpr::Not(Box::new(compile(x)?)),
        Expr::Cmp(c) => compile_cmp(c)?,
    })
}

fn compile_cmp(c: &Cmp) -> Option<ColExpr> {
    let column = column_of(c.field.level, c.field.slot)?;
    if !matches!(
        c.op,
        Op::Eq | Op::Ne | Op::In | Op::Lt | Op::Le | Op::Gt | Op::Ge
    ) {
        return None;
    }
    let values = c
        .values
        .iter()
        .map(|l| match l {
            Literal::Num(x) => Some(*x),
            _ => None,
        })
        .collect::<Option<Vec<f64>>>()?;
    Some(ColExpr::Cmp {
        level: c.field.level,
        column,
        op: c.op,
        values,
    })
}

impl ColExpr {
    fn eval(&self, cols: &Columns, node: usize, service: Option<usize>) -> bool {
        match self {
            ColExpr::And(xs) => xs.iter().all(|x| x.eval(cols, node, service)),
            ColExpr::Or(xs) => xs.iter().any(|x| x.eval(cols, node, service)),
            ColExpr::Not(x) => !x.eval(cols, node, service),
            ColExpr::Cmp {
                level,
                column,
                op,
                values,
            } => {
                let v = match level {
                    Level::Node => cols.node[*column][node],
                    // A node without services has no service values: like a missing one.
                    Level::Service => service.map_or(f64::NAN, |r| cols.service[*column][r]),
                };
                // NaN (missing) is unequal to everything and orders with nothing, as the
                // row path treats a missing value.
                match op {
                    Op::Ne => !values.contains(&v),
                    Op::Lt => values.first().is_some_and(|y| v < *y),
                    Op::Le => values.first().is_some_and(|y| v <= *y),
                    Op::Gt => values.first().is_some_and(|y| v > *y),
                    Op::Ge => values.first().is_some_and(|y| v >= *y),
                    _ => values.contains(&v),
                }
            }
        }
    }
}
