//! The storage writer: one thread that makes every change to the catalogue, so that neither
//! a redb commit (with its fsync) nor a signature check ever runs on the task that polls the
//! swarm.
//!
//! - **Group commit.** The writer takes every job queued when it wakes (up to
//!   [`MAX_BATCH_RECORDS`] records) and merges them in one store transaction. A job's result
//!   is sent back only after that transaction is durable.
//! - **Two stages.** One thread groups and checks batches, a second plans, writes and
//!   applies them: batch N+1 is checked while batch N waits for its fsync. The commit
//!   decides against the catalogue as it is then, so a record merged in between settles as
//!   a duplicate. A revocation or sweep drains the pipeline: nothing queued after it is
//!   checked before it is in force.
//! - **Checks on every core.** The records of a batch are checked (signatures, membership,
//!   attestations) on up to one thread per core ([`gaiamesh_directory::ingest::check_all`]),
//!   outside any lock.
//! - **Readers are not held up.** Decisions are planned under a read lock, the store is
//!   written with no catalogue lock held, and only the in-memory facets are updated under
//!   the write lock (microseconds per record). Queries read from [`SharedCatalogue`] on
//!   blocking threads.
//!
//! The caller tags each job with a `T` that comes back with its result (the event loop uses
//! it to know which gossip message to report, which request to answer).

use std::{
    sync::{
        Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard,
        atomic::{AtomicU64, Ordering},
        mpsc::{Receiver, SyncSender, TrySendError, sync_channel},
    },
    thread::JoinHandle,
};

use gaiamesh_directory::{
    catalogue::{Catalogue, RevocationOrStore},
    ingest::{Staged, check_all},
    merge::MergeOutcome,
    store::{RedbStore, Store, StoreError},
};
use gaiamesh_protocol::{
    federation::{RevocationList, VerifiedCache},
    identity::PublicKey,
    sd::SignedSelfDescription,
    time::UnixMillis,
};
use tokio::sync::mpsc;
use tracing::{debug, warn};

/// Most records merged in one transaction.
pub const MAX_BATCH_RECORDS: usize = 1024;

/// Jobs queued for the writer at most; beyond that [`Storage::submit`] refuses (the caller
/// drops gossip, which anti-entropy recovers).
pub const MAX_QUEUED_JOBS: usize = 4096;

/// Credentials and attestations the checking threads remember as verified.
const VERIFIED_CACHE_CAPACITY: usize = 1 << 18;

/// The catalogue, shared between the writer (the only one that changes it) and readers.
#[derive(Clone, Debug)]
pub struct SharedCatalogue(Arc<RwLock<Catalogue<RedbStore>>>);

impl SharedCatalogue {
    /// Shares `catalogue`.
    pub fn new(catalogue: Catalogue<RedbStore>) -> Self {
        Self(Arc::new(RwLock::new(catalogue)))
    }

    /// Read access. Facets are replaced whole per record under the write lock, so a panic
    /// cannot leave one half-written; a poisoned lock is recovered from.
    pub fn read(&self) -> RwLockReadGuard<'_, Catalogue<RedbStore>> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Catalogue<RedbStore>> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A record to merge, with the peer it came from (`None`: this node).
pub type Incoming = (SignedSelfDescription, Option<PublicKey>);

/// One piece of work for the writer.
#[derive(Debug)]
pub enum Job<T> {
    /// Merge records (each with the peer it came from; `None`: this node).
    Merge {
        /// The records.
        records: Vec<Incoming>,
        /// Comes back with the result.
        tag: T,
    },
    /// Put a revocation list in force and drop the revoked members' entries.
    Revoke {
        /// The list.
        list: Box<RevocationList>,
        /// Comes back with the result.
        tag: T,
    },
    /// Remove expired and revoked entries.
    Sweep,
}

/// The result of a job, with its tag.
#[derive(Debug)]
pub enum Done<T> {
    /// One outcome per record, in order, once durable.
    Merged {
        /// The job's tag.
        tag: T,
        /// The version of each record, in order.
        versions: Vec<Version>,
        /// One outcome per record, or why the batch was not written.
        result: Result<Vec<MergeOutcome>, Arc<StoreError>>,
    },
    /// Entries removed, or why the list was refused.
    Revoked {
        /// The job's tag.
        tag: T,
        /// The list.
        list: Box<RevocationList>,
        /// Entries removed.
        result: Result<usize, RevocationOrStore>,
    },
    /// Entries removed by a sweep.
    Swept(Result<usize, StoreError>),
}

/// The handle the event loop submits jobs with.
#[derive(Debug)]
pub struct Storage<T> {
    jobs: Option<SyncSender<Job<T>>>,
    thread: Option<JoinHandle<()>>,
    commits: Arc<AtomicU64>,
}

/// The writer refused a job.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// [`MAX_QUEUED_JOBS`] are waiting.
    #[error("the storage writer is {MAX_QUEUED_JOBS} jobs behind")]
    Full,
    /// The writer stopped (it only stops at shutdown or after a panic).
    #[error("the storage writer stopped")]
    Stopped,
}

