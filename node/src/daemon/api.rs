//! The local HTTP API (`/api/v1`), JSON, on loopback by default. Writes and operator-only
//! reads need the bearer token from `api.json` (mode 0600), which is written once the API is
//! up. Also `/metrics` (Prometheus text format), `/api/v1/events` (server-sent events) and
//! `/api/v1/openapi.json` (the contract of all of them).
//!
//! Every request passes, outermost first: [`problem::normalize`] (every error becomes
//! `application/problem+json`), load shedding at `max_requests_in_flight` (503), the request
//! timeout (408), and [`guard::check`] (head size, `Host`/`Origin`, token) before any body
//! byte is read; then the route's own body limit. Connections are bounded by [`server`].

pub(crate) mod answers;
mod guard;
mod openapi;
mod problem;
mod server;
mod subscribers;
mod ui;

use std::{
    convert::Infallible, io::Write, net::SocketAddr, os::unix::fs::OpenOptionsExt, sync::Arc,
};

use anyhow::{Context, Result};
use axum::{
    Extension, Json, Router,
    body::Bytes,
    error_handling::HandleErrorLayer,
    extract::{DefaultBodyLimit, Path, Query, State},
    http::{HeaderMap, StatusCode, header},
    middleware,
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
    routing::{MethodRouter, get, post},
};
use gaiamesh_config::ApiConfig;
use gaiamesh_directory::{catalogue::QueryOptions, query};
use gaiamesh_protocol::{
    identity::PublicKey,
    limits::{MAX_DOCUMENT_BYTES, MAX_REVOCATION_LIST_BYTES},
    repository::metadata::MAX_BUNDLE_BYTES,
    sd::{DocumentFormat, SdDocument},
};
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast::error::RecvError, watch};
use tower::ServiceBuilder;
use tower_http::{limit::RequestBodyLimitLayer, timeout::TimeoutLayer};

pub(crate) use guard::Authorized;
pub(crate) use problem::Problem;

use super::Client;
use crate::datadir::DataDir;

#[derive(Clone)]
struct AppState {
    client: Client,
    registry: Arc<Registry>,
    /// Fault injection: the blob server corrupts what it sends.
    corrupt_blobs: Arc<std::sync::atomic::AtomicBool>,
    exchange: super::exchange::Exchange,
    subscribers: Arc<subscribers::Subscribers>,
    dir: DataDir,
    catalogue: gaiamesh_directory::store::RedbStore,
}

