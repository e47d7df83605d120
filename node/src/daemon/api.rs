//! The local HTTP API (`/api/v1`), JSON, on loopback by default. Writes need the bearer token
//! from `api.json` (mode 0600), which is written once the API is up. Also `/metrics`
//! (Prometheus text format), `/api/v1/events` (server-sent events) and
//! `/api/v1/openapi.json` (the contract of all of them).

mod openapi;

use std::{
    convert::Infallible, io::Write, net::SocketAddr, os::unix::fs::OpenOptionsExt, sync::Arc,
};

use anyhow::{Context, Result};
use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
    routing::{get, post},
};
use gaiamesh_config::ApiConfig;
use gaiamesh_directory::{catalogue::QueryOptions, query};
use gaiamesh_protocol::{
    identity::PublicKey,
    sd::{DocumentFormat, SdDocument},
};
use prometheus_client::registry::Registry;
use serde::Deserialize;
use tokio::sync::{broadcast::error::RecvError, oneshot};

use super::Client;
use crate::datadir::DataDir;

#[derive(Clone)]
struct AppState {
    client: Client,
    token: String,
    registry: Arc<Registry>,
    /// Fault injection: the blob server corrupts what it sends.
    corrupt_blobs: Arc<std::sync::atomic::AtomicBool>,
    exchange: super::exchange::Exchange,
}

