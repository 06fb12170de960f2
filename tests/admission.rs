//! Admission glue: operations, subresources, kinds, actions, exemptions and the answer's shape.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use base64::Engine as _;
use podgate::admission::{ReviewError, Webhook, error_review, limit_warnings, review};
#[path = "common/contract.rs"]
mod contract;

use contract::verify_response;

use podgate::policy::PolicySet;
use serde_json::{Value, json};

const HEADER: &str = "apiVersion: podgate.dev/v1alpha1\nkind: PodPolicy\n";

fn policies(docs: &[&str]) -> PolicySet {
    let text: Vec<String> = docs.iter().map(|d| format!("{HEADER}{d}")).collect();
    PolicySet::from_sources(&[("test.yaml".to_string(), text.join("\n---\n"))])
        .unwrap_or_else(|e| panic!("{e}"))
}

fn hosts_and_ns(action: &str) -> PolicySet {
    policies(&[&format!(
        "metadata: {{name: guard}}\nspec:\n  action: {action}\n  validate:\n    hostsFile: {{}}\n    hostNamespaces:\n      forbiddenCombinations: [[hostPID, privileged]]\n"
    )])
}

fn pod(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "team-a", "labels": {"app": "x"}}, "spec": spec})
}

fn request(object: Value) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "7f0b2891-916f-4ed6-b7cd-27bff1815a8c",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "team-a",
            "operation": "CREATE",
            "userInfo": {"username": "alice", "groups": ["devs", "system:authenticated"]},
            "object": object,
            "oldObject": null,
            "dryRun": false
        }
    })
}

fn bad_pod() -> Value {
    pod(json!({
        "hostPID": true,
        "containers": [
            {"name": "app", "image": "nginx:1.27", "volumeMounts": [{"name": "h", "mountPath": "/etc/hosts"}]},
            {"name": "side", "image": "busybox:1.36", "securityContext": {"privileged": true}}
        ],
        "volumes": [{"name": "h", "configMap": {"name": "hosts"}}]
    }))
}

fn now() -> jiff::Timestamp {
    "2026-11-27T12:00:00Z".parse().unwrap()
}

struct Answer {
    json: Value,
    summary: podgate::admission::Summary,
}

fn answer(set: &PolicySet, req: &Value, webhook: Webhook) -> Answer {
    let body = serde_json::to_vec(req).unwrap();
    let r = review(set, &body, webhook, now()).unwrap();
    verify_response(&body, &r.body, webhook).unwrap_or_else(|e| panic!("contract: {e}"));
    Answer {
        json: serde_json::from_slice(&r.body).unwrap(),
        summary: r.summary,
    }
}

fn patch_of(a: &Answer) -> Value {
    match a.json["response"]["patch"].as_str() {
        None => json!([]),
        Some(p) => {
            serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(p).unwrap())
                .unwrap()
        }
    }
}

#[test]
fn enforce_denies_with_403_and_lists_every_violation() {
    let a = answer(
        &hosts_and_ns("Enforce"),
        &request(bad_pod()),
        Webhook::Validate,
    );
    let r = &a.json["response"];
    assert_eq!(r["allowed"], false);
    assert_eq!(r["uid"], "7f0b2891-916f-4ed6-b7cd-27bff1815a8c");
    assert_eq!(r["status"]["code"], 403);
    assert_eq!(r["status"]["reason"], "Forbidden");
    let message = r["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("podgate: Pod \"p\": 2 violations:"),
        "{message}"
    );
    assert!(
        message.contains("spec.containers[0].volumeMounts[0].mountPath"),
        "{message}"
    );
    assert!(
        message.contains(
            "hostPID (spec.hostPID) with privileged (spec.containers[1].securityContext.privileged)"
        ),
        "{message}"
    );
    assert_eq!(a.summary.code, 403);
    assert_eq!(a.summary.findings.len(), 2);
}

#[test]
fn warn_allows_with_warnings_and_audit_only_annotates() {
    let a = answer(
        &hosts_and_ns("Warn"),
        &request(bad_pod()),
        Webhook::Validate,
    );
    assert_eq!(a.json["response"]["allowed"], true);
    let warnings = a.json["response"]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 2);
    assert!(
        warnings
            .iter()
            .all(|w| w.as_str().unwrap().starts_with("[guard] "))
    );

    let a = answer(
        &hosts_and_ns("Audit"),
        &request(bad_pod()),
        Webhook::Validate,
    );
    let r = &a.json["response"];
    assert_eq!(r["allowed"], true);
    assert!(r.get("warnings").is_none());
    let audit: Value =
        serde_json::from_str(r["auditAnnotations"]["guard"].as_str().unwrap()).unwrap();
    assert_eq!(audit["violations"].as_array().unwrap().len(), 2);
}