pub(crate) struct ApiHandle {
    pub(crate) addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ApiHandle {
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// A command's answer as JSON, or its error as a problem document.
fn answer<T: serde::Serialize>(r: Result<T, super::CommandError>) -> Response {
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// An error answer (`application/problem+json`).
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    Problem::new(status, message).into_response()
}

/// Largest bodies of the routes that take one (the guard has checked the token first).
mod body_limits {
    /// A TOML or JSON self-description document.
    pub(super) const SD: usize = super::MAX_DOCUMENT_BYTES;
    /// A revocation list as TOML: signatures and keys in hex roughly double its encoding.
    pub(super) const REVOCATIONS: usize = 4 * super::MAX_REVOCATION_LIST_BYTES;
    /// `{"bundle": hex, "file": path}`: hex doubles the bundle.
    pub(super) const RELEASE: usize = 2 * super::MAX_BUNDLE_BYTES + 64 * 1024;
    /// Small JSON or text requests.
    pub(super) const SMALL: usize = 64 * 1024;
    /// Fault injection: one raw gossip message.
    pub(super) const GOSSIP: usize = 2 * gaiamesh_protocol::limits::MAX_SD_BYTES;
}

/// A POST route whose body may be at most `limit` bytes (413 beyond, before it is read).
fn post_limited<H, T>(handler: H, limit: usize) -> MethodRouter<AppState>
where
    H: axum::handler::Handler<T, AppState>,
    T: 'static,
{
    post(handler).layer(RequestBodyLimitLayer::new(limit))
}

/// What the API serves from: the node's parts it reads and commands.
pub(crate) struct Parts {
    pub(crate) client: Client,
    pub(crate) registry: Arc<Registry>,
    /// Fault injection: the blob server corrupts what it sends.
    pub(crate) corrupt_blobs: Arc<std::sync::atomic::AtomicBool>,
    pub(crate) exchange: super::exchange::Exchange,
    pub(crate) api_metrics: super::metrics::ApiMetrics,
    /// The catalogue's database, for backups (read in one transaction, off the event loop).
    pub(crate) catalogue: gaiamesh_directory::store::RedbStore,
}

pub(crate) async fn serve(dir: &DataDir, config: &ApiConfig, parts: Parts) -> Result<ApiHandle> {
    let Parts {
        client,
        registry,
        corrupt_blobs,
        exchange,
        api_metrics,
        catalogue,
    } = parts;
    let listen = config.listen;
    let token = hex::encode(rand::random::<[u8; 32]>());
    let state = AppState {
        client,
        registry,
        corrupt_blobs,
        exchange,
        dir: dir.clone(),
        catalogue,
        subscribers: subscribers::Subscribers::new(
            config.max_event_subscribers,
            api_metrics.event_subscribers.clone(),
        ),
    };
    let mut app = Router::new()
        .route("/", get(ui::redirect))
        .route("/ui", get(ui::redirect))
        .route("/ui/", get(ui::index))
        .route("/ui/{*path}", get(ui::file))
        .route("/metrics", get(metrics))
        .route("/api/v1/events", get(events))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/health", get(health))
        .route("/api/v1/status", get(status))
        .route("/api/v1/peers", get(peers))
        .route("/api/v1/federation", get(federation))
        .route("/api/v1/updates", get(updates))
        .route("/api/v1/directory", get(directory))
        .route("/api/v1/directory/{peer}", get(show))
        .route("/api/v1/directory/{peer}/gaiax", get(show_gaiax))
        .route("/api/v1/sd", post_limited(publish, body_limits::SD))
        .route(
            "/api/v1/revocations",
            post_limited(revoke, body_limits::REVOCATIONS),
        )
        .route("/api/v1/repo", get(repo_status))
        .route("/api/v1/repo/bundle", get(repo_bundle))
        .route("/api/v1/repo/holders", get(repo_holders))
        .route(
            "/api/v1/repo/release",
            // One release at a time: its body is the largest the API takes.
            post_limited(repo_release, body_limits::RELEASE)
                .layer(tower::limit::ConcurrencyLimitLayer::new(1)),
        )
        .route(
            "/api/v1/repo/fetch",
            post_limited(repo_fetch, body_limits::SMALL),
        )
        .route("/api/v1/assets", get(assets))
        .route("/api/v1/exchange", get(exchange_jobs))
        .route(
            "/api/v1/exchange/fetch",
            post_limited(exchange_fetch, body_limits::SMALL),
        )
        .route("/api/v1/exchange/fetch/{job}", get(exchange_job))
        .route(
            "/api/v1/compute",
            get(compute_jobs).merge(post_limited(compute_start, body_limits::SMALL)),
        )
        .route("/api/v1/compute/reviews", get(compute_reviews))
        .route(
            "/api/v1/compute/reviews/{id}",
            get(compute_review).merge(post_limited(compute_decide, body_limits::SMALL)),
        )
        .route("/api/v1/compute/{job}", get(compute_job))
        .route(
            "/api/v1/compute/{job}/cancel",
            post_limited(compute_cancel, body_limits::SMALL),
        )
        .route("/api/v1/audit", get(audit_list))
        .route("/api/v1/audit/verify", get(audit_verify))
        .route("/api/v1/backup", post_limited(backup, body_limits::SMALL));
    if config.fault_injection {
        tracing::warn!("fault injection is on: POST /api/v1/debug/gossip publishes raw bytes");
        app = app
            .route(
                "/api/v1/debug/gossip",
                post_limited(raw_gossip, body_limits::GOSSIP),
            )
            .route(
                "/api/v1/debug/flood",
                post_limited(flood, body_limits::SMALL),
            )
            .route(
                "/api/v1/debug/corrupt-blobs",
                post_limited(set_corrupt_blobs, body_limits::SMALL),
            )
            .route(
                "/api/v1/debug/spoiled-agreement",
                post_limited(spoiled_agreement, body_limits::SMALL),
            );
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot bind the API to {listen}"))?;
    let addr = listener.local_addr()?;
    let guard = guard::Guard::new(
        token.clone(),
        guard::AllowedHosts::new(addr.ip(), &config.allowed_hosts),
    );
    let shed_count = api_metrics.requests_shed.clone();
    let app = app
        .fallback(not_found)
        .with_state(state)
        // Each route sets its own limit (post_limited); axum's 2 MB default is not one of them.
        .layer(DefaultBodyLimit::disable())
        .layer(
            ServiceBuilder::new()
                .layer(middleware::map_response(problem::normalize))
                .layer(HandleErrorLayer::new(move |e| shed(e, shed_count.clone())))
                .load_shed()
                .concurrency_limit(config.max_requests_in_flight)
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    config.request_timeout,
                ))
                .layer(middleware::from_fn_with_state(guard, guard::check)),
        );
    let (stop, stopped) = watch::channel(false);
    let limits = server::ServerLimits {
        max_connections: config.max_connections,
        header_read_timeout: config.header_read_timeout,
    };
    let task = tokio::spawn(server::serve(listener, app, limits, api_metrics, stopped));
    let info = serde_json::json!({
        "address": format!("http://{addr}"),
        "token": token,
        "pid": std::process::id(),
    });
    let path = dir.root().join("api.json");
    let _ = std::fs::remove_file(&path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(serde_json::to_string_pretty(&info)?.as_bytes())?;
    Ok(ApiHandle { addr, stop, task })
}

/// Load shedding: the API answers 503 rather than queue beyond `max_requests_in_flight`.
async fn shed(e: tower::BoxError, count: prometheus_client::metrics::counter::Counter) -> Response {
    if e.is::<tower::load_shed::error::Overloaded>() {
        count.inc();
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the node is answering as many API requests as it allows ([api] max_requests_in_flight); retry shortly",
        )
        .retry_after(1)
        .into_response()
    } else {
        error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no such API path (see /api/v1/openapi.json)",
    )
}

#[utoipa::path(
    get,
    path = "/api/v1/status",
    tag = "node",
    summary = "This node: identity, peers, directory size, version, uptime, NAT",
    responses(
        (status = 200, body = super::Status)
    )
)]
async fn status(State(s): State<AppState>) -> Response {
    answer(s.client.status().await)
}

