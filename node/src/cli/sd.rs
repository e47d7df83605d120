//! `gaiamesh sd {check,sign,verify}`.

use std::{fs, path::PathBuf, time::Duration};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use gaiamesh_protocol::{
    federation::Attestation,
    limits::{MAX_ATTESTATION_BYTES, MAX_DOCUMENT_BYTES, MAX_SD_BYTES},
    sd::{
        DocumentError, DocumentFormat, MembershipStatus, SCHEMA_VERSION, SdDocument, SdReport,
        SelfDescription, SignedSelfDescription,
    },
    time::UnixMillis,
};
use serde::Serialize;

use super::{DataDirArg, duration_ms, parse_duration, print_json, read_limited};
use crate::{
    datadir::{self, DataDir},
    federation_dir::FederationDir,
    now,
};

/// Self-description commands.
#[derive(Debug, Subcommand)]
pub enum SdCommand {
    /// Validate a document (TOML or JSON); lists every problem with its field path.
    Check(CheckArgs),
    /// Sign a document with the node key into a signed record (binary).
    Sign(SignArgs),
    /// Verify a signed record against a federation's genesis.
    Verify(VerifyArgs),
    /// Publish through the running node: sign and gossip FILE, or without FILE re-publish the
    /// node's current document with seq + 1.
    Publish(PublishArgs),
    /// Show a node's entry in the directory (through the running node, or offline).
    Show(ShowArgs),
}

/// Arguments of `sd publish`.
#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    /// The document (TOML or JSON); omitted: re-publish the current one.
    file: Option<PathBuf>,
    #[command(flatten)]
    data_dir: DataDirArg,
}

/// Arguments of `sd show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The node's PeerId.
    peer: gaiamesh_protocol::identity::PublicKey,
    #[command(flatten)]
    data_dir: DataDirArg,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `sd check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The document.
    file: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `sd sign`.
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// The document (TOML or JSON).
    file: PathBuf,
    #[command(flatten)]
    data_dir: DataDirArg,
    /// Where to write the signed record.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Sequence number; default: one more than the last this node signed, and at least the
    /// current time in milliseconds, so versions increase even after a data dir is lost.
    #[arg(long)]
    seq: Option<u64>,
    /// How long the record is valid (at most 7d).
    #[arg(long, default_value = "7d", value_parser = parse_duration)]
    valid_for: Duration,
    /// An attestation file (from `federation attest`) to embed; repeatable.
    #[arg(long = "attestation", value_name = "FILE")]
    attestations: Vec<PathBuf>,
}

/// Arguments of `sd verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The signed record.
    file: PathBuf,
    /// The federation's genesis.toml, or a federation directory.
    #[arg(long, value_name = "FILE|DIR")]
    genesis: PathBuf,
    /// A revocation list to apply, after the revocations.toml of a federation directory
    /// (an older list than the one in force is refused).
    #[arg(long, value_name = "FILE")]
    revocations: Option<PathBuf>,
    /// Check at this time (RFC 3339) instead of now.
    #[arg(long, value_name = "TIME")]
    at: Option<UnixMillis>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(cmd: SdCommand) -> Result<()> {
    match cmd {
        SdCommand::Check(a) => check(a),
        SdCommand::Sign(a) => sign(a),
        SdCommand::Verify(a) => verify(a),
        SdCommand::Publish(a) => publish(a),
        SdCommand::Show(a) => show(a),
    }
}

fn publish(a: PublishArgs) -> Result<()> {
    let dir = DataDir::new(&a.data_dir.data_dir);
    if !super::run::node_running(&dir) {
        bail!(
            "no node is running on {}; start it with `gaiamesh run --data-dir {}`",
            dir.root().display(),
            dir.root().display()
        );
    }
    let (body, content_type) = match &a.file {
        Some(f) => {
            // Validate locally first, for errors with field paths.
            read_document(f).map_err(|e| anyhow::anyhow!("{}:\n{e}", f.display()))?;
            let text = datadir::read_text(f, MAX_DOCUMENT_BYTES as u64)?;
            let media = match document_format(f, &text) {
                DocumentFormat::Json => "application/json",
                _ => "application/toml",
            };
            (text, media)
        }
        None => (String::new(), "application/toml"),
    };
    let document = (!body.is_empty()).then_some((content_type, body.as_str()));
    let out = crate::api_client::NodeApi::of(&dir)?.publish(document)?;
    println!("published seq {}", out.seq);
    Ok(())
}

