//! JSON-LD credentials as RDF, offline: the W3C contexts credentials use are bundled
//! ([`Contexts::bundled`]), others can be supplied from files, nothing is fetched.
//!
//! - [`to_quads`] runs JSON-LD to RDF (oxjsonld) with those contexts only;
//! - [`undefined_terms`] finds properties and types the contexts do not define: JSON-LD
//!   drops them silently, so a proof over the RDF does not cover them;
//! - [`canon`] is RDF dataset canonicalization (RDFC-1.0);
//! - [`proof`] checks `JsonWebSignature2020` proofs with it.

pub mod canon;
pub mod proof;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use oxjsonld::{JsonLdParser, JsonLdRemoteDocument};
use oxrdf::{GraphName, NamedOrBlankNode, Term};
use serde_json::Value;

use canon::{Node, Quad};

/// Most quads one credential may expand to.
pub const MAX_QUADS: usize = 20_000;

/// Why a JSON-LD document could not be turned into RDF.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LdError {
    /// A context that is neither bundled nor supplied.
    #[error(
        "the JSON-LD context {0} is not available offline (not bundled); pass a copy with \
         --context URL=FILE"
    )]
    MissingContext(String),
    /// The document is not valid JSON-LD.
    #[error("not valid JSON-LD: {0}")]
    Syntax(String),
    /// Terms the contexts do not define (JSON-LD would drop them).
    #[error("not defined by the @context (JSON-LD drops them): {}", .0.join(", "))]
    Undefined(Vec<String>),
    /// More than [`MAX_QUADS`] quads.
    #[error("the document expands to more than {MAX_QUADS} RDF quads")]
    TooLarge,
    /// A supplied context file that is not a JSON-LD context.
    #[error("context {url}: {reason}")]
    BadContext {
        /// Its URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
}

/// The JSON-LD context documents available offline, by URL.
#[derive(Clone, Debug)]
pub struct Contexts {
    docs: BTreeMap<String, Arc<[u8]>>,
}

/// The bundled contexts: URL and document (copies shipped by the `ssi-contexts` crate).
const BUNDLED: [(&str, &str); 16] = [
    (
        "https://www.w3.org/2018/credentials/v1",
        ssi_contexts::CREDENTIALS_V1,
    ),
    (
        "https://www.w3.org/ns/credentials/v2",
        ssi_contexts::CREDENTIALS_V2,
    ),
    (
        "https://w3id.org/security/suites/jws-2020/v1",
        ssi_contexts::W3ID_JWS2020_V1,
    ),
    (
        "https://w3c-ccg.github.io/lds-jws2020/contexts/lds-jws2020-v1.json",
        ssi_contexts::LDS_JWS2020_V1,
    ),
    ("https://w3id.org/security/v1", ssi_contexts::SECURITY_V1),
    ("https://w3id.org/security/v2", ssi_contexts::SECURITY_V2),
    (
        "https://w3id.org/security/data-integrity/v1",
        ssi_contexts::W3ID_DATA_INTEGRITY_V1,
    ),
    (
        "https://w3id.org/security/data-integrity/v2",
        ssi_contexts::W3ID_DATA_INTEGRITY_V2,
    ),
    (
        "https://w3id.org/security/suites/ed25519-2020/v1",
        ssi_contexts::W3ID_ED2020_V1,
    ),
    (
        "https://w3id.org/security/multikey/v1",
        ssi_contexts::W3ID_MULTIKEY_V1,
    ),
    ("https://www.w3.org/ns/did/v1", ssi_contexts::DID_V1),
    ("https://www.w3.org/ns/odrl.jsonld", ssi_contexts::ODRL),
    // the same document, as ODRL policies in the wild name it
    ("http://www.w3.org/ns/odrl.jsonld", ssi_contexts::ODRL),
    (
        "https://w3id.org/vc/status-list/2021/v1",
        ssi_contexts::STATUS_LIST_2021_V1,
    ),
    // Gaia-X 22.10: the registry's trust-framework document (its @context binds gx:),
    // named with and without the fragment as credentials name it (gaiax/contexts/README.md)
    (GX_2210_URL, GX_2210_DOC),
    (GX_2210_URL_FRAGMENT, GX_2210_DOC),
];

/// The Gaia-X 22.10 (Tagus) development registry's trust-framework document.
pub const GX_2210_URL: &str = "https://registry.lab.gaia-x.eu/development/api/trusted-shape-registry/v1/shapes/jsonld/trustframework";
pub(crate) const GX_2210_URL_FRAGMENT: &str = "https://registry.lab.gaia-x.eu/development/api/trusted-shape-registry/v1/shapes/jsonld/trustframework#";
/// That document: a JSON-LD context (its `@context`) and the registry's SHACL shapes (its
/// `@graph`).
pub const GX_2210_DOC: &str = include_str!("../contexts/gx-trustframework-2210.jsonld");

