//! The two webhook configurations: read (as JSON, for the drift comparison), write by
//! server-side apply with field manager `podgate` (forced: podgate owns the fields it sets),
//! delete.
//!
//! Verbs used: get, patch (apply; creating through apply is authorized as `create` of that
//! name, so RBAC can hold both to resourceNames), delete.

use super::FIELD_MANAGER;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::Value;

/// Which configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Mutating,
    Validating,
}

impl Kind {
    pub(crate) const BOTH: [Kind; 2] = [Kind::Mutating, Kind::Validating];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Mutating => "MutatingWebhookConfiguration",
            Kind::Validating => "ValidatingWebhookConfiguration",
        }
    }
}

fn json<T: serde::Serialize>(value: T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// The configuration as JSON, or `None` when it does not exist.
pub async fn get(
    client: &kube::Client,
    kind: Kind,
    name: &str,
) -> Result<Option<Value>, kube::Error> {
    Ok(match kind {
        Kind::Mutating => Api::<MutatingWebhookConfiguration>::all(client.clone())
            .get_opt(name)
            .await?
            .map(json),
        Kind::Validating => Api::<ValidatingWebhookConfiguration>::all(client.clone())
            .get_opt(name)
            .await?
            .map(json),
    })
}

/// Server-side apply of `body` (a full configuration as JSON), forced.
pub async fn apply(
    client: &kube::Client,
    kind: Kind,
    name: &str,
    body: &Value,
) -> Result<(), kube::Error> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    match kind {
        Kind::Mutating => {
            Api::<MutatingWebhookConfiguration>::all(client.clone())
                .patch(name, &params, &Patch::Apply(body))
                .await?;
        }
        Kind::Validating => {
            Api::<ValidatingWebhookConfiguration>::all(client.clone())
                .patch(name, &params, &Patch::Apply(body))
                .await?;
        }
    }
    Ok(())
}

/// Deletes the configuration; `false` when it was not there.
pub async fn delete(client: &kube::Client, kind: Kind, name: &str) -> Result<bool, kube::Error> {
    let params = DeleteParams::default();
    let result = match kind {
        Kind::Mutating => Api::<MutatingWebhookConfiguration>::all(client.clone())
            .delete(name, &params)
            .await
            .map(|_| ()),
        Kind::Validating => Api::<ValidatingWebhookConfiguration>::all(client.clone())
            .delete(name, &params)
            .await
            .map(|_| ()),
    };
    match result {
        Ok(()) => Ok(true),
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(false),
        Err(e) => Err(e),
    }
}
