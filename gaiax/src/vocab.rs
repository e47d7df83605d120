//! What a credential's properties mean: each key's expanded IRI under the JSON-LD contexts in
//! scope where it is written, and each object's type IRIs (issue 18, "JSON-LD semantics").
//!
//! Found by expanding the credential itself, once, with the same offline JSON-LD processing
//! as the proof check ([`crate::ld::to_quads`]), after replacing every literal value by a
//! numbered marker: the quad whose object is marker *n* names the predicate key *n* expands
//! to. An object-valued key is found through the node the child object's own markers (or its
//! id) put it at. So `@context` aliases, prefixes, `@vocab`, nested and scoped contexts are
//! honoured exactly as a JSON-LD processor honours them, and a key the contexts do not define
//! has no IRI (JSON-LD drops it; [`crate::ld::undefined_terms`] reports those).
//!
//! [`Vocabulary`] then says which namespace an IRI is in (Gaia-X 22.10, Gaia-X Loire,
//! schema.org, vCard, other) and whether a 22.10 term is one the release defines.

use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::ld::{
    self, Contexts, LdError,
    canon::{Node, Quad},
};

/// Literal values are replaced by a marker: this prefix, a tag the credential does not
/// contain (so no value or id of the input can pass for a marker), `:` and the key's number.
const MARK: &str = "urn:gaiamesh:key";
const RDF_TYPE: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type";
/// Deepest nesting walked (credentials are a few levels deep).
const MAX_DEPTH: usize = 32;

/// An object of an input credential, by address: the credentials outlive the import, and
/// the mapper reads the very objects that were walked.
type ObjId = usize;

fn obj_id(o: &Map<String, Value>) -> ObjId {
    std::ptr::from_ref(o) as usize
}

/// The expanded IRIs of the keys and types of the credentials resolved so far.
#[derive(Debug, Default)]
pub(crate) struct Iris {
    keys: HashMap<(ObjId, String), String>,
    types: HashMap<ObjId, Vec<String>>,
    /// Objects of credentials whose terms were resolved (an unresolved key of such an
    /// object is one the contexts do not define).
    resolved: BTreeSet<ObjId>,
}

/// Keys that are JSON-LD structure (kept as they are in the expanded copy).
fn is_structural(key: &str) -> bool {
    key.starts_with('@') || matches!(key, "id" | "type")
}

/// An object met by the walk.
struct WalkedObject {
    obj: ObjId,
    path: String,
    id: Option<String>,
    types: Vec<String>,
}

/// What the walk of a credential recorded.
struct Walk {
    /// The markers' prefix for this credential.
    mark: String,
    /// Key number → (object, key, JSON path of the key).
    keys: Vec<(ObjId, String, String)>,
    /// Every object walked, with its JSON path, its own id and its types (local names).
    objects: Vec<WalkedObject>,
    /// (object, key, child objects) for keys whose values are objects.
    links: Vec<(ObjId, String, Vec<ObjId>)>,
}

impl Walk {
    fn object(&mut self, o: &Map<String, Value>, path: &str, depth: usize) -> Map<String, Value> {
        let me = obj_id(o);
        self.objects.push(WalkedObject {
            obj: me,
            path: path.to_owned(),
            id: crate::json::id_of_map(o).map(str::to_owned),
            types: crate::json::types(o),
        });
        let mut out = Map::new();
        for (k, v) in o {
            if is_structural(k) || depth >= MAX_DEPTH {
                out.insert(k.clone(), v.clone());
                continue;
            }
            let mark = Value::String(format!("{}{}", self.mark, self.keys.len()));
            let key_path = crate::json::at(path, k);
            self.keys.push((me, k.clone(), key_path.clone()));
            let mut kids = Vec::new();
            let tagged = self.value(v, &mark, &mut kids, &key_path, depth);
            if !kids.is_empty() {
                self.links.push((me, k.clone(), kids));
            }
            out.insert(k.clone(), tagged);
        }
        out
    }

