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
    after_help = "Environment:\n  TMUX_AUDIT_DB        database file to use instead of $XDG_DATA_HOME/tmux-audit/history.db\n  NO_COLOR             no colour in tables (unless --color=always)\n  TMUX_AUDIT_SESSION   set by the hooks: this shell session's id, for `search --here`"
)]
pub struct Cli {
    /// When to colour tables: auto (a terminal, unless NO_COLOR is set),
    /// always (for `less -R`), never.
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = Colour::Auto)]
    pub color: Colour,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Colour {
    Auto,
    Always,
    Never,
}

impl From<Colour> for tmux_audit::render::ColourChoice {
    fn from(colour: Colour) -> Self {
        match colour {
            Colour::Auto => Self::Auto,
            Colour::Always => Self::Always,
            Colour::Never => Self::Never,
        }
    }
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
            _ => Cli::try_parse().map(|cli| {
                tmux_audit::render::choose_colour(cli.color.into());
                cli.command
            }),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Init(Init),
    Record(Record),
    RecordLater(RecordLater),
    Recorder(Recorder),
    MergeLater(MergeLater),
    TmuxEvent(TmuxEventCmd),
    Capture(CaptureCmd),
    Search(Search),
    Pick(Pick),
    Export(Export),
    Report(Report),
    Show(Show),
    Sessions(Sessions),
    Timeline(Timeline),
    Replay(Replay),
    Verify(Verify),
    Anchor(Anchor),
    Redact(Redact),
    Import(Import),
    Prune(Prune),
    Forward(ForwardCmd),
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

    /// Leave Ctrl-R as the shell's own: no binding of `tmux-audit pick`.
    #[arg(long)]
    pub no_bind: bool,
}

/// Pick a command from the history, interactively, for the command line (Ctrl-R).
#[derive(Debug, Args)]
#[command(
    long_about = "Pick a command from the history in a full-screen list, newest at the \
bottom, and print it on stdout, exactly as recorded, for the shell's Ctrl-R binding to put on the \
command line (not run). The list is drawn on the terminal (/dev/tty), so stdout can be captured.\n\n\
Type to filter (a substring; case-insensitive unless the filter has an upper-case letter, as in \
`search`). Up/Down or Ctrl-P/Ctrl-N move, PageUp/PageDown a page; Ctrl-R cycles the scope: this \
pane, this tmux session, this host, everything; Ctrl-U clears the filter, Ctrl-W its last word. \
Enter prints the selected command and exits 0; Esc or Ctrl-G exits 1 and Ctrl-C 130, printing \
nothing.\n\n\
`init bash|zsh|fish` binds it to Ctrl-R (`--no-bind` leaves Ctrl-R alone)."
)]
pub struct Pick {
    #[command(flatten)]
    pub db: DbArg,

