//! The API's HTTP server: hyper HTTP/1 connections with a header-read timeout and a bounded
//! read buffer, at most `max_connections` of them open at once.
//!
//! `axum::serve` has neither a connection cap nor a header-read timeout, so a local client
//! could hold thousands of idle or slow-header connections until the process ran out of file
//! descriptors. Here every connection holds a slot; at the cap, a new connection closes the
//! connection idle longest — no request in progress for at least [`MIN_IDLE`]: an idle
//! keep-alive or a client still dribbling its header — so idle clients can never starve new
//! ones. When no connection is idle, new ones wait in the kernel's backlog until a slot frees.

use std::{
    collections::BTreeMap,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::{Router, body::Body, extract::Request};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    net::TcpListener,
    sync::{Notify, Semaphore, watch},
    task::JoinSet,
};
use tower::ServiceExt;
use tracing::{debug, warn};

use crate::daemon::metrics::ApiMetrics;

/// Largest request head (request line and headers) hyper buffers; larger heads get hyper's
/// own 431. The guard answers heads over [`super::guard::MAX_HEAD_BYTES`] itself, with a
/// problem document.
const MAX_BUF_BYTES: usize = 64 * 1024;

/// How long open connections may finish their request when the server stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// A connection is closed to make room only after it has been idle this long, so a client
/// whose request is already in the socket but not yet parsed is not mistaken for an idle one.
const MIN_IDLE: Duration = Duration::from_millis(250);

/// The server's limits.
#[derive(Clone, Copy, Debug)]
pub(super) struct ServerLimits {
    pub(super) max_connections: usize,
    pub(super) header_read_timeout: Duration,
}

/// What a connection is doing, updated by its requests.
#[derive(Debug)]
struct Activity {
    /// Requests whose response has not been sent completely.
    busy: AtomicUsize,
    /// When `busy` last fell to 0 (or the connection opened), ms since the server started.
    idle_since_ms: AtomicU64,
    /// The server's start, the origin of `idle_since_ms`.
    origin: Instant,
}

impl Activity {
    fn new(origin: Instant) -> Arc<Self> {
        Arc::new(Self {
            busy: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(ms_since(origin)),
            origin,
        })
    }

    /// How long it has been idle at `now_ms`; `None` while a request is in progress.
    fn idle_for(&self, now_ms: u64) -> Option<Duration> {
        (self.busy.load(Ordering::Acquire) == 0).then(|| {
            Duration::from_millis(now_ms.saturating_sub(self.idle_since_ms.load(Ordering::Acquire)))
        })
    }
}

fn ms_since(origin: Instant) -> u64 {
    u64::try_from(origin.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// One open connection, as the accept loop sees it.
#[derive(Debug)]
struct Slot {
    activity: Arc<Activity>,
    evict: Arc<Notify>,
}

/// Open connections by age (ids increase).
#[derive(Debug, Default)]
struct Connections {
    open: Mutex<BTreeMap<u64, Slot>>,
}

impl Connections {
    /// Asks the connection idle longest (at least [`MIN_IDLE`]) to close; false if there is
    /// none.
    fn evict_one_idle(&self, now_ms: u64) -> bool {
        let Ok(mut open) = self.open.lock() else {
            return false;
        };
        let idle = open
            .iter()
            .filter_map(|(id, s)| Some((*id, s.activity.idle_for(now_ms)?)))
            .filter(|(_, d)| *d >= MIN_IDLE)
            .max_by_key(|(_, d)| *d)
            .map(|(id, _)| id);
        match idle.and_then(|id| open.remove(&id)) {
            Some(slot) => {
                slot.evict.notify_one();
                true
            }
            None => false,
        }
    }

    fn insert(&self, id: u64, slot: Slot) {
        if let Ok(mut open) = self.open.lock() {
            open.insert(id, slot);
        }
    }

    fn remove(&self, id: u64) {
        if let Ok(mut open) = self.open.lock() {
            open.remove(&id);
        }
    }
}

/// Serves `app` on `listener` until `stop` turns true.
pub(super) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    metrics: ApiMetrics,
    mut stop: watch::Receiver<bool>,
) {
    let origin = Instant::now();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let connections = Arc::new(Connections::default());
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_BUF_BYTES)
        .keep_alive(true);
    let mut tasks = JoinSet::new();
    let mut next_id = 0u64;
    loop {
        // A slot first: at the cap, close the connection idle longest and take its slot;
        // while none has been idle long enough, wait for one to be or for a slot to free.
        let permit = loop {
            if let Ok(p) = slots.clone().try_acquire_owned() {
                break Some(p);
            }
            if connections.evict_one_idle(ms_since(origin)) {
                metrics.connections_evicted.inc();
            }
            tokio::select! {
                p = slots.clone().acquire_owned() => break p.ok(),
                () = tokio::time::sleep(MIN_IDLE / 2) => {}
                _ = stop.changed() => break None,
            }
        };
        let Some(permit) = permit else { break };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    warn!(error = %e, "API accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        while tasks.try_join_next().is_some() {}
        let id = next_id;
        next_id += 1;
        let activity = Activity::new(origin);
        let evict = Arc::new(Notify::new());
        connections.insert(
            id,
            Slot {
                activity: activity.clone(),
                evict: evict.clone(),
            },
        );
        let app = app.clone();
        let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            let guard = BusyGuard::new(activity.clone());
            let app = app.clone();
            async move {
                let response = app.oneshot(req.map(Body::new)).await;
                response.map(|r| {
                    r.map(|body| {
                        Body::new(Guarded {
                            body,
                            _guard: guard,
                        })
                    })
                })
            }
        });
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let connections = connections.clone();
        let open = metrics.connections_open.clone();
        let mut stop = stop.clone();
        open.inc();
        tasks.spawn(async move {
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        debug!(error = %e, "API connection ended with an error");
                    }
                }
                // Dropping the connection closes its socket; it had no request in progress.
                _ = evict.notified() => debug!("idle API connection closed to make room"),
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
                }
            }
            connections.remove(id);
            open.dec();
            drop(permit);
        });
    }
    let _ = tokio::time::timeout(SHUTDOWN_GRACE * 2, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
}

