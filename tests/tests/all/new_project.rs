//! `host new`: from an empty directory outside the checkout, with only the
//! `host` binary and the pinned toolchain, a sink project in Rust, Python
//! or JavaScript builds with its README's command, passes `host test-sink`
//! (with the README's row-count command where it gives one) and loads a
//! file.

use std::path::{Path, PathBuf};
use std::process::Command;

use e2e::api::{ApiServer, Faults};
use e2e::{host_bin, repo_root, run, stderr};

/// A command run in `dir`, as a user of the project would.
fn in_dir(dir: &Path, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(dir).env("DLTHOST_CACHE_DIR", repo_root().join("target/test-cache"));
    cmd
}

/// `host new NAME --lang LANG` in a fresh directory outside the checkout.
fn new_project(lang: &str, name: &str) -> (tempfile::TempDir, PathBuf) {
    new_project_with(lang, name, &[])
}

/// The same with more arguments (`--http`).
fn new_project_with(lang: &str, name: &str, extra: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let outside = tempfile::tempdir().expect("a directory outside the checkout");
    assert!(!outside.path().starts_with(repo_root()), "outside the repository");
    let made = run({
        let mut cmd = in_dir(outside.path(), host_bin());
        cmd.args(["new", name, "--lang", lang]).args(extra);
        cmd
    });
    assert!(made.status.success(), "{}", stderr(&made));
    let project = outside.path().join(name);
    for file in [".gitignore", ".dlt/config.toml", ".dlt/secrets.toml", "README.md"] {
        assert!(project.join(file).is_file(), "{lang}: {file}");
    }
    let ignored = std::fs::read_to_string(project.join(".gitignore")).expect(".gitignore");
    assert!(ignored.contains(".dlt/secrets.toml"), "{ignored}");
    (outside, project)
}

/// The README's line that starts with `prefix` (in its shell block).
fn readme_line(project: &Path, prefix: &str) -> String {
    let readme = std::fs::read_to_string(project.join("README.md")).expect("README.md");
    readme
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line in the README:\n{readme}"))
        .to_string()
}

/// `host test-sink` with the README's arguments, then `host run` on a
/// small file; `rows_seen` says whether the rows reached the sink.
fn check_and_load(project: &Path, wasm: &Path, outside: &Path, rows_seen: impl Fn(&str) -> bool) {
    std::fs::create_dir_all(project.join("out")).expect("out");
    let test_line = readme_line(project, "host test-sink ");
    let count = test_line.split_once("--count-rows ").map(|(_, c)| c.trim().trim_matches('\'').to_string());
    let checked = run({
        let mut cmd = in_dir(project, host_bin());
        cmd.arg("test-sink").arg(wasm).args(["--dir", "./out::/out"]);
        if let Some(count) = &count {
            cmd.args(["--count-rows", count]);
        }
        cmd
    });
    let table = String::from_utf8_lossy(&checked.stdout);
    assert_eq!(checked.status.code(), Some(0), "{}: {table}{}", wasm.display(), stderr(&checked));
    if count.is_some() {
        assert!(table.contains("pass  a replayed batch (same idempotency key) is stored once"), "{table}");
    }

    std::fs::write(project.join("data.jsonl"), "{\"id\": 1}\n{\"id\": 2}\n").expect("input");
    let loaded = run({
        let mut cmd = in_dir(project, host_bin());
        cmd.args(["run", "--component"]).arg(wasm);
        cmd.args(["--input", "data.jsonl", "--dir", "./out::/out", "--pipelines-dir"]).arg(outside.join("pipelines"));
        cmd
    });
    let err = stderr(&loaded);
    assert!(loaded.status.success(), "{err}");
    assert!(err.contains("Loaded 2 rows into `my_sink`"), "{err}");
    assert!(rows_seen(&err), "the sink got the rows: {err}");
}

/// Whether `out/` holds a JSON Lines file of table `data` with both rows.
fn wrote_data_rows(project: &Path) -> bool {
    let rows: Vec<String> = std::fs::read_dir(project.join("out"))
        .expect("out")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("data."))
        .flat_map(|e| {
            std::fs::read_to_string(e.path()).unwrap_or_default().lines().map(String::from).collect::<Vec<_>>()
        })
        .collect();
    rows.len() == 2 && rows.iter().any(|r| r.contains("\"id\":1")) && rows.iter().any(|r| r.contains("\"id\":2"))
}

#[test]
fn a_new_rust_project_builds_passes_test_sink_and_runs() {
    let (outside, project) = new_project("rust", "my_sink");
    for file in ["Cargo.toml", "Cargo.lock", "rust-toolchain.toml", "src/lib.rs", "sdk/wit/destination.wit"] {
        assert!(project.join(file).is_file(), "{file}");
    }
    let wasm = build_rust(&project, "my_sink");
    check_and_load(&project, &wasm, outside.path(), |_| wrote_data_rows(&project));
}

/// Builds a Rust project with its README's command, into a shared target
/// directory so a rerun of the suite compiles only what changed.
fn build_rust(project: &Path, name: &str) -> PathBuf {
    let build = readme_line(project, "cargo build ");
    let built = run({
        let mut cmd = in_dir(project, "sh");
        cmd.args(["-c", &build]).env("CARGO_TARGET_DIR", repo_root().join("target/new-project"));
        cmd
    });
    assert!(built.status.success(), "the new project builds: {}", stderr(&built));
    repo_root().join(format!("target/new-project/wasm32-wasip2/release/{name}.wasm"))
}

