//! Shell analysis: finds writes to `/etc/hosts` in container commands and shell scripts.
//!
//! The kubelet owns `/etc/hosts` in every Pod and rewrites it, so an edit made from a container's
//! `command`/`args`, a lifecycle hook or a probe is lost or fights the kubelet; the durable way is
//! `spec.hostAliases`. This module finds such writes and, where the written text is literal,
//! extracts the hosts entries so the caller can suggest the equivalent `hostAliases`.
//!
//! It is pure and bounded: no I/O, no global state, no panics, and fixed caps on nesting depth,
//! total work and findings, because its input comes from whoever submits a Pod. It reports
//! findings only; it never decides admission and never guesses a value it cannot read from the
//! text (a path or entry behind `$VAR` or `$(...)` is not reported).
//!
//! Scripts are parsed with `brush-parser` (MIT). Scripts that are too large, nested too deeply
//! for its recursive parser, or that do not parse go through a small quote- and heredoc-aware
//! lexer of our own that never recurses, so an obvious `>> /etc/hosts` is still found in a
//! script with a syntax error. Both paths feed the same command model (`Scan::run_simple`).
//!
//! Choices worth knowing:
//! - In exec form (no shell) `>>` is an ordinary argument, so `["echo", "x", ">>", "/etc/hosts"]`
//!   is not a write.
//! - With only `args` (unknown ENTRYPOINT) we analyse just the script after a `-c` argument; an
//!   entrypoint that runs its arguments (`exec "$@"`) is not assumed.
//! - `echo` is read as interpreting `\n`, as dash (Debian's `sh`) does and bash does not; for
//!   suggesting entries that is the useful reading.
//!
//! Known gaps: writes through a variable (`>> $HOSTS`, by design), relative paths after
//! `cd /etc`, globs (`/etc/host?`), `eval`, scripts read from files (`sh /x.sh`), other
//! interpreters (`python -c`, `ed`, `vi`), `cp -r` of a tree containing `etc/hosts`, `xargs`,
//! and scripts nested deeper than [`MAX_DEPTH`] levels of `sh -c`/`$(...)`.

mod fallback;
mod lexer;
mod paths;
mod programs;
#[cfg(test)]
mod tests;
mod walk;
mod words;

use std::net::IpAddr;
use std::rc::Rc;

use lexer::*;
use paths::*;
use programs::*;
use walk::*;
use words::*;

/// One write to /etc/hosts found in a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostsWrite {
    /// How the file is written, short and human, e.g. "appends with `>>`", "`tee -a` appends",
    /// "`sed -i` edits in place", "`cp` overwrites", "`mount --bind` covers", "heredoc redirected into it".
    pub how: String,
    /// The entries written when they are literal text (echo/printf/heredoc/here-string), one per hosts line
    /// with an IP and at least one hostname; empty when unknown (e.g. `cp /tmp/x /etc/hosts`, `sed -i`).
    pub entries: Vec<HostEntry>,
}

/// One line of a hosts file: an address and the names that resolve to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    /// The address as written (IPv4 or IPv6).
    pub ip: String,
    /// The names on the line, in order.
    pub hostnames: Vec<String>,
}

/// How many scripts deep (`sh -c` inside `sh -c`, `$(...)`) we follow. Real commands nest two or
/// three levels; the cap keeps adversarial input from costing stack or time.
pub const MAX_DEPTH: usize = 8;

/// Total bytes of script text we are willing to look at for one call, across all nesting levels.
const WORK_BUDGET: usize = 8 << 20;

/// Scripts larger than this skip `brush-parser` (about 1 ms per 10 KB in release, 200 ms per
/// MB) and go straight to the linear lexer, so a 1 MB script costs tens of milliseconds.
const PARSER_MAX_BYTES: usize = 32 << 10;

/// `brush-parser`'s tokenizer and PEG parser recurse once per nesting level; on a 2 MiB thread
/// stack (tokio's default) a debug build overflows at about 200 levels of `$(` or `{`, and an
/// overflow aborts the whole webhook. Deeper scripts go to the iterative lexer instead; the
/// margin is checked by a test that runs this depth under [`MAX_DEPTH`] shells on 2 MiB.
const PARSER_MAX_NESTING: usize = 16;

/// Text flowing through a pipeline. Shared, so `cat | tee | cat ...` passes it on without
/// copying it once per stage.
type Text = Rc<str>;

/// At most this many findings are reported; a Pod with more is denied anyway, and the cap bounds
/// the work spent parsing written text.
const MAX_FINDINGS: usize = 64;

/// Marks text we cannot know (a parameter or command substitution) inside an expanded word, so
/// that a path or hosts line containing it never matches or yields an entry.
const UNKNOWN: char = '\u{0}';

