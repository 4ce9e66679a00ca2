//! Hostile sinks are stopped by the sandbox with a message that says what
//! they did, while a well-behaved table in the same run loads normally.

use e2e::{Scratch, ids, numbered, rows_of, stderr};

/// Runs `faulty` on two tables, `good` (behaves) and `bad` (misbehaves as
/// `faults` say); returns stderr after checking that every good row arrived
/// and the run failed.
fn contained(s: &Scratch, faults: &[&str], extra: &[&str]) -> String {
    let good = s.file("good.jsonl", &numbered(30, "g"));
    let bad = s.file("bad.jsonl", &numbered(3, "b"));
    let mut args: Vec<String> = vec![
        "--input".into(),
        good.to_string_lossy().into_owned(),
        "--input".into(),
        bad.to_string_lossy().into_owned(),
        "--workers".into(),
        "2".into(),
        "--max-attempts".into(),
        "1".into(),
        "--env".into(),
        "FAULT_TABLE=bad".into(),
    ];
    for f in faults {
        args.push("--env".into());
        args.push((*f).into());
    }
    args.extend(extra.iter().map(|a| a.to_string()));
    let out = e2e::run(s.command("run", "faulty", &args.iter().map(String::as_str).collect::<Vec<_>>()));
    let err = stderr(&out);
    // 1 for a failure retried until the attempts ran out (a timeout, a
    // trap), 3 for one the sink called terminal: either way, not success.
    assert!(matches!(out.status.code(), Some(1 | 3)), "{err}");
    assert_eq!(
        ids(&rows_of(&s.captured(), "good")),
        (0..30).collect::<Vec<_>>(),
        "the good table is unaffected: {err}"
    );
    assert!(rows_of(&s.captured(), "bad").is_empty(), "{err}");
    assert!(!err.lines().any(|l| l.starts_with("thread '")), "no host panic: {err}");
    err
}

#[test]
fn infinite_loop_hits_the_call_timeout() {
    let err = contained(&Scratch::new(), &["LOOP=1"], &["--call-timeout", "300ms"]);
    assert!(err.contains("sink `faulty` ran past the call timeout of 300ms (raise it with --call-timeout)"), "{err}");
    assert!(err.contains("table `bad`") && err.contains("rows 0..3"), "names table and batch: {err}");
}

#[test]
fn infinite_loop_runs_out_of_fuel() {
    let err = contained(&Scratch::new(), &["LOOP=1"], &["--fuel", "50000000"]);
    assert!(err.contains("ran out of fuel (50000000 units per call; raise it with --fuel)"), "{err}");
}

#[test]
fn memory_bomb_hits_the_memory_limit() {
    let err = contained(&Scratch::new(), &["MEMORY_BOMB=1"], &["--memory-limit", "64MiB"]);
    assert!(err.contains("exceeded the memory limit of 67108864 bytes (raise it with --memory-limit)"), "{err}");
}

#[test]
fn stack_overflow_is_a_trap() {
    let err = contained(&Scratch::new(), &["STACK_OVERFLOW=1"], &[]);
    assert!(err.contains("overflowed its stack"), "{err}");
}

#[test]
fn panic_is_a_trap_with_the_guest_message() {
    let err = contained(&Scratch::new(), &["PANIC_ROW=1"], &[]);
    assert!(err.contains("trapped") && err.contains("injected panic at row 0"), "{err}");
}

#[test]
fn host_files_are_invisible() {
    let s = Scratch::new();
    let err = contained(&s, &["READ_FILE=/etc/passwd"], &[]);
    assert!(err.contains("read /etc/passwd: ") && !err.contains("got "), "{err}");
    // Not even the pipeline directory, by its host path.
    let s = Scratch::new();
    let secret = s.pipelines().join("faulty/load");
    let err = contained(&s, &[&format!("READ_FILE={}", secret.display())], &[]);
    assert!(!err.contains("got "), "{err}");
}

#[test]
fn writes_outside_the_granted_directory_fail() {
    let s = Scratch::new();
    let outside = s.path().join("escaped.txt");
    let err = contained(&s, &[&format!("WRITE_FILE={}", outside.display())], &[]);
    assert!(err.contains("write ") && !err.contains(": written"), "{err}");
    let err = contained(&Scratch::new(), &["WRITE_FILE=/out/../escaped.txt"], &[]);
    assert!(!err.contains(": written"), "{err}");
    assert!(!outside.exists() && !s.path().join("escaped.txt").exists());
}

#[test]
fn host_environment_is_invisible() {
    assert!(std::env::var("PATH").is_ok());
    let err = contained(&Scratch::new(), &["READ_ENV=PATH"], &[]);
    assert!(err.contains("env PATH: None"), "{err}");
}

#[test]
fn http_to_a_host_not_on_the_list_is_denied_with_the_entry_to_add() {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("server");
    let port = server.server_addr().to_ip().expect("ip").port();
    let url = format!("http://127.0.0.1:{port}/ping");
    let err = contained(&Scratch::new(), &[&format!("HTTP_GET={url}")], &[]);
    assert!(err.contains("HttpRequestDenied"), "{err}");
    assert!(err.contains(&format!("--allow-host http://127.0.0.1:{port}")), "says what to add: {err}");
    assert!(server.try_recv().expect("poll").is_none(), "nothing reached the server");
}

#[test]
fn http_to_an_allowed_host_goes_through() {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("server");
    let port = server.server_addr().to_ip().expect("ip").port();
    let handle = std::thread::spawn(move || {
        let mut seen = Vec::new();
        while let Ok(Some(mut req)) = server.recv_timeout(std::time::Duration::from_secs(20)) {
            let mut body = String::new();
            let _ = req.as_reader().read_to_string(&mut body);
            seen.push(req.url().to_string());
            let _ = req.respond(tiny_http::Response::from_string("pong"));
            if seen.len() == 1 {
                break;
            }
        }
        seen
    });
    let s = Scratch::new();
    let input = s.file("t.jsonl", &numbered(4, "x"));
    let out = s.run_faulty(&[
        "--input",
        input.to_str().expect("utf8"),
        "--env",
        &format!("HTTP_GET=http://127.0.0.1:{port}/ping"),
        "--allow-host",
        &format!("http://127.0.0.1:{port}"),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(handle.join().expect("server thread"), ["/ping"]);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("summary");
    assert_eq!(summary["sandbox"]["http_requests"], 1);
    assert_eq!(ids(&rows_of(&s.captured(), "t")), [0, 1, 2, 3]);
}

#[test]
fn second_run_loads_the_component_from_the_compile_cache() {
    let s = Scratch::new();
    let cache = s.path().join("cache");
    for (i, hit) in [false, true].into_iter().enumerate() {
        let input = s.file(&format!("t{i}.jsonl"), &numbered(2, "x"));
        let mut cmd = s.command("run", "capture", &["--input", input.to_str().expect("utf8"), "--json"]);
        cmd.env("DLTHOST_CACHE_DIR", &cache);
        let out = e2e::run(cmd);
        assert!(out.status.success(), "{}", stderr(&out));
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("summary");
        assert_eq!(summary["sandbox"]["cache_hit"], hit, "run {i}");
    }
    let mut clean = std::process::Command::new(e2e::host_bin());
    clean.args(["cache", "clean", "--cache-dir"]).arg(&cache);
    let out = e2e::run(clean);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Removed 1 compiled components"));
}
