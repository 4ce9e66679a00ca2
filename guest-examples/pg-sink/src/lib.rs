//! `pg_sink`: rows into PostgreSQL over a TCP connection the host grants
//! (`--allow-tcp ADDRESS:PORT`), with the maintained client crate
//! `tokio-postgres` on tokio's wasip2 networking.
//!
//! - **Tables** are created from the table schema on first sight, and a
//!   column the schema gains is added (`ALTER TABLE ... ADD COLUMN IF NOT
//!   EXISTS`) before the first batch that carries it. Types: see
//!   [`sql_type`].
//! - **Exactly once**: each batch is one transaction that first records the
//!   batch's idempotency key in `_dlthost_batches` (`ON CONFLICT DO
//!   NOTHING`), then copies the rows (`COPY ... FROM STDIN`), then commits.
//!   A replay finds its key and commits nothing else; two instances
//!   replaying one key at once serialize on the key's row.
//! - **Errors**: lost connections, server shutdown, deadlocks and
//!   serialization failures, resource limits and DDL races are `retry`
//!   (the connection is dropped and made again); data and schema errors are
//!   `terminal` with PostgreSQL's code and message.
//!
//! Settings (`[destination.pg_sink]`): `host` (an IP address: a sink has no
//! name lookups; default 127.0.0.1), `port` (5432), `database`, `user`
//! (both `postgres`), `schema` (`public`), and the secret `password`
//! (optional; trust or peer setups need none).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::net::IpAddr;

use dlthost_sink::{
    BatchContext, Column, DataType, Guest, Items, SinkError, SinkSpec, TableSchema, Value, config_i64, config_string,
};
use futures_util::SinkExt;
use tokio_postgres::{Client, NoTls};

/// The bookkeeping table: one row per stored batch.
const BATCHES: &str = "_dlthost_batches";

/// PostgreSQL cuts identifiers at 63 bytes; a longer name is refused
/// rather than silently merged with another.
const MAX_IDENTIFIER: usize = 63;

struct PgSink;

/// One instance's connection, kept between calls (an instance serves one
/// worker), with the columns it knows each table has.
struct Connection {
    runtime: tokio::runtime::Runtime,
    client: Client,
    schema: String,
    columns: HashMap<String, HashSet<String>>,
}

thread_local! {
    static CONNECTION: RefCell<Option<Connection>> = const { RefCell::new(None) };
}

impl Guest for PgSink {
    fn spec() -> SinkSpec {
        SinkSpec::new("pg_sink")
            .batch_size(1000)
            .naming_convention("snake_case")
            .skip_dlt_columns_and_tables(false)
            .setting("host", "127.0.0.1")
            .setting("port", 5432i64)
            .setting("database", "postgres")
            .setting("user", "postgres")
            .setting("schema", "public")
            .optional_secret("password")
    }

    fn load(table: TableSchema, ctx: BatchContext, items: Items) -> Result<(), SinkError> {
        let Items::Rows(rows) = items else {
            return Err(SinkError::terminal("pg_sink takes typed rows: use a batch size above 0"));
        };
        CONNECTION.with_borrow_mut(|slot| {
            if slot.is_none() {
                *slot = Some(connect()?);
            }
            let Some(conn) = slot.as_mut() else { return Err(SinkError::retry("no connection")) };
            let written = conn.write_batch(&table, &ctx, &rows);
            if written.is_err() {
                // The transaction's fate is the server's; start clean.
                *slot = None;
            }
            written
        })
    }
}

/// Opens the connection and makes the bookkeeping table.
fn connect() -> Result<Connection, SinkError> {
    let host = config_string("host").unwrap_or_else(|| "127.0.0.1".into());
    let port = config_i64("port").unwrap_or(5432);
    let database = config_string("database").unwrap_or_else(|| "postgres".into());
    let user = config_string("user").unwrap_or_else(|| "postgres".into());
    let schema = config_string("schema").unwrap_or_else(|| "public".into());
    let password = config_string("password");
    let ip: IpAddr = host.parse().map_err(|_| {
        SinkError::terminal(format!(
            "`host` is {host:?}: give an IP address (a sink has no name lookups; the host resolves names in --allow-tcp)"
        ))
    })?;
    let port = u16::try_from(port).map_err(|_| SinkError::terminal(format!("`port` {port} is not a TCP port")))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| SinkError::terminal(format!("cannot start the I/O runtime: {e}")))?;
    let client = runtime.block_on(async {
        let stream = tokio::net::TcpStream::connect((ip, port)).await.map_err(|e| {
            SinkError::retry(format!("connect to {ip}:{port}: {e} (the host must grant it: --allow-tcp {ip}:{port})"))
        })?;
        let _ = stream.set_nodelay(true);
        let mut config = tokio_postgres::Config::new();
        config.user(&user).dbname(&database).application_name("dlthost pg_sink");
        if let Some(password) = &password {
            config.password(password);
        }
        let (client, connection) = config.connect_raw(stream, NoTls).await.map_err(classify)?;
        // Driven whenever the runtime runs, i.e. during every call.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let ddl = format!(
            "CREATE SCHEMA IF NOT EXISTS {s}; CREATE TABLE IF NOT EXISTS {s}.{b} (\
             idempotency_key text PRIMARY KEY, table_name text NOT NULL, load_id text NOT NULL, \
             row_count bigint NOT NULL, stored_at timestamptz NOT NULL DEFAULT now())",
            s = quote(&schema)?,
            b = quote(BATCHES)?,
        );
        client.batch_execute(&ddl).await.map_err(classify)?;
        Ok::<Client, SinkError>(client)
    })?;
    Ok(Connection { runtime, client, schema, columns: HashMap::new() })
}

