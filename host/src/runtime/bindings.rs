//! Rust types generated from `wit/destination.wit`. Generated code stays in
//! this module; the rest of the host converts to and from these types in
//! `runtime::convert`.

#![allow(missing_docs, reason = "generated from the WIT, whose doc comments are the documentation")]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "destination",
    additional_derives: [PartialEq],
});

pub use dlthost::destination::config::Host as ConfigHost;
