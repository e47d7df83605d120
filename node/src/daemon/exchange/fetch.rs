//! The consumer's side: negotiate with a provider (or with each match of a directory query
//! in turn), fetch the manifest and every file into `OUT.part`, resume after a drop, verify,
//! move into place, sign the receipt.

use std::{path::PathBuf, time::Duration, time::Instant};

use futures::{AsyncReadExt, AsyncWriteExt};
use gaiamesh_directory::{catalogue::QueryOptions, query};
use gaiamesh_exchange::{
    asset::AssetFile,
    audit::{Event, Role},
    compute::UsageRecord,
    contract::{Agreement, Receipt, ReceiptBody},
    negotiation::{ConsumerNegotiation, Message, NegotiationError, Step},
    transfer::{
        Destination, DownloadError, Incoming, MAX_MANIFEST_BYTES, MAX_REPLY_BYTES, Reply,
        TransferRequest, check_manifest,
    },
};
use gaiamesh_protocol::identity::PublicKey;
use libp2p::PeerId;
use serde::Deserialize;
use tracing::{info, warn};

use super::{
    Exchange, ExchangeError, JobView, NEGOTIATE, TRANSFER,
    serve::{AHEAD, PIECE, recv, send},
};
use crate::daemon::{
    CommandError,
    codec::{read_bytes, write_bytes},
    pipe,
};

/// Most providers a `--query` fetch tries.
const MAX_CANDIDATES: usize = 16;
/// How long opening a stream (dialling if needed) may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the provider may stay silent during a transfer.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// `POST /api/v1/exchange/fetch`.
#[derive(Clone, Debug, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FetchRequest {
    /// One provider (peer id) …
    #[serde(default)]
    pub(crate) provider: Option<String>,
    /// … or a directory query whose matching providers are tried in order.
    #[serde(default)]
    pub(crate) query: Option<String>,
    /// The asset id (with `query`, defaults to each matching data resource's id).
    #[serde(default)]
    pub(crate) asset: Option<String>,
    /// The stated purpose.
    pub(crate) purpose: String,
    /// Whether the data will be passed on.
    #[serde(default)]
    pub(crate) onward_transfer: bool,
    /// Where the asset goes (absolute).
    #[schema(value_type = String)]
    pub(crate) out: PathBuf,
    /// Attempts per provider, each resuming where the last one stopped.
    #[serde(default = "three")]
    pub(crate) attempts: u32,
    /// Replace `out` if it exists.
    #[serde(default)]
    pub(crate) overwrite: bool,
}

fn three() -> u32 {
    3
}

/// Why one provider did not deliver.
enum Failure {
    /// Try again with the same provider (the connection dropped): resume.
    Retry(ExchangeError),
    /// Give up on this provider (refused, tampered, not reachable after retries).
    Provider(ExchangeError),
    /// Give up altogether (a local problem).
    Local(ExchangeError),
}

impl Failure {
    fn local(e: impl Into<ExchangeError>) -> Self {
        Self::Local(e.into())
    }

    fn provider(e: impl Into<ExchangeError>) -> Self {
        Self::Provider(e.into())
    }

    fn retry(e: impl Into<ExchangeError>) -> Self {
        Self::Retry(e.into())
    }
}

impl Exchange {
    /// Validates `req` and starts it in the background; returns the job id.
    pub(crate) fn start_fetch(&self, req: FetchRequest) -> Result<u64, CommandError> {
        let invalid = |m: String| CommandError::Invalid(m);
        if !req.out.is_absolute() {
            return Err(invalid(format!(
                "out must be an absolute path, not {}",
                req.out.display()
            )));
        }
        if req.purpose.trim().is_empty() {
            return Err(invalid("purpose must not be empty".into()));
        }
        super::check_providers(
            req.provider.as_deref(),
            req.query.as_deref(),
            req.asset.as_deref(),
        )?;
        if req.attempts == 0 || req.attempts > 100 {
            return Err(invalid("attempts must be 1–100".into()));
        }
        if req.out.exists() && !req.overwrite {
            return Err(invalid(format!(
                "{} exists; choose another out or pass overwrite (--overwrite)",
                req.out.display()
            )));
        }
        let out = req.out.display().to_string();
        if self
            .jobs
            .lock()
            .is_ok_and(|j| j.all().iter().any(|v| v.out == out && !v.finished()))
        {
            return Err(CommandError::Conflict(format!(
                "a fetch into {out} is already running"
            )));
        }
        let view = JobView {
            state: "negotiating".into(),
            asset: req.asset.clone().unwrap_or_default(),
            out: req.out.display().to_string(),
            ..JobView::default()
        };
        let id = self.start_job(&self.jobs, view, "fetches")?;
        tokio::spawn(self.clone().run_fetch(id, req));
        Ok(id)
    }

