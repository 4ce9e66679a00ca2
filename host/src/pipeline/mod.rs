//! The library's two operations, for the CLI, the benchmarks and the tests:
//! [`Sink::open`] (settings resolved, the sink compiled and configured,
//! the pipeline opened) and [`run`] (finish pending work, package the
//! input unless it was loaded before, load it).
//!
//! Nothing here prints: what a user should see comes back as values and
//! through an [`Observer`].

mod check;
mod metrics;
mod run;
mod shard;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use check::{CheckOptions, CheckResult, TEST_TABLE_PREFIX, check_sink, render as render_checks};
pub use metrics::MetricsFile;
pub use run::{AlreadyLoaded, DryRun, Mode, Normalized, Observer, RunOutcome, RunRequest, TableRows, load, run};
pub use shard::{INDEX_ENV, Shard, shard_of};

use crate::catalog;
use crate::config::{self, ConfigError, ConfigSources, Destination};
use crate::extract::ExtractError;
use crate::load::{LoadError, LoadOptions};
use crate::normalize::{HintsError, SchemaHints};
use crate::package::Rotation;
use crate::package::{FileFormat, PackageError, PipelineDir};
use crate::runtime::CompileCache;
use crate::runtime::Redactor;
use crate::runtime::bindings::{ConfigKey, ConfigValue, ItemFormat, SinkSpec};
use crate::runtime::{AllowedHost, AllowedTcp, InjectedHeader, SystemNetwork, TcpGrants};
use crate::runtime::{DirGrant, RuntimeError, SandboxOptions, SinkRuntime};
use crate::settings::{FlagValues, Resolver, SinkSettings};
use crate::stop::Cancel;

/// Opening a sink or running a pipeline failed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A setting, key or config file is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The sink cannot be compiled, instantiated or asked for its spec.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The pipeline directory or a package cannot be read or written.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// The schema hints file is wrong.
    #[error(transparent)]
    Hints(#[from] HintsError),
    /// Reading or normalizing the input failed; nothing was packaged.
    #[error(transparent)]
    Extract(#[from] ExtractError),
    /// Normalizing failed (or was stopped) while the package was loaded as
    /// it was written: some rows may have been delivered.
    #[error(
        "{error}\n{rows} rows were delivered before normalizing stopped; package {} stays pending. Rerun the \
         same command (after fixing the input, if it was the cause): the host normalizes the package again, \
         checks that the rows already delivered come out the same, and sends only the rest. `host drop-pending` \
         gives the package up instead",
        package.display()
    )]
    NormalizeStopped {
        /// Why normalizing stopped.
        error: Box<ExtractError>,
        /// The package left pending.
        package: PathBuf,
        /// Rows delivered in this run.
        rows: u64,
    },
    /// An interrupted package could not be normalized again.
    #[error(
        "package {} was interrupted while it was normalized and loaded; normalizing it again failed (nothing of \
         it was sent in this run): {error}. Restore its input files and rerun, or give it up with `host drop-pending`",
        package.display()
    )]
    Resume {
        /// The package.
        package: PathBuf,
        /// Why.
        error: Box<ExtractError>,
    },
    /// Loading failed in a way that is not a job's failure.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The pipeline cannot be opened.
    #[error("cannot open pipeline `{name}` in {dir}")]
    Open {
        /// The pipeline's name.
        name: String,
        /// The pipelines directory.
        dir: PathBuf,
        /// Why.
        source: PackageError,
    },
    /// The request cannot be carried out as asked; the message says what to change.
    #[error("{0}")]
    Usage(String),
}

