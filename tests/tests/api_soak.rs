//! Soak test of the node API under the abuse patterns of issue 16, loopback only, bounded in
//! count and time: token-less 2 MB POSTs, thousands of concurrent `GET /status`, hundreds of
//! event streams, slow-header clients, thousands of idle connections. While they run, a probe
//! asks `/api/v1/health` every 100 ms; afterwards the node must be back within 20% of its
//! baseline RSS within 30 s, hold no more file descriptors than its connection cap allows, and
//! still admit a new peer (its `max_memory_mib` is set low, so API memory that stayed would
//! make the swarm deny the peer).
//!
//! `GAIAMESH_SOAK=full` runs the sizes of the original report (600 POSTs, 2,000 clients,
//! 19,990 idle connections, slow headers for 70 s); the default is a shorter run for CI. The
//! figures are printed as `soak:` lines (run with `--no-capture`); BENCHMARKS.md has them.

#![allow(clippy::unwrap_used)]

use std::{
    io::{Read, Write},
    net::TcpStream,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use gaiamesh_e2e::mesh::{Node, admit, api_address, configure, configure_with, federation};

#[derive(Clone, Copy, Debug)]
struct Scale {
    posts: usize,
    post_bytes: usize,
    gets: usize,
    streams: usize,
    slow: usize,
    slow_for: Duration,
    idle: usize,
}

impl Scale {
    fn from_env() -> (Self, &'static str) {
        match std::env::var("GAIAMESH_SOAK").as_deref() {
            Ok("full") => (
                Self {
                    posts: 600,
                    post_bytes: 2_000_000,
                    gets: 2000,
                    streams: 2000,
                    slow: 500,
                    slow_for: Duration::from_secs(70),
                    idle: 19_990,
                },
                "full",
            ),
            _ => (
                Self {
                    posts: 150,
                    post_bytes: 2_000_000,
                    gets: 1000,
                    streams: 300,
                    slow: 200,
                    slow_for: Duration::from_secs(13),
                    idle: 3000,
                },
                "ci",
            ),
        }
    }
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Health probes and RSS samples taken while a pattern runs.
#[derive(Default)]
struct Probe {
    latencies: Vec<Duration>,
    failures: usize,
    peak_rss_kib: u64,
}

impl Probe {
    fn p99(&self) -> Duration {
        let mut l = self.latencies.clone();
        l.sort_unstable();
        l.get((l.len() * 99).div_ceil(100).saturating_sub(1))
            .copied()
            .unwrap_or_default()
    }
}

/// Runs `pattern` while probing health and RSS every 100 ms.
fn under_probe(host: &str, pid: u32, pattern: impl FnOnce()) -> Probe {
    let stop = Arc::new(AtomicBool::new(false));
    let probe = Arc::new(Mutex::new(Probe::default()));
    let prober = {
        let (stop, probe, host) = (stop.clone(), probe.clone(), host.to_owned());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let ok = health(&host);
                let took = t.elapsed();
                let rss = rss_kib(pid);
                let mut p = probe.lock().unwrap();
                p.peak_rss_kib = p.peak_rss_kib.max(rss);
                if ok {
                    p.latencies.push(took);
                } else {
                    p.failures += 1;
                }
                drop(p);
                std::thread::sleep(Duration::from_millis(100).saturating_sub(took));
            }
        })
    };
    pattern();
    stop.store(true, Ordering::Relaxed);
    prober.join().unwrap();
    Arc::try_unwrap(probe).ok().unwrap().into_inner().unwrap()
}

