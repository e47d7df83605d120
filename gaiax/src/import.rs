//! Mapping Gaia-X credentials to a self-description (the table is in `docs/gaiax.md`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use gaiamesh_protocol::{
    codes,
    limits::{MAX_EXTENSIONS, MAX_KEYWORDS, MAX_SHORT_STRING, MAX_TEXT_STRING},
    sd::{
        Address, DataExport, Location, NodeInfo, NodeKind, Participant, ProtectionLevel,
        Registration, RegistrationKind, SdDocument, Service, ServiceKind, Terms, validate_document,
    },
};
use serde_json::{Map, Value};

pub use crate::load::Original;
use crate::{
    Report, Source,
    json::{at, at_index, id, id_of, id_of_map, items, local, text, texts, types},
    jwt::TrustedKey,
    ld::Contexts,
    load::{Loader, release_of},
    report::Release,
    vocab::{Iris, Namespace},
};

/// How to fill what Gaia-X credentials do not say.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// A self-description to start from: its node section (and its services and
    /// extensions) are kept; the participant and same-id services are replaced.
    pub base: Option<SdDocument>,
    /// Without a base: the node kind (its location is the headquarters).
    pub node_kind: NodeKind,
    /// Keys to check VC-JWT and `JsonWebSignature2020` signatures with (`--trust-key`).
    pub trusted: Vec<TrustedKey>,
    /// The JSON-LD contexts available to check `JsonWebSignature2020` proofs: the bundled
    /// W3C ones, plus any given with `--context URL=FILE`.
    pub contexts: Contexts,
    /// The instant validity windows are checked at (Unix seconds; `--at`); none: now.
    pub at: Option<i64>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            base: None,
            node_kind: NodeKind::PublicCloud,
            trusted: Vec::new(),
            contexts: Contexts::bundled(),
            at: None,
        }
    }
}

/// The result of an import.
#[derive(Clone, Debug)]
pub struct Imported {
    /// The self-description, when the input named a participant. It passed
    /// `validate_document` unless the report's `invalid` has entries starting with
    /// `self-description`.
    pub document: Option<SdDocument>,
    /// What was mapped, kept aside and refused.
    pub report: Report,
    /// The input's original bytes (whole JSON files, JWTs) with their SHA-256.
    pub originals: Vec<Original>,
    /// Every credential read, as JSON-LD (a VC-JWT's payload, or its `vc` claim), with
    /// where it was: what shape validation (`gaiamesh-shapes`) reads.
    pub credentials: Vec<(String, Value)>,
    /// The ODRL service policies found, by service id, as usage-policy terms
    /// (`gaiax import --policies DIR` writes them as exchange usage policies).
    pub policies: Vec<(String, crate::odrl::OdrlTerms)>,
}

impl Imported {
    /// Whether there is a document and it validates.
    pub fn is_valid(&self) -> bool {
        self.document.is_some()
            && !self
                .report
                .invalid
                .iter()
                .any(|f| f.path.starts_with("self-description"))
    }
}

/// A credential subject (or a participant embedded in one).
struct Subject<'a> {
    path: String,
    obj: &'a Map<String, Value>,
    types: Vec<String>,
    /// The id of the credential it is in (references may name the credential).
    credential: Option<&'a str>,
}

/// Properties that are structure, not data.
const STRUCTURAL: [&str; 5] = ["id", "@id", "type", "@type", "@context"];

/// Subject types a registration-number reference may name (22.10 and Loire).
const REGISTRATION_TYPES: [&str; 8] = [
    "legalregistrationnumber",
    "registrationnumber",
    "vatid",
    "leicode",
    "eori",
    "euid",
    "taxid",
    "localregistrationnumber",
];

/// Types of a participant.
const PARTICIPANT_TYPES: [&str; 2] = ["legalparticipant", "legalperson"];

/// Participants embedded in `obj` (e.g. inside `gx:providedBy`), at any depth, with their
/// paths: they are subjects of their own.
fn embedded_participants<'a>(
    obj: &'a Map<String, Value>,
    path: &str,
    out: &mut Vec<(String, &'a Map<String, Value>)>,
    depth: usize,
) {
    if depth > 8 {
        return;
    }
    for (k, v) in obj {
        if STRUCTURAL.contains(&k.as_str()) {
            continue;
        }
        let p = at(path, k);
        for (j, item) in items(v).into_iter().enumerate() {
            let Some(o) = item.as_object() else { continue };
            let ip = if v.is_array() {
                at_index(&p, j)
            } else {
                p.clone()
            };
            if types(o)
                .iter()
                .any(|t| PARTICIPANT_TYPES.contains(&t.as_str()))
            {
                out.push((ip.clone(), o));
            }
            embedded_participants(o, &ip, out, depth + 1);
        }
    }
}

