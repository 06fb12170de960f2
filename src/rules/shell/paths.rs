//! Paths: does a written path reach the Pod's hosts file?
//!
//! A path is resolved lexically against the working directory the analysis tracks (`cd`,
//! `workingDir`), with `//`, `.` and `..` collapsed and the `/proc` aliases of the root
//! removed: `/proc/self/root`, `/proc/thread-self/root` and `/proc/<pid>/root` all lead to a
//! root where `/etc/hosts` is a hosts file the kubelet manages (another container's with a
//! shared PID namespace, the node's with hostPID). `/proc/self/cwd` is the working directory.
//!
//! A path with parts that are not literal ([`UNKNOWN`]) is judged by what those parts could
//! be, any text including `../`: it can reach the file when its last component can be `hosts`.
//! Globs ([`STAR`], [`ONE`]) match against `/etc/hosts`, which exists in every container, so
//! a glob that matches it names it.

use super::words::Value;
use super::{ONE, STAR, UNKNOWN, UNKNOWN_BYTE};

/// How a path relates to the hosts file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reach {
    /// It is the hosts file.
    Hosts,
    /// It may be, depending on text we cannot know.
    Maybe,
    /// It is not.
    No,
}

const HOSTS: &str = "/etc/hosts";

/// Whether `path`, as a command would open it with working directory `cwd`, is the hosts file.
pub(super) fn reach(path: &str, cwd: &Value) -> Reach {
    if is_plain_absolute(path) {
        // What `absolute`, `normalize` and the glob match below would conclude, without
        // building the path again.
        return if path == HOSTS {
            Reach::Hosts
        } else {
            Reach::No
        };
    }
    let Some(abs) = absolute(path, cwd) else {
        return Reach::No;
    };
    let has_unknown = abs.as_bytes().contains(&UNKNOWN_BYTE);
    if has_unknown {
        return reach_unknown(&abs);
    }
    let (norm, climbed) = normalize(&abs);
    if glob_match(norm.as_bytes(), HOSTS.as_bytes()) {
        return Reach::Hosts;
    }
    // `..` is resolved lexically; through a symlinked directory (`/var/run/../etc/hosts` on
    // images where /var/run links to /run) it lands elsewhere, so a climb that ends in a file
    // named hosts is not decided either way.
    if climbed && last_component(&norm).is_some_and(|c| glob_match(c.as_bytes(), b"hosts")) {
        return Reach::Maybe;
    }
    Reach::No
}

/// True for an absolute path that [`normalize`] gives back unchanged and that holds no unknown
/// part or glob: no empty, `.` or `..` component, not below `/proc` (its root aliases).
fn is_plain_absolute(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    !rest.is_empty()
        && !rest.starts_with("proc")
        && !rest.bytes().any(|c| matches!(c, UNKNOWN_BYTE | STAR | ONE))
        && rest.split('/').all(|c| !matches!(c, "" | "." | ".."))
}

/// For a directory: whether it is `/etc` (a file named `hosts` copied into it is the hosts
/// file), and whether it is `/etc` or `/` (a tree copied into it can hold `etc/hosts`).
/// `Maybe` for both when the directory is not literal.
pub(super) fn reach_dir(dir: &str, cwd: &Value) -> (Reach, Reach) {
    let Some(abs) = absolute(dir, cwd) else {
        return (Reach::No, Reach::No);
    };
    if abs.as_bytes().contains(&UNKNOWN_BYTE) {
        return (Reach::Maybe, Reach::Maybe);
    }
    let (norm, _) = normalize(&abs);
    let is_etc = glob_match(norm.as_bytes(), b"/etc");
    let above = norm == "/" || is_etc;
    (
        if is_etc { Reach::Hosts } else { Reach::No },
        if above { Reach::Hosts } else { Reach::No },
    )
}

/// The path made absolute against `cwd` (unknown when `cwd` is); `None` for an empty path.
pub(super) fn absolute(path: &str, cwd: &Value) -> Option<String> {
    if path.is_empty() {
        return None;
    }
    // `/proc/self/cwd` is the working directory.
    for alias in ["/proc/self/cwd", "/proc/thread-self/cwd"] {
        if let Some(rest) = path.strip_prefix(alias)
            && (rest.is_empty() || rest.starts_with('/'))
        {
            return absolute(&format!(".{rest}"), cwd);
        }
    }
    if path.starts_with('/') || path.starts_with(UNKNOWN) {
        return Some(path.to_string());
    }
    Some(match cwd {
        Value::Known(dir) => format!("{dir}/{path}"),
        Value::Unknown | Value::Unset => format!("{UNKNOWN}/{path}"),
    })
}

/// Lexical normalisation with the `/proc` root aliases removed; also says whether a `..`
/// climbed out of a component.
pub(super) fn normalize(path: &str) -> (String, bool) {
    let mut parts: Vec<&str> = Vec::new();
    let mut climbed = false;
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                climbed |= parts.pop().is_some();
            }
            other => {
                parts.push(other);
                // `/proc/<pid>/root` is a root again: what follows starts from `/`.
                if let [.., "proc", pid, "root"] = parts.as_slice()
                    && (*pid == "self"
                        || *pid == "thread-self"
                        || pid.bytes().all(|c| c.is_ascii_digit() || c == UNKNOWN_BYTE))
                    && parts.len() == 3
                {
                    parts.clear();
                }
            }
        }
    }
    (format!("/{}", parts.join("/")), climbed)
}

fn last_component(path: &str) -> Option<&str> {
    path.rsplit('/').next().filter(|c| !c.is_empty())
}

