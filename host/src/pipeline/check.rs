//! `host test-sink`: drives a sink through what production will do and
//! says which rule of the contract it breaks.
//!
//! Every check writes only to tables named `dlthost_test_*`, through the
//! same code as `host run` (a fresh pipeline in a temporary directory per
//! check), or through direct calls where a check needs control of the
//! batch (replays, timing).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{PipelineError, RunRequest, Sink, SinkRequest, run};
use crate::catalog;
use crate::extract::InputSpec;
use crate::input::InputSource;
use crate::runtime::bindings::{BatchContext, Items};
use crate::runtime::{LoadCall, SinkRuntime, convert};
use crate::schema::{Column, DataType, Table, Value};

/// The table prefix every check writes to.
pub const TEST_TABLE_PREFIX: &str = "dlthost_test_";

/// How one check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// The rule, short (`types, batch 10`).
    pub check: String,
    /// Whether the sink kept it (true for a skipped check).
    pub passed: bool,
    /// Not run: the sink's spec rules the case out, or it needs an option.
    pub skipped: bool,
    /// What was seen (the error, the numbers), or why it was skipped.
    pub detail: String,
}

/// What to check beyond the defaults.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// The most one call may take at the 99th percentile.
    pub call_budget: Duration,
    /// Calls timed for the latency check.
    pub timed_calls: usize,
    /// A shell command that prints the destination's row count of one
    /// table (`{table}` in it, and `$DLTHOST_TEST_TABLE`, name the table):
    /// with it the checks see the destination, for exactly-once after a
    /// replay and for rows held in memory past `load`'s return.
    pub count_rows: Option<String>,
    /// The size of the large-batch check when the sink sets no
    /// `max-batch-bytes`.
    pub large_batch_bytes: u64,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            call_budget: Duration::from_secs(2),
            timed_calls: 20,
            count_rows: None,
            large_batch_bytes: 64 << 20,
        }
    }
}

/// Rows whose values sit at the edges of each type: empty and long text,
/// unicode, the extremes of integers and doubles, the first and last
/// instants dlt handles, a large decimal, bytes, nested json.
pub const EDGE_ROWS: &str = concat!(
    r#"{"id": 0, "text": "", "big": -9223372036854775808, "dbl": -1.7976931348623157e308, "flag": false, "ts": "0001-01-01T00:00:00+00:00", "day": "0001-01-01", "amount": "-99999999999999999999999999999.999999999", "raw": "0x", "doc": {}}"#,
    "\n",
    r#"{"id": 1, "text": "héllo ✓ 𝄞 \u0000 \"quoted\" \\ tab\t", "big": 9223372036854775807, "dbl": 1.7976931348623157e308, "flag": true, "ts": "9999-12-31T23:59:59.999999+00:00", "day": "9999-12-31", "amount": "99999999999999999999999999999.999999999", "raw": "0x00ff10", "doc": {"a": [1, "b", null, {"c": 2.5}]}}"#,
    "\n",
    r#"{"id": 2, "text": "x", "big": 0, "dbl": 5e-324, "flag": true, "ts": "1970-01-01T00:00:00+00:00", "day": "1970-01-01", "amount": "0.000000001", "raw": "AAEC", "doc": [1, 2, 3]}"#,
    "\n",
    r#"{"id": 3, "text": null, "big": null, "dbl": -0.0, "flag": null, "ts": null, "day": null, "amount": null, "raw": null, "doc": null}"#,
    "\n",
);

