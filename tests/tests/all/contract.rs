//! `host wit`: the contract from the binary itself. The files it writes are
//! this repository's `wit/destination.wit` and, with `--http`, the wasi
//! packages of the `wasmtime-wasi-http` crate the host is built with, byte
//! for byte (found with `cargo metadata`, independently of the binary).
//! The Python HTTP sink of the suite is built from its `--http` output.

use std::path::PathBuf;
use std::process::Command;

use e2e::{Scratch, host_bin, repo_root, stderr};

/// The `wit/deps` directory of the `wasmtime-wasi-http` crate in the build.
fn wasi_http_wit() -> PathBuf {
    let triple = String::from_utf8(Command::new("rustc").arg("-vV").output().expect("rustc -vV").stdout).expect("utf8");
    let triple = triple.lines().find_map(|l| l.strip_prefix("host: ")).expect("host triple").to_string();
    let out = Command::new("cargo")
        .args(["metadata", "--format-version", "1", "--offline", "--filter-platform", &triple, "--manifest-path"])
        .arg(repo_root().join("Cargo.toml"))
        .output()
        .expect("cargo metadata");
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let manifest = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|p| p["name"] == "wasmtime-wasi-http")
        .and_then(|p| p["manifest_path"].as_str())
        .expect("wasmtime-wasi-http in the build");
    PathBuf::from(manifest).parent().expect("crate dir").join("wit/deps")
}

#[test]
fn host_wit_writes_the_contract_and_the_wasi_packages_the_host_implements() {
    let s = Scratch::new();
    let plain = s.path().join("plain");
    let out = Command::new(host_bin()).args(["wit", "--out"]).arg(&plain).output().expect("host wit");
    assert!(out.status.success(), "{}", stderr(&out));
    let ours = std::fs::read(repo_root().join("wit/destination.wit")).expect("wit/destination.wit");
    assert_eq!(std::fs::read(plain.join("destination.wit")).expect("written"), ours);

    let http = s.path().join("http");
    let out = Command::new(host_bin())
        .args(["wit", "--http", "--world", "my-sink", "--out"])
        .arg(&http)
        .output()
        .expect("host wit --http");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(http.join("deps/destination/destination.wit")).expect("written"), ours);
    let crate_dir = wasi_http_wit();
    let mut compared = 0;
    for entry in std::fs::read_dir(&crate_dir).expect("crate wit/deps") {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("name");
        let written = std::fs::read(http.join("deps").join(name))
            .unwrap_or_else(|e| panic!("{} was not written: {e}", name.to_string_lossy()));
        assert_eq!(written, std::fs::read(&path).expect("crate file"), "{} differs from the crate's", path.display());
        compared += 1;
    }
    assert!(compared >= 7, "the wasi packages: {compared}");
    let world = std::fs::read_to_string(http.join("world.wit")).expect("world.wit");
    assert!(world.contains("world my-sink {") && world.contains("import wasi:http/outgoing-handler@"), "{world}");

    let out = Command::new(host_bin()).args(["wit", "--out", "x", "--world", "Bad"]).output().expect("host wit");
    assert_eq!(out.status.code(), Some(2), "--world needs --http: {}", stderr(&out));
}
