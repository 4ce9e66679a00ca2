//! Every setting of the host, described once: its key, flag, where else it
//! may be set, its type, its default and its help.
//!
//! This table is the only place a default is written. The command line's
//! flags (`cli`), the resolver (`settings`), `LoadOptions::default()`,
//! `SandboxOptions::default()` and the table in docs/configuration.md are
//! all made from it, and tests compare `--help` and that page with it. To
//! add a setting: add a `Setting` here and to [`SETTINGS`], read it in
//! `settings`, and run `UPDATE_DOCS=1 cargo test -p host catalog` to
//! rewrite the docs table.
//!
//! The module sits below every other one: it knows text and TOML values,
//! not the types that use them.

use std::time::Duration;

/// Where a setting may be set besides its flag. Sources are tried in this
/// order: the flag, the environment, `.dlt/config.toml`, (for sink
/// settings) the sink's spec, the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A sink setting: `<PIPELINE>__DESTINATION__<NAME>__<KEY>`, then
    /// `DESTINATION__<NAME>__<KEY>`, then `[destination.<name>]`; the
    /// sink's spec may set it too.
    Sink,
    /// A load setting: `LOAD__<KEY>`, then `[load]`.
    Load,
    /// A job-file setting, with dlt's names: `DATA_WRITER__<KEY>`, then
    /// `[data_writer]`.
    DataWriter,
    /// The command line only.
    Flag,
}

/// The type of a setting's value, and how text becomes that value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A whole number from 0 to `max`.
    Count {
        /// The largest value the setting's field holds.
        max: u64,
    },
    /// Bytes: `1048576`, `64KiB`, `512MiB`, `2GiB` (KB, MB, GB are powers of 1000).
    Size,
    /// `500ms`, `30s`, `5m`, `1h`; a bare number is seconds.
    Duration,
    /// `true` or `false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
    Bool,
    /// One of `names` (case-insensitive), or an alias of one.
    Choice {
        /// The values, the first line of `--help` order.
        names: &'static [&'static str],
        /// `(alias, name)`: other spellings accepted for a name.
        aliases: &'static [(&'static str, &'static str)],
    },
}

/// A setting's value, of its [`Kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    /// A [`Kind::Count`].
    Count(u64),
    /// A [`Kind::Size`] in bytes.
    Size(u64),
    /// A [`Kind::Duration`].
    Duration(Duration),
    /// A [`Kind::Bool`].
    Bool(bool),
    /// A [`Kind::Choice`]: always one of its `names`, never an alias.
    Choice(&'static str),
}

/// The built-in default of a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// This value, written as a user would write it (parsed by the kind).
    Value(&'static str),
    /// No value; the text says what that means (`unlimited`, `no limit`).
    Unset(&'static str),
}

/// One setting of the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The TOML key, and the environment name in upper case.
    pub key: &'static str,
    /// Other keys read for it, after `key` (dlt's spellings).
    pub aliases: &'static [&'static str],
    /// The long flag, without the dashes.
    pub flag: &'static str,
    /// Where else it may be set.
    pub scope: Scope,
    /// Its type.
    pub kind: Kind,
    /// Its value when no source sets it.
    pub default: Builtin,
    /// One or two sentences for `--help` and the docs, without the default.
    pub help: &'static str,
}

const fn count(max: u64) -> Kind {
    Kind::Count { max }
}

/// Rows per call to the sink.
pub const BATCH_SIZE: Setting = Setting {
    key: "batch_size",
    aliases: &[],
    flag: "batch-size",
    scope: Scope::Sink,
    kind: count(u32::MAX as u64),
    default: Builtin::Value("10"),
    help: "Rows per call to the sink; 0 hands over whole job files (dlt's default is 10).",
};

/// The format of job files.
pub const LOADER_FILE_FORMAT: Setting = Setting {
    key: "loader_file_format",
    aliases: &[],
    flag: "loader-file-format",
    scope: Scope::Sink,
    kind: Kind::Choice { names: &["jsonl", "parquet"], aliases: &[("typed-jsonl", "jsonl")] },
    default: Builtin::Value("jsonl"),
    help: "Format of the job files (`typed-jsonl` is accepted for jsonl).",
};

