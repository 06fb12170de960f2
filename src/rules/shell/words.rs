//! Words: what the shell makes of one raw word, in the order bash applies its expansions:
//! brace expansion, tilde, parameter and command substitution, field splitting, pathname
//! expansion (globs), quote removal.
//!
//! The result is plain text with sentinel bytes where the value is not literal:
//! [`UNKNOWN`] (any text: a command substitution, a variable we cannot know), [`STAR`] and
//! [`ONE`] (unquoted glob characters, matched against the hosts path later). Literal quoted
//! `*` stays a plain `*`. Each pass is linear in its input; brace expansion is capped by
//! [`MAX_BRACE_RESULTS`] and [`MAX_BRACE_BYTES`], beyond which the word becomes [`UNKNOWN`]
//! and the caller reports that it could not decide.

use std::rc::Rc;

use super::lexer::{skip_ansi_c_quote, skip_single_quote};
use super::{ONE, STAR, UNKNOWN, UNKNOWN_BYTE};

/// Field separator left by an unquoted expansion, split on after brace expansion.
const SPLIT: u8 = 3;
const BRACE_OPEN: u8 = 4;
const BRACE_COMMA: u8 = 5;
const BRACE_CLOSE: u8 = 6;

/// Brace expansion of one word yields at most this many words ...
pub(super) const MAX_BRACE_RESULTS: usize = 64;
/// ... and at most this many bytes in all.
pub(super) const MAX_BRACE_BYTES: usize = 64 << 10;

/// `${x:-${y:-...}}` is followed this deep; deeper default words are unknown.
const MAX_PARAM_NESTING: usize = 8;

/// The value of a shell variable as far as the analysis knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Value {
    /// A literal value (it may still contain [`UNKNOWN`] parts).
    Known(Rc<str>),
    /// Set, or possibly set, to something we cannot know.
    Unknown,
    /// Known to be unset.
    Unset,
}

/// Where variable values come from.
pub(super) trait Env {
    /// The value of `name` (a name, a digit string for positional parameters, or `?`, `$`...).
    fn var(&self, name: &str) -> Value;
    /// The positional parameters `$1...`, when known.
    fn args(&self) -> Option<Vec<Value>>;
}

/// How a word is expanded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// A command word: every expansion, splitting, globs, braces.
    Word,
    /// The value of `NAME=value`: no splitting, no globs, no braces.
    Assign,
    /// An unquoted heredoc body: quotes are literal, only `\$`, `` \` ``, `\\` escape.
    Heredoc,
}

/// One word after expansion.
#[derive(Debug, Default)]
pub(super) struct Expanded {
    /// The resulting fields (one for `Assign` and `Heredoc`).
    pub(super) fields: Vec<String>,
    /// Bodies of `$(...)` and backquote substitutions, to analyse as scripts.
    pub(super) substitutions: Vec<String>,
    /// Brace expansion would have produced more than the caps allow.
    pub(super) too_large: bool,
    /// Expansions were nested too deep to look into (their substitutions are not analysed).
    pub(super) too_deep: bool,
}

impl Expanded {
    /// The fields joined by spaces (a redirection target, a heredoc body); a single field is
    /// returned as it is, without a copy.
    pub(super) fn into_joined(mut self) -> String {
        if self.fields.len() == 1 {
            return self.fields.pop().unwrap_or_default();
        }
        self.fields.join(" ")
    }
}

fn byte_at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

fn slice(text: &str, from: usize, to: usize) -> &str {
    text.get(from..to.min(text.len())).unwrap_or("")
}

/// True for a byte that no expansion, quoting or splitting touches.
pub(super) fn is_plain(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'/' | b'.' | b'-' | b'_' | b':' | b'=' | b'+' | b'@' | b'%' | b'^'
        )
}

