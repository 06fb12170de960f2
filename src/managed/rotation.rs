//! When to issue, renew and rotate: [`plan`] looks at the Secret's material and what was
//! observed in the cluster and names one [`Step`]; [`apply`] performs it on a copy of the
//! material (new keys are random, nothing else is read).
//!
//! The CA rotation keeps an overlap so that no client that trusts the caBundle of the moment
//! ever sees a certificate it cannot verify:
//! 1. at two thirds of the CA's life a next CA is staged: the caBundle becomes current + next;
//! 2. once both webhook configurations carry the next CA and it has been staged for the
//!    propagation delay, it becomes the signing CA and the serving certificate is reissued
//!    from it; the old CA stays in the caBundle as "previous" (without its key);
//! 3. once every live replica reports serving from the new CA (and the propagation delay has
//!    passed since the switch), the previous CA leaves the caBundle.
//!
//! The serving certificate is renewed at two thirds of its life and never outlives its CA.
//! Every replica runs the same plan; the Secret's resourceVersion makes exactly one of them
//! win each step (the others get 409, read the winner's Secret and find nothing left to do).

use super::material::{Ca, Material, Report, Serving, cert_facts};
use crate::certs::{CertError, generate_ca_at, issue_serving_at};

/// Lifetimes and delays, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Durations {
    /// Validity of a new CA.
    pub ca_validity: i64,
    /// Validity of a new serving certificate (cut to the CA's notAfter).
    pub cert_validity: i64,
    /// Least time between a caBundle change and the step that relies on it.
    pub propagation: i64,
    /// A replica report older than this is from a replica that is gone.
    pub report_stale_after: i64,
}

/// What the cluster looked like, as far as a step depends on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Observed {
    /// Unix seconds.
    pub now: i64,
    /// Both webhook configurations trust the next CA (or registration is switched off).
    pub webhooks_trust_next: bool,
    /// When the next CA was staged, from the Secret's annotation.
    pub next_staged_at: Option<i64>,
    /// When the current CA started signing, from the Secret's annotation.
    pub promoted_at: Option<i64>,
    /// The replicas' reports.
    pub reports: Vec<Report>,
}

/// One step of certificate management.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Nothing to do.
    Keep,
    /// Issue a serving certificate from the current CA.
    IssueServing { reason: String },
    /// Start a CA rotation: generate the next CA and trust it.
    StageNextCa,
    /// Sign with the next CA from now on; keep trusting the old one.
    PromoteNextCa,
    /// Stop trusting the previous CA.
    DropPreviousCa,
    /// The CA expired with no usable successor: start over (no overlap is possible).
    ReplaceExpiredCa,
}

/// The step to take now.
pub fn plan(material: &Material, durations: &Durations, observed: &Observed) -> Step {
    let now = observed.now;
    let next_usable = material
        .next
        .as_ref()
        .is_some_and(|next| next.facts.not_after > now);
    if material.ca.facts.not_after <= now {
        return if next_usable {
            Step::PromoteNextCa
        } else {
            Step::ReplaceExpiredCa
        };
    }
    if let Some((_, previous)) = &material.previous {
        let current = &material.ca.facts.fingerprint;
        let live: Vec<&Report> = observed
            .reports
            .iter()
            .filter(|r| now - r.at <= durations.report_stale_after)
            .collect();
        let everyone_moved = !live.is_empty() && live.iter().all(|r| &r.ca_fingerprint == current);
        let settled = observed
            .promoted_at
            .is_none_or(|at| now - at >= durations.propagation);
        if previous.not_after <= now || (everyone_moved && settled) {
            return Step::DropPreviousCa;
        }
    }
    if let Some(next) = &material.next {
        let staged_long_enough = observed
            .next_staged_at
            .is_none_or(|at| now - at >= durations.propagation);
        if next.facts.not_after > now && observed.webhooks_trust_next && staged_long_enough {
            return Step::PromoteNextCa;
        }
    } else if material.previous.is_none() && now >= material.ca.facts.renew_at() {
        return Step::StageNextCa;
    }
    match &material.serving {
        Err(reason) => Step::IssueServing {
            reason: reason.clone(),
        },
        Ok(serving) if now >= serving.facts.renew_at() => Step::IssueServing {
            reason: "two thirds of its life have passed".into(),
        },
        Ok(_) => Step::Keep,
    }
}

/// What podgate puts in certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// Common name of a new CA.
    pub ca_common_name: String,
    /// DNS SANs of the serving certificate.
    pub dns_names: Vec<String>,
}

