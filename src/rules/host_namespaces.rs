//! `validate.hostNamespaces`: forbidden combinations of host namespaces, privileged
//! containers, host ports and added capabilities.
//!
//! Each atom is looked up in the spec with the field paths where it holds; a combination is
//! violated when every one of its atoms holds somewhere.
//!
//! Capability names are read as the container runtimes read them, not as the API stores
//! them (the API accepts any string):
//! - containerd (CRI `WithCapabilities`) treats an entry equal to `ALL` ignoring case as every
//!   capability, and turns any other entry into `"CAP_" + strings.ToUpper(name)`, so a name
//!   already carrying `CAP_` becomes `CAP_CAP_...`, which grants nothing;
//! - CRI-O (`SpecSetupCapabilities`) also takes `ALL` ignoring case; an entry starting with
//!   `cap_` in any case is kept as written, any other becomes `"CAP_" + strings.ToUpper(name)`,
//!   and the result must equal a known capability under `strings.EqualFold`.
//!
//! Go's `strings.ToUpper` maps `ı` (U+0131) to `I` and `ſ` (U+017F) to `S`, and `EqualFold`
//! also equates the Kelvin sign `K` (U+212A) with `K`: so `ſys_ptrace` is `CAP_SYS_PTRACE` at
//! run time. A name is therefore matched after [`go_to_upper`], Kelvin folding and removing one
//! `CAP_` prefix (the union of what the runtimes grant), and any name that is not a plain ASCII
//! capability name (`[A-Za-z0-9_]+`) is itself a violation while the rule is on, whichever
//! atoms the combinations name.

use k8s_openapi::api::core::v1::PodSpec;

use super::{Rule, Violation};
use crate::pod::containers;
use crate::policy::Atom;

/// Violations of `combinations` by `spec`, one per violated combination, plus one per added
/// capability whose name is not plain ASCII (when any combination is configured).
pub fn check(spec: &PodSpec, spec_path: &str, combinations: &[Vec<Atom>]) -> Vec<Violation> {
    let mut out = Vec::new();
    if !combinations.is_empty() {
        unusual_capability_names(spec, spec_path, &mut out);
    }
    for combo in combinations {
        // Atoms are looked up until one does not hold: then the combination is not violated.
        let mut evidence: Vec<(&Atom, Vec<String>)> = Vec::with_capacity(combo.len());
        for atom in combo {
            let paths = where_holds(spec, spec_path, atom);
            if paths.is_empty() {
                break;
            }
            evidence.push((atom, paths));
        }
        if evidence.is_empty() || evidence.len() < combo.len() {
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
                let index = caps.iter().position(|cap| match runtime_capability(cap) {
                    Granted::All => true,
                    Granted::Capability(name) => name == *wanted,
                })?;
                Some(format!(
                    "{spec_path}.{}.securityContext.capabilities.add[{index}]",
                    c.path()
                ))
            })
            .collect(),
    }
}

/// What a container runtime makes of one `capabilities.add` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Granted {
    /// `ALL`, in any case.
    All,
    /// The capability this name may grant: upper case, without `CAP_`. Names that grant
    /// nothing (non-ASCII leftovers, `CAP_CAP_...`) simply match no capability.
    Capability(String),
}

/// Reads an added capability the way containerd and CRI-O do (see the module header).
pub fn runtime_capability(name: &str) -> Granted {
    if name.eq_ignore_ascii_case("ALL") {
        return Granted::All;
    }
    // Kelvin sign: `EqualFold` in CRI-O's validation equates it with `K`.
    let upper: String = go_to_upper(name)
        .chars()
        .map(|c| if c == '\u{212A}' { 'K' } else { c })
        .collect();
    match upper.strip_prefix("CAP_") {
        Some(rest) => Granted::Capability(rest.to_string()),
        None => Granted::Capability(upper),
    }
}