/// Everything needed to open a sink, as plain values: what the command
/// line (or a test) gives, before anything is read or compiled.
#[derive(Debug, Clone, Default)]
pub struct SinkRequest {
    /// `--component`; else the destination's configured `component`.
    pub component: Option<PathBuf>,
    /// `--destination`; else the sink's own name.
    pub destination: Option<String>,
    /// `--pipeline`; else the destination's name.
    pub pipeline: Option<String>,
    /// Where pipelines live.
    pub pipelines_dir: PathBuf,
    /// The directory holding `.dlt/config.toml` and `.dlt/secrets.toml`.
    pub project_dir: PathBuf,
    /// The environment the config sources read (the process's, in the CLI).
    pub environment: Vec<(String, String)>,
    /// The command line's values of catalog settings.
    pub flags: FlagValues,
    /// `--set KEY=VALUE`: the sink's config keys for this run.
    pub set: BTreeMap<String, String>,
    /// `--schema-hints`.
    pub schema_hints: Option<PathBuf>,
    /// `--dir` grants.
    pub dirs: Vec<DirGrant>,
    /// `--env` values passed to the sink.
    pub env: Vec<(String, String)>,
    /// `--allow-host` origins (config's `allowed_hosts` adds to them).
    pub allowed_hosts: Vec<AllowedHost>,
    /// `--allow-tcp` addresses (config's `allowed_tcp` adds to them).
    pub allowed_tcp: Vec<AllowedTcp>,
    /// `--resolve HOST:PORT:ADDRESS` answers.
    pub resolve: Vec<String>,
    /// The compile cache; `None` compiles every time.
    pub cache: Option<CompileCache>,
    /// A dry run: the sink's keys are not resolved (no secrets needed).
    pub dry_run: bool,
    /// The stop request the sink's calls, its load and its runs obey.
    pub cancel: Cancel,
    /// This process's shard of the input files; its state lives under
    /// `<pipeline>/shards/<INDEX>-of-<COUNT>`.
    pub shard: Option<Shard>,
}

/// An opened sink: compiled, configured, with its settings and pipeline.
pub struct Sink {
    /// The compiled component.
    pub runtime: SinkRuntime,
    /// Settings in force.
    pub settings: SinkSettings,
    /// How to load.
    pub load: LoadOptions,
    /// The pipeline.
    pub pipeline: PipelineDir,
    /// Job file rotation.
    pub rotation: Rotation,
    /// The stop request of [`SinkRequest::cancel`].
    pub cancel: Cancel,
    /// The shard of [`SinkRequest::shard`].
    pub shard: Option<Shard>,
    /// The pipeline's name (a shard's directory has another).
    pub pipeline_name: String,
}

impl Sink {
    /// Reads the config sources, compiles the sink, asks its spec, resolves
    /// every setting and key, and opens the pipeline.
    pub fn open(req: &SinkRequest) -> Result<Sink, PipelineError> {
        let sources = ConfigSources::load(&req.project_dir, req.environment.iter().cloned())?;
        let component = component_path(req, &sources)?;
        // The engine needs the limits before the component is compiled.
        let flags = Resolver::new(&req.flags, &sources);
        let mut sandbox = SandboxOptions {
            dirs: req.dirs.clone(),
            env: req.env.clone(),
            allowed_hosts: req.allowed_hosts.clone(),
            cache: req.cache.clone(),
            network: Arc::new(network_for(&req.resolve)?),
            cancel: req.cancel.clone(),
            ..flags.sandbox()?
        };
        let mut runtime = SinkRuntime::load(&component, sandbox.clone())?;
        let Some(spec) = runtime.spec().cloned() else { return Err(usage("sink returned no spec")) };
        let name = req.destination.clone().unwrap_or_else(|| spec.name.clone());
        let pipeline_name = req.pipeline.clone().unwrap_or_else(|| name.clone());
        let destination = Destination { pipeline: &pipeline_name, name: &name };
        // A sink cannot claim another sink's section by giving its name.
        sources.check_component_claim(&pipeline_name, &name, &component, &req.project_dir)?;

        let resolver = flags.with_sink(destination, &spec);
        let settings = sink_settings(&resolver, &spec, req.schema_hints.as_deref(), &name)?;
        let mut values = sink_keys(req, &sources, &spec, destination)?;
        sandbox.redactor = redactor_for(&name, &spec.config, &values);
        let mut tcp = req.allowed_tcp.clone();
        grant_from_section(&mut sandbox, &mut tcp, &sources, destination, &mut values)?;
        sandbox.tcp = Arc::new(resolve_tcp(&tcp, sandbox.network.as_ref())?);
        runtime.set_sandbox(sandbox);
        runtime.set_config(values);

        let load = LoadOptions { cancel: req.cancel.clone(), ..resolver.load(&settings)? };
        let rotation = resolver.rotation()?;
        let pipeline = open_pipeline(&req.pipelines_dir, &pipeline_name, req.shard)?;
        let (cancel, shard) = (req.cancel.clone(), req.shard);
        Ok(Sink { runtime, settings, load, pipeline, rotation, cancel, shard, pipeline_name })
    }
}

