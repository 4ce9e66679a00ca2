//! Settings and secrets: `.dlt/config.toml`, `.dlt/secrets.toml`, the
//! environment and `--set`, resolved the way dlt users already write them.
//!
//! Precedence, highest first:
//!
//! | source | sink keys (`api_key`, ...) | sink settings (`batch_size`, ...) | load settings (`workers`, ...) |
//! |---|---|---|---|
//! | command line | `--set KEY=VALUE` | the flags | the flags |
//! | environment | `<PIPELINE>__DESTINATION__<NAME>__<KEY>`, then `DESTINATION__<NAME>__<KEY>` | same names | `LOAD__<KEY>` |
//! | `.dlt/secrets.toml` | `[destination.<name>]` | — | — |
//! | `.dlt/config.toml` | `[destination.<name>]`, non-secret keys only | `[destination.<name>]` | `[load]` |
//! | the sink's `spec` | declared default | its values | — |
//!
//! There is deliberately no bare `<KEY>` or `DESTINATION__<KEY>` fallback: a
//! sink that declares `path` must never see the host's `PATH`. Only the keys
//! a sink declares are resolved, and only those reach it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::catalog::{Scope, Setting};
use crate::runtime::bindings::{ConfigKey, ConfigType, ConfigValue};

/// A configuration problem the user must fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A toml file cannot be read or parsed.
    #[error("cannot read {path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A required key has no value anywhere.
    #[error("sink `{sink}` needs `{key}`, which is not set. Looked in (highest first): {places}")]
    Missing {
        /// The sink's name.
        sink: String,
        /// The key.
        key: String,
        /// Every place that was checked.
        places: String,
    },
    /// A secret was found in config.toml.
    #[error(
        "`{key}` is a secret but was found in {path} under [destination.{sink}]; move it to .dlt/secrets.toml (or an environment variable)"
    )]
    SecretInConfig {
        /// The sink's name.
        sink: String,
        /// The key.
        key: String,
        /// The config file.
        path: PathBuf,
    },
    /// A config section (or environment prefix) names a component, and the
    /// sink that claimed it by its name is another file: the section's
    /// settings and secrets serve that component only.
    #[error(
        "sink `{sink}` ({running}) is not the component {source_name} names ({claimed}): {why}. The settings and secrets of [destination.{sink}] serve that component only; run it, or name another destination with --destination, or change `component` there"
    )]
    NotTheSectionsComponent {
        /// The name the running sink gave.
        sink: String,
        /// The running component's path.
        running: String,
        /// What the section names.
        claimed: String,
        /// Where the claim is (`.dlt/config.toml [destination.x]`, `env ...`).
        source_name: String,
        /// Which check failed.
        why: String,
    },
    /// A value does not have the declared type. Secret values are never
    /// printed.
    #[error("{source_name}: expected {expected}, found {found}")]
    Type {
        /// Where the value came from (variable name or toml section).
        source_name: String,
        /// The type wanted.
        expected: String,
        /// The value found (or `<secret>`).
        found: String,
    },
}

/// The destination whose sections and environment names a run reads:
/// `[destination.<name>]`, `<PIPELINE>__DESTINATION__<NAME>__<KEY>`.
#[derive(Debug, Clone, Copy)]
pub struct Destination<'a> {
    /// The pipeline's name.
    pub pipeline: &'a str,
    /// The destination's name (`--destination`, else the sink's).
    pub name: &'a str,
}

/// A raw value before coercion, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Raw {
    /// The value: text from the environment or the command line, or toml.
    pub value: toml::Value,
    /// Where it came from, for messages: `env DESTINATION__X__Y`, `.dlt/config.toml [load]`, ...
    pub source: String,
}

/// The configuration sources of one run.
#[derive(Debug, Clone, Default)]
pub struct ConfigSources {
    config_path: PathBuf,
    secrets_path: PathBuf,
    config: toml::Table,
    secrets: toml::Table,
    env: HashMap<String, String>,
}

impl ConfigSources {
    /// Reads `<project_dir>/.dlt/config.toml` and `secrets.toml` (missing files
    /// are empty) and takes `env` as the environment.
    pub fn load(project_dir: &Path, env: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let config_path = project_dir.join(".dlt/config.toml");
        let secrets_path = project_dir.join(".dlt/secrets.toml");
        Ok(ConfigSources {
            config: read_toml(&config_path)?,
            secrets: read_toml(&secrets_path)?,
            config_path,
            secrets_path,
            env: env.into_iter().collect(),
        })
    }

