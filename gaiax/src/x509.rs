//! Certificate chains of verification keys: a JWK's `x5c` (base64 DER certificates, the
//! key's own first) or `x5u` (the URL of a PEM chain, read from the caller's local copy).
//!
//! Gaia-X binds an issuer's key to a legal entity through an X.509 chain that ends at a
//! trust anchor the federation accepts (an eIDAS or EV TLS certificate authority). With
//! `--trust-anchor FILE`, a DID document's key counts only when its chain verifies up to
//! one of the given anchors at the instant checked (signatures, validity periods, CA
//! constraints: [`webpki`]) and the first certificate holds the very key of the JWK. Any
//! extended key usage is accepted: Gaia-X does not prescribe one (issuers use TLS server
//! certificates as well as sealing certificates).

use std::collections::BTreeMap;

use base64::{Engine as _, engine::general_purpose::STANDARD};
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime, pem::PemObject as _};
use serde_json::Value;
use sha2::Digest as _;
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter};

use crate::jwt::{JwtError, PublicJwk};

/// Most certificates read from one chain (`x5c` or an `x5u` copy).
const MAX_CHAIN: usize = 10;

/// The certificate signature algorithms accepted in a chain.
static ALGORITHMS: &[&dyn rustls_pki_types::SignatureVerificationAlgorithm] = &[
    webpki::ring::ECDSA_P256_SHA256,
    webpki::ring::ECDSA_P256_SHA384,
    webpki::ring::ECDSA_P384_SHA256,
    webpki::ring::ECDSA_P384_SHA384,
    webpki::ring::ED25519,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512,
    webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
];

/// The trust anchors a chain must end at, the local copies of `x5u` chains, and the instant
/// the certificates must be valid at.
#[derive(Debug)]
pub struct ChainPolicy {
    anchors: Vec<Anchor>,
    x5u: BTreeMap<String, Vec<CertificateDer<'static>>>,
    at: UnixTime,
}

#[derive(Debug)]
struct Anchor {
    der: CertificateDer<'static>,
    /// `<file> #<n> (sha256:<first 16 hex digits>)`, for reports.
    name: String,
}

/// Any extended key usage, or none.
struct AnyUsage;

impl ExtendedKeyUsageValidator for AnyUsage {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        // a malformed extension is still refused
        for purpose in iter {
            purpose?;
        }
        Ok(())
    }
}

fn pem_chain(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, JwtError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| JwtError::Jwk(format!("{what}: not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(JwtError::Jwk(format!("{what}: no PEM CERTIFICATE in it")));
    }
    if certs.len() > MAX_CHAIN {
        return Err(JwtError::Jwk(format!(
            "{what}: {} certificates, at most {MAX_CHAIN}",
            certs.len()
        )));
    }
    Ok(certs)
}

impl ChainPolicy {
    /// Chains checked at `at` (seconds since the Unix epoch), against no anchor yet.
    pub fn new(at_unix: u64) -> Self {
        Self {
            anchors: Vec::new(),
            x5u: BTreeMap::new(),
            at: UnixTime::since_unix_epoch(std::time::Duration::from_secs(at_unix)),
        }
    }

    /// Adds every certificate of a PEM file as a trust anchor (`file` names it in reports).
    pub fn add_anchors(&mut self, file: &str, pem: &[u8]) -> Result<(), JwtError> {
        for (i, der) in pem_chain(pem, file)?.into_iter().enumerate() {
            // it must be usable as an anchor (a certificate webpki can read)
            webpki::anchor_from_trusted_cert(&der).map_err(|e| {
                JwtError::Jwk(format!("{file} #{}: not a usable certificate: {e}", i + 1))
            })?;
            let fingerprint = hex::encode(sha2::Sha256::digest(der.as_ref()));
            self.anchors.push(Anchor {
                name: format!("{file} #{} (sha256:{})", i + 1, &fingerprint[..16]),
                der,
            });
        }
        Ok(())
    }

    /// The local copy of the PEM chain an `x5u` URL serves.
    pub fn add_x5u(&mut self, url: &str, pem: &[u8]) -> Result<(), JwtError> {
        let chain = pem_chain(pem, &format!("--x5u {url}"))?;
        self.x5u.insert(url.to_owned(), chain);
        Ok(())
    }

    /// Whether any anchor is given (without one, chains are not required).
    pub fn has_anchors(&self) -> bool {
        !self.anchors.is_empty()
    }

    /// Checks the chain of `jwk` (its `x5c`, else its `x5u`) up to an anchor, and that its
    /// first certificate holds `key`: the anchor's name, or why the key does not count.
    pub fn check(&self, jwk: &Value, key: &PublicJwk) -> Result<String, JwtError> {
        let chain = self.chain_of(jwk)?;
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Err(JwtError::Jwk("the certificate chain is empty".into()));
        };
        let ee = EndEntityCert::try_from(leaf)
            .map_err(|e| JwtError::Jwk(format!("the key's certificate is unreadable: {e}")))?;
        let anchors: Vec<TrustAnchor<'_>> = self
            .anchors
            .iter()
            .filter_map(|a| webpki::anchor_from_trusted_cert(&a.der).ok())
            .collect();
        let path = ee
            .verify_for_usage(
                ALGORITHMS,
                &anchors,
                intermediates,
                self.at,
                AnyUsage,
                None,
                None,
            )
            .map_err(|e| JwtError::Jwk(describe(&e)))?;
        let certified = public_key_of(&ee.subject_public_key_info())?;
        if !same_key(&certified, key) {
            return Err(JwtError::Jwk(
                "the certificate's key is not the JWK's key (x5c/x5u certifies another key)".into(),
            ));
        }
        let anchor = path.anchor();
        let name = self
            .anchors
            .iter()
            .find(|a| {
                webpki::anchor_from_trusted_cert(&a.der).is_ok_and(|t| {
                    t.subject == anchor.subject
                        && t.subject_public_key_info == anchor.subject_public_key_info
                })
            })
            .map_or_else(|| "a given trust anchor".to_owned(), |a| a.name.clone());
        Ok(name)
    }

    fn chain_of(&self, jwk: &Value) -> Result<Vec<CertificateDer<'static>>, JwtError> {
        if let Some(x5c) = jwk.get("x5c") {
            let list = x5c
                .as_array()
                .ok_or_else(|| JwtError::Jwk("x5c is not a list of certificates".into()))?;
            if list.is_empty() || list.len() > MAX_CHAIN {
                return Err(JwtError::Jwk(format!(
                    "x5c has {} certificates (1 to {MAX_CHAIN})",
                    list.len()
                )));
            }
            return list
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let text = c
                        .as_str()
                        .ok_or_else(|| JwtError::Jwk(format!("x5c[{i}] is not a string")))?;
                    // base64 (not base64url) DER, RFC 7517 §4.7
                    STANDARD
                        .decode(text.trim())
                        .map(CertificateDer::from)
                        .map_err(|e| JwtError::Jwk(format!("x5c[{i}] is not base64: {e}")))
                })
                .collect();
        }
        if let Some(url) = jwk.get("x5u").and_then(Value::as_str) {
            return self.x5u.get(url).cloned().ok_or_else(|| {
                JwtError::Jwk(format!(
                    "its chain {url} (x5u) is not available offline: pass a copy with --x5u {url}=FILE"
                ))
            });
        }
        Err(JwtError::Jwk(
            "it has no certificate chain (x5c or x5u), and trust anchors are required".into(),
        ))
    }
}

