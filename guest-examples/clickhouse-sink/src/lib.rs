//! `clickhouse_sink`: rows into ClickHouse over its HTTP interface, built
//! for the oldest server we test against (Debian 12's 18.16).
//!
//! - **Tables** are created from the table schema on first sight
//!   (`MergeTree`, ordered by the batch bookkeeping columns), and a column
//!   the schema gains is added before the first batch that carries it.
//!   Types: see [`ch_type`]; nothing loses precision.
//! - **Inserts** are `INSERT ... FORMAT RowBinary`: exact for doubles and
//!   bytes (no text round trip), and smaller than JSONEachRow.
//! - **Exactly once**: every row carries its batch's idempotency key
//!   (`_dlt_batch_key`) and its index in the batch (`_dlt_batch_row`).
//!   Before inserting, the sink asks whether the key is stored; an insert
//!   of one batch is one block (`max_insert_block_size` is raised to the
//!   batch's size), which a MergeTree writes as one part, all or nothing.
//!   So a replay finds every row of its batch or none.
//! - **Errors**: network errors, HTTP 5xx without a ClickHouse code, and
//!   ClickHouse codes that mean "later" (timeouts, too many parts or
//!   queries, memory) are `retry`; other codes (syntax, types, unknown
//!   columns, authentication) are `terminal` with the server's message.
//!
//! Settings (`[destination.clickhouse_sink]`): `url` (required, e.g.
//! `http://127.0.0.1:8123`; allow it with `--allow-host`), `database`
//! (`default`), `user` (`default`), and the secret `password` (optional).
//! Better than giving the sink the password: `auth_header =
//! "X-ClickHouse-Key: {password}"` in the same section makes the host add
//! the header, and the sink never holds the password.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use dlthost_sink::{
    BatchContext, Column, DataType, Guest, Items, SinkError, SinkSpec, TableSchema, Value, config_string,
    require_string,
};

struct ClickHouseSink;

/// Scale of decimals whose column has none (dlt's default, 38 digits and 9
/// after the point).
const DEFAULT_SCALE: u32 = 9;

/// ClickHouse error codes worth another attempt.
const TRANSIENT_CODES: [u32; 10] = [
    159, // TIMEOUT_EXCEEDED
    164, // READONLY (a replica catching up)
    202, // TOO_MANY_SIMULTANEOUS_QUERIES
    209, // SOCKET_TIMEOUT
    210, // NETWORK_ERROR
    241, // MEMORY_LIMIT_EXCEEDED
    242, // TABLE_IS_READ_ONLY
    252, // TOO_MANY_PARTS
    285, // TOO_FEW_LIVE_REPLICAS
    319, // UNKNOWN_STATUS_OF_INSERT
];

thread_local! {
    // The columns this instance knows each table has.
    static KNOWN: RefCell<HashMap<String, HashSet<String>>> = RefCell::new(HashMap::new());
}

impl Guest for ClickHouseSink {
    fn spec() -> SinkSpec {
        SinkSpec::new("clickhouse_sink")
            .batch_size(1000)
            .naming_convention("snake_case")
            .skip_dlt_columns_and_tables(false)
            .required("url", dlthost_sink::ConfigType::String)
            .setting("database", "default")
            .setting("user", "default")
            .optional_secret("password")
    }

    fn load(table: TableSchema, ctx: BatchContext, items: Items) -> Result<(), SinkError> {
        let Items::Rows(rows) = items else {
            return Err(SinkError::terminal("clickhouse_sink takes typed rows: use a batch size above 0"));
        };
        let server = Server::from_config()?;
        let target = format!("{}.{}", ident(&server.database)?, ident(&table.name)?);
        ensure_table(&server, &target, &table)?;
        let stored = server.query(&format!(
            "SELECT count() FROM {target} WHERE _dlt_batch_key = {} FORMAT TSV",
            string_literal(&ctx.idempotency_key)
        ))?;
        let stored: u64 = stored.trim().parse().map_err(|_| SinkError::retry(format!("count: {stored:?}")))?;
        if stored == rows.len() as u64 {
            return Ok(()); // a replay: the batch is there, whole
        }
        if stored != 0 {
            return Err(SinkError::terminal(format!(
                "{target} holds {stored} of the {} rows of batch {}: an insert was split, which this sink never does",
                rows.len(),
                ctx.idempotency_key
            )));
        }
        let mut columns = table.columns.iter().map(|c| ident(&c.name)).collect::<Result<Vec<_>, _>>()?;
        columns.extend(["_dlt_batch_key".to_string(), "_dlt_batch_row".to_string()]);
        let body = row_binary(&table, &ctx.idempotency_key, &rows)?;
        // One block, so one part: all rows or none.
        let settings = format!("max_insert_block_size={}", rows.len().max(1_048_576));
        server.post(&format!("INSERT INTO {target} ({}) FORMAT RowBinary", columns.join(", ")), &settings, body)?;
        Ok(())
    }
}

