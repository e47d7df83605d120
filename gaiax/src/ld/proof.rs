//! `JsonWebSignature2020` proofs on JSON-LD credentials, checked offline.
//!
//! The proof's `jws` is a detached JWS with the unencoded payload option (RFC 7797,
//! `b64: false`). Two payloads are in use and both are accepted:
//!
//! - the W3C CCG suite (lds-jws2020, as jsonld-signatures implements it):
//!   `SHA-256(c14n(proof options)) || SHA-256(c14n(document without proof))`, where the proof
//!   options are the proof without `jws` under the document's `@context`;
//! - the Gaia-X 22.10 compliance service and signer tool: the lowercase hex string of
//!   `SHA-256(c14n(document without proof))` only. This form does not cover the proof's own
//!   fields (`created`, `verificationMethod`), which the report says.
//!
//! `c14n` is RDFC-1.0 ([`super::canon`]) over the RDF of [`super::to_quads`]. A document
//! with properties or types its contexts do not define is refused: JSON-LD drops them, so
//! they would be shown as signed without being signed.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

use super::{Contexts, LdError, canon, to_quads, undefined_terms_of};
use crate::{
    ProofStatus,
    json::items,
    jwt::{Jws, TrustedKey},
};

/// The proof type this module checks.
pub const JWS_2020: &str = "JsonWebSignature2020";

fn invalid(reason: impl Into<String>) -> ProofStatus {
    ProofStatus::Invalid {
        reason: reason.into(),
    }
}

fn sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

fn canonical(doc: &Value, contexts: &Contexts) -> Result<String, LdError> {
    let quads = to_quads(doc, contexts)?;
    canon::canonicalize(&quads).map_err(|e| LdError::Syntax(e.to_string()))
}

/// What went wrong turning the document into canonical RDF, as a proof status.
fn ld_status(e: LdError) -> ProofStatus {
    match e {
        LdError::MissingContext(_) => ProofStatus::NotChecked {
            reason: e.to_string(),
        },
        other => invalid(other.to_string()),
    }
}

/// Checks every proof of `doc` (a credential or presentation object). The result is the
/// first proof that does not verify, or the last one that does.
pub fn check(doc: &Value, contexts: &Contexts, trusted: &[TrustedKey]) -> ProofStatus {
    let Some(obj) = doc.as_object() else {
        return invalid("a JSON-LD credential is a JSON object");
    };
    let Some(proofs) = obj.get("proof") else {
        return ProofStatus::Unsigned;
    };
    let mut unsigned = obj.clone();
    unsigned.remove("proof");
    let unsigned = Value::Object(unsigned);
    let mut last = ProofStatus::Unsigned;
    for proof in items(proofs) {
        last = check_one(&unsigned, proof, contexts, trusted);
        if !matches!(last, ProofStatus::Verified { .. }) {
            return last;
        }
    }
    last
}

/// Adds a `JsonWebSignature2020` proof to `doc` (a credential or presentation without one),
/// signed with an Ed25519 key in the form the Gaia-X 22.10 compliance service verifies: a
/// detached unencoded JWS (`b64: false`) over the lowercase hex SHA-256 of the document's
/// RDFC-1.0 canonical form. A document with terms its contexts do not define is refused,
/// since the proof would not cover them.
pub fn sign_gaiax(
    doc: &mut Value,
    contexts: &Contexts,
    verification_method: &str,
    created: &str,
    sign: &dyn Fn(&[u8]) -> [u8; 64],
) -> Result<(), LdError> {
    if let Some(url) = contexts.missing(doc).into_iter().next() {
        return Err(LdError::MissingContext(url));
    }
    let quads = to_quads(doc, contexts)?;
    let undefined = undefined_terms_of(doc, &quads, contexts)?;
    if !undefined.is_empty() {
        return Err(LdError::Undefined(undefined));
    }
    let document = canon::canonicalize(&quads).map_err(|e| LdError::Syntax(e.to_string()))?;
    let header = B64.encode(json!({"alg": "EdDSA", "b64": false, "crit": ["b64"]}).to_string());
    let input = format!("{header}.{}", hex::encode(sha256(&document)));
    let signature = B64.encode(sign(input.as_bytes()));
    if let Some(o) = doc.as_object_mut() {
        o.insert(
            "proof".into(),
            json!({
                "type": JWS_2020,
                "created": created,
                "proofPurpose": "assertionMethod",
                "verificationMethod": verification_method,
                "jws": format!("{header}..{signature}"),
            }),
        );
    }
    Ok(())
}

