//! In-process benchmarks of the pure core (criterion, `harness = false`):
//! `admission::review` of a typical Pod (validate and mutate) and of a 1 MiB Pod with the
//! shipped policies, loading a 100-policy set, the shell analysis of a 10 KB script, and the
//! `adversarial` group: the worst reviews found for the shell analysis, up to the body cap;
//! the `inline` group: the same shapes within the server's inline limit (64 KiB), reviewed with
//! `Effort::Inline` as the server's async worker does before it answers or hands off;
//! the `json_floor` group: what merely reading the same bodies as JSON costs here, whatever
//! the reader does with them (serde_json skipping every value, and building a `Value` as the
//! floor webhook does), so the review's figures have a same-run floor.
//! Inputs come from `benches/inputs` (see there for what they contain).
//!
//! ```text
//! cargo bench --bench review
//! ```

use std::hint::black_box;
use std::path::Path;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use podgate::admission::{Effort, Webhook, review, review_with};
use podgate::policy::PolicySet;

mod inputs;
use inputs::Stage;

/// The server binary's allocator (src/main.rs), so that reviews allocate here as they do there.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    json_floor(c, &cases);
}

/// The same bodies read by serde_json alone: skipped whole (`IgnoredAny`: every byte is still
/// checked to be JSON, nothing is built) and built into a `Value` (what the floor webhook of
/// benches/load.sh does). No reader that checks the body is JSON does less than the first.
fn json_floor(c: &mut Criterion, cases: &[(&str, Webhook, String, usize)]) {
    let mut group = c.benchmark_group("json_floor");
    for (name, webhook, body, _) in cases {
        let bytes = body.as_bytes();
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            eprintln!("{name} is not JSON: {e}");
            std::process::exit(1)
        }
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(format!("ignored_any/{name}/{}", webhook.as_str()), |b| {
            b.iter(|| serde_json::from_slice::<serde::de::IgnoredAny>(black_box(bytes)).is_ok())
        });
        group.bench_function(format!("value/{name}/{}", webhook.as_str()), |b| {
            b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(bytes)).is_ok())
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

/// A Pod review whose containers run `scripts` under `sh -c`, as the apiserver sends it.
fn pod_review(scripts: &[String]) -> Vec<u8> {
    let containers: Vec<serde_json::Value> = scripts
        .iter()
        .enumerate()
        .map(|(i, s)| serde_json::json!({"name": format!("c{i}"), "image": "busybox:1.36", "imagePullPolicy": "IfNotPresent", "command": ["sh", "-c", s]}))
        .collect();
    let review = serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0b4e6a4b-bef2-4d46-9a2e-7f0b2891916f",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "team-a",
            "operation": "CREATE",
            "userInfo": {"username": "mallory", "groups": ["system:authenticated"]},
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "team-a"}, "spec": {"containers": containers}},
            "oldObject": null,
            "dryRun": false
        }
    });
    serde_json::to_vec(&review).unwrap_or_default()
}

/// The worst inputs found for the shell analysis, each a whole review up to the 7 MiB body
/// cap, against the typical Pod as a baseline in the same run.
fn adversarial(c: &mut Criterion) {
    const CAP: usize = 7 << 20;
    let fill = |unit: &str, budget: usize| unit.repeat((budget / unit.len()).max(1));
    // Many distinct hosts lines through many `tee -a`.
    let lines: String = (0..50_000)
        .map(|i| {
            format!(
                "10.{}.{}.{} h{i}\\n",
                i / 65536 % 256,
                i / 256 % 256,
                i % 256
            )
        })
        .collect();
    let tee = format!("printf '{lines}'{}", " | tee -a /etc/hosts".repeat(200_000));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "typical_pod",
            inputs::typical_review(Stage::Validate).into_bytes(),
        ),
        ("many_lines_through_many_tee", pod_review(&[tee])),
        (
            "deep_nesting",
            pod_review(&[format!(
                "{}echo x >> /etc/hosts{}",
                "{ ( $( ".repeat(400_000),
                " ) ) }".repeat(400_000)
            )]),
        ),
        (
            "generated_script_amplification",
            pod_review(&[fill(
                "printf 'echo %s >> /etc/hosts; X=$X$X\\n' a b c d e f g h | sh\n",
                CAP - CAP / 8,
            )]),
        ),
        (
            "thousands_of_containers",
            pod_review(&vec![
                fill(
                    "echo 10.0.0.1 db | tee -a /etc/hosts; cd /etc; ",
                    1200
                );
                5000
            ]),
        ),
        (
            "largest_body_plain_script",
            pod_review(&[fill(
                "if [ -f /x ]; then cp /a /tmp/b; fi; for i in 1 2; do echo $i; done\n",
                CAP - CAP / 8,
            )]),
        ),
    ];
    // `PODGATE_BENCH_DUMP=DIR` writes each input to DIR/NAME.json and stops, so that each can be
    // reviewed in its own process for its peak RSS (`/usr/bin/time -v podgate review FILE`).
    if let Some(dir) = std::env::var_os("PODGATE_BENCH_DUMP") {
        for (name, body) in &cases {
            let path = Path::new(&dir).join(format!("{name}.json"));
            if let Err(e) = std::fs::write(&path, body) {
                eprintln!("{}: {e}", path.display());
                std::process::exit(1)
            }
        }
        std::process::exit(0)
    }
    let set = shipped();
    let mut group = c.benchmark_group("adversarial");
    group.sample_size(10);
    for (name, body) in &cases {
        if body.len() > CAP {
            eprintln!("{name}: {} bytes is over the body cap", body.len());
            std::process::exit(1)
        }
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(*name, |b| {
            b.iter(
                || match review(&set, black_box(body), Webhook::Validate, now()) {
                    Ok(r) => r.summary.allowed,
                    Err(e) => {
                        eprintln!("{name}: {e}");
                        std::process::exit(1)
                    }
                },
            )
        });
    }
    group.finish();
}

