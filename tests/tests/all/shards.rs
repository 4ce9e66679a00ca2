//! Shards: several `host run --shard INDEX/COUNT` processes over the same
//! input files, as a Kubernetes Indexed Job runs them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use e2e::{Scratch, numbered, run, stderr};
use serde_json::Value;

/// 16 files of 10 rows each; ids 0..160. The paths are relative to the
/// scratch directory (the commands run there), so the shards they fall in
/// do not depend on the temporary directory's random name: with these
/// names every shard of 4 and of 2 has files.
fn files(s: &Scratch) -> Vec<PathBuf> {
    (0..16)
        .map(|f| {
            let rows: String = numbered(10, "x")
                .lines()
                .enumerate()
                .map(|(i, _)| format!("{{\"id\": {}, \"file\": {f}}}\n", f * 10 + i))
                .collect();
            let name = format!("part-{f:02}.jsonl");
            s.file(&name, &rows);
            PathBuf::from(name)
        })
        .collect()
}

fn shard_command(s: &Scratch, files: &[PathBuf], shard: &str, extra: &[&str]) -> Command {
    let mut args: Vec<String> = files.iter().flat_map(|f| ["--input".to_string(), f.display().to_string()]).collect();
    args.extend(["--table", "t", "--batch-size", "2", "--workers", "1", "--shard", shard].map(String::from));
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = s.command("run", "faulty", &args);
    cmd.current_dir(s.path());
    cmd
}

/// Rows by idempotency key: a key delivered twice must carry the same rows
/// (a replay), and no two keys may carry the same row.
fn rows_once(s: &Scratch) -> Vec<u64> {
    let mut by_key: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for doc in s.captured() {
        let key = doc["context"]["idempotency_key"].as_str().expect("key").to_string();
        let ids: Vec<u64> =
            doc["rows"].as_array().expect("rows").iter().map(|r| r["id"].as_u64().expect("id")).collect();
        if let Some(earlier) = by_key.insert(key.clone(), ids.clone()) {
            assert_eq!(earlier, ids, "key {key} was sent with other rows");
        }
    }
    let mut all: Vec<u64> = by_key.into_values().flatten().collect();
    let unique: BTreeSet<u64> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len(), "a row arrived under two keys");
    all.sort_unstable();
    all
}

#[test]
fn four_shards_deliver_every_row_once_even_after_a_kill() {
    let s = Scratch::new();
    let files = files(&s);
    // Shard 0 holds its batch with row 3 of its job; the others run through.
    let mut held = shard_command(&s, &files, "0/4", &["--env", "HOLD_ROW=3"]);
    let mut child = held.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn");
    s.wait_for_hold(&mut child);
    let others: Vec<_> = (1..4)
        .map(|i| {
            let mut cmd = shard_command(&s, &files, &format!("{i}/4"), &[]);
            cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn")
        })
        .collect();
    for other in others {
        let out = other.wait_with_output().expect("wait");
        assert!(out.status.success(), "{}", stderr(&out));
    }
    child.kill().expect("kill -9 shard 0");
    child.wait().expect("reap");
    for i in 0..4 {
        assert!(s.pipeline("faulty").join(format!("shards/{i}-of-4/load")).is_dir(), "state of shard {i}");
    }

    let out = run(shard_command(&s, &files, "0/2", &[]));
    assert_eq!(out.status.code(), Some(2), "another count with a pending shard: {}", stderr(&out));
    assert!(stderr(&out).contains("shard 0-of-4 has pending packages"), "{}", stderr(&out));
    assert!(stderr(&out).contains("--shard 0/4"), "says how to finish it: {}", stderr(&out));

    let out = run(shard_command(&s, &files, "0/4", &[]));
    assert!(out.status.success(), "the killed shard alone: {}", stderr(&out));
    assert_eq!(rows_once(&s), (0..160).collect::<Vec<_>>());

    let before = s.captured().len();
    let out = run(shard_command(&s, &files, "2/4", &[]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("already loaded"), "{}", stderr(&out));
    assert_eq!(s.captured().len(), before, "a shard run twice sends nothing");
}

#[test]
fn shard_count_takes_the_index_from_the_indexed_job() {
    let s = Scratch::new();
    let files = files(&s);
    let one = shard_command(&s, &files, "0/2", &[]);
    // The same run as an Indexed Job's pod 1 of 2 would make it.
    let args: Vec<String> = one.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
    let at = args.iter().position(|a| a == "--shard").expect("--shard");
    let mut pod = Command::new(one.get_program());
    pod.current_dir(s.path());
    pod.args(&args[..at]).args(["--shard-count", "2"]).args(&args[at + 2..]);
    for (k, v) in one.get_envs() {
        if let Some(v) = v {
            pod.env(k, v);
        }
    }
    pod.env("JOB_COMPLETION_INDEX", "1");
    let out = run(pod);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(s.pipeline("faulty").join("shards/1-of-2").is_dir());
    let first: BTreeSet<u64> = rows_once(&s).into_iter().collect();
    assert!(!first.is_empty() && first.len() < 160, "a share: {}", first.len());
    let out = run(one);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(rows_once(&s), (0..160).collect::<Vec<_>>(), "the two shares are the whole, disjoint");
    // Files belong to shards as wholes.
    let by_file: BTreeMap<u64, BTreeSet<bool>> = s
        .captured()
        .iter()
        .flat_map(|d| d["rows"].as_array().cloned().unwrap_or_default())
        .map(|r: Value| (r["file"].as_u64().expect("file"), first.contains(&r["id"].as_u64().expect("id"))))
        .fold(BTreeMap::new(), |mut m, (f, in_first)| {
            m.entry(f).or_insert_with(BTreeSet::new).insert(in_first);
            m
        });
    assert!(by_file.values().all(|sides| sides.len() == 1), "no file is split: {by_file:?}");
}

#[test]
fn shard_usage_errors_exit_2() {
    let s = Scratch::new();
    let files = files(&s);
    let input = s.path().join(&files[0]).display().to_string();
    let cases: [(&[&str], Option<&str>, &str); 5] = [
        (&["--shard", "0/2", "--shard-count", "2"], None, "cannot be used with"),
        (&["--shard-count", "2"], None, "JOB_COMPLETION_INDEX"),
        (&["--shard-count", "2"], Some("2"), "not below the shard count 2"),
        (&["--shard", "2/2"], None, "not below the shard count 2"),
        (&["--shard", "0/2", "--input", "-"], None, "stdin cannot be sharded"),
    ];
    for (flags, index, says) in cases {
        let mut args = vec!["--input", input.as_str(), "--table", "t"];
        args.extend_from_slice(flags);
        let mut cmd = s.command("run", "faulty", &args);
        cmd.env_remove("JOB_COMPLETION_INDEX");
        if let Some(i) = index {
            cmd.env("JOB_COMPLETION_INDEX", i);
        }
        let out = run(cmd);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{flags:?}: {}", stderr(&out));
    }
    assert!(s.captured().is_empty(), "nothing was loaded");
}
