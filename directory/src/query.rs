//! The query language (DESIGN §6):
//!
//! ```text
//! service.kind = storage.object and service.data_location in [DE, AT]
//!   and service.certification = C5 and service.price.amount < 0.02
//!   and node.energy.renewable_pct >= 80 and not node.kind = edge
//! ```
//!
//! Operators `= != < <= > >= in has ~` (`~`: case-insensitive substring), `and or not`,
//! parentheses. String comparisons ignore ASCII case; on list fields `=` and `has` mean
//! "contains". A comparison with a missing value is false (`!=` is `not =`). Results are
//! (node, service) matches. Parse errors point at the column.

mod ast;
mod eval;
mod lexer;
mod parser;
mod plan;

pub use ast::{Cmp, Expr, Literal, Op};
pub use eval::matches;
pub use parser::parse;
pub use plan::{Access, IndexLookup, QueryPlan, plan};

use std::fmt;

use crate::facets::{self, Field};

/// A parse or type error at a column of the query text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct QueryError {
    /// 1-based character column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

impl QueryError {
    /// The query with a caret under the column and the message, for terminals.
    pub fn render(&self, query: &str) -> String {
        let pad = " ".repeat(self.column.saturating_sub(1));
        format!("{query}\n{pad}^ {}", self.message)
    }
}

/// A sort order: `FIELD` or `FIELD:desc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sort {
    /// The field.
    pub field: &'static Field,
    /// Descending when true.
    pub desc: bool,
}

/// A sort order that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SortError {
    /// No such field.
    #[error("unknown field {0:?}; {hint}", hint = known_fields_hint())]
    UnknownField(String),
    /// Neither `asc` nor `desc`.
    #[error("sort direction {0:?} must be asc or desc")]
    Direction(String),
}

impl std::str::FromStr for Sort {
    type Err = SortError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, dir) = s.split_once(':').unwrap_or((s, "asc"));
        let field = facets::field(name).ok_or_else(|| SortError::UnknownField(name.to_owned()))?;
        let desc = match dir {
            "asc" => false,
            "desc" => true,
            other => return Err(SortError::Direction(other.to_owned())),
        };
        Ok(Self { field, desc })
    }
}

pub(crate) fn known_fields_hint() -> String {
    let names: Vec<_> = facets::FIELDS.iter().map(|f| f.name).collect();
    format!("known fields: {}", names.join(", "))
}
