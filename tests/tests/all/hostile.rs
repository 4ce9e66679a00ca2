//! The classes of harm a sink written from the WIT alone could do to the
//! host (issue 19), one test each: what the sink tried is refused or
//! contained, with a message that names it and the setting that changes
//! the limit, and a well-behaved table in the same run is delivered once.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e::api::{ApiServer, Faults};
use e2e::{Scratch, ids, numbered, rows_of, stderr};
use serde_json::Value;

fn path(p: &std::path::Path) -> &str {
    p.to_str().expect("utf8 path")
}

/// `faulty` on `good` (30 rows, behaves) and `bad` (3 rows, misbehaves as
/// `faults` say). Returns the output after checking that every good row
/// arrived exactly once, nothing of `bad` did, and the host did not panic.
fn mixed_run(s: &Scratch, faults: &[&str], extra: &[&str]) -> std::process::Output {
    let good = s.file("good.jsonl", &numbered(30, "g"));
    let bad = s.file("bad.jsonl", &numbered(3, "b"));
    let mut args = vec!["--input", path(&good), "--input", path(&bad), "--workers", "2", "--env", "FAULT_TABLE=bad"];
    for f in faults {
        args.extend(["--env", f]);
    }
    args.extend_from_slice(extra);
    let out = e2e::run(s.command("run", "faulty", &args));
    let err = stderr(&out);
    assert_eq!(ids(&rows_of(&s.captured(), "good")), (0..30).collect::<Vec<_>>(), "good rows once: {err}");
    assert!(rows_of(&s.captured(), "bad").is_empty(), "{err}");
    assert!(!err.contains("internal error") && !err.contains("panicked"), "no host panic: {err}");
    out
}

/// Nothing was created next to the pipelines directory (a sink's name must
/// not steer where the host writes).
fn nothing_outside(s: &Scratch, expected: &[&str]) {
    let mut names: Vec<String> = std::fs::read_dir(s.path())
        .expect("scratch")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, expected, "what the scratch directory holds");
}

// Class 1: a sink's name decides no path.
#[test]
fn a_sink_name_that_is_a_path_or_forges_lines_is_refused_before_anything_is_written() {
    for name in ["../x", "/tmp/evil", "a\nLoaded 100 rows", "Capital", "x".repeat(65).as_str()] {
        let s = Scratch::new();
        let input = s.file("t.jsonl", &numbered(3, "x"));
        let spec_name = format!("SPEC_NAME={name}");
        let out = e2e::run(s.command("run", "faulty", &["--input", path(&input), "--env", &spec_name]));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{name:?}: {err}");
        assert!(err.contains("sink name") && err.contains("is refused"), "{name:?}: {err}");
        assert!(!err.contains("\nLoaded"), "the name cannot forge a line: {err}");
        nothing_outside(&s, &["out", "t.jsonl"]);
        assert!(s.captured().is_empty());
    }
    // A --pipeline that is a path is refused the same way.
    let s = Scratch::new();
    let input = s.file("t.jsonl", &numbered(3, "x"));
    let out = e2e::run(s.command("run", "faulty", &["--input", path(&input), "--pipeline", "../outside"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("pipeline name \"../outside\" is refused"), "{}", stderr(&out));
    assert!(!s.path().join("outside").exists());
}

// Config key declarations are checked when the spec is read.
#[test]
fn bad_config_key_declarations_are_refused_naming_the_key() {
    for (keys, named, why) in [
        ("", "\"\"", "lower snake_case"),
        ("../../etc/passwd", "\"../../etc/passwd\"", "lower snake_case"),
        ("PATH", "\"PATH\"", "lower snake_case"),
        ("token,token", "\"token\"", "declared twice"),
        ("port:int=eighty", "\"port\"", "default of another kind"),
        ("component", "\"component\"", "the host reads itself"),
    ] {
        let s = Scratch::new();
        let input = s.file("t.jsonl", &numbered(3, "x"));
        let declared = format!("SPEC_KEYS={keys}");
        let out = e2e::run(s.command("run", "faulty", &["--input", path(&input), "--env", &declared]));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{keys}: {err}");
        assert!(err.contains(&format!("config key {named}")) && err.contains(why), "{keys}: {err}");
        assert!(s.captured().is_empty());
        assert!(!s.pipelines().exists() || std::fs::read_dir(s.pipelines()).expect("dir").count() == 0);
    }
}

// Class 7: a sink cannot claim another sink's section by its name.
#[test]
fn a_section_that_names_a_component_serves_that_component_only() {
    let s = Scratch::new();
    let dlt = s.path().join(".dlt");
    std::fs::create_dir_all(&dlt).expect("mkdir");
    std::fs::copy(e2e::guest("capture"), s.path().join("victim.wasm")).expect("copy");
    std::fs::write(dlt.join("config.toml"), "[destination.victim]\ncomponent = \"victim.wasm\"\n").expect("config");
    std::fs::write(dlt.join("secrets.toml"), "[destination.victim]\ntoken = \"victim-secret-123\"\n").expect("secrets");
    let input = s.file("t.jsonl", &numbered(3, "x"));
    let project = path(s.path()).to_string();
    let args = [
        "--input",
        path(&input),
        "--project-dir",
        &project,
        "--env",
        "SPEC_NAME=victim",
        "--env",
        "SPEC_KEYS=token:secret",
        "--env",
        "ECHO_SECRET=token",
    ];
    let out = e2e::run(s.command("run", "faulty", &args));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("is not the component") && err.contains("victim.wasm"), "{err}");
    assert!(!err.contains("victim-secret-123"), "{err}");
    assert!(s.captured().is_empty());

    // A content hash binds the section to the bytes as well.
    std::fs::write(
        dlt.join("config.toml"),
        format!(
            "[destination.victim]\ncomponent = \"{}\"\ncomponent_sha256 = \"{}\"\n",
            path(&e2e::guest("faulty")),
            "0".repeat(64)
        ),
    )
    .expect("config");
    let out = e2e::run(s.command("run", "faulty", &args));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("its SHA-256 is"), "{}", stderr(&out));
}

