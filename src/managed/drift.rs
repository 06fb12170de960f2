//! Has a webhook configuration in the cluster drifted from what podgate would write?
//!
//! The comparison is "everything podgate sets is there, with the same value": the apiserver
//! adds defaults (objectSelector, scope, matchPolicy, port) and metadata (uid,
//! managedFields) that podgate never wrote, and those are not drift. Maps compare key by key
//! over podgate's keys; the `webhooks` list matches entries by `name` (it is a map-list keyed
//! by name in the API); other lists compare item by item and must have the same length.
//! Cost: linear in the size of the desired object.

use serde_json::Value;

/// Paths (JSON-pointer-like) where `actual` lacks or differs from `desired`; empty when
/// nothing drifted.
pub(crate) fn differences(desired: &Value, actual: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(desired, actual, String::new(), &mut out);
    out
}

fn walk(desired: &Value, actual: &Value, path: String, out: &mut Vec<String>) {
    match (desired, actual) {
        (Value::Object(want), Value::Object(have)) => {
            for (key, value) in want {
                let child = format!("{path}/{key}");
                match have.get(key) {
                    Some(found) => walk(value, found, child, out),
                    None if value.is_null() => {}
                    None => out.push(child),
                }
            }
        }
        (Value::Array(want), Value::Array(have)) if path == "/webhooks" => {
            for (index, hook) in want.iter().enumerate() {
                let name = hook.get("name");
                let child = match name.and_then(Value::as_str) {
                    Some(n) => format!("{path}/{n}"),
                    None => format!("{path}/{index}"),
                };
                match have.iter().find(|h| h.get("name") == name) {
                    Some(found) => walk(hook, found, child, out),
                    None => out.push(child),
                }
            }
        }
        (Value::Array(want), Value::Array(have)) => {
            if want.len() != have.len() {
                out.push(path);
                return;
            }
            for (index, (w, h)) in want.iter().zip(have).enumerate() {
                walk(w, h, format!("{path}/{index}"), out);
            }
        }
        (Value::Number(a), Value::Number(b)) => {
            if a.as_f64() != b.as_f64() {
                out.push(path);
            }
        }
        (want, have) => {
            if want != have {
                out.push(path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn desired() -> Value {
        json!({
            "metadata": {"name": "podgate"},
            "webhooks": [
                {"name": "a", "failurePolicy": "Fail", "timeoutSeconds": 5,
                 "clientConfig": {"caBundle": "QUJD", "service": {"name": "podgate", "port": 443}},
                 "rules": [{"operations": ["CREATE"], "resources": ["pods"]}]},
                {"name": "b", "failurePolicy": "Ignore"}
            ]
        })
    }

    #[test]
    fn server_defaults_and_metadata_are_not_drift() {
        let actual = json!({
            "metadata": {"name": "podgate", "uid": "1", "resourceVersion": "7", "managedFields": []},
            "webhooks": [
                {"name": "b", "failurePolicy": "Ignore", "matchPolicy": "Equivalent"},
                {"name": "a", "failurePolicy": "Fail", "timeoutSeconds": 5.0, "objectSelector": {},
                 "clientConfig": {"caBundle": "QUJD", "service": {"name": "podgate", "port": 443}},
                 "rules": [{"operations": ["CREATE"], "resources": ["pods"], "scope": "*"}]}
            ]
        });
        assert_eq!(differences(&desired(), &actual), Vec::<String>::new());
    }

    #[test]
    fn names_every_path_that_drifted() {
        let cases = [
            (
                "ca bundle",
                "/webhooks/0/clientConfig/caBundle",
                json!("WFla"),
                "/webhooks/a/clientConfig/caBundle",
            ),
            (
                "failure policy",
                "/webhooks/1/failurePolicy",
                json!("Fail"),
                "/webhooks/b/failurePolicy",
            ),
            (
                "rule list",
                "/webhooks/0/rules/0/operations",
                json!(["CREATE", "UPDATE"]),
                "/webhooks/a/rules/0/operations",
            ),
            (
                "timeout",
                "/webhooks/0/timeoutSeconds",
                json!(30),
                "/webhooks/a/timeoutSeconds",
            ),
        ];
        for (name, pointer, value, expect) in cases {
            let mut actual = desired();
            *actual.pointer_mut(pointer).unwrap() = value;
            assert_eq!(
                differences(&desired(), &actual),
                vec![expect.to_string()],
                "{name}"
            );
        }
        let mut missing = desired();
        missing["webhooks"].as_array_mut().unwrap().remove(1);
        assert_eq!(
            differences(&desired(), &missing),
            vec!["/webhooks/b".to_string()]
        );
        let mut no_field = desired();
        no_field["webhooks"][0]
            .as_object_mut()
            .unwrap()
            .remove("timeoutSeconds");
        assert_eq!(
            differences(&desired(), &no_field),
            vec!["/webhooks/a/timeoutSeconds".to_string()]
        );
        assert_eq!(differences(&desired(), &Value::Null), vec![String::new()]);
    }
}
