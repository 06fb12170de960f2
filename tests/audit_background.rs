//! The background audit of `serve --audit-interval` against the test API server: one replica at
//! a time through the Lease, reports written, metrics exported, failover keeping the schedule.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod apiserver;
#[path = "common/overlay.rs"]
mod overlay;
mod rbac;

use std::sync::Arc;
use std::time::Duration;

use apiserver::ApiServer;
use arc_swap::ArcSwap;
use podgate::audit::background::{AuditMetrics, Background, LEASE_NAME};
use podgate::policy::PolicySet;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use tokio::sync::watch;

const POLICY: &str = "apiVersion: podgate.dev/v1alpha1\nkind: PodPolicy\nmetadata:\n  name: no-hosts-edits\nspec:\n  action: Enforce\n  validate:\n    hostsFile: {}\n";

struct Replica {
    registry: Registry,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Replica {
    fn metrics(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).unwrap();
        out
    }

    fn leader(&self) -> bool {
        self.metrics()
            .lines()
            .any(|l| l == "podgate_audit_leader 1")
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

fn start(server: &ApiServer, identity: &str, interval: Duration) -> Replica {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.yaml"), POLICY).unwrap();
    let set = PolicySet::load_dir(dir.path()).unwrap();
    let mut registry = Registry::default();
    let metrics = AuditMetrics::register(&mut registry);
    let background = Background {
        client: server.client(),
        policies: Arc::new(ArcSwap::from_pointee(set)),
        interval,
        namespace: "podgate-system".into(),
        identity: identity.into(),
        lease_duration: Duration::from_secs(2),
        excluded: podgate::audit::exclusions(&[], "podgate-system"),
        metrics,
        page_size: 100,
    };
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(background.run(rx));
    Replica {
        registry,
        stop,
        task,
    }
}

fn bad_pod(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"containers": [{"name": "c", "image": "app:1", "command": ["sh", "-c", "echo x >> /etc/hosts"]}]},
    })
}

async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn report_applies(server: &ApiServer) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH" && r.path.contains("/policyreports/"))
        .count()
}