    fn update(&self, id: u64, f: impl FnOnce(&mut JobView)) {
        self.update_job(&self.jobs, id, f);
    }

    async fn run_fetch(self, id: u64, req: FetchRequest) {
        let candidates = match self
            .candidates(
                req.provider.as_deref(),
                req.query.as_deref(),
                req.asset.as_deref(),
            )
            .await
        {
            Ok(c) if c.is_empty() => Err(ExchangeError::Query("no provider matches".to_owned())),
            r => r,
        };
        let candidates = match candidates {
            Ok(c) => c,
            Err(e) => {
                self.update(id, |j| {
                    j.state = "failed".into();
                    j.error = Some(e.to_string());
                });
                return;
            }
        };
        let mut last = None;
        for (provider, asset) in candidates {
            self.update(id, |j| {
                j.provider = Some(provider.to_string());
                j.asset.clone_from(&asset);
                j.state = "negotiating".into();
            });
            match self.fetch_from(id, provider, &asset, &req).await {
                Ok(()) => {
                    self.metrics.fetches.inc();
                    self.update(id, |j| j.state = "completed".into());
                    return;
                }
                Err(Failure::Local(e)) => {
                    last = Some(e);
                    break;
                }
                Err(Failure::Provider(e) | Failure::Retry(e)) => {
                    warn!(%provider, %asset, error = %e, "provider failed; trying the next");
                    self.update(id, |j| {
                        j.attempts.push(super::Attempt {
                            provider: provider.to_string(),
                            asset: asset.clone(),
                            error: e.to_string(),
                        });
                    });
                    last = Some(e);
                }
            }
        }
        self.metrics.failed_fetches.inc();
        self.update(id, |j| {
            j.state = "failed".into();
            j.error = last.map(|e| e.to_string());
        });
    }

    /// (provider, asset) pairs to try, in order: `provider` with `asset`, or the data
    /// resources `query` matches (`asset`, when given, instead of each service's id).
    pub(super) async fn candidates(
        &self,
        provider: Option<&str>,
        query: Option<&str>,
        asset: Option<&str>,
    ) -> Result<Vec<(PeerId, String)>, ExchangeError> {
        if let (Some(p), Some(asset)) = (provider, asset) {
            let peer = p
                .parse()
                .map_err(|e| ExchangeError::Query(format!("provider {p:?}: {e}")))?;
            return Ok(vec![(peer, asset.to_owned())]);
        }
        let q = query.unwrap_or_default();
        let expr = query::parse(q).map_err(|e| ExchangeError::Query(e.render(q)))?;
        let opts = QueryOptions {
            sort: None,
            limit: Some(200),
            offset: 0,
        };
        let reply = self
            .client
            .query(expr, opts)
            .await
            .map_err(|e| ExchangeError::Query(e.to_string()))?;
        let me = self.key.public().to_peer_id();
        let mut out: Vec<(PeerId, String)> = Vec::new();
        for m in &reply.matches {
            let Ok(peer) = m.subject.parse::<PublicKey>().map(|k| k.to_peer_id()) else {
                continue;
            };
            let service_asset = m
                .service
                .as_ref()
                .filter(|s| s.kind == gaiamesh_protocol::sd::ServiceKind::DataResource)
                .map(|s| s.id.clone());
            let Some(asset) = asset.map(str::to_owned).or(service_asset) else {
                continue;
            };
            if peer != me && !out.contains(&(peer, asset.clone())) && out.len() < MAX_CANDIDATES {
                out.push((peer, asset));
            }
        }
        Ok(out)
    }

