//! `host new`: a sink project that builds with one command and passes
//! `host test-sink` out of the box, in Rust, Python or JavaScript. The SDK
//! and the contract are written from this binary (nothing is fetched from
//! a checkout, nothing is published to a registry), pinned to the contract
//! version it implements; the language's toolchain is pinned in the
//! project.
//!
//! - Rust: a crate with the SDK vendored in `sdk/` (the repository's
//!   `guest-examples/sdk/rust`), dependency versions locked as the
//!   repository's example sinks lock them, the toolchain in
//!   `rust-toolchain.toml`.
//! - Python: `app.py`, the pure-Python SDK in `sdk/dlthost_sink/`
//!   (`guest-examples/sdk/python`), componentize-py pinned in
//!   `requirements.txt`.
//! - JavaScript: `app.js`, the SDK module in `sdk/`
//!   (`guest-examples/sdk/js`), componentize-js pinned in `package.json`.

use std::path::{Path, PathBuf};

use crate::runtime::contract::DESTINATION_WIT;

/// The Rust SDK's files, relative to the project's `sdk/`.
const RUST_SDK: [(&str, &str); 7] = [
    ("Cargo.toml", include_str!("../../../guest-examples/sdk/rust/Cargo.toml")),
    ("src/lib.rs", include_str!("../../../guest-examples/sdk/rust/src/lib.rs")),
    ("src/capture.rs", include_str!("../../../guest-examples/sdk/rust/src/capture.rs")),
    ("src/columnar.rs", include_str!("../../../guest-examples/sdk/rust/src/columnar.rs")),
    ("src/encode.rs", include_str!("../../../guest-examples/sdk/rust/src/encode.rs")),
    ("src/jobfile.rs", include_str!("../../../guest-examples/sdk/rust/src/jobfile.rs")),
    ("wit/destination.wit", DESTINATION_WIT),
];

/// The Python SDK's files, relative to the project's `sdk/`.
const PYTHON_SDK: [(&str, &str); 2] = [
    ("pyproject.toml", include_str!("../../../guest-examples/sdk/python/pyproject.toml")),
    ("dlthost_sink/__init__.py", include_str!("../../../guest-examples/sdk/python/dlthost_sink/__init__.py")),
];

/// The JavaScript SDK's files, relative to the project's `sdk/`.
const JS_SDK: [(&str, &str); 3] = [
    ("package.json", include_str!("../../../guest-examples/sdk/js/package.json")),
    ("dlthost_sink.js", include_str!("../../../guest-examples/sdk/js/dlthost_sink.js")),
    ("dlthost_sink.d.ts", include_str!("../../../guest-examples/sdk/js/dlthost_sink.d.ts")),
];

/// The versions the example sinks are built and tested with.
const LOCK: &str = include_str!("../../../guest-examples/Cargo.lock");

/// The example sinks of a new project (`{{name}}` replaced).
const RUST_LIB: &str = include_str!("rust_lib.rs.txt");
const PYTHON_APP: &str = include_str!("python_app.py.txt");
const JS_APP: &str = include_str!("js_app.js.txt");
/// The same for a sink that calls an HTTP API (`--http`).
const RUST_HTTP_LIB: &str = include_str!("rust_http_lib.rs.txt");
const PYTHON_HTTP_APP: &str = include_str!("python_http_app.py.txt");

/// The toolchains a new project pins: the ones this host's own sinks are
/// built and tested with (`scripts/guest-tools.sh` installs the same; a
/// unit test compares).
pub const RUST_TOOLCHAIN: &str = "1.95.0";
/// componentize-py, from PyPI.
pub const COMPONENTIZE_PY: &str = "0.25.1";
/// @bytecodealliance/componentize-js, from npm.
pub const COMPONENTIZE_JS: &str = "0.23.0";

/// The languages `host new` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// Rust, built with cargo for wasm32-wasip2.
    Rust,
    /// Python, built with componentize-py.
    Python,
    /// JavaScript, built with componentize-js.
    JavaScript,
}

/// A project's files and the commands its README gives.
#[derive(Debug, Clone)]
pub struct Project {
    /// Relative path and text of every file.
    pub files: Vec<(String, String)>,
    /// The one command that builds the component, run in the project.
    pub build: String,
    /// Where the build writes the component, relative to the project.
    pub wasm: String,
}

