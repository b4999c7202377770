//! `tmux-audit init`: the scripts load silently under strict flags, do
//! nothing outside interactive shells, and pass the shells' own checkers.

use std::process::Command;

use crate::support::{cached_init_line, have, Sandbox, Shell};

fn run(sb: &Sandbox, program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program)
        .args(args)
        .env_clear()
        .envs(sb.env())
        .current_dir(sb.path())
        .output()
        .unwrap()
}

/// Loading the hook in a non-interactive shell under the strictest flags
/// prints nothing, fails nothing and records nothing.
#[test]
fn scripts_load_silently_and_do_nothing_in_non_interactive_shells() {
    let sb = Sandbox::new();
    let bin = sb.bin.display().to_string();
    let cases = [
        (
            "bash",
            vec!["--noprofile", "--norc", "-e", "-u", "-o", "pipefail", "-c"],
            format!("eval \"$('{bin}' init bash)\"; true; false || true"),
        ),
        (
            "zsh",
            vec!["--no-rcs", "-e", "-u", "-o", "pipefail", "-c"],
            format!("eval \"$('{bin}' init zsh)\"; true; false || true"),
        ),
        (
            "fish",
            vec!["--no-config", "--private", "-c"],
            format!("'{bin}' init fish | source; true; false; or true"),
        ),
    ];
    for (shell, mut args, script) in cases {
        args.push(&script);
        let out = run(&sb, shell, &args);
        assert!(out.status.success(), "{shell}: {out:?}");
        assert!(
            out.stdout.is_empty() && out.stderr.is_empty(),
            "{shell} printed: {out:?}"
        );
    }
    assert!(
        !sb.db.exists(),
        "nothing recorded outside interactive shells"
    );
}

