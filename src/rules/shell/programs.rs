//! Program models: what wrappers, shells, builtins, printers, writers and interpreters do
//! with their arguments.
//!
//! Most programs are rows of two tables, [`WRAPPERS`] (run another command) and [`WRITERS`]
//! (write files named by options or operands), over one option parser that knows clustered
//! short options (`-sSLo FILE`), attached values (`-oFILE`, `--output=FILE`) and `--`. A
//! program with its own grammar (sed scripts, `dd of=`, `find -exec`, `tar -C`, inline
//! interpreter code) has a function below the tables.

use super::paths::{Reach, reach_dir};
use super::words::{Escapes, Value, display, interpret};
use super::{
    MAX_OUTPUT, ONE, STAR, Scan, Stdin, Text, UNKNOWN, basename, known_value, parse_hosts_text,
};

/// How a program spells its options.
#[derive(Debug, Clone, Copy)]
pub(super) struct Opts {
    /// Short options that take a value (the rest of the cluster or the next argument).
    pub(super) short: &'static str,
    /// Long options that take a value (`--name=V` or `--name V`).
    pub(super) long: &'static [&'static str],
    /// Options end at the first operand (wrappers), rather than anywhere (GNU writers).
    pub(super) posix: bool,
}

const fn opts(short: &'static str, long: &'static [&'static str]) -> Opts {
    Opts {
        short,
        long,
        posix: false,
    }
}

const fn posix(short: &'static str, long: &'static [&'static str]) -> Opts {
    Opts {
        short,
        long,
        posix: true,
    }
}

/// One option as given: its name (`o` or `output`) and value, if it takes one.
#[derive(Debug, Clone, Copy)]
pub(super) struct Given<'a> {
    pub(super) name: &'a str,
    pub(super) value: Option<&'a str>,
}

/// Options and operands of one invocation; `rest` is where a POSIX parse stopped.
#[derive(Debug, Default)]
pub(super) struct Parsed<'a> {
    pub(super) given: Vec<Given<'a>>,
    pub(super) operands: Vec<&'a str>,
    pub(super) rest: usize,
}

impl<'a> Parsed<'a> {
    fn has(&self, names: &[&str]) -> bool {
        self.given.iter().any(|g| names.contains(&g.name))
    }

    fn values(&self, names: &'a [&'a str]) -> impl Iterator<Item = &'a str> + '_ {
        self.given
            .iter()
            .filter(move |g| names.contains(&g.name))
            .filter_map(|g| g.value)
    }
}

/// Parses `args` as `spec` says. Linear in the arguments.
pub(super) fn parse<'a>(args: &'a [String], spec: &Opts) -> Parsed<'a> {
    let mut p = Parsed::default();
    let mut i = 0;
    while let Some(a) = args.get(i) {
        i += 1;
        if a == "--" {
            p.operands
                .extend(args.get(i..).unwrap_or_default().iter().map(String::as_str));
            p.rest = i;
            return p;
        }
        if let Some(long) = a.strip_prefix("--") {
            let (name, attached) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let value = if attached.is_some() {
                attached
            } else if spec.long.contains(&name) {
                i += 1;
                args.get(i - 1).map(String::as_str)
            } else {
                None
            };
            p.given.push(Given { name, value });
            continue;
        }
        if a.len() > 1 && a.starts_with('-') {
            let body = a.get(1..).unwrap_or("");
            for (pos, ch) in body.char_indices() {
                let name = body.get(pos..pos + ch.len_utf8()).unwrap_or("");
                if spec.short.contains(ch) {
                    let rest = body.get(pos + ch.len_utf8()..).unwrap_or("");
                    let value = if rest.is_empty() {
                        i += 1;
                        args.get(i - 1).map(String::as_str)
                    } else {
                        Some(rest)
                    };
                    p.given.push(Given { name, value });
                    break;
                }
                p.given.push(Given { name, value: None });
            }
            continue;
        }
        if spec.posix {
            p.rest = i - 1;
            p.operands.extend(
                args.get(i - 1..)
                    .unwrap_or_default()
                    .iter()
                    .map(String::as_str),
            );
            return p;
        }
        p.operands.push(a);
    }
    p.rest = args.len();
    p
}

// ----- wrappers -----

/// What a wrapper does after its options.
#[derive(Debug, Clone, Copy)]
enum Then {
    /// Runs its operands as a command after skipping this many (`gosu USER cmd`).
    Command(usize),
    /// Runs its operands as a command, or the value of one of these options with `sh -c`.
    CommandOrShell(usize, &'static [&'static str]),
    /// Runs only the value of one of these options with `sh -c` (`su -c`, `script -c`).
    Shell(&'static [&'static str]),
}

/// A program that runs another command.
struct Wrapper {
    names: &'static [&'static str],
    opts: Opts,
    then: Then,
    /// Options after which it runs nothing (`command -v`).
    inert: &'static [&'static str],
}

const fn wrap(names: &'static [&'static str], opts: Opts, then: Then) -> Wrapper {
    Wrapper {
        names,
        opts,
        then,
        inert: &[],
    }
}

