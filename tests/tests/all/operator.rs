//! Failures that cannot look like success, and the rough edges a newcomer
//! hit (issue 20): one test per item, through the real binary, and a
//! scripted walk-through that follows the commands the host prints.

use std::process::{Command, Stdio};

use e2e::{Scratch, ids, numbered, repo_root, rows_of, run, stderr};
use serde_json::Value;

fn path(p: &std::path::Path) -> &str {
    p.to_str().expect("utf8 path")
}

/// `host <args> --pipelines-dir <scratch>` (a command without a sink).
fn host(s: &Scratch, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(e2e::host_bin());
    cmd.args(args).arg("--pipelines-dir").arg(s.pipelines());
    cmd.env("DLTHOST_CACHE_DIR", repo_root().join("target/test-cache"));
    run(cmd)
}

/// A run of `faulty` over `good` (5 rows) and `bad` (4 rows) whose `bad`
/// table fails terminally while the host's TERMINAL_TABLE says so.
fn good_and_bad(s: &Scratch) -> Vec<String> {
    let good = s.file("good.jsonl", &numbered(5, "g"));
    let bad = s.file("bad.jsonl", &numbered(4, "b"));
    ["--input", path(&good), "--input", path(&bad), "--env", "TERMINAL_TABLE"].map(String::from).to_vec()
}

fn faulty(s: &Scratch, args: &[String], terminal_table: Option<&str>) -> std::process::Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = s.command("run", "faulty", &args);
    match terminal_table {
        Some(t) => cmd.env("TERMINAL_TABLE", t),
        None => cmd.env_remove("TERMINAL_TABLE"),
    };
    run(cmd)
}

