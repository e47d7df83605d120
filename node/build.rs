//! Build metadata for `gaiamesh --version`: the git revision and the build profile.
//!
//! The revision comes from `GAIAMESH_GIT_REV` when set (builds from a source archive or in a
//! container without `.git`), else from `git rev-parse`, else "unknown".

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
    // cargo sets PROFILE to `debug` or `release` (custom profiles report the one they inherit).
    let profile = std::env::var("PROFILE").unwrap_or_else(|_| "unknown".to_owned());
    println!("cargo:rustc-env=GAIAMESH_GIT_REV={rev}");
    println!("cargo:rustc-env=GAIAMESH_BUILD_PROFILE={profile}");
}