fn issue(ca: &Ca, names: &Names, durations: &Durations, now: i64) -> Result<Serving, CertError> {
    // Never past the CA: a leaf that outlives its issuer would fail verification first.
    let validity = durations.cert_validity.min(ca.facts.not_after - now).max(1);
    let pair = issue_serving_at(&ca.pair, &names.dns_names, &[], validity, now)?;
    let facts = cert_facts(&pair.cert_pem).map_err(|_| CertError::Clock)?;
    Ok(Serving { pair, facts })
}

fn new_ca(names: &Names, durations: &Durations, now: i64) -> Result<Ca, CertError> {
    let pair = generate_ca_at(&names.ca_common_name, durations.ca_validity, now)?;
    let facts = cert_facts(&pair.cert_pem).map_err(|_| CertError::Clock)?;
    Ok(Ca { pair, facts })
}

/// A fresh CA and serving pair, for a Secret that does not exist yet.
pub fn initial(names: &Names, durations: &Durations, now: i64) -> Result<Material, CertError> {
    let ca = new_ca(names, durations, now)?;
    let serving = issue(&ca, names, durations, now)?;
    Ok(Material {
        ca,
        next: None,
        previous: None,
        serving: Ok(serving),
    })
}

/// Performs `step` on a copy of `material`.
pub fn apply(
    material: &Material,
    step: &Step,
    names: &Names,
    durations: &Durations,
    now: i64,
) -> Result<Material, CertError> {
    let mut out = material.clone();
    match step {
        Step::Keep => {}
        Step::IssueServing { .. } => out.serving = Ok(issue(&out.ca, names, durations, now)?),
        Step::StageNextCa => out.next = Some(new_ca(names, durations, now)?),
        Step::PromoteNextCa => {
            let Some(next) = out.next.take() else {
                return Ok(out);
            };
            let old = std::mem::replace(&mut out.ca, next);
            out.previous = Some((old.pair.cert_pem, old.facts));
            out.serving = Ok(issue(&out.ca, names, durations, now)?);
        }
        Step::DropPreviousCa => out.previous = None,
        Step::ReplaceExpiredCa => out = initial(names, durations, now)?,
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::managed::material::{Report, bundle_contains, verify_serving};

    const NAME: &str = "podgate.podgate-system.svc";
    const T0: i64 = 1_900_000_000;

    fn names() -> Names {
        Names {
            ca_common_name: "podgate test CA".into(),
            dns_names: vec![NAME.into()],
        }
    }

    fn durations() -> Durations {
        Durations {
            ca_validity: 3000,
            cert_validity: 300,
            propagation: 10,
            report_stale_after: 60,
        }
    }

    fn observed(now: i64) -> Observed {
        Observed {
            now,
            webhooks_trust_next: false,
            next_staged_at: None,
            promoted_at: None,
            reports: Vec::new(),
        }
    }

    fn report(replica: &str, fp: &str, at: i64) -> Report {
        Report {
            replica: replica.into(),
            ca_fingerprint: fp.into(),
            at,
        }
    }

    #[test]
    fn a_fresh_secret_needs_nothing_until_two_thirds_of_the_serving_life() {
        let m = initial(&names(), &durations(), T0).unwrap();
        let serving = m.serving.as_ref().unwrap();
        // 300 s of validity plus a 30 s backdate: renewal two thirds into [T0-30, T0+300].
        assert_eq!(serving.facts.renew_at(), T0 - 30 + 220);
        assert_eq!(plan(&m, &durations(), &observed(T0 + 189)), Step::Keep);
        assert!(matches!(
            plan(&m, &durations(), &observed(T0 + 190)),
            Step::IssueServing { .. }
        ));
    }

    #[test]
    fn a_missing_serving_pair_is_issued_from_the_current_ca() {
        let mut m = initial(&names(), &durations(), T0).unwrap();
        m.serving = Err("key tls.crt is missing".into());
        let step = plan(&m, &durations(), &observed(T0));
        assert_eq!(
            step,
            Step::IssueServing {
                reason: "key tls.crt is missing".into()
            }
        );
        let out = apply(&m, &step, &names(), &durations(), T0).unwrap();
        let serving = out.serving.unwrap();
        verify_serving(&m.ca.pair.cert_pem, &serving.pair.cert_pem, NAME, T0).unwrap();
        assert_eq!(out.ca, m.ca);
    }

    #[test]
    fn the_serving_certificate_never_outlives_its_ca() {
        let d = durations();
        let m = initial(&names(), &d, T0).unwrap();
        let late = T0 + 2900;
        let out = apply(
            &m,
            &Step::IssueServing { reason: "x".into() },
            &names(),
            &d,
            late,
        )
        .unwrap();
        assert_eq!(out.serving.unwrap().facts.not_after, m.ca.facts.not_after);
    }

    #[test]
    fn a_ca_rotation_stages_promotes_and_drops_with_an_overlap() {
        let d = durations();
        let m0 = initial(&names(), &d, T0).unwrap();
        let old_fp = m0.ca.facts.fingerprint.clone();
        // Renewal of the CA at two thirds of [T0-300, T0+3000] = T0+1900.
        let t1 = T0 + 1900;
        let step = plan(&m0, &d, &observed(t1 - 1));
        assert!(matches!(step, Step::IssueServing { .. }), "{step:?}");
        let m0 = apply(&m0, &step, &names(), &d, t1 - 1).unwrap();
        assert_eq!(plan(&m0, &d, &observed(t1)), Step::StageNextCa);
        let m1 = apply(&m0, &Step::StageNextCa, &names(), &d, t1).unwrap();
        let next = m1.next.clone().unwrap();
        // The bundle trusts both; the serving certificate still comes from the old CA.
        assert!(bundle_contains(&m1.ca_bundle(), &m0.ca.pair.cert_pem));
        assert!(bundle_contains(&m1.ca_bundle(), &next.pair.cert_pem));
        assert_eq!(m1.serving, m0.serving);

        // Not promoted while the webhooks do not trust the next CA, nor too soon.
        let mut seen = observed(t1 + 20);
        seen.next_staged_at = Some(t1);
        assert_ne!(plan(&m1, &d, &seen), Step::PromoteNextCa);
        seen.webhooks_trust_next = true;
        seen.now = t1 + 5;
        assert_ne!(plan(&m1, &d, &seen), Step::PromoteNextCa);
        seen.now = t1 + 10;
        assert_eq!(plan(&m1, &d, &seen), Step::PromoteNextCa);
        let t2 = t1 + 10;
        let m2 = apply(&m1, &Step::PromoteNextCa, &names(), &d, t2).unwrap();
        assert_eq!(m2.ca, next);
        assert_eq!(m2.previous.as_ref().unwrap().1.fingerprint, old_fp);
        let serving = m2.serving.as_ref().unwrap();
        verify_serving(&next.pair.cert_pem, &serving.pair.cert_pem, NAME, t2).unwrap();
        // Both certificates a replica may serve during the switch verify against the bundle.
        let bundle = m2.ca_bundle();
        for leaf in [&m1.serving.as_ref().unwrap().pair, &serving.pair] {
            verify_serving(&bundle, &leaf.cert_pem, NAME, t2).unwrap();
        }

        // The previous CA stays while a live replica still serves from it.
        let new_fp = next.facts.fingerprint.clone();
        let mut seen = observed(t2 + 30);
        seen.promoted_at = Some(t2);
        seen.reports = vec![report("a", &new_fp, t2 + 1), report("b", &old_fp, t2 + 2)];
        assert_ne!(plan(&m2, &d, &seen), Step::DropPreviousCa);
        // A report from a replica gone for longer than the stale limit does not block.
        seen.reports = vec![
            report("a", &new_fp, t2 + 1),
            report("gone", &old_fp, t2 - 100),
        ];
        assert_eq!(plan(&m2, &d, &seen), Step::DropPreviousCa);
        // Nor too early after the switch, and never with no live report at all.
        seen.now = t2 + 5;
        assert_ne!(plan(&m2, &d, &seen), Step::DropPreviousCa);
        seen.now = t2 + 200;
        assert_ne!(plan(&m2, &d, &seen), Step::DropPreviousCa);
        let m3 = apply(&m2, &Step::DropPreviousCa, &names(), &d, t2 + 30).unwrap();
        assert_eq!(m3.previous, None);
        assert!(!bundle_contains(&m3.ca_bundle(), &m0.ca.pair.cert_pem));
    }

    #[test]
    fn an_expired_previous_ca_goes_whatever_the_reports_say() {
        let d = durations();
        let m0 = initial(&names(), &d, T0).unwrap();
        let mut m = initial(&names(), &d, T0 + 2000).unwrap();
        m.previous = Some((m0.ca.pair.cert_pem.clone(), m0.ca.facts.clone()));
        assert_eq!(plan(&m, &d, &observed(T0 + 3000)), Step::DropPreviousCa);
    }

    #[test]
    fn an_expired_ca_is_replaced_by_its_successor_or_from_scratch() {
        let d = durations();
        let m = initial(&names(), &d, T0).unwrap();
        let after = T0 + 3001;
        assert_eq!(plan(&m, &d, &observed(after)), Step::ReplaceExpiredCa);
        let fresh = apply(&m, &Step::ReplaceExpiredCa, &names(), &d, after).unwrap();
        assert_ne!(fresh.ca, m.ca);
        assert_eq!(plan(&fresh, &d, &observed(after)), Step::Keep);
        let staged = apply(&m, &Step::StageNextCa, &names(), &d, T0 + 2000).unwrap();
        assert_eq!(plan(&staged, &d, &observed(after)), Step::PromoteNextCa);
    }
}
