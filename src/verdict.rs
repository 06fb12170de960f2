//! The verdict: what the engine's per-policy results mean for one question. This is the one
//! place that reads a policy's action (apart from `Action::patches`, which the engine's plan
//! needs): Enforce denies, Warn warns, Audit annotates, and what a policy's mutations change is
//! patched, re-checked or reported. Admission, `check` and `audit` render a `Verdict`; none
//! re-derives it.
//!
//! Pure and total: every result lands somewhere.

use std::collections::BTreeMap;

use json_patch::PatchOperation;
use serde_json::json;

use crate::engine::{Evaluation, Question, Webhook};
use crate::policy::{Action, Policy, Undecidable};
use crate::rules::Rule;
use crate::workload::Kind;

/// The audit-annotation key listing the exemptions applied. Policy names are DNS-1123
/// subdomains, which never contain `_`, so no policy's own annotation can take this key.
pub(crate) const EXEMPTED_KEY: &str = "exempted_policies";

/// What a finding does to the request (serialised `deny`, `warn`, `audit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// It denies the request.
    Deny,
    /// It becomes an admission warning.
    Warn,
    /// It is only recorded (audit annotation, log, report).
    Audit,
}

impl Effect {
    /// `deny`, `warn` or `audit`.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Deny => "deny",
            Effect::Warn => "warn",
            Effect::Audit => "audit",
        }
    }
}

/// One violation of one policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The policy's name.
    pub policy: String,
    /// The policy's action, as configured (metrics and logs label findings by it).
    pub action: Action,
    /// What the finding does.
    pub effect: Effect,
    /// The rule broken.
    pub rule: Rule,
    /// What is wrong, naming container and field path.
    pub message: String,
}

/// One change a policy's mutation makes (or would make).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The policy's name.
    pub policy: String,
    /// The policy's action, as configured.
    pub action: Action,
    /// The mutation that makes it.
    pub rule: Rule,
    /// False when the policy only reports it (Audit).
    pub applied: bool,
    /// What changes.
    pub text: String,
}

/// Everything the answer to one question says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    /// Every violation, with its effect, in policy order.
    pub findings: Vec<Finding>,
    /// Every change the mutations make or would make (none on a validating review, where a
    /// change still to make is a finding instead).
    pub changes: Vec<Change>,
    /// Notes about applied mutations (`[policy] text`).
    pub notes: Vec<String>,
    /// Admission warnings, unbounded (the renderer bounds them): Warn findings, then, on the
    /// mutating webhook, the notes.
    pub warnings: Vec<String>,
    /// Audit annotations: policy name -> JSON summary for Audit policies, and
    /// [`EXEMPTED_KEY`] when an exemption applied.
    pub audit_annotations: BTreeMap<String, String>,
    /// The policies exempted, with the exemption's reason.
    pub exempted: Vec<(String, String)>,
    /// The JSON Patch to send: only on the mutating webhook, and only when not denied.
    pub patch: Vec<PatchOperation>,
}

impl Verdict {
    /// True when a finding denies the request.
    pub fn denied(&self) -> bool {
        self.findings.iter().any(|f| f.effect == Effect::Deny)
    }

    /// The findings that deny.
    pub fn denials(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.effect == Effect::Deny)
    }
}

/// What `action` does to a violation.
fn effect(action: Action) -> Effect {
    match action {
        Action::Enforce => Effect::Deny,
        Action::Warn => Effect::Warn,
        Action::Audit => Effect::Audit,
    }
}

