//! Build metadata for `gaiamesh --version`: the git revision and the build profile.
//!
//! The revision comes from `GAIAMESH_GIT_REV` when set (builds from a source archive or in a
//! container without `.git`), else from `git rev-parse`, else "unknown".

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=GAIAMESH_GIT_REV");
    // A new commit changes HEAD's target; a checkout changes HEAD itself.
    for path in ["../.git/HEAD", "../.git/refs/heads", "../.git/packed-refs"] {
        if std::path::Path::new(path).exists() {
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
    // cargo sets PROFILE to `debug` or `release` (custom profiles report the one they inherit).
    let profile = std::env::var("PROFILE").unwrap_or_else(|_| "unknown".to_owned());
    println!("cargo:rustc-env=GAIAMESH_GIT_REV={rev}");
    println!("cargo:rustc-env=GAIAMESH_BUILD_PROFILE={profile}");
}
