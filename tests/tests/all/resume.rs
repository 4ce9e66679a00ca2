//! The resume ledger, retries, terminal failures, traps, the pipeline lock,
//! clean stops and crashes: every row arrives, and arrives once once
//! repeated idempotency keys are dropped.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e::{Scratch, ids, numbered, rows_of, run, stderr};
use serde_json::Value;

fn path_arg(p: &std::path::Path) -> &str {
    p.to_str().expect("utf8 path")
}

fn summary(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).expect("--json summary on stdout")
}

#[test]
fn retry_exhausted_then_resumed_by_rerun() {
    // dlt's behaviours 31/32 with our numbers: 8 rows, batch 3, the batch
    // holding row 3 keeps failing with `retry`.
    let s = Scratch::new();
    let input = s.file("things.jsonl", &numbered(8, "x"));
    let args = ["--input", path_arg(&input), "--batch-size", "3", "--retry-backoff", "10ms", "--json"];
    let mut first = args.to_vec();
    first.extend(["--env", "RETRY_ROW=3"]);
    let out = s.run_faulty(&first);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("rows 3..6") && err.contains("injected retry"), "{err}");
    assert!(err.contains("gave up after 5 attempts") && err.contains("resume"), "{err}");
    let sum = summary(&out);
    assert_eq!((sum["calls"].as_u64(), sum["retries"].as_u64()), (Some(6), Some(4)), "1 ok call + 5 attempts");
    assert_eq!(ids(&rows_of(&s.captured(), "things")), [0, 1, 2]);

    // status shows the ledger: 3 delivered, 5 left, 5 failed attempts.
    let mut status = Command::new(e2e::host_bin());
    status.args(["status", "--json", "--pipeline", "faulty", "--pipelines-dir"]).arg(s.pipelines());
    let st = run(status);
    let st: Value = serde_json::from_slice(&st.stdout).expect("status JSON");
    let job = &st[0]["jobs"][0];
    assert_eq!((job["delivered"].as_u64(), job["left"].as_u64()), (Some(3), Some(5)), "{st}");
    assert_eq!(job["failed_attempts"], 5);

    // The same command without the fault resumes at row 3.
    let out = s.run_faulty(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let docs = s.captured();
    assert_eq!(ids(&rows_of(&docs, "things")), [0, 1, 2, 3, 4, 5, 6, 7]);
    let starts: Vec<u64> = docs.iter().map(|d| d["context"]["start_row"].as_u64().unwrap_or(99)).collect();
    assert_eq!(starts, [0, 3, 6]);
    // And a third run has nothing left to do.
    let out = s.run_faulty(&args);
    assert!(out.status.success() && stderr(&out).contains("already loaded"), "{}", stderr(&out));
    assert_eq!(s.captured().len(), 3);
}

