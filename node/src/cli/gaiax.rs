//! `gaiamesh gaiax`: Gaia-X Trust Framework credentials in and out (docs/gaiax.md).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use gaiamesh_gaiax::{ExportFormat, ImportOptions, Source, jwt};
use gaiamesh_protocol::{
    identity::PublicKey,
    sd::{DocumentFormat, NodeKind, SdDocument},
};
use libp2p::PeerId;

use super::{print_json, read_limited};
use crate::{
    api_client::{NodeApi, node_running},
    datadir::DataDir,
    now,
};

/// Gaia-X commands.
#[derive(Debug, Subcommand)]
pub enum GaiaxCommand {
    /// Map Gaia-X credentials (22.10 JSON-LD; Loire JSON-LD or VC-JWT) to a self-description;
    /// reports what was mapped, kept aside and invalid, and which proofs verified.
    Import(ImportArgs),
    /// Write a self-description as Gaia-X credentials: Loire (gx:LegalPerson, JSON-LD or
    /// VC-JWT) or 22.10 (gx:LegalParticipant with JsonWebSignature2020 proofs).
    Export(ExportArgs),
    /// Print the DID document that publishes this node's key under a did:web, for
    /// `gaiax export --did`: serve it at the URL printed on stderr.
    DidDocument(DidDocumentArgs),
}

