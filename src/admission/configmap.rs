//! podgate's own policy ConfigMaps at apply time (webhook `policies.podgate.dev`): a CREATE or
//! UPDATE of a ConfigMap labelled `podgate.dev/policies: "true"` is allowed only when its files
//! load, so `kubectl apply` of a broken set fails at once with the loader's
//! `file:line:column: reason` lines instead of reaching the Pods that mount it.
//!
//! The check is `policy::configmap::load`, the same one `podgate check` runs on rendered
//! manifests. It needs no policy set, so it answers even while podgate has none loaded.

use serde_json::Value;
use serde_json::value::RawValue;

use crate::policy::configmap;

/// Denial messages longer than this are cut (with a count of what was left out): kubectl
/// prints the whole message, and a few hundred errors are already more than anyone reads.
const MAX_MESSAGE_BYTES: usize = 32 * 1024;

/// What to answer for a ConfigMap request.
#[derive(Debug, PartialEq)]
pub(super) enum Verdict {
    /// Not a policy set, or not a change podgate checks (DELETE, CONNECT, the mutating hook).
    Skip,
    /// A policy set that loads.
    Valid,
    /// The object cannot be read as JSON.
    Unreadable(String),
    /// A policy set that does not load: the message for the user.
    Broken(String),
}

/// Judges `object` (and `old_object` for the label) of a `ConfigMap` request.
pub(super) fn judge(
    operation: &str,
    namespace: &str,
    name: &str,
    object: Option<&RawValue>,
    old_object: Option<&RawValue>,
) -> Verdict {
    if !matches!(operation, "CREATE" | "UPDATE") {
        return Verdict::Skip;
    }
    let Some(object) = object else {
        return Verdict::Unreadable(format!("{operation} request for a ConfigMap has no object"));
    };
    let new: Value = match serde_json::from_str(object.get()) {
        Ok(v) => v,
        Err(e) => return Verdict::Unreadable(format!("cannot read the ConfigMap: {e}")),
    };
    // The apiserver sends an UPDATE when the old or the new object matches the selector, so a
    // change that also drops the label is still checked.
    let old_labelled = old_object
        .and_then(|o| serde_json::from_str::<Value>(o.get()).ok())
        .is_some_and(|o| configmap::has_label(&o));
    if !configmap::has_label(&new) && !old_labelled {
        return Verdict::Skip;
    }
    match configmap::load(&new) {
        Ok(_) => Verdict::Valid,
        Err(errors) => {
            let count = errors.0.len();
            let mut message = format!(
                "podgate: the policy set in ConfigMap {namespace}/{name} does not load \
                 ({count} {}); podgate keeps serving its last good set:",
                if count == 1 { "error" } else { "errors" }
            );
            for (i, e) in errors.0.iter().enumerate() {
                let line = format!("\n{e}");
                if message.len() + line.len() > MAX_MESSAGE_BYTES {
                    message.push_str(&format!("\n... and {} more", count - i));
                    break;
                }
                message.push_str(&line);
            }
            Verdict::Broken(message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const GOOD: &str = "apiVersion: podgate.dev/v1alpha1\nkind: PodPolicy\nmetadata:\n  name: p\nspec:\n  action: Enforce\n  validate:\n    hostsFile: {}\n";

    fn raw(v: &Value) -> Box<RawValue> {
        RawValue::from_string(v.to_string()).unwrap()
    }

    fn cm(labelled: bool, file: &str) -> Value {
        let labels = if labelled {
            json!({"podgate.dev/policies": "true"})
        } else {
            json!({})
        };
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "podgate-policies", "labels": labels},
            "data": {"p.yaml": file}})
    }

    fn judge_new(op: &str, new: &Value, old: Option<&Value>) -> Verdict {
        let new = raw(new);
        let old = old.map(raw);
        judge(
            op,
            "podgate-system",
            "podgate-policies",
            Some(&new),
            old.as_deref(),
        )
    }

    #[test]
    fn a_labelled_broken_set_is_refused_with_every_error() {
        let broken = GOOD.replace("Enforce", "Block") + "---\napiVersion: [x\n";
        let Verdict::Broken(message) = judge_new("CREATE", &cm(true, &broken), None) else {
            panic!("not refused");
        };
        assert!(
            message.contains("ConfigMap podgate-system/podgate-policies"),
            "{message}"
        );
        assert!(message.contains("\np.yaml:6:11: "), "{message}");
    }

    #[test]
    fn valid_sets_unlabelled_maps_and_other_operations_pass() {
        assert_eq!(judge_new("CREATE", &cm(true, GOOD), None), Verdict::Valid);
        assert_eq!(judge_new("UPDATE", &cm(false, "x: ["), None), Verdict::Skip);
        assert_eq!(judge_new("DELETE", &cm(true, "x: ["), None), Verdict::Skip);
        assert_eq!(
            judge("CREATE", "ns", "n", None, None),
            Verdict::Unreadable("CREATE request for a ConfigMap has no object".into())
        );
    }

    #[test]
    fn dropping_the_label_does_not_skip_the_check() {
        let old = cm(true, GOOD);
        assert!(matches!(
            judge_new("UPDATE", &cm(false, "x: ["), Some(&old)),
            Verdict::Broken(_)
        ));
    }

    #[test]
    fn a_huge_error_list_is_cut_and_says_how_much() {
        // 3000 files with a YAML error each.
        let data: serde_json::Map<String, Value> = (0..3000)
            .map(|i| (format!("f{i:04}.yaml"), Value::from("x: [")))
            .collect();
        let mut map = cm(true, GOOD);
        map["data"] = Value::Object(data);
        let Verdict::Broken(message) = judge_new("CREATE", &map, None) else {
            panic!("not refused");
        };
        assert!(message.len() <= MAX_MESSAGE_BYTES + 64);
        assert!(
            message.contains("more"),
            "{}",
            &message[message.len() - 80..]
        );
    }
}
