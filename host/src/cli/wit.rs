//! `host wit`: writes the contract this binary implements into a sink
//! project, so building a sink needs no checkout of this repository.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use crate::runtime::contract::wit_files;

/// Arguments of `host wit`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  host wit --out wit\n  host wit --out wit --http --world my-sink")]
pub struct WitArgs {
    /// The directory to write (created if missing; files there are replaced).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// For a sink that calls an HTTP API: also the wasi 0.2 packages the
    /// host implements (in DIR/deps/) and DIR/world.wit, a world that
    /// includes `destination` and imports `wasi:http/outgoing-handler`.
    #[arg(long)]
    pub http: bool,
    /// The name of that world (with --http).
    #[arg(long, value_name = "NAME", default_value = "sink", requires = "http")]
    pub world: String,
}

impl WitArgs {
    /// Runs the command; returns the exit code.
    pub fn execute(self) -> anyhow::Result<u8> {
        if !self.world.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            || !self.world.starts_with(|c: char| c.is_ascii_lowercase())
        {
            anyhow::bail!(
                "--world {}: a WIT name is lower-case letters, digits and `-`, starting with a letter",
                self.world
            );
        }
        let mut written = Vec::new();
        for (relative, text) in wit_files(self.http.then_some(self.world.as_str())) {
            write(&self.out.join(relative), &text, &mut written)?;
        }
        for path in &written {
            outln!("{}", path.display());
        }
        let world = if self.http { self.world.as_str() } else { "destination" };
        eprintln!("Wrote the contract to {}; build the sink against world `{world}` there.", self.out.display());
        Ok(0)
    }
}

fn write(path: &Path, text: &str, written: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    written.push(path.to_path_buf());
    Ok(())
}
