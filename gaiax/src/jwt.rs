//! Compact JWS (VC-JWT): decoding, offline verification (EdDSA, ES256, PS256) and EdDSA
//! signing with a node key.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use serde_json::{Map, Value, json};

use crate::{ProofStatus, did_key};

/// A decoded compact JWS.
#[derive(Clone, Debug)]
pub struct Jws {
    /// The protected header.
    pub header: Map<String, Value>,
    /// The payload (JSON).
    pub payload: Value,
    /// `BASE64URL(header) . BASE64URL(payload)`, what the signature covers.
    signing_input: Vec<u8>,
    signature: Vec<u8>,
}

/// Why a JWS or JWK was refused.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    /// Not three base64url parts, or a part is not JSON.
    #[error("malformed JWT: {0}")]
    Malformed(String),
    /// A JWK that is not a supported public key.
    #[error("unusable JWK: {0}")]
    Jwk(String),
    /// The signature does not verify with the key.
    #[error("signature does not verify")]
    BadSignature,
    /// An algorithm this crate does not check.
    #[error("algorithm {0:?} is not supported (EdDSA, ES256, PS256 are)")]
    Unsupported(String),
    /// The key does not fit the algorithm.
    #[error("a {key} key cannot check an {alg} signature")]
    KeyMismatch {
        /// Key type.
        key: &'static str,
        /// Algorithm.
        alg: String,
    },
}

/// The JWS algorithms verified.
pub const SUPPORTED: &[&str] = &["EdDSA", "Ed25519", "ES256", "ES384", "PS256", "RS256"];

/// A public key from a JWK.
#[derive(Clone, Debug)]
pub enum PublicJwk {
    /// `OKP` / `Ed25519`.
    Ed25519([u8; 32]),
    /// `EC` / `P-256`.
    P256(p256::ecdsa::VerifyingKey),
    /// `EC` / `P-384`.
    P384(p384::ecdsa::VerifyingKey),
    /// `RSA`.
    Rsa(rsa::RsaPublicKey),
}

/// A key the caller trusts (`--trust-key`), bound to the one issuer it may sign for: its
/// `kid` is the key's DID URL (`did:web:example.com#key-1`), whose DID is that issuer. A
/// bare fragment (`#JWK2020`, `key-1`) is not accepted: every issuer could name a key so.
#[derive(Clone, Debug)]
pub struct TrustedKey {
    /// The key's DID URL.
    pub kid: String,
    /// The key.
    pub key: PublicJwk,
    /// The trust anchor its certificate chain leads to, when one was required
    /// ([`crate::x509::ChainPolicy`]).
    pub chain: Option<String>,
}

impl TrustedKey {
    /// `key` as the key `kid` (a DID URL with a fragment).
    pub fn bound(kid: &str, key: PublicJwk) -> Result<Self, JwtError> {
        match kid.split_once('#') {
            Some((did, fragment)) if is_did(did) && !fragment.is_empty() => Ok(Self {
                kid: kid.to_owned(),
                key,
                chain: None,
            }),
            _ => Err(JwtError::Jwk(format!(
                "a trusted key's kid must be its DID URL (did:web:example.com#key-1), not {kid:?}: \
                 a bare name would fit every issuer that uses it; set the JWK's kid, or pass \
                 --trust-key DID_URL=FILE"
            ))),
        }
    }

    /// The issuer the key signs for: its DID.
    pub fn controller(&self) -> &str {
        self.kid
            .split_once('#')
            .map_or(self.kid.as_str(), |(d, _)| d)
    }
}

/// `did:METHOD:ID` with a lowercase method and a non-empty id.
fn is_did(s: &str) -> bool {
    let mut parts = s.splitn(3, ':');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some("did"), Some(m), Some(id))
            if !m.is_empty() && m.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) && !id.is_empty()
    )
}

/// `kid` as an absolute DID URL: a relative `#fragment` is resolved against `issuer`.
fn absolute_kid(kid: &str, issuer: Option<&str>) -> Option<String> {
    match (kid.strip_prefix('#'), issuer) {
        (Some(fragment), Some(did)) if is_did(did) => Some(format!("{did}#{fragment}")),
        (Some(_), _) => None,
        (None, _) => Some(kid.to_owned()),
    }
}

fn b64(part: &str, what: &str) -> Result<Vec<u8>, JwtError> {
    B64.decode(part.trim_end_matches('='))
        .map_err(|e| JwtError::Malformed(format!("{what}: {e}")))
}

