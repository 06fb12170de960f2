//! deploy/overlays/managed (issue #10) as `kubectl kustomize` renders it: podgate runs
//! `serve --manage-webhooks` with no static webhook configuration, its webhook specs are the
//! ones the static overlays register (same sources, same blast radius), the image is set in one
//! place, and the RBAC allows exactly what podgate does, checked like `kubectl auth can-i`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod rbac;

use rbac::{Rbac, ask};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const NS: &str = "podgate-system";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn kustomize(dir: &Path) -> Vec<Value> {
    let output = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("tests/deploy_managed.rs needs kubectl on PATH: {e}"));
    assert!(
        output.status.success(),
        "kubectl kustomize {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    serde_saphyr::from_multiple(&text).unwrap()
}

fn named<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn the_overlay_registers_nothing_itself_and_runs_serve_manage_webhooks() {
    let objects = kustomize(&repo().join("deploy/overlays/managed"));
    let kinds: BTreeSet<&str> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert!(!kinds.contains("MutatingWebhookConfiguration"), "{kinds:?}");
    assert!(
        !kinds.contains("ValidatingWebhookConfiguration"),
        "{kinds:?}"
    );
    assert!(
        !kinds.contains("Secret"),
        "podgate creates its Secret itself"
    );

    let deployment = named(&objects, "Deployment", "podgate");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"], true);
    let container = &pod["containers"][0];
    let args = strings(&container["args"]);
    let flag = |name: &str| {
        let i = args
            .iter()
            .position(|a| a == name)
            .unwrap_or_else(|| panic!("no {name} in {args:?}"));
        args.get(i + 1).cloned().unwrap_or_default()
    };
    assert!(args.contains(&"--manage-webhooks".to_string()), "{args:?}");
    assert!(!args.iter().any(|a| a.starts_with("--tls-")), "{args:?}");
    assert_eq!(flag("--secret"), "podgate-tls");
    assert_eq!(flag("--webhook-config"), "podgate");
    assert_eq!(flag("--service"), "podgate");
    // The specs file is the ConfigMap podgate-webhooks, mounted as a whole folder.
    let specs = PathBuf::from(flag("--webhooks"));
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| specs.starts_with(m["mountPath"].as_str().unwrap()))
        .unwrap_or_else(|| panic!("{} is not mounted", specs.display()));
    assert!(mount.get("subPath").is_none());
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    assert_eq!(volume["configMap"]["name"], "podgate-webhooks");
    let config_map = named(&objects, "ConfigMap", "podgate-webhooks");
    let key = specs.file_name().unwrap().to_str().unwrap();
    let text = config_map["data"][key].as_str().unwrap();
    assert_eq!(
        text,
        std::fs::read_to_string(repo().join("deploy/overlays/managed/webhooks.yaml")).unwrap()
    );
    // No certificate volume: the Secret does not exist until podgate creates it.
    assert!(
        pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v.get("secret").is_none()),
        "{}",
        pod["volumes"]
    );
    // Namespace and replica name from the downward API.
    let env = container["env"].as_array().unwrap();
    for (name, path) in [
        ("POD_NAMESPACE", "metadata.namespace"),
        ("POD_NAME", "metadata.name"),
    ] {
        let e = env
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no {name}"));
        assert_eq!(e["valueFrom"]["fieldRef"]["fieldPath"], path);
    }
}

#[test]
fn the_image_is_set_in_one_place_in_the_overlay() {
    let text =
        std::fs::read_to_string(repo().join("deploy/overlays/managed/kustomization.yaml")).unwrap();
    let k: Value = serde_saphyr::from_str(&text).unwrap();
    let images = k["images"].as_array().unwrap();
    assert_eq!(images.len(), 1);
    let expected = format!(
        "{}:{}",
        images[0]["newName"].as_str().unwrap(),
        images[0]["newTag"].as_str().unwrap()
    );
    assert_ne!(images[0]["newTag"], "latest");
    let objects = kustomize(&repo().join("deploy/overlays/managed"));
    let deployment = named(&objects, "Deployment", "podgate");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        expected.as_str()
    );
    // Changing it there changes the Deployment.
    let tmp = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(repo().join("deploy"), tmp.path().join("deploy")).unwrap();
    let wrap = tmp.path().join("wrap");
    std::fs::create_dir_all(&wrap).unwrap();
    std::fs::write(
        wrap.join("kustomization.yaml"),
        "resources: [../deploy/overlays/managed]\nimages:\n  - name: ghcr.io/podgate/podgate\n    newName: registry.example.com/podgate\n    newTag: \"9.9.9\"\n",
    )
    .unwrap();
    let objects = kustomize(&wrap);
    let image = &named(&objects, "Deployment", "podgate")["spec"]["template"]["spec"]["containers"]
        [0]["image"];
    assert_eq!(image, "registry.example.com/podgate:9.9.9");
}

