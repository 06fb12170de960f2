//! The policy model: validated domain types that the engine evaluates.
//!
//! A `PolicySet` is immutable once built; the server swaps whole sets on reload so that each
//! decision sees exactly one version. Only `loader` touches the file system.

pub(crate) mod configmap;
mod file;
mod loader;
mod selector;

use std::collections::BTreeMap;
use std::net::IpAddr;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

pub use loader::{LoadError, LoadErrors, LoadWarning, parse_policies};
pub use selector::{Operator, Requirement, Selector};

/// Where a policy was defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The file, as given to the loader.
    pub file: String,
    /// 1-based line of the policy's `metadata.name`.
    pub line: u64,
}

/// What a violation of a policy does (`spec.action`; the policy-file spelling is the variant
/// name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
pub enum Action {
    /// Violations deny the request; mutations patch.
    Enforce,
    /// Violations become admission warnings; mutations patch.
    Warn,
    /// Violations and would-be patches only go to audit annotations and the log; nothing is
    /// denied or patched.
    Audit,
}

impl Action {
    /// True when the policy's mutations are applied (Enforce, Warn); an Audit policy only
    /// reports what they would change. The engine needs this to plan; everything else an
    /// action means is decided in `verdict`.
    pub fn patches(self) -> bool {
        self != Action::Audit
    }

    /// The name used in policy files, metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Enforce => "Enforce",
            Action::Warn => "Warn",
            Action::Audit => "Audit",
        }
    }
}

/// A compiled list of glob patterns.
#[derive(Debug, Clone)]
pub struct Globs {
    patterns: Vec<String>,
    set: GlobSet,
    /// No pattern has a glob metacharacter: each matches only itself, compared as text
    /// (`GlobSet` would first build a `Candidate` of the text, on every call).
    literal: bool,
}

/// The characters that make a glob pattern more than its own text (`globset`'s syntax).
const GLOB_META: &[char] = &['*', '?', '[', ']', '{', '}', '\\'];

impl Globs {
    /// Compiles the patterns; `*` matches any run of characters, `?` one, `[a-z]` a class.
    pub fn new(patterns: Vec<String>) -> Result<Globs, globset::Error> {
        let mut builder = GlobSetBuilder::new();
        for pattern in &patterns {
            builder.add(GlobBuilder::new(pattern).literal_separator(false).build()?);
        }
        Ok(Globs {
            set: builder.build()?,
            literal: patterns.iter().all(|p| !p.contains(GLOB_META)),
            patterns,
        })
    }

    /// No patterns at all.
    pub fn empty() -> Globs {
        Globs {
            patterns: Vec::new(),
            set: GlobSet::empty(),
            literal: true,
        }
    }

    /// True when no pattern was given.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// True when any pattern matches `text`.
    pub fn is_match(&self, text: &str) -> bool {
        if self.literal {
            return self.patterns.iter().any(|p| p == text);
        }
        self.set.is_match(text)
    }
}

/// Which objects a policy applies to.
#[derive(Debug, Clone)]
pub struct Match {
    /// Namespace globs; empty means every namespace.
    pub namespaces: Globs,
    /// Namespace globs that never match.
    pub exclude_namespaces: Globs,
    /// Selector over Pod or template labels; `None` matches all.
    pub pod_selector: Option<Selector>,
}

impl Match {
    /// True when `namespace` passes the namespace globs: the policy applies unless its
    /// podSelector says otherwise.
    pub(crate) fn may_match_namespace(&self, namespace: &str) -> bool {
        (self.namespaces.is_empty() || self.namespaces.is_match(namespace))
            && !self.exclude_namespaces.is_match(namespace)
    }

    /// True when the policy applies to an object in `namespace` with `labels`.
    pub fn matches(&self, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
        (self.namespaces.is_empty() || self.namespaces.is_match(namespace))
            && !self.exclude_namespaces.is_match(namespace)
            && self.pod_selector.as_ref().is_none_or(|s| s.matches(labels))
    }
}