    /// Start with this filter (the bindings pass the current command line).
    #[arg(
        long,
        value_name = "TEXT",
        default_value = "",
        allow_hyphen_values = true
    )]
    pub query: String,

    /// The scope to start in.
    #[arg(long, value_enum, default_value_t = PickScope::Everything)]
    pub scope: PickScope,

    /// The pane that "pane" means, instead of $TMUX_PANE (in a tmux popup,
    /// which has none: `--pane "$(tmux display-message -p '#{pane_id}')"`).
    #[arg(long, value_name = "%ID")]
    pub pane: Option<String>,

    /// Benchmarks: exit (status 1) once the first frame is drawn.
    #[arg(long, hide = true)]
    pub exit_after_first_frame: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PickScope {
    Pane,
    Session,
    Host,
    Everything,
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

/// Internal: capture one pane's output. Run by tmux's `pipe-pane` (see
/// `init tmux` and `[capture]` in config.toml), with the pane's output on
/// standard input; prints nothing, and errors go to the log file.
#[derive(Debug, Args)]
#[command(hide = true)]
pub struct CaptureCmd {
    #[command(flatten)]
    pub db: DbArg,

    /// The pane captured, `%N`.
    #[arg(long, value_name = "%N")]
    pub pane: String,

    /// The pid of its tmux server.
    #[arg(long, value_name = "PID")]
    pub server_pid: i64,
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

/// Internal: the recorder a bash or zsh hook starts once when it loads, so
/// that no command starts a process of its own. Makes a FIFO private to the
/// shell, starts the recorder in the background (its own process group, no
/// job of the shell's) reading framed records from it, and prints the
/// FIFO's path and the recorder's pid, separated by a tab. The recorder
/// ends, after storing what is left in the FIFO, when the shell does.
#[derive(Debug, Args)]
#[command(hide = true)]
pub struct Recorder {
    #[command(flatten)]
    pub db: DbArg,

    /// The shell whose hook writes to it.
    #[arg(long, value_enum)]
    pub shell: Shell,

    /// The shell's process id: the recorder ends when it does.
    #[arg(long, value_name = "PID")]
    pub shell_pid: u32,

    /// Internal: be the recorder, reading frames from standard input (the FIFO).
    #[arg(long, hide = true)]
    pub serve: bool,

    /// Internal: the shell's terminal, as its starter saw it.
    #[arg(long, hide = true, value_name = "PATH", requires = "serve")]
    pub tty: Option<String>,
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
tmux-audit search --output 'permission denied' --since today\n  \
tmux-audit search --all --unique --reverse --format cmd -0 | fzf --read0"
)]
pub struct Search {
    #[command(flatten)]
    pub db: DbArg,

    #[command(flatten)]
    pub text: PatternArgs,

    /// Only commands whose captured output holds TEXT (as plain text,
    /// escape sequences dropped; see `[capture]` in config.toml).
    #[arg(long, value_name = "TEXT")]
    pub output: Option<String>,

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

/// PATTERN and how it matches the command's text: `search` and `export`.
#[derive(Debug, Args)]
pub struct PatternArgs {
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
}

impl PatternArgs {
    /// PATTERN, when one is given (an empty one matches everything).
    pub fn pattern(&self) -> Option<&str> {
        self.pattern.as_deref().filter(|p| !p.is_empty())
    }

    /// How PATTERN matches.
    pub fn kind(&self) -> tmux_audit::filter::MatchKind {
        use tmux_audit::filter::MatchKind;
        match (self.exact, self.prefix, self.regex) {
            (true, _, _) => MatchKind::Exact,
            (_, true, _) => MatchKind::Prefix,
            (_, _, true) => MatchKind::Regex,
            _ => MatchKind::Substring,
        }
    }
}

/// Write every recorded command (or those the filters keep) for another program.
#[derive(Debug, Args)]
#[command(
    long_about = "Write recorded commands for another program: every command the filters keep \
(all of them without a filter), oldest first, one JSON object per line by default. The output \
is streamed from the database row by row, so an export of any size takes a few megabytes of \
memory.\n\n\
The fields are those of `search --format jsonl`, described with their types in docs/schema.json \
(JSON Schema); each record carries `schema_version`. With --ecs each record is an Elastic Common \
Schema document instead (process.command_line, process.exit_code, user.name, host.name, \
event.duration in nanoseconds, ...; the README has the table). tmux events are not exported: \
they place each command (tmux.session.name, tmux.window.name, tmux.typed_by) instead.\n\n\
--format asciicast writes what one pane (--pane, --here) or one tmux session (--session) \
printed, captured with `[capture] enabled = true`, between --since and --until, as an \
asciicast v2 file for `asciinema play` (the same file as `replay --asciicast`).\n\n\
Exit status: 0 when something was written, 1 when nothing matched, 2 on an error.",
    after_help = "Examples:\n  tmux-audit export > history.jsonl\n  \
tmux-audit export --since '30 days ago' --user deploy --format csv > deploy.csv\n  \
tmux-audit export --ecs | curl -s -H 'Content-Type: application/x-ndjson' --data-binary @- ...\n  \
tmux-audit export --format asciicast --pane %3 --since '2 hours ago' > pane3.cast"
)]
pub struct Export {
    #[command(flatten)]
    pub db: DbArg,

    #[command(flatten)]
    pub text: PatternArgs,

    #[command(flatten)]
    pub filters: FilterArgs,

    /// Newest first.
    #[arg(long, help_heading = "Output")]
    pub reverse: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl, help_heading = "Output")]
    pub format: ExportFormat,

    /// Each record as an Elastic Common Schema document (jsonl or json only).
    #[arg(long, help_heading = "Output")]
    pub ecs: bool,

    /// The terminal's width in an asciicast.
    #[arg(long, default_value_t = 80, help_heading = "Output")]
    pub cols: u16,

    /// The terminal's height in an asciicast.
    #[arg(long, default_value_t = 24, help_heading = "Output")]
    pub rows: u16,
}