/// True for a name made only of ASCII letters, digits and `_`, as every Linux capability is.
pub fn is_plain_capability_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Go's `strings.ToUpper`: each character mapped by Unicode's *simple* uppercase mapping.
///
/// Rust's `to_uppercase` applies the full mapping of SpecialCasing.txt, which differs where a
/// character upper-cases to several: `ß` -> `SS`, ligatures such as `ﬀ` -> `FF` and `ﬆ` -> `ST`,
/// `ŉ` -> `ʼN`, and Greek letters with iota subscript (`ᾳ` -> `ΑΙ`). Go keeps those characters
/// unchanged, except the iota-subscript ones, whose simple mapping is a single titlecase
/// letter (`ᾳ` -> `ᾼ`). Both map `ı` -> `I` and `ſ` -> `S`.
pub fn go_to_upper(text: &str) -> String {
    if text.is_ascii() {
        return text.to_ascii_uppercase();
    }
    text.chars().map(go_upper_char).collect()
}

fn go_upper_char(c: char) -> char {
    let mut full = c.to_uppercase();
    match (full.next(), full.next()) {
        (Some(single), None) => single,
        _ => {
            let code = u32::from(c);
            let simple = match code {
                0x1F80..=0x1F87 | 0x1F90..=0x1F97 | 0x1FA0..=0x1FA7 => code + 8,
                0x1FB3 | 0x1FC3 | 0x1FF3 => code + 9,
                _ => code,
            };
            char::from_u32(simple).unwrap_or(c)
        }
    }
}

