//! An idle node: how soon `gaiamesh run` answers its API after the process starts, and how
//! much memory it holds once idle. No baseline runs here (kubo, the natural one, is a Go
//! program this machine cannot install); the targets are absolute.
//!
//! The node is node0 of a 2-node devnet that ran once (federation, credential, catalogue,
//! configuration on disk), started alone: its peer is down, so it is idle but for redials.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use gaiamesh_node::{api_client::NodeApi, datadir::DataDir};

use crate::report::{Bound, Check, Row};

/// Resident memory of `pid` in MiB: all of it (`VmRSS`) and its anonymous part (`RssAnon`:
/// heap and stacks; the rest is mostly the binary's code pages, shared through the page
/// cache by every process running the same binary).
fn rss_mib(pid: u32) -> Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Result<f64> {
        let kib: f64 = status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no {name} in /proc/PID/status"))?;
        Ok(kib / 1024.0)
    };
    Ok((field("VmRSS:")?, field("RssAnon:")?))
}

/// One start: (ms until the API answered, (RSS, anonymous RSS) MiB after `idle`).
fn start_once(bin: &Path, dir: &Path, idle: Duration) -> Result<(f64, (f64, f64))> {
    let data = DataDir::new(dir);
    let t0 = Instant::now();
    let mut child = Command::new(bin)
        .args(["run", "--data-dir"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let ready = loop {
        if let Ok(api) = NodeApi::of(&data)
            && api.status().is_ok()
        {
            break t0.elapsed();
        }
        if let Some(status) = child.try_wait()? {
            bail!("the node exited before it was ready ({status})");
        }
        if t0.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            bail!("the node was not ready after 30 s");
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    std::thread::sleep(idle);
    let rss = rss_mib(child.id());
    // A graceful stop (SIGTERM), as an operator's service manager would.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.wait();
    Ok((ready.as_secs_f64() * 1e3, rss?))
}

/// The idle-node row over `starts` starts: median ready time, largest idle RSS.
pub fn run(bin: &Path, starts: usize, idle: Duration) -> Result<Vec<Row>> {
    let tmp = tempfile::Builder::new()
        .prefix("gaiamesh-bench-idle-")
        .tempdir()?;
    let root = tmp.path().join("devnet");
    crate::quinn_baseline::two_node_devnet_in(
        bin,
        &root,
        &["--repo-mib", "0", "--exchange-mib", "0"],
    )?;
    let mut ready = Vec::new();
    let (mut rss, mut anon): (f64, f64) = (0.0, 0.0);
    for i in 0..starts {
        let (ms, (mib, anon_mib)) = start_once(bin, &root.join("node0"), idle)?;
        eprintln!(
            "idle node: start {}/{starts}: ready in {ms:.1} ms, {mib:.1} MiB ({anon_mib:.1} MiB anonymous) after {idle:?}",
            i + 1
        );
        ready.push(ms);
        rss = rss.max(mib);
        anon = anon.max(anon_mib);
    }
    drop(tmp);
    ready.sort_by(f64::total_cmp);
    let ms = ready.get(ready.len() / 2).copied().unwrap_or(f64::NAN);
    Ok(vec![Row {
        path: "idle node".into(),
        ours: format!(
            "{rss:.1} MiB RSS ({anon:.1} MiB anonymous), API ready in {ms:.1} ms (median of {starts})"
        ),
        baseline: "none".into(),
        ratio: None,
        checks: vec![
            Check::new("RSS MiB", rss, Bound::AtMost(20.0)),
            Check::new("ready ms", ms, Bound::AtMost(50.0)),
        ],
    }])
}
