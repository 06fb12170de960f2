//! The offline CLI, run as a user would: `podgate review` and `podgate check`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod fixture_set;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn podgate(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_podgate"))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    // A command that exits without reading stdin (bad policies) closes the pipe first.
    match input.write_all(stdin.unwrap_or_default()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.unwrap(),
    }
    drop(input);
    child.wait_with_output().unwrap()
}

/// An own fixture (`tests/fixtures/reviews`) by file name, as a path argument.
fn fixture(name: &str) -> String {
    fixture_set::own_path(name).display().to_string()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn review_answers_a_bare_request_and_exits_by_decision() {
    // The bare `request` stanza, as many projects store fixtures: podgate wraps it.
    let dir = tempfile::tempdir().unwrap();
    let request = &fixture_set::own("pod-create-daemonset-host-namespaces.json")["request"];
    let bare = write(dir.path(), "bare.json", &request.to_string());
    let out = podgate(&["review", &bare], None);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["response"]["allowed"], false);
    let ok = podgate(&["review", &fixture("pod-create-statefulset.json")], None);
    assert_eq!(ok.status.code(), Some(0));
}

#[test]
fn review_reads_stdin_and_mutates_on_request() {
    let body = std::fs::read(fixture("pod-create-generatename-mutating.json")).unwrap();
    let out = podgate(&["review", "--webhook", "mutate", "-"], Some(&body));
    assert_eq!(out.status.code(), Some(0));
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["response"]["patchType"], "JSONPatch");
    let garbage = podgate(&["review"], Some(b"{nope"));
    assert_eq!(garbage.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&garbage.stderr).contains("not valid JSON"));
}

#[test]
fn bad_policies_are_refused_with_file_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "bad.yaml",
        "apiVersion: podgate.dev/v1alpha1\nkind: PodPolicy\nmetadata: {name: x}\nspec:\n  validate:\n    hostNamespaces:\n      forbiddenCombinations: [[hostPID, nope]]\n",
    );
    for args in [
        vec![
            "check",
            "--policies",
            dir.path().to_str().unwrap(),
            "policies",
        ],
        vec!["review", "--policies", dir.path().to_str().unwrap(), "-"],
    ] {
        let out = podgate(&args, Some(b"{}"));
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("{file}:7:")), "{err}");
        assert!(err.contains("unknown atom \"nope\""), "{err}");
    }
}

#[test]
fn check_prints_loader_warnings_on_stderr_and_keeps_stdout_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    let file = write(
        &policies,
        "exempt.yaml",
        "apiVersion: podgate.dev/v1alpha1\nkind: PodPolicy\nmetadata: {name: x}\nspec:\n  validate:\n    hostsFile: {}\n  exemptions:\n    - podSelector: {matchLabels: {podgate-exempt: \"yes\"}}\n      reason: legacy apps\n",
    );
    let pod = write(dir.path(), "apps/pod.yaml", GOOD_POD);
    for output in ["text", "json", "sarif"] {
        let out = podgate(
            &[
                "check",
                "--policies",
                policies.to_str().unwrap(),
                "-o",
                output,
                &pod,
            ],
            None,
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "{output}: a warning is no failure"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "podgate: {file}:8:7: warning: exemption relies only on podSelector"
            )),
            "{output}: {err}"
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!stdout.contains("warning: exemption"), "{output}: {stdout}");
        if output != "text" {
            let _: Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("{output}: stdout stays JSON: {e}"));
        }
    }
    // The shipped policies load without warnings.
    let out = podgate(&["check", &pod], None);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

const BAD_DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: app
          image: nginx:1.27
          command: ["sh", "-c", "echo '10.1.2.3 db.internal' >> /etc/hosts && exec nginx"]
          volumeMounts: [{name: hosts, mountPath: /etc/hosts}]
      volumes: [{name: hosts, configMap: {name: hosts}}]
"#;

const GOOD_POD: &str = r#"apiVersion: v1
kind: Pod
metadata: {name: ok, namespace: team-a}
spec:
  containers: [{name: app, image: nginx}]
---
apiVersion: v1
kind: Service
metadata: {name: svc}
spec: {ports: [{port: 80}]}
"#;

#[test]
fn check_reports_violations_and_changes_with_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "apps/good.yaml", GOOD_POD);
    let good = podgate(&["check", dir.path().to_str().unwrap()], None);
    let text = String::from_utf8_lossy(&good.stdout);
    assert_eq!(good.status.code(), Some(0), "{text}");
    assert!(
        text.contains(
            "CHANGE [always-pull-mutable-tags] set spec.containers[0].imagePullPolicy to Always"
        ),
        "{text}"
    );
    assert!(
        text.contains("1 objects with a pod spec checked: 0 denied"),
        "{text}"
    );

    write(dir.path(), "apps/nested/deploy.yaml", BAD_DEPLOYMENT);
    let bad = podgate(&["check", "-o", "json", dir.path().to_str().unwrap()], None);
    assert_eq!(bad.status.code(), Some(1));
    let reports: Value = serde_json::from_slice(&bad.stdout).unwrap();
    let deploy = reports
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "Deployment")
        .unwrap();
    assert_eq!(deploy["denied"], true);
    assert_eq!(deploy["namespace"], "default");
    let messages: Vec<&str> = deploy["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["message"].as_str().unwrap())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("spec.template.spec.containers[0].volumeMounts[0].mountPath")),
        "{messages:?}"
    );
}

#[test]
fn check_exits_2_on_unreadable_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "broken.yaml", "kind: [\n");
    let out = podgate(&["check", &file], None);
    assert_eq!(out.status.code(), Some(2));
    let bad_pod = write(
        dir.path(),
        "pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: 5}\n",
    );
    let out = podgate(&["check", &bad_pod], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ERROR object is not a valid Pod"));
}

#[test]
fn check_passes_on_the_shipped_policy_files_themselves() {
    // Policy files are not workloads: nothing to evaluate, nothing denied.
    let out = podgate(&["check", "policies"], None);
    assert_eq!(out.status.code(), Some(0));
}
