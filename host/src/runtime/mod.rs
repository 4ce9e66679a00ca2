//! The sandbox: compiled sink → instances that load batches.
//!
//! One [`SinkRuntime`] per run holds the `Engine`, the compiled component and
//! its `InstancePre`, all shared by the workers. Each worker thread creates
//! its own [`SinkInstance`] (a Store plus an instance), reuses it across
//! batches and jobs, and replaces it after a trap, after
//! `store_max_batches` calls or past `store_max_memory`. A ticker thread
//! advances the engine's epoch so a call that runs past its deadline traps.
//!
//! Every limit lives in [`SandboxOptions`], with its default and the flag
//! that sets it.

pub mod bindings;
pub(crate) mod cache;
pub mod contract;
pub mod convert;
pub(crate) mod egress;
pub(crate) mod guard;
pub(crate) mod guest_log;
pub(crate) mod state;
pub(crate) mod tcp;
pub(crate) mod text;

pub use cache::{CacheError, CompileCache, DEFAULT_CAP as DEFAULT_CACHE_CAP};
pub use egress::{AllowedHost, InjectedHeader, Network, SystemNetwork};
pub use guard::{Guarded, LoadCall, STOP_GRACE};
pub use tcp::{AllowedTcp, AllowedTcpError, TcpGrantError, TcpGrants};
pub use text::{MAX_SINK_TEXT, Redactor};

use crate::telemetry::Span;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Store, Trap};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};
use wasmtime_wasi_http::WasiHttpCtx;

use bindings::{ConfigValue, Destination, DestinationPre};
use cache::CacheOutcome;
use egress::{EgressPolicy, HttpStats};
use guest_log::GuestLog;
use state::{HostState, MemoryLimiter};

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

/// What a sink may use and how much. Everything not granted here is
/// invisible to it. `SandboxOptions::default()` has the limits of
/// `catalog` (it is made in `settings`) and grants nothing.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Directories granted read-write (`--dir`). Default: none.
    pub dirs: Vec<DirGrant>,
    /// Environment variables passed in (`--env`). Default: none, not even
    /// the host's.
    pub env: Vec<(String, String)>,
    /// Allowed HTTP origins (`--allow-host`). Default: none.
    pub allowed_hosts: Vec<AllowedHost>,
    /// Addresses the sink may open TCP connections to (`--allow-tcp`,
    /// resolved once when the run starts). Default: none, and no TCP.
    pub tcp: Arc<tcp::TcpGrants>,
    /// Sum of all linear memories of one instance, in bytes
    /// (`--memory-limit`).
    pub memory_limit: usize,
    /// Wall-clock limit of one call (`--call-timeout`); also
    /// caps HTTP connect and response timeouts.
    pub call_timeout: Duration,
    /// Fuel (roughly, wasm instructions) per call (`--fuel`; `None` = unlimited):
    /// a deterministic budget, for tests and replays.
    pub fuel: Option<u64>,
    /// Cap on guest stdout+stderr bytes per instance (`--max-guest-output`).
    pub max_guest_output: u64,
    /// Replace an instance after this many calls (`--store-max-batches`):
    /// linear memory never shrinks, so long-lived instances of
    /// garbage-collected guests creep up.
    pub store_max_batches: u64,
    /// Replace an instance once its memory passes this many bytes
    /// (`--store-max-memory`).
    pub store_max_memory: usize,
    /// Where compiled components are cached (`--cache-dir`); `None` compiles
    /// every time.
    pub cache: Option<CompileCache>,
    /// A header the host adds to allowed HTTP requests (`auth_header`).
    pub inject_header: Option<egress::InjectedHeader>,
    /// The run's secrets, replaced in every text that comes from the sink.
    pub redactor: text::Redactor,
    /// Name lookups and connections of the sink's HTTP requests (the
    /// system's, with `--resolve` answers).
    pub network: Arc<dyn egress::Network>,
    /// The run's stop request: a call still running [`guard::STOP_GRACE`]
    /// after it is set is abandoned.
    pub cancel: crate::stop::Cancel,
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
    /// The sink's `spec()` says something the host refuses (a name that is
    /// not lower snake_case, a bad config key declaration).
    #[error("sink {path} is refused: {message}")]
    Spec {
        /// The component file.
        path: PathBuf,
        /// What was refused.
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

/// How a call ended when it did not return normally. The instance must be
/// replaced after any of these.
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
    /// The call used up its `--fuel`.
    #[error("sink `{sink}` ran out of fuel ({fuel} units per call; raise it with --fuel)")]
    Fuel {
        /// The sink.
        sink: String,
        /// The budget.
        fuel: u64,
    },
    /// The guest overflowed its stack.
    #[error("sink `{sink}` overflowed its stack (infinite recursion?)")]
    StackOverflow {
        /// The sink.
        sink: String,
    },
    /// A stop was requested (Ctrl-C, SIGTERM) and the call did not end
    /// within the grace period; it is abandoned, and its batch is sent again
    /// under the same idempotency key on the next run.
    #[error(
        "stopped while sink `{sink}` was still in a call (waited {waited:?}); its batch is sent again, with the same idempotency key, on the next run"
    )]
    Stopped {
        /// The sink.
        sink: String,
        /// How long the stop waited.
        waited: Duration,
    },
    /// Any other trap: a panic, `unreachable`, an out-of-bounds access.
    #[error("sink `{sink}` trapped: {message}")]
    Trap {
        /// The sink.
        sink: String,
        /// wasmtime's description, with the guest backtrace.
        message: String,
    },
}

