//! The cost of the evaluation pool's hand-off (#9: evaluation never runs on the async workers):
//! a typical review answered inline on the runtime, against the same review handed to the
//! blocking pool the way `server::app` does it (a semaphore slot, `spawn_blocking`, the join),
//! in the same run. The `empty` pair isolates the hand-off itself.
//!
//! ```text
//! cargo bench --bench pool
//! ```

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use podgate::admission::{Webhook, review};
use podgate::policy::PolicySet;

mod inputs;
use inputs::Stage;

fn shipped() -> Arc<PolicySet> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    match PolicySet::load_dir(&dir) {
        Ok(set) => Arc::new(set),
        Err(e) => {
            eprintln!("loading {}: {e}", dir.display());
            std::process::exit(1)
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    // As `podgate serve` builds it: one worker per core.
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            std::process::exit(1)
        }
    }
}

fn handoff(c: &mut Criterion) {
    let set = shipped();
    let rt = runtime();
    let slots = Arc::new(tokio::sync::Semaphore::new(2));
    let now = jiff::Timestamp::from_second(1_795_000_000).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let mut group = c.benchmark_group("handoff");
    for (name, stage, webhook) in [
        ("validate", Stage::Validate, Webhook::Validate),
        ("mutate", Stage::Mutate, Webhook::Mutate),
    ] {
        let body = bytes::Bytes::from(inputs::typical_review(stage));
        group.bench_function(format!("{name}/inline"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let r = review(&set, black_box(&body), webhook, now);
                    r.map(|r| r.body.len()).unwrap_or(0)
                })
            });
        });
        group.bench_function(format!("{name}/pool"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let Ok(permit) = slots.clone().acquire_owned().await else {
                        return 0;
                    };
                    let (set, body) = (set.clone(), body.clone());
                    tokio::task::spawn_blocking(move || {
                        let _permit = permit;
                        let r = review(&set, black_box(&body), webhook, now);
                        r.map(|r| r.body.len()).unwrap_or(0)
                    })
                    .await
                    .unwrap_or(0)
                })
            });
        });
    }
    group.bench_function("empty/inline", |b| {
        b.iter(|| rt.block_on(async { black_box(1usize) }));
    });
    group.bench_function("empty/pool", |b| {
        b.iter(|| {
            rt.block_on(async {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    return 0;
                };
                tokio::task::spawn_blocking(move || {
                    let _permit = permit;
                    black_box(1usize)
                })
                .await
                .unwrap_or(0)
            })
        });
    });
    group.finish();
}

criterion_group!(benches, handoff);
criterion_main!(benches);
