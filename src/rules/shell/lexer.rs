//! The lexer: a quote-, substitution- and heredoc-aware tokenizer that never recurses.

use super::ROp;

/// One token of a script.
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
    /// `&&` or `||`: what follows runs conditionally.
    AndOr,
    Separator,
    /// A quote, substitution or heredoc that never ends: the shell runs nothing after it.
    Unterminated,
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

/// Tokenizes a script without recursion, one token at a time, so that a script of any size
/// costs memory for one token, not all of them. Quote-, substitution-, comment- and
/// heredoc-aware; never fails: an unbalanced quote runs to the end of the input and yields
/// [`Tok::Unterminated`].
///
/// A heredoc's body starts after the line that holds its operator. When the lexer meets the
/// operator it finds the end of that line once (the same scan it will make anyway) and reads
/// the body there, so every byte is looked at a bounded number of times.
pub(super) struct Lexer<'t> {
    text: &'t str,
    i: usize,
    blocks: Vec<Block>,
    max_nesting: usize,
    at_command_start: bool,
    /// Where the next heredoc body of the current line starts, once the line's end is known.
    body_at: Option<usize>,
    unterminated: bool,
    /// Inside `(( ... ))`: the block depth it started at.
    arithmetic: Option<usize>,
    /// [`scan_word`]'s context stack, kept between words so that a quoted word costs no
    /// allocation.
    stack: Vec<WordCtx>,
}

impl<'t> Lexer<'t> {
    pub(super) fn new(text: &'t str) -> Self {
        Lexer {
            text,
            i: 0,
            blocks: Vec::new(),
            max_nesting: 0,
            at_command_start: true,
            body_at: None,
            unterminated: false,
            arithmetic: None,
            stack: Vec::new(),
        }
    }

    /// Deepest nesting seen so far: quotes and substitutions inside words plus compound
    /// commands.
    pub(super) fn max_nesting(&self) -> usize {
        self.max_nesting
    }

    /// The index of the newline that ends the command line containing `from` (the same
    /// tokenization as [`Iterator::next`], without producing tokens).
    fn line_end(&mut self, mut i: usize) -> usize {
        let b = self.text.as_bytes();
        let mut word_start = true;
        while i < b.len() {
            match byte_at(b, i) {
                b'\n' => return i,
                b' ' | b'\t' => {
                    word_start = true;
                    i += 1;
                }
                b'\\' if byte_at(b, i + 1) == b'\n' => i += 2,
                b'#' if word_start => {
                    while i < b.len() && byte_at(b, i) != b'\n' {
                        i += 1;
                    }
                }
                b';' | b'&' | b'|' | b'(' | b')' | b'<' | b'>' => {
                    word_start = true;
                    i += 1;
                }
                _ => {
                    let (end, _, _) = scan_word(b, i, &mut self.stack);
                    i = end.max(i + 1);
                    word_start = false;
                }
            }
        }
        b.len()
    }
}

impl Iterator for Lexer<'_> {
    type Item = Tok;

    fn next(&mut self) -> Option<Tok> {
        let text = self.text;
        let b = text.as_bytes();
        if self.unterminated {
            self.unterminated = false;
            self.i = b.len();
            return Some(Tok::Unterminated);
        }
        while self.i < b.len() {
            let i = self.i;
            let c = byte_at(b, i);
            match c {
                b' ' | b'\t' => self.i += 1,
                b'\\' if byte_at(b, i + 1) == b'\n' => self.i += 2,
                b'#' => {
                    let mut j = i;
                    while j < b.len() && byte_at(b, j) != b'\n' {
                        j += 1;
                    }
                    self.i = j;
                }
                b'\n' => {
                    // Skip the heredoc bodies that followed this line.
                    self.i = self.body_at.take().unwrap_or(i + 1).max(i + 1);
                    self.at_command_start = true;
                    return Some(Tok::Separator);
                }
                b'(' if self.at_command_start
                    && byte_at(b, i + 1) == b'('
                    && self.arithmetic.is_none() =>
                {
                    // `(( x = 1<<2 ))` is arithmetic: its `<<` is a shift, not a heredoc.
                    // The parentheses are still tokens, so nesting is counted as for
                    // subshells and nothing recurses.
                    self.arithmetic = Some(self.blocks.len());
                    self.blocks.push(Block::Paren);
                    self.max_nesting = self.max_nesting.max(self.blocks.len());
                    self.i += 1;
                    return Some(Tok::Separator);
                }
                b';' | b'&' | b'|' | b'(' | b')' => {
                    let two = [c, byte_at(b, i + 1)];
                    let (len, tok) = match &two {
                        b"&&" | b"||" => (2, Tok::AndOr),
                        b";;" => (2, Tok::Separator),
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
                        b'(' => self.blocks.push(Block::Paren),
                        b')' => match self.blocks.last() {
                            Some(Block::CasePattern) => {
                                self.blocks.pop();
                                self.blocks.push(Block::CaseBody);
                            }
                            Some(Block::Paren) => {
                                self.blocks.pop();
                                if self
                                    .arithmetic
                                    .is_some_and(|level| self.blocks.len() <= level)
                                {
                                    self.arithmetic = None;
                                }
                            }
                            _ => {}
                        },
                        b';' if len == 2 && self.blocks.last() == Some(&Block::CaseBody) => {
                            self.blocks.pop();
                            self.blocks.push(Block::CasePattern);
                        }
                        _ => {}
                    }
                    self.max_nesting = self.max_nesting.max(self.blocks.len());
                    self.i += len;
                    self.at_command_start = !matches!(tok, Tok::Redirect { .. });
                    return Some(tok);
                }
                b'<' | b'>' => return Some(self.redirect(None, i)),
                _ => {
                    let (end, nesting, unterminated) = scan_word(b, i, &mut self.stack);
                    let end = end.max(i + 1);
                    let word = slice(text, i, end);
                    // `2>` : a number glued to a redirection is its file descriptor.
                    if matches!(byte_at(b, end), b'<' | b'>')
                        && word.bytes().all(|d| d.is_ascii_digit())
                    {
                        return Some(self.redirect(word.parse::<i32>().ok(), end));
                    }
                    if self.at_command_start {
                        self.block_word(word);
                    }
                    self.max_nesting = self.max_nesting.max(self.blocks.len() + nesting);
                    self.at_command_start = is_reserved_word(word) || word == "!";
                    self.i = end;
                    self.unterminated = unterminated;
                    return Some(Tok::Word(i, end));
                }
            }
        }
        None
    }
}

