//! `did:web` identifiers for an exporting node: where the DID document is published, and
//! the document that names the node key, so credentials signed under a `did:web` issuer
//! can be checked by anyone who fetches it (and offline with `gaiax import
//! --did-document`).

use serde_json::{Value, json};

use crate::jwt;

/// The fragment of the node key's verification method in its DID document.
pub const NODE_KEY_FRAGMENT: &str = "node-key";

/// Why a `did:web` identifier is not usable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DidWebError {
    /// Not `did:web:<host>[:<path>…]`.
    #[error(
        "{0:?} is not a did:web (did:web:<host>[:<path>…], e.g. did:web:provider.example or \
         did:web:provider.example:gaia-x)"
    )]
    NotDidWeb(String),
    /// A host or path segment that cannot be part of a URL.
    #[error("{did:?}: {reason}")]
    Malformed {
        /// The identifier.
        did: String,
        /// What is wrong.
        reason: String,
    },
}

/// The HTTPS URL of the DID document of `did` (the did:web method specification: the
/// host, a `%3A`-encoded port, path segments, then `/.well-known/did.json` without a path
/// or `/did.json` with one).
pub fn document_url(did: &str) -> Result<String, DidWebError> {
    let Some(rest) = did.strip_prefix("did:web:").filter(|r| !r.is_empty()) else {
        return Err(DidWebError::NotDidWeb(did.to_owned()));
    };
    let bad = |reason: &str| DidWebError::Malformed {
        did: did.to_owned(),
        reason: reason.to_owned(),
    };
    if rest.contains(['#', '?', '/']) {
        return Err(bad(
            "a did:web has no '#', '?' or '/'; path segments are separated by ':'",
        ));
    }
    let mut segments = rest.split(':');
    let host = segments.next().unwrap_or_default().replace("%3A", ":");
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    if !host_ok {
        return Err(bad(
            "the host is not a domain name (with an optional %3A port)",
        ));
    }
    let path: Vec<&str> = segments.collect();
    if path.iter().any(|s| s.is_empty() || *s == "." || *s == "..") {
        return Err(bad("an empty, '.' or '..' path segment"));
    }
    Ok(if path.is_empty() {
        format!("https://{host}/.well-known/did.json")
    } else {
        format!("https://{host}/{}/did.json", path.join("/"))
    })
}

/// The DID document of `did` naming the Ed25519 `public` key as `did#node-key`
/// (`JsonWebKey2020`, for assertions and authentication).
pub fn document(did: &str, public: &[u8; 32]) -> Result<Value, DidWebError> {
    document_url(did)?;
    let method = format!("{did}#{NODE_KEY_FRAGMENT}");
    Ok(json!({
        "@context": [
            "https://www.w3.org/ns/did/v1",
            "https://w3id.org/security/suites/jws-2020/v1",
        ],
        "id": did,
        "verificationMethod": [{
            "id": method,
            "type": "JsonWebKey2020",
            "controller": did,
            "publicKeyJwk": jwt::ed25519_jwk(public),
        }],
        "assertionMethod": [method],
        "authentication": [method],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_the_did_web_method() {
        assert_eq!(
            document_url("did:web:provider.example").unwrap(),
            "https://provider.example/.well-known/did.json"
        );
        assert_eq!(
            document_url("did:web:provider.example%3A8443:gaia-x:node-1").unwrap(),
            "https://provider.example:8443/gaia-x/node-1/did.json"
        );
        for bad in [
            "did:key:z6Mk",
            "did:web:",
            "did:web:a.example/x",
            "did:web:a.example::x",
            "did:web:a.example:..",
            "did:web:exa mple.org",
        ] {
            assert!(document_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_document_names_the_key_under_the_did_and_its_keys_read_back_bound_to_it() {
        let doc = document("did:web:provider.example", &[9u8; 32]).unwrap();
        let keys = jwt::did_document_keys(&doc.to_string(), None).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].controller(), "did:web:provider.example");
        assert_eq!(
            doc["assertionMethod"][0],
            "did:web:provider.example#node-key"
        );
    }
}
