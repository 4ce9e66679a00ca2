//! The reverse-ETL case: `http_sink` POSTs a few thousand rows to a real API
//! on 127.0.0.1 that fails in the ways real APIs fail. Every row must be
//! stored exactly once, and failures reported as the ledger promises.

use std::path::Path;
use std::time::Duration;

use e2e::api::{ApiServer, Faults};
use e2e::{Scratch, ids, numbered, stderr};

const ROWS: usize = 2000;
const KEY: &str = "test-api-key-42";

/// Runs http_sink against `api` with batch size 50 and extra args.
fn post(s: &Scratch, api: &ApiServer, extra: &[&str]) -> std::process::Output {
    post_with(s, api, &e2e::guest("http_sink"), "HTTP_SINK", extra)
}

/// Runs `sink` (whose config section is `section`) against `api`.
fn post_with(s: &Scratch, api: &ApiServer, sink: &Path, section: &str, extra: &[&str]) -> std::process::Output {
    let input = s.path().join("orders.jsonl");
    if !input.exists() {
        std::fs::write(&input, numbered(ROWS, "o")).expect("input");
    }
    let url = format!("--set=url={}/v1", api.url());
    let allow = api.url();
    let mut args = vec![
        "--input",
        input.to_str().expect("utf8"),
        "--batch-size",
        "50",
        "--retry-backoff",
        "50ms",
        "--allow-host",
        &allow,
    ];
    args.push(&url);
    args.extend_from_slice(extra);
    let mut cmd = s.command_for("run", sink, &args);
    cmd.env(format!("DESTINATION__{section}__API_KEY"), KEY);
    e2e::run(cmd)
}

fn assert_exactly_once(api: &ApiServer) {
    assert_eq!(ids(&api.rows("orders")), (0..ROWS as u64).collect::<Vec<_>>(), "every row exactly once, in order");
}