/// Where and as whom to connect.
struct Server {
    url: String,
    database: String,
    user: String,
    password: Option<String>,
}

impl Server {
    fn from_config() -> Result<Server, SinkError> {
        Ok(Server {
            url: require_string("url")?.trim_end_matches('/').to_string(),
            database: config_string("database").unwrap_or_else(|| "default".into()),
            user: config_string("user").unwrap_or_else(|| "default".into()),
            // None when the host injects it (`auth_header`).
            password: config_string("password"),
        })
    }

    /// Runs a statement whose text is the body; returns the answer.
    fn query(&self, sql: &str) -> Result<String, SinkError> {
        let body = self.send("", "", sql.as_bytes().to_vec())?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// Sends `body` as the data of `query` (in the URL).
    fn post(&self, query: &str, settings: &str, body: Vec<u8>) -> Result<Vec<u8>, SinkError> {
        self.send(query, settings, body)
    }

    fn send(&self, query: &str, settings: &str, body: Vec<u8>) -> Result<Vec<u8>, SinkError> {
        let mut url = format!("{}/?", self.url);
        if !query.is_empty() {
            url.push_str("query=");
            url.push_str(&percent(query));
            url.push('&');
        }
        url.push_str(settings);
        let mut headers = vec![("x-clickhouse-user", self.user.clone())];
        if let Some(password) = &self.password {
            headers.push(("x-clickhouse-key", password.clone()));
        }
        let response = waki::Client::new()
            .post(&url)
            .headers(headers)
            .body(body)
            .connect_timeout(Duration::from_secs(10))
            .send()
            .map_err(|e| SinkError::retry(format!("clickhouse at {}: {e}", self.url)))?;
        let status = response.status_code();
        let answer = response.body().map_err(|e| SinkError::retry(format!("clickhouse answer: {e}")))?;
        match status {
            200..=299 => Ok(answer),
            _ => Err(classify(status, &String::from_utf8_lossy(&answer))),
        }
    }
}

/// An HTTP error as `retry` or `terminal`, by ClickHouse's error code
/// (`Code: 60, e.displayText() = ...`) when the answer has one.
fn classify(status: u16, text: &str) -> SinkError {
    let text: String = text.trim().chars().take(1000).collect();
    let code = text
        .strip_prefix("Code: ")
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse::<u32>().ok());
    let message = format!("clickhouse HTTP {status}: {text}");
    match code {
        Some(c) if TRANSIENT_CODES.contains(&c) => SinkError::retry(message),
        Some(_) => SinkError::terminal(message),
        None if status >= 500 || status == 408 || status == 429 => SinkError::retry(message),
        None => SinkError::terminal(message),
    }
}

/// Creates the table, or adds the columns it lacks.
fn ensure_table(server: &Server, target: &str, table: &TableSchema) -> Result<(), SinkError> {
    let known = KNOWN.with_borrow(|k| {
        k.get(&table.name).is_some_and(|cols| table.columns.iter().all(|c| cols.contains(&c.name)))
    });
    if known {
        return Ok(());
    }
    let mut definitions =
        table.columns.iter().map(|c| Ok(format!("{} {}", ident(&c.name)?, ch_type(c)))).collect::<Result<Vec<_>, SinkError>>()?;
    definitions.extend(["_dlt_batch_key String".to_string(), "_dlt_batch_row UInt32".to_string()]);
    server.query(&format!(
        "CREATE TABLE IF NOT EXISTS {target} ({}) ENGINE = MergeTree() ORDER BY (_dlt_batch_key, _dlt_batch_row)",
        definitions.join(", ")
    ))?;
    let present = server.query(&format!(
        "SELECT name FROM system.columns WHERE database = {} AND table = {} FORMAT TSVRaw",
        string_literal(&server.database),
        string_literal(&table.name)
    ))?;
    let mut now: HashSet<String> = present.lines().map(str::to_string).collect();
    for c in &table.columns {
        if now.contains(&c.name) {
            continue;
        }
        // Added columns are nullable: earlier rows have no value. 18.16 has
        // no ADD COLUMN IF NOT EXISTS: "already exists" (code 15) is fine.
        let add = format!("ALTER TABLE {target} ADD COLUMN {} {}", ident(&c.name)?, nullable(c));
        match server.query(&add) {
            Ok(_) => {}
            Err(SinkError::Terminal(m)) if m.contains("Code: 15,") => {}
            Err(e) => return Err(e),
        }
        now.insert(c.name.clone());
    }
    KNOWN.with_borrow_mut(|k| k.insert(table.name.clone(), now));
    Ok(())
}

