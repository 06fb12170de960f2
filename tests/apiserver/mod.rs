//! An in-process Kubernetes API server for integration tests, spoken to with kube's real
//! client (`kube::Client`) over plain HTTP on 127.0.0.1.
//!
//! What it does, as the real kube-apiserver does for the endpoints podgate uses (this header is
//! the reference for users of the module):
//! - one JSON object store keyed by (group, version, resource, namespace, name) over a small
//!   registry of resources (`store::default_resources`); an unregistered or unserved resource
//!   answers 404 "the server could not find the requested resource"; discovery (`/api`,
//!   `/apis`, `/api/v1`, `/apis/{group}/{version}`) lists the served ones;
//! - GET (404), LIST (namespaced or across namespaces) with `limit`/`continue` over a consistent
//!   snapshot, list `resourceVersion`, `remainingItemCount`, equality `labelSelector` and
//!   `fieldSelector` (metadata.name, metadata.namespace); list items of built-in kinds come
//!   without apiVersion/kind, as from the real server; an expired continue token answers 410
//!   Expired;
//! - POST (409 AlreadyExists, `generateName`, uid, resourceVersion from one global counter,
//!   creationTimestamp, generation; 422 Invalid without a name or from a validator), PUT (404,
//!   409 on a stale resourceVersion), PATCH (server-side apply, merge, strategic merge treated as
//!   merge, JSON patch; a stale resourceVersion in the body: 409), DELETE (404; preconditions;
//!   answers the deleted object); `dryRun=All`; the `status` subresource (GET/PUT/PATCH on the
//!   object, PUT changes only status);
//! - server-side apply keeps ownership per manager in `metadata.managedFields` (fieldsV1), answers
//!   409 on a conflict with another manager unless `force=true`, and removes fields a manager
//!   stops applying. Simplification: every list is atomic (no associative lists), see `apply.rs`;
//! - WATCH: newline-delimited ADDED/MODIFIED/DELETED events after `resourceVersion` (the current
//!   state as ADDED first when it is empty or "0", or with `sendInitialEvents=true` followed by the
//!   initial-events-end BOOKMARK), `labelSelector`, `fieldSelector`, `timeoutSeconds` (a BOOKMARK
//!   at the end when `allowWatchBookmarks=true`), and an ERROR event with a 410 Expired Status
//!   when the resourceVersion is older than the kept history (`compact()` drops it). A label
//!   change that moves an object out of a selector is not turned into DELETED (simplification);
//! - namespaces need not exist before objects are created in them (simplification).
//!
//! Test controls on the handle: `url`, `client`, `write_kubeconfig`, `insert`/`get`/`list`/
//! `remove` on the store, `forbid`/`forbid_in`/`allow` (403 with the apiserver's message),
//! `set_down` (new connections are dropped and open ones break), `set_unavailable` (503),
//! `expire_continue_tokens`, `expire_next_continues`, `compact`, `requests`/`clear_requests`, `set_validator`,
//! `set_served` (a CRD that is not installed), `set_user` (the name in 403 messages).
#![allow(dead_code)]
// Test support: failing loudly is its job.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod apply;
mod http;
pub mod store;

use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use serde_json::{Value, json};

use self::http::{Shared, lock};
pub use self::store::{Forbidden, RecordedRequest, Resource};
use self::store::{Key, Store};

/// A running test API server; stops when dropped.
pub struct ApiServer {
    shared: Shared,
    down: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A listener that drops new connections while the server is down.
struct Gate {
    inner: tokio::net::TcpListener,
    down: Arc<AtomicBool>,
}

/// A connection that fails every read and write while the server is down, so that clients see
/// a broken connection (not a 503, which kube's client retries for minutes).
struct GatedStream {
    inner: tokio::net::TcpStream,
    down: Arc<AtomicBool>,
}

impl GatedStream {
    fn check(&self) -> std::io::Result<()> {
        if self.down.load(Ordering::SeqCst) {
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "the test API server is down",
            ))
        } else {
            Ok(())
        }
    }
}

