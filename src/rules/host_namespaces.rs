//! `validate.hostNamespaces`: forbidden combinations of host namespaces, privileged
//! containers, host ports and added capabilities.
//!
//! Each atom is looked up in the spec with the field paths where it holds; a combination is
//! violated when every one of its atoms holds somewhere.

use k8s_openapi::api::core::v1::PodSpec;

use super::{Rule, Violation};
use crate::pod::containers;
use crate::policy::{Atom, normalize_capability};

/// Violations of `combinations` by `spec`, one per violated combination.
pub fn check(spec: &PodSpec, spec_path: &str, combinations: &[Vec<Atom>]) -> Vec<Violation> {
    let mut out = Vec::new();
    for combo in combinations {
        let evidence: Vec<(&Atom, Vec<String>)> = combo
            .iter()
            .map(|atom| (atom, where_holds(spec, spec_path, atom)))
            .collect();
        if evidence.is_empty() || evidence.iter().any(|(_, paths)| paths.is_empty()) {
            continue;
        }
        let parts: Vec<String> = evidence
            .iter()
            .map(|(atom, paths)| format!("{atom} ({})", paths.join(", ")))
            .collect();
        let mut message = format!("forbidden combination: {}", parts.join(" with "));
        let has = |a: &Atom| combo.contains(a);
        if has(&Atom::HostPid) && has(&Atom::ShareProcessNamespace) {
            // Built-in validation rejects this pair too (ValidatePodSpec: "ShareProcessNamespace
            // and HostPID cannot both be enabled"); say so rather than look like the only reason.
            message.push_str(
                "; the Kubernetes API also rejects shareProcessNamespace together with hostPID",
            );
        }
        out.push(Violation {
            rule: Rule::HostNamespaces,
            message,
            paths: evidence.into_iter().flat_map(|(_, p)| p).collect(),
        });
    }
    out
}

