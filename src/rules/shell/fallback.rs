//! The fallback walk over lexer tokens, for scripts brush-parser does not take (too large, too
//! deep, or not parseable). Keywords and grouping are only tracked as far as the command model
//! needs: what a group prints (`{ ...; } >> f`) and which assignments are conditional.

use std::borrow::Cow;

use super::lexer::{Lexer, Tok, is_assignment, is_reserved_word, slice};
use super::words::{Mode, Value};
use super::{Cmd, MAX_OUTPUT, PARSER_MAX_NESTING, ROp, Redir, Scan, Stdin, Text, push_bounded};

/// The walk's state between tokens.
#[derive(Default)]
struct Walk<'t> {
    cmd: Cmd<'t>,
    piped: Option<Stdin>,
    /// Output of the open `{ }`, `do done` and `then fi` bodies, for `} >> /etc/hosts`.
    /// Only the innermost few levels collect, and each collects a bounded amount, so that a
    /// deeply nested script cannot make us copy text quadratically.
    groups: Vec<Option<String>>,
    /// Marks of the conditional blocks open (`then`, `else`, `do`, `case`, `{`).
    conds: Vec<usize>,
    /// Marks of `&&`/`||` chains open on this line.
    and_or: Vec<usize>,
    /// A redirection operator waiting for its target word.
    redirect: Option<(Option<i32>, ROp)>,
    /// A `for` header being read.
    for_var: Option<ForVar>,
}

#[derive(Default)]
struct ForVar {
    name: String,
    seen_in: bool,
    values: Vec<String>,
}

impl Scan<'_> {
    /// Analyses `text` token by token.
    pub(super) fn fallback(&mut self, text: &str, depth: usize) {
        let mut w = Walk::default();
        for tok in Lexer::new(text) {
            if self.budget.exhausted() {
                self.limit("the review's analysis work limit was reached");
                return;
            }
            match tok {
                Tok::Word(start, end) => {
                    let word = slice(text, start, end);
                    if let Some(var) = &mut w.for_var {
                        // `for NAME in WORDS`: collect until the separator.
                        if var.name.is_empty() {
                            var.name = word.to_string();
                        } else if word != "in" || var.seen_in {
                            var.values.push(word.to_string());
                        } else {
                            var.seen_in = true;
                        }
                        continue;
                    }
                    if let Some((fd, op)) = w.redirect.take() {
                        w.cmd.redirs.push(Redir {
                            fd,
                            op,
                            target: Cow::Borrowed(word),
                            expand: false,
                        });
                        continue;
                    }
                    if w.cmd.words.is_empty() && is_reserved_word(word) {
                        self.keyword(&mut w, word);
                        continue;
                    }
                    if w.cmd.words.is_empty() && is_assignment(word) {
                        w.cmd.assigns.push(word);
                    } else {
                        w.cmd.words.push(word);
                    }
                }
                Tok::Redirect { fd, op } => w.redirect = Some((fd, op)),
                Tok::HereDoc { fd, body, expand } => w.cmd.redirs.push(Redir {
                    fd,
                    op: ROp::HereDoc,
                    target: Cow::Owned(body),
                    expand,
                }),
                Tok::Pipe => {
                    w.redirect = None;
                    let stdin = w.piped.take().unwrap_or(Stdin::None);
                    let mark = self.enter();
                    let out = self.run_simple(&w.cmd, &stdin, depth);
                    w.cmd.clear();
                    self.leave(mark);
                    w.piped = Some(out.map_or(Stdin::Unknown, Stdin::Known));
                }
                Tok::AndOr => {
                    w.redirect = None;
                    self.finish(&mut w, depth);
                    let mark = self.enter();
                    w.and_or.push(mark);
                }
                Tok::Separator => {
                    // `cmd <(list)` / `cmd >(list)`: the command gets a pipe's path.
                    if w.redirect.take().is_some() && !w.cmd.words.is_empty() {
                        w.cmd.words.push("/dev/fd/63");
                    }
                    if let Some(var) = w.for_var.take() {
                        self.for_loop(var, depth);
                    }
                    self.finish(&mut w, depth);
                    while let Some(mark) = w.and_or.pop() {
                        self.leave(mark);
                    }
                }
                Tok::Unterminated => self.undecided(
                    "a quote, substitution or heredoc never ends; text after it is not analysed"
                        .to_string(),
                ),
            }
        }
        self.finish(&mut w, depth);
        while let Some(mark) = w.and_or.pop() {
            self.leave(mark);
        }
        while let Some(mark) = w.conds.pop() {
            self.leave(mark);
        }
    }

    fn keyword(&mut self, w: &mut Walk<'_>, word: &str) {
        match word {
            "{" | "do" | "then" => {
                let collect = w.groups.len() < PARSER_MAX_NESTING;
                w.groups.push(collect.then(String::new));
                let mark = self.enter();
                w.conds.push(mark);
            }
            "case" => {
                let mark = self.enter();
                w.conds.push(mark);
            }
            "for" | "select" => w.for_var = Some(ForVar::default()),
            "else" | "elif" => {
                if let Some(mark) = w.conds.pop() {
                    self.leave(mark);
                }
                let mark = self.enter();
                w.conds.push(mark);
            }
            "}" | "done" | "fi" => {
                let out = w.groups.pop().flatten();
                if let (Some(Some(outer)), Some(out)) = (w.groups.last_mut(), &out) {
                    push_bounded(outer, out);
                }
                w.cmd.group_out = out;
                if let Some(mark) = w.conds.pop() {
                    self.leave(mark);
                }
            }
            "esac" => {
                if let Some(mark) = w.conds.pop() {
                    self.leave(mark);
                }
            }
            _ => {}
        }
    }

    /// `for NAME in WORDS`: one literal value is known in the body, several are not one value.
    fn for_loop(&mut self, var: ForVar, depth: usize) {
        let mut values = Vec::new();
        for raw in &var.values {
            values.extend(self.expand(raw, Mode::Word, depth).fields);
        }
        let value = match values.as_slice() {
            [one] if var.seen_in => Value::Known(one.as_str().into()),
            _ => Value::Unknown,
        };
        if !var.name.is_empty() {
            // A literal list runs the body, and the variable keeps its last value after it.
            self.assign(&var.name, value);
        }
    }

    /// Runs the command collected so far as the last stage of its pipeline.
    fn finish(&mut self, w: &mut Walk<'_>, depth: usize) {
        let stdin = w.piped.take().unwrap_or(Stdin::None);
        let out: Option<Text> = self.run_simple(&w.cmd, &stdin, depth);
        w.cmd.clear();
        if let (Some(Some(top)), Some(out)) = (w.groups.last_mut(), out.as_deref())
            && top.len() < MAX_OUTPUT
        {
            push_bounded(top, out);
        }
    }
}