#[test]
fn audit_mutations_are_annotated_not_patched() {
    let set = policies(&[
        "metadata: {name: pull}\nspec:\n  action: Audit\n  mutate:\n    imagePullPolicy: {}\n",
    ]);
    let req = request(pod(
        json!({"containers": [{"name": "a", "image": "nginx", "imagePullPolicy": "IfNotPresent"}]}),
    ));
    let a = answer(&set, &req, Webhook::Mutate);
    assert!(a.json["response"].get("patch").is_none());
    let audit: Value = serde_json::from_str(
        a.json["response"]["auditAnnotations"]["pull"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(audit["patch"][0]["op"], "replace");
}

#[test]
fn operations_and_subresources_outside_scope_are_allowed_untouched() {
    let set = hosts_and_ns("Enforce");
    let cases = [
        ("UPDATE", None),
        ("DELETE", None),
        ("CONNECT", None),
        ("UPDATE", Some("status")),
        ("CREATE", Some("binding")),
    ];
    for (op, sub) in cases {
        let mut req = request(bad_pod());
        req["request"]["operation"] = json!(op);
        if let Some(sub) = sub {
            req["request"]["subResource"] = json!(sub);
        }
        for webhook in [Webhook::Validate, Webhook::Mutate] {
            let a = answer(&set, &req, webhook);
            assert_eq!(a.json["response"]["allowed"], true, "{op} {sub:?}");
            assert!(a.summary.findings.is_empty());
        }
    }
}

#[test]
fn delete_with_null_object_is_allowed() {
    let mut req = request(Value::Null);
    req["request"]["operation"] = json!("DELETE");
    req["request"]["oldObject"] = bad_pod();
    let a = answer(&hosts_and_ns("Enforce"), &req, Webhook::Validate);
    assert_eq!(a.json["response"]["allowed"], true);
}

#[test]
fn mirror_pods_are_trusted_only_from_nodes() {
    // (name, username, groups, skipped as a mirror pod)
    let cases = [
        (
            "kubelet",
            "system:node:worker-1",
            vec!["system:nodes", "system:authenticated"],
            true,
        ),
        (
            "ordinary user",
            "alice",
            vec!["devs", "system:authenticated"],
            false,
        ),
        (
            "node-looking name without the nodes group",
            "system:node:worker-1",
            vec!["system:authenticated"],
            false,
        ),
        (
            "nodes group without a node name",
            "mallory",
            vec!["system:nodes", "system:authenticated"],
            false,
        ),
        (
            "empty node name",
            "system:node:",
            vec!["system:nodes"],
            false,
        ),
        (
            "service account",
            "system:serviceaccount:kube-system:replicaset-controller",
            vec!["system:serviceaccounts", "system:authenticated"],
            false,
        ),
    ];
    let set = policies(&[
        "metadata: {name: guard}\nspec:\n  action: Enforce\n  validate:\n    hostsFile: {}\n    hostNamespaces:\n      forbiddenCombinations: [[hostPID, privileged]]\n",
        "metadata: {name: pull}\nspec:\n  action: Enforce\n  mutate:\n    imagePullPolicy: {}\n",
    ]);
    for (name, username, groups, skipped) in cases {
        let mut obj = bad_pod();
        obj["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "abc"});
        obj["spec"]["containers"][0]["image"] = json!("nginx:latest");
        let mut req = request(obj);
        req["request"]["userInfo"] = json!({"username": username, "groups": groups});
        let validated = answer(&set, &req, Webhook::Validate);
        let mutated = answer(&set, &req, Webhook::Mutate);
        assert_eq!(
            validated.json["response"]["uid"], "7f0b2891-916f-4ed6-b7cd-27bff1815a8c",
            "{name}"
        );
        if skipped {
            assert_eq!(validated.json["response"]["allowed"], true, "{name}");
            assert!(validated.summary.findings.is_empty(), "{name}");
            assert_eq!(patch_of(&mutated), json!([]), "{name}");
        } else {
            let r = &validated.json["response"];
            assert_eq!(r["allowed"], false, "{name}");
            let message = r["status"]["message"].as_str().unwrap();
            assert!(message.contains("3 violations"), "{name}: {message}");
            assert_ne!(
                patch_of(&mutated),
                json!([]),
                "{name}: mutated like any Pod"
            );
        }
    }
}

#[test]
fn ephemeral_container_updates_judge_only_the_new_containers() {
    let set = hosts_and_ns("Enforce");
    let old = pod(json!({
        "hostPID": true,
        "containers": [{"name": "app", "image": "nginx:1.27"}],
        "ephemeralContainers": [{"name": "old-debug", "image": "busybox:1", "securityContext": {"privileged": true}}]
    }));
    let mut new = old.clone();
    new["spec"]["ephemeralContainers"]
        .as_array_mut()
        .unwrap()
        .push(json!(
            {"name": "debugger", "image": "busybox:1", "securityContext": {"privileged": true}}
        ));
    let mut req = request(new.clone());
    req["request"]["operation"] = json!("UPDATE");
    req["request"]["subResource"] = json!("ephemeralcontainers");
    req["request"]["oldObject"] = old.clone();
    let a = answer(&set, &req, Webhook::Validate);
    assert_eq!(a.json["response"]["allowed"], false);
    let message = a.json["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("spec.ephemeralContainers[1].securityContext.privileged"),
        "{message}"
    );
    // The mutating webhook leaves ephemeral updates alone.
    let m = answer(&set, &req, Webhook::Mutate);
    assert_eq!(m.json["response"]["allowed"], true);
    // An update adding a harmless container passes although an old one is privileged.
    let mut harmless = old.clone();
    harmless["spec"]["ephemeralContainers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "d2", "image": "busybox:1"}));
    req["request"]["object"] = harmless;
    assert_eq!(
        answer(&set, &req, Webhook::Validate).json["response"]["allowed"],
        true
    );
}

#[test]
fn v1beta1_reviews_are_answered_in_v1beta1() {
    let mut req = request(bad_pod());
    req["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let a = answer(&hosts_and_ns("Enforce"), &req, Webhook::Validate);
    assert_eq!(a.json["apiVersion"], "admission.k8s.io/v1beta1");
    assert_eq!(a.json["kind"], "AdmissionReview");
}

#[test]
fn unreadable_objects_are_denied_with_400_and_the_uid() {
    let set = hosts_and_ns("Enforce");
    let cases = [
        (
            "containers not a list",
            pod(json!({"containers": "nope"})),
            "object is not a valid Pod",
        ),
        (
            "no spec",
            json!({"metadata": {"name": "p"}}),
            "Pod has no spec",
        ),
        (
            "no object",
            Value::Null,
            "CREATE request for a Pod has no object",
        ),
    ];
    for (name, object, text) in cases {
        let a = answer(&set, &request(object), Webhook::Validate);
        let r = &a.json["response"];
        assert_eq!(r["allowed"], false, "{name}");
        assert_eq!(r["status"]["code"], 400, "{name}");
        assert!(
            r["status"]["message"].as_str().unwrap().contains(text),
            "{name}: {}",
            r["status"]["message"]
        );
        assert_eq!(r["uid"], "7f0b2891-916f-4ed6-b7cd-27bff1815a8c");
    }
}

#[test]
fn bodies_that_are_not_reviews_are_errors_for_the_caller() {
    let set = PolicySet::empty();
    let err = |body: &[u8]| review(&set, body, Webhook::Validate, now()).unwrap_err();
    assert!(matches!(err(b"{not json"), ReviewError::Json(_)));
    assert!(matches!(err(b""), ReviewError::Json(_)));
    assert!(matches!(
        err(br#"{"apiVersion":"v1","kind":"Pod"}"#),
        ReviewError::NotReview(_)
    ));
    assert!(matches!(
        err(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#),
        ReviewError::NotReview(_)
    ));
    assert!(matches!(err(br#"[1,2]"#), ReviewError::NotReview(_)));
    assert!(matches!(
        err(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":""}}"#),
        ReviewError::NotReview(_)
    ));
}

#[test]
fn error_review_echoes_uid_and_version_when_readable() {
    let body = serde_json::to_vec(&request(bad_pod())).unwrap();
    let out: Value =
        serde_json::from_slice(&error_review(&body, 500, "evaluation panicked")).unwrap();
    assert_eq!(
        out["response"]["uid"],
        "7f0b2891-916f-4ed6-b7cd-27bff1815a8c"
    );
    assert_eq!(out["response"]["allowed"], false);
    assert_eq!(out["response"]["status"]["code"], 500);
    assert_eq!(out["apiVersion"], "admission.k8s.io/v1");
    let garbage: Value = serde_json::from_slice(&error_review(b"\xff", 400, "x")).unwrap();
    assert_eq!(garbage["response"]["uid"], "");
}

#[test]
fn dry_run_gets_the_same_answer() {
    let set = hosts_and_ns("Enforce");
    let mut req = request(bad_pod());
    let wet = answer(&set, &req, Webhook::Validate).json;
    req["request"]["dryRun"] = json!(true);
    assert_eq!(answer(&set, &req, Webhook::Validate).json, wet);
}

#[test]
fn match_namespaces_exclusions_and_pod_selector() {
    let set = policies(&[
        "metadata: {name: guard}\nspec:\n  match:\n    namespaces: [\"team-*\"]\n    excludeNamespaces: [team-ops]\n    podSelector:\n      matchExpressions: [{key: app, operator: In, values: [x, y]}]\n  validate:\n    hostsFile: {}\n",
    ]);
    let cases = [
        ("team-a", "x", false),
        ("team-ops", "x", true),
        ("prod", "x", true),
        ("team-a", "z", true),
    ];
    for (ns, app, allowed) in cases {
        let mut obj = bad_pod();
        obj["metadata"]["labels"]["app"] = json!(app);
        let mut req = request(obj);
        req["request"]["namespace"] = json!(ns);
        assert_eq!(
            answer(&set, &req, Webhook::Validate).json["response"]["allowed"],
            allowed,
            "{ns} {app}"
        );
    }
}

#[test]
fn exemptions_by_service_account_user_group_and_expiry() {
    let exemption = |criteria: &str| {
        policies(&[&format!(
            "metadata: {{name: guard}}\nspec:\n  exemptions:\n    - {criteria}\n      reason: test\n  validate:\n    hostsFile: {{}}\n"
        )])
    };
    let with_sa = |sa: &str| {
        let mut obj = bad_pod();
        obj["spec"]["serviceAccountName"] = json!(sa);
        request(obj)
    };
    let allowed = |set: &PolicySet, req: &Value| {
        answer(set, req, Webhook::Validate).json["response"]["allowed"] == true
    };
    let sa = exemption("serviceAccounts: [\"team-a:node-*\"]");
    assert!(allowed(&sa, &with_sa("node-exporter")));
    assert!(!allowed(&sa, &with_sa("web")));
    // Without serviceAccountName the Pod runs as "default".
    assert!(allowed(
        &exemption("serviceAccounts: [\"team-a:default\"]"),
        &request(bad_pod())
    ));
    assert!(allowed(
        &exemption("usernames: [ali*]"),
        &request(bad_pod())
    ));
    assert!(!allowed(
        &exemption("usernames: [bob]"),
        &request(bad_pod())
    ));
    assert!(allowed(&exemption("groups: [devs]"), &request(bad_pod())));
    // Still valid on its last day, gone the day after.
    assert!(allowed(
        &exemption("groups: [devs]\n      expires: \"2026-11-27\""),
        &request(bad_pod())
    ));
    assert!(!allowed(
        &exemption("groups: [devs]\n      expires: \"2026-11-26\""),
        &request(bad_pod())
    ));
    // An exemption that applies is recorded for the audit log.
    let a = answer(
        &exemption("groups: [devs]"),
        &request(bad_pod()),
        Webhook::Validate,
    );
    assert_eq!(
        a.json["response"]["auditAnnotations"]["exempted_policies"],
        "guard: test"
    );
}

fn deployment(template_spec: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "team-a"},
        "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": {"metadata": {"labels": {"app": "x"}}, "spec": template_spec}}
    })
}

fn workload_request(object: Value, group: &str, kind: &str) -> Value {
    let mut req = request(object);
    req["request"]["kind"] = json!({"group": group, "version": "v1", "kind": kind});
    req
}

#[test]
fn workload_templates_are_validated_with_their_own_paths() {
    let set = hosts_and_ns("Enforce");
    let spec = bad_pod()["spec"].clone();
    let a = answer(
        &set,
        &workload_request(deployment(spec.clone()), "apps", "Deployment"),
        Webhook::Validate,
    );
    let message = a.json["response"]["status"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("spec.template.spec.containers[0].volumeMounts[0].mountPath"),
        "{message}"
    );
    let cron = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
        "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": spec}}}}});
    let a = answer(
        &set,
        &workload_request(cron, "batch", "CronJob"),
        Webhook::Validate,
    );
    let message = a.json["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("spec.jobTemplate.spec.template.spec.hostPID"),
        "{message}"
    );
    // Updates of workloads are validated too (kubectl apply of an existing Deployment).
    let mut update = workload_request(deployment(bad_pod()["spec"].clone()), "apps", "Deployment");
    update["request"]["operation"] = json!("UPDATE");
    assert_eq!(
        answer(&set, &update, Webhook::Validate).json["response"]["allowed"],
        false
    );
    // An update that keeps the template (e.g. scaling a Deployment that predates the policy)
    // creates no Pod and is let through, so controllers can still clean up.
    let mut scale = update.clone();
    scale["request"]["oldObject"] = scale["request"]["object"].clone();
    scale["request"]["object"]["spec"]["replicas"] = json!(0);
    assert_eq!(
        answer(&set, &scale, Webhook::Validate).json["response"]["allowed"],
        true
    );
    let mut changed = scale.clone();
    changed["request"]["oldObject"]["spec"]["template"]["spec"]["hostPID"] = json!(false);
    assert_eq!(
        answer(&set, &changed, Webhook::Validate).json["response"]["allowed"],
        false
    );
    // Kinds without a pod spec are none of podgate's business.
    let svc = workload_request(
        json!({"apiVersion": "v1", "kind": "Service"}),
        "",
        "Service",
    );
    assert_eq!(
        answer(&set, &svc, Webhook::Validate).json["response"]["allowed"],
        true
    );
}

#[test]
fn templates_are_patched_only_when_the_policy_says_so() {
    let doc = |templates: bool| {
        format!(
            "metadata: {{name: pull}}\nspec:\n  mutate:\n    templates: {templates}\n    imagePullPolicy: {{}}\n"
        )
    };
    let req = workload_request(
        deployment(json!({"containers": [{"name": "a", "image": "nginx"}]})),
        "apps",
        "Deployment",
    );
    let off = answer(&policies(&[&doc(false)]), &req, Webhook::Mutate);
    assert_eq!(patch_of(&off), json!([]));
    let on = answer(&policies(&[&doc(true)]), &req, Webhook::Mutate);
    assert_eq!(
        patch_of(&on),
        json!([{"op": "add", "path": "/spec/template/spec/containers/0/imagePullPolicy", "value": "Always"}])
    );
    // The validating re-check does not judge templates (their Pods are mutated on create).
    let v = answer(&policies(&[&doc(false)]), &req, Webhook::Validate);
    assert_eq!(v.json["response"]["allowed"], true);
}

#[test]
fn host_alias_deny_conflicts_deny_on_both_webhooks() {
    let set = policies(&[
        "metadata: {name: aliases}\nspec:\n  mutate:\n    hostAliases:\n      entries: [{ip: 10.1.2.3, hostnames: [db.remote]}]\n      onConflict: Deny\n",
    ]);
    let req = request(pod(
        json!({"containers": [{"name": "a", "image": "nginx:1"}], "hostAliases": [{"ip": "10.9.9.9", "hostnames": ["db.remote"]}]}),
    ));
    for webhook in [Webhook::Mutate, Webhook::Validate] {
        let a = answer(&set, &req, webhook);
        assert_eq!(a.json["response"]["allowed"], false, "{webhook:?}");
        assert!(a.json["response"].get("patch").is_none());
        assert!(
            a.json["response"]["status"]["message"]
                .as_str()
                .unwrap()
                .contains("db.remote")
        );
    }
    let ok = request(pod(
        json!({"containers": [{"name": "a", "image": "nginx:1"}]}),
    ));
    let a = answer(&set, &ok, Webhook::Mutate);
    assert_eq!(
        patch_of(&a),
        json!([{"op": "add", "path": "/spec/hostAliases", "value": [{"ip": "10.1.2.3", "hostnames": ["db.remote"]}]}])
    );
    // Without the patch applied, the validating webhook notices the missing entry.
    let v = answer(&set, &ok, Webhook::Validate);
    assert_eq!(v.json["response"]["allowed"], false);
    assert_eq!(v.summary.findings[0].rule.as_str(), "hostAliases");
}

#[test]
fn validate_never_patches_and_mutate_without_changes_sends_no_patch() {
    let set = policies(&[
        "metadata: {name: pull}\nspec:\n  action: Warn\n  mutate:\n    imagePullPolicy: {}\n",
    ]);
    let req = request(pod(
        json!({"containers": [{"name": "a", "image": "nginx:1.27", "imagePullPolicy": "IfNotPresent"}]}),
    ));
    let a = answer(&set, &req, Webhook::Mutate);
    assert!(
        a.json["response"].get("patch").is_none() && a.json["response"].get("patchType").is_none()
    );
    let mut latest = req.clone();
    latest["request"]["object"]["spec"]["containers"][0]["image"] = json!("nginx");
    let v = answer(&set, &latest, Webhook::Validate);
    assert!(v.json["response"].get("patch").is_none());
    // Warn: the re-check becomes a warning, not a denial.
    assert_eq!(v.json["response"]["allowed"], true);
    assert_eq!(v.json["response"]["warnings"].as_array().unwrap().len(), 1);
    let m = answer(&set, &latest, Webhook::Mutate);
    assert_eq!(m.json["response"]["patchType"], "JSONPatch");
}

#[test]
fn json_pointer_escaping_is_right_for_keys_with_slashes() {
    // hostAliases under a key-free path; check a label-selected policy with a slashed key.
    let set = policies(&[
        "metadata: {name: aliases}\nspec:\n  match:\n    podSelector:\n      matchLabels: {\"podgate.dev/inject-host-aliases\": \"true\"}\n  mutate:\n    hostAliases:\n      entries: [{ip: \"fd00::1\", hostnames: [v6.remote]}]\n",
    ]);
    let mut obj = pod(json!({"containers": [{"name": "a", "image": "nginx:1"}]}));
    obj["metadata"]["labels"]["podgate.dev/inject-host-aliases"] = json!("true");
    let a = answer(&set, &request(obj), Webhook::Mutate);
    assert_eq!(patch_of(&a)[0]["value"][0]["ip"], "fd00::1");
}

#[test]
fn warnings_are_cleaned_cut_and_capped() {
    let long = "x".repeat(1000);
    let out = limit_warnings(vec![
        "a\nb\tc".into(),
        long.clone(),
        "a\nb\tc".into(),
        String::new(),
    ]);
    assert_eq!(out[0], "a b c");
    assert_eq!(out[1].chars().count(), 256);
    assert_eq!(out.len(), 2);
    let many: Vec<String> = (0..100)
        .map(|i| format!("{i}: {}", "y".repeat(200)))
        .collect();
    let out = limit_warnings(many);
    let total: usize = out.iter().map(String::len).sum();
    assert!(total <= 4096, "{total}");
    assert!(out.last().unwrap().contains("more warnings omitted"));
}

#[test]
fn denials_list_twenty_violations_and_count_the_rest() {
    let containers: Vec<Value> = (0..50)
        .map(|i| json!({"name": format!("c{i}"), "image": "nginx:1", "volumeMounts": [{"name": "h", "mountPath": "/etc/hosts"}]}))
        .collect();
    let req = request(pod(
        json!({"containers": containers, "volumes": [{"name": "h", "configMap": {"name": "h"}}]}),
    ));
    let a = answer(&hosts_and_ns("Enforce"), &req, Webhook::Validate);
    let message = a.json["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("podgate: Pod \"p\": 50 violations:"),
        "{message}"
    );
    assert_eq!(
        message
            .lines()
            .filter(|l| l.starts_with("- [guard]"))
            .count(),
        20
    );
    assert!(message.ends_with("- ... and 30 more"), "{message}");
    assert_eq!(a.summary.findings.len(), 50);
}

