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
//! What changes for a caller: a Pod whose skipped fields (or `status`) are mistyped is read
//! rather than refused; kube-apiserver never sends such a Pod.

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvFromSource, EnvVar, EphemeralContainer, HostAlias,
    HostPathVolumeSource, Lifecycle, PodSecurityContext, PodSpec, Probe, SecurityContext, Volume,
    VolumeDevice, VolumeMount,
};
use serde::Deserialize;

/// `PodSpec` without `affinity`, `dnsConfig`, `evictionResponders`, `imagePullSecrets`,
/// `nodeSelector`, `os`, `overhead`, `readinessGates`, `resourceClaims`, `resources`,
/// `schedulingGates`, `schedulingGroup`, `tolerations` and `topologySpreadConstraints`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct LeanPodSpec {
    active_deadline_seconds: Option<i64>,
    automount_service_account_token: Option<bool>,
    #[serde(deserialize_with = "containers")]
    containers: Vec<LeanContainer>,
    dns_policy: Option<String>,
    enable_service_links: Option<bool>,
    ephemeral_containers: Option<Vec<EphemeralContainer>>,
    host_aliases: Option<Vec<HostAlias>>,
    #[serde(rename = "hostIPC")]
    host_ipc: Option<bool>,
    host_network: Option<bool>,
    #[serde(rename = "hostPID")]
    host_pid: Option<bool>,
    host_users: Option<bool>,
    hostname: Option<String>,
    hostname_override: Option<String>,
    init_containers: Option<Vec<LeanContainer>>,
    node_name: Option<String>,
    preemption_policy: Option<String>,
    priority: Option<i32>,
    priority_class_name: Option<String>,
    restart_policy: Option<String>,
    runtime_class_name: Option<String>,
    scheduler_name: Option<String>,
    security_context: Option<PodSecurityContext>,
    service_account: Option<String>,
    service_account_name: Option<String>,
    #[serde(rename = "setHostnameAsFQDN")]
    set_hostname_as_fqdn: Option<bool>,
    share_process_namespace: Option<bool>,
    subdomain: Option<String>,
    termination_grace_period_seconds: Option<i64>,
    volumes: Option<Vec<LeanVolume>>,
}

/// `containers` is required in k8s-openapi (a missing list is an error there); `null` is an
/// empty list in both.
fn containers<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<LeanContainer>, D::Error> {
    Ok(Option::<Vec<LeanContainer>>::deserialize(d)?.unwrap_or_default())
}

/// `Container` without `resources`, `resizePolicy` and `restartPolicyRules`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct LeanContainer {
    args: Option<Vec<String>>,
    command: Option<Vec<String>>,
    env: Option<Vec<EnvVar>>,
    env_from: Option<Vec<EnvFromSource>>,
    image: Option<String>,
    image_pull_policy: Option<String>,
    lifecycle: Option<Lifecycle>,
    liveness_probe: Option<Probe>,
    name: String,
    ports: Option<Vec<ContainerPort>>,
    readiness_probe: Option<Probe>,
    restart_policy: Option<String>,
    security_context: Option<SecurityContext>,
    startup_probe: Option<Probe>,
    stdin: Option<bool>,
    stdin_once: Option<bool>,
    termination_message_path: Option<String>,
    termination_message_policy: Option<String>,
    tty: Option<bool>,
    volume_devices: Option<Vec<VolumeDevice>>,
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

/// A `Container` with what the plan reads.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct PlanContainer {
    image: Option<String>,
    image_pull_policy: Option<String>,
    name: String,
    termination_message_path: Option<String>,
    volume_mounts: Option<Vec<VolumeMount>>,
}

impl From<PlanContainer> for Container {
    fn from(c: PlanContainer) -> Container {
        Container {
            image: c.image,
            image_pull_policy: c.image_pull_policy,
            name: c.name,
            termination_message_path: c.termination_message_path,
            volume_mounts: c.volume_mounts,
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
            env: c.env,
            env_from: c.env_from,
            image: c.image,
            image_pull_policy: c.image_pull_policy,
            lifecycle: c.lifecycle,
            liveness_probe: c.liveness_probe,
            name: c.name,
            ports: c.ports,
            readiness_probe: c.readiness_probe,
            restart_policy: c.restart_policy,
            security_context: c.security_context,
            startup_probe: c.startup_probe,
            stdin: c.stdin,
            stdin_once: c.stdin_once,
            termination_message_path: c.termination_message_path,
            termination_message_policy: c.termination_message_policy,
            tty: c.tty,
            volume_devices: c.volume_devices,
            volume_mounts: c.volume_mounts,
            working_dir: c.working_dir,
            ..Container::default()
        }
    }
}

impl From<LeanPodSpec> for PodSpec {
    fn from(s: LeanPodSpec) -> PodSpec {
        PodSpec {
            active_deadline_seconds: s.active_deadline_seconds,
            automount_service_account_token: s.automount_service_account_token,
            containers: s.containers.into_iter().map(Container::from).collect(),
            dns_policy: s.dns_policy,
            enable_service_links: s.enable_service_links,
            ephemeral_containers: s.ephemeral_containers,
            host_aliases: s.host_aliases,
            host_ipc: s.host_ipc,
            host_network: s.host_network,
            host_pid: s.host_pid,
            host_users: s.host_users,
            hostname: s.hostname,
            hostname_override: s.hostname_override,
            init_containers: s
                .init_containers
                .map(|l| l.into_iter().map(Container::from).collect()),
            node_name: s.node_name,
            preemption_policy: s.preemption_policy,
            priority: s.priority,
            priority_class_name: s.priority_class_name,
            restart_policy: s.restart_policy,
            runtime_class_name: s.runtime_class_name,
            scheduler_name: s.scheduler_name,
            security_context: s.security_context,
            service_account: s.service_account,
            service_account_name: s.service_account_name,
            set_hostname_as_fqdn: s.set_hostname_as_fqdn,
            share_process_namespace: s.share_process_namespace,
            subdomain: s.subdomain,
            termination_grace_period_seconds: s.termination_grace_period_seconds,
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
    let lean_container = |c: &Container| Container {
        resources: None,
        resize_policy: None,
        restart_policy_rules: None,
        ..c.clone()
    };
    PodSpec {
        affinity: None,
        dns_config: None,
        eviction_responders: None,
        image_pull_secrets: None,
        node_selector: None,
        os: None,
        overhead: None,
        readiness_gates: None,
        resource_claims: None,
        resources: None,
        scheduling_gates: None,
        scheduling_group: None,
        tolerations: None,
        topology_spread_constraints: None,
        containers: spec.containers.iter().map(lean_container).collect(),
        init_containers: spec
            .init_containers
            .as_ref()
            .map(|l| l.iter().map(lean_container).collect()),
        volumes: spec.volumes.as_ref().map(|l| {
            l.iter()
                .map(|v| Volume {
                    name: v.name.clone(),
                    host_path: v.host_path.clone(),
                    ..Volume::default()
                })
                .collect()
        }),
        ..spec.clone()
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
        volume_mounts: c.volume_mounts.clone(),
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
