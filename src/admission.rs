//! Pure admission glue: AdmissionReview bytes in, AdmissionReview bytes out.
//!
//! The request envelope is read with the object kept as raw JSON, which is then decoded once
//! into its typed Kubernetes form; patches are built as targeted operations, so fields this
//! build does not know survive untouched. The response is written here rather than with
//! kube-core's `AdmissionResponse`, whose `patch` serialises as a number array instead of the
//! documented base64 (kube-rs#1781), and whose `invalid()` loses the uid.
//! No I/O; the caller passes the clock.

use std::collections::{BTreeMap, HashSet};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::engine::{self, Mode, Outcome, Requester, Subject};
use crate::policy::{Action, PolicySet};
use crate::workload::{self, Kind, Source, Workload, WorkloadError};

pub use crate::engine::Finding;

const V1: &str = "admission.k8s.io/v1";
const V1BETA1: &str = "admission.k8s.io/v1beta1";
/// Admission warnings longer than this are truncated by the apiserver; we cut them first.
const MAX_WARNING_CHARS: usize = 256;
/// The apiserver truncates every warning once they add up to more than this.
const MAX_WARNINGS_TOTAL: usize = 4096;

/// Which webhook endpoint is answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Webhook {
    /// `/validate`: never patches.
    Validate,
    /// `/mutate`: may patch.
    Mutate,
}

impl Webhook {
    /// `validate` or `mutate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Webhook::Validate => "validate",
            Webhook::Mutate => "mutate",
        }
    }
}

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
}

/// A review's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reviewed {
    /// The response AdmissionReview, JSON.
    pub body: Vec<u8>,
    /// What was decided.
    pub summary: Summary,
    /// The engine's full outcome (none when the request was not evaluated).
    pub outcome: Option<Outcome>,
}

#[derive(Deserialize)]
struct ReviewIn<'a> {
    #[serde(rename = "apiVersion", default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(borrow, default)]
    request: Option<RequestIn<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RequestIn<'a> {
    uid: String,
    #[serde(default)]
    kind: Option<GroupKind>,
    #[serde(default)]
    sub_resource: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    operation: Option<String>,
    #[serde(default)]
    user_info: Option<UserInfoIn>,
    #[serde(borrow, default)]
    object: Option<&'a RawValue>,
    #[serde(borrow, default)]
    old_object: Option<&'a RawValue>,
    /// The object as `FastRequestIn` read it (`None` inside for `null`); when set, `object`
    /// is unset and unread.
    #[serde(skip)]
    read_object: Option<Option<Result<Workload, WorkloadError>>>,
    #[serde(default)]
    dry_run: Option<bool>,
}

#[derive(Deserialize, Default)]
struct GroupKind {
    #[serde(default)]
    group: String,
    #[serde(default)]
    kind: String,
}

#[derive(Deserialize, Default)]
struct UserInfoIn {
    #[serde(default)]
    username: String,
    #[serde(default)]
    groups: Vec<String>,
}

/// `ReviewIn` read in one pass: `request.object` is decoded straight into its workload when
/// `request.kind` came before it (as the apiserver writes it), instead of being scanned as
/// raw text and parsed again. Anything this reader does not take exactly as `ReviewIn` would
/// (a duplicate field, a request written as an array, an object that does not parse) is an
/// error, and `parse` then reads the body with `ReviewIn`, so answers never differ.
#[derive(Deserialize)]
struct FastReviewIn<'a> {
    #[serde(rename = "apiVersion", default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(borrow, default)]
    request: Option<FastRequestIn<'a>>,
}

struct FastRequestIn<'a>(RequestIn<'a>);

const REQUEST_FIELDS: &[&str] = &[
    "uid",
    "kind",
    "subResource",
    "name",
    "namespace",
    "operation",
    "userInfo",
    "object",
    "oldObject",
    "dryRun",
];