/// Wrappers: add a row to teach the analysis a new one.
const WRAPPERS: &[Wrapper] = &[
    wrap(&["exec"], posix("a", &[]), Then::Command(0)),
    Wrapper {
        inert: &["v", "V"],
        ..wrap(&["command"], posix("", &[]), Then::Command(0))
    },
    wrap(
        &["builtin", "nohup", "time", "catatonit"],
        posix("", &[]),
        Then::Command(0),
    ),
    wrap(&["setsid"], posix("", &[]), Then::Command(0)),
    wrap(
        &["stdbuf"],
        posix("ioe", &["input", "output", "error"]),
        Then::Command(0),
    ),
    wrap(&["doas"], posix("uC", &[]), Then::Command(0)),
    wrap(
        &["sudo"],
        posix(
            "ugCDhprtUT",
            &[
                "user",
                "group",
                "close-from",
                "chdir",
                "host",
                "prompt",
                "role",
                "type",
                "other-user",
                "command-timeout",
            ],
        ),
        Then::Command(0),
    ),
    wrap(&["nice"], posix("n", &["adjustment"]), Then::Command(0)),
    wrap(
        &["ionice"],
        posix("cnpPu", &["class", "classdata", "pid", "pgid", "uid"]),
        Then::Command(0),
    ),
    wrap(
        &["chrt"],
        posix("T", &["sched-runtime", "sched-period", "sched-deadline"]),
        Then::Command(1),
    ),
    wrap(&["taskset"], posix("", &[]), Then::Command(1)),
    wrap(
        &["timeout"],
        posix("sk", &["signal", "kill-after"]),
        Then::Command(1),
    ),
    wrap(&["tini", "tini-static"], posix("ep", &[]), Then::Command(0)),
    wrap(&["dumb-init"], posix("r", &["rewrite"]), Then::Command(0)),
    wrap(
        &["gosu", "su-exec", "s6-setuidgid"],
        posix("", &[]),
        Then::Command(1),
    ),
    wrap(&["chpst"], posix("uUbenlmdostv", &[]), Then::Command(0)),
    wrap(
        &["chroot"],
        posix("", &["userspec", "groups"]),
        Then::Command(1),
    ),
    wrap(
        &["flock"],
        posix("wEc", &["timeout", "conflict-exit-code", "command"]),
        Then::CommandOrShell(1, &["c", "command"]),
    ),
    wrap(
        &["script"],
        opts(
            "cTtOBIEm",
            &[
                "command",
                "timing",
                "log-out",
                "log-in",
                "log-io",
                "log-timing",
                "echo",
                "logging-format",
            ],
        ),
        Then::Shell(&["c", "command"]),
    ),
    wrap(
        &["unshare"],
        posix(
            "SGRw",
            &[
                "setuid",
                "setgid",
                "root",
                "wd",
                "propagation",
                "setgroups",
                "map-user",
                "map-group",
                "map-users",
                "map-groups",
                "monotonic",
                "boottime",
            ],
        ),
        Then::Command(0),
    ),
    wrap(
        &["nsenter"],
        posix(
            "tSGwr",
            &["target", "setuid", "setgid", "wd", "root", "env"],
        ),
        Then::Command(0),
    ),
    wrap(
        &["strace", "ltrace"],
        posix("abeEIoOpPsSuUX", &[]),
        Then::Command(0),
    ),
    wrap(
        &["setpriv"],
        posix(
            "",
            &[
                "reuid",
                "regid",
                "ruid",
                "rgid",
                "euid",
                "egid",
                "groups",
                "inh-caps",
                "ambient-caps",
                "bounding-set",
                "securebits",
                "pdeathsig",
                "selinux-label",
                "apparmor-profile",
                "landlock-access",
                "landlock-rule",
                "seccomp-filter",
            ],
        ),
        Then::Command(0),
    ),
    wrap(
        &["su"],
        opts(
            "cgGsw",
            &[
                "command",
                "session-command",
                "group",
                "supp-group",
                "shell",
                "whitelist-environment",
            ],
        ),
        Then::Shell(&["c", "command", "session-command"]),
    ),
    wrap(
        &["runuser"],
        opts(
            "cgGsuw",
            &[
                "command",
                "session-command",
                "group",
                "supp-group",
                "shell",
                "user",
                "whitelist-environment",
            ],
        ),
        Then::CommandOrShell(0, &["c", "command", "session-command"]),
    ),
    wrap(&["busybox", "toybox"], posix("", &[]), Then::Command(0)),
    wrap(&["ip"], posix("", &[]), Then::Command(0)),
];

/// What a shell with `args` runs.
pub(super) enum ShellRun<'a> {
    /// `-c SCRIPT [$0 [$1...]]`.
    Script {
        script: &'a str,
        params: &'a [String],
    },
    /// A script file (or a path to a pipe, as `/dev/stdin` or a process substitution).
    File(&'a str),
    /// The script is read from standard input.
    Stdin,
}

/// Parses a shell's options as bash and dash do: clusters of flags (`-euxc`), options that
/// take the next argument (`-o pipefail`, `-O extglob`, `+o`), long options, `--`. With `-c`
/// the first operand is the script, whatever the flags before it.
pub(super) fn shell_args(args: &[String]) -> ShellRun<'_> {
    let mut has_c = false;
    let mut read_stdin = false;
    let mut i = 0;
    while let Some(a) = args.get(i) {
        if a == "--" || a == "-" {
            i += 1;
            break;
        }
        if a.starts_with("--") {
            i += if matches!(a.as_str(), "--rcfile" | "--init-file") {
                2
            } else {
                1
            };
            continue;
        }
        if (a.starts_with('-') || a.starts_with('+')) && a.len() > 1 {
            i += 1;
            for f in a.bytes().skip(1) {
                match f {
                    b'c' if a.starts_with('-') => has_c = true,
                    b's' if a.starts_with('-') => read_stdin = true,
                    // `-o NAME`, `-O NAME` take the next argument, even inside a cluster.
                    b'o' | b'O' => i += 1,
                    _ => {}
                }
            }
            continue;
        }
        break;
    }
    match args.get(i) {
        Some(script) if has_c => ShellRun::Script {
            script,
            params: args.get(i + 1..).unwrap_or_default(),
        },
        Some(file) if !read_stdin => ShellRun::File(file),
        _ if has_c => ShellRun::File(""),
        _ => ShellRun::Stdin,
    }
}

const SHELLS: &[&str] = &[
    "sh", "bash", "ash", "dash", "zsh", "ksh", "mksh", "lksh", "oksh", "loksh", "yash", "posh",
    "rbash", "hush",
];

fn is_shell(name: &str) -> bool {
    SHELLS.contains(&name)
}

// ----- writers -----

/// Which operands a writer writes.
#[derive(Debug, Clone, Copy)]
enum Operands {
    None,
    All,
    Second,
}

/// A program that writes files named by options or operands.
struct Writer {
    names: &'static [&'static str],
    opts: Opts,
    /// Options whose value is a file written.
    outputs: &'static [&'static str],
    operands: Operands,
    /// The message; `{}` is the program's name.
    how: &'static str,
}

const fn writer(
    names: &'static [&'static str],
    opts: Opts,
    outputs: &'static [&'static str],
    operands: Operands,
    how: &'static str,
) -> Writer {
    Writer {
        names,
        opts,
        outputs,
        operands,
        how,
    }
}

