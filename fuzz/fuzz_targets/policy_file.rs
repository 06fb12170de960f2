//! Arbitrary text -> the policy-file loader (docs/promises.md C1, D4). Errors are fine; a panic,
//! a hang or runaway memory (alias bombs) is a crash. Every error carries a reason.

#![no_main]

use libfuzzer_sys::fuzz_target;
use podgate::policy::{PolicySet, parse_policies};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_policies("fuzz.yaml", text) {
        Ok(policies) => {
            // What parses alone also builds a set, unless names repeat.
            let sources = vec![("fuzz.yaml".to_string(), text.to_string())];
            if let Err(e) = PolicySet::from_sources(&sources) {
                let names: std::collections::HashSet<&str> =
                    policies.iter().map(|p| p.name.as_str()).collect();
                assert!(
                    names.len() < policies.len(),
                    "parse_policies accepted what from_sources refused: {e}"
                );
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "an error result without errors");
            for e in &errors {
                assert!(!e.reason.is_empty(), "an error without a reason: {e:?}");
            }
        }
    }
});
