//! Offline evaluation of manifests (`podgate check`): the same engine as the webhook, on
//! objects read from files, as if a plain user created each one in its namespace. podgate's own
//! policy ConfigMaps (label `podgate.dev/policies: "true"`) among them are loaded as the webhook
//! `policies.podgate.dev` loads them: each error of a set that does not load is an input error
//! at `key:line:column`, so a broken set fails CI exactly as it would fail `kubectl apply`.
//!
//! Pure: the caller reads the files (`manifests::read_all`) and prints the run.
//!
//! Every object read is accounted for: it is checked (its pod spec evaluated, with a note when
//! its group version is no longer served), unreadable (a workload kind that cannot be
//! evaluated, with the reason), or without a pod spec; files and documents that did not parse
//! are input errors. One [`CheckRun`] holds all of it; the renderers (text here, JSON by serde,
//! SARIF in `sarif`) only format it.

use serde::Serialize;

use crate::engine::{self, Question, Requester, Subject};
use crate::manifests::{Document, Input};
use crate::policy::{PolicySet, configmap};
use crate::verdict::{self, Effect, Verdict};
use crate::workload::{self, ApiKind, Source};

/// The user every manifest is evaluated as.
pub(crate) const CHECK_USER: &str = "podgate-check";
const CHECK_GROUPS: &[&str] = &["system:authenticated"];

/// What `check` found for one object with a pod spec.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ObjectReport {
    /// The file.
    pub file: String,
    /// 1-based document number in the file.
    pub document: usize,
    /// 1-based line where the document starts.
    pub line: usize,
    /// The object's `apiVersion`, as the file says.
    pub api_version: String,
    /// The object's kind.
    pub kind: String,
    /// The object's name (or generateName).
    pub name: String,
    /// The namespace it was evaluated in.
    pub namespace: String,
    /// True when an Enforce policy denies it.
    pub denied: bool,
    /// Violations.
    pub violations: Vec<ViolationReport>,
    /// Changes a mutation would make.
    pub changes: Vec<ChangeReport>,
    /// Notes a mutation would send as warnings.
    pub notes: Vec<String>,
    /// Set when the object's group version is no longer served (it was evaluated as the
    /// version that replaced it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_note: Option<String>,
    /// Set when the object could not be evaluated (it is unreadable): why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A file, folder or document that could not be read.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct InputError {
    /// The file or folder (`-` for standard input).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// Why.
    pub reason: String,
}

impl InputError {
    /// `file:line:column`, with the parts that are known.
    pub fn location(&self) -> String {
        match (self.line, self.column) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}", self.file),
            (Some(l), None) => format!("{}:{l}", self.file),
            _ => self.file.clone(),
        }
    }
}

/// The counts of a run. `objects_read = checked + unreadable + without_pod_spec`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Summary {
    /// Files (and standard-input reads) opened.
    pub files: usize,
    /// Objects read from them.
    pub objects_read: usize,
    /// Objects whose pod spec was evaluated.
    pub checked: usize,
    /// Of those, denied by an Enforce policy.
    pub denied: usize,
    /// Of those, in a group version that is no longer served.
    pub deprecated_api: usize,
    /// Changes the mutations would make, over all checked objects.
    pub changes: usize,
    /// Workload objects that could not be evaluated.
    pub unreadable: usize,
    /// Objects of kinds without a pod spec (Services, ConfigMaps ...).
    pub without_pod_spec: usize,
    /// Files, folders and documents that could not be read, and errors of policy ConfigMaps.
    pub input_errors: usize,
    /// podgate policy ConfigMaps whose files were loaded (also counted without a pod spec).
    pub policy_config_maps: usize,
}

/// Everything one `podgate check` found.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CheckRun {
    /// The counts.
    pub summary: Summary,
    /// One report per object with a pod spec (checked or unreadable), in input order.
    pub objects: Vec<ObjectReport>,
    /// Inputs that could not be read, in input order.
    pub errors: Vec<InputError>,
}

impl CheckRun {
    /// The exit code: 1 when an object is denied, else 2 when anything was unreadable, else 0.
    /// A denial wins: it is a definite finding in what could be read, and both codes fail a
    /// CI job; the report lists the unreadable inputs either way.
    pub fn exit_code(&self) -> u8 {
        if self.summary.denied > 0 {
            1
        } else if self.summary.unreadable > 0 || self.summary.input_errors > 0 {
            2
        } else {
            0
        }
    }
}

/// One violation.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ViolationReport {
    /// Policy name.
    pub policy: String,
    /// The policy's action: Enforce, Warn or Audit.
    pub action: &'static str,
    /// What the violation does: `deny`, `warn` or `audit`.
    pub effect: Effect,
    /// Rule name.
    pub rule: &'static str,
    /// Message with field path.
    pub message: String,
}

