//! SHACL validation of Gaia-X credentials against the official shapes.
//!
//! [`Shapes::tagus`] is the Gaia-X 22.10 registry's trust-framework shapes graph (bundled
//! with `gaiamesh-gaiax`, the same document whose `@context` binds `gx:`);
//! [`Shapes::from_document`] reads any other shapes graph (Turtle, N-Triples or JSON-LD),
//! such as the Loire `gx.shacl.ttl`. [`Shapes::validate`] merges the credentials of one
//! import into one data graph — their subjects reference each other across credentials, a
//! 22.10 participant its notary's registration number — and returns every violation, each
//! naming the focus node, the path, the shape and the constraint.
//!
//! Validation is rudof's `shacl` crate (SHACL Core, native engine, in memory); JSON-LD
//! becomes RDF with the importer's own offline contexts, so what is validated is what the
//! proofs cover. This crate stands apart from `gaiamesh-gaiax` so that the fuzz targets,
//! which build the importer, do not build a SHACL engine.

use std::collections::HashMap;

use gaiamesh_gaiax::ld::{self, Contexts, canon::Node};
use gaiamesh_gaiax::{Imported, Release};
use rudof_rdf::rdf_core::NeighsRDF as _;
use rudof_rdf::rdf_core::RDFFormat;
use rudof_rdf::rdf_impl::{OxigraphInMemory, ReaderMode};
use serde_json::Value;
use shacl::ir::IRSchema;
use shacl::rdf::ShaclParser;
use shacl::validator::ShaclValidationMode;
use shacl::validator::processor::{GraphValidation, ShaclProcessor as _};
use shacl::validator::store::Graph;

/// Most violations reported for one import (the rest are counted).
pub const MAX_VIOLATIONS: usize = 500;

/// Why shapes could not be read or a validation could not run.
#[derive(Debug, thiserror::Error)]
pub enum ShapesError {
    /// The shapes document is not RDF in the format given, or not a SHACL shapes graph.
    #[error("shapes {name}: {reason}")]
    Shapes {
        /// Its name (file or `gaia-x 22.10`).
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The validator failed.
    #[error("SHACL validation failed: {0}")]
    Validation(String),
}

/// A shapes graph, compiled.
pub struct Shapes {
    name: String,
    schema: IRSchema,
    /// Property shape (an IRI or blank node label) → the node shape holding it.
    parents: HashMap<String, String>,
    /// The `sh:message` texts the shapes declare (a result's other messages are the
    /// validator's own paraphrase of the component, with blank node labels).
    messages: std::collections::HashSet<String>,
}

impl std::fmt::Debug for Shapes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shapes").field("name", &self.name).finish()
    }
}

/// One violation: the node that fails, along which path, which shape and constraint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The focus node: its IRI, or for a blank node the credential it is in.
    pub focus: String,
    /// The property path, when the constraint is on a property.
    pub path: Option<String>,
    /// The shape whose constraint fails (a node shape's IRI; for a property shape, the
    /// node shape holding it).
    pub shape: String,
    /// The constraint component, e.g. `sh:MinCountConstraintComponent`.
    pub component: String,
    /// The offending value, when there is one.
    pub value: Option<String>,
    /// The shape's `sh:message`, when it has one.
    pub message: Option<String>,
    /// Why a nested shape (`sh:node`, `sh:or`, …) failed: its own violations, one line
    /// each (`path component; value`), depth first.
    pub causes: Vec<String>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.focus)?;
        if let Some(p) = &self.path {
            write!(f, " {p}")?;
        }
        write!(f, ": {} (shape {})", self.component, self.shape)?;
        if let Some(v) = &self.value {
            write!(f, "; value {v}")?;
        }
        if let Some(m) = &self.message {
            write!(f, "; {m}")?;
        }
        if !self.causes.is_empty() {
            write!(f, "; because: {}", self.causes.join("; "))?;
        }
        Ok(())
    }
}

/// The outcome of one validation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Every violation (at most [`MAX_VIOLATIONS`]), sorted by focus node and path.
    pub violations: Vec<Violation>,
    /// Violations beyond [`MAX_VIOLATIONS`], counted only.
    pub more: usize,
    /// Credentials left out of the data graph (their JSON-LD could not become RDF offline,
    /// e.g. a context neither bundled nor given): `(origin, why)`.
    pub skipped: Vec<(String, String)>,
}

impl Outcome {
    /// Whether the data conforms.
    pub fn conforms(&self) -> bool {
        self.violations.is_empty() && self.more == 0
    }
}

const SH: &str = "http://www.w3.org/ns/shacl#";
const RDF_TYPE: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type";
const CREDENTIAL_SUBJECT: &str = "https://www.w3.org/2018/credentials#credentialSubject";