#[test]
fn rival_host_alias_policies_settle_on_the_first_and_stay_idempotent() {
    let rival = |name: &str, ip: &str, on_conflict: &str| {
        format!(
            "metadata: {{name: {name}}}\nspec:\n  mutate:\n    hostAliases:\n      entries: [{{ip: \"{ip}\", hostnames: [db.remote]}}]\n      onConflict: {on_conflict}\n"
        )
    };
    let set = policies(&[
        &rival("prod-db", "10.0.0.1", "Override"),
        &rival("staging-db", "10.0.0.2", "Deny"),
    ]);
    let req = request(pod(
        json!({"containers": [{"name": "a", "image": "nginx:1"}]}),
    ));
    let first = answer(&set, &req, Webhook::Mutate);
    assert_eq!(first.json["response"]["allowed"], true);
    assert_eq!(
        patch_of(&first),
        json!([{"op": "add", "path": "/spec/hostAliases", "value": [{"ip": "10.0.0.1", "hostnames": ["db.remote"]}]}])
    );
    let mut patched = req.clone();
    patched["request"]["object"]["spec"]["hostAliases"] =
        json!([{"ip": "10.0.0.1", "hostnames": ["db.remote"]}]);
    assert_eq!(
        patch_of(&answer(&set, &patched, Webhook::Mutate)),
        json!([])
    );
    assert_eq!(
        answer(&set, &patched, Webhook::Validate).json["response"]["allowed"],
        true
    );
}