/// One change.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChangeReport {
    /// Policy name.
    pub policy: String,
    /// The policy's action: Enforce, Warn or Audit.
    pub action: &'static str,
    /// False when the policy only reports the change (Audit).
    pub applied: bool,
    /// What would change.
    pub change: String,
}

/// Checks everything read: each object with a pod spec is evaluated or reported unreadable,
/// the others are counted, and input errors are carried over.
pub fn check_input(set: &PolicySet, input: &Input, today: jiff::civil::Date) -> CheckRun {
    let mut summary = Summary {
        files: input.files,
        objects_read: input.documents.len(),
        input_errors: input.errors.len(),
        ..Summary::default()
    };
    let mut objects = Vec::new();
    let mut set_errors = Vec::new();
    for doc in &input.documents {
        if configmap::is_policy_config_map(&doc.object) {
            summary.policy_config_maps += 1;
            set_errors.extend(policy_config_map_errors(doc));
        }
        match check_document(set, doc, today) {
            Some(report) => {
                if report.error.is_some() {
                    summary.unreadable += 1;
                } else {
                    summary.checked += 1;
                    summary.denied += usize::from(report.denied);
                    summary.deprecated_api += usize::from(report.api_note.is_some());
                    summary.changes += report.changes.len();
                }
                objects.push(report);
            }
            None => summary.without_pod_spec += 1,
        }
    }
    let mut errors: Vec<InputError> = input
        .errors
        .iter()
        .map(|e| InputError {
            file: e.path().display().to_string(),
            line: e.line(),
            column: e.column(),
            reason: e.reason(),
        })
        .collect();
    summary.input_errors += set_errors.len();
    errors.extend(set_errors);
    CheckRun {
        summary,
        objects,
        errors,
    }
}

