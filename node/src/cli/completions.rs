//! `gaiamesh completions SHELL` and `gaiamesh man --out DIR`: shell completion scripts and
//! man pages generated from the command line's own definition (`clap_complete`,
//! `clap_mangen`), so they cannot drift from it. Packages install them (docs/operator-guide.md).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::CommandFactory;

use super::Cli;

/// `gaiamesh completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    shell: clap_complete::Shell,
}

/// `gaiamesh man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Directory for the pages: gaiamesh.1 and one per subcommand (gaiamesh-repo-publish.1,
    /// …). Created if missing.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// Prints the completion script for `args.shell` on stdout.
pub(super) fn completions(args: &CompletionsArgs) -> Result<()> {
    let mut cmd = Cli::command();
    // Generated into memory: clap_complete panics on a write error, and a closed pipe
    // (`gaiamesh completions bash | head`) is an error to return, not a bug.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "gaiamesh", &mut script);
    std::io::Write::write_all(&mut std::io::stdout().lock(), &script)
        .context("writing the completion script")?;
    Ok(())
}

/// Writes the man pages into `args.out`; prints how many.
pub(super) fn man(args: &ManArgs) -> Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    clap_mangen::generate_to(Cli::command(), &args.out)
        .with_context(|| format!("writing man pages into {}", args.out.display()))?;
    let pages = std::fs::read_dir(&args.out)?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "1"))
        .count();
    println!("{pages} man pages in {}", args.out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_scripts_name_the_commands() {
        for shell in [clap_complete::Shell::Bash, clap_complete::Shell::Zsh] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "gaiamesh", &mut out);
            let text = String::from_utf8(out).unwrap();
            for word in ["testbed", "exchange", "devnet", "completions"] {
                assert!(text.contains(word), "{shell:?} completion lacks {word}");
            }
        }
    }

    #[test]
    fn man_pages_cover_every_subcommand() {
        let dir = tempfile::tempdir().unwrap();
        man(&ManArgs {
            out: dir.path().to_owned(),
        })
        .unwrap();
        let page = std::fs::read_to_string(dir.path().join("gaiamesh.1")).unwrap();
        assert!(
            page.starts_with(".ie") || page.contains(".TH gaiamesh"),
            "{}",
            &page[..200]
        );
        for sub in [
            "gaiamesh-testbed-run.1",
            "gaiamesh-repo.1",
            "gaiamesh-exchange-fetch.1",
        ] {
            assert!(dir.path().join(sub).exists(), "{sub}");
        }
    }
}
