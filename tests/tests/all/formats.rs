//! Every data type survives input → job file (jsonl or parquet) → sink
//! unchanged, for batch sizes 1, 7, 1000 and 0 (whole files), including table
//! names that are not file-name safe.

use e2e::{Scratch, rows_of, stderr};
use serde_json::{Value, json};

const HINTS: &str = r#"
[tables.TABLE.columns.price]
data_type = "decimal"
precision = 10
scale = 2

[tables.TABLE.columns.day]
data_type = "date"

[tables.TABLE.columns.clock]
data_type = "time"

[tables.TABLE.columns.blob]
data_type = "binary"
"#;

/// 20 records and the rows the sink must see (columns in schema order:
/// hinted ones first, then as they appear).
fn things() -> (String, Vec<Value>) {
    let mut input = String::new();
    let mut expected = Vec::new();
    for i in 0..20i64 {
        let blob = ["AAE=", "/w==", "aGk="][i as usize % 3];
        let rec = json!({
            "id": i,
            "price": format!("{}.{:02}", i * 3, i),
            "day": format!("2024-02-{:02}", i + 1),
            "clock": format!("{:02}:15:30.{:06}", i, i * 7),
            "blob": blob,
            "at": format!("2024-03-01T00:00:{:02}.123456+01:00", i),
            "ok": i % 2 == 0,
            "f": i as f64 / 4.0,
            "meta": {"k": [i], "s": "▶"},
            "name": if i % 4 == 0 { Value::Null } else { json!(format!("n{i}")) },
        });
        input.push_str(&rec.to_string());
        input.push('\n');
        expected.push(json!({
            "price": rec["price"],
            "day": rec["day"],
            "clock": rec["clock"],
            "blob": rec["blob"],
            "id": i,
            "at": format!("2024-02-29T23:00:{:02}.123456Z", i),
            "ok": rec["ok"],
            "f": rec["f"],
            "meta": rec["meta"],
            "name": rec["name"],
        }));
    }
    (input, expected)
}

/// Runs `things()` through `capture` with the hints, into `table`, plus `extra`.
fn run_things(s: &Scratch, table: &str, extra: &[&str]) -> std::process::Output {
    let (input, _) = things();
    let file = s.file("input.jsonl", &input);
    // A quoted TOML key holds any table name.
    let hints = s.file("hints.toml", &HINTS.replace("TABLE", &format!("\"{table}\"")));
    let mut args = vec![
        "--input",
        file.to_str().expect("utf8"),
        "--table",
        table,
        "--schema-hints",
        hints.to_str().expect("utf8"),
    ];
    args.extend_from_slice(extra);
    s.run_capture(&args)
}

fn load(format: &str, batch: &str, table: &str) -> (Scratch, Vec<Value>) {
    let s = Scratch::new();
    let out = run_things(&s, table, &["--loader-file-format", format, "--batch-size", batch]);
    assert!(out.status.success(), "{format} batch {batch}: {}", stderr(&out));
    let docs = s.captured();
    (s, docs)
}

#[test]
fn every_type_survives_jsonl_and_parquet_at_every_batch_size() {
    let (_, expected) = things();
    for format in ["jsonl", "parquet"] {
        for (batch, calls) in [("1", 20), ("7", 3), ("1000", 1), ("0", 1)] {
            let (_, docs) = load(format, batch, "things");
            assert_eq!(docs.len(), calls, "{format} batch {batch}");
            let rows = rows_of(&docs, "things");
            assert_eq!(rows, expected, "{format} batch {batch}");
            let cols: Vec<(String, String)> = docs[0]["table"]["columns"]
                .as_array()
                .expect("columns")
                .iter()
                .map(|c| (c["name"].as_str().unwrap_or("").into(), c["data_type"].as_str().unwrap_or("").into()))
                .collect();
            assert_eq!(cols[0], ("price".to_string(), "decimal".to_string()));
            assert_eq!(docs[0]["table"]["columns"][0]["precision"], 10);
            if batch == "0" {
                assert_eq!(docs[0]["file"]["format"], format);
                assert!(docs[0]["file"]["path"].as_str().unwrap_or("").ends_with(&format!(".0.{format}")));
            }
        }
    }
}

#[test]
fn table_names_that_are_not_file_name_safe() {
    let (_, expected) = things();
    let long = "t".repeat(300);
    for table in ["a/b.c", long.as_str()] {
        for format in ["jsonl", "parquet"] {
            let (s, docs) = load(format, "1000", table);
            assert_eq!(rows_of(&docs, table), expected, "{format} {}", &table[..5.min(table.len())]);
            let pkg = s.only_package("capture", "loaded");
            for entry in std::fs::read_dir(pkg.join("completed_jobs")).expect("jobs") {
                let name = entry.expect("entry").file_name().to_string_lossy().into_owned();
                assert!(!name.contains('/') && name.len() < 200, "{name}");
            }
        }
    }
}