#[utoipa::path(
    get,
    path = "/api/v1/health",
    tag = "node",
    summary = "Whether the event loop answers",
    responses(
        (status = 200, body = answers::Health),
        (status = 503, description = "the node is stopping or overloaded", body = Problem, content_type = "application/problem+json")
    )
)]
async fn health(State(s): State<AppState>) -> Response {
    match s.client.status().await {
        Ok(_) => Json(answers::Health { ok: true }).into_response(),
        Err(e) => e.into_response(),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/peers",
    tag = "node",
    summary = "Connected peers",
    responses(
        (status = 200, body = Vec<super::PeerView>)
    )
)]
async fn peers(State(s): State<AppState>) -> Response {
    answer(s.client.peers().await)
}

#[utoipa::path(
    get,
    path = "/api/v1/federation",
    tag = "federation",
    summary = "The genesis this node trusts and the revocations in force (never the pre-shared key)",
    responses(
        (status = 200, body = super::event_loop::federation::FederationView)
    )
)]
async fn federation(State(s): State<AppState>) -> Response {
    answer(s.client.federation().await)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct UpdatesParams {
    /// Only this subject's versions (PeerId).
    subject: Option<String>,
    /// At most this many (default 50, at most 1024).
    #[param(maximum = 1024)]
    limit: Option<usize>,
}

/// `GET /api/v1/updates`: the last directory updates, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/updates",
    tag = "directory",
    summary = "The last directory updates this node stored (1024 kept, not persisted), newest first",
    params(UpdatesParams),
    responses(
        (status = 200, body = super::event_loop::recent::UpdatesView)
    )
)]
async fn updates(State(s): State<AppState>, Query(p): Query<UpdatesParams>) -> Response {
    let limit = p
        .limit
        .unwrap_or(50)
        .min(super::event_loop::recent::CAPACITY);
    answer(s.client.updates(p.subject, limit).await)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct DirectoryParams {
    /// The query (docs/query.md), e.g. `node.location.country = DE`.
    q: String,
    /// `FIELD` or `FIELD:desc`.
    sort: Option<String>,
    /// Rows at most (default 100, at most 10000).
    #[param(maximum = 10000)]
    limit: Option<usize>,
    /// Rows to skip after sorting: paging (`total` counts them all).
    #[serde(default)]
    offset: usize,
}

#[utoipa::path(
    get,
    path = "/api/v1/directory",
    tag = "directory",
    summary = "Query the directory (docs/query.md); a light node answers through the DHT",
    params(DirectoryParams),
    responses(
        (status = 200, body = super::QueryReply),
        (status = 400, description = "the query does not parse (the detail shows the column)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "a light node cannot answer this query through the DHT", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "too many light queries running; retry", body = Problem, content_type = "application/problem+json")
    )
)]
async fn directory(State(s): State<AppState>, Query(p): Query<DirectoryParams>) -> Response {
    let expr = match query::parse(&p.q) {
        Ok(e) => e,
        Err(e) => {
            return Problem::new(StatusCode::BAD_REQUEST, e.render(&p.q))
                .parameter("q")
                .into_response();
        }
    };
    let sort = match p.sort.as_deref().map(str::parse::<query::Sort>).transpose() {
        Ok(s) => s,
        Err(e) => {
            return Problem::new(StatusCode::BAD_REQUEST, e.to_string())
                .parameter("sort")
                .into_response();
        }
    };
    let opts = QueryOptions {
        sort,
        limit: Some(p.limit.unwrap_or(100).min(10_000)),
        offset: p.offset,
    };
    answer(s.client.query(expr, opts).await)
}

#[utoipa::path(
    get,
    path = "/api/v1/directory/{peer}",
    tag = "directory",
    summary = "One directory entry, its proofs checked again",
    params(("peer" = String, Path, description = "PeerId of the subject")),
    responses(
        (status = 200, body = super::EntryView),
        (status = 400, description = "not a PeerId", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not in the directory", body = Problem, content_type = "application/problem+json")
    )
)]
async fn show(State(s): State<AppState>, Path(peer): Path<String>) -> Response {
    let subject: PublicKey = match peer.parse() {
        Ok(k) => k,
        Err(e) => {
            return Problem::new(StatusCode::BAD_REQUEST, format!("{peer:?}: {e}"))
                .parameter("peer")
                .into_response();
        }
    };
    match s.client.show(subject).await {
        Ok(Some(v)) => Json(v).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("{peer} is not in the directory"),
        ),
        Err(e) => e.into_response(),
    }
}