/// Registration-number property → kind.
fn registration_kind(local_name: &str) -> Option<RegistrationKind> {
    Some(match local_name {
        "vatid" => RegistrationKind::VatId,
        "leicode" => RegistrationKind::LeiCode,
        "eori" => RegistrationKind::Eori,
        "euid" => RegistrationKind::Euid,
        "taxid" => RegistrationKind::TaxId,
        "local" => RegistrationKind::Local,
        _ => return None,
    })
}

/// Reads Gaia-X credentials from `sources` and maps them to a self-description.
pub fn import(sources: &[Source], opts: &ImportOptions) -> Imported {
    let mut report = Report::default();
    let checked_at = opts
        .at
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or_else(time::OffsetDateTime::now_utc);
    let mut loader = Loader::new(&opts.trusted, &opts.contexts, checked_at);
    for s in sources {
        loader.load(s, &mut report);
    }
    let mut subjects = Vec::new();
    for c in &loader.credentials {
        let Some(cs) = c.vc.get("credentialSubject") else {
            continue;
        };
        let credential = id_of(&c.vc);
        let base = at(&c.origin, "credentialSubject");
        let mut top: Vec<(String, &Map<String, Value>)> = Vec::new();
        match cs {
            Value::Array(list) => {
                for (i, s) in list.iter().enumerate() {
                    if let Some(o) = s.as_object() {
                        top.push((at_index(&base, i), o));
                    }
                }
            }
            Value::Object(o) => top.push((base, o)),
            _ => report.invalid(base, "credentialSubject must be an object"),
        }
        for (path, o) in top {
            let mut nested = Vec::new();
            embedded_participants(o, &path, &mut nested, 0);
            subjects.push(Subject {
                path,
                types: types(o),
                obj: o,
                credential,
            });
            for (path, o) in nested {
                subjects.push(Subject {
                    path,
                    types: types(o),
                    obj: o,
                    credential: None,
                });
            }
        }
    }
    let mut by_id: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut by_credential: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, s) in subjects.iter().enumerate() {
        if let Some(id) = id_of_map(s.obj) {
            by_id.entry(id).or_default().push(i);
        }
        if let Some(c) = s.credential {
            by_credential.entry(c).or_default().push(i);
        }
    }
    // What each key means: its IRI under the credential's own contexts, where they are
    // available offline; Gaia-X 22.10 terms outside the release's vocabulary are warnings.
    let mut iris = Iris::default();
    let mut by_name = Vec::new();
    let mut loire = false;
    let releases: Vec<Release> = report.credentials.iter().map(|c| c.release).collect();
    for (c, release) in loader.credentials.iter().zip(releases) {
        match iris.add(&c.vc, &c.origin, &opts.contexts) {
            Ok(unknown) => {
                loire |= release == Release::Loire;
                for (path, what) in unknown {
                    report.warning(path, what);
                }
            }
            Err(e) => by_name.push(format!("{}: {e}", c.origin)),
        }
    }
    if !loader.credentials.is_empty() {
        report.terms.push(format!(
            "{} of {} credential(s) read by the IRIs their JSON-LD contexts expand to",
            loader.credentials.len() - by_name.len(),
            loader.credentials.len()
        ));
    }
    for b in by_name {
        report
            .terms
            .push(format!("read by local property names, not IRIs: {b}"));
    }
    if loire {
        report.terms.push(
            "Loire terms are not checked against a vocabulary (none is bundled; 22.10 terms \
             are checked against the registry's)"
                .into(),
        );
    }
    let mut m = Mapper {
        subjects: &subjects,
        by_id,
        by_credential,
        used: BTreeSet::new(),
        report,
        aside: Vec::new(),
        odrl: Vec::new(),
        iris: &iris,
        release: Release::Unknown,
        mismatched: BTreeSet::new(),
    };
    let document = m.document(opts);
    let policies = m.odrl;
    let mut report = m.report;
    let aside = m.aside;
    let document = document.map(|mut doc| {
        add_extensions(&mut doc, &loader.originals, aside, &mut report);
        if let Err(errors) = validate_document(&doc) {
            for e in errors.iter() {
                report.invalid(format!("self-description {}", e.path), e.message.clone());
            }
        }
        doc
    });
    let credentials = loader
        .credentials
        .iter()
        .map(|c| (c.origin.clone(), c.vc.clone()))
        .collect();
    Imported {
        document,
        report,
        credentials,
        originals: loader.originals,
        policies,
    }
}

