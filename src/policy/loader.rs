//! Loads policy files: YAML text -> `PolicyDoc` (serde) -> validated `Policy` (domain).
//!
//! Every mistake is reported at once with file, line, column and reason; a file with a YAML
//! or schema error contributes that one error, the semantic checks report all they find.
//! `load_dir` is the only function here that touches the file system.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::Path;

use serde_saphyr::{Location, Spanned};
use sha2::{Digest, Sha256};

use super::file::{
    ExemptionDoc, HostAliasesDoc, ImagePullPolicyDoc, MatchDoc, PolicyDoc, SelectorDoc,
};
use super::{
    Action, Atom, Exemption, Globs, HostAlias, HostAliasesMutation, HostsFileRule, Match, Mutate,
    OnConflict, Operator, Policy, PolicySet, PullPolicy, PullPolicyMutation, Requirement, Selector,
    ServiceAccountPattern, Source, Validate, is_dns1123_subdomain,
};

/// The only accepted `apiVersion`.
pub(crate) const API_VERSION: &str = "podgate.dev/v1alpha1";
/// The only accepted `kind`.
pub(crate) const KIND: &str = "PodPolicy";
/// Policy files larger than this are refused before parsing.
pub(crate) const MAX_FILE_BYTES: usize = 1024 * 1024;

/// One problem in one policy file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {reason}")]
pub struct LoadError {
    /// The file, as given.
    pub file: String,
    /// 1-based line; 0 when unknown.
    pub line: u64,
    /// 1-based column; 0 when unknown.
    pub column: u64,
    /// What is wrong.
    pub reason: String,
}

/// Every problem found while loading a policy set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadErrors(pub Vec<LoadError>);

impl std::fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadErrors {}

/// A file the loader reads: `*.yaml` / `*.yml`, not starting with `.` (which also skips the
/// kubelet's `..data` folders of a mounted ConfigMap). `configmap` applies the same rule to keys.
pub(crate) fn is_policy_file(name: &str) -> bool {
    !name.starts_with('.') && (name.ends_with(".yaml") || name.ends_with(".yml"))
}

/// Something in a policy file that loads but probably does not do what its author wants.
/// Never refuses the set: `podgate check` prints warnings, the server logs them at each load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadWarning {
    /// The file, as given.
    pub file: String,
    /// 1-based line; 0 when unknown.
    pub line: u64,
    /// 1-based column; 0 when unknown.
    pub column: u64,
    /// What is suspicious, and what to do instead.
    pub reason: String,
}

impl std::fmt::Display for LoadWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: warning: {}",
            self.file, self.line, self.column, self.reason
        )
    }
}

impl PolicySet {
    /// Reads every `*.yaml` / `*.yml` file directly in `dir` (names starting with `.` are
    /// skipped, which also skips the kubelet's `..data` folders while following its symlinks).
    pub fn load_dir(dir: &Path) -> Result<PolicySet, LoadErrors> {
        let shown = dir.display().to_string();
        let io_error = |reason: String| LoadErrors(vec![error_at(&shown, 0, 0, reason)]);
        let entries = std::fs::read_dir(dir)
            .map_err(|e| io_error(format!("cannot read policy folder: {e}")))?;
        let mut paths = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error(format!("cannot list policy folder: {e}")))?;
            let name = entry.file_name();
            if !is_policy_file(&name.to_string_lossy()) {
                continue;
            }
            let path = entry.path();
            // Follows symlinks, so ConfigMap-mounted files count and `..data` dirs do not.
            if path.is_file() {
                paths.push(path);
            }
        }
        paths.sort();
        let mut sources = Vec::with_capacity(paths.len());
        let mut errors = Vec::new();
        for path in paths {
            let file = path.display().to_string();
            match std::fs::metadata(&path) {
                Ok(meta) if meta.len() > MAX_FILE_BYTES as u64 => {
                    errors.push(error_at(&file, 0, 0, too_large(meta.len() as usize)));
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    errors.push(error_at(&file, 0, 0, format!("cannot read: {e}")));
                    continue;
                }
            }
            match std::fs::read_to_string(&path) {
                Ok(text) => sources.push((file, text)),
                Err(e) => errors.push(error_at(&file, 0, 0, format!("cannot read: {e}"))),
            }
        }
        match PolicySet::from_sources(&sources) {
            Ok(set) if errors.is_empty() => Ok(set),
            Ok(_) => Err(LoadErrors(errors)),
            Err(LoadErrors(more)) => {
                errors.extend(more);
                Err(LoadErrors(errors))
            }
        }
    }

    /// Builds a set from `(file name, text)` pairs, in the order given. Pure.
    pub fn from_sources(sources: &[(String, String)]) -> Result<PolicySet, LoadErrors> {
        let mut policies = Vec::new();
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        for (file, text) in sources {
            match parse_file(file, text) {
                Ok((parsed, warned)) => {
                    policies.extend(parsed);
                    warnings.extend(warned);
                }
                Err(errs) => errors.extend(errs),
            }
        }
        let mut seen: HashMap<&str, &Source> = HashMap::new();
        for policy in &policies {
            if let Some(first) = seen.get(policy.name.as_str()) {
                errors.push(error_at(
                    &policy.source.file,
                    policy.source.line,
                    0,
                    format!(
                        "duplicate policy name {:?}: already defined at {}:{}",
                        policy.name, first.file, first.line
                    ),
                ));
            } else {
                seen.insert(&policy.name, &policy.source);
            }
        }
        errors.extend(pull_policy_cycles(&policies));
        if !errors.is_empty() {
            return Err(LoadErrors(errors));
        }
        Ok(PolicySet::new(policies, content_hash(sources)).with_warnings(warnings))
    }
}

