//! `gaiamesh asset add/list/remove` on a data dir: the asset is hashed, registered, and
//! appears in the self-description as a `data.resource` service with its policy summary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use gaiamesh_e2e::{example, fails, ok};

/// `gaiamesh asset add data.csv --id ID --policy POLICY --data-dir node [EXTRA…]`.
fn add(p: &Path, id: &str, policy: &str, extra: &[&str], expect_ok: bool) -> String {
    let mut args = vec![
        "asset",
        "add",
        "data.csv",
        "--id",
        id,
        "--policy",
        policy,
        "--data-dir",
        "node",
    ];
    args.extend_from_slice(extra);
    if expect_ok {
        ok(p, &args)
    } else {
        fails(p, &args)
    }
}

#[test]
fn assets_are_registered_listed_and_removed_with_their_service() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    ok(
        p,
        &["federation", "init", "--name", "Asset Test", "--out", "fed"],
    );
    ok(
        p,
        &[
            "init",
            "--data-dir",
            "node",
            "--genesis",
            "fed/genesis.toml",
        ],
    );
    // No self-description yet: a clear refusal, nothing registered.
    std::fs::write(p.join("data.csv"), b"station,temp\nFRA,3.5\n").unwrap();
    std::fs::write(
        p.join("policy.toml"),
        "purposes = [\"research\"]\njurisdiction = [\"EU\"]\nonward_transfer = false\n",
    )
    .unwrap();
    let text = add(p, "weather", "policy.toml", &[], false);
    assert!(text.contains("no self-description document"), "{text}");
    std::fs::copy(
        example("sd/01-nordwolke-de-nuernberg.toml"),
        p.join("node/sd.toml"),
    )
    .unwrap();

    let out: serde_json::Value =
        serde_json::from_str(&add(p, "weather", "policy.toml", &["--json"], true)).unwrap();
    assert_eq!(out["id"], "weather");
    assert_eq!(out["size"], 21);
    assert_eq!(
        out["files"][0]["blake3"],
        blake3::hash(b"station,temp\nFRA,3.5\n")
            .to_hex()
            .to_string()
    );
    let sd = std::fs::read_to_string(p.join("node/sd.toml")).unwrap();
    assert!(
        sd.contains("id = \"weather\"") && sd.contains("kind = \"data.resource\""),
        "{sd}"
    );
    assert!(
        sd.contains("purposes: research; jurisdiction: EU; no onward transfer"),
        "{sd}"
    );
    ok(p, &["sd", "check", "node/sd.toml"]);

    let list: serde_json::Value =
        serde_json::from_str(&ok(p, &["asset", "list", "--data-dir", "node", "--json"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let text = add(p, "weather", "policy.toml", &[], false);
    assert!(text.contains("exists"), "{text}");
    for (policy, reason) in [
        (
            "jurisdiction = [\"XX\"]\npurpose = 1\n",
            "unknown field `purpose`",
        ),
        ("jurisdiction = [\"XX\"]\n", "jurisdiction[0]: \"XX\""),
    ] {
        std::fs::write(p.join("bad.toml"), policy).unwrap();
        let text = add(p, "w2", "bad.toml", &[], false);
        assert!(text.contains(reason), "{text}");
    }

    ok(p, &["asset", "remove", "weather", "--data-dir", "node"]);
    let sd = std::fs::read_to_string(p.join("node/sd.toml")).unwrap();
    assert!(!sd.contains("id = \"weather\""), "{sd}");
    let text = fails(p, &["asset", "remove", "weather", "--data-dir", "node"]);
    assert!(text.contains("no asset \"weather\""), "{text}");
}
