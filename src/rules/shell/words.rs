//! Words: quote removal and expansion of one raw shell word.

use super::*;

pub(super) struct Expanded {
    /// Literal value with [`UNKNOWN`] standing for each expansion.
    pub(super) text: String,
    /// Bodies of `$(...)` and backquote substitutions, to analyse as scripts.
    pub(super) substitutions: Vec<String>,
}

/// Removes quoting from a raw shell word. In `heredoc` mode quotes are literal and only `\$`,
/// `` \` `` and `\\` are escapes, as in an unquoted heredoc body.
pub(super) fn expand_word(raw: &str, heredoc: bool) -> Expanded {
    let b = raw.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut subs = Vec::new();
    let mut in_dq = false;
    let mut i = 0usize;
    while i < b.len() {
        let c = byte_at(b, i);
        let next = byte_at(b, i + 1);
        match c {
            b'\\' => {
                let escapable = if heredoc || in_dq {
                    matches!(next, b'$' | b'`' | b'\\' | b'\n') || (in_dq && next == b'"')
                } else {
                    true
                };
                if next == b'\n' {
                    i += 2;
                } else if escapable && i + 1 < b.len() {
                    out.push(next);
                    i += 2;
                } else {
                    out.push(c);
                    i += 1;
                }
            }
            b'\'' if !heredoc && !in_dq => {
                let end = skip_single_quote(b, i + 1);
                out.extend_from_slice(b.get(i + 1..end).unwrap_or_default());
                i = end + 1;
            }
            b'"' if !heredoc => {
                in_dq = !in_dq;
                i += 1;
            }
            b'$' if next == b'\'' && !heredoc && !in_dq => {
                let end = skip_ansi_c_quote(b, i + 2);
                let inner = slice(raw, i + 2, end);
                out.extend_from_slice(interpret_escapes(inner).as_bytes());
                i = end + 1;
            }
            b'$' if next == b'(' => {
                // `$((` is arithmetic; `$(` is a command substitution to analyse.
                let close = find_closing(b, i + 1);
                let is_arith = byte_at(b, i + 2) == b'(';
                if !is_arith {
                    subs.push(slice(raw, i + 2, close).to_string());
                }
                out.extend_from_slice(UNKNOWN.to_string().as_bytes());
                i = close.max(i + 1) + 1;
            }
            b'$' if next == b'{'
                || next == b'_'
                || next.is_ascii_alphanumeric()
                || b"@*#?-$!".contains(&next) =>
            {
                out.extend_from_slice(UNKNOWN.to_string().as_bytes());
                if next == b'{' {
                    let mut j = i + 2;
                    while j < b.len() && byte_at(b, j) != b'}' {
                        j += 1;
                    }
                    i = j + 1;
                } else if next.is_ascii_digit() || b"@*#?-$!".contains(&next) {
                    i += 2;
                } else {
                    let mut j = i + 1;
                    while j < b.len()
                        && (byte_at(b, j).is_ascii_alphanumeric() || byte_at(b, j) == b'_')
                    {
                        j += 1;
                    }
                    i = j;
                }
            }
            b'`' => {
                let mut j = i + 1;
                let mut body = Vec::new();
                while j < b.len() && byte_at(b, j) != b'`' {
                    if byte_at(b, j) == b'\\' && matches!(byte_at(b, j + 1), b'`' | b'\\' | b'$') {
                        j += 1;
                    }
                    body.push(byte_at(b, j));
                    j += 1;
                }
                subs.push(String::from_utf8_lossy(&body).into_owned());
                out.extend_from_slice(UNKNOWN.to_string().as_bytes());
                i = j + 1;
            }
            b'~' if i == 0 && !heredoc => {
                // `~/x` is a home directory we do not know.
                out.extend_from_slice(UNKNOWN.to_string().as_bytes());
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Expanded {
        text: String::from_utf8_lossy(&out).into_owned(),
        substitutions: subs,
    }
}

/// Index of the `)` closing the `(` at `open`, quote-aware; the end of input when unbalanced.
pub(super) fn find_closing(b: &[u8], open: usize) -> usize {
    // Re-use the word scanner: a `$(` at top level ends when its Paren context pops.
    let mut depth = 0usize;
    let mut i = open;
    let mut in_dq = false;
    while i < b.len() {
        let c = byte_at(b, i);
        match c {
            b'\\' => i += 1,
            b'\'' if !in_dq => i = skip_single_quote(b, i + 1),
            b'"' => in_dq = !in_dq,
            b'(' if !in_dq || byte_at(b, i.wrapping_sub(1)) == b'$' => depth += 1,
            b')' if !in_dq => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
        i += 1;
    }
    b.len()
}

/// Interprets backslash escapes as `echo -e`, `printf` and `$'...'` do.
pub(super) fn interpret_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('v') => out.push('\u{b}'),
            Some('f') => out.push('\u{c}'),
            Some('a') => out.push('\u{7}'),
            Some('b') => out.push('\u{8}'),
            Some('e') => out.push('\u{1b}'),
            Some('\\') => out.push('\\'),
            Some('0') => {
                // Octal `\0NNN`; only whitespace-like results matter to us.
                let mut value = 0u32;
                for _ in 0..3 {
                    match chars.peek().and_then(|d| d.to_digit(8)) {
                        Some(d) => {
                            value = value * 8 + d;
                            chars.next();
                        }
                        None => break,
                    }
                }
                out.push(char::from_u32(value).unwrap_or(' '));
            }
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}
