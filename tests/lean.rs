//! The lean decode (`podgate::lean`) against the full typed k8s-openapi decode
//! (`workload::read_reference`) on every fixture (the repository's own, plus ../shared/fixtures
//! when present): the same metadata, the same spec apart from the fields the lean decode skips,
//! and the same verdict for every question under the shipped policies. Generated Pods are
//! compared in tests/properties.rs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fixture_set;
#[path = "../benches/inputs/mod.rs"]
mod inputs;
#[path = "common/lean_equiv.rs"]
mod lean_equiv;

use lean_equiv::same_decode;
use podgate::policy::PolicySet;
use podgate::workload::Kind;
use serde_json::Value;

fn shipped() -> PolicySet {
    PolicySet::load_dir(&fixture_set::repo_root().join("policies")).unwrap()
}

#[test]
fn the_lean_decode_answers_every_fixture_as_the_typed_decode() {
    let set = shipped();
    let mut compared = 0;
    for fixture in fixture_set::suite().all() {
        let review: Value = match serde_json::from_slice(&fixture.bytes()) {
            Ok(v) => v,
            Err(_) => continue,
        };
        let request = &review["request"];
        let group = request["kind"]["group"].as_str().unwrap_or("");
        let name = request["kind"]["kind"].as_str().unwrap_or("");
        let Some(kind) = Kind::from_group_kind(group, name) else {
            continue;
        };
        for field in ["object", "oldObject"] {
            let object = &request[field];
            if object.is_object()
                && same_decode(&set, kind, object, &format!("{} {field}", fixture.name))
            {
                compared += 1;
            }
        }
    }
    assert!(compared >= 15, "only {compared} objects compared");
}

/// The benchmark Pods: what kube-apiserver sends for a ReplicaSet's Pod (env with `valueFrom`,
/// `envFrom`, HTTP and exec probes, a `preStop` hook, ports, security contexts, resources,
/// the service-account token volume), at both stages, and the large one.
#[test]
fn the_lean_decode_answers_the_benchmark_pods_as_the_typed_decode() {
    let set = shipped();
    for stage in [inputs::Stage::Mutate, inputs::Stage::Validate] {
        for (name, body) in [
            ("typical", inputs::typical_review(stage)),
            ("large", inputs::large_review(stage, 64 * 1024)),
        ] {
            let review: Value = serde_json::from_str(&body).unwrap();
            let ctx = format!("{name} {stage:?}");
            assert!(
                same_decode(&set, Kind::Pod, &review["request"]["object"], &ctx),
                "{ctx}: not compared"
            );
        }
    }
}
