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
//!
//! Bounded: `$(NAME)` copies a value each time it appears and values build on one another
//! (`B=$(A)$(A)`, `C=$(B)$(B)`, ...), so a few hundred bytes of `env` and `args` would expand
//! to gigabytes. What the values add to the text is counted against an allowance
//! ([`Start::within`], the review's [`Budget`]): a reference whose value does not fit expands
//! to [`UNKNOWN`], as a value we cannot know, so what it would have written is undecided,
//! never silently allowed.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::LazyLock;

use ahash::RandomState;
use memchr::memmem::Finder;

use super::{Budget, UNKNOWN};

/// A container's environment and working directory, as the kubelet starts it.
/// Borrows the names and values from the container it was built from.
#[derive(Debug, Clone)]
pub struct Start<'a> {
    /// `env` by name: the expanded literal value, or `None` when set from `valueFrom`. Keyed
    /// by the Pod creator's names, so hashed with keys they cannot know ([`ahash`], DoS-resistant
    /// by design, and much cheaper than std's SipHash).
    vars: HashMap<&'a str, Option<Cow<'a, str>>, RandomState>,
    /// `envFrom` is used: any name may be defined, with a value we cannot know.
    open: bool,
    /// `workingDir`, when set and absolute.
    pub(super) working_dir: Option<&'a str>,
    /// Bytes the expansion may still add to the text (see the module's "Bounded").
    growth_left: Cell<usize>,
    /// A value did not fit: it expanded to [`UNKNOWN`] instead.
    short: Cell<bool>,
}

impl Default for Start<'_> {
    fn default() -> Self {
        Start::new([], false, None)
    }
}

/// [`UNKNOWN`] as text.
const UNKNOWN_TEXT: &str = "\u{0}";
const _: () = assert!(UNKNOWN == '\u{0}');

