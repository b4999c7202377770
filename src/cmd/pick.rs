//! `tmux-audit pick`: the interactive picker on the terminal. The model
//! (scopes, filter, selection, the lines of a frame) is the library's
//! `pick`; this file owns the terminal: raw mode and the alternate screen
//! on /dev/tty (stdout stays free for the chosen command, which the
//! shell's binding captures), keys read with crossterm, frames drawn.
//!
//! The terminal is given back on every way out: a normal return, an error
//! (the guard's drop), a panic (the hook runs before a `panic = "abort"`
//! build aborts), and SIGTERM, SIGHUP, SIGINT, SIGQUIT (a handler restores
//! it, then dies of the signal as it would have).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, Result};
use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::style::{Attribute, Color, Print, ResetColor, SetAttribute, SetForegroundColor};
use crossterm::{cursor, queue, terminal};

use super::{Exit, Run};
use crate::cli::{Pick, PickScope};
use tmux_audit::paths;
use tmux_audit::pick::{Finder, Frame, Here, Key, Outcome, Picker, Scope};

impl Run for Pick {
    fn run(&self) -> Result<Exit> {
        // The database first: its errors print as any command's, before
        // the screen is taken.
        let path = paths::database(self.db.path.as_deref())?;
        let db = super::open_for_reading(&path)?;
        let scope = match self.scope {
            PickScope::Pane => Scope::Pane,
            PickScope::Session => Scope::Session,
            PickScope::Host => Scope::Host,
            PickScope::Everything => Scope::Everything,
        };
        let pane = self.pane.as_deref().map(pane_id).transpose()?;
        let here = Here::from_env(pane);
        let mut picker = Picker::new(here.scopes(), scope, &self.query);
        let mut finder = Finder::new(db);
        let tty = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .context(
                "the picker draws on the terminal, and this process has none (/dev/tty); \
                 run it from a shell in a terminal, or use `tmux-audit search`",
            )?;
        let mut screen = Screen::enter(tty)?;
        let outcome = screen.run(&mut picker, &mut finder, self.exit_after_first_frame);
        drop(screen);
        match outcome? {
            Outcome::Accept(command) => {
                let mut out = io::stdout().lock();
                out.write_all(&command)?;
                out.flush()?;
                Ok(Exit::Success)
            }
            Outcome::Interrupt => Ok(Exit::Interrupted),
            Outcome::Cancel | Outcome::Continue => Ok(Exit::Cancelled),
        }
    }
}

/// A pane as tmux names it (`%3`), from `%3` or `3`.
fn pane_id(pane: &str) -> Result<String> {
    let digits = pane.strip_prefix('%').unwrap_or(pane);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        anyhow::bail!(
            "--pane {pane:?} is not a tmux pane id: give it as %3 (or 3), as \
             `tmux display-message -p '#{{pane_id}}'` shows it"
        );
    }
    Ok(format!("%{digits}"))
}

/// The terminal as the picker uses it, given back on drop.
struct Screen {
    tty: File,
    colour: bool,
}

/// The terminal's settings before the picker changed them, for whichever
/// way out comes first (see [`restore`]).
static SAVED: OnceLock<(RawFd, libc::termios)> = OnceLock::new();
/// The picker holds the terminal: set on entering, cleared by the first restore.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Alternate screen, bracketed paste (a pasted text is one filter, not keys).
const ENTER: &[u8] = b"\x1b[?1049h\x1b[?2004h\x1b[H\x1b[2J";
/// Paste off, cursor shown, normal screen back (with the shell's text on it).
const LEAVE: &[u8] = b"\x1b[?2004l\x1b[0m\x1b[?25h\x1b[?1049l";

/// Gives the terminal back, once. Called from a signal handler too: only
/// an atomic, write(2) and tcsetattr(3), which are async-signal-safe.
fn restore() {
    if !ACTIVE.swap(false, Ordering::SeqCst) {
        return;
    }
    if let Some((fd, termios)) = SAVED.get() {
        // SAFETY: `fd` is the /dev/tty the Screen keeps open while ACTIVE;
        // the buffer and the termios are valid for the calls' duration.
        unsafe {
            libc::write(*fd, LEAVE.as_ptr().cast(), LEAVE.len());
            libc::tcsetattr(*fd, libc::TCSANOW, termios);
        }
    }
}