/// Rows that grow the table's columns mid-load (new keys after the first
/// batches) and make child tables (lists, at nesting 1).
fn growth_rows() -> String {
    let mut text = String::new();
    for i in 0..60 {
        let line = match i {
            0..20 => format!(r#"{{"id": {i}}}"#),
            20..40 => format!(r#"{{"id": {i}, "added": "column {i}", "items": [{{"n": {i}}}, {{"n": -{i}}}]}}"#),
            _ => format!(r#"{{"id": {i}, "added": {i}, "later": true, "items": []}}"#),
        };
        text.push_str(&line);
        text.push('\n');
    }
    text
}

/// The hints that give the edge rows the types JSON cannot say.
const EDGE_HINTS: &str = r#"
[tables.dlthost_test_types.columns.day]
data_type = "date"
[tables.dlthost_test_types.columns.amount]
data_type = "decimal"
precision = 38
scale = 9
[tables.dlthost_test_types.columns.raw]
data_type = "binary"
[tables.dlthost_test_types.columns.doc]
data_type = "json"
"#;

/// Runs every check of `request`'s sink; the request's pipeline settings
/// are replaced by temporary ones.
pub fn check_sink(request: &SinkRequest, options: &CheckOptions) -> Result<Vec<CheckResult>, PipelineError> {
    let work =
        tempfile::tempdir().map_err(|e| PipelineError::Usage(format!("cannot make a temporary directory: {e}")))?;
    // 1,200 rows; 12 where every call gets a new instance (slow for
    // Python and JavaScript sinks, and enough to see each edge row alone).
    let (large, small) = (work.path().join("large.jsonl"), work.path().join("small.jsonl"));
    let hints = work.path().join("hints.toml");
    let written = std::fs::write(&large, EDGE_ROWS.repeat(300))
        .and_then(|()| std::fs::write(&small, EDGE_ROWS.repeat(3)))
        .and_then(|()| std::fs::write(&hints, EDGE_HINTS));
    written.map_err(|e| PipelineError::Usage(format!("cannot write the test input: {e}")))?;
    let mut results = Vec::new();
    let runs: [(&str, &str, &str, bool); 5] = [
        ("types, batch 1, a new instance per call", "1", "jsonl", true),
        ("types, batch 10", "10", "jsonl", false),
        ("types, batch 1000", "1000", "jsonl", false),
        ("types, whole jsonl job files (batch 0)", "0", "jsonl", false),
        ("types, whole parquet job files (batch 0)", "0", "parquet", false),
    ];
    let mut first: Option<Sink> = None;
    for (n, (name, batch, format, fresh)) in runs.into_iter().enumerate() {
        if let Some(reason) = first.as_ref().and_then(|s| whole_files_ruled_out(s.runtime.spec(), batch, format)) {
            results.push(CheckResult { check: name.into(), passed: true, skipped: true, detail: reason });
            continue;
        }
        let mut req = test_request(request, &work.path().join(format!("pipelines-{n}")), batch);
        req.schema_hints = Some(hints.clone());
        req.flags.set(&catalog::LOADER_FILE_FORMAT, format);
        if fresh {
            req.flags.set(&catalog::STORE_MAX_BATCHES, "1");
        }
        let sink = Sink::open(&req)?;
        results.push(run_table(name, &sink, if fresh { &small } else { &large }, "dlthost_test_types"));
        if n == 0 {
            results.push(spec_agrees(&sink.runtime));
            first = Some(sink);
        }
    }
    results.push(growth_run(request, work.path())?);
    results.push(large_batch_run(request, work.path(), options)?);
    if let Some(sink) = &mut first {
        let nonce = nonce();
        let counter = options.count_rows.as_deref().map(RowCounter::new);
        results.push(replay(&sink.runtime, &nonce, counter.as_ref()));
        results.push(match &counter {
            Some(counter) => rows_not_held(&sink.runtime, &nonce, counter),
            None => CheckResult {
                check: HELD_CHECK.into(),
                passed: true,
                skipped: true,
                detail: "give --count-rows CMD, a command that prints the destination's row count of a table".into(),
            },
        });
        results.push(timing(&sink.runtime, options, &nonce));
        results.push(keys_read(&sink.runtime));
        // Last: it changes the runtime's config.
        results.push(optional_keys_unset(&mut sink.runtime, &nonce));
    }
    Ok(results)
}

/// Why a whole-file check does not apply to this sink: it asks for
/// batches (a batch size above 0), or declares the other file format.
fn whole_files_ruled_out(
    spec: Option<&crate::runtime::bindings::SinkSpec>,
    batch: &str,
    format: &str,
) -> Option<String> {
    let spec = spec?;
    if batch != "0" {
        return None;
    }
    if let Some(n) = spec.batch_size.filter(|n| *n > 0) {
        return Some(format!(
            "the sink's spec asks for batches of {n} rows (--batch-size 0 would hand it whole files)"
        ));
    }
    let declared = spec.loader_file_format.map(|f| convert::file_format_from(f).extension())?;
    (declared != format).then(|| format!("the sink's spec declares {declared} job files"))
}

/// A value unique to this check run, for idempotency keys: a sink that
/// remembers keys across runs must still see new ones.
fn nonce() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("{:x}{:05x}", now.as_nanos(), std::process::id())
}

fn result(check: &str, outcome: Result<String, String>) -> CheckResult {
    match outcome {
        Ok(detail) => CheckResult { check: check.into(), passed: true, skipped: false, detail },
        Err(detail) => CheckResult { check: check.into(), passed: false, skipped: false, detail },
    }
}

/// A check's request: `request` in a pipeline of its own under
/// `pipelines_dir`, at `batch` rows per call, one worker, one attempt (a
/// sink's first answer is the one judged).
fn test_request(request: &SinkRequest, pipelines_dir: &Path, batch: &str) -> SinkRequest {
    let mut req = request.clone();
    req.pipelines_dir = pipelines_dir.to_path_buf();
    req.pipeline = Some("dlthost_test".into());
    req.flags.set(&catalog::BATCH_SIZE, batch);
    req.flags.set(&catalog::WORKERS, "1");
    req.flags.set(&catalog::MAX_ATTEMPTS, "1");
    req
}

/// `input` into `table` through `host run`'s code: every batch must be
/// accepted.
fn run_table(name: &str, sink: &Sink, input: &Path, table: &str) -> CheckResult {
    let inputs =
        vec![InputSpec { source: InputSource::File(input.to_path_buf()), table: table.into(), table_from_field: None }];
    let request = RunRequest { normalize_threads: 1, ..RunRequest::new(inputs) };
    run_result(name, run(sink, &request, Arc::new(())))
}

/// Columns added mid-load, a variant column and a child table, batch 10.
fn growth_run(request: &SinkRequest, work: &Path) -> Result<CheckResult, PipelineError> {
    let name = "columns added mid-load, a child table (nesting 1)";
    let input = work.join("growth.jsonl");
    std::fs::write(&input, growth_rows())
        .map_err(|e| PipelineError::Usage(format!("cannot write the test input: {e}")))?;
    let mut req = test_request(request, &work.join("pipelines-growth"), "10");
    req.flags.set(&catalog::MAX_NESTING_LEVEL, "1");
    let sink = Sink::open(&req)?;
    Ok(run_table(name, &sink, &input, "dlthost_test_growth"))
}

/// A check's result from a run's: every row delivered, or the first
/// refusal.
fn run_result(name: &str, outcome: Result<super::RunOutcome, PipelineError>) -> CheckResult {
    let report = match outcome {
        Ok(o) => o.report,
        Err(e) => return result(name, Err(format!("the run failed: {e}"))),
    };
    match report.failures.first() {
        None if report.ok() => {
            let tables = report.tables.len();
            result(name, Ok(format!("{} rows in {} calls, {tables} table(s)", report.rows(), report.calls)))
        }
        None => result(name, Err("the run did not finish".into())),
        Some(f) => result(
            name,
            Err(format!(
                "rows {}..{} of `{}` were refused: {}",
                f.start_row,
                f.start_row + f.row_count,
                f.table,
                f.error
            )),
        ),
    }
}

/// `spec()` on three fresh instances: the same answer as the first.
fn spec_agrees(runtime: &SinkRuntime) -> CheckResult {
    let name = "spec() is the same on every instance";
    let Some(first) = runtime.spec().cloned() else { return result(name, Err("no spec".into())) };
    for i in 0..3 {
        let answer =
            runtime.guarded(None).map_err(|e| e.to_string()).and_then(|mut g| g.spec().map_err(|e| e.to_string()));
        match answer {
            Ok(spec) if spec == first => {}
            Ok(spec) => {
                return result(
                    name,
                    Err(format!("instance {} answered another spec: {spec:?}, the first: {first:?}", i + 2)),
                );
            }
            Err(e) => return result(name, Err(format!("instance {}: {e}", i + 2))),
        }
    }
    result(name, Ok("4 instances agree".into()))
}

/// A small table and batch for direct calls.
fn probe_batch(
    table: &str,
    rows: u64,
    key: &str,
) -> (Arc<crate::runtime::bindings::TableSchema>, BatchContext, Arc<Items>) {
    let mut table = Table::new(table);
    table.columns = vec![Column::new("id", DataType::Bigint), Column::new("note", DataType::Text)];
    let wit_table = Arc::new(convert::table(&table));
    let rows: Vec<_> = (0..rows)
        .map(|i| convert::row(vec![Value::Bigint(i as i64), Value::Text(format!("row {i}").into())]))
        .collect();
    let ctx = BatchContext {
        load_id: "0000000000.0000000".into(),
        job_id: format!("{}.0.jsonl", table.name),
        batch_index: 0,
        start_row: 0,
        row_count: rows.len() as u64,
        idempotency_key: key.into(),
        attempt: 1,
    };
    (wit_table, ctx, Arc::new(Items::Rows(rows)))
}

/// The same batch, with the same idempotency key, on two instances: both
/// calls must succeed (a sink drops the replay, it does not fail on it),
/// and with a row counter the destination holds the batch's rows once.
fn replay(runtime: &SinkRuntime, nonce: &str, counter: Option<&RowCounter>) -> CheckResult {
    let table_name = "dlthost_test_replay";
    let name = if counter.is_some() {
        "a replayed batch (same idempotency key) is stored once"
    } else {
        "a replayed batch (same idempotency key) is accepted"
    };
    let before = match counter.map(|c| c.count(table_name)).transpose() {
        Ok(n) => n,
        Err(e) => return result(name, Err(e)),
    };
    let (table, ctx, items) = probe_batch(table_name, 10, &format!("dlthost-test-replay-{nonce}"));
    for attempt in 1..=2u32 {
        let call =
            LoadCall { table: table.clone(), ctx: BatchContext { attempt, ..ctx.clone() }, items: items.clone() };
        if let Err(e) = call_on_new_instance(runtime, call) {
            return result(name, Err(format!("call {attempt}: {e}")));
        }
    }
    let (Some(counter), Some(before)) = (counter, before) else {
        return result(name, Ok("2 calls, both ok (give --count-rows CMD to check the destination)".into()));
    };
    match counter.count(table_name) {
        Ok(after) if after == before + 10 => result(name, Ok(format!("10 rows sent twice, {} stored", after - before))),
        Ok(after) => result(
            name,
            Err(format!(
                "10 rows sent twice under one idempotency key, and the destination's count of `{table_name}` went from {before} to {after}: a replay must be dropped"
            )),
        ),
        Err(e) => result(name, Err(e)),
    }
}

const HELD_CHECK: &str = "rows are stored when load returns (none held in memory)";

/// A batch's rows are at the destination when `load` returns ok, while
/// the instance is still alive: a sink that buffers rows in instance
/// memory loses them when the instance is replaced or the process dies,
/// after the host recorded the batch as delivered.
fn rows_not_held(runtime: &SinkRuntime, nonce: &str, counter: &RowCounter) -> CheckResult {
    let table_name = "dlthost_test_held";
    let before = match counter.count(table_name) {
        Ok(n) => n,
        Err(e) => return result(HELD_CHECK, Err(e)),
    };
    let mut instance = match runtime.guarded(None) {
        Ok(i) => i,
        Err(e) => return result(HELD_CHECK, Err(e.to_string())),
    };
    let (table, ctx, items) = probe_batch(table_name, 10, &format!("dlthost-test-held-{nonce}"));
    match instance.load(LoadCall { table, ctx, items }) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return result(HELD_CHECK, Err(format!("load answered {}", runtime.sink_text(&format!("{e:?}")))));
        }
        Err(e) => return result(HELD_CHECK, Err(e.to_string())),
    }
    // Counted before the instance is dropped.
    let after = counter.count(table_name);
    drop(instance);
    match after {
        Ok(after) if after == before + 10 => result(HELD_CHECK, Ok("10 rows stored before the next call".into())),
        Ok(after) => result(
            HELD_CHECK,
            Err(format!(
                "load returned ok for 10 rows, and the destination's count of `{table_name}` went from {before} to {after}: rows must be durable before load returns"
            )),
        ),
        Err(e) => result(HELD_CHECK, Err(e)),
    }
}

