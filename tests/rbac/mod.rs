//! `kubectl auth can-i` for tests: evaluates rendered Role/ClusterRole objects and their
//! bindings for one ServiceAccount, and turns recorded API requests into the questions the API
//! server's authorizer asks.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;

/// `kubectl auth can-i` over rendered RBAC objects, for the ServiceAccount `sa` in `sa_ns`:
/// Roles bound by RoleBindings in their namespace, ClusterRoles by ClusterRoleBindings
/// everywhere; a rule matches on apiGroup, resource and verb (or `*`), and on the name when it
/// lists resourceNames (a request without a name, like create or an unnamed list, does not match
/// such a rule).
pub struct Rbac {
    pub objects: Vec<Value>,
    pub sa: String,
    pub sa_ns: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
}

impl Rbac {
    fn binds_us(&self, binding: &Value) -> bool {
        binding["subjects"].as_array().is_some_and(|subjects| {
            subjects.iter().any(|s| {
                s["kind"] == "ServiceAccount"
                    && s["name"] == self.sa.as_str()
                    && s["namespace"] == self.sa_ns.as_str()
            })
        })
    }

    fn rule_allows(rule: &Value, ask: &Ask) -> bool {
        let has = |field: &str, value: &str| {
            rule[field]
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v == value || v == "*"))
        };
        let names = rule["resourceNames"].as_array().filter(|a| !a.is_empty());
        has("apiGroups", &ask.group)
            && has("resources", &ask.resource)
            && has("verbs", &ask.verb)
            && names.is_none_or(|n| {
                ask.name
                    .as_ref()
                    .is_some_and(|name| n.iter().any(|v| v == name.as_str()))
            })
    }

    fn role<'a>(&'a self, kind: &str, name: &str, namespace: Option<&str>) -> Option<&'a Value> {
        self.objects.iter().find(|o| {
            o["kind"] == kind
                && o["metadata"]["name"] == name
                && namespace.is_none_or(|ns| o["metadata"]["namespace"] == ns)
        })
    }

    pub fn can(&self, ask: &Ask) -> bool {
        let mut rules: Vec<&Value> = Vec::new();
        for binding in self.objects.iter().filter(|o| self.binds_us(o)) {
            let role_ref = &binding["roleRef"];
            let role_name = role_ref["name"].as_str().unwrap();
            match binding["kind"].as_str().unwrap() {
                "ClusterRoleBinding" => {
                    if let Some(role) = self.role("ClusterRole", role_name, None) {
                        rules.extend(role["rules"].as_array().unwrap());
                    }
                }
                "RoleBinding" => {
                    let ns = binding["metadata"]["namespace"].as_str().unwrap();
                    if ask.namespace.as_deref() != Some(ns) {
                        continue;
                    }
                    let role = if role_ref["kind"] == "ClusterRole" {
                        self.role("ClusterRole", role_name, None)
                    } else {
                        self.role("Role", role_name, Some(ns))
                    };
                    if let Some(role) = role {
                        rules.extend(role["rules"].as_array().unwrap());
                    }
                }
                _ => {}
            }
        }
        rules.iter().any(|r| Self::rule_allows(r, ask))
    }
}

pub fn ask(
    verb: &str,
    group: &str,
    resource: &str,
    namespace: Option<&str>,
    name: Option<&str>,
) -> Ask {
    Ask {
        verb: verb.into(),
        group: group.into(),
        resource: resource.into(),
        namespace: namespace.map(Into::into),
        name: name.map(Into::into),
    }
}

/// What the API server authorizes for one request (method, path, raw query, content type):
/// a GET is get, list or watch (a watch or list names the object through
/// `fieldSelector=metadata.name=...`), POST create, PUT update, PATCH patch (and, for a
/// server-side apply, create of that name, which is what an apply that creates needs),
/// DELETE delete.
pub fn asks_for(method: &str, path: &str, query: &str, content_type: Option<&str>) -> Vec<Ask> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match parts.as_slice() {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => return Vec::new(),
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(*ns), rest),
        _ => (None, rest),
    };
    let (resource, mut name) = match rest {
        [resource] => (*resource, None),
        [resource, name, ..] => (*resource, Some(name.to_string())),
        _ => return Vec::new(),
    };
    let params: Vec<(String, String)> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("%3D", "=").replace("%3d", "=")))
        .collect();
    let param = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    if name.is_none() {
        name =
            param("fieldSelector").and_then(|f| f.strip_prefix("metadata.name=").map(String::from));
    }
    let watch = param("watch").is_some_and(|w| w == "true" || w == "1");
    let verbs: Vec<&str> = match (method, rest.len()) {
        ("GET", _) if watch => vec!["watch"],
        ("GET", 1) => vec!["list"],
        ("GET", _) => vec!["get"],
        ("POST", _) => vec!["create"],
        ("PUT", _) => vec!["update"],
        ("PATCH", _) if content_type == Some("application/apply-patch+yaml") => {
            vec!["patch", "create"]
        }
        ("PATCH", _) => vec!["patch"],
        ("DELETE", _) => vec!["delete"],
        _ => Vec::new(),
    };
    verbs
        .into_iter()
        .map(|verb| ask(verb, group, resource, namespace, name.as_deref()))
        .collect()
}
