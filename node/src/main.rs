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

/// The exit code of a command whose reader went away (`gaiamesh audit list | head -1`): what
/// a shell reports for a process ended by SIGPIPE (128 + 13).
const BROKEN_PIPE_EXIT: u8 = 141;

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    let cli = gaiamesh_node::cli::Cli::parse();
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        gaiamesh_node::cli::run(cli)
    })) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) if is_broken_pipe(&e) => ExitCode::from(BROKEN_PIPE_EXIT),
        Ok(Err(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
        Err(payload) if panic_is_broken_pipe(payload.as_ref()) => ExitCode::from(BROKEN_PIPE_EXIT),
        Err(_) => ExitCode::from(101),
    }
}

/// Rust ignores SIGPIPE, so `println!` to a closed pipe panics ("failed printing to stdout:
/// Broken pipe"). Such a panic is not a bug: the hook stays silent for it, the stack unwinds
/// (children are stopped, files closed) and `main` exits like a process killed by SIGPIPE.
/// Every other panic is reported as before.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !panic_is_broken_pipe(info.payload()) {
            default(info);
        }
    }));
}

fn panic_is_broken_pipe(payload: &(dyn std::any::Any + Send)) -> bool {
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    message.starts_with("failed printing to stdout") && message.contains("Broken pipe")
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
