//! The AdmissionReview envelope as read and written on the wire: podgate's own types (kube-core's
//! `AdmissionResponse` encodes `patch` as a number array instead of the documented base64,
//! kube-rs#1781, and its `invalid()` loses the uid), and `parse`, which reads a body in one pass.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::ReviewError;
use crate::engine::Webhook;
use crate::workload::{self, Kind, Scope, Workload, WorkloadError};

pub(super) const V1: &str = "admission.k8s.io/v1";
pub(super) const V1BETA1: &str = "admission.k8s.io/v1beta1";

#[derive(Deserialize)]
pub(super) struct ReviewIn<'a> {
    #[serde(rename = "apiVersion", default)]
    pub(super) api_version: Option<String>,
    #[serde(default)]
    pub(super) kind: Option<String>,
    #[serde(borrow, default)]
    pub(super) request: Option<RequestIn<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct RequestIn<'a> {
    pub(super) uid: String,
    #[serde(default)]
    pub(super) kind: Option<GroupKind>,
    #[serde(default)]
    pub(super) sub_resource: Option<String>,
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) namespace: Option<String>,
    #[serde(default)]
    pub(super) operation: Option<String>,
    #[serde(default)]
    pub(super) user_info: Option<UserInfoIn>,
    #[serde(borrow, default)]
    pub(super) object: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(super) old_object: Option<&'a RawValue>,
    /// The object as `FastRequestIn` read it (`None` inside for `null`); when set, `object`
    /// is unset and unread.
    #[serde(skip)]
    /// Boxed: the request moves a few times on its way out of the parser, the workload (about
    /// 2 KB, most of it the typed pod spec) need not move with it.
    pub(super) read_object: Option<Option<Result<Box<Workload>, WorkloadError>>>,
    #[serde(default)]
    pub(super) dry_run: Option<bool>,
}

#[derive(Deserialize, Default)]
pub(super) struct GroupKind {
    #[serde(default)]
    pub(super) group: String,
    #[serde(default)]
    pub(super) kind: String,
}

#[derive(Deserialize, Default)]
pub(super) struct UserInfoIn {
    #[serde(default)]
    pub(super) username: String,
    #[serde(default)]
    pub(super) groups: Vec<String>,
}

/// `ReviewIn` read in one pass: `request.object` is decoded straight into its workload when
/// `request.kind` came before it (as the apiserver writes it), instead of being scanned as
/// raw text and parsed again. Anything this reader does not take exactly as `ReviewIn` would
/// (a duplicate field, a request written as an array, an object that does not parse) is an
/// error, and `parse` then reads the body with `ReviewIn`, so answers never differ. With
/// `PLAN`, a Pod is read as far as the mutation plan needs (`workload::Scope::Plan`).
#[derive(Deserialize)]
pub(super) struct FastReviewIn<'a, const PLAN: bool> {
    #[serde(rename = "apiVersion", default)]
    pub(super) api_version: Option<String>,
    #[serde(default)]
    pub(super) kind: Option<String>,
    #[serde(borrow, default)]
    pub(super) request: Option<FastRequestIn<'a, PLAN>>,
}

pub(super) struct FastRequestIn<'a, const PLAN: bool>(RequestIn<'a>);

/// The keys of `request` that podgate reads; any other key is `Other`. Duplicates are
/// refused by a bit per variant and the messages name `Field::name`, both exhaustive over the
/// enum, so a field added here is read, named and checked like the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum Field {
    Uid,
    Kind,
    SubResource,
    Name,
    Namespace,
    Operation,
    UserInfo,
    Object,
    OldObject,
    DryRun,
    #[serde(other)]
    Other,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Uid => "uid",
            Field::Kind => "kind",
            Field::SubResource => "subResource",
            Field::Name => "name",
            Field::Namespace => "namespace",
            Field::Operation => "operation",
            Field::UserInfo => "userInfo",
            Field::Object => "object",
            Field::OldObject => "oldObject",
            Field::DryRun => "dryRun",
            Field::Other => "",
        }
    }

    /// This field's bit in the duplicate check (`Other` repeats freely).
    fn bit(self) -> u32 {
        match self {
            Field::Other => 0,
            named => 1 << (named as u32),
        }
    }
}

