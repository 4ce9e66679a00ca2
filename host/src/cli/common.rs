//! Flags shared by the commands that load (`run`, `load`) and by those that
//! only look at a pipeline (`status`), and the summary printer.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

use super::units::{parse_bytes, parse_duration};
use std::collections::BTreeMap;

use crate::config::{self, ConfigError, ConfigSources, Raw};
use crate::load::{LoadOptions, LoadReport, Strategy};
use crate::normalize::hints::SchemaHints;
use crate::package::writer::Rotation;
use crate::package::{FileFormat, PipelineDir};
use crate::runtime::bindings::ItemFormat;
use crate::runtime::bindings::{ConfigKey, ConfigValue, SinkSpec};
use crate::runtime::cache::{self, CompileCache};
use crate::runtime::egress::AllowedHost;
use crate::runtime::egress::{InjectedHeader, SystemNetwork};
use crate::runtime::text::Redactor;
use crate::runtime::{DirGrant, SandboxOptions, SinkRuntime};
use crate::settings::{self, Overrides, SinkSettings};

/// `--loader-file-format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// JSON Lines (`typed-jsonl` is accepted as an alias).
    #[value(alias = "typed-jsonl")]
    Jsonl,
    /// Apache Parquet.
    Parquet,
}

impl FormatArg {
    fn format(self) -> FileFormat {
        match self {
            FormatArg::Jsonl => FileFormat::Jsonl,
            FormatArg::Parquet => FileFormat::Parquet,
        }
    }
}

/// Where the pipeline lives.
#[derive(Debug, Clone, Args)]
pub struct PipelineArgs {
    /// Pipeline name: the folder holding its schema and packages. Default:
    /// the sink's name (run, normalize, load); for the commands without a
    /// sink, the only pipeline in the pipelines directory.
    #[arg(long, value_name = "NAME")]
    pub pipeline: Option<String>,
    /// Where pipelines live. Default: `$DLTHOST_PIPELINES_DIR`, else the
    /// per-user data directory (`~/.local/share/dlthost/pipelines` on Linux).
    #[arg(long, value_name = "DIR", env = "DLTHOST_PIPELINES_DIR")]
    pub pipelines_dir: Option<PathBuf>,
}

impl PipelineArgs {
    /// Opens an existing pipeline for a command without a sink: the one
    /// `--pipeline` names, else the only one there is. An unknown name, or
    /// several pipelines and no name, is an error that lists them.
    pub fn open_named(&self, command: &str) -> anyhow::Result<PipelineDir> {
        let dir = self.pipelines_dir()?;
        let existing = existing_pipelines(&dir);
        let list = || if existing.is_empty() { "none".to_string() } else { existing.join(", ") };
        let name = match &self.pipeline {
            Some(name) if existing.contains(name) => name.clone(),
            Some(name) => bail!("no pipeline `{name}` in {}; the pipelines there: {}", dir.display(), list()),
            None => match existing.as_slice() {
                [only] => only.clone(),
                [] => bail!("no pipelines in {} yet (pass --pipelines-dir DIR if they are elsewhere)", dir.display()),
                _ => bail!(
                    "{} holds several pipelines; name one: host {command} --pipeline NAME (one of: {})",
                    dir.display(),
                    list()
                ),
            },
        };
        PipelineDir::open(&dir, &name).with_context(|| format!("cannot open pipeline `{name}` in {}", dir.display()))
    }

    /// Opens the pipeline, named `--pipeline` or else `default_name`.
    pub fn open(&self, default_name: &str) -> anyhow::Result<PipelineDir> {
        let dir = self.pipelines_dir()?;
        let name = self.pipeline.as_deref().unwrap_or(default_name);
        PipelineDir::open(&dir, name).with_context(|| format!("cannot open pipeline `{name}` in {}", dir.display()))
    }

    fn pipelines_dir(&self) -> anyhow::Result<PathBuf> {
        Ok(match &self.pipelines_dir {
            Some(d) => d.clone(),
            None => match dirs::data_dir() {
                Some(d) => d.join("dlthost").join("pipelines"),
                None => bail!("no per-user data directory on this system; pass --pipelines-dir DIR"),
            },
        })
    }
}

