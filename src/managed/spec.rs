//! The webhook configurations podgate writes: read from the reviewable YAML file given by
//! `--webhooks` (one MutatingWebhookConfiguration and one ValidatingWebhookConfiguration, the
//! same rules, exclusions, matchConditions, timeouts and failure policies as `deploy/`), then
//! filled in with what only the running install knows: the configurations' name, the
//! Service reference and the caBundle. The file is rendered for one namespace (the one its
//! `clientConfig.service.namespace` names, `podgate-system` in deploy/); podgate moves every
//! `kubernetes.io/metadata.name` selector value naming that namespace to its own, as
//! deploy/transformers does for kustomize overlays, so its own namespace stays excluded.
//!
//! Pure: the caller reads the file and passes its text.

use crate::manifests;
use base64::Engine;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ServiceReference, ValidatingWebhookConfiguration,
    WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use std::path::Path;

/// Why the webhook spec file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {reason}")]
pub(crate) struct SpecError {
    pub file: String,
    pub reason: String,
}

/// The two configurations as the file describes them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WebhookSpecs {
    pub mutating: MutatingWebhookConfiguration,
    pub validating: ValidatingWebhookConfiguration,
}

/// Where the webhooks point and what they are called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Name of both configurations (`--webhook-config`).
    pub config_name: String,
    /// The Service in front of podgate (`--service`).
    pub service: String,
    /// Its namespace (`--namespace`).
    pub namespace: String,
}

/// The apply bodies (JSON) for both configurations, and warnings for the log.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Filled {
    pub mutating: serde_json::Value,
    pub validating: serde_json::Value,
    pub warnings: Vec<String>,
}

/// Reads the spec file's text: exactly one configuration of each kind, each with at least
/// one webhook, every webhook with a service `path` and no `url`.
pub fn parse(file: &Path, text: &str) -> Result<WebhookSpecs, SpecError> {
    let err = |reason: String| SpecError {
        file: file.display().to_string(),
        reason,
    };
    let documents = manifests::parse_text(file, text).map_err(|e| SpecError {
        file: file.display().to_string(),
        reason: e.to_string(),
    })?;
    let mut mutating = None;
    let mut validating = None;
    for doc in documents {
        let kind = doc
            .object
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or("");
        let at = format!("document {} (line {})", doc.index, doc.line);
        match kind {
            "MutatingWebhookConfiguration" if mutating.is_none() => {
                let config: MutatingWebhookConfiguration =
                    serde_json::from_value(doc.object).map_err(|e| err(format!("{at}: {e}")))?;
                let hooks = config.webhooks.as_deref().unwrap_or_default();
                check_hooks(hooks.iter().map(|h| (&h.name, &h.client_config)), &at).map_err(err)?;
                mutating = Some(config);
            }
            "ValidatingWebhookConfiguration" if validating.is_none() => {
                let config: ValidatingWebhookConfiguration =
                    serde_json::from_value(doc.object).map_err(|e| err(format!("{at}: {e}")))?;
                let hooks = config.webhooks.as_deref().unwrap_or_default();
                check_hooks(hooks.iter().map(|h| (&h.name, &h.client_config)), &at).map_err(err)?;
                validating = Some(config);
            }
            "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration" => {
                return Err(err(format!("{at}: a second {kind}; expected one of each")));
            }
            other => {
                return Err(err(format!(
                    "{at}: kind {other:?}; expected only a MutatingWebhookConfiguration and a ValidatingWebhookConfiguration"
                )));
            }
        }
    }
    match (mutating, validating) {
        (Some(mutating), Some(validating)) => Ok(WebhookSpecs {
            mutating,
            validating,
        }),
        (None, _) => Err(err("no MutatingWebhookConfiguration".into())),
        (_, None) => Err(err("no ValidatingWebhookConfiguration".into())),
    }
}

