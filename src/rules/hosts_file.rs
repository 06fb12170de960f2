//! `validate.hostsFile`: no container may edit the Pod's `/etc/hosts`.
//!
//! The kubelet writes `/etc/hosts` for every Pod (hostNetwork included) and rewrites it, so
//! edits are lost or fight the kubelet; a mount at exactly `/etc/hosts` replaces the kubelet's
//! file and with it `hostAliases`. `spec.hostAliases` is the durable way, and the message
//! shows the entry that does what the edit tried to do.
//! (kubelet: pkg/kubelet/kubelet_pods.go `makeMounts` / `ensureHostsFile`.)

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PodSpec, Volume};

use super::shell::{HostEntry, find_hosts_writes};
use super::{Rule, Violation};
use crate::pod::{ContainerView, containers, normalize_path};

const HOSTS: &str = "/etc/hosts";

/// Every way the spec's containers edit `/etc/hosts`. `spec_path` is where the pod spec lives
/// (`spec`, `spec.template.spec`, ...).
pub fn check(spec: &PodSpec, spec_path: &str) -> Vec<Violation> {
    let volumes: BTreeMap<&str, &Volume> = spec
        .volumes
        .iter()
        .flatten()
        .map(|v| (v.name.as_str(), v))
        .collect();
    let mut out = Vec::new();
    for c in containers(spec) {
        // Field paths are only spelled out for violations, which are rare.
        let base = || format!("{spec_path}.{}", c.path());
        mounts(&c, &base, &volumes, &mut out);
        commands(&c, &base, &mut out);
    }
    out
}

/// True when the container mounts something at exactly `/etc/hosts` (so the kubelet's file,
/// and `hostAliases`, never reach it).
pub fn mounts_over_hosts(c: &ContainerView<'_>) -> bool {
    c.volume_mounts
        .iter()
        .any(|m| normalize_path(&m.mount_path).as_deref() == Some(HOSTS))
}

fn mounts(
    c: &ContainerView<'_>,
    base: &dyn Fn() -> String,
    volumes: &BTreeMap<&str, &Volume>,
    out: &mut Vec<Violation>,
) {
    for (i, m) in c.volume_mounts.iter().enumerate() {
        let path = || format!("{}.volumeMounts[{i}]", base());
        if normalize_path(&m.mount_path).as_deref() == Some(HOSTS) {
            let path = path();
            out.push(Violation {
                rule: Rule::HostsFile,
                message: format!(
                    "container {:?} mounts volume {:?} at /etc/hosts ({path}.mountPath): this \
                     replaces the kubelet-managed file and drops spec.hostAliases; declare the \
                     entries in spec.hostAliases instead",
                    c.name, m.name
                ),
                paths: vec![path],
            });
            continue;
        }
        if m.read_only == Some(true) {
            continue;
        }
        let Some(host_path) = volumes
            .get(m.name.as_str())
            .and_then(|v| v.host_path.as_ref())
        else {
            continue;
        };
        // A subPath narrows what is exposed; subPathExpr is unknown until runtime, so the
        // whole hostPath counts.
        let exposed = match m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            Some(sub) => format!("{}/{sub}", host_path.path),
            None => host_path.path.clone(),
        };
        let Some(exposed) = normalize_path(&exposed) else {
            continue;
        };
        let covers_hosts =
            exposed == HOSTS || exposed == "/" || HOSTS.starts_with(&format!("{exposed}/"));
        if covers_hosts {
            let path = path();
            out.push(Violation {
                rule: Rule::HostsFile,
                message: format!(
                    "container {:?} mounts hostPath {:?} writable at {} ({path}): that exposes \
                     the node's /etc/hosts; set readOnly: true on the mount or mount a narrower path",
                    c.name, exposed, m.mount_path
                ),
                paths: vec![path],
            });
        }
    }
}