/// `VerifiableCredential` in the VC data model 1.1 or 2.0 vocabulary.
fn is_vc_type(n: &Node) -> bool {
    matches!(n, Node::Iri(i) if i == "https://www.w3.org/2018/credentials#VerifiableCredential")
}

impl Shapes {
    /// The Gaia-X 22.10 (Tagus) registry's trust-framework shapes.
    pub fn tagus() -> Result<Self, ShapesError> {
        let doc: Value =
            serde_json::from_str(ld::GX_2210_DOC).map_err(|e| ShapesError::Shapes {
                name: "gaia-x 22.10".into(),
                reason: e.to_string(),
            })?;
        Self::from_json_ld("gaia-x 22.10", &doc, &Contexts::bundled())
    }

    /// A shapes graph from a file's bytes: JSON-LD (with `contexts`), Turtle or N-Triples,
    /// told apart by the file name's extension (`.jsonld`/`.json`, `.ttl`, `.nt`).
    pub fn from_document(
        name: &str,
        bytes: &[u8],
        contexts: &Contexts,
    ) -> Result<Self, ShapesError> {
        let bad = |reason: String| ShapesError::Shapes {
            name: name.to_owned(),
            reason,
        };
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".jsonld") || lower.ends_with(".json") {
            let doc: Value =
                serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
            return Self::from_json_ld(name, &doc, contexts);
        }
        let format = if lower.ends_with(".nt") {
            RDFFormat::NTriples
        } else if lower.ends_with(".ttl") {
            RDFFormat::Turtle
        } else {
            return Err(bad(
                "unknown format: name the file .ttl (Turtle), .nt (N-Triples) or .jsonld".into(),
            ));
        };
        Self::compile(name, bytes, &format)
    }

    fn from_json_ld(name: &str, doc: &Value, contexts: &Contexts) -> Result<Self, ShapesError> {
        let quads = ld::to_quads(doc, contexts).map_err(|e| ShapesError::Shapes {
            name: name.to_owned(),
            reason: e.to_string(),
        })?;
        let text = ld::canon::to_nquads(&quads);
        Self::compile(name, text.as_bytes(), &RDFFormat::NQuads)
    }

    fn compile(name: &str, bytes: &[u8], format: &RDFFormat) -> Result<Self, ShapesError> {
        let bad = |reason: String| ShapesError::Shapes {
            name: name.to_owned(),
            reason,
        };
        let mut reader = bytes;
        let graph =
            OxigraphInMemory::from_reader(&mut reader, name, format, None, &ReaderMode::Strict)
                .map_err(|e| bad(e.to_string()))?;
        let sh_property = oxrdf::NamedNode::new_unchecked(format!("{SH}property"));
        let parents = graph
            .triples_with_predicate(&sh_property)
            .map_err(|e| bad(e.to_string()))?
            .map(|t| (label_of_term(&t.object), label_of_subject(&t.subject)))
            .collect();
        let sh_message = oxrdf::NamedNode::new_unchecked(format!("{SH}message"));
        let messages = graph
            .triples_with_predicate(&sh_message)
            .map_err(|e| bad(e.to_string()))?
            .filter_map(|t| match t.object {
                oxrdf::Term::Literal(l) => Some(l.value().to_owned()),
                _ => None,
            })
            .collect();
        let ast = ShaclParser::new(graph)
            .parse()
            .map_err(|e| bad(e.to_string()))?;
        let schema = IRSchema::compile(&ast).map_err(|e| bad(e.to_string()))?;
        Ok(Self {
            name: name.to_owned(),
            schema,
            parents,
            messages,
        })
    }

    /// The shapes' name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Validates the credentials of one import (each `(origin, JSON-LD)`, without its
    /// proof) as one data graph.
    pub fn validate(
        &self,
        credentials: &[(String, Value)],
        contexts: &Contexts,
    ) -> Result<Outcome, ShapesError> {
        let mut data = String::new();
        // blank node label → the credential it came from, for the report
        let mut blank_origin: HashMap<String, String> = HashMap::new();
        let mut skipped = Vec::new();
        for (i, (origin, vc)) in credentials.iter().enumerate() {
            let mut vc = vc.clone();
            if let Some(o) = vc.as_object_mut() {
                o.remove("proof");
            }
            let quads = match ld::to_quads(&vc, contexts) {
                Ok(q) => q,
                Err(e) => {
                    skipped.push((origin.clone(), e.to_string()));
                    continue;
                }
            };
            // One graph: named graphs (none in a credential without its proof) merged into
            // the default one; blank nodes kept apart per credential.
            let relabel = |n: Node| match n {
                Node::Blank(b) => Node::Blank(format!("c{i}x{b}")),
                other => other,
            };
            // A credential's envelope may carry its subject's type too (Loire:
            // `"type": ["VerifiableCredential", "gx:LegalPerson"]`): it is a tag, not a
            // second participant, so the envelope keeps only the W3C credential types.
            // (22.10 credentials often share their subject's id: that node stays typed.)
            let subjects: Vec<&Node> = quads
                .iter()
                .filter(|q| q.predicate == CREDENTIAL_SUBJECT)
                .map(|q| &q.object)
                .collect();
            let envelopes: Vec<Node> = quads
                .iter()
                .filter(|q| {
                    q.predicate == RDF_TYPE
                        && is_vc_type(&q.object)
                        && !subjects.contains(&&q.subject)
                })
                .map(|q| q.subject.clone())
                .collect();
            let quads: Vec<_> = quads
                .into_iter()
                .filter(|q| {
                    !(q.predicate == RDF_TYPE
                        && envelopes.contains(&q.subject)
                        && !is_vc_type(&q.object))
                })
                .map(|q| ld::canon::Quad {
                    subject: relabel(q.subject),
                    predicate: q.predicate,
                    object: relabel(q.object),
                    graph: None,
                })
                .collect();
            for q in &quads {
                if let Node::Blank(b) = &q.subject {
                    blank_origin.insert(b.clone(), origin.clone());
                }
            }
            data.push_str(&ld::canon::to_nquads(&quads));
        }
        let graph = OxigraphInMemory::from_reader(
            &mut data.as_bytes(),
            "credentials",
            &RDFFormat::NQuads,
            None,
            &ReaderMode::Strict,
        )
        .map_err(|e| ShapesError::Validation(e.to_string()))?;
        let mut validation = GraphValidation::new(Graph::from(graph));
        let report = validation
            .validate(
                &self.schema,
                &ShaclValidationMode::Native,
                &shacl::validator::ShaclConfig::default(),
            )
            .map_err(|e| ShapesError::Validation(e.to_string()))?;
        let mut outcome = Outcome {
            skipped,
            ..Outcome::default()
        };
        for r in report.results() {
            if outcome.violations.len() >= MAX_VIOLATIONS {
                outcome.more += 1;
                continue;
            }
            let focus = match r.focus_node() {
                rudof_rdf::rdf_core::term::Object::BlankNode(b) => {
                    match blank_origin.get(b.as_str()) {
                        Some(origin) => format!("a node in {origin}"),
                        None => format!("_:{b}"),
                    }
                }
                other => other.to_string(),
            };
            outcome.violations.push(Violation {
                focus,
                path: r.path().map(|p| compact(&p.to_string())),
                shape: r
                    .source()
                    .map(|s| self.shape_name(&s.to_string()))
                    .unwrap_or_else(|| "(unnamed)".into()),
                component: compact(&r.constraint_component().to_string()),
                value: r.value().and_then(shown_value),
                message: r
                    .message()
                    .iter()
                    .map(|(_, m)| m)
                    .find(|m| self.messages.contains(*m))
                    .cloned(),
                causes: {
                    let mut causes = Vec::new();
                    causes_of(r.details(), &mut causes, 0);
                    causes
                },
            });
        }
        outcome
            .violations
            .sort_by(|a, b| (&a.focus, &a.path).cmp(&(&b.focus, &b.path)));
        Ok(outcome)
    }

    /// A shape as people name it: an IRI shape by its IRI; a property shape (a blank node)
    /// by the node shape that holds it.
    fn shape_name(&self, shape: &str) -> String {
        let key = shape.strip_prefix("_:").unwrap_or(shape);
        match self.parents.get(key) {
            Some(parent) => compact(parent),
            None => compact(shape),
        }
    }
}