/// Decodes a compact JWS whose payload is JSON.
pub fn decode(token: &str) -> Result<Jws, JwtError> {
    let token = token.trim();
    let parts: Vec<&str> = token.split('.').collect();
    let [h, p, s] = parts[..] else {
        return Err(JwtError::Malformed(format!(
            "{} parts, a compact JWS has 3",
            parts.len()
        )));
    };
    let header: Map<String, Value> = serde_json::from_slice(&b64(h, "header")?)
        .map_err(|e| JwtError::Malformed(format!("header: {e}")))?;
    let payload: Value = serde_json::from_slice(&b64(p, "payload")?)
        .map_err(|e| JwtError::Malformed(format!("payload: {e}")))?;
    Ok(Jws {
        header,
        payload,
        signing_input: format!("{h}.{p}").into_bytes(),
        signature: b64(s, "signature")?,
    })
}

/// Whether `text` looks like a compact JWS (three base64url parts).
pub fn looks_like_jws(text: &str) -> bool {
    let t = text.trim();
    t.split('.').count() == 3
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.=".contains(&b))
}

impl Jws {
    /// A JWS whose signing input was built elsewhere (a detached, unencoded payload);
    /// `claims` stands in for the payload when keys are looked up (its `issuer`).
    pub(crate) fn detached(
        header: Map<String, Value>,
        claims: Value,
        signing_input: Vec<u8>,
        signature: Vec<u8>,
    ) -> Self {
        Self {
            header,
            payload: claims,
            signing_input,
            signature,
        }
    }

    /// The `alg` header.
    pub fn alg(&self) -> &str {
        self.header.get("alg").and_then(Value::as_str).unwrap_or("")
    }

    /// Checks the signature with `key`.
    pub fn verify(&self, key: &PublicJwk) -> Result<(), JwtError> {
        let alg = self.alg();
        let msg = &self.signing_input;
        match (alg, key) {
            ("EdDSA" | "Ed25519", PublicJwk::Ed25519(k)) => {
                let vk = ed25519_dalek::VerifyingKey::from_bytes(k)
                    .map_err(|e| JwtError::Jwk(e.to_string()))?;
                let sig = ed25519_dalek::Signature::from_slice(&self.signature)
                    .map_err(|_| JwtError::BadSignature)?;
                vk.verify_strict(msg, &sig)
                    .map_err(|_| JwtError::BadSignature)
            }
            ("ES256", PublicJwk::P256(vk)) => {
                use p256::ecdsa::signature::Verifier as _;
                let sig = p256::ecdsa::Signature::from_slice(&self.signature)
                    .map_err(|_| JwtError::BadSignature)?;
                vk.verify(msg, &sig).map_err(|_| JwtError::BadSignature)
            }
            ("ES384", PublicJwk::P384(vk)) => {
                use p384::ecdsa::signature::Verifier as _;
                let sig = p384::ecdsa::Signature::from_slice(&self.signature)
                    .map_err(|_| JwtError::BadSignature)?;
                vk.verify(msg, &sig).map_err(|_| JwtError::BadSignature)
            }
            ("PS256", PublicJwk::Rsa(pk)) => {
                use rsa::signature::Verifier as _;
                let vk = rsa::pss::VerifyingKey::<sha2::Sha256>::new(pk.clone());
                let sig = rsa::pss::Signature::try_from(self.signature.as_slice())
                    .map_err(|_| JwtError::BadSignature)?;
                vk.verify(msg, &sig).map_err(|_| JwtError::BadSignature)
            }
            ("RS256", PublicJwk::Rsa(pk)) => {
                use rsa::signature::Verifier as _;
                let vk = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(pk.clone());
                let sig = rsa::pkcs1v15::Signature::try_from(self.signature.as_slice())
                    .map_err(|_| JwtError::BadSignature)?;
                vk.verify(msg, &sig).map_err(|_| JwtError::BadSignature)
            }
            (a, k) if SUPPORTED.contains(&a) => Err(JwtError::KeyMismatch {
                key: match k {
                    PublicJwk::Ed25519(_) => "Ed25519",
                    PublicJwk::P256(_) => "P-256",
                    PublicJwk::P384(_) => "P-384",
                    PublicJwk::Rsa(_) => "RSA",
                },
                alg: alg.to_owned(),
            }),
            (other, _) => Err(JwtError::Unsupported(other.to_owned())),
        }
    }

