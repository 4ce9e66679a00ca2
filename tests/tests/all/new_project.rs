//! `host new`: from an empty directory outside the checkout, with only the
//! `host` binary and the pinned toolchain, a Rust sink project builds,
//! passes `host test-sink` and loads a file.

use std::process::Command;

use e2e::{host_bin, repo_root, run, stderr};

#[test]
fn a_new_rust_project_builds_passes_test_sink_and_runs() {
    let outside = tempfile::tempdir().expect("a directory outside the checkout");
    assert!(!outside.path().starts_with(repo_root()), "outside the repository");
    let made = run({
        let mut cmd = Command::new(host_bin());
        cmd.current_dir(outside.path()).args(["new", "my_sink", "--lang", "rust"]);
        cmd
    });
    assert!(made.status.success(), "{}", stderr(&made));
    let project = outside.path().join("my_sink");
    for file in [
        "Cargo.toml",
        "Cargo.lock",
        "rust-toolchain.toml",
        "src/lib.rs",
        "sdk/wit/destination.wit",
        ".gitignore",
        ".dlt/secrets.toml",
        "README.md",
    ] {
        assert!(project.join(file).is_file(), "{file}");
    }

    // The README's build command, with a shared target directory so a rerun
    // of the suite compiles only what changed.
    let built = run({
        let mut cmd = Command::new("cargo");
        cmd.current_dir(&project).args(["build", "--release", "--target", "wasm32-wasip2"]);
        cmd.env("CARGO_TARGET_DIR", repo_root().join("target/new-project"));
        cmd
    });
    assert!(built.status.success(), "the new project builds: {}", stderr(&built));
    let wasm = repo_root().join("target/new-project/wasm32-wasip2/release/my_sink.wasm");
    std::fs::create_dir_all(project.join("out")).expect("out");
    let cache = repo_root().join("target/test-cache");

    let checked = run({
        let mut cmd = Command::new(host_bin());
        cmd.current_dir(&project).arg("test-sink").arg(&wasm).args(["--dir", "./out::/out"]);
        cmd.env("DLTHOST_CACHE_DIR", &cache);
        cmd
    });
    assert_eq!(checked.status.code(), Some(0), "{}{}", String::from_utf8_lossy(&checked.stdout), stderr(&checked));

    std::fs::write(project.join("data.jsonl"), "{\"id\": 1}\n{\"id\": 2}\n").expect("input");
    let loaded = run({
        let mut cmd = Command::new(host_bin());
        cmd.current_dir(&project).args(["run", "--component"]).arg(&wasm);
        cmd.args(["--input", "data.jsonl", "--dir", "./out::/out", "--pipelines-dir"])
            .arg(outside.path().join("pipelines"));
        cmd.env("DLTHOST_CACHE_DIR", &cache);
        cmd
    });
    assert!(loaded.status.success(), "{}", stderr(&loaded));
    assert!(stderr(&loaded).contains("Loaded 2 rows into `my_sink`"), "{}", stderr(&loaded));
    assert!(
        std::fs::read_dir(project.join("out"))
            .expect("out")
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("data.")),
        "the sink wrote the rows"
    );
}

#[test]
fn the_sdk_carries_the_repositorys_contract_and_other_languages_say_so() {
    let ours = std::fs::read(repo_root().join("wit/destination.wit")).expect("wit");
    let sdk = std::fs::read(repo_root().join("guest-examples/sdk/rust/wit/destination.wit")).expect("sdk wit");
    assert_eq!(
        sdk, ours,
        "guest-examples/sdk/rust/wit/destination.wit is a copy of wit/destination.wit: copy it again"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run({
        let mut cmd = Command::new(host_bin());
        cmd.current_dir(dir.path()).args(["new", "py_sink", "--lang", "python"]);
        cmd
    });
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("Rust projects so far"), "{}", stderr(&out));
}
