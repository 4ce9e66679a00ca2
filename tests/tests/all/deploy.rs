//! docs/deploy/kubernetes.md cannot run here: its manifests are parsed as
//! YAML (Debian's python3-yaml) and every flag, environment variable and
//! exit code they use is checked against the binary and the README.

use std::collections::BTreeSet;
use std::process::Command;

use e2e::{host_bin, repo_root};
use host::catalog::{self, Scope};
use serde_json::Value;

const TO_JSON: &str = r#"
import json, sys, yaml
print(json.dumps([yaml.safe_load(block) for block in json.load(sys.stdin)]))
"#;

/// The ```yaml blocks of the page, parsed.
fn manifests() -> Vec<Value> {
    let page = std::fs::read_to_string(repo_root().join("docs/deploy/kubernetes.md")).expect("read the page");
    let blocks: Vec<&str> =
        page.split("```yaml\n").skip(1).map(|rest| rest.split("```").next().expect("a closed block")).collect();
    assert_eq!(blocks.len(), 2, "an Indexed Job and a CronJob");
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", TO_JSON])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the deploy test needs /usr/bin/python3 with python3-yaml (apt-get install python3-yaml)");
    serde_json::to_writer(child.stdin.take().expect("stdin"), &blocks).expect("write");
    let out = child.wait_with_output().expect("python");
    assert!(out.status.success(), "the manifests are not valid YAML");
    serde_json::from_slice(&out.stdout).expect("json")
}

/// The Job spec of a Job or of a CronJob's template.
fn job_spec(doc: &Value) -> &Value {
    match doc["kind"].as_str() {
        Some("Job") => &doc["spec"],
        Some("CronJob") => &doc["spec"]["jobTemplate"]["spec"],
        other => panic!("unexpected kind {other:?}"),
    }
}

/// The README's exit codes, and those whose advice is to rerun.
fn exit_codes() -> (BTreeSet<i64>, BTreeSet<i64>) {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README");
    let mut all = BTreeSet::new();
    let mut rerun = BTreeSet::new();
    for line in readme.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if let [_, code, _, advice, _] = cells.as_slice()
            && let Ok(code) = code.parse::<i64>()
        {
            all.insert(code);
            if advice.contains("run the same command again") {
                rerun.insert(code);
            }
        }
    }
    (all, rerun)
}

#[test]
fn the_kubernetes_manifests_use_the_binarys_flags_variables_and_exit_codes() {
    let help = Command::new(host_bin()).args(["run", "--help"]).output().expect("host run --help");
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let (codes, rerun) = exit_codes();
    assert_eq!(codes, BTreeSet::from([0, 1, 2, 3, 130]), "the README's table");
    assert!(help.contains(host::pipeline::INDEX_ENV), "--shard-count names the variable Kubernetes sets");
    for doc in manifests() {
        let job = job_spec(&doc);
        assert_eq!(job["completionMode"], "Indexed");
        let pod = &job["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Never", "podFailurePolicy needs it");
        let container = &pod["containers"][0];
        let script: String = container["args"].as_array().expect("args").iter().filter_map(Value::as_str).collect();
        let flags: BTreeSet<&str> = script
            .split_whitespace()
            .filter(|w| w.starts_with("--"))
            .map(|w| w.trim_end_matches(';'))
            .filter(|w| w.len() > 2)
            .collect();
        assert!(flags.contains("--shard-count"), "{script}");
        for flag in &flags {
            assert!(
                help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
                "{flag} is not a flag of host run"
            );
        }
        let completions = job["completions"].as_i64().expect("completions");
        assert!(script.contains(&format!("--shard-count {completions}")), "one shard per completion");
        for var in container["env"].as_array().into_iter().flatten() {
            let name = var["name"].as_str().expect("name");
            let known = ["DLTHOST_CACHE_DIR", "DLTHOST_PIPELINES_DIR"].contains(&name)
                || name.strip_prefix("LOAD__").is_some_and(|key| {
                    catalog::SETTINGS.iter().any(|s| s.scope == Scope::Load && s.key.eq_ignore_ascii_case(key))
                });
            assert!(known, "{name} is not a variable the host reads");
        }
        let mut fail_index = BTreeSet::new();
        for rule in job["podFailurePolicy"]["rules"].as_array().expect("rules") {
            let values = rule["onExitCodes"]["values"].as_array().into_iter().flatten().filter_map(Value::as_i64);
            for code in values {
                assert!(codes.contains(&code), "exit code {code} is not in the README's table");
                if rule["action"] == "FailIndex" {
                    fail_index.insert(code);
                }
            }
        }
        let not_rerun: BTreeSet<i64> = codes.iter().copied().filter(|c| *c != 0 && !rerun.contains(c)).collect();
        assert_eq!(fail_index, not_rerun, "an index fails at once exactly on the codes a rerun does not fix");
    }
}
