use crate::facets::Field;

/// A parsed, type-checked query.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// All must hold.
    And(Vec<Expr>),
    /// One must hold.
    Or(Vec<Expr>),
    /// Must not hold.
    Not(Box<Expr>),
    /// A comparison.
    Cmp(Cmp),
}

impl Expr {
    /// Whether any comparison uses the field named `name`.
    pub fn mentions(&self, name: &str) -> bool {
        match self {
            Expr::And(xs) | Expr::Or(xs) => xs.iter().any(|x| x.mentions(name)),
            Expr::Not(x) => x.mentions(name),
            Expr::Cmp(c) => c.field.name == name,
        }
    }
}

/// `FIELD OP VALUE(S)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Cmp {
    /// The field.
    pub field: &'static Field,
    /// The operator.
    pub op: Op,
    /// One value, or several for `in`.
    pub values: Vec<Literal>,
}

/// Comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `in [a, b]`
    In,
    /// `has` (list contains)
    Has,
    /// `~` (substring)
    Contains,
}

impl Op {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::In => "in",
            Op::Has => "has",
            Op::Contains => "~",
        }
    }
}

/// A literal value.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    /// A string, lower-cased for case-insensitive comparison.
    Str(String),
    /// A number.
    Num(f64),
    /// A boolean.
    Bool(bool),
}

impl std::fmt::Display for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expr::And(xs) | Expr::Or(xs) => {
                let sep = if matches!(self, Expr::And(_)) {
                    " and "
                } else {
                    " or "
                };
                write!(f, "(")?;
                for (i, x) in xs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(sep)?;
                    }
                    write!(f, "{x}")?;
                }
                write!(f, ")")
            }
            Expr::Not(x) => write!(f, "not {x}"),
            Expr::Cmp(c) => {
                let vals: Vec<String> = c
                    .values
                    .iter()
                    .map(|v| match v {
                        Literal::Str(s) => s.clone(),
                        Literal::Num(n) => n.to_string(),
                        Literal::Bool(b) => b.to_string(),
                    })
                    .collect();
                if c.op == Op::In {
                    write!(f, "{} in [{}]", c.field.name, vals.join(", "))
                } else {
                    write!(f, "{} {} {}", c.field.name, c.op.symbol(), vals.join(", "))
                }
            }
        }
    }
}
