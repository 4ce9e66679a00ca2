//! `host inspect`: what a sink asks for, before running it.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::common::compile_cache;
use crate::runtime::bindings::{ConfigType, ConfigValue, FileFormat, ItemFormat};
use crate::runtime::{SandboxOptions, SinkRuntime};

/// Arguments of `host inspect`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  host inspect sink.wasm")]
pub struct InspectArgs {
    /// The sink component.
    #[arg(value_name = "COMPONENT")]
    pub component: PathBuf,
    /// Print one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
    /// The compile cache directory.
    #[arg(long, value_name = "DIR", env = "DLTHOST_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

/// A declared key, as printed.
#[derive(Debug, Serialize)]
struct Key {
    name: String,
    r#type: &'static str,
    secret: bool,
    required: bool,
    default: Option<String>,
}

/// What `inspect` prints.
#[derive(Debug, Serialize)]
struct Report {
    name: String,
    batch_size: Option<u32>,
    loader_file_format: Option<&'static str>,
    naming_convention: Option<String>,
    max_nesting_level: Option<u32>,
    skip_dlt_columns_and_tables: Option<bool>,
    max_batch_bytes: Option<u64>,
    item_format: &'static str,
    config: Vec<Key>,
    capabilities: Vec<&'static str>,
    imports: Vec<String>,
}

impl InspectArgs {
    /// Runs the command.
    pub fn execute(self) -> anyhow::Result<u8> {
        let sandbox =
            SandboxOptions { cache: Some(compile_cache(self.cache_dir.as_deref())), ..SandboxOptions::default() };
        let rt = SinkRuntime::load(&self.component, sandbox)?;
        let Some(spec) = rt.spec() else { anyhow::bail!("sink returned no spec") };
        let imports = rt.imports();
        let has = |prefix: &str| imports.iter().any(|i| i.starts_with(prefix));
        let mut capabilities = Vec::new();
        for (prefix, what) in [
            ("wasi:filesystem", "filesystem: nothing unless you grant a directory with --dir"),
            ("wasi:http/outgoing-handler", "HTTP: nothing unless you allow a host with --allow-host / allowed_hosts"),
            ("dlthost:destination/config", "config: its declared keys"),
            ("wasi:cli/environment", "environment: nothing unless you pass variables with --env"),
            (
                "wasi:sockets",
                "TCP: nothing unless you grant an address with --allow-tcp / allowed_tcp; UDP and name lookups: always denied",
            ),
        ] {
            if has(prefix) {
                capabilities.push(what);
            }
        }
        let report = Report {
            name: spec.name.clone(),
            batch_size: spec.batch_size,
            loader_file_format: spec.loader_file_format.map(|f| match f {
                FileFormat::Jsonl => "jsonl",
                FileFormat::Parquet => "parquet",
            }),
            naming_convention: spec.naming_convention.clone(),
            max_nesting_level: spec.max_nesting_level,
            skip_dlt_columns_and_tables: spec.skip_dlt_columns_and_tables,
            max_batch_bytes: spec.max_batch_bytes,
            item_format: match spec.item_format {
                ItemFormat::Rows => "rows",
                ItemFormat::ArrowIpc => "arrow-ipc",
            },
            config: spec
                .config
                .iter()
                .map(|k| Key {
                    name: k.name.clone(),
                    r#type: match k.value_type {
                        ConfigType::String => "string",
                        ConfigType::Integer => "integer",
                        ConfigType::Float => "float",
                        ConfigType::Boolean => "boolean",
                    },
                    secret: k.secret,
                    required: k.required,
                    default: k.default.as_ref().map(|d| match d {
                        ConfigValue::String(s) => format!("{s:?}"),
                        ConfigValue::Integer(i) => i.to_string(),
                        ConfigValue::Float(f) => f.to_string(),
                        ConfigValue::Boolean(b) => b.to_string(),
                    }),
                })
                .collect(),
            capabilities,
            imports,
        };
        if self.json {
            outln!("{}", serde_json::to_string_pretty(&report)?);
            return Ok(0);
        }
        let unset = |o: Option<String>| o.unwrap_or_else(|| "not set (config or dlt's default)".into());
        outln!("sink {}", report.name);
        outln!("  batch size:        {}", unset(report.batch_size.map(|b| b.to_string())));
        outln!("  file format:       {}", unset(report.loader_file_format.map(str::to_string)));
        outln!("  naming convention: {}", unset(report.naming_convention.clone()));
        outln!("  max nesting level: {}", unset(report.max_nesting_level.map(|n| n.to_string())));
        outln!("  skip _dlt columns: {}", unset(report.skip_dlt_columns_and_tables.map(|b| b.to_string())));
        outln!("  items:             {}", report.item_format);
        outln!("config keys:");
        if report.config.is_empty() {
            outln!("  (none)");
        }
        for k in &report.config {
            let mut flags = vec![k.r#type.to_string()];
            if k.secret {
                flags.push("secret".into());
            }
            flags.push(if k.required { "required".into() } else { "optional".into() });
            if let Some(d) = &k.default {
                flags.push(format!("default {d}"));
            }
            outln!("  {} ({})", k.name, flags.join(", "));
        }
        // A component may import an interface its language runtime links
        // without ever using it (componentize-js imports wasi:filesystem):
        // what it can reach is what you grant.
        outln!("interfaces it imports, and what each reaches:");
        for c in &report.capabilities {
            outln!("  {c}");
        }
        Ok(0)
    }
}
