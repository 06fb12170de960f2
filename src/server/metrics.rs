//! Prometheus metrics of the server, read off the values the admission core returns.
//!
//! One `Registry` per server (no global state), so tests can run several servers in one
//! process. Counter names are registered without `_total`; prometheus-client appends it.
//!
//! Every label value comes from a fixed set: anyone who can reach the webhook port chooses the
//! request body, so a label copied from it would let them create unlimited time series.
//! `kind` and `operation` go through `kind_label` and `operation_label`; `policy` names come
//! from the operator's policy files; everything else is a constant.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Latency buckets in seconds, 50 µs to 10 s: a review is tens of µs; the webhooks' timeouts
/// are 3 s (mutating) and 5 s (validating), and the PodgateLatencyNearTimeout alert fires at a
/// p99 of 1.5 s, so the buckets resolve that range too.
const DURATION_BUCKETS: [f64; 20] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    0.75, 1.0, 1.5, 2.5, 3.0, 5.0, 10.0,
];

/// The `kind` label values: the kinds podgate reviews, then `other`.
pub const KINDS: [&str; 10] = [
    "Pod",
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "ReplicationController",
    "ConfigMap",
    "other",
];

/// The `operation` label values: the operations an AdmissionRequest can carry
/// (admission/v1 `Operation`), then `other`.
pub const OPERATIONS: [&str; 5] = ["CREATE", "UPDATE", "DELETE", "CONNECT", "other"];

/// `kind` as a label value: one of `KINDS`.
pub(crate) fn kind_label(kind: &str) -> &'static str {
    KINDS
        .iter()
        .find(|k| **k == kind)
        .copied()
        .unwrap_or("other")
}

/// `operation` as a label value: one of `OPERATIONS`.
pub(crate) fn operation_label(operation: &str) -> &'static str {
    OPERATIONS
        .iter()
        .find(|o| **o == operation)
        .copied()
        .unwrap_or("other")
}

/// Every value is a constant (no allocation per review).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub webhook: &'static str,
    /// One of `OPERATIONS`.
    pub operation: &'static str,
    /// One of `KINDS`.
    pub kind: &'static str,
    /// `allow`, `deny` or `error` (a caught panic)
    pub decision: &'static str,
}

