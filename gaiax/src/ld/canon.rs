//! RDF Dataset Canonicalization (RDFC-1.0, the W3C Recommendation of May 2024, formerly
//! URDNA2015) and canonical N-Quads.
//!
//! Written from the specification (<https://www.w3.org/TR/rdf-canon/>), section numbers
//! below refer to it. The work is bounded ([`MAX_NDEGREE_CALLS`]) so a crafted "poison"
//! dataset is refused instead of running for hours (§ 4.4 "Resource limits").

use std::collections::{BTreeMap, HashMap};

use sha2::{Digest as _, Sha256};

/// Most calls of the Hash N-Degree Quads algorithm for one dataset.
pub const MAX_NDEGREE_CALLS: usize = 4096;
/// Most blank nodes related to one node by the same hash: their permutations are tried.
pub const MAX_PERMUTED: usize = 8;

/// An RDF term.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Node {
    /// An IRI.
    Iri(String),
    /// A blank node, by its label (without `_:`).
    Blank(String),
    /// A literal.
    Literal {
        /// The lexical form.
        value: String,
        /// The language tag, for `rdf:langString`.
        language: Option<String>,
        /// The datatype IRI.
        datatype: String,
    },
}

/// A quad; `graph` is `None` for the default graph.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Quad {
    /// Subject (IRI or blank node).
    pub subject: Node,
    /// Predicate IRI.
    pub predicate: String,
    /// Object.
    pub object: Node,
    /// Graph name (IRI or blank node).
    pub graph: Option<Node>,
}

/// Why a dataset was not canonicalized.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CanonError {
    /// The dataset needs more work than [`MAX_NDEGREE_CALLS`] / [`MAX_PERMUTED`] allow.
    #[error(
        "canonicalization needs more work than allowed ({what}); the dataset has too many \
         indistinguishable blank nodes"
    )]
    TooComplex {
        /// The limit that was hit.
        what: &'static str,
    },
}

const XSD_STRING: &str = "http://www.w3.org/2001/XMLSchema#string";
const RDF_LANG_STRING: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString";

fn escape_literal(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
}

/// Writes `node` in canonical N-Quads form; blank nodes go through `label`.
fn write_node(node: &Node, label: &impl Fn(&str) -> String, out: &mut String) {
    match node {
        Node::Iri(iri) => {
            out.push('<');
            out.push_str(iri);
            out.push('>');
        }
        Node::Blank(b) => {
            out.push_str("_:");
            out.push_str(&label(b));
        }
        Node::Literal {
            value,
            language,
            datatype,
        } => {
            out.push('"');
            escape_literal(value, out);
            out.push('"');
            if let Some(lang) = language {
                out.push('@');
                out.push_str(lang);
            } else if datatype != XSD_STRING && datatype != RDF_LANG_STRING {
                out.push_str("^^<");
                out.push_str(datatype);
                out.push('>');
            }
        }
    }
}

/// One quad as a canonical N-Quads line (with its `\n`), blank nodes relabelled.
fn write_quad(q: &Quad, label: &impl Fn(&str) -> String) -> String {
    let mut out = String::new();
    write_node(&q.subject, label, &mut out);
    out.push_str(" <");
    out.push_str(&q.predicate);
    out.push_str("> ");
    write_node(&q.object, label, &mut out);
    if let Some(g) = &q.graph {
        out.push(' ');
        write_node(g, label, &mut out);
    }
    out.push_str(" .\n");
    out
}

/// Serializes quads as N-Quads keeping their blank node labels, sorted, one per line.
pub fn to_nquads(quads: &[Quad]) -> String {
    let mut lines: Vec<String> = quads
        .iter()
        .map(|q| write_quad(q, &|b| b.to_owned()))
        .collect();
    lines.sort();
    lines.dedup();
    lines.concat()
}

fn sha256_hex(data: &str) -> String {
    hex::encode(Sha256::digest(data.as_bytes()))
}

