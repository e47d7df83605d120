//! `gaiamesh directory import` and `gaiamesh query` on a data dir, and crash safety of a
//! bulk import killed with SIGKILL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::BTreeSet,
    fs,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::Stdio,
};

use gaiamesh_directory::store::{RedbStore, Store};
use gaiamesh_e2e::{fails, gaiamesh, ok};
use gaiamesh_protocol::{
    identity::{Keypair, PublicKey},
    testing::{TestFederation, example_documents, generated_document},
};

/// A data dir for the test federation, and `n` signed records written as files.
fn setup(n: usize) -> (tempfile::TempDir, TestFederation, Vec<(PathBuf, PublicKey)>) {
    let dir = tempfile::tempdir().unwrap();
    let f = TestFederation::new(3, 2, true);
    let data = dir.path().join("node");
    fs::create_dir_all(&data).unwrap();
    fs::write(
        data.join("genesis.toml"),
        f.trust.genesis().to_toml().unwrap(),
    )
    .unwrap();
    let examples = example_documents();
    let records = (0..n)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            let k = Keypair::from_secret_bytes(&seed);
            let doc = if i < examples.len() {
                examples[i].clone()
            } else {
                generated_document(&examples, i)
            };
            let signed = f.sign_document_at(&k, 1, doc, wall_clock());
            let path = dir.path().join(format!("sd-{i:05}.sd"));
            fs::write(&path, signed.encode().unwrap()).unwrap();
            (path, k.public())
        })
        .collect();
    (dir, f, records)
}

fn wall_clock() -> gaiamesh_protocol::time::UnixMillis {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    gaiamesh_protocol::time::UnixMillis(ms as u64)
}

fn args<'a>(files: &'a [(PathBuf, PublicKey)], extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["directory", "import"];
    a.extend(files.iter().map(|(p, _)| p.to_str().unwrap()));
    a.extend(extra);
    a
}

#[test]
fn import_then_query() {
    let (dir, _f, files) = setup(24);
    let d = dir.path();
    let out = ok(d, &args(&files, &["--data-dir", "node"]));
    assert_eq!(
        out.lines().filter(|l| l.starts_with("accepted")).count(),
        24,
        "{out}"
    );
    // Importing again changes nothing; a broken file is reported and the rest still imported.
    fs::write(d.join("broken.sd"), b"not a record").unwrap();
    let mut again = args(&files[..2], &["--data-dir", "node"]);
    again.insert(2, "broken.sd");
    let out = fails(d, &again);
    assert!(
        out.contains("rejected broken.sd: signed self-description is malformed"),
        "{out}"
    );
    assert!(out.contains("already stored"), "{out}");
    let q = ok(
        d,
        &[
            "query",
            "service.kind = storage.object and service.price.amount < 0.02",
            "--data-dir",
            "node",
            "--sort",
            "service.price.amount",
            "--explain",
        ],
    );
    assert!(
        q.starts_with("access: index service.kind in [storage.object]"),
        "{q}"
    );
    let names: Vec<&str> = q
        .lines()
        .skip(3)
        .map(|l| l.split("  ").next().unwrap().trim())
        .collect();
    assert_eq!(
        names,
        [
            "Nordic Hydro Cloud AB",
            "Tejo Cloud, Lda.",
            "Nordwolke GmbH",
            "Lëtzebuerg Sovereign Cloud S.A."
        ]
    );
    let json: serde_json::Value = serde_json::from_str(&ok(
        d,
        &[
            "query",
            "node.kind = hpc",
            "--data-dir",
            "node",
            "--json",
            "--limit",
            "2",
        ],
    ))
    .unwrap();
    assert_eq!(json["total"], 4);
    assert_eq!(json["matches"].as_array().unwrap().len(), 2);
    assert!(json["matches"][0]["service"]["kind"].is_string());
    let err = fails(d, &["query", "node.kind = edge and", "--data-dir", "node"]);
    assert!(
        err.contains("node.kind = edge and\n                    ^ expected a field name"),
        "{err}"
    );
}

/// DESIGN §12: kill -9 during a bulk import; the database reopens and every record whose
/// import was acknowledged (printed after its batch committed) is there.
#[test]
fn sigkill_during_bulk_import_loses_nothing_acknowledged() {
    let n = 3000;
    let (dir, f, files) = setup(n);
    let d = dir.path();
    let mut child = gaiamesh()
        .current_dir(d)
        .args(args(&files, &["--data-dir", "node", "--batch", "25"]))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acknowledged = BTreeSet::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("accepted ") {
            let subject = rest.split(": ").nth(1).unwrap().split(' ').next().unwrap();
            acknowledged.insert(subject.parse::<PublicKey>().unwrap());
        }
        if acknowledged.len() >= 400 {
            child.kill().unwrap(); // SIGKILL
            break;
        }
    }
    child.wait().unwrap();
    assert!(
        acknowledged.len() >= 400 && acknowledged.len() < n,
        "killed after {} acknowledgements",
        acknowledged.len()
    );
    let store = RedbStore::open(&d.join("node/db.redb")).unwrap();
    let mut stored = BTreeSet::new();
    store
        .for_each(&mut |e| {
            assert!(
                e.record.verify(e.received_at).is_ok(),
                "a stored record does not verify"
            );
            stored.insert(e.subject());
        })
        .unwrap();
    let missing: Vec<_> = acknowledged.difference(&stored).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged records missing after SIGKILL",
        missing.len()
    );
    drop(store);
    // The import can simply be run again and completes.
    let out = ok(d, &args(&files, &["--data-dir", "node", "--batch", "500"]));
    assert_eq!(
        out.lines().filter(|l| l.starts_with("accepted")).count() + stored.len(),
        n
    );
    let _ = (f, Path::new("."));
}