/// Arguments of `gaiax did-document`.
#[derive(Debug, clap::Args)]
pub struct DidDocumentArgs {
    /// The node's data directory (its key goes into the document).
    #[arg(long, short = 'd', env = "GAIAMESH_DATA_DIR", value_name = "DIR")]
    data_dir: PathBuf,
    /// The did:web to publish under, e.g. did:web:provider.example.
    #[arg(long, value_name = "DID")]
    did: String,
    /// Write here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Arguments of `gaiax import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Credential files: presentations, credentials, lists of them, or compact JWTs.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Write the self-description (TOML) here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Start from this self-description: its node section and services are kept.
    #[arg(long)]
    base: Option<PathBuf>,
    /// Without --base: the node kind (the node's location is the headquarters).
    #[arg(long, default_value = "public_cloud")]
    node_kind: String,
    /// A JWK or JWK set to check VC-JWT and JsonWebSignature2020 signatures with (repeat).
    /// Each key's `kid` must be its DID URL (`did:web:example.com#key-1`), or give it here:
    /// `DID_URL=FILE`. A key verifies only credentials issued by its DID: the JWT `kid` or
    /// the proof's verificationMethod must name it (`#key-1` relative to the issuer counts).
    #[arg(long = "trust-key", value_name = "[DID_URL=]FILE")]
    trust_keys: Vec<String>,
    /// An issuer's DID document (`did.json`, as did:web publishes it at
    /// https://HOST/.well-known/did.json), your own copy: its publicKeyJwk verification
    /// methods become trusted keys of that DID (repeat). Nothing is fetched.
    #[arg(long = "did-document", value_name = "FILE")]
    did_documents: Vec<PathBuf>,
    /// Trust anchors (PEM certificates, repeat): each --did-document key must then carry a
    /// certificate chain (its JWK's x5c, or x5u with --x5u) that leads to one of them at
    /// the instant checked (--at) and certifies that very key; a key that does not is
    /// refused. Without anchors, the keys of a given DID document are trusted as they are.
    #[arg(long = "trust-anchor", value_name = "FILE")]
    trust_anchors: Vec<PathBuf>,
    /// A local copy of the PEM chain an x5u URL serves, `URL=FILE` (repeat; nothing is
    /// fetched).
    #[arg(long = "x5u", value_name = "URL=FILE")]
    x5u: Vec<String>,
    /// A local copy of a JSON-LD context, `URL=FILE`, for JsonWebSignature2020 proofs whose
    /// contexts are not bundled (repeat). Bundled: W3C credentials v1/v2, security v1/v2,
    /// JWS 2020, data integrity, Ed25519 2020, multikey, DID v1, ODRL, status list 2021.
    #[arg(long = "context", value_name = "URL=FILE")]
    contexts: Vec<String>,
    /// Where to keep the original credentials (`<sha256>.json|jwt`); default: next to
    /// --out as `<out>.credentials/`.
    #[arg(long)]
    credentials_dir: Option<PathBuf>,
    /// Refuse the import (exit status 1, nothing written) unless every credential and
    /// presentation has a proof that verifies with a key bound to its issuer, every
    /// credential is within its validity window, nothing is invalid and no shape is
    /// violated; the problems are listed. Without it they are reported and the import goes
    /// on.
    #[arg(long)]
    strict: bool,
    /// Validate every credential against this SHACL shapes graph (Turtle `.ttl`,
    /// N-Triples `.nt` or JSON-LD `.jsonld`), e.g. a release's `gx.shacl.ttl`. Without it,
    /// 22.10 credentials are validated against the bundled 22.10 registry shapes and Loire
    /// ones are not (no Loire shapes are bundled; the report says so). Violations are
    /// listed in the report and refused by --strict.
    #[arg(long, value_name = "FILE", conflicts_with = "no_shapes")]
    shapes: Option<PathBuf>,
    /// Do not validate against SHACL shapes (the report says so).
    #[arg(long)]
    no_shapes: bool,
    /// Write each service's ODRL policy (`gx:servicePolicy`) as a usage policy,
    /// `DIR/<service-id>.policy.toml`, for `gaiamesh asset add --policy`: purposes,
    /// residency, validity, use count and onward transfer map; the rest is reported.
    #[arg(long, value_name = "DIR")]
    policies: Option<PathBuf>,
    /// Check validity windows at this instant (RFC 3339, e.g. 2026-01-01T00:00:00Z) instead
    /// of now, for reproducible checks.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// Print the report and the document as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Arguments of `gaiax export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Whose self-description (from the running node's directory); default: this node's.
    peer_id: Option<String>,
    /// The node's data directory (its key signs vc-jwt exports).
    #[arg(long, short = 'd', env = "GAIAMESH_DATA_DIR", value_name = "DIR")]
    data_dir: PathBuf,
    /// Export this self-description document instead (as this node's).
    #[arg(long)]
    sd: Option<PathBuf>,
    /// `jsonld` (unsigned credentials) or `vc-jwt` (signed with the node key, did:key).
    /// 22.10 credentials are always JSON-LD, each with a JsonWebSignature2020 proof by the
    /// node key.
    #[arg(long, default_value = "jsonld", value_parser = ["jsonld", "vc-jwt"])]
    format: String,
    /// The Gaia-X release: `loire` (`gx:LegalPerson`, VC data model 2.0) or `22.10`
    /// (Tagus: `gx:LegalParticipant`, as the 22.10 compliance service takes it; the
    /// export is validated against the bundled 22.10 shapes before it is written).
    #[arg(long, default_value = "loire", value_parser = ["loire", "22.10"])]
    release: String,
    /// With `--release 22.10`: add the participant's signed acceptance of the Gaia-X terms
    /// and conditions (`gx:GaiaXTermsAndConditions`, the text the 22.10 shapes require),
    /// which the compliance service needs. Only pass it if the participant agrees.
    #[arg(long)]
    accept_gaia_x_terms: bool,
    /// Sign as this did:web instead of the node key's did:key (verification method
    /// `DID#node-key`); publish the node key under it with `gaiax did-document`.
    #[arg(long, value_name = "DID")]
    did: Option<String>,
    /// Write here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub(super) fn run(cmd: GaiaxCommand) -> Result<()> {
    match cmd {
        GaiaxCommand::Import(a) => import(a),
        GaiaxCommand::Export(a) => export(a),
        GaiaxCommand::DidDocument(a) => did_document(a),
    }
}

/// Most bytes of a `--shapes` file (the 22.10 registry's full shapes graph is 144 KB).
const MAX_SHAPES_BYTES: usize = 8 * 1024 * 1024;

