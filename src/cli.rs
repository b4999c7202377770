//! The command line: every subcommand and flag, defined once, with the docs
//! that `--help` shows.

use std::path::PathBuf;

use chrono::{DateTime, Local, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use tmux_audit::timespec;

#[derive(Debug, Parser)]
#[command(
    name = "tmux-audit",
    version,
    about = "An audit log for tmux: every command, with its pane, session, user and exit status",
    long_about = "An audit log for tmux: every command run in bash, zsh or fish, with its exit \
status, time, duration, directory, user, host and tmux pane, kept in a local SQLite database.\n\n\
Set up once per shell (at the end of the rc file):\n\
  bash  ~/.bashrc                  eval \"$(tmux-audit init bash)\"\n\
  zsh   ~/.zshrc                   eval \"$(tmux-audit init zsh)\"\n\
  fish  ~/.config/fish/config.fish status is-interactive; and tmux-audit init fish | source\n\n\
And once in ~/.tmux.conf, for sessions, windows, panes and attached clients:\n\
  run-shell 'tmux-audit init tmux'\n\n\
Then `tmux-audit search` shows what was recorded, `tmux-audit timeline --here` what happened \
in this pane.",
    after_help = "Environment:\n  TMUX_AUDIT_DB        database file to use instead of $XDG_DATA_HOME/tmux-audit/history.db\n  NO_COLOR             no colour in tables\n  TMUX_AUDIT_SESSION   set by the hooks: this shell session's id, for `search --here`"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// The hooks' own parsers: `tmux-audit record …` (every prompt) and
// `tmux-audit tmux-event …` (every tmux event) are parsed without building
// the definitions of every other subcommand, which would cost each of them
// a noticeable part of its run.

/// Internal: store one finished command. Called by the shell hooks.
#[derive(Debug, Parser)]
#[command(name = "tmux-audit record")]
pub struct RecordOnly {
    #[command(flatten)]
    pub record: Record,
}

/// Internal: store one tmux lifecycle event. Run by the hooks of `init tmux`.
#[derive(Debug, Parser)]
#[command(name = "tmux-audit tmux-event")]
pub struct TmuxEventOnly {
    #[command(flatten)]
    pub event: TmuxEventCmd,
}

impl Cli {
    /// The command line of this process.
    pub fn parse_command() -> Result<Command, clap::Error> {
        let hot = std::env::args_os().nth(1);
        // The subcommand's name stands in for the program's.
        let args = std::env::args_os().skip(1);
        match hot.as_deref().and_then(|a| a.to_str()) {
            Some("record") => RecordOnly::try_parse_from(args).map(|r| Command::Record(r.record)),
            Some("tmux-event") => {
                TmuxEventOnly::try_parse_from(args).map(|e| Command::TmuxEvent(e.event))
            }
            _ => Cli::try_parse().map(|cli| cli.command),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Init(Init),
    Record(Record),
    RecordLater(RecordLater),
    MergeLater(MergeLater),
    TmuxEvent(TmuxEventCmd),
    Search(Search),
    Report(Report),
    Show(Show),
    Sessions(Sessions),
    Timeline(Timeline),
    Verify(Verify),
    Anchor(Anchor),
    Redact(Redact),
    Doctor(Doctor),
    Flush(Flush),
    Sync(SyncCmd),
    Central(CentralCmd),
    Config(ConfigCmd),
    Completions(Completions),
    Man(Man),
}

/// Print the hook for a shell (eval it from the shell's rc file), or register tmux's hooks.
#[derive(Debug, Args)]
#[command(
    long_about = "Print the hook that records each command of an interactive shell.\n\n\
Load it at the end of the shell's rc file, after anything else that sets PROMPT_COMMAND, PS0 \
or precmd hooks:\n\
  bash  ~/.bashrc                  eval \"$(tmux-audit init bash)\"\n\
  zsh   ~/.zshrc                   eval \"$(tmux-audit init zsh)\"\n\
  fish  ~/.config/fish/config.fish status is-interactive; and tmux-audit init fish | source\n\n\
The hook calls this binary by its absolute path, prints nothing, keeps $? intact, and does \
nothing in non-interactive shells. Errors go to $XDG_STATE_HOME/tmux-audit/tmux-audit.log.\n\n\
`init tmux` instead registers hooks in the tmux server it runs in, which record sessions, \
windows, panes and clients (attached, detached, latest active) as they come and go. Put this line \
in ~/.tmux.conf:\n\
  run-shell 'tmux-audit init tmux'\n\
The hooks are appended after your own; running it again replaces them rather than adding more."
)]
pub struct Init {
    /// The shell to print the hook for, or tmux to register its hooks.
    #[arg(value_enum)]
    pub target: InitTarget,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InitTarget {
    Bash,
    Zsh,
    Fish,
    Tmux,
}

/// Internal: store one tmux lifecycle event. Run by the hooks `init tmux`
/// registers, with the hook's name and `format=value` arguments; prints
/// nothing and exits 0, whatever happens (errors go to the log file).
#[derive(Debug, Args)]
#[command(hide = true)]
pub struct TmuxEventCmd {
    #[command(flatten)]
    pub db: DbArg,

    /// The hook that ran, e.g. session-created.
    pub hook: String,

    /// tmux formats as `name=value` (not UTF-8: taken as UTF-8, lossily).
    #[arg(allow_hyphen_values = true)]
    pub fields: Vec<std::ffi::OsString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl From<Shell> for tmux_audit::record::Shell {
    fn from(shell: Shell) -> Self {
        match shell {
            Shell::Bash => Self::Bash,
            Shell::Zsh => Self::Zsh,
            Shell::Fish => Self::Fish,
        }
    }
}

/// Internal: store one finished command. Called by the shell hooks.
///
/// The command text is read from standard input (one trailing newline is
/// dropped), never from the command line, where any user could read it in
/// /proc and where Linux caps one argument at 128 KiB. Everything else about
/// the command's context is read from the environment. Errors are written to
/// the log file, never to the terminal.
#[derive(Debug, Args)]
#[command(hide = true)]
pub struct Record {
    #[command(flatten)]
    pub db: DbArg,

    /// The shell that ran the command.
    #[arg(long, value_enum)]
    pub shell: Shell,

    /// Id of the interactive shell session, made by the hook when it loads.
    #[arg(long, value_name = "ID")]
    pub session: String,

    /// Number of the command within the shell session, from 1.
    #[arg(long, value_name = "N")]
    pub seq: i64,

    /// Exit status of the command.
    #[arg(long = "exit", value_name = "STATUS", allow_hyphen_values = true)]
    pub exit_status: Option<i64>,

    /// When the command started, in microseconds since the Unix epoch.
    #[arg(long, value_name = "MICROSECONDS", conflicts_with = "duration_ms")]
    pub start_us: Option<i64>,

    /// When the command finished, in microseconds since the Unix epoch
    /// [default: now].
    #[arg(long, value_name = "MICROSECONDS", requires = "start_us")]
    pub end_us: Option<i64>,

    /// How long the command ran, in milliseconds (when the shell knows the
    /// duration rather than the start time).
    #[arg(long, value_name = "MILLISECONDS")]
    pub duration_ms: Option<i64>,

    /// The working directory when the command started [default: the
    /// recorder's own, which it inherits from the shell at the end].
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<std::ffi::OsString>,

    /// The shell could not tell the command's text (bash with history off):
    /// record that a command ran, with an empty text, and ignore stdin.
    #[arg(long)]
    pub text_unavailable: bool,
}

/// Internal: store a record that `record` could not store at once because
/// the database was locked. Reads the record as JSON on stdin and waits for
/// the lock in the background, so that the prompt does not.
#[derive(Debug, Args)]
#[command(hide = true)]
pub struct RecordLater {
    #[command(flatten)]
    pub db: DbArg,

    /// When the first attempt was made, in microseconds since the Unix epoch.
    #[arg(long, value_name = "MICROSECONDS")]
    pub recorded_at_us: i64,
}

/// Internal: merge the spool after a while, started in the background by
/// the first record that goes into an empty spool, so that no record waits
/// longer than that even when nothing else merges it.
#[derive(Debug, Args)]
#[command(hide = true)]
pub struct MergeLater {
    #[command(flatten)]
    pub db: DbArg,

    /// How long to wait first.
    #[arg(long, value_name = "SECONDS")]
    pub after: u64,
}

/// Find recorded commands by text and by any recorded field.
#[derive(Debug, Args)]
#[command(
    long_about = "Find recorded commands by text and by any recorded field.\n\n\
PATTERN matches anywhere in the command, case-insensitively unless it has an upper-case letter; \
--exact, --prefix and --regex change how. Without PATTERN, every command the filters keep. \
The newest --limit commands are shown, oldest first (--reverse for newest first).\n\n\
Exit status: 0 when something was found, 1 when nothing was, 2 on an error.",
    after_help = "Examples:\n  tmux-audit search docker --since yesterday\n  tmux-audit search --here --failed\n  \
tmux-audit search 'rm -rf' --session prod --since '7 days ago' --format json\n  \
tmux-audit search --cwd-under ~/src/api --since today --failed\n  \
tmux-audit search --unique --format cmd -0 | fzf --read0"
)]
pub struct Search {
    #[command(flatten)]
    pub db: DbArg,

    /// Text to look for in the command.
    pub pattern: Option<String>,

    /// PATTERN is the whole command.
    #[arg(long, conflicts_with_all = ["prefix", "regex"], requires = "pattern")]
    pub exact: bool,

    /// PATTERN is the start of the command.
    #[arg(long, conflicts_with = "regex", requires = "pattern")]
    pub prefix: bool,

    /// PATTERN is a regular expression (Rust regex syntax).
    #[arg(long, requires = "pattern")]
    pub regex: bool,

    #[command(flatten)]
    pub filters: FilterArgs,

    /// Show at most N commands (the newest ones).
    #[arg(
        short = 'n',
        long,
        default_value_t = 20,
        value_name = "N",
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..),
        help_heading = "Output"
    )]
    pub limit: usize,

    /// Show every matching command.
    #[arg(long, conflicts_with = "limit", help_heading = "Output")]
    pub all: bool,

    /// Newest first.
    #[arg(long, help_heading = "Output")]
    pub reverse: bool,

    /// Only the newest run of each distinct command.
    #[arg(long, help_heading = "Output")]
    pub unique: bool,

    /// Search the central store (every host the role may read) instead of
    /// the local database.
    #[arg(long)]
    pub central: bool,

    /// Output format: a table, or every field as json, jsonl, csv or tsv, or
    /// only the command text (cmd).
    #[arg(long, value_enum, default_value_t = Format::Table, help_heading = "Output")]
    pub format: Format,

    /// Same as --format json.
    #[arg(long, conflicts_with = "format", help_heading = "Output")]
    pub json: bool,

    /// With --format cmd: end each command with NUL instead of a newline.
    #[arg(short = '0', long = "null", help_heading = "Output")]
    pub null: bool,
}

