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
        text.contains("2 objects read from 1 files: 1 checked (0 denied, 1 changes), 0 unreadable, 1 without a pod spec"),
        "{text}"
    );

    write(dir.path(), "apps/nested/deploy.yaml", BAD_DEPLOYMENT);
    let bad = podgate(&["check", "-o", "json", dir.path().to_str().unwrap()], None);
    assert_eq!(bad.status.code(), Some(1));
    let reports: Value = serde_json::from_slice(&bad.stdout).unwrap();
    let deploy = reports["objects"]
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
    assert!(String::from_utf8_lossy(&out.stdout).contains("UNREADABLE object is not a valid Pod"));
}

#[test]
fn check_passes_on_the_shipped_policy_files_themselves() {
    // Policy files are not workloads: nothing to evaluate, nothing denied.
    let out = podgate(&["check", "policies"], None);
    assert_eq!(out.status.code(), Some(0));
}

fn manifests(sub: &str) -> String {
    root()
        .join("tests/fixtures/manifests")
        .join(sub)
        .display()
        .to_string()
}

/// JSON output of `podgate check`, which must always parse.
fn check_json(args: &[&str]) -> (Option<i32>, Value) {
    let mut all = vec!["check", "-o", "json"];
    all.extend_from_slice(args);
    let out = podgate(&all, None);
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), json)
}

fn assert_counts_add_up(summary: &Value) {
    let n = |k: &str| summary[k].as_u64().unwrap();
    assert_eq!(
        n("objects_read"),
        n("checked") + n("unreadable") + n("without_pod_spec"),
        "{summary}"
    );
}

