//! The engine and the verdict together: every action x rule x exemption, on every question,
//! with small Pod builders; and the combined plan's fixed point.

use serde_json::{Value, json};

use super::*;
use crate::verdict::{self, EXEMPTED_KEY, Effect, Verdict};
use crate::workload::{self, Source};

const ACTIONS: [&str; 3] = ["Enforce", "Warn", "Audit"];
const QUESTIONS: [Question; 3] = [
    Question::Webhook(Webhook::Validate),
    Question::Webhook(Webhook::Mutate),
    Question::Check,
];

/// The rules, each with the policy `spec` fragment that turns it on and a Pod that breaks it
/// (or, for a mutation, that it changes).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Case {
    HostsFile,
    HostNamespaces,
    ImagePullPolicy,
    HostAliases,
}

impl Case {
    const ALL: [Case; 4] = [
        Case::HostsFile,
        Case::HostNamespaces,
        Case::ImagePullPolicy,
        Case::HostAliases,
    ];

    fn spec(self) -> &'static str {
        match self {
            Case::HostsFile => "validate: {hostsFile: {}}",
            Case::HostNamespaces => {
                "validate: {hostNamespaces: {forbiddenCombinations: [[hostPID, hostNetwork]]}}"
            }
            Case::ImagePullPolicy => "mutate: {imagePullPolicy: {}}",
            Case::HostAliases => {
                "mutate: {hostAliases: {entries: [{ip: 10.1.2.3, hostnames: [db.remote]}]}}"
            }
        }
    }

    fn rule(self) -> Rule {
        match self {
            Case::HostsFile => Rule::HostsFile,
            Case::HostNamespaces => Rule::HostNamespaces,
            Case::ImagePullPolicy => Rule::ImagePullPolicy,
            Case::HostAliases => Rule::HostAliases,
        }
    }

    fn is_mutation(self) -> bool {
        matches!(self, Case::ImagePullPolicy | Case::HostAliases)
    }

    /// A Pod that breaks the rule (or needs the mutation).
    fn pod(self) -> Value {
        let mut container =
            json!({"name": "app", "image": "nginx:1.27", "imagePullPolicy": "IfNotPresent"});
        let mut spec = json!({});
        match self {
            Case::HostsFile => {
                container["command"] = json!(["sh", "-c", "echo 10.0.0.1 db >> /etc/hosts"])
            }
            Case::HostNamespaces => spec = json!({"hostPID": true, "hostNetwork": true}),
            Case::ImagePullPolicy => container["image"] = json!("nginx:latest"),
            Case::HostAliases => {}
        }
        spec["containers"] = json!([container]);
        pod_with(spec)
    }
}

fn pod_with(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "team-a", "labels": {"app": "web"}},
        "spec": spec})
}

/// One policy named `p` with `action`, the rule's spec and an optional exemption.
fn policy_set(action: &str, rule_spec: &str, exemption: Option<&str>) -> PolicySet {
    let exemptions = match exemption {
        Some(e) => format!("  exemptions: [{e}]\n"),
        None => String::new(),
    };
    let text = format!(
        "apiVersion: podgate.dev/v1alpha1\nkind: PodPolicy\nmetadata: {{name: p}}\nspec:\n  action: {action}\n{exemptions}  {rule_spec}\n"
    );
    PolicySet::from_sources(&[("p.yaml".into(), text)]).unwrap()
}

fn sets(texts: &[&str]) -> PolicySet {
    let sources: Vec<(String, String)> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("{i}.yaml"), t.to_string()))
        .collect();
    PolicySet::from_sources(&sources).unwrap()
}

fn today() -> jiff::civil::Date {
    jiff::civil::date(2026, 12, 2)
}

fn verdict_for(set: &PolicySet, pod: &Value, question: Question) -> Verdict {
    let w = workload::read(Kind::Pod, Source::Value(pod)).unwrap();
    let requester = Requester {
        username: "alice",
        groups: &[],
    };
    let subject = Subject::new(&w, None, requester);
    verdict::decide(&evaluate(set, &subject, question, today()), question)
}

fn applied(pod: &Value, patch: &[PatchOperation]) -> Value {
    let mut out = pod.clone();
    json_patch::patch(&mut out, patch).unwrap();
    out
}