#[test]
fn terminal_error_fails_the_job_and_the_others_finish() {
    let s = Scratch::new();
    let good = s.file("good.jsonl", &numbered(20, "g"));
    let bad = s.file("bad.jsonl", &numbered(5, "b"));
    let out = s.run_faulty(&["--input", path_arg(&good), "--input", path_arg(&bad), "--env", "TERMINAL_TABLE=bad"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("injected terminal error for table bad"), "{}", stderr(&out));
    assert_eq!(ids(&rows_of(&s.captured(), "good")), (0..20).collect::<Vec<_>>());
    assert!(rows_of(&s.captured(), "bad").is_empty());
    let loaded: Vec<_> = std::fs::read_dir(s.pipeline("faulty").join("load/loaded")).expect("loaded").collect();
    assert_eq!(loaded.len(), 1, "the package completes, as failed");
    let pkg = loaded[0].as_ref().expect("entry").path();
    assert_eq!(std::fs::read_to_string(pkg.join("package_completed.json")).expect("marker"), "\"failed\"");
    let failed: Vec<String> = std::fs::read_dir(pkg.join("failed_jobs"))
        .expect("failed_jobs")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(failed.iter().any(|f| f.starts_with("bad.") && f.ends_with(".jsonl")), "{failed:?}");
    assert!(failed.iter().any(|f| f.ends_with(".exception")), "{failed:?}");
}

#[test]
fn a_trap_replaces_the_store_and_is_retried_once() {
    let s = Scratch::new();
    let input = s.file("t.jsonl", &numbered(10, "x"));
    let out = s.run_faulty(&[
        "--input",
        path_arg(&input),
        "--batch-size",
        "2",
        "--json",
        "--env",
        "PANIC_ROW=5",
        "--env",
        "PANIC_ONCE=1",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("injected panic at row 4"), "guest output reaches stderr: {}", stderr(&out));
    assert_eq!(summary(&out)["store_replacements"], 1);
    assert_eq!(ids(&rows_of(&s.captured(), "t")), (0..10).collect::<Vec<_>>());

    // A batch that traps every time fails its job after the second trap.
    let s = Scratch::new();
    let input = s.file("t.jsonl", &numbered(10, "x"));
    let out = s.run_faulty(&["--input", path_arg(&input), "--batch-size", "2", "--json", "--env", "PANIC_ROW=5"]);
    assert_eq!(out.status.code(), Some(3), "two traps fail the job terminally: {}", stderr(&out));
    assert!(stderr(&out).contains("trapped"), "{}", stderr(&out));
    assert_eq!(summary(&out)["store_replacements"], 2);
    assert_eq!(ids(&rows_of(&s.captured(), "t")), [0, 1, 2, 3]);
}

#[test]
fn resume_with_another_batch_size_starts_at_the_right_row() {
    let s = Scratch::new();
    let input = s.file("t.jsonl", &numbered(10, "x"));
    let base = ["--input", path_arg(&input), "--retry-backoff", "1ms", "--max-attempts", "1"];
    let mut first = base.to_vec();
    first.extend(["--batch-size", "3", "--env", "RETRY_ROW=4"]);
    assert_eq!(s.run_faulty(&first).status.code(), Some(1));
    let mut second = base.to_vec();
    second.extend(["--batch-size", "4"]);
    let out = s.run_faulty(&second);
    assert!(out.status.success(), "{}", stderr(&out));
    let docs = s.captured();
    assert_eq!(ids(&rows_of(&docs, "t")), (0..10).collect::<Vec<_>>());
    let ranges: Vec<(u64, u64)> = docs
        .iter()
        .map(|d| (d["context"]["start_row"].as_u64().unwrap_or(0), d["context"]["row_count"].as_u64().unwrap_or(0)))
        .collect();
    assert_eq!(ranges, [(0, 3), (3, 4), (7, 3)]);
}

#[test]
fn a_second_run_on_a_locked_pipeline_fails_at_once() {
    let s = Scratch::new();
    let input = s.file("t.jsonl", &numbered(6, "x"));
    // The first run holds its first batch (and so the lock) until released.
    let mut held =
        s.command("run", "faulty", &["--input", path_arg(&input), "--batch-size", "1", "--env", "HOLD_ROW=0"]);
    let mut child = held.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn");
    s.wait_for_hold(&mut child);
    let started = Instant::now();
    let out = s.run_faulty(&["--input", path_arg(&input)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("locked by another host process (pid {})", child.id())), "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(30), "fails at once, not after the first run");
    s.release();
    let first = child.wait_with_output().expect("wait");
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(ids(&rows_of(&s.captured(), "t")), (0..6).collect::<Vec<_>>());
}

#[test]
fn sigterm_stops_cleanly_and_the_rerun_finishes_without_duplicates() {
    let s = Scratch::new();
    let input = s.file("t.jsonl", &numbered(40, "x"));
    let args = ["--input", path_arg(&input), "--batch-size", "1", "--workers", "1"];
    let mut held = args.to_vec();
    held.extend(["--env", "HOLD_ROW=3"]);
    let mut cmd = s.command("run", "faulty", &held);
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    // Rows 0..3 are delivered and the call for row 3 is in flight.
    s.wait_for_hold(&mut child);
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    s.release();
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(stderr(&out).contains("Resume with"), "{}", stderr(&out));
    // The call in flight finishes; no batch is handed out after the signal.
    assert_eq!(ids(&rows_of(&s.captured(), "t")), [0, 1, 2, 3]);

    let out = s.run_faulty(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(ids(&rows_of(&s.captured(), "t")), (0..40).collect::<Vec<_>>(), "a clean stop replays nothing");
}

/// Loads 9 rows in batches of 3 with the batch holding row 7 failing, so the
/// package stays pending with two delivered batches in its ledger. Returns
/// the ledger's path and the arguments that finish the load.
fn pending_with_ledger(s: &Scratch) -> (std::path::PathBuf, Vec<String>) {
    let input = s.file("t.jsonl", &numbered(9, "x"));
    let base: Vec<String> =
        ["--input", path_arg(&input), "--batch-size", "3", "--max-attempts", "1"].map(String::from).to_vec();
    let mut first: Vec<&str> = base.iter().map(String::as_str).collect();
    first.extend(["--env", "RETRY_ROW=7"]);
    assert_eq!(s.run_faulty(&first).status.code(), Some(1));
    (s.only_package("faulty", "normalized").join("ledger.log"), base)
}

#[test]
fn a_torn_ledger_record_replays_one_batch_and_other_damage_is_an_error() {
    let s = Scratch::new();
    let (ledger, base) = pending_with_ledger(&s);
    let base: Vec<&str> = base.iter().map(String::as_str).collect();
    let text = std::fs::read_to_string(&ledger).expect("ledger");

    // Tear the last "delivered" record: rows 3..6 are sent again, same key.
    let delivered_lines: Vec<&str> = text.lines().filter(|l| l.contains("\"delivered\"")).collect();
    assert_eq!(delivered_lines.len(), 2);
    let cut = text.find(delivered_lines[1]).expect("line") + 10;
    std::fs::write(&ledger, &text[..cut]).expect("tear");
    let out = s.run_faulty(&base);
    assert!(out.status.success(), "{}", stderr(&out));
    let docs = s.captured();
    let keys: Vec<&str> = docs.iter().map(|d| d["context"]["idempotency_key"].as_str().unwrap_or("")).collect();
    assert_eq!(docs.len(), 4, "one batch replayed");
    assert_eq!(keys.iter().collect::<BTreeSet<_>>().len(), 3, "the replay carries the same key");

    // Damage before the last record is refused with a clear message.
    let s = Scratch::new();
    let (ledger, base) = pending_with_ledger(&s);
    let base: Vec<&str> = base.iter().map(String::as_str).collect();
    let text = std::fs::read_to_string(&ledger).expect("ledger");
    std::fs::write(&ledger, text.replacen("\"rows\":3", "\"rows\":6", 1)).expect("damage");
    let out = s.run_faulty(&base);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("damaged at line"), "{}", stderr(&out));
    assert_eq!(s.captured().len(), 2, "nothing sent on a damaged ledger");
}

/// How many calls the capture sink has written so far (files, not parsed).
fn delivered_calls(s: &Scratch) -> usize {
    std::fs::read_dir(s.out()).map_or(0, |d| {
        d.flatten()
            .filter(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(".json") && !n.starts_with('.')))
            .count()
    })
}

/// A tiny deterministic generator for kill delays.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        lo + (self.0 >> 33) % (hi - lo)
    }
}