impl<'de: 'a, 'a, const PLAN: bool> Deserialize<'de> for FastRequestIn<'a, PLAN> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{self, IgnoredAny, MapAccess, Visitor};

        struct V<'a, const PLAN: bool>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a, const PLAN: bool> Visitor<'de> for V<'a, PLAN> {
            type Value = FastRequestIn<'a, PLAN>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("struct RequestIn")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut r = RequestIn::default();
                let mut seen = 0u32;
                let scope = if PLAN { Scope::Plan } else { Scope::Rules };
                while let Some(field) = map.next_key::<Field>()? {
                    if seen & field.bit() != 0 {
                        return Err(de::Error::duplicate_field(field.name()));
                    }
                    seen |= field.bit();
                    match field {
                        Field::Uid => r.uid = map.next_value()?,
                        Field::Kind => r.kind = map.next_value()?,
                        Field::SubResource => r.sub_resource = map.next_value()?,
                        Field::Name => r.name = map.next_value()?,
                        Field::Namespace => r.namespace = map.next_value()?,
                        Field::Operation => r.operation = map.next_value()?,
                        Field::UserInfo => r.user_info = map.next_value()?,
                        Field::Object => {
                            let kind = r
                                .kind
                                .as_ref()
                                .and_then(|gk| Kind::from_group_kind(&gk.group, &gk.kind));
                            match kind {
                                Some(k) => {
                                    r.read_object =
                                        Some(map.next_value_seed(workload::ObjectSeed(k, scope))?)
                                }
                                None => r.object = map.next_value()?,
                            }
                        }
                        Field::OldObject => r.old_object = map.next_value()?,
                        Field::DryRun => r.dry_run = map.next_value()?,
                        Field::Other => {
                            let _: IgnoredAny = map.next_value()?;
                        }
                    }
                }
                if seen & Field::Uid.bit() == 0 {
                    return Err(de::Error::missing_field("uid"));
                }
                Ok(FastRequestIn(r))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

#[derive(Serialize)]
pub(super) struct ReviewOut<'a> {
    #[serde(rename = "apiVersion")]
    pub(super) api_version: &'a str,
    pub(super) kind: &'static str,
    pub(super) response: ResponseOut<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ResponseOut<'a> {
    pub(super) uid: &'a str,
    pub(super) allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) status: Option<StatusOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) patch: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) audit_annotations: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) warnings: Vec<String>,
}

impl<'a> ResponseOut<'a> {
    /// An answer for `uid` that allows and says nothing else yet.
    pub(super) fn allowing(uid: &'a str) -> ResponseOut<'a> {
        ResponseOut {
            uid,
            allowed: true,
            status: None,
            patch_type: None,
            patch: None,
            audit_annotations: BTreeMap::new(),
            warnings: Vec::new(),
        }
    }
}

#[derive(Serialize)]
pub(super) struct StatusOut {
    pub(super) metadata: BTreeMap<String, String>,
    pub(super) status: &'static str,
    pub(super) message: String,
    pub(super) reason: &'static str,
    pub(super) code: u16,
}

/// Reads `body` for `webhook`: a Pod object only as far as the webhook needs
/// (`workload::Scope::of`).
pub(super) fn parse(body: &[u8], webhook: Webhook) -> Result<ReviewIn<'_>, ReviewError> {
    let fast = match Scope::of(webhook) {
        Scope::Plan => fast::<true>(body),
        Scope::Rules => fast::<false>(body),
    };
    match fast {
        Some(review) => validated(review),
        None => parse_envelope(body),
    }
}

fn fast<const PLAN: bool>(body: &[u8]) -> Option<ReviewIn<'_>> {
    let r = from_body::<FastReviewIn<'_, PLAN>>(body).ok()?;
    Some(ReviewIn {
        api_version: r.api_version,
        kind: r.kind,
        request: r.request.map(|r| r.0),
    })
}

/// The review with its object left as raw JSON, never decoded: a scan of the body, for
/// answers that must not depend on the object (a review past its deadline).
pub(super) fn parse_envelope(body: &[u8]) -> Result<ReviewIn<'_>, ReviewError> {
    let review = match from_body(body) {
        Ok(r) => r,
        Err(e) if e.is_syntax() || e.is_eof() => {
            return Err(ReviewError::Json(e.to_string()));
        }
        Err(e) => return Err(ReviewError::NotReview(e.to_string())),
    };
    validated(review)
}

/// `serde_json::from_slice`, with the body's UTF-8 checked once rather than string by string:
/// a body that is UTF-8 is read as text (`from_str` gives what `from_slice` gives for it), any
/// other with `from_slice`, so errors and answers are the same.
fn from_body<'a, T: Deserialize<'a>>(body: &'a [u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(body),
    }
}

fn validated(review: ReviewIn<'_>) -> Result<ReviewIn<'_>, ReviewError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What `from_body` reads of a body, and its error, are what `from_slice` gives, with or
    /// without invalid UTF-8 (in a skipped string, in a read one, outside strings).
    #[test]
    fn reading_the_body_as_text_answers_as_reading_it_as_bytes() {
        let bodies: [&[u8]; 6] = [
            b"{\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"u\",\"x\":\"\xff\"}}",
            b"{\"kind\":\"Admission\xffReview\",\"request\":{\"uid\":\"u\"}}",
            "{\"kind\":\"\u{e9}\",\"request\":{\"uid\":\"\u{1F600}\"}}".as_bytes(),
            b"{\"kind\":\"\\ud800\"}",
            b"{\"kind\":\"a\" \xff}",
            b"{\"kind\":\"a\",\"request\":{\"uid\":\"u\",\"object\":{\"a\":\"\xfe\"}}}",
        ];
        let summary = |r: serde_json::Result<ReviewIn<'_>>| {
            format!(
                "{:?}",
                r.map(|r| {
                    let request = r
                        .request
                        .map(|q| (q.uid, q.object.map(|o| o.get().to_owned())));
                    (r.kind, request)
                })
            )
        };
        for body in bodies {
            assert_eq!(
                summary(from_body(body)),
                summary(serde_json::from_slice(body)),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
