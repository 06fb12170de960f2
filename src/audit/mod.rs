//! `podgate audit`: what already runs in the cluster, judged by the same engine as `check`
//! and the webhook, with PolicyReports (`--report`) and the background audit of `serve`.
//!
//! Layers: `inventory` (pure: grouping Pods at their workloads, skips), `evaluate` (pure: the
//! engine's answers per object and per policy rule), `render` (pure: text), `report` (pure:
//! PolicyReport objects) and the edges `cluster` (paged lists), `publish` (server-side apply
//! and pruning of reports) and `background` (the periodic audit behind a Lease).

pub mod background;
pub mod cluster;
pub mod evaluate;
pub mod inventory;
pub mod lease;
pub mod publish;
pub mod render;
pub mod report;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::policy::PolicySet;
use crate::workload::Kind;

use self::inventory::{Inventory, Listed, PodTally};

pub use self::cluster::{ClusterError, Scope};
pub use self::evaluate::AuditedObject;
pub use self::inventory::Skipped;

/// The webhook's excluded namespaces as shipped (deploy/base/webhook-settings.yaml, the one
/// place that lists them), compiled in so that `audit` skips what the webhook skips.
const WEBHOOK_SETTINGS: &str = include_str!("../../deploy/base/webhook-settings.yaml");

/// The namespace podgate is installed in by default (always excluded by the webhook).
pub const DEFAULT_PODGATE_NAMESPACE: &str = "podgate-system";

/// The excluded namespaces of the shipped webhook settings.
pub(crate) fn shipped_exclusions() -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Settings {
        spec: Spec,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Spec {
        #[serde(default)]
        excluded_namespaces: Vec<String>,
    }
    serde_saphyr::from_str::<Settings>(WEBHOOK_SETTINGS)
        .map(|s| s.spec.excluded_namespaces)
        .unwrap_or_default()
}

/// Output formats of `audit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuditOutput {
    /// Human-readable.
    Text,
    /// One JSON document.
    Json,
    /// SARIF 2.1.0.
    Sarif,
}

/// `podgate audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Folder of policy files.
    #[arg(long, default_value = "./policies", env = "PODGATE_POLICIES")]
    pub policies: PathBuf,
    /// Every namespace.
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,
    /// These namespaces (repeatable) [default: the kubeconfig context's namespace].
    #[arg(short = 'n', long = "namespace", value_name = "NS")]
    pub namespace: Vec<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: AuditOutput,
    /// Write one PolicyReport (wgpolicyk8s.io/v1alpha2) per namespace.
    #[arg(long)]
    pub report: bool,
    /// Namespaces the webhook is not called for, skipped as it skips them (repeatable)
    /// [default: the list in deploy/base/webhook-settings.yaml].
    #[arg(long = "exclude-namespace", value_name = "NS")]
    pub exclude_namespace: Vec<String>,
    /// podgate's own namespace, always excluded, as the webhook excludes it.
    #[arg(long, env = "PODGATE_NAMESPACE", default_value = DEFAULT_PODGATE_NAMESPACE)]
    pub podgate_namespace: String,
    /// Objects per list request.
    #[arg(long, default_value_t = 500)]
    pub page_size: u32,
    /// Evaluate as of this instant (RFC 3339), for exemption expiry; default now.
    #[arg(long, hide = true)]
    pub now: Option<jiff::Timestamp>,
}

/// The namespaces an audit skips.
pub fn exclusions(explicit: &[String], podgate_namespace: &str) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = if explicit.is_empty() {
        shipped_exclusions().into_iter().collect()
    } else {
        explicit.iter().cloned().collect()
    };
    out.insert(podgate_namespace.to_string());
    out
}

/// One audit's findings.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct AuditRun {
    /// Every object evaluated, in report order.
    pub objects: Vec<AuditedObject>,
    /// What was skipped.
    pub skipped: Skipped,
    /// Why parts of the cluster could not be read (the run is incomplete when not empty).
    pub errors: Vec<String>,
    /// The namespaces listed (`None`: all).
    #[serde(skip)]
    pub scope: Option<Vec<String>>,
}

impl AuditRun {
    /// True when everything in scope was read.
    pub fn complete(&self) -> bool {
        self.errors.is_empty()
    }

    /// The exit code: 2 on errors (unreadable cluster or objects), 1 when something would be
    /// denied, else 0 (as `check`).
    pub fn exit_code(&self) -> u8 {
        if !self.errors.is_empty() || self.objects.iter().any(|o| o.error.is_some()) {
            2
        } else if self.objects.iter().any(|o| o.denied) {
            1
        } else {
            0
        }
    }
}

