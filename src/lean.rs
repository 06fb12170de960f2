//! The lean decode of a Pod's spec: what podgate's rules and mutations read, in k8s-openapi's
//! own types, and nothing else built.
//!
//! kube-apiserver has validated and defaulted the object before admission, so type-checking
//! fields no rule reads buys nothing; building them was most of a review's cost (one `String`
//! per scalar, maps for resource quantities, the service-account token's projected volume).
//! The fields left out below are skipped by serde without being built: scheduling and resource
//! fields of the Pod and containers, and every volume source but `hostPath`. Everything else
//! is decoded exactly as k8s-openapi decodes it, into the same types, so the rules see the same
//! values. `workload::read_reference` keeps the full typed decode as the reference; tests
//! compare the two on every fixture and on generated Pods. A rule that starts reading a
//! skipped field must move it back here; those tests show where it was forgotten.
//!
//! The mutating webhook reads less still ([`PlanPodSpec`]): it runs no rule, only the mutation
//! plan, so it decodes what the plan and the policy match read and skips the rest (commands,
//! env, probes, ports, security contexts, volumes) unbuilt. `workload::Scope` chooses.
//!
//! Below the container, the structs whose fields are read in part (`EnvVar`, `Probe`,
//! `Lifecycle`, `ContainerPort`, the security contexts) are read by `lean_struct!` as
//! k8s-openapi reads them (a map, a later duplicate key wins, unknown keys skipped) and built
//! into k8s-openapi's type with only the fields a rule reads set: `valueFrom` is only "set"
//! (the value is known at run time alone), a probe or hook only its `exec`, a port only its
//! `hostPort`. Strings and lists of the container and the pod spec that no rule reads are
//! skipped as `Option<IgnoredAny>`, so that a duplicate of them is still refused as before.
//!
//! What changes for a caller: a Pod whose skipped fields (or `status`) are mistyped is read
//! rather than refused; kube-apiserver never sends such a Pod.

use std::fmt;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvFromSource, EnvVar, EnvVarSource,
    EphemeralContainer, ExecAction, HostAlias, HostPathVolumeSource, Lifecycle, LifecycleHandler,
    PodSecurityContext, PodSpec, Probe, SecurityContext, Volume, VolumeMount,
};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny};

/// A part of a k8s-openapi struct, read as k8s-openapi's generated code reads the whole: only
/// from a map (the error names `$expecting`, as k8s-openapi's does), each listed key into an
/// `Option` (`null` is `None`, a later duplicate wins), any other key skipped unbuilt.
macro_rules! lean_struct {
    ($(#[$doc:meta])* $name:ident as $expecting:literal {
        $($field:ident: $ty:ty = $key:literal,)*
    }) => {
        $(#[$doc])*
        #[derive(Debug, Default)]
        pub(crate) struct $name {
            $($field: Option<$ty>,)*
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                #[allow(non_camel_case_types)]
                enum Field {
                    $($field,)*
                    Other,
                }
                impl<'de> Deserialize<'de> for Field {
                    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                        struct K;
                        impl de::Visitor<'_> for K {
                            type Value = Field;
                            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                                f.write_str("field identifier")
                            }
                            fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
                                Ok(match v {
                                    $($key => Field::$field,)*
                                    _ => Field::Other,
                                })
                            }
                        }
                        d.deserialize_identifier(K)
                    }
                }
                struct V;
                impl<'de> de::Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<$name, A::Error> {
                        let mut out = $name::default();
                        while let Some(key) = map.next_key::<Field>()? {
                            match key {
                                $(Field::$field => out.$field = map.next_value()?,)*
                                Field::Other => {
                                    let _: IgnoredAny = map.next_value()?;
                                }
                            }
                        }
                        Ok(out)
                    }
                }
                d.deserialize_struct($expecting, &[$($key),*], V)
            }
        }
    };
}

lean_struct! {
    /// `EnvVar`: the rules read `name`, `value` and whether `valueFrom` is set.
    LeanEnvVar as "EnvVar" {
        name: String = "name",
        value: String = "value",
        value_from: IgnoredAny = "valueFrom",
    }
}

lean_struct! {
    /// `Probe`: the rules read its `exec.command`.
    LeanProbe as "Probe" {
        exec: ExecAction = "exec",
    }
}

lean_struct! {
    /// `Lifecycle`: the rules read the hooks' `exec.command`.
    LeanLifecycle as "Lifecycle" {
        post_start: LeanHandler = "postStart",
        pre_stop: LeanHandler = "preStop",
    }
}