impl Search {
    /// Flags that clap cannot relate by itself: `-0` only means something
    /// with `--format cmd`.
    pub fn check(&self) -> Result<(), String> {
        if self.null && self.format != Format::Cmd {
            return Err(
                "-0/--null ends each command with NUL only with --format cmd; add --format cmd"
                    .into(),
            );
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Jsonl,
    Csv,
    Tsv,
    Cmd,
}

/// Tables of commands per pane, session, user, host, directory, day or command.
#[derive(Debug, Args)]
#[command(
    long_about = "Count and time recorded commands per pane (the default), tmux session, user, host, \
directory, day or command text: how many ran, how many failed, first and last, total and \
longest duration, the directory used most and the command run most. The same filters as \
`search` narrow what is counted.",
    after_help = "Examples:\n  tmux-audit report\n  tmux-audit report --since 1d --user deploy\n  \
tmux-audit report --by command --top 20\n  tmux-audit report --by command --sort failures --top 10\n  \
tmux-audit report --by day --since '7 days ago' --format csv"
)]
pub struct Report {
    #[command(flatten)]
    pub db: DbArg,

    /// What one row counts.
    #[arg(long, value_enum, default_value_t = GroupBy::Pane)]
    pub by: GroupBy,

    /// Order rows by: number of commands, failures, total duration, or the latest command.
    #[arg(long, value_enum, default_value_t = SortBy::Commands)]
    pub sort: SortBy,