/// Originals first (so they can be found again), then unmapped values while they fit.
fn add_extensions(
    doc: &mut SdDocument,
    originals: &[Original],
    aside: Vec<(String, String, String)>,
    report: &mut Report,
) {
    let room = |doc: &SdDocument| doc.extensions.len() < MAX_EXTENSIONS;
    for (i, o) in originals.iter().enumerate() {
        if !room(doc) {
            report.kept(
                &o.origin,
                "original not referenced: the extensions are full",
            );
            continue;
        }
        let mut v = format!("sha256:{} {} {}", o.sha256, o.kind, o.origin);
        v.truncate(MAX_TEXT_STRING);
        doc.extensions.insert(format!("gaiax.original.{i}"), v);
    }
    for (path, key, value) in aside {
        if !room(doc) || key.len() > MAX_SHORT_STRING || value.len() > MAX_TEXT_STRING {
            report.kept(
                path,
                "not stored in the self-description (too long or extensions full); it stays \
                 in the original credential",
            );
            continue;
        }
        let key = unique_key(&doc.extensions, key);
        report.kept(path, format!("extensions.{key}"));
        doc.extensions.insert(key, value);
    }
}

fn unique_key(ext: &BTreeMap<String, String>, key: String) -> String {
    if !ext.contains_key(&key) {
        return key;
    }
    (2..)
        .map(|n| format!("{key}.{n}"))
        .find(|k| !ext.contains_key(k))
        .unwrap_or(key)
}

struct Mapper<'a> {
    subjects: &'a [Subject<'a>],
    /// Subject id (`id` or `@id`) → subjects with it (several credentials may describe
    /// the same participant's DID).
    by_id: HashMap<&'a str, Vec<usize>>,
    /// Credential id → its subjects (22.10 references name the registration-number
    /// credential, as the notary issues it).
    by_credential: HashMap<&'a str, Vec<usize>>,
    /// Subjects consumed by the mapping (the rest are reported as not mapped).
    used: BTreeSet<usize>,
    report: Report,
    /// Unmapped properties: (path, extension key, JSON value).
    aside: Vec<(String, String, String)>,
    /// ODRL service policies read: service id → terms.
    odrl: Vec<(String, crate::odrl::OdrlTerms)>,
    /// What each key of the credentials expands to (where their contexts are available).
    iris: &'a Iris,
    /// The release of the subject being mapped: its Gaia-X terms are in that namespace.
    release: Release,
    /// Keys already reported as the other release's term.
    mismatched: BTreeSet<String>,
}

impl<'a> Mapper<'a> {
    /// The release subject `i` follows: the namespace of its Gaia-X type, else (contexts
    /// not available) what its type and property names say.
    fn release_of(&self, i: usize) -> Release {
        let s = &self.subjects[i];
        for t in self.iris.types(s.obj) {
            match Namespace::of(t) {
                Namespace::Gx2210 => return Release::Tagus,
                Namespace::GxLoire => return Release::Loire,
                _ => {}
            }
        }
        let keys: Vec<String> = s.obj.keys().map(|k| local(k)).collect();
        release_of(&s.types, &keys)
    }

    /// Whether key `key` of `obj` (at `path`) is the Gaia-X property its local name says.
    /// Where the credential's contexts are available, by the IRI it expands to: a term of
    /// the release being mapped (or schema.org, vCard, gaiamesh), not one of another
    /// vocabulary, not one the contexts leave undefined, and not the other release's
    /// Gaia-X term (a warning: kept, not mapped). Elsewhere by its local name (the report
    /// says which credentials were read that way).
    fn is_term(&mut self, obj: &Map<String, Value>, key: &str, path: &str) -> bool {
        if !self.iris.is_resolved(obj) {
            return true;
        }
        let Some(iri) = self.iris.key(obj, key) else {
            return false;
        };
        let ns = Namespace::of(iri);
        let expected = match self.release {
            Release::Tagus => Namespace::Gx2210,
            Release::Loire => Namespace::GxLoire,
            Release::Unknown => ns,
        };
        match ns {
            Namespace::Gx2210 | Namespace::GxLoire if ns != expected => {
                let p = at(path, key);
                if self.mismatched.insert(p.clone()) {
                    self.report.warning(
                        p,
                        format!(
                            "{key} expands to {iri}, in {}; a {:?} credential's terms are in {}: kept, \
                             not mapped",
                            ns.describe(),
                            self.release,
                            expected.describe()
                        ),
                    );
                }
                false
            }
            // `gx:name` with `gx:` bound by none of the contexts is the IRI `gx:name`: a
            // common slip, read by its local name with a warning (an error with --strict)
            Namespace::Other => match unbound_prefix(iri) {
                Some(prefix) => {
                    if self.mismatched.insert(format!("{path} {prefix}")) {
                        self.report.warning(
                            path,
                            format!(
                                "the prefix {prefix}: is bound by none of the @context entries \
                                 here, so {prefix}: properties expand to no vocabulary; read \
                                 by their local names"
                            ),
                        );
                    }
                    true
                }
                None => false,
            },
            _ => true,
        }
    }

