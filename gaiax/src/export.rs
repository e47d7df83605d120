//! A self-description as Gaia-X credentials. Loire (here): `gx:LegalPerson`, one
//! registration-number credential per number, one `gx:ServiceOffering` (or
//! `gx:DataResource`) per service; 22.10 in [`tagus`].

mod tagus;

pub use tagus::GAIA_X_TERMS_2210;

use gaiamesh_protocol::{
    sd::{RegistrationKind, SdDocument, Service, ServiceKind},
    time::UnixMillis,
};
use serde_json::{Map, Value, json};

use crate::{did_key, jwt};

/// How to write the credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// A JSON-LD presentation of unsigned credentials.
    JsonLd,
    /// A presentation of `EnvelopedVerifiableCredential`s, each a VC-JWT signed with the
    /// node key (EdDSA, issuer `did:key`).
    VcJwt,
    /// Gaia-X 22.10 (Tagus) JSON-LD, as the 22.10 compliance service takes it: each
    /// credential and the presentation with a `JsonWebSignature2020` proof by the node key
    /// when one is given (unsigned without).
    Tagus {
        /// Add the participant's acceptance of the Gaia-X terms and conditions
        /// (`gx:GaiaXTermsAndConditions`), which the compliance service requires.
        gaia_x_terms: bool,
    },
}

/// The node key that signs an export: its public half, a raw Ed25519 signing function,
/// and the DID it signs as.
#[derive(Clone, Copy)]
pub struct Signer<'a> {
    /// Ed25519 public key.
    pub public: &'a [u8; 32],
    /// Signs a JWS signing input.
    pub sign: &'a dyn Fn(&[u8]) -> [u8; 64],
    /// The issuer's `did:web`, whose DID document ([`crate::did_web::document`]) names
    /// this key as `#node-key`; `None`: the key's own `did:key`.
    pub did: Option<&'a str>,
}

impl Signer<'_> {
    /// The issuer: the `did:web` or the key's `did:key`.
    pub(crate) fn issuer(&self) -> String {
        self.did
            .map_or_else(|| did_key::ed25519_did(self.public), str::to_owned)
    }

    /// The verification method that names the key.
    pub(crate) fn method(&self) -> String {
        match self.did {
            Some(d) => format!("{d}#{}", crate::did_web::NODE_KEY_FRAGMENT),
            None => did_key::verification_method(&self.issuer()),
        }
    }
}

impl std::fmt::Debug for Signer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("public", &hex::encode(self.public))
            .finish()
    }
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// `vc-jwt` needs a key.
    #[error("vc-jwt export needs the node key to sign with")]
    NoKey,
    /// The self-description lacks what the release's shapes require.
    #[error("a {release} export needs what the self-description does not have: {}", .missing.join("; "))]
    Incomplete {
        /// `22.10`.
        release: &'static str,
        /// Each missing field with what it must be.
        missing: Vec<String>,
    },
    /// A credential could not be signed (its JSON-LD did not expand).
    #[error("cannot sign: {0}")]
    Sign(crate::ld::LdError),
}

/// The W3C credentials context (v2).
const CREDENTIALS_V2: &str = "https://www.w3.org/ns/credentials/v2";
/// The Gaia-X (Loire) context: binds `gx:`.
const GAIA_X: &str = "https://w3id.org/gaia-x/development#";
/// Prefixes the exported credentials use beside `gx:`, bound here because neither context
/// above binds them (`schema:name` would otherwise expand to the IRI `schema:name`).
pub(crate) const PREFIXES: [(&str, &str); 3] = [
    ("schema", "https://schema.org/"),
    ("vcard", "http://www.w3.org/2006/vcard/ns#"),
    ("gaiamesh", "https://gaiamesh.org/ns#"),
];

/// [`PREFIXES`] as an inline `@context` map.
fn prefix_map() -> Value {
    PREFIXES
        .iter()
        .map(|(p, iri)| ((*p).to_owned(), Value::from(*iri)))
        .collect::<Map<String, Value>>()
        .into()
}

/// A credential's `@context`: the W3C and Gaia-X contexts and the prefixes.
fn context() -> Value {
    json!([CREDENTIALS_V2, GAIA_X, prefix_map()])
}

fn registration_type(kind: RegistrationKind) -> (&'static str, &'static str) {
    match kind {
        RegistrationKind::VatId => ("gx:VatID", "gx:vatID"),
        RegistrationKind::LeiCode => ("gx:LeiCode", "schema:leiCode"),
        RegistrationKind::Eori => ("gx:EORI", "gx:eori"),
        RegistrationKind::Euid => ("gx:EUID", "gx:euid"),
        RegistrationKind::TaxId => ("gx:TaxID", "schema:taxID"),
        _ => ("gx:LocalRegistrationNumber", "gx:local"),
    }
}

fn address(a: &gaiamesh_protocol::sd::Address) -> Value {
    let mut o = Map::new();
    o.insert("type".into(), "gx:Address".into());
    o.insert("gx:countryCode".into(), a.country.clone().into());
    if let Some(s) = &a.subdivision {
        o.insert("gx:countrySubdivisionCode".into(), s.clone().into());
    }
    if let Some(c) = &a.city {
        o.insert("vcard:locality".into(), c.clone().into());
    }
    Value::Object(o)
}

fn credential(issuer: &str, id: String, kind: &str, subject: Value, now: UnixMillis) -> Value {
    json!({
        "@context": context(),
        "type": ["VerifiableCredential", kind],
        "id": format!("{id}-credential"),
        "issuer": issuer,
        "validFrom": now.to_string(),
        "credentialSubject": subject,
    })
}

