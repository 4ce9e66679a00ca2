//! Shards: COUNT processes (a Kubernetes Indexed Job, a loop of `&`s)
//! each load a deterministic share of the same input files.
//!
//! A file belongs to shard `hash(path) mod COUNT`, the path as given on
//! the command line without `./` components, so every file belongs to
//! exactly one shard whatever order the files are listed in. Each shard
//! keeps its own state under `<pipeline>/shards/<INDEX>-of-<COUNT>`: its own
//! lock, ledger, packages and schema. Its load ids are `INDEX` modulo
//! `COUNT` (in 100 ns ticks), so no two shards share a load id, and with it
//! no idempotency key and no `_dlt_id`. Settings and the environment use
//! the pipeline's own name.

use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use super::PipelineError;
use crate::extract::InputSpec;
use crate::input::InputSource;

/// The environment variable a Kubernetes Indexed Job sets to the pod's index.
pub const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// One shard of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 0-based, below `count`.
    pub index: u32,
    /// How many shards share the input.
    pub count: u32,
}

impl Shard {
    /// `INDEX/COUNT`, e.g. `2/4`.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (index, count) = text.split_once('/').ok_or_else(|| format!("`{text}` is not INDEX/COUNT (e.g. 0/4)"))?;
        let count = parse_count(count)?;
        Shard::new(index, count, "the shard index")
    }

    /// Shard `index` (text, e.g. from `JOB_COMPLETION_INDEX`) of `count`.
    pub fn new(index: &str, count: u32, what: &str) -> Result<Shard, String> {
        let index: u32 = index
            .trim()
            .parse()
            .map_err(|_| format!("{what} `{index}` is not a number from 0 to {}", count.saturating_sub(1)))?;
        if index >= count {
            return Err(format!("{what} {index} is not below the shard count {count}"));
        }
        Ok(Shard { index, count })
    }

    /// `--shard-count COUNT`: the index from `JOB_COMPLETION_INDEX`.
    pub fn from_environment(count: u32, index: Option<&str>) -> Result<Shard, String> {
        match index {
            Some(index) => Shard::new(index, count, INDEX_ENV),
            None => Err(format!(
                "--shard-count takes the shard's index from {INDEX_ENV}, which is not set; pass --shard INDEX/{count} instead"
            )),
        }
    }

    /// The directory name of its state: `INDEX-of-COUNT`.
    pub fn dir_name(&self) -> String {
        format!("{}-of-{}", self.index, self.count)
    }

    /// True when `path` belongs to this shard.
    pub fn owns(&self, path: &Path) -> bool {
        shard_of(path, self.count) == self.index
    }

    /// The inputs of this shard, in the order given. Stdin cannot be
    /// shared out.
    pub fn select(&self, inputs: Vec<InputSpec>) -> Result<Vec<InputSpec>, PipelineError> {
        let mut mine = Vec::new();
        for input in inputs {
            match &input.source {
                InputSource::Stdin => {
                    return Err(PipelineError::Usage(
                        "stdin cannot be sharded: shards share out input files; pass files with --input".into(),
                    ));
                }
                InputSource::File(path) if self.owns(path) => mine.push(input),
                InputSource::File(_) => {}
            }
        }
        Ok(mine)
    }

    /// The first load id at or after `ticks` (100 ns since the epoch) that
    /// is this shard's: `index` modulo `count`.
    pub fn load_id_ticks(&self, ticks: u64) -> u64 {
        let count = u64::from(self.count);
        let rest = (u64::from(self.index) + count - ticks % count) % count;
        ticks + rest
    }
}

fn parse_count(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("the shard count `{text}` is not a number of at least 1")),
    }
}

/// The shard of `path` among `count`: the first 8 bytes of the SHA-256 of
/// its text without `.` components, modulo `count`.
pub fn shard_of(path: &Path, count: u32) -> u32 {
    let plain: PathBuf = path.components().filter(|c| *c != Component::CurDir).collect();
    let digest = Sha256::digest(plain.to_string_lossy().as_bytes());
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(head) % u64::from(count)) as u32
}

/// Where the state of `shard` of pipeline `pipeline_root` lives.
pub fn shard_dir(pipeline_root: &Path) -> PathBuf {
    pipeline_root.join("shards")
}

