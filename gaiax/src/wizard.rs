//! `did:web` identifiers that carry their own key: the Gaia-X Lab wizard's.
//!
//! The wizard (`wizard.lab.gaia-x.eu`, which issued most 22.10 participant credentials
//! published as examples) keeps no state: a participant's DID is
//! `did:web:wizard.lab.gaia-x.eu:api:credentials:<KEY>`, where `<KEY>` is the base58
//! (Bitcoin alphabet) encoding of the participant's PEM public key, and the DID document
//! the wizard serves for that path is made from it (one `JsonWebKey2020`, `#JWK2020`). So the
//! key is known offline, as a `did:key`'s is, and proves the same: that the holder of that
//! key issued the credential, not who the holder is.
//!
//! Only hosts known to build their documents from the path are read this way: another
//! host could serve a document naming a different key for the same path.

use rustls_pki_types::{SubjectPublicKeyInfoDer, pem::PemObject as _};

use crate::jwt::{JwtError, PublicJwk};

/// Hosts whose `did:web` documents are made from the last path segment, with the path
/// before it.
pub const KEY_IN_PATH: &[(&str, &[&str])] = &[("wizard.lab.gaia-x.eu", &["api", "credentials"])];

/// Most characters of the encoded key (a 4096-bit RSA key's PEM is about 800 bytes).
const MAX_ENCODED: usize = 2048;

/// The key `did` carries (without fragment), when its host is one of [`KEY_IN_PATH`];
/// `None` for every other DID.
pub fn key_in_did(did: &str) -> Option<Result<PublicJwk, JwtError>> {
    let rest = did.strip_prefix("did:web:")?;
    let mut segments: Vec<&str> = rest.split(':').collect();
    let encoded = segments.pop()?;
    let (host, path) = segments.split_first()?;
    let (_, expected) = KEY_IN_PATH.iter().find(|(h, _)| h == host)?;
    if path != *expected {
        return None;
    }
    Some(decode(did, encoded))
}

fn decode(did: &str, encoded: &str) -> Result<PublicJwk, JwtError> {
    let bad = |why: &str| JwtError::Jwk(format!("{did}: {why}"));
    if encoded.len() > MAX_ENCODED {
        return Err(bad("the key in the DID is too long"));
    }
    let pem = bs58::decode(encoded)
        .into_vec()
        .map_err(|e| bad(&format!("the key in the DID is not base58: {e}")))?;
    let spki = SubjectPublicKeyInfoDer::from_pem_slice(&pem)
        .map_err(|_| bad("the key in the DID is not a PEM public key"))?;
    crate::x509::public_key_of(spki.as_ref()).map_err(|e| bad(&e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn did_for(pem: &str) -> String {
        format!(
            "did:web:wizard.lab.gaia-x.eu:api:credentials:{}",
            bs58::encode(pem.as_bytes()).into_string()
        )
    }

    #[test]
    fn the_wizard_key_is_read_from_the_path_and_nothing_else_is() {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let expected = p256::ecdsa::VerifyingKey::from_sec1_bytes(pair.public_key_raw()).unwrap();
        let did = did_for(&pair.public_key_pem());
        match key_in_did(&did) {
            Some(Ok(PublicJwk::P256(k))) => assert_eq!(k, expected),
            other => panic!("{other:?}"),
        }
        // another host, another path, or not a did:web: not read
        for other in [
            did.replace("wizard.lab.gaia-x.eu", "wizard.example.org"),
            did.replace(":api:credentials:", ":api:"),
            did.replace("did:web:", "did:webvh:"),
            "did:web:wizard.lab.gaia-x.eu".to_owned(),
        ] {
            assert!(key_in_did(&other).is_none(), "{other}");
        }
        // the wizard's path with something that is not a key in it: an error naming the DID
        for (encoded, why) in [
            ("0OIl".to_owned(), "not base58"),
            (bs58::encode(b"hello").into_string(), "not a PEM public key"),
            ("z".repeat(MAX_ENCODED + 1), "too long"),
        ] {
            let did = format!("did:web:wizard.lab.gaia-x.eu:api:credentials:{encoded}");
            let err = key_in_did(&did).unwrap().unwrap_err().to_string();
            assert!(
                err.contains(why) && err.contains("wizard.lab.gaia-x.eu"),
                "{err}"
            );
        }
    }
}
