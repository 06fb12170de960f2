//! The engine: one pod spec (with where it lives and who asks) against a policy set.
//!
//! Pure: no I/O, no clock (the caller passes today's date). For every matching policy it says
//! what that policy found (rule violations, mutation conflicts) and what its mutations change,
//! with all the policies' mutations planned together; it never says what any of that means for
//! the request. That is `verdict`'s job, the one place that reads a policy's action.
//!
//! The combined plan runs the mutations of every policy in order on one working copy, and again
//! on the result until a round changes nothing, so that what it returns is a fixed point: run
//! on its own output it plans nothing. The mutating webhook sends the plan; the validating
//! webhook runs the same plan on the object it receives and reports what would still change,
//! which for an object the mutating webhook has answered is nothing, by construction.

use json_patch::PatchOperation;
use k8s_openapi::api::core::v1::PodSpec;

use crate::mutate::{Mutation, Working, host_aliases, pull_policy};
use crate::policy::{ExemptionQuery, Policy, PolicySet, Undecidable};
use crate::rules::{Effort, Rule, Violation, host_namespaces, hosts_file};
use crate::workload::{Kind, SpecLocation, Workload};

/// Which webhook endpoint is answering (also `podgate review --webhook`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Webhook {
    /// `/validate`: never patches.
    Validate,
    /// `/mutate`: may patch.
    Mutate,
}

impl Webhook {
    /// `validate` or `mutate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Webhook::Validate => "validate",
            Webhook::Mutate => "mutate",
        }
    }
}

/// What is asked: a webhook's answer, or the offline `check` (and `audit`) report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Question {
    /// A webhook endpoint's answer. `Mutate` runs no validation rule.
    Webhook(Webhook),
    /// Everything: validation rules and the changes the mutations would make.
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
    pub(crate) fn is_node(&self) -> bool {
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
    /// The object's name, or its `generateName` when it has none yet.
    pub name: &'a str,
    /// The namespace it is evaluated in.
    pub namespace: &'a str,
    /// Who asks.
    pub requester: Requester<'a>,
    /// For a `pods/ephemeralcontainers` update: the indices of the ephemeral containers that
    /// the update adds. Only violations involving them count, and nothing is mutated.
    pub new_ephemeral: Option<&'a [usize]>,
    /// The work the rules may spend ([`Effort::Full`] unless the server answers inline).
    pub effort: Effort,
}

impl<'a> Subject<'a> {
    /// The subject for `workload`, as admission and `check` both build it: named by
    /// [`display_name`], in [`namespace_of`] (`namespace` is the request's, if any).
    pub fn new(
        workload: &'a Workload,
        namespace: Option<&'a str>,
        requester: Requester<'a>,
    ) -> Subject<'a> {
        let meta = &workload.metadata;
        Subject {
            workload,
            name: display_name(meta.name.as_deref(), meta.generate_name.as_deref()),
            namespace: namespace_of(namespace, meta.namespace.as_deref()),
            requester,
            new_ephemeral: None,
            effort: Effort::Full,
        }
    }
}

/// An object's name for messages: its name, or its `generateName` before the apiserver has
/// picked one, or empty.
pub(crate) fn display_name<'a>(name: Option<&'a str>, generate_name: Option<&'a str>) -> &'a str {
    name.filter(|n| !n.is_empty())
        .or(generate_name)
        .unwrap_or("")
}

/// The namespace an object is evaluated in: the request's, else the object's own, else
/// `default` (where kubectl would create it).
pub(crate) fn namespace_of<'a>(request: Option<&'a str>, own: Option<&'a str>) -> &'a str {
    request
        .filter(|n| !n.is_empty())
        .or(own.filter(|n| !n.is_empty()))
        .unwrap_or("default")
}

/// What one matching policy found.
#[derive(Debug, Clone)]
pub struct PolicyResult<'p> {
    /// The policy.
    pub policy: &'p Policy,
    /// Set when an exemption applies (its reason); nothing else is then evaluated.
    pub exempted: Option<&'p str>,
    /// Broken rules, and mutation conflicts a policy turns into violations.
    pub violations: Vec<Violation>,
    /// What a rule could not decide (the hostsFile command analysis); the policy's
    /// `undecidable` setting says what it does.
    pub undecided: Vec<Violation>,
    /// What its mutations change (or, for a policy that does not patch, would change), each
    /// with the rule of the mutation that makes it.
    pub changes: Vec<(Rule, String)>,
    /// Things the user should hear about its mutations.
    pub notes: Vec<String>,
    /// Its patch operations (applied or, for a policy that does not patch, would-be).
    pub ops: Vec<PatchOperation>,
}

impl<'p> PolicyResult<'p> {
    fn new(policy: &'p Policy) -> PolicyResult<'p> {
        PolicyResult {
            policy,
            exempted: None,
            violations: Vec::new(),
            undecided: Vec::new(),
            changes: Vec::new(),
            notes: Vec::new(),
            ops: Vec::new(),
        }
    }

    fn add(&mut self, rule: Rule, m: Mutation) {
        self.changes
            .extend(m.changes.into_iter().map(|c| (rule, c)));
        self.notes.extend(m.notes);
        self.ops.extend(m.ops);
        self.violations.extend(m.violations);
    }
}

/// Everything the engine found.
#[derive(Debug, Clone)]
pub struct Evaluation<'p> {
    /// The object's kind.
    pub kind: Kind,
    /// One result per matching policy, in the set's order.
    pub results: Vec<PolicyResult<'p>>,
    /// The combined plan's operations in the order they apply (patching policies only).
    pub patch: Vec<PatchOperation>,
    /// With [`Effort::Inline`]: a rule fell short of its budget, so this evaluation is not the
    /// answer; evaluate again with [`Effort::Full`].
    pub cut: bool,
}

