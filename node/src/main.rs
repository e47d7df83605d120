//! The `gaiamesh` binary.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc returns freed memory to the OS within milliseconds; with glibc's allocator, a
/// burst of large API requests left the daemon's RSS above 1 GB for good (docs/decisions.md,
/// "The daemon's allocator"). Build with `--no-default-features` to compare against glibc.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = gaiamesh_node::cli::Cli::parse();
    match gaiamesh_node::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