    /// The proof status against the keys available offline, most trusted first: keys the
    /// caller trusts, a `did:key` issuer or `kid`, the header's own JWK.
    pub fn check(&self, trusted: &[TrustedKey]) -> ProofStatus {
        let alg = self.alg().to_owned();
        if !SUPPORTED.contains(&alg.as_str()) {
            return ProofStatus::NotChecked {
                reason: JwtError::Unsupported(alg).to_string(),
            };
        }
        let kid = self.header.get("kid").and_then(Value::as_str);
        let issuer = self
            .payload
            .get("iss")
            .or_else(|| self.payload.get("issuer"))
            .and_then(|v| v.as_str().or_else(|| v.get("id").and_then(Value::as_str)));
        // A trusted key is the one its DID URL names, and it signs only for its own DID.
        let wanted = kid.and_then(|k| absolute_kid(k, issuer));
        let candidates: Vec<&TrustedKey> = trusted
            .iter()
            .filter(|t| match &wanted {
                Some(k) => t.kid == *k,
                None => kid.is_none() && issuer.is_some_and(|i| t.controller() == i),
            })
            .collect();
        if let Some(t) = candidates.first()
            && let Some(i) = issuer
            && t.controller() != i
        {
            return ProofStatus::Invalid {
                reason: format!(
                    "signed with {}, a key of {}, but issued in the name of {i}",
                    t.kid,
                    t.controller()
                ),
            };
        }
        for t in &candidates {
            if self.verify(&t.key).is_ok() {
                let key = match &t.chain {
                    Some(anchor) => format!("trusted key {}, certificate chain to {anchor}", t.kid),
                    None => format!("trusted key {}", t.kid),
                };
                return ProofStatus::Verified { alg, key };
            }
        }
        if let Some(t) = candidates.first() {
            return ProofStatus::Invalid {
                reason: format!("does not verify with the trusted key {}", t.kid),
            };
        }
        if let Some(did) = kid
            .filter(|k| k.starts_with("did:key:"))
            .or(issuer.filter(|i| i.starts_with("did:key:")))
        {
            // The did:key that signed must be the issuer named (when one is).
            let signer = did.split_once('#').map_or(did, |(d, _)| d);
            if let Some(i) = issuer
                && i != signer
            {
                return ProofStatus::Invalid {
                    reason: format!("signed by {signer}, but issued in the name of {i}"),
                };
            }
            let key = match did_key::parse(did) {
                Ok(did_key::DidKey::Ed25519(k)) => PublicJwk::Ed25519(k),
                Ok(did_key::DidKey::P256(sec1)) => {
                    match p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1) {
                        Ok(vk) => PublicJwk::P256(vk),
                        Err(e) => {
                            return ProofStatus::Invalid {
                                reason: format!("{did}: {e}"),
                            };
                        }
                    }
                }
                Err(e) => {
                    return ProofStatus::Invalid {
                        reason: e.to_string(),
                    };
                }
            };
            return match self.verify(&key) {
                Ok(()) => ProofStatus::Verified {
                    alg,
                    key: "did:key issuer".into(),
                },
                Err(e) => ProofStatus::Invalid {
                    reason: format!("{e} with the issuer's did:key"),
                },
            };
        }
        // A DID that carries its key (the Gaia-X wizard's did:web): as a did:key.
        let signer = kid
            .or(issuer)
            .map(|d| d.split_once('#').map_or(d, |(d, _)| d));
        if let Some(did) = signer
            && let Some(key) = crate::wizard::key_in_did(did)
        {
            if let Some(i) = issuer
                && i != did
            {
                return ProofStatus::Invalid {
                    reason: format!("signed by {did}, but issued in the name of {i}"),
                };
            }
            return match key.and_then(|k| self.verify(&k)) {
                Ok(()) => ProofStatus::Verified {
                    alg,
                    key: "the key in the issuer's did:web (the Gaia-X wizard makes its DID \
                          documents from the path; like a did:key it proves who holds the key, \
                          not who they are)"
                        .into(),
                },
                Err(e) => ProofStatus::Invalid {
                    reason: format!("{e} with the key in the issuer's did:web"),
                },
            };
        }
        if let Some(jwk) = self.header.get("jwk") {
            return match parse_jwk(jwk).and_then(|k| self.verify(&k)) {
                Ok(()) => ProofStatus::Verified {
                    alg,
                    key: SELF_ASSERTED.into(),
                },
                Err(e) => ProofStatus::Invalid {
                    reason: format!("{e} with the header's JWK"),
                },
            };
        }
        let named = kid.or(issuer).unwrap_or("no kid, no issuer");
        ProofStatus::NotChecked {
            reason: format!(
                "the key {named} must be resolved over the network; pass it with --trust-key"
            ),
        }
    }
}

