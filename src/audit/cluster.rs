//! The audit's Kubernetes I/O: paged lists of every kind podgate understands, through kube's
//! client. A `410 Gone` on an expired continue token restarts that one list from the start
//! (the pages already read are dropped, so no object is counted twice or missed); a 403 names
//! the permission that is missing.
//!
//! Each page's items are handed over as text, one at a time, to be read into the audit's lean
//! view (`inventory`); nothing of a page is kept once it is read.
//!
//! No policy logic here: `inventory` groups what this returns and `evaluate` judges it.

use futures::StreamExt;
use kube::Client;
use kube::api::ListParams;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::workload::Kind;

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

/// One page of a list, its items left as text: each is read into the audit's lean view and
/// the page dropped before the next is requested.
#[derive(Deserialize)]
struct Page<'a> {
    #[serde(default)]
    metadata: PageMeta,
    #[serde(borrow, default)]
    items: Vec<&'a RawValue>,
}

#[derive(Deserialize, Default)]
struct PageMeta {
    #[serde(rename = "continue", default)]
    continue_: Option<String>,
}

/// A page read whole as `Value`s, as the audit read pages before: for an item whose head is
/// not JSON a `Value` holds (a number beyond `f64`), the error that reading gave for the page.
/// (Such a number elsewhere in an object no longer refuses its page: the object is unreadable
/// if the engine reads the number, else it is read.)
#[derive(Deserialize)]
#[allow(dead_code)] // read for its error
struct ValuePage {
    #[serde(default)]
    items: Vec<Value>,
}

/// Reads a page: `take` gets each item's text. Returns the continue token.
fn read_page(
    text: &str,
    mut take: impl FnMut(&str) -> Result<(), serde_json::Error>,
) -> Result<Option<String>, kube::Error> {
    let page: Page<'_> = serde_json::from_str(text).map_err(kube::Error::SerdeError)?;
    for item in &page.items {
        if let Err(e) = take(item.get()) {
            let e = serde_json::from_str::<ValuePage>(text).err().unwrap_or(e);
            return Err(kube::Error::SerdeError(e));
        }
    }
    Ok(page.metadata.continue_.filter(|c| !c.is_empty()))
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

/// What one list's items are read into.
pub(crate) trait Collect: Sized {
    /// An empty collection: the start of a list, or of its restart after `410 Gone`.
    fn fresh(&self) -> Self;
    /// Reads one item's JSON text, of `kind`, into the collection.
    fn take(&mut self, kind: Kind, item: &str) -> Result<(), serde_json::Error>;
}

/// Every object of `kind` in `ns` (or everywhere), `page_size` per request, read into
/// `start.fresh()` one item at a time; a list that restarts after `410 Gone` starts again from
/// `start.fresh()`. One page is held at a time (kube reads a response whole: its bytes and
/// their text).
pub(crate) async fn list_kind<T: Collect>(
    client: &Client,
    kind: Kind,
    ns: Option<&str>,
    page_size: u32,
    start: &T,
) -> Result<T, ClusterError> {
    let (group, version, plural) = resource_of(kind);
    let path = collection_path(group, version, plural, ns);
    let request = kube::core::Request::new(path);
    for _ in 0..MAX_RESTARTS {
        let mut items = start.fresh();
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
            let page = client
                .request_text(req)
                .await
                .and_then(|text| read_page(&text, |item| items.take(kind, item)));
            match page {
                Ok(Some(next)) => token = Some(next),
                Ok(None) => break false,
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

/// How many lists run at once: each holds one page.
pub(crate) const LISTS_IN_FLIGHT: usize = 4;

/// Lists `kinds` in `scope`, `LISTS_IN_FLIGHT` lists at a time, each read into
/// `start.fresh()`. Returns what each list gave and every error, in `kinds` order, then
/// namespace order (an audit with errors is incomplete: it reports, but writes nothing).
pub(crate) async fn list_all<T: Collect>(
    client: &Client,
    kinds: &[Kind],
    scope: &Scope,
    page_size: u32,
    start: &T,
) -> (Vec<T>, Vec<ClusterError>) {
    let namespaces: Vec<Option<&str>> = match scope {
        Scope::All => vec![None],
        Scope::Namespaces(list) => list.iter().map(|n| Some(n.as_str())).collect(),
    };
    let mut jobs = Vec::new();
    for kind in kinds {
        for ns in &namespaces {
            jobs.push(list_kind(client, *kind, *ns, page_size, start));
        }
    }
    let results: Vec<Result<T, ClusterError>> = futures::stream::iter(jobs)
        .buffered(LISTS_IN_FLIGHT)
        .collect()
        .await;
    let mut lists = Vec::new();
    let mut errors = Vec::new();
    for result in results {
        match result {
            Ok(items) => lists.push(items),
            Err(e) => errors.push(e),
        }
    }
    (lists, errors)
}