fn show(a: ShowArgs) -> Result<()> {
    let dir = DataDir::new(&a.data_dir.data_dir);
    let entry = if super::run::node_running(&dir) {
        serde_json::to_value(crate::api_client::NodeApi::of(&dir)?.entry(&a.peer.to_string())?)?
    } else {
        let cat = dir.catalogue()?;
        let e = cat
            .get(&a.peer)?
            .ok_or_else(|| anyhow::anyhow!("{} is not in the directory", a.peer))?;
        serde_json::json!({
            "subject": e.subject().to_string(),
            "seq": e.seq(),
            "received_at_ms": e.received_at.0,
            "from": e.from.map(|p| p.to_string()),
            "last_seen_ms": null,
            "document": e.record.sd.document,
        })
    };
    if a.json {
        return print_json(&entry);
    }
    println!("subject      {}", entry["subject"].as_str().unwrap_or("?"));
    println!("seq          {}", entry["seq"]);
    println!(
        "received at  {}",
        UnixMillis(entry["received_at_ms"].as_u64().unwrap_or(0))
    );
    let doc: SdDocument = serde_json::from_value(entry["document"].clone())?;
    print!("{}", doc.to_toml()?);
    Ok(())
}

use crate::datadir::{document_format, read_document};

#[derive(Serialize)]
struct CheckOutput {
    file: PathBuf,
    valid: bool,
    errors: Vec<String>,
    services: usize,
}

fn check(a: CheckArgs) -> Result<()> {
    let result = read_document(&a.file);
    let (errors, services) = match &result {
        Ok(doc) => (vec![], doc.services.len()),
        Err(DocumentError::Invalid(v)) => (v.iter().map(ToString::to_string).collect(), 0),
        Err(e) => (vec![e.to_string()], 0),
    };
    let out = CheckOutput {
        file: a.file.clone(),
        valid: errors.is_empty(),
        errors,
        services,
    };
    if a.json {
        print_json(&out)?;
    } else if out.valid {
        println!("{}: valid ({} service(s))", a.file.display(), out.services);
    } else {
        for e in &out.errors {
            println!("{e}");
        }
    }
    if out.valid {
        Ok(())
    } else {
        bail!("{}: {} problem(s)", a.file.display(), out.errors.len())
    }
}

