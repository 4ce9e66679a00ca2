//! `host new`: a sink project, ready to build, check and run.

use std::path::PathBuf;

use anyhow::bail;
use clap::{Args, ValueEnum};

use crate::scaffold;

/// `--lang` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    /// Rust, with the SDK vendored in `sdk/`.
    Rust,
    /// Python (componentize-py): not made by `host new` yet.
    Python,
    /// JavaScript (componentize-js): not made by `host new` yet.
    Js,
}

/// Arguments of `host new`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  host new my_sink --lang rust && cd my_sink && cargo build --release --target wasm32-wasip2"
)]
pub struct NewArgs {
    /// The sink's name (lower snake_case): the project's directory, crate and spec name.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The sink's language.
    #[arg(long, value_name = "LANG")]
    pub lang: Lang,
    /// Where to make the project [default: ./NAME].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

impl NewArgs {
    /// Writes the project; returns the exit code.
    pub fn execute(self) -> anyhow::Result<u8> {
        let files = match self.lang {
            Lang::Rust => scaffold::rust_project(&self.name)?,
            Lang::Python | Lang::Js => bail!(
                "host new makes Rust projects so far; for Python and JavaScript follow docs/guides/ (host wit --out wit writes the contract)"
            ),
        };
        let dir = self.dir.clone().unwrap_or_else(|| PathBuf::from(&self.name));
        let written = scaffold::write(&dir, &files)?;
        for path in &written {
            outln!("{}", path.display());
        }
        eprintln!(
            "Made {}. Next:\n  cd {}\n  cargo build --release --target wasm32-wasip2\n  mkdir -p out && host test-sink target/wasm32-wasip2/release/{}.wasm --dir ./out::/out",
            dir.display(),
            dir.display(),
            self.name
        );
        Ok(0)
    }
}
