//! Properties of the admission path over generated Pods, workloads and AdmissionReviews
//! (docs/promises.md A5, A9, C1, E1-E3), and of the shell analysis (terminates on any text).
//!
//! The generators build raw JSON, not k8s-openapi types, so that they can carry what a newer
//! cluster would send: fields this build does not know (keys starting with `zzFuture`) at
//! object, metadata, spec, container, securityContext and hostAliases level. Policies are the
//! shipped `policies/` plus generated sets that use every action (Enforce, Warn, Audit) and
//! every `onConflict` (KeepPod, Override, Deny).
//!
//! Case counts are moderate so the file runs in well under a minute in debug on 2 cores;
//! raise them locally with `PROPTEST_CASES=5000 cargo test --test properties`.

// clippy.toml allows these inside #[test] functions only; the helpers and strategies of a
// test crate are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fixture_set;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use podgate::admission::{Effort, Webhook, review, review_with};
#[path = "common/contract.rs"]
mod contract;
#[path = "common/lean_equiv.rs"]
mod lean_equiv;

use contract::verify_response;

use podgate::policy::{Action, PolicySet};
use podgate::rules::Rule;
use podgate::rules::shell::{Budget, Start, WORK_BUDGET, analyse, find_hosts_writes};
use podgate::workload::{self, Kind, Source};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Value, json};

const V1: &str = "admission.k8s.io/v1";
const V1BETA1: &str = "admission.k8s.io/v1beta1";
/// Keys starting with this are unknown to k8s-openapi (as fields of a newer cluster would be).
const UNKNOWN: &str = "zzFuture";
const INJECT_LABEL: &str = "podgate.dev/inject-host-aliases";

fn now() -> jiff::Timestamp {
    "2026-11-27T12:00:00Z".parse().unwrap()
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Shrinking a failing case of nested JSON can take long; a bounded budget still ends
        // with a small case.
        max_shrink_iters: 2048,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Policy sets
// ---------------------------------------------------------------------------------------------

fn shipped_sources() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p.display().to_string(), text)
        })
        .collect()
}

/// One generated policy set: which knobs made it.
#[derive(Debug, Clone)]
struct SetChoice {
    shipped: bool,
    action: &'static str,
    on_conflict: &'static str,
    templates: bool,
    selector: bool,
    pull_set: &'static str,
}

/// Extra policies, consistent with the shipped ones (same IP for `foo.remote`, `set: Always`
/// when combined with them): two policies that want different values for one field fight
/// each other, which is a configuration problem, not what these properties test.
fn extras_yaml(c: &SetChoice) -> String {
    let replace: Vec<&str> = ["Always", "IfNotPresent", "Never"]
        .into_iter()
        .filter(|p| *p != c.pull_set)
        .collect();
    let selector = if c.selector {
        format!(
            "  match:\n    podSelector:\n      matchExpressions:\n        - {{key: {INJECT_LABEL}, operator: In, values: [\"true\"]}}\n"
        )
    } else {
        String::new()
    };
    format!(
        r#"apiVersion: podgate.dev/v1alpha1
kind: PodPolicy
metadata:
  name: prop-host-aliases
spec:
  action: {action}
{selector}  exemptions:
    - namespaces: [team-exempt]
      reason: property tests exempt this namespace
    - usernames: ["system:serviceaccount:kube-system:*"]
      expires: "2026-01-01"
      reason: an expired exemption must not apply
  mutate:
    templates: {templates}
    hostAliases:
      onConflict: {on_conflict}
      entries:
        - ip: 10.1.2.3
          hostnames: [foo.remote, baz.remote]
        - ip: "fd00::1"
          hostnames: [v6.remote, db]
---
apiVersion: podgate.dev/v1alpha1
kind: PodPolicy
metadata:
  name: prop-pull-policy
spec:
  action: {action}
  mutate:
    templates: {templates}
    imagePullPolicy:
      mutableTags: [latest, stable, dev]
      set: {pull_set}
      replace: [{replace}]
---
apiVersion: podgate.dev/v1alpha1
kind: PodPolicy
metadata:
  name: prop-validate
spec:
  action: {action}
  match:
    namespaces: ["*"]
    excludeNamespaces: [kube-system]
  validate:
    hostsFile: {{}}
    hostNamespaces:
      forbiddenCombinations:
        - [hostNetwork, capability:NET_ADMIN]
        - [privileged, hostPort]
        - [shareProcessNamespace, capability:SYS_PTRACE]
"#,
        action = c.action,
        templates = c.templates,
        on_conflict = c.on_conflict,
        pull_set = c.pull_set,
        replace = replace.join(", "),
    )
}

/// Every generated set, built once: the shipped set alone, then the extras in every
/// combination of action, onConflict, templates, selector and pull policy.
static SETS: LazyLock<Vec<(SetChoice, PolicySet)>> = LazyLock::new(|| {
    let shipped = shipped_sources();
    let mut sets = vec![(
        SetChoice {
            shipped: true,
            action: "-",
            on_conflict: "-",
            templates: false,
            selector: true,
            pull_set: "-",
        },
        PolicySet::from_sources(&shipped).unwrap(),
    )];
    for shipped_too in [true, false] {
        for action in ["Enforce", "Warn", "Audit"] {
            for on_conflict in ["KeepPod", "Override", "Deny"] {
                for templates in [false, true] {
                    for selector in [true, false] {
                        let pulls: &[&'static str] = if shipped_too {
                            &["Always"]
                        } else {
                            &["Always", "IfNotPresent", "Never"]
                        };
                        for pull_set in pulls {
                            let choice = SetChoice {
                                shipped: shipped_too,
                                action,
                                on_conflict,
                                templates,
                                selector,
                                pull_set,
                            };
                            let mut sources = if shipped_too {
                                shipped.clone()
                            } else {
                                Vec::new()
                            };
                            sources.push(("extras.yaml".into(), extras_yaml(&choice)));
                            let set = PolicySet::from_sources(&sources)
                                .unwrap_or_else(|e| panic!("{choice:?}: {e}"));
                            sets.push((choice, set));
                        }
                    }
                }
            }
        }
    }
    sets
});

fn policy_set() -> impl Strategy<Value = usize> {
    0..SETS.len()
}

// ---------------------------------------------------------------------------------------------
// Pods
// ---------------------------------------------------------------------------------------------

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn image() -> impl Strategy<Value = Option<String>> {
    let listed = select(vec![
        "nginx",
        "nginx:latest",
        "nginx:1.27",
        "nginx:stable",
        "busybox",
        "registry:5000/team/app",
        "registry:5000/team/app:latest",
        "docker.io/library/nginx:latest",
        "ghcr.io/org/app:v1.2.3",
        "localhost/app:dev",
        "nginx:LATEST",
        "nginx:",
        ":latest",
        "UPPER/app",
        "a..b/c",
        " nginx ",
        "",
        "nginx@sha256:short",
    ])
    .prop_map(String::from);
    prop_oneof![
        1 => Just(None),
        6 => listed.prop_map(Some),
        2 => select(vec!["nginx", "app", "reg:5000/x/y"])
            .prop_map(|n| Some(format!("{n}@{DIGEST}"))),
        1 => select(vec!["nginx:latest", "nginx:1.0"])
            .prop_map(|n| Some(format!("{n}@{DIGEST}"))),
        2 => "[a-zA-Z0-9:/@._-]{0,40}".prop_map(Some),
    ]
}