/// Run-wide counters of the sandbox.
#[derive(Debug, Default)]
pub struct RuntimeStats {
    /// HTTP counters.
    pub http: Arc<HttpStats>,
    /// Most memory one instance used, in bytes.
    pub peak_memory: std::sync::atomic::AtomicUsize,
    /// Nanoseconds spent inside guest calls, summed over workers.
    pub guest_nanos: std::sync::atomic::AtomicU64,
    /// Instances created.
    pub instances: std::sync::atomic::AtomicU64,
    /// Fuel burned by calls, when `--fuel` sets a budget.
    pub fuel_consumed: std::sync::atomic::AtomicU64,
    /// Config keys the sink asked for and got a value of.
    pub keys_read: Arc<Mutex<std::collections::BTreeSet<String>>>,
}

/// A compiled sink, shared by all workers of a run.
pub struct SinkRuntime {
    engine: Engine,
    pre: DestinationPre<HostState>,
    sandbox: SandboxOptions,
    config: Arc<BTreeMap<String, ConfigValue>>,
    name: String,
    spec: Option<bindings::SinkSpec>,
    compiled: CacheOutcome,
    stats: Arc<RuntimeStats>,
    ticker_stop: Arc<AtomicBool>,
    ticker: Option<JoinHandle<()>>,
}

/// The socket check of a sink with TCP grants: a connect to a granted
/// address and the implicit bind it performs pass; anything else (another
/// address, listening, an explicit bind) is refused, logged and recorded
/// for the batch's error message.
fn tcp_check(
    grants: Arc<tcp::TcpGrants>,
    sink: String,
    denials: Arc<Mutex<Vec<String>>>,
) -> impl Fn(std::net::SocketAddr, SocketAddrUse) -> std::pin::Pin<Box<dyn Future<Output = bool> + Send + Sync>>
+ Send
+ Sync
+ 'static {
    move |addr, use_| {
        let ok = match use_ {
            SocketAddrUse::TcpConnect => grants.allows_connect(addr),
            SocketAddrUse::TcpBind => tcp::is_implicit_bind(addr),
            _ => false,
        };
        if !ok {
            let what = match use_ {
                SocketAddrUse::TcpConnect => format!("TCP connection to {addr}"),
                other => format!("TCP {other:?} on {addr}"),
            };
            let hint = "not granted; grant a database's address with --allow-tcp HOST:PORT or allowed_tcp";
            tracing::warn!(sink = %sink, request = %what, "{hint}");
            if let Ok(mut d) = denials.lock() {
                d.push(format!("{what} ({hint})"));
            }
        }
        Box::pin(async move { ok })
    }
}

/// The engine configuration every run and the compile cache share.
pub fn engine(fuel: bool) -> Result<Engine, wasmtime::Error> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.consume_fuel(fuel);
    Engine::new(&config)
}

