//! What an audit looks at: the objects listed from the cluster, grouped so that each Pod
//! stamped out by a listed workload is reported at that workload (once, with a count of its
//! Pods) and each bare Pod on its own. Mirror pods and objects in excluded namespaces are
//! skipped, as the webhook skips them.
//!
//! Pure: the listing is `cluster`'s business. Owner chains are followed through `controller`
//! owner references (ReplicaSet -> Deployment, Job -> CronJob, and any other chain of listed
//! kinds), at most `MAX_OWNER_DEPTH` steps, so a cycle or a very long chain costs a bounded
//! amount per object: the whole grouping is linear in the number of objects.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use crate::workload::Kind;

/// How many owner references are followed from one object.
pub(crate) const MAX_OWNER_DEPTH: usize = 8;

/// The kinds an audit lists, in the order they are reported.
pub const KINDS: [Kind; 8] = [
    Kind::Deployment,
    Kind::StatefulSet,
    Kind::DaemonSet,
    Kind::CronJob,
    Kind::Job,
    Kind::ReplicaSet,
    Kind::ReplicationController,
    Kind::Pod,
];

/// One object as listed.
#[derive(Debug, Clone)]
pub struct Listed {
    /// Its kind (list items of built-in kinds carry no `kind` field).
    pub kind: Kind,
    /// The object.
    pub object: Value,
}

impl Listed {
    fn meta(&self, field: &str) -> &str {
        self.object
            .get("metadata")
            .and_then(|m| m.get(field))
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        self.meta("name")
    }

    /// `metadata.namespace`.
    pub fn namespace(&self) -> &str {
        self.meta("namespace")
    }

    /// `metadata.uid`.
    pub fn uid(&self) -> &str {
        self.meta("uid")
    }

    /// The controller owner reference's uid, if any.
    fn controller_uid(&self) -> Option<&str> {
        self.object
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)?
            .iter()
            .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
            .and_then(|r| r.get("uid"))
            .and_then(Value::as_str)
    }

    /// A static Pod's mirror, which the webhook skips when a node creates it. A stored object
    /// does not say who created it; the kubelet makes its Node the mirror Pod's controller
    /// owner, so the annotation counts only with that owner (the annotation alone anyone can
    /// write, and the webhook judges such Pods).
    pub(crate) fn is_mirror_pod(&self) -> bool {
        let annotated = self
            .object
            .pointer("/metadata/annotations")
            .and_then(|a| a.get("kubernetes.io/config.mirror"))
            .is_some();
        let node_owned = self
            .object
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .is_some_and(|refs| {
                refs.iter().any(|r| {
                    r.get("kind").and_then(Value::as_str) == Some("Node")
                        && r.get("apiVersion").and_then(Value::as_str) == Some("v1")
                        && r.get("controller").and_then(Value::as_bool) == Some(true)
                })
            });
        self.kind == Kind::Pod && annotated && node_owned
    }
}

/// One object to evaluate: a workload (with what rolls up to it) or a bare Pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// Index into the listed objects.
    pub index: usize,
    /// Pods reported here (a bare Pod counts itself).
    pub pods: usize,
    /// Listed workloads folded into this one (a Deployment's ReplicaSets, a CronJob's Jobs).
    pub folded: Vec<usize>,
}

/// Why objects were not evaluated.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    /// Mirror pods.
    pub mirror_pods: usize,
    /// Objects in excluded namespaces.
    pub excluded_namespaces: usize,
}

/// The grouping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// In kind order (`KINDS`), then namespace, then name.
    pub subjects: Vec<Subject>,
    /// What was skipped.
    pub skipped: Skipped,
}