fn pull_policy() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![
        4 => Just(None),
        2 => Just(Some("Always")),
        3 => Just(Some("IfNotPresent")),
        2 => Just(Some("Never")),
        1 => select(vec!["always", ""]).prop_map(Some),
    ]
}

const VOLUMES: [&str; 5] = ["hosts-vol", "etc-vol", "root-vol", "data", "missing"];

fn mount() -> impl Strategy<Value = Value> {
    (
        select(VOLUMES.to_vec()),
        select(vec![
            "/etc/hosts",
            "//etc//hosts",
            "/etc/./hosts/",
            "/etc/../etc/hosts",
            "/etc/hosts.allow",
            "/tmp/etc/hosts",
            "/host",
            "/data",
            "etc/hosts",
        ]),
        proptest::option::of(any::<bool>()),
        proptest::option::of(select(vec!["", "hosts", "etc", "etc/hosts", "var/log"])),
    )
        .prop_map(|(name, path, read_only, sub)| {
            let mut m = json!({"name": name, "mountPath": path});
            if let Some(ro) = read_only {
                m["readOnly"] = ro.into();
            }
            if let Some(sub) = sub {
                m["subPath"] = sub.into();
            }
            m
        })
}

fn volume(name: &'static str) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        2 => Just(None),
        3 => (
            select(vec![
                "/etc/hosts",
                "/etc",
                "/etc/",
                "/",
                "/var/log",
                "/etcd",
                "/etc/hostname",
                "/proc/1/root",
                "/var/lib/kubelet",
                "/var/lib/kubelet/plugins",
            ]),
            proptest::option::of(select(vec!["File", "Directory", ""])),
        )
            .prop_map(move |(path, kind)| {
                let mut host_path = json!({"path": path});
                if let Some(kind) = kind {
                    host_path["type"] = kind.into();
                }
                Some(json!({"name": name, "hostPath": host_path}))
            }),
        1 => Just(Some(json!({"name": name, "emptyDir": {}}))),
        1 => Just(Some(json!({"name": name, "configMap": {"name": "hosts"}}))),
    ]
}

const SCRIPT_FRAGMENTS: [&str; 16] = [
    "echo 10.1.2.3 foo.remote >> /etc/hosts",
    "cat /etc/hosts",
    "sleep 3600",
    "echo '10.0.0.1 db' | tee -a /etc/hosts",
    "sed -i 's/a/b/' /etc/hosts",
    "cp /config/hosts /etc/hosts",
    "sh -c \"echo 1.1.1.1 x >> /etc/hosts\"",
    "exec nginx -g 'daemon off;'",
    "printf '%s\\n' \"$HOSTS\" > /etc/hosts.bak",
    "grep db /etc/hosts || true",
    "echo 'unterminated",
    "echo $(echo /etc/hosts)",
    "cat <<EOF >> /etc/hosts\n10.0.0.2 h\nEOF",
    "if [ -f /etc/hosts ]; then :; fi",
    "for h in a b; do echo \"$h\"; done",
    "echo x > //etc/./hosts",
];

fn script() -> impl Strategy<Value = String> {
    prop::collection::vec(select(SCRIPT_FRAGMENTS.to_vec()), 1..4).prop_map(|v| v.join("; "))
}

type CommandArgs = (Option<Vec<String>>, Option<Vec<String>>);

fn command_args() -> impl Strategy<Value = CommandArgs> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    prop_oneof![
        3 => Just((None, None)),
        3 => script().prop_map(move |sc| (Some(s(&["sh", "-c", &sc])), None)),
        2 => script().prop_map(move |sc| (Some(s(&["/bin/sh", "-c"])), Some(vec![sc]))),
        2 => script().prop_map(move |sc| (None, Some(s(&["-c", &sc])))),
        1 => script().prop_map(move |sc| (Some(s(&["bash", "-lc", &sc, "arg0"])), None)),
        1 => select(vec![
            vec!["tee", "-a", "/etc/hosts"],
            vec!["cp", "/tmp/h", "/etc/hosts"],
            vec!["echo", "x", ">>", "/etc/hosts"],
            vec!["nginx"],
        ])
        .prop_map(move |v| (Some(s(&v)), None)),
    ]
}

fn exec_handler() -> impl Strategy<Value = Option<Value>> {
    proptest::option::weighted(
        0.2,
        script().prop_map(|sc| json!({"exec": {"command": ["sh", "-c", sc]}})),
    )
}

fn security_context() -> impl Strategy<Value = Option<Value>> {
    proptest::option::weighted(
        0.4,
        (
            proptest::option::of(any::<bool>()),
            prop::collection::vec(
                select(vec![
                    "NET_ADMIN",
                    "SYS_ADMIN",
                    "CAP_SYS_PTRACE",
                    "sys_ptrace",
                    "ALL",
                ]),
                0..3,
            ),
            proptest::option::weighted(0.2, unknown_value()),
        )
            .prop_map(|(privileged, caps, unknown)| {
                let mut sc = json!({});
                if let Some(p) = privileged {
                    sc["privileged"] = p.into();
                }
                if !caps.is_empty() {
                    sc["capabilities"] = json!({"add": caps, "drop": ["MKNOD"]});
                }
                if let Some(u) = unknown {
                    sc[format!("{UNKNOWN}SecurityContext")] = u;
                }
                sc
            }),
    )
}

fn ports() -> impl Strategy<Value = Vec<Value>> {
    prop::collection::vec(
        (1u16..65535, proptest::option::weighted(0.3, 1u16..65535)).prop_map(|(port, host)| {
            let mut p = json!({"containerPort": port, "protocol": "TCP"});
            if let Some(h) = host {
                p["hostPort"] = h.into();
            }
            p
        }),
        0..3,
    )
}

/// An unknown field's value; keys and strings carry `/` and `~` to exercise pointer escaping.
fn unknown_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-z /~]{0,8}".prop_map(Value::from),
        Just(json!({"nested": {"a/b~c": [1, "x~y", null]}})),
        Just(json!([{"name": "x", "imagePullPolicy": "Never"}])),
    ]
}

fn unknown_field(level: &'static str) -> impl Strategy<Value = Option<(String, Value)>> {
    proptest::option::weighted(
        0.5,
        (select(vec!["", "/x~y", ".io"]), unknown_value())
            .prop_map(move |(suffix, v)| (format!("{UNKNOWN}{level}{suffix}"), v)),
    )
}

fn container() -> impl Strategy<Value = Value> {
    (
        (image(), pull_policy(), command_args()),
        prop::collection::vec(mount(), 0..3),
        (exec_handler(), exec_handler()),
        security_context(),
        ports(),
        unknown_field("Container"),
    )
        .prop_map(
            |((image, pull, (command, args)), mounts, (post_start, probe), sc, ports, unknown)| {
                let mut c = json!({});
                if let Some(i) = image {
                    c["image"] = i.into();
                }
                if let Some(p) = pull {
                    c["imagePullPolicy"] = p.into();
                }
                if let Some(cmd) = command {
                    c["command"] = cmd.into();
                }
                if let Some(a) = args {
                    c["args"] = a.into();
                }
                if !mounts.is_empty() {
                    c["volumeMounts"] = mounts.into();
                }
                if let Some(h) = post_start {
                    c["lifecycle"] = json!({"postStart": h});
                }
                if let Some(p) = probe {
                    c["livenessProbe"] = p;
                }
                if let Some(sc) = sc {
                    c["securityContext"] = sc;
                }
                if !ports.is_empty() {
                    c["ports"] = ports.into();
                }
                if let Some((k, v)) = unknown {
                    c[k] = v;
                }
                c
            },
        )
}

