//! Inputs found by the fuzz targets (fuzz/), kept as named tests. Each file under
//! `tests/fuzz-regressions/` is a libFuzzer artifact, unchanged.

// clippy.toml allows these inside #[test] functions only; helpers here are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use podgate::admission::{Webhook, review};
#[path = "common/contract.rs"]
mod contract;

use contract::verify_response;

use podgate::policy::PolicySet;

fn artifact(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-regressions")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn shipped() -> PolicySet {
    PolicySet::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")).unwrap()
}

/// A captured Pod CREATE with 0xFF bytes inside `requestResource.version`, a field `review`
/// does not read. serde_json skips ignored strings without checking their UTF-8, so
/// `review` answers (correctly: uid echoed, the Pod judged), while `verify_response`, which
/// parses the whole request, refuses the request itself. kube-apiserver never sends
/// invalid UTF-8, so the fuzz target verifies only UTF-8 requests; this pins both halves.
#[test]
fn invalid_utf8_in_an_ignored_field_is_answered_and_the_repaired_request_verifies() {
    let body = artifact("review-invalid-utf8-in-ignored-field.json");
    assert!(std::str::from_utf8(&body).is_err());
    let set = shipped();
    let repaired = String::from_utf8_lossy(&body).into_owned();
    for webhook in [Webhook::Validate, Webhook::Mutate] {
        let reviewed = review(&set, &body, webhook, jiff::Timestamp::UNIX_EPOCH).unwrap();
        assert_eq!(reviewed.summary.uid, "1299d386-525b-4032-98ae-1949f69f9cfc");
        assert_eq!(reviewed.summary.kind, "Pod");
        let err = verify_response(&body, &reviewed.body, webhook).unwrap_err();
        assert!(err.starts_with("request:"), "{err}");
        // The same request as the apiserver would have encoded it gets the same answer,
        // and that answer verifies.
        let again = review(
            &set,
            repaired.as_bytes(),
            webhook,
            jiff::Timestamp::UNIX_EPOCH,
        )
        .unwrap();
        assert_eq!(again.body, reviewed.body);
        verify_response(repaired.as_bytes(), &again.body, webhook).unwrap();
    }
}