    /// The local name (lower case) of key `key` of `obj`: of the IRI it expands to where
    /// its credential's contexts are available (an alias names the term it is defined
    /// as), else of the key as written.
    fn name_of(&self, obj: &Map<String, Value>, key: &str) -> String {
        match self.iris.key(obj, key) {
            Some(iri) if unbound_prefix(iri).is_none() => local(iri),
            _ => local(key),
        }
    }

    /// The first property of `obj` (at `path`) whose local name is one of `names` (lower
    /// case) and that [`Self::is_term`] accepts: its key as written and its value.
    fn prop(
        &mut self,
        obj: &'a Map<String, Value>,
        names: &[&str],
        path: &str,
    ) -> Option<(&'a str, &'a Value)> {
        let candidates: Vec<(&'a str, &'a Value)> = obj
            .iter()
            .filter(|(k, _)| names.contains(&self.name_of(obj, k).as_str()))
            .map(|(k, v)| (k.as_str(), v))
            .collect();
        candidates
            .into_iter()
            .find(|(k, _)| self.is_term(obj, k, path))
    }

    fn has_type(&self, i: usize, t: &[&str]) -> bool {
        self.subjects[i]
            .types
            .iter()
            .any(|x| t.contains(&x.as_str()))
    }

    /// The object a property value names: inline, or the subject with that id or in the
    /// credential with that id — of the `want` types when several are (none: the first).
    fn resolve(
        &mut self,
        v: &'a Value,
        path: &str,
        want: &[&str],
    ) -> Option<(String, &'a Map<String, Value>)> {
        if let Some(o) = v.as_object()
            && o.keys().any(|k| !STRUCTURAL.contains(&k.as_str()))
        {
            return Some((path.to_owned(), o));
        }
        let target = id(v)?;
        let mut candidates: Vec<usize> = self.by_id.get(target).cloned().unwrap_or_default();
        for i in self.by_credential.get(target).into_iter().flatten() {
            if !candidates.contains(i) {
                candidates.push(*i);
            }
        }
        let chosen = candidates
            .iter()
            .copied()
            .find(|&i| self.has_type(i, want))
            .or_else(|| {
                want.is_empty()
                    .then(|| candidates.first().copied())
                    .flatten()
            });
        match chosen {
            Some(i) => {
                self.used.insert(i);
                Some((self.subjects[i].path.clone(), self.subjects[i].obj))
            }
            None if candidates.is_empty() => {
                self.report.invalid(
                    path,
                    format!("refers to {target:?}, which is in none of the input credentials"),
                );
                None
            }
            None => {
                self.report.invalid(
                    path,
                    format!(
                        "refers to {target:?}, but none of the {} subject(s) with that id is a {}",
                        candidates.len(),
                        want.join(" or ")
                    ),
                );
                None
            }
        }
    }

    /// Properties of `obj` not in `mapped` go aside (extension `gaiax.<prefix>.<key>`).
    fn rest(&mut self, path: &str, obj: &Map<String, Value>, mapped: &[&str], prefix: &str) {
        for (k, v) in obj {
            if STRUCTURAL.contains(&k.as_str())
                || (mapped.contains(&self.name_of(obj, k).as_str()) && self.is_term(obj, k, path))
            {
                continue;
            }
            let value = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            self.aside
                .push((at(path, k), format!("gaiax.{prefix}.{k}"), value));
        }
    }

