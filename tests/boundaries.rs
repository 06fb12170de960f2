#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! The server's boundaries, through the real `podgate serve` binary over TLS: what it logs
//! about the policies it loads.

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
