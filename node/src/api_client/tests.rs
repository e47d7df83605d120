//! The client against canned answers of a one-shot server on loopback: what each failure
//! becomes, and that every error names the node and the request.

use std::{
    io::{Read, Write},
    net::TcpListener,
    time::Duration,
};

use super::{ApiClientError, NodeApi};

/// Serves `response` (head and body) once to the first connection; the request it read.
fn serve_once(response: &'static str) -> (NodeApi, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        // Head, then the body its Content-Length announces.
        loop {
            let n = s.read(&mut buf).unwrap();
            request.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&request).into_owned();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if request.len() >= end + 4 + length || n == 0 {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        s.write_all(response.as_bytes()).unwrap();
        String::from_utf8_lossy(&request).into_owned()
    });
    (NodeApi::at(address, "secret-token"), server)
}

fn json(status: &str, content_type: &str, body: &'static str) -> &'static str {
    Box::leak(
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        )
        .into_boxed_str(),
    )
}

#[test]
fn a_typed_answer_is_decoded_and_the_token_sent() {
    let (api, server) = serve_once(json("200 OK", "application/json", r#"{"ok":true}"#));
    assert!(api.health().unwrap());
    let request = server.join().unwrap();
    assert!(
        request.starts_with("GET /api/v1/health HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(
        request
            .to_ascii_lowercase()
            .contains("authorization: bearer secret-token"),
        "{request}"
    );
}

#[test]
fn query_parameters_are_percent_encoded() {
    let (api, server) = serve_once(json(
        "200 OK",
        "application/json",
        r#"{"source":"replica","truncated":false,"plan":"scan","total":0,"examined":0,"matches":[]}"#,
    ));
    let reply = api
        .directory("node.location.country = DE & x", Some("seq:desc"), 5)
        .unwrap();
    assert_eq!(reply.total, 0);
    assert_eq!(reply.source, crate::daemon::QuerySource::Replica);
    let request = server.join().unwrap();
    let line = request.lines().next().unwrap();
    assert!(line.contains("q=node.location.country"), "{line}");
    assert_eq!(line.matches(' ').count(), 2, "spaces are encoded: {line}");
    assert!(
        line.contains("%26"),
        "the & of the query is encoded: {line}"
    );
    assert!(
        line.contains("limit=5") && line.contains("sort=seq%3Adesc"),
        "{line}"
    );
}

#[test]
fn a_problem_document_becomes_a_refusal_naming_node_request_and_parameter() {
    let (api, server) = serve_once(json(
        "400 Bad Request",
        "application/problem+json",
        r#"{"type":"about:blank","title":"Bad Request","status":400,"detail":"unexpected `=` at column 7","parameter":"q"}"#,
    ));
    let e = api.directory("a = = b", None, 10).unwrap_err();
    server.join().unwrap();
    assert!(
        matches!(e, ApiClientError::Refused { status: 400, .. }),
        "{e:?}"
    );
    assert_eq!(e.status(), Some(400));
    let text = e.to_string();
    assert!(text.contains("GET /api/v1/directory"), "{text}");
    assert!(text.contains(api.address()), "{text}");
    assert!(text.contains("unexpected `=` at column 7 (q)"), "{text}");
}

#[test]
fn an_error_without_a_problem_document_is_an_unexpected_answer() {
    let (api, server) = serve_once(json("502 Bad Gateway", "text/html", "<h1>proxy</h1>"));
    let e = api.status().unwrap_err();
    server.join().unwrap();
    assert!(
        matches!(e, ApiClientError::BadAnswer { status: 502, .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("<h1>proxy</h1>"), "{e}");
}

#[test]
fn an_answer_of_the_wrong_shape_names_what_is_missing() {
    let (api, server) = serve_once(json("200 OK", "application/json", r#"{"seq":"seven"}"#));
    let e = api.publish(None).unwrap_err();
    let request = server.join().unwrap();
    assert!(
        request.starts_with("POST /api/v1/sd HTTP/1.1\r\n"),
        "{request}"
    );
    let text = e.to_string();
    assert!(
        matches!(e, ApiClientError::BadAnswer { status: 200, .. }),
        "{e:?}"
    );
    assert!(
        text.contains("POST /api/v1/sd") && text.contains("seq"),
        "{text}"
    );
}

#[test]
fn a_json_body_is_sent_with_its_media_type() {
    let (api, server) = serve_once(json("200 OK", "application/json", r#"{"job":7}"#));
    let job = api
        .exchange_fetch(&crate::daemon::FetchRequest {
            provider: Some("12D3KooW".into()),
            query: None,
            asset: Some("climate".into()),
            purpose: "research".into(),
            onward_transfer: false,
            out: "/tmp/out.bin".into(),
            attempts: 3,
            overwrite: false,
        })
        .unwrap();
    assert_eq!(job, 7);
    let request = server.join().unwrap();
    assert!(
        request
            .to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{request}"
    );
    assert!(request.contains(r#""purpose":"research""#), "{request}");
}

#[test]
fn a_node_that_does_not_answer_in_time_is_a_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    // Accepts (the kernel does) and never answers.
    let api = NodeApi::at(address, "t").timeout(Duration::from_millis(300));
    let e = api.status().unwrap_err();
    assert!(matches!(e, ApiClientError::Timeout { .. }), "{e:?}");
    assert!(e.to_string().contains("no answer within 300ms"), "{e}");
    drop(listener);
}

#[test]
fn a_node_that_is_gone_is_unreachable() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let e = NodeApi::at(address.clone(), "t").status().unwrap_err();
    assert!(matches!(e, ApiClientError::Unreachable { .. }), "{e:?}");
    assert!(e.to_string().contains(&address), "{e}");
}

#[test]
fn a_data_dir_without_a_node_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let e = NodeApi::of(&crate::datadir::DataDir::new(tmp.path())).unwrap_err();
    assert!(matches!(e, ApiClientError::NotRunning { .. }), "{e:?}");
    assert!(e.to_string().contains("no node is running"), "{e}");
}

#[test]
fn an_api_json_left_by_a_killed_node_is_stale() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("api.json"),
        r#"{"address":"http://127.0.0.1:9","token":"t"}"#,
    )
    .unwrap();
    // The lock file exists and nobody holds it: the node that wrote api.json is gone.
    std::fs::write(tmp.path().join("node.lock"), b"").unwrap();
    let e = NodeApi::of(&crate::datadir::DataDir::new(tmp.path())).unwrap_err();
    assert!(matches!(e, ApiClientError::Stale { .. }), "{e:?}");
    assert!(e.to_string().contains("did not stop cleanly"), "{e}");
}
