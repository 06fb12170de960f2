//! The podgate binary: everything lives in the library; see `cli`.

// `--features mimalloc`: see BENCHMARKS.md for whether it pays.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    podgate::cli::main()
}
