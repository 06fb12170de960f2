#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! The server's boundaries, through the real `podgate serve` binary over TLS: what it logs
//! about the policies it loads, and reviews that run out of time. (A full evaluation pool is
//! tested in memory: `src/server/app.rs`.)

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
