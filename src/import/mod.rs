//! `tmux-audit import`: other tools' histories brought into the database.
//!
//! Each format has a reader that is a pure function of the file's bytes
//! (`bash`, `zsh`, `fish`, `jsonl`) or reads a SQLite file by its
//! documented schema (`sqlite_sources`), and gives entries with what the
//! tool knew: the command's exact bytes and, where the tool kept them, its
//! start, duration, exit status, directory, host and session. The rest is
//! left empty, not made up: an unknown time is stored as 0 (1970-01-01),
//! an unknown directory or host as empty text, an unknown exit status or
//! duration as NULL. `user` and `uid` are the importing user's (whose
//! history it is), unless the tool named another user (atuin): then the
//! uid is not known (`record::UNKNOWN_UID`).
//!
//! Each entry then takes the recorder's path: its text is redacted
//! ([`crate::redact`]), it is marked imported (tool and file, hashed into
//! the chain: see `chain.rs`), and it is stored through the one insert
//! path, extending the chain, in transactions of [`BATCH`] entries.
//!
//! Importing a file twice adds nothing: each entry has a key, the SHA-256
//! of the tool, the file (absolute), its start time, its text as stored,
//! and how many identical entries (same time and text) came before it in
//! the file; a key stored already is left out. (A history file that drops
//! its oldest lines, as bash's does past `HISTFILESIZE`, renumbers
//! identical untimed entries: those may then be imported again.) A
//! tmux-audit export keeps each record's own session and number, which
//! identify it.
//!
//! Lines a reader cannot make sense of are skipped and counted (the
//! first one is named); a file with nothing readable is an error naming
//! its first bad line.

pub mod bash;
pub mod fish;
pub mod jsonl;
pub mod sqlite_sources;
pub mod zsh;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::config::Redact;
use crate::db::{Counts, Database, DbError, Numbering};
use crate::record::{CommandRecord, Imported};
use crate::redact;
use crate::text::{hex, StoredText};

/// Entries read, then stored, per transaction: large enough that the
/// commit's cost vanishes (a million entries in forty transactions),
/// small enough that a recording shell waits for the write lock a
/// fraction of a second and that the batch's records (about 1 KiB each
/// in memory) stay a few tens of MB.
pub const BATCH: usize = 25_000;

/// SQLite's page cache during an import, in KiB: room for the import
/// keys' index of a few million entries, so that checking and adding a
/// key reads no page back from the file.
const CACHE_KIB: i64 = 64 * 1024;

/// The tools whose history can be imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Bash,
    Zsh,
    Fish,
    Atuin,
    ZshHistdb,
    Mcfly,
    TmuxAudit,
}

impl Source {
    /// Its name, as typed and as stored in `import_source`.
    pub fn name(self) -> &'static str {
        match self {
            Source::Bash => "bash",
            Source::Zsh => "zsh",
            Source::Fish => "fish",
            Source::Atuin => "atuin",
            Source::ZshHistdb => "zsh-histdb",
            Source::Mcfly => "mcfly",
            Source::TmuxAudit => "tmux-audit",
        }
    }

    /// The file the tool keeps its history in, when not told otherwise:
    /// `histfile` is `$HISTFILE` (bash only: zsh does not export it),
    /// `histdb_file` `$HISTDB_FILE`, `data_home` `$XDG_DATA_HOME`. None for
    /// a tmux-audit export, which has no usual place.
    pub fn usual_file(
        self,
        home: &Path,
        histfile: Option<PathBuf>,
        histdb_file: Option<PathBuf>,
        data_home: Option<PathBuf>,
    ) -> Option<PathBuf> {
        let data_home = data_home
            .filter(|d| d.is_absolute())
            .unwrap_or_else(|| home.join(".local/share"));
        Some(match self {
            Source::Bash => histfile.unwrap_or_else(|| home.join(".bash_history")),
            Source::Zsh => home.join(".zsh_history"),
            Source::Fish => data_home.join("fish/fish_history"),
            Source::Atuin => data_home.join("atuin/history.db"),
            Source::ZshHistdb => histdb_file.unwrap_or_else(|| home.join(".histdb/zsh-history.db")),
            Source::Mcfly => {
                // mcfly's older place, used while it exists.
                let legacy = home.join(".mcfly/history.db");
                if legacy.exists() {
                    legacy
                } else {
                    data_home.join("mcfly/history.db")
                }
            }
            Source::TmuxAudit => return None,
        })
    }

    /// What the `shell` column says of its entries, when the entry does not.
    fn shell(self) -> &'static str {
        match self {
            Source::Bash => "bash",
            Source::Zsh | Source::ZshHistdb => "zsh",
            Source::Fish => "fish",
            Source::Atuin | Source::Mcfly | Source::TmuxAudit => "",
        }
    }
}