/// `argv` is what the container runs: `command` followed by `args` (or a hook/probe `exec.command`).
/// `known_program` is false when only `args` were given (the program is the image's ENTRYPOINT, unknown):
/// then treat argv as arguments of an unknown program, but still analyse a script that follows a `-c` argument.
pub fn find_hosts_writes(argv: &[String], known_program: bool) -> Vec<HostsWrite> {
    find_with(argv, known_program, true)
}

/// [`find_hosts_writes`], optionally without `brush-parser` so tests can hold the fallback to
/// the same table.
fn find_with(argv: &[String], known_program: bool, use_parser: bool) -> Vec<HostsWrite> {
    let mut scan = Scan {
        found: Vec::new(),
        budget: WORK_BUDGET,
        use_parser,
    };
    if known_program {
        scan.exec(argv, None, 0);
    } else {
        // The ENTRYPOINT is unknown, but `["-c", "script"]` only makes sense for a shell.
        let mut iter = argv.iter();
        while let Some(arg) = iter.next() {
            if is_shell_c_flag(arg) {
                if let Some(script) = iter.next() {
                    scan.script(script, 1);
                }
                break;
            }
        }
    }
    scan.found
}

/// State of one call: findings so far and the work left.
struct Scan {
    found: Vec<HostsWrite>,
    budget: usize,
    use_parser: bool,
}

/// A simple command in a form both parsers produce: raw (still quoted) words and redirections.
#[derive(Debug, Default)]
struct Cmd {
    words: Vec<String>,
    redirs: Vec<Redir>,
    /// Words that are only scanned for command substitutions (assignments, loop lists).
    other_words: Vec<String>,
    /// For a group closed by this command (`} >> f` in the fallback): what the group printed.
    group_out: Option<String>,
}

#[derive(Debug)]
struct Redir {
    fd: Option<i32>,
    op: ROp,
    /// Raw target word; for a heredoc, its body.
    target: String,
    /// For a heredoc: whether the body undergoes expansion (unquoted delimiter).
    expand: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ROp {
    Out,
    Append,
    Clobber,
    OutErr,
    OutErrAppend,
    ReadWrite,
    HereDoc,
    HereString,
    Other,
}

impl ROp {
    /// The operator as the user wrote it, for messages.
    fn symbol(self, fd: Option<i32>) -> String {
        let base = match self {
            ROp::Out => ">",
            ROp::Append => ">>",
            ROp::Clobber => ">|",
            ROp::OutErr => "&>",
            ROp::OutErrAppend => "&>>",
            ROp::ReadWrite => "<>",
            ROp::HereDoc => "<<",
            ROp::HereString => "<<<",
            ROp::Other => "",
        };
        match fd {
            Some(n) if !matches!(self, ROp::OutErr | ROp::OutErrAppend) => format!("{n}{base}"),
            _ => base.to_string(),
        }
    }

    /// Whether this redirection opens its target for writing.
    fn writes(self) -> bool {
        matches!(
            self,
            ROp::Out
                | ROp::Append
                | ROp::Clobber
                | ROp::OutErr
                | ROp::OutErrAppend
                | ROp::ReadWrite
        )
    }

    fn appends(self) -> bool {
        matches!(self, ROp::Append | ROp::OutErrAppend)
    }
}

/// What standard input of a command holds, when known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StdinKind {
    HereDoc,
    Other,
}

impl Scan {
    /// Analyses one shell script at nesting `depth`.
    fn script(&mut self, text: &str, depth: usize) {
        if depth > MAX_DEPTH || text.len() > self.budget || self.found.len() >= MAX_FINDINGS {
            return;
        }
        self.budget -= text.len();
        // Cheap pre-filter: a script that never names the file cannot write it by literal path.
        if !mentions_hosts(text) {
            return;
        }
        let lexed = lex(text);
        if self.use_parser
            && text.len() <= PARSER_MAX_BYTES
            && lexed.max_nesting <= PARSER_MAX_NESTING
            && let Some(program) = parse_with_brush(text)
        {
            for list in &program.complete_commands {
                self.walk_list(list, depth);
            }
            return;
        }
        self.fallback(text, &lexed.tokens, depth);
    }
}

impl Scan {
    // ----- shared command semantics -----