    fn value(
        &mut self,
        v: &Value,
        mark: &Value,
        kids: &mut Vec<ObjId>,
        path: &str,
        depth: usize,
    ) -> Value {
        match v {
            Value::String(_) | Value::Number(_) | Value::Bool(_) => mark.clone(),
            Value::Null => Value::Null,
            Value::Array(a) => Value::Array(
                a.iter()
                    .enumerate()
                    .map(|(i, x)| self.value(x, mark, kids, &crate::json::at_index(path, i), depth))
                    .collect(),
            ),
            Value::Object(o) if o.contains_key("@value") => {
                let mut c = o.clone();
                c.insert("@value".into(), mark.clone());
                Value::Object(c)
            }
            Value::Object(o) if o.contains_key("@list") || o.contains_key("@set") => {
                let mut c = o.clone();
                for k in ["@list", "@set"] {
                    if let Some(inner) = o.get(k) {
                        c.insert(k.into(), self.value(inner, mark, kids, path, depth));
                    }
                }
                Value::Object(c)
            }
            Value::Object(o) => {
                kids.push(obj_id(o));
                Value::Object(self.object(o, path, depth + 1))
            }
        }
    }
}

impl Walk {
    /// A walk whose markers appear nowhere in `vc`.
    fn new(vc: &Value) -> Self {
        let text = vc.to_string();
        let tag = (0u32..)
            .map(|n| format!("{MARK}{n}:"))
            .find(|m| !text.contains(m.as_str()))
            .unwrap_or_else(|| format!("{MARK}:"));
        Self {
            mark: tag,
            keys: Vec::new(),
            objects: Vec::new(),
            links: Vec::new(),
        }
    }

    /// The key number a marker object names.
    fn marker(&self, n: &Node) -> Option<usize> {
        let lexical = match n {
            Node::Iri(s) => s,
            Node::Literal { value, .. } => value,
            Node::Blank(_) => return None,
        };
        lexical.strip_prefix(self.mark.as_str())?.parse().ok()
    }
}

impl Iris {
    /// Resolves the keys and types of `vc` (a credential as JSON, at `origin`) with
    /// `contexts`. Returns its properties and types in the Gaia-X 22.10 namespace that are
    /// not 22.10 terms ([`tagus_terms`]): (JSON path, what is wrong).
    pub(crate) fn add(
        &mut self,
        vc: &Value,
        origin: &str,
        contexts: &Contexts,
    ) -> Result<Vec<(String, String)>, LdError> {
        let Some(o) = vc.as_object() else {
            return Ok(Vec::new());
        };
        let mut walk = Walk::new(vc);
        let probe = Value::Object(walk.object(o, origin, 0));
        let quads = ld::to_quads(&probe, contexts)?;
        self.learn(&walk, &quads);
        Ok(self.unknown_tagus_terms(&walk))
    }

    fn unknown_tagus_terms(&self, walk: &Walk) -> Vec<(String, String)> {
        let terms = tagus_terms();
        let unknown =
            |iri: &str| Namespace::of(iri) == Namespace::Gx2210 && !terms.contains(local_part(iri));
        let mut out = Vec::new();
        for (obj, key, path) in &walk.keys {
            if let Some(iri) = self.keys.get(&(*obj, key.clone()))
                && unknown(iri)
            {
                out.push((
                    path.clone(),
                    format!(
                        "{key} ({iri}) is not a Gaia-X 22.10 term: not in the registry's \
                         shapes, nor among the notary's and compliance service's terms"
                    ),
                ));
            }
        }
        for w in &walk.objects {
            for iri in self.types.get(&w.obj).into_iter().flatten() {
                if unknown(iri) {
                    out.push((
                        crate::json::at(&w.path, "type"),
                        format!("the type {iri} is not a Gaia-X 22.10 class"),
                    ));
                }
            }
        }
        out
    }

