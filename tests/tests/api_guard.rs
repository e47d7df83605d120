//! The node API against a misbehaving local client: authentication before any body byte,
//! per-route body limits, problem documents for every error, the Host/Origin allow-list,
//! operator-only reads, bounded connections, slow headers, capped event streams, and offline
//! commands after `kill -9` (issue 16).

#![allow(clippy::unwrap_used)]

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

use gaiamesh_e2e::{
    mesh::{Node, api_address, configure_with, federation, raw_http},
    ok, run,
};

/// Status, head and parsed problem document of a response that must be one.
fn problem(host: &str, request: &[u8]) -> (u16, String, serde_json::Value) {
    let (code, head, body) = raw_http(host, request);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{code} is not a problem document:\n{head}\n{}",
        String::from_utf8_lossy(&body)
    );
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["status"], code, "{v}");
    assert!(v["title"].is_string() && v["detail"].is_string(), "{v}");
    (code, head, v)
}

fn get(host: &str, path: &str, extra: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n").into_bytes()
}

fn post(host: &str, path: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

#[test]
fn the_api_refuses_abuse_with_problem_documents_and_stays_bounded() {
    let root = tempfile::tempdir().unwrap();
    let dirs = federation(root.path(), 1);
    configure_with(
        &dirs[0],
        &[],
        "max_connections = 16\nmax_event_subscribers = 2\nheader_read_timeout = \"1s\"\n",
        "",
    );
    let node = Node::start(&dirs[0]);
    let (host, token) = api_address(&dirs[0]);
    let bearer = format!("Authorization: Bearer {token}\r\n");

    // Authentication is decided from the head: a token-less 3 MB body gets 401, not 413, and
    // the server never waits for the body.
    let mut req = format!(
        "POST /api/v1/sd HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/toml\r\n\
         Content-Length: 3000000\r\n\r\n"
    )
    .into_bytes();
    req.extend(std::iter::repeat_n(b'a', 64 * 1024));
    let (code, head, v) = problem(&host, &req);
    assert_eq!(code, 401, "{v}");
    assert!(head.contains("www-authenticate: Bearer") || head.contains("WWW-Authenticate: Bearer"));
    assert_eq!(v["parameter"], "Authorization");
    // A wrong token is no token.
    let (code, _, _) = problem(
        &host,
        &post(
            &host,
            "/api/v1/repo/fetch",
            "Authorization: Bearer 00\r\n",
            b"x",
        ),
    );
    assert_eq!(code, 401);

    // With the token, a body over the route's limit is refused before it is read.
    let mut req = format!(
        "POST /api/v1/sd HTTP/1.1\r\nHost: {host}\r\n{bearer}Content-Type: application/toml\r\n\
         Content-Length: 300000\r\n\r\n"
    )
    .into_bytes();
    req.extend(std::iter::repeat_n(b'a', 1024));
    let (code, _, v) = problem(&host, &req);
    assert_eq!(code, 413, "{v}");

    // Heads too large for the API.
    let long = format!("/api/v1/status?x={}", "a".repeat(10 * 1024));
    assert_eq!(problem(&host, &get(&host, &long, "")).0, 414);
    let pad = format!("X-Pad: {}\r\n", "b".repeat(20 * 1024));
    assert_eq!(problem(&host, &get(&host, "/api/v1/status", &pad)).0, 431);

    // Bad query strings name what is wrong.
    let (code, _, v) = problem(&host, &get(&host, "/api/v1/directory", ""));
    assert_eq!(code, 400);
    assert!(v["detail"].as_str().unwrap().contains('q'), "{v}");
    let (code, _, v) = problem(
        &host,
        &get(&host, "/api/v1/directory?q=node.kind%20%3D", ""),
    );
    assert_eq!(code, 400);
    assert_eq!(v["parameter"], "q");
    assert_eq!(
        problem(&host, &get(&host, "/api/v1/directory?q=%FF%FE", "")).0,
        400
    );
    assert_eq!(problem(&host, &get(&host, "/api/v1/nothing", "")).0, 404);
    assert_eq!(problem(&host, &get(&host, "/api/v1/sd", "")).0, 405);

    // DNS rebinding: a foreign Host or Origin is refused; loopback names pass.
    let (code, _, v) = problem(&host, &get("evil.example:7300", "/api/v1/status", ""));
    assert_eq!((code, v["parameter"].as_str()), (403, Some("Host")));
    let (code, _, v) = problem(
        &host,
        &get(&host, "/api/v1/status", "Origin: http://evil.example\r\n"),
    );
    assert_eq!((code, v["parameter"].as_str()), (403, Some("Origin")));
    let port = host.rsplit(':').next().unwrap();
    let (code, _, _) = raw_http(
        &host,
        &get(
            &format!("localhost:{port}"),
            "/api/v1/health",
            "Origin: http://localhost\r\n",
        ),
    );
    assert_eq!(code, 200);

    // POST /sd takes the documented media types and says which it expected.
    let peer = node.status()["peer_id"].as_str().unwrap().to_owned();
    let (code, _, body) = raw_http(&host, &get(&host, &format!("/api/v1/directory/{peer}"), ""));
    assert_eq!(code, 200);
    let doc = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["document"].to_string();
    let (code, _, v) = problem(&host, &post(&host, "/api/v1/sd", &bearer, doc.as_bytes()));
    assert_eq!(code, 415, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("application/toml or application/json")
    );
    let (code, _, _) = problem(
        &host,
        &post(
            &host,
            "/api/v1/sd",
            &format!("{bearer}Content-Type: text/plain\r\n"),
            doc.as_bytes(),
        ),
    );
    assert_eq!(code, 415);
    let (code, _, _) = problem(
        &host,
        &post(
            &host,
            "/api/v1/sd",
            &format!("{bearer}Content-Type: application/toml\r\n"),
            doc.as_bytes(),
        ),
    );
    assert_eq!(code, 422, "JSON is not TOML");
    let (code, _, body) = raw_http(
        &host,
        &post(
            &host,
            "/api/v1/sd",
            &format!("{bearer}Content-Type: application/json; charset=utf-8\r\n"),
            doc.as_bytes(),
        ),
    );
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));

    // Operator-only state needs the token; asset listings leave local paths out without it.
    std::fs::write(root.path().join("data.csv"), b"a,b\n1,2\n").unwrap();
    std::fs::write(root.path().join("policy.toml"), "jurisdiction = [\"EU\"]\n").unwrap();
    ok(
        root.path(),
        &[
            "asset",
            "add",
            "data.csv",
            "--id",
            "d1",
            "--policy",
            "policy.toml",
            "--data-dir",
            "node0",
        ],
    );
    for path in ["/api/v1/exchange", "/api/v1/audit", "/api/v1/audit/verify"] {
        assert_eq!(problem(&host, &get(&host, path, "")).0, 401, "{path}");
        assert_eq!(raw_http(&host, &get(&host, path, &bearer)).0, 200, "{path}");
    }
    let (_, _, open) = raw_http(&host, &get(&host, "/api/v1/assets", ""));
    let open: serde_json::Value = serde_json::from_slice(&open).unwrap();
    assert_eq!(open[0]["id"], "d1");
    assert!(open[0].get("path").is_none(), "{open}");
    let (_, _, full) = raw_http(&host, &get(&host, "/api/v1/assets", &bearer));
    let full: serde_json::Value = serde_json::from_slice(&full).unwrap();
    assert!(
        full[0]["path"].as_str().unwrap().ends_with("data.csv"),
        "{full}"
    );

    // A client that never finishes its header is closed after header_read_timeout (1 s).
    let mut slow = TcpStream::connect(&host).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    slow.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x")
        .unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    let held = started.elapsed();
    assert!(
        held < Duration::from_secs(5),
        "a slow header held a connection {held:?}"
    );
    let text = String::from_utf8_lossy(&buf);
    assert!(text.is_empty() || text.contains(" 408 "), "{text}");

    // More idle connections than max_connections (16): the idle ones make room, the API
    // still answers, and the node holds no more than the cap.
    let idle: Vec<TcpStream> = (0..40)
        .map(|_| TcpStream::connect(&host).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(600));
    let (code, _, _) = raw_http(&host, &get(&host, "/api/v1/health", ""));
    assert_eq!(code, 200);
    let metrics = String::from_utf8(raw_http(&host, &get(&host, "/metrics", "")).2).unwrap();
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing:\n{metrics}"))
    };
    assert!(value("gaiamesh_api_connections_open ") <= 16.0, "{metrics}");
    assert!(
        value("gaiamesh_api_connections_evicted_total ") >= 24.0,
        "{metrics}"
    );
    drop(idle);

    // Event streams are capped at 2: a third closes the oldest, which is told so.
    let sse = |_: usize| {
        let mut s = TcpStream::connect(&host).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(&get(&host, "/api/v1/events", "")).unwrap();
        let mut first = [0u8; 256];
        let n = s.read(&mut first).unwrap();
        assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
        s
    };
    let mut oldest = sse(0);
    let _second = sse(1);
    let _third = sse(2);
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    while !seen.contains("event: closed") && Instant::now() < deadline {
        match oldest.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    assert!(seen.contains("event: closed"), "{seen}");

    // kill -9 leaves api.json behind: offline commands see that no node holds the data dir
    // and read the database instead of failing with "connection refused".
    node.kill();
    assert!(dirs[0].join("api.json").exists());
    let out = ok(
        root.path(),
        &[
            "query",
            "node.location.country = DE",
            "--data-dir",
            "node0",
            "--json",
        ],
    );
    assert!(out.contains(&peer), "{out}");
    let out = ok(
        root.path(),
        &["sd", "show", &peer, "--data-dir", "node0", "--json"],
    );
    assert!(out.contains(&peer), "{out}");
    let status = run(root.path(), &["status", "--data-dir", "node0"]);
    assert_eq!(status.status.code(), Some(1));
    let text = String::from_utf8_lossy(&status.stderr);
    assert!(text.contains("no node is running"), "{text}");
}