/// How names are normalized.
pub const NAMING_CONVENTION: Setting = Setting {
    key: "naming_convention",
    aliases: &[],
    flag: "naming-convention",
    scope: Scope::Sink,
    kind: Kind::Choice { names: &["direct", "snake_case"], aliases: &[("sql_cs_v1", "snake_case")] },
    default: Builtin::Value("direct"),
    help: "How table and column names are normalized, as dlt's naming conventions.",
};

/// How deep nested objects are flattened.
pub const MAX_NESTING_LEVEL: Setting = Setting {
    key: "max_nesting_level",
    aliases: &["max_table_nesting"],
    flag: "max-nesting-level",
    scope: Scope::Sink,
    kind: count(u32::MAX as u64),
    default: Builtin::Value("0"),
    help: "How deep nested objects are flattened into child tables; 0 keeps them whole as json.",
};

/// Whether `_dlt*` tables and columns are left out.
pub const SKIP_DLT_COLUMNS_AND_TABLES: Setting = Setting {
    key: "skip_dlt_columns_and_tables",
    aliases: &[],
    flag: "skip-dlt-columns-and-tables",
    scope: Scope::Sink,
    kind: Kind::Bool,
    default: Builtin::Value("true"),
    help: "Leave out the `_dlt*` tables and columns.",
};

/// Worker threads.
pub const WORKERS: Setting = Setting {
    key: "workers",
    aliases: &[],
    flag: "workers",
    scope: Scope::Load,
    kind: count(4096),
    default: Builtin::Value("20"),
    help: "Most worker threads, each with its own sink instance (dlt's default is 20); one is started when a job waits and none is free, beyond one per core only while the cores are not all busy.",
};

/// Calls per batch before giving up on `retry` errors.
pub const MAX_ATTEMPTS: Setting = Setting {
    key: "max_attempts",
    aliases: &[],
    flag: "max-attempts",
    scope: Scope::Load,
    kind: count(u32::MAX as u64),
    default: Builtin::Value("5"),
    help: "Calls per batch in one run before giving up on `retry` errors (the run then stops; rerun to resume).",
};

/// The first wait after a `retry` error.
pub const RETRY_BACKOFF: Setting = Setting {
    key: "retry_backoff",
    aliases: &[],
    flag: "retry-backoff",
    scope: Scope::Load,
    kind: Kind::Duration,
    default: Builtin::Value("1s"),
    help: "First wait after a `retry` error; doubles on each attempt, with jitter.",
};

/// The longest wait a sink may ask for.
pub const MAX_RETRY_AFTER: Setting = Setting {
    key: "max_retry_after",
    aliases: &[],
    flag: "max-retry-after",
    scope: Scope::Load,
    kind: Kind::Duration,
    default: Builtin::Value("5m"),
    help: "The longest wait a sink's `retry-after-ms` may ask for; longer requests wait this long.",
};

/// Wall-clock limit of one call.
pub const CALL_TIMEOUT: Setting = Setting {
    key: "call_timeout",
    aliases: &[],
    flag: "call-timeout",
    scope: Scope::Load,
    kind: Kind::Duration,
    default: Builtin::Value("300s"),
    help: "Wall-clock limit of one call to the sink; also caps its HTTP connect and response times.",
};

/// Memory limit of one instance.
pub const MEMORY_LIMIT: Setting = Setting {
    key: "memory_limit",
    aliases: &[],
    flag: "memory-limit",
    scope: Scope::Load,
    kind: Kind::Size,
    default: Builtin::Value("1GiB"),
    help: "Memory limit of one sink instance, summed over its memories.",
};

/// Fuel per call.
pub const FUEL: Setting = Setting {
    key: "fuel",
    aliases: &[],
    flag: "fuel",
    scope: Scope::Load,
    kind: count(u64::MAX),
    default: Builtin::Unset("unlimited"),
    help: "Fuel per call (about one unit per wasm instruction): a deterministic budget.",
};

