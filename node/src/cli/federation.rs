//! `gaiamesh federation {init,admit,revoke,attest}`.

use std::{fs, path::PathBuf, time::Duration};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use gaiamesh_protocol::{
    federation::{
        Attestation, AttestationBody, CredentialBody, Genesis, KeySet, MemberParticipant,
        MembershipCredential, Policy, Revocation, RevocationBody, RevocationList,
    },
    identity::{Keypair, PublicKey},
    sd::{DocumentFormat, Registration, SCHEMA_VERSION, SdDocument},
};
use serde::{Deserialize, Serialize};

use super::{duration_ms, parse_duration, print_json};
use crate::{datadir, federation_dir::FederationDir, keystore, now};

/// Federation commands.
#[derive(Debug, Subcommand)]
pub enum FederationCommand {
    /// Create a federation: authority, certifier and repository keys and genesis.toml.
    Init(InitArgs),
    /// Issue a membership credential binding a participant to node PeerIds.
    Admit(AdmitArgs),
    /// Revoke a member: issues the next version of revocations.toml.
    Revoke(RevokeArgs),
    /// Sign an attestation that a node holds a certification (as the federation's certifier).
    Attest(AttestArgs),
}

/// Arguments of `federation init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Human name of the federation.
    #[arg(long)]
    name: String,
    /// Directory to create for the genesis and the keys.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Number of authority keys.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=32))]
    authorities: u8,
    /// How many authorities must sign a credential or revocation.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=32))]
    threshold: u8,
    /// Let nodes without a membership credential join (not recommended).
    #[arg(long)]
    open: bool,
    /// Allowed jurisdictions (country codes or EU); repeatable. Default: anywhere.
    #[arg(long = "jurisdiction", value_name = "CODE")]
    jurisdictions: Vec<String>,
    /// Generate a pre-shared key: TCP connections then need it (libp2p pnet), so the mesh's
    /// TCP port does not even complete a handshake with outsiders. QUIC is still guarded by
    /// admission only. The key is in the genesis: hand it to members only.
    #[arg(long)]
    pub psk: bool,
    /// Bootstrap multiaddrs; repeatable.
    #[arg(long = "bootstrap", value_name = "MULTIADDR")]
    bootstrap: Vec<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `federation admit`.
#[derive(Debug, clap::Args)]
pub struct AdmitArgs {
    /// The federation directory (from `federation init`).
    #[arg(long, value_name = "DIR")]
    federation: PathBuf,
    /// PeerId of a node the participant operates; repeatable.
    #[arg(long = "peer", value_name = "PEER_ID", required = true)]
    peers: Vec<PublicKey>,
    /// The participant: a TOML file with legal_name, registration and headquarters_country,
    /// or a self-description document (its [participant] section is used).
    #[arg(long, value_name = "FILE")]
    participant: PathBuf,
    /// Roles granted; repeatable.
    #[arg(long = "role", value_name = "ROLE", default_values_t = ["provider".to_owned()])]
    roles: Vec<String>,
    /// How long the credential is valid.
    #[arg(long, default_value = "365d", value_parser = parse_duration)]
    valid_for: Duration,
    /// Where to write the credential.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

/// Arguments of `federation revoke`.
#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    /// The federation directory.
    #[arg(long, value_name = "DIR")]
    federation: PathBuf,
    /// PeerId to revoke; repeatable.
    #[arg(long = "peer", value_name = "PEER_ID", required = true)]
    peers: Vec<PublicKey>,
    /// Why (recorded in the list).
    #[arg(long, default_value = "revoked by the federation")]
    reason: String,
}

