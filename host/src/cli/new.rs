//! `host new`: a sink project, ready to build, check and run.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::scaffold;

/// `--lang` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    /// Rust, with the SDK vendored in `sdk/`.
    Rust,
    /// Python (componentize-py), with the SDK in `sdk/dlthost_sink/`.
    Python,
    /// JavaScript (componentize-js), with the SDK module in `sdk/`.
    Js,
}

impl From<Lang> for scaffold::Language {
    fn from(lang: Lang) -> scaffold::Language {
        match lang {
            Lang::Rust => scaffold::Language::Rust,
            Lang::Python => scaffold::Language::Python,
            Lang::Js => scaffold::Language::JavaScript,
        }
    }
}

/// Arguments of `host new`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  host new my_sink --lang rust && cd my_sink && cargo build --release --target wasm32-wasip2\n  host new my_sink --lang python   (then the setup and build commands in my_sink/README.md)"
)]
pub struct NewArgs {
    /// The sink's name (lower snake_case): the project's directory, crate and spec name.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The sink's language.
    #[arg(long, value_name = "LANG")]
    pub lang: Lang,
    /// A sink that POSTs each batch to an HTTP API (Rust and Python): its
    /// world imports wasi:http, and the host sends the token as a header.
    #[arg(long)]
    pub http: bool,
    /// Where to make the project [default: ./NAME].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

impl NewArgs {
    /// Writes the project; returns the exit code.
    pub fn execute(self) -> anyhow::Result<u8> {
        let project = scaffold::project(&self.name, self.lang.into(), self.http)?;
        let dir = self.dir.clone().unwrap_or_else(|| PathBuf::from(&self.name));
        let written = scaffold::write(&dir, &project.files)?;
        for path in &written {
            outln!("{}", path.display());
        }
        eprintln!(
            "Made {}. Next (the setup is in its README.md):\n  cd {}\n  {}\n  mkdir -p out && host test-sink {} --dir ./out::/out",
            dir.display(),
            dir.display(),
            project.build,
            project.wasm
        );
        Ok(0)
    }
}
