//! Writes an audit's PolicyReports: server-side apply with field manager `podgate`, then
//! deletes podgate's reports (by label and name) that the run no longer produces, within the
//! audited namespaces only. Nothing is written after an incomplete run: pruning on a partial
//! listing would delete results that still hold.
//!
//! The PolicyReport CRD is never installed or changed here; when the API server does not
//! serve `wgpolicyk8s.io/v1alpha2` policyreports, the error says how to install it.

use std::collections::BTreeSet;

use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};

use super::AuditRun;
use super::report::{self, MANAGED_BY, REPORT_NAME};

/// The field manager of every write.
pub(crate) const FIELD_MANAGER: &str = "podgate";

/// How to install the CRD, for the missing-CRD message.
pub(crate) const INSTALL_HINT: &str = "install it with `kubectl create -k deploy/components/policy-report-crd` (create, not apply: if another tool such as Kyverno or Kubewarden already installed the CRD, create fails and leaves theirs alone), or install Kyverno's or Kubewarden's";

/// Why reports were not written.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The run missed part of the cluster.
    #[error("PolicyReports not written: the audit is incomplete ({0} listing errors)")]
    Incomplete(usize),
    /// The CRD is not installed.
    #[error(
        "PolicyReports not written: the API server does not serve policyreports.wgpolicyk8s.io (v1alpha2): the PolicyReport CRD is not installed; {INSTALL_HINT}"
    )]
    CrdMissing,
    /// An API call failed.
    #[error("PolicyReports: {what}: {source}")]
    Api {
        /// What was being done.
        what: String,
        /// kube's error.
        #[source]
        source: kube::Error,
    },
}

/// What a publish did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    /// Reports applied.
    pub applied: usize,
    /// Stale reports deleted.
    pub deleted: usize,
}

/// The PolicyReport resource.
pub(crate) fn policy_reports() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("wgpolicyk8s.io", "v1alpha2", "PolicyReport"),
        "policyreports",
    )
}

fn api_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> PublishError {
    let what = what.into();
    move |source| PublishError::Api { what, source }
}

/// True when the API server serves PolicyReports (discovery, which every user may read).
pub(crate) async fn crd_installed(client: &Client) -> Result<bool, PublishError> {
    match client
        .list_api_group_resources("wgpolicyk8s.io/v1alpha2")
        .await
    {
        Ok(list) => Ok(list.resources.iter().any(|r| r.name == "policyreports")),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(api_err("discovery of wgpolicyk8s.io/v1alpha2")(e)),
    }
}

/// Applies the run's reports and deletes podgate's stale ones in the audited namespaces.
pub async fn publish(
    client: &Client,
    run: &AuditRun,
    seconds: i64,
) -> Result<Published, PublishError> {
    if !run.complete() {
        return Err(PublishError::Incomplete(run.errors.len()));
    }
    if !crd_installed(client).await? {
        return Err(PublishError::CrdMissing);
    }
    let ar = policy_reports();
    let desired = report::build(run, seconds);
    let selector = format!("{}={}", MANAGED_BY.0, MANAGED_BY.1);
    let lp = ListParams::default().labels(&selector);
    let mut existing: Vec<(String, String)> = Vec::new();
    let apis: Vec<Api<DynamicObject>> = match &run.scope {
        None => vec![Api::all_with(client.clone(), &ar)],
        Some(namespaces) => namespaces
            .iter()
            .map(|ns| Api::namespaced_with(client.clone(), ns, &ar))
            .collect(),
    };
    for api in &apis {
        let list = api
            .list(&lp)
            .await
            .map_err(api_err("listing podgate's PolicyReports"))?;
        for r in list.items {
            let (Some(ns), Some(name)) = (r.metadata.namespace, r.metadata.name) else {
                continue;
            };
            // Only reports podgate names: a label copied onto someone else's report does not
            // make it podgate's to delete.
            if name == REPORT_NAME || name.starts_with(&format!("{REPORT_NAME}-")) {
                existing.push((ns, name));
            }
        }
    }
    let mut out = Published::default();
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    for ((ns, name), body) in &desired {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
        api.patch(name, &pp, &Patch::Apply(body))
            .await
            .map_err(api_err(format!("applying {ns}/{name}")))?;
        out.applied += 1;
    }
    let keep: BTreeSet<&(String, String)> = desired.keys().collect();
    for key in existing.iter().filter(|k| !keep.contains(k)) {
        let (ns, name) = key;
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => out.deleted += 1,
            // Someone else deleted it first: the goal is reached.
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(api_err(format!("deleting stale {ns}/{name}"))(e)),
        }
    }
    Ok(out)
}
