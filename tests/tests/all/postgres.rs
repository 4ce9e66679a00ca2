//! `pg_sink` against a real PostgreSQL server (Debian's `postgresql`, a
//! cluster made for each test on a free loopback port). Everything is
//! checked with SQL through `psql`, never through the sink's own account,
//! and the expected values come from the input file, parsed here.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e::postgres::Postgres;
use e2e::{Scratch, stderr};

use crate::destinations::{Expected, events, expected, kill_ten_times, stderr_lines, wait_for_retry};

/// `host run` of pg_sink into `pg` with `args`.
fn pg_run(s: &Scratch, pg: &Postgres, input: &Path, args: &[&str]) -> Command {
    let mut cmd = s.command_for("run", &e2e::pg_sink(), &["--input", input.to_str().expect("utf8")]);
    cmd.args(["--allow-tcp", &pg.addr(), "--set", &format!("port={}", pg.port), "--batch-size", "1000"]);
    cmd.args(args);
    cmd
}

/// Every column of `events` and `events__tags` equals the input, and each
/// row is there once.
fn assert_loaded_exactly(pg: &Postgres, want: &Expected) {
    let n = want.rows;
    assert_eq!(pg.sql("SELECT count(*), count(DISTINCT id) FROM events"), format!("{n}|{n}"), "each row once");
    assert_eq!(
        pg.sql("SELECT count(*), count(DISTINCT (_dlt_parent_id, _dlt_list_idx)) FROM events__tags"),
        format!("{}|{}", 3 * n, 3 * n),
        "each child row once"
    );
    let agg = |expr: &str, sep: &str| pg.sql(&format!("SELECT string_agg({expr}, {sep} ORDER BY id) FROM events"));
    assert!(agg("id::text || ':' || user_id::text", "','") == want.user_ids, "id or user_id differs");
    let texts = agg("concat_ws('|', name, email, country, note, address__city, address__zip)", "E'\\n'");
    assert!(texts == want.texts, "a text column differs");
    let doubles = agg(
        "encode(float8send(score), 'hex') || encode(float8send(amount), 'hex') || encode(float8send(address__lat), 'hex')",
        "''",
    );
    assert!(doubles == want.doubles, "a double differs in its bits");
    let micros = |c: &str| format!("((extract(epoch FROM {c}) * 1000000)::bigint)::text");
    let times = agg(&format!("{} || ',' || {}", micros("created_at"), micros("updated_at")), "';'");
    assert!(times == want.times, "a timestamp differs");
    assert!(agg("active::text", "','") == want.flags, "a bool differs");
    let tags = pg.sql(
        "SELECT string_agg(c.value, ',' ORDER BY p.id, c._dlt_list_idx) \
         FROM events__tags c JOIN events p ON c._dlt_parent_id = p._dlt_id",
    );
    assert!(tags == want.tags, "the child table's rows or their links to the parents differ");
}