impl Lexer<'_> {
    /// A redirection operator at `at` (after its fd, if any).
    fn redirect(&mut self, fd: Option<i32>, at: usize) -> Tok {
        let text = self.text;
        let b = text.as_bytes();
        let (len, op, heredoc_strip) = redirect_op(b, at);
        let mut i = at + len;
        self.at_command_start = false;
        let Some(strip) = heredoc_strip.filter(|_| self.arithmetic.is_none()) else {
            self.i = i;
            let op = if heredoc_strip.is_some() {
                ROp::Other
            } else {
                op
            };
            return Tok::Redirect { fd, op };
        };
        // The delimiter is the next word; its quoting decides expansion.
        while matches!(byte_at(b, i), b' ' | b'\t') {
            i += 1;
        }
        let (end, _, _) = scan_word(b, i, &mut self.stack);
        let raw = slice(text, i, end);
        self.i = end.max(i + usize::from(end == i && i < b.len()));
        let expand = !raw.contains(['\'', '"', '\\']);
        let delim = unquote(raw);
        let body_from = match self.body_at {
            Some(at) => at,
            None => (self.line_end(self.i) + 1).min(b.len()),
        };
        let (body, next, found) = read_heredoc_body(text, body_from, &delim, strip);
        self.body_at = Some(next);
        if !found {
            self.unterminated = true;
        }
        Tok::HereDoc { fd, body, expand }
    }

    fn block_word(&mut self, word: &str) {
        match word {
            "if" => self.blocks.push(Block::If),
            "while" | "until" | "for" | "select" => self.blocks.push(Block::Loop),
            "case" => self.blocks.push(Block::CasePattern),
            "{" => self.blocks.push(Block::Brace),
            "fi" | "done" | "esac" | "}" => {
                let matching = match word {
                    "fi" => Block::If,
                    "done" => Block::Loop,
                    "}" => Block::Brace,
                    _ => Block::CaseBody,
                };
                let top = self.blocks.last().copied();
                if top == Some(matching) || (word == "esac" && top == Some(Block::CasePattern)) {
                    self.blocks.pop();
                }
            }
            _ => {}
        }
    }
}

/// Quote removal for a heredoc delimiter: no expansions apply to it.
fn unquote(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (Some('"') | None, '\\') => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            _ => out.push(c),
        }
    }
    out
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
        (b'<', _, _) => (1, ROp::Read, None),
        (b'>', b'>', _) => (2, ROp::Append, None),
        (b'>', b'|', _) => (2, ROp::Clobber, None),
        // `>&2` duplicates a descriptor; `>&file` also writes a file, seen as `&>`.
        (b'>', b'&', d) if d.is_ascii_digit() || d == b'-' => (2, ROp::Other, None),
        (b'>', b'&', _) => (2, ROp::OutErr, None),
        (b'>', b'(', _) => (1, ROp::Other, None),
        _ => (1, ROp::Out, None),
    }
}

/// Bytes that end a word or open a quote, escape or substitution outside any quote; every
/// other byte there is just part of the word.
const UNQUOTED_SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let special = b" \t\n;&|<>()\\'\"`$";
    let mut k = 0;
    while k < special.len() {
        t[special[k] as usize] = true;
        k += 1;
    }
    t
};

/// Scans one word starting at `i`; returns its end, the deepest quote/substitution nesting in
/// it, and whether a quote or substitution runs to the end of the input. Iterative, so any
/// depth of `$(` costs only heap (`stack`, cleared here, is the caller's buffer).
pub(super) fn scan_word(b: &[u8], mut i: usize, stack: &mut Vec<WordCtx>) -> (usize, usize, bool) {
    stack.clear();
    let mut max = 0usize;
    while i < b.len() {
        if stack.is_empty() {
            // Outside quotes, ordinary bytes change nothing: skip them in one go.
            while b.get(i).is_some_and(|&c| !UNQUOTED_SPECIAL[usize::from(c)]) {
                i += 1;
            }
            if i >= b.len() {
                break;
            }
        }
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
    (i.min(b.len()), max, !stack.is_empty() || i > b.len())
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

/// Reads heredoc lines from `start` up to the delimiter line; returns (body, index after it,
/// whether the delimiter line was found).
pub(super) fn read_heredoc_body(
    text: &str,
    start: usize,
    delim: &str,
    strip_tabs: bool,
) -> (String, usize, bool) {
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
            return (body, pos, true);
        }
        body.push_str(line);
        body.push('\n');
    }
    (body, text.len(), false)
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
            | "for"
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