/// `GET /api/v1/directory/{peer}/gaiax`: the entry's self-description as unsigned Gaia-X
/// (Loire) JSON-LD credentials in a presentation, issued by the subject's `did:key` — the
/// same mapping as `gaiamesh gaiax export` (docs/gaiax.md), for a download link.
#[utoipa::path(
    get,
    path = "/api/v1/directory/{peer}/gaiax",
    tag = "directory",
    summary = "The entry as unsigned Gaia-X (Loire) JSON-LD credentials in a presentation",
    params(("peer" = String, Path, description = "PeerId of the subject")),
    responses(
        (status = 200, description = "a verifiable presentation", body = Object, content_type = "application/ld+json"),
        (status = 400, description = "not a PeerId", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not in the directory", body = Problem, content_type = "application/problem+json")
    )
)]
async fn show_gaiax(State(s): State<AppState>, Path(peer): Path<String>) -> Response {
    let subject: PublicKey = match peer.parse() {
        Ok(k) => k,
        Err(e) => {
            return Problem::new(StatusCode::BAD_REQUEST, format!("{peer:?}: {e}"))
                .parameter("peer")
                .into_response();
        }
    };
    let entry = match s.client.show(subject).await {
        Ok(Some(v)) => v,
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                format!("{peer} is not in the directory"),
            );
        }
        Err(e) => return e.into_response(),
    };
    let doc: gaiamesh_protocol::sd::SdDocument = match serde_json::from_value(entry.document) {
        Ok(d) => d,
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("{peer}: the stored document does not read back: {e}"),
            );
        }
    };
    let now = crate::now();
    match gaiamesh_gaiax::export(
        &doc,
        &subject.to_bytes(),
        gaiamesh_gaiax::ExportFormat::JsonLd,
        None,
        now,
    ) {
        Ok(vp) => {
            let mut r = Json(vp).into_response();
            r.headers_mut().insert(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/ld+json"),
            );
            r
        }
        Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, format!("{peer}: {e}")),
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/revocations",
    tag = "federation",
    summary = "Apply a revocation list (TOML) if newer; it is gossiped and revoked peers disconnected",
    request_body(content = String, content_type = "application/toml", description = "a revocation list signed by the authorities"),
    responses(
        (status = 200, body = answers::RevokedAnswer),
        (status = 401, description = "no or wrong token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "not a valid revocation list", body = Problem, content_type = "application/problem+json")
    ),
    security(("token" = []))
)]
async fn revoke(State(s): State<AppState>, body: String) -> Response {
    let list = match gaiamesh_protocol::federation::RevocationList::from_toml(&body) {
        Ok(l) => l,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    };
    match s.client.revoke(list).await {
        Ok(removed) => Json(answers::RevokedAnswer {
            removed_entries: removed,
        })
        .into_response(),
        Err(e) => e.into_response(),
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/sd",
    tag = "directory",
    summary = "Sign and publish a self-description (TOML or JSON); an empty body re-publishes the current one with seq + 1",
    request_body(content((gaiamesh_protocol::sd::SdDocument = "application/json"), (String = "application/toml")), description = "the document (docs/operator-guide.md)"),
    responses(
        (status = 200, body = super::Published),
        (status = 400, description = "not UTF-8", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no or wrong token", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "not TOML or JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "the document is invalid (the detail names the field)", body = Problem, content_type = "application/problem+json")
    ),
    security(("token" = []))
)]
async fn publish(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    // An empty body re-publishes the current document with seq + 1.
    let doc = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let format = match body_format(&headers) {
            Ok(f) => f,
            Err(p) => return p.into_response(),
        };
        let Ok(text) = std::str::from_utf8(&body) else {
            return Problem::new(StatusCode::BAD_REQUEST, "the document is not UTF-8 text")
                .parameter("body")
                .into_response();
        };
        match SdDocument::parse(text, format) {
            Ok(d) => Some(d),
            Err(e) => {
                return Problem::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
                    .parameter("body")
                    .into_response();
            }
        }
    };
    answer(s.client.publish(doc).await)
}

/// The format of a self-description body, from its `Content-Type`.
fn body_format(headers: &HeaderMap) -> Result<DocumentFormat, Problem> {
    const EXPECTED: &str = "application/toml or application/json";
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("a self-description needs Content-Type {EXPECTED}"),
        )
        .parameter("Content-Type"));
    };
    let essence = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => Ok(DocumentFormat::Json),
        "application/toml" | "text/toml" | "text/x-toml" => Ok(DocumentFormat::Toml),
        other => Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type {other:?} is not a self-description format; expected {EXPECTED}"),
        )
        .parameter("Content-Type")),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/repo",
    tag = "repository",
    summary = "The trusted release and what this node holds of it",
    responses(
        (status = 200, body = super::event_loop::repo::RepoStatus)
    )
)]
async fn repo_status(State(s): State<AppState>) -> Response {
    answer(s.client.repo_status().await)
}