/// Why a chain failed, in words.
fn describe(e: &webpki::Error) -> String {
    match e {
        webpki::Error::UnknownIssuer => {
            "its certificate chain does not lead to a given trust anchor".into()
        }
        webpki::Error::CertExpired { .. } => {
            "a certificate of its chain had expired at the instant checked".into()
        }
        webpki::Error::CertNotValidYet { .. } => {
            "a certificate of its chain was not yet valid at the instant checked".into()
        }
        webpki::Error::InvalidSignatureForPublicKey => {
            "a certificate's signature in its chain does not verify".into()
        }
        webpki::Error::CaUsedAsEndEntity => {
            "its certificate is a CA certificate, not the key's own".into()
        }
        webpki::Error::EndEntityUsedAsCa => {
            "a certificate of its chain signs others without being a CA".into()
        }
        other => format!("its certificate chain is refused: {other:?}"),
    }
}

/// The key a DER SubjectPublicKeyInfo holds (a certificate's, or a PEM public key's).
pub(crate) fn public_key_of(spki: &[u8]) -> Result<PublicJwk, JwtError> {
    use p256::pkcs8::DecodePublicKey as _;
    // Ed25519: SEQUENCE { SEQUENCE { OID 1.3.101.112 } BIT STRING (32 bytes) }
    const ED25519_PREFIX: [u8; 12] = [
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    if let Some(raw) = spki.strip_prefix(&ED25519_PREFIX[..])
        && let Ok(k) = <[u8; 32]>::try_from(raw)
    {
        return Ok(PublicJwk::Ed25519(k));
    }
    if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_der(spki) {
        return Ok(PublicJwk::P256(k));
    }
    if let Ok(k) = p384::ecdsa::VerifyingKey::from_public_key_der(spki) {
        return Ok(PublicJwk::P384(k));
    }
    if let Ok(k) = rsa::RsaPublicKey::from_public_key_der(spki) {
        return Ok(PublicJwk::Rsa(k));
    }
    Err(JwtError::Jwk(
        "a key of a kind not supported (Ed25519, P-256, P-384, RSA)".into(),
    ))
}

fn same_key(a: &PublicJwk, b: &PublicJwk) -> bool {
    match (a, b) {
        (PublicJwk::Ed25519(x), PublicJwk::Ed25519(y)) => x == y,
        (PublicJwk::P256(x), PublicJwk::P256(y)) => x == y,
        (PublicJwk::P384(x), PublicJwk::P384(y)) => x == y,
        (PublicJwk::Rsa(x), PublicJwk::Rsa(y)) => x == y,
        _ => false,
    }
}
