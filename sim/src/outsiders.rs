//! Outsiders (Sybils) trying to join: every attempt is judged by the node's own admission
//! verdict ([`gaiamesh_core::admission::verdict`]) against a genesis made for the run, not by
//! a rule of the simulator's.

use gaiamesh_protocol::{
    federation::{FederationTrust, Genesis, GenesisError, KeySet, Policy},
    identity::Keypair,
    sd::SCHEMA_VERSION,
    time::UnixMillis,
    wire::Admission,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The federation an outsider knocks on.
#[derive(Debug)]
pub(crate) struct Outsiders {
    trust: FederationTrust,
    /// Outsiders' keys: a stream of its own, so Sybils leave every other draw of a run as
    /// it would be without them.
    rng: ChaCha8Rng,
}

impl Outsiders {
    /// A federation with keys drawn from `seed`; `require_membership` as in the scenario.
    pub(crate) fn new(require_membership: bool, seed: u64) -> Result<Self, GenesisError> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut key = || Keypair::from_secret_bytes(&rng.r#gen());
        let genesis = Genesis {
            schema_version: SCHEMA_VERSION,
            name: "simulated federation".into(),
            created_at: UnixMillis(0),
            authorities: KeySet {
                keys: vec![key().public()],
                threshold: 1,
            },
            certifiers: vec![],
            repository: KeySet {
                keys: vec![key().public()],
                threshold: 1,
            },
            bootstrap: vec![],
            policy: Policy::membership(require_membership),
        };
        Ok(Self {
            trust: FederationTrust::new(genesis)?,
            rng,
        })
    }

    /// An outsider with a fresh key and no credential asks to join at `now_ms`: whether the
    /// node's verdict admits it.
    pub(crate) fn attempt(&mut self, now_ms: u64) -> bool {
        let outsider = Keypair::from_secret_bytes(&self.rng.r#gen());
        let msg = Admission { credential: None };
        gaiamesh_core::admission::verdict(&self.trust, &outsider.public(), &msg, UnixMillis(now_ms))
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nodes_verdict_decides() {
        let mut closed = Outsiders::new(true, 1).unwrap();
        assert!(!closed.attempt(1000));
        let mut open = Outsiders::new(false, 1).unwrap();
        assert!(open.attempt(1000));
    }
}