impl<T: Send + 'static> Storage<T> {
    /// Starts the writer thread over `catalogue`; results arrive on `done`.
    pub fn start(
        catalogue: SharedCatalogue,
        done: mpsc::Sender<Done<T>>,
        now: fn() -> UnixMillis,
    ) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel(MAX_QUEUED_JOBS);
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let store = catalogue.read().store().clone();
        let commits = Arc::new(AtomicU64::new(0));
        let checker = Checker {
            catalogue: catalogue.clone(),
            cache: VerifiedCache::new(VERIFIED_CACHE_CAPACITY),
            threads,
            now,
        };
        let committer = Committer {
            commits: commits.clone(),
            catalogue,
            store,
            done,
            now,
        };
        let thread = std::thread::Builder::new()
            .name("gaiamesh-storage".into())
            .spawn(move || checker.run(rx, committer))?;
        Ok(Self {
            jobs: Some(tx),
            thread: Some(thread),
            commits,
        })
    }

    /// Merge transactions committed so far (records per commit shows the grouping).
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Queues `job` without waiting; a refused job comes back with the reason.
    pub fn submit(&self, job: Job<T>) -> Result<(), Refused<T>> {
        let Some(jobs) = &self.jobs else {
            return Err(Refused {
                job,
                why: SubmitError::Stopped,
            });
        };
        jobs.try_send(job).map_err(|e| match e {
            TrySendError::Full(job) => Refused {
                job,
                why: SubmitError::Full,
            },
            TrySendError::Disconnected(job) => Refused {
                job,
                why: SubmitError::Stopped,
            },
        })
    }
}

/// A job the writer did not take, and why.
#[derive(Debug)]
pub struct Refused<T> {
    /// The job, back.
    pub job: Job<T>,
    /// Why.
    pub why: SubmitError,
}

impl<T> Drop for Storage<T> {
    /// Lets the writer finish what is queued, then waits for it. Close the result channel's
    /// receiver first, or the writer may wait for room in it.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            warn!("the storage writer panicked");
        }
    }
}

/// Stage one: groups queued jobs, triages their records and checks them on every core.
struct Checker {
    catalogue: SharedCatalogue,
    cache: VerifiedCache,
    /// Checking threads (one per core).
    threads: usize,
    now: fn() -> UnixMillis,
}

/// What the checker hands the committer, in job order.
enum Step<T> {
    Merge(CheckedBatch<T>),
    /// A job that changes the catalogue otherwise. The checker waits for `ack` before it
    /// checks anything queued after it (a revocation changes what passes the checks).
    Other(Job<T>, SyncSender<()>),
}

/// Which version of whose self-description a record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Version {
    /// The subject.
    pub subject: PublicKey,
    /// Its sequence number.
    pub seq: u64,
    /// When the subject signed it (its clock).
    pub issued_at: UnixMillis,
}

/// A group of merge jobs, checked.
struct CheckedBatch<T> {
    now: UnixMillis,
    staged: Vec<(Staged, Option<PublicKey>)>,
    /// The version of each record, in order.
    versions: Vec<Version>,
    /// Records per job, and the jobs' tags.
    jobs: Vec<(usize, T)>,
}

/// Stage two: plans each checked batch against the catalogue as it is now, makes it durable
/// and applies it, while the checker works on the next batch.
struct Committer<T> {
    commits: Arc<AtomicU64>,
    catalogue: SharedCatalogue,
    /// A second handle on the catalogue's database, written with no catalogue lock held.
    store: RedbStore,
    done: mpsc::Sender<Done<T>>,
    now: fn() -> UnixMillis,
}

