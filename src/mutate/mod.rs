//! Mutations: edit a typed working copy of the pod spec and emit the JSON Patch operations
//! that make the same edit on the raw object.
//!
//! Operations are emitted against the state the previous operations left (JSON Patch applies
//! them in order), touch only the fields they mean to change, and follow evanphx/json-patch v4
//! rules: an `add` needs its parent, so a missing list is added whole. Raw fields that
//! k8s-openapi does not know are never rewritten, because no operation replaces a parent.

pub mod host_aliases;
pub mod pull_policy;

use json_patch::PatchOperation;
use k8s_openapi::api::core::v1::{HostAlias, PodSpec};

use crate::policy::PullPolicy;
use crate::rules::Violation;

/// What one mutation did to the working copy.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Mutation {
    /// JSON Patch operations, in order.
    pub ops: Vec<PatchOperation>,
    /// One line per change made, for `podgate check` and audit annotations.
    pub changes: Vec<String>,
    /// Things the user should hear about (admission warnings under Enforce and Warn).
    pub notes: Vec<String>,
    /// Conflicts that a policy turned into violations (`onConflict: Deny`).
    pub violations: Vec<Violation>,
}

/// Appends `s` as `{s:?}` writes it, without the formatting machinery when nothing in it
/// needs escaping (printable ASCII other than `"` and `\\`, as image names and tags are).
pub(crate) fn push_quoted(out: &mut String, s: &str) {
    if s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        out.reserve(s.len() + 2);
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        use std::fmt::Write as _;
        let _ = write!(out, "{s:?}");
    }
}

/// The mutations' working copy of a pod spec: the spec as received, read-only, with the only
/// fields a mutation edits (the containers' `imagePullPolicy`, `hostAliases`) kept apart once
/// edited. Planning thus copies nothing the mutations leave alone, where a copy of the whole
/// spec on the first edit (and its drop) cost more than the mutations themselves.
#[derive(Debug, Clone)]
pub(crate) struct Working<'s> {
    spec: &'s PodSpec,
    /// The pull policies set so far: (is an init container, index, value); a few at most.
    pull: Vec<(bool, usize, PullPolicy)>,
    /// `hostAliases` once a mutation has edited it.
    host_aliases: Option<Option<Vec<HostAlias>>>,
}

impl<'s> Working<'s> {
    /// The working copy of `spec`, unedited.
    pub(crate) fn new(spec: &'s PodSpec) -> Working<'s> {
        Working {
            spec,
            pull: Vec::new(),
            host_aliases: None,
        }
    }

    /// The spec as received: right for every field but those the edits below change.
    pub(crate) fn received(&self) -> &'s PodSpec {
        self.spec
    }