    /// Only the first N rows.
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
    pub top: Option<usize>,

    /// Count on the central store (every host the role may read), per host
    /// unless --by user, cwd or command.
    #[arg(long)]
    pub central: bool,

    #[command(flatten)]
    pub filters: FilterArgs,

    /// Output format: a table, or every figure as json, jsonl, csv or tsv.
    #[arg(long, value_enum, default_value_t = TableFormat::Table, help_heading = "Output")]
    pub format: TableFormat,

    /// Same as --format json.
    #[arg(long, conflicts_with = "format", help_heading = "Output")]
    pub json: bool,
}

/// Show one command in full: every field, where it ran and who typed it.
#[derive(Debug, Args)]
#[command(
    long_about = "Show one recorded command with every field, the tmux session and window it ran \
in (their names at the time), and, in a shared session, the client and user whose keyboard ran it \
and every client attached then. ID is the `id` that `search --format json` prints.",
    after_help = "Examples:\n  tmux-audit show 1234\n  tmux-audit show 1234 --format json"
)]
pub struct Show {
    #[command(flatten)]
    pub db: DbArg,

    /// The command's id.
    pub id: i64,

    /// Output format: the command's fields as text, or as json.
    #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
    pub format: ShowFormat,

    /// Same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShowFormat {
    #[value(alias = "table")]
    Text,
    Json,
}