impl<'de: 'a, 'a> Deserialize<'de> for FastRequestIn<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{self, IgnoredAny, MapAccess, Visitor};

        struct Key;
        impl<'de> de::DeserializeSeed<'de> for Key {
            type Value = usize;
            fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
                d.deserialize_identifier(Key)
            }
        }
        impl Visitor<'_> for Key {
            type Value = usize;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("field identifier")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<usize, E> {
                Ok(REQUEST_FIELDS
                    .iter()
                    .position(|n| *n == v)
                    .unwrap_or(REQUEST_FIELDS.len()))
            }
        }

        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = FastRequestIn<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("struct RequestIn")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut r = RequestIn::default();
                let mut seen = [false; 10];
                while let Some(i) = map.next_key_seed(Key)? {
                    if let Some(s) = seen.get_mut(i) {
                        if *s {
                            return Err(de::Error::duplicate_field(
                                REQUEST_FIELDS.get(i).copied().unwrap_or(""),
                            ));
                        }
                        *s = true;
                    }
                    match i {
                        0 => r.uid = map.next_value()?,
                        1 => r.kind = map.next_value()?,
                        2 => r.sub_resource = map.next_value()?,
                        3 => r.name = map.next_value()?,
                        4 => r.namespace = map.next_value()?,
                        5 => r.operation = map.next_value()?,
                        6 => r.user_info = map.next_value()?,
                        7 => {
                            let kind = r
                                .kind
                                .as_ref()
                                .and_then(|gk| Kind::from_group_kind(&gk.group, &gk.kind));
                            match kind {
                                Some(k) => {
                                    r.read_object =
                                        Some(map.next_value_seed(workload::ObjectSeed(k))?)
                                }
                                None => r.object = map.next_value()?,
                            }
                        }
                        8 => r.old_object = map.next_value()?,
                        9 => r.dry_run = map.next_value()?,
                        _ => {
                            let _: IgnoredAny = map.next_value()?;
                        }
                    }
                }
                if !seen[0] {
                    return Err(de::Error::missing_field("uid"));
                }
                Ok(FastRequestIn(r))
            }
        }
        d.deserialize_struct("RequestIn", REQUEST_FIELDS, V(std::marker::PhantomData))
    }
}

#[derive(Serialize)]
struct ReviewOut<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    kind: &'static str,
    response: ResponseOut<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseOut<'a> {
    uid: &'a str,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<StatusOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    audit_annotations: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

#[derive(Serialize)]
struct StatusOut {
    metadata: BTreeMap<String, String>,
    status: &'static str,
    message: String,
    reason: &'static str,
    code: u16,
}

/// Answers one AdmissionReview for `webhook` with the policies of `set`.
pub fn review(
    set: &PolicySet,
    body: &[u8],
    webhook: Webhook,
    now: jiff::Timestamp,
) -> Result<Reviewed, ReviewError> {
    let review = parse(body)?;
    let api_version = review.api_version.as_deref().unwrap_or(V1);
    let mut req = review.request.unwrap_or_default();
    let read_object = req.read_object.take();
    let mut summary = summarize(&req);
    let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let decision = decide(set, &req, read_object, webhook, today);
    let mut response = ResponseOut {
        uid: &req.uid,
        allowed: true,
        status: None,
        patch_type: None,
        patch: None,
        audit_annotations: BTreeMap::new(),
        warnings: Vec::new(),
    };
    let outcome = match decision {
        Decision::Skip => None,
        Decision::Invalid(message) => {
            response.allowed = false;
            response.status = Some(status(400, "BadRequest", message));
            None
        }
        Decision::Evaluated(outcome, name) => {
            if summary.name.is_empty() {
                summary.name = name;
            }
            respond(&mut response, &outcome, webhook, &summary);
            Some(outcome)
        }
    };
    summary.allowed = response.allowed;
    summary.code = response.status.as_ref().map_or(200, |s| s.code);
    summary.warnings = response.warnings.len();
    summary.findings = outcome
        .as_ref()
        .map(|o| o.findings.clone())
        .unwrap_or_default();
    summary.patch_ops = match (&outcome, &response.patch) {
        (Some(o), Some(_)) => o.ops.len(),
        _ => 0,
    };
    let body = serde_json::to_vec(&ReviewOut {
        api_version,
        kind: "AdmissionReview",
        response,
    })
    .map_err(|e| ReviewError::Json(e.to_string()))?;
    Ok(Reviewed {
        body,
        summary,
        outcome,
    })
}