    fn learn(&mut self, walk: &Walk, quads: &[Quad]) {
        let mut node_of: HashMap<ObjId, Node> = HashMap::new();
        for q in quads {
            if let Some((obj, key, _)) = walk.marker(&q.object).and_then(|n| walk.keys.get(n)) {
                self.keys
                    .entry((*obj, key.clone()))
                    .or_insert_with(|| q.predicate.clone());
                node_of.entry(*obj).or_insert_with(|| q.subject.clone());
            }
        }
        for w in &walk.objects {
            self.resolved.insert(w.obj);
            if let Some(id) = w.id.as_ref().filter(|id| id.contains(':')) {
                node_of
                    .entry(w.obj)
                    .or_insert_with(|| Node::Iri(id.clone()));
            }
        }
        // object-valued keys: the quad from the object's node to a child's node
        for (obj, key, kids) in &walk.links {
            if self.keys.contains_key(&(*obj, key.clone())) {
                continue;
            }
            let Some(parent) = node_of.get(obj) else {
                continue;
            };
            let found = kids
                .iter()
                .filter_map(|k| node_of.get(k))
                .find_map(|child| {
                    quads
                        .iter()
                        .find(|q| q.subject == *parent && q.object == *child)
                });
            if let Some(q) = found {
                self.keys.insert((*obj, key.clone()), q.predicate.clone());
            }
        }
        // types: each type written on an object, matched to its node's rdf:type IRIs
        for w in &walk.objects {
            let (obj, written) = (&w.obj, &w.types);
            let Some(node) = node_of.get(obj) else {
                continue;
            };
            let iris: Vec<&str> = quads
                .iter()
                .filter(|q| q.subject == *node && q.predicate == RDF_TYPE)
                .filter_map(|q| match &q.object {
                    Node::Iri(i) => Some(i.as_str()),
                    _ => None,
                })
                .collect();
            let mine: Vec<String> = written
                .iter()
                .filter_map(|t| iris.iter().find(|i| crate::json::local(i) == *t))
                .map(|i| (*i).to_owned())
                .collect();
            if !mine.is_empty() {
                self.types.insert(*obj, mine);
            }
        }
    }

    /// The IRI `key` of `obj` expands to; `None` when its credential was not resolved or
    /// the contexts do not define it.
    pub(crate) fn key(&self, obj: &Map<String, Value>, key: &str) -> Option<&str> {
        self.keys
            .get(&(obj_id(obj), key.to_owned()))
            .map(String::as_str)
    }

    /// Whether `obj` is in a credential whose terms were resolved.
    pub(crate) fn is_resolved(&self, obj: &Map<String, Value>) -> bool {
        self.resolved.contains(&obj_id(obj))
    }

    /// The type IRIs written on `obj` (empty when not resolved).
    pub(crate) fn types(&self, obj: &Map<String, Value>) -> &[String] {
        self.types.get(&obj_id(obj)).map_or(&[], Vec::as_slice)
    }
}

/// The vocabulary an IRI belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Namespace {
    /// Gaia-X 22.10 (the registry's trust-framework namespace).
    Gx2210,
    /// Gaia-X Loire and later (`https://w3id.org/gaia-x/<version>#`).
    GxLoire,
    /// schema.org (`http://` or `https://`).
    Schema,
    /// vCard.
    Vcard,
    /// gaiamesh's own terms (what Gaia-X has no term for; `crate::export::PREFIXES`).
    Gaiamesh,
    /// Anything else.
    Other,
}

impl Namespace {
    /// The namespace of `iri`.
    pub(crate) fn of(iri: &str) -> Self {
        if iri.contains("/trusted-shape-registry/") && iri.contains("/trustframework#") {
            Self::Gx2210
        } else if iri.starts_with("https://w3id.org/gaia-x/") && iri.contains('#') {
            Self::GxLoire
        } else if iri.starts_with("https://schema.org/") || iri.starts_with("http://schema.org/") {
            Self::Schema
        } else if iri.starts_with("http://www.w3.org/2006/vcard/ns#")
            || iri.starts_with("https://www.w3.org/2006/vcard/ns#")
        {
            Self::Vcard
        } else if iri.starts_with("https://gaiamesh.org/ns#") {
            Self::Gaiamesh
        } else {
            Self::Other
        }
    }

    /// `gx:` (22.10), `gx:` (Loire), `schema:`, `vcard:` or the IRI's namespace.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::Gx2210 => "the Gaia-X 22.10 namespace",
            Self::GxLoire => "the Gaia-X Loire namespace",
            Self::Schema => "schema.org",
            Self::Vcard => "vCard",
            Self::Gaiamesh => "gaiamesh's namespace",
            Self::Other => "a namespace outside Gaia-X, schema.org and vCard",
        }
    }
}

