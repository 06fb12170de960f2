//! The policy file format: serde types that mirror `policies/*.yaml` exactly.
//!
//! These types only describe the YAML; they carry source locations (`Spanned`) so that the
//! loader can point at the line of a bad value. Nothing here checks meaning: `loader` turns a
//! `PolicyDoc` into a validated `Policy` and collects every error it finds.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_saphyr::Spanned;

use super::{Action, OnConflict, Operator, PullPolicy};

/// One YAML document of a policy file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct PolicyDoc {
    /// Must be `podgate.dev/v1alpha1`.
    pub api_version: Spanned<String>,
    /// Must be `PodPolicy`.
    pub kind: Spanned<String>,
    /// The policy's name and optional labels and annotations.
    pub metadata: MetadataDoc,
    /// What the policy matches, validates and mutates.
    pub spec: SpecDoc,
}

/// `metadata` of a policy document.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct MetadataDoc {
    /// Unique in the policy set; a DNS-1123 subdomain of at most 63 characters, because it
    /// becomes an audit-annotation key.
    pub name: Spanned<String>,
    /// Free-form labels, kept for tooling; podgate does not read them.
    #[serde(default)]
    #[allow(dead_code)]
    pub labels: BTreeMap<String, String>,
    /// Free-form annotations, kept for tooling; podgate does not read them.
    #[serde(default)]
    #[allow(dead_code)]
    pub annotations: BTreeMap<String, String>,
}

/// `spec` of a policy document.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct SpecDoc {
    /// What happens to a violation: `Enforce` (deny; default), `Warn` (admission warning) or
    /// `Audit` (audit annotation and log only; no patch either).
    #[serde(default)]
    pub action: Option<Action>,
    /// Human description, for the people who read the policy file; podgate does not use it.
    #[serde(default)]
    #[allow(dead_code)]
    pub description: Option<String>,
    /// Which objects the policy applies to; every given criterion must hold.
    #[serde(default, rename = "match")]
    pub match_: Option<MatchDoc>,
    /// Objects matching any entry are exempt from this policy.
    #[serde(default)]
    pub exemptions: Vec<Spanned<ExemptionDoc>>,
    /// Validation rules; a present key turns its rule on.
    #[serde(default)]
    pub validate: Option<ValidateDoc>,
    /// Mutations; a present key turns its mutation on.
    #[serde(default)]
    pub mutate: Option<MutateDoc>,
}

/// `spec.match`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct MatchDoc {
    /// Namespace globs (`team-*`); empty or absent means every namespace.
    #[serde(default)]
    pub namespaces: Vec<Spanned<String>>,
    /// Namespace globs that never match, even when `namespaces` does.
    #[serde(default)]
    pub exclude_namespaces: Vec<Spanned<String>>,
    /// A metav1.LabelSelector over the Pod's labels (or the pod template's labels).
    #[serde(default)]
    pub pod_selector: Option<Spanned<SelectorDoc>>,
}

/// A metav1.LabelSelector.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct SelectorDoc {
    /// Labels that must be present with exactly these values.
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    /// Set-based requirements.
    #[serde(default)]
    pub match_expressions: Vec<ExpressionDoc>,
}

/// One `matchExpressions` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ExpressionDoc {
    /// The label key.
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: Operator,
    /// Values for `In` / `NotIn` (non-empty); must be empty for `Exists` / `DoesNotExist`.
    #[serde(default)]
    pub values: Vec<String>,
}

