//! `mutate.imagePullPolicy`: images with a mutable tag are pulled with the policy's value.
//!
//! The tag is found exactly as the apiserver's defaulting finds it (`parsers.ParseImageName`):
//! an untagged, undigested image is `latest`; a digest-only image has no tag and is pinned.

use json_patch::{AddOperation, PatchOperation, ReplaceOperation};
use serde_json::Value;

use super::{Mutation, Working, push_quoted};
use crate::image;
use crate::policy::PullPolicyMutation;
use crate::workload::SpecLocation;

/// Sets `imagePullPolicy` on containers and init containers whose image tag is mutable: an
/// absent value is set, a value listed in `replace` is replaced (with a note naming the
/// container), any other value is kept. Ephemeral containers are left alone: they cannot be
/// set on create, and a Pod's spec is immutable afterwards.
pub(crate) fn apply(
    spec: &mut Working<'_>,
    at: SpecLocation,
    params: &PullPolicyMutation,
) -> Mutation {
    let mut out = Mutation::default();
    let wanted = params.set.as_str();
    let received = spec.received();
    let lists = [
        (true, "initContainers", received.init_containers.as_deref()),
        (false, "containers", Some(received.containers.as_slice())),
    ];
    for (init, field, list) in lists {
        for (index, c) in list.into_iter().flatten().enumerate() {
            let Some(img) = c.image.as_deref() else {
                continue;
            };
            // Only an absent policy or one listed in `replace` can change, whatever the tag:
            // skip the others before parsing the image (the costliest step here).
            let current = spec.pull_policy(init, index);
            if let Some(current) = current
                && (current == wanted || !params.replace.iter().any(|p| p.as_str() == current))
            {
                continue;
            }
            // An explicit tag that is not mutable: nothing to do, valid reference or not.
            if let Some(tag) = literal_tag(img)
                && !params.mutable_tags.iter().any(|t| t == tag)
            {
                continue;
            }
            // An unparseable image fails at the kubelet anyway; it is not ours to judge here.
            if !image::accepts(img) {
                continue;
            }
            let Some(tag) = effective_tag(img) else {
                continue;
            };
            if !params.mutable_tags.iter().any(|t| t == tag) {
                continue;
            }
            let index_token = index.to_string();
            let path = at.pointer_to(&[field, &index_token, "imagePullPolicy"]);
            let value = Value::String(wanted.to_string());
            let mut change =
                String::with_capacity(64 + at.path.len() + field.len() + img.len() + tag.len());
            // "set {field path} to {wanted} (...)" or "replaced {field path} {current} with
            // {wanted} (...)", the field path being "{at.path}.{field}[{index}].imagePullPolicy".
            change.push_str(if current.is_none() {
                "set "
            } else {
                "replaced "
            });
            change.push_str(at.path);
            change.push('.');
            change.push_str(field);
            change.push('[');
            change.push_str(&index_token);
            change.push_str("].imagePullPolicy");
            match current {
                None => {
                    out.ops
                        .push(PatchOperation::Add(AddOperation { path, value }));
                    change.push_str(" to ");
                }
                Some(current) => {
                    out.ops
                        .push(PatchOperation::Replace(ReplaceOperation { path, value }));
                    change.push(' ');
                    change.push_str(current);
                    change.push_str(" with ");
                    // "container {name:?}: imagePullPolicy {current} replaced by {wanted}
                    // because image {img:?} uses the mutable tag {tag:?}"
                    let mut note = String::with_capacity(
                        96 + c.name.len() + current.len() + wanted.len() + img.len() + tag.len(),
                    );
                    note.push_str("container ");
                    push_quoted(&mut note, &c.name);
                    note.push_str(": imagePullPolicy ");
                    note.push_str(current);
                    note.push_str(" replaced by ");
                    note.push_str(wanted);
                    note.push_str(" because image ");
                    push_quoted(&mut note, img);
                    note.push_str(" uses the mutable tag ");
                    push_quoted(&mut note, tag);
                    out.notes.push(note);
                }
            }
            change.push_str(wanted);
            change.push_str(" (image ");
            push_quoted(&mut change, img);
            change.push_str(" has mutable tag ");
            push_quoted(&mut change, tag);
            change.push(')');
            out.changes.push(change);
            spec.set_pull_policy(init, index, params.set);
        }
    }
    out
}