/// A path with unknown parts: the last component decides.
fn reach_unknown(path: &str) -> Reach {
    let Some(last_unknown) = path.rfind(UNKNOWN) else {
        return Reach::No;
    };
    let tail = path.get(last_unknown + 1..).unwrap_or("");
    match tail.rfind('/') {
        // The unknown text runs into the last component: `$F`, `$DIR.conf`, `x$Y`.
        None => {
            if glob_suffix(tail.as_bytes(), b"hosts") {
                Reach::Maybe
            } else {
                Reach::No
            }
        }
        Some(slash) => {
            let (norm_tail, climbed) = normalize(tail);
            let last = tail.get(slash + 1..).unwrap_or("");
            if climbed || tail.split('/').any(|c| c == "..") {
                return Reach::Maybe;
            }
            let last = if last.is_empty() || last == "." {
                last_component(&norm_tail).unwrap_or("")
            } else {
                last
            };
            if glob_match(last.as_bytes(), b"hosts") {
                Reach::Maybe
            } else {
                Reach::No
            }
        }
    }
}

/// Whether glob `pattern` (with [`STAR`], [`ONE`]) can end `text`: some suffix of `text`
/// matches it.
fn glob_suffix(pattern: &[u8], text: &[u8]) -> bool {
    (0..=text.len()).any(|start| glob_match(pattern, text.get(start..).unwrap_or_default()))
}

/// Glob match: [`STAR`] any run without `/`, [`ONE`] one character other than `/`.
/// Iterative with one backtrack point, linear-times-pattern at worst.
pub(super) fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(&STAR) => {
                star = Some((p, t));
                p += 1;
            }
            Some(&ONE) if text.get(t) != Some(&b'/') => {
                p += 1;
                t += 1;
            }
            Some(&c) if c == text.get(t).copied().unwrap_or(0) && c != ONE => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) if text.get(st) != Some(&b'/') => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                _ => return false,
            },
        }
    }
    pattern
        .get(p..)
        .unwrap_or_default()
        .iter()
        .all(|&c| c == STAR)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(s: &str) -> Value {
        Value::Known(s.into())
    }

    #[test]
    fn resolves_aliases_relative_paths_and_unknown_parts() {
        let u = UNKNOWN;
        let s = STAR as char;
        let cases: Vec<(&str, String, Value, Reach)> = vec![
            ("plain", "/etc/hosts".into(), Value::Unknown, Reach::Hosts),
            (
                "double slash",
                "//etc//hosts".into(),
                Value::Unknown,
                Reach::Hosts,
            ),
            (
                "dot dot",
                "/etc/../etc/hosts".into(),
                Value::Unknown,
                Reach::Hosts,
            ),
            (
                "proc self root",
                "/proc/self/root/etc/hosts".into(),
                Value::Unknown,
                Reach::Hosts,
            ),
            (
                "proc 1 root",
                "/proc/1/root/etc/hosts".into(),
                Value::Unknown,
                Reach::Hosts,
            ),
            (
                "proc pid root",
                "/proc/4242/root//etc/hosts".into(),
                Value::Unknown,
                Reach::Hosts,
            ),
            (
                "thread-self",
                "/proc/thread-self/root/etc/hosts".into(),
                Value::Unknown,
                Reach::Hosts,
            ),
            (
                "nested proc",
                "/proc/self/root/proc/1/root/etc/hosts".into(),
                Value::Unknown,
                Reach::Hosts,
            ),
            (
                "relative after cd",
                "hosts".into(),
                known("/etc"),
                Reach::Hosts,
            ),
            (
                "relative climbing",
                "../etc/hosts".into(),
                known("/usr"),
                Reach::Hosts,
            ),
            (
                "relative, cwd unknown",
                "hosts".into(),
                Value::Unknown,
                Reach::Maybe,
            ),
            (
                "relative other, cwd unknown",
                "app.log".into(),
                Value::Unknown,
                Reach::No,
            ),
            (
                "glob",
                format!("/etc/host{s}"),
                Value::Unknown,
                Reach::Hosts,
            ),
            (
                "glob other",
                format!("/etc/{s}.conf"),
                Value::Unknown,
                Reach::No,
            ),
            (
                "unknown whole",
                format!("{u}"),
                Value::Unknown,
                Reach::Maybe,
            ),
            (
                "unknown dir",
                format!("{u}/hosts"),
                Value::Unknown,
                Reach::Maybe,
            ),
            (
                "unknown dir other file",
                format!("{u}/app.log"),
                Value::Unknown,
                Reach::No,
            ),
            (
                "unknown suffix",
                format!("/etc/h{u}"),
                Value::Unknown,
                Reach::Maybe,
            ),
            (
                "unknown then .log",
                format!("/var/log/{u}.log"),
                Value::Unknown,
                Reach::No,
            ),
            (
                "unknown then climb",
                format!("{u}/../hosts"),
                Value::Unknown,
                Reach::Maybe,
            ),
            (
                "hosts.allow",
                "/etc/hosts.allow".into(),
                Value::Unknown,
                Reach::No,
            ),
            (
                "tmp etc hosts",
                "/tmp/etc/hosts".into(),
                Value::Unknown,
                Reach::No,
            ),
            (
                "proc fd is not a root",
                "/proc/self/fd/1".into(),
                Value::Unknown,
                Reach::No,
            ),
            (
                "proc self cwd",
                "/proc/self/cwd/hosts".into(),
                known("/etc"),
                Reach::Hosts,
            ),
            (
                "climb through a possible symlink",
                "/var/run/../x/hosts".into(),
                Value::Unknown,
                Reach::Maybe,
            ),
        ];
        for (name, path, cwd, expected) in cases {
            assert_eq!(reach(&path, &cwd), expected, "{name}: {path:?}");
        }
    }
}