/// Writers: add a row to teach the analysis a new one.
const WRITERS: &[Writer] = &[
    writer(
        &["truncate"],
        opts("sr", &["size", "reference"]),
        &[],
        Operands::All,
        "`{}` resizes",
    ),
    writer(
        &["rm", "unlink"],
        opts("", &[]),
        &[],
        Operands::All,
        "`{}` deletes",
    ),
    writer(
        &["shred"],
        opts("nsu", &["iterations", "size", "random-source", "remove"]),
        &[],
        Operands::All,
        "`{}` overwrites",
    ),
    writer(
        &["sponge"],
        opts("", &[]),
        &[],
        Operands::All,
        "`{}` overwrites",
    ),
    writer(
        &["sort"],
        opts(
            "okStT",
            &[
                "output",
                "key",
                "buffer-size",
                "field-separator",
                "temporary-directory",
                "parallel",
                "batch-size",
                "compress-program",
                "files0-from",
                "random-source",
            ],
        ),
        &["o", "output"],
        Operands::None,
        "`{} -o` writes",
    ),
    writer(
        &["uniq"],
        opts(
            "fsw",
            &[
                "skip-fields",
                "skip-chars",
                "check-chars",
                "group",
                "all-repeated",
            ],
        ),
        &[],
        Operands::Second,
        "`{}` writes its output file",
    ),
    writer(
        &["xxd"],
        opts("cglosn", &["cols", "groupsize", "len", "seek", "name"]),
        &[],
        Operands::Second,
        "`{}` writes its output file",
    ),
    writer(
        &["iconv"],
        opts("fto", &["from-code", "to-code", "output"]),
        &["o", "output"],
        Operands::None,
        "`{} -o` writes",
    ),
    writer(
        &["patch"],
        opts(
            "pFoirBDdVYzg",
            &[
                "strip",
                "fuzz",
                "output",
                "input",
                "reject-file",
                "directory",
                "suffix",
                "backup-if-mismatch",
            ],
        ),
        &["o", "output"],
        Operands::None,
        "`{}` edits",
    ),
    writer(
        &["ed", "ex", "red"],
        opts("p", &["prompt"]),
        &[],
        Operands::All,
        "`{}` edits",
    ),
    writer(
        &["curl"],
        opts(
            "AbcCdDeEFHKmoPQrtTuUwxXyYz",
            &[
                "output",
                "user-agent",
                "cookie",
                "cookie-jar",
                "data",
                "data-raw",
                "data-binary",
                "data-urlencode",
                "dump-header",
                "header",
                "config",
                "max-time",
                "proxy",
                "request",
                "url",
                "write-out",
                "upload-file",
                "trace",
                "trace-ascii",
                "stderr",
                "etag-save",
                "output-dir",
                "connect-timeout",
                "retry",
                "user",
                "form",
                "referer",
                "range",
                "cert",
                "key",
                "cacert",
                "resolve",
                "libcurl",
            ],
        ),
        &[
            "o",
            "output",
            "D",
            "dump-header",
            "c",
            "cookie-jar",
            "trace",
            "trace-ascii",
            "stderr",
            "etag-save",
            "libcurl",
        ],
        Operands::None,
        "`{} -o` overwrites",
    ),
    writer(
        &["wget"],
        opts(
            "OoaePtTwQUYBdDi",
            &[
                "output-document",
                "output-file",
                "append-output",
                "execute",
                "directory-prefix",
                "tries",
                "timeout",
                "wait",
                "quota",
                "user-agent",
                "input-file",
                "header",
                "post-data",
                "user",
                "password",
            ],
        ),
        &[
            "O",
            "output-document",
            "o",
            "output-file",
            "a",
            "append-output",
        ],
        Operands::None,
        "`{} -O` overwrites",
    ),
    writer(
        &["openssl"],
        opts("", &[]),
        &[],
        Operands::None,
        "`{} -out` writes",
    ),
    writer(
        &["strace", "ltrace", "time"],
        posix("abeEIoOpPsSuUX", &["output"]),
        &["o", "output"],
        Operands::None,
        "`{} -o` writes its log to it",
    ),
];

fn find_writer(name: &str) -> Option<&'static Writer> {
    WRITERS.iter().find(|w| w.names.contains(&name))
}

// ----- interpreters -----

/// Interpreters whose inline code the analysis reads: names (a prefix for versioned names)
/// and the options that carry code.
const INTERPRETERS: &[(&str, &str, &[&str])] = &[
    ("python", "c", &[]),
    ("pypy", "c", &[]),
    ("perl", "eE", &[]),
    ("ruby", "e", &[]),
    ("node", "ep", &["eval", "print"]),
    ("nodejs", "ep", &["eval", "print"]),
    ("php", "r", &[]),
    ("lua", "e", &[]),
];

/// Words in inline code that open or change a file for writing.
const WRITE_WORDS: &[&str] = &[
    "write", "append", "truncate", "unlink", "remove", "rename", "replace", "copy", "move",
    "symlink", "chmod", "chown", "o_wronly", "o_rdwr", "o_creat", "'w'", "\"w\"", "'a'", "\"a\"",
    "'w+'", "\"w+\"", "'a+'", "\"a+\"", "'r+'", "\"r+\"", "'wb'", "\"wb\"", "'ab'", "\"ab\"",
    "\">", "'>", "\"+<", "'+<",
];

/// Words in inline code that run other programs.
const EXEC_WORDS: &[&str] = &["system", "popen", "subprocess", "exec", "spawn", "`", "qx"];