/// The pipeline's directory, or its shard's, after refusing a layout that
/// could send files twice (see [`shard::check_layout`]).
fn open_pipeline(pipelines_dir: &Path, name: &str, shard: Option<Shard>) -> Result<PipelineDir, PipelineError> {
    let opened = |dir: &Path, name: &str| {
        PipelineDir::open(dir, name).map_err(|source| PipelineError::Open {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            source,
        })
    };
    let root = crate::names::safe_join(pipelines_dir, name, "pipeline name").map_err(PackageError::from)?;
    shard::check_layout(&root, shard)?;
    match shard {
        Some(s) => opened(&shard::shard_dir(&root), &s.dir_name()),
        None => opened(pipelines_dir, name),
    }
}

fn usage(message: impl Into<String>) -> PipelineError {
    PipelineError::Usage(message.into())
}

/// `--component`, else the destination's configured `component` (relative
/// to the project directory).
fn component_path(req: &SinkRequest, sources: &ConfigSources) -> Result<PathBuf, PipelineError> {
    match (&req.component, &req.destination) {
        (Some(path), _) => Ok(path.clone()),
        (None, Some(name)) => {
            let pipeline = req.pipeline.as_deref().unwrap_or(name);
            match sources.component(pipeline, name).as_ref().and_then(config::as_text) {
                Some(path) => Ok(req.project_dir.join(path)),
                None => Err(usage(format!(
                    "no component for destination `{name}`: pass --component PATH, or set `component` under [destination.{name}] in .dlt/config.toml, or DESTINATION__{}__COMPONENT",
                    name.to_ascii_uppercase()
                ))),
            }
        }
        (None, None) => {
            Err(usage("which sink? pass --component PATH (or --destination NAME with a configured component)"))
        }
    }
}

/// The sink settings, the schema hints, and the one combination refused.
fn sink_settings(
    resolver: &Resolver<'_>,
    spec: &SinkSpec,
    hints: Option<&Path>,
    name: &str,
) -> Result<SinkSettings, PipelineError> {
    let mut settings = resolver.sink(Some(spec))?;
    if let Some(path) = hints {
        settings.normalize.schema_hints = SchemaHints::load(path)?;
    }
    if settings.item_format == ItemFormat::ArrowIpc
        && settings.batch_size > 0
        && settings.loader_file_format != FileFormat::Parquet
    {
        return Err(usage(format!(
            "sink `{name}` asks for Arrow IPC batches, which come from parquet job files: add --loader-file-format parquet"
        )));
    }
    Ok(settings)
}

/// The sink's declared keys with their values (none in a dry run), after
/// checking `--set` names and warning of likely typos.
fn sink_keys(
    req: &SinkRequest,
    sources: &ConfigSources,
    spec: &SinkSpec,
    destination: Destination<'_>,
) -> Result<BTreeMap<String, ConfigValue>, PipelineError> {
    let name = destination.name;
    for key in req.set.keys() {
        if !spec.config.iter().any(|k| &k.name == key) {
            return Err(usage(format!(
                "--set {key}: sink `{name}` declares no such key (it declares: {})",
                declared_names(spec)
            )));
        }
    }
    for warning in sources.typo_warnings(name, &spec.config, &catalog::host_section_keys()) {
        tracing::warn!("{warning}");
    }
    if req.dry_run {
        return Ok(BTreeMap::new());
    }
    Ok(sources.sink_keys(destination.pipeline, name, &spec.config, &req.set)?)
}