fn check_hooks<'a>(
    hooks: impl Iterator<Item = (&'a String, &'a WebhookClientConfig)>,
    at: &str,
) -> Result<(), String> {
    let mut count = 0;
    for (name, client) in hooks {
        count += 1;
        if client.url.is_some() {
            return Err(format!(
                "{at}: webhook {name} has clientConfig.url; podgate points every webhook at its Service"
            ));
        }
        let path = client.service.as_ref().and_then(|s| s.path.as_deref());
        if path.is_none_or(str::is_empty) {
            return Err(format!(
                "{at}: webhook {name} has no clientConfig.service.path (/mutate or /validate)"
            ));
        }
    }
    if count == 0 {
        return Err(format!("{at}: no webhooks"));
    }
    Ok(())
}

fn fill_client(client: &mut WebhookClientConfig, target: &Target, ca_bundle_pem: &str) {
    let (path, port) = client
        .service
        .as_ref()
        .map(|s| (s.path.clone(), s.port))
        .unwrap_or_default();
    client.service = Some(ServiceReference {
        name: target.service.clone(),
        namespace: target.namespace.clone(),
        path,
        port: Some(port.unwrap_or(443)),
    });
    client.url = None;
    client.ca_bundle = Some(ByteString(ca_bundle_pem.as_bytes().to_vec()));
}

fn fill_meta(meta: &ObjectMeta, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        labels: meta.labels.clone(),
        annotations: meta.annotations.clone(),
        ..ObjectMeta::default()
    }
}

/// Does `selector` keep `namespace` out, through a `kubernetes.io/metadata.name NotIn` rule?
pub(crate) fn excludes_namespace(selector: Option<&LabelSelector>, namespace: &str) -> bool {
    selector
        .and_then(|s| s.match_expressions.as_ref())
        .is_some_and(|exprs| {
            exprs.iter().any(|e| {
                e.key == "kubernetes.io/metadata.name"
                    && e.operator == "NotIn"
                    && e.values
                        .as_ref()
                        .is_some_and(|v| v.iter().any(|n| n == namespace))
            })
        })
}

fn to_json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

fn retarget(selector: Option<&mut LabelSelector>, from: &str, to: &str) {
    let Some(exprs) = selector.and_then(|s| s.match_expressions.as_mut()) else {
        return;
    };
    for expr in exprs {
        if expr.key != "kubernetes.io/metadata.name" {
            continue;
        }
        for value in expr.values.iter_mut().flatten() {
            if value == from {
                *value = to.to_string();
            }
        }
    }
}

/// The namespace the file was rendered for: its first webhook's service namespace.
fn rendered_namespace(specs: &WebhookSpecs) -> Option<String> {
    let mutating = specs
        .mutating
        .webhooks
        .iter()
        .flatten()
        .map(|h| &h.client_config);
    let validating = specs
        .validating
        .webhooks
        .iter()
        .flatten()
        .map(|h| &h.client_config);
    mutating
        .chain(validating)
        .find_map(|c| c.service.as_ref().map(|s| s.namespace.clone()))
}

/// The fields `fill` sets or reads, shared by mutating and validating webhooks.
struct Hook<'a> {
    name: &'a str,
    client: &'a mut WebhookClientConfig,
    selector: &'a mut Option<LabelSelector>,
    failure_policy: Option<&'a str>,
}

impl Hook<'_> {
    /// Points the webhook at `target` with the caBundle, moves the own-namespace exclusion from
    /// the rendered namespace to the target's, and warns when it fails closed without excluding
    /// podgate's namespace.
    fn fill(
        self,
        target: &Target,
        ca_bundle_pem: &str,
        (from, to): (&str, &str),
        warnings: &mut Vec<String>,
    ) {
        fill_client(self.client, target, ca_bundle_pem);
        retarget(self.selector.as_mut(), from, to);
        // Fail is the API's default failure policy.
        let fails_closed = self.failure_policy.is_none_or(|p| p == "Fail");
        if fails_closed && !excludes_namespace(self.selector.as_ref(), &target.namespace) {
            warnings.push(format!(
                "webhook {} fails closed and does not exclude podgate's namespace {}: while podgate is down it blocks podgate's own Pods",
                self.name, target.namespace
            ));
        }
    }
}