/// Expands one raw word.
pub(super) fn expand(raw: &str, mode: Mode, env: &dyn Env) -> Expanded {
    let mut x = Expander {
        env,
        subs: Vec::new(),
        too_deep: false,
    };
    let mut had_quotes = false;
    let out = x.pass(raw, mode, false, 0, &mut had_quotes);
    let substitutions = x.subs;
    if mode != Mode::Word {
        return Expanded {
            fields: vec![into_text(out)],
            substitutions,
            too_large: false,
            too_deep: x.too_deep,
        };
    }
    if !out.contains(&BRACE_OPEN) {
        // Nothing for brace expansion (the common case): the one word, split into fields,
        // with the brace sentinels given back their characters in place.
        let mut out = out;
        for c in &mut out {
            match *c {
                BRACE_COMMA => *c = b',',
                BRACE_CLOSE => *c = b'}',
                _ => {}
            }
        }
        let mut fields = Vec::new();
        if !out.contains(&SPLIT) {
            if !out.is_empty() {
                fields.push(into_text(out));
            }
        } else {
            fields.extend(
                out.split(|&c| c == SPLIT)
                    .filter(|f| !f.is_empty())
                    .map(|f| String::from_utf8_lossy(f).into_owned()),
            );
        }
        if fields.is_empty() && had_quotes {
            fields.push(String::new());
        }
        return Expanded {
            fields,
            substitutions,
            too_large: false,
            too_deep: x.too_deep,
        };
    }
    let (words, too_large) = match brace_expand(&out) {
        Some(words) => (words, false),
        None => (vec![vec![UNKNOWN_BYTE]], true),
    };
    let mut fields = Vec::new();
    for word in words {
        for field in word.split(|&c| c == SPLIT) {
            if field.is_empty() {
                continue;
            }
            let restored: Vec<u8> = field
                .iter()
                .map(|&c| match c {
                    BRACE_OPEN => b'{',
                    BRACE_COMMA => b',',
                    BRACE_CLOSE => b'}',
                    other => other,
                })
                .collect();
            fields.push(String::from_utf8_lossy(&restored).into_owned());
        }
    }
    if fields.is_empty() && had_quotes {
        fields.push(String::new());
    }
    Expanded {
        fields,
        substitutions,
        too_large,
        too_deep: x.too_deep,
    }
}

/// Expanded bytes as text, copied only when they are not valid UTF-8 (as
/// `String::from_utf8_lossy` reads them).
fn into_text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

struct Expander<'e> {
    env: &'e dyn Env,
    subs: Vec<String>,
    /// Expansions nested deeper than [`MAX_PARAM_NESTING`] were not looked into.
    too_deep: bool,
}