extern "C" fn on_signal(signal: libc::c_int) {
    restore();
    // SAFETY: signal(2) and raise(3) are async-signal-safe; the process
    // then ends of the signal, as it would have without the handler.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
    }
}

impl Screen {
    fn enter(tty: File) -> Result<Screen> {
        let fd = tty.as_raw_fd();
        let mut termios = MaybeUninit::<libc::termios>::uninit();
        // SAFETY: tcgetattr fills the struct when it returns 0, checked
        // before the struct is read.
        let saved = unsafe {
            if libc::tcgetattr(fd, termios.as_mut_ptr()) != 0 {
                return Err(io::Error::last_os_error())
                    .context("cannot read the terminal's settings");
            }
            termios.assume_init()
        };
        if SAVED.set((fd, saved)).is_err() {
            anyhow::bail!("the picker runs once per process");
        }
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        for signal in [libc::SIGTERM, libc::SIGHUP, libc::SIGINT, libc::SIGQUIT] {
            // SAFETY: `on_signal` does only async-signal-safe work.
            unsafe {
                libc::signal(
                    signal,
                    on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
                )
            };
        }
        let mut raw = saved;
        ACTIVE.store(true, Ordering::SeqCst);
        // SAFETY: `raw` is a valid termios, made raw in place.
        let set = unsafe {
            libc::cfmakeraw(&mut raw);
            libc::tcsetattr(fd, libc::TCSANOW, &raw)
        };
        let mut screen = Screen {
            tty,
            colour: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        };
        if set != 0 {
            return Err(io::Error::last_os_error()).context("cannot set the terminal to raw mode");
        }
        screen.tty.write_all(ENTER)?;
        Ok(screen)
    }

    /// (columns, lines) of the terminal.
    fn size(&self) -> (usize, usize) {
        let mut size = MaybeUninit::<libc::winsize>::zeroed();
        // SAFETY: TIOCGWINSZ fills a winsize; it starts zeroed either way.
        let size = unsafe {
            libc::ioctl(self.tty.as_raw_fd(), libc::TIOCGWINSZ, size.as_mut_ptr());
            size.assume_init()
        };
        match (size.ws_col, size.ws_row) {
            (0, _) | (_, 0) => (80, 24),
            (cols, rows) => (usize::from(cols), usize::from(rows)),
        }
    }

    fn run(
        &mut self,
        picker: &mut Picker,
        finder: &mut Finder,
        first_frame_only: bool,
    ) -> Result<Outcome> {
        // crossterm's event source, made here, before the first size is
        // read: it is what catches SIGWINCH, and a resize signalled
        // before it exists is lost (the signal's default is to be
        // ignored). Made later, a terminal resized between the first
        // size read and the first key (tmux resizes a pane's terminal up
        // to 250 ms after a split) left a frame of the old size until
        // the next key.
        event::poll(Duration::ZERO).context("cannot read the terminal")?;
        loop {
            let (width, height) = self.size();
            picker.set_page(height.saturating_sub(2));
            if let Some((conditions, filter, limit)) = picker.wanted() {
                picker.found(finder.find(conditions, &filter, limit));
            }
            self.draw(&picker.frame(width, height))?;
            if first_frame_only {
                return Ok(Outcome::Cancel);
            }
            // Every key already waiting is taken before the next query:
            // fast typing or a paste costs one query, not one per key.
            loop {
                let key = match event::read().context("cannot read the terminal")? {
                    Event::Key(key) => to_key(key),
                    Event::Paste(text) => Some(Key::Type(text)),
                    _ => None, // a resize: drawn again below
                };
                if let Some(key) = key {
                    let outcome = picker.press(key);
                    if outcome != Outcome::Continue {
                        return Ok(outcome);
                    }
                }
                if !event::poll(Duration::ZERO)? {
                    break;
                }
            }
        }
    }

