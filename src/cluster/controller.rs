//! The loop behind `--manage-webhooks`. [`Controller::bootstrap`] gets a serving certificate
//! out of the Secret (creating the Secret if needed), retrying with backoff until it has one;
//! the server then starts on it and [`Controller::run`] keeps everything current:
//!
//! 1. read the Secret (get or create), check it, take the rotation step the plan names and
//!    write it back (resourceVersion-guarded: one replica wins a step, the others re-read);
//! 2. serve the Secret's certificate (swapped in the resolver, no restart, open connections
//!    keep theirs);
//! 3. report in the Secret which CA this replica serves from (the rotation waits for every
//!    live replica before it stops trusting the old CA);
//! 4. unless `podgate uninstall-webhooks` switched it off, compare both webhook
//!    configurations with the spec file filled with the caBundle, and when one is missing or
//!    drifted, answer a real review over TLS on the own listener first, then apply.
//!
//! Readiness stays down until the first full sync succeeds. Errors are logged with what to
//! fix and retried with backoff; nothing here ends the process. After the first success a
//! lost API server only delays rotation and repairs: the current certificate keeps serving.

use super::secret::{self, Got};
use super::webhooks::{self, Kind};
use super::{Backoff, Settings, explain};
use crate::managed::drift;
use crate::managed::material::{
    self, Material, NEXT_STAGED_AT, PROMOTED_AT, WEBHOOKS_ANNOTATION, WEBHOOKS_UNINSTALLED,
};
use crate::managed::rotation::{self, Names, Observed, Step};
use crate::managed::spec::{self, Target};
use crate::server::metrics::Metrics;
use crate::server::probe::Health;
use crate::server::tls::{self, CertResolver, LoadedCert};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::{Notify, watch};

/// Most rotation steps taken in one sync (each is one write; a full CA rotation is three).
const MAX_STEPS_PER_SYNC: usize = 4;

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// The running controller's state.
pub(crate) struct Controller {
    client: kube::Client,
    settings: Settings,
    secrets: Api<Secret>,
    names: Names,
    version: watch::Sender<String>,
    notify: Arc<Notify>,
    /// The serving certificate PEM in use, and the CA it comes from.
    served: Option<(String, String)>,
    synced_once: bool,
    uninstalled_logged: bool,
}

/// Where the server is, for serving and the self-check.
pub(crate) struct Wiring {
    pub resolver: Arc<CertResolver>,
    pub health: Arc<Health>,
    pub metrics: Metrics,
    pub listen: SocketAddr,
}

type Failure = String;

