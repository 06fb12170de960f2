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

use std::net::IpAddr;
use std::rc::Rc;

use brush_parser::ast;

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

    // ----- brush AST walk -----

    /// Walks a list; returns the literal text its commands print to stdout (best effort).
    fn walk_list(&mut self, list: &ast::CompoundList, depth: usize) -> String {
        let mut out = String::new();
        for ast::CompoundListItem(and_or, _) in &list.0 {
            if let Some(first) = self.walk_pipeline(&and_or.first, depth) {
                push_bounded(&mut out, &first);
            }
            for next in &and_or.additional {
                let (ast::AndOr::And(p) | ast::AndOr::Or(p)) = next;
                if let Some(text) = self.walk_pipeline(p, depth) {
                    push_bounded(&mut out, &text);
                }
            }
        }
        out
    }

    fn walk_pipeline(&mut self, pipeline: &ast::Pipeline, depth: usize) -> Option<Text> {
        let mut stdin: Option<Text> = None;
        for command in &pipeline.seq {
            stdin = self.walk_command(command, stdin.as_ref(), depth);
        }
        stdin
    }

    fn walk_command(
        &mut self,
        command: &ast::Command,
        stdin: Option<&Text>,
        depth: usize,
    ) -> Option<Text> {
        match command {
            ast::Command::Simple(simple) => {
                let cmd = self.simple_from_ast(simple, depth);
                self.run_simple(&cmd, stdin, depth)
            }
            ast::Command::Compound(compound, redirects) => {
                let out = self.walk_compound(compound, depth);
                self.apply_compound_redirects(redirects.as_ref(), &out, depth)
            }
            ast::Command::Function(def) => {
                let out = self.walk_compound(&def.body.0, depth);
                self.apply_compound_redirects(def.body.1.as_ref(), &out, depth);
                None
            }
            ast::Command::ExtendedTest(..) => None,
        }
    }

    fn walk_compound(&mut self, compound: &ast::CompoundCommand, depth: usize) -> String {
        match compound {
            ast::CompoundCommand::Arithmetic(arith) => {
                // brush-parser 0.4 reads nested subshells `( ( cmd ) )` as `(( expr ))`. Real
                // arithmetic never parses as a write, so reading the text as a script again
                // recovers the commands at no risk. It is strictly shorter, so this ends.
                self.script(&arith.expr.value, depth);
                String::new()
            }
            ast::CompoundCommand::ArithmeticForClause(f) => self.walk_list(&f.body.list, depth),
            ast::CompoundCommand::BraceGroup(group) => self.walk_list(&group.list, depth),
            ast::CompoundCommand::Subshell(sub) => self.walk_list(&sub.list, depth),
            ast::CompoundCommand::ForClause(f) => {
                for word in f.values.iter().flatten() {
                    self.expand_and_follow(&word.value, depth);
                }
                self.walk_list(&f.body.list, depth)
            }
            ast::CompoundCommand::CaseClause(c) => {
                self.expand_and_follow(&c.value.value, depth);
                let mut out = String::new();
                for item in &c.cases {
                    if let Some(list) = &item.cmd {
                        let text = self.walk_list(list, depth);
                        push_bounded(&mut out, &text);
                    }
                }
                out
            }
            ast::CompoundCommand::IfClause(i) => {
                self.walk_list(&i.condition, depth);
                let mut out = self.walk_list(&i.then, depth);
                for clause in i.elses.iter().flatten() {
                    if let Some(cond) = &clause.condition {
                        self.walk_list(cond, depth);
                    }
                    let text = self.walk_list(&clause.body, depth);
                    push_bounded(&mut out, &text);
                }
                out
            }
            ast::CompoundCommand::WhileClause(w) | ast::CompoundCommand::UntilClause(w) => {
                self.walk_list(&w.0, depth);
                self.walk_list(&w.1.list, depth)
            }
            ast::CompoundCommand::Coprocess(c) => self
                .walk_command(&c.body, None, depth)
                .map(|t| t.to_string())
                .unwrap_or_default(),
        }
    }

    /// Redirections on a compound command (`{ ...; } >> /etc/hosts`, `done > /etc/hosts`).
    fn apply_compound_redirects(
        &mut self,
        redirects: Option<&ast::RedirectList>,
        out: &str,
        depth: usize,
    ) -> Option<Text> {
        let mut cmd = Cmd::default();
        for redirect in redirects.map(|r| r.0.as_slice()).unwrap_or_default() {
            self.redir_from_ast(redirect, &mut cmd, depth);
        }
        self.apply_redirects(&cmd, Some(&Text::from(out)), None, depth)
    }

    fn simple_from_ast(&mut self, simple: &ast::SimpleCommand, depth: usize) -> Cmd {
        let mut cmd = Cmd::default();
        let prefix = simple.prefix.as_ref().map(|p| p.0.as_slice());
        let suffix = simple.suffix.as_ref().map(|s| s.0.as_slice());
        for item in prefix.unwrap_or_default() {
            self.item_from_ast(item, &mut cmd, depth);
        }
        if let Some(word) = &simple.word_or_name {
            cmd.words.push(word.value.clone());
        }
        for item in suffix.unwrap_or_default() {
            self.item_from_ast(item, &mut cmd, depth);
        }
        cmd
    }

    fn item_from_ast(
        &mut self,
        item: &ast::CommandPrefixOrSuffixItem,
        cmd: &mut Cmd,
        depth: usize,
    ) {
        match item {
            ast::CommandPrefixOrSuffixItem::IoRedirect(r) => self.redir_from_ast(r, cmd, depth),
            ast::CommandPrefixOrSuffixItem::Word(w) => cmd.words.push(w.value.clone()),
            ast::CommandPrefixOrSuffixItem::AssignmentWord(_, w) => {
                // `VAR=x cmd`: the assignment is not an argument, but may hide a `$(...)`.
                if cmd.words.is_empty() {
                    cmd.other_words.push(w.value.clone());
                } else {
                    // `export X=1` style: an argument of the builtin.
                    cmd.words.push(w.value.clone());
                }
            }
            ast::CommandPrefixOrSuffixItem::ProcessSubstitution(_, sub) => {
                // `>(tee /etc/hosts)` runs a command like any other.
                self.walk_list(&sub.list, depth);
            }
        }
    }

    fn redir_from_ast(&mut self, redirect: &ast::IoRedirect, cmd: &mut Cmd, depth: usize) {
        let (fd, op, target, expand) = match redirect {
            ast::IoRedirect::File(fd, kind, target) => {
                let word = match target {
                    ast::IoFileRedirectTarget::Filename(w) => w.value.clone(),
                    ast::IoFileRedirectTarget::Duplicate(w) => {
                        // `>&file` is bash's `&>file`; `>&2` and `>&-` are fd duplications.
                        let unquoted = w.value.trim();
                        if matches!(kind, ast::IoFileRedirectKind::DuplicateOutput)
                            && fd.is_none()
                            && !unquoted.is_empty()
                            && !unquoted.bytes().all(|b| b.is_ascii_digit() || b == b'-')
                        {
                            cmd.redirs.push(Redir {
                                fd: None,
                                op: ROp::OutErr,
                                target: w.value.clone(),
                                expand: false,
                            });
                        }
                        return;
                    }
                    ast::IoFileRedirectTarget::Fd(_) => return,
                    ast::IoFileRedirectTarget::ProcessSubstitution(_, sub) => {
                        self.walk_list(&sub.list, depth);
                        return;
                    }
                };
                let op = match kind {
                    ast::IoFileRedirectKind::Write => ROp::Out,
                    ast::IoFileRedirectKind::Append => ROp::Append,
                    ast::IoFileRedirectKind::Clobber => ROp::Clobber,
                    ast::IoFileRedirectKind::ReadAndWrite => ROp::ReadWrite,
                    ast::IoFileRedirectKind::Read
                    | ast::IoFileRedirectKind::DuplicateInput
                    | ast::IoFileRedirectKind::DuplicateOutput => ROp::Other,
                };
                (*fd, op, word, false)
            }
            ast::IoRedirect::HereDocument(fd, doc) => {
                let body = if doc.remove_tabs {
                    strip_leading_tabs(&doc.doc.value)
                } else {
                    doc.doc.value.clone()
                };
                (*fd, ROp::HereDoc, body, doc.requires_expansion)
            }
            ast::IoRedirect::HereString(fd, w) => (*fd, ROp::HereString, w.value.clone(), false),
            ast::IoRedirect::OutputAndError(w, append) => {
                let op = if *append {
                    ROp::OutErrAppend
                } else {
                    ROp::OutErr
                };
                (None, op, w.value.clone(), false)
            }
        };
        cmd.redirs.push(Redir {
            fd,
            op,
            target,
            expand,
        });
    }

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

    /// Interprets one command line (already expanded words): wrappers, shells, writers, printers.
    /// Returns its literal stdout when known.
    fn exec(&mut self, argv: &[String], stdin: Option<&Text>, depth: usize) -> Option<Text> {
        let argv = strip_wrappers(argv)?;
        let (program, args) = argv.split_first()?;
        let name = basename(program);
        match name {
            "sh" | "bash" | "ash" | "dash" | "zsh" | "ksh" | "mksh" | "yash" | "posh" => {
                match shell_script(args) {
                    ShellInput::Script(script) => self.script(script, depth + 1),
                    ShellInput::Stdin => {
                        if let Some(script) = stdin {
                            self.script(script, depth + 1);
                        }
                    }
                    ShellInput::File => {}
                }
                None
            }
            "su" => {
                // `su -c 'script' user` runs the script in a shell.
                let script = args
                    .iter()
                    .position(|a| a == "-c" || a == "--command")
                    .and_then(|pos| args.get(pos + 1));
                if let Some(script) = script {
                    self.script(script, depth + 1);
                }
                None
            }
            "echo" => Some(echo_output(args).into()),
            "printf" => Some(printf_output(args).into()),
            "cat" => {
                let reads_stdin = args
                    .iter()
                    .filter(|a| !(a.starts_with('-') && a.len() > 1))
                    .all(|a| a == "-");
                if reads_stdin { stdin.cloned() } else { None }
            }
            "tee" => {
                let (append, files) = tee_args(args);
                if files.iter().any(|f| is_etc_hosts(f)) {
                    let how = if append {
                        "`tee -a` appends"
                    } else {
                        "`tee` overwrites"
                    };
                    self.push(how, stdin.map(|t| parse_hosts_text(t)).unwrap_or_default());
                }
                stdin.cloned()
            }
            "sed" => {
                if sed_in_place_files(args).iter().any(|f| is_etc_hosts(f)) {
                    self.push("`sed -i` edits in place", Vec::new());
                }
                None
            }
            "perl" => {
                if perl_in_place_files(args).iter().any(|f| is_etc_hosts(f)) {
                    self.push("`perl -i` edits in place", Vec::new());
                }
                None
            }
            "cp" | "mv" | "install" | "ln" | "rsync" => {
                if copy_targets_hosts(name, args) {
                    let how = match name {
                        "cp" => "`cp` overwrites",
                        "mv" => "`mv` replaces",
                        "install" => "`install` overwrites",
                        "rsync" => "`rsync` overwrites",
                        _ => "`ln` replaces it with a link",
                    };
                    self.push(how, Vec::new());
                }
                None
            }
            "dd" => {
                if args
                    .iter()
                    .any(|a| a.strip_prefix("of=").is_some_and(is_etc_hosts))
                {
                    self.push("`dd of=` overwrites", Vec::new());
                }
                None
            }
            "truncate" => {
                if operands(args, &["-s", "-r", "--size", "--reference"])
                    .iter()
                    .any(|f| is_etc_hosts(f))
                {
                    self.push("`truncate` resizes", Vec::new());
                }
                None
            }
            "rm" | "unlink" | "shred" => {
                if operands(args, &["-n", "-s", "--iterations", "--size"])
                    .iter()
                    .any(|f| is_etc_hosts(f))
                {
                    self.push(&format!("`{name}` deletes"), Vec::new());
                }
                None
            }
            "sponge" => {
                if operands(args, &[]).iter().any(|f| is_etc_hosts(f)) {
                    self.push("`sponge` overwrites", Vec::new());
                }
                None
            }
            "curl" | "wget" => {
                // Downloads straight into the file: `curl -o F`, `wget -O F`.
                let flag = if name == "curl" { "-o" } else { "-O" };
                let long = if name == "curl" {
                    "--output"
                } else {
                    "--output-document"
                };
                let writes = args.iter().enumerate().any(|(i, a)| {
                    let value = if a == flag || a == long {
                        args.get(i + 1).map(String::as_str)
                    } else {
                        a.strip_prefix(long)
                            .and_then(|v| v.strip_prefix('='))
                            .or_else(|| a.strip_prefix(flag).filter(|v| v.starts_with('/')))
                    };
                    value.is_some_and(is_etc_hosts)
                });
                if writes {
                    self.push(&format!("`{name} {flag}` overwrites"), Vec::new());
                }
                None
            }
            "awk" | "gawk" => {
                // gawk's `-i inplace` extension rewrites its file operands.
                let in_place = args
                    .windows(2)
                    .any(|w| matches!(w[0].as_str(), "-i" | "--include") && w[1] == "inplace")
                    || args
                        .iter()
                        .any(|a| a == "-iinplace" || a == "--include=inplace");
                if in_place && args.iter().any(|a| is_etc_hosts(a)) {
                    self.push("`awk -i inplace` edits in place", Vec::new());
                }
                None
            }
            "mount" => {
                let ops = operands(
                    args,
                    &["-o", "-t", "-O", "-L", "-U", "--options", "--types"],
                );
                if ops.last().is_some_and(|f| is_etc_hosts(f)) {
                    self.push("`mount --bind` covers", Vec::new());
                }
                None
            }
            _ => None,
        }
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

    // ----- fallback for scripts brush-parser does not take -----

    /// Splits lexer tokens into pipelines of simple commands and analyses them. Keywords and
    /// grouping are skipped, which is enough to see every simple command and its redirections.
    fn fallback(&mut self, text: &str, tokens: &[Tok], depth: usize) {
        let mut cmd = Cmd::default();
        let mut piped: Option<Text> = None;
        // Output of the open `{ }`, `do done` and `then fi` bodies, for `} >> /etc/hosts`.
        // Only the innermost few levels collect, and each collects a bounded amount, so that a
        // deeply nested script cannot make us copy text quadratically.
        let mut groups: Vec<Option<String>> = Vec::new();
        let mut iter = tokens.iter().peekable();
        let finish = |scan: &mut Self,
                      cmd: &mut Cmd,
                      piped: Option<&Text>,
                      groups: &mut [Option<String>]| {
            let current = std::mem::take(cmd);
            let out = scan.run_simple(&current, piped, depth);
            if let (Some(Some(top)), Some(out)) = (groups.last_mut(), out.as_deref()) {
                push_bounded(top, out);
            }
            out
        };
        while let Some(tok) = iter.next() {
            match tok {
                Tok::Word(start, end) => {
                    let w = slice(text, *start, *end);
                    if cmd.words.is_empty() && is_reserved_word(w) {
                        match w {
                            "{" | "do" | "then" => {
                                let collect = groups.len() < PARSER_MAX_NESTING;
                                groups.push(collect.then(String::new));
                            }
                            "}" | "done" | "fi" => {
                                let out = groups.pop().flatten();
                                if let (Some(Some(outer)), Some(out)) = (groups.last_mut(), &out) {
                                    push_bounded(outer, out);
                                }
                                cmd.group_out = out;
                            }
                            _ => {}
                        }
                        continue;
                    }
                    if cmd.words.is_empty() && is_assignment(w) {
                        cmd.other_words.push(w.to_string());
                    } else {
                        cmd.words.push(w.to_string());
                    }
                }
                Tok::Redirect { fd, op } => {
                    if let Some(Tok::Word(start, end)) = iter.peek() {
                        cmd.redirs.push(Redir {
                            fd: *fd,
                            op: *op,
                            target: slice(text, *start, *end).to_string(),
                            expand: false,
                        });
                        iter.next();
                    }
                }
                Tok::HereDoc { fd, body, expand } => cmd.redirs.push(Redir {
                    fd: *fd,
                    op: ROp::HereDoc,
                    target: body.clone(),
                    expand: *expand,
                }),
                Tok::Pipe => {
                    let current = std::mem::take(&mut cmd);
                    piped = self.run_simple(&current, piped.as_ref(), depth);
                }
                Tok::Separator => {
                    finish(self, &mut cmd, piped.as_ref(), &mut groups);
                    piped = None;
                }
            }
        }
        finish(self, &mut cmd, piped.as_ref(), &mut groups);
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

// ----- lexer (fallback and nesting pre-scan) -----

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
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

struct Lexed {
    tokens: Vec<Tok>,
    /// Deepest nesting seen: quotes and substitutions inside words plus compound commands.
    max_nesting: usize,
}

/// Contexts inside a word, kept on an explicit stack so that nesting costs heap, not stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WordCtx {
    DoubleQuote,
    Paren,
    Brace,
    /// `$[...]`, bash's legacy arithmetic, which brush's tokenizer also recurses into.
    Bracket,
    Backtick,
}

/// Compound commands open at a point of the script, for the nesting estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    If,
    Loop,
    CasePattern,
    CaseBody,
    Brace,
    Paren,
}