    pub(super) async fn open(
        &self,
        peer: PeerId,
        p: libp2p::StreamProtocol,
    ) -> Result<libp2p::Stream, ExchangeError> {
        let mut control = self.control.clone();
        match tokio::time::timeout(OPEN_TIMEOUT, control.open_stream(peer, p)).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(source)) => Err(ExchangeError::Unreachable { peer, source }),
            Err(_) => Err(ExchangeError::OpenTimeout {
                peer,
                after: OPEN_TIMEOUT,
            }),
        }
    }

    /// REQUESTED → … → FINALIZED with `provider`.
    pub(super) async fn negotiate_with(
        &self,
        provider: PeerId,
        provider_key: PublicKey,
        asset: &str,
        purpose: &str,
        onward_transfer: bool,
    ) -> Result<Agreement, ExchangeError> {
        let mut s = self.open(provider, NEGOTIATE).await?;
        let mut c = ConsumerNegotiation::new(
            &self.key,
            provider_key,
            asset,
            purpose,
            onward_transfer,
            self.credential.to_vec(),
            crate::now(),
        );
        send(&mut s, &c.request()).await?;
        let outcome = loop {
            let m = match recv(&mut s).await {
                Ok(m) => m,
                Err(e) => break Err(NegotiationError::Terminated(format!("stream: {e}"))),
            };
            match c.on_message(&self.key, m, crate::now()) {
                Ok(Step::Send(m)) => send(&mut s, &m).await?,
                Ok(Step::Finalized(a)) => break Ok(a),
                Err(e) => {
                    if !matches!(e, NegotiationError::Terminated(_)) {
                        let reason = e.reason();
                        let _ = send(&mut s, &Message::Terminate { reason }).await;
                    }
                    break Err(e);
                }
            }
        };
        let _ = s.close().await;
        match outcome {
            Ok(a) => {
                let id = a.verify()?;
                self.record(Event::Agreement {
                    role: Role::Consumer,
                    id,
                    agreement: Box::new(a.clone()),
                })
                .await;
                info!(%provider, %asset, agreement = %id.short(), "agreement finalized");
                Ok(a)
            }
            Err(e) => {
                self.record(Event::Refusal {
                    role: Role::Consumer,
                    peer: provider.to_string(),
                    asset: asset.to_owned(),
                    purpose: purpose.to_owned(),
                    reason: e.reason(),
                })
                .await;
                Err(e.into())
            }
        }
    }

    async fn fetch_from(
        &self,
        id: u64,
        provider: PeerId,
        asset: &str,
        req: &FetchRequest,
    ) -> Result<(), Failure> {
        let dest = Destination::new(&req.out);
        let provider_key = PublicKey::from_peer_id(&provider).map_err(Failure::provider)?;
        let agreement = match dest.pending_agreement(&provider_key, asset, crate::now()) {
            Some(a) => {
                info!(%provider, %asset, "resuming under the kept agreement");
                a
            }
            None => {
                let t = Instant::now();
                let a = self
                    .negotiate_with(
                        provider,
                        provider_key,
                        asset,
                        &req.purpose,
                        req.onward_transfer,
                    )
                    .await
                    .map_err(Failure::Provider)?;
                let ms = t.elapsed().as_secs_f64() * 1e3;
                self.metrics.negotiation_seconds.observe(ms / 1e3);
                self.update(id, |j| j.negotiation_ms = Some(ms));
                // Staged bytes of another asset version would never verify: start over.
                if let Ok(bytes) = std::fs::read(&dest.agreement)
                    && let Ok(old) = Agreement::decode(&bytes)
                    && old.body.manifest_blake3 != a.body.manifest_blake3
                {
                    remove_staging(&dest);
                }
                a
            }
        };
        dest.keep_agreement(&agreement).map_err(Failure::local)?;
        let agreement_id = agreement.verify().map_err(Failure::provider)?;
        self.update(id, |j| {
            j.agreement = Some(agreement_id.to_string());
            j.total = agreement.body.size;
            j.state = "transferring".into();
        });
        let files = self.manifest(provider, &agreement, req.attempts).await?;
        let t = Instant::now();
        let mut done = 0u64;
        for (index, file) in files.iter().enumerate() {
            let index = u32::try_from(index).map_err(Failure::local)?;
            self.fetch_file(
                id,
                provider,
                &agreement,
                index,
                file,
                &dest,
                done,
                req.attempts,
            )
            .await?;
            done += file.size;
        }
        let single = files.len() == 1 && files[0].path.is_empty();
        if !single {
            std::fs::create_dir_all(&dest.staging).map_err(Failure::local)?;
        }
        dest.complete().map_err(Failure::local)?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        self.update(id, |j| {
            j.transfer_ms = Some(ms);
            j.bytes = agreement.body.size;
        });
        self.record(Event::Transfer {
            role: Role::Consumer,
            agreement: agreement_id,
            file: agreement.body.files,
            offset: 0,
            bytes: agreement.body.size,
            outcome: "completed".into(),
        })
        .await;
        let receipt = Receipt::sign(
            ReceiptBody {
                agreement: agreement_id,
                consumer: self.key.public(),
                manifest_blake3: agreement.body.manifest_blake3.clone(),
                bytes: agreement.body.size,
                completed_at: crate::now(),
            },
            &self.key,
        )
        .map_err(Failure::local)?;
        self.record(Event::Receipt {
            role: Role::Consumer,
            receipt: Box::new(receipt.clone()),
        })
        .await;
        // The data is here and verified; a receipt that does not reach the provider is logged.
        match self.send_receipt(provider, &agreement, receipt).await {
            Ok(Some(record)) => self.update(id, |j| {
                j.usage = Some(record.body.usage);
                j.charge = record.body.charge;
            }),
            Ok(None) => {}
            Err(e) => warn!(%provider, error = %e, "the receipt did not reach the provider"),
        }
        info!(%provider, %asset, bytes = agreement.body.size, ms, "exchange completed");
        Ok(())
    }

    /// Sends the receipt; the provider answers with the transfer's usage record, which is
    /// verified, countersigned and logged here (none from a provider that meters nothing).
    async fn send_receipt(
        &self,
        provider: PeerId,
        agreement: &Agreement,
        receipt: Receipt,
    ) -> Result<Option<UsageRecord>, ExchangeError> {
        let r = TransferRequest::Receipt {
            receipt: Box::new(receipt),
        };
        match self.ask(provider, &r.encode()?).await? {
            (_, Reply::Ok { len: 0 }) => Ok(None),
            (mut s, Reply::Ok { .. }) => {
                let bytes = read_bytes(&mut s, super::compute::MAX_RECORD_BYTES).await?;
                let record: UsageRecord = gaiamesh_protocol::codec::decode(
                    "usage record",
                    &bytes,
                    super::compute::MAX_RECORD_BYTES,
                )?;
                self.accept_transfer_record(provider, agreement, record)
                    .await
                    .map(Some)
            }
            (_, Reply::Refused { reason }) => Err(ExchangeError::Refused(reason)),
        }
    }

    /// Opens a transfer stream to `provider`, sends the encoded request and reads the reply
    /// header; the stream stays open for the bytes that follow. Every error here (not
    /// reachable, dropped, silent) is one a retry may get past.
    pub(super) async fn ask(
        &self,
        provider: PeerId,
        request: &[u8],
    ) -> Result<(libp2p::Stream, Reply), ExchangeError> {
        let mut s = self.open(provider, TRANSFER).await?;
        write_bytes(&mut s, request).await?;
        let reply = read_reply(&mut s).await?;
        Ok((s, reply))
    }

    async fn manifest(
        &self,
        provider: PeerId,
        agreement: &Agreement,
        attempts: u32,
    ) -> Result<Vec<AssetFile>, Failure> {
        let mut last = ExchangeError::NoAttempt;
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            match self.manifest_once(provider, agreement).await {
                Ok(files) => return Ok(files),
                Err(Failure::Retry(e)) => last = e,
                Err(f) => return Err(f),
            }
        }
        Err(Failure::Provider(last))
    }

    async fn manifest_once(
        &self,
        provider: PeerId,
        agreement: &Agreement,
    ) -> Result<Vec<AssetFile>, Failure> {
        let r = TransferRequest::Manifest {
            agreement: Box::new(agreement.clone()),
        };
        let bytes = r.encode().map_err(Failure::local)?;
        let (mut s, reply) = self.ask(provider, &bytes).await.map_err(Failure::Retry)?;
        let len = match reply {
            Reply::Ok { len } => len,
            Reply::Refused { reason } => {
                return Err(Failure::Provider(ExchangeError::Refused(reason)));
            }
        };
        if len > MAX_MANIFEST_BYTES as u64 {
            return Err(Failure::Provider(ExchangeError::ManifestSize(len)));
        }
        let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
        s.read_exact(&mut buf).await.map_err(Failure::retry)?;
        let files: Vec<AssetFile> =
            gaiamesh_protocol::codec::decode("manifest", &buf, MAX_MANIFEST_BYTES)
                .map_err(Failure::provider)?;
        check_manifest(&files, agreement).map_err(Failure::provider)?;
        Ok(files)
    }

    #[allow(clippy::too_many_arguments)]
    async fn fetch_file(
        &self,
        id: u64,
        provider: PeerId,
        agreement: &Agreement,
        index: u32,
        file: &AssetFile,
        dest: &Destination,
        done_before: u64,
        attempts: u32,
    ) -> Result<(), Failure> {
        let staged = dest.staged(file).map_err(Failure::provider)?;
        let mut last = ExchangeError::NoAttempt;
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            let (path, f) = (staged.clone(), file.clone());
            let inc = tokio::task::spawn_blocking(move || Incoming::open(&path, &f))
                .await
                .map_err(Failure::local)?
                .map_err(Failure::local)?;
            let offset = inc.offset();
            if attempt == 0 && offset > 0 {
                self.update(id, |j| j.resumed_from += offset);
            }
            self.update(id, |j| j.bytes = done_before + offset);
            match self
                .receive(id, provider, agreement, index, inc, done_before)
                .await
            {
                Ok(()) => return Ok(()),
                Err(Failure::Retry(e)) => {
                    info!(%provider, file = index, error = %e, "transfer interrupted; resuming");
                    last = e;
                }
                Err(f) => return Err(f),
            }
        }
        Err(Failure::Provider(ExchangeError::GaveUp {
            attempts,
            last: Box::new(last),
        }))
    }

    /// One stream: asks for the file from the staged length on, writes what arrives on a
    /// blocking thread (hashing as it goes), verifies at the end.
    async fn receive(
        &self,
        id: u64,
        provider: PeerId,
        agreement: &Agreement,
        index: u32,
        inc: Incoming,
        done_before: u64,
    ) -> Result<(), Failure> {
        let offset = inc.offset();
        if inc.is_full() {
            return finish(inc).await;
        }
        let retry = |e: std::io::Error| Failure::Retry(e.into());
        let r = TransferRequest::File {
            agreement: Box::new(agreement.clone()),
            index,
            offset,
        };
        let bytes = r.encode().map_err(Failure::local)?;
        let (mut s, reply) = self.ask(provider, &bytes).await.map_err(Failure::Retry)?;
        let len = match reply {
            Reply::Ok { len } => len,
            Reply::Refused { reason } => {
                return Err(Failure::Provider(ExchangeError::Refused(reason)));
            }
        };
        let (mut sink, mut reader) = pipe::from_async(AHEAD, PIECE);
        let writer = tokio::task::spawn_blocking(move || {
            let mut inc = inc;
            reader.for_each_piece(|piece| inc.write(piece))?;
            Ok::<_, DownloadError>(inc)
        });
        let mut got = 0u64;
        let read = async {
            while got < len {
                let want = usize::try_from(len - got).unwrap_or(usize::MAX);
                let n = sink.pump_piece(&mut s, want, READ_TIMEOUT).await?;
                if n == 0 {
                    // The end of the stream, or the writer failed (its error is reported
                    // below, ahead of this one).
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("stream closed after {got} of {len} bytes"),
                    ));
                }
                got += n as u64;
                self.metrics.bytes_received.inc_by(n as u64);
                self.update(id, |j| j.bytes = done_before + offset + got);
            }
            Ok(())
        }
        .await;
        drop(sink);
        let inc = writer.await.map_err(Failure::local)?;
        let inc = match inc {
            Ok(i) => i,
            Err(e @ DownloadError::Oversize(_)) => return Err(Failure::provider(e)),
            Err(e) => return Err(Failure::local(e)),
        };
        let id = agreement.body.id().map_err(Failure::local)?;
        let outcome = match &read {
            Ok(()) => "completed".to_owned(),
            Err(e) => format!("interrupted: {e}"),
        };
        self.record(Event::Transfer {
            role: Role::Consumer,
            agreement: id,
            file: index,
            offset,
            bytes: got,
            outcome,
        })
        .await;
        read.map_err(retry)?;
        finish(inc).await
    }
}