fn commands(c: &ContainerView<'_>, base: &dyn Fn() -> String, out: &mut Vec<Violation>) {
    // command followed by args; copied only when both are set.
    let main: std::borrow::Cow<'_, [String]> = match (c.command, c.args) {
        (Some(cmd), None) => cmd.into(),
        (None, Some(args)) => args.into(),
        (None, None) => (&[][..]).into(),
        (Some(cmd), Some(args)) => [cmd, args].concat().into(),
    };
    if !main.is_empty() {
        let writes = find_hosts_writes(&main, c.command.is_some());
        if !writes.is_empty() {
            // Name the field that holds the write: with `command: [sh, -c]` the script is in args.
            let in_command = c
                .command
                .is_some_and(|cmd| c.args.is_none() || !find_hosts_writes(cmd, true).is_empty());
            let field = if in_command { "command" } else { "args" };
            push_writes(c, &format!("{}.{field}", base()), writes, out);
        }
    }
    if let Some(lifecycle) = c.lifecycle {
        for (hook, handler) in [
            ("postStart", lifecycle.post_start.as_ref()),
            ("preStop", lifecycle.pre_stop.as_ref()),
        ] {
            if let Some(cmd) = handler
                .and_then(|h| h.exec.as_ref())
                .and_then(|e| e.command.as_ref())
            {
                let writes = find_hosts_writes(cmd, true);
                if !writes.is_empty() {
                    let path = format!("{}.lifecycle.{hook}.exec.command", base());
                    push_writes(c, &path, writes, out);
                }
            }
        }
    }
    for (name, probe) in c.probes {
        if let Some(cmd) = probe
            .and_then(|p| p.exec.as_ref())
            .and_then(|e| e.command.as_ref())
        {
            let writes = find_hosts_writes(cmd, true);
            if !writes.is_empty() {
                push_writes(c, &format!("{}.{name}.exec.command", base()), writes, out);
            }
        }
    }
}

fn push_writes(
    c: &ContainerView<'_>,
    path: &str,
    writes: Vec<super::shell::HostsWrite>,
    out: &mut Vec<Violation>,
) {
    for w in writes {
        let advice = match host_aliases_yaml(&w.entries) {
            Some(yaml) => format!("use spec.hostAliases instead: {yaml}"),
            None => "declare the entries in spec.hostAliases instead".to_string(),
        };
        out.push(Violation {
            rule: Rule::HostsFile,
            message: format!(
                "container {:?} writes /etc/hosts in {path} ({}): the kubelet manages that file \
                 and rewrites it; {advice}",
                c.name, w.how
            ),
            paths: vec![path.to_string()],
        });
    }
}

