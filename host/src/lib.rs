//! `host`: a WebAssembly-sandboxed destination host for data pipelines.
//!
//! Data flows through the modules in this order:
//!
//! ```text
//! input      files or stdin      → JSON records (file, line)
//! normalize  JSON records        → relational rows + schema (dlt's rules)
//! package    rows                → job files in a load package on disk
//! ledger     delivered batches   → a durable per-job row count (resume)
//! load       pending packages    → batches, on a pool of worker threads
//! runtime    batches             → the sink component, one Store per worker
//! ```
//!
//! `extract` ties input → normalize → package together; `catalog`
//! describes every setting once and `settings` resolves them; `pipeline`
//! holds the library's operations (`Sink::open`, `run`) that the CLI, the
//! benchmarks and the tests call; `stop` is the stop handle every phase
//! reads; `names` checks names from outside and makes the only paths built
//! from them; `cli` is the binary's front end. docs/architecture.md has
//! the allowed dependencies between them, which `layers` below enforces.

#![deny(missing_docs)]

pub mod catalog;
pub mod cli;
pub mod config;
pub mod extract;
pub mod input;
pub mod ledger;
pub mod load;
pub mod names;
pub mod normalize;
pub mod package;
pub mod pipeline;
pub mod runtime;
pub mod scaffold;
pub mod schema;
pub mod settings;
pub mod stop;
pub mod telemetry;

/// The random double texts of the end-to-end property test
/// (`tests/src/doubles.rs`), shared with the JSON readers' unit tests.
#[cfg(test)]
#[path = "../../tests/src/doubles.rs"]
#[allow(dead_code)]
mod test_doubles;

/// The module graph of `docs/architecture.md`, checked against the code.
#[cfg(test)]
mod layers {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    /// `module → modules it may refer to`, from the list between the
    /// `layers` markers of docs/architecture.md.
    fn allowed() -> BTreeMap<String, BTreeSet<String>> {
        let doc = include_str!("../../docs/architecture.md");
        let start = doc.find("<!-- layers: begin -->").expect("begin marker");
        let end = doc.find("<!-- layers: end -->").expect("end marker");
        doc[start..end]
            .lines()
            .filter_map(|l| l.strip_prefix("- "))
            .filter_map(|l| l.split_once(':'))
            .map(|(module, deps)| {
                let deps = deps.split(',').map(str::trim).filter(|d| !d.is_empty()).map(String::from).collect();
                (module.trim().to_string(), deps)
            })
            .collect()
    }

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read src").flatten() {
            let path = entry.path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// The names after `prefix` (`crate::`, `super::`) in the code lines of
    /// `text` (comments left out).
    fn references<'t>(text: &'t str, prefix: &str) -> Vec<&'t str> {
        let mut out = Vec::new();
        for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (at, _) in line.match_indices(prefix) {
                let rest = &line[at + prefix.len()..];
                let name = &rest[..rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len())];
                if !name.is_empty() {
                    out.push(name);
                }
            }
        }
        out
    }

    /// True when the graph has a circle.
    fn has_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<String> {
        fn visit(
            node: &str,
            graph: &BTreeMap<String, BTreeSet<String>>,
            path: &mut Vec<String>,
            done: &mut BTreeSet<String>,
        ) -> Option<String> {
            if let Some(at) = path.iter().position(|n| n == node) {
                return Some(format!("{} -> {node}", path[at..].join(" -> ")));
            }
            if done.contains(node) {
                return None;
            }
            path.push(node.to_string());
            for next in graph.get(node).into_iter().flatten() {
                if let Some(c) = visit(next, graph, path, done) {
                    return Some(c);
                }
            }
            path.pop();
            done.insert(node.to_string());
            None
        }
        let mut done = BTreeSet::new();
        graph.keys().find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
    }

    #[test]
    fn modules_refer_only_down_the_graph() {
        let allowed = allowed();
        assert!(allowed.len() >= 13, "{allowed:?}");
        assert_eq!(has_cycle(&allowed), None, "the documented graph is a DAG");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let mut wrong = Vec::new();
        // File-level edges inside each module directory, for circles.
        let mut file_graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for file in &files {
            let rel = file.strip_prefix(&src).expect("under src");
            let parts: Vec<String> =
                rel.iter().map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string()).collect();
            if parts.len() == 1 && (parts[0] == "lib" || parts[0] == "main") {
                continue;
            }
            let module = parts[0].clone();
            let text = std::fs::read_to_string(file).expect("read");
            for target in references(&text, "crate::") {
                if target != module
                    && target != "test_doubles"
                    && !allowed.get(&module).is_some_and(|a| a.contains(target))
                {
                    wrong.push(format!("{}: crate::{target}", rel.display()));
                }
            }
            if parts.len() == 2 && parts[1] != "mod" {
                let me = format!("{module}/{}", parts[1]);
                let siblings =
                    references(&text, "super::").into_iter().chain(references(&text, &format!("crate::{module}::")));
                for sibling in siblings {
                    if src.join(&module).join(format!("{sibling}.rs")).is_file() {
                        file_graph.entry(me.clone()).or_default().insert(format!("{module}/{sibling}"));
                    }
                }
            }
        }
        assert!(wrong.is_empty(), "references the graph in docs/architecture.md does not allow:\n{}", wrong.join("\n"));
        assert_eq!(has_cycle(&file_graph), None, "files of one module refer to each other in a circle");
    }
}
