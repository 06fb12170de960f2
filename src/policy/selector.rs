//! Label selectors with Kubernetes semantics (metav1.LabelSelector).

use std::collections::BTreeMap;

/// A set-based label-selector operator, spelled as in `matchExpressions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub enum Operator {
    /// Value in the set.
    In,
    /// Label absent or value not in the set.
    NotIn,
    /// Label present.
    Exists,
    /// Label absent.
    DoesNotExist,
}

/// One requirement; `matchLabels` entries become `In` with one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// Label key.
    pub key: String,
    /// Operator.
    pub operator: Operator,
    /// Values for `In` / `NotIn`.
    pub values: Vec<String>,
}

/// A selector: all requirements must hold; an empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    /// The requirements, `matchLabels` first.
    pub requirements: Vec<Requirement>,
}

impl Selector {
    /// True when every requirement holds for `labels`.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| {
            let value = labels.get(&r.key);
            match r.operator {
                Operator::In => value.is_some_and(|v| r.values.contains(v)),
                Operator::NotIn => value.is_none_or(|v| !r.values.contains(v)),
                Operator::Exists => value.is_some(),
                Operator::DoesNotExist => value.is_none(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn req(key: &str, operator: Operator, values: &[&str]) -> Requirement {
        Requirement {
            key: key.into(),
            operator,
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn selector_operators_follow_kubernetes() {
        let l = labels(&[("tier", "web"), ("env", "prod")]);
        let cases = [
            ("empty matches all", vec![], true),
            (
                "in hit",
                vec![req("tier", Operator::In, &["web", "api"])],
                true,
            ),
            ("in miss", vec![req("tier", Operator::In, &["api"])], false),
            ("in absent", vec![req("team", Operator::In, &["a"])], false),
            (
                "notin absent",
                vec![req("team", Operator::NotIn, &["a"])],
                true,
            ),
            (
                "notin hit",
                vec![req("env", Operator::NotIn, &["prod"])],
                false,
            ),
            ("exists", vec![req("env", Operator::Exists, &[])], true),
            (
                "exists absent",
                vec![req("x", Operator::Exists, &[])],
                false,
            ),
            (
                "doesnotexist",
                vec![req("x", Operator::DoesNotExist, &[])],
                true,
            ),
            (
                "all must hold",
                vec![
                    req("tier", Operator::In, &["web"]),
                    req("env", Operator::DoesNotExist, &[]),
                ],
                false,
            ),
        ];
        for (name, requirements, expected) in cases {
            assert_eq!(Selector { requirements }.matches(&l), expected, "{name}");
        }
    }
}
