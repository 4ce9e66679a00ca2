//! `--metrics-file`: read with the Prometheus text parser of the official
//! Python client (Debian's python3-prometheus-client), during a run at a
//! point the test chose and after it, and checked against the summary.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e::{Scratch, numbered, run, stderr};
use serde_json::Value;

/// Prints `{sample name: [{labels, value}]}` of the file in argv[1].
const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(open(sys.argv[1]).read()):
    for s in family.samples:
        out.setdefault(s.name, []).append({'labels': s.labels, 'value': s.value})
print(json.dumps(out))
"#;

/// `{sample name: [{labels, value}]}` of the metrics file, by the official
/// parser; `None` while the file does not exist yet.
fn parse(file: &Path) -> Option<Value> {
    if !file.exists() {
        return None;
    }
    let script = PARSE;
    let out = Command::new("/usr/bin/python3").arg("-c").arg(script).arg(file).output().unwrap_or_else(|e| {
        panic!("the metrics test needs /usr/bin/python3 with python3-prometheus-client (apt-get install python3-prometheus-client): {e}")
    });
    assert!(
        out.status.success(),
        "the Prometheus parser refused the file (is python3-prometheus-client installed?): {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(file).unwrap_or_default()
    );
    Some(serde_json::from_slice(&out.stdout).expect("json"))
}

/// The value of sample `name` whose labels include `labels`.
fn value(m: &Value, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    m[name]
        .as_array()?
        .iter()
        .find(|s| labels.iter().all(|(k, v)| s["labels"][k] == *v))
        .and_then(|s| s["value"].as_f64())
}

#[test]
fn the_metrics_file_is_written_during_and_after_a_run_and_agrees_with_the_summary() {
    let s = Scratch::new();
    let input = s.file("t.jsonl", &numbered(20, "x"));
    let metrics = s.path().join("run.prom");
    let (input, metrics_arg) = (input.display().to_string(), metrics.display().to_string());
    let args = [
        "--input",
        &input,
        "--batch-size",
        "1",
        "--workers",
        "1",
        "--json",
        "--metrics-file",
        &metrics_arg,
        "--metrics-interval",
        "100ms",
        "--env",
        "HOLD_ROW=5",
    ];
    let mut child = s
        .command("run", "faulty", &args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    s.wait_for_hold(&mut child);
    // Rows 0..5 are confirmed and the sink holds row 5: the file catches up
    // within a few intervals, whatever the machine's speed.
    let deadline = Instant::now() + Duration::from_secs(60);
    let during = loop {
        if let Some(m) = parse(&metrics)
            && value(&m, "dlthost_rows_delivered_total", &[("table", "t")]) == Some(5.0)
        {
            break m;
        }
        assert!(Instant::now() < deadline, "the metrics file never showed the 5 rows delivered before the hold");
        std::thread::sleep(Duration::from_millis(50));
    };
    let labels = [("pipeline", "faulty"), ("sink", "faulty")];
    assert_eq!(value(&during, "dlthost_run_in_progress", &labels), Some(1.0));
    assert_eq!(value(&during, "dlthost_input_records_total", &labels), Some(20.0));
    s.release();
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).expect("summary");

    let after = parse(&metrics).expect("the final file");
    assert_eq!(value(&after, "dlthost_run_in_progress", &labels), Some(0.0));
    assert_eq!(
        value(&after, "dlthost_rows_delivered_total", &[("table", "t")]),
        summary["tables"]["t"]["rows"].as_f64()
    );
    assert_eq!(
        value(&after, "dlthost_jobs_completed_total", &[("table", "t")]),
        summary["tables"]["t"]["jobs"].as_f64()
    );
    assert_eq!(
        value(&after, "dlthost_batches_delivered_total", &[("table", "t")]),
        summary["tables"]["t"]["batches"].as_f64()
    );
    assert_eq!(value(&after, "dlthost_batches_delivered_total", &[("table", "t")]), Some(20.0), "batch size 1");
    assert_eq!(value(&after, "dlthost_sink_calls_total", &labels), summary["calls"].as_f64());
    assert_eq!(value(&after, "dlthost_sink_retries_total", &labels), summary["retries"].as_f64());
    assert_eq!(value(&after, "dlthost_sink_instances_total", &labels), summary["sandbox"]["instances"].as_f64());
    assert!(value(&after, "dlthost_phase_duration_seconds", &[("phase", "normalize")]).is_some());
    assert!(value(&after, "dlthost_phase_duration_seconds", &[("phase", "load")]).is_some());
    let success = value(&after, "dlthost_last_success_timestamp_seconds", &labels).expect("a success time");

    // A run that fails terminally: its failures are counted and the last
    // success time stays that of the run before.
    let failing = s.file("u.jsonl", &numbered(4, "y"));
    let failing = failing.display().to_string();
    let out = run(s.command(
        "run",
        "faulty",
        &[
            "--input",
            &failing,
            "--table",
            "t",
            "--metrics-file",
            &metrics_arg,
            "--env",
            "TERMINAL_TABLE=t",
            "--fuel",
            "1000000000",
        ],
    ));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let failed = parse(&metrics).expect("the file of the failed run");
    assert_eq!(value(&failed, "dlthost_job_failures", &[("table", "t"), ("kind", "terminal")]), Some(1.0));
    assert_eq!(value(&failed, "dlthost_rows_not_delivered", &[("table", "t"), ("kind", "terminal")]), Some(4.0));
    assert_eq!(value(&failed, "dlthost_last_success_timestamp_seconds", &labels), Some(success));
    let fuel = value(&failed, "dlthost_guest_fuel_consumed_total", &labels).expect("fuel");
    assert!(fuel > 0.0 && fuel <= 1e9, "with --fuel the burned fuel is counted: {fuel}");
}
