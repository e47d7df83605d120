//! Who signed what in a directory entry, checked again when asked (`GET
//! /api/v1/directory/{peer}`, the dashboard's provider page): the subject's signature, the
//! membership credential and its authorities, each attestation and its certifier.
//!
//! The catalogue checked all of them when it accepted the record; checking again at the
//! moment of the question also shows what has expired or been revoked since.

use gaiamesh_directory::entry::Entry;
use gaiamesh_protocol::{federation::FederationTrust, time::UnixMillis};
use serde::{Deserialize, Serialize};

/// The outcome of one check: `ok`, or why not.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub(crate) struct Check {
    pub(crate) ok: bool,
    /// `valid`, or the reason it is not.
    pub(crate) detail: String,
}

impl Check {
    fn of<T, E: std::fmt::Display>(r: Result<T, E>) -> Self {
        match r {
            Ok(_) => Self {
                ok: true,
                detail: "valid".into(),
            },
            Err(e) => Self {
                ok: false,
                detail: e.to_string(),
            },
        }
    }
}

/// The proofs of one entry.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub(crate) struct Proofs {
    /// BLAKE3 of the record's canonical encoding, hex.
    pub(crate) hash: String,
    pub(crate) issued_at_ms: u64,
    pub(crate) expires_at_ms: u64,
    /// The subject's signature over the record (and its validity window).
    pub(crate) signature: Check,
    /// The membership credential, when the record carries one.
    pub(crate) membership: Option<Membership>,
    pub(crate) attestations: Vec<AttestationView>,
}

/// A membership credential: whom it admits and which authorities signed it.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub(crate) struct Membership {
    pub(crate) check: Check,
    pub(crate) legal_name: String,
    pub(crate) roles: Vec<String>,
    pub(crate) peers: Vec<String>,
    pub(crate) issued_at_ms: u64,
    pub(crate) expires_at_ms: u64,
    /// The keys whose signatures it carries (the genesis names the authorities).
    pub(crate) signers: Vec<String>,
}

/// An attestation backing a certification.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub(crate) struct AttestationView {
    pub(crate) check: Check,
    /// The service it covers; `None`: every service of the node.
    pub(crate) service: Option<String>,
    pub(crate) scheme: String,
    pub(crate) scope: Option<String>,
    pub(crate) certifier: String,
    pub(crate) valid_until_ms: u64,
    /// Whether the catalogue counted it when it accepted the record.
    pub(crate) counted: bool,
}

/// Checks `entry`'s proofs against `trust` at `now`.
pub(crate) fn of(entry: &Entry, trust: &FederationTrust, now: UnixMillis) -> Proofs {
    let sd = &entry.record.sd;
    let membership = sd.membership.as_ref().map(|cred| {
        let body = &cred.body;
        Membership {
            check: Check::of(trust.verify_credential(cred, Some(&sd.subject), now)),
            legal_name: body.participant.legal_name.clone(),
            roles: body.roles.clone(),
            peers: body.peers.iter().map(ToString::to_string).collect(),
            issued_at_ms: body.issued_at.0,
            expires_at_ms: body.expires_at.0,
            signers: cred.signatures.iter().map(|s| s.key.to_string()).collect(),
        }
    });
    let attestations = sd
        .attestations
        .iter()
        .map(|a| {
            let service = a.body.service.clone();
            let counted = entry.attested.iter().any(|(svc, scheme)| {
                *scheme == a.body.scheme && service.as_ref().is_none_or(|s| s == svc)
            });
            AttestationView {
                check: Check::of(trust.verify_attestation(a, now)),
                service,
                scheme: a.body.scheme.clone(),
                scope: a.body.scope.clone(),
                certifier: a.certifier.to_string(),
                valid_until_ms: a.body.valid_until.0,
                counted,
            }
        })
        .collect();
    Proofs {
        hash: hex::encode(entry.hash),
        issued_at_ms: sd.issued_at.0,
        expires_at_ms: sd.expires_at.0,
        signature: Check::of(entry.record.verify(now)),
        membership,
        attestations,
    }
}

#[cfg(test)]
mod tests {
    use gaiamesh_protocol::testing::{NOW, TestFederation, key};

    use super::*;

    #[test]
    fn every_proof_is_checked_again_and_a_tampered_record_fails() {
        let fed = TestFederation::new(3, 2, true);
        let node = key(7);
        let mut sd = fed.sd(&node, 1);
        sd.membership = Some(fed.credential(&node, 2));
        let attested = vec![("s3-eu-central".to_owned(), "C5".to_owned())];
        let mut e = Entry::new(sd.sign(&node).unwrap(), NOW, None, attested).unwrap();
        let p = of(&e, &fed.trust, NOW);
        assert!(p.signature.ok, "{}", p.signature.detail);
        assert_eq!(p.hash, hex::encode(e.hash));
        let m = p.membership.unwrap();
        assert!(m.check.ok, "{}", m.check.detail);
        assert_eq!(m.signers.len(), 2, "two of three authorities signed");
        assert_eq!(m.peers, vec![node.public().to_string()]);
        assert_eq!(p.attestations.len(), 1);
        assert!(p.attestations[0].check.ok);
        assert!(p.attestations[0].counted);
        assert_eq!(
            p.attestations[0].certifier,
            fed.certifier.public().to_string()
        );

        e.record.sd.document.participant.legal_name.push('X');
        let p = of(&e, &fed.trust, NOW);
        assert!(!p.signature.ok);
        assert!(
            p.signature.detail.contains("signature"),
            "{}",
            p.signature.detail
        );

        e.record.sd.document.participant.legal_name.pop();
        let later = UnixMillis(e.record.sd.expires_at.0 + 1);
        let p = of(&e, &fed.trust, later);
        assert!(!p.signature.ok);
        assert!(
            p.signature.detail.contains("expire"),
            "{}",
            p.signature.detail
        );
    }

    #[test]
    fn a_credential_of_too_few_authorities_is_shown_invalid() {
        let fed = TestFederation::new(3, 2, true);
        let node = key(8);
        let mut sd = fed.sd(&node, 1);
        sd.membership = Some(fed.credential(&node, 1));
        let e = Entry::new(sd.sign(&node).unwrap(), NOW, None, Vec::new()).unwrap();
        let p = of(&e, &fed.trust, NOW);
        let m = p.membership.unwrap();
        assert!(!m.check.ok);
        assert!(m.check.detail.contains("required"), "{}", m.check.detail);
        assert!(!p.attestations[0].counted, "not counted at acceptance");
    }
}