    /// Runs the analysis of one simple command given its upstream pipe text; returns what it
    /// prints to the next pipeline stage, when known.
    fn run_simple(&mut self, cmd: &Cmd, piped: Option<&Text>, depth: usize) -> Option<Text> {
        for word in &cmd.other_words {
            self.expand_and_follow(word, depth);
        }
        let argv: Vec<String> = cmd
            .words
            .iter()
            .map(|w| self.expand_and_follow(w, depth))
            .collect();
        let mut stdin: Option<(Text, StdinKind)> = piped.map(|s| (s.clone(), StdinKind::Other));
        for r in &cmd.redirs {
            if !matches!(r.fd, None | Some(0)) {
                continue;
            }
            match r.op {
                ROp::HereDoc => {
                    let body = if r.expand {
                        self.expand_heredoc_and_follow(&r.target, depth)
                    } else {
                        r.target.clone()
                    };
                    stdin = Some((body.into(), StdinKind::HereDoc));
                }
                ROp::HereString => {
                    let mut text = self.expand_and_follow(&r.target, depth);
                    text.push('\n');
                    stdin = Some((text.into(), StdinKind::Other));
                }
                _ => {}
            }
        }
        let stdin_text = stdin.as_ref().map(|(s, _)| s);
        let out = if argv.is_empty() {
            cmd.group_out.as_deref().map(Text::from)
        } else {
            self.exec(&argv, stdin_text, depth)
        };
        // `cat <<EOF > /etc/hosts`: say where the text came from.
        let heredoc_cat = stdin
            .as_ref()
            .is_some_and(|(_, k)| *k == StdinKind::HereDoc)
            && argv.first().is_some_and(|p| basename(p) == "cat");
        let from = heredoc_cat.then_some("heredoc");
        self.apply_redirects(cmd, out.as_ref(), from, depth)
    }

    /// Reports redirections of `cmd` into /etc/hosts; returns the stdout left for a pipe.
    fn apply_redirects(
        &mut self,
        cmd: &Cmd,
        out: Option<&Text>,
        from: Option<&str>,
        depth: usize,
    ) -> Option<Text> {
        let mut stdout_taken = false;
        for r in &cmd.redirs {
            if !r.op.writes() {
                continue;
            }
            let carries_stdout = match r.op {
                ROp::OutErr | ROp::OutErrAppend => true,
                ROp::ReadWrite => false,
                _ => matches!(r.fd, None | Some(1)),
            };
            stdout_taken |= carries_stdout;
            let target = self.expand_and_follow(&r.target, depth);
            if !is_etc_hosts(&target) {
                continue;
            }
            let symbol = r.op.symbol(r.fd);
            let how = match (from, r.op) {
                (_, ROp::ReadWrite) => format!("opens it read-write with `{symbol}`"),
                (Some(src), _) => format!("{src} redirected into it with `{symbol}`"),
                (None, op) if op.appends() => format!("appends with `{symbol}`"),
                (None, _) => format!("overwrites with `{symbol}`"),
            };
            let entries = if carries_stdout {
                out.map(|t| parse_hosts_text(t)).unwrap_or_default()
            } else {
                Vec::new()
            };
            if self.found.len() < MAX_FINDINGS {
                self.found.push(HostsWrite { how, entries });
            }
        }
        if stdout_taken { None } else { out.cloned() }
    }

    fn push(&mut self, how: &str, entries: Vec<HostEntry>) {
        if self.found.len() >= MAX_FINDINGS {
            return;
        }
        self.found.push(HostsWrite {
            how: how.to_string(),
            entries,
        });
    }

    /// Expands a raw shell word to its literal text (with [`UNKNOWN`] where it cannot be known)
    /// and analyses any command substitution inside it.
    fn expand_and_follow(&mut self, raw: &str, depth: usize) -> String {
        let expanded = expand_word(raw, false);
        for sub in &expanded.substitutions {
            self.script(sub, depth + 1);
        }
        expanded.text
    }

    fn expand_heredoc_and_follow(&mut self, body: &str, depth: usize) -> String {
        let expanded = expand_word(body, true);
        for sub in &expanded.substitutions {
            self.script(sub, depth + 1);
        }
        expanded.text
    }
}

/// Most literal output we keep for one command or group: far more than any real hosts snippet,
/// small enough that copying it around stays cheap.
const MAX_OUTPUT: usize = 64 << 10;

fn push_bounded(to: &mut String, text: &str) {
    if to.len() < MAX_OUTPUT {
        to.push_str(text);
    }
}

/// Hosts lines in `text`: an IP address then at least one name; `#` starts a comment.
fn parse_hosts_text(text: &str) -> Vec<HostEntry> {
    let mut entries = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        if line.contains(UNKNOWN) {
            continue;
        }
        let mut fields = line.split_whitespace();
        let Some(ip) = fields.next() else { continue };
        if ip.parse::<IpAddr>().is_err() {
            continue;
        }
        let hostnames: Vec<String> = fields.map(str::to_string).collect();
        if !hostnames.is_empty() {
            entries.push(HostEntry {
                ip: ip.to_string(),
                hostnames,
            });
        }
    }
    entries
}