impl<'a> Start<'a> {
    /// Builds the start state from `env` entries in order (`(name, Some(value))` for a literal
    /// value, `(name, None)` for `valueFrom`), whether `envFrom` is present, and `workingDir`.
    /// Its expansion may copy in as many bytes as the full [`Budget`]'s work units.
    pub fn new(
        env: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
        env_from: bool,
        working_dir: Option<&'a str>,
    ) -> Start<'a> {
        Start::within(env, env_from, working_dir, &Budget::default())
    }

    /// [`Start::new`], expanding within what is left of `budget`'s allowance for the
    /// kubelet's expansion; [`Budget::settle`] takes back what this start state used.
    pub fn within(
        env: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
        env_from: bool,
        working_dir: Option<&'a str>,
        budget: &Budget,
    ) -> Start<'a> {
        let env = env.into_iter();
        let mut start = Start {
            vars: HashMap::with_capacity_and_hasher(env.size_hint().0, RandomState::new()),
            open: env_from,
            working_dir: working_dir.filter(|d| d.starts_with('/')),
            growth_left: Cell::new(budget.kubelet_left),
            short: Cell::new(false),
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

    /// [`Start::expand`], borrowing `input` when the expansion leaves it as it is (no `$$`,
    /// and no `$(NAME)` of a defined variable).
    ///
    /// Only `$$` and `$(` do anything (a `$` before anything else is itself), so the scan
    /// jumps from one of them to the next (`$$` with [`memchr::memmem`]; `$(` from one `(` to
    /// the next, far fewer than the `$` signs of a script), and the text between them is
    /// copied in whole runs, once something is replaced. Linear in `input` whatever it holds:
    /// each search starts where the last one it found was used up.
    pub fn expanded<'i>(&self, input: &'i str) -> Cow<'i, str> {
        static PAIR: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("$$"));
        let bytes = input.as_bytes();
        if memchr::memchr(b'$', bytes).is_none() {
            return Cow::Borrowed(input);
        }
        let find_pair = |from: usize| {
            let rest = bytes.get(from..)?;
            PAIR.find(rest).map(|at| from + at)
        };
        // The first `$(` at or after `from`: a `(` after `from` with a `$` before it.
        let find_open = |mut from: usize| loop {
            let after = from + 1;
            let paren = after + memchr::memchr(b'(', bytes.get(after..)?)?;
            if bytes.get(paren - 1) == Some(&b'$') {
                return Some(paren - 1);
            }
            from = paren;
        };
        let (mut pair, mut open) = (find_pair(0), find_open(0));
        // `input[..copied]` is in `out`; `out` exists once something was replaced.
        let mut out: Option<String> = None;
        let mut copied = 0;
        let mut from = 0;
        loop {
            if pair.is_some_and(|p| p < from) {
                pair = find_pair(from);
            }
            if open.is_some_and(|p| p < from) {
                open = find_open(from);
            }
            // The first of them, where the text after it resumes, and what replaces it.
            let (pos, end, with) = match (pair, open) {
                (Some(p), o) if o.is_none_or(|o| p < o) => (p, p + 2, Some("$")),
                (_, Some(o)) => {
                    let body = o + 2;
                    match memchr::memchr(b')', bytes.get(body..).unwrap_or_default()) {
                        // An undefined name is left as written, `$` signs in it included.
                        Some(len) => (
                            o,
                            body + len + 1,
                            self.lookup(input.get(body..body + len).unwrap_or_default()),
                        ),
                        // No `)` after this `$(`, so none after a later one: all literal.
                        None => {
                            open = None;
                            continue;
                        }
                    }
                }
                _ => break,
            };
            if let Some(with) = with {
                let with = self.admit(with, end - pos);
                let out = out.get_or_insert_with(|| String::with_capacity(input.len()));
                out.push_str(input.get(copied..pos).unwrap_or_default());
                out.push_str(with);
                copied = end;
            }
            from = end;
        }
        match out {
            None => Cow::Borrowed(input),
            Some(mut out) => {
                out.push_str(input.get(copied..).unwrap_or_default());
                Cow::Owned(out)
            }
        }
    }

    /// `value` in place of `replaced` bytes, when the allowance holds what that adds (which is
    /// then spent; `$$` and unknown values only shrink the text), else [`UNKNOWN_TEXT`].
    fn admit<'v>(&self, value: &'v str, replaced: usize) -> &'v str {
        let adds = value.len().saturating_sub(replaced);
        match self.growth_left.get().checked_sub(adds) {
            Some(left) => {
                self.growth_left.set(left);
                value
            }
            None => {
                self.short.set(true);
                UNKNOWN_TEXT
            }
        }
    }

    /// What is left of the expansion's allowance, and whether a value did not fit.
    pub(super) fn growth(&self) -> (usize, bool) {
        (self.growth_left.get(), self.short.get())
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
    use proptest::prelude::*;

    /// The expansion as the kubelet's code reads, one `$` at a time: what [`Start::expanded`]
    /// must give on any input.
    fn one_at_a_time(start: &Start, input: &str) -> String {
        let mut out = String::new();
        let mut rest = input;
        while let Some(pos) = rest.find('$') {
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            if let Some(after) = after.strip_prefix('$') {
                out.push('$');
                rest = after;
            } else if let Some(body) = after.strip_prefix('(')
                && let Some(close) = body.find(')')
            {
                let name = &body[..close];
                match start.lookup(name) {
                    Some(value) => out.push_str(value),
                    None => out.push_str(&format!("$({name})")),
                }
                rest = &body[close + 1..];
            } else {
                out.push('$');
                rest = after;
            }
        }
        out.push_str(rest);
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]
        #[test]
        fn expands_as_one_dollar_at_a_time(
            input in "[$()AB_x é]{0,40}",
            open: bool,
        ) {
            let start = Start::new(
                [("A", Some("/etc/hosts")), ("B", None), ("AB", Some("$$(A)")), ("A_x", Some(""))],
                open,
                None,
            );
            let expanded = start.expanded(&input);
            prop_assert_eq!(&*expanded, one_at_a_time(&start, &input));
            // Borrowed exactly when nothing changed.
            prop_assert_eq!(matches!(expanded, Cow::Borrowed(_)), *expanded == *input);
        }
    }

    #[test]
    fn expansion_is_bounded_whatever_the_values_build() {
        // Each value twice the one before: 8 * 2^63 bytes unbounded.
        let names: Vec<String> = (0..64).map(|i| format!("V{i}")).collect();
        let values: Vec<String> = (0..64)
            .map(|i| match i {
                0 => "12345678".to_string(),
                _ => format!("$(V{0})$(V{0})", i - 1),
            })
            .collect();
        let allowance = 1 << 20;
        let env = names.iter().map(String::as_str);
        let env = env.zip(values.iter().map(|v| Some(v.as_str())));
        let start = Start::within(env, false, None, &Budget::new(allowance));
        // What fits is copied as it is.
        assert_eq!(start.text("V3").map(str::len), Some(64));
        let held: usize = names
            .iter()
            .filter_map(|n| start.text(n))
            .map(str::len)
            .sum();
        let written: usize = values.iter().map(String::len).sum();
        assert!(held <= written + allowance as usize, "{held}");
        let args = "$(V63)".repeat(1000);
        let expanded = start.expanded(&args);
        assert!(expanded.len() <= args.len() + allowance as usize);
        assert!(expanded.contains(UNKNOWN));
        assert!(start.growth().1);
        let full = Start::new([("A", Some("/etc/hosts"))], false, None);
        assert_eq!(full.expand("$(A)"), "/etc/hosts");
        assert!(!full.growth().1);
    }

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
