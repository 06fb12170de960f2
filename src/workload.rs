//! Where the pod spec lives: in a Pod, or in the pod template of a workload.
//!
//! Deployment, ReplicaSet, StatefulSet, DaemonSet, Job and ReplicationController keep it at
//! `spec.template.spec`, CronJob at `spec.jobTemplate.spec.template.spec`. Matching uses the
//! template's labels and the workload's namespace.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetSpec, DaemonSetStatus, Deployment, DeploymentSpec, DeploymentStatus,
    ReplicaSet, ReplicaSetSpec, ReplicaSetStatus, StatefulSet, StatefulSetSpec, StatefulSetStatus,
};
use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, CronJobStatus, Job, JobSpec, JobStatus};
use k8s_openapi::api::core::v1::{
    Pod, PodSpec, PodTemplateSpec, ReplicationController, ReplicationControllerSpec,
    ReplicationControllerStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use json_patch::jsonptr::PointerBuf;

use self::object::Object;
use crate::lean::{LeanPodSpec, PlanPodSpec};

/// The kinds that hold a pod spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// core/v1 Pod.
    Pod,
    /// apps/v1 Deployment.
    Deployment,
    /// apps/v1 ReplicaSet.
    ReplicaSet,
    /// apps/v1 StatefulSet.
    StatefulSet,
    /// apps/v1 DaemonSet.
    DaemonSet,
    /// batch/v1 Job.
    Job,
    /// batch/v1 CronJob.
    CronJob,
    /// core/v1 ReplicationController.
    ReplicationController,
}

/// Where the pod spec lives in the object, as a JSON pointer and as a field path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecLocation {
    /// JSON-pointer tokens of the pod spec (`["spec"]`, `["spec", "template", "spec"]`).
    pub pointer: &'static [&'static str],
    /// Field path of the pod spec (`spec`, `spec.template.spec`).
    pub path: &'static str,
}

impl SpecLocation {
    /// A Pod's own spec.
    pub(crate) const POD: SpecLocation = SpecLocation {
        pointer: &["spec"],
        path: "spec",
    };

    /// A JSON pointer below the pod spec.
    pub(crate) fn pointer_to(&self, tokens: &[&str]) -> PointerBuf {
        let all = self.pointer.iter().chain(tokens);
        // Sized once (a token may grow when escaped, rarely): `from_tokens` grows as it goes.
        let capacity = all.clone().map(|t| t.len() + 1).sum();
        let mut pointer = PointerBuf::parse(String::with_capacity(capacity)).unwrap_or_default();
        for t in all {
            pointer.push_back(*t);
        }
        pointer
    }
}

const TEMPLATE: SpecLocation = SpecLocation {
    pointer: &["spec", "template", "spec"],
    path: "spec.template.spec",
};
const CRONJOB_TEMPLATE: SpecLocation = SpecLocation {
    pointer: &["spec", "jobTemplate", "spec", "template", "spec"],
    path: "spec.jobTemplate.spec.template.spec",
};

impl Kind {
    /// The kind for an API group and kind name; `None` for kinds without a pod spec.
    pub fn from_group_kind(group: &str, kind: &str) -> Option<Kind> {
        Some(match (group, kind) {
            ("", "Pod") => Kind::Pod,
            ("", "ReplicationController") => Kind::ReplicationController,
            ("apps", "Deployment") => Kind::Deployment,
            ("apps", "ReplicaSet") => Kind::ReplicaSet,
            ("apps", "StatefulSet") => Kind::StatefulSet,
            ("apps", "DaemonSet") => Kind::DaemonSet,
            ("batch", "Job") => Kind::Job,
            ("batch", "CronJob") => Kind::CronJob,
            _ => return None,
        })
    }

    /// Where the pod spec lives in this kind.
    pub fn location(self) -> SpecLocation {
        match self {
            Kind::Pod => SpecLocation::POD,
            Kind::CronJob => CRONJOB_TEMPLATE,
            _ => TEMPLATE,
        }
    }

    /// The kind's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pod => "Pod",
            Kind::Deployment => "Deployment",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::StatefulSet => "StatefulSet",
            Kind::DaemonSet => "DaemonSet",
            Kind::Job => "Job",
            Kind::CronJob => "CronJob",
            Kind::ReplicationController => "ReplicationController",
        }
    }
}

/// What an object's `apiVersion` and `kind` mean for evaluating its pod spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKind {
    /// A kind with a pod spec, in the version the apiserver serves.
    Served(Kind),
    /// A kind with a pod spec, in a group version the apiserver no longer serves. Its pod spec
    /// has the same shape, so it is read as the served version ([`upgrade_deprecated`]).
    Deprecated(Deprecated),
    /// A kind with a pod spec (by group and name) in a version podgate does not know.
    UnknownVersion(Kind),
    /// No `apiVersion` or no `kind`.
    Untyped,
    /// Any other kind: it holds no pod spec podgate knows of.
    NoPodSpec,
}

