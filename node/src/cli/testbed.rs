//! `gaiamesh testbed run|clean`: a federation of real nodes, each in a network namespace of
//! its own, joined through the userspace router of `gaiamesh-testbed` (European latencies,
//! jitter, loss, partitions), driven through a scenario's steps and measured. See
//! docs/testbed.md.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use gaiamesh_testbed::{
    link::LinkModel,
    nat as natns,
    netns::{self, Namespace},
    router::{self, Router},
    scenario::{Scenario, Step},
};

use super::devnet::{create_node, federation, me, path_str};
use crate::{api_client::NodeApi, daemon::Status, datadir::DataDir};

mod churn;
mod compare;
mod fetch;
mod flood;
mod measure;
mod nat;
mod output;
mod release;

use measure::{Heal, PublishStep};

/// `gaiamesh testbed` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum TestbedCommand {
    /// Run a scenario (config/examples/testbed/): one network namespace per node, the real
    /// daemon in each, links emulated in user space. Writes summary.json, CSVs and plots
    /// into --out. Needs root. Everything it creates is removed on exit, on Ctrl-C and on
    /// a crash (node processes die with it; `testbed clean` removes namespaces a SIGKILL
    /// left behind).
    Run(RunArgs),
    /// Remove every testbed namespace (`gmtb-*`) and kill what runs in them.
    Clean,
    /// Hold a testbed run against simulator runs of the same scenario: propagation p50/p99
    /// and per-update convergence (from simulator runs without faults), convergence after
    /// the heal (from runs with one). Prints a Markdown table with the ratios.
    Compare(CompareArgs),
}

/// Arguments of `gaiamesh testbed compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// A `testbed run --out` directory.
    testbed: PathBuf,
    /// `sim run --out` directories of the same scenario (e.g. one without faults, one with
    /// the partition and heal).
    #[arg(required = true)]
    sim: Vec<PathBuf>,
}

/// Arguments of `gaiamesh testbed run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The scenario file (TOML).
    scenario: PathBuf,
    /// Output directory: node data dirs, logs, summary.json, CSVs, plots. Must be empty or
    /// absent.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

pub(super) fn run(cmd: TestbedCommand) -> Result<()> {
    match cmd {
        TestbedCommand::Run(a) => run_scenario(&a),
        TestbedCommand::Compare(a) => {
            let sims: Vec<&Path> = a.sim.iter().map(PathBuf::as_path).collect();
            print!("{}", compare::table(&compare::rows(&a.testbed, &sims)?));
            Ok(())
        }
        TestbedCommand::Clean => {
            netns::check()?;
            let removed = netns::clean()?;
            if removed.is_empty() {
                println!("no testbed namespaces");
            } else {
                println!("removed {}: {}", removed.len(), removed.join(", "));
            }
            Ok(())
        }
    }
}

/// One node of the bed.
struct Member {
    /// Where the node runs.
    ns: Namespace,
    /// A node behind NAT: the gateway namespace that holds its link to the router.
    gateway: Option<Namespace>,
    dir: PathBuf,
    child: Option<Child>,
}

/// Everything the run created; dropping it stops the nodes and removes the namespaces.
struct Bed {
    members: Vec<Member>,
    router: Option<Router>,
    exe: PathBuf,
}