/// One violation per added capability whose name is not plain ASCII: the runtime may read it
/// as a real capability that the policy's combinations would not see written that way.
fn unusual_capability_names(spec: &PodSpec, spec_path: &str, out: &mut Vec<Violation>) {
    for c in containers(spec) {
        for (i, name) in c.added_capabilities().iter().enumerate() {
            if is_plain_capability_name(name) {
                continue;
            }
            let path = format!(
                "{spec_path}.{}.securityContext.capabilities.add[{i}]",
                c.path()
            );
            let reading = match runtime_capability(name) {
                Granted::Capability(cap) if is_plain_capability_name(&cap) => {
                    format!("container runtimes read it as CAP_{cap}; write {cap:?}")
                }
                _ => "container runtimes do not read it as any capability; remove it".to_string(),
            };
            out.push(Violation {
                rule: Rule::HostNamespaces,
                message: format!(
                    "container {:?} adds capability {:?} ({path}), which is not a plain ASCII \
                     capability name: {reading}",
                    c.name, name
                ),
                paths: vec![path],
            });
        }
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
    fn go_to_upper_uses_simple_case_mapping() {
        let cases = [
            ("ascii", "sys_ptrace", "SYS_PTRACE"),
            ("long s", "\u{17F}ys_ptrace", "SYS_PTRACE"),
            ("dotless i", "\u{131}pc_lock", "IPC_LOCK"),
            ("sharp s stays", "cla\u{DF}", "CLA\u{DF}"),
            ("ff ligature stays", "\u{FB00}", "\u{FB00}"),
            (
                "st ligature stays",
                "net_broadca\u{FB06}",
                "NET_BROADCA\u{FB06}",
            ),
            ("n with apostrophe stays", "\u{149}", "\u{149}"),
            ("alpha with ypogegrammeni", "\u{1FB3}", "\u{1FBC}"),
            ("omega with psili and ypogegrammeni", "\u{1FA0}", "\u{1FA8}"),
            ("titlecase stays", "\u{1F88}", "\u{1F88}"),
            ("kelvin sign is upper already", "\u{212A}ill", "\u{212A}ILL"),
            ("cyrillic", "\u{436}", "\u{416}"),
        ];
        for (name, input, want) in cases {
            assert_eq!(go_to_upper(input), want, "{name}");
        }
    }

    #[test]
    fn capabilities_are_read_as_the_runtimes_read_them() {
        let cap = |s: &str| Granted::Capability(s.into());
        let cases = [
            ("plain", "SYS_ADMIN", cap("SYS_ADMIN")),
            ("lower case", "sys_admin", cap("SYS_ADMIN")),
            ("CAP_ prefix (CRI-O)", "CAP_SYS_ADMIN", cap("SYS_ADMIN")),
            ("lower cap_ prefix", "cap_sys_admin", cap("SYS_ADMIN")),
            ("one prefix only", "CAP_CAP_SYS_ADMIN", cap("CAP_SYS_ADMIN")),
            ("long s", "\u{17F}ys_admin", cap("SYS_ADMIN")),
            (
                "long s after prefix",
                "cap_\u{17F}ys_admin",
                cap("SYS_ADMIN"),
            ),
            ("dotless i", "\u{131}pc_lock", cap("IPC_LOCK")),
            ("kelvin sign", "\u{212A}ill", cap("KILL")),
            ("ALL", "ALL", Granted::All),
            ("all in any case", "aLl", Granted::All),
            ("CAP_ALL is no ALL", "CAP_ALL", cap("ALL")),
            ("space kept", " SYS_ADMIN", cap(" SYS_ADMIN")),
        ];
        for (name, input, want) in cases {
            assert_eq!(runtime_capability(input), want, "{name}");
        }
    }

    #[test]
    fn unusual_capability_names_are_reported() {
        let spec = |caps: &[&str]| PodSpec {
            host_pid: Some(true),
            containers: vec![container("a"), with_caps("b", caps)],
            ..Default::default()
        };
        let combo = atoms(&["hostPID", "capability:SYS_PTRACE"]);
        let unrelated = atoms(&["hostPID", "hostNetwork"]);
        // (name, caps, combination, messages expected in order)
        type Case<'a> = (&'a str, Vec<&'a str>, &'a Vec<Atom>, Vec<&'a str>);
        let cases: Vec<Case<'_>> = vec![
            (
                "long s spelling is the capability and is reported",
                vec!["\u{17F}ys_ptrace"],
                &combo,
                vec![
                    "adds capability \"\u{17F}ys_ptrace\" (spec.containers[1].securityContext.capabilities.add[0]), which is not a plain ASCII capability name: container runtimes read it as CAP_SYS_PTRACE; write \"SYS_PTRACE\"",
                    "forbidden combination: hostPID (spec.hostPID) with capability:SYS_PTRACE (spec.containers[1].securityContext.capabilities.add[0])",
                ],
            ),
            (
                "reported even when no combination names a capability",
                vec!["NET_ADMIN", "\u{131}pc_lock"],
                &unrelated,
                vec![
                    "capabilities.add[1]), which is not a plain ASCII capability name: container runtimes read it as CAP_IPC_LOCK",
                ],
            ),
            (
                "ligature reads as nothing",
                vec!["net_broadca\u{FB06}"],
                &unrelated,
                vec!["container runtimes do not read it as any capability; remove it"],
            ),
            (
                "whitespace is not plain",
                vec!["SYS_PTRACE "],
                &combo,
                vec!["\"SYS_PTRACE \""],
            ),
            (
                "plain names in any case are fine",
                vec!["sys_ptrace"],
                &combo,
                vec!["forbidden combination"],
            ),
            ("plain other capability", vec!["NET_RAW"], &combo, vec![]),
        ];
        for (name, caps, combo, want) in cases {
            let v = check(&spec(&caps), "spec", std::slice::from_ref(combo));
            assert_eq!(v.len(), want.len(), "{name}: {v:?}");
            for (v, text) in v.iter().zip(want) {
                assert_eq!(v.rule, Rule::HostNamespaces, "{name}");
                assert!(v.message.contains(text), "{name}: {}", v.message);
            }
        }
        // No combination configured: the rule is off, nothing is reported.
        assert!(check(&spec(&["\u{17F}ys_ptrace"]), "spec", &[]).is_empty());
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
