//! `podgate serve`: the HTTPS admission server and its plain-HTTP probe port.
//!
//! Layout: `app` (review routes), `listener` (TLS accept loop, per-connection limits,
//! drain), `tls` (rustls config, swappable certificate), `reload` (watch + poll of policies
//! and certificates), `metrics`, `probe`, `devcert` (the fresh-checkout default).
//! This module wires them: load everything, serve, and on SIGTERM/SIGINT go unready, stop
//! accepting, drain within the grace period and return.
//!
//! A broken policy set at startup (applied while podgate was down) is not fatal: every error is
//! logged, the process serves not-Ready (the Service sends it no traffic; a review that reaches
//! it anyway gets 503, so the webhook's failurePolicy decides), keeps watching and becomes
//! Ready as soon as a valid set appears. Exiting would crash-loop every replica that restarts
//! while the registered webhook stays in place. Only what no retry can fix ends the process.

pub mod app;
pub(crate) mod devcert;
pub(crate) mod duration;
pub mod listener;
pub mod metrics;
pub mod probe;
pub mod reload;
pub mod tls;

use crate::policy::PolicySet;
use anyhow::Context;
use arc_swap::ArcSwap;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub use tls::TlsMinVersion;

/// Default serving certificate; when it and the key are both absent a development pair is made.
pub(crate) const DEFAULT_TLS_CERT: &str = "certs/tls.crt";
/// Default serving key.
pub(crate) const DEFAULT_TLS_KEY: &str = "certs/tls.key";

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    duration::parse(text).map_err(|e| e.to_string())
}

/// Flags of `podgate serve`; each also reads a `PODGATE_*` environment variable.
#[derive(Clone, Debug, clap::Args)]
pub struct ServeArgs {
    /// Address of the HTTPS admission endpoint (`POST /validate`, `POST /mutate`).
    #[arg(long, env = "PODGATE_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// Serving certificate chain, PEM [default: certs/tls.crt; when both default files are
    /// missing a development CA and a localhost certificate are created in certs/].
    #[arg(long, env = "PODGATE_TLS_CERT", value_name = "PATH")]
    pub tls_cert: Option<PathBuf>,
    /// Private key of the serving certificate, PEM [default: certs/tls.key].
    #[arg(long, env = "PODGATE_TLS_KEY", value_name = "PATH")]
    pub tls_key: Option<PathBuf>,
    /// Folder of policy files, watched and reloaded on change.
    #[arg(
        long,
        env = "PODGATE_POLICIES",
        default_value = "./policies",
        value_name = "DIR"
    )]
    pub policies: PathBuf,
    /// CA bundle (PEM) for mutual TLS: when set, clients must present a certificate it signed.
    #[arg(long, env = "PODGATE_CLIENT_CA", value_name = "PATH")]
    pub client_ca: Option<PathBuf>,
    /// Address of the plain-HTTP probe port (`/healthz`, `/readyz`, `/metrics`).
    #[arg(long, env = "PODGATE_PROBE_LISTEN", default_value = "0.0.0.0:9090")]
    pub probe_listen: SocketAddr,
    /// Largest accepted request body (bytes, or with KiB/MiB suffix); larger ones get 413.
    #[arg(long, env = "PODGATE_MAX_BODY", default_value = "7MiB", value_parser = duration::parse_size)]
    pub max_body: usize,
    /// How long in-flight requests may take to finish after SIGTERM/SIGINT.
    #[arg(long, env = "PODGATE_SHUTDOWN_GRACE", default_value = "20s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// Log format.
    #[arg(long, env = "PODGATE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    /// Lowest TLS version accepted.
    #[arg(
        long,
        env = "PODGATE_TLS_MIN_VERSION",
        value_enum,
        default_value = "1.2"
    )]
    pub tls_min_version: TlsMinVersion,
    /// Period of the content check behind the file watch (policies, certificates).
    #[arg(long, env = "PODGATE_RELOAD_INTERVAL", default_value = "10s", value_parser = parse_duration, hide = true)]
    pub reload_interval: Duration,
    /// TLS handshake timeout.
    #[arg(long, env = "PODGATE_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = parse_duration, hide = true)]
    pub handshake_timeout: Duration,
    /// Time a client has to send a complete request head, from its first byte (or from the
    /// handshake, for the first request).
    #[arg(long, env = "PODGATE_HEADER_READ_TIMEOUT", default_value = "30s", value_parser = parse_duration, hide = true)]
    pub header_read_timeout: Duration,
    /// A connection with no request for this long is closed.
    #[arg(long, env = "PODGATE_IDLE_TIMEOUT", default_value = "90s", value_parser = parse_duration, hide = true)]
    pub idle_timeout: Duration,
    /// Longest time one review may be evaluated (or wait for an evaluation slot), below the
    /// apiserver's `?timeout=` minus a margin; past it each matching policy's action decides.
    #[arg(long, env = "PODGATE_MAX_EVALUATION_TIME", default_value = "30s", value_parser = parse_duration)]
    pub max_evaluation_time: Duration,
    /// How many reviews are evaluated at once (default: the CPUs this process may use, which
    /// follows a cgroup CPU limit). Reviews beyond it wait for a slot, at most until their
    /// deadline.
    #[arg(long, env = "PODGATE_EVALUATION_SLOTS")]
    pub evaluation_slots: Option<std::num::NonZeroUsize>,
    /// Reviews up to this size (bytes, or with KiB/MiB suffix) are first evaluated on the
    /// server's own threads with a small fixed work budget, saving the hand-off to the
    /// evaluation pool; one that needs more work goes to the pool. 0: always the pool.
    #[arg(long, env = "PODGATE_INLINE_MAX_BODY", default_value = "64KiB", value_parser = duration::parse_size_or_zero)]
    pub inline_max_body: usize,
    /// Self-managed certificates and webhook registration (`--manage-webhooks` and friends).
    #[command(flatten)]
    pub managed: crate::cluster::ManagedArgs,
    /// The background audit (`--audit-interval` and friends).
    #[command(flatten)]
    pub audit: crate::audit::background::BackgroundArgs,
}

