//! PolicyReports (`wgpolicyk8s.io/v1alpha2`) from an audit run: per namespace, a result per
//! object and policy rule (pass, fail, warn, skip; error for an object that cannot be read),
//! with the policy, rule, message, severity, the object's reference and a summary.
//!
//! Pure. A namespace's results are split over several reports (`podgate-audit`,
//! `podgate-audit-2`, ...) of at most `MAX_RESULTS` results each, so that a report stays far
//! below etcd's object size limit however many objects a namespace holds.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::AuditRun;
use super::evaluate::{Outcome, severity};

/// The API group and version of PolicyReports.
pub(crate) const API_VERSION: &str = "wgpolicyk8s.io/v1alpha2";
/// The name of a namespace's (first) report.
pub(crate) const REPORT_NAME: &str = "podgate-audit";
/// The label that says a report is podgate's.
pub(crate) const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "podgate");
/// Results per report (each is well under 1 KiB: a report stays under ~1 MiB).
pub const MAX_RESULTS: usize = 1000;

/// The name of a namespace's `i`-th report (0-based).
pub(crate) fn report_name(i: usize) -> String {
    if i == 0 {
        REPORT_NAME.to_string()
    } else {
        format!("{REPORT_NAME}-{}", i + 1)
    }
}

/// The apiVersion of a kind podgate audits.
fn api_version_of(kind: &str) -> &'static str {
    match kind {
        "Pod" | "ReplicationController" => "v1",
        "Job" | "CronJob" => "batch/v1",
        _ => "apps/v1",
    }
}

/// Every report to write, keyed by (namespace, name). `seconds` is the run's Unix time.
pub fn build(run: &AuditRun, seconds: i64) -> BTreeMap<(String, String), Value> {
    let mut results: BTreeMap<&str, Vec<(Outcome, Value)>> = BTreeMap::new();
    for o in &run.objects {
        let resource = json!({
            "apiVersion": api_version_of(&o.kind),
            "kind": o.kind,
            "name": o.name,
            "namespace": o.namespace,
            "uid": o.uid,
        });
        for r in &o.results {
            let policy = if r.policy.is_empty() {
                "podgate"
            } else {
                &r.policy
            };
            let mut properties = json!({"action": r.action.as_str()});
            if o.kind != "Pod" {
                properties["pods"] = json!(o.pods.to_string());
            }
            let result = json!({
                "source": "podgate",
                "policy": policy,
                "rule": r.rule,
                "category": "Pod Security",
                "severity": severity(r.rule),
                "timestamp": {"seconds": seconds, "nanos": 0},
                "result": r.outcome.as_str(),
                "scored": true,
                "message": r.message,
                "resources": [resource.clone()],
                "properties": properties,
            });
            results
                .entry(o.namespace.as_str())
                .or_default()
                .push((r.outcome, result));
        }
    }
    let mut out = BTreeMap::new();
    for (ns, list) in results {
        for (i, chunk) in list.chunks(MAX_RESULTS).enumerate() {
            let mut summary = BTreeMap::from([
                ("pass", 0usize),
                ("fail", 0),
                ("warn", 0),
                ("error", 0),
                ("skip", 0),
            ]);
            for (outcome, _) in chunk {
                *summary.entry(outcome.as_str()).or_default() += 1;
            }
            let name = report_name(i);
            let report = json!({
                "apiVersion": API_VERSION,
                "kind": "PolicyReport",
                "metadata": {
                    "name": name,
                    "namespace": ns,
                    "labels": {MANAGED_BY.0: MANAGED_BY.1},
                },
                "summary": summary,
                "results": chunk.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>(),
            });
            out.insert((ns.to_string(), name), report);
        }
    }
    out
}

/// How many results of each (policy, rule, result), for the metrics.
pub(crate) fn tally(run: &AuditRun) -> BTreeMap<(String, String, &'static str), u64> {
    let mut out = BTreeMap::new();
    for o in &run.objects {
        for r in &o.results {
            *out.entry((r.policy.clone(), r.rule.to_string(), r.outcome.as_str()))
                .or_default() += 1;
        }
    }
    out
}
