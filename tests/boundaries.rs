#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! The server's boundaries, through the real `podgate serve` binary over TLS: what it logs
//! about the policies it loads, reviews that run out of time, and a full evaluation pool.

mod common;
#[path = "common/hostile.rs"]
mod hostile_helpers;

use common::*;
use hostile_helpers::*;
use std::time::Duration;

const HOSTS_FILE: &str = "apiVersion: podgate.dev/v1alpha1
kind: PodPolicy
metadata: {name: hosts}
spec:
  validate:
    hostsFile: {}
";

const LABEL_EXEMPTION: &str = "apiVersion: podgate.dev/v1alpha1
kind: PodPolicy
metadata: {name: hosts}
spec:
  validate:
    hostsFile: {}
  exemptions:
    - podSelector: {matchLabels: {podgate-exempt: \"yes\"}}
      reason: legacy apps
";

fn warnings_in(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("policy warning"))
        .collect()
}

#[tokio::test]
async fn server_logs_loader_warnings_at_load_and_at_reload() {
    let layout = Layout::new(&[("hosts.yaml", LABEL_EXEMPTION)]);
    let mut server = spawn_ready(&layout, &["--reload-interval", "200ms"], "warnings").await;
    let log = server.log_text();
    let at_load = warnings_in(&log);
    assert_eq!(at_load.len(), 1, "{log}");
    assert!(
        at_load[0].contains("hosts.yaml:8:7: warning: exemption relies only on podSelector"),
        "{}",
        at_load[0]
    );
    assert!(at_load[0].contains("\"level\":\"WARN\""), "{}", at_load[0]);

    // A reload to a set without the exemption logs nothing more; one with it again does.
    layout.publish_policies(&[("hosts.yaml", HOSTS_FILE)]);
    let reloaded = wait_until(Duration::from_secs(20), async || {
        server.log_text().contains("policy set reloaded")
    })
    .await;
    assert!(reloaded.is_some(), "{}", server.log_text());
    assert_eq!(warnings_in(&server.log_text()).len(), 1);
    layout.publish_policies(&[("hosts.yaml", LABEL_EXEMPTION)]);
    let warned_again = wait_until(Duration::from_secs(20), async || {
        warnings_in(&server.log_text()).len() == 2
    })
    .await;
    assert!(warned_again.is_some(), "{}", server.log_text());
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(30)).await;
}

const ENFORCE_AND_WARN: &str = "apiVersion: podgate.dev/v1alpha1
kind: PodPolicy
metadata: {name: strict}
spec:
  validate:
    hostsFile: {}
---
apiVersion: podgate.dev/v1alpha1
kind: PodPolicy
metadata: {name: lenient}
spec:
  action: Warn
  validate:
    hostsFile: {}
";

const WARN_ONLY: &str = "apiVersion: podgate.dev/v1alpha1
kind: PodPolicy
metadata: {name: lenient}
spec:
  action: Warn
  validate:
    hostsFile: {}
";

/// A review that cannot finish in time (the server allows no evaluation time at all) is
/// answered by the policies' actions, over real TLS, within the deadline, and counted.
#[tokio::test]
async fn reviews_past_the_deadline_are_answered_by_the_policies_actions() {
    for (policies, denied) in [(ENFORCE_AND_WARN, true), (WARN_ONLY, false)] {
        let layout = Layout::new(&[("p.yaml", policies)]);
        let server = spawn_ready(&layout, &["--max-evaluation-time", "0s"], "deadline").await;
        let ca = layout.pki.ca_pem.clone();
        let client = client(&[&ca], Proto::Http1, None, true);
        let body = pod_review("9d1c0d2e-0000-4000-8000-000000000001", false);
        let started = std::time::Instant::now();
        let reply = post_review(
            &client,
            &https(server.addr, "/validate?timeout=5s"),
            body.clone(),
        )
        .await
        .unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
        let answer = assert_contract(&body, &reply, Hook::Validate);
        let r = &answer["response"];
        assert_eq!(r["uid"], "9d1c0d2e-0000-4000-8000-000000000001");
        assert_eq!(r["allowed"], !denied, "{r}");
        let warnings = r["warnings"].to_string();
        assert!(
            warnings.contains("[lenient] podgate could not finish checking this request"),
            "{r}"
        );
        if denied {
            let message = r["status"]["message"].as_str().unwrap();
            assert!(
                message.contains("[strict] podgate could not finish checking this request:")
                    && message.contains("did not finish within its 0 ms deadline")
                    || message.contains("no evaluation slot came free within its 0 ms deadline"),
                "{message}"
            );
        }
        // The mutating webhook fails open, and these policies do not mutate.
        let reply = post_review(
            &client,
            &https(server.addr, "/mutate?timeout=5s"),
            body.clone(),
        )
        .await
        .unwrap();
        let answer = assert_contract(&body, &reply, Hook::Mutate);
        assert_eq!(answer["response"]["allowed"], true);
        let counted = metric(
            server.probe,
            "podgate_evaluation_deadline_exceeded_total{webhook=\"validate\",stage=\"evaluation\"}",
        )
        .await
            + metric(
                server.probe,
                "podgate_evaluation_deadline_exceeded_total{webhook=\"validate\",stage=\"queue\"}",
            )
            .await;
        assert_eq!(counted, 1.0, "{}", server.log_text());
    }
}