lean_struct! {
    /// `LifecycleHandler`: its `exec`.
    LeanHandler as "LifecycleHandler" {
        exec: ExecAction = "exec",
    }
}

lean_struct! {
    /// `ContainerPort`: the rules read `hostPort` (and the port's index).
    LeanPort as "ContainerPort" {
        host_port: i32 = "hostPort",
    }
}

lean_struct! {
    /// `SecurityContext`: what says whether the container is privileged, adds capabilities
    /// or can write the hosts file (`hosts_file::cannot_write_hosts`).
    LeanSecurityContext as "SecurityContext" {
        allow_privilege_escalation: bool = "allowPrivilegeEscalation",
        capabilities: LeanCapabilities = "capabilities",
        privileged: bool = "privileged",
        run_as_non_root: bool = "runAsNonRoot",
        run_as_user: i64 = "runAsUser",
    }
}

lean_struct! {
    /// `Capabilities`: `add`.
    LeanCapabilities as "Capabilities" {
        add: Vec<String> = "add",
    }
}

lean_struct! {
    /// `PodSecurityContext`: the pod's defaults for `runAsNonRoot` and `runAsUser`.
    LeanPodSecurityContext as "PodSecurityContext" {
        run_as_non_root: bool = "runAsNonRoot",
        run_as_user: i64 = "runAsUser",
    }
}

lean_struct! {
    /// `VolumeMount` as the plan reads it: `mountPath` (does it mount over `/etc/hosts`?). The
    /// other fields are type-checked as k8s-openapi checks them, without being built.
    #[allow(dead_code)] // only `mount_path` is read
    PlanMount as "VolumeMount" {
        bind_mount_options: Vec<Text> = "bindMountOptions",
        mount_path: String = "mountPath",
        mount_propagation: Text = "mountPropagation",
        name: Text = "name",
        read_only: bool = "readOnly",
        recursive_read_only: Text = "recursiveReadOnly",
        sub_path: Text = "subPath",
        sub_path_expr: Text = "subPathExpr",
    }
}

/// A JSON string, checked as `String` checks it (same error) but not copied.
#[derive(Debug)]
pub(crate) struct Text;

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // `String`'s own words, so that errors read the same.
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Text, E> {
                Ok(Text)
            }
        }
        d.deserialize_str(V)
    }
}

impl From<PlanMount> for VolumeMount {
    fn from(m: PlanMount) -> VolumeMount {
        VolumeMount {
            mount_path: m.mount_path.unwrap_or_default(),
            ..VolumeMount::default()
        }
    }
}

impl From<LeanEnvVar> for EnvVar {
    fn from(e: LeanEnvVar) -> EnvVar {
        EnvVar {
            name: e.name.unwrap_or_default(),
            value: e.value,
            value_from: e.value_from.map(|_| EnvVarSource::default()),
        }
    }
}

impl From<LeanProbe> for Probe {
    fn from(p: LeanProbe) -> Probe {
        Probe {
            exec: p.exec,
            ..Probe::default()
        }
    }
}

impl From<LeanHandler> for LifecycleHandler {
    fn from(h: LeanHandler) -> LifecycleHandler {
        LifecycleHandler {
            exec: h.exec,
            ..LifecycleHandler::default()
        }
    }
}

impl From<LeanLifecycle> for Lifecycle {
    fn from(l: LeanLifecycle) -> Lifecycle {
        Lifecycle {
            post_start: l.post_start.map(LifecycleHandler::from),
            pre_stop: l.pre_stop.map(LifecycleHandler::from),
            ..Lifecycle::default()
        }
    }
}

impl From<LeanPort> for ContainerPort {
    fn from(p: LeanPort) -> ContainerPort {
        ContainerPort {
            host_port: p.host_port,
            ..ContainerPort::default()
        }
    }
}

impl From<LeanSecurityContext> for SecurityContext {
    fn from(s: LeanSecurityContext) -> SecurityContext {
        SecurityContext {
            allow_privilege_escalation: s.allow_privilege_escalation,
            capabilities: s.capabilities.map(|c| Capabilities {
                add: c.add,
                ..Capabilities::default()
            }),
            privileged: s.privileged,
            run_as_non_root: s.run_as_non_root,
            run_as_user: s.run_as_user,
            ..SecurityContext::default()
        }
    }
}

impl From<LeanPodSecurityContext> for PodSecurityContext {
    fn from(s: LeanPodSecurityContext) -> PodSecurityContext {
        PodSecurityContext {
            run_as_non_root: s.run_as_non_root,
            run_as_user: s.run_as_user,
            ..PodSecurityContext::default()
        }
    }
}