/// Lists, groups and evaluates: one audit.
pub async fn audit(
    client: &kube::Client,
    set: &PolicySet,
    scope: &Scope,
    excluded: &BTreeSet<String>,
    page_size: u32,
    today: jiff::civil::Date,
) -> AuditRun {
    // Workloads first: then whether a Pod is reported at one of them is known from its
    // metadata, and its spec is read only when it is reported on its own.
    let (workloads, mut errors) = cluster::list_all(
        client,
        inventory::workload_kinds(),
        scope,
        page_size,
        &Workloads::default(),
    )
    .await;
    let workloads = workloads.into_iter().flat_map(|w| w.0).collect();
    let mut inventory = Inventory::new(workloads, excluded);
    let start = Pods {
        inventory: &inventory,
        excluded,
        tally: PodTally::default(),
    };
    let (tallies, pod_errors) =
        cluster::list_all(client, &[Kind::Pod], scope, page_size, &start).await;
    errors.extend(pod_errors);
    let tallies: Vec<PodTally> = tallies.into_iter().map(|p| p.tally).collect();
    for tally in tallies {
        inventory.add(tally);
    }
    let plan = inventory.plan(excluded);
    let objects = evaluate::evaluate(set, inventory.objects(), &plan, today);
    AuditRun {
        objects,
        skipped: plan.skipped,
        errors: errors.iter().map(|e| e.to_string()).collect(),
        scope: match scope {
            Scope::All => None,
            Scope::Namespaces(n) => Some(n.clone()),
        },
    }
}

/// One list of workloads, read into the audit's lean view.
#[derive(Default)]
struct Workloads(Vec<Listed>);

impl cluster::Collect for Workloads {
    fn fresh(&self) -> Self {
        Workloads::default()
    }
    fn take(&mut self, kind: Kind, item: &str) -> Result<(), serde_json::Error> {
        self.0.push(Listed::read(kind, item)?);
        Ok(())
    }
}

/// One list of Pods, tallied against the workloads.
struct Pods<'a> {
    inventory: &'a Inventory,
    excluded: &'a BTreeSet<String>,
    tally: PodTally,
}

impl cluster::Collect for Pods<'_> {
    fn fresh(&self) -> Self {
        Pods {
            tally: PodTally::default(),
            ..*self
        }
    }
    fn take(&mut self, _: Kind, item: &str) -> Result<(), serde_json::Error> {
        self.inventory
            .tally_pod(&mut self.tally, item, self.excluded)
    }
}

/// Builds kube's client the usual way (`KUBECONFIG`, `~/.kube/config`, in-cluster).
pub(crate) async fn infer_client() -> anyhow::Result<(kube::Client, String)> {
    let config = kube::Config::infer()
        .await
        .context("no Kubernetes configuration (KUBECONFIG, ~/.kube/config or in-cluster)")?;
    let namespace = config.default_namespace.clone();
    let client = kube::Client::try_from(config).context("building the Kubernetes client")?;
    Ok((client, namespace))
}

/// `podgate audit`.
pub fn run(args: &AuditArgs) -> anyhow::Result<ExitCode> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let set = PolicySet::load_dir(&args.policies)
        .map_err(|e| anyhow::anyhow!("refusing bad policies:\n{e}"))?;
    let now = args.now.unwrap_or_else(jiff::Timestamp::now);
    let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let excluded = exclusions(&args.exclude_namespace, &args.podgate_namespace);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    runtime.block_on(async {
        let (client, default_ns) = infer_client().await?;
        let scope = if args.all_namespaces {
            Scope::All
        } else if args.namespace.is_empty() {
            Scope::Namespaces(vec![default_ns])
        } else {
            Scope::Namespaces(args.namespace.clone())
        };
        let run = audit(&client, &set, &scope, &excluded, args.page_size, today).await;
        match args.output {
            AuditOutput::Text => print!("{}", render::text(&run)),
            AuditOutput::Json => println!("{}", serde_json::to_string_pretty(&run)?),
            AuditOutput::Sarif => {
                println!("{}", serde_json::to_string_pretty(&render::sarif(&run))?)
            }
        }
        for e in &run.errors {
            eprintln!("podgate: {e}");
        }
        let mut code = run.exit_code();
        if args.report {
            match publish::publish(&client, &run, now.as_second()).await {
                Ok(p) => eprintln!(
                    "podgate: PolicyReports: {} applied, {} stale deleted",
                    p.applied, p.deleted
                ),
                Err(e) => {
                    eprintln!("podgate: {e}");
                    code = 2;
                }
            }
        }
        Ok(ExitCode::from(code))
    })
}
