//! The sandbox: compiled sink → instances that load batches.
//!
//! One [`SinkRuntime`] per run holds the `Engine`, the compiled component and
//! its `InstancePre`, all shared by the workers. Each worker thread creates
//! its own [`SinkInstance`] (a Store plus an instance), reuses it across
//! batches and jobs, and replaces it after a trap. A ticker thread advances
//! the engine's epoch so a call that runs past its deadline traps.

pub mod bindings;
pub mod convert;
pub mod guest_log;
pub mod state;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Store, Trap};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};
use wasmtime_wasi_http::WasiHttpCtx;

use bindings::{ConfigValue, Destination, DestinationPre};
use guest_log::GuestLog;
use state::{EgressPolicy, HostState, MemoryLimiter};

/// The WIT package and world every sink must implement.
pub const WORLD: &str = "dlthost:destination/destination@0.1.0";

/// How often the epoch ticker advances.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Guest path of the read-only directory holding the job file handed over
/// with batch size 0.
pub const JOB_DIR_GUEST: &str = "/job";

/// A host directory made visible to the guest, read-write (`--dir HOST::GUEST`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirGrant {
    /// Directory on the host.
    pub host: PathBuf,
    /// Where the guest sees it.
    pub guest: String,
}

/// What a sink may use. Everything not granted here is invisible to it.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Directories granted read-write.
    pub dirs: Vec<DirGrant>,
    /// Environment variables passed in (`--env`); no host variable otherwise.
    pub env: Vec<(String, String)>,
    /// Allowed HTTP origins, `scheme://host:port`.
    pub allowed_hosts: Vec<String>,
    /// Sum of all linear memories of one instance, in bytes.
    pub memory_limit: usize,
    /// Wall-clock limit of one call.
    pub call_timeout: Duration,
    /// Cap on guest stdout+stderr bytes per instance.
    pub max_guest_output: u64,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            dirs: Vec::new(),
            env: Vec::new(),
            allowed_hosts: Vec::new(),
            memory_limit: 1 << 30,
            call_timeout: Duration::from_secs(300),
            max_guest_output: 16 << 20,
        }
    }
}

/// Failure to compile or instantiate a sink.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The file could not be read or is not a component.
    #[error("cannot load component {path}: {message}")]
    Load {
        /// The component file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// It is a component, but not one of our world (or an older version).
    #[error(
        "{path} does not implement the sink world {WORLD}: {message} (rebuild the sink against this host's wit/ directory)"
    )]
    World {
        /// The component file.
        path: PathBuf,
        /// What wasmtime found missing.
        message: String,
    },
    /// Instantiating failed (for example a granted directory is missing).
    #[error("cannot start sink `{sink}`: {message}")]
    Instantiate {
        /// The sink's name.
        sink: String,
        /// Why.
        message: String,
    },
}

/// How a call ended when it did not return normally.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The call ran past `--call-timeout`.
    #[error("sink `{sink}` ran past the call timeout of {timeout:?} (raise it with --call-timeout)")]
    Timeout {
        /// The sink.
        sink: String,
        /// The limit.
        timeout: Duration,
    },
    /// The guest tried to grow its memory past `--memory-limit`.
    #[error("sink `{sink}` exceeded the memory limit of {limit} bytes (raise it with --memory-limit)")]
    Memory {
        /// The sink.
        sink: String,
        /// The limit.
        limit: usize,
    },
    /// Any other trap: a panic, stack overflow, unreachable.
    #[error("sink `{sink}` trapped: {message}")]
    Trap {
        /// The sink.
        sink: String,
        /// wasmtime's description, with the guest backtrace.
        message: String,
    },
}

/// A compiled sink, shared by all workers of a run.
pub struct SinkRuntime {
    engine: Engine,
    pre: DestinationPre<HostState>,
    sandbox: SandboxOptions,
    config: Arc<BTreeMap<String, ConfigValue>>,
    name: String,
    spec: Option<bindings::SinkSpec>,
    ticker_stop: Arc<AtomicBool>,
    ticker: Option<JoinHandle<()>>,
}

