//! The background audit of `podgate serve --audit-interval`: the same audit as `podgate audit
//! -A --report`, every interval, from the one replica that holds the Lease `podgate-audit` in
//! podgate's namespace. The Lease is renewed while an audit runs; a replica that loses it
//! stops its run. Results go to PolicyReports and to the metrics
//! `podgate_audit_objects{policy,rule,result}` (results of the last complete run),
//! `podgate_audit_last_complete_run_timestamp_seconds`, `podgate_audit_runs_total{result}` and
//! `podgate_audit_leader`. Label values are bounded: policy names come from the loaded set,
//! rules and results from fixed lists.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use crate::policy::PolicySet;

use super::{Scope, lease, publish, report};

/// The Lease's name.
pub const LEASE_NAME: &str = "podgate-audit";

fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::server::duration::parse(text).map_err(|e| e.to_string())
}

/// `serve` flags of the background audit.
#[derive(Debug, Clone, clap::Args)]
pub struct BackgroundArgs {
    /// Audit the cluster every this long (e.g. 1h) from one replica (a Lease) and write
    /// PolicyReports; off when unset. Needs deploy/components/audit.
    #[arg(long, env = "PODGATE_AUDIT_INTERVAL", value_parser = parse_duration)]
    pub audit_interval: Option<Duration>,
    /// podgate's namespace: the Lease lives there and the audit skips it.
    #[arg(long = "audit-namespace", env = "PODGATE_NAMESPACE", default_value = super::DEFAULT_PODGATE_NAMESPACE)]
    pub audit_namespace: String,
    /// This replica's name in the Lease [default: $POD_NAME, else the host name].
    #[arg(long, env = "POD_NAME", hide = true)]
    pub audit_identity: Option<String>,
    /// How long a Lease holder that stops renewing keeps it.
    #[arg(long, env = "PODGATE_AUDIT_LEASE_DURATION", default_value = "60s", value_parser = parse_duration, hide = true)]
    pub audit_lease_duration: Duration,
}

impl Default for BackgroundArgs {
    /// Off (what `serve` does without the flags).
    fn default() -> Self {
        BackgroundArgs {
            audit_interval: None,
            audit_namespace: super::DEFAULT_PODGATE_NAMESPACE.to_string(),
            audit_identity: None,
            audit_lease_duration: Duration::from_secs(60),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ObjectLabels {
    policy: String,
    rule: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    /// `complete`, `incomplete` or `error`
    result: String,
}

/// The background audit's metrics.
#[derive(Clone, Debug, Default)]
pub struct AuditMetrics {
    objects: Family<ObjectLabels, Gauge>,
    last_complete: Gauge,
    runs: Family<RunLabels, Counter>,
    leader: Gauge,
}

impl AuditMetrics {
    /// Builds and registers them.
    pub fn register(registry: &mut Registry) -> AuditMetrics {
        let m = AuditMetrics::default();
        registry.register(
            "podgate_audit_objects",
            "Results of the last complete background audit, per policy, rule and result",
            m.objects.clone(),
        );
        registry.register(
            "podgate_audit_last_complete_run_timestamp_seconds",
            "Unix time of the last complete background audit run by this replica",
            m.last_complete.clone(),
        );
        registry.register(
            "podgate_audit_runs",
            "Background audit runs by result (complete, incomplete, error)",
            m.runs.clone(),
        );
        registry.register(
            "podgate_audit_leader",
            "Whether this replica holds the audit Lease (1) or not (0)",
            m.leader.clone(),
        );
        m
    }

    fn run(&self, result: &str) {
        self.runs
            .get_or_create(&RunLabels {
                result: result.to_string(),
            })
            .inc();
    }
}

/// Everything the loop needs.
pub struct Background {
    /// kube's client.
    pub client: kube::Client,
    /// The policies (reloaded by the server).
    pub policies: Arc<ArcSwap<PolicySet>>,
    /// How often.
    pub interval: Duration,
    /// podgate's namespace (Lease; excluded).
    pub namespace: String,
    /// This replica's name.
    pub identity: String,
    /// Lease duration.
    pub lease_duration: Duration,
    /// Excluded namespaces.
    pub excluded: BTreeSet<String>,
    /// Metrics.
    pub metrics: AuditMetrics,
    /// Objects per list request.
    pub page_size: u32,
}

/// Resolves once `stop` is true (the guard of `wait_for` is not `Send`: drop it here).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// This replica's default name.
pub(crate) fn default_identity() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("podgate-{}", std::process::id()))
}

impl Background {
    /// Builds the loop from `serve`'s flags with an in-cluster (or kubeconfig) client.
    pub(crate) async fn from_args(
        args: &BackgroundArgs,
        interval: Duration,
        policies: Arc<ArcSwap<PolicySet>>,
        metrics: AuditMetrics,
    ) -> anyhow::Result<Background> {
        let (client, _) = super::infer_client().await?;
        Ok(Background {
            client,
            policies,
            interval,
            namespace: args.audit_namespace.clone(),
            identity: args.audit_identity.clone().unwrap_or_else(default_identity),
            lease_duration: args.audit_lease_duration,
            excluded: super::exclusions(&[], &args.audit_namespace),
            metrics,
            page_size: 500,
        })
    }