/// A service-account pattern: `namespace:name`, globs allowed in both parts.
#[derive(Debug, Clone)]
pub struct ServiceAccountPattern {
    /// Namespace glob.
    pub namespace: Globs,
    /// Name glob.
    pub name: Globs,
}

/// An exemption from one policy.
#[derive(Debug, Clone)]
pub struct Exemption {
    /// Service accounts (`namespace:name`); empty means any.
    pub service_accounts: Vec<ServiceAccountPattern>,
    /// Namespace globs; empty means any.
    pub namespaces: Globs,
    /// Username globs; empty means any.
    pub usernames: Globs,
    /// Group globs; empty means any.
    pub groups: Globs,
    /// Selector over Pod or template labels.
    pub pod_selector: Option<Selector>,
    /// The last UTC day on which the exemption applies.
    pub expires: Option<jiff::civil::Date>,
    /// Why it exists.
    pub reason: String,
}

/// Who asks and about what, as far as exemptions care.
#[derive(Debug, Clone, Copy)]
pub struct ExemptionQuery<'a> {
    /// The object's namespace.
    pub namespace: &'a str,
    /// The Pod's service account name (defaults to `default`).
    pub service_account: &'a str,
    /// `request.userInfo.username`.
    pub username: &'a str,
    /// `request.userInfo.groups`.
    pub groups: &'a [String],
    /// Pod or template labels.
    pub labels: &'a BTreeMap<String, String>,
    /// Today in UTC.
    pub today: jiff::civil::Date,
}

impl Exemption {
    /// True when every given criterion holds and the exemption has not expired.
    pub fn applies(&self, q: &ExemptionQuery<'_>) -> bool {
        self.expires.is_none_or(|last| q.today <= last)
            && (self.service_accounts.is_empty()
                || self.service_accounts.iter().any(|p| {
                    p.namespace.is_match(q.namespace) && p.name.is_match(q.service_account)
                }))
            && (self.namespaces.is_empty() || self.namespaces.is_match(q.namespace))
            && (self.usernames.is_empty() || self.usernames.is_match(q.username))
            && (self.groups.is_empty() || q.groups.iter().any(|g| self.groups.is_match(g)))
            && self
                .pod_selector
                .as_ref()
                .is_none_or(|s| s.matches(q.labels))
    }
}

/// A host-namespace combination atom.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Atom {
    /// `spec.hostNetwork: true`.
    HostNetwork,
    /// `spec.hostPID: true`.
    HostPid,
    /// `spec.hostIPC: true`.
    HostIpc,
    /// `spec.shareProcessNamespace: true`.
    ShareProcessNamespace,
    /// Any container with `securityContext.privileged: true`.
    Privileged,
    /// Any container port with a `hostPort`.
    HostPort,
    /// Any container adding this capability (upper case, without `CAP_`), or adding `ALL`.
    Capability(String),
}

impl Atom {
    /// Parses the policy-file spelling.
    pub fn parse(text: &str) -> Option<Atom> {
        Some(match text {
            "hostNetwork" => Atom::HostNetwork,
            "hostPID" => Atom::HostPid,
            "hostIPC" => Atom::HostIpc,
            "shareProcessNamespace" => Atom::ShareProcessNamespace,
            "privileged" => Atom::Privileged,
            "hostPort" => Atom::HostPort,
            other => {
                let name = other.strip_prefix("capability:")?;
                let name = normalize_capability(name);
                let valid = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
                if !valid {
                    return None;
                }
                Atom::Capability(name)
            }
        })
    }
}

impl std::fmt::Display for Atom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Atom::HostNetwork => f.write_str("hostNetwork"),
            Atom::HostPid => f.write_str("hostPID"),
            Atom::HostIpc => f.write_str("hostIPC"),
            Atom::ShareProcessNamespace => f.write_str("shareProcessNamespace"),
            Atom::Privileged => f.write_str("privileged"),
            Atom::HostPort => f.write_str("hostPort"),
            Atom::Capability(name) => write!(f, "capability:{name}"),
        }
    }
}

/// Capabilities are compared upper case and without the `CAP_` prefix, as container runtimes
/// accept both spellings.
pub(crate) fn normalize_capability(name: &str) -> String {
    let upper = name.trim().to_ascii_uppercase();
    match upper.strip_prefix("CAP_") {
        Some(rest) => rest.to_string(),
        None => upper,
    }
}

