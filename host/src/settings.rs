//! Every setting of a run, resolved once into the typed options each layer
//! takes: the command line's values, then the environment, then
//! `.dlt/config.toml`, then (for sink settings) the sink's spec, then the
//! defaults of [`crate::catalog`].
//!
//! The command line only collects text ([`FlagValues`]: parsed without
//! effects, as ripgrep's low-level arguments); [`Resolver`] does the rest,
//! one generic lookup for every setting. `LoadOptions::default()` and
//! `SandboxOptions::default()` are this resolution with no sources, so a
//! default is written only in the catalog.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::catalog::{self, Setting, Value};
use crate::config::{self, ConfigError, ConfigSources, Destination, Raw};
use crate::input::RecordLimit;
use crate::load::{LoadOptions, Strategy};
use crate::normalize::{NamingConvention, NormalizeSettings};
use crate::package::FileFormat;
use crate::package::Rotation;
use crate::runtime::bindings::{ItemFormat, SinkSpec};
use crate::runtime::{SandboxOptions, egress, text};
use crate::stop::Cancel;

/// Settings in force for a run's sink.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkSettings {
    /// Rows per call; 0 = whole job files.
    pub batch_size: u32,
    /// Format of job files.
    pub loader_file_format: FileFormat,
    /// How rows are normalized.
    pub normalize: NormalizeSettings,
    /// Byte cap per batch (the sink's spec only).
    pub max_batch_bytes: Option<u64>,
    /// Typed rows or Arrow IPC (the sink's spec only).
    pub item_format: ItemFormat,
}

/// The values given on the command line, by setting key, as typed: text
/// that only the resolver turns into values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagValues(BTreeMap<&'static str, String>);

impl FlagValues {
    /// Records `text` as the command line's value of `setting`.
    pub fn set(&mut self, setting: &Setting, text: impl Into<String>) {
        self.0.insert(setting.key, text.into());
    }

    fn get(&self, setting: &Setting) -> Option<&str> {
        self.0.get(setting.key).map(String::as_str)
    }
}

/// Looks settings up in a run's sources, highest first. Cheap to make;
/// nothing is read until a setting is asked for.
#[derive(Debug, Clone, Default)]
pub struct Resolver<'a> {
    flags: Option<&'a FlagValues>,
    sources: Option<&'a ConfigSources>,
    destination: Option<Destination<'a>>,
    spec: BTreeMap<&'static str, toml::Value>,
}

/// The message of the `expect`s on built-in defaults, which
/// `catalog::tests::every_default_parses_and_keys_are_unique` pins.
const BUILT_IN: &str = "the catalog's defaults parse (catalog::tests)";

impl<'a> Resolver<'a> {
    /// The defaults alone.
    pub fn built_in() -> Self {
        Resolver::default()
    }

    /// Flags over the environment and config files.
    pub fn new(flags: &'a FlagValues, sources: &'a ConfigSources) -> Self {
        Resolver { flags: Some(flags), sources: Some(sources), ..Resolver::default() }
    }

    /// Adds the sink's section (`[destination.<name>]` and its environment
    /// names) and its spec, for the sink settings.
    pub fn with_sink(mut self, destination: Destination<'a>, spec: &SinkSpec) -> Self {
        self.destination = Some(destination);
        self.spec = spec_values(spec);
        self
    }

    /// The first source that sets `setting`, with where it came from.
    pub fn raw(&self, setting: &Setting) -> Option<Raw> {
        if let Some(text) = self.flags.and_then(|f| f.get(setting)) {
            return Some(Raw { value: toml::Value::String(text.to_string()), source: format!("--{}", setting.flag) });
        }
        if let Some(raw) = self.sources.and_then(|s| s.setting(setting, self.destination.as_ref())) {
            return Some(raw);
        }
        self.spec
            .get(setting.key)
            .map(|v| Raw { value: v.clone(), source: format!("the sink's spec, {}", setting.key) })
    }

    /// The value in force: the first source's, else the default (`None`
    /// when the default is unset). A value of the wrong type is an error
    /// naming its source.
    pub fn value(&self, setting: &Setting) -> Result<Option<Value>, ConfigError> {
        match self.raw(setting) {
            Some(raw) => setting
                .kind
                .parse(&raw.value)
                .map(Some)
                .ok_or_else(|| config::setting_error(&raw, &setting.kind.expected())),
            None => Ok(setting.default_value()),
        }
    }

