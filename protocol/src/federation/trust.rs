//! The trust context of one federation: a validated genesis plus the newest revocation list.

use super::{
    Attestation, AttestationError, CredentialBody, CredentialError, FederationId, Genesis,
    GenesisError, MembershipCredential, Revocation, RevocationBody, RevocationError,
    RevocationList, VerifiedCache,
};
use crate::{
    identity::{Domain, PublicKey},
    limits::{MAX_CREDENTIAL_BYTES, MAX_REVOCATION_LIST_BYTES},
    time::UnixMillis,
};

/// A validated genesis, its id, and the revocations in force.
#[derive(Clone, Debug)]
pub struct FederationTrust {
    genesis: Genesis,
    id: FederationId,
    revocations: Option<RevocationBody>,
}

impl FederationTrust {
    /// Trust rooted in `genesis` (validated here).
    pub fn new(genesis: Genesis) -> Result<Self, GenesisError> {
        genesis.validate()?;
        let id = genesis.id()?;
        Ok(Self {
            genesis,
            id,
            revocations: None,
        })
    }

    /// The genesis.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The federation id.
    pub fn id(&self) -> FederationId {
        self.id
    }

    /// Version of the revocation list in force (0 when none).
    pub fn revocation_version(&self) -> u64 {
        self.revocations.as_ref().map_or(0, |r| r.version)
    }

    /// The revocation list in force, if any.
    pub fn revocations(&self) -> Option<&RevocationBody> {
        self.revocations.as_ref()
    }

    /// The revocation of `peer`, if it was revoked.
    pub fn revocation(&self, peer: &PublicKey) -> Option<&Revocation> {
        self.revocations.as_ref().and_then(|r| r.find(peer))
    }

    /// Checks `list` and, when it is valid and newer, puts it in force.
    pub fn apply_revocations(&mut self, list: &RevocationList) -> Result<(), RevocationError> {
        list.body.check_fields()?;
        if list.body.federation != self.id {
            return Err(RevocationError::WrongFederation(list.body.federation));
        }
        let current = self.revocation_version();
        if list.body.version <= current {
            return Err(RevocationError::Rollback {
                current,
                found: list.body.version,
            });
        }
        let auth = &self.genesis.authorities;
        list.verify_threshold(
            "authority",
            Domain::RevocationList,
            MAX_REVOCATION_LIST_BYTES,
            &auth.keys,
            auth.threshold,
        )?;
        self.revocations = Some(list.body.clone());
        Ok(())
    }

    /// Checks a membership credential at time `now`; with `peer`, also that it binds that peer
    /// and that the peer is not revoked.
    pub fn verify_credential<'a>(
        &self,
        cred: &'a MembershipCredential,
        peer: Option<&PublicKey>,
        now: UnixMillis,
    ) -> Result<&'a CredentialBody, CredentialError> {
        self.verify_credential_cached(cred, peer, now, None)
    }

    /// [`Self::verify_credential`], skipping the signature check of a credential `cache` has
    /// seen verified (expiry, binding and revocation are still checked).
    pub fn verify_credential_cached<'a>(
        &self,
        cred: &'a MembershipCredential,
        peer: Option<&PublicKey>,
        now: UnixMillis,
        cache: Option<&VerifiedCache>,
    ) -> Result<&'a CredentialBody, CredentialError> {
        let body = &cred.body;
        body.check_fields()?;
        if body.federation != self.id {
            return Err(CredentialError::WrongFederation {
                expected: self.id,
                found: body.federation,
            });
        }
        let auth = &self.genesis.authorities;
        let verify = || {
            cred.verify_threshold(
                "authority",
                Domain::MembershipCredential,
                MAX_CREDENTIAL_BYTES,
                &auth.keys,
                auth.threshold,
            )
        };
        match cache {
            Some(c) => {
                let h = *blake3::hash(&cred.encode()?).as_bytes();
                if !c.check(&h) {
                    verify()?;
                    c.insert(h);
                }
            }
            None => {
                verify()?;
            }
        }
        if now < body.issued_at {
            return Err(CredentialError::NotYetValid(body.issued_at));
        }
        if now >= body.expires_at {
            return Err(CredentialError::Expired(body.expires_at));
        }
        if let Some(peer) = peer {
            if !body.peers.contains(peer) {
                return Err(CredentialError::PeerNotBound(*peer));
            }
            if let Some(r) = self.revocation(peer) {
                return Err(CredentialError::Revoked {
                    peer: *peer,
                    reason: r.reason.clone(),
                });
            }
        }
        Ok(body)
    }

    /// Checks that an attestation is signed by a certifier of this federation and still valid.
    pub fn verify_attestation(
        &self,
        att: &Attestation,
        now: UnixMillis,
    ) -> Result<(), AttestationError> {
        self.verify_attestation_cached(att, now, None)
    }

    /// [`Self::verify_attestation`], skipping the signature check of an attestation `cache`
    /// has seen verified.
    pub fn verify_attestation_cached(
        &self,
        att: &Attestation,
        now: UnixMillis,
        cache: Option<&VerifiedCache>,
    ) -> Result<(), AttestationError> {
        if att.body.federation != self.id {
            return Err(AttestationError::WrongFederation(att.body.federation));
        }
        if !self.genesis.certifiers.contains(&att.certifier) {
            return Err(AttestationError::UnknownCertifier(att.certifier));
        }
        match cache {
            Some(c) => {
                let h = *blake3::hash(&att.encode()?).as_bytes();
                if !c.check(&h) {
                    att.verify_signature()?;
                    c.insert(h);
                }
            }
            None => att.verify_signature()?,
        }
        if now >= att.body.valid_until {
            return Err(AttestationError::Expired(att.body.valid_until));
        }
        Ok(())
    }
}