#[utoipa::path(
    get,
    path = "/api/v1/repo/bundle",
    tag = "repository",
    summary = "The trusted metadata, encoded",
    responses(
        (status = 200, body = answers::BundleAnswer)
    )
)]
async fn repo_bundle(State(s): State<AppState>) -> Response {
    match s.client.repo_bundle().await {
        Ok(b) => Json(answers::BundleAnswer {
            bundle: hex::encode(b),
        })
        .into_response(),
        Err(e) => e.into_response(),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/repo/holders",
    tag = "repository",
    summary = "Which nodes hold each target of the release: this node when it has the whole \
        blob, and the providers the DHT names (one lookup per target, at most 0.5 s each, \
        run together)",
    responses(
        (status = 200, body = answers::HoldersAnswer)
    )
)]
async fn repo_holders(State(s): State<AppState>) -> Response {
    let status = match s.client.repo_status().await {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let me = s.exchange.key.public().to_peer_id();
    let lookups = status.targets.iter().map(|t| {
        let client = s.client.clone();
        let hash = t.blake3.parse::<gaiamesh_protocol::repository::BlobHash>();
        async move {
            match hash {
                Ok(h) => client.blob_providers(h).await,
                Err(_) => Vec::new(),
            }
        }
    });
    let found = futures::future::join_all(lookups).await;
    let targets = status
        .targets
        .into_iter()
        .zip(found)
        .map(|(t, providers)| {
            let mut holders: Vec<String> = Vec::new();
            if t.local == super::event_loop::repo::LocalState::Complete {
                holders.push(me.to_string());
            }
            for p in providers {
                let p = p.to_string();
                if !holders.contains(&p) {
                    holders.push(p);
                }
            }
            answers::TargetHolders {
                target: t.target,
                blake3: t.blake3,
                holders,
            }
        })
        .collect();
    Json(answers::HoldersAnswer { targets }).into_response()
}

/// `POST /api/v1/repo/release`.
#[derive(Debug, serde::Deserialize, Serialize, utoipa::ToSchema)]
pub(crate) struct ReleaseBody {
    /// The signed metadata bundle (what `gaiamesh repo publish` makes), hex.
    pub(crate) bundle: String,
    /// The component's file on the node's machine; absent for a bundle without a new blob
    /// (a key rotation).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub(crate) file: Option<std::path::PathBuf>,
}

#[utoipa::path(
    post,
    path = "/api/v1/repo/release",
    tag = "repository",
    summary = "Import a component and trust the release that names it (what `gaiamesh repo publish` sends)",
    request_body = ReleaseBody,
    responses(
        (status = 200, body = super::event_loop::repo::ReleaseReply),
        (status = 401, description = "no or wrong token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "the bundle does not verify or does not name the file", body = Problem, content_type = "application/problem+json")
    ),
    security(("token" = []))
)]
async fn repo_release(State(s): State<AppState>, body: String) -> Response {
    let parsed: ReleaseBody = match serde_json::from_str(&body) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, format!("body: {e}")),
    };
    let Ok(bundle) = hex::decode(parsed.bundle.trim()) else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "bundle: not hex");
    };
    answer(s.client.repo_release(bundle, parsed.file).await)
}

#[utoipa::path(
    post,
    path = "/api/v1/repo/fetch",
    tag = "repository",
    summary = "Fetch a target (NAME@VERSION, or NAME for its newest version); progress in /api/v1/repo",
    request_body(content = String, content_type = "text/plain", description = "NAME@VERSION or NAME"),
    responses(
        (status = 200, body = super::event_loop::repo::FetchStarted),
        (status = 401, description = "no or wrong token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not in the release", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "no valid release", body = Problem, content_type = "application/problem+json")
    ),
    security(("token" = []))
)]
async fn repo_fetch(State(s): State<AppState>, body: String) -> Response {
    match s.client.repo_fetch(body.trim().to_owned()).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The registered assets; their local paths only with the token.
#[utoipa::path(
    get,
    path = "/api/v1/assets",
    tag = "exchange",
    summary = "Registered assets; their local path only with the token",
    responses(
        (status = 200, body = Vec<gaiamesh_exchange::asset::Asset>)
    )
)]
async fn assets(State(s): State<AppState>, Extension(auth): Extension<Authorized>) -> Response {
    let exchange = s.exchange.clone();
    let r = tokio::task::spawn_blocking(move || exchange.registry()).await;
    match r {
        Ok(Ok(reg)) => {
            let list: Vec<serde_json::Value> = reg
                .list()
                .map(|a| {
                    let mut v = serde_json::to_value(a).unwrap_or_default();
                    if !auth.0
                        && let Some(o) = v.as_object_mut()
                    {
                        o.remove("path");
                    }
                    v
                })
                .collect();
            Json(list).into_response()
        }
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/exchange/fetch",
    tag = "exchange",
    summary = "Negotiate a contract and fetch an asset (a job; follow it at /api/v1/exchange/fetch/{job})",
    request_body = super::exchange::FetchRequest,
    responses(
        (status = 200, body = answers::JobStarted),
        (status = 400, description = "not a fetch request", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no or wrong token", body = Problem, content_type = "application/problem+json")
    ),
    security(("token" = []))
)]
async fn exchange_fetch(State(s): State<AppState>, body: String) -> Response {
    let req: super::exchange::FetchRequest = match serde_json::from_str(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("fetch request: {e}")),
    };
    match s.exchange.start_fetch(req) {
        Ok(job) => Json(answers::JobStarted { job }).into_response(),
        Err(e) => e.into_response(),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/exchange/fetch/{job}",
    tag = "exchange",
    summary = "One fetch job",
    params(("job" = u64, Path, description = "the job id")),
    responses(
        (status = 200, body = super::exchange::JobView),
        (status = 401, description = "no or wrong token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such job", body = Problem, content_type = "application/problem+json")
    ),
    security(("token" = []))
)]
async fn exchange_job(State(s): State<AppState>, Path(job): Path<u64>) -> Response {
    match s.exchange.jobs.lock().ok().and_then(|j| j.get(job)) {
        Some(v) => Json(v).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no fetch job {job}")),
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/compute",
    tag = "exchange",
    summary = "Run a released algorithm on a provider's asset offered for computation (a job; follow it at /api/v1/compute/{job})",
    request_body = super::exchange::ComputeRequest,
    responses(
        (status = 200, body = answers::JobStarted),
        (status = 400, description = "not a compute request", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no or wrong token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "the request is invalid (the detail says why)", body = Problem, content_type = "application/problem+json")
    ),
    security(("token" = []))
)]
async fn compute_start(State(s): State<AppState>, body: String) -> Response {
    let req: super::exchange::ComputeRequest = match serde_json::from_str(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("compute request: {e}")),
    };
    match s.exchange.start_compute(req) {
        Ok(job) => Json(answers::JobStarted { job }).into_response(),
        Err(e) => e.into_response(),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/compute/{job}",
    tag = "exchange",
    summary = "One compute job: its state, result, signed usage and price",
    params(("job" = u64, Path, description = "the job id")),
    responses(
        (status = 200, body = super::exchange::ComputeJobView),
        (status = 401, description = "no or wrong token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such job", body = Problem, content_type = "application/problem+json")
    ),
    security(("token" = []))
)]
async fn compute_job(State(s): State<AppState>, Path(job): Path<u64>) -> Response {
    match s.exchange.compute.jobs.lock().ok().and_then(|j| j.get(job)) {
        Some(v) => Json(v).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no compute job {job}")),
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/compute/{job}/cancel",
    tag = "exchange",
    summary = "Cancel a running compute job (the provider stops the algorithm)",
    params(("job" = u64, Path, description = "the job id")),
    responses(
        (status = 200, body = super::exchange::ComputeJobView),
        (status = 401, description = "no or wrong token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such job", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "the job has already finished", body = Problem, content_type = "application/problem+json")
    ),
    security(("token" = []))
)]
async fn compute_cancel(State(s): State<AppState>, Path(job): Path<u64>) -> Response {
    answer(s.exchange.cancel_compute(job))
}

