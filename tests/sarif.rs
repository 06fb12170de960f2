//! `-o sarif` for `check` and `audit`, validated against the SARIF 2.1.0 JSON schema that
//! scripts/test installs (target/schemas/sarif-2.1.0.json, from the npm package
//! @microsoft/jest-sarif) with Python's jsonschema.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod apiserver;

use std::path::{Path, PathBuf};
use std::process::Command;

use apiserver::ApiServer;
use serde_json::{Value, json};

const POLICY: &str = "apiVersion: podgate.dev/v1alpha1\nkind: PodPolicy\nmetadata:\n  name: no-hosts-edits\nspec:\n  action: Enforce\n  validate:\n    hostsFile: {}\n---\napiVersion: podgate.dev/v1alpha1\nkind: PodPolicy\nmetadata:\n  name: host-ns\nspec:\n  action: Warn\n  validate:\n    hostNamespaces:\n      forbiddenCombinations:\n        - [hostPID, hostNetwork]\n";

const MANIFESTS: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: unrelated\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      hostPID: true\n      hostNetwork: true\n      containers:\n        - name: app\n          image: web:1\n          command: [sh, -c, 'echo 1.2.3.4 db >> /etc/hosts']\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: broken\nspec: 42\n";

fn schema_path() -> PathBuf {
    let p = std::env::var_os("PODGATE_SARIF_SCHEMA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/schemas/sarif-2.1.0.json")
        });
    assert!(
        p.exists(),
        "{} is missing: run the README's test command (scripts/test), which installs the SARIF 2.1.0 schema",
        p.display()
    );
    p
}

/// Problems of `log` against the SARIF 2.1.0 schema (empty when valid).
fn sarif_problems(log: &Value) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("log.sarif");
    std::fs::write(&file, serde_json::to_vec(log).unwrap()).unwrap();
    let script = "import json, sys, jsonschema\n\
schema = json.load(open(sys.argv[1]))\n\
log = json.load(open(sys.argv[2]))\n\
cls = jsonschema.validators.validator_for(schema)\n\
cls.check_schema(schema)\n\
errors = cls(schema, format_checker=cls.FORMAT_CHECKER).iter_errors(log)\n\
print('\\n'.join('/'.join(str(p) for p in e.absolute_path) + ': ' + e.message for e in errors))\n";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(schema_path())
        .arg(&file)
        .output()
        .expect("python3 with jsonschema (scripts/test installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn podgate(args: &[&str], envs: &[(&str, &Path)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_podgate"));
    cmd.args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_validator_rejects_a_log_that_breaks_the_schema() {
    let bad = json!({"version": "2.1.0", "runs": [{"tool": {"driver": {}}, "results": [{"ruleId": "x"}]}]});
    let problems = sarif_problems(&bad);
    assert!(
        !problems.is_empty(),
        "a driver without a name and a result without a message must fail"
    );
}

#[test]
fn check_sarif_names_rule_message_file_and_line_and_fits_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.yaml"), POLICY).unwrap();
    let manifest_dir = tempfile::tempdir().unwrap();
    let manifests = manifest_dir.path().join("app manifests.yaml");
    std::fs::write(&manifests, MANIFESTS).unwrap();
    let policies = dir.path().display().to_string();
    let file = manifests.display().to_string();
    let (code, stdout, stderr) = podgate(
        &["check", "--policies", &policies, "-o", "sarif", &file],
        &[],
    );
    // The broken Pod is unreadable, but the denied Deployment decides: 1 wins over 2.
    assert_eq!(code, 1, "a denial wins over the broken Pod: {stderr}");
    let log: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(sarif_problems(&log), Vec::<String>::new());
    let mut broken = log.clone();
    broken["runs"][0]["results"][0]["level"] = json!("fatal");
    assert!(
        !sarif_problems(&broken).is_empty(),
        "the schema is really applied"
    );
    let run = &log["runs"][0];
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{results:#?}");
    let hosts = results.iter().find(|r| r["ruleId"] == "hostsFile").unwrap();
    assert_eq!(hosts["level"], "error");
    assert!(
        hosts["message"]["text"]
            .as_str()
            .unwrap()
            .starts_with("[no-hosts-edits] ")
    );
    let loc = &hosts["locations"][0];
    let uri = loc["physicalLocation"]["artifactLocation"]["uri"]
        .as_str()
        .unwrap();
    assert!(uri.ends_with("app%20manifests.yaml"), "{uri}");
    assert_eq!(
        loc["physicalLocation"]["region"]["startLine"], 6,
        "the Deployment's document starts on line 6"
    );
    assert_eq!(
        loc["logicalLocations"][0]["fullyQualifiedName"],
        "shop/Deployment/web"
    );
    let host_ns = results
        .iter()
        .find(|r| r["ruleId"] == "hostNamespaces")
        .unwrap();
    assert_eq!(host_ns["level"], "warning");
    let invocation = &run["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], false);
    let note = invocation["toolExecutionNotifications"][0]["message"]["text"]
        .as_str()
        .unwrap();
    assert!(note.contains("broken"), "{note}");
}

/// An object in a removed group version is evaluated as the served one, and the SARIF log says
/// so at its file and line, as a warning that leaves the run successful.
#[test]
fn check_sarif_notes_a_deprecated_group_version_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.yaml"), POLICY).unwrap();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/manifests/deprecated/extensions-v1beta1-deployment.yaml");
    let policies = dir.path().display().to_string();
    let (_, stdout, stderr) = podgate(
        &[
            "check",
            "--policies",
            &policies,
            "-o",
            "sarif",
            &manifest.display().to_string(),
        ],
        &[],
    );
    let log: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    assert_eq!(sarif_problems(&log), Vec::<String>::new());
    let invocation = &log["runs"][0]["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], true, "{invocation:#}");
    let notes = invocation["toolExecutionNotifications"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{notes:#?}");
    assert_eq!(notes[0]["level"], "warning");
    let text = notes[0]["message"]["text"].as_str().unwrap();
    assert!(text.contains("extensions/v1beta1"), "{text}");
    let at = &notes[0]["locations"][0]["physicalLocation"];
    assert!(
        at["artifactLocation"]["uri"]
            .as_str()
            .unwrap()
            .ends_with("extensions-v1beta1-deployment.yaml"),
        "{at}"
    );
    assert!(at["region"]["startLine"].as_u64().unwrap() >= 1, "{at}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_sarif_names_rule_message_and_object_and_fits_the_schema() {
    let server = ApiServer::start().await;
    server.insert(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "bad", "namespace": "shop"},
        "spec": {"containers": [{"name": "c", "image": "app:1", "command": ["sh", "-c", "echo x >> /etc/hosts"]}]},
    }));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.yaml"), POLICY).unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig);
    let policies = dir.path().display().to_string();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_podgate"))
        .args(["audit", "-A", "-o", "sarif", "--policies", &policies])
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sarif_problems(&log), Vec::<String>::new());
    let r = &log["runs"][0]["results"][0];
    assert_eq!(r["ruleId"], "hostsFile");
    assert_eq!(
        r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"],
        "shop/Pod/bad"
    );
    assert!(
        r["properties"]["uid"]
            .as_str()
            .is_some_and(|u| !u.is_empty())
    );
    assert_eq!(
        log["runs"][0]["invocations"][0]["executionSuccessful"],
        true
    );
}