pub(crate) struct ApiHandle {
    pub(crate) addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl ApiHandle {
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

pub(crate) async fn serve(
    dir: &DataDir,
    config: &ApiConfig,
    client: Client,
    registry: Arc<Registry>,
    corrupt_blobs: Arc<std::sync::atomic::AtomicBool>,
    exchange: super::exchange::Exchange,
) -> Result<ApiHandle> {
    let listen = config.listen;
    let token = hex::encode(rand::random::<[u8; 32]>());
    let state = AppState {
        client,
        token: token.clone(),
        registry,
        corrupt_blobs,
        exchange,
    };
    let mut app = Router::new()
        .route("/metrics", get(metrics))
        .route("/api/v1/events", get(events))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/health", get(health))
        .route("/api/v1/status", get(status))
        .route("/api/v1/peers", get(peers))
        .route("/api/v1/directory", get(directory))
        .route("/api/v1/directory/{peer}", get(show))
        .route("/api/v1/sd", post(publish))
        .route("/api/v1/revocations", post(revoke))
        .route("/api/v1/repo", get(repo_status))
        .route("/api/v1/repo/bundle", get(repo_bundle))
        .route("/api/v1/repo/release", post(repo_release))
        .route("/api/v1/repo/fetch", post(repo_fetch))
        .route("/api/v1/assets", get(assets))
        .route("/api/v1/exchange", get(exchange_jobs))
        .route("/api/v1/exchange/fetch", post(exchange_fetch))
        .route("/api/v1/exchange/fetch/{job}", get(exchange_job))
        .route("/api/v1/audit", get(audit_list))
        .route("/api/v1/audit/verify", get(audit_verify));
    if config.fault_injection {
        tracing::warn!("fault injection is on: POST /api/v1/debug/gossip publishes raw bytes");
        app = app
            .route("/api/v1/debug/gossip", post(raw_gossip))
            .route("/api/v1/debug/corrupt-blobs", post(set_corrupt_blobs))
            .route("/api/v1/debug/spoiled-agreement", post(spoiled_agreement));
    }
    let app = app.with_state(state);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot bind the API to {listen}"))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    let info = serde_json::json!({ "address": format!("http://{addr}"), "token": token });
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

async fn status(State(s): State<AppState>) -> Response {
    match s.client.status().await {
        Ok(st) => Json(st).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
    }
}

async fn health(State(s): State<AppState>) -> Response {
    match s.client.status().await {
        Ok(_) => Json(serde_json::json!({ "ok": true })).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
    }
}

async fn peers(State(s): State<AppState>) -> Response {
    match s.client.peers().await {
        Ok(p) => Json(p).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
    }
}

#[derive(Deserialize)]
struct DirectoryParams {
    q: String,
    sort: Option<String>,
    limit: Option<usize>,
}

async fn directory(State(s): State<AppState>, Query(p): Query<DirectoryParams>) -> Response {
    let expr = match query::parse(&p.q) {
        Ok(e) => e,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.render(&p.q)),
    };
    let sort = match p.sort.as_deref().map(str::parse::<query::Sort>).transpose() {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let opts = QueryOptions {
        sort,
        limit: Some(p.limit.unwrap_or(100).min(10_000)),
    };
    match s.client.query(expr, opts).await {
        Ok(Ok(r)) => Json(r).into_response(),
        Ok(Err(e)) => error(StatusCode::UNPROCESSABLE_ENTITY, e),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
    }
}

async fn show(State(s): State<AppState>, Path(peer): Path<String>) -> Response {
    let subject: PublicKey = match peer.parse() {
        Ok(k) => k,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    match s.client.show(subject).await {
        Ok(Some(v)) => Json(v).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("{peer} is not in the directory"),
        ),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
    }
}

fn authorized(s: &AppState, headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| t == s.token)
}

const UNAUTHORIZED: &str = "writes need `Authorization: Bearer <token from api.json>`";

async fn revoke(State(s): State<AppState>, headers: HeaderMap, body: String) -> Response {
    if !authorized(&s, &headers) {
        return error(StatusCode::UNAUTHORIZED, UNAUTHORIZED);
    }
    let list = match gaiamesh_protocol::federation::RevocationList::from_toml(&body) {
        Ok(l) => l,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    };
    match s.client.revoke(list).await {
        Ok(Ok(removed)) => Json(serde_json::json!({ "removed_entries": removed })).into_response(),
        Ok(Err(e)) => error(StatusCode::UNPROCESSABLE_ENTITY, e),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
    }
}

async fn publish(State(s): State<AppState>, headers: HeaderMap, body: String) -> Response {
    if !authorized(&s, &headers) {
        return error(StatusCode::UNAUTHORIZED, UNAUTHORIZED);
    }
    // An empty body re-publishes the current document with seq + 1.
    let doc = if body.trim().is_empty() {
        None
    } else {
        match SdDocument::parse(&body, DocumentFormat::sniff(&body)) {
            Ok(d) => Some(d),
            Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
        }
    };
    match s.client.publish(doc).await {
        Ok(Ok(p)) => Json(serde_json::json!({
            "seq": p.seq,
            "gossip_after_ms": p.gossip_after_ms,
        }))
        .into_response(),
        Ok(Err(e)) => error(StatusCode::UNPROCESSABLE_ENTITY, e),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
    }
}

async fn repo_status(State(s): State<AppState>) -> Response {
    match s.client.repo_status().await {
        Ok(v) => Json(v).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
    }
}

async fn repo_bundle(State(s): State<AppState>) -> Response {
    match s.client.repo_bundle().await {
        Ok(b) => Json(serde_json::json!({ "bundle": hex::encode(b) })).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
    }
}

#[derive(serde::Deserialize)]
struct ReleaseBody {
    bundle: String,
    /// The component's file; absent for a bundle without a new blob (a key rotation).
    #[serde(default)]
    file: Option<std::path::PathBuf>,
}

async fn repo_release(State(s): State<AppState>, headers: HeaderMap, body: String) -> Response {
    if !authorized(&s, &headers) {
        return error(StatusCode::UNAUTHORIZED, UNAUTHORIZED);
    }
    let parsed: ReleaseBody = match serde_json::from_str(&body) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, format!("body: {e}")),
    };
    let Ok(bundle) = hex::decode(parsed.bundle.trim()) else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "bundle: not hex");
    };
    match s.client.repo_release(bundle, parsed.file).await {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => error(StatusCode::UNPROCESSABLE_ENTITY, e),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
    }
}

async fn repo_fetch(State(s): State<AppState>, headers: HeaderMap, body: String) -> Response {
    if !authorized(&s, &headers) {
        return error(StatusCode::UNAUTHORIZED, UNAUTHORIZED);
    }
    match s.client.repo_fetch(body.trim().to_owned()).await {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => error(StatusCode::UNPROCESSABLE_ENTITY, e),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
    }
}

