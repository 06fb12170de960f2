//! Every real AdmissionReview capture in ../shared/fixtures goes through `review` in both
//! modes with the shipped policies, as the apiserver would send it: mutate first, then
//! validate the patched object. Every answer must pass the apiserver's own checks.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::path::{Path, PathBuf};

use base64::Engine as _;
use podgate::admission::{Webhook, review};

#[path = "common/contract.rs"]
mod contract;

use contract::verify_response;
use podgate::cli::wrap_bare_request;
use podgate::policy::PolicySet;
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixtures_dir() -> PathBuf {
    root().join("../shared/fixtures")
}

fn shipped() -> PolicySet {
    PolicySet::load_dir(&root().join("policies")).expect("shipped policies load")
}

fn now() -> jiff::Timestamp {
    "2026-11-27T12:00:00Z".parse().unwrap()
}

fn load(name: &str) -> Vec<u8> {
    let bytes = std::fs::read(fixtures_dir().join(name)).expect("fixture readable");
    wrap_bare_request(bytes)
}

/// (policy, rule) pairs of the findings in an answer.
fn findings(set: &PolicySet, body: &[u8], webhook: Webhook) -> (bool, Vec<(String, String)>) {
    let r = review(set, body, webhook, now()).expect("review succeeds");
    verify_response(body, &r.body, webhook).expect("answer passes the apiserver's checks");
    let pairs = r
        .summary
        .findings
        .iter()
        .map(|f| (f.policy.clone(), f.rule.as_str().to_string()))
        .collect();
    (r.summary.allowed, pairs)
}

/// The request with `object` replaced by what the mutating webhook's patch makes of it.
fn mutated(set: &PolicySet, body: &[u8]) -> (Vec<u8>, Option<Value>) {
    let r = review(set, body, Webhook::Mutate, now()).unwrap();
    let patched = verify_response(body, &r.body, Webhook::Mutate).unwrap();
    let mut request: Value = serde_json::from_slice(body).unwrap();
    if let Some(obj) = &patched {
        request["request"]["object"] = obj.clone();
    }
    (serde_json::to_vec(&request).unwrap(), patched)
}

const HOSTNS: &str = "deny-unsafe-host-namespaces";

/// fixture, findings of /validate after /mutate's patch was applied.
fn expectations() -> Vec<(&'static str, Vec<(&'static str, &'static str)>)> {
    let hostns = |n: usize| vec![(HOSTNS, "hostNamespaces"); n];
    vec![
        ("kubewarden-deployment-create-context.json", hostns(2)),
        ("kubewarden-pod-create-apparmor-annotations.json", vec![]),
        (
            "kubewarden-pod-create-capabilities-add-with-sidecar.json",
            vec![],
        ),
        (
            "kubewarden-pod-create-hostnetwork-hostpid-hostipc-hostport.json",
            hostns(2),
        ),
        (
            "kubewarden-pod-create-hostpath-and-projected-volumes.json",
            vec![],
        ),
        (
            "kubewarden-pod-create-init-container-allowprivilegeescalation.json",
            vec![],
        ),
        (
            "kubewarden-pod-create-minimal-init-ephemeral-containers-env.json",
            vec![],
        ),
        ("kubewarden-pod-create-minimal-probes.json", vec![]),
        ("kubewarden-pod-create-privileged-container.json", vec![]),
        (
            "kubewarden-pod-create-privileged-ephemeral-container-edited.json",
            vec![],
        ),
        (
            "kubewarden-pod-create-privileged-init-container.json",
            vec![],
        ),
        (
            "kubewarden-pod-create-runasuser-runasgroup-supplementalgroups.json",
            vec![],
        ),
        ("kubewarden-pod-create-runtimeclassname.json", vec![]),
        ("kubewarden-pod-create-shareprocessnamespace.json", vec![]),
        ("kubewarden-pod-create-sysctls.json", vec![]),
        ("kubewarden-pod-delete-oldobject-running.json", vec![]),
        (
            "kubewarden-policy-server-review-pod-create-privileged.json",
            vec![],
        ),
        ("kubewarden-replicaset-create-context.json", vec![]),
        (
            "kubewarden-review-pod-create-flexvolume-minimal.json",
            vec![],
        ),
    ]
}