/// Mounts, fields and capability names (#9 points 5 and 6), each case judged where a
/// container can appear: a Pod, a Deployment's template and a `kubectl debug` update.
#[test]
fn mount_field_and_capability_cases_in_pods_templates_and_ephemeral_updates() {
    let set = policies(&[
        "metadata: {name: guard}\nspec:\n  action: Enforce\n  validate:\n    hostsFile: {}\n    hostNamespaces:\n      forbiddenCombinations: [[hostPID, \"capability:SYS_PTRACE\"]]\n",
    ]);
    let host = |path: &str| json!([{"name": "h", "hostPath": {"path": path}}]);
    let mounted = json!([{"name": "h", "mountPath": "/host"}]);
    let caps = |add: &[&str]| json!({"capabilities": {"add": add}});
    // (name, extra container fields, volumes, expected message parts; none = allowed)
    let cases: Vec<(&str, Value, Value, Vec<&str>)> = vec![
        (
            "writable hostPath /proc/1/root",
            json!({"volumeMounts": mounted}),
            host("/proc/1/root"),
            vec![
                "mounts hostPath \"/proc/1/root\" writable at /host",
                "/proc/1/root is the node's",
            ],
        ),
        (
            "writable hostPath /proc",
            json!({"volumeMounts": mounted}),
            host("/proc/"),
            vec!["mounts hostPath \"/proc\" writable"],
        ),
        (
            "writable hostPath /var/lib/kubelet",
            json!({"volumeMounts": mounted}),
            host("/var/lib/kubelet"),
            vec!["/var/lib/kubelet/pods/<uid>/etc-hosts"],
        ),
        (
            "writable hostPath /var via subPath to a pod dir",
            json!({"volumeMounts": [{"name": "h", "mountPath": "/host", "subPath": "lib/kubelet/pods/abc"}]}),
            host("/var"),
            vec!["mounts hostPath \"/var/lib/kubelet/pods/abc\" writable"],
        ),
        (
            "writable hostPath /var/lib/docker/containers",
            json!({"volumeMounts": mounted}),
            host("/var/lib/docker/containers"),
            vec!["/var/lib/docker/containers/<id>/hosts"],
        ),
        (
            "read-only hostPath /proc/1/root",
            json!({"volumeMounts": [{"name": "h", "mountPath": "/host", "readOnly": true}]}),
            host("/proc/1/root"),
            vec![],
        ),
        (
            "writable hostPath /var/log",
            json!({"volumeMounts": mounted}),
            host("/var/log"),
            vec![],
        ),
        (
            "terminationMessagePath /etc//hosts",
            json!({"terminationMessagePath": "/etc//hosts"}),
            json!([]),
            vec![
                "sets terminationMessagePath \"/etc//hosts\"",
                "terminationMessagePath):",
            ],
        ),
        (
            "terminationMessagePath /etc/./hosts",
            json!({"terminationMessagePath": "/etc/./hosts"}),
            json!([]),
            vec!["the kubelet bind-mounts a writable file there"],
        ),
        (
            "default terminationMessagePath",
            json!({"terminationMessagePath": "/dev/termination-log"}),
            json!([]),
            vec![],
        ),
        (
            "long s capability with hostPID",
            json!({"securityContext": caps(&["\u{17F}ys_ptrace"])}),
            json!([]),
            vec![
                "which is not a plain ASCII capability name: container runtimes read it as CAP_SYS_PTRACE",
                "forbidden combination: hostPID (spec",
            ],
        ),
        (
            "dotless i capability alone",
            json!({"securityContext": caps(&["\u{131}pc_lock"])}),
            json!([]),
            vec!["read it as CAP_IPC_LOCK"],
        ),
        (
            "CAP_ prefixed lower-case capability with hostPID",
            json!({"securityContext": caps(&["cap_sys_ptrace"])}),
            json!([]),
            vec!["forbidden combination: hostPID"],
        ),
        (
            "plain other capability",
            json!({"securityContext": caps(&["NET_BIND_SERVICE"])}),
            json!([]),
            vec![],
        ),
    ];
    for (name, fields, volumes, expected) in cases {
        let mut container = json!({"name": "c", "image": "busybox:1.36"});
        for (k, v) in fields.as_object().unwrap() {
            container[k] = v.clone();
        }
        let spec = |containers: Value, ephemeral: Value| json!({"hostPID": true, "containers": containers, "ephemeralContainers": ephemeral, "volumes": volumes});
        let base = json!([{"name": "app", "image": "nginx:1.27"}]);

        let in_pod = request(pod(spec(json!([container.clone()]), json!([]))));

        let mut in_template = request(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "team-a"},
            "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": {
                "metadata": {"labels": {"app": "x"}},
                "spec": spec(json!([container.clone()]), json!([]))}}
        }));
        in_template["request"]["kind"] =
            json!({"group": "apps", "version": "v1", "kind": "Deployment"});
        in_template["request"]["resource"] =
            json!({"group": "apps", "version": "v1", "resource": "deployments"});

        let mut in_ephemeral = request(pod(spec(base.clone(), json!([container.clone()]))));
        in_ephemeral["request"]["operation"] = json!("UPDATE");
        in_ephemeral["request"]["subResource"] = json!("ephemeralcontainers");
        in_ephemeral["request"]["oldObject"] = pod(spec(base.clone(), json!([])));

        for (place, req, at) in [
            ("pod", in_pod, "spec.containers[0]"),
            ("template", in_template, "spec.template.spec.containers[0]"),
            ("ephemeral", in_ephemeral, "spec.ephemeralContainers[0]"),
        ] {
            let a = answer(&set, &req, Webhook::Validate);
            let r = &a.json["response"];
            assert_eq!(r["uid"], "7f0b2891-916f-4ed6-b7cd-27bff1815a8c");
            if expected.is_empty() {
                assert_eq!(r["allowed"], true, "{name} in {place}: {r}");
                continue;
            }
            assert_eq!(r["allowed"], false, "{name} in {place}");
            let message = r["status"]["message"].as_str().unwrap();
            assert!(message.contains(at), "{name} in {place}: {message}");
            for part in &expected {
                assert!(
                    message.contains(part),
                    "{name} in {place}: {part:?} in {message}"
                );
            }
        }
    }
}

