//! The lexer: a quote-, substitution- and heredoc-aware tokenizer that never recurses.

use super::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Tok {
    /// A word, as the byte range of its raw text in the script (no copy until needed).
    Word(usize, usize),
    Redirect {
        fd: Option<i32>,
        op: ROp,
    },
    HereDoc {
        fd: Option<i32>,
        body: String,
        expand: bool,
    },
    Pipe,
    Separator,
}

pub(super) struct Lexed {
    pub(super) tokens: Vec<Tok>,
    /// Deepest nesting seen: quotes and substitutions inside words plus compound commands.
    pub(super) max_nesting: usize,
}

/// Contexts inside a word, kept on an explicit stack so that nesting costs heap, not stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WordCtx {
    DoubleQuote,
    Paren,
    Brace,
    /// `$[...]`, bash's legacy arithmetic, which brush's tokenizer also recurses into.
    Bracket,
    Backtick,
}

/// Compound commands open at a point of the script, for the nesting estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Block {
    If,
    Loop,
    CasePattern,
    CaseBody,
    Brace,
    Paren,
}

pub(super) fn byte_at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

pub(super) fn slice(text: &str, from: usize, to: usize) -> &str {
    text.get(from..to.min(text.len())).unwrap_or("")
}

/// Tokenizes a script without recursion. Quote-, substitution-, comment- and heredoc-aware; never
/// fails: an unbalanced quote simply runs to the end of the input.
pub(super) fn lex(text: &str) -> Lexed {
    let b = text.as_bytes();
    let mut tokens = Vec::new();
    let mut blocks: Vec<Block> = Vec::new();
    let mut max_nesting = 0usize;
    // Heredocs whose bodies start at the next newline: (index of token, delimiter, strip tabs).
    let mut pending: Vec<(usize, String, bool)> = Vec::new();
    let mut at_command_start = true;
    let mut i = 0usize;
    while i < b.len() {
        let c = byte_at(b, i);
        match c {
            b' ' | b'\t' => i += 1,
            b'\\' if byte_at(b, i + 1) == b'\n' => i += 2,
            b'#' => {
                while i < b.len() && byte_at(b, i) != b'\n' {
                    i += 1;
                }
            }
            b'\n' => {
                i += 1;
                tokens.push(Tok::Separator);
                at_command_start = true;
                for (index, delim, strip) in std::mem::take(&mut pending) {
                    let (body, next) = read_heredoc_body(text, i, &delim, strip);
                    if let Some(Tok::HereDoc { body: slot, .. }) = tokens.get_mut(index) {
                        *slot = body;
                    }
                    i = next;
                }
            }
            b';' | b'&' | b'|' | b'(' | b')' => {
                let two = [c, byte_at(b, i + 1)];
                let (len, tok) = match &two {
                    b"&&" | b"||" | b";;" => (2, Tok::Separator),
                    b"&>" => {
                        let append = byte_at(b, i + 2) == b'>';
                        let op = if append {
                            ROp::OutErrAppend
                        } else {
                            ROp::OutErr
                        };
                        (if append { 3 } else { 2 }, Tok::Redirect { fd: None, op })
                    }
                    b"|&" => (2, Tok::Pipe),
                    [b'|', _] => (1, Tok::Pipe),
                    _ => (1, Tok::Separator),
                };
                match c {
                    b'(' => blocks.push(Block::Paren),
                    b')' => match blocks.last() {
                        Some(Block::CasePattern) => {
                            blocks.pop();
                            blocks.push(Block::CaseBody);
                        }
                        Some(Block::Paren) => {
                            blocks.pop();
                        }
                        _ => {}
                    },
                    b';' if len == 2 && blocks.last() == Some(&Block::CaseBody) => {
                        blocks.pop();
                        blocks.push(Block::CasePattern);
                    }
                    _ => {}
                }
                max_nesting = max_nesting.max(blocks.len());
                i += len;
                at_command_start = !matches!(tok, Tok::Redirect { .. });
                tokens.push(tok);
            }
            b'<' | b'>' => {
                let (len, op, heredoc_strip) = redirect_op(b, i);
                i += len;
                if let Some(strip) = heredoc_strip {
                    // The delimiter is the next word; its quoting decides expansion.
                    while matches!(byte_at(b, i), b' ' | b'\t') {
                        i += 1;
                    }
                    let (end, _) = scan_word(b, i);
                    let raw = slice(text, i, end);
                    i = end.max(i + usize::from(end == i && i < b.len()));
                    let expand = !raw.contains(['\'', '"', '\\']);
                    let delim = expand_word(raw, false).text;
                    pending.push((tokens.len(), delim, strip));
                    tokens.push(Tok::HereDoc {
                        fd: None,
                        body: String::new(),
                        expand,
                    });
                } else {
                    tokens.push(Tok::Redirect { fd: None, op });
                }
            }
            _ => {
                let (end, nesting) = scan_word(b, i);
                let end = end.max(i + 1);
                let word = slice(text, i, end);
                // `2>` : a number glued to a redirection is its file descriptor.
                if matches!(byte_at(b, end), b'<' | b'>')
                    && word.bytes().all(|d| d.is_ascii_digit())
                {
                    let fd = word.parse::<i32>().ok();
                    let (len, op, heredoc_strip) = redirect_op(b, end);
                    if heredoc_strip.is_none() {
                        tokens.push(Tok::Redirect { fd, op });
                        i = end + len;
                        continue;
                    }
                }
                if at_command_start {
                    match word {
                        "if" => blocks.push(Block::If),
                        "while" | "until" | "for" | "select" => blocks.push(Block::Loop),
                        "case" => blocks.push(Block::CasePattern),
                        "{" => blocks.push(Block::Brace),
                        "fi" | "done" | "esac" | "}" => {
                            let matching = match word {
                                "fi" => Block::If,
                                "done" => Block::Loop,
                                "}" => Block::Brace,
                                _ => Block::CaseBody,
                            };
                            let top = blocks.last().copied();
                            if top == Some(matching)
                                || (word == "esac" && top == Some(Block::CasePattern))
                            {
                                blocks.pop();
                            }
                        }
                        _ => {}
                    }
                }
                max_nesting = max_nesting.max(blocks.len() + nesting);
                at_command_start = is_reserved_word(word) || word == "!";
                tokens.push(Tok::Word(i, end));
                i = end;
            }
        }
    }
    // A heredoc at the very end of the input without a newline after its operator line.
    for (index, delim, strip) in pending {
        let (body, _) = read_heredoc_body(text, text.len(), &delim, strip);
        if let Some(Tok::HereDoc { body: slot, .. }) = tokens.get_mut(index) {
            *slot = body;
        }
    }
    Lexed {
        tokens,
        max_nesting,
    }
}

