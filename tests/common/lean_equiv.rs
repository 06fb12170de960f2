//! Test support: compares the lean decode with the full typed decode of one object (used by
//! tests/lean.rs on the fixtures and tests/properties.rs on generated objects).
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use podgate::engine::{self, Question, Requester, Subject, Webhook};
use podgate::policy::PolicySet;
use podgate::verdict;
use podgate::workload::{self, Kind, Scope, Source};
use serde_json::Value;

/// Compares the lean and the reference decode of `object` as `kind`; returns false when the
/// reference cannot read it either (nothing to compare).
pub fn same_decode(set: &PolicySet, kind: Kind, object: &Value, ctx: &str) -> bool {
    let reference = workload::read_reference(kind, object);
    let lean = workload::read(kind, Source::Value(object));
    let raw = workload::read(kind, Source::Raw(&object.to_string()));
    let (Ok(reference), Ok(lean), Ok(raw)) = (reference, lean.clone(), raw) else {
        // The lean decode reads everything the reference reads (it skips, never adds checks).
        assert!(
            workload::read_reference(kind, object).is_err(),
            "{ctx}: lean refuses what the reference reads: {:?}",
            lean.err()
        );
        return false;
    };
    let kept_metadata = workload::kept_metadata(&reference.metadata);
    assert_eq!(lean.metadata, kept_metadata, "{ctx}: metadata");
    assert_eq!(lean.labels, reference.labels, "{ctx}: labels");
    let kept = podgate::lean::kept;
    assert_eq!(kept(&lean.spec), kept(&reference.spec), "{ctx}: spec");
    if kind == Kind::Pod {
        assert_eq!(
            lean.spec,
            kept(&lean.spec),
            "{ctx}: the lean decode built a skipped field"
        );
    }
    assert_eq!(raw.spec, lean.spec, "{ctx}: raw and value reads differ");
    // The mutating webhook's decode: only what the plan reads, the same metadata.
    let plan = workload::read_scoped(kind, Source::Value(object), Scope::Plan).unwrap();
    let plan_raw =
        workload::read_scoped(kind, Source::Raw(&object.to_string()), Scope::Plan).unwrap();
    assert_eq!(plan.metadata, kept_metadata, "{ctx}: plan metadata");
    assert_eq!(plan.labels, reference.labels, "{ctx}: plan labels");
    assert_eq!(
        plan_raw.spec, plan.spec,
        "{ctx}: plan raw and value reads differ"
    );
    if kind == Kind::Pod {
        let planned = podgate::lean::planned;
        assert_eq!(plan.spec, planned(&reference.spec), "{ctx}: plan spec");
    } else {
        assert_eq!(plan.spec, lean.spec, "{ctx}: plan spec of a template");
    }
    let groups = vec!["system:authenticated".to_string()];
    let requester = Requester {
        username: "alice",
        groups: &groups,
    };
    let today = jiff::civil::date(2026, 12, 2);
    for question in [
        Question::Webhook(Webhook::Validate),
        Question::Webhook(Webhook::Mutate),
        Question::Check,
    ] {
        let decide = |w: &workload::Workload| {
            let subject = Subject::new(w, None, requester);
            verdict::decide(&engine::evaluate(set, &subject, question, today), question)
        };
        assert_eq!(decide(&lean), decide(&reference), "{ctx}: {question:?}");
        if question == Question::Webhook(Webhook::Mutate) {
            assert_eq!(
                decide(&plan),
                decide(&reference),
                "{ctx}: plan {question:?}"
            );
        }
    }
    true
}