/// Builds the verdict for `question` from the engine's results.
pub fn decide(evaluation: &Evaluation<'_>, question: Question) -> Verdict {
    let mut v = Verdict::default();
    // The validating webhook re-checks the combined plan on Pods, which the mutating webhook
    // patches on create: a change still to make means it did not run (it fails open).
    let recheck = question == Question::Webhook(Webhook::Validate) && evaluation.kind == Kind::Pod;
    let reports_changes = question != Question::Webhook(Webhook::Validate);
    for r in &evaluation.results {
        let policy = &r.policy.name;
        let action = r.policy.action;
        if let Some(reason) = r.exempted {
            v.exempted.push((policy.clone(), reason.to_string()));
            continue;
        }
        let finding = |rule: Rule, message: String| Finding {
            policy: policy.clone(),
            action,
            effect: effect(action),
            rule,
            message,
        };
        let mut messages: Vec<&str> = Vec::new();
        for violation in &r.violations {
            v.findings
                .push(finding(violation.rule, violation.message.clone()));
            messages.push(&violation.message);
        }
        // What a rule could not decide: `undecidable: Deny` treats it as a violation,
        // `Warn` as a warning at most (the engine drops it under `Allow`).
        let undecidable = r
            .policy
            .validate
            .hosts_file
            .as_ref()
            .map(|h| h.undecidable)
            .unwrap_or_default();
        for violation in &r.undecided {
            let effect = match (undecidable, effect(action)) {
                (Undecidable::Deny, e) | (_, e @ (Effect::Warn | Effect::Audit)) => e,
                (_, Effect::Deny) => Effect::Warn,
            };
            v.findings.push(Finding {
                effect,
                ..finding(violation.rule, violation.message.clone())
            });
            messages.push(&violation.message);
        }
        let mut missing = Vec::new();
        if recheck {
            for (rule, change) in &r.changes {
                let message = if action.patches() {
                    format!(
                        "not mutated as policy {policy:?} requires ({change}); is podgate's mutating webhook running?"
                    )
                } else {
                    format!(
                        "not mutated as policy {policy:?} would have it ({change}); the policy only audits, so podgate does not patch"
                    )
                };
                v.findings.push(finding(*rule, message.clone()));
                missing.push(message);
            }
        }
        messages.extend(missing.iter().map(String::as_str));
        if reports_changes {
            v.changes
                .extend(r.changes.iter().map(|(rule, text)| Change {
                    policy: policy.clone(),
                    action,
                    rule: *rule,
                    applied: action.patches(),
                    text: text.clone(),
                }));
        }
        match action {
            Action::Audit => {
                let would_patch = reports_changes || recheck;
                let ops: &[PatchOperation] = if would_patch { &r.ops } else { &[] };
                let notes: &[String] = if would_patch { &r.notes } else { &[] };
                if !messages.is_empty() || !ops.is_empty() || !notes.is_empty() {
                    let summary = json!({"violations": messages, "patch": ops, "notes": notes});
                    v.audit_annotations
                        .insert(policy.clone(), summary.to_string());
                }
            }
            Action::Warn | Action::Enforce => {
                if reports_changes {
                    v.notes
                        .extend(r.notes.iter().map(|n| format!("[{policy}] {n}")));
                }
            }
        }
    }
    v.warnings = v
        .findings
        .iter()
        .filter(|f| f.effect == Effect::Warn)
        .map(|f| format!("[{}] {}", f.policy, f.message))
        .collect();
    if question == Question::Webhook(Webhook::Mutate) {
        v.warnings.extend(v.notes.iter().cloned());
    }
    if !v.exempted.is_empty() {
        let text: Vec<String> = v
            .exempted
            .iter()
            .map(|(policy, reason)| format!("{policy}: {reason}"))
            .collect();
        v.audit_annotations
            .insert(EXEMPTED_KEY.to_string(), text.join("; "));
    }
    if question == Question::Webhook(Webhook::Mutate) && !v.denied() {
        v.patch = evaluation.patch.clone();
    }
    v
}

/// The verdict for a review that did not finish before its deadline (or never got an
/// evaluation slot): each policy that may apply contributes one `deadline` finding with
/// `message`, and its action decides what that does, as for any finding. On the validating
/// webhook an Enforce policy therefore denies (the strictest action among the policies that
/// may apply wins), Warn warns and Audit annotates; the mutating webhook fails open by
/// design, so there an Enforce policy only warns, and nothing is patched.
pub(crate) fn unfinished(policies: &[&Policy], webhook: Webhook, message: &str) -> Verdict {
    let mut v = Verdict::default();
    for policy in policies {
        let effect = match (webhook, effect(policy.action)) {
            (Webhook::Mutate, Effect::Deny) => Effect::Warn,
            (_, e) => e,
        };
        match effect {
            Effect::Warn => v.warnings.push(format!("[{}] {message}", policy.name)),
            Effect::Audit => {
                let summary = json!({"violations": [message], "patch": [], "notes": []});
                v.audit_annotations
                    .insert(policy.name.clone(), summary.to_string());
            }
            Effect::Deny => {}
        }
        v.findings.push(Finding {
            policy: policy.name.clone(),
            action: policy.action,
            effect,
            rule: Rule::Deadline,
            message: message.to_string(),
        });
    }
    v
}
