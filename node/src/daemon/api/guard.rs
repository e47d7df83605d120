//! What every request passes before a handler sees it, decided from the request head alone
//! (no body byte is read before it): size of the head, the `Host`/`Origin` allow-list, and the
//! bearer token.
//!
//! Which requests need the token is decided here, in one place ([`needs_token`]): every write,
//! and reads of operator-only state (exchange jobs, the audit log). Handlers learn whether the
//! caller presented the token from the [`Authorized`] extension (e.g. to leave local paths out).

use std::{net::IpAddr, sync::Arc};

use axum::{
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use subtle::ConstantTimeEq;

use super::problem::Problem;

/// Longest request target (path and query) answered; longer ones get 414.
pub(super) const MAX_URI_BYTES: usize = 8 * 1024;
/// Most bytes of header names and values answered; more get 431.
pub(super) const MAX_HEAD_BYTES: usize = 16 * 1024;

/// The message of a 401.
const UNAUTHORIZED: &str = "this needs `Authorization: Bearer <token from api.json>`";

/// Whether the request carried the API token (set by [`check`] on every request).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Authorized(pub(crate) bool);

/// The guard's configuration.
#[derive(Debug)]
pub(super) struct Guard {
    token: String,
    hosts: AllowedHosts,
}

impl Guard {
    pub(super) fn new(token: String, hosts: AllowedHosts) -> Arc<Self> {
        Arc::new(Self { token, hosts })
    }

    fn token_matches(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
            .is_some_and(|t| bool::from(t.ct_eq(self.token.as_bytes())))
    }
}

/// Whether `method` on `path` needs the token: every write, and reads of operator-only state.
pub(super) fn needs_token(method: &Method, path: &str) -> bool {
    if method != Method::GET && method != Method::HEAD {
        return true;
    }
    ["/api/v1/exchange", "/api/v1/compute", "/api/v1/audit"]
        .iter()
        .any(|p| path == *p || path.strip_prefix(p).is_some_and(|r| r.starts_with('/')))
}

/// The middleware.
pub(super) async fn check(
    State(guard): State<Arc<Guard>>,
    mut req: Request,
    next: Next,
) -> Response {
    if let Err(p) = head_size(&req) {
        return p.into_response();
    }
    if let Err(p) = guard.hosts.check(req.headers()) {
        return p.into_response();
    }
    let authorized = guard.token_matches(req.headers());
    if !authorized && needs_token(req.method(), req.uri().path()) {
        let mut r = Problem::new(StatusCode::UNAUTHORIZED, UNAUTHORIZED)
            .parameter("Authorization")
            .into_response();
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    }
    req.extensions_mut().insert(Authorized(authorized));
    next.run(req).await
}

fn head_size(req: &Request) -> Result<(), Problem> {
    let uri = req.uri().to_string().len();
    if uri > MAX_URI_BYTES {
        return Err(Problem::new(
            StatusCode::URI_TOO_LONG,
            format!("the request target is {uri} bytes, at most {MAX_URI_BYTES} allowed"),
        ));
    }
    let head: usize = req
        .headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    if head > MAX_HEAD_BYTES {
        return Err(Problem::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("the headers are {head} bytes, at most {MAX_HEAD_BYTES} allowed"),
        ));
    }
    Ok(())
}

/// Host names a request may name. A page a browser loaded from elsewhere can make it send
/// requests to the loopback API under the page's own host name (DNS rebinding), so only IP
/// literals, `localhost` and configured names are accepted in `Host`; `Origin` must name a
/// loopback address, `localhost`, the listen address or a configured name.
#[derive(Debug)]
pub(super) struct AllowedHosts {
    /// Lower-cased names (`host` or `host:port`) allowed besides loopback and IP literals.
    names: Vec<String>,
    listen: IpAddr,
}

impl AllowedHosts {
    pub(super) fn new(listen: IpAddr, configured: &[String]) -> Self {
        let mut names = vec!["localhost".to_owned()];
        names.extend(configured.iter().map(|h| h.to_ascii_lowercase()));
        Self { names, listen }
    }