/// Cap on what a sink may print.
pub const MAX_GUEST_OUTPUT: Setting = Setting {
    key: "max_guest_output",
    aliases: &[],
    flag: "max-guest-output",
    scope: Scope::Load,
    kind: Kind::Size,
    default: Builtin::Value("16MiB"),
    help: "Cap on the bytes a sink instance may print, stdout plus stderr.",
};

/// Calls before an instance is replaced.
pub const STORE_MAX_BATCHES: Setting = Setting {
    key: "store_max_batches",
    aliases: &[],
    flag: "store-max-batches",
    scope: Scope::Load,
    kind: count(u64::MAX),
    default: Builtin::Value("10000"),
    help: "Replace a sink instance after this many calls (linear memory never shrinks).",
};

/// Memory size at which an instance is replaced.
pub const STORE_MAX_MEMORY: Setting = Setting {
    key: "store_max_memory",
    aliases: &[],
    flag: "store-max-memory",
    scope: Scope::Load,
    kind: Kind::Size,
    default: Builtin::Value("256MiB"),
    help: "Replace a sink instance once its memory passes this size.",
};

/// Which jobs run at once.
pub const PARALLELISM_STRATEGY: Setting = Setting {
    key: "parallelism_strategy",
    aliases: &[],
    flag: "strategy",
    scope: Scope::Load,
    kind: Kind::Choice { names: &["parallel", "table-sequential", "sequential"], aliases: &[] },
    default: Builtin::Value("parallel"),
    help: "How jobs run at once: any (`parallel`), one per table (`table-sequential`) or one at a time (`sequential`), as dlt.",
};

/// Loaded packages kept.
pub const KEEP_LOADED_PACKAGES: Setting = Setting {
    key: "keep_loaded_packages",
    aliases: &[],
    flag: "keep-loaded",
    scope: Scope::Load,
    kind: count(u64::MAX),
    default: Builtin::Value("5"),
    help: "Keep this many loaded packages; older ones are deleted, except those with failed jobs.",
};

/// Rows per job file.
pub const FILE_MAX_ITEMS: Setting = Setting {
    key: "file_max_items",
    aliases: &[],
    flag: "file-max-items",
    scope: Scope::DataWriter,
    kind: count(u64::MAX),
    // Large tables load on every worker: 1M rows are 10 jobs. Small ones
    // stay one job (one file, batches in file order).
    default: Builtin::Value("100000"),
    help: "Start a new job file for a table after this many rows, so a large table loads on several workers at once (dlt's `file_max_items`).",
};

/// Bytes per job file.
pub const FILE_MAX_BYTES: Setting = Setting {
    key: "file_max_bytes",
    aliases: &[],
    flag: "file-max-bytes",
    scope: Scope::DataWriter,
    kind: Kind::Size,
    default: Builtin::Unset("no limit"),
    help: "Start a new job file for a table after this many bytes (dlt's `file_max_bytes`).",
};

/// The largest input record.
pub const MAX_RECORD_BYTES: Setting = Setting {
    key: "max_record_bytes",
    aliases: &[],
    flag: "max-record-bytes",
    scope: Scope::Flag,
    kind: Kind::Size,
    default: Builtin::Value("64MiB"),
    help: "The most bytes one input record (a line, an array element) may have; a longer one stops the read, or is skipped and quarantined as its first 4 KiB and its size with --on-bad-line skip.",
};

/// Every setting, in the order of `--help` and the docs.
pub const SETTINGS: [&Setting; 20] = [
    &BATCH_SIZE,
    &LOADER_FILE_FORMAT,
    &NAMING_CONVENTION,
    &MAX_NESTING_LEVEL,
    &SKIP_DLT_COLUMNS_AND_TABLES,
    &FILE_MAX_ITEMS,
    &FILE_MAX_BYTES,
    &WORKERS,
    &PARALLELISM_STRATEGY,
    &MAX_ATTEMPTS,
    &RETRY_BACKOFF,
    &MAX_RETRY_AFTER,
    &CALL_TIMEOUT,
    &MEMORY_LIMIT,
    &FUEL,
    &MAX_GUEST_OUTPUT,
    &STORE_MAX_BATCHES,
    &STORE_MAX_MEMORY,
    &KEEP_LOADED_PACKAGES,
    &MAX_RECORD_BYTES,
];

