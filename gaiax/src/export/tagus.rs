//! A self-description as Gaia-X 22.10 (Tagus) credentials, in the form of the compliance
//! service's own examples: a `gx:LegalParticipant`, one `gx:legalRegistrationNumber`
//! credential per number, optionally the signed Gaia-X terms and conditions, and one
//! `gx:ServiceOffering` (or `gx:DataResource`) per service, each with a
//! `JsonWebSignature2020` proof when a key is given.

use gaiamesh_protocol::{
    sd::{Address, RegistrationKind, SdDocument, Service, ServiceKind},
    time::UnixMillis,
};
use serde_json::{Map, Value, json};

use super::{ExportError, Signer};
use crate::{did_key, ld};

/// The W3C credentials context (v1, as 22.10 uses).
const CREDENTIALS_V1: &str = "https://www.w3.org/2018/credentials/v1";
/// The context that defines `JsonWebSignature2020`.
const JWS_2020: &str = "https://w3id.org/security/suites/jws-2020/v1";
/// The Gaia-X terms and conditions a 22.10 participant signs, word for word as the 22.10
/// registry's `gx:GaiaXTermsAndConditionsShape` requires them (`sh:hasValue`).
pub const GAIA_X_TERMS_2210: &str = "The PARTICIPANT signing the Self-Description agrees as follows:\n- to update its descriptions about any changes, be it technical, organizational, or legal - especially but not limited to contractual in regards to the indicated attributes present in the descriptions.\n\nThe keypair used to sign Verifiable Credentials will be revoked where Gaia-X Association becomes aware of any inaccurate statements in regards to the claims which result in a non-compliance with the Trust Framework and policy rules defined in the Policy Rules and Labelling Document (PRLD).";

/// A 22.10 credential's `@context`: the W3C v1 and jws-2020 contexts, the 22.10 registry's
/// (which binds `gx:`), and the prefixes of the terms 22.10 does not have (an address's
/// city, a service's kind and endpoint), bound inline as in the Loire export.
fn context() -> Value {
    json!([
        CREDENTIALS_V1,
        JWS_2020,
        ld::GX_2210_URL_FRAGMENT,
        super::prefix_map()
    ])
}

fn registration_field(kind: RegistrationKind) -> &'static str {
    match kind {
        RegistrationKind::VatId => "gx:vatID",
        RegistrationKind::LeiCode => "gx:leiCode",
        RegistrationKind::Eori => "gx:EORI",
        RegistrationKind::Euid => "gx:EUID",
        RegistrationKind::TaxId => "gx:taxID",
        _ => "gx:local",
    }
}

/// A 22.10 address: its ISO 3166-2 subdivision (the country is its first two letters) and
/// the city, if any.
fn address(a: &Address) -> Option<Value> {
    let s = a.subdivision.as_ref()?;
    let mut o = Map::new();
    o.insert("gx:countrySubdivisionCode".into(), s.clone().into());
    if let Some(c) = &a.city {
        o.insert("vcard:locality".into(), c.clone().into());
    }
    Some(Value::Object(o))
}

/// What a self-description lacks for the 22.10 shapes, as field paths with the reason.
fn missing(doc: &SdDocument) -> Vec<String> {
    let p = &doc.participant;
    let mut out = Vec::new();
    if p.registration.is_empty() {
        out.push("participant.registration (gx:legalRegistrationNumber is required)".to_owned());
    }
    if p.headquarters.subdivision.is_none() {
        out.push(format!(
            "participant.headquarters.subdivision (22.10 addresses are ISO 3166-2 \
             subdivision codes, e.g. {}-…; the document has only the country)",
            p.headquarters.country
        ));
    }
    if p.legal_address
        .as_ref()
        .is_some_and(|a| a.subdivision.is_none())
    {
        out.push("participant.legal_address.subdivision (an ISO 3166-2 code)".to_owned());
    }
    for (i, s) in doc.services.iter().enumerate() {
        if s.kind == ServiceKind::DataResource {
            continue;
        }
        if s.terms.is_none() {
            out.push(format!(
                "services[{i}].terms (gx:termsAndConditions: a URL and its SHA-256)"
            ));
        }
        if s.data_export.is_empty() {
            out.push(format!(
                "services[{i}].data_export (gx:dataAccountExport: request type, access \
                 type and format)"
            ));
        }
    }
    out
}