impl RequestLabels {
    /// Labels for one review, with `operation` and `kind` (as the request says them) mapped
    /// onto their fixed sets.
    pub fn bounded(
        webhook: &'static str,
        operation: &str,
        kind: &str,
        decision: &'static str,
    ) -> RequestLabels {
        RequestLabels {
            webhook,
            operation: operation_label(operation),
            kind: kind_label(kind),
            decision,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ViolationLabels {
    pub policy: String,
    pub rule: String,
    pub action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `success` or `error`
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeadlineLabels {
    pub webhook: String,
    /// `queue` (no evaluation slot in time) or `evaluation` (the analysis ran out of time)
    pub stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EvaluationLabels {
    /// `inline` (answered on the async worker with the small budget), `inline_cut` (tried
    /// inline, fell short, then evaluated on the pool) or `pool`.
    pub path: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    pub code: String,
}

/// Every metric the server exports; cheap to clone (all handles are `Arc`s).
#[derive(Clone, Debug)]
pub struct Metrics {
    pub requests: Family<RequestLabels, Counter>,
    pub duration: Histogram,
    pub violations: Family<ViolationLabels, Counter>,
    pub policy_reloads: Family<ResultLabels, Counter>,
    pub policies_loaded: Gauge,
    pub cert_expiry: Gauge,
    pub cert_reloads: Family<ResultLabels, Counter>,
    pub exemptions_expiring: Gauge,
    pub panics: Counter,
    pub deadline_exceeded: Family<DeadlineLabels, Counter>,
    pub evaluations: Family<EvaluationLabels, Counter>,
    pub in_flight: Gauge,
    pub http_errors: Family<CodeLabels, Counter>,
    pub tls_handshake_errors: Counter,
    /// 1 while this replica is Ready (the value `/readyz` reports), else 0.
    pub ready: Gauge,
    /// 1 when the latest attempt to load the policy folder succeeded, else 0.
    pub policy_last_reload_successful: Gauge,
}

impl Metrics {
    /// Builds the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Metrics {
        let m = Metrics {
            requests: Family::default(),
            duration: Histogram::new(DURATION_BUCKETS),
            violations: Family::default(),
            policy_reloads: Family::default(),
            policies_loaded: Gauge::default(),
            cert_expiry: Gauge::default(),
            cert_reloads: Family::default(),
            exemptions_expiring: Gauge::default(),
            panics: Counter::default(),
            deadline_exceeded: Family::default(),
            evaluations: Family::default(),
            in_flight: Gauge::default(),
            http_errors: Family::default(),
            tls_handshake_errors: Counter::default(),
            ready: Gauge::default(),
            policy_last_reload_successful: Gauge::default(),
        };
        registry.register(
            "podgate_admission_requests",
            "Admission reviews answered, by webhook, operation, kind and decision",
            m.requests.clone(),
        );
        registry.register(
            "podgate_admission_duration_seconds",
            "Time from request start to response, reviews only",
            m.duration.clone(),
        );
        registry.register(
            "podgate_policy_violations",
            "Policy findings, by policy, rule and action",
            m.violations.clone(),
        );
        registry.register(
            "podgate_policy_reloads",
            "Policy folder reload attempts, by result",
            m.policy_reloads.clone(),
        );
        registry.register(
            "podgate_policies_loaded",
            "Number of policies in the serving set",
            m.policies_loaded.clone(),
        );
        registry.register(
            "podgate_tls_certificate_expiry_timestamp_seconds",
            "notAfter of the serving certificate, Unix seconds",
            m.cert_expiry.clone(),
        );
        registry.register(
            "podgate_tls_certificate_reloads",
            "Serving certificate reload attempts, by result",
            m.cert_reloads.clone(),
        );
        registry.register(
            "podgate_exemptions_expiring_total",
            "Policy exemptions that expire within 7 days",
            m.exemptions_expiring.clone(),
        );
        registry.register(
            "podgate_panics",
            "Panics caught while evaluating a review",
            m.panics.clone(),
        );
        registry.register(
            "podgate_evaluation_deadline_exceeded",
            "Reviews answered by the policies' actions because evaluation did not finish (or \
             start) before the deadline, by webhook and stage (queue, evaluation)",
            m.deadline_exceeded.clone(),
        );
        registry.register(
            "podgate_evaluations",
            "Reviews evaluated, by path: inline (small review, small budget, on the async \
             worker), inline_cut (tried inline, fell short, then evaluated on the pool), pool",
            m.evaluations.clone(),
        );
        registry.register(
            "podgate_admission_in_flight",
            "Reviews being processed right now",
            m.in_flight.clone(),
        );
        registry.register(
            "podgate_http_errors",
            "Requests refused before review (4xx), by status code",
            m.http_errors.clone(),
        );
        registry.register(
            "podgate_tls_handshake_errors",
            "TLS handshakes that failed or timed out",
            m.tls_handshake_errors.clone(),
        );
        registry.register(
            "podgate_ready",
            "1 while this replica is Ready (policies and certificate loaded, not shutting down)",
            m.ready.clone(),
        );
        registry.register(
            "podgate_policy_last_reload_successful",
            "1 when the latest load of the policy folder succeeded, 0 when it was refused",
            m.policy_last_reload_successful.clone(),
        );
        // Zero samples up front for the deadline counter too, so its alert has a series to read.
        for webhook in ["validate", "mutate"] {
            for stage in ["queue", "evaluation"] {
                m.deadline_exceeded
                    .get_or_create(&DeadlineLabels {
                        webhook: webhook.into(),
                        stage: stage.into(),
                    })
                    .get();
            }
        }
        for path in ["inline", "inline_cut", "pool"] {
            m.evaluations
                .get_or_create(&EvaluationLabels { path })
                .get();
        }
        // Zero samples up front, so dashboards and alerts see the series before the first reload.
        for result in ["success", "error"] {
            let labels = ResultLabels {
                result: result.into(),
            };
            m.policy_reloads.get_or_create(&labels).inc_by(0);
            m.cert_reloads.get_or_create(&labels).inc_by(0);
        }
        m
    }
}

/// Decrements the in-flight gauge when dropped, also on cancellation.
pub(crate) struct InFlight(Gauge);

impl InFlight {
    pub(crate) fn enter(gauge: &Gauge) -> InFlight {
        gauge.inc();
        InFlight(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_stay_in_their_fixed_sets() {
        let cases = [
            ("Pod", "CREATE", "Pod", "CREATE"),
            ("ConfigMap", "UPDATE", "ConfigMap", "UPDATE"),
            ("pod", "create", "other", "other"),
            ("", "", "other", "other"),
            ("Pod\n", "CREATE ", "other", "other"),
            ("x".repeat(10_000).as_str(), "*", "other", "other"),
        ]
        .map(|(k, o, wk, wo)| (k.to_owned(), o, wk, wo));
        for (kind, op, want_kind, want_op) in &cases {
            let labels = RequestLabels::bounded("validate", op, kind, "allow");
            assert_eq!(labels.kind, *want_kind, "{kind:?}");
            assert_eq!(labels.operation, *want_op, "{op:?}");
        }
    }
}
