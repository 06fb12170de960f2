//! What an audit looks at: the objects listed from the cluster, grouped so that each Pod
//! stamped out by a listed workload is reported at that workload (once, with a count of its
//! Pods) and each bare Pod on its own. Mirror pods and objects in excluded namespaces are
//! skipped, as the webhook skips them.
//!
//! Pure: the listing is `cluster`'s business. Owner chains are followed through `controller`
//! owner references (ReplicaSet -> Deployment, Job -> CronJob, and any other chain of listed
//! kinds), at most `MAX_OWNER_DEPTH` steps, so a cycle or a very long chain costs a bounded
//! amount per object: the whole grouping is linear in the number of objects.
//!
//! Memory is spent only on what is reported. Each listed object is read from its list page's
//! text into a lean view ([`Listed`]: the [`Head`] grouping needs, and the object's JSON text
//! for the engine), and the page is dropped. Workloads are listed first ([`Inventory::new`]);
//! after them, whether a Pod is reported at a workload is known from its metadata alone, so
//! such a Pod costs one count at that workload and nothing of it is kept ([`PodTally`]); a
//! workload reported at another (a Deployment's ReplicaSets, a CronJob's Jobs) gives its text
//! back as soon as all workloads are in. The engine reads an object's pod spec when it
//! evaluates it (a typed pod spec is several times the size of its JSON text). The grouping
//! is the same as when every object was kept whole as a `Value`; the tests below compare it
//! with that reference.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde_json::Value;

use crate::workload::{self, Kind, Source, Workload, WorkloadError};

/// How many owner references are followed from one object.
pub(crate) const MAX_OWNER_DEPTH: usize = 8;

/// The annotation the kubelet puts on a static Pod's mirror.
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

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

/// The workload kinds (`KINDS` but Pods, which come last), listed before Pods.
pub(crate) fn workload_kinds() -> &'static [Kind] {
    &KINDS[..KINDS.len() - 1]
}

/// What grouping needs of an object's metadata. A field of the wrong JSON type reads as
/// missing (an empty string, no owner).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Head {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.uid`.
    pub uid: String,
    /// The uid of the first owner reference with `controller: true`, if any.
    pub controller_uid: Option<String>,
    /// A static Pod's mirror (see [`Listed::is_mirror_pod`]).
    pub mirror_pod: bool,
}

impl Head {
    /// Reads the head of an object's JSON text. Only `metadata`'s name, namespace, uid, owner
    /// references and annotation keys are looked at; everything else is skipped unbuilt. An
    /// object of an unusual shape is read through a `Value`, so the result is always what
    /// [`Head::of_value`] gives; an error only for text that is not JSON a `Value` can hold.
    pub(crate) fn read(kind: Kind, text: &str) -> Result<Head, serde_json::Error> {
        match serde_json::from_str::<fast::Top>(text) {
            Ok(top) => {
                let m = top.0.unwrap_or_default();
                Ok(Head::assemble(
                    kind,
                    [m.name.as_ref(), m.namespace.as_ref(), m.uid.as_ref()],
                    m.owner_references.as_ref(),
                    m.mirror_annotation,
                ))
            }
            Err(_) => Ok(Head::of_value(kind, &serde_json::from_str::<Value>(text)?)),
        }
    }

    /// The head of a parsed object: the reference reading.
    pub(crate) fn of_value(kind: Kind, object: &Value) -> Head {
        let meta = object.get("metadata");
        let field = |f: &str| meta.and_then(|m| m.get(f));
        let annotated = field("annotations")
            .and_then(|a| a.get(MIRROR_ANNOTATION))
            .is_some();
        Head::assemble(
            kind,
            [field("name"), field("namespace"), field("uid")],
            field("ownerReferences"),
            annotated,
        )
    }

    fn assemble(
        kind: Kind,
        [name, namespace, uid]: [Option<&Value>; 3],
        owner_references: Option<&Value>,
        mirror_annotation: bool,
    ) -> Head {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
        let refs = owner_references
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let is_controller = |r: &Value| r.get("controller").and_then(Value::as_bool) == Some(true);
        let controller_uid = refs
            .iter()
            .find(|r| is_controller(r))
            .and_then(|r| r.get("uid"))
            .and_then(Value::as_str)
            .map(str::to_string);
        // A stored object does not say who created it; the kubelet makes its Node the mirror
        // Pod's controller owner, so the annotation counts only with that owner (the
        // annotation alone anyone can write, and the webhook judges such Pods).
        let node_owned = refs.iter().any(|r| {
            r.get("kind").and_then(Value::as_str) == Some("Node")
                && r.get("apiVersion").and_then(Value::as_str) == Some("v1")
                && is_controller(r)
        });
        Head {
            name: text(name),
            namespace: text(namespace),
            uid: text(uid),
            controller_uid,
            mirror_pod: kind == Kind::Pod && mirror_annotation && node_owned,
        }
    }
}

