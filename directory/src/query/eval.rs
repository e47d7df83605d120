use super::{Cmp, Expr, Literal, Op};
use crate::facets::{Level, Value};

/// Where a comparison finds its values: one node, possibly one of its services.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Row<'a> {
    pub(crate) node: &'a [Value],
    pub(crate) service: Option<&'a [Value]>,
    pub(crate) alive: bool,
}

const ALIVE_SLOT: usize = 2;

impl Row<'_> {
    fn value(&self, cmp: &Cmp) -> Option<&Value> {
        match cmp.field.level {
            Level::Node => self.node.get(cmp.field.slot),
            Level::Service => self.service.and_then(|s| s.get(cmp.field.slot)),
        }
    }
}

/// Whether `row` satisfies `expr`.
pub(crate) fn eval(expr: &Expr, row: &Row<'_>) -> bool {
    match expr {
        Expr::And(xs) => xs.iter().all(|x| eval(x, row)),
        Expr::Or(xs) => xs.iter().any(|x| eval(x, row)),
        Expr::Not(x) => !eval(x, row),
        Expr::Cmp(c) => compare(c, row),
    }
}

/// Whether a node (with `alive` status) and optionally one of its services satisfy `expr`.
pub fn matches(expr: &Expr, node: &[Value], service: Option<&[Value]>, alive: bool) -> bool {
    eval(
        expr,
        &Row {
            node,
            service,
            alive,
        },
    )
}

fn compare(c: &Cmp, row: &Row<'_>) -> bool {
    if c.field.level == Level::Node && c.field.slot == ALIVE_SLOT {
        let alive = Value::Bool(row.alive);
        return compare_value(c, &alive);
    }
    match row.value(c) {
        Some(v) => compare_value(c, v),
        None => c.op == Op::Ne,
    }
}

fn compare_value(c: &Cmp, v: &Value) -> bool {
    match c.op {
        Op::Ne => !c.values.iter().any(|l| equals(v, l)),
        Op::Eq | Op::In | Op::Has => c.values.iter().any(|l| equals(v, l)),
        Op::Contains => c.values.iter().any(|l| contains(v, l)),
        Op::Lt | Op::Le | Op::Gt | Op::Ge => match (v, c.values.first()) {
            (Value::Num(x), Some(Literal::Num(y))) => match c.op {
                Op::Lt => x < y,
                Op::Le => x <= y,
                Op::Gt => x > y,
                _ => x >= y,
            },
            _ => false,
        },
    }
}

fn equals(v: &Value, l: &Literal) -> bool {
    match (v, l) {
        (Value::Str(s), Literal::Str(t)) => {
            s.eq_ignore_ascii_case(t) || (!s.is_ascii() && s.to_lowercase() == *t)
        }
        (Value::List(xs), Literal::Str(t)) => xs
            .iter()
            .any(|s| s.eq_ignore_ascii_case(t) || (!s.is_ascii() && s.to_lowercase() == *t)),
        (Value::Num(x), Literal::Num(y)) => x == y,
        (Value::Bool(x), Literal::Bool(y)) => x == y,
        _ => false,
    }
}

fn contains(v: &Value, l: &Literal) -> bool {
    let Literal::Str(needle) = l else {
        return false;
    };
    match v {
        Value::Str(s) => s.to_lowercase().contains(needle.as_str()),
        Value::List(xs) => xs
            .iter()
            .any(|s| s.to_lowercase().contains(needle.as_str())),
        _ => false,
    }
}