impl Connection {
    /// One batch in one transaction, or nothing if its key is stored.
    fn write_batch(&mut self, table: &TableSchema, ctx: &BatchContext, rows: &[Vec<Value>]) -> Result<(), SinkError> {
        let qualified = format!("{}.{}", quote(&self.schema)?, quote(&table.name)?);
        let copy = format!(
            "COPY {qualified} ({}) FROM STDIN",
            table.columns.iter().map(|c| quote(&c.name)).collect::<Result<Vec<_>, _>>()?.join(", ")
        );
        let record = format!(
            "INSERT INTO {}.{} (idempotency_key, table_name, load_id, row_count) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (idempotency_key) DO NOTHING",
            quote(&self.schema)?,
            quote(BATCHES)?
        );
        let data = copy_text(table, rows)?;
        let Connection { runtime, client, schema, columns } = self;
        runtime.block_on(async {
            ensure_table(client, columns, schema, &qualified, table).await?;
            let tx = client.transaction().await.map_err(classify)?;
            let count = rows.len() as i64;
            let fresh = tx
                .execute(&record, &[&ctx.idempotency_key, &table.name, &ctx.load_id, &count])
                .await
                .map_err(classify)?;
            if fresh == 1 {
                let sink = tx.copy_in::<_, bytes::Bytes>(&copy).await.map_err(classify)?;
                futures_util::pin_mut!(sink);
                sink.send(bytes::Bytes::from(data)).await.map_err(classify)?;
                sink.finish().await.map_err(classify)?;
            }
            // A replay (fresh == 0) commits nothing but the no-op.
            tx.commit().await.map_err(classify)
        })
    }
}

/// Creates the table, or adds the columns it lacks, before a batch that
/// needs them. Known columns are cached per instance; a batch with a
/// column not in the cache reads the table's columns again.
async fn ensure_table(
    client: &Client,
    known: &mut HashMap<String, HashSet<String>>,
    schema: &str,
    qualified: &str,
    table: &TableSchema,
) -> Result<(), SinkError> {
    if known.get(&table.name).is_some_and(|k| table.columns.iter().all(|c| k.contains(&c.name))) {
        return Ok(());
    }
    let definitions = table
        .columns
        .iter()
        .map(|c| Ok(format!("{} {}{}", quote(&c.name)?, sql_type(c), if c.nullable { "" } else { " NOT NULL" })))
        .collect::<Result<Vec<_>, SinkError>>()?;
    let create = format!("CREATE TABLE IF NOT EXISTS {qualified} ({})", definitions.join(", "));
    client.batch_execute(&create).await.map_err(classify)?;
    let present: HashSet<String> = client
        .query(
            "SELECT column_name::text FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2",
            &[&schema, &table.name],
        )
        .await
        .map_err(classify)?
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect();
    let mut now = present.clone();
    for c in table.columns.iter().filter(|c| !present.contains(&c.name)) {
        // Added columns are nullable: earlier rows have no value.
        let add = format!("ALTER TABLE {qualified} ADD COLUMN IF NOT EXISTS {} {}", quote(&c.name)?, sql_type(c));
        client.batch_execute(&add).await.map_err(classify)?;
        now.insert(c.name.clone());
    }
    known.insert(table.name.clone(), now);
    Ok(())
}