impl Scan<'_> {
    /// Interprets one command line (already expanded words): builtins, wrappers, shells,
    /// writers, printers. Returns its literal stdout when known.
    pub(super) fn exec(&mut self, argv: &[String], stdin: &Stdin, depth: usize) -> Option<Text> {
        let mut argv = argv;
        // Each round removes at least the wrapper's name, so this ends within argv.len() rounds.
        loop {
            let (program, args) = argv.split_first()?;
            if program.contains(UNKNOWN) {
                if args.iter().any(|a| self.reach(a) != Reach::No) {
                    self.undecided(format!(
                        "runs a program whose name is not literal (`{}`) with the hosts file as a possible argument",
                        display(program)
                    ));
                }
                return None;
            }
            let name = basename(program);
            if let Some(w) = WRAPPERS.iter().find(|w| w.names.contains(&name)) {
                let p = parse(args, &w.opts);
                if p.has(w.inert) {
                    return None;
                }
                if name == "busybox" && args.first().is_some_and(|a| a.starts_with('-')) {
                    return None;
                }
                let shell_opts = match w.then {
                    Then::Shell(o) | Then::CommandOrShell(_, o) => o,
                    Then::Command(_) => &[],
                };
                if let Some(script) = p.values(shell_opts).next() {
                    let script = script.to_string();
                    self.shell_script(&script, &[], depth);
                    return None;
                }
                // `flock FILE -c CMD`: the option comes after the lock file.
                if name == "flock"
                    && let [_, c, script, ..] = p.operands.as_slice()
                    && matches!(*c, "-c" | "--command")
                {
                    let script = script.to_string();
                    self.shell_script(&script, &[], depth);
                    return None;
                }
                if let Some(w) = find_writer(name) {
                    self.writer(name, w, args);
                }
                let skip = match w.then {
                    Then::Command(n) | Then::CommandOrShell(n, _) => n,
                    Then::Shell(_) => return None,
                };
                // `runuser -u USER cmd` runs a command; `runuser USER` alone runs a shell.
                let skip = if name == "runuser" && !p.has(&["u", "user"]) {
                    return None;
                } else {
                    skip
                };
                argv = args.get(p.rest + skip..)?;
                continue;
            }
            return match name {
                "env" => {
                    argv = self.env_wrapper(args, depth)?;
                    continue;
                }
                "capsh" => {
                    // `capsh [opts] -- ARGS` runs `bash ARGS`; `==` runs capsh again.
                    let pos = args.iter().position(|a| a == "--" || a == "==")?;
                    if args.get(pos).is_some_and(|a| a == "==") {
                        let again: Vec<String> = std::iter::once("capsh".to_string())
                            .chain(args.iter().skip(pos + 1).cloned())
                            .collect();
                        return self.exec(&again, stdin, depth);
                    }
                    let bash: Vec<String> = std::iter::once("bash".to_string())
                        .chain(args.iter().skip(pos + 1).cloned())
                        .collect();
                    self.exec(&bash, stdin, depth)
                }
                "watch" => {
                    let p = parse(args, &posix("nqd", &["interval", "equexit", "differences"]));
                    let rest = args.get(p.rest..).unwrap_or_default();
                    if p.has(&["x", "exec"]) {
                        argv = rest;
                        continue;
                    }
                    let script = rest.join(" ");
                    self.shell_script(&script, &[], depth);
                    None
                }
                "xargs" => self.xargs(args, stdin, depth),
                "find" => {
                    self.find(args, depth);
                    None
                }
                n if is_shell(n) => {
                    self.shell(args, stdin, depth);
                    None
                }
                _ => self.program(name, args, stdin, depth),
            };
        }
    }

    /// A shell invoked with `args`.
    fn shell(&mut self, args: &[String], stdin: &Stdin, depth: usize) {
        match shell_args(args) {
            ShellRun::Script { script, params } => self.shell_script(script, params, depth),
            ShellRun::File(file) => {
                if file.contains(UNKNOWN) || is_pipe_path(file) {
                    self.script_from_pipe(stdin, depth, "runs a script");
                }
            }
            ShellRun::Stdin => self.script_from_stdin(stdin, depth, "runs a script"),
        }
    }

    /// A script read from standard input (`| sh`, `sh /dev/stdin`, `source /dev/fd/63`).
    fn script_from_stdin(&mut self, stdin: &Stdin, depth: usize, what: &str) {
        match stdin {
            Stdin::Known(text) => {
                let text = text.clone();
                self.shell_script(&text, &[], depth);
            }
            Stdin::Unknown => self.undecided(format!(
                "{what} from a pipe or file whose text is not literal"
            )),
            Stdin::None => {}
        }
    }

    /// A script read from a path that is a pipe (`/dev/stdin`, `/dev/fd/63` of a process
    /// substitution): its text is the piped text, or unknown.
    fn script_from_pipe(&mut self, stdin: &Stdin, depth: usize, what: &str) {
        match stdin {
            Stdin::Known(_) => self.script_from_stdin(stdin, depth, what),
            Stdin::Unknown | Stdin::None => self.undecided(format!(
                "{what} from a pipe or file whose text is not literal"
            )),
        }
    }

    /// `env [-i] [-u NAME] [-C DIR] [-S STRING] [NAME=VALUE]... [CMD...]`; returns the command.
    fn env_wrapper<'x>(&mut self, args: &'x [String], depth: usize) -> Option<&'x [String]> {
        let mut n = 0;
        while let Some(a) = args.get(n) {
            if a == "--" {
                n += 1;
                break;
            }
            if let Some(split) = a
                .strip_prefix("--split-string=")
                .or_else(|| a.strip_prefix("-S").filter(|s| !s.is_empty()))
            {
                self.split_string(split, args.get(n + 1..).unwrap_or_default(), depth);
                return None;
            }
            if a == "-S" || a == "--split-string" {
                let split = args.get(n + 1).map(String::as_str).unwrap_or("");
                self.split_string(split, args.get(n + 2..).unwrap_or_default(), depth);
                return None;
            }
            if matches!(a.as_str(), "-C" | "--chdir") {
                if let Some(dir) = args.get(n + 1) {
                    let value = self.resolve_dir(dir);
                    self.assign("PWD", value);
                }
                n += 2;
            } else if matches!(a.as_str(), "-u" | "--unset") {
                n += 2;
            } else if (a.starts_with('-') && a.len() > 1) || super::lexer::is_assignment(a) {
                n += 1;
            } else {
                break;
            }
        }
        args.get(n..)
    }

    /// `env -S 'STRING' ARGS`: the string is split into words, then the args follow.
    fn split_string(&mut self, split: &str, rest: &[String], depth: usize) {
        // env's own splitting knows quotes and backslashes much as the shell does; reading it
        // as a script with the remaining args as words covers what it can run.
        let mut script = split.to_string();
        for a in rest {
            script.push(' ');
            script.push_str(&quote(a));
        }
        self.script(&script, depth + 1);
    }

    /// The working directory after `cd DIR`.
    fn resolve_dir(&self, dir: &str) -> Value {
        if dir.contains(UNKNOWN) || dir.is_empty() || dir == "-" {
            return Value::Unknown;
        }
        match super::paths::absolute(dir, &self.cwd()) {
            Some(abs) if !abs.contains(UNKNOWN) => {
                Value::Known(super::paths::normalize(&abs).0.into())
            }
            _ => Value::Unknown,
        }
    }

    /// `xargs [opts] CMD ARGS`: runs CMD with words read from standard input.
    fn xargs(&mut self, args: &[String], stdin: &Stdin, depth: usize) -> Option<Text> {
        let p = parse(
            args,
            &posix(
                "EeIiLlnPsda",
                &[
                    "eof",
                    "replace",
                    "max-lines",
                    "max-args",
                    "max-procs",
                    "max-chars",
                    "delimiter",
                    "arg-file",
                    "process-slot-var",
                ],
            ),
        );
        let mut cmd: Vec<String> = args.get(p.rest..).unwrap_or_default().to_vec();
        if cmd.is_empty() {
            cmd.push("echo".to_string());
        }
        let from_file = p.has(&["a", "arg-file"]);
        let words: Vec<String> = match (stdin.text(), from_file) {
            (Some(text), false) => text.split_whitespace().map(str::to_string).collect(),
            _ => vec![UNKNOWN.to_string()],
        };
        let replace: Option<&str> = p
            .given
            .iter()
            .find(|g| matches!(g.name, "I" | "replace" | "i"))
            .map(|g| g.value.unwrap_or("{}"));
        match replace {
            Some(r) => {
                for w in words.iter().take(64) {
                    let run: Vec<String> = cmd.iter().map(|a| a.replace(r, w)).collect();
                    self.exec(&run, &Stdin::None, depth);
                }
            }
            None => {
                cmd.extend(words);
                self.exec(&cmd, &Stdin::None, depth);
            }
        }
        None
    }

    /// `find START... EXPR`: `-exec`/`-execdir`/`-ok` commands run on found paths, `-fprint`
    /// writes a file, `-delete` deletes found files.
    fn find(&mut self, args: &[String], depth: usize) {
        let starts: Vec<&String> = args
            .iter()
            .take_while(|a| !a.starts_with('-') && !matches!(a.as_str(), "(" | "!" | ")"))
            .collect();
        let found = match starts.as_slice() {
            [one] if !one.starts_with('-') => format!("{}/{UNKNOWN}", one.trim_end_matches('/')),
            [] => format!("./{UNKNOWN}"),
            _ => UNKNOWN.to_string(),
        };
        let mut i = starts.len();
        while let Some(a) = args.get(i) {
            i += 1;
            match a.as_str() {
                "-exec" | "-execdir" | "-ok" | "-okdir" => {
                    let mut run = Vec::new();
                    while let Some(w) = args.get(i) {
                        i += 1;
                        if w == ";" || w == "+" {
                            break;
                        }
                        run.push(w.replace("{}", &found));
                    }
                    self.exec(&run, &Stdin::None, depth);
                }
                "-fprint" | "-fprint0" | "-fls" | "-fprintf" => {
                    if let Some(file) = args.get(i) {
                        let file = file.clone();
                        self.target(&file, &format!("`find {a}` writes"), Vec::new);
                    }
                    i += if a == "-fprintf" { 2 } else { 1 };
                }
                "-delete" => {
                    let f = found.clone();
                    self.target(&f, "`find -delete` deletes", Vec::new);
                }
                _ => {}
            }
        }
    }

    /// A writer from the table: its output options and operands.
    fn writer(&mut self, name: &str, w: &Writer, args: &[String]) {
        let p = parse(args, &w.opts);
        let mut targets: Vec<&str> = p.values(w.outputs).collect();
        match w.operands {
            Operands::None => {}
            Operands::All => targets.extend(p.operands.iter().copied()),
            Operands::Second => targets.extend(p.operands.get(1).copied()),
        }
        if name == "openssl" {
            // openssl spells its options with one dash: `-out FILE`.
            for pair in args.windows(2) {
                if matches!(pair[0].as_str(), "-out" | "-keyout" | "-certout") {
                    targets.push(&pair[1]);
                }
            }
        }
        let how = w.how.replace("{}", name);
        for t in targets {
            self.target(t, &how, Vec::new);
        }
        if name == "curl" || name == "wget" {
            self.download_into_dir(name, &p);
        }
    }

    /// Every program that is not a wrapper or a shell.
    fn program(
        &mut self,
        name: &str,
        args: &[String],
        stdin: &Stdin,
        depth: usize,
    ) -> Option<Text> {
        if let Some(w) = find_writer(name) {
            self.writer(name, w, args);
            return None;
        }
        if let Some((_, code_opts, long)) = INTERPRETERS.iter().find(|(prefix, _, _)| {
            name.starts_with(prefix)
                && name[prefix.len()..]
                    .bytes()
                    .all(|c| c.is_ascii_digit() || c == b'.')
        }) {
            let p = parse(args, &opts(code_opts, long));
            let code: Vec<String> = p
                .given
                .iter()
                .filter(|g| code_opts.contains(g.name) || long.contains(&g.name))
                .filter_map(|g| g.value.map(str::to_string))
                .collect();
            for c in &code {
                self.inline_code(name, c, depth);
            }
            if name.starts_with("perl") {
                self.perl_in_place(args);
            }
            return None;
        }
        match name {
            "echo" => {
                let out = echo_output(args);
                self.charge(out.len());
                Some(out.into())
            }
            "printf" => {
                let out = printf_output(args);
                self.charge(out.len());
                Some(out.into())
            }
            "cat" => {
                let reads_stdin = args
                    .iter()
                    .filter(|a| !(a.starts_with('-') && a.len() > 1))
                    .all(|a| a == "-");
                if reads_stdin {
                    stdin.text().cloned()
                } else {
                    None
                }
            }
            "tee" => {
                let p = parse(args, &opts("", &["output-error"]));
                let how = if p.has(&["a", "append"]) {
                    "`tee -a` appends"
                } else {
                    "`tee` overwrites"
                };
                for f in p.operands {
                    self.target(f, how, || {
                        stdin
                            .text()
                            .map(|t| parse_hosts_text(t))
                            .unwrap_or_default()
                    });
                }
                stdin.text().cloned()
            }
            "sed" | "gsed" => {
                self.sed(args, depth);
                None
            }
            "awk" | "gawk" | "mawk" | "nawk" => {
                self.awk(args, depth);
                None
            }
            "cp" | "mv" | "install" | "ln" | "rsync" => {
                self.copy(name, args);
                None
            }
            "dd" => {
                for a in args {
                    if let Some(of) = a.strip_prefix("of=") {
                        self.target(of, "`dd of=` overwrites", Vec::new);
                    }
                }
                None
            }
            "tar" | "bsdtar" => {
                self.tar(args);
                None
            }
            "mount" => {
                let p = parse(
                    args,
                    &opts(
                        "otOLUB",
                        &[
                            "options",
                            "types",
                            "test-opts",
                            "label",
                            "uuid",
                            "bind",
                            "rbind",
                            "move",
                        ],
                    ),
                );
                if let Some(last) = p.operands.last() {
                    let last = last.to_string();
                    self.target(&last, "`mount --bind` covers", Vec::new);
                }
                None
            }
            "cd" | "pushd" | "chdir" => {
                let dir = args
                    .iter()
                    .find(|a| !a.starts_with('-') || a.as_str() == "-");
                let value = match dir {
                    Some(d) => self.resolve_dir(d),
                    None => Value::Unknown,
                };
                self.assign("PWD", value);
                None
            }
            "export" | "local" | "declare" | "typeset" | "readonly" => {
                for a in args {
                    if let Some((name, value)) = a.split_once('=')
                        && super::lexer::is_assignment(a)
                    {
                        let name = name.trim_end_matches('+').to_string();
                        let value = literal_globs(value);
                        self.assign(&name, known_value(value));
                    }
                }
                None
            }
            "unset" => {
                for a in args.iter().filter(|a| !a.starts_with('-')) {
                    self.assign(a, Value::Unset);
                }
                None
            }
            "read" | "mapfile" | "readarray" | "getopts" => {
                for a in args.iter().filter(|a| !a.starts_with('-')) {
                    self.assign(a, Value::Unknown);
                }
                None
            }
            "set" => {
                if let Some(pos) = args.iter().position(|a| a == "--") {
                    let params: Vec<Value> = std::iter::once(Value::Unknown)
                        .chain(args.get(pos + 1..).unwrap_or_default().iter().map(|a| {
                            if a.contains(UNKNOWN) {
                                Value::Unknown
                            } else {
                                Value::Known(a.as_str().into())
                            }
                        }))
                        .collect();
                    self.args = Some(params);
                }
                None
            }
            "shift" => {
                if let Some(args) = self.args.as_mut()
                    && args.len() > 1
                {
                    args.remove(1);
                }
                None
            }
            "eval" => {
                let script = args.join(" ");
                let mark = self.enter();
                self.script(&script, depth + 1);
                self.leave(mark);
                None
            }
            "source" | "." => {
                match args.first() {
                    Some(file) if file.contains(UNKNOWN) => self.undecided(format!(
                        "sources `{}`, a file it cannot resolve",
                        display(file)
                    )),
                    Some(file) if is_pipe_path(file) => {
                        self.script_from_pipe(stdin, depth, "sources text")
                    }
                    _ => {}
                }
                None
            }
            "alias" | "trap" => {
                // Their text runs later; analyse it where it is defined.
                for a in args.iter().filter(|a| !a.starts_with('-')) {
                    let text = if name == "alias" {
                        a.split_once('=').map_or("", |(_, v)| v)
                    } else {
                        a.as_str()
                    };
                    let text = text.to_string();
                    self.script(&text, depth + 1);
                    if name == "trap" {
                        break;
                    }
                }
                None
            }
            _ => None,
        }
    }

    /// `curl -O URL` / `wget -P DIR URL`: the file is named after the URL, in a directory.
    fn download_into_dir(&mut self, name: &str, p: &Parsed<'_>) {
        let remote_name = name == "curl" && p.has(&["O", "remote-name", "remote-name-all"]);
        let prefix = if name == "wget" && !p.has(&["O", "output-document"]) {
            Some(p.values(&["P", "directory-prefix"]).next().unwrap_or("."))
        } else {
            None
        };
        let dir = match (remote_name, prefix) {
            (true, _) => p.values(&["output-dir"]).next().unwrap_or("."),
            (false, Some(dir)) => dir,
            _ => return,
        };
        for url in &p.operands {
            let file = url.rsplit('/').next().unwrap_or("");
            let file = file.split(['?', '#']).next().unwrap_or("");
            let path = format!("{dir}/{file}");
            self.target(&path, &format!("`{name}` downloads into"), Vec::new);
        }
    }

    /// `cp`/`mv`/`install`/`ln`/`rsync`: the target, or each source copied into a directory.
    fn copy(&mut self, name: &str, args: &[String]) {
        let spec = match name {
            "install" => opts(
                "mogSt",
                &["mode", "owner", "group", "suffix", "target-directory"],
            ),
            "rsync" => opts(
                "efB",
                &["rsh", "filter", "chmod", "exclude", "include", "block-size"],
            ),
            _ => opts("St", &["suffix", "target-directory"]),
        };
        let p = parse(args, &spec);
        if name == "install" && p.has(&["d", "directory"]) {
            return;
        }
        let how = match name {
            "cp" => "`cp` overwrites",
            "mv" => "`mv` replaces",
            "install" => "`install` overwrites",
            "rsync" => "`rsync` overwrites",
            _ => "`ln` replaces it with a link",
        };
        let tree =
            name == "mv" || name == "rsync" || p.has(&["r", "R", "a", "recursive", "archive"]);
        let (dir, sources): (Option<&str>, &[&str]) =
            match p.values(&["t", "target-directory"]).next() {
                Some(dir) => (Some(dir), &p.operands),
                None => match p.operands.split_last() {
                    Some((last, sources)) if !sources.is_empty() => {
                        self.target(last, how, Vec::new);
                        (Some(*last), sources)
                    }
                    _ => return,
                },
            };
        let Some(dir) = dir else { return };
        let cwd = self.cwd();
        let (is_etc, holds_etc) = reach_dir(dir, &cwd);
        for s in sources {
            let trimmed = s.trim_end_matches('/');
            let base = trimmed.rsplit('/').next().unwrap_or(trimmed);
            // A file named hosts copied into /etc.
            let copied = format!("{}/{base}", dir.trim_end_matches('/'));
            if !base.is_empty() && base != "." {
                match is_etc {
                    Reach::Hosts | Reach::Maybe => self.target(&copied, how, Vec::new),
                    Reach::No => {}
                }
            }
            // A tree copied into /etc or /, whose files we cannot see.
            if tree
                && holds_etc != Reach::No
                && (base == "." || base == "etc" || base.contains(UNKNOWN) || is_etc != Reach::No)
            {
                self.undecided(format!(
                    "`{name}` copies the tree `{}` into `{}`, which holds the hosts file; its files are unknown",
                    display(s),
                    display(dir)
                ));
            }
        }
        if name == "ln" && p.has(&["s", "symbolic"]) {
            for s in sources {
                let (etc, above) = reach_dir(s, &cwd);
                if self.reach(s) != Reach::No || etc != Reach::No || above != Reach::No {
                    self.undecided(format!(
                        "`ln -s` links to `{}`; writes through the link are not followed",
                        display(s)
                    ));
                }
            }
        }
    }

    /// `tar -x` into `/` or `/etc` (`-C DIR` or the working directory).
    fn tar(&mut self, args: &[String]) {
        // Old-style `tar xzf F` has its flags in the first word.
        let mut args = args.to_vec();
        if let Some(first) = args.first_mut()
            && !first.starts_with('-')
            && first.bytes().all(|c| c.is_ascii_alphabetic())
        {
            first.insert(0, '-');
        }
        let p = parse(
            &args,
            &opts(
                "CfbFgHKLNTVX",
                &[
                    "directory",
                    "file",
                    "blocking-factor",
                    "info-script",
                    "listed-incremental",
                    "owner",
                    "group",
                    "mode",
                    "transform",
                    "exclude",
                    "files-from",
                    "exclude-from",
                    "to-command",
                    "use-compress-program",
                ],
            ),
        );
        if !p.has(&["x", "extract", "get"]) {
            return;
        }
        let dir = p.values(&["C", "directory"]).last().map(str::to_string);
        let dir_value = match &dir {
            Some(d) => self.resolve_dir(d),
            None => self.cwd(),
        };
        let Value::Known(dir_text) = dir_value else {
            if dir.is_some() {
                self.undecided("`tar -x` extracts into a directory it cannot resolve".to_string());
            }
            return;
        };
        let members: Vec<&str> = p
            .operands
            .iter()
            .copied()
            .filter(|o| Some(*o) != p.values(&["f", "file"]).next())
            .collect();
        let (is_etc, holds) = reach_dir(&dir_text, &Value::Unknown);
        if holds == Reach::No {
            return;
        }
        if members.is_empty() {
            self.undecided(format!(
                "`tar -x` extracts an archive into `{dir_text}`, which holds the hosts file; its members are unknown"
            ));
        } else {
            for m in members {
                let path = format!("{dir_text}/{m}");
                self.target(&path, "`tar -x` extracts over", Vec::new);
            }
        }
        let _ = is_etc;
    }

    /// `perl -i` edits its file operands in place.
    fn perl_in_place(&mut self, args: &[String]) {
        let p = parse(args, &posix("eEIMmlx0C", &[]));
        if !p
            .given
            .iter()
            .any(|g| g.name == "i" || g.name.starts_with('i'))
        {
            return;
        }
        let has_code = p.has(&["e", "E"]);
        let files = p.operands.iter().skip(usize::from(!has_code));
        let files: Vec<String> = files.map(|s| s.to_string()).collect();
        for f in files {
            self.target(&f, "`perl -i` edits in place", Vec::new);
        }
    }

    /// `sed`: `-i` edits its files; the script's `w FILE` commands and `s///w FILE` flags
    /// write files; `e` runs commands.
    fn sed(&mut self, args: &[String], depth: usize) {
        let p = parse(
            args,
            &opts("eflsE", &["expression", "file", "line-length", "separate"]),
        );
        // GNU `-i[SUFFIX]`: the suffix is glued; it is not a value taking the next argument.
        let in_place = p
            .given
            .iter()
            .any(|g| g.name == "i" || g.name == "in-place" || g.name.starts_with("in-place"))
            || args.iter().any(|a| {
                a.starts_with("-i")
                    || (a.starts_with('-')
                        && !a.starts_with("--")
                        && a.contains('i')
                        && !a.contains(['e', 'f']))
            });
        let mut scripts: Vec<&str> = p.values(&["e", "expression"]).collect();
        let mut files = p.operands.clone();
        let from_file = p.has(&["f", "file"]);
        if scripts.is_empty() && !from_file && !files.is_empty() {
            scripts.push(files.remove(0));
        }
        if in_place {
            for f in &files {
                self.target(f, "`sed -i` edits in place", Vec::new);
            }
        }
        for s in scripts {
            let (written, commands) = sed_script(s);
            for w in written {
                self.target(&w, "`sed w` writes", Vec::new);
            }
            for c in commands {
                self.shell_script(&c, &[], depth);
            }
        }
    }

    /// `awk`: `-i inplace`; `print > "FILE"`, `| "CMD"`, `system("CMD")` in the program.
    fn awk(&mut self, args: &[String], depth: usize) {
        let p = parse(
            args,
            &opts(
                "fvFi",
                &["file", "assign", "field-separator", "include", "source"],
            ),
        );
        let in_place = p.values(&["i", "include"]).any(|v| v == "inplace");
        let mut operands = p.operands.clone();
        let program = if p.has(&["f", "file"]) {
            None
        } else if let Some(src) = p.values(&["source"]).next() {
            Some(src)
        } else if operands.is_empty() {
            None
        } else {
            Some(operands.remove(0))
        };
        if in_place {
            for f in &operands {
                self.target(f, "`awk -i inplace` edits in place", Vec::new);
            }
        }
        let Some(program) = program else { return };
        let (files, commands, dynamic) = awk_program(program);
        for f in files {
            self.target(&f, "`awk` prints into", Vec::new);
        }
        for c in commands {
            self.shell_script(&c, &[], depth);
        }
        if dynamic && program.contains("hosts") {
            self.undecided("`awk` prints into a file named by an expression".to_string());
        }
    }

    /// Inline interpreter code: it names the hosts file and writes, or might.
    fn inline_code(&mut self, name: &str, code: &str, depth: usize) {
        let lower = code.to_ascii_lowercase();
        let literals = string_literals(code);
        let names_hosts = literals.iter().any(|l| {
            let path = l.trim_start_matches(['>', '<', '+', ' ', '|']);
            self.reach(path) == Reach::Hosts
        });
        let writes = WRITE_WORDS.iter().any(|w| lower.contains(w));
        let runs = EXEC_WORDS.iter().any(|w| lower.contains(w));
        let how = format!("`{name}` code writes it");
        if names_hosts && writes {
            self.push(&how, Vec::new());
            return;
        }
        if runs {
            // Commands given to system(), popen(), subprocess: read each literal as a script.
            let before = self.found.len();
            for l in literals.iter().filter(|l| l.contains(' ')) {
                self.script(l, depth + 1);
            }
            if names_hosts && self.found.len() == before {
                self.undecided(format!(
                    "`{name}` code runs commands and names the hosts file"
                ));
            }
            return;
        }
        if !names_hosts && writes && lower.contains("hosts") {
            self.undecided(format!(
                "`{name}` code writes a file and mentions `hosts` in text it builds"
            ));
        }
    }
}

