//! `gaiamesh devnet`: a fresh federation of N nodes on loopback, converged, queried, timed.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use gaiamesh_protocol::sd::{DocumentFormat, SdDocument};

mod compute;
mod exchange;
mod propagation;
pub(crate) mod replication;
use crate::{
    api_client::NodeApi,
    daemon::{QueryReply, Status},
    datadir::DataDir,
};

/// Arguments of `gaiamesh devnet`.
#[derive(Debug, clap::Args)]
pub struct DevnetArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=200))]
    nodes: u16,
    /// Directory for the federation and the nodes' data dirs (`DIR/node<i>`); must be new or empty.
    #[arg(long, default_value = "gaiamesh-devnet")]
    dir: PathBuf,
    /// Delete DIR first if it exists.
    #[arg(long)]
    reset: bool,
    /// Stop after the summary instead of running until Ctrl-C.
    #[arg(long)]
    once: bool,
    /// Give up waiting for convergence after this long.
    #[arg(long, default_value = "120s", value_parser = super::parse_duration)]
    timeout: Duration,
    /// Print the summary as JSON on stdout (progress stays on stderr).
    #[arg(long)]
    json: bool,
    /// Size of the repository component node0 publishes and every node replicates (MiB);
    /// 0 skips the step.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(0..=4096))]
    repo_mib: u64,
    /// Size of the dataset node0 offers and node1 negotiates for and fetches (MiB); 0 skips
    /// the step (so does a single-node devnet).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(0..=16384))]
    exchange_mib: u64,
    /// Skip the compute-to-data step (node1 runs the example algorithm on node0's data).
    #[arg(long)]
    no_compute: bool,
    /// Skip the light node (benchmarks that time transfers between the N nodes alone: the
    /// light node fetches mandatory components too).
    #[arg(long)]
    no_light: bool,
    /// Upload limit of every node for blob transfers (KiB/s, 0: unlimited).
    #[arg(long, default_value_t = 0)]
    upload_limit_kib_s: u64,
}

const QUERIES: [&str; 4] = [
    "service.kind = storage.object and service.price.amount < 0.02",
    "service.certification = C5 and node.energy.renewable_pct >= 80",
    "node.kind in [edge, telco_edge] and node.realtime.max_latency_ms <= 10",
    "service.kind = ai.training and node.hardware.gpu_count >= 100",
];

