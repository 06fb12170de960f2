//! The podgate binary: everything lives in the library; see `cli`.

fn main() -> std::process::ExitCode {
    podgate::cli::main()
}