/// Two pull-policy mutations that each replace what the other sets, for a tag both call
/// mutable, would flip `imagePullPolicy` back and forth on every reinvocation and make the
/// validating re-check deny every Pod they both match; such a pair is refused.
fn pull_policy_cycles(policies: &[Policy]) -> Vec<LoadError> {
    let mut errors = Vec::new();
    let with_pull: Vec<(&Policy, &PullPolicyMutation)> = policies
        .iter()
        .filter_map(|p| p.mutate.image_pull_policy.as_ref().map(|m| (p, m)))
        .collect();
    for (i, (a, pa)) in with_pull.iter().enumerate() {
        for (b, pb) in with_pull.iter().skip(i + 1) {
            let fight =
                pa.set != pb.set && pb.replace.contains(&pa.set) && pa.replace.contains(&pb.set);
            let shared = pa.mutable_tags.iter().find(|t| pb.mutable_tags.contains(t));
            if let (true, Some(tag)) = (fight, shared) {
                errors.push(error_at(
                    &b.source.file,
                    b.source.line,
                    0,
                    format!(
                        "policy {:?} sets imagePullPolicy {} for tag {tag:?} where policy {:?} ({}:{}) sets {}, and each replaces the other's value: they would undo each other on every call; make one keep the other's value (drop it from replace)",
                        b.name,
                        pb.set.as_str(),
                        a.name,
                        a.source.file,
                        a.source.line,
                        pa.set.as_str()
                    ),
                ));
            }
        }
    }
    errors.extend(pull_policy_three_cycles(&with_pull));
    errors
}

/// The longer form of the same fight: three policies whose replacements go round the three
/// values for a tag all three call mutable (x -> y -> z -> x). No two of them undo each other,
/// but together they never settle. With no cycle of either length, a container's policy can
/// only move along a chain of at most three steps, which bounds the engine's combined plan.
fn pull_policy_three_cycles(with_pull: &[(&Policy, &PullPolicyMutation)]) -> Vec<LoadError> {
    use PullPolicy::{Always, IfNotPresent, Never};
    let mut errors = Vec::new();
    let mut tags: Vec<&String> = with_pull
        .iter()
        .flat_map(|(_, m)| &m.mutable_tags)
        .collect();
    tags.sort();
    tags.dedup();
    // The first policy (in set order) that moves `from` to `to` for `tag`.
    let edge = |tag: &str, from: PullPolicy, to: PullPolicy| {
        with_pull.iter().position(|(_, m)| {
            m.set == to && m.replace.contains(&from) && m.mutable_tags.iter().any(|t| t == tag)
        })
    };
    for tag in tags {
        for [x, y, z] in [[Always, IfNotPresent, Never], [Always, Never, IfNotPresent]] {
            let (Some(a), Some(b), Some(c)) = (edge(tag, x, y), edge(tag, y, z), edge(tag, z, x))
            else {
                continue;
            };
            let mut three = [a, b, c];
            three.sort_unstable();
            let names: Vec<String> = three
                .iter()
                .filter_map(|&i| with_pull.get(i))
                .map(|(p, m)| format!("{:?} (sets {})", p.name, m.set.as_str()))
                .collect();
            if let Some((last, _)) = three.last().and_then(|&i| with_pull.get(i)) {
                errors.push(error_at(
                    &last.source.file,
                    last.source.line,
                    0,
                    format!(
                        "policies {} replace each other's imagePullPolicy in a circle for tag {tag:?}: they would never settle; drop one value from one policy's replace",
                        names.join(", ")
                    ),
                ));
            }
        }
    }
    errors
}

/// Hex SHA-256 over the file names and contents, so logs can name the exact set in force.
pub(crate) fn content_hash(sources: &[(String, String)]) -> String {
    let mut hasher = Sha256::new();
    for (file, text) in sources {
        let name = Path::new(file)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update((text.len() as u64).to_le_bytes());
        hasher.update(text.as_bytes());
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn too_large(len: usize) -> String {
    format!("file is {len} bytes; policy files are limited to {MAX_FILE_BYTES} bytes")
}

fn error_at(file: &str, line: u64, column: u64, reason: impl Into<String>) -> LoadError {
    LoadError {
        file: file.to_string(),
        line,
        column,
        reason: reason.into(),
    }
}

/// Parses one policy file (several YAML documents allowed). Pure.
pub fn parse_policies(file: &str, text: &str) -> Result<Vec<Policy>, Vec<LoadError>> {
    parse_file(file, text).map(|(policies, _)| policies)
}

/// Parses one policy file, with the warnings about what it says.
fn parse_file(file: &str, text: &str) -> Result<(Vec<Policy>, Vec<LoadWarning>), Vec<LoadError>> {
    if text.len() > MAX_FILE_BYTES {
        return Err(vec![error_at(file, 0, 0, too_large(text.len()))]);
    }
    let options = serde_saphyr::options! {
        strict_booleans: true,
    };
    let docs: Vec<PolicyDoc> =
        serde_saphyr::from_multiple_with_options(text, options).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            vec![error_at(file, line, column, yaml_reason(&e))]
        })?;
    let mut checker = Checker {
        file,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let policies: Vec<Policy> = docs
        .into_iter()
        .filter_map(|doc| checker.policy(doc))
        .collect();
    if checker.errors.is_empty() {
        Ok((policies, checker.warnings))
    } else {
        Err(checker.errors)
    }
}

/// serde-saphyr renders a snippet of the source after the message; the first line is the
/// reason, the location is reported separately.
fn yaml_reason(e: &serde_saphyr::Error) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("invalid YAML").trim();
    first.to_string()
}