fn service(s: &Service, id: &str, participant: &str) -> Value {
    let data = s.kind == ServiceKind::DataResource;
    let mut o = Map::new();
    o.insert("id".into(), id.into());
    if data {
        o.insert("type".into(), "gx:DataResource".into());
        o.insert("gx:producedBy".into(), json!({"id": participant}));
    } else {
        o.insert("type".into(), "gx:ServiceOffering".into());
        o.insert("gx:providedBy".into(), json!({"id": participant}));
    }
    o.insert("gaiamesh:kind".into(), s.kind.as_str().into());
    if let Some(n) = &s.name {
        o.insert("gx:name".into(), n.clone().into());
    }
    if let Some(d) = &s.description {
        o.insert("gx:description".into(), d.clone().into());
    }
    if !s.keywords.is_empty() {
        // 22.10 has no keyword term (Loire's gx:keyword came later).
        o.insert("gaiamesh:keyword".into(), s.keywords.clone().into());
    }
    if let Some(e) = &s.endpoint {
        // 22.10 has no endpoint term.
        o.insert(
            "gaiamesh:endpoint".into(),
            json!({"gaiamesh:endpointURL": e}),
        );
    }
    if let Some(t) = &s.terms {
        o.insert(
            "gx:termsAndConditions".into(),
            json!({"gx:URL": t.url, "gx:hash": t.sha256}),
        );
    }
    if !data {
        // Required by the shape; the compliance service's own examples write "" for none.
        o.insert(
            "gx:policy".into(),
            s.usage_policy.clone().unwrap_or_default().into(),
        );
    } else if let Some(p) = &s.usage_policy {
        o.insert("gx:policy".into(), p.clone().into());
    }
    if !s.data_export.is_empty() {
        let list: Vec<Value> = s
            .data_export
            .iter()
            .map(|d| {
                json!({"gx:requestType": d.request_type, "gx:accessType": d.access_type,
                       "gx:formatType": d.format})
            })
            .collect();
        o.insert("gx:dataAccountExport".into(), list.into());
    }
    Value::Object(o)
}

/// Signs `doc` when there is a key.
fn signed(
    mut doc: Value,
    signer: Option<Signer<'_>>,
    now: UnixMillis,
) -> Result<Value, ExportError> {
    if let Some(s) = signer {
        ld::proof::sign_gaiax(
            &mut doc,
            &ld::Contexts::bundled(),
            &s.method(),
            &now.to_string(),
            s.sign,
        )
        .map_err(ExportError::Sign)?;
    }
    Ok(doc)
}

/// The 22.10 presentation; see the module docs. `gaia_x_terms` adds the participant's
/// signed acceptance of the Gaia-X terms and conditions, which the compliance service
/// requires.
pub(super) fn export(
    doc: &SdDocument,
    subject: &[u8; 32],
    gaia_x_terms: bool,
    signer: Option<Signer<'_>>,
    now: UnixMillis,
) -> Result<Value, ExportError> {
    let missing = missing(doc);
    if !missing.is_empty() {
        return Err(ExportError::Incomplete {
            release: "22.10",
            missing,
        });
    }
    let subject_did = did_key::ed25519_did(subject);
    let issuer = signer.map_or(subject_did.clone(), |s| s.issuer());
    let participant = format!("{subject_did}#participant");
    let credential = |id: &str, subject: Value| {
        let c = json!({
            "@context": context(),
            "type": ["VerifiableCredential"],
            "id": format!("{id}-credential"),
            "issuer": issuer,
            "issuanceDate": now.to_string(),
            "credentialSubject": subject,
        });
        signed(c, signer, now)
    };
    let p = &doc.participant;
    let mut creds = Vec::new();
    let mut regs = Vec::new();
    let mut numbers = Vec::new();
    for (i, r) in p.registration.iter().enumerate() {
        let id = format!("{subject_did}#registration-{i}");
        regs.push(json!({"id": id}));
        numbers.push(credential(
            &id,
            json!({"id": id, "type": "gx:legalRegistrationNumber",
                   registration_field(r.kind): r.value}),
        )?);
    }
    let headquarters = address(&p.headquarters);
    let legal = p
        .legal_address
        .as_ref()
        .map_or(headquarters.clone(), address);
    creds.push(credential(
        &participant,
        json!({
            "id": participant,
            "type": "gx:LegalParticipant",
            "gx:legalName": p.legal_name,
            "gx:legalRegistrationNumber": regs,
            "gx:headquarterAddress": headquarters,
            "gx:legalAddress": legal,
        }),
    )?);
    creds.extend(numbers);
    if gaia_x_terms {
        let id = format!("{subject_did}#gaia-x-terms");
        creds.push(credential(
            &id,
            json!({"id": id, "type": "gx:GaiaXTermsAndConditions",
                   "gx:termsAndConditions": GAIA_X_TERMS_2210}),
        )?);
    }
    for s in &doc.services {
        let id = format!("{subject_did}#service-{}", s.id);
        creds.push(credential(&id, service(s, &id, &participant))?);
    }
    let vp = json!({
        "@context": [CREDENTIALS_V1, JWS_2020],
        "type": "VerifiablePresentation",
        "holder": issuer,
        "verifiableCredential": creds,
    });
    signed(vp, signer, now)
}