    fn document(&mut self, opts: &ImportOptions) -> Option<SdDocument> {
        // One participant per id: several credentials (or an embedded copy) may describe it.
        let mut participants: Vec<usize> = Vec::new();
        for i in 0..self.subjects.len() {
            if !self.has_type(i, &PARTICIPANT_TYPES) {
                continue;
            }
            let same = id_of_map(self.subjects[i].obj).is_some_and(|id| {
                participants
                    .iter()
                    .any(|&p| id_of_map(self.subjects[p].obj) == Some(id))
            });
            if same {
                self.used.insert(i);
            } else {
                participants.push(i);
            }
        }
        let Some(&pi) = participants.first() else {
            self.report.invalid(
                "(input)",
                "no gx:LegalParticipant (22.10) or gx:LegalPerson (Loire) credential",
            );
            return None;
        };
        for &other in &participants[1..] {
            self.report.invalid(
                &self.subjects[other].path,
                "a second participant; only the first one is imported",
            );
        }
        self.used.extend(participants.iter().copied());
        let participant = self.participant(pi)?;
        let provider = id_of_map(self.subjects[pi].obj);
        let labels = self.labels();
        let mut services: Vec<Service> = opts
            .base
            .as_ref()
            .map(|b| b.services.clone())
            .unwrap_or_default();
        for i in 0..self.subjects.len() {
            if self.has_type(i, &["serviceoffering", "dataresource"]) {
                self.used.insert(i);
                if let Some(s) = self.service(i, provider, &labels, services.len()) {
                    let dup = services.iter().position(|x| x.id == s.id);
                    match dup {
                        Some(j) => services[j] = s,
                        None => services.push(s),
                    }
                }
            }
        }
        for i in 0..self.subjects.len() {
            if !self.used.contains(&i) {
                let s = &self.subjects[i];
                self.report.kept(
                    &s.path,
                    format!("a subject of type {} is not mapped", s.types.join(", ")),
                );
            }
        }
        let node = match &opts.base {
            Some(b) => b.node.clone(),
            None => NodeInfo {
                kind: opts.node_kind,
                location: Location {
                    country: participant.headquarters.country.clone(),
                    subdivision: participant.headquarters.subdivision.clone(),
                    city: None,
                    coordinates: None,
                },
                addresses: Vec::new(),
                software: None,
                hardware: None,
                network: None,
                energy: None,
                realtime: None,
            },
        };
        Some(SdDocument {
            participant,
            node,
            services,
            extensions: opts
                .base
                .as_ref()
                .map(|b| b.extensions.clone())
                .unwrap_or_default(),
        })
    }

    fn participant(&mut self, i: usize) -> Option<Participant> {
        let subjects = self.subjects;
        let s = &subjects[i];
        let (path, obj) = (s.path.clone(), s.obj);
        self.release = self.release_of(i);
        // Each release names these properties its own way; the other release's name under
        // this release's type is mapped with a warning (an error with --strict).
        let loire = s.types.iter().any(|t| t == "legalperson");
        for (k, _) in obj {
            let (tagus_name, loire_name) = match local(k).as_str() {
                "legalname" => ("gx:legalName", "schema:name"),
                "legalregistrationnumber" => {
                    ("gx:legalRegistrationNumber", "gx:registrationNumber")
                }
                "headquarteraddress" => ("gx:headquarterAddress", "gx:headquartersAddress"),
                "name" | "registrationnumber" | "headquartersaddress" if !loire => {
                    let ours = match local(k).as_str() {
                        "name" => "gx:legalName",
                        "registrationnumber" => "gx:legalRegistrationNumber",
                        _ => "gx:headquarterAddress",
                    };
                    self.report.warning(
                        at(&path, k),
                        format!("{k} is the Loire name; a 22.10 gx:LegalParticipant uses {ours}"),
                    );
                    continue;
                }
                _ => continue,
            };
            if loire {
                self.report.warning(
                    at(&path, k),
                    format!(
                        "{k} is the 22.10 name ({tagus_name}); a Loire gx:LegalPerson uses {loire_name}"
                    ),
                );
            }
        }
        let legal_name = match self.prop(obj, &["legalname", "name"], &path) {
            Some((k, v)) => match text(v) {
                Some(n) if !n.trim().is_empty() => {
                    self.report.mapped(at(&path, k), "participant.legal_name");
                    n
                }
                _ => {
                    self.report.invalid(at(&path, k), "the legal name is empty");
                    return None;
                }
            },
            // Loire (25.11) makes the name optional; catalogues then name the participant
            // by its id. 22.10 requires gx:legalName.
            None => match id_of_map(obj).filter(|_| s.types.iter().any(|t| t == "legalperson")) {
                Some(named) => {
                    let key = if obj.contains_key("id") { "id" } else { "@id" };
                    self.report.mapped(
                        at(&path, key),
                        "participant.legal_name (no schema:name: named by its id)",
                    );
                    named.to_owned()
                }
                None => {
                    self.report.invalid(
                        &path,
                        "no legal name (gx:legalName in 22.10, schema:name in Loire)",
                    );
                    return None;
                }
            },
        };
        let mut registration = Vec::new();
        if let Some((k, v)) = self.prop(
            obj,
            &["legalregistrationnumber", "registrationnumber"],
            &path,
        ) {
            for (j, item) in items(v).into_iter().enumerate() {
                let p = if v.is_array() {
                    at_index(&at(&path, k), j)
                } else {
                    at(&path, k)
                };
                let Some((rpath, robj)) = self.resolve(item, &p, &REGISTRATION_TYPES) else {
                    continue;
                };
                for (rk, rv) in robj {
                    let kind = registration_kind(&self.name_of(robj, rk));
                    let Some(kind) = kind.filter(|_| self.is_term(robj, rk, &rpath)) else {
                        if !STRUCTURAL.contains(&rk.as_str()) {
                            self.aside.push((
                                at(&rpath, rk),
                                format!("gaiax.registration.{rk}"),
                                rv.to_string(),
                            ));
                        }
                        continue;
                    };
                    match text(rv) {
                        Some(value) if !value.trim().is_empty() => {
                            self.report.mapped(
                                at(&rpath, rk),
                                format!("participant.registration[{}]", registration.len()),
                            );
                            registration.push(Registration { kind, value });
                        }
                        _ => self
                            .report
                            .invalid(at(&rpath, rk), "an empty registration number"),
                    }
                }
            }
        }
        if registration.is_empty() {
            self.report.invalid(
                &path,
                "no registration number (gx:legalRegistrationNumber in 22.10, \
                 gx:registrationNumber in Loire)",
            );
            return None;
        }
        let headquarters =
            match self.prop(obj, &["headquarteraddress", "headquartersaddress"], &path) {
                Some((k, v)) => self.address(v, &at(&path, k), "participant.headquarters")?,
                None => {
                    self.report.invalid(&path, "no headquarters address");
                    return None;
                }
            };
        let legal_address = match self.prop(obj, &["legaladdress"], &path) {
            Some((k, v)) => self.address(v, &at(&path, k), "participant.legal_address"),
            None => None,
        };
        self.rest(
            &path,
            obj,
            &[
                "legalname",
                "name",
                "legalregistrationnumber",
                "registrationnumber",
                "headquarteraddress",
                "headquartersaddress",
                "legaladdress",
            ],
            "participant",
        );
        Some(Participant {
            legal_name,
            registration,
            headquarters,
            legal_address,
        })
    }