/// The identifier issuer of § 4.5: labels in the order they were issued.
#[derive(Clone, Debug)]
struct Issuer {
    prefix: &'static str,
    issued: HashMap<String, String>,
    order: Vec<String>,
}

impl Issuer {
    fn new(prefix: &'static str) -> Self {
        Self {
            prefix,
            issued: HashMap::new(),
            order: Vec::new(),
        }
    }

    fn get(&self, id: &str) -> Option<&str> {
        self.issued.get(id).map(String::as_str)
    }

    fn issue(&mut self, id: &str) -> String {
        if let Some(v) = self.issued.get(id) {
            return v.clone();
        }
        let label = format!("{}{}", self.prefix, self.order.len());
        self.issued.insert(id.to_owned(), label.clone());
        self.order.push(id.to_owned());
        label
    }
}

struct State<'a> {
    quads_of: HashMap<&'a str, Vec<&'a Quad>>,
    canonical: Issuer,
    ndegree_calls: usize,
}

fn blank_components(q: &Quad) -> impl Iterator<Item = (&str, char)> {
    [
        (Some(&q.subject), 's'),
        (Some(&q.object), 'o'),
        (q.graph.as_ref(), 'g'),
    ]
    .into_iter()
    .filter_map(|(n, pos)| match n {
        Some(Node::Blank(b)) => Some((b.as_str(), pos)),
        _ => None,
    })
}

impl State<'_> {
    /// § 4.6 Hash First Degree Quads.
    fn hash_first_degree(&self, id: &str) -> String {
        let mut lines: Vec<String> = self
            .quads_of
            .get(id)
            .map(|qs| {
                qs.iter()
                    .map(|q| write_quad(q, &|b| if b == id { "a".into() } else { "z".into() }))
                    .collect()
            })
            .unwrap_or_default();
        lines.sort();
        sha256_hex(&lines.concat())
    }

    /// § 4.7 Hash Related Blank Node.
    fn hash_related(&self, related: &str, quad: &Quad, issuer: &Issuer, position: char) -> String {
        let mut input = String::new();
        input.push(position);
        if position != 'g' {
            input.push('<');
            input.push_str(&quad.predicate);
            input.push('>');
        }
        if let Some(c) = self.canonical.get(related) {
            input.push_str("_:");
            input.push_str(c);
        } else if let Some(t) = issuer.get(related) {
            input.push_str("_:");
            input.push_str(t);
        } else {
            input.push_str(&self.hash_first_degree(related));
        }
        sha256_hex(&input)
    }

    /// § 4.8 Hash N-Degree Quads.
    fn hash_ndegree(&mut self, id: &str, issuer: Issuer) -> Result<(String, Issuer), CanonError> {
        self.ndegree_calls += 1;
        if self.ndegree_calls > MAX_NDEGREE_CALLS {
            return Err(CanonError::TooComplex {
                what: "Hash N-Degree Quads calls",
            });
        }
        let mut issuer = issuer;
        // 1–3: related blank nodes grouped by their related hash.
        let mut related: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let quads = self.quads_of.get(id).cloned().unwrap_or_default();
        for q in &quads {
            for (b, pos) in blank_components(q) {
                if b != id {
                    let h = self.hash_related(b, q, &issuer, pos);
                    related.entry(h).or_default().push(b.to_owned());
                }
            }
        }
        // 4–5
        let mut data = String::new();
        for (hash, nodes) in related {
            data.push_str(&hash);
            if nodes.len() > MAX_PERMUTED {
                return Err(CanonError::TooComplex {
                    what: "blank nodes to permute",
                });
            }
            let mut chosen_path = String::new();
            let mut chosen_issuer: Option<Issuer> = None;
            for perm in permutations(&nodes) {
                let mut issuer_copy = issuer.clone();
                let mut path = String::new();
                let mut recursion = Vec::new();
                let worse = |path: &str, chosen: &str| {
                    !chosen.is_empty() && path.len() >= chosen.len() && path > chosen
                };
                let mut skip = false;
                for r in &perm {
                    if let Some(c) = self.canonical.get(r) {
                        path.push_str("_:");
                        path.push_str(c);
                    } else {
                        if issuer_copy.get(r).is_none() {
                            recursion.push(r.clone());
                        }
                        path.push_str("_:");
                        path.push_str(&issuer_copy.issue(r));
                    }
                    if worse(&path, &chosen_path) {
                        skip = true;
                        break;
                    }
                }
                if skip {
                    continue;
                }
                for r in &recursion {
                    let (h, next) = self.hash_ndegree(r, issuer_copy.clone())?;
                    issuer_copy = next;
                    path.push_str("_:");
                    path.push_str(&issuer_copy.issue(r));
                    path.push('<');
                    path.push_str(&h);
                    path.push('>');
                    if worse(&path, &chosen_path) {
                        skip = true;
                        break;
                    }
                }
                if skip {
                    continue;
                }
                if chosen_path.is_empty() || path < chosen_path {
                    chosen_path = path;
                    chosen_issuer = Some(issuer_copy);
                }
            }
            data.push_str(&chosen_path);
            if let Some(c) = chosen_issuer {
                issuer = c;
            }
        }
        Ok((sha256_hex(&data), issuer))
    }
}

