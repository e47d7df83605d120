//! Build metadata for `gaiamesh --version`: the git revision and the build profile.
//!
//! The revision comes from `GAIAMESH_GIT_REV` when set (builds from a source archive or in a
//! container without `.git`), else from `git rev-parse`, else "unknown".
//!
//! Optimised builds (release, or dev with the release profile's settings as CI builds the
//! node) for x86_64 Linux (linked by LLD, Rust's default linker there) also lay out
//! the functions a node runs from start-up to idle side by side, in the order of
//! `startup-order.txt` (made by `scripts/startup-order.sh`): an idle node then maps 4 MiB of
//! its code instead of 16 (BENCHMARKS.md, "idle node"). `GAIAMESH_STARTUP_ORDER=0` leaves the
//! layout to the linker. Names the binary lacks (a stale list) are skipped silently.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=GAIAMESH_GIT_REV");
    // A new commit changes HEAD's target; a checkout changes HEAD itself. Asked of git, so
    // that worktrees (whose .git is a file) are followed too.
    for name in ["HEAD", "refs/heads", "packed-refs"] {
        let path = Command::new("git")
            .args(["rev-parse", "--path-format=absolute", "--git-path", name])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
        if let Some(path) = path.filter(|p| std::path::Path::new(p).exists()) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let rev = std::env::var("GAIAMESH_GIT_REV")
        .ok()
        .filter(|r| !r.trim().is_empty())
        .or_else(|| {
            let out = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    // cargo sets PROFILE to `debug` or `release` (custom profiles report the one they
    // inherit). A dev build given the release profile's settings (CI's node build, see
    // `.ci/run`) compiles the same code as a release build and says so.
    let optimised =
        var("OPT_LEVEL") == "3" && std::env::var_os("CARGO_CFG_DEBUG_ASSERTIONS").is_none();
    let profile = match var("PROFILE").as_str() {
        "" => "unknown".to_owned(),
        "release" => "release".to_owned(),
        p if optimised => format!("{p} profile, release settings"),
        p => p.to_owned(),
    };
    println!("cargo:rustc-env=GAIAMESH_GIT_REV={rev}");
    println!("cargo:rustc-env=GAIAMESH_BUILD_PROFILE={profile}");
    startup_order(optimised);
}

/// Passes `startup-order.txt` to the linker of the `gaiamesh` binary in optimised builds
/// (opt-level 3 without debug assertions: release builds, and dev builds given the release
/// profile's settings, whose symbols are the same since dependencies are built alike in
/// both profiles; see the workspace's `Cargo.toml`).
fn startup_order(optimised: bool) {
    println!("cargo:rerun-if-env-changed=GAIAMESH_STARTUP_ORDER");
    println!("cargo:rerun-if-changed=startup-order.txt");
    // LLD (and gold) take a symbol ordering file; GNU ld, the linker of other targets, does not.
    let lld_target = var("CARGO_CFG_TARGET_ARCH") == "x86_64"
        && var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu";
    let path = std::path::Path::new(&var("CARGO_MANIFEST_DIR")).join("startup-order.txt");
    if optimised && lld_target && var("GAIAMESH_STARTUP_ORDER") != "0" && path.exists() {
        println!(
            "cargo:rustc-link-arg-bin=gaiamesh=-Wl,--symbol-ordering-file={}",
            path.display()
        );
        println!("cargo:rustc-link-arg-bin=gaiamesh=-Wl,--no-warn-symbol-ordering");
    }
}

/// An environment variable cargo gives build scripts, or "" when unset.
fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}
