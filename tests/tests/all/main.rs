//! End-to-end tests: the real `host` binary loading fixture files into the
//! example sinks built from `guest-examples/`.

mod cli;
mod clickhouse;
mod compat;
mod config;
mod contract;
mod csv;
mod deploy;
mod destinations;
mod docs;
mod doubles;
mod errors;
mod formats;
mod golden;
mod hostile;
mod http;
mod languages;
mod library;
mod load;
mod metrics;
mod new_project;
mod operator;
mod packages;
mod postgres;
mod print;
mod resume;
mod sandbox;
mod shards;
mod tcp;
mod test_sink;
mod traces;
