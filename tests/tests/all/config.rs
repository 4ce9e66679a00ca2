//! Settings and secrets: every row of the precedence table, the missing-key
//! message, least privilege, and that secrets never leak into logs,
//! packages or the compile cache.

use std::path::Path;
use std::process::Command;

use e2e::{Scratch, ids, numbered, rows_of, run, stderr};
use serde_json::{Value, json};

fn project(s: &Scratch, config: &str, secrets: &str) {
    let dlt = s.path().join(".dlt");
    std::fs::create_dir_all(&dlt).expect("mkdir .dlt");
    std::fs::write(dlt.join("config.toml"), config).expect("config.toml");
    std::fs::write(dlt.join("secrets.toml"), secrets).expect("secrets.toml");
}

/// `host run` of the probe sink in the scratch project with extra args and env.
fn probe(s: &Scratch, args: &[&str], env: &[(&str, &str)]) -> (std::process::Output, Value) {
    let input = s.file("items.jsonl", &numbered(6, "x"));
    let mut all =
        vec!["--input", input.to_str().expect("utf8"), "--project-dir", s.path().to_str().expect("utf8"), "--force"];
    all.extend_from_slice(args);
    let mut cmd = s.command("run", "config_probe", &all);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run(cmd);
    let seen =
        std::fs::read(s.out().join("config.json")).map_or(Value::Null, |b| serde_json::from_slice(&b).expect("json"));
    (out, seen)
}

const BASE_SECRETS: &str = "[destination.probe]\napi_key = \"k-123\"\n";
const BASE_CONFIG: &str = "[destination.probe]\nurl = \"http://api.test\"\n";

