//! # gaiamesh-e2e
//!
//! End-to-end tests that run the real `gaiamesh` binary. [`gaiamesh`] returns a command for
//! it, building the binary first when needed, so the tests work under `cargo test` and
//! `cargo nextest` alike. Tests live in `tests/tests/`, grouped by area.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::OnceLock,
};

/// Path of the `gaiamesh` binary of this workspace, built on first use.
pub fn binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // target/<profile>/deps/<test> → target/<profile>/gaiamesh
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>");
        let bin = profile_dir.join("gaiamesh");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let mut build = Command::new(cargo);
        build.args([
            "build",
            "--quiet",
            "-p",
            "gaiamesh-node",
            "--bin",
            "gaiamesh",
        ]);
        if release {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build");
        assert!(status.success(), "cargo build of gaiamesh failed");
        assert!(bin.exists(), "{} missing after build", bin.display());
        bin
    })
}

/// A `gaiamesh` command.
pub fn gaiamesh() -> Command {
    let mut c = Command::new(binary());
    c.env_remove("GAIAMESH_DATA_DIR");
    c
}

/// Runs `gaiamesh ARGS` in `dir` and returns its output.
pub fn run(dir: &Path, args: &[&str]) -> Output {
    gaiamesh()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("spawn gaiamesh")
}

/// Runs `gaiamesh ARGS` and asserts success; returns stdout.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert!(
        out.status.success(),
        "gaiamesh {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `gaiamesh ARGS`, asserts exit code 1, and returns stdout + stderr.
pub fn fails(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "gaiamesh {args:?} should fail with 1:\n{text}"
    );
    assert!(
        !text.contains("panicked"),
        "gaiamesh {args:?} panicked:\n{text}"
    );
    text
}

/// Path of a shipped example, e.g. `sd/01-nordwolke-de-nuernberg.toml`.
pub fn example(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../config/examples")
        .join(rel)
}