/// The errors of a policy ConfigMap's set (none when it loads): `key:line:column`, where the key
/// is the policy file's name (kustomize's generator keeps it), and the manifest in the reason.
fn policy_config_map_errors(doc: &Document) -> Vec<InputError> {
    let Err(errors) = configmap::load(&doc.object) else {
        return Vec::new();
    };
    let meta = |name: &str| {
        doc.object
            .pointer(&format!("/metadata/{name}"))
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let (namespace, name) = (meta("namespace"), meta("name"));
    let shown = if namespace.is_empty() {
        name
    } else {
        format!("{namespace}/{name}")
    };
    errors
        .0
        .into_iter()
        .map(|e| InputError {
            file: e.file,
            line: (e.line > 0).then(|| usize::try_from(e.line).unwrap_or(usize::MAX)),
            column: (e.column > 0).then(|| usize::try_from(e.column).unwrap_or(usize::MAX)),
            reason: format!(
                "{} (policy ConfigMap {shown}, {} document {}: podgate would refuse this set)",
                e.reason,
                doc.file.display(),
                doc.index
            ),
        })
        .collect()
}

/// One object: `None` when its kind holds no pod spec.
fn check_document(
    set: &PolicySet,
    doc: &Document,
    today: jiff::civil::Date,
) -> Option<ObjectReport> {
    let groups: Vec<String> = CHECK_GROUPS.iter().map(|g| g.to_string()).collect();
    let text = |name: &str| doc.object.get(name).and_then(|v| v.as_str()).unwrap_or("");
    let (api_version, kind_name) = (text("apiVersion"), text("kind"));
    let resolved = workload::resolve(api_version, kind_name);
    let (kind, upgraded, api_note, unreadable) = match resolved {
        ApiKind::NoPodSpec => return None,
        ApiKind::Served(kind) => (Some(kind), None, None, None),
        ApiKind::Deprecated(d) => (
            Some(d.kind),
            Some(workload::upgrade_deprecated(&doc.object, &d)),
            Some(d.note()),
            None,
        ),
        ApiKind::UnknownVersion(kind) => (
            Some(kind),
            None,
            None,
            Some(format!(
                "{api_version} {kind_name}: unknown API version for {} (podgate reads the served version and the removed ones it replaced)",
                kind.as_str()
            )),
        ),
        ApiKind::Untyped => (
            None,
            None,
            None,
            Some(
                match (api_version.is_empty(), kind_name.is_empty()) {
                    (true, true) => "no apiVersion and no kind",
                    (true, false) => "no apiVersion",
                    _ => "no kind",
                }
                .to_string(),
            ),
        ),
    };
    let meta = doc.object.get("metadata");
    let field = |name: &str| {
        meta.and_then(|m| m.get(name))
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    // Read from the document itself, so an object that does not parse is still named.
    let name = engine::display_name(Some(&field("name")), Some(&field("generateName"))).to_string();
    let namespace = engine::namespace_of(None, Some(&field("namespace"))).to_string();
    let mut report = ObjectReport {
        file: doc.file.display().to_string(),
        document: doc.index,
        line: doc.line,
        api_version: api_version.to_string(),
        kind: kind.map_or(kind_name, |k| k.as_str()).to_string(),
        name,
        namespace,
        denied: false,
        violations: Vec::new(),
        changes: Vec::new(),
        notes: Vec::new(),
        api_note,
        error: unreadable,
    };
    let Some(kind) = kind.filter(|_| report.error.is_none()) else {
        return Some(report);
    };
    let object = upgraded.as_ref().unwrap_or(&doc.object);
    let w = match workload::read(kind, Source::Value(object)) {
        Ok(w) => w,
        Err(e) => {
            report.error = Some(e.to_string());
            return Some(report);
        }
    };
    let requester = Requester {
        username: CHECK_USER,
        groups: &groups,
    };
    let subject = Subject::new(&w, None, requester);
    let evaluation = engine::evaluate(set, &subject, Question::Check, today);
    fill(&mut report, verdict::decide(&evaluation, Question::Check));
    Some(report)
}

/// A verdict in check's shape: what `check` (and `audit`) print for one object.
#[derive(Debug, Clone, PartialEq)]
pub struct VerdictReport {
    /// True when a finding denies the object.
    pub denied: bool,
    /// Violations.
    pub violations: Vec<ViolationReport>,
    /// Changes a mutation would make.
    pub changes: Vec<ChangeReport>,
    /// Notes a mutation would send as warnings.
    pub notes: Vec<String>,
}

/// Renders a verdict in check's shape.
pub fn report(verdict: Verdict) -> VerdictReport {
    VerdictReport {
        denied: verdict.denied(),
        violations: verdict
            .findings
            .into_iter()
            .map(|f| ViolationReport {
                policy: f.policy,
                action: f.action.as_str(),
                effect: f.effect,
                rule: f.rule.as_str(),
                message: f.message,
            })
            .collect(),
        changes: verdict
            .changes
            .into_iter()
            .map(|c| ChangeReport {
                policy: c.policy,
                action: c.action.as_str(),
                applied: c.applied,
                change: c.text,
            })
            .collect(),
        notes: verdict.notes,
    }
}

fn fill(out: &mut ObjectReport, verdict: Verdict) {
    let r = report(verdict);
    out.denied = r.denied;
    out.violations = r.violations;
    out.changes = r.changes;
    out.notes = r.notes;
}

/// Human-readable report: one block per object that has something to say, the input errors,
/// then the summary. `summary_only` prints the summary alone.
pub(crate) fn render_text(run: &CheckRun, summary_only: bool) -> String {
    let mut out = String::new();
    if !summary_only {
        for r in &run.objects {
            render_object(&mut out, r);
        }
        for e in &run.errors {
            out.push_str(&format!("{}: ERROR {}\n", e.location(), e.reason));
        }
    }
    out.push_str(&summary_line(&run.summary));
    out.push('\n');
    out
}

fn render_object(out: &mut String, r: &ObjectReport) {
    let quiet = r.violations.is_empty()
        && r.changes.is_empty()
        && r.error.is_none()
        && r.api_note.is_none();
    if quiet {
        return;
    }
    let kind = if r.kind.is_empty() { "object" } else { &r.kind };
    out.push_str(&format!(
        "{} (document {}, line {}): {kind} {:?} in namespace {:?}\n",
        r.file, r.document, r.line, r.name, r.namespace
    ));
    if let Some(e) = &r.error {
        out.push_str(&format!("  UNREADABLE {e}\n"));
    }
    if let Some(n) = &r.api_note {
        out.push_str(&format!("  NOTE {n}\n"));
    }
    for v in &r.violations {
        let label = match v.effect {
            Effect::Deny => "DENY",
            Effect::Warn => "WARN",
            Effect::Audit => "AUDIT",
        };
        out.push_str(&format!("  {label} [{}] {}\n", v.policy, v.message));
    }
    for c in &r.changes {
        let label = if c.applied {
            "CHANGE"
        } else {
            "WOULD CHANGE (audit)"
        };
        out.push_str(&format!("  {label} [{}] {}\n", c.policy, c.change));
    }
    for n in &r.notes {
        out.push_str(&format!("  NOTE {n}\n"));
    }
}

/// `N objects read: ...`; the three object counts add up to N.
pub(crate) fn summary_line(s: &Summary) -> String {
    let mut line = format!(
        "{} objects read from {} files: {} checked ({} denied, {} changes), {} unreadable, {} without a pod spec",
        s.objects_read, s.files, s.checked, s.denied, s.changes, s.unreadable, s.without_pod_spec
    );
    if s.deprecated_api > 0 {
        line.push_str(&format!(
            "; {} in API versions no longer served",
            s.deprecated_api
        ));
    }
    if s.input_errors > 0 {
        line.push_str(&format!("; {} input errors", s.input_errors));
    }
    if s.policy_config_maps > 0 {
        line.push_str(&format!(
            "; {} policy ConfigMaps loaded",
            s.policy_config_maps
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The repository's policies and fixtures (`tests/fixtures/manifests`).
    fn shipped() -> PolicySet {
        PolicySet::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    const DEPRECATED: &[(&str, &str)] = &[
        (
            "extensions-v1beta1-deployment.yaml",
            include_str!(
                "../tests/fixtures/manifests/deprecated/extensions-v1beta1-deployment.yaml"
            ),
        ),
        (
            "apps-v1beta1-statefulset.yaml",
            include_str!("../tests/fixtures/manifests/deprecated/apps-v1beta1-statefulset.yaml"),
        ),
        (
            "apps-v1beta2-daemonset.yaml",
            include_str!("../tests/fixtures/manifests/deprecated/apps-v1beta2-daemonset.yaml"),
        ),
        (
            "batch-v1beta1-cronjob.yaml",
            include_str!("../tests/fixtures/manifests/deprecated/batch-v1beta1-cronjob.yaml"),
        ),
        (
            "batch-v2alpha1-cronjob.yaml",
            include_str!("../tests/fixtures/manifests/deprecated/batch-v2alpha1-cronjob.yaml"),
        ),
    ];
    const MIXED_APP: &str = include_str!("../tests/fixtures/manifests/mixed/app.yaml");
    const UNKNOWN: &str = include_str!("../tests/fixtures/manifests/mixed/unknown.yaml");

    fn input(files: &[(&str, &str)]) -> Input {
        let mut input = Input::default();
        for (name, text) in files {
            let (documents, errors) = crate::manifests::parse_text_lenient(Path::new(name), text);
            input.files += 1;
            input.documents.extend(documents);
            input.errors.extend(errors);
        }
        input
    }

    fn today() -> jiff::civil::Date {
        jiff::civil::date(2026, 12, 1)
    }

    #[test]
    fn deprecated_group_versions_are_evaluated_with_a_note() {
        let run = check_input(&shipped(), &input(DEPRECATED), today());
        assert_eq!(run.summary.checked, 5);
        assert_eq!(run.summary.deprecated_api, 5);
        assert_eq!(run.summary.denied, 3);
        let denied: Vec<&str> = run
            .objects
            .iter()
            .filter(|o| o.denied)
            .map(|o| o.api_version.as_str())
            .collect();
        assert_eq!(
            denied,
            ["extensions/v1beta1", "apps/v1beta2", "batch/v1beta1"]
        );
        assert!(run.objects.iter().all(|o| {
            o.error.is_none()
                && o.api_note
                    .as_deref()
                    .is_some_and(|n| n.contains("no longer served"))
        }));
        assert_eq!(run.exit_code(), 1);
    }

    #[test]
    fn every_object_read_is_counted_once() {
        let run = check_input(
            &shipped(),
            &input(&[("app.yaml", MIXED_APP), ("unknown.yaml", UNKNOWN)]),
            today(),
        );
        let s = &run.summary;
        assert_eq!(s.objects_read, 6);
        assert_eq!(
            s.objects_read,
            s.checked + s.unreadable + s.without_pod_spec
        );
        assert_eq!((s.checked, s.unreadable, s.without_pod_spec), (2, 2, 2));
        assert_eq!(s.input_errors, 1);
        assert_eq!(run.errors[0].location(), "app.yaml:38:7");
        assert_eq!(run.objects.len(), s.checked + s.unreadable);
    }

    #[test]
    fn a_denial_wins_over_unreadable_input_in_the_exit_code() {
        let set = shipped();
        let unreadable = check_input(&set, &input(&[("unknown.yaml", UNKNOWN)]), today());
        assert_eq!(unreadable.exit_code(), 2);
        let both = check_input(
            &set,
            &input(&[("unknown.yaml", UNKNOWN), DEPRECATED[0]]),
            today(),
        );
        assert_eq!(both.exit_code(), 1);
        let clean = check_input(&set, &input(&[DEPRECATED[1]]), today());
        assert_eq!(clean.exit_code(), 0);
        let only_errors = check_input(&set, &input(&[("bad.yaml", "a: [\n")]), today());
        assert_eq!(only_errors.summary.objects_read, 0);
        assert_eq!(only_errors.exit_code(), 2);
    }

    #[test]
    fn summary_only_text_is_the_last_line_of_the_full_text() {
        let run = check_input(&shipped(), &input(&[("app.yaml", MIXED_APP)]), today());
        let full = render_text(&run, false);
        let short = render_text(&run, true);
        assert_eq!(short.lines().count(), 1);
        assert_eq!(full.lines().last(), short.lines().next());
        assert!(
            full.contains("app.yaml:38:7: ERROR invalid yaml: duplicate"),
            "{full}"
        );
    }
}
