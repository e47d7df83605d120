//! The `gaiamesh` binary.

use std::process::ExitCode;

use clap::Parser;

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