impl Export {
    /// Flags that clap cannot relate by itself: ECS documents are nested
    /// objects, which CSV and TSV cannot hold.
    pub fn check(&self) -> Result<(), String> {
        if self.ecs && matches!(self.format, ExportFormat::Csv | ExportFormat::Tsv) {
            return Err(
                "--ecs writes nested JSON documents, which CSV and TSV cannot hold; use --format jsonl or json"
                    .into(),
            );
        }
        if self.format == ExportFormat::Asciicast {
            self.check_asciicast()?;
        }
        Ok(())
    }

    /// An asciicast is what one pane or one session printed, in a span of
    /// time: the other filters select commands, not output.
    fn check_asciicast(&self) -> Result<(), String> {
        let f = &self.filters;
        let panes = usize::from(f.pane.is_some()) + usize::from(f.here);
        if panes + usize::from(f.session.is_some()) != 1 {
            return Err(
                "--format asciicast writes what one pane or one tmux session printed: give --pane %N, --here or --session NAME (one of them)"
                    .into(),
            );
        }
        let others = [
            (self.text.pattern.is_some(), "PATTERN"),
            (self.ecs, "--ecs"),
            (self.reverse, "--reverse"),
            (f.window.is_some(), "--window"),
            (f.typed_by.is_some(), "--typed-by"),
            (f.socket.is_some(), "--socket"),
            (f.cwd.is_some() || f.cwd_under.is_some(), "--cwd"),
            (f.user.is_some(), "--user"),
            (f.host.is_some(), "--host"),
            (f.shell.is_some(), "--shell"),
            (
                f.exit_status.is_some() || f.failed || f.succeeded,
                "--exit/--failed/--succeeded",
            ),
            (f.min_duration.is_some(), "--min-duration"),
        ];
        if let Some((_, name)) = others.iter().find(|(given, _)| *given) {
            return Err(format!(
                "--format asciicast takes a pane or session and --since/--until, not {name}: output is not filtered by command"
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Jsonl,
    Json,
    Csv,
    Tsv,
    /// What one pane or session printed (captured output), asciicast v2.
    Asciicast,
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

    /// What one row counts [default: pane; with --central, host].
    #[arg(long, value_enum)]
    pub by: Option<GroupBy>,

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

    /// Count on the central store (every host the role may read): per host
    /// unless --by says otherwise.
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
    after_help = "Examples:\n  tmux-audit show 1234\n  tmux-audit show 1234 --format json\n  tmux-audit show 1234 --output"
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

    /// Print what the command printed (with `[capture] enabled = true`), as
    /// plain text: escape sequences dropped, lines as the terminal left them.
    #[arg(long, conflicts_with_all = ["format", "json"])]
    pub output: bool,

    /// With --output: the bytes exactly as the pane received them.
    #[arg(long, requires = "output")]
    pub raw: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShowFormat {
    #[value(alias = "table")]
    Text,
    Json,
}

/// Play a pane's captured output in this terminal, with its timing, or write it as an asciicast.
#[derive(Debug, Args)]
#[command(
    long_about = "Play what a pane printed (captured with `[capture] enabled = true`) in this \
terminal with its timing (pauses longer than 2 seconds shortened), or, with --asciicast FILE, \
write it as an asciicast v2 file for `asciinema play` and asciinema-player.",
    after_help = "Examples:\n  tmux-audit replay --pane %3 --since '1 hour ago'\n  \
tmux-audit replay --pane %3 --speed 4\n  tmux-audit replay --pane %3 --asciicast pane3.cast\n  \
tmux-audit replay --session work --since '2 hours ago'"
)]
pub struct Replay {
    #[command(flatten)]
    pub db: DbArg,

    /// The pane, `%N` (of the tmux server that captured it last, unless --server-pid).
    #[arg(long, value_name = "%N", required_unless_present = "session")]
    pub pane: Option<String>,

    /// Every pane of this tmux session (its id `$N` or any name it had) that ran
    /// a recorded command, one after the other.
    #[arg(long, value_name = "SESSION", conflicts_with = "pane")]
    pub session: Option<String>,

    /// The pid of the pane's tmux server.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<i64>,

    /// From WHEN ("2h", "yesterday", "2026-11-25 09:00").
    #[arg(long, value_name = "WHEN", value_parser = parse_when)]
    pub since: Option<DateTime<Utc>>,

    /// Until WHEN.
    #[arg(long, value_name = "WHEN", value_parser = parse_when)]
    pub until: Option<DateTime<Utc>>,

    /// Play this many times faster (from 0.001; 0.5 is half as fast).
    #[arg(long, default_value_t = 1.0, value_name = "FACTOR")]
    pub speed: f64,

    /// Write an asciicast v2 file instead of playing.
    #[arg(long, value_name = "FILE")]
    pub asciicast: Option<PathBuf>,

    /// The terminal's width in the asciicast.
    #[arg(long, default_value_t = 80, requires = "asciicast")]
    pub cols: u16,

    /// The terminal's height in the asciicast.
    #[arg(long, default_value_t = 24, requires = "asciicast")]
    pub rows: u16,
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

    /// The sessions of every host the role may read on the central store.
    #[arg(long)]
    pub central: bool,

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

    /// Only the tmux server with this socket: its path, or its name
    /// (`default`, or what `tmux -L NAME` was given).
    #[arg(long, value_name = "SOCKET")]
    pub server: Option<String>,

    /// Only what happened on this host.
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,

    /// Only the commands typed by this user (in a shared session, the user
    /// whose client typed them), and the events of this user's clients.
    #[arg(long, value_name = "USER")]
    pub typed_by: Option<String>,

    /// Show tmux's automatic window renames too (one for each program
    /// run, named after it); folded out by default. Renames made with
    /// `rename-window` are always shown.
    #[arg(long)]
    pub renames: bool,

    /// Read the central store (every host the role may read; --host picks one).
    #[arg(long)]
    pub central: bool,
    /// Under each command in the table, the first N lines of what it printed
    /// (captured with `[capture] enabled = true`; see `show ID --output`).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub output_lines: usize,

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

    /// Leave the captured output out: check the chains only (a copy of the
    /// database, say, without the capture directory beside it).
    #[arg(long, conflicts_with = "central")]
    pub without_output: bool,
}

/// Bring in another tool's history: bash, zsh, fish, atuin, zsh-histdb, mcfly, or a tmux-audit export.
#[derive(Debug, Args)]
#[command(
    long_about = "Import the history another tool kept, so that `search`, `report` and `timeline` \
see it too.\n\n\
FILE defaults to where the tool keeps it: bash $HISTFILE, else ~/.bash_history; zsh \
~/.zsh_history; fish $XDG_DATA_HOME/fish/fish_history; atuin $XDG_DATA_HOME/atuin/history.db; \
zsh-histdb $HISTDB_FILE, else ~/.histdb/zsh-history.db; mcfly ~/.mcfly/history.db where it exists, \
else $XDG_DATA_HOME/mcfly/history.db. A tmux-audit export (JSON Lines, as `search --format jsonl` \
prints them) has no usual place: give FILE.\n\n\
Each imported command keeps what the tool knew (time, duration, exit status, directory, host, \
session) and nothing more: an unknown time shows as 1970-01-01, an unknown directory or host as \
empty. It is marked imported (tool and file, in the hash chain, so it never passes as recorded), \
redacted like a recorded command, and stored after the records already there. Importing the same \
file again adds only what it did not add before; --dry-run counts without writing.\n\n\
A file is known by its path, and a history piped in (`/dev/stdin`, `<(ssh host cat \
.bash_history)`) by a hash of what it holds, so a piped history that grew since counts as a new \
one: give --name, the same each time, to a history that comes by a pipe or by another path, \
and only its new entries are added.\n\n\
Lines that are not the tool's format are skipped and counted; the first is named.\n\n\
Exit status: 0 imported, 1 imported but lines were skipped, 2 on an error (file not found or \
nothing in it readable as that tool's history).",
    after_help = "Examples:\n  tmux-audit import bash\n  tmux-audit import zsh ~/backup/.zsh_history --dry-run\n  \
tmux-audit import atuin\n  ssh web1 cat .bash_history | tmux-audit import bash /dev/stdin --name web1-bash\n  \
tmux-audit search --all --format jsonl > all.jsonl; tmux-audit import --db other.db tmux-audit all.jsonl"
)]
pub struct Import {
    #[command(flatten)]
    pub db: DbArg,

