//! `--report`: PolicyReports written to the in-process test API server through kube's real
//! client: created, updated, pruned, split when large, never written after an incomplete run,
//! a missing CRD explained; every report validated against the CRD schema the repository ships.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod apiserver;
#[path = "common/overlay.rs"]
mod overlay;
mod schema;

use std::collections::BTreeSet;

use apiserver::ApiServer;
use podgate::audit::publish::{self, PublishError};
use podgate::audit::{self, AuditRun, Scope};
use podgate::policy::PolicySet;
use serde_json::{Value, json};

const CRD: &str = include_str!("../deploy/components/policy-report-crd/crd.yaml");

const POLICIES: &str = "apiVersion: podgate.dev/v1alpha1\nkind: PodPolicy\nmetadata:\n  name: no-hosts-edits\nspec:\n  action: Enforce\n  validate:\n    hostsFile: {}\n---\napiVersion: podgate.dev/v1alpha1\nkind: PodPolicy\nmetadata:\n  name: host-ns\nspec:\n  action: Warn\n  exemptions:\n    - namespaces: [ops]\n      reason: node agents\n  validate:\n    hostNamespaces:\n      forbiddenCombinations:\n        - [hostPID, hostNetwork]\n";

fn policies() -> PolicySet {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.yaml"), POLICIES).unwrap();
    PolicySet::load_dir(dir.path()).unwrap()
}

fn pod(ns: &str, name: &str, hosts_edit: bool, host_ns: bool) -> Value {
    let cmd = if hosts_edit {
        json!(["sh", "-c", "echo 1.2.3.4 x >> /etc/hosts"])
    } else {
        json!(["app"])
    };
    let mut p = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"containers": [{"name": "c", "image": "app:1", "command": cmd}]},
    });
    if host_ns {
        p["spec"]["hostPID"] = json!(true);
        p["spec"]["hostNetwork"] = json!(true);
    }
    p
}

async fn run(server: &ApiServer, scope: &Scope) -> AuditRun {
    let excluded = audit::exclusions(&[], audit::DEFAULT_PODGATE_NAMESPACE);
    audit::audit(
        &server.client(),
        &policies(),
        scope,
        &excluded,
        100,
        jiff::civil::date(2026, 12, 2),
    )
    .await
}

fn reports(server: &ApiServer) -> Vec<Value> {
    server.list("wgpolicyk8s.io", "policyreports", None)
}

fn assert_valid(report: &Value) {
    let problems = schema::check(&schema::crd_schema(CRD, "v1alpha2"), report);
    assert!(problems.is_empty(), "{problems:#?}\n{report:#}");
}

fn results_for<'a>(report: &'a Value, name: &str) -> Vec<&'a Value> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["resources"][0]["name"] == name)
        .collect()
}

