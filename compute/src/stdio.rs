//! The algorithm's standard streams: the dataset in (counted), the result out (bounded,
//! counted), diagnostics out (truncated).

use std::{
    io::Read,
    pin::Pin,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    task::{Context, Poll},
};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use wasmtime_wasi::{
    cli::{IsTerminal, StdinStream, StdoutStream},
    p2::{InputStream, OutputStream, Pollable, StreamError},
};

/// The most bytes handed to the guest per read.
const READ_CHUNK: usize = 64 * 1024;

/// The dataset as standard input: a file read on demand; every byte the algorithm reads is
/// counted.
#[derive(Clone)]
pub(crate) struct DatasetInput {
    file: Arc<Mutex<Option<std::fs::File>>>,
    read: Arc<AtomicU64>,
}

impl DatasetInput {
    pub(crate) fn new(file: std::fs::File) -> Self {
        Self {
            file: Arc::new(Mutex::new(Some(file))),
            read: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Bytes read so far.
    pub(crate) fn bytes_read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    fn read_up_to(&self, size: usize) -> std::io::Result<Option<Vec<u8>>> {
        let mut guard = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(file) = guard.as_mut() else {
            return Ok(None);
        };
        let mut buf = vec![0u8; size.clamp(1, READ_CHUNK)];
        let n = file.read(&mut buf)?;
        if n == 0 {
            *guard = None;
            return Ok(None);
        }
        buf.truncate(n);
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(Some(buf))
    }
}

impl std::fmt::Debug for DatasetInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatasetInput")
            .field("read", &self.bytes_read())
            .finish_non_exhaustive()
    }
}

#[wasmtime_wasi::async_trait]
impl InputStream for DatasetInput {
    fn read(&mut self, size: usize) -> Result<Bytes, StreamError> {
        match self.read_up_to(size) {
            Ok(Some(b)) => Ok(Bytes::from(b)),
            Ok(None) => Err(StreamError::Closed),
            Err(e) => Err(StreamError::LastOperationFailed(e.into())),
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for DatasetInput {
    // A local file: always ready (a read blocks at most for the disk).
    async fn ready(&mut self) {}
}

impl AsyncRead for DatasetInput {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.read_up_to(buf.remaining()) {
            Ok(Some(b)) => {
                buf.put_slice(&b);
                Poll::Ready(Ok(()))
            }
            Ok(None) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl IsTerminal for DatasetInput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdinStream for DatasetInput {
    fn async_stream(&self) -> Box<dyn AsyncRead + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn InputStream> {
        Box::new(self.clone())
    }
}

/// A bounded output: the result (a write beyond the limit traps the guest and marks the
/// stream overflowed) or diagnostics (`truncate`: bytes beyond the limit are dropped).
#[derive(Clone)]
pub(crate) struct BoundedOutput {
    buffer: Arc<Mutex<BytesMut>>,
    limit: u64,
    truncate: bool,
    written: Arc<AtomicU64>,
    overflowed: Arc<AtomicBool>,
}

impl BoundedOutput {
    /// The result stream: more than `limit` bytes stops the job.
    pub(crate) fn result(limit: u64) -> Self {
        Self::new(limit, false)
    }

    /// A diagnostics stream: at most `limit` bytes kept.
    pub(crate) fn diagnostics(limit: u64) -> Self {
        Self::new(limit, true)
    }

    fn new(limit: u64, truncate: bool) -> Self {
        Self {
            buffer: Arc::new(Mutex::new(BytesMut::new())),
            limit,
            truncate,
            written: Arc::new(AtomicU64::new(0)),
            overflowed: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Bytes the guest wrote (kept or not).
    pub(crate) fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Whether the guest tried to write beyond the limit.
    pub(crate) fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Relaxed)
    }

    /// What was kept.
    pub(crate) fn contents(&self) -> Vec<u8> {
        self.buffer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .to_vec()
    }

    /// Appends `bytes`; `Err` once the result limit is exceeded.
    fn append(&self, bytes: &[u8]) -> Result<usize, ()> {
        let mut buf = self.buffer.lock().unwrap_or_else(PoisonError::into_inner);
        self.written
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let room =
            usize::try_from(self.limit.saturating_sub(buf.len() as u64)).unwrap_or(usize::MAX);
        if bytes.len() > room {
            if self.truncate {
                buf.extend_from_slice(&bytes[..room]);
                return Ok(bytes.len());
            }
            self.overflowed.store(true, Ordering::Relaxed);
            return Err(());
        }
        buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }
}

impl std::fmt::Debug for BoundedOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundedOutput")
            .field("limit", &self.limit)
            .field("written", &self.written())
            .finish_non_exhaustive()
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for BoundedOutput {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.append(&bytes)
            .map(|_| ())
            .map_err(|()| StreamError::trap("output limit exceeded"))
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        // Any size: the limit is enforced in `write`, so that a guest that exceeds it is
        // stopped instead of waiting for room that never comes.
        Ok(READ_CHUNK)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for BoundedOutput {
    async fn ready(&mut self) {}
}

impl AsyncWrite for BoundedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(self.append(buf).map_err(|()| {
            std::io::Error::new(std::io::ErrorKind::StorageFull, "output limit exceeded")
        }))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for BoundedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for BoundedOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}
