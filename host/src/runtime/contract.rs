//! The contract this binary implements, as WIT text, for `host wit`: a
//! sink project gets it from the binary, not from a checkout.
//!
//! `wit/destination.wit` is the contract; `host/wit/wasi/` holds the wasi
//! 0.2 packages of the `wasmtime-wasi-http` crate the host is built with
//! (copied byte for byte; `tests/tests/all/contract.rs` compares them with
//! the crate's), for sinks whose world imports `wasi:http`.

/// `wit/destination.wit`: package `dlthost:destination`, world `destination`.
pub const DESTINATION_WIT: &str = include_str!("../../../wit/destination.wit");

/// The wasi 0.2 packages the host implements, by file name.
pub const WASI_WIT: [(&str, &str); 7] = [
    ("cli.wit", include_str!("../../wit/wasi/cli.wit")),
    ("clocks.wit", include_str!("../../wit/wasi/clocks.wit")),
    ("filesystem.wit", include_str!("../../wit/wasi/filesystem.wit")),
    ("http.wit", include_str!("../../wit/wasi/http.wit")),
    ("io.wit", include_str!("../../wit/wasi/io.wit")),
    ("random.wit", include_str!("../../wit/wasi/random.wit")),
    ("sockets.wit", include_str!("../../wit/wasi/sockets.wit")),
];

/// The first `package` line's name and version in `wit` (`dlthost:destination@0.1.0`).
pub fn package_of(wit: &str) -> Option<&str> {
    wit.lines().find_map(|l| l.trim().strip_prefix("package ")).map(|p| p.trim_end_matches(';').trim())
}

/// The files of the contract, by path relative to a `wit/` directory:
/// `destination.wit` alone, or, for a sink that calls an HTTP API
/// (`http_world` names its world), `world.wit` with the packages it uses in
/// `deps/` (the destination package and the wasi ones the host implements).
pub fn wit_files(http_world_name: Option<&str>) -> Vec<(String, String)> {
    let Some(world) = http_world_name else {
        return vec![("destination.wit".into(), DESTINATION_WIT.into())];
    };
    let mut files = vec![("deps/destination/destination.wit".to_string(), DESTINATION_WIT.to_string())];
    files.extend(WASI_WIT.iter().map(|(name, text)| (format!("deps/{name}"), text.to_string())));
    files.push(("world.wit".into(), http_world(world)));
    files
}

/// A world for a sink that calls an HTTP API: the destination world plus
/// `wasi:http/outgoing-handler`, at the versions this binary implements.
pub fn http_world(world: &str) -> String {
    let destination = package_of(DESTINATION_WIT).unwrap_or("dlthost:destination");
    let http = WASI_WIT.iter().find(|(name, _)| *name == "http.wit").and_then(|(_, wit)| package_of(wit));
    let (http_package, http_version) = http.and_then(|p| p.split_once('@')).unwrap_or(("wasi:http", "0.2.0"));
    let (destination_package, destination_version) = destination.split_once('@').unwrap_or((destination, "0.1.0"));
    format!(
        "// The world of a sink that calls an HTTP API: the destination world plus\n\
         // outgoing HTTP, which the host allows per origin (--allow-host).\n\
         // Written by `host wit --http`; deps/ holds the packages it uses.\n\
         package local:{world};\n\n\
         world {world} {{\n    include {destination_package}/destination@{destination_version};\n    import {http_package}/outgoing-handler@{http_version};\n}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_and_the_http_world() {
        assert_eq!(package_of(DESTINATION_WIT), Some("dlthost:destination@0.1.0"));
        let world = http_world("my-sink");
        assert!(world.contains("include dlthost:destination/destination@0.1.0;"), "{world}");
        assert!(world.contains("import wasi:http/outgoing-handler@0.2.12;"), "{world}");
        assert!(WASI_WIT.iter().all(|(_, wit)| package_of(wit).is_some_and(|p| p.starts_with("wasi:"))));
    }
}