/// A value as a report shows it: IRIs and literals; blank node labels mean nothing to a
/// reader (the focus and path already say where).
fn shown_value(v: &rudof_rdf::rdf_core::term::Object) -> Option<String> {
    match v {
        rudof_rdf::rdf_core::term::Object::BlankNode(_) => None,
        other => Some(compact(&other.to_string())),
    }
}

/// Most nested causes listed for one violation.
const MAX_CAUSES: usize = 16;

/// The nested results of a violation, one line each, depth first.
fn causes_of(
    details: &[shacl::validator::report::ValidationResult],
    out: &mut Vec<String>,
    depth: usize,
) {
    for d in details {
        if out.len() >= MAX_CAUSES || depth > 8 {
            return;
        }
        let mut line = String::new();
        if let Some(p) = d.path() {
            line.push_str(&compact(&p.to_string()));
            line.push(' ');
        }
        line.push_str(&compact(&d.constraint_component().to_string()));
        if let Some(v) = d.value().and_then(shown_value) {
            line.push_str(&format!(" (value {v})"));
        }
        out.push(line);
        causes_of(d.details(), out, depth + 1);
    }
}

/// An IRI or a blank node's label, as rudof's reports print them (no `<>`, no `_:`).
fn label_of_subject(s: &oxrdf::NamedOrBlankNode) -> String {
    match s {
        oxrdf::NamedOrBlankNode::NamedNode(n) => n.as_str().to_owned(),
        oxrdf::NamedOrBlankNode::BlankNode(b) => b.as_str().to_owned(),
    }
}

