//! Shell analysis: finds writes to `/etc/hosts` in container commands and shell scripts, and
//! says so when it cannot decide.
//!
//! The kubelet owns `/etc/hosts` in every Pod and rewrites it, so an edit made from a container's
//! `command`/`args`, a lifecycle hook or a probe is lost or fights the kubelet; the durable way is
//! `spec.hostAliases`. This module finds such writes and, where the written text is literal,
//! extracts the hosts entries so the caller can suggest the equivalent `hostAliases`.
//!
//! It sees what the kubelet and the shell see: the kubelet's `$(VAR)` expansion
//! ([`kubelet`]), the shell's options (`bash -euo pipefail -c`), quoting, escapes, `$'...'`,
//! brace expansion and globs ([`words`]), variables assigned in the script and the working
//! directory (`cd`, `workingDir`), `/proc/<pid>/root` and `..` aliases ([`paths`]), and the
//! wrappers, writers and interpreters in the tables of [`programs`]. Every command is first
//! read by our own linear lexer ([`lexer`], [`fallback`]); when that finds a write or something
//! it cannot decide, scripts that are small and shallow are parsed again with `brush-parser`
//! (MIT, [`walk`]) for the precise answer. Both feed one command model.
//!
//! What it cannot know it reports as undecided, with the reason: `eval`/`source` of text that
//! is not literal, generated text run by a shell, a write target that is not literal and could be
//! the file, text after an unterminated quote, and every limit reached. It never decides
//! admission; the rule turns writes and undecided findings into violations.
//!
//! Cost is bounded by construction. Every pass over text is linear and charged to a
//! [`Budget`] shared by every command of one review; nesting, findings, brace expansion,
//! printed text and words per command are capped. A limit that is reached is an undecided
//! finding, never a silent skip. It is pure: no I/O, no panics; its one piece of state, a
//! bounded per-thread memo of results ([`memo`]), changes how long an analysis takes, never
//! what it finds.
//!
//! Choices worth knowing:
//! - In exec form (no shell) `>>` is an ordinary argument, so `["echo", "x", ">>", "/etc/hosts"]`
//!   is not a write.
//! - With only `args` (unknown ENTRYPOINT) the args are read as options of a shell (`-c
//!   script`, `-cx script`, `-euo pipefail -c script`), and as a command that an entrypoint such
//!   as `tini --` or `docker-entrypoint.sh` runs: what that command writes is undecided, since
//!   the entrypoint may not run it.
//! - `echo` is read as interpreting `\n`, as dash (Debian's `sh`) does and bash does not; for
//!   suggesting entries that is the useful reading.
//! - Variables assigned inside a branch, loop, subshell or `&&`/`||` chain are unknown after it
//!   unless every path gives the same value; a nested shell sees the outer variables.
//!
//! Known gaps: scripts and programs read from files of the image (`sh /x.sh`, `python app.py`),
//! symlinks created in the image, files reached through a `..` inside a value we cannot know
//! that does not end in `hosts`, `IFS` changes, and aliases used after they are defined (their
//! text is analysed where it is defined).

mod fallback;
pub mod kubelet;
mod lexer;
mod memo;
mod paths;
mod programs;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_model;
mod walk;
mod words;

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::rc::Rc;

pub use kubelet::Start;
use lexer::{Lexer, Tok};
use memo::{Reads, Seen};
use paths::Reach;
use words::{Env, Expanded, Mode, Value};

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

/// What the analysis of one command found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Analysis {
    /// Writes to the hosts file.
    pub writes: Vec<HostsWrite>,
    /// Why the analysis could not decide whether the command writes it (each reason once).
    pub undecided: Vec<String>,
}

