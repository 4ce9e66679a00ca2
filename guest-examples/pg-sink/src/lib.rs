//! `pg_sink`: rows into PostgreSQL over a TCP connection the host grants
//! (`--allow-tcp ADDRESS:PORT`), with the maintained client crate
//! `tokio-postgres` on tokio's wasip2 networking.
//!
//! - **Tables** are created from the table schema on first sight, and a
//!   column the schema gains is added (`ALTER TABLE ... ADD COLUMN IF NOT
//!   EXISTS`) before the first batch that carries it. Types: see
//!   [`sql_type`].
//! - **Exactly once**: each batch is one SQL statement, so one transaction:
//!   it records the batch's idempotency key in `_dlthost_batches` (`ON
//!   CONFLICT DO NOTHING ... RETURNING`) and inserts the rows only if that
//!   record is new. A replay finds its key and inserts nothing; two
//!   instances replaying one key at once serialize on the key's row.
//! - **One write, one round trip per batch**: the statement is prepared once
//!   per table and column list, and each batch binds one array per column
//!   (`INSERT ... SELECT * FROM unnest($5::bigint[], ...)`), sent in one
//!   message. (`COPY` sends the rows and the end of the copy in two writes,
//!   and wasi:sockets has no TCP_NODELAY: the second waited for the
//!   server's delayed ACK, 40 ms a batch.)
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
use std::net::IpAddr;

use dlthost_sink::{
    BatchContext, Column, DataType, Guest, Items, SinkError, SinkSpec, TableSchema, Value, config_i64, config_string,
};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Statement};

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
    /// The insert statement of each table and column list.
    statements: HashMap<String, Statement>,
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
    Ok(Connection { runtime, client, schema, columns: HashMap::new(), statements: HashMap::new() })
}

impl Connection {
    /// One batch in one statement, or nothing if its key is stored.
    fn write_batch(&mut self, table: &TableSchema, ctx: &BatchContext, rows: &[Vec<Value>]) -> Result<(), SinkError> {
        let qualified = format!("{}.{}", quote(&self.schema)?, quote(&table.name)?);
        let names = table.columns.iter().map(|c| quote(&c.name)).collect::<Result<Vec<_>, _>>()?;
        let key = format!("{qualified} ({})", names.join(", "));
        let text = insert_statement(&quote(&self.schema)?, &key, table);
        let arrays = table
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| column_array(c, rows.iter().map(|r| r.get(i).unwrap_or(&Value::Null))))
            .collect::<Result<Vec<_>, SinkError>>()?;
        let count = rows.len() as i64;
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&ctx.idempotency_key, &table.name, &ctx.load_id, &count];
        params.extend(arrays.iter().map(|a| a.as_sql()));
        let Connection { runtime, client, schema, columns, statements } = self;
        runtime.block_on(async {
            ensure_table(client, columns, schema, &qualified, table).await?;
            let statement = match statements.get(&key) {
                Some(s) => s.clone(),
                None => {
                    let s = client.prepare(&text).await.map_err(classify)?;
                    statements.insert(key.clone(), s.clone());
                    s
                }
            };
            client.execute(&statement, &params).await.map_err(classify).map(|_| ())
        })
    }
}

/// The insert of a batch: the key's record first; the rows only if that
/// record is new. `$1..$4` are the record, `$5..` one array per column.
fn insert_statement(schema: &str, target: &str, table: &TableSchema) -> String {
    let arrays: Vec<String> =
        table.columns.iter().enumerate().map(|(i, c)| format!("${}::{}", i + 5, array_type(c))).collect();
    format!(
        "WITH fresh AS (INSERT INTO {schema}.\"{BATCHES}\" (idempotency_key, table_name, load_id, row_count) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (idempotency_key) DO NOTHING RETURNING 1) \
         INSERT INTO {target} SELECT * FROM unnest({}) WHERE EXISTS (SELECT 1 FROM fresh)",
        arrays.join(", ")
    )
}

/// The array a column's values are bound as: native for numbers, bools and
/// bytes, text (cast by the server) for the rest.
fn array_type(c: &Column) -> String {
    match c.data_type {
        DataType::Bigint => "bigint[]".into(),
        DataType::Double => "float8[]".into(),
        DataType::Bool => "boolean[]".into(),
        DataType::Binary => "bytea[]".into(),
        DataType::Text => "text[]".into(),
        _ => format!("text[]::{}[]", sql_type(c)),
    }
}

/// One column's values of a batch, as one array parameter.
enum ColumnArray {
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
    Bytes(Vec<Option<Vec<u8>>>),
    Text(Vec<Option<String>>),
}

impl ColumnArray {
    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            ColumnArray::Int(v) => v,
            ColumnArray::Float(v) => v,
            ColumnArray::Bool(v) => v,
            ColumnArray::Bytes(v) => v,
            ColumnArray::Text(v) => v,
        }
    }
}

fn column_array<'a>(c: &Column, values: impl Iterator<Item = &'a Value>) -> Result<ColumnArray, SinkError> {
    let wrong = |v: &Value| SinkError::terminal(format!("column `{}` ({:?}) got the value {v:?}", c.name, c.data_type));
    let text = |v: &Value| -> Result<Option<String>, SinkError> {
        let t = match v {
            Value::Null => return Ok(None),
            Value::Text(s) | Value::Decimal(s) | Value::Json(s) => s.clone(),
            Value::Timestamp(us) => chrono::DateTime::from_timestamp_micros(*us)
                .ok_or_else(|| wrong(v))?
                .format("%Y-%m-%d %H:%M:%S%.6f+00")
                .to_string(),
            Value::Date(days) => chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
                .and_then(|e| e.checked_add_signed(chrono::Duration::days(i64::from(*days))))
                .ok_or_else(|| wrong(v))?
                .format("%Y-%m-%d")
                .to_string(),
            Value::Time(us) => {
                let (secs, micros) = (us.div_euclid(1_000_000), us.rem_euclid(1_000_000));
                format!("{:02}:{:02}:{:02}.{micros:06}", secs / 3600, (secs / 60) % 60, secs % 60)
            }
            _ => return Err(wrong(v)),
        };
        if t.contains('\0') {
            // Refused, never altered.
            return Err(SinkError::terminal(format!(
                "column `{}`: PostgreSQL text cannot hold the character U+0000",
                c.name
            )));
        }
        Ok(Some(t))
    };
    Ok(match c.data_type {
        DataType::Bigint => ColumnArray::Int(
            values
                .map(|v| match v {
                    Value::Null => Ok(None),
                    Value::Bigint(i) => Ok(Some(*i)),
                    _ => Err(wrong(v)),
                })
                .collect::<Result<_, _>>()?,
        ),
        DataType::Double => ColumnArray::Float(
            values
                .map(|v| match v {
                    Value::Null => Ok(None),
                    Value::Double(f) => Ok(Some(*f)),
                    _ => Err(wrong(v)),
                })
                .collect::<Result<_, _>>()?,
        ),
        DataType::Bool => ColumnArray::Bool(
            values
                .map(|v| match v {
                    Value::Null => Ok(None),
                    Value::Bool(b) => Ok(Some(*b)),
                    _ => Err(wrong(v)),
                })
                .collect::<Result<_, _>>()?,
        ),
        DataType::Binary => ColumnArray::Bytes(
            values
                .map(|v| match v {
                    Value::Null => Ok(None),
                    Value::Binary(b) => Ok(Some(b.clone())),
                    _ => Err(wrong(v)),
                })
                .collect::<Result<_, _>>()?,
        ),
        _ => ColumnArray::Text(values.map(text).collect::<Result<_, _>>()?),
    })
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