/// `--trust-anchor` and `--x5u`, checked at `--at` (or now).
fn chain_policy(a: &ImportArgs, at: Option<i64>) -> Result<gaiamesh_gaiax::x509::ChainPolicy> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let at = at.map_or(now, |t| u64::try_from(t).unwrap_or(0));
    let mut policy = gaiamesh_gaiax::x509::ChainPolicy::new(at);
    for f in &a.trust_anchors {
        let pem = read_limited(f, gaiamesh_gaiax::MAX_INPUT_BYTES)?;
        policy
            .add_anchors(&f.display().to_string(), &pem)
            .context("--trust-anchor")?;
    }
    for x in &a.x5u {
        let Some((url, file)) = x.split_once('=') else {
            bail!("--x5u {x:?}: expected URL=FILE");
        };
        let pem = read_limited(Path::new(file), gaiamesh_gaiax::MAX_INPUT_BYTES)
            .with_context(|| format!("--x5u {url}"))?;
        policy.add_x5u(url, &pem).context("--x5u")?;
    }
    if !a.x5u.is_empty() && !policy.has_anchors() {
        bail!("--x5u chains are checked against trust anchors: give them with --trust-anchor");
    }
    Ok(policy)
}

fn import(a: ImportArgs) -> Result<()> {
    let mut sources = Vec::with_capacity(a.files.len());
    for f in &a.files {
        sources.push(Source {
            name: f.display().to_string(),
            bytes: read_limited(f, gaiamesh_gaiax::MAX_INPUT_BYTES)?,
        });
    }
    let at =
        a.at.as_deref()
            .map(|t| {
                gaiamesh_gaiax::validity::parse_time(t)
                    .map(|t| t.unix_timestamp())
                    .context("--at")
            })
            .transpose()?;
    let chains = chain_policy(&a, at)?;
    let mut trusted = Vec::new();
    for d in &a.did_documents {
        let text =
            std::fs::read_to_string(d).with_context(|| format!("cannot read {}", d.display()))?;
        trusted.extend(
            jwt::did_document_keys(&text, Some(&chains))
                .with_context(|| format!("--did-document {}", d.display()))?,
        );
    }
    for k in &a.trust_keys {
        let (bind, file) = match k.split_once('=') {
            Some((did_url, file)) if did_url.starts_with("did:") => (Some(did_url), file),
            _ => (None, k.as_str()),
        };
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?;
        trusted
            .extend(jwt::parse_trusted(&text, bind).with_context(|| format!("--trust-key {k}"))?);
    }
    let mut contexts = gaiamesh_gaiax::ld::Contexts::bundled();
    for c in &a.contexts {
        let Some((url, file)) = c.split_once('=') else {
            bail!("--context {c:?}: expected URL=FILE");
        };
        let bytes = read_limited(Path::new(file), gaiamesh_gaiax::MAX_INPUT_BYTES)
            .with_context(|| format!("--context {url}"))?;
        contexts.add(url, bytes).context("--context")?;
    }
    let node_kind: NodeKind =
        serde_json::from_value(serde_json::Value::String(a.node_kind.clone()))
            .with_context(|| format!("--node-kind {:?} is not a node kind", a.node_kind))?;
    let base = a
        .base
        .as_deref()
        .map(super::read_document)
        .transpose()
        .context("--base")?;
    let given = a
        .shapes
        .as_deref()
        .map(|f| {
            let bytes = read_limited(f, MAX_SHAPES_BYTES)?;
            gaiamesh_shapes::Shapes::from_document(&f.display().to_string(), &bytes, &contexts)
                .context("--shapes")
        })
        .transpose()?;
    let mut out = gaiamesh_gaiax::import(
        &sources,
        &ImportOptions {
            base,
            node_kind,
            trusted,
            contexts: contexts.clone(),
            at,
        },
    );
    let choice = match (&given, a.no_shapes) {
        (_, true) => gaiamesh_shapes::Choice::Skip,
        (Some(s), false) => gaiamesh_shapes::Choice::Given(s),
        (None, false) => gaiamesh_shapes::Choice::Bundled,
    };
    gaiamesh_shapes::validate_import(&mut out, choice, &contexts).context("shape validation")?;
    let problems = if a.strict {
        out.report.strict_problems()
    } else {
        Vec::new()
    };
    let keep = a
        .credentials_dir
        .clone()
        .or_else(|| a.out.as_ref().map(|o| o.with_extension("credentials")));
    if let Some(dir) = keep.as_ref().filter(|_| problems.is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for o in &out.originals {
            let path = dir.join(format!("{}.{}", o.sha256, o.kind));
            std::fs::write(&path, &o.bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    let valid = out.is_valid() && problems.is_empty();
    if a.json {
        print_json(&serde_json::json!({
            "valid": valid,
            "strict_problems": problems,
            "report": out.report,
            "document": out.document,
            "originals": out.originals.iter().map(|o| serde_json::json!({
                "origin": o.origin, "kind": o.kind, "sha256": o.sha256,
            })).collect::<Vec<_>>(),
            "credentials_dir": keep,
        }))?;
    } else {
        eprint!("{}", out.report.summary());
        if let Some(dir) = keep.as_ref().filter(|_| problems.is_empty()) {
            eprintln!("originals kept in {}", dir.display());
        }
    }
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("strict: {p}");
        }
        bail!(
            "--strict: {} problem(s) with these credentials; nothing was written",
            problems.len()
        );
    }
    if !valid {
        bail!("no valid self-description could be made from these credentials (see the report)");
    }
    if let Some(dir) = &a.policies {
        write_policies(dir, &out.policies)?;
    }
    if !a.json
        && let Some(doc) = &out.document
    {
        let toml = doc.to_toml()?;
        match &a.out {
            Some(p) => {
                std::fs::write(p, toml).with_context(|| format!("cannot write {}", p.display()))?;
                eprintln!("self-description written to {}", p.display());
            }
            None => print!("{toml}"),
        }
    }
    Ok(())
}

/// An ODRL policy's terms as an exchange usage policy (validated as `asset add` would).
fn usage_policy(terms: &gaiamesh_gaiax::odrl::OdrlTerms) -> Result<String> {
    let instant = |t: &str| -> Result<gaiamesh_protocol::time::UnixMillis> {
        // xsd:date as the start of that day, UTC
        let full = if t.len() == 10 {
            format!("{t}T00:00:00Z")
        } else {
            t.to_owned()
        };
        let at = gaiamesh_gaiax::validity::parse_time(&full)?;
        Ok(gaiamesh_protocol::time::UnixMillis(
            u64::try_from(at.unix_timestamp()).unwrap_or(0) * 1000,
        ))
    };
    let policy = gaiamesh_exchange::policy::Policy {
        purposes: terms.purposes.clone(),
        jurisdiction: terms.jurisdiction.clone(),
        valid_from: terms.valid_from.as_deref().map(instant).transpose()?,
        valid_until: terms.valid_until.as_deref().map(instant).transpose()?,
        max_transfers: terms.max_transfers,
        onward_transfer: terms.onward_transfer.unwrap_or(true),
        ..Default::default()
    };
    let text = toml::to_string(&policy)?;
    gaiamesh_exchange::policy::Policy::parse(&text)?;
    Ok(text)
}

fn write_policies(
    dir: &Path,
    policies: &[(String, gaiamesh_gaiax::odrl::OdrlTerms)],
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (service, terms) in policies {
        let text =
            usage_policy(terms).with_context(|| format!("the ODRL policy of service {service}"))?;
        let name: String = service
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!("{name}.policy.toml"));
        let header = format!(
            "# usage policy of service {service}, from its ODRL gx:servicePolicy\n# {}\n",
            terms.summary()
        );
        std::fs::write(&path, header + &text)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("usage policy of {service} written to {}", path.display());
    }
    Ok(())
}

