//! Issuer keys certified by X.509 chains (`x5c`, `x5u`) up to given trust anchors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::{
    Engine as _,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64},
};
use gaiamesh_gaiax::{ProofStatus, jwt, x509::ChainPolicy};
use rcgen::{BasicConstraints, Certificate, CertificateParams, IsCa, KeyPair};
use serde_json::{Value, json};

const DID: &str = "did:web:issuer.example";
/// 2026-06-01T00:00:00Z: inside every certificate's validity below but the expired one's.
const AT: u64 = 1_780_272_000;

struct Ca {
    cert: Certificate,
    key: KeyPair,
}

fn ca(name: &str) -> Ca {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, name.to_owned());
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.not_before = rcgen::date_time_ymd(2025, 1, 1);
    p.not_after = rcgen::date_time_ymd(2035, 1, 1);
    let key = KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    Ca { cert, key }
}

/// A P-256 key certified by `ca` for `issuer.example`, valid until `until` (year).
fn leaf(ca: &Ca, until: i32) -> (Certificate, KeyPair) {
    let mut p = CertificateParams::new(vec!["issuer.example".to_owned()]).unwrap();
    p.not_before = rcgen::date_time_ymd(2025, 6, 1);
    p.not_after = rcgen::date_time_ymd(until, 1, 1);
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, &ca.cert, &ca.key).unwrap();
    (cert, key)
}

/// The public JWK of a P-256 key, with `extra` members (x5c, x5u).
fn jwk(key: &KeyPair, extra: Value) -> Value {
    let raw = key.public_key_raw();
    assert_eq!(raw.len(), 65, "an uncompressed P-256 point");
    let mut j = json!({
        "kty": "EC", "crv": "P-256",
        "x": B64.encode(&raw[1..33]), "y": B64.encode(&raw[33..]),
    });
    if let (Some(o), Some(e)) = (j.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    j
}

fn x5c(certs: &[&Certificate]) -> Value {
    json!({"x5c": certs.iter().map(|c| STANDARD.encode(c.der())).collect::<Vec<_>>()})
}

fn did_document(jwk: Value) -> String {
    json!({
        "id": DID,
        "verificationMethod": [{
            "id": format!("{DID}#key-1"), "type": "JsonWebKey2020",
            "controller": DID, "publicKeyJwk": jwk,
        }],
    })
    .to_string()
}

fn policy(anchors: &[&Ca], at: u64) -> ChainPolicy {
    let mut p = ChainPolicy::new(at);
    for (i, a) in anchors.iter().enumerate() {
        p.add_anchors(&format!("anchor{i}.pem"), a.cert.pem().as_bytes())
            .unwrap();
    }
    p
}

/// An ES256 VC-JWT issued by `DID`, signed with `key` as `#key-1`.
fn credential(key: &KeyPair) -> String {
    use p256::ecdsa::signature::Signer as _;
    use p256::pkcs8::DecodePrivateKey as _;
    let header = json!({"alg": "ES256", "kid": format!("{DID}#key-1")});
    let payload = json!({"iss": DID, "vc": {"type": ["VerifiableCredential"], "issuer": DID}});
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(payload.to_string())
    );
    let sk = p256::ecdsa::SigningKey::from_pkcs8_der(&key.serialize_der()).unwrap();
    let sig: p256::ecdsa::Signature = sk.sign(input.as_bytes());
    format!("{input}.{}", B64.encode(sig.to_bytes()))
}

fn refusal(doc: &str, p: &ChainPolicy) -> String {
    jwt::did_document_keys(doc, Some(p))
        .map(|k| format!("accepted: {:?}", k[0].chain))
        .unwrap_err()
        .to_string()
}

#[test]
fn a_key_certified_up_to_an_anchor_verifies_and_says_which_anchor() {
    let root = ca("Root");
    let (cert, key) = leaf(&root, 2030);
    let doc = did_document(jwk(&key, x5c(&[&cert])));
    let keys = jwt::did_document_keys(&doc, Some(&policy(&[&root], AT))).unwrap();
    assert_eq!(keys.len(), 1);
    let anchor = keys[0].chain.clone().expect("chain recorded");
    assert!(anchor.starts_with("anchor0.pem #1 (sha256:"), "{anchor}");
    let status = jwt::decode(&credential(&key)).unwrap().check(&keys);
    assert!(
        matches!(&status, ProofStatus::Verified { alg, key }
            if alg == "ES256" && key.contains("certificate chain to anchor0.pem #1")),
        "{status:?}"
    );
    // Without anchors the document's keys are trusted as given, and say nothing of a chain.
    let plain = jwt::did_document_keys(&doc, None).unwrap();
    assert!(plain[0].chain.is_none());
}

