//! The cluster edge of `podgate serve --manage-webhooks` and `podgate uninstall-webhooks`
//! (issue #10): every call to the Kubernetes API lives here, through kube's client.
//!
//! Layout: `secret` (get or create the certificate Secret, write it back, watch it),
//! `webhooks` (read, server-side apply and delete the two configurations), `selfcheck` (a real
//! review over TLS against this process's own listener), `controller` (the loop that ties
//! them to the pure decisions in `crate::managed`). Errors are explained for a human by
//! [`explain`]: what failed and what to fix.

pub mod controller;
pub mod secret;
pub(crate) mod selfcheck;
pub mod uninstall;
pub mod webhooks;

use crate::managed::rotation::Durations;
use std::path::PathBuf;
use std::time::Duration;

/// Field manager of every write.
pub(crate) const FIELD_MANAGER: &str = "podgate";

/// The service-account namespace file of an in-cluster Pod.
const SA_NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

fn parse_duration(text: &str) -> Result<Duration, String> {
    // `d` for days on top of the Go units: certificate lifetimes read better as 365d.
    if let Some(days) = text.trim().strip_suffix('d')
        && let Ok(days) = days.parse::<u64>()
    {
        return Ok(Duration::from_secs(days * 86_400));
    }
    crate::server::duration::parse(text).map_err(|e| e.to_string())
}

/// Flags of `podgate serve` for self-managed certificates and webhook registration.
#[derive(Clone, Debug, clap::Args)]
pub struct ManagedArgs {
    /// Manage the certificates (in a Secret) and the webhook configurations through the
    /// Kubernetes API; the TLS flags are then ignored.
    #[arg(long, env = "PODGATE_MANAGE_WEBHOOKS")]
    pub manage_webhooks: bool,
    /// The webhook specs to register (a YAML file with one MutatingWebhookConfiguration and
    /// one ValidatingWebhookConfiguration); podgate fills in the caBundle, the name and the
    /// Service reference. Re-read at every sync.
    #[arg(long, env = "PODGATE_WEBHOOKS", value_name = "FILE")]
    pub webhooks: Option<PathBuf>,
    /// podgate's namespace [default: $POD_NAMESPACE, else the service-account namespace
    /// file, else the kubeconfig context's].
    #[arg(long, env = "PODGATE_NAMESPACE")]
    pub namespace: Option<String>,
    /// The Service in front of podgate (the webhooks point at it; the certificate names it).
    #[arg(long, env = "PODGATE_SERVICE", default_value = "podgate")]
    pub service: String,
    /// The Secret holding the CA and the serving certificate.
    #[arg(long, env = "PODGATE_SECRET", default_value = "podgate-tls")]
    pub secret: String,
    /// Name of both webhook configurations.
    #[arg(long, env = "PODGATE_WEBHOOK_CONFIG", default_value = "podgate")]
    pub webhook_config: String,
    /// A kubeconfig file [default: in-cluster config, else $KUBECONFIG, else ~/.kube/config].
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// This replica's name in the Secret's reports [default: $POD_NAME, else $HOSTNAME].
    #[arg(long, env = "POD_NAME")]
    pub replica_id: Option<String>,
    /// Validity of a new CA; its rotation starts at two thirds of it.
    #[arg(long, env = "PODGATE_CA_VALIDITY", default_value = "365d", value_parser = parse_duration)]
    pub ca_validity: Duration,
    /// Validity of a serving certificate; renewed at two thirds of it.
    #[arg(long, env = "PODGATE_CERT_VALIDITY", default_value = "90d", value_parser = parse_duration)]
    pub cert_validity: Duration,
    /// Least time between a caBundle change and a step that relies on it.
    #[arg(long, env = "PODGATE_PROPAGATION_DELAY", default_value = "60s", value_parser = parse_duration)]
    pub propagation_delay: Duration,
    /// How often a replica confirms in the Secret which CA it serves from; a report older
    /// than three times this is from a replica that is gone.
    #[arg(long, env = "PODGATE_REPORT_INTERVAL", default_value = "5m", value_parser = parse_duration)]
    pub report_interval: Duration,
    /// Period of the full sync (Secret, rotation, drift) behind the Secret watch.
    #[arg(long, env = "PODGATE_SYNC_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    pub sync_interval: Duration,
    /// Longest wait between retries after an error (they start at 1 s and double).
    #[arg(long, env = "PODGATE_RETRY_MAX", default_value = "60s", value_parser = parse_duration)]
    pub retry_max: Duration,
}

impl Default for ManagedArgs {
    fn default() -> Self {
        ManagedArgs {
            manage_webhooks: false,
            webhooks: None,
            namespace: None,
            service: "podgate".into(),
            secret: "podgate-tls".into(),
            webhook_config: "podgate".into(),
            kubeconfig: None,
            replica_id: None,
            ca_validity: Duration::from_secs(365 * 86_400),
            cert_validity: Duration::from_secs(90 * 86_400),
            propagation_delay: Duration::from_secs(60),
            report_interval: Duration::from_secs(300),
            sync_interval: Duration::from_secs(60),
            retry_max: Duration::from_secs(60),
        }
    }
}

