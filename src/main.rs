//! The podgate binary: everything lives in the library; see `cli`.

/// With `--features mimalloc`, mimalloc instead of glibc malloc: about a fifth fewer
/// instructions per review, but about 9 MiB more resident at idle and more at peak
/// (BENCHMARKS.md #14 has the A/B), so glibc malloc is the default.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    podgate::cli::main()
}