    /// 22.10: `gx:countrySubdivisionCode` (`DE-BY`); Loire: `gx:countryCode` (`DE`) and
    /// optionally the subdivision; `vcard:locality` for the city.
    fn address(&mut self, v: &'a Value, path: &str, field: &str) -> Option<Address> {
        let (path, obj) = self.resolve(v, path, &[])?;
        let country = self
            .prop(obj, &["countrycode"], &path)
            .map(|(k, v)| (at(&path, k), text(v)));
        let sub = self
            .prop(obj, &["countrysubdivisioncode"], &path)
            .map(|(k, v)| (at(&path, k), text(v)));
        let country_code = match (&country, &sub) {
            (Some((p, Some(c))), _) => {
                if !codes::is_country(c) {
                    self.report.invalid(
                        p,
                        format!("{c:?} is not an ISO 3166-1 alpha-2 country code"),
                    );
                    return None;
                }
                self.report.mapped(p, format!("{field}.country"));
                c.clone()
            }
            (_, Some((p, Some(s)))) => {
                let cc: String = s.chars().take(2).collect();
                if !codes::is_country(&cc) {
                    self.report.invalid(
                        p,
                        format!("{s:?}: {cc:?} is not an ISO 3166-1 alpha-2 country code"),
                    );
                    return None;
                }
                self.report.mapped(p, format!("{field}.country"));
                cc
            }
            _ => {
                self.report.invalid(
                    &path,
                    "no country (gx:countryCode or gx:countrySubdivisionCode)",
                );
                return None;
            }
        };
        let subdivision = match sub {
            Some((p, Some(s))) => match codes::check_subdivision(&s, Some(&country_code)) {
                Ok(()) => {
                    self.report.mapped(&p, format!("{field}.subdivision"));
                    Some(s)
                }
                Err(e) => {
                    self.report.invalid(&p, e.to_string());
                    None
                }
            },
            _ => None,
        };
        let city = self.prop(obj, &["locality"], &path).and_then(|(k, v)| {
            self.report.mapped(at(&path, k), format!("{field}.city"));
            text(v)
        });
        let prefix = field.replace("participant.", "");
        self.rest(
            &path,
            obj,
            &["countrycode", "countrysubdivisioncode", "locality"],
            &prefix,
        );
        Some(Address {
            country: country_code,
            subdivision,
            city,
        })
    }

    /// Label levels from compliance / label credentials: (the subject as text, level).
    fn labels(&mut self) -> Vec<(String, ProtectionLevel, String)> {
        let mut out = Vec::new();
        let subjects = self.subjects;
        for (i, s) in subjects.iter().enumerate() {
            self.release = self.release_of(i);
            let Some((k, v)) = self.prop(s.obj, &["labellevel"], &s.path) else {
                continue;
            };
            self.used.insert(i);
            let p = at(&s.path, k);
            let level = match text(v).as_deref().map(str::to_ascii_uppercase).as_deref() {
                Some("L1" | "1") => Some(ProtectionLevel::Basic),
                Some("L2" | "2") => Some(ProtectionLevel::Substantial),
                Some("L3" | "3") => Some(ProtectionLevel::High),
                Some("SC" | "L0" | "0") => None,
                _ => {
                    self.report
                        .invalid(&p, format!("{v}: not a label level (SC, L1, L2, L3)"));
                    continue;
                }
            };
            match level {
                Some(l) => out.push((Value::Object(s.obj.clone()).to_string(), l, p)),
                None => self.report.kept(
                    p,
                    "standard compliance (SC) has no protection level equivalent",
                ),
            }
        }
        out
    }