/// A project could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name is not a sink name.
    #[error("{0}")]
    Name(#[from] crate::names::NameError),
    /// The directory exists and is not empty.
    #[error("{0} exists and is not empty; pick another name or remove it")]
    Exists(PathBuf),
    /// The language cannot make HTTP calls from a sink yet.
    #[error(
        "--http: JavaScript sinks cannot call an HTTP API yet: `load` is synchronous and componentize-js's fetch is asynchronous; write the sink in Rust or Python (host new NAME --lang python --http)"
    )]
    NoHttp,
    /// Writing failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The project of a new sink named `name` in `language`; with `http`, a
/// sink that POSTs each batch to an HTTP API (its world imports wasi:http).
pub fn project(name: &str, language: Language, http: bool) -> Result<Project, ScaffoldError> {
    crate::names::check_sink_name(name)?;
    let mut project = match (language, http) {
        (Language::Rust, _) => rust_project(name, http),
        (Language::Python, _) => python_project(name, http),
        (Language::JavaScript, false) => js_project(name),
        (Language::JavaScript, true) => return Err(ScaffoldError::NoHttp),
    };
    let contract = crate::runtime::contract::package_of(DESTINATION_WIT).unwrap_or("dlthost:destination");
    let config = if http {
        format!(
            "[destination.{name}]\nurl = \"http://127.0.0.1:8080/v1\"\n\
             # The host sends the token as this header; the sink never holds it.\n\
             auth_header = \"Authorization: Bearer {{token}}\"\n"
        )
    } else {
        format!("[destination.{name}]\ngreeting = \"hello\"\n")
    };
    project.files.push((".dlt/config.toml".into(), config));
    project.files.push((".dlt/secrets.toml".into(), format!("[destination.{name}]\ntoken = \"change-me\"\n")));
    project.files.push(("README.md".into(), readme(name, language, contract, http, &project)));
    Ok(project)
}

fn rust_project(name: &str, http: bool) -> Project {
    let mut files: Vec<(String, String)> = RUST_SDK.iter().map(|(p, t)| (format!("sdk/{p}"), t.to_string())).collect();
    files.push(("Cargo.toml".into(), cargo_toml(name, http)));
    files.push(("Cargo.lock".into(), LOCK.to_string()));
    files.push((
        "rust-toolchain.toml".into(),
        format!("[toolchain]\nchannel = \"{RUST_TOOLCHAIN}\"\ntargets = [\"wasm32-wasip2\"]\n"),
    ));
    let lib = if http { RUST_HTTP_LIB } else { RUST_LIB };
    files.push(("src/lib.rs".into(), lib.replace("{{name}}", name)));
    files.push((".gitignore".into(), "/target\n/out\n.dlt/secrets.toml\n".into()));
    Project {
        files,
        build: "cargo build --release --target wasm32-wasip2".into(),
        wasm: format!("target/wasm32-wasip2/release/{name}.wasm"),
    }
}

fn python_project(name: &str, http: bool) -> Project {
    let mut files: Vec<(String, String)> =
        PYTHON_SDK.iter().map(|(p, t)| (format!("sdk/{p}"), t.to_string())).collect();
    // A WIT world name: the sink's name with `-` for `_`.
    let world_name = name.replace('_', "-");
    let world = if http { world_name.as_str() } else { "destination" };
    let wit = crate::runtime::contract::wit_files(http.then_some(world));
    files.extend(wit.into_iter().map(|(p, t)| (format!("wit/{p}"), t)));
    let app = if http { PYTHON_HTTP_APP } else { PYTHON_APP };
    files.push(("app.py".into(), app.replace("{{name}}", name)));
    files.push((
        "requirements.txt".into(),
        format!(
            "# The build tool, pinned to the version this host is tested with.\ncomponentize-py=={COMPONENTIZE_PY}\n"
        ),
    ));
    files.push((".gitignore".into(), "/build\n/bindings\n/out\n/.venv\n__pycache__/\n.dlt/secrets.toml\n".into()));
    Project {
        files,
        build: format!("componentize-py -d wit -w {world} componentize -p . -p sdk app -o build/{name}.wasm"),
        wasm: format!("build/{name}.wasm"),
    }
}