// Items 1 and 2: a terminal failure says so first, exits 3, and a rerun
// of the same input neither claims success nor sends anything again.
#[test]
fn a_terminal_failure_and_its_rerun_never_look_like_success() {
    let s = Scratch::new();
    let args = good_and_bad(&s);
    let out = faulty(&s, &args, Some("bad"));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    let first = err.lines().find(|l| l.starts_with("FAILED") || l.starts_with("Loaded")).unwrap_or("");
    assert!(first.starts_with("FAILED: 4 rows of `bad` were not delivered"), "the first summary line: {err}");
    assert!(err.contains("package with failed jobs (not done)"), "{err}");
    assert!(err.contains("host retry-failed --pipeline faulty"), "{err}");

    let out = faulty(&s, &args, Some("bad"));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "the rerun: {err}");
    assert!(err.contains("its jobs failed and were not delivered; nothing was sent now"), "{err}");
    assert!(!err.contains("Use --force"), "--force would send the good rows again: {err}");
    assert!(!err.contains("\nLoaded 0 rows"), "{err}");
    assert_eq!(ids(&rows_of(&s.captured(), "good")), (0..5).collect::<Vec<_>>(), "nothing sent twice");

    // `host status` lists the failed package and how to retry it.
    let out = host(&s, &["status", "--pipeline", "faulty"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text.contains("(failed)") && text.contains("host retry-failed"), "{text}");
    let out = host(&s, &["status", "--pipeline", "faulty", "--json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("status json");
    assert_eq!(doc[0]["state"], "failed", "{doc}");
}

// The walk-through: a newcomer runs exactly the commands the host prints,
// after fixing the one setting that made the sink fail.
#[test]
fn a_newcomer_follows_the_printed_commands_to_every_row_delivered_once() {
    let s = Scratch::new();
    let args = good_and_bad(&s);
    let out = faulty(&s, &args, Some("bad"));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    // The commands after "Fix the sink ..., then ...:", one per line.
    let commands: Vec<String> = err
        .lines()
        .skip_while(|l| !l.starts_with("Fix the sink"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.trim().to_string())
        .collect();
    assert_eq!(commands.len(), 2, "{err}");
    // The fix: the setting that made `bad` fail is gone.
    for command in &commands {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(command).env_remove("TERMINAL_TABLE");
        cmd.env("DLTHOST_CACHE_DIR", repo_root().join("target/test-cache"));
        let out = cmd.stdin(Stdio::null()).output().expect("run the printed command");
        assert!(out.status.success(), "`{command}`: {}", stderr(&out));
    }
    let docs = s.captured();
    assert_eq!(ids(&rows_of(&docs, "good")), (0..5).collect::<Vec<_>>());
    assert_eq!(ids(&rows_of(&docs, "bad")), (0..4).collect::<Vec<_>>());
    // And the same command once more: nothing left, exit 0.
    let out = faulty(&s, &args, None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("already loaded"), "{}", stderr(&out));
}

// Item 3: a closed stdout ends any command quietly, with its own code.
#[test]
fn a_closed_stdout_is_not_an_error() {
    let s = Scratch::new();
    let input = s.file("t.jsonl", &numbered(3, "x"));
    assert!(s.run_capture(&["--input", path(&input)]).status.success());
    let host_bin = e2e::host_bin();
    let pipelines = s.pipelines();
    for (args, code) in [
        (format!("status --pipeline capture --pipelines-dir {}", pipelines.display()), 0),
        (format!("packages --pipeline capture --pipelines-dir {}", pipelines.display()), 0),
        ("completions bash".to_string(), 0),
        ("--help".to_string(), 0),
    ] {
        let script = format!("{} {args} | true; exit ${{PIPESTATUS[0]}}", host_bin.display());
        let out = Command::new("bash").arg("-c").arg(&script).output().expect("bash");
        assert_eq!(out.status.code(), Some(code), "{args}: {}", stderr(&out));
        assert!(
            !stderr(&out).contains("internal error") && !stderr(&out).contains("Broken pipe"),
            "{args}: {}",
            stderr(&out)
        );
    }
    // A load whose --json goes nowhere still delivers everything.
    let more = s.file("more.jsonl", &numbered(50, "m"));
    let script = format!(
        "{} run --component {} --pipelines-dir {} --dir {}::/out --input {} --json | true; exit ${{PIPESTATUS[0]}}",
        host_bin.display(),
        e2e::guest("capture").display(),
        pipelines.display(),
        s.out().display(),
        more.display()
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env("DLTHOST_CACHE_DIR", repo_root().join("target/test-cache"))
        .output()
        .expect("bash");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(ids(&rows_of(&s.captured(), "more")).len(), 50);
}

// Item 4: a guest's own error reaches the job error, status and --json;
// a failing spec() says so.
#[test]
fn a_guest_panic_is_named_by_its_own_words() {
    let s = Scratch::new();
    let input = s.file("t.jsonl", &numbered(4, "x"));
    let out = s.run_faulty(&["--input", path(&input), "--env", "PANIC_ROW=1", "--max-attempts", "1", "--json"]);
    let err = stderr(&out);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("RUST_BACKTRACE"), "no hint that does nothing for a guest: {err}");
    let summary: Value = serde_json::from_slice(&out.stdout).expect("json");
    let error = summary["failures"][0]["error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains("injected panic at row 0"), "the guest's words in --json: {summary}");
    let status = host(&s, &["status", "--pipeline", "faulty", "--json"]);
    assert!(String::from_utf8_lossy(&status.stdout).contains("injected panic at row 0"), "in status");

    // The Python sink raising in spec(): `spec() failed` with its exception.
    if e2e::foreign_skipped("the failing-spec() part of this test") {
        return;
    }
    let py = e2e::python_sink();
    let out = run(s.command_for("run", &py, &["--input", path(&input), "--env", "FAIL_SPEC=1"]));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("its spec() failed"), "{err}");

    // An exception raised in load(): the job error names the exception
    // (its traceback's last line), not the runtime's wrapper around it.
    let s = Scratch::new();
    let out = run(s.command_for(
        "run",
        &py,
        &["--input", path(&input), "--env", "FAIL_LOAD=1", "--max-attempts", "1", "--json"],
    ));
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).expect("json");
    let error = summary["failures"][0]["error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains("ValueError: load refused on purpose (FAIL_LOAD)"), "{error}");
    assert!(!error.contains("threw an unexpected exception"), "{error}");
}

// Item 5: the dry run needs no secret and keeps nothing unless asked.
#[test]
fn normalize_is_a_dry_run_that_needs_no_secret_and_keeps_nothing() {
    let s = Scratch::new();
    let input = s.file("orders.jsonl", &numbered(3, "o"));
    let mut cmd = s.command("normalize", "http_sink", &["--input", path(&input)]);
    cmd.env_remove("DESTINATION__HTTP_SINK__API_KEY");
    let out = run(cmd);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("table orders"), "shows the tables");
    assert!(err.contains("Dry run: nothing was kept"), "{err}");
    let pipeline = s.pipeline("http_sink");
    assert_eq!(std::fs::read_dir(pipeline.join("load/normalized")).expect("dir").count(), 0);
    assert!(!pipeline.join("schemas/http_sink.schema.json").exists(), "the stored schema is untouched");

    let mut cmd = s.command("normalize", "http_sink", &["--input", path(&input), "--keep"]);
    cmd.env_remove("DESTINATION__HTTP_SINK__API_KEY");
    let out = run(cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("pending in"), "{}", stderr(&out));
    assert_eq!(std::fs::read_dir(pipeline.join("load/normalized")).expect("dir").count(), 1);
}

// Item 6: commands without a sink find the pipeline, or list them.
#[test]
fn commands_without_a_sink_find_the_pipeline_or_list_them() {
    let s = Scratch::new();
    let input = s.file("t.jsonl", &numbered(2, "x"));
    assert!(s.run_capture(&["--input", path(&input)]).status.success());
    for command in ["status", "packages", "retry-failed"] {
        let out = host(&s, &[command]);
        assert!(out.status.success(), "{command} with the only pipeline: {}", stderr(&out));
    }
    let out = host(&s, &["status", "--pipeline", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no pipeline `nope`") && stderr(&out).contains("capture"), "{}", stderr(&out));
    assert!(s.run_faulty(&["--input", path(&input)]).status.success());
    let out = host(&s, &["status"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("several pipelines") && stderr(&out).contains("capture, faulty"), "{}", stderr(&out));
    // A directory this release would refuse is reported with a rename.
    std::fs::create_dir_all(s.pipelines().join(".hidden/load")).expect("mkdir");
    let out = host(&s, &["status", "--pipeline", "capture"]);
    assert!(out.status.success());
    assert!(stderr(&out).contains("Rename it with: mv"), "{}", stderr(&out));
}

// Item 7: the smaller rough edges.
#[test]
fn the_smaller_rough_edges() {
    // Skipped lines are counted in the summary and --json, where they are kept.
    let s = Scratch::new();
    let input = s.file("t.jsonl", "{\"id\":1}\n{bad\n{\"id\":2}\n");
    let out = s.run_capture(&["--input", path(&input), "--on-bad-line", "skip", "--json"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("skipped 1 malformed line;"), "{err}");
    let kept = err.lines().find(|l| l.contains("kept in")).expect("where they are kept");
    let file = kept.rsplit("kept in ").next().unwrap_or_default().trim();
    assert!(std::path::Path::new(file).is_file() && file.contains("/load/loaded/"), "{kept}");
    let summary: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(summary["skipped_lines"], 1);
    assert_eq!(summary["schema_version"], 1);
    assert_eq!(summary["outcome"], "delivered");

    // `run --help` names Parquet.
    let help = Command::new(e2e::host_bin()).args(["run", "--help"]).output().expect("help");
    assert!(String::from_utf8_lossy(&help.stdout).contains("Parquet"));

    // `inspect` on something that is not a component says so.
    let not_wasm = s.file("notes.wasm", "hello");
    let out = run({
        let mut c = Command::new(e2e::host_bin());
        c.arg("inspect").arg(&not_wasm);
        c
    });
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not a WebAssembly component"), "{}", stderr(&out));

    // A typo in .dlt/*.toml gets a hint.
    let dlt = s.path().join(".dlt");
    std::fs::create_dir_all(&dlt).expect("mkdir");
    std::fs::write(dlt.join("config.toml"), "[destination.captur]\nbatch_size = 5\n").expect("config");
    let more = s.file("more.jsonl", &numbered(2, "m"));
    let project = path(s.path()).to_string();
    let out = s.run_capture(&["--input", path(&more), "--project-dir", &project]);
    assert!(
        stderr(&out).contains("[destination.captur] but no [destination.capture]; did you mean"),
        "{}",
        stderr(&out)
    );
    std::fs::write(dlt.join("config.toml"), "[destination.capture]\nbatchsize = 5\n").expect("config");
    let out = s.run_capture(&["--input", path(&more), "--project-dir", &project, "--force"]);
    assert!(
        stderr(&out).contains("batchsize: sink `capture` declares no such key; did you mean `batch_size`?"),
        "{}",
        stderr(&out)
    );

    // `host status` shows the last run's failed attempts and the total, and
    // job ids with their table names as written.
    let s = Scratch::new();
    let input = s.file("t.jsonl", &numbered(4, "x"));
    let args = [
        "--input",
        path(&input),
        "--table",
        "my table",
        "--env",
        "RETRY_ROW=2",
        "--max-attempts",
        "2",
        "--retry-backoff",
        "1ms",
    ];
    for _ in 0..2 {
        assert_eq!(s.run_faulty(&args).status.code(), Some(1));
    }
    let out = host(&s, &["status", "--pipeline", "faulty"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("failed attempts 2 (last run), 4 (all runs)"), "{text}");
    assert!(text.contains("my table.") && !text.contains("my%20table"), "{text}");

    // `inspect` says what an imported interface reaches: nothing ungranted.
    if e2e::foreign_skipped("the JavaScript inspect part of this test") {
        return;
    }
    let out = run({
        let mut c = Command::new(e2e::host_bin());
        c.arg("inspect").arg(e2e::js_sink()).env("DLTHOST_CACHE_DIR", repo_root().join("target/test-cache"));
        c
    });
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text.contains("filesystem: nothing unless you grant a directory with --dir"), "{text}");
}
