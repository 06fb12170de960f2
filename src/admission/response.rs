//! Building the response AdmissionReview: warnings the apiserver passes on, audit annotations,
//! denial messages bounded in size, the base64 JSON Patch, and error answers that keep the uid.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;

use super::Summary;
use super::wire::{ResponseOut, ReviewOut, StatusOut, V1, V1BETA1};
use crate::verdict::{Finding, Verdict};

/// Admission warnings longer than this are truncated by the apiserver; we cut them first.
pub(crate) const MAX_WARNING_CHARS: usize = 256;
/// The apiserver truncates every warning once they add up to more than this.
const MAX_WARNINGS_TOTAL: usize = 4096;

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
            allowed: false,
            status: Some(status(code, reason, message.to_string())),
            ..ResponseOut::allowing(uid)
        },
    };
    serde_json::to_vec(&out).unwrap_or_default()
}

/// Writes `verdict` into `response`; its warnings and audit annotations move there.
pub(super) fn respond(response: &mut ResponseOut<'_>, verdict: &mut Verdict, summary: &Summary) {
    response.warnings = limit_warnings(std::mem::take(&mut verdict.warnings));
    response.audit_annotations = std::mem::take(&mut verdict.audit_annotations);
    if verdict.denied() {
        response.allowed = false;
        response.status = Some(status(403, "Forbidden", denial_message(verdict, summary)));
        return;
    }
    if !verdict.patch.is_empty()
        && let Ok(json) = to_json(&verdict.patch, 64 * verdict.patch.len())
    {
        response.patch_type = Some("JSONPatch");
        response.patch = Some(base64::engine::general_purpose::STANDARD.encode(json));
    }
}

/// `serde_json::to_vec` into a buffer of `capacity` bytes to start with (it grows as needed),
/// rather than one that grows from nothing.
pub(super) fn to_json<T: serde::Serialize + ?Sized>(
    value: &T,
    capacity: usize,
) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut out, value)?;
    Ok(out)
}

/// What the response AdmissionReview is likely to take, JSON-encoded: its strings and room for
/// the keys around them (strings that need escaping take more; the buffer then grows).
pub(super) fn response_size(response: &ResponseOut<'_>) -> usize {
    let warnings: usize = response.warnings.iter().map(|w| w.len() + 8).sum();
    let annotations: usize = (response.audit_annotations.iter())
        .map(|(k, v)| k.len() + v.len() + 8)
        .sum();
    256 + response.uid.len()
        + response.patch.as_ref().map_or(0, String::len)
        + response.status.as_ref().map_or(0, |s| s.message.len())
        + warnings
        + annotations
}

/// At most this many violations are spelled out in a denial; the rest are counted, so a Pod
/// with thousands of bad containers does not get a message of hundreds of kilobytes.
const MAX_LISTED_VIOLATIONS: usize = 20;
/// Each listed violation is cut to this many characters.
const MAX_VIOLATION_CHARS: usize = 2000;

fn denial_message(verdict: &Verdict, summary: &Summary) -> String {
    let all: Vec<&Finding> = verdict.denials().collect();
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

pub(super) fn status(code: u16, reason: &'static str, message: String) -> StatusOut {
    StatusOut {
        metadata: BTreeMap::new(),
        status: "Failure",
        message,
        reason,
        code,
    }
}

/// Whether `s` holds a control character (`char::is_control`), checked byte by byte when it is
/// ASCII, as nearly every warning is.
fn has_control(s: &str) -> bool {
    if s.is_ascii() {
        s.bytes().any(|b| b.is_ascii_control())
    } else {
        s.chars().any(char::is_control)
    }
}

/// Makes warnings the apiserver will pass on: no control characters (it drops such warnings
/// silently), at most 256 characters each, no duplicates, 4 KiB in all.
pub fn limit_warnings(warnings: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut total = 0;
    let count = warnings.len();
    for (i, w) in warnings.into_iter().enumerate() {
        // Nearly every warning is clean and short: kept as it is, without a copy.
        let clean: String = if has_control(&w) {
            w.chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect()
        } else {
            w
        };
        let clean = if clean.len() > MAX_WARNING_CHARS && clean.chars().count() > MAX_WARNING_CHARS
        {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_control_is_any_control_char() {
        for s in [
            "",
            "plain text",
            "tab\there",
            "nl\n",
            "del\u{7f}",
            "nel\u{85}",
            "c1\u{9f}",
            "é",
            "\u{a0}",
            "日本\u{1}",
            "\u{2028}",
        ] {
            assert_eq!(has_control(s), s.chars().any(char::is_control), "{s:?}");
        }
    }

    #[test]
    fn presized_json_is_to_vec() {
        let mut response = ResponseOut::allowing("u-1");
        response.warnings = vec!["a \"quoted\" warning".into(), "\u{1}".into()];
        response
            .audit_annotations
            .insert("k".into(), "{\"v\":1}".into());
        response.patch = Some("W10=".into());
        let review = ReviewOut {
            api_version: V1,
            kind: "AdmissionReview",
            response,
        };
        for capacity in [0, 3, response_size(&review.response), 4096] {
            assert_eq!(
                to_json(&review, capacity).unwrap(),
                serde_json::to_vec(&review).unwrap()
            );
        }
        assert!(response_size(&review.response) > 256);
    }
}