/// Terms of the 22.10 Trust Framework that real compliant credentials carry beyond the
/// registry's shapes (which name only what they constrain):
/// - the Trust Framework 22.10 document's optional participant and service attributes
///   (`gx:legalName`, `gx:name`, `gx:description`) and its resource classes with their
///   attributes (physical, virtual, instantiated, data and software resources, service
///   access points);
/// - the 22.10 registration-number notary's output: the country codes it adds beside each
///   number and the evidence of each check;
/// - the 22.10 compliance service's output (`gx:compliance` credentials: the integrity of
///   each credential it checked, the normalization, the version and the credential's type).
const TAGUS_TERMS_BEYOND_SHAPES: [&str; 44] = [
    // Trust Framework 22.10: participant and service offering
    "legalName",
    "name",
    "description",
    // Trust Framework 22.10: resources
    "Resource",
    "PhysicalResource",
    "VirtualResource",
    "InstantiatedVirtualResource",
    "DataResource",
    "SoftwareResource",
    "maintainedBy",
    "ownedBy",
    "manufacturedBy",
    "location",
    "locationAddress",
    "copyrightOwnedBy",
    "license",
    "hostedOn",
    "tenantOwnedBy",
    "serviceAccessPoint",
    "producedBy",
    "exposedThrough",
    "obsoleteDateTime",
    "expirationDateTime",
    "containsPII",
    "dataController",
    "consent",
    "instanceOf",
    "ServiceAccessPoint",
    "host",
    "protocol",
    "port",
    "openAPI",
    // the registration-number notary
    "vatID-countryCode",
    "leiCode-countryCode",
    "leiCode-subdivisionCountryCode",
    "evidenceURL",
    "executionDate",
    "evidenceOf",
    // the compliance service
    "compliance",
    "integrity",
    "integrityNormalization",
    "version",
    "type",
    "labelLevel",
];

/// The Gaia-X 22.10 terms (local names): every `gx:` term of the bundled registry document
/// (its shapes' classes and paths) and [`TAGUS_TERMS_BEYOND_SHAPES`].
pub(crate) fn tagus_terms() -> &'static BTreeSet<String> {
    static TERMS: OnceLock<BTreeSet<String>> = OnceLock::new();
    TERMS.get_or_init(|| {
        let mut out: BTreeSet<String> = TAGUS_TERMS_BEYOND_SHAPES
            .iter()
            .map(|t| (*t).to_owned())
            .collect();
        let doc = ld::GX_2210_DOC;
        let mut rest = doc;
        while let Some(i) = rest.find("gx:") {
            rest = &rest[i + 3..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                .unwrap_or(rest.len());
            let term = &rest[..end];
            // shapes are not terms credentials use
            if !term.is_empty() && !term.ends_with("Shape") {
                out.insert(term.to_owned());
            }
        }
        out
    })
}