/// The PostgreSQL type of a dlt column. Nothing loses precision: doubles
/// are `double precision`, timestamps `timestamptz` (µs, as dlt's),
/// decimals `numeric(p,s)` (or unbounded `numeric`), json is `json`, which
/// keeps the text exactly as sent (cast to `jsonb` to index or query it).
pub fn sql_type(c: &Column) -> String {
    match c.data_type {
        DataType::Text => "text".into(),
        DataType::Double => "double precision".into(),
        DataType::Bool => "boolean".into(),
        DataType::Timestamp => "timestamptz".into(),
        DataType::Bigint => "bigint".into(),
        DataType::Binary => "bytea".into(),
        DataType::Json => "json".into(),
        DataType::Decimal => match (c.precision, c.scale) {
            (Some(p), Some(s)) => format!("numeric({p},{s})"),
            (Some(p), None) => format!("numeric({p},0)"),
            _ => "numeric".into(),
        },
        DataType::Date => "date".into(),
        DataType::Time => "time".into(),
    }
}

/// A quoted identifier, or a terminal error for one PostgreSQL would cut.
fn quote(name: &str) -> Result<String, SinkError> {
    if name.len() > MAX_IDENTIFIER || name.is_empty() || name.contains('\0') {
        return Err(SinkError::terminal(format!(
            "the name {name:?} is not a PostgreSQL identifier (1 to {MAX_IDENTIFIER} bytes, no NUL)"
        )));
    }
    Ok(format!("\"{}\"", name.replace('"', "\"\"")))
}

/// The rows in COPY's text format: tab-separated, `\N` for null,
/// backslash escapes for backslash, tab, newline and carriage return.
fn copy_text(table: &TableSchema, rows: &[Vec<Value>]) -> Result<Vec<u8>, SinkError> {
    let mut out = String::with_capacity(rows.len() * 64 * table.columns.len().max(1));
    for (r, row) in rows.iter().enumerate() {
        for (i, c) in table.columns.iter().enumerate() {
            if i > 0 {
                out.push('\t');
            }
            write_value(&mut out, row.get(i).unwrap_or(&Value::Null))
                .map_err(|why| SinkError::terminal(format!("row {r} of this batch, column `{}`: {why}", c.name)))?;
        }
        out.push('\n');
    }
    Ok(out.into_bytes())
}

fn write_value(out: &mut String, v: &Value) -> Result<(), String> {
    match v {
        Value::Null => out.push_str("\\N"),
        Value::Bool(b) => out.push(if *b { 't' } else { 'f' }),
        Value::Bigint(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Double(f) if f.is_nan() => out.push_str("NaN"),
        Value::Double(f) if f.is_infinite() => out.push_str(if *f > 0.0 { "Infinity" } else { "-Infinity" }),
        // `{:e}` is the shortest text that parses back to the same double.
        Value::Double(f) => {
            let _ = write!(out, "{f:e}");
        }
        Value::Text(s) | Value::Decimal(s) | Value::Json(s) => escape(out, s)?,
        Value::Timestamp(us) => {
            let t = chrono::DateTime::from_timestamp_micros(*us).ok_or("a timestamp out of range")?;
            let _ = write!(out, "{}", t.format("%Y-%m-%d %H:%M:%S%.6f+00"));
        }
        Value::Date(days) => {
            let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).ok_or("no epoch")?;
            let d = epoch.checked_add_signed(chrono::Duration::days(i64::from(*days))).ok_or("a date out of range")?;
            let _ = write!(out, "{}", d.format("%Y-%m-%d"));
        }
        Value::Time(us) => {
            let (secs, micros) = (us.div_euclid(1_000_000), us.rem_euclid(1_000_000));
            let _ = write!(out, "{:02}:{:02}:{:02}.{micros:06}", secs / 3600, (secs / 60) % 60, secs % 60);
        }
        Value::Binary(b) => {
            // bytea's hex input, its backslash escaped for COPY.
            out.push_str("\\\\x");
            for byte in b {
                let _ = write!(out, "{byte:02x}");
            }
        }
    }
    Ok(())
}

/// Text in COPY's escaping. PostgreSQL's text cannot hold U+0000: such a
/// value is refused, never altered.
fn escape(out: &mut String, s: &str) -> Result<(), String> {
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\0' => return Err("PostgreSQL text cannot hold the character U+0000".into()),
            c => out.push(c),
        }
    }
    Ok(())
}

/// A PostgreSQL error as `retry` (the server or the connection may heal)
/// or `terminal` (the data or the schema is wrong), with its code.
fn classify(e: tokio_postgres::Error) -> SinkError {
    let Some(db) = e.as_db_error() else {
        // I/O, a closed connection, a protocol error: try again.
        return SinkError::retry(format!("postgres: {e}"));
    };
    let code = db.code().code();
    let text = format!("postgres {code}: {}", db.message());
    let transient = ["08", "40", "53", "57", "58"].iter().any(|class| code.starts_with(class))
        // Two workers creating one table or column at once.
        || code == "23505"
        || code == "42P07"
        || code == "42701";
    if transient { SinkError::retry(text) } else { SinkError::terminal(text) }
}

dlthost_sink::export_sink!(PgSink);