/// Every ordering of `items` (at most [`MAX_PERMUTED`]! of them), in lexicographic order of
/// their positions.
fn permutations(items: &[String]) -> Vec<Vec<String>> {
    fn go(rest: &mut Vec<String>, cur: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if rest.is_empty() {
            out.push(cur.clone());
            return;
        }
        for i in 0..rest.len() {
            let x = rest.remove(i);
            cur.push(x.clone());
            go(rest, cur, out);
            cur.pop();
            rest.insert(i, x);
        }
    }
    let mut out = Vec::new();
    go(&mut items.to_vec(), &mut Vec::new(), &mut out);
    out
}

/// The canonical N-Quads of a dataset (§ 4.4): blank nodes relabelled `c14n0`, `c14n1`, …,
/// lines sorted in code point order, each ending with `\n`. Duplicate quads count once.
pub fn canonicalize(quads: &[Quad]) -> Result<String, CanonError> {
    let mut unique: Vec<&Quad> = quads.iter().collect();
    unique.sort_unstable();
    unique.dedup();
    let mut state = State {
        quads_of: HashMap::new(),
        canonical: Issuer::new("c14n"),
        ndegree_calls: 0,
    };
    // 2: blank node to quads.
    for q in &unique {
        for (b, _) in blank_components(q) {
            let list = state.quads_of.entry(b).or_default();
            if !list.iter().any(|x| std::ptr::eq(*x, *q)) {
                list.push(q);
            }
        }
    }
    // 3: first-degree hashes.
    let mut by_hash: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut ids: Vec<&str> = state.quads_of.keys().copied().collect();
    ids.sort_unstable();
    for id in ids {
        by_hash
            .entry(state.hash_first_degree(id))
            .or_default()
            .push(id.to_owned());
    }
    // 4: unique hashes get canonical labels first, in hash order.
    let mut shared = Vec::new();
    for (hash, nodes) in by_hash {
        if let [only] = nodes.as_slice() {
            state.canonical.issue(only);
        } else {
            shared.push((hash, nodes));
        }
    }
    // 5: the rest through N-degree hashes.
    for (_, nodes) in shared {
        let mut paths = Vec::new();
        for n in &nodes {
            if state.canonical.get(n).is_some() {
                continue;
            }
            let mut temporary = Issuer::new("b");
            temporary.issue(n);
            paths.push(state.hash_ndegree(n, temporary)?);
        }
        paths.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, issuer) in paths {
            for existing in &issuer.order {
                state.canonical.issue(existing);
            }
        }
    }
    // 6: relabel and sort.
    let canonical = &state.canonical;
    let label = |b: &str| canonical.get(b).unwrap_or(b).to_owned();
    let mut lines: Vec<String> = unique.iter().map(|q| write_quad(q, &label)).collect();
    lines.sort();
    lines.dedup();
    Ok(lines.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iri(s: &str) -> Node {
        Node::Iri(s.into())
    }
    fn b(s: &str) -> Node {
        Node::Blank(s.into())
    }
    fn q(s: Node, p: &str, o: Node) -> Quad {
        Quad {
            subject: s,
            predicate: p.into(),
            object: o,
            graph: None,
        }
    }

    #[test]
    fn literals_are_escaped_as_canonical_nquads() {
        let quad = q(
            iri("http://ex/s"),
            "http://ex/p",
            Node::Literal {
                value: "a\"b\\c\nd\re\tf\u{1}g\u{7f}h\u{8}\u{c}é".into(),
                language: None,
                datatype: XSD_STRING.into(),
            },
        );
        assert_eq!(
            to_nquads(&[quad]),
            "<http://ex/s> <http://ex/p> \"a\\\"b\\\\c\\nd\\re\\tf\\u0001g\\u007Fh\\b\\fé\" .\n"
        );
        let lang = q(
            iri("http://ex/s"),
            "http://ex/p",
            Node::Literal {
                value: "x".into(),
                language: Some("en".into()),
                datatype: RDF_LANG_STRING.into(),
            },
        );
        let typed = q(
            iri("http://ex/s"),
            "http://ex/p",
            Node::Literal {
                value: "1".into(),
                language: None,
                datatype: "http://www.w3.org/2001/XMLSchema#integer".into(),
            },
        );
        assert_eq!(
            to_nquads(&[lang, typed]),
            "<http://ex/s> <http://ex/p> \"1\"^^<http://www.w3.org/2001/XMLSchema#integer> .\n\
             <http://ex/s> <http://ex/p> \"x\"@en .\n"
        );
    }

    #[test]
    fn labels_do_not_depend_on_input_labels_or_order() {
        // A cycle of three indistinguishable blank nodes plus a tail: needs N-degree hashes.
        let make = |names: [&str; 4], reverse: bool| {
            let [x, y, z, t] = names;
            let mut v = vec![
                q(b(x), "http://ex/next", b(y)),
                q(b(y), "http://ex/next", b(z)),
                q(b(z), "http://ex/next", b(x)),
                q(b(x), "http://ex/tail", b(t)),
                q(b(t), "http://ex/name", iri("http://ex/t")),
            ];
            if reverse {
                v.reverse();
            }
            v
        };
        let a = canonicalize(&make(["a", "b", "c", "d"], false)).unwrap();
        let c = canonicalize(&make(["q9", "zz", "m", "b0"], true)).unwrap();
        assert_eq!(a, c);
        assert!(a.contains("_:c14n0") && a.contains("_:c14n3"), "{a}");
        assert!(!a.contains("_:a ") && !a.contains("_:q9"));
        // A different structure (the tail hangs off another node of the cycle is the same
        // graph up to isomorphism, but a broken cycle is not).
        let mut broken = make(["a", "b", "c", "d"], false);
        broken[2] = q(b("c"), "http://ex/next", b("d"));
        assert_ne!(canonicalize(&broken).unwrap(), a);
    }

    #[test]
    fn duplicate_quads_count_once() {
        let x = q(iri("http://ex/s"), "http://ex/p", b("x"));
        let one = canonicalize(std::slice::from_ref(&x)).unwrap();
        assert_eq!(canonicalize(&[x.clone(), x]).unwrap(), one);
        assert_eq!(one, "<http://ex/s> <http://ex/p> _:c14n0 .\n");
    }

    #[test]
    fn poison_datasets_are_refused() {
        // A clique of many indistinguishable blank nodes: exponential for RDFC-1.0.
        let n = 12;
        let mut quads = Vec::new();
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    quads.push(q(b(&format!("n{i}")), "http://ex/p", b(&format!("n{j}"))));
                }
            }
        }
        assert!(matches!(
            canonicalize(&quads),
            Err(CanonError::TooComplex { .. })
        ));
    }
}