/// The work one review may spend on shell analysis, shared by all its commands.
///
/// One unit is about one byte of text looked at or produced. When the budget runs out every
/// command still to be analysed is undecided, so a Pod cannot hide a write behind work.
#[derive(Debug, Clone)]
pub struct Budget {
    left: u64,
    used: u64,
    brush_left: usize,
    /// The work limit was met: what was analysed since this was last cleared might come out
    /// differently with another budget.
    limited: bool,
    /// Units the lexer's first pass ([`analyse`]) may spend over the review when it is not
    /// the answer: the work of a review is at most twice its budget.
    lexer_left: u64,
    /// In the lexer's pass: a script was small and shallow enough for the parser.
    would_parse: bool,
    /// An inline budget ([`Budget::inline`]): smaller than the full one.
    inline: bool,
    /// An inline budget fell short (a charge failed, or a script the parser would read did
    /// not fit): the analysis may come out differently with the full budget. Never cleared.
    cut: bool,
    /// In the lexer's pass of an inline budget: a script did not fit the parser's allowance.
    parse_short: bool,
    /// Bytes the kubelet's `$(VAR)` expansion may still add to this review's commands and
    /// values ([`Start::within`]): as many as the work units, since the analysis charges a
    /// unit for every byte of a command anyway.
    kubelet_left: usize,
}

/// Units of work one review may spend: far above any honest Pod's commands (a script costs
/// about two to four units a byte), and small enough that the worst case measured in
/// BENCHMARKS.md stays far under a second. A 7 MiB script reaches it and is undecided.
pub const WORK_BUDGET: u64 = 16 << 20;

/// Bytes of script that may go through `brush-parser` in one review (about 100 ns a byte in
/// release); the rest goes through the linear lexer.
const BRUSH_BUDGET: usize = 256 << 10;

/// Units an inline review may spend per check ([`Budget::inline`]), parser included: a few
/// hundred µs of analysis at most (BENCHMARKS.md, "Inline evaluation"), far above a typical
/// Pod's commands (a few thousand units).
pub const INLINE_WORK_BUDGET: u64 = 32 << 10;

/// Bytes of script an inline review may give `brush-parser` per check.
const INLINE_BRUSH_BUDGET: usize = 2 << 10;

impl Default for Budget {
    fn default() -> Self {
        Budget::new(WORK_BUDGET)
    }
}

impl Budget {
    /// A budget of `units`.
    pub fn new(units: u64) -> Self {
        Budget {
            left: units,
            used: 0,
            brush_left: BRUSH_BUDGET,
            limited: false,
            lexer_left: units,
            would_parse: false,
            inline: false,
            cut: false,
            parse_short: false,
            kubelet_left: usize::try_from(units).unwrap_or(usize::MAX),
        }
    }

    /// The budget of a review evaluated inline, on one of the server's async workers
    /// ([`INLINE_WORK_BUDGET`] units, [`INLINE_BRUSH_BUDGET`] bytes for the parser), so that
    /// its cost stays small whatever the input. Where it falls short of what the full budget
    /// would allow, [`Budget::cut`] says so and the answer must be computed again with the
    /// full budget: an analysis that was not cut is the one the full budget gives (every
    /// charge it made fits the larger budget too, and the memo and the parser see the same).
    pub fn inline() -> Self {
        Budget {
            brush_left: INLINE_BRUSH_BUDGET,
            inline: true,
            ..Budget::new(INLINE_WORK_BUDGET)
        }
    }

    /// True when this inline budget fell short (see [`Budget::inline`]).
    pub fn cut(&self) -> bool {
        self.cut
    }

    /// Takes back from `start` ([`Start::within`]) what its expansion added. Where a value
    /// did not fit an inline budget the full one might have held it: the check is cut.
    pub fn settle(&mut self, start: &Start) {
        let (left, short) = start.growth();
        self.kubelet_left = left;
        self.cut |= short && self.inline;
    }

    /// Takes over `other`'s shortfall (a clone spent on a side analysis).
    pub fn absorb_cut(&mut self, other: &Budget) {
        self.cut |= other.cut;
    }

    /// Units spent so far.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// True once the budget has run out.
    pub fn exhausted(&self) -> bool {
        self.left == 0
    }

    /// Spends `units`; false (and empty) when they were not all there.
    fn charge(&mut self, units: usize) -> bool {
        let units = units as u64;
        self.used = self.used.saturating_add(units);
        if units > self.left {
            self.left = 0;
            self.limited = true;
            self.cut |= self.inline;
            return false;
        }
        self.left -= units;
        if self.left == 0 {
            self.limited = true;
            self.cut |= self.inline;
        }
        true
    }
}