/// One container as each of the places a command lives: main command, postStart hook,
/// liveness probe; with the field path the finding names.
fn command_placements(argv: &[&str]) -> Vec<(&'static str, Value, &'static str)> {
    let argv = json!(argv);
    vec![
        (
            "command",
            json!({"name": "app", "image": "busybox:1.36", "command": argv}),
            "containers[0].command",
        ),
        (
            "postStart hook",
            json!({"name": "app", "image": "busybox:1.36", "lifecycle": {"postStart": {"exec": {"command": argv}}}}),
            "containers[0].lifecycle.postStart.exec.command",
        ),
        (
            "liveness probe",
            json!({"name": "app", "image": "busybox:1.36", "livenessProbe": {"exec": {"command": argv}}}),
            "containers[0].livenessProbe.exec.command",
        ),
    ]
}

/// Categories of hidden writes, each as the shell or the kubelet sees it.
const HIDDEN_WRITES: &[(&str, &[&str])] = &[
    (
        "quote inside the path",
        &["sh", "-c", "echo 10.0.0.1 db >> /etc/ho\"st\"s"],
    ),
    (
        "bash options before -c",
        &[
            "bash",
            "-euo",
            "pipefail",
            "-c",
            "echo 10.0.0.1 db >> /etc/hosts",
        ],
    ),
    (
        "wrapper",
        &["tini", "--", "gosu", "root", "tee", "-a", "/etc/hosts"],
    ),
    (
        "variable and cd",
        &["sh", "-c", "cd /etc && F=hosts && echo 10.0.0.1 db >> $F"],
    ),
    (
        "proc alias",
        &["sh", "-c", "echo 10.0.0.1 db >> /proc/1/root/etc/hosts"],
    ),
    ("sed w command", &["sed", "-n", "w /etc/hosts", "/tmp/h"]),
    (
        "inline python",
        &[
            "python3",
            "-c",
            "open('/etc/hosts','a').write('10.0.0.1 db')",
        ],
    ),
    (
        "ansi-c escape",
        &["bash", "-c", "echo 10.0.0.1 db >> $'/etc/\\x68osts'"],
    ),
    (
        "brace expansion",
        &["bash", "-c", "echo 10.0.0.1 db | tee /etc/{hosts,motd}"],
    ),
];