fn byte_at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

fn slice(text: &str, from: usize, to: usize) -> &str {
    text.get(from..to.min(text.len())).unwrap_or("")
}

/// Tokenizes a script without recursion. Quote-, substitution-, comment- and heredoc-aware; never
/// fails: an unbalanced quote simply runs to the end of the input.
fn lex(text: &str) -> Lexed {
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
fn redirect_op(b: &[u8], i: usize) -> (usize, ROp, Option<bool>) {
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
fn scan_word(b: &[u8], mut i: usize) -> (usize, usize) {
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
fn skip_single_quote(b: &[u8], from: usize) -> usize {
    let mut i = from;
    while i < b.len() && byte_at(b, i) != b'\'' {
        i += 1;
    }
    i
}

fn skip_ansi_c_quote(b: &[u8], from: usize) -> usize {
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
fn read_heredoc_body(text: &str, start: usize, delim: &str, strip_tabs: bool) -> (String, usize) {
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

fn strip_leading_tabs(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    for line in body.split_inclusive('\n') {
        out.push_str(line.trim_start_matches('\t'));
    }
    out
}

fn is_reserved_word(w: &str) -> bool {
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

fn is_assignment(w: &str) -> bool {
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

/// Parses with brush-parser; `None` on a syntax error.
fn parse_with_brush(text: &str) -> Option<ast::Program> {
    // brush-parser has `unwrap()`s on paths we believe unreachable; the input is hostile, so a
    // panic there must cost us only the parse, not the admission request. The fallback lexer
    // then takes the script.
    std::panic::catch_unwind(|| {
        let mut reader = std::io::BufReader::new(text.as_bytes());
        let options = brush_parser::ParserOptions::default();
        let mut parser = brush_parser::Parser::new(&mut reader, &options);
        parser.parse_program().ok()
    })
    .ok()
    .flatten()
}

// ----- words -----

struct Expanded {
    /// Literal value with [`UNKNOWN`] standing for each expansion.
    text: String,
    /// Bodies of `$(...)` and backquote substitutions, to analyse as scripts.
    substitutions: Vec<String>,
}

/// Removes quoting from a raw shell word. In `heredoc` mode quotes are literal and only `\$`,
/// `` \` `` and `\\` are escapes, as in an unquoted heredoc body.
fn expand_word(raw: &str, heredoc: bool) -> Expanded {
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
fn find_closing(b: &[u8], open: usize) -> usize {
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
fn interpret_escapes(s: &str) -> String {
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

// ----- program models -----

/// Strips `env`, `exec`, `command`, `nohup`, `sudo`, `timeout`, `nice`, `busybox` and similar
/// prefixes; `None` when what is left does not run a program (`command -v x`).
fn strip_wrappers(argv: &[String]) -> Option<&[String]> {
    let mut rest = argv;
    // Each round removes at least the wrapper's own name, so this ends within argv.len() rounds.
    loop {
        let (program, args) = rest.split_first()?;
        let skip_opts = |args: &'_ [String], with_value: &[&str]| -> usize {
            let mut n = 0;
            while let Some(a) = args.get(n) {
                if a == "--" {
                    return n + 1;
                }
                if !a.starts_with('-') || a == "-" {
                    break;
                }
                n += if with_value.contains(&a.as_str()) {
                    2
                } else {
                    1
                };
            }
            n
        };
        let skip = match basename(program) {
            "env" => {
                let mut n = 0;
                while let Some(a) = args.get(n) {
                    if a == "--" {
                        n += 1;
                        break;
                    }
                    if a == "-u" || a == "--unset" || a == "-C" || a == "--chdir" {
                        n += 2;
                    } else if a.starts_with('-') || is_assignment(a) {
                        n += 1;
                    } else {
                        break;
                    }
                }
                while args.get(n).is_some_and(|a| is_assignment(a)) {
                    n += 1;
                }
                n
            }
            "exec" => skip_opts(args, &["-a"]),
            "command" => {
                if args
                    .iter()
                    .take_while(|a| a.starts_with('-'))
                    .any(|a| a.contains(['v', 'V']))
                {
                    return None;
                }
                skip_opts(args, &[])
            }
            "nohup" | "setsid" | "time" | "builtin" | "stdbuf" | "doas" => {
                skip_opts(args, &["-u", "-i", "-o", "-e"])
            }
            "sudo" => skip_opts(
                args,
                &["-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T"],
            ),
            "nice" | "ionice" => skip_opts(args, &["-n", "-c", "-p", "-t"]),
            "chrt" | "taskset" => {
                let n = skip_opts(args, &[]);
                n + 1
            }
            "timeout" => {
                let n = skip_opts(args, &["-s", "-k", "--signal", "--kill-after"]);
                n + 1
            }
            "busybox" => {
                if args.first().is_some_and(|a| a.starts_with('-')) {
                    return None;
                }
                0
            }
            "xargs" => return None,
            _ => return Some(rest),
        };
        rest = args.get(skip..)?;
    }
}

enum ShellInput<'a> {
    Script(&'a str),
    Stdin,
    File,
}

/// Where a shell invoked with `args` reads its script from.
fn shell_script(args: &[String]) -> ShellInput<'_> {
    let mut has_c = false;
    let mut i = 0;
    while let Some(a) = args.get(i) {
        if a == "--" {
            i += 1;
            break;
        }
        if matches!(
            a.as_str(),
            "-o" | "+o" | "-O" | "+O" | "--rcfile" | "--init-file"
        ) {
            i += 2;
            continue;
        }
        if a.starts_with("--") {
            i += 1;
            continue;
        }
        if (a.starts_with('-') || a.starts_with('+')) && a.len() > 1 {
            if a.starts_with('-') && a.contains('c') {
                has_c = true;
            }
            i += 1;
            continue;
        }
        break;
    }
    match args.get(i) {
        Some(script) if has_c => ShellInput::Script(script),
        Some(_) => ShellInput::File,
        None if has_c => ShellInput::File,
        None => ShellInput::Stdin,
    }
}

fn is_shell_c_flag(a: &str) -> bool {
    a == "-c"
        || (a.starts_with('-')
            && !a.starts_with("--")
            && a.len() <= 6
            && a.ends_with('c')
            && a.bytes().skip(1).all(|c| c.is_ascii_alphabetic()))
}

/// Text printed by `echo`. Escapes are interpreted unless `-E`: dash and busybox differ from
/// bash here, and for suggesting entries reading `\n` as a line break is the useful choice.
fn echo_output(args: &[String]) -> String {
    let mut newline = true;
    let mut escapes = true;
    let mut n = 0;
    while let Some(a) = args.get(n) {
        let flags = a.strip_prefix('-').unwrap_or("");
        if flags.is_empty() || !flags.bytes().all(|c| matches!(c, b'n' | b'e' | b'E')) {
            break;
        }
        for f in flags.bytes() {
            match f {
                b'n' => newline = false,
                b'E' => escapes = false,
                _ => escapes = true,
            }
        }
        n += 1;
    }
    let joined = args.get(n..).unwrap_or_default().join(" ");
    let mut out = if escapes {
        interpret_escapes(&joined)
    } else {
        joined
    };
    if newline {
        out.push('\n');
    }
    out
}

/// Text printed by `printf FORMAT ARGS...`; conversions take the next argument as text.
fn printf_output(args: &[String]) -> String {
    // A single `--` ends options; anything after it is the format.
    let args = match args.split_first() {
        Some((first, rest)) if first == "--" => rest,
        _ => args,
    };
    let Some((format, mut rest)) = args.split_first() else {
        return String::new();
    };
    let format = interpret_escapes(format);
    let mut out = String::new();
    // The format is reused while arguments remain, as printf does; capped against abuse.
    for _ in 0..256 {
        let mut consumed = false;
        let mut chars = format.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            if chars.peek() == Some(&'%') {
                chars.next();
                out.push('%');
                continue;
            }
            // Flags, width and precision are irrelevant to hosts lines.
            while chars
                .peek()
                .is_some_and(|c| matches!(c, '-' | '+' | ' ' | '#' | '0'..='9' | '.'))
            {
                chars.next();
            }
            let conv = chars.next();
            let (arg, tail) = rest
                .split_first()
                .map_or(("", rest), |(a, t)| (a.as_str(), t));
            rest = tail;
            consumed = true;
            if conv == Some('b') {
                out.push_str(&interpret_escapes(arg));
            } else {
                out.push_str(arg);
            }
        }
        if !consumed || rest.is_empty() || out.len() > MAX_OUTPUT {
            break;
        }
    }
    out
}

/// `tee` options: whether it appends, and its file operands.
fn tee_args(args: &[String]) -> (bool, Vec<&str>) {
    let mut append = false;
    let mut files = Vec::new();
    let mut options_done = false;
    for a in args {
        if !options_done && a == "--" {
            options_done = true;
        } else if !options_done && a.starts_with("--") {
            append |= a == "--append";
        } else if !options_done && a.starts_with('-') && a.len() > 1 {
            append |= a.contains('a');
        } else {
            files.push(a.as_str());
        }
    }
    (append, files)
}

/// Files `sed` edits in place (empty without `-i`/`--in-place`).
fn sed_in_place_files(args: &[String]) -> Vec<&str> {
    let mut in_place = false;
    let mut have_script = false;
    let mut operands = Vec::new();
    let mut i = 0;
    let mut options_done = false;
    while let Some(a) = args.get(i) {
        i += 1;
        if options_done || !a.starts_with('-') || a == "-" {
            operands.push(a.as_str());
            continue;
        }
        if a == "--" {
            options_done = true;
        } else if let Some(long) = a.strip_prefix("--") {
            let name = long.split('=').next().unwrap_or("");
            match name {
                "in-place" => in_place = true,
                "expression" | "file" => {
                    have_script = true;
                    if !long.contains('=') {
                        i += 1;
                    }
                }
                "line-length" if !long.contains('=') => i += 1,
                _ => {}
            }
        } else {
            // Short cluster: `-i` takes the rest of the cluster as a suffix (GNU `-ie` means
            // suffix "e"), `-e`/`-f`/`-l` take the rest or the next argument.
            for (pos, f) in a.bytes().enumerate().skip(1) {
                match f {
                    b'i' => {
                        in_place = true;
                        break;
                    }
                    b'e' | b'f' | b'l' => {
                        if f != b'l' {
                            have_script = true;
                        }
                        if pos + 1 == a.len() {
                            i += 1;
                        }
                        break;
                    }
                    _ => {}
                }
            }
        }
    }
    if !in_place {
        return Vec::new();
    }
    if !have_script && !operands.is_empty() {
        operands.remove(0);
    }
    operands
}

/// Files `perl` edits in place (empty without `-i`).
fn perl_in_place_files(args: &[String]) -> Vec<&str> {
    let mut in_place = false;
    let mut have_code = false;
    let mut i = 0;
    while let Some(a) = args.get(i) {
        if a == "--" {
            i += 1;
            break;
        }
        if !a.starts_with('-') || a == "-" {
            break;
        }
        i += 1;
        for (pos, f) in a.bytes().enumerate().skip(1) {
            match f {
                b'i' => {
                    in_place = true;
                    break;
                }
                b'e' | b'E' => {
                    have_code = true;
                    if pos + 1 == a.len() {
                        i += 1;
                    }
                    break;
                }
                b'M' | b'm' | b'I' | b'x' | b'F' | b'l' | b'0' | b'C' | b'd' | b'D' => break,
                _ => {}
            }
        }
    }
    if !in_place {
        return Vec::new();
    }
    let rest = args.get(i..).unwrap_or_default();
    let skip = usize::from(!have_code);
    rest.iter().skip(skip).map(String::as_str).collect()
}

/// Whether `cp`/`mv`/`install`/`ln` with `args` writes /etc/hosts.
fn copy_targets_hosts(name: &str, args: &[String]) -> bool {
    let mut target_dir: Option<&str> = None;
    let mut ops = Vec::new();
    let mut i = 0;
    let mut options_done = false;
    let takes_value: &[&str] = match name {
        "install" => &[
            "-m", "-o", "-g", "-S", "-t", "--mode", "--owner", "--group", "--suffix",
        ],
        "rsync" => &["-e", "--rsh", "-f", "--filter", "--chmod", "-B"],
        _ => &["-S", "-t", "--suffix"],
    };
    while let Some(a) = args.get(i) {
        i += 1;
        if options_done || !a.starts_with('-') || a == "-" {
            ops.push(a.as_str());
            continue;
        }
        if a == "--" {
            options_done = true;
            continue;
        }
        if let Some(dir) = a.strip_prefix("--target-directory=") {
            target_dir = Some(dir);
        } else if a == "-t" || a == "--target-directory" {
            target_dir = args.get(i).map(String::as_str);
            i += 1;
        } else if let Some(dir) = a.strip_prefix("-t").filter(|_| !a.starts_with("--")) {
            target_dir = Some(dir);
        } else if name == "install" && (a == "-d" || a == "--directory") {
            return false;
        } else if takes_value.contains(&a.as_str()) {
            i += 1;
        }
    }
    let (target, sources) = match target_dir {
        Some(dir) => (dir, ops.as_slice()),
        None => match ops.split_last() {
            Some((last, sources)) if !sources.is_empty() => (*last, sources),
            _ => return false,
        },
    };
    if is_etc_hosts(target) {
        return true;
    }
    normalize_path(target) == "/etc"
        && sources
            .iter()
            .any(|s| normalize_path(s).rsplit('/').next() == Some("hosts"))
}

/// Non-option operands, skipping the values of the listed options.
fn operands<'a>(args: &'a [String], with_value: &[&str]) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut options_done = false;
    while let Some(a) = args.get(i) {
        i += 1;
        if options_done || !a.starts_with('-') || a == "-" {
            out.push(a.as_str());
        } else if a == "--" {
            options_done = true;
        } else if with_value.contains(&a.as_str()) {
            i += 1;
        }
    }
    out
}

fn basename(program: &str) -> &str {
    program.rsplit('/').next().unwrap_or(program)
}

// ----- paths and hosts text -----

/// Lexically normalises an absolute path (`//`, `/./`, `..`, a trailing slash); a relative
/// path is returned as it is.
fn normalize_path(path: &str) -> String {
    crate::pod::normalize_path(path).unwrap_or_else(|| path.to_string())
}

fn is_etc_hosts(path: &str) -> bool {
    !path.contains(UNKNOWN) && normalize_path(path) == "/etc/hosts"
}

/// Whether the text could name the file at all (before unquoting: `/etc/"hosts"`).
fn mentions_hosts(text: &str) -> bool {
    text.contains("etc") && text.contains("hosts")
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), script.into()]
    }

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    fn entry(ip: &str, names: &[&str]) -> HostEntry {
        HostEntry {
            ip: ip.into(),
            hostnames: names.iter().map(|n| n.to_string()).collect(),
        }
    }

    /// (name, argv, known_program, expected `how` of each finding, expected entries of the first)
    struct Positive {
        name: &'static str,
        argv: Vec<String>,
        known: bool,
        hows: &'static [&'static str],
        entries: Vec<HostEntry>,
    }

    fn pos(name: &'static str, argv: Vec<String>, hows: &'static [&'static str]) -> Positive {
        Positive {
            name,
            argv,
            known: true,
            hows,
            entries: Vec::new(),
        }
    }

    impl Positive {
        fn with(mut self, entries: Vec<HostEntry>) -> Self {
            self.entries = entries;
            self
        }
        fn args_only(mut self) -> Self {
            self.known = false;
            self
        }
    }

    fn positive_cases() -> Vec<Positive> {
        let one = || vec![entry("10.1.2.3", &["foo", "bar"])];
        vec![
            pos("append_quoted_echo", sh(r#"echo "10.1.2.3 foo bar" >> /etc/hosts"#), &["appends with `>>`"]).with(one()),
            pos("append_unquoted_echo", sh("echo 10.1.2.3 foo bar >> /etc/hosts"), &["appends with `>>`"]).with(one()),
            pos("overwrite_redirect", sh("echo 10.1.2.3 foo bar > /etc/hosts"), &["overwrites with `>`"]).with(one()),
            pos("clobber_redirect", sh("echo 10.1.2.3 foo bar >| /etc/hosts"), &["overwrites with `>|`"]).with(one()),
            pos("and_redirect", sh("echo 10.1.2.3 foo bar &> /etc/hosts"), &["overwrites with `&>`"]).with(one()),
            pos("and_append_redirect", sh("echo 10.1.2.3 foo bar &>> /etc/hosts"), &["appends with `&>>`"]).with(one()),
            pos("stderr_redirect_has_no_entries", sh("echo 10.1.2.3 foo bar 2> /etc/hosts"), &["overwrites with `2>`"]),
            pos("stderr_append", sh("ls 2>> /etc/hosts"), &["appends with `2>>`"]),
            pos("fd1_append", sh("echo 10.1.2.3 foo bar 1>> /etc/hosts"), &["appends with `1>>`"]).with(one()),
            pos("read_write_redirect", sh("exec 3<> /etc/hosts"), &["opens it read-write with `3<>`"]),
            pos("redirect_before_command", sh(">> /etc/hosts echo 10.1.2.3 foo bar"), &["appends with `>>`"]).with(one()),
            pos("heredoc_append", sh("cat <<EOF >> /etc/hosts\n10.1.2.3 foo bar\nEOF\n"), &["heredoc redirected into it with `>>`"]).with(one()),
            pos("heredoc_quoted_delimiter_overwrite", sh("cat > /etc/hosts <<'EOF'\n127.0.0.1 localhost\n10.1.2.3 foo bar\nEOF"), &["heredoc redirected into it with `>`"])
                .with(vec![entry("127.0.0.1", &["localhost"]), entry("10.1.2.3", &["foo", "bar"])]),
            pos("heredoc_dash_strips_tabs", sh("cat <<-EOF >> /etc/hosts\n\t10.1.2.3 foo bar\n\tEOF\necho done"), &["heredoc redirected into it with `>>`"]).with(one()),
            pos("cat_heredoc_piped_into_sudo_tee", sh("cat <<EOF | sudo tee -a /etc/hosts\n10.1.2.3 foo bar\nEOF"), &["`tee -a` appends"]).with(one()),
            pos("heredoc_into_tee", sh("tee -a /etc/hosts <<EOF\n10.1.2.3 foo bar\nEOF"), &["`tee -a` appends"]).with(one()),
            pos("heredoc_skips_line_with_variable", sh("cat <<EOF >> /etc/hosts\n$IP foo\n10.1.2.3 foo bar\nEOF"), &["heredoc redirected into it with `>>`"]).with(one()),
            pos("here_string_into_tee", sh(r#"tee -a /etc/hosts <<< "10.1.2.3 foo bar""#), &["`tee -a` appends"]).with(one()),
            pos("pipe_into_tee_append", sh(r#"echo "10.1.2.3 foo bar" | tee -a /etc/hosts"#), &["`tee -a` appends"]).with(one()),
            pos("pipe_into_tee_long_append", sh(r#"echo "10.1.2.3 foo bar" | tee --append /etc/hosts > /dev/null"#), &["`tee -a` appends"]).with(one()),
            pos("pipe_into_tee_overwrite", sh("echo 10.1.2.3 foo bar | tee /tmp/x /etc/hosts"), &["`tee` overwrites"]).with(one()),
            pos("printf_escapes_two_lines", sh(r"printf '10.0.0.1 a\n10.0.0.2 b c\n' >> /etc/hosts"), &["appends with `>>`"])
                .with(vec![entry("10.0.0.1", &["a"]), entry("10.0.0.2", &["b", "c"])]),
            pos("printf_substitutes_args", sh(r"printf '%s %s\n' 10.0.0.1 a >> /etc/hosts"), &["appends with `>>`"]).with(vec![entry("10.0.0.1", &["a"])]),
            pos("echo_e_two_lines", sh(r#"echo -e "1.2.3.4 a\n5.6.7.8 b" >> /etc/hosts"#), &["appends with `>>`"])
                .with(vec![entry("1.2.3.4", &["a"]), entry("5.6.7.8", &["b"])]),
            pos("ipv6_entry", sh(r#"echo "fd00::1 v6host" >> /etc/hosts"#), &["appends with `>>`"]).with(vec![entry("fd00::1", &["v6host"])]),
            pos("comment_after_entry", sh(r#"echo "10.1.2.3 foo bar # added" >> /etc/hosts"#), &["appends with `>>`"]).with(one()),
            pos("variable_in_text_gives_no_entry", sh(r#"echo "$IP foo" >> /etc/hosts"#), &["appends with `>>`"]),
            pos("command_substitution_in_text_gives_no_entry", sh(r#"echo "$(hostname -i) foo" >> /etc/hosts"#), &["appends with `>>`"]),
            pos("sed_i", sh("sed -i 's/a/b/' /etc/hosts"), &["`sed -i` edits in place"]),
            pos("sed_i_suffix", sh("sed -i.bak -e 's/a/b/' /etc/hosts"), &["`sed -i` edits in place"]),
            pos("sed_in_place_long", sh("sed --in-place=.orig 's/a/b/' /etc/hosts"), &["`sed -i` edits in place"]),
            pos("sed_in_place_long_no_suffix", sh("sed --in-place s/a/b/ /etc/hosts"), &["`sed -i` edits in place"]),
            pos("tee_with_other_flags", sh("echo 10.1.2.3 foo bar | tee --output-error=warn -ip /etc/hosts"), &["`tee` overwrites"]).with(one()),
            pos("sed_ie_combined", sh("sed -ie 's/a/b/' /etc/hosts"), &["`sed -i` edits in place"]),
            pos("sed_e_then_i", sh("sed -e 's/a/b/' -i /etc/hosts"), &["`sed -i` edits in place"]),
            pos("perl_pi_e", sh("perl -pi -e 's/a/b/' /etc/hosts"), &["`perl -i` edits in place"]),
            pos("perl_i_bak", sh("perl -i.bak -pe 's/a/b/' /etc/hosts"), &["`perl -i` edits in place"]),
            pos("cp_overwrites", sh("cp /tmp/hosts /etc/hosts"), &["`cp` overwrites"]),
            pos("cp_into_etc_dir", sh("cp -f /config/hosts /etc/"), &["`cp` overwrites"]),
            pos("cp_target_directory", sh("cp -t /etc /config/hosts"), &["`cp` overwrites"]),
            pos("cp_target_directory_long", sh("cp --target-directory=/etc /config/hosts"), &["`cp` overwrites"]),
            pos("mv_replaces", sh("mv /tmp/h /etc/hosts"), &["`mv` replaces"]),
            pos("install_overwrites", sh("install -m 644 /tmp/h /etc/hosts"), &["`install` overwrites"]),
            pos("ln_sf_replaces", sh("ln -sf /config/hosts /etc/hosts"), &["`ln` replaces it with a link"]),
            pos("dd_of", sh("dd if=/tmp/h of=/etc/hosts"), &["`dd of=` overwrites"]),
            pos("truncate", sh("truncate -s 0 /etc/hosts"), &["`truncate` resizes"]),
            pos("rm_f", sh("rm -f /etc/hosts"), &["`rm` deletes"]),
            pos("mount_bind", sh("mount --bind /config/hosts /etc/hosts"), &["`mount --bind` covers"]),
            pos("mount_o_bind", sh("mount -o bind /config/hosts /etc/hosts"), &["`mount --bind` covers"]),
            pos("rsync_overwrites", sh("rsync -a /config/hosts /etc/hosts"), &["`rsync` overwrites"]),
            pos("curl_output", sh("curl -fsSL -o /etc/hosts http://cfg/hosts"), &["`curl -o` overwrites"]),
            pos("wget_output_document", sh("wget -q --output-document=/etc/hosts http://cfg/hosts"), &["`wget -O` overwrites"]),
            pos("gawk_inplace", sh("gawk -i inplace '!/old/' /etc/hosts"), &["`awk -i inplace` edits in place"]),
            pos("cat_file_appended_has_no_entries", sh("cat /config/extra >> /etc/hosts"), &["appends with `>>`"]),
            pos("printf_format_reused", sh(r#"printf "%s\n" "1.2.3.4 a" "5.6.7.8 b" >> /etc/hosts"#), &["appends with `>>`"])
                .with(vec![entry("1.2.3.4", &["a"]), entry("5.6.7.8", &["b"])]),
            pos("no_spaces_around_redirect", sh("echo 10.1.2.3 foo bar>>/etc/hosts"), &["appends with `>>`"]).with(one()),
            pos("exec_redirects_the_shell", sh("exec >> /etc/hosts; echo 10.1.2.3 foo bar"), &["appends with `>>`"]),
            pos("stderr_merged_keeps_entries", sh("echo 10.1.2.3 foo bar >> /etc/hosts 2>&1"), &["appends with `>>`"]).with(one()),
            pos("sudo_tee_in_pipe", sh("echo 10.1.2.3 foo bar | sudo tee -a /etc/hosts > /dev/null"), &["`tee -a` appends"]).with(one()),
            pos("ansi_c_quoted_text", sh(r"echo $'10.1.2.3 foo bar' >> /etc/hosts"), &["appends with `>>`"]).with(one()),
            pos("substitution_in_heredoc_body", sh("cat <<EOF > /tmp/x\n$(cp /a /etc/hosts)\nEOF"), &["`cp` overwrites"]),
            pos("sed_several_expressions", sh("sed -E -e 's/a/b/' -e 's/c/d/' -i /etc/hosts"), &["`sed -i` edits in place"]),
            // Exec form, no shell.
            pos("exec_form_tee", argv(&["tee", "-a", "/etc/hosts"]), &["`tee -a` appends"]),
            pos("exec_form_cp", argv(&["cp", "/tmp/h", "/etc/hosts"]), &["`cp` overwrites"]),
            pos("exec_form_sed", argv(&["sed", "-i", "s/a/b/", "/etc/hosts"]), &["`sed -i` edits in place"]),
            pos("exec_form_path_qualified", argv(&["/usr/bin/tee", "/etc/hosts"]), &["`tee` overwrites"]),
            // Shells, flags and wrappers.
            pos("bash_c", argv(&["bash", "-c", "echo 10.1.2.3 foo bar >> /etc/hosts"]), &["appends with `>>`"]).with(one()),
            pos("ash_c", argv(&["ash", "-c", "echo x >> /etc/hosts"]), &["appends with `>>`"]),
            pos("dash_c", argv(&["dash", "-c", "echo x >> /etc/hosts"]), &["appends with `>>`"]),
            pos("zsh_c", argv(&["zsh", "-c", "echo x >> /etc/hosts"]), &["appends with `>>`"]),
            pos("ksh_c", argv(&["ksh", "-c", "echo x >> /etc/hosts"]), &["appends with `>>`"]),
            pos("busybox_sh_c", argv(&["busybox", "sh", "-c", "echo x >> /etc/hosts"]), &["appends with `>>`"]),
            pos("busybox_applet", argv(&["busybox", "tee", "-a", "/etc/hosts"]), &["`tee -a` appends"]),
            pos("env_bash", argv(&["/usr/bin/env", "bash", "-c", "echo x >> /etc/hosts"]), &["appends with `>>`"]),
            pos("env_with_assignment", argv(&["env", "A=1", "-i", "B=2", "sh", "-c", "echo x >> /etc/hosts"]), &["appends with `>>`"]),
            pos("sh_ec_combined", argv(&["sh", "-ec", "echo x >> /etc/hosts"]), &["appends with `>>`"]),
            pos("bash_xc_combined", argv(&["bash", "-xc", "echo x >> /etc/hosts"]), &["appends with `>>`"]),
            pos("bash_lc_combined", argv(&["bash", "-lc", "echo x >> /etc/hosts"]), &["appends with `>>`"]),
            pos("bash_o_pipefail_c", argv(&["bash", "-o", "pipefail", "-c", "echo x >> /etc/hosts"]), &["appends with `>>`"]),
            pos("nested_bash_c_in_sh_c", sh(r#"bash -c 'echo 10.1.2.3 foo bar >> /etc/hosts'"#), &["appends with `>>`"]).with(one()),
            pos("tee_append_in_nested_bash_c", sh(r#"sh -c "bash -c 'echo 10.1.2.3 foo bar | tee -a /etc/hosts'""#), &["`tee -a` appends"]).with(one()),
            pos("exec_wrapper", sh("exec tee -a /etc/hosts"), &["`tee -a` appends"]),
            pos("command_wrapper", sh("command cp /tmp/h /etc/hosts"), &["`cp` overwrites"]),
            pos("nohup_wrapper", sh("nohup sh -c 'echo x >> /etc/hosts' &"), &["appends with `>>`"]),
            pos("timeout_wrapper", argv(&["timeout", "-s", "KILL", "10", "cp", "/tmp/h", "/etc/hosts"]), &["`cp` overwrites"]),
            pos("sudo_wrapper", sh("sudo -u root tee /etc/hosts < /tmp/h"), &["`tee` overwrites"]),
            pos("nice_wrapper", argv(&["nice", "-n", "5", "cp", "/tmp/h", "/etc/hosts"]), &["`cp` overwrites"]),
            pos("su_c", argv(&["su", "-c", "echo x >> /etc/hosts", "root"]), &["appends with `>>`"]),
            pos("script_piped_into_bash", sh("echo 'echo 10.1.2.3 foo bar >> /etc/hosts' | bash"), &["appends with `>>`"]).with(one()),
            pos("script_on_stdin_of_sh", sh("sh <<EOF\necho 10.1.2.3 foo bar >> /etc/hosts\nEOF"), &["appends with `>>`"]).with(one()),
            // Shell constructs.
            pos("after_and", sh("true && echo x >> /etc/hosts"), &["appends with `>>`"]),
            pos("after_or", sh("grep -q foo /etc/hosts || echo 10.1.2.3 foo bar >> /etc/hosts"), &["appends with `>>`"]).with(one()),
            pos("in_sequence", sh("set -e; echo x >> /etc/hosts; exec nginx"), &["appends with `>>`"]),
            pos("in_subshell", sh("(echo x >> /etc/hosts)"), &["appends with `>>`"]),
            pos("in_nested_subshells", sh("( (echo x >> /etc/hosts) )"), &["appends with `>>`"]),
            pos("in_arithmetic_substitution", sh("(( $(cp /a /etc/hosts) ))"), &["`cp` overwrites"]),
            pos("in_brace_group", sh("{ echo x >> /etc/hosts; }"), &["appends with `>>`"]),
            pos("brace_group_redirected", sh(r#"{ echo "10.1.2.3 foo bar"; echo "10.0.0.9 baz"; } >> /etc/hosts"#), &["appends with `>>`"])
                .with(vec![entry("10.1.2.3", &["foo", "bar"]), entry("10.0.0.9", &["baz"])]),
            pos("in_if_then", sh("if [ -n \"$X\" ]; then echo x >> /etc/hosts; fi"), &["appends with `>>`"]),
            pos("in_else", sh("if true; then :; else cp /a /etc/hosts; fi"), &["`cp` overwrites"]),
            pos("in_for_body", sh("for h in a b; do echo \"1.1.1.1 $h\" >> /etc/hosts; done"), &["appends with `>>`"]),
            pos("in_while_body", sh("while read l; do echo \"$l\" >> /etc/hosts; done < /tmp/list"), &["appends with `>>`"]),
            pos("loop_redirected", sh("for h in a; do echo 1.1.1.1 $h; done > /etc/hosts"), &["overwrites with `>`"]),
            pos("in_case", sh("case $X in a) echo x >> /etc/hosts;; esac"), &["appends with `>>`"]),
            pos("in_function", sh("f() { echo x >> /etc/hosts; }; f"), &["appends with `>>`"]),
            pos("in_command_substitution", sh("X=$(echo x >> /etc/hosts)"), &["appends with `>>`"]),
            pos("in_backquotes", sh("echo `cp /a /etc/hosts`"), &["`cp` overwrites"]),
            pos("backgrounded", sh("echo x >> /etc/hosts & sleep 1"), &["appends with `>>`"]),
            pos("process_substitution", sh("echo x > >(tee /etc/hosts)"), &["`tee` overwrites"]),
            pos("after_comment_line", sh("# set up hosts\necho x >> /etc/hosts"), &["appends with `>>`"]),
            pos("multiline_script", sh("set -e\n\nmkdir -p /x\ncat <<EOF >> /etc/hosts\n10.1.2.3 foo bar\nEOF\nexec app\n"), &["heredoc redirected into it with `>>`"]).with(one()),
            // Paths.
            pos("double_slash_path", sh("echo x >> /etc//hosts"), &["appends with `>>`"]),
            pos("dot_path", sh("echo x >> /etc/./hosts"), &["appends with `>>`"]),
            pos("leading_double_slash", sh("echo x >> //etc/hosts"), &["appends with `>>`"]),
            pos("trailing_slash", sh("echo x >> /etc/hosts/"), &["appends with `>>`"]),
            pos("double_quoted_path", sh(r#"echo x >> "/etc/hosts""#), &["appends with `>>`"]),
            pos("single_quoted_path", sh("echo x >> '/etc/hosts'"), &["appends with `>>`"]),
            pos("partly_quoted_path", sh(r#"echo x >> /etc/"hosts""#), &["appends with `>>`"]),
            // Only `args` given: the entrypoint is unknown but `-c` marks a script.
            pos("args_only_dash_c", argv(&["-c", "echo 10.1.2.3 foo bar >> /etc/hosts"]), &["appends with `>>`"]).with(one()).args_only(),
            pos("args_only_ec", argv(&["-ec", "cp /a /etc/hosts"]), &["`cp` overwrites"]).args_only(),
            // Several writes, in order.
            pos("two_writes_in_order", sh("cp /a /etc/hosts; echo 10.1.2.3 foo bar >> /etc/hosts"), &["`cp` overwrites", "appends with `>>`"]),
            // Syntax errors still get the obvious write.
            pos("unbalanced_quote_after_write", sh("echo 10.1.2.3 foo bar >> /etc/hosts; echo 'oops"), &["appends with `>>`"]).with(one()),
            pos("syntax_error_fi_without_if", sh("echo 10.1.2.3 foo bar >> /etc/hosts\nfi"), &["appends with `>>`"]).with(one()),
            pos("unclosed_command_substitution", sh("echo $(cp /a /etc/hosts"), &["`cp` overwrites"]),
            pos("syntax_error_unclosed_if", sh("if true; then\n  tee -a /etc/hosts <<< '10.1.2.3 foo bar'\n"), &["`tee -a` appends"]).with(one()),
        ]
    }

    #[test]
    fn detects_every_write_form() {
        check_positive_table(true);
    }

    #[test]
    fn fallback_lexer_detects_every_write_form() {
        check_positive_table(false);
    }

    fn check_positive_table(use_parser: bool) {
        let mut failures = Vec::new();
        for case in positive_cases() {
            let found = find_with(&case.argv, case.known, use_parser);
            let hows: Vec<&str> = found.iter().map(|w| w.how.as_str()).collect();
            if hows != case.hows {
                failures.push(format!(
                    "{}: expected {:?}, got {:?}",
                    case.name, case.hows, hows
                ));
                continue;
            }
            let entries = found.first().map(|w| w.entries.clone()).unwrap_or_default();
            if entries != case.entries {
                failures.push(format!(
                    "{}: expected entries {:?}, got {:?}",
                    case.name, case.entries, entries
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "{} failing:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    fn negative_cases() -> Vec<(&'static str, Vec<String>, bool)> {
        vec![
            ("cat_reads", sh("cat /etc/hosts"), true),
            ("grep_reads", sh("grep x /etc/hosts"), true),
            ("cp_from_hosts", sh("cp /etc/hosts /tmp/x"), true),
            ("input_redirect", sh("wc -l < /etc/hosts"), true),
            ("sed_n_print", sh("sed -n p /etc/hosts"), true),
            ("sed_without_i", sh("sed s/a/b/ /etc/hosts"), true),
            (
                "sed_expression_containing_i",
                sh("sed -e 's/i/j/' /etc/hosts > /tmp/out"),
                true,
            ),
            ("diff_reads", sh("diff /etc/hosts /tmp/h"), true),
            ("ls_l", sh("ls -l /etc/hosts"), true),
            ("hosts_allow", sh("echo x >> /etc/hosts.allow"), true),
            ("hostname_file", sh("echo x > /etc/hostname"), true),
            ("tmp_etc_hosts", sh("echo x >> /tmp/etc/hosts"), true),
            ("hosts_bak", sh("cp /tmp/h /etc/hosts.bak"), true),
            ("relative_etc_hosts", sh("echo x >> etc/hosts"), true),
            (
                "message_mentions_it",
                sh(r#"echo "edit /etc/hosts yourself""#),
                true,
            ),
            ("echo_path", sh("echo /etc/hosts"), true),
            ("commented_out", sh("# echo x >> /etc/hosts\necho ok"), true),
            ("trailing_comment", sh("echo ok # >> /etc/hosts"), true),
            (
                "grep_or_echo_missing",
                sh("grep -q foo /etc/hosts || echo missing"),
                true,
            ),
            ("variable_target", sh("echo x >> $HOSTS"), true),
            (
                "braced_variable_target",
                sh(r#"echo x >> "${HOSTS}""#),
                true,
            ),
            (
                "command_substitution_target",
                sh("echo x >> $(echo /etc/hosts)"),
                true,
            ),
            (
                "single_quoted_script_text",
                sh("echo 'echo x >> /etc/hosts'"),
                true,
            ),
            (
                "heredoc_body_mentions_it",
                sh("cat <<EOF > /tmp/readme\necho x >> /etc/hosts\nEOF"),
                true,
            ),
            (
                "exec_form_redirect_is_literal",
                argv(&["echo", "x", ">>", "/etc/hosts"]),
                true,
            ),
            ("exec_form_cat", argv(&["cat", "/etc/hosts"]), true),
            ("tee_other_file", sh("echo x | tee -a /tmp/hosts"), true),
            ("stdout_dup_to_stderr", sh("echo /etc/hosts >&2"), true),
            ("command_v", sh("command -v tee /etc/hosts"), true),
            ("ln_from_hosts", sh("ln -s /etc/hosts /tmp/h"), true),
            (
                "mount_elsewhere",
                sh("mount --bind /etc/hosts /mnt/hosts"),
                true,
            ),
            ("install_d", sh("install -d /etc/hosts"), true),
            ("chmod_is_not_an_edit", sh("chmod 644 /etc/hosts"), true),
            (
                "args_only_without_c",
                argv(&["tee", "-a", "/etc/hosts"]),
                false,
            ),
            (
                "args_only_script_not_after_c",
                argv(&["--config", "echo x >> /etc/hosts"]),
                false,
            ),
            ("sh_runs_a_file", argv(&["sh", "/etc/hosts"]), true),
            (
                "test_writable",
                sh("[ -w /etc/hosts ] && echo writable"),
                true,
            ),
        ]
    }

    #[test]
    fn ignores_reads_mentions_and_other_files() {
        check_negative_table(true);
    }

    #[test]
    fn fallback_lexer_ignores_reads_mentions_and_other_files() {
        check_negative_table(false);
    }

    fn check_negative_table(use_parser: bool) {
        let mut failures = Vec::new();
        for (name, argv, known) in negative_cases() {
            let found = find_with(&argv, known, use_parser);
            if !found.is_empty() {
                failures.push(format!("{name}: {found:?}"));
            }
        }
        assert!(
            failures.is_empty(),
            "{} failing:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    /// Runs `f` on a thread with tokio's default 2 MiB stack, where the webhook runs us.
    fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(f)
            .expect("spawn")
            .join()
            .expect("no panic")
    }

    /// Shell-quotes `s` in single quotes.
    fn quote(s: &str) -> String {
        format!("'{}'", s.replace('\'', r"'\''"))
    }

    #[test]
    fn follows_sh_c_up_to_the_depth_cap_and_no_further() {
        let mut script = "echo 10.1.2.3 foo bar >> /etc/hosts".to_string();
        // argv is level 0 and runs the script at level 1; each wrap adds one level.
        for _ in 1..MAX_DEPTH {
            script = format!("sh -c {}", quote(&script));
        }
        let found = find_hosts_writes(&sh(&script), true);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].entries, vec![entry("10.1.2.3", &["foo", "bar"])]);
        let deeper = format!("sh -c {}", quote(&script));
        assert!(find_hosts_writes(&sh(&deeper), true).is_empty());
    }

    #[test]
    fn survives_200_levels_of_nested_shells_on_a_small_stack() {
        // Quoting `sh -c` grows the text exponentially; heredoc-fed shells nest linearly, so
        // this reaches 200 real levels, each inside 15 nested `if`s.
        let mut script = "echo 10.1.2.3 foo bar >> /etc/hosts".to_string();
        for level in 0..200 {
            script = format!(
                "{}sh <<'E{level}'\n{script}\nE{level}\n{}",
                "if true; then ".repeat(15),
                "fi\n".repeat(15)
            );
        }
        let found = on_small_stack(move || find_hosts_writes(&sh(&script), true));
        // The write sits 200 shells deep, far past MAX_DEPTH: not followed, by design.
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn survives_deep_nesting_of_every_construct_on_a_small_stack() {
        let n = 3000;
        let w = "cp /a /etc/hosts";
        let cases: Vec<(&str, String)> = vec![
            ("subshell", format!("{}{w}{}", "(".repeat(n), ")".repeat(n))),
            (
                "command_substitution",
                format!("{w}; {}x{}", "echo $(".repeat(n), ")".repeat(n)),
            ),
            (
                "quoted_command_substitution",
                format!("{w}; echo {}", "\"$(".repeat(n)),
            ),
            (
                "brace_group",
                format!("{}{w};{}", "{ ".repeat(n), "}; ".repeat(n)),
            ),
            (
                "if",
                format!("{}{w};{}", "if true; then ".repeat(n), "fi; ".repeat(n)),
            ),
            (
                "if_with_fake_fi",
                format!("{}{w}", "if true; then echo fi; ".repeat(n)),
            ),
            (
                "case",
                format!("{}{w};;{}", "case x in a) ".repeat(n), "esac;; ".repeat(n)),
            ),
            (
                "while",
                format!("{}{w};{}", "while true; do ".repeat(n), "done; ".repeat(n)),
            ),
            (
                "for",
                format!("{}{w};{}", "for i in a; do ".repeat(n), "done; ".repeat(n)),
            ),
            (
                "function",
                format!("{}{w};{}", "f() { ".repeat(n), "}; ".repeat(n)),
            ),
            (
                "parameter_default",
                format!("{w}; echo {}", "${x:-".repeat(n)),
            ),
            (
                "arithmetic",
                format!("{w}; echo $(({}1{}))", "(".repeat(n), ")".repeat(n)),
            ),
            ("legacy_arithmetic", format!("{w}; echo {}", "$[".repeat(n))),
            (
                "extended_test",
                format!("{w}; [[ {}x{} ]]", "( ".repeat(n), " )".repeat(n)),
            ),
            (
                "process_substitution",
                format!("{w}; cat {}", "<(".repeat(n)),
            ),
            (
                "heredoc_then_nesting",
                format!("cat <<E\n'\nE\n{w}; {}", "$(".repeat(n)),
            ),
            (
                "comment_then_nesting",
                format!("# '\n{w}; {}", "$(".repeat(n)),
            ),
            ("bang_chain", format!("{} {w}", "! ".repeat(n))),
            ("time_chain", format!("{} {w}", "time ".repeat(n))),
            ("pipe_chain", format!("{w} {}", "| cat ".repeat(n))),
            ("and_chain", format!("{w} {}", "&& true ".repeat(n))),
            (
                "elif_chain",
                format!(
                    "if false; then :; {}else {w}; fi",
                    "elif false; then :; ".repeat(n)
                ),
            ),
            (
                "case_items",
                format!("case x in {}*) {w};; esac", "a) :;; ".repeat(n)),
            ),
            ("backquotes", format!("{w}; echo {}", "`echo \\".repeat(n))),
        ];
        for (name, script) in cases {
            let found = on_small_stack(move || find_hosts_writes(&sh(&script), true));
            assert!(
                found.iter().any(|f| f.how == "`cp` overwrites"),
                "{name}: {found:?}"
            );
        }
    }

    #[test]
    fn nesting_estimate_counts_blocks_quotes_and_substitutions() {
        let cases: &[(&str, usize)] = &[
            ("echo x", 0),
            ("if a; then if b; then x; fi; fi", 2),
            ("if a; then echo fi; fi; if b; then x; fi", 1),
            (r#"echo "$(echo "$(x)")""#, 4),
            ("case x in a) case y in b) z;; esac;; esac", 2),
            ("{ ( x ); }", 2),
            ("cat <<E\n((((\nE\necho", 0),
            ("# ((((\necho", 0),
            ("echo '(((('", 0),
        ];
        for (script, expected) in cases {
            assert_eq!(lex(script).max_nesting, *expected, "{script}");
        }
    }

    /// A deterministic pseudo-random byte stream (no external crate needed).
    fn garbage(len: usize, alphabet: &[u8]) -> String {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                alphabet[(state >> 33) as usize % alphabet.len()] as char
            })
            .collect()
    }

    #[test]
    fn one_megabyte_of_garbage_finishes_without_false_findings_beyond_mentions() {
        let mut text = garbage(1 << 20, b"()<>{}|&;$`'\"\\ \n\tab=#-c/etchos");
        // Sprinkle the path in so the pre-filter does not short-cut the work.
        text.push_str(" /etc/hosts ");
        let mentions = text.matches("hosts").count();
        let start = std::time::Instant::now();
        let found = find_hosts_writes(&sh(&text), true);
        println!(
            "1 MiB garbage: {:?}, {} findings",
            start.elapsed(),
            found.len()
        );
        assert!(
            found.len() <= mentions,
            "{} findings for {mentions} mentions",
            found.len()
        );
        let args_only = find_hosts_writes(&argv(&["-c", &text]), false);
        assert_eq!(args_only, found);
    }

    #[test]
    fn unbalanced_quotes_hide_what_follows_them() {
        for script in [
            r#"echo "10.0.0.1 a >> /etc/hosts"#,
            "echo 'x >> /etc/hosts",
            "echo $'x >> /etc/hosts",
        ] {
            for use_parser in [true, false] {
                let found = find_with(&sh(script), true, use_parser);
                assert!(
                    found.is_empty(),
                    "{script} (parser {use_parser}): {found:?}"
                );
            }
        }
    }

    fn realistic_script(min_len: usize) -> String {
        let block = "set -eu\n\
            if [ -f /config/extra ]; then\n  cp /config/extra /tmp/extra\nfi\n\
            for i in 1 2 3; do grep -q \"node$i\" /etc/hosts || echo \"missing $i\"; done\n\
            cat <<EOF > /tmp/app.conf\nlisten = 8080\nname = $HOSTNAME\nEOF\n\
            case \"$MODE\" in prod) echo prod ;; *) echo dev ;; esac\n";
        let mut script = String::new();
        while script.len() < min_len {
            script.push_str(block);
        }
        script.push_str("echo '10.1.2.3 foo bar' >> /etc/hosts\nexec /app\n");
        script
    }

    #[test]
    fn prints_speed_of_10k_and_1m_scripts() {
        // Timing is printed, not asserted: run with
        // `cargo test --release --lib rules::shell::tests::prints_speed -- --nocapture`.
        for size in [10 << 10, 1 << 20] {
            let args = sh(&realistic_script(size));
            // Few runs in debug builds, where the numbers mean little anyway.
            let runs = match (cfg!(debug_assertions), size < (1 << 20)) {
                (true, _) => 2,
                (false, true) => 200,
                (false, false) => 5,
            };
            let start = std::time::Instant::now();
            let mut found = Vec::new();
            for _ in 0..runs {
                found = find_hosts_writes(&args, true);
            }
            println!(
                "{} KiB script: {:?} per call",
                size >> 10,
                start.elapsed() / runs
            );
            assert_eq!(found.len(), 1, "{found:?}");
            assert_eq!(found[0].entries, vec![entry("10.1.2.3", &["foo", "bar"])]);
        }
        let script = realistic_script(10 << 10);
        let runs = if cfg!(debug_assertions) { 2 } else { 200 };
        let start = std::time::Instant::now();
        for _ in 0..runs {
            assert!(parse_with_brush(&script).is_some());
        }
        println!(
            "brush-parser alone, 10 KiB: {:?} per parse",
            start.elapsed() / runs
        );
    }

    #[test]
    fn long_pass_through_pipelines_share_text_instead_of_copying_it() {
        let body = "10.1.2.3 foo bar\n".repeat(4000);
        let script = format!(
            "cat <<EOF{}| tee -a /etc/hosts\n{body}EOF\n",
            " | cat".repeat(100_000)
        );
        let start = std::time::Instant::now();
        let found = find_hosts_writes(&sh(&script), true);
        println!("{} KiB pipeline: {:?}", script.len() >> 10, start.elapsed());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].how, "`tee -a` appends");
        assert_eq!(found[0].entries.len(), 4000);
    }

    #[test]
    fn caps_the_number_of_findings() {
        let script = format!(
            "echo 10.1.2.3 foo bar{}",
            " | tee /etc/hosts".repeat(10_000)
        );
        let found = find_hosts_writes(&sh(&script), true);
        assert_eq!(found.len(), MAX_FINDINGS);
        assert!(
            found
                .iter()
                .all(|f| f.entries == vec![entry("10.1.2.3", &["foo", "bar"])])
        );
    }

    #[test]
    fn nesting_at_the_parser_limit_under_max_depth_shells_fits_a_small_stack() {
        type Gen = fn(usize) -> String;
        let w = "cp /a /etc/hosts";
        let gens: Vec<(&str, Gen)> = vec![
            ("subshell", |n| {
                format!("{}cp /a /etc/hosts{}", "(".repeat(n), ")".repeat(n))
            }),
            ("command_substitution", |n| {
                format!(
                    "cp /a /etc/hosts; echo {}x{}",
                    "$(".repeat(n),
                    ")".repeat(n)
                )
            }),
            ("quoted_substitution", |n| {
                format!(
                    "cp /a /etc/hosts; echo {}x{}",
                    "\"$(".repeat(n),
                    ")\"".repeat(n)
                )
            }),
            ("brace_group", |n| {
                format!("{}cp /a /etc/hosts;{}", "{ ".repeat(n), "}; ".repeat(n))
            }),
            ("if", |n| {
                format!(
                    "{}cp /a /etc/hosts;{}",
                    "if true; then ".repeat(n),
                    "fi; ".repeat(n)
                )
            }),
            ("while", |n| {
                format!(
                    "{}cp /a /etc/hosts;{}",
                    "while true; do ".repeat(n),
                    "done; ".repeat(n)
                )
            }),
            ("case", |n| {
                format!(
                    "{}cp /a /etc/hosts;;{}esac",
                    "case x in a) ".repeat(n),
                    "esac;; ".repeat(n - 1)
                )
            }),
            ("function", |n| {
                format!("{}cp /a /etc/hosts;{}", "f() { ".repeat(n), "}; ".repeat(n))
            }),
            ("parameter", |n| {
                format!(
                    "cp /a /etc/hosts; echo {}x{}",
                    "${x:-".repeat(n),
                    "}".repeat(n)
                )
            }),
            ("legacy_arithmetic", |n| {
                format!(
                    "cp /a /etc/hosts; echo {}1{}",
                    "$[".repeat(n),
                    "]".repeat(n)
                )
            }),
        ];
        for (name, generate) in gens {
            // The deepest script the parser is still given.
            let mut n = 1;
            while lex(&generate(n + 1)).max_nesting <= PARSER_MAX_NESTING {
                n += 1;
            }
            let inner = generate(n);
            assert!(
                parse_with_brush(&inner).is_some(),
                "{name} at {n} should parse"
            );
            // Wrap it in shells up to MAX_DEPTH, each itself inside blocks at the limit.
            let mut script = inner;
            for level in 1..MAX_DEPTH {
                script = format!(
                    "{}sh <<'E{level}'\n{script}\nE{level}\n{}",
                    "if true; then ".repeat(PARSER_MAX_NESTING - 1),
                    "fi\n".repeat(PARSER_MAX_NESTING - 1)
                );
            }
            let found = on_small_stack(move || find_hosts_writes(&sh(&script), true));
            assert_eq!(found.len(), 1, "{name}: {found:?} ({w})");
        }
    }

    #[test]
    fn hosts_lines_need_a_valid_ip_and_a_name() {
        let text = "# comment\n10.0.0.1\nnot-an-ip host\n::1 localhost ip6-localhost\n  \
                    10.0.0.2\ta  b # c\n300.1.1.1 x\n10.0.0.3/24 y\n";
        assert_eq!(
            parse_hosts_text(text),
            vec![
                entry("::1", &["localhost", "ip6-localhost"]),
                entry("10.0.0.2", &["a", "b"]),
            ]
        );
    }

    #[test]
    fn random_fragment_soup_never_panics_or_overflows() {
        const FRAGMENTS: &[&str] = &[
            "(",
            ")",
            "{ ",
            "}",
            "if true; then ",
            "fi",
            "while x; do ",
            "done",
            "case x in a) ",
            ";;",
            "esac",
            "$(",
            "${x:-",
            "$[",
            "`",
            "\"",
            "'",
            "$'",
            "\\",
            "<<E\n",
            "<<-'E'\n",
            "\nE\n",
            "\tE\n",
            "echo 10.1.2.3 foo bar",
            " >> /etc/hosts",
            " > /etc//hosts",
            " 2>&1",
            " &> /etc/hosts",
            " | tee -a /etc/hosts",
            " | ",
            "; ",
            " && ",
            " || ",
            " & ",
            "\n",
            "# c\n",
            "sh -c ",
            "bash -ec ",
            "sed -i s/a/b/ /etc/hosts",
            "cp /a /etc/",
            " hosts",
            "$X",
            "((",
            "))",
            "<<<",
            "<>",
            ">|",
            " 3>",
            "f() ",
            "=",
            "!",
            "*",
            "~",
        ];
        let mut state: u64 = 42;
        let mut next = move |n: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize % n
        };
        let mut scripts = Vec::new();
        for _ in 0..3000 {
            let len = 1 + next(60);
            let script: String = (0..len).map(|_| FRAGMENTS[next(FRAGMENTS.len())]).collect();
            scripts.push(script);
        }
        let findings = on_small_stack(move || {
            let mut total = 0;
            for script in &scripts {
                for use_parser in [true, false] {
                    let found = find_with(&sh(script), true, use_parser);
                    assert!(found.len() <= MAX_FINDINGS);
                    total += found.len();
                }
            }
            total
        });
        // The soup is full of writes; some must survive the random quoting.
        assert!(findings > 0);
    }
}