impl SinkRuntime {
    /// Compiles (or loads from the cache) the component at `path` and checks
    /// that it implements our world.
    pub fn load(path: &Path, sandbox: SandboxOptions) -> Result<Self, RuntimeError> {
        let load_err = |message: String| RuntimeError::Load { path: path.to_path_buf(), message };
        let engine = engine(sandbox.fuel.is_some()).map_err(|e| load_err(format!("{e:#}")))?;
        let bytes = std::fs::read(path).map_err(|e| load_err(e.to_string()))?;
        check_component_header(&bytes).map_err(load_err)?;
        let (component, compiled) = match &sandbox.cache {
            Some(cache) => cache.load_or_compile(&engine, &bytes).map_err(|e| load_err(format!("{e:#}")))?,
            None => {
                let started = Instant::now();
                let c = Component::new(&engine, &bytes).map_err(|e| load_err(format!("{e:#}")))?;
                let millis = started.elapsed().as_secs_f64() * 1000.0;
                (c, CacheOutcome { hit: false, path: PathBuf::new(), millis })
            }
        };
        let pre = link(&engine, &component)
            .map_err(|e| RuntimeError::World { path: path.to_path_buf(), message: format!("{e:#}") })?;

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
            compiled,
            stats: Arc::new(RuntimeStats::default()),
            ticker_stop,
            ticker: Some(ticker),
        };
        // The name is needed for log prefixes; ask the sink once. (Until
        // then the sink is called `sink`.)
        let spec = rt
            .guarded(None)?
            .spec()
            .map_err(|e| RuntimeError::Spec { path: path.to_path_buf(), message: format!("its spec() failed: {e}") })?;
        crate::names::check_sink_name(&spec.name).map_err(|e| RuntimeError::Spec {
            path: path.to_path_buf(),
            message: format!("{e} (it names the pipeline directory, the config section and log lines)"),
        })?;
        check_config_keys(&spec.config).map_err(|message| RuntimeError::Spec { path: path.to_path_buf(), message })?;
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

    /// The interfaces the component imports (`wasi:http/outgoing-handler@0.2.6`, ...).
    pub fn imports(&self) -> Vec<String> {
        let component = self.pre.instance_pre().component();
        component.component_type().imports(&self.engine).map(|(name, _)| name.to_string()).collect()
    }

    /// How the component was compiled or loaded.
    pub fn compiled(&self) -> &CacheOutcome {
        &self.compiled
    }

    /// Run-wide sandbox counters.
    pub fn stats(&self) -> &RuntimeStats {
        &self.stats
    }

    /// Text from the sink (an error message, a trap), made safe to print
    /// and store: secrets replaced, control characters escaped, cut to a
    /// few KiB (see [`text::sink_text`]).
    pub fn sink_text(&self, raw: &str) -> String {
        text::sink_text(raw, &self.sandbox.redactor)
    }

    /// The sandbox options in force.
    pub fn sandbox(&self) -> &SandboxOptions {
        &self.sandbox
    }

    /// The resolved config values the sink may read.
    pub fn config(&self) -> &BTreeMap<String, ConfigValue> {
        &self.config
    }

    /// Sets the resolved config values the sink may read.
    pub fn set_config(&mut self, values: BTreeMap<String, ConfigValue>) {
        self.config = Arc::new(values);
    }

    /// The declared keys that have a value and that the sink has not asked
    /// for yet (keys the host injects as a header are not the sink's).
    pub fn keys_not_read(&self) -> Vec<String> {
        let read = self.stats.keys_read.lock().map(|r| r.clone()).unwrap_or_default();
        self.config.keys().filter(|k| !read.contains(*k)).cloned().collect()
    }

    /// Replaces the sandbox options for instances created from now on (the
    /// engine-level ones, fuel and cache, are fixed at load).
    pub fn set_sandbox(&mut self, sandbox: SandboxOptions) {
        self.sandbox = sandbox;
    }