/// The combined plan stops after this many rounds. The loader refuses pull-policy rules that
/// form a cycle, so each container's policy moves along an acyclic chain of at most three
/// steps (absent, then at most two of the three values), one or more per round, and hostAliases
/// settle in the first round: a fourth round changes nothing. Should one still change
/// something, every policy that did is reported, never silently accepted.
const MAX_ROUNDS: usize = 4;

/// Evaluates every policy of `set` that matches `subject`.
pub fn evaluate<'p>(
    set: &'p PolicySet,
    subject: &Subject<'_>,
    question: Question,
    today: jiff::civil::Date,
) -> Evaluation<'p> {
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
    let run_rules = question != Question::Webhook(Webhook::Mutate);
    let mut results = Vec::new();
    let mut cut = false;
    for policy in set.policies() {
        if cut {
            // The answer will come from the full budget: stop spending this one.
            break;
        }
        if !policy.match_.matches(subject.namespace, &w.labels) {
            continue;
        }
        let mut result = PolicyResult::new(policy);
        if let Some(e) = policy.exemptions.iter().find(|e| e.applies(&query)) {
            result.exempted = Some(&e.reason);
            results.push(result);
            continue;
        }
        if run_rules {
            if let Some(rule) = &policy.validate.hosts_file {
                let found = hosts_file::check_with(&w.spec, at.path, rule, subject.effort);
                cut |= found.cut;
                result.violations.extend(found.violations);
                if rule.undecidable != Undecidable::Allow {
                    result.undecided.extend(found.undecided);
                }
            }
            if !policy.validate.forbidden_combinations.is_empty() {
                result.violations.extend(host_namespaces::check(
                    &w.spec,
                    at.path,
                    &policy.validate.forbidden_combinations,
                ));
            }
            if let Some(new) = subject.new_ephemeral {
                result
                    .violations
                    .retain(|v| involves_new_ephemeral(v, at.path, new));
                result
                    .undecided
                    .retain(|v| involves_new_ephemeral(v, at.path, new));
            }
        }
        results.push(result);
    }
    let mut patch = Vec::new();
    if subject.new_ephemeral.is_none() && !cut {
        plan(&mut results, &w.spec, w.kind, at, &mut patch);
    }
    Evaluation {
        kind: w.kind,
        results,
        patch,
        cut,
    }
}

/// The combined mutation plan over `results` (see the module header): patching policies edit
/// one working copy, round after round until nothing changes; each policy that does not
/// patch then reports what it would change on the settled copy.
fn plan(
    results: &mut [PolicyResult<'_>],
    spec: &PodSpec,
    kind: Kind,
    at: SpecLocation,
    patch: &mut Vec<PatchOperation>,
) {
    let mutates = |r: &PolicyResult<'_>| {
        r.exempted.is_none()
            && !r.policy.mutate.is_empty()
            && (kind == Kind::Pod || r.policy.mutate.templates)
    };
    if !results.iter().any(mutates) {
        return;
    }
    // Only the fields the mutations edit are copied, and only once edited.
    let mut working = Working::new(spec);
    let mut claims = host_aliases::Claims::new();
    for round in 1..=MAX_ROUNDS {
        // Each round is a fresh pass, as a reinvocation would be.
        claims.clear();
        let mut changed = Vec::new();
        for (i, r) in results.iter_mut().enumerate() {
            if !mutates(r) || !r.policy.action.patches() {
                continue;
            }
            let before = r.ops.len();
            let (pull, mut aliases) = mutate(&mut working, at, r.policy, &mut claims);
            // hostAliases settle in the first round; later rounds would only repeat its
            // conflicts and notes.
            if round > 1 {
                aliases.notes.clear();
                aliases.violations.clear();
            }
            r.add(Rule::ImagePullPolicy, pull);
            r.add(Rule::HostAliases, aliases);
            if let Some(ops) = r.ops.get(before..)
                && !ops.is_empty()
            {
                patch.extend(ops.iter().cloned());
                changed.push(i);
            }
        }
        if changed.is_empty() {
            break;
        }
        if round == MAX_ROUNDS {
            for i in changed {
                if let Some(r) = results.get_mut(i) {
                    r.violations.push(unsettled(r.policy));
                }
            }
        }
    }
    // Policies that do not patch: what they would change on the settled object.
    for r in results.iter_mut() {
        if mutates(r) && !r.policy.action.patches() {
            let mut scratch = working.clone();
            let (pull, aliases) = mutate(&mut scratch, at, r.policy, &mut claims.clone());
            r.add(Rule::ImagePullPolicy, pull);
            r.add(Rule::HostAliases, aliases);
        }
    }
}

/// Runs one policy's mutations on `spec`: (pull policy, hostAliases).
fn mutate(
    spec: &mut Working<'_>,
    at: SpecLocation,
    policy: &Policy,
    claims: &mut host_aliases::Claims,
) -> (Mutation, Mutation) {
    let pull = match &policy.mutate.image_pull_policy {
        Some(p) => pull_policy::apply(spec, at, p),
        None => Mutation::default(),
    };
    let aliases = match &policy.mutate.host_aliases {
        Some(p) => host_aliases::apply(spec, at, p, claims),
        None => Mutation::default(),
    };
    (pull, aliases)
}

fn unsettled(policy: &Policy) -> Violation {
    Violation {
        rule: if policy.mutate.image_pull_policy.is_some() {
            Rule::ImagePullPolicy
        } else {
            Rule::HostAliases
        },
        message: format!(
            "the mutations of policy {:?} still change the object after {MAX_ROUNDS} rounds: policies undo each other",
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

#[cfg(test)]
mod tests;
