//! Benchmark inputs, generated in code so the criterion benches and `benches/load.sh` (through
//! `examples/bench_input.rs`) use the very same bytes.
//!
//! The reviews look like what kube-apiserver sends for a Pod that a ReplicaSet creates: compact
//! JSON, `kind` first, the object defaulted (`terminationMessagePath`, `dnsPolicy`,
//! `schedulerName`, `securityContext: {}`, probe defaults, the not-ready/unreachable
//! tolerations), the ServiceAccount admission plugin's `kube-api-access-*` projected volume and
//! mounts, `managedFields` from `kube-controller-manager`, `ownerReferences`, `generateName`,
//! the replicaset-controller's userInfo and `CreateOptions`.

#![allow(dead_code)] // each user takes what it needs

use serde_json::{Value, json};

/// What the object looks like at the webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// As a mutating webhook sees it: no name, no uid, `creationTimestamp: null`, `status: {}`;
    /// the sidecar pulls `busybox:latest` with `IfNotPresent`, which the shipped
    /// `always-pull-mutable-tags` policy patches to `Always` (one patch operation).
    Mutate,
    /// As a validating webhook sees it after mutation: named, with uid, `status.phase`,
    /// `qosClass`, and the sidecar already on `Always` (allowed, no finding).
    Validate,
}

const APP_SCRIPT: &str = r#"set -eu
: "${CONFIG:=/etc/app/config.yaml}"
if [ -f /etc/app/extra.env ]; then
  . /etc/app/extra.env