/// Groups `objects`; `excluded` are the namespaces the webhook is never called for.
pub fn plan(objects: &[Listed], excluded: &BTreeSet<String>) -> Plan {
    let mut skipped = Skipped::default();
    // Workloads by uid: the owners a Pod or another workload can roll up to.
    let mut by_uid: HashMap<&str, usize> = HashMap::new();
    for (i, o) in objects.iter().enumerate() {
        if o.kind != Kind::Pod && !o.uid().is_empty() {
            by_uid.insert(o.uid(), i);
        }
    }
    let top = |start: usize| -> usize {
        let mut i = start;
        let mut seen = [usize::MAX; MAX_OWNER_DEPTH];
        for step in 0..MAX_OWNER_DEPTH {
            if seen[..step].contains(&i) {
                // A cycle of owner references: nobody owns anybody; report where we started.
                return start;
            }
            seen[step] = i;
            let next = objects[i]
                .controller_uid()
                .and_then(|uid| by_uid.get(uid).copied())
                // An owner in another namespace is not a real owner (the garbage collector
                // ignores such references).
                .filter(|&o| objects[o].namespace() == objects[i].namespace() && o != i);
            match next {
                Some(o) => i = o,
                None => break,
            }
        }
        i
    };
    let mut subjects: BTreeMap<usize, Subject> = BTreeMap::new();
    for (i, o) in objects.iter().enumerate() {
        if excluded.contains(o.namespace()) {
            skipped.excluded_namespaces += 1;
            continue;
        }
        if o.is_mirror_pod() {
            skipped.mirror_pods += 1;
            continue;
        }
        let t = top(i);
        let entry = subjects.entry(t).or_insert_with(|| Subject {
            index: t,
            pods: 0,
            folded: Vec::new(),
        });
        if o.kind == Kind::Pod {
            entry.pods += 1;
        } else if t != i {
            entry.folded.push(i);
        }
    }
    let rank = |k: Kind| KINDS.iter().position(|x| *x == k).unwrap_or(KINDS.len());
    let mut subjects: Vec<Subject> = subjects.into_values().collect();
    subjects.sort_by(|a, b| {
        let (x, y) = (&objects[a.index], &objects[b.index]);
        (rank(x.kind), x.namespace(), x.name()).cmp(&(rank(y.kind), y.namespace(), y.name()))
    });
    Plan { subjects, skipped }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(kind: Kind, ns: &str, name: &str, owner: Option<&str>) -> Listed {
        let mut meta = json!({"name": name, "namespace": ns, "uid": format!("uid-{ns}-{name}")});
        if let Some(o) = owner {
            meta["ownerReferences"] = json!([
                {"apiVersion": "v1", "kind": "X", "name": "x", "uid": "someone-else", "controller": false},
                {"apiVersion": "v1", "kind": "X", "name": o, "uid": format!("uid-{ns}-{o}"), "controller": true},
            ]);
        }
        Listed {
            kind,
            object: json!({"metadata": meta, "spec": {}}),
        }
    }

    fn names(objects: &[Listed], p: &Plan) -> Vec<(String, usize, usize)> {
        p.subjects
            .iter()
            .map(|s| {
                let o = &objects[s.index];
                (
                    format!("{}/{}/{}", o.kind.as_str(), o.namespace(), o.name()),
                    s.pods,
                    s.folded.len(),
                )
            })
            .collect()
    }

    #[test]
    fn pods_roll_up_through_replicasets_and_jobs_to_the_top_workload() {
        let objects = vec![
            obj(Kind::Pod, "a", "web-1", Some("web-rs")),
            obj(Kind::Pod, "a", "web-2", Some("web-rs")),
            obj(Kind::ReplicaSet, "a", "web-rs", Some("web")),
            obj(Kind::Deployment, "a", "web", None),
            obj(Kind::Pod, "a", "batch-1", Some("batch-job")),
            obj(Kind::Job, "a", "batch-job", Some("batch")),
            obj(Kind::CronJob, "a", "batch", None),
            obj(Kind::Pod, "b", "bare", None),
            obj(Kind::Pod, "b", "orphan", Some("gone-rs")),
            obj(Kind::StatefulSet, "b", "db", None),
        ];
        let p = plan(&objects, &BTreeSet::new());
        assert_eq!(
            names(&objects, &p),
            vec![
                ("Deployment/a/web".to_string(), 2, 1),
                ("StatefulSet/b/db".to_string(), 0, 0),
                ("CronJob/a/batch".to_string(), 1, 1),
                ("Pod/b/bare".to_string(), 1, 0),
                ("Pod/b/orphan".to_string(), 1, 0),
            ]
        );
    }

    #[test]
    fn mirror_pods_and_excluded_namespaces_are_skipped_and_counted() {
        let mut mirror = obj(Kind::Pod, "a", "etcd-node1", None);
        mirror.object["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "x"});
        mirror.object["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "Node", "name": "node1", "uid": "n1", "controller": true}]);
        // The annotation alone is anyone's to write: judged like any Pod.
        let mut forged = obj(Kind::Pod, "a", "fake-mirror", None);
        forged.object["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "x"});
        let objects = vec![
            mirror,
            forged,
            obj(Kind::Pod, "kube-system", "dns", None),
            obj(Kind::Deployment, "kube-system", "coredns", None),
            obj(Kind::Pod, "a", "p", None),
        ];
        let excluded = BTreeSet::from(["kube-system".to_string()]);
        let p = plan(&objects, &excluded);
        assert_eq!(
            names(&objects, &p),
            vec![
                ("Pod/a/fake-mirror".to_string(), 1, 0),
                ("Pod/a/p".to_string(), 1, 0)
            ]
        );
        assert_eq!(
            p.skipped,
            Skipped {
                mirror_pods: 1,
                excluded_namespaces: 2
            }
        );
    }

    #[test]
    fn an_owner_cycle_or_a_cross_namespace_owner_does_not_hang_or_fold() {
        let objects = vec![
            obj(Kind::ReplicaSet, "a", "x", Some("y")),
            obj(Kind::ReplicaSet, "a", "y", Some("x")),
            obj(Kind::Pod, "b", "p", Some("x")),
        ];
        // The Pod's owner uid is "uid-b-x", which is not listed: it stays bare.
        let p = plan(&objects, &BTreeSet::new());
        let got = names(&objects, &p);
        assert!(got.contains(&("Pod/b/p".to_string(), 1, 0)), "{got:?}");
        assert_eq!(p.subjects.iter().map(|s| s.pods).sum::<usize>(), 1);
        // Every listed object is accounted for exactly once.
        let accounted: usize = p.subjects.iter().map(|s| 1 + s.folded.len()).sum::<usize>();
        assert_eq!(accounted, 3);
    }
}
