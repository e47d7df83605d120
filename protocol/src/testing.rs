//! Fixtures for tests in this and other crates (feature `test-utils`): a federation with
//! deterministic keys, a valid document, admitted members and signed self-descriptions.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::{
    federation::{
        Attestation, AttestationBody, CredentialBody, FederationTrust, Genesis, KeySet,
        MemberParticipant, MembershipCredential, Policy,
    },
    identity::Keypair,
    sd::{
        DocumentFormat, Registration, RegistrationKind, SCHEMA_VERSION, SdDocument,
        SelfDescription, SignedSelfDescription,
    },
    time::UnixMillis,
};

/// 2026-11-25T08:00:00Z, the "now" of fixtures.
pub const NOW: UnixMillis = UnixMillis(1_795_593_600_000);
pub const DAY_MS: u64 = 24 * 3600 * 1000;

/// A deterministic key from a seed byte.
pub fn key(seed: u8) -> Keypair {
    Keypair::from_secret_bytes(&[seed; 32])
}

/// A federation with `n` authorities (threshold `k`) and one certifier.
#[derive(Debug)]
pub struct TestFederation {
    pub authorities: Vec<Keypair>,
    pub certifier: Keypair,
    pub trust: FederationTrust,
}

impl TestFederation {
    pub fn new(n: u8, k: u8, require_membership: bool) -> Self {
        Self::with_seed(0, n, k, require_membership)
    }

    /// Another federation: distinct keys for every distinct `seed`.
    pub fn with_seed(seed: u8, n: u8, k: u8, require_membership: bool) -> Self {
        let fkey = |role: u8, i: u8| {
            let mut b = [seed; 32];
            b[0] = role;
            b[1] = i;
            Keypair::from_secret_bytes(&b)
        };
        let authorities: Vec<_> = (0..n).map(|i| fkey(1, i)).collect();
        let certifier = fkey(2, 0);
        let genesis = Genesis {
            schema_version: SCHEMA_VERSION,
            name: "test federation".into(),
            created_at: NOW,
            authorities: KeySet {
                keys: authorities.iter().map(Keypair::public).collect(),
                threshold: k,
            },
            certifiers: vec![certifier.public()],
            repository: KeySet {
                keys: vec![key(210).public()],
                threshold: 1,
            },
            bootstrap: vec![],
            policy: Policy {
                require_membership,
                allowed_jurisdictions: vec![],
                psk: None,
            },
        };
        let trust = FederationTrust::new(genesis).unwrap();
        Self {
            authorities,
            certifier,
            trust,
        }
    }

    /// A credential for `node` signed by the first `signers` authorities.
    pub fn credential(&self, node: &Keypair, signers: usize) -> MembershipCredential {
        let body = CredentialBody {
            schema_version: SCHEMA_VERSION,
            federation: self.trust.id(),
            participant: MemberParticipant {
                legal_name: "Nordwolke GmbH".into(),
                registration: Registration {
                    kind: RegistrationKind::VatId,
                    value: "DE123456789".into(),
                },
                headquarters_country: "DE".into(),
            },
            peers: vec![node.public()],
            roles: vec!["provider".into()],
            issued_at: UnixMillis(NOW.0 - DAY_MS),
            expires_at: NOW.plus_ms(365 * DAY_MS),
        };
        let keys: Vec<&Keypair> = self.authorities.iter().take(signers).collect();
        MembershipCredential::issue(body, &keys).unwrap()
    }

    /// An attestation of `scheme` for every service of `node`.
    pub fn attestation(&self, node: &Keypair, scheme: &str) -> Attestation {
        let body = AttestationBody {
            schema_version: SCHEMA_VERSION,
            federation: self.trust.id(),
            subject: node.public(),
            service: None,
            scheme: scheme.into(),
            scope: None,
            issued_at: UnixMillis(NOW.0 - DAY_MS),
            valid_until: NOW.plus_ms(365 * DAY_MS),
        };
        Attestation::sign(body, &self.certifier).unwrap()
    }

    /// A self-description of `node` with a full credential, valid at [`NOW`].
    pub fn sd(&self, node: &Keypair, seq: u64) -> SelfDescription {
        SelfDescription {
            schema_version: SCHEMA_VERSION,
            subject: node.public(),
            federation: self.trust.id(),
            seq,
            issued_at: NOW,
            expires_at: NOW.plus_ms(7 * DAY_MS),
            document: document(),
            membership: Some(self.credential(node, self.authorities.len())),
            attestations: vec![self.attestation(node, "C5")],
        }
    }

    pub fn signed_sd(&self, node: &Keypair, seq: u64) -> SignedSelfDescription {
        self.sd(node, seq).sign(node).unwrap()
    }
}

/// The document of DESIGN §5.
pub const DOCUMENT_TOML: &str = r#"
[participant]
legal_name = "Nordwolke GmbH"
registration = [{ kind = "vatID", value = "DE123456789" }]
headquarters = { country = "DE", subdivision = "DE-BY" }

[node]
kind = "public_cloud"
location = { country = "DE", subdivision = "DE-BY", city = "Nürnberg" }
energy = { pue = 1.2, renewable_pct = 100, heat_reuse_pct = 30 }

[[services]]
id = "s3-eu-central"
kind = "storage.object"
data_location = ["DE"]
processing_location = ["DE"]
certifications = [{ scheme = "C5", scope = "basic+additional" }, { scheme = "ISO27001" }]
protection_level = "substantial"
consumption = "on_demand"
price = { currency = "EUR", amount = "0.018", unit = "GB-month" }
"#;

pub fn document() -> SdDocument {
    SdDocument::parse(DOCUMENT_TOML, DocumentFormat::Toml).unwrap()
}