impl tokio::io::AsyncRead for GatedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for GatedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl axum::serve::Listener for Gate {
    type Io = GatedStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((io, addr)) => {
                    if self.down.load(Ordering::SeqCst) {
                        drop(io);
                        continue;
                    }
                    let _ = io.set_nodelay(true);
                    let io = GatedStream {
                        inner: io,
                        down: self.down.clone(),
                    };
                    return (io, addr);
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

impl ApiServer {
    /// Starts a server on 127.0.0.1 with an empty store, on the current tokio runtime.
    pub async fn start() -> ApiServer {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let shared: Shared = Arc::new(Mutex::new(Store::new()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .fallback(http::handle)
            .with_state(shared.clone());
        let down = Arc::new(AtomicBool::new(false));
        let gate = Gate {
            inner: listener,
            down: down.clone(),
        };
        let task = tokio::spawn(async move {
            let _ = axum::serve(gate, app).await;
        });
        ApiServer {
            shared,
            down,
            addr,
            task,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// kube's real client for this server, default namespace "default".
    pub fn client(&self) -> kube::Client {
        let mut config = kube::Config::new(self.url().parse().unwrap());
        config.default_namespace = "default".into();
        kube::Client::try_from(config).unwrap()
    }

    /// Writes a kubeconfig pointing at this server (for running the podgate binary).
    pub fn write_kubeconfig(&self, path: &Path) {
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\nusers:\n- name: test\n  user:\n    token: test-token\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n    namespace: default\ncurrent-context: test\n",
            self.url()
        );
        std::fs::write(path, text).unwrap();
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        lock(&self.shared)
    }

    /// Stores an object directly (no validation; the object needs apiVersion, kind and a name).
    /// Sets uid, resourceVersion, creationTimestamp and generation when missing, replaces an
    /// existing object of the same key, and tells watchers. Returns the stored object.
    pub fn insert(&self, mut obj: Value) -> Value {
        let mut store = self.store();
        let api_version = obj["apiVersion"].as_str().unwrap_or("").to_string();
        let kind = obj["kind"].as_str().unwrap_or("").to_string();
        let r = store
            .resource_for_kind(&api_version, &kind)
            .unwrap_or_else(|| panic!("apiserver: no resource for {api_version} {kind}"))
            .clone();
        let name = store::meta_str(&obj, "name")
            .unwrap_or_else(|| panic!("apiserver: insert needs metadata.name"))
            .to_string();
        let namespace = if r.namespaced {
            store::meta_str(&obj, "namespace")
                .filter(|n| !n.is_empty())
                .unwrap_or("default")
                .to_string()
        } else {
            String::new()
        };
        let rv = store.next_rv();
        let uid = store.next_uid();
        let meta = store::metadata_mut(&mut obj);
        if r.namespaced {
            meta.insert("namespace".into(), json!(namespace));
        }
        meta.entry("uid").or_insert(json!(uid));
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
        meta.entry("creationTimestamp")
            .or_insert(json!(store::now()));
        meta.entry("generation").or_insert(json!(1));
        let key = Key {
            group: r.group.clone(),
            version: r.version.clone(),
            resource: r.plural.clone(),
            namespace,
            name,
        };
        let event = if store.objects.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        let stored = Arc::new(obj);
        store.objects.insert(key.clone(), stored.clone());
        store.publish(event, key, stored.clone());
        (*stored).clone()
    }

    /// Stores many objects at once (faster than `insert` one by one for big fixtures).
    pub fn insert_all(&self, objs: impl IntoIterator<Item = Value>) {
        for o in objs {
            self.insert(o);
        }
    }

    fn key(&self, group: &str, resource: &str, namespace: &str, name: &str) -> Key {
        let store = self.store();
        let r = store
            .resources
            .iter()
            .find(|r| r.group == group && r.plural == resource)
            .unwrap_or_else(|| panic!("apiserver: no resource {resource}.{group}"));
        Key {
            group: r.group.clone(),
            version: r.version.clone(),
            resource: r.plural.clone(),
            namespace: if r.namespaced {
                namespace.to_string()
            } else {
                String::new()
            },
            name: name.to_string(),
        }
    }

    /// One object straight from the store ("" namespace for cluster-scoped resources).
    pub fn get(&self, group: &str, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        let key = self.key(group, resource, namespace, name);
        self.store().objects.get(&key).map(|v| (**v).clone())
    }

    /// Every object of a resource, optionally in one namespace, in key order.
    pub fn list(&self, group: &str, resource: &str, namespace: Option<&str>) -> Vec<Value> {
        let store = self.store();
        let r = store
            .resources
            .iter()
            .find(|r| r.group == group && r.plural == resource)
            .unwrap_or_else(|| panic!("apiserver: no resource {resource}.{group}"))
            .clone();
        store
            .range(&r, namespace)
            .map(|(_, v)| (**v).clone())
            .collect()
    }

    /// Removes an object from the store (watchers see DELETED); true when it was there.
    pub fn remove(&self, group: &str, resource: &str, namespace: &str, name: &str) -> bool {
        let key = self.key(group, resource, namespace, name);
        let mut store = self.store();
        let Some(old) = store.objects.remove(&key) else {
            return false;
        };
        let rv = store.next_rv();
        let mut gone = (*old).clone();
        store::metadata_mut(&mut gone).insert("resourceVersion".into(), json!(rv.to_string()));
        store.publish("DELETED", key, Arc::new(gone));
        true
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.store().rv
    }

    /// Answers 403 Forbidden to `verb` (get, list, watch, create, update, patch, delete) on
    /// `resource` in `group` ("" for core), everywhere.
    pub fn forbid(&self, verb: &str, group: &str, resource: &str) {
        self.store().forbidden.push(Forbidden {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            namespace: None,
        });
    }

    /// Answers 403 Forbidden to `verb` on `resource` in one namespace only.
    pub fn forbid_in(&self, verb: &str, group: &str, resource: &str, namespace: &str) {
        self.store().forbidden.push(Forbidden {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            namespace: Some(namespace.into()),
        });
    }

    /// Lifts every `forbid`.
    pub fn allow_all(&self) {
        self.store().forbidden.clear();
    }

    /// The user named in 403 messages (default `system:serviceaccount:podgate:podgate`).
    pub fn set_user(&self, user: &str) {
        self.store().user = user.into();
    }

    /// While down, new connections are dropped at once and open ones fail on their next read or
    /// write: clients see the connection errors of an unreachable server.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// While unavailable, every request answers 503 ServiceUnavailable. kube's client retries
    /// 503 with backoff (up to 15 times), so use this only to test that behaviour.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.store().down = unavailable;
    }

    /// Every continue token handed out so far answers 410 Gone.
    pub fn expire_continue_tokens(&self) {
        self.store().expire_continue_tokens();
    }

    /// The next `n` requests that continue a list answer 410 Gone (their snapshots expire), as
    /// when etcd compacts while a client pages through a big list.
    pub fn expire_next_continues(&self, n: usize) {
        self.store().expire_next_continues = n;
    }

    /// Drops the watch history: a watch from an older resourceVersion gets a 410 ERROR event.
    pub fn compact(&self) {
        self.store().compact();
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.store().requests.clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.store().requests.clear();
    }

    /// Turns request recording on or off (off for benchmarks).
    pub fn record_requests(&self, on: bool) {
        self.store().record_requests = on;
    }

    /// Creates, replaces and applies of `kind` are checked by `f`; `Err(msg)` answers 422.
    pub fn set_validator(
        &self,
        kind: &str,
        f: impl Fn(&Value) -> Result<(), String> + Send + Sync + 'static,
    ) {
        self.store().validators.insert(kind.into(), Arc::new(f));
    }

    /// Serves a registered resource or not (a CRD that is not installed answers 404).
    pub fn set_served(&self, group: &str, resource: &str, served: bool) {
        for r in self
            .store()
            .resources
            .iter_mut()
            .filter(|r| r.group == group && r.plural == resource)
        {
            r.served = served;
        }
    }

    /// Registers another resource (served).
    pub fn register(&self, resource: Resource) {
        let mut store = self.store();
        store.resources.retain(|r| {
            !(r.group == resource.group
                && r.version == resource.version
                && r.plural == resource.plural)
        });
        store.resources.push(resource);
    }
}