#[test]
fn gzip_jsonl_job_files_deliver_the_same_rows() {
    let (_, expected) = things();
    for batch in ["7", "0"] {
        let s = Scratch::new();
        let out = run_things(&s, "things", &["--gzip-jobs", "--batch-size", batch]);
        assert!(out.status.success(), "{}", stderr(&out));
        let docs = s.captured();
        assert_eq!(rows_of(&docs, "things"), expected, "batch {batch}");
        assert!(docs[0]["context"]["job_id"].as_str().unwrap_or("").ends_with(".jsonl.gz"));
        if batch == "0" {
            assert!(docs[0]["file"]["path"].as_str().unwrap_or("").ends_with(".0.jsonl.gz"));
        }
    }
}

#[test]
fn a_sink_that_asks_for_arrow_ipc_gets_every_row() {
    let (_, expected) = things();
    let s = Scratch::new();
    let args = ["--batch-size", "7", "--env", "CAPTURE_ITEMS=arrow-ipc"];
    // Arrow IPC batches come from parquet job files; jsonl is refused with a hint.
    let out = run_things(&s, "things", &args);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--loader-file-format parquet"), "{}", stderr(&out));
    let mut with_parquet = args.to_vec();
    with_parquet.extend(["--loader-file-format", "parquet"]);
    let out = run_things(&s, "things", &with_parquet);
    assert!(out.status.success(), "{}", stderr(&out));
    let docs = s.captured();
    assert_eq!(docs.len(), 3, "batches of 7, 7, 6");
    assert_eq!(rows_of(&docs, "things"), expected);
}

#[test]
fn parquet_files_are_accepted_as_input() {
    // Make a parquet file with our own pipeline, then load it as input.
    let (s, _) = load("parquet", "1000", "things");
    let pkg = s.only_package("capture", "loaded");
    let job = std::fs::read_dir(pkg.join("completed_jobs")).expect("jobs").next().expect("job").expect("e").path();
    let input = s.path().join("again.parquet");
    std::fs::copy(&job, &input).expect("copy");
    std::fs::remove_dir_all(s.out()).expect("clear out");
    std::fs::create_dir_all(s.out()).expect("out");
    let out = s.run_capture(&["--input", input.to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let docs = s.captured();
    let rows = rows_of(&docs, "again");
    assert_eq!(rows.len(), 20);
    let types: std::collections::BTreeMap<String, String> = docs[0]["table"]["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| (c["name"].as_str().unwrap_or("").into(), c["data_type"].as_str().unwrap_or("").into()))
        .collect();
    // Every type comes back as itself, with no hints: Parquet says what
    // JSON cannot (decimal with its precision and scale, date, time,
    // binary); only json, which Parquet has no type for, comes back as text.
    let want = [
        ("price", "decimal"),
        ("day", "date"),
        ("clock", "time"),
        ("blob", "binary"),
        ("id", "bigint"),
        ("at", "timestamp"),
        ("ok", "bool"),
        ("f", "double"),
        ("meta", "text"),
        ("name", "text"),
    ];
    for (column, data_type) in want {
        assert_eq!(types[column], data_type, "{column}");
    }
    let price = &docs[0]["table"]["columns"][0];
    assert_eq!((price["name"].as_str(), &price["precision"], &price["scale"]), (Some("price"), &json!(10), &json!(2)));
    let (_, mut expected) = things();
    for row in &mut expected {
        row["meta"] = json!(row["meta"].to_string());
    }
    assert_eq!(rows, expected);
}

/// A decimal with more digits than its declared shape holds goes to the
/// variant column in both formats: Parquet could not store it (the run used
/// to fail writing the job file) and must not round it.
#[test]
fn decimals_beyond_the_declared_shape_become_variants_in_both_formats() {
    for format in ["jsonl", "parquet"] {
        let s = Scratch::new();
        let input =
            s.file("input.jsonl", "{\"price\": \"12.5\"}\n{\"price\": \"123456789.5\"}\n{\"price\": \"0.125\"}\n");
        let hints = s.file("hints.toml", &HINTS.replace("TABLE", "t"));
        let out = s.run_capture(&[
            "--input",
            input.to_str().expect("utf8"),
            "--table",
            "t",
            "--schema-hints",
            hints.to_str().expect("utf8"),
            "--loader-file-format",
            format,
        ]);
        assert!(out.status.success(), "{format}: {}", stderr(&out));
        let prices: Vec<(Value, Value)> =
            rows_of(&s.captured(), "t").iter().map(|r| (r["price"].clone(), r["price▶v_text"].clone())).collect();
        let first = if format == "parquet" { "12.50" } else { "12.5" };
        assert_eq!(
            prices,
            [(json!(first), Value::Null), (Value::Null, json!("123456789.5")), (Value::Null, json!("0.125")),],
            "{format}"
        );
    }
}
