//! `validate.hostsFile`: no container may edit the Pod's `/etc/hosts`.
//!
//! The kubelet writes `/etc/hosts` for every Pod (hostNetwork included) and rewrites it, so
//! edits are lost or fight the kubelet; a mount at exactly `/etc/hosts` replaces the kubelet's
//! file and with it `hostAliases`. `spec.hostAliases` is the durable way, and the message
//! shows the entry that does what the edit tried to do.
//! (kubelet: pkg/kubelet/kubelet_pods.go `makeMounts` / `ensureHostsFile`.)
//!
//! Mounts and fields are judged by where they land, whatever the container runs:
//! - a volume at `/etc/hosts`, or `terminationMessagePath: /etc/hosts` (the kubelet bind-mounts
//!   a writable termination-log file at that path, after the hosts file, so it shadows it), in
//!   any spelling (`/etc//hosts`, `/etc/./hosts`, `/etc/../etc/hosts`);
//! - a writable hostPath (with its subPath) that reaches a hosts file on the node: the node's
//!   own `/etc/hosts`; every Pod's hosts file, which the kubelet keeps at
//!   `<root>/pods/<uid>/etc-hosts` (`/var/lib/kubelet` unless the distribution or the
//!   policy's `kubeletRootDirs` says otherwise: [`KUBELET_ROOTS`]); Docker's
//!   `/var/lib/docker/containers/<id>/hosts`;
//!   and through `/proc`, any process's root (`/proc/<pid>/root`, `/proc/1/root` being the
//!   node's), working directory or open files. Each of these paths and its every ancestor (up
//!   to `/`) counts; a path below `/proc/<pid>/root` is judged as the path it names.
//!
//! Commands (`command`/`args` after the kubelet's `$(VAR)` expansion, lifecycle hooks,
//! probes) go through the shell analysis ([`super::shell`]). What it cannot decide is reported
//! apart ([`Findings::undecided`]); the policy's `undecidable` setting says what that does. A
//! container that provably cannot write the file gets no undecided findings: the kubelet
//! writes it mode 0644 owned by root, so a container that runs as non-root (`runAsNonRoot:
//! true` or a non-zero `runAsUser`, container or pod level) without privilege escalation and
//! not privileged cannot change it ([`cannot_write_hosts`]). Mount rules apply regardless.
//!
//! Cost: one shell-analysis [`Budget`] per check, shared by every container; at most
//! [`MAX_VIOLATIONS`] violations, then one undecided finding naming the containers left.

use std::collections::{BTreeMap, HashMap, HashSet};

use std::borrow::Cow;

use k8s_openapi::api::core::v1::{PodSecurityContext, PodSpec, Volume};

use super::shell::{Analysis, Budget, HostEntry, Start, analyse};
use super::{Effort, Rule, Violation};
use crate::pod::{ContainerView, containers, normalize_path};
use crate::policy::HostsFileRule;

const HOSTS: &str = "/etc/hosts";

/// At most this many violations (writes and undecided) are reported for one pod spec; the
/// containers left are then named in one undecided finding.
pub const MAX_VIOLATIONS: usize = 256;

/// What the rule found in one pod spec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    /// Edits of `/etc/hosts`.
    pub violations: Vec<Violation>,
    /// Commands the analysis could not decide, each with the reason and its field path.
    pub undecided: Vec<Violation>,
    /// An inline check fell short of its budget: these findings are not the answer, the check
    /// must run again with [`Effort::Full`].
    pub cut: bool,
}

impl Findings {
    fn len(&self) -> usize {
        self.violations.len() + self.undecided.len()
    }
}

/// Every way the spec's containers edit `/etc/hosts`. `spec_path` is where the pod spec lives
/// (`spec`, `spec.template.spec`, ...).
pub fn check(spec: &PodSpec, spec_path: &str, rule: &HostsFileRule) -> Findings {
    check_with(spec, spec_path, rule, Effort::Full)
}