    /// Runs until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), &self.namespace);
        let duration_s = i32::try_from(self.lease_duration.as_secs().max(1)).unwrap_or(60);
        let tick = (self.lease_duration / 3).max(Duration::from_millis(100));
        // When this replica last started an audit (complete or not): at most one per interval.
        let mut last_attempt: Option<tokio::time::Instant> = None;
        loop {
            let now = jiff::Timestamp::now();
            match lease::hold(&leases, LEASE_NAME, &self.identity, duration_s, now).await {
                Ok(Some(held)) => {
                    self.metrics.leader.set(1);
                    let interval_s = i64::try_from(self.interval.as_secs()).unwrap_or(i64::MAX);
                    let due = last_attempt.is_none_or(|t| t.elapsed() >= self.interval)
                        && lease::last_audit(&held)
                            .is_none_or(|last| now.as_second() - last.as_second() >= interval_s);
                    if due {
                        last_attempt = Some(tokio::time::Instant::now());
                        self.audit_once(&leases, held, duration_s, tick, &mut stop)
                            .await;
                    }
                }
                Ok(None) => self.lose(),
                Err(error) => {
                    tracing::warn!(%error, lease = LEASE_NAME, "audit lease: cannot read or write");
                    self.lose();
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = stopped(&mut stop) => return,
            }
        }
    }

    fn lose(&self) {
        if self.metrics.leader.get() == 1 {
            tracing::info!("audit lease lost: another replica runs the audit");
            // Only the holder exports results: the others' would be stale.
            self.metrics.objects.clear();
        }
        self.metrics.leader.set(0);
    }

    /// One audit while renewing the Lease.
    async fn audit_once(
        &self,
        leases: &Api<Lease>,
        mut held: Lease,
        duration_s: i32,
        tick: Duration,
        stop: &mut watch::Receiver<bool>,
    ) {
        let started = jiff::Timestamp::now();
        let today = started.to_zoned(jiff::tz::TimeZone::UTC).date();
        let set = self.policies.load_full();
        let work = async {
            let run = super::audit(
                &self.client,
                &set,
                &Scope::All,
                &self.excluded,
                self.page_size,
                today,
            )
            .await;
            let published = publish::publish(&self.client, &run, started.as_second()).await;
            (run, published)
        };
        tokio::pin!(work);
        let (run, published) = loop {
            tokio::select! {
                done = &mut work => break done,
                _ = tokio::time::sleep(tick) => {
                    match lease::hold(leases, LEASE_NAME, &self.identity, duration_s, jiff::Timestamp::now()).await {
                        Ok(Some(renewed)) => held = renewed,
                        Ok(None) => {
                            tracing::warn!("audit lease lost during a run: stopping it");
                            self.lose();
                            return;
                        }
                        Err(error) => tracing::warn!(%error, "audit lease: renewal failed; retrying"),
                    }
                }
                _ = stopped(stop) => return,
            }
        };
        let objects = run.objects.len();
        match published {
            Ok(p) => {
                self.metrics.objects.clear();
                for ((policy, rule, result), n) in report::tally(&run) {
                    self.metrics
                        .objects
                        .get_or_create(&ObjectLabels {
                            policy,
                            rule,
                            result: result.to_string(),
                        })
                        .set(i64::try_from(n).unwrap_or(i64::MAX));
                }
                self.metrics.last_complete.set(started.as_second());
                self.metrics.run("complete");
                if let Err(error) = lease::record_audit(leases, &held, started).await {
                    tracing::warn!(%error, "audit lease: cannot record the run");
                }
                tracing::info!(
                    objects,
                    applied = p.applied,
                    deleted = p.deleted,
                    "background audit complete"
                );
            }
            Err(publish::PublishError::Incomplete(n)) => {
                self.metrics.run("incomplete");
                for e in &run.errors {
                    tracing::warn!(error = %e, "background audit: listing failed");
                }
                tracing::warn!(
                    errors = n,
                    "background audit incomplete: reports and metrics left as they were; next try in one interval"
                );
            }
            Err(error) => {
                self.metrics.run("error");
                tracing::warn!(%error, "background audit: reports not written; next try in one interval");
            }
        }
    }
}