/// The ClickHouse type of a dlt column, for 18.16 and later:
///
/// | dlt | ClickHouse | why |
/// |---|---|---|
/// | text, json | `String` | json keeps the text as sent |
/// | double | `Float64` | |
/// | bool | `UInt8` | 18.16 has no `Bool` |
/// | bigint | `Int64` | |
/// | timestamp | `Int64`, µs since 1970-01-01 UTC | 18.16's `DateTime` holds seconds from 1970 to 2105; dlt's timestamps are µs from year 1 |
/// | date | `Int32`, days since 1970-01-01 | `Date` holds 1970 to 2149 only |
/// | time | `Int64`, µs since midnight | no time type |
/// | decimal | `Decimal(38, scale)` | the column's scale, else 9 |
/// | binary | `String` | bytes as they are |
///
/// Nullable columns are `Nullable(...)`.
pub fn ch_type(c: &Column) -> String {
    let base = match c.data_type {
        DataType::Text | DataType::Json | DataType::Binary => "String".to_string(),
        DataType::Double => "Float64".into(),
        DataType::Bool => "UInt8".into(),
        DataType::Bigint | DataType::Timestamp | DataType::Time => "Int64".into(),
        DataType::Date => "Int32".into(),
        DataType::Decimal => format!("Decimal(38, {})", scale(c)),
    };
    if c.nullable { format!("Nullable({base})") } else { base }
}

fn nullable(c: &Column) -> String {
    let t = ch_type(c);
    if t.starts_with("Nullable(") { t } else { format!("Nullable({t})") }
}

fn scale(c: &Column) -> u32 {
    c.scale.unwrap_or(DEFAULT_SCALE).min(38)
}

/// A back-quoted identifier.
fn ident(name: &str) -> Result<String, SinkError> {
    if name.is_empty() || name.contains('\0') {
        return Err(SinkError::terminal(format!("{name:?} is not a ClickHouse identifier")));
    }
    Ok(format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`")))
}

/// A quoted string literal.
fn string_literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Percent-encodes a query for the URL.
fn percent(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The batch in RowBinary: each row's columns in table order, then the
/// batch key and the row's index.
fn row_binary(table: &TableSchema, key: &str, rows: &[Vec<Value>]) -> Result<Vec<u8>, SinkError> {
    let mut out = Vec::with_capacity(rows.len() * (64 + key.len()));
    for (r, row) in rows.iter().enumerate() {
        for (i, c) in table.columns.iter().enumerate() {
            let v = row.get(i).unwrap_or(&Value::Null);
            encode(&mut out, v, c)
                .map_err(|why| SinkError::terminal(format!("row {r} of this batch, column `{}`: {why}", c.name)))?;
        }
        string(&mut out, key.as_bytes());
        out.extend_from_slice(&(r as u32).to_le_bytes());
    }
    Ok(out)
}

fn encode(out: &mut Vec<u8>, v: &Value, c: &Column) -> Result<(), String> {
    if c.nullable {
        out.push(u8::from(matches!(v, Value::Null)));
        if matches!(v, Value::Null) {
            return Ok(());
        }
    }
    match (v, c.data_type) {
        (Value::Null, _) => return Err("null in a column that is not nullable".into()),
        (Value::Text(s) | Value::Json(s), _) => string(out, s.as_bytes()),
        (Value::Binary(b), _) => string(out, b),
        (Value::Double(f), _) => out.extend_from_slice(&f.to_le_bytes()),
        (Value::Bool(b), _) => out.push(u8::from(*b)),
        (Value::Bigint(i) | Value::Timestamp(i) | Value::Time(i), _) => out.extend_from_slice(&i.to_le_bytes()),
        (Value::Date(d), _) => out.extend_from_slice(&d.to_le_bytes()),
        (Value::Decimal(s), _) => out.extend_from_slice(&scaled(s, scale(c))?.to_le_bytes()),
    }
    Ok(())
}

/// A string: its length as LEB128, then the bytes.
fn string(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut n = bytes.len() as u64;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(bytes);
}

/// A decimal's text as an integer of `scale` digits after the point. More
/// digits than the scale, or more than 38 in all, are refused, never
/// rounded.
fn scaled(text: &str, scale: u32) -> Result<i128, String> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > scale as usize {
        return Err(format!("the decimal {text} has more than {scale} digits after the point"));
    }
    let all = format!("{whole}{fraction:0<width$}", width = scale as usize);
    let all = all.trim_start_matches('0');
    if all.len() > 38 || !all.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("the decimal {text} does not fit Decimal(38, {scale})"));
    }
    let n: i128 = if all.is_empty() { 0 } else { all.parse().map_err(|_| format!("the decimal {text}"))? };
    Ok(if negative { -n } else { n })
}

dlthost_sink::export_sink!(ClickHouseSink);
