//! The command line: `serve | review | check | certs`.
//!
//! Each subcommand reads its input, calls the pure core and prints; exit codes are
//! 0 (clean or allowed), 1 (something denied), 2 (unreadable input or bad policies).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use crate::admission::{self, Webhook};
use crate::check;
use crate::manifests;
use crate::policy::PolicySet;

/// podgate: a Kubernetes admission webhook guarding Pods.
#[derive(Debug, Parser)]
#[command(name = "podgate", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
// Parsed once per process: the size of `serve`'s flags does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Serve the admission webhook over HTTPS (plus a plain-HTTP probe port).
    Serve(Box<crate::server::ServeArgs>),
    /// Answer one AdmissionReview (or a bare request) from a file or stdin, as the webhook would.
    Review(ReviewArgs),
    /// Evaluate manifests (YAML or JSON files, folders, Lists) against the policies.
    Check(CheckArgs),
    /// Evaluate what runs in a cluster (Pods and workloads) against the policies.
    Audit(crate::audit::AuditArgs),
    /// Make a CA and a serving certificate for the webhook Service; print the caBundle.
    Certs(crate::certs::CertsArgs),
    /// Delete both webhook configurations of `serve --manage-webhooks` (after switching
    /// registration off), the first step of an uninstall.
    UninstallWebhooks(crate::cluster::uninstall::UninstallArgs),
}

/// `podgate review`.
#[derive(Debug, clap::Args)]
pub struct ReviewArgs {
    /// Folder of policy files.
    #[arg(long, default_value = "./policies", env = "PODGATE_POLICIES")]
    pub policies: PathBuf,
    /// Which webhook answers.
    #[arg(long, value_enum, default_value = "validate")]
    pub webhook: Webhook,
    /// The AdmissionReview JSON file; `-` or nothing reads stdin.
    pub file: Option<PathBuf>,
    /// Evaluate as of this instant (RFC 3339), for exemption expiry; default now.
    #[arg(long, hide = true)]
    pub now: Option<jiff::Timestamp>,
}

/// `podgate check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Folder of policy files.
    #[arg(long, default_value = "./policies", env = "PODGATE_POLICIES")]
    pub policies: PathBuf,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: Output,
    /// Manifest files or folders (`-` reads stdin).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Print only the summary line (text) or the summary and input errors (JSON); the exit
    /// code is the same.
    #[arg(short = 'q', long, visible_alias = "quiet")]
    pub summary_only: bool,
    /// Evaluate as of this instant (RFC 3339), for exemption expiry; default now.
    #[arg(long, hide = true)]
    pub now: Option<jiff::Timestamp>,
}

/// `--output`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Output {
    /// Human-readable.
    Text,
    /// One JSON document.
    Json,
    /// SARIF 2.1.0, for CI systems that show findings inline.
    Sarif,
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => crate::server::run(*args).map(|()| ExitCode::SUCCESS),
        Command::Review(args) => review(&args),
        Command::Check(args) => check(&args),
        Command::Audit(args) => crate::audit::run(&args),
        Command::Certs(args) => crate::certs::run(&args).map(|()| ExitCode::SUCCESS),
        Command::UninstallWebhooks(args) => {
            crate::cluster::uninstall::run(&args).map(|()| ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("podgate: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Loads the policy folder; the loader's warnings go to standard error, so that standard
/// output stays the report (JSON and SARIF included).
fn load_policies(dir: &Path) -> anyhow::Result<PolicySet> {
    let set =
        PolicySet::load_dir(dir).map_err(|e| anyhow::anyhow!("refusing bad policies:\n{e}"))?;
    for warning in set.warnings() {
        eprintln!("podgate: {warning}");
    }
    Ok(set)
}

fn read_input(file: Option<&Path>) -> anyhow::Result<Vec<u8>> {
    match file {
        None => read_stdin(),
        Some(p) if p == Path::new("-") => read_stdin(),
        Some(p) => std::fs::read(p).with_context(|| format!("cannot read {}", p.display())),
    }
}

fn read_stdin() -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    std::io::stdin()
        .read_to_end(&mut buf)
        .context("cannot read standard input")?;
    Ok(buf)
}

/// Wraps a bare `request` stanza (as many projects store fixtures) in a v1 AdmissionReview.
pub(crate) fn wrap_bare_request(body: Vec<u8>) -> Vec<u8> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return body;
    };
    let bare = value.get("request").is_none() && value.get("uid").is_some();
    if !bare {
        return body;
    }
    let wrapped = serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": value,
    });
    serde_json::to_vec(&wrapped).unwrap_or(body)
}

fn review(args: &ReviewArgs) -> anyhow::Result<ExitCode> {
    let set = load_policies(&args.policies)?;
    let body = wrap_bare_request(read_input(args.file.as_deref())?);
    let webhook = args.webhook;
    let now = args.now.unwrap_or_else(jiff::Timestamp::now);
    let reviewed = admission::review(&set, &body, webhook, now)?;
    let pretty: serde_json::Value = serde_json::from_slice(&reviewed.body)?;
    println!("{}", serde_json::to_string_pretty(&pretty)?);
    Ok(if reviewed.summary.allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let set = load_policies(&args.policies)?;
    // Every input is read; what cannot be is reported with the rest, never a stop.
    let input = manifests::read_all(&args.paths);
    let now = args.now.unwrap_or_else(jiff::Timestamp::now);
    let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let run = check::check_input(&set, &input, today);
    print!("{}", render_check(&run, args.output, args.summary_only)?);
    Ok(ExitCode::from(run.exit_code()))
}

/// The run in the chosen format. JSON is always one valid document with `summary`, `objects`
/// and `errors` (`--summary-only` leaves out the objects).
fn render_check(
    run: &check::CheckRun,
    output: Output,
    summary_only: bool,
) -> anyhow::Result<String> {
    Ok(match output {
        Output::Text => check::render_text(run, summary_only),
        Output::Json if summary_only => {
            let short = serde_json::json!({"summary": run.summary, "errors": run.errors});
            format!("{}\n", serde_json::to_string_pretty(&short)?)
        }
        Output::Json => format!("{}\n", serde_json::to_string_pretty(run)?),
        Output::Sarif => format!(
            "{}\n",
            serde_json::to_string_pretty(&crate::sarif::from_check(&run.objects, &run.errors))?
        ),
    })
}