/// How many scripts deep (`sh -c` inside `sh -c`, `$(...)`) we follow. Real commands nest two or
/// three levels; the cap keeps adversarial input from costing stack or time.
pub const MAX_DEPTH: usize = 8;

/// Units charged for each simple command and each word on top of their text, so that work
/// that is not proportional to bytes (tables, allocations) is counted too.
const COMMAND_COST: usize = 64;
/// Units per byte parsed by brush-parser, which is slower per byte than the lexer.
const BRUSH_COST: usize = 8;
const WORD_COST: usize = 8;

/// Scripts larger than this skip `brush-parser` and go straight to the linear lexer.
const PARSER_MAX_BYTES: usize = 32 << 10;

/// `brush-parser`'s tokenizer and PEG parser recurse once per nesting level; on a 2 MiB thread
/// stack (tokio's default) a debug build overflows at about 200 levels of `$(` or `{`, and an
/// overflow aborts the whole webhook. Deeper scripts go to the iterative lexer instead; the
/// margin is checked by a test that runs this depth under [`MAX_DEPTH`] shells on 2 MiB.
const PARSER_MAX_NESTING: usize = 16;

/// Text flowing through a pipeline. Shared, so `cat | tee | cat ...` passes it on without
/// copying it once per stage.
type Text = Rc<str>;

/// At most this many writes are reported for one command; more deny no harder.
const MAX_FINDINGS: usize = 64;

/// At most this many undecided reasons are kept for one command.
const MAX_UNDECIDED: usize = 8;

/// At most this many hosts entries are extracted for one command's suggestion.
const MAX_ENTRIES: usize = 256;

/// Words of one simple command; a longer command is undecided.
const MAX_WORDS: usize = 16 << 10;

/// Longest value a variable keeps; longer values are unknown.
const MAX_VALUE: usize = 64 << 10;

/// Marks text we cannot know (a parameter or command substitution) inside an expanded word, so
/// that a path or hosts line containing it never matches or yields an entry.
const UNKNOWN: char = '\u{0}';
const UNKNOWN_BYTE: u8 = 0;
/// An unquoted `*` in an expanded word.
const STAR: u8 = 1;
/// An unquoted `?` or `[...]` in an expanded word.
const ONE: u8 = 2;

/// Most literal output we keep for one command or group: far more than any real hosts snippet,
/// small enough that copying it around stays cheap.
const MAX_OUTPUT: usize = 64 << 10;

