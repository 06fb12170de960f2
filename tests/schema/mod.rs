//! A structural-schema checker (the subset of OpenAPI v3 that CRDs use) for tests: type,
//! properties, required, enum, items, additionalProperties, format int32/int64. Unlike plain
//! JSON Schema, a field the schema does not name is an error (the API server would prune it
//! silently), unless the object allows it (`additionalProperties`, or
//! `x-kubernetes-preserve-unknown-fields`). `metadata` at the root is the API server's.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;

/// Every problem of `v` against `schema`, with JSON paths.
pub fn check(schema: &Value, v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(schema, v, "", &mut out);
    out
}

fn walk(schema: &Value, v: &Value, at: &str, out: &mut Vec<String>) {
    let path = if at.is_empty() { "." } else { at };
    if let Some(t) = schema.get("type").and_then(Value::as_str) {
        let ok = match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            _ => true,
        };
        if !ok {
            out.push(format!("{path}: expected {t}, got {v}"));
            return;
        }
        if t == "integer" {
            let n = v.as_i64().unwrap_or(i64::MAX);
            if schema.get("format").and_then(Value::as_str) == Some("int32")
                && i32::try_from(n).is_err()
            {
                out.push(format!("{path}: {n} is not an int32"));
            }
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(v)
    {
        out.push(format!("{path}: {v} is not one of {allowed:?}"));
    }
    if let Some(obj) = v.as_object() {
        for r in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let r = r.as_str().unwrap();
            if !obj.contains_key(r) {
                out.push(format!("{path}: required field {r:?} is missing"));
            }
        }
        let props = schema.get("properties").and_then(Value::as_object);
        let extra = schema.get("additionalProperties");
        let preserve = schema
            .get("x-kubernetes-preserve-unknown-fields")
            .and_then(Value::as_bool)
            == Some(true);
        for (k, child) in obj {
            let sub = format!("{at}.{k}");
            if at.is_empty() && k == "metadata" {
                continue;
            }
            match (props.and_then(|p| p.get(k)), extra) {
                (Some(s), _) => walk(s, child, &sub, out),
                (None, Some(s)) if s.is_object() => walk(s, child, &sub, out),
                (None, Some(Value::Bool(true))) => {}
                (None, _) if preserve => {}
                (None, _) => {
                    out.push(format!(
                        "{sub}: unknown field (the API server would prune it)"
                    ));
                }
            }
        }
    }
    if let (Some(items), Some(list)) = (schema.get("items"), v.as_array()) {
        for (i, item) in list.iter().enumerate() {
            walk(items, item, &format!("{at}[{i}]"), out);
        }
    }
}

/// The `openAPIV3Schema` of `version` in a CRD (YAML text).
pub fn crd_schema(crd_yaml: &str, version: &str) -> Value {
    let crd: Value = serde_saphyr::from_str(crd_yaml).unwrap();
    crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == version)
        .unwrap_or_else(|| panic!("no version {version} in the CRD"))["schema"]["openAPIV3Schema"]
        .clone()
}

#[test]
fn the_checker_finds_wrong_types_unknown_fields_missing_required_and_bad_enums() {
    let schema = serde_json::json!({
        "type": "object",
        "properties": {
            "results": {"type": "array", "items": {
                "type": "object", "required": ["policy"],
                "properties": {
                    "policy": {"type": "string"},
                    "result": {"type": "string", "enum": ["pass", "fail"]},
                    "nanos": {"type": "integer", "format": "int32"},
                    "properties": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            }},
        },
    });
    let good = serde_json::json!({"metadata": {"x": 1}, "results": [{"policy": "p", "result": "pass", "nanos": 0, "properties": {"a": "b"}}]});
    assert_eq!(check(&schema, &good), Vec::<String>::new());
    let bad = serde_json::json!({"extra": 1, "results": [{"result": "maybe", "nanos": 5_000_000_000i64, "properties": {"a": 1}}]});
    let problems = check(&schema, &bad);
    assert_eq!(problems.len(), 5, "{problems:#?}");
}
