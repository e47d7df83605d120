use super::{
    Cmp, Expr, Literal, Op, QueryError, known_fields_hint,
    lexer::{Tok, Token, lex},
};
use crate::facets::{self, FieldType};

/// Most comparisons in one query; bounds evaluation cost.
const MAX_TERMS: usize = 64;
/// Deepest nesting of parentheses and `not`.
const MAX_DEPTH: usize = 32;

/// Parses and type-checks a query.
pub fn parse(input: &str) -> Result<Expr, QueryError> {
    let tokens = lex(input)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        terms: 0,
        depth: 0,
    };
    if matches!(p.peek().tok, Tok::End) {
        return Err(QueryError {
            column: 1,
            message: "empty query (try: node.location.country = DE)".into(),
        });
    }
    let e = p.or()?;
    let t = p.peek();
    if !matches!(t.tok, Tok::End) {
        return Err(p.err_here(format!(
            "expected `and`, `or` or the end of the query, found {}",
            describe(&t.tok)
        )));
    }
    Ok(e)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    terms: usize,
    depth: usize,
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Word(w) => format!("{w:?}"),
        Tok::Quoted(q) => format!("\"{q}\""),
        Tok::Op(o) => format!("`{o}`"),
        Tok::LParen => "`(`".into(),
        Tok::RParen => "`)`".into(),
        Tok::LBracket => "`[`".into(),
        Tok::RBracket => "`]`".into(),
        Tok::Comma => "`,`".into(),
        Tok::End => "the end of the query".into(),
    }
}

fn keyword(t: &Tok, kw: &str) -> bool {
    matches!(t, Tok::Word(w) if w.eq_ignore_ascii_case(kw))
}

impl Parser {
    fn peek(&self) -> Token {
        self.tokens[self.pos.min(self.tokens.len() - 1)].clone()
    }

    fn next(&mut self) -> Token {
        let t = self.peek();
        self.pos += 1;
        t
    }

    fn err_here(&self, message: String) -> QueryError {
        QueryError {
            column: self.peek().column,
            message,
        }
    }

    fn or(&mut self) -> Result<Expr, QueryError> {
        let mut xs = vec![self.and()?];
        while keyword(&self.peek().tok, "or") {
            self.next();
            xs.push(self.and()?);
        }
        Ok(if xs.len() == 1 {
            xs.remove(0)
        } else {
            Expr::Or(xs)
        })
    }

    fn and(&mut self) -> Result<Expr, QueryError> {
        let mut xs = vec![self.unary()?];
        while keyword(&self.peek().tok, "and") {
            self.next();
            xs.push(self.unary()?);
        }
        Ok(if xs.len() == 1 {
            xs.remove(0)
        } else {
            Expr::And(xs)
        })
    }

