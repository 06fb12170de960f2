//! Test support: compares the lean decode with the full typed decode of one object (used by
//! tests/lean.rs on the fixtures and tests/properties.rs on generated objects).
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use podgate::engine::{self, Question, Requester, Subject, Webhook};
use podgate::policy::PolicySet;
use podgate::verdict;
use podgate::workload::{self, Kind, Source};
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
    assert_eq!(lean.metadata, reference.metadata, "{ctx}: metadata");
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
    }
    true
}