const ALIAS_IPS: [&str; 7] = [
    "10.1.2.3",
    "10.9.9.9",
    "10.0.0.1",
    "fd00::1",
    "fd00:0:0::1",
    "not-an-ip",
    "10.1.2.3 ",
];
const ALIAS_HOSTS: [&str; 6] = [
    "foo.remote",
    "bar.remote",
    "baz.remote",
    "v6.remote",
    "db",
    "x",
];

/// Existing `spec.hostAliases`, overlapping the policies' IPs and hostnames. With
/// `marked`, every entry carries an unknown field whose value names the entry, so the
/// properties can tell which entries a patch kept.
fn host_aliases() -> impl Strategy<Value = Option<Value>> {
    proptest::option::weighted(
        0.6,
        (
            prop::collection::vec(
                (
                    select(ALIAS_IPS.to_vec()),
                    proptest::option::weighted(
                        0.85,
                        prop::collection::vec(select(ALIAS_HOSTS.to_vec()), 0..4),
                    ),
                ),
                0..4,
            ),
            any::<bool>(),
        )
            .prop_map(|(entries, marked)| {
                let list: Vec<Value> = entries
                    .into_iter()
                    .enumerate()
                    .map(|(i, (ip, hosts))| {
                        let mut e = json!({"ip": ip});
                        if let Some(h) = hosts {
                            e["hostnames"] = h.into();
                        }
                        if marked {
                            e[format!("{UNKNOWN}Alias")] = format!("entry-{i}").into();
                        }
                        e
                    })
                    .collect();
                Value::from(list)
            }),
    )
}

fn named(list: Vec<Value>, prefix: &str) -> Vec<Value> {
    list.into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            c["name"] = format!("{prefix}-{i}").into();
            c
        })
        .collect()
}

fn pod_spec() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(container(), 1..4),
        prop::collection::vec(container(), 0..3),
        prop::collection::vec(container(), 0..3),
        (
            volume(VOLUMES[0]),
            volume(VOLUMES[1]),
            volume(VOLUMES[2]),
            volume(VOLUMES[3]),
        ),
        prop::array::uniform4(proptest::option::weighted(0.3, any::<bool>())),
        host_aliases(),
        proptest::option::weighted(0.3, select(vec!["default", "builder", ""])),
        unknown_field("Spec"),
    )
        .prop_map(
            |(main, init, ephemeral, vols, flags, aliases, sa, unknown)| {
                let mut spec = json!({"containers": named(main, "app")});
                if !init.is_empty() {
                    spec["initContainers"] = named(init, "init").into();
                }
                if !ephemeral.is_empty() {
                    spec["ephemeralContainers"] = named(ephemeral, "debug").into();
                }
                let volumes: Vec<Value> = [vols.0, vols.1, vols.2, vols.3]
                    .into_iter()
                    .flatten()
                    .collect();
                if !volumes.is_empty() {
                    spec["volumes"] = volumes.into();
                }
                for (key, flag) in ["hostNetwork", "hostPID", "hostIPC", "shareProcessNamespace"]
                    .into_iter()
                    .zip(flags)
                {
                    if let Some(f) = flag {
                        spec[key] = f.into();
                    }
                }
                if let Some(a) = aliases {
                    spec["hostAliases"] = a;
                }
                if let Some(sa) = sa {
                    spec["serviceAccountName"] = sa.into();
                }
                if let Some((k, v)) = unknown {
                    spec[k] = v;
                }
                spec
            },
        )
}

fn labels() -> impl Strategy<Value = Value> {
    (
        proptest::option::weighted(0.6, select(vec!["true", "false", "TRUE"])),
        proptest::option::of(select(vec!["web", "db"])),
    )
        .prop_map(|(inject, app)| {
            let mut l = json!({});
            if let Some(v) = inject {
                l[INJECT_LABEL] = v.into();
            }
            if let Some(v) = app {
                l["app.kubernetes.io/name"] = v.into();
            }
            l
        })
}

/// Pod metadata; `namespace` is echoed into it half the time.
fn metadata() -> impl Strategy<Value = Value> {
    (
        labels(),
        select(vec![Some("web-0"), None]),
        proptest::option::weighted(0.05, Just("abc")),
        unknown_field("Metadata"),
    )
        .prop_map(|(labels, name, mirror, unknown)| {
            let mut m = json!({"labels": labels});
            match name {
                Some(n) => m["name"] = n.into(),
                None => m["generateName"] = "web-".into(),
            }
            if let Some(hash) = mirror {
                m["annotations"] = json!({"kubernetes.io/config.mirror": hash});
            }
            if let Some((k, v)) = unknown {
                m[k] = v;
            }
            m
        })
}

fn pod() -> impl Strategy<Value = Value> {
    (metadata(), pod_spec(), unknown_field("Pod")).prop_map(|(metadata, spec, unknown)| {
        let mut p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec});
        if let Some((k, v)) = unknown {
            p[k] = v;
        }
        p
    })
}

// ---------------------------------------------------------------------------------------------
// AdmissionReviews
// ---------------------------------------------------------------------------------------------

/// (group, version, kind, resource) of every kind with a pod spec.
const KINDS: [(&str, &str, &str, &str); 8] = [
    ("", "v1", "Pod", "pods"),
    ("apps", "v1", "Deployment", "deployments"),
    ("apps", "v1", "ReplicaSet", "replicasets"),
    ("apps", "v1", "StatefulSet", "statefulsets"),
    ("apps", "v1", "DaemonSet", "daemonsets"),
    ("batch", "v1", "Job", "jobs"),
    ("batch", "v1", "CronJob", "cronjobs"),
    ("", "v1", "ReplicationController", "replicationcontrollers"),
];

/// The Pod's metadata and spec wrapped as the object of `kind` (index into KINDS).
fn wrap(kind: usize, pod: &Value) -> Value {
    let (group, version, name, _) = KINDS[kind];
    if name == "Pod" {
        return pod.clone();
    }
    let api_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let template = json!({"metadata": {"labels": pod["metadata"]["labels"]}, "spec": pod["spec"]});
    let mut spec = match name {
        "CronJob" => {
            json!({"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": template}}})
        }
        "Job" | "ReplicationController" => json!({"template": template}),
        _ => json!({"selector": {"matchLabels": {"app": "x"}}, "template": template}),
    };
    spec[format!("{UNKNOWN}WorkloadSpec")] = json!({"keep": true});
    json!({
        "apiVersion": api_version,
        "kind": name,
        "metadata": {"name": "work", "labels": {"app": "x"}},
        "spec": spec,
    })
}

#[derive(Debug, Clone)]
struct Who {
    api_version: &'static str,
    uid: String,
    namespace: Option<&'static str>,
    username: &'static str,
    dry_run: Option<bool>,
}

