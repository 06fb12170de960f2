//! The repository's own AdmissionReview fixtures (`tests/fixtures/reviews`, described in
//! `tests/fixtures/README.md`) go through `review` in both modes with the shipped policies, as
//! the apiserver would send them: mutate first, then validate the patched object. Every answer
//! must pass the apiserver's own checks, and each fixture's decision is pinned. An extra corpus
//! (`../shared/fixtures` or `$PODGATE_EXTRA_FIXTURES`), when present, gets the same checks
//! without pinned decisions; when absent, that test says so and checks the own set only.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod fixture_set;

use std::path::PathBuf;

use base64::Engine as _;
use podgate::admission::{Webhook, review};

#[path = "common/contract.rs"]
mod contract;

use contract::verify_response;
use podgate::policy::PolicySet;
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shipped() -> PolicySet {
    PolicySet::load_dir(&root().join("policies")).expect("shipped policies load")
}

fn now() -> jiff::Timestamp {
    "2026-11-27T12:00:00Z".parse().unwrap()
}

fn load(name: &str) -> Vec<u8> {
    fixture_set::own_bytes(name)
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
const HOSTS: &str = "deny-hosts-file-edits";
const PULL: &str = "always-pull-mutable-tags";
const ALIASES: &str = "inject-host-aliases-example";

/// What each own fixture gets from the shipped policies (the README's "expected" column).
struct Expected {
    name: &'static str,
    /// The paths the mutating webhook's patch touches.
    patch: &'static [&'static str],
    /// Findings of /validate on the object as the fixture holds it (before any patch).
    unpatched: &'static [(&'static str, &'static str)],
    /// Findings of /validate after /mutate's patch was applied.
    patched: &'static [(&'static str, &'static str)],
}

const fn allowed(name: &'static str) -> Expected {
    Expected {
        name,
        patch: &[],
        unpatched: &[],
        patched: &[],
    }
}

const fn denied(name: &'static str, by: &'static [(&'static str, &'static str)]) -> Expected {
    Expected {
        name,
        patch: &[],
        unpatched: by,
        patched: by,
    }
}

fn expectations() -> Vec<Expected> {
    vec![
        denied("cronjob-create-hosts-heredoc.json", &[(HOSTS, "hostsFile")]),
        allowed("daemonset-update-image.json"),
        // [hostPID, hostIPC] and [hostPID, capability:SYS_PTRACE].
        denied(
            "deployment-create-host-namespaces.json",
            &[(HOSTNS, "hostNamespaces"), (HOSTNS, "hostNamespaces")],
        ),
        allowed("pod-connect-exec.json"),
        allowed("pod-create-binding.json"),
        denied(
            "pod-create-daemonset-host-namespaces.json",
            &[(HOSTNS, "hostNamespaces")],
        ),
        allowed("pod-create-daemonset-kube-system.json"),
        allowed("pod-create-dry-run.json"),
        allowed("pod-create-eviction.json"),
        Expected {
            name: "pod-create-generatename-mutating.json",
            patch: &["/spec/containers/0/imagePullPolicy"],
            unpatched: &[(PULL, "imagePullPolicy")],
            patched: &[],
        },
        allowed("pod-create-generatename-validating.json"),
        denied("pod-create-hosts-append.json", &[(HOSTS, "hostsFile")]),
        denied("pod-create-hosts-mount.json", &[(HOSTS, "hostsFile")]),
        denied(
            "pod-create-lifecycle-hosts-tee.json",
            &[(HOSTS, "hostsFile")],
        ),
        allowed("pod-create-mirror.json"),
        Expected {
            name: "pod-create-serviceaccount-opted-in.json",
            patch: &["/spec/hostAliases"],
            unpatched: &[(ALIASES, "hostAliases")],
            patched: &[],
        },
        allowed("pod-create-statefulset.json"),
        allowed("pod-create-v1beta1.json"),
        allowed("pod-delete.json"),
        denied(
            "pod-update-ephemeralcontainers-hosts-edit.json",
            &[(HOSTS, "hostsFile")],
        ),
        allowed("pod-update-ephemeralcontainers.json"),
        allowed("pod-update-labels.json"),
        allowed("pod-update-status.json"),
    ]
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(p, r)| (p.to_string(), r.to_string()))
        .collect()
}

