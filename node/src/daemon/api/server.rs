//! The API's HTTP server: hyper HTTP/1 connections with a header-read timeout and a bounded
//! read buffer, at most `max_connections` of them open at once.
//!
//! `axum::serve` has neither a connection cap nor a header-read timeout, so a local client
//! could hold thousands of idle or slow-header connections until the process ran out of file
//! descriptors. Here every connection holds a slot; at the cap, a new connection closes the
//! oldest connection that has no request in progress (an idle keep-alive or a client still
//! dribbling its header), so idle clients can never starve new ones. When every connection is
//! busy, new ones wait in the kernel's backlog until a slot frees.

use std::{
    collections::BTreeMap,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
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

/// The server's limits.
#[derive(Clone, Copy, Debug)]
pub(super) struct ServerLimits {
    pub(super) max_connections: usize,
    pub(super) header_read_timeout: Duration,
}

/// One open connection, as the accept loop sees it.
#[derive(Debug)]
struct Slot {
    /// Requests whose response has not been sent completely.
    busy: Arc<AtomicUsize>,
    evict: Arc<Notify>,
}

/// Open connections by age (ids increase).
#[derive(Debug, Default)]
struct Connections {
    open: Mutex<BTreeMap<u64, Slot>>,
}

impl Connections {
    /// Asks the oldest connection with no request in progress to close; false if every
    /// connection is busy.
    fn evict_one_idle(&self) -> bool {
        let Ok(mut open) = self.open.lock() else {
            return false;
        };
        let idle = open
            .iter()
            .find(|(_, s)| s.busy.load(Ordering::Acquire) == 0)
            .map(|(id, _)| *id);
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
        // A slot first: at the cap, close the oldest idle connection and wait for its slot.
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if connections.evict_one_idle() {
                    metrics.connections_evicted.inc();
                }
                tokio::select! {
                    p = slots.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                    _ = stop.changed() => break,
                }
            }
        };
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
        let busy = Arc::new(AtomicUsize::new(0));
        let evict = Arc::new(Notify::new());
        connections.insert(
            id,
            Slot {
                busy: busy.clone(),
                evict: evict.clone(),
            },
        );
        let app = app.clone();
        let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            let guard = BusyGuard::new(busy.clone());
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
struct BusyGuard(Arc<AtomicUsize>);

impl BusyGuard {
    fn new(busy: Arc<AtomicUsize>) -> Self {
        busy.fetch_add(1, Ordering::AcqRel);
        Self(busy)
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
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

    fn slot() -> (Slot, Arc<AtomicUsize>, Arc<Notify>) {
        let busy = Arc::new(AtomicUsize::new(0));
        let evict = Arc::new(Notify::new());
        (
            Slot {
                busy: busy.clone(),
                evict: evict.clone(),
            },
            busy,
            evict,
        )
    }

    #[tokio::test]
    async fn the_oldest_idle_connection_is_evicted_and_busy_ones_never() {
        let c = Connections::default();
        let (s0, busy0, _e0) = slot();
        let (s1, _busy1, e1) = slot();
        let (s2, _busy2, _e2) = slot();
        busy0.store(1, Ordering::Release);
        c.insert(0, s0);
        c.insert(1, s1);
        c.insert(2, s2);
        assert!(c.evict_one_idle());
        // connection 1 (oldest idle) was told to close; 0 is busy and stays
        tokio::time::timeout(Duration::from_secs(1), e1.notified())
            .await
            .expect("connection 1 notified");
        let open: Vec<u64> = c.open.lock().unwrap().keys().copied().collect();
        assert_eq!(open, vec![0, 2]);
        assert!(c.evict_one_idle());
        assert!(!c.evict_one_idle(), "only a busy connection is left");
        assert_eq!(c.open.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_request_counts_as_busy_until_its_body_is_dropped() {
        let busy = Arc::new(AtomicUsize::new(0));
        let body = Guarded {
            body: Body::from("x"),
            _guard: BusyGuard::new(busy.clone()),
        };
        assert_eq!(busy.load(Ordering::Acquire), 1);
        drop(body);
        assert_eq!(busy.load(Ordering::Acquire), 0);
    }
}