/// Analyses what a container runs. `argv` is `command` followed by `args` (or a hook/probe
/// `exec.command`), after the kubelet's `$(VAR)` expansion; `known_program` is false when only
/// `args` were given (the program is the image's ENTRYPOINT).
///
/// The linear lexer ([`fallback`]) reads the command first; only when it finds a write or
/// something it cannot decide does `brush-parser` read it again, for a precise answer. This
/// gives up nothing: the lexer's walk is held to every table of writes that the parser's
/// is, and it alone reads every script over [`PARSER_MAX_BYTES`] or nested deeper than
/// [`PARSER_MAX_NESTING`], so anything it missed could be hidden from the parser too by
/// padding. A command analysed before on this thread, with the same start values read, is
/// answered from the memo ([`memo`]) without a copy of `argv`.
pub fn analyse<S: AsRef<str>>(
    argv: &[S],
    known_program: bool,
    start: &Start,
    budget: &mut Budget,
) -> Analysis {
    let hash = match memo::get(argv, known_program, start) {
        // Strictly less: an analysis that spends the budget to the last unit reports the limit.
        Ok((found, units)) if units < budget.left => {
            // What the analysis would spend again, so that reuse changes nothing but time.
            budget.left -= units;
            budget.used = budget.used.saturating_add(units);
            return found;
        }
        Ok(_) => None,
        Err(hash) => Some(hash),
    };
    // Not in the memo: the analysis reads (and the memo keeps) its own copy.
    let owned: Vec<String> = argv.iter().map(|a| a.as_ref().to_owned()).collect();
    let argv = owned.as_slice();
    let (left, used, limited) = (budget.left, budget.used, budget.limited);
    budget.limited = false;
    let reads = Reads::default();
    // The lexer's pass spends its own allowance; when it is the answer, the review's budget
    // is charged what it spent, as for any analysis.
    let cap = left.min(budget.lexer_left);
    budget.left = cap;
    budget.would_parse = false;
    budget.parse_short = false;
    let mut found = analyse_reading(argv, known_program, start, budget, false, &reads);
    let spent = cap - budget.left;
    budget.lexer_left -= spent;
    let clean = found.writes.is_empty() && found.undecided.is_empty() && !budget.limited;
    // `would_parse` below may differ from the full budget's: unless the lexer's answer is
    // clean (and so final whatever the parser's allowance), the answer may differ.
    budget.cut |= budget.parse_short && !clean;
    // No script the parser would take, and the whole budget: the parser's pass is this one.
    let same = !budget.would_parse && cap == left;
    if clean || same {
        budget.left = left - spent;
    } else {
        // Read it again with the parser, on the budget as it was before the lexer's pass.
        budget.left = left;
        budget.used = used;
        budget.limited = false;
        found = analyse_reading(argv, known_program, start, budget, true, &reads);
    }
    // Nor an answer an inline budget may have changed.
    if let Some(hash) = hash
        && !budget.limited
        && !budget.cut
    {
        memo::put(
            hash,
            owned,
            known_program,
            reads,
            left - budget.left,
            &found,
        );
    }
    budget.limited |= limited;
    found
}

/// The writes in `argv` with an empty environment and a fresh budget (tests, benches, fuzzing).
pub fn find_hosts_writes(argv: &[String], known_program: bool) -> Vec<HostsWrite> {
    analyse(
        argv,
        known_program,
        &Start::default(),
        &mut Budget::default(),
    )
    .writes
}

/// [`analyse`], optionally without `brush-parser` so tests can hold the fallback to the same
/// tables.
#[cfg(test)]
fn analyse_with(
    argv: &[String],
    known_program: bool,
    start: &Start,
    budget: &mut Budget,
    use_parser: bool,
) -> Analysis {
    analyse_reading(
        argv,
        known_program,
        start,
        budget,
        use_parser,
        &Reads::default(),
    )
}

/// [`analyse_with`], recording the start values read in `reads`.
fn analyse_reading(
    argv: &[String],
    known_program: bool,
    start: &Start,
    budget: &mut Budget,
    use_parser: bool,
    reads: &Reads,
) -> Analysis {
    if budget.exhausted() {
        budget.limited = true;
    }
    let mut scan = Scan {
        found: Vec::new(),
        undecided: Vec::new(),
        entries: 0,
        budget,
        use_parser,
        start,
        vars: HashMap::new(),
        args: None,
        cond: 0,
        journal: Vec::new(),
        reads,
    };
    let size: usize = argv.iter().map(|a| a.len() + 1).sum();
    if scan.budget.exhausted() || !scan.charge(size) {
        scan.limit("the review's analysis work limit was reached before this command");
    } else if known_program {
        scan.exec(argv, &Stdin::None, 0);
    } else {
        // The ENTRYPOINT is unknown: a shell given these args runs the script after `-c`; an
        // entrypoint that runs its arguments (`tini --`, `exec "$@"`) runs them as a command.
        if let programs::ShellRun::Script { script, params } = programs::shell_args(argv) {
            scan.shell_script(script, params, 0);
        }
        // Whether the entrypoint runs them is not known: what they would write is undecided.
        let before = scan.found.len();
        scan.exec(argv, &Stdin::None, 0);
        let would: Vec<HostsWrite> = scan.found.drain(before..).collect();
        for w in would {
            scan.undecided(format!(
                "if the image's entrypoint runs its arguments (`tini --`, `exec \"$@\"`), they write the hosts file ({})",
                w.how
            ));
        }
    }
    Analysis {
        writes: scan.found,
        undecided: scan.undecided,
    }
}