/// Every tmux session seen: created, closed, renamed, and who attached when.
#[derive(Debug, Args)]
#[command(
    long_about = "List every tmux session the hooks of `tmux-audit init tmux` saw: its server, \
when it was created and closed, its names over time, and each client's attach intervals (user, \
tty, from, to).",
    after_help = "Examples:\n  tmux-audit sessions\n  tmux-audit sessions --since yesterday --format json"
)]
pub struct Sessions {
    #[command(flatten)]
    pub db: DbArg,

    /// Only sessions alive at or after WHEN ("2h", "yesterday", "2026-11-25 09:00").
    #[arg(long, value_name = "WHEN", value_parser = parse_when)]
    pub since: Option<chrono::DateTime<chrono::Utc>>,

    /// Output format: a table, or every field as json, jsonl, csv or tsv.
    #[arg(long, value_enum, default_value_t = TableFormat::Table)]
    pub format: TableFormat,

    /// Same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
}

/// Lifecycle events and commands of a session, window or pane, in time order.
#[derive(Debug, Args)]
#[command(
    long_about = "The audit trail of a tmux session, window or pane: its lifecycle events \
(created, renamed, split, clients attached and detached, who was active) and its commands, \
interleaved in time order, each command with the user whose client typed it.",
    after_help = "Examples:\n  tmux-audit timeline --session prod --since '2 hours ago'\n  \
tmux-audit timeline --pane %3\n  tmux-audit timeline --here --format json"
)]
#[command(group(clap::ArgGroup::new("scope").required(true)))]
pub struct Timeline {
    #[command(flatten)]
    pub db: DbArg,

    /// A session, by its name (at any time) or id ($3).
    #[arg(long, value_name = "NAME", group = "scope")]
    pub session: Option<String>,

    /// A window, as SESSION:INDEX (prod:1) or by id (@4).
    #[arg(long, value_name = "WINDOW", group = "scope")]
    pub window: Option<String>,

