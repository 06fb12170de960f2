//! The apiserver's side of the webhook contract, as test support: `verify_response` judges an
//! answer the way kube-apiserver does. It lives with the tests (and is included by the fuzz
//! targets by path), not in the production API.
//!
//! Include it with `#[path = "common/contract.rs"] mod contract;` or through `common`.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use podgate::admission::Webhook;
use serde_json::Value;

const V1: &str = "admission.k8s.io/v1";
/// kube-apiserver truncates warnings longer than this.
const MAX_WARNING_CHARS: usize = 256;

/// Checks an answer the way kube-apiserver judges it (`VerifyAdmissionResponse` and the
/// dispatchers, see docs/apiserver-contract.md section 4), plus that a patch applies to the request's object
/// under evanphx/json-patch v4 rules. Returns the patched object when there is a patch.
/// Used by the tests of every layer and the fuzz targets.
pub fn verify_response(
    request_body: &[u8],
    response_body: &[u8],
    webhook: Webhook,
) -> Result<Option<serde_json::Value>, String> {
    let request: Value =
        serde_json::from_slice(request_body).map_err(|e| format!("request: {e}"))?;
    let response: Value =
        serde_json::from_slice(response_body).map_err(|e| format!("response: {e}"))?;
    let want_version = request
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or(V1);
    if response.get("apiVersion").and_then(Value::as_str) != Some(want_version) {
        return Err(format!("apiVersion must echo {want_version}"));
    }
    if response.get("kind").and_then(Value::as_str) != Some("AdmissionReview") {
        return Err("kind must be AdmissionReview".into());
    }
    let r = response
        .get("response")
        .ok_or("webhook response was absent")?;
    let uid = request.pointer("/request/uid").and_then(Value::as_str);
    if r.get("uid").and_then(Value::as_str) != uid {
        return Err(format!("response.uid must equal request.uid {uid:?}"));
    }
    let allowed = r
        .get("allowed")
        .and_then(Value::as_bool)
        .ok_or("allowed must be a boolean")?;
    if !allowed {
        let code = r
            .pointer("/status/code")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if code < 400 {
            return Err(format!("a denial needs status.code >= 400, got {code}"));
        }
        let message = r
            .pointer("/status/message")
            .and_then(Value::as_str)
            .unwrap_or("");
        if message.is_empty() {
            return Err("a denial needs a message".into());
        }
    }
    for w in r
        .get("warnings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let w = w.as_str().ok_or("warnings must be strings")?;
        if w.chars().any(char::is_control) || w.chars().count() > MAX_WARNING_CHARS {
            return Err(format!("warning would be dropped or truncated: {w:?}"));
        }
    }
    for key in r
        .get("auditAnnotations")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|m| m.keys())
    {
        let valid = !key.is_empty()
            && key.len() <= 63
            && !key.contains('/')
            && key.starts_with(|c: char| c.is_ascii_alphanumeric())
            && key.ends_with(|c: char| c.is_ascii_alphanumeric())
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            return Err(format!("audit annotation key {key:?} would be dropped"));
        }
    }
    let patch = r.get("patch");
    let patch_type = r.get("patchType");
    if webhook == Webhook::Validate {
        if patch.is_some() || patch_type.is_some() {
            return Err("a validating webhook must not send patch or patchType".into());
        }
        return Ok(None);
    }
    match (patch, patch_type) {
        (None, None) => Ok(None),
        (Some(p), Some(t)) => {
            if t.as_str() != Some("JSONPatch") {
                return Err(format!("patchType must be JSONPatch, got {t}"));
            }
            let encoded = p.as_str().ok_or("patch must be a base64 string")?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| format!("patch is not standard base64: {e}"))?;
            let ops: json_patch::Patch = serde_json::from_slice(&bytes)
                .map_err(|e| format!("patch is not JSON Patch: {e}"))?;
            let mut object = request
                .pointer("/request/object")
                .cloned()
                .ok_or("a patch needs a request object")?;
            json_patch::patch(&mut object, &ops)
                .map_err(|e| format!("patch does not apply: {e}"))?;
            Ok(Some(object))
        }
        _ => Err("patch and patchType must come together".into()),
    }
}