/// One `spec.exemptions` entry. Every given criterion must hold; at least one is required.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ExemptionDoc {
    /// `namespace:name` of the Pod's service account; globs allowed in both parts.
    #[serde(default)]
    pub service_accounts: Vec<Spanned<String>>,
    /// Namespace globs.
    #[serde(default)]
    pub namespaces: Vec<Spanned<String>>,
    /// `request.userInfo.username` globs.
    #[serde(default)]
    pub usernames: Vec<Spanned<String>>,
    /// `request.userInfo.groups` globs; any group of the user may match.
    #[serde(default)]
    pub groups: Vec<Spanned<String>>,
    /// A label selector over the Pod (or template) labels.
    #[serde(default)]
    pub pod_selector: Option<Spanned<SelectorDoc>>,
    /// UTC date (`YYYY-MM-DD`); the exemption applies through the end of that day.
    #[serde(default)]
    pub expires: Option<Spanned<String>>,
    /// Why the exemption exists; required and non-empty.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `spec.validate`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ValidateDoc {
    /// Deny direct edits of `/etc/hosts`. Present (even as `{}` or empty) turns it on.
    #[serde(default, deserialize_with = "present")]
    pub hosts_file: Option<HostsFileDoc>,
    /// Deny unsafe combinations of host namespaces, privileged containers and capabilities.
    #[serde(default)]
    pub host_namespaces: Option<HostNamespacesDoc>,
}

/// `spec.validate.hostsFile`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct HostsFileDoc {
    /// What happens when the command analysis cannot decide whether a container writes
    /// `/etc/hosts` (dynamic `eval`, generated scripts, a write target it cannot resolve, a
    /// limit reached): `Allow`, `Warn` (default) or `Deny` (the policy's action applies).
    /// Containers that run as non-root without privilege escalation never get such findings.
    #[serde(default)]
    pub undecidable: Option<crate::policy::Undecidable>,
    /// Kubelet root directories (`--root-dir`) besides the ones podgate knows
    /// (`/var/lib/kubelet`, k0s', microk8s', early k3s'): a writable hostPath that reaches
    /// `<root>/pods/<uid>/etc-hosts` is reported like one under `/var/lib/kubelet`.
    #[serde(default)]
    pub kubelet_root_dirs: Vec<Spanned<String>>,
}

/// `spec.validate.hostNamespaces`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct HostNamespacesDoc {
    /// Each entry lists atoms that must not all be present in one Pod: `hostNetwork`,
    /// `hostPID`, `hostIPC`, `shareProcessNamespace`, `privileged`, `hostPort`,
    /// `capability:<NAME>`.
    pub forbidden_combinations: Vec<Spanned<Vec<Spanned<String>>>>,
}

/// `spec.mutate`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct MutateDoc {
    /// Also patch workload pod templates (default false: only Pods are patched).
    #[serde(default)]
    pub templates: bool,
    /// Set `imagePullPolicy` for images whose tag is mutable.
    #[serde(default)]
    pub image_pull_policy: Option<Spanned<ImagePullPolicyDoc>>,
    /// Merge `hostAliases` entries into the Pod.
    #[serde(default)]
    pub host_aliases: Option<Spanned<HostAliasesDoc>>,
}

/// `spec.mutate.imagePullPolicy`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ImagePullPolicyDoc {
    /// Tags treated as mutable (default `[latest]`); an untagged image counts as `latest`.
    #[serde(default)]
    pub mutable_tags: Option<Vec<Spanned<String>>>,
    /// The policy to set (default `Always`).
    #[serde(default)]
    pub set: Option<PullPolicy>,
    /// Existing values that are replaced (default `[IfNotPresent]`); others are kept.
    #[serde(default)]
    pub replace: Option<Vec<PullPolicy>>,
}

/// `spec.mutate.hostAliases`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct HostAliasesDoc {
    /// Entries merged into `spec.hostAliases` by IP.
    pub entries: Vec<HostAliasDoc>,
    /// What to do when the Pod already maps one of the hostnames to another IP.
    #[serde(default)]
    pub on_conflict: Option<OnConflict>,
}

/// One `hostAliases` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct HostAliasDoc {
    /// An IPv4 or IPv6 address.
    pub ip: Spanned<String>,
    /// DNS-1123 subdomains.
    pub hostnames: Vec<Spanned<String>>,
}

/// Maps a present key to `Some`, even when its value is null (`hostsFile:`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Some(
        Option::<T>::deserialize(deserializer)?.unwrap_or_default(),
    ))
}
