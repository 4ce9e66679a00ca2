//! `--metrics-file`: a run's metrics in the Prometheus text format, for
//! node_exporter's textfile collector (how batch jobs are scraped).
//!
//! The file is replaced atomically (written beside it, then renamed) every
//! `interval` while the run goes on, and once more at its end. Names follow
//! Prometheus conventions (`dlthost_` prefix, base units, `_total` for
//! counters); labels are the pipeline, the sink and, where it applies, the
//! table. Values come from the same report as the run summary. A run that
//! does not end in success keeps the previous file's
//! `dlthost_last_success_timestamp_seconds`, so an alert on its age fires.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::run::{Normalized, Observer};
use crate::load::LoadReport;

/// What the metrics show, updated by the run's events.
#[derive(Debug, Default, Clone)]
struct Snapshot {
    report: LoadReport,
    records: u64,
    input_bytes: u64,
    rows_normalized: u64,
    normalize_secs: Option<f64>,
    normalize_started: Option<Instant>,
    load_started: Option<Instant>,
    load_secs: Option<f64>,
    running: bool,
    /// Set at the end: did everything reach the sink.
    succeeded: Option<bool>,
}

/// Writes the metrics file while a run goes on; an [`Observer`].
pub struct MetricsFile {
    path: PathBuf,
    labels: String,
    state: Arc<(Mutex<Snapshot>, Condvar)>,
    writer: Mutex<Option<JoinHandle<()>>>,
    last_success: Option<f64>,
}

impl MetricsFile {
    /// Starts writing `path` every `interval`, with `labels` (`pipeline`,
    /// `sink`, `shard`) on every sample. Fails when the file's directory
    /// cannot be written.
    pub fn start(path: &Path, interval: Duration, labels: &[(&str, &str)]) -> std::io::Result<Arc<MetricsFile>> {
        let last_success = previous_success(path);
        let labels = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", label(v))).collect::<Vec<_>>().join(",");
        let file = Arc::new(MetricsFile {
            path: path.to_path_buf(),
            labels,
            state: Arc::new((Mutex::new(Snapshot { running: true, ..Snapshot::default() }), Condvar::new())),
            writer: Mutex::new(None),
            last_success,
        });
        file.write()?;
        let writer = Arc::downgrade(&file);
        let state = file.state.clone();
        let handle = std::thread::Builder::new().name("metrics".into()).spawn(move || {
            let (lock, wake) = &*state;
            loop {
                let Ok(guard) = lock.lock() else { return };
                // Wakes at the interval, or at once when the run has ended
                // (also if it ended before this wait began).
                let Ok((guard, _)) = wake.wait_timeout_while(guard, interval, |s| s.running) else { return };
                let running = guard.running;
                drop(guard);
                let Some(file) = writer.upgrade() else { return };
                if !running {
                    return;
                }
                if let Err(e) = file.write() {
                    tracing::warn!("cannot write the metrics file {}: {e}", file.path.display());
                }
            }
        })?;
        if let Ok(mut slot) = file.writer.lock() {
            *slot = Some(handle);
        }
        Ok(file)
    }

    /// The run ended with `report`; `succeeded` when everything was
    /// delivered. Writes the file a last time and stops the writer.
    pub fn finish(&self, report: &LoadReport, succeeded: bool) -> std::io::Result<()> {
        self.update(|s| {
            s.report = report.clone();
            s.running = false;
            s.succeeded = Some(succeeded);
        });
        self.state.1.notify_all();
        if let Some(handle) = self.writer.lock().ok().and_then(|mut h| h.take()) {
            let _ = handle.join();
        }
        self.write()
    }

    fn update(&self, f: impl FnOnce(&mut Snapshot)) {
        if let Ok(mut s) = self.state.0.lock() {
            f(&mut s);
        }
    }

    /// Renders the snapshot and replaces the file with it.
    fn write(&self) -> std::io::Result<()> {
        let snapshot = match self.state.0.lock() {
            Ok(s) => s.clone(),
            Err(_) => return Ok(()),
        };
        let text = render(&snapshot, &self.labels, self.last_success);
        let tmp = self.path.with_extension(format!("tmp.{}", std::process::id()));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &self.path)
    }
}

impl Observer for MetricsFile {
    fn normalizing(&self, _total_bytes: Option<u64>) {
        self.update(|s| s.normalize_started = Some(Instant::now()));
    }

    fn normalize_progress(&self, records: u64, bytes: u64) {
        self.update(|s| (s.records, s.input_bytes) = (records, bytes));
    }