    fn check(&self, headers: &HeaderMap) -> Result<(), Problem> {
        if let Some(host) = headers.get(header::HOST) {
            let host = host.to_str().unwrap_or("").to_ascii_lowercase();
            let (name, _) = split_port(&host);
            if parse_ip(name).is_none() && !self.named(&host, name) {
                return Err(Problem::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "Host {host:?} is not allowed; use an IP address or localhost, \
                         or add it to [api] allowed_hosts"
                    ),
                )
                .parameter("Host"));
            }
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("").to_ascii_lowercase();
            let authority = origin
                .split_once("://")
                .map(|(_, rest)| rest.split('/').next().unwrap_or(""))
                .unwrap_or("");
            let (name, _) = split_port(authority);
            let ok = !authority.is_empty()
                && match parse_ip(name) {
                    Some(ip) => ip.is_loopback() || ip == self.listen,
                    None => self.named(authority, name),
                };
            if !ok {
                return Err(Problem::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "Origin {origin:?} is not allowed; add its host to [api] allowed_hosts"
                    ),
                )
                .parameter("Origin"));
            }
        }
        Ok(())
    }

    fn named(&self, full: &str, name: &str) -> bool {
        self.names.iter().any(|n| n == full || n == name)
    }
}

/// `host:port` → (`host`, port); IPv6 literals keep their brackets off.
fn split_port(authority: &str) -> (&str, Option<&str>) {
    if let Some(rest) = authority.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((ip, tail)) => (ip, tail.strip_prefix(':')),
            None => (authority, None),
        };
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(p)),
        _ => (authority, None),
    }
}

fn parse_ip(name: &str) -> Option<IpAddr> {
    name.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn writes_and_operator_reads_need_the_token() {
        assert!(needs_token(&Method::POST, "/api/v1/sd"));
        assert!(needs_token(&Method::DELETE, "/api/v1/status"));
        assert!(needs_token(&Method::GET, "/api/v1/exchange"));
        assert!(needs_token(&Method::GET, "/api/v1/compute/3"));
        assert!(needs_token(&Method::GET, "/api/v1/exchange/fetch/3"));
        assert!(needs_token(&Method::GET, "/api/v1/audit/verify"));
        assert!(!needs_token(&Method::GET, "/api/v1/status"));
        assert!(!needs_token(&Method::GET, "/api/v1/exchangeable"));
        assert!(!needs_token(&Method::GET, "/api/v1/assets"));
    }

    #[test]
    fn token_comparison() {
        let g = Guard::new("abc".into(), AllowedHosts::new([127, 0, 0, 1].into(), &[]));
        assert!(g.token_matches(&headers(&[("authorization", "Bearer abc")])));
        assert!(!g.token_matches(&headers(&[("authorization", "Bearer abd")])));
        assert!(!g.token_matches(&headers(&[("authorization", "Bearer ab")])));
        assert!(!g.token_matches(&headers(&[("authorization", "abc")])));
        assert!(!g.token_matches(&HeaderMap::new()));
    }

    #[test]
    fn rebinding_hosts_and_foreign_origins_are_refused() {
        let h = AllowedHosts::new([127, 0, 0, 1].into(), &["node.example:7300".into()]);
        for ok in [
            "127.0.0.1:7300",
            "localhost:7300",
            "LOCALHOST",
            "[::1]:7300",
            "10.1.2.3",
            "node.example:7300",
        ] {
            assert!(h.check(&headers(&[("host", ok)])).is_ok(), "{ok}");
        }
        for bad in [
            "evil.example:7300",
            "node.example:80",
            "localhost.evil.example",
        ] {
            let p = h.check(&headers(&[("host", bad)])).unwrap_err();
            assert_eq!(p.into_response().status(), 403, "{bad}");
        }
        for ok in [
            "http://127.0.0.1:7300",
            "http://localhost:7300",
            "http://[::1]",
        ] {
            assert!(h.check(&headers(&[("origin", ok)])).is_ok(), "{ok}");
        }
        for bad in ["null", "http://evil.example", "http://10.1.2.3", "garbage"] {
            assert!(h.check(&headers(&[("origin", bad)])).is_err(), "{bad}");
        }
        assert!(
            h.check(&HeaderMap::new()).is_ok(),
            "no Host (HTTP/1.0) is fine"
        );
    }

    #[test]
    fn ports_split_off() {
        assert_eq!(split_port("a:1"), ("a", Some("1")));
        assert_eq!(split_port("[::1]:2"), ("::1", Some("2")));
        assert_eq!(split_port("[::1]"), ("::1", None));
        assert_eq!(split_port("::1"), ("::1", None));
        assert_eq!(split_port("a"), ("a", None));
    }
}