impl Expander<'_> {
    /// One pass over `raw`; `in_dq` is true inside a double-quoted `${x:-word}`.
    fn pass(
        &mut self,
        raw: &str,
        mode: Mode,
        in_dq_start: bool,
        nesting: usize,
        had_quotes: &mut bool,
    ) -> Vec<u8> {
        if nesting > MAX_PARAM_NESTING {
            self.too_deep = true;
            return vec![UNKNOWN_BYTE];
        }
        let b = raw.as_bytes();
        let mut out: Vec<u8> = Vec::with_capacity(b.len());
        let heredoc = mode == Mode::Heredoc;
        let active = mode == Mode::Word;
        let mut in_dq = in_dq_start;
        let mut i = 0usize;
        while i < b.len() {
            let c = byte_at(b, i);
            let next = byte_at(b, i + 1);
            let unquoted = !in_dq && !heredoc;
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
                        // An escaped character is literal: push it as it is (an escaped `*`
                        // stays a plain `*`, never a glob).
                        let len = utf8_len(next);
                        out.extend_from_slice(b.get(i + 1..i + 1 + len).unwrap_or_default());
                        i += 1 + len;
                    } else {
                        out.push(c);
                        i += 1;
                    }
                }
                b'\'' if unquoted => {
                    *had_quotes = true;
                    let end = skip_single_quote(b, i + 1);
                    out.extend_from_slice(b.get(i + 1..end).unwrap_or_default());
                    i = end + 1;
                }
                b'"' if !heredoc => {
                    *had_quotes = true;
                    in_dq = !in_dq;
                    i += 1;
                }
                b'$' if next == b'\'' && unquoted => {
                    *had_quotes = true;
                    let end = skip_ansi_c_quote(b, i + 2);
                    out.extend_from_slice(ansi_c(slice(raw, i + 2, end)).as_bytes());
                    i = end + 1;
                }
                b'$' if next == b'"' && unquoted => {
                    // `$"..."` is a translated string: a double-quoted string to us.
                    i += 1;
                }
                b'$' if next == b'(' => {
                    let close = find_closing(b, i + 1);
                    let body = slice(raw, i + 2, close);
                    if byte_at(b, i + 2) == b'(' {
                        // `$((...))`: a number, but it may hold command substitutions.
                        let mut q = false;
                        self.pass(body, Mode::Assign, false, nesting + 1, &mut q);
                    } else {
                        self.subs.push(body.to_string());
                    }
                    out.push(UNKNOWN_BYTE);
                    i = close.max(i + 1) + 1;
                }
                b'$' if next == b'[' => {
                    let mut j = i + 2;
                    while j < b.len() && byte_at(b, j) != b']' {
                        j += 1;
                    }
                    out.push(UNKNOWN_BYTE);
                    i = j + 1;
                }
                b'$' if next == b'{' => {
                    let close = find_brace_close(b, i + 2);
                    let inner = slice(raw, i + 2, close);
                    self.parameter(inner, mode, in_dq, nesting, &mut out, had_quotes);
                    i = close + 1;
                }
                b'$' if next == b'_' || next.is_ascii_alphanumeric() => {
                    let mut j = i + 1;
                    if next.is_ascii_digit() {
                        j += 1;
                    } else {
                        while j < b.len()
                            && (byte_at(b, j).is_ascii_alphanumeric() || byte_at(b, j) == b'_')
                        {
                            j += 1;
                        }
                    }
                    let name = slice(raw, i + 1, j);
                    let value = self.env.var(name);
                    push_value(&mut out, &value, active && !in_dq);
                    i = j;
                }
                b'$' if b"@*".contains(&next) => {
                    self.push_args(&mut out, active, in_dq);
                    i += 2;
                }
                b'$' if b"#?-$!".contains(&next) => {
                    out.push(UNKNOWN_BYTE);
                    i += 2;
                }
                b'`' => {
                    let mut j = i + 1;
                    let mut body = Vec::new();
                    while j < b.len() && byte_at(b, j) != b'`' {
                        if byte_at(b, j) == b'\\'
                            && matches!(byte_at(b, j + 1), b'`' | b'\\' | b'$')
                        {
                            j += 1;
                        }
                        body.push(byte_at(b, j));
                        j += 1;
                    }
                    self.subs.push(String::from_utf8_lossy(&body).into_owned());
                    out.push(UNKNOWN_BYTE);
                    i = j + 1;
                }
                b'~' if i == 0 && active && !in_dq => {
                    // `~` or `~user`: a home directory we do not know.
                    out.push(UNKNOWN_BYTE);
                    i += 1;
                    while i < b.len() && !matches!(byte_at(b, i), b'/' | b'"' | b'\'' | b'$') {
                        i += 1;
                    }
                }
                b'*' if active && !in_dq => {
                    out.push(STAR);
                    i += 1;
                }
                b'?' if active && !in_dq => {
                    out.push(ONE);
                    i += 1;
                }
                b'[' if active && !in_dq => match glob_class_end(b, i + 1) {
                    Some(end) => {
                        out.push(ONE);
                        i = end + 1;
                    }
                    None => {
                        out.push(c);
                        i += 1;
                    }
                },
                b'{' if active && !in_dq => {
                    out.push(BRACE_OPEN);
                    i += 1;
                }
                b',' if active && !in_dq => {
                    out.push(BRACE_COMMA);
                    i += 1;
                }
                b'}' if active && !in_dq => {
                    out.push(BRACE_CLOSE);
                    i += 1;
                }
                _ => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        out
    }

    fn push_args(&mut self, out: &mut Vec<u8>, active: bool, in_dq: bool) {
        match self.env.args() {
            Some(args) => {
                for (n, a) in args.iter().enumerate() {
                    if n > 0 {
                        // `"$@"` is one field per parameter; so is unquoted `$@` after splitting.
                        out.push(if active { SPLIT } else { b' ' });
                    }
                    push_value(out, a, active && !in_dq);
                }
            }
            None => out.push(UNKNOWN_BYTE),
        }
    }

    /// `${...}` with `inner` the text between the braces.
    fn parameter(
        &mut self,
        inner: &str,
        mode: Mode,
        in_dq: bool,
        nesting: usize,
        out: &mut Vec<u8>,
        had_quotes: &mut bool,
    ) {
        let active = mode == Mode::Word && !in_dq;
        let ib = inner.as_bytes();
        let name_end = if ib.first().is_some_and(|c| b"@*#?-$!".contains(c)) && ib.len() == 1 {
            1
        } else if ib.first().is_some_and(u8::is_ascii_digit) {
            ib.iter().take_while(|c| c.is_ascii_digit()).count()
        } else {
            ib.iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                .count()
        };
        let name = slice(inner, 0, name_end);
        let rest = slice(inner, name_end, inner.len());
        if name.is_empty() {
            // `${#x}`, `${!x}` and the like: not a path we can know. Still look for
            // substitutions inside.
            let mut q = false;
            self.pass(inner, Mode::Assign, false, nesting + 1, &mut q);
            out.push(UNKNOWN_BYTE);
            return;
        }
        if name == "@" || name == "*" {
            if rest.is_empty() {
                self.push_args(out, mode == Mode::Word, in_dq);
            } else {
                out.push(UNKNOWN_BYTE);
            }
            return;
        }
        let value = if name.len() == 1 && b"#?-$!".contains(&ib[0]) {
            Value::Unknown
        } else {
            self.env.var(name)
        };
        if rest.is_empty() {
            push_value(out, &value, active);
            return;
        }
        let (colon, op, word) = match rest.strip_prefix(':') {
            Some(r) => (
                true,
                r.as_bytes().first().copied(),
                r.get(1..).unwrap_or(""),
            ),
            None => (
                false,
                rest.as_bytes().first().copied(),
                rest.get(1..).unwrap_or(""),
            ),
        };
        let empty = |v: &Value| match v {
            Value::Unset => true,
            Value::Known(s) => colon && s.is_empty(),
            Value::Unknown => false,
        };
        match op {
            Some(b'-' | b'=' | b'?' | b'+') => {
                let mut word_out = || {
                    let sub_mode = if mode == Mode::Word && in_dq {
                        Mode::Assign
                    } else {
                        mode
                    };
                    self.pass(word, sub_mode, in_dq, nesting + 1, had_quotes)
                };
                match (&value, op) {
                    (Value::Unknown, _) => {
                        word_out();
                        out.push(UNKNOWN_BYTE);
                    }
                    (v, Some(b'+')) => {
                        if !empty(v) {
                            let w = word_out();
                            out.extend_from_slice(&w);
                        }
                    }
                    (v, _) if empty(v) => {
                        let w = word_out();
                        out.extend_from_slice(&w);
                    }
                    (v, _) => push_value(out, v, active),
                }
            }
            _ => {
                // Pattern removal, substitution, substrings, case changes: unknown text.
                let mut q = false;
                self.pass(rest, Mode::Assign, false, nesting + 1, &mut q);
                out.push(UNKNOWN_BYTE);
            }
        }
    }
}

