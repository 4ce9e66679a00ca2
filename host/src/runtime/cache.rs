//! The compile cache: sink components compiled once, loaded in milliseconds.
//!
//! Compiling a component costs 0.1 s (Rust) to 8 s (Python, JavaScript). The
//! first run stores the compiled artifact in a per-user directory
//! (`~/.cache/dlthost/components` on Linux, or `--cache-dir`), named by the
//! SHA-256 of the component and a hash of the engine's compatibility
//! settings (wasmtime version, target, `Config`), so a changed component or
//! a new host build never loads a stale artifact. Artifacts are written to a
//! temporary file and renamed into place, the directory is private to the
//! user (0700), and only files with our naming pattern inside it are ever
//! deserialized: loading a compiled artifact is `unsafe` in wasmtime
//! because it is trusted machine code. The least recently used artifacts are
//! evicted past a size cap.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Engine, Precompiled};

/// Extension of cached artifacts.
const EXT: &str = "cwasm";

/// Default size cap: room for a few dozen Python or JavaScript sinks (~33 MB each).
pub const DEFAULT_CAP: u64 = 2 << 30;

/// A compile cache directory.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
    cap: u64,
}

/// How a component was obtained.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheOutcome {
    /// Loaded from the cache.
    pub hit: bool,
    /// The artifact's path.
    pub path: PathBuf,
    /// Milliseconds to compile or load.
    pub millis: f64,
}

/// The cache failed in a way that matters (a miss is not an error).
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The directory cannot be used.
    #[error("compile cache {path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl CompileCache {
    /// A cache in `dir` with a size cap in bytes.
    pub fn new(dir: PathBuf, cap: u64) -> Self {
        CompileCache { dir, cap }
    }

    /// The per-user default directory, if the system has one.
    pub fn default_dir() -> Option<PathBuf> {
        dirs::cache_dir().map(|d| d.join("dlthost").join("components"))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The artifact path for `bytes` under `engine`.
    fn artifact_path(&self, engine: &Engine, bytes: &[u8]) -> PathBuf {
        let component = hex::encode(&Sha256::digest(bytes)[..16]);
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        env!("CARGO_PKG_VERSION").hash(&mut h);
        self.dir.join(format!("{component}-{:016x}.{EXT}", h.finish()))
    }

    /// Loads the compiled component for `bytes`, compiling and storing it on
    /// a miss. A cache that cannot be written only costs the compile.
    pub fn load_or_compile(&self, engine: &Engine, bytes: &[u8]) -> wasmtime::Result<(Component, CacheOutcome)> {
        let started = Instant::now();
        let path = self.artifact_path(engine, bytes);
        if let Ok(Some(Precompiled::Component)) = Engine::detect_precompiled_file(&path) {
            // SAFETY: the file is in our private cache directory, carries our
            // name for exactly these component bytes and this engine's
            // compatibility hash, and was written by `store` via an atomic
            // rename, so it is an artifact this host produced.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => {
                    touch(&path);
                    let millis = started.elapsed().as_secs_f64() * 1000.0;
                    return Ok((component, CacheOutcome { hit: true, path, millis }));
                }
                Err(e) => {
                    tracing::warn!(artifact = %path.display(), error = %e, "ignoring an unusable cached artifact")
                }
            }
        }
        let serialized = engine.precompile_component(bytes)?;
        // SAFETY: `serialized` was produced just now by this engine.
        let component = unsafe { Component::deserialize(engine, &serialized)? };
        if let Err(e) = self.store(&path, &serialized) {
            tracing::warn!(error = %e, "cannot write the compile cache; the next run compiles again");
        }
        let millis = started.elapsed().as_secs_f64() * 1000.0;
        Ok((component, CacheOutcome { hit: false, path, millis }))
    }

    /// Compiles and stores `bytes` ahead of time (`host compile`).
    pub fn fill(&self, engine: &Engine, bytes: &[u8]) -> wasmtime::Result<CacheOutcome> {
        self.load_or_compile(engine, bytes).map(|(_, outcome)| outcome)
    }

    fn ensure_dir(&self) -> Result<(), CacheError> {
        let io = |source| CacheError::Io { path: self.dir.clone(), source };
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        }
        Ok(())
    }

    fn store(&self, path: &Path, bytes: &[u8]) -> Result<(), CacheError> {
        self.ensure_dir()?;
        let io = |source| CacheError::Io { path: path.to_path_buf(), source };
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(io)?;
        std::io::Write::write_all(&mut tmp, bytes).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(path).map_err(|e| io(e.error))?;
        self.evict(path)
    }

    /// Artifacts in the cache: (path, size, last use).
    fn artifacts(&self) -> Vec<(PathBuf, u64, SystemTime)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == EXT))
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                Some((e.path(), meta.len(), meta.modified().unwrap_or(SystemTime::UNIX_EPOCH)))
            })
            .collect()
    }

    /// Deletes least recently used artifacts (never `keep`) until the cache
    /// fits its cap.
    fn evict(&self, keep: &Path) -> Result<(), CacheError> {
        let mut items = self.artifacts();
        let mut total: u64 = items.iter().map(|i| i.1).sum();
        items.sort_by_key(|i| i.2);
        for (path, size, _) in items {
            if total <= self.cap {
                break;
            }
            if path == keep {
                continue;
            }
            std::fs::remove_file(&path).map_err(|source| CacheError::Io { path: path.clone(), source })?;
            total -= size;
        }
        Ok(())
    }

    /// Deletes every artifact; returns (files, bytes) removed.
    pub fn clean(&self) -> Result<(u64, u64), CacheError> {
        let mut removed = (0, 0);
        for (path, size, _) in self.artifacts() {
            std::fs::remove_file(&path).map_err(|source| CacheError::Io { path: path.clone(), source })?;
            removed.0 += 1;
            removed.1 += size;
        }
        Ok(removed)
    }
}

/// Marks an artifact as just used (its mtime orders eviction).
fn touch(path: &Path) {
    if let Ok(f) = std::fs::File::options().write(true).open(path) {
        let _ = f.set_modified(SystemTime::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        let mut c = wasmtime::Config::new();
        c.wasm_component_model(true);
        Engine::new(&c).expect("engine")
    }

    #[test]
    fn second_load_hits_and_eviction_keeps_the_cap() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = CompileCache::new(dir.path().join("c"), DEFAULT_CAP);
        let engine = engine();
        let a = b"(component)".to_vec();
        let (_, first) = cache.load_or_compile(&engine, &a).expect("compile");
        assert!(!first.hit && first.path.exists());
        let (_, second) = cache.load_or_compile(&engine, &a).expect("load");
        assert!(second.hit);

        // A tiny cap keeps only the newest artifact.
        let small = CompileCache::new(dir.path().join("c"), 1);
        let b = b"(component (core module))".to_vec();
        let (_, third) = small.load_or_compile(&engine, &b).expect("compile");
        assert!(third.path.exists() && !first.path.exists());
        assert_eq!(small.clean().expect("clean").0, 1);
    }
}