#[test]
fn an_intermediate_in_the_chain_is_followed() {
    let root = ca("Root");
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "Intermediate");
    p.not_before = rcgen::date_time_ymd(2025, 1, 1);
    p.not_after = rcgen::date_time_ymd(2034, 1, 1);
    let ikey = KeyPair::generate().unwrap();
    let icert = p.signed_by(&ikey, &root.cert, &root.key).unwrap();
    let inter = Ca {
        cert: icert,
        key: ikey,
    };
    let (cert, key) = leaf(&inter, 2030);
    // the key's certificate first, then the intermediate (RFC 7517 §4.7)
    let doc = did_document(jwk(&key, x5c(&[&cert, &inter.cert])));
    assert!(jwt::did_document_keys(&doc, Some(&policy(&[&root], AT))).is_ok());
    // without the intermediate the chain stops short of the root
    let short = did_document(jwk(&key, x5c(&[&cert])));
    let e = refusal(&short, &policy(&[&root], AT));
    assert!(e.contains("does not lead to a given trust anchor"), "{e}");
}

#[test]
fn chains_to_other_roots_expired_certificates_and_foreign_keys_are_refused() {
    let root = ca("Root");
    let other = ca("Other root");
    let (cert, key) = leaf(&root, 2030);
    let doc = did_document(jwk(&key, x5c(&[&cert])));

    // a chain to a root nobody gave
    let e = refusal(&doc, &policy(&[&other], AT));
    assert!(
        e.contains("verificationMethod[0] (did:web:issuer.example#key-1) is not certified")
            && e.contains("does not lead to a given trust anchor"),
        "{e}"
    );
    // the same chain checked after the key's certificate expired
    let e = refusal(&doc, &policy(&[&root], 1_900_000_000));
    assert!(e.contains("expired"), "{e}");
    // a certificate that certifies another key than the JWK's
    let (_, stranger) = leaf(&root, 2030);
    let forged = did_document(jwk(&stranger, x5c(&[&cert])));
    let e = refusal(&forged, &policy(&[&root], AT));
    assert!(e.contains("certifies another key"), "{e}");
    // anchors given, but the key shows no chain at all
    let bare = did_document(jwk(&key, json!({})));
    let e = refusal(&bare, &policy(&[&root], AT));
    assert!(e.contains("no certificate chain (x5c or x5u)"), "{e}");
    // garbage in x5c
    let junk = did_document(jwk(&key, json!({"x5c": ["not base64!"]})));
    let e = refusal(&junk, &policy(&[&root], AT));
    assert!(e.contains("x5c[0] is not base64"), "{e}");
    let junk = did_document(jwk(&key, json!({"x5c": [STANDARD.encode(b"not DER")]})));
    let e = refusal(&junk, &policy(&[&root], AT));
    assert!(e.contains("certificate"), "{e}");
}

#[test]
fn an_x5u_chain_is_read_from_its_local_copy() {
    let root = ca("Root");
    let (cert, key) = leaf(&root, 2030);
    let url = "https://issuer.example/.well-known/x509CertificateChain.pem";
    let doc = did_document(jwk(&key, json!({"x5u": url})));
    let mut p = policy(&[&root], AT);
    let e = refusal(&doc, &p);
    assert!(e.contains(&format!("--x5u {url}=FILE")), "{e}");
    p.add_x5u(url, format!("{}{}", cert.pem(), root.cert.pem()).as_bytes())
        .unwrap();
    let keys = jwt::did_document_keys(&doc, Some(&p)).unwrap();
    assert!(keys[0].chain.is_some());
    // a copy that is not PEM is refused when it is given, naming it
    let e = p.add_x5u(url, b"hello").unwrap_err().to_string();
    assert!(e.contains(url) && e.contains("no PEM CERTIFICATE"), "{e}");
}

#[test]
fn a_bad_anchor_file_is_refused_naming_it() {
    let mut p = ChainPolicy::new(AT);
    let e = p.add_anchors("roots.pem", b"").unwrap_err().to_string();
    assert!(
        e.contains("roots.pem") && e.contains("no PEM CERTIFICATE"),
        "{e}"
    );
    assert!(!p.has_anchors());
}
