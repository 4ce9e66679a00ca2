//! Helpers for the end-to-end tests: build the example sinks once per test
//! run, find the `host` binary, run it, and read what `capture` wrote.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

pub mod api;
pub mod clickhouse;
pub mod doubles;
pub mod postgres;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The `host` binary built by the same `cargo test` run (it sits next to the
/// test binary's `deps/` directory).
pub fn host_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let bin = dir.join("host");
    assert!(bin.is_file(), "{} is missing: run the tests with `cargo test --release --workspace`", bin.display());
    bin
}

/// Builds every Rust example sink once per test run and returns the
/// directory holding the `.wasm` files.
pub fn guests_dir() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        ensure_wasm_target();
        let root = repo_root();
        let target = root.join("target/guests");
        let status = Command::new(env!("CARGO"))
            .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
            .arg(root.join("guest-examples/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .status()
            .expect("run cargo to build the example sinks");
        assert!(status.success(), "building the example sinks failed");
        target.join("wasm32-wasip2/release")
    })
}

/// Builds `guest-examples/pg-sink` (a workspace of its own: it needs
/// `--cfg tokio_unstable`, set in its `.cargo/config.toml`, which cargo
/// reads only when run in that directory) into `target/pg-sink`.
pub fn pg_sink() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            ensure_wasm_target();
            let root = repo_root();
            let status = Command::new(env!("CARGO"))
                .current_dir(root.join("guest-examples/pg-sink"))
                .args(["build", "--release", "--target", "wasm32-wasip2", "--target-dir"])
                .arg(root.join("target/pg-sink"))
                .env_remove("CARGO_TARGET_DIR")
                .env_remove("RUSTFLAGS")
                .env_remove("CARGO_ENCODED_RUSTFLAGS")
                .status()
                .expect("run cargo to build pg-sink");
            assert!(status.success(), "building guest-examples/pg-sink failed");
            root.join("target/pg-sink/wasm32-wasip2/release/pg_sink.wasm")
        })
        .clone()
}

/// Installs the `wasm32-wasip2` Rust target when it is missing, so the test
/// command works on a fresh machine.
fn ensure_wasm_target() {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output().expect("run rustup");
    if !String::from_utf8_lossy(&installed.stdout).lines().any(|l| l.trim() == "wasm32-wasip2") {
        let status = Command::new("rustup").args(["target", "add", "wasm32-wasip2"]).status().expect("run rustup");
        assert!(status.success(), "rustup target add wasm32-wasip2 failed");
    }
}

/// The environment switch that skips the tests needing the Python and
/// JavaScript guest toolchains, for a fast local loop (`.ci/run` refuses it).
pub const SKIP_FOREIGN: &str = "DLTHOST_SKIP_FOREIGN_TOOLCHAINS";

/// True (and says so on stderr) when `what` must be skipped because
/// [`SKIP_FOREIGN`] is `1`. A skipped test never passes silently: it prints
/// that it was skipped.
pub fn foreign_skipped(what: &str) -> bool {
    let skip = std::env::var(SKIP_FOREIGN).is_ok_and(|v| v == "1");
    if skip {
        // Straight to the process's stderr: the test harness's capture
        // would hide an `eprintln!` of a passing test.
        use std::io::Write as _;
        let line = format!("skipped: {what} needs the Python/JavaScript guest toolchains ({SKIP_FOREIGN}=1)\n");
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
    skip
}

/// Runs `scripts/guest-tools.sh` once per test run: installs the pinned
/// componentize-py and componentize-js into `target/tools` if missing. A
/// failure fails the tests (a missing tool is not a reason to skip).
pub fn guest_tools() -> PathBuf {
    static DONE: OnceLock<PathBuf> = OnceLock::new();
    DONE.get_or_init(|| {
        let root = repo_root();
        let status =
            Command::new("bash").arg(root.join("scripts/guest-tools.sh")).status().expect("run guest-tools.sh");
        assert!(status.success(), "installing componentize-py / componentize-js failed");
        root.join("target/tools")
    })
    .clone()
}

fn newer_than(out: &Path, inputs: &[PathBuf]) -> bool {
    let Ok(out_time) = std::fs::metadata(out).and_then(|m| m.modified()) else { return false };
    inputs.iter().all(|i| std::fs::metadata(i).and_then(|m| m.modified()).is_ok_and(|t| t <= out_time))
}

fn build_foreign(name: &str, sources: &[&str], mut cmd: Command) -> PathBuf {
    let root = repo_root();
    let out = root.join("target/guests").join(format!("{name}.wasm"));
    let mut inputs: Vec<PathBuf> = sources.iter().map(|s| root.join(s)).collect();
    inputs.push(root.join("wit/destination.wit"));
    if !newer_than(&out, &inputs) {
        std::fs::create_dir_all(root.join("target/guests")).expect("mkdir target/guests");
        let status = cmd.status().unwrap_or_else(|e| panic!("run the {name} build: {e}"));
        assert!(status.success(), "building {name} failed");
    }
    out
}

/// The Python example sink, built with componentize-py (once, and again
/// only when its source or the WIT changed).
pub fn python_sink() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let tools = guest_tools();
            let root = repo_root();
            let mut cmd = Command::new(tools.join("venv/bin/componentize-py"));
            cmd.current_dir(root.join("guest-examples/python-sink"));
            cmd.args(["-d", "../../wit", "-w", "destination", "componentize", "app", "-o"]);
            cmd.arg(root.join("target/guests/python_sink.wasm"));
            build_foreign("python_sink", &["guest-examples/python-sink/app.py"], cmd)
        })
        .clone()
}

