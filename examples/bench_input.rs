//! Prints a benchmark input from `benches/inputs` to stdout, for `benches/load.sh`.
//!
//! ```text
//! cargo run --release --example bench_input -- typical-mutate > typical-mutate.json
//! ```
//! Names: `typical-mutate`, `typical-validate`, `large-mutate`, `large-validate` (1 MiB).

#[path = "../benches/inputs/mod.rs"]
mod inputs;

use inputs::Stage;

fn main() -> std::process::ExitCode {
    let which = std::env::args().nth(1).unwrap_or_default();
    let text = match which.as_str() {
        "typical-mutate" => inputs::typical_review(Stage::Mutate),
        "typical-validate" => inputs::typical_review(Stage::Validate),
        "large-mutate" => inputs::large_review(Stage::Mutate, 1 << 20),
        "large-validate" => inputs::large_review(Stage::Validate, 1 << 20),
        other => {
            eprintln!(
                "unknown input {other:?}: typical-mutate | typical-validate | large-mutate | large-validate"
            );
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("{text}");
    std::process::ExitCode::SUCCESS
}
