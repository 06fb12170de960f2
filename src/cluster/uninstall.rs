//! `podgate uninstall-webhooks`: the first step of a safe uninstall. It switches webhook
//! registration off in the Secret (so running replicas do not register again) and then
//! deletes both webhook configurations, so that deleting the Deployment afterwards never
//! leaves a fail-closed webhook without a server.

use super::webhooks::{self, Kind};
use super::{explain, secret};
use crate::managed::material::{WEBHOOKS_ANNOTATION, WEBHOOKS_UNINSTALLED};
use anyhow::Context;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use std::path::PathBuf;

/// Arguments of `podgate uninstall-webhooks`.
#[derive(Clone, Debug, clap::Args)]
pub struct UninstallArgs {
    /// podgate's namespace (where its Secret is).
    #[arg(long, env = "PODGATE_NAMESPACE", default_value = "podgate-system")]
    pub namespace: String,
    /// The Secret of `serve --manage-webhooks`.
    #[arg(long, env = "PODGATE_SECRET", default_value = "podgate-tls")]
    pub secret: String,
    /// Name of both webhook configurations.
    #[arg(long, env = "PODGATE_WEBHOOK_CONFIG", default_value = "podgate")]
    pub webhook_config: String,
    /// A kubeconfig file [default: $KUBECONFIG, else ~/.kube/config, else in-cluster].
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
}

/// Runs the command on its own runtime.
pub fn run(args: &UninstallArgs) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    runtime.block_on(uninstall(args, &mut std::io::stderr()))
}

/// Switches registration off, then deletes both configurations; progress goes to `out`.
pub async fn uninstall(args: &UninstallArgs, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    let client = super::client(args.kubeconfig.as_deref()).await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &args.namespace);
    let what = format!("Secret {}/{}", args.namespace, args.secret);
    loop {
        let current = secrets
            .get_opt(&args.secret)
            .await
            .map_err(|e| anyhow::anyhow!(explain(&e, &format!("reading {what}"))))?;
        let Some(current) = current else {
            writeln!(out, "{what} not found: no managed replica to switch off")?;
            break;
        };
        let mut annotations = secret::annotations(&current);
        annotations.insert(WEBHOOKS_ANNOTATION.into(), WEBHOOKS_UNINSTALLED.into());
        match secret::replace(&secrets, &current, secret::data(&current), annotations).await {
            Ok(_) => {
                writeln!(
                    out,
                    "switched webhook registration off in {what} ({WEBHOOKS_ANNOTATION}={WEBHOOKS_UNINSTALLED})"
                )?;
                break;
            }
            Err(kube::Error::Api(status)) if status.is_conflict() => continue,
            Err(e) => anyhow::bail!(
                "{}; not deleting the webhooks: running replicas would register them again",
                explain(&e, &format!("switching registration off in {what}"))
            ),
        }
    }
    for kind in Kind::BOTH {
        let name = &args.webhook_config;
        let deleted = webhooks::delete(&client, kind, name).await.map_err(|e| {
            anyhow::anyhow!(explain(&e, &format!("deleting {} {name}", kind.as_str())))
        })?;
        if deleted {
            writeln!(out, "deleted {} {name}", kind.as_str())?;
        } else {
            writeln!(out, "{} {name} not found", kind.as_str())?;
        }
    }
    Ok(())
}
