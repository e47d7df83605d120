//! Bounded byte pipes between a blocking thread and an async task, reusing their buffers.
//!
//! Transfers verify (BLAKE3, bao) and touch files on blocking threads while the stream is
//! driven by async tasks. A pipe lets both run at once, a few pieces apart, instead of
//! buffering a whole segment or file first: [`to_async`] carries what a blocking thread
//! produces (a [`Write`] target, or [`PipeWriter::fill_from`] a file) to an async task that
//! sends it, and [`from_async`] carries what an async task reads from a stream to a blocking
//! consumer (a [`Read`], or [`PipeReader::for_each_piece`]). Pieces go back once used, so a
//! transfer allocates and zeroes its buffers once. Repository segments use 64 KiB pieces
//! ([`PIECE`]), data exchange 1 MiB.

use std::{
    io::{self, Read, Write},
    time::Duration,
};

use futures::AsyncReadExt;
use tokio::sync::mpsc;

/// Bytes per piece of a repository segment.
pub(crate) const PIECE: usize = 64 * 1024;

/// The blocking end that writes into a pipe.
pub(crate) struct PipeWriter {
    tx: mpsc::Sender<Vec<u8>>,
    free: std::sync::mpsc::Receiver<Vec<u8>>,
    /// The piece being filled; empty (no buffer) between pieces.
    buf: Vec<u8>,
    piece: usize,
}

/// The async end that receives what a [`PipeWriter`] wrote.
pub(crate) struct PipeSource {
    rx: mpsc::Receiver<Vec<u8>>,
    free: std::sync::mpsc::SyncSender<Vec<u8>>,
}

/// A pipe from a blocking writer to an async task, `ahead` pieces of `piece` bytes deep.
pub(crate) fn to_async(ahead: usize, piece: usize) -> (PipeWriter, PipeSource) {
    let (tx, rx) = mpsc::channel(ahead.max(1));
    let (free_tx, free_rx) = std::sync::mpsc::sync_channel(ahead + 1);
    (
        PipeWriter {
            tx,
            free: free_rx,
            buf: Vec::new(),
            piece: piece.max(1),
        },
        PipeSource { rx, free: free_tx },
    )
}

impl PipeWriter {
    /// A buffer for the next piece: one handed back if there is one. Its bytes are stale
    /// but initialised, so filling it in place costs no zeroing.
    fn recycled(&mut self) -> Vec<u8> {
        self.free
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(self.piece))
    }

    fn send_piece(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let full = std::mem::take(&mut self.buf);
        self.tx
            .blocking_send(full)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the receiving side is gone"))
    }

    /// Reads up to `n` bytes of `r` straight into pieces, sending each as it fills. Returns
    /// the bytes read: fewer than `n` only where `r` ended first.
    pub(crate) fn fill_from(&mut self, r: &mut impl Read, n: u64) -> io::Result<u64> {
        let mut done = 0u64;
        while done < n {
            let filled = self.buf.len();
            if filled == 0 {
                self.buf = self.recycled();
            }
            self.buf.resize(self.piece, 0);
            let want = usize::try_from(n - done)
                .unwrap_or(usize::MAX)
                .min(self.piece - filled);
            let got = loop {
                match r.read(&mut self.buf[filled..filled + want]) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    other => break other,
                }
            };
            // The buffer's length marks what is filled, also when the read failed.
            self.buf.truncate(filled + got.as_ref().map_or(0, |g| *g));
            let got = got?;
            if got == 0 {
                break;
            }
            done += got as u64;
            if self.buf.len() >= self.piece {
                self.send_piece()?;
            }
        }
        Ok(done)
    }

    /// Sends what is buffered; the receiver then sees the end once this is dropped.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        self.send_piece()
    }
}

impl Write for PipeWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.is_empty() {
            let mut next = self.recycled();
            next.clear();
            next.reserve(self.piece);
            self.buf = next;
        }
        let room = self.piece - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= self.piece {
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
    piece: usize,
}

