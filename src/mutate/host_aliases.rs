//! `mutate.hostAliases`: merge the policy's entries into `spec.hostAliases` by IP.
//!
//! No list: add it. Same IP: add the missing hostnames. New IP: append an entry. A hostname
//! the Pod already maps to another IP follows `onConflict`. Running on its own output yields
//! no operation, so reinvocation (`reinvocationPolicy: IfNeeded`) is harmless.

use std::collections::BTreeMap;
use std::net::IpAddr;

use json_patch::{AddOperation, PatchOperation, RemoveOperation};
use k8s_openapi::api::core::v1::HostAlias as PodHostAlias;
use serde_json::{Value, json};

use super::{Mutation, Working};
use crate::pod::containers;
use crate::policy::{HostAliasesMutation, OnConflict};
use crate::rules::hosts_file::mounts_over_hosts;
use crate::rules::{Rule, Violation};
use crate::workload::SpecLocation;

/// Hostnames already mapped by earlier policies in one evaluation, with their IPs.
pub(crate) type Claims = BTreeMap<String, IpAddr>;

/// Merges `params.entries` into the working copy and emits the matching operations.
///
/// `claimed` carries the hostnames that earlier policies of the same evaluation map: the
/// first policy to map a hostname wins and later ones leave it alone, so two policies that
/// disagree (say, staging and production addresses for one name) never undo each other's
/// patch on reinvocation, nor deny what the other added.
pub(crate) fn apply(
    spec: &mut Working<'_>,
    at: SpecLocation,
    params: &HostAliasesMutation,
    claimed: &mut Claims,
) -> Mutation {
    let mut out = Mutation::default();
    for entry in &params.entries {
        let mut missing: Vec<&str> = Vec::new();
        for host in &entry.hostnames {
            match claimed.get(host.as_str()) {
                Some(ip) if *ip != entry.ip => continue,
                Some(_) => {}
                None => {
                    claimed.insert(host.clone(), entry.ip);
                }
            }
            let aliases = spec.host_aliases().unwrap_or(&[]);
            if aliases
                .iter()
                .any(|a| same_ip(&a.ip, entry.ip) && has_host(a, host))
            {
                continue;
            }
            let elsewhere = aliases
                .iter()
                .find(|a| !same_ip(&a.ip, entry.ip) && has_host(a, host))
                .map(|a| a.ip.clone());
            if let Some(other_ip) = elsewhere {
                match params.on_conflict {
                    OnConflict::KeepPod => {
                        out.notes.push(format!(
                            "hostAliases: the Pod maps {host:?} to {other_ip}; kept (the policy maps it to {})",
                            entry.ip
                        ));
                        continue;
                    }
                    OnConflict::Deny => {
                        out.violations.push(Violation {
                            rule: Rule::HostAliases,
                            message: format!(
                                "{}.hostAliases maps {host:?} to {other_ip}, but policy requires {}",
                                at.path, entry.ip
                            ),
                            paths: vec![format!("{}.hostAliases", at.path)],
                        });
                        continue;
                    }
                    OnConflict::Override => {
                        remove_elsewhere(spec.host_aliases_mut(), at, entry.ip, host, &mut out)
                    }
                }
            }
            missing.push(host);
        }
        if !missing.is_empty() {
            add_hosts(spec.host_aliases_mut(), at, entry.ip, &missing, &mut out);
        }
    }
    if !out.ops.is_empty() {
        // The mutations edit no container's mounts: the received spec says.
        for c in containers(spec.received()).filter(mounts_over_hosts) {
            out.notes.push(format!(
                "container {:?} mounts a file at /etc/hosts, so spec.hostAliases will not reach it",
                c.name
            ));
        }
    }
    out
}

fn same_ip(pod_ip: &str, ip: IpAddr) -> bool {
    pod_ip.parse::<IpAddr>().is_ok_and(|p| p == ip)
}

fn has_host(alias: &PodHostAlias, host: &str) -> bool {
    alias.hostnames.iter().flatten().any(|h| h == host)
}

