//! Pure admission glue: AdmissionReview bytes in, AdmissionReview bytes out.
//!
//! The request envelope is read with the object kept as raw JSON, which is then decoded once
//! into its typed Kubernetes form; patches are built as targeted operations, so fields this
//! build does not know survive untouched. The response is written here rather than with
//! kube-core's `AdmissionResponse`, whose `patch` serialises as a number array instead of the
//! documented base64 (kube-rs#1781), and whose `invalid()` loses the uid.
//! No I/O; the caller passes the clock.

mod configmap;
mod response;
mod wire;

use std::collections::HashSet;

use serde_json::value::RawValue;

use crate::engine::{self, Question, Requester, Subject};
use crate::policy::PolicySet;
pub use crate::rules::Effort;
use crate::verdict::{self, Verdict};
use crate::workload::{self, Kind, Scope, Source, Workload, WorkloadError};

pub use crate::engine::Webhook;
pub use crate::verdict::Finding;
pub use response::{error_review, limit_warnings};

use response::{respond, response_size, status, to_json};
use wire::{RequestIn, ResponseOut, ReviewOut, V1, parse};

/// The caller sent something that is not an AdmissionReview (the server answers HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    /// Not JSON at all.
    #[error("body is not valid JSON: {0}")]
    Json(String),
    /// JSON, but not an AdmissionReview with a request.
    #[error("not an AdmissionReview: {0}")]
    NotReview(String),
}

/// What a review decided, for logs and metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// `request.uid`.
    pub uid: String,
    /// `request.kind.kind`.
    pub kind: String,
    /// `request.namespace`.
    pub namespace: String,
    /// `request.name` (empty with generateName).
    pub name: String,
    /// `request.operation`.
    pub operation: String,
    /// `request.subResource`.
    pub sub_resource: String,
    /// `request.userInfo.username`.
    pub user: String,
    /// `request.dryRun`.
    pub dry_run: bool,
    /// The answer.
    pub allowed: bool,
    /// 200 when allowed, else the status code sent (403 denied, 400 unreadable object).
    pub code: u16,
    /// Every violation, whatever its action.
    pub findings: Vec<Finding>,
    /// Number of patch operations sent.
    pub patch_ops: usize,
    /// Number of warnings sent.
    pub warnings: usize,
    /// True when the answer came from the policy set (the engine ran); false for answers that
    /// do not depend on it (skipped kinds and operations, unreadable objects, policy ConfigMaps).
    pub evaluated: bool,
    /// Reviewed with [`Effort::Inline`] and a rule fell short of that small budget: there is
    /// no answer (the body is empty); review again with [`Effort::Full`], which never sets it.
    pub cut: bool,
}

/// A review's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reviewed {
    /// The response AdmissionReview, JSON.
    pub body: Vec<u8>,
    /// What was decided.
    pub summary: Summary,
}

/// Answers one AdmissionReview for `webhook` with the policies of `set`.
pub fn review(
    set: &PolicySet,
    body: &[u8],
    webhook: Webhook,
    now: jiff::Timestamp,
) -> Result<Reviewed, ReviewError> {
    review_with(set, body, webhook, now, Effort::Full)
}

/// [`review`], with the rules' work bounded by `effort` (see [`Summary::cut`]).
pub fn review_with(
    set: &PolicySet,
    body: &[u8],
    webhook: Webhook,
    now: jiff::Timestamp,
    effort: Effort,
) -> Result<Reviewed, ReviewError> {
    let review = parse(body, webhook)?;
    let api_version = review.api_version.as_deref().unwrap_or(V1);
    let mut req = review.request.unwrap_or_default();
    let read_object = req.read_object.take();
    let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let decision = decide(set, &req, read_object, webhook, today, effort);
    let mut summary = summarize(&mut req);
    let mut response = ResponseOut::allowing(&req.uid);
    match decision {
        Decision::Cut => {
            summary.cut = true;
            return Ok(Reviewed {
                body: Vec::new(),
                summary,
            });
        }
        Decision::Skip => {}
        Decision::Invalid(message) => {
            response.allowed = false;
            response.status = Some(status(400, "BadRequest", message));
        }
        Decision::Refused(message) => {
            response.allowed = false;
            response.status = Some(status(422, "Invalid", message));
        }
        Decision::Evaluated(mut verdict, name) => {
            summary.evaluated = true;
            if summary.name.is_empty() {
                summary.name = name;
            }
            respond(&mut response, &mut verdict, &summary);
            summary.patch_ops = if response.patch.is_some() {
                verdict.patch.len()
            } else {
                0
            };
            summary.findings = verdict.findings;
        }
    }
    summary.allowed = response.allowed;
    summary.code = response.status.as_ref().map_or(200, |s| s.code);
    summary.warnings = response.warnings.len();
    let size = response_size(&response);
    let out = ReviewOut {
        api_version,
        kind: "AdmissionReview",
        response,
    };
    let body = match to_json(&out, size) {
        Ok(body) => body,
        // podgate's own answer failed to serialise: a server error, not the caller's.
        Err(e) => {
            summary.allowed = false;
            summary.code = 500;
            summary.patch_ops = 0;
            error_review(
                body,
                500,
                &format!("internal error: cannot write the answer: {e}"),
            )
        }
    };
    Ok(Reviewed { body, summary })
}

