//! The provider's side: negotiations and transfers for admitted members.

use std::{path::PathBuf, sync::Arc, time::Duration};

use futures::{AsyncWriteExt, StreamExt};
use gaiamesh_exchange::{
    asset::Asset,
    audit::{Event, Role},
    contract::{Agreement, AgreementId},
    negotiation::{Message, NegotiationError, ProviderInputs, ProviderNegotiation},
    transfer::{self, MAX_REQUEST_BYTES, Reply, TransferRequest},
};
use gaiamesh_protocol::identity::PublicKey;
use libp2p::PeerId;
use tracing::{debug, info, warn};

use super::{Exchange, ExchangeError, NEGOTIATE, TRANSFER};
use crate::daemon::{
    codec::{read_bytes, write_bytes},
    pipe,
};

/// Most negotiations and transfers served at once; more streams are dropped.
const MAX_SERVING: usize = 64;
/// How long a peer may take to send its next negotiation message.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes per read from disk and per write to the stream.
pub(super) const PIECE: usize = 1 << 20;

fn other(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl Exchange {
    /// Accepts both protocols until the node stops.
    pub(crate) async fn serve(self) {
        self.recover_interrupted_jobs().await;
        let mut control = self.control.clone();
        let (mut negotiate, mut transfer) =
            match (control.accept(NEGOTIATE), control.accept(TRANSFER)) {
                (Ok(n), Ok(t)) => (n, t),
                _ => {
                    warn!("exchange protocols already registered");
                    return;
                }
            };
        let serving = Arc::new(tokio::sync::Semaphore::new(MAX_SERVING));
        loop {
            let (peer, stream, is_transfer) = tokio::select! {
                Some((p, s)) = negotiate.next() => (p, s, false),
                Some((p, s)) = transfer.next() => (p, s, true),
                else => return,
            };
            let Ok(permit) = serving.clone().try_acquire_owned() else {
                debug!(%peer, "too many exchange streams; dropping one");
                continue;
            };
            let me = self.clone();
            tokio::spawn(async move {
                let r = if is_transfer {
                    me.transfer(peer, stream).await
                } else {
                    me.negotiate(peer, stream).await
                };
                if let Err(e) = r {
                    debug!(%peer, transfer = is_transfer, error = %e, "exchange stream failed");
                }
                drop(permit);
            });
        }
    }

    fn is_admitted(&self, peer: &PeerId) -> bool {
        self.admitted.read(|a| a.contains(peer))
    }

    /// The registered asset `id` (the registry is re-read when `assets.json` changed).
    async fn asset(&self, id: String) -> Option<Asset> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            me.registry()
                .map_err(|e| warn!(error = %e, "cannot read the asset registry"))
                .ok()
                .and_then(|r| r.get(&id).cloned())
        })
        .await
        .ok()
        .flatten()
    }

    /// The agreement `id` as this node recorded it, if it did.
    async fn recorded(&self, id: AgreementId) -> std::io::Result<Option<Agreement>> {
        let audit = self.audit.clone();
        tokio::task::spawn_blocking(move || audit.agreement(&id))
            .await
            .map_err(other)?
            .map_err(other)
    }

    async fn negotiate(&self, peer: PeerId, mut s: libp2p::Stream) -> std::io::Result<()> {
        let terminate = |reason: String| Message::Terminate { reason };
        if !self.is_admitted(&peer) {
            let m = terminate("not an admitted member of this federation".into());
            return send(&mut s, &m).await;
        }
        let msg = recv(&mut s).await?;
        let Message::Request(req) = msg else {
            let m = terminate(format!("expected Request, got {}", msg.name()));
            return send(&mut s, &m).await;
        };
        let peer_key = PublicKey::from_peer_id(&peer).map_err(other)?;
        let asset = self.asset(req.asset.clone()).await;
        let audit = self.audit.clone();
        let (a, c) = (req.asset.clone(), peer_key);
        let transfers_so_far = tokio::task::spawn_blocking(move || audit.agreements_with(&a, &c))
            .await
            .map_err(other)?
            .map_err(other)?;
        let mut p = ProviderNegotiation::new();
        let refuse = |e: &NegotiationError| Event::Refusal {
            role: Role::Provider,
            peer: peer.to_string(),
            asset: req.asset.clone(),
            purpose: req.purpose.clone(),
            reason: e.reason(),
        };
        let offer = p.on_request(
            &req,
            &ProviderInputs {
                key: &self.key,
                trust: &self.trust,
                peer: peer_key,
                asset: asset.as_ref(),
                transfers_so_far,
                now: crate::now(),
            },
        );
        let offer = match offer {
            Ok(o) => o,
            Err(e) => {
                info!(%peer, asset = %req.asset, reason = %e, "negotiation refused");
                self.metrics.refused.inc();
                self.record(refuse(&e)).await;
                return send(&mut s, &terminate(e.reason())).await;
            }
        };
        send(&mut s, &offer).await?;
        let answer = recv(&mut s).await?;
        let result = match answer {
            Message::Agree { consumer_signature } => p.on_agree(consumer_signature),
            Message::Terminate { reason } => Err(p.on_terminate(&reason)),
            m => Err(NegotiationError::Unexpected {
                state: gaiamesh_exchange::negotiation::State::Offered,
                got: m.name(),
            }),
        };
        match result {
            Ok(agreement) => {
                let id = agreement.verify().map_err(other)?;
                // VERIFIED: recorded before FINALIZED goes out, so a transfer can follow at once.
                self.record(Event::Agreement {
                    role: Role::Provider,
                    id,
                    agreement: Box::new(agreement),
                })
                .await;
                p.finalized();
                self.metrics.agreements.inc();
                info!(%peer, asset = %req.asset, agreement = %id.short(), "agreement finalized");
                send(&mut s, &Message::Finalize).await?;
                s.close().await
            }
            Err(e) => {
                info!(%peer, asset = %req.asset, reason = %e, "negotiation ended");
                self.metrics.refused.inc();
                self.record(refuse(&e)).await;
                if !matches!(e, NegotiationError::Terminated(_)) {
                    send(&mut s, &terminate(e.reason())).await?;
                }
                Ok(())
            }
        }
    }

    /// Checks a transfer request's agreement (and that its asset is unchanged and may be
    /// transferred).
    async fn authorized(
        &self,
        peer: PeerId,
        agreement: &Agreement,
    ) -> Result<(Asset, AgreementId), ExchangeError> {
        let (asset, id) = self.authorized_any(peer, agreement).await?;
        if asset.compute_only() {
            return Err(ExchangeError::ComputeOnly(asset.id));
        }
        Ok((asset, id))
    }

    /// Checks an agreement for a transfer or a compute job (and that its asset is unchanged).
    pub(super) async fn authorized_any(
        &self,
        peer: PeerId,
        agreement: &Agreement,
    ) -> Result<(Asset, AgreementId), ExchangeError> {
        if !self.is_admitted(&peer) {
            return Err(ExchangeError::NotAdmitted);
        }
        let peer_key = PublicKey::from_peer_id(&peer)?;
        let id = agreement.body.id()?;
        let recorded = self.recorded(id).await.map_err(ExchangeError::Recorded)?;
        let id = transfer::authorize(
            agreement,
            &self.key.public(),
            &peer_key,
            recorded.as_ref(),
            crate::now(),
        )?;
        let asset = self
            .asset(agreement.body.asset.clone())
            .await
            .ok_or_else(|| ExchangeError::NoLongerOffered(agreement.body.asset.clone()))?;
        if asset.manifest_blake3 != agreement.body.manifest_blake3 {
            return Err(ExchangeError::AssetChanged(asset.id));
        }
        Ok((asset, id))
    }

    async fn transfer(&self, peer: PeerId, mut s: libp2p::Stream) -> std::io::Result<()> {
        let bytes = tokio::time::timeout(STEP_TIMEOUT, read_bytes(&mut s, MAX_REQUEST_BYTES))
            .await
            .map_err(other)??;
        let req = TransferRequest::decode(&bytes).map_err(other)?;
        match req {
            TransferRequest::Manifest { agreement } => {
                match self.authorized(peer, &agreement).await {
                    Ok((asset, _)) => {
                        let bytes = postcard::to_stdvec(&asset.files).map_err(other)?;
                        reply(
                            &mut s,
                            &Reply::Ok {
                                len: bytes.len() as u64,
                            },
                        )
                        .await?;
                        s.write_all(&bytes).await?;
                        s.close().await
                    }
                    Err(e) => {
                        self.refuse_transfer(peer, &agreement, s, e.to_string())
                            .await
                    }
                }
            }
            TransferRequest::File {
                agreement,
                index,
                offset,
            } => match self.authorized(peer, &agreement).await {
                Ok((asset, id)) => {
                    let Some(file) = asset.files.get(index as usize).cloned() else {
                        let reason = format!("no file {index} in the manifest");
                        return self.refuse_transfer(peer, &agreement, s, reason).await;
                    };
                    if offset > file.size {
                        let reason = format!("offset {offset} is past the end ({})", file.size);
                        return self.refuse_transfer(peer, &agreement, s, reason).await;
                    }
                    let path = if file.path.is_empty() {
                        asset.path.clone()
                    } else {
                        asset.path.join(&file.path)
                    };
                    reply(
                        &mut s,
                        &Reply::Ok {
                            len: file.size - offset,
                        },
                    )
                    .await?;
                    self.meter.begin(id, crate::now());
                    let r = self.send_file(peer, &mut s, path, offset, file.size).await;
                    let (sent, outcome) = match &r {
                        Ok(n) => (*n, "completed".to_owned()),
                        Err((n, e)) => (*n, format!("interrupted: {e}")),
                    };
                    self.meter.add(id, sent);
                    self.record(Event::Transfer {
                        role: Role::Provider,
                        agreement: id,
                        file: index,
                        offset,
                        bytes: sent,
                        outcome,
                    })
                    .await;
                    r.map(|_| ()).map_err(|(_, e)| e)?;
                    s.close().await
                }
                Err(e) => {
                    self.refuse_transfer(peer, &agreement, s, e.to_string())
                        .await
                }
            },
            TransferRequest::Compute(job) => self.serve_compute(peer, s, *job).await,
            TransferRequest::Usage { record } => self.accept_usage(peer, s, *record).await,
            TransferRequest::Receipt { receipt } => {
                let id = receipt.body.agreement;
                let recorded = self.recorded(id).await?;
                let checked = match recorded {
                    Some(a) if a.body.consumer.to_peer_id() == peer => receipt
                        .verify(&a.body, id)
                        .map(|()| a)
                        .map_err(|e| e.to_string()),
                    Some(_) => Err("the receipt is for another consumer's agreement".into()),
                    None => Err(format!("no agreement {} here", id.short())),
                };
                match checked {
                    Ok(agreement) => {
                        info!(%peer, agreement = %id.short(), bytes = receipt.body.bytes, "receipt");
                        self.record(Event::Receipt {
                            role: Role::Provider,
                            receipt,
                        })
                        .await;
                        // The receipt's answer: the transfer's usage record, signed here.
                        let record = self
                            .transfer_record(&agreement)
                            .await
                            .map_err(std::io::Error::other)?;
                        let bytes = gaiamesh_protocol::codec::encode(
                            "usage record",
                            &record,
                            super::compute::MAX_RECORD_BYTES,
                        )
                        .map_err(std::io::Error::other)?;
                        self.record(Event::Usage {
                            role: Role::Provider,
                            record: Box::new(record),
                        })
                        .await;
                        reply(
                            &mut s,
                            &Reply::Ok {
                                len: bytes.len() as u64,
                            },
                        )
                        .await?;
                        write_bytes(&mut s, &bytes).await?;
                    }
                    Err(reason) => {
                        warn!(%peer, %reason, "receipt refused");
                        reply(&mut s, &Reply::Refused { reason }).await?;
                    }
                }
                s.close().await
            }
        }
    }

    async fn refuse_transfer(
        &self,
        peer: PeerId,
        agreement: &Agreement,
        mut s: libp2p::Stream,
        reason: String,
    ) -> std::io::Result<()> {
        info!(%peer, asset = %agreement.body.asset, %reason, "transfer refused");
        self.metrics.refused.inc();
        self.record(Event::Refusal {
            role: Role::Provider,
            peer: peer.to_string(),
            asset: agreement.body.asset.clone(),
            purpose: agreement.body.purpose.clone(),
            reason: reason.clone(),
        })
        .await;
        reply(&mut s, &Reply::Refused { reason }).await?;
        s.close().await
    }

    /// Streams `path` from `offset` to `size` (read on a blocking thread, a few pieces
    /// ahead), under the upload limits. Returns the bytes sent, also on failure.
    async fn send_file(
        &self,
        peer: PeerId,
        s: &mut libp2p::Stream,
        path: PathBuf,
        offset: u64,
        size: u64,
    ) -> Result<u64, (u64, std::io::Error)> {
        let (mut w, mut pieces) = pipe::to_async(AHEAD, PIECE);
        let reader = tokio::task::spawn_blocking(move || {
            use std::io::{Seek, SeekFrom};
            let mut f = std::fs::File::open(&path)?;
            f.seek(SeekFrom::Start(offset))?;
            // A file shorter than registered ends the pieces early: reported below.
            w.fill_from(&mut f, size - offset)?;
            w.finish()
        });
        let mut sent = 0u64;
        while let Some(piece) = pieces.recv().await {
            self.limits.acquire(peer, piece.len() as u64).await;
            s.write_all(&piece).await.map_err(|e| (sent, e))?;
            sent += piece.len() as u64;
            self.metrics.bytes_sent.inc_by(piece.len() as u64);
            pieces.give_back(piece);
        }
        match reader.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err((sent, e)),
            Err(e) => return Err((sent, other(e))),
        }
        if sent != size - offset {
            return Err((
                sent,
                other(format!(
                    "the file changed on disk: {sent} of {} bytes",
                    size - offset
                )),
            ));
        }
        Ok(sent)
    }
}

/// Pieces a transfer keeps between the disk and the stream, both ways.
pub(super) const AHEAD: usize = 4;

pub(super) async fn send(s: &mut libp2p::Stream, m: &Message) -> std::io::Result<()> {
    write_bytes(s, &m.encode().map_err(other)?).await
}

pub(super) async fn recv(s: &mut libp2p::Stream) -> std::io::Result<Message> {
    let bytes = tokio::time::timeout(
        STEP_TIMEOUT,
        read_bytes(s, gaiamesh_exchange::contract::MAX_MESSAGE_BYTES),
    )
    .await
    .map_err(|_| other("no answer within 30 s"))??;
    Message::decode(&bytes).map_err(other)
}

pub(super) async fn reply(s: &mut libp2p::Stream, r: &Reply) -> std::io::Result<()> {
    write_bytes(s, &r.encode().map_err(other)?).await
}