    fn service(
        &mut self,
        i: usize,
        provider: Option<&str>,
        labels: &[(String, ProtectionLevel, String)],
        index: usize,
    ) -> Option<Service> {
        let subjects = self.subjects;
        let s = &subjects[i];
        let (path, obj) = (s.path.clone(), s.obj);
        self.release = self.release_of(i);
        let data_resource = s.types.iter().any(|t| t == "dataresource");
        let by = self.prop(obj, &["providedby", "producedby"], &path);
        let Some((bk, bv)) = by else {
            self.report.invalid(
                &path,
                if data_resource {
                    "gx:producedBy is missing: a data resource must name its producer"
                } else {
                    "gx:providedBy is missing: a service offering must name its provider"
                },
            );
            return None;
        };
        let named = id(bv);
        match (named, provider) {
            (Some(n), Some(p)) if n != p => {
                self.report.invalid(
                    at(&path, bk),
                    format!("provided by {n:?}, not by the imported participant {p:?}"),
                );
                return None;
            }
            (None, _) => {
                self.report
                    .invalid(at(&path, bk), "must name the provider by its id");
                return None;
            }
            _ => {}
        }
        let field = |f: &str| format!("services[{index}].{f}");
        let subject_id = id_of_map(obj).unwrap_or("");
        let sid = service_id(subject_id, index);
        let kind = match self.prop(obj, &["kind"], &path).and_then(|(_, v)| text(v)) {
            Some(k) => serde_json::from_value::<ServiceKind>(Value::String(k)).unwrap_or(
                if data_resource {
                    ServiceKind::DataResource
                } else {
                    ServiceKind::Other
                },
            ),
            None if data_resource => ServiceKind::DataResource,
            None => ServiceKind::Other,
        };
        let mut svc = Service::new(sid, kind);
        if let Some((k, v)) = self.prop(obj, &["name"], &path) {
            svc.name = text(v);
            self.report.mapped(at(&path, k), field("name"));
        }
        if let Some((k, v)) = self.prop(obj, &["description"], &path) {
            svc.description = text(v);
            self.report.mapped(at(&path, k), field("description"));
        }
        if let Some((k, v)) = self.prop(obj, &["keyword"], &path) {
            let mut kw = texts(v);
            if kw.len() > MAX_KEYWORDS {
                self.report.kept(
                    at(&path, k),
                    format!("only the first {MAX_KEYWORDS} keywords are mapped"),
                );
                kw.truncate(MAX_KEYWORDS);
            }
            svc.keywords = kw;
            self.report.mapped(at(&path, k), field("keywords"));
        }
        if let Some((k, v)) = self.prop(obj, &["endpoint"], &path) {
            let url = match v {
                Value::Object(o) => self
                    .prop(o, &["endpointurl", "url"], &at(&path, k))
                    .and_then(|(_, u)| text(u)),
                other => text(other),
            };
            if url.is_some() {
                svc.endpoint = url;
                self.report.mapped(at(&path, k), field("endpoint"));
            } else {
                self.report
                    .invalid(at(&path, k), "an endpoint without gx:endpointURL");
            }
        }
        if let Some((k, v)) = self.prop(
            obj,
            &["termsandconditions", "serviceofferingtermsandconditions"],
            &path,
        ) {
            let p = at(&path, k);
            let first = items(v).into_iter().next();
            if let Some((tp, t)) = first.and_then(|f| self.resolve(f, &p, &[])) {
                let url = self.prop(t, &["url"], &tp).and_then(|(_, u)| text(u));
                let hash = self.prop(t, &["hash"], &tp).and_then(|(_, h)| text(h));
                match (url, hash) {
                    (Some(url), Some(h)) if is_sha256(&h) => {
                        svc.terms = Some(Terms {
                            url,
                            sha256: h.to_ascii_lowercase(),
                        });
                        self.report.mapped(tp, field("terms"));
                    }
                    // The 22.10 shape asks only for a string, and the compliance service
                    // accepts other digests (its own valid example has a SHA-1): kept aside,
                    // since a self-description's terms carry a SHA-256.
                    (Some(_), Some(h)) => {
                        self.report.kept(
                            tp.clone(),
                            format!(
                                "terms not mapped: the hash {h:?} is not a SHA-256 (64 hex \
                                 digits), which a self-description's terms carry"
                            ),
                        );
                        self.aside
                            .push((tp, format!("gaiax.service.{k}"), v.to_string()));
                    }
                    _ => self.report.invalid(tp, "terms need a URL and a hash"),
                }
            }
        }
        let odrl = self
            .prop(obj, &["policy", "servicepolicy"], &path)
            .filter(|(_, v)| items(v).iter().any(|x| x.is_object() && text(x).is_none()));
        if let Some((k, v)) = odrl {
            // An ODRL policy: its enforceable terms become the usage policy's, the whole
            // object is kept verbatim, and every term not mapped is reported.
            let p = at(&path, k);
            let object = items(v)
                .into_iter()
                .find(|x| x.is_object())
                .cloned()
                .unwrap_or_default();
            let terms = crate::odrl::map(&object);
            svc.usage_policy = Some(terms.summary());
            self.report.mapped(p.clone(), field("usage_policy"));
            for u in &terms.unmapped {
                self.report
                    .kept(p.clone(), format!("ODRL term kept, not mapped: {u}"));
            }
            self.aside
                .push((p, format!("gaiax.service.{k}"), v.to_string()));
            self.odrl.push((svc.id.clone(), terms));
        } else if let Some((k, v)) = self.prop(obj, &["policy", "servicepolicy"], &path) {
            let policy = texts(v).join("\n");
            if policy.len() > MAX_TEXT_STRING {
                self.aside
                    .push((at(&path, k), format!("gaiax.service.{k}"), policy));
            } else if !policy.trim().is_empty() {
                svc.usage_policy = Some(policy);
                self.report.mapped(at(&path, k), field("usage_policy"));
            }
        }
        if let Some((k, v)) = self.prop(obj, &["dataaccountexport"], &path) {
            for (j, e) in items(v).into_iter().enumerate() {
                let p = if v.is_array() {
                    at_index(&at(&path, k), j)
                } else {
                    at(&path, k)
                };
                let Some((ep, eo)) = self.resolve(e, &p, &[]) else {
                    continue;
                };
                let mut get = |names: &[&str]| self.prop(eo, names, &ep).and_then(|(_, x)| text(x));
                let found = (
                    get(&["requesttype"]),
                    get(&["accesstype"]),
                    get(&["formattype", "format"]),
                );
                match found {
                    (Some(request_type), Some(access_type), Some(format)) => {
                        self.report.mapped(
                            ep,
                            field(&format!("data_export[{}]", svc.data_export.len())),
                        );
                        svc.data_export.push(DataExport {
                            request_type,
                            access_type,
                            format,
                        });
                    }
                    _ => self.report.invalid(
                        ep,
                        "gx:dataAccountExport needs gx:requestType, gx:accessType and gx:formatType",
                    ),
                }
            }
        }
        if !subject_id.is_empty() {
            for (label, level, lp) in labels {
                if label.contains(subject_id) || labels.len() == 1 {
                    svc.protection_level = Some(*level);
                    self.report.mapped(lp, field("protection_level"));
                }
            }
        }
        self.rest(
            &path,
            obj,
            &[
                "providedby",
                "producedby",
                "kind",
                "name",
                "description",
                "keyword",
                "endpoint",
                "termsandconditions",
                "serviceofferingtermsandconditions",
                "policy",
                "servicepolicy",
                "dataaccountexport",
            ],
            &format!("service.{}", svc.id),
        );
        Some(svc)
    }
}