/// A path where a script read as a file is a pipe's text.
fn is_pipe_path(path: &str) -> bool {
    path == "/dev/stdin"
        || path.starts_with("/dev/fd/")
        || path.starts_with("/proc/self/fd/")
        || path == "-"
}

/// Assigned values are not globbed: the sentinels are the characters again.
fn literal_globs(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    push_literal_globs(&mut out, value);
    out
}

/// [`literal_globs`] of `value`, appended to `to`.
fn push_literal_globs(to: &mut String, value: &str) {
    if !value.bytes().any(|c| c == STAR || c == ONE) {
        to.push_str(value);
        return;
    }
    to.extend(value.chars().map(|c| match c {
        '\u{1}' => '*',
        '\u{2}' => '?',
        c => c,
    }));
}

/// The files a sed script writes (`w FILE`, `W FILE`, `s/a/b/w FILE`) and the commands it runs
/// (`e CMD`, `s/a/b/e`). A file name runs to the end of the line, as in sed.
pub(super) fn sed_script(script: &str) -> (Vec<String>, Vec<String>) {
    let mut files = Vec::new();
    let mut commands = Vec::new();
    let b: Vec<char> = script.chars().collect();
    let mut i = 0;
    let rest_of_line = |from: usize| -> (String, usize) {
        let mut j = from;
        while j < b.len() && b[j] == ' ' {
            j += 1;
        }
        let start = j;
        while j < b.len() && b[j] != '\n' {
            j += 1;
        }
        (b[start..j].iter().collect(), j)
    };
    while i < b.len() {
        let c = b[i];
        match c {
            ' ' | '\t' | '\n' | ';' | '{' | '}' | '!' | ',' | '$' => i += 1,
            '0'..='9' | '~' | '+' => i += 1,
            '/' | '\\' => {
                // An address regex: `/re/` or `\cREc`.
                let delim = if c == '\\' {
                    i += 1;
                    b.get(i).copied().unwrap_or('/')
                } else {
                    '/'
                };
                i += 1;
                while i < b.len() && b[i] != delim {
                    if b[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                // Address flags `I`, `M`.
                while i < b.len() && matches!(b[i], 'I' | 'M') {
                    i += 1;
                }
            }
            'w' | 'W' => {
                let (file, end) = rest_of_line(i + 1);
                files.push(file);
                i = end;
            }
            'e' => {
                let (cmd, end) = rest_of_line(i + 1);
                if !cmd.is_empty() {
                    commands.push(cmd);
                }
                i = end;
            }
            'a' | 'i' | 'c' | 'r' | 'R' | 'b' | 't' | 'T' | ':' | '#' | 'v' | 'l' | 'L' | 'q'
            | 'Q' => {
                let (_, end) = rest_of_line(i + 1);
                i = end;
            }
            's' | 'y' => {
                let delim = b.get(i + 1).copied().unwrap_or('/');
                i += 2;
                for _ in 0..2 {
                    while i < b.len() && b[i] != delim {
                        if b[i] == '\\' {
                            i += 1;
                        }
                        i += 1;
                    }
                    i += 1;
                }
                if c == 's' {
                    while i < b.len() && !matches!(b[i], '\n' | ';' | '}' | ' ') {
                        match b[i] {
                            'w' => {
                                let (file, end) = rest_of_line(i + 1);
                                files.push(file);
                                i = end;
                                break;
                            }
                            'e' => {
                                // The pattern space is run as a command: unknown text.
                                commands.push(UNKNOWN.to_string());
                                i += 1;
                            }
                            _ => i += 1,
                        }
                    }
                }
            }
            _ => i += 1,
        }
    }
    (files, commands)
}

/// What an awk program writes: literal files after `>`/`>>` of a print, commands given to
/// `|`, `system()` and `getline`; and whether some output goes to a file named by an
/// expression.
fn awk_program(program: &str) -> (Vec<String>, Vec<String>, bool) {
    let mut files = Vec::new();
    let mut commands = Vec::new();
    let mut dynamic = false;
    let b: Vec<char> = program.chars().collect();
    let mut i = 0;
    let mut paren = 0usize;
    let mut in_print = false;
    let read_string = |from: usize| -> (String, usize) {
        let mut s = String::new();
        let mut j = from + 1;
        while j < b.len() && b[j] != '"' {
            if b[j] == '\\' && j + 1 < b.len() {
                j += 1;
                s.push(match b[j] {
                    'n' => '\n',
                    't' => '\t',
                    other => other,
                });
            } else {
                s.push(b[j]);
            }
            j += 1;
        }
        (s, j + 1)
    };
    let skip_blank = |mut j: usize| {
        while j < b.len() && matches!(b[j], ' ' | '\t') {
            j += 1;
        }
        j
    };
    while i < b.len() {
        let c = b[i];
        match c {
            '"' => {
                let (s, end) = read_string(i);
                let after = skip_blank(end);
                if b.get(after) == Some(&'|') && b.get(after + 1) != Some(&'|') {
                    // `"cmd" | getline`
                    commands.push(s);
                }
                i = end;
            }
            '(' => {
                paren += 1;
                i += 1;
            }
            ')' => {
                paren = paren.saturating_sub(1);
                i += 1;
            }
            ';' | '\n' | '{' | '}' => {
                in_print = false;
                i += 1;
            }
            '>' | '|' if in_print && paren == 0 => {
                let pipe = c == '|';
                let mut j = i + 1;
                if b.get(j) == Some(&'>') || (pipe && b.get(j) == Some(&'&')) {
                    j += 1;
                }
                j = skip_blank(j);
                if b.get(j) == Some(&'"') {
                    let (s, end) = read_string(j);
                    if pipe {
                        commands.push(s);
                    } else {
                        files.push(s);
                    }
                    i = end;
                } else {
                    if !pipe {
                        dynamic = true;
                    } else {
                        commands.push(UNKNOWN.to_string());
                    }
                    i = j;
                }
            }
            _ if c.is_ascii_alphabetic() => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == '_') {
                    i += 1;
                }
                let word: String = b[start..i].iter().collect();
                match word.as_str() {
                    "print" | "printf" => in_print = true,
                    "system" => {
                        let j = skip_blank(i);
                        let j = if b.get(j) == Some(&'(') {
                            skip_blank(j + 1)
                        } else {
                            j
                        };
                        if b.get(j) == Some(&'"') {
                            let (s, _) = read_string(j);
                            commands.push(s);
                        } else {
                            commands.push(UNKNOWN.to_string());
                        }
                    }
                    _ => {}
                }
            }
            _ => i += 1,
        }
    }
    (files, commands, dynamic)
}

