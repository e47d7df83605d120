//! `gaiamesh repo`: keygen, threshold-signed publishing into a data dir, listing, and the
//! refusals a publisher meets (too few keys, foreign keys, bad names, changed content).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use gaiamesh_e2e::{fails, ok};

fn setup(d: &Path) {
    ok(
        d,
        &[
            "federation",
            "init",
            "--name",
            "Repo Test",
            "--out",
            "fed",
            "--authorities",
            "3",
            "--threshold",
            "2",
        ],
    );
    ok(
        d,
        &[
            "init",
            "--data-dir",
            "node",
            "--genesis",
            "fed/genesis.toml",
        ],
    );
    std::fs::write(d.join("bridge.bin"), vec![7u8; 100_000]).unwrap();
}

fn as_refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn publish_list_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d);
    let keys = [
        "fed/keys/repository-root-0.key",
        "fed/keys/repository-root-1.key",
        "fed/keys/repository-root-2.key",
    ];
    let publish = |extra: &[&str]| {
        let mut args = vec![
            "repo",
            "publish",
            "bridge.bin",
            "--name",
            "identity/oidc-bridge",
            "--version",
            "1.0.0",
            "--category",
            "mandatory",
            "--data-dir",
            "node",
            "--json",
        ];
        args.extend_from_slice(extra);
        args.iter()
            .map(|s| (*s).to_owned())
            .collect::<Vec<String>>()
    };

    // One key of a 2-of-3 repository is not enough (root v1 needs the genesis threshold).
    let one = publish(&["--key", keys[0]]);
    let err = fails(d, &as_refs(&one));
    assert!(err.contains("threshold"), "{err}");

    let two = publish(&["--key", keys[0], "--key", keys[1]]);
    let out: serde_json::Value = serde_json::from_str(&ok(d, &as_refs(&two))).unwrap();
    assert_eq!(out["target"], "identity/oidc-bridge@1.0.0");
    assert_eq!(out["length"], 100_000);
    assert_eq!(out["root_version"], 1);
    assert_eq!(out["targets_version"], 1);
    assert_eq!(
        out["blake3"].as_str().unwrap(),
        blake3::hash(&[7u8; 100_000]).to_hex().as_str()
    );

    // The same key twice counts once.
    let dup = publish(&["--key", keys[0], "--key", keys[0]]);
    let err = fails(d, &as_refs(&dup));
    assert!(err.contains("duplicate"), "{err}");

    // A foreign key counts for nothing.
    ok(d, &["repo", "keygen", "--out", "outsider.key"]);
    let foreign = publish(&["--key", keys[0], "--key", "outsider.key"]);
    assert!(fails(d, &as_refs(&foreign)).contains("valid signature"));

    // The same name and version with other content is refused.
    std::fs::write(d.join("bridge.bin"), b"other bytes").unwrap();
    let err = fails(d, &as_refs(&two));
    assert!(err.contains("already released"), "{err}");

    // Path traversal in a name is refused before anything is signed.
    let err = fails(
        d,
        &[
            "repo",
            "publish",
            "bridge.bin",
            "--name",
            "../../etc",
            "--version",
            "1",
            "--key",
            keys[0],
            "--data-dir",
            "node",
        ],
    );
    assert!(err.contains("not allowed"), "{err}");

    // A second component: targets v2 holds both, listed with their local state.
    std::fs::write(d.join("certs.pem"), b"-----BEGIN CERTIFICATE-----").unwrap();
    ok(
        d,
        &[
            "repo",
            "publish",
            "certs.pem",
            "--name",
            "certs/eu-trust-list",
            "--version",
            "2026.12",
            "--key",
            keys[1],
            "--key",
            keys[2],
            "--data-dir",
            "node",
        ],
    );
    let list: serde_json::Value =
        serde_json::from_str(&ok(d, &["repo", "list", "--data-dir", "node", "--json"])).unwrap();
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{list}");
    assert!(rows.iter().all(|r| r["local"] == "complete"), "{list}");
    assert!(rows.iter().any(|r| r["category"] == "optional"));
    let text = ok(d, &["repo", "list", "--data-dir", "node"]);
    assert!(
        text.contains("targets v2") && text.contains("valid"),
        "{text}"
    );

    // A tampered repository.bundle is refused on load, not silently used.
    let path = d.join("node/repository.bundle");
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let err = fails(d, &["repo", "list", "--data-dir", "node"]);
    assert!(err.contains("does not verify"), "{err}");
}

#[test]
fn keys_rotate_and_only_the_new_ones_sign_afterwards() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d);
    let old = [
        "fed/keys/repository-root-0.key",
        "fed/keys/repository-root-1.key",
    ];
    let publish = |file: &str, version: &str, keys: &[&str]| {
        let mut args = vec![
            "repo",
            "publish",
            file,
            "--name",
            "identity/oidc-bridge",
            "--version",
            version,
            "--data-dir",
            "node",
            "--json",
        ];
        for k in keys {
            args.extend_from_slice(&["--key", k]);
        }
        gaiamesh_e2e::run(d, &args)
    };
    assert!(publish("bridge.bin", "1.0.0", &old).status.success());
    let new_pub: Vec<String> = ["new-0.key", "new-1.key", "new-2.key"]
        .iter()
        .map(|k| ok(d, &["repo", "keygen", "--out", k]).trim().to_owned())
        .collect();
    let rotate = |signers: &[&str]| {
        let mut args = vec![
            "repo",
            "rotate",
            "--threshold",
            "2",
            "--data-dir",
            "node",
            "--json",
        ];
        for k in &new_pub {
            args.extend_from_slice(&["--new-key", k]);
        }
        for k in signers {
            args.extend_from_slice(&["--key", k]);
        }
        args.iter()
            .map(|s| (*s).to_owned())
            .collect::<Vec<String>>()
    };
    // The old keys alone cannot hand the repository to new keys, nor the new keys alone
    // take it.
    let err = fails(d, &as_refs(&rotate(&old)));
    assert!(err.contains("threshold"), "{err}");
    let err = fails(d, &as_refs(&rotate(&["new-0.key", "new-1.key"])));
    assert!(err.contains("threshold"), "{err}");
    // A bad new key is named.
    let err = fails(
        d,
        &[
            "repo",
            "rotate",
            "--new-key",
            "nonsense",
            "--threshold",
            "1",
            "--key",
            old[0],
            "--data-dir",
            "node",
        ],
    );
    assert!(err.contains("nonsense"), "{err}");
    // Both thresholds: root v2, and the release re-signed with the new keys.
    let out: serde_json::Value = serde_json::from_str(&ok(
        d,
        &as_refs(&rotate(&[old[0], old[1], "new-0.key", "new-2.key"])),
    ))
    .unwrap();
    assert_eq!(out["root_version"], 2, "{out}");
    assert_eq!(out["targets_version"], 2, "{out}");
    let list = ok(d, &["repo", "list", "--data-dir", "node", "--json"]);
    assert!(list.contains("identity/oidc-bridge@1.0.0"), "{list}");
    // From now on the old keys are refused and the new ones sign.
    std::fs::write(d.join("bridge2.bin"), vec![8u8; 5000]).unwrap();
    let refused = publish("bridge2.bin", "2.0.0", &old);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("threshold"));
    let accepted = publish("bridge2.bin", "2.0.0", &["new-1.key", "new-2.key"]);
    assert!(
        accepted.status.success(),
        "{}",
        String::from_utf8_lossy(&accepted.stderr)
    );
    let out: serde_json::Value = serde_json::from_slice(&accepted.stdout).unwrap();
    assert_eq!(out["root_version"], 2);
}
