//! `config-probe`: a test sink that declares a few config keys and, on each
//! call, writes everything it can read through the `config` import to
//! `/out/config.json` (then captures the batch as usual). It also asks for
//! keys it did not declare, so tests can check that those stay invisible.

use dlthost_sink::{
    BatchContext, ConfigKey, ConfigType, ConfigValue, Guest, Items, SinkError, SinkSpec, TableSchema, config,
};
use serde_json::{Map, Value as Json, json};

struct Probe;

fn key(name: &str, value_type: ConfigType, secret: bool, required: bool, default: Option<ConfigValue>) -> ConfigKey {
    ConfigKey { name: name.into(), value_type, secret, required, default }
}

/// Keys the probe reads: the declared ones, and some it did not declare.
const PROBED: [&str; 8] = ["api_key", "url", "retries", "ratio", "verbose", "path", "undeclared", "component"];

impl Guest for Probe {
    fn spec() -> SinkSpec {
        let mut spec = dlthost_sink::default_spec("probe");
        spec.config = vec![
            key("api_key", ConfigType::String, true, true, None),
            key("url", ConfigType::String, false, true, None),
            key("retries", ConfigType::Integer, false, false, Some(ConfigValue::Integer(3))),
            key("ratio", ConfigType::Float, false, false, None),
            key("verbose", ConfigType::Boolean, false, false, None),
            key("path", ConfigType::String, false, false, None),
        ];
        spec
    }

    fn load(table: TableSchema, ctx: BatchContext, items: Items) -> Result<(), SinkError> {
        let mut seen = Map::new();
        for name in PROBED {
            let v = match config::get(name) {
                None => Json::Null,
                Some(ConfigValue::String(s)) => json!({"string": s}),
                Some(ConfigValue::Integer(i)) => json!({"integer": i}),
                Some(ConfigValue::Float(f)) => json!({"float": f}),
                Some(ConfigValue::Boolean(b)) => json!({"boolean": b}),
            };
            seen.insert(name.to_string(), v);
        }
        std::fs::write("/out/config.json", Json::Object(seen).to_string())
            .map_err(|e| dlthost_sink::retry(format!("write /out/config.json: {e}")))?;
        dlthost_sink::capture::write_call(&table, &ctx, &items)
    }
}

dlthost_sink::export_sink!(Probe);
