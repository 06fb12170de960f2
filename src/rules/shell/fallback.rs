//! The fallback walk over lexer tokens, for scripts brush-parser does not take.

use super::*;

impl Scan {
    /// Splits lexer tokens into pipelines of simple commands and analyses them. Keywords and
    /// grouping are skipped, which is enough to see every simple command and its redirections.
    pub(super) fn fallback(&mut self, text: &str, tokens: &[Tok], depth: usize) {
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