/// Everything the controller needs, resolved.
#[derive(Clone, Debug)]
pub struct Settings {
    pub namespace: String,
    pub service: String,
    pub secret: String,
    pub webhook_config: String,
    pub webhooks_file: PathBuf,
    pub replica_id: String,
    pub durations: Durations,
    pub report_interval: Duration,
    pub sync_interval: Duration,
    pub retry_max: Duration,
}

impl Settings {
    /// The name the apiserver verifies in the serving certificate.
    pub fn server_name(&self) -> String {
        format!("{}.{}.svc", self.service, self.namespace)
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Builds a client: `--kubeconfig` when given, else kube's inference (in-cluster, then
/// `$KUBECONFIG`, then `~/.kube/config`).
pub async fn client(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path).map_err(|e| {
                anyhow::anyhow!("reading kubeconfig {}: {e}", path.display())
            })?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| anyhow::anyhow!("kubeconfig {}: {e}", path.display()))?
        }
        None => kube::Config::infer().await.map_err(|e| {
            anyhow::anyhow!(
                "no cluster to talk to: {e}; run podgate in a Pod, or set KUBECONFIG or --kubeconfig"
            )
        })?,
    };
    kube::Client::try_from(config).map_err(|e| anyhow::anyhow!("building the API client: {e}"))
}

/// Resolves the flags against the environment and the client's default namespace.
pub fn settings(args: &ManagedArgs, client: &kube::Client) -> anyhow::Result<Settings> {
    let namespace = args
        .namespace
        .clone()
        .or_else(|| std::env::var("POD_NAMESPACE").ok())
        .or_else(|| {
            std::fs::read_to_string(SA_NAMESPACE_FILE)
                .ok()
                .map(|s| s.trim().to_string())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| client.default_namespace().to_string());
    let Some(webhooks_file) = args.webhooks.clone() else {
        anyhow::bail!(
            "--manage-webhooks needs --webhooks FILE (the webhook specs, e.g. deploy/overlays/managed/webhooks.yaml)"
        );
    };
    let replica_id = args
        .replica_id
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("podgate-{}", std::process::id()));
    let report = secs(args.report_interval).max(1);
    Ok(Settings {
        namespace,
        service: args.service.clone(),
        secret: args.secret.clone(),
        webhook_config: args.webhook_config.clone(),
        webhooks_file,
        replica_id,
        durations: Durations {
            ca_validity: secs(args.ca_validity),
            cert_validity: secs(args.cert_validity),
            propagation: secs(args.propagation_delay),
            report_stale_after: report.saturating_mul(3),
        },
        report_interval: args.report_interval,
        sync_interval: args.sync_interval,
        retry_max: args.retry_max,
    })
}

/// A one-line explanation of an API error with what to fix. `what` says what was attempted
/// (`"reading Secret podgate-system/podgate-tls"`).
pub(crate) fn explain(error: &kube::Error, what: &str) -> String {
    match error {
        kube::Error::Api(status) if status.is_forbidden() => format!(
            "{what}: forbidden ({msg}); podgate's ServiceAccount needs the Role and ClusterRole of deploy/overlays/managed (rbac.yaml): check they are applied and bound to it",
            msg = status.message
        ),
        kube::Error::Api(status) if status.code == 401 => format!(
            "{what}: unauthorized ({msg}); the ServiceAccount token is missing or invalid (automountServiceAccountToken must be true)",
            msg = status.message
        ),
        kube::Error::Api(status) => format!(
            "{what}: the API server answered {code} {reason}: {msg}",
            code = status.code,
            reason = status.reason,
            msg = status.message
        ),
        kube::Error::HyperError(_) | kube::Error::Service(_) => format!(
            "{what}: cannot reach the API server ({error}); check the network path to it (NetworkPolicy egress, KUBERNETES_SERVICE_HOST, the kubeconfig's server)"
        ),
        other => format!("{what}: {other}"),
    }
}

/// Exponential backoff from one second to a cap.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(max: Duration) -> Backoff {
        let first = Duration::from_secs(1).min(max);
        Backoff { next: first, max }
    }
    /// The wait before the next retry; doubles each call up to the cap.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }
    pub fn reset(&mut self) {
        self.next = Duration::from_secs(1).min(self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_days_and_go_units() {
        assert_eq!(
            parse_duration("365d"),
            Ok(Duration::from_secs(365 * 86_400))
        );
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(5));
        let delays: Vec<u64> = (0..5).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 5, 5]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_secs(1));
        let mut short = Backoff::new(Duration::from_millis(200));
        assert_eq!(short.next_delay(), Duration::from_millis(200));
    }

    #[test]
    fn explains_forbidden_with_the_rbac_to_fix() {
        let status =
            kube::core::Status::failure("secrets \"podgate-tls\" is forbidden", "Forbidden")
                .with_code(403);
        let text = explain(&kube::Error::Api(Box::new(status)), "reading Secret x/y");
        assert!(text.starts_with("reading Secret x/y: forbidden"), "{text}");
        assert!(text.contains("rbac.yaml"), "{text}");
    }
}
