//! The engine: one pod spec (with where it lives and who asks) against a policy set.
//!
//! Pure: no I/O, no clock (the caller passes today's date). Every violation of every matching
//! policy is collected, never just the first; each policy's action then decides whether a
//! violation denies, warns or is only audited, and whether its patch is applied.

use std::collections::BTreeMap;

use json_patch::PatchOperation;
use k8s_openapi::api::core::v1::PodSpec;
use serde_json::json;

use crate::mutate::{Mutation, host_aliases, pull_policy};
use crate::policy::{Action, ExemptionQuery, Policy, PolicySet};
use crate::rules::{Rule, Violation, host_namespaces, hosts_file};
use crate::workload::{Kind, SpecLocation, Workload};

/// Which question is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The validating webhook: validation rules, plus a re-check that the Pod carries what
    /// the mutations would have added (the mutating webhook fails open).
    Validate,
    /// The mutating webhook: mutations only.
    Mutate,
    /// Offline `podgate check`: validation rules and the changes mutations would make.
    Check,
}

/// Who sends the request.
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    /// `userInfo.username`.
    pub username: &'a str,
    /// `userInfo.groups`.
    pub groups: &'a [String],
}

impl Requester<'_> {
    /// True for a kubelet: user `system:node:<node>` in group `system:nodes`, as the Node
    /// authorizer identifies nodes (kubernetes pkg/auth/nodeidentifier).
    pub fn is_node(&self) -> bool {
        self.username
            .strip_prefix("system:node:")
            .is_some_and(|node| !node.is_empty())
            && self.groups.iter().any(|g| g == "system:nodes")
    }
}

/// What is evaluated.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The object and its pod spec.
    pub workload: &'a Workload,
    /// The object's namespace (`default` offline when none is given).
    pub namespace: &'a str,
    /// Who asks.
    pub requester: Requester<'a>,
    /// For a `pods/ephemeralcontainers` update: the indices of the ephemeral containers that
    /// the update adds. Only violations involving them count, and nothing is mutated.
    pub new_ephemeral: Option<&'a [usize]>,
}

/// One violation of one policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The policy's name.
    pub policy: String,
    /// The policy's action.
    pub action: Action,
    /// The rule broken.
    pub rule: Rule,
    /// What is wrong, naming container and field path.
    pub message: String,
}

/// One change a mutation made (or, under Audit, would make).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The policy's name.
    pub policy: String,
    /// The policy's action (`Audit` changes are not applied).
    pub action: Action,
    /// What changed.
    pub text: String,
}

/// Everything the engine decided.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    /// Every violation, whatever its action.
    pub findings: Vec<Finding>,
    /// The patch to apply (Enforce and Warn policies).
    pub ops: Vec<PatchOperation>,
    /// Every change, applied or audited.
    pub changes: Vec<Change>,
    /// Mutation notes for the user (Enforce and Warn policies), prefixed with the policy.
    pub notes: Vec<String>,
    /// Audit annotations: policy name -> JSON summary (Audit policies).
    pub audit: BTreeMap<String, String>,
    /// Policies that matched but were exempted, with the exemption's reason.
    pub exempted: Vec<(String, String)>,
}

impl Outcome {
    /// True when an Enforce policy is violated.
    pub fn denied(&self) -> bool {
        self.findings.iter().any(|f| f.action == Action::Enforce)
    }
}

