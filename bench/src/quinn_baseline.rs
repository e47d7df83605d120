//! Baselines the transfer benchmarks compare against, measured in the same run: one raw
//! quinn stream (the quinn, rustls and aws-lc crypto libp2p-quic uses) and one plain TCP
//! connection over loopback, each moving bytes from memory to memory or copying a file.

use std::{sync::Arc, time::Instant};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The TLS 1.3 cipher suites a baseline connection offers (the client's order decides).
#[derive(Clone, Copy, Debug)]
pub enum Suites {
    /// rustls' default order with aws-lc: AES-128-GCM first (AES-NI).
    Default,
    /// The order libp2p-tls configures: ChaCha20-Poly1305 first, which libp2p's QUIC
    /// connections therefore use.
    Libp2p,
}

fn endpoints_with(suites: Suites) -> Result<(quinn::Endpoint, quinn::Endpoint)> {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    let cert_der = rustls::pki_types::CertificateDer::from(cert.cert.der().to_vec());
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der());
    let server_config = quinn::ServerConfig::with_single_cert(vec![cert_der.clone()], key.into())?;
    let server = quinn::Endpoint::server(server_config, "127.0.0.1:0".parse()?)?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert_der)?;
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    if let Suites::Libp2p = suites {
        use rustls::crypto::aws_lc_rs::cipher_suite as cs;
        provider.cipher_suites = vec![
            cs::TLS13_CHACHA20_POLY1305_SHA256,
            cs::TLS13_AES_256_GCM_SHA384,
            cs::TLS13_AES_128_GCM_SHA256,
        ];
    }
    let crypto = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let client_config = quinn::ClientConfig::new(Arc::new(
        quinn::crypto::rustls::QuicClientConfig::try_from(crypto)?,
    ));
    let mut client = quinn::Endpoint::client("127.0.0.1:0".parse()?)?;
    client.set_default_client_config(client_config);
    Ok((server, client))
}

fn endpoints() -> Result<(quinn::Endpoint, quinn::Endpoint)> {
    endpoints_with(Suites::Default)
}

/// What a baseline moves: bytes from memory into memory, or a file into another file (read
/// in 1 MiB blocks, written and synced, as an exchange does).
#[derive(Clone, Debug)]
pub enum Payload {
    /// This many bytes.
    Memory(usize),
    /// `src` to `dst`.
    File {
        /// Read from.
        src: std::path::PathBuf,
        /// Written to (and synced).
        dst: std::path::PathBuf,
    },
}

impl Payload {
    fn len(&self) -> Result<usize> {
        Ok(match self {
            Payload::Memory(n) => *n,
            Payload::File { src, .. } => usize::try_from(std::fs::metadata(src)?.len())?,
        })
    }
}

async fn send_payload<W: AsyncWrite + Unpin>(w: &mut W, p: &Payload) -> Result<()> {
    let mut chunk = vec![7u8; 1024 * 1024];
    match p {
        Payload::Memory(bytes) => {
            let mut left = *bytes;
            while left > 0 {
                let n = left.min(chunk.len());
                w.write_all(&chunk[..n]).await?;
                left -= n;
            }
        }
        Payload::File { src, .. } => {
            let mut f = tokio::fs::File::open(src).await?;
            loop {
                let n = f.read(&mut chunk).await?;
                if n == 0 {
                    break;
                }
                w.write_all(&chunk[..n]).await?;
            }
        }
    }
    Ok(())
}

async fn recv_payload<R: AsyncRead + Unpin>(r: &mut R, p: &Payload) -> Result<usize> {
    let mut buf = vec![0u8; 1024 * 1024];
    let mut out = match p {
        Payload::Memory(_) => None,
        Payload::File { dst, .. } => Some(tokio::fs::File::create(dst).await?),
    };
    let mut got = 0usize;
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        if let Some(f) = &mut out {
            f.write_all(&buf[..n]).await?;
        }
        got += n;
    }
    if let Some(f) = &mut out {
        f.sync_all().await?;
    }
    Ok(got)
}

/// Bytes per second of one raw quinn stream moving `bytes` (rustls' default suites).
pub async fn raw_quinn(bytes: usize) -> Result<f64> {
    raw_quinn_with(Payload::Memory(bytes), Suites::Default).await
}

/// Bytes per second of one raw quinn stream moving `payload` with `suites`.
pub async fn raw_quinn_with(payload: Payload, suites: Suites) -> Result<f64> {
    let (server, client) = endpoints_with(suites)?;
    let addr = server.local_addr()?;
    let bytes = payload.len()?;
    let sent = payload.clone();
    let sender = tokio::spawn(async move {
        let conn = server.accept().await.context("no connection")?.await?;
        let mut s = conn.open_uni().await?;
        send_payload(&mut s, &sent).await?;
        s.finish()?;
        conn.closed().await;
        anyhow::Ok(())
    });
    let conn = client.connect(addr, "localhost")?.await?;
    let t0 = Instant::now();
    let mut r = conn.accept_uni().await?;
    let got = recv_payload(&mut r, &payload).await?;
    let secs = t0.elapsed().as_secs_f64();
    conn.close(0u32.into(), b"done");
    let _ = sender.await;
    if got != bytes {
        bail!("raw quinn moved {got} of {bytes} bytes");
    }
    Ok(bytes as f64 / secs)
}