/// The field paths where `atom` holds; empty when it does not.
fn where_holds(spec: &PodSpec, spec_path: &str, atom: &Atom) -> Vec<String> {
    let flag = |on: Option<bool>, field: &str| {
        if on == Some(true) {
            vec![format!("{spec_path}.{field}")]
        } else {
            Vec::new()
        }
    };
    match atom {
        Atom::HostNetwork => flag(spec.host_network, "hostNetwork"),
        Atom::HostPid => flag(spec.host_pid, "hostPID"),
        Atom::HostIpc => flag(spec.host_ipc, "hostIPC"),
        Atom::ShareProcessNamespace => flag(spec.share_process_namespace, "shareProcessNamespace"),
        Atom::Privileged => containers(spec)
            .filter(|c| c.privileged())
            .map(|c| format!("{spec_path}.{}.securityContext.privileged", c.path()))
            .collect(),
        Atom::HostPort => containers(spec)
            .flat_map(|c| {
                c.ports
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.host_port.is_some_and(|hp| hp != 0))
                    .map(move |(i, _)| format!("{spec_path}.{}.ports[{i}].hostPort", c.path()))
            })
            .collect(),
        Atom::Capability(wanted) => containers(spec)
            .filter_map(|c| {
                let caps = c.added_capabilities();
                let index = caps.iter().position(|cap| {
                    let cap = normalize_capability(cap);
                    cap == *wanted || cap == "ALL"
                })?;
                Some(format!(
                    "{spec_path}.{}.securityContext.capabilities.add[{index}]",
                    c.path()
                ))
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Capabilities, Container, ContainerPort, EphemeralContainer, SecurityContext,
    };

    fn container(name: &str) -> Container {
        Container {
            name: name.into(),
            ..Default::default()
        }
    }

    fn privileged(name: &str) -> Container {
        Container {
            security_context: Some(SecurityContext {
                privileged: Some(true),
                ..Default::default()
            }),
            ..container(name)
        }
    }

    fn with_caps(name: &str, caps: &[&str]) -> Container {
        Container {
            security_context: Some(SecurityContext {
                capabilities: Some(Capabilities {
                    add: Some(caps.iter().map(|c| c.to_string()).collect()),
                    drop: None,
                }),
                ..Default::default()
            }),
            ..container(name)
        }
    }

    fn atoms(names: &[&str]) -> Vec<Atom> {
        names.iter().map(|n| Atom::parse(n).unwrap()).collect()
    }

    #[test]
    fn combination_cases() {
        let host_pid = |containers: Vec<Container>| PodSpec {
            host_pid: Some(true),
            containers,
            ..Default::default()
        };
        let cases: Vec<(&str, PodSpec, Vec<Atom>, Option<&str>)> = vec![
            (
                "hostPID with hostNetwork",
                PodSpec {
                    host_network: Some(true),
                    ..host_pid(vec![container("a")])
                },
                atoms(&["hostPID", "hostNetwork"]),
                Some(
                    "forbidden combination: hostPID (spec.hostPID) with hostNetwork (spec.hostNetwork)",
                ),
            ),
            (
                "hostPID alone",
                host_pid(vec![container("a")]),
                atoms(&["hostPID", "hostNetwork"]),
                None,
            ),
            (
                "hostNetwork false is absent",
                PodSpec {
                    host_network: Some(false),
                    ..host_pid(vec![container("a")])
                },
                atoms(&["hostPID", "hostNetwork"]),
                None,
            ),
            (
                "hostPID with privileged sidecar",
                host_pid(vec![container("a"), privileged("b")]),
                atoms(&["hostPID", "privileged"]),
                Some("privileged (spec.containers[1].securityContext.privileged)"),
            ),
            (
                "capability by name",
                host_pid(vec![with_caps("a", &["NET_ADMIN", "SYS_PTRACE"])]),
                atoms(&["hostPID", "capability:SYS_PTRACE"]),
                Some(
                    "capability:SYS_PTRACE (spec.containers[0].securityContext.capabilities.add[1])",
                ),
            ),
            (
                "capability with CAP_ prefix and lower case",
                host_pid(vec![with_caps("a", &["cap_sys_ptrace"])]),
                atoms(&["hostPID", "capability:SYS_PTRACE"]),
                Some("capabilities.add[0]"),
            ),
            (
                "ALL covers every capability",
                host_pid(vec![with_caps("a", &["ALL"])]),
                atoms(&["hostPID", "capability:SYS_PTRACE"]),
                Some("capability:SYS_PTRACE"),
            ),
            (
                "other capability",
                host_pid(vec![with_caps("a", &["NET_ADMIN"])]),
                atoms(&["hostPID", "capability:SYS_PTRACE"]),
                None,
            ),
            (
                "hostPort zero is no host port",
                PodSpec {
                    host_ipc: Some(true),
                    containers: vec![Container {
                        ports: Some(vec![ContainerPort {
                            container_port: 80,
                            host_port: Some(0),
                            ..Default::default()
                        }]),
                        ..container("a")
                    }],
                    ..Default::default()
                },
                atoms(&["hostIPC", "hostPort"]),
                None,
            ),
            (
                "hostPort",
                PodSpec {
                    host_ipc: Some(true),
                    containers: vec![Container {
                        ports: Some(vec![ContainerPort {
                            container_port: 80,
                            host_port: Some(8080),
                            ..Default::default()
                        }]),
                        ..container("a")
                    }],
                    ..Default::default()
                },
                atoms(&["hostIPC", "hostPort"]),
                Some("hostPort (spec.containers[0].ports[0].hostPort)"),
            ),
            (
                "shareProcessNamespace with hostPID says the API rejects it",
                PodSpec {
                    share_process_namespace: Some(true),
                    ..host_pid(vec![container("a")])
                },
                atoms(&["hostPID", "shareProcessNamespace"]),
                Some("the Kubernetes API also rejects"),
            ),
        ];
        for (name, spec, combo, expected) in cases {
            let v = check(&spec, "spec", &[combo]);
            match expected {
                None => assert!(v.is_empty(), "{name}: {v:?}"),
                Some(text) => {
                    assert_eq!(v.len(), 1, "{name}");
                    assert!(v[0].message.contains(text), "{name}: {}", v[0].message);
                }
            }
        }
    }

    #[test]
    fn privileged_ephemeral_and_init_containers_count() {
        let spec = PodSpec {
            host_pid: Some(true),
            init_containers: Some(vec![privileged("init")]),
            ephemeral_containers: Some(vec![EphemeralContainer {
                name: "debug".into(),
                security_context: Some(SecurityContext {
                    privileged: Some(true),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let v = check(&spec, "spec", &[atoms(&["hostPID", "privileged"])]);
        assert_eq!(
            v[0].paths,
            [
                "spec.hostPID",
                "spec.initContainers[0].securityContext.privileged",
                "spec.ephemeralContainers[0].securityContext.privileged"
            ]
        );
    }

    #[test]
    fn reports_each_violated_combination() {
        let spec = PodSpec {
            host_pid: Some(true),
            host_network: Some(true),
            host_ipc: Some(true),
            ..Default::default()
        };
        let combos = [
            atoms(&["hostPID", "hostNetwork"]),
            atoms(&["hostPID", "hostIPC"]),
            atoms(&["hostPID", "privileged"]),
        ];
        assert_eq!(check(&spec, "spec", &combos).len(), 2);
    }
}