/// One entry of another tool's history, with what that tool knew.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The exact bytes.
    pub command: Vec<u8>,
    pub started_at_us: Option<i64>,
    pub duration_us: Option<i64>,
    pub exit_status: Option<i64>,
    pub cwd: Option<Vec<u8>>,
    pub host: Option<String>,
    pub user: Option<String>,
    pub session: Option<String>,
    pub shell: Option<String>,
    /// Where it begins: the line of a text file (from 1), the row id of a
    /// database.
    pub line: usize,
}

/// A line a reader could not make sense of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub line: usize,
    pub why: String,
}

/// What a reader found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<T> {
    pub entries: Vec<T>,
    pub skipped: Vec<Skipped>,
}

impl<T> Default for Parsed<T> {
    fn default() -> Self {
        Parsed {
            entries: Vec::new(),
            skipped: Vec::new(),
        }
    }
}

/// An import that could not be done.
#[derive(Debug)]
pub enum ImportError {
    /// The file could not be read.
    Read { file: PathBuf, source: io::Error },
    /// Nothing in the file reads as this tool's history.
    Invalid {
        file: PathBuf,
        tool: Source,
        first: Skipped,
    },
    /// Not the tool's SQLite database, or not readable as one.
    Database { file: PathBuf, why: String },
    /// Storing failed.
    Store(DbError),
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportError::Read { file, source } => write!(
                f,
                "cannot read {}: {source}; give the history file as FILE (see `tmux-audit import --help`)",
                file.display()
            ),
            ImportError::Invalid { file, tool, first } => write!(
                f,
                "{}:{}: {}; nothing in it reads as {} history: is it that tool's file?",
                file.display(),
                first.line,
                first.why,
                tool.name()
            ),
            ImportError::Database { file, why } => write!(
                f,
                "{}: {why}; give the tool's history database as FILE",
                file.display()
            ),
            ImportError::Store(err) => write!(f, "{err}; {}", err.hint()),
        }
    }
}

impl std::error::Error for ImportError {}

impl From<DbError> for ImportError {
    fn from(err: DbError) -> Self {
        ImportError::Store(err)
    }
}

/// How to import.
#[derive(Debug, Clone)]
pub struct Options {
    /// Count only; write nothing.
    pub dry_run: bool,
    pub redact: Redact,
    /// The importing user, for entries whose tool did not name one.
    pub user: String,
    pub uid: u32,
    /// When the import runs: every row's `recorded_at_us`.
    pub now_us: i64,
    /// `[record] max_command_bytes`: a longer entry keeps its first bytes,
    /// its length and SHA-256, as a recorded command does.
    pub max_command_bytes: usize,
    /// What the history is known by in its entries' keys and marks (None:
    /// the file's path; a piped history's, a hash of what it holds).
    pub name: Option<String>,
}

/// What an import did (or, with `dry_run`, would do).
#[derive(Debug, Default)]
pub struct Report {
    /// The file read, as an absolute path.
    pub file: PathBuf,
    /// Entries read.
    pub read: usize,
    pub counts: Counts,
    /// Entries whose text had secrets replaced.
    pub redacted: usize,
    /// Lines skipped, and the first of them.
    pub skipped: usize,
    pub first_skipped: Option<Skipped>,
    /// User redaction patterns that do not compile (skipped).
    pub broken_patterns: Vec<String>,
    /// Entries whose time or duration could not be a real one (a start
    /// past year 9999, a negative duration): stored as unknown.
    pub times_refused: usize,
    /// Entries longer than `max_command_bytes`, kept cut.
    pub cut: usize,
}

