//! Progress bars on stderr for long CLI work (repository and exchange fetches, simulator
//! runs, devnet start-up), drawn by indicatif. Quiet when stderr is not a terminal (logs,
//! CI, pipes) and when the command prints `--json` or was asked to be `--quiet`: the final
//! summary says what happened either way.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// One progress bar.
pub(crate) struct ProgressLine {
    bar: ProgressBar,
}

impl ProgressLine {
    fn with(len: u64, template: &str, quiet: bool) -> Self {
        let target = if quiet || !std::io::stderr().is_terminal() {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr_with_hz(8)
        };
        let bar = ProgressBar::with_draw_target(Some(len), target);
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("#>-"));
        }
        Self { bar }
    }

    /// Bytes of a transfer: `LABEL [####>---] 3.2 MiB/8.0 MiB 41 MiB/s NOTE`.
    pub(crate) fn bytes(quiet: bool) -> Self {
        Self::with(
            0,
            "  {prefix} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {msg}",
            quiet,
        )
    }

    /// A share of work done, in thousandths (the simulator's simulated time).
    pub(crate) fn fraction(quiet: bool) -> Self {
        Self::with(1000, "[{bar:40}] {percent:>3}%  {msg}", quiet)
    }

    /// `len` steps (nodes started, nodes converged).
    pub(crate) fn count(len: u64, label: &str, quiet: bool) -> Self {
        let p = Self::with(len, "  {prefix} [{bar:30}] {pos}/{len} {msg}", quiet);
        p.bar.set_prefix(label.to_owned());
        p
    }

    /// Shows `done` of `total` bytes for `label` with a free-form `note`.
    pub(crate) fn draw(&mut self, label: &str, note: &str, done: u64, total: u64) {
        self.bar.set_prefix(label.to_owned());
        self.bar.set_length(total);
        self.bar.set_position(done.min(total));
        self.bar.set_message(note.to_owned());
    }

    /// Sets the share done (0.0 to 1.0) and the message.
    pub(crate) fn set_fraction(&self, f: f64, note: String) {
        self.bar.set_position((f.clamp(0.0, 1.0) * 1000.0) as u64);
        self.bar.set_message(note);
    }

    /// Sets the steps done.
    pub(crate) fn set_count(&self, done: u64) {
        self.bar.set_position(done);
    }

    /// Ends the bar, leaving its last state on the terminal.
    pub(crate) fn done(&self) {
        self.bar.finish();
    }

    /// Whether nothing is drawn.
    pub(crate) fn is_hidden(&self) -> bool {
        self.bar.is_hidden()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_bars_draw_nothing_and_positions_are_clamped() {
        let mut p = ProgressLine::bytes(true);
        assert!(p.is_hidden());
        p.draw("x", "note", 10, 5);
        assert_eq!(p.bar.position(), 5, "never past the total");
        let f = ProgressLine::fraction(true);
        f.set_fraction(1.7, String::new());
        assert_eq!(f.bar.position(), 1000);
        let c = ProgressLine::count(4, "nodes", true);
        c.set_count(3);
        assert_eq!(c.bar.position(), 3);
        assert!(c.is_hidden());
    }
}