/// The two webhook configurations of a render, by kind.
fn webhook_configs(objects: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = objects
        .iter()
        .filter(|o| {
            o["kind"] == "MutatingWebhookConfiguration"
                || o["kind"] == "ValidatingWebhookConfiguration"
        })
        .cloned()
        .collect();
    out.sort_by_key(|o| o["kind"].as_str().unwrap().to_string());
    out
}

#[test]
fn the_webhook_specs_are_what_the_static_overlays_register_with_the_same_blast_radius() {
    let rendered = webhook_configs(&kustomize(&repo().join("deploy/overlays/managed/specs")));
    let file =
        std::fs::read_to_string(repo().join("deploy/overlays/managed/webhooks.yaml")).unwrap();
    let shipped = webhook_configs(&serde_saphyr::from_multiple::<Value>(&file).unwrap());
    assert_eq!(
        shipped, rendered,
        "deploy/overlays/managed/webhooks.yaml is stale: run scripts/render-managed-webhooks"
    );
    // The same webhooks as the cert-manager overlay, but for the caBundle injection.
    let mut static_ones = webhook_configs(&kustomize(&repo().join("deploy/overlays/cert-manager")));
    for config in &mut static_ones {
        config["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("annotations");
        config["metadata"].as_object_mut().unwrap().remove("labels");
    }
    let mut ours = shipped.clone();
    for config in &mut ours {
        config["metadata"].as_object_mut().unwrap().remove("labels");
    }
    assert_eq!(ours, static_ones);
    // The excluded namespaces are deploy/base/webhook-settings.yaml's, plus podgate's own.
    let settings: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(repo().join("deploy/base/webhook-settings.yaml")).unwrap(),
    )
    .unwrap();
    let mut excluded = strings(&settings["spec"]["excludedNamespaces"]);
    excluded.sort();
    for config in &shipped {
        for hook in config["webhooks"].as_array().unwrap() {
            if hook["name"] == "policies.podgate.dev" {
                continue;
            }
            let exprs = hook["namespaceSelector"]["matchExpressions"]
                .as_array()
                .unwrap();
            assert_eq!(strings(&exprs[0]["values"]), [NS], "{}", hook["name"]);
            let mut values = strings(&exprs[1]["values"]);
            values.sort();
            assert_eq!(values, excluded, "{}", hook["name"]);
        }
    }
    let validate = shipped[1]["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "validate.podgate.dev")
        .unwrap();
    assert_eq!(
        validate["failurePolicy"],
        settings["spec"]["validatingFailurePolicy"]
    );
}

// ----------------------------------------------------------------------------- RBAC

fn expect_least_privilege(objects: Vec<Value>, ns: &str) {
    let rbac = Rbac {
        objects,
        sa: "podgate".into(),
        sa_ns: ns.into(),
    };
    const ADM: &str = "admissionregistration.k8s.io";
    const MWC: &str = "mutatingwebhookconfigurations";
    const VWC: &str = "validatingwebhookconfigurations";
    // Every request podgate makes (src/cluster: secret.rs, webhooks.rs).
    let allowed = [
        ask("get", "", "secrets", Some(ns), Some("podgate-tls")),
        ask("create", "", "secrets", Some(ns), None),
        ask("update", "", "secrets", Some(ns), Some("podgate-tls")),
        // watch with fieldSelector metadata.name=podgate-tls is authorized with the name
        ask("watch", "", "secrets", Some(ns), Some("podgate-tls")),
        ask("get", ADM, MWC, None, Some("podgate")),
        ask("get", ADM, VWC, None, Some("podgate")),
        ask("patch", ADM, MWC, None, Some("podgate")),
        ask("patch", ADM, VWC, None, Some("podgate")),
        // server-side apply that creates: authorized as create of that name
        ask("create", ADM, MWC, None, Some("podgate")),
        ask("create", ADM, VWC, None, Some("podgate")),
    ];
    for a in &allowed {
        assert!(
            rbac.can(a),
            "podgate cannot {} {} {:?} in {:?}",
            a.verb,
            a.resource,
            a.name,
            a.namespace
        );
    }
    let denied = [
        ask("get", "", "secrets", Some(ns), Some("other")),
        ask("update", "", "secrets", Some(ns), Some("other")),
        ask("list", "", "secrets", Some(ns), None),
        ask("watch", "", "secrets", Some(ns), None),
        ask("delete", "", "secrets", Some(ns), Some("podgate-tls")),
        ask("patch", "", "secrets", Some(ns), Some("podgate-tls")),
        ask(
            "get",
            "",
            "secrets",
            Some("kube-system"),
            Some("podgate-tls"),
        ),
        ask("create", "", "secrets", Some("kube-system"), None),
        ask("get", ADM, MWC, None, Some("someone-else")),
        ask("patch", ADM, VWC, None, Some("someone-else")),
        ask("create", ADM, VWC, None, Some("someone-else")),
        ask("create", ADM, VWC, None, None),
        ask("list", ADM, VWC, None, None),
        ask("delete", ADM, VWC, None, Some("podgate")),
        ask("get", "", "configmaps", Some(ns), Some("podgate-webhooks")),
        ask("get", "", "pods", Some(ns), None),
        ask("list", "", "namespaces", None, None),
    ];
    for a in &denied {
        assert!(
            !rbac.can(a),
            "podgate can {} {} {:?} in {:?}",
            a.verb,
            a.resource,
            a.name,
            a.namespace
        );
    }
}

#[test]
fn rbac_allows_every_request_podgate_makes_and_nothing_else() {
    expect_least_privilege(kustomize(&repo().join("deploy/overlays/managed")), NS);
}

#[test]
fn rbac_and_the_namespace_follow_a_namespace_override() {
    let tmp = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(repo().join("deploy"), tmp.path().join("deploy")).unwrap();
    let wrap = tmp.path().join("wrap");
    std::fs::create_dir_all(&wrap).unwrap();
    std::fs::write(
        wrap.join("kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: policy-system\n\
         resources:\n  - ../deploy/overlays/managed\ntransformers:\n  - ../deploy/transformers\n",
    )
    .unwrap();
    let objects = kustomize(&wrap);
    // The Deployment reads its namespace from the downward API, so --namespace follows too.
    let d = named(&objects, "Deployment", "podgate");
    assert_eq!(d["metadata"]["namespace"], "policy-system");
    expect_least_privilege(objects, "policy-system");
}

#[test]
fn the_can_i_checker_refuses_what_rbac_refuses() {
    // Guards the checker above: a binding for another ServiceAccount, a Role in another
    // namespace and a name-limited rule all say no.
    let objects: Vec<Value> = serde_saphyr::from_multiple(
        "kind: Role\nmetadata: {name: r, namespace: a}\nrules: [{apiGroups: [''], resources: [secrets], resourceNames: [x], verbs: [get]}]\n\
         ---\nkind: RoleBinding\nmetadata: {name: b, namespace: a}\nroleRef: {kind: Role, name: r}\nsubjects: [{kind: ServiceAccount, name: podgate, namespace: a}]\n\
         ---\nkind: ClusterRole\nmetadata: {name: c}\nrules: [{apiGroups: ['*'], resources: ['*'], verbs: ['*']}]\n\
         ---\nkind: ClusterRoleBinding\nmetadata: {name: d}\nroleRef: {kind: ClusterRole, name: c}\nsubjects: [{kind: ServiceAccount, name: other, namespace: a}]\n",
    )
    .unwrap();
    let rbac = Rbac {
        objects,
        sa: "podgate".into(),
        sa_ns: "a".into(),
    };
    assert!(rbac.can(&ask("get", "", "secrets", Some("a"), Some("x"))));
    assert!(!rbac.can(&ask("get", "", "secrets", Some("a"), Some("y"))));
    assert!(!rbac.can(&ask("get", "", "secrets", Some("b"), Some("x"))));
    assert!(!rbac.can(&ask("get", "", "secrets", Some("a"), None)));
    assert!(!rbac.can(&ask("list", "", "pods", None, None)));
}

#[test]
fn requests_become_the_authorizers_questions() {
    let cases = [
        (
            "GET",
            "/api/v1/namespaces/ns/secrets/x",
            "",
            None,
            vec![ask("get", "", "secrets", Some("ns"), Some("x"))],
        ),
        (
            "GET",
            "/api/v1/namespaces/ns/secrets",
            "fieldSelector=metadata.name%3Dx&watch=true&resourceVersion=5",
            None,
            vec![ask("watch", "", "secrets", Some("ns"), Some("x"))],
        ),
        (
            "GET",
            "/api/v1/namespaces/ns/secrets",
            "limit=10",
            None,
            vec![ask("list", "", "secrets", Some("ns"), None)],
        ),
        (
            "POST",
            "/api/v1/namespaces/ns/secrets",
            "",
            None,
            vec![ask("create", "", "secrets", Some("ns"), None)],
        ),
        (
            "PUT",
            "/api/v1/namespaces/ns/secrets/x",
            "",
            None,
            vec![ask("update", "", "secrets", Some("ns"), Some("x"))],
        ),
        (
            "PATCH",
            "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/p",
            "fieldManager=podgate&force=true",
            Some("application/apply-patch+yaml"),
            vec![
                ask(
                    "patch",
                    "admissionregistration.k8s.io",
                    "validatingwebhookconfigurations",
                    None,
                    Some("p"),
                ),
                ask(
                    "create",
                    "admissionregistration.k8s.io",
                    "validatingwebhookconfigurations",
                    None,
                    Some("p"),
                ),
            ],
        ),
        (
            "DELETE",
            "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/p",
            "",
            None,
            vec![ask(
                "delete",
                "admissionregistration.k8s.io",
                "mutatingwebhookconfigurations",
                None,
                Some("p"),
            )],
        ),
    ];
    for (method, path, query, content_type, expected) in cases {
        assert_eq!(
            rbac::asks_for(method, path, query, content_type),
            expected,
            "{method} {path}?{query}"
        );
    }
}