    fn section<'a>(table: &'a toml::Table, path: &[&str]) -> Option<&'a toml::Table> {
        let mut t = table;
        for part in path {
            t = t.get(*part)?.as_table()?;
        }
        Some(t)
    }

    fn env_names(pipeline: &str, sink: &str, key: &str) -> [String; 2] {
        let up = |s: &str| s.to_ascii_uppercase();
        [
            format!("{}__DESTINATION__{}__{}", up(pipeline), up(sink), up(key)),
            format!("DESTINATION__{}__{}", up(sink), up(key)),
        ]
    }

    fn env_value(&self, names: &[String]) -> Option<Raw> {
        names.iter().find_map(|n| {
            self.env
                .get(n)
                .map(|v| Raw { value: toml::Value::String(v.clone()), source: format!("environment variable {n}") })
        })
    }

    fn toml_value(&self, secrets: bool, section: &[&str], key: &str) -> Option<Raw> {
        let (table, path) =
            if secrets { (&self.secrets, &self.secrets_path) } else { (&self.config, &self.config_path) };
        let v = Self::section(table, section)?.get(key)?;
        Some(Raw { value: v.clone(), source: format!("{} [{}] {key}", path.display(), section.join(".")) })
    }

    /// A sink setting (`batch_size`, ...): environment, then
    /// `[destination.<sink>]` in config.toml. Aliases are tried in order.
    pub fn sink_setting(&self, pipeline: &str, sink: &str, keys: &[&str]) -> Option<Raw> {
        keys.iter().find_map(|key| {
            self.env_value(&Self::env_names(pipeline, sink, key))
                .or_else(|| self.toml_value(false, &["destination", sink], key))
        })
    }

    /// Where `setting` is set outside the command line, by its
    /// [`Scope`]: the environment first, then `.dlt/config.toml`; `None`
    /// when neither sets it. A sink setting needs the `destination` whose
    /// section it reads (`None` here finds nothing).
    pub fn setting(&self, setting: &Setting, destination: Option<&Destination<'_>>) -> Option<Raw> {
        let keys: Vec<&str> = std::iter::once(setting.key).chain(setting.aliases.iter().copied()).collect();
        let up = |k: &str| k.to_ascii_uppercase();
        match setting.scope {
            Scope::Sink => destination.and_then(|d| self.sink_setting(d.pipeline, d.name, &keys)),
            Scope::Load => keys.iter().find_map(|k| {
                self.env_value(&[format!("LOAD__{}", up(k))]).or_else(|| self.toml_value(false, &["load"], k))
            }),
            Scope::DataWriter => keys.iter().find_map(|k| {
                self.env_value(&[format!("DATA_WRITER__{}", up(k))])
                    .or_else(|| self.toml_value(false, &["data_writer"], k))
            }),
            Scope::Flag => None,
        }
    }

    /// The component configured for destination `name`.
    pub fn component(&self, pipeline: &str, name: &str) -> Option<Raw> {
        self.sink_setting(pipeline, name, &["component"])
    }

    /// Proves that `running` is the component the sink's section names,
    /// when it names one: the same file (`component`, relative to
    /// `project_dir`), and, when `component_sha256` is set, the same bytes.
    /// A section that names no component serves any sink of that name (a
    /// documented limit: bind secrets with `component`).
    pub fn check_component_claim(
        &self,
        pipeline: &str,
        sink: &str,
        running: &Path,
        project_dir: &Path,
    ) -> Result<(), ConfigError> {
        let refuse = |claimed: String, source_name: String, why: String| ConfigError::NotTheSectionsComponent {
            sink: sink.to_string(),
            running: running.display().to_string(),
            claimed,
            source_name,
            why,
        };
        if let Some(raw) = self.component(pipeline, sink) {
            let Some(text) = as_text(&raw) else {
                return Err(setting_error(&raw, "a path"));
            };
            let claimed = project_dir.join(&text);
            let same = match (std::fs::canonicalize(&claimed), std::fs::canonicalize(running)) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            };
            if !same {
                return Err(refuse(text, raw.source, "another file".into()));
            }
        }
        if let Some(raw) = self.sink_setting(pipeline, sink, &["component_sha256"]) {
            let Some(want) = as_text(&raw) else {
                return Err(setting_error(&raw, "a SHA-256 in hex"));
            };
            use sha2::Digest as _;
            let bytes = std::fs::read(running)
                .map_err(|e| ConfigError::File { path: running.to_path_buf(), message: e.to_string() })?;
            let got = hex::encode(sha2::Sha256::digest(&bytes));
            if !got.eq_ignore_ascii_case(want.trim()) {
                return Err(refuse(format!("sha256 {want}"), raw.source, format!("its SHA-256 is {got}")));
            }
        }
        Ok(())
    }

    /// Likely typos in the toml files for sink `sink`: a
    /// `[destination.<x>]` section when none is `<sink>` and `<x>` is
    /// within two edits of it (`my-sink` for `my_sink`), and keys in its
    /// section that are neither declared nor host settings (`apikey` for
    /// `api_key`). Each is a message to warn with.
    pub fn typo_warnings(&self, sink: &str, declared: &[ConfigKey], host_keys: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        for (table, path) in [(&self.config, &self.config_path), (&self.secrets, &self.secrets_path)] {
            let Some(destinations) = table.get("destination").and_then(toml::Value::as_table) else { continue };
            match destinations.get(sink).and_then(toml::Value::as_table) {
                Some(section) => {
                    for key in section.keys() {
                        let known = declared.iter().any(|k| &k.name == key) || host_keys.contains(&key.as_str());
                        if !known {
                            let near = declared
                                .iter()
                                .map(|k| k.name.as_str())
                                .chain(host_keys.iter().copied())
                                .find(|k| edit_distance(k, key) <= 2);
                            let hint = near.map(|k| format!("; did you mean `{k}`?")).unwrap_or_default();
                            out.push(format!(
                                "{} [destination.{sink}] {key}: sink `{sink}` declares no such key{hint}",
                                path.display()
                            ));
                        }
                    }
                }
                None => {
                    for other in destinations.keys().filter(|other| edit_distance(other, sink) <= 2) {
                        out.push(format!(
                            "{} has [destination.{other}] but no [destination.{sink}]; did you mean `{sink}`?",
                            path.display()
                        ));
                    }
                }
            }
        }
        out
    }

    /// Resolves every key the sink declared. `cli` holds `--set` values.
    pub fn sink_keys(
        &self,
        pipeline: &str,
        sink: &str,
        declared: &[ConfigKey],
        cli: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, ConfigValue>, ConfigError> {
        let mut out = BTreeMap::new();
        for key in declared {
            let name = key.name.as_str();
            if key.secret && self.toml_value(false, &["destination", sink], name).is_some() {
                return Err(ConfigError::SecretInConfig {
                    sink: sink.to_string(),
                    key: name.to_string(),
                    path: self.config_path.clone(),
                });
            }
            let raw = cli
                .get(name)
                .map(|v| Raw { value: toml::Value::String(v.clone()), source: format!("--set {name}") })
                .or_else(|| self.env_value(&Self::env_names(pipeline, sink, name)))
                .or_else(|| self.toml_value(true, &["destination", sink], name))
                .or_else(|| if key.secret { None } else { self.toml_value(false, &["destination", sink], name) });
            let value = match raw {
                Some(raw) => Some(coerce(&raw, key.value_type, key.secret)?),
                None => key.default.clone(),
            };
            match value {
                Some(v) => {
                    out.insert(name.to_string(), v);
                }
                None if key.required => {
                    let [p, d] = Self::env_names(pipeline, sink, name);
                    let mut places = vec![
                        format!("--set {name}=..."),
                        format!("environment variable {p}"),
                        format!("environment variable {d}"),
                    ];
                    places.push(format!("{} [destination.{sink}] {name}", self.secrets_path.display()));
                    if !key.secret {
                        places.push(format!("{} [destination.{sink}] {name}", self.config_path.display()));
                    }
                    return Err(ConfigError::Missing {
                        sink: sink.to_string(),
                        key: name.to_string(),
                        places: places.join("; "),
                    });
                }
                None => {}
            }
        }
        Ok(out)
    }
}

