//! The README's offline quick start, run as a newcomer would, and every tampering refused
//! with its cause.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{fs, path::Path};

use gaiamesh_e2e::{example, fails, ok, run};

struct Setup {
    dir: tempfile::TempDir,
    peer: String,
}

impl Setup {
    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// federation init → init → admit → init with credential → attest → sign.
fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(
        d,
        &[
            "federation",
            "init",
            "--name",
            "Test Federation",
            "--out",
            "fed",
            "--authorities",
            "3",
            "--threshold",
            "2",
        ],
    );
    let peer = ok(
        d,
        &[
            "init",
            "--data-dir",
            "node",
            "--genesis",
            "fed/genesis.toml",
        ],
    )
    .trim()
    .to_owned();
    assert!(peer.starts_with("12D3KooW"), "{peer}");
    let sd = example("sd/01-nordwolke-de-nuernberg.toml");
    fs::copy(&sd, d.join("sd.toml")).unwrap();
    ok(
        d,
        &[
            "federation",
            "admit",
            "--federation",
            "fed",
            "--peer",
            &peer,
            "--participant",
            "sd.toml",
            "--out",
            "node.cred",
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
            "--credential",
            "node.cred",
        ],
    );
    ok(
        d,
        &[
            "federation",
            "attest",
            "--federation",
            "fed",
            "--peer",
            &peer,
            "--scheme",
            "C5",
            "--out",
            "c5.att",
        ],
    );
    ok(
        d,
        &[
            "sd",
            "sign",
            "sd.toml",
            "--data-dir",
            "node",
            "--out",
            "node.sd",
            "--attestation",
            "c5.att",
        ],
    );
    Setup { dir, peer }
}

