//! The `host` binary: see `host --help`.

/// Normalizing allocates a few short strings and vectors per row on one
/// thread and frees them on another; mimalloc does that faster than the
/// system allocator (measured in `benches/stages.rs`, which uses it too).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    host::cli::main()
}