fn who() -> impl Strategy<Value = Who> {
    (
        select(vec![V1, V1BETA1]),
        prop_oneof![
            4 => "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            1 => "\\PC{1,20}",
        ],
        select(vec![
            Some("default"),
            Some("kube-system"),
            Some("team-a"),
            Some("team-exempt"),
            None,
        ]),
        select(vec![
            "kubernetes-admin",
            "system:serviceaccount:kube-system:replicaset-controller",
            "system:node:node-1",
        ]),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(|(api_version, uid, namespace, username, dry_run)| Who {
            api_version,
            uid,
            namespace,
            username,
            dry_run,
        })
}

/// An AdmissionReview request body.
fn envelope(
    who: &Who,
    kind: usize,
    operation: &str,
    sub_resource: Option<&str>,
    object: Option<Value>,
    old_object: Option<Value>,
) -> Value {
    let (group, version, name, resource) = KINDS[kind];
    let mut request = json!({
        "uid": who.uid,
        "kind": {"group": group, "version": version, "kind": name},
        "resource": {"group": group, "version": version, "resource": resource},
        "requestKind": {"group": group, "version": version, "kind": name},
        "name": "web-0",
        "operation": operation,
        "userInfo": {
            "username": who.username,
            "groups": if who.username.starts_with("system:node:") {
                json!(["system:nodes", "system:authenticated"])
            } else {
                json!(["system:authenticated"])
            },
            "extra": {"x": ["y"]},
        },
        "object": object,
        "oldObject": old_object,
    });
    if let Some(ns) = who.namespace {
        request["namespace"] = ns.into();
    }
    if let Some(sub) = sub_resource {
        request["subResource"] = sub.into();
    }
    if let Some(d) = who.dry_run {
        request["dryRun"] = d.into();
    }
    json!({"apiVersion": who.api_version, "kind": "AdmissionReview", "request": request})
}

/// A CREATE of a Pod (most of the time) or a workload.
fn create_request() -> impl Strategy<Value = (usize, Value)> {
    (
        who(),
        prop_oneof![3 => Just(0usize), 1 => 0..KINDS.len()],
        pod(),
    )
        .prop_map(|(who, kind, pod)| {
            (
                kind,
                envelope(&who, kind, "CREATE", None, Some(wrap(kind, &pod)), None),
            )
        })
}

/// Any request podgate may be sent: every operation, subresources (including
/// `pods/ephemeralcontainers` updates that add some of the Pod's ephemeral containers),
/// kinds it does not handle, both API versions.
fn any_request() -> impl Strategy<Value = Value> {
    (who(), 0..KINDS.len(), pod(), 0..8usize, 0..3usize).prop_map(
        |(who, kind, pod, op, keep_ephemeral)| {
            let object = wrap(kind, &pod);
            match op {
                0 | 1 => envelope(&who, kind, "CREATE", None, Some(object), None),
                2 => {
                    // `kubectl debug`: the old Pod has a prefix of the new one's ephemeral
                    // containers.
                    let mut old = object.clone();
                    if let Some(list) = old
                        .pointer_mut("/spec/ephemeralContainers")
                        .and_then(Value::as_array_mut)
                    {
                        list.truncate(keep_ephemeral);
                    }
                    envelope(
                        &who,
                        kind,
                        "UPDATE",
                        Some("ephemeralcontainers"),
                        Some(object),
                        Some(old),
                    )
                }
                3 => envelope(
                    &who,
                    kind,
                    "UPDATE",
                    None,
                    Some(object.clone()),
                    Some(object),
                ),
                4 => envelope(
                    &who,
                    kind,
                    "UPDATE",
                    Some("status"),
                    Some(object.clone()),
                    Some(object),
                ),
                5 => envelope(&who, kind, "DELETE", None, None, Some(object)),
                6 => envelope(
                    &who,
                    kind,
                    "CONNECT",
                    Some("exec"),
                    Some(json!({"kind": "PodExecOptions", "apiVersion": "v1", "command": ["sh"]})),
                    None,
                ),
                // A CREATE whose object is missing or unreadable as its kind.
                _ => envelope(
                    &who,
                    kind,
                    "CREATE",
                    None,
                    [None, Some(json!({"spec": {"containers": "nope"}}))][keep_ephemeral % 2]
                        .clone(),
                    None,
                ),
            }
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

fn response(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap()
}

/// The decoded JSON Patch of a mutating answer, if any.
fn patch_ops(answer: &Value) -> Option<Vec<Value>> {
    let encoded = answer.pointer("/response/patch")?.as_str()?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    Some(serde_json::from_slice(&raw).unwrap())
}

/// Reviews `body` with `set` and checks what every answer must satisfy: it is produced,
/// echoes uid and apiVersion, and kube-apiserver would accept it; the server's inline path
/// (`Effort::Inline`) gives the same answer unless it reports falling short. Returns the answer
/// and the patched object (mutating answers with a patch).
fn review_checked(set: &PolicySet, body: &Value, webhook: Webhook) -> (Value, Option<Value>) {
    let raw = bytes(body);
    let reviewed = review(set, &raw, webhook, now()).unwrap();
    assert!(!reviewed.summary.cut, "a full review is never cut");
    let inline = review_with(set, &raw, webhook, now(), Effort::Inline).unwrap();
    if !inline.summary.cut {
        assert_eq!(inline, reviewed, "the inline answer differs");
    }
    let answer = response(&reviewed.body);
    assert_eq!(
        answer["apiVersion"], body["apiVersion"],
        "apiVersion echoed"
    );
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(
        answer["response"]["uid"], body["request"]["uid"],
        "uid echoed"
    );
    let patched = verify_response(&raw, &reviewed.body, webhook)
        .unwrap_or_else(|e| panic!("apiserver would reject the {webhook:?} answer: {e}"));
    (answer, patched)
}

/// The policy findings of a validating review of `object` (same request otherwise).
fn validation_findings(
    set: &PolicySet,
    request: &Value,
    object: &Value,
) -> Vec<(String, Action, Rule, String)> {
    let mut body = request.clone();
    body["request"]["object"] = object.clone();
    let reviewed = review(set, &bytes(&body), Webhook::Validate, now()).unwrap();
    reviewed
        .summary
        .findings
        .into_iter()
        .map(|f| (f.policy, f.action, f.rule, f.message))
        .collect()
}

/// One generated mutating policy (its name is set by `any_policy_set`): pull policy with any
/// `set`, any `replace` and any mutable tags, and/or hostAliases with any onConflict over a
/// small pool of IPs and hostnames, with any action and `templates`.
fn any_mutating_policy() -> impl Strategy<Value = String> {
    let pulls = ["Always", "IfNotPresent", "Never"];
    let pull = proptest::option::weighted(
        0.75,
        (
            select(pulls.to_vec()),
            prop_oneof![
                2 => select(pulls.to_vec()).prop_map(|p| vec![p]),
                1 => proptest::sample::subsequence(pulls.to_vec(), 0..=3),
            ],
            prop_oneof![
                3 => Just(vec!["latest"]),
                1 => proptest::sample::subsequence(vec!["latest", "stable", "dev", "1.0"], 1..=3),
            ],
        ),
    );
    let hosts = vec!["foo.remote", "baz.remote", "db", "v6.remote"];
    let aliases = proptest::option::of((
        select(vec!["KeepPod", "Override", "Deny"]),
        select(vec!["10.1.2.3", "10.9.9.9", "fd00::1"]),
        select(vec!["10.7.7.7", "10.1.2.4"]),
        Just(hosts.clone()).prop_shuffle(),
        1..4usize,
        0..4usize,
    ));
    (
        select(vec!["Enforce", "Warn", "Audit"]),
        any::<bool>(),
        pull,
        aliases,
    )
        .prop_filter("a policy turns something on", |(_, _, p, a)| {
            p.is_some() || a.is_some()
        })
        .prop_map(|(action, templates, pull, aliases)| {
            let mut mutate = format!("    templates: {templates}\n");
            if let Some((set, replace, tags)) = pull {
                mutate += &format!(
                    "    imagePullPolicy: {{set: {set}, replace: [{}], mutableTags: [{}]}}\n",
                    replace.join(", "),
                    tags.join(", ")
                );
            }
            if let Some((on_conflict, ip_a, ip_b, hosts, split, second)) = aliases {
                let split = split.min(hosts.len() - 1);
                let (first, rest) = hosts.split_at(split);
                let mut entries = format!("{{ip: \"{ip_a}\", hostnames: [{}]}}", first.join(", "));
                let second = &rest[..second.min(rest.len())];
                if !second.is_empty() {
                    entries += &format!(", {{ip: \"{ip_b}\", hostnames: [{}]}}", second.join(", "));
                }
                mutate += &format!(
                    "    hostAliases: {{onConflict: {on_conflict}, entries: [{entries}]}}\n"
                );
            }
            format!("apiVersion: podgate.dev/v1alpha1\nkind: PodPolicy\nmetadata: {{name: NAME}}\nspec:\n  action: {action}\n  mutate:\n{mutate}")
        })
}

/// A CREATE of a small Pod whose containers are what pull-policy and hostAliases mutations
/// act on: mutable and pinned tags, every pull policy or none, maybe hostAliases already.
fn mutable_pod_request() -> impl Strategy<Value = (usize, Value)> {
    let container = (
        select(vec![
            "busybox",
            "nginx:latest",
            "app:stable",
            "app:dev",
            "nginx:1.0",
        ]),
        select(vec![
            None,
            Some("Always"),
            Some("IfNotPresent"),
            Some("Never"),
        ]),
    )
        .prop_map(|(image, policy)| {
            let mut c = json!({"image": image});
            if let Some(p) = policy {
                c["imagePullPolicy"] = p.into();
            }
            c
        });
    (
        who(),
        proptest::collection::vec(container, 1..4),
        host_aliases(),
    )
        .prop_map(|(who, containers, aliases)| {
            let mut spec = json!({"containers": named(containers, "c")});
            if let Some(a) = aliases {
                spec["hostAliases"] = a;
            }
            let pod = json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "labels": {INJECT_LABEL: "true"}}, "spec": spec});
            (0, envelope(&who, 0, "CREATE", None, Some(pod), None))
        })
}

/// Any set of up to five such policies that the loader accepts.
fn any_policy_set() -> impl Strategy<Value = (Vec<String>, Arc<PolicySet>)> {
    proptest::collection::vec(any_mutating_policy(), 1..6).prop_filter_map(
        "the loader refuses the set",
        |docs| {
            let docs: Vec<String> = docs
                .iter()
                .enumerate()
                .map(|(i, d)| d.replace("NAME", &format!("p{i}")))
                .collect();
            let sources = vec![("set.yaml".to_string(), docs.join("---\n"))];
            PolicySet::from_sources(&sources)
                .ok()
                .map(|set| (docs, Arc::new(set)))
        },
    )
}

/// Every unknown field, keyed by its path; entries of `hostAliases` are keyed by their
/// marker (see `host_aliases`) since a patch may remove entries and shift the others.
fn unknown_fields(v: &Value) -> BTreeMap<String, Value> {
    fn walk(v: &Value, path: &str, out: &mut BTreeMap<String, Value>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    let here = format!("{path}/{k}");
                    if k.starts_with(UNKNOWN) {
                        out.insert(here, child.clone());
                    } else {
                        walk(child, &here, out);
                    }
                }
            }
            Value::Array(items) => {
                let aliases = path.ends_with("/hostAliases");
                for (i, item) in items.iter().enumerate() {
                    let key = match item.get(format!("{UNKNOWN}Alias")) {
                        Some(marker) if aliases => format!("{path}/{marker}"),
                        _ => format!("{path}/{i}"),
                    };
                    walk(item, &key, out);
                }
            }
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    walk(v, "", &mut out);
    out
}