async fn assets(State(s): State<AppState>) -> Response {
    let exchange = s.exchange.clone();
    let r = tokio::task::spawn_blocking(move || exchange.registry()).await;
    match r {
        Ok(Ok(reg)) => Json(reg.list().cloned().collect::<Vec<_>>()).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn exchange_fetch(State(s): State<AppState>, headers: HeaderMap, body: String) -> Response {
    if !authorized(&s, &headers) {
        return error(StatusCode::UNAUTHORIZED, UNAUTHORIZED);
    }
    let req: super::exchange::FetchRequest = match serde_json::from_str(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("fetch request: {e}")),
    };
    match s.exchange.start_fetch(req) {
        Ok(job) => Json(serde_json::json!({ "job": job })).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, e),
    }
}

async fn exchange_job(State(s): State<AppState>, Path(job): Path<u64>) -> Response {
    match s.exchange.jobs.lock().ok().and_then(|j| j.get(job)) {
        Some(v) => Json(v).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no fetch job {job}")),
    }
}

async fn exchange_jobs(State(s): State<AppState>) -> Response {
    let jobs = s.exchange.jobs.lock().map(|j| j.all()).unwrap_or_default();
    Json(serde_json::json!({ "jobs": jobs })).into_response()
}

#[derive(Deserialize)]
struct AuditParams {
    #[serde(default)]
    from: u64,
    limit: Option<usize>,
}

async fn audit_list(State(s): State<AppState>, Query(p): Query<AuditParams>) -> Response {
    let audit = s.exchange.audit.clone();
    let limit = p.limit.unwrap_or(1000);
    let r = tokio::task::spawn_blocking(move || {
        Ok::<_, gaiamesh_exchange::audit::AuditError>((audit.list(p.from, limit)?, audit.len()?))
    })
    .await;
    match r {
        Ok(Ok((entries, total))) => Json(serde_json::json!({
            "total": total,
            "entries": entries.iter().map(crate::cli::audit_entry_json).collect::<Vec<_>>(),
        }))
        .into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn audit_verify(State(s): State<AppState>) -> Response {
    let audit = s.exchange.audit.clone();
    let key = s.exchange.key.public();
    match tokio::task::spawn_blocking(move || audit.verify(&key)).await {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => error(StatusCode::CONFLICT, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

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

async fn openapi() -> Response {
    Json(openapi::document()).into_response()
}

/// Server-sent events: one `data:` JSON object per node event, named by its type.
async fn events(State(s): State<AppState>) -> Response {
    let rx = s.client.subscribe();
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        let event = match rx.recv().await {
            Ok(ev) => Event::default()
                .event(ev.name())
                .json_data(&ev)
                .unwrap_or_else(|_| Event::default().event("error")),
            Err(RecvError::Lagged(n)) => Event::default()
                .event("lagged")
                .data(format!("{{\"type\":\"lagged\",\"missed\":{n}}}")),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok::<_, Infallible>(event), rx))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Fault injection (only routed with `[api] fault_injection = true`).
async fn raw_gossip(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if !authorized(&s, &headers) {
        return error(StatusCode::UNAUTHORIZED, UNAUTHORIZED);
    }
    match s.client.raw_gossip(body.to_vec()).await {
        Ok(Ok(())) => Json(serde_json::json!({ "published": body.len() })).into_response(),
        Ok(Err(e)) => error(StatusCode::UNPROCESSABLE_ENTITY, e),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
    }
}

#[derive(Deserialize)]
struct SpoilBody {
    provider: String,
    how: super::exchange::Spoil,
}

/// Fault injection: presents a spoiled copy of this node's latest agreement with a
/// provider to it; the provider must refuse it.
async fn spoiled_agreement(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if !authorized(&s, &headers) {
        return error(StatusCode::UNAUTHORIZED, UNAUTHORIZED);
    }
    let b: SpoilBody = match serde_json::from_str(&body) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("body: {e}")),
    };
    let Ok(provider) = b.provider.parse::<libp2p::PeerId>() else {
        return error(StatusCode::BAD_REQUEST, "provider is not a peer id");
    };
    match s.exchange.probe_agreement(provider, b.how).await {
        Ok(answer) => Json(serde_json::json!({ "answer": answer })).into_response(),
        Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, e),
    }
}

/// Fault injection: `on` makes this node serve blob data with a flipped byte (peers must
/// detect it, penalise this node and fetch elsewhere); `off` stops it.
async fn set_corrupt_blobs(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if !authorized(&s, &headers) {
        return error(StatusCode::UNAUTHORIZED, UNAUTHORIZED);
    }
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
    Json(serde_json::json!({ "corrupt": on })).into_response()
}