/// Imports `file`, a history of `source`, into `db`. No database (None)
/// is one with nothing in it yet: only for a dry run, which then counts
/// every entry as new without making the database.
///
/// The file is read as it is stored: [`BATCH`] entries at a time are made
/// into records and stored before the next are read, so memory does not
/// grow with the file (only the tally of identical entries does, 16 bytes
/// per distinct time and text).
pub fn import(
    db: Option<&mut Database>,
    source: Source,
    file: &Path,
    options: &Options,
) -> Result<Report, ImportError> {
    let read_err = |source| ImportError::Read {
        file: file.to_path_buf(),
        source,
    };
    // A pipe (`import bash /dev/stdin`) is read once into a private copy
    // and named by what it holds: the same history piped again keeps its
    // keys, another one piped in its turn is not taken for it.
    let piped = match std::fs::metadata(file) {
        Ok(meta) if !meta.is_file() && !meta.is_dir() => {
            Some(PipedCopy::of(file).map_err(read_err)?)
        }
        _ => None,
    };
    // (The file read, its name in the keys, the file named to the user.)
    let (file, file_name, shown) = match &piped {
        Some(copy) => (copy.path.clone(), copy.name.clone(), file.to_path_buf()),
        None => {
            let file = std::fs::canonicalize(file).map_err(read_err)?;
            let name = file.to_string_lossy().into_owned();
            (file.clone(), name, file)
        }
    };
    let file_name = options.name.clone().unwrap_or(file_name);
    let mut db = db;
    if let Some(db) = db.as_deref_mut() {
        // The import keys' index is written at random places.
        db.set_cache_kib(CACHE_KIB)?;
    }
    let redactor = Redactor::new(&options.redact);
    let mut redacted = 0;
    let mark = |key| {
        Some(Imported {
            source: source.name().into(),
            file: file_name.clone(),
            key,
        })
    };
    let mut report = match entry_reader(source) {
        None => {
            let to_record = |mut record: CommandRecord| {
                let bytes = record
                    .command_raw
                    .take()
                    .unwrap_or_else(|| record.command.clone().into_bytes());
                let (text, was_redacted) = redactor.apply(bytes);
                record.command = text.text;
                record.command_raw = text.raw;
                record.redacted |= was_redacted;
                redacted += usize::from(record.redacted);
                record.imported = mark(key(&[
                    source.name().as_bytes(),
                    file_name.as_bytes(),
                    record.shell_session.as_bytes(),
                    &record.seq.to_be_bytes(),
                ]));
                record
            };
            let mut store = Store::new(db, to_record, Numbering::Keep, options);
            read_lines(&file, jsonl::Reader, &mut |parsed| store.take(parsed))?;
            store.report()
        }
        Some(read_entries) => {
            let file_session = format!(
                "import:{}:{}",
                source.name(),
                &hex(&key(&[file_name.as_bytes()]))[..16]
            );
            // How many entries of each time and text came before: the key's
            // ordinal. Keyed by 64 bits of the identity: two identities that
            // share them share a tally, which changes ordinals but never makes
            // two keys alike (each key hashes the whole identity), and the
            // same file still gives the same keys.
            let mut seen: HashMap<u64, u32> = HashMap::new();
            let to_record = |entry: HistoryEntry| {
                let (text, was_redacted) = redactor.apply(entry.command);
                let stored = text.raw.as_deref().unwrap_or(text.text.as_bytes());
                let time = entry.started_at_us.unwrap_or(0).to_be_bytes();
                let identity = digest(&[
                    source.name().as_bytes(),
                    file_name.as_bytes(),
                    &time,
                    stored,
                ]);
                let short = u64::from_be_bytes(identity[..8].try_into().unwrap_or_default());
                let ordinal = seen.entry(short).or_insert(0);
                let key = key(&[&identity, &u64::from(*ordinal).to_be_bytes()]);
                *ordinal += 1;
                let cwd = entry.cwd.map(StoredText::from_bytes);
                let shell_session = match (source, entry.session) {
                    (Source::ZshHistdb, Some(session)) => format!("{file_session}:{session}"),
                    (_, Some(session)) => session,
                    (_, None) => file_session.clone(),
                };
                redacted += usize::from(was_redacted);
                CommandRecord {
                    command: text.text,
                    command_raw: text.raw,
                    exit_status: entry.exit_status,
                    started_at_us: entry.started_at_us.unwrap_or(0),
                    duration_us: entry.duration_us,
                    cwd_raw: cwd.as_ref().and_then(|c| c.raw.clone()),
                    cwd: cwd.map(|c| c.text).unwrap_or_default(),
                    // The importer's uid is only theirs: a user the tool
                    // names otherwise (atuin) has a uid not known here.
                    uid: match &entry.user {
                        Some(user) if *user != options.user => crate::record::UNKNOWN_UID,
                        _ => options.uid,
                    },
                    user: entry.user.unwrap_or_else(|| options.user.clone()),
                    host: entry.host.unwrap_or_default(),
                    shell: entry.shell.unwrap_or_else(|| source.shell().to_string()),
                    shell_session,
                    redacted: was_redacted,
                    imported: mark(key),
                    ..CommandRecord::default()
                }
            };
            let mut store = Store::new(db, to_record, Numbering::Next, options);
            read_entries(&file, &mut |parsed| store.take(parsed))?;
            store.report()
        }
    };
    // A file in which nothing could be read is an error, naming its first
    // bad line (nothing was stored: there was nothing to store).
    if let (0, Some(first)) = (report.read, &report.first_skipped) {
        return Err(ImportError::Invalid {
            file: shown,
            tool: source,
            first: first.clone(),
        });
    }
    report.file = shown;
    report.redacted = redacted;
    report.broken_patterns = redactor.broken;
    Ok(report)
}