#[utoipa::path(
    get,
    path = "/api/v1/compute/reviews",
    tag = "exchange",
    summary = "Results of jobs run here that wait for this operator's review (policies with review = true)",
    responses(
        (status = 200, body = super::exchange::ReviewsAnswer),
        (status = 401, description = "no or wrong token", body = Problem, content_type = "application/problem+json")
    ),
    security(("token" = []))
)]
async fn compute_reviews(State(s): State<AppState>) -> Response {
    let reviews = s.exchange.compute.reviews.list();
    Json(super::exchange::ReviewsAnswer { reviews }).into_response()
}

#[utoipa::path(
    get,
    path = "/api/v1/compute/reviews/{id}",
    tag = "exchange",
    summary = "One result waiting for review, all of it",
    params(("id" = u64, Path, description = "the review id")),
    responses(
        (status = 200, body = super::exchange::ReviewView),
        (status = 401, description = "no or wrong token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such result waits", body = Problem, content_type = "application/problem+json")
    ),
    security(("token" = []))
)]
async fn compute_review(State(s): State<AppState>, Path(id): Path<u64>) -> Response {
    answer(s.exchange.compute.reviews.get(id))
}

#[utoipa::path(
    post,
    path = "/api/v1/compute/reviews/{id}",
    tag = "exchange",
    summary = "Approve a result (it goes to the consumer) or reject it with a reason (only the usage record goes)",
    params(("id" = u64, Path, description = "the review id")),
    request_body = super::exchange::ReviewDecision,
    responses(
        (status = 200, body = super::exchange::ReviewView),
        (status = 400, description = "not a decision", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no or wrong token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such result waits", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "the job ended before the decision arrived", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "a rejection without a reason, or an approval with one", body = Problem, content_type = "application/problem+json")
    ),
    security(("token" = []))
)]
async fn compute_decide(State(s): State<AppState>, Path(id): Path<u64>, body: String) -> Response {
    let decision: super::exchange::ReviewDecision = match serde_json::from_str(&body) {
        Ok(d) => d,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("review decision: {e}")),
    };
    answer(s.exchange.compute.reviews.decide(id, &decision))
}

#[utoipa::path(
    get,
    path = "/api/v1/compute",
    tag = "exchange",
    summary = "Compute jobs this node asked for",
    responses(
        (status = 200, body = answers::ComputeJobsAnswer),
        (status = 401, description = "no or wrong token", body = Problem, content_type = "application/problem+json")
    ),
    security(("token" = []))
)]
async fn compute_jobs(State(s): State<AppState>) -> Response {
    let jobs = s
        .exchange
        .compute
        .jobs
        .lock()
        .map(|j| j.all())
        .unwrap_or_default();
    Json(answers::ComputeJobsAnswer { jobs }).into_response()
}