/// Parses a public JWK (`OKP`/Ed25519, `EC`/P-256, `RSA`).
pub fn parse_jwk(v: &Value) -> Result<PublicJwk, JwtError> {
    let field = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| JwtError::Jwk(format!("no {k:?}")))
    };
    match field("kty")? {
        "OKP" => {
            if field("crv")? != "Ed25519" {
                return Err(JwtError::Jwk("OKP keys must be Ed25519".into()));
            }
            let x = b64(field("x")?, "x")?;
            <[u8; 32]>::try_from(x.as_slice())
                .map(PublicJwk::Ed25519)
                .map_err(|_| JwtError::Jwk("an Ed25519 x has 32 bytes".into()))
        }
        "EC" => {
            let crv = field("crv")?;
            let size = match crv {
                "P-256" => 32,
                "P-384" => 48,
                other => {
                    return Err(JwtError::Jwk(format!(
                        "EC curve {other:?} is not supported (P-256, P-384)"
                    )));
                }
            };
            let (x, y) = (b64(field("x")?, "x")?, b64(field("y")?, "y")?);
            if x.len() != size || y.len() != size {
                return Err(JwtError::Jwk(format!("{crv} x and y have {size} bytes")));
            }
            let mut sec1 = vec![4u8];
            sec1.extend_from_slice(&x);
            sec1.extend_from_slice(&y);
            if size == 32 {
                p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                    .map(PublicJwk::P256)
                    .map_err(|e| JwtError::Jwk(format!("not a P-256 point: {e}")))
            } else {
                p384::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                    .map(PublicJwk::P384)
                    .map_err(|e| JwtError::Jwk(format!("not a P-384 point: {e}")))
            }
        }
        "RSA" => {
            let n = rsa::BigUint::from_bytes_be(&b64(field("n")?, "n")?);
            let e = rsa::BigUint::from_bytes_be(&b64(field("e")?, "e")?);
            rsa::RsaPublicKey::new(n, e)
                .map(PublicJwk::Rsa)
                .map_err(|e| JwtError::Jwk(e.to_string()))
        }
        other => Err(JwtError::Jwk(format!("kty {other:?} is not supported"))),
    }
}

/// The keys of a DID document (`did.json`, as `did:web` publishes it at
/// `https://HOST/.well-known/did.json`): every `verificationMethod` with a `publicKeyJwk`,
/// each bound to its own id (resolved against the document's `id` when relative) and
/// usable only for that DID. The document is the caller's copy; nothing is fetched.
///
/// With a `chains` policy that names trust anchors, every key must also carry a certificate
/// chain (`x5c`, or `x5u` with a local copy) that leads to one of them and certifies that
/// very key; a key that does not is refused, naming its method and why.
pub fn did_document_keys(
    text: &str,
    chains: Option<&crate::x509::ChainPolicy>,
) -> Result<Vec<TrustedKey>, JwtError> {
    let doc: Value = serde_json::from_str(text)
        .map_err(|e| JwtError::Jwk(format!("the DID document is not JSON: {e}")))?;
    let did = doc
        .get("id")
        .and_then(Value::as_str)
        .filter(|d| is_did(d))
        .ok_or_else(|| JwtError::Jwk("the DID document has no DID as its \"id\"".into()))?;
    let methods = doc
        .get("verificationMethod")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            JwtError::Jwk(format!(
                "the DID document of {did} lists no verificationMethod"
            ))
        })?;
    let mut keys = Vec::new();
    for (i, m) in methods.iter().enumerate() {
        let Some(jwk) = m.get("publicKeyJwk") else {
            continue;
        };
        let id = m.get("id").and_then(Value::as_str).unwrap_or_default();
        let kid = if id.starts_with('#') {
            format!("{did}{id}")
        } else {
            id.to_owned()
        };
        let controller = m.get("controller").and_then(Value::as_str).unwrap_or(did);
        if controller != did || !kid.starts_with(&format!("{did}#")) {
            return Err(JwtError::Jwk(format!(
                "verificationMethod[{i}] ({kid}) belongs to {controller}, not to the document's {did}"
            )));
        }
        let key =
            parse_jwk(jwk).map_err(|e| JwtError::Jwk(format!("verificationMethod[{i}]: {e}")))?;
        let mut trusted = TrustedKey::bound(&kid, key)?;
        if let Some(policy) = chains.filter(|p| p.has_anchors()) {
            let anchor = policy.check(jwk, &trusted.key).map_err(|e| {
                JwtError::Jwk(format!(
                    "verificationMethod[{i}] ({kid}) is not certified: {}",
                    e.to_string().trim_start_matches("unusable JWK: ")
                ))
            })?;
            trusted.chain = Some(anchor);
        }
        keys.push(trusted);
    }
    if keys.is_empty() {
        return Err(JwtError::Jwk(format!(
            "the DID document of {did} has no publicKeyJwk key (other key formats are not read)"
        )));
    }
    Ok(keys)
}

