//! Table and robustness tests of the shell analysis.

use super::walk::parse_with_brush;
use super::*;

/// The writes found with or without brush-parser, with an empty environment.
fn find_with(argv: &[String], known: bool, use_parser: bool) -> Vec<HostsWrite> {
    analyse_with(
        argv,
        known,
        &Start::default(),
        &mut Budget::default(),
        use_parser,
    )
    .writes
}

/// The nesting estimate of the lexer over the whole text.
fn max_nesting(text: &str) -> usize {
    let mut lexer = Lexer::new(text);
    for _ in lexer.by_ref() {}
    lexer.max_nesting()
}

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
        pos(
            "append_quoted_echo",
            sh(r#"echo "10.1.2.3 foo bar" >> /etc/hosts"#),
            &["appends with `>>`"],
        )
        .with(one()),
        pos(
            "append_unquoted_echo",
            sh("echo 10.1.2.3 foo bar >> /etc/hosts"),
            &["appends with `>>`"],
        )
        .with(one()),
        pos(
            "overwrite_redirect",
            sh("echo 10.1.2.3 foo bar > /etc/hosts"),
            &["overwrites with `>`"],
        )
        .with(one()),
        pos(
            "clobber_redirect",
            sh("echo 10.1.2.3 foo bar >| /etc/hosts"),
            &["overwrites with `>|`"],
        )
        .with(one()),
        pos(
            "and_redirect",
            sh("echo 10.1.2.3 foo bar &> /etc/hosts"),
            &["overwrites with `&>`"],
        )
        .with(one()),
        pos(
            "and_append_redirect",
            sh("echo 10.1.2.3 foo bar &>> /etc/hosts"),
            &["appends with `&>>`"],
        )
        .with(one()),
        pos(
            "stderr_redirect_has_no_entries",
            sh("echo 10.1.2.3 foo bar 2> /etc/hosts"),
            &["overwrites with `2>`"],
        ),
        pos(
            "stderr_append",
            sh("ls 2>> /etc/hosts"),
            &["appends with `2>>`"],
        ),
        pos(
            "fd1_append",
            sh("echo 10.1.2.3 foo bar 1>> /etc/hosts"),
            &["appends with `1>>`"],
        )
        .with(one()),
        pos(
            "read_write_redirect",
            sh("exec 3<> /etc/hosts"),
            &["opens it read-write with `3<>`"],
        ),
        pos(
            "redirect_before_command",
            sh(">> /etc/hosts echo 10.1.2.3 foo bar"),
            &["appends with `>>`"],
        )
        .with(one()),
        pos(
            "heredoc_append",
            sh("cat <<EOF >> /etc/hosts\n10.1.2.3 foo bar\nEOF\n"),
            &["heredoc redirected into it with `>>`"],
        )
        .with(one()),
        pos(
            "heredoc_quoted_delimiter_overwrite",
            sh("cat > /etc/hosts <<'EOF'\n127.0.0.1 localhost\n10.1.2.3 foo bar\nEOF"),
            &["heredoc redirected into it with `>`"],
        )
        .with(vec![
            entry("127.0.0.1", &["localhost"]),
            entry("10.1.2.3", &["foo", "bar"]),
        ]),
        pos(
            "heredoc_dash_strips_tabs",
            sh("cat <<-EOF >> /etc/hosts\n\t10.1.2.3 foo bar\n\tEOF\necho done"),
            &["heredoc redirected into it with `>>`"],
        )
        .with(one()),
        pos(
            "cat_heredoc_piped_into_sudo_tee",
            sh("cat <<EOF | sudo tee -a /etc/hosts\n10.1.2.3 foo bar\nEOF"),
            &["`tee -a` appends"],
        )
        .with(one()),
        pos(
            "heredoc_into_tee",
            sh("tee -a /etc/hosts <<EOF\n10.1.2.3 foo bar\nEOF"),
            &["`tee -a` appends"],
        )
        .with(one()),
        pos(
            "heredoc_skips_line_with_variable",
            sh("cat <<EOF >> /etc/hosts\n$IP foo\n10.1.2.3 foo bar\nEOF"),
            &["heredoc redirected into it with `>>`"],
        )
        .with(one()),
        pos(
            "here_string_into_tee",
            sh(r#"tee -a /etc/hosts <<< "10.1.2.3 foo bar""#),
            &["`tee -a` appends"],
        )
        .with(one()),
        pos(
            "pipe_into_tee_append",
            sh(r#"echo "10.1.2.3 foo bar" | tee -a /etc/hosts"#),
            &["`tee -a` appends"],
        )
        .with(one()),
        pos(
            "pipe_into_tee_long_append",
            sh(r#"echo "10.1.2.3 foo bar" | tee --append /etc/hosts > /dev/null"#),
            &["`tee -a` appends"],
        )
        .with(one()),
        pos(
            "pipe_into_tee_overwrite",
            sh("echo 10.1.2.3 foo bar | tee /tmp/x /etc/hosts"),
            &["`tee` overwrites"],
        )
        .with(one()),
        pos(
            "printf_escapes_two_lines",
            sh(r"printf '10.0.0.1 a\n10.0.0.2 b c\n' >> /etc/hosts"),
            &["appends with `>>`"],
        )
        .with(vec![
            entry("10.0.0.1", &["a"]),
            entry("10.0.0.2", &["b", "c"]),
        ]),
        pos(
            "printf_substitutes_args",
            sh(r"printf '%s %s\n' 10.0.0.1 a >> /etc/hosts"),
            &["appends with `>>`"],
        )
        .with(vec![entry("10.0.0.1", &["a"])]),
        pos(
            "echo_e_two_lines",
            sh(r#"echo -e "1.2.3.4 a\n5.6.7.8 b" >> /etc/hosts"#),
            &["appends with `>>`"],
        )
        .with(vec![entry("1.2.3.4", &["a"]), entry("5.6.7.8", &["b"])]),
        pos(
            "ipv6_entry",
            sh(r#"echo "fd00::1 v6host" >> /etc/hosts"#),
            &["appends with `>>`"],
        )
        .with(vec![entry("fd00::1", &["v6host"])]),
        pos(
            "comment_after_entry",
            sh(r#"echo "10.1.2.3 foo bar # added" >> /etc/hosts"#),
            &["appends with `>>`"],
        )
        .with(one()),
        pos(
            "variable_in_text_gives_no_entry",
            sh(r#"echo "$IP foo" >> /etc/hosts"#),
            &["appends with `>>`"],
        ),
        pos(
            "command_substitution_in_text_gives_no_entry",
            sh(r#"echo "$(hostname -i) foo" >> /etc/hosts"#),
            &["appends with `>>`"],
        ),
        pos(
            "sed_i",
            sh("sed -i 's/a/b/' /etc/hosts"),
            &["`sed -i` edits in place"],
        ),
        pos(
            "sed_i_suffix",
            sh("sed -i.bak -e 's/a/b/' /etc/hosts"),
            &["`sed -i` edits in place"],
        ),
        pos(
            "sed_in_place_long",
            sh("sed --in-place=.orig 's/a/b/' /etc/hosts"),
            &["`sed -i` edits in place"],
        ),
        pos(
            "sed_in_place_long_no_suffix",
            sh("sed --in-place s/a/b/ /etc/hosts"),
            &["`sed -i` edits in place"],
        ),
        pos(
            "tee_with_other_flags",
            sh("echo 10.1.2.3 foo bar | tee --output-error=warn -ip /etc/hosts"),
            &["`tee` overwrites"],
        )
        .with(one()),
        pos(
            "sed_ie_combined",
            sh("sed -ie 's/a/b/' /etc/hosts"),
            &["`sed -i` edits in place"],
        ),
        pos(
            "sed_e_then_i",
            sh("sed -e 's/a/b/' -i /etc/hosts"),
            &["`sed -i` edits in place"],
        ),
        pos(
            "perl_pi_e",
            sh("perl -pi -e 's/a/b/' /etc/hosts"),
            &["`perl -i` edits in place"],
        ),
        pos(
            "perl_i_bak",
            sh("perl -i.bak -pe 's/a/b/' /etc/hosts"),
            &["`perl -i` edits in place"],
        ),
        pos(
            "cp_overwrites",
            sh("cp /tmp/hosts /etc/hosts"),
            &["`cp` overwrites"],
        ),
        pos(
            "cp_into_etc_dir",
            sh("cp -f /config/hosts /etc/"),
            &["`cp` overwrites"],
        ),
        pos(
            "cp_target_directory",
            sh("cp -t /etc /config/hosts"),
            &["`cp` overwrites"],
        ),
        pos(
            "cp_target_directory_long",
            sh("cp --target-directory=/etc /config/hosts"),
            &["`cp` overwrites"],
        ),
        pos(
            "mv_replaces",
            sh("mv /tmp/h /etc/hosts"),
            &["`mv` replaces"],
        ),
        pos(
            "install_overwrites",
            sh("install -m 644 /tmp/h /etc/hosts"),
            &["`install` overwrites"],
        ),
        pos(
            "ln_sf_replaces",
            sh("ln -sf /config/hosts /etc/hosts"),
            &["`ln` replaces it with a link"],
        ),
        pos(
            "dd_of",
            sh("dd if=/tmp/h of=/etc/hosts"),
            &["`dd of=` overwrites"],
        ),
        pos(
            "truncate",
            sh("truncate -s 0 /etc/hosts"),
            &["`truncate` resizes"],
        ),
        pos("rm_f", sh("rm -f /etc/hosts"), &["`rm` deletes"]),
        pos(
            "mount_bind",
            sh("mount --bind /config/hosts /etc/hosts"),
            &["`mount --bind` covers"],
        ),
        pos(
            "mount_o_bind",
            sh("mount -o bind /config/hosts /etc/hosts"),
            &["`mount --bind` covers"],
        ),
        pos(
            "rsync_overwrites",
            sh("rsync -a /config/hosts /etc/hosts"),
            &["`rsync` overwrites"],
        ),
        pos(
            "curl_output",
            sh("curl -fsSL -o /etc/hosts http://cfg/hosts"),
            &["`curl -o` overwrites"],
        ),
        pos(
            "wget_output_document",
            sh("wget -q --output-document=/etc/hosts http://cfg/hosts"),
            &["`wget -O` overwrites"],
        ),
        pos(
            "gawk_inplace",
            sh("gawk -i inplace '!/old/' /etc/hosts"),
            &["`awk -i inplace` edits in place"],
        ),
        pos(
            "cat_file_appended_has_no_entries",
            sh("cat /config/extra >> /etc/hosts"),
            &["appends with `>>`"],
        ),
        pos(
            "printf_format_reused",
            sh(r#"printf "%s\n" "1.2.3.4 a" "5.6.7.8 b" >> /etc/hosts"#),
            &["appends with `>>`"],
        )
        .with(vec![entry("1.2.3.4", &["a"]), entry("5.6.7.8", &["b"])]),
        pos(
            "no_spaces_around_redirect",
            sh("echo 10.1.2.3 foo bar>>/etc/hosts"),
            &["appends with `>>`"],
        )
        .with(one()),
        pos(
            "exec_redirects_the_shell",
            sh("exec >> /etc/hosts; echo 10.1.2.3 foo bar"),
            &["appends with `>>`"],
        ),
        pos(
            "stderr_merged_keeps_entries",
            sh("echo 10.1.2.3 foo bar >> /etc/hosts 2>&1"),
            &["appends with `>>`"],
        )
        .with(one()),
        pos(
            "sudo_tee_in_pipe",
            sh("echo 10.1.2.3 foo bar | sudo tee -a /etc/hosts > /dev/null"),
            &["`tee -a` appends"],
        )
        .with(one()),
        pos(
            "ansi_c_quoted_text",
            sh(r"echo $'10.1.2.3 foo bar' >> /etc/hosts"),
            &["appends with `>>`"],
        )
        .with(one()),
        pos(
            "substitution_in_heredoc_body",
            sh("cat <<EOF > /tmp/x\n$(cp /a /etc/hosts)\nEOF"),
            &["`cp` overwrites"],
        ),
        pos(
            "sed_several_expressions",
            sh("sed -E -e 's/a/b/' -e 's/c/d/' -i /etc/hosts"),
            &["`sed -i` edits in place"],
        ),
        // Exec form, no shell.
        pos(
            "exec_form_tee",
            argv(&["tee", "-a", "/etc/hosts"]),
            &["`tee -a` appends"],
        ),
        pos(
            "exec_form_cp",
            argv(&["cp", "/tmp/h", "/etc/hosts"]),
            &["`cp` overwrites"],
        ),
        pos(
            "exec_form_sed",
            argv(&["sed", "-i", "s/a/b/", "/etc/hosts"]),
            &["`sed -i` edits in place"],
        ),
        pos(
            "exec_form_path_qualified",
            argv(&["/usr/bin/tee", "/etc/hosts"]),
            &["`tee` overwrites"],
        ),
        // Shells, flags and wrappers.
        pos(
            "bash_c",
            argv(&["bash", "-c", "echo 10.1.2.3 foo bar >> /etc/hosts"]),
            &["appends with `>>`"],
        )
        .with(one()),
        pos(
            "ash_c",
            argv(&["ash", "-c", "echo x >> /etc/hosts"]),
            &["appends with `>>`"],
        ),
        pos(
            "dash_c",
            argv(&["dash", "-c", "echo x >> /etc/hosts"]),
            &["appends with `>>`"],
        ),
        pos(
            "zsh_c",
            argv(&["zsh", "-c", "echo x >> /etc/hosts"]),
            &["appends with `>>`"],
        ),
        pos(
            "ksh_c",
            argv(&["ksh", "-c", "echo x >> /etc/hosts"]),
            &["appends with `>>`"],
        ),
        pos(
            "busybox_sh_c",
            argv(&["busybox", "sh", "-c", "echo x >> /etc/hosts"]),
            &["appends with `>>`"],
        ),
        pos(
            "busybox_applet",
            argv(&["busybox", "tee", "-a", "/etc/hosts"]),
            &["`tee -a` appends"],
        ),
        pos(
            "env_bash",
            argv(&["/usr/bin/env", "bash", "-c", "echo x >> /etc/hosts"]),
            &["appends with `>>`"],
        ),
        pos(
            "env_with_assignment",
            argv(&[
                "env",
                "A=1",
                "-i",
                "B=2",
                "sh",
                "-c",
                "echo x >> /etc/hosts",
            ]),
            &["appends with `>>`"],
        ),
        pos(
            "sh_ec_combined",
            argv(&["sh", "-ec", "echo x >> /etc/hosts"]),
            &["appends with `>>`"],
        ),
        pos(
            "bash_xc_combined",
            argv(&["bash", "-xc", "echo x >> /etc/hosts"]),
            &["appends with `>>`"],
        ),
        pos(
            "bash_lc_combined",
            argv(&["bash", "-lc", "echo x >> /etc/hosts"]),
            &["appends with `>>`"],
        ),
        pos(
            "bash_o_pipefail_c",
            argv(&["bash", "-o", "pipefail", "-c", "echo x >> /etc/hosts"]),
            &["appends with `>>`"],
        ),
        pos(
            "nested_bash_c_in_sh_c",
            sh(r#"bash -c 'echo 10.1.2.3 foo bar >> /etc/hosts'"#),
            &["appends with `>>`"],
        )
        .with(one()),
        pos(
            "tee_append_in_nested_bash_c",
            sh(r#"sh -c "bash -c 'echo 10.1.2.3 foo bar | tee -a /etc/hosts'""#),
            &["`tee -a` appends"],
        )
        .with(one()),
        pos(
            "exec_wrapper",
            sh("exec tee -a /etc/hosts"),
            &["`tee -a` appends"],
        ),
        pos(
            "command_wrapper",
            sh("command cp /tmp/h /etc/hosts"),
            &["`cp` overwrites"],
        ),
        pos(
            "nohup_wrapper",
            sh("nohup sh -c 'echo x >> /etc/hosts' &"),
            &["appends with `>>`"],
        ),
        pos(
            "timeout_wrapper",
            argv(&["timeout", "-s", "KILL", "10", "cp", "/tmp/h", "/etc/hosts"]),
            &["`cp` overwrites"],
        ),
        pos(
            "sudo_wrapper",
            sh("sudo -u root tee /etc/hosts < /tmp/h"),
            &["`tee` overwrites"],
        ),
        pos(
            "nice_wrapper",
            argv(&["nice", "-n", "5", "cp", "/tmp/h", "/etc/hosts"]),
            &["`cp` overwrites"],
        ),
        pos(
            "su_c",
            argv(&["su", "-c", "echo x >> /etc/hosts", "root"]),
            &["appends with `>>`"],
        ),
        pos(
            "script_piped_into_bash",
            sh("echo 'echo 10.1.2.3 foo bar >> /etc/hosts' | bash"),
            &["appends with `>>`"],
        )
        .with(one()),
        pos(
            "script_on_stdin_of_sh",
            sh("sh <<EOF\necho 10.1.2.3 foo bar >> /etc/hosts\nEOF"),
            &["appends with `>>`"],
        )
        .with(one()),
        // Shell constructs.
        pos(
            "after_and",
            sh("true && echo x >> /etc/hosts"),
            &["appends with `>>`"],
        ),
        pos(
            "after_or",
            sh("grep -q foo /etc/hosts || echo 10.1.2.3 foo bar >> /etc/hosts"),
            &["appends with `>>`"],
        )
        .with(one()),
        pos(
            "in_sequence",
            sh("set -e; echo x >> /etc/hosts; exec nginx"),
            &["appends with `>>`"],
        ),
        pos(
            "in_subshell",
            sh("(echo x >> /etc/hosts)"),
            &["appends with `>>`"],
        ),
        pos(
            "in_nested_subshells",
            sh("( (echo x >> /etc/hosts) )"),
            &["appends with `>>`"],
        ),
        pos(
            "in_arithmetic_substitution",
            sh("(( $(cp /a /etc/hosts) ))"),
            &["`cp` overwrites"],
        ),
        pos(
            "in_brace_group",
            sh("{ echo x >> /etc/hosts; }"),
            &["appends with `>>`"],
        ),
        pos(
            "brace_group_redirected",
            sh(r#"{ echo "10.1.2.3 foo bar"; echo "10.0.0.9 baz"; } >> /etc/hosts"#),
            &["appends with `>>`"],
        )
        .with(vec![
            entry("10.1.2.3", &["foo", "bar"]),
            entry("10.0.0.9", &["baz"]),
        ]),
        pos(
            "in_if_then",
            sh("if [ -n \"$X\" ]; then echo x >> /etc/hosts; fi"),
            &["appends with `>>`"],
        ),
        pos(
            "in_else",
            sh("if true; then :; else cp /a /etc/hosts; fi"),
            &["`cp` overwrites"],
        ),
        pos(
            "in_for_body",
            sh("for h in a b; do echo \"1.1.1.1 $h\" >> /etc/hosts; done"),
            &["appends with `>>`"],
        ),
        pos(
            "in_while_body",
            sh("while read l; do echo \"$l\" >> /etc/hosts; done < /tmp/list"),
            &["appends with `>>`"],
        ),
        pos(
            "loop_redirected",
            sh("for h in a; do echo 1.1.1.1 $h; done > /etc/hosts"),
            &["overwrites with `>`"],
        )
        .with(vec![entry("1.1.1.1", &["a"])]),
        pos(
            "in_case",
            sh("case $X in a) echo x >> /etc/hosts;; esac"),
            &["appends with `>>`"],
        ),
        pos(
            "in_function",
            sh("f() { echo x >> /etc/hosts; }; f"),
            &["appends with `>>`"],
        ),
        pos(
            "in_command_substitution",
            sh("X=$(echo x >> /etc/hosts)"),
            &["appends with `>>`"],
        ),
        pos(
            "in_backquotes",
            sh("echo `cp /a /etc/hosts`"),
            &["`cp` overwrites"],
        ),
        pos(
            "backgrounded",
            sh("echo x >> /etc/hosts & sleep 1"),
            &["appends with `>>`"],
        ),
        pos(
            "process_substitution",
            sh("echo x > >(tee /etc/hosts)"),
            &["`tee` overwrites"],
        ),
        pos(
            "after_comment_line",
            sh("# set up hosts\necho x >> /etc/hosts"),
            &["appends with `>>`"],
        ),
        pos(
            "multiline_script",
            sh("set -e\n\nmkdir -p /x\ncat <<EOF >> /etc/hosts\n10.1.2.3 foo bar\nEOF\nexec app\n"),
            &["heredoc redirected into it with `>>`"],
        )
        .with(one()),
        // Paths.
        pos(
            "double_slash_path",
            sh("echo x >> /etc//hosts"),
            &["appends with `>>`"],
        ),
        pos(
            "dot_path",
            sh("echo x >> /etc/./hosts"),
            &["appends with `>>`"],
        ),
        pos(
            "leading_double_slash",
            sh("echo x >> //etc/hosts"),
            &["appends with `>>`"],
        ),
        pos(
            "trailing_slash",
            sh("echo x >> /etc/hosts/"),
            &["appends with `>>`"],
        ),
        pos(
            "double_quoted_path",
            sh(r#"echo x >> "/etc/hosts""#),
            &["appends with `>>`"],
        ),
        pos(
            "single_quoted_path",
            sh("echo x >> '/etc/hosts'"),
            &["appends with `>>`"],
        ),
        pos(
            "partly_quoted_path",
            sh(r#"echo x >> /etc/"hosts""#),
            &["appends with `>>`"],
        ),
        // Only `args` given: the entrypoint is unknown but `-c` marks a script.
        pos(
            "args_only_dash_c",
            argv(&["-c", "echo 10.1.2.3 foo bar >> /etc/hosts"]),
            &["appends with `>>`"],
        )
        .with(one())
        .args_only(),
        pos(
            "args_only_ec",
            argv(&["-ec", "cp /a /etc/hosts"]),
            &["`cp` overwrites"],
        )
        .args_only(),
        // Several writes, in order.
        pos(
            "two_writes_in_order",
            sh("cp /a /etc/hosts; echo 10.1.2.3 foo bar >> /etc/hosts"),
            &["`cp` overwrites", "appends with `>>`"],
        ),
        // Syntax errors still get the obvious write.
        pos(
            "unbalanced_quote_after_write",
            sh("echo 10.1.2.3 foo bar >> /etc/hosts; echo 'oops"),
            &["appends with `>>`"],
        )
        .with(one()),
        pos(
            "syntax_error_fi_without_if",
            sh("echo 10.1.2.3 foo bar >> /etc/hosts\nfi"),
            &["appends with `>>`"],
        )
        .with(one()),
        pos(
            "unclosed_command_substitution",
            sh("echo $(cp /a /etc/hosts"),
            &["`cp` overwrites"],
        ),
        pos(
            "syntax_error_unclosed_if",
            sh("if true; then\n  tee -a /etc/hosts <<< '10.1.2.3 foo bar'\n"),
            &["`tee -a` appends"],
        )
        .with(one()),
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
        assert_eq!(max_nesting(script), *expected, "{script}");
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
    assert_eq!(found[0].entries.len(), MAX_ENTRIES);
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
        while max_nesting(&generate(n + 1)) <= PARSER_MAX_NESTING {
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

/// The lexer's first pass and the memo change how long the analysis takes, not what it finds:
/// on every table case, the combined analysis (run twice, the second time from the memo)
/// equals the parser's, writes and undecided reasons alike.
#[test]
fn lexer_first_and_memo_answer_as_the_parser_does() {
    let cases = positive_cases()
        .into_iter()
        .map(|c| (c.name.to_string(), c.argv, c.known))
        .chain(
            negative_cases()
                .into_iter()
                .map(|(name, argv, known)| (name.to_string(), argv, known)),
        );
    let mut failures = Vec::new();
    for (name, argv, known) in cases {
        let start = Start::default();
        let parser = analyse_with(&argv, known, &start, &mut Budget::default(), true);
        let mut budget = Budget::default();
        let first = analyse(&argv, known, &start, &mut budget);
        let used = budget.used();
        let again = analyse(&argv, known, &start, &mut budget);
        if first != parser || again != parser {
            failures.push(format!(
                "{name}: parser {parser:?}, first {first:?}, again {again:?}"
            ));
        }
        if budget.used() != 2 * used {
            failures.push(format!(
                "{name}: {used} units, then {}",
                budget.used() - used
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// An inline budget gives the full budget's answer, with the same units spent, whenever it
/// does not report a shortfall; scripts past its work units or its parser allowance report one.
#[test]
fn inline_budget_answers_as_the_full_one_unless_cut() {
    let mut cases: Vec<(String, Vec<String>, bool)> = positive_cases()
        .into_iter()
        .map(|c| (c.name.to_string(), c.argv, c.known))
        .chain(
            negative_cases()
                .into_iter()
                .map(|(name, argv, known)| (name.to_string(), argv, known)),
        )
        .collect();
    for len in [500, 3_000, 5_000, 12_000, 20_000, 40_000, 100_000] {
        // With a write at the end (the parser reads it again) and without (the lexer's answer).
        let script = realistic_script(len);
        cases.push((format!("realistic {len}"), sh(&script), true));
        let harmless = script.replace(">> /etc/hosts\nexec", ">> /tmp/h\nexec");
        assert_ne!(harmless, script);
        cases.push((format!("harmless {len}"), sh(&harmless), true));
    }
    let (mut cut, mut whole, mut failures) = (0, 0, Vec::new());
    for (name, argv, known) in cases {
        let start = Start::new([("MODE", Some("prod"))], false, None);
        memo::forget();
        let mut full_budget = Budget::default();
        let full = analyse(&argv, known, &start, &mut full_budget);
        memo::forget();
        let mut inline_budget = Budget::inline();
        let inline = analyse(&argv, known, &start, &mut inline_budget);
        assert!(!full_budget.cut(), "{name}: a full budget is never cut");
        if inline_budget.cut() {
            cut += 1;
            continue;
        }
        whole += 1;
        if inline != full || inline_budget.used() != full_budget.used() {
            failures.push(format!(
                "{name}: full {full:?} ({} units), inline {inline:?} ({} units)",
                full_budget.used(),
                inline_budget.used()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(cut >= 4 && whole >= 100, "cut {cut}, whole {whole}");
}

/// A stored analysis is reused only for a container whose start values it read are the same.
#[test]
fn memo_replays_the_start_values_read() {
    let argv = sh("echo 10.0.0.1 db > \"$TARGET\"; cd \"$DIR\" && echo 10.0.0.2 x >> hosts");
    let start = |target: &'static str, dir: &'static str| {
        Start::new([("TARGET", Some(target)), ("DIR", Some(dir))], false, None)
    };
    for _ in 0..2 {
        let mut budget = Budget::default();
        let hosts = analyse(&argv, true, &start("/etc/hosts", "/tmp"), &mut budget);
        assert_eq!(hosts.writes.len(), 1, "{hosts:?}");
        let tmp = analyse(&argv, true, &start("/tmp/x", "/tmp"), &mut budget);
        assert!(tmp.writes.is_empty(), "{tmp:?}");
        let dir = analyse(&argv, true, &start("/tmp/x", "/etc"), &mut budget);
        assert_eq!(dir.writes.len(), 1, "{dir:?}");
        let wd = Start::new([("TARGET", Some("/tmp/x"))], false, Some("/etc"));
        let unknown_dir = analyse(&argv, true, &wd, &mut budget);
        assert!(unknown_dir.writes.is_empty(), "{unknown_dir:?}");
        assert!(!unknown_dir.undecided.is_empty(), "{unknown_dir:?}");
    }
}

/// A budget that cannot pay for a stored analysis gets what a fresh analysis gives: the limit.
#[test]
fn memo_is_not_a_way_around_the_budget() {
    let argv = sh("echo 10.0.0.1 db | tee -a /tmp/x; cat /tmp/x > /tmp/y");
    let mut budget = Budget::default();
    assert_eq!(
        analyse(&argv, true, &Start::default(), &mut budget),
        Analysis::default()
    );
    let units = budget.used();
    let mut small = Budget::new(units - 1);
    let found = analyse(&argv, true, &Start::default(), &mut small);
    assert!(
        found.undecided.iter().any(|u| u.contains("work limit")),
        "{found:?}"
    );
    let mut enough = Budget::new(units + 1);
    assert_eq!(
        analyse(&argv, true, &Start::default(), &mut enough),
        Analysis::default()
    );
    assert_eq!(enough.used(), units);
}