/// String literals of inline code (`'...'` and `"..."`, common escapes interpreted), with
/// literals joined by `+` or `.` concatenated, so `'/etc/' + 'hosts'` is one literal.
fn string_literals(code: &str) -> Vec<String> {
    let b: Vec<char> = code.chars().collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    let mut join_next = false;
    while i < b.len() {
        let c = b[i];
        if c == '\'' || c == '"' {
            let mut s = String::new();
            let mut j = i + 1;
            while j < b.len() && b[j] != c {
                if b[j] == '\\' && j + 1 < b.len() {
                    j += 1;
                    match b[j] {
                        'n' => s.push('\n'),
                        't' => s.push('\t'),
                        'x' => {
                            let hex: String =
                                b.get(j + 1..j + 3).unwrap_or_default().iter().collect();
                            match u8::from_str_radix(&hex, 16) {
                                Ok(v) => {
                                    s.push(char::from(v));
                                    j += 2;
                                }
                                Err(_) => s.push('x'),
                            }
                        }
                        other => s.push(other),
                    }
                } else {
                    s.push(b[j]);
                }
                j += 1;
            }
            match (join_next, out.last_mut()) {
                (true, Some(last)) => last.push_str(&s),
                _ => out.push(s),
            }
            join_next = false;
            i = j + 1;
            continue;
        }
        if matches!(c, '+' | '.') {
            join_next = !out.is_empty();
        } else if !c.is_whitespace() {
            join_next = false;
        }
        i += 1;
    }
    out
}