fn lean_vec<L, T: From<L>>(l: Option<Vec<L>>) -> Option<Vec<T>> {
    l.map(|l| l.into_iter().map(T::from).collect())
}

/// `PodSpec` without `affinity`, `dnsConfig`, `evictionResponders`, `imagePullSecrets`,
/// `nodeSelector`, `os`, `overhead`, `readinessGates`, `resourceClaims`, `resources`,
/// `schedulingGates`, `schedulingGroup`, `tolerations` and `topologySpreadConstraints`. The
/// strings no rule reads are skipped unbuilt (`IgnoredAny`, which keeps the duplicate check);
/// numbers and booleans no rule reads are still type-checked (they cost no allocation, and a
/// number out of range stays an error, as it is for a `serde_json::Value`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct LeanPodSpec {
    active_deadline_seconds: Option<i64>,
    automount_service_account_token: Option<bool>,
    #[serde(deserialize_with = "containers")]
    containers: Vec<LeanContainer>,
    dns_policy: Option<IgnoredAny>,
    enable_service_links: Option<bool>,
    ephemeral_containers: Option<Vec<EphemeralContainer>>,
    host_aliases: Option<Vec<HostAlias>>,
    #[serde(rename = "hostIPC")]
    host_ipc: Option<bool>,
    host_network: Option<bool>,
    #[serde(rename = "hostPID")]
    host_pid: Option<bool>,
    host_users: Option<bool>,
    hostname: Option<IgnoredAny>,
    hostname_override: Option<IgnoredAny>,
    init_containers: Option<Vec<LeanContainer>>,
    node_name: Option<IgnoredAny>,
    preemption_policy: Option<IgnoredAny>,
    priority: Option<i32>,
    priority_class_name: Option<IgnoredAny>,
    restart_policy: Option<IgnoredAny>,
    runtime_class_name: Option<IgnoredAny>,
    scheduler_name: Option<IgnoredAny>,
    security_context: Option<LeanPodSecurityContext>,
    service_account: Option<IgnoredAny>,
    service_account_name: Option<String>,
    #[serde(rename = "setHostnameAsFQDN")]
    set_hostname_as_fqdn: Option<bool>,
    share_process_namespace: Option<bool>,
    subdomain: Option<IgnoredAny>,
    termination_grace_period_seconds: Option<i64>,
    volumes: Option<Vec<LeanVolume>>,
}

/// `containers` is required in k8s-openapi (a missing list is an error there); `null` is an
/// empty list in both.
fn containers<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<LeanContainer>, D::Error> {
    Ok(Option::<Vec<LeanContainer>>::deserialize(d)?.unwrap_or_default())
}

/// `Container` without `resources`, `resizePolicy` and `restartPolicyRules`; the strings and
/// lists no rule reads are skipped unbuilt as in [`LeanPodSpec`], the structs the rules read
/// in part are read as far as they do.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct LeanContainer {
    args: Option<Vec<String>>,
    command: Option<Vec<String>>,
    env: Option<Vec<LeanEnvVar>>,
    /// Only whether it is empty is read.
    env_from: Option<Vec<IgnoredAny>>,
    image: Option<String>,
    image_pull_policy: Option<String>,
    lifecycle: Option<LeanLifecycle>,
    liveness_probe: Option<LeanProbe>,
    name: String,
    ports: Option<Vec<LeanPort>>,
    readiness_probe: Option<LeanProbe>,
    restart_policy: Option<IgnoredAny>,
    security_context: Option<LeanSecurityContext>,
    startup_probe: Option<LeanProbe>,
    stdin: Option<bool>,
    stdin_once: Option<bool>,
    termination_message_path: Option<String>,
    termination_message_policy: Option<IgnoredAny>,
    tty: Option<bool>,
    volume_devices: Option<IgnoredAny>,
    volume_mounts: Option<Vec<VolumeMount>>,
    working_dir: Option<String>,
}

/// A `Volume` with its name and `hostPath`; every other source is skipped.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct LeanVolume {
    name: String,
    host_path: Option<HostPathVolumeSource>,
}

