//! Bad input gets a clear error, a non-zero exit, and leaves nothing that a
//! later run would load.

use e2e::{Scratch, rows_of, stderr};
use serde_json::json;

#[test]
fn malformed_line_names_file_and_line_and_leaves_no_package() {
    let s = Scratch::new();
    let bad = s.file("bad.jsonl", "{\"a\":1}\n{\"a\":2}\n{\"a\": tru}\n{\"a\":4}\n");
    let out = s.run_capture(&["--input", bad.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("bad.jsonl:3:"), "names file and line: {err}");
    assert!(err.contains("malformed JSON"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(s.captured().is_empty(), "nothing delivered");
    for sub in ["normalized", "staging"] {
        let dir = s.pipelines().join("capture/load").join(sub);
        assert_eq!(std::fs::read_dir(&dir).expect("dir").count(), 0, "{sub} is empty");
    }

    // A later run with good input loads only that input.
    let good = s.file("bad.json", "[{\"a\":10}]");
    let out = s.run_capture(&["--input", good.to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(rows_of(&s.captured(), "bad"), vec![json!({"a": 10})]);
}

#[test]
fn empty_input_loads_nothing_and_succeeds() {
    let s = Scratch::new();
    let empty = s.file("empty.jsonl", "\n\n");
    let out = s.run_capture(&["--input", empty.to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("No rows"), "{}", stderr(&out));
    assert!(s.captured().is_empty());
}

#[test]
fn stdin_without_table_is_a_usage_error() {
    let s = Scratch::new();
    let out = s.run_capture(&["--input", "-"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--table"), "{}", stderr(&out));
}

#[test]
fn missing_input_file_is_a_usage_error() {
    let s = Scratch::new();
    let out = s.run_capture(&["--input", "/nonexistent/x.jsonl"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/nonexistent/x.jsonl"), "{}", stderr(&out));
}

#[test]
fn on_bad_line_skip_loads_the_rest_and_keeps_the_bad_lines() {
    let s = Scratch::new();
    let input = s.file("mixed.jsonl", "{\"a\":1}\nnot json\n{\"a\":3}\n{\"a\": }\n");
    let out = s.run_capture(&["--input", input.to_str().expect("utf8"), "--on-bad-line", "skip"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("skipped 2 malformed lines"), "{}", stderr(&out));
    assert_eq!(rows_of(&s.captured(), "mixed"), vec![json!({"a": 1}), json!({"a": 3})]);
    let loaded = s.only_package("capture", "loaded");
    let bad = std::fs::read_to_string(loaded.join("bad_lines.jsonl")).expect("quarantine file");
    let lines: Vec<serde_json::Value> = bad.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    assert_eq!((lines[0]["line"].clone(), lines[0]["text"].clone()), (json!(2), json!("not json")));
    assert_eq!(lines[1]["line"], 4);
}

/// An integer in [2^63, 2^64) (or beyond) in a bigint column is refused
/// before anything is loaded, with file, line, field and value named and
/// the hint that loads it; with that hint it arrives digit for digit.
#[test]
fn integers_beyond_64_bits_are_refused_with_the_hint_that_loads_them() {
    let s = Scratch::new();
    let input = s.file("ids.jsonl", "{\"id\": 1}\n{\"id\": 18446744073709551615}\n");
    let out = s.run_capture(&["--input", input.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    for part in ["ids.jsonl:2:", "`id`", "18446744073709551615", "--schema-hints", "decimal"] {
        assert!(err.contains(part), "{part}: {err}");
    }
    assert!(s.captured().is_empty(), "nothing delivered");

    let hints = s.file("hints.toml", "[tables.ids.columns.id]\ndata_type = \"decimal\"\nprecision = 38\nscale = 0\n");
    let out =
        s.run_capture(&["--input", input.to_str().expect("utf8"), "--schema-hints", hints.to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(rows_of(&s.captured(), "ids"), vec![json!({"id": "1"}), json!({"id": "18446744073709551615"})]);
}
