//! A policy set as a ConfigMap carries it: the same files the kubelet would mount, loaded by
//! the same loader `serve` and `podgate check --policies` use, so a set refused here is exactly
//! a set podgate would refuse from disk (one source of truth).
//!
//! Pure: the caller hands over the ConfigMap as JSON (an admission request's object, or a
//! document read by `podgate check`). It must not decide anything beyond "does this set load".

use base64::Engine as _;
use serde_json::Value;

use super::PolicySet;
use super::loader::{LoadError, LoadErrors, MAX_FILE_BYTES, is_policy_file};

/// The label that marks a ConfigMap as a podgate policy set (the webhook's objectSelector and
/// `policies/Kustomization` use the same one).
pub(crate) const LABEL: &str = "podgate.dev/policies";

/// True when `object` is a core/v1 ConfigMap labelled `podgate.dev/policies: "true"`.
pub(crate) fn is_policy_config_map(object: &Value) -> bool {
    object.get("kind").and_then(Value::as_str) == Some("ConfigMap")
        && object.get("apiVersion").and_then(Value::as_str) == Some("v1")
        && has_label(object)
}

/// True when `object`'s labels say `podgate.dev/policies: "true"`, whatever its kind.
pub(crate) fn has_label(object: &Value) -> bool {
    object
        .pointer("/metadata/labels")
        .and_then(|labels| labels.get(LABEL))
        .and_then(Value::as_str)
        == Some("true")
}

/// Loads the policy files of a ConfigMap (`data` and `binaryData` keys named like a policy
/// file, as the kubelet would mount them) into a set, or every error, `key:line:column: reason`.
pub fn load(object: &Value) -> Result<PolicySet, LoadErrors> {
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    let mut read = |field: &str, decode: bool| {
        let Some(map) = object.get(field) else {
            return;
        };
        let Some(map) = map.as_object() else {
            if !map.is_null() {
                errors.push(error(field, format!("{field} is not a map of file names")));
            }
            return;
        };
        for (key, value) in map {
            if !is_policy_file(key) {
                continue;
            }
            let Some(text) = value.as_str() else {
                errors.push(error(key, format!("{field}.{key} is not a string")));
                continue;
            };
            let text = if decode {
                let bytes = match base64::engine::general_purpose::STANDARD.decode(text) {
                    Ok(bytes) => bytes,
                    Err(e) => {
                        errors.push(error(key, format!("binaryData is not base64: {e}")));
                        continue;
                    }
                };
                match String::from_utf8(bytes) {
                    Ok(text) => text,
                    Err(_) => {
                        errors.push(error(key, "cannot read: not UTF-8 text".into()));
                        continue;
                    }
                }
            } else {
                text.to_owned()
            };
            if text.len() > MAX_FILE_BYTES {
                errors.push(error(
                    key,
                    format!(
                        "file is {} bytes; policy files are limited to {MAX_FILE_BYTES} bytes",
                        text.len()
                    ),
                ));
                continue;
            }
            sources.push((key.clone(), text));
        }
    };
    read("data", false);
    read("binaryData", true);
    // The kubelet mounts keys as files and the loader reads a folder in name order.
    sources.sort();
    match PolicySet::from_sources(&sources) {
        Ok(set) if errors.is_empty() => Ok(set),
        Ok(_) => Err(LoadErrors(errors)),
        Err(LoadErrors(more)) => {
            errors.extend(more);
            Err(LoadErrors(errors))
        }
    }
}

fn error(file: &str, reason: String) -> LoadError {
    LoadError {
        file: file.to_owned(),
        line: 0,
        column: 0,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const GOOD: &str = "apiVersion: podgate.dev/v1alpha1
kind: PodPolicy
metadata:
  name: deny-hosts-file-edits
spec:
  action: Enforce
  validate:
    hostsFile: {}
";

    fn config_map(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "podgate-policies", "labels": {LABEL: "true"}},
            "data": data})
    }

    #[test]
    fn loads_the_policy_keys_and_ignores_the_others() {
        let cm =
            config_map(json!({"a.yaml": GOOD, "README": "not a policy", ".hidden.yaml": "x: ["}));
        let set = load(&cm).unwrap();
        assert_eq!(set.len(), 1);
        assert!(is_policy_config_map(&cm));
    }

    #[test]
    fn a_broken_set_reports_every_error_with_key_line_and_column() {
        let bad_action = GOOD.replace("Enforce", "Block");
        let cm = config_map(json!({
            "a.yaml": GOOD,
            "b.yaml": bad_action,
            "c.yml": "apiVersion: [broken",
            "d.yaml": GOOD,
        }));
        let errors = load(&cm).unwrap_err().0;
        let files: Vec<&str> = errors.iter().map(|e| e.file.as_str()).collect();
        // b: unknown action; c: YAML; d: duplicate of a's name.
        assert!(files.contains(&"b.yaml"), "{errors:?}");
        assert!(files.contains(&"c.yml"), "{errors:?}");
        assert!(files.contains(&"d.yaml"), "{errors:?}");
        let b = errors.iter().find(|e| e.file == "b.yaml").unwrap();
        assert_eq!((b.line, b.column), (6, 11), "{b}");
        assert!(b.to_string().starts_with("b.yaml:6:11: "), "{b}");
    }

    #[test]
    fn errors_are_the_same_as_loading_the_mounted_folder() {
        let files = [
            ("a.yaml", GOOD.to_owned()),
            (
                "b.yaml",
                GOOD.replace("hostsFile: {}", "hostsFile: {bogus: 1}"),
            ),
        ];
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in &files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let from_disk = PolicySet::load_dir(dir.path()).unwrap_err();
        let data: serde_json::Map<String, Value> = files
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(v.as_str())))
            .collect();
        let from_map = load(&config_map(Value::Object(data))).unwrap_err();
        let strip = |e: &LoadErrors| -> Vec<(String, u64, u64, String)> {
            e.0.iter()
                .map(|e| {
                    let file = std::path::Path::new(&e.file)
                        .file_name()
                        .unwrap()
                        .to_string_lossy()
                        .into_owned();
                    (file, e.line, e.column, e.reason.clone())
                })
                .collect()
        };
        assert_eq!(strip(&from_map), strip(&from_disk));
    }

    #[test]
    fn binary_data_is_decoded_and_non_text_is_refused() {
        let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
        let mut cm = config_map(json!({}));
        cm["binaryData"] = json!({"a.yaml": b64(GOOD.as_bytes())});
        assert_eq!(load(&cm).unwrap().len(), 1);
        cm["binaryData"] = json!({"a.yaml": b64(&[0xff, 0xfe])});
        let errors = load(&cm).unwrap_err().0;
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].file, "a.yaml");
        assert!(errors[0].reason.contains("UTF-8"));
    }

    #[test]
    fn only_labelled_v1_config_maps_are_policy_sets() {
        let mut cm = config_map(json!({}));
        assert!(is_policy_config_map(&cm));
        cm["metadata"]["labels"][LABEL] = json!("false");
        assert!(!is_policy_config_map(&cm));
        let mut secret = config_map(json!({}));
        secret["kind"] = json!("Secret");
        assert!(!is_policy_config_map(&secret));
        assert!(has_label(&secret));
    }
}