fn alias_entries(spec: &Value) -> Vec<Value> {
    spec.get("hostAliases")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Where the pod spec lives in `kind` (index into KINDS).
fn spec_pointer(kind: usize) -> &'static str {
    match KINDS[kind].2 {
        "Pod" => "/spec",
        "CronJob" => "/spec/jobTemplate/spec/template/spec",
        _ => "/spec/template/spec",
    }
}

/// True when `path` is one podgate's mutations may touch: a container's imagePullPolicy or
/// the hostAliases list, its entries and their hostnames.
fn allowed_patch_path(spec: &str, path: &str) -> bool {
    let Some(rest) = path.strip_prefix(spec) else {
        return false;
    };
    let parts: Vec<&str> = rest.split('/').skip(1).collect();
    let index = |s: &str| s.parse::<usize>().is_ok();
    match parts.as_slice() {
        ["containers" | "initContainers", i, "imagePullPolicy"] => index(i),
        ["hostAliases"] => true,
        ["hostAliases", i] => *i == "-" || index(i),
        ["hostAliases", i, "hostnames"] => index(i),
        ["hostAliases", i, "hostnames", j] => index(i) && (*j == "-" || index(j)),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    /// A5, A9, C1: any request gets an answer from both webhooks that echoes uid and
    /// apiVersion and that kube-apiserver accepts; answers are deterministic and do not
    /// depend on dryRun.
    #[test]
    fn every_request_gets_an_answer_the_apiserver_accepts(
        set in policy_set(),
        body in any_request(),
    ) {
        let set = &SETS[set].1;
        for webhook in [Webhook::Validate, Webhook::Mutate] {
            let (answer, _) = review_checked(set, &body, webhook);
            let again = review(set, &bytes(&body), webhook, now()).unwrap();
            prop_assert_eq!(&response(&again.body), &answer, "not deterministic");

            let mut flipped = body.clone();
            let dry = flipped["request"]["dryRun"].as_bool().unwrap_or(false);
            flipped["request"]["dryRun"] = (!dry).into();
            let other = review(set, &bytes(&flipped), webhook, now()).unwrap();
            prop_assert_eq!(&response(&other.body), &answer, "dryRun changed the answer");
        }
    }

    /// E1, E3: a patch applies to the request object, the result still parses as its kind,
    /// and mutating the result again yields no patch.
    #[test]
    fn patches_apply_parse_and_are_idempotent(
        set in policy_set(),
        (kind, body) in create_request(),
    ) {
        let set = &SETS[set].1;
        let (_, patched) = review_checked(set, &body, Webhook::Mutate);
        let Some(patched) = patched else { return Ok(()) };
        let (group, _, name, _) = KINDS[kind];
        if name == "Pod" {
            let typed: Result<k8s_openapi::api::core::v1::Pod, _> =
                serde_json::from_value(patched.clone());
            prop_assert!(typed.is_ok(), "patched Pod does not parse: {:?}", typed.err());
        }
        let k = Kind::from_group_kind(group, name).unwrap();
        let read = workload::read(k, Source::Value(&patched));
        prop_assert!(read.is_ok(), "patched {} does not parse: {:?}", name, read.err());

        let mut again = body.clone();
        again["request"]["object"] = patched.clone();
        again["request"]["uid"] = "second-round".into();
        let (answer, repatched) = review_checked(set, &again, Webhook::Mutate);
        prop_assert!(
            repatched.is_none(),
            "second round patched again: {:?}",
            patch_ops(&answer)
        );
    }

    /// E3: mutations never cause a validation finding, and the validating webhook's
    /// re-check of imagePullPolicy and hostAliases passes on the patched object.
    #[test]
    fn mutations_never_violate_validations(
        set in policy_set(),
        (_, body) in create_request(),
    ) {
        let set = &SETS[set].1;
        let (_, patched) = review_checked(set, &body, Webhook::Mutate);
        let Some(patched) = patched else { return Ok(()) };
        let original = body["request"]["object"].clone();
        let before = validation_findings(set, &body, &original);
        let after = validation_findings(set, &body, &patched);
        for finding in &after {
            if finding.1 == Action::Audit {
                // Audit mutations are reported, never applied, so their re-check stays.
                continue;
            }
            prop_assert!(
                !finding.3.starts_with("not mutated"),
                "re-check fails after patching: {:?}",
                finding
            );
            prop_assert!(
                before.contains(finding),
                "the mutation caused a finding: {:?}\nbefore: {:?}",
                finding,
                before
            );
        }
    }

    /// #14: for any policy set the loader accepts and any object, what the mutating webhook
    /// sends leaves nothing for the validating webhook's re-check (the same combined plan,
    /// run on the patched object) to report as missing.
    #[test]
    fn mutate_then_validate_never_reports_a_missing_mutation(
        (docs, set) in any_policy_set(),
        (_, body) in prop_oneof![create_request(), mutable_pod_request()],
    ) {
        let (answer, patched) = review_checked(&set, &body, Webhook::Mutate);
        if answer["response"]["allowed"] == false {
            // Denied: no object is created, so there is nothing to re-check.
            return Ok(());
        }
        let object = patched.unwrap_or_else(|| body["request"]["object"].clone());
        for finding in validation_findings(&set, &body, &object) {
            if finding.1 == Action::Audit {
                // An Audit policy never patches: what it would change is reported, not missing.
                continue;
            }
            prop_assert!(
                !finding.3.starts_with("not mutated") && !finding.3.contains("still change"),
                "re-check reports {:?}\npolicies:\n{}",
                finding,
                docs.join("---\n")
            );
        }
    }

    /// #14: the lean decode reads every generated object (and every patched one) as the full
    /// typed decode does: same metadata, same spec apart from the skipped fields, same verdict
    /// for every question.
    #[test]
    fn the_lean_decode_answers_generated_objects_as_the_typed_decode(
        set in policy_set(),
        (kind, body) in create_request(),
    ) {
        let set = &SETS[set].1;
        let (group, _, name, _) = KINDS[kind];
        let k = Kind::from_group_kind(group, name).unwrap();
        lean_equiv::same_decode(set, k, &body["request"]["object"], "generated");
        let (_, patched) = review_checked(set, &body, Webhook::Mutate);
        if let Some(patched) = patched {
            lean_equiv::same_decode(set, k, &patched, "patched");
        }
    }

    /// E2: patches touch only imagePullPolicy and hostAliases; fields unknown to
    /// k8s-openapi survive untouched; Override removes only entries that held a hostname a
    /// policy claims.
    #[test]
    fn patches_touch_only_their_fields_and_keep_unknown_ones(
        set in policy_set(),
        (kind, body) in create_request(),
    ) {
        let set = &SETS[set].1;
        let (answer, patched) = review_checked(set, &body, Webhook::Mutate);
        let Some(patched) = patched else { return Ok(()) };
        let spec = spec_pointer(kind);
        for op in patch_ops(&answer).unwrap() {
            let path = op["path"].as_str().unwrap();
            prop_assert!(allowed_patch_path(spec, path), "patch touches {}", path);
        }
        let original = &body["request"]["object"];
        let before = unknown_fields(original);
        let after = unknown_fields(&patched);
        let spec_before = original.pointer(spec).unwrap();
        let spec_after = patched.pointer(spec).unwrap();
        let kept: BTreeSet<String> = alias_entries(spec_after)
            .iter()
            .filter_map(|e| e.get(format!("{UNKNOWN}Alias")).map(Value::to_string))
            .collect();
        for (path, value) in &before {
            let in_removed_entry = path.contains("/hostAliases/\"")
                && !kept.iter().any(|m| path.contains(&format!("/hostAliases/{m}")));
            if in_removed_entry {
                continue;
            }
            prop_assert_eq!(after.get(path), Some(value), "unknown field {} changed", path);
        }
        for path in after.keys() {
            prop_assert!(before.contains_key(path), "unknown field {} appeared", path);
        }
        let claimed: BTreeSet<&str> = ["foo.remote", "bar.remote", "baz.remote", "v6.remote", "db"].into();
        for entry in alias_entries(spec_before) {
            let Some(marker) = entry.get(format!("{UNKNOWN}Alias")) else { continue };
            if kept.contains(&marker.to_string()) {
                continue;
            }
            let held_claimed = entry["hostnames"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|h| h.as_str().is_some_and(|h| claimed.contains(h)));
            prop_assert!(held_claimed, "removed hostAliases entry {} held no claimed hostname", entry);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Shell analysis
// ---------------------------------------------------------------------------------------------

/// A hang guard, not a benchmark: loose enough for a debug build on a busy 2-core runner.
/// What bounds the analysis is its work budget, asserted below; time is only a backstop.
const SHELL_BUDGET: Duration = Duration::from_secs(10);

/// Runs the analysis; checks that its work stayed within the budget (plus the one charge
/// that found it exhausted, at most the input's size) and returns the time it took.
fn time_shell(argv: &[String], known_program: bool) -> Duration {
    let start = Instant::now();
    let mut budget = Budget::default();
    let _ = analyse(argv, known_program, &Start::default(), &mut budget);
    let took = start.elapsed();
    let bytes: u64 = argv.iter().map(|a| a.len() as u64 + 1).sum();
    assert!(
        budget.used() <= WORK_BUDGET + 64 * bytes + 4096,
        "{} units on {bytes} bytes",
        budget.used()
    );
    took
}

/// Units of work the analysis spends on `sh -c SCRIPT`.
fn work_of(script: &str) -> u64 {
    let mut budget = Budget::new(u64::MAX);
    let argv = vec!["sh".to_string(), "-c".to_string(), script.to_string()];
    let _ = analyse(&argv, true, &Start::default(), &mut budget);
    budget.used()
}

const SHELL_TOKENS: [&str; 40] = [
    "echo",
    "1.2.3.4 foo",
    ">>",
    ">",
    ">|",
    "/etc/hosts",
    "//etc/./hosts",
    "|",
    "tee",
    "-a",
    "sh",
    "-c",
    "'",
    "\"",
    "$(",
    ")",
    "`",
    "{",
    "}",
    "(",
    ";",
    "&&",
    "||",
    "\\",
    "\n",
    "<<EOF",
    "<<-'EOF'",
    "EOF",
    "$[",
    "]",
    "${",
    "eval",
    "cat",
    "sed",
    "-i",
    "cp",
    "$((",
    "))",
    "<<<",
    "#",
];

/// Shell-ish token soup: quotes, substitutions, heredocs and redirections in any order.
fn shell_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![4 => select(SHELL_TOKENS.to_vec()).prop_map(String::from), 1 => "\\PC{0,6}"],
        0..200,
    )
    .prop_map(|t| t.join(" "))
}

fn quote_single(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn quote_double(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        if matches!(c, '"' | '\\' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// `sh -c` wrapped `depth` times around a write, with single or double quoting (which grow
/// the text geometrically, so depth stays small) or `$(...)`, `{ }` and `( )` (linear).
fn nested_script() -> impl Strategy<Value = String> {
    let inner = select(vec![
        "echo 10.0.0.1 db >> /etc/hosts".to_string(),
        "tee -a /etc/hosts".to_string(),
        "cat".to_string(),
    ]);
    prop_oneof![
        (inner.clone(), 1..9usize, any::<bool>()).prop_map(|(s, depth, single)| {
            (0..depth).fold(s, |acc, _| {
                let q = if single {
                    quote_single(&acc)
                } else {
                    quote_double(&acc)
                };
                format!("sh -c {q}")
            })
        }),
        (
            inner,
            1..400usize,
            select(vec![
                ("$(", ")"),
                ("{ ", "; }"),
                ("(", ")"),
                ("`", "`"),
                ("$[", "]"),
                ("$((", "))")
            ])
        )
            .prop_map(|(s, depth, (open, close))| {
                format!("{}{s}{}", open.repeat(depth), close.repeat(depth))
            }),
        // Unbalanced openers only.
        (
            1..5000usize,
            select(vec!["$(", "{", "(", "\"", "'", "`", "<<EOF\n", "$["])
        )
            .prop_map(|(n, open)| open.repeat(n)),
    ]
}

/// Scripts of up to about a megabyte.
fn huge_script() -> impl Strategy<Value = String> {
    (
        select(vec![
            "echo 10.0.0.1 db >> /etc/hosts; ",
            "echo x | tee -a /etc/hosts | cat | cat | cat; ",
            "cat <<EOF >> /etc/hosts\n10.0.0.2 h\nEOF\n",
            "a=$(b $(c $(d))); ",
            "x",
        ]),
        1..40_000usize,
    )
        .prop_map(|(frag, n)| frag.repeat(n))
}

fn argv_for(script: String) -> impl Strategy<Value = (Vec<String>, bool)> {
    select(vec![0usize, 1, 2, 3, 4]).prop_map(move |form| {
        let s = script.clone();
        let v = |x: &[&str]| x.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        match form {
            0 => (v(&["sh", "-c", &s]), true),
            1 => (v(&["/bin/bash", "-lc", &s, "arg0", "arg1"]), true),
            2 => (v(&["-c", &s]), false),
            3 => (v(&["busybox", "sh", "-c", &s]), true),
            _ => (vec![s], true),
        }
    })
}

proptest! {
    #![proptest_config(config(256))]

    /// C1: any text, as any argv form, is analysed without panicking and quickly.
    #[test]
    fn shell_analysis_terminates_on_any_text(
        (argv, known) in prop_oneof![
            2 => "\\PC{0,300}".prop_flat_map(argv_for),
            3 => shell_soup().prop_flat_map(argv_for),
            3 => nested_script().prop_flat_map(argv_for),
        ],
    ) {
        let took = time_shell(&argv, known);
        prop_assert!(took < SHELL_BUDGET, "took {:?} on {:?}", took, argv);
    }

    /// C1: arbitrary argv vectors, including many short arguments.
    #[test]
    fn shell_analysis_terminates_on_any_argv(
        argv in prop::collection::vec(prop_oneof![
            select(SHELL_TOKENS.to_vec()).prop_map(String::from),
            "\\PC{0,20}",
        ], 0..64),
        known in any::<bool>(),
    ) {
        let took = time_shell(&argv, known);
        prop_assert!(took < SHELL_BUDGET, "took {:?} on {:?}", took, argv);
    }
}

/// A write to /etc/hosts nobody could miss, wrapped in up to three `sh -c` with either quoting.
fn wrapped_write() -> impl Strategy<Value = String> {
    (
        select(vec![
            "echo 10.0.0.1 db >> /etc/hosts",
            "echo '10.0.0.1 db' | tee -a /etc/hosts",
            "printf '10.0.0.1 db\\n' > /etc/hosts",
            "sed -i 's/a/b/' /etc/hosts",
            "cp /tmp/hosts /etc/hosts",
        ]),
        select(vec!["", "sleep 1; ", "cd /; ", "true && "]),
        0..4usize,
        any::<bool>(),
    )
        .prop_map(|(write, before, depth, single)| {
            (0..depth).fold(format!("{before}{write}"), |acc, _| {
                let q = if single {
                    quote_single(&acc)
                } else {
                    quote_double(&acc)
                };
                format!("sh -c {q}")
            })
        })
}

proptest! {
    #![proptest_config(config(256))]

    /// The analysis is not vacuous: a plain write is found in every argv form that runs a
    /// shell, at every wrapping depth up to three.
    #[test]
    fn shell_analysis_finds_a_plain_write_however_it_is_wrapped(
        (argv, known) in wrapped_write().prop_flat_map(argv_for).prop_filter(
            "argv[0] is the script itself, not a shell",
            |(argv, _)| argv.len() > 1,
        ),
    ) {
        let writes = find_hosts_writes(&argv, known);
        prop_assert!(!writes.is_empty(), "no write found in {:?}", argv);
    }
}

proptest! {
    // Each case is up to a megabyte of script; a few cases cover the size classes.
    #![proptest_config(config(12))]

    /// C1: huge scripts are analysed in bounded time.
    #[test]
    fn shell_analysis_terminates_on_huge_scripts((argv, known) in huge_script().prop_flat_map(argv_for)) {
        let took = time_shell(&argv, known);
        prop_assert!(took < SHELL_BUDGET, "took {:?} on {} bytes", took, argv.iter().map(String::len).sum::<usize>());
    }
}

/// Adversarial shapes of script, each a function of a repeat count: the work for twice the
/// input must be about twice the work (never quadratic).
fn adversarial(kind: usize, n: usize) -> String {
    match kind {
        // Many distinct hosts lines through many `tee -a`.
        0 => {
            let lines: String = (0..n)
                .map(|i| format!("10.0.{}.{} h{i}\\n", i / 250 % 250, i % 250))
                .collect();
            format!("printf '{lines}'{}", " | tee -a /etc/hosts".repeat(n))
        }
        // Deep nesting of groups and substitutions.
        1 => format!(
            "{}echo x >> /etc/hosts{}",
            "{ ( ".repeat(n),
            " ) }".repeat(n)
        ),
        // Generated script text piped into a shell.
        2 => "printf 'echo %s >> /etc/hosts\\n' a b c d e f | sh\n".repeat(n),
        // Variables that grow by doubling.
        3 => format!("X=ab{}echo \"$X\" >> /etc/hosts", "; X=$X$X".repeat(n)),
        // Brace expansion and globs.
        4 => "cp /a /etc/{hosts,x}{a,b}{c,d}{e,f}{g,h}{i,j}{k,l} /etc/host?\n".repeat(n),
        // Heredocs and arithmetic that looks like one.
        _ => "(( x = 1<<2 ))\ncat <<E >> /etc/hosts\n10.0.0.1 a\nE\n".repeat(n),
    }
}

proptest! {
    #![proptest_config(config(24))]

    /// Analysis cost grows linearly with input: doubling an adversarial script at most about
    /// doubles the work (counted in units, not time).
    #[test]
    fn shell_work_grows_linearly_with_input(kind in 0usize..6, n in 20usize..400) {
        let one = work_of(&adversarial(kind, n));
        let two = work_of(&adversarial(kind, 2 * n));
        let (len1, len2) = (adversarial(kind, n).len() as f64, adversarial(kind, 2 * n).len() as f64);
        // Work per byte may not grow by more than a fifth when the input doubles.
        let per_byte = |w: u64, len: f64| w as f64 / len;
        prop_assert!(
            per_byte(two, len2) <= per_byte(one, len1) * 1.2 + 1.0,
            "kind {kind}: {one} units for {len1} bytes, {two} units for {len2} bytes"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// The own fixture set, plus the extra corpus when present (`tests/fixture_set`).
fn fixtures() -> Vec<(String, Value)> {
    fixture_set::suite()
        .all()
        .into_iter()
        .map(|f| (f.name, f.review))
        .collect()
}

/// The recorded requests, under every generated policy set and both API versions: the
/// answers are accepted and patches are idempotent.
#[test]
fn fixtures_get_accepted_idempotent_answers_under_every_policy_set() {
    let fixtures = fixtures();
    assert!(
        fixtures.len() >= fixture_set::MIN_OWN,
        "found {} fixtures",
        fixtures.len()
    );
    let mut patched_count = 0;
    for (name, body) in &fixtures {
        for (choice, set) in SETS.iter() {
            for api_version in [V1, V1BETA1] {
                let mut body = body.clone();
                body["apiVersion"] = api_version.into();
                let _ = review_checked(set, &body, Webhook::Validate);
                let (_, patched) = review_checked(set, &body, Webhook::Mutate);
                if let Some(patched) = patched {
                    patched_count += 1;
                    let mut again = body.clone();
                    again["request"]["object"] = patched;
                    let (answer, repatched) = review_checked(set, &again, Webhook::Mutate);
                    assert!(
                        repatched.is_none(),
                        "{name} under {choice:?}: second round patched {:?}",
                        patch_ops(&answer)
                    );
                }
            }
        }
    }
    // The fixtures use untagged and :latest images, so some sets must patch some of them.
    assert!(patched_count > 0);
}

// ---------------------------------------------------------------------------------------------
// Regressions: shrunk failures of the properties above, kept by name
// ---------------------------------------------------------------------------------------------

/// `onConflict: Override` removed every other-IP entry left without hostnames, including
/// ones that never held the conflicting hostname (here the second 10.1.2.3 entry).
#[test]
fn override_keeps_host_aliases_entries_without_the_conflicting_hostname() {
    let set = SETS
        .iter()
        .find(|(c, _)| {
            !c.shipped && c.on_conflict == "Override" && c.action == "Enforce" && !c.selector
        })
        .map(|(_, s)| s)
        .unwrap();
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-0", "labels": {}},
        "spec": {
            "containers": [{"name": "app-0"}],
            "hostAliases": [
                {"ip": "10.1.2.3", "hostnames": ["v6.remote"], "zzFutureAlias": "entry-0"},
                {"ip": "10.1.2.3", "zzFutureAlias": "entry-1"},
            ],
        },
    });
    let who = Who {
        api_version: V1,
        uid: "0000a000-0aaa-aa00-aa00-a0aaa00a0a00".into(),
        namespace: Some("default"),
        username: "kubernetes-admin",
        dry_run: None,
    };
    let body = envelope(&who, 0, "CREATE", None, Some(pod), None);
    let (_, patched) = review_checked(set, &body, Webhook::Mutate);
    let aliases = alias_entries(&patched.unwrap()["spec"]);
    assert_eq!(
        aliases,
        [
            json!({"ip": "10.1.2.3", "hostnames": ["foo.remote", "baz.remote"], "zzFutureAlias": "entry-0"}),
            json!({"ip": "10.1.2.3", "zzFutureAlias": "entry-1"}),
            json!({"ip": "fd00::1", "hostnames": ["v6.remote", "db"]}),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// podgate check: every object accounted for, whatever else is in the stream
// ---------------------------------------------------------------------------------------------

/// The documents of the repository's manifest fixtures (`tests/fixtures/manifests`), each as
/// its own YAML text, skipping those that do not parse alone.
static MANIFEST_DOCS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifests");
    let mut docs = Vec::new();
    for sub in ["clean", "deprecated", "mixed"] {
        let mut paths: Vec<_> = std::fs::read_dir(root.join(sub))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path).unwrap();
            for chunk in text.split("\n---\n") {
                let (found, errors) =
                    podgate::manifests::parse_text_lenient(Path::new("x.yaml"), chunk);
                if errors.is_empty() && found.len() == 1 {
                    docs.push(format!("{}\n", chunk.trim_end()));
                }
            }
        }
    }
    assert!(docs.len() >= 12, "found {} documents", docs.len());
    docs
});

/// Documents that cannot be read, each on its own.
const BAD_DOCS: &[&str] = &[
    "a: 1\na: 2\n",
    "kind: [\n",
    "- just\n- a list of scalars\n",
    "{unclosed: \n",
    "key: 'unterminated\n",
];

proptest! {
    #![proptest_config(config(128))]

    /// However good and bad documents are mixed in one file, every good one is read (in
    /// order, with its document number), each bad one is one input error, and the check
    /// summary's object counts add up to the objects read.
    #[test]
    fn check_accounts_for_every_document_around_bad_ones(
        picks in proptest::collection::vec((any::<bool>(), any::<prop::sample::Index>()), 1..12)
    ) {
        let mut chunks = Vec::new();
        let mut good = Vec::new();
        for (i, (is_bad, index)) in picks.iter().enumerate() {
            if *is_bad {
                chunks.push(BAD_DOCS[index.index(BAD_DOCS.len())].to_string());
            } else {
                chunks.push(MANIFEST_DOCS[index.index(MANIFEST_DOCS.len())].clone());
                good.push(i + 1);
            }
        }
        let text = chunks.join("---\n");
        let (documents, errors) =
            podgate::manifests::parse_text_lenient(Path::new("mixed.yaml"), &text);
        let read: Vec<usize> = documents.iter().map(|d| d.index).collect();
        prop_assert_eq!(&read, &good);
        prop_assert_eq!(errors.len(), picks.len() - good.len());
        let input = podgate::manifests::Input { documents, errors, files: 1 };
        let set = &SETS[0].1;
        let run = podgate::check::check_input(set, &input, jiff::civil::date(2026, 12, 1));
        let s = &run.summary;
        prop_assert_eq!(s.objects_read, good.len());
        prop_assert_eq!(s.objects_read, s.checked + s.unreadable + s.without_pod_spec);
        prop_assert_eq!(run.errors.len(), picks.len() - good.len());
        prop_assert!(run.errors.iter().all(|e| e.line.is_some()));
        let code = run.exit_code();
        prop_assert_eq!(code == 1, s.denied > 0);
        prop_assert_eq!(code == 2, s.denied == 0 && (s.unreadable > 0 || s.input_errors > 0));
        // JSON output always parses, with an errors array.
        let json: Value = serde_json::from_str(&serde_json::to_string(&run).unwrap()).unwrap();
        prop_assert!(json["errors"].is_array());
    }
}
