//! The `gaiamesh` binary.

use std::process::ExitCode;

use clap::Parser;

/// jemalloc with its background thread returns freed memory to the OS within seconds, also
/// while the threads that freed it sit idle; glibc's allocator kept a burst of API clients'
/// memory for good (docs/decisions.md, "The daemon's allocator"). Build with
/// `--no-default-features` to compare against glibc.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