/// Arguments of `federation attest`.
#[derive(Debug, clap::Args)]
pub struct AttestArgs {
    /// The federation directory.
    #[arg(long, value_name = "DIR")]
    federation: PathBuf,
    /// The node whose operator holds the certification.
    #[arg(long, value_name = "PEER_ID")]
    peer: PublicKey,
    /// Scheme, e.g. C5, ISO27001, SecNumCloud.
    #[arg(long)]
    scheme: String,
    /// Restrict to one service id (default: every service of the node).
    #[arg(long)]
    service: Option<String>,
    /// Scope as on the certificate.
    #[arg(long)]
    scope: Option<String>,
    /// How long the attestation is valid.
    #[arg(long, default_value = "365d", value_parser = parse_duration)]
    valid_for: Duration,
    /// Where to write the attestation (binary).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

pub(super) fn run(cmd: FederationCommand) -> Result<()> {
    match cmd {
        FederationCommand::Init(a) => init(a),
        FederationCommand::Admit(a) => admit(a),
        FederationCommand::Revoke(a) => revoke(a),
        FederationCommand::Attest(a) => attest(a),
    }
}

#[derive(Serialize)]
struct InitOutput {
    federation_id: String,
    genesis: PathBuf,
    authorities: Vec<String>,
    threshold: u8,
}

fn init(a: InitArgs) -> Result<()> {
    if a.threshold > a.authorities {
        bail!(
            "--threshold {} is larger than --authorities {}",
            a.threshold,
            a.authorities
        );
    }
    let dir = FederationDir::new(&a.out);
    if dir.genesis_path().exists() {
        bail!(
            "{} exists already; refusing to overwrite a federation",
            dir.genesis_path().display()
        );
    }
    fs::create_dir_all(dir.root())
        .with_context(|| format!("cannot create {}", dir.root().display()))?;
    dir.create_key_dir()?;
    let generate = |path: PathBuf| -> Result<PublicKey> {
        let k = Keypair::generate();
        keystore::write_new(&path, &k)?;
        Ok(k.public())
    };
    let n = usize::from(a.authorities);
    let authorities = (0..n)
        .map(|i| generate(dir.authority_key_path(i)))
        .collect::<Result<Vec<_>>>()?;
    let repository = (0..n)
        .map(|i| generate(dir.repository_key_path(i)))
        .collect::<Result<Vec<_>>>()?;
    let certifier = generate(dir.certifier_key_path(0))?;
    let genesis = Genesis {
        schema_version: SCHEMA_VERSION,
        name: a.name,
        created_at: now(),
        authorities: KeySet {
            keys: authorities.clone(),
            threshold: a.threshold,
        },
        certifiers: vec![certifier],
        repository: KeySet {
            keys: repository,
            threshold: a.threshold,
        },
        bootstrap: a.bootstrap,
        policy: Policy {
            require_membership: !a.open,
            allowed_jurisdictions: a.jurisdictions,
            psk: a.psk.then(|| hex::encode(rand::random::<[u8; 32]>())),
        },
    };
    genesis.validate()?;
    let text = format!(
        "# gaiamesh federation genesis. The federation id is the BLAKE3 hash of its canonical\n\
         # encoding: {}\n# Hand this file to every node: gaiamesh init --data-dir DIR --genesis genesis.toml\n\n{}",
        genesis.id()?,
        genesis.to_toml()?
    );
    datadir::write_atomic(&dir.genesis_path(), text.as_bytes())?;
    let out = InitOutput {
        federation_id: genesis.id()?.to_string(),
        genesis: dir.genesis_path(),
        authorities: authorities.iter().map(ToString::to_string).collect(),
        threshold: a.threshold,
    };
    if a.json {
        return print_json(&out);
    }
    println!("federation {}", out.federation_id);
    println!("genesis    {}", out.genesis.display());
    println!(
        "keys       {} ({} authorities, threshold {}; keep them safe)",
        dir.root().join("keys").display(),
        n,
        a.threshold
    );
    Ok(())
}

/// The participant file of `federation admit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParticipantFile {
    legal_name: String,
    registration: Registration,
    headquarters_country: String,
}

