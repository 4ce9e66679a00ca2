//! Package lifecycle: rotation into several jobs, retention, listing,
//! dropping pending packages, retrying failed jobs.

use std::process::Command;

use e2e::{Scratch, ids, numbered, rows_of, run, stderr};
use serde_json::Value;

fn host(s: &Scratch, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(e2e::host_bin());
    cmd.args(args).arg("--pipelines-dir").arg(s.pipelines());
    run(cmd)
}

#[test]
fn rotation_splits_a_table_into_jobs_that_load_in_parallel() {
    let s = Scratch::new();
    let input = s.file("big.jsonl", &numbered(12, "x"));
    let out =
        s.run_capture(&["--input", input.to_str().expect("utf8"), "--file-max-items", "4", "--workers", "3", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).expect("summary");
    assert_eq!(summary["tables"]["big"]["jobs"], 3);
    let docs = s.captured();
    let jobs: std::collections::BTreeSet<&str> =
        docs.iter().map(|d| d["context"]["job_id"].as_str().unwrap_or("")).collect();
    assert_eq!(jobs.len(), 3, "{jobs:?}");
    let mut got = ids(&rows_of(&docs, "big"));
    got.sort_unstable();
    assert_eq!(got, (0..12).collect::<Vec<_>>());
}

#[test]
fn failed_jobs_can_be_retried_and_packages_listed() {
    let s = Scratch::new();
    let good = s.file("good.jsonl", &numbered(3, "g"));
    let bad = s.file("bad.jsonl", &numbered(4, "b"));
    let out = s.run_faulty(&[
        "--input",
        good.to_str().expect("utf8"),
        "--input",
        bad.to_str().expect("utf8"),
        "--env",
        "TERMINAL_TABLE=bad",
    ]);
    assert_eq!(out.status.code(), Some(3), "a terminal failure");
    let listed = host(&s, &["packages", "--pipeline", "faulty", "--json"]);
    let listed: Value = serde_json::from_slice(&listed.stdout).expect("json");
    assert_eq!(listed[0]["state"], "failed");
    assert_eq!((listed[0]["jobs_completed"].as_u64(), listed[0]["jobs_failed"].as_u64()), (Some(1), Some(1)));

    let retry = host(&s, &["retry-failed", "--pipeline", "faulty"]);
    assert!(retry.status.success() && String::from_utf8_lossy(&retry.stdout).contains("1 failed jobs back"));
    let out = run(s.command("load", "faulty", &[]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(ids(&rows_of(&s.captured(), "bad")), [0, 1, 2, 3]);
    assert_eq!(ids(&rows_of(&s.captured(), "good")), [0, 1, 2], "completed jobs are not sent again");
}

#[test]
fn retention_keeps_the_newest_packages_and_every_failed_one() {
    let s = Scratch::new();
    let bad = s.file("bad.jsonl", &numbered(1, "b"));
    assert_eq!(
        s.run_faulty(&["--input", bad.to_str().expect("utf8"), "--env", "TERMINAL_TABLE=bad"]).status.code(),
        Some(3)
    );
    for i in 0..5 {
        let f = s.file(&format!("t{i}.jsonl"), &numbered(i + 1, "x"));
        let out = s.run_faulty(&["--input", f.to_str().expect("utf8"), "--keep-loaded", "2"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let listed = host(&s, &["packages", "--pipeline", "faulty", "--json"]);
    let listed: Value = serde_json::from_slice(&listed.stdout).expect("json");
    let states: Vec<&str> =
        listed.as_array().expect("list").iter().map(|p| p["state"].as_str().unwrap_or("")).collect();
    assert_eq!(states, ["failed", "loaded", "loaded"], "two newest plus the failed one");
}

#[test]
fn drop_pending_asks_for_yes() {
    let s = Scratch::new();
    let input = s.file("t.jsonl", &numbered(3, "x"));
    let out = s.run_faulty(&["--input", input.to_str().expect("utf8"), "--env", "RETRY_ROW=0", "--max-attempts", "1"]);
    assert_eq!(out.status.code(), Some(1), "retries ran out");
    let dry = host(&s, &["drop-pending", "--pipeline", "faulty"]);
    assert!(String::from_utf8_lossy(&dry.stdout).contains("add --yes"));
    assert_eq!(std::fs::read_dir(s.pipeline("faulty").join("load/normalized")).expect("dir").count(), 1);
    let really = host(&s, &["drop-pending", "--pipeline", "faulty", "--yes"]);
    assert!(String::from_utf8_lossy(&really.stdout).contains("Dropped package"));
    assert_eq!(std::fs::read_dir(s.pipeline("faulty").join("load/normalized")).expect("dir").count(), 0);
}