/// How a source's file is read into entries: None for a tmux-audit
/// export, which gives records.
fn entry_reader(source: Source) -> Option<ReadEntries> {
    Some(match source {
        Source::Bash => |file, sink| read_lines(file, bash::Reader::default(), sink),
        Source::Zsh => |file, sink| read_lines(file, zsh::Reader::default(), sink),
        Source::Fish => |file, sink| read_lines(file, fish::Reader::default(), sink),
        Source::Atuin => sqlite_sources::atuin,
        Source::ZshHistdb => sqlite_sources::zsh_histdb,
        Source::Mcfly => sqlite_sources::mcfly,
        Source::TmuxAudit => return None,
    })
}

/// Where a reader gives its entries, a batch at a time: it takes them
/// (and the lines skipped) out of the [`Parsed`] it is given.
pub type Sink<'a, T = HistoryEntry> = &'a mut dyn FnMut(&mut Parsed<T>) -> Result<(), ImportError>;

/// A reader of a source's file into entries.
type ReadEntries = fn(&Path, Sink<'_>) -> Result<(), ImportError>;

/// Makes records of the entries it is given and stores them, a
/// transaction per batch, keeping the tally for the [`Report`].
struct Store<'d, 'o, F> {
    db: Option<&'d mut Database>,
    to_record: F,
    numbering: Numbering,
    options: &'o Options,
    report: Report,
    /// In a dry run, the keys counted (their first 16 bytes).
    counted: HashSet<[u8; 16]>,
}

impl<'d, 'o, F> Store<'d, 'o, F> {
    fn new(
        db: Option<&'d mut Database>,
        to_record: F,
        numbering: Numbering,
        options: &'o Options,
    ) -> Self {
        Store {
            db,
            to_record,
            numbering,
            options,
            report: Report::default(),
            counted: HashSet::new(),
        }
    }

    /// Stores the entries of `parsed` and notes its skipped lines,
    /// leaving it empty.
    fn take<T>(&mut self, parsed: &mut Parsed<T>) -> Result<(), ImportError>
    where
        F: FnMut(T) -> CommandRecord,
    {
        self.report.skipped += parsed.skipped.len();
        if self.report.first_skipped.is_none() {
            self.report.first_skipped = parsed.skipped.first().cloned();
        }
        parsed.skipped.clear();
        if parsed.entries.is_empty() {
            return Ok(());
        }
        self.report.read += parsed.entries.len();
        let mut batch: Vec<CommandRecord> =
            parsed.entries.drain(..).map(&mut self.to_record).collect();
        for record in &mut batch {
            self.report.times_refused += usize::from(refuse_impossible_times(record));
            self.report.cut += usize::from(cut_long(record, self.options.max_command_bytes));
        }
        // A real import stores a key once, so a record repeated in the
        // file counts as there already: a dry run, which stores nothing,
        // must remember the keys it counted to say the same.
        let mut repeated = 0;
        if self.options.dry_run {
            let before = batch.len();
            batch.retain(|r| {
                let key = r.imported.as_ref().map_or(&[][..], |m| m.key.as_slice());
                let short: [u8; 16] = key
                    .get(..16)
                    .and_then(|k| k.try_into().ok())
                    .unwrap_or_default();
                self.counted.insert(short)
            });
            repeated = before - batch.len();
        }
        let counts = match self.db.as_deref_mut() {
            Some(db) => db.import_batch(
                batch,
                self.numbering,
                self.options.now_us,
                self.options.dry_run,
            )?,
            None => Counts {
                added: batch.len(),
                already: 0,
            },
        };
        self.report.counts.added += counts.added;
        self.report.counts.already += counts.already + repeated;
        // Each batch's pages into the database file, so the WAL does not
        // grow with the whole import.
        if let Some(db) = self.db.as_deref() {
            db.fold_wal();
        }
        Ok(())
    }

    fn report(self) -> Report {
        self.report
    }
}

/// The latest time a record may hold: 9999-12-31T23:59:59.999999Z, the
/// last an RFC 3339 time (four-digit year) can name.
pub const LATEST_US: i64 = 253_402_300_799_999_999;
/// The earliest: 0001-01-01T00:00:00Z.
pub const EARLIEST_US: i64 = -62_135_596_800_000_000;

/// Makes a time no exporter can write unknown: a start outside
/// [`EARLIEST_US`]..=[`LATEST_US`] (fish `when: 99999999999999999`, bash
/// `#300000000000`) becomes 0, the unknown time; a negative duration
/// (zsh-histdb), or one ending past the latest time, becomes NULL.
/// True when it changed something. (The import key is made before, from
/// the entry as read, so a file imported again keeps its keys.)
fn refuse_impossible_times(record: &mut CommandRecord) -> bool {
    let mut changed = false;
    if !(EARLIEST_US..=LATEST_US).contains(&record.started_at_us) {
        record.started_at_us = 0;
        changed = true;
    }
    if let Some(duration) = record.duration_us
        && (duration < 0
            || record
                .started_at_us
                .checked_add(duration)
                .is_none_or(|end| end > LATEST_US))
    {
        record.duration_us = None;
        changed = true;
    }
    changed
}

/// Cuts a command longer than `max` bytes as `record` does: its first
/// `max` bytes and [`crate::record::cut_note`]. True when cut. (After
/// the key is made: a file imported again keeps its keys.)
fn cut_long(record: &mut CommandRecord, max: usize) -> bool {
    let bytes = record
        .command_raw
        .as_deref()
        .unwrap_or(record.command.as_bytes());
    if bytes.len() <= max {
        return false;
    }
    let mut kept = bytes[..max].to_vec();
    let note = crate::record::cut_note(bytes.len() as u64, &Sha256::digest(bytes));
    kept.extend_from_slice(note.as_bytes());
    let text = StoredText::from_bytes(kept);
    record.command = text.text;
    record.command_raw = text.raw;
    true
}

/// A reader of a history kept as lines of text: fed the file's lines in
/// order (without their newlines, numbered from 1), it puts each entry in
/// `out` once it is whole, and what is left at the end of the file.
pub trait Lines {
    type Entry;
    fn line(&mut self, number: usize, line: &[u8], out: &mut Parsed<Self::Entry>);
    fn end(&mut self, out: &mut Parsed<Self::Entry>);
}

/// The entries in `bytes`, all at once (for bytes already in memory).
pub fn parse_all<L: Lines>(mut reader: L, bytes: &[u8]) -> Parsed<L::Entry> {
    let mut out = Parsed::default();
    for (number, line) in lines(bytes) {
        reader.line(number, line, &mut out);
    }
    reader.end(&mut out);
    out
}

/// A history read from a pipe, copied into a private file (0600, removed
/// when dropped) and named by the pipe's path and the SHA-256 of what it
/// held.
struct PipedCopy {
    path: PathBuf,
    name: String,
}

impl PipedCopy {
    fn of(pipe: &Path) -> io::Result<PipedCopy> {
        use std::io::{Read, Write};
        use std::os::unix::fs::OpenOptionsExt;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path =
            std::env::temp_dir().join(format!("tmux-audit-import-{}-{nanos}", std::process::id()));
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        // Removed when dropped, also on a failed read.
        let mut copy = PipedCopy {
            path,
            name: String::new(),
        };
        let mut input = File::open(pipe)?;
        let mut hash = Sha256::new();
        let mut buf = vec![0; 1 << 16];
        loop {
            let n = match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            };
            hash.update(&buf[..n]);
            out.write_all(&buf[..n])?;
        }
        let given = std::path::absolute(pipe)?;
        copy.name = format!(
            "{} (sha256 {})",
            given.to_string_lossy(),
            &hex(&hash.finalize())[..16]
        );
        Ok(copy)
    }
}