impl Checker {
    /// Runs until the job channel closes, then lets the committer finish and waits for it.
    fn run<T: Send + 'static>(mut self, jobs: Receiver<Job<T>>, committer: Committer<T>) {
        let _span = tracing::info_span!("storage").entered();
        // One batch waits while the committer writes another: enough to keep both busy.
        let (steps, rx) = sync_channel::<Step<T>>(1);
        let commit_thread = match std::thread::Builder::new()
            .name("gaiamesh-commit".into())
            .spawn(move || committer.run(rx))
        {
            Ok(t) => t,
            Err(e) => {
                warn!(error = %e, "cannot start the storage commit thread; the writer stops");
                return;
            }
        };
        'jobs: while let Ok(first) = jobs.recv() {
            let mut merges = Vec::new();
            let mut records = 0;
            let mut next = Some(first);
            while let Some(job) = next.take() {
                match job {
                    Job::Merge { records: r, tag } => {
                        records += r.len();
                        merges.push((r, tag));
                        if records < MAX_BATCH_RECORDS {
                            next = jobs.try_recv().ok();
                        }
                    }
                    other => {
                        // Keep the order: what was queued before it is written first.
                        let batch = self.check(std::mem::take(&mut merges));
                        records = 0;
                        let (ack, acked) = sync_channel(1);
                        if batch.is_some_and(|b| steps.send(Step::Merge(b)).is_err())
                            || steps.send(Step::Other(other, ack)).is_err()
                            || acked.recv().is_err()
                        {
                            break 'jobs;
                        }
                        next = jobs.try_recv().ok();
                    }
                }
            }
            if let Some(batch) = self.check(merges)
                && steps.send(Step::Merge(batch)).is_err()
            {
                break;
            }
        }
        drop(steps);
        if commit_thread.join().is_err() {
            warn!("the storage commit thread panicked");
        }
        debug!("storage writer stopped");
    }

    fn check<T>(&mut self, jobs: Vec<(Vec<Incoming>, T)>) -> Option<CheckedBatch<T>> {
        if jobs.is_empty() {
            return None;
        }
        let now = (self.now)();
        let mut sizes = Vec::with_capacity(jobs.len());
        let mut versions = Vec::new();
        let mut froms = Vec::new();
        let mut triaged = Vec::new();
        let trust = {
            let cat = self.catalogue.read();
            for (records, tag) in jobs {
                sizes.push((records.len(), tag));
                for (r, from) in records {
                    versions.push(Version {
                        subject: r.sd.subject,
                        seq: r.sd.seq,
                        issued_at: r.sd.issued_at,
                    });
                    froms.push(from);
                    triaged.push(cat.triage(r));
                }
            }
            cat.trust().clone()
        };
        let staged = check_all(triaged, &trust, now, &self.cache, self.threads)
            .into_iter()
            .zip(froms)
            .collect();
        Some(CheckedBatch {
            now,
            staged,
            versions,
            jobs: sizes,
        })
    }
}

impl<T> Committer<T> {
    fn run(mut self, steps: Receiver<Step<T>>) {
        let _span = tracing::info_span!("storage commit").entered();
        while let Ok(step) = steps.recv() {
            match step {
                Step::Merge(batch) => self.merge(batch),
                Step::Other(job, ack) => {
                    self.other(job);
                    // The checker may have stopped waiting only at shutdown.
                    let _ = ack.send(());
                }
            }
        }
    }

    /// Sends a result. Nobody listening (shutdown) is fine: the writer still writes
    /// everything queued before it stops.
    fn send(&self, done: Done<T>) {
        let _ = self.done.blocking_send(done);
    }

    fn merge(&mut self, batch: CheckedBatch<T>) {
        let result = self.commit(batch.staged, batch.now).map_err(Arc::new);
        let mut versions = batch.versions.into_iter();
        let mut outcomes = result.map(Vec::into_iter);
        for (n, tag) in batch.jobs {
            let done = Done::Merged {
                tag,
                versions: versions.by_ref().take(n).collect(),
                result: match &mut outcomes {
                    Ok(o) => Ok(o.by_ref().take(n).collect()),
                    Err(e) => Err(e.clone()),
                },
            };
            self.send(done);
        }
    }

    /// Plans against the catalogue as it is now (the batch was triaged against an earlier
    /// state: a record merged since then settles here as a duplicate or stale copy).
    fn commit(
        &mut self,
        staged: Vec<(Staged, Option<PublicKey>)>,
        now: UnixMillis,
    ) -> Result<Vec<MergeOutcome>, StoreError> {
        let mut plan = self.catalogue.read().plan_merge(staged, now)?;
        // Durable before anyone sees it: the facets follow only a committed transaction.
        self.store.write(plan.take_changes())?;
        self.commits.fetch_add(1, Ordering::Relaxed);
        Ok(self.catalogue.write().apply(plan))
    }

    fn other(&self, job: Job<T>) {
        let now = (self.now)();
        match job {
            Job::Merge { .. } => {}
            Job::Revoke { list, tag } => {
                let result = self.catalogue.write().apply_revocations(&list, now);
                self.send(Done::Revoked { tag, list, result })
            }
            Job::Sweep => {
                let result = self.catalogue.write().sweep(now);
                self.send(Done::Swept(result))
            }
        }
    }
}