/// The fast reading of [`Head`]: `metadata` and its five fields, each as `Value` (they are
/// small), the annotations reduced to whether the mirror key is there. Anything but a JSON
/// object where an object is read is an error, and [`Head::read`] then reads a `Value`; a
/// repeated key keeps its last value, as in a `Value`.
mod fast {
    use std::fmt;

    use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
    use serde_json::Value;

    #[derive(serde::Deserialize)]
    #[serde(field_identifier, rename_all = "camelCase")]
    enum TopKey {
        Metadata,
        #[serde(other)]
        Other,
    }

    #[derive(serde::Deserialize)]
    #[serde(field_identifier, rename_all = "camelCase")]
    enum MetaKey {
        Name,
        Namespace,
        Uid,
        OwnerReferences,
        Annotations,
        #[serde(other)]
        Other,
    }

    #[derive(serde::Deserialize)]
    #[serde(field_identifier)]
    enum AnnotationKey {
        #[serde(rename = "kubernetes.io/config.mirror")]
        Mirror,
        #[serde(other)]
        Other,
    }

    pub(super) struct Top(pub Option<Meta>);

    #[derive(Default)]
    pub(super) struct Meta {
        pub name: Option<Value>,
        pub namespace: Option<Value>,
        pub uid: Option<Value>,
        pub owner_references: Option<Value>,
        pub mirror_annotation: bool,
    }

    /// Whether an annotations object has the mirror key.
    struct Annotations(bool);

    impl<'de> Deserialize<'de> for Top {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Top;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
                    let mut meta = None;
                    while let Some(key) = map.next_key::<TopKey>()? {
                        match key {
                            TopKey::Metadata => meta = Some(map.next_value::<Meta>()?),
                            TopKey::Other => {
                                map.next_value::<IgnoredAny>()?;
                            }
                        }
                    }
                    Ok(Top(meta))
                }
            }
            d.deserialize_map(V)
        }
    }

    impl<'de> Deserialize<'de> for Meta {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Meta;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Meta, A::Error> {
                    let mut m = Meta::default();
                    while let Some(key) = map.next_key::<MetaKey>()? {
                        match key {
                            MetaKey::Name => m.name = Some(map.next_value()?),
                            MetaKey::Namespace => m.namespace = Some(map.next_value()?),
                            MetaKey::Uid => m.uid = Some(map.next_value()?),
                            MetaKey::OwnerReferences => {
                                m.owner_references = Some(map.next_value()?)
                            }
                            MetaKey::Annotations => {
                                m.mirror_annotation = map
                                    .next_value::<Option<Annotations>>()?
                                    .is_some_and(|a| a.0)
                            }
                            MetaKey::Other => {
                                map.next_value::<IgnoredAny>()?;
                            }
                        }
                    }
                    Ok(m)
                }
            }
            d.deserialize_map(V)
        }
    }

    impl<'de> Deserialize<'de> for Annotations {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Annotations;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Annotations, A::Error> {
                    let mut found = false;
                    while let Some(key) = map.next_key::<AnnotationKey>()? {
                        found |= matches!(key, AnnotationKey::Mirror);
                        map.next_value::<IgnoredAny>()?;
                    }
                    Ok(Annotations(found))
                }
            }
            d.deserialize_map(V)
        }
    }
}

/// One object as listed, in the lean form the audit keeps.
#[derive(Debug, Clone)]
pub struct Listed {
    /// Its kind (list items of built-in kinds carry no `kind` field).
    pub kind: Kind,
    /// What grouping needs.
    pub head: Head,
    /// Its JSON text, read by the engine when it is evaluated (the typed pod spec is several
    /// times the size of its text); `None` once grouping has shown that it is reported at
    /// another object.
    text: Option<Box<str>>,
}

impl Listed {
    /// Reads one list item's JSON text as `kind`: its head now, its pod spec when evaluated.
    pub(crate) fn read(kind: Kind, text: &str) -> Result<Listed, serde_json::Error> {
        Ok(Listed {
            kind,
            head: Head::read(kind, text)?,
            text: Some(text.into()),
        })
    }

