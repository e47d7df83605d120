//! Reading input files into credentials: JSON-LD presentations, credentials and lists of
//! them, compact VC-JWTs, and `EnvelopedVerifiableCredential`s carrying a VC-JWT.

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::{
    CredentialReport, MAX_CREDENTIALS, MAX_INPUT_BYTES, PresentationReport, ProofStatus, Release,
    Report,
    json::{at, at_index, items, types},
    jwt::{self, TrustedKey},
    ld::{Contexts, proof as ld_proof},
};

/// One input file.
#[derive(Clone, Debug)]
pub struct Source {
    /// How to name it in the report (the path as given).
    pub name: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// A credential found in the input.
#[derive(Clone, Debug)]
pub(crate) struct Credential {
    /// File and JSON path.
    pub(crate) origin: String,
    /// The credential as JSON (a JWT's payload, its `vc` claim for VC-DM 1.1 JWTs).
    pub(crate) vc: Value,
}

/// Original bytes of the input, kept to present them again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Original {
    /// File and JSON path.
    pub origin: String,
    /// `json` (a whole input file) or `jwt`.
    pub kind: &'static str,
    /// SHA-256, hex.
    pub sha256: String,
    /// The bytes.
    pub bytes: Vec<u8>,
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Everything the sources hold, in order, with a report entry per credential.
pub(crate) struct Loader<'a> {
    trusted: &'a [TrustedKey],
    contexts: &'a Contexts,
    at: time::OffsetDateTime,
    pub(crate) credentials: Vec<Credential>,
    pub(crate) originals: Vec<Original>,
}

impl<'a> Loader<'a> {
    pub(crate) fn new(
        trusted: &'a [TrustedKey],
        contexts: &'a Contexts,
        at: time::OffsetDateTime,
    ) -> Self {
        Self {
            trusted,
            contexts,
            at,
            credentials: Vec::new(),
            originals: Vec::new(),
        }
    }

    pub(crate) fn load(&mut self, src: &Source, report: &mut Report) {
        if src.bytes.len() > MAX_INPUT_BYTES {
            report.invalid(
                &src.name,
                format!(
                    "{} bytes, at most {MAX_INPUT_BYTES} are read from one file",
                    src.bytes.len()
                ),
            );
            return;
        }
        let Ok(text) = std::str::from_utf8(&src.bytes) else {
            report.invalid(&src.name, "not UTF-8 text");
            return;
        };
        if jwt::looks_like_jws(text) {
            self.jwt(text.trim(), src.name.clone(), report);
            return;
        }
        match serde_json::from_str::<Value>(text) {
            Ok(v) => {
                let original = self.originals.len();
                self.originals.push(Original {
                    origin: src.name.clone(),
                    kind: "json",
                    sha256: sha256_hex(&src.bytes),
                    bytes: src.bytes.clone(),
                });
                self.value(&v, &format!("{}:$", src.name), original, report);
            }
            Err(e) => report.invalid(&src.name, format!("neither JSON nor a compact JWT: {e}")),
        }
    }

    fn value(&mut self, v: &Value, path: &str, original: usize, report: &mut Report) {
        match v {
            Value::Array(list) => {
                for (i, item) in list.iter().enumerate() {
                    self.value(item, &at_index(path, i), original, report);
                }
            }
            Value::String(s) if jwt::looks_like_jws(s) => self.jwt(s, path.to_owned(), report),
            // The 22.10 compliance service's answer wraps the presentation it checked and the
            // compliance credential it issued.
            Value::Object(o)
                if o.contains_key("selfDescriptionCredential") && types(o).is_empty() =>
            {
                for key in ["selfDescriptionCredential", "complianceCredential"] {
                    if let Some(inner) = o.get(key) {
                        self.value(inner, &at(path, key), original, report);
                    }
                }
            }
            Value::Object(o) => {
                let t = types(o);
                if t.iter().any(|t| t == "verifiablepresentation") {
                    if o.get("proof").is_some() {
                        let proof = ld_proof::check(v, self.contexts, self.trusted);
                        if let ProofStatus::Invalid { .. } = &proof {
                            let line = format!("presentation {}", proof.describe());
                            report.invalid(at(path, "proof"), line);
                        }
                        report.presentations.push(PresentationReport {
                            origin: path.to_owned(),
                            proof,
                        });
                    }
                    match o.get("verifiableCredential") {
                        Some(list) => {
                            let p = at(path, "verifiableCredential");
                            match list {
                                Value::Array(_) => self.value(list, &p, original, report),
                                one => self.value(one, &p, original, report),
                            }
                        }
                        None => report.invalid(path, "a presentation without verifiableCredential"),
                    }
                } else if t.iter().any(|t| t == "envelopedverifiablecredential") {
                    let id = o.get("id").and_then(Value::as_str).unwrap_or("");
                    match id.split_once(',') {
                        Some((media, token))
                            if media.starts_with("data:application/vc+jwt")
                                || media.starts_with("data:application/vc+ld+json+jwt") =>
                        {
                            self.jwt(token, at(path, "id"), report);
                        }
                        _ => report.invalid(
                            at(path, "id"),
                            "an enveloped credential must be a data:application/vc+jwt URL",
                        ),
                    }
                } else if o.contains_key("credentialSubject") {
                    let proof = ld_proof::check(v, self.contexts, self.trusted);
                    self.push(
                        v.clone(),
                        path.to_owned(),
                        ("json-ld", None),
                        original,
                        proof,
                        report,
                    );
                } else {
                    report.invalid(
                        path,
                        "neither a verifiable credential (no credentialSubject) nor a presentation",
                    );
                }
            }
            _ => report.invalid(path, "expected a credential, a presentation or a JWT"),
        }
    }