/// What the mutation plan and the policy match read of a `PodSpec` (`Scope::Plan`): the
/// containers' names, images, pull policies and what says whether they mount over
/// `/etc/hosts` (`hosts_file::mounts_over_hosts`), the ephemeral containers (whole, as above),
/// `hostAliases` and `serviceAccountName` (exemptions). Nothing else is built.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct PlanPodSpec {
    #[serde(deserialize_with = "plan_containers")]
    containers: Vec<PlanContainer>,
    ephemeral_containers: Option<Vec<EphemeralContainer>>,
    host_aliases: Option<Vec<HostAlias>>,
    init_containers: Option<Vec<PlanContainer>>,
    service_account_name: Option<String>,
}

/// As `containers`, for the plan's decode.
fn plan_containers<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<PlanContainer>, D::Error> {
    Ok(Option::<Vec<PlanContainer>>::deserialize(d)?.unwrap_or_default())
}

/// A `Container` with what the plan reads (of its mounts, the paths).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct PlanContainer {
    image: Option<String>,
    image_pull_policy: Option<String>,
    name: String,
    termination_message_path: Option<String>,
    volume_mounts: Option<Vec<PlanMount>>,
}

impl From<PlanContainer> for Container {
    fn from(c: PlanContainer) -> Container {
        Container {
            image: c.image,
            image_pull_policy: c.image_pull_policy,
            name: c.name,
            termination_message_path: c.termination_message_path,
            volume_mounts: lean_vec(c.volume_mounts),
            ..Container::default()
        }
    }
}

impl From<PlanPodSpec> for PodSpec {
    fn from(s: PlanPodSpec) -> PodSpec {
        PodSpec {
            containers: s.containers.into_iter().map(Container::from).collect(),
            ephemeral_containers: s.ephemeral_containers,
            host_aliases: s.host_aliases,
            init_containers: s
                .init_containers
                .map(|l| l.into_iter().map(Container::from).collect()),
            service_account_name: s.service_account_name,
            ..PodSpec::default()
        }
    }
}

impl From<LeanContainer> for Container {
    fn from(c: LeanContainer) -> Container {
        Container {
            args: c.args,
            command: c.command,
            env: lean_vec(c.env),
            env_from: c.env_from.map(|l| vec![EnvFromSource::default(); l.len()]),
            image: c.image,
            image_pull_policy: c.image_pull_policy,
            lifecycle: c.lifecycle.map(Lifecycle::from),
            liveness_probe: c.liveness_probe.map(Probe::from),
            name: c.name,
            ports: lean_vec(c.ports),
            readiness_probe: c.readiness_probe.map(Probe::from),
            security_context: c.security_context.map(SecurityContext::from),
            startup_probe: c.startup_probe.map(Probe::from),
            termination_message_path: c.termination_message_path,
            volume_mounts: c.volume_mounts,
            working_dir: c.working_dir,
            ..Container::default()
        }
    }
}

impl From<LeanPodSpec> for PodSpec {
    fn from(s: LeanPodSpec) -> PodSpec {
        PodSpec {
            containers: s.containers.into_iter().map(Container::from).collect(),
            ephemeral_containers: s.ephemeral_containers,
            host_aliases: s.host_aliases,
            host_ipc: s.host_ipc,
            host_network: s.host_network,
            host_pid: s.host_pid,
            init_containers: lean_vec(s.init_containers),
            security_context: s.security_context.map(PodSecurityContext::from),
            service_account_name: s.service_account_name,
            share_process_namespace: s.share_process_namespace,
            volumes: s.volumes.map(|l| {
                l.into_iter()
                    .map(|v| Volume {
                        name: v.name,
                        host_path: v.host_path,
                        ..Volume::default()
                    })
                    .collect()
            }),
            ..PodSpec::default()
        }
    }
}