/// One call on a fresh instance: `Err` unless the sink answered ok.
fn call_on_new_instance(runtime: &SinkRuntime, call: LoadCall) -> Result<(), String> {
    let mut instance = runtime.guarded(None).map_err(|e| e.to_string())?;
    match instance.load(call) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("answered {}", runtime.sink_text(&format!("{e:?}")))),
        Err(e) => Err(e.to_string()),
    }
}

/// The user's command that prints a table's row count at the destination.
struct RowCounter {
    command: String,
}

impl RowCounter {
    fn new(command: &str) -> RowCounter {
        RowCounter { command: command.to_string() }
    }

    /// The count of `table`: the command's stdout, one integer.
    fn count(&self, table: &str) -> Result<u64, String> {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(self.command.replace("{table}", table))
            .env("DLTHOST_TEST_TABLE", table)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| format!("--count-rows: cannot run sh: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let stderr: String = stderr.chars().take(500).collect();
            return Err(format!("--count-rows for `{table}` exited with {}: {}", out.status, stderr.trim()));
        }
        stdout.trim().parse().map_err(|_| {
            let shown: String = stdout.chars().take(100).collect();
            format!("--count-rows for `{table}` printed {shown:?}, not a row count")
        })
    }
}

/// One batch as large as the sink allows: its `max-batch-bytes` (the host
/// cuts batches there, so several calls near the bound), or 64 MiB.
fn large_batch_run(request: &SinkRequest, work: &Path, options: &CheckOptions) -> Result<CheckResult, PipelineError> {
    let mut req = test_request(request, &work.join("pipelines-large"), "100000");
    let sink = Sink::open(&req)?;
    let bound = sink.runtime.spec().and_then(|s| s.max_batch_bytes);
    let (name, total) = match bound {
        Some(b) => (format!("batches cut at the sink's max-batch-bytes ({b} bytes)"), b.saturating_mul(5) / 2),
        None => (format!("one batch of {} MiB", options.large_batch_bytes >> 20), options.large_batch_bytes),
    };
    // Rows of up to 64 KiB of text, at least 10 rows per batch.
    let cell = (total / 40).clamp(1, 64 << 10) as usize;
    let rows = (total as usize / (cell + 24)).max(1);
    let input = work.join("large-batch.jsonl");
    let text = "x".repeat(cell);
    let mut body = String::with_capacity(rows * (cell + 40));
    for i in 0..rows {
        body.push_str(&format!("{{\"id\": {i}, \"payload\": \"{text}\"}}\n"));
    }
    std::fs::write(&input, body).map_err(|e| PipelineError::Usage(format!("cannot write the test input: {e}")))?;
    req.flags.set(&catalog::BATCH_SIZE, rows.to_string());
    let sink = if bound.is_some() { sink } else { Sink::open(&req)? };
    Ok(run_table(&name, &sink, &input, "dlthost_test_large"))
}