    /// A pane by id (%3), in the newest server that had it.
    #[arg(long, value_name = "PANE", group = "scope")]
    pub pane: Option<String>,

    /// The pane this shell runs in.
    #[arg(long, group = "scope")]
    pub here: bool,

    /// Only from WHEN ("2h", "yesterday", "2026-11-25 09:00").
    #[arg(long, value_name = "WHEN", value_parser = parse_when)]
    pub since: Option<chrono::DateTime<chrono::Utc>>,

    /// Only before WHEN (same forms as --since).
    #[arg(long, value_name = "WHEN", value_parser = parse_when)]
    pub until: Option<chrono::DateTime<chrono::Utc>>,

    /// Output format: a table, or every field as json, jsonl, csv or tsv.
    #[arg(long, value_enum, default_value_t = TableFormat::Table)]
    pub format: TableFormat,

    /// Same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
}

/// How `report` groups commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GroupBy {
    /// One row per tmux pane (server and pane id); outside tmux, per shell session.
    Pane,
    /// One row per tmux session (server and session id), named as it was
    /// last; outside tmux, one row.
    Session,
    /// One row per tmux window (server and window id), from the tmux events
    /// (see `init tmux`).
    Window,
    /// One row per user whose tmux client typed the commands (in a shared
    /// session, the latest active client's); outside tmux, the shell's user.
    ClientUser,
    User,
    Host,
    Cwd,
    /// One row per local calendar day.
    Day,
    /// One row per distinct command text.
    Command,
}

impl From<GroupBy> for tmux_audit::db::GroupBy {
    fn from(by: GroupBy) -> Self {
        match by {
            GroupBy::Pane => Self::Pane,
            GroupBy::Session => Self::Session,
            GroupBy::Window => Self::Window,
            GroupBy::ClientUser => Self::ClientUser,
            GroupBy::User => Self::User,
            GroupBy::Host => Self::Host,
            GroupBy::Cwd => Self::Cwd,
            GroupBy::Day => Self::Day,
            GroupBy::Command => Self::Command,
        }
    }
}

/// How a report orders its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SortBy {
    Commands,
    Failures,
    Duration,
    Last,
}

impl From<SortBy> for tmux_audit::db::SortBy {
    fn from(sort: SortBy) -> Self {
        match sort {
            SortBy::Commands => Self::Commands,
            SortBy::Failures => Self::Failures,
            SortBy::Duration => Self::Duration,
            SortBy::Last => Self::Last,
        }
    }
}

/// The output formats of report, sessions and timeline: a table for a
/// person, or every field for a program (as search's, less `cmd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TableFormat {
    #[value(alias = "text")]
    Table,
    Json,
    Jsonl,
    Csv,
    Tsv,
}

impl TableFormat {
    /// The format for a program, or None for the table.
    pub fn data(self, json: bool) -> Option<tmux_audit::render::DataFormat> {
        use tmux_audit::render::DataFormat;
        match self {
            _ if json => Some(DataFormat::Json),
            TableFormat::Table => None,
            TableFormat::Json => Some(DataFormat::Json),
            TableFormat::Jsonl => Some(DataFormat::Jsonl),
            TableFormat::Csv => Some(DataFormat::Csv),
            TableFormat::Tsv => Some(DataFormat::Tsv),
        }
    }
}

/// Check that no record was changed, deleted, inserted or reordered.
#[derive(Debug, Args)]
#[command(
    long_about = "Walk the hash chain of the records and report the first one that was changed, \
deleted, inserted or reordered after it was written. With --anchor, also check that the chain still \
holds a hash printed earlier by `tmux-audit anchor` (kept somewhere else), which catches the newest \
records being deleted.\n\nExit status: 0 intact, 1 not intact, 2 error."
)]
pub struct Verify {
    #[command(flatten)]
    pub db: DbArg,

