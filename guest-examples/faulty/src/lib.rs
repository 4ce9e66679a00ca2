//! `faulty`: behaves like `capture`, except where environment variables
//! (passed with `host run --env KEY=VALUE`) tell it to misbehave. It is the
//! test kit for retries, traps, resume and the sandbox. Faults:
//!
//! | variable | effect |
//! |---|---|
//! | `RETRY_ROW=N` | a batch holding row N returns `retry` |
//! | `RETRY_AFTER_MS=N` | ... with that retry-after |
//! | `TERMINAL_TABLE=T` | every batch of table T returns `terminal` |
//! | `PANIC_ROW=N` | a batch holding row N panics (a trap) |
//! | `PANIC_TYPE=T` | a batch holding a non-null value of data type T (`binary`, `decimal`, ...) panics |
//! | `PANIC_ONCE=1` | ... only the first time (a marker file in /out remembers) |
//! | `SLOW_MS=N` | every call busy-waits N ms first |
//! | `HOLD_ROW=N` | a batch holding row N writes `/out/.holding` (its idempotency key), then waits until `/out/.release` exists: a test holds the host mid-load at a point it chose, acts, then releases it |
//! | `LOOP=1` | every call loops forever |
//! | `MEMORY_BOMB=1` | every call allocates until memory runs out |
//! | `STACK_OVERFLOW=1` | every call recurses without end |
//! | `READ_FILE=P` | every call tries to read P and reports what happened |
//! | `WRITE_FILE=P` | every call tries to write P and reports what happened |
//! | `READ_ENV=K` | every call reports the value of environment variable K |
//! | `HTTP_GET=URL` | every call GETs URL; a 2xx goes on to capture, anything else is reported |
//! | `TCP_CONNECT=ADDR` | every call opens a TCP connection to ADDR (an IP address and port), sends `ping`, reads the answer and reports what happened |
//! | `SLEEP_MS=N` | every call sleeps N ms in a host call (a `wasi:clocks` wait, which epochs cannot interrupt) |
//! | `HUGE_MESSAGE=N` | every call fails terminally with a message of N bytes |
//! | `HUGE_RETRY=N` | every call asks to retry with a message of N bytes |
//! | `ECHO_SECRET=K` | every call prints config key K to stdout and stderr, then asks to retry with it in the message |
//! | `NEED_KEY=K` | every call fails terminally unless config key K has a value |
//! | `SPEC_NAME=S` | `spec()` names the sink S |
//! | `SPEC_VARY=1` | `spec()` answers another batch size on each call (a counter in `/out`) |
//! | `SPEC_KEYS=K,K:default` | `spec()` declares these keys: `name` (a string), `name:secret`, `name:int=text` (an integer key with a string default) |
//! | `WRITE_JSONL=keyed` | instead of capture files, each batch's rows go to `/out/<table>.<idempotency key>.jsonl`, replaced atomically (a replay stores nothing new: exactly once) |
//! | `WRITE_JSONL=append` | ... appended to `/out/<table>.all.jsonl` (a replay stores the rows again) |
//! | `BUFFER_ROWS=N` | with `WRITE_JSONL`, rows are kept in instance memory and written only on every N-th call of the instance (lost when it is replaced) |
//! | `FAULT_TABLE=T` | all of the above apply to table T only; other tables are captured |
//!
//! "Reports" means the call fails terminally with a message that says what
//! the sink could do, so a test can check that the sandbox stopped it.

use std::cell::RefCell;
use std::io::Write;

use dlthost_sink::{BatchContext, Guest, Items, RetryError, SinkError, SinkSpec, TableSchema};

struct Faulty;

fn var(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

fn holds_row(ctx: &BatchContext, key: &str) -> bool {
    var(key)
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| ctx.start_row <= n && n < ctx.start_row + ctx.row_count)
}

#[inline(never)]
fn recurse(depth: u64, sink: &mut Vec<u64>) -> u64 {
    // Opaque to the optimizer, so the recursion is neither removed nor flagged.
    if std::hint::black_box(depth) == u64::MAX {
        return 0;
    }
    let local = [depth; 64];
    sink.push(local[0]);
    recurse(depth + 1, sink) + local[63]
}

