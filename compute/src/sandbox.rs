//! The engine, the checks before a job starts, and one job's run.

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use wasmtime::{
    Config, Engine, ResourceLimiter, Store, Trap, UpdateDeadline,
    component::{Component, Linker, ResourceTable},
};
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView, p2::bindings::sync::Command};

use crate::{
    ComputeError, Limits, Report, StopReason, Usage,
    stdio::{BoundedOutput, DatasetInput},
};

/// How often the epoch advances: the resolution of the wall-clock limit and of cancellation.
const EPOCH: Duration = Duration::from_millis(10);

/// Interfaces a compute job may import (by prefix); anything else is refused before it
/// starts. The filesystem is linked (language runtimes import it) but nothing is preopened.
const ALLOWED: &[&str] = &[
    "wasi:cli/environment@",
    "wasi:cli/exit@",
    "wasi:cli/stdin@",
    "wasi:cli/stdout@",
    "wasi:cli/stderr@",
    "wasi:cli/terminal-",
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:filesystem/",
];

/// Imports refused with a reason of their own.
const NO_NETWORK: &[&str] = &["wasi:sockets/", "wasi:http/"];

/// The node's WebAssembly engine: compiled code, fuel metering and an epoch ticker that
/// drives wall-clock limits and cancellation.
pub struct Sandbox {
    engine: Engine,
    linker: Linker<JobState>,
    ticker: Arc<Ticker>,
}

/// Advances the engine's epoch every [`EPOCH`] while at least one job runs, and sleeps
/// otherwise (an idle node does not wake 100 times a second).
#[derive(Default)]
struct Ticker {
    /// Jobs running, and whether the sandbox still exists.
    state: std::sync::Mutex<(usize, bool)>,
    wake: std::sync::Condvar,
}

impl Ticker {
    fn run(&self, engine: &Engine) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        loop {
            if !state.1 {
                return;
            }
            if state.0 == 0 {
                state = self
                    .wake
                    .wait(state)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                continue;
            }
            drop(state);
            std::thread::sleep(EPOCH);
            engine.increment_epoch();
            state = self
                .state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    fn update(&self, f: impl FnOnce(&mut (usize, bool))) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut state);
        self.wake.notify_all();
    }
}

/// Counts a job as running for the ticker until dropped.
struct Running<'a>(&'a Ticker);

impl<'a> Running<'a> {
    fn new(ticker: &'a Ticker) -> Self {
        ticker.update(|s| s.0 += 1);
        Self(ticker)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.update(|s| s.0 = s.0.saturating_sub(1));
    }
}

/// A checked, compiled algorithm, ready to run any number of times.
#[derive(Clone)]
pub struct Algorithm {
    component: Component,
    /// BLAKE3 of the component's bytes, hex.
    hash: String,
}

impl std::fmt::Debug for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Algorithm")
            .field("hash", &self.hash)
            .finish()
    }
}

impl Algorithm {
    /// BLAKE3 of the component, hex.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The interfaces `component` imports.
    fn imports(&self, engine: &Engine) -> Vec<String> {
        self.component
            .component_type()
            .imports(engine)
            .map(|(name, _)| name.to_owned())
            .collect()
    }

    /// Refuses a component that imports what jobs do not provide.
    fn check(&self, engine: &Engine) -> Result<(), ComputeError> {
        for import in self.imports(engine) {
            if NO_NETWORK.iter().any(|p| import.starts_with(p)) {
                return Err(ComputeError::ForbiddenImport {
                    import,
                    why: "compute jobs have no network",
                });
            }
            if !ALLOWED.iter().any(|p| import.starts_with(p)) {
                return Err(ComputeError::ForbiddenImport {
                    import,
                    why: "only wasi:cli, wasi:io, wasi:clocks, wasi:random and wasi:filesystem \
                          (with nothing preopened) are provided",
                });
            }
        }
        let exports_run = self
            .component
            .component_type()
            .exports(engine)
            .any(|(name, _)| name.starts_with("wasi:cli/run@"));
        if !exports_run {
            return Err(ComputeError::NotACommand(self.hash.clone()));
        }
        Ok(())
    }
}