/// The summary of `req`, its strings moved out (all but the uid, which the answer echoes):
/// call it once the request has been decided.
fn summarize(req: &mut RequestIn<'_>) -> Summary {
    Summary {
        uid: req.uid.clone(),
        kind: req
            .kind
            .as_mut()
            .map(|k| std::mem::take(&mut k.kind))
            .unwrap_or_default(),
        namespace: req.namespace.take().unwrap_or_default(),
        name: req.name.take().unwrap_or_default(),
        operation: req.operation.take().unwrap_or_default(),
        sub_resource: req.sub_resource.take().unwrap_or_default(),
        user: req
            .user_info
            .as_mut()
            .map(|u| std::mem::take(&mut u.username))
            .unwrap_or_default(),
        dry_run: req.dry_run.unwrap_or(false),
        ..Summary::default()
    }
}

enum Decision {
    /// Not podgate's business (other kinds, DELETE, status updates, nodes' mirror pods...).
    Skip,
    /// The object cannot be read.
    Invalid(String),
    /// A podgate policy ConfigMap whose files do not load (422 Invalid).
    Refused(String),
    /// The engine ran; the object's name (or generateName) for messages and logs.
    Evaluated(Verdict, String),
    /// The engine ran with [`Effort::Inline`] and fell short: no answer.
    Cut,
}

fn decide(
    set: &PolicySet,
    req: &RequestIn<'_>,
    read_object: Option<Option<Result<Box<Workload>, WorkloadError>>>,
    webhook: Webhook,
    today: jiff::civil::Date,
    effort: Effort,
) -> Decision {
    let Some(gk) = &req.kind else {
        return Decision::Skip;
    };
    let operation = req.operation.as_deref().unwrap_or("");
    if gk.group.is_empty() && gk.kind == "ConfigMap" {
        if webhook == Webhook::Mutate {
            return Decision::Skip;
        }
        return match configmap::judge(
            operation,
            req.namespace.as_deref().unwrap_or(""),
            req.name.as_deref().unwrap_or(""),
            req.object,
            req.old_object,
        ) {
            configmap::Verdict::Skip | configmap::Verdict::Valid => Decision::Skip,
            configmap::Verdict::Unreadable(message) => Decision::Invalid(message),
            configmap::Verdict::Broken(message) => Decision::Refused(message),
        };
    }
    let Some(kind) = Kind::from_group_kind(&gk.group, &gk.kind) else {
        return Decision::Skip;
    };
    let sub = req.sub_resource.as_deref().unwrap_or("");
    let ephemeral_update = is_ephemeral_update(kind, operation, sub);
    if !is_evaluated(kind, operation, sub, webhook) {
        return Decision::Skip;
    }
    // Read inline by `FastRequestIn` (with this same kind), or from the raw text now.
    let read = match read_object {
        Some(read) => read,
        None => req.object.map(|object| {
            workload::read_scoped(kind, Source::Raw(object.get()), Scope::of(webhook)).map(Box::new)
        }),
    };
    let Some(read) = read else {
        return Decision::Invalid(format!(
            "{operation} request for a {} has no object",
            kind.as_str()
        ));
    };
    let w = match read {
        Ok(w) => w,
        Err(e) => return Decision::Invalid(e.to_string()),
    };
    let user = req.user_info.as_ref();
    let requester = Requester {
        username: user.map_or("", |u| u.username.as_str()),
        groups: user.map_or(&[], |u| u.groups.as_slice()),
    };
    // A static Pod's mirror is the kubelet's record of a Pod it already runs: nothing an
    // admission decision can change. Only a node can be that kubelet; from anyone else the
    // annotation is just one the user chose, and the Pod is judged like any other.
    if w.is_mirror_pod() && requester.is_node() {
        return Decision::Skip;
    }
    // An update that keeps the pod template (scaling, finalizer removal by the garbage
    // collector, status) creates no new Pod; judging it would let a tightened policy block
    // the controllers that clean up old objects.
    if kind != Kind::Pod && operation == "UPDATE" && same_template(&w, kind, req.old_object) {
        return Decision::Skip;
    }
    let new_ephemeral = if ephemeral_update {
        let new = new_ephemeral_indices(&w, req.old_object);
        if new.is_empty() {
            return Decision::Skip;
        }
        Some(new)
    } else {
        None
    };
    let mut subject = Subject::new(&w, req.namespace.as_deref(), requester);
    subject.new_ephemeral = new_ephemeral.as_deref();
    subject.effort = effort;
    let question = Question::Webhook(webhook);
    let evaluation = engine::evaluate(set, &subject, question, today);
    if evaluation.cut {
        return Decision::Cut;
    }
    Decision::Evaluated(
        verdict::decide(&evaluation, question),
        subject.name.to_string(),
    )
}

