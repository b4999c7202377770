//! Tests written to kill mutants that survived the rest of the suite
//! (docs/mutants.md lists them): search filters at their edges, and the
//! text-index path of a search past the window of newest rows it scans
//! first. Each test names what a mutant got wrong.

use std::fs;
use std::path::Path;
use std::process::Output;

use tmux_audit::db::Database;
use tmux_audit::record::{CommandRecord, Entry};

use crate::support::Sandbox;

/// 2026-11-25T10:00:00Z, in microseconds.
const T0: i64 = 1_795_600_800_000_000;
const SECOND: i64 = 1_000_000;

/// Records `command` (bash, shell session `s`), started at `start`,
/// lasting `duration`, in `cwd`.
fn record(sb: &Sandbox, seq: i64, command: &str, start: i64, duration: i64, cwd: &str) {
    let (seq, start, end) = (
        seq.to_string(),
        start.to_string(),
        (start + duration).to_string(),
    );
    let args = [
        "--shell",
        "bash",
        "--session",
        "s",
        "--seq",
        &seq,
        "--exit",
        "0",
        "--start-us",
        &start,
        "--end-us",
        &end,
        "--cwd",
        cwd,
    ];
    let out = sb.record(command.as_bytes(), &args);
    assert!(out.status.success(), "{out:?}\n{}", sb.log());
}

fn search(sb: &Sandbox, args: &[&str]) -> Output {
    sb.cmd()
        .env("TZ", "UTC")
        .arg("search")
        .args(args)
        .output()
        .unwrap()
}

