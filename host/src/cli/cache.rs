//! `host compile` and `host cache clean`: the compile cache from the command line.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::common::compile_cache;
use crate::runtime;

/// Arguments of `host compile`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  host compile sink.wasm")]
pub struct CompileArgs {
    /// The sink component to compile.
    #[arg(value_name = "COMPONENT")]
    pub component: PathBuf,
    /// The cache directory (default: the per-user cache directory).
    #[arg(long, value_name = "DIR", env = "DLTHOST_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

impl CompileArgs {
    /// Compiles the component into the cache.
    pub fn execute(self) -> anyhow::Result<u8> {
        let bytes =
            std::fs::read(&self.component).with_context(|| format!("cannot read {}", self.component.display()))?;
        let cache = compile_cache(self.cache_dir.as_deref());
        let engine = runtime::engine(false).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let outcome = cache
            .fill(&engine, &bytes)
            .map_err(|e| anyhow::anyhow!("cannot compile {}: {e:#}", self.component.display()))?;
        let what = if outcome.hit { "already cached" } else { "compiled" };
        outln!("{} {what} in {:.1} ms: {}", self.component.display(), outcome.millis, outcome.path.display());
        Ok(0)
    }
}

/// `host cache ...`.
#[derive(Debug, Args)]
pub struct CacheArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: CacheCommand,
    /// The cache directory (default: the per-user cache directory).
    #[arg(long, value_name = "DIR", env = "DLTHOST_CACHE_DIR", global = true)]
    pub cache_dir: Option<PathBuf>,
}

/// Cache subcommands.
#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Delete every compiled component.
    Clean,
}

impl CacheArgs {
    /// Runs the subcommand.
    pub fn execute(self) -> anyhow::Result<u8> {
        let cache = compile_cache(self.cache_dir.as_deref());
        match self.command {
            CacheCommand::Clean => {
                let (files, bytes) = cache.clean()?;
                outln!("Removed {files} compiled components ({bytes} bytes) from {}", cache.dir().display());
            }
        }
        Ok(0)
    }
}
