//! In-process benchmarks of the pure core (criterion, `harness = false`):
//! `admission::review` of a typical Pod (validate and mutate) and of a 1 MiB Pod with the
//! shipped policies, loading a 100-policy set, and the shell analysis of a 10 KB script.
//! Inputs come from `benches/inputs` (see there for what they contain).
//!
//! ```text
//! cargo bench --bench review
//! ```

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use podgate::admission::{Webhook, review};
use podgate::policy::PolicySet;

mod inputs;
use inputs::Stage;

fn now() -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_795_000_000).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

fn shipped() -> PolicySet {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    match PolicySet::load_dir(&dir) {
        Ok(set) => set,
        Err(e) => {
            eprintln!("loading {}: {e}", dir.display());
            std::process::exit(1)
        }
    }
}

/// Runs one review and checks it said what the bench expects, so a regression in behaviour
/// does not show up as a speed-up.
fn check(set: &PolicySet, body: &[u8], webhook: Webhook, patch_ops: usize) {
    match review(set, body, webhook, now()) {
        Ok(r) if r.summary.allowed && r.summary.patch_ops == patch_ops => {}
        Ok(r) => {
            eprintln!(
                "unexpected answer for {webhook:?}: {}",
                String::from_utf8_lossy(&r.body)
            );
            std::process::exit(1)
        }
        Err(e) => {
            eprintln!("review failed for {webhook:?}: {e}");
            std::process::exit(1)
        }
    }
}

fn reviews(c: &mut Criterion) {
    let set = shipped();
    let cases = [
        (
            "typical_pod",
            Webhook::Validate,
            inputs::typical_review(Stage::Validate),
            0,
        ),
        (
            "typical_pod",
            Webhook::Mutate,
            inputs::typical_review(Stage::Mutate),
            1,
        ),
        (
            "1MiB_pod",
            Webhook::Validate,
            inputs::large_review(Stage::Validate, 1 << 20),
            0,
        ),
        (
            "1MiB_pod",
            Webhook::Mutate,
            inputs::large_review(Stage::Mutate, 1 << 20),
            1,
        ),
    ];
    let mut group = c.benchmark_group("review");
    for (name, webhook, body, ops) in &cases {
        check(&set, body.as_bytes(), *webhook, *ops);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(format!("{name}/{}", webhook.as_str()), |b| {
            b.iter(|| review(&set, black_box(body.as_bytes()), *webhook, now()))
        });
    }
    group.finish();
}

fn policy_load(c: &mut Criterion) {
    let sources = inputs::policy_sources(100);
    if let Err(e) = PolicySet::from_sources(&sources) {
        eprintln!("100 generated policies do not load: {e}");
        std::process::exit(1)
    }
    c.bench_function("policy_set/from_sources_100", |b| {
        b.iter(|| PolicySet::from_sources(black_box(&sources)))
    });
}

fn shell(c: &mut Criterion) {
    let script = inputs::long_script(10 * 1024);
    let argv = vec!["sh".to_string(), "-c".to_string(), script.clone()];
    let with_write = vec![
        "sh".to_string(),
        "-c".to_string(),
        format!("{script}echo '10.0.0.7 db.internal' >> /etc/hosts\n"),
    ];
    let mut group = c.benchmark_group("shell");
    group.throughput(Throughput::Bytes(script.len() as u64));
    group.bench_function("find_hosts_writes_10KiB/clean", |b| {
        b.iter(|| podgate::rules::shell::find_hosts_writes(black_box(&argv), true))
    });
    group.bench_function("find_hosts_writes_10KiB/write_at_end", |b| {
        b.iter(|| podgate::rules::shell::find_hosts_writes(black_box(&with_write), true))
    });
    group.finish();
}

criterion_group!(benches, reviews, policy_load, shell);
criterion_main!(benches);
