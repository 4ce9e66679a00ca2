//! What the previous release left on disk resumes under this one: a
//! pending package with a ledger, and a loaded package with a failed job
//! (`tests/data/prev-release`, made by the previous release's binary).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use e2e::{Scratch, ids, read_capture, repo_root, rows_of, run, stderr};

/// Copies `from` into `to`, and creates the job state directories that
/// git does not keep when they are empty.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
    if to.join("load_package_state.json").is_file() {
        for state in ["new_jobs", "started_jobs", "completed_jobs", "failed_jobs"] {
            std::fs::create_dir_all(to.join(state)).expect("mkdir");
        }
    }
}

fn host(s: &Scratch, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(e2e::host_bin());
    cmd.args(args).arg("--pipelines-dir").arg(s.pipelines());
    cmd.env("DLTHOST_CACHE_DIR", repo_root().join("target/test-cache"));
    run(cmd)
}

#[test]
fn a_pipeline_of_the_previous_release_resumes_its_pending_and_failed_packages() {
    let data = repo_root().join("tests/data/prev-release");
    let s = Scratch::new();
    copy_tree(&data.join("pipelines"), &s.pipelines());

    // Shown as it is: one pending package, one loaded with a failed job.
    let out = host(&s, &["packages", "--pipeline", "faulty"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(listing.contains("1796555484.7803396") && listing.contains("1796555484.7414782"), "{listing}");

    // The pending package resumes at row 6, in batches of 3 as before.
    let out = s.command("load", "faulty", &["--batch-size", "3"]).output().expect("run host load");
    assert!(out.status.code().is_some(), "{}", stderr(&out));
    let docs = s.captured();
    assert_eq!(ids(&rows_of(&docs, "later")), [6, 7, 8], "{}", stderr(&out));
    assert_eq!(docs.iter().map(|d| d["context"]["start_row"].as_u64()).collect::<Vec<_>>(), [Some(6)]);
    // Its key is not one the previous release used for another batch.
    let before = read_capture(&data.join("captured"));
    let old_keys: BTreeSet<&str> = before.iter().filter_map(|d| d["context"]["idempotency_key"].as_str()).collect();
    assert!(!old_keys.contains(docs[0]["context"]["idempotency_key"].as_str().unwrap_or("")));
    // Together with what the previous release delivered: every row once.
    let mut all = ids(&rows_of(&before, "later"));
    all.extend(ids(&rows_of(&docs, "later")));
    assert_eq!(all, (0..9).collect::<Vec<_>>());

    // The failed job is retried on request and then delivered.
    let out = host(&s, &["retry-failed", "--pipeline", "faulty"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = s.command("load", "faulty", &[]).output().expect("run host load");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(ids(&rows_of(&s.captured(), "bad")), [0, 1, 2, 3], "{}", stderr(&out));
    assert!(rows_of(&s.captured(), "good").is_empty(), "the completed job is not sent again");
}
