//! What the kubelet hands a container before any shell runs: `$(VAR)` expansion of `command`
//! and `args` from the container's environment, the environment itself, and `workingDir`.
//!
//! The expansion follows the kubelet's (kubernetes `third_party/forked/golang/expansion`):
//! `$(NAME)` is replaced by the variable's value when it is defined, and left as written when
//! it is not; `$$` is a literal `$`; anything else after `$` is literal. Each `env` value is
//! expanded in order from the variables before it. Variables from `valueFrom`, from `envFrom`
//! sources and the service-link variables (`*_SERVICE_HOST`, `*_PORT*`) are set at run time to
//! values we cannot know: they expand to [`UNKNOWN`]. Lifecycle hooks and probes are not
//! expanded by the kubelet, so only the container's `command` and `args` go through
//! [`Start::expand`].

use std::borrow::Cow;
use std::collections::HashMap;

use super::UNKNOWN;

/// A container's environment and working directory, as the kubelet starts it.
/// Borrows the names and values from the container it was built from.
#[derive(Debug, Clone, Default)]
pub struct Start<'a> {
    /// `env` by name: the expanded literal value, or `None` when set from `valueFrom`.
    vars: HashMap<&'a str, Option<Cow<'a, str>>>,
    /// `envFrom` is used: any name may be defined, with a value we cannot know.
    open: bool,
    /// `workingDir`, when set and absolute.
    pub(super) working_dir: Option<&'a str>,
}

/// [`UNKNOWN`] as text.
const UNKNOWN_TEXT: &str = "\u{0}";
const _: () = assert!(UNKNOWN == '\u{0}');

impl<'a> Start<'a> {
    /// Builds the start state from `env` entries in order (`(name, Some(value))` for a literal
    /// value, `(name, None)` for `valueFrom`), whether `envFrom` is present, and `workingDir`.
    pub fn new(
        env: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
        env_from: bool,
        working_dir: Option<&'a str>,
    ) -> Start<'a> {
        let env = env.into_iter();
        let mut start = Start {
            vars: HashMap::with_capacity(env.size_hint().0),
            open: env_from,
            working_dir: working_dir.filter(|d| d.starts_with('/')),
        };
        for (name, value) in env {
            let value = value.map(|v| start.expanded(v));
            start.vars.insert(name, value);
        }
        start
    }

    /// The kubelet's `$(VAR)` expansion of one `command`/`args` item.
    pub fn expand(&self, input: &str) -> String {
        self.expanded(input).into_owned()
    }

    /// [`Start::expand`], borrowing `input` when the expansion leaves it as it is (no `$$`
    /// and no `$(`).
    fn expanded<'i>(&self, input: &'i str) -> Cow<'i, str> {
        if !input.contains("$(") && !input.contains("$$") {
            return Cow::Borrowed(input);
        }
        let mut out = String::with_capacity(input.len());
        let mut rest = input;
        while let Some(pos) = rest.find('$') {
            out.push_str(rest.get(..pos).unwrap_or(""));
            let after = rest.get(pos + 1..).unwrap_or("");
            if after.starts_with('$') {
                out.push('$');
                rest = after.get(1..).unwrap_or("");
            } else if let Some(body) = after.strip_prefix('(')
                && let Some(close) = body.find(')')
            {
                let name = body.get(..close).unwrap_or("");
                match self.lookup(name) {
                    Some(value) => out.push_str(value),
                    None => {
                        out.push_str("$(");
                        out.push_str(name);
                        out.push(')');
                    }
                }
                rest = body.get(close + 1..).unwrap_or("");
            } else {
                out.push('$');
                rest = after;
            }
        }
        out.push_str(rest);
        Cow::Owned(out)
    }

    /// The value of `$(name)` for the kubelet: `None` when it is not defined.
    fn lookup(&self, name: &str) -> Option<&str> {
        match self.vars.get(name) {
            Some(Some(value)) => Some(value),
            Some(None) => Some(UNKNOWN_TEXT),
            None if self.open || is_service_link(name) => Some(UNKNOWN_TEXT),
            None => None,
        }
    }

    /// The value a shell in the container sees for `$name`, when it is known.
    pub(super) fn text(&self, name: &str) -> Option<&str> {
        match self.vars.get(name) {
            Some(Some(value)) => Some(value),
            // valueFrom, envFrom, service links, or the image's ENV: not knowable here.
            _ => None,
        }
    }
}

/// Variables the kubelet sets for Services (`enableServiceLinks`) and for the API server.
fn is_service_link(name: &str) -> bool {
    name.ends_with("_SERVICE_HOST") || name.contains("_SERVICE_PORT") || name.contains("_PORT")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_like_the_kubelet() {
        let start = Start::new(
            [
                ("HOSTS", Some("/etc/hosts")),
                ("DIR", Some("/etc")),
                ("FILE", Some("$(DIR)/hosts")),
                ("SECRET", None),
            ],
            false,
            None,
        );
        let u = UNKNOWN;
        for (input, expected) in [
            ("$(HOSTS)", "/etc/hosts".to_string()),
            ("echo x >> $(HOSTS)", "echo x >> /etc/hosts".to_string()),
            ("$(FILE)", "/etc/hosts".to_string()),
            ("$$(HOSTS)", "$(HOSTS)".to_string()),
            ("$$$(HOSTS)", "$/etc/hosts".to_string()),
            ("$(UNDEFINED)", "$(UNDEFINED)".to_string()),
            ("$(SECRET)", u.to_string()),
            ("$(MY_SVC_SERVICE_HOST)", u.to_string()),
            ("$(HOSTS", "$(HOSTS".to_string()),
            ("$HOSTS", "$HOSTS".to_string()),
            ("a$", "a$".to_string()),
        ] {
            assert_eq!(start.expand(input), expected, "{input}");
        }
        let open = Start::new([], true, Some("/etc"));
        assert_eq!(open.expand("$(FROM_CONFIGMAP)"), u.to_string());
        assert_eq!(open.working_dir, Some("/etc"));
        assert_eq!(start.text("HOSTS"), Some("/etc/hosts"));
        assert_eq!(start.text("SECRET"), None);
        assert_eq!(start.text("IMAGE_ENV"), None);
    }
}