impl Drop for PipedCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Reads `file` a line at a time into `reader`, giving `sink` the entries
/// every [`BATCH`] of them and at the end.
fn read_lines<L: Lines>(
    file: &Path,
    reader: L,
    sink: Sink<'_, L::Entry>,
) -> Result<(), ImportError> {
    let read_err = |source| ImportError::Read {
        file: file.to_path_buf(),
        source,
    };
    let input = BufReader::with_capacity(1 << 16, File::open(file).map_err(read_err)?);
    in_batches(input, reader, BATCH, sink).map_err(|err| match err {
        Batches::Read(source) => read_err(source),
        Batches::Sink(err) => err,
    })
}

/// Why [`in_batches`] stopped.
enum Batches {
    Read(io::Error),
    Sink(ImportError),
}

/// Feeds `input`'s lines to `reader`, giving `sink` the entries whenever
/// `batch` of them are whole, and the rest at the end.
fn in_batches<L: Lines>(
    mut input: impl BufRead,
    mut reader: L,
    batch: usize,
    sink: Sink<'_, L::Entry>,
) -> Result<(), Batches> {
    let mut out = Parsed::default();
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line).map_err(Batches::Read)? == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        number += 1;
        reader.line(number, &line, &mut out);
        if out.entries.len() >= batch {
            sink(&mut out).map_err(Batches::Sink)?;
        }
    }
    reader.end(&mut out);
    sink(&mut out).map_err(Batches::Sink)
}