    /// The object as the engine evaluates it (`workload::read`, with the result of reading a
    /// parsed `Value`: an unreadable object is read again that way, for the same error text),
    /// or why it cannot be read; `None` when it was not kept.
    pub(crate) fn workload(&self) -> Option<Result<Workload, WorkloadError>> {
        let text = self.text.as_deref()?;
        Some(match workload::read(self.kind, Source::Raw(text)) {
            Ok(w) => Ok(w),
            Err(_) => match serde_json::from_str::<Value>(text) {
                Ok(object) => workload::read(self.kind, Source::Value(&object)),
                Err(e) => Err(WorkloadError::Invalid {
                    kind: self.kind.as_str(),
                    reason: e.to_string(),
                }),
            },
        })
    }

    /// Whether the object's text is kept for evaluation.
    #[cfg(test)]
    fn kept(&self) -> bool {
        self.text.is_some()
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        &self.head.name
    }

    /// `metadata.namespace`.
    pub fn namespace(&self) -> &str {
        &self.head.namespace
    }

    /// `metadata.uid`.
    pub fn uid(&self) -> &str {
        &self.head.uid
    }

    fn controller_uid(&self) -> Option<&str> {
        self.head.controller_uid.as_deref()
    }

    /// A static Pod's mirror, which the webhook skips when a node creates it: the
    /// `kubernetes.io/config.mirror` annotation with a Node as controller owner.
    pub(crate) fn is_mirror_pod(&self) -> bool {
        self.head.mirror_pod
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

/// Where an object is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Top {
    /// At itself.
    Itself,
    /// At the workload with this index.
    At(usize),
}

/// The listed objects: every workload, then the Pods reported on their own.
#[derive(Debug, Default)]
pub(crate) struct Inventory {
    objects: Vec<Listed>,
    /// Workloads by uid: the owners a Pod or another workload can roll up to.
    by_uid: HashMap<String, usize>,
    /// Pods reported at a workload, by its index; they are not in `objects`.
    pods_at: BTreeMap<usize, usize>,
    /// Pods skipped (mirror pods, excluded namespaces); they are not in `objects`.
    skipped_pods: Skipped,
}

/// What one list of Pods contributed, to be added to the inventory once the list is complete
/// (a list that restarts after `410 Gone` starts a new tally).
#[derive(Debug, Default)]
pub(crate) struct PodTally {
    /// Pods reported on their own.
    own: Vec<Listed>,
    /// Pods reported at a workload, by its index.
    at: BTreeMap<usize, usize>,
    /// Pods skipped.
    skipped: Skipped,
}

impl Inventory {
    /// The inventory of `workloads` (no Pods: those are tallied against it), listed in
    /// `KINDS` order. Keeps the pod spec of each workload that can be reported (at itself, or
    /// as the top of some Pod's owner chain) and gives back the others'.
    pub(crate) fn new(workloads: Vec<Listed>, excluded: &BTreeSet<String>) -> Inventory {
        let mut inv = Inventory {
            objects: workloads,
            ..Inventory::default()
        };
        for (i, o) in inv.objects.iter().enumerate() {
            if !o.uid().is_empty() {
                inv.by_uid.insert(o.uid().to_string(), i);
            }
        }
        // A workload is reported at the top of its chain; a Pod it owns, at the top of the
        // chain that starts one step before it (the same but for a cycle or an overlong chain).
        let mut kept: HashSet<usize> = HashSet::new();
        for (i, o) in inv.objects.iter().enumerate() {
            if !excluded.contains(o.namespace()) {
                kept.insert(inv.top_index(i));
            }
        }
        for (uid, &o) in &inv.by_uid {
            let namespace = inv.objects[o].namespace();
            if excluded.contains(namespace) {
                continue;
            }
            if let Top::At(t) = inv.top(usize::MAX, namespace, Some(uid)) {
                kept.insert(t);
            }
        }
        for (i, o) in inv.objects.iter_mut().enumerate() {
            if !kept.contains(&i) {
                o.text = None;
            }
        }
        inv
    }

    /// The objects: the workloads, then the Pods reported on their own.
    pub(crate) fn objects(&self) -> &[Listed] {
        &self.objects
    }