impl Contexts {
    /// The W3C contexts verifiable credentials and their proofs use (credentials v1 and v2,
    /// security v1/v2, JWS 2020, data integrity, Ed25519 2020, multikey, DID v1, ODRL,
    /// status list 2021) and the Gaia-X 22.10 trust-framework document.
    pub fn bundled() -> Self {
        Self {
            docs: BUNDLED
                .iter()
                .map(|(url, doc)| ((*url).to_owned(), Arc::from(doc.as_bytes())))
                .collect(),
        }
    }

    /// Adds (or replaces) the document for `url`, which must be a JSON object with an
    /// `@context`.
    pub fn add(&mut self, url: &str, bytes: Vec<u8>) -> Result<(), LdError> {
        let bad = |reason: String| LdError::BadContext {
            url: url.to_owned(),
            reason,
        };
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
        if v.get("@context").is_none() {
            return Err(bad(
                "a context document is a JSON object with \"@context\"".into()
            ));
        }
        self.docs.insert(url.to_owned(), Arc::from(bytes));
        Ok(())
    }

    /// The URLs available.
    pub fn urls(&self) -> impl Iterator<Item = &str> {
        self.docs.keys().map(String::as_str)
    }

    /// The context URLs `doc` names at its top level that are not available.
    pub fn missing(&self, doc: &Value) -> Vec<String> {
        let mut out = Vec::new();
        let ctx = doc.get("@context").cloned().unwrap_or(Value::Null);
        let list = match ctx {
            Value::Array(a) => a,
            other => vec![other],
        };
        for c in list {
            if let Value::String(url) = c
                && !self.docs.contains_key(&url)
            {
                out.push(url);
            }
        }
        out
    }
}

fn node_of_subject(s: NamedOrBlankNode) -> Node {
    match s {
        NamedOrBlankNode::NamedNode(n) => Node::Iri(n.into_string()),
        NamedOrBlankNode::BlankNode(b) => Node::Blank(b.into_string()),
    }
}

fn node_of_term(t: Term) -> Node {
    // Accessors rather than `destruct`: oxrdf's RDF 1.2 feature (which rudof's SHACL
    // crates enable in the same build) adds a base direction to literals and triple terms.
    #[allow(unreachable_patterns)]
    match t {
        Term::NamedNode(n) => Node::Iri(n.into_string()),
        Term::BlankNode(b) => Node::Blank(b.into_string()),
        Term::Literal(l) => Node::Literal {
            value: l.value().to_owned(),
            language: l.language().map(str::to_owned),
            datatype: l.datatype().as_str().to_owned(),
        },
        // An RDF 1.2 triple term: JSON-LD 1.1 never makes one; kept as an opaque literal
        // so that nothing is silently dropped.
        other => Node::Literal {
            value: other.to_string(),
            language: None,
            datatype: "urn:gaiamesh:unsupported-rdf-1.2-triple-term".to_owned(),
        },
    }
}