/// What an inline attempt costs the async worker, whatever its outcome (answered, or cut and
/// handed to the pool), on the adversarial shapes at the server's inline limit. Each iteration
/// gets scripts no earlier one had (a leading `: N` line), so the memo never answers: this is
/// the cold cost.
fn inline(c: &mut Criterion) {
    const LIMIT: usize = 64 << 10;
    let fill = |unit: &str, budget: usize| unit.repeat((budget / unit.len()).max(1));
    let lines: String = (0..500)
        .map(|i| format!("10.0.{}.{} h{i}\\n", i / 256, i % 256))
        .collect();
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("typical_script", vec![inputs::long_script(1024)]),
        (
            "many_lines_through_many_tee",
            vec![format!(
                "printf '{lines}'{}",
                " | tee -a /etc/hosts".repeat(2_000)
            )],
        ),
        (
            "deep_nesting",
            vec![format!(
                "{}echo x >> /etc/hosts{}",
                "{ ( $( ".repeat(4_000),
                " ) ) }".repeat(4_000)
            )],
        ),
        (
            "generated_script_amplification",
            vec![fill(
                "printf 'echo %s >> /etc/hosts; X=$X$X\\n' a b c d e f g h | sh\n",
                56 << 10,
            )],
        ),
        (
            "many_containers",
            vec![fill("echo 10.0.0.1 db | tee -a /etc/hosts; cd /etc; ", 1200); 45],
        ),
        (
            "plain_script_8KiB",
            vec![fill(
                "if [ -f /x ]; then cp /a /tmp/b; fi; for i in 1 2; do echo $i; done\n",
                8 << 10,
            )],
        ),
        (
            "many_typical_scripts",
            (0..24)
                .map(|i| format!("# {i}\n{}", inputs::long_script(2 << 10)))
                .collect(),
        ),
        (
            "plain_script",
            vec![fill(
                "if [ -f /x ]; then cp /a /tmp/b; fi; for i in 1 2; do echo $i; done\n",
                56 << 10,
            )],
        ),
    ];
    let set = shipped();
    let mut group = c.benchmark_group("inline");
    group.sample_size(20);
    for (name, scripts) in &cases {
        let variant = |n: u64| {
            let scripts: Vec<String> = scripts.iter().map(|s| format!(": {n}\n{s}")).collect();
            pod_review(&scripts)
        };
        let body = variant(0);
        if body.len() > LIMIT {
            eprintln!("{name}: {} bytes is over the inline limit", body.len());
            std::process::exit(1)
        }
        let cut = review_with(&set, &body, Webhook::Validate, now(), Effort::Inline)
            .map(|r| r.summary.cut);
        eprintln!("inline/{name}: {} bytes, cut: {cut:?}", body.len());
        let mut n = 0u64;
        group.bench_function(*name, |b| {
            b.iter_batched(
                || {
                    n += 1;
                    variant(n)
                },
                |body| {
                    review_with(
                        &set,
                        black_box(&body),
                        Webhook::Validate,
                        now(),
                        Effort::Inline,
                    )
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, reviews, policy_load, shell, adversarial, inline);
criterion_main!(benches);