    fn unary(&mut self) -> Result<Expr, QueryError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err_here(format!("nested more than {MAX_DEPTH} levels deep")));
        }
        let t = self.peek();
        let e = if keyword(&t.tok, "not") {
            self.next();
            Expr::Not(Box::new(self.unary()?))
        } else if t.tok == Tok::LParen {
            self.next();
            let e = self.or()?;
            let close = self.next();
            if close.tok != Tok::RParen {
                return Err(QueryError {
                    column: close.column,
                    message: format!("expected `)`, found {}", describe(&close.tok)),
                });
            }
            e
        } else {
            Expr::Cmp(self.comparison()?)
        };
        self.depth -= 1;
        Ok(e)
    }

    fn comparison(&mut self) -> Result<Cmp, QueryError> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(self.err_here(format!("more than {MAX_TERMS} comparisons")));
        }
        let ft = self.next();
        let Tok::Word(name) = &ft.tok else {
            return Err(QueryError {
                column: ft.column,
                message: format!("expected a field name, found {}", describe(&ft.tok)),
            });
        };
        let field = facets::field(name).ok_or_else(|| QueryError {
            column: ft.column,
            message: format!("unknown field {name:?}; {}", known_fields_hint()),
        })?;
        let ot = self.next();
        let op = match &ot.tok {
            Tok::Op("=") => Op::Eq,
            Tok::Op("!=") => Op::Ne,
            Tok::Op("<") => Op::Lt,
            Tok::Op("<=") => Op::Le,
            Tok::Op(">") => Op::Gt,
            Tok::Op(">=") => Op::Ge,
            Tok::Op("~") => Op::Contains,
            t if keyword(t, "in") => Op::In,
            t if keyword(t, "has") => Op::Has,
            t => {
                return Err(QueryError {
                    column: ot.column,
                    message: format!(
                        "expected an operator (= != < <= > >= in has ~) after {name}, found {}",
                        describe(t)
                    ),
                });
            }
        };
        let type_err = |msg: String| QueryError {
            column: ot.column,
            message: msg,
        };
        match (op, field.ty) {
            (Op::Lt | Op::Le | Op::Gt | Op::Ge, ty) if ty != FieldType::Num => {
                return Err(type_err(format!(
                    "`{}` compares numbers, and {name} is not a number",
                    op.symbol()
                )));
            }
            (Op::Contains, FieldType::Num | FieldType::Bool) => {
                return Err(type_err(format!(
                    "`~` matches text, and {name} is not text"
                )));
            }
            (Op::Has, ty) if ty != FieldType::List => {
                return Err(type_err(format!(
                    "`has` applies to list fields, and {name} is not a list (use =)"
                )));
            }
            _ => {}
        }
        let values = if op == Op::In {
            let open = self.next();
            if open.tok != Tok::LBracket {
                return Err(QueryError {
                    column: open.column,
                    message: format!("expected `[` after in, found {}", describe(&open.tok)),
                });
            }
            let mut vals = vec![self.literal(field.ty, name)?];
            loop {
                let t = self.next();
                match t.tok {
                    Tok::Comma => vals.push(self.literal(field.ty, name)?),
                    Tok::RBracket => break,
                    other => {
                        return Err(QueryError {
                            column: t.column,
                            message: format!("expected `,` or `]`, found {}", describe(&other)),
                        });
                    }
                }
                if vals.len() > 256 {
                    return Err(self.err_here("more than 256 values in a list".into()));
                }
            }
            vals
        } else {
            vec![self.literal(field.ty, name)?]
        };
        Ok(Cmp { field, op, values })
    }

    fn literal(&mut self, ty: FieldType, field: &str) -> Result<Literal, QueryError> {
        let t = self.next();
        let text = match &t.tok {
            Tok::Word(w) | Tok::Quoted(w) => w.clone(),
            other => {
                return Err(QueryError {
                    column: t.column,
                    message: format!("expected a value for {field}, found {}", describe(other)),
                });
            }
        };
        let bad = |what: &str| QueryError {
            column: t.column,
            message: format!("{field} takes {what}, not {text:?}"),
        };
        Ok(match ty {
            FieldType::Num => Literal::Num(
                text.parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite())
                    .ok_or_else(|| bad("numbers"))?,
            ),
            FieldType::Bool => match text.to_ascii_lowercase().as_str() {
                "true" => Literal::Bool(true),
                "false" => Literal::Bool(false),
                _ => return Err(bad("true or false")),
            },
            FieldType::Str | FieldType::List => Literal::Str(text.to_lowercase()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(q: &str) -> QueryError {
        parse(q).unwrap_err()
    }

    #[test]
    fn parses_the_design_example() {
        let q = "service.kind = storage.object and service.data_location in [DE, AT]
  and service.certification = C5 and service.price.amount < 0.02
  and node.energy.renewable_pct >= 80 and not node.kind = edge";
        let e = parse(q).unwrap();
        let Expr::And(xs) = &e else { panic!("{e:?}") };
        assert_eq!(xs.len(), 6);
        assert_eq!(
            e.to_string(),
            "(service.kind = storage.object and service.data_location in [de, at] and service.certification = c5 \
             and service.price.amount < 0.02 and node.energy.renewable_pct >= 80 and not node.kind = edge)"
        );
    }

    #[test]
    fn precedence_and_parentheses() {
        let e = parse("node.kind = edge or node.kind = hpc and alive = true").unwrap();
        assert!(matches!(&e, Expr::Or(xs) if matches!(xs[1], Expr::And(_))));
        let e = parse("(node.kind = edge or node.kind = hpc) and alive = true").unwrap();
        assert!(matches!(&e, Expr::And(xs) if matches!(xs[0], Expr::Or(_))));
        assert!(parse("service.name ~ \"object storage\"").is_ok());
    }

    #[test]
    fn errors_point_at_the_column() {
        assert_eq!(err("node.kind = edge and").column, 21);
        let e = err("node.locaton.country = DE");
        assert_eq!(e.column, 1);
        assert!(
            e.message
                .starts_with("unknown field \"node.locaton.country\"")
        );
        let e = err("node.kind < 3");
        assert_eq!(
            (e.column, e.message.as_str()),
            (11, "`<` compares numbers, and node.kind is not a number")
        );
        let e = err("service.price.amount < cheap");
        assert_eq!(
            (e.column, e.message.as_str()),
            (24, "service.price.amount takes numbers, not \"cheap\"")
        );
        let e = err("service.kind in [a, b");
        assert_eq!(e.column, 22);
        let e = err("(node.kind = edge");
        assert_eq!(e.message, "expected `)`, found the end of the query");
        let e = err("node.kind = edge node.kind = hpc");
        assert_eq!(e.column, 18);
        assert_eq!(err("node.kind ! edge").column, 11);
        assert_eq!(
            err("").message,
            "empty query (try: node.location.country = DE)"
        );
        assert!(err(&"(".repeat(100)).message.contains("nested"));
        let e = err("node.kind = edge\nand node.kind = \"x");
        assert_eq!(e.message, "unterminated string");
        let rendered = QueryError {
            column: 18,
            message: "here".into(),
        }
        .render("node.kind = edge x");
        assert_eq!(rendered, "node.kind = edge x\n                 ^ here");
    }
}
