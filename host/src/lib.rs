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
//! `extract` ties input → normalize → package together; `stop` is the
//! stop request every phase reads; `names` checks names from outside and
//! makes the only paths built from them; `settings` merges
//! what the sink asks for with the user's overrides; `cli` is the binary's
//! front end.

#![deny(missing_docs)]

pub mod cli;
pub mod config;
pub mod extract;
pub mod input;
pub mod ledger;
pub mod load;
pub mod names;
pub mod normalize;
pub mod package;
pub mod runtime;
pub mod schema;
pub mod settings;
pub mod stop;

/// The random double texts of the end-to-end property test
/// (`tests/src/doubles.rs`), shared with the JSON readers' unit tests.
#[cfg(test)]
#[path = "../../tests/src/doubles.rs"]
#[allow(dead_code)]
mod test_doubles;