    /// Where the object at `index` (`usize::MAX`: a Pod not in `objects`) is reported,
    /// starting from its namespace and controller owner: the top of its chain of controller
    /// owners, or itself when the chain is a cycle.
    fn top(&self, index: usize, namespace: &str, controller_uid: Option<&str>) -> Top {
        let mut i = index;
        let mut owner = controller_uid;
        let mut seen = [0; MAX_OWNER_DEPTH];
        for step in 0..MAX_OWNER_DEPTH {
            if seen[..step].contains(&i) {
                // A cycle of owner references: nobody owns anybody; report where we started.
                return Top::Itself;
            }
            seen[step] = i;
            let next = owner
                .and_then(|uid| self.by_uid.get(uid).copied())
                // An owner in another namespace is not a real owner (the garbage collector
                // ignores such references).
                .filter(|&o| self.objects[o].namespace() == namespace && o != i);
            match next {
                Some(o) => {
                    i = o;
                    owner = self.objects[o].controller_uid();
                }
                None => break,
            }
        }
        if i == index { Top::Itself } else { Top::At(i) }
    }

    fn top_index(&self, index: usize) -> usize {
        let o = &self.objects[index];
        match self.top(index, o.namespace(), o.controller_uid()) {
            Top::Itself => index,
            Top::At(t) => t,
        }
    }

    /// Tallies one listed Pod from its JSON text: skipped, counted at the workload it is
    /// reported at (its spec is not read), or kept to be reported on its own.
    pub(crate) fn tally_pod(
        &self,
        tally: &mut PodTally,
        text: &str,
        excluded: &BTreeSet<String>,
    ) -> Result<(), serde_json::Error> {
        let head = Head::read(Kind::Pod, text)?;
        if excluded.contains(&head.namespace) {
            tally.skipped.excluded_namespaces += 1;
        } else if head.mirror_pod {
            tally.skipped.mirror_pods += 1;
        } else {
            match self.top(usize::MAX, &head.namespace, head.controller_uid.as_deref()) {
                Top::At(t) => *tally.at.entry(t).or_default() += 1,
                Top::Itself => tally.own.push(Listed {
                    kind: Kind::Pod,
                    head,
                    text: Some(text.into()),
                }),
            }
        }
        Ok(())
    }

    /// Adds a complete list's Pods.
    pub(crate) fn add(&mut self, tally: PodTally) {
        self.objects.extend(tally.own);
        for (t, n) in tally.at {
            *self.pods_at.entry(t).or_default() += n;
        }
        self.skipped_pods.mirror_pods += tally.skipped.mirror_pods;
        self.skipped_pods.excluded_namespaces += tally.skipped.excluded_namespaces;
    }