/// A removed group version of a workload kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deprecated {
    /// The kind.
    pub kind: Kind,
    /// The group version the object names.
    pub api_version: &'static str,
    /// The group version that replaced it, which the object is read as.
    pub served: &'static str,
    /// The Kubernetes release that stopped serving it.
    pub removed_in: &'static str,
}

impl Deprecated {
    /// The note `check` prints.
    pub fn note(&self) -> String {
        format!(
            "{} {} is no longer served (removed in Kubernetes {}); evaluated as {}",
            self.api_version,
            self.kind.as_str(),
            self.removed_in,
            self.served
        )
    }
}

/// Group versions that served workload kinds and were removed; their pod templates are
/// `core/v1` pod specs like today's (Kubernetes 1.16 and 1.25 release notes; the 1.21 removal
/// of batch/v2alpha1).
const DEPRECATED: &[(&str, &str, &str, &[Kind])] = &[
    (
        "extensions/v1beta1",
        "apps/v1",
        "1.16",
        &[Kind::Deployment, Kind::DaemonSet, Kind::ReplicaSet],
    ),
    (
        "apps/v1beta1",
        "apps/v1",
        "1.16",
        &[Kind::Deployment, Kind::StatefulSet],
    ),
    (
        "apps/v1beta2",
        "apps/v1",
        "1.16",
        &[
            Kind::Deployment,
            Kind::StatefulSet,
            Kind::DaemonSet,
            Kind::ReplicaSet,
        ],
    ),
    ("batch/v1beta1", "batch/v1", "1.25", &[Kind::CronJob]),
    ("batch/v2alpha1", "batch/v1", "1.21", &[Kind::CronJob]),
];

/// Resolves an object's `apiVersion` and `kind`.
pub fn resolve(api_version: &str, kind: &str) -> ApiKind {
    if api_version.is_empty() || kind.is_empty() {
        return ApiKind::Untyped;
    }
    for &(old, served, removed_in, kinds) in DEPRECATED {
        if old == api_version
            && let Some(&k) = kinds.iter().find(|k| k.as_str() == kind)
        {
            return ApiKind::Deprecated(Deprecated {
                kind: k,
                api_version: old,
                served,
                removed_in,
            });
        }
    }
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    // `extensions` workloads in a version that never existed are still workloads.
    let lookup_group = if group == "extensions" { "apps" } else { group };
    let Some(k) = Kind::from_group_kind(lookup_group, kind) else {
        return ApiKind::NoPodSpec;
    };
    if group == lookup_group && version == "v1" {
        ApiKind::Served(k)
    } else {
        ApiKind::UnknownVersion(k)
    }
}

/// A copy of an object in a removed group version, made readable as the served one: the
/// `apiVersion` is replaced, and a missing `spec.selector` is filled from the pod template's
/// labels, as `extensions/v1beta1` and `apps/v1beta1` defaulted it (`apps/v1` requires it).
pub(crate) fn upgrade_deprecated(
    object: &serde_json::Value,
    deprecated: &Deprecated,
) -> serde_json::Value {
    let mut copy = object.clone();
    if let Some(map) = copy.as_object_mut() {
        map.insert("apiVersion".into(), deprecated.served.into());
    }
    if deprecated.kind != Kind::CronJob
        && let Some(spec) = copy.get_mut("spec").and_then(|s| s.as_object_mut())
        && !spec.contains_key("selector")
    {
        let labels = spec
            .get("template")
            .and_then(|t| t.get("metadata"))
            .and_then(|m| m.get("labels"))
            .cloned();
        if let Some(labels) = labels {
            spec.insert(
                "selector".into(),
                serde_json::json!({ "matchLabels": labels }),
            );
        }
    }
    copy
}

/// An object's pod spec with what matching needs.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The object's kind.
    pub kind: Kind,
    /// The object's own metadata, without labels: a Pod's are moved to `labels`, and a
    /// template's object's own labels are not the Pods' (nothing reads them).
    pub metadata: ObjectMeta,
    /// The Pod's labels, or the pod template's.
    pub labels: BTreeMap<String, String>,
    /// The pod spec.
    pub spec: PodSpec,
}

impl Workload {
    /// True when the Pod carries the mirror-pod annotation. Only a node's word makes it a
    /// static Pod's mirror (see `Requester::is_node`): anyone can write the annotation.
    pub(crate) fn is_mirror_pod(&self) -> bool {
        self.kind == Kind::Pod
            && self
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"))
    }
}