fn sign(a: SignArgs) -> Result<()> {
    let dir = DataDir::new(&a.data_dir.data_dir);
    let key = dir.key()?;
    let trust = dir.trust()?;
    let document =
        read_document(&a.file).map_err(|e| anyhow::anyhow!("{}:\n{e}", a.file.display()))?;
    let membership = dir.credential()?;
    let attestations = a
        .attestations
        .iter()
        .map(|p| {
            let bytes = read_limited(p, MAX_ATTESTATION_BYTES)?;
            Attestation::decode(&bytes).with_context(|| format!("{}", p.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    let issued_at = now();
    let last = dir.last_seq()?;
    let seq = match a.seq {
        Some(s) if s <= last => {
            bail!("--seq {s} is not above {last}, the last seq this node signed")
        }
        Some(s) => s,
        None => (last + 1).max(issued_at.0),
    };
    let sd = SelfDescription {
        schema_version: SCHEMA_VERSION,
        subject: key.public(),
        federation: trust.id(),
        seq,
        issued_at,
        expires_at: issued_at.plus_ms(duration_ms(a.valid_for)),
        document,
        membership,
        attestations,
    };
    let signed = sd.sign(&key)?;
    // Refuse to write a record the federation would not accept, with the reason.
    signed
        .check(&trust, issued_at)
        .context("the signed record would be refused by the federation")?;
    let bytes = signed.encode()?;
    fs::write(&a.out, &bytes).with_context(|| format!("cannot write {}", a.out.display()))?;
    dir.record_seq(seq)?;
    eprintln!(
        "signed {} seq {} ({} bytes, valid until {}) -> {}",
        signed.sd.subject,
        seq,
        bytes.len(),
        signed.sd.expires_at,
        a.out.display()
    );
    Ok(())
}

#[derive(Serialize)]
struct VerifyOutput {
    valid: bool,
    error: Option<String>,
    subject: Option<String>,
    seq: Option<u64>,
    federation: Option<String>,
    issued_at: Option<UnixMillis>,
    expires_at: Option<UnixMillis>,
    participant: Option<String>,
    #[serde(flatten)]
    report: Option<SdReport>,
}

fn verify(a: VerifyArgs) -> Result<()> {
    let (genesis_path, default_revocations) = if a.genesis.is_dir() {
        let fd = FederationDir::new(&a.genesis);
        (
            fd.genesis_path(),
            Some(fd.revocations_path()).filter(|p| p.exists()),
        )
    } else {
        (a.genesis.clone(), None)
    };
    let mut trust = datadir::load_trust(&genesis_path)?;
    for path in default_revocations.into_iter().chain(a.revocations) {
        let text = datadir::read_text(&path, 8 * 1024 * 1024)?;
        let list = gaiamesh_protocol::federation::RevocationList::from_toml(&text)
            .with_context(|| format!("{}", path.display()))?;
        trust
            .apply_revocations(&list)
            .with_context(|| format!("{}", path.display()))?;
    }
    let at = a.at.unwrap_or_else(now);
    let bytes = read_limited(&a.file, MAX_SD_BYTES)?;
    let decoded = SignedSelfDescription::decode(&bytes);
    let result = decoded
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|s| s.check(&trust, at));
    let sd = decoded.as_ref().ok().map(|s| &s.sd);
    let out = VerifyOutput {
        valid: result.is_ok(),
        error: result.as_ref().err().map(ToString::to_string),
        subject: sd.map(|s| s.subject.to_string()),
        seq: sd.map(|s| s.seq),
        federation: sd.map(|s| s.federation.to_string()),
        issued_at: sd.map(|s| s.issued_at),
        expires_at: sd.map(|s| s.expires_at),
        participant: sd.map(|s| s.document.participant.legal_name.clone()),
        report: result.as_ref().ok().cloned(),
    };
    if a.json {
        print_json(&out)?;
    } else {
        print_verify_human(&out);
    }
    match result {
        Ok(_) => Ok(()),
        Err(e) => bail!("{} is not valid: {e}", a.file.display()),
    }
}

fn print_verify_human(out: &VerifyOutput) {
    if let (Some(subject), Some(seq)) = (&out.subject, out.seq) {
        println!("subject      {subject}");
        println!("participant  {}", out.participant.as_deref().unwrap_or("?"));
        println!("seq          {seq}");
    }
    if let (Some(i), Some(e)) = (out.issued_at, out.expires_at) {
        println!("valid        {i} – {e}");
    }
    let Some(report) = &out.report else { return };
    match &report.membership {
        MembershipStatus::Member {
            legal_name,
            roles,
            expires_at,
        } => {
            println!(
                "membership   member: {legal_name} ({}), credential valid until {expires_at}",
                roles.join(", ")
            );
        }
        MembershipStatus::NotPresented => {
            println!("membership   none presented (not required here)")
        }
        MembershipStatus::Invalid { reason } => {
            println!("membership   invalid (not required here): {reason}")
        }
    }
    for c in &report.certifications {
        let scope = c
            .scope
            .as_deref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        match (&c.attested_by, c.attested_until) {
            (Some(by), Some(until)) => {
                println!(
                    "certified    {}: {}{scope} attested by {by} until {until}",
                    c.service, c.scheme
                );
            }
            _ => println!(
                "certified    {}: {}{scope} self-declared",
                c.service, c.scheme
            ),
        }
    }
    println!("signature    valid");
}
