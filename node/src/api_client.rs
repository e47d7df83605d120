//! A minimal client of a running node's HTTP API, for the CLI and for benchmarks: the
//! address and token come from the data dir's `api.json`.

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use anyhow::{Context, Result, bail};

use crate::datadir::DataDir;

/// GETs `path` from the node's API (address from `api.json`), returning the JSON body.
pub fn api_get(dir: &DataDir, path: &str) -> Result<serde_json::Value> {
    api_request(dir, "GET", path, None)
}

/// Whether a node is running on `dir`: its `api.json` exists and a live process holds the
/// data dir's lock. An `api.json` left behind by a node killed with `kill -9` does not count,
/// so offline commands read the database instead.
pub fn node_running(dir: &DataDir) -> bool {
    dir.root().join("api.json").exists() && dir.node_alive()
}

/// Percent-encodes a query-string value.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// GETs `path` and returns the body as text (for `/metrics`); fails unless 200.
pub fn api_get_text(dir: &DataDir, path: &str) -> Result<String> {
    let (status, body) = raw_request(
        dir,
        "GET",
        path,
        "text/plain",
        None,
        Duration::from_secs(10),
    )?;
    if status != "200" {
        bail!("GET {path}: HTTP {status}: {body}");
    }
    Ok(body)
}

/// Sends a request to the node's API with the token from `api.json`; a body is sent as JSON
/// when it is a JSON object, else as plain text.
pub fn api_request(
    dir: &DataDir,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<serde_json::Value> {
    let content_type = match body {
        Some(b) if b.trim_start().starts_with('{') => "application/json",
        _ => "text/plain; charset=utf-8",
    };
    api_request_as(dir, method, path, content_type, body)
}

/// Sends a request with a body of the given media type (e.g. `application/toml`).
pub fn api_request_as(
    dir: &DataDir,
    method: &str,
    path: &str,
    content_type: &str,
    body: Option<&str>,
) -> Result<serde_json::Value> {
    api_request_within(
        dir,
        method,
        path,
        content_type,
        body,
        Duration::from_secs(10),
    )
}

/// [`api_request_as`] for requests whose answer takes long (a backup): `timeout` for the
/// answer instead of 10 s.
pub fn api_request_within(
    dir: &DataDir,
    method: &str,
    path: &str,
    content_type: &str,
    body: Option<&str>,
    timeout: Duration,
) -> Result<serde_json::Value> {
    let (status, body) = raw_request(dir, method, path, content_type, body, timeout)?;
    let value: serde_json::Value =
        serde_json::from_str(&body).with_context(|| format!("unexpected response: {body}"))?;
    if status != "200" {
        // A problem document (RFC 9457): `detail` says what was wrong.
        let detail = value["detail"].as_str().unwrap_or(&body);
        match value["parameter"].as_str() {
            Some(p) => bail!("{detail} ({p})"),
            None => bail!("{detail}"),
        }
    }
    Ok(value)
}

/// The running node's `api.json` (address and token).
fn api_info(dir: &DataDir) -> Result<serde_json::Value> {
    let info_path = dir.root().join("api.json");
    if info_path.exists() && !dir.node_alive() {
        bail!(
            "no node is running on {} (its api.json is left from a node that did not stop cleanly)",
            dir.root().display()
        );
    }
    Ok(serde_json::from_str(
        &std::fs::read_to_string(&info_path).with_context(|| {
            format!(
                "no node is running on {} (no api.json)",
                dir.root().display()
            )
        })?,
    )?)
}

/// The dashboard of the node running on `dir`: `http://ADDRESS/ui/` (docs/dashboard.md).
pub fn dashboard_url(dir: &DataDir) -> Result<String> {
    let info = api_info(dir)?;
    let address = info["address"]
        .as_str()
        .context("api.json has no address")?;
    Ok(format!("{}/ui/", address.trim_end_matches('/')))
}

/// One HTTP/1.1 request: (status code, body).
fn raw_request(
    dir: &DataDir,
    method: &str,
    path: &str,
    content_type: &str,
    body: Option<&str>,
    timeout: Duration,
) -> Result<(String, String)> {
    let info = api_info(dir)?;
    let address = info["address"]
        .as_str()
        .context("api.json has no address")?;
    let hostport = address
        .strip_prefix("http://")
        .context("api.json address is not http://")?;
    let mut stream = TcpStream::connect(hostport)
        .with_context(|| format!("cannot reach the node at {address}"))?;
    stream.set_read_timeout(Some(timeout))?;
    let token = info["token"].as_str().unwrap_or_default();
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("malformed HTTP response")?;
    let status = head.split_whitespace().nth(1).unwrap_or("?").to_owned();
    Ok((status, body.to_owned()))
}
