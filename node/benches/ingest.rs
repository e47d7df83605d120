//! End-to-end ingest through the daemon's storage writer (`gaiamesh_node::daemon::storage`):
//! records arrive one per job, as gossip delivers them; the writer groups them, checks
//! them on every core, merges them and makes them durable in redb (one fsync per batch).
//! A record counts once its result is back, that is, once it is durable.
//!
//! The limit, measured in the same run: raw ed25519 verifications of the same records'
//! signatures on one core (strict verification of pre-encoded messages, nothing else).
//! With `C` cores the pipeline can at best reach `C × M` records/s when each record needs
//! one signature check. The line the issue asks for compares against two cores:
//!
//! ```text
//! ingest: <N> records/s end-to-end, <M> verifies/s/core limit, ratio <N/(2*M)>
//! ```
//!
//! Two workloads: **warm**, re-published versions whose credentials the node has seen (one
//! signature per record: the steady state of a federation), and **cold**, every record from
//! a member seen for the first time (its credential's two authority signatures too, so
//! three per record).
//!
//! While the writer ingests, a reader thread takes the catalogue's read lock as the API's
//! status and queries do, and the bench reports that wait's p50/p99/max.
//!
//! ```sh
//! cargo bench -p gaiamesh-node --bench ingest
//! GAIAMESH_BENCH_RECORDS=50000 cargo bench -p gaiamesh-node --bench ingest
//! ```

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    clippy::print_stdout,
    clippy::print_stderr
)]

/// The daemon's allocator (`node/src/main.rs`), so the bench measures what the daemon runs.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use gaiamesh_directory::{
    catalogue::Catalogue, ingest::Staged, merge::MergeOutcome, store::RedbStore,
};
use gaiamesh_node::daemon::storage::{Done, Job, SharedCatalogue, Storage, SubmitError};
use gaiamesh_protocol::{
    codec,
    identity::Domain,
    limits::MAX_SD_BYTES,
    sd::SignedSelfDescription,
    testing::{NOW, TestFederation, signed_catalogue},
    time::UnixMillis,
};

/// Raw strict ed25519 verifications per second on this thread.
fn verifies_per_second(records: &[SignedSelfDescription]) -> f64 {
    let messages: Vec<Vec<u8>> = records
        .iter()
        .map(|r| codec::encode("self-description", &r.sd, MAX_SD_BYTES).unwrap())
        .collect();
    let t = Instant::now();
    for (r, m) in records.iter().zip(&messages) {
        assert!(
            r.sd.subject
                .verify(Domain::SelfDescription, m, &r.signature)
        );
    }
    records.len() as f64 / t.elapsed().as_secs_f64()
}

/// Re-publications measured; the line reports the median.
const WARM_ROUNDS: usize = 3;

fn fixed_now() -> UnixMillis {
    NOW
}

struct Run {
    rate: f64,
    lock_wait: Vec<Duration>,
    batches: usize,
}

/// Feeds `records` one per job to a running writer and waits for every result.
fn ingest(
    storage: &Storage<()>,
    results: &mut tokio::sync::mpsc::Receiver<Done<()>>,
    catalogue: &SharedCatalogue,
    records: &[SignedSelfDescription],
) -> Run {
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (catalogue, done) = (catalogue.clone(), done.clone());
        std::thread::spawn(move || {
            let mut waits = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let t = Instant::now();
                let n = catalogue.read().len();
                waits.push(t.elapsed());
                std::hint::black_box(n);
                std::thread::sleep(Duration::from_millis(1));
            }
            waits
        })
    };
    let started = Instant::now();
    let mut sent = 0;
    let mut received = 0;
    let commits_before = storage.commits();
    while sent < records.len() {
        let job = Job::Merge {
            records: vec![(records[sent].clone(), None)],
            tag: (),
        };
        match storage.submit(job) {
            Ok(()) => sent += 1,
            Err(r) if matches!(r.why, SubmitError::Full) => {
                received += collect(results, true).unwrap_or(0);
            }
            Err(r) => panic!("{}", r.why),
        }
        while let Some(k) = collect(results, false) {
            received += k;
        }
    }
    while received < records.len() {
        received += collect(results, true).expect("the writer answers every job");
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let mut lock_wait = reader.join().unwrap();
    lock_wait.sort();
    Run {
        rate: records.len() as f64 / elapsed.as_secs_f64(),
        lock_wait,
        batches: usize::try_from(storage.commits() - commits_before).unwrap_or(usize::MAX),
    }
}