/// With `onConflict: Override`, takes `host` away from every other IP; an entry left with no
/// hostname is removed whole, since an IP without names only adds noise to the file.
fn remove_elsewhere(
    host_aliases: &mut Option<Vec<PodHostAlias>>,
    at: SpecLocation,
    ip: IpAddr,
    host: &str,
    out: &mut Mutation,
) {
    let Some(aliases) = host_aliases.as_mut() else {
        return;
    };
    let mut j = 0;
    while j < aliases.len() {
        let Some(alias) = aliases.get_mut(j) else {
            break;
        };
        if same_ip(&alias.ip, ip) {
            j += 1;
            continue;
        }
        // Only entries that map `host` are touched: an entry without hostnames (or with
        // other ones) is not ours to remove.
        let Some(names) = alias
            .hostnames
            .as_mut()
            .filter(|n| n.iter().any(|h| h == host))
        else {
            j += 1;
            continue;
        };
        while let Some(k) = names.iter().rposition(|h| h == host) {
            names.remove(k);
            out.ops.push(PatchOperation::Remove(RemoveOperation {
                path: at.pointer_to(&["hostAliases", &j.to_string(), "hostnames", &k.to_string()]),
            }));
        }
        out.changes.push(format!(
            "removed {host:?} from the {} entry of {}.hostAliases (onConflict: Override)",
            alias.ip, at.path
        ));
        if names.is_empty() {
            aliases.remove(j);
            out.ops.push(PatchOperation::Remove(RemoveOperation {
                path: at.pointer_to(&["hostAliases", &j.to_string()]),
            }));
            continue;
        }
        j += 1;
    }
}