/// Why an object could not be read as its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkloadError {
    /// The JSON does not fit the kind's schema.
    #[error("object is not a valid {kind}: {reason}")]
    Invalid {
        /// The kind expected.
        kind: &'static str,
        /// The decoder's reason.
        reason: String,
    },
    /// The pod spec or template is missing.
    #[error("{kind} has no {path}")]
    NoPodSpec {
        /// The kind.
        kind: &'static str,
        /// The missing field.
        path: &'static str,
    },
}

/// How much of a Pod's spec to decode (other kinds are always read whole).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// What the rules and the mutations read (`lean::LeanPodSpec`): validation, `check`, audit.
    Rules,
    /// What the mutation plan and the policy match read (`lean::PlanPodSpec`): the mutating
    /// webhook, which runs no rule.
    Plan,
}

impl Scope {
    /// The scope a webhook's review needs.
    pub fn of(webhook: crate::engine::Webhook) -> Scope {
        match webhook {
            crate::engine::Webhook::Validate => Scope::Rules,
            crate::engine::Webhook::Mutate => Scope::Plan,
        }
    }
}

/// Reads `object` (raw JSON text or a parsed value) as `kind`.
pub fn read(kind: Kind, object: Source<'_>) -> Result<Workload, WorkloadError> {
    read_scoped(kind, object, Scope::Rules)
}

/// Reads `object` as `kind`, a Pod's spec only as far as `scope` needs.
pub fn read_scoped(
    kind: Kind,
    object: Source<'_>,
    scope: Scope,
) -> Result<Workload, WorkloadError> {
    let parsed = match object {
        // What `serde_json::from_str` does, with the type chosen at run time.
        Source::Raw(text) => {
            let mut de = serde_json::Deserializer::from_str(text);
            parse_kind(kind, scope, &mut de).and_then(|p| de.end().map(|()| p))
        }
        Source::Value(value) => parse_kind(kind, scope, value),
    };
    let parsed = parsed.map_err(|e| WorkloadError::Invalid {
        kind: kind.as_str(),
        reason: e.to_string(),
    })?;
    finish(kind, parsed)
}

/// The reference decode: the whole object in k8s-openapi's types, as podgate read it before
/// the lean decode (`lean`); the equivalence tests compare `read` with it. Differs from
/// [`read`] only for Pods.
pub fn read_reference(kind: Kind, object: &serde_json::Value) -> Result<Workload, WorkloadError> {
    if kind != Kind::Pod {
        return read(kind, Source::Value(object));
    }
    let pod =
        <Pod as serde::Deserialize>::deserialize(object).map_err(|e| WorkloadError::Invalid {
            kind: kind.as_str(),
            reason: e.to_string(),
        })?;
    let mut metadata = pod.metadata;
    metadata.managed_fields = None;
    let labels = metadata.labels.take().unwrap_or_default();
    let spec = pod.spec.ok_or(WorkloadError::NoPodSpec {
        kind: kind.as_str(),
        path: "spec",
    })?;
    Ok(Workload {
        kind,
        labels,
        metadata,
        spec,
    })
}

/// What [`read`] keeps of an object's metadata (the reference's value with the rest cleared),
/// for the equivalence tests: what podgate reads of it (names, namespace, annotations; the
/// labels are in [`Workload::labels`]) and the numbers `generation` and
/// `deletionGracePeriodSeconds`.
pub fn kept_metadata(metadata: &ObjectMeta) -> ObjectMeta {
    ObjectMeta {
        annotations: metadata.annotations.clone(),
        deletion_grace_period_seconds: metadata.deletion_grace_period_seconds,
        generate_name: metadata.generate_name.clone(),
        generation: metadata.generation,
        name: metadata.name.clone(),
        namespace: metadata.namespace.clone(),
        ..ObjectMeta::default()
    }
}

/// Reads the object as `kind` while the caller's deserializer is at it (the AdmissionReview's
/// `request.object`), so that the object is parsed once: `null` gives `None`; an object that
/// parses gives what [`read`] gives for the same text. A parse error is the caller's error
/// (its position counts from the caller's start), so a caller that needs [`read`]'s exact
/// error must read the text again with it. A Pod's spec is read as far as the scope needs.
/// The workload comes boxed, so that what holds it moves cheaply.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ObjectSeed(pub Kind, pub Scope);

impl<'de> serde::de::DeserializeSeed<'de> for ObjectSeed {
    type Value = Option<Result<Box<Workload>, WorkloadError>>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct V(Kind, Scope);
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Option<Result<Box<Workload>, WorkloadError>>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0.as_str())
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_some<D: serde::Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Self::Value, D::Error> {
                Ok(Some(
                    finish(self.0, parse_kind(self.0, self.1, d)?).map(Box::new),
                ))
            }
        }
        d.deserialize_option(V(self.0, self.1))
    }
}