/// [`check`] with the budget of `effort`.
pub fn check_with(
    spec: &PodSpec,
    spec_path: &str,
    rule: &HostsFileRule,
    effort: Effort,
) -> Findings {
    // Only a hostPath volume makes a writable mount reach the node: without one (nearly every
    // Pod) no mount needs its volume looked up.
    let volumes: BTreeMap<&str, &Volume> = match spec.volumes.as_deref() {
        Some(all) if all.iter().any(|v| v.host_path.is_some()) => {
            all.iter().map(|v| (v.name.as_str(), v)).collect()
        }
        _ => BTreeMap::new(),
    };
    let mut out = Findings::default();
    let mut budget = match effort {
        Effort::Full => Budget::default(),
        Effort::Inline => Budget::inline(),
    };
    let mut left: Vec<String> = Vec::new();
    for c in containers(spec) {
        if budget.cut() {
            // The answer will come from the full budget: stop spending this one.
            break;
        }
        // Field paths are only spelled out for violations, which are rare.
        let base = || format!("{spec_path}.{}", c.path());
        if out.len() >= MAX_VIOLATIONS {
            left.push(base());
            continue;
        }
        mounts(
            &c,
            &base,
            &volumes,
            &rule.kubelet_root_dirs,
            &mut out.violations,
        );
        commands(
            &c,
            spec.security_context.as_ref(),
            &base,
            &mut budget,
            &mut out,
        );
    }
    if !left.is_empty() {
        out.undecided.push(Violation {
            rule: Rule::HostsFile,
            message: format!(
                "cannot decide whether {} more containers edit /etc/hosts: the check stops \
                 after {MAX_VIOLATIONS} findings",
                left.len()
            ),
            paths: left,
        });
    }
    out.cut = budget.cut();
    out
}

/// True when the container mounts something at exactly `/etc/hosts`, a volume or its
/// termination-message file (so the kubelet's file, and `hostAliases`, never reach it).
pub fn mounts_over_hosts(c: &ContainerView<'_>) -> bool {
    c.volume_mounts.iter().any(|m| at_hosts(&m.mount_path))
        || c.termination_message_path.is_some_and(at_hosts)
}

/// True when `path` normalises ([`normalize_path`]) to `/etc/hosts`; a path already in normal
/// form (nearly every real one) is compared as it is, without building its normal form.
fn at_hosts(path: &str) -> bool {
    // The last component survives normalisation unless it is empty, `.` or `..`.
    let after = memchr::memrchr(b'/', path.as_bytes()).map_or(0, |slash| slash + 1);
    let last = path.get(after..).unwrap_or(path);
    if !matches!(last, "hosts" | "" | "." | "..") {
        return false;
    }
    if is_normal(path) {
        return path == HOSTS;
    }
    normalize_path(path).as_deref() == Some(HOSTS)
}

/// True when [`normalize_path`] gives `path` back unchanged: absolute, and no empty, `.` or
/// `..` component (so no `//` and no trailing `/`), or exactly `/`.
fn is_normal(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    rest.is_empty() || rest.split('/').all(|p| !matches!(p, "" | "." | ".."))
}

/// Which hosts files a writable host path gives access to; `None` when it reaches none.
/// `path` must be normalised (absolute, no `.`, `..` or empty parts); `kubelet_roots` are
/// kubelet root directories beyond [`KUBELET_ROOTS`], normalised.
pub fn host_path_reach(path: &str, kubelet_roots: &[String]) -> Option<Cow<'static, str>> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    reach(&parts, kubelet_roots)
}

/// Host paths that are hosts files, `*` standing for one path component (a Pod uid, a
/// container id), with what reaching them means.
const HOSTS_FILES: [(&[&str], &str); 2] = [
    (&["etc", "hosts"], "the node's /etc/hosts"),
    (
        &["var", "lib", "docker", "containers", "*", "hosts"],
        "the hosts file of every Docker container on the node \
         (/var/lib/docker/containers/<id>/hosts)",
    ),
];

/// Where kubelets keep their state (`--root-dir`), each Pod's hosts file at
/// `<root>/pods/<uid>/etc-hosts`: upstream's default (kubeadm, k3s, RKE2, OpenShift, the
/// managed clouds), k0s' (`<data-dir>/kubelet`), microk8s' (a snap) and k3s' before v0.10.
/// A policy adds others with `hostsFile.kubeletRootDirs`.
pub const KUBELET_ROOTS: &[&str] = &[
    "/var/lib/kubelet",
    "/var/lib/k0s/kubelet",
    "/var/snap/microk8s/common/var/lib/kubelet",
    "/var/lib/rancher/k3s/agent/kubelet",
];

const THROUGH_PROC: &str = "every process's files through /proc, hosts files included \
     (/proc/<pid>/root is a process's root; /proc/1/root is the node's)";