/// The number of records in the next result, `None` when none is ready (or, waiting, the
/// channel closed).
fn collect(results: &mut tokio::sync::mpsc::Receiver<Done<()>>, wait: bool) -> Option<usize> {
    let next = if wait {
        results.blocking_recv()
    } else {
        results.try_recv().ok()
    };
    match next? {
        Done::Merged { result, .. } => {
            let outcomes = result.expect("the store writes");
            assert!(
                outcomes.iter().all(MergeOutcome::changed),
                "{:?}",
                outcomes.iter().find(|o| !o.changed())
            );
            Some(outcomes.len())
        }
        other => panic!("unexpected result {other:?}"),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let n: usize = std::env::var("GAIAMESH_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let f = TestFederation::new(3, 2, true);
    eprintln!("signing {n} records and {WARM_ROUNDS} × {n} re-published versions");
    let cold = signed_catalogue(&f, n, 1);
    let warm: Vec<_> = (0..WARM_ROUNDS)
        .map(|r| signed_catalogue(&f, n, 2 + r as u64))
        .collect();
    let limit = verifies_per_second(&cold);
    let stages = stage_rates(&f, &warm[0], &cold, cores);

    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(&dir.path().join("db.redb")).unwrap();
    let catalogue =
        SharedCatalogue::new(Catalogue::open(store, f.trust.clone(), usize::MAX).unwrap());
    let (tx, mut rx) = tokio::sync::mpsc::channel(4096);
    let storage = Storage::start(catalogue.clone(), tx, fixed_now).unwrap();
    eprintln!("cold: {n} records from members seen for the first time");
    let c = ingest(&storage, &mut rx, &catalogue, &cold);
    let mut rounds = Vec::new();
    for (i, set) in warm.iter().enumerate() {
        eprintln!("warm {}/{WARM_ROUNDS}: {n} re-published versions", i + 1);
        rounds.push(ingest(&storage, &mut rx, &catalogue, set));
    }
    assert_eq!(catalogue.read().len(), n);
    drop(storage);
    rounds.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    let w = &rounds[rounds.len() / 2];

    println!("## Ingest through the storage writer ({cores} cores, {n} records, one per job)\n");
    println!(
        "| workload | signatures per record | records/s end-to-end | raw verifies/s/core | ratio to 2 cores' limit (N / 2M) | records per commit | catalogue read-lock wait p50 / p99 / max |"
    );
    println!("|---|---|---|---|---|---|---|");
    let warm_name = format!(
        "warm (median of {WARM_ROUNDS}: {})",
        rounds
            .iter()
            .map(|r| format!("{:.0}", r.rate))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (name, sigs, r) in [(warm_name.as_str(), 1, w), ("cold", 3, &c)] {
        println!(
            "| {name} | {sigs} | {:.0} | {:.0} | {:.2} | {:.0} | {:.3} / {:.3} / {:.3} ms |",
            r.rate,
            limit,
            r.rate / (2.0 * limit),
            n as f64 / r.batches.max(1) as f64,
            percentile(&r.lock_wait, 0.5).as_secs_f64() * 1e3,
            percentile(&r.lock_wait, 0.99).as_secs_f64() * 1e3,
            r.lock_wait
                .last()
                .copied()
                .unwrap_or_default()
                .as_secs_f64()
                * 1e3,
        );
    }
    println!("\nStages alone, records/s (no store, no pipeline):\n");
    println!("| workload | triage (hash, one thread) | check ({cores} threads) |");
    println!("|---|---|---|");
    for (name, triage, check) in stages {
        println!("| {name} | {triage:.0} | {check:.0} |");
    }
    println!();
    println!(
        "ingest: {:.0} records/s end-to-end, {:.0} verifies/s/core limit, ratio {:.2}",
        w.rate,
        limit,
        w.rate / (2.0 * limit)
    );
    println!(
        "ingest (cold, 3 signatures per record): {:.0} records/s end-to-end, {:.0} verifies/s/core limit, ratio {:.2}",
        c.rate,
        limit,
        c.rate / (2.0 * limit)
    );
}

/// Stages 1 and 2 alone, records/s: triage (encode and hash) on one thread, and the
/// checks on `threads` threads sharing one cache.
fn stage_rates(
    f: &TestFederation,
    warm: &[SignedSelfDescription],
    cold: &[SignedSelfDescription],
    threads: usize,
) -> Vec<(&'static str, f64, f64)> {
    use gaiamesh_directory::{ingest::check_all, store::MemoryStore};
    use gaiamesh_protocol::federation::VerifiedCache;
    let cat = Catalogue::open(MemoryStore::default(), f.trust.clone(), usize::MAX).unwrap();
    let cache = VerifiedCache::new(1 << 18);
    [("cold", cold), ("warm", warm)]
        .into_iter()
        .map(|(name, set)| {
            let records: Vec<_> = set.to_vec();
            let t = Instant::now();
            let triaged: Vec<_> = records.into_iter().map(|r| cat.triage(r)).collect();
            let triage = t.elapsed();
            let t = Instant::now();
            let staged = check_all(triaged, &f.trust, NOW, &cache, threads);
            let check = t.elapsed();
            assert!(
                staged.iter().all(|s| matches!(s, Staged::Checked(_))),
                "every record passes"
            );
            let n = set.len() as f64;
            (name, n / triage.as_secs_f64(), n / check.as_secs_f64())
        })
        .collect()
}