impl Guest for Faulty {
    fn spec() -> SinkSpec {
        let mut spec = dlthost_sink::default_spec(&var("SPEC_NAME").unwrap_or_else(|| "faulty".into()));
        if let Ok(keys) = std::env::var("SPEC_KEYS") {
            spec.config = keys.split(',').map(declared_key).collect();
        }
        if var("SPEC_VARY").is_some() {
            // A different batch size on each call: a counter in /out.
            let count: u32 =
                std::fs::read_to_string("/out/.spec_calls").ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0);
            let _ = std::fs::write("/out/.spec_calls", (count + 1).to_string());
            spec.batch_size = Some(100 + count);
        }
        spec
    }

    fn load(table: TableSchema, ctx: BatchContext, items: Items) -> Result<(), SinkError> {
        let faulted = var("FAULT_TABLE").is_none_or(|t| t == table.name);
        if faulted {
            misbehave(&table, &ctx)?;
            if let Some(kind) = var("PANIC_TYPE") {
                panic_on_type(&table, &items, &kind);
            }
        }
        match var("WRITE_JSONL") {
            Some(mode) if faulted => write_jsonl(&table, &ctx, &items, &mode),
            _ => dlthost_sink::capture::write_call(&table, &ctx, &items),
        }
    }
}

thread_local! {
    /// `BUFFER_ROWS`: lines not yet written, and calls so far.
    static BUFFER: RefCell<(Vec<(String, String)>, u64)> = const { RefCell::new((Vec::new(), 0)) };
}

/// `WRITE_JSONL`: the batch's rows as JSON lines, keyed (exactly once) or
/// appended (duplicates on replay); with `BUFFER_ROWS` only every N-th call
/// writes what the instance has kept.
fn write_jsonl(table: &TableSchema, ctx: &BatchContext, items: &Items, mode: &str) -> Result<(), SinkError> {
    let mut text = String::new();
    match items {
        Items::Rows(rows) => {
            for row in rows {
                text.push_str(&dlthost_sink::row_to_json(table, row).to_string());
                text.push('\n');
            }
        }
        Items::File(file) => {
            for row in dlthost_sink::job_file_rows(file, table).map_err(SinkError::terminal)? {
                text.push_str(&row.map_err(SinkError::terminal)?.to_string());
                text.push('\n');
            }
        }
        Items::ArrowIpc(_) => return Err(SinkError::terminal("WRITE_JSONL takes rows or job files")),
    }
    let name = dlthost_sink::safe_file_name(&table.name);
    let file = match mode {
        "append" => format!("{name}.all.jsonl"),
        _ => format!("{name}.{}.jsonl", dlthost_sink::safe_file_name(&ctx.idempotency_key)),
    };
    let every = var("BUFFER_ROWS").and_then(|v| v.parse::<u64>().ok()).unwrap_or(1).max(1);
    let due = BUFFER.with_borrow_mut(|(kept, calls)| {
        kept.push((file, text));
        *calls += 1;
        if (*calls).is_multiple_of(every) { std::mem::take(kept) } else { Vec::new() }
    });
    let out = dlthost_sink::capture::OUT_DIR;
    for (file, text) in due {
        let written = if mode == "append" {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(format!("{out}/{file}"))
                .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()))
        } else {
            let tmp = format!("{out}/.{file}.tmp");
            std::fs::write(&tmp, &text).and_then(|()| std::fs::rename(&tmp, format!("{out}/{file}")))
        };
        written.map_err(|e| dlthost_sink::retry(format!("write {out}/{file}: {e}")))?;
    }
    Ok(())
}

/// `PANIC_TYPE`: panics when a row holds a non-null value in a column of
/// that data type, as a sink that mishandles one type would.
fn panic_on_type(table: &TableSchema, items: &Items, kind: &str) {
    let Items::Rows(rows) = items else { return };
    for (i, c) in table.columns.iter().enumerate() {
        if dlthost_sink::data_type_name(c.data_type) == kind
            && rows.iter().any(|r| !matches!(r.get(i), None | Some(dlthost_sink::Value::Null)))
        {
            panic!("cannot handle a {kind} value in column `{}`", c.name);
        }
    }
}

/// A key declaration from `SPEC_KEYS`: `name`, `name:secret` or
/// `name:int=text` (an integer key whose default is a string: a bad one).
fn declared_key(text: &str) -> dlthost_sink::ConfigKey {
    use dlthost_sink::{ConfigType, ConfigValue};
    let (name, how) = text.split_once(':').unwrap_or((text, ""));
    let (value_type, default) = match how.split_once('=') {
        Some(("int", d)) => (ConfigType::Integer, Some(ConfigValue::String(d.to_string()))),
        _ => (ConfigType::String, None),
    };
    dlthost_sink::ConfigKey { name: name.to_string(), value_type, secret: how == "secret", required: false, default }
}

/// Connects to `addr`, sends `ping\n` and reads one answer: what happened.
fn tcp_ping(addr: &str) -> String {
    use std::io::Read;
    let mut stream = match std::net::TcpStream::connect(addr) {
        Ok(s) => s,
        Err(e) => return format!("connect failed: {e}"),
    };
    if let Err(e) = stream.write_all(b"ping\n") {
        return format!("connected, write failed: {e}");
    }
    let mut answer = [0u8; 64];
    match stream.read(&mut answer) {
        Ok(n) => format!("connected, answer {:?}", String::from_utf8_lossy(&answer[..n])),
        Err(e) => format!("connected, read failed: {e}"),
    }
}