#[test]
fn bash_script_passes_shellcheck() {
    // CI installs shellcheck (.ci/run); elsewhere it may be missing.
    if !have("shellcheck") {
        eprintln!("skipped: shellcheck is not installed");
        return;
    }
    let sb = Sandbox::new();
    let script = sb.cmd().args(["init", "bash"]).output().unwrap().stdout;
    let path = sb.path().join("hook.bash");
    std::fs::write(&path, script).unwrap();
    let out = run(
        &sb,
        "shellcheck",
        &["--shell=bash", "--severity=style", path.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn zsh_and_fish_scripts_parse() {
    let sb = Sandbox::new();
    for (shell, check) in [
        ("zsh", vec!["--no-rcs", "-n"]),
        ("fish", vec!["--no-config", "--no-execute"]),
    ] {
        let script = sb.cmd().args(["init", shell]).output().unwrap().stdout;
        let path = sb.path().join(format!("hook.{shell}"));
        std::fs::write(&path, script).unwrap();
        let mut args = check.clone();
        let path = path.display().to_string();
        args.push(&path);
        let out = run(&sb, shell, &args);
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{shell}: {out:?}"
        );
    }
}

#[test]
fn an_unknown_shell_is_a_one_line_usage_error() {
    let sb = Sandbox::new();
    let out = sb.cmd().args(["init", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid value 'tcsh'") && stderr.contains("bash, zsh, fish"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn completions_parse_in_each_shell_and_the_man_page_renders() {
    let sb = Sandbox::new();
    for (shell, check) in [
        ("bash", vec!["--noprofile", "--norc", "-n"]),
        ("zsh", vec!["--no-rcs", "-n"]),
        ("fish", vec!["--no-config", "--no-execute"]),
    ] {
        let out = sb.cmd().args(["completions", shell]).output().unwrap();
        assert!(out.status.success() && !out.stdout.is_empty(), "{shell}");
        let path = sb.path().join(format!("completion.{shell}"));
        std::fs::write(&path, &out.stdout).unwrap();
        let mut args = check.clone();
        let path = path.display().to_string();
        args.push(&path);
        let checked = run(&sb, shell, &args);
        assert!(checked.status.success(), "{shell}: {checked:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("search"), "{shell}");
        // What the hooks run is no command for people.
        for internal in ["record-later", "merge-later", "tmux-event"] {
            assert!(!text.contains(internal), "{shell} offers {internal}");
        }
    }
    let out = sb.cmd().arg("man").output().unwrap();
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(
        page.starts_with(".ie") && page.contains(".TH tmux-audit 1"),
        "{page}"
    );
    assert!(page.contains("search") && page.contains("doctor"));
    // Every page the top page names exists with --dir.
    let dir = sb.path().join("man1");
    let out = sb
        .cmd()
        .args(["man", "--dir", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let page = page.replace("\\-", "-");
    let named: Vec<&str> = page
        .split(|c: char| c.is_whitespace() || c == '"')
        .filter_map(|word| word.strip_suffix("(1)"))
        .filter(|name| name.starts_with("tmux-audit-"))
        .collect();
    assert!(named.len() >= 10, "{named:?}");
    for name in named {
        assert!(dir.join(format!("{name}.1")).is_file(), "no page {name}.1");
    }
    assert!(!dir.join("tmux-audit-record.1").exists());
}

/// The faster init line sources the copy of the hook `init` keeps in the
/// cache directory only while the binary that wrote it is there unchanged:
/// missing, or written by another binary at that path (another version:
/// another modification time), the line runs `init`, whose hook loads and
/// which writes the copy again, private to the user.
#[test]
fn the_kept_copy_of_the_hook_is_used_only_while_its_binary_is_unchanged() {
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::time::Duration;

    let mut sb = Sandbox::new();
    let bin = sb.path().join("tmux-audit");
    crate::support::copy_of_the_binary(&bin);
    sb.bin = bin.clone();
    let set_time = |path: &std::path::Path, time: std::time::SystemTime| {
        fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(time)
            .unwrap();
    };
    let bin_time = || fs::metadata(&bin).unwrap().modified().unwrap();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let name = shell.name();
        let copy = sb.path().join(format!("cache/tmux-audit/init.{name}"));
        // Which hook loaded: the copy's mark, and the session it made.
        let (program, args, show): (&str, &[&str], &str) = match shell {
            Shell::Bash => (
                "bash",
                &["--noprofile", "--norc", "-i", "-c"],
                "echo \"${__tmux_audit_mark_test-init}:${__tmux_audit_session:+loaded}\"",
            ),
            Shell::Zsh => (
                "zsh",
                &["-f", "-i", "-c"],
                "echo \"${__tmux_audit_mark_test-init}:${__tmux_audit_session:+loaded}\"",
            ),
            Shell::Fish => (
                "fish",
                &["--no-config", "-i", "-c"],
                "set -q __tmux_audit_mark_test; or set __tmux_audit_mark_test init; set -q __tmux_audit_session; and echo $__tmux_audit_mark_test:loaded",
            ),
        };
        let load = || {
            let script = format!("{}\n{show}", cached_init_line(shell, &bin));
            let mut all = args.to_vec();
            all.push(&script);
            let out = run(&sb, program, &all);
            assert!(out.status.success(), "{name}: {out:?}");
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        // The same in an environment with one variable more.
        let load_with = |var: &str, value: &std::ffi::OsStr| {
            let script = format!("{}\n{show}", cached_init_line(shell, &bin));
            let mut all = args.to_vec();
            all.push(&script);
            let out = Command::new(program)
                .args(&all)
                .env_clear()
                .envs(sb.env())
                .env(var, value)
                .current_dir(sb.path())
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        let mark = |time| {
            let text = fs::read_to_string(&copy).unwrap();
            let line = match shell {
                Shell::Fish => "set -g __tmux_audit_mark_test copy\n",
                _ => "__tmux_audit_mark_test=copy\n",
            };
            fs::write(
                &copy,
                text.replacen("\nreturn 0\n", &format!("\n{line}return 0\n"), 1),
            )
            .unwrap();
            set_time(&copy, time);
        };

        // Missing: init runs, and keeps the copy.
        assert!(!copy.exists());
        assert_eq!(load(), "init:loaded", "{name}: missing");
        let meta = fs::metadata(&copy).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{name}");
        // SAFETY: getuid cannot fail and has no preconditions.
        let uid = unsafe { libc::getuid() };
        assert_eq!(meta.uid(), uid, "{name}");
        let dir = fs::metadata(copy.parent().unwrap()).unwrap();
        assert_eq!(dir.permissions().mode() & 0o777, 0o700, "{name}");
        assert_eq!(meta.modified().unwrap(), bin_time(), "{name}");

        // Kept, and the binary unchanged: the copy loads, no init.
        mark(bin_time());
        assert_eq!(load(), "copy:loaded", "{name}: kept");

        // Another binary at that path: init runs and writes the copy again.
        set_time(&bin, bin_time() + Duration::from_secs(1));
        assert_eq!(load(), "init:loaded", "{name}: stale");
        assert!(!fs::read_to_string(&copy).unwrap().contains("mark_test"));
        assert_eq!(fs::metadata(&copy).unwrap().modified().unwrap(), bin_time());

        // Another state directory than the one the copy names: init.
        mark(bin_time());
        let other = sb.path().join("other-state");
        assert_eq!(
            load_with("XDG_STATE_HOME", other.as_os_str()),
            "init:loaded",
            "{name}: other state directory"
        );

        // A config file written since the copy was kept (the copy holds
        // the `[capture]` settings as they were): init, and a copy with
        // the new settings, which loads while the file stays as it is.
        load();
        mark(bin_time());
        assert_eq!(load(), "copy:loaded", "{name}: kept again");
        sb.write_config(&format!("[capture]\nexclude = [\"secret-{name} *\"]\n"));
        assert_eq!(load(), "init:loaded", "{name}: config changed");
        assert!(
            fs::read_to_string(&copy)
                .unwrap()
                .contains(&format!("secret-{name} *")),
            "{name}: the copy holds the new exclusions"
        );
        mark(bin_time());
        assert_eq!(load(), "copy:loaded", "{name}: config unchanged since");
        // The time stamp gone (a cleaner of empty files, say): init, which
        // makes it again (zsh's `-nt` says false against a missing file).
        mark(bin_time());
        let stamp = sb
            .path()
            .join(format!("cache/tmux-audit/init.{name}.config-time"));
        fs::remove_file(&stamp).unwrap();
        assert_eq!(load(), "init:loaded", "{name}: stamp missing");
        assert!(stamp.exists(), "{name}: made again");

        // With capture on, bash's hook chains the user's DEBUG trap, which
        // a file read with `source` cannot see: bash runs init instead.
        mark(bin_time());
        let expected = match shell {
            Shell::Bash => "init:loaded",
            _ => "copy:loaded",
        };
        assert_eq!(
            load_with("TMUX_AUDIT_CAPTURE", "1".as_ref()),
            expected,
            "{name}: capture on"
        );
    }
}

/// The EXIT trap the user set before the hook loaded still runs when a
/// shell that showed no prompt exits, word for word (a quote, a line
/// break), whether the hook came from `init` or from the kept copy: the
/// hook chains it only at the first prompt
/// (`hooks::bash_runs_the_users_exit_trap_set_before_or_after_the_hook_and_its_own`).
#[test]
fn bash_runs_the_users_exit_trap_set_before_the_hook() {
    let sb = Sandbox::new();
    let ran = sb.path().join("exit-trap-ran");
    let trap = format!(
        "trap 'printf \"%s|\" \"it'\\''s\" \"two\nlines\" >> {}' EXIT",
        ran.display()
    );
    let copy = sb.path().join("cache/tmux-audit/init.bash");
    for (round, from) in ["init", "the kept copy"].into_iter().enumerate() {
        assert_eq!(copy.exists(), round == 1, "{from}");
        let script = format!(
            "{trap}\n{}\necho \"${{__tmux_audit_session:+loaded}}\"",
            cached_init_line(Shell::Bash, &sb.bin)
        );
        let out = run(&sb, "bash", &["--noprofile", "--norc", "-i", "-c", &script]);
        assert!(out.status.success(), "{from}: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "loaded",
            "{from}"
        );
        assert_eq!(
            std::fs::read_to_string(&ran).unwrap(),
            "it's|two\nlines|".repeat(round + 1),
            "{from}: the user's EXIT trap"
        );
    }
}

/// The kept copy of bash's hook leaves out the script's comment lines (bash
/// parses the whole file at every shell start), and bash defines from it
/// exactly what it defines from `init bash`'s script: the same functions,
/// variables, prompt settings, traps and key bindings, with capture on and
/// exclusions set (the copy's guard then sends bash to `init`, but the text
/// is checked all the same) and off. A comment-like line inside a string
/// spanning lines would differ here.
#[test]
fn the_kept_bash_copy_defines_what_init_s_script_defines() {
    use std::fs;

    let sb = Sandbox::new();
    sb.write_config("[capture]\nexclude = [\"pass *\", \"vault read*\"]\n");
    let bin = sb.bin.display().to_string();
    let out = run(&sb, &bin, &["init", "bash"]);
    assert!(out.status.success(), "{out:?}");
    let full = String::from_utf8(out.stdout).unwrap();
    let copy = fs::read_to_string(sb.path().join("cache/tmux-audit/init.bash")).unwrap();
    // The copy's guard (its comments and first command) and its last line.
    let guard_end = copy.find("|| return 1\n").expect("the copy's guard") + "|| return 1\n".len();
    let body = copy[guard_end..]
        .strip_suffix("return 0\n")
        .expect("the copy's last line");
    let comments = |text: &str| {
        text.lines()
            .filter(|l| l.trim_start().starts_with('#'))
            .count()
    };
    assert!(comments(&full) > 100, "init's script is commented");
    assert_eq!(comments(body), 0, "the copy holds no comment line");

    // Everything the hook defines, less the session id (its pid and time)
    // and the stamp of its history listings (its pid and random digits).
    let dump =
        "declare -f; declare -p | grep -E '^declare [^ ]+ (__tmux_audit_|PS0=|PROMPT_COMMAND=)' \
                | grep -vE '^declare [^ ]* __tmux_audit_(session|stamp)='; trap -p; bind -X 2>/dev/null";
    for capture in [false, true] {
        let defined = |text: &str| {
            let file = sb.path().join("hook.bash");
            fs::write(&file, text).unwrap();
            let script = format!("source {}\n{dump}", file.display());
            let mut command = Command::new("bash");
            command
                .args(["--noprofile", "--norc", "-i", "-c", &script])
                .env_clear()
                .envs(sb.env())
                .current_dir(sb.path());
            if capture {
                command
                    .env("TMUX", "/tmp/tmux-0/default,1,0")
                    .env("TMUX_AUDIT_CAPTURE", "1");
            }
            let out = command.output().unwrap();
            assert!(out.status.success(), "{out:?}");
            String::from_utf8(out.stdout).unwrap()
        };
        let from_init = defined(&full);
        assert!(
            from_init.contains("__tmux_audit_precmd ()")
                && from_init.contains("PS0=")
                && from_init.contains("PROMPT_COMMAND="),
            "capture {capture}: {from_init}"
        );
        assert_eq!(
            from_init.contains("__tmux_audit_exclude_check ()"),
            capture,
            "capture {capture}: the exclusions' DEBUG trap"
        );
        assert_eq!(from_init, defined(body), "capture {capture}");
    }
}