fn read_participant(path: &std::path::Path) -> Result<MemberParticipant> {
    let text = datadir::read_text(path, 256 * 1024)?;
    // A whole self-description works too: take its participant section.
    if let Ok(doc) = SdDocument::parse(&text, DocumentFormat::sniff(&text)) {
        let p = doc.participant;
        let registration = p
            .registration
            .into_iter()
            .next()
            .context("the participant has no registration")?;
        return Ok(MemberParticipant {
            legal_name: p.legal_name,
            registration,
            headquarters_country: p.headquarters.country,
        });
    }
    let f: ParticipantFile = toml::from_str(&text).with_context(|| {
        format!(
            "{}: expected legal_name, registration = {{ kind, value }} and headquarters_country, \
             or a self-description document",
            path.display()
        )
    })?;
    Ok(MemberParticipant {
        legal_name: f.legal_name,
        registration: f.registration,
        headquarters_country: f.headquarters_country,
    })
}

fn admit(a: AdmitArgs) -> Result<()> {
    let dir = FederationDir::new(&a.federation);
    let trust = dir.trust()?;
    for p in &a.peers {
        if let Some(r) = trust.revocation(p) {
            bail!(
                "{p} was revoked ({}); a revoked key cannot be admitted again",
                r.reason
            );
        }
    }
    let participant = read_participant(&a.participant)?;
    let issued_at = now();
    let body = CredentialBody {
        schema_version: SCHEMA_VERSION,
        federation: trust.id(),
        participant,
        peers: a.peers,
        roles: a.roles,
        issued_at,
        expires_at: issued_at.plus_ms(duration_ms(a.valid_for)),
    };
    let keys = dir.signing_authorities(&trust)?;
    let refs: Vec<&Keypair> = keys.iter().collect();
    let cred = MembershipCredential::issue(body, &refs)?;
    trust.verify_credential(&cred, None, issued_at)?;
    datadir::write_atomic(&a.out, cred.to_toml()?.as_bytes())?;
    eprintln!(
        "admitted {} ({} peer(s), valid until {}); credential written to {}",
        cred.body.participant.legal_name,
        cred.body.peers.len(),
        cred.body.expires_at,
        a.out.display()
    );
    Ok(())
}

fn revoke(a: RevokeArgs) -> Result<()> {
    let dir = FederationDir::new(&a.federation);
    let trust = dir.trust()?;
    let mut revoked = dir
        .revocations()?
        .map(|l| l.body.revoked)
        .unwrap_or_default();
    let at = now();
    for p in &a.peers {
        if revoked.iter().any(|r| &r.peer == p) {
            eprintln!("{p} is already revoked");
            continue;
        }
        revoked.push(Revocation {
            peer: *p,
            reason: a.reason.clone(),
            revoked_at: at,
        });
    }
    let body = RevocationBody {
        schema_version: SCHEMA_VERSION,
        federation: trust.id(),
        version: trust.revocation_version() + 1,
        issued_at: at,
        revoked,
    };
    let keys = dir.signing_authorities(&trust)?;
    let refs: Vec<&Keypair> = keys.iter().collect();
    let list = RevocationList::issue(body, &refs)?;
    let mut check = trust.clone();
    check.apply_revocations(&list)?;
    datadir::write_atomic(&dir.revocations_path(), list.to_toml()?.as_bytes())?;
    eprintln!(
        "revocation list version {} ({} revoked) written to {}",
        list.body.version,
        list.body.revoked.len(),
        dir.revocations_path().display()
    );
    Ok(())
}

fn attest(a: AttestArgs) -> Result<()> {
    let dir = FederationDir::new(&a.federation);
    let trust = dir.trust()?;
    let certifier = dir.certifier(&trust)?;
    let issued_at = now();
    let body = AttestationBody {
        schema_version: SCHEMA_VERSION,
        federation: trust.id(),
        subject: a.peer,
        service: a.service,
        scheme: a.scheme,
        scope: a.scope,
        issued_at,
        valid_until: issued_at.plus_ms(duration_ms(a.valid_for)),
    };
    let att = Attestation::sign(body, &certifier)?;
    fs::write(&a.out, att.encode()?)
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    eprintln!(
        "attestation of {} for {} written to {}",
        att.body.scheme,
        att.body.subject,
        a.out.display()
    );
    Ok(())
}