fn read_toml(path: &Path) -> Result<toml::Table, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => text
            .parse::<toml::Table>()
            .map_err(|e| ConfigError::File { path: path.to_path_buf(), message: e.to_string() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(toml::Table::new()),
        Err(e) => Err(ConfigError::File { path: path.to_path_buf(), message: e.to_string() }),
    }
}

fn type_err(raw: &Raw, expected: &str, secret: bool) -> ConfigError {
    let found = if secret { "<secret>".to_string() } else { raw.value.to_string() };
    ConfigError::Type { source_name: raw.source.clone(), expected: expected.to_string(), found }
}

/// Coerces a raw value to a declared config type.
pub fn coerce(raw: &Raw, to: ConfigType, secret: bool) -> Result<ConfigValue, ConfigError> {
    use toml::Value as T;
    let v = &raw.value;
    Ok(match to {
        ConfigType::String => match v {
            T::String(s) => ConfigValue::String(s.clone()),
            T::Integer(i) => ConfigValue::String(i.to_string()),
            T::Float(f) => ConfigValue::String(f.to_string()),
            T::Boolean(b) => ConfigValue::String(b.to_string()),
            _ => return Err(type_err(raw, "a string", secret)),
        },
        ConfigType::Integer => ConfigValue::Integer(as_i64(raw).ok_or_else(|| type_err(raw, "an integer", secret))?),
        ConfigType::Float => ConfigValue::Float(match v {
            T::Float(f) => *f,
            T::Integer(i) => *i as f64,
            T::String(s) => s.trim().parse().map_err(|_| type_err(raw, "a number", secret))?,
            _ => return Err(type_err(raw, "a number", secret)),
        }),
        ConfigType::Boolean => {
            ConfigValue::Boolean(as_bool(raw).ok_or_else(|| type_err(raw, "true or false", secret))?)
        }
    })
}