#[utoipa::path(
    get,
    path = "/api/v1/exchange",
    tag = "exchange",
    summary = "Fetch jobs",
    responses(
        (status = 200, body = answers::JobsAnswer),
        (status = 401, description = "no or wrong token", body = Problem, content_type = "application/problem+json")
    ),
    security(("token" = []))
)]
async fn exchange_jobs(State(s): State<AppState>) -> Response {
    let jobs = s.exchange.jobs.lock().map(|j| j.all()).unwrap_or_default();
    Json(answers::JobsAnswer { jobs }).into_response()
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditParams {
    /// First entry (seq).
    #[serde(default)]
    from: u64,
    /// Entries at most (default 1000).
    limit: Option<usize>,
}

#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "exchange",
    summary = "The audit log",
    params(AuditParams),
    responses(
        (status = 200, body = answers::AuditList),
        (status = 401, description = "no or wrong token", body = Problem, content_type = "application/problem+json")
    ),
    security(("token" = []))
)]
async fn audit_list(State(s): State<AppState>, Query(p): Query<AuditParams>) -> Response {
    let audit = s.exchange.audit.clone();
    let limit = p.limit.unwrap_or(1000);
    let r = tokio::task::spawn_blocking(move || {
        Ok::<_, gaiamesh_exchange::audit::AuditError>((audit.list(p.from, limit)?, audit.len()?))
    })
    .await;
    match r {
        Ok(Ok((entries, total))) => {
            let entries: Result<Vec<answers::AuditEntryView>, _> = entries
                .iter()
                .map(|e| serde_json::from_value(e.to_json()))
                .collect();
            match entries {
                Ok(entries) => Json(answers::AuditList { total, entries }).into_response(),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        }
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `POST /api/v1/backup` (token): a consistent backup of the data dir, written into
/// `DATA_DIR/backups/` (where a hardened service may write); the answer names the file.
#[utoipa::path(
    post,
    path = "/api/v1/backup",
    tag = "node",
    summary = "A consistent backup of the data dir, written to DATA_DIR/backups/",
    responses(
        (status = 200, body = answers::BackupAnswer),
        (status = 401, description = "no or wrong token", body = Problem, content_type = "application/problem+json")
    ),
    security(("token" = []))
)]
async fn backup(State(s): State<AppState>) -> Response {
    let dir = s.dir.clone();
    let catalogue = s.catalogue.clone();
    let audit = s.exchange.audit.clone();
    let r = tokio::task::spawn_blocking(move || {
        let now = crate::now().0;
        let backups = dir.root().join("backups");
        std::fs::create_dir_all(&backups).map_err(|source| crate::backup::BackupError::Io {
            path: backups.clone(),
            source,
        })?;
        let path = backups.join(format!("backup-{now}.tar"));
        let manifest = crate::backup::write(&dir, &catalogue, &audit, &path, now)?;
        Ok::<_, crate::backup::BackupError>((path, manifest))
    })
    .await;
    match r {
        Ok(Ok((path, manifest))) => {
            tracing::info!(path = %path.display(), entries = manifest.directory_entries, "backup written");
            Json(answers::BackupAnswer { path, manifest }).into_response()
        }
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/audit/verify",
    tag = "exchange",
    summary = "Check the audit log hash chain and its signatures",
    responses(
        (status = 200, body = gaiamesh_exchange::audit::Verified),
        (status = 401, description = "no or wrong token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "the chain is broken (the detail says where)", body = Problem, content_type = "application/problem+json")
    ),
    security(("token" = []))
)]
async fn audit_verify(State(s): State<AppState>) -> Response {
    let audit = s.exchange.audit.clone();
    let key = s.exchange.key.public();
    match tokio::task::spawn_blocking(move || audit.verify(&key)).await {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => error(StatusCode::CONFLICT, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "node",
    summary = "Prometheus / OpenMetrics text (docs/operator-guide.md lists the metrics)",
    responses(
        (status = 200, description = "metrics", body = String, content_type = "application/openmetrics-text")
    )
)]
async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        super::metrics::encode(&s.registry),
    )
        .into_response()
}

#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "node",
    summary = "This description (OpenAPI 3.1)",
    responses(
        (status = 200, description = "the OpenAPI document", body = Object)
    )
)]
async fn openapi() -> Response {
    Json(openapi::document()).into_response()
}