/// Redaction as the recorder does it, with one [`redact::Redactor`] for
/// the whole import: each pattern is compiled once, not once per entry.
struct Redactor {
    redactor: redact::Redactor,
    broken: Vec<String>,
}

impl Redactor {
    fn new(settings: &Redact) -> Self {
        let mut redactor = redact::Redactor::new(settings);
        let broken = std::mem::take(&mut redactor.broken)
            .iter()
            .map(|e| format!("{e:#}"))
            .collect();
        Redactor { redactor, broken }
    }

    fn apply(&self, bytes: Vec<u8>) -> (StoredText, bool) {
        match self.redactor.redact(&bytes) {
            Some(text) => (StoredText::from_bytes(text), true),
            None => (StoredText::from_bytes(bytes), false),
        }
    }
}

/// SHA-256 of the parts, each framed by its length.
fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"tmux-audit import key v1\0");
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// [`digest`], as the key stored.
fn key(parts: &[&[u8]]) -> Vec<u8> {
    digest(parts).to_vec()
}

/// The lines of a text file with their numbers (from 1), without their
/// newlines; a last line without one counts too.
fn lines(bytes: &[u8]) -> Vec<(usize, &[u8])> {
    let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
        .into_iter()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_no_clock_gives_become_unknown() {
        let record = |start, duration| CommandRecord {
            started_at_us: start,
            duration_us: duration,
            ..CommandRecord::default()
        };
        let fixed = |mut r: CommandRecord| {
            let changed = refuse_impossible_times(&mut r);
            (r.started_at_us, r.duration_us, changed)
        };
        // fish `when: 99999999999999999`, saturated; bash `#300000000000`.
        assert_eq!(fixed(record(i64::MAX, None)), (0, None, true));
        assert_eq!(
            fixed(record(300_000_000_000_000_000, Some(5))),
            (0, Some(5), true)
        );
        assert_eq!(fixed(record(i64::MIN, None)), (0, None, true));
        // zsh-histdb's negative durations; one that ends past year 9999.
        assert_eq!(
            fixed(record(1_700_000_000_000_000, Some(-5_000_000))),
            (1_700_000_000_000_000, None, true)
        );
        assert_eq!(fixed(record(LATEST_US, Some(1))), (LATEST_US, None, true));
        // Real ones stay.
        assert_eq!(
            fixed(record(1_700_000_000_000_000, Some(3))),
            (1_700_000_000_000_000, Some(3), false)
        );
        assert_eq!(
            fixed(record(LATEST_US, Some(0))),
            (LATEST_US, Some(0), false)
        );
        assert_eq!(fixed(record(EARLIEST_US, None)), (EARLIEST_US, None, false));
        assert_eq!(
            crate::render::utc_time(LATEST_US),
            "9999-12-31T23:59:59.999999Z"
        );
        assert_eq!(
            crate::render::utc_time(EARLIEST_US),
            "0001-01-01T00:00:00.000000Z"
        );
    }

    #[test]
    fn lines_are_numbered_from_one_with_or_without_a_last_newline() {
        assert_eq!(lines(b"a\n\nb\n"), [(1, &b"a"[..]), (2, b""), (3, b"b")]);
        assert_eq!(lines(b"a\nb"), [(1, &b"a"[..]), (2, b"b")]);
        assert!(lines(b"").is_empty());
    }

    /// Entries read in batches, however small, are the entries of the
    /// whole file: an entry whose keys come on later lines (fish's
    /// `when:`), goes on over lines (zsh's `\\`, bash's lines after a
    /// timestamp) or ends the file is whole, in its batch.
    #[test]
    fn entries_read_in_batches_are_the_entries_of_the_whole_file() {
        fn check<L: Lines + Default>(bytes: &[u8])
        where
            L::Entry: Clone + PartialEq + fmt::Debug,
        {
            let whole = parse_all(L::default(), bytes);
            assert!(whole.entries.len() > 3, "a test file of several entries");
            for batch in 1..=3 {
                let mut entries = Vec::new();
                let mut skipped = Vec::new();
                let mut sink = |parsed: &mut Parsed<L::Entry>| {
                    assert!(parsed.entries.len() <= batch, "at most a batch at a time");
                    entries.append(&mut parsed.entries);
                    skipped.append(&mut parsed.skipped);
                    Ok(())
                };
                assert!(in_batches(bytes, L::default(), batch, &mut sink).is_ok());
                assert_eq!(entries, whole.entries, "batches of {batch}");
                assert_eq!(skipped, whole.skipped, "batches of {batch}");
            }
        }
        check::<fish::Reader>(
            b"- cmd: a\n  when: 1\n- cmd: b\n  when: 2\n  paths:\n    - /x\n- cmd: c\n  when: x\n- cmd: d\n  when: 4",
        );
        check::<zsh::Reader>(b": 1:0;a\\\nb\n: 2:0;c\n: 3:1;d\\\n\\\ne\n: 4:0;f\\");
        check::<bash::Reader>(b"#1\na\nb\n#2\n#3\nc\n#4\nd\n#5\ne\nf");
        check::<bash::Reader>(b"a\n\nb\nc\nd");
        check::<jsonl::Reader>(format!("{0}\nbad\n{0}\n\n{0}\n{0}", jsonl::tests::LINE).as_bytes());
    }

    #[test]
    fn keys_frame_their_parts() {
        assert_ne!(key(&[b"ab", b"c"]), key(&[b"a", b"bc"]));
        assert_eq!(key(&[b"ab", b"c"]), key(&[b"ab", b"c"]));
    }

    #[test]
    fn usual_files() {
        let home = Path::new("/home/a");
        let usual = |s: Source| s.usual_file(home, None, None, None).unwrap();
        assert_eq!(usual(Source::Bash), home.join(".bash_history"));
        assert_eq!(usual(Source::Zsh), home.join(".zsh_history"));
        assert_eq!(
            usual(Source::Fish),
            home.join(".local/share/fish/fish_history")
        );
        assert_eq!(
            usual(Source::Atuin),
            home.join(".local/share/atuin/history.db")
        );
        assert_eq!(
            usual(Source::ZshHistdb),
            home.join(".histdb/zsh-history.db")
        );
        assert_eq!(
            usual(Source::Mcfly),
            home.join(".local/share/mcfly/history.db")
        );
        assert_eq!(
            Source::Bash.usual_file(home, Some("/h".into()), None, None),
            Some("/h".into())
        );
        assert_eq!(
            Source::Fish.usual_file(home, None, None, Some("/d".into())),
            Some(PathBuf::from("/d/fish/fish_history"))
        );
        assert_eq!(Source::TmuxAudit.usual_file(home, None, None, None), None);
    }
}