    /// A new Store and instance. `job_dir` is mounted read-only at
    /// [`JOB_DIR_GUEST`] for whole-file delivery.
    pub fn instance(&self, job_dir: Option<&Path>) -> Result<SinkInstance, RuntimeError> {
        let inst_err = |message: String| RuntimeError::Instantiate { sink: self.name.clone(), message };
        let log = GuestLog::new(&self.name, self.sandbox.max_guest_output, self.sandbox.redactor.clone());
        let denials = Arc::new(Mutex::new(Vec::new()));
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(log.clone()).stderr(log.clone());
        // TCP goes through the check even with nothing granted, so that a
        // refused connection is reported with the flag that grants it.
        wasi.allow_tcp(true).allow_udp(false).allow_ip_name_lookup(false);
        wasi.socket_addr_check(tcp_check(self.sandbox.tcp.clone(), self.name.clone(), denials.clone()));
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
        let trace = Arc::new(Mutex::new(Span::default()));
        let state = HostState {
            wasi: wasi.build(),
            table: wasmtime::component::ResourceTable::new(),
            http: WasiHttpCtx::new(),
            egress: EgressPolicy {
                allowed: Arc::new(self.sandbox.allowed_hosts.clone()),
                sink: self.name.clone(),
                timeout: self.sandbox.call_timeout,
                stats: self.stats.http.clone(),
                denials: denials.clone(),
                inject: self.sandbox.inject_header.clone(),
                network: self.sandbox.network.clone(),
                trace: trace.clone(),
            },
            config: self.config.clone(),
            keys_read: self.stats.keys_read.clone(),
            limiter: MemoryLimiter::new(self.sandbox.memory_limit),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(self.deadline_ticks());
        if let Some(fuel) = self.sandbox.fuel {
            store.set_fuel(fuel).map_err(|e| inst_err(format!("{e:#}")))?;
        }
        let bindings = self.pre.instantiate(&mut store).map_err(|e| inst_err(format!("{e:#}")))?;
        self.stats.instances.fetch_add(1, Ordering::Relaxed);
        Ok(SinkInstance {
            store,
            bindings,
            log,
            sink: self.name.clone(),
            deadline: self.deadline_ticks(),
            sandbox: self.sandbox.clone(),
            stats: self.stats.clone(),
            calls: 0,
            denials,
            trace,
        })
    }

    /// A new instance whose calls run on a thread of their own, bounded
    /// in wall time whatever the sink does (see [`guard`]).
    pub fn guarded(&self, job_dir: Option<&Path>) -> Result<guard::Guarded, RuntimeError> {
        guard::Guarded::start(self.instance(job_dir)?)
            .map_err(|message| RuntimeError::Instantiate { sink: self.name.clone(), message })
    }

    fn deadline_ticks(&self) -> u64 {
        (self.sandbox.call_timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64 + 1
    }
}

/// A WebAssembly component starts with `\0asm` and layer 1 in its
/// header; a core module has layer 0; the text format starts with `(`.
/// Anything else is not a component (wasmtime would try to read it as
/// text, and say so in WAT terms).
fn check_component_header(bytes: &[u8]) -> Result<(), String> {
    // The text format (WAT) is read too, as wasmtime does.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'(') {
        return Ok(());
    }
    match bytes.get(..8) {
        Some([0, b'a', b's', b'm', _, _, 1, 0]) => Ok(()),
        Some([0, b'a', b's', b'm', _, _, 0, 0]) => Err(
            "a core WebAssembly module, not a component: build the sink for wasm32-wasip2 (or with componentize-py / componentize-js)".into(),
        ),
        _ => Err("not a WebAssembly component (its bytes do not start with \\0asm)".into()),
    }
}

/// Checks a sink's config key declarations: each key is a lower
/// snake_case name of at most 64 characters (it becomes part of an
/// environment variable name and a TOML key, and is printed), declared
/// once, not one of the names the host reserves for its own settings, and
/// its default (if any) has the declared kind. Returns what is wrong,
/// naming the key.
pub fn check_config_keys(keys: &[bindings::ConfigKey]) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for key in keys {
        let shown = crate::names::shown(&key.name);
        let valid = !key.name.is_empty()
            && key.name.len() <= crate::names::MAX_SINK_NAME
            && key.name.starts_with(|c: char| c.is_ascii_lowercase())
            && key.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(format!(
                "config key {shown} is not a lower snake_case name of 1 to {} characters (a-z, 0-9, _, starting with a letter)",
                crate::names::MAX_SINK_NAME
            ));
        }
        if crate::catalog::is_host_section_key(&key.name) {
            return Err(format!(
                "config key {shown} is a setting the host reads itself; give the sink's key another name"
            ));
        }
        if !seen.insert(key.name.as_str()) {
            return Err(format!("config key {shown} is declared twice"));
        }
        if let Some(default) = &key.default
            && !default_fits(default, key.value_type)
        {
            return Err(format!("config key {shown} has a default of another kind than it declares"));
        }
    }
    Ok(())
}

