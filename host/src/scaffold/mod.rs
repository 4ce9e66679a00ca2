//! `host new`: a sink project that builds with one command and passes
//! `host test-sink` out of the box. The SDK and the contract are written
//! from this binary (nothing is fetched from a checkout, nothing is
//! published to a registry), pinned to the contract version it implements.
//!
//! Rust only so far: the project is a crate with the SDK vendored in
//! `sdk/` (the repository's `guest-examples/sdk`, which stands alone), the
//! dependency versions locked as the repository's example sinks lock them,
//! and the toolchain pinned in `rust-toolchain.toml`.

use std::path::{Path, PathBuf};

use crate::runtime::contract::DESTINATION_WIT;

/// The SDK's files, relative to the project's `sdk/`.
const SDK: [(&str, &str); 7] = [
    ("Cargo.toml", include_str!("../../../guest-examples/sdk/Cargo.toml")),
    ("src/lib.rs", include_str!("../../../guest-examples/sdk/src/lib.rs")),
    ("src/capture.rs", include_str!("../../../guest-examples/sdk/src/capture.rs")),
    ("src/columnar.rs", include_str!("../../../guest-examples/sdk/src/columnar.rs")),
    ("src/encode.rs", include_str!("../../../guest-examples/sdk/src/encode.rs")),
    ("src/jobfile.rs", include_str!("../../../guest-examples/sdk/src/jobfile.rs")),
    ("wit/destination.wit", DESTINATION_WIT),
];

/// The versions the example sinks are built and tested with.
const LOCK: &str = include_str!("../../../guest-examples/Cargo.lock");

/// The example sink of a new Rust project (`{{name}}` replaced).
const RUST_LIB: &str = include_str!("rust_lib.rs.txt");

/// The toolchain the host is built and tested with.
const TOOLCHAIN: &str = "1.95.0";

/// A project could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name is not a sink name.
    #[error("{0}")]
    Name(#[from] crate::names::NameError),
    /// The directory exists and is not empty.
    #[error("{0} exists and is not empty; pick another name or remove it")]
    Exists(PathBuf),
    /// Writing failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The files of a new Rust sink project named `name`, by relative path.
pub fn rust_project(name: &str) -> Result<Vec<(String, String)>, ScaffoldError> {
    crate::names::check_sink_name(name)?;
    let mut files: Vec<(String, String)> = SDK.iter().map(|(p, t)| (format!("sdk/{p}"), t.to_string())).collect();
    files.push(("Cargo.toml".into(), cargo_toml(name)));
    files.push(("Cargo.lock".into(), LOCK.to_string()));
    files.push((
        "rust-toolchain.toml".into(),
        format!("[toolchain]\nchannel = \"{TOOLCHAIN}\"\ntargets = [\"wasm32-wasip2\"]\n"),
    ));
    files.push(("src/lib.rs".into(), RUST_LIB.replace("{{name}}", name)));
    files.push((".dlt/config.toml".into(), format!("[destination.{name}]\ngreeting = \"hello\"\n")));
    files.push((".dlt/secrets.toml".into(), format!("[destination.{name}]\ntoken = \"change-me\"\n")));
    files.push((".gitignore".into(), "/target\n/out\n.dlt/secrets.toml\n".into()));
    files.push(("README.md".into(), readme(name)));
    Ok(files)
}

fn cargo_toml(name: &str) -> String {
    format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\nrust-version = \"1.95\"\npublish = false\n\n\
         [lib]\ncrate-type = [\"cdylib\"]\n\n\
         [dependencies]\n# The SDK, vendored by `host new` for contract {contract}.\ndlthost-sink = {{ path = \"sdk\", features = [\"parquet\"] }}\n\n\
         [profile.release]\nopt-level = \"s\"\nlto = true\nstrip = true\n\n\
         # Its own workspace, wherever the project lives.\n[workspace]\n",
        contract = crate::runtime::contract::package_of(DESTINATION_WIT).unwrap_or("dlthost:destination"),
    )
}

fn readme(name: &str) -> String {
    format!(
        "# {name}\n\nA dlthost sink, made by `host new {name} --lang rust`. `src/lib.rs` writes each\n\
         batch as a JSON file into the directory granted as `/out`; replace its `load`\n\
         with the calls to your destination. `sdk/` is the Rust SDK and the contract\n\
         (`sdk/wit/destination.wit`) this host implements.\n\n\
         ```sh\n\
         cargo build --release --target wasm32-wasip2          # the toolchain is pinned in rust-toolchain.toml\n\
         mkdir -p out\n\
         host inspect target/wasm32-wasip2/release/{name}.wasm\n\
         host test-sink target/wasm32-wasip2/release/{name}.wasm --dir ./out::/out\n\
         host run --component target/wasm32-wasip2/release/{name}.wasm --input data.jsonl --dir ./out::/out\n\
         ```\n\n\
         Settings: `greeting` in `.dlt/config.toml`; the secret `token` in\n\
         `.dlt/secrets.toml` (kept out of git by `.gitignore`), or\n\
         `DESTINATION__{up}__TOKEN`. A sink's module state lives per instance: one per\n\
         worker, replaced after traps and every `--store-max-batches` calls.\n",
        up = name.to_ascii_uppercase()
    )
}

/// Writes `files` under `dir` (which must not exist, or be empty).
pub fn write(dir: &Path, files: &[(String, String)]) -> Result<Vec<PathBuf>, ScaffoldError> {
    if std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(ScaffoldError::Exists(dir.to_path_buf()));
    }
    let mut written = Vec::new();
    for (relative, text) in files {
        let path = dir.join(relative);
        let io = |source| ScaffoldError::Io { path: path.clone(), source };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        std::fs::write(&path, text).map_err(io)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rust_project_names_its_sink_and_vendors_the_contract() {
        let files = rust_project("my_sink").expect("files");
        let get = |p: &str| files.iter().find(|(path, _)| path == p).map(|(_, t)| t.as_str()).expect(p);
        assert!(get("src/lib.rs").contains("default_spec(\"my_sink\")"));
        assert_eq!(get("sdk/wit/destination.wit"), DESTINATION_WIT);
        assert!(get("Cargo.toml").contains("dlthost-sink = { path = \"sdk\", features = [\"parquet\"] }"));
        assert!(get(".gitignore").contains(".dlt/secrets.toml"));
        assert!(get(".dlt/secrets.toml").contains("[destination.my_sink]"));
        assert!(rust_project("My Sink").is_err(), "not a sink name");
        let sdk = get("sdk/Cargo.toml");
        assert!(!sdk.contains(".workspace") && !sdk.contains("workspace = true"), "the SDK stands alone");
    }
}