    /// What `tmux-audit anchor` printed earlier: every line's hash must
    /// still be in its chain.
    #[arg(long, value_name = "HASH", conflicts_with = "central")]
    pub anchor: Option<String>,

    /// Walk every host's chains on the central store instead (an auditor's role).
    #[arg(long)]
    pub central: bool,

    /// With --central: only this host (its name or its host id).
    #[arg(long, value_name = "NAME", requires = "central")]
    pub host: Option<String>,
}

/// Remove a secret from a recorded command, leaving a trace that `verify` checks.
#[derive(Debug, Args)]
#[command(
    long_about = "Replace a recorded command's text, or only what --pattern matches in it, with \
[REDACTED], and mark the record redacted. For a secret that got past the built-in patterns \
(see `tmux-audit config`).\n\n\
The record keeps its place and its hash in the chain. A redaction entry in the trace, itself \
chained, says who (user and uid), when and why, which record, the SHA-256 of the text before \
and after, and the hash of the record's content before and after: `verify` stays intact, \
checks the record against that entry, and lists the redaction. Any other change of the record \
is still named. The search index and the running totals are updated, freed space in the \
database file is overwritten, and the write-ahead log emptied when no other process holds it.\n\n\
The record's hash still commits to the old text: whoever guesses the secret can confirm the \
guess against it. Treat a leaked secret as leaked: change it.\n\n\
ID is the `id` that `search --format json` and `show` print.\n\n\
Exit status: 0 redacted, 2 on an error (no such record, a pattern that matches nothing, a \
record that no longer matches its hash).",
    after_help = "Examples:\n  tmux-audit redact 1234 --reason 'pasted a password'\n  \
tmux-audit redact 1234 --pattern 'hunter[0-9]+' --reason 'db password in a URL'\n  \
tmux-audit verify"
)]
pub struct Redact {
    #[command(flatten)]
    pub db: DbArg,

    /// The command's id.
    pub id: i64,

    /// Replace only what this regular expression matches (Rust regex
    /// syntax, e.g. 'PGPASSWORD=\S+') [default: the whole text].
    #[arg(long, value_name = "RE")]
    pub pattern: Option<String>,

    /// Why, kept in the trace with who and when.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

/// One screen on the health of the recording, with the fix for each problem.
#[derive(Debug, Args)]
#[command(
    long_about = "Check the database (path, size, schema, integrity, WAL), the file system it \
is on, the permissions of its files, records waiting in the spool, the last error in the log, and \
whether the hook is loaded in this shell; print the fix for each problem.\n\n\
With --repair, a damaged database is moved aside (with its -wal and -shm files, never deleted), a \
new one is started whose chain records the break, and the spool is merged into it.\n\n\
Exit status: 0 when all is well, 1 when a problem remains, 2 on an error."
)]
pub struct Doctor {
    #[command(flatten)]
    pub db: DbArg,

    /// Move a damaged database aside and start a new one.
    #[arg(long)]
    pub repair: bool,
}

/// Move the records waiting in the spool into the database now.
#[derive(Debug, Args)]
#[command(
    long_about = "Move the records waiting in the spool into the database now.\n\n\
Each command is first appended to the spool beside the database (history.db-spool), which \
costs the prompt far less than opening the database; the spool is moved into the database every \
forty commands or so, after five minutes at the latest, and by every `search`, `report`, `show`, \
`sessions`, `timeline`, `verify`, `anchor` and `redact` before it reads. Run this before reading the SQLite file with \
other tools."
)]
pub struct Flush {
    #[command(flatten)]
    pub db: DbArg,
}