/// The validation rules a policy turns on.
#[derive(Debug, Clone, Default)]
pub struct Validate {
    /// Deny direct `/etc/hosts` edits, when set.
    pub hosts_file: Option<HostsFileRule>,
    /// Forbidden atom combinations (each non-empty).
    pub forbidden_combinations: Vec<Vec<Atom>>,
}

/// `validate.hostsFile`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostsFileRule {
    /// What a command the analysis cannot decide does.
    pub undecidable: Undecidable,
    /// Kubelet root directories beyond the built-in ones, normalised (absolute, no `.`, `..`
    /// or empty parts).
    pub kubelet_root_dirs: Vec<String>,
}

/// What a hostsFile finding the analysis cannot decide does (`undecidable`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
pub enum Undecidable {
    /// Nothing: it is not reported.
    Allow,
    /// A warning, whatever the policy's action (under Audit, an audit entry) (default).
    #[default]
    Warn,
    /// What the policy's action does with a violation.
    Deny,
}

/// A container `imagePullPolicy` value, spelled as in Kubernetes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub enum PullPolicy {
    /// Always pull.
    Always,
    /// Pull when the image is not on the node.
    IfNotPresent,
    /// Never pull.
    Never,
}

impl PullPolicy {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

/// `mutate.imagePullPolicy`.
#[derive(Debug, Clone)]
pub struct PullPolicyMutation {
    /// Tags that count as mutable; an untagged image counts as `latest`.
    pub mutable_tags: Vec<String>,
    /// The value to set.
    pub set: PullPolicy,
    /// Existing values that get replaced.
    pub replace: Vec<PullPolicy>,
}

/// What to do when the Pod maps a hostname to another IP (`onConflict`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub enum OnConflict {
    /// Keep the Pod's mapping and skip the hostname (default).
    KeepPod,
    /// Move the hostname to the policy's IP.
    Override,
    /// A violation.
    Deny,
}

/// One hostAliases entry of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAlias {
    /// The address.
    pub ip: IpAddr,
    /// DNS-1123 subdomains, in the order written.
    pub hostnames: Vec<String>,
}

/// `mutate.hostAliases`.
#[derive(Debug, Clone)]
pub struct HostAliasesMutation {
    /// Entries to merge, unique by IP.
    pub entries: Vec<HostAlias>,
    /// Conflict handling.
    pub on_conflict: OnConflict,
}

/// The mutations a policy turns on.
#[derive(Debug, Clone, Default)]
pub struct Mutate {
    /// Also patch workload pod templates.
    pub templates: bool,
    /// `imagePullPolicy` for mutable tags.
    pub image_pull_policy: Option<PullPolicyMutation>,
    /// `hostAliases` injection.
    pub host_aliases: Option<HostAliasesMutation>,
}

impl Mutate {
    /// True when no mutation is on.
    pub fn is_empty(&self) -> bool {
        self.image_pull_policy.is_none() && self.host_aliases.is_none()
    }
}

/// One validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Unique name.
    pub name: String,
    /// What violations do.
    pub action: Action,
    /// Which objects it applies to.
    pub match_: Match,
    /// Who is exempt.
    pub exemptions: Vec<Exemption>,
    /// Validation rules.
    pub validate: Validate,
    /// Mutations.
    pub mutate: Mutate,
    /// Where it was defined.
    pub source: Source,
}

/// An immutable, validated set of policies, in file-name then document order.
#[derive(Debug, Clone)]
pub struct PolicySet {
    policies: Vec<Policy>,
    hash: String,
    warnings: Vec<LoadWarning>,
}

impl PolicySet {
    /// Builds a set from already-parsed policies; `hash` identifies the content.
    pub(crate) fn new(policies: Vec<Policy>, hash: String) -> PolicySet {
        PolicySet {
            policies,
            hash,
            warnings: Vec::new(),
        }
    }

