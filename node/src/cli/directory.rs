//! `gaiamesh directory import`.

use std::{io::Write, path::PathBuf};

use anyhow::{Result, bail};
use clap::Subcommand;
use gaiamesh_directory::merge::MergeOutcome;
use gaiamesh_protocol::{limits::MAX_SD_BYTES, sd::SignedSelfDescription};
use serde::Serialize;

use super::{DataDirArg, print_json, read_limited};
use crate::{datadir::DataDir, now};

/// Catalogue commands.
#[derive(Debug, Subcommand)]
pub enum DirectoryCommand {
    /// Import signed self-descriptions (from `gaiamesh sd sign`) into the data dir's catalogue.
    Import(ImportArgs),
}

/// Arguments of `directory import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Signed self-description files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    data_dir: DataDirArg,
    /// Records per transaction; each batch is acknowledged once it is durable.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u16).range(1..=10_000))]
    batch: u16,
    /// Print one JSON object per record instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Line {
    file: PathBuf,
    status: &'static str,
    subject: Option<String>,
    seq: Option<u64>,
    detail: String,
}

pub(super) fn run(cmd: DirectoryCommand) -> Result<()> {
    match cmd {
        DirectoryCommand::Import(a) => import(a),
    }
}

fn classify(outcome: &MergeOutcome) -> (&'static str, String) {
    match outcome {
        MergeOutcome::Inserted => ("accepted", "new subject".into()),
        MergeOutcome::Replaced { old_seq } => ("accepted", format!("replaced seq {old_seq}")),
        MergeOutcome::Duplicate => ("unchanged", "already stored".into()),
        MergeOutcome::Stale { stored_seq } => {
            ("unchanged", format!("stored seq {stored_seq} is newer"))
        }
        MergeOutcome::Equivocation { replaced } => (
            "rejected",
            format!(
                "equivocation: same seq, different content (evidence recorded; kept {})",
                if *replaced {
                    "this one"
                } else {
                    "the stored one"
                }
            ),
        ),
        MergeOutcome::Rejected(e) => ("rejected", e.to_string()),
        MergeOutcome::CatalogueFull => (
            "rejected",
            "catalogue is full (directory.max_entries)".into(),
        ),
        _ => ("unchanged", format!("{outcome:?}")),
    }
}

fn import(a: ImportArgs) -> Result<()> {
    let dir = DataDir::new(&a.data_dir.data_dir);
    let mut cat = dir.catalogue()?;
    let total = a.files.len();
    let (mut accepted, mut rejected, mut unchanged) = (0usize, 0usize, 0usize);
    let progress = total >= 2000 && !a.json;
    let mut stdout = std::io::stdout().lock();
    for (chunk_no, chunk) in a.files.chunks(usize::from(a.batch)).enumerate() {
        let mut lines = Vec::with_capacity(chunk.len());
        let mut batch = Vec::new();
        let mut slots = Vec::new();
        for file in chunk {
            let decoded = read_limited(file, MAX_SD_BYTES)
                .and_then(|b| Ok(SignedSelfDescription::decode(&b)?));
            match decoded {
                Ok(r) => {
                    slots.push(lines.len());
                    lines.push(Line {
                        file: file.clone(),
                        status: "",
                        subject: Some(r.sd.subject.to_string()),
                        seq: Some(r.sd.seq),
                        detail: String::new(),
                    });
                    batch.push((r, None));
                }
                Err(e) => lines.push(Line {
                    file: file.clone(),
                    status: "rejected",
                    subject: None,
                    seq: None,
                    detail: format!("{e:#}"),
                }),
            }
        }
        // One durable transaction per chunk; lines are printed (acknowledged) after it commits.
        let outcomes = cat.merge_batch(batch, now())?;
        for (slot, outcome) in slots.into_iter().zip(&outcomes) {
            let (status, detail) = classify(outcome);
            lines[slot].status = status;
            lines[slot].detail = detail;
        }
        for l in &lines {
            match l.status {
                "accepted" => accepted += 1,
                "rejected" => rejected += 1,
                _ => unchanged += 1,
            }
            if a.json {
                writeln!(stdout, "{}", serde_json::to_string(l)?)?;
            } else {
                let who = match (&l.subject, l.seq) {
                    (Some(s), Some(q)) => format!("{s} seq {q}: "),
                    _ => String::new(),
                };
                writeln!(
                    stdout,
                    "{} {}: {who}{}",
                    l.status,
                    l.file.display(),
                    l.detail
                )?;
            }
        }
        stdout.flush()?;
        if progress {
            let done = ((chunk_no + 1) * usize::from(a.batch)).min(total);
            eprintln!("imported {done}/{total}");
        }
    }
    let summary = format!(
        "{accepted} accepted, {unchanged} unchanged, {rejected} rejected; catalogue has {} entries",
        cat.len()
    );
    if a.json {
        print_json(
            &serde_json::json!({ "accepted": accepted, "unchanged": unchanged, "rejected": rejected, "entries": cat.len() }),
        )?;
    } else {
        eprintln!("{summary}");
    }
    if rejected > 0 {
        bail!("{rejected} record(s) rejected");
    }
    Ok(())
}