/// Bytes per second of one plain TCP connection moving `payload`.
pub async fn raw_tcp(payload: Payload) -> Result<f64> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let bytes = payload.len()?;
    let sent = payload.clone();
    let sender = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await?;
        send_payload(&mut s, &sent).await?;
        s.shutdown().await?;
        anyhow::Ok(())
    });
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let t0 = Instant::now();
    let got = recv_payload(&mut s, &payload).await?;
    let secs = t0.elapsed().as_secs_f64();
    sender.await.context("sender")??;
    if got != bytes {
        bail!("TCP moved {got} of {bytes} bytes");
    }
    Ok(bytes as f64 / secs)
}

/// Median round trip (ms) of a 64-byte request and answer on a fresh bidirectional raw
/// quinn stream of one connection, over `n` rounds.
pub async fn raw_quinn_rtt_ms(n: usize) -> Result<f64> {
    let (server, client) = endpoints()?;
    let addr = server.local_addr()?;
    let echo = tokio::spawn(async move {
        let conn = server.accept().await.context("no connection")?.await?;
        while let Ok((mut send, mut recv)) = conn.accept_bi().await {
            let mut buf = [0u8; 64];
            recv.read_exact(&mut buf).await?;
            send.write_all(&buf).await?;
            send.finish()?;
        }
        anyhow::Ok(())
    });
    let conn = client.connect(addr, "localhost")?.await?;
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        let (mut send, mut recv) = conn.open_bi().await?;
        send.write_all(&[1u8; 64]).await?;
        let mut buf = [0u8; 64];
        recv.read_exact(&mut buf).await?;
        times.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    conn.close(0u32.into(), b"done");
    echo.abort();
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Writes `mib` MiB of deterministic, incompressible bytes to `path`.
pub fn write_source(path: &std::path::Path, mib: u64) -> Result<()> {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut xof = blake3::Hasher::new().update(b"bench").finalize_xof();
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..mib {
        xof.fill(&mut buf);
        f.write_all(&buf)?;
    }
    f.flush()?;
    Ok(())
}

/// Runs `BIN devnet --once --json --nodes 2 --no-light ARGS…` in a fresh temporary
/// directory (the light node would fetch mandatory components too) and returns its JSON
/// summary.
pub fn two_node_devnet(
    bin: &std::path::Path,
    name: &str,
    args: &[&str],
) -> Result<serde_json::Value> {
    let dir = std::env::temp_dir().join(format!("gaiamesh-bench-{name}-{}", std::process::id()));
    let summary = two_node_devnet_in(bin, &dir, args);
    let _ = std::fs::remove_dir_all(&dir);
    summary
}

/// Runs `BIN devnet --once --json --nodes 2 --no-light ARGS…` in `dir` and leaves the nodes'
/// data directories there; returns the devnet's JSON summary.
pub fn two_node_devnet_in(
    bin: &std::path::Path,
    dir: &std::path::Path,
    args: &[&str],
) -> Result<serde_json::Value> {
    let out = std::process::Command::new(bin)
        .args([
            "devnet",
            "--once",
            "--json",
            "--reset",
            "--nodes",
            "2",
            "--no-light",
        ])
        .args(args)
        .arg("--dir")
        .arg(dir)
        .output()?;
    if !out.status.success() {
        bail!("devnet failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// Seconds `n` raw quinn connections take to move `bytes` each, all at once, memory to
/// memory, with the cipher libp2p uses: what this machine's cores allow for `n·bytes`
/// through QUIC, with no disk and no verification.
pub async fn parallel_quinn_secs(n: usize, bytes: usize) -> Result<f64> {
    let t0 = Instant::now();
    let runs: Vec<_> = (0..n)
        .map(|_| tokio::spawn(raw_quinn_with(Payload::Memory(bytes), Suites::Libp2p)))
        .collect();
    for r in runs {
        r.await??;
    }
    Ok(t0.elapsed().as_secs_f64())
}

/// Like [`parallel_quinn_secs`], but each connection copies `src` into its own file in
/// `dir` (read, written and synced, as the nodes store what they fetch).
pub async fn parallel_quinn_copy_secs(
    n: usize,
    src: &std::path::Path,
    dir: &std::path::Path,
) -> Result<f64> {
    let t0 = Instant::now();
    let runs: Vec<_> = (0..n)
        .map(|i| {
            let payload = Payload::File {
                src: src.to_path_buf(),
                dst: dir.join(format!("copy-{i}.bin")),
            };
            tokio::spawn(raw_quinn_with(payload, Suites::Libp2p))
        })
        .collect();
    for r in runs {
        r.await??;
    }
    Ok(t0.elapsed().as_secs_f64())
}
