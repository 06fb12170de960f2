//! A uniform read-only view over the three container lists of a pod spec.
//!
//! `containers`, `initContainers` and `ephemeralContainers` have different types in
//! k8s-openapi but share every field the rules read; `ContainerView` borrows those fields so
//! that each rule is written once.

use k8s_openapi::api::core::v1::{
    ContainerPort, EnvVar, Lifecycle, PodSpec, Probe, SecurityContext, VolumeMount,
};

/// Which list a container is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerList {
    /// `spec.containers`.
    Containers,
    /// `spec.initContainers`.
    InitContainers,
    /// `spec.ephemeralContainers`.
    EphemeralContainers,
}

impl ContainerList {
    /// The JSON field name.
    pub fn field(self) -> &'static str {
        match self {
            ContainerList::Containers => "containers",
            ContainerList::InitContainers => "initContainers",
            ContainerList::EphemeralContainers => "ephemeralContainers",
        }
    }
}

/// Borrowed view of one container.
#[derive(Debug, Clone, Copy)]
pub struct ContainerView<'a> {
    /// Which list it is in.
    pub list: ContainerList,
    /// Index in that list.
    pub index: usize,
    /// `name`.
    pub name: &'a str,
    /// `image`.
    pub image: Option<&'a str>,
    /// `imagePullPolicy`.
    pub image_pull_policy: Option<&'a str>,
    /// `command`.
    pub command: Option<&'a [String]>,
    /// `args`.
    pub args: Option<&'a [String]>,
    /// `volumeMounts`.
    pub volume_mounts: &'a [VolumeMount],
    /// `ports`.
    pub ports: &'a [ContainerPort],
    /// `securityContext`.
    pub security_context: Option<&'a SecurityContext>,
    /// `env`.
    pub env: &'a [EnvVar],
    /// Whether `envFrom` is set (its variables are known only at run time).
    pub env_from: bool,
    /// `workingDir`.
    pub working_dir: Option<&'a str>,
    /// `lifecycle`.
    pub lifecycle: Option<&'a Lifecycle>,
    /// `livenessProbe`, `readinessProbe`, `startupProbe` with their field names.
    pub probes: [(&'static str, Option<&'a Probe>); 3],
    /// `terminationMessagePath` (the kubelet bind-mounts a writable file there).
    pub termination_message_path: Option<&'a str>,
}

impl ContainerView<'_> {
    /// The container's path below the pod spec, e.g. `containers[1]`.
    pub fn path(&self) -> String {
        format!("{}[{}]", self.list.field(), self.index)
    }

    /// True when `securityContext.privileged` is true.
    pub fn privileged(&self) -> bool {
        self.security_context
            .and_then(|s| s.privileged)
            .unwrap_or(false)
    }

    /// `securityContext.capabilities.add`.
    pub(crate) fn added_capabilities(&self) -> &[String] {
        self.security_context
            .and_then(|s| s.capabilities.as_ref())
            .and_then(|c| c.add.as_deref())
            .unwrap_or(&[])
    }
}

macro_rules! view {
    ($list:expr, $index:expr, $c:expr) => {
        ContainerView {
            list: $list,
            index: $index,
            name: &$c.name,
            image: $c.image.as_deref(),
            image_pull_policy: $c.image_pull_policy.as_deref(),
            command: $c.command.as_deref(),
            args: $c.args.as_deref(),
            volume_mounts: $c.volume_mounts.as_deref().unwrap_or(&[]),
            ports: $c.ports.as_deref().unwrap_or(&[]),
            security_context: $c.security_context.as_ref(),
            env: $c.env.as_deref().unwrap_or(&[]),
            env_from: $c.env_from.as_ref().is_some_and(|e| !e.is_empty()),
            working_dir: $c.working_dir.as_deref(),
            lifecycle: $c.lifecycle.as_ref(),
            probes: [
                ("livenessProbe", $c.liveness_probe.as_ref()),
                ("readinessProbe", $c.readiness_probe.as_ref()),
                ("startupProbe", $c.startup_probe.as_ref()),
            ],
            termination_message_path: $c.termination_message_path.as_deref(),
        }
    };
}

/// Every container of the spec: init containers, containers, then ephemeral containers.
pub fn containers(spec: &PodSpec) -> impl Iterator<Item = ContainerView<'_>> {
    let init = spec.init_containers.iter().flatten().enumerate();
    let main = spec.containers.iter().enumerate();
    let ephemeral = spec.ephemeral_containers.iter().flatten().enumerate();
    init.map(|(i, c)| view!(ContainerList::InitContainers, i, c))
        .chain(main.map(|(i, c)| view!(ContainerList::Containers, i, c)))
        .chain(ephemeral.map(|(i, c)| view!(ContainerList::EphemeralContainers, i, c)))
}

/// Normalises an absolute path lexically: collapses `//`, drops `.` and a trailing `/`,
/// resolves `..`. Returns `None` for a relative path.
pub(crate) fn normalize_path(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_paths_like_the_kernel_would_resolve_them() {
        for (input, expected) in [
            ("/etc/hosts", Some("/etc/hosts")),
            ("//etc//hosts", Some("/etc/hosts")),
            ("/etc/./hosts/", Some("/etc/hosts")),
            ("/etc/../etc/hosts", Some("/etc/hosts")),
            ("/", Some("/")),
            ("/../..", Some("/")),
            ("etc/hosts", None),
        ] {
            assert_eq!(normalize_path(input).as_deref(), expected, "{input}");
        }
    }
}