struct Checker<'a> {
    file: &'a str,
    errors: Vec<LoadError>,
    warnings: Vec<LoadWarning>,
}

impl Checker<'_> {
    fn err(&mut self, at: &Location, reason: impl Into<String>) {
        self.errors
            .push(error_at(self.file, at.line(), at.column(), reason));
    }

    /// One `kubeletRootDirs` entry: an absolute path other than `/`, normalised.
    fn kubelet_root_dir(&mut self, dir: &Spanned<String>) -> Option<String> {
        let normal = crate::pod::normalize_path(&dir.value).filter(|p| p != "/");
        if normal.is_none() {
            self.err(
                &dir.referenced,
                format!(
                    "kubeletRootDirs entry {:?} must be an absolute path below / (the kubelet's \
                     --root-dir)",
                    dir.value
                ),
            );
        }
        normal
    }

    fn warn(&mut self, at: &Location, reason: impl Into<String>) {
        self.warnings.push(LoadWarning {
            file: self.file.to_string(),
            line: at.line(),
            column: at.column(),
            reason: reason.into(),
        });
    }

    fn policy(&mut self, doc: PolicyDoc) -> Option<Policy> {
        let before = self.errors.len();
        if doc.api_version.value != API_VERSION {
            self.err(
                &doc.api_version.referenced,
                format!(
                    "apiVersion must be {API_VERSION:?}, not {:?}",
                    doc.api_version.value
                ),
            );
        }
        if doc.kind.value != KIND {
            self.err(
                &doc.kind.referenced,
                format!("kind must be {KIND:?}, not {:?}", doc.kind.value),
            );
        }
        let name = doc.metadata.name;
        if !(is_dns1123_subdomain(&name.value) && name.value.len() <= 63) {
            self.err(
                &name.referenced,
                format!(
                    "metadata.name {:?} must be a DNS-1123 subdomain of at most 63 characters",
                    name.value
                ),
            );
        }
        let spec = doc.spec;
        let action = spec.action.unwrap_or(Action::Enforce);
        let match_ = self.match_(spec.match_.unwrap_or_default());
        let exemptions = spec
            .exemptions
            .into_iter()
            .filter_map(|e| self.exemption(e))
            .collect();
        let validate_doc = spec.validate.unwrap_or_default();
        let mut validate = Validate {
            hosts_file: validate_doc.hosts_file.map(|h| HostsFileRule {
                undecidable: h.undecidable.unwrap_or_default(),
                kubelet_root_dirs: h
                    .kubelet_root_dirs
                    .iter()
                    .filter_map(|dir| self.kubelet_root_dir(dir))
                    .collect(),
            }),
            forbidden_combinations: Vec::new(),
        };
        if let Some(host_ns) = validate_doc.host_namespaces {
            for combo in host_ns.forbidden_combinations {
                if combo.value.is_empty() {
                    self.err(&combo.referenced, "a forbidden combination needs an atom");
                    continue;
                }
                let mut atoms = Vec::new();
                for atom in combo.value {
                    match Atom::parse(&atom.value) {
                        Some(a) if atoms.contains(&a) => self.err(
                            &atom.referenced,
                            format!("atom {:?} is listed twice in one combination", atom.value),
                        ),
                        Some(a) => atoms.push(a),
                        None => self.err(
                            &atom.referenced,
                            format!(
                                "unknown atom {:?}: use hostNetwork, hostPID, hostIPC, \
                                 shareProcessNamespace, privileged, hostPort or capability:<NAME>",
                                atom.value
                            ),
                        ),
                    }
                }
                validate.forbidden_combinations.push(atoms);
            }
        }
        let mutate_doc = spec.mutate.unwrap_or_default();
        let mutate = Mutate {
            templates: mutate_doc.templates,
            image_pull_policy: mutate_doc
                .image_pull_policy
                .map(|p| self.pull_policy(p.value)),
            host_aliases: mutate_doc.host_aliases.map(|h| self.host_aliases(h)),
        };
        if validate.hosts_file.is_none()
            && validate.forbidden_combinations.is_empty()
            && mutate.is_empty()
        {
            self.err(
                &name.referenced,
                format!(
                    "policy {:?} turns on no rule: add spec.validate or spec.mutate",
                    name.value
                ),
            );
        }
        if self.errors.len() > before {
            return None;
        }
        Some(Policy {
            name: name.value,
            action,
            match_,
            exemptions,
            validate,
            mutate,
            source: Source {
                file: self.file.to_string(),
                line: name.referenced.line(),
            },
        })
    }

    fn globs(&mut self, patterns: Vec<Spanned<String>>) -> Globs {
        let first = patterns.first().map(|p| p.referenced);
        let mut kept = Vec::new();
        for p in patterns {
            if p.value.is_empty() {
                self.err(&p.referenced, "empty glob pattern");
                continue;
            }
            if let Err(e) = Globs::new(vec![p.value.clone()]) {
                self.err(
                    &p.referenced,
                    format!("bad glob {:?}: {}", p.value, e.kind()),
                );
                continue;
            }
            kept.push(p.value);
        }
        // Each pattern compiled on its own above, so the set should compile too; if it does
        // not, that is an error: an empty list would mean "match anything".
        match Globs::new(kept) {
            Ok(globs) => globs,
            Err(e) => {
                if let Some(at) = first {
                    self.err(&at, format!("glob list does not compile: {}", e.kind()));
                }
                Globs::empty()
            }
        }
    }

    fn match_(&mut self, doc: MatchDoc) -> Match {
        Match {
            namespaces: self.globs(doc.namespaces),
            exclude_namespaces: self.globs(doc.exclude_namespaces),
            pod_selector: doc.pod_selector.map(|s| self.selector(s)),
        }
    }

    fn selector(&mut self, doc: Spanned<SelectorDoc>) -> Selector {
        let at = doc.referenced;
        let doc = doc.value;
        let mut requirements: Vec<Requirement> = doc
            .match_labels
            .into_iter()
            .map(|(key, value)| Requirement {
                key,
                operator: Operator::In,
                values: vec![value],
            })
            .collect();
        for expr in doc.match_expressions {
            let operator = expr.operator;
            let needs_values = matches!(operator, Operator::In | Operator::NotIn);
            if needs_values && expr.values.is_empty() {
                self.err(
                    &at,
                    format!(
                        "matchExpressions key {:?}: {operator:?} needs values",
                        expr.key
                    ),
                );
            }
            if !needs_values && !expr.values.is_empty() {
                self.err(
                    &at,
                    format!(
                        "matchExpressions key {:?}: {operator:?} takes no values",
                        expr.key
                    ),
                );
            }
            if expr.key.is_empty() {
                self.err(&at, "matchExpressions entry with an empty key");
            }
            requirements.push(Requirement {
                key: expr.key,
                operator,
                values: expr.values,
            });
        }
        Selector { requirements }
    }

    fn exemption(&mut self, doc: Spanned<ExemptionDoc>) -> Option<Exemption> {
        let at = doc.referenced;
        let doc = doc.value;
        let before = self.errors.len();
        let reason = doc.reason.unwrap_or_default().trim().to_string();
        if reason.is_empty() {
            self.err(&at, "exemption needs a non-empty reason");
        }
        let no_criteria = doc.service_accounts.is_empty()
            && doc.namespaces.is_empty()
            && doc.usernames.is_empty()
            && doc.groups.is_empty()
            && doc.pod_selector.is_none();
        if no_criteria {
            self.err(
                &at,
                "exemption matches everything: give serviceAccounts, namespaces, usernames, \
                 groups or podSelector",
            );
        }
        let only_pod_selector = doc.service_accounts.is_empty()
            && doc.namespaces.is_empty()
            && doc.usernames.is_empty()
            && doc.groups.is_empty()
            && doc.pod_selector.is_some();
        if only_pod_selector {
            // Labels are written by whoever writes the Pod: anyone who may create Pods can
            // give theirs the exempting labels.
            self.warn(
                &at,
                "exemption relies only on podSelector, and anyone who can create a Pod sets \
                 its labels: any such user can claim this exemption; add serviceAccounts, \
                 namespaces, usernames or groups to say who it is for",
            );
        }
        let mut service_accounts = Vec::new();
        for sa in doc.service_accounts {
            match sa.value.split_once(':') {
                Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains(':') => {
                    let namespace = self.globs(vec![Spanned {
                        value: ns.to_string(),
                        referenced: sa.referenced,
                        defined: sa.defined,
                    }]);
                    let name = self.globs(vec![Spanned {
                        value: name.to_string(),
                        referenced: sa.referenced,
                        defined: sa.defined,
                    }]);
                    service_accounts.push(ServiceAccountPattern { namespace, name });
                }
                _ => self.err(
                    &sa.referenced,
                    format!(
                        "service account {:?} must be written namespace:name",
                        sa.value
                    ),
                ),
            }
        }
        let expires = doc
            .expires
            .and_then(|d| match d.value.parse::<jiff::civil::Date>() {
                Ok(date) if d.value.len() == 10 => Some(date),
                _ => {
                    self.err(
                        &d.referenced,
                        format!("expires {:?} must be a UTC date YYYY-MM-DD", d.value),
                    );
                    None
                }
            });
        let exemption = Exemption {
            service_accounts,
            namespaces: self.globs(doc.namespaces),
            usernames: self.globs(doc.usernames),
            groups: self.globs(doc.groups),
            pod_selector: doc.pod_selector.map(|s| self.selector(s)),
            expires,
            reason,
        };
        (self.errors.len() == before).then_some(exemption)
    }

    fn pull_policy(&mut self, doc: ImagePullPolicyDoc) -> PullPolicyMutation {
        let mut mutable_tags = Vec::new();
        match doc.mutable_tags {
            None => mutable_tags.push("latest".to_string()),
            Some(tags) => {
                for tag in tags {
                    if is_tag(&tag.value) {
                        mutable_tags.push(tag.value);
                    } else {
                        self.err(
                            &tag.referenced,
                            format!(
                                "mutable tag {:?} is not a valid image tag ([A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})",
                                tag.value
                            ),
                        );
                    }
                }
            }
        }
        PullPolicyMutation {
            mutable_tags,
            set: doc.set.unwrap_or(PullPolicy::Always),
            replace: doc
                .replace
                .unwrap_or_else(|| vec![PullPolicy::IfNotPresent]),
        }
    }

    fn host_aliases(&mut self, doc: Spanned<HostAliasesDoc>) -> HostAliasesMutation {
        let at = doc.referenced;
        let doc = doc.value;
        if doc.entries.is_empty() {
            self.err(&at, "hostAliases needs at least one entry");
        }
        let mut entries: Vec<HostAlias> = Vec::new();
        let mut owner: BTreeMap<String, IpAddr> = BTreeMap::new();
        for entry in doc.entries {
            let ip = match entry.ip.value.parse::<IpAddr>() {
                Ok(ip) => ip,
                Err(_) => {
                    self.err(
                        &entry.ip.referenced,
                        format!("invalid IP address {:?}", entry.ip.value),
                    );
                    continue;
                }
            };
            if entries.iter().any(|e| e.ip == ip) {
                self.err(
                    &entry.ip.referenced,
                    format!("IP {ip} is listed twice: merge its hostnames into one entry"),
                );
                continue;
            }
            if entry.hostnames.is_empty() {
                self.err(
                    &entry.ip.referenced,
                    format!("entry for {ip} has no hostnames"),
                );
            }
            let mut hostnames = Vec::new();
            for host in entry.hostnames {
                if !is_dns1123_subdomain(&host.value) {
                    self.err(
                        &host.referenced,
                        format!("hostname {:?} is not a DNS-1123 subdomain", host.value),
                    );
                    continue;
                }
                if let Some(other) = owner.get(&host.value) {
                    self.err(
                        &host.referenced,
                        format!("hostname {:?} is already mapped to {other}", host.value),
                    );
                    continue;
                }
                owner.insert(host.value.clone(), ip);
                hostnames.push(host.value);
            }
            entries.push(HostAlias { ip, hostnames });
        }
        HostAliasesMutation {
            entries,
            on_conflict: doc.on_conflict.unwrap_or(OnConflict::KeepPod),
        }
    }
}

