//! The object store behind the test API server: registered resources, objects keyed like etcd
//! keys, the global resourceVersion counter, watch history and list snapshots for `continue`.
//!
//! No HTTP here: `http.rs` maps requests onto these operations and errors onto Status bodies.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

/// How many watch events are kept for `watch` from an older resourceVersion.
pub const HISTORY_LIMIT: usize = 100_000;
/// How many list snapshots (continue tokens) are kept before the oldest expire.
pub const SNAPSHOT_LIMIT: usize = 256;

/// A resource the server knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// API group ("" for core).
    pub group: String,
    /// Version.
    pub version: String,
    /// Plural resource name.
    pub plural: String,
    /// Kind.
    pub kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// False while the resource is not served (a CRD that is not installed).
    pub served: bool,
}

impl Resource {
    fn new(group: &str, version: &str, plural: &str, kind: &str, namespaced: bool) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            kind: kind.into(),
            namespaced,
            served: true,
        }
    }

    /// `apiVersion` of its objects.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `pods`, `deployments.apps`: how the apiserver names it in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `Pod`, `Deployment.apps`: how the apiserver names the kind in Invalid messages.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
}

/// The resources registered at start.
pub fn default_resources() -> Vec<Resource> {
    let r = Resource::new;
    vec![
        r("", "v1", "pods", "Pod", true),
        r("", "v1", "secrets", "Secret", true),
        r("", "v1", "configmaps", "ConfigMap", true),
        r("", "v1", "namespaces", "Namespace", false),
        r("", "v1", "serviceaccounts", "ServiceAccount", true),
        r("", "v1", "services", "Service", true),
        r(
            "",
            "v1",
            "replicationcontrollers",
            "ReplicationController",
            true,
        ),
        r("apps", "v1", "deployments", "Deployment", true),
        r("apps", "v1", "replicasets", "ReplicaSet", true),
        r("apps", "v1", "statefulsets", "StatefulSet", true),
        r("apps", "v1", "daemonsets", "DaemonSet", true),
        r("batch", "v1", "jobs", "Job", true),
        r("batch", "v1", "cronjobs", "CronJob", true),
        r(
            "admissionregistration.k8s.io",
            "v1",
            "mutatingwebhookconfigurations",
            "MutatingWebhookConfiguration",
            false,
        ),
        r(
            "admissionregistration.k8s.io",
            "v1",
            "validatingwebhookconfigurations",
            "ValidatingWebhookConfiguration",
            false,
        ),
        r("coordination.k8s.io", "v1", "leases", "Lease", true),
        r(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
        ),
        r(
            "wgpolicyk8s.io",
            "v1alpha2",
            "policyreports",
            "PolicyReport",
            true,
        ),
        r(
            "wgpolicyk8s.io",
            "v1alpha2",
            "clusterpolicyreports",
            "ClusterPolicyReport",
            false,
        ),
    ]
}

/// Where an object lives: (group, version, resource, namespace, name), ordered like etcd keys.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub group: String,
    pub version: String,
    pub resource: String,
    pub namespace: String,
    pub name: String,
}

/// A watch event as stored.
#[derive(Debug, Clone)]
pub struct Event {
    /// The resourceVersion the change produced.
    pub rv: u64,
    /// ADDED, MODIFIED or DELETED.
    pub kind: &'static str,
    /// Which object.
    pub key: Key,
    /// The object after the change (before it, for DELETED, with the deletion's resourceVersion).
    pub object: Arc<Value>,
}

/// A list snapshot for continue tokens.
pub struct Snapshot {
    /// The resourceVersion the list was taken at.
    pub rv: u64,
    /// Every matching item, in key order.
    pub items: Vec<Arc<Value>>,
}

/// Checks a would-be stored object; `Err(message)` answers 422 Invalid.
pub type Validator = Arc<dyn Fn(&Value) -> Result<(), String> + Send + Sync>;

/// One request as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Raw query string ("" when none).
    pub query: String,
    /// Content-Type header, if any.
    pub content_type: Option<String>,
    /// The `fieldManager` query parameter, if any.
    pub field_manager: Option<String>,
}

/// A verb refused with 403.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forbidden {
    pub verb: String,
    pub group: String,
    pub resource: String,
    /// Only in this namespace; `None`: everywhere.
    pub namespace: Option<String>,
}

/// Everything behind the lock.
pub struct Store {
    pub resources: Vec<Resource>,
    pub objects: BTreeMap<Key, Arc<Value>>,
    pub rv: u64,
    pub uid_counter: u64,
    pub history: VecDeque<Event>,
    /// Watches from a resourceVersion below this answer 410 Gone.
    pub history_floor: u64,
    pub snapshots: HashMap<u64, Arc<Snapshot>>,
    pub snapshot_order: VecDeque<u64>,
    pub next_snapshot: u64,
    pub forbidden: Vec<Forbidden>,
    pub validators: HashMap<String, Validator>,
    pub requests: Vec<RecordedRequest>,
    pub record_requests: bool,
    /// The next this many continued lists answer 410 Gone.
    pub expire_next_continues: usize,
    pub down: bool,
    pub user: String,
    pub events: broadcast::Sender<Event>,
}

