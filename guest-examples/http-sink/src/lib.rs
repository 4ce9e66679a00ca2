//! `http_sink`: the reverse-ETL sink. It POSTs each batch as JSON to
//! `<url>/<table>`:
//!
//! ```text
//! POST <url>/<table>
//! Content-Type: application/json
//! Idempotency-Key: <the batch's idempotency key>
//! Authorization: Bearer <api_key>        (unless the host injects it, see auth_header)
//!
//! {"table": "<table>", "rows": [{<column>: <value>, ...}, ...]}
//! ```
//!
//! and maps the response: 2xx → ok; 408, 429, 5xx and network errors →
//! `retry` (with `Retry-After` seconds as the retry-after); any other 4xx →
//! `terminal` with the response body in the message.
//!
//! Config: `url` (required) and `api_key` (secret, required). Allow the API's
//! origin: `host run --allow-host https://api.example.com ...` or
//! `allowed_hosts` under `[destination.http_sink]`.

use std::time::Duration;

use dlthost_sink::{
    BatchContext, ConfigKey, ConfigType, Guest, Items, RetryError, SinkError, SinkSpec, TableSchema, config_string,
    read_job_file, row_to_json,
};
use serde_json::{Value as Json, json};

struct HttpSink;

impl Guest for HttpSink {
    fn spec() -> SinkSpec {
        let mut spec = dlthost_sink::default_spec("http_sink");
        spec.config = vec![
            ConfigKey {
                name: "url".into(),
                value_type: ConfigType::String,
                secret: false,
                required: true,
                default: None,
            },
            ConfigKey {
                name: "api_key".into(),
                value_type: ConfigType::String,
                secret: true,
                required: true,
                default: None,
            },
        ];
        spec
    }

    fn load(table: TableSchema, ctx: BatchContext, items: Items) -> Result<(), SinkError> {
        let rows: Vec<Json> = match &items {
            Items::Rows(rows) => rows.iter().map(|r| row_to_json(&table, r)).collect(),
            Items::File(f) => read_job_file(f, &table).map_err(SinkError::Terminal)?,
            Items::ArrowIpc(_) => return Err(SinkError::Terminal("http_sink asks for rows".into())),
        };
        let url = config_string("url").ok_or_else(|| SinkError::Terminal("http_sink: `url` is not set".into()))?;
        let endpoint = format!("{}/{}", url.trim_end_matches('/'), encode_path(&table.name));
        let body = json!({"table": table.name, "rows": rows}).to_string();
        let mut headers =
            vec![("content-type", "application/json".to_string()), ("idempotency-key", ctx.idempotency_key.clone())];
        // With `auth_header` configured the host adds the header itself and
        // does not hand us the key.
        if let Some(key) = config_string("api_key") {
            headers.push(("authorization", format!("Bearer {key}")));
        }
        let response = waki::Client::new()
            .post(&endpoint)
            .headers(headers)
            .body(body.into_bytes())
            .connect_timeout(Duration::from_secs(10))
            .send();
        let response = match response {
            Ok(r) => r,
            Err(e) => return Err(retry(format!("POST {endpoint}: {e}"), None)),
        };
        let status = response.status_code();
        let retry_after = response
            .header("retry-after")
            .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
            .map(|secs| secs * 1000);
        match status {
            200..=299 => Ok(()),
            408 | 429 | 500..=599 => Err(retry(format!("POST {endpoint}: HTTP {status}"), retry_after)),
            _ => {
                let body = response.body().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
                let body: String = body.chars().take(500).collect();
                Err(SinkError::Terminal(format!("POST {endpoint}: HTTP {status}: {body}")))
            }
        }
    }
}

fn retry(message: String, retry_after_ms: Option<u64>) -> SinkError {
    SinkError::Retry(RetryError { message, retry_after_ms })
}

/// Percent-encodes a table name for a URL path segment.
fn encode_path(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

dlthost_sink::export_sink!(HttpSink);