/// Latency of `timed_calls` calls of 100 rows on one instance, against
/// the budget.
fn timing(runtime: &SinkRuntime, options: &CheckOptions, nonce: &str) -> CheckResult {
    let name = "call latency within the budget";
    let mut instance = match runtime.guarded(None) {
        Ok(i) => i,
        Err(e) => return result(name, Err(e.to_string())),
    };
    let mut took = Vec::new();
    for n in 0..options.timed_calls.max(1) {
        let (table, ctx, items) =
            probe_batch("dlthost_test_calls", 100, &format!("dlthost-test-timing-{nonce}-{n:04}"));
        let ctx = BatchContext { batch_index: n as u32, start_row: 100 * n as u64, ..ctx };
        let started = Instant::now();
        match instance.load(LoadCall { table, ctx, items }) {
            Ok(Ok(())) => took.push(started.elapsed()),
            Ok(Err(e)) => {
                return result(name, Err(format!("call {} answered {}", n + 1, runtime.sink_text(&format!("{e:?}")))));
            }
            Err(e) => return result(name, Err(format!("call {}: {e}", n + 1))),
        }
    }
    took.sort();
    let at = |q: f64| took[((took.len() - 1) as f64 * q).round() as usize];
    let (p50, p99) = (at(0.5), at(0.99));
    let secs: f64 = took.iter().map(Duration::as_secs_f64).sum();
    let detail = format!(
        "p50 {p50:.1?}, p99 {p99:.1?}, {:.0} calls/s (budget {:?}, --call-budget)",
        took.len() as f64 / secs.max(1e-9),
        options.call_budget
    );
    result(name, if p99 <= options.call_budget { Ok(detail) } else { Err(detail) })
}