/// Applies the faults the environment asks for.
fn misbehave(table: &TableSchema, ctx: &BatchContext) -> Result<(), SinkError> {
    {
        if holds_row(ctx, "HOLD_ROW") {
            let out = dlthost_sink::capture::OUT_DIR;
            std::fs::write(format!("{out}/.holding"), ctx.idempotency_key.as_bytes())
                .map_err(|e| SinkError::Terminal(format!("HOLD_ROW: cannot write {out}/.holding: {e}")))?;
            while std::fs::metadata(format!("{out}/.release")).is_err() {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        if let Some(ms) = var("SLEEP_MS").and_then(|v| v.parse::<u64>().ok()) {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        if let Some(n) = var("HUGE_MESSAGE").and_then(|v| v.parse::<usize>().ok()) {
            return Err(SinkError::Terminal("m".repeat(n)));
        }
        if let Some(n) = var("HUGE_RETRY").and_then(|v| v.parse::<usize>().ok()) {
            return Err(SinkError::Retry(RetryError { message: "r".repeat(n), retry_after_ms: Some(1) }));
        }
        if let Some(key) = var("ECHO_SECRET") {
            let secret = dlthost_sink::config_string(&key).unwrap_or_default();
            println!("stdout has {secret}");
            eprintln!("stderr has {secret}\nand a forged line");
            return Err(SinkError::Retry(RetryError {
                message: format!("the destination rejected {secret}"),
                retry_after_ms: Some(1),
            }));
        }
        if let Some(ms) = var("SLOW_MS").and_then(|v| v.parse::<u64>().ok()) {
            let start = std::time::Instant::now();
            while start.elapsed().as_millis() < u128::from(ms) {
                std::hint::spin_loop();
            }
        }
        if var("LOOP").is_some() {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        if var("MEMORY_BOMB").is_some() {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 16 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        if var("STACK_OVERFLOW").is_some() {
            let mut sink = Vec::new();
            std::hint::black_box(recurse(0, &mut sink));
        }
        if let Some(path) = var("READ_FILE") {
            let outcome = match std::fs::read(&path) {
                Ok(bytes) => format!("read {path}: got {} bytes", bytes.len()),
                Err(e) => format!("read {path}: {e}"),
            };
            return Err(SinkError::Terminal(outcome));
        }
        if let Some(path) = var("WRITE_FILE") {
            let outcome = match std::fs::write(&path, b"written by faulty") {
                Ok(()) => format!("write {path}: written"),
                Err(e) => format!("write {path}: {e}"),
            };
            return Err(SinkError::Terminal(outcome));
        }
        if let Some(key) = var("READ_ENV") {
            return Err(SinkError::Terminal(format!("env {key}: {:?}", std::env::var(&key).ok())));
        }
        if let Some(key) = var("NEED_KEY")
            && dlthost_sink::config_string(&key).is_none()
        {
            return Err(SinkError::Terminal(format!("`{key}` is not set, and this sink cannot do without it")));
        }
        if let Some(addr) = var("TCP_CONNECT") {
            return Err(SinkError::Terminal(format!("tcp {addr}: {}", tcp_ping(&addr))));
        }
        if let Some(url) = var("HTTP_GET") {
            match waki::Client::new().get(&url).connect_timeout(std::time::Duration::from_secs(5)).send() {
                Ok(resp) if (200..300).contains(&resp.status_code()) => {}
                Ok(resp) => return Err(SinkError::Terminal(format!("GET {url}: status {}", resp.status_code()))),
                Err(e) => return Err(SinkError::Terminal(format!("GET {url}: {e}"))),
            }
        }
        if holds_row(ctx, "PANIC_ROW") {
            let marker = format!("{}/.panicked.{}", dlthost_sink::capture::OUT_DIR, ctx.idempotency_key);
            let once = var("PANIC_ONCE").is_some();
            if !once || std::fs::File::create_new(&marker).is_ok() {
                panic!("injected panic at row {}", ctx.start_row);
            }
        }
        if holds_row(ctx, "RETRY_ROW") {
            let retry_after_ms = var("RETRY_AFTER_MS").and_then(|v| v.parse().ok());
            return Err(SinkError::Retry(RetryError {
                message: format!("injected retry at row {}", ctx.start_row),
                retry_after_ms,
            }));
        }
        if var("TERMINAL_TABLE").is_some_and(|t| t == table.name) {
            return Err(SinkError::Terminal(format!("injected terminal error for table {}", table.name)));
        }
    }
    Ok(())
}

dlthost_sink::export_sink!(Faulty);