#[test]
fn newcomer_flow_signs_and_verifies() {
    let s = setup();
    let d = s.path();
    let human = ok(
        d,
        &["sd", "verify", "node.sd", "--genesis", "fed/genesis.toml"],
    );
    assert!(
        human.contains(&format!("subject      {}", s.peer)),
        "{human}"
    );
    assert!(
        human.contains("membership   member: Nordwolke GmbH (provider)"),
        "{human}"
    );
    assert!(
        human.contains("s3-eu-central: C5 (basic+additional) attested by"),
        "{human}"
    );
    assert!(
        human.contains("s3-eu-central: ISO27001 self-declared"),
        "{human}"
    );
    let json: serde_json::Value = serde_json::from_str(&ok(
        d,
        &[
            "sd",
            "verify",
            "node.sd",
            "--genesis",
            "fed/genesis.toml",
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(json["valid"], true);
    assert_eq!(json["subject"], s.peer.as_str());
    assert_eq!(json["membership"]["status"], "member");
    assert_eq!(json["certifications"][0]["scheme"], "C5");
    assert!(json["certifications"][0]["attested_by"].is_string());
    assert!(json["certifications"][1]["attested_by"].is_null());
    assert!(json["seq"].as_u64().unwrap() > 0);
    // A second signature has a higher seq.
    ok(
        d,
        &[
            "sd",
            "sign",
            "sd.toml",
            "--data-dir",
            "node",
            "--out",
            "node2.sd",
        ],
    );
    let json2: serde_json::Value = serde_json::from_str(&ok(
        d,
        &["sd", "verify", "node2.sd", "--genesis", "fed", "--json"],
    ))
    .unwrap();
    assert!(json2["seq"].as_u64() > json["seq"].as_u64());
    let text = fails(
        d,
        &[
            "sd",
            "sign",
            "sd.toml",
            "--data-dir",
            "node",
            "--out",
            "x.sd",
            "--seq",
            "5",
        ],
    );
    assert!(text.contains("is not above"), "{text}");
}

#[test]
fn every_example_document_checks_clean() {
    let d = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(example("sd")).unwrap() {
        let path = entry.unwrap().path();
        let out = ok(d.path(), &["sd", "check", path.to_str().unwrap()]);
        assert!(out.contains("valid"), "{out}");
    }
}

#[test]
fn check_lists_every_error_with_its_path() {
    let d = tempfile::tempdir().unwrap();
    let text = fs::read_to_string(example("sd/01-nordwolke-de-nuernberg.toml"))
        .unwrap()
        .replacen("currency = \"EUR\"", "currency = \"EURO\"", 1)
        .replacen(
            "country = \"DE\", subdivision = \"DE-BY\", city = \"Nürnberg\" }",
            "country = \"DX\" }",
            1,
        );
    fs::write(d.path().join("bad.toml"), text).unwrap();
    let out = fails(d.path(), &["sd", "check", "bad.toml"]);
    assert!(
        out.contains(
            r#"participant.headquarters.country: "DX" is not an ISO 3166-1 alpha-2 country code"#
        ),
        "{out}"
    );
    assert!(
        out.contains(r#"services[0].price.currency: "EURO" is not an ISO 4217 code"#),
        "{out}"
    );
    assert!(out.contains("2 problem(s)"), "{out}");
    let json: serde_json::Value = serde_json::from_str(
        &String::from_utf8(run(d.path(), &["sd", "check", "bad.toml", "--json"]).stdout).unwrap(),
    )
    .unwrap();
    assert_eq!(json["valid"], false);
    assert_eq!(json["errors"].as_array().unwrap().len(), 2);
    // Not TOML at all, a binary file, an empty file: clear errors, no panic.
    fs::write(d.path().join("junk.toml"), [0xff, 0xfe, 0x00, 0x01]).unwrap();
    fails(d.path(), &["sd", "check", "junk.toml"]);
    fs::write(d.path().join("empty.toml"), "").unwrap();
    let out = fails(d.path(), &["sd", "check", "empty.toml"]);
    assert!(out.contains("participant"), "{out}");
    fails(d.path(), &["sd", "check", "missing.toml"]);
}

#[test]
fn tampered_records_are_refused_with_the_cause() {
    let s = setup();
    let d = s.path();
    let bytes = fs::read(d.join("node.sd")).unwrap();
    // Flip one byte inside the document (the legal name): the signature breaks.
    let pos = bytes.windows(9).position(|w| w == b"Nordwolke").unwrap();
    let mut t = bytes.clone();
    t[pos] = b'M';
    fs::write(d.join("tampered.sd"), &t).unwrap();
    let out = fails(
        d,
        &[
            "sd",
            "verify",
            "tampered.sd",
            "--genesis",
            "fed/genesis.toml",
        ],
    );
    assert!(out.contains("signature does not verify"), "{out}");
    // Truncated and oversize files.
    fs::write(d.join("short.sd"), &bytes[..bytes.len() / 2]).unwrap();
    let out = fails(
        d,
        &["sd", "verify", "short.sd", "--genesis", "fed/genesis.toml"],
    );
    assert!(out.contains("malformed"), "{out}");
    fs::write(d.join("huge.sd"), vec![0u8; 40 * 1024]).unwrap();
    let out = fails(
        d,
        &["sd", "verify", "huge.sd", "--genesis", "fed/genesis.toml"],
    );
    assert!(out.contains("more than the 32768"), "{out}");
    // Expired: checked a week and a bit later.
    let out = fails(
        d,
        &[
            "sd",
            "verify",
            "node.sd",
            "--genesis",
            "fed/genesis.toml",
            "--at",
            "2099-01-01T00:00:00Z",
        ],
    );
    assert!(out.contains("expired at"), "{out}");
}

#[test]
fn another_federation_and_non_members_are_refused() {
    let s = setup();
    let d = s.path();
    ok(
        d,
        &["federation", "init", "--name", "Other", "--out", "other"],
    );
    let out = fails(
        d,
        &["sd", "verify", "node.sd", "--genesis", "other/genesis.toml"],
    );
    assert!(out.contains("published in federation"), "{out}");
    // A node that was never admitted cannot even sign a record the federation would accept.
    ok(
        d,
        &[
            "init",
            "--data-dir",
            "outsider",
            "--genesis",
            "fed/genesis.toml",
        ],
    );
    let out = fails(
        d,
        &[
            "sd",
            "sign",
            "sd.toml",
            "--data-dir",
            "outsider",
            "--out",
            "o.sd",
        ],
    );
    assert!(
        out.contains("is not an admitted member: no membership credential"),
        "{out}"
    );
    // A credential for someone else is refused at init.
    let out = fails(
        d,
        &[
            "init",
            "--data-dir",
            "outsider",
            "--genesis",
            "fed/genesis.toml",
            "--credential",
            "node.cred",
        ],
    );
    assert!(out.contains("does not bind peer"), "{out}");
}

#[test]
fn revocation_takes_effect_and_cannot_be_undone_by_an_old_list() {
    let s = setup();
    let d = s.path();
    ok(
        d,
        &[
            "federation",
            "revoke",
            "--federation",
            "fed",
            "--peer",
            &s.peer,
            "--reason",
            "contract ended",
        ],
    );
    let out = fails(d, &["sd", "verify", "node.sd", "--genesis", "fed"]);
    assert!(out.contains("was revoked: contract ended"), "{out}");
    let out = fails(
        d,
        &[
            "federation",
            "admit",
            "--federation",
            "fed",
            "--peer",
            &s.peer,
            "--participant",
            "sd.toml",
            "--out",
            "again.cred",
        ],
    );
    assert!(out.contains("was revoked"), "{out}");
    // Version 2 (revoking someone else) still keeps the first revocation.
    let other = ok(
        d,
        &["init", "--data-dir", "n2", "--genesis", "fed/genesis.toml"],
    )
    .trim()
    .to_owned();
    let v1 = fs::read_to_string(d.join("fed/revocations.toml")).unwrap();
    ok(
        d,
        &[
            "federation",
            "revoke",
            "--federation",
            "fed",
            "--peer",
            &other,
        ],
    );
    fs::write(d.join("old.toml"), v1).unwrap();
    let out = fails(
        d,
        &[
            "sd",
            "verify",
            "node.sd",
            "--genesis",
            "fed",
            "--revocations",
            "old.toml",
        ],
    );
    assert!(
        out.contains("is not newer than the current version 2"),
        "{out}"
    );
}

#[test]
fn credentials_below_threshold_or_with_duplicate_signers_are_refused() {
    let s = setup();
    let d = s.path();
    // Drop one of the two signatures from the credential file.
    let cred = fs::read_to_string(d.join("node.cred")).unwrap();
    let first = cred.find("[[signatures]]").unwrap();
    let second = cred[first + 1..].find("[[signatures]]").unwrap() + first + 1;
    let k_minus_one = format!("{}{}", &cred[..first], &cred[second..]);
    fs::write(d.join("weak.cred"), &k_minus_one).unwrap();
    let out = fails(
        d,
        &[
            "init",
            "--data-dir",
            "node",
            "--genesis",
            "fed/genesis.toml",
            "--credential",
            "weak.cred",
        ],
    );
    assert!(
        out.contains("1 valid signature(s) from distinct authority keys, 2 required"),
        "{out}"
    );
    // The same signer twice.
    let dup = format!("{}{}", &cred[..second], &cred[first..second]);
    fs::write(d.join("dup.cred"), &dup).unwrap();
    let out = fails(
        d,
        &[
            "init",
            "--data-dir",
            "node",
            "--genesis",
            "fed/genesis.toml",
            "--credential",
            "dup.cred",
        ],
    );
    assert!(out.contains("1 duplicate signer(s) counted once"), "{out}");
}

#[test]
fn keys_are_private_and_usage_errors_exit_2() {
    let s = setup();
    let d = s.path();
    use std::os::unix::fs::PermissionsExt;
    for key in ["node/key", "fed/keys/authority-0.key"] {
        let mode = fs::metadata(d.join(key)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{key}");
    }
    assert_eq!(run(d, &["sd", "sign"]).status.code(), Some(2));
    assert_eq!(run(d, &["no-such-command"]).status.code(), Some(2));
    assert_eq!(
        run(
            d,
            &[
                "federation",
                "admit",
                "--federation",
                "fed",
                "--peer",
                "not-a-peer",
                "--participant",
                "x",
                "--out",
                "y"
            ]
        )
        .status
        .code(),
        Some(2)
    );
    let out = fails(
        d,
        &["federation", "init", "--name", "again", "--out", "fed"],
    );
    assert!(out.contains("refusing to overwrite"), "{out}");
    let help = String::from_utf8(run(d, &["sd", "sign", "--help"]).stdout).unwrap();
    assert!(
        help.contains("--data-dir") && help.contains("--seq"),
        "{help}"
    );
}

/// A reader that goes away (`gaiamesh … | head -1`) ends the command like SIGPIPE would
/// (exit 141), with no panic message — for output printed line by line and for output
/// written in one piece (completion scripts).
#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let d = tempfile::tempdir().unwrap();
    let sd = example("sd").join("01-nordwolke-de-nuernberg.toml");
    assert!(sd.exists(), "{}", sd.display());
    for args in [
        vec!["sd", "check", sd.to_str().unwrap()],
        vec!["completions", "bash"],
    ] {
        // The read end is closed before the command starts: its first write fails.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = gaiamesh_e2e::gaiamesh()
            .current_dir(d.path())
            .args(&args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(141), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// `--version` names the git revision and the build profile.
#[test]
fn version_names_revision_and_profile() {
    let d = tempfile::tempdir().unwrap();
    let out = ok(d.path(), &["--version"]);
    assert!(out.starts_with("gaiamesh 0."), "{out}");
    assert!(out.contains("(rev "), "{out}");
    assert!(out.contains("debug") || out.contains("release"), "{out}");
}

/// `init --key` installs a key made ahead of time, and never replaces a node's key.
#[test]
fn init_takes_a_prepared_key_and_keeps_an_existing_one() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let a = ok(p, &["init", "--data-dir", "a"]).trim().to_owned();
    let b = ok(p, &["init", "--data-dir", "b", "--key", "a/key"])
        .trim()
        .to_owned();
    assert_eq!(a, b, "the prepared key's PeerId");
    // Again with the same key: nothing changes.
    ok(p, &["init", "--data-dir", "b", "--key", "a/key"]);
    let c = ok(p, &["init", "--data-dir", "c"]).trim().to_owned();
    let out = fails(p, &["init", "--data-dir", "b", "--key", "c/key"]);
    assert!(
        out.contains("already holds the key") && out.contains(&c),
        "{out}"
    );
    let out = fails(p, &["init", "--data-dir", "e", "--key", "missing.key"]);
    assert!(out.contains("missing.key"), "{out}");
    assert!(!p.join("e").join("key").exists());
}
