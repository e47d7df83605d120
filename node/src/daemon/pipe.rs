//! Bounded byte pipes between a blocking thread and an async task, reusing their buffers.
//!
//! Blob transfers verify (BLAKE3, bao) and touch files on blocking threads while the
//! stream is driven by async tasks. A pipe lets both run at once, a few pieces apart,
//! instead of buffering a whole segment first: [`to_async`] carries what a blocking
//! [`Write`] produces to an async reader (the serving side encodes into it), [`from_async`]
//! carries what an async task reads to a blocking [`Read`] (the fetching side decodes from
//! it). Pieces go back once used, so a transfer allocates and zeroes its buffers once.

use std::{
    io::{self, Read, Write},
    time::Duration,
};

use futures::AsyncReadExt;
use tokio::sync::mpsc;

/// Bytes per piece.
pub(crate) const PIECE: usize = 64 * 1024;

/// The blocking end that writes into a pipe.
pub(crate) struct PipeWriter {
    tx: mpsc::Sender<Vec<u8>>,
    free: std::sync::mpsc::Receiver<Vec<u8>>,
    buf: Vec<u8>,
}

/// The async end that receives what a [`PipeWriter`] wrote.
pub(crate) struct PipeSource {
    rx: mpsc::Receiver<Vec<u8>>,
    free: std::sync::mpsc::SyncSender<Vec<u8>>,
}

/// A pipe from a blocking writer to an async task, `ahead` pieces deep.
pub(crate) fn to_async(ahead: usize) -> (PipeWriter, PipeSource) {
    let (tx, rx) = mpsc::channel(ahead.max(1));
    let (free_tx, free_rx) = std::sync::mpsc::sync_channel(ahead + 1);
    (
        PipeWriter {
            tx,
            free: free_rx,
            buf: Vec::with_capacity(PIECE),
        },
        PipeSource { rx, free: free_tx },
    )
}

impl PipeWriter {
    fn send_piece(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut next = self.free.try_recv().unwrap_or_default();
        next.clear();
        next.reserve(PIECE);
        let full = std::mem::replace(&mut self.buf, next);
        self.tx
            .blocking_send(full)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the receiving side is gone"))
    }

    /// Sends what is buffered; the receiver then sees the end once this is dropped.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        self.send_piece()
    }
}

impl Write for PipeWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = PIECE - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= PIECE {
            self.send_piece()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl PipeSource {
    /// The next piece; `None` once the writer is finished or dropped.
    pub(crate) async fn recv(&mut self) -> Option<Vec<u8>> {
        self.rx.recv().await
    }

    /// Hands a used piece back to the writer.
    pub(crate) fn give_back(&self, piece: Vec<u8>) {
        let _ = self.free.try_send(piece);
    }
}

/// The async end that feeds a pipe.
pub(crate) struct PipeSink {
    tx: mpsc::Sender<Vec<u8>>,
    free: mpsc::Receiver<Vec<u8>>,
}

/// The blocking end that reads what a [`PipeSink`] sent.
pub(crate) struct PipeReader {
    rx: mpsc::Receiver<Vec<u8>>,
    free: mpsc::Sender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

/// A pipe from an async task to a blocking reader, `ahead` pieces deep.
pub(crate) fn from_async(ahead: usize) -> (PipeSink, PipeReader) {
    let (tx, rx) = mpsc::channel(ahead.max(1));
    let (free_tx, free_rx) = mpsc::channel(ahead + 1);
    (
        PipeSink { tx, free: free_rx },
        PipeReader {
            rx,
            free: free_tx,
            cur: Vec::new(),
            pos: 0,
        },
    )
}

impl PipeSink {
    /// Reads up to one piece from `s` into a reused buffer and sends it. `Ok(0)` at the end
    /// of the stream, or when the reader is gone (it stopped early; its result says why).
    /// Fails when `s` fails or sends nothing for `idle`.
    pub(crate) async fn pump_piece(
        &mut self,
        s: &mut libp2p::Stream,
        idle: Duration,
    ) -> io::Result<usize> {
        let buf = self.free.try_recv().unwrap_or_default();
        let piece = read_piece(s, buf, PIECE, idle).await?;
        let n = piece.len();
        if n == 0 || self.tx.send(piece).await.is_err() {
            return Ok(0);
        }
        Ok(n)
    }
}

impl Read for PipeReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.cur.len() {
            let Some(next) = self.rx.blocking_recv() else {
                return Ok(0); // the sending side finished (or failed: the caller knows)
            };
            let used = std::mem::replace(&mut self.cur, next);
            let _ = self.free.try_send(used);
            self.pos = 0;
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Reads up to `want` bytes into `buf` (fewer only at the end of the stream); fails when
/// nothing arrives for `idle`.
pub(crate) async fn read_piece(
    s: &mut libp2p::Stream,
    mut buf: Vec<u8>,
    want: usize,
    idle: Duration,
) -> io::Result<Vec<u8>> {
    buf.resize(want, 0);
    let mut filled = 0;
    while filled < want {
        let n = tokio::time::timeout(idle, s.read(&mut buf[filled..]))
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the peer sent nothing for {} s", idle.as_secs()),
                )
            })??;
        if n == 0 {
            break;
        }
        filled += n;
    }
    buf.truncate(filled);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bytes_cross_both_pipes_in_order_and_the_end_is_seen() {
        let data: Vec<u8> = (0..(3 * PIECE + 123)).map(|i| (i % 251) as u8).collect();
        // Blocking writer → async.
        let (mut w, mut src) = to_async(2);
        let d = data.clone();
        let writer = tokio::task::spawn_blocking(move || {
            for part in d.chunks(1000) {
                w.write_all(part).unwrap();
            }
            w.finish().unwrap();
        });
        let mut got = Vec::new();
        while let Some(p) = src.recv().await {
            assert!(p.len() <= PIECE);
            got.extend_from_slice(&p);
            src.give_back(p);
        }
        writer.await.unwrap();
        assert_eq!(got, data);

        // Async → blocking reader; the reader sees the end when the sink is dropped.
        let (sink, mut r) = from_async(2);
        let reader = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            out
        });
        for part in data.chunks(PIECE / 3) {
            sink.tx.send(part.to_vec()).await.unwrap();
        }
        drop(sink);
        assert_eq!(reader.await.unwrap(), data);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_stops_when_the_receiver_is_gone() {
        let (mut w, src) = to_async(1);
        drop(src);
        let r = tokio::task::spawn_blocking(move || w.write_all(&vec![0u8; 4 * PIECE]))
            .await
            .unwrap();
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    }
}