/// State of one analysis: findings, the shared budget, and what the script has set so far.
struct Scan<'a> {
    found: Vec<HostsWrite>,
    undecided: Vec<String>,
    entries: usize,
    budget: &'a mut Budget,
    use_parser: bool,
    start: &'a Start<'a>,
    /// Variables the script assigned (`PWD` is the working directory).
    vars: HashMap<String, Value>,
    /// Positional parameters of the current shell (`$0` first), when known.
    args: Option<Vec<Value>>,
    /// Depth of conditional context: branches, loops, subshells, `&&`/`||`.
    cond: usize,
    /// Values before assignments made in conditional context, joined when it ends.
    journal: Vec<(String, Value)>,
    /// Values read from `start`, for [`memo`].
    reads: &'a Reads,
}

/// What standard input of a command holds.
#[derive(Debug, Clone)]
enum Stdin {
    /// Not redirected or piped: the container's own, usually empty.
    None,
    /// Literal text (a heredoc, a here-string, the output of `echo`).
    Known(Text),
    /// Piped from something whose output we do not know.
    Unknown,
}

impl Stdin {
    fn text(&self) -> Option<&Text> {
        match self {
            Stdin::Known(t) => Some(t),
            _ => None,
        }
    }
}

struct Lookup<'x> {
    vars: &'x HashMap<String, Value>,
    args: Option<&'x [Value]>,
    start: &'x Start<'x>,
    reads: &'x Reads,
}

impl Env for Lookup<'_> {
    fn var(&self, name: &str) -> Value {
        if let Some(v) = self.vars.get(name) {
            return v.clone();
        }
        if name.bytes().all(|c| c.is_ascii_digit()) {
            let n: usize = name.parse().unwrap_or(usize::MAX);
            return match self.args {
                Some(args) => args.get(n).cloned().unwrap_or(Value::Unset),
                None => Value::Unknown,
            };
        }
        let value = memo::start_var(self.start, name);
        let mut reads = self.reads.borrow_mut();
        if !reads.contains_key(name) {
            reads.insert(name.into(), Seen::from(&value));
        }
        value
    }

    fn args(&self) -> Option<Vec<Value>> {
        self.args.map(|a| a.get(1..).unwrap_or_default().to_vec())
    }
}

/// A simple command in a form both parsers produce: raw (still quoted) words and redirections,
/// borrowed from the script (or the parser's tree) they were read from.
#[derive(Debug, Default)]
struct Cmd<'t> {
    words: Vec<&'t str>,
    redirs: Vec<Redir<'t>>,
    /// `NAME=value` words before the command name.
    assigns: Vec<&'t str>,
    /// For a group closed by this command (`} >> f` in the fallback): what the group printed.
    group_out: Option<String>,
}

impl Cmd<'_> {
    /// Empties the command, keeping its buffers for the next one.
    fn clear(&mut self) {
        self.words.clear();
        self.redirs.clear();
        self.assigns.clear();
        self.group_out = None;
    }
}

#[derive(Debug)]
struct Redir<'t> {
    fd: Option<i32>,
    op: ROp,
    /// Raw target word; for a heredoc, its body.
    target: Cow<'t, str>,
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
    /// `<` from a file: standard input we cannot know.
    Read,
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
            ROp::Read => "<",
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