fn check_one(
    unsigned: &Value,
    proof: &Value,
    contexts: &Contexts,
    trusted: &[TrustedKey],
) -> ProofStatus {
    let Some(p) = proof.as_object() else {
        return invalid("the proof is not a JSON object");
    };
    let kind = p.get("type").and_then(Value::as_str).unwrap_or("");
    if kind != JWS_2020 {
        return ProofStatus::NotChecked {
            reason: format!(
                "{} proofs are not checked offline (only {JWS_2020} is)",
                if kind.is_empty() { "untyped" } else { kind }
            ),
        };
    }
    let Some(jws) = p.get("jws").and_then(Value::as_str) else {
        return invalid("a JsonWebSignature2020 proof without \"jws\"");
    };
    let (header_b64, signature) = match jws.split('.').collect::<Vec<_>>()[..] {
        [h, "", s] => (h, s),
        [_, _, _] => {
            return invalid("the proof's jws is not detached (its payload part is not empty)");
        }
        _ => return invalid("the proof's jws is not a JWS (header..signature)"),
    };
    let header: Map<String, Value> = match B64
        .decode(header_b64)
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
    {
        Some(h) => h,
        None => return invalid("the proof's JWS header is not base64url JSON"),
    };
    let Ok(signature) = B64.decode(signature.trim_end_matches('=')) else {
        return invalid("the proof's JWS signature is not base64url");
    };
    let unencoded = header.get("b64") == Some(&Value::Bool(false));
    if unencoded
        && !header
            .get("crit")
            .and_then(Value::as_array)
            .is_some_and(|c| c.iter().any(|x| x == "b64"))
    {
        return invalid("the JWS header sets b64 to false without listing it in crit (RFC 7797)");
    }

    // The contexts must be at hand, and must define every term, before anything is hashed.
    if let Some(url) = contexts.missing(unsigned).into_iter().next() {
        return ld_status(LdError::MissingContext(url));
    }
    // One expansion serves the undefined-term check and the document hash.
    let quads = match to_quads(unsigned, contexts) {
        Ok(q) => q,
        Err(e) => return ld_status(e),
    };
    match undefined_terms_of(unsigned, &quads, contexts) {
        Ok(names) if names.is_empty() => {}
        Ok(names) => {
            return invalid(format!(
                "{} not defined by the credential's @context, so the proof cannot cover {}: {}",
                if names.len() == 1 {
                    "a term is"
                } else {
                    "terms are"
                },
                if names.len() == 1 { "it" } else { "them" },
                names.join(", ")
            ));
        }
        Err(e) => return ld_status(e),
    }
    let document = match canon::canonicalize(&quads) {
        Ok(c) => c,
        Err(e) => return invalid(e.to_string()),
    };
    let mut options = p.clone();
    for k in ["jws", "signatureValue", "proofValue"] {
        options.remove(k);
    }
    options.insert(
        "@context".into(),
        unsigned.get("@context").cloned().unwrap_or(Value::Null),
    );
    let options = match canonical(&Value::Object(options), contexts) {
        Ok(c) => c,
        Err(e) => return ld_status(e),
    };
    let doc_hash = sha256(&document);
    let mut standard = sha256(&options).to_vec();
    standard.extend_from_slice(&doc_hash);
    let gaiax = hex::encode(doc_hash).into_bytes();

    // Keys are looked up by the verification method, as a JWT's by its kid.
    let method = p.get("verificationMethod").and_then(|v| {
        v.as_str()
            .or_else(|| v.get("id").and_then(Value::as_str))
            .map(str::to_owned)
    });
    let mut lookup = header.clone();
    if let Some(m) = &method {
        lookup
            .entry("kid")
            .or_insert_with(|| Value::from(m.as_str()));
    }
    let issuer = unsigned.get("issuer").or_else(|| unsigned.get("holder"));
    let signed = |payload: &[u8]| {
        let mut input = header_b64.as_bytes().to_vec();
        input.push(b'.');
        if unencoded {
            input.extend_from_slice(payload);
        } else {
            input.extend_from_slice(B64.encode(payload).as_bytes());
        }
        Jws::detached(
            lookup.clone(),
            json!({ "issuer": issuer }),
            input,
            signature.clone(),
        )
    };
    let first = signed(&standard).check(trusted);
    if matches!(
        first,
        ProofStatus::Verified { .. } | ProofStatus::NotChecked { .. }
    ) {
        return first;
    }
    match signed(&gaiax).check(trusted) {
        ProofStatus::Verified { alg, key } => ProofStatus::Verified {
            alg,
            key: format!(
                "{key}; Gaia-X 22.10 payload: the document is covered, the proof's created \
                 and verificationMethod are not"
            ),
        },
        _ => first,
    }
}
