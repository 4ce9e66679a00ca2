//! The same capture assertions for sinks written in Python
//! (componentize-py) and JavaScript (componentize-js).

use e2e::{Scratch, rows_of, stderr};
use serde_json::Value;

use crate::load::{assert_contexts, assert_event_schema, events};

#[test]
fn python_sink_receives_every_row_typed_and_in_order() {
    if e2e::foreign_skipped("the Python sink test") {
        return;
    }
    let wasm = e2e::python_sink();
    for (batch, sizes) in [("10", vec![10, 10, 5]), ("0", vec![25])] {
        let s = Scratch::new();
        let (input, expected) = events();
        let file = s.file("events.jsonl", &input);
        let out =
            e2e::run(s.command_for("run", &wasm, &["--input", file.to_str().expect("utf8"), "--batch-size", batch]));
        assert!(out.status.success(), "{}", stderr(&out));
        let docs = s.captured();
        assert_contexts(&docs, "events", &sizes);
        docs.iter().for_each(assert_event_schema);
        assert_eq!(rows_of(&docs, "events"), expected, "batch size {batch}");
    }
}

#[test]
fn js_sink_receives_every_row_typed_and_in_order() {
    if e2e::foreign_skipped("the JavaScript sink test") {
        return;
    }
    let wasm = e2e::js_sink();
    let s = Scratch::new();
    let (input, expected) = events();
    let file = s.file("events.jsonl", &input);
    let out = e2e::run(s.command_for(
        "run",
        &wasm,
        &["--input", file.to_str().expect("utf8"), "--batch-size", "10", "--workers", "1"],
    ));
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    // The JS sink prints one capture document per call on stdout, which the
    // host forwards to stderr with the sink's prefix.
    let docs: Vec<Value> = err
        .lines()
        .filter_map(|l| l.strip_prefix("[js_sink] "))
        .map(|l| serde_json::from_str(l).expect("a capture document"))
        .collect();
    assert_contexts(&docs, "events", &[10, 10, 5]);
    docs.iter().for_each(assert_event_schema);
    assert_eq!(rows_of(&docs, "events"), expected);
}