    /// Whose history it is.
    #[arg(value_enum)]
    pub tool: ImportTool,

    /// The history file [default: where the tool keeps it; see above].
    pub file: Option<PathBuf>,

    /// What the history is known by from one import to the next, in place
    /// of the file's path (a piped one's: a hash of what it holds); kept
    /// in each imported command's mark.
    #[arg(long, value_name = "NAME", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub name: Option<String>,

    /// Count what would be added and what is there already; write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// The tools `import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportTool {
    Bash,
    Zsh,
    Fish,
    Atuin,
    ZshHistdb,
    Mcfly,
    TmuxAudit,
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

/// Delete old records (and tmux events), leaving a trace that `verify` checks.
#[derive(Debug, Args)]
#[command(
    long_about = "Delete the records that started, and the tmux events that happened, more than --older-than ago, and give the space back to the file system.

A prune entry in the trace, itself chained, says who (user and uid), when and why, the cut-off time, what kept older rows, how many went, and each run of consecutive rows that went with the hash before it and at its end. `verify` steps over exactly those gaps, stays intact and lists the prune; a record deleted any other way is still named. Rows that no longer match their hash are not pruned (that would hide the tampering). The newest record and tmux event always stay: the next one links to them, and an anchor names them. Records from before tmux-audit kept a chain stay too.

The freed space is given back in small steps, each a short write: records made meanwhile wait in the spool. A database made by an earlier tmux-audit first needs one VACUUM to allow that, which rewrites the file once.

With `[retention] older_than = \"180d\"` in config.toml, the background merge prunes once a day, and this command takes that as its default.

Exit status: 0 done (also when nothing was old enough), 2 on an error.",
    after_help = "Examples:
  tmux-audit prune --older-than 180d --dry-run
  tmux-audit prune --older-than 365d --keep-failed --keep-matching '^sudo ' --reason 'policy: a year'
  tmux-audit verify"
)]
pub struct Prune {
    #[command(flatten)]
    pub db: DbArg,