impl Scan<'_> {
    fn env(&self) -> Lookup<'_> {
        Lookup {
            vars: &self.vars,
            args: self.args.as_deref(),
            start: self.start,
            reads: self.reads,
        }
    }

    fn charge(&mut self, units: usize) -> bool {
        if self.budget.charge(units) {
            return true;
        }
        self.limit("the review's analysis work limit was reached");
        false
    }

    /// Records why the analysis cannot decide (each reason once, a few at most).
    fn undecided(&mut self, reason: String) {
        if self.undecided.len() < MAX_UNDECIDED && !self.undecided.contains(&reason) {
            self.undecided.push(reason);
        }
    }

    fn limit(&mut self, what: &str) {
        self.undecided(what.to_string());
    }

    /// The working directory, as far as known.
    fn cwd(&self) -> Value {
        self.env().var("PWD")
    }

    fn reach(&self, path: &str) -> Reach {
        // An absolute path (other than `/proc/self/cwd/...`) does not depend on the working
        // directory, so it is not read: a stored analysis then does not depend on it either.
        if path.starts_with('/') && !path.starts_with("/proc/") {
            return paths::reach(path, &Value::Unknown);
        }
        paths::reach(path, &self.cwd())
    }

    /// A file the command writes: a finding, an undecided finding, or nothing.
    fn target(&mut self, path: &str, how: &str, entries: impl FnOnce() -> Vec<HostEntry>) {
        match self.reach(path) {
            // Past the findings cap, the written text is not parsed again for each write.
            Reach::Hosts if self.found.len() < MAX_FINDINGS => self.push(how, entries()),
            Reach::Hosts => {}
            Reach::Maybe => self.undecided(format!(
                "{how} `{}`, a path it cannot resolve",
                words::display(path)
            )),
            Reach::No => {}
        }
    }

    fn push(&mut self, how: &str, mut entries: Vec<HostEntry>) {
        if self.found.len() >= MAX_FINDINGS {
            return;
        }
        entries.truncate(MAX_ENTRIES.saturating_sub(self.entries));
        self.entries += entries.len();
        self.found.push(HostsWrite {
            how: how.to_string(),
            entries,
        });
    }

    // ----- variables -----

    fn assign(&mut self, name: &str, value: Value) {
        let value = match value {
            Value::Known(s) if s.len() > MAX_VALUE => Value::Unknown,
            v => v,
        };
        if self.cond > 0 {
            let old = self.env().var(name);
            if old != value {
                self.journal.push((name.to_string(), old));
            }
        }
        self.vars.insert(name.to_string(), value);
    }

    /// Enters conditional context; pass the mark to [`Scan::leave`].
    fn enter(&mut self) -> usize {
        self.cond += 1;
        self.journal.len()
    }

    /// Leaves conditional context: a variable assigned in it keeps its value only if that
    /// equals the value before.
    fn leave(&mut self, mark: usize) {
        self.cond = self.cond.saturating_sub(1);
        let changed: Vec<(String, Value)> = self.journal.drain(mark..).collect();
        for (name, old) in changed.into_iter().rev() {
            let current = self.env().var(&name);
            if current != old {
                self.vars.insert(name.clone(), Value::Unknown);
                if self.cond > 0 {
                    self.journal.push((name, old));
                }
            }
        }
    }

    // ----- scripts -----

    /// Analyses one shell script at nesting `depth`.
    fn script(&mut self, text: &str, depth: usize) {
        if depth > MAX_DEPTH {
            self.undecided(format!(
                "scripts are nested more than {MAX_DEPTH} levels deep (`sh -c`, `$(...)`)"
            ));
            return;
        }
        if !self.charge(text.len()) {
            return;
        }
        if text.contains(UNKNOWN) {
            self.undecided(
                "runs script text that is not literal (a variable or command output)".to_string(),
            );
        }
        if self.budget.inline
            && text.len() <= PARSER_MAX_BYTES
            && text.len() > self.budget.brush_left
        {
            // The full budget might give this script to the parser: in the parser's pass that
            // changes the answer; in the lexer's pass only when its answer is not the final one.
            if self.use_parser {
                self.budget.cut = true;
            } else {
                self.budget.parse_short = true;
            }
        }
        if !self.use_parser
            && text.len() <= PARSER_MAX_BYTES
            && text.len() <= self.budget.brush_left
        {
            self.budget.would_parse = true;
        }
        if self.use_parser && text.len() <= PARSER_MAX_BYTES && text.len() <= self.budget.brush_left
        {
            let mut lexer = Lexer::new(text);
            let mut unterminated = false;
            for tok in lexer.by_ref() {
                if tok == Tok::Unterminated {
                    unterminated = true;
                }
            }
            if lexer.max_nesting() <= PARSER_MAX_NESTING
                && !unterminated
                && self.charge(BRUSH_COST * text.len())
            {
                self.budget.brush_left -= text.len();
                if let Some(program) = walk::parse_with_brush(text) {
                    for list in &program.complete_commands {
                        self.walk_list(list, depth);
                    }
                    return;
                }
            }
        }
        self.fallback(text, depth);
    }

    /// A shell given `script` with `-c` and positional parameters `params` (`$0` first).
    fn shell_script(&mut self, script: &str, params: &[String], depth: usize) {
        let args: Vec<Value> = params
            .iter()
            .map(|p| {
                if p.contains(UNKNOWN) {
                    Value::Unknown
                } else {
                    Value::Known(p.as_str().into())
                }
            })
            .collect();
        let saved = self.args.replace(args);
        self.script(script, depth + 1);
        self.args = saved;
    }

    // ----- words -----

    /// Expands a raw word and analyses the command substitutions in it.
    fn expand(&mut self, raw: &str, mode: Mode, depth: usize) -> Expanded {
        // Most words are plain text: nothing to expand, one field.
        if mode != Mode::Heredoc && !raw.is_empty() && raw.bytes().all(words::is_plain) {
            if !self.charge(WORD_COST + raw.len()) {
                return Expanded {
                    fields: vec![UNKNOWN.to_string()],
                    ..Expanded::default()
                };
            }
            return Expanded {
                fields: vec![raw.to_string()],
                ..Expanded::default()
            };
        }
        let expanded = words::expand(raw, mode, &self.env());
        let produced: usize = expanded.fields.iter().map(String::len).sum();
        if !self.charge(WORD_COST + 2 * raw.len() + produced) {
            return Expanded {
                fields: vec![UNKNOWN.to_string()],
                ..Expanded::default()
            };
        }
        if expanded.too_deep {
            self.undecided(format!(
                "expansions in `{}` are nested deeper than the analysis follows",
                words::display(raw)
            ));
        }
        if expanded.too_large {
            self.undecided(format!(
                "brace expansion of `{}` is larger than the analysis follows",
                words::display(raw)
            ));
        }
        for sub in &expanded.substitutions {
            let mark = self.enter();
            self.script(sub, depth + 1);
            self.leave(mark);
        }
        expanded
    }

    /// A redirection target or other single-word use: the fields joined.
    fn expand_one(&mut self, raw: &str, depth: usize) -> String {
        self.expand(raw, Mode::Word, depth).into_joined()
    }

    /// Expands a command word onto `argv`: [`Scan::expand`]'s fields, without building them
    /// apart for a plain word (the same units charged, the same field).
    fn expand_word(&mut self, raw: &str, depth: usize, argv: &mut Vec<String>) {
        if !raw.is_empty() && raw.bytes().all(words::is_plain) {
            let field = if self.charge(WORD_COST + raw.len()) {
                raw.to_string()
            } else {
                UNKNOWN.to_string()
            };
            argv.push(field);
            return;
        }
        argv.extend(self.expand(raw, Mode::Word, depth).fields);
    }

    // ----- simple commands -----

    /// Runs the analysis of one simple command given its standard input; returns what it
    /// prints to the next pipeline stage, when known.
    fn run_simple(&mut self, cmd: &Cmd<'_>, piped: &Stdin, depth: usize) -> Option<Text> {
        if !self.charge(COMMAND_COST) {
            return None;
        }
        if cmd.words.len() > MAX_WORDS {
            self.undecided(format!("a command has more than {MAX_WORDS} words"));
            return None;
        }
        let mut assigned = Vec::new();
        for word in &cmd.assigns {
            let (name, raw) = word.split_once('=').unwrap_or((word, ""));
            let name = name.trim_end_matches('+');
            let value = self.expand(raw, Mode::Assign, depth).into_joined();
            assigned.push((name.to_string(), known_value(value)));
        }
        let mut argv: Vec<String> = Vec::with_capacity(cmd.words.len());
        for word in &cmd.words {
            self.expand_word(word, depth, &mut argv);
            if argv.len() > MAX_WORDS {
                self.undecided(format!("a command expands to more than {MAX_WORDS} words"));
                return None;
            }
        }
        if argv.is_empty() {
            for (name, value) in assigned {
                self.assign(&name, value);
            }
        }
        let mut stdin = piped.clone();
        let mut from_heredoc = false;
        for r in &cmd.redirs {
            if !matches!(r.fd, None | Some(0)) {
                continue;
            }
            match r.op {
                ROp::HereDoc => {
                    let body: Text = if r.expand {
                        self.expand(&r.target, Mode::Heredoc, depth)
                            .into_joined()
                            .into()
                    } else {
                        Text::from(r.target.as_ref())
                    };
                    stdin = Stdin::Known(body);
                    from_heredoc = true;
                }
                ROp::HereString => {
                    let mut text = self.expand(&r.target, Mode::Assign, depth).into_joined();
                    text.push('\n');
                    stdin = Stdin::Known(text.into());
                    from_heredoc = false;
                }
                ROp::Read => {
                    stdin = Stdin::Unknown;
                    from_heredoc = false;
                }
                _ => {}
            }
        }
        let out = if argv.is_empty() {
            cmd.group_out.as_deref().map(Text::from)
        } else {
            self.exec(&argv, &stdin, depth)
        };
        // `cat <<EOF > /etc/hosts`: say where the text came from.
        let heredoc_cat = from_heredoc && argv.first().is_some_and(|p| basename(p) == "cat");
        let from = heredoc_cat.then_some("heredoc");
        self.apply_redirects(cmd, out.as_ref(), from, depth)
    }

    /// Reports redirections of `cmd` into /etc/hosts; returns the stdout left for a pipe.
    fn apply_redirects(
        &mut self,
        cmd: &Cmd<'_>,
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
            let target = self.expand_one(&r.target, depth);
            let symbol = r.op.symbol(r.fd);
            let how = match (from, r.op) {
                (_, ROp::ReadWrite) => format!("opens it read-write with `{symbol}`"),
                (Some(src), _) => format!("{src} redirected into it with `{symbol}`"),
                (None, op) if op.appends() => format!("appends with `{symbol}`"),
                (None, _) => format!("overwrites with `{symbol}`"),
            };
            let entries = || {
                if carries_stdout {
                    out.map(|t| parse_hosts_text(t)).unwrap_or_default()
                } else {
                    Vec::new()
                }
            };
            match self.reach(&target) {
                Reach::Hosts if self.found.len() < MAX_FINDINGS => {
                    let e = entries();
                    self.push(&how, e);
                }
                Reach::Hosts => {}
                Reach::Maybe => self.undecided(format!(
                    "redirects with `{symbol}` to `{}`, a path it cannot resolve",
                    words::display(&target)
                )),
                Reach::No => {}
            }
        }
        if stdout_taken { None } else { out.cloned() }
    }
}

