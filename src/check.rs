//! Offline evaluation of manifests (`podgate check`): the same engine as the webhook, on
//! objects read from files, as if a plain user created each one in its namespace. podgate's own
//! policy ConfigMaps (label `podgate.dev/policies: "true"`) among them are loaded as the webhook
//! `policies.podgate.dev` would load them, so a broken set fails in CI as it would at apply time.
//!
//! Pure: the caller reads the files (`manifests`) and prints the report.

use serde::Serialize;

use crate::engine::{self, Question, Requester, Subject};
use crate::manifests::Document;
use crate::policy::{PolicySet, configmap};
use crate::verdict::{self, Effect, Verdict};
use crate::workload::{self, Kind, Source};

/// The user every manifest is evaluated as.
pub const CHECK_USER: &str = "podgate-check";
const CHECK_GROUPS: &[&str] = &["system:authenticated"];

/// What `check` found for one object with a pod spec.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ObjectReport {
    /// The file.
    pub file: String,
    /// 1-based document number in the file.
    pub document: usize,
    /// 1-based line where the document starts.
    pub line: usize,
    /// The object's kind.
    pub kind: String,
    /// The object's name (or generateName).
    pub name: String,
    /// The namespace it was evaluated in.
    pub namespace: String,
    /// True when an Enforce policy denies it.
    pub denied: bool,
    /// Violations.
    pub violations: Vec<ViolationReport>,
    /// Changes a mutation would make.
    pub changes: Vec<ChangeReport>,
    /// Notes a mutation would send as warnings.
    pub notes: Vec<String>,
    /// Set when the object could not be read as its kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One violation.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ViolationReport {
    /// Policy name.
    pub policy: String,
    /// The policy's action: Enforce, Warn or Audit.
    pub action: &'static str,
    /// What the violation does: `deny`, `warn` or `audit`.
    pub effect: Effect,
    /// Rule name.
    pub rule: &'static str,
    /// Message with field path.
    pub message: String,
}

/// One change.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChangeReport {
    /// Policy name.
    pub policy: String,
    /// The policy's action: Enforce, Warn or Audit.
    pub action: &'static str,
    /// False when the policy only reports the change (Audit).
    pub applied: bool,
    /// What would change.
    pub change: String,
}

/// Evaluates every document that holds a pod spec and loads every policy ConfigMap; other
/// objects are skipped.
pub fn check_documents(
    set: &PolicySet,
    docs: &[Document],
    today: jiff::civil::Date,
) -> Vec<ObjectReport> {
    let groups: Vec<String> = CHECK_GROUPS.iter().map(|g| g.to_string()).collect();
    let mut reports = Vec::new();
    for doc in docs {
        let api_version = doc
            .object
            .get("apiVersion")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        let kind_name = doc
            .object
            .get("kind")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        if configmap::is_policy_config_map(&doc.object) {
            reports.push(policy_config_map_report(doc));
            continue;
        }
        let Some(kind) = Kind::from_group_kind(group, kind_name) else {
            continue;
        };
        let meta = doc.object.get("metadata");
        let field = |name: &str| {
            meta.and_then(|m| m.get(name))
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string()
        };
        // Read from the document itself, so an object that does not parse is still named.
        let name =
            engine::display_name(Some(&field("name")), Some(&field("generateName"))).to_string();
        let namespace = engine::namespace_of(None, Some(&field("namespace"))).to_string();
        let mut report = ObjectReport {
            file: doc.file.display().to_string(),
            document: doc.index,
            line: doc.line,
            kind: kind.as_str().to_string(),
            name,
            namespace,
            denied: false,
            violations: Vec::new(),
            changes: Vec::new(),
            notes: Vec::new(),
            error: None,
        };
        let w = match workload::read(kind, Source::Value(&doc.object)) {
            Ok(w) => w,
            Err(e) => {
                report.error = Some(e.to_string());
                reports.push(report);
                continue;
            }
        };
        let requester = Requester {
            username: CHECK_USER,
            groups: &groups,
        };
        let subject = Subject::new(&w, None, requester);
        let evaluation = engine::evaluate(set, &subject, Question::Check, today);
        fill(&mut report, verdict::decide(&evaluation, Question::Check));
        reports.push(report);
    }
    reports
}