/// The apply bodies: the file's configurations named `target.config_name`, every webhook
/// pointed at `target`'s Service (keeping the file's path and port, default 443) with
/// `ca_bundle_pem` as its caBundle. Warns about a fail-closed webhook that does not exclude
/// podgate's own namespace (it would block podgate's own Pods while podgate is down).
pub fn fill(specs: &WebhookSpecs, target: &Target, ca_bundle_pem: &str) -> Filled {
    let mut warnings = Vec::new();
    let from = rendered_namespace(specs).unwrap_or_else(|| target.namespace.clone());
    let to = target.namespace.as_str();
    let mut mutating = specs.mutating.clone();
    mutating.metadata = fill_meta(&mutating.metadata, &target.config_name);
    for hook in mutating.webhooks.iter_mut().flatten() {
        let fill = Hook {
            name: &hook.name,
            client: &mut hook.client_config,
            selector: &mut hook.namespace_selector,
            failure_policy: hook.failure_policy.as_deref(),
        };
        fill.fill(target, ca_bundle_pem, (&from, to), &mut warnings);
    }
    let mut validating = specs.validating.clone();
    validating.metadata = fill_meta(&validating.metadata, &target.config_name);
    for hook in validating.webhooks.iter_mut().flatten() {
        let fill = Hook {
            name: &hook.name,
            client: &mut hook.client_config,
            selector: &mut hook.namespace_selector,
            failure_policy: hook.failure_policy.as_deref(),
        };
        fill.fill(target, ca_bundle_pem, (&from, to), &mut warnings);
    }
    Filled {
        mutating: to_json(&mutating),
        validating: to_json(&validating),
        warnings,
    }
}

/// The caBundle field's text as the API returns it (standard base64 of the PEM).
#[cfg(test)]
fn ca_bundle_field(ca_bundle_pem: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(ca_bundle_pem.as_bytes())
}