/// The prefix of a compact IRI whose prefix no context bound (so JSON-LD kept it as an
/// IRI with that prefix as its scheme): `gx:legalName` → `gx`; only the prefixes Gaia-X
/// credentials use.
fn unbound_prefix(iri: &str) -> Option<&str> {
    const PREFIXES: [&str; 6] = ["gx", "schema", "vcard", "gaiamesh", "dcat", "dct"];
    let (prefix, rest) = iri.split_once(':')?;
    (PREFIXES.contains(&prefix) && !rest.starts_with("//")).then_some(prefix)
}

fn is_sha256(h: &str) -> bool {
    h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A service id from the subject's IRI: its fragment or last segment (a `service-` prefix,
/// as the export writes, dropped), reduced to the characters ids allow.
fn service_id(iri: &str, index: usize) -> String {
    let tail = iri
        .rsplit(['#', '/', ':'])
        .next()
        .unwrap_or("")
        .trim_start_matches("service-");
    let mut id: String = tail
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._+-".contains(*c))
        .take(64)
        .collect();
    if id.is_empty() {
        id = format!("service-{index}");
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_ids_come_from_the_iri() {
        assert_eq!(service_id("did:key:z6Mk#service-s3-eu", 0), "s3-eu");
        assert_eq!(
            service_id("https://example.com/offerings/vm%20large", 0),
            "vm20large"
        );
        assert_eq!(service_id("", 3), "service-3");
    }
}
