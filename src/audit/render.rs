//! Text and SARIF renderings of an audit run (JSON is the run serialised as is).
//!
//! Pure.

use serde_json::{Value, json};

use crate::policy::Action;
use crate::sarif::{self, Finding, Place};

use super::AuditRun;

/// Human-readable: one block per object with something to say, then a summary.
pub fn text(run: &AuditRun) -> String {
    let mut out = String::new();
    for o in &run.objects {
        if o.violations.is_empty() && o.changes.is_empty() && o.error.is_none() {
            continue;
        }
        let pods = match (o.kind.as_str(), o.pods) {
            ("Pod", _) => String::new(),
            (_, 1) => " (1 Pod)".to_string(),
            (_, n) => format!(" ({n} Pods)"),
        };
        out.push_str(&format!(
            "{} {:?} in namespace {:?}{pods}\n",
            o.kind, o.name, o.namespace
        ));
        if let Some(e) = &o.error {
            out.push_str(&format!("  ERROR {e}\n"));
        }
        for v in &o.violations {
            let label = match v.action {
                "Enforce" => "DENY",
                "Warn" => "WARN",
                _ => "AUDIT",
            };
            out.push_str(&format!("  {label} [{}] {}\n", v.policy, v.message));
        }
        for c in &o.changes {
            let label = if c.action == Action::Audit.as_str() {
                "WOULD CHANGE (audit)"
            } else {
                "CHANGE"
            };
            out.push_str(&format!("  {label} [{}] {}\n", c.policy, c.change));
        }
        for n in &o.notes {
            out.push_str(&format!("  NOTE {n}\n"));
        }
    }
    for e in &run.errors {
        out.push_str(&format!("ERROR {e}\n"));
    }
    let denied = run.objects.iter().filter(|o| o.denied).count();
    let unreadable = run.objects.iter().filter(|o| o.error.is_some()).count();
    let pods: usize = run.objects.iter().map(|o| o.pods).sum();
    out.push_str(&format!(
        "{} objects audited ({pods} Pods): {denied} denied, {unreadable} unreadable; skipped {} mirror Pods and {} objects in excluded namespaces{}\n",
        run.objects.len(),
        run.skipped.mirror_pods,
        run.skipped.excluded_namespaces,
        if run.complete() {
            String::new()
        } else {
            format!("; INCOMPLETE: {} listing errors", run.errors.len())
        }
    ));
    out
}

/// SARIF 2.1.0: a result per violation, at the object (namespace/Kind/name, uid, Pod count).
pub fn sarif(run: &AuditRun) -> Value {
    let mut findings = Vec::new();
    let mut errors = run.errors.clone();
    for o in &run.objects {
        if let Some(e) = &o.error {
            errors.push(format!("{} {}/{}: {e}", o.kind, o.namespace, o.name));
        }
        for v in &o.violations {
            findings.push(Finding {
                rule: v.rule,
                policy: &v.policy,
                action: v.action,
                message: &v.message,
                place: Place {
                    file: None,
                    namespace: &o.namespace,
                    kind: &o.kind,
                    name: &o.name,
                },
                properties: json!({"uid": o.uid, "pods": o.pods}),
            });
        }
    }
    sarif::log(&findings, &errors)
}
