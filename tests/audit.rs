//! `podgate audit` against the in-process test API server (tests/apiserver/), through kube's
//! real client: the library entry point for the grouping and paging semantics, the binary (with a
//! kubeconfig) for output formats and exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod apiserver;

use std::collections::BTreeSet;
use std::path::Path;

use apiserver::ApiServer;
use podgate::audit::{self, Scope};
use podgate::policy::PolicySet;
use serde_json::{Value, json};

const POLICIES: &[(&str, &str)] = &[
    (
        "hosts.yaml",
        "apiVersion: podgate.dev/v1alpha1\nkind: PodPolicy\nmetadata:\n  name: no-hosts-edits\nspec:\n  action: Enforce\n  validate:\n    hostsFile: {}\n",
    ),
    (
        "host-ns.yaml",
        "apiVersion: podgate.dev/v1alpha1\nkind: PodPolicy\nmetadata:\n  name: host-ns\nspec:\n  action: Warn\n  validate:\n    hostNamespaces:\n      forbiddenCombinations:\n        - [hostPID, hostNetwork]\n",
    ),
    (
        "pull.yaml",
        "apiVersion: podgate.dev/v1alpha1\nkind: PodPolicy\nmetadata:\n  name: pull-always\nspec:\n  action: Audit\n  mutate:\n    imagePullPolicy:\n      mutableTags: [latest]\n      set: Always\n      replace: [IfNotPresent]\n",
    ),
];

fn policy_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in POLICIES {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn policies(dir: &Path) -> PolicySet {
    PolicySet::load_dir(dir).unwrap()
}

fn today() -> jiff::civil::Date {
    jiff::civil::date(2026, 12, 2)
}

fn spec(hosts_edit: bool, host_ns: bool, image: &str) -> Value {
    let command = if hosts_edit {
        json!(["sh", "-c", "echo 10.0.0.1 db >> /etc/hosts && exec app"])
    } else {
        json!(["app"])
    };
    let mut s = json!({
        "containers": [{"name": "app", "image": image, "imagePullPolicy": "IfNotPresent", "command": command}],
    });
    if host_ns {
        s["hostPID"] = json!(true);
        s["hostNetwork"] = json!(true);
    }
    s
}

fn owner(kind: &str, api_version: &str, name: &str, uid: &str) -> Value {
    json!([{"apiVersion": api_version, "kind": kind, "name": name, "uid": uid, "controller": true, "blockOwnerDeletion": true}])
}

fn pod(ns: &str, name: &str, spec: Value, owners: Option<Value>) -> Value {
    let mut p = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": spec,
    });
    if let Some(o) = owners {
        p["metadata"]["ownerReferences"] = o;
    }
    p
}

fn templated(api_version: &str, kind: &str, ns: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": api_version, "kind": kind,
        "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": {"metadata": {"labels": {"app": name}}, "spec": spec}},
    })
}

fn uid(v: &Value) -> String {
    v["metadata"]["uid"].as_str().unwrap().to_string()
}