    /// Groups the objects; `excluded` are the namespaces the webhook is never called for.
    pub(crate) fn plan(&self, excluded: &BTreeSet<String>) -> Plan {
        let mut skipped = self.skipped_pods.clone();
        let mut subjects: BTreeMap<usize, Subject> = BTreeMap::new();
        let subject = |t: usize| Subject {
            index: t,
            pods: 0,
            folded: Vec::new(),
        };
        for (i, o) in self.objects.iter().enumerate() {
            if excluded.contains(o.namespace()) {
                skipped.excluded_namespaces += 1;
                continue;
            }
            if o.is_mirror_pod() {
                skipped.mirror_pods += 1;
                continue;
            }
            let t = self.top_index(i);
            let entry = subjects.entry(t).or_insert_with(|| subject(t));
            if o.kind == Kind::Pod {
                entry.pods += 1;
            } else if t != i {
                entry.folded.push(i);
            }
        }
        for (&t, &n) in &self.pods_at {
            subjects.entry(t).or_insert_with(|| subject(t)).pods += n;
        }
        let rank = |k: Kind| KINDS.iter().position(|x| *x == k).unwrap_or(KINDS.len());
        let mut subjects: Vec<Subject> = subjects.into_values().collect();
        subjects.sort_by(|a, b| {
            let (x, y) = (&self.objects[a.index], &self.objects[b.index]);
            (rank(x.kind), x.namespace(), x.name()).cmp(&(rank(y.kind), y.namespace(), y.name()))
        });
        Plan { subjects, skipped }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// An object whose controller owner is named `owner` in its own namespace.
    fn obj(kind: Kind, ns: &str, name: &str, owner: Option<&str>) -> Value {
        obj_owned(kind, ns, name, owner.map(|o| format!("uid-{ns}-{o}")))
    }

    /// An object whose controller owner has uid `owner`.
    fn obj_owned(kind: Kind, ns: &str, name: &str, owner: Option<String>) -> Value {
        let mut meta = json!({"name": name, "namespace": ns, "uid": format!("uid-{ns}-{name}")});
        if let Some(o) = owner {
            meta["ownerReferences"] = json!([
                {"apiVersion": "v1", "kind": "X", "name": "x", "uid": "someone-else", "controller": false},
                {"apiVersion": "v1", "kind": "X", "name": "o", "uid": o, "controller": true},
            ]);
        }
        let spec = json!({"containers": [{"name": "c", "image": "i:1"}]});
        let spec = if kind == Kind::Pod {
            spec
        } else if kind == Kind::CronJob {
            json!({"jobTemplate": {"spec": {"template": {"spec": spec}}}})
        } else {
            json!({"template": {"spec": spec}})
        };
        json!({"metadata": meta, "spec": spec})
    }

    /// The grouping as it was when every listed object was kept as a `Value`: the reference.
    fn reference_plan(objects: &[(Kind, Value)], excluded: &BTreeSet<String>) -> Vec<Row> {
        let heads: Vec<Listed> = objects
            .iter()
            .map(|(k, v)| Listed {
                kind: *k,
                head: Head::of_value(*k, v),
                text: None,
            })
            .collect();
        let mut by_uid: HashMap<&str, usize> = HashMap::new();
        for (i, o) in heads.iter().enumerate() {
            if o.kind != Kind::Pod && !o.uid().is_empty() {
                by_uid.insert(o.uid(), i);
            }
        }
        let top = |start: usize| -> usize {
            let mut i = start;
            let mut seen = [usize::MAX; MAX_OWNER_DEPTH];
            for step in 0..MAX_OWNER_DEPTH {
                if seen[..step].contains(&i) {
                    return start;
                }
                seen[step] = i;
                let next = heads[i]
                    .controller_uid()
                    .and_then(|uid| by_uid.get(uid).copied())
                    .filter(|&o| heads[o].namespace() == heads[i].namespace() && o != i);
                match next {
                    Some(o) => i = o,
                    None => break,
                }
            }
            i
        };
        let mut subjects: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
        let (mut mirror, mut excl) = (0, 0);
        for (i, o) in heads.iter().enumerate() {
            if excluded.contains(o.namespace()) {
                excl += 1;
                continue;
            }
            if o.is_mirror_pod() {
                mirror += 1;
                continue;
            }
            let t = top(i);
            let e = subjects.entry(t).or_default();
            if o.kind == Kind::Pod {
                e.0 += 1;
            } else if t != i {
                e.1 += 1;
            }
        }
        let rank = |k: Kind| KINDS.iter().position(|x| *x == k).unwrap_or(KINDS.len());
        let mut rows: Vec<(usize, usize, usize)> =
            subjects.into_iter().map(|(t, (p, f))| (t, p, f)).collect();
        rows.sort_by(|a, b| {
            let (x, y) = (&heads[a.0], &heads[b.0]);
            (rank(x.kind), x.namespace(), x.name()).cmp(&(rank(y.kind), y.namespace(), y.name()))
        });
        let mut out: Vec<Row> = rows
            .into_iter()
            .map(|(t, p, f)| {
                let o = &heads[t];
                (
                    format!(
                        "{}/{}/{}/{}",
                        o.kind.as_str(),
                        o.namespace(),
                        o.name(),
                        o.uid()
                    ),
                    p,
                    f,
                )
            })
            .collect();
        out.push((format!("skipped {mirror} {excl}"), 0, 0));
        out
    }

    type Row = (String, usize, usize);

    /// The inventory of `objects` as the audit builds it (workloads first, Pods tallied),
    /// its plan, as rows like the reference's; checks that every subject was kept.
    fn rows(objects: &[(Kind, Value)], excluded: &BTreeSet<String>) -> (Inventory, Vec<Row>) {
        let workloads: Vec<Listed> = objects
            .iter()
            .filter(|(k, _)| *k != Kind::Pod)
            .map(|(k, v)| Listed::read(*k, &v.to_string()).unwrap())
            .collect();
        let mut inv = Inventory::new(workloads, excluded);
        let mut tally = PodTally::default();
        for (_, v) in objects.iter().filter(|(k, _)| *k == Kind::Pod) {
            inv.tally_pod(&mut tally, &v.to_string(), excluded).unwrap();
        }
        inv.add(tally);
        let p = inv.plan(excluded);
        let mut out: Vec<Row> = p
            .subjects
            .iter()
            .map(|s| {
                let o = &inv.objects()[s.index];
                assert!(o.kept(), "{:?} was not kept", o.head);
                (
                    format!(
                        "{}/{}/{}/{}",
                        o.kind.as_str(),
                        o.namespace(),
                        o.name(),
                        o.uid()
                    ),
                    s.pods,
                    s.folded.len(),
                )
            })
            .collect();
        out.push((
            format!(
                "skipped {} {}",
                p.skipped.mirror_pods, p.skipped.excluded_namespaces
            ),
            0,
            0,
        ));
        (inv, out)
    }

    fn name(kind: Kind, ns: &str, name: &str) -> String {
        format!("{}/{ns}/{name}/uid-{ns}-{name}", kind.as_str())
    }

    #[test]
    fn pods_roll_up_through_replicasets_and_jobs_to_the_top_workload() {
        let objects = vec![
            (Kind::Deployment, obj(Kind::Deployment, "a", "web", None)),
            (Kind::StatefulSet, obj(Kind::StatefulSet, "b", "db", None)),
            (Kind::CronJob, obj(Kind::CronJob, "a", "batch", None)),
            (Kind::Job, obj(Kind::Job, "a", "batch-job", Some("batch"))),
            (
                Kind::ReplicaSet,
                obj(Kind::ReplicaSet, "a", "web-rs", Some("web")),
            ),
            (Kind::Pod, obj(Kind::Pod, "a", "web-1", Some("web-rs"))),
            (Kind::Pod, obj(Kind::Pod, "a", "web-2", Some("web-rs"))),
            (Kind::Pod, obj(Kind::Pod, "a", "batch-1", Some("batch-job"))),
            (Kind::Pod, obj(Kind::Pod, "b", "bare", None)),
            (Kind::Pod, obj(Kind::Pod, "b", "orphan", Some("gone-rs"))),
        ];
        let (inv, got) = rows(&objects, &BTreeSet::new());
        assert_eq!(
            got,
            vec![
                (name(Kind::Deployment, "a", "web"), 2, 1),
                (name(Kind::StatefulSet, "b", "db"), 0, 0),
                (name(Kind::CronJob, "a", "batch"), 1, 1),
                (name(Kind::Pod, "b", "bare"), 1, 0),
                (name(Kind::Pod, "b", "orphan"), 1, 0),
                ("skipped 0 0".to_string(), 0, 0),
            ]
        );
        assert_eq!(got, reference_plan(&objects, &BTreeSet::new()));
        // Kept: the workloads reported, the two bare Pods; the ReplicaSet and the Job gave
        // their text back, the three owned Pods were never kept.
        let kept: Vec<&str> = inv
            .objects()
            .iter()
            .filter(|o| o.kept())
            .map(Listed::name)
            .collect();
        assert_eq!(kept, vec!["web", "db", "batch", "bare", "orphan"]);
    }

    #[test]
    fn mirror_pods_and_excluded_namespaces_are_skipped_and_counted() {
        let mut mirror = obj(Kind::Pod, "a", "etcd-node1", None);
        mirror["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "x"});
        mirror["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "Node", "name": "node1", "uid": "n1", "controller": true}]);
        // The annotation alone is anyone's to write: judged like any Pod.
        let mut forged = obj(Kind::Pod, "a", "fake-mirror", None);
        forged["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "x"});
        let objects = vec![
            (
                Kind::Deployment,
                obj(Kind::Deployment, "kube-system", "coredns", None),
            ),
            (Kind::Pod, mirror),
            (Kind::Pod, forged),
            (Kind::Pod, obj(Kind::Pod, "kube-system", "dns", None)),
            (Kind::Pod, obj(Kind::Pod, "a", "p", None)),
        ];
        let excluded = BTreeSet::from(["kube-system".to_string()]);
        let (_, got) = rows(&objects, &excluded);
        assert_eq!(
            got,
            vec![
                (name(Kind::Pod, "a", "fake-mirror"), 1, 0),
                (name(Kind::Pod, "a", "p"), 1, 0),
                ("skipped 1 2".to_string(), 0, 0),
            ]
        );
        assert_eq!(got, reference_plan(&objects, &excluded));
    }

    #[test]
    fn an_owner_cycle_or_a_cross_namespace_owner_does_not_hang_or_fold() {
        let objects = vec![
            (Kind::ReplicaSet, obj(Kind::ReplicaSet, "a", "x", Some("y"))),
            (Kind::ReplicaSet, obj(Kind::ReplicaSet, "a", "y", Some("x"))),
            // Owned by "uid-b-x", which is not listed: it stays bare.
            (Kind::Pod, obj(Kind::Pod, "b", "p", Some("x"))),
            // In the cycle's namespace: the cycle owns nobody, the Pod is reported itself.
            (Kind::Pod, obj(Kind::Pod, "a", "q", Some("x"))),
        ];
        let (_, got) = rows(&objects, &BTreeSet::new());
        assert_eq!(got, reference_plan(&objects, &BTreeSet::new()));
        assert!(got.contains(&(name(Kind::Pod, "b", "p"), 1, 0)), "{got:?}");
        assert!(got.contains(&(name(Kind::Pod, "a", "q"), 1, 0)), "{got:?}");
        assert_eq!(got.iter().map(|r| r.1).sum::<usize>(), 2);
        // Every listed object is accounted for exactly once.
        assert_eq!(got.iter().map(|r| 1 + r.2).sum::<usize>() - 1, 4);
    }

    #[test]
    fn a_chain_longer_than_the_limit_reports_a_pod_where_its_steps_end() {
        // rs0 <- rs1 <- ... <- rs9 (each owned by the next), and a Pod owned by rs0: from the
        // Pod, the steps end at rs7, which no workload's chain ends at.
        let mut objects: Vec<(Kind, Value)> = (0..10)
            .map(|i| {
                let owner = (i < 9).then(|| format!("rs{}", i + 1));
                let o = obj(Kind::ReplicaSet, "a", &format!("rs{i}"), owner.as_deref());
                (Kind::ReplicaSet, o)
            })
            .collect();
        objects.push((Kind::Pod, obj(Kind::Pod, "a", "p", Some("rs0"))));
        let (_, got) = rows(&objects, &BTreeSet::new());
        assert_eq!(got, reference_plan(&objects, &BTreeSet::new()));
        assert!(
            got.contains(&(name(Kind::ReplicaSet, "a", "rs7"), 1, 0)),
            "{got:?}"
        );
    }

    /// Deterministic pseudo-random clusters with chains longer than `MAX_OWNER_DEPTH`,
    /// cycles, cross-namespace and dangling owners, duplicate uids, mirror Pods and excluded
    /// namespaces: the audit's grouping equals the reference, and every subject was kept.
    #[test]
    fn the_lean_grouping_equals_the_reference_on_generated_clusters() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let workload_kinds = workload_kinds();
        assert_eq!(KINDS[7], Kind::Pod);
        let excluded = BTreeSet::from(["x".to_string()]);
        for round in 0..300 {
            let n_workloads = 1 + next(24) as usize;
            let n_pods = next(30) as usize;
            let nss = ["a", "b", "x"];
            let mut names: Vec<(String, String)> = Vec::new(); // (namespace, name)
            let mut objects = Vec::new();
            for i in 0..n_workloads {
                let ns = nss[next(if round % 2 == 0 { 1 } else { 3 }) as usize];
                let name = if next(10) == 0 && i > 0 {
                    // A duplicate of an earlier name (and so uid) in some namespace.
                    names[next(i as u64) as usize].1.clone()
                } else {
                    format!("w{i}")
                };
                names.push((ns.to_string(), name));
            }
            // The uid of a listed workload, mostly in `ns` (else a cross-namespace owner).
            let owner_uid = |ns: &str, j: usize, cross: bool| {
                let (owner_ns, owner) = &names[j % names.len()];
                let ns = if cross { owner_ns.as_str() } else { ns };
                format!("uid-{ns}-{owner}")
            };
            for i in 0..names.len() {
                let (ns, name) = names[i].clone();
                let kind = workload_kinds[next(7) as usize];
                let owner = match next(4) {
                    0 => None,
                    1 => Some("nobody".to_string()),
                    // Mostly a later one (chains), sometimes any (cycles).
                    2 => Some(owner_uid(&ns, i + 1 + next(2) as usize, next(6) == 0)),
                    _ => Some(owner_uid(
                        &ns,
                        next(names.len() as u64) as usize,
                        next(6) == 0,
                    )),
                };
                objects.push((kind, obj_owned(kind, &ns, &name, owner)));
            }
            // Workloads are listed in kind order.
            objects.sort_by_key(|(k, _)| KINDS.iter().position(|x| x == k));
            for p in 0..n_pods {
                let ns = nss[next(3) as usize];
                let owner = match next(5) {
                    0 => None,
                    1 => Some("nobody".to_string()),
                    _ => Some(owner_uid(
                        ns,
                        next(names.len() as u64) as usize,
                        next(6) == 0,
                    )),
                };
                let mut pod = obj_owned(Kind::Pod, ns, &format!("p{p}"), owner);
                if next(8) == 0 {
                    pod["metadata"]["annotations"] = json!({MIRROR_ANNOTATION: ""});
                    if next(2) == 0 {
                        pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "Node", "name": "n", "uid": "n", "controller": true}]);
                    }
                }
                objects.push((Kind::Pod, pod));
            }
            let (_, got) = rows(&objects, &excluded);
            assert_eq!(got, reference_plan(&objects, &excluded), "round {round}");
        }
    }

