//! The daemon under a service manager, without systemd: the test plays systemd's part of the
//! notify protocol (a Unix datagram socket in `NOTIFY_SOCKET`, `WATCHDOG_USEC`) and checks
//! readiness, watchdog keep-alives, SIGHUP reloads (a good and a bad config) and SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    os::unix::net::UnixDatagram,
    process::Stdio,
    time::{Duration, Instant},
};

use gaiamesh_e2e::{gaiamesh, mesh};

/// Waits for a datagram containing `line`; returns every message seen until then.
fn expect(sock: &UnixDatagram, line: &str, timeout: Duration) -> Vec<String> {
    let start = Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while start.elapsed() < timeout {
        match sock.recv(&mut buf) {
            Ok(n) => {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                let found = msg.lines().any(|l| l == line);
                seen.push(msg);
                if found {
                    return seen;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("notify socket: {e}"),
        }
    }
    panic!("no {line} within {timeout:?}; saw {seen:?}");
}

fn kill(pid: u32, signal: &str) {
    let st = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn readiness_watchdog_reload_and_stop() {
    let root = tempfile::tempdir().unwrap();
    let dir = mesh::federation(root.path(), 1).remove(0);
    mesh::configure(&dir, &[]);
    // The packaged layout: the config outside the data dir.
    let etc = root.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    let config = etc.join("config.toml");
    std::fs::rename(dir.join("config.toml"), &config).unwrap();
    let text = std::fs::read_to_string(&config).unwrap();

    let sock_path = root.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let log = std::fs::File::create(root.path().join("node.log")).unwrap();
    let mut child = gaiamesh()
        .args(["run", "--data-dir", dir.to_str().unwrap()])
        .env("GAIAMESH_CONFIG", &config)
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "2000000")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let pid = child.id();
    let node_log = || std::fs::read_to_string(root.path().join("node.log")).unwrap_or_default();

    // READY=1 only once the API answers and the swarm listens.
    expect(&sock, "READY=1", Duration::from_secs(30));
    let out = gaiamesh()
        .args(["status", "--json", "--data-dir", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "API not answering at READY=1");
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        !status["listen_addrs"].as_array().unwrap().is_empty(),
        "swarm not listening at READY=1: {status}"
    );

    // Keep-alives at half of WATCHDOG_USEC (2 s).
    expect(&sock, "WATCHDOG=1", Duration::from_secs(3));
    let t = Instant::now();
    expect(&sock, "WATCHDOG=1", Duration::from_secs(3));
    assert!(
        t.elapsed() >= Duration::from_millis(500),
        "keep-alives not paced"
    );

    // SIGHUP with a new log filter: applied; with a new API port: named for the restart.
    std::fs::write(
        &config,
        format!("{text}\n[log]\nfilter = \"gaiamesh=debug,info\"\n")
            .replace("listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1:1\""),
    )
    .unwrap();
    kill(pid, "HUP");
    let seen = expect(&sock, "READY=1", Duration::from_secs(10));
    assert!(seen.iter().any(|m| m.contains("RELOADING=1")), "{seen:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !node_log().contains("config reloaded") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let l = node_log();
    assert!(l.contains("config reloaded"), "{l}");
    assert!(l.contains("applied=[\"log.filter\"]"), "{l}");
    assert!(l.contains("at_restart=[\"api\"]"), "{l}");

    // SIGHUP with a broken file: nothing changes, the node keeps running and says why.
    std::fs::write(&config, "[log]\nfliter = 1\n").unwrap();
    kill(pid, "HUP");
    expect(&sock, "READY=1", Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !node_log().contains("config not reloaded") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let l = node_log();
    assert!(l.contains("config not reloaded"), "{l}");
    assert!(l.contains("fliter"), "{l}");
    let out = gaiamesh()
        .args(["status", "--json", "--data-dir", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "node stopped answering after a bad reload"
    );

    // SIGTERM: STOPPING=1, a clean exit, api.json removed.
    kill(pid, "TERM");
    expect(&sock, "STOPPING=1", Duration::from_secs(10));
    let start = Instant::now();
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            start.elapsed() < Duration::from_secs(25),
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(code.success(), "{code:?}\n{}", node_log());
    assert!(!dir.join("api.json").exists());
    assert!(node_log().contains("records flushed"), "{}", node_log());
}