/// Text printed by `echo`. Escapes are interpreted unless `-E`: dash and busybox differ from
/// bash here, and for suggesting entries reading `\n` as a line break is the useful choice.
pub(super) fn echo_output(args: &[String]) -> String {
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
    let mut joined = String::new();
    for a in args.get(n..).unwrap_or_default() {
        if joined.len() > MAX_OUTPUT {
            break;
        }
        if !joined.is_empty() {
            joined.push(' ');
        }
        push_literal_globs(&mut joined, a);
    }
    // Without a backslash there is nothing to interpret.
    let mut out = if escapes && joined.contains('\\') {
        interpret(&joined, Escapes::Echo)
    } else {
        joined
    };
    if newline {
        out.push('\n');
    }
    out
}

/// Text printed by `printf FORMAT ARGS...`; conversions take the next argument as text.
pub(super) fn printf_output(args: &[String]) -> String {
    // A single `--` ends options; anything after it is the format.
    let args = match args.split_first() {
        Some((first, rest)) if first == "--" => rest,
        _ => args,
    };
    // `printf -v VAR`: assigns, prints nothing.
    if args.first().is_some_and(|a| a == "-v") {
        return String::new();
    }
    let Some((format, mut rest)) = args.split_first() else {
        return String::new();
    };
    let format = interpret(&literal_globs(format), Escapes::Printf);
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
                out.push_str(&interpret(arg, Escapes::Echo));
            } else {
                out.push_str(&literal_globs(arg));
            }
            if out.len() > MAX_OUTPUT {
                break;
            }
        }
        if !consumed || rest.is_empty() || out.len() > MAX_OUTPUT {
            break;
        }
    }
    out
}

/// Shell-quotes `s` in single quotes.
pub(super) fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
