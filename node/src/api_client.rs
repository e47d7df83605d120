//! The client of a running node's HTTP API, for the CLI, the devnet, the testbed and the
//! benches: one [`NodeApi`] per node, built from the data dir's `api.json` (address and
//! token), speaking HTTP/1.1 through `ureq` with a timeout on every request.
//!
//! Answers are decoded into the same types the daemon sends and the OpenAPI document
//! (`/api/v1/openapi.json`) is generated from, so a change of the API shows up here at
//! compile time. A refusal (a problem document, RFC 9457) becomes
//! [`ApiClientError::Refused`] naming the node, the request, the status and the detail.

mod error;

use std::time::Duration;

use serde::{Serialize, de::DeserializeOwned};

pub use self::error::ApiClientError;
use crate::{
    daemon::{
        ComputeJobView, ComputeRequest, FetchRequest, FetchStarted, FloodBody, JobView, PeerView,
        Problem, Published, QueryReply, ReleaseBody, ReleaseReply, RepoStatus, ReviewDecision,
        ReviewView, ReviewsAnswer, Status, answers,
    },
    datadir::DataDir,
};

/// How long a request may take, answer included, unless [`NodeApi::timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest answer read (a 10 000-row query answer, a repository bundle).
const MAX_ANSWER_BYTES: u64 = 64 * 1024 * 1024;

/// The largest error answer read.
const MAX_PROBLEM_BYTES: u64 = 64 * 1024;

/// Whether a node is running on `dir`: its `api.json` exists and a live process holds the
/// data dir's lock. An `api.json` left behind by a node killed with `kill -9` does not count,
/// so offline commands read the database instead.
pub fn node_running(dir: &DataDir) -> bool {
    dir.root().join("api.json").exists() && dir.node_alive()
}

/// What `api.json` says: where the API listens and the operator's token.
#[derive(Debug, serde::Deserialize)]
struct ApiInfo {
    address: String,
    token: String,
}

/// A body sent with a request.
enum Body<'a> {
    Empty,
    Json(Vec<u8>),
    Text {
        content_type: &'a str,
        text: &'a str,
    },
}

/// The API of one running node.
#[derive(Debug, Clone)]
pub struct NodeApi {
    agent: ureq::Agent,
    /// `http://HOST:PORT`.
    address: String,
    token: String,
    timeout: Duration,
}