/// The typed object of each kind.
#[allow(clippy::large_enum_variant)] // lives on the stack between `parse_kind` and `finish`
enum Parsed {
    Pod(Object<Pod, LeanPodSpec, object::Skipped>),
    PodPlan(Object<Pod, PlanPodSpec, object::Skipped>),
    Deployment(Object<Deployment, DeploymentSpec, DeploymentStatus>),
    ReplicaSet(Object<ReplicaSet, ReplicaSetSpec, ReplicaSetStatus>),
    StatefulSet(Object<StatefulSet, StatefulSetSpec, StatefulSetStatus>),
    DaemonSet(Object<DaemonSet, DaemonSetSpec, DaemonSetStatus>),
    Job(Object<Job, JobSpec, JobStatus>),
    CronJob(Object<CronJob, CronJobSpec, CronJobStatus>),
    ReplicationController(
        Object<ReplicationController, ReplicationControllerSpec, ReplicationControllerStatus>,
    ),
}

// Each kind is read with its k8s-openapi spec and status types; see `object::Object`.
fn parse_kind<'de, D: serde::Deserializer<'de>>(
    kind: Kind,
    scope: Scope,
    d: D,
) -> Result<Parsed, D::Error> {
    use serde::Deserialize as _;
    Ok(match kind {
        Kind::Pod if scope == Scope::Plan => Parsed::PodPlan(Object::deserialize(d)?),
        Kind::Pod => Parsed::Pod(Object::deserialize(d)?),
        Kind::Deployment => Parsed::Deployment(Object::deserialize(d)?),
        Kind::ReplicaSet => Parsed::ReplicaSet(Object::deserialize(d)?),
        Kind::StatefulSet => Parsed::StatefulSet(Object::deserialize(d)?),
        Kind::DaemonSet => Parsed::DaemonSet(Object::deserialize(d)?),
        Kind::Job => Parsed::Job(Object::deserialize(d)?),
        Kind::CronJob => Parsed::CronJob(Object::deserialize(d)?),
        Kind::ReplicationController => Parsed::ReplicationController(Object::deserialize(d)?),
    })
}

fn finish(kind: Kind, parsed: Parsed) -> Result<Workload, WorkloadError> {
    fn template(
        kind: Kind,
        mut metadata: ObjectMeta,
        template: Option<PodTemplateSpec>,
    ) -> Result<Workload, WorkloadError> {
        // The object's own labels are not the Pods' (those are the template's).
        metadata.labels = None;
        let template = template.ok_or(WorkloadError::NoPodSpec {
            kind: kind.as_str(),
            path: "pod template",
        })?;
        let spec = template.spec.ok_or(WorkloadError::NoPodSpec {
            kind: kind.as_str(),
            path: kind.location().path,
        })?;
        let labels = template.metadata.and_then(|m| m.labels).unwrap_or_default();
        Ok(Workload {
            kind,
            metadata,
            labels,
            spec,
        })
    }
    let no_spec = WorkloadError::NoPodSpec {
        kind: kind.as_str(),
        path: "spec",
    };
    let pod = |mut metadata: ObjectMeta, spec: PodSpec| {
        let labels = metadata.labels.take().unwrap_or_default();
        Workload {
            kind,
            metadata,
            labels,
            spec,
        }
    };
    match parsed {
        Parsed::Pod(o) => Ok(pod(o.metadata, PodSpec::from(o.spec.ok_or(no_spec)?))),
        Parsed::PodPlan(o) => Ok(pod(o.metadata, PodSpec::from(o.spec.ok_or(no_spec)?))),
        Parsed::Deployment(o) => {
            let spec = o.spec.unwrap_or_default();
            template(kind, o.metadata, Some(spec.template))
        }
        Parsed::ReplicaSet(o) => template(kind, o.metadata, o.spec.unwrap_or_default().template),
        Parsed::StatefulSet(o) => {
            let spec = o.spec.unwrap_or_default();
            template(kind, o.metadata, Some(spec.template))
        }
        Parsed::DaemonSet(o) => {
            let spec = o.spec.unwrap_or_default();
            template(kind, o.metadata, Some(spec.template))
        }
        Parsed::Job(o) => template(kind, o.metadata, o.spec.map(|s| s.template)),
        Parsed::CronJob(o) => {
            let t = o
                .spec
                .unwrap_or_default()
                .job_template
                .spec
                .map(|s| s.template);
            template(kind, o.metadata, t)
        }
        Parsed::ReplicationController(o) => {
            template(kind, o.metadata, o.spec.and_then(|s| s.template))
        }
    }
}