    /// The value of a setting, converted to the field's type.
    pub fn get_opt<T: FromValue>(&self, setting: &Setting) -> Result<Option<T>, ConfigError> {
        match self.value(setting)? {
            None => Ok(None),
            Some(v) => T::from_value(v).map(Some).ok_or_else(|| ConfigError::Type {
                source_name: self.raw(setting).map_or_else(|| format!("the default of {}", setting.key), |r| r.source),
                expected: setting.kind.expected(),
                found: format!("{v:?}"),
            }),
        }
    }

    /// The value of a setting that has a default.
    pub fn get<T: FromValue>(&self, setting: &Setting) -> Result<T, ConfigError> {
        self.get_opt(setting)?.ok_or_else(|| ConfigError::Type {
            source_name: setting.key.to_string(),
            expected: setting.kind.expected(),
            found: "no value".into(),
        })
    }

    /// The sandbox's limits; no grants (directories, environment, hosts),
    /// no compile cache, the system's network.
    pub fn sandbox(&self) -> Result<SandboxOptions, ConfigError> {
        use catalog::*;
        Ok(SandboxOptions {
            dirs: Vec::new(),
            env: Vec::new(),
            allowed_hosts: Vec::new(),
            tcp: Arc::default(),
            memory_limit: self.get(&MEMORY_LIMIT)?,
            call_timeout: self.get(&CALL_TIMEOUT)?,
            fuel: self.get_opt(&FUEL)?,
            max_guest_output: self.get(&MAX_GUEST_OUTPUT)?,
            store_max_batches: self.get::<u64>(&STORE_MAX_BATCHES)?.max(1),
            store_max_memory: self.get(&STORE_MAX_MEMORY)?,
            cache: None,
            inject_header: None,
            redactor: text::Redactor::default(),
            network: Arc::new(egress::SystemNetwork::default()),
            cancel: Cancel::default(),
        })
    }

    /// The sink's settings: the sink settings and what only its spec says.
    pub fn sink(&self, spec: Option<&SinkSpec>) -> Result<SinkSettings, ConfigError> {
        use catalog::*;
        Ok(SinkSettings {
            batch_size: self.get(&BATCH_SIZE)?,
            loader_file_format: self.get(&LOADER_FILE_FORMAT)?,
            normalize: NormalizeSettings {
                naming_convention: self.get(&NAMING_CONVENTION)?,
                max_nesting_level: self.get(&MAX_NESTING_LEVEL)?,
                skip_dlt_columns_and_tables: self.get(&SKIP_DLT_COLUMNS_AND_TABLES)?,
                schema_hints: Default::default(),
            },
            max_batch_bytes: spec.and_then(|s| s.max_batch_bytes),
            item_format: spec.map_or(ItemFormat::Rows, |s| s.item_format),
        })
    }

    /// How to load, for a sink with `sink`'s settings.
    pub fn load(&self, sink: &SinkSettings) -> Result<LoadOptions, ConfigError> {
        use catalog::*;
        Ok(LoadOptions {
            workers: self.get::<usize>(&WORKERS)?.max(1),
            batch_size: sink.batch_size,
            max_batch_bytes: sink.max_batch_bytes,
            item_format: sink.item_format,
            max_attempts: self.get::<u32>(&MAX_ATTEMPTS)?.max(1),
            backoff: self.get(&RETRY_BACKOFF)?,
            max_retry_after: self.get(&MAX_RETRY_AFTER)?,
            strategy: self.get(&PARALLELISM_STRATEGY)?,
            keep_loaded: self.get(&KEEP_LOADED_PACKAGES)?,
            progress: None,
            cancel: Cancel::default(),
            trace: crate::telemetry::Span::default(),
        })
    }

    /// When job files are cut.
    pub fn rotation(&self) -> Result<Rotation, ConfigError> {
        Ok(Rotation {
            max_items: self.get_opt(&catalog::FILE_MAX_ITEMS)?,
            max_bytes: self.get_opt(&catalog::FILE_MAX_BYTES)?,
        })
    }

    /// The largest input record, in bytes (at least 1).
    pub fn max_record_bytes(&self) -> Result<usize, ConfigError> {
        Ok(self.get::<usize>(&catalog::MAX_RECORD_BYTES)?.max(1))
    }
}