    /// The fast head reading equals the `Value` one on ordinary and odd shapes.
    #[test]
    fn the_head_read_from_text_equals_the_head_of_the_value() {
        let cases = [
            r#"{"metadata":{"name":"a","namespace":"n","uid":"u","ownerReferences":[{"uid":"o","controller":true}]}}"#,
            r#"{"metadata":{"name":"a","name":"b","uid":7,"namespace":null}}"#,
            r#"{"metadata":{"annotations":{"kubernetes.io/config.mirror":null},"ownerReferences":[{"kind":"Node","apiVersion":"v1","controller":true,"uid":"n"}]}}"#,
            r#"{"metadata":{"annotations":{"kubernetes.io\/config.mirror":"x"},"ownerReferences":[{"kind":"Node","apiVersion":"v1","controller":true}]}}"#,
            r#"{"metadata":{"annotations":["kubernetes.io/config.mirror"],"ownerReferences":[{"kind":"Node","apiVersion":"v1","controller":true}]}}"#,
            r#"{"metadata":{"annotations":null,"ownerReferences":{"controller":true}}}"#,
            r#"{"metadata":{"ownerReferences":[{"controller":"true","uid":"a"},{"controller":true,"uid":1},{"controller":true,"uid":"c"}]}}"#,
            r#"{"metadata":null}"#,
            r#"{"metadata":["name","a"]}"#,
            r#"{"metadata":{"name":"a"},"metadata":{"uid":"b"}}"#,
            r#"["metadata",{"name":"a"}]"#,
            r#""a string""#,
            r#"null"#,
            r#"{"spec":{"containers":[]},"metadata":{"managedFields":[{"x":1}],"labels":{"a":"b"},"name":"z"}}"#,
        ];
        for text in cases {
            let value: Value = serde_json::from_str(text).unwrap();
            for kind in [Kind::Pod, Kind::Deployment] {
                assert_eq!(
                    Head::read(kind, text).unwrap(),
                    Head::of_value(kind, &value),
                    "{text}"
                );
            }
        }
        // Not JSON that a `Value` holds, where the head is read: an error, as listing it as a
        // `Value` was. Where nothing is read, it is skipped unbuilt.
        assert!(Head::read(Kind::Pod, r#"{"metadata":{"uid":1e400}}"#).is_err());
        assert!(Head::read(Kind::Pod, r#"{"metadata":{"x":1e400}}"#).is_ok());
    }

    /// A kept object is read by the engine as the reference reading of its `Value` reads it,
    /// unreadable ones included (with the same error text).
    #[test]
    fn the_workload_read_from_text_equals_the_workload_of_the_value() {
        let cases = [
            (Kind::Pod, obj(Kind::Pod, "a", "p", Some("rs")).to_string()),
            (Kind::CronJob, obj(Kind::CronJob, "a", "c", None).to_string()),
            (
                Kind::Pod,
                r#"{"metadata":{"name":"p","annotations":{"a":"b"},"labels":{"x":"y"}},"spec":{"containers":[{"name":"c","image":"i"}],"hostNetwork":true}}"#.to_string(),
            ),
            (Kind::Pod, r#"{"metadata":{"name":"p"}}"#.to_string()),
            (
                Kind::Pod,
                r#"{"metadata":{"name":"p"},"spec":{"containers":[{"name":"c"}],"containers":[]}}"#.to_string(),
            ),
            (Kind::Pod, r#"{"spec":{"hostPID":"yes"}}"#.to_string()),
            (Kind::Deployment, r#"{"apiVersion":"apps/v2","spec":{}}"#.to_string()),
            (Kind::Job, r#"[1,2]"#.to_string()),
        ];
        for (kind, text) in cases {
            let value: Value = serde_json::from_str(&text).unwrap();
            let got = Listed::read(kind, &text).unwrap().workload().unwrap();
            let reference = workload::read(kind, Source::Value(&value));
            assert_eq!(format!("{got:?}"), format!("{reference:?}"), "{text}");
        }
        // Not JSON a `Value` holds, in what the engine reads: unreadable, not a panic.
        let text = r#"{"metadata":{"name":"p"},"spec":{"priority":1e400}}"#;
        let got = Listed::read(Kind::Pod, text).unwrap().workload().unwrap();
        assert!(got.is_err(), "{got:?}");
    }
}