/// A verdict in check's shape: what `check` (and `audit`) print for one object.
#[derive(Debug, Clone, PartialEq)]
pub struct VerdictReport {
    /// True when a finding denies the object.
    pub denied: bool,
    /// Violations.
    pub violations: Vec<ViolationReport>,
    /// Changes a mutation would make.
    pub changes: Vec<ChangeReport>,
    /// Notes a mutation would send as warnings.
    pub notes: Vec<String>,
}

/// Renders a verdict in check's shape.
pub fn report(verdict: Verdict) -> VerdictReport {
    VerdictReport {
        denied: verdict.denied(),
        violations: verdict
            .findings
            .into_iter()
            .map(|f| ViolationReport {
                policy: f.policy,
                action: f.action.as_str(),
                effect: f.effect,
                rule: f.rule.as_str(),
                message: f.message,
            })
            .collect(),
        changes: verdict
            .changes
            .into_iter()
            .map(|c| ChangeReport {
                policy: c.policy,
                action: c.action.as_str(),
                applied: c.applied,
                change: c.text,
            })
            .collect(),
        notes: verdict.notes,
    }
}

fn fill(out: &mut ObjectReport, verdict: Verdict) {
    let r = report(verdict);
    out.denied = r.denied;
    out.violations = r.violations;
    out.changes = r.changes;
    out.notes = r.notes;
}

/// A policy ConfigMap: its set loads, or `error` holds every `file:line:column: reason`.
fn policy_config_map_report(doc: &Document) -> ObjectReport {
    let field = |name: &str| {
        doc.object
            .pointer(&format!("/metadata/{name}"))
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    ObjectReport {
        file: doc.file.display().to_string(),
        document: doc.index,
        line: doc.line,
        kind: "ConfigMap".into(),
        name: field("name"),
        namespace: field("namespace"),
        denied: false,
        violations: Vec::new(),
        changes: Vec::new(),
        notes: Vec::new(),
        error: configmap::load(&doc.object)
            .err()
            .map(|errors| format!("policy set does not load:\n{errors}")),
    }
}

/// Human-readable report, one block per object that has something to say, then a summary.
pub fn render_text(reports: &[ObjectReport]) -> String {
    let mut out = String::new();
    for r in reports {
        let quiet = r.violations.is_empty() && r.changes.is_empty() && r.error.is_none();
        if quiet {
            continue;
        }
        out.push_str(&format!(
            "{} (document {}, line {}): {} {:?} in namespace {:?}\n",
            r.file, r.document, r.line, r.kind, r.name, r.namespace
        ));
        if let Some(e) = &r.error {
            let mut lines = e.lines();
            out.push_str(&format!("  ERROR {}\n", lines.next().unwrap_or_default()));
            for line in lines {
                out.push_str(&format!("    {line}\n"));
            }
        }
        for v in &r.violations {
            let label = match v.effect {
                Effect::Deny => "DENY",
                Effect::Warn => "WARN",
                Effect::Audit => "AUDIT",
            };
            out.push_str(&format!("  {label} [{}] {}\n", v.policy, v.message));
        }
        for c in &r.changes {
            let label = if c.applied {
                "CHANGE"
            } else {
                "WOULD CHANGE (audit)"
            };
            out.push_str(&format!("  {label} [{}] {}\n", c.policy, c.change));
        }
        for n in &r.notes {
            out.push_str(&format!("  NOTE {n}\n"));
        }
    }
    let (sets, reports): (Vec<&ObjectReport>, Vec<&ObjectReport>) =
        reports.iter().partition(|r| r.kind == "ConfigMap");
    let denied = reports.iter().filter(|r| r.denied).count();
    let errors = reports.iter().filter(|r| r.error.is_some()).count();
    let changes: usize = reports.iter().map(|r| r.changes.len()).sum();
    out.push_str(&format!(
        "{} objects with a pod spec checked: {denied} denied, {errors} unreadable, {changes} changes\n",
        reports.len()
    ));
    if !sets.is_empty() {
        let broken = sets.iter().filter(|r| r.error.is_some()).count();
        out.push_str(&format!(
            "{} policy ConfigMaps checked: {broken} do not load\n",
            sets.len()
        ));
    }
    out
}