/// The Python HTTP sink (`http_app.py`), built for a world that adds
/// `wasi:http/outgoing-handler` to `destination`. Its WIT directory is
/// written by `host wit --http` (the command the Python guide gives users):
/// the contract and the wasi packages the host implements.
pub fn python_http_sink() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let tools = guest_tools();
            let root = repo_root();
            let wit = root.join("target/guests/python-http-wit");
            let status = Command::new(host_bin())
                .args(["wit", "--http", "--world", "python-http-sink", "--out"])
                .arg(&wit)
                .stdout(Stdio::null())
                .status()
                .expect("run host wit");
            assert!(status.success(), "host wit --http failed");
            let mut cmd = Command::new(tools.join("venv/bin/componentize-py"));
            cmd.current_dir(root.join("guest-examples/python-sink"));
            cmd.arg("-d").arg(&wit);
            cmd.args(["-w", "python-http-sink", "componentize", "-p", ".", "-p", "../sdk/python", "http_app", "-o"]);
            cmd.arg(root.join("target/guests/python_http_sink.wasm"));
            let sources = [
                "guest-examples/python-sink/http_app.py",
                "guest-examples/python-sink/app.py",
                "guest-examples/sdk/python/dlthost_sink/__init__.py",
            ];
            build_foreign("python_http_sink", &sources, cmd)
        })
        .clone()
}

/// The JavaScript example sink, built with componentize-js.
pub fn js_sink() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let tools = guest_tools();
            let root = repo_root();
            let mut cmd = Command::new(tools.join("node/node_modules/.bin/componentize-js"));
            cmd.current_dir(root.join("guest-examples/js-sink"));
            cmd.args(["app.js", "--wit", "../../wit", "--world-name", "destination", "-o"]);
            cmd.arg(root.join("target/guests/js_sink.wasm"));
            build_foreign("js_sink", &["guest-examples/js-sink/app.js"], cmd)
        })
        .clone()
}

/// Path of the example sink `name` (e.g. `capture`).
pub fn guest(name: &str) -> PathBuf {
    let p = guests_dir().join(format!("{name}.wasm"));
    assert!(p.is_file(), "{} was not built", p.display());
    p
}

/// A scratch directory with a pipelines dir and a capture output dir.
pub struct Scratch {
    /// Holds everything; deleted on drop.
    pub dir: tempfile::TempDir,
}

impl Scratch {
    /// A new scratch directory.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("out")).expect("out dir");
        Scratch { dir }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The pipelines dir passed to the host.
    pub fn pipelines(&self) -> PathBuf {
        self.path().join("pipelines")
    }

    /// The directory granted to `capture` as `/out`.
    pub fn out(&self) -> PathBuf {
        self.path().join("out")
    }