/// `ImageRef::effective_tag` of a reference that `image::accepts`, without parsing it: the
/// literal tag; none when there is a digest (an `@`) but no tag; else `latest`.
fn effective_tag(image: &str) -> Option<&str> {
    match literal_tag(image) {
        Some(tag) => Some(tag),
        None if image.contains('@') => None,
        None => Some(image::DEFAULT_TAG),
    }
}

/// The tag written in `image`, if any, found without the reference grammar: the text after
/// the `:` in the last path component, before any `@digest`. For every reference that
/// `image::parse` accepts this is the tag it finds (a registry port is always followed by a
/// `/`, and path components and tags contain neither `:` nor `@`); for the references it
/// refuses the caller does nothing either way.
fn literal_tag(image: &str) -> Option<&str> {
    let name = image.split('@').next().unwrap_or(image);
    let last = name.rsplit('/').next().unwrap_or(name);
    last.split_once(':').map(|(_, tag)| tag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PullPolicy;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    /// `apply` on an owned spec, edited in place.
    fn apply(spec: &mut PodSpec, at: SpecLocation, params: &PullPolicyMutation) -> Mutation {
        let mut working = Working::new(spec);
        let m = super::apply(&mut working, at, params);
        *spec = working.to_spec();
        m
    }

    fn params() -> PullPolicyMutation {
        PullPolicyMutation {
            mutable_tags: vec!["latest".into()],
            set: PullPolicy::Always,
            replace: vec![PullPolicy::IfNotPresent],
        }
    }

    fn spec(image: &str, policy: Option<&str>) -> PodSpec {
        PodSpec {
            containers: vec![Container {
                name: "app".into(),
                image: Some(image.into()),
                image_pull_policy: policy.map(String::from),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn ops_json(m: &Mutation) -> String {
        serde_json::to_string(&m.ops).unwrap()
    }

    #[test]
    fn pull_policy_cases() {
        let add = r#"[{"op":"add","path":"/spec/containers/0/imagePullPolicy","value":"Always"}]"#;
        let replace =
            r#"[{"op":"replace","path":"/spec/containers/0/imagePullPolicy","value":"Always"}]"#;
        let cases = [
            ("untagged, absent", "nginx", None, add, false),
            ("latest, absent", "nginx:latest", None, add, false),
            (
                "registry with port, untagged",
                "registry:5000/team/app",
                None,
                add,
                false,
            ),
            (
                "latest IfNotPresent replaced with warning",
                "nginx:latest",
                Some("IfNotPresent"),
                replace,
                true,
            ),
            (
                "latest Never kept",
                "nginx:latest",
                Some("Never"),
                "[]",
                false,
            ),
            (
                "latest Always untouched",
                "nginx:latest",
                Some("Always"),
                "[]",
                false,
            ),
            (
                "pinned tag",
                "nginx:1.27",
                Some("IfNotPresent"),
                "[]",
                false,
            ),
            ("tags are case-sensitive", "nginx:LATEST", None, "[]", false),
            (
                "digest only is pinned",
                "nginx@sha256:0123456789012345678901234567890123456789012345678901234567890123",
                None,
                "[]",
                false,
            ),
            (
                "latest with digest still has tag latest",
                "nginx:latest@sha256:0123456789012345678901234567890123456789012345678901234567890123",
                None,
                add,
                false,
            ),
        ];
        for (name, img, policy, expected, warns) in cases {
            let mut s = spec(img, policy);
            let m = apply(&mut s, SpecLocation::POD, &params());
            assert_eq!(ops_json(&m), expected, "{name}");
            assert_eq!(!m.notes.is_empty(), warns, "{name}: {:?}", m.notes);
            if warns {
                assert!(m.notes[0].contains("container \"app\""), "{name}");
            }
        }
    }

    #[test]
    fn second_run_yields_nothing_and_templates_use_their_pointer() {
        let at = SpecLocation {
            pointer: &["spec", "template", "spec"],
            path: "spec.template.spec",
        };
        let mut s = spec("nginx", Some("IfNotPresent"));
        let first = apply(&mut s, at, &params());
        assert_eq!(
            first.ops[0].path().to_string(),
            "/spec/template/spec/containers/0/imagePullPolicy"
        );
        assert!(apply(&mut s, at, &params()).ops.is_empty());
    }

    #[test]
    fn changes_name_the_field_path_and_the_image() {
        let at = SpecLocation {
            pointer: &["spec", "template", "spec"],
            path: "spec.template.spec",
        };
        let mut s = spec("nginx", None);
        s.init_containers = Some(vec![Container {
            name: "init".into(),
            image: Some("busybox:latest".into()),
            image_pull_policy: Some("IfNotPresent".into()),
            ..Default::default()
        }]);
        s.containers.push(Container {
            name: "q\"uote".into(),
            image: Some("reg:5000/a/b".into()),
            image_pull_policy: Some("IfNotPresent".into()),
            ..Default::default()
        });
        let m = apply(&mut s, at, &params());
        assert_eq!(
            m.changes,
            [
                r#"replaced spec.template.spec.initContainers[0].imagePullPolicy IfNotPresent with Always (image "busybox:latest" has mutable tag "latest")"#,
                r#"set spec.template.spec.containers[0].imagePullPolicy to Always (image "nginx" has mutable tag "latest")"#,
                r#"replaced spec.template.spec.containers[1].imagePullPolicy IfNotPresent with Always (image "reg:5000/a/b" has mutable tag "latest")"#,
            ]
        );
        assert_eq!(
            m.notes,
            [
                r#"container "init": imagePullPolicy IfNotPresent replaced by Always because image "busybox:latest" uses the mutable tag "latest""#,
                r#"container "q\"uote": imagePullPolicy IfNotPresent replaced by Always because image "reg:5000/a/b" uses the mutable tag "latest""#,
            ]
        );
        assert_eq!(
            ops_json(&m),
            r#"[{"op":"replace","path":"/spec/template/spec/initContainers/0/imagePullPolicy","value":"Always"},{"op":"add","path":"/spec/template/spec/containers/0/imagePullPolicy","value":"Always"},{"op":"replace","path":"/spec/template/spec/containers/1/imagePullPolicy","value":"Always"}]"#
        );
        // The working copy carries the edits.
        assert_eq!(s.containers[1].image_pull_policy.as_deref(), Some("Always"));
        assert!(apply(&mut s, at, &params()).ops.is_empty());
    }

    #[test]
    fn init_containers_are_mutated_too() {
        let mut s = spec("nginx:1.0", None);
        s.init_containers = Some(vec![Container {
            name: "init".into(),
            image: Some("busybox".into()),
            ..Default::default()
        }]);
        let m = apply(&mut s, SpecLocation::POD, &params());
        assert_eq!(
            ops_json(&m),
            r#"[{"op":"add","path":"/spec/initContainers/0/imagePullPolicy","value":"Always"}]"#
        );
    }

    #[test]
    fn literal_tag_is_the_parsed_tag_for_every_valid_reference() {
        let digest = "sha256:0123456789012345678901234567890123456789012345678901234567890123";
        let refs = [
            "nginx".to_string(),
            "nginx:latest".into(),
            "nginx:LATEST".into(),
            "library/nginx:1.27".into(),
            "docker.io/library/nginx:1.27-alpine".into(),
            "index.docker.io/nginx".into(),
            "registry:5000/team/app".into(),
            "registry:5000/team/app:v1".into(),
            "localhost/app:dev".into(),
            "localhost:5000/app".into(),
            "localhost:5000".into(),
            "[::1]:5000/app:tag".into(),
            "ghcr.io/org/sub/app:1.0.0_rc.1".into(),
            format!("app@{digest}"),
            format!("app:latest@{digest}"),
            format!("registry:5000/app@{digest}"),
            format!("registry:5000/app:v2@{digest}"),
            "app:".into(),
            "app:@x".into(),
            "App:1".into(),
            ":tag".into(),
            "a/b:c:d".into(),
            "a@b/c:d".into(),
            "".into(),
        ];
        for r in &refs {
            if let Ok(parsed) = image::parse(r) {
                assert_eq!(literal_tag(r), parsed.tag.as_deref(), "{r}");
                assert_eq!(effective_tag(r), parsed.effective_tag(), "{r}");
            }
        }
    }
}
