//! Admission verdicts: whether a peer that connected may join the federation, from the key
//! its PeerId carries and the credential it presented (`/gaiamesh/admission/1`). The daemon
//! asks it for every peer; the simulator asks it for every outsider that tries to join.

use gaiamesh_protocol::{
    federation::{CredentialError, FederationTrust},
    identity::{PublicKey, PublicKeyError},
    time::UnixMillis,
    wire::Admission,
};

/// Why a peer failed admission.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdmissionRefusal {
    /// Its PeerId does not carry an ed25519 key.
    #[error("its PeerId is not an ed25519 key: {0}")]
    PeerId(#[from] PublicKeyError),
    /// Its credential does not verify, does not bind it, expired or was revoked.
    #[error(transparent)]
    Credential(#[from] CredentialError),
    /// It sent none, and the federation requires membership.
    #[error("no membership credential")]
    NoCredential,
    /// A refusal replayed from a recorded trace ([`crate::node::trace`]), with the reason as
    /// it was recorded.
    #[error("{0}")]
    Recorded(String),
}

/// The verdict on `peer` (its key), which presented `msg`, at `now`.
pub fn verdict(
    trust: &FederationTrust,
    peer: &PublicKey,
    msg: &Admission,
    now: UnixMillis,
) -> Result<(), AdmissionRefusal> {
    match &msg.credential {
        Some(c) => {
            trust.verify_credential(c, Some(peer), now)?;
            Ok(())
        }
        None if trust.genesis().policy.require_membership => Err(AdmissionRefusal::NoCredential),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use gaiamesh_protocol::{
        identity::Keypair,
        testing::{NOW, TestFederation},
    };

    use super::*;

    #[test]
    fn members_pass_outsiders_and_copied_credentials_do_not() {
        let fed = TestFederation::new(3, 2, true);
        let member = Keypair::generate();
        let cred = fed.credential(&member, 2);
        let msg = Admission {
            credential: Some(cred.clone()),
        };
        assert!(verdict(&fed.trust, &member.public(), &msg, NOW).is_ok());
        // Someone else presenting the member's credential.
        let copier = Keypair::generate();
        assert!(matches!(
            verdict(&fed.trust, &copier.public(), &msg, NOW),
            Err(AdmissionRefusal::Credential(_))
        ));
        let none = Admission { credential: None };
        assert!(matches!(
            verdict(&fed.trust, &copier.public(), &none, NOW),
            Err(AdmissionRefusal::NoCredential)
        ));
        // An open federation lets a peer without a credential in.
        let open = TestFederation::new(3, 2, false);
        assert!(verdict(&open.trust, &copier.public(), &none, NOW).is_ok());
        // Another federation's member is refused.
        let other = TestFederation::with_seed(9, 3, 2, true);
        let foreign = Admission {
            credential: Some(other.credential(&member, 2)),
        };
        assert!(verdict(&fed.trust, &member.public(), &foreign, NOW).is_err());
    }
}