/// Blocking-pool threads beyond the evaluation slots, for tokio's own blocking work.
const BLOCKING_SPARE: usize = 4;

/// Most concurrent h2 streams per connection (rapid-reset hardening, CVE-2023-44487).
const MAX_H2_STREAMS: u32 = 100;

/// Installs a tracing subscriber (JSON or text, `RUST_LOG` filter, default `info`); does
/// nothing if one is installed already.
pub(crate) fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Runs `podgate serve` to completion: builds the runtime, installs signal handlers first,
/// serves until SIGTERM/SIGINT and returns `Ok` after the drain.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    init_logging(args.log_format);
    if args.log_format == LogFormat::Json {
        // A caught panic in a review should still be one JSON line with its location, not
        // raw text in the middle of the log stream.
        std::panic::set_hook(Box::new(|info| {
            let backtrace = std::backtrace::Backtrace::capture();
            tracing::error!(panic = %info, backtrace = %backtrace, "panic");
        }));
    }
    // Reviews are evaluated on the blocking pool, at most one per evaluation slot; a few
    // threads more serve tokio's own blocking work (files, name resolution for the Kubernetes
    // client). Capping the pool bounds what each of its threads keeps (the shell analysis's
    // memo) by construction; tokio's default allows 512 threads.
    let slots = args
        .evaluation_slots
        .map_or_else(app::default_slots, std::num::NonZero::get);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(slots + BLOCKING_SPARE)
        .build()
        .context("building the tokio runtime")?;
    let result = runtime.block_on(async {
        // PID 1 in a container ignores SIGTERM unless a handler is installed: do it first.
        let stop = signals()?;
        serve(args, stop).await
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// Registers SIGTERM and SIGINT now and returns a future that resolves on either.
fn signals() -> anyhow::Result<impl std::future::Future<Output = &'static str>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    })
}

/// Serves until `stop` resolves, then drains. Split from `run` so tests can drive it.
pub async fn serve(
    args: ServeArgs,
    stop: impl std::future::Future<Output = &'static str>,
) -> anyhow::Result<()> {
    let ServeArgs {
        listen,
        tls_cert,
        tls_key,
        policies,
        client_ca,
        probe_listen,
        max_body,
        shutdown_grace,
        log_format: _, // used by `run` before the runtime exists
        tls_min_version,
        reload_interval,
        handshake_timeout,
        header_read_timeout,
        idle_timeout,
        max_evaluation_time,
        evaluation_slots,
        inline_max_body,
        managed,
        audit,
    } = args;
    let mut stop = std::pin::pin!(stop);

    let mut registry = Registry::default();
    let metrics = metrics::Metrics::register(&mut registry);
    let audit_metrics = crate::audit::background::AuditMetrics::register(&mut registry);
    let health = Arc::new(probe::Health::new(metrics.ready.clone()));

    // The probe port comes up first: /healthz answers while we load, /readyz says 503.
    let probe_listener = tokio::net::TcpListener::bind(probe_listen)
        .await
        .with_context(|| format!("binding the probe port {probe_listen}"))?;
    let (probe_stop_tx, probe_stop_rx) = watch::channel(false);
    let probe_app = probe::router(probe::ProbeState {
        health: health.clone(),
        registry: Arc::new(registry),
    });
    let probe_task = tokio::spawn(async move {
        let mut rx = probe_stop_rx;
        axum::serve(probe_listener, probe_app)
            .with_graceful_shutdown(async move {
                let _ = rx.wait_for(|stop| *stop).await;
            })
            .await
    });

    let provider = tls::provider();
    let manage = managed.manage_webhooks;
    let (cert_path, key_path, loaded, controller) = if manage {
        // Not ready until the first sync with the cluster succeeded (certificates, then
        // registration or drift check); see crate::cluster::controller.
        health.set_cluster_pending(true);
        let (controller, loaded) = tokio::select! {
            boot = crate::cluster::controller::Controller::bootstrap(&managed) => boot,
            signal = &mut stop => {
                tracing::info!(signal, "stopped before a certificate was available");
                let _ = probe_stop_tx.send(true);
                let _ = probe_task.await;
                return Ok(());
            }
        };
        let secret = PathBuf::from(format!("secret/{}", managed.secret));
        (secret.clone(), secret, Some(loaded), Some(controller))
    } else {
        let (cert_path, key_path) = devcert::resolve(tls_cert, tls_key)?;
        // An invalid pair (garbage, expired, key and certificate apart) leaves the process up
        // and not Ready, refusing handshakes, until a valid pair appears in the watched files
        // (a Secret being renewed, cert-manager not done yet), as for a broken policy set.
        let loaded = match tls::load_pair(
            &cert_path,
            &key_path,
            &provider,
            jiff::Timestamp::now().as_second(),
        ) {
            Ok(loaded) => Some(loaded),
            // A path that does not exist is a wrong flag, not a certificate to wait for.
            Err(error @ tls::TlsError::Read { .. }) => {
                return Err(anyhow::Error::new(error).context("loading the serving certificate"));
            }
            Err(error) => {
                tracing::error!(
                    %error,
                    cert = %cert_path.display(),
                    key = %key_path.display(),
                    "no valid serving certificate: not Ready and refusing TLS handshakes; watching the files until a valid pair appears"
                );
                None
            }
        };
        (cert_path, key_path, loaded, None)
    };
    let resolver = Arc::new(match loaded {
        Some(loaded) => {
            metrics.cert_expiry.set(loaded.not_after);
            health.set_certificate(true);
            tls::CertResolver::new(loaded.key)
        }
        None => tls::CertResolver::empty(),
    });
    let client_roots = client_ca
        .as_deref()
        .map(tls::load_client_roots)
        .transpose()
        .context("loading the client CA")?;
    let mtls = client_roots.is_some();
    let tls_config = Arc::new(ArcSwap::from_pointee(tls::server_config(
        provider,
        tls_min_version,
        resolver.clone(),
        client_roots,
    )?));

    let set = match PolicySet::load_dir(&policies) {
        Ok(set) => {
            tracing::info!(dir = %policies.display(), policies = set.len(), hash = set.hash(), "policy set loaded");
            for warning in set.warnings() {
                tracing::warn!(hash = set.hash(), warning = %warning, "policy warning");
            }
            metrics
                .policies_loaded
                .set(i64::try_from(set.len()).unwrap_or(i64::MAX));
            metrics.policy_last_reload_successful.set(1);
            health.set_policies(true);
            set
        }
        Err(errors) => {
            reload::log_policy_errors(&policies, &errors);
            tracing::error!(
                dir = %policies.display(),
                errors = errors.0.len(),
                "no valid policy set: serving not Ready, watching the folder until a valid set appears"
            );
            metrics.policy_last_reload_successful.set(0);
            PolicySet::empty()
        }
    };
    let policy_set = Arc::new(ArcSwap::from_pointee(set));

    let _reloader = reload::Reloader {
        policies_dir: policies.clone(),
        policies: policy_set.clone(),
        cert: cert_path.clone(),
        key: key_path.clone(),
        watch_cert: !manage,
        resolver: resolver.clone(),
        client_ca,
        tls_config: tls_config.clone(),
        min_version: tls_min_version,
        metrics: metrics.clone(),
        interval: reload_interval,
        health: health.clone(),
    }
    .spawn()
    .context("starting the reload thread")?;

    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let bound = listener.local_addr().unwrap_or(listen);
    let mut state = app::AppState::new(policy_set.clone(), metrics.clone(), max_body);
    state.health = health.clone();
    state.max_evaluation = max_evaluation_time.min(app::MAX_DEADLINE);
    if let Some(slots) = evaluation_slots {
        state.pool = Arc::new(tokio::sync::Semaphore::new(slots.get()));
    }
    state.inline_max_body = inline_max_body;
    tracing::info!(
        evaluation_slots = state.pool.available_permits(),
        inline_max_body,
        max_evaluation_ms = u64::try_from(state.max_evaluation.as_millis()).unwrap_or(u64::MAX),
        "evaluation pool"
    );
    let app = app::router(state);
    let limits = listener::ConnLimits {
        handshake: handshake_timeout,
        header_read: header_read_timeout,
        idle: idle_timeout,
        max_h2_streams: MAX_H2_STREAMS,
    };
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let managing = controller.map(|controller| {
        let wiring = crate::cluster::controller::Wiring {
            resolver,
            health: health.clone(),
            metrics: metrics.clone(),
            listen: bound,
        };
        tokio::spawn(controller.run(wiring, shutdown_rx.clone()))
    });
    let auditing = match audit.audit_interval {
        Some(interval) => {
            let background = crate::audit::background::Background::from_args(
                &audit,
                interval,
                policy_set.clone(),
                audit_metrics,
            )
            .await
            .context("starting the background audit")?;
            tracing::info!(interval = ?interval, lease = crate::audit::background::LEASE_NAME, "background audit on");
            Some(tokio::spawn(background.run(shutdown_rx.clone())))
        }
        None => None,
    };
    let server = tokio::spawn(listener::serve(
        listener,
        tls_config,
        app,
        limits,
        metrics,
        shutdown_rx,
        shutdown_grace,
    ));
    health.set_loaded();
    tracing::info!(%listen, %probe_listen, cert = %cert_path.display(), mtls, ready = health.ready(), "serving");

    let signal = stop.await;
    if let Some(task) = &managing {
        // Registration and repairs stop with the process; the webhooks stay registered.
        task.abort();
    }
    if let Some(task) = &auditing {
        // A run in progress stops; the Lease expires and another replica takes over.
        task.abort();
    }
    health.set_shutting_down();
    tracing::info!(signal, grace = ?shutdown_grace, "shutting down: not ready, no new connections");
    let _ = shutdown_tx.send(true);
    match server.await {
        Ok(0) => tracing::info!("all connections drained"),
        Ok(open) => tracing::warn!(open, "grace period over; closing remaining connections"),
        Err(error) => tracing::error!(%error, "server task failed"),
    }
    let _ = probe_stop_tx.send(true);
    if let Ok(Err(error)) = probe_task.await {
        tracing::warn!(%error, "probe server ended with an error");
    }
    tracing::info!("stopped");
    Ok(())
}