    fn draw(&mut self, frame: &Frame) -> io::Result<()> {
        let mut out = Vec::with_capacity(8192);
        queue!(out, cursor::Hide)?;
        let width = self.size().0;
        for (n, line) in frame.lines.iter().enumerate() {
            queue!(out, cursor::MoveTo(0, n as u16))?;
            if line.status {
                queue!(out, SetAttribute(Attribute::Dim))?;
            }
            if line.selected {
                queue!(out, SetAttribute(Attribute::Reverse))?;
            }
            let text = line.text.as_str();
            match (line.failed && self.colour, text.char_indices().nth(5)) {
                (true, Some((split, _))) => {
                    let (status, rest) = text.split_at(split);
                    queue!(
                        out,
                        SetForegroundColor(Color::Red),
                        Print(status),
                        SetForegroundColor(Color::Reset),
                        Print(rest)
                    )?;
                }
                _ => queue!(out, Print(text))?,
            }
            if line.selected {
                // The selection spans the line.
                let used = unicode_width::UnicodeWidthStr::width(text);
                queue!(out, Print(" ".repeat(width.saturating_sub(used))))?;
            }
            queue!(
                out,
                SetAttribute(Attribute::Reset),
                ResetColor,
                terminal::Clear(terminal::ClearType::UntilNewLine)
            )?;
        }
        let (column, line) = frame.cursor;
        queue!(
            out,
            cursor::MoveTo(column as u16, line as u16),
            cursor::Show
        )?;
        self.tty.write_all(&out)?;
        self.tty.flush()
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// The picker's meaning of a key; None for keys it ignores.
fn to_key(key: KeyEvent) -> Option<Key> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    Some(match key.code {
        KeyCode::Char('c') if ctrl => Key::Interrupt,
        KeyCode::Char('g') if ctrl => Key::Cancel,
        KeyCode::Char('r') if ctrl => Key::NextScope,
        KeyCode::Char('p') if ctrl => Key::Older,
        KeyCode::Char('n') if ctrl => Key::Newer,
        KeyCode::Char('u') if ctrl => Key::ClearFilter,
        KeyCode::Char('w') if ctrl => Key::DeleteWord,
        KeyCode::Char('h') if ctrl => Key::Backspace,
        KeyCode::Char('j' | 'm') if ctrl => Key::Accept,
        KeyCode::Char(_) if ctrl || key.modifiers.contains(KeyModifiers::ALT) => return None,
        KeyCode::Char(c) => Key::Type(c.to_string()),
        KeyCode::Esc => Key::Cancel,
        KeyCode::Enter => Key::Accept,
        KeyCode::Backspace => Key::Backspace,
        KeyCode::Tab => Key::NextScope,
        KeyCode::Up => Key::Older,
        KeyCode::Down => Key::Newer,
        KeyCode::PageUp => Key::PageOlder,
        KeyCode::PageDown => Key::PageNewer,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> Option<Key> {
        to_key(KeyEvent::new(code, modifiers))
    }

    #[test]
    fn the_keys_a_shell_user_expects() {
        let ctrl = KeyModifiers::CONTROL;
        let none = KeyModifiers::NONE;
        assert_eq!(key(KeyCode::Char('c'), ctrl), Some(Key::Interrupt));
        assert_eq!(key(KeyCode::Char('g'), ctrl), Some(Key::Cancel));
        assert_eq!(key(KeyCode::Esc, none), Some(Key::Cancel));
        assert_eq!(key(KeyCode::Enter, none), Some(Key::Accept));
        assert_eq!(key(KeyCode::Char('r'), ctrl), Some(Key::NextScope));
        assert_eq!(key(KeyCode::Char('p'), ctrl), Some(Key::Older));
        assert_eq!(key(KeyCode::Up, none), Some(Key::Older));
        assert_eq!(key(KeyCode::Char('n'), ctrl), Some(Key::Newer));
        assert_eq!(key(KeyCode::Char('r'), none), Some(Key::Type("r".into())));
        assert_eq!(
            key(KeyCode::Char('R'), KeyModifiers::SHIFT),
            Some(Key::Type("R".into()))
        );
        assert_eq!(
            key(KeyCode::Char('x'), ctrl),
            None,
            "not typed into the filter"
        );
    }

    #[test]
    fn a_pane_is_percent_n_or_n() {
        assert_eq!(pane_id("%3").unwrap(), "%3");
        assert_eq!(pane_id("3").unwrap(), "%3");
        assert!(pane_id("%").is_err());
        assert!(pane_id("#{pane_id}").is_err());
    }
}