#[test]
fn check_reads_every_file_past_a_bad_document_and_a_broken_file() {
    let (code, run) = check_json(&[&manifests("mixed")]);
    // A denial wins over unreadable input.
    assert_eq!(code, Some(1), "{run:#}");
    assert_counts_add_up(&run["summary"]);
    assert_eq!(run["summary"]["files"], 3);
    assert_eq!(run["summary"]["objects_read"], 6);
    assert_eq!(run["summary"]["input_errors"], 2);
    let errors = run["errors"].as_array().unwrap();
    let located: Vec<(String, u64, &str)> = errors
        .iter()
        .map(|e| {
            let file = e["file"].as_str().unwrap();
            let name = file.rsplit('/').next().unwrap().to_string();
            (
                name,
                e["line"].as_u64().unwrap(),
                e["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(located[0].0, "app.yaml");
    assert_eq!(located[0].1, 38, "the duplicated `port` key");
    assert!(located[0].2.contains("duplicate"), "{located:?}");
    assert_eq!(located[1].0, "broken.json");
    assert_eq!(located[1].1, 5);
    // The documents after the bad one in app.yaml were still read: the Pod is denied.
    let objects = run["objects"].as_array().unwrap();
    let pod = objects.iter().find(|o| o["name"] == "web-debug").unwrap();
    assert_eq!(pod["denied"], true);
    assert_eq!(pod["document"], 4);
    assert_eq!(pod["line"], 40);
    // Unreadable objects are reported with their reason, not dropped.
    let future = objects.iter().find(|o| o["name"] == "future").unwrap();
    assert!(future["error"].as_str().unwrap().contains("apps/v1beta3"));
    let no_kind = objects.iter().find(|o| o["name"] == "no-kind").unwrap();
    assert_eq!(no_kind["error"], "no kind");

    // Without the denied Pod, unreadable input decides: exit 2.
    let (code, run) = check_json(&[
        &manifests("mixed/unknown.yaml"),
        &manifests("mixed/broken.json"),
    ]);
    assert_eq!(code, Some(2), "{run:#}");
    assert_counts_add_up(&run["summary"]);
    assert_eq!(run["summary"]["unreadable"], 2);
    assert_eq!(run["errors"].as_array().unwrap().len(), 1);

    // A path that does not exist is an input error too, and the others are still read.
    let (code, run) = check_json(&["no/such/dir", &manifests("clean")]);
    assert_eq!(code, Some(2), "{run:#}");
    assert_eq!(run["errors"][0]["file"], "no/such/dir");
    assert_eq!(run["summary"]["checked"], 2);
}

#[test]
fn check_evaluates_deprecated_group_versions_with_a_note() {
    let (code, run) = check_json(&[&manifests("deprecated")]);
    assert_eq!(code, Some(1), "{run:#}");
    assert_counts_add_up(&run["summary"]);
    assert_eq!(run["summary"]["checked"], 5);
    assert_eq!(run["summary"]["deprecated_api"], 5);
    assert_eq!(run["summary"]["unreadable"], 0);
    let by_version = |v: &str| {
        run["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["api_version"] == v)
            .unwrap_or_else(|| panic!("no {v} object in {run:#}"))
            .clone()
    };
    for (version, denied) in [
        ("extensions/v1beta1", true),
        ("apps/v1beta1", false),
        ("apps/v1beta2", true),
        ("batch/v1beta1", true),
        ("batch/v2alpha1", false),
    ] {
        let o = by_version(version);
        assert_eq!(o["denied"], denied, "{version}: {o:#}");
        assert!(
            o["api_note"].as_str().unwrap().contains("no longer served"),
            "{o:#}"
        );
    }
    let text = podgate(&["check", &manifests("deprecated")], None);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("NOTE extensions/v1beta1 Deployment is no longer served (removed in Kubernetes 1.16); evaluated as apps/v1"),
        "{text}"
    );
}

#[test]
fn check_summary_only_prints_the_summary_line_with_the_same_exit_code() {
    let full = podgate(&["check", &manifests("mixed")], None);
    let short = podgate(&["check", "--summary-only", &manifests("mixed")], None);
    let quiet = podgate(&["check", "-q", &manifests("mixed")], None);
    assert_eq!(full.status.code(), Some(1));
    assert_eq!(short.status.code(), Some(1));
    assert_eq!(short.stdout, quiet.stdout);
    let short = String::from_utf8_lossy(&short.stdout);
    let full = String::from_utf8_lossy(&full.stdout);
    assert_eq!(short.lines().count(), 1, "{short}");
    assert_eq!(full.lines().last(), short.lines().next());
    assert!(
        short.starts_with("6 objects read from 3 files: 2 checked (1 denied, 0 changes), 2 unreadable, 2 without a pod spec; 2 input errors"),
        "{short}"
    );
    let (code, run) = check_json(&["--summary-only", &manifests("mixed")]);
    assert_eq!(code, Some(1));
    assert!(run.get("objects").is_none());
    assert_eq!(run["errors"].as_array().unwrap().len(), 2);
    let (code, _) = check_json(&["-q", &manifests("clean")]);
    assert_eq!(code, Some(0));
}

#[test]
fn check_json_is_valid_even_when_nothing_could_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad.yaml", "a: [\n");
    let (code, run) = check_json(&[&bad]);
    assert_eq!(code, Some(2));
    assert_eq!(run["objects"], serde_json::json!([]));
    assert!(run["errors"][0]["line"].as_u64().is_some(), "{run:#}");
    assert!(
        run["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("invalid yaml")
    );
    assert_eq!(run["summary"]["objects_read"], 0);
}

/// `.pre-commit-hooks.yaml` runs `podgate check` as pre-commit would: the entry, then the
/// hook's args, then the staged file names.
#[test]
fn pre_commit_hooks_run_podgate_check_on_the_staged_files() {
    let text = std::fs::read_to_string(root().join(".pre-commit-hooks.yaml")).unwrap();
    let hooks: Vec<Value> = serde_saphyr::from_str(&text).unwrap();
    let ids: Vec<&str> = hooks.iter().map(|h| h["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["podgate-check", "podgate-check-verbose"]);
    let files = regex::Regex::new(hooks[0]["files"].as_str().unwrap()).unwrap();
    assert!(files.is_match("k8s/app.yaml") && files.is_match("a.yml") && files.is_match("a.json"));
    assert!(!files.is_match("README.md"));
    for hook in &hooks {
        assert_eq!(
            hook["language"], "rust",
            "built from this repository with cargo"
        );
        let entry: Vec<&str> = hook["entry"].as_str().unwrap().split_whitespace().collect();
        assert_eq!(entry[..2], ["podgate", "check"]);
        let mut args: Vec<String> = entry[1..].iter().map(|s| s.to_string()).collect();
        args.push(manifests("mixed/app.yaml"));
        args.push(manifests("clean/web.yaml"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = podgate(&args, None);
        assert_eq!(out.status.code(), Some(1), "{}", hook["id"]);
        let text = String::from_utf8_lossy(&out.stdout);
        let summary_only = hook["id"] == "podgate-check";
        assert_eq!(text.lines().count() == 1, summary_only, "{text}");
        assert!(text.contains("denied"), "{text}");
    }
}
