//! Paths: lexical normalisation and the test for the hosts file.

use super::*;

/// Lexically normalises an absolute path (`//`, `/./`, `..`, a trailing slash); a relative
/// path is returned as it is.
pub(super) fn normalize_path(path: &str) -> String {
    crate::pod::normalize_path(path).unwrap_or_else(|| path.to_string())
}

pub(super) fn is_etc_hosts(path: &str) -> bool {
    !path.contains(UNKNOWN) && normalize_path(path) == "/etc/hosts"
}

/// Whether the text could name the file at all (before unquoting: `/etc/"hosts"`).
pub(super) fn mentions_hosts(text: &str) -> bool {
    text.contains("etc") && text.contains("hosts")
}