#[tokio::test]
async fn reports_are_created_per_namespace_by_server_side_apply_and_fit_the_crd() {
    let server = ApiServer::start().await;
    server.insert(pod("shop", "bad", true, false));
    server.insert(pod("shop", "good", false, false));
    server.insert(pod("ops", "agent", false, true));
    server.insert(pod("kube-system", "skipped", true, true));
    let run = run(&server, &Scope::All).await;
    server.clear_requests();
    let done = publish::publish(&server.client(), &run, 1_764_633_600)
        .await
        .unwrap();
    assert_eq!(
        done,
        publish::Published {
            applied: 2,
            deleted: 0
        }
    );
    let all = reports(&server);
    let names: BTreeSet<String> = all
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["metadata"]["namespace"].as_str().unwrap(),
                r["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "ops/podgate-audit".to_string(),
            "shop/podgate-audit".to_string()
        ])
    );
    for r in &all {
        assert_valid(r);
        assert_eq!(
            r["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "podgate"
        );
        assert_eq!(r["metadata"]["managedFields"][0]["manager"], "podgate");
        assert_eq!(r["metadata"]["managedFields"][0]["operation"], "Apply");
    }
    let applies: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert_eq!(applies.len(), 2);
    assert!(applies.iter().all(|r| r.content_type.as_deref()
        == Some("application/apply-patch+yaml")
        && r.field_manager.as_deref() == Some("podgate")));

    let shop = all
        .iter()
        .find(|r| r["metadata"]["namespace"] == "shop")
        .unwrap();
    // Two policies, one rule each, two Pods: four results.
    assert_eq!(
        shop["summary"],
        json!({"pass": 3, "fail": 1, "warn": 0, "error": 0, "skip": 0})
    );
    let bad = results_for(shop, "bad");
    let hosts = bad.iter().find(|r| r["rule"] == "hostsFile").unwrap();
    assert_eq!(hosts["result"], "fail");
    assert_eq!(hosts["policy"], "no-hosts-edits");
    assert_eq!(hosts["severity"], "medium");
    assert_eq!(hosts["source"], "podgate");
    assert!(hosts["message"].as_str().unwrap().contains("/etc/hosts"));
    assert_eq!(hosts["resources"][0]["kind"], "Pod");
    assert_eq!(hosts["resources"][0]["apiVersion"], "v1");
    assert!(!hosts["resources"][0]["uid"].as_str().unwrap().is_empty());
    assert_eq!(hosts["timestamp"]["seconds"], 1_764_633_600i64);
    let ops = all
        .iter()
        .find(|r| r["metadata"]["namespace"] == "ops")
        .unwrap();
    let agent = results_for(ops, "agent");
    let host_ns = agent
        .iter()
        .find(|r| r["rule"] == "hostNamespaces")
        .unwrap();
    assert_eq!(host_ns["result"], "skip");
    assert_eq!(host_ns["message"], "exempted: node agents");
}

