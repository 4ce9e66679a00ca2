//! Rows go from an input file through a load package into `capture`
//! unchanged, in order, exactly once, for every batch size and worker count.

use std::collections::HashSet;

use e2e::{Scratch, rows_of, stderr};
use serde_json::{Value, json};

/// 25 records with every JSON shape (ints, floats, bools, text with quotes
/// and unicode, ISO timestamps with offsets, nested objects and lists,
/// nulls, a column that appears late), and the row `capture` must receive
/// for each.
pub(crate) fn events() -> (String, Vec<Value>) {
    let mut input = String::new();
    let mut expected = Vec::new();
    for i in 0..25i64 {
        let name = if i % 7 == 0 { format!("q\"uo▶te {i}") } else { format!("name-{i}") };
        let day = i % 28 + 1;
        let mut rec = json!({
            "id": i,
            "name": name,
            "score": if i % 5 == 0 { Value::Null } else { json!(i as f64 + 0.25) },
            "ok": i % 2 == 0,
            "at": format!("2024-01-{day:02}T03:04:05+02:00"),
            "meta": if i % 3 == 0 { Value::Null } else { json!({"k": [i, i + 1], "s": "x"}) },
        });
        if i >= 20 {
            rec["note"] = json!("late");
        }
        input.push_str(&rec.to_string());
        input.push('\n');
        expected.push(json!({
            "id": i,
            "name": rec["name"],
            "ok": i % 2 == 0,
            "at": format!("2024-01-{day:02}T01:04:05.000000Z"),
            "score": rec["score"],
            "meta": rec["meta"],
            "note": if i >= 20 { json!("late") } else { Value::Null },
        }));
    }
    (input, expected)
}

const EVENT_COLUMNS: [(&str, &str); 7] = [
    ("id", "bigint"),
    ("name", "text"),
    ("ok", "bool"),
    ("at", "timestamp"),
    ("score", "double"),
    ("meta", "json"),
    ("note", "text"),
];

fn assert_ok(out: &std::process::Output) {
    assert!(out.status.success(), "host failed ({:?}):\n{}", out.status.code(), stderr(out));
}

/// Checks the contexts of a table's calls: contiguous start rows, counts that
/// match the rows, batch indexes in order, one load id, unique keys.
pub(crate) fn assert_contexts(docs: &[Value], table: &str, batch_sizes: &[usize]) {
    let calls: Vec<&Value> = docs.iter().filter(|d| d["table"]["name"] == table).collect();
    let sizes: Vec<usize> = calls.iter().map(|d| d["rows"].as_array().map_or(0, Vec::len)).collect();
    assert_eq!(sizes, batch_sizes, "batch sizes of {table}");
    let mut next = 0u64;
    let mut keys = HashSet::new();
    for (i, d) in calls.iter().enumerate() {
        let c = &d["context"];
        assert_eq!(c["start_row"], json!(next), "start row of call {i}");
        assert_eq!(c["row_count"], json!(sizes[i]), "row count of call {i}");
        assert_eq!(c["batch_index"], json!(i), "batch index of call {i}");
        assert_eq!(c["attempt"], json!(1));
        assert_eq!(c["load_id"], calls[0]["context"]["load_id"]);
        assert!(keys.insert(c["idempotency_key"].as_str().expect("key").to_string()), "duplicate idempotency key");
        next += sizes[i] as u64;
    }
}

