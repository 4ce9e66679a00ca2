//! `host test-sink`: passes on the example sinks, and fails, naming the
//! rule, on faulty sinks built for each rule.

use std::process::{Command, Output};

use e2e::api::{ApiServer, Faults};
use e2e::{Scratch, guest, host_bin, repo_root, run, stderr};

fn test_sink(s: &Scratch, sink: &str, args: &[&str]) -> Output {
    test_sink_file(s, &guest(sink), args)
}

fn test_sink_file(s: &Scratch, sink: &std::path::Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(host_bin());
    cmd.current_dir(s.out().parent().expect("scratch"));
    cmd.arg("test-sink").arg(sink);
    cmd.arg("--dir").arg(format!("{}::/out", s.out().display()));
    cmd.args(args);
    cmd.env("DLTHOST_CACHE_DIR", repo_root().join("target/test-cache"));
    run(cmd)
}

/// Rows of a table in the JSON Lines files `faulty` writes with
/// `WRITE_JSONL` (run in the scratch directory, whose `out/` is `/out`).
const COUNT_JSONL: &str = "cat out/{table}.*.jsonl 2>/dev/null | wc -l";

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn the_example_sinks_pass() {
    for sink in ["capture", "noop", "print", "csv_sink"] {
        let s = Scratch::new();
        let out = test_sink(&s, sink, &[]);
        assert_eq!(out.status.code(), Some(0), "{sink}: {}{}", stdout(&out), stderr(&out));
        assert!(stderr(&out).contains("checks that apply passed"), "{sink}: {}", stderr(&out));
        assert!(!stdout(&out).contains("FAIL"), "{sink}: {}", stdout(&out));
    }
    let s = Scratch::new();
    let captured = test_sink(&s, "capture", &[]);
    assert!(captured.status.success());
    let names: Vec<String> = std::fs::read_dir(s.out())
        .expect("out")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.is_empty() && names.iter().all(|n| n.starts_with("dlthost_test_") || n.starts_with('.')),
        "{names:?}"
    );

    let api = ApiServer::start(Faults::default());
    let (url, allow) = (format!("--set=url={}/v1", api.url()), api.url());
    let s = Scratch::new();
    let mut cmd = Command::new(host_bin());
    cmd.args(["test-sink"]).arg(guest("http_sink")).args(["--allow-host", &allow, &url]);
    cmd.env("DESTINATION__HTTP_SINK__API_KEY", "test-key-123456")
        .env("DLTHOST_CACHE_DIR", repo_root().join("target/test-cache"));
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(0), "http_sink: {}{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains(&format!("hosts: {}", allow.trim_end_matches('/'))),
        "names where it writes: {}",
        stderr(&out)
    );
    assert!(!api.rows("dlthost_test_types").is_empty(), "the API got the test table");
    drop(s);
}

#[test]
fn faulty_sinks_fail_with_the_rule_they_break() {
    let cases: [(&[&str], &str, &str); 8] = [
        (&["--env", "PANIC_TYPE=binary"], "FAIL  types, batch 10", "cannot handle a binary value in column `raw`"),
        (&["--env", "SPEC_VARY=1"], "FAIL  spec() is the same on every instance", "another spec"),
        (
            &["--env", "SLEEP_MS=300", "--env", "FAULT_TABLE=dlthost_test_calls", "--call-budget", "100ms"],
            "FAIL  call latency within the budget",
            "--call-budget",
        ),
        (
            &["--env", "SPEC_KEYS=unused_key", "--set", "unused_key=x"],
            "FAIL  every declared key is read",
            "`unused_key`",
        ),
        (
            &["--env", "RETRY_ROW=0", "--env", "FAULT_TABLE=dlthost_test_replay"],
            "FAIL  a replayed batch (same idempotency key) is accepted",
            "Retry",
        ),
        (
            &[
                "--env",
                "SPEC_KEYS=opt_key",
                "--env",
                "NEED_KEY=opt_key",
                "--env",
                "FAULT_TABLE=dlthost_test_defaults",
                "--set",
                "opt_key=x",
            ],
            "FAIL  optional settings left unset (required keys and defaults only)",
            "without `opt_key`",
        ),
        (
            &["--env", "WRITE_JSONL=append", "--count-rows", COUNT_JSONL],
            "FAIL  a replayed batch (same idempotency key) is stored once",
            "went from 0 to 20",
        ),
        (
            &["--env", "WRITE_JSONL=keyed", "--env", "BUFFER_ROWS=3", "--count-rows", COUNT_JSONL],
            "FAIL  rows are stored when load returns (none held in memory)",
            "went from 0 to 0",
        ),
    ];
    for (args, rule, detail) in cases {
        let s = Scratch::new();
        let out = test_sink(&s, "faulty", args);
        let table = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {table}{}", stderr(&out));
        let line =
            table.lines().find(|l| l.starts_with(rule)).unwrap_or_else(|| panic!("{args:?}: no `{rule}` in\n{table}"));
        assert!(line.contains(detail), "{args:?}: {line}");
        assert!(stderr(&out).contains("FAILED:"), "{}", stderr(&out));
    }
}

#[test]
fn a_sink_that_stores_each_batch_once_passes_the_destination_checks() {
    let s = Scratch::new();
    let out = test_sink(&s, "faulty", &["--env", "WRITE_JSONL=keyed", "--count-rows", COUNT_JSONL]);
    let table = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{table}{}", stderr(&out));
    for rule in [
        "pass  a replayed batch (same idempotency key) is stored once",
        "pass  rows are stored when load returns (none held in memory)",
    ] {
        assert!(table.contains(rule), "{rule}:\n{table}");
    }
}

#[test]
fn the_python_and_javascript_example_sinks_pass() {
    if e2e::foreign_skipped("test-sink on the Python and JavaScript sinks") {
        return;
    }
    for (wasm, skipped) in [
        (e2e::python_sink(), "the sink's spec declares jsonl job files"),
        (e2e::js_sink(), "asks for batches of 10 rows"),
    ] {
        let s = Scratch::new();
        let out = test_sink_file(&s, &wasm, &[]);
        let table = stdout(&out);
        assert_eq!(out.status.code(), Some(0), "{}: {table}{}", wasm.display(), stderr(&out));
        assert!(!table.contains("FAIL"), "{table}");
        assert!(table.lines().any(|l| l.starts_with("skip") && l.contains(skipped)), "{table}");
    }
}