// Class 2: --call-timeout bounds the whole call, host calls included.
#[test]
fn a_sink_asleep_in_a_host_call_is_stopped_at_the_call_timeout() {
    let s = Scratch::new();
    let started = Instant::now();
    let out = mixed_run(&s, &["SLEEP_MS=20000"], &["--call-timeout", "1s", "--max-attempts", "1"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("ran past the call timeout of 1s (raise it with --call-timeout)"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(15), "returned at the timeout, not after the sleep: {err}");
}

// Class 2: SIGTERM ends the run within seconds, whatever the sink does.
#[test]
fn sigterm_ends_a_run_whose_sink_sleeps_in_a_host_call() {
    let s = Scratch::new();
    let input = s.file("t.jsonl", &numbered(3, "x"));
    let mut child = s
        .command("run", "faulty", &["--input", path(&input), "--env", "HOLD_ROW=0", "--env", "SLEEP_MS=200000"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // The call is in flight once the sink holds; it will then sleep 200 s.
    s.wait_for_hold(&mut child);
    s.release();
    let started = Instant::now();
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill").success());
    let out = child.wait_with_output().expect("wait");
    assert!(started.elapsed() < Duration::from_secs(30), "ended in {:?}", started.elapsed());
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(stderr(&out).contains("stopped while sink `faulty` was still in a call"), "{}", stderr(&out));
    assert!(s.captured().is_empty());
}

// Class 3: retry-after is capped, and the cap is a setting.
#[test]
fn an_endless_retry_after_waits_only_the_cap() {
    let s = Scratch::new();
    let started = Instant::now();
    let out = mixed_run(
        &s,
        &["RETRY_ROW=0", "RETRY_AFTER_MS=18446744073709551615"],
        &["--max-retry-after", "1s", "--max-attempts", "2", "--retry-backoff", "10ms"],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("waiting 1s (the cap, --max-retry-after)"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
}

// Class 5: a sink's text is cut to a few KiB wherever it is printed or stored.
#[test]
fn huge_sink_messages_are_cut_everywhere() {
    let s = Scratch::new();
    let out = mixed_run(&s, &["HUGE_MESSAGE=67108864"], &["--max-attempts", "1", "--json"]);
    assert_eq!(out.status.code(), Some(3), "a terminal failure: {}", stderr(&out));
    assert!(out.stderr.len() < 64 << 10, "stderr is {} bytes", out.stderr.len());
    assert!(out.stdout.len() < 64 << 10, "--json is {} bytes", out.stdout.len());
    assert!(stderr(&out).contains("[cut to 4096 bytes of 67108864]"), "says how much was cut");
    let summary: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(summary.to_string().contains("cut to 4096 bytes"), "{summary}");
    for entry in walk(&s.pipelines()) {
        let size = std::fs::metadata(&entry).map(|m| m.len()).unwrap_or(0);
        assert!(size < 64 << 10, "{} is {size} bytes", entry.display());
    }

    let s = Scratch::new();
    let out = mixed_run(&s, &["HUGE_RETRY=67108864"], &["--max-attempts", "3", "--retry-backoff", "1ms"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(out.stderr.len() < 64 << 10, "stderr is {} bytes", out.stderr.len());
    for entry in walk(&s.pipelines()) {
        let size = std::fs::metadata(&entry).map(|m| m.len()).unwrap_or(0);
        assert!(size < 64 << 10, "{} is {size} bytes", entry.display());
    }
}

/// Every file below `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

// Class 6: a secret inside anything the sink says is replaced.
#[test]
fn a_secret_in_a_sink_message_or_its_output_is_never_printed_or_stored() {
    const SECRET: &str = "tok-3f9a77c1";
    let s = Scratch::new();
    let mut cmd_env = vec![("DESTINATION__FAULTY__TOKEN", SECRET)];
    let good = s.file("good.jsonl", &numbered(30, "g"));
    let bad = s.file("bad.jsonl", &numbered(3, "b"));
    let args = [
        "--input",
        path(&good),
        "--input",
        path(&bad),
        "--env",
        "FAULT_TABLE=bad",
        "--env",
        "SPEC_KEYS=token:secret",
        "--env",
        "ECHO_SECRET=token",
        "--max-attempts",
        "2",
        "--retry-backoff",
        "1ms",
        "--json",
    ];
    let mut cmd = s.command("run", "faulty", &args);
    for (k, v) in cmd_env.drain(..) {
        cmd.env(k, v);
    }
    let out = e2e::run(cmd);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(ids(&rows_of(&s.captured(), "good")), (0..30).collect::<Vec<_>>(), "{err}");
    assert!(err.contains("the destination rejected [secret]"), "{err}");
    assert!(err.contains("[faulty] stdout has [secret]") && err.contains("[faulty] stderr has [secret]"), "{err}");
    assert!(!err.contains(SECRET), "stderr: {err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(SECRET), "--json");
    for file in walk(&s.pipelines()) {
        let text = String::from_utf8_lossy(&std::fs::read(&file).expect("read")).into_owned();
        assert!(!text.contains(SECRET), "{} holds the secret", file.display());
    }
}

// Class 8: a name that answers any form of a local address is refused,
// and the host never dials it.
#[test]
fn every_form_of_a_loopback_address_behind_a_name_is_refused() {
    let api = ApiServer::start(Faults::default());
    let port = api.port;
    for form in ["0.0.0.0", "[::ffff:127.0.0.1]", "[::127.0.0.1]", "[64:ff9b::7f00:1]", "127.0.0.1"] {
        let s = Scratch::new();
        let input = s.file("t.jsonl", &numbered(2, "x"));
        let url = format!("HTTP_GET=http://api.test:{port}/v1");
        let allow = format!("http://api.test:{port}");
        let resolve = format!("api.test:{port}:{form}");
        let args = [
            "--input",
            path(&input),
            "--env",
            &url,
            "--allow-host",
            &allow,
            "--resolve",
            &resolve,
            "--max-attempts",
            "1",
        ];
        let out = e2e::run(s.command("run", "faulty", &args));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(3), "{form}: {err}");
        assert!(err.contains("local addresses must be allowed explicitly"), "{form}: {err}");
    }
    assert_eq!(api.received.lock().expect("lock").requests, 0, "nothing reached the server");
}

// Class 4: one input record is bounded, and memory stays flat.
#[test]
fn an_endless_record_stops_the_read_with_flat_memory_in_every_input_form() {
    use std::io::Write as _;
    const LINE: usize = 256 << 20; // no newline for 256 MiB
    let s = Scratch::new();
    // Plain, gzip (a few hundred KiB that inflate to 256 MiB), and stdin.
    let plain = s.path().join("endless.jsonl");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&plain).expect("create"));
        f.write_all(b"{\"a\":1}\n{\"s\":\"").expect("write");
        let block = vec![b'x'; 1 << 20];
        for _ in 0..LINE >> 20 {
            f.write_all(&block).expect("write");
        }
        f.write_all(b"\"}\n{\"a\":2}\n").expect("write");
    }
    let gz = s.path().join("endless.jsonl.gz");
    {
        let status = Command::new("gzip").args(["-k", "-1", "-f"]).arg(&plain).status().expect("gzip");
        assert!(status.success());
    }
    for (what, input, stdin) in [("plain", &plain, None), ("gzip", &gz, None), ("stdin", &plain, Some(&plain))] {
        for skip in [false, true] {
            let mut args = vec!["--max-record-bytes", "1MiB", "--table", "endless"];
            if skip {
                args.extend(["--on-bad-line", "skip"]);
            }
            let source = if stdin.is_some() { "-".to_string() } else { path(input).to_string() };
            args.extend(["--input", &source]);
            let mut cmd = Command::new("/usr/bin/time");
            cmd.arg("-f").arg("peak-rss-kib %M");
            let host = s.command("run", "capture", &args);
            cmd.arg(host.get_program()).args(host.get_args());
            cmd.envs(host.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))));
            match stdin {
                Some(p) => cmd.stdin(std::fs::File::open(p).expect("open")),
                None => cmd.stdin(Stdio::null()),
            };
            let out = cmd.output().expect("run host under /usr/bin/time (Debian package `time`)");
            let err = stderr(&out);
            let peak_kib: u64 = err
                .lines()
                .rev()
                .find_map(|l| l.strip_prefix("peak-rss-kib "))
                .and_then(|n| n.trim().parse().ok())
                .expect("/usr/bin/time reports the peak RSS");
            eprintln!("{what} skip={skip}: peak RSS {} MiB", peak_kib >> 10);
            assert!(peak_kib < 200 << 10, "{what} skip={skip}: peak RSS {peak_kib} KiB for a 256 MiB record");
            if skip {
                assert_eq!(out.status.code(), Some(0), "{what}: {err}");
                assert_eq!(rows_of(&s.captured(), "endless").len(), 2, "{what}: the records around it load");
                let pkg = std::fs::read_dir(s.pipeline("capture").join("load/loaded"))
                    .expect("loaded")
                    .map(|e| e.expect("entry").path())
                    .find(|p| p.join("bad_lines.jsonl").exists())
                    .expect("a package with bad lines");
                let bad = std::fs::read_to_string(pkg.join("bad_lines.jsonl")).expect("bad lines");
                assert!(bad.len() < 16 << 10, "quarantined as its head only: {} bytes", bad.len());
                let head: String = bad.chars().take(300).collect();
                assert!(bad.contains(&format!("a record of {} bytes", LINE + 8)), "{head}");
                // Fresh scratch state for the next form.
                let _ = std::fs::remove_dir_all(s.pipelines());
                let _ = std::fs::remove_dir_all(s.out());
                std::fs::create_dir_all(s.out()).expect("out");
            } else {
                assert_eq!(out.status.code(), Some(2), "{what}: {err}");
                assert!(err.contains(":2: a record longer than 1048576 bytes"), "{what}: {err}");
                assert!(err.contains("--max-record-bytes"), "{what}: {err}");
                assert!(s.captured().is_empty());
            }
        }
    }
}