/// Ship the records not yet shipped to the central PostgreSQL.
#[derive(Debug, Args)]
#[command(
    long_about = "Ship every local record (commands and tmux events, with their chain hashes) not \
yet on the central PostgreSQL store, in chain order, in batches. Safe to run at any time and \
from many places at once: the server skips a record it holds already, and where to start is \
what the server holds of this host's database (checked against the local chain).\n\n\
Where: `url` under [central] in config.toml, or TMUX_AUDIT_CENTRAL_URL; passwords from \
~/.pgpass or PGPASSFILE, TLS as PGSSLMODE/sslmode says (verify-full for a team).\n\n\
With a central store configured, `record` also starts a detached sync after a command, at most \
every `sync_every_secs` (default 10). --watch keeps shipping, for a systemd user service \
(contrib/systemd/).\n\n\
Exit status: 0 shipped (or nothing to ship), 2 on an error (the records stay local).",
    after_help = "Examples:\n  tmux-audit sync\n  TMUX_AUDIT_CENTRAL_URL='postgresql://web1@db.example/audit?sslmode=verify-full' tmux-audit sync\n  tmux-audit sync --watch --every 30"
)]
pub struct SyncCmd {
    #[command(flatten)]
    pub db: DbArg,

    /// Keep shipping, every --every seconds, until stopped.
    #[arg(long)]
    pub watch: bool,

    /// With --watch: seconds between two syncs.
    #[arg(long, value_name = "SECS", default_value_t = 10, requires = "watch")]
    pub every: u64,

    /// Internal: run detached after a record; errors go to the log file,
    /// an outage once.
    #[arg(long, hide = true)]
    pub detached: bool,
}

/// Administer the central PostgreSQL store.
#[derive(Debug, Args)]
pub struct CentralCmd {
    #[command(subcommand)]
    pub action: CentralAction,
}

#[derive(Debug, Subcommand)]
pub enum CentralAction {
    Init(CentralInit),
}

/// Create or upgrade the central schema and its roles.
#[derive(Debug, Args)]
#[command(
    long_about = "Create or upgrade the central schema (`tmux_audit`) by numbered migrations, \
with the roles tmux_audit_writer (INSERT only, for the host it is bound to), \
tmux_audit_auditor (reads every row) and tmux_audit_user (reads the rows of the Unix user of \
its name), row-level security, monthly partitions and trigram indexes. Run it as the \
database's owner or a superuser; run it again monthly to add partitions. --print-sql shows \
the SQL without running it.",
    after_help = "Examples:\n  tmux-audit central init --url postgresql://postgres@db.example/audit\n  tmux-audit central init --print-sql > central.sql"
)]
pub struct CentralInit {
    /// The database [default: [central] url in config.toml, else $TMUX_AUDIT_CENTRAL_URL].
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,

    /// Print the SQL for a new database instead of running it.
    #[arg(long)]
    pub print_sql: bool,
}

/// Show the configuration file's path and the settings in effect.
#[derive(Debug, Args)]
#[command(
    long_about = "Show where the configuration file is ($XDG_CONFIG_HOME/tmux-audit/config.toml) \
and the settings in effect. The file is optional:\n\n\
  [redact]\n  enabled = true                      # built-in secret patterns (default on)\n  \
patterns = ['corp_[a-z0-9]{24}']    # more regexes whose matches are redacted\n  \
allow = ['AKIAIOSFODNN7EXAMPLE']    # exact matches never redacted"
)]
pub struct ConfigCmd {}

/// Print shell completions for tmux-audit itself.
#[derive(Debug, Args)]
#[command(
    long_about = "Print shell completions for tmux-audit's own commands and flags, e.g.\n  \
bash: tmux-audit completions bash > ~/.local/share/bash-completion/completions/tmux-audit\n  \
zsh:  tmux-audit completions zsh > ~/.zfunc/_tmux-audit   (with ~/.zfunc in $fpath)\n  \
fish: tmux-audit completions fish > ~/.config/fish/completions/tmux-audit.fish"
)]
pub struct Completions {
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Print the man page (roff), or write one page per command with --dir.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  tmux-audit man --dir ~/.local/share/man/man1   (tmux-audit.1, tmux-audit-search.1, …)\n  tmux-audit man | man -l -"
)]
pub struct Man {
    /// Write tmux-audit.1 and a page for each command (tmux-audit-search.1…) in DIR.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Print the newest hash of each chain, to keep elsewhere for `verify --anchor`.
#[derive(Debug, Args)]
#[command(
    long_about = "Print the newest hash of each hash chain, one line each: the commands' (with the \
record's id and start time), and, when there are any, the tmux events' and the trace's. Keep the \
output somewhere the people being audited cannot write; later, `verify --anchor \"$(cat FILE)\"` \
also catches the newest records being deleted or the chain being rewritten. Records still waiting \
in the spool are moved in first; if they cannot be, no anchor is printed."
)]
pub struct Anchor {
    #[command(flatten)]
    pub db: DbArg,
}

