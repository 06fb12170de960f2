//! Who runs the background audit: one replica at a time, the holder of a
//! coordination.k8s.io/v1 Lease. Acquire, renew and take-over are updates conditioned on the
//! Lease's resourceVersion, so two replicas can never both believe they won: the loser gets
//! 409 Conflict (or 409 AlreadyExists on create) and waits.
//!
//! `plan` (pure) decides what to write; `hold` (edge) reads, writes and reports the outcome.
//! The time of the last complete audit is kept in an annotation of the Lease, so a new holder
//! keeps the schedule instead of starting over.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;

/// The annotation with the last complete audit's time (RFC 3339).
pub(crate) const LAST_AUDIT: &str = "podgate.dev/last-complete-audit";

/// What to do with the Lease.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// None exists: create this one.
    Create(Lease),
    /// Ours (renew) or expired (take over): replace with this one (same resourceVersion).
    Replace(Lease),
    /// Someone else holds it and it has not expired.
    Wait {
        /// The holder.
        holder: String,
    },
}

fn micro(t: jiff::Timestamp) -> MicroTime {
    MicroTime(t)
}

/// Decides how `identity` can hold the Lease `name` in `namespace` at `now`.
pub fn plan(
    existing: Option<&Lease>,
    name: &str,
    namespace: &str,
    identity: &str,
    duration_s: i32,
    now: jiff::Timestamp,
) -> Plan {
    let Some(current) = existing else {
        return Plan::Create(Lease {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(namespace.to_string()),
                labels: Some(
                    [(
                        "app.kubernetes.io/managed-by".to_string(),
                        "podgate".to_string(),
                    )]
                    .into(),
                ),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(identity.to_string()),
                lease_duration_seconds: Some(duration_s),
                acquire_time: Some(micro(now)),
                renew_time: Some(micro(now)),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        });
    };
    let spec = current.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().unwrap_or_default();
    let mut next = current.clone();
    let mut next_spec = spec.clone();
    next_spec.renew_time = Some(micro(now));
    next_spec.lease_duration_seconds = Some(duration_s);
    if holder == identity {
        next.spec = Some(next_spec);
        return Plan::Replace(next);
    }
    let held_for = i64::from(spec.lease_duration_seconds.unwrap_or(duration_s).max(1));
    let expired = match &spec.renew_time {
        Some(MicroTime(renewed)) => renewed.as_second() + held_for < now.as_second(),
        None => true,
    };
    if holder.is_empty() || expired {
        next_spec.holder_identity = Some(identity.to_string());
        next_spec.acquire_time = Some(micro(now));
        next_spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        next.spec = Some(next_spec);
        return Plan::Replace(next);
    }
    Plan::Wait { holder }
}

/// The last complete audit recorded on the Lease.
pub(crate) fn last_audit(lease: &Lease) -> Option<jiff::Timestamp> {
    lease
        .metadata
        .annotations
        .as_ref()?
        .get(LAST_AUDIT)?
        .parse()
        .ok()
}

/// Tries to hold the Lease now. `Ok(Some(lease))`: this replica holds it (as written);
/// `Ok(None)`: another one does, or won the race.
pub async fn hold(
    api: &Api<Lease>,
    name: &str,
    identity: &str,
    duration_s: i32,
    now: jiff::Timestamp,
) -> Result<Option<Lease>, kube::Error> {
    let existing = api.get_opt(name).await?;
    let namespace = api.namespace().unwrap_or("default").to_string();
    let written = match plan(
        existing.as_ref(),
        name,
        &namespace,
        identity,
        duration_s,
        now,
    ) {
        Plan::Create(lease) => api.create(&PostParams::default(), &lease).await,
        Plan::Replace(lease) => api.replace(name, &PostParams::default(), &lease).await,
        Plan::Wait { .. } => return Ok(None),
    };
    match written {
        Ok(lease) => Ok(Some(lease)),
        // Another replica wrote first (AlreadyExists on create, Conflict on a stale version).
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(None),
        Err(e) => Err(e),
    }
}

/// Records a complete audit on the held Lease (conditioned on its resourceVersion).
pub(crate) async fn record_audit(
    api: &Api<Lease>,
    held: &Lease,
    at: jiff::Timestamp,
) -> Result<Lease, kube::Error> {
    let mut next = held.clone();
    next.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(LAST_AUDIT.to_string(), at.to_string());
    let name = held.metadata.name.clone().unwrap_or_default();
    api.replace(&name, &PostParams::default(), &next).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(s).unwrap()
    }

    fn held_by(holder: &str, renewed: i64, transitions: i32) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some("podgate-audit".into()),
                resource_version: Some("7".into()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                lease_duration_seconds: Some(60),
                renew_time: Some(micro(at(renewed))),
                acquire_time: Some(micro(at(0))),
                lease_transitions: Some(transitions),
                ..LeaseSpec::default()
            }),
        }
    }

    fn spec(p: &Plan) -> LeaseSpec {
        match p {
            Plan::Create(l) | Plan::Replace(l) => l.spec.clone().unwrap(),
            Plan::Wait { .. } => panic!("expected a write, got {p:?}"),
        }
    }

    #[test]
    fn a_missing_lease_is_created_for_us() {
        let p = plan(None, "podgate-audit", "ns", "a", 60, at(100));
        assert!(matches!(p, Plan::Create(_)));
        assert_eq!(spec(&p).holder_identity.as_deref(), Some("a"));
    }

    #[test]
    fn our_lease_is_renewed_keeping_its_resource_version() {
        let p = plan(
            Some(&held_by("a", 90, 3)),
            "podgate-audit",
            "ns",
            "a",
            60,
            at(100),
        );
        let Plan::Replace(l) = &p else {
            panic!("{p:?}")
        };
        assert_eq!(l.metadata.resource_version.as_deref(), Some("7"));
        assert_eq!(spec(&p).renew_time, Some(micro(at(100))));
        assert_eq!(spec(&p).lease_transitions, Some(3));
    }

    #[test]
    fn someone_elses_live_lease_is_left_alone_and_an_expired_one_taken_over() {
        assert_eq!(
            plan(
                Some(&held_by("b", 90, 3)),
                "podgate-audit",
                "ns",
                "a",
                60,
                at(100)
            ),
            Plan::Wait { holder: "b".into() }
        );
        let p = plan(
            Some(&held_by("b", 10, 3)),
            "podgate-audit",
            "ns",
            "a",
            60,
            at(100),
        );
        assert_eq!(spec(&p).holder_identity.as_deref(), Some("a"));
        assert_eq!(spec(&p).lease_transitions, Some(4));
        assert_eq!(spec(&p).acquire_time, Some(micro(at(100))));
    }
}