fn export(a: ExportArgs) -> Result<()> {
    let dir = DataDir::new(&a.data_dir);
    let key = dir.key()?;
    let (doc, subject): (SdDocument, PublicKey) = match (&a.sd, &a.peer_id) {
        (Some(path), _) => (super::read_document(path)?, key.public()),
        (None, peer) => {
            if !node_running(&dir) {
                bail!(
                    "the node at {} is not running; start it or pass --sd FILE",
                    dir.root().display()
                );
            }
            let subject = match peer {
                Some(p) => {
                    let pid: PeerId = p
                        .parse()
                        .with_context(|| format!("{p:?} is not a peer id"))?;
                    PublicKey::from_peer_id(&pid)?
                }
                None => key.public(),
            };
            let entry = NodeApi::of(&dir)?.entry(&subject.to_string())?;
            let text = entry.document.to_string();
            (
                SdDocument::parse(&text, DocumentFormat::Json)
                    .with_context(|| format!("{subject}: the directory's document"))?,
                subject,
            )
        }
    };
    let format = match (a.release.as_str(), a.format.as_str()) {
        ("22.10", "vc-jwt") => bail!(
            "--release 22.10 is JSON-LD with JsonWebSignature2020 proofs; --format vc-jwt is \
             for Loire"
        ),
        ("22.10", _) => ExportFormat::Tagus {
            gaia_x_terms: a.accept_gaia_x_terms,
        },
        (_, _) if a.accept_gaia_x_terms => {
            bail!("--accept-gaia-x-terms is for --release 22.10 (Loire has no such credential)")
        }
        (_, "vc-jwt") => ExportFormat::VcJwt,
        (_, _) => ExportFormat::JsonLd,
    };
    if let Some(did) = &a.did {
        gaiamesh_gaiax::did_web::document_url(did).context("--did")?;
    }
    let pk = key.public().to_bytes();
    let sign = |m: &[u8]| key.sign_external(m);
    let vp = gaiamesh_gaiax::export(
        &doc,
        &subject.to_bytes(),
        format,
        Some(gaiamesh_gaiax::Signer {
            public: &pk,
            sign: &sign,
            did: a.did.as_deref(),
        }),
        now(),
    )?;
    if let ExportFormat::Tagus { gaia_x_terms } = format {
        check_tagus_export(&vp)?;
        if !gaia_x_terms {
            eprintln!(
                "note: no gx:GaiaXTermsAndConditions credential; the 22.10 compliance service \
                 requires one (--accept-gaia-x-terms, if the participant agrees)"
            );
        }
    }
    let text = serde_json::to_string_pretty(&vp)?;
    write_out(a.out.as_deref(), &text)
}

