//! The `print` example: the README's first command.

use e2e::{Scratch, guest, host_bin, run, stderr};

#[test]
fn print_shows_table_and_rows_on_stderr_with_the_sink_prefix() {
    let s = Scratch::new();
    let sample = e2e::repo_root().join("guest-examples/print/sample.jsonl");
    let mut cmd = std::process::Command::new(host_bin());
    cmd.arg("run").arg("--component").arg(guest("print")).arg("--input").arg(&sample);
    cmd.arg("--pipelines-dir").arg(s.pipelines());
    let out = run(cmd);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("[print] table sample"), "{err}");
    assert!(err.contains(r#"[print] {"id":1,"name":"Ada""#), "{err}");
    assert!(out.stdout.is_empty(), "stdout stays free for machine-readable output");
}
