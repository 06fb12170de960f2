//! The plain-HTTP probe port: `/healthz` (the process answers), `/readyz` (certs and
//! policies loaded, not shutting down) and `/metrics` (OpenMetrics text).
//!
//! Liveness must not depend on policies or certs: a bad ConfigMap must never get pods killed.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Readiness flags, flipped by startup and shutdown.
#[derive(Debug, Default)]
pub struct Health {
    loaded: AtomicBool,
    shutting_down: AtomicBool,
    /// `--manage-webhooks`: the first sync with the cluster (certificate Secret, webhook
    /// registration or drift check) has not succeeded yet.
    cluster_pending: AtomicBool,
}

impl Health {
    pub fn set_loaded(&self) {
        self.loaded.store(true, Ordering::SeqCst);
    }
    pub fn set_shutting_down(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }
    pub fn set_cluster_pending(&self, pending: bool) {
        self.cluster_pending.store(pending, Ordering::SeqCst);
    }
    pub fn ready(&self) -> bool {
        self.loaded.load(Ordering::SeqCst)
            && !self.shutting_down.load(Ordering::SeqCst)
            && !self.cluster_pending.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
pub struct ProbeState {
    pub health: Arc<Health>,
    pub registry: Arc<Registry>,
}

pub fn router(state: ProbeState) -> Router {
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