#[test]
fn hidden_hosts_writes_are_denied_in_commands_hooks_probes_and_templates() {
    let set = hosts_and_ns("Enforce");
    for (category, argv) in HIDDEN_WRITES {
        for (place, container, path) in command_placements(argv) {
            let spec = json!({"containers": [container]});
            let a = answer(&set, &request(pod(spec.clone())), Webhook::Validate);
            assert_eq!(
                a.json["response"]["allowed"], false,
                "{category} in {place}"
            );
            let message = a.json["response"]["status"]["message"].as_str().unwrap();
            assert!(
                message.contains(&format!("spec.{path}")),
                "{category} in {place}: {message}"
            );
            // The same container in a Deployment's template.
            let d = answer(
                &set,
                &workload_request(deployment(spec), "apps", "Deployment"),
                Webhook::Validate,
            );
            assert_eq!(
                d.json["response"]["allowed"], false,
                "{category} in a template's {place}"
            );
            let message = d.json["response"]["status"]["message"].as_str().unwrap();
            assert!(
                message.contains(&format!("spec.template.spec.{path}")),
                "{category}: {message}"
            );
        }
    }
}

#[test]
fn kubelet_expansion_and_working_dir_are_seen() {
    let set = hosts_and_ns("Enforce");
    let cases = [
        (
            "$(VAR) from env",
            json!({"name": "app", "image": "busybox:1.36", "env": [{"name": "H", "value": "/etc/hosts"}], "command": ["tee", "-a", "$(H)"]}),
        ),
        (
            "workingDir with a relative path",
            json!({"name": "app", "image": "busybox:1.36", "workingDir": "/etc", "command": ["sh", "-c", "echo 10.0.0.1 db >> hosts"]}),
        ),
        (
            "args only with -c -e",
            json!({"name": "app", "image": "busybox:1.36", "args": ["-c", "-e", "echo 10.0.0.1 db >> /etc/hosts"]}),
        ),
    ];
    for (name, container) in cases {
        let a = answer(
            &set,
            &request(pod(json!({"containers": [container]}))),
            Webhook::Validate,
        );
        assert_eq!(a.json["response"]["allowed"], false, "{name}: {}", a.json);
    }
    // `$$(H)` is a literal `$(H)` for the kubelet: a file named `$(H)`, not the hosts file.
    let escaped = json!({"name": "app", "image": "busybox:1.36", "env": [{"name": "H", "value": "/etc/hosts"}], "command": ["tee", "-a", "/tmp/$$(H)"]});
    let a = answer(
        &set,
        &request(pod(json!({"containers": [escaped]}))),
        Webhook::Validate,
    );
    assert_eq!(a.json["response"]["allowed"], true, "{}", a.json);
}