/// Verifies a fully staged file; tampered bytes are final for this provider.
async fn finish(inc: Incoming) -> Result<(), Failure> {
    match tokio::task::spawn_blocking(move || inc.finish()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e @ DownloadError::Tampered { .. })) => Err(Failure::provider(e)),
        Ok(Err(e)) => Err(Failure::local(e)),
        Err(e) => Err(Failure::local(e)),
    }
}

fn remove_staging(dest: &Destination) {
    let _ = if dest.staging.is_dir() {
        std::fs::remove_dir_all(&dest.staging)
    } else {
        std::fs::remove_file(&dest.staging)
    };
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(500u64 << attempt.min(5))
}

async fn read_reply(s: &mut libp2p::Stream) -> std::io::Result<Reply> {
    let bytes = tokio::time::timeout(READ_TIMEOUT, read_bytes(s, MAX_REPLY_BYTES))
        .await
        .map_err(|_| std::io::Error::other("no answer within 30 s"))??;
    Reply::decode(&bytes).map_err(std::io::Error::other)
}

/// How a fault-injection probe spoils the consumer's latest agreement with a provider.
#[derive(Clone, Copy, Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Spoil {
    /// Both signatures kept, the purpose changed.
    Altered,
    /// The same body, the provider's signature made with another key.
    Forged,
}