impl NodeApi {
    /// The API of the node running on `dir` (its `api.json`).
    pub fn of(dir: &DataDir) -> Result<Self, ApiClientError> {
        let path = dir.root().join("api.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ApiClientError::NotRunning {
                    dir: dir.root().to_path_buf(),
                });
            }
            Err(e) => {
                return Err(ApiClientError::BadInfo {
                    path,
                    reason: e.to_string(),
                });
            }
        };
        if !dir.node_alive() {
            return Err(ApiClientError::Stale {
                dir: dir.root().to_path_buf(),
            });
        }
        let info: ApiInfo = serde_json::from_str(&text).map_err(|e| ApiClientError::BadInfo {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if !info.address.starts_with("http://") {
            return Err(ApiClientError::BadInfo {
                path,
                reason: format!("address {:?} is not http://HOST:PORT", info.address),
            });
        }
        Ok(Self::at(info.address, info.token))
    }

    /// The API at `address` (`http://HOST:PORT`) with the operator's `token`.
    pub fn at(address: impl Into<String>, token: impl Into<String>) -> Self {
        Self {
            agent: agent(DEFAULT_TIMEOUT),
            address: address.into().trim_end_matches('/').to_owned(),
            token: token.into(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same API with `timeout` for each request instead of [`DEFAULT_TIMEOUT`] (a backup
    /// takes longer).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.agent = agent(timeout);
        self.timeout = timeout;
        self
    }

    /// `http://HOST:PORT`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The node's dashboard (docs/dashboard.md).
    pub fn dashboard_url(&self) -> String {
        format!("{}/ui/", self.address)
    }

    /// GETs `endpoint` (a path, with its query string if any) and decodes the JSON answer.
    pub fn get<T: DeserializeOwned>(&self, endpoint: &str) -> Result<T, ApiClientError> {
        self.get_with(endpoint, &[])
    }

    /// GETs `endpoint` with query parameters, percent-encoded here.
    pub fn get_with<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        query: &[(&str, &str)],
    ) -> Result<T, ApiClientError> {
        let request = self
            .agent
            .get(self.url(endpoint))
            .query_pairs(query.iter().copied());
        let response = self.authorize_without_body(request).call();
        self.decode("GET", endpoint, response)
    }

    /// GETs `endpoint` as text (`/metrics`).
    pub fn get_text(&self, endpoint: &str) -> Result<String, ApiClientError> {
        let request = self.agent.get(self.url(endpoint));
        let response = self.authorize_without_body(request).call();
        let request = format!("GET {endpoint}");
        let mut response = self.checked(&request, response)?;
        let status = response.status().as_u16();
        response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_string()
            .map_err(|e| self.body_error(&request, status, e))
    }

    /// POSTs `body` as JSON and decodes the JSON answer.
    pub fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        endpoint: &str,
        body: &B,
    ) -> Result<T, ApiClientError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ApiClientError::BadAnswer {
            node: self.address.clone(),
            request: format!("POST {endpoint}"),
            status: 0,
            reason: format!("the request body does not encode: {e}"),
        })?;
        self.post(endpoint, Body::Json(bytes))
    }

    /// POSTs `text` with its media type (`application/toml`, `text/plain`, …).
    pub fn post_text<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        content_type: &str,
        text: &str,
    ) -> Result<T, ApiClientError> {
        self.post(endpoint, Body::Text { content_type, text })
    }

    /// POSTs nothing.
    pub fn post_empty<T: DeserializeOwned>(&self, endpoint: &str) -> Result<T, ApiClientError> {
        self.post(endpoint, Body::Empty)
    }

    fn post<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        body: Body<'_>,
    ) -> Result<T, ApiClientError> {
        let request = self
            .agent
            .post(self.url(endpoint))
            .header("Authorization", format!("Bearer {}", self.token));
        let response = match body {
            Body::Empty => request.send_empty(),
            Body::Json(bytes) => request.content_type("application/json").send(&bytes[..]),
            Body::Text { content_type, text } => request.content_type(content_type).send(text),
        };
        self.decode("POST", endpoint, response)
    }

    fn url(&self, endpoint: &str) -> String {
        format!("{}{endpoint}", self.address)
    }

    fn authorize_without_body(
        &self,
        request: ureq::RequestBuilder<ureq::typestate::WithoutBody>,
    ) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        request.header("Authorization", format!("Bearer {}", self.token))
    }

    /// A 2xx response, or the error that names why not.
    fn checked(
        &self,
        request: &str,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<ureq::http::Response<ureq::Body>, ApiClientError> {
        let mut response = response.map_err(|e| self.transport_error(request, e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_PROBLEM_BYTES)
            .read_to_string()
            .unwrap_or_default();
        Err(match serde_json::from_str::<Problem>(&text) {
            Ok(p) => ApiClientError::Refused {
                node: self.address.clone(),
                request: request.to_owned(),
                status: p.status(),
                detail: p.detail().to_owned(),
                parameter: p.parameter_name().map(str::to_owned),
            },
            Err(_) => ApiClientError::BadAnswer {
                node: self.address.clone(),
                request: request.to_owned(),
                status: status.as_u16(),
                reason: format!("an error without a problem document: {}", excerpt(&text)),
            },
        })
    }

    fn decode<T: DeserializeOwned>(
        &self,
        method: &str,
        endpoint: &str,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<T, ApiClientError> {
        let request = format!("{method} {endpoint}");
        let mut response = self.checked(&request, response)?;
        let status = response.status().as_u16();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_vec()
            .map_err(|e| self.body_error(&request, status, e))?;
        serde_json::from_slice(&bytes).map_err(|e| ApiClientError::BadAnswer {
            node: self.address.clone(),
            request,
            status,
            reason: format!(
                "not the declared answer ({e}): {}",
                excerpt(&String::from_utf8_lossy(&bytes))
            ),
        })
    }

    fn transport_error(&self, request: &str, e: ureq::Error) -> ApiClientError {
        match e {
            ureq::Error::Timeout(_) => ApiClientError::Timeout {
                node: self.address.clone(),
                request: request.to_owned(),
                timeout: self.timeout,
            },
            source => ApiClientError::Unreachable {
                node: self.address.clone(),
                request: request.to_owned(),
                source,
            },
        }
    }

    fn body_error(&self, request: &str, status: u16, e: ureq::Error) -> ApiClientError {
        match e {
            ureq::Error::BodyExceedsLimit(limit) => ApiClientError::BadAnswer {
                node: self.address.clone(),
                request: request.to_owned(),
                status,
                reason: format!("the answer is larger than {limit} bytes"),
            },
            other => self.transport_error(request, other),
        }
    }
}

/// The endpoints the CLI uses, typed by what the daemon sends (`crate::daemon`).
impl NodeApi {
    /// `GET /api/v1/status`.
    pub fn status(&self) -> Result<Status, ApiClientError> {
        self.get("/api/v1/status")
    }

    /// `GET /api/v1/health`.
    pub fn health(&self) -> Result<bool, ApiClientError> {
        self.get::<answers::Health>("/api/v1/health").map(|h| h.ok)
    }

    /// `GET /api/v1/peers`.
    pub(crate) fn peers(&self) -> Result<Vec<PeerView>, ApiClientError> {
        self.get("/api/v1/peers")
    }

    /// `GET /api/v1/directory`: the query `q` (docs/query.md), sorted by `sort`
    /// (`FIELD[:desc]`), at most `limit` rows.
    pub(crate) fn directory(
        &self,
        q: &str,
        sort: Option<&str>,
        limit: usize,
    ) -> Result<QueryReply, ApiClientError> {
        let limit = limit.to_string();
        let mut query = vec![("q", q), ("limit", limit.as_str())];
        if let Some(s) = sort {
            query.push(("sort", s));
        }
        self.get_with("/api/v1/directory", &query)
    }

    /// `GET /api/v1/directory/{peer}`.
    pub(crate) fn entry(&self, peer: &str) -> Result<crate::daemon::EntryView, ApiClientError> {
        self.get(&format!("/api/v1/directory/{peer}"))
    }

    /// `POST /api/v1/sd`: publishes `document` (`(media type, text)`), or re-publishes the
    /// current one with seq + 1.
    pub(crate) fn publish(
        &self,
        document: Option<(&str, &str)>,
    ) -> Result<Published, ApiClientError> {
        match document {
            Some((content_type, text)) => self.post_text("/api/v1/sd", content_type, text),
            None => self.post_empty("/api/v1/sd"),
        }
    }

    /// `POST /api/v1/revocations`: applies a signed revocation list (TOML).
    pub(crate) fn revoke(&self, list: &str) -> Result<answers::RevokedAnswer, ApiClientError> {
        self.post_text("/api/v1/revocations", "application/toml", list)
    }

    /// `GET /api/v1/repo`.
    pub(crate) fn repo(&self) -> Result<RepoStatus, ApiClientError> {
        self.get("/api/v1/repo")
    }

    /// `GET /api/v1/repo/bundle`: the trusted metadata, postcard bytes.
    pub(crate) fn repo_bundle(&self) -> Result<Vec<u8>, ApiClientError> {
        let answer: answers::BundleAnswer = self.get("/api/v1/repo/bundle")?;
        hex::decode(answer.bundle.trim()).map_err(|e| ApiClientError::BadAnswer {
            node: self.address.clone(),
            request: "GET /api/v1/repo/bundle".to_owned(),
            status: 200,
            reason: format!("the bundle is not hex: {e}"),
        })
    }

    /// `POST /api/v1/repo/release`.
    pub(crate) fn repo_release(&self, body: &ReleaseBody) -> Result<ReleaseReply, ApiClientError> {
        self.post_json("/api/v1/repo/release", body)
    }

    /// `POST /api/v1/repo/fetch`: `NAME@VERSION` or `NAME`.
    pub(crate) fn repo_fetch(&self, target: &str) -> Result<FetchStarted, ApiClientError> {
        self.post_text("/api/v1/repo/fetch", "text/plain; charset=utf-8", target)
    }

    /// `POST /api/v1/exchange/fetch`: the job's id.
    pub(crate) fn exchange_fetch(&self, request: &FetchRequest) -> Result<u64, ApiClientError> {
        self.post_json::<_, answers::JobStarted>("/api/v1/exchange/fetch", request)
            .map(|j| j.job)
    }

    /// `GET /api/v1/exchange/fetch/{job}`.
    pub(crate) fn exchange_job(&self, job: u64) -> Result<JobView, ApiClientError> {
        self.get(&format!("/api/v1/exchange/fetch/{job}"))
    }

    /// `POST /api/v1/compute`: the job's id.
    pub(crate) fn compute_start(&self, request: &ComputeRequest) -> Result<u64, ApiClientError> {
        self.post_json::<_, answers::JobStarted>("/api/v1/compute", request)
            .map(|j| j.job)
    }

    /// `POST /api/v1/compute/{job}/cancel`.
    pub(crate) fn compute_cancel(&self, job: u64) -> Result<ComputeJobView, ApiClientError> {
        self.post_empty(&format!("/api/v1/compute/{job}/cancel"))
    }

    /// `GET /api/v1/compute/reviews`.
    pub(crate) fn compute_reviews(&self) -> Result<Vec<ReviewView>, ApiClientError> {
        self.get::<ReviewsAnswer>("/api/v1/compute/reviews")
            .map(|a| a.reviews)
    }

    /// `GET /api/v1/compute/reviews/{id}`.
    pub(crate) fn compute_review(&self, id: u64) -> Result<ReviewView, ApiClientError> {
        self.get(&format!("/api/v1/compute/reviews/{id}"))
    }

    /// `POST /api/v1/compute/reviews/{id}`.
    pub(crate) fn compute_decide(
        &self,
        id: u64,
        decision: &ReviewDecision,
    ) -> Result<ReviewView, ApiClientError> {
        self.post_json(&format!("/api/v1/compute/reviews/{id}"), decision)
    }

    /// `GET /api/v1/compute/{job}`.
    pub(crate) fn compute_job(&self, job: u64) -> Result<ComputeJobView, ApiClientError> {
        self.get(&format!("/api/v1/compute/{job}"))
    }

    /// `GET /api/v1/audit`: `limit` entries from seq `from`.
    pub(crate) fn audit(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<answers::AuditList, ApiClientError> {
        let (from, limit) = (from.to_string(), limit.to_string());
        self.get_with("/api/v1/audit", &[("from", &from), ("limit", &limit)])
    }

    /// `GET /api/v1/audit/verify`.
    pub fn audit_verify(&self) -> Result<gaiamesh_exchange::audit::Verified, ApiClientError> {
        self.get("/api/v1/audit/verify")
    }

    /// `POST /api/v1/backup`: the archive the node wrote and its manifest.
    pub(crate) fn backup(&self) -> Result<answers::BackupAnswer, ApiClientError> {
        self.post_json("/api/v1/backup", &serde_json::json!({}))
    }

    /// `POST /api/v1/debug/flood` (fault injection).
    pub(crate) fn flood(&self, body: &FloodBody) -> Result<answers::FloodStarted, ApiClientError> {
        self.post_json("/api/v1/debug/flood", body)
    }

    /// `GET /metrics` (OpenMetrics text).
    pub fn metrics(&self) -> Result<String, ApiClientError> {
        self.get_text("/metrics")
    }
}

fn agent(timeout: Duration) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        // Refusals are read here: their problem documents name what was wrong.
        .http_status_as_error(false)
        .user_agent(format!("gaiamesh/{}", env!("CARGO_PKG_VERSION")))
        .build();
    ureq::Agent::new_with_config(config)
}

/// The start of an unexpected answer, for an error message.
fn excerpt(text: &str) -> String {
    const MAX: usize = 200;
    let text = text.trim();
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests;