/// The key of a proof verified with the JWT header's own `jwk`: not bound to the issuer,
/// so `--strict` does not accept it.
pub const SELF_ASSERTED: &str = "header jwk (self-asserted; it proves integrity, not who issued)";

/// Parses a `--trust-key` file: one JWK or a JWK set (`{"keys": […]}`), each with its DID
/// URL as `kid`; with `bind`, the file holds one key and `bind` is its DID URL.
pub fn parse_trusted(text: &str, bind: Option<&str>) -> Result<Vec<TrustedKey>, JwtError> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| JwtError::Jwk(format!("not JSON: {e}")))?;
    let keys: Vec<&Value> = match v.get("keys").and_then(Value::as_array) {
        Some(a) => a.iter().collect(),
        None => vec![&v],
    };
    if bind.is_some() && keys.len() != 1 {
        return Err(JwtError::Jwk(format!(
            "DID_URL=FILE binds one key, and the file has {}",
            keys.len()
        )));
    }
    keys.into_iter()
        .map(|k| {
            let key = parse_jwk(k)?;
            let kid = match bind {
                Some(b) => b,
                None => k.get("kid").and_then(Value::as_str).ok_or_else(|| {
                    JwtError::Jwk(
                        "the key has no kid: set it to the key's DID URL, or pass --trust-key DID_URL=FILE"
                            .into(),
                    )
                })?,
            };
            TrustedKey::bound(kid, key)
        })
        .collect()
}

/// The public JWK of an Ed25519 key.
pub fn ed25519_jwk(public: &[u8; 32]) -> Value {
    json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(public)})
}

