//! Bytes -> `review` for both webhooks -> `verify_response` must accept every answer that
//! `review` produces (docs/promises.md C1). A panic anywhere on the path is a crash.
//!
//! The policy set is the shipped `policies/` plus policies that use Warn, Audit, Override and
//! Deny, so every branch of the engine is reachable from the bytes.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use podgate::admission::{Webhook, review};

#[path = "../../tests/common/contract.rs"]
mod contract;
use contract::verify_response;
use podgate::policy::PolicySet;

const EXTRA: &str = r#"
apiVersion: podgate.dev/v1alpha1
kind: PodPolicy
metadata:
  name: fuzz-host-aliases-override
spec:
  action: Warn
  mutate:
    templates: true
    hostAliases:
      onConflict: Override
      entries:
        - ip: 10.1.2.3
          hostnames: [foo.remote, baz.remote]
        - ip: "fd00::1"
          hostnames: [v6.remote, db]
---
apiVersion: podgate.dev/v1alpha1
kind: PodPolicy
metadata:
  name: fuzz-host-aliases-deny
spec:
  action: Enforce
  match:
    podSelector:
      matchLabels: {fuzz: deny}
  mutate:
    hostAliases:
      onConflict: Deny
      entries:
        - ip: 10.1.2.3
          hostnames: [foo.remote]
---
apiVersion: podgate.dev/v1alpha1
kind: PodPolicy
metadata:
  name: fuzz-audit
spec:
  action: Audit
  exemptions:
    - usernames: ["system:serviceaccount:kube-system:*"]
      reason: fuzzing an exemption
  mutate:
    templates: true
    imagePullPolicy:
      mutableTags: [latest, dev]
  validate:
    hostsFile: {}
    hostNamespaces:
      forbiddenCombinations:
        - [hostNetwork, capability:NET_ADMIN]
        - [privileged, hostPort]
"#;

static SET: LazyLock<PolicySet> = LazyLock::new(|| {
    let sources: Vec<(String, String)> = [
        (
            "host-aliases-example.yaml",
            include_str!("../../policies/host-aliases-example.yaml"),
        ),
        (
            "host-namespaces.yaml",
            include_str!("../../policies/host-namespaces.yaml"),
        ),
        (
            "hosts-file.yaml",
            include_str!("../../policies/hosts-file.yaml"),
        ),
        (
            "image-pull-policy.yaml",
            include_str!("../../policies/image-pull-policy.yaml"),
        ),
        ("zz-fuzz.yaml", EXTRA),
    ]
    .into_iter()
    .map(|(f, t)| (f.to_string(), t.to_string()))
    .collect();
    match PolicySet::from_sources(&sources) {
        Ok(set) => set,
        Err(e) => panic!("fuzz policy set does not load: {e}"),
    }
});

fuzz_target!(|data: &[u8]| {
    let now = jiff::Timestamp::from_second(1_796_000_000).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    // kube-apiserver always sends UTF-8 (Go's encoder replaces invalid bytes). serde_json
    // skips the fields `review` ignores without checking their UTF-8, so `review` answers
    // such a body while `verify_response`, which reads all of it, refuses the request: only
    // answers to UTF-8 requests are verified, every input must still not panic.
    let utf8 = std::str::from_utf8(data).is_ok();
    for webhook in [Webhook::Validate, Webhook::Mutate] {
        if let Ok(reviewed) = review(&SET, data, webhook, now)
            && utf8
        {
            if let Err(e) = verify_response(data, &reviewed.body, webhook) {
                panic!(
                    "kube-apiserver would reject the {webhook:?} answer: {e}\nanswer: {}",
                    String::from_utf8_lossy(&reviewed.body)
                );
            }
        }
    }
});