/// A default value has its key's declared type.
fn default_fits(value: &ConfigValue, value_type: bindings::ConfigType) -> bool {
    use bindings::ConfigType as T;
    matches!(
        (value, value_type),
        (ConfigValue::String(_), T::String)
            | (ConfigValue::Integer(_), T::Integer)
            | (ConfigValue::Float(_), T::Float)
            | (ConfigValue::Boolean(_), T::Boolean)
    )
}

/// Links WASI, wasi-http and our `config` import, and checks the component
/// exports our world.
fn link(engine: &Engine, component: &Component) -> wasmtime::Result<DestinationPre<HostState>> {
    let mut linker: Linker<HostState> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)?;
    Destination::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |s| s)?;
    DestinationPre::new(linker.instantiate_pre(component)?)
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
    sandbox: SandboxOptions,
    stats: Arc<RuntimeStats>,
    calls: u64,
    denials: Arc<Mutex<Vec<String>>>,
    /// The span of the batch being delivered: the parent of the sink's
    /// HTTP requests.
    trace: Arc<Mutex<Span>>,
}

impl SinkInstance {
    fn before_call(&mut self) -> Result<(), CallError> {
        self.log.start_call();
        self.store.set_epoch_deadline(self.deadline);
        if let Some(fuel) = self.sandbox.fuel {
            self.store
                .set_fuel(fuel)
                .map_err(|e| CallError::Trap { sink: self.sink.clone(), message: format!("{e:#}") })?;
        }
        self.calls += 1;
        Ok(())
    }

    fn after_call(&mut self, started: Instant) {
        self.log.flush();
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.stats.guest_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.stats.peak_memory.fetch_max(self.store.data().limiter.peak, Ordering::Relaxed);
        if let Some(budget) = self.sandbox.fuel
            && let Ok(left) = self.store.get_fuel()
        {
            self.stats.fuel_consumed.fetch_add(budget.saturating_sub(left), Ordering::Relaxed);
        }
    }

    /// Calls the sink's `spec`.
    pub fn spec(&mut self) -> Result<bindings::SinkSpec, CallError> {
        self.before_call()?;
        let started = Instant::now();
        let r = self.bindings.call_spec(&mut self.store);
        self.after_call(started);
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
        self.before_call()?;
        let started = Instant::now();
        let r = self.bindings.call_load(&mut self.store, table, ctx, items);
        self.after_call(started);
        r.map_err(|e| self.classify(e))
    }

    /// HTTP requests the policy refused during the last calls (drained).
    pub fn take_denials(&self) -> Vec<String> {
        self.denials.lock().map(|mut d| std::mem::take(&mut *d)).unwrap_or_default()
    }

    /// True when the instance should be replaced before the next call:
    /// too many calls, or too much memory.
    pub fn worn_out(&self) -> bool {
        self.calls >= self.sandbox.store_max_batches || self.store.data().limiter.used > self.sandbox.store_max_memory
    }

    fn classify(&self, e: wasmtime::Error) -> CallError {
        let sink = self.sink.clone();
        match e.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => return CallError::Timeout { sink, timeout: self.sandbox.call_timeout },
            Some(Trap::OutOfFuel) => return CallError::Fuel { sink, fuel: self.sandbox.fuel.unwrap_or(0) },
            Some(Trap::StackOverflow) => return CallError::StackOverflow { sink },
            _ => {}
        }
        if self.store.data().limiter.hit {
            return CallError::Memory { sink, limit: self.sandbox.memory_limit };
        }
        // The root cause names the trap; the backtrace is for -vv.
        tracing::debug!(sink = %sink, trap = ?e, "sink trapped");
        let mut message = text::sink_text(&e.root_cause().to_string(), &self.sandbox.redactor);
        // A panic or an uncaught exception prints its own words last: they
        // say more than `unreachable`.
        match self.log.last_line() {
            Some(last) => message.push_str(&format!("; the sink's last output line: {last}")),
            None if matches!(e.downcast_ref::<Trap>(), Some(Trap::UnreachableCodeReached)) => {
                message.push_str(" (a panic or an uncaught exception in the sink)")
            }
            None => {}
        }
        CallError::Trap { sink, message }
    }
}