/// The `hostAliases` stanza, in single-line YAML flow style, that writes `entries` durably;
/// entries for the same IP are merged. `None` when nothing literal was written.
pub fn host_aliases_yaml(entries: &[HostEntry]) -> Option<String> {
    let mut merged: Vec<(&str, Vec<&str>)> = Vec::new();
    for e in entries {
        let names = match merged.iter_mut().find(|(ip, _)| *ip == e.ip) {
            Some((_, names)) => names,
            None => {
                merged.push((&e.ip, Vec::new()));
                let Some((_, names)) = merged.last_mut() else {
                    continue;
                };
                names
            }
        };
        for h in &e.hostnames {
            if !names.contains(&h.as_str()) {
                names.push(h);
            }
        }
    }
    if merged.is_empty() {
        return None;
    }
    let items: Vec<String> = merged
        .iter()
        .map(|(ip, names)| {
            let names: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
            format!("{{ip: {ip:?}, hostnames: [{}]}}", names.join(", "))
        })
        .collect();
    Some(format!("hostAliases: [{}]", items.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Container, EphemeralContainer, HostPathVolumeSource, VolumeMount,
    };

    fn mount(name: &str, path: &str) -> VolumeMount {
        VolumeMount {
            name: name.into(),
            mount_path: path.into(),
            ..Default::default()
        }
    }

    fn host_path_volume(name: &str, path: &str) -> Volume {
        Volume {
            name: name.into(),
            host_path: Some(HostPathVolumeSource {
                path: path.into(),
                type_: None,
            }),
            ..Default::default()
        }
    }

    fn pod(mounts: Vec<VolumeMount>, volumes: Vec<Volume>) -> PodSpec {
        PodSpec {
            containers: vec![Container {
                name: "app".into(),
                volume_mounts: Some(mounts),
                ..Default::default()
            }],
            volumes: Some(volumes),
            ..Default::default()
        }
    }

    #[test]
    fn mount_cases() {
        let ro = |mut m: VolumeMount| {
            m.read_only = Some(true);
            m
        };
        let sub = |mut m: VolumeMount, s: &str| {
            m.sub_path = Some(s.into());
            m
        };
        let cm = Volume {
            name: "cm".into(),
            ..Default::default()
        };
        let cases: Vec<(&str, PodSpec, usize)> = vec![
            (
                "configmap at /etc/hosts",
                pod(vec![mount("cm", "/etc/hosts")], vec![cm.clone()]),
                1,
            ),
            (
                "double slash",
                pod(vec![mount("cm", "//etc//hosts")], vec![cm.clone()]),
                1,
            ),
            (
                "dot and trailing slash",
                pod(vec![mount("cm", "/etc/./hosts/")], vec![cm.clone()]),
                1,
            ),
            (
                "with subPath",
                pod(
                    vec![sub(mount("cm", "/etc/hosts"), "hosts")],
                    vec![cm.clone()],
                ),
                1,
            ),
            (
                "readOnly mount at /etc/hosts still replaces it",
                pod(vec![ro(mount("cm", "/etc/hosts"))], vec![cm.clone()]),
                1,
            ),
            (
                "hostPath /etc/hosts writable",
                pod(
                    vec![mount("h", "/host-hosts")],
                    vec![host_path_volume("h", "/etc/hosts")],
                ),
                1,
            ),
            (
                "hostPath /etc writable",
                pod(
                    vec![mount("h", "/host/etc")],
                    vec![host_path_volume("h", "/etc")],
                ),
                1,
            ),
            (
                "hostPath / writable",
                pod(vec![mount("h", "/host")], vec![host_path_volume("h", "/")]),
                1,
            ),
            (
                "hostPath /etc/ trailing slash",
                pod(
                    vec![mount("h", "/host")],
                    vec![host_path_volume("h", "/etc/")],
                ),
                1,
            ),
            (
                "hostPath / with subPath etc",
                pod(
                    vec![sub(mount("h", "/host"), "etc")],
                    vec![host_path_volume("h", "/")],
                ),
                1,
            ),
            (
                "hostPath /etc readOnly",
                pod(
                    vec![ro(mount("h", "/host/etc"))],
                    vec![host_path_volume("h", "/etc")],
                ),
                0,
            ),
            (
                "hostPath / with subPath var/log",
                pod(
                    vec![sub(mount("h", "/logs"), "var/log")],
                    vec![host_path_volume("h", "/")],
                ),
                0,
            ),
            (
                "hostPath /etc/hostname",
                pod(
                    vec![mount("h", "/x")],
                    vec![host_path_volume("h", "/etc/hostname")],
                ),
                0,
            ),
            (
                "hostPath /etcd",
                pod(vec![mount("h", "/x")], vec![host_path_volume("h", "/etcd")]),
                0,
            ),
            (
                "mount at /etc/hosts.allow",
                pod(vec![mount("cm", "/etc/hosts.allow")], vec![cm.clone()]),
                0,
            ),
            (
                "mount at /tmp/etc/hosts",
                pod(vec![mount("cm", "/tmp/etc/hosts")], vec![cm.clone()]),
                0,
            ),
            (
                "mount at /etc",
                pod(vec![mount("cm", "/etc/hostname")], vec![cm]),
                0,
            ),
        ];
        for (name, spec, expected) in cases {
            let v = check(&spec, "spec");
            assert_eq!(v.len(), expected, "{name}: {v:?}");
            assert!(v.iter().all(|v| v.rule == Rule::HostsFile));
        }
    }

    #[test]
    fn message_names_container_and_path() {
        let spec = pod(
            vec![mount("cm", "/x"), mount("cm", "/etc/hosts")],
            vec![Volume {
                name: "cm".into(),
                ..Default::default()
            }],
        );
        let v = check(&spec, "spec.template.spec");
        assert_eq!(
            v[0].paths,
            ["spec.template.spec.containers[0].volumeMounts[1]"]
        );
        assert!(
            v[0].message.contains("container \"app\""),
            "{}",
            v[0].message
        );
        assert!(
            v[0].message
                .contains("spec.template.spec.containers[0].volumeMounts[1].mountPath")
        );
    }

    #[test]
    fn scans_init_and_ephemeral_containers() {
        let spec = PodSpec {
            init_containers: Some(vec![Container {
                name: "init".into(),
                volume_mounts: Some(vec![mount("cm", "/etc/hosts")]),
                ..Default::default()
            }]),
            ephemeral_containers: Some(vec![EphemeralContainer {
                name: "debug".into(),
                volume_mounts: Some(vec![mount("cm", "/etc/hosts")]),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let v = check(&spec, "spec");
        let paths: Vec<&str> = v.iter().map(|v| v.paths[0].as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.initContainers[0].volumeMounts[0]",
                "spec.ephemeralContainers[0].volumeMounts[0]"
            ]
        );
    }

    fn strings(items: &[&str]) -> Option<Vec<String>> {
        Some(items.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn command_cases_name_the_field_that_holds_the_write() {
        use k8s_openapi::api::core::v1::{ExecAction, Lifecycle, LifecycleHandler, Probe};
        let exec = |cmd: &[&str]| ExecAction {
            command: strings(cmd),
        };
        let hook = |cmd: &[&str]| LifecycleHandler {
            exec: Some(exec(cmd)),
            ..Default::default()
        };
        let probe = |cmd: &[&str]| Probe {
            exec: Some(exec(cmd)),
            ..Default::default()
        };
        let base = || Container {
            name: "app".into(),
            ..Default::default()
        };
        let script = "echo '10.1.2.3 db.internal' >> /etc/hosts && exec app";
        let cases: Vec<(&str, Container, Option<&str>)> = vec![
            (
                "script in command",
                Container {
                    command: strings(&["sh", "-c", script]),
                    ..base()
                },
                Some("spec.containers[0].command"),
            ),
            (
                "script in args after sh -c command",
                Container {
                    command: strings(&["sh", "-c"]),
                    args: strings(&[script]),
                    ..base()
                },
                Some("spec.containers[0].args"),
            ),
            (
                "args only, image entrypoint unknown",
                Container {
                    args: strings(&["-c", script]),
                    ..base()
                },
                Some("spec.containers[0].args"),
            ),
            (
                "exec form tee",
                Container {
                    command: strings(&["tee", "-a", "/etc/hosts"]),
                    ..base()
                },
                Some("spec.containers[0].command"),
            ),
            (
                "postStart hook",
                Container {
                    lifecycle: Some(Lifecycle {
                        post_start: Some(hook(&["sh", "-c", script])),
                        ..Default::default()
                    }),
                    ..base()
                },
                Some("spec.containers[0].lifecycle.postStart.exec.command"),
            ),
            (
                "preStop hook",
                Container {
                    lifecycle: Some(Lifecycle {
                        pre_stop: Some(hook(&["cp", "/tmp/h", "/etc/hosts"])),
                        ..Default::default()
                    }),
                    ..base()
                },
                Some("spec.containers[0].lifecycle.preStop.exec.command"),
            ),
            (
                "liveness probe",
                Container {
                    liveness_probe: Some(probe(&["sed", "-i", "s/a/b/", "/etc/hosts"])),
                    ..base()
                },
                Some("spec.containers[0].livenessProbe.exec.command"),
            ),
            (
                "startup probe",
                Container {
                    startup_probe: Some(probe(&["sh", "-c", "echo x > /etc/hosts"])),
                    ..base()
                },
                Some("spec.containers[0].startupProbe.exec.command"),
            ),
            (
                "reading is fine",
                Container {
                    command: strings(&["sh", "-c", "cat /etc/hosts; cp /etc/hosts /tmp/x"]),
                    ..base()
                },
                None,
            ),
            (
                "other files are fine",
                Container {
                    command: strings(&[
                        "sh",
                        "-c",
                        "echo x >> /etc/hosts.allow; echo y > /tmp/etc/hosts",
                    ]),
                    ..base()
                },
                None,
            ),
            (
                "mentioning is fine",
                Container {
                    command: strings(&["echo", "never edit /etc/hosts"]),
                    ..base()
                },
                None,
            ),
        ];
        for (name, container, expected) in cases {
            let spec = PodSpec {
                containers: vec![container],
                ..Default::default()
            };
            let v = check(&spec, "spec");
            match expected {
                None => assert!(v.is_empty(), "{name}: {v:?}"),
                Some(path) => {
                    assert_eq!(v.len(), 1, "{name}: {v:?}");
                    assert_eq!(v[0].paths, [path], "{name}");
                    assert!(
                        v[0].message.contains(&format!("in {path} (")),
                        "{name}: {}",
                        v[0].message
                    );
                }
            }
        }
    }

    #[test]
    fn literal_entries_become_a_host_aliases_suggestion() {
        let spec = PodSpec {
            containers: vec![Container {
                name: "app".into(),
                command: strings(&["sh", "-c", "printf '10.0.0.1 a b\\n' >> /etc/hosts"]),
                ..Default::default()
            }],
            ..Default::default()
        };
        let v = check(&spec, "spec");
        assert!(
            v[0].message
                .ends_with(r#"use spec.hostAliases instead: hostAliases: [{ip: "10.0.0.1", hostnames: ["a", "b"]}]"#),
            "{}",
            v[0].message
        );
    }

    #[test]
    fn host_aliases_yaml_merges_by_ip() {
        let e = |ip: &str, names: &[&str]| HostEntry {
            ip: ip.into(),
            hostnames: names.iter().map(|n| n.to_string()).collect(),
        };
        assert_eq!(host_aliases_yaml(&[]), None);
        assert_eq!(
            host_aliases_yaml(&[
                e("10.1.2.3", &["foo", "bar"]),
                e("10.0.0.1", &["a"]),
                e("10.1.2.3", &["foo", "baz"])
            ])
            .unwrap(),
            r#"hostAliases: [{ip: "10.1.2.3", hostnames: ["foo", "bar", "baz"]}, {ip: "10.0.0.1", hostnames: ["a"]}]"#
        );
    }
}