/// The local part of a namespaced IRI (after `#`, else after the last `/`).
fn local_part(iri: &str) -> &str {
    iri.rsplit(['#', '/']).next().unwrap_or(iri)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const GX: &str = ld::GX_2210_URL_FRAGMENT;

    fn resolve(vc: &Value) -> Iris {
        let mut iris = Iris::default();
        iris.add(vc, "$", &Contexts::bundled()).unwrap();
        iris
    }

    fn subject(vc: &Value) -> &Map<String, Value> {
        vc["credentialSubject"].as_object().unwrap()
    }

    /// A VC-DM 1.1 credential with these contexts after the W3C one, about `subject`.
    fn credential(contexts: Value, subject: Value) -> Value {
        let mut all = vec![json!("https://www.w3.org/2018/credentials/v1")];
        all.extend(contexts.as_array().cloned().unwrap_or_default());
        json!({
            "@context": all,
            "type": ["VerifiableCredential"],
            "issuer": "did:example:i",
            "issuanceDate": "2024-01-01T00:00:00Z",
            "credentialSubject": subject,
        })
    }

    /// `key` of `obj` expands to the 22.10 term `term`.
    fn assert_tagus(iris: &Iris, obj: &Map<String, Value>, key: &str, term: &str) {
        assert_eq!(iris.key(obj, key), Some(&*format!("{GX}{term}")), "{key}");
    }

    #[test]
    fn keys_expand_by_the_contexts_in_scope() {
        let vc = credential(
            json!([GX, {"ex": "https://example.org/ns#", "nick": "https://example.org/ns#nickname"}]),
            json!({
                "id": "did:example:s",
                "type": "gx:LegalParticipant",
                "gx:legalName": "Acme",
                "ex:legalName": "Not the Gaia-X term",
                "nick": "acme",
                "gx:headquarterAddress": {"gx:countrySubdivisionCode": "DE-BE"},
                "gx:legalRegistrationNumber": {"id": "https://acme.example/lrn#cs"},
                "undefinedTerm": "dropped"
            }),
        );
        let iris = resolve(&vc);
        let s = subject(&vc);
        assert_tagus(&iris, s, "gx:legalName", "legalName");
        assert_eq!(
            iris.key(s, "ex:legalName"),
            Some("https://example.org/ns#legalName")
        );
        assert_eq!(iris.key(s, "nick"), Some("https://example.org/ns#nickname"));
        // object values: through the child's own node
        assert_tagus(&iris, s, "gx:headquarterAddress", "headquarterAddress");
        assert_tagus(
            &iris,
            s,
            "gx:legalRegistrationNumber",
            "legalRegistrationNumber",
        );
        let address = s["gx:headquarterAddress"].as_object().unwrap();
        assert_tagus(
            &iris,
            address,
            "gx:countrySubdivisionCode",
            "countrySubdivisionCode",
        );
        assert_eq!(iris.key(s, "undefinedTerm"), None);
        assert!(iris.is_resolved(s));
        assert_eq!(iris.types(s), [format!("{GX}LegalParticipant")]);
        // the credential's own terms too
        let top = vc.as_object().unwrap();
        assert_eq!(
            iris.key(top, "issuer"),
            Some("https://www.w3.org/2018/credentials#issuer")
        );
    }

    #[test]
    fn values_that_look_like_markers_are_not_taken_for_them() {
        // `gx:legalName` is key 2; an id written as the first tag's marker of key 2, met
        // first (`gx:dependsOn` sorts before it), would give key 2 the IRI of
        // `gx:dependsOn`: the markers avoid what the credential contains
        let vc = credential(
            json!([GX]),
            json!({
                "id": "did:example:s",
                "gx:dependsOn": {"id": "urn:gaiamesh:key0:2"},
                "gx:legalName": "Acme"
            }),
        );
        let iris = resolve(&vc);
        let s = subject(&vc);
        assert_tagus(&iris, s, "gx:legalName", "legalName");
        assert_tagus(&iris, s, "gx:dependsOn", "dependsOn");
    }

    #[test]
    fn a_prefix_bound_elsewhere_is_not_the_gaia_x_term() {
        // `gx:` bound to the Loire namespace: the same compact name, another term
        let vc = credential(
            json!([{"gx": "https://w3id.org/gaia-x/development#"}]),
            json!({"id": "did:example:s", "gx:legalName": "Acme"}),
        );
        let iris = resolve(&vc);
        let iri = iris.key(subject(&vc), "gx:legalName").unwrap();
        assert_eq!(Namespace::of(iri), Namespace::GxLoire);
        assert_eq!(local_part(iri), "legalName");
    }

    #[test]
    fn a_missing_context_is_an_error_and_nothing_is_resolved() {
        let vc = json!({
            "@context": ["https://www.w3.org/2018/credentials/v1", "https://example.org/missing"],
            "credentialSubject": {"id": "did:example:s", "name": "x"}
        });
        let mut iris = Iris::default();
        assert!(matches!(
            iris.add(&vc, "$", &Contexts::bundled()),
            Err(LdError::MissingContext(_))
        ));
        assert!(!iris.is_resolved(subject(&vc)));
    }

    #[test]
    fn namespaces() {
        assert_eq!(Namespace::of(&format!("{GX}vatID")), Namespace::Gx2210);
        assert_eq!(
            Namespace::of(
                "https://registry.lab.gaia-x.eu/v1/api/trusted-shape-registry/v1/shapes/jsonld/trustframework#vatID"
            ),
            Namespace::Gx2210
        );
        assert_eq!(
            Namespace::of("https://w3id.org/gaia-x/development#LegalPerson"),
            Namespace::GxLoire
        );
        assert_eq!(Namespace::of("http://schema.org/name"), Namespace::Schema);
        assert_eq!(
            Namespace::of("http://www.w3.org/2006/vcard/ns#locality"),
            Namespace::Vcard
        );
        assert_eq!(Namespace::of("https://example.org/x"), Namespace::Other);
    }

    #[test]
    fn the_tagus_vocabulary_is_the_registry_document_and_the_notary_terms() {
        let t = tagus_terms();
        for term in [
            "LegalParticipant",
            "headquarterAddress",
            "countrySubdivisionCode",
            "vatID",
            "vatID-countryCode",
            "legalName",
            "ServiceOffering",
            "providedBy",
        ] {
            assert!(t.contains(term), "{term}");
        }
        assert!(!t.contains("headqarterAddress"));
        assert!(!t.contains("LegalParticipantShape"));
        assert!(!t.contains("registrationNumber"), "the Loire name");
    }
}
