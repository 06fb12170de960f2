//! Where the pod spec lives: in a Pod, or in the pod template of a workload.
//!
//! Deployment, ReplicaSet, StatefulSet, DaemonSet, Job and ReplicationController keep it at
//! `spec.template.spec`, CronJob at `spec.jobTemplate.spec.template.spec`. Matching uses the
//! template's labels and the workload's namespace.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, PodSpec, PodTemplateSpec, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;

use crate::mutate::SpecLocation;

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

/// An object's pod spec with what matching needs.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The object's kind.
    pub kind: Kind,
    /// The object's own metadata.
    pub metadata: ObjectMeta,
    /// The Pod's labels, or the pod template's.
    pub labels: BTreeMap<String, String>,
    /// The pod spec.
    pub spec: PodSpec,
}

impl Workload {
    /// True for a static Pod's mirror, which the kubelet creates and no webhook can change.
    pub fn is_mirror_pod(&self) -> bool {
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

/// Reads `object` (raw JSON text or a parsed value) as `kind`.
pub fn read(kind: Kind, object: Source<'_>) -> Result<Workload, WorkloadError> {
    fn template(
        kind: Kind,
        metadata: ObjectMeta,
        template: Option<PodTemplateSpec>,
    ) -> Result<Workload, WorkloadError> {
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
    match kind {
        Kind::Pod => {
            let pod: Pod = object.parse(kind)?;
            let spec = pod.spec.ok_or(no_spec)?;
            let labels = pod.metadata.labels.clone().unwrap_or_default();
            Ok(Workload {
                kind,
                metadata: pod.metadata,
                labels,
                spec,
            })
        }
        Kind::Deployment => {
            let o: Deployment = object.parse(kind)?;
            template(kind, o.metadata, Some(o.spec.template))
        }
        Kind::ReplicaSet => {
            let o: ReplicaSet = object.parse(kind)?;
            template(kind, o.metadata, o.spec.template)
        }
        Kind::StatefulSet => {
            let o: StatefulSet = object.parse(kind)?;
            template(kind, o.metadata, Some(o.spec.template))
        }
        Kind::DaemonSet => {
            let o: DaemonSet = object.parse(kind)?;
            template(kind, o.metadata, Some(o.spec.template))
        }
        Kind::Job => {
            let o: Job = object.parse(kind)?;
            template(kind, o.metadata, o.spec.map(|s| s.template))
        }
        Kind::CronJob => {
            let o: CronJob = object.parse(kind)?;
            let t = o.spec.job_template.spec.map(|s| s.template);
            template(kind, o.metadata, t)
        }
        Kind::ReplicationController => {
            let o: ReplicationController = object.parse(kind)?;
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

impl Source<'_> {
    fn parse<T: DeserializeOwned>(self, kind: Kind) -> Result<T, WorkloadError> {
        let result = match self {
            Source::Raw(text) => serde_json::from_str(text),
            Source::Value(value) => T::deserialize(value),
        };
        result.map_err(|e| WorkloadError::Invalid {
            kind: kind.as_str(),
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
}