/// An `allowed: false` answer with `code` and `message`, echoing the request's uid and
/// apiVersion when they can be read (used for caught panics and server-side errors).
pub fn error_review(body: &[u8], code: u16, message: &str) -> Vec<u8> {
    #[derive(Deserialize)]
    struct Ids {
        #[serde(rename = "apiVersion", default)]
        api_version: Option<String>,
        #[serde(default)]
        request: Option<Uid>,
    }
    #[derive(Deserialize)]
    struct Uid {
        #[serde(default)]
        uid: String,
    }
    let ids = serde_json::from_slice::<Ids>(body).ok();
    let api_version = ids
        .as_ref()
        .and_then(|i| i.api_version.as_deref())
        .filter(|v| *v == V1 || *v == V1BETA1)
        .unwrap_or(V1);
    let uid = ids
        .as_ref()
        .and_then(|i| i.request.as_ref())
        .map_or("", |r| r.uid.as_str());
    let reason = if code >= 500 {
        "InternalError"
    } else {
        "BadRequest"
    };
    let out = ReviewOut {
        api_version,
        kind: "AdmissionReview",
        response: ResponseOut {
            uid,
            allowed: false,
            status: Some(status(code, reason, message.to_string())),
            patch_type: None,
            patch: None,
            audit_annotations: BTreeMap::new(),
            warnings: Vec::new(),
        },
    };
    serde_json::to_vec(&out).unwrap_or_default()
}

fn parse(body: &[u8]) -> Result<ReviewIn<'_>, ReviewError> {
    let review: ReviewIn<'_> = match serde_json::from_slice::<FastReviewIn<'_>>(body) {
        Ok(r) => ReviewIn {
            api_version: r.api_version,
            kind: r.kind,
            request: r.request.map(|r| r.0),
        },
        Err(_) => match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) if e.is_syntax() || e.is_eof() => {
                return Err(ReviewError::Json(e.to_string()));
            }
            Err(e) => return Err(ReviewError::NotReview(e.to_string())),
        },
    };
    match review.api_version.as_deref() {
        Some(V1) | Some(V1BETA1) => {}
        Some(other) => {
            return Err(ReviewError::NotReview(format!(
                "apiVersion {other:?} is not {V1} or {V1BETA1}"
            )));
        }
        None => return Err(ReviewError::NotReview("apiVersion is missing".into())),
    }
    if review.kind.as_deref() != Some("AdmissionReview") {
        return Err(ReviewError::NotReview(format!(
            "kind is {:?}, not \"AdmissionReview\"",
            review.kind.as_deref().unwrap_or("")
        )));
    }
    match &review.request {
        None => Err(ReviewError::NotReview("request is missing".into())),
        Some(r) if r.uid.is_empty() => Err(ReviewError::NotReview("request.uid is empty".into())),
        Some(_) => Ok(review),
    }
}

fn summarize(req: &RequestIn<'_>) -> Summary {
    Summary {
        uid: req.uid.clone(),
        kind: req
            .kind
            .as_ref()
            .map(|k| k.kind.clone())
            .unwrap_or_default(),
        namespace: req.namespace.clone().unwrap_or_default(),
        name: req.name.clone().unwrap_or_default(),
        operation: req.operation.clone().unwrap_or_default(),
        sub_resource: req.sub_resource.clone().unwrap_or_default(),
        user: req
            .user_info
            .as_ref()
            .map(|u| u.username.clone())
            .unwrap_or_default(),
        dry_run: req.dry_run.unwrap_or(false),
        ..Summary::default()
    }
}

enum Decision {
    /// Not podgate's business (other kinds, DELETE, status updates, mirror pods...).
    Skip,
    /// The object cannot be read.
    Invalid(String),
    /// The engine ran; the object's name (or generateName) for messages and logs.
    Evaluated(Outcome, String),
}