/// Server-sent events: one `data:` JSON object per node event, named by its type. At most
/// `[api] max_event_subscribers` streams: a new one closes the oldest (its last event is
/// `closed`).
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "node",
    summary = "Server-sent events: one JSON object per node event, named by its type",
    responses(
        (status = 200, description = "an event stream", body = String, content_type = "text/event-stream"),
        (status = 503, description = "event streams are disabled", body = Problem, content_type = "application/problem+json")
    )
)]
async fn events(State(s): State<AppState>) -> Response {
    let Some(sub) = s.subscribers.join() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "event streams are disabled ([api] max_event_subscribers = 0)",
        );
    };
    let rx = s.client.subscribe();
    let stream = futures::stream::unfold(Some((rx, sub)), |state| async move {
        let (mut rx, mut sub) = state?;
        let event = tokio::select! {
            r = rx.recv() => match r {
                Ok(ev) => Event::default()
                    .event(ev.name())
                    .json_data(&ev)
                    .unwrap_or_else(|_| Event::default().event("error")),
                Err(RecvError::Lagged(n)) => Event::default()
                    .event("lagged")
                    .data(format!("{{\"type\":\"lagged\",\"missed\":{n}}}")),
                Err(RecvError::Closed) => return None,
            },
            _ = &mut sub.closed => {
                let ev = Event::default().event("closed").data(
                    "{\"type\":\"closed\",\"reason\":\"a newer subscriber took this stream's place\"}",
                );
                return Some((Ok::<_, Infallible>(ev), None));
            }
        };
        Some((Ok::<_, Infallible>(event), Some((rx, sub))))
    });
    let mut r = Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response();
    // A stream that ends (closed for a newer subscriber) takes its connection with it, rather
    // than leaving an idle keep-alive connection in one of the API's slots.
    r.headers_mut().insert(
        header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    r
}

/// Fault injection (only routed with `[api] fault_injection = true`).
#[utoipa::path(
    post,
    path = "/api/v1/debug/gossip",
    tag = "fault injection",
    summary = "Only with [api] fault_injection: publish raw bytes on the directory topic",
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 200, body = answers::GossipPublished),
        (status = 401, description = "no or wrong token", body = Problem, content_type = "application/problem+json")
    ),
    security(("token" = []))
)]
async fn raw_gossip(State(s): State<AppState>, body: Bytes) -> Response {
    match s.client.raw_gossip(body.to_vec()).await {
        Ok(()) => Json(answers::GossipPublished {
            published: body.len(),
        })
        .into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /api/v1/debug/flood`.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FloodBody {
    pub(crate) per_second: u32,
    pub(crate) seconds: u32,
}

/// Fault injection: floods the directory topic with invalid messages.
#[utoipa::path(
    post,
    path = "/api/v1/debug/flood",
    tag = "fault injection",
    summary = "Only with [api] fault_injection: flood the directory topic with invalid messages",
    request_body = FloodBody,
    responses(
        (status = 200, body = answers::FloodStarted),
        (status = 401, description = "no or wrong token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "rate or duration out of range", body = Problem, content_type = "application/problem+json")
    ),
    security(("token" = []))
)]
async fn flood(State(s): State<AppState>, body: String) -> Response {
    let b: FloodBody = match serde_json::from_str(&body) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("body: {e}")),
    };
    if !(1..=100_000).contains(&b.per_second) || !(1..=3600).contains(&b.seconds) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "per_second must be 1–100000 and seconds 1–3600",
        );
    }
    match s.client.flood(b.per_second, b.seconds).await {
        Ok(()) => Json(answers::FloodStarted {
            flooding: b.per_second,
            seconds: b.seconds,
        })
        .into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
struct SpoilBody {
    provider: String,
    how: super::exchange::Spoil,
}

/// Fault injection: presents a spoiled copy of this node's latest agreement with a
/// provider to it; the provider must refuse it.
#[utoipa::path(
    post,
    path = "/api/v1/debug/spoiled-agreement",
    tag = "fault injection",
    summary = "Only with [api] fault_injection: present a spoiled copy of the latest agreement to a provider",
    request_body = SpoilBody,
    responses(
        (status = 200, body = answers::ProbeAnswer),
        (status = 400, description = "not a probe request", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no or wrong token", body = Problem, content_type = "application/problem+json")
    ),
    security(("token" = []))
)]
async fn spoiled_agreement(State(s): State<AppState>, body: String) -> Response {
    let b: SpoilBody = match serde_json::from_str(&body) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("body: {e}")),
    };
    let Ok(provider) = b.provider.parse::<libp2p::PeerId>() else {
        return error(StatusCode::BAD_REQUEST, "provider is not a peer id");
    };
    match s.exchange.probe_agreement(provider, b.how).await {
        Ok(answer) => Json(answers::ProbeAnswer { answer }).into_response(),
        Err(e) => Problem::from(super::CommandError::from(e)).into_response(),
    }
}

/// Fault injection: `on` makes this node serve blob data with a flipped byte (peers must
/// detect it, penalise this node and fetch elsewhere); `off` stops it.
#[utoipa::path(
    post,
    path = "/api/v1/debug/corrupt-blobs",
    tag = "fault injection",
    summary = "Only with [api] fault_injection: serve blob data with a flipped byte (on/off)",
    request_body(content = String, content_type = "text/plain", description = "on or off"),
    responses(
        (status = 200, body = answers::CorruptAnswer),
        (status = 401, description = "no or wrong token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "neither on nor off", body = Problem, content_type = "application/problem+json")
    ),
    security(("token" = []))
)]
async fn set_corrupt_blobs(State(s): State<AppState>, body: String) -> Response {
    let on = match body.trim() {
        "on" => true,
        "off" => false,
        other => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{other:?}: on or off"),
            );
        }
    };
    s.corrupt_blobs
        .store(on, std::sync::atomic::Ordering::Relaxed);
    tracing::warn!(on, "fault injection: corrupting served blob data");
    Json(answers::CorruptAnswer { corrupt: on }).into_response()
}
