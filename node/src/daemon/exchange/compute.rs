//! Compute-to-data on the node. The consumer negotiates an agreement for an asset offered
//! for computation, then asks the provider to run a released repository algorithm on it
//! ([`Exchange::start_compute`]); the provider checks the agreement, the policy's algorithm
//! list and the algorithm's hash against the threshold-signed release, runs it in the
//! sandbox (`gaiamesh-compute`) next to the data, and sends back only the result with a
//! usage record it signed; the consumer verifies record and result, countersigns, and both
//! append the record to their audit logs.

use std::{
    collections::VecDeque,
    path::PathBuf,
    sync::{Arc, Mutex, PoisonError, atomic::AtomicBool},
    time::Instant,
};

use gaiamesh_compute::{Algorithm, Limits, Manifest, Sandbox};
use gaiamesh_exchange::{
    audit::{Event, Role},
    compute::{AlgorithmRef, JobRequest, UsageBody, UsageRecord},
    metering::{Charge, Usage, charge},
    transfer::{Reply, TransferRequest},
};
use gaiamesh_protocol::{identity::PublicKey, sd::SdDocument};
use libp2p::PeerId;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::{
    Exchange, ExchangeError, Jobs, journal,
    review::{self, Decision, ReviewView, Reviews},
    serve::reply,
};
use crate::daemon::{
    CommandError, LocalState,
    codec::{read_bytes, write_bytes},
};

/// The largest algorithm component loaded.
const MAX_ALGORITHM_BYTES: u64 = 64 << 20;
/// Compiled algorithms kept.
const COMPILED_KEPT: usize = 16;
/// How long a consumer waits for a job's answer: longer than any provider's wall-clock limit
/// (`[compute] wall`, at most 24 h) and review wait (`[compute] review_wait`, at most 24 h)
/// together.
const ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(49 * 3600);
/// What a review ended with.
enum Reviewed {
    /// The result goes to the consumer.
    Approved(Vec<u8>),
    /// It stays here, for this reason.
    Withheld(String),
}

/// The outcome of a job the provider's restart cut short.
pub(crate) const INTERRUPTED: &str =
    "interrupted: the provider stopped before the job ended; it was not run again";
/// The largest encoded usage record read.
pub(super) const MAX_RECORD_BYTES: usize = 64 * 1024;

/// The node's compute side: the sandbox, its slots, the compiled algorithms, and the jobs
/// this node asked others to run.
pub(crate) struct ComputeRuntime {
    /// Created by the first job: an idle node holds no engine.
    sandbox: Mutex<Option<Arc<Sandbox>>>,
    config: gaiamesh_config::ComputeConfig,
    slots: tokio::sync::Semaphore,
    queued: std::sync::atomic::AtomicUsize,
    /// Jobs started since the node started (names journal entries).
    started: std::sync::atomic::AtomicU64,
    compiled: Mutex<VecDeque<(String, Algorithm)>>,
    pub(crate) jobs: Mutex<Jobs<ComputeJobView>>,
    /// Results held for the operator's review (as a provider).
    pub(crate) reviews: Reviews,
    /// The tasks of this node's running jobs, to cancel them.
    running: Mutex<std::collections::HashMap<u64, tokio::task::AbortHandle>>,
}

impl std::fmt::Debug for ComputeRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComputeRuntime").finish_non_exhaustive()
    }
}

impl ComputeRuntime {
    /// `[compute]` of the node's configuration.
    pub(crate) fn new(config: gaiamesh_config::ComputeConfig) -> Self {
        Self {
            sandbox: Mutex::new(None),
            slots: tokio::sync::Semaphore::new(config.concurrent_jobs as usize),
            config,
            queued: std::sync::atomic::AtomicUsize::new(0),
            started: std::sync::atomic::AtomicU64::new(0),
            compiled: Mutex::new(VecDeque::new()),
            jobs: Mutex::new(Jobs::default()),
            reviews: Reviews::default(),
            running: Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// The sandbox, created on first use (blocking: call it on a worker thread).
    fn sandbox(&self) -> Result<Arc<Sandbox>, gaiamesh_compute::ComputeError> {
        let mut s = self.sandbox.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = s.as_ref() {
            return Ok(s.clone());
        }
        let created = Arc::new(Sandbox::new()?);
        *s = Some(created.clone());
        Ok(created)
    }

    /// A job's limits: the node's, with the policy's result limit.
    fn limits(&self, output_bytes: u64) -> Limits {
        Limits {
            memory_bytes: self.config.memory_mib.saturating_mul(1024 * 1024),
            fuel: self.config.fuel,
            wall: self.config.wall,
            output_bytes,
            ..Limits::default()
        }
    }

    /// The compiled algorithm with `hash`, compiling `bytes` on a miss.
    fn algorithm(
        &self,
        hash: &str,
        bytes: &[u8],
    ) -> Result<Algorithm, gaiamesh_compute::ComputeError> {
        let mut kept = self.compiled.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, a)) = kept.iter().find(|(h, _)| h == hash) {
            return Ok(a.clone());
        }
        drop(kept);
        let a = self.sandbox()?.load(bytes)?;
        kept = self.compiled.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.len() >= COMPILED_KEPT {
            kept.pop_front();
        }
        kept.push_back((hash.to_owned(), a.clone()));
        Ok(a)
    }
}