/// What the lean decode keeps of a fully decoded spec: the reference's value with the skipped
/// fields cleared, for the equivalence tests.
pub fn kept(spec: &PodSpec) -> PodSpec {
    let handler = |h: &LifecycleHandler| LifecycleHandler {
        exec: h.exec.clone(),
        ..LifecycleHandler::default()
    };
    let probe = |p: &Probe| Probe {
        exec: p.exec.clone(),
        ..Probe::default()
    };
    let lean_container = |c: &Container| Container {
        args: c.args.clone(),
        command: c.command.clone(),
        env: c.env.as_ref().map(|l| {
            l.iter()
                .map(|e| EnvVar {
                    name: e.name.clone(),
                    value: e.value.clone(),
                    value_from: e.value_from.as_ref().map(|_| EnvVarSource::default()),
                })
                .collect()
        }),
        env_from: c
            .env_from
            .as_ref()
            .map(|l| vec![EnvFromSource::default(); l.len()]),
        image: c.image.clone(),
        image_pull_policy: c.image_pull_policy.clone(),
        lifecycle: c.lifecycle.as_ref().map(|l| Lifecycle {
            post_start: l.post_start.as_ref().map(handler),
            pre_stop: l.pre_stop.as_ref().map(handler),
            ..Lifecycle::default()
        }),
        liveness_probe: c.liveness_probe.as_ref().map(probe),
        name: c.name.clone(),
        ports: c.ports.as_ref().map(|l| {
            l.iter()
                .map(|p| ContainerPort {
                    host_port: p.host_port,
                    ..ContainerPort::default()
                })
                .collect()
        }),
        readiness_probe: c.readiness_probe.as_ref().map(probe),
        security_context: c.security_context.as_ref().map(|s| SecurityContext {
            allow_privilege_escalation: s.allow_privilege_escalation,
            capabilities: s.capabilities.as_ref().map(|c| Capabilities {
                add: c.add.clone(),
                ..Capabilities::default()
            }),
            privileged: s.privileged,
            run_as_non_root: s.run_as_non_root,
            run_as_user: s.run_as_user,
            ..SecurityContext::default()
        }),
        startup_probe: c.startup_probe.as_ref().map(probe),
        termination_message_path: c.termination_message_path.clone(),
        volume_mounts: c.volume_mounts.clone(),
        working_dir: c.working_dir.clone(),
        ..Container::default()
    };
    PodSpec {
        containers: spec.containers.iter().map(lean_container).collect(),
        ephemeral_containers: spec.ephemeral_containers.clone(),
        host_aliases: spec.host_aliases.clone(),
        host_ipc: spec.host_ipc,
        host_network: spec.host_network,
        host_pid: spec.host_pid,
        init_containers: spec
            .init_containers
            .as_ref()
            .map(|l| l.iter().map(lean_container).collect()),
        security_context: spec.security_context.as_ref().map(|s| PodSecurityContext {
            run_as_non_root: s.run_as_non_root,
            run_as_user: s.run_as_user,
            ..PodSecurityContext::default()
        }),
        service_account_name: spec.service_account_name.clone(),
        share_process_namespace: spec.share_process_namespace,
        volumes: spec.volumes.as_ref().map(|l| {
            l.iter()
                .map(|v| Volume {
                    name: v.name.clone(),
                    host_path: v.host_path.clone(),
                    ..Volume::default()
                })
                .collect()
        }),
        ..PodSpec::default()
    }
}