#[test]
fn sink_keys_follow_the_precedence_table() {
    let s = Scratch::new();
    project(&s, BASE_CONFIG, BASE_SECRETS);
    let (out, seen) = probe(&s, &[], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(seen["api_key"], json!({"string": "k-123"}), "from secrets.toml");
    assert_eq!(seen["url"], json!({"string": "http://api.test"}), "from config.toml");
    assert_eq!(seen["retries"], json!({"integer": 3}), "the declared default");
    assert_eq!(seen["verbose"], Value::Null, "optional and unset");

    project(&s, &format!("{BASE_CONFIG}retries = 4\nverbose = true\nratio = 2\n"), BASE_SECRETS);
    let (_, seen) = probe(&s, &[], &[]);
    assert_eq!((seen["retries"].clone(), seen["verbose"].clone()), (json!({"integer": 4}), json!({"boolean": true})));
    assert_eq!(seen["ratio"], json!({"float": 2.0}), "coerced to the declared type");
    let (_, seen) = probe(&s, &[], &[("DESTINATION__PROBE__RETRIES", "7")]);
    assert_eq!(seen["retries"], json!({"integer": 7}), "environment beats config.toml");
    let (_, seen) =
        probe(&s, &[], &[("DESTINATION__PROBE__RETRIES", "7"), ("PROBE__DESTINATION__PROBE__RETRIES", "8")]);
    assert_eq!(seen["retries"], json!({"integer": 8}), "the pipeline-scoped variable wins");
    let (_, seen) = probe(&s, &["--set", "retries=9"], &[("PROBE__DESTINATION__PROBE__RETRIES", "8")]);
    assert_eq!(seen["retries"], json!({"integer": 9}), "--set beats everything");
    let (_, seen) = probe(&s, &[], &[("DESTINATION__PROBE__API_KEY", "from-env")]);
    assert_eq!(seen["api_key"], json!({"string": "from-env"}), "environment beats secrets.toml");

    let (out, _) = probe(&s, &[], &[("DESTINATION__PROBE__RETRIES", "many")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("DESTINATION__PROBE__RETRIES: expected an integer"), "{}", stderr(&out));
}

#[test]
fn sink_and_load_settings_follow_the_precedence_table() {
    let s = Scratch::new();
    let sizes = |s: &Scratch| -> Vec<usize> {
        let docs = s.captured();
        let last = docs.last().map(|d| d["context"]["load_id"].clone()).unwrap_or_default();
        docs.iter()
            .filter(|d| d["context"]["load_id"] == last)
            .map(|d| d["rows"].as_array().map_or(0, Vec::len))
            .collect()
    };
    project(&s, &format!("{BASE_CONFIG}batch_size = 2\n"), BASE_SECRETS);
    assert!(probe(&s, &[], &[]).0.status.success());
    assert_eq!(sizes(&s), [2, 2, 2], "config.toml");
    assert!(probe(&s, &[], &[("DESTINATION__PROBE__BATCH_SIZE", "3")]).0.status.success());
    assert_eq!(sizes(&s), [3, 3], "environment");
    assert!(probe(&s, &["--batch-size", "4"], &[("DESTINATION__PROBE__BATCH_SIZE", "3")]).0.status.success());
    assert_eq!(sizes(&s), [4, 2], "flag");

    // Load settings: [load] in config.toml, LOAD__<KEY>, the flag.
    let s = Scratch::new();
    project(&s, "[load]\ncall_timeout = \"300ms\"\nmax_attempts = 1\n", "");
    let input = s.file("t.jsonl", &numbered(2, "x"));
    let looping = |extra: &[&str], env: &[(&str, &str)]| -> String {
        let mut args = vec![
            "--input",
            input.to_str().expect("utf8"),
            "--project-dir",
            s.path().to_str().expect("utf8"),
            "--env",
            "LOOP=1",
        ];
        args.extend_from_slice(extra);
        let mut cmd = s.command("run", "faulty", &args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        stderr(&run(cmd))
    };
    assert!(looping(&[], &[]).contains("call timeout of 300ms"), "[load] in config.toml");
    assert!(looping(&[], &[("LOAD__CALL_TIMEOUT", "200ms")]).contains("call timeout of 200ms"), "LOAD__ env");
    assert!(
        looping(&["--call-timeout", "100ms"], &[("LOAD__CALL_TIMEOUT", "200ms")]).contains("call timeout of 100ms")
    );
}

#[test]
fn a_missing_secret_fails_before_anything_runs_and_says_where_it_looked() {
    let s = Scratch::new();
    project(&s, BASE_CONFIG, "");
    let (out, seen) = probe(&s, &[], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    for place in [
        "--set api_key",
        "PROBE__DESTINATION__PROBE__API_KEY",
        "DESTINATION__PROBE__API_KEY",
        "secrets.toml [destination.probe] api_key",
    ] {
        assert!(err.contains(place), "{place} in {err}");
    }
    assert_eq!(seen, Value::Null, "the sink was never called");
    assert!(!s.pipelines().join("probe/load/normalized").exists() || s.captured().is_empty());
}

#[test]
fn a_secret_in_config_toml_is_refused() {
    let s = Scratch::new();
    project(&s, &format!("{BASE_CONFIG}api_key = \"oops\"\n"), "");
    let (out, _) = probe(&s, &[], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("`api_key` is a secret") && stderr(&out).contains("move it to .dlt/secrets.toml"));
    assert!(!stderr(&out).contains("oops"), "the value is not printed");
}

#[test]
fn a_sink_sees_only_its_declared_keys() {
    let s = Scratch::new();
    let config = format!("{BASE_CONFIG}undeclared = \"nope\"\n[destination.other]\nurl = \"http://other\"\n");
    project(&s, &config, &format!("{BASE_SECRETS}[destination.other]\napi_key = \"other-secret\"\n"));
    let (out, seen) = probe(&s, &[], &[("DESTINATION__PROBE__UNDECLARED", "nope"), ("PATH_HOST_MARKER", "x")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(seen["undeclared"], Value::Null);
    assert_eq!(seen["api_key"], json!({"string": "k-123"}), "its own key, not the other sink's");
    assert_eq!(seen["path"], Value::Null, "a key named path never sees the host's PATH");
    let (_, seen) = probe(&s, &[], &[("DESTINATION__PATH", "/bin"), ("PATH", "/usr/bin:/bin")]);
    assert_eq!(seen["path"], Value::Null, "no bare or DESTINATION__<KEY> fallback");
}

#[test]
fn the_sink_can_be_named_by_destination_in_config_or_environment() {
    let s = Scratch::new();
    let wasm = e2e::guest("config_probe");
    project(
        &s,
        &format!("[destination.mysink]\ncomponent = \"{}\"\nurl = \"u\"\n", wasm.display()),
        "[destination.mysink]\napi_key = \"k\"\n",
    );
    let input = s.file("items.jsonl", &numbered(3, "x"));
    let mut cmd = Command::new(e2e::host_bin());
    cmd.args(["run", "--destination", "mysink", "--input", input.to_str().expect("utf8"), "--project-dir"])
        .arg(s.path());
    cmd.arg("--pipelines-dir").arg(s.pipelines()).arg("--dir").arg(format!("{}::/out", s.out().display()));
    let out = run(cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(ids(&rows_of(&s.captured(), "items")), [0, 1, 2]);

    let s2 = Scratch::new();
    project(&s2, "[destination.envsink]\nurl = \"u\"\n", "[destination.envsink]\napi_key = \"k\"\n");
    let input = s2.file("items.jsonl", &numbered(2, "x"));
    let mut cmd = Command::new(e2e::host_bin());
    cmd.args(["run", "--destination", "envsink", "--input", input.to_str().expect("utf8"), "--project-dir"])
        .arg(s2.path());
    cmd.arg("--pipelines-dir").arg(s2.pipelines()).arg("--dir").arg(format!("{}::/out", s2.out().display()));
    cmd.env("DESTINATION__ENVSINK__COMPONENT", &wasm);
    let out = run(cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(ids(&rows_of(&s2.captured(), "items")), [0, 1]);
}

fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return hits };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            hits.extend(files_containing(&p, needle));
        } else if std::fs::read(&p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)) {
            hits.push(p.display().to_string());
        }
    }
    hits
}

#[test]
fn secrets_never_reach_logs_packages_or_the_compile_cache() {
    const SECRET: &str = "sekret-7f3a9c-DO-NOT-LEAK";
    let s = Scratch::new();
    project(&s, BASE_CONFIG, &format!("[destination.probe]\napi_key = \"{SECRET}\"\n"));
    let cache = s.path().join("cache");
    let input = s.file("items.jsonl", &numbered(4, "x"));
    let args =
        ["-vv", "--input", input.to_str().expect("utf8"), "--project-dir", s.path().to_str().expect("utf8"), "--json"];
    let mut cmd = s.command("run", "config_probe", &args);
    cmd.env("DLTHOST_CACHE_DIR", &cache);
    let out = run(cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut status = Command::new(e2e::host_bin());
    status.args(["status", "--pipeline", "probe", "--pipelines-dir"]).arg(s.pipelines());
    let status = run(status);
    for (what, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr), ("status", &status.stdout)] {
        assert!(!String::from_utf8_lossy(bytes).contains(SECRET), "secret in {what}");
    }
    assert_eq!(files_containing(&s.pipelines(), SECRET.as_bytes()), Vec::<String>::new(), "secret in packages");
    assert!(cache.exists());
    assert_eq!(files_containing(&cache, SECRET.as_bytes()), Vec::<String>::new(), "secret in the compile cache");
    // The sink itself did receive it (it is trusted with its own secrets).
    assert!(std::fs::read_to_string(s.out().join("config.json")).expect("probe output").contains(SECRET));
}

#[test]
fn inspect_shows_keys_and_capabilities_before_running() {
    let mut cmd = Command::new(e2e::host_bin());
    cmd.arg("inspect").arg(e2e::guest("config_probe")).arg("--json");
    cmd.env("DLTHOST_CACHE_DIR", e2e::repo_root().join("target/test-cache"));
    let out = run(cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["name"], "probe");
    let api_key = report["config"].as_array().expect("keys").iter().find(|k| k["name"] == "api_key").expect("api_key");
    assert_eq!((api_key["secret"].clone(), api_key["required"].clone()), (json!(true), json!(true)));
    let caps = report["capabilities"].to_string();
    assert!(caps.contains("filesystem") && caps.contains("config"), "{caps}");
    assert!(!caps.contains("HTTP"), "config_probe makes no HTTP calls: {caps}");
    let mut cmd = Command::new(e2e::host_bin());
    cmd.arg("inspect").arg(e2e::guest("faulty")).arg("--json");
    let report: Value = serde_json::from_slice(&run(cmd).stdout).expect("json");
    assert!(report["capabilities"].to_string().contains("HTTP"));
}