/// Since 1.22 `kubectl debug` sends the whole Pod as an UPDATE of this subresource.
fn is_ephemeral_update(kind: Kind, operation: &str, sub: &str) -> bool {
    kind == Kind::Pod && operation == "UPDATE" && sub == "ephemeralcontainers"
}

/// True for the requests `webhook` evaluates, judged from the envelope alone.
fn is_evaluated(kind: Kind, operation: &str, sub: &str, webhook: Webhook) -> bool {
    let ephemeral_update = is_ephemeral_update(kind, operation, sub);
    let evaluated = match kind {
        // A Pod's spec is immutable after create, except for ephemeral containers.
        Kind::Pod => (operation == "CREATE" && sub.is_empty()) || ephemeral_update,
        _ => matches!(operation, "CREATE" | "UPDATE") && sub.is_empty(),
    };
    evaluated && !(ephemeral_update && webhook == Webhook::Mutate)
}

/// The answer to a review that did not finish in time (`why` says what ran out), built from
/// the envelope alone, without decoding the object: the policies that may apply are those
/// whose namespaces match (their podSelector and exemptions need the object, so they count
/// as matching), and each one's action decides (`verdict::unfinished`). Requests podgate never
/// evaluates are allowed as usual.
pub(crate) fn unfinished(
    set: &PolicySet,
    body: &[u8],
    webhook: Webhook,
    why: &str,
) -> Result<Reviewed, ReviewError> {
    let review = wire::parse_envelope(body)?;
    let api_version = review.api_version.as_deref().unwrap_or(V1);
    let mut req = review.request.unwrap_or_default();
    let kind = req
        .kind
        .as_ref()
        .and_then(|gk| Kind::from_group_kind(&gk.group, &gk.kind));
    let operation = req.operation.as_deref().unwrap_or("");
    let sub = req.sub_resource.as_deref().unwrap_or("");
    let evaluated = kind.is_some_and(|k| is_evaluated(k, operation, sub, webhook));
    let namespace = req.namespace.as_deref().unwrap_or("default");
    let applicable: Vec<&crate::policy::Policy> = if evaluated {
        set.policies()
            .iter()
            .filter(|p| p.match_.may_match_namespace(namespace))
            .filter(|p| webhook == Webhook::Validate || !p.mutate.is_empty())
            .collect()
    } else {
        Vec::new()
    };
    let message = format!(
        "podgate could not finish checking this request: {why}; its rules were not checked"
    );
    let mut summary = summarize(&mut req);
    summary.evaluated = evaluated;
    let mut verdict = verdict::unfinished(&applicable, webhook, &message);
    let mut response = ResponseOut::allowing(&req.uid);
    respond(&mut response, &mut verdict, &summary);
    summary.findings = verdict.findings;
    summary.allowed = response.allowed;
    summary.code = response.status.as_ref().map_or(200, |s| s.code);
    summary.warnings = response.warnings.len();
    let body = serde_json::to_vec(&ReviewOut {
        api_version,
        kind: "AdmissionReview",
        response,
    })
    .map_err(|e| ReviewError::Json(e.to_string()))?;
    Ok(Reviewed { body, summary })
}

fn same_template(new: &Workload, kind: Kind, old: Option<&RawValue>) -> bool {
    old.and_then(|o| workload::read(kind, Source::Raw(o.get())).ok())
        .is_some_and(|old| old.spec == new.spec && old.labels == new.labels)
}

