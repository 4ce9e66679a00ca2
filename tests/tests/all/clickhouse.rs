//! `clickhouse_sink` against a real ClickHouse server (Debian's
//! `clickhouse-server`, a server made for each test on free loopback
//! ports). Everything is checked with SQL over plain HTTP, never through the
//! sink, and the expected values come from the input file, parsed here.
//! The password reaches the server as a header the host adds
//! (`auth_header`): the sink never holds it.

use std::path::Path;
use std::process::{Command, Stdio};

use e2e::clickhouse::{ClickHouse, HoldProxy, PASSWORD};
use e2e::{Scratch, stderr};

use crate::destinations::{Expected, events, expected, kill_ten_times, stderr_lines, wait_for_retry};

/// The project's config: the server's URL (`url`, possibly a proxy's) and
/// the password, injected as `X-ClickHouse-Key`.
fn project(s: &Scratch, url: &str) {
    s.file(
        ".dlt/config.toml",
        &format!("[destination.clickhouse_sink]\nurl = \"{url}\"\nauth_header = \"X-ClickHouse-Key: {{password}}\"\n"),
    );
    s.file(".dlt/secrets.toml", &format!("[destination.clickhouse_sink]\npassword = \"{PASSWORD}\"\n"));
}

/// `host run` of clickhouse_sink into the server at `url` with `args`.
fn ch_run(s: &Scratch, url: &str, input: &Path, args: &[&str]) -> Command {
    let mut cmd = s.command("run", "clickhouse_sink", &["--input", input.to_str().expect("utf8")]);
    cmd.args(["--allow-host", url, "--project-dir", s.path().to_str().expect("utf8"), "--batch-size", "1000"]);
    cmd.args(args);
    cmd
}

/// TSV lines of `sql` (ordered by the query), joined with `sep`.
fn joined(ch: &ClickHouse, sql: &str, sep: &str) -> String {
    let body = ch.sql(&format!("{sql} FORMAT TSVRaw"));
    body.lines().collect::<Vec<_>>().join(sep)
}

/// Every column of `events` and `events__tags` equals the input, and each
/// row is there once.
fn assert_loaded_exactly(ch: &ClickHouse, want: &Expected) {
    let n = want.rows;
    assert_eq!(ch.sql("SELECT count(), uniqExact(id) FROM events FORMAT TSV").trim(), format!("{n}\t{n}"));
    assert_eq!(
        ch.sql("SELECT count(), uniqExact(_dlt_parent_id, _dlt_list_idx) FROM events__tags FORMAT TSV").trim(),
        format!("{}\t{}", 3 * n, 3 * n),
        "each child row once"
    );
    let by_id = |expr: &str, sep: &str| joined(ch, &format!("SELECT {expr} FROM events ORDER BY id"), sep);
    assert!(by_id("concat(toString(id), ':', toString(user_id))", ",") == want.user_ids, "id or user_id differs");
    let texts = by_id("concat(name, '|', email, '|', country, '|', note, '|', address__city, '|', address__zip)", "\n");
    assert!(texts == want.texts, "a text column differs");
    let bits = |c: &str| format!("lower(hex(reverse(reinterpretAsString(assumeNotNull({c})))))");
    let doubles = by_id(&format!("concat({}, {}, {})", bits("score"), bits("amount"), bits("address__lat")), "");
    assert!(doubles == want.doubles, "a double differs in its bits");
    let times = by_id("concat(toString(created_at), ',', toString(updated_at))", ";");
    assert!(times == want.times, "a timestamp differs");
    assert!(by_id("if(active = 1, 'true', 'false')", ",") == want.flags, "a bool differs");
    let tags = joined(
        ch,
        "SELECT value FROM events__tags ALL INNER JOIN (SELECT _dlt_id AS _dlt_parent_id, id FROM events) \
         USING _dlt_parent_id ORDER BY id, _dlt_list_idx",
        ",",
    );
    assert!(tags == want.tags, "the child table's rows or their links to the parents differ");
}