fn patch_paths(set: &PolicySet, body: &[u8]) -> Vec<String> {
    let r = review(set, body, Webhook::Mutate, now()).unwrap();
    let answer: Value = serde_json::from_slice(&r.body).unwrap();
    let Some(patch) = answer["response"]["patch"].as_str() else {
        return Vec::new();
    };
    let ops: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(patch)
            .unwrap(),
    )
    .unwrap();
    ops.as_array()
        .unwrap()
        .iter()
        .map(|op| op["path"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_own_fixture_is_covered_by_the_expectations_and_the_readme() {
    let suite = fixture_set::load_suite(&root(), &root().join("no-extra-corpus-here"));
    let on_disk: Vec<String> = suite.own.iter().map(|f| f.name.clone()).collect();
    let mut listed: Vec<String> = expectations().iter().map(|e| e.name.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
    let readme = std::fs::read_to_string(root().join("tests/fixtures/README.md")).unwrap();
    for name in &on_disk {
        assert!(
            readme.contains(&format!("| `{name}` |")),
            "tests/fixtures/README.md does not describe {name}"
        );
    }
}

/// The shapes the README promises are really in the set: every operation, the subresources,
/// both review versions, and the request fields a real apiserver fills.
#[test]
fn own_fixtures_cover_every_operation_subresource_and_review_version() {
    let suite = fixture_set::load_suite(&root(), &root().join("no-extra-corpus-here"));
    let requests: Vec<&Value> = suite.own.iter().map(|f| &f.review["request"]).collect();
    let has = |pred: &dyn Fn(&Value) -> bool| requests.iter().any(|r| pred(r));
    for op in ["CREATE", "UPDATE", "DELETE", "CONNECT"] {
        assert!(has(&|r| r["operation"] == op), "no {op}");
    }
    for sub in [
        "status",
        "ephemeralcontainers",
        "binding",
        "eviction",
        "exec",
    ] {
        assert!(
            has(&|r| r["subResource"] == sub && r["requestSubResource"] == sub),
            "no pods/{sub}"
        );
    }
    for version in ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"] {
        assert!(
            suite.own.iter().any(|f| f.review["apiVersion"] == version),
            "no {version} review"
        );
    }
    for kind in ["Pod", "Deployment", "DaemonSet", "CronJob"] {
        assert!(has(&|r| r["kind"]["kind"] == kind), "no {kind}");
    }
    // Fields every request carries, as the apiserver always sets them.
    for f in &suite.own {
        let r = &f.review["request"];
        for field in [
            "uid",
            "kind",
            "resource",
            "requestKind",
            "requestResource",
            "operation",
            "userInfo",
            "dryRun",
        ] {
            assert!(r.get(field).is_some(), "{}: no request.{field}", f.name);
        }
        assert!(
            r.get("object").is_some() && r.get("oldObject").is_some(),
            "{}",
            f.name
        );
    }
    assert!(has(
        &|r| r["dryRun"] == true && r["options"]["dryRun"] == json!(["All"])
    ));
    assert!(has(
        &|r| r["userInfo"]["extra"].is_object() && r["userInfo"]["uid"].is_string()
    ));
    assert!(has(&|r| r["object"]["metadata"]["managedFields"].is_array()));
    assert!(has(
        &|r| r["object"]["metadata"]["ownerReferences"].is_array()
    ));
    assert!(has(&|r| r["object"]["status"]["phase"] == "Pending"));
    assert!(has(&|r| r["oldObject"]["status"]["phase"] == "Running"));
    // A generateName CREATE has no request name (omitempty), as the apiserver sends it.
    assert!(has(&|r| r["operation"] == "CREATE"
        && r.get("name").is_none()
        && r["object"]["metadata"]["generateName"].is_string()));
    assert!(has(&|r| r["operation"] == "DELETE" && r["object"].is_null()));
    assert!(has(
        &|r| r["operation"] == "CONNECT" && r["options"].is_null()
    ));
}

#[test]
fn own_fixtures_mutate_then_validate_with_the_shipped_policies() {
    let set = shipped();
    for e in expectations() {
        let name = e.name;
        let body = load(name);
        let (mutate_allowed, mutate_findings) = findings(&set, &body, Webhook::Mutate);
        assert!(mutate_allowed, "{name}: mutate denied: {mutate_findings:?}");
        assert_eq!(patch_paths(&set, &body), e.patch.to_vec(), "{name}: patch");
        let (allowed, got) = findings(&set, &body, Webhook::Validate);
        assert_eq!(got, pairs(e.unpatched), "{name}: unpatched");
        assert_eq!(allowed, e.unpatched.is_empty(), "{name}");
        let (patched_body, _) = mutated(&set, &body);
        let (allowed, got) = findings(&set, &patched_body, Webhook::Validate);
        assert_eq!(got, pairs(e.patched), "{name}: patched");
        assert_eq!(allowed, e.patched.is_empty(), "{name}");
        // Reinvocation: mutating the mutated object again changes nothing.
        let again = review(&set, &patched_body, Webhook::Mutate, now()).unwrap();
        assert_eq!(
            again.summary.patch_ops, 0,
            "{name}: second mutation patched"
        );
    }
}

#[test]
fn the_hosts_append_denial_shows_the_host_aliases_entry_to_use() {
    // The README's quick start sends this fixture.
    let body = load("pod-create-hosts-append.json");
    let r = review(&shipped(), &body, Webhook::Validate, now()).unwrap();
    let answer: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(answer["response"]["allowed"], false);
    assert_eq!(answer["response"]["status"]["code"], 403);
    let message = answer["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.contains(r#"hostAliases: [{ip: "10.20.0.7", hostnames: ["db.internal"]}]"#),
        "{message}"
    );
}

/// The extra corpus, when it exists: every answer passes the apiserver's checks, and the
/// validating webhook accepts what the mutating one leaves (except where a validation rule
/// denies), and a second mutation is a no-op. Absent: says so and checks nothing more, since
/// the own set above already ran.
#[test]
fn extra_corpus_when_present_gets_valid_idempotent_answers() {
    let suite = fixture_set::suite();
    let Some(extra) = &suite.extra else {
        eprintln!("{}", suite.describe());
        return;
    };
    assert!(
        !extra.is_empty(),
        "{}: no *.json",
        suite.extra_dir.display()
    );
    let set = shipped();
    for f in extra {
        let body = f.bytes();
        let (mutate_allowed, got) = findings(&set, &body, Webhook::Mutate);
        assert!(mutate_allowed, "{}: mutate denied: {got:?}", f.name);
        let (patched_body, _) = mutated(&set, &body);
        let (_, got) = findings(&set, &patched_body, Webhook::Validate);
        assert!(
            got.iter().all(|(p, _)| p != PULL && p != ALIASES),
            "{}: the mutation's own re-check failed after the patch: {got:?}",
            f.name
        );
        let again = review(&set, &patched_body, Webhook::Mutate, now()).unwrap();
        assert_eq!(
            again.summary.patch_ops, 0,
            "{}: second mutation patched",
            f.name
        );
    }
}

#[test]
fn unmutated_pods_with_if_not_present_latest_fail_the_validating_recheck() {
    // The mutating webhook fails open; the validating one re-checks the final state.
    let set = shipped();
    let body = load("pod-create-generatename-mutating.json");
    let (allowed, got) = findings(&set, &body, Webhook::Validate);
    assert!(!allowed);
    assert_eq!(
        got,
        pairs(&[(PULL, "imagePullPolicy")]),
        "one per container"
    );
}

#[test]
fn mutate_patch_replaces_if_not_present_for_latest_and_warns_per_container() {
    let set = shipped();
    let mut request = fixture_set::own("pod-create-generatename-mutating.json");
    // Both containers on a mutable tag: one op and one warning each, in container order.
    request["request"]["object"]["spec"]["containers"][1]["image"] = json!("fluent/fluent-bit");
    let body = serde_json::to_vec(&request).unwrap();
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
    assert!(warnings[0].as_str().unwrap().contains("container \"api\""));
    assert!(
        warnings[1]
            .as_str()
            .unwrap()
            .contains("container \"log-shipper\"")
    );
}

#[test]
fn patched_objects_keep_fields_unknown_to_this_build() {
    let set = shipped();
    let mut request = fixture_set::own("pod-create-generatename-mutating.json");
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

/// Writes every workload object of the own fixtures (after the mutating patch, and the old
/// objects of updates) to a folder and runs the official schema check on them: the fixtures
/// are shaped as the apiserver sends them, and patches keep them valid.
/// `kubernetes-validate` is installed by the README's test command.
#[test]
fn fixture_objects_and_patched_pods_pass_kubernetes_validate_strict() {
    let set = shipped();
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut patched_count = 0;
    for e in expectations() {
        let body = load(e.name);
        let (patched_body, patched) = mutated(&set, &body);
        patched_count += usize::from(patched.is_some());
        let request: Value = serde_json::from_slice(&patched_body).unwrap();
        for which in ["object", "oldObject"] {
            let object = &request["request"][which];
            let kind = object["kind"].as_str().unwrap_or("");
            if !matches!(kind, "Pod" | "Deployment" | "DaemonSet" | "CronJob") {
                continue;
            }
            let path = dir.path().join(format!("{which}-{}", e.name));
            std::fs::write(&path, serde_json::to_vec_pretty(object).unwrap()).unwrap();
            files.push(path);
        }
    }
    assert!(
        files.len() >= 20,
        "expected many objects, got {}",
        files.len()
    );
    assert!(
        patched_count >= 2,
        "expected patched Pods, got {patched_count}"
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
    assert!(root().join("tests/fixtures/README.md").exists());
    assert!(fixture_set::own_path("pod-create-hosts-append.json").is_file());
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The suite's fixture loading, run on a copy of the repository's fixtures in an empty folder
/// with nothing beside it (a user's clone): the own set loads whole and the extra corpus is
/// reported absent. Then an extra corpus appears beside it and is picked up, bare requests
/// wrapped.
#[test]
fn suite_fixture_loading_works_with_shared_absent() {
    let tmp = tempfile::tempdir().unwrap();
    let clone = tmp.path().join("podgate");
    copy_dir(
        &root().join("tests/fixtures"),
        &clone.join("tests/fixtures"),
    );
    let beside = clone.join("../shared/fixtures");
    assert!(!beside.exists());

    let alone = fixture_set::load_suite(&clone, &beside);
    assert!(alone.extra.is_none());
    assert_eq!(alone.own.len(), expectations().len());
    assert_eq!(alone.all().len(), alone.own.len());
    assert!(
        alone.describe().contains("extra corpus absent"),
        "{}",
        alone.describe()
    );

    std::fs::create_dir_all(&beside).unwrap();
    let bare = fixture_set::own("pod-create-statefulset.json")["request"].clone();
    std::fs::write(beside.join("bare.json"), serde_json::to_vec(&bare).unwrap()).unwrap();
    std::fs::write(beside.join("README.md"), "not a fixture").unwrap();
    let with_extra = fixture_set::load_suite(&clone, &beside);
    let extra = with_extra.extra.as_ref().unwrap();
    assert_eq!(extra.len(), 1);
    assert_eq!(extra[0].name, "extra/bare.json");
    assert_eq!(extra[0].review["kind"], "AdmissionReview");
    assert_eq!(extra[0].review["request"], bare);
    assert_eq!(with_extra.all().len(), alone.own.len() + 1);
}

/// The test binary was compiled from the checkout it runs in: the compile-time manifest folder
/// (which every test uses to find `tests/fixtures` and `policies`) is the one cargo runs the
/// test from. A stale binary from another checkout sharing `CARGO_TARGET_DIR` would read that
/// checkout's files and prove nothing about this one (`scripts/in-clean-copy`).
#[test]
fn tests_are_built_from_the_checkout_they_run_in() {
    let Some(runtime) = std::env::var_os("CARGO_MANIFEST_DIR") else {
        eprintln!("not run by cargo: CARGO_MANIFEST_DIR unset, nothing to compare");
        return;
    };
    let compiled = std::fs::canonicalize(env!("CARGO_MANIFEST_DIR")).unwrap();
    let running = std::fs::canonicalize(runtime).unwrap();
    assert_eq!(compiled, running);
}