/// The PEM caBundles of every webhook in a configuration read from the API (JSON), decoded.
pub(crate) fn ca_bundles(config: &serde_json::Value) -> Vec<String> {
    config
        .get("webhooks")
        .and_then(|w| w.as_array())
        .map(|hooks| {
            hooks
                .iter()
                .map(|h| {
                    h.pointer("/clientConfig/caBundle")
                        .and_then(|b| b.as_str())
                        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                        .and_then(|b| String::from_utf8(b).ok())
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SPEC: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: anything
  labels: {app.kubernetes.io/name: podgate}
webhooks:
  - name: mutate.podgate.dev
    admissionReviewVersions: [v1]
    sideEffects: None
    failurePolicy: Ignore
    timeoutSeconds: 3
    clientConfig:
      service: {name: placeholder, namespace: elsewhere, path: /mutate}
    namespaceSelector:
      matchExpressions:
        - {key: kubernetes.io/metadata.name, operator: NotIn, values: [kube-system, podgate-system]}
    rules:
      - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: anything
webhooks:
  - name: validate.podgate.dev
    admissionReviewVersions: [v1]
    sideEffects: None
    failurePolicy: Fail
    clientConfig:
      service: {name: placeholder, namespace: elsewhere, path: /validate, port: 8443}
    rules:
      - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}
"#;

    fn target() -> Target {
        Target {
            config_name: "podgate".into(),
            service: "podgate".into(),
            namespace: "podgate-system".into(),
        }
    }

    #[test]
    fn fills_name_service_and_ca_bundle_and_keeps_the_rest() {
        let specs = parse(Path::new("webhooks.yaml"), SPEC).unwrap();
        let filled = fill(&specs, &target(), "PEM\n");
        let m = &filled.mutating;
        assert_eq!(m["apiVersion"], "admissionregistration.k8s.io/v1");
        assert_eq!(m["kind"], "MutatingWebhookConfiguration");
        assert_eq!(
            m["metadata"],
            json!({"name": "podgate", "labels": {"app.kubernetes.io/name": "podgate"}})
        );
        assert_eq!(
            m["webhooks"][0]["clientConfig"],
            json!({
                "caBundle": ca_bundle_field("PEM\n"),
                "service": {"name": "podgate", "namespace": "podgate-system", "path": "/mutate", "port": 443}
            })
        );
        assert_eq!(m["webhooks"][0]["failurePolicy"], "Ignore");
        assert_eq!(m["webhooks"][0]["timeoutSeconds"], 3);
        let v = &filled.validating;
        assert_eq!(v["webhooks"][0]["clientConfig"]["service"]["port"], 8443);
        assert_eq!(v["webhooks"][0]["failurePolicy"], "Fail");
        assert_eq!(ca_bundles(v), vec!["PEM\n".to_string()]);
        // Only the (fail-closed) validating webhook lacks the exclusion.
        assert_eq!(
            filled.warnings,
            vec![
                "webhook validate.podgate.dev fails closed and does not exclude podgate's namespace podgate-system: while podgate is down it blocks podgate's own Pods"
                    .to_string()
            ]
        );
    }

    #[test]
    fn moves_the_rendered_namespace_to_podgates_own_in_selectors() {
        let specs = parse(
            Path::new("webhooks.yaml"),
            &SPEC.replace("elsewhere", "podgate-system"),
        )
        .unwrap();
        let target = Target {
            namespace: "policy-system".into(),
            ..target()
        };
        let filled = fill(&specs, &target, "PEM\n");
        let m = &filled.mutating["webhooks"][0];
        assert_eq!(
            m["namespaceSelector"]["matchExpressions"][0]["values"],
            json!(["kube-system", "policy-system"])
        );
        assert_eq!(m["clientConfig"]["service"]["namespace"], "policy-system");
        assert!(
            filled
                .warnings
                .iter()
                .all(|w| !w.contains("mutate.podgate.dev")),
            "{:?}",
            filled.warnings
        );
    }

    #[test]
    fn reads_the_repositorys_managed_webhook_specs() {
        let file =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/overlays/managed/webhooks.yaml");
        let text = std::fs::read_to_string(&file).unwrap();
        let specs = parse(&file, &text).unwrap();
        let filled = fill(&specs, &target(), "PEM\n");
        assert_eq!(filled.warnings, Vec::<String>::new());
        assert_eq!(
            filled.validating["webhooks"][0]["name"],
            "validate.podgate.dev"
        );
    }

    #[test]
    fn refuses_files_that_are_not_one_of_each_kind_with_service_paths() {
        let cases = [
            (
                "only mutating",
                SPEC.split("---").next().unwrap().to_string(),
                "no ValidatingWebhookConfiguration",
            ),
            (
                "two validating",
                format!("{SPEC}\n---\n{}", SPEC.split("---").nth(1).unwrap()),
                "a second ValidatingWebhookConfiguration",
            ),
            (
                "a stray kind",
                format!("{SPEC}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: x}}\n"),
                "kind \"ConfigMap\"",
            ),
            (
                "url",
                SPEC.replace(
                    "service: {name: placeholder, namespace: elsewhere, path: /mutate}",
                    "url: https://example.com/mutate",
                ),
                "clientConfig.url",
            ),
            (
                "no path",
                SPEC.replace(", path: /validate", ""),
                "no clientConfig.service.path",
            ),
            ("bad yaml", "kind: [".to_string(), "invalid yaml"),
            (
                "wrong type",
                SPEC.replace("timeoutSeconds: 3", "timeoutSeconds: soon"),
                "document 1",
            ),
        ];
        for (name, text, expect) in cases {
            let error = parse(Path::new("w.yaml"), &text).unwrap_err();
            assert!(error.to_string().contains(expect), "{name}: {error}");
            assert!(error.to_string().starts_with("w.yaml"), "{name}: {error}");
        }
    }
}