/// The blocking end that reads what a [`PipeSink`] sent.
pub(crate) struct PipeReader {
    rx: mpsc::Receiver<Vec<u8>>,
    free: mpsc::Sender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

/// A pipe from an async task to a blocking reader, `ahead` pieces of `piece` bytes deep.
pub(crate) fn from_async(ahead: usize, piece: usize) -> (PipeSink, PipeReader) {
    let (tx, rx) = mpsc::channel(ahead.max(1));
    let (free_tx, free_rx) = mpsc::channel(ahead + 1);
    (
        PipeSink {
            tx,
            free: free_rx,
            piece: piece.max(1),
        },
        PipeReader {
            rx,
            free: free_tx,
            cur: Vec::new(),
            pos: 0,
        },
    )
}

impl PipeSink {
    /// Reads up to one piece, and at most `at_most` bytes, from `s` into a reused buffer and
    /// sends it. `Ok(0)` at the end of the stream, or when the reader is gone (it stopped
    /// early; its result says why). Fails when `s` fails or sends nothing for `idle`.
    pub(crate) async fn pump_piece(
        &mut self,
        s: &mut libp2p::Stream,
        at_most: usize,
        idle: Duration,
    ) -> io::Result<usize> {
        let buf = self.free.try_recv().unwrap_or_default();
        let piece = read_piece(s, buf, self.piece.min(at_most), idle).await?;
        let n = piece.len();
        if n == 0 || self.tx.send(piece).await.is_err() {
            return Ok(0);
        }
        Ok(n)
    }
}

impl PipeReader {
    fn next_piece(&mut self) -> bool {
        let Some(next) = self.rx.blocking_recv() else {
            return false; // the sending side finished (or failed: the caller knows)
        };
        let used = std::mem::replace(&mut self.cur, next);
        let _ = self.free.try_send(used);
        self.pos = 0;
        true
    }

    /// Hands every remaining piece, in order and without copying it, to `f`; stops at the
    /// end of the pipe or at `f`'s first error.
    pub(crate) fn for_each_piece<E>(
        &mut self,
        mut f: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        loop {
            if self.pos < self.cur.len() {
                let start = self.pos;
                self.pos = self.cur.len();
                f(&self.cur[start..])?;
            }
            if !self.next_piece() {
                return Ok(());
            }
        }
    }
}

impl Read for PipeReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.cur.len() && !self.next_piece() {
            return Ok(0);
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Reads up to `want` bytes into `buf` (fewer only at the end of the stream); fails when
/// nothing arrives for `idle`.
async fn read_piece(
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
        let (mut w, mut src) = to_async(2, PIECE);
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
        let (sink, mut r) = from_async(2, PIECE);
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
    async fn a_file_is_read_straight_into_whole_pieces_and_handed_over_in_order() {
        let piece = 1000;
        let data: Vec<u8> = (0..10_500u32).map(|i| (i % 253) as u8).collect();
        // Reads stop at `n` even when more is there, and come up short where the source ends.
        for (n, expect) in [(7_777u64, 7_777usize), (50_000, 10_500)] {
            let (mut w, mut src) = to_async(2, piece);
            let d = data.clone();
            let filler = tokio::task::spawn_blocking(move || {
                let mut r = std::io::Cursor::new(d);
                let read = w.fill_from(&mut r, n).unwrap();
                w.finish().unwrap();
                read
            });
            let mut sizes = Vec::new();
            let (sink, mut reader) = from_async(2, piece);
            let consumer = tokio::task::spawn_blocking(move || {
                let mut got = Vec::new();
                reader
                    .for_each_piece(|p| {
                        got.extend_from_slice(p);
                        Ok::<_, ()>(())
                    })
                    .unwrap();
                got
            });
            while let Some(p) = src.recv().await {
                sizes.push(p.len());
                sink.tx.send(p.clone()).await.unwrap();
                src.give_back(p);
            }
            drop(sink);
            assert_eq!(filler.await.unwrap(), expect as u64);
            assert_eq!(consumer.await.unwrap(), data[..expect]);
            // Every piece but the last is whole.
            let (last, whole) = sizes.split_last().unwrap();
            assert!(whole.iter().all(|&s| s == piece), "{sizes:?}");
            assert_eq!(*last, expect - whole.len() * piece);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_consumers_error_stops_the_pieces() {
        let (sink, mut reader) = from_async(4, 10);
        for i in 0..3u8 {
            sink.tx.send(vec![i; 10]).await.unwrap();
        }
        drop(sink);
        let seen = tokio::task::spawn_blocking(move || {
            let mut seen = 0;
            let r = reader.for_each_piece(|p| {
                seen += 1;
                if p[0] == 1 { Err("bad piece") } else { Ok(()) }
            });
            (r, seen)
        })
        .await
        .unwrap();
        assert_eq!(seen, (Err("bad piece"), 2));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_stops_when_the_receiver_is_gone() {
        let (mut w, src) = to_async(1, PIECE);
        drop(src);
        let r = tokio::task::spawn_blocking(move || w.write_all(&vec![0u8; 4 * PIECE]))
            .await
            .unwrap();
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    }
}
