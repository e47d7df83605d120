//! # gaiamesh-e2e
//!
//! End-to-end tests that run the real `gaiamesh` binary. [`gaiamesh`] returns a command for
//! it, building the binary first when needed, so the tests work under `cargo test` and
//! `cargo nextest` alike; `GAIAMESH_BIN=PATH` runs them against another build instead. Tests live in `tests/tests/`, grouped by area.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::OnceLock,
};

/// Path of the `gaiamesh` binary of this workspace, built on first use.
pub fn binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // Another build of the binary (e.g. with another allocator) for comparisons.
        if let Some(bin) = std::env::var_os("GAIAMESH_BIN") {
            return PathBuf::from(bin);
        }
        // target/<profile>/deps/<test> → target/<profile>/gaiamesh
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>");
        let bin = profile_dir.join("gaiamesh");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        // the profile the tests were built with: target/debug is `dev`, any other directory
        // is its profile's name (`release`, or a custom one given with --cargo-profile)
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev",
            Some(name) => name,
        };
        let mut build = Command::new(cargo);
        build.args([
            "build",
            "--quiet",
            "--profile",
            profile,
            "-p",
            "gaiamesh-node",
            "--bin",
            "gaiamesh",
        ]);
        let status = build.status().expect("run cargo build");
        assert!(status.success(), "cargo build of gaiamesh failed");
        assert!(bin.exists(), "{} missing after build", bin.display());
        bin
    })
}

/// A `gaiamesh` command.
pub fn gaiamesh() -> Command {
    let mut c = Command::new(binary());
    c.env_remove("GAIAMESH_DATA_DIR");
    c
}

/// Runs `gaiamesh ARGS` in `dir` and returns its output.
pub fn run(dir: &Path, args: &[&str]) -> Output {
    gaiamesh()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("spawn gaiamesh")
}

/// Runs `gaiamesh ARGS` and asserts success; returns stdout.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert!(
        out.status.success(),
        "gaiamesh {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `gaiamesh ARGS` and asserts success; returns stderr (progress, notes, reports).
pub fn ok_stderr(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "gaiamesh {args:?} failed ({}):\n{}{stderr}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
    );
    stderr
}

/// Runs `gaiamesh ARGS`, asserts exit code 1, and returns stdout + stderr.
pub fn fails(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "gaiamesh {args:?} should fail with 1:\n{text}"
    );
    assert!(
        !text.contains("panicked"),
        "gaiamesh {args:?} panicked:\n{text}"
    );
    text
}

/// Path of a shipped example, e.g. `sd/01-nordwolke-de-nuernberg.toml`.
pub fn example(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../config/examples")
        .join(rel)
}

/// WebAssembly algorithms for the compute-to-data tests, built from source.
pub mod wasm {
    use std::{
        path::{Path, PathBuf},
        process::Command,
        sync::OnceLock,
    };

    fn workspace() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    /// The directory holding the test guests (`compute/tests/guests/`: echo, spin, hog,
    /// flood, escape, net, fail, panic) and the example `column-stats`, built for
    /// wasm32-wasip2 on first use; `None` (with the reason printed) when that target is
    /// missing, unless `GAIAMESH_REQUIRE_WASM=1` (CI), which makes it a failure.
    pub fn guests() -> Option<&'static Path> {
        static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
        BUILT
            .get_or_init(|| {
                let target_dir = std::env::var_os("CARGO_TARGET_DIR")
                    .map_or_else(|| workspace().join("target"), PathBuf::from)
                    .join("wasm-guests");
                for manifest in [
                    workspace().join("compute/tests/guests/Cargo.toml"),
                    workspace().join("config/examples/algorithms/column-stats/Cargo.toml"),
                ] {
                    let out =
                        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                            .args(["build", "--release", "--quiet", "--target", "wasm32-wasip2"])
                            .arg("--manifest-path")
                            .arg(&manifest)
                            .arg("--target-dir")
                            .arg(&target_dir)
                            .env_remove("RUSTFLAGS")
                            // built as an algorithm author's toolchain would build them, not
                            // linted as this workspace's crates (CI lints through clippy-driver)
                            .env_remove("RUSTC_WORKSPACE_WRAPPER")
                            .env_remove("CLIPPY_ARGS")
                            .output()
                            .expect("cargo runs");
                    if !out.status.success() {
                        let why = String::from_utf8_lossy(&out.stderr);
                        assert!(
                            std::env::var("GAIAMESH_REQUIRE_WASM").as_deref() != Ok("1"),
                            "building {} for wasm32-wasip2 failed:\n{why}",
                            manifest.display()
                        );
                        eprintln!(
                            "SKIPPED: cannot build the test algorithms for wasm32-wasip2 \
                             (rustup target add wasm32-wasip2):\n{why}"
                        );
                        return None;
                    }
                }
                Some(target_dir.join("wasm32-wasip2/release"))
            })
            .as_deref()
    }
}