/// The sink settings a spec sets, as TOML values for the resolver.
fn spec_values(spec: &SinkSpec) -> BTreeMap<&'static str, toml::Value> {
    use catalog::*;
    let mut out = BTreeMap::new();
    if let Some(n) = spec.batch_size {
        out.insert(BATCH_SIZE.key, toml::Value::Integer(n.into()));
    }
    if let Some(f) = spec.loader_file_format {
        out.insert(
            LOADER_FILE_FORMAT.key,
            toml::Value::String(crate::runtime::convert::file_format_from(f).extension().into()),
        );
    }
    if let Some(n) = &spec.naming_convention {
        out.insert(NAMING_CONVENTION.key, toml::Value::String(n.clone()));
    }
    if let Some(n) = spec.max_nesting_level {
        out.insert(MAX_NESTING_LEVEL.key, toml::Value::Integer(n.into()));
    }
    if let Some(b) = spec.skip_dlt_columns_and_tables {
        out.insert(SKIP_DLT_COLUMNS_AND_TABLES.key, toml::Value::Boolean(b));
    }
    out
}

/// A field type a setting's [`Value`] converts to.
pub trait FromValue: Sized {
    /// The field's value; `None` when it does not fit.
    fn from_value(v: Value) -> Option<Self>;
}

impl FromValue for u64 {
    fn from_value(v: Value) -> Option<Self> {
        v.number()
    }
}

impl FromValue for u32 {
    fn from_value(v: Value) -> Option<Self> {
        v.number().and_then(|n| u32::try_from(n).ok())
    }
}

impl FromValue for usize {
    fn from_value(v: Value) -> Option<Self> {
        v.number().and_then(|n| usize::try_from(n).ok())
    }
}

impl FromValue for std::time::Duration {
    fn from_value(v: Value) -> Option<Self> {
        match v {
            Value::Duration(d) => Some(d),
            _ => None,
        }
    }
}

impl FromValue for bool {
    fn from_value(v: Value) -> Option<Self> {
        match v {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }
}

impl FromValue for &'static str {
    fn from_value(v: Value) -> Option<Self> {
        match v {
            Value::Choice(name) => Some(name),
            _ => None,
        }
    }
}

impl FromValue for FileFormat {
    fn from_value(v: Value) -> Option<Self> {
        match v {
            Value::Choice("jsonl") => Some(FileFormat::Jsonl),
            Value::Choice("parquet") => Some(FileFormat::Parquet),
            _ => None,
        }
    }
}

impl FromValue for NamingConvention {
    fn from_value(v: Value) -> Option<Self> {
        match v {
            Value::Choice(name) => NamingConvention::parse(name),
            _ => None,
        }
    }
}

impl FromValue for Strategy {
    fn from_value(v: Value) -> Option<Self> {
        match v {
            Value::Choice("parallel") => Some(Strategy::Parallel),
            Value::Choice("table-sequential") => Some(Strategy::TableSequential),
            Value::Choice("sequential") => Some(Strategy::Sequential),
            _ => None,
        }
    }
}

impl Default for LoadOptions {
    /// The catalog's defaults, for a sink whose spec sets nothing.
    fn default() -> Self {
        let r = Resolver::built_in();
        r.sink(None).and_then(|sink| r.load(&sink)).expect(BUILT_IN)
    }
}

impl Default for RecordLimit {
    /// The catalog's limit; an oversized record stops the read.
    fn default() -> Self {
        RecordLimit { max_bytes: Resolver::built_in().max_record_bytes().expect(BUILT_IN), skip: false }
    }
}

