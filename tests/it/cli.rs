//! The command line is consistent: flags that mean nothing together are an
//! error, not ignored; numbers that cannot work are refused alike
//! everywhere; ids are taken as people type them.

use std::ffi::OsStr;

use crate::support::Sandbox;

/// One record in pane %3 of a tmux server.
fn in_pane_3() -> Sandbox {
    let sb = Sandbox::new();
    let out = sb.record_with(
        b"echo in-pane-3",
        &[
            "--shell",
            "bash",
            "--session",
            "s",
            "--seq",
            "1",
            "--exit",
            "0",
        ],
        &[
            ("TMUX", Some(OsStr::new("/tmp/tmux-0/work,4242,3"))),
            ("TMUX_PANE", Some(OsStr::new("%3"))),
        ],
    );
    assert!(out.status.success(), "{}", sb.log());
    sb
}

fn run(sb: &Sandbox, args: &[&str]) -> (Option<i32>, String, String) {
    let out = sb.cmd().args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn null_without_format_cmd_is_an_error_not_ignored() {
    let sb = in_pane_3();
    let (code, out, err) = run(&sb, &["search", "-0"]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        err.contains("--format cmd") && err.lines().count() == 1,
        "{err}"
    );
    let (code, out, _) = run(&sb, &["search", "-0", "--format", "cmd"]);
    assert_eq!((code, out.as_str()), (Some(0), "echo in-pane-3\0"));
}

#[test]
fn a_count_of_zero_is_refused_by_search_and_report_alike() {
    let sb = in_pane_3();
    for args in [&["search", "--limit", "0"][..], &["report", "--top", "0"]] {
        let (code, out, err) = run(&sb, args);
        assert_eq!(code, Some(2), "{args:?}: {out}{err}");
        assert!(err.starts_with("tmux-audit: error:"), "{err}");
    }
}

#[test]
fn a_pane_is_found_as_percent_n_or_n_and_nonsense_is_an_error() {
    let sb = in_pane_3();
    for pane in ["%3", "3"] {
        let (code, out, err) = run(&sb, &["search", "--pane", pane, "--format", "cmd"]);
        assert_eq!(
            (code, out.as_str()),
            (Some(0), "echo in-pane-3\n"),
            "{pane}: {err}"
        );
    }
    let (code, _, _) = run(&sb, &["search", "--pane", "%4"]);
    assert_eq!(code, Some(1), "another pane: nothing found");
    for pane in ["%abc", "", "%"] {
        let (code, out, err) = run(&sb, &["search", "--pane", pane]);
        assert_eq!(code, Some(2), "{pane:?}: {out}{err}");
        assert!(err.contains("not a tmux pane id"), "{err}");
    }
}