/// Every key the sink declares was read through `config.get` during the
/// checks: a declared key it never reads is a setting users fill in for
/// nothing (or a secret it does not need).
fn keys_read(runtime: &SinkRuntime) -> CheckResult {
    let name = "every declared key is read";
    let declared = runtime.spec().map_or(0, |s| s.config.len());
    let unread = runtime.keys_not_read();
    if unread.is_empty() {
        result(name, Ok(format!("{declared} declared, all read")))
    } else {
        let list = unread.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
        result(name, Err(format!("declared but never read through config.get: {list}")))
    }
}

/// A call with only what a user must give: the required keys (as
/// resolved) and the declared defaults; every optional key without a
/// default unset. A sink must not depend on a setting it calls optional.
fn optional_keys_unset(runtime: &mut SinkRuntime, nonce: &str) -> CheckResult {
    let name = "optional settings left unset (required keys and defaults only)";
    let Some(spec) = runtime.spec().cloned() else { return result(name, Err("no spec".into())) };
    let unset: Vec<String> =
        spec.config.iter().filter(|k| !k.required && k.default.is_none()).map(|k| format!("`{}`", k.name)).collect();
    if unset.is_empty() {
        return CheckResult {
            check: name.into(),
            passed: true,
            skipped: true,
            detail: "every declared key is required or has a default".into(),
        };
    }
    let mut reduced = std::collections::BTreeMap::new();
    for key in &spec.config {
        let value = if key.required { runtime.config().get(&key.name).cloned() } else { key.default.clone() };
        if let Some(v) = value {
            reduced.insert(key.name.clone(), v);
        }
    }
    runtime.set_config(reduced);
    let (table, ctx, items) = probe_batch("dlthost_test_defaults", 10, &format!("dlthost-test-defaults-{nonce}"));
    match call_on_new_instance(runtime, LoadCall { table, ctx, items }) {
        Ok(()) => result(name, Ok(format!("10 rows accepted without {}", unset.join(", ")))),
        Err(e) => result(name, Err(format!("without {}: {e}", unset.join(", ")))),
    }
}

/// The checks as a table, and whether all passed.
pub fn render(results: &[CheckResult]) -> (String, bool) {
    let width = results.iter().map(|r| r.check.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for r in results {
        let mark = match (r.skipped, r.passed) {
            (true, _) => "skip",
            (false, true) => "pass",
            (false, false) => "FAIL",
        };
        out.push_str(&format!("{mark}  {:<width$}  {}\n", r.check, r.detail));
    }
    let failed = results.iter().filter(|r| !r.passed).count();
    (out, failed == 0)
}
