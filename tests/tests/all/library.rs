//! The library's operations called from Rust, as an embedding program
//! would: `Sink::open` and `pipeline::run` on a real sink component, with
//! a stop handle the caller owns (no signal, no process-wide flag).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use e2e::{Scratch, guest, ids, numbered, repo_root, rows_of};
use host::catalog;
use host::extract::InputSpec;
use host::input::InputSource;
use host::load::LoadReport;
use host::pipeline::{self, Normalized, Observer, RunRequest, Sink, SinkRequest};
use host::runtime::{CompileCache, DirGrant};
use host::settings::FlagValues;
use host::stop::Cancel;

/// A request for the faulty sink in `s`, with `env` passed to the sink.
fn request(s: &Scratch, env: &[(&str, &str)], cancel: &Cancel) -> SinkRequest {
    let mut flags = FlagValues::default();
    flags.set(&catalog::BATCH_SIZE, "1");
    flags.set(&catalog::WORKERS, "1");
    SinkRequest {
        component: Some(guest("faulty")),
        pipelines_dir: s.pipelines(),
        project_dir: s.path().to_path_buf(),
        flags,
        dirs: vec![DirGrant { host: s.out(), guest: "/out".into() }],
        env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        cache: Some(CompileCache::new(repo_root().join("target/test-cache"), 1 << 30)),
        cancel: cancel.clone(),
        ..SinkRequest::default()
    }
}

fn run_request(input: PathBuf) -> RunRequest {
    let inputs = vec![InputSpec { source: InputSource::File(input), table: "t".into(), table_from_field: None }];
    RunRequest { normalize_threads: 2, ..RunRequest::new(inputs) }
}

/// Counts what the observer hears.
#[derive(Default)]
struct Heard {
    normalized: Mutex<Option<Normalized>>,
    loading: AtomicU64,
    batches: AtomicU64,
}

impl Observer for Heard {
    fn normalized(&self, n: &Normalized) {
        *self.normalized.lock().expect("lock") = Some(n.clone());
    }
    fn loading(&self, rows: u64) {
        self.loading.store(rows, Ordering::Relaxed);
    }
    fn load_progress(&self, _: &LoadReport) {
        self.batches.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn run_delivers_reports_progress_and_knows_input_it_loaded() {
    let s = Scratch::new();
    let input = s.file("t.jsonl", &numbered(5, "x"));
    let sink = Sink::open(&request(&s, &[], &Cancel::new())).expect("open");
    assert_eq!((sink.settings.batch_size, sink.load.workers), (1, 1), "flags resolved by the library");
    let heard = Arc::new(Heard::default());
    let outcome = pipeline::run(&sink, &run_request(input.clone()), heard.clone()).expect("run");
    assert!(outcome.report.ok() && !outcome.report.interrupted, "{:?}", outcome.report);
    assert_eq!(outcome.report.rows(), 5);
    assert_eq!(heard.normalized.lock().expect("lock").as_ref().map(|n| (n.records, n.rows)), Some((5, 5)));
    assert_eq!(heard.loading.load(Ordering::Relaxed), 5);
    assert!(heard.batches.load(Ordering::Relaxed) >= 5, "a progress call after each batch");
    assert_eq!(ids(&rows_of(&s.captured(), "t")), (0..5).collect::<Vec<_>>());

    let again = pipeline::run(&sink, &run_request(input), Arc::new(())).expect("rerun");
    let already = again.already_loaded.expect("the same input is known");
    assert_eq!(already.failed_jobs, 0);
    assert_eq!(again.report.rows(), 0, "nothing sent");
    assert_eq!(rows_of(&s.captured(), "t").len(), 5);
}

/// The caller's handle stops a load mid-way: the call in flight finishes,
/// no batch follows, and a run with a fresh handle resumes without
/// sending a row twice.
#[test]
fn a_cancel_handle_stops_a_run_and_a_new_run_resumes() {
    let s = Scratch::new();
    let input = s.file("t.jsonl", &numbered(20, "x"));
    let cancel = Cancel::new();
    let sink = Sink::open(&request(&s, &[("HOLD_ROW", "3")], &cancel)).expect("open");
    let holding = s.out().join(".holding");
    let outcome = std::thread::scope(|scope| {
        let running = scope.spawn(|| pipeline::run(&sink, &run_request(input.clone()), Arc::new(())));
        while !holding.exists() {
            assert!(!running.is_finished(), "the run ended before the sink held row 3");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        cancel.cancel();
        s.release();
        running.join().expect("no panic").expect("run")
    });
    assert!(outcome.report.interrupted, "{:?}", outcome.report);
    assert_eq!(ids(&rows_of(&s.captured(), "t")), [0, 1, 2, 3], "the call in flight finished, nothing after");

    std::fs::remove_file(s.out().join(".release")).expect("reset the hold");
    let sink = Sink::open(&request(&s, &[], &Cancel::new())).expect("reopen");
    let outcome = pipeline::run(&sink, &run_request(input), Arc::new(())).expect("resume");
    assert!(outcome.report.ok(), "{:?}", outcome.report);
    assert!(outcome.already_loaded.is_some(), "the resumed package was this input");
    assert_eq!(ids(&rows_of(&s.captured(), "t")), (0..20).collect::<Vec<_>>(), "each row once");
}