impl Controller {
    /// Connects and reads (or creates) the Secret until it yields a serving certificate,
    /// retrying with backoff; every failure is logged with what to fix.
    pub(crate) async fn bootstrap(args: &super::ManagedArgs) -> (Controller, LoadedCert) {
        let mut backoff = Backoff::new(args.retry_max);
        let mut controller = loop {
            let attempt = async {
                let client = super::client(args.kubeconfig.as_deref()).await?;
                let settings = super::settings(args, &client)?;
                Ok::<_, anyhow::Error>(Controller::new(client, settings))
            };
            match attempt.await {
                Ok(c) => break c,
                Err(error) => {
                    let delay = backoff.next_delay();
                    tracing::error!(error = %format!("{error:#}"), retry_in = ?delay, "cannot start managing webhooks");
                    tokio::time::sleep(delay).await;
                }
            }
        };
        tracing::info!(
            namespace = %controller.settings.namespace,
            secret = %controller.settings.secret,
            webhook_config = %controller.settings.webhook_config,
            replica = %controller.settings.replica_id,
            "managing certificates and webhook registration"
        );
        backoff.reset();
        loop {
            match controller.serving_pair().await {
                Ok(loaded) => return (controller, loaded),
                Err(failure) => {
                    let delay = backoff.next_delay();
                    tracing::error!(error = %failure, retry_in = ?delay, "no serving certificate yet; not ready");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    fn new(client: kube::Client, settings: Settings) -> Controller {
        let secrets = Api::namespaced(client.clone(), &settings.namespace);
        let names = Names {
            ca_common_name: format!("podgate CA for {}.{}", settings.service, settings.namespace),
            dns_names: crate::certs::service_names(&settings.service, &settings.namespace),
        };
        let (version, _) = watch::channel(String::new());
        Controller {
            client,
            settings,
            secrets,
            names,
            version,
            notify: Arc::new(Notify::new()),
            served: None,
            synced_once: false,
            uninstalled_logged: false,
        }
    }

    fn secret_ref(&self) -> String {
        format!(
            "Secret {}/{}",
            self.settings.namespace, self.settings.secret
        )
    }

    async fn serving_pair(&mut self) -> Result<LoadedCert, Failure> {
        let (_, material) = self.sync_secret().await?;
        let serving = material.serving.as_ref().map_err(|reason| {
            format!(
                "{}: no usable serving certificate: {reason}",
                self.secret_ref()
            )
        })?;
        let loaded = load(&serving.pair)?;
        self.served = Some((
            serving.pair.cert_pem.clone(),
            material.ca.facts.fingerprint.clone(),
        ));
        Ok(loaded)
    }

    /// Keeps certificates and webhooks current until `shutdown` turns true.
    pub async fn run(mut self, wiring: Wiring, mut shutdown: watch::Receiver<bool>) {
        let watcher = tokio::spawn(secret::watch(
            self.secrets.clone(),
            self.settings.secret.clone(),
            self.version.subscribe(),
            self.notify.clone(),
            self.settings.retry_max,
        ));
        let mut backoff = Backoff::new(self.settings.retry_max);
        loop {
            let wait = match self.sync(&wiring).await {
                Ok(()) => {
                    backoff.reset();
                    if !self.synced_once {
                        self.synced_once = true;
                        wiring.health.set_cluster_pending(false);
                        tracing::info!("certificates and webhooks in place; ready");
                    }
                    self.settings.sync_interval
                }
                Err(failure) => {
                    let delay = backoff.next_delay();
                    if self.synced_once {
                        tracing::warn!(error = %failure, retry_in = ?delay, "sync with the cluster failed; still serving the current certificate");
                    } else {
                        tracing::error!(error = %failure, retry_in = ?delay, "sync with the cluster failed; not ready");
                    }
                    delay
                }
            };
            tokio::select! {
                _ = self.notify.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.wait_for(|stop| *stop) => break,
            }
        }
        watcher.abort();
    }

    async fn sync(&mut self, wiring: &Wiring) -> Result<(), Failure> {
        let (secret, material) = self.sync_secret().await?;
        self.serve(&material, wiring)?;
        let secret = self.report(secret, &material).await?;
        let uninstalled = secret::annotations(&secret)
            .get(WEBHOOKS_ANNOTATION)
            .is_some_and(|v| v == WEBHOOKS_UNINSTALLED);
        if uninstalled {
            if !self.uninstalled_logged {
                self.uninstalled_logged = true;
                tracing::info!(
                    secret = %self.secret_ref(),
                    "webhook registration is switched off (annotation {WEBHOOKS_ANNOTATION}={WEBHOOKS_UNINSTALLED}, set by podgate uninstall-webhooks); remove the annotation to register again"
                );
            }
            return Ok(());
        }
        self.uninstalled_logged = false;
        self.reconcile_webhooks(&material, wiring.listen).await
    }

    /// Step 1: the Secret, read or created, checked, and rotated as far as the plan says.
    async fn sync_secret(&mut self) -> Result<(Secret, Material), Failure> {
        let server_name = self.settings.server_name();
        let names = self.names.clone();
        let durations = self.settings.durations;
        let mut steps = 0;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let got = secret::get_or_create(&self.secrets, &self.settings.secret, || {
                rotation::initial(&names, &durations, now()).map(|m| m.to_data())
            })
            .await
            .map_err(|e| explain(&e, &format!("reading or creating {}", self.secret_ref())))?
            .map_err(|e| format!("generating certificates: {e}"))?;
            match &got {
                Got::Created(_) => {
                    tracing::info!(secret = %self.secret_ref(), "created the Secret with a new CA and serving certificate")
                }
                Got::LostRace(_) => {
                    tracing::info!(secret = %self.secret_ref(), "another replica created the Secret first; using its CA")
                }
                Got::Existing(_) => {}
            }
            let secret = match got {
                Got::Existing(s) | Got::Created(s) | Got::LostRace(s) => s,
            };
            if let Some(rv) = &secret.metadata.resource_version {
                self.version.send_replace(rv.clone());
            }
            let material = Material::read(&secret::data(&secret), &server_name, now()).map_err(|e| {
                format!(
                    "{} is not usable: {e}; podgate did not write it like this (another tool's Secret of the same name, or a hand edit): delete it so podgate creates a new CA (the webhooks' caBundle follows), or pass another --secret",
                    self.secret_ref()
                )
            })?;
            let observed = self.observe(&secret, &material).await;
            let step = rotation::plan(&material, &durations, &observed);
            if step == Step::Keep || steps >= MAX_STEPS_PER_SYNC {
                return Ok((secret, material));
            }
            let next = rotation::apply(&material, &step, &names, &durations, observed.now)
                .map_err(|e| format!("certificate step {step:?}: {e}"))?;
            let mut annotations = secret::annotations(&secret);
            let at = observed.now.to_string();
            match step {
                Step::StageNextCa => {
                    annotations.insert(NEXT_STAGED_AT.into(), at);
                }
                Step::PromoteNextCa => {
                    annotations.remove(NEXT_STAGED_AT);
                    annotations.insert(PROMOTED_AT.into(), at);
                }
                Step::ReplaceExpiredCa => {
                    annotations.remove(NEXT_STAGED_AT);
                    annotations.remove(PROMOTED_AT);
                }
                _ => {}
            }
            prune_reports(&mut annotations, observed.now, durations.report_stale_after);
            match secret::replace(&self.secrets, &secret, next.to_data(), annotations).await {
                Ok(_) => {
                    steps += 1;
                    tracing::info!(secret = %self.secret_ref(), ?step, "certificate step written");
                }
                Err(kube::Error::Api(status)) if status.is_conflict() && attempts < 8 => {
                    tracing::debug!("another replica changed the Secret first; reading it again");
                }
                Err(e) => return Err(explain(&e, &format!("writing {}", self.secret_ref()))),
            }
        }
    }

    /// What the rotation plan needs from the cluster besides the Secret.
    async fn observe(&self, secret: &Secret, material: &Material) -> Observed {
        let annotations = secret::annotations(secret);
        let stamp = |key: &str| annotations.get(key).and_then(|v| v.parse::<i64>().ok());
        let webhooks_trust_next =
            match &material.next {
                None => false,
                Some(_)
                    if annotations
                        .get(WEBHOOKS_ANNOTATION)
                        .is_some_and(|v| v == WEBHOOKS_UNINSTALLED) =>
                {
                    true
                }
                Some(next) => {
                    let mut all = true;
                    for kind in Kind::BOTH {
                        let trusted =
                            match webhooks::get(&self.client, kind, &self.settings.webhook_config)
                                .await
                            {
                                Ok(Some(config)) => {
                                    let bundles = spec::ca_bundles(&config);
                                    !bundles.is_empty()
                                        && bundles.iter().all(|b| {
                                            material::bundle_contains(b, &next.pair.cert_pem)
                                        })
                                }
                                _ => false,
                            };
                        all &= trusted;
                    }
                    all
                }
            };
        Observed {
            now: now(),
            webhooks_trust_next,
            next_staged_at: stamp(NEXT_STAGED_AT),
            promoted_at: stamp(PROMOTED_AT),
            reports: material::reports(&annotations),
        }
    }

    /// Step 2: serve the Secret's certificate if it is not the one in use.
    fn serve(&mut self, material: &Material, wiring: &Wiring) -> Result<(), Failure> {
        let serving = material.serving.as_ref().map_err(|reason| {
            format!(
                "{}: no usable serving certificate: {reason}",
                self.secret_ref()
            )
        })?;
        if self
            .served
            .as_ref()
            .is_some_and(|(pem, _)| pem == &serving.pair.cert_pem)
        {
            return Ok(());
        }
        let loaded = load(&serving.pair)?;
        wiring.metrics.cert_expiry.set(loaded.not_after);
        wiring.resolver.swap(loaded.key);
        tracing::info!(
            not_after = %tls::format_ts(loaded.not_after),
            ca = %material.ca.facts.fingerprint,
            "serving the Secret's new certificate"
        );
        self.served = Some((
            serving.pair.cert_pem.clone(),
            material.ca.facts.fingerprint.clone(),
        ));
        Ok(())
    }

    /// Step 3: tell the others which CA this replica serves from (when it changed, or every
    /// report interval).
    async fn report(&mut self, secret: Secret, material: &Material) -> Result<Secret, Failure> {
        let Some((served_pem, _)) = &self.served else {
            return Ok(secret);
        };
        let t = now();
        let ca = material::issuing_ca(material, served_pem, &self.settings.server_name(), t)
            .unwrap_or_else(|| "unknown".into());
        let key = material::report_key(&self.settings.replica_id);
        let mut annotations = secret::annotations(&secret);
        let recorded = material::reports(&BTreeMap::from([(
            key.clone(),
            annotations.get(&key).cloned().unwrap_or_default(),
        )]));
        let due = match recorded.first() {
            Some(r) => {
                r.ca_fingerprint != ca || t - r.at >= duration_secs(self.settings.report_interval)
            }
            None => true,
        };
        if !due {
            return Ok(secret);
        }
        annotations.insert(key, material::report_value(&ca, t));
        prune_reports(
            &mut annotations,
            t,
            self.settings.durations.report_stale_after,
        );
        match secret::replace(&self.secrets, &secret, secret::data(&secret), annotations).await {
            Ok(updated) => {
                if let Some(rv) = &updated.metadata.resource_version {
                    self.version.send_replace(rv.clone());
                }
                Ok(updated)
            }
            Err(kube::Error::Api(status)) if status.is_conflict() => {
                // Someone wrote first; the next sync (right away) reports again.
                self.notify.notify_one();
                Ok(secret)
            }
            Err(e) => Err(explain(&e, &format!("reporting in {}", self.secret_ref()))),
        }
    }

    /// Step 4: registration and drift repair, each write preceded by a real review over TLS.
    async fn reconcile_webhooks(
        &mut self,
        material: &Material,
        listen: SocketAddr,
    ) -> Result<(), Failure> {
        let file = &self.settings.webhooks_file;
        let text = read_spec(file)?;
        let specs = spec::parse(file, &text).map_err(|e| {
            format!("webhook specs: {e}; fix the file (the ConfigMap behind --webhooks)")
        })?;
        let target = Target {
            config_name: self.settings.webhook_config.clone(),
            service: self.settings.service.clone(),
            namespace: self.settings.namespace.clone(),
        };
        let bundle = material.ca_bundle();
        let filled = spec::fill(&specs, &target, &bundle);
        let mut checked = false;
        for (kind, desired) in [
            (Kind::Mutating, &filled.mutating),
            (Kind::Validating, &filled.validating),
        ] {
            let name = &self.settings.webhook_config;
            let what = format!("{} {name}", kind.as_str());
            let actual = webhooks::get(&self.client, kind, name)
                .await
                .map_err(|e| explain(&e, &format!("reading {what}")))?;
            let differences = match &actual {
                None => vec!["(missing)".to_string()],
                Some(actual) => drift::differences(desired, actual),
            };
            if differences.is_empty() {
                continue;
            }
            if !checked {
                for path in ["/validate", "/mutate"] {
                    super::selfcheck::check(listen, &self.settings.server_name(), &bundle, path)
                        .await
                        .map_err(|e| {
                            format!("not registering webhooks yet: this replica does not answer a review over TLS with the caBundle: {e}")
                        })?;
                }
                checked = true;
                for warning in &filled.warnings {
                    tracing::warn!(%warning, "webhook spec");
                }
            }
            webhooks::apply(&self.client, kind, name, desired)
                .await
                .map_err(|e| explain(&e, &format!("applying {what}")))?;
            if actual.is_none() {
                tracing::info!(config = %what, "registered the webhook configuration");
            } else {
                tracing::info!(config = %what, drifted = ?differences, "repaired the webhook configuration");
            }
        }
        Ok(())
    }
}

fn duration_secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

fn read_spec(file: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(file).map_err(|e| {
        format!(
            "reading the webhook specs {}: {e}; mount the ConfigMap with the specs there or fix --webhooks",
            file.display()
        )
    })
}

fn load(pair: &crate::certs::PemPair) -> Result<LoadedCert, Failure> {
    tls::pair_from_pem(
        pair.cert_pem.as_bytes(),
        pair.key_pem.as_bytes(),
        Path::new("tls.crt (Secret)"),
        Path::new("tls.key (Secret)"),
        &tls::provider(),
        now(),
    )
    .map_err(|e| format!("serving certificate from the Secret: {e}"))
}

/// Drops reports older than `stale_after`: their replicas are gone.
fn prune_reports(annotations: &mut BTreeMap<String, String>, now: i64, stale_after: i64) {
    let stale: Vec<String> = material::reports(annotations)
        .into_iter()
        .filter(|r| now - r.at > stale_after)
        .map(|r| format!("{}{}", material::REPORT_PREFIX, r.replica))
        .collect();
    for key in stale {
        annotations.remove(&key);
    }
}