#[test]
fn every_action_rule_and_exemption_on_every_question() {
    let exemptions = [
        ("none", None),
        ("applies", Some("{namespaces: [team-*], reason: migration}")),
        (
            "expired",
            Some("{namespaces: [team-*], expires: \"2026-12-01\", reason: migration}"),
        ),
        (
            "other namespace",
            Some("{namespaces: [kube-system], reason: system}"),
        ),
    ];
    for case in Case::ALL {
        for action in ACTIONS {
            for (exemption, text) in exemptions {
                let set = policy_set(action, case.spec(), text);
                for question in QUESTIONS {
                    let ctx = format!("{case:?} {action} exemption={exemption} {question:?}");
                    let v = verdict_for(&set, &case.pod(), question);
                    let exempt = exemption == "applies";
                    assert_eq!(v.exempted.len(), usize::from(exempt), "{ctx}");
                    assert_eq!(
                        v.audit_annotations.contains_key(EXEMPTED_KEY),
                        exempt,
                        "{ctx}"
                    );
                    if exempt {
                        assert_eq!(v.exempted[0], ("p".to_string(), "migration".to_string()));
                        assert!(v.findings.is_empty() && v.changes.is_empty(), "{ctx}");
                        assert!(v.patch.is_empty() && v.warnings.is_empty(), "{ctx}");
                        continue;
                    }
                    let effect = match action {
                        "Enforce" => Effect::Deny,
                        "Warn" => Effect::Warn,
                        _ => Effect::Audit,
                    };
                    let patches = action != "Audit";
                    // Which findings to expect: rules on validate and check; on validate a
                    // change still to make (a Pod nobody mutated).
                    let finds = match question {
                        Question::Webhook(Webhook::Mutate) => false,
                        Question::Check => !case.is_mutation(),
                        Question::Webhook(Webhook::Validate) => true,
                    };
                    assert_eq!(v.findings.len(), usize::from(finds), "{ctx}: {v:?}");
                    if let Some(f) = v.findings.first() {
                        assert_eq!(
                            (f.effect, f.rule, f.policy.as_str()),
                            (effect, case.rule(), "p"),
                            "{ctx}"
                        );
                        if case.is_mutation() {
                            let why = if patches {
                                "is podgate's mutating webhook running?"
                            } else {
                                "the policy only audits"
                            };
                            assert!(f.message.contains(why), "{ctx}: {}", f.message);
                        }
                    }
                    assert_eq!(v.denied(), finds && effect == Effect::Deny, "{ctx}");
                    let warned = v.warnings.iter().any(|w| w.starts_with("[p] "));
                    let notes_warn = question == Question::Webhook(Webhook::Mutate)
                        && case == Case::ImagePullPolicy
                        && patches;
                    assert_eq!(
                        warned,
                        (finds && effect == Effect::Warn) || notes_warn,
                        "{ctx}: {:?}",
                        v.warnings
                    );
                    // Changes: reported on mutate and check, with whether they apply.
                    let changes =
                        case.is_mutation() && question != Question::Webhook(Webhook::Validate);
                    assert_eq!(
                        v.changes.len(),
                        usize::from(changes),
                        "{ctx}: {:?}",
                        v.changes
                    );
                    if let Some(c) = v.changes.first() {
                        assert_eq!((c.applied, c.rule), (patches, case.rule()), "{ctx}");
                    }
                    // The patch: only on mutate, only when the policy patches.
                    let patched = case.is_mutation()
                        && patches
                        && question == Question::Webhook(Webhook::Mutate);
                    assert_eq!(!v.patch.is_empty(), patched, "{ctx}");
                    // Audit: everything the policy found or would change is annotated.
                    let annotated = effect == Effect::Audit && (finds || case.is_mutation());
                    assert_eq!(
                        v.audit_annotations.contains_key("p"),
                        annotated,
                        "{ctx}: {:?}",
                        v.audit_annotations
                    );
                }
            }
        }
    }
}

#[test]
fn a_pod_the_mutating_webhook_answered_passes_the_validating_recheck() {
    let set = sets(&[
        "apiVersion: podgate.dev/v1alpha1\nkind: PodPolicy\nmetadata: {name: pull}\nspec:\n  mutate: {imagePullPolicy: {}}\n",
        "apiVersion: podgate.dev/v1alpha1\nkind: PodPolicy\nmetadata: {name: aliases}\nspec:\n  mutate: {hostAliases: {entries: [{ip: 10.1.2.3, hostnames: [db.remote]}]}}\n",
    ]);
    let pod = Case::ImagePullPolicy.pod();
    let before = verdict_for(&set, &pod, Question::Webhook(Webhook::Validate));
    assert_eq!(before.findings.len(), 2, "{before:?}");
    assert!(before.denied());
    let m = verdict_for(&set, &pod, Question::Webhook(Webhook::Mutate));
    let after = applied(&pod, &m.patch);
    let v = verdict_for(&set, &after, Question::Webhook(Webhook::Validate));
    assert!(v.findings.is_empty(), "{v:?}");
    // And a second mutating call (reinvocation) changes nothing.
    assert!(
        verdict_for(&set, &after, Question::Webhook(Webhook::Mutate))
            .patch
            .is_empty()
    );
}