/// The raw value as an integer (`7`, `"7"`).
pub fn as_i64(raw: &Raw) -> Option<i64> {
    match &raw.value {
        toml::Value::Integer(i) => Some(*i),
        toml::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The raw value as a bool (`true`, `"True"`, `"1"`, `"no"`).
pub fn as_bool(raw: &Raw) -> Option<bool> {
    match &raw.value {
        toml::Value::Boolean(b) => Some(*b),
        toml::Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Some(true),
            "false" | "0" | "no" | "off" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// The raw value as text (strings as is, numbers and bools printed).
pub fn as_text(raw: &Raw) -> Option<String> {
    match &raw.value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The raw value as a list of strings (a toml array, or comma-separated text).
pub fn as_list(raw: &Raw) -> Option<Vec<String>> {
    match &raw.value {
        toml::Value::Array(items) => items.iter().map(|i| i.as_str().map(str::to_string)).collect(),
        toml::Value::String(s) => Some(s.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect()),
        _ => None,
    }
}

/// The error for a setting whose value has the wrong type.
pub fn setting_error(raw: &Raw, expected: &str) -> ConfigError {
    type_err(raw, expected, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog;

    fn key(name: &str, t: ConfigType, secret: bool, required: bool, default: Option<ConfigValue>) -> ConfigKey {
        ConfigKey { name: name.into(), value_type: t, secret, required, default }
    }

    fn sources(config: &str, secrets: &str, env: &[(&str, &str)]) -> (tempfile::TempDir, ConfigSources) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join(".dlt")).expect("mkdir");
        std::fs::write(dir.path().join(".dlt/config.toml"), config).expect("write");
        std::fs::write(dir.path().join(".dlt/secrets.toml"), secrets).expect("write");
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let s = ConfigSources::load(dir.path(), env).expect("load");
        (dir, s)
    }

    #[test]
    fn precedence_cli_env_secrets_config_default() {
        let keys = [
            key("api_key", ConfigType::String, true, true, None),
            key("retries", ConfigType::Integer, false, false, Some(ConfigValue::Integer(3))),
            key("url", ConfigType::String, false, true, None),
        ];
        let (_d, s) = sources(
            "[destination.sink]\nurl = \"http://config\"\nretries = 4\n",
            "[destination.sink]\napi_key = \"from-secrets\"\nurl = \"http://secrets\"\n",
            &[("DESTINATION__SINK__RETRIES", "7"), ("P__DESTINATION__SINK__RETRIES", "8")],
        );
        let got = s.sink_keys("p", "sink", &keys, &BTreeMap::new()).expect("resolves");
        assert_eq!(got["api_key"], ConfigValue::String("from-secrets".into()));
        assert_eq!(got["retries"], ConfigValue::Integer(8), "pipeline-scoped env wins");
        assert_eq!(got["url"], ConfigValue::String("http://secrets".into()), "secrets.toml beats config.toml");
        let got = s.sink_keys("other", "sink", &keys, &BTreeMap::new()).expect("resolves");
        assert_eq!(got["retries"], ConfigValue::Integer(7));
        let cli = BTreeMap::from([("retries".to_string(), "9".to_string())]);
        assert_eq!(s.sink_keys("p", "sink", &keys, &cli).expect("resolves")["retries"], ConfigValue::Integer(9));
        let (_d, s) = sources("", "[destination.sink]\napi_key = \"k\"\nurl = \"u\"\n", &[]);
        assert_eq!(s.sink_keys("p", "sink", &keys, &BTreeMap::new()).expect("ok")["retries"], ConfigValue::Integer(3));
    }

    #[test]
    fn missing_key_lists_every_place() {
        let (_d, s) = sources("", "", &[]);
        let err =
            s.sink_keys("pipe", "sink", &[key("api_key", ConfigType::String, true, true, None)], &BTreeMap::new());
        let msg = err.expect_err("missing").to_string();
        for place in [
            "--set api_key",
            "PIPE__DESTINATION__SINK__API_KEY",
            "DESTINATION__SINK__API_KEY",
            "secrets.toml [destination.sink]",
        ] {
            assert!(msg.contains(place), "{msg}");
        }
        assert!(!msg.contains("config.toml"), "a secret is never looked up in config.toml: {msg}");
    }

    #[test]
    fn secret_in_config_is_refused_and_types_are_checked() {
        let (_d, s) = sources("[destination.sink]\napi_key = \"oops\"\n", "", &[]);
        let err = s.sink_keys("p", "sink", &[key("api_key", ConfigType::String, true, true, None)], &BTreeMap::new());
        assert!(err.expect_err("refused").to_string().contains("move it to .dlt/secrets.toml"));
        let (_d, s) = sources("", "", &[("DESTINATION__SINK__PIN", "12a")]);
        let err = s.sink_keys("p", "sink", &[key("pin", ConfigType::Integer, true, true, None)], &BTreeMap::new());
        let msg = err.expect_err("type").to_string();
        assert!(msg.contains("expected an integer") && msg.contains("<secret>") && !msg.contains("12a"), "{msg}");
    }

    #[test]
    fn no_bare_fallbacks() {
        let (_d, s) = sources("", "", &[("PATH", "/usr/bin"), ("DESTINATION__PATH", "/x")]);
        let got = s.sink_keys("p", "sink", &[key("path", ConfigType::String, false, false, None)], &BTreeMap::new());
        assert!(got.expect("ok").is_empty());
    }

    #[test]
    fn settings_and_load_settings() {
        let (_d, s) =
            sources("[destination.sink]\nmax_table_nesting = 2\n[load]\nworkers = 3\n", "", &[("LOAD__WORKERS", "5")]);
        let sink = Destination { pipeline: "p", name: "sink" };
        let raw = s.setting(&catalog::MAX_NESTING_LEVEL, Some(&sink)).expect("alias");
        assert_eq!(as_i64(&raw), Some(2));
        assert_eq!(s.setting(&catalog::MAX_NESTING_LEVEL, None), None, "a sink setting needs its section");
        assert_eq!(s.setting(&catalog::WORKERS, None).and_then(|r| as_i64(&r)), Some(5));
    }
}

/// Levenshtein distance of two short names (in characters).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1).min(row[j] + 1).min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod typo_tests {
    use super::edit_distance;

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("my_sink", "my-sink"), 1);
        assert_eq!(edit_distance("apikey", "api_key"), 1);
        assert_eq!(edit_distance("capture", "print"), 6);
        assert_eq!(edit_distance("", "ab"), 2);
    }
}
