//! Network namespaces, through `ip netns` (iproute2): create, enter from a thread, run a
//! program inside, and delete — with the processes still in them.

use std::{
    os::fd::AsFd,
    path::PathBuf,
    process::{Command, Stdio},
};

use crate::TestbedError;

/// Every namespace the testbed creates starts with this (`testbed clean` removes them all).
pub const PREFIX: &str = "gmtb";

/// Runs `program ARGS`; the error names the command and what it said.
pub(crate) fn run(program: &str, args: &[&str]) -> Result<String, TestbedError> {
    run_with_input(program, args, None)
}

/// Runs `program ARGS` with `input` on its standard input (none: `/dev/null`).
pub(crate) fn run_with_input(
    program: &str,
    args: &[&str],
    input: Option<&str>,
) -> Result<String, TestbedError> {
    use std::io::Write as _;
    let command = || format!("{program} {}", args.join(" "));
    let failed = |e: std::io::Error| TestbedError::Command {
        command: command(),
        message: if e.kind() == std::io::ErrorKind::NotFound {
            format!("{program} is not installed")
        } else {
            e.to_string()
        },
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(failed)?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(text.as_bytes()).map_err(failed)?;
    }
    let out = child.wait_with_output().map_err(failed)?;
    if !out.status.success() {
        return Err(TestbedError::Command {
            command: command(),
            message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `ip ARGS`.
pub(crate) fn ip(args: &[&str]) -> Result<String, TestbedError> {
    run("ip", args)
}

/// Whether this process may create namespaces: root, and `ip netns` works. The error says
/// which is missing.
pub fn check() -> Result<(), TestbedError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(TestbedError::NotRoot);
    }
    let probe = format!("{PREFIX}-probe-{}", std::process::id());
    ip(&["netns", "add", &probe]).map_err(|e| TestbedError::NoNamespaces(e.to_string()))?;
    let _ = ip(&["netns", "del", &probe]);
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Err(TestbedError::NoNamespaces(
            "/dev/net/tun is missing (modprobe tun)".into(),
        ));
    }
    Ok(())
}

/// One network namespace (deleted by [`Namespace::delete`], or by `testbed clean`).
#[derive(Clone, Debug)]
pub struct Namespace {
    name: String,
}

impl Namespace {
    /// Creates `name` with its loopback up.
    pub fn create(name: &str) -> Result<Self, TestbedError> {
        ip(&["netns", "add", name])?;
        let ns = Self {
            name: name.to_owned(),
        };
        ip(&["-n", name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Caps what leaves `device` in this namespace at `mbps` Mbit/s with a token bucket
    /// (`tc qdisc … tbf`): the node's uplink. The bucket holds 10 ms at that rate (at least
    /// two full-size packets), and packets queue up to 200 ms before they are dropped.
    pub fn cap_uplink(&self, device: &str, mbps: f64) -> Result<(), TestbedError> {
        let rate = format!("{}kbit", (mbps * 1000.0).round() as u64);
        let burst = format!("{}", ((mbps * 1e6 / 8.0 * 0.010) as u64).max(3200));
        run(
            "tc",
            &[
                "-n", &self.name, "qdisc", "replace", "dev", device, "root", "tbf", "rate", &rate,
                "burst", &burst, "latency", "200ms",
            ],
        )
        .map(|_| ())
    }

    /// A namespace that exists already (to delete it).
    pub fn existing(name: &str) -> Self {
        Self {
            name: name.to_owned(),
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn path(&self) -> PathBuf {
        PathBuf::from("/var/run/netns").join(&self.name)
    }

    /// Runs `f` on a thread inside the namespace (its sockets are the namespace's; file
    /// descriptors it creates stay usable from anywhere).
    pub fn enter<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, TestbedError> {
        let path = self.path();
        let name = self.name.clone();
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).map_err(|e| TestbedError::Enter {
                namespace: name.clone(),
                message: e.to_string(),
            })?;
            nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
                TestbedError::Enter {
                    namespace: name,
                    message: e.to_string(),
                }
            })?;
            Ok(f())
        })
        .join()
        .map_err(|_| TestbedError::Enter {
            namespace: self.name.clone(),
            message: "the thread panicked".into(),
        })?
    }

    /// `program` run inside the namespace, killed if this process dies (`setpriv
    /// --pdeathsig KILL`: no node outlives a testbed killed with SIGKILL).
    pub fn command(&self, program: &std::path::Path) -> Command {
        let mut c = Command::new("ip");
        c.args([
            "netns",
            "exec",
            &self.name,
            "setpriv",
            "--pdeathsig",
            "KILL",
        ])
        .arg(program);
        c
    }

    /// Kills what still runs in it and deletes it.
    pub fn delete(&self) -> Result<(), TestbedError> {
        kill_all(&self.name);
        ip(&["netns", "del", &self.name]).map(|_| ())
    }
}

/// SIGKILLs every process in namespace `name`.
fn kill_all(name: &str) {
    if let Ok(pids) = ip(&["netns", "pids", name]) {
        for pid in pids
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// The testbed's namespaces that exist (names starting with [`PREFIX`]).
pub fn leftovers() -> Result<Vec<String>, TestbedError> {
    Ok(ip(&["netns", "list"])?
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(PREFIX))
        .map(str::to_owned)
        .collect())
}

/// Removes every testbed namespace and kills what runs in it; returns their names.
pub fn clean() -> Result<Vec<String>, TestbedError> {
    let names = leftovers()?;
    for n in &names {
        kill_all(n);
        ip(&["netns", "del", n])?;
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_uplink_cap_is_a_token_bucket_at_the_rate_asked() {
        if let Err(e) = check() {
            eprintln!("SKIPPED: needs root and network namespaces: {e}");
            return;
        }
        // "probe" in the name: the e2e test that counts testbed namespaces ignores it.
        let ns = Namespace::create(&format!("{PREFIX}-probe-cap-{}", std::process::id())).unwrap();
        let shown = ip(&[
            "-n",
            ns.name(),
            "link",
            "add",
            "d0",
            "type",
            "veth",
            "peer",
            "name",
            "d1",
        ])
        .and_then(|_| ns.cap_uplink("d0", 20.0))
        .and_then(|()| run("tc", &["-n", ns.name(), "qdisc", "show", "dev", "d0"]));
        ns.delete().unwrap();
        let shown = shown.unwrap();
        assert!(
            shown.contains("tbf") && shown.contains("rate 20Mbit"),
            "{shown}"
        );
        assert!(!leftovers().unwrap().contains(&ns.name().to_owned()));
    }
}
