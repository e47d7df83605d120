//! `GET /api/v1/federation`: the genesis this node trusts and the revocations in force, as
//! the dashboard's federation page shows them. The pre-shared key is never shown, only
//! whether there is one.

use gaiamesh_protocol::federation::{FederationTrust, KeySet};
use serde::Serialize;

/// The federation as this node knows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct FederationView {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) created_at_ms: u64,
    pub(crate) authorities: KeysView,
    pub(crate) certifiers: Vec<String>,
    pub(crate) repository: KeysView,
    pub(crate) bootstrap: Vec<String>,
    pub(crate) require_membership: bool,
    pub(crate) allowed_jurisdictions: Vec<String>,
    /// Whether the TCP transport needs the federation's pre-shared key.
    pub(crate) private_network: bool,
    /// Version of the revocation list in force (0: none).
    pub(crate) revocation_version: u64,
    pub(crate) revoked: Vec<RevokedView>,
}

/// A key set and its threshold.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct KeysView {
    pub(crate) keys: Vec<String>,
    pub(crate) threshold: u8,
}

impl From<&KeySet> for KeysView {
    fn from(k: &KeySet) -> Self {
        Self {
            keys: k.keys.iter().map(ToString::to_string).collect(),
            threshold: k.threshold,
        }
    }
}

/// One revoked peer.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RevokedView {
    pub(crate) peer: String,
    pub(crate) reason: String,
    pub(crate) revoked_at_ms: u64,
}

/// The view of `trust`.
pub(crate) fn view(trust: &FederationTrust) -> FederationView {
    let g = trust.genesis();
    FederationView {
        id: trust.id().to_string(),
        name: g.name.clone(),
        created_at_ms: g.created_at.0,
        authorities: (&g.authorities).into(),
        certifiers: g.certifiers.iter().map(ToString::to_string).collect(),
        repository: (&g.repository).into(),
        bootstrap: g.bootstrap.clone(),
        require_membership: g.policy.require_membership,
        allowed_jurisdictions: g.policy.allowed_jurisdictions.clone(),
        private_network: g.policy.psk.is_some(),
        revocation_version: trust.revocation_version(),
        revoked: trust
            .revocations()
            .map(|r| {
                r.revoked
                    .iter()
                    .map(|r| RevokedView {
                        peer: r.peer.to_string(),
                        reason: r.reason.clone(),
                        revoked_at_ms: r.revoked_at.0,
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use gaiamesh_protocol::testing::TestFederation;

    use super::*;

    #[test]
    fn the_view_names_the_keys_and_never_the_psk() {
        let mut fed = TestFederation::new(3, 2, true);
        let mut g = fed.trust.genesis().clone();
        g.policy.psk = Some("ab".repeat(32));
        fed.trust = FederationTrust::new(g).unwrap();
        let v = view(&fed.trust);
        assert_eq!(v.authorities.keys.len(), 3);
        assert_eq!(v.authorities.threshold, 2);
        assert_eq!(v.certifiers, vec![fed.certifier.public().to_string()]);
        assert!(v.private_network);
        assert_eq!(v.revocation_version, 0);
        let json = serde_json::to_string(&v).unwrap();
        assert!(!json.contains(&"ab".repeat(32)), "the PSK is not shown");
    }
}