    /// Writes a file in the scratch dir and returns its path.
    pub fn file(&self, name: &str, content: &str) -> PathBuf {
        let p = self.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("fixture directory");
        }
        std::fs::write(&p, content).expect("write fixture");
        p
    }

    /// `host <command> --component <sink>` with this scratch's pipelines dir
    /// and output dir (granted as `/out`), plus `args`; not started.
    pub fn command(&self, command: &str, sink: &str, args: &[&str]) -> Command {
        self.command_for(command, &guest(sink), args)
    }

    /// Like [`Scratch::command`], for a component at any path.
    pub fn command_for(&self, command: &str, component: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(host_bin());
        cmd.arg(command).arg("--component").arg(component);
        cmd.arg("--pipelines-dir").arg(self.pipelines());
        cmd.arg("--dir").arg(format!("{}::/out", self.out().display()));
        cmd.args(args);
        // One compile cache for the whole test run, never the user's.
        cmd.env("DLTHOST_CACHE_DIR", repo_root().join("target/test-cache"));
        cmd
    }

    /// `host run` with the capture sink, this scratch's pipelines dir and
    /// output dir, plus `args`.
    pub fn run_capture(&self, args: &[&str]) -> Output {
        run(self.command("run", "capture", args))
    }

    /// `host run` with the faulty sink, plus `args`.
    pub fn run_faulty(&self, args: &[&str]) -> Output {
        run(self.command("run", "faulty", args))
    }

    /// The only package of pipeline `name` under `load/<state>` (`loaded`
    /// or `normalized`); fails the test if there is not exactly one.
    pub fn only_package(&self, name: &str, state: &str) -> PathBuf {
        let dir = self.pipeline(name).join("load").join(state);
        let found: Vec<PathBuf> =
            std::fs::read_dir(&dir).expect("package dir").map(|e| e.expect("entry").path()).collect();
        assert_eq!(found.len(), 1, "one package in {}", dir.display());
        found.into_iter().next().expect("one package")
    }

    /// The directory of pipeline `name`.
    pub fn pipeline(&self, name: &str) -> PathBuf {
        self.pipelines().join(name)
    }

    /// Waits until the faulty sink of a run started with `HOLD_ROW` holds
    /// its batch (it wrote `.holding` in the output directory); fails if the
    /// run ends first. The test then acts at a point it chose, and lets the
    /// sink go on with [`Scratch::release`].
    pub fn wait_for_hold(&self, child: &mut std::process::Child) {
        let marker = self.out().join(".holding");
        while !marker.exists() {
            if let Some(status) = child.try_wait().expect("poll") {
                panic!("the run ended ({status}) before the sink held its batch");
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Lets a held faulty sink go on.
    pub fn release(&self) {
        std::fs::write(self.out().join(".release"), b"").expect("release");
    }

    /// Every capture file written so far, sorted by table, job and start row.
    pub fn captured(&self) -> Vec<Value> {
        read_capture(&self.out())
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs a command with no stdin and returns its output.
pub fn run(mut cmd: Command) -> Output {
    cmd.stdin(Stdio::null());
    cmd.output().expect("run host")
}

/// Reads all capture files in `dir`, sorted by table name, load id, job id, start row.
pub fn read_capture(dir: &Path) -> Vec<Value> {
    let mut docs: Vec<Value> = std::fs::read_dir(dir)
        .expect("read capture dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .map(|p| serde_json::from_slice(&std::fs::read(&p).expect("read capture file")).expect("capture file is JSON"))
        .collect();
    docs.sort_by_key(|d| {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let c = &d["context"];
        (
            text(&d["table"]["name"]),
            text(&c["load_id"]),
            text(&c["job_id"]),
            c["start_row"].as_u64().unwrap_or_default(),
        )
    });
    docs
}

/// All rows of `table` in delivery order (file order).
pub fn rows_of(docs: &[Value], table: &str) -> Vec<Value> {
    docs.iter()
        .filter(|d| d["table"]["name"] == table)
        .flat_map(|d| d["rows"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// JSON lines `{"id": i, "t": tag}` for `i` in `0..n`.
pub fn numbered(n: usize, tag: &str) -> String {
    (0..n).map(|i| format!("{{\"id\":{i},\"t\":\"{tag}\"}}\n")).collect()
}

/// The `id`s of rows, in order.
pub fn ids(rows: &[Value]) -> Vec<u64> {
    rows.iter().map(|r| r["id"].as_u64().expect("row has an id")).collect()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
