//! TEMPORARY stand-in for `crate::policy` and `crate::admission` until the lead's engine API
//! lands on main. Same signatures as the agreed interface; delete this file on merge.
#![allow(dead_code)]

pub mod policy {
    use sha2::{Digest, Sha256};
    use std::fmt;
    use std::path::Path;

    #[derive(Debug)]
    pub struct PolicySet {
        hash: String,
        len: usize,
    }

    #[derive(Debug)]
    pub struct LoadErrors(pub Vec<String>);

    impl fmt::Display for LoadErrors {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.0.join("\n"))
        }
    }

    impl std::error::Error for LoadErrors {}

    impl PolicySet {
        pub fn load_dir(dir: &Path) -> Result<PolicySet, LoadErrors> {
            let mut names = Vec::new();
            let rd = std::fs::read_dir(dir)
                .map_err(|e| LoadErrors(vec![format!("{}:1:1: {e}", dir.display())]))?;
            for entry in rd.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if !name.starts_with('.') && (name.ends_with(".yaml") || name.ends_with(".yml")) {
                    names.push(name);
                }
            }
            names.sort();
            let mut hasher = Sha256::new();
            let mut errors = Vec::new();
            for name in &names {
                let path = dir.join(name);
                match std::fs::read_to_string(&path) {
                    Ok(text) => {
                        if let Err(e) = serde_saphyr::from_str::<serde_json::Value>(&text) {
                            errors.push(format!("{}:1:1: {e}", path.display()));
                        }
                        hasher.update(name.as_bytes());
                        hasher.update(text.as_bytes());
                    }
                    Err(e) => errors.push(format!("{}:1:1: {e}", path.display())),
                }
            }
            if !errors.is_empty() {
                return Err(LoadErrors(errors));
            }
            let hash = hasher
                .finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>();
            Ok(PolicySet {
                hash,
                len: names.len(),
            })
        }
        pub fn hash(&self) -> &str {
            &self.hash
        }
        pub fn len(&self) -> usize {
            self.len
        }
        pub fn is_empty(&self) -> bool {
            self.len == 0
        }
        pub fn exemptions_expiring(&self, _now: jiff::Timestamp, _within_days: i64) -> usize {
            0
        }
    }
}

pub mod admission {
    use super::policy::PolicySet;
    use serde_json::{Value, json};
    use std::fmt;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Webhook {
        Validate,
        Mutate,
    }
    impl Webhook {
        pub fn as_str(&self) -> &'static str {
            match self {
                Webhook::Validate => "validate",
                Webhook::Mutate => "mutate",
            }
        }
    }
    #[derive(Debug, Clone)]
    pub struct Finding {
        pub policy: String,
        pub rule: String,
        pub action: String,
    }
    #[derive(Debug, Clone)]
    pub struct Summary {
        pub uid: String,
        pub kind: String,
        pub namespace: String,
        pub name: String,
        pub operation: String,
        pub user: String,
        pub allowed: bool,
        pub code: u16,
        pub findings: Vec<Finding>,
        pub patch_ops: usize,
        pub warnings: usize,
        pub dry_run: bool,
    }
    #[derive(Debug)]
    pub struct Reviewed {
        pub body: Vec<u8>,
        pub summary: Summary,
    }
    #[derive(Debug)]
    pub enum ReviewError {
        Json(String),
        NotReview,
    }
    impl fmt::Display for ReviewError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                ReviewError::Json(e) => write!(f, "invalid JSON: {e}"),
                ReviewError::NotReview => {
                    f.write_str("not an admission.k8s.io/v1 AdmissionReview with a request")
                }
            }
        }
    }
    impl std::error::Error for ReviewError {}

    fn s(v: &Value, p: &str) -> String {
        v.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }

    pub fn review(
        _set: &PolicySet,
        body: &[u8],
        _webhook: Webhook,
        _now: jiff::Timestamp,
    ) -> Result<Reviewed, ReviewError> {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| ReviewError::Json(e.to_string()))?;
        if v.get("kind").and_then(Value::as_str) != Some("AdmissionReview")
            || v.get("apiVersion").and_then(Value::as_str) != Some("admission.k8s.io/v1")
            || !v.get("request").is_some_and(Value::is_object)
        {
            return Err(ReviewError::NotReview);
        }
        let uid = s(&v, "/request/uid");
        let out = json!({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":uid,"allowed":true}});
        Ok(Reviewed {
            body: serde_json::to_vec(&out).map_err(|e| ReviewError::Json(e.to_string()))?,
            summary: Summary {
                uid,
                kind: s(&v, "/request/kind/kind"),
                namespace: s(&v, "/request/namespace"),
                name: s(&v, "/request/name"),
                operation: s(&v, "/request/operation"),
                user: s(&v, "/request/userInfo/username"),
                allowed: true,
                code: 200,
                findings: Vec::new(),
                patch_ops: 0,
                warnings: 0,
                dry_run: v
                    .pointer("/request/dryRun")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            },
        })
    }

    pub fn error_review(body: &[u8], code: u16, message: &str) -> Vec<u8> {
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let uid = s(&v, "/request/uid");
        let out = json!({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":uid,"allowed":false,"status":{"code":code,"message":message}}});
        serde_json::to_vec(&out).unwrap_or_default()
    }
}