/// The settings the command line offers to commands that load a sink
/// (`run`, `normalize`, `load`); `--max-record-bytes` belongs to the
/// commands that read input.
pub fn sink_flags() -> impl Iterator<Item = &'static Setting> {
    SETTINGS.into_iter().filter(|s| s.scope != Scope::Flag)
}

/// The settings of reading input, offered by `run` and `normalize`.
pub fn read_flags() -> impl Iterator<Item = &'static Setting> {
    SETTINGS.into_iter().filter(|s| s.scope == Scope::Flag)
}

/// Keys of a sink's config section that the host reads itself, besides
/// the sink settings: a sink may not declare a config key of these names.
pub const SECTION_KEYS: [&str; 5] = ["component", "component_sha256", "allowed_hosts", "allowed_tcp", "auth_header"];

/// The keys of `[destination.<name>]` the host reads itself: the sink
/// settings (with their aliases) and [`SECTION_KEYS`]. No sink may
/// declare a config key of these names.
pub fn host_section_keys() -> Vec<&'static str> {
    let settings = SETTINGS.into_iter().filter(|s| s.scope == Scope::Sink);
    settings.flat_map(|s| std::iter::once(s.key).chain(s.aliases.iter().copied())).chain(SECTION_KEYS).collect()
}

/// True when `key` is one of [`host_section_keys`].
pub fn is_host_section_key(key: &str) -> bool {
    host_section_keys().contains(&key)
}

impl Kind {
    /// What a value of this kind looks like, for error messages.
    pub fn expected(&self) -> String {
        match self {
            Kind::Count { .. } => "a number".into(),
            Kind::Size => "a size (512MiB, 2GiB)".into(),
            Kind::Duration => "a duration (500ms, 30s, 5m)".into(),
            Kind::Bool => "true or false".into(),
            Kind::Choice { names, .. } => match names.split_last() {
                Some((last, [])) => (*last).to_string(),
                Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                None => "nothing".into(),
            },
        }
    }

    /// Reads a value: text (a flag or an environment variable) or a TOML
    /// value. `None` when it is not a value of this kind.
    pub fn parse(&self, value: &toml::Value) -> Option<Value> {
        match (self, value) {
            (Kind::Count { max }, toml::Value::Integer(i)) => {
                u64::try_from(*i).ok().filter(|n| n <= max).map(Value::Count)
            }
            (Kind::Count { max }, toml::Value::String(s)) => {
                s.trim().parse::<u64>().ok().filter(|n| n <= max).map(Value::Count)
            }
            (Kind::Size, toml::Value::Integer(i)) => u64::try_from(*i).ok().map(Value::Size),
            (Kind::Size, toml::Value::String(s)) => parse_bytes(s).ok().map(|n| Value::Size(n as u64)),
            (Kind::Duration, toml::Value::Integer(i)) => {
                u64::try_from(*i).ok().map(|s| Value::Duration(Duration::from_secs(s)))
            }
            (Kind::Duration, toml::Value::Float(f)) => Duration::try_from_secs_f64(*f).ok().map(Value::Duration),
            (Kind::Duration, toml::Value::String(s)) => parse_duration(s).ok().map(Value::Duration),
            (Kind::Bool, toml::Value::Boolean(b)) => Some(Value::Bool(*b)),
            (Kind::Bool, toml::Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Some(Value::Bool(true)),
                "false" | "0" | "no" | "off" => Some(Value::Bool(false)),
                _ => None,
            },
            (Kind::Choice { names, aliases }, toml::Value::String(s)) => {
                let s = s.trim();
                let alias = aliases.iter().find(|(a, _)| a.eq_ignore_ascii_case(s)).map(|(_, name)| *name);
                let wanted = alias.unwrap_or(s);
                names.iter().find(|n| n.eq_ignore_ascii_case(wanted)).map(|n| Value::Choice(n))
            }
            _ => None,
        }
    }