/// A Deployment with a ReplicaSet and 3 Pods (hosts edit) in `shop`, a CronJob -> Job -> Pod in
/// `batch`, a bare Pod with hostPID+hostNetwork, a clean StatefulSet, a mirror Pod and a Pod in
/// kube-system.
fn mixed_cluster(server: &ApiServer) {
    let d = server.insert(templated(
        "apps/v1",
        "Deployment",
        "shop",
        "web",
        spec(true, false, "web:1.0"),
    ));
    let mut rs = templated(
        "apps/v1",
        "ReplicaSet",
        "shop",
        "web-7d9f",
        spec(true, false, "web:1.0"),
    );
    rs["metadata"]["ownerReferences"] = owner("Deployment", "apps/v1", "web", &uid(&d));
    let rs = server.insert(rs);
    for i in 0..3 {
        server.insert(pod(
            "shop",
            &format!("web-7d9f-{i}"),
            spec(true, false, "web:1.0"),
            Some(owner("ReplicaSet", "apps/v1", "web-7d9f", &uid(&rs))),
        ));
    }
    let cj = server.insert(json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "nightly", "namespace": "batch"},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": spec(false, false, "tool:latest")}}}},
    }));
    let mut job = json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "nightly-123", "namespace": "batch", "ownerReferences": owner("CronJob", "batch/v1", "nightly", &uid(&cj))},
        "spec": {"template": {"spec": spec(false, false, "tool:latest")}},
    });
    job["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    let job = server.insert(job);
    server.insert(pod(
        "batch",
        "nightly-123-abcde",
        spec(false, false, "tool:latest"),
        Some(owner("Job", "batch/v1", "nightly-123", &uid(&job))),
    ));
    server.insert(pod(
        "batch",
        "debug",
        spec(false, true, "busybox:1.36"),
        None,
    ));
    server.insert(templated(
        "apps/v1",
        "StatefulSet",
        "shop",
        "db",
        spec(false, false, "postgres:16"),
    ));
    let mut mirror = pod("shop", "static-node1", spec(true, false, "x:1"), None);
    mirror["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "abc"});
    mirror["metadata"]["ownerReferences"] = owner("Node", "v1", "node1", "node-uid-1");
    server.insert(mirror);
    server.insert(pod(
        "kube-system",
        "agent",
        spec(true, true, "agent:1"),
        None,
    ));
}

fn excluded() -> BTreeSet<String> {
    audit::exclusions(&[], audit::DEFAULT_PODGATE_NAMESPACE)
}

#[tokio::test]
async fn pods_are_reported_at_their_workloads_across_kinds_and_namespaces() {
    let server = ApiServer::start().await;
    mixed_cluster(&server);
    let dir = policy_dir();
    let run = audit::audit(
        &server.client(),
        &policies(dir.path()),
        &Scope::All,
        &excluded(),
        500,
        today(),
    )
    .await;
    assert!(run.complete(), "{:?}", run.errors);
    let got: Vec<(String, String, String, usize, bool)> = run
        .objects
        .iter()
        .map(|o| {
            (
                o.kind.clone(),
                o.namespace.clone(),
                o.name.clone(),
                o.pods,
                o.denied,
            )
        })
        .collect();
    let want = vec![
        ("Deployment", "shop", "web", 3, true),
        ("StatefulSet", "shop", "db", 0, false),
        ("CronJob", "batch", "nightly", 1, false),
        ("Pod", "batch", "debug", 1, false),
    ];
    let want: Vec<(String, String, String, usize, bool)> = want
        .into_iter()
        .map(|(k, n, m, p, d)| (k.to_string(), n.to_string(), m.to_string(), p, d))
        .collect();
    assert_eq!(got, want);
    assert_eq!(run.skipped.mirror_pods, 1);
    assert_eq!(run.skipped.excluded_namespaces, 1);
    let web = &run.objects[0];
    assert!(!web.uid.is_empty());
    assert_eq!(web.violations[0].policy, "no-hosts-edits");
    assert_eq!(web.violations[0].rule, "hostsFile");
    assert!(
        web.violations[0]
            .message
            .contains("spec.template.spec.containers[0]"),
        "{}",
        web.violations[0].message
    );
    let debug = &run.objects[3];
    assert_eq!(debug.violations[0].rule, "hostNamespaces");
    assert_eq!(debug.violations[0].action, "Warn");
    assert_eq!(run.exit_code(), 1);
    // Per-rule results as the validating webhook would answer: the CronJob's mutable tag is
    // pending only on its template (Pods are patched at creation): pass; the Pods of the
    // Deployment are not evaluated on their own.
    let nightly = &run.objects[2];
    let pull = nightly
        .results
        .iter()
        .find(|r| r.rule == "imagePullPolicy")
        .unwrap();
    assert_eq!(pull.outcome, audit::evaluate::Outcome::Pass);
    let hosts = web.results.iter().find(|r| r.rule == "hostsFile").unwrap();
    assert_eq!(hosts.outcome, audit::evaluate::Outcome::Fail);
}

#[tokio::test]
async fn a_bare_pod_missing_a_mutation_fails_that_rule_in_the_results() {
    let server = ApiServer::start().await;
    server.insert(pod("a", "old", spec(false, false, "app:latest"), None));
    let dir = policy_dir();
    let run = audit::audit(
        &server.client(),
        &policies(dir.path()),
        &Scope::All,
        &excluded(),
        500,
        today(),
    )
    .await;
    let o = &run.objects[0];
    // check's view: a change the (Audit) policy would make.
    assert_eq!(o.changes.len(), 1, "{:?}", o.changes);
    assert!(!o.denied);
    // The webhook's view: the Pod lacks it.
    let pull = o
        .results
        .iter()
        .find(|r| r.rule == "imagePullPolicy")
        .unwrap();
    assert_eq!(pull.outcome, audit::evaluate::Outcome::Fail);
    assert!(pull.message.contains("not mutated"), "{}", pull.message);
}

#[tokio::test]
async fn lists_page_through_many_pages_and_count_each_object_once() {
    let server = ApiServer::start().await;
    for i in 0..250 {
        server.insert(pod(
            ["a", "b", "c"][i % 3],
            &format!("p{i:03}"),
            spec(i % 50 == 0, false, "app:1"),
            None,
        ));
    }
    server.clear_requests();
    let dir = policy_dir();
    let run = audit::audit(
        &server.client(),
        &policies(dir.path()),
        &Scope::All,
        &excluded(),
        7,
        today(),
    )
    .await;
    assert!(run.complete(), "{:?}", run.errors);
    assert_eq!(run.objects.len(), 250);
    let names: BTreeSet<(String, String)> = run
        .objects
        .iter()
        .map(|o| (o.namespace.clone(), o.name.clone()))
        .collect();
    assert_eq!(names.len(), 250);
    assert_eq!(run.objects.iter().filter(|o| o.denied).count(), 5);
    let pod_lists: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/v1/pods")
        .collect();
    assert_eq!(pod_lists.len(), 250usize.div_ceil(7));
    assert!(pod_lists.iter().all(|r| r.query.contains("limit=7")));
    assert_eq!(
        pod_lists
            .iter()
            .filter(|r| r.query.contains("continue="))
            .count(),
        pod_lists.len() - 1
    );
}

#[tokio::test]
async fn an_expired_continue_token_restarts_that_list_cleanly() {
    let server = ApiServer::start().await;
    for i in 0..40 {
        server.insert(pod(
            "a",
            &format!("p{i:02}"),
            spec(false, false, "app:1"),
            None,
        ));
    }
    server.expire_next_continues(1);
    server.clear_requests();
    let dir = policy_dir();
    let run = audit::audit(
        &server.client(),
        &policies(dir.path()),
        &Scope::Namespaces(vec!["a".into()]),
        &excluded(),
        10,
        today(),
    )
    .await;
    assert!(run.complete(), "{:?}", run.errors);
    assert_eq!(run.objects.len(), 40, "no Pod lost or counted twice");
    let pod_lists: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/v1/namespaces/a/pods")
        .collect();
    // First page, a continue that answered 410, then the whole list again (4 pages).
    assert_eq!(pod_lists.len(), 2 + 4, "{pod_lists:?}");
    assert!(
        !pod_lists[2].query.contains("continue="),
        "restarted from the start: {:?}",
        pod_lists[2]
    );
}

#[tokio::test]
async fn a_list_that_keeps_expiring_is_an_error_not_a_silent_partial_result() {
    let server = ApiServer::start().await;
    for i in 0..30 {
        server.insert(pod(
            "a",
            &format!("p{i:02}"),
            spec(false, false, "app:1"),
            None,
        ));
    }
    server.expire_next_continues(1000);
    let dir = policy_dir();
    let run = audit::audit(
        &server.client(),
        &policies(dir.path()),
        &Scope::All,
        &excluded(),
        10,
        today(),
    )
    .await;
    assert!(!run.complete());
    assert_eq!(run.exit_code(), 2);
    assert!(
        run.errors
            .iter()
            .any(|e| e.contains("pods") && e.contains("410 Gone")),
        "{:?}",
        run.errors
    );
}

#[tokio::test]
async fn a_forbidden_kind_is_an_error_naming_the_missing_permission() {
    let server = ApiServer::start().await;
    mixed_cluster(&server);
    server.forbid("list", "batch", "cronjobs");
    let dir = policy_dir();
    let run = audit::audit(
        &server.client(),
        &policies(dir.path()),
        &Scope::All,
        &excluded(),
        500,
        today(),
    )
    .await;
    assert_eq!(run.exit_code(), 2);
    assert_eq!(run.errors.len(), 1, "{:?}", run.errors);
    let e = &run.errors[0];
    assert!(
        e.contains(
            "podgate needs permission to list cronjobs (apiGroup \"batch\") at the cluster scope"
        ),
        "{e}"
    );
    assert!(e.contains("cannot list resource \"cronjobs\""), "{e}");
    // What could be read is still reported: the Job now stands on its own.
    assert!(
        run.objects
            .iter()
            .any(|o| o.kind == "Job" && o.name == "nightly-123" && o.pods == 1)
    );
}

#[tokio::test]
async fn namespaces_scope_lists_each_namespace_and_nothing_else() {
    let server = ApiServer::start().await;
    mixed_cluster(&server);
    server.clear_requests();
    let dir = policy_dir();
    let scope = Scope::Namespaces(vec!["batch".into()]);
    let run = audit::audit(
        &server.client(),
        &policies(dir.path()),
        &scope,
        &excluded(),
        500,
        today(),
    )
    .await;
    assert!(run.objects.iter().all(|o| o.namespace == "batch"));
    assert_eq!(run.objects.len(), 2);
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.path.contains("/namespaces/batch/"))
    );
}