/// Reads a redirection operator at `i`: (length, operator, Some(strip_tabs) for a heredoc).
pub(super) fn redirect_op(b: &[u8], i: usize) -> (usize, ROp, Option<bool>) {
    let c0 = byte_at(b, i);
    let c1 = byte_at(b, i + 1);
    let c2 = byte_at(b, i + 2);
    match (c0, c1, c2) {
        (b'<', b'<', b'<') => (3, ROp::HereString, None),
        (b'<', b'<', b'-') => (3, ROp::HereDoc, Some(true)),
        (b'<', b'<', _) => (2, ROp::HereDoc, Some(false)),
        (b'<', b'>', _) => (2, ROp::ReadWrite, None),
        (b'<', b'&', _) | (b'<', b'(', _) => (1, ROp::Other, None),
        (b'<', _, _) => (1, ROp::Other, None),
        (b'>', b'>', _) => (2, ROp::Append, None),
        (b'>', b'|', _) => (2, ROp::Clobber, None),
        // `>&2` duplicates a descriptor; `>&file` also writes a file, seen as `&>`.
        (b'>', b'&', d) if d.is_ascii_digit() || d == b'-' => (2, ROp::Other, None),
        (b'>', b'&', _) => (2, ROp::OutErr, None),
        (b'>', b'(', _) => (1, ROp::Other, None),
        _ => (1, ROp::Out, None),
    }
}

