//! The brush-parser walk: turns brush's AST into the command model ([`super::Cmd`]).

use std::borrow::Cow;

use brush_parser::ast;

use super::lexer::strip_leading_tabs;
use super::lexer::{Lexer, Tok};
use super::words::{Mode, Value};
use super::{Cmd, ROp, Redir, Scan, Stdin, Text, push_bounded};

impl Scan<'_> {
    /// Walks a list; returns the literal text its commands print to stdout (best effort).
    pub(super) fn walk_list(&mut self, list: &ast::CompoundList, depth: usize) -> String {
        let mut out = String::new();
        for ast::CompoundListItem(and_or, _) in &list.0 {
            if self.budget.exhausted() {
                self.limit("the review's analysis work limit was reached");
                break;
            }
            if let Some(first) = self.walk_pipeline(&and_or.first, depth) {
                push_bounded(&mut out, &first);
            }
            // What follows `&&` or `||` may not run.
            let mark = self.enter();
            for next in &and_or.additional {
                let (ast::AndOr::And(p) | ast::AndOr::Or(p)) = next;
                if let Some(text) = self.walk_pipeline(p, depth) {
                    push_bounded(&mut out, &text);
                }
            }
            self.leave(mark);
        }
        out
    }

    pub(super) fn walk_pipeline(&mut self, pipeline: &ast::Pipeline, depth: usize) -> Option<Text> {
        if let [only] = pipeline.seq.as_slice() {
            return self.walk_command(only, &Stdin::None, depth);
        }
        // Each stage of a pipeline runs in a subshell.
        let mut stdin = Stdin::None;
        let mut out = None;
        for command in &pipeline.seq {
            let mark = self.enter();
            out = self.walk_command(command, &stdin, depth);
            self.leave(mark);
            stdin = out.clone().map_or(Stdin::Unknown, Stdin::Known);
        }
        out
    }

    pub(super) fn walk_command(
        &mut self,
        command: &ast::Command,
        stdin: &Stdin,
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
                // The body runs when called; walk it once, where it is defined.
                let mark = self.enter();
                let out = self.walk_compound(&def.body.0, depth);
                self.apply_compound_redirects(def.body.1.as_ref(), &out, depth);
                self.leave(mark);
                None
            }
            ast::Command::ExtendedTest(..) => None,
        }
    }

    pub(super) fn walk_compound(
        &mut self,
        compound: &ast::CompoundCommand,
        depth: usize,
    ) -> String {
        match compound {
            ast::CompoundCommand::Arithmetic(arith) => {
                // brush-parser 0.4 reads nested subshells `( ( cmd ) )` as `(( expr ))`. Real
                // arithmetic never parses as a write, so reading the text as a script again
                // recovers the commands at no risk. It is strictly shorter, so this ends.
                // The text is strictly shorter, so this ends; brush only gets text nested at
                // most PARSER_MAX_NESTING deep, which bounds the re-parses.
                // Real arithmetic with a shift (`1<<2`) reads as an unterminated heredoc:
                // then only its command substitutions can run.
                let text = &arith.expr.value;
                let mark = self.enter();
                if Lexer::new(text).any(|t| t == Tok::Unterminated) {
                    self.expand(text, Mode::Assign, depth);
                } else {
                    self.script(text, depth);
                }
                self.leave(mark);
                String::new()
            }
            ast::CompoundCommand::ArithmeticForClause(f) => {
                self.branch(|scan| scan.walk_list(&f.body.list, depth))
            }
            ast::CompoundCommand::BraceGroup(group) => self.walk_list(&group.list, depth),
            ast::CompoundCommand::Subshell(sub) => {
                self.branch(|scan| scan.walk_list(&sub.list, depth))
            }
            ast::CompoundCommand::ForClause(f) => self.branch(|scan| {
                let mut values = Vec::new();
                for word in f.values.iter().flatten() {
                    values.extend(scan.expand(&word.value, Mode::Word, depth).fields);
                }
                // One literal value is known in the body; several are not one value.
                let value = match values.as_slice() {
                    [one] if f.values.is_some() => Value::Known(one.as_str().into()),
                    _ => Value::Unknown,
                };
                scan.assign(&f.variable_name, value);
                scan.walk_list(&f.body.list, depth)
            }),
            ast::CompoundCommand::CaseClause(c) => {
                self.expand(&c.value.value, Mode::Word, depth);
                let mut out = String::new();
                for item in &c.cases {
                    if let Some(list) = &item.cmd {
                        let text = self.branch(|scan| scan.walk_list(list, depth));
                        push_bounded(&mut out, &text);
                    }
                }
                out
            }
            ast::CompoundCommand::IfClause(i) => {
                self.walk_list(&i.condition, depth);
                let mut out = self.branch(|scan| scan.walk_list(&i.then, depth));
                for clause in i.elses.iter().flatten() {
                    let text = self.branch(|scan| {
                        if let Some(cond) = &clause.condition {
                            scan.walk_list(cond, depth);
                        }
                        scan.walk_list(&clause.body, depth)
                    });
                    push_bounded(&mut out, &text);
                }
                out
            }
            ast::CompoundCommand::WhileClause(w) | ast::CompoundCommand::UntilClause(w) => self
                .branch(|scan| {
                    scan.walk_list(&w.0, depth);
                    scan.walk_list(&w.1.list, depth)
                }),
            ast::CompoundCommand::Coprocess(c) => self.branch(|scan| {
                scan.walk_command(&c.body, &Stdin::None, depth)
                    .map(|t| t.to_string())
                    .unwrap_or_default()
            }),
        }
    }

    /// Runs `f` in conditional context: what it assigns is unknown afterwards unless unchanged.
    fn branch<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        let mark = self.enter();
        let out = f(self);
        self.leave(mark);
        out
    }

    /// Redirections on a compound command (`{ ...; } >> /etc/hosts`, `done > /etc/hosts`).
    pub(super) fn apply_compound_redirects(
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

    pub(super) fn simple_from_ast<'a>(
        &mut self,
        simple: &'a ast::SimpleCommand,
        depth: usize,
    ) -> Cmd<'a> {
        let mut cmd = Cmd::default();
        let prefix = simple.prefix.as_ref().map(|p| p.0.as_slice());
        let suffix = simple.suffix.as_ref().map(|s| s.0.as_slice());
        for item in prefix.unwrap_or_default() {
            self.item_from_ast(item, &mut cmd, depth);
        }
        if let Some(word) = &simple.word_or_name {
            cmd.words.push(&word.value);
        }
        for item in suffix.unwrap_or_default() {
            self.item_from_ast(item, &mut cmd, depth);
        }
        cmd
    }

    pub(super) fn item_from_ast<'a>(
        &mut self,
        item: &'a ast::CommandPrefixOrSuffixItem,
        cmd: &mut Cmd<'a>,
        depth: usize,
    ) {
        match item {
            ast::CommandPrefixOrSuffixItem::IoRedirect(r) => self.redir_from_ast(r, cmd, depth),
            ast::CommandPrefixOrSuffixItem::Word(w) => cmd.words.push(&w.value),
            ast::CommandPrefixOrSuffixItem::AssignmentWord(_, w) => {
                // `VAR=x cmd`: the assignment is not an argument, but may hide a `$(...)`.
                if cmd.words.is_empty() {
                    cmd.assigns.push(&w.value);
                } else {
                    // `export X=1` style: an argument of the builtin.
                    cmd.words.push(&w.value);
                }
            }
            ast::CommandPrefixOrSuffixItem::ProcessSubstitution(_, sub) => {
                // `>(tee /etc/hosts)` runs a command like any other; the command itself sees
                // a pipe's path.
                self.branch(|scan| scan.walk_list(&sub.list, depth));
                cmd.words.push("/dev/fd/63");
            }
        }
    }

    pub(super) fn redir_from_ast<'a>(
        &mut self,
        redirect: &'a ast::IoRedirect,
        cmd: &mut Cmd<'a>,
        depth: usize,
    ) {
        let (fd, op, target, expand) = match redirect {
            ast::IoRedirect::File(fd, kind, target) => {
                let word = match target {
                    ast::IoFileRedirectTarget::Filename(w) => Cow::Borrowed(w.value.as_str()),
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
                                target: Cow::Borrowed(&w.value),
                                expand: false,
                            });
                        }
                        return;
                    }
                    ast::IoFileRedirectTarget::Fd(_) => return,
                    ast::IoFileRedirectTarget::ProcessSubstitution(_, sub) => {
                        self.branch(|scan| scan.walk_list(&sub.list, depth));
                        if matches!(kind, ast::IoFileRedirectKind::Read) {
                            cmd.redirs.push(Redir {
                                fd: *fd,
                                op: ROp::Read,
                                target: Cow::Borrowed(""),
                                expand: false,
                            });
                        }
                        return;
                    }
                };
                let op = match kind {
                    ast::IoFileRedirectKind::Write => ROp::Out,
                    ast::IoFileRedirectKind::Append => ROp::Append,
                    ast::IoFileRedirectKind::Clobber => ROp::Clobber,
                    ast::IoFileRedirectKind::ReadAndWrite => ROp::ReadWrite,
                    ast::IoFileRedirectKind::Read => ROp::Read,
                    ast::IoFileRedirectKind::DuplicateInput
                    | ast::IoFileRedirectKind::DuplicateOutput => ROp::Other,
                };
                (*fd, op, word, false)
            }
            ast::IoRedirect::HereDocument(fd, doc) => {
                let body = if doc.remove_tabs {
                    Cow::Owned(strip_leading_tabs(&doc.doc.value))
                } else {
                    Cow::Borrowed(doc.doc.value.as_str())
                };
                (*fd, ROp::HereDoc, body, doc.requires_expansion)
            }
            ast::IoRedirect::HereString(fd, w) => {
                (*fd, ROp::HereString, Cow::Borrowed(w.value.as_str()), false)
            }
            ast::IoRedirect::OutputAndError(w, append) => {
                let op = if *append {
                    ROp::OutErrAppend
                } else {
                    ROp::OutErr
                };
                (None, op, Cow::Borrowed(w.value.as_str()), false)
            }
        };
        cmd.redirs.push(Redir {
            fd,
            op,
            target,
            expand,
        });
    }
}

/// Parses with brush-parser; `None` on a syntax error.
pub(super) fn parse_with_brush(text: &str) -> Option<ast::Program> {
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
