//! The certificate Secret: get or create (create wins once; on 409 everyone reads the
//! winner's), replace with optimistic concurrency, and a watch by name that only pokes the
//! controller (which then reads the Secret again).
//!
//! Verbs used: get, create, update, watch (by `metadata.name` field selector, so RBAC can
//! restrict it with resourceNames). No list, no patch.

use super::FIELD_MANAGER;
use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams, WatchEvent, WatchParams};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Label on the Secret podgate creates.
pub(crate) const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "podgate");

/// The Secret's data as plain bytes.
pub fn data(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    secret
        .data
        .as_ref()
        .map(|d| d.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect())
        .unwrap_or_default()
}

/// The Secret's annotations.
pub fn annotations(secret: &Secret) -> BTreeMap<String, String> {
    secret.metadata.annotations.clone().unwrap_or_default()
}

fn to_byte_strings(data: BTreeMap<String, Vec<u8>>) -> BTreeMap<String, ByteString> {
    data.into_iter().map(|(k, v)| (k, ByteString(v))).collect()
}

/// What happened in [`get_or_create`].
#[derive(Debug)]
pub enum Got {
    /// The Secret was there.
    Existing(Secret),
    /// This process created it.
    Created(Secret),
    /// Another replica created it first (409); this is its Secret.
    LostRace(Secret),
}

impl Got {
    pub fn secret(&self) -> &Secret {
        match self {
            Got::Existing(s) | Got::Created(s) | Got::LostRace(s) => s,
        }
    }
}

/// Reads the Secret, or creates it with `make()`'s data when it does not exist. A 409 on
/// create means another replica won: its Secret is read and used.
pub async fn get_or_create<E>(
    api: &Api<Secret>,
    name: &str,
    make: impl FnOnce() -> Result<BTreeMap<String, Vec<u8>>, E>,
) -> Result<Result<Got, E>, kube::Error> {
    if let Some(secret) = api.get_opt(name).await? {
        return Ok(Ok(Got::Existing(secret)));
    }
    let data = match make() {
        Ok(data) => data,
        Err(e) => return Ok(Err(e)),
    };
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(BTreeMap::from([(
                MANAGED_BY.0.to_string(),
                MANAGED_BY.1.to_string(),
            )])),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some(to_byte_strings(data)),
        ..Default::default()
    };
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    match api.create(&params, &secret).await {
        Ok(created) => Ok(Ok(Got::Created(created))),
        Err(kube::Error::Api(status)) if status.is_already_exists() => {
            Ok(Ok(Got::LostRace(api.get(name).await?)))
        }
        Err(e) => Err(e),
    }
}

/// Replaces the Secret's data and annotations, keeping its resourceVersion so that a write
/// based on a stale read fails with 409 instead of undoing another replica's.
pub async fn replace(
    api: &Api<Secret>,
    current: &Secret,
    data: BTreeMap<String, Vec<u8>>,
    annotations: BTreeMap<String, String>,
) -> Result<Secret, kube::Error> {
    let mut next = current.clone();
    next.data = Some(to_byte_strings(data));
    next.metadata.annotations = if annotations.is_empty() {
        None
    } else {
        Some(annotations)
    };
    next.metadata.managed_fields = None;
    let name = current.metadata.name.clone().unwrap_or_default();
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    api.replace(&name, &params, &next).await
}

/// Watches the Secret by name and pokes `notify` on every event, from `resource_version`
/// (the latest the controller read, shared through `version`). Restarts after errors and
/// timeouts; a 410 Gone restarts from the latest version the controller knows. Never ends.
pub async fn watch(
    api: Api<Secret>,
    name: String,
    version: tokio::sync::watch::Receiver<String>,
    notify: Arc<Notify>,
    retry_max: Duration,
) {
    let mut backoff = super::Backoff::new(retry_max);
    let params = WatchParams::default()
        .fields(&format!("metadata.name={name}"))
        .timeout(290);
    loop {
        let from = version.borrow().clone();
        let stream = match api.watch(&params, &from).await {
            Ok(stream) => stream,
            Err(error) => {
                tracing::debug!(%error, "watching the Secret failed; the periodic sync covers it");
                tokio::time::sleep(backoff.next_delay()).await;
                continue;
            }
        };
        let mut stream = std::pin::pin!(stream);
        let mut healthy = false;
        while let Some(event) = stream.next().await {
            match event {
                Ok(WatchEvent::Added(_) | WatchEvent::Modified(_) | WatchEvent::Deleted(_)) => {
                    healthy = true;
                    backoff.reset();
                    notify.notify_one();
                }
                Ok(WatchEvent::Bookmark(_)) => healthy = true,
                Ok(WatchEvent::Error(status)) => {
                    // 410 Gone: our version is too old; the controller's next read moves it.
                    tracing::debug!(code = status.code, message = %status.message, "Secret watch ended");
                    notify.notify_one();
                    break;
                }
                Err(error) => {
                    tracing::debug!(%error, "Secret watch stream failed");
                    break;
                }
            }
        }
        if !healthy {
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }
}
