//! SARIF 2.1.0 output for `check` and `audit`, so CI systems show findings inline.
//!
//! One run, tool `podgate`, one reporting descriptor per rule family; one result per
//! violation naming the rule (`ruleId`), the policy and its action (`properties`), the message,
//! and where: a file and line for `check` (`physicalLocation`), the object for both
//! (`logicalLocations`, `namespace/Kind/name`). Objects that could not be read and parts of a
//! cluster that could not be listed are tool execution notifications, and make the invocation
//! unsuccessful. Levels: Enforce -> `error`, Warn -> `warning`, Audit -> `note`.
//!
//! Pure: builds a JSON value; the caller prints it.

use serde_json::{Value, json};

use crate::check::{InputError, ObjectReport};

/// The rule families, with the text SARIF viewers show.
const RULES: [(&str, &str, &str); 4] = [
    (
        "hostsFile",
        "Direct /etc/hosts edits",
        "The kubelet owns /etc/hosts and rewrites it: mounts over it, writable hostPath access to the node's hosts file and writes from commands, hooks and probes are lost or break things. Use spec.hostAliases.",
    ),
    (
        "hostNamespaces",
        "Unsafe host-namespace combinations",
        "hostPID, hostNetwork and hostIPC combined with each other, with privileged containers or with dangerous capabilities, as the policy forbids.",
    ),
    (
        "imagePullPolicy",
        "imagePullPolicy for mutable tags",
        "Images with a mutable tag (:latest or untagged) need the pull policy the policy sets.",
    ),
    (
        "hostAliases",
        "hostAliases from policy",
        "The hostAliases entries the policy injects, without clobbering what the Pod says.",
    ),
];

/// Where a finding is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Place<'a> {
    /// The manifest file and 1-based line (`check`), if any.
    pub file: Option<(&'a str, usize)>,
    /// The object's namespace.
    pub namespace: &'a str,
    /// Its kind.
    pub kind: &'a str,
    /// Its name.
    pub name: &'a str,
}

/// One finding to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding<'a> {
    /// The rule family (`hostsFile`, ...).
    pub rule: &'a str,
    /// The policy.
    pub policy: &'a str,
    /// The policy's action (Enforce, Warn, Audit).
    pub action: &'a str,
    /// The message.
    pub message: &'a str,
    /// Where.
    pub place: Place<'a>,
    /// Extra properties (uid, Pod count...).
    pub properties: Value,
}

/// SARIF's level for a policy action.
pub fn level(action: &str) -> &'static str {
    match action {
        "Enforce" => "error",
        "Warn" => "warning",
        _ => "note",
    }
}

/// Percent-encodes what a URI reference may not hold as is (spaces, `#`, `?`, non-ASCII...).
pub(crate) fn uri_reference(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The SARIF log for `findings`; `errors` become error notifications.
pub fn log(findings: &[Finding<'_>], errors: &[String]) -> Value {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|(id, name, text)| {
            json!({
                "id": id,
                "name": name,
                "shortDescription": {"text": name},
                "fullDescription": {"text": text},
                "defaultConfiguration": {"level": "error"},
            })
        })
        .collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let mut location = json!({
                "logicalLocations": [{
                    "name": f.place.name,
                    "fullyQualifiedName": format!("{}/{}/{}", f.place.namespace, f.place.kind, f.place.name),
                    "kind": "resource",
                }],
            });
            if let Some((file, line)) = f.place.file {
                location["physicalLocation"] = json!({
                    "artifactLocation": {"uri": uri_reference(file)},
                    "region": {"startLine": line.max(1)},
                });
            }
            let mut properties = json!({"policy": f.policy, "action": f.action});
            if let (Some(p), Some(extra)) = (properties.as_object_mut(), f.properties.as_object()) {
                p.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            let mut result = json!({
                "ruleId": f.rule,
                "level": level(f.action),
                "message": {"text": format!("[{}] {}", f.policy, f.message)},
                "locations": [location],
                "properties": properties,
            });
            if let Some(i) = RULES.iter().position(|(id, _, _)| *id == f.rule) {
                result["ruleIndex"] = json!(i);
            }
            result
        })
        .collect();
    let notifications: Vec<Value> = errors
        .iter()
        .map(|e| json!({"level": "error", "message": {"text": e}}))
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "podgate",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "invocations": [{
                "executionSuccessful": errors.is_empty(),
                "toolExecutionNotifications": notifications,
            }],
            "results": results,
        }],
    })
}