/// The docker tag grammar: `[\w][\w.-]{0,127}`.
fn is_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    !bytes.is_empty()
        && bytes.len() <= 128
        && bytes.first().is_some_and(word)
        && bytes.iter().all(|b| word(b) || *b == b'.' || *b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
apiVersion: podgate.dev/v1alpha1
kind: PodPolicy
metadata:
  name: guard-hosts
spec:
  action: Warn
  match:
    namespaces: ["team-*"]
    excludeNamespaces: ["kube-system"]
    podSelector:
      matchLabels: {tier: web}
  exemptions:
    - serviceAccounts: ["monitoring:node-exporter"]
      expires: "2027-03-31"
      reason: "node exporter needs host PID"
  validate:
    hostsFile: {}
    hostNamespaces:
      forbiddenCombinations:
        - [hostPID, hostNetwork]
        - [hostPID, "capability:SYS_PTRACE"]
  mutate:
    templates: true
    imagePullPolicy:
      mutableTags: [latest, main]
    hostAliases:
      entries:
        - ip: 10.1.2.3
          hostnames: [foo.remote, bar.remote]
      onConflict: Override
"#;

    fn errors(text: &str) -> Vec<LoadError> {
        parse_policies("p.yaml", text).expect_err("should fail")
    }

    fn reasons(text: &str) -> String {
        errors(text)
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn parses_every_field_of_the_documented_format() {
        let p = parse_policies("p.yaml", FULL).unwrap();
        assert_eq!(p.len(), 1);
        let p = &p[0];
        assert_eq!(p.name, "guard-hosts");
        assert_eq!(p.action, Action::Warn);
        assert_eq!(p.source.line, 5);
        assert!(p.match_.namespaces.is_match("team-a"));
        assert!(p.match_.exclude_namespaces.is_match("kube-system"));
        assert_eq!(
            p.validate.hosts_file,
            Some(HostsFileRule {
                undecidable: crate::policy::Undecidable::Warn,
                kubelet_root_dirs: Vec::new(),
            })
        );
        assert_eq!(
            p.validate.forbidden_combinations[1],
            vec![Atom::HostPid, Atom::Capability("SYS_PTRACE".into())]
        );
        let pull = p.mutate.image_pull_policy.as_ref().unwrap();
        assert_eq!(pull.mutable_tags, ["latest", "main"]);
        assert_eq!(pull.set, PullPolicy::Always);
        assert_eq!(pull.replace, [PullPolicy::IfNotPresent]);
        let ha = p.mutate.host_aliases.as_ref().unwrap();
        assert_eq!(ha.on_conflict, OnConflict::Override);
        assert_eq!(ha.entries[0].hostnames, ["foo.remote", "bar.remote"]);
        assert_eq!(
            p.exemptions[0].expires,
            Some(jiff::civil::date(2027, 3, 31))
        );
        assert!(p.mutate.templates);
    }

    #[test]
    fn null_hosts_file_key_turns_the_rule_on() {
        let text = "apiVersion: podgate.dev/v1alpha1\nkind: PodPolicy\nmetadata: {name: a}\nspec:\n  validate:\n    hostsFile:\n";
        assert!(
            parse_policies("p.yaml", text).unwrap()[0]
                .validate
                .hosts_file
                .is_some()
        );
    }

    #[test]
    fn hosts_file_undecidable_is_read_and_checked_with_its_line() {
        let with = |value: &str| {
            format!(
                "apiVersion: podgate.dev/v1alpha1\nkind: PodPolicy\nmetadata: {{name: a}}\nspec:\n  validate:\n    hostsFile:\n      undecidable: {value}\n"
            )
        };
        for (value, expected) in [
            ("Allow", crate::policy::Undecidable::Allow),
            ("Warn", crate::policy::Undecidable::Warn),
            ("Deny", crate::policy::Undecidable::Deny),
        ] {
            let p = parse_policies("p.yaml", &with(value)).unwrap();
            assert_eq!(
                p[0].validate.hosts_file,
                Some(HostsFileRule {
                    undecidable: expected,
                    kubelet_root_dirs: Vec::new(),
                }),
                "{value}"
            );
        }
        let e = parse_policies("p.yaml", &with("Sometimes")).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!((e[0].file.as_str(), e[0].line), ("p.yaml", 7), "{}", e[0]);
        assert!(e[0].reason.contains("Sometimes"), "{}", e[0]);
    }

    #[test]
    fn kubelet_root_dirs_are_normalised_and_checked_with_their_lines() {
        let with = |dirs: &str| {
            format!(
                "apiVersion: podgate.dev/v1alpha1\nkind: PodPolicy\nmetadata: {{name: a}}\nspec:\n  validate:\n    hostsFile:\n      kubeletRootDirs:\n{dirs}"
            )
        };
        let p = parse_policies(
            "p.yaml",
            &with("        - /data/kubelet/\n        - //srv/./k\n"),
        )
        .unwrap();
        assert_eq!(
            p[0].validate.hosts_file.as_ref().unwrap().kubelet_root_dirs,
            ["/data/kubelet", "/srv/k"]
        );
        let e = parse_policies(
            "p.yaml",
            &with("        - /ok\n        - var/lib/kubelet\n        - /..\n"),
        )
        .unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
        assert_eq!((e[0].file.as_str(), e[0].line), ("p.yaml", 9), "{}", e[0]);
        assert!(e[0].reason.contains("\"var/lib/kubelet\""), "{}", e[0]);
        assert!(e[0].reason.contains("absolute path"), "{}", e[0]);
        assert_eq!(e[1].line, 10, "{}", e[1]);
    }

    #[test]
    fn several_documents_per_file() {
        let text = format!("{FULL}\n---\n{}", FULL.replace("guard-hosts", "second"));
        let p = parse_policies("p.yaml", &text).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].name, "second");
        assert!(p[1].source.line > p[0].source.line);
    }

    #[test]
    fn refuses_unknown_fields_with_line() {
        let e = errors(&FULL.replace("templates: true", "templates: true\n    tempaltes: 1"));
        assert_eq!(e.len(), 1);
        assert!(e[0].reason.contains("tempaltes"), "{}", e[0]);
        assert_eq!(e[0].line, 25);
    }

    #[test]
    fn refuses_duplicate_keys() {
        let e = errors(&FULL.replace("  action: Warn", "  action: Warn\n  action: Audit"));
        assert!(e[0].reason.to_lowercase().contains("duplicate"), "{}", e[0]);
        assert_eq!(e[0].line, 8);
    }

    #[test]
    fn yaml11_booleans_are_strings_not_booleans() {
        // `templates: on` must not silently become true.
        let e = errors(&FULL.replace("templates: true", "templates: on"));
        assert_eq!(e.len(), 1, "{e:?}");
        // and `y` as a namespace glob stays the string "y".
        let p = parse_policies("p.yaml", &FULL.replace("[\"team-*\"]", "[y, on]")).unwrap();
        assert!(p[0].match_.namespaces.is_match("y"));
        assert!(p[0].match_.namespaces.is_match("on"));
    }

    #[test]
    fn reports_every_semantic_error_at_once_with_lines() {
        let bad = FULL
            .replace("[\"team-*\"]", "[\"team-[\"]")
            .replace(
                "        - ip: 10.1.2.3\n",
                "        - ip: 10.1.2.300\n          hostnames: [a]\n        - ip: 10.1.2.3\n",
            )
            .replace("bar.remote", "Bar_Remote")
            .replace("hostNetwork]", "hostNet]")
            .replace("      reason: \"node exporter needs host PID\"\n", "")
            .replace("\"2027-03-31\"", "\"2027-02-30\"");
        let text = reasons(&bad);
        for needle in [
            "p.yaml:9:18: bad glob",
            "p.yaml:28:15: invalid IP address \"10.1.2.300\"",
            "p.yaml:31:",
            "hostname \"Bar_Remote\" is not a DNS-1123 subdomain",
            "p.yaml:20:21: unknown atom \"hostNet\"",
            "p.yaml:14:7: exemption needs a non-empty reason",
            "p.yaml:15:16: expires \"2027-02-30\"",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
        assert_eq!(errors(&bad).len(), 6, "{text}");
    }

    #[test]
    fn refuses_wrong_api_version_kind_and_name() {
        let bad = FULL
            .replace("podgate.dev/v1alpha1", "podgate.dev/v1")
            .replace("kind: PodPolicy", "kind: Policy")
            .replace("name: guard-hosts", "name: Guard_Hosts");
        let text = reasons(&bad);
        assert!(text.contains("p.yaml:2:") && text.contains("apiVersion must be"));
        assert!(text.contains("p.yaml:3:") && text.contains("kind must be"));
        assert!(text.contains("p.yaml:5:") && text.contains("metadata.name"));
    }

    #[test]
    fn refuses_exemption_without_criteria_and_bad_service_account() {
        let bad = FULL.replace(
            "  exemptions:\n",
            "  exemptions:\n    - serviceAccounts: [\"node-exporter\"]\n      reason: x\n    - reason: everything\n",
        );
        let text = reasons(&bad);
        assert!(text.contains("must be written namespace:name"), "{text}");
        assert!(text.contains("exemption matches everything"), "{text}");
    }

    #[test]
    fn refuses_policy_that_does_nothing_and_empty_combination() {
        let text = "apiVersion: podgate.dev/v1alpha1\nkind: PodPolicy\nmetadata: {name: a}\nspec:\n  validate:\n    hostNamespaces:\n      forbiddenCombinations: [[]]\n";
        let r = reasons(text);
        assert!(r.contains("needs an atom"), "{r}");
        assert!(r.contains("turns on no rule"), "{r}");
    }

    #[test]
    fn refuses_duplicate_hostnames_and_ips_within_a_policy() {
        let bad = FULL.replace(
            "hostnames: [foo.remote, bar.remote]",
            "hostnames: [foo.remote, bar.remote]\n        - ip: 10.1.2.3\n          hostnames: [x]\n        - ip: 10.9.9.9\n          hostnames: [foo.remote]",
        );
        let r = reasons(&bad);
        assert!(r.contains("IP 10.1.2.3 is listed twice"), "{r}");
        assert!(
            r.contains("\"foo.remote\" is already mapped to 10.1.2.3"),
            "{r}"
        );
    }

    #[test]
    fn refuses_bad_mutable_tag_and_unknown_enum_values() {
        assert!(reasons(&FULL.replace("[latest, main]", "[\"la test\"]")).contains("mutable tag"));
        assert!(reasons(&FULL.replace("action: Warn", "action: Block")).contains("Block"));
        assert!(
            reasons(&FULL.replace("onConflict: Override", "onConflict: Merge")).contains("Merge")
        );
    }

    #[test]
    fn duplicate_names_across_files_name_both_places() {
        let sources = vec![
            ("a.yaml".to_string(), FULL.to_string()),
            ("b.yaml".to_string(), FULL.to_string()),
        ];
        let e = PolicySet::from_sources(&sources).unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert_eq!(
            e.to_string(),
            "b.yaml:5:0: duplicate policy name \"guard-hosts\": already defined at a.yaml:5"
        );
    }

    #[test]
    fn errors_from_every_file_are_reported_together() {
        let sources = vec![
            ("a.yaml".to_string(), "kind: [".to_string()),
            (
                "b.yaml".to_string(),
                FULL.replace("hostPID, hostNetwork", "hostPID, x"),
            ),
        ];
        let e = PolicySet::from_sources(&sources).unwrap_err();
        assert_eq!(e.0.len(), 2, "{e}");
        assert_eq!(e.0[0].file, "a.yaml");
        assert_eq!(e.0[1].file, "b.yaml");
    }

    #[test]
    fn refuses_pull_policies_that_undo_each_other() {
        let pull = |name: &str, set: &str, replace: &str| {
            format!(
                "apiVersion: podgate.dev/v1alpha1\nkind: PodPolicy\nmetadata: {{name: {name}}}\nspec:\n  mutate:\n    imagePullPolicy: {{set: {set}, replace: [{replace}]}}\n"
            )
        };
        let fight = PolicySet::from_sources(&[
            ("a.yaml".into(), pull("always", "Always", "IfNotPresent")),
            ("b.yaml".into(), pull("cached", "IfNotPresent", "Always")),
        ])
        .unwrap_err();
        assert_eq!(fight.0.len(), 1);
        assert!(
            fight.0[0]
                .to_string()
                .starts_with("b.yaml:3:0: policy \"cached\" sets imagePullPolicy IfNotPresent"),
            "{fight}"
        );
        // Three policies going round the three values are refused too.
        let circle = PolicySet::from_sources(&[
            ("a.yaml".into(), pull("always", "Always", "IfNotPresent")),
            ("b.yaml".into(), pull("never", "Never", "Always")),
            ("c.yaml".into(), pull("cached", "IfNotPresent", "Never")),
        ])
        .unwrap_err();
        assert_eq!(circle.0.len(), 1, "{circle}");
        assert!(
            circle.0[0].to_string().starts_with("c.yaml:3:0: policies \"always\" (sets Always), \"never\" (sets Never), \"cached\" (sets IfNotPresent) replace each other's imagePullPolicy in a circle for tag \"latest\""),
            "{circle}"
        );
        // One-way is stable: the second keeps what the first set.
        assert!(
            PolicySet::from_sources(&[
                ("a.yaml".into(), pull("always", "Always", "IfNotPresent")),
                ("b.yaml".into(), pull("never", "Never", "IfNotPresent")),
            ])
            .is_ok()
        );
    }

    #[test]
    fn hash_changes_with_content_and_is_stable() {
        let a = PolicySet::from_sources(&[("a.yaml".into(), FULL.into())]).unwrap();
        let b = PolicySet::from_sources(&[("a.yaml".into(), FULL.into())]).unwrap();
        let c = PolicySet::from_sources(&[("a.yaml".into(), format!("{FULL}\n"))]).unwrap();
        assert_eq!(a.hash(), b.hash());
        assert_ne!(a.hash(), c.hash());
        assert_eq!(a.hash().len(), 64);
    }

    #[test]
    fn load_dir_skips_hidden_and_non_yaml_and_follows_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("..2026_11_27");
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("p.yaml"), FULL).unwrap();
        std::os::unix::fs::symlink("..2026_11_27", dir.path().join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/p.yaml", dir.path().join("p.yaml")).unwrap();
        std::fs::write(dir.path().join("README.md"), "not yaml").unwrap();
        let set = PolicySet::load_dir(dir.path()).unwrap();
        assert_eq!(set.len(), 1);
        std::fs::write(dir.path().join("bad.yml"), "apiVersion: [").unwrap();
        let e = PolicySet::load_dir(dir.path()).unwrap_err();
        assert!(e.to_string().contains("bad.yml:"), "{e}");
        assert!(PolicySet::load_dir(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn warns_when_an_exemption_relies_only_on_pod_selector() {
        let policy = |exemption: &str| {
            format!(
                "apiVersion: podgate.dev/v1alpha1\nkind: PodPolicy\nmetadata:\n  name: p\nspec:\n  \
                 validate:\n    hostsFile: {{}}\n  exemptions:\n    - reason: r\n{exemption}"
            )
        };
        let cases = [
            (
                "podSelector alone",
                "      podSelector: {matchLabels: {exempt: \"true\"}}\n",
                true,
            ),
            (
                "podSelector with an expiry is still only labels",
                "      podSelector: {matchLabels: {exempt: \"true\"}}\n      expires: \"2030-01-01\"\n",
                true,
            ),
            ("empty podSelector", "      podSelector: {}\n", true),
            (
                "podSelector with a namespace",
                "      podSelector: {matchLabels: {a: b}}\n      namespaces: [infra]\n",
                false,
            ),
            (
                "podSelector with a service account",
                "      podSelector: {matchLabels: {a: b}}\n      serviceAccounts: [\"infra:agent\"]\n",
                false,
            ),
            (
                "podSelector with a username",
                "      podSelector: {matchLabels: {a: b}}\n      usernames: [ci-bot]\n",
                false,
            ),
            (
                "podSelector with a group",
                "      podSelector: {matchLabels: {a: b}}\n      groups: [platform]\n",
                false,
            ),
            ("a namespace alone", "      namespaces: [infra]\n", false),
        ];
        for (name, exemption, warned) in cases {
            let text = policy(exemption);
            let set = PolicySet::from_sources(&[("p.yaml".into(), text)])
                .unwrap_or_else(|e| panic!("{name}: a warning never refuses the set: {e}"));
            assert_eq!(set.len(), 1, "{name}");
            let warnings: Vec<String> = set.warnings().iter().map(|w| w.to_string()).collect();
            if warned {
                assert_eq!(warnings.len(), 1, "{name}: {warnings:?}");
                // The exemption starts on line 9 (`- reason: r`), column 7.
                assert!(
                    warnings[0].starts_with("p.yaml:9:7: "),
                    "{name}: {}",
                    warnings[0]
                );
                assert!(
                    warnings[0].contains("warning: exemption relies only on podSelector"),
                    "{name}: {}",
                    warnings[0]
                );
            } else {
                assert!(warnings.is_empty(), "{name}: {warnings:?}");
            }
        }
        // The shipped policies have no such exemption.
        let shipped =
            PolicySet::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")).unwrap();
        assert!(shipped.warnings().is_empty(), "{:?}", shipped.warnings());
    }

    #[test]
    fn exemptions_expiring_counts_only_those_within_the_window() {
        let set = PolicySet::from_sources(&[("a.yaml".into(), FULL.into())]).unwrap();
        let ts = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        assert_eq!(set.exemptions_expiring(ts("2027-03-25T00:00:00Z"), 7), 1);
        assert_eq!(set.exemptions_expiring(ts("2027-03-01T00:00:00Z"), 7), 0);
        assert_eq!(set.exemptions_expiring(ts("2027-04-01T00:00:00Z"), 7), 0);
    }
}