    /// Reads text from the command line (`parse` of a TOML string).
    pub fn parse_text(&self, text: &str) -> Option<Value> {
        self.parse(&toml::Value::String(text.to_string()))
    }
}

impl Value {
    /// The number of a count or a size.
    pub fn number(self) -> Option<u64> {
        match self {
            Value::Count(n) | Value::Size(n) => Some(n),
            _ => None,
        }
    }
}

impl Setting {
    /// The default as a value; `None` for [`Builtin::Unset`] (and for a
    /// default that does not parse, which `every_default_parses` rules out).
    pub fn default_value(&self) -> Option<Value> {
        match self.default {
            Builtin::Value(text) => self.kind.parse_text(text),
            Builtin::Unset(_) => None,
        }
    }

    /// The default as shown in `--help` and the docs.
    pub fn default_text(&self) -> String {
        let default = match self.default {
            Builtin::Value(text) | Builtin::Unset(text) => text,
        };
        match self.scope {
            Scope::Sink => format!("the sink's, else {default}"),
            _ => default.to_string(),
        }
    }

    /// The environment variables read for it, as shown to users.
    pub fn env_names(&self) -> Vec<String> {
        let up = self.key.to_ascii_uppercase();
        match self.scope {
            Scope::Sink => vec![format!("<PIPELINE>__DESTINATION__<NAME>__{up}"), format!("DESTINATION__<NAME>__{up}")],
            Scope::Load => vec![format!("LOAD__{up}")],
            Scope::DataWriter => vec![format!("DATA_WRITER__{up}")],
            Scope::Flag => Vec::new(),
        }
    }

    /// Where it goes in `.dlt/config.toml`, as shown to users.
    pub fn toml_place(&self) -> Option<String> {
        let section = match self.scope {
            Scope::Sink => "[destination.<name>]",
            Scope::Load => "[load]",
            Scope::DataWriter => "[data_writer]",
            Scope::Flag => return None,
        };
        let keys = std::iter::once(self.key).chain(self.aliases.iter().copied());
        Some(keys.map(|k| format!("`{section} {k}`")).collect::<Vec<_>>().join(" or "))
    }

    /// The flag's help: the sentence and the default (clap adds the choices).
    pub fn help_text(&self) -> String {
        let overrides = if self.scope == Scope::Sink { " Overrides the sink's spec." } else { "" };
        format!("{}{overrides} [default: {}]", self.help, self.default_text())
    }

    /// The value name shown after the flag.
    pub fn value_name(&self) -> &'static str {
        match self.kind {
            Kind::Count { .. } => "N",
            Kind::Size => "SIZE",
            Kind::Duration => "DURATION",
            Kind::Bool => "BOOL",
            Kind::Choice { .. } => "NAME",
        }
    }
}

/// The markdown table of every setting, as docs/configuration.md holds it
/// between its `settings` markers.
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| setting | flag | environment | `.dlt/config.toml` | type | default | meaning |\n|---|---|---|---|---|---|---|\n",
    );
    for s in SETTINGS {
        let env = s.env_names().iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", then ");
        let kind = match s.kind {
            Kind::Choice { names, .. } => names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "),
            other => other.expected(),
        };
        out.push_str(&format!(
            "| `{}` | `--{}` | {} | {} | {kind} | {} | {} |\n",
            s.key,
            s.flag,
            if env.is_empty() { "—".to_string() } else { env },
            s.toml_place().unwrap_or_else(|| "—".into()),
            s.default_text(),
            s.help.replace('|', "\\|"),
        ));
    }
    out
}

/// Parses `<n>ms`, `<n>s`, `<n>m`, `<n>h`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("`{s}` is not a duration (examples: 500ms, 30s, 5m)"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        other => return Err(format!("unknown duration unit `{other}` (use ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("`{s}` is too long a duration"))
}