    fn normalize_done(&self) {
        self.update(|s| s.normalize_secs = s.normalize_started.map(|t| t.elapsed().as_secs_f64()));
    }

    fn normalized(&self, n: &Normalized) {
        self.update(|s| (s.records, s.rows_normalized) = (n.records, n.rows));
    }

    fn loading(&self, _rows: u64) {
        self.update(|s| s.load_started = Some(Instant::now()));
    }

    fn load_progress(&self, report: &LoadReport) {
        self.update(|s| s.report = report.clone());
    }

    fn load_done(&self) {
        self.update(|s| s.load_secs = s.load_started.map(|t| t.elapsed().as_secs_f64()));
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The last success time in an earlier file at `path`, if any.
fn previous_success(path: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find(|l| l.starts_with("dlthost_last_success_timestamp_seconds"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// One metric family: its HELP, TYPE and samples `(extra labels, value)`.
fn family(out: &mut String, name: &str, kind: &str, help: &str, labels: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (extra, value) in samples {
        let sep = if extra.is_empty() { "" } else { "," };
        let _ = writeln!(out, "{name}{{{labels}{sep}{extra}}} {value}");
    }
}

fn render(s: &Snapshot, labels: &str, last_success: Option<f64>) -> String {
    let r = &s.report;
    let mut out = String::new();
    let per_table = |f: &dyn Fn(&crate::load::TableReport) -> u64| -> Vec<(String, f64)> {
        r.tables.iter().map(|(t, tr)| (format!("table=\"{}\"", label(t)), f(tr) as f64)).collect()
    };
    let one = |v: f64| vec![(String::new(), v)];
    family(
        &mut out,
        "dlthost_rows_delivered_total",
        "counter",
        "Rows the sink confirmed, by table.",
        labels,
        &per_table(&|t| t.rows),
    );
    family(
        &mut out,
        "dlthost_jobs_completed_total",
        "counter",
        "Jobs (job files) completed, by table.",
        labels,
        &per_table(&|t| t.jobs),
    );
    family(
        &mut out,
        "dlthost_batches_delivered_total",
        "counter",
        "Batches the sink confirmed, by table.",
        labels,
        &per_table(&|t| t.batches),
    );
    let mut failed: std::collections::BTreeMap<(String, &str), (u64, u64)> = Default::default();
    for f in r.failures.iter().chain(&r.earlier_failures) {
        let kind = if f.terminal { "terminal" } else { "retryable" };
        let entry = failed.entry((f.table.clone(), kind)).or_default();
        entry.0 += 1;
        entry.1 += f.rows_left;
    }
    let failure_samples = |pick: fn(&(u64, u64)) -> u64| -> Vec<(String, f64)> {
        failed.iter().map(|((t, k), v)| (format!("table=\"{}\",kind=\"{k}\"", label(t)), pick(v) as f64)).collect()
    };
    family(
        &mut out,
        "dlthost_job_failures",
        "gauge",
        "Jobs not delivered by this run, by table and kind (terminal: in failed_jobs/; retryable: a rerun resumes).",
        labels,
        &failure_samples(|v| v.0),
    );
    family(
        &mut out,
        "dlthost_rows_not_delivered",
        "gauge",
        "Rows of failed jobs not delivered, by table and kind.",
        labels,
        &failure_samples(|v| v.1),
    );
    family(
        &mut out,
        "dlthost_sink_calls_total",
        "counter",
        "Calls to the sink's load (batches, with repeats).",
        labels,
        &one(r.calls as f64),
    );
    family(
        &mut out,
        "dlthost_sink_retries_total",
        "counter",
        "Calls that repeated a batch after a retry error, a timeout or a trap.",
        labels,
        &one(r.retries as f64),
    );
    family(
        &mut out,
        "dlthost_sink_instance_replacements_total",
        "counter",
        "Sink instances replaced after a trap.",
        labels,
        &one(r.store_replacements as f64),
    );
    family(&mut out, "dlthost_input_records_total", "counter", "Input records read.", labels, &one(s.records as f64));
    family(&mut out, "dlthost_input_bytes_total", "counter", "Input bytes read.", labels, &one(s.input_bytes as f64));
    family(
        &mut out,
        "dlthost_rows_normalized_total",
        "counter",
        "Rows written into the new package, over all tables.",
        labels,
        &one(s.rows_normalized as f64),
    );
    family(
        &mut out,
        "dlthost_skipped_lines_total",
        "counter",
        "Malformed input lines skipped (--on-bad-line skip).",
        labels,
        &one(r.skipped_lines as f64),
    );
    let sandbox = &r.sandbox;
    family(
        &mut out,
        "dlthost_guest_seconds_total",
        "counter",
        "Seconds spent inside the sink, summed over workers (at the end of the load).",
        labels,
        &one(sandbox.guest_secs),
    );
    family(
        &mut out,
        "dlthost_guest_memory_peak_bytes",
        "gauge",
        "Most linear memory one sink instance used (at the end of the load).",
        labels,
        &one(sandbox.peak_guest_memory as f64),
    );
    family(
        &mut out,
        "dlthost_sink_instances_total",
        "counter",
        "Sink instances created (at the end of the load).",
        labels,
        &one(sandbox.instances as f64),
    );
    family(
        &mut out,
        "dlthost_guest_fuel_consumed_total",
        "counter",
        "Fuel the sink burned (with --fuel; at the end of the load).",
        labels,
        &one(sandbox.fuel_consumed as f64),
    );
    let mut http: Vec<(String, f64)> =
        sandbox.http_responses.iter().map(|(c, n)| (format!("class=\"{}\"", label(c)), *n as f64)).collect();
    http.push(("class=\"denied\"".into(), sandbox.http_denied as f64));
    family(
        &mut out,
        "dlthost_http_requests_total",
        "counter",
        "The sink's HTTP requests by answer class (2xx ...; none: no answer; denied: refused by the allow-list).",
        labels,
        &http,
    );
    family(
        &mut out,
        "dlthost_http_request_bytes_total",
        "counter",
        "Request body bytes the sink sent.",
        labels,
        &one(sandbox.http_bytes_sent as f64),
    );
    let phases: Vec<(String, f64)> = [("normalize", s.normalize_secs), ("load", s.load_secs)]
        .into_iter()
        .filter_map(|(p, secs)| secs.map(|v| (format!("phase=\"{p}\""), v)))
        .collect();
    family(
        &mut out,
        "dlthost_phase_duration_seconds",
        "gauge",
        "Wall-clock seconds of each finished phase of the run.",
        labels,
        &phases,
    );
    family(
        &mut out,
        "dlthost_run_in_progress",
        "gauge",
        "1 while the run goes on, 0 once it ended.",
        labels,
        &one(if s.running { 1.0 } else { 0.0 }),
    );
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    let success = if s.succeeded == Some(true) { Some(now) } else { last_success };
    if let Some(t) = success {
        family(
            &mut out,
            "dlthost_last_success_timestamp_seconds",
            "gauge",
            "When a run of this pipeline last delivered everything (Unix time).",
            labels,
            &one(t),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{JobFailure, TableReport};

    #[test]
    fn renders_families_with_escaped_labels_and_keeps_the_last_success() {
        let mut report = LoadReport::default();
        report.tables.insert("a\"b".into(), TableReport { rows: 7, jobs: 1, batches: 2 });
        report.failures.push(JobFailure {
            load_id: "1".into(),
            job_id: "t.1.jsonl".into(),
            table: "t".into(),
            start_row: 0,
            row_count: 2,
            terminal: true,
            rows_left: 5,
            error: "no".into(),
        });
        let s = Snapshot { report, ..Snapshot::default() };
        let text = render(&s, "pipeline=\"p\",sink=\"s\"", Some(12.5));
        assert!(text.contains("dlthost_rows_delivered_total{pipeline=\"p\",sink=\"s\",table=\"a\\\"b\"} 7"), "{text}");
        assert!(text.contains("dlthost_rows_not_delivered{pipeline=\"p\",sink=\"s\",table=\"t\",kind=\"terminal\"} 5"));
        assert!(text.contains("dlthost_last_success_timestamp_seconds{pipeline=\"p\",sink=\"s\"} 12.5"), "kept");
        assert!(text.contains("# TYPE dlthost_sink_calls_total counter"));
    }

    #[test]
    fn the_file_is_replaced_and_the_last_success_survives_a_failure() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("run.prom");
        let labels = [("pipeline", "p"), ("sink", "s")];
        let m = MetricsFile::start(&path, Duration::from_secs(60), &labels).expect("start");
        m.finish(&LoadReport::default(), true).expect("finish");
        let first = previous_success(&path).expect("a success time");
        let m = MetricsFile::start(&path, Duration::from_secs(60), &labels).expect("start");
        m.finish(&LoadReport::default(), false).expect("finish");
        assert_eq!(previous_success(&path), Some(first), "a failed run keeps the earlier success time");
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").flatten().map(|e| e.file_name()).collect();
        assert_eq!(left.len(), 1, "no temporary file left: {left:?}");
    }
}
