//! The `host` binary runs and names its commands. Being an integration test
//! of this package, it also makes `cargo test --workspace` link
//! `target/<profile>/host` before any test runs (cargo builds a package's
//! binaries for its integration tests), so the end-to-end tests in `tests/`
//! never run a binary older than the source.

use std::process::Command;

#[test]
fn the_binary_lists_its_commands() {
    let out = Command::new(env!("CARGO_BIN_EXE_host")).arg("--help").output().expect("run host --help");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let help = String::from_utf8_lossy(&out.stdout);
    for command in ["run", "load", "status", "inspect", "new", "test-sink", "wit"] {
        assert!(help.lines().any(|l| l.trim_start().starts_with(command)), "`{command}` in:\n{help}");
    }
}
