//! Running under a service manager: systemd's readiness and watchdog protocol (`Type=notify`,
//! `WatchdogSec=`), and `SIGHUP` to re-read the configuration where that is safe.
//!
//! Outside systemd (no `NOTIFY_SOCKET`) every notification is a no-op, so the same binary runs
//! under a shell, a container runtime or the testbed.

use std::time::{Duration, Instant};

use gaiamesh_config::NodeConfig;
use sd_notify::NotifyState;
use tracing::{info, warn};

use crate::datadir::DataDir;

/// Sets the daemon's log filter at run time (the CLI installs the tracing subscriber; the
/// daemon only knows how to ask it for another filter).
pub type LogFilter = Box<dyn Fn(&str) -> anyhow::Result<()> + Send + Sync>;

/// Tells the service manager what the daemon is doing.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Notifier;

impl Notifier {
    /// The API answers and the swarm listens.
    pub(crate) fn ready(self, status: &str) {
        send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// A `SIGHUP` is being handled.
    pub(crate) fn reloading(self) {
        send(&[
            NotifyState::Reloading,
            NotifyState::Status("reloading config"),
        ]);
    }

    /// Shutdown has begun (records are being flushed).
    pub(crate) fn stopping(self) {
        send(&[NotifyState::Stopping, NotifyState::Status("shutting down")]);
    }
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        warn!(error = %e, "cannot notify the service manager (NOTIFY_SOCKET)");
    }
}

/// Keep-alives for systemd's watchdog (`WatchdogSec=`), sent from the event loop's tick: a
/// loop that stops turning stops them, and systemd restarts the node.
#[derive(Debug)]
pub(crate) struct Watchdog {
    /// Half the watchdog interval, as sd_watchdog_enabled(3) advises; `None` when disabled.
    every: Option<Duration>,
    last: Option<Instant>,
}

impl Watchdog {
    /// From `WATCHDOG_USEC`/`WATCHDOG_PID` (set by systemd for this process).
    pub(crate) fn from_env() -> Self {
        let every = sd_notify::watchdog_enabled().map(|d| d / 2);
        if let Some(every) = every {
            info!(every = ?every, "systemd watchdog enabled: keep-alives from the event loop");
        }
        Self { every, last: None }
    }

    /// Sends a keep-alive when one is due.
    pub(crate) fn tick(&mut self, now: Instant) {
        let Some(every) = self.every else { return };
        if self
            .last
            .is_none_or(|last| now.duration_since(last) >= every)
        {
            self.last = Some(now);
            send(&[NotifyState::Watchdog]);
        }
    }
}

/// What a reload did with a newer `config.toml`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Reloaded {
    /// Settings applied now.
    pub(crate) applied: Vec<&'static str>,
    /// Settings that changed but take effect at the next start.
    pub(crate) at_restart: Vec<&'static str>,
}

/// Re-reads the configuration on `SIGHUP`. What is safe to change in a running node is
/// applied (the log filter); every other changed section is named as taking effect at the next
/// restart. An invalid file changes nothing: the node keeps its configuration and says why.
pub(crate) fn reload(
    dir: &DataDir,
    current: &mut NodeConfig,
    log: Option<&LogFilter>,
) -> anyhow::Result<Reloaded> {
    let new = dir.config()?;
    let mut reloaded = Reloaded {
        applied: Vec::new(),
        at_restart: Vec::new(),
    };
    if new.log.filter != current.log.filter {
        // RUST_LOG, when set, overrides the file (as it did at start).
        if std::env::var_os("RUST_LOG").is_none()
            && let Some(set) = log
        {
            set(&new.log.filter)?;
            reloaded.applied.push("log.filter");
        } else {
            reloaded.at_restart.push("log.filter");
        }
    }
    let sections: [(&'static str, bool); 6] = [
        ("network", new.network != current.network),
        ("api", new.api != current.api),
        ("directory", new.directory != current.directory),
        ("sd", new.sd != current.sd),
        ("log.format", new.log.format != current.log.format),
        ("repository", new.repository != current.repository),
    ];
    reloaded.at_restart.extend(
        sections
            .iter()
            .filter(|(_, changed)| *changed)
            .map(|(name, _)| *name),
    );
    current.log.filter = new.log.filter;
    Ok(reloaded)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    fn dir_with(config: &str) -> (tempfile::TempDir, DataDir) {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("config.toml"), config).unwrap();
        let dir = DataDir::new(d.path());
        (d, dir)
    }

    #[test]
    fn reload_applies_the_log_filter_and_names_the_rest() {
        let (d, dir) = dir_with("[log]\nfilter = \"info\"\n");
        let mut current = dir.config().unwrap();
        let set_to = Arc::new(Mutex::new(Vec::new()));
        let seen = set_to.clone();
        let log: LogFilter = Box::new(move |f| {
            seen.lock().unwrap().push(f.to_owned());
            Ok(())
        });
        std::fs::write(
            d.path().join("config.toml"),
            "[log]\nfilter = \"gaiamesh=debug\"\n[repository]\nupload_limit_kib_s = 100\n",
        )
        .unwrap();
        let r = reload(&dir, &mut current, Some(&log)).unwrap();
        if std::env::var_os("RUST_LOG").is_none() {
            assert_eq!(r.applied, vec!["log.filter"]);
            assert_eq!(*set_to.lock().unwrap(), vec!["gaiamesh=debug".to_owned()]);
        }
        assert!(r.at_restart.contains(&"repository"), "{r:?}");
        assert_eq!(current.log.filter, "gaiamesh=debug");
        // Unchanged: nothing to do.
        let again = reload(&dir, &mut current, Some(&log)).unwrap();
        assert!(again.applied.is_empty(), "{again:?}");
    }

    #[test]
    fn an_invalid_config_changes_nothing() {
        let (d, dir) = dir_with("[log]\nfilter = \"info\"\n");
        let mut current = dir.config().unwrap();
        let before = current.clone();
        std::fs::write(d.path().join("config.toml"), "[log]\nfliter = 1\n").unwrap();
        let err = reload(&dir, &mut current, None).unwrap_err();
        assert!(format!("{err:#}").contains("fliter"), "{err:#}");
        assert_eq!(current, before);
    }

    #[test]
    fn watchdog_keep_alives_are_paced() {
        let mut w = Watchdog {
            every: Some(Duration::from_secs(5)),
            last: None,
        };
        let t0 = Instant::now();
        w.tick(t0);
        assert_eq!(w.last, Some(t0));
        w.tick(t0 + Duration::from_secs(1));
        assert_eq!(w.last, Some(t0), "not due yet");
        w.tick(t0 + Duration::from_secs(5));
        assert_eq!(w.last, Some(t0 + Duration::from_secs(5)));
        let mut off = Watchdog {
            every: None,
            last: None,
        };
        off.tick(t0);
        assert_eq!(off.last, None);
    }
}