/// A value read from an assignment: unknown if too long. Adjacent unknown parts are one
/// unknown part (each stands for any text), so `X=$X$X` stops growing once `X` is unknown.
fn known_value(value: String) -> Value {
    const TWO_UNKNOWN: &str = "\u{0}\u{0}";
    const _: () = assert!(UNKNOWN == '\u{0}');
    let value = if value.contains(TWO_UNKNOWN) {
        let mut out = String::with_capacity(value.len());
        for c in value.chars() {
            if !(c == UNKNOWN && out.ends_with(UNKNOWN)) {
                out.push(c);
            }
        }
        out
    } else {
        value
    };
    if value.len() > MAX_VALUE {
        Value::Unknown
    } else {
        Value::Known(value.into())
    }
}

fn push_bounded(to: &mut String, text: &str) {
    if to.len() < MAX_OUTPUT {
        let room = MAX_OUTPUT - to.len();
        let mut cut = text.len().min(room);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        to.push_str(text.get(..cut).unwrap_or(""));
    }
}

fn basename(program: &str) -> &str {
    program.rsplit('/').next().unwrap_or(program)
}

/// Hosts lines in `text`: an IP address then at least one name; `#` starts a comment.
fn parse_hosts_text(text: &str) -> Vec<HostEntry> {
    let mut entries = Vec::new();
    for line in text.lines() {
        if entries.len() >= MAX_ENTRIES {
            break;
        }
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