impl Default for SandboxOptions {
    /// The catalog's limits, no grants, no compile cache.
    fn default() -> Self {
        Resolver::built_in().sandbox().expect(BUILT_IN)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::runtime::bindings::{ConfigKey, FileFormat as WitFormat};

    fn spec() -> SinkSpec {
        SinkSpec {
            name: "sink".into(),
            batch_size: Some(100),
            loader_file_format: Some(WitFormat::Parquet),
            naming_convention: None,
            max_nesting_level: Some(1),
            skip_dlt_columns_and_tables: None,
            max_batch_bytes: Some(7),
            item_format: ItemFormat::Rows,
            config: Vec::<ConfigKey>::new(),
        }
    }

    fn sources(config: &str, env: &[(&str, &str)]) -> (tempfile::TempDir, ConfigSources) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join(".dlt")).expect("mkdir");
        std::fs::write(dir.path().join(".dlt/config.toml"), config).expect("write");
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let sources = ConfigSources::load(dir.path(), env).expect("load");
        (dir, sources)
    }

    const SINK: Destination<'static> = Destination { pipeline: "orders", name: "sink" };

    #[test]
    fn defaults_come_from_the_catalog() {
        let load = LoadOptions::default();
        assert_eq!((load.workers, load.max_attempts, load.keep_loaded), (20, 5, 5));
        assert_eq!((load.backoff, load.max_retry_after), (Duration::from_secs(1), Duration::from_secs(300)));
        assert_eq!((load.batch_size, load.strategy), (10, Strategy::Parallel));
        let sandbox = SandboxOptions::default();
        assert_eq!((sandbox.memory_limit, sandbox.max_guest_output), (1 << 30, 16 << 20));
        assert_eq!((sandbox.store_max_batches, sandbox.store_max_memory), (10_000, 256 << 20));
        assert_eq!((sandbox.call_timeout, sandbox.fuel), (Duration::from_secs(300), None));
        let sink = Resolver::built_in().sink(None).expect("defaults");
        assert_eq!(sink.loader_file_format, FileFormat::Jsonl);
        assert_eq!(sink.normalize.naming_convention, NamingConvention::Direct);
        assert!(sink.normalize.skip_dlt_columns_and_tables);
        let rotation = Resolver::built_in().rotation().expect("defaults");
        assert_eq!(rotation, Rotation { max_items: Some(100_000), max_bytes: None });
    }

    /// Flag over environment over config.toml over the spec over the default.
    #[test]
    fn precedence_of_every_source() {
        let (_d, src) = sources(
            "[destination.sink]\nbatch_size = 3\nmax_table_nesting = 4\n[load]\nworkers = 3\nretry_backoff = 2\n[data_writer]\nfile_max_bytes = \"1KiB\"\n",
            &[("LOAD__WORKERS", "7"), ("ORDERS__DESTINATION__SINK__BATCH_SIZE", "30")],
        );
        let spec = spec();
        let mut flags = FlagValues::default();
        let r = Resolver::new(&flags, &src).with_sink(SINK, &spec);
        let sink = r.sink(Some(&spec)).expect("resolve");
        assert_eq!(sink.batch_size, 30, "the pipeline's environment name beats config.toml");
        assert_eq!(sink.normalize.max_nesting_level, 4, "config.toml (by dlt's alias) beats the spec");
        assert_eq!(sink.loader_file_format, FileFormat::Parquet, "the spec beats the default");
        assert_eq!(sink.max_batch_bytes, Some(7));
        let load = r.load(&sink).expect("load");
        assert_eq!(load.workers, 7, "LOAD__WORKERS beats [load]");
        assert_eq!(load.backoff, Duration::from_secs(2), "a bare number is seconds");
        assert_eq!(load.max_attempts, 5, "the default");
        assert_eq!(r.rotation().expect("rotation").max_bytes, Some(1024));

        flags.set(&catalog::BATCH_SIZE, "300");
        flags.set(&catalog::WORKERS, "1");
        flags.set(&catalog::LOADER_FILE_FORMAT, "typed-jsonl");
        let r = Resolver::new(&flags, &src).with_sink(SINK, &spec);
        let sink = r.sink(Some(&spec)).expect("resolve");
        assert_eq!((sink.batch_size, sink.loader_file_format), (300, FileFormat::Jsonl), "flags win");
        assert_eq!(r.load(&sink).expect("load").workers, 1);
    }

    #[test]
    fn a_value_of_the_wrong_type_names_its_source() {
        let (_d, src) =
            sources("[load]\nmemory_limit = \"lots\"\n", &[("DESTINATION__SINK__NAMING_CONVENTION", "kebab")]);
        let flags = FlagValues::default();
        let spec = spec();
        let r = Resolver::new(&flags, &src).with_sink(SINK, &spec);
        let err = r.sandbox().expect_err("bad size").to_string();
        assert!(err.contains("config.toml [load] memory_limit: expected a size"), "{err}");
        let err = r.sink(Some(&spec)).expect_err("bad name").to_string();
        assert!(err.contains("DESTINATION__SINK__NAMING_CONVENTION: expected direct or snake_case"), "{err}");
        let mut bad_spec = spec.clone();
        bad_spec.naming_convention = Some("camel".into());
        let (_d, plain) = sources("", &[]);
        let r = Resolver::new(&flags, &plain).with_sink(SINK, &bad_spec);
        assert!(r.value(&catalog::NAMING_CONVENTION).expect_err("spec").to_string().contains("the sink's spec"));
    }

    #[test]
    fn without_a_destination_sink_sections_are_not_read() {
        let (_d, src) = sources("[destination.sink]\nbatch_size = 3\n", &[]);
        let flags = FlagValues::default();
        let r = Resolver::new(&flags, &src);
        assert_eq!(r.sink(None).expect("defaults").batch_size, 10);
    }
}