/// Evaluates every policy of `set` that matches `subject`.
pub fn evaluate(
    set: &PolicySet,
    subject: &Subject<'_>,
    mode: Mode,
    today: jiff::civil::Date,
) -> Outcome {
    let w = subject.workload;
    let at = w.kind.location();
    let service_account = w
        .spec
        .service_account_name
        .as_deref()
        .filter(|s| !s.is_empty())
        .unwrap_or("default");
    let query = ExemptionQuery {
        namespace: subject.namespace,
        service_account,
        username: subject.requester.username,
        groups: subject.requester.groups,
        labels: &w.labels,
        today,
    };
    let mut out = Outcome::default();
    // The mutated working copy: later policies see what earlier ones added.
    let mut working: Option<PodSpec> = None;
    // Hostnames mapped by earlier policies: the first policy to map one wins.
    let mut claimed = host_aliases::Claims::new();
    for policy in set.policies() {
        if !policy.match_.matches(subject.namespace, &w.labels) {
            continue;
        }
        if let Some(e) = policy.exemptions.iter().find(|e| e.applies(&query)) {
            out.exempted.push((policy.name.clone(), e.reason.clone()));
            continue;
        }
        let mut violations = Vec::new();
        if mode != Mode::Mutate {
            if policy.validate.hosts_file {
                violations.extend(hosts_file::check(&w.spec, at.path));
            }
            if !policy.validate.forbidden_combinations.is_empty() {
                violations.extend(host_namespaces::check(
                    &w.spec,
                    at.path,
                    &policy.validate.forbidden_combinations,
                ));
            }
        }
        let mutation = if subject.new_ephemeral.is_some() || policy.mutate.is_empty() {
            Mutation::default()
        } else {
            let patches_here = w.kind == Kind::Pod || policy.mutate.templates;
            match mode {
                Mode::Mutate | Mode::Check if patches_here => {
                    let base = working.get_or_insert_with(|| w.spec.clone());
                    if policy.action == Action::Audit {
                        // Audited changes are reported, not applied: mutate a scratch copy.
                        mutate(&mut base.clone(), at, policy, &mut claimed.clone())
                    } else {
                        mutate(base, at, policy, &mut claimed)
                    }
                }
                Mode::Validate => {
                    // Only what the mutations would do is needed here, each under its own
                    // rule. The pull-policy mutation can say so from the spec itself; the
                    // hostAliases one needs a copy.
                    let pull = policy
                        .mutate
                        .image_pull_policy
                        .as_ref()
                        .map(|p| pull_policy::plan(&w.spec, at, p))
                        .unwrap_or_default();
                    let aliases = match &policy.mutate.host_aliases {
                        Some(p) if policy.action == Action::Audit => {
                            host_aliases::apply(&mut w.spec.clone(), at, p, &mut claimed.clone())
                        }
                        Some(p) => host_aliases::apply(&mut w.spec.clone(), at, p, &mut claimed),
                        None => Mutation::default(),
                    };
                    // Re-check the final state only for Pods: the mutating webhook patches
                    // Pods on create, so a Pod still missing a change means it did not run.
                    if w.kind == Kind::Pod {
                        let missing = [
                            (Rule::ImagePullPolicy, &pull),
                            (Rule::HostAliases, &aliases),
                        ];
                        for (rule, m) in missing {
                            violations
                                .extend(m.changes.iter().map(|c| not_applied(policy, rule, c)));
                        }
                    }
                    Mutation {
                        violations: aliases.violations,
                        ..Mutation::default()
                    }
                }
                _ => Mutation::default(),
            }
        };
        violations.extend(mutation.violations.iter().cloned());
        if let Some(new) = subject.new_ephemeral {
            violations.retain(|v| involves_new_ephemeral(v, at.path, new));
        }
        record(&mut out, policy, violations, mutation);
    }
    out
}

fn mutate(
    spec: &mut PodSpec,
    at: SpecLocation,
    policy: &Policy,
    claimed: &mut host_aliases::Claims,
) -> Mutation {
    let mut m = Mutation::default();
    if let Some(p) = &policy.mutate.image_pull_policy {
        m.extend(pull_policy::apply(spec, at, p));
    }
    if let Some(p) = &policy.mutate.host_aliases {
        m.extend(host_aliases::apply(spec, at, p, claimed));
    }
    m
}

fn not_applied(policy: &Policy, rule: Rule, change: &str) -> Violation {
    Violation {
        rule,
        message: format!(
            "not mutated as policy {:?} requires ({change}); is podgate's mutating webhook running?",
            policy.name
        ),
        paths: Vec::new(),
    }
}

fn involves_new_ephemeral(v: &Violation, spec_path: &str, new: &[usize]) -> bool {
    v.paths.iter().any(|p| {
        new.iter().any(|i| {
            let prefix = format!("{spec_path}.ephemeralContainers[{i}]");
            p.strip_prefix(&prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
        })
    })
}

fn record(out: &mut Outcome, policy: &Policy, violations: Vec<Violation>, m: Mutation) {
    let changes = m.changes.iter().map(|text| Change {
        policy: policy.name.clone(),
        action: policy.action,
        text: text.clone(),
    });
    out.changes.extend(changes);
    if policy.action == Action::Audit {
        if !violations.is_empty() || !m.ops.is_empty() || !m.notes.is_empty() {
            let summary = json!({
                "violations": violations.iter().map(|v| &v.message).collect::<Vec<_>>(),
                "patch": m.ops,
                "notes": m.notes,
            });
            out.audit.insert(policy.name.clone(), summary.to_string());
        }
    } else {
        out.ops.extend(m.ops);
        out.notes.extend(
            m.notes
                .into_iter()
                .map(|n| format!("[{}] {n}", policy.name)),
        );
    }
    out.findings.extend(violations.into_iter().map(|v| Finding {
        policy: policy.name.clone(),
        action: policy.action,
        rule: v.rule,
        message: v.message,
    }));
}