// ---------------------------------------------------------------- the binary

async fn run_binary(server: &ApiServer, args: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig);
    let policies = policy_dir();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_podgate"))
        .arg("audit")
        .arg("--policies")
        .arg(policies.path())
        .args(args)
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_prints_json_with_namespace_and_uid_and_exits_1_on_a_denial() {
    let server = ApiServer::start().await;
    mixed_cluster(&server);
    let (code, stdout, stderr) = run_binary(&server, &["-A", "-o", "json"]).await;
    assert_eq!(code, 1, "{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let web = &v["objects"][0];
    assert_eq!(web["kind"], "Deployment");
    assert_eq!(web["namespace"], "shop");
    assert_eq!(web["pods"], 3);
    assert!(web["uid"].as_str().is_some_and(|u| !u.is_empty()));
    assert_eq!(web["violations"][0]["rule"], "hostsFile");
    assert_eq!(v["skipped"]["mirror_pods"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_audits_the_contexts_namespace_by_default_and_exits_0_when_clean() {
    let server = ApiServer::start().await;
    mixed_cluster(&server);
    server.insert(pod("default", "fine", spec(false, false, "app:1"), None));
    let (code, stdout, stderr) = run_binary(&server, &[]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("1 objects audited (1 Pods): 0 denied"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_exits_2_when_forbidden_or_unreachable() {
    let server = ApiServer::start().await;
    mixed_cluster(&server);
    server.forbid("list", "apps", "deployments");
    let (code, _, stderr) = run_binary(&server, &["-A"]).await;
    assert_eq!(code, 2);
    assert!(
        stderr.contains(
            "podgate needs permission to list deployments (apiGroup \"apps\") at the cluster scope"
        ),
        "{stderr}"
    );
    server.allow_all();
    server.set_down(true);
    let (code, _, stderr) = run_binary(&server, &["-A"]).await;
    assert_eq!(code, 2);
    assert!(stderr.contains("listing"), "{stderr}");
}