    /// The `imagePullPolicy` of the container at `index` of `initContainers` (`init`) or
    /// `containers`, as edited so far.
    pub(crate) fn pull_policy(&self, init: bool, index: usize) -> Option<&'s str> {
        if let Some((_, _, set)) = self.pull.iter().find(|(i, n, _)| *i == init && *n == index) {
            return Some(set.as_str());
        }
        let list = if init {
            self.spec.init_containers.as_deref().unwrap_or(&[])
        } else {
            &self.spec.containers
        };
        list.get(index)?.image_pull_policy.as_deref()
    }

    /// Sets the `imagePullPolicy` of a container (see [`Working::pull_policy`]).
    pub(crate) fn set_pull_policy(&mut self, init: bool, index: usize, value: PullPolicy) {
        match self
            .pull
            .iter_mut()
            .find(|(i, n, _)| *i == init && *n == index)
        {
            Some(entry) => entry.2 = value,
            None => self.pull.push((init, index, value)),
        }
    }

    /// `hostAliases`, as edited so far.
    pub(crate) fn host_aliases(&self) -> Option<&[HostAlias]> {
        match &self.host_aliases {
            Some(edited) => edited.as_deref(),
            None => self.spec.host_aliases.as_deref(),
        }
    }

    /// `hostAliases` to edit (copied from the spec on the first edit).
    pub(crate) fn host_aliases_mut(&mut self) -> &mut Option<Vec<HostAlias>> {
        self.host_aliases
            .get_or_insert_with(|| self.spec.host_aliases.clone())
    }

    /// The edited spec in full (tests compare it with the patched object).
    #[cfg(test)]
    pub(crate) fn to_spec(&self) -> PodSpec {
        let mut spec = self.spec.clone();
        for &(init, index, value) in &self.pull {
            let list = if init {
                spec.init_containers.as_deref_mut().unwrap_or(&mut [])
            } else {
                &mut spec.containers
            };
            if let Some(c) = list.get_mut(index) {
                c.image_pull_policy = Some(value.as_str().to_string());
            }
        }
        if let Some(aliases) = &self.host_aliases {
            spec.host_aliases = aliases.clone();
        }
        spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Container;

    fn container(name: &str, policy: Option<&str>) -> Container {
        Container {
            name: name.into(),
            image_pull_policy: policy.map(String::from),
            ..Container::default()
        }
    }

    #[test]
    fn push_quoted_is_debug() {
        for s in [
            "",
            "nginx:latest",
            "a\"b",
            "a\\b",
            "tab\t",
            "nl\n",
            "\u{7f}",
            "\u{1}",
            "é",
            "日本",
            "\u{200b}",
            "\u{301}x",
            "it's",
            "~!@#$%^&*()_+{}|:<>?`-=[];,./",
        ] {
            let mut out = String::from("x");
            push_quoted(&mut out, s);
            assert_eq!(out, format!("x{s:?}"), "{s:?}");
        }
    }

    #[test]
    fn working_copy_reads_its_edits_and_leaves_the_spec_alone() {
        let spec = PodSpec {
            containers: vec![container("a", Some("IfNotPresent")), container("b", None)],
            init_containers: Some(vec![container("i", Some("Never"))]),
            host_aliases: Some(vec![HostAlias {
                ip: "10.0.0.1".into(),
                hostnames: Some(vec!["x".into()]),
            }]),
            ..PodSpec::default()
        };
        let mut w = Working::new(&spec);
        assert_eq!(w.pull_policy(false, 0), Some("IfNotPresent"));
        assert_eq!(w.pull_policy(false, 1), None);
        assert_eq!(w.pull_policy(true, 0), Some("Never"));
        assert_eq!(w.pull_policy(true, 1), None);
        assert_eq!(w.pull_policy(false, 2), None);
        w.set_pull_policy(false, 1, PullPolicy::Always);
        w.set_pull_policy(true, 0, PullPolicy::IfNotPresent);
        w.set_pull_policy(true, 0, PullPolicy::Always);
        assert_eq!(w.pull_policy(false, 0), Some("IfNotPresent"));
        assert_eq!(w.pull_policy(false, 1), Some("Always"));
        assert_eq!(w.pull_policy(true, 0), Some("Always"));
        assert_eq!(w.host_aliases(), spec.host_aliases.as_deref());
        w.host_aliases_mut()
            .get_or_insert_with(Vec::new)
            .push(HostAlias {
                ip: "10.0.0.2".into(),
                hostnames: None,
            });
        assert_eq!(w.host_aliases().map(<[_]>::len), Some(2));
        // A copy edits apart from its original.
        let mut scratch = w.clone();
        *scratch.host_aliases_mut() = None;
        assert_eq!(scratch.host_aliases(), None);
        assert_eq!(w.host_aliases().map(<[_]>::len), Some(2));
        let edited = w.to_spec();
        assert_eq!(
            edited.containers[1].image_pull_policy.as_deref(),
            Some("Always")
        );
        assert_eq!(
            edited.init_containers.as_ref().unwrap()[0]
                .image_pull_policy
                .as_deref(),
            Some("Always")
        );
        assert_eq!(edited.host_aliases.as_ref().map(Vec::len), Some(2));
        // The received spec is untouched.
        assert_eq!(spec.containers[1].image_pull_policy, None);
        assert_eq!(spec.host_aliases.as_ref().map(Vec::len), Some(1));
    }
}