pub(crate) fn assert_event_schema(doc: &Value) {
    let cols: Vec<(String, String)> = doc["table"]["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_string(),
                c["data_type"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = EVENT_COLUMNS.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect();
    assert_eq!(cols, want);
    assert_eq!(doc["table"]["parent"], Value::Null);
    assert_eq!(doc["table"]["write_disposition"], "append");
}

fn check_events(batch_size: usize, expected_sizes: &[usize]) {
    let s = Scratch::new();
    let (input, expected) = events();
    let file = s.file("events.jsonl", &input);
    let out = s.run_capture(&["--input", file.to_str().expect("utf8"), "--batch-size", &batch_size.to_string()]);
    assert_ok(&out);
    let docs = s.captured();
    assert_contexts(&docs, "events", expected_sizes);
    for d in &docs {
        assert_event_schema(d);
        for row in d["rows"].as_array().expect("rows") {
            assert_eq!(
                row.as_object().map(|o| o.len()),
                Some(EVENT_COLUMNS.len()),
                "every row carries every column: {row}"
            );
        }
    }
    assert_eq!(rows_of(&docs, "events"), expected);
}

#[test]
fn batch_size_1_delivers_every_row_alone() {
    check_events(1, &[1; 25]);
}

#[test]
fn batch_size_10_delivers_full_batches_then_the_rest() {
    check_events(10, &[10, 10, 5]);
}

#[test]
fn batch_size_0_hands_over_the_whole_job_file() {
    let s = Scratch::new();
    let (input, expected) = events();
    let file = s.file("events.jsonl", &input);
    let out = s.run_capture(&["--input", file.to_str().expect("utf8"), "--batch-size", "0"]);
    assert_ok(&out);
    let docs = s.captured();
    assert_eq!(docs.len(), 1, "one call per job file");
    let f = &docs[0]["file"];
    assert_eq!(f["format"], "jsonl");
    assert_eq!(f["row_count"], 25);
    let path = f["path"].as_str().expect("path");
    assert!(path.starts_with("/job/events.") && path.ends_with(".0.jsonl"), "{path}");
    assert_event_schema(&docs[0]);
    assert_eq!(rows_of(&docs, "events"), expected);
}

#[test]
fn several_tables_on_several_workers() {
    let s = Scratch::new();
    let mut args: Vec<String> = Vec::new();
    let sizes = [("alpha", 30), ("beta", 7), ("gamma", 12)];
    for (name, n) in sizes {
        let body: String = (0..n).map(|i| format!("{{\"n\":{i},\"t\":\"{name}\"}}\n")).collect();
        args.push("--input".into());
        args.push(s.file(&format!("{name}.jsonl"), &body).to_string_lossy().into_owned());
    }
    args.extend(["--workers", "3", "--batch-size", "4", "--json"].map(String::from));
    let out = s.run_capture(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_ok(&out);
    let docs = s.captured();
    for (name, n) in sizes {
        let want: Vec<Value> = (0..n).map(|i| json!({"n": i, "t": name})).collect();
        assert_eq!(rows_of(&docs, name), want, "rows of {name}");
        let mut batches = vec![4; n / 4];
        if n % 4 != 0 {
            batches.push(n % 4);
        }
        assert_contexts(&docs, name, &batches);
    }
    // The --json summary on stdout agrees with what the sink saw.
    let summary: Value = serde_json::from_slice(&out.stdout).expect("summary JSON on stdout");
    assert_eq!(summary["tables"]["alpha"]["rows"], 30);
    assert_eq!(summary["tables"]["gamma"]["jobs"], 1);
    assert_eq!(summary["failures"], json!([]));
}

#[test]
fn rerun_loads_new_input_only_once_each() {
    let s = Scratch::new();
    let a = s.file("items.jsonl", "{\"v\":1}\n{\"v\":2}\n");
    assert_ok(&s.run_capture(&["--input", a.to_str().expect("utf8")]));
    let b = s.file("items.json", "[{\"v\":3}]");
    assert_ok(&s.run_capture(&["--input", b.to_str().expect("utf8")]));
    let docs = s.captured();
    assert_eq!(rows_of(&docs, "items"), vec![json!({"v": 1}), json!({"v": 2}), json!({"v": 3})]);
    let loaded = std::fs::read_dir(s.pipelines().join("capture/load/loaded")).expect("loaded dir").count();
    assert_eq!(loaded, 2, "both packages completed");
}

#[test]
fn stdin_input_with_a_table_name() {
    let s = Scratch::new();
    let mut cmd = std::process::Command::new(e2e::host_bin());
    cmd.arg("run").arg("--component").arg(e2e::guest("capture"));
    cmd.arg("--pipelines-dir").arg(s.pipelines());
    cmd.arg("--dir").arg(format!("{}::/out", s.out().display()));
    cmd.args(["--input", "-", "--table", "piped"]);
    cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn host");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"{\"a\":1}\n{\"a\":2}\n").expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait");
    assert_ok(&out);
    assert_eq!(rows_of(&s.captured(), "piped"), vec![json!({"a": 1}), json!({"a": 2})]);
}

#[test]
fn table_from_field_routes_rows() {
    let s = Scratch::new();
    let input = s.file(
        "events.jsonl",
        "{\"kind\":\"click\",\"x\":1}\n{\"kind\":\"view\",\"x\":2}\n{\"x\":3}\n{\"kind\":\"click\",\"x\":4}\n",
    );
    let out = s.run_capture(&["--input", input.to_str().expect("utf8"), "--table-from-field", "kind"]);
    assert_ok(&out);
    let docs = s.captured();
    assert_eq!(rows_of(&docs, "click"), vec![json!({"kind": "click", "x": 1}), json!({"kind": "click", "x": 4})]);
    assert_eq!(rows_of(&docs, "view"), vec![json!({"kind": "view", "x": 2})]);
    assert_eq!(rows_of(&docs, "events"), vec![json!({"x": 3})], "rows without the field go to the default table");
}