/// Below a kubelet root, the path of a Pod's hosts file.
const KUBELET_HOSTS: &[&str] = &["pods", "*", "etc-hosts"];

/// Whether `parts` is `file` (a pattern) or one of its ancestors.
fn leads_to<'a>(parts: &[&str], file: impl IntoIterator<Item = &'a str>) -> bool {
    let mut file = file.into_iter();
    parts
        .iter()
        .all(|p| file.next().is_some_and(|f| f == "*" || *p == f))
}

fn reach(parts: &[&str], kubelet_roots: &[String]) -> Option<Cow<'static, str>> {
    // The path is a hosts file or one of its ancestors: the node's, the Pods' (the kubelet
    // named first: an ancestor of several says the widest), Docker's.
    let [node, docker] = HOSTS_FILES;
    if leads_to(parts, node.0.iter().copied()) {
        return Some(Cow::Borrowed(node.1));
    }
    let roots = KUBELET_ROOTS
        .iter()
        .copied()
        .chain(kubelet_roots.iter().map(String::as_str));
    for root in roots {
        let root_parts = root.split('/').filter(|p| !p.is_empty());
        if leads_to(parts, root_parts.chain(KUBELET_HOSTS.iter().copied())) {
            return Some(Cow::Owned(format!(
                "the hosts file of every Pod on the node (the kubelet keeps them at \
                 {root}/pods/<uid>/etc-hosts)"
            )));
        }
    }
    if leads_to(parts, docker.0.iter().copied()) {
        return Some(Cow::Borrowed(docker.1));
    }

    // `/proc`, `/proc/<pid>`, and what a process's links lead to.
    let ["proc", rest @ ..] = parts else {
        return None;
    };
    let is_process = |p: &str| {
        matches!(p, "self" | "thread-self")
            || (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    };
    let through_proc = || Some(Cow::Borrowed(THROUGH_PROC));
    let process_links = |rest: &[&str]| -> Option<Cow<'static, str>> {
        match rest {
            [] => through_proc(),
            ["root", inside @ ..] => {
                if inside.is_empty() {
                    through_proc()
                } else {
                    reach(inside, kubelet_roots)
                }
            }
            // The working directory and open descriptors can be anywhere, the node's /etc
            // included.
            ["cwd" | "fd" | "map_files", ..] => through_proc(),
            _ => None,
        }
    };
    match rest {
        [] => through_proc(),
        [pid, after @ ..] if is_process(pid) => match after {
            ["task"] => through_proc(),
            ["task", tid, in_task @ ..] if is_process(tid) => process_links(in_task),
            other => process_links(other),
        },
        _ => None,
    }
}