/// A Pod review whose one container runs a plain script of about `len` bytes (its own for each
/// uid): costly to analyse (every line is a command), harmless (no line writes a hosts file).
fn heavy_review(uid: &str, len: usize) -> Vec<u8> {
    let mut review: serde_json::Value = serde_json::from_slice(&pod_review(uid, false)).unwrap();
    let mut script = String::with_capacity(len + 64);
    let mut i = 0u64;
    while script.len() < len {
        script.push_str(&format!(
            "echo \"{uid} {i}\" >> /tmp/log-{}; cd /tmp\n",
            i % 97
        ));
        i += 1;
    }
    let container = &mut review["request"]["object"]["spec"]["containers"][0];
    container["command"] = serde_json::json!(["sh", "-c", script]);
    serde_json::to_vec(&review).unwrap()
}

/// A saturated pool over real TLS: with one evaluation slot and a short evaluation time,
/// concurrent costly reviews are each answered by the policy's action within the deadline,
/// whether they got the slot or waited for it, never queued behind each other; a small review
/// sent meanwhile is answered the same way and the probes stay responsive; once the costly
/// evaluations end (a slot is held until its evaluation really ends), reviews are evaluated
/// again.
#[tokio::test]
async fn a_saturated_pool_answers_every_review_within_its_deadline() {
    let layout = Layout::new(&[("p.yaml", HOSTS_FILE)]);
    // Every review goes through the pool here; the inline path is the next test's.
    let server = spawn_ready(
        &layout,
        &[
            "--evaluation-slots",
            "1",
            "--max-evaluation-time",
            "20ms",
            "--inline-max-body",
            "0",
        ],
        "saturated",
    )
    .await;
    assert!(
        server.log_text().contains("\"evaluation_slots\":1"),
        "{}",
        server.log_text()
    );
    let ca = layout.pki.ca_pem.clone();
    let client = client(&[&ca], Proto::Http1, None, true);
    let url = https(server.addr, "/validate?timeout=10s");

    const HEAVY: usize = 6;
    let mut tasks = Vec::new();
    for n in 0..HEAVY {
        let (client, url) = (client.clone(), url.clone());
        let uid = format!("5a7e0000-0000-4000-8000-00000000000{n}");
        let body = heavy_review(&uid, 5 << 20);
        tasks.push(tokio::spawn(async move {
            let started = std::time::Instant::now();
            let reply = post_review(&client, &url, body.clone()).await.unwrap();
            (uid, body, reply, started.elapsed())
        }));
    }
    let queue = "podgate_evaluation_deadline_exceeded_total{webhook=\"validate\",stage=\"queue\"}";
    let evaluation =
        "podgate_evaluation_deadline_exceeded_total{webhook=\"validate\",stage=\"evaluation\"}";
    // While the first costly review holds the slot past its deadline (it keeps the slot until
    // its evaluation really ends, a second or more in a debug build): the probe answers at
    // once, and a small review waits at most its deadline for the slot.
    let holding = wait_until(Duration::from_secs(60), async || {
        metric(server.probe, evaluation).await >= 1.0
    })
    .await;
    assert!(holding.is_some(), "{}", server.log_text());
    let probed = std::time::Instant::now();
    let (status, _) = probe_get(server.probe, "/healthz").await.expect("healthz");
    assert_eq!(status, 200);
    assert!(
        probed.elapsed() < Duration::from_secs(2),
        "{:?}",
        probed.elapsed()
    );
    // A small review sent now finds the slot taken and is answered at its deadline; should
    // the holder have just finished (a slow machine stretches everything), it is evaluated
    // and the next try finds the slot taken by the next costly review.
    let mut small_queued = None;
    for attempt in 0..50u8 {
        let small = pod_review(
            &format!("5a7e0000-0000-4000-8000-0000000001{attempt:02x}"),
            false,
        );
        let sent = std::time::Instant::now();
        let reply = post_review(&client, &url, small.clone()).await.unwrap();
        let waited = sent.elapsed();
        let answer = assert_contract(&small, &reply, Hook::Validate);
        if answer["response"]["allowed"] == true {
            continue;
        }
        let message = answer["response"]["status"]["message"].to_string();
        // One deadline covers the wait and the evaluation: a slot that came free late leaves
        // too little time to finish.
        assert!(
            message.contains("no evaluation slot came free within its 20 ms deadline")
                || message.contains("the analysis did not finish within its 20 ms deadline"),
            "{answer}"
        );
        small_queued = Some((attempt, waited));
        break;
    }
    let (attempts, waited) = small_queued.expect("no small review found the slot taken");
    assert!(waited < Duration::from_secs(5), "{waited:?}");

    for task in tasks {
        let (uid, body, reply, took) = task.await.unwrap();
        let answer = assert_contract(&body, &reply, Hook::Validate);
        let r = &answer["response"];
        assert_eq!(r["uid"], uid.as_str());
        assert_eq!(r["allowed"], false, "{r}");
        let message = r["status"]["message"].as_str().unwrap();
        assert!(
            message.contains("[hosts] podgate could not finish checking this request"),
            "{message}"
        );
        // Each answer says the review was not finished: none waited for the others to be
        // evaluated. The time (upload and TLS of 5 MiB in a debug build on a busy machine, plus
        // the deadline) only guards against a hang.
        assert!(took < Duration::from_secs(30), "{uid} took {took:?}");
    }
    let (queued, late) = (
        metric(server.probe, queue).await,
        metric(server.probe, evaluation).await,
    );
    assert_eq!(queued + late, HEAVY as f64 + 1.0, "{}", server.log_text());
    assert!(attempts < 50);
    assert!(queued >= 1.0, "no review waited for the one slot");
    assert!(late >= 1.0, "no review ran past its deadline");

    // The slot comes free when the evaluations end; then a small review is evaluated.
    let small = pod_review("5a7e0000-0000-4000-8000-0000000000ff", false);
    let evaluated = wait_until(Duration::from_secs(120), async || {
        let reply = post_review(&client, &url, small.clone()).await.unwrap();
        let answer = assert_contract(&small, &reply, Hook::Validate);
        answer["response"]["allowed"] == true
    })
    .await;
    assert!(evaluated.is_some(), "{}", server.log_text());
}

