//! Named table tests of what the analysis sees like the shell and the kubelet do, one table
//! per category (writes found, reads and other files allowed), and of what it reports as
//! undecided. Each case runs with and without brush-parser.

use super::*;

fn sh(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

fn run(argv: &[String], known: bool, start: &Start, use_parser: bool) -> Analysis {
    analyse_with(argv, known, start, &mut Budget::default(), use_parser)
}

/// (category, name, argv, known program) expected to write the hosts file.
fn writes() -> Vec<(&'static str, &'static str, Vec<String>, bool)> {
    vec![
        (
            "quoting",
            "quote inside the path",
            sh(r#"echo 1.1.1.1 a >> /etc/ho"st"s"#),
            true,
        ),
        (
            "quoting",
            "backslash inside the path",
            sh(r"echo 1.1.1.1 a >> /etc/ho\sts"),
            true,
        ),
        (
            "quoting",
            "ansi-c hex",
            sh(r"echo x >> $'/etc/\x68osts'"),
            true,
        ),
        (
            "quoting",
            "ansi-c octal",
            sh(r"echo x >> $'/etc/\150osts'"),
            true,
        ),
        (
            "quoting",
            "brace expansion",
            sh("tee -a /etc/{hosts,hostname} < /tmp/x"),
            true,
        ),
        ("quoting", "glob", sh("sed -i s/a/b/ /etc/host?"), true),
        (
            "options",
            "bash -euo pipefail -c",
            argv(&["bash", "-euo", "pipefail", "-c", "echo x >> /etc/hosts"]),
            true,
        ),
        (
            "options",
            "-cx",
            argv(&["sh", "-cx", "echo x >> /etc/hosts"]),
            true,
        ),
        (
            "options",
            "-c -e",
            argv(&["sh", "-c", "-e", "echo x >> /etc/hosts"]),
            true,
        ),
        (
            "options",
            "args only -c -e",
            argv(&["-c", "-e", "echo x >> /etc/hosts"]),
            false,
        ),
        (
            "options",
            "args only -euo pipefail -c",
            argv(&["-euo", "pipefail", "-c", "echo x >> /etc/hosts"]),
            false,
        ),
        (
            "options",
            "positional parameter",
            argv(&["sh", "-c", r#"echo x >> "$1""#, "sh", "/etc/hosts"]),
            true,
        ),
        (
            "variables",
            "assigned then used",
            sh("H=/etc/hosts; echo x >> $H"),
            true,
        ),
        (
            "variables",
            "braced with default",
            sh("unset H; echo x >> ${H:-/etc/hosts}"),
            true,
        ),
        (
            "variables",
            "built from parts",
            sh("D=/etc; F=hosts; echo x > \"$D/$F\""),
            true,
        ),
        (
            "variables",
            "export",
            sh("export H=/etc/hosts; cp /tmp/h $H"),
            true,
        ),
        (
            "variables",
            "for loop of one value",
            sh("for f in /etc/hosts; do echo x >> $f; done"),
            true,
        ),
        (
            "directory",
            "cd /etc",
            sh("cd /etc && echo x >> hosts"),
            true,
        ),
        (
            "directory",
            "cd and climb",
            sh("cd /usr/lib && echo x >> ../../etc/hosts"),
            true,
        ),
        (
            "directory",
            "env -C",
            argv(&["env", "-C", "/etc", "sh", "-c", "echo x >> hosts"]),
            true,
        ),
        (
            "paths",
            "/proc/self/root",
            sh("echo x >> /proc/self/root/etc/hosts"),
            true,
        ),
        (
            "paths",
            "/proc/1/root",
            sh("echo x >> /proc/1/root/etc/hosts"),
            true,
        ),
        (
            "paths",
            "/proc/<pid>/root",
            sh("cp /tmp/h /proc/42/root/etc/hosts"),
            true,
        ),
        (
            "paths",
            "dot dot and slashes",
            sh("echo x >> /etc/../etc//hosts"),
            true,
        ),
        (
            "wrappers",
            "tini",
            argv(&["tini", "--", "sh", "-c", "echo x >> /etc/hosts"]),
            true,
        ),
        (
            "wrappers",
            "dumb-init",
            argv(&[
                "dumb-init",
                "--single-child",
                "sh",
                "-c",
                "echo x >> /etc/hosts",
            ]),
            true,
        ),
        (
            "wrappers",
            "gosu",
            argv(&["gosu", "root", "tee", "-a", "/etc/hosts"]),
            true,
        ),
        (
            "wrappers",
            "su-exec",
            argv(&["su-exec", "0:0", "tee", "/etc/hosts"]),
            true,
        ),
        (
            "wrappers",
            "chroot",
            argv(&["chroot", "/", "tee", "/etc/hosts"]),
            true,
        ),
        (
            "wrappers",
            "flock -c",
            argv(&["flock", "/tmp/l", "-c", "echo x >> /etc/hosts"]),
            true,
        ),
        (
            "wrappers",
            "flock command",
            argv(&["flock", "-w", "5", "/tmp/l", "tee", "/etc/hosts"]),
            true,
        ),
        (
            "wrappers",
            "script -c",
            argv(&["script", "-qc", "echo x >> /etc/hosts", "/dev/null"]),
            true,
        ),
        (
            "wrappers",
            "unshare",
            argv(&["unshare", "--mount", "--", "tee", "/etc/hosts"]),
            true,
        ),
        (
            "wrappers",
            "strace",
            argv(&["strace", "-f", "-e", "trace=open", "tee", "/etc/hosts"]),
            true,
        ),
        (
            "wrappers",
            "setpriv",
            argv(&["setpriv", "--reuid=0", "tee", "/etc/hosts"]),
            true,
        ),
        (
            "wrappers",
            "capsh",
            argv(&[
                "capsh",
                "--drop=cap_net_raw",
                "--",
                "-c",
                "echo x >> /etc/hosts",
            ]),
            true,
        ),
        (
            "wrappers",
            "runuser -u",
            argv(&["runuser", "-u", "root", "--", "tee", "/etc/hosts"]),
            true,
        ),
        (
            "wrappers",
            "runuser -c",
            argv(&["runuser", "root", "-c", "echo x >> /etc/hosts"]),
            true,
        ),
        (
            "wrappers",
            "env -S",
            argv(&["env", "-S", "tee -a /etc/hosts"]),
            true,
        ),
        (
            "wrappers",
            "su -c",
            argv(&["su", "-c", "echo x >> /etc/hosts", "root"]),
            true,
        ),
        (
            "wrappers",
            "watch",
            argv(&["watch", "-n", "5", "echo x >> /etc/hosts"]),
            true,
        ),
        (
            "wrappers",
            "find -exec",
            sh("find /tmp -name h -exec cp {} /etc/hosts \\;"),
            true,
        ),
        (
            "wrappers",
            "busybox applet",
            argv(&["busybox", "tee", "/etc/hosts"]),
            true,
        ),
        (
            "wrappers",
            "toybox applet",
            argv(&["toybox", "sed", "-i", "s/a/b/", "/etc/hosts"]),
            true,
        ),
        (
            "wrappers",
            "nice nohup timeout",
            argv(&[
                "nice",
                "-n",
                "5",
                "nohup",
                "timeout",
                "5",
                "tee",
                "/etc/hosts",
            ]),
            true,
        ),
        (
            "wrappers",
            "sudo",
            argv(&["sudo", "-u", "root", "tee", "/etc/hosts"]),
            true,
        ),
        ("wrappers", "xargs", sh("echo /etc/hosts | xargs rm"), true),
        (
            "writers",
            "sed w command",
            sh("sed -n 'w /etc/hosts' /tmp/h"),
            true,
        ),
        (
            "writers",
            "sed s///w",
            sh("sed 's/a/b/w /etc/hosts' /tmp/h"),
            true,
        ),
        ("writers", "sed -i", sh("sed -i -e s/a/b/ /etc/hosts"), true),
        ("writers", "sort -o", sh("sort -o /etc/hosts /tmp/h"), true),
        (
            "writers",
            "sort --output=",
            sh("sort --output=/etc/hosts /tmp/h"),
            true,
        ),
        ("writers", "uniq IN OUT", sh("uniq /tmp/h /etc/hosts"), true),
        (
            "writers",
            "iconv -o",
            sh("iconv -f utf8 -t ascii -o /etc/hosts /tmp/h"),
            true,
        ),
        (
            "writers",
            "openssl -out",
            sh("openssl enc -d -in /tmp/h -out /etc/hosts"),
            true,
        ),
        (
            "writers",
            "curl clustered -o",
            sh("curl -fsSLo /etc/hosts http://x/h"),
            true,
        ),
        (
            "writers",
            "curl --output",
            sh("curl --output /etc/hosts http://x/h"),
            true,
        ),
        (
            "writers",
            "wget -O",
            sh("wget -qO /etc/hosts http://x/h"),
            true,
        ),
        ("writers", "dd of=", sh("dd if=/tmp/h of=/etc/hosts"), true),
        (
            "writers",
            "install",
            sh("install -m 644 /tmp/h /etc/hosts"),
            true,
        ),
        ("writers", "mv", sh("mv /tmp/h /etc/hosts"), true),
        ("writers", "ln -sf", sh("ln -sf /tmp/h /etc/hosts"), true),
        ("writers", "truncate", sh("truncate -s 0 /etc/hosts"), true),
        (
            "writers",
            "tee",
            sh("echo 1.1.1.1 a | tee /etc/hosts"),
            true,
        ),
        (
            "writers",
            "cp a file named hosts into /etc",
            sh("cp /tmp/hosts /etc/"),
            true,
        ),
        (
            "writers",
            "tar -x member",
            sh("tar -xf /tmp/a.tar -C / etc/hosts"),
            true,
        ),
        (
            "writers",
            "redirection read-write",
            sh("exec 3<>/etc/hosts"),
            true,
        ),
        (
            "interpreters",
            "python -c",
            argv(&["python3", "-c", "open('/etc/hosts','a').write('1.1.1.1 a')"]),
            true,
        ),
        (
            "interpreters",
            "perl -e",
            argv(&[
                "perl",
                "-e",
                "open(F, '>>/etc/hosts'); print F qq(1.1.1.1 a)",
            ]),
            true,
        ),
        (
            "interpreters",
            "ruby -e",
            argv(&["ruby", "-e", "File.write('/etc/hosts', 'x')"]),
            true,
        ),
        (
            "interpreters",
            "node -e",
            argv(&[
                "node",
                "-e",
                "require('fs').appendFileSync('/etc/hosts','x')",
            ]),
            true,
        ),
        (
            "interpreters",
            "python concatenated path",
            argv(&["python", "-c", "open('/etc/' + 'hosts', 'w')"]),
            true,
        ),
        (
            "interpreters",
            "awk print redirection",
            sh(r#"awk 'BEGIN { print "1.1.1.1 a" >> "/etc/hosts" }'"#),
            true,
        ),
        (
            "interpreters",
            "awk system",
            sh(r#"awk 'BEGIN { system("echo x >> /etc/hosts") }'"#),
            true,
        ),
        (
            "arithmetic",
            "shift is not a heredoc",
            sh("(( x = 1<<2 ))\necho x >> /etc/hosts\n2\n"),
            true,
        ),
        (
            "generated",
            "literal text piped into sh",
            sh("echo 'echo x >> /etc/hosts' | sh"),
            true,
        ),
        (
            "generated",
            "eval of literal text",
            sh("eval 'echo x >> /etc/hosts'"),
            true,
        ),
        (
            "generated",
            "trap text",
            sh("trap 'echo x >> /etc/hosts' EXIT"),
            true,
        ),
    ]
}

/// (category, name, argv) that neither write nor leave anything undecided.
fn reads() -> Vec<(&'static str, &'static str, Vec<String>)> {
    vec![
        (
            "quoting",
            "quoted mention",
            sh("echo 'edit /etc/hosts? never'"),
        ),
        (
            "quoting",
            "escaped glob is literal",
            sh(r"echo x > /tmp/host\?"),
        ),
        (
            "options",
            "script file operand is not -c",
            argv(&["sh", "-e", "/etc/hosts"]),
        ),
        ("variables", "other file", sh("F=/tmp/hosts; echo x >> $F")),
        (
            "variables",
            "log under a directory variable",
            sh("echo x >> \"$LOG_DIR/app.log\""),
        ),
        (
            "directory",
            "relative other file after cd /etc",
            sh("cd /etc && cat hosts > /tmp/h"),
        ),
        ("paths", "hosts.allow", sh("echo x >> /etc/hosts.allow")),
        ("paths", "proc fd", sh("echo x > /proc/self/fd/1")),
        (
            "wrappers",
            "tini reading",
            argv(&["tini", "--", "cat", "/etc/hosts"]),
        ),
        (
            "wrappers",
            "find printing",
            sh("find /etc -name hosts -print"),
        ),
        ("writers", "sort reading", sh("sort /etc/hosts")),
        ("writers", "uniq one operand", sh("uniq /etc/hosts")),
        (
            "writers",
            "curl reading a url naming hosts",
            sh("curl -o /tmp/h http://x/etc/hosts"),
        ),
        ("writers", "cp from hosts", sh("cp /etc/hosts /tmp/h")),
        ("writers", "sed printing", sh("sed -n p /etc/hosts")),
        (
            "writers",
            "tar -x elsewhere",
            sh("tar -xf /tmp/a.tar -C /opt"),
        ),
        (
            "interpreters",
            "python reading",
            argv(&["python3", "-c", "print(open('/etc/hosts').read())"]),
        ),
        (
            "interpreters",
            "awk reading",
            sh("awk '{print $1}' /etc/hosts"),
        ),
        (
            "arithmetic",
            "arithmetic alone",
            sh("(( x = 1<<2 )); echo $x"),
        ),
    ]
}

/// (category, name, argv, reason fragment) the analysis cannot decide.
fn undecided() -> Vec<(&'static str, &'static str, Vec<String>, &'static str)> {
    vec![
        (
            "generated",
            "eval of a variable",
            sh("eval \"$CMD\""),
            "not literal",
        ),
        (
            "generated",
            "curl piped into sh",
            sh("curl -s http://x/s | sh"),
            "pipe",
        ),
        (
            "generated",
            "printf of unknown text into bash",
            sh("printf '%s' \"$S\" | bash"),
            "not literal",
        ),
        (
            "generated",
            "source a process substitution",
            sh("source <(curl -s http://x/s)"),
            "pipe",
        ),
        ("generated", "source a variable", sh(". \"$F\""), "sources"),
        (
            "targets",
            "write to a variable",
            sh("echo x >> $HOSTS_FILE"),
            "cannot resolve",
        ),
        (
            "targets",
            "write to a directory variable's hosts",
            sh("cp /tmp/h \"$D/hosts\""),
            "cannot resolve",
        ),
        (
            "targets",
            "relative hosts, unknown directory",
            sh("echo x > hosts"),
            "cannot resolve",
        ),
        (
            "targets",
            "cp -a dir/. /etc/",
            sh("cp -a /tmp/dir/. /etc/"),
            "copies the tree",
        ),
        (
            "targets",
            "tar -x into /",
            sh("tar -xzf /tmp/a.tgz -C /"),
            "members are unknown",
        ),
        (
            "targets",
            "program name not literal",
            sh("$TOOL -a /etc/hosts"),
            "not literal",
        ),
        ("targets", "ln -s to /etc", sh("ln -s /etc /tmp/e"), "link"),
        (
            "limits",
            "nested too deep",
            {
                let mut s = "echo x >> /etc/hosts".to_string();
                for _ in 0..(MAX_DEPTH + 1) {
                    s = format!("sh -c {}", programs::quote(&s));
                }
                sh(&s)
            },
            "nested more than",
        ),
        (
            "limits",
            "brace expansion too large",
            sh("echo x > /tmp/{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}"),
            "brace expansion",
        ),
        (
            "limits",
            "unterminated quote",
            sh("echo 'x >> /etc/hosts"),
            "never ends",
        ),
        (
            "entrypoint",
            "args only as a command",
            argv(&["tee", "-a", "/etc/hosts"]),
            "entrypoint",
        ),
    ]
}

#[test]
fn finds_writes_in_every_category() {
    for use_parser in [true, false] {
        let mut failures = Vec::new();
        for (category, name, argv, known) in writes() {
            let a = run(&argv, known, &Start::default(), use_parser);
            if a.writes.is_empty() {
                failures.push(format!("{category}/{name}: {a:?}"));
            }
        }
        assert!(
            failures.is_empty(),
            "parser {use_parser}:\n{}",
            failures.join("\n")
        );
    }
}

#[test]
fn allows_reads_and_other_files_in_every_category() {
    for use_parser in [true, false] {
        let mut failures = Vec::new();
        for (category, name, argv) in reads() {
            let a = run(&argv, true, &Start::default(), use_parser);
            if !a.writes.is_empty() || !a.undecided.is_empty() {
                failures.push(format!("{category}/{name}: {a:?}"));
            }
        }
        assert!(
            failures.is_empty(),
            "parser {use_parser}:\n{}",
            failures.join("\n")
        );
    }
}

#[test]
fn reports_what_it_cannot_decide_with_the_reason() {
    for use_parser in [true, false] {
        let mut failures = Vec::new();
        for (category, name, argv, reason) in undecided() {
            let known = category != "entrypoint";
            let a = run(&argv, known, &Start::default(), use_parser);
            if !a.writes.is_empty() || !a.undecided.iter().any(|u| u.contains(reason)) {
                failures.push(format!("{category}/{name}: {a:?}"));
            }
        }
        assert!(
            failures.is_empty(),
            "parser {use_parser}:\n{}",
            failures.join("\n")
        );
    }
}

#[test]
fn the_kubelet_expands_env_and_workdir_before_the_shell_runs() {
    let start = Start::new(
        [
            ("HOSTS", Some("/etc/hosts")),
            ("DIR", Some("/etc")),
            ("TOKEN", None),
        ],
        false,
        Some("/etc"),
    );
    let cases: Vec<(&str, Vec<String>, bool)> = vec![
        (
            "kubelet $(VAR) in args",
            argv(&["tee", "-a", &start.expand("$(HOSTS)")]),
            true,
        ),
        ("shell $VAR from env", sh("echo x >> $HOSTS"), true),
        ("env built from env", sh("echo x >> $DIR/hosts"), true),
        (
            "workingDir /etc with a relative path",
            sh("echo x >> hosts"),
            true,
        ),
        (
            "escaped $$(VAR) stays literal",
            argv(&["tee", &start.expand("/tmp/$$(HOSTS)")]),
            false,
        ),
    ];
    for (name, argv, write) in cases {
        let a = run(&argv, true, &start, true);
        assert_eq!(!a.writes.is_empty(), write, "{name}: {a:?}");
    }
    // valueFrom is dynamic: a write through it cannot be decided.
    let a = run(&sh("echo x >> $TOKEN"), true, &start, true);
    assert!(a.writes.is_empty() && !a.undecided.is_empty(), "{a:?}");
}

#[test]
fn budget_exhaustion_is_undecided_not_silent() {
    let script = format!("{}echo x >> /etc/hosts", "echo a; ".repeat(10_000));
    let mut budget = Budget::new(50_000);
    let a = analyse(&sh(&script), true, &Start::default(), &mut budget);
    assert!(budget.exhausted());
    assert!(a.writes.is_empty(), "{a:?}");
    assert!(
        a.undecided.iter().any(|u| u.contains("work limit")),
        "{a:?}"
    );
    // Later commands of the same review are undecided too.
    let b = analyse(
        &sh("echo x >> /etc/hosts"),
        true,
        &Start::default(),
        &mut budget,
    );
    assert!(
        b.undecided.iter().any(|u| u.contains("work limit")),
        "{b:?}"
    );
}
