//! Evaluates each audit subject with the engine, twice over the same object:
//! - as `podgate check` does (`Question::Check`): the object's entry in the text, JSON and SARIF
//!   output, in check's shape (violations, changes, notes) plus namespace, uid and Pod count;
//! - as the validating webhook would if the object were created now (`Webhook::Validate`): the
//!   per-policy, per-rule results of the PolicyReport and the metrics. For a Pod that is the
//!   webhook's own answer, including "not mutated as policy requires" when the mutating webhook
//!   never changed it.
//!
//! Pure. Who created an object is not stored in it, so exemptions by username or group are
//! judged for check's user (`check::CHECK_USER`, group `system:authenticated`), as `check` does.

use serde::Serialize;

use crate::check::{self, CHECK_USER, ChangeReport, ViolationReport};
use crate::engine::{self, Question, Requester, Subject as EngineSubject, Webhook};
use crate::policy::{Action, Policy, PolicySet};
use crate::rules::Rule;
use crate::verdict::{self, Effect};

use super::inventory::{Listed, Plan};

/// One audited object, in check's JSON shape plus where it lives in the cluster.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuditedObject {
    /// The object's kind.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// Its uid.
    pub uid: String,
    /// The Pods reported at this object (a bare Pod counts itself).
    pub pods: usize,
    /// True when an Enforce policy denies it (as `check` says).
    pub denied: bool,
    /// Violations (as `check` reports them).
    pub violations: Vec<ViolationReport>,
    /// Changes a mutation would make (as `check` reports them).
    pub changes: Vec<ChangeReport>,
    /// Notes a mutation would send as warnings.
    pub notes: Vec<String>,
    /// Set when the object could not be read as its kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Per policy and rule, what the validating webhook would answer (PolicyReport results).
    #[serde(skip)]
    pub results: Vec<RuleResult>,
}

/// A PolicyReport result value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The rule holds.
    Pass,
    /// The rule is broken by an Enforce or Audit policy (Audit: it would be denied once enforced).
    Fail,
    /// The rule is broken by a Warn policy.
    Warn,
    /// The policy applies but an exemption covers the object.
    Skip,
    /// The object could not be read.
    Error,
}

impl Outcome {
    /// `pass`, `fail`, `warn`, `skip`, `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Warn => "warn",
            Outcome::Skip => "skip",
            Outcome::Error => "error",
        }
    }
}

/// One policy rule's result for one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleResult {
    /// The policy.
    pub policy: String,
    /// The policy's action.
    pub action: Action,
    /// The rule (policy-file spelling); `read` for an unreadable object.
    pub rule: &'static str,
    /// The result.
    pub outcome: Outcome,
    /// What was found, or why it passed or was skipped.
    pub message: String,
}

/// The PolicyReport severity of a rule.
pub fn severity(rule: &str) -> &'static str {
    match rule {
        "hostNamespaces" => "high",
        "hostsFile" => "medium",
        "imagePullPolicy" | "hostAliases" => "low",
        _ => "info",
    }
}

/// The rules a policy turns on, in a fixed order.
pub(crate) fn rules_of(policy: &Policy) -> Vec<Rule> {
    let mut out = Vec::new();
    if policy.validate.hosts_file.is_some() {
        out.push(Rule::HostsFile);
    }
    if !policy.validate.forbidden_combinations.is_empty() {
        out.push(Rule::HostNamespaces);
    }
    if policy.mutate.image_pull_policy.is_some() {
        out.push(Rule::ImagePullPolicy);
    }
    if policy.mutate.host_aliases.is_some() {
        out.push(Rule::HostAliases);
    }
    out
}

/// Evaluates every subject of `plan`.
pub fn evaluate(
    set: &PolicySet,
    objects: &[Listed],
    plan: &Plan,
    today: jiff::civil::Date,
) -> Vec<AuditedObject> {
    let groups = vec!["system:authenticated".to_string()];
    plan.subjects
        .iter()
        .map(|s| evaluate_one(set, &objects[s.index], s.pods, &groups, today))
        .collect()
}

fn evaluate_one(
    set: &PolicySet,
    listed: &Listed,
    pods: usize,
    groups: &[String],
    today: jiff::civil::Date,
) -> AuditedObject {
    let mut out = AuditedObject {
        kind: listed.kind.as_str().to_string(),
        name: listed.name().to_string(),
        namespace: listed.namespace().to_string(),
        uid: listed.uid().to_string(),
        pods,
        denied: false,
        violations: Vec::new(),
        changes: Vec::new(),
        notes: Vec::new(),
        error: None,
        results: Vec::new(),
    };
    let read = listed.workload().ok_or_else(|| {
        // `Inventory::new` keeps every object a plan can report at.
        "podgate did not keep this object's text (a bug in grouping)".to_string()
    });
    let w = match read.and_then(|r| r.map_err(|e| e.to_string())) {
        Ok(w) => w,
        Err(e) => {
            out.error = Some(e.clone());
            out.results.push(RuleResult {
                policy: String::new(),
                action: Action::Enforce,
                rule: "read",
                outcome: Outcome::Error,
                message: e,
            });
            return out;
        }
    };
    let requester = Requester {
        username: CHECK_USER,
        groups,
    };
    let subject = EngineSubject::new(&w, Some(&out.namespace), requester);
    let checked = engine::evaluate(set, &subject, Question::Check, today);
    let report = check::report(verdict::decide(&checked, Question::Check));
    out.denied = report.denied;
    out.violations = report.violations;
    out.changes = report.changes;
    out.notes = report.notes;

    let question = Question::Webhook(Webhook::Validate);
    let webhook = verdict::decide(&engine::evaluate(set, &subject, question, today), question);
    for policy in set.policies() {
        if !policy.match_.matches(&out.namespace, &w.labels) {
            continue;
        }
        let exemption = webhook
            .exempted
            .iter()
            .find(|(name, _)| *name == policy.name)
            .map(|(_, reason)| reason.clone());
        for rule in rules_of(policy) {
            let found: Vec<&verdict::Finding> = webhook
                .findings
                .iter()
                .filter(|f| f.policy == policy.name && f.rule == rule)
                .collect();
            let (outcome, message) = match (&exemption, found.is_empty()) {
                (Some(reason), _) => (Outcome::Skip, format!("exempted: {reason}")),
                (None, true) => (Outcome::Pass, format!("{} holds", rule.as_str())),
                (None, false) => {
                    let outcome = if found.iter().all(|f| f.effect == Effect::Warn) {
                        Outcome::Warn
                    } else {
                        Outcome::Fail
                    };
                    let messages: Vec<&str> = found.iter().map(|f| f.message.as_str()).collect();
                    (outcome, messages.join("; "))
                }
            };
            out.results.push(RuleResult {
                policy: policy.name.clone(),
                action: policy.action,
                rule: rule.as_str(),
                outcome,
                message,
            });
        }
    }
    out
}
