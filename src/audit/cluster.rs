//! The audit's Kubernetes I/O: paged lists of every kind podgate understands, through kube's
//! client. A `410 Gone` on an expired continue token restarts that one list from the start
//! (the pages already read are dropped, so no object is counted twice or missed); a 403 names
//! the permission that is missing.
//!
//! No policy logic here: `inventory` groups what this returns and `evaluate` judges it.

use kube::Client;
use kube::api::ListParams;
use serde::Deserialize;
use serde_json::Value;

use crate::workload::Kind;

use super::inventory::Listed;

/// How many times one list restarts after `410 Gone` before giving up.
pub(crate) const MAX_RESTARTS: usize = 5;

/// Where an audit looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every namespace (`-A`), one list per kind.
    All,
    /// These namespaces, one list per kind and namespace.
    Namespaces(Vec<String>),
}

/// Why the audit could not read the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// RBAC refused a request.
    #[error(
        "forbidden: podgate needs permission to {verb} {resource} (apiGroup {group:?}) {scope}; the API server said: {message}"
    )]
    Forbidden {
        /// The verb refused.
        verb: &'static str,
        /// The resource.
        resource: &'static str,
        /// Its API group.
        group: &'static str,
        /// "at the cluster scope" or "in namespace NS".
        scope: String,
        /// The API server's message.
        message: String,
    },
    /// The continue token kept expiring.
    #[error(
        "listing {resource} {scope}: the list expired (410 Gone) {MAX_RESTARTS} times in a row; the cluster changes faster than it can be read with this page size"
    )]
    Expired {
        /// The resource.
        resource: &'static str,
        /// Where.
        scope: String,
    },
    /// Any other API error.
    #[error("listing {resource} {scope}: {source}")]
    Api {
        /// The resource.
        resource: &'static str,
        /// Where.
        scope: String,
        /// kube's error.
        #[source]
        source: kube::Error,
    },
}

/// The API coordinates of a kind: (group, version, plural).
pub fn resource_of(kind: Kind) -> (&'static str, &'static str, &'static str) {
    match kind {
        Kind::Pod => ("", "v1", "pods"),
        Kind::ReplicationController => ("", "v1", "replicationcontrollers"),
        Kind::Deployment => ("apps", "v1", "deployments"),
        Kind::ReplicaSet => ("apps", "v1", "replicasets"),
        Kind::StatefulSet => ("apps", "v1", "statefulsets"),
        Kind::DaemonSet => ("apps", "v1", "daemonsets"),
        Kind::Job => ("batch", "v1", "jobs"),
        Kind::CronJob => ("batch", "v1", "cronjobs"),
    }
}

/// The collection path of a resource, in a namespace or across all.
pub(crate) fn collection_path(
    group: &str,
    version: &str,
    plural: &str,
    ns: Option<&str>,
) -> String {
    let prefix = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    match ns {
        Some(ns) => format!("{prefix}/namespaces/{ns}/{plural}"),
        None => format!("{prefix}/{plural}"),
    }
}

fn scope_text(ns: Option<&str>) -> String {
    match ns {
        Some(ns) => format!("in namespace {ns:?}"),
        None => "at the cluster scope".to_string(),
    }
}

#[derive(Deserialize)]
struct RawList {
    #[serde(default)]
    metadata: RawListMeta,
    #[serde(default)]
    items: Vec<Value>,
}

#[derive(Deserialize, Default)]
struct RawListMeta {
    #[serde(rename = "continue", default)]
    continue_: Option<String>,
}

/// Turns an API error on `verb` into the audit's error.
pub fn api_error(e: kube::Error, verb: &'static str, kind: Kind, ns: Option<&str>) -> ClusterError {
    let (group, _, resource) = resource_of(kind);
    match e {
        kube::Error::Api(s) if s.code == 403 => ClusterError::Forbidden {
            verb,
            resource,
            group,
            scope: scope_text(ns),
            message: s.message.clone(),
        },
        other => ClusterError::Api {
            resource,
            scope: scope_text(ns),
            source: other,
        },
    }
}

/// Every object of `kind` in `ns` (or everywhere), `page_size` per request.
pub(crate) async fn list_kind(
    client: &Client,
    kind: Kind,
    ns: Option<&str>,
    page_size: u32,
) -> Result<Vec<Listed>, ClusterError> {
    let (group, version, plural) = resource_of(kind);
    let path = collection_path(group, version, plural, ns);
    let request = kube::core::Request::new(path);
    for _ in 0..MAX_RESTARTS {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        let expired = loop {
            let mut lp = ListParams::default().limit(page_size);
            if let Some(t) = &token {
                lp = lp.continue_token(t);
            }
            let req = request.list(&lp).map_err(|e| ClusterError::Api {
                resource: plural,
                scope: scope_text(ns),
                source: kube::Error::BuildRequest(e),
            })?;
            match client.request::<RawList>(req).await {
                Ok(page) => {
                    items.extend(page.items.into_iter().map(|object| Listed { kind, object }));
                    match page.metadata.continue_.filter(|c| !c.is_empty()) {
                        Some(next) => token = Some(next),
                        None => break false,
                    }
                }
                // The snapshot behind the token is gone: start this list again.
                Err(kube::Error::Api(s)) if s.code == 410 && token.is_some() => break true,
                Err(e) => return Err(api_error(e, "list", kind, ns)),
            }
        };
        if !expired {
            return Ok(items);
        }
        tracing::info!(
            resource = plural,
            scope = %scope_text(ns),
            "continue token expired (410 Gone); restarting the list"
        );
    }
    Err(ClusterError::Expired {
        resource: plural,
        scope: scope_text(ns),
    })
}

/// Lists every kind podgate understands in `scope`, concurrently per kind. Returns what was
/// read and every error (an audit with errors is incomplete: it reports, but writes nothing).
pub(crate) async fn list_all(
    client: &Client,
    scope: &Scope,
    page_size: u32,
) -> (Vec<Listed>, Vec<ClusterError>) {
    let namespaces: Vec<Option<&str>> = match scope {
        Scope::All => vec![None],
        Scope::Namespaces(list) => list.iter().map(|n| Some(n.as_str())).collect(),
    };
    let mut jobs = Vec::new();
    for kind in super::inventory::KINDS {
        for ns in &namespaces {
            jobs.push(list_kind(client, kind, *ns, page_size));
        }
    }
    let mut objects = Vec::new();
    let mut errors = Vec::new();
    for result in futures::future::join_all(jobs).await {
        match result {
            Ok(items) => objects.extend(items),
            Err(e) => errors.push(e),
        }
    }
    (objects, errors)
}