fi
mkdir -p /var/cache/app /tmp/app
for f in /etc/app/conf.d/*.yaml; do
  [ -e "$f" ] || continue
  echo "including $f"
  cat "$f" >> /tmp/app/merged.yaml
done
until nc -z "$DB_HOST" "$DB_PORT"; do echo waiting for db; sleep 1; done
exec /app/server --config "$CONFIG" --listen ":${PORT:-8080}" --log-format json"#;

fn env(i: usize) -> Value {
    json!([
        {"name": "PORT", "value": "8080"},
        {"name": "DB_HOST", "value": format!("postgres-{i}.data.svc.cluster.local")},
        {"name": "DB_PORT", "value": "5432"},
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db-credentials", "key": "password"}}},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}}
    ])
}

fn probe(path: &str, initial: u32) -> Value {
    json!({
        "httpGet": {"path": path, "port": 8080, "scheme": "HTTP"},
        "initialDelaySeconds": initial, "timeoutSeconds": 1, "periodSeconds": 10,
        "successThreshold": 1, "failureThreshold": 3
    })
}

fn app_container(name: &str, i: usize, script: &str) -> Value {
    json!({
        "name": name,
        "image": "registry.example.com/shop/checkout:v2.14.3",
        "command": ["sh", "-c"],
        "args": [script],
        "ports": [
            {"name": "http", "containerPort": 8080, "protocol": "TCP"},
            {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}
        ],
        "envFrom": [{"configMapRef": {"name": "checkout-env"}}],
        "env": env(i),
        "resources": {
            "limits": {"cpu": "1", "memory": "512Mi"},
            "requests": {"cpu": "250m", "memory": "256Mi"}
        },
        "volumeMounts": [
            {"name": "config", "readOnly": true, "mountPath": "/etc/app"},
            {"name": "cache", "mountPath": "/var/cache/app"},
            {"name": "kube-api-access-7x2kq", "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
        ],
        "livenessProbe": probe("/healthz", 10),
        "readinessProbe": probe("/readyz", 5),
        "startupProbe": {
            "exec": {"command": ["sh", "-c", "test -f /tmp/app/started && wget -q -O- http://127.0.0.1:8080/readyz"]},
            "timeoutSeconds": 1, "periodSeconds": 2, "successThreshold": 1, "failureThreshold": 30
        },
        "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "sleep 5; kill -TERM 1"]}}},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
        "securityContext": {
            "capabilities": {"drop": ["ALL"]},
            "runAsUser": 10001, "runAsNonRoot": true, "readOnlyRootFilesystem": true,
            "allowPrivilegeEscalation": false
        }
    })
}

fn sidecar(stage: Stage) -> Value {
    let pull = match stage {
        Stage::Mutate => "IfNotPresent",
        Stage::Validate => "Always",
    };
    json!({
        "name": "log-shipper",
        "image": "busybox:latest",
        "command": ["tail", "-F", "/var/cache/app/app.log"],
        "resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "10m", "memory": "32Mi"}},
        "volumeMounts": [
            {"name": "cache", "readOnly": true, "mountPath": "/var/cache/app"},
            {"name": "kube-api-access-7x2kq", "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
        ],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": pull,
        "securityContext": {"runAsUser": 10001, "runAsNonRoot": true, "allowPrivilegeEscalation": false}
    })
}

fn managed_fields() -> Value {
    json!([{
        "manager": "kube-controller-manager",
        "operation": "Update",
        "apiVersion": "v1",
        "time": "2026-11-27T20:41:07Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:metadata": {
                "f:generateName": {},
                "f:labels": {".": {}, "f:app.kubernetes.io/name": {}, "f:app.kubernetes.io/part-of": {}, "f:pod-template-hash": {}},
                "f:annotations": {".": {}, "f:kubectl.kubernetes.io/restartedAt": {}, "f:prometheus.io/scrape": {}},
                "f:ownerReferences": {".": {}, "k:{\"uid\":\"2f1c2a8e-51f4-4c5e-9d55-7a0e6d1b9c31\"}": {}}
            },
            "f:spec": {
                "f:containers": {
                    "k:{\"name\":\"checkout\"}": {
                        ".": {}, "f:args": {}, "f:command": {}, "f:env": {".": {}, "k:{\"name\":\"DB_HOST\"}": {".": {}, "f:name": {}, "f:value": {}}, "k:{\"name\":\"DB_PORT\"}": {".": {}, "f:name": {}, "f:value": {}}, "k:{\"name\":\"PORT\"}": {".": {}, "f:name": {}, "f:value": {}}},
                        "f:envFrom": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:lifecycle": {".": {}, "f:preStop": {".": {}, "f:exec": {".": {}, "f:command": {}}}},
                        "f:name": {}, "f:ports": {".": {}, "k:{\"containerPort\":8080,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}, "f:name": {}, "f:protocol": {}}},
                        "f:resources": {".": {}, "f:limits": {".": {}, "f:cpu": {}, "f:memory": {}}, "f:requests": {".": {}, "f:cpu": {}, "f:memory": {}}},
                        "f:securityContext": {".": {}, "f:allowPrivilegeEscalation": {}, "f:capabilities": {".": {}, "f:drop": {}}, "f:readOnlyRootFilesystem": {}, "f:runAsNonRoot": {}, "f:runAsUser": {}},
                        "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {},
                        "f:volumeMounts": {".": {}, "k:{\"mountPath\":\"/etc/app\"}": {".": {}, "f:mountPath": {}, "f:name": {}, "f:readOnly": {}}, "k:{\"mountPath\":\"/var/cache/app\"}": {".": {}, "f:mountPath": {}, "f:name": {}}}
                    },
                    "k:{\"name\":\"log-shipper\"}": {".": {}, "f:command": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {}, "f:resources": {}, "f:volumeMounts": {}}
                },
                "f:dnsPolicy": {}, "f:enableServiceLinks": {}, "f:restartPolicy": {}, "f:schedulerName": {},
                "f:securityContext": {".": {}, "f:fsGroup": {}}, "f:serviceAccount": {}, "f:serviceAccountName": {},
                "f:terminationGracePeriodSeconds": {},
                "f:volumes": {".": {}, "k:{\"name\":\"cache\"}": {".": {}, "f:emptyDir": {".": {}, "f:sizeLimit": {}}, "f:name": {}}, "k:{\"name\":\"config\"}": {".": {}, "f:configMap": {".": {}, "f:defaultMode": {}, "f:name": {}}, "f:name": {}}}
            }
        }
    }])
}

fn pod(stage: Stage, containers: Vec<Value>) -> Value {
    let mut metadata = json!({
        "generateName": "checkout-7c9f8d6b5-",
        "namespace": "shop",
        "creationTimestamp": null,
        "labels": {
            "app.kubernetes.io/name": "checkout",
            "app.kubernetes.io/part-of": "shop",
            "pod-template-hash": "7c9f8d6b5"
        },
        "annotations": {
            "kubectl.kubernetes.io/restartedAt": "2026-11-27T20:40:51Z",
            "prometheus.io/scrape": "true"
        },
        "ownerReferences": [{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "checkout-7c9f8d6b5",
            "uid": "2f1c2a8e-51f4-4c5e-9d55-7a0e6d1b9c31", "controller": true, "blockOwnerDeletion": true
        }],
        "managedFields": managed_fields()
    });
    let mut status = json!({});
    if stage == Stage::Validate {
        metadata["name"] = json!("checkout-7c9f8d6b5-x8k2p");
        metadata["uid"] = json!("8d1e0f5c-3b7a-4f2e-a4c9-6e5d2b1a0f93");
        metadata["creationTimestamp"] = json!("2026-11-27T20:41:07Z");
        status = json!({"phase": "Pending", "qosClass": "Burstable"});
    }
    json!({
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": metadata,
        "spec": {
            "volumes": [
                {"name": "config", "configMap": {"name": "checkout-config", "defaultMode": 420}},
                {"name": "cache", "emptyDir": {"sizeLimit": "256Mi"}},
                {"name": "kube-api-access-7x2kq", "projected": {"sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
                ], "defaultMode": 420}}
            ],
            "containers": containers,
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "checkout",
            "serviceAccount": "checkout",
            "securityContext": {"fsGroup": 10001},
            "schedulerName": "default-scheduler",
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            ],
            "priority": 0,
            "enableServiceLinks": true,
            "preemptionPolicy": "PreemptLowerPriority"
        },
        "status": status
    })
}

fn review(stage: Stage, object: Value) -> String {
    let request = json!({
        "uid": "a3f1c0de-7b2e-4c6a-9f0d-5e8b7c6d4a21",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
        "requestResource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": "shop",
        "operation": "CREATE",
        "userInfo": {
            "username": "system:serviceaccount:kube-system:replicaset-controller",
            "uid": "5b0e7c2d-9a41-4f3b-8e6d-1c2a3b4d5e6f",
            "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"]
        },
        "object": object,
        "oldObject": null,
        "dryRun": false,
        "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kube-controller-manager"}
    });
    let mut request = request;
    if stage == Stage::Validate {
        request["name"] = json!("checkout-7c9f8d6b5-x8k2p");
    }
    // serde_json keeps insertion order only with preserve_order; write kind and apiVersion
    // first by hand, as the apiserver does.
    format!(
        r#"{{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{request}}}"#
    )
}

/// The typical Pod review (about 6 KB): an app container running a `sh -c` script with env,
/// probes, lifecycle hook and mounts, a log-shipper sidecar, three volumes.
pub fn typical_review(stage: Stage) -> String {
    let containers = vec![app_container("checkout", 0, APP_SCRIPT), sidecar(stage)];
    review(stage, pod(stage, containers))
}

/// A review of about `bytes` bytes (at least): one Pod with as many app containers as needed,
/// each with a ~3 KB script.
pub fn large_review(stage: Stage, bytes: usize) -> String {
    let script = long_script(3 * 1024);
    let mut containers = vec![sidecar(stage)];
    let per = app_container("c", 0, &script).to_string().len();
    let n = bytes.div_ceil(per);
    containers.extend((0..n).map(|i| app_container(&format!("worker-{i}"), i, &script)));
    review(stage, pod(stage, containers))
}

/// A realistic entrypoint script of at least `bytes` bytes that does not write /etc/hosts.
pub fn long_script(bytes: usize) -> String {
    let mut s = String::from("#!/bin/sh\nset -eu\n");
    let mut i = 0;
    while s.len() < bytes {
        s.push_str(&format!(
            r#"# step {i}
if [ -n "${{STEP_{i}_URL:-}}" ]; then
  curl -fsSL --retry 3 "$STEP_{i}_URL" -o /tmp/step{i}.tar.gz && tar -xzf /tmp/step{i}.tar.gz -C /opt/step{i}
fi
case "${{MODE:-prod}}" in
  dev) echo "step {i} dev" | tee -a /var/log/init.log ;;
  *) printf '%s\n' "step {i} $(date -u +%FT%TZ)" >> /var/log/init.log ;;
esac
for f in /etc/app/step{i}/*.conf; do [ -e "$f" ] && sed -e "s/@HOST@/$HOSTNAME/g" "$f" > "/tmp/$(basename "$f")"; done
"#
        ));
        i += 1;
    }
    s
}

/// `n` distinct policies cycling through the four shipped kinds, with selectors and exemptions.
pub fn policy_sources(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            let body = match i % 4 {
                0 => format!(
                    r#"apiVersion: podgate.dev/v1alpha1
kind: PodPolicy
metadata:
  name: deny-hosts-file-edits-{i}
spec:
  action: Enforce
  description: Containers must not write /etc/hosts; use spec.hostAliases.
  match:
    excludeNamespaces: ["kube-system", "team-{i}-*"]
  exemptions:
    - serviceAccounts: ["monitoring:node-agent-{i}"]
      reason: node agent manages the node's hosts file
      expires: "2030-01-01"
  validate:
    hostsFile: {{}}
"#
                ),
                1 => format!(
                    r#"apiVersion: podgate.dev/v1alpha1
kind: PodPolicy
metadata:
  name: deny-unsafe-host-namespaces-{i}
spec:
  action: Enforce
  match:
    namespaces: ["prod-*", "team-{i}"]
    podSelector:
      matchExpressions:
        - {{key: tier, operator: In, values: [web, api]}}
  validate:
    hostNamespaces:
      forbiddenCombinations:
        - [hostPID, hostNetwork]
        - [hostPID, hostIPC]
        - [hostPID, privileged]
"#
                ),
                2 => format!(
                    r#"apiVersion: podgate.dev/v1alpha1
kind: PodPolicy
metadata:
  name: always-pull-mutable-tags-{i}
spec:
  action: Warn
  mutate:
    templates: false
    imagePullPolicy:
      mutableTags: [latest, main, dev]
      set: Always
      replace: [IfNotPresent]
"#
                ),
                _ => format!(
                    r#"apiVersion: podgate.dev/v1alpha1
kind: PodPolicy
metadata:
  name: inject-host-aliases-{i}
spec:
  action: Audit
  match:
    podSelector:
      matchLabels:
        podgate.dev/inject-host-aliases: "true"
  mutate:
    hostAliases:
      entries:
        - ip: 10.1.{}.{}
          hostnames: [foo-{i}.remote, bar-{i}.remote]
      onConflict: KeepPod
"#,
                    i / 250,
                    i % 250
                ),
            };
            (format!("policy-{i:03}.yaml"), body)
        })
        .collect()
}