fn health(host: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(host) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let req = format!("GET /api/v1/health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let mut buf = Vec::new();
    s.write_all(req.as_bytes()).is_ok()
        && s.read_to_end(&mut buf).is_ok()
        && buf.starts_with(b"HTTP/1.1 200")
}

/// `n` jobs over `threads` threads.
fn spread(n: usize, threads: usize, job: impl Fn(usize) + Send + Sync + 'static) {
    let job = Arc::new(job);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let job = job.clone();
            std::thread::spawn(move || {
                for i in (t..n).step_by(threads) {
                    job(i);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

/// Opens `n` connections, each sending `request`, from `threads` threads; returns them.
fn open_many(host: &str, n: usize, threads: usize, request: &[u8]) -> Vec<TcpStream> {
    let out = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let (h, r, o) = (host.to_owned(), request.to_vec(), out.clone());
    spread(n, threads, move |_| {
        if let Ok(mut s) = TcpStream::connect(&h) {
            let _ = s.write_all(&r);
            o.lock().unwrap().push(s);
        }
    });
    Arc::try_unwrap(out).unwrap().into_inner().unwrap()
}

fn report(name: &str, pid: u32, baseline: u64, probe: &Probe, extra: &str) {
    println!(
        "soak: {name}: RSS {} → peak {} → {} MiB at its end; health p99 {:.1} ms over {} probes, {} failed{extra}",
        baseline / 1024,
        probe.peak_rss_kib / 1024,
        rss_kib(pid) / 1024,
        probe.p99().as_secs_f64() * 1e3,
        probe.latencies.len(),
        probe.failures,
    );
}

#[test]
fn the_node_survives_api_abuse_and_gives_its_memory_back() {
    let (scale, label) = Scale::from_env();
    let root = tempfile::tempdir().unwrap();
    let dirs = federation(root.path(), 1);
    configure_with(&dirs[0], &[], "", "");
    // A low memory ceiling for the swarm: API memory that stayed would deny the new peer.
    let config = std::fs::read_to_string(dirs[0].join("config.toml")).unwrap();
    std::fs::write(
        dirs[0].join("config.toml"),
        config.replace("[network]\n", "[network]\nmax_memory_mib = 128\n"),
    )
    .unwrap();
    let node = Node::start(&dirs[0]);
    let pid = node.pid();
    let (host, _) = api_address(&dirs[0]);
    for _ in 0..50 {
        assert!(health(&host));
    }
    std::thread::sleep(Duration::from_secs(1));
    let baseline = rss_kib(pid);
    let base_fds = fds(pid);
    println!(
        "soak ({label}): baseline RSS {} MiB, {base_fds} fds",
        baseline / 1024
    );
    let mut worst_p99 = Duration::ZERO;
    let mut failures = 0;

    // 1. Token-less 2 MB POSTs: refused from the head (401), the body never buffered.
    let codes = Arc::new(Mutex::new(std::collections::BTreeMap::<u16, usize>::new()));
    let probe = under_probe(&host, pid, || {
        let (h, c, bytes) = (host.clone(), codes.clone(), scale.post_bytes);
        spread(scale.posts, 32, move |_| {
            let Ok(mut s) = TcpStream::connect(&h) else {
                return;
            };
            let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
            let head = format!(
                "POST /api/v1/sd HTTP/1.1\r\nHost: {h}\r\nContent-Type: application/toml\r\n\
                 Content-Length: {bytes}\r\n\r\n"
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&vec![b'x'; bytes]);
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf).unwrap_or(0);
            let code = std::str::from_utf8(&buf[..n])
                .ok()
                .and_then(|t| t.split_whitespace().nth(1)?.parse().ok())
                .unwrap_or(0);
            *c.lock().unwrap().entry(code).or_default() += 1;
        });
    });
    let codes = codes.lock().unwrap().clone();
    report(
        "token-less 2 MB POSTs",
        pid,
        baseline,
        &probe,
        &format!("; answers {codes:?} (0: reset before an answer)"),
    );
    assert!(
        codes.keys().all(|c| *c == 401 || *c == 0),
        "only 401 (or a reset) for token-less bodies: {codes:?}"
    );
    assert!(codes.get(&401).copied().unwrap_or(0) > 0, "{codes:?}");
    worst_p99 = worst_p99.max(probe.p99());
    failures += probe.failures;

    // 2. Thousands of concurrent GET /status.
    let probe = under_probe(&host, pid, || {
        let req =
            format!("GET /api/v1/status HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let conns = open_many(&host, scale.gets, 16, req.as_bytes());
        let mut answered = 0;
        for mut s in conns {
            let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
            let mut buf = Vec::new();
            if s.read_to_end(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.1 ") {
                answered += 1;
            }
        }
        println!("soak: {answered} of {} status clients answered", scale.gets);
    });
    report("concurrent GET /status", pid, baseline, &probe, "");
    worst_p99 = worst_p99.max(probe.p99());
    failures += probe.failures;

    // 3. Hundreds of event streams: at most 64 stay open.
    let probe = under_probe(&host, pid, || {
        let req = format!("GET /api/v1/events HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let streams = open_many(&host, scale.streams, 16, req.as_bytes());
        std::thread::sleep(Duration::from_secs(2));
        drop(streams);
    });
    report("event-stream clients", pid, baseline, &probe, "");
    worst_p99 = worst_p99.max(probe.p99());
    failures += probe.failures;

    // 4. Slow-header clients: one byte a second; the header-read timeout (10 s) closes them.
    let mut closed = 0;
    let probe = under_probe(&host, pid, || {
        let mut conns = open_many(&host, scale.slow, 16, b"GET /api/v1/status HTTP/1.1\r\n");
        for s in &conns {
            let _ = s.set_nonblocking(true);
        }
        let started = Instant::now();
        while started.elapsed() < scale.slow_for {
            for s in &mut conns {
                let _ = s.write_all(b"X");
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        for s in &mut conns {
            let mut buf = [0u8; 256];
            // Closed by the server: EOF, a 408, or a reset.
            match s.read(&mut buf) {
                Ok(_) => closed += 1,
                Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => closed += 1,
                Err(_) => {}
            }
        }
    });
    report(
        "slow-header clients",
        pid,
        baseline,
        &probe,
        &format!("; {closed} of {} closed by the server", scale.slow),
    );
    assert_eq!(closed, scale.slow, "slow-header clients still open");
    worst_p99 = worst_p99.max(probe.p99());
    failures += probe.failures;

    // 5. Thousands of idle connections: the node keeps at most max_connections (512).
    let mut peak_fds = 0;
    let probe = under_probe(&host, pid, || {
        let conns = open_many(&host, scale.idle, 32, b"");
        for _ in 0..20 {
            peak_fds = peak_fds.max(fds(pid));
            std::thread::sleep(Duration::from_millis(100));
        }
        println!("soak: {} idle connections opened", conns.len());
        drop(conns);
    });
    report(
        "idle connections",
        pid,
        baseline,
        &probe,
        &format!("; node fds peak {peak_fds} (baseline {base_fds})"),
    );
    assert!(
        peak_fds <= base_fds + 512 + 64,
        "the API held {peak_fds} fds (baseline {base_fds}, cap 512)"
    );
    worst_p99 = worst_p99.max(probe.p99());
    failures += probe.failures;

    // Memory comes back.
    let started = Instant::now();
    let mut after = rss_kib(pid);
    while after > baseline * 12 / 10 && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(500));
        after = rss_kib(pid);
    }
    println!(
        "soak: RSS after {:.1} s: {} MiB (baseline {} MiB); health p99 {:.1} ms at worst, {failures} probes failed",
        started.elapsed().as_secs_f64(),
        after / 1024,
        baseline / 1024,
        worst_p99.as_secs_f64() * 1e3
    );
    assert!(
        after <= baseline * 12 / 10,
        "RSS {after} KiB is not back within 20% of {baseline} KiB after 30 s"
    );
    // Health answers through every pattern: no probe goes unanswered (each waits 10 s, a
    // liveness bound, not a latency target). The p99 above is reported, not asserted: a
    // shared CI machine running other tests beside this one moves it by whole seconds, and
    // latency targets belong in benchmarks (BENCHMARKS.md), not in tests.
    assert_eq!(failures, 0, "health probes failed during the abuse");

    let (_, _, metrics) = gaiamesh_e2e::mesh::raw_http(
        &host,
        format!("GET /metrics HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    for line in String::from_utf8_lossy(&metrics)
        .lines()
        .filter(|l| l.starts_with("gaiamesh_api_") && !l.starts_with('#'))
    {
        println!("soak: {line}");
    }

    // Peers are still accepted.
    let sd = gaiamesh_e2e::example("sd/02-rheinrechen-de-frankfurt.toml");
    let newcomer = admit(root.path(), "newcomer", &sd);
    configure(&newcomer, &[node.address()]);
    let n1 = Node::start(&newcomer);
    n1.wait_for(
        "admission by the abused node",
        Duration::from_secs(30),
        |n| n.status()["admitted_peers"] == 1,
    );
}