fn did_document(a: DidDocumentArgs) -> Result<()> {
    let key = DataDir::new(&a.data_dir).key()?;
    let url = gaiamesh_gaiax::did_web::document_url(&a.did).context("--did")?;
    let doc = gaiamesh_gaiax::did_web::document(&a.did, &key.public().to_bytes())?;
    write_out(a.out.as_deref(), &serde_json::to_string_pretty(&doc)?)?;
    eprintln!(
        "publish it at {url}; sign with `gaiamesh gaiax export --did {}`",
        a.did
    );
    Ok(())
}

/// Validates a 22.10 export against the bundled 22.10 shapes: what does not conform is
/// not written.
fn check_tagus_export(vp: &serde_json::Value) -> Result<()> {
    let credentials: Vec<(String, serde_json::Value)> = vp["verifiableCredential"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, c)| (format!("verifiableCredential[{i}]"), c.clone()))
        .collect();
    let shapes = gaiamesh_shapes::Shapes::tagus()?;
    let outcome = shapes.validate(&credentials, &gaiamesh_gaiax::ld::Contexts::bundled())?;
    if let Some((origin, why)) = outcome.skipped.first() {
        bail!("the export's {origin} could not be validated: {why}");
    }
    if !outcome.conforms() {
        let lines: Vec<String> = outcome.violations.iter().map(|v| v.to_string()).collect();
        bail!(
            "the export does not conform to the 22.10 shapes ({} violation(s)):\n  {}",
            outcome.violations.len() + outcome.more,
            lines.join("\n  ")
        );
    }
    eprintln!("shapes: conforms to {}", shapes.name());
    Ok(())
}

fn write_out(out: Option<&Path>, text: &str) -> Result<()> {
    match out {
        Some(p) => std::fs::write(p, format!("{text}\n"))
            .with_context(|| format!("cannot write {}", p.display())),
        None => {
            println!("{text}");
            Ok(())
        }
    }
}