/// The inline path over real TLS: while a costly review holds the one evaluation slot, a
/// typical small review is answered at once, evaluated on the server's own thread; a small
/// review whose script needs more work than the inline budget goes to the pool and waits for
/// the slot (at most its deadline) like any other. Each path is counted.
#[tokio::test]
async fn small_reviews_are_answered_inline_while_the_pool_is_saturated() {
    let layout = Layout::new(&[("p.yaml", HOSTS_FILE)]);
    let server = spawn_ready(
        &layout,
        &["--evaluation-slots", "1", "--max-evaluation-time", "20ms"],
        "inline",
    )
    .await;
    let ca = layout.pki.ca_pem.clone();
    let client = client(&[&ca], Proto::Http1, None, true);
    let url = https(server.addr, "/validate?timeout=10s");
    let path = |p: &str| format!("podgate_evaluations_total{{path=\"{p}\"}}");

    let heavy = {
        let (client, url) = (client.clone(), url.clone());
        let body = heavy_review("1e1e0000-0000-4000-8000-000000000000", 5 << 20);
        tokio::spawn(async move { post_review(&client, &url, body).await.unwrap() })
    };
    let evaluation =
        "podgate_evaluation_deadline_exceeded_total{webhook=\"validate\",stage=\"evaluation\"}";
    let holding = wait_until(Duration::from_secs(60), async || {
        metric(server.probe, evaluation).await >= 1.0
    })
    .await;
    assert!(holding.is_some(), "{}", server.log_text());

    // Typical: answered inline, allowed, whatever the pool is doing.
    let before = metric(server.probe, &path("inline")).await;
    let small = pod_review("1e1e0000-0000-4000-8000-000000000001", false);
    let sent = std::time::Instant::now();
    let reply = post_review(&client, &url, small.clone()).await.unwrap();
    let answer = assert_contract(&small, &reply, Hook::Validate);
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(metric(server.probe, &path("inline")).await, before + 1.0);

    // 24 KiB of script is about 90,000 units of work, past the inline budget (32,768): the
    // review goes to the pool, where the slot is taken (or its deadline too short).
    let medium = heavy_review("1e1e0000-0000-4000-8000-000000000002", 24 << 10);
    assert!(medium.len() < 64 << 10);
    let reply = post_review(&client, &url, medium.clone()).await.unwrap();
    let answer = assert_contract(&medium, &reply, Hook::Validate);
    let message = answer["response"]["status"]["message"].to_string();
    assert!(
        message.contains("no evaluation slot came free within its 20 ms deadline")
            || message.contains("the analysis did not finish within its 20 ms deadline"),
        "{answer}"
    );
    assert_eq!(metric(server.probe, &path("inline_cut")).await, 1.0);

    let reply = heavy.await.unwrap();
    assert_eq!(reply.status, 200);
}