/// The pipelines in `dir`, by name. A directory whose name this release
/// refuses is never skipped in silence: a warning gives the command that
/// renames it.
fn existing_pipelines(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if !entry.path().join("load").is_dir() {
            continue;
        }
        let raw = entry.file_name().to_string_lossy().into_owned();
        match crate::names::check_component(&raw, "pipeline name") {
            Ok(_) => names.push(raw),
            Err(e) => {
                let fixed: String = raw
                    .trim_start_matches('.')
                    .chars()
                    .map(|c| if c.is_control() || c == '\\' { '_' } else { c })
                    .collect();
                let fixed = if fixed.is_empty() { "pipeline".to_string() } else { fixed };
                tracing::warn!(
                    "{} is not used: {e}. Rename it with: mv {} {}",
                    entry.path().display(),
                    shell_word(&entry.path().display().to_string()),
                    shell_word(&dir.join(fixed).display().to_string())
                );
            }
        }
    }
    names.sort();
    names
}

/// The sink, its sandbox and its settings for this run. Every setting here
/// can also come from the environment or `.dlt/config.toml` (see
/// docs/configuration.md); a flag wins over both.
#[derive(Debug, Clone, Args)]
pub struct SinkArgs {
    /// The sink: a WebAssembly component implementing wit/destination.wit.
    /// Default: `component` under `[destination.<name>]` in config.toml or
    /// `DESTINATION__<NAME>__COMPONENT`, with `--destination NAME`.
    #[arg(long, value_name = "PATH")]
    pub component: Option<PathBuf>,
    /// The destination name: the config section `[destination.<name>]` and
    /// the environment prefix `DESTINATION__<NAME>__`. Default: the sink's own name.
    #[arg(long, value_name = "NAME")]
    pub destination: Option<String>,
    /// The directory holding `.dlt/config.toml` and `.dlt/secrets.toml`.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub project_dir: PathBuf,
    /// Set a sink's config key for this run: KEY=VALUE (beats every other source).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Rows per call to the sink; 0 hands over whole job files. Overrides the sink.
    #[arg(long, value_name = "N")]
    pub batch_size: Option<u32>,
    /// Format of the job files. Overrides the sink.
    #[arg(long, value_name = "FORMAT")]
    pub loader_file_format: Option<FormatArg>,
    /// `direct` or `snake_case`. Overrides the sink.
    #[arg(long, value_name = "NAME")]
    pub naming_convention: Option<String>,
    /// How deep nested objects are flattened (0 keeps them whole as json). Overrides the sink.
    #[arg(long, value_name = "N")]
    pub max_nesting_level: Option<u32>,
    /// Leave out `_dlt*` tables and columns. Overrides the sink.
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
    pub skip_dlt_columns_and_tables: Option<bool>,
    /// Column hints (types JSON cannot express, nullability, keys), TOML:
    /// `[tables.<table>.columns.<column>] data_type = "decimal"`.
    #[arg(long, value_name = "FILE")]
    pub schema_hints: Option<PathBuf>,
    /// Start a new job file for a table after this many rows, so it loads
    /// in parallel (dlt's `file_max_items`) [default: no limit].
    #[arg(long, value_name = "N")]
    pub file_max_items: Option<u64>,
    /// Start a new job file for a table after this many bytes (dlt's
    /// `file_max_bytes`) [default: no limit].
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    pub file_max_bytes: Option<usize>,
    /// Keep this many loaded packages; older ones are deleted, except those
    /// with failed jobs [default: 5].
    #[arg(long, value_name = "N")]
    pub keep_loaded: Option<usize>,
    /// Worker threads, each with its own sink instance [default: 20, as dlt].
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Grant the sink a host directory, read-write: HOST_PATH::GUEST_PATH.
    #[arg(long, value_name = "HOST::GUEST")]
    pub dir: Vec<String>,
    /// Pass an environment variable to the sink: KEY=VALUE, or KEY to copy the host's value.
    #[arg(long, value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
    /// Allow HTTP requests to an origin: scheme://host[:port], `*.` for
    /// subdomains (https://*.example.com). Local addresses must be listed
    /// explicitly (http://127.0.0.1:8080). Adds to `allowed_hosts` in config.
    #[arg(long, value_name = "ORIGIN", value_parser = parse_allowed_host)]
    pub allow_host: Vec<AllowedHost>,
    /// Answer a name's lookup for the sink's HTTP requests with a fixed
    /// address, as curl's --resolve: HOST:PORT:ADDRESS. The address is
    /// checked like any other (a local one needs an --allow-host naming it).
    #[arg(long, value_name = "HOST:PORT:ADDRESS")]
    pub resolve: Vec<String>,
    /// Memory limit of one sink instance, summed over its memories [default: 1GiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    pub memory_limit: Option<usize>,
    /// Wall-clock limit of one call to the sink [default: 300s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub call_timeout: Option<Duration>,
    /// Fuel per call (about one unit per wasm instruction): a deterministic
    /// budget [default: unlimited].
    #[arg(long, value_name = "UNITS")]
    pub fuel: Option<u64>,
    /// Cap on the bytes a sink instance may print, stdout plus stderr [default: 16MiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    pub max_guest_output: Option<usize>,
    /// Replace a sink instance after this many calls [default: 10000].
    #[arg(long, value_name = "N")]
    pub store_max_batches: Option<u64>,
    /// Replace a sink instance once its memory passes this size [default: 256MiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    pub store_max_memory: Option<usize>,
    /// How jobs run at once: `parallel`, `table-sequential` (one job per
    /// table at a time) or `sequential` (one job at a time), as dlt [default: parallel].
    #[arg(long, value_name = "STRATEGY")]
    pub strategy: Option<Strategy>,
    /// Calls per batch in one run before giving up on `retry` errors (the run
    /// then stops; rerun to resume) [default: 5].
    #[arg(long, value_name = "N")]
    pub max_attempts: Option<u32>,
    /// First wait after a `retry` error; doubles on each attempt, with jitter [default: 1s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub retry_backoff: Option<Duration>,
    /// The longest wait a sink's `retry-after-ms` may ask for; longer
    /// requests wait this long [default: 5m].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_retry_after: Option<Duration>,
    /// Where compiled components are cached. Default: the per-user cache
    /// directory (`~/.cache/dlthost/components` on Linux).
    #[arg(long, value_name = "DIR", env = "DLTHOST_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// A dry run (`host normalize`): the sink's spec is read, its keys are
    /// not resolved, so it works before any secret exists.
    #[arg(skip)]
    pub dry_run: bool,
}