#[derive(Debug, Args)]
pub struct DbArg {
    /// The SQLite database [default: $TMUX_AUDIT_DB, else $XDG_DATA_HOME/tmux-audit/history.db]
    #[arg(long = "db", value_name = "PATH")]
    pub path: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Filters (all combine)")]
pub struct FilterArgs {
    /// Commands run in this tmux pane (`%3`), on any server unless --socket is given.
    #[arg(long, value_name = "%N")]
    pub pane: Option<String>,

    /// Commands run in the current tmux pane (outside tmux: in the current shell session).
    #[arg(long, conflicts_with = "pane")]
    pub here: bool,

    /// Commands run in this tmux session: its id (`$2` or `2`), or the name of a session
    /// of the running tmux server.
    #[arg(long, value_name = "NAME_OR_ID")]
    pub session: Option<String>,

    /// Commands run under the tmux server with this socket path.
    #[arg(long, value_name = "PATH")]
    pub socket: Option<String>,

    /// Commands started in this directory.
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,

    /// Commands started in this directory or anywhere below it.
    #[arg(long, value_name = "DIR", conflicts_with = "cwd")]
    pub cwd_under: Option<PathBuf>,

    /// Commands run by this user.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Commands run on this host.
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,

    /// Commands run in this shell.
    #[arg(long, value_enum, value_name = "SHELL")]
    pub shell: Option<Shell>,

    /// Commands that exited with this status.
    #[arg(long = "exit", value_name = "STATUS", allow_hyphen_values = true)]
    pub exit_status: Option<i64>,

    /// Commands that failed (exit status other than 0).
    #[arg(long, conflicts_with_all = ["succeeded", "exit_status"])]
    pub failed: bool,

    /// Commands that succeeded (exit status 0).
    #[arg(long, conflicts_with = "exit_status")]
    pub succeeded: bool,

    /// Commands started at or after WHEN: 2026-11-25T14:00:00Z, 2026-11-25, "2026-11-25 14:00",
    /// today, yesterday, 2h, "3 days ago".
    #[arg(long, value_name = "WHEN", value_parser = parse_when)]
    pub since: Option<DateTime<Utc>>,

    /// Commands started before WHEN (same forms as --since).
    #[arg(long, value_name = "WHEN", value_parser = parse_when)]
    pub until: Option<DateTime<Utc>>,

    /// Commands that ran at least this long: 500ms, 5s, 2m, 1h30m.
    #[arg(long, value_name = "DURATION", value_parser = timespec::parse_duration)]
    pub min_duration: Option<chrono::Duration>,
}

impl From<&FilterArgs> for tmux_audit::filter::Filters {
    fn from(f: &FilterArgs) -> Self {
        Self {
            pane: f.pane.clone(),
            here: f.here,
            session: f.session.clone(),
            socket: f.socket.clone(),
            cwd: f.cwd.clone(),
            cwd_under: f.cwd_under.clone(),
            user: f.user.clone(),
            host: f.host.clone(),
            shell: f.shell.map(Into::into),
            exit_status: f.exit_status,
            failed: f.failed,
            succeeded: f.succeeded,
            since: f.since,
            until: f.until,
            min_duration: f.min_duration,
        }
    }
}

/// A time as `--since` and `--until` take it, in this machine's zone.
pub fn parse_when(input: &str) -> Result<DateTime<Utc>, String> {
    timespec::parse_time(input, Local::now())
}