#[test]
fn every_fixture_is_covered_by_the_expectations() {
    let mut on_disk: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("../shared/fixtures exists")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = expectations().iter().map(|(n, _)| n.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

#[test]
fn fixtures_mutate_then_validate_with_the_shipped_policies() {
    let set = shipped();
    for (name, expected) in expectations() {
        let body = load(name);
        let (mutate_allowed, mutate_findings) = findings(&set, &body, Webhook::Mutate);
        assert!(mutate_allowed, "{name}: mutate denied: {mutate_findings:?}");
        let (patched_body, _) = mutated(&set, &body);
        let (allowed, got) = findings(&set, &patched_body, Webhook::Validate);
        let want: Vec<(String, String)> = expected
            .iter()
            .map(|(p, r)| (p.to_string(), r.to_string()))
            .collect();
        assert_eq!(got, want, "{name}");
        assert_eq!(allowed, want.is_empty(), "{name}");
        // Reinvocation: mutating the mutated object again changes nothing.
        let again = review(&set, &patched_body, Webhook::Mutate, now()).unwrap();
        assert_eq!(
            again.summary.patch_ops, 0,
            "{name}: second mutation patched"
        );
    }
}

#[test]
fn unmutated_pods_with_if_not_present_latest_fail_the_validating_recheck() {
    // The mutating webhook fails open; the validating one re-checks the final state.
    let set = shipped();
    let body = load("kubewarden-pod-create-privileged-container.json");
    let (allowed, got) = findings(&set, &body, Webhook::Validate);
    assert!(!allowed);
    assert!(
        got.iter()
            .all(|(p, r)| p == "always-pull-mutable-tags" && r == "imagePullPolicy")
    );
    assert_eq!(got.len(), 2, "one per container: {got:?}");
}

#[test]
fn mutate_patch_replaces_if_not_present_for_latest_and_warns_per_container() {
    let set = shipped();
    let body = load("kubewarden-pod-create-capabilities-add-with-sidecar.json");
    let r = review(&set, &body, Webhook::Mutate, now()).unwrap();
    let answer: Value = serde_json::from_slice(&r.body).unwrap();
    let patch = base64::engine::general_purpose::STANDARD
        .decode(answer["response"]["patch"].as_str().unwrap())
        .unwrap();
    let ops: Value = serde_json::from_slice(&patch).unwrap();
    assert_eq!(
        ops,
        json!([
            {"op": "replace", "path": "/spec/containers/0/imagePullPolicy", "value": "Always"},
            {"op": "replace", "path": "/spec/containers/1/imagePullPolicy", "value": "Always"}
        ])
    );
    let warnings = answer["response"]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 2);
    assert!(
        warnings[0]
            .as_str()
            .unwrap()
            .contains("container \"nginx\"")
    );
}

#[test]
fn patched_objects_keep_fields_unknown_to_this_build() {
    let set = shipped();
    let mut request: Value =
        serde_json::from_slice(&load("kubewarden-pod-create-runtimeclassname.json")).unwrap();
    let object = &mut request["request"]["object"];
    object["futureTopLevel"] = json!({"x": 1});
    object["spec"]["futurePodField"] = json!(["a"]);
    object["spec"]["containers"][0]["futureContainerField"] = json!(true);
    object["metadata"]["futureMeta"] = json!("kept");
    let body = serde_json::to_vec(&request).unwrap();
    let (_, patched) = mutated(&set, &body);
    let patched = patched.expect("the fixture's latest image is patched");
    assert_eq!(patched["futureTopLevel"], json!({"x": 1}));
    assert_eq!(patched["spec"]["futurePodField"], json!(["a"]));
    assert_eq!(
        patched["spec"]["containers"][0]["futureContainerField"],
        json!(true)
    );
    assert_eq!(patched["metadata"]["futureMeta"], json!("kept"));
    // Only the targeted field changed.
    let mut expected = request["request"]["object"].clone();
    expected["spec"]["containers"][0]["imagePullPolicy"] = json!("Always");
    assert_eq!(patched, expected);
}

/// Writes patched Pods and the shipped policy examples to a folder and runs the official
/// schema check on them. `kubernetes-validate` is installed by the README's test command.
#[test]
fn patched_pods_pass_kubernetes_validate_strict() {
    let set = shipped();
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (name, _) in expectations() {
        let body = load(name);
        let (_, patched) = mutated(&set, &body);
        let Some(mut object) = patched else { continue };
        // Captures omit these; the apiserver fills them before storage.
        object["apiVersion"] = json!("v1");
        object["kind"] = json!("Pod");
        let path = dir.path().join(name.replace(".json", ".yaml"));
        std::fs::write(&path, serde_json::to_vec_pretty(&object).unwrap()).unwrap();
        files.push(path);
    }
    assert!(
        files.len() >= 10,
        "expected many patched Pods, got {}",
        files.len()
    );
    run_kubernetes_validate(&files);
}

pub fn run_kubernetes_validate(files: &[PathBuf]) {
    let output = std::process::Command::new("kubernetes-validate")
        .arg("--strict")
        .arg("--quiet")
        .args(files)
        .output()
        .unwrap_or_else(|e| {
            panic!("kubernetes-validate is not runnable ({e}); run the README's test command (scripts/test), which installs it")
        });
    assert!(
        output.status.success(),
        "kubernetes-validate failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn fixture_paths_exist_relative_to_the_crate() {
    assert!(Path::new(&fixtures_dir()).join("README.md").exists());
}