fn mounts(
    c: &ContainerView<'_>,
    base: &dyn Fn() -> String,
    volumes: &BTreeMap<&str, &Volume>,
    kubelet_roots: &[String],
    out: &mut Vec<Violation>,
) {
    for (i, m) in c.volume_mounts.iter().enumerate() {
        let path = || format!("{}.volumeMounts[{i}]", base());
        if at_hosts(&m.mount_path) {
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
        if let Some(what) = host_path_reach(&exposed, kubelet_roots) {
            let path = path();
            out.push(Violation {
                rule: Rule::HostsFile,
                message: format!(
                    "container {:?} mounts hostPath {:?} writable at {} ({path}): that reaches \
                     {what}; set readOnly: true on the mount or mount a narrower path",
                    c.name, exposed, m.mount_path
                ),
                paths: vec![path],
            });
        }
    }
    if let Some(tmp) = c.termination_message_path
        && at_hosts(tmp)
    {
        let path = format!("{}.terminationMessagePath", base());
        out.push(Violation {
            rule: Rule::HostsFile,
            message: format!(
                "container {:?} sets terminationMessagePath {tmp:?} ({path}): the kubelet \
                 bind-mounts a writable file there, which replaces the kubelet-managed \
                 /etc/hosts and drops spec.hostAliases; keep the default /dev/termination-log \
                 and declare the entries in spec.hostAliases",
                c.name
            ),
            paths: vec![path],
        });
    }
}

/// True when the container provably cannot write the hosts file: it runs as non-root
/// (`runAsNonRoot: true`, or a non-zero `runAsUser`, the container's setting over the pod's),
/// with `allowPrivilegeEscalation: false` (so no setuid binary or file capability makes it
/// root), and is not privileged. The kubelet's file is mode 0644 owned by root.
pub fn cannot_write_hosts(c: &ContainerView<'_>, pod: Option<&PodSecurityContext>) -> bool {
    let sc = c.security_context;
    let run_as_user = sc
        .and_then(|s| s.run_as_user)
        .or(pod.and_then(|p| p.run_as_user));
    let run_as_non_root = sc
        .and_then(|s| s.run_as_non_root)
        .or(pod.and_then(|p| p.run_as_non_root))
        == Some(true);
    // With runAsNonRoot the kubelet refuses to start a container whose user is root, so
    // runAsUser: 0 with it runs nothing at all.
    let non_root = run_as_non_root || run_as_user.is_some_and(|u| u != 0);
    let no_escalation = sc.and_then(|s| s.allow_privilege_escalation) == Some(false);
    non_root && no_escalation && !c.privileged()
}

fn commands(
    c: &ContainerView<'_>,
    pod: Option<&PodSecurityContext>,
    base: &dyn Fn() -> String,
    budget: &mut Budget,
    out: &mut Findings,
) {
    let protected = cannot_write_hosts(c, pod);
    let start = Start::within(
        c.env.iter().map(|e| {
            (
                e.name.as_str(),
                if e.value_from.is_some() {
                    None
                } else {
                    Some(e.value.as_deref().unwrap_or(""))
                },
            )
        }),
        c.env_from,
        c.working_dir,
        budget,
    );
    // command followed by args, after the kubelet's `$(VAR)` expansion.
    let items = c.command.unwrap_or_default().iter();
    let main: Vec<Cow<str>> = items
        .chain(c.args.unwrap_or_default())
        .map(|a| start.expanded(a))
        .collect();
    budget.settle(&start);
    if budget.cut() {
        // The answer will come from the full budget.
        return;
    }
    if !main.is_empty() {
        let found = analyse(&main, c.command.is_some(), &start, budget);
        if reports(&found, protected) {
            // Name the field that holds the script: with `command: [sh, -c]` it is in args.
            let in_command = match (c.command, c.args) {
                (Some(cmd), Some(_)) => {
                    let mut scratch = budget.clone();
                    let cmd = main.get(..cmd.len()).unwrap_or_default();
                    let alone = analyse(cmd, true, &start, &mut scratch);
                    budget.absorb_cut(&scratch);
                    !alone.writes.is_empty() || !alone.undecided.is_empty()
                }
                (Some(_), None) => true,
                _ => false,
            };
            let field = if in_command { "command" } else { "args" };
            report(c, protected, &format!("{}.{field}", base()), found, out);
        }
    }
    // Hooks and probes are not expanded by the kubelet, and run in the container's
    // environment and working directory.
    // Each with the field that holds it, less `.exec.command` (spelled out on a finding only).
    let mut handlers: Vec<(&str, &[String])> = Vec::new();
    if let Some(lifecycle) = c.lifecycle {
        for (hook, handler) in [
            ("lifecycle.postStart", lifecycle.post_start.as_ref()),
            ("lifecycle.preStop", lifecycle.pre_stop.as_ref()),
        ] {
            if let Some(cmd) = handler
                .and_then(|h| h.exec.as_ref())
                .and_then(|e| e.command.as_deref())
            {
                handlers.push((hook, cmd));
            }
        }
    }
    for (name, probe) in c.probes {
        if let Some(cmd) = probe
            .and_then(|p| p.exec.as_ref())
            .and_then(|e| e.command.as_deref())
        {
            handlers.push((name, cmd));
        }
    }
    for (field, cmd) in handlers {
        let found = analyse(cmd, true, &start, budget);
        if reports(&found, protected) {
            let path = format!("{}.{field}.exec.command", base());
            report(c, protected, &path, found, out);
        }
    }
}

/// Whether [`report`] turns `found` into a finding: a write always does, what the analysis
/// could not decide only for a container that can write the file. Otherwise nothing is
/// spelled out (field paths, messages) and the field that holds the script is not looked for.
fn reports(found: &Analysis, protected: bool) -> bool {
    !found.writes.is_empty() || (!protected && !found.undecided.is_empty())
}

/// Turns one command's analysis into violations and undecided findings.
fn report(c: &ContainerView<'_>, protected: bool, path: &str, found: Analysis, out: &mut Findings) {
    let non_root = if protected {
        ""
    } else {
        "; or run the container as non-root (runAsNonRoot: true, allowPrivilegeEscalation: \
         false), which cannot write the file"
    };
    for w in found.writes {
        if out.len() >= MAX_VIOLATIONS {
            return;
        }
        let advice = match host_aliases_yaml(&w.entries) {
            Some(yaml) => format!("use spec.hostAliases instead: {yaml}"),
            None => "declare the entries in spec.hostAliases instead".to_string(),
        };
        out.violations.push(Violation {
            rule: Rule::HostsFile,
            message: format!(
                "container {:?} writes /etc/hosts in {path} ({}): the kubelet manages that file \
                 and rewrites it; {advice}{non_root}",
                c.name, w.how
            ),
            paths: vec![path.to_string()],
        });
    }
    // A container that cannot write the file has nothing left to decide.
    if protected || found.undecided.is_empty() || out.len() >= MAX_VIOLATIONS {
        return;
    }
    out.undecided.push(Violation {
        rule: Rule::HostsFile,
        message: format!(
            "cannot decide whether container {:?} writes /etc/hosts in {path}: {}; declare \
             hosts entries in spec.hostAliases{non_root}",
            c.name,
            found.undecided.join("; ")
        ),
        paths: vec![path.to_string()],
    });
}

/// The `hostAliases` stanza, in single-line YAML flow style, that writes `entries` durably;
/// entries for the same IP are merged, in first-seen order, by map (linear in the entries).
/// `None` when nothing literal was written.
pub fn host_aliases_yaml(entries: &[HostEntry]) -> Option<String> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut merged: Vec<(&str, Vec<&str>, HashSet<&str>)> = Vec::new();
    for e in entries {
        let at = *index.entry(e.ip.as_str()).or_insert_with(|| {
            merged.push((&e.ip, Vec::new(), HashSet::new()));
            merged.len() - 1
        });
        let Some((_, names, seen)) = merged.get_mut(at) else {
            continue;
        };
        for h in &e.hostnames {
            if seen.insert(h.as_str()) {
                names.push(h);
            }
        }
    }
    if merged.is_empty() {
        return None;
    }
    let items: Vec<String> = merged
        .iter()
        .map(|(ip, names, _)| {
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

    /// Values that build on one another would expand the command to exabytes: what does not
    /// fit the expansion's allowance is unknown, so the command is undecided (cut inline).
    #[test]
    fn a_command_whose_expansion_explodes_is_undecided() {
        use k8s_openapi::api::core::v1::EnvVar;
        let env = (0..64)
            .map(|i| EnvVar {
                name: format!("V{i}"),
                value: Some(if i == 0 {
                    "echo 10.0.0.1 db >> /etc/hosts; ".to_string()
                } else {
                    format!("$(V{0})$(V{0})", i - 1)
                }),
                ..Default::default()
            })
            .collect();
        let spec = PodSpec {
            containers: vec![Container {
                name: "app".into(),
                command: Some(vec!["sh".into(), "-c".into(), "$(V63)".into()]),
                env: Some(env),
                ..Default::default()
            }],
            ..Default::default()
        };
        let rule = HostsFileRule::default();
        let found = check(&spec, "spec", &rule);
        assert!(!found.undecided.is_empty(), "{found:?}");
        assert!(!found.cut);
        assert!(check_with(&spec, "spec", &rule, Effort::Inline).cut);
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
        // Writable hostPaths, by where they lead (mounted at /host, no subPath).
        let host_paths: Vec<(&str, &str, usize)> = vec![
            ("proc", "/proc", 1),
            ("proc trailing slash", "/proc/", 1),
            ("init's root", "/proc/1/root", 1),
            ("init's /etc through root", "/proc/1/root/etc", 1),
            ("init's hosts through root", "/proc/1/root/etc/hosts", 1),
            ("a process dir", "/proc/4242", 1),
            ("self root", "/proc/self/root", 1),
            ("thread-self root", "/proc/thread-self/root/etc", 1),
            ("task root", "/proc/1/task/1/root/etc", 1),
            ("task list", "/proc/1/task", 1),
            ("working directory", "/proc/1/cwd", 1),
            ("open files", "/proc/1/fd", 1),
            (
                "kubelet dir through init's root",
                "/proc/1/root/var/lib/kubelet",
                1,
            ),
            ("root within root", "/proc/1/root/proc/1/root", 1),
            ("dotdot alias", "/proc/1/root/../root/etc", 1),
            ("init's logs", "/proc/1/root/var/log", 0),
            ("sysctls", "/proc/sys", 0),
            ("sysctl file", "/proc/sys/net/ipv4/ip_forward", 0),
            ("process environ", "/proc/1/environ", 0),
            ("proc-like name", "/procfs", 0),
            ("kubelet root", "/var/lib/kubelet", 1),
            ("kubelet pods", "/var/lib/kubelet/pods", 1),
            (
                "one pod dir",
                "/var/lib/kubelet/pods/0b7c6a9e-1111-4222-8333-444455556666",
                1,
            ),
            (
                "one pod's hosts file",
                "/var/lib/kubelet/pods/0b7c6a9e-1111-4222-8333-444455556666/etc-hosts",
                1,
            ),
            (
                "one pod's volumes",
                "/var/lib/kubelet/pods/0b7c6a9e-1111-4222-8333-444455556666/volumes",
                0,
            ),
            ("kubelet plugins (CSI)", "/var/lib/kubelet/plugins", 0),
            ("var", "/var", 1),
            ("var lib", "/var/lib", 1),
            ("var log", "/var/log", 0),
            ("var lib containerd", "/var/lib/containerd", 0),
            ("docker root", "/var/lib/docker", 1),
            ("docker containers", "/var/lib/docker/containers", 1),
            (
                "docker hosts file",
                "/var/lib/docker/containers/abc123/hosts",
                1,
            ),
            (
                "docker container log",
                "/var/lib/docker/containers/abc123/abc123-json.log",
                0,
            ),
            ("docker volumes", "/var/lib/docker/volumes", 0),
        ];
        let mut cases = cases;
        for (name, host, expected) in host_paths {
            cases.push((
                name,
                pod(vec![mount("h", "/host")], vec![host_path_volume("h", host)]),
                expected,
            ));
        }
        cases.extend([
            (
                "root with subPath to the kubelet",
                pod(
                    vec![sub(mount("h", "/host"), "var/lib/kubelet")],
                    vec![host_path_volume("h", "/")],
                ),
                1,
            ),
            (
                "var with subPath to pods",
                pod(
                    vec![sub(mount("h", "/host"), "lib/kubelet/pods")],
                    vec![host_path_volume("h", "/var")],
                ),
                1,
            ),
            (
                "proc with subPath to init's root",
                pod(
                    vec![sub(mount("h", "/host"), "1/root")],
                    vec![host_path_volume("h", "/proc")],
                ),
                1,
            ),
            (
                "kubelet with subPath to plugins",
                pod(
                    vec![sub(mount("h", "/host"), "plugins")],
                    vec![host_path_volume("h", "/var/lib/kubelet")],
                ),
                0,
            ),
            (
                "kubelet readOnly",
                pod(
                    vec![ro(mount("h", "/host"))],
                    vec![host_path_volume("h", "/var/lib/kubelet")],
                ),
                0,
            ),
            (
                "proc readOnly",
                pod(
                    vec![ro(mount("h", "/host"))],
                    vec![host_path_volume("h", "/proc/1/root")],
                ),
                0,
            ),
        ]);
        for (name, spec, expected) in cases {
            let v = check(&spec, "spec", &HostsFileRule::default()).violations;
            assert_eq!(v.len(), expected, "{name}: {v:?}");
            assert!(v.iter().all(|v| v.rule == Rule::HostsFile));
        }
    }

    #[test]
    fn kubelet_roots_of_distributions_and_of_the_policy_are_reached() {
        let rule = HostsFileRule {
            kubelet_root_dirs: vec!["/data/kubelet".into()],
            ..HostsFileRule::default()
        };
        for (host, with_default, with_rule) in [
            ("/var/lib/k0s/kubelet", 1, 1),
            ("/var/lib/k0s", 1, 1),
            ("/var/lib/k0s/kubelet/pods/u1/etc-hosts", 1, 1),
            ("/var/lib/k0s/kubelet/plugins", 0, 0),
            ("/var/snap/microk8s/common/var/lib/kubelet/pods", 1, 1),
            ("/var/snap", 1, 1),
            ("/var/snap/microk8s/common/var/log", 0, 0),
            ("/var/lib/rancher/k3s/agent/kubelet/pods/u1", 1, 1),
            ("/data/kubelet", 0, 1),
            ("/data", 0, 1),
            ("/data/kubelet/pods/u1/etc-hosts", 0, 1),
            ("/data/kubelet/pods/u1/volumes", 0, 0),
            ("/data/other", 0, 0),
            ("/proc/1/root/data/kubelet", 0, 1),
            ("/proc/1/root/var/lib/k0s", 1, 1),
        ] {
            let spec = pod(vec![mount("h", "/host")], vec![host_path_volume("h", host)]);
            let default = check(&spec, "spec", &HostsFileRule::default()).violations;
            let configured = check(&spec, "spec", &rule).violations;
            assert_eq!(default.len(), with_default, "{host}: {default:?}");
            assert_eq!(configured.len(), with_rule, "{host}: {configured:?}");
        }
        let spec = pod(
            vec![mount("h", "/host")],
            vec![host_path_volume("h", "/data/kubelet/pods")],
        );
        let v = check(&spec, "spec", &rule).violations;
        assert!(
            v[0].message
                .contains("the kubelet keeps them at /data/kubelet/pods/<uid>/etc-hosts"),
            "{}",
            v[0].message
        );
    }

    #[test]
    fn host_path_messages_say_what_is_reached() {
        for (host, says) in [
            ("/", "the node's /etc/hosts"),
            ("/var/lib/kubelet", "/var/lib/kubelet/pods/<uid>/etc-hosts"),
            ("/var/lib/docker", "/var/lib/docker/containers/<id>/hosts"),
            ("/proc/1/root", "/proc/1/root is the node's"),
            ("/proc/1/root/var", "/var/lib/kubelet/pods/<uid>/etc-hosts"),
        ] {
            let spec = pod(vec![mount("h", "/host")], vec![host_path_volume("h", host)]);
            let v = check(&spec, "spec", &HostsFileRule::default()).violations;
            assert_eq!(v.len(), 1, "{host}");
            assert!(
                v[0].message.contains(&format!("mounts hostPath {host:?} writable at /host (spec.containers[0].volumeMounts[0]): that reaches ")),
                "{host}: {}",
                v[0].message
            );
            assert!(v[0].message.contains(says), "{host}: {}", v[0].message);
            assert_eq!(v[0].paths, ["spec.containers[0].volumeMounts[0]"]);
        }
    }

    #[test]
    fn termination_message_path_at_hosts_is_a_mount_over_it() {
        let with_tmp = |tmp: Option<&str>| PodSpec {
            containers: vec![Container {
                name: "app".into(),
                termination_message_path: tmp.map(String::from),
                ..Default::default()
            }],
            ..Default::default()
        };
        for (tmp, denied) in [
            (Some("/etc/hosts"), true),
            (Some("/etc//hosts"), true),
            (Some("/etc/./hosts"), true),
            (Some("/etc/../etc/hosts"), true),
            (Some("//etc/hosts/"), true),
            (Some("/dev/termination-log"), false),
            (Some("/etc/hosts.log"), false),
            (Some("/tmp/etc/hosts"), false),
            (None, false),
        ] {
            let spec = with_tmp(tmp);
            let v = check(&spec, "spec", &HostsFileRule::default()).violations;
            let view = containers(&spec).next().unwrap();
            assert_eq!(mounts_over_hosts(&view), denied, "{tmp:?}");
            if denied {
                assert_eq!(v.len(), 1, "{tmp:?}: {v:?}");
                assert_eq!(v[0].paths, ["spec.containers[0].terminationMessagePath"]);
                assert!(
                    v[0].message
                        .contains("the kubelet bind-mounts a writable file there"),
                    "{}",
                    v[0].message
                );
            } else {
                assert!(v.is_empty(), "{tmp:?}: {v:?}");
            }
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
        let v = check(&spec, "spec.template.spec", &HostsFileRule::default()).violations;
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
        let v = check(&spec, "spec", &HostsFileRule::default()).violations;
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
            let v = check(&spec, "spec", &HostsFileRule::default()).violations;
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
        let v = check(&spec, "spec", &HostsFileRule::default()).violations;
        assert!(
            v[0].message
                .contains(r#"use spec.hostAliases instead: hostAliases: [{ip: "10.0.0.1", hostnames: ["a", "b"]}]; or run the container as non-root"#),
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