impl Store {
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(16_384);
        Self {
            resources: default_resources(),
            objects: BTreeMap::new(),
            rv: 1000,
            uid_counter: 0,
            history: VecDeque::new(),
            history_floor: 0,
            snapshots: HashMap::new(),
            snapshot_order: VecDeque::new(),
            next_snapshot: 1,
            forbidden: Vec::new(),
            validators: HashMap::new(),
            requests: Vec::new(),
            record_requests: true,
            expire_next_continues: 0,
            down: false,
            user: "system:serviceaccount:podgate:podgate".into(),
            events,
        }
    }

    /// The registered resource for (group, version, plural), served or not.
    pub fn resource(&self, group: &str, version: &str, plural: &str) -> Option<&Resource> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
    }

    /// The registered resource for an apiVersion and kind.
    pub fn resource_for_kind(&self, api_version: &str, kind: &str) -> Option<&Resource> {
        self.resources
            .iter()
            .find(|r| r.api_version() == api_version && r.kind == kind)
    }

    pub fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    pub fn next_uid(&mut self) -> String {
        self.uid_counter += 1;
        // Shaped like a UUID (8-4-4-4-12), unique within the server.
        let n = self.uid_counter;
        format!("00000000-0000-4000-8000-{n:012x}")
    }

    /// Records a change for watchers.
    pub fn publish(&mut self, kind: &'static str, key: Key, object: Arc<Value>) {
        let rv = self.rv;
        let event = Event {
            rv,
            kind,
            key,
            object,
        };
        self.history.push_back(event.clone());
        while self.history.len() > HISTORY_LIMIT {
            if let Some(old) = self.history.pop_front() {
                self.history_floor = old.rv;
            }
        }
        // No receivers is fine.
        let _ = self.events.send(event);
    }

    /// Drops the watch history: watches from any earlier resourceVersion answer 410.
    pub fn compact(&mut self) {
        self.history.clear();
        self.history_floor = self.rv;
    }

    /// Keeps a snapshot for continue tokens; returns its id.
    pub fn keep_snapshot(&mut self, snapshot: Snapshot) -> u64 {
        let id = self.next_snapshot;
        self.next_snapshot += 1;
        self.snapshots.insert(id, Arc::new(snapshot));
        self.snapshot_order.push_back(id);
        while self.snapshot_order.len() > SNAPSHOT_LIMIT {
            if let Some(old) = self.snapshot_order.pop_front() {
                self.snapshots.remove(&old);
            }
        }
        id
    }

    /// Every continue token handed out so far answers 410 Gone.
    pub fn expire_continue_tokens(&mut self) {
        self.snapshots.clear();
        self.snapshot_order.clear();
    }

    /// The objects of one resource, optionally in one namespace, in key order.
    pub fn range<'a>(
        &'a self,
        r: &Resource,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a Key, &'a Arc<Value>)> + 'a {
        let start = Key {
            group: r.group.clone(),
            version: r.version.clone(),
            resource: r.plural.clone(),
            namespace: namespace.unwrap_or("").to_string(),
            name: String::new(),
        };
        let (group, version, resource) = (r.group.clone(), r.version.clone(), r.plural.clone());
        self.objects.range(start..).take_while(move |(k, _)| {
            k.group == group
                && k.version == version
                && k.resource == resource
                && namespace.is_none_or(|ns| k.namespace == ns)
        })
    }
}

/// A parsed `labelSelector` or `fieldSelector` (equality-based, as `kubectl -l` sends).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    reqs: Vec<Req>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Req {
    Eq(String, String),
    NotEq(String, String),
    Exists(String),
    NotExists(String),
}

impl Selector {
    /// Parses `a=b,c!=d,e,!f` (also `==`); `Err` names the bad term.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let req = if let Some((k, v)) = term.split_once("!=") {
                Req::NotEq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = term.split_once("==") {
                Req::Eq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = term.split_once('=') {
                Req::Eq(k.trim().into(), v.trim().into())
            } else if let Some(k) = term.strip_prefix('!') {
                Req::NotExists(k.trim().into())
            } else if term.contains(' ') || term.contains('(') {
                return Err(format!(
                    "unable to parse requirement: {term:?} (set-based selectors are not implemented by the test server)"
                ));
            } else {
                Req::Exists(term.into())
            };
            reqs.push(req);
        }
        Ok(Self { reqs })
    }

    /// True when every requirement holds; `get` reads a label or field.
    pub fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.reqs.iter().all(|r| match r {
            Req::Eq(k, v) => get(k).as_deref() == Some(v.as_str()),
            Req::NotEq(k, v) => get(k).as_deref() != Some(v.as_str()),
            Req::Exists(k) => get(k).is_some(),
            Req::NotExists(k) => get(k).is_none(),
        })
    }

    /// Labels of an object.
    pub fn matches_labels(&self, obj: &Value) -> bool {
        self.matches(|k| {
            obj.pointer("/metadata/labels")
                .and_then(|l| l.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
    }

    /// The fields the apiserver supports for every kind: metadata.name and metadata.namespace.
    pub fn matches_fields(&self, obj: &Value) -> bool {
        self.matches(|k| {
            let pointer = match k {
                "metadata.name" => "/metadata/name",
                "metadata.namespace" => "/metadata/namespace",
                _ => return None,
            };
            Some(
                obj.pointer(pointer)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            )
        })
    }
}

/// Current time as the apiserver writes it (RFC 3339, seconds).
pub fn now() -> String {
    let now = jiff::Timestamp::now();
    jiff::Timestamp::from_second(now.as_second())
        .map(|t| t.to_string())
        .unwrap_or_else(|_| now.to_string())
}

/// The `metadata` object of `obj`, created when missing.
pub fn metadata_mut(obj: &mut Value) -> &mut serde_json::Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    match obj.get_mut("metadata").and_then(Value::as_object_mut) {
        Some(m) => m,
        None => unreachable!("metadata was just made an object"),
    }
}

/// A string field of `metadata`.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
}