    /// Delete what is older than this (`180d`, `26 weeks`) [default:
    /// `[retention] older_than` in config.toml].
    #[arg(long, value_name = "AGE")]
    pub older_than: Option<String>,

    /// Count what would go; change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Keep failed commands (a non-zero exit status), however old.
    #[arg(long)]
    pub keep_failed: bool,

    /// Keep commands whose text matches this regular expression, however
    /// old (repeatable).
    #[arg(long, value_name = "RE")]
    pub keep_matching: Vec<String>,

    /// Why, kept in the trace with who and when [default: "older than AGE"].
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

/// Send records and tmux events to syslog or journald, as `[forward]` in config.toml says.
#[derive(Debug, Args)]
#[command(
    name = "forward",
    long_about = "Send the records and tmux events that the targets under [forward] in \
config.toml have not taken yet: syslog (RFC 5424, structured data with the fields; `unix:/dev/log`, \
`udp://HOST:PORT`, or `tcp://HOST:PORT` with octet-counting framing) and journald (its native \
protocol, fields TMUX_AUDIT_COMMAND, TMUX_AUDIT_PANE, ...).\n\n\
The background merge does the same after each merge, never the prompt's own process. Each \
target has a cursor in the database, advanced once a batch is delivered: a collector that is \
down loses nothing, what waited goes with the next run. A command longer than the transport's \
limit is cut, and the message carries its whole length and SHA-256.\n\n\
Exit status: 0 sent (also nothing), 2 when a target did not take them."
)]
pub struct ForwardCmd {
    #[command(flatten)]
    pub db: DbArg,
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

    /// Commands run in this tmux session: its id (`$2` or `2`), or any name it had
    /// (as recorded, or in the running tmux server).
    #[arg(long, value_name = "NAME_OR_ID")]
    pub session: Option<String>,

    /// Commands run in this tmux window: SESSION:INDEX (prod:1) or its id (@4).
    #[arg(long, value_name = "WINDOW")]
    pub window: Option<String>,

    /// Commands typed by this user: in a shared tmux session, the user whose client
    /// typed them (see `show`); else the shell's user.
    #[arg(long, value_name = "USER")]
    pub typed_by: Option<String>,

    /// Commands run under the tmux server with this socket path.
    #[arg(long, visible_alias = "server", value_name = "PATH")]
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
            window: f.window.clone(),
            typed_by: f.typed_by.clone(),
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
            live_session: None,
        }
    }
}

/// A time as `--since` and `--until` take it, in this machine's zone.
pub fn parse_when(input: &str) -> Result<DateTime<Utc>, String> {
    timespec::parse_time(input, Local::now())
}