/// Counts a request as in progress until its response body is dropped.
#[derive(Debug)]
struct BusyGuard(Arc<Activity>);

impl BusyGuard {
    fn new(activity: Arc<Activity>) -> Self {
        activity.busy.fetch_add(1, Ordering::AcqRel);
        Self(activity)
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        let a = &self.0;
        a.idle_since_ms.store(ms_since(a.origin), Ordering::Release);
        a.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted as in progress while it streams.
#[derive(Debug)]
struct Guarded {
    body: Body,
    _guard: BusyGuard,
}

impl HttpBody for Guarded {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(origin: Instant) -> (Slot, Arc<Activity>, Arc<Notify>) {
        let activity = Activity::new(origin);
        let evict = Arc::new(Notify::new());
        (
            Slot {
                activity: activity.clone(),
                evict: evict.clone(),
            },
            activity,
            evict,
        )
    }

    #[tokio::test]
    async fn the_longest_idle_connection_is_evicted_and_busy_or_fresh_ones_never() {
        let origin = Instant::now() - Duration::from_secs(10);
        let c = Connections::default();
        let (s0, a0, _e0) = slot(origin);
        let (s1, a1, e1) = slot(origin);
        let (s2, a2, _e2) = slot(origin);
        let _busy = BusyGuard::new(a0.clone());
        a1.idle_since_ms.store(1_000, Ordering::Release);
        a2.idle_since_ms.store(5_000, Ordering::Release);
        c.insert(0, s0);
        c.insert(1, s1);
        c.insert(2, s2);
        assert!(c.evict_one_idle(10_000));
        // connection 1 (idle longest) was told to close; 0 is busy and stays
        tokio::time::timeout(Duration::from_secs(1), e1.notified())
            .await
            .expect("connection 1 notified");
        let open: Vec<u64> = c.open.lock().unwrap().keys().copied().collect();
        assert_eq!(open, vec![0, 2]);
        assert!(
            !c.evict_one_idle(5_100),
            "connection 2 has been idle only 100 ms"
        );
        assert!(c.evict_one_idle(6_000));
        assert!(!c.evict_one_idle(60_000), "only a busy connection is left");
        assert_eq!(c.open.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_request_counts_as_busy_until_its_body_is_dropped() {
        let activity = Activity::new(Instant::now());
        let body = Guarded {
            body: Body::from("x"),
            _guard: BusyGuard::new(activity.clone()),
        };
        assert_eq!(activity.idle_for(0), None);
        drop(body);
        assert!(activity.idle_for(u64::MAX).is_some());
    }
}