/// Builds a Python or JavaScript project with its README's command, the
/// pinned tool from `target/tools` first on PATH.
fn build_foreign(project: &Path, name: &str, prefix: &str, tool_bin: &Path) -> PathBuf {
    let build = readme_line(project, prefix);
    let path = format!("{}:{}", tool_bin.display(), std::env::var("PATH").unwrap_or_default());
    let built = run({
        let mut cmd = in_dir(project, "sh");
        cmd.args(["-c", &format!("mkdir -p build && {build}")]).env("PATH", path);
        cmd
    });
    assert!(built.status.success(), "`{build}`: {}", stderr(&built));
    project.join(format!("build/{name}.wasm"))
}

#[test]
fn a_new_python_project_builds_passes_test_sink_and_runs() {
    if e2e::foreign_skipped("the new Python project test") {
        return;
    }
    let (outside, project) = new_project("python", "my_sink");
    for file in
        ["app.py", "requirements.txt", "wit/destination.wit", "sdk/dlthost_sink/__init__.py", "sdk/pyproject.toml"]
    {
        assert!(project.join(file).is_file(), "{file}");
    }
    let wasm = build_foreign(&project, "my_sink", "componentize-py ", &e2e::guest_tools().join("venv/bin"));
    check_and_load(&project, &wasm, outside.path(), |_| wrote_data_rows(&project));
}

#[test]
fn a_new_javascript_project_builds_passes_test_sink_and_runs() {
    if e2e::foreign_skipped("the new JavaScript project test") {
        return;
    }
    let (outside, project) = new_project("js", "my_sink");
    for file in ["app.js", "package.json", "wit/destination.wit", "sdk/dlthost_sink.js", "sdk/dlthost_sink.d.ts"] {
        assert!(project.join(file).is_file(), "{file}");
    }
    let wasm =
        build_foreign(&project, "my_sink", "componentize-js ", &e2e::guest_tools().join("node/node_modules/.bin"));
    check_and_load(&project, &wasm, outside.path(), |err| {
        err.contains("[my_sink] {\"table\":\"data\",\"greeting\":\"hello\",\"row\":{\"id\":1}}")
            && err.contains("\"row\":{\"id\":2}")
    });
}

#[test]
fn the_sdks_carry_the_repositorys_contract() {
    let ours = std::fs::read_to_string(repo_root().join("wit/destination.wit")).expect("wit");
    let sdk =
        std::fs::read_to_string(repo_root().join("guest-examples/sdk/rust/wit/destination.wit")).expect("sdk wit");
    assert_eq!(
        sdk, ours,
        "guest-examples/sdk/rust/wit/destination.wit is a copy of wit/destination.wit: copy it again"
    );
    let package = ours.lines().find_map(|l| l.strip_prefix("package ")).expect("package line").trim_end_matches(';');
    for sdk in ["guest-examples/sdk/python/dlthost_sink/__init__.py", "guest-examples/sdk/js/dlthost_sink.js"] {
        let text = std::fs::read_to_string(repo_root().join(sdk)).expect(sdk);
        assert!(text.contains(&format!("\"{package}\"")), "{sdk} names the contract {package}");
    }
}

#[test]
fn new_http_projects_in_rust_and_python_load_into_an_api_with_the_token_sent_by_the_host() {
    let api = ApiServer::start(Faults::default());
    let mut langs = vec!["rust"];
    if !e2e::foreign_skipped("the Python half of the --http project test") {
        langs.push("python");
    }
    for lang in langs {
        let (outside, project) = new_project_with(lang, "api_sink", &["--http"]);
        let config = project.join(".dlt/config.toml");
        let text = std::fs::read_to_string(&config).expect("config");
        std::fs::write(&config, text.replace("http://127.0.0.1:8080/v1", &format!("{}/v1", api.url()))).expect("url");
        let wasm = match lang {
            "rust" => build_rust(&project, "api_sink"),
            _ => build_foreign(&project, "api_sink", "componentize-py ", &e2e::guest_tools().join("venv/bin")),
        };
        let allow = api.url();
        let checked = run({
            let mut cmd = in_dir(&project, host_bin());
            cmd.arg("test-sink").arg(&wasm).args(["--allow-host", &allow]);
            cmd
        });
        let table = String::from_utf8_lossy(&checked.stdout).into_owned();
        assert_eq!(checked.status.code(), Some(0), "{lang}: {table}{}", stderr(&checked));
        assert!(!api.rows("dlthost_test_types").is_empty(), "{lang}: the API got the test table");

        std::fs::write(project.join("data.jsonl"), format!("{{\"id\": 1, \"lang\": \"{lang}\"}}\n")).expect("input");
        let loaded = run({
            let mut cmd = in_dir(&project, host_bin());
            cmd.args(["run", "--component"]).arg(&wasm).args(["--input", "data.jsonl", "--allow-host", &allow]);
            cmd.arg("--pipelines-dir").arg(outside.path().join("pipelines"));
            cmd
        });
        assert!(loaded.status.success(), "{lang}: {}", stderr(&loaded));
        let rows = api.rows("data");
        assert!(rows.iter().any(|r| r["lang"] == lang && r["id"] == 1), "{lang}: {rows:?}");
    }
    let received = api.received.lock().expect("lock");
    assert!(
        received.authorization.iter().all(|a| a.as_deref() == Some("Bearer change-me")),
        "every request carries the token the host injected"
    );
}