/// A loaded sink with its settings.
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
}

/// The system's network with the `--resolve` answers.
fn network_for(entries: &[String]) -> anyhow::Result<SystemNetwork> {
    let mut network = SystemNetwork::default();
    for entry in entries {
        let (key, ip) = SystemNetwork::parse_fixed(entry).map_err(anyhow::Error::msg)?;
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

/// A load setting: the flag, else `LOAD__<KEY>`, else `[load] <key>`, else `default`.
fn load_setting<T>(
    flag: Option<T>,
    sources: &ConfigSources,
    key: &str,
    expected: &str,
    parse: impl Fn(&Raw) -> Option<T>,
    default: T,
) -> Result<T, ConfigError> {
    if let Some(v) = flag {
        return Ok(v);
    }
    match sources.load_setting(key) {
        Some(raw) => parse(&raw).ok_or_else(|| config::setting_error(&raw, expected)),
        None => Ok(default),
    }
}

fn text_parse<T>(f: impl Fn(&str) -> Result<T, String>) -> impl Fn(&Raw) -> Option<T> {
    move |raw| config::as_text(raw).and_then(|t| f(&t).ok())
}

impl SinkArgs {
    /// Reads the config sources, compiles the sink, asks its spec, resolves
    /// every setting and key, and opens the pipeline.
    pub fn open(&self, pipeline_args: &PipelineArgs) -> anyhow::Result<Sink> {
        let sources = ConfigSources::load(&self.project_dir, std::env::vars())?;
        let component = match (&self.component, &self.destination) {
            (Some(path), _) => path.clone(),
            (None, Some(name)) => {
                let pipeline = pipeline_args.pipeline.as_deref().unwrap_or(name);
                match sources.component(pipeline, name).as_ref().and_then(config::as_text) {
                    Some(path) => self.project_dir.join(path),
                    None => bail!(
                        "no component for destination `{name}`: pass --component PATH, or set `component` under [destination.{name}] in .dlt/config.toml, or DESTINATION__{}__COMPONENT",
                        name.to_ascii_uppercase()
                    ),
                }
            }
            (None, None) => {
                bail!("which sink? pass --component PATH (or --destination NAME with a configured component)")
            }
        };

        // Settings that do not depend on the sink's name come first: the
        // engine needs fuel and the cache before the component is compiled.
        let duration = |raw: &Raw| config::as_text(raw).and_then(|t| parse_duration(&t).ok());
        let bytes = |raw: &Raw| match &raw.value {
            toml::Value::Integer(i) => usize::try_from(*i).ok(),
            _ => config::as_text(raw).and_then(|t| parse_bytes(&t).ok()),
        };
        let int = |raw: &Raw| config::as_i64(raw);
        let workers = load_setting(
            self.workers,
            &sources,
            "workers",
            "a number",
            |r| int(r).and_then(|i| usize::try_from(i).ok()),
            20,
        )?;
        let max_attempts = load_setting(
            self.max_attempts,
            &sources,
            "max_attempts",
            "a number",
            |r| int(r).and_then(|i| u32::try_from(i).ok()),
            5,
        )?;
        let retry_backoff = load_setting(
            self.retry_backoff,
            &sources,
            "retry_backoff",
            "a duration (500ms, 2s)",
            duration,
            Duration::from_secs(1),
        )?;
        let max_retry_after = load_setting(
            self.max_retry_after,
            &sources,
            "max_retry_after",
            "a duration (30s, 5m)",
            duration,
            crate::load::MAX_RETRY_AFTER,
        )?;
        let memory_limit =
            load_setting(self.memory_limit, &sources, "memory_limit", "a size (512MiB)", bytes, 1 << 30)?;
        let call_timeout = load_setting(
            self.call_timeout,
            &sources,
            "call_timeout",
            "a duration (30s)",
            duration,
            Duration::from_secs(300),
        )?;
        let fuel = load_setting(
            self.fuel.map(Some),
            &sources,
            "fuel",
            "a number",
            |r| int(r).and_then(|i| u64::try_from(i).ok()).map(Some),
            None,
        )?;
        let max_guest_output =
            load_setting(self.max_guest_output, &sources, "max_guest_output", "a size", bytes, 16 << 20)?;
        let store_max_batches = load_setting(
            self.store_max_batches,
            &sources,
            "store_max_batches",
            "a number",
            |r| int(r).and_then(|i| u64::try_from(i).ok()),
            10_000,
        )?;
        let store_max_memory =
            load_setting(self.store_max_memory, &sources, "store_max_memory", "a size", bytes, 256 << 20)?;
        let strategy = load_setting(
            self.strategy,
            &sources,
            "parallelism_strategy",
            "parallel, table-sequential or sequential",
            text_parse(|t| Strategy::from_str(t, true)),
            Strategy::Parallel,
        )?;

        let mut sandbox = SandboxOptions {
            dirs: self.dir.iter().map(|d| parse_dir(d)).collect::<anyhow::Result<_>>()?,
            env: self.env.iter().map(|e| parse_env(e)).collect(),
            allowed_hosts: self.allow_host.clone(),
            memory_limit,
            call_timeout,
            fuel,
            max_guest_output: max_guest_output as u64,
            store_max_batches: store_max_batches.max(1),
            store_max_memory,
            cache: Some(compile_cache(self.cache_dir.as_deref())),
            inject_header: None,
            redactor: Default::default(),
            network: std::sync::Arc::new(network_for(&self.resolve)?),
        };
        let mut runtime = SinkRuntime::load(&component, sandbox.clone())?;
        let Some(spec) = runtime.spec().cloned() else { bail!("sink returned no spec") };
        let name = self.destination.clone().unwrap_or_else(|| spec.name.clone());
        let pipeline_name = pipeline_args.pipeline.clone().unwrap_or_else(|| name.clone());
        // A sink cannot claim another sink's section by giving its name.
        sources.check_component_claim(&pipeline_name, &name, &component, &self.project_dir)?;

        // Sink settings: flags, then environment and config.toml, then the spec.
        let setting = |keys: &[&str]| sources.sink_setting(&pipeline_name, &name, keys);
        let from_config = Overrides {
            batch_size: match setting(&["batch_size"]) {
                Some(raw) => Some(
                    int(&raw)
                        .and_then(|i| u32::try_from(i).ok())
                        .ok_or_else(|| config::setting_error(&raw, "a number"))?,
                ),
                None => None,
            },
            loader_file_format: match setting(&["loader_file_format"]) {
                Some(raw) => Some(
                    config::as_text(&raw)
                        .and_then(|t| FormatArg::from_str(&t, true).ok())
                        .map(FormatArg::format)
                        .ok_or_else(|| config::setting_error(&raw, "jsonl or parquet"))?,
                ),
                None => None,
            },
            naming_convention: setting(&["naming_convention"]).as_ref().and_then(config::as_text),
            max_nesting_level: match setting(&["max_nesting_level", "max_table_nesting"]) {
                Some(raw) => Some(
                    int(&raw)
                        .and_then(|i| u32::try_from(i).ok())
                        .ok_or_else(|| config::setting_error(&raw, "a number"))?,
                ),
                None => None,
            },
            skip_dlt_columns_and_tables: match setting(&["skip_dlt_columns_and_tables"]) {
                Some(raw) => Some(config::as_bool(&raw).ok_or_else(|| config::setting_error(&raw, "true or false"))?),
                None => None,
            },
        };
        let from_flags = Overrides {
            batch_size: self.batch_size,
            loader_file_format: self.loader_file_format.map(FormatArg::format),
            naming_convention: self.naming_convention.clone(),
            max_nesting_level: self.max_nesting_level,
            skip_dlt_columns_and_tables: self.skip_dlt_columns_and_tables,
        };
        let mut settings = settings::resolve(&spec, &from_flags.or(from_config))?;
        if let Some(path) = &self.schema_hints {
            settings.normalize.schema_hints = SchemaHints::load(path)?;
        }
        if settings.item_format == ItemFormat::ArrowIpc
            && settings.batch_size > 0
            && settings.loader_file_format != FileFormat::Parquet
        {
            bail!(
                "sink `{name}` asks for Arrow IPC batches, which come from parquet job files: add --loader-file-format parquet"
            );
        }

        // The sink's declared keys, and the sandbox parts named by the destination.
        let set: BTreeMap<String, String> = self
            .set
            .iter()
            .map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
            .collect::<Option<_>>()
            .ok_or_else(|| anyhow::anyhow!("--set expects KEY=VALUE"))?;
        for key in set.keys() {
            if !spec.config.iter().any(|k| &k.name == key) {
                bail!("--set {key}: sink `{name}` declares no such key (it declares: {})", declared_names(&spec));
            }
        }
        for warning in sources.typo_warnings(&name, &spec.config, &crate::runtime::HOST_SECTION_KEYS) {
            tracing::warn!("{warning}");
        }
        let mut values = if self.dry_run {
            BTreeMap::new()
        } else {
            sources.sink_keys(&pipeline_name, &name, &spec.config, &set)?
        };
        sandbox.redactor = redactor_for(&name, &spec.config, &values);
        if let Some(raw) = setting(&["allowed_hosts"]) {
            let entries = config::as_list(&raw).ok_or_else(|| config::setting_error(&raw, "a list of origins"))?;
            for e in entries {
                sandbox
                    .allowed_hosts
                    .push(AllowedHost::parse(&e).map_err(|err| anyhow::anyhow!("{}: {err}", raw.source))?);
            }
        }
        if let Some(raw) = setting(&["auth_header"]) {
            let template = config::as_text(&raw).ok_or_else(|| config::setting_error(&raw, "`Name: value`"))?;
            let texts: BTreeMap<String, String> = values.iter().map(|(k, v)| (k.clone(), config_text(v))).collect();
            let (header, used) =
                InjectedHeader::parse(&template, &texts).map_err(|e| anyhow::anyhow!("{}: {e}", raw.source))?;
            // Keys the host injects itself never reach the guest.
            for k in used {
                values.remove(&k);
            }
            sandbox.inject_header = Some(header);
        }
        runtime.set_sandbox(sandbox);
        runtime.set_config(values);

        let load = LoadOptions {
            workers: workers.max(1),
            batch_size: settings.batch_size,
            max_batch_bytes: settings.max_batch_bytes,
            item_format: settings.item_format,
            max_attempts: max_attempts.max(1),
            backoff: retry_backoff,
            max_retry_after,
            strategy,
            progress: None,
            keep_loaded: load_setting(
                self.keep_loaded,
                &sources,
                "keep_loaded_packages",
                "a number",
                |r| int(r).and_then(|i| usize::try_from(i).ok()),
                5,
            )?,
        };
        let pipeline = pipeline_args.open(&pipeline_name)?;
        let writer_setting = |flag: Option<u64>, key: &str| -> Result<Option<u64>, ConfigError> {
            match (flag, sources.data_writer_setting(key)) {
                (Some(v), _) => Ok(Some(v)),
                (None, Some(raw)) => match &raw.value {
                    toml::Value::Integer(i) => Ok(u64::try_from(*i).ok()),
                    _ => config::as_text(&raw)
                        .and_then(|t| parse_bytes(&t).ok())
                        .map(|v| Some(v as u64))
                        .ok_or_else(|| config::setting_error(&raw, "a number")),
                },
                (None, None) => Ok(None),
            }
        };
        let rotation = Rotation {
            max_items: writer_setting(self.file_max_items, "file_max_items")?,
            max_bytes: writer_setting(self.file_max_bytes.map(|b| b as u64), "file_max_bytes")?,
        };
        Ok(Sink { runtime, settings, load, pipeline, rotation })
    }
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

/// The compile cache in `dir`, or the per-user default.
pub fn compile_cache(dir: Option<&Path>) -> CompileCache {
    let dir = dir
        .map(Path::to_path_buf)
        .or_else(CompileCache::default_dir)
        .unwrap_or_else(|| std::env::temp_dir().join("dlthost-components"));
    CompileCache::new(dir, cache::DEFAULT_CAP)
}

fn parse_allowed_host(s: &str) -> Result<AllowedHost, String> {
    AllowedHost::parse(s).map_err(|e| e.to_string())
}

/// `HOST::GUEST` → a directory grant; the host directory must exist.
fn parse_dir(arg: &str) -> anyhow::Result<DirGrant> {
    let Some((host, guest)) = arg.split_once("::") else {
        bail!("--dir {arg}: expected HOST_PATH::GUEST_PATH, e.g. --dir ./out::/out");
    };
    let host = Path::new(host);
    if !host.is_dir() {
        bail!("--dir {arg}: {} is not a directory", host.display());
    }
    Ok(DirGrant { host: host.to_path_buf(), guest: guest.to_string() })
}

/// `KEY=VALUE`, or `KEY` to pass the host's value (empty if unset).
fn parse_env(arg: &str) -> (String, String) {
    match arg.split_once('=') {
        Some((k, v)) => (k.to_string(), v.to_string()),
        None => (arg.to_string(), std::env::var(arg).unwrap_or_default()),
    }
}

/// Prints the human summary of a load on stderr.
pub fn print_summary(sink: &str, report: &LoadReport, pipeline: &PipelineDir, command: &str) {
    let rows = report.rows();
    let rate = if report.elapsed_secs > 0.0 { rows as f64 / report.elapsed_secs } else { 0.0 };
    let terminal: Vec<&crate::load::JobFailure> = report.terminal_failures().collect();
    let stopped: Vec<&crate::load::JobFailure> = report.failures.iter().filter(|f| !f.terminal).collect();
    let tables = |fs: &[&crate::load::JobFailure]| {
        let mut names: Vec<String> = fs.iter().map(|f| format!("`{}`", f.table)).collect();
        names.dedup();
        names.join(", ")
    };
    let left = |fs: &[&crate::load::JobFailure]| fs.iter().map(|f| f.rows_left).sum::<u64>();
    // The first line says what failed, never a success when something did.
    if !terminal.is_empty() {
        eprintln!(
            "FAILED: {} rows of {} were not delivered: {} job{} failed terminally ({rows} other rows were delivered into `{sink}`)",
            left(&terminal),
            tables(&terminal),
            terminal.len(),
            if terminal.len() == 1 { "" } else { "s" },
        );
    } else if !stopped.is_empty() {
        eprintln!(
            "STOPPED: {} rows of {} were not delivered yet: the sink kept asking to retry ({rows} rows were delivered into `{sink}`)",
            left(&stopped),
            tables(&stopped),
        );
    } else if report.interrupted {
        eprintln!("INTERRUPTED: {rows} rows were delivered into `{sink}` before the stop");
    }
    if terminal.is_empty() && stopped.is_empty() && !report.interrupted {
        eprintln!(
            "Loaded {rows} rows into `{sink}` in {:.2}s ({rate:.0} rows/s, {} calls, {} retries)",
            report.elapsed_secs, report.calls, report.retries
        );
    } else {
        eprintln!("  {rows} rows in {:.2}s, {} calls, {} retries", report.elapsed_secs, report.calls, report.retries);
    }
    for (table, t) in &report.tables {
        eprintln!("  {table}: {} rows, {} jobs", t.rows, t.jobs);
    }
    for p in &report.packages_loaded {
        let failed = std::fs::read_to_string(p.join("package_completed.json")).is_ok_and(|s| s.contains("failed"));
        if failed {
            eprintln!("  package with failed jobs (not done): {}", p.display());
        } else {
            eprintln!("  package: {}", p.display());
        }
    }
    if let Some(load_id) = &report.skipped_lines_package {
        // Wherever the package is now: pending, or loaded.
        let file = [pipeline.loaded_dir(), pipeline.normalized_dir()]
            .iter()
            .map(|d| d.join(load_id).join("bad_lines.jsonl"))
            .find(|f| f.is_file());
        if let Some(file) = file {
            let n = report.skipped_lines;
            eprintln!("  skipped {n} malformed line{}, kept in {}", if n == 1 { "" } else { "s" }, file.display());
        }
    }
    for f in report.failures.iter().chain(&report.earlier_failures) {
        let what = if f.terminal { "failed (moved to failed_jobs/)" } else { "stopped" };
        eprintln!(
            "error: job {} of table `{}` {what} at rows {}..{}: {}",
            crate::package::writer::shown_job_id(&f.job_id),
            f.table,
            f.start_row,
            f.start_row + f.row_count,
            f.error
        );
    }
    if !terminal.is_empty() {
        let dir = pipeline.root().parent().map(|d| d.display().to_string()).unwrap_or_default();
        eprintln!("Fix the sink (or its settings), then send the failed jobs again with:");
        let program = std::env::args().next().map(|p| shell_word(&p)).unwrap_or_else(|| "host".into());
        eprintln!(
            "  {program} retry-failed --pipeline {} --pipelines-dir {}",
            shell_word(pipeline.name()),
            shell_word(&dir)
        );
        eprintln!("  {command}");
    } else if report.interrupted {
        eprintln!("Interrupted: every confirmed batch is recorded. Resume with: {command}");
    } else if !report.packages_pending.is_empty() {
        eprintln!("hint: resume where it stopped with: {command}");
    }
}

/// Prints a load's result (JSON on stdout with `--json`, the summary on
/// stderr unless quiet) and returns the exit code. Shared by `run` and `load`.
pub fn finish_load(sink: &str, report: &LoadReport, pipeline: &PipelineDir, json: bool, quiet: bool) -> u8 {
    let code = super::exit_code(report);
    if json {
        match json_summary(report, code) {
            Ok(s) => outln!("{s}"),
            Err(e) => eprintln!("error: cannot print the summary: {e}"),
        }
    }
    if !quiet {
        print_summary(sink, report, pipeline, &this_command());
    }
    code
}

/// The version of the `--json` summary's shape; changes to it are
/// additive, and its fields are documented in docs/json-summary.md.
pub const JSON_SCHEMA_VERSION: u32 = 1;

/// The `--json` summary: the report, its schema version, the exit code and
/// the outcome in one word.
fn json_summary(report: &LoadReport, code: u8) -> serde_json::Result<String> {
    let mut doc = serde_json::to_value(report)?;
    if let Some(fields) = doc.as_object_mut() {
        let outcome = match code {
            0 => "delivered",
            super::EXIT_INTERRUPTED => "interrupted",
            super::EXIT_TERMINAL => "terminal_failures",
            _ => "retryable_failures",
        };
        fields.insert("schema_version".into(), JSON_SCHEMA_VERSION.into());
        fields.insert("exit_code".into(), code.into());
        fields.insert("outcome".into(), outcome.into());
    }
    serde_json::to_string_pretty(&doc)
}

/// `word` quoted for a shell when it needs it.
pub fn shell_word(word: &str) -> String {
    if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c)) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// The command line that was used, for "resume with" hints.
pub fn this_command() -> String {
    std::env::args().map(|a| shell_word(&a)).collect::<Vec<_>>().join(" ")
}