/// Indices of ephemeral containers in the new Pod whose names the old Pod lacks; with no
/// readable old Pod every ephemeral container is new.
fn new_ephemeral_indices(new: &Workload, old: Option<&RawValue>) -> Vec<usize> {
    let old_names: HashSet<String> = old
        .and_then(|o| workload::read(Kind::Pod, Source::Raw(o.get())).ok())
        .map(|o| {
            o.spec
                .ephemeral_containers
                .unwrap_or_default()
                .into_iter()
                .map(|c| c.name)
                .collect()
        })
        .unwrap_or_default();
    new.spec
        .ephemeral_containers
        .iter()
        .flatten()
        .enumerate()
        .filter(|(_, c)| !old_names.contains(&c.name))
        .map(|(i, _)| i)
        .collect()
}
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shipped() -> PolicySet {
        PolicySet::load_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"))
            .unwrap()
    }

    /// The body with `object` written first (read as raw text, then parsed) and last (read
    /// inline once `kind` is known).
    fn both_orders(request: &serde_json::Value) -> (String, String) {
        let map = request.as_object().unwrap();
        let field = |k: &str| format!("{}:{}", json!(k), map[k]);
        let others: Vec<String> = map
            .keys()
            .filter(|k| *k != "object")
            .map(|k| field(k))
            .collect();
        let object = if map.contains_key("object") {
            vec![field("object")]
        } else {
            vec![]
        };
        let first = [object.clone(), others.clone()].concat().join(",");
        let last = [others, object].concat().join(",");
        let wrap = |r: String| {
            format!(
                r#"{{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{{{r}}}}}"#
            )
        };
        (wrap(first), wrap(last))
    }

    #[test]
    fn reading_the_object_inline_answers_as_reading_it_raw() {
        let set = shipped();
        let now = jiff::Timestamp::from_second(1_795_000_000).unwrap();
        let pod = |spec: serde_json::Value| {
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "namespace": "ns", "labels": {"podgate.dev/inject-host-aliases": "true"},
                    "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {}}}]},
                "spec": spec, "status": {}})
        };
        let writes = json!({"containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", "echo 1.2.3.4 x >> /etc/hosts"]}]});
        let pull = json!({"containers": [{"name": "c", "image": "busybox:latest", "imagePullPolicy": "IfNotPresent"}], "hostPID": true, "hostNetwork": true});
        let base = |op: &str, group: &str, kind: &str, object: serde_json::Value| {
            json!({"uid": "u-1", "kind": {"group": group, "version": "v1", "kind": kind},
                "namespace": "ns", "operation": op,
                "userInfo": {"username": "alice", "groups": ["g"]},
                "object": object, "oldObject": null, "dryRun": false})
        };
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"selector": {}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": writes}}});
        let mut cases = vec![
            base("CREATE", "", "Pod", pod(writes.clone())),
            base("CREATE", "", "Pod", pod(pull.clone())),
            base("CREATE", "", "Pod", pod(json!({"containers": []}))),
            base("CREATE", "", "Pod", json!(null)),
            base("CREATE", "", "Pod", json!({"metadata": {}})),
            base("CREATE", "", "Pod", json!({"spec": {"containers": "nope"}})),
            base(
                "CREATE",
                "",
                "Pod",
                json!({"apiVersion": "v2", "spec": {"containers": []}}),
            ),
            base(
                "CREATE",
                "",
                "Pod",
                json!({"metadata": {"managedFields": [{"manager": 5}]}, "spec": {"containers": []}}),
            ),
            base("CREATE", "", "Pod", json!([1, 2])),
            base("CREATE", "", "Pod", json!("text")),
            base("DELETE", "", "Pod", pod(writes.clone())),
            base("CREATE", "apps", "Deployment", deployment.clone()),
            base("UPDATE", "apps", "Deployment", deployment),
            base("CREATE", "", "Service", json!({"spec": {}})),
        ];
        let mut no_object = base("CREATE", "", "Pod", json!(null));
        no_object.as_object_mut().unwrap().remove("object");
        cases.push(no_object);
        let mut sub = base("UPDATE", "", "Pod", pod(pull));
        sub["subResource"] = json!("ephemeralcontainers");
        cases.push(sub);
        for request in &cases {
            let (first, last) = both_orders(request);
            for webhook in [Webhook::Validate, Webhook::Mutate] {
                let raw = review(&set, first.as_bytes(), webhook, now);
                let inline = review(&set, last.as_bytes(), webhook, now);
                assert_eq!(inline, raw, "{webhook:?} {last}");
            }
        }
        // A duplicate field is refused as before.
        let dup = r#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"a","uid":"b"}}"#;
        assert!(matches!(
            review(&set, dup.as_bytes(), Webhook::Validate, now),
            Err(ReviewError::NotReview(m)) if m.contains("duplicate field `uid`")
        ));
    }
}
