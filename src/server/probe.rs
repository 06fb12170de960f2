//! The plain-HTTP probe port: `/healthz` (the process answers), `/readyz` (certs and
//! policies loaded, not shutting down) and `/metrics` (OpenMetrics text).
//!
//! Liveness must not depend on policies or certs: a bad ConfigMap must never get pods killed.
//! Readiness does: a replica without a valid policy set stays up, not Ready (no traffic from
//! the Service), keeps watching, and becomes Ready when a valid set appears.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Readiness flags, flipped by startup, policy (re)loads and shutdown; mirrored in the
/// `podgate_ready` gauge.
#[derive(Debug, Default)]
pub(crate) struct Health {
    loaded: AtomicBool,
    /// A valid serving certificate is loaded (a replica started with an invalid pair waits,
    /// not Ready, for a valid one).
    certificate: AtomicBool,
    policies: AtomicBool,
    shutting_down: AtomicBool,
    /// `--manage-webhooks`: the first sync with the cluster (certificate Secret, webhook
    /// registration or drift check) has not succeeded yet.
    cluster_pending: AtomicBool,
    gauge: Gauge,
}

impl Health {
    /// Not ready until `set_loaded`, `set_certificate(true)` and `set_policies(true)`; `gauge` follows `ready()`.
    pub fn new(gauge: Gauge) -> Health {
        Health {
            gauge,
            ..Health::default()
        }
    }
    /// A Health that is ready from the start (in-memory apps in tests and benches).
    pub(crate) fn ready_now() -> Health {
        let health = Health::default();
        health.set_loaded();
        health.set_certificate(true);
        health.set_policies(true);
        health
    }
    /// The server is up: certificate loaded, listener bound.
    pub(crate) fn set_loaded(&self) {
        self.loaded.store(true, Ordering::SeqCst);
        self.publish();
    }
    /// Whether a valid serving certificate is loaded.
    pub fn set_certificate(&self, valid: bool) {
        self.certificate.store(valid, Ordering::SeqCst);
        self.publish();
    }
    /// Whether a valid policy set is serving.
    pub(crate) fn set_policies(&self, valid: bool) {
        self.policies.store(valid, Ordering::SeqCst);
        self.publish();
    }
    pub(crate) fn set_shutting_down(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.publish();
    }
    /// True once a valid policy set has been loaded (it then stays serving, even when a later
    /// version is refused).
    pub fn policies(&self) -> bool {
        self.policies.load(Ordering::SeqCst)
    }
    pub(crate) fn set_cluster_pending(&self, pending: bool) {
        self.cluster_pending.store(pending, Ordering::SeqCst);
        self.publish();
    }
    pub fn ready(&self) -> bool {
        self.loaded.load(Ordering::SeqCst)
            && self.certificate.load(Ordering::SeqCst)
            && self.policies()
            && !self.shutting_down.load(Ordering::SeqCst)
            && !self.cluster_pending.load(Ordering::SeqCst)
    }
    fn publish(&self) {
        self.gauge.set(i64::from(self.ready()));
    }
}

#[derive(Clone)]
pub(crate) struct ProbeState {
    pub health: Arc<Health>,
    pub registry: Arc<Registry>,
}

pub(crate) fn router(state: ProbeState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn readyz(State(state): State<ProbeState>) -> Response {
    if state.health.ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

async fn metrics(State(state): State<ProbeState>) -> Response {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &state.registry) {
        Ok(()) => {
            let mut response = (StatusCode::OK, text).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            response
        }
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}
