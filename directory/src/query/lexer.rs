use super::QueryError;

/// Longest query accepted, in bytes.
pub(crate) const MAX_QUERY_BYTES: usize = 4096;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    Word(String),
    Quoted(String),
    Op(&'static str),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    End,
}

#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    /// 1-based character column.
    pub(crate) column: usize,
}

fn word_char(c: char) -> bool {
    c.is_alphanumeric() || "._-+:/@".contains(c)
}

pub(crate) fn lex(input: &str) -> Result<Vec<Token>, QueryError> {
    if input.len() > MAX_QUERY_BYTES {
        return Err(QueryError {
            column: 1,
            message: format!("query is longer than {MAX_QUERY_BYTES} bytes"),
        });
    }
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        let push = |out: &mut Vec<Token>, tok| out.push(Token { tok, column });
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => (push(&mut out, Tok::LParen), i += 1).1,
            ')' => (push(&mut out, Tok::RParen), i += 1).1,
            '[' => (push(&mut out, Tok::LBracket), i += 1).1,
            ']' => (push(&mut out, Tok::RBracket), i += 1).1,
            ',' => (push(&mut out, Tok::Comma), i += 1).1,
            '=' | '~' => {
                (
                    push(&mut out, Tok::Op(if c == '=' { "=" } else { "~" })),
                    i += 1,
                )
                    .1
            }
            '!' | '<' | '>' => {
                let eq = chars.get(i + 1) == Some(&'=');
                let op = match (c, eq) {
                    ('!', true) => "!=",
                    ('<', true) => "<=",
                    ('>', true) => ">=",
                    ('<', false) => "<",
                    ('>', false) => ">",
                    _ => {
                        return Err(QueryError {
                            column,
                            message: "'!' must be followed by '=' (use `not` to negate)".into(),
                        });
                    }
                };
                push(&mut out, Tok::Op(op));
                i += if eq { 2 } else { 1 };
            }
            '"' | '\'' => {
                let mut s = String::new();
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => {
                            return Err(QueryError {
                                column,
                                message: "unterminated string".into(),
                            });
                        }
                        Some(&q) if q == c => break,
                        Some('\\') if chars.get(j + 1).is_some() => {
                            s.push(chars[j + 1]);
                            j += 2;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            j += 1;
                        }
                    }
                }
                push(&mut out, Tok::Quoted(s));
                i = j + 1;
            }
            c if word_char(c) => {
                let start = i;
                while i < chars.len() && word_char(chars[i]) {
                    i += 1;
                }
                let w: String = chars[start..i].iter().collect();
                out.push(Token {
                    tok: Tok::Word(w),
                    column: start + 1,
                });
            }
            other => {
                return Err(QueryError {
                    column,
                    message: format!("unexpected character {other:?}"),
                });
            }
        }
    }
    out.push(Token {
        tok: Tok::End,
        column: chars.len() + 1,
    });
    Ok(out)
}