/// Scans one word starting at `i`; returns its end and the deepest quote/substitution nesting in
/// it. Iterative, so any depth of `$(` costs only heap.
pub(super) fn scan_word(b: &[u8], mut i: usize) -> (usize, usize) {
    let mut stack: Vec<WordCtx> = Vec::new();
    let mut max = 0usize;
    while i < b.len() {
        let c = byte_at(b, i);
        let next = byte_at(b, i + 1);
        match stack.last().copied() {
            None => match c {
                b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'<' | b'>' | b'(' | b')' => {
                    break;
                }
                b'\\' => i += 1,
                b'\'' => i = skip_single_quote(b, i + 1),
                b'"' => stack.push(WordCtx::DoubleQuote),
                b'`' => stack.push(WordCtx::Backtick),
                b'$' if next == b'(' => {
                    stack.push(WordCtx::Paren);
                    i += 1;
                }
                b'$' if next == b'{' => {
                    stack.push(WordCtx::Brace);
                    i += 1;
                }
                b'$' if next == b'\'' => i = skip_ansi_c_quote(b, i + 2),
                b'$' if next == b'[' => {
                    stack.push(WordCtx::Bracket);
                    i += 1;
                }
                _ => {}
            },
            Some(WordCtx::DoubleQuote) => match c {
                b'\\' => i += 1,
                b'"' => {
                    stack.pop();
                }
                b'`' => stack.push(WordCtx::Backtick),
                b'$' if next == b'(' => {
                    stack.push(WordCtx::Paren);
                    i += 1;
                }
                b'$' if next == b'{' => {
                    stack.push(WordCtx::Brace);
                    i += 1;
                }
                b'$' if next == b'[' => {
                    stack.push(WordCtx::Bracket);
                    i += 1;
                }
                _ => {}
            },
            Some(WordCtx::Paren) => match c {
                b'\\' => i += 1,
                b'\'' => i = skip_single_quote(b, i + 1),
                b'"' => stack.push(WordCtx::DoubleQuote),
                b'`' => stack.push(WordCtx::Backtick),
                b'(' => stack.push(WordCtx::Paren),
                b')' => {
                    stack.pop();
                }
                b'$' if next == b'{' => {
                    stack.push(WordCtx::Brace);
                    i += 1;
                }
                b'$' if next == b'[' => {
                    stack.push(WordCtx::Bracket);
                    i += 1;
                }
                _ => {}
            },
            Some(WordCtx::Brace) => match c {
                b'\\' => i += 1,
                b'\'' => i = skip_single_quote(b, i + 1),
                b'"' => stack.push(WordCtx::DoubleQuote),
                b'}' => {
                    stack.pop();
                }
                b'$' if next == b'(' => {
                    stack.push(WordCtx::Paren);
                    i += 1;
                }
                b'$' if next == b'{' => {
                    stack.push(WordCtx::Brace);
                    i += 1;
                }
                b'$' if next == b'[' => {
                    stack.push(WordCtx::Bracket);
                    i += 1;
                }
                _ => {}
            },
            Some(WordCtx::Bracket) => match c {
                b'\\' => i += 1,
                b'[' => stack.push(WordCtx::Bracket),
                b']' => {
                    stack.pop();
                }
                b'$' if next == b'(' => {
                    stack.push(WordCtx::Paren);
                    i += 1;
                }
                b'$' if next == b'{' => {
                    stack.push(WordCtx::Brace);
                    i += 1;
                }
                b'$' if next == b'[' => {
                    stack.push(WordCtx::Bracket);
                    i += 1;
                }
                _ => {}
            },
            Some(WordCtx::Backtick) => match c {
                b'\\' => i += 1,
                b'`' => {
                    stack.pop();
                }
                _ => {}
            },
        }
        max = max.max(stack.len());
        i += 1;
    }
    (i.min(b.len()), max)
}

/// Returns the index of the closing `'` (or the end of input).
pub(super) fn skip_single_quote(b: &[u8], from: usize) -> usize {
    let mut i = from;
    while i < b.len() && byte_at(b, i) != b'\'' {
        i += 1;
    }
    i
}

pub(super) fn skip_ansi_c_quote(b: &[u8], from: usize) -> usize {
    let mut i = from;
    while i < b.len() && byte_at(b, i) != b'\'' {
        if byte_at(b, i) == b'\\' {
            i += 1;
        }
        i += 1;
    }
    i
}

/// Reads heredoc lines from `start` up to the delimiter line; returns (body, index after it).
pub(super) fn read_heredoc_body(
    text: &str,
    start: usize,
    delim: &str,
    strip_tabs: bool,
) -> (String, usize) {
    let mut body = String::new();
    let mut pos = start;
    while pos < text.len() {
        let end = text
            .get(pos..)
            .and_then(|rest| rest.find('\n'))
            .map_or(text.len(), |n| pos + n);
        let line = slice(text, pos, end);
        let line = if strip_tabs {
            line.trim_start_matches('\t')
        } else {
            line
        };
        pos = (end + 1).min(text.len());
        if line.trim_end_matches('\r') == delim {
            return (body, pos);
        }
        body.push_str(line);
        body.push('\n');
    }
    (body, text.len())
}

pub(super) fn strip_leading_tabs(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    for line in body.split_inclusive('\n') {
        out.push_str(line.trim_start_matches('\t'));
    }
    out
}

pub(super) fn is_reserved_word(w: &str) -> bool {
    matches!(
        w,
        "if" | "then"
            | "else"
            | "elif"
            | "fi"
            | "do"
            | "done"
            | "while"
            | "until"
            | "case"
            | "esac"
            | "in"
            | "{"
            | "}"
            | "!"
            | "time"
            | "function"
            | "select"
            | "coproc"
    )
}

pub(super) fn is_assignment(w: &str) -> bool {
    match w.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name
                    .trim_end_matches('+')
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'_')
        }
        None => false,
    }
}