#[tokio::test]
async fn reports_are_updated_and_stale_results_and_reports_pruned() {
    let server = ApiServer::start().await;
    server.insert(pod("shop", "bad", true, false));
    server.insert(pod("shop", "gone-soon", false, false));
    server.insert(pod("batch", "job", false, true));
    // Another tool's report, and one of podgate's in a namespace outside a later scope.
    server.insert(json!({"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport", "metadata": {"name": "kyverno-x", "namespace": "shop"}, "results": []}));
    let first = run(&server, &Scope::All).await;
    publish::publish(&server.client(), &first, 100)
        .await
        .unwrap();
    let before = server
        .get("wgpolicyk8s.io", "policyreports", "shop", "podgate-audit")
        .unwrap();
    assert_eq!(before["results"].as_array().unwrap().len(), 4);

    // The bad Pod is fixed (replaced), one Pod and the whole batch namespace go away.
    server.insert(pod("shop", "bad", false, false));
    server.remove("", "pods", "shop", "gone-soon");
    server.remove("", "pods", "batch", "job");
    let second = run(&server, &Scope::All).await;
    let done = publish::publish(&server.client(), &second, 200)
        .await
        .unwrap();
    assert_eq!(
        done,
        publish::Published {
            applied: 1,
            deleted: 1
        }
    );
    let after = server
        .get("wgpolicyk8s.io", "policyreports", "shop", "podgate-audit")
        .unwrap();
    assert_valid(&after);
    assert_ne!(
        after["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );
    assert_eq!(
        after["metadata"]["uid"], before["metadata"]["uid"],
        "updated in place"
    );
    let results = after["results"].as_array().unwrap();
    assert_eq!(
        results.len(),
        2,
        "no result of the deleted Pod is left: {results:#?}"
    );
    assert!(
        results
            .iter()
            .all(|r| r["result"] == "pass" && r["resources"][0]["name"] == "bad")
    );
    assert_eq!(after["summary"]["fail"], 0);
    assert!(
        server
            .get("wgpolicyk8s.io", "policyreports", "batch", "podgate-audit")
            .is_none()
    );
    assert!(
        server
            .get("wgpolicyk8s.io", "policyreports", "shop", "kyverno-x")
            .is_some(),
        "another tool's report is left alone"
    );

    // A namespaced audit neither writes nor prunes outside its namespaces.
    server.insert(pod("batch", "again", true, false));
    let everywhere = run(&server, &Scope::All).await;
    publish::publish(&server.client(), &everywhere, 300)
        .await
        .unwrap();
    server.remove("", "pods", "shop", "bad");
    let only_shop = run(&server, &Scope::Namespaces(vec!["shop".into()])).await;
    let done = publish::publish(&server.client(), &only_shop, 400)
        .await
        .unwrap();
    assert_eq!(
        done,
        publish::Published {
            applied: 0,
            deleted: 1
        }
    );
    assert!(
        server
            .get("wgpolicyk8s.io", "policyreports", "shop", "podgate-audit")
            .is_none()
    );
    assert!(
        server
            .get("wgpolicyk8s.io", "policyreports", "batch", "podgate-audit")
            .is_some()
    );
}

#[tokio::test]
async fn a_large_namespace_is_split_over_bounded_reports_and_shrinks_back() {
    let server = ApiServer::start().await;
    for i in 0..600 {
        server.insert(pod("big", &format!("p{i:03}"), i % 2 == 0, false));
    }
    let big = run(&server, &Scope::All).await;
    publish::publish(&server.client(), &big, 1).await.unwrap();
    let all = reports(&server);
    assert_eq!(all.len(), 2, "1200 results: two reports");
    let total: usize = all
        .iter()
        .map(|r| r["results"].as_array().unwrap().len())
        .sum();
    assert_eq!(total, 1200);
    for r in &all {
        assert_valid(r);
        assert!(r["results"].as_array().unwrap().len() <= podgate::audit::report::MAX_RESULTS);
    }
    for i in 100..600 {
        server.remove("", "pods", "big", &format!("p{i:03}"));
    }
    let small = run(&server, &Scope::All).await;
    let done = publish::publish(&server.client(), &small, 2).await.unwrap();
    assert_eq!(
        done,
        publish::Published {
            applied: 1,
            deleted: 1
        }
    );
    assert_eq!(reports(&server).len(), 1);
}

#[tokio::test]
async fn nothing_is_written_after_an_incomplete_audit() {
    let server = ApiServer::start().await;
    server.insert(pod("shop", "bad", true, false));
    let first = run(&server, &Scope::All).await;
    publish::publish(&server.client(), &first, 1).await.unwrap();
    server.forbid("list", "apps", "replicasets");
    server.remove("", "pods", "shop", "bad");
    let partial = run(&server, &Scope::All).await;
    let err = publish::publish(&server.client(), &partial, 2)
        .await
        .unwrap_err();
    assert!(matches!(err, PublishError::Incomplete(1)), "{err}");
    assert!(
        server
            .get("wgpolicyk8s.io", "policyreports", "shop", "podgate-audit")
            .is_some(),
        "not pruned"
    );
}

#[tokio::test]
async fn a_missing_crd_is_detected_and_the_message_says_how_to_install_it() {
    let server = ApiServer::start().await;
    server.set_served("wgpolicyk8s.io", "policyreports", false);
    server.set_served("wgpolicyk8s.io", "clusterpolicyreports", false);
    server.insert(pod("shop", "bad", true, false));
    let r = run(&server, &Scope::All).await;
    server.clear_requests();
    let err = publish::publish(&server.client(), &r, 1).await.unwrap_err();
    assert!(matches!(err, PublishError::CrdMissing));
    let text = err.to_string();
    assert!(
        text.contains("kubectl create -k deploy/components/policy-report-crd"),
        "{text}"
    );
    assert!(
        server.requests().iter().all(|r| r.method == "GET"),
        "nothing written or installed"
    );
    assert!(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("deploy/components/policy-report-crd/kustomization.yaml")
            .exists()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_writes_reports_with_report_and_exits_2_without_the_crd() {
    let server = ApiServer::start().await;
    server.insert(pod("shop", "bad", true, false));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig);
    std::fs::write(dir.path().join("p.yaml"), POLICIES).unwrap();
    let run_it = || {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_podgate"))
            .args(["audit", "-A", "--report", "--policies"])
            .arg(dir.path())
            .env("KUBECONFIG", &kubeconfig)
            .output()
    };
    let out = run_it().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("PolicyReports: 1 applied, 0 stale deleted"),
        "{stderr}"
    );
    assert_valid(
        &server
            .get("wgpolicyk8s.io", "policyreports", "shop", "podgate-audit")
            .unwrap(),
    );
    server.set_served("wgpolicyk8s.io", "policyreports", false);
    let out = run_it().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the PolicyReport CRD is not installed"),
        "{stderr}"
    );
}

#[test]
fn the_shipped_crd_is_the_v1alpha2_policy_report_and_builds_with_kustomize() {
    let crd: Value = serde_saphyr::from_str(CRD).unwrap();
    assert_eq!(crd["metadata"]["name"], "policyreports.wgpolicyk8s.io");
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    let schema = schema::crd_schema(CRD, "v1alpha2");
    assert_eq!(
        schema["properties"]["results"]["items"]["properties"]["result"]["enum"],
        json!(["pass", "fail", "warn", "error", "skip"])
    );
    let out = std::process::Command::new("kubectl")
        .args(["kustomize"])
        .arg(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("deploy/components/policy-report-crd"),
        )
        .output()
        .expect("kubectl is needed (scripts/test checks for it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rendered: Value = serde_saphyr::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
    assert_eq!(
        rendered["spec"]["versions"][0]["schema"]["openAPIV3Schema"],
        schema
    );
}

#[test]
fn the_audit_component_grants_exactly_what_the_audit_uses_and_turns_it_on() {
    let objects = overlay::render(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: policy-system\nresources:\n  - ../deploy/base\ncomponents:\n  - ../deploy/components/audit\n  - ../deploy/components/policy-report-crd\ntransformers:\n  - ../deploy/transformers\n",
    );
    let find = |kind: &str, name: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    };
    // Every kind the audit lists, with `list`; PolicyReports written and pruned.
    let role = find("ClusterRole", "podgate-audit");
    let allows = |group: &str, resource: &str, verb: &str| {
        role["rules"].as_array().unwrap().iter().any(|r| {
            r["apiGroups"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g == group)
                && r["resources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x == resource)
                && r["verbs"].as_array().unwrap().iter().any(|v| v == verb)
        })
    };
    for kind in podgate::audit::inventory::KINDS {
        let (group, _, resource) = podgate::audit::cluster::resource_of(kind);
        assert!(allows(group, resource, "list"), "list {resource}.{group}");
    }
    for verb in ["list", "patch", "create", "delete", "get"] {
        assert!(
            allows("wgpolicyk8s.io", "policyreports", verb),
            "{verb} policyreports"
        );
    }
    assert!(
        !allows("", "secrets", "list"),
        "nothing beyond what the audit reads"
    );
    let binding = find("ClusterRoleBinding", "podgate-audit");
    assert_eq!(
        binding["subjects"][0]["namespace"], "policy-system",
        "follows `namespace:`"
    );
    let lease_role = find("Role", "podgate-audit-lease");
    assert_eq!(lease_role["metadata"]["namespace"], "policy-system");
    assert!(
        lease_role["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["resourceNames"][0] == podgate::audit::background::LEASE_NAME)
    );
    let container = &find("Deployment", "podgate")["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[0], "serve");
    let env = container["env"].as_array().unwrap();
    let names: Vec<&str> = env.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert!(
        names.contains(&"POD_NAME") && names.contains(&"PODGATE_NAMESPACE"),
        "{names:?}"
    );
    let interval = env
        .iter()
        .find(|e| e["name"] == "PODGATE_AUDIT_INTERVAL")
        .unwrap();
    assert_eq!(interval["value"], "1h");
    // `serve` reads it as --audit-interval (clap's env form) and parses the Deployment's args.
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_podgate"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("--audit-interval") && help.contains("PODGATE_AUDIT_INTERVAL"),
        "{help}"
    );
    let cli = <podgate::cli::Cli as clap::Parser>::try_parse_from(
        std::iter::once("podgate").chain(args.iter().copied()),
    )
    .unwrap();
    assert!(matches!(cli.command, podgate::cli::Command::Serve(_)));
}