fn js_project(name: &str) -> Project {
    let mut files: Vec<(String, String)> = JS_SDK.iter().map(|(p, t)| (format!("sdk/{p}"), t.to_string())).collect();
    files.push(("wit/destination.wit".into(), DESTINATION_WIT.to_string()));
    files.push(("app.js".into(), JS_APP.replace("{{name}}", name)));
    let build = format!("componentize-js app.js --wit wit --world-name destination -o build/{name}.wasm");
    files.push((
        "package.json".into(),
        format!(
            "{{\n  \"name\": \"{name}\",\n  \"version\": \"0.1.0\",\n  \"private\": true,\n  \"type\": \"module\",\n  \
             \"scripts\": {{ \"build\": \"mkdir -p build && {build}\" }},\n  \
             \"devDependencies\": {{ \"@bytecodealliance/componentize-js\": \"{COMPONENTIZE_JS}\" }}\n}}\n"
        ),
    ));
    files.push((".gitignore".into(), "/build\n/node_modules\n/out\n.dlt/secrets.toml\n".into()));
    Project { files, build, wasm: format!("build/{name}.wasm") }
}

fn cargo_toml(name: &str, http: bool) -> String {
    // waki: outgoing HTTP over wasi:http, the version this repository's
    // HTTP sink is tested with (Cargo.lock).
    let http_dependency = if http { "# Outgoing HTTP over wasi:http.\nwaki = \"0.5\"\n" } else { "" };
    format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\nrust-version = \"1.95\"\npublish = false\n\n\
         [lib]\ncrate-type = [\"cdylib\"]\n\n\
         [dependencies]\n# The SDK, vendored by `host new` for contract {contract}.\ndlthost-sink = {{ path = \"sdk\", features = [\"parquet\"] }}\n{http_dependency}\n\
         [profile.release]\nopt-level = \"s\"\nlto = true\nstrip = true\n\n\
         # Its own workspace, wherever the project lives.\n[workspace]\n",
        contract = crate::runtime::contract::package_of(DESTINATION_WIT).unwrap_or("dlthost:destination"),
    )
}

