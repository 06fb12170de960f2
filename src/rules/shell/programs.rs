//! Program models: what wrappers, shells, printers and writers do with their arguments.

use super::*;

impl Scan {
    /// Interprets one command line (already expanded words): wrappers, shells, writers, printers.
    /// Returns its literal stdout when known.
    pub(super) fn exec(
        &mut self,
        argv: &[String],
        stdin: Option<&Text>,
        depth: usize,
    ) -> Option<Text> {
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
}

/// Strips `env`, `exec`, `command`, `nohup`, `sudo`, `timeout`, `nice`, `busybox` and similar
/// prefixes; `None` when what is left does not run a program (`command -v x`).
pub(super) fn strip_wrappers(argv: &[String]) -> Option<&[String]> {
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

pub(super) enum ShellInput<'a> {
    Script(&'a str),
    Stdin,
    File,
}

/// Where a shell invoked with `args` reads its script from.
pub(super) fn shell_script(args: &[String]) -> ShellInput<'_> {
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

pub(super) fn is_shell_c_flag(a: &str) -> bool {
    a == "-c"
        || (a.starts_with('-')
            && !a.starts_with("--")
            && a.len() <= 6
            && a.ends_with('c')
            && a.bytes().skip(1).all(|c| c.is_ascii_alphabetic()))
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
pub(super) fn printf_output(args: &[String]) -> String {
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
pub(super) fn tee_args(args: &[String]) -> (bool, Vec<&str>) {
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
pub(super) fn sed_in_place_files(args: &[String]) -> Vec<&str> {
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
pub(super) fn perl_in_place_files(args: &[String]) -> Vec<&str> {
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
pub(super) fn copy_targets_hosts(name: &str, args: &[String]) -> bool {
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
pub(super) fn operands<'a>(args: &'a [String], with_value: &[&str]) -> Vec<&'a str> {
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

pub(super) fn basename(program: &str) -> &str {
    program.rsplit('/').next().unwrap_or(program)
}