/// An object to read: raw JSON text straight from the request (parsed once, into the typed
/// object), or an already-parsed value (manifests).
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// JSON text.
    Raw(&'a str),
    /// A parsed JSON value.
    Value(&'a serde_json::Value),
}

/// The top level of an object, read as k8s-openapi reads it (`apiVersion` and `kind` must
/// match when present, unknown fields ignored, a later duplicate key wins, errors worded the
/// same) except for what podgate never reads: of `metadata`, only the name, generateName,
/// namespace, labels and annotations (and the numbers `generation` and
/// `deletionGracePeriodSeconds`, type-checked at no cost) are built; `managedFields` (often
/// the largest part of a Pod), `ownerReferences`, `uid`, the timestamps and the other strings
/// are skipped as JSON without being built or type-checked (see [`kept_metadata`]), and so is
/// a Pod's `status`; a Pod's spec is read by `lean`.
mod object {
    use std::collections::BTreeMap;
    use std::fmt;
    use std::marker::PhantomData;

    use k8s_openapi::Resource;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};

    /// `R`'s apiVersion/kind, metadata, spec and status.
    pub(super) struct Object<R, S, St> {
        pub metadata: ObjectMeta,
        pub spec: Option<S>,
        #[allow(dead_code)] // read to reject what k8s-openapi rejects
        pub status: Option<St>,
        resource: PhantomData<R>,
    }

    const OBJECT_FIELDS: &[&str] = &["apiVersion", "kind", "metadata", "spec", "status"];

    /// The top-level keys read; any other is `Other` (ignored, as k8s-openapi does).
    #[derive(serde::Deserialize)]
    #[serde(field_identifier, rename_all = "camelCase")]
    enum ObjectField {
        ApiVersion,
        Kind,
        Metadata,
        Spec,
        Status,
        #[serde(other)]
        Other,
    }

    /// The `metadata` keys read; any other (`managedFields`, `ownerReferences`, `uid`, ...)
    /// is `Other`, skipped unbuilt.
    #[derive(serde::Deserialize)]
    #[serde(field_identifier, rename_all = "camelCase")]
    enum MetaField {
        Annotations,
        DeletionGracePeriodSeconds,
        GenerateName,
        Generation,
        Labels,
        Name,
        Namespace,
        #[serde(other)]
        Other,
    }

    impl<'de, R, S, St> Deserialize<'de> for Object<R, S, St>
    where
        R: Resource,
        S: Deserialize<'de>,
        St: Deserialize<'de>,
    {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct V<R, S, St>(PhantomData<(R, S, St)>);
            impl<'de, R, S, St> Visitor<'de> for V<R, S, St>
            where
                R: Resource,
                S: Deserialize<'de>,
                St: Deserialize<'de>,
            {
                type Value = Object<R, S, St>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str(R::KIND)
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                    let mut metadata: Option<Meta> = None;
                    let mut spec: Option<S> = None;
                    let mut status: Option<St> = None;
                    while let Some(k) = map.next_key::<ObjectField>()? {
                        match k {
                            ObjectField::ApiVersion => {
                                let v: String = map.next_value()?;
                                if v != R::API_VERSION {
                                    return Err(de::Error::invalid_value(
                                        de::Unexpected::Str(&v),
                                        &R::API_VERSION,
                                    ));
                                }
                            }
                            ObjectField::Kind => {
                                let v: String = map.next_value()?;
                                if v != R::KIND {
                                    return Err(de::Error::invalid_value(
                                        de::Unexpected::Str(&v),
                                        &R::KIND,
                                    ));
                                }
                            }
                            ObjectField::Metadata => metadata = map.next_value()?,
                            ObjectField::Spec => spec = map.next_value()?,
                            ObjectField::Status => status = map.next_value()?,
                            ObjectField::Other => {
                                let _: IgnoredAny = map.next_value()?;
                            }
                        }
                    }
                    Ok(Object {
                        metadata: metadata.map(|m| m.0).unwrap_or_default(),
                        spec,
                        status,
                        resource: PhantomData,
                    })
                }
            }
            deserializer.deserialize_struct(R::KIND, OBJECT_FIELDS, V(PhantomData))
        }
    }

    /// A value that is checked to be JSON and otherwise skipped, never built.
    pub(super) struct Skipped;

    impl<'de> Deserialize<'de> for Skipped {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            IgnoredAny::deserialize(deserializer).map(|_| Skipped)
        }
    }

    /// `ObjectMeta` with what podgate reads (`kept_metadata`).
    struct Meta(ObjectMeta);

    const META_FIELDS: &[&str] = &[
        "annotations",
        "creationTimestamp",
        "deletionGracePeriodSeconds",
        "deletionTimestamp",
        "finalizers",
        "generateName",
        "generation",
        "labels",
        "managedFields",
        "name",
        "namespace",
        "ownerReferences",
        "resourceVersion",
        "selfLink",
        "uid",
    ];

    impl<'de> Deserialize<'de> for Meta {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Meta;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("ObjectMeta")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Meta, A::Error> {
                    let mut m = ObjectMeta::default();
                    while let Some(k) = map.next_key::<MetaField>()? {
                        match k {
                            MetaField::Annotations => {
                                m.annotations =
                                    map.next_value::<Option<BTreeMap<String, String>>>()?
                            }
                            MetaField::DeletionGracePeriodSeconds => {
                                m.deletion_grace_period_seconds = map.next_value::<Option<i64>>()?
                            }
                            MetaField::GenerateName => {
                                m.generate_name = map.next_value::<Option<String>>()?
                            }
                            MetaField::Generation => {
                                m.generation = map.next_value::<Option<i64>>()?
                            }
                            MetaField::Labels => {
                                m.labels = map.next_value::<Option<BTreeMap<String, String>>>()?
                            }
                            MetaField::Name => m.name = map.next_value::<Option<String>>()?,
                            MetaField::Namespace => {
                                m.namespace = map.next_value::<Option<String>>()?
                            }
                            MetaField::Other => {
                                let _: IgnoredAny = map.next_value()?;
                            }
                        }
                    }
                    Ok(Meta(m))
                }
            }
            deserializer.deserialize_struct("ObjectMeta", META_FIELDS, V)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pointer_to_escapes_as_from_tokens_does() {
        let at = SpecLocation {
            pointer: &["spec", "template", "spec"],
            path: "spec.template.spec",
        };
        for tokens in [
            &[][..],
            &["containers", "0", "imagePullPolicy"],
            &["a/b", "~c", "~0/~1", "", "-"],
        ] {
            let want = PointerBuf::from_tokens(at.pointer.iter().chain(tokens).copied());
            assert_eq!(at.pointer_to(tokens), want, "{tokens:?}");
        }
        assert_eq!(SpecLocation::POD.pointer_to(&[]).as_str(), "/spec");
    }

    #[test]
    fn reads_pod_specs_from_every_kind() {
        let template = json!({"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
        let cases = [
            (
                "apps",
                "Deployment",
                json!({"spec": {"selector": {}, "template": template}}),
            ),
            (
                "apps",
                "ReplicaSet",
                json!({"spec": {"selector": {}, "template": template}}),
            ),
            (
                "apps",
                "StatefulSet",
                json!({"spec": {"selector": {}, "template": template}}),
            ),
            (
                "apps",
                "DaemonSet",
                json!({"spec": {"selector": {}, "template": template}}),
            ),
            ("batch", "Job", json!({"spec": {"template": template}})),
            (
                "batch",
                "CronJob",
                json!({"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}}),
            ),
            (
                "",
                "ReplicationController",
                json!({"spec": {"template": template}}),
            ),
        ];
        for (group, name, object) in cases {
            let kind = Kind::from_group_kind(group, name).unwrap();
            let w = read(kind, Source::Value(&object)).unwrap();
            assert_eq!(w.spec.containers[0].name, "c", "{name}");
            assert_eq!(w.labels.get("app").map(String::as_str), Some("x"), "{name}");
            let raw = object.to_string();
            assert_eq!(
                read(kind, Source::Raw(&raw)).unwrap().spec.containers.len(),
                1
            );
        }
        assert_eq!(Kind::from_group_kind("", "Service"), None);
        assert_eq!(Kind::from_group_kind("apps", "Pod"), None);
    }

    /// The old reader: the k8s-openapi types as they are.
    fn read_upstream(kind: Kind, raw: &str) -> Result<(ObjectMeta, PodSpec), String> {
        fn tpl(t: Option<PodTemplateSpec>) -> Result<PodSpec, String> {
            t.and_then(|t| t.spec).ok_or_else(|| "no spec".to_string())
        }
        let e = |e: serde_json::Error| e.to_string();
        match kind {
            Kind::Pod => {
                let o: Pod = serde_json::from_str(raw).map_err(e)?;
                Ok((o.metadata, o.spec.ok_or("no spec")?))
            }
            Kind::Deployment => {
                let o: Deployment = serde_json::from_str(raw).map_err(e)?;
                Ok((o.metadata, tpl(Some(o.spec.template))?))
            }
            Kind::CronJob => {
                let o: CronJob = serde_json::from_str(raw).map_err(e)?;
                Ok((
                    o.metadata,
                    tpl(o.spec.job_template.spec.map(|s| s.template))?,
                ))
            }
            Kind::Job => {
                let o: Job = serde_json::from_str(raw).map_err(e)?;
                Ok((o.metadata, tpl(o.spec.map(|s| s.template))?))
            }
            _ => unreachable!(),
        }
    }

    #[test]
    fn reads_like_k8s_openapi_apart_from_the_metadata_it_skips() {
        let managed = json!([{"manager": "kubectl", "operation": "Update", "apiVersion": "v1",
            "time": "2026-11-27T20:41:07Z", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": [1, "x", null, true]}}]);
        let meta = json!({"name": "p", "namespace": "ns", "labels": {"app": "x"},
            "annotations": {"a": "b"}, "generateName": "p-", "uid": "u", "resourceVersion": "1",
            "creationTimestamp": null, "finalizers": ["f"], "generation": 3,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r", "uid": "x", "controller": true}],
            "managedFields": managed, "futureField": {"x": 1}});
        let spec = json!({"containers": [{"name": "c", "image": "nginx", "command": ["sh", "-c", "echo"]}],
            "hostPID": true, "futurePodField": 1});
        let template = json!({"metadata": {"labels": {"app": "x"}}, "spec": spec});
        let good = [
            (
                Kind::Pod,
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": {"phase": "Pending"}}),
            ),
            (Kind::Pod, json!({"metadata": null, "spec": spec})),
            (
                Kind::Deployment,
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": {"selector": {}, "template": template}}),
            ),
            (
                Kind::Job,
                json!({"metadata": meta, "spec": {"template": template}}),
            ),
            (
                Kind::CronJob,
                json!({"metadata": meta, "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}}),
            ),
        ];
        for (kind, object) in &good {
            let raw = object.to_string();
            let (want_meta, want_spec) = read_upstream(*kind, &raw).unwrap();
            for w in [
                read(*kind, Source::Raw(&raw)).unwrap(),
                read(*kind, Source::Value(object)).unwrap(),
            ] {
                assert_eq!(w.metadata, kept_metadata(&want_meta), "{raw}");
                assert_eq!(w.spec, crate::lean::kept(&want_spec), "{raw}");
            }
        }
        // Duplicate keys: the later one wins, as upstream.
        let raw = r#"{"metadata":{"name":"a","name":"b"},"spec":{"containers":[]},"spec":{"containers":[{"name":"c"}]}}"#;
        let w = read(Kind::Pod, Source::Raw(raw)).unwrap();
        let (m, s) = read_upstream(Kind::Pod, raw).unwrap();
        assert_eq!((w.metadata.name, w.spec), (m.name, s));
        let bad = [
            r#"{"apiVersion": "v2", "spec": {"containers": []}}"#,
            r#"{"kind": "Service", "spec": {"containers": []}}"#,
            r#"{"metadata": {"managedFields": [{"fieldsV1": {"x": }}]}, "spec": {"containers": []}}"#,
            r#"{"metadata": {"labels": {"a": 1}}, "spec": {"containers": []}}"#,
            r#"{"metadata": [], "spec": {"containers": []}}"#,
            r#"{"spec": {"containers": [{"name": 1}]}}"#,
            r#"{"spec": {"hostPID": "yes", "containers": []}}"#,
            r#"[1, 2]"#,
        ];
        // What the lean decode skips unbuilt is not type-checked: kube-apiserver never sends
        // these, and they are read rather than refused.
        let skipped = [
            r#"{"metadata": {"managedFields": [{"manager": 5}]}, "spec": {"containers": []}}"#,
            r#"{"metadata": {"managedFields": {"manager": "x"}}, "spec": {"containers": []}}"#,
            r#"{"spec": {"containers": []}, "status": {"phase": 1}}"#,
            r#"{"spec": {"containers": [{"name": "c", "resources": {"limits": 5}}], "tolerations": 1}}"#,
        ];
        for raw in skipped {
            assert!(read_upstream(Kind::Pod, raw).is_err(), "{raw}");
            assert!(read(Kind::Pod, Source::Raw(raw)).is_ok(), "{raw}");
        }
        for raw in bad {
            let want = read_upstream(Kind::Pod, raw).unwrap_err();
            let got = read(Kind::Pod, Source::Raw(raw)).unwrap_err();
            assert_eq!(
                got,
                WorkloadError::Invalid {
                    kind: "Pod",
                    reason: want
                },
                "{raw}"
            );
        }
    }

    #[test]
    fn invalid_objects_are_errors_not_panics() {
        let bad = json!({"spec": {"containers": "nope"}});
        let e = read(Kind::Pod, Source::Value(&bad)).unwrap_err();
        assert!(
            matches!(e, WorkloadError::Invalid { kind: "Pod", .. }),
            "{e}"
        );
        let e = read(Kind::Pod, Source::Value(&json!({"metadata": {}}))).unwrap_err();
        assert_eq!(e.to_string(), "Pod has no spec");
        let e = read(
            Kind::Deployment,
            Source::Value(&json!({"spec": {"selector": {}}})),
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                WorkloadError::Invalid { .. } | WorkloadError::NoPodSpec { .. }
            ),
            "{e}"
        );
        assert!(read(Kind::Job, Source::Raw("{not json")).is_err());
    }

    #[test]
    fn mirror_pods_are_recognised() {
        let pod = json!({"metadata": {"annotations": {"kubernetes.io/config.mirror": "abc"}}, "spec": {"containers": []}});
        assert!(
            read(Kind::Pod, Source::Value(&pod))
                .unwrap()
                .is_mirror_pod()
        );
    }

    #[test]
    fn resolves_served_removed_and_unknown_group_versions() {
        assert_eq!(
            resolve("apps/v1", "Deployment"),
            ApiKind::Served(Kind::Deployment)
        );
        assert_eq!(resolve("v1", "Pod"), ApiKind::Served(Kind::Pod));
        let cases = [
            (
                "extensions/v1beta1",
                "Deployment",
                Kind::Deployment,
                "apps/v1",
                "1.16",
            ),
            (
                "extensions/v1beta1",
                "DaemonSet",
                Kind::DaemonSet,
                "apps/v1",
                "1.16",
            ),
            (
                "extensions/v1beta1",
                "ReplicaSet",
                Kind::ReplicaSet,
                "apps/v1",
                "1.16",
            ),
            (
                "apps/v1beta1",
                "StatefulSet",
                Kind::StatefulSet,
                "apps/v1",
                "1.16",
            ),
            (
                "apps/v1beta2",
                "ReplicaSet",
                Kind::ReplicaSet,
                "apps/v1",
                "1.16",
            ),
            (
                "batch/v1beta1",
                "CronJob",
                Kind::CronJob,
                "batch/v1",
                "1.25",
            ),
            (
                "batch/v2alpha1",
                "CronJob",
                Kind::CronJob,
                "batch/v1",
                "1.21",
            ),
        ];
        for (api_version, kind, want, served, removed_in) in cases {
            assert_eq!(
                resolve(api_version, kind),
                ApiKind::Deprecated(Deprecated {
                    kind: want,
                    api_version,
                    served,
                    removed_in
                }),
                "{api_version} {kind}"
            );
        }
        assert_eq!(
            resolve("apps/v1beta3", "Deployment"),
            ApiKind::UnknownVersion(Kind::Deployment)
        );
        assert_eq!(
            resolve("extensions/v1", "Deployment"),
            ApiKind::UnknownVersion(Kind::Deployment)
        );
        assert_eq!(resolve("v2", "Pod"), ApiKind::UnknownVersion(Kind::Pod));
        assert_eq!(
            resolve("apps/v1beta1", "DaemonSet"),
            ApiKind::UnknownVersion(Kind::DaemonSet)
        );
        assert_eq!(resolve("extensions/v1beta1", "Ingress"), ApiKind::NoPodSpec);
        assert_eq!(resolve("example.com/v1", "Deployment"), ApiKind::NoPodSpec);
        assert_eq!(resolve("v1", "Service"), ApiKind::NoPodSpec);
        assert_eq!(resolve("", "Pod"), ApiKind::Untyped);
        assert_eq!(resolve("v1", ""), ApiKind::Untyped);
    }

    #[test]
    fn removed_versions_read_as_served_with_the_old_selector_default() {
        let object = json!({
            "apiVersion": "extensions/v1beta1", "kind": "Deployment",
            "metadata": {"name": "d"},
            "spec": {"template": {"metadata": {"labels": {"app": "d"}},
                                  "spec": {"containers": [{"name": "c", "image": "i"}]}}}
        });
        // As written it is not an apps/v1 Deployment.
        let ApiKind::Deprecated(d) = resolve("extensions/v1beta1", "Deployment") else {
            panic!("not deprecated")
        };
        let upgraded = upgrade_deprecated(&object, &d);
        assert_eq!(upgraded["apiVersion"], "apps/v1");
        assert_eq!(
            upgraded["spec"]["selector"],
            json!({"matchLabels": {"app": "d"}})
        );
        let w = read(Kind::Deployment, Source::Value(&upgraded)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(w.spec.containers[0].name, "c");
        // A selector that is there is kept.
        let mut with = object.clone();
        with["spec"]["selector"] = json!({"matchLabels": {"x": "y"}});
        assert_eq!(
            upgrade_deprecated(&with, &d)["spec"]["selector"],
            json!({"matchLabels": {"x": "y"}})
        );
    }
}