/// Signs `payload` as a compact JWS with `header` (its `alg` set to `EdDSA`) using a raw
/// Ed25519 signing function.
pub fn sign_eddsa(
    mut header: Map<String, Value>,
    payload: &Value,
    sign: impl FnOnce(&[u8]) -> [u8; 64],
) -> String {
    header.insert("alg".into(), Value::from("EdDSA"));
    let h = B64.encode(Value::Object(header).to_string());
    let p = B64.encode(payload.to_string());
    let input = format!("{h}.{p}");
    let sig = sign(input.as_bytes());
    format!("{input}.{}", B64.encode(sig))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ed_key() -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(&[7u8; 32])
    }

    fn ed_token(payload: &Value, header: Map<String, Value>) -> String {
        let sk = ed_key();
        sign_eddsa(header, payload, |m| {
            use ed25519_dalek::Signer as _;
            sk.sign(m).to_bytes()
        })
    }

    #[test]
    fn eddsa_with_header_jwk_did_key_and_trusted_key() {
        let pk = ed_key().verifying_key().to_bytes();
        let payload = json!({"iss": "did:web:example.com", "credentialSubject": {}});
        let mut h = Map::new();
        h.insert("jwk".into(), ed25519_jwk(&pk));
        let t = decode(&ed_token(&payload, h)).unwrap();
        assert!(
            matches!(t.check(&[]), ProofStatus::Verified { ref key, .. } if key.starts_with("header jwk"))
        );

        let did = did_key::ed25519_did(&pk);
        let t = decode(&ed_token(&json!({"iss": did}), Map::new())).unwrap();
        assert!(
            matches!(t.check(&[]), ProofStatus::Verified { ref key, .. } if key == "did:key issuer")
        );

        let t = decode(&ed_token(&payload, Map::new())).unwrap();
        assert!(
            matches!(t.check(&[]), ProofStatus::NotChecked { ref reason } if reason.contains("did:web:example.com"))
        );
        let trusted = parse_trusted(
            &ed25519_jwk(&pk).to_string(),
            Some("did:web:example.com#k1"),
        )
        .unwrap();
        assert!(matches!(t.check(&trusted), ProofStatus::Verified { .. }));
    }

    #[test]
    fn a_did_document_gives_its_keys_bound_to_its_did() {
        let pk = ed_key().verifying_key().to_bytes();
        let doc = json!({
            "@context": ["https://www.w3.org/ns/did/v1"],
            "id": "did:web:notary.example",
            "verificationMethod": [
                {"id": "#key-1", "type": "JsonWebKey2020", "controller": "did:web:notary.example",
                 "publicKeyJwk": ed25519_jwk(&pk)},
                {"id": "did:web:notary.example#key-2", "type": "Multikey",
                 "controller": "did:web:notary.example", "publicKeyMultibase": "z6Mk"}
            ]
        });
        let keys = did_document_keys(&doc.to_string(), None).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid, "did:web:notary.example#key-1");
        let mut h = Map::new();
        h.insert("kid".into(), "did:web:notary.example#key-1".into());
        let t = decode(&ed_token(&json!({"iss": "did:web:notary.example"}), h)).unwrap();
        assert!(matches!(t.check(&keys), ProofStatus::Verified { .. }));
        // a method controlled by someone else is refused, naming it
        let mut foreign = doc.clone();
        foreign["verificationMethod"][0]["controller"] = "did:web:evil.example".into();
        let e = did_document_keys(&foreign.to_string(), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("did:web:evil.example"), "{e}");
        let e = did_document_keys("{\"id\": \"nope\"}", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no DID"), "{e}");
    }

    #[test]
    fn a_trusted_key_signs_only_for_its_own_issuer() {
        let pk = ed_key().verifying_key().to_bytes();
        let trusted = parse_trusted(
            &ed25519_jwk(&pk).to_string(),
            Some("did:web:a.example#JWK2020"),
        )
        .unwrap();
        let token = |iss: &str, kid: &str| {
            let mut h = Map::new();
            h.insert("kid".into(), kid.into());
            decode(&ed_token(&json!({"iss": iss}), h)).unwrap()
        };
        // its own issuer, by full DID URL or by a fragment relative to the issuer
        for kid in ["did:web:a.example#JWK2020", "#JWK2020"] {
            assert!(
                matches!(token("did:web:a.example", kid).check(&trusted), ProofStatus::Verified { ref key, .. } if key == "trusted key did:web:a.example#JWK2020"),
                "{kid}"
            );
        }
        // another issuer naming the same fragment: not this key (nothing to check it with)
        assert!(matches!(
            token("did:web:b.example", "#JWK2020").check(&trusted),
            ProofStatus::NotChecked { .. }
        ));
        // this key, but a credential in another issuer's name: a forgery
        let forged = token("did:web:b.example", "did:web:a.example#JWK2020").check(&trusted);
        assert!(
            matches!(&forged, ProofStatus::Invalid { reason } if reason.contains("issued in the name of did:web:b.example")),
            "{forged:?}"
        );
        // a did:key that signs in another issuer's name
        let did = did_key::ed25519_did(&pk);
        let vm = did_key::verification_method(&did);
        let t = token("did:web:b.example", &vm).check(&[]);
        assert!(
            matches!(&t, ProofStatus::Invalid { reason } if reason.contains("issued in the name of did:web:b.example")),
            "{t:?}"
        );
        // bare names are refused as trusted keys
        let mut jwk = ed25519_jwk(&pk);
        jwk["kid"] = "JWK2020".into();
        let e = parse_trusted(&jwk.to_string(), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("DID URL"), "{e}");
        let e = parse_trusted(&ed25519_jwk(&pk).to_string(), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no kid"), "{e}");
        jwk["kid"] = "did:web:a.example#k".into();
        assert_eq!(
            parse_trusted(&jwk.to_string(), None).unwrap()[0].controller(),
            "did:web:a.example"
        );
    }

    #[test]
    fn tampered_payloads_and_wrong_keys_are_invalid() {
        let pk = ed_key().verifying_key().to_bytes();
        let mut h = Map::new();
        h.insert("jwk".into(), ed25519_jwk(&pk));
        let token = ed_token(&json!({"a": 1}), h);
        let parts: Vec<&str> = token.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], B64.encode(r#"{"a":2}"#), parts[2]);
        let t = decode(&forged).unwrap();
        assert!(matches!(t.check(&[]), ProofStatus::Invalid { .. }));
        let other = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]).verifying_key();
        assert!(matches!(
            t.verify(&PublicJwk::Ed25519(other.to_bytes())),
            Err(JwtError::BadSignature)
        ));
    }

    /// A compact JWS over `payload` with `alg` and `kid`, signed by `sign`.
    fn token_with(
        alg: &str,
        kid: &str,
        payload: &Value,
        sign: impl FnOnce(&[u8]) -> Vec<u8>,
    ) -> Jws {
        let h = B64.encode(json!({"alg": alg, "kid": kid}).to_string());
        let p = B64.encode(payload.to_string());
        let input = format!("{h}.{p}");
        let sig = sign(input.as_bytes());
        decode(&format!("{input}.{}", B64.encode(sig))).unwrap()
    }

    #[test]
    fn rs256_and_es384_verify_like_the_others() {
        let mut rng = rand::rngs::OsRng;
        let payload = json!({"iss": "did:web:compliance.example"});
        // RS256 (PKCS#1 v1.5), what the compliance service and most VC-JWTs use
        let rsa_key = rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap();
        use rsa::traits::PublicKeyParts as _;
        let public = rsa_key.to_public_key();
        let rsa_jwk = json!({"kty": "RSA", "n": B64.encode(public.n().to_bytes_be()),
            "e": B64.encode(public.e().to_bytes_be()), "kid": "did:web:compliance.example#X509-JWK2020"});
        let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(rsa_key);
        let rs = token_with(
            "RS256",
            "did:web:compliance.example#X509-JWK2020",
            &payload,
            |m| {
                use rsa::signature::{SignatureEncoding as _, Signer as _};
                signer.sign(m).to_vec()
            },
        );
        let trusted = parse_trusted(&rsa_jwk.to_string(), None).unwrap();
        assert!(
            matches!(rs.check(&trusted), ProofStatus::Verified { ref alg, .. } if alg == "RS256"),
            "{:?}",
            rs.check(&trusted)
        );
        // the same key under PS256 does not verify an RS256 signature
        let mut as_ps = rs.clone();
        as_ps.header.insert("alg".into(), "PS256".into());
        assert!(matches!(as_ps.check(&trusted), ProofStatus::Invalid { .. }));
        // ES384
        let es = p384::ecdsa::SigningKey::random(&mut rng);
        let point = es.verifying_key().to_encoded_point(false);
        let es_jwk = json!({"kty": "EC", "crv": "P-384", "kid": "did:web:compliance.example#es384",
            "x": B64.encode(point.x().unwrap()), "y": B64.encode(point.y().unwrap())});
        let es_token = token_with("ES384", "did:web:compliance.example#es384", &payload, |m| {
            use p384::ecdsa::signature::Signer as _;
            let s: p384::ecdsa::Signature = es.sign(m);
            s.to_bytes().to_vec()
        });
        let trusted = parse_trusted(&es_jwk.to_string(), None).unwrap();
        assert!(
            matches!(es_token.check(&trusted), ProofStatus::Verified { ref alg, .. } if alg == "ES384")
        );
        // an algorithm outside the list is named, not guessed
        let mut other = es_token.clone();
        other.header.insert("alg".into(), "ES512".into());
        assert!(
            matches!(other.check(&trusted), ProofStatus::NotChecked { ref reason } if reason.contains("ES512"))
        );
    }

    #[test]
    fn malformed_tokens_and_keys_say_what_is_wrong() {
        assert!(decode("a.b").unwrap_err().to_string().contains("2 parts"));
        assert!(
            decode("!!.e30.e30")
                .unwrap_err()
                .to_string()
                .contains("header")
        );
        assert!(parse_jwk(&json!({"kty": "oct"})).is_err());
        assert!(parse_jwk(&json!({"kty": "EC", "crv": "P-384", "x": "", "y": ""})).is_err());
        assert!(looks_like_jws("eyJ.eyJ.sig"));
        assert!(!looks_like_jws("{\"a\": 1}"));
    }
}
