//! Runs `admission::review` on one benchmark input many times, for profilers that count
//! instructions (valgrind --tool=callgrind) or sample (perf record), where criterion's own
//! work would get in the way.
//!
//! ```text
//! cargo build --release --example profile_review
//! valgrind --tool=callgrind target/release/examples/profile_review typical-mutate 200
//! ```
//! Inputs: `typical-mutate`, `typical-validate`, `large-mutate`, `large-validate`; the webhook
//! is the input's stage. Iterations default to 1000. A third argument `skim` runs, instead of
//! the review, serde_json over the same body skipping every value (`IgnoredAny`): what any
//! reader that checks the body is JSON costs at least, for a same-machine floor.

#[path = "../benches/inputs/mod.rs"]
mod inputs;

use std::hint::black_box;
use std::path::Path;

use inputs::Stage;

/// The server binary's allocator (src/main.rs), so that reviews allocate here as they do there.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use podgate::admission::{Webhook, review};
use podgate::policy::PolicySet;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_default();
    let iterations: u64 = args.next().map_or(Ok(1000), |n| n.parse())?;
    let skim = match args.next().as_deref() {
        None => false,
        Some("skim") => true,
        Some(other) => anyhow::bail!("unknown mode {other:?} (only \"skim\")"),
    };
    let (body, webhook) = match which.as_str() {
        "typical-mutate" => (inputs::typical_review(Stage::Mutate), Webhook::Mutate),
        "typical-validate" => (inputs::typical_review(Stage::Validate), Webhook::Validate),
        "large-mutate" => (
            inputs::large_review(Stage::Mutate, 1 << 20),
            Webhook::Mutate,
        ),
        "large-validate" => (
            inputs::large_review(Stage::Validate, 1 << 20),
            Webhook::Validate,
        ),
        other => anyhow::bail!("unknown input {other:?}"),
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let set = PolicySet::load_dir(&dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    let now = jiff::Timestamp::from_second(1_795_000_000)?;
    let started = std::time::Instant::now();
    let mut bytes = 0;
    for _ in 0..iterations {
        if skim {
            let _: serde::de::IgnoredAny = serde_json::from_slice(black_box(body.as_bytes()))?;
            continue;
        }
        let r = review(&set, black_box(body.as_bytes()), webhook, now)?;
        bytes += black_box(r.body).len();
    }
    let per = started.elapsed() / u32::try_from(iterations.max(1))?;
    eprintln!("{which}: {iterations} reviews, {per:?} each, {bytes} bytes out");
    Ok(())
}