fn add_hosts(
    host_aliases: &mut Option<Vec<PodHostAlias>>,
    at: SpecLocation,
    ip: IpAddr,
    hosts: &[&str],
    out: &mut Mutation,
) {
    let names: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
    let path_text = format!("{}.hostAliases", at.path);
    out.changes.push(format!(
        "added {} for {ip} to {path_text}",
        names.join(", ")
    ));
    let Some(aliases) = host_aliases.as_mut() else {
        out.ops.push(PatchOperation::Add(AddOperation {
            path: at.pointer_to(&["hostAliases"]),
            value: json!([{ "ip": ip.to_string(), "hostnames": names }]),
        }));
        *host_aliases = Some(vec![PodHostAlias {
            ip: ip.to_string(),
            hostnames: Some(names),
        }]);
        return;
    };
    match aliases.iter().position(|a| same_ip(&a.ip, ip)) {
        Some(j) => {
            let j_token = j.to_string();
            let alias = aliases.get_mut(j);
            let Some(alias) = alias else { return };
            match alias.hostnames.as_mut() {
                Some(existing) => {
                    for name in names {
                        out.ops.push(PatchOperation::Add(AddOperation {
                            path: at.pointer_to(&["hostAliases", &j_token, "hostnames", "-"]),
                            value: Value::String(name.clone()),
                        }));
                        existing.push(name);
                    }
                }
                None => {
                    out.ops.push(PatchOperation::Add(AddOperation {
                        path: at.pointer_to(&["hostAliases", &j_token, "hostnames"]),
                        value: json!(names),
                    }));
                    alias.hostnames = Some(names);
                }
            }
        }
        None => {
            out.ops.push(PatchOperation::Add(AddOperation {
                path: at.pointer_to(&["hostAliases", "-"]),
                value: json!({ "ip": ip.to_string(), "hostnames": names }),
            }));
            aliases.push(PodHostAlias {
                ip: ip.to_string(),
                hostnames: Some(names),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::HostAlias;
    use k8s_openapi::api::core::v1::{Container, PodSpec, VolumeMount};

    /// `apply` on an owned spec, edited in place.
    fn apply(
        spec: &mut PodSpec,
        at: SpecLocation,
        params: &HostAliasesMutation,
        claimed: &mut Claims,
    ) -> Mutation {
        let mut working = Working::new(spec);
        let m = super::apply(&mut working, at, params, claimed);
        *spec = working.to_spec();
        m
    }

    fn params(on_conflict: OnConflict) -> HostAliasesMutation {
        HostAliasesMutation {
            entries: vec![HostAlias {
                ip: "10.1.2.3".parse().unwrap(),
                hostnames: vec!["foo.remote".into(), "bar.remote".into()],
            }],
            on_conflict,
        }
    }

    fn alias(ip: &str, names: &[&str]) -> PodHostAlias {
        PodHostAlias {
            ip: ip.into(),
            hostnames: Some(names.iter().map(|n| n.to_string()).collect()),
        }
    }

    fn pod(aliases: Option<Vec<PodHostAlias>>) -> PodSpec {
        PodSpec {
            host_aliases: aliases,
            containers: vec![Container {
                name: "app".into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    /// Applies the ops to the spec's JSON and checks they produce the working copy.
    fn run(before: PodSpec, on_conflict: OnConflict) -> (Mutation, PodSpec) {
        let mut doc = json!({ "spec": serde_json::to_value(&before).unwrap() });
        let mut spec = before;
        let m = apply(
            &mut spec,
            SpecLocation::POD,
            &params(on_conflict),
            &mut Claims::new(),
        );
        json_patch::patch(&mut doc, &m.ops).unwrap();
        let patched: PodSpec = serde_json::from_value(doc["spec"].clone()).unwrap();
        assert_eq!(patched, spec, "ops and working copy disagree");
        // Idempotent: a second run on the result changes nothing.
        let mut again = spec.clone();
        assert!(
            apply(
                &mut again,
                SpecLocation::POD,
                &params(on_conflict),
                &mut Claims::new()
            )
            .ops
            .is_empty()
        );
        (m, spec)
    }

    fn ops(m: &Mutation) -> String {
        serde_json::to_string(&m.ops).unwrap()
    }

    #[test]
    fn no_list_adds_the_whole_list() {
        let (m, _) = run(pod(None), OnConflict::KeepPod);
        assert_eq!(
            ops(&m),
            r#"[{"op":"add","path":"/spec/hostAliases","value":[{"hostnames":["foo.remote","bar.remote"],"ip":"10.1.2.3"}]}]"#
        );
    }

    #[test]
    fn same_ip_adds_only_missing_hostnames() {
        let (m, spec) = run(
            pod(Some(vec![alias("10.1.2.3", &["bar.remote", "x"])])),
            OnConflict::KeepPod,
        );
        assert_eq!(
            ops(&m),
            r#"[{"op":"add","path":"/spec/hostAliases/0/hostnames/-","value":"foo.remote"}]"#
        );
        assert_eq!(
            spec.host_aliases.unwrap()[0].hostnames.as_ref().unwrap(),
            &["bar.remote", "x", "foo.remote"]
        );
    }

    #[test]
    fn same_ip_without_hostnames_adds_the_field() {
        let (m, _) = run(
            pod(Some(vec![PodHostAlias {
                ip: "10.1.2.3".into(),
                hostnames: None,
            }])),
            OnConflict::KeepPod,
        );
        assert_eq!(
            ops(&m),
            r#"[{"op":"add","path":"/spec/hostAliases/0/hostnames","value":["foo.remote","bar.remote"]}]"#
        );
    }

    #[test]
    fn new_ip_appends_an_entry_and_keeps_the_pods() {
        let (m, spec) = run(
            pod(Some(vec![alias("10.0.0.9", &["db"])])),
            OnConflict::KeepPod,
        );
        assert_eq!(
            ops(&m),
            r#"[{"op":"add","path":"/spec/hostAliases/-","value":{"hostnames":["foo.remote","bar.remote"],"ip":"10.1.2.3"}}]"#
        );
        assert_eq!(spec.host_aliases.unwrap().len(), 2);
    }

    #[test]
    fn already_present_yields_no_patch() {
        let (m, _) = run(
            pod(Some(vec![alias("10.1.2.3", &["foo.remote", "bar.remote"])])),
            OnConflict::Deny,
        );
        assert!(m.ops.is_empty() && m.violations.is_empty() && m.notes.is_empty());
    }

    #[test]
    fn conflict_keep_pod_skips_with_a_note() {
        let (m, _) = run(
            pod(Some(vec![alias("10.9.9.9", &["foo.remote"])])),
            OnConflict::KeepPod,
        );
        assert_eq!(
            ops(&m),
            r#"[{"op":"add","path":"/spec/hostAliases/-","value":{"hostnames":["bar.remote"],"ip":"10.1.2.3"}}]"#
        );
        assert!(
            m.notes[0].contains("maps \"foo.remote\" to 10.9.9.9; kept"),
            "{:?}",
            m.notes
        );
    }

    #[test]
    fn conflict_deny_is_a_violation() {
        let (m, _) = run(
            pod(Some(vec![alias("10.9.9.9", &["foo.remote"])])),
            OnConflict::Deny,
        );
        assert_eq!(m.violations.len(), 1);
        assert_eq!(m.violations[0].rule, Rule::HostAliases);
        assert!(
            m.violations[0]
                .message
                .contains("maps \"foo.remote\" to 10.9.9.9, but policy requires 10.1.2.3")
        );
    }

    #[test]
    fn conflict_override_moves_the_hostname_and_drops_empty_entries() {
        let before = pod(Some(vec![
            alias("10.9.9.9", &["foo.remote"]),
            alias("10.8.8.8", &["keep", "bar.remote"]),
            alias("10.1.2.3", &["other"]),
        ]));
        let (m, spec) = run(before, OnConflict::Override);
        let aliases = spec.host_aliases.unwrap();
        assert_eq!(
            aliases,
            vec![
                alias("10.8.8.8", &["keep"]),
                alias("10.1.2.3", &["other", "foo.remote", "bar.remote"]),
            ]
        );
        assert!(m.ops.iter().any(|o| matches!(o, PatchOperation::Remove(_))));
    }

    #[test]
    fn conflict_override_leaves_entries_without_the_hostname_alone() {
        // Found by tests/properties.rs: entries with no hostnames, or only other ones, were
        // removed (and reported as changed) along with the conflicting one.
        let before = pod(Some(vec![
            alias("10.9.9.9", &["foo.remote"]),
            PodHostAlias {
                ip: "10.7.7.7".into(),
                hostnames: None,
            },
            alias("10.6.6.6", &[]),
            alias("10.5.5.5", &["other"]),
        ]));
        let (m, spec) = run(before, OnConflict::Override);
        assert_eq!(
            spec.host_aliases.unwrap(),
            vec![
                PodHostAlias {
                    ip: "10.7.7.7".into(),
                    hostnames: None,
                },
                alias("10.6.6.6", &[]),
                alias("10.5.5.5", &["other"]),
                alias("10.1.2.3", &["foo.remote", "bar.remote"]),
            ]
        );
        assert_eq!(
            ops(&m),
            r#"[{"op":"remove","path":"/spec/hostAliases/0/hostnames/0"},{"op":"remove","path":"/spec/hostAliases/0"},{"op":"add","path":"/spec/hostAliases/-","value":{"hostnames":["foo.remote","bar.remote"],"ip":"10.1.2.3"}}]"#
        );
        assert_eq!(
            m.changes
                .iter()
                .filter(|c| c.starts_with("removed"))
                .count(),
            1,
            "{:?}",
            m.changes
        );
    }

    #[test]
    fn ipv6_addresses_compare_by_value() {
        let p = HostAliasesMutation {
            entries: vec![HostAlias {
                ip: "fd00::1".parse().unwrap(),
                hostnames: vec!["v6.remote".into()],
            }],
            on_conflict: OnConflict::KeepPod,
        };
        let mut spec = pod(Some(vec![alias("fd00:0:0::1", &["v6.remote"])]));
        assert!(
            apply(&mut spec, SpecLocation::POD, &p, &mut Claims::new())
                .ops
                .is_empty()
        );
    }

    #[test]
    fn the_first_policy_to_map_a_hostname_wins() {
        let mut claims = Claims::new();
        let mut spec = pod(None);
        let first = apply(
            &mut spec,
            SpecLocation::POD,
            &params(OnConflict::Override),
            &mut claims,
        );
        assert_eq!(first.ops.len(), 1);
        let rival = HostAliasesMutation {
            entries: vec![HostAlias {
                ip: "10.9.9.9".parse().unwrap(),
                hostnames: vec!["foo.remote".into(), "new.remote".into()],
            }],
            on_conflict: OnConflict::Override,
        };
        let second = apply(&mut spec, SpecLocation::POD, &rival, &mut claims);
        assert_eq!(
            serde_json::to_string(&second.ops).unwrap(),
            r#"[{"op":"add","path":"/spec/hostAliases/-","value":{"hostnames":["new.remote"],"ip":"10.9.9.9"}}]"#
        );
        // A second round (reinvocation) with fresh claims changes nothing.
        let mut claims = Claims::new();
        assert!(
            apply(
                &mut spec,
                SpecLocation::POD,
                &params(OnConflict::Override),
                &mut claims
            )
            .ops
            .is_empty()
        );
        assert!(
            apply(&mut spec, SpecLocation::POD, &rival, &mut claims)
                .ops
                .is_empty()
        );
    }

    #[test]
    fn warns_when_a_container_mounts_over_etc_hosts() {
        let mut spec = pod(None);
        spec.containers[0].volume_mounts = Some(vec![VolumeMount {
            name: "h".into(),
            mount_path: "/etc/hosts".into(),
            ..Default::default()
        }]);
        let m = apply(
            &mut spec,
            SpecLocation::POD,
            &params(OnConflict::KeepPod),
            &mut Claims::new(),
        );
        assert!(
            m.notes.iter().any(|n| n.contains("will not reach it")),
            "{:?}",
            m.notes
        );
    }
}