impl Exchange {
    /// Fault injection: presents this node's latest agreement with `provider`, spoiled as
    /// `how`, in a manifest request; returns the provider's answer (`ok` or `refused: …`).
    pub(crate) async fn probe_agreement(
        &self,
        provider: PeerId,
        how: Spoil,
    ) -> Result<String, ExchangeError> {
        let audit = self.audit.clone();
        let entries = tokio::task::spawn_blocking(move || audit.list(0, usize::MAX)).await??;
        let mut agreement = entries
            .into_iter()
            .rev()
            .find_map(|e| match e.event {
                Event::Agreement {
                    role: Role::Consumer,
                    agreement,
                    ..
                } if agreement.body.provider.to_peer_id() == provider => Some(*agreement),
                _ => None,
            })
            .ok_or(ExchangeError::NothingToSpoil)?;
        match how {
            Spoil::Altered => {
                agreement.body.purpose = format!("{} (altered)", agreement.body.purpose)
            }
            Spoil::Forged => {
                let forger = gaiamesh_protocol::identity::Keypair::generate();
                agreement.provider_signature = agreement.body.sign(&forger)?;
            }
        }
        let r = TransferRequest::Manifest {
            agreement: Box::new(agreement),
        };
        Ok(match self.ask(provider, &r.encode()?).await?.1 {
            Reply::Ok { .. } => "ok".to_owned(),
            Reply::Refused { reason } => format!("refused: {reason}"),
        })
    }
}