impl SinkRuntime {
    /// Compiles the component at `path` and checks that it implements our world.
    pub fn load(path: &Path, sandbox: SandboxOptions) -> Result<Self, RuntimeError> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        let load_err = |message: String| RuntimeError::Load { path: path.to_path_buf(), message };
        let engine = Engine::new(&config).map_err(|e| load_err(format!("{e:#}")))?;
        let bytes = std::fs::read(path).map_err(|e| load_err(e.to_string()))?;
        let component = Component::new(&engine, &bytes).map_err(|e| load_err(format!("{e:#}")))?;
        let world_err =
            |e: wasmtime::Error| RuntimeError::World { path: path.to_path_buf(), message: format!("{e:#}") };
        let mut linker: Linker<HostState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(world_err)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker).map_err(world_err)?;
        Destination::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |s| s).map_err(world_err)?;
        let pre = linker.instantiate_pre(&component).map_err(world_err)?;
        let pre = DestinationPre::new(pre).map_err(world_err)?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let engine = engine.clone();
            let stop = ticker_stop.clone();
            std::thread::Builder::new()
                .name("epoch-ticker".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| load_err(format!("cannot start the epoch ticker: {e}")))?
        };
        let mut rt = SinkRuntime {
            engine,
            pre,
            sandbox,
            config: Arc::new(BTreeMap::new()),
            name: String::from("sink"),
            spec: None,
            ticker_stop,
            ticker: Some(ticker),
        };
        // The name is needed for log prefixes; ask the sink once.
        let spec = rt
            .instance(None)?
            .spec()
            .map_err(|e| RuntimeError::Instantiate { sink: rt.name.clone(), message: e.to_string() })?;
        rt.name = spec.name.clone();
        rt.spec = Some(spec);
        Ok(rt)
    }

    /// The sink's name from its spec.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The sink's spec, as its `spec` export returned it.
    pub fn spec(&self) -> Option<&bindings::SinkSpec> {
        self.spec.as_ref()
    }

    /// Sets the resolved config values the sink may read.
    pub fn set_config(&mut self, values: BTreeMap<String, ConfigValue>) {
        self.config = Arc::new(values);
    }

    /// A new Store and instance. `job_dir` is mounted read-only at
    /// [`JOB_DIR_GUEST`] for whole-file delivery.
    pub fn instance(&self, job_dir: Option<&Path>) -> Result<SinkInstance, RuntimeError> {
        let inst_err = |message: String| RuntimeError::Instantiate { sink: self.name.clone(), message };
        let log = GuestLog::new(&self.name, self.sandbox.max_guest_output);
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(log.clone()).stderr(log.clone());
        for (k, v) in &self.sandbox.env {
            wasi.env(k, v);
        }
        for d in &self.sandbox.dirs {
            wasi.preopened_dir(&d.host, &d.guest, FsPerms::ReadWrite)
                .map_err(|e| inst_err(format!("cannot grant {} as {}: {e:#}", d.host.display(), d.guest)))?;
        }
        if let Some(dir) = job_dir {
            wasi.preopened_dir(dir, JOB_DIR_GUEST, FsPerms::ReadOnly)
                .map_err(|e| inst_err(format!("cannot mount the job directory: {e:#}")))?;
        }
        let state = HostState {
            wasi: wasi.build(),
            table: wasmtime::component::ResourceTable::new(),
            http: WasiHttpCtx::new(),
            egress: EgressPolicy {
                allowed: Arc::new(self.sandbox.allowed_hosts.clone()),
                sink: self.name.clone(),
                timeout: self.sandbox.call_timeout,
            },
            config: self.config.clone(),
            limiter: MemoryLimiter::new(self.sandbox.memory_limit),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(self.deadline_ticks());
        store.epoch_deadline_trap();
        let bindings = self.pre.instantiate(&mut store).map_err(|e| inst_err(format!("{e:#}")))?;
        Ok(SinkInstance {
            store,
            bindings,
            log,
            sink: self.name.clone(),
            deadline: self.deadline_ticks(),
            timeout: self.sandbox.call_timeout,
            memory_limit: self.sandbox.memory_limit,
        })
    }

    fn deadline_ticks(&self) -> u64 {
        (self.sandbox.call_timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64 + 1
    }
}

impl Drop for SinkRuntime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
    }
}

/// One Store and instance, owned by one worker thread.
pub struct SinkInstance {
    store: Store<HostState>,
    bindings: Destination,
    log: GuestLog,
    sink: String,
    deadline: u64,
    timeout: Duration,
    memory_limit: usize,
}

impl SinkInstance {
    /// Calls the sink's `spec`.
    pub fn spec(&mut self) -> Result<bindings::SinkSpec, CallError> {
        self.store.set_epoch_deadline(self.deadline);
        let r = self.bindings.call_spec(&mut self.store);
        self.log.flush();
        r.map_err(|e| self.classify(e))
    }

    /// Calls the sink's `load`. The outer error is a trap (the instance must
    /// be replaced); the inner one is the sink's own `sink-error`.
    pub fn load(
        &mut self,
        table: &bindings::TableSchema,
        ctx: &bindings::BatchContext,
        items: &bindings::Items,
    ) -> Result<Result<(), bindings::SinkError>, CallError> {
        self.store.set_epoch_deadline(self.deadline);
        let r = self.bindings.call_load(&mut self.store, table, ctx, items);
        self.log.flush();
        r.map_err(|e| self.classify(e))
    }

    /// Peak bytes of linear memory this instance used.
    pub fn peak_memory(&self) -> usize {
        self.store.data().limiter.peak
    }

    fn classify(&self, e: wasmtime::Error) -> CallError {
        if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            return CallError::Timeout { sink: self.sink.clone(), timeout: self.timeout };
        }
        if self.store.data().limiter.hit {
            return CallError::Memory { sink: self.sink.clone(), limit: self.memory_limit };
        }
        CallError::Trap { sink: self.sink.clone(), message: format!("{e:?}") }
    }
}