/// Refuses a run whose files could be sent twice: a shard count other than
/// one with pending packages, or a sharded run next to unsharded pending
/// packages (and the other way round). `shard` is this run's.
pub fn check_layout(pipeline_root: &Path, shard: Option<Shard>) -> Result<(), PipelineError> {
    let pending = |root: &Path| {
        std::fs::read_dir(root.join("load/normalized")).map(|mut entries| entries.next().is_some()).unwrap_or(false)
    };
    let mine = shard.map(|s| s.dir_name());
    if shard.is_some() && pending(pipeline_root) {
        return Err(PipelineError::Usage(format!(
            "{} has pending packages of an unsharded run; finish them first with the same command without --shard",
            pipeline_root.display()
        )));
    }
    let Ok(entries) = std::fs::read_dir(shard_dir(pipeline_root)) else { return Ok(()) };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let other_count = name.split_once("-of-").and_then(|(_, c)| c.parse::<u32>().ok());
        let same_count = match (shard, other_count) {
            (Some(s), Some(c)) => c == s.count,
            _ => false,
        };
        if Some(&name) != mine.as_ref() && !same_count && pending(&entry.path()) {
            let how = match other_count {
                Some(c) => format!("with --shard {}/{c}", name.split_once("-of-").map_or("?", |(i, _)| i)),
                None => "with its own shard flags".into(),
            };
            return Err(PipelineError::Usage(format!(
                "shard {name} has pending packages; with another shard count its files would move to other shards and be sent twice. Finish it first ({how}), then change the count"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing() {
        assert_eq!(Shard::parse("2/4"), Ok(Shard { index: 2, count: 4 }));
        assert!(Shard::parse("4/4").is_err_and(|e| e.contains("not below")));
        assert!(Shard::parse("1").is_err());
        assert!(Shard::parse("0/0").is_err());
        assert!(Shard::parse("x/2").is_err());
        assert_eq!(Shard::from_environment(3, Some("1")), Ok(Shard { index: 1, count: 3 }));
        assert!(Shard::from_environment(3, None).is_err_and(|e| e.contains(INDEX_ENV)));
        assert!(Shard::from_environment(3, Some("3")).is_err());
    }

    /// Every file belongs to exactly one shard, whatever the order or the
    /// `./` it is written with, and shares are not lopsided.
    #[test]
    fn every_file_has_exactly_one_shard() {
        let paths: Vec<PathBuf> = (0..400).map(|i| PathBuf::from(format!("data/part-{i:03}.jsonl"))).collect();
        let mut sizes = [0usize; 4];
        for p in &paths {
            let owners: Vec<u32> = (0..4).filter(|i| Shard { index: *i, count: 4 }.owns(p)).collect();
            assert_eq!(owners.len(), 1, "{}", p.display());
            sizes[owners[0] as usize] += 1;
            assert_eq!(shard_of(&Path::new(".").join(p), 4), owners[0], "`./` does not move a file");
        }
        assert!(sizes.iter().all(|n| (60..=140).contains(n)), "{sizes:?}");
    }

    #[test]
    fn load_ids_of_shards_never_meet() {
        for ticks in [0u64, 1, 17_000_000_123, u64::from(u32::MAX)] {
            let ids: Vec<u64> = (0..5).map(|i| Shard { index: i, count: 5 }.load_id_ticks(ticks)).collect();
            for (i, id) in ids.iter().enumerate() {
                assert!(*id >= ticks && *id < ticks + 5, "{ticks}: {id}");
                assert_eq!(id % 5, i as u64);
            }
        }
    }

    #[test]
    fn another_count_with_pending_packages_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("orders");
        let pending = shard_dir(&root).join("1-of-3").join("load/normalized/1700000000.0000001");
        std::fs::create_dir_all(&pending).expect("mkdir");
        let three = Shard { index: 0, count: 3 };
        assert!(check_layout(&root, Some(three)).is_ok(), "the same count");
        let err = check_layout(&root, Some(Shard { index: 0, count: 4 })).expect_err("another count");
        assert!(err.to_string().contains("--shard 1/3"), "{err}");
        assert!(check_layout(&root, None).is_err(), "unsharded next to pending shards");
        std::fs::remove_dir(&pending).expect("rm");
        assert!(check_layout(&root, Some(Shard { index: 0, count: 4 })).is_ok(), "nothing pending");
        std::fs::create_dir_all(root.join("load/normalized/1700000000.0000002")).expect("mkdir");
        assert!(check_layout(&root, Some(three)).is_err(), "sharded next to unsharded pending");
    }
}
