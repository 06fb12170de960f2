//! Validation rules: one rule family per file, pure functions over a pod spec.
//!
//! A rule returns `Violation`s with full field paths (`spec.template.spec.containers[0]...`);
//! which policy it came from and what the action does is the engine's business.

pub mod host_namespaces;
pub mod hosts_file;
pub mod shell;

/// How much work a check may spend on one review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Effort {
    /// The full budget: the answer is final.
    #[default]
    Full,
    /// The small budget of a review answered inline on one of the server's async workers
    /// ([`shell::Budget::inline`]). A check that falls short says so (`cut`), and the review
    /// is evaluated again with [`Effort::Full`].
    Inline,
}

/// The rule families, as named in policy files, metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// `validate.hostsFile`.
    HostsFile,
    /// `validate.hostNamespaces`.
    HostNamespaces,
    /// `mutate.imagePullPolicy` (re-checked on validate).
    ImagePullPolicy,
    /// `mutate.hostAliases` (conflicts with `onConflict: Deny`, re-checked on validate).
    HostAliases,
    /// Not a rule of the policy file: the review did not finish before its deadline, so the
    /// policy's rules were not checked (the policy's action still decides what that means).
    Deadline,
}

impl Rule {
    /// The policy-file spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::HostsFile => "hostsFile",
            Rule::HostNamespaces => "hostNamespaces",
            Rule::ImagePullPolicy => "imagePullPolicy",
            Rule::HostAliases => "hostAliases",
            Rule::Deadline => "deadline",
        }
    }
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Which rule.
    pub rule: Rule,
    /// Single-line, human message naming the container and field path.
    pub message: String,
    /// The field paths involved (used to attribute a violation to new ephemeral containers).
    pub paths: Vec<String>,
}