    fn jwt(&mut self, token: &str, origin: String, report: &mut Report) {
        let jws = match jwt::decode(token) {
            Ok(j) => j,
            Err(e) => {
                report.invalid(origin, e.to_string());
                return;
            }
        };
        let proof = jws.check(self.trusted);
        // VC-DM 2.0 (Loire): the payload is the credential; VC-DM 1.1: its `vc` claim.
        let vc = match jws.payload.get("vc") {
            Some(inner @ Value::Object(_)) => inner.clone(),
            _ => jws.payload.clone(),
        };
        let original = self.originals.len();
        self.originals.push(Original {
            origin: origin.clone(),
            kind: "jwt",
            sha256: sha256_hex(token.as_bytes()),
            bytes: token.as_bytes().to_vec(),
        });
        if vc.get("credentialSubject").is_none() {
            report.invalid(origin, "the JWT payload is not a verifiable credential");
            return;
        }
        self.push(
            vc,
            origin,
            ("vc-jwt", Some(&jws.payload)),
            original,
            proof,
            report,
        );
    }

    /// Adds a credential; `format` is `json-ld` or `vc-jwt` with the JWT's claims.
    fn push(
        &mut self,
        vc: Value,
        origin: String,
        (format, claims): (&'static str, Option<&Value>),
        original: usize,
        proof: ProofStatus,
        report: &mut Report,
    ) {
        if self.credentials.len() >= MAX_CREDENTIALS {
            report.invalid(origin, format!("more than {MAX_CREDENTIALS} credentials"));
            return;
        }
        let subjects: Vec<&serde_json::Map<String, Value>> = vc
            .get("credentialSubject")
            .map(items)
            .unwrap_or_default()
            .into_iter()
            .filter_map(Value::as_object)
            .collect();
        let subject_types: Vec<String> = subjects.iter().flat_map(|o| types(o)).collect();
        let keys: Vec<String> = subjects
            .iter()
            .flat_map(|o| o.keys().map(|k| crate::json::local(k)))
            .collect();
        let validity = crate::validity::check(&vc, claims, self.at);
        if !validity.is_valid() {
            report.invalid(origin.clone(), validity.describe());
        }
        report.credentials.push(CredentialReport {
            origin: origin.clone(),
            format,
            validity,
            release: match release_of(&subject_types, &keys) {
                // `gx:compliance` is both releases' type: the context says which gx: it is
                Release::Loire
                    if names_tagus_context(&vc)
                        && subject_types.iter().all(|t| t == "compliance") =>
                {
                    Release::Tagus
                }
                r => r,
            },
            types: subject_types,
            sha256: self.originals[original].sha256.clone(),
            proof,
        });
        self.credentials.push(Credential { origin, vc });
    }
}

/// Whether the credential's `@context` names a 22.10 registry document (whose `gx:` is
/// the trust-framework namespace of the Tagus registry).
fn names_tagus_context(vc: &Value) -> bool {
    vc.get("@context")
        .map(items)
        .unwrap_or_default()
        .iter()
        .filter_map(|c| c.as_str())
        .any(|c| c.contains("/trusted-shape-registry/") || c.contains("/trusted-schemas-registry/"))
}

/// The release the subject types (or, for types both releases have, the property names)
/// belong to.
pub(crate) fn release_of(types: &[String], keys: &[String]) -> Release {
    const TAGUS_KEYS: [&str; 4] = [
        "legalname",
        "headquarteraddress",
        "termsandconditions",
        "policy",
    ];
    const LOIRE_KEYS: [&str; 4] = [
        "registrationnumber",
        "headquartersaddress",
        "serviceofferingtermsandconditions",
        "servicepolicy",
    ];
    const TAGUS: [&str; 2] = ["legalparticipant", "legalregistrationnumber"];
    const LOIRE: [&str; 9] = [
        "legalperson",
        "vatid",
        "leicode",
        "eori",
        "euid",
        "taxid",
        "localregistrationnumber",
        "labelcredential",
        "compliance",
    ];
    if types.iter().any(|t| TAGUS.contains(&t.as_str())) {
        Release::Tagus
    } else if types.iter().any(|t| LOIRE.contains(&t.as_str())) {
        Release::Loire
    } else if keys.iter().any(|k| TAGUS_KEYS.contains(&k.as_str())) {
        Release::Tagus
    } else if keys.iter().any(|k| LOIRE_KEYS.contains(&k.as_str())) {
        Release::Loire
    } else {
        Release::Unknown
    }
}