/// The commands `search` finds, oldest first.
fn found(sb: &Sandbox, args: &[&str]) -> Vec<String> {
    let out = search(sb, &[args, &["--format", "cmd"]].concat());
    assert!(matches!(out.status.code(), Some(0 | 1)), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// `/srv/api-old` and `/srv/apiary` sort next to `/srv/api/…`; neither is
/// below `/srv/api`.
#[test]
fn cwd_under_keeps_to_the_directory_and_what_is_below_it() {
    let sb = Sandbox::new();
    for (seq, cwd) in [
        "/srv/api",
        "/srv/api/src",
        "/srv/api-old",
        "/srv/api-old/src",
        "/srv/apiary",
        "/srv/ap",
        "/srv",
    ]
    .into_iter()
    .enumerate()
    {
        let seq = seq as i64 + 1;
        record(&sb, seq, &format!("ls {cwd}"), T0 + seq * SECOND, 0, cwd);
    }
    assert_eq!(
        found(&sb, &["--all", "--cwd-under", "/srv/api"]),
        ["ls /srv/api", "ls /srv/api/src"]
    );
    assert_eq!(
        found(&sb, &["--all", "--cwd-under", "/srv/api/"]),
        ["ls /srv/api", "ls /srv/api/src"]
    );
    assert_eq!(found(&sb, &["--all", "--cwd-under", "/"]).len(), 7);
    assert_eq!(found(&sb, &["--all", "--cwd", "/srv/api"]), ["ls /srv/api"]);
}

/// A relative directory is taken from the shell's `$PWD` when that is an
/// absolute path, and from the process's own directory otherwise.
#[test]
fn a_relative_directory_starts_from_an_absolute_pwd_only() {
    let sb = Sandbox::new();
    let home = sb.path().join("home");
    let home = home.to_str().unwrap();
    record(&sb, 1, "make", T0, 0, home);
    record(&sb, 2, "ls", T0 + SECOND, 0, "/srv/api");
    let here = |pwd: &str| {
        let out = sb
            .cmd()
            .current_dir(Path::new(home))
            .env("PWD", pwd)
            .env("TZ", "UTC")
            .args(["search", "--all", "--format", "cmd", "--cwd", "."])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(here("/srv/api"), "ls\n", "the logical $PWD");
    assert_eq!(here("srv/api"), "make\n", "a relative $PWD is no base");
    assert_eq!(here(""), "make\n");
}

/// `--min-duration 1s` keeps a command of exactly one second.
#[test]
fn min_duration_keeps_a_command_of_exactly_that_long() {
    let sb = Sandbox::new();
    record(&sb, 1, "short", T0, SECOND - 1, "/");
    record(&sb, 2, "exact", T0 + 10 * SECOND, SECOND, "/");
    record(&sb, 3, "long", T0 + 20 * SECOND, SECOND + 1, "/");
    assert_eq!(
        found(&sb, &["--all", "--min-duration", "1s"]),
        ["exact", "long"]
    );
    assert_eq!(
        found(&sb, &["--all", "--since", "2026-11-25T10:00:10Z"]),
        ["exact", "long"],
        "--since keeps a command that started at that very moment"
    );
    assert_eq!(
        found(&sb, &["--all", "--until", "2026-11-25T10:00:10Z"]),
        ["short"],
        "--until does not"
    );
}

/// `--here` outside tmux needs the hook's shell session: an empty one is
/// none.
#[test]
fn here_with_an_empty_shell_session_is_an_error() {
    let sb = Sandbox::new();
    record(&sb, 1, "ls", T0, 0, "/");
    let out = sb
        .cmd()
        .env("TMUX_AUDIT_SESSION", "")
        .args(["search", "--here"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--here needs"), "{stderr}");
}

/// The text index finds the pattern's trigrams anywhere: an exact or
/// prefix search through it must check the text itself. With `--all` the
/// search asks the index at once.
#[test]
fn exact_and_prefix_searches_through_the_text_index_check_the_text() {
    let sb = Sandbox::new();
    record(&sb, 1, "git", T0, 0, "/");
    record(&sb, 2, "git status", T0 + SECOND, 0, "/");
    record(&sb, 3, "legit thing", T0 + 2 * SECOND, 0, "/");
    assert_eq!(found(&sb, &["--all", "--exact", "git"]), ["git"]);
    assert_eq!(
        found(&sb, &["--all", "--prefix", "git"]),
        ["git", "git status"]
    );
    assert_eq!(
        found(&sb, &["--all", "git"]),
        ["git", "git status", "legit thing"]
    );
    assert_eq!(
        found(&sb, &["--all", "--exact", "GIT"]),
        Vec::<String>::new()
    );
}

/// A sandbox whose first record is `command` (at `T0`, in /srv), its
/// database opened to add many more, and that record to make them from.
fn first_recorded(command: &str) -> (Sandbox, Database, CommandRecord) {
    let sb = Sandbox::new();
    record(&sb, 1, command, T0, 0, "/srv");
    let db = Database::open(&sb.db).unwrap();
    let template = db.command(1).unwrap().expect("the first record").record;
    (sb, db, template)
}

/// Past the 20,000 newest rows a search scans first, it asks the text
/// index: the one exact match, the oldest row, is found there and the
/// 20,000 rows that only contain the word are not.
#[test]
fn a_search_past_the_newest_twenty_thousand_rows_finds_the_exact_match_only() {
    const NEWER: i64 = 20_000;
    // The others as the first was recorded, but for text, number and time.
    let (sb, mut db, template) = first_recorded("git");
    let entries: Vec<Entry> = (0..NEWER)
        .map(|i| {
            Entry::Command(CommandRecord {
                command: format!("echo git status {i}"),
                seq: i + 2,
                started_at_us: T0 + (i + 1) * SECOND,
                ..template.clone()
            })
        })
        .collect();
    let inserted = db
        .insert_all(entries.iter().map(|e| (e, T0 + (NEWER + 1) * SECOND)))
        .unwrap();
    assert_eq!(inserted, NEWER as usize);
    drop(db);
    assert_eq!(found(&sb, &["-n", "3", "--exact", "git"]), ["git"]);
    assert_eq!(found(&sb, &["-n", "3", "--prefix", "git"]), ["git"]);
    assert_eq!(
        found(&sb, &["-n", "2", "git status"]),
        ["echo git status 19998", "echo git status 19999"],
        "found among the newest"
    );
    let out = sb.cmd().arg("verify").output().unwrap();
    assert!(out.status.success(), "the rows are chained: {out:?}");
}

/// A search by typist places the newest 20,000 candidates one at a time;
/// when they hold too few of the typist's commands, every candidate is
/// placed (in time order): the command a client typed before the 20,000
/// newer ones is still found, and the newer ones are the shell's user's.
#[test]
fn a_typist_search_past_the_newest_twenty_thousand_rows_places_them_all() {
    use tmux_audit::lifecycle::{Client, TmuxEvent};
    const NEWER: i64 = 20_000;
    let (sb, mut db, template) = first_recorded("before tmux");
    let shell_user = template.user.clone();
    let in_pane = |seq: i64, command: String, at: i64| {
        Entry::Command(CommandRecord {
            command,
            seq,
            started_at_us: T0 + at * SECOND,
            tmux_socket: Some("/tmp/tmux-1000/default".into()),
            tmux_server_pid: Some(7),
            tmux_session_id: Some(1),
            tmux_pane: Some("%1".into()),
            ..template.clone()
        })
    };
    let event = |name: &str, at: i64, client: Option<&str>| {
        Entry::TmuxEvent(TmuxEvent {
            event: name.into(),
            at_us: T0 + at * SECOND,
            event_key: format!("{name}-{at}"),
            host: template.host.clone(),
            user: shell_user.clone(),
            tmux_socket: "/tmp/tmux-1000/default".into(),
            tmux_server_pid: 7,
            session_id: Some(1),
            session_name: Some("pair".into()),
            window_id: Some(1),
            window_index: Some(0),
            pane: Some("%1".into()),
            client: client.map(|user| Client {
                name: "/dev/pts/9".into(),
                user: Some(user.into()),
                ..Client::default()
            }),
            ..TmuxEvent::default()
        })
    };
    let mut entries = vec![
        event("seen", 1, None),
        event("client-attached", 2, Some("carol")),
        in_pane(2, "typed by carol".into(), 3),
        event("client-detached", 4, Some("carol")),
    ];
    entries.extend((0..NEWER).map(|i| in_pane(i + 3, format!("newer {i}"), i + 10)));
    db.insert_all(entries.iter().map(|e| (e, T0 + (NEWER + 20) * SECOND)))
        .unwrap();
    drop(db);
    assert_eq!(
        found(&sb, &["-n", "3", "--typed-by", "carol"]),
        ["typed by carol"]
    );
    assert_eq!(
        found(&sb, &["-n", "2", "--typed-by", &shell_user]),
        ["newer 19998", "newer 19999"],
        "found among the newest"
    );
    assert_eq!(
        found(
            &sb,
            &["-n", "2", "--typed-by", "carol", "--window", "pair:0"]
        ),
        ["typed by carol"]
    );
}

/// `--unique` reads the newest rows first too: when they hold enough
/// distinct commands it stops there; when they do not, it reads on, and
/// finds the older command the newest rows lack.
#[test]
fn a_unique_search_past_the_newest_twenty_thousand_rows_reads_on_when_it_must() {
    const NEWER: i64 = 20_000;
    let (sb, mut db, template) = first_recorded("git");
    let entries: Vec<Entry> = (0..NEWER)
        .map(|i| {
            Entry::Command(CommandRecord {
                command: format!("echo git status {}", i % 2),
                seq: i + 2,
                started_at_us: T0 + (i + 1) * SECOND,
                ..template.clone()
            })
        })
        .collect();
    db.insert_all(entries.iter().map(|e| (e, T0 + (NEWER + 1) * SECOND)))
        .unwrap();
    drop(db);
    assert_eq!(
        found(&sb, &["-n", "2", "--unique", "git"]),
        ["echo git status 0", "echo git status 1"]
    );
    assert_eq!(
        found(&sb, &["-n", "3", "--unique", "git"]),
        ["git", "echo git status 0", "echo git status 1"],
        "read on past the newest rows"
    );
    assert_eq!(
        found(&sb, &["-n", "3", "--unique", "--regex", "git"]),
        ["git", "echo git status 0", "echo git status 1"]
    );
}

/// The running totals per shell session keep the highest command number
/// seen, also when a lower one arrives after the totals were brought up to
/// date: 1 and 5 arrive, then 3 (late): 2 and 4 never arrived, not 0.
#[test]
fn a_late_record_leaves_the_highest_command_number_of_its_session() {
    let sb = Sandbox::new();
    let run = |command: &str| {
        let out = sb.cmd().arg(command).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    for seq in [1, 5] {
        record(&sb, seq, "true", T0 + seq * SECOND, 0, "/");
    }
    let text = run("report");
    assert!(
        text.contains("note: 3 of 5 commands of shell session s ("),
        "{text}"
    );
    record(&sb, 3, "true", T0 + 3 * SECOND, 0, "/");
    let text = run("report");
    assert!(
        text.contains("note: 2 of 5 commands of shell session s ("),
        "{text}"
    );
    let text = run("verify");
    assert!(
        text.contains("missing: 2 of 5 commands of shell session s"),
        "{text}"
    );
    assert!(!text.contains("counted differently"), "{text}");
}

/// A background merge runs in a process group of its own, so that Ctrl-C
/// at the prompt (sent to the foreground process group) does not reach it.
#[test]
fn a_background_merge_has_a_process_group_of_its_own() {
    let sb = Sandbox::new();
    // The first record makes the database; the second waits in the spool
    // and starts the background merge (see record.rs).
    for seq in [1, 2] {
        record(&sb, seq, "true", T0 + seq * SECOND, 0, "/");
    }
    let merges = sb
        .processes()
        .into_iter()
        .filter(|p| p.tmux_audit && p.cmdline.contains(" merge-later "))
        .collect::<Vec<_>>();
    assert_eq!(merges.len(), 1, "{merges:?}");
    let pid = merges[0].pid;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // After the command name in parentheses: state, parent, process group.
    let group: libc::pid_t = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(2))
        .and_then(|g| g.parse().ok())
        .unwrap_or_else(|| panic!("{stat}"));
    assert_eq!(group, pid, "the merge leads its own process group");
}

/// Makes the database refuse (a constraint error, as SQLite reports a
/// broken constraint) every command whose text is `refused`.
fn refuse_some(sb: &Sandbox) {
    rusqlite::Connection::open(&sb.db)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON commands WHEN NEW.command = 'refused'
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
        )
        .unwrap();
}

/// The commands stored, in order, read with SQL.
fn stored(sb: &Sandbox) -> Vec<String> {
    let conn = rusqlite::Connection::open(&sb.db).unwrap();
    let mut stmt = conn
        .prepare("SELECT command FROM commands ORDER BY id")
        .unwrap();
    let rows = stmt.query_map([], |r| r.get(0)).unwrap();
    rows.collect::<Result<_, _>>().unwrap()
}

/// A spooled record the database refuses costs only itself: it goes to
/// `<spool>.rejected`, and the records after it land.
#[test]
fn a_record_the_database_refuses_is_set_aside_and_the_others_land() {
    let sb = Sandbox::new();
    record(&sb, 1, "first", T0, 0, "/");
    refuse_some(&sb);
    record(&sb, 2, "refused", T0 + SECOND, 0, "/");
    record(&sb, 3, "third", T0 + 2 * SECOND, 0, "/");
    assert!(sb.flush(), "{}", sb.log());
    assert_eq!(stored(&sb), ["first", "third"]);
    assert_eq!(sb.spooled(), "");
    let spool = format!("{}-spool", sb.db.display());
    let rejected = std::fs::read_to_string(format!("{spool}.rejected")).unwrap();
    assert!(rejected.contains("\"refused\""), "{rejected}");
}

/// When the refused record cannot be set aside (`<spool>.rejected` cannot
/// be written), the spool is kept with it: the others land, nothing is
/// lost, and the next merge tries again.
#[test]
fn a_refused_record_that_cannot_be_set_aside_stays_in_the_spool() {
    let sb = Sandbox::new();
    record(&sb, 1, "first", T0, 0, "/");
    refuse_some(&sb);
    let spool = format!("{}-spool", sb.db.display());
    std::fs::create_dir(format!("{spool}.rejected")).unwrap();
    record(&sb, 2, "refused", T0 + SECOND, 0, "/");
    record(&sb, 3, "third", T0 + 2 * SECOND, 0, "/");
    sb.flush();
    assert_eq!(stored(&sb), ["first", "third"]);
    assert!(sb.spooled().contains("\"refused\""), "{}", sb.log());
}

/// A spool append that a full disk cuts short is taken back: no part of a
/// line is left in the spool for the next merge to set aside as damaged,
/// and the record itself is kept elsewhere and lands. (A full tmpfs needs
/// root, as in CI.)
#[test]
fn a_spool_append_cut_short_by_a_full_disk_is_taken_back() {
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: filling a tmpfs needs root");
        return;
    }
    let sb = Sandbox::new();
    let dir = crate::support::ProtectedDir::new(&sb.path().join("dbdir"));
    let db = dir.path.join("history.db");
    let spool = format!("{}-spool", db.display());
    let with_db = [("TMUX_AUDIT_DB", Some(db.as_os_str()))];
    let record_into = |seq: i64, command: &str| {
        let seq = seq.to_string();
        let args = crate::support::numbered(&seq);
        let out = sb.record_with(command.as_bytes(), &args, &with_db);
        assert!(out.status.success(), "{out:?}\n{}", sb.log());
    };
    record_into(1, "first");
    record_into(2, "second");
    let before = std::fs::read(&spool).unwrap();
    assert!(
        before.ends_with(b"\n"),
        "the second record waits in the spool"
    );
    // Fill the disk: what is left is the free end of the spool's last page,
    // so the next append starts and then fails part way.
    let filler = dir.path.join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    for chunk in [1 << 20, 4096, 1] {
        while std::io::Write::write_all(&mut file, &vec![0u8; chunk]).is_ok() {}
    }
    drop(file);
    let big = format!("third {}", "x".repeat(20_000));
    record_into(3, &big);
    assert_eq!(
        std::fs::read(&spool).unwrap(),
        before,
        "the spool as it was before the append"
    );
    std::fs::remove_file(&filler).unwrap();
    record_into(4, "fourth");
    let out = sb
        .cmd()
        .env("TMUX_AUDIT_DB", &db)
        .arg("flush")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let mut stmt = conn
        .prepare("SELECT seq FROM commands ORDER BY seq")
        .unwrap();
    let seqs: Vec<i64> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(seqs, [1, 2, 3, 4], "{}", sb.log());
    assert!(
        !Path::new(&format!("{spool}.rejected")).exists(),
        "nothing set aside: {}",
        sb.log()
    );
}

/// The schema version of the database, read or set with SQL.
fn user_version(sb: &Sandbox, set: Option<i64>) -> i64 {
    let conn = rusqlite::Connection::open(&sb.db).unwrap();
    if let Some(version) = set {
        conn.pragma_update(None, "user_version", version).unwrap();
    }
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

/// A database that fails the merge of a due spool: "first" stored, the
/// schema version broken while a 40 KB record (due at once) is recorded,
/// then mended. The big record's text is returned; it waits in the spool.
fn failed_merge(sb: &Sandbox) -> String {
    record(sb, 1, "first", T0, 0, "/");
    let version = user_version(sb, None);
    user_version(sb, Some(-1));
    // 32 KiB waiting makes the spool due: this record's merge fails.
    let big = format!("second {}", "x".repeat(40_000));
    record(sb, 2, &big, T0 + SECOND, 0, "/");
    assert!(sb.log().contains("schema version -1"), "{}", sb.log());
    user_version(sb, Some(version));
    big
}

/// A database that failed to take a merge is not tried again by the
/// per-command path for a minute (each try costs the prompt): a spool due
/// to be merged waits, although the database was mended at once. A reader
/// still merges it.
#[test]
fn after_a_failed_merge_the_prompt_does_not_try_again_within_a_minute() {
    let sb = Sandbox::new();
    let big = failed_merge(&sb);
    record(&sb, 3, "third", T0 + 2 * SECOND, 0, "/");
    assert_eq!(stored(&sb), ["first"], "the due merge waits out the minute");
    assert!(sb.spooled().contains("\"third\""));
    assert!(sb.flush(), "{}", sb.log());
    assert_eq!(stored(&sb), ["first", &big, "third"]);
}

/// The file of the state directory whose name starts with `prefix`.
fn state_file(sb: &Sandbox, prefix: &str) -> std::path::PathBuf {
    fs::read_dir(&sb.state)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| {
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(prefix)
        })
        .unwrap_or_else(|| panic!("no {prefix}… in the state directory"))
}

/// Rewrites the note of the last failed merge as made `ago` before now.
fn failure_noted(sb: &Sandbox, ago: i64) {
    let note = state_file(sb, "merge-failed-");
    let text = fs::read_to_string(&note).unwrap();
    let (_, why) = text.split_once('\n').unwrap();
    let at = tmux_audit::store::now_us() - ago;
    fs::write(&note, format!("{at}\n{why}")).unwrap();
}

/// A merge that fails again, a minute later, for the same reason is not
/// logged again: one line per outage, not one a minute. A new reason is.
#[test]
fn a_merge_failing_again_for_the_same_reason_is_logged_once() {
    let sb = Sandbox::new();
    failed_merge(&sb);
    let logged = |sb: &Sandbox| sb.log().matches("cannot move the spool").count();
    assert_eq!(logged(&sb), 1, "{}", sb.log());
    user_version(&sb, Some(-1));
    failure_noted(&sb, 61 * SECOND);
    record(&sb, 3, "third", T0 + 2 * SECOND, 0, "/");
    assert_eq!(stored(&sb), ["first"], "tried again, and failed again");
    assert_eq!(logged(&sb), 1, "{}", sb.log());
    user_version(&sb, Some(-2));
    failure_noted(&sb, 61 * SECOND);
    record(&sb, 4, "fourth", T0 + 3 * SECOND, 0, "/");
    assert_eq!(logged(&sb), 2, "{}", sb.log());
    assert!(sb.log().contains("schema version -2"), "{}", sb.log());
}

/// Once the minute is over, the prompt tries the merge again: a failure
/// noted long ago does not keep the spool waiting for a reader.
#[test]
fn a_failed_merge_is_tried_again_by_the_prompt_after_a_minute() {
    let sb = Sandbox::new();
    let big = failed_merge(&sb);
    let noted = |ago: i64| failure_noted(&sb, ago);
    // (Times as the README promises them, not the library's constants.)
    // Noted half a minute ago: the prompt leaves it.
    noted(30 * SECOND);
    record(&sb, 3, "third", T0 + 2 * SECOND, 0, "/");
    assert_eq!(stored(&sb), ["first"], "{}", sb.log());
    // A minute and a second ago: the prompt tries again.
    noted(61 * SECOND);
    record(&sb, 4, "fourth", T0 + 3 * SECOND, 0, "/");
    assert_eq!(
        stored(&sb),
        ["first", &big, "third", "fourth"],
        "{}",
        sb.log()
    );
}

/// A small record waits in the spool (no merge per command) until some
/// forty commands' worth (32 KiB) or five minutes have gathered; the
/// record that finds it so merges it.
#[test]
fn the_spool_waits_for_thirty_two_kib_or_five_minutes() {
    let sb = Sandbox::new();
    // The first record makes the database.
    record(&sb, 1, "first", T0, 0, "/");
    let small = format!("second {}", "x".repeat(2_000));
    record(&sb, 2, &small, T0 + SECOND, 0, "/");
    assert_eq!(stored(&sb), ["first"], "2 KB wait");
    // The spool's first record as if made `ago` before now (the merge reads
    // its age from the line's first bytes; the edited line's link breaks,
    // which the merge notes and which does not matter here).
    let spool = tmux_audit::spool::path(&sb.db);
    let made = |ago: i64| {
        let mut bytes = fs::read(&spool).unwrap();
        let at = (tmux_audit::store::now_us() - ago).to_string();
        let digits = b"{\"recorded_at_us\":".len();
        assert_eq!(
            bytes[digits..digits + at.len()]
                .iter()
                .filter(|b| b.is_ascii_digit())
                .count(),
            at.len()
        );
        bytes[digits..digits + at.len()].copy_from_slice(at.as_bytes());
        fs::write(&spool, bytes).unwrap();
    };
    // (Times as the README promises them, not the library's constants.)
    made(120 * SECOND);
    record(&sb, 3, "third", T0 + 2 * SECOND, 0, "/");
    assert_eq!(stored(&sb), ["first"], "two minutes wait");
    made(301 * SECOND);
    record(&sb, 4, "fourth", T0 + 3 * SECOND, 0, "/");
    assert_eq!(stored(&sb), ["first", &small, "third", "fourth"]);
}

/// The first record of a batch that is not due yet starts a background
/// merge for when it will have waited the longest a record may wait.
#[test]
fn the_first_record_of_a_batch_starts_a_merge_for_the_longest_wait() {
    let sb = Sandbox::new();
    record(&sb, 1, "first", T0, 0, "/");
    assert_eq!(background_merges(&sb), 0, "the first merge was done inline");
    record(&sb, 2, "second", T0 + SECOND, 0, "/");
    let after = format!(
        " merge-later --after {} ",
        tmux_audit::spool::MERGE_AGE_US / 1_000_000
    );
    let merges: Vec<String> = sb
        .processes()
        .into_iter()
        .filter(|p| p.tmux_audit && p.cmdline.contains(" merge-later "))
        .map(|p| p.cmdline)
        .collect();
    assert!(
        merges.len() == 1 && merges[0].contains(&after),
        "{merges:?}"
    );
}

/// One background merge serves every shell for five minutes: while the
/// note of a pending one is younger, the first record of a new batch
/// starts none of its own; once the note is older (its merge died, say),
/// the next first record starts one.
#[test]
fn a_pending_background_merge_is_not_started_twice_within_five_minutes() {
    let sb = Sandbox::new();
    record(&sb, 1, "first", T0, 0, "/");
    record(&sb, 2, "second", T0 + SECOND, 0, "/");
    assert_eq!(background_merges(&sb), 1);
    // Its merge dies before it merged; a reader empties the spool.
    for merge in sb.processes() {
        if merge.tmux_audit && merge.cmdline.contains(" merge-later ") {
            // SAFETY: plain kill(2) of a process this test started.
            unsafe { libc::kill(merge.pid, libc::SIGKILL) };
        }
    }
    crate::support::wait_until("the merge to die", || background_merges(&sb) == 0);
    assert!(sb.flush());
    let note = state_file(&sb, "merge-later-");

    record(&sb, 3, "third", T0 + 2 * SECOND, 0, "/");
    assert_eq!(background_merges(&sb), 0, "the pending merge's note holds");

    assert!(sb.flush());
    let six_minutes_ago = std::process::Command::new("touch")
        .args(["-d", "6 minutes ago"])
        .arg(&note)
        .status()
        .unwrap();
    assert!(six_minutes_ago.success());
    record(&sb, 4, "fourth", T0 + 3 * SECOND, 0, "/");
    assert_eq!(
        background_merges(&sb),
        1,
        "an old note is not a pending merge"
    );
}

/// A spool whose lock another process keeps for good (a stopped one, say)
/// costs a record only a moment's wait: it goes to the fallback spool
/// (and on into the database), never into the locked one.
#[test]
fn a_spool_locked_for_good_sends_the_record_to_the_fallback_spool() {
    let sb = Sandbox::new();
    record(&sb, 1, "first", T0, 0, "/");
    let spool = tmux_audit::spool::path(&sb.db);
    let held = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spool)
        .unwrap();
    held.lock().unwrap();
    let child = crate::support::start_record(&sb.bin, &sb.env(), "s", 2, "second");
    let out = crate::support::finish_within_patience(child, "a record beside a locked spool");
    assert!(out.status.success(), "{out:?}\n{}", sb.log());
    assert!(
        !fs::read_to_string(&spool).unwrap().contains("second"),
        "not in the locked spool"
    );
    // Through the fallback spool, which the record's own merge may
    // already have brought in.
    assert!(sb.flush(), "{}", sb.log());
    assert_eq!(stored(&sb), ["first", "second"]);
    held.unlock().unwrap();
}

/// A reader merges what waits in the spool before it reads; when all of it
/// went in, it warns of nothing (a warning is for records still waiting).
#[test]
fn a_reader_that_merges_the_whole_spool_warns_of_nothing() {
    let sb = Sandbox::new();
    record(&sb, 1, "first", T0, 0, "/");
    record(&sb, 2, "second", T0 + SECOND, 0, "/");
    assert!(sb.spooled().contains("second"), "the second waits");
    let out = search(&sb, &["--all", "--format", "cmd"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "first\nsecond\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "no warning");
}

/// With no spool that can be written (a directory where each spool should
/// be), a record goes straight into the database; one that finds it locked
/// is handed to a background `record-later`, which waits for the lock; a
/// second copy is dropped and named; and one the database refuses is named
/// lost, not dropped unseen.
#[test]
fn without_a_spool_records_go_straight_to_the_database() {
    let sb = Sandbox::new();
    record(&sb, 1, "first", T0, 0, "/");
    let spool = tmux_audit::spool::path(&sb.db);
    let _ = fs::remove_file(&spool);
    fs::create_dir(&spool).unwrap();
    // The fallback spool takes this one: its name is then known.
    record(&sb, 2, "second", T0 + SECOND, 0, "/");
    let fallback = fs::read_dir(&sb.state)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| {
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("spool-")
        })
        .expect("a fallback spool");
    assert!(sb.flush());
    fs::remove_file(&fallback).unwrap();
    fs::create_dir(&fallback).unwrap();

    record(&sb, 3, "third", T0 + 2 * SECOND, 0, "/");
    assert_eq!(stored(&sb), ["first", "second", "third"]);
    assert!(!sb.log().contains("already recorded"), "{}", sb.log());
    record(&sb, 3, "third", T0 + 2 * SECOND, 0, "/");
    assert_eq!(stored(&sb).len(), 3);
    assert!(sb.log().contains("already recorded"), "{}", sb.log());

    let mut holder = rusqlite::Connection::open(&sb.db).unwrap();
    let lock = holder
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    record(&sb, 4, "fourth", T0 + 3 * SECOND, 0, "/");
    lock.rollback().unwrap();
    let start = std::time::Instant::now();
    while stored(&sb).len() < 4 {
        assert!(
            start.elapsed() < crate::support::PATIENCE,
            "the locked record never landed: {:?}",
            stored(&sb)
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(stored(&sb)[3], "fourth");

    user_version(&sb, Some(9999));
    let out = sb.record(b"fifth", &crate::support::numbered("5"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("the record is lost"),
        "{out:?}"
    );
    // The hooks send stderr nowhere: the log is where it shows.
    assert!(sb.log().contains("the record is lost"), "{}", sb.log());
}

/// Two databases used from one account keep apart what waits for them:
/// each has its own fallback spool (named after the database's path), so
/// a record for one never lands in the other.
#[test]
fn two_databases_have_fallback_spools_of_their_own() {
    let sb = Sandbox::new();
    let other = sb.path().join("other/history.db");
    fs::create_dir_all(other.parent().unwrap()).unwrap();
    let into = |db: &Path, seq: &str, text: &str| {
        let out = sb.record_with(
            text.as_bytes(),
            &crate::support::numbered(seq),
            &[("TMUX_AUDIT_DB", Some(db.as_os_str()))],
        );
        assert!(out.status.success(), "{out:?}");
    };
    into(&sb.db, "1", "mine 1");
    into(&other, "1", "other 1");
    // The spool beside the first database cannot be written: its record
    // goes to its fallback spool in the state directory, and stays there
    // (the database is busy).
    let spool = tmux_audit::spool::path(&sb.db);
    let _ = fs::remove_file(&spool);
    fs::create_dir(&spool).unwrap();
    let mut holder = rusqlite::Connection::open(&sb.db).unwrap();
    let lock = holder
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    into(&sb.db, "2", "mine 2");
    into(&other, "2", "other 2");
    let commands = |db: &Path| -> Vec<String> {
        let conn = rusqlite::Connection::open(db).unwrap();
        let mut stmt = conn
            .prepare("SELECT command FROM commands ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let _ = sb.cmd().env("TMUX_AUDIT_DB", &other).arg("flush").output();
    assert_eq!(commands(&other), ["other 1", "other 2"]);
    lock.rollback().unwrap();
    fs::remove_dir(&spool).unwrap();
    assert!(sb.flush(), "{}", sb.log());
    assert_eq!(commands(&sb.db), ["mine 1", "mine 2"]);
}

/// The one spool of earlier versions (`spool.jsonl` in the state
/// directory) belongs to the default database: merged into it, and into
/// no other.
#[test]
fn the_spool_of_earlier_versions_goes_to_the_default_database_only() {
    let sb = Sandbox::new();
    record(&sb, 1, "first", T0, 0, "/");
    record(&sb, 2, "from an earlier version", T0 + SECOND, 0, "/");
    assert_eq!(stored(&sb), ["first"], "it waits in the spool");
    fs::rename(
        tmux_audit::spool::path(&sb.db),
        sb.state.join("spool.jsonl"),
    )
    .unwrap();
    let other = sb.path().join("other/history.db");
    fs::create_dir_all(other.parent().unwrap()).unwrap();
    let out = sb.record_with(
        b"other",
        &crate::support::numbered("1"),
        &[("TMUX_AUDIT_DB", Some(other.as_os_str()))],
    );
    assert!(out.status.success(), "{out:?}");
    let _ = sb.cmd().env("TMUX_AUDIT_DB", &other).arg("flush").output();
    assert_eq!(crate::support::rows_in(&other).len(), 1, "not the other's");
    assert!(sb.flush(), "{}", sb.log());
    assert_eq!(stored(&sb), ["first", "from an earlier version"]);
}

/// `doctor` says since when records wait in a spool that could not be
/// merged: the time of the oldest, read from the spool's first line.
#[test]
fn doctor_says_since_when_records_wait_after_a_failed_merge() {
    let sb = Sandbox::new();
    record(&sb, 1, "first", T0, 0, "/");
    user_version(&sb, Some(-1));
    let big = format!("second {}", "x".repeat(40_000));
    record(&sb, 2, &big, T0 + SECOND, 0, "/");
    let out = sb.cmd().arg("doctor").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("spool"))
        .unwrap_or_else(|| panic!("{text}"));
    // A year of this century, whatever the zone: not "?" (no time read),
    // nor 1969/1970 (a time of 0).
    let year = line
        .split("waiting since ")
        .nth(1)
        .and_then(|t| t.get(..4))
        .and_then(|y| y.parse::<i32>().ok());
    assert!(
        line.contains("1 record waiting since ") && year.is_some_and(|y| y >= 2020),
        "{text}"
    );
}

/// The background merges this sandbox's records started.
fn background_merges(sb: &Sandbox) -> usize {
    sb.processes()
        .iter()
        .filter(|p| p.tmux_audit && p.cmdline.contains(" merge-later "))
        .count()
}

/// A record whose due merge finds the database busy leaves the spool to a
/// background merge (nothing else may merge it sooner).
#[test]
fn a_due_merge_that_finds_the_database_busy_starts_a_background_merge() {
    let sb = Sandbox::new();
    record(&sb, 1, "first", T0, 0, "/");
    assert_eq!(background_merges(&sb), 0);
    let mut holder = rusqlite::Connection::open(&sb.db).unwrap();
    let lock = holder
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    // 32 KiB waiting makes the spool due at once.
    let big = format!("second {}", "x".repeat(40_000));
    record(&sb, 2, &big, T0 + SECOND, 0, "/");
    lock.rollback().unwrap();
    assert_eq!(stored(&sb), ["first"], "the merge found the database busy");
    assert_eq!(background_merges(&sb), 1);
}

/// A spool grown past what a prompt may wait to merge (a backlog, after a
/// long outage or a huge paste) goes to a background merge that starts at
/// once, not to one that waits the few minutes a record may wait; the
/// prompt does not try to merge it itself. `fallback`: the backlog is in
/// the fallback spool (the one beside the database cannot be written).
fn a_backlog_goes_to_a_background_merge_at_once(fallback: bool) {
    let sb = Sandbox::new();
    record(&sb, 1, "first", T0, 0, "/");
    if fallback {
        let spool = tmux_audit::spool::path(&sb.db);
        let _ = fs::remove_file(&spool);
        fs::create_dir(&spool).unwrap();
    }
    let big = format!("second {}", "x".repeat(300_000));
    // Busy: a prompt that tried to merge the backlog would leave it for a
    // merge minutes later.
    let mut holder = rusqlite::Connection::open(&sb.db).unwrap();
    let lock = holder
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    record(&sb, 2, &big, T0 + SECOND, 0, "/");
    lock.rollback().unwrap();
    // Read without merging (every reader of tmux-audit merges first): only
    // the background merge can move the spool in.
    let start = std::time::Instant::now();
    while crate::support::rows_in(&sb.db).len() < 2 {
        assert!(
            start.elapsed() < crate::support::PATIENCE,
            "the backlog still waits; background merges: {:?}",
            sb.processes()
                .iter()
                .filter(|p| p.cmdline.contains(" merge-later "))
                .map(|p| p.cmdline.clone())
                .collect::<Vec<_>>()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_backlog_goes_to_a_background_merge_at_once_from_the_spool() {
    a_backlog_goes_to_a_background_merge_at_once(false);
}

#[test]
fn a_backlog_goes_to_a_background_merge_at_once_from_the_fallback_spool() {
    a_backlog_goes_to_a_background_merge_at_once(true);
}

/// A redaction entry is checked against the row in full: one whose start
/// disagrees with the row, in a trace rechained to look intact (as only a
/// forger would write it), leaves the record named as changed.
#[test]
fn a_redaction_entry_that_does_not_start_from_the_row_explains_nothing() {
    let sb = Sandbox::new();
    record(&sb, 1, "ls", T0, 0, "/");
    record(&sb, 2, "echo hunter2hunter2", T0 + SECOND, 0, "/");
    let out = sb
        .cmd()
        .args(["redact", "2", "--pattern", "hunter2hunter2"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let verify = || sb.cmd().arg("verify").output().unwrap();
    assert_eq!(verify().status.code(), Some(0), "{:?}", verify());
    // The redaction entry now says it started from the content it left.
    let trace = Database::open(&sb.db).unwrap().trace().unwrap();
    let conn = rusqlite::Connection::open(&sb.db).unwrap();
    let mut prev = tmux_audit::chain::GENESIS;
    for mut stored in trace {
        if stored.entry.kind == "redaction" {
            let mut detail: serde_json::Value = serde_json::from_str(&stored.entry.detail).unwrap();
            detail["content_hash_before"] = detail["content_hash_after"].clone();
            stored.entry.detail = detail.to_string();
        }
        let hash = tmux_audit::chain::hash_trace(&prev, stored.id, &stored.entry);
        conn.execute(
            "UPDATE chain_trace SET detail = ?1, prev_hash = ?2, hash = ?3 WHERE id = ?4",
            rusqlite::params![stored.entry.detail, prev.to_vec(), hash.to_vec(), stored.id],
        )
        .unwrap();
        prev = hash;
    }
    let out = verify();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("record 2") && text.contains("was changed"),
        "{text}"
    );
}

/// A report by day reads the local day once per quarter of an hour: a
/// command a microsecond before local midnight and one at midnight are
/// still on two days, in a zone a whole number of hours from UTC and in
/// one 5 h 45 min from it (POSIX TZ strings: no time zone files needed).
#[test]
fn a_microsecond_before_local_midnight_is_another_day() {
    // 2026-01-01T00:00:00Z.
    const MIDNIGHT_UTC_US: i64 = 1_767_225_600_000_000;
    for (tz, offset_us) in [("UTC0", 0), ("XST-5:45", 20_700_000_000)] {
        let sb = Sandbox::new();
        let midnight = MIDNIGHT_UTC_US - offset_us;
        for (seq, at) in [("1", midnight - 1), ("2", midnight)] {
            let at = at.to_string();
            let args = [
                &crate::support::numbered(seq)[..],
                &["--start-us", &at, "--end-us", &at],
            ]
            .concat();
            assert!(sb.record(b"echo around-midnight", &args).status.success());
        }
        let out = sb
            .cmd()
            .env("TZ", tz)
            .args(["report", "--by", "day", "--json"])
            .output()
            .unwrap();
        assert!(out.status.success());
        let groups: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        let mut days: Vec<&str> = groups
            .iter()
            .map(|g| g["group"].as_str().unwrap())
            .collect();
        days.sort_unstable();
        assert_eq!(days, ["2025-12-31", "2026-01-01"], "TZ={tz}");
    }
}