fn label_of_term(t: &oxrdf::Term) -> String {
    match t {
        oxrdf::Term::NamedNode(n) => n.as_str().to_owned(),
        oxrdf::Term::BlankNode(b) => b.as_str().to_owned(),
        other => other.to_string(),
    }
}

/// Namespaces shown by their usual prefix in reports.
const PREFIXES: [(&str, &str); 5] = [
    ("sh", SH),
    (
        "gx",
        "https://registry.lab.gaia-x.eu/development/api/trusted-shape-registry/v1/shapes/jsonld/trustframework#",
    ),
    ("gx", "https://w3id.org/gaia-x/development#"),
    ("xsd", "http://www.w3.org/2001/XMLSchema#"),
    ("rdf", "http://www.w3.org/1999/02/22-rdf-syntax-ns#"),
];

/// `prefix:local` for the namespaces of [`PREFIXES`]; everything else as it is.
fn compact(iri: &str) -> String {
    PREFIXES
        .iter()
        .find_map(|(p, ns)| iri.strip_prefix(ns).map(|local| format!("{p}:{local}")))
        .unwrap_or_else(|| iri.to_owned())
}

/// Which shapes an import is validated against.
#[derive(Debug)]
pub enum Choice<'a> {
    /// The shapes of the credentials' release that are bundled: 22.10 credentials against
    /// the 22.10 registry's shapes; Loire ones are not validated (no Loire shapes are
    /// bundled), which the report says.
    Bundled,
    /// These shapes, for every credential (`gaiax import --shapes FILE`).
    Given(&'a Shapes),
    /// None (`--no-shapes`); the report says so.
    Skip,
}

/// Validates the credentials of `imported` and writes the outcome into its report: a note
/// naming the shapes (or why none), and every violation.
pub fn validate_import(
    imported: &mut Imported,
    choice: Choice<'_>,
    contexts: &Contexts,
) -> Result<(), ShapesError> {
    let report = &mut imported.report;
    let tagus = report
        .credentials
        .iter()
        .any(|c| c.release == Release::Tagus);
    let loire = report
        .credentials
        .iter()
        .any(|c| c.release == Release::Loire);
    let bundled;
    let shapes = match choice {
        Choice::Skip => {
            report
                .shapes
                .push("not validated against shapes (--no-shapes)".into());
            return Ok(());
        }
        Choice::Given(s) => s,
        Choice::Bundled => {
            if loire {
                report.shapes.push(
                    "Loire credentials not validated against shapes: none are bundled; pass \
                     the release's shapes with --shapes FILE (e.g. its gx.shacl.ttl)"
                        .into(),
                );
            }
            if !tagus {
                if !loire {
                    report
                        .shapes
                        .push("no 22.10 or Loire credential: nothing validated".into());
                }
                return Ok(());
            }
            bundled = Shapes::tagus()?;
            &bundled
        }
    };
    let outcome = shapes.validate(&imported.credentials, contexts)?;
    let report = &mut imported.report;
    report.shapes.push(format!(
        "validated against {}: {}",
        shapes.name(),
        if outcome.conforms() {
            "conforms".to_owned()
        } else {
            format!("{} violation(s)", outcome.violations.len() + outcome.more)
        }
    ));
    for (origin, why) in &outcome.skipped {
        report
            .shapes
            .push(format!("{origin} not validated against shapes: {why}"));
    }
    for v in &outcome.violations {
        let mut path = v.focus.clone();
        if let Some(p) = &v.path {
            path = format!("{path} {p}");
        }
        let mut detail = format!("{} (shape {})", v.component, v.shape);
        if let Some(value) = &v.value {
            detail.push_str(&format!("; value {value}"));
        }
        if let Some(m) = &v.message {
            detail.push_str(&format!("; {m}"));
        }
        if !v.causes.is_empty() {
            detail.push_str(&format!("; because: {}", v.causes.join("; ")));
        }
        report.shape_violation(path, detail);
    }
    if outcome.more > 0 {
        report.shape_violation(
            "(input)",
            format!("{} more violation(s) not listed", outcome.more),
        );
    }
    Ok(())
}