/// Child processes that are stopped (SIGTERM, then SIGKILL) when dropped.
struct Nodes(Vec<(PathBuf, Child)>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for (_, c) in &self.0 {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for (_, c) in &mut self.0 {
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub(super) fn me() -> Result<PathBuf> {
    std::env::current_exe().context("cannot locate the gaiamesh binary")
}

pub(super) fn sub(args: &[&str]) -> Result<String> {
    let mut c = Command::new(me()?);
    c.args(args);
    output_of(c, &format!("gaiamesh {}", args.join(" ")))
}

/// Runs `c` (`what` names it in the error): its trimmed stdout, or an error with its stderr.
pub(crate) fn output_of(mut c: Command, what: &str) -> Result<String> {
    let out = c.output()?;
    if !out.status.success() {
        bail!("{what}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

pub(super) fn path_str(p: &Path) -> Result<&str> {
    p.to_str()
        .with_context(|| format!("{} is not UTF-8", p.display()))
}

/// The document of node `i`: the i-th example, then variations of them.
fn document(i: usize) -> Result<String> {
    let examples = gaiamesh_config::EXAMPLE_SDS;
    let (_, text) = examples[i % examples.len()];
    if i < examples.len() {
        return Ok(text.to_owned());
    }
    let mut doc = SdDocument::parse(text, DocumentFormat::Toml)?;
    doc.participant.legal_name = format!(
        "{} (site {})",
        doc.participant.legal_name,
        i / examples.len() + 1
    );
    Ok(doc.to_toml()?)
}

/// Creates a federation named `name` in `root/federation`; returns its directory, its
/// genesis file and what `federation init --json` printed.
pub(super) fn federation(root: &Path, name: &str) -> Result<(String, String, serde_json::Value)> {
    let fed = root.join("federation");
    let fed_s = path_str(&fed)?.to_owned();
    let fed_id = sub(&[
        "federation",
        "init",
        "--name",
        name,
        "--out",
        &fed_s,
        "--json",
    ])?;
    let fed_id: serde_json::Value = serde_json::from_str(&fed_id)?;
    eprintln!(
        "federation {} in {}",
        fed_id["federation_id"].as_str().unwrap_or("?"),
        fed.display()
    );
    let genesis = path_str(&fed.join("genesis.toml"))?.to_owned();
    Ok((fed_s, genesis, fed_id))
}

/// Creates and admits the data dir `dir` with the document of node `i`; returns its PeerId.
pub(super) fn create_node(dir: &Path, fed: &str, genesis: &str, i: usize) -> Result<String> {
    let d = path_str(dir)?.to_owned();
    let peer = sub(&["init", "--data-dir", &d, "--genesis", genesis])?;
    std::fs::write(dir.join("sd.toml"), document(i)?)?;
    let cred = dir.join("issued.cred");
    let cred_s = path_str(&cred)?.to_owned();
    let sd = path_str(&dir.join("sd.toml"))?.to_owned();
    sub(&[
        "federation",
        "admit",
        "--federation",
        fed,
        "--peer",
        &peer,
        "--participant",
        &sd,
        "--out",
        &cred_s,
    ])?;
    sub(&[
        "init",
        "--data-dir",
        &d,
        "--genesis",
        genesis,
        "--credential",
        &cred_s,
    ])?;
    Ok(peer)
}

fn write_config(dir: &Path, bootstrap: Option<&str>, light: bool, upload_kib_s: u64) -> Result<()> {
    let boot = bootstrap.map(|b| format!("{b:?}")).unwrap_or_default();
    let mode = if light { "light" } else { "full" };
    std::fs::write(
        dir.join("config.toml"),
        format!(
            "# written by gaiamesh devnet: loopback only, ports chosen by the OS\n\
             [network]\nlisten = [\"/ip4/127.0.0.1/udp/0/quic-v1\", \"/ip4/127.0.0.1/tcp/0\"]\nbootstrap = [{boot}]\n\
             [api]\nlisten = \"127.0.0.1:0\"\n[directory]\nmode = \"{mode}\"\nreconcile_interval = \"2s\"\ncpu_at_ingest = true\n\
             [repository]\nupload_limit_kib_s = {upload_kib_s}\n"
        ),
    )?;
    Ok(())
}

fn start(dir: &Path) -> Result<Child> {
    let _ = std::fs::remove_file(dir.join("api.json"));
    let log = std::fs::File::create(dir.join("node.log"))?;
    Ok(Command::new(me()?)
        .args(["run", "--data-dir", path_str(dir)?])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?)
}

/// Waits until the node on `dir` answers: its API and status.
pub(super) fn wait_api(dir: &Path, timeout: Duration) -> Result<(NodeApi, Status)> {
    let start = Instant::now();
    loop {
        if let Ok(api) = NodeApi::of(&DataDir::new(dir))
            && let Ok(s) = api.status()
        {
            return Ok((api, s));
        }
        if start.elapsed() > timeout {
            bail!(
                "{} did not start; see {}",
                dir.display(),
                dir.join("node.log").display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Attribute queries a light node answers through the DHT.
const LIGHT_QUERIES: [&str; 4] = [
    "node.location.country = DE",
    "service.kind = storage.object",
    "node.kind = edge",
    "service.certification = ISO27001",
];

/// Latency of light-node (DHT) queries, once their answers equal the replica's.
struct LightTimes {
    /// Queries whose DHT answer equalled node0's replica within the wait.
    matching: usize,
    queries: usize,
    p50_ms: u64,
    p99_ms: u64,
}

fn subjects(reply: &QueryReply) -> std::collections::BTreeSet<String> {
    reply.matches.iter().map(|m| m.subject.clone()).collect()
}

/// Waits until the light node answers [`LIGHT_QUERIES`] like the full node `full` (its DHT
/// announcements may still be in flight right after start), then times 5 rounds of them.
fn measure_light(full: &Path, light: &Path, timeout: Duration) -> Result<LightTimes> {
    let full = NodeApi::of(&DataDir::new(full))?;
    let light = NodeApi::of(&DataDir::new(light))?;
    let ask = |api: &NodeApi, q: &str| api.directory(q, None, 10_000);
    let start = Instant::now();
    let mut matching = 0;
    for q in LIGHT_QUERIES {
        let expected = subjects(&ask(&full, q)?);
        loop {
            let got = ask(&light, q).map(|r| subjects(&r)).ok();
            if got.as_ref() == Some(&expected) {
                matching += 1;
                break;
            }
            if start.elapsed() > timeout {
                eprintln!(
                    "  the light node's answer to {q:?} still differs from node0's after {timeout:?} \
                     (DHT announcements missing; they are re-published hourly)"
                );
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let mut times = Vec::new();
    for _ in 0..5 {
        for q in LIGHT_QUERIES {
            let t = Instant::now();
            ask(&light, q)?;
            times.push(u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX));
        }
    }
    times.sort_unstable();
    let pick = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    Ok(LightTimes {
        matching,
        queries: times.len(),
        p50_ms: pick(0.5),
        p99_ms: pick(0.99),
    })
}

pub(super) fn run(a: DevnetArgs) -> Result<()> {
    let n = usize::from(a.nodes);
    if a.dir.exists() {
        if a.reset {
            std::fs::remove_dir_all(&a.dir)
                .with_context(|| format!("cannot remove {}", a.dir.display()))?;
        } else if std::fs::read_dir(&a.dir)?.next().is_some() {
            bail!(
                "{} exists and is not empty; pass --reset to start over or choose another --dir",
                a.dir.display()
            );
        }
    }
    std::fs::create_dir_all(&a.dir)?;
    let t0 = Instant::now();
    let (fed_s, genesis, fed_id) = federation(&a.dir, "gaiamesh devnet")?;
    let mut dirs = Vec::with_capacity(n);
    for i in 0..n {
        let dir = a.dir.join(format!("node{i}"));
        create_node(&dir, &fed_s, &genesis, i)?;
        dirs.push(dir);
    }
    let setup = t0.elapsed();
    eprintln!("created {n} admitted nodes in {:.1?}", setup);
    // The same line `gaiamesh sim run` prints for its scenario.
    let mut params = gaiamesh_core::Params::default();
    params.sync.reconcile_interval = std::time::Duration::from_secs(2);
    eprintln!("{}", params.summary());

    let t1 = Instant::now();
    let mut nodes = Nodes(Vec::with_capacity(n));
    write_config(&dirs[0], None, false, a.upload_limit_kib_s)?;
    nodes.0.push((dirs[0].clone(), start(&dirs[0])?));
    let (_, s0) = wait_api(&dirs[0], Duration::from_secs(20))?;
    let quic = s0
        .listen_addrs
        .iter()
        .find(|x| x.contains("quic"))
        .context("node0 has no QUIC address")?;
    let boot = format!("{quic}/p2p/{}", s0.peer_id);
    for dir in &dirs[1..] {
        write_config(dir, Some(&boot), false, a.upload_limit_kib_s)?;
        nodes.0.push((dir.clone(), start(dir)?));
    }
    let bar = super::ProgressLine::count(n as u64, "API ready", a.json);
    let mut apis = Vec::with_capacity(n);
    for (i, dir) in dirs.iter().enumerate() {
        apis.push(wait_api(dir, Duration::from_secs(20))?.0);
        bar.set_count(i as u64 + 1);
    }
    bar.done();
    let started = t1.elapsed();
    eprintln!(
        "started {n} nodes in {:.1?}; waiting for the directory to converge",
        started
    );

    let t2 = Instant::now();
    let mut last_report = Instant::now();
    let bar = super::ProgressLine::count(n as u64, "converged", a.json);
    loop {
        // `None`: the node's API did not answer.
        let counts: Vec<Option<u64>> = apis
            .iter()
            .map(|api| api.status().ok().map(|s| s.directory_entries as u64))
            .collect();
        let done = counts.iter().filter(|c| **c == Some(n as u64)).count();
        bar.set_count(done as u64);
        if done == n {
            bar.done();
            break;
        }
        let silent: Vec<String> = counts
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_none())
            .map(|(i, _)| format!("node{i}"))
            .collect();
        let silent = if silent.is_empty() {
            String::new()
        } else {
            format!("; not answering: {}", silent.join(", "))
        };
        if t2.elapsed() > a.timeout {
            let shown: Vec<String> = counts
                .iter()
                .map(|c| c.map_or_else(|| "-".to_owned(), |c| c.to_string()))
                .collect();
            bail!(
                "not converged after {:.0?}: {done}/{n} nodes have all {n} entries; entries per node: [{}]{silent} (logs: DIR/node*/node.log)",
                a.timeout,
                shown.join(", ")
            );
        }
        // On a terminal the bar shows it; in logs, a line every 2 s.
        if bar.is_hidden() && last_report.elapsed() > Duration::from_secs(2) {
            let least = counts.iter().flatten().min().copied().unwrap_or(0);
            eprintln!("  {done}/{n} nodes have all {n} entries (fewest: {least}){silent}");
            last_report = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let converged = t2.elapsed();
    // "After the mesh has formed": every node has made its start-up DHT announcement and
    // its Kademlia queries have finished (they compete with gossip for the CPU).
    let t3 = Instant::now();
    let settled = loop {
        let quiet = apis.iter().all(|api| {
            api.status()
                .is_ok_and(|s| s.dht_announced && s.kad_queries == 0)
        });
        if quiet || t3.elapsed() > Duration::from_secs(60) {
            break t3.elapsed();
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let pids: Vec<(PathBuf, u32)> = nodes.0.iter().map(|(d, c)| (d.clone(), c.id())).collect();
    let propagation = propagation::measure(&pids, a.timeout)?;

    // A light node: no replica, answers through Kademlia (provider records, then records).
    let light = if a.no_light {
        None
    } else {
        let light_dir = a.dir.join("light");
        create_node(&light_dir, &fed_s, &genesis, n)?;
        write_config(&light_dir, Some(&boot), true, a.upload_limit_kib_s)?;
        nodes.0.push((light_dir.clone(), start(&light_dir)?));
        wait_api(&light_dir, Duration::from_secs(20))?;
        Some(measure_light(
            &dirs[0],
            &light_dir,
            a.timeout.min(Duration::from_secs(60)),
        )?)
    };
    let repo = if a.repo_mib > 0 {
        Some(replication::run(
            &a.dir,
            &dirs,
            a.repo_mib,
            a.timeout.max(Duration::from_secs(300)),
        )?)
    } else {
        None
    };

    let exchange = if a.exchange_mib > 0 && n >= 2 {
        Some(exchange::run(
            &a.dir,
            &dirs,
            a.exchange_mib,
            a.timeout.max(Duration::from_secs(300)),
        )?)
    } else {
        None
    };
    let compute = if !a.no_compute && n >= 2 {
        Some(compute::run(
            &a.dir,
            &dirs,
            a.timeout.max(Duration::from_secs(120)),
        )?)
    } else {
        None
    };

    let mut query_results = Vec::new();
    for q in QUERIES {
        let t = Instant::now();
        let r = apis[0].directory(q, None, 5)?;
        query_results.push((q, r, t.elapsed()));
    }
    let dashboard = apis[0].dashboard_url();
    if a.json {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let summary = serde_json::json!({
            "nodes": n,
            "federation_id": fed_id["federation_id"],
            "setup_ms": ms(setup),
            "start_ms": ms(started),
            "converged_ms": ms(converged),
            "dht_settled_ms": ms(settled),
            "propagation": propagation,
            "light": light.as_ref().map(|light| serde_json::json!({
                "queries": light.queries,
                "matching": light.matching,
                "of": LIGHT_QUERIES.len(),
                "p50_ms": light.p50_ms,
                "p99_ms": light.p99_ms,
            })),
            "queries": query_results.iter().map(|(q, r, t)| serde_json::json!({
                "query": q, "total": r.total, "ms": ms(*t),
            })).collect::<Vec<_>>(),
            "repository": repo,
            "exchange": exchange,
            "compute": compute,
            "dir": a.dir.display().to_string(),
            "dashboard": dashboard,
        });
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(
            &a,
            n,
            &fed_id,
            [setup, started, converged, settled],
            propagation.as_ref(),
            light.as_ref(),
            &query_results,
            repo.as_ref(),
            exchange.as_ref(),
            compute.as_ref(),
        );
        println!("dashboard of node0: {dashboard}");
    }
    if a.once {
        return Ok(());
    }
    println!("running; Ctrl-C stops all nodes");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // SIGTERM too: a devnet stopped by a supervisor must not leave its nodes behind.
    rt.block_on(async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    });
    eprintln!("stopping {n} nodes");
    drop(nodes);
    Ok(())
}

/// The human summary of a devnet run.
#[allow(clippy::too_many_arguments)]
fn print_summary(
    a: &DevnetArgs,
    n: usize,
    fed_id: &serde_json::Value,
    [setup, started, converged, settled]: [Duration; 4],
    propagation: Option<&propagation::Propagation>,
    light: Option<&LightTimes>,
    queries: &[(&str, QueryReply, Duration)],
    repo: Option<&replication::Replication>,
    exchange: Option<&exchange::ExchangeRun>,
    compute: Option<&compute::ComputeRun>,
) {
    println!(
        "\ngaiamesh devnet: {n} nodes, federation {}",
        fed_id["federation_id"].as_str().unwrap_or("?")
    );
    println!("  setup (keys, genesis, credentials)  {:>8.1?}", setup);
    println!("  start to API ready (all nodes)      {:>8.1?}", started);
    println!(
        "  directory converged ({n}/{n} entries) {:>8.1?}",
        converged
    );
    println!(
        "  DHT start-up announcements done    {:>8.1?} later",
        settled
    );
    if let Some(p) = propagation {
        println!(
            "  update propagation to {} nodes      p50 {} ms, p99 {} ms, max {} ms; all nodes \
             have it after {} ms (median over updates)",
            n - 1,
            p.p50,
            p.p99,
            p.max,
            p.convergence_p50
        );
        if let Some(ms) = p.ingest_p50_ms {
            println!(
                "  per hop: verify + merge + commit   {ms:>6.2} ms (median); {:.1} peers per node",
                p.mean_connected_peers
            );
        }
        if let Some(ms) = p.cpu_ms_per_receiver {
            println!(
                "  CPU time per receiving node        {ms:>6.2} ms (all processes, idle subtracted)"
            );
        }
    }
    if let Some(light) = light {
        println!(
            "  light node: {} DHT queries ({}/{} answers equal node0's replica), p50 {} ms, p99 {} ms",
            light.queries,
            light.matching,
            LIGHT_QUERIES.len(),
            light.p50_ms,
            light.p99_ms
        );
    }
    if let Some(r) = repo {
        println!(
            "  repository: {} ({} MiB, mandatory) replicated to all {n} nodes in {:.1} s",
            r.target,
            r.bytes >> 20,
            r.replicated_ms as f64 / 1e3
        );
    }
    if let Some(x) = exchange {
        println!(
            "  exchange: node1 got {} ({} MiB) from node0: contract in {:.1} ms, transfer {:.0} MB/s, BLAKE3 verified; audit logs {} / {} entries, intact",
            x.asset,
            x.bytes >> 20,
            x.negotiation_ms,
            x.mb_per_s,
            x.audit_entries[0],
            x.audit_entries[1]
        );
    }
    if let Some(c) = compute {
        println!(
            "  compute: node1 ran {} on node0's {} ({} bytes stayed there): {} result bytes, {} fuel in {:.1} ms, price {}; usage records signed by both, {} / {} in the audit logs",
            c.algorithm,
            c.asset,
            c.dataset_bytes,
            c.result_bytes,
            c.fuel,
            c.wall_ms,
            c.price.as_deref().unwrap_or("none"),
            c.usage_records[0],
            c.usage_records[1]
        );
        println!("    result: {}", c.result.trim_end());
    }
    println!("\nexample queries on node0:");
    for (q, r, t) in queries {
        println!("  {q}\n    {} match(es) in {t:.1?}", r.total);
        for m in &r.matches {
            println!(
                "      {:<34} {}  {}",
                m.legal_name,
                m.country,
                m.service.as_ref().map_or("-", |s| s.id.as_str())
            );
        }
    }
    println!(
        "\nnode data dirs: {}/node0 … node{}; logs in node*/node.log",
        a.dir.display(),
        n - 1
    );
    println!(
        "try: gaiamesh query 'node.location.country = DE' --data-dir {}/node0",
        a.dir.display()
    );
}