/// `POST /api/v1/compute`.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ComputeRequest {
    /// One provider (peer id) …
    #[serde(default)]
    pub(crate) provider: Option<String>,
    /// … or a directory query whose matching providers are tried in order until one runs
    /// the job (failover).
    #[serde(default)]
    pub(crate) query: Option<String>,
    /// The asset offered for computation (with `query`, defaults to each matching data
    /// resource's id).
    #[serde(default)]
    pub(crate) asset: Option<String>,
    /// The algorithm: a released repository target `NAME@VERSION`, or `NAME` for its newest
    /// released version.
    pub(crate) algorithm: String,
    /// The stated purpose.
    pub(crate) purpose: String,
    /// The algorithm's arguments.
    #[serde(default)]
    pub(crate) args: Vec<String>,
    /// Where to write the result on this node (absolute); it is also in the job's view.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub(crate) out: Option<PathBuf>,
}

/// The state of one compute job this node asked for.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub(crate) struct ComputeJobView {
    pub(crate) id: u64,
    /// `negotiating`, `running`, `completed` or `failed`.
    pub(crate) state: String,
    /// The provider being tried (or that ran it).
    pub(crate) provider: String,
    pub(crate) asset: String,
    /// Providers tried before, with why they failed.
    pub(crate) attempts: Vec<super::Attempt>,
    /// `NAME@VERSION`.
    pub(crate) algorithm: String,
    pub(crate) algorithm_blake3: String,
    pub(crate) args: Vec<String>,
    pub(crate) agreement: Option<String>,
    /// The result as text (lossy UTF-8; the bytes are in `out` when given).
    pub(crate) result: Option<String>,
    pub(crate) result_blake3: Option<String>,
    pub(crate) out: Option<String>,
    /// What the job used, as the provider signed it.
    pub(crate) usage: Option<Usage>,
    /// Its price from the provider's price model.
    pub(crate) charge: Option<Charge>,
    /// How it ended on the provider: `completed` or why it stopped.
    pub(crate) outcome: Option<String>,
    pub(crate) error: Option<String>,
}

/// A released algorithm: its target and hash from the trusted release.
#[derive(Clone, Debug)]
struct Released {
    target: String,
    blake3: String,
    /// The platform the release declares (`wasm32-wasip2` for algorithms; none: any).
    platform: Option<String>,
    complete_here: bool,
}

/// The platform an algorithm target declares (`repo publish --platform wasm32-wasip2`).
const ALGORITHM_PLATFORM: &str = gaiamesh_compute::manifest::PLATFORM;

impl Exchange {
    /// The release's algorithm `name` (`NAME@VERSION`, or `NAME` for its newest version).
    async fn released(&self, name: &str) -> Result<Released, ExchangeError> {
        let status = self
            .client
            .repo_status()
            .await
            .map_err(|e| ExchangeError::Compute(format!("the repository: {e}")))?;
        if !status.valid {
            return Err(ExchangeError::Compute(format!(
                "no trusted release: {}",
                status.error.unwrap_or_default()
            )));
        }
        let mut matches: Vec<_> = status
            .targets
            .into_iter()
            .filter(|t| {
                t.target == name || t.target.split_once('@').is_some_and(|(n, _)| n == name)
            })
            .collect();
        // Newest version last (targets are NAME@VERSION; compare versions numerically).
        matches.sort_by_key(|t| version_key(&t.target));
        let t = matches.pop().ok_or_else(|| {
            ExchangeError::Compute(format!("{name} is not a released repository target"))
        })?;
        Ok(Released {
            complete_here: t.local == LocalState::Complete,
            platform: t.platform,
            target: t.target,
            blake3: t.blake3,
        })
    }