impl Bed {
    /// Runs `f` with node `i`'s API from inside its namespace (the API listens on the
    /// namespace's loopback).
    fn on<T: Send + 'static>(
        &self,
        i: usize,
        f: impl FnOnce(&NodeApi) -> Result<T, crate::api_client::ApiClientError> + Send + 'static,
    ) -> Result<T> {
        let dir = DataDir::new(&self.members[i].dir);
        Ok(self.members[i]
            .ns
            .enter(move || NodeApi::of(&dir).and_then(|api| f(&api)))??)
    }

    /// `GET path` on node `i`, decoded as `T`.
    fn get<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        i: usize,
        path: &str,
    ) -> Result<T> {
        let path = path.to_owned();
        self.on(i, move |api| api.get(&path))
    }

    /// `GET /api/v1/status` on node `i`.
    fn status(&self, i: usize) -> Result<Status> {
        self.on(i, |api| api.status())
    }

    fn start(&mut self, i: usize) -> Result<()> {
        let m = &mut self.members[i];
        let _ = std::fs::remove_file(m.dir.join("api.json"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(m.dir.join("node.log"))?;
        let child =
            m.ns.command(&self.exe)
                .args(["run", "--data-dir", path_str(&m.dir)?])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .with_context(|| format!("starting node{i} in {}", m.ns.name()))?;
        m.child = Some(child);
        Ok(())
    }

    fn wait_api(&self, i: usize, timeout: Duration) -> Result<Status> {
        let start = Instant::now();
        loop {
            if let Ok(s) = self.status(i) {
                return Ok(s);
            }
            if start.elapsed() > timeout {
                bail!(
                    "node{i} did not start; see {}",
                    self.members[i].dir.join("node.log").display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn up(&self, i: usize) -> bool {
        self.members[i].child.is_some()
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        for m in &mut self.members {
            if let Some(c) = &m.child {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &c.id().to_string()])
                    .status();
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for m in &mut self.members {
            if let Some(mut c) = m.child.take() {
                while Instant::now() < deadline && !matches!(c.try_wait(), Ok(Some(_))) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        self.router = None;
        for m in &self.members {
            for ns in std::iter::once(&m.ns).chain(&m.gateway) {
                if let Err(e) = ns.delete() {
                    eprintln!("testbed: {e}");
                }
            }
        }
    }
}

fn prefix() -> String {
    format!("{}-{}", netns::PREFIX, std::process::id())
}

fn run_scenario(a: &RunArgs) -> Result<()> {
    let sc = Scenario::load(&a.scenario)?;
    netns::check()?;
    let base = a.scenario.parent().unwrap_or(Path::new("."));
    let matrix = sc.matrix(base)?;
    let regions = sc.regions(&matrix)?;
    if a.out.exists() && std::fs::read_dir(&a.out)?.next().is_some() {
        bail!(
            "{} exists and is not empty; choose another --out",
            a.out.display()
        );
    }
    std::fs::create_dir_all(&a.out)?;
    let out = std::fs::canonicalize(&a.out)?;
    let n = sc.nodes;
    let t0 = Instant::now();

    // Ctrl-C or SIGTERM: remove this run's namespaces (the nodes die with this process).
    let own = prefix();
    let _ = ctrlc::set_handler(move || {
        eprintln!("\ntestbed: interrupted; removing the namespaces");
        if let Ok(names) = netns::leftovers() {
            for name in names.iter().filter(|x| x.starts_with(&own)) {
                let _ = Namespace::existing(name).delete();
            }
        }
        std::process::exit(130);
    });

    let (fed, genesis, _) = federation(&out, &format!("testbed {}", sc.name))?;
    let mut peers = Vec::with_capacity(n);
    let mut members = Vec::with_capacity(n);
    let mut bed_namespaces = Vec::with_capacity(n);
    for i in 0..n {
        let dir = out.join(format!("node{i}"));
        peers.push(create_node(&dir, &fed, &genesis, i)?);
        members.push(dir);
    }
    for a in &sc.assets {
        fetch::offer(&members[a.node], a)?;
    }
    eprintln!("created {n} admitted nodes in {:.1?}", t0.elapsed());
    // A node behind NAT runs in a namespace of its own behind its gateway's.
    for i in 0..n {
        let link = Namespace::create(&format!("{}-{i}", prefix()))?;
        let nat = sc.nat.behind.contains(&i);
        bed_namespaces.push(if nat {
            (
                Namespace::create(&format!("{}-{i}-nat", prefix()))?,
                Some(link),
            )
        } else {
            (link, None)
        });
    }
    let mut bed = Bed {
        members: members
            .into_iter()
            .zip(bed_namespaces)
            .map(|(dir, (ns, gateway))| Member {
                ns,
                gateway,
                dir,
                child: None,
            })
            .collect(),
        router: None,
        exe: me()?,
    };
    let mut devices = Vec::with_capacity(n);
    for (i, m) in bed.members.iter().enumerate() {
        let link = m.gateway.as_ref().unwrap_or(&m.ns);
        devices.push(link.enter(move || router::device(i))??);
        if let Some(mbps) = sc.links.up_mbps {
            link.cap_uplink(router::DEVICE, mbps)?;
        }
        if let Some(gw) = &m.gateway {
            natns::put_behind(&m.ns, gw, i, router::DEVICE)?;
        }
    }
    if !sc.nat.behind.is_empty() {
        eprintln!(
            "nodes {:?} behind NAT (masquerade, nothing unsolicited in), relays {:?}",
            sc.nat.behind,
            sc.nat.relays()
        );
    }
    let model = LinkModel::new(&matrix.rtt_ms, &regions, sc.links.jitter, sc.links.loss);
    bed.router = Some(Router::start(devices, model, sc.seed)?);
    // Node i's public QUIC address (its router link), with its peer id.
    let dial = |i: usize| {
        format!(
            "/ip4/{}/udp/{PORT}/quic-v1/p2p/{}",
            router::address(i),
            peers[i]
        )
    };
    let boot = dial(0);
    let relay_addrs: Vec<String> = sc.nat.relays().into_iter().map(dial).collect();
    for i in 0..n {
        write_config(
            &bed.members[i].dir,
            i,
            (i > 0).then_some(boot.as_str()),
            &sc,
            &relay_addrs,
        )?;
        bed.start(i)?;
    }
    for i in 0..n {
        bed.wait_api(i, Duration::from_secs(30))?;
    }
    let t1 = Instant::now();
    wait_settled(&bed, n, Duration::from_secs(120))?;
    let formed = t1.elapsed();
    eprintln!(
        "{n} nodes in {} regions admitted each other, hold every node's self-description and \
         announced it in the DHT in {formed:.1?}",
        regions
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    );

    let mut publishes: Vec<PublishStep> = Vec::new();
    let mut heals: Vec<Heal> = Vec::new();
    let mut churns: Vec<churn::ChurnFigures> = Vec::new();
    let mut fetches: Vec<fetch::FetchFigures> = Vec::new();
    let mut releases: Vec<release::ReleaseFigures> = Vec::new();
    let mut floods: Vec<flood::FloodFigures> = Vec::new();
    // The newest seq of each subject published, to check convergence against.
    let mut newest: BTreeMap<usize, (String, u64)> = BTreeMap::new();
    for (k, step) in sc.steps.iter().enumerate() {
        eprintln!("step {k}: {}", describe(step));
        match step {
            Step::Wait(d) => std::thread::sleep(*d),
            Step::Publish(p) => {
                let r = measure::publish(&bed, p, &mut newest)?;
                eprintln!("  {}", r.line());
                publishes.push(r);
            }
            Step::Partition(spec) => {
                if let Some(r) = &bed.router {
                    r.partition(&spec.groups(n));
                }
            }
            Step::Heal(_) => {
                if let Some(r) = &bed.router {
                    r.heal();
                }
                let h = measure::heal(&bed, &newest, Duration::from_secs(120))?;
                eprintln!("  {}", h.line());
                heals.push(h);
            }
            Step::Kill(v) => {
                for &i in v {
                    bed.kill(i);
                }
            }
            Step::Churn(c) => {
                let r = churn::run(&mut bed, c, sc.seed, &mut newest)?;
                eprintln!("  {}", r.line());
                churns.push(r);
            }
            Step::Fetch(f) => {
                let r = fetch::run(&bed, f, &peers, k)?;
                eprintln!("  {}", r.line());
                fetches.push(r);
            }
            Step::Release(r) => {
                let r = release::run(&bed, &out, r, sc.links.up_mbps)?;
                eprintln!("  {}", r.line());
                releases.push(r);
            }
            Step::Flood(f) => {
                let r = flood::run(&bed, f, &peers, &mut newest)?;
                eprintln!("  {}", r.line());
                floods.push(r);
            }
            Step::Restart(v) => {
                for &i in v {
                    if !bed.up(i) {
                        bed.start(i)?;
                    }
                }
                for &i in v {
                    bed.wait_api(i, Duration::from_secs(30))?;
                }
            }
        }
    }
    let nat = (!sc.nat.behind.is_empty())
        .then(|| nat::NatFigures::collect(&bed, &peers, &sc.nat.behind, &sc.nat.relays()));
    let counts = bed.router.as_ref().map(Router::counts).unwrap_or_default();
    let summary = output::Summary::new(
        &sc,
        &matrix,
        &regions,
        formed,
        &publishes,
        &heals,
        churns,
        fetches,
        releases,
        floods,
        nat,
        counts,
        t0.elapsed(),
    );
    output::write(&out, &summary, &publishes, &matrix, &regions)?;
    drop(bed);
    let left = netns::leftovers()?
        .into_iter()
        .filter(|x| x.starts_with(&prefix()))
        .count();
    if left > 0 {
        bail!("{left} namespaces of this run are still there; run `gaiamesh testbed clean`");
    }
    println!("{}", summary.text());
    println!("outputs in {}", out.display());
    Ok(())
}

/// The port every node listens on (each has its own address).
const PORT: u16 = 4001;

fn write_config(
    dir: &Path,
    i: usize,
    bootstrap: Option<&str>,
    sc: &Scenario,
    relays: &[String],
) -> Result<()> {
    let behind = sc.nat.behind.contains(&i);
    // Behind NAT the node listens on its private address (which nothing else routes to).
    let addr = if behind {
        natns::host_address(i)
    } else {
        router::address(i)
    };
    let nat = if behind {
        format!(
            "relays = [{}]\n",
            relays
                .iter()
                .map(|r| format!("{r:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else if sc.nat.relays().contains(&i) {
        "relay_server = true\n".to_owned()
    } else {
        String::new()
    };
    // A flooding member needs fault injection on its API.
    let fault = if sc
        .steps
        .iter()
        .any(|s| matches!(s, Step::Flood(f) if f.from == i))
    {
        "fault_injection = true\n"
    } else {
        ""
    };
    let boot = bootstrap.map(|b| format!("{b:?}")).unwrap_or_default();
    let reconcile = sc
        .node
        .reconcile_interval
        .map(|d| {
            format!(
                "reconcile_interval = \"{}\"\n",
                humantime::format_duration(d)
            )
        })
        .unwrap_or_default();
    std::fs::write(
        dir.join("config.toml"),
        format!(
            "# written by gaiamesh testbed: node{i} in its own namespace at {addr}\n\
             [network]\nlisten = [\"/ip4/{addr}/udp/{PORT}/quic-v1\", \"/ip4/{addr}/tcp/{PORT}\"]\n\
             bootstrap = [{boot}]\n{nat}\
             [api]\nlisten = \"127.0.0.1:0\"\n{fault}[directory]\n{reconcile}"
        ),
    )?;
    Ok(())
}

/// Waits until the federation has settled: every node admitted every other, holds every
/// node's self-description and has announced its own in the DHT — so that the start-up work
/// (admissions, first reconciliations, DHT puts) is over before anything is measured.
fn wait_settled(bed: &Bed, n: usize, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        let status: Vec<(u64, u64, bool)> = (0..n)
            .map(|i| {
                bed.status(i).ok().map_or((0, 0, false), |s| {
                    (
                        s.admitted_peers as u64,
                        s.directory_entries as u64,
                        s.dht_announced,
                    )
                })
            })
            .collect();
        let all = n as u64;
        if status
            .iter()
            .all(|&(a, e, d)| a == all - 1 && e >= all && d)
        {
            return Ok(());
        }
        if start.elapsed() > timeout {
            let admitted: Vec<u64> = status.iter().map(|s| s.0).collect();
            let entries: Vec<u64> = status.iter().map(|s| s.1).collect();
            let unannounced: Vec<usize> = (0..n).filter(|&i| !status[i].2).collect();
            bail!(
                "the mesh did not settle in {timeout:?}: admitted peers per node {admitted:?}, \
                 directory entries {entries:?}, not announced in the DHT: {unannounced:?}"
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn describe(step: &Step) -> String {
    match step {
        Step::Wait(d) => format!("wait {d:?}"),
        Step::Publish(p) => format!(
            "node{} publishes {} updates, one every {:?}{}",
            p.from,
            p.updates,
            p.every,
            if p.warmup > 0 {
                format!(", after {} not measured", p.warmup)
            } else {
                String::new()
            }
        ),
        Step::Partition(_) => "partition".into(),
        Step::Heal(_) => "heal".into(),
        Step::Kill(v) => format!("kill {v:?}"),
        Step::Restart(v) => format!("restart {v:?}"),
        Step::Churn(c) => format!(
            "churn: {} rounds of {:?}, killing {:.0}% each, node0 publishing every {:?}",
            c.rounds,
            c.every,
            c.fraction * 100.0,
            c.publish_every
        ),
        Step::Fetch(f) => format!(
            "node{} fetches node{}'s asset (contract, then a direct transfer)",
            f.consumer, f.provider
        ),
        Step::Release(r) => release::describe(r),
        Step::Flood(f) => format!(
            "node{} floods the directory topic with {} invalid messages a second for {:?}; node0 publishes, node{}'s API is probed",
            f.from, f.per_second, f.duration, f.probe
        ),
    }
}

/// Publishes node `from`'s document again; returns the new seq.
fn republish(bed: &Bed, from: usize) -> Result<u64> {
    Ok(bed.on(from, |api| api.publish(None))?.seq)
}