#[test]
fn the_benchmark_data_with_child_tables_loads_with_every_value_intact() {
    let ch = ClickHouse::start();
    let s = Scratch::new();
    project(&s, &ch.url());
    let input = events(&s, 100_000);
    let out = e2e::run(ch_run(&s, &ch.url(), &input, &["--max-nesting-level", "2"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_loaded_exactly(&ch, &expected(&input));
    let types = joined(
        &ch,
        "SELECT concat(name, ' ', type) FROM system.columns WHERE table = 'events' \
         AND name IN ('id', 'score', 'created_at', 'active', '_dlt_batch_key') ORDER BY name",
        ", ",
    );
    assert_eq!(
        types,
        "_dlt_batch_key String, active Nullable(UInt8), created_at Nullable(Int64), id Nullable(Int64), score Nullable(Float64)"
    );
}

#[test]
fn ten_kills_at_random_then_a_resume_leave_every_row_once() {
    let ch = ClickHouse::start();
    let s = Scratch::new();
    project(&s, &ch.url());
    let input = events(&s, 100_000);
    kill_ten_times(|| ch_run(&s, &ch.url(), &input, &["--max-nesting-level", "2"]));
    let out = e2e::run(ch_run(&s, &ch.url(), &input, &["--max-nesting-level", "2"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_loaded_exactly(&ch, &expected(&input));
}

#[test]
fn a_column_added_in_a_later_load_appears_in_the_table() {
    let ch = ClickHouse::start();
    let s = Scratch::new();
    project(&s, &ch.url());
    let first: String = (0..500).map(|i| format!("{{\"id\": {i}}}\n")).collect();
    let later: String = (500..1000).map(|i| format!("{{\"id\": {i}, \"extra\": \"x{i}\"}}\n")).collect();
    for (dir, rows) in [("a", first), ("b", later)] {
        let input = s.file(&format!("{dir}/t.jsonl"), &rows);
        let out = e2e::run(ch_run(&s, &ch.url(), &input, &[]));
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_eq!(
        ch.sql("SELECT type FROM system.columns WHERE table = 't' AND name = 'extra'").trim(),
        "Nullable(String)"
    );
    assert_eq!(ch.sql("SELECT count(), count(extra), min(extra) FROM t FORMAT TSV").trim(), "1000\t500\tx500");

    // A column that appears in the middle of one input file.
    let mixed: String = (0..1000)
        .map(|i| if i < 500 { format!("{{\"id\": {i}}}\n") } else { format!("{{\"id\": {i}, \"extra\": \"x{i}\"}}\n") })
        .collect();
    let input = s.file("u.jsonl", &mixed);
    let out = e2e::run(ch_run(&s, &ch.url(), &input, &[]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        ch.sql("SELECT count(), count(extra), min(extra), maxIf(id, isNull(extra)) FROM u FORMAT TSV").trim(),
        "1000\t500\tx500\t499"
    );
}

#[test]
fn a_server_stopped_mid_load_makes_the_batch_retry_and_the_load_finish() {
    let ch = ClickHouse::start();
    // The hook: a proxy holds the first INSERT until the test has stopped
    // the server.
    let proxy = HoldProxy::start(ch.http_port);
    let url = format!("http://127.0.0.1:{}", proxy.port);
    let s = Scratch::new();
    project(&s, &url);
    let input = events(&s, 5_000);
    let mut host = ch_run(&s, &url, &input, &["--max-attempts", "50", "--retry-backoff", "100ms"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start host");
    let lines = stderr_lines(&mut host);
    proxy.wait_held();
    ch.stop_server();
    proxy.release();
    let mut seen = wait_for_retry(&lines);
    ch.start_server();
    let status = host.wait().expect("host");
    seen.extend(lines.iter());
    assert!(status.success(), "{}", seen.join("\n"));
    assert_eq!(
        ch.sql("SELECT count(), uniqExact(id) FROM events FORMAT TSV").trim(),
        "5000\t5000",
        "{}",
        seen.join("\n")
    );
}

#[test]
fn a_wrong_password_is_a_terminal_error_that_names_the_server_code() {
    let ch = ClickHouse::start();
    let s = Scratch::new();
    project(&s, &ch.url());
    s.file(".dlt/secrets.toml", "[destination.clickhouse_sink]\npassword = \"not-the-password\"\n");
    let input = s.file("t.jsonl", "{\"id\": 1}\n");
    let out = e2e::run(ch_run(&s, &ch.url(), &input, &[]));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("Code: 193"), "ClickHouse's wrong-password code: {err}");
    assert!(!err.contains("not-the-password"), "the password is not printed: {err}");
}

#[test]
fn test_sink_passes_with_exactly_once_checked_in_the_database() {
    let ch = ClickHouse::start();
    let s = Scratch::new();
    project(&s, &ch.url());
    // The destination's row count, by SQL over HTTP (0 before the table exists).
    let count = format!(
        "/usr/bin/python3 -c 'import urllib.request as u\ntry:\n  r = u.Request(\"{}/\", data=b\"SELECT count() FROM {{table}}\", \
         headers={{\"X-ClickHouse-User\": \"default\", \"X-ClickHouse-Key\": \"{PASSWORD}\"}})\n  print(u.urlopen(r).read().decode().strip())\n\
         except u.HTTPError:\n  print(0)'",
        ch.url()
    );
    let mut cmd = Command::new(e2e::host_bin());
    cmd.arg("test-sink").arg(e2e::guest("clickhouse_sink"));
    cmd.args(["--allow-host", &ch.url(), "--project-dir", s.path().to_str().expect("utf8"), "--count-rows", &count]);
    cmd.env("DLTHOST_CACHE_DIR", e2e::repo_root().join("target/test-cache"));
    let out = e2e::run(cmd);
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{table}{}", stderr(&out));
    for rule in [
        "pass  types, batch 10",
        "pass  a replayed batch (same idempotency key) is stored once",
        "pass  rows are stored when load returns (none held in memory)",
    ] {
        assert!(table.contains(rule), "{rule}:\n{table}");
    }
}