/// The README: what the project is, the setup, build, check and run
/// commands, the settings.
fn readme(name: &str, language: Language, contract: &str, http: bool, project: &Project) -> String {
    let (what, setup, source) = match language {
        Language::Rust => (
            "Rust",
            "rustup show                 # installs the pinned toolchain (rust-toolchain.toml) and the wasm32-wasip2 target".to_string(),
            "`src/lib.rs` writes each batch as a JSON file into the directory granted as `/out`; `sdk/` is the Rust SDK (crate `dlthost-sink`) with the contract in `sdk/wit/`",
        ),
        Language::Python => (
            "Python",
            "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt && . .venv/bin/activate\nmkdir -p build".to_string(),
            "`app.py` writes each batch as a JSON Lines file named after its idempotency key into the directory granted as `/out` (a replay replaces its own file); `sdk/dlthost_sink/` is the Python SDK (or `pip install ./sdk` and pass that environment's site-packages with `-p`: componentize-py does not search it), `wit/` the contract. `componentize-py -d wit -w destination bindings bindings` writes the generated bindings into `bindings/` for your editor; the build writes into `build/`, the sink into `out/`. Import modules at the top of `app.py`: one first imported inside `load` is not found at run time",
        ),
        Language::JavaScript => (
            "JavaScript",
            "npm install                # the pinned componentize-js\nexport PATH=\"$PWD/node_modules/.bin:$PATH\"\nmkdir -p build".to_string(),
            "`app.js` prints each row as a JSON line (the host shows it as `[NAME] ...`); `sdk/dlthost_sink.js` is the JavaScript SDK (types in `dlthost_sink.d.ts`), `wit/` the contract. `npm run build` runs the build command",
        ),
    };
    let source = source.replace("NAME", name);
    let (source, grant, settings) = if http {
        (
            format!(
                "The sink POSTs each batch as JSON to `<url>/<table>` with the batch's `Idempotency-Key` (see the comment at the top of the source); the API must drop a key it has stored. {}",
                source.split_once(';').map_or("", |(_, rest)| rest.trim())
            ),
            " --allow-host http://127.0.0.1:8080",
            "Settings: `url` in `.dlt/config.toml` (allow its origin with `--allow-host`); the\n\
             secret `token` in `.dlt/secrets.toml` (kept out of git by `.gitignore`), sent by the\n\
             host as `Authorization: Bearer ...` (`auth_header`), so the sink never holds it.",
        )
    } else {
        (
            source,
            "",
            "Settings: `greeting` in `.dlt/config.toml`; the secret `token` in\n\
             `.dlt/secrets.toml` (kept out of git by `.gitignore`).",
        )
    };
    format!(
        "# {name}\n\nA dlthost sink in {what}, made by `host new {name}` for contract `{contract}`.\n\
         {source}. Replace `load` with the calls to your destination.\n\n\
         ```sh\n{setup}\n\
         {build}\n\
         mkdir -p out\n\
         host inspect {wasm}\n\
         host test-sink {wasm} --dir ./out::/out{grant}{count}\n\
         host run --component {wasm} --input data.jsonl --dir ./out::/out{grant}\n\
         ```\n\n\
         {settings} The token can also come from\n\
         `DESTINATION__{up}__TOKEN`. A sink's module state lives per instance: one per\n\
         worker, replaced after traps and every `--store-max-batches` calls. An error\n\
         answered with a retry-after replaces the host's backoff for that attempt.\n",
        build = project.build,
        wasm = project.wasm,
        count = match (language, http) {
            (Language::JavaScript, _) | (_, true) => "",
            (Language::Rust | Language::Python, false) => " --count-rows 'cat out/{table}.*.jsonl 2>/dev/null | wc -l'",
        },
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

    fn file<'a>(p: &'a Project, path: &str) -> &'a str {
        p.files.iter().find(|(f, _)| f == path).map(|(_, t)| t.as_str()).unwrap_or_else(|| panic!("{path}"))
    }

    #[test]
    fn a_rust_project_names_its_sink_and_vendors_the_contract() {
        let p = project("my_sink", Language::Rust, false).expect("files");
        assert!(file(&p, "src/lib.rs").contains("SinkSpec::new(\"my_sink\")"));
        assert!(file(&p, "README.md").contains("--count-rows"));
        assert_eq!(file(&p, "sdk/wit/destination.wit"), DESTINATION_WIT);
        assert!(file(&p, "Cargo.toml").contains("dlthost-sink = { path = \"sdk\", features = [\"parquet\"] }"));
        assert!(file(&p, ".gitignore").contains(".dlt/secrets.toml"));
        assert!(file(&p, ".dlt/secrets.toml").contains("[destination.my_sink]"));
        assert!(project("My Sink", Language::Rust, false).is_err(), "not a sink name");
        let sdk = file(&p, "sdk/Cargo.toml");
        assert!(!sdk.contains(".workspace") && !sdk.contains("workspace = true"), "the SDK stands alone");
    }

    #[test]
    fn python_and_js_projects_carry_the_sdk_the_contract_and_pinned_tools() {
        for (lang, app, sdk, pin) in [
            (Language::Python, "app.py", "sdk/dlthost_sink/__init__.py", "requirements.txt"),
            (Language::JavaScript, "app.js", "sdk/dlthost_sink.js", "package.json"),
        ] {
            let p = project("my_sink", lang, false).expect("files");
            assert!(file(&p, app).contains("\"my_sink\""), "{app}");
            assert!(!file(&p, app).contains("{{name}}"), "{app}");
            assert_eq!(file(&p, "wit/destination.wit"), DESTINATION_WIT);
            assert!(file(&p, sdk).contains("dlthost:destination@0.1.0"), "{sdk} names the contract it targets");
            assert!(file(&p, ".gitignore").contains(".dlt/secrets.toml"));
            assert!(file(&p, "README.md").contains(&p.build), "the README gives the build command");
            let pinned = file(&p, pin);
            assert!(pinned.contains(COMPONENTIZE_PY) || pinned.contains(COMPONENTIZE_JS), "{pin}: {pinned}");
        }
    }

    #[test]
    fn http_projects_import_wasi_http_and_let_the_host_send_the_token() {
        let p = project("api_sink", Language::Python, true).expect("python");
        assert!(file(&p, "wit/world.wit").contains("import wasi:http/outgoing-handler"));
        assert!(file(&p, "wit/deps/destination/destination.wit") == DESTINATION_WIT);
        assert!(p.build.contains("-w api-sink"), "{}", p.build);
        assert!(file(&p, ".dlt/config.toml").contains("auth_header = \"Authorization: Bearer {token}\""));
        assert!(file(&p, "README.md").contains("--allow-host"));
        let r = project("api_sink", Language::Rust, true).expect("rust");
        assert!(file(&r, "Cargo.toml").contains("waki = "));
        assert!(file(&r, "src/lib.rs").contains("SinkSpec::new(\"api_sink\")"));
        assert!(matches!(project("api_sink", Language::JavaScript, true), Err(ScaffoldError::NoHttp)));
    }

    #[test]
    fn the_pinned_tools_are_the_ones_the_suite_installs() {
        let tools = include_str!("../../../scripts/guest-tools.sh");
        assert!(tools.contains(&format!("componentize-py=={COMPONENTIZE_PY}")));
        assert!(tools.contains(&format!("componentize-js@{COMPONENTIZE_JS}")));
    }
}
