//! The podgate binary: everything lives in the library; see `cli`.

/// mimalloc instead of glibc malloc: fewer instructions per allocation, and a review allocates
/// a lot (BENCHMARKS.md #14 has the A/B). `--no-default-features` keeps the system allocator.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    podgate::cli::main()
}