/// `podgate check -o sarif`: findings as results; unreadable objects and inputs that could not
/// be read as error notifications; objects in a removed group version (read as the served
/// one) as warning notifications at their file and line, which leave the run successful.
pub(crate) fn from_check(reports: &[ObjectReport], input_errors: &[InputError]) -> Value {
    let mut sarif = check_log(reports, input_errors);
    let notes = reports.iter().filter_map(|r| {
        let note = r.api_note.as_ref()?;
        Some(json!({
            "level": "warning",
            "message": {"text": format!("{} {:?} in namespace {:?}: {note}", r.kind, r.name, r.namespace)},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": uri_reference(&r.file)},
                "region": {"startLine": r.line.max(1)},
            }}],
        }))
    });
    if let Some(list) = sarif
        .pointer_mut("/runs/0/invocations/0/toolExecutionNotifications")
        .and_then(Value::as_array_mut)
    {
        list.extend(notes);
    }
    sarif
}

fn check_log(reports: &[ObjectReport], input_errors: &[InputError]) -> Value {
    let mut findings = Vec::new();
    let mut errors: Vec<String> = input_errors
        .iter()
        .map(|e| format!("{}: {}", e.location(), e.reason))
        .collect();
    for r in reports {
        if let Some(e) = &r.error {
            errors.push(format!(
                "{} (document {}, line {}): {} {:?}: {e}",
                r.file, r.document, r.line, r.kind, r.name
            ));
        }
        for v in &r.violations {
            findings.push(Finding {
                rule: v.rule,
                policy: &v.policy,
                action: v.action,
                message: &v.message,
                place: Place {
                    file: Some((&r.file, r.line)),
                    namespace: &r.namespace,
                    kind: &r.kind,
                    name: &r.name,
                },
                properties: json!({"document": r.document}),
            });
        }
    }
    log(&findings, &errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_the_policy_action() {
        assert_eq!(level("Enforce"), "error");
        assert_eq!(level("Warn"), "warning");
        assert_eq!(level("Audit"), "note");
    }

    #[test]
    fn file_names_become_uri_references() {
        assert_eq!(uri_reference("deploy/app.yaml"), "deploy/app.yaml");
        assert_eq!(uri_reference("my dir/a#b.yaml"), "my%20dir/a%23b.yaml");
        assert_eq!(uri_reference("é.yaml"), "%C3%A9.yaml");
    }

    #[test]
    fn a_result_names_rule_message_file_line_and_object() {
        let f = Finding {
            rule: "hostsFile",
            policy: "no-hosts-edits",
            action: "Enforce",
            message: "container \"c\" writes /etc/hosts",
            place: Place {
                file: Some(("k8s/app.yaml", 12)),
                namespace: "shop",
                kind: "Deployment",
                name: "web",
            },
            properties: json!({"document": 2}),
        };
        let log = log(&[f], &["one error".to_string()]);
        let run = &log["runs"][0];
        let r = &run["results"][0];
        assert_eq!(r["ruleId"], "hostsFile");
        assert_eq!(r["ruleIndex"], 0);
        assert_eq!(r["level"], "error");
        assert_eq!(
            r["message"]["text"],
            "[no-hosts-edits] container \"c\" writes /etc/hosts"
        );
        let loc = &r["locations"][0];
        assert_eq!(
            loc["physicalLocation"]["artifactLocation"]["uri"],
            "k8s/app.yaml"
        );
        assert_eq!(loc["physicalLocation"]["region"]["startLine"], 12);
        assert_eq!(
            loc["logicalLocations"][0]["fullyQualifiedName"],
            "shop/Deployment/web"
        );
        assert_eq!(r["properties"]["document"], 2);
        assert_eq!(run["invocations"][0]["executionSuccessful"], false);
        assert_eq!(run["tool"]["driver"]["rules"][0]["id"], "hostsFile");
    }
}