fn service(s: &Service, subject: &str, participant: &str) -> (&'static str, Value) {
    let kind = if s.kind == ServiceKind::DataResource {
        "gx:DataResource"
    } else {
        "gx:ServiceOffering"
    };
    let mut o = Map::new();
    o.insert("id".into(), format!("{subject}#service-{}", s.id).into());
    o.insert("type".into(), kind.into());
    let by = if kind == "gx:DataResource" {
        "gx:producedBy"
    } else {
        "gx:providedBy"
    };
    o.insert(by.into(), json!({"id": participant}));
    o.insert("gaiamesh:kind".into(), s.kind.as_str().into());
    if let Some(n) = &s.name {
        o.insert("schema:name".into(), n.clone().into());
    }
    if let Some(d) = &s.description {
        o.insert("schema:description".into(), d.clone().into());
    }
    if !s.keywords.is_empty() {
        o.insert("gx:keyword".into(), s.keywords.clone().into());
    }
    if let Some(e) = &s.endpoint {
        o.insert(
            "gx:endpoint".into(),
            json!({"type": "gx:Endpoint", "gx:endpointURL": e}),
        );
    }
    if let Some(t) = &s.terms {
        o.insert(
            "gx:serviceOfferingTermsAndConditions".into(),
            json!({"type": "gx:TermsAndConditions", "gx:url": t.url, "gx:hash": t.sha256}),
        );
    }
    if let Some(p) = &s.usage_policy {
        o.insert("gx:servicePolicy".into(), p.clone().into());
    }
    if !s.data_export.is_empty() {
        let list: Vec<Value> = s
            .data_export
            .iter()
            .map(|d| {
                json!({"type": "gx:DataAccountExport", "gx:requestType": d.request_type,
                       "gx:accessType": d.access_type, "gx:formatType": d.format})
            })
            .collect();
        o.insert("gx:dataAccountExport".into(), list.into());
    }
    (kind, Value::Object(o))
}

/// The self-description of `subject` (its Ed25519 key) as Gaia-X credentials in a
/// presentation. `signer` is needed for [`ExportFormat::VcJwt`], signs
/// [`ExportFormat::Tagus`] when given, and names the issuer; without it the issuer is the
/// subject's `did:key`.
pub fn export(
    doc: &SdDocument,
    subject: &[u8; 32],
    format: ExportFormat,
    signer: Option<Signer<'_>>,
    now: UnixMillis,
) -> Result<Value, ExportError> {
    if let ExportFormat::Tagus { gaia_x_terms } = format {
        return tagus::export(doc, subject, gaia_x_terms, signer, now);
    }
    let subject_did = did_key::ed25519_did(subject);
    let issuer = signer.map_or(subject_did.clone(), |s| s.issuer());
    let participant = format!("{subject_did}#participant");
    let p = &doc.participant;
    let mut creds = Vec::new();
    let mut regs = Vec::new();
    for (i, r) in p.registration.iter().enumerate() {
        let (t, field) = registration_type(r.kind);
        let id = format!("{subject_did}#registration-{i}");
        regs.push(json!({"id": id}));
        creds.push(credential(
            &issuer,
            id.clone(),
            t,
            json!({"id": id, "type": t, field: r.value}),
            now,
        ));
    }
    let mut person = Map::new();
    person.insert("id".into(), participant.clone().into());
    person.insert("type".into(), "gx:LegalPerson".into());
    person.insert("schema:name".into(), p.legal_name.clone().into());
    person.insert("gx:registrationNumber".into(), regs.into());
    person.insert("gx:headquartersAddress".into(), address(&p.headquarters));
    // The 25.11 shape requires a legal address; a self-description without its own says
    // the headquarters are it.
    person.insert(
        "gx:legalAddress".into(),
        address(p.legal_address.as_ref().unwrap_or(&p.headquarters)),
    );
    creds.insert(
        0,
        credential(
            &issuer,
            participant.clone(),
            "gx:LegalPerson",
            Value::Object(person),
            now,
        ),
    );
    for s in &doc.services {
        let (kind, subj) = service(s, &subject_did, &participant);
        let id = format!("{subject_did}#service-{}", s.id);
        creds.push(credential(&issuer, id, kind, subj, now));
    }
    let list: Vec<Value> = match format {
        ExportFormat::JsonLd | ExportFormat::Tagus { .. } => creds,
        ExportFormat::VcJwt => {
            let signer = signer.ok_or(ExportError::NoKey)?;
            let mut header = Map::new();
            header.insert("typ".into(), "vc+jwt".into());
            header.insert("cty".into(), "vc".into());
            header.insert("kid".into(), signer.method().into());
            header.insert("jwk".into(), jwt::ed25519_jwk(signer.public));
            let sign = signer.sign;
            creds
                .into_iter()
                .map(|mut c| {
                    if let Some(o) = c.as_object_mut() {
                        o.insert("iss".into(), issuer.clone().into());
                    }
                    let token = jwt::sign_eddsa(header.clone(), &c, sign);
                    json!({
                        "@context": CREDENTIALS_V2,
                        "type": "EnvelopedVerifiableCredential",
                        "id": format!("data:application/vc+jwt,{token}"),
                    })
                })
                .collect()
        }
    };
    Ok(json!({
        "@context": [CREDENTIALS_V2],
        "type": ["VerifiablePresentation"],
        "holder": issuer,
        "verifiableCredential": list,
    }))
}