fn decide(
    set: &PolicySet,
    req: &RequestIn<'_>,
    read_object: Option<Option<Result<Workload, WorkloadError>>>,
    webhook: Webhook,
    today: jiff::civil::Date,
) -> Decision {
    let Some(gk) = &req.kind else {
        return Decision::Skip;
    };
    let Some(kind) = Kind::from_group_kind(&gk.group, &gk.kind) else {
        return Decision::Skip;
    };
    let operation = req.operation.as_deref().unwrap_or("");
    let sub = req.sub_resource.as_deref().unwrap_or("");
    // Since 1.22 `kubectl debug` sends the whole Pod as an UPDATE of this subresource.
    let ephemeral_update =
        kind == Kind::Pod && operation == "UPDATE" && sub == "ephemeralcontainers";
    let evaluated = match kind {
        // A Pod's spec is immutable after create, except for ephemeral containers.
        Kind::Pod => (operation == "CREATE" && sub.is_empty()) || ephemeral_update,
        _ => matches!(operation, "CREATE" | "UPDATE") && sub.is_empty(),
    };
    if !evaluated || (ephemeral_update && webhook == Webhook::Mutate) {
        return Decision::Skip;
    }
    // Read inline by `FastRequestIn` (with this same kind), or from the raw text now.
    let read = match read_object {
        Some(read) => read,
        None => req
            .object
            .map(|object| workload::read(kind, Source::Raw(object.get()))),
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
    if w.is_mirror_pod() {
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
    let user = req.user_info.as_ref();
    let namespace = req
        .namespace
        .as_deref()
        .or(w.metadata.namespace.as_deref())
        .unwrap_or("default");
    let subject = Subject {
        workload: &w,
        namespace,
        requester: Requester {
            username: user.map_or("", |u| u.username.as_str()),
            groups: user.map_or(&[], |u| u.groups.as_slice()),
        },
        new_ephemeral: new_ephemeral.as_deref(),
    };
    let mode = match webhook {
        Webhook::Validate => Mode::Validate,
        Webhook::Mutate => Mode::Mutate,
    };
    let name = w
        .metadata
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .or_else(|| w.metadata.generate_name.clone())
        .unwrap_or_default();
    Decision::Evaluated(engine::evaluate(set, &subject, mode, today), name)
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

fn respond(response: &mut ResponseOut<'_>, outcome: &Outcome, webhook: Webhook, summary: &Summary) {
    let mut warnings: Vec<String> = outcome
        .findings
        .iter()
        .filter(|f| f.action == Action::Warn)
        .map(|f| format!("[{}] {}", f.policy, f.message))
        .collect();
    if webhook == Webhook::Mutate {
        warnings.extend(outcome.notes.iter().cloned());
    }
    response.warnings = limit_warnings(warnings);
    response.audit_annotations = outcome.audit.clone();
    if !outcome.exempted.is_empty() {
        let text: Vec<String> = outcome
            .exempted
            .iter()
            .map(|(policy, reason)| format!("{policy}: {reason}"))
            .collect();
        response
            .audit_annotations
            .insert("exempted".into(), text.join("; "));
    }
    if outcome.denied() {
        response.allowed = false;
        response.status = Some(status(403, "Forbidden", denial_message(outcome, summary)));
        return;
    }
    if webhook == Webhook::Mutate
        && !outcome.ops.is_empty()
        && let Ok(json) = serde_json::to_vec(&outcome.ops)
    {
        response.patch_type = Some("JSONPatch");
        response.patch = Some(base64::engine::general_purpose::STANDARD.encode(json));
    }
}

/// At most this many violations are spelled out in a denial; the rest are counted, so a Pod
/// with thousands of bad containers does not get a message of hundreds of kilobytes.
const MAX_LISTED_VIOLATIONS: usize = 20;
/// Each listed violation is cut to this many characters.
const MAX_VIOLATION_CHARS: usize = 2000;

fn denial_message(outcome: &Outcome, summary: &Summary) -> String {
    let all: Vec<&Finding> = outcome
        .findings
        .iter()
        .filter(|f| f.action == Action::Enforce)
        .collect();
    let mut denied: Vec<String> = all
        .iter()
        .take(MAX_LISTED_VIOLATIONS)
        .map(|f| {
            let line = format!("- [{}] {}", f.policy, f.message);
            match line.char_indices().nth(MAX_VIOLATION_CHARS) {
                Some((cut, _)) => format!("{}…", &line[..cut]),
                None => line,
            }
        })
        .collect();
    if all.len() > MAX_LISTED_VIOLATIONS {
        denied.push(format!(
            "- ... and {} more",
            all.len() - MAX_LISTED_VIOLATIONS
        ));
    }
    let what = match summary.name.as_str() {
        "" => summary.kind.clone(),
        name => format!("{} {name:?}", summary.kind),
    };
    let count = match all.len() {
        1 => "1 violation".to_string(),
        n => format!("{n} violations"),
    };
    format!("podgate: {what}: {count}:\n{}", denied.join("\n"))
}

fn status(code: u16, reason: &'static str, message: String) -> StatusOut {
    StatusOut {
        metadata: BTreeMap::new(),
        status: "Failure",
        message,
        reason,
        code,
    }
}

/// Makes warnings the apiserver will pass on: no control characters (it drops such warnings
/// silently), at most 256 characters each, no duplicates, 4 KiB in all.
pub fn limit_warnings(warnings: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut total = 0;
    let count = warnings.len();
    for (i, w) in warnings.into_iter().enumerate() {
        let clean: String = w
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let clean = if clean.chars().count() > MAX_WARNING_CHARS {
            let mut cut: String = clean.chars().take(MAX_WARNING_CHARS - 1).collect();
            cut.push('…');
            cut
        } else {
            clean
        };
        if clean.trim().is_empty() || out.contains(&clean) {
            continue;
        }
        if total + clean.len() > MAX_WARNINGS_TOTAL - 64 {
            out.push(format!("podgate: {} more warnings omitted", count - i));
            break;
        }
        total += clean.len();
        out.push(clean);
    }
    out
}

/// Checks an answer the way kube-apiserver judges it (`VerifyAdmissionResponse` and the
/// dispatchers, see docs/apiserver-contract.md section 4), plus that a patch applies to the request's object
/// under evanphx/json-patch v4 rules. Returns the patched object when there is a patch.
/// Used by the tests of every layer, and usable to vet recorded answers.
pub fn verify_response(
    request_body: &[u8],
    response_body: &[u8],
    webhook: Webhook,
) -> Result<Option<serde_json::Value>, String> {
    use serde_json::Value;
    let request: Value =
        serde_json::from_slice(request_body).map_err(|e| format!("request: {e}"))?;
    let response: Value =
        serde_json::from_slice(response_body).map_err(|e| format!("response: {e}"))?;
    let want_version = request
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or(V1);
    if response.get("apiVersion").and_then(Value::as_str) != Some(want_version) {
        return Err(format!("apiVersion must echo {want_version}"));
    }
    if response.get("kind").and_then(Value::as_str) != Some("AdmissionReview") {
        return Err("kind must be AdmissionReview".into());
    }
    let r = response
        .get("response")
        .ok_or("webhook response was absent")?;
    let uid = request.pointer("/request/uid").and_then(Value::as_str);
    if r.get("uid").and_then(Value::as_str) != uid {
        return Err(format!("response.uid must equal request.uid {uid:?}"));
    }
    let allowed = r
        .get("allowed")
        .and_then(Value::as_bool)
        .ok_or("allowed must be a boolean")?;
    if !allowed {
        let code = r
            .pointer("/status/code")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if code < 400 {
            return Err(format!("a denial needs status.code >= 400, got {code}"));
        }
        let message = r
            .pointer("/status/message")
            .and_then(Value::as_str)
            .unwrap_or("");
        if message.is_empty() {
            return Err("a denial needs a message".into());
        }
    }
    for w in r
        .get("warnings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let w = w.as_str().ok_or("warnings must be strings")?;
        if w.chars().any(char::is_control) || w.chars().count() > MAX_WARNING_CHARS {
            return Err(format!("warning would be dropped or truncated: {w:?}"));
        }
    }
    for key in r
        .get("auditAnnotations")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|m| m.keys())
    {
        let valid = !key.is_empty()
            && key.len() <= 63
            && !key.contains('/')
            && key.starts_with(|c: char| c.is_ascii_alphanumeric())
            && key.ends_with(|c: char| c.is_ascii_alphanumeric())
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            return Err(format!("audit annotation key {key:?} would be dropped"));
        }
    }
    let patch = r.get("patch");
    let patch_type = r.get("patchType");
    if webhook == Webhook::Validate {
        if patch.is_some() || patch_type.is_some() {
            return Err("a validating webhook must not send patch or patchType".into());
        }
        return Ok(None);
    }
    match (patch, patch_type) {
        (None, None) => Ok(None),
        (Some(p), Some(t)) => {
            if t.as_str() != Some("JSONPatch") {
                return Err(format!("patchType must be JSONPatch, got {t}"));
            }
            let encoded = p.as_str().ok_or("patch must be a base64 string")?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| format!("patch is not standard base64: {e}"))?;
            let ops: json_patch::Patch = serde_json::from_slice(&bytes)
                .map_err(|e| format!("patch is not JSON Patch: {e}"))?;
            let mut object = request
                .pointer("/request/object")
                .cloned()
                .ok_or("a patch needs a request object")?;
            json_patch::patch(&mut object, &ops)
                .map_err(|e| format!("patch does not apply: {e}"))?;
            Ok(Some(object))
        }
        _ => Err("patch and patchType must come together".into()),
    }
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