/// A federation directory and nodes admitted into it, for multi-process tests on loopback.
pub mod mesh {
    use std::{
        path::{Path, PathBuf},
        process::{Child, Stdio},
        time::{Duration, Instant},
    };

    use super::{example, gaiamesh, ok, run};

    /// Creates a federation in `root/fed` and `n` admitted node data dirs `root/node<i>`,
    /// node i with the i-th example self-description as its document.
    pub fn federation(root: &Path, n: usize) -> Vec<PathBuf> {
        ok(
            root,
            &["federation", "init", "--name", "Test Mesh", "--out", "fed"],
        );
        let mut examples: Vec<_> = std::fs::read_dir(example("sd"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        examples.sort();
        (0..n)
            .map(|i| admit(root, &format!("node{i}"), &examples[i % examples.len()]))
            .collect()
    }

    /// Creates the data dir `root/name`, has the federation in `root/fed` admit it with the
    /// participant of the document `sd`, and installs `sd` as the node's self-description.
    pub fn admit(root: &Path, name: &str, sd: &Path) -> PathBuf {
        let dir = root.join(name);
        let peer = ok(
            root,
            &["init", "--data-dir", name, "--genesis", "fed/genesis.toml"],
        )
        .trim()
        .to_owned();
        let cred = format!("{name}.cred");
        let sd_s = sd.to_str().unwrap();
        ok(
            root,
            &[
                "federation",
                "admit",
                "--federation",
                "fed",
                "--peer",
                &peer,
                "--participant",
                sd_s,
                "--out",
                &cred,
            ],
        );
        ok(
            root,
            &[
                "init",
                "--data-dir",
                name,
                "--genesis",
                "fed/genesis.toml",
                "--credential",
                &cred,
            ],
        );
        std::fs::copy(sd, dir.join("sd.toml")).unwrap();
        dir
    }

    /// A federation of `n` nodes on loopback (node0 the bootstrap peer of the others),
    /// started and waiting until each has admitted all others.
    pub fn start(root: &Path, n: usize) -> Vec<Node> {
        start_with(root, n, |_| "")
    }

    /// [`start`], with `api(i)` as extra lines in node i's `[api]` section.
    pub fn start_with<'a>(root: &Path, n: usize, api: impl Fn(usize) -> &'a str) -> Vec<Node> {
        let dirs = federation(root, n);
        configure_with(&dirs[0], &[], api(0), "");
        let n0 = Node::start(&dirs[0]);
        let boot = vec![n0.address()];
        let mut nodes = vec![n0];
        for (i, d) in dirs.iter().enumerate().skip(1) {
            configure_with(d, &boot, api(i), "");
            nodes.push(Node::start(d));
        }
        for node in &nodes {
            node.wait_for("admission of every peer", Duration::from_secs(30), |x| {
                x.status()["admitted_peers"].as_u64().unwrap_or(0) as usize >= n - 1
            });
        }
        nodes
    }

    /// Writes a loopback config (QUIC on a free port, API on a free port) with `bootstrap`.
    pub fn configure(dir: &Path, bootstrap: &[String]) {
        configure_with(dir, bootstrap, "", "");
    }

    /// [`configure`] with extra lines in the `[api]` and `[directory]` sections.
    pub fn configure_with(dir: &Path, bootstrap: &[String], api: &str, directory: &str) {
        let boot: Vec<String> = bootstrap.iter().map(|b| format!("{b:?}")).collect();
        std::fs::write(
            dir.join("config.toml"),
            format!(
                "[network]\nlisten = [\"/ip4/127.0.0.1/udp/0/quic-v1\"]\nbootstrap = [{}]\n\
                 [api]\nlisten = \"127.0.0.1:0\"\n{api}\n\
                 [directory]\nreconcile_interval = \"2s\"\n{directory}\n",
                boot.join(", ")
            ),
        )
        .unwrap();
    }

    /// The `host:port` and bearer token of the node API of data dir `dir` (its `api.json`).
    pub fn api_address(dir: &Path) -> (String, String) {
        let info: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("api.json")).unwrap()).unwrap();
        let host = info["address"]
            .as_str()
            .unwrap()
            .trim_start_matches("http://");
        (host.to_owned(), info["token"].as_str().unwrap().to_owned())
    }

    /// One HTTP/1.1 request to the node API of data dir `dir` (address and token from its
    /// `api.json`); returns the status code and the body.
    pub fn http(dir: &Path, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        use std::io::{Read, Write};
        let (host, token) = api_address(dir);
        let mut s = std::net::TcpStream::connect(&host).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            token,
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut response = Vec::new();
        s.read_to_end(&mut response).unwrap();
        let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let status_line = String::from_utf8_lossy(&response[..split]).into_owned();
        let code = status_line
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        (code, response[split + 4..].to_vec())
    }

    /// Sends `request` (a complete HTTP/1.1 request, head and body) to `host` and returns the
    /// status code, the head and the body of the response.
    pub fn raw_http(host: &str, request: &[u8]) -> (u16, String, Vec<u8>) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(host).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        // A server may answer (and close) before the whole body is sent: that is the point
        // of several tests, so a failed write is not an error here.
        let _ = s.write_all(request);
        let mut response = Vec::new();
        let _ = s.read_to_end(&mut response);
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| {
                panic!("no HTTP response: {:?}", String::from_utf8_lossy(&response))
            });
        let head = String::from_utf8_lossy(&response[..split]).into_owned();
        let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        (code, head, response[split + 4..].to_vec())
    }

    /// A running `gaiamesh run` process, killed on drop.
    #[derive(Debug)]
    pub struct Node {
        /// Its data dir.
        pub dir: PathBuf,
        child: Child,
    }

    impl Node {
        /// Starts the daemon on `dir` and waits until its API answers.
        pub fn start(dir: &Path) -> Self {
            Self::start_env(dir, &[])
        }

        /// [`Self::start`] with extra environment variables; the log is appended to.
        pub fn start_env(dir: &Path, env: &[(&str, &str)]) -> Self {
            let _ = std::fs::remove_file(dir.join("api.json"));
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("node.log"))
                .unwrap();
            let child = gaiamesh()
                .args(["run", "--data-dir", dir.to_str().unwrap()])
                .envs(env.iter().copied())
                .env("RUST_LOG", "info")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap();
            let node = Self {
                dir: dir.to_owned(),
                child,
            };
            node.wait_for("API to come up", Duration::from_secs(20), |n| {
                n.try_status().is_some()
            });
            node
        }

        /// The process id.
        pub fn pid(&self) -> u32 {
            self.child.id()
        }

        /// `gaiamesh status --json`, if the node answers.
        pub fn try_status(&self) -> Option<serde_json::Value> {
            let out = run(&self.dir, &["status", "--data-dir", ".", "--json"]);
            out.status
                .success()
                .then(|| serde_json::from_slice(&out.stdout).ok())
                .flatten()
        }

        /// `gaiamesh status --json`.
        pub fn status(&self) -> serde_json::Value {
            self.try_status().unwrap_or_else(|| {
                panic!("{} does not answer:\n{}", self.dir.display(), self.log())
            })
        }

        /// The node's QUIC address with its PeerId, for bootstrapping others.
        pub fn address(&self) -> String {
            self.address_with("/quic")
        }

        /// The node's first listen address containing `part` (e.g. `/tcp/`), with its PeerId.
        pub fn address_with(&self, part: &str) -> String {
            let s = self.status();
            let addr = s["listen_addrs"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|a| a.as_str())
                .find(|a| a.contains(part))
                .unwrap()
                .to_owned();
            format!("{addr}/p2p/{}", s["peer_id"].as_str().unwrap())
        }

        /// Polls `cond` every 200 ms until it holds or `timeout` passes (then panics).
        pub fn wait_for(&self, what: &str, timeout: Duration, mut cond: impl FnMut(&Self) -> bool) {
            let start = Instant::now();
            while !cond(self) {
                assert!(
                    start.elapsed() < timeout,
                    "{}: timed out waiting for {what}\n{}",
                    self.dir.display(),
                    self.log()
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }

        /// The node's log so far.
        pub fn log(&self) -> String {
            std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
        }

        /// Kills the node with SIGKILL (no shutdown at all) and waits for it to exit.
        pub fn kill(mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }

        /// Stops the node with SIGTERM and waits for it to exit.
        pub fn stop(mut self) {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
        }
    }

    impl Drop for Node {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