#[test]
fn the_benchmark_data_with_child_tables_loads_with_every_value_intact() {
    let pg = Postgres::start();
    let s = Scratch::new();
    let input = events(&s, 100_000);
    let out = e2e::run(pg_run(&s, &pg, &input, &["--max-nesting-level", "2"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_loaded_exactly(&pg, &expected(&input));
    let types = pg.sql(
        "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY column_name) FROM information_schema.columns \
         WHERE table_name = 'events' AND column_name IN ('id', 'score', 'created_at', 'active', 'address__zip')",
    );
    assert_eq!(
        types,
        "active boolean, address__zip text, created_at timestamp with time zone, id bigint, score double precision"
    );
}

#[test]
fn ten_kills_at_random_then_a_resume_leave_every_row_once() {
    let pg = Postgres::start();
    let s = Scratch::new();
    let input = events(&s, 100_000);
    kill_ten_times(|| pg_run(&s, &pg, &input, &["--max-nesting-level", "2"]));
    let out = e2e::run(pg_run(&s, &pg, &input, &["--max-nesting-level", "2"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_loaded_exactly(&pg, &expected(&input));
}

#[test]
fn a_column_added_in_a_later_load_appears_in_the_table() {
    let pg = Postgres::start();
    let s = Scratch::new();
    let first: String = (0..500).map(|i| format!("{{\"id\": {i}}}\n")).collect();
    let later: String = (500..1000).map(|i| format!("{{\"id\": {i}, \"extra\": \"x{i}\"}}\n")).collect();
    for (dir, rows) in [("a", first), ("b", later)] {
        let input = s.file(&format!("{dir}/t.jsonl"), &rows);
        let out = e2e::run(pg_run(&s, &pg, &input, &[]));
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_eq!(
        pg.sql("SELECT data_type FROM information_schema.columns WHERE table_name = 't' AND column_name = 'extra'"),
        "text"
    );
    assert_eq!(pg.sql("SELECT count(*), count(extra), min(extra) FROM t"), "1000|500|x500");

    // A column that appears in the middle of one input file.
    let mixed: String = (0..1000)
        .map(|i| if i < 500 { format!("{{\"id\": {i}}}\n") } else { format!("{{\"id\": {i}, \"extra\": \"x{i}\"}}\n") })
        .collect();
    let input = s.file("u.jsonl", &mixed);
    let out = e2e::run(pg_run(&s, &pg, &input, &[]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        pg.sql("SELECT count(*), count(extra), min(extra), max(id) FILTER (WHERE extra IS NULL) FROM u"),
        "1000|500|x500|499"
    );
}

#[test]
fn a_server_stopped_mid_load_makes_the_batch_retry_and_the_load_finish() {
    let pg = Postgres::start();
    let s = Scratch::new();
    let input = events(&s, 5_000);
    // The hook: a session holds the bookkeeping table locked, so the first
    // batch waits inside its transaction, at a moment this test chose.
    pg.sql(
        "CREATE TABLE _dlthost_batches (idempotency_key text PRIMARY KEY, table_name text NOT NULL, \
         load_id text NOT NULL, row_count bigint NOT NULL, stored_at timestamptz NOT NULL DEFAULT now())",
    );
    let mut locker = pg.psql().stdin(Stdio::piped()).stdout(Stdio::null()).spawn().expect("psql");
    locker
        .stdin
        .as_mut()
        .expect("stdin")
        .write_all(b"BEGIN;\nLOCK TABLE _dlthost_batches IN ACCESS EXCLUSIVE MODE;\n")
        .expect("lock");
    let mut host = pg_run(&s, &pg, &input, &["--max-attempts", "50", "--retry-backoff", "100ms"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start host");
    let lines = stderr_lines(&mut host);
    wait_until("a batch waits on the lock", || {
        pg.sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dlthost pg_sink' AND wait_event_type = 'Lock'")
            != "0"
    });
    pg.stop_server();
    let _ = locker.kill();
    let _ = locker.wait();
    let mut seen = wait_for_retry(&lines);
    pg.start_server();
    let status = host.wait().expect("host");
    seen.extend(lines.iter());
    assert!(status.success(), "{}", seen.join("\n"));
    let n = 5_000;
    assert_eq!(pg.sql("SELECT count(*), count(DISTINCT id) FROM events"), format!("{n}|{n}"), "{}", seen.join("\n"));
    assert!(seen.iter().any(|l| l.contains("Loaded") && l.contains("retries")), "{}", seen.join("\n"));
}

/// Polls `ready` until it holds (a state, not a duration: the limit only
/// turns a hang into a failure).
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn without_a_grant_for_its_port_the_sink_is_refused_by_name() {
    let pg = Postgres::start();
    let s = Scratch::new();
    let input = s.file("t.jsonl", "{\"id\": 1}\n");
    // No grant at all.
    let mut cmd = s.command_for("run", &e2e::pg_sink(), &["--input", input.to_str().expect("utf8")]);
    cmd.args(["--set", &format!("port={}", pg.port), "--max-attempts", "1"]);
    let out = e2e::run(cmd);
    let err = stderr(&out);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(err.contains(&format!("--allow-tcp {}", pg.addr())), "names the grant to add: {err}");
    // Granted another port: this one stays closed to it.
    let other = format!("127.0.0.1:{}", pg.port.wrapping_add(1).max(1));
    let mut cmd = s.command_for("run", &e2e::pg_sink(), &["--input", input.to_str().expect("utf8")]);
    cmd.args(["--allow-tcp", &other, "--set", &format!("port={}", pg.port), "--max-attempts", "1"]);
    let out = e2e::run(cmd);
    let err = stderr(&out);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(err.contains(&format!("sandbox denied: TCP connection to {}", pg.addr())), "{err}");
    assert_eq!(pg.sql("SELECT count(*) FROM pg_tables WHERE tablename = 't'"), "0", "nothing reached the database");
}

#[test]
fn test_sink_checks_exactly_once_in_the_database_and_names_what_postgres_cannot_hold() {
    let pg = Postgres::start();
    let count = format!(
        "psql -h 127.0.0.1 -p {} -U postgres -At -X -c 'SELECT count(*) FROM {{table}}' 2>/dev/null || echo 0",
        pg.port
    );
    let mut cmd = Command::new(e2e::host_bin());
    cmd.arg("test-sink").arg(e2e::pg_sink());
    cmd.args(["--allow-tcp", &pg.addr(), "--set", &format!("port={}", pg.port), "--count-rows", &count]);
    cmd.env("DLTHOST_CACHE_DIR", e2e::repo_root().join("target/test-cache"));
    let out = e2e::run(cmd);
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{table}{}", stderr(&out));
    for rule in [
        "pass  a replayed batch (same idempotency key) is stored once",
        "pass  rows are stored when load returns (none held in memory)",
        "pass  columns added mid-load, a child table (nesting 1)",
        "pass  one batch of 64 MiB",
    ] {
        assert!(table.contains(rule), "{rule}:\n{table}");
    }
    let nul = table.lines().find(|l| l.starts_with("FAIL  types, batch 10 ")).expect("the types check");
    assert!(nul.contains("PostgreSQL text cannot hold the character U+0000"), "{nul}");
}