#[test]
fn every_fifth_request_fails_with_503_and_every_row_arrives_once() {
    let s = Scratch::new();
    let api = ApiServer::start(Faults { fail_every: Some(5), ..Faults::default() });
    let out = post(&s, &api, &["--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_exactly_once(&api);
    let r = api.received.lock().expect("lock");
    assert!(r.requests > 40, "503s were retried: {} requests", r.requests);
    assert!(r.authorization.iter().all(|a| a.as_deref() == Some(&format!("Bearer {KEY}")[..])), "the API key is sent");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("summary");
    assert!(summary["retries"].as_u64().unwrap_or(0) >= 8, "{summary}");
}

#[test]
fn a_400_fails_the_job_terminally_with_the_response_body() {
    let s = Scratch::new();
    let api = ApiServer::start(Faults { bad_request_at: Some(4), ..Faults::default() });
    let out = post(&s, &api, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("HTTP 400: bad request: row 7 has no id"), "{err}");
    assert!(err.contains("rows 150..200"), "names the batch: {err}");
    assert_eq!(ids(&api.rows("orders")), (0..150).collect::<Vec<_>>(), "batches before the 400 stay delivered");
    assert_eq!(api.received.lock().expect("lock").requests, 4, "a terminal error is not retried");
}

#[test]
fn a_stall_past_the_call_timeout_is_retried_and_deduplicated() {
    let s = Scratch::new();
    let api = ApiServer::start(Faults { stall_at: Some((3, Duration::from_secs(3))), ..Faults::default() });
    let out = post(&s, &api, &["--call-timeout", "1s"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The host clamps the sink's HTTP timeouts to the call timeout, so the
    // sink sees a read timeout and asks to retry.
    assert!(stderr(&out).contains("ConnectionReadTimeout"), "{}", stderr(&out));
    assert_exactly_once(&api);
}

#[test]
fn a_crash_and_restart_of_the_api_loses_and_duplicates_nothing() {
    let s = Scratch::new();
    let api = ApiServer::start(Faults { crash_at: Some(10), ..Faults::default() });
    let port = api.port;
    let handle = std::thread::spawn(move || {
        while !api.has_crashed() {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(800));
        api.restart()
    });
    let s2 = &s;
    let input = s2.path().join("orders.jsonl");
    std::fs::write(&input, numbered(ROWS, "o")).expect("input");
    let url = format!("--set=url=http://127.0.0.1:{port}/v1");
    let allow = format!("http://127.0.0.1:{port}");
    let args = [
        "--input",
        input.to_str().expect("utf8"),
        "--batch-size",
        "50",
        "--retry-backoff",
        "200ms",
        "--max-attempts",
        "8",
        "--call-timeout",
        "2s",
        "--allow-host",
        &allow,
        &url,
    ];
    let mut cmd = s.command("run", "http_sink", &args);
    cmd.env("DESTINATION__HTTP_SINK__API_KEY", KEY);
    let out = e2e::run(cmd);
    let api = handle.join().expect("restarter");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_exactly_once(&api);
}

#[test]
fn auth_header_is_added_by_the_host_and_the_key_never_reaches_the_sink() {
    let s = Scratch::new();
    let dlt = s.path().join(".dlt");
    std::fs::create_dir_all(&dlt).expect("mkdir");
    std::fs::write(
        dlt.join("config.toml"),
        "[destination.http_sink]\nauth_header = \"Authorization: Token {api_key}\"\n",
    )
    .expect("config");
    let api = ApiServer::start(Faults::default());
    let out = post(&s, &api, &["--project-dir", s.path().to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_exactly_once(&api);
    let r = api.received.lock().expect("lock");
    assert!(
        r.authorization.iter().all(|a| a.as_deref() == Some(&format!("Token {KEY}")[..])),
        "{:?}",
        r.authorization.first()
    );

    // The same setting for the probe sink: its api_key lookup comes back empty.
    let p = Scratch::new();
    let dlt = p.path().join(".dlt");
    std::fs::create_dir_all(&dlt).expect("mkdir");
    std::fs::write(
        dlt.join("config.toml"),
        "[destination.probe]\nurl = \"u\"\nauth_header = \"Authorization: Bearer {api_key}\"\n",
    )
    .expect("config");
    std::fs::write(dlt.join("secrets.toml"), "[destination.probe]\napi_key = \"hidden\"\n").expect("secrets");
    let input = p.file("t.jsonl", &numbered(1, "x"));
    let out = e2e::run(p.command(
        "run",
        "config_probe",
        &["--input", input.to_str().expect("utf8"), "--project-dir", p.path().to_str().expect("utf8")],
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    let seen: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.out().join("config.json")).expect("probe")).expect("json");
    assert_eq!(seen["api_key"], serde_json::Value::Null);
}

/// The Python sink posts over wasi:http the same way: through 503s every row
/// arrives once, with the key and an idempotency key on every request; a 400
/// then fails the job terminally with the API's message.
#[test]
fn the_python_http_sink_retries_503s_and_fails_on_a_400() {
    if e2e::foreign_skipped("the Python HTTP sink test") {
        return;
    }
    let sink = e2e::python_http_sink();
    let s = Scratch::new();
    let api = ApiServer::start(Faults { fail_every: Some(5), ..Faults::default() });
    let out = post_with(&s, &api, &sink, "PYTHON_HTTP_SINK", &["--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_exactly_once(&api);
    {
        let r = api.received.lock().expect("lock");
        assert!(r.requests > 40, "503s were retried: {} requests", r.requests);
        assert!(r.authorization.iter().all(|a| a.as_deref() == Some(&format!("Bearer {KEY}")[..])), "key sent");
    }

    let s = Scratch::new();
    let api = ApiServer::start(Faults { bad_request_at: Some(4), ..Faults::default() });
    let out = post_with(&s, &api, &sink, "PYTHON_HTTP_SINK", &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("HTTP 400: bad request: row 7 has no id"), "{}", stderr(&out));
    assert_eq!(ids(&api.rows("orders")), (0..150).collect::<Vec<_>>(), "batches before the 400 stay delivered");
}