    /// The same set, carrying the loader's warnings about it.
    pub(crate) fn with_warnings(self, warnings: Vec<LoadWarning>) -> PolicySet {
        PolicySet { warnings, ..self }
    }

    /// What the loader found suspicious but accepted (e.g. an exemption anyone can claim).
    pub fn warnings(&self) -> &[LoadWarning] {
        &self.warnings
    }

    /// An empty set: allows everything, patches nothing.
    pub fn empty() -> PolicySet {
        PolicySet::new(Vec::new(), loader::content_hash(&[]))
    }

    /// The policies in evaluation order.
    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// Stable hex hash of the files that made the set.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// Number of policies.
    pub fn len(&self) -> usize {
        self.policies.len()
    }

    /// True when there is no policy.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// Exemptions still in force whose expiry falls within `within_days` of `now`.
    pub(crate) fn exemptions_expiring(&self, now: jiff::Timestamp, within_days: i64) -> usize {
        let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
        let horizon = today
            .checked_add(jiff::Span::new().days(within_days))
            .unwrap_or(today);
        self.policies
            .iter()
            .flat_map(|p| &p.exemptions)
            .filter_map(|e| e.expires)
            .filter(|last| *last >= today && *last <= horizon)
            .count()
    }
}

/// True for a DNS-1123 subdomain: at most 253 characters of lowercase alphanumerics, `-` and
/// `.`, each dot-separated label starting and ending with an alphanumeric.
pub(crate) fn is_dns1123_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            let bytes = label.as_bytes();
            !bytes.is_empty()
                && bytes.len() <= 63
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
                && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
                && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns1123_subdomain_cases() {
        for (name, ok) in [
            ("foo.remote", true),
            ("a", true),
            ("a-b.c-d", true),
            ("Foo", false),
            ("-a", false),
            ("a-", false),
            ("a..b", false),
            ("", false),
            ("a_b", false),
            (&"a".repeat(64), false),
        ] {
            assert_eq!(is_dns1123_subdomain(name), ok, "{name}");
        }
    }

    #[test]
    fn atoms_parse_and_normalise_capabilities() {
        assert_eq!(Atom::parse("hostPID"), Some(Atom::HostPid));
        assert_eq!(
            Atom::parse("capability:sys_ptrace"),
            Some(Atom::Capability("SYS_PTRACE".into()))
        );
        assert_eq!(
            Atom::parse("capability:CAP_SYS_ADMIN"),
            Some(Atom::Capability("SYS_ADMIN".into()))
        );
        assert_eq!(Atom::parse("hostpid"), None);
        assert_eq!(Atom::parse("capability:"), None);
        assert_eq!(Atom::parse("capability:NET ADMIN"), None);
    }

    #[test]
    fn globs_match_namespaces() {
        let g = Globs::new(vec!["team-*".into(), "prod".into()]).unwrap();
        assert!(g.is_match("team-a"));
        assert!(g.is_match("prod"));
        assert!(!g.is_match("production"));
        assert!(!Globs::empty().is_match("x"));
    }

    /// Literal patterns are compared as text, with the answer the glob set gives.
    #[test]
    fn literal_globs_answer_as_the_glob_set() {
        let patterns = [
            vec![],
            vec!["kube-system"],
            vec!["a", "b.c", "a/b", "x,y", "!neg", "^$.+()|", "é"],
            vec!["team-*", "prod"],
            vec!["a?c", "[ab]", "{x,y}", "\\*", "a]"],
        ];
        let texts = [
            "",
            "a",
            "b",
            "kube-system",
            "kube-systems",
            "b.c",
            "bxc",
            "a/b",
            "x,y",
            "x",
            "y",
            "!neg",
            "^$.+()|",
            "é",
            "team-a",
            "prod",
            "abc",
            "*",
            "a]",
            "A",
        ];
        for p in patterns {
            let g = Globs::new(p.iter().map(|s| s.to_string()).collect()).unwrap();
            assert_eq!(g.literal, p.iter().all(|s| !s.contains(GLOB_META)), "{p:?}");
            for t in texts {
                assert_eq!(g.is_match(t), g.set.is_match(t), "{p:?} {t:?}");
            }
        }
    }
}