    /// Validates `req` and starts the job in the background; returns its id.
    pub(crate) fn start_compute(&self, req: ComputeRequest) -> Result<u64, CommandError> {
        let invalid = |m: String| CommandError::Invalid(m);
        super::check_providers(
            req.provider.as_deref(),
            req.query.as_deref(),
            req.asset.as_deref(),
        )?;
        if req.purpose.trim().is_empty() {
            return Err(invalid("purpose must not be empty".into()));
        }
        if req.algorithm.trim().is_empty() {
            return Err(invalid("algorithm is required".into()));
        }
        if let Some(out) = &req.out
            && !out.is_absolute()
        {
            return Err(invalid(format!(
                "out must be an absolute path, not {}",
                out.display()
            )));
        }
        let view = ComputeJobView {
            state: "negotiating".into(),
            provider: req.provider.clone().unwrap_or_default(),
            asset: req.asset.clone().unwrap_or_default(),
            algorithm: req.algorithm.clone(),
            args: req.args.clone(),
            out: req.out.as_ref().map(|p| p.display().to_string()),
            ..ComputeJobView::default()
        };
        let id = self.start_job(&self.compute.jobs, view, "compute jobs")?;
        let me = self.clone();
        let task = tokio::spawn(async move {
            let r = me.run_compute(id, req).await;
            if let Err(e) = r {
                warn!(job = id, error = %e, "compute job failed");
                me.update_compute(id, |v| {
                    v.state = "failed".into();
                    v.error = Some(e.to_string());
                });
            }
            me.compute
                .running
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&id);
        });
        let mut running = self
            .compute
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !task.is_finished() {
            running.insert(id, task.abort_handle());
        }
        Ok(id)
    }

    /// Cancels job `id`: its task stops, which closes the stream; the provider sees that and
    /// stops the algorithm at its next epoch (it keeps its own usage record of the run).
    pub(crate) fn cancel_compute(&self, id: u64) -> Result<ComputeJobView, CommandError> {
        let view = self
            .compute
            .jobs
            .lock()
            .ok()
            .and_then(|j| j.get(id))
            .ok_or_else(|| CommandError::NotFound(format!("no compute job {id}")))?;
        if super::JobState::finished(&view) {
            return Err(CommandError::Conflict(format!(
                "compute job {id} already {}",
                view.state
            )));
        }
        if let Some(task) = self
            .compute
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id)
        {
            task.abort();
        }
        info!(job = id, "compute job cancelled");
        self.update_compute(id, |v| {
            v.state = "failed".into();
            v.error = Some("cancelled by this node".into());
        });
        self.compute
            .jobs
            .lock()
            .ok()
            .and_then(|j| j.get(id))
            .ok_or_else(|| CommandError::NotFound(format!("no compute job {id}")))
    }

    fn update_compute(&self, id: u64, f: impl FnOnce(&mut ComputeJobView)) {
        self.update_job(&self.compute.jobs, id, f);
    }

    /// The consumer's side of one job: each candidate provider in turn until one runs it.
    async fn run_compute(&self, id: u64, req: ComputeRequest) -> Result<(), ExchangeError> {
        let released = self.released(&req.algorithm).await?;
        self.update_compute(id, |v| {
            v.algorithm.clone_from(&released.target);
            v.algorithm_blake3.clone_from(&released.blake3);
        });
        let candidates = self
            .candidates(
                req.provider.as_deref(),
                req.query.as_deref(),
                req.asset.as_deref(),
            )
            .await?;
        let mut last = ExchangeError::Query("no provider offers a matching asset".into());
        for (provider, asset) in candidates {
            self.update_compute(id, |v| {
                v.provider = provider.to_string();
                v.asset.clone_from(&asset);
            });
            match self
                .compute_with(id, provider, &asset, &req, &released)
                .await
            {
                Ok(()) => return Ok(()),
                Err(e) => {
                    info!(job = id, %provider, %asset, error = %e, "compute provider failed; trying the next");
                    self.update_compute(id, |v| {
                        v.attempts.push(super::Attempt {
                            provider: provider.to_string(),
                            asset: asset.clone(),
                            error: e.to_string(),
                        });
                    });
                    last = e;
                }
            }
        }
        Err(last)
    }

    /// One provider's attempt at the job.
    async fn compute_with(
        &self,
        id: u64,
        provider: PeerId,
        asset: &str,
        req: &ComputeRequest,
        released: &Released,
    ) -> Result<(), ExchangeError> {
        let provider_key = PublicKey::from_peer_id(&provider)?;
        let agreement = self
            .negotiate_with(provider, provider_key, asset, &req.purpose, false)
            .await?;
        let agreement_id = agreement.body.id()?;
        self.update_compute(id, |v| {
            v.state = "running".into();
            v.agreement = Some(agreement_id.to_string());
        });
        let request = TransferRequest::Compute(Box::new(JobRequest {
            agreement: Box::new(agreement.clone()),
            algorithm: released.target.clone(),
            blake3: released.blake3.clone(),
            args: req.args.clone(),
        }));
        // The provider answers when the job has run: up to its wall-clock limit (at most 24 h
        // by its configuration) after waiting for a slot, not within a transfer's 30 s.
        let mut s = self.open(provider, super::TRANSFER).await?;
        write_bytes(&mut s, &request.encode()?).await?;
        let header = tokio::time::timeout(
            ANSWER_TIMEOUT,
            read_bytes(&mut s, gaiamesh_exchange::transfer::MAX_REPLY_BYTES),
        )
        .await
        .map_err(|_| ExchangeError::Compute("the provider did not answer within 49 h".into()))?
        .map_err(|e| {
            ExchangeError::Compute(format!(
                "the provider's connection closed before the job's answer ({e}); the job did not finish there"
            ))
        })?;
        let answer = Reply::decode(&header)?;
        if let Reply::Refused { reason } = answer {
            return Err(ExchangeError::Refused(reason));
        }
        let record_bytes = read_bytes(&mut s, MAX_RECORD_BYTES).await?;
        let record: UsageRecord =
            gaiamesh_protocol::codec::decode("usage record", &record_bytes, MAX_RECORD_BYTES)?;
        let completed = record.body.outcome == "completed";
        // At most what the provider says the algorithm wrote, and never above the maximum.
        let limit = record
            .body
            .usage
            .bytes_written
            .min(gaiamesh_exchange::compute::MAX_OUTPUT_LIMIT);
        let result = if completed {
            read_bytes(&mut s, usize::try_from(limit).unwrap_or(usize::MAX)).await?
        } else {
            Vec::new()
        };
        record.verify_provider(&agreement, completed.then_some(result.as_slice()))?;
        if record.body.algorithm_blake3 != released.blake3 {
            return Err(ExchangeError::Compute(format!(
                "the provider ran {} instead of the released {}",
                record.body.algorithm_blake3, released.blake3
            )));
        }
        let countersigned = record.countersign(&self.key)?;
        self.record(Event::Usage {
            role: Role::Consumer,
            record: Box::new(countersigned.clone()),
        })
        .await;
        if let Some(out) = &req.out {
            let (out, bytes) = (out.clone(), result.clone());
            tokio::task::spawn_blocking(move || std::fs::write(&out, bytes))
                .await?
                .map_err(ExchangeError::Stream)?;
        }
        let body = countersigned.body.clone();
        let back = TransferRequest::Usage {
            record: Box::new(countersigned),
        };
        match self.ask(provider, &back.encode()?).await {
            Ok((_, Reply::Ok { .. })) => {}
            Ok((_, Reply::Refused { reason })) => {
                warn!(%provider, %reason, "the provider refused the countersigned usage record");
            }
            Err(e) => warn!(%provider, error = %e, "the countersigned usage record did not arrive"),
        }
        info!(%provider, %asset, algorithm = %released.target, outcome = %body.outcome, fuel = body.usage.fuel, "compute job done");
        self.update_compute(id, |v| {
            v.state = if completed { "completed" } else { "failed" }.into();
            v.result = completed.then(|| String::from_utf8_lossy(&result).into_owned());
            v.result_blake3 = completed.then(|| body.result_blake3.clone());
            v.usage = Some(body.usage);
            v.charge.clone_from(&body.charge);
            v.outcome = Some(body.outcome.clone());
            if !completed {
                v.error = Some(format!(
                    "the provider stopped the algorithm: {}",
                    body.outcome
                ));
            }
        });
        Ok(())
    }

    /// The provider's side of a job request: checks, runs, answers.
    pub(super) async fn serve_compute(
        &self,
        peer: PeerId,
        mut s: libp2p::Stream,
        job: JobRequest,
    ) -> std::io::Result<()> {
        let checked = self.check_job(peer, &job).await;
        let (asset, blob, limit) = match checked {
            Ok(c) => c,
            Err(e) => {
                info!(%peer, asset = %job.agreement.body.asset, algorithm = %job.algorithm, reason = %e, "compute job refused");
                self.metrics.refused.inc();
                self.record(Event::Refusal {
                    role: Role::Provider,
                    peer: peer.to_string(),
                    asset: job.agreement.body.asset.clone(),
                    purpose: job.agreement.body.purpose.clone(),
                    reason: e.to_string(),
                })
                .await;
                return reply(
                    &mut s,
                    &Reply::Refused {
                        reason: e.to_string(),
                    },
                )
                .await;
            }
        };
        // The consumer sends nothing more: a read that ends means it went away (cancelled,
        // stopped), and the job is stopped at the next epoch.
        let cancel = Arc::new(AtomicBool::new(false));
        let (mut reader, mut writer) = futures::AsyncReadExt::split(s);
        let watch = {
            let cancel = cancel.clone();
            async move {
                let mut byte = [0u8; 1];
                let _ = futures::AsyncReadExt::read(&mut reader, &mut byte).await;
                cancel.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        };
        tokio::pin!(watch);
        let review = asset.policy.compute.as_ref().is_some_and(|c| c.review);
        let run = self.run_job(&job, asset, blob, limit, cancel);
        tokio::pin!(run);
        let mut gone = false;
        let ran = tokio::select! {
            r = &mut run => r,
            () = &mut watch => {
                gone = true;
                run.await
            }
        };
        let encode = |r: &Reply| r.encode().map_err(std::io::Error::other);
        let (mut body, mut result, entry) = match ran {
            Ok(r) => r,
            Err(e) => {
                let refused = Reply::Refused {
                    reason: e.to_string(),
                };
                return write_bytes(&mut writer, &encode(&refused)?).await;
            }
        };
        if review && body.outcome == "completed" {
            let decided = if gone {
                Reviewed::Withheld("the consumer left before the review".to_owned())
            } else {
                self.await_review(peer, &body, result, watch.as_mut()).await
            };
            result = match decided {
                Reviewed::Approved(result) => result,
                Reviewed::Withheld(reason) => {
                    info!(%peer, asset = %body.asset, algorithm = %body.algorithm, %reason, "compute result withheld");
                    body.outcome = format!("withheld by the provider's review: {reason}");
                    body.result_blake3.clear();
                    Vec::new()
                }
            };
        }
        let record = UsageRecord::sign(body, &self.key).map_err(std::io::Error::other)?;
        self.record(Event::Usage {
            role: Role::Provider,
            record: Box::new(record.clone()),
        })
        .await;
        // Recorded: a restart from now on has nothing to say about this job.
        if let Err(e) = tokio::task::spawn_blocking(move || entry.end())
            .await
            .map_err(std::io::Error::other)?
        {
            warn!(error = %e, "compute journal entry left behind");
        }
        self.metrics.compute_jobs.inc();
        self.metrics.compute_fuel.inc_by(record.body.usage.fuel);
        let bytes = gaiamesh_protocol::codec::encode("usage record", &record, MAX_RECORD_BYTES)
            .map_err(std::io::Error::other)?;
        let ok = Reply::Ok {
            len: bytes.len() as u64,
        };
        write_bytes(&mut writer, &encode(&ok)?).await?;
        write_bytes(&mut writer, &bytes).await?;
        if record.body.outcome == "completed" {
            write_bytes(&mut writer, &result).await?;
            self.metrics
                .compute_result_bytes
                .inc_by(result.len() as u64);
        }
        futures::AsyncWriteExt::close(&mut writer).await
    }

    /// Holds a completed job's `result` until the operator decides, the consumer leaves
    /// (`gone` ends) or `[compute] review_wait` passes: the result to send, or why not.
    async fn await_review(
        &self,
        peer: PeerId,
        body: &UsageBody,
        result: Vec<u8>,
        gone: std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
    ) -> Reviewed {
        let wait = self.compute.config.review_wait;
        let now = crate::now();
        let view = ReviewView {
            consumer: peer.to_string(),
            asset: body.asset.clone(),
            algorithm: body.algorithm.clone(),
            args: body.args.clone(),
            result_blake3: body.result_blake3.clone(),
            waiting_since: now.0,
            decide_by: review::deadline(now, wait),
            ..ReviewView::default()
        };
        let result = Arc::new(result);
        let most = self.compute.config.queued_jobs.max(1) as usize;
        let Some(mut waiting) = self.compute.reviews.hold(view, result.clone(), most) else {
            return Reviewed::Withheld(format!("{most} results already wait for review"));
        };
        info!(review = waiting.id, %peer, asset = %body.asset, algorithm = %body.algorithm, bytes = result.len(), "compute result held for review");
        let decision = tokio::select! {
            d = &mut waiting.decision => d.unwrap_or_else(|_| {
                Decision::Reject("the review ended without a decision".to_owned())
            }),
            () = gone => Decision::Reject("the consumer left before the review".to_owned()),
            () = tokio::time::sleep(wait) => Decision::Reject(format!(
                "not reviewed within {}",
                humantime::format_duration(wait)
            )),
        };
        drop(waiting);
        match decision {
            Decision::Approve => {
                info!(%peer, asset = %body.asset, "compute result approved");
                Reviewed::Approved(
                    Arc::try_unwrap(result).unwrap_or_else(|shared| shared.as_ref().clone()),
                )
            }
            Decision::Reject(reason) => Reviewed::Withheld(reason),
        }
    }

    /// Everything that must hold before a job runs: the agreement, an asset offered for
    /// computation, the arguments, a released algorithm with the asked hash that the policy
    /// permits and this node holds. Returns the asset, the algorithm's bytes and the result
    /// limit.
    async fn check_job(
        &self,
        peer: PeerId,
        job: &JobRequest,
    ) -> Result<(gaiamesh_exchange::asset::Asset, Vec<u8>, u64), ExchangeError> {
        if !self.compute.config.enabled {
            return Err(ExchangeError::Compute(
                "this node runs no compute jobs ([compute] enabled = false)".into(),
            ));
        }
        let (asset, _) = self.authorized_any(peer, &job.agreement).await?;
        let policy = asset.policy.compute.clone().ok_or_else(|| {
            ExchangeError::Compute(format!(
                "asset {:?} is not offered for computation",
                asset.id
            ))
        })?;
        job.check_args()?;
        let released = self.released(&job.algorithm).await?;
        if released.target != job.algorithm {
            return Err(ExchangeError::Compute(format!(
                "{} is not a released target (the release has {})",
                job.algorithm, released.target
            )));
        }
        if !released.blake3.eq_ignore_ascii_case(&job.blake3) {
            return Err(ExchangeError::Compute(format!(
                "{} has hash {} in the release, not {}",
                job.algorithm, released.blake3, job.blake3
            )));
        }
        policy.permits(&AlgorithmRef {
            target: &released.target,
            blake3: &released.blake3,
        })?;
        if let Some(p) = released.platform.as_deref()
            && p != ALGORITHM_PLATFORM
        {
            return Err(ExchangeError::Compute(format!(
                "{} is released for {p}, not as a {ALGORITHM_PLATFORM} algorithm",
                released.target
            )));
        }
        if !released.complete_here {
            return Err(ExchangeError::Compute(format!(
                "this provider does not hold {} yet (gaiamesh repo fetch {})",
                released.target, released.target
            )));
        }
        let path = self
            .root
            .join("blobs")
            .join(format!("{}.data", released.blake3));
        let expected = released.blake3.clone();
        let target = released.target.clone();
        let bytes = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, ExchangeError> {
            let refuse =
                |why: String| ExchangeError::Compute(format!("the algorithm {target}: {why}"));
            let len = std::fs::metadata(&path)
                .map_err(|e| refuse(e.to_string()))?
                .len();
            if len > MAX_ALGORITHM_BYTES {
                return Err(refuse(format!(
                    "{len} bytes, more than {MAX_ALGORITHM_BYTES}"
                )));
            }
            let bytes = std::fs::read(&path).map_err(|e| refuse(e.to_string()))?;
            if blake3::hash(&bytes).to_hex().as_str() != expected {
                return Err(refuse("the stored blob does not match its hash".into()));
            }
            Ok(bytes)
        })
        .await??;
        // What it declares must fit this node's limits; it may write no more than it said.
        let manifest = Manifest::require(&bytes).map_err(|e| {
            ExchangeError::Compute(format!("the algorithm {}: {e}", released.target))
        })?;
        let limits = self.compute.limits(policy.output_limit());
        manifest.fits(&limits).map_err(|e| {
            ExchangeError::Compute(format!("the algorithm {}: {e}", released.target))
        })?;
        Ok((asset, bytes, manifest.bound(limits).output_bytes))
    }

    /// Runs a checked job in a slot; what the provider will sign, the result, and the job's
    /// journal entry (to end once its record is in the audit log).
    async fn run_job(
        &self,
        job: &JobRequest,
        asset: gaiamesh_exchange::asset::Asset,
        blob: Vec<u8>,
        output_limit: u64,
        cancel: Arc<AtomicBool>,
    ) -> Result<(UsageBody, Vec<u8>, journal::Entry), ExchangeError> {
        use std::sync::atomic::Ordering;
        let most = (self.compute.config.queued_jobs + self.compute.config.concurrent_jobs) as usize;
        if self.compute.queued.fetch_add(1, Ordering::Relaxed) >= most {
            self.compute.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(ExchangeError::Compute(
                "too many compute jobs queued; try again later".into(),
            ));
        }
        let permit = self.compute.slots.acquire().await;
        self.compute.queued.fetch_sub(1, Ordering::Relaxed);
        let _permit = permit.map_err(|_| ExchangeError::Compute("the node is stopping".into()))?;
        if asset.directory {
            return Err(ExchangeError::Compute(format!(
                "asset {:?} is a directory; computation runs on single-file assets",
                asset.id
            )));
        }
        let started_at = crate::now();
        let mut body = UsageBody {
            agreement: job.agreement.body.id()?,
            provider: self.key.public(),
            consumer: job.agreement.body.consumer,
            asset: asset.id.clone(),
            algorithm: job.algorithm.clone(),
            algorithm_blake3: job.blake3.clone(),
            args: job.args.clone(),
            outcome: String::new(),
            result_blake3: String::new(),
            usage: Usage::default(),
            charge: None,
            started_at,
            finished_at: started_at,
        };
        let me = self.clone();
        let (path, args, hash) = (asset.path.clone(), job.args.clone(), job.blake3.clone());
        let limits = self.compute.limits(output_limit);
        let key = format!(
            "{}-{}-{}",
            body.agreement,
            started_at.0,
            self.compute.started.fetch_add(1, Ordering::Relaxed)
        );
        let (root, skeleton) = (self.root.clone(), body.clone());
        let t0 = Instant::now();
        let (report, entry) = tokio::task::spawn_blocking(move || {
            // In the journal before it starts: a restart during the run is recorded, not lost.
            let entry = journal::Entry::begin(&root, &key, &skeleton)
                .map_err(|e| ExchangeError::Compute(e.to_string()))?;
            let run = me
                .compute
                .algorithm(&hash, &blob)
                .and_then(|a| me.compute.sandbox()?.run(&a, &path, &args, limits, cancel));
            match run {
                Ok(report) => Ok((report, entry)),
                Err(e) => {
                    if let Err(j) = entry.end() {
                        warn!(error = %j, "compute journal entry left behind");
                    }
                    Err(ExchangeError::Compute(e.to_string()))
                }
            }
        })
        .await??;
        let outcome = match &report.stopped {
            None => "completed".to_owned(),
            Some(r) => r.to_string(),
        };
        info!(asset = %asset.id, algorithm = %job.algorithm, %outcome, fuel = report.usage.fuel, ms = t0.elapsed().as_millis() as u64, "compute job ran");
        let price = self.own_price(&asset.id).await;
        let charge = price.and_then(|p| {
            charge(&report.usage, &p.currency, &p.amount, &p.unit)
                .map_err(|e| warn!(asset = %asset.id, error = %e, "the asset's price cannot price a job"))
                .ok()
        });
        if report.completed() {
            body.result_blake3 = blake3::hash(&report.output).to_hex().to_string();
        }
        body.outcome = outcome;
        body.usage = report.usage;
        body.charge = charge;
        body.finished_at = crate::now();
        Ok((body, report.output, entry))
    }

    /// Records the jobs a previous run of this node left unfinished in its journal: each
    /// gets a usage record signed now, outcome `interrupted: …`, in the audit log; none is
    /// run again. Called once when the node starts.
    pub(super) async fn recover_interrupted_jobs(&self) {
        let root = self.root.clone();
        let Ok(left) = tokio::task::spawn_blocking(move || journal::leftovers(&root)).await else {
            return;
        };
        for (path, body) in left {
            let mut body = match body {
                Ok(b) => b,
                Err(e) => {
                    warn!(error = %e, "unreadable compute journal entry set aside");
                    let _ = tokio::task::spawn_blocking(move || journal::set_aside(&path)).await;
                    continue;
                }
            };
            body.outcome = INTERRUPTED.to_owned();
            body.result_blake3.clear();
            body.finished_at = crate::now();
            let record = match UsageRecord::sign(body, &self.key) {
                Ok(r) => r,
                Err(e) => {
                    warn!(error = %e, "an interrupted compute job cannot be recorded");
                    continue;
                }
            };
            warn!(asset = %record.body.asset, algorithm = %record.body.algorithm, agreement = %record.body.agreement, "compute job interrupted by a restart; recorded, not run again");
            self.record(Event::Usage {
                role: Role::Provider,
                record: Box::new(record),
            })
            .await;
            if let Ok(Err(e)) = tokio::task::spawn_blocking(move || journal::remove(&path)).await {
                warn!(error = %e, "compute journal entry left behind");
            }
        }
    }

    /// The signed usage record of the transfer under `agreement` (its receipt arrived): the
    /// bytes this node sent and the time from the first file request, priced by the asset's
    /// price model when its unit meters transfers (bytes read, time, per job).
    pub(super) async fn transfer_record(
        &self,
        agreement: &gaiamesh_exchange::contract::Agreement,
    ) -> Result<UsageRecord, ExchangeError> {
        let now = crate::now();
        let (bytes, wall_us, started_at) = match self.meter.take(agreement.body.id()?) {
            Some(sent) => (sent.bytes, sent.wall_us(), sent.started_at),
            // Not counted here (the node restarted, or the count was dropped): the
            // agreement's size, no duration.
            None => (agreement.body.size, 0, now),
        };
        let usage = Usage {
            bytes_read: bytes,
            wall_us,
            ..Usage::default()
        };
        let price = self.own_price(&agreement.body.asset).await;
        let charge = price.and_then(|p| charge(&usage, &p.currency, &p.amount, &p.unit).ok());
        let body = UsageBody::transfer(agreement, bytes, wall_us, charge, started_at, now)?;
        Ok(UsageRecord::sign(body, &self.key)?)
    }

    /// The consumer's side of a transfer's usage record (the answer to its receipt):
    /// verified, countersigned, in the audit log, sent back. Returns the countersigned one.
    pub(super) async fn accept_transfer_record(
        &self,
        provider: PeerId,
        agreement: &gaiamesh_exchange::contract::Agreement,
        record: UsageRecord,
    ) -> Result<UsageRecord, ExchangeError> {
        record.verify_transfer(agreement)?;
        let countersigned = record.countersign(&self.key)?;
        self.record(Event::Usage {
            role: Role::Consumer,
            record: Box::new(countersigned.clone()),
        })
        .await;
        let back = TransferRequest::Usage {
            record: Box::new(countersigned.clone()),
        };
        match self.ask(provider, &back.encode()?).await {
            Ok((_, Reply::Ok { .. })) => {}
            Ok((_, Reply::Refused { reason })) => {
                warn!(%provider, %reason, "the provider refused the countersigned transfer record");
            }
            Err(e) => {
                warn!(%provider, error = %e, "the countersigned transfer record did not arrive")
            }
        }
        Ok(countersigned)
    }

    /// The price of the service this node publishes for `asset`, if it has one.
    async fn own_price(&self, asset: &str) -> Option<gaiamesh_protocol::sd::Price> {
        let entry = self.client.show(self.key.public()).await.ok().flatten()?;
        let doc: SdDocument = serde_json::from_value(entry.document).ok()?;
        doc.services.into_iter().find(|s| s.id == asset)?.price
    }

    /// The provider's side of a countersigned usage record.
    pub(super) async fn accept_usage(
        &self,
        peer: PeerId,
        mut s: libp2p::Stream,
        record: UsageRecord,
    ) -> std::io::Result<()> {
        let checked = if record.body.consumer.to_peer_id() != peer {
            Err("the record is another consumer's".to_owned())
        } else if record.body.provider != self.key.public() {
            Err("the record is another provider's".to_owned())
        } else {
            record.verify_both().map_err(|e| e.to_string())
        };
        match checked {
            Ok(()) => {
                self.record(Event::Usage {
                    role: Role::Provider,
                    record: Box::new(record),
                })
                .await;
                reply(&mut s, &Reply::Ok { len: 0 }).await?;
            }
            Err(reason) => {
                warn!(%peer, %reason, "usage record refused");
                reply(&mut s, &Reply::Refused { reason }).await?;
            }
        }
        futures::AsyncWriteExt::close(&mut s).await
    }
}

/// `NAME@1.10.0` sorts after `NAME@1.9.0`.
fn version_key(target: &str) -> Vec<u64> {
    target
        .split_once('@')
        .map_or("", |(_, v)| v)
        .split(['.', '-', '+'])
        .map(|p| p.parse().unwrap_or(0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::version_key;

    #[test]
    fn versions_sort_numerically_so_name_alone_means_the_newest() {
        let mut targets = vec!["a@1.10.0", "a@1.9.2", "a@2.0.0-rc1", "a@1.9.10"];
        targets.sort_by_key(|t| version_key(t));
        assert_eq!(targets, ["a@1.9.2", "a@1.9.10", "a@1.10.0", "a@2.0.0-rc1"]);
    }
}