/// What the plan's decode keeps of a fully decoded spec (see [`PlanPodSpec`]), for the
/// equivalence tests.
pub fn planned(spec: &PodSpec) -> PodSpec {
    let plan_container = |c: &Container| Container {
        image: c.image.clone(),
        image_pull_policy: c.image_pull_policy.clone(),
        name: c.name.clone(),
        termination_message_path: c.termination_message_path.clone(),
        volume_mounts: c.volume_mounts.as_ref().map(|l| {
            l.iter()
                .map(|m| VolumeMount {
                    mount_path: m.mount_path.clone(),
                    ..VolumeMount::default()
                })
                .collect()
        }),
        ..Container::default()
    };
    PodSpec {
        containers: spec.containers.iter().map(plan_container).collect(),
        ephemeral_containers: spec.ephemeral_containers.clone(),
        host_aliases: spec.host_aliases.clone(),
        init_containers: spec
            .init_containers
            .as_ref()
            .map(|l| l.iter().map(plan_container).collect()),
        service_account_name: spec.service_account_name.clone(),
        ..PodSpec::default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::kept;
    use crate::workload::{Kind, Source, read, read_reference};

    fn pod(container: serde_json::Value) -> serde_json::Value {
        json!({"spec": {"containers": [container], "securityContext": {"runAsUser": 5, "fsGroup": 7}}})
    }

    /// The partly read structs read as k8s-openapi reads them: `null` is unset, a later
    /// duplicate wins, unknown keys are skipped; a value that is not a map is refused with
    /// k8s-openapi's words.
    #[test]
    fn partly_read_structs_read_as_k8s_openapi_reads_them() {
        let same = [
            json!({"name": "c", "env": [
                {"name": "A", "value": "1", "value": "2"},
                {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "x"}}, "valueFrom": null},
                {"name": "C", "valueFrom": {}},
                {"value": "no name", "x": [1, {"y": null}]}
            ]}),
            json!({"name": "c", "livenessProbe": {"httpGet": {"port": 1}, "exec": {"command": ["a"]}},
                   "readinessProbe": {"exec": null}, "startupProbe": {},
                   "lifecycle": {"postStart": {"exec": {"command": ["b"]}, "sleep": {"seconds": 1}},
                                 "preStop": null, "stopSignal": "SIGTERM"}}),
            json!({"name": "c", "ports": [{"containerPort": 1, "hostPort": 2, "hostPort": 0}, {"containerPort": 3}],
                   "securityContext": {"capabilities": {"add": ["X"], "drop": ["ALL"], "add": ["Y"]},
                                       "privileged": false, "runAsUser": 0, "seccompProfile": {"type": "x"}},
                   "envFrom": [{"configMapRef": {"name": "a"}}, {}], "stdin": true, "tty": false}),
        ];
        for container in same {
            let object = pod(container);
            let lean = read(Kind::Pod, Source::Value(&object)).unwrap_or_else(|e| panic!("{e}"));
            let reference = read_reference(Kind::Pod, &object).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(lean.spec, kept(&reference.spec), "{object}");
            assert_eq!(lean.spec, kept(&lean.spec), "{object}");
        }
        for container in [
            json!({"name": "c", "env": [1]}),
            json!({"name": "c", "livenessProbe": []}),
            json!({"name": "c", "lifecycle": {"preStop": "x"}}),
            json!({"name": "c", "ports": [true]}),
            json!({"name": "c", "securityContext": {"capabilities": {"add": "X"}}}),
            json!({"name": "c", "env": [{"name": 1}]}),
        ] {
            let object = pod(container);
            let lean = read(Kind::Pod, Source::Value(&object)).map(|_| ());
            let reference = read_reference(Kind::Pod, &object).map(|_| ());
            assert!(lean.is_err(), "{object}");
            assert_eq!(lean, reference, "{object}");
        }
    }

    /// The plan's mounts keep the path, and refuse what k8s-openapi refuses with its words.
    #[test]
    fn plan_mounts_read_as_k8s_openapi_reads_them() {
        use crate::workload::{Scope, read_scoped};
        let plan =
            |object: &serde_json::Value| read_scoped(Kind::Pod, Source::Value(object), Scope::Plan);
        let mounts = |m: serde_json::Value| json!({"spec": {"containers": [{"name": "c", "volumeMounts": m}]}});
        for m in [
            json!([{"name": "a", "mountPath": "/etc/hosts", "readOnly": true, "subPath": "x",
                    "mountPath": "/etc/other", "bindMountOptions": ["rbind"], "extra": {"y": 1}}]),
            json!([{"mountPath": null, "name": null, "readOnly": null}, {}]),
            json!([{"name": "a", "mountPath": "/x", "mountPropagation": "None",
                    "recursiveReadOnly": "Disabled", "subPathExpr": "$(X)"}]),
            json!(null),
            json!([]),
        ] {
            let object = mounts(m);
            let reference = read_reference(Kind::Pod, &object).unwrap_or_else(|e| panic!("{e}"));
            let planned = plan(&object).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(planned.spec, super::planned(&reference.spec), "{object}");
        }
        for m in [
            json!([{"name": 5}]),
            json!([{"mountPath": ["/x"]}]),
            json!([{"readOnly": "yes"}]),
            json!([{"subPath": {}}]),
            json!([{"bindMountOptions": [1]}]),
            json!([{"bindMountOptions": "x"}]),
            json!([[]]),
            json!(["x"]),
            json!({}),
        ] {
            let object = mounts(m);
            let reference = read_reference(Kind::Pod, &object).map(|_| ());
            assert!(reference.is_err(), "{object}");
            assert_eq!(plan(&object).map(|_| ()), reference, "{object}");
        }
    }

    /// A skipped field of the container or the pod spec is still refused when it repeats.
    #[test]
    fn skipped_fields_keep_the_duplicate_check() {
        // Written as text: a `Value` keeps only the last of duplicate keys.
        let text =
            r#"{"spec":{"containers":[{"name":"c","volumeDevices":[],"volumeDevices":[]}]}}"#;
        let e = read(Kind::Pod, Source::Raw(text))
            .err()
            .map(|e| e.to_string());
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("duplicate field `volumeDevices`")),
            "{e:?}"
        );
        let text = r#"{"spec":{"containers":[],"dnsPolicy":"A","dnsPolicy":"B"}}"#;
        let e = read(Kind::Pod, Source::Raw(text))
            .err()
            .map(|e| e.to_string());
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("duplicate field `dnsPolicy`")),
            "{e:?}"
        );
    }
}