/// Parses a byte size: `1048576`, `64KiB`, `512MiB`, `2GiB` (also KB/MB/GB, as powers of 1000).
pub fn parse_bytes(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: usize = num.parse().map_err(|_| format!("`{s}` is not a size (examples: 512MiB, 2GiB)"))?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "k" => 1 << 10,
        "mib" | "m" => 1 << 20,
        "gib" | "g" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        other => return Err(format!("unknown size unit `{other}` (use KiB, MiB or GiB)")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("`{s}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("3 weeks").is_err());
        assert_eq!(parse_bytes("64MiB"), Ok(64 << 20));
        assert_eq!(parse_bytes("1000"), Ok(1000));
        assert!(parse_bytes("lots").is_err());
    }

    #[test]
    fn every_default_parses_and_keys_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        let mut flags = std::collections::BTreeSet::new();
        for s in SETTINGS {
            if let Builtin::Value(text) = s.default {
                assert!(s.kind.parse_text(text).is_some(), "{}: default `{text}` is not {}", s.key, s.kind.expected());
            }
            for name in std::iter::once(s.key).chain(s.aliases.iter().copied()) {
                assert!(seen.insert(name), "{name} twice");
            }
            assert!(flags.insert(s.flag), "flag {} twice", s.flag);
        }
    }

    #[test]
    fn kinds_read_text_and_toml_alike() {
        let n = count(10);
        assert_eq!(n.parse_text(" 7 "), Some(Value::Count(7)));
        assert_eq!(n.parse(&toml::Value::Integer(7)), Some(Value::Count(7)));
        assert_eq!(n.parse_text("11"), None, "above max");
        assert_eq!(n.parse(&toml::Value::Integer(-1)), None);
        assert_eq!(Kind::Size.parse_text("2KiB"), Some(Value::Size(2048)));
        assert_eq!(Kind::Size.parse(&toml::Value::Integer(5)), Some(Value::Size(5)));
        assert_eq!(Kind::Duration.parse(&toml::Value::Integer(3)), Some(Value::Duration(Duration::from_secs(3))));
        assert_eq!(Kind::Duration.parse_text("250ms"), Some(Value::Duration(Duration::from_millis(250))));
        assert_eq!(Kind::Bool.parse_text("No"), Some(Value::Bool(false)));
        assert_eq!(Kind::Bool.parse(&toml::Value::Boolean(true)), Some(Value::Bool(true)));
        let format = LOADER_FILE_FORMAT.kind;
        assert_eq!(format.parse_text("Parquet"), Some(Value::Choice("parquet")));
        assert_eq!(format.parse_text("typed-jsonl"), Some(Value::Choice("jsonl")));
        assert_eq!(format.parse_text("csv"), None);
        assert_eq!(format.expected(), "jsonl or parquet");
        assert_eq!(PARALLELISM_STRATEGY.kind.expected(), "parallel, table-sequential or sequential");
    }

    #[test]
    fn host_section_keys_cover_sink_settings_and_aliases() {
        for key in ["batch_size", "max_table_nesting", "component", "auth_header", "skip_dlt_columns_and_tables"] {
            assert!(is_host_section_key(key), "{key}");
        }
        assert!(!is_host_section_key("api_key"));
        assert!(!is_host_section_key("workers"), "a load setting lives in [load]");
    }

    /// docs/configuration.md holds `markdown_table()` between its markers;
    /// `UPDATE_DOCS=1` rewrites it.
    #[test]
    fn the_docs_table_is_the_catalog() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
        let doc = std::fs::read_to_string(&path).expect("read docs/configuration.md");
        let (begin, end) = ("<!-- settings: begin -->\n", "<!-- settings: end -->");
        let start = doc.find(begin).expect("begin marker") + begin.len();
        let stop = doc.find(end).expect("end marker");
        let table = markdown_table();
        if std::env::var_os("UPDATE_DOCS").is_some() {
            let updated = format!("{}{table}{}", &doc[..start], &doc[stop..]);
            std::fs::write(&path, updated).expect("write docs");
            return;
        }
        assert_eq!(
            doc[start..stop],
            table,
            "docs/configuration.md disagrees with catalog.rs; run UPDATE_DOCS=1 cargo test -p host catalog"
        );
    }
}