#[test]
fn a_one_way_pull_policy_chain_settles_in_one_mutating_call() {
    // The chain: A sets Always replacing IfNotPresent, a later B sets IfNotPresent
    // replacing Never. A Pod on Never used to leave the mutating webhook on IfNotPresent,
    // which the validating webhook then denied.
    let set = sets(&[
        "apiVersion: podgate.dev/v1alpha1\nkind: PodPolicy\nmetadata: {name: a}\nspec:\n  mutate: {imagePullPolicy: {set: Always, replace: [IfNotPresent]}}\n",
        "apiVersion: podgate.dev/v1alpha1\nkind: PodPolicy\nmetadata: {name: b}\nspec:\n  mutate: {imagePullPolicy: {set: IfNotPresent, replace: [Never]}}\n",
    ]);
    let pod = pod_with(
        json!({"containers": [{"name": "c", "image": "busybox", "imagePullPolicy": "Never"}]}),
    );
    let m = verdict_for(&set, &pod, Question::Webhook(Webhook::Mutate));
    let after = applied(&pod, &m.patch);
    assert_eq!(after["spec"]["containers"][0]["imagePullPolicy"], "Always");
    assert_eq!(m.changes.len(), 2, "{:?}", m.changes);
    let v = verdict_for(&set, &after, Question::Webhook(Webhook::Validate));
    assert!(v.findings.is_empty(), "{v:?}");
    // Check reports the same two changes.
    assert_eq!(verdict_for(&set, &pod, Question::Check).changes, m.changes);
}

#[test]
fn audit_policies_report_what_they_would_change_on_the_settled_object() {
    let set = sets(&[
        "apiVersion: podgate.dev/v1alpha1\nkind: PodPolicy\nmetadata: {name: enforce}\nspec:\n  mutate: {imagePullPolicy: {}}\n",
        "apiVersion: podgate.dev/v1alpha1\nkind: PodPolicy\nmetadata: {name: audit}\nspec:\n  action: Audit\n  mutate: {imagePullPolicy: {set: Never, replace: [IfNotPresent]}}\n",
    ]);
    // The enforced policy sets Always; the audit one would only replace IfNotPresent, so on
    // the settled object it would change nothing.
    let pod = Case::ImagePullPolicy.pod();
    let m = verdict_for(&set, &pod, Question::Webhook(Webhook::Mutate));
    assert_eq!(m.patch.len(), 1);
    assert!(!m.audit_annotations.contains_key("audit"), "{m:?}");
}

#[test]
fn a_denied_mutating_review_sends_no_patch() {
    let set = sets(&[
        "apiVersion: podgate.dev/v1alpha1\nkind: PodPolicy\nmetadata: {name: pull}\nspec:\n  mutate: {imagePullPolicy: {}}\n",
        "apiVersion: podgate.dev/v1alpha1\nkind: PodPolicy\nmetadata: {name: deny}\nspec:\n  mutate: {hostAliases: {onConflict: Deny, entries: [{ip: 10.1.2.3, hostnames: [db.remote]}]}}\n",
    ]);
    let pod = pod_with(
        json!({"hostAliases": [{"ip": "10.9.9.9", "hostnames": ["db.remote"]}],
        "containers": [{"name": "c", "image": "busybox"}]}),
    );
    let m = verdict_for(&set, &pod, Question::Webhook(Webhook::Mutate));
    assert!(m.denied(), "{m:?}");
    assert!(m.patch.is_empty());
    assert_eq!(m.findings[0].rule, Rule::HostAliases);
}

#[test]
fn the_exemption_annotation_cannot_be_a_policy_name() {
    assert!(!crate::policy::is_dns1123_subdomain(EXEMPTED_KEY));
}

#[test]
fn subjects_are_named_and_placed_alike_everywhere() {
    assert_eq!(display_name(Some("p"), Some("p-")), "p");
    assert_eq!(display_name(Some(""), Some("p-")), "p-");
    assert_eq!(display_name(None, None), "");
    assert_eq!(namespace_of(Some("a"), Some("b")), "a");
    assert_eq!(namespace_of(Some(""), Some("b")), "b");
    assert_eq!(namespace_of(None, None), "default");
}