fn undecidable_policy(action: &str, undecidable: Option<&str>) -> PolicySet {
    let setting = undecidable.map_or(String::new(), |u| format!("\n      undecidable: {u}"));
    policies(&[&format!(
        "metadata: {{name: guard}}\nspec:\n  action: {action}\n  validate:\n    hostsFile:{}\n",
        if setting.is_empty() {
            " {}".to_string()
        } else {
            setting
        }
    )])
}

#[test]
fn undecidable_commands_follow_the_policy_setting_and_spare_non_root_containers() {
    let dynamic = json!({"name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "curl -s http://x/s | sh"]});
    let req = request(pod(json!({"containers": [dynamic.clone()]})));
    // Default Warn: admitted with a warning that names the field and the reason.
    let a = answer(
        &undecidable_policy("Enforce", None),
        &req,
        Webhook::Validate,
    );
    assert_eq!(a.json["response"]["allowed"], true, "{}", a.json);
    let warnings = a.json["response"]["warnings"].to_string();
    assert!(
        warnings.contains("spec.containers[0].command"),
        "{warnings}"
    );
    assert!(warnings.contains("cannot decide"), "{warnings}");
    assert!(warnings.contains("runAsNonRoot"), "{warnings}");
    // Deny under Enforce denies; Allow says nothing.
    let d = answer(
        &undecidable_policy("Enforce", Some("Deny")),
        &req,
        Webhook::Validate,
    );
    assert_eq!(d.json["response"]["allowed"], false, "{}", d.json);
    let quiet = answer(
        &undecidable_policy("Enforce", Some("Allow")),
        &req,
        Webhook::Validate,
    );
    assert_eq!(quiet.json["response"]["allowed"], true);
    assert!(
        quiet.json["response"]["warnings"].is_null(),
        "{}",
        quiet.json
    );
    // A container that provably cannot write the file gets no undecided finding.
    let mut non_root = dynamic.clone();
    non_root["securityContext"] = json!({"runAsNonRoot": true, "allowPrivilegeEscalation": false});
    let req_nr = request(pod(json!({"containers": [non_root.clone()]})));
    let n = answer(
        &undecidable_policy("Enforce", Some("Deny")),
        &req_nr,
        Webhook::Validate,
    );
    assert_eq!(n.json["response"]["allowed"], true, "{}", n.json);
    // Pod-level runAsUser counts too; without allowPrivilegeEscalation: false it does not.
    let mut pod_level = dynamic.clone();
    pod_level["securityContext"] = json!({"allowPrivilegeEscalation": false});
    let p = answer(
        &undecidable_policy("Enforce", Some("Deny")),
        &request(pod(
            json!({"securityContext": {"runAsUser": 1000}, "containers": [pod_level]}),
        )),
        Webhook::Validate,
    );
    assert_eq!(p.json["response"]["allowed"], true, "{}", p.json);
    let mut escalates = dynamic.clone();
    escalates["securityContext"] = json!({"runAsNonRoot": true});
    let e = answer(
        &undecidable_policy("Enforce", Some("Deny")),
        &request(pod(json!({"containers": [escalates]}))),
        Webhook::Validate,
    );
    assert_eq!(e.json["response"]["allowed"], false, "{}", e.json);
    // Mount rules apply to non-root containers regardless.
    let mut mounted = non_root;
    mounted["volumeMounts"] = json!([{"name": "h", "mountPath": "/etc/hosts"}]);
    let m = answer(
        &undecidable_policy("Enforce", None),
        &request(pod(
            json!({"containers": [mounted], "volumes": [{"name": "h", "configMap": {"name": "h"}}]}),
        )),
        Webhook::Validate,
    );
    assert_eq!(m.json["response"]["allowed"], false, "{}", m.json);
}

#[test]
fn ephemeral_updates_are_judged_by_the_new_containers_commands() {
    let set = undecidable_policy("Enforce", Some("Deny"));
    // The old debug container's command cannot be decided; it was admitted before.
    let old = pod(json!({
        "containers": [{"name": "app", "image": "nginx:1.27"}],
        "ephemeralContainers": [{"name": "old", "image": "busybox:1", "command": ["sh", "-c", "eval \"$X\""]}]
    }));
    let with = |container: Value| {
        let mut new = old.clone();
        new["spec"]["ephemeralContainers"]
            .as_array_mut()
            .unwrap()
            .push(container);
        let mut req = request(new);
        req["request"]["operation"] = json!("UPDATE");
        req["request"]["subResource"] = json!("ephemeralcontainers");
        req["request"]["oldObject"] = old.clone();
        req
    };
    for (category, argv) in HIDDEN_WRITES {
        let a = answer(
            &set,
            &with(json!({"name": "debug", "image": "busybox:1", "command": argv})),
            Webhook::Validate,
        );
        assert_eq!(a.json["response"]["allowed"], false, "{category}");
        let message = a.json["response"]["status"]["message"].as_str().unwrap();
        assert!(
            message.contains("spec.ephemeralContainers[1].command"),
            "{category}: {message}"
        );
    }
    let reader = json!({"name": "debug", "image": "busybox:1", "command": ["cat", "/etc/hosts"]});
    assert_eq!(
        answer(&set, &with(reader), Webhook::Validate).json["response"]["allowed"],
        true
    );
}
