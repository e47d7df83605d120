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
            policy: Policy::membership(require_membership),
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

    /// A credential admitting the participant of `doc` for `node`, valid around `now`.
    pub fn credential_for(
        &self,
        node: &Keypair,
        doc: &SdDocument,
        now: UnixMillis,
    ) -> MembershipCredential {
        let mut cred = self.credential(node, 0);
        cred.body.issued_at = UnixMillis(now.0.saturating_sub(DAY_MS));
        cred.body.expires_at = now.plus_ms(365 * DAY_MS);
        cred.body.participant = MemberParticipant {
            legal_name: doc.participant.legal_name.clone(),
            registration: doc.participant.registration[0].clone(),
            headquarters_country: doc.participant.headquarters.country.clone(),
        };
        let keys: Vec<&Keypair> = self.authorities.iter().collect();
        MembershipCredential::issue(cred.body, &keys).unwrap()
    }

    /// `doc` signed by `node` at `seq`, with a matching credential, valid at [`NOW`].
    pub fn sign_document(
        &self,
        node: &Keypair,
        seq: u64,
        doc: SdDocument,
    ) -> SignedSelfDescription {
        self.sign_document_at(node, seq, doc, NOW)
    }

    /// `doc` signed by `node` at `seq`, issued at `now` (for tests against real processes).
    pub fn sign_document_at(
        &self,
        node: &Keypair,
        seq: u64,
        doc: SdDocument,
        now: UnixMillis,
    ) -> SignedSelfDescription {
        let membership = Some(self.credential_for(node, &doc, now));
        let base = self.sd(node, seq);
        SelfDescription {
            document: doc,
            membership,
            attestations: vec![],
            issued_at: now,
            expires_at: now.plus_ms(7 * DAY_MS),
            ..base
        }
        .sign(node)
        .unwrap()
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

/// The example self-descriptions shipped in `config/examples/sd`, in name order.
pub fn example_documents() -> Vec<SdDocument> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/examples/sd");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            SdDocument::parse(&std::fs::read_to_string(p).unwrap(), DocumentFormat::Toml).unwrap()
        })
        .collect()
}

/// A deterministic variation of the examples for large generated catalogues: example
/// `i % n`, with the country, kind, prices and energy figures varied by `i`.
pub fn generated_document(examples: &[SdDocument], i: usize) -> SdDocument {
    const COUNTRIES: [&str; 12] = [
        "DE", "FR", "NL", "SE", "FI", "PL", "AT", "ES", "IT", "IE", "BE", "LU",
    ];
    let mut doc = examples[i % examples.len()].clone();
    let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let country = COUNTRIES[(h >> 7) as usize % COUNTRIES.len()];
    doc.participant.legal_name = format!("{} #{i}", doc.participant.legal_name);
    doc.node.location.country = country.into();
    // Ten synthetic subdivisions per country (ISO 3166-2 syntax), for selective queries.
    doc.node.location.subdivision = Some(format!("{country}-{}", (h >> 29) % 10 + 1));
    if let Some(e) = doc.node.energy.as_mut() {
        e.renewable_pct = Some(((h >> 13) % 101) as u8);
    }
    for (j, s) in doc.services.iter_mut().enumerate() {
        s.data_location = vec![country.into()];
        s.processing_location = vec![country.into()];
        if let Some(p) = s.price.as_mut() {
            let cents = ((h >> (17 + j)) % 5000) as f64 / 100_000.0;
            p.amount = format!("{cents:.5}");
        }
    }
    doc
}

/// The key of generated node `i` (deterministic; [`signed_catalogue`]'s subjects).
pub fn generated_key(i: usize) -> Keypair {
    let mut seed = [7u8; 32];
    seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
    Keypair::from_secret_bytes(&seed)
}

/// A generated catalogue for benchmarks: `n` self-descriptions ([`generated_document`]),
/// each signed by [`generated_key`]`(i)` at `seq` with its membership credential, valid at
/// [`NOW`]. The same `i` and another `seq` re-publish the same subject.
pub fn signed_catalogue(f: &TestFederation, n: usize, seq: u64) -> Vec<SignedSelfDescription> {
    let examples = example_documents();
    (0..n)
        .map(|i| f.sign_document(&generated_key(i), seq, generated_document(&examples, i)))
        .collect()
}

/// A genesis whose repository root keys are `n` deterministic keys with threshold `k`, and
/// those keys.
pub fn genesis_with_repository_keys(n: u8, k: u8) -> (Genesis, Vec<Keypair>) {
    let keys: Vec<Keypair> = (0..n).map(|i| key(220 + i)).collect();
    let mut genesis = TestFederation::new(1, 1, true).trust.genesis().clone();
    genesis.repository = KeySet {
        keys: keys.iter().map(Keypair::public).collect(),
        threshold: k,
    };
    (genesis, keys)
}
