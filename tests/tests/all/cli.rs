//! The command line as a person sees it: progress on a terminal, the
//! summary, and exit codes for usage errors.

use std::process::Command;

use e2e::{Scratch, numbered, run, stderr};

#[test]
fn progress_bar_on_a_terminal_then_the_summary() {
    let s = Scratch::new();
    let input = s.file("t.jsonl", &numbered(20, "x"));
    let host = s.command(
        "run",
        "faulty",
        &["--input", input.to_str().expect("utf8"), "--batch-size", "1", "--env", "SLOW_MS=60"],
    );
    let line: Vec<String> = std::iter::once(host.get_program().to_string_lossy().into_owned())
        .chain(host.get_args().map(|a| format!("'{}'", a.to_string_lossy())))
        .collect();
    // `script` runs the host in a pseudo-terminal.
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &line.join(" "), "/dev/null"]);
    for (k, v) in host.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    let out = run(cmd);
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(screen.contains("loading") && screen.contains("/20 rows"), "a progress bar was drawn: {screen}");
    assert!(screen.contains("Loaded 20 rows into `faulty`"), "{screen}");
    assert!(screen.contains("t: 20 rows, 1 jobs"), "{screen}");
}

#[test]
fn usage_errors_exit_2_with_a_hint() {
    let mut cmd = Command::new(e2e::host_bin());
    cmd.args(["run", "--component", "x.wasm", "--input", "a.jsonl", "--loader-file-format", "csv"]);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("possible values: jsonl, parquet"), "{}", stderr(&out));

    let mut cmd = Command::new(e2e::host_bin());
    cmd.args(["run", "--component", "/nonexistent.wasm", "--input", "/nonexistent.jsonl"]);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).starts_with("error: "), "one clear message: {}", stderr(&out));
}

#[test]
fn a_component_of_another_world_is_refused_with_a_hint() {
    let s = Scratch::new();
    let not_ours = s.file("other.wat", "(component)");
    let input = s.file("t.jsonl", &numbered(1, "x"));
    let out = run(s.command_for("run", &not_ours, &["--input", input.to_str().expect("utf8")]));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("does not implement the sink world dlthost:destination/destination@0.1.0"), "{err}");
    assert!(err.contains("rebuild the sink"), "{err}");
}

#[test]
fn normalize_with_keep_shows_tables_and_leaves_a_pending_package() {
    let s = Scratch::new();
    let input = s.file("people.jsonl", "{\"id\":1,\"address\":{\"city\":\"X\"},\"tags\":[\"a\",\"b\"]}\n");
    let out = run(s.command(
        "normalize",
        "capture",
        &["--input", input.to_str().expect("utf8"), "--max-nesting-level", "1", "--json", "--keep"],
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    let tables: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let names: Vec<&str> =
        tables.as_array().expect("tables").iter().map(|t| t["name"].as_str().unwrap_or("")).collect();
    assert_eq!(names, ["people", "people▶tags"]);
    assert_eq!(tables[0]["columns"][1]["name"], "address▶city");
    assert_eq!(tables[1]["rows"], 2);
    assert!(s.captured().is_empty(), "nothing was loaded");
    let out = run(s.command("load", "capture", &[]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(e2e::rows_of(&s.captured(), "people▶tags").len(), 2, "load delivers the pending package");
}