impl Sandbox {
    /// An engine with fuel metering and epoch interruption, and the WASI linker.
    pub fn new() -> Result<Self, ComputeError> {
        let mut config = Config::new();
        config
            .consume_fuel(true)
            .epoch_interruption(true)
            .wasm_component_model(true);
        let engine = Engine::new(&config).map_err(|e| ComputeError::Engine(e.to_string()))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| ComputeError::Engine(e.to_string()))?;
        let ticker = Arc::new(Ticker::default());
        ticker.update(|s| s.1 = true);
        {
            let (engine, ticker) = (engine.clone(), ticker.clone());
            std::thread::Builder::new()
                .name("compute-epoch".into())
                .spawn(move || ticker.run(&engine))
                .map_err(|e| ComputeError::Engine(format!("epoch thread: {e}")))?;
        }
        Ok(Self {
            engine,
            linker,
            ticker,
        })
    }

    /// Compiles `bytes` and checks what it imports and exports: a refusal names the reason
    /// before anything runs.
    pub fn load(&self, bytes: &[u8]) -> Result<Algorithm, ComputeError> {
        let component = Component::new(&self.engine, bytes).map_err(|e| {
            let text = format!("{e:#}");
            if wasmparser_says_core_module(bytes) {
                ComputeError::Invalid(format!(
                    "a core WebAssembly module, not a component (componentize it first): {text}"
                ))
            } else {
                ComputeError::Invalid(text)
            }
        })?;
        let algorithm = Algorithm {
            component,
            hash: blake3::hash(bytes).to_hex().to_string(),
        };
        algorithm.check(&self.engine)?;
        Ok(algorithm)
    }

    /// Runs `algorithm` on the file `dataset` (its standard input) with `args`, within
    /// `limits`; `cancel` stops it within one epoch. Blocking: call it on a worker thread.
    pub fn run(
        &self,
        algorithm: &Algorithm,
        dataset: &Path,
        args: &[String],
        limits: Limits,
        cancel: Arc<AtomicBool>,
    ) -> Result<Report, ComputeError> {
        let file = std::fs::File::open(dataset).map_err(|source| ComputeError::Dataset {
            path: dataset.display().to_string(),
            source,
        })?;
        let input = DatasetInput::new(file);
        let output = BoundedOutput::result(limits.output_bytes);
        let stderr = BoundedOutput::diagnostics(limits.stderr_bytes);
        let mut argv = vec!["algorithm".to_owned()];
        argv.extend(args.iter().cloned());
        let wasi = WasiCtx::builder()
            .stdin(input.clone())
            .stdout(output.clone())
            .stderr(stderr.clone())
            .args(&argv)
            // Deterministic where the algorithm is: the same pseudo-random stream each run.
            .insecure_random_seed(0)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let state = JobState {
            wasi,
            table: ResourceTable::new(),
            memory: MemoryLimit {
                limit: limits.memory_bytes,
                peak: 0,
                denied: None,
            },
            stopped: None,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.memory);
        store
            .set_fuel(limits.fuel)
            .map_err(|e| ComputeError::Engine(e.to_string()))?;
        let _running = Running::new(&self.ticker);
        let started = Instant::now();
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut ctx| {
            if cancel.load(Ordering::Relaxed) {
                ctx.data_mut().stopped = Some(StopReason::Cancelled);
                return Ok(UpdateDeadline::Interrupt);
            }
            if started.elapsed() > limits.wall {
                ctx.data_mut().stopped = Some(StopReason::WallClock {
                    limit_ms: u64::try_from(limits.wall.as_millis()).unwrap_or(u64::MAX),
                });
                return Ok(UpdateDeadline::Interrupt);
            }
            Ok(UpdateDeadline::Continue(1))
        });
        let outcome = Command::instantiate(&mut store, &algorithm.component, &self.linker)
            .and_then(|command| command.wasi_cli_run().call_run(&mut store));
        let wall = started.elapsed();
        let fuel_left = store.get_fuel().unwrap_or(0);
        let state = store.into_data();
        let usage = Usage {
            fuel: limits.fuel.saturating_sub(fuel_left),
            wall_us: u64::try_from(wall.as_micros()).unwrap_or(u64::MAX),
            peak_memory_bytes: state.memory.peak,
            bytes_read: input.bytes_read(),
            bytes_written: output.written(),
        };
        let stopped = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(())) => Some(StopReason::Exit { code: 1 }),
            Err(e) => stop_reason(&e, &state, &output, limits),
        };
        let stopped = stopped.or_else(|| {
            // A guest that caught the failed write and exited 0 still broke the limit.
            output.overflowed().then_some(StopReason::Output {
                limit: limits.output_bytes,
            })
        });
        Ok(Report {
            output: if stopped.is_none() {
                output.contents()
            } else {
                Vec::new()
            },
            stderr: String::from_utf8_lossy(&stderr.contents()).into_owned(),
            stopped,
            usage,
        })
    }
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").finish_non_exhaustive()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.ticker.update(|s| s.1 = false);
    }
}

/// What a run that returned an error means, most specific first: a limit the host
/// enforced, then the guest's own exit status (`None`: it exited with status 0, which
/// unwinds as an error too), then a trap.
fn stop_reason(
    e: &wasmtime::Error,
    state: &JobState,
    output: &BoundedOutput,
    limits: Limits,
) -> Option<StopReason> {
    if let Some(reason) = &state.stopped {
        return Some(reason.clone());
    }
    if output.overflowed() {
        return Some(StopReason::Output {
            limit: limits.output_bytes,
        });
    }
    if let Some(exit) = e.downcast_ref::<I32Exit>() {
        return (exit.0 != 0).then_some(StopReason::Exit { code: exit.0 });
    }
    if let Some(Trap::OutOfFuel) = e.downcast_ref::<Trap>() {
        return Some(StopReason::Fuel { limit: limits.fuel });
    }
    if let Some(requested) = state.memory.denied {
        return Some(StopReason::Memory {
            requested,
            limit: limits.memory_bytes,
        });
    }
    Some(StopReason::Trap {
        message: format!("{e:#}"),
    })
}

/// Whether `bytes` start like a core module (version 1) rather than a component.
fn wasmparser_says_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0]
}

/// One job's store data.
struct JobState {
    wasi: WasiCtx,
    table: ResourceTable,
    memory: MemoryLimit,
    stopped: Option<StopReason>,
}

impl WasiView for JobState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps linear memory and records the peak and the first growth refused.
struct MemoryLimit {
    limit: u64,
    peak: u64,
    denied: Option<u64>,
}

impl ResourceLimiter for MemoryLimit {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let desired = desired as u64;
        if desired > self.limit {
            self.denied.get_or_insert(desired);
            return Ok(false);
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}