/// Appends a variable's value; unquoted in a command word, its blanks split fields and its
/// glob characters are active.
fn push_value(out: &mut Vec<u8>, value: &Value, active: bool) {
    match value {
        Value::Known(s) => {
            if active {
                out.extend(s.bytes().map(|c| match c {
                    b' ' | b'\t' | b'\n' => SPLIT,
                    b'*' => STAR,
                    b'?' => ONE,
                    other => other,
                }));
            } else {
                out.extend_from_slice(s.as_bytes());
            }
        }
        Value::Unknown => out.push(UNKNOWN_BYTE),
        Value::Unset => {}
    }
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// End of a `[...]` glob class starting after `[` at `from`, within the word.
fn glob_class_end(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    // `[]...]` and `[!]...]`: a leading `]` is part of the class.
    if matches!(byte_at(b, i), b'!' | b'^') {
        i += 1;
    }
    if byte_at(b, i) == b']' {
        i += 1;
    }
    while i < b.len() {
        match byte_at(b, i) {
            b']' => return Some(i),
            b'\'' | b'"' | b'$' | b'`' | b'\\' | b'/' => return None,
            _ => i += 1,
        }
    }
    None
}

/// Index of the `)` closing the `(` at `open`, quote-aware; the end of input when unbalanced.
pub(super) fn find_closing(b: &[u8], open: usize) -> usize {
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

/// Index of the `}` closing a `${` whose inner text starts at `from`; quote- and
/// nesting-aware, the end of input when unbalanced.
fn find_brace_close(b: &[u8], from: usize) -> usize {
    let mut depth = 1usize;
    let mut i = from;
    let mut in_dq = false;
    while i < b.len() {
        match byte_at(b, i) {
            b'\\' => i += 1,
            b'\'' if !in_dq => i = skip_single_quote(b, i + 1),
            b'"' => in_dq = !in_dq,
            b'$' if byte_at(b, i + 1) == b'{' => {
                depth += 1;
                i += 1;
            }
            b'}' => {
                depth -= 1;
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

/// Brace expansion over the sentinel-marked word, iterative and capped: `None` when the
/// result would pass [`MAX_BRACE_RESULTS`] words or [`MAX_BRACE_BYTES`] bytes.
fn brace_expand(word: &[u8]) -> Option<Vec<Vec<u8>>> {
    if !word.contains(&BRACE_OPEN) {
        return Some(vec![word.to_vec()]);
    }
    let mut queue = vec![word.to_vec()];
    let mut done: Vec<Vec<u8>> = Vec::new();
    let mut bytes = word.len();
    while let Some(w) = queue.pop() {
        match first_brace_group(&w) {
            None => done.push(w),
            Some((open, close, alternatives)) => {
                let prefix = w.get(..open).unwrap_or_default();
                let suffix = w.get(close + 1..).unwrap_or_default();
                bytes = bytes.saturating_sub(w.len());
                // Alternatives are pushed in reverse so they come out in order.
                for alt in alternatives.iter().rev() {
                    let mut next = Vec::with_capacity(prefix.len() + alt.len() + suffix.len());
                    next.extend_from_slice(prefix);
                    next.extend_from_slice(alt);
                    next.extend_from_slice(suffix);
                    bytes += next.len();
                    queue.push(next);
                }
            }
        }
        if done.len() + queue.len() > MAX_BRACE_RESULTS || bytes > MAX_BRACE_BYTES {
            return None;
        }
    }
    Some(done)
}

/// The first brace group that expands: `{a,b}` (a top-level comma) or a sequence `{1..3}`.
fn first_brace_group(w: &[u8]) -> Option<(usize, usize, Vec<Vec<u8>>)> {
    let mut start = 0;
    while let Some(rel) = w.get(start..)?.iter().position(|&c| c == BRACE_OPEN) {
        let open = start + rel;
        let mut depth = 0usize;
        let mut commas = Vec::new();
        let mut close = None;
        for (j, &c) in w.iter().enumerate().skip(open) {
            match c {
                BRACE_OPEN => depth += 1,
                BRACE_CLOSE => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(j);
                        break;
                    }
                }
                BRACE_COMMA if depth == 1 => commas.push(j),
                _ => {}
            }
        }
        let Some(close) = close else {
            // Unbalanced from here on: nothing later can be a group of this one's text.
            start = open + 1;
            continue;
        };
        if !commas.is_empty() {
            let mut alts = Vec::new();
            let mut from = open + 1;
            for &c in commas.iter().chain(std::iter::once(&close)) {
                alts.push(w.get(from..c).unwrap_or_default().to_vec());
                from = c + 1;
            }
            return Some((open, close, alts));
        }
        if let Some(seq) = sequence(w.get(open + 1..close).unwrap_or_default()) {
            return Some((open, close, seq));
        }
        start = open + 1;
    }
    None
}

/// `{1..5}`, `{a..e}`, `{10..1..2}`; capped like every brace expansion.
fn sequence(inner: &[u8]) -> Option<Vec<Vec<u8>>> {
    let text = std::str::from_utf8(inner).ok()?;
    let parts: Vec<&str> = text.split("..").collect();
    if !(2..=3).contains(&parts.len()) {
        return None;
    }
    let step: i64 = match parts.get(2) {
        Some(s) => s.parse::<i64>().ok()?.unsigned_abs().max(1) as i64,
        None => 1,
    };
    let (a, b) = (parts[0], parts[1]);
    let range = |from: i64, to: i64| -> Option<Vec<i64>> {
        let count = from.abs_diff(to) / step.unsigned_abs() + 1;
        if count > MAX_BRACE_RESULTS as u64 + 1 {
            // More than the cap: make the caller give up.
            return Some(vec![0; MAX_BRACE_RESULTS + 1]);
        }
        let mut v = Vec::new();
        let mut x = from;
        loop {
            v.push(x);
            if x == to || v.len() > MAX_BRACE_RESULTS {
                break;
            }
            x = if from <= to { x + step } else { x - step };
            if (from <= to && x > to) || (from > to && x < to) {
                break;
            }
        }
        Some(v)
    };
    if let (Ok(x), Ok(y)) = (a.parse::<i64>(), b.parse::<i64>()) {
        return Some(
            range(x, y)?
                .into_iter()
                .map(|n| n.to_string().into_bytes())
                .collect(),
        );
    }
    let (ca, cb) = (a.as_bytes(), b.as_bytes());
    if ca.len() == 1 && cb.len() == 1 && ca[0].is_ascii_alphabetic() && cb[0].is_ascii_alphabetic()
    {
        return Some(
            range(i64::from(ca[0]), i64::from(cb[0]))?
                .into_iter()
                .map(|n| vec![u8::try_from(n).unwrap_or(b'?')])
                .collect(),
        );
    }
    None
}

/// Escape handling of the different quoting and printing forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Escapes {
    /// `$'...'`: `\xHH`, `\NNN`, `\uHHHH`, `\cX`, `\'`, `\"`.
    AnsiC,
    /// `echo -e`/dash `echo`: `\0NNN` octal, `\xHH`, `\c` stops output.
    Echo,
    /// A `printf` format: `\NNN` octal, `\xHH`.
    Printf,
}

/// Interprets ANSI-C `$'...'` text.
pub(super) fn ansi_c(s: &str) -> String {
    interpret(s, Escapes::AnsiC)
}

/// Interprets backslash escapes as `echo -e`, `printf` and `$'...'` do.
pub(super) fn interpret(s: &str, kind: Escapes) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |from: usize, max: usize, radix: u32| -> (u32, usize) {
        let mut value = 0u32;
        let mut n = 0;
        while n < max {
            match (byte_at(b, from + n) as char).to_digit(radix) {
                Some(d) if from + n < b.len() => {
                    value = value.saturating_mul(radix).saturating_add(d);
                    n += 1;
                }
                _ => break,
            }
        }
        (value, n)
    };
    let push_char = |out: &mut Vec<u8>, v: u32| {
        let ch = char::from_u32(v).unwrap_or('\u{fffd}');
        let mut buf = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
    };
    while i < b.len() {
        let c = byte_at(b, i);
        if c != b'\\' || i + 1 >= b.len() {
            out.push(c);
            i += 1;
            continue;
        }
        let e = byte_at(b, i + 1);
        i += 2;
        match e {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'v' => out.push(0x0b),
            b'f' => out.push(0x0c),
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b'e' | b'E' => out.push(0x1b),
            b'\\' => out.push(b'\\'),
            b'x' => {
                let (v, n) = digits(i, 2, 16);
                if n == 0 {
                    out.extend_from_slice(b"\\x");
                } else {
                    // A byte value; non-ASCII bytes become U+FFFD after lossy decoding.
                    out.push(u8::try_from(v).unwrap_or(b'?'));
                    i += n;
                }
            }
            b'0' if kind == Escapes::Echo => {
                let (v, n) = digits(i, 3, 8);
                out.push(u8::try_from(v & 0xff).unwrap_or(b'?'));
                i += n;
            }
            b'0'..=b'7' if kind != Escapes::Echo => {
                let (v, n) = digits(i - 1, 3, 8);
                out.push(u8::try_from(v & 0xff).unwrap_or(b'?'));
                i += n - 1;
            }
            b'u' | b'U' if kind == Escapes::AnsiC => {
                let (v, n) = digits(i, if e == b'u' { 4 } else { 8 }, 16);
                if n == 0 {
                    out.push(b'\\');
                    out.push(e);
                } else {
                    push_char(&mut out, v);
                    i += n;
                }
            }
            b'c' if kind == Escapes::AnsiC => {
                let x = byte_at(b, i);
                out.push(x & 0x1f);
                i += 1;
            }
            b'c' if kind == Escapes::Echo => break,
            b'\'' | b'"' | b'?' if kind == Escapes::AnsiC => out.push(e),
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Shows expanded text to a user: unknown parts as `…`, globs as written.
pub(super) fn display(text: &str) -> String {
    let mut s: String = text
        .chars()
        .map(|c| match c {
            UNKNOWN => '…',
            '\u{1}' => '*',
            '\u{2}' => '?',
            c if c.is_control() => '�',
            c => c,
        })
        .take(120)
        .collect();
    if text.chars().nth(120).is_some() {
        s.push('…');
    }
    s
}