fn holder(server: &ApiServer) -> Option<String> {
    server
        .get(
            "coordination.k8s.io",
            "leases",
            "podgate-system",
            LEASE_NAME,
        )
        .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_audits_through_the_lease_and_a_successor_keeps_the_schedule() {
    let server = ApiServer::start().await;
    server.insert(bad_pod("p1"));
    let a = start(&server, "replica-a", Duration::from_secs(3600));
    let b = start(&server, "replica-b", Duration::from_secs(3600));
    eventually("a report", || {
        server
            .get("wgpolicyk8s.io", "policyreports", "shop", "podgate-audit")
            .is_some()
    })
    .await;
    // Let both replicas tick a few times: still one audit, one leader.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(report_applies(&server), 1, "exactly one replica audited");
    assert!(
        a.leader() ^ b.leader(),
        "one leader: a={} b={} {:#}",
        a.leader(),
        b.leader(),
        server
            .get(
                "coordination.k8s.io",
                "leases",
                "podgate-system",
                LEASE_NAME
            )
            .unwrap()
    );
    let (leader, follower) = if a.leader() { (a, b) } else { (b, a) };
    let first = holder(&server).unwrap();
    let metrics = leader.metrics();
    assert!(
        metrics.contains(
            "podgate_audit_objects{policy=\"no-hosts-edits\",rule=\"hostsFile\",result=\"fail\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        !metrics.contains("podgate_audit_last_complete_run_timestamp_seconds 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("podgate_audit_runs_total{result=\"complete\"} 1"),
        "{metrics}"
    );
    assert!(
        !follower.metrics().contains("podgate_audit_objects{"),
        "only the holder exports results"
    );
    let lease = server
        .get(
            "coordination.k8s.io",
            "leases",
            "podgate-system",
            LEASE_NAME,
        )
        .unwrap();
    assert!(
        lease["metadata"]["annotations"]["podgate.dev/last-complete-audit"].is_string(),
        "{lease:#}"
    );

    // The leader goes away: the follower takes the Lease once it expires, and does not audit
    // again before the interval is over (the schedule lives on the Lease).
    leader.stop().await;
    eventually("a new holder", || {
        holder(&server).is_some_and(|h| h != first)
    })
    .await;
    let lease = server
        .get(
            "coordination.k8s.io",
            "leases",
            "podgate-system",
            LEASE_NAME,
        )
        .unwrap();
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(follower.leader());
    assert_eq!(
        report_applies(&server),
        1,
        "no audit before the interval is over"
    );
    follower.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_interval_runs_again_and_updates_reports_and_metrics() {
    let server = ApiServer::start().await;
    server.insert(bad_pod("p1"));
    let a = start(&server, "replica-a", Duration::from_secs(1));
    eventually("a first report", || report_applies(&server) >= 1).await;
    server.insert(bad_pod("p2"));
    eventually("the second Pod in the report", || {
        server
            .get("wgpolicyk8s.io", "policyreports", "shop", "podgate-audit")
            .is_some_and(|r| r["summary"]["fail"] == 2)
    })
    .await;
    eventually("metrics of the second run", || {
        a.metrics().contains(
            "podgate_audit_objects{policy=\"no-hosts-edits\",rule=\"hostsFile\",result=\"fail\"} 2",
        )
    })
    .await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incomplete_run_writes_nothing_and_is_counted() {
    let server = ApiServer::start().await;
    server.insert(bad_pod("p1"));
    server.forbid("list", "apps", "deployments");
    let a = start(&server, "replica-a", Duration::from_secs(3600));
    eventually("an incomplete run", || {
        a.metrics()
            .contains("podgate_audit_runs_total{result=\"incomplete\"} 1")
    })
    .await;
    assert_eq!(report_applies(&server), 0);
    assert!(
        a.metrics()
            .contains("podgate_audit_last_complete_run_timestamp_seconds 0")
    );
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_audit_interval_runs_the_background_audit() {
    let server = ApiServer::start().await;
    server.insert(bad_pod("p1"));
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(policies.join("p.yaml"), POLICY).unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_podgate"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--probe-listen",
            "127.0.0.1:0",
            "--log-format",
            "text",
            "--policies",
        ])
        .arg(&policies)
        .current_dir(dir.path())
        .env("KUBECONFIG", &kubeconfig)
        .env("PODGATE_AUDIT_INTERVAL", "1h")
        .env("POD_NAME", "podgate-7c9d-abcde")
        .env("PODGATE_NAMESPACE", "podgate-system")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    eventually("the report from serve", || {
        server
            .get("wgpolicyk8s.io", "policyreports", "shop", "podgate-audit")
            .is_some()
    })
    .await;
    assert_eq!(holder(&server).as_deref(), Some("podgate-7c9d-abcde"));
    let _ = child.start_kill();
    let _ = child.wait().await;
}

/// The install with the audit components, as an overlay would render it.
fn rendered_install() -> Vec<Value> {
    overlay::render(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: podgate-system\nresources:\n  - ../deploy/base\ncomponents:\n  - ../deploy/components/audit\ntransformers:\n  - ../deploy/transformers\n",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_of_the_background_audit_is_allowed_by_the_audit_component() {
    let server = ApiServer::start().await;
    server.insert(bad_pod("p1"));
    // A stale report of podgate's, so that pruning (delete) happens too.
    server.insert(json!({"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport", "metadata": {"name": "podgate-audit", "namespace": "gone", "labels": {"app.kubernetes.io/managed-by": "podgate"}}}));
    server.clear_requests();
    let a = start(&server, "replica-a", Duration::from_secs(3600));
    eventually("a complete run", || {
        a.metrics()
            .contains("podgate_audit_runs_total{result=\"complete\"} 1")
    })
    .await;
    a.stop().await;
    assert!(
        server
            .get("wgpolicyk8s.io", "policyreports", "gone", "podgate-audit")
            .is_none()
    );
    let rbac = rbac::Rbac {
        objects: rendered_install(),
        sa: "podgate".into(),
        sa_ns: "podgate-system".into(),
    };
    let requests = server.requests();
    let mut checked = 0;
    for r in &requests {
        // Discovery (is the CRD served?) is open to every authenticated user.
        if r.path == "/api" || r.path == "/apis" || r.path.matches('/').count() <= 3 {
            continue;
        }
        let asks = rbac::asks_for(&r.method, &r.path, &r.query, r.content_type.as_deref());
        assert!(!asks.is_empty(), "unrecognised request {r:?}");
        for ask in asks {
            assert!(
                rbac.can(&ask),
                "deploy/components/audit does not allow {ask:?} ({r:?})"
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 8 + 3,
        "lists of 8 kinds, the Lease, the report and the prune: {requests:#?}"
    );
}