#[test]
fn sigkill_at_random_moments_loses_nothing_and_replays_at_most_a_batch_per_worker() {
    const KILLS: usize = 20;
    const WORKERS: usize = 2;
    const BATCH: u64 = 5;
    let s = Scratch::new();
    let a = s.file("alpha.jsonl", &numbered(1500, "a"));
    let b = s.file("beta.jsonl", &numbered(1500, "b"));
    let args = [
        "--input",
        path_arg(&a),
        "--input",
        path_arg(&b),
        "--batch-size",
        "5",
        "--workers",
        "2",
        "--env",
        "SLOW_MS=20",
    ];
    let mut rng = Lcg(0x5eed);
    let mut kills = 0;
    let started = Instant::now();
    let mut finished = false;
    while !finished {
        assert!(started.elapsed() < Duration::from_secs(240), "crash test ran too long");
        let mut child = s
            .command("run", "faulty", &args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        if kills < KILLS {
            // Kill once the run has delivered a few more batches (a number
            // drawn at random), a little after the last one: progress, not
            // a guess at how fast the host is, decides when.
            let target = delivered_calls(&s) + rng.next(1, 8) as usize;
            while delivered_calls(&s) < target && child.try_wait().expect("poll").is_none() {
                std::thread::sleep(Duration::from_millis(2));
            }
            std::thread::sleep(Duration::from_millis(rng.next(0, 15)));
            if child.try_wait().expect("poll").is_none() {
                child.kill().expect("SIGKILL");
                child.wait().expect("reap");
                kills += 1;
                continue;
            }
        }
        let status = child.wait().expect("wait");
        assert!(status.success(), "run after {kills} kills failed");
        finished = true;
    }
    assert!(kills >= KILLS, "only {kills} kills landed");

    let docs = s.captured();
    let mut by_key: HashMap<String, usize> = HashMap::new();
    for d in &docs {
        *by_key.entry(d["context"]["idempotency_key"].as_str().unwrap_or_default().to_string()).or_default() += 1;
    }
    let replays: usize = by_key.values().map(|n| n - 1).sum();
    assert!(replays <= kills * WORKERS, "{replays} replayed batches after {kills} kills");
    // After dropping repeated keys, every row exactly once.
    let mut seen: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut kept = BTreeSet::new();
    for d in &docs {
        if !kept.insert(d["context"]["idempotency_key"].as_str().unwrap_or_default().to_string()) {
            continue;
        }
        let table = d["table"]["name"].as_str().unwrap_or_default().to_string();
        let rows = d["rows"].as_array().cloned().unwrap_or_default();
        assert!(rows.len() as u64 <= BATCH);
        seen.entry(table).or_default().extend(ids(&rows));
    }
    for table in ["alpha", "beta"] {
        let mut got = seen.remove(table).unwrap_or_default();
        got.sort_unstable();
        assert_eq!(got, (0..1500).collect::<Vec<_>>(), "{table}: every row exactly once");
    }
    eprintln!("crash test: {kills} kills, {replays} replayed batches, {:?}", started.elapsed());
}

/// Starts `host run` with the capture sink reading stdin, writes `lines`
/// of it, and returns once the run is normalizing: its package exists in
/// staging and the test still holds stdin open, so the run waits for more
/// input for as long as the test likes.
fn normalizing_from_stdin(s: &Scratch, lines: usize) -> (std::process::Child, std::process::ChildStdin) {
    use std::io::Write as _;
    let staging = s.pipeline("capture").join("load/staging");
    // A killed run before this one may have left its own package there.
    let entries = || -> BTreeSet<std::ffi::OsString> {
        std::fs::read_dir(&staging).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default()
    };
    let before = entries();
    let mut cmd = s.command("run", "capture", &["--input", "-", "--table", "big"]);
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(numbered(lines, "n").as_bytes()).expect("write input");
    stdin.flush().expect("flush");
    while entries().difference(&before).next().is_none() {
        if let Some(status) = child.try_wait().expect("poll") {
            panic!("the run ended ({status}) before it was normalizing");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    (child, stdin)
}

/// Whatever is in `normalized/` must be a complete package.
fn no_half_package(s: &Scratch) {
    let pending = s.pipeline("capture").join("load/normalized");
    for pkg in
        std::fs::read_dir(&pending).map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>()).unwrap_or_default()
    {
        assert!(
            pkg.join("load_package_state.json").is_file() && pkg.join("schema.json").is_file(),
            "half package {}",
            pkg.display()
        );
    }
}

#[test]
fn sigkill_while_normalizing_leaves_no_half_package() {
    let s = Scratch::new();
    let mut rng = Lcg(0xfeed);
    for _ in 0..5 {
        // Killed in the middle of its input, after 1 to 5 chunks of lines.
        let (mut child, stdin) = normalizing_from_stdin(&s, rng.next(1, 10_000) as usize);
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        drop(stdin);
        no_half_package(&s);
        assert!(s.captured().is_empty(), "nothing is loaded from a half-read input");
    }
    // The next run cleans what the killed ones left in staging, and loads
    // a whole file exactly once.
    const ROWS: usize = 20_000;
    let input = s.file("big.jsonl", &numbered(ROWS, "n"));
    let out = run(s.command("run", "capture", &["--input", path_arg(&input), "--batch-size", "5000"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let staging = s.pipeline("capture").join("load/staging");
    assert_eq!(std::fs::read_dir(&staging).map_or(0, |d| d.count()), 0, "staging is clean");
    let docs = s.captured();
    let mut kept = BTreeSet::new();
    let mut got = Vec::new();
    for d in &docs {
        if kept.insert(d["context"]["idempotency_key"].as_str().unwrap_or_default().to_string()) {
            got.extend(ids(d["rows"].as_array().map(Vec::as_slice).unwrap_or_default()));
        }
    }
    got.sort_unstable();
    assert_eq!(got, (0..ROWS as u64).collect::<Vec<_>>(), "every row exactly once");
}

#[test]
fn sigint_while_normalizing_stops_at_once_and_leaves_nothing() {
    let s = Scratch::new();
    // The producer has gone quiet with its pipe still open: the run is
    // waiting for input, and a Ctrl-C must end it all the same.
    let (child, stdin) = normalizing_from_stdin(&s, 3_000);
    let started = Instant::now();
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill").success());
    let out = child.wait_with_output().expect("wait");
    drop(stdin);
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(30), "stops promptly ({:?})", started.elapsed());
    assert!(stderr(&out).contains("Nothing was packaged"), "{}", stderr(&out));
    for sub in ["normalized", "staging"] {
        let dir = s.pipeline("capture").join("load").join(sub);
        assert_eq!(std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0), 0, "{sub} is empty");
    }
    assert!(s.captured().is_empty());
}

/// Opens the test's end of the normalize gate (a FIFO) once the run has
/// opened its end; `None` when the run ended without reaching the overlap.
fn open_gate(gate: &std::path::Path, child: &mut std::process::Child) -> Option<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    // O_NONBLOCK (Linux's 0o4000): opening a FIFO to write fails at once
    // until a reader has it open, instead of blocking.
    const O_NONBLOCK: i32 = 0o4000;
    loop {
        match std::fs::OpenOptions::new().write(true).custom_flags(O_NONBLOCK).open(gate) {
            Ok(f) => return Some(f),
            Err(_) if child.try_wait().expect("poll").is_none() => std::thread::sleep(Duration::from_millis(1)),
            Err(_) => return None,
        }
    }
}

/// The state file of the pipeline's only pending package.
fn pending_state(s: &Scratch, pipeline: &str) -> Value {
    let dir = s.pipeline(pipeline).join("load/normalized");
    let packages: Vec<_> = std::fs::read_dir(&dir).expect("normalized/").flatten().collect();
    assert_eq!(packages.len(), 1, "one pending package");
    let state = std::fs::read(packages[0].path().join("load_package_state.json")).expect("state file");
    serde_json::from_slice(&state).expect("state is JSON")
}

/// `host run` on files loads jobs while later ones are normalized. Killed
/// inside that overlap (normalizing held after a number of jobs drawn at
/// random, through the test gate, and a few batches delivered), the rerun
/// normalizes the package again into the same load id and job ids: after
/// dropping repeated idempotency keys every row arrives exactly once, so no
/// row was ever sent under a second key.
#[test]
fn sigkill_while_loading_and_normalizing_at_once_never_sends_a_row_under_a_new_key() {
    const ROUNDS: usize = 6;
    const ROWS: usize = 400;
    let s = Scratch::new();
    let gate = s.path().join("gate");
    assert!(Command::new("mkfifo").arg(&gate).status().expect("mkfifo").success());
    let mut rng = Lcg(0x0be7);
    for round in 0..ROUNDS {
        let input = s.file(&format!("round{round}.jsonl"), &numbered(ROWS, "r"));
        let args = [
            "--input",
            path_arg(&input),
            "--batch-size",
            "5",
            "--workers",
            "2",
            "--file-max-items",
            "50",
            "--env",
            "SLOW_MS=2",
        ];
        let mut child = s
            .command("run", "faulty", &args)
            .env("DLTHOST_TEST_NORMALIZE_GATE", &gate)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let mut gate_end = open_gate(&gate, &mut child).expect("the run reaches the overlap");
        let before = delivered_calls(&s);
        let jobs = rng.next(1, 5) as usize;
        std::io::Write::write_all(&mut gate_end, &vec![0u8; jobs]).expect("open the gate");
        let target = before + rng.next(1, 8) as usize;
        while delivered_calls(&s) < target {
            assert!(
                child.try_wait().expect("poll").is_none(),
                "round {round}: the run ended while normalizing was held"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let state = pending_state(&s, "faulty");
        assert!(state["normalizing"].is_object(), "round {round}: killed while normalizing: {state}");
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        drop(gate_end);
        let out = s.command("run", "faulty", &args).output().expect("rerun");
        assert!(out.status.success(), "round {round}: rerun failed: {}", stderr(&out));
    }
    let mut kept = BTreeSet::new();
    let mut seen: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for d in s.captured() {
        if !kept.insert(d["context"]["idempotency_key"].as_str().unwrap_or_default().to_string()) {
            continue;
        }
        let rows = d["rows"].as_array().cloned().unwrap_or_default();
        seen.entry(d["table"]["name"].as_str().unwrap_or_default().to_string()).or_default().extend(ids(&rows));
    }
    for round in 0..ROUNDS {
        let mut got = seen.remove(&format!("round{round}")).unwrap_or_default();
        got.sort_unstable();
        assert_eq!(got, (0..ROWS as u64).collect::<Vec<_>>(), "round{round}: every row exactly once");
    }
}

/// `--on-bad-line fail` while jobs were already loaded: the rows of the
/// jobs published before the bad line's chunk are delivered, the run exits
/// 2 saying so, and the package stays pending. The rerun after the fix
/// sends only the rest; after a change to rows already delivered, the
/// rerun refuses and names the way out.
#[test]
fn a_bad_line_after_loaded_jobs_keeps_the_package_and_the_fixed_rerun_sends_only_the_rest() {
    let s = Scratch::new();
    // Two chunks of 2048 good lines are committed (jobs of 1000 rows
    // published) before the chunk with the bad line fails.
    let good = numbered(5000, "x");
    let input = s.file("events.jsonl", &format!("{good}{{\"id\": oops}}\n"));
    let args = ["--input", path_arg(&input), "--batch-size", "100", "--file-max-items", "1000"];
    let out = s.command("run", "capture", &args).output().expect("run");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("events.jsonl:5001"), "{err}");
    assert!(err.contains("4000 rows were delivered before normalizing stopped"), "{err}");
    assert!(err.contains("host drop-pending"), "{err}");
    assert!(pending_state(&s, "capture")["normalizing"].is_object());
    let status = Command::new(e2e::host_bin())
        .args(["status", "--pipeline", "capture", "--pipelines-dir"])
        .arg(s.pipelines())
        .output()
        .expect("status");
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(shown.contains("its normalizing was interrupted"), "{shown}");
    let sorted = |mut v: Vec<u64>| {
        v.sort_unstable();
        v
    };
    assert_eq!(sorted(ids(&rows_of(&s.captured(), "events"))), (0..4000).collect::<Vec<_>>());

    // Rows already delivered changed: refused, nothing sent.
    let changed = good.replacen("{\"id\":0,", "{\"id\":99999,", 1);
    std::fs::write(&input, format!("{changed}{{\"id\": oops}}\n")).expect("change");
    let out = s.command("run", "capture", &args).output().expect("run");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("comes out different") && err.contains("host drop-pending"), "{err}");
    assert_eq!(s.captured().iter().map(|d| d["rows"].as_array().map_or(0, Vec::len)).sum::<usize>(), 4000);

    // Fixed: the rest is sent, each row once, no batch twice.
    std::fs::write(&input, format!("{good}{{\"id\": 5000}}\n")).expect("fix");
    let out = s.command("run", "capture", &args).output().expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sorted(ids(&rows_of(&s.captured(), "events"))), (0..5001).collect::<Vec<_>>());
    let out = s.command("run", "capture", &args).output().expect("rerun");
    assert!(out.status.success() && stderr(&out).contains("already"), "{}", stderr(&out));
}