/// The RDF dataset of a JSON-LD document, with the available contexts only.
pub fn to_quads(doc: &Value, contexts: &Contexts) -> Result<Vec<Quad>, LdError> {
    let bytes = serde_json::to_vec(doc).map_err(|e| LdError::Syntax(e.to_string()))?;
    let missing: Arc<Mutex<Option<String>>> = Arc::default();
    let docs = contexts.docs.clone();
    let seen = Arc::clone(&missing);
    let parser = JsonLdParser::new()
        .for_slice(&bytes)
        .with_load_document_callback(move |url, _| match docs.get(url) {
            Some(d) => Ok(JsonLdRemoteDocument {
                document: d.to_vec(),
                document_url: url.to_owned(),
            }),
            None => {
                if let Ok(mut m) = seen.lock() {
                    m.get_or_insert_with(|| url.to_owned());
                }
                Err(format!("{url} is not available offline").into())
            }
        });
    let mut quads = Vec::new();
    let mut first_error = None;
    for q in parser {
        match q {
            Ok(q) => {
                if quads.len() >= MAX_QUADS {
                    return Err(LdError::TooLarge);
                }
                quads.push(Quad {
                    subject: node_of_subject(q.subject),
                    predicate: q.predicate.into_string(),
                    object: node_of_term(q.object),
                    graph: match q.graph_name {
                        GraphName::DefaultGraph => None,
                        GraphName::NamedNode(n) => Some(Node::Iri(n.into_string())),
                        GraphName::BlankNode(b) => Some(Node::Blank(b.into_string())),
                    },
                });
            }
            Err(e) => {
                first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    if let Some(url) = missing.lock().ok().and_then(|m| m.clone()) {
        return Err(LdError::MissingContext(url));
    }
    match first_error {
        Some(e) => Err(LdError::Syntax(e)),
        None => Ok(quads),
    }
}

/// Where [`undefined_terms`] maps terms the contexts leave undefined.
const CATCH_ALL: &str = "urn:gaiamesh:undefined-term:";

/// The properties and types of `doc` that its contexts do not define (JSON-LD drops them,
/// so they are outside anything signed over the RDF), by name, sorted.
///
/// Found by expanding a second time with a catch-all `@vocab` appended to the top-level
/// context: the dropped terms then appear, under that vocabulary.
pub fn undefined_terms(doc: &Value, contexts: &Contexts) -> Result<Vec<String>, LdError> {
    undefined_terms_of(doc, &to_quads(doc, contexts)?, contexts)
}

/// [`undefined_terms`] given `plain`, the document's quads from [`to_quads`].
pub(crate) fn undefined_terms_of(
    doc: &Value,
    plain: &[Quad],
    contexts: &Contexts,
) -> Result<Vec<String>, LdError> {
    let mut caught = doc.clone();
    if let Some(obj) = caught.as_object_mut() {
        let mut list = match obj.remove("@context") {
            Some(Value::Array(a)) => a,
            Some(one) => vec![one],
            None => Vec::new(),
        };
        list.push(serde_json::json!({ "@vocab": CATCH_ALL }));
        obj.insert("@context".into(), Value::Array(list));
    }
    let with_vocab = to_quads(&caught, contexts)?;
    if with_vocab.len() <= plain.len() {
        return Ok(Vec::new());
    }
    let mut names: Vec<String> = with_vocab
        .iter()
        .flat_map(|q| {
            let mut v = vec![q.predicate.as_str()];
            if let Node::Iri(o) = &q.object {
                v.push(o);
            }
            v
        })
        .filter_map(|iri| iri.strip_prefix(CATCH_ALL))
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vc(subject: Value) -> Value {
        json!({
            "@context": ["https://www.w3.org/2018/credentials/v1", {"ex": "https://example.org/ns#"}],
            "type": ["VerifiableCredential"],
            "issuer": "did:example:issuer",
            "issuanceDate": "2024-01-01T00:00:00Z",
            "credentialSubject": subject,
        })
    }

    #[test]
    fn bundled_contexts_expand_a_credential() {
        let quads = to_quads(
            &vc(json!({"id": "did:example:s", "ex:name": "Acme"})),
            &Contexts::bundled(),
        )
        .unwrap();
        let nq = canon::canonicalize(&quads).unwrap();
        assert!(
            nq.contains("<did:example:s> <https://example.org/ns#name> \"Acme\" ."),
            "{nq}"
        );
        assert!(
            nq.contains("<https://www.w3.org/2018/credentials#issuer> <did:example:issuer>"),
            "{nq}"
        );
    }

    #[test]
    fn unknown_contexts_are_named_and_can_be_supplied() {
        let doc =
            json!({"@context": "https://example.org/ctx.jsonld", "name": "x", "@id": "urn:x"});
        let mut ctx = Contexts::bundled();
        assert_eq!(
            to_quads(&doc, &ctx),
            Err(LdError::MissingContext(
                "https://example.org/ctx.jsonld".into()
            ))
        );
        assert_eq!(
            ctx.missing(&doc),
            vec!["https://example.org/ctx.jsonld".to_owned()]
        );
        assert!(
            ctx.add("https://example.org/ctx.jsonld", b"[1]".to_vec())
                .is_err()
        );
        ctx.add(
            "https://example.org/ctx.jsonld",
            br#"{"@context": {"name": "https://schema.org/name"}}"#.to_vec(),
        )
        .unwrap();
        let quads = to_quads(&doc, &ctx).unwrap();
        assert_eq!(quads.len(), 1);
        assert_eq!(quads[0].predicate, "https://schema.org/name");
    }

    #[test]
    fn undefined_terms_are_found() {
        let ctx = Contexts::bundled();
        let clean = vc(json!({"id": "did:example:s", "ex:name": "Acme"}));
        assert_eq!(undefined_terms(&clean, &ctx).unwrap(), Vec::<String>::new());
        let sneaky = vc(json!({
            "id": "did:example:s",
            "ex:name": "Acme",
            "legalName": "Evil Corp",
            "type": "LegalParticipant"
        }));
        assert_eq!(
            undefined_terms(&sneaky, &ctx).unwrap(),
            vec!["LegalParticipant".to_owned(), "legalName".to_owned()]
        );
    }
}