/// The TCP grants, each name resolved once, now: the sink may connect to
/// these addresses for the whole run and to nothing else.
fn resolve_tcp(grants: &[AllowedTcp], network: &dyn crate::runtime::Network) -> Result<TcpGrants, PipelineError> {
    if grants.is_empty() {
        return Ok(TcpGrants::default());
    }
    wasmtime_wasi::runtime::in_tokio(TcpGrants::resolve(grants, network)).map_err(|e| usage(e.to_string()))
}

/// `allowed_hosts`, `allowed_tcp` and `auth_header` of the sink's section.
/// The keys the header uses are taken out of `values`: the host injects
/// them, and the sink never holds them.
fn grant_from_section(
    sandbox: &mut SandboxOptions,
    tcp: &mut Vec<AllowedTcp>,
    sources: &ConfigSources,
    destination: Destination<'_>,
    values: &mut BTreeMap<String, ConfigValue>,
) -> Result<(), PipelineError> {
    let setting = |key: &str| sources.sink_setting(destination.pipeline, destination.name, &[key]);
    if let Some(raw) = setting("allowed_hosts") {
        let entries = config::as_list(&raw).ok_or_else(|| config::setting_error(&raw, "a list of origins"))?;
        for e in entries {
            let host = AllowedHost::parse(&e).map_err(|err| usage(format!("{}: {err}", raw.source)))?;
            sandbox.allowed_hosts.push(host);
        }
    }
    if let Some(raw) = setting("allowed_tcp") {
        let entries = config::as_list(&raw).ok_or_else(|| config::setting_error(&raw, "a list of HOST:PORT"))?;
        for e in entries {
            tcp.push(AllowedTcp::parse(&e).map_err(|err| usage(format!("{}: {err}", raw.source)))?);
        }
    }
    if let Some(raw) = setting("auth_header") {
        let template = config::as_text(&raw).ok_or_else(|| config::setting_error(&raw, "`Name: value`"))?;
        let texts: BTreeMap<String, String> = values.iter().map(|(k, v)| (k.clone(), config_text(v))).collect();
        let (header, used) =
            InjectedHeader::parse(&template, &texts).map_err(|e| usage(format!("{}: {e}", raw.source)))?;
        for k in used {
            values.remove(&k);
        }
        sandbox.inject_header = Some(header);
    }
    Ok(())
}

fn declared_names(spec: &SinkSpec) -> String {
    if spec.config.is_empty() {
        "none".into()
    } else {
        spec.config.iter().map(|k| k.name.as_str()).collect::<Vec<_>>().join(", ")
    }
}

fn config_text(v: &ConfigValue) -> String {
    match v {
        ConfigValue::String(s) => s.clone(),
        ConfigValue::Integer(i) => i.to_string(),
        ConfigValue::Float(f) => f.to_string(),
        ConfigValue::Boolean(b) => b.to_string(),
    }
}

/// The system's network with the `--resolve` answers.
fn network_for(entries: &[String]) -> Result<SystemNetwork, PipelineError> {
    let mut network = SystemNetwork::default();
    for entry in entries {
        let (key, ip) = SystemNetwork::parse_fixed(entry).map_err(usage)?;
        network.fixed.entry(key).or_default().push(ip);
    }
    Ok(network)
}

/// The redactor of a run: every resolved secret that text can carry. A
/// secret that cannot be replaced in text (a number, a boolean, or fewer
/// than 6 bytes) is named in one warning.
fn redactor_for(sink: &str, declared: &[ConfigKey], values: &BTreeMap<String, ConfigValue>) -> Redactor {
    let mut secrets = Vec::new();
    for key in declared.iter().filter(|k| k.secret) {
        let Some(value) = values.get(&key.name) else { continue };
        match value {
            ConfigValue::String(text) if !Redactor::unredactable(text) => secrets.push(text.clone()),
            _ => tracing::warn!(
                "secret `{}` of sink `{sink}` is {}: it cannot be replaced in the sink's messages, so keep it out of them",
                key.name,
                if matches!(value, ConfigValue::String(_)) { "shorter than 6 bytes" } else { "not text" }
            ),
        }
    }
    Redactor::new(secrets)
}
