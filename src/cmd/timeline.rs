//! `tmux-audit timeline`: the lifecycle events and commands of a session,
//! window or pane, interleaved in time order.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Write};

use anyhow::{bail, Context as _, Result};

use super::{Exit, Run};
use crate::cli::Timeline;
use tmux_audit::central;
use tmux_audit::context::Tmux;
use tmux_audit::db::{Database, StoredCommand};
use tmux_audit::lifecycle::replay::{typist, Placement, ServerKey, ServerState};
use tmux_audit::lifecycle::TmuxEvent;
use tmux_audit::paths;
use tmux_audit::render;
use tmux_audit::render::timeline::Item;

/// What the timeline is of, in one server.
#[derive(Debug, Clone)]
enum Target {
    Sessions(HashSet<i64>),
    Windows(HashSet<i64>),
    Pane(String),
}

/// Where a timeline reads the commands of a tmux server: the local
/// database, or one host's rows in the central store.
trait CommandSource {
    /// The commands of `server` that started in `since..until`, oldest
    /// first, placed by the tmux events.
    fn of_server(
        &mut self,
        server: &ServerKey,
        since: i64,
        until: i64,
    ) -> Result<Vec<StoredCommand>>;
    /// The newest server a command ran in `pane` of.
    fn newest_server_of_pane(&mut self, pane: &str) -> Result<Option<ServerKey>>;
}

impl CommandSource for &Database {
    fn of_server(
        &mut self,
        server: &ServerKey,
        since: i64,
        until: i64,
    ) -> Result<Vec<StoredCommand>> {
        let mut commands = self.commands_of_server(server, since, until)?;
        self.place(&mut commands)?;
        Ok(commands)
    }

    fn newest_server_of_pane(&mut self, pane: &str) -> Result<Option<ServerKey>> {
        Ok(Database::newest_server_of_pane(self, pane)?)
    }
}

/// One host's rows in the central store.
struct CentralHost<'c> {
    client: &'c mut postgres::Client,
    host_id: &'c str,
}

impl CommandSource for CentralHost<'_> {
    fn of_server(
        &mut self,
        server: &ServerKey,
        since: i64,
        until: i64,
    ) -> Result<Vec<StoredCommand>> {
        Ok(central::query::commands_of_server(
            self.client,
            self.host_id,
            server,
            since,
            until,
        )?)
    }

    fn newest_server_of_pane(&mut self, pane: &str) -> Result<Option<ServerKey>> {
        Ok(central::query::newest_server_of_pane(
            self.client,
            self.host_id,
            pane,
        )?)
    }
}

impl Run for Timeline {
    fn run(&self) -> Result<Exit> {
        if self.central {
            return self.run_central();
        }
        let path = paths::database(self.db.path.as_deref())?;
        let db = super::open_for_reading(&path)?;
        // Whole servers are left out (never single events: the replay of
        // a server needs all of its own).
        let events: Vec<TmuxEvent> = db
            .tmux_events(None)?
            .into_iter()
            .map(|e| e.event)
            .filter(|e| self.keeps_server(&e.tmux_socket) && self.keeps_host(&e.host))
            .collect();
        self.no_server_recorded(events.is_empty())?;
        let mut source = &db;
        let targets = self.targets(&mut source, &events)?;
        let mut folded = 0;
        let mut items = self.items(&events, targets, &mut source, &mut folded)?;
        self.print(&mut items, folded, Some(&path))
    }
}

impl Timeline {
    /// `timeline --central`: the same timeline, of every host the role may
    /// read; each host's tmux events replayed on their own (tmux servers
    /// and ids are only unique within a host).
    fn run_central(&self) -> Result<Exit> {
        if self.output_lines > 0 {
            bail!(
                "--output-lines reads the output captured on this host, which is not shipped; \
                 leave out --central"
            );
        }
        let config = tmux_audit::config::Config::load()?;
        let target = central::target(config.central.reading_url())?;
        let mut client = target.connect()?;
        central::schema::check(&mut client)?;
        let mut by_host: BTreeMap<String, Vec<TmuxEvent>> =
            central::query::tmux_events_by_host(&mut client)?
                .into_iter()
                .map(|(host, events)| {
                    let kept = events
                        .into_iter()
                        .filter(|e| self.keeps_server(&e.tmux_socket) && self.keeps_host(&e.host))
                        .collect();
                    (host, kept)
                })
                .collect();
        by_host.retain(|_, events| !events.is_empty());
        if let Some(pane) = &self.pane {
            // A pane whose commands are known but none of its events.
            for host in central::query::hosts_of_pane(&mut client, pane)? {
                by_host.entry(host).or_default();
            }
        }
        self.no_server_recorded(by_host.values().all(Vec::is_empty))?;
        let mut items = Vec::new();
        let mut folded = 0;
        let mut not_found = None;
        for (host_id, events) in &by_host {
            let mut source = CentralHost {
                client: &mut client,
                host_id,
            };
            // What this host does not have, another may.
            let targets = match self.targets(&mut source, events) {
                Ok(targets) => targets,
                Err(e) => {
                    not_found.get_or_insert(e);
                    continue;
                }
            };
            items.extend(self.items(events, targets, &mut source, &mut folded)?);
        }
        if items.is_empty()
            && let Some(e) = not_found
        {
            return Err(e);
        }
        self.print(&mut items, folded, None)
    }

    /// With --server or --host, none of their servers recorded: an error.
    fn no_server_recorded(&self, none: bool) -> Result<()> {
        if none && (self.server.is_some() || self.host.is_some()) {
            bail!(
                "no tmux server{}{} was recorded; `tmux-audit sessions` lists what was",
                self.server
                    .as_ref()
                    .map_or(String::new(), |s| format!(" with socket {s:?}")),
                self.host
                    .as_ref()
                    .map_or(String::new(), |h| format!(" on host {h:?}")),
            );
        }
        Ok(())
    }

    /// The events and commands of the targets, in the period asked for.
    fn items<'e>(
        &self,
        events: &'e [TmuxEvent],
        targets: Vec<(ServerKey, Target)>,
        source: &mut dyn CommandSource,
        folded: &mut usize,
    ) -> Result<Vec<Item<'e>>> {
        let since = self.since.map_or(i64::MIN, |t| t.timestamp_micros());
        let until = self.until.map_or(i64::MAX, |t| t.timestamp_micros());
        let mut items = Vec::new();
        for (server, target) in targets {
            let server_events: Vec<&TmuxEvent> =
                events.iter().filter(|e| e.server() == server).collect();
            for (e, place) in events_of(&server_events, &target) {
                if !(since..until).contains(&e.at_us) || !self.typed_by_event(e, &place) {
                    continue;
                }
                if e.automatic_rename == Some(true) && !self.renames {
                    *folded += 1;
                    continue;
                }
                items.push(Item::Event(e, Box::new(place)));
            }
            let mut commands = source.of_server(&server, since, until)?;
            commands.retain(|c| self.keeps_host(&c.record.host));
            items.extend(
                commands
                    .into_iter()
                    .filter(|c| command_of(c, &target) && self.typed_by_command(c))
                    .map(|c| Item::Command(Box::new(c))),
            );
        }
        Ok(items)
    }

    /// `captured_in`: the database whose captured output `--output-lines`
    /// reads (the local one).
    fn print(
        &self,
        items: &mut [Item<'_>],
        folded: usize,
        captured_in: Option<&std::path::Path>,
    ) -> Result<Exit> {
        items.sort_by_key(Item::at_us);
        if items.is_empty() {
            return Ok(Exit::NoMatch);
        }
        let out = match self.format.data(self.json) {
            Some(format) => {
                render::data(&items.iter().map(Item::json).collect::<Vec<_>>(), format)?
            }
            None => {
                let printed = match captured_in {
                    Some(db) => self.printed(db, items),
                    None => HashMap::new(),
                };
                let mut out = render::timeline::table(items, &printed);
                if folded > 0 {
                    out.push_str(&format!(
                        "{folded} automatic window rename{} folded (tmux naming a window after \
                         its program); --renames shows {}\n",
                        if folded == 1 { "" } else { "s" },
                        if folded == 1 { "it" } else { "them" },
                    ));
                }
                out
            }
        };
        io::stdout().lock().write_all(out.as_bytes())?;
        Ok(Exit::Success)
    }
}

impl Timeline {
    /// `--output-lines N`: the first N lines each command printed, by id
    /// (none for a command whose output was not captured).
    fn printed(&self, db: &std::path::Path, items: &[Item<'_>]) -> HashMap<i64, Vec<String>> {
        let mut printed = HashMap::new();
        if self.output_lines == 0 {
            return printed;
        }
        let mut reader = tmux_audit::capture::output::Reader::default();
        for item in items {
            let Item::Command(c) = item else { continue };
            let Ok(found) = reader.command_output(db, &c.record) else {
                continue;
            };
            let text = tmux_audit::capture::output::plain_text(&found.bytes);
            let lines = text.lines().take(self.output_lines).map(str::to_string);
            printed.insert(c.id, lines.collect());
        }
        printed
    }

    /// `--server`: a socket's path, or its name (the last part of the path).
    fn keeps_server(&self, socket: &str) -> bool {
        self.server.as_deref().is_none_or(|wanted| {
            wanted == socket
                || std::path::Path::new(socket)
                    .file_name()
                    .is_some_and(|n| n == wanted)
        })
    }

    fn keeps_host(&self, host: &str) -> bool {
        self.host.as_deref().is_none_or(|wanted| wanted == host)
    }

    /// `--typed-by`: a command typed by the user (their client's, or
    /// outside a shared session the shell's user).
    fn typed_by_command(&self, command: &StoredCommand) -> bool {
        self.typed_by
            .as_deref()
            .is_none_or(|user| typist(command.placement.as_ref(), &command.record.user) == user)
    }

    /// `--typed-by`: an event of one of the user's clients.
    fn typed_by_event(&self, event: &TmuxEvent, place: &Placement) -> bool {
        self.typed_by.as_deref().is_none_or(|user| {
            place
                .client
                .as_ref()
                .or(event.client.as_ref())
                .and_then(|c| c.user.as_deref())
                == Some(user)
        })
    }
}

impl Timeline {
    /// The servers, and what in each, the options name: one target per server.
    fn targets(
        &self,
        source: &mut dyn CommandSource,
        events: &[TmuxEvent],
    ) -> Result<Vec<(ServerKey, Target)>> {
        // The newest server whose events match.
        let newest = |matches: &dyn Fn(&TmuxEvent) -> bool| {
            events
                .iter()
                .rev()
                .find(|e| matches(e))
                .map(TmuxEvent::server)
        };
        if self.here {
            let tmux = Tmux::from_env().context(
                "--here needs to run inside tmux ($TMUX is not set); use --pane or --session",
            )?;
            let (Some(pid), Some(pane)) = (tmux.server_pid, tmux.pane) else {
                bail!("$TMUX or $TMUX_PANE does not name a tmux pane; use --pane or --session");
            };
            return Ok(vec![((tmux.socket, pid), Target::Pane(pane))]);
        }
        if let Some(pane) = &self.pane {
            let server = match newest(&|e| e.pane.as_ref() == Some(pane)) {
                Some(server) => Some(server),
                None => source.newest_server_of_pane(pane)?,
            };
            let server = server.with_context(|| format!("no pane {pane} was recorded"))?;
            return Ok(vec![(server, Target::Pane(pane.clone()))]);
        }
        if let Some(window) = &self.window {
            if let Some(window_id) = window.strip_prefix('@').and_then(|w| w.parse().ok()) {
                let server = newest(&|e| e.window_id == Some(window_id))
                    .with_context(|| format!("no window {window} was recorded"))?;
                return Ok(vec![(server, Target::Windows(HashSet::from([window_id])))]);
            }
            let Some((session, index)) = window
                .rsplit_once(':')
                .and_then(|(s, i)| Some((s, i.parse::<i64>().ok()?)))
            else {
                bail!("--window takes SESSION:INDEX (prod:1) or a window id (@4), not {window:?}");
            };
            let targets: Vec<(ServerKey, Target)> = sessions_named(events, session)
                .into_iter()
                .map(|(server, sessions)| {
                    let windows: HashSet<i64> = events
                        .iter()
                        .filter(|e| e.server() == server && e.window_index == Some(index))
                        .filter(|e| e.session_id.is_some_and(|s| sessions.contains(&s)))
                        .filter_map(|e| e.window_id)
                        .collect();
                    (server, Target::Windows(windows))
                })
                .filter(|(_, target)| !matches!(target, Target::Windows(w) if w.is_empty()))
                .collect();
            if targets.is_empty() {
                bail!("no window {window} was recorded; `tmux-audit sessions` lists what was");
            }
            return Ok(targets);
        }
        let session = self.session.as_deref().unwrap_or_default();
        let targets: Vec<(ServerKey, Target)> = sessions_named(events, session)
            .into_iter()
            .map(|(server, sessions)| (server, Target::Sessions(sessions)))
            .collect();
        if targets.is_empty() {
            bail!("no session {session:?} was recorded; `tmux-audit sessions` lists what was");
        }
        Ok(targets)
    }
}

/// Per server, the sessions that ever had this name; for a `$id`, that
/// session in the newest server that had it.
fn sessions_named(events: &[TmuxEvent], name: &str) -> Vec<(ServerKey, HashSet<i64>)> {
    if let Some(wanted) = name.strip_prefix('$').and_then(|n| n.parse::<i64>().ok()) {
        return events
            .iter()
            .rev()
            .find(|e| e.session_id == Some(wanted))
            .map(|e| vec![(e.server(), HashSet::from([wanted]))])
            .unwrap_or_default();
    }
    let mut found: Vec<(ServerKey, HashSet<i64>)> = Vec::new();
    for e in events
        .iter()
        .filter(|e| e.session_name.as_deref() == Some(name))
    {
        let Some(session) = e.session_id else {
            continue;
        };
        let server = e.server();
        match found.iter_mut().find(|(s, _)| *s == server) {
            Some((_, sessions)) => {
                sessions.insert(session);
            }
            None => found.push((server, HashSet::from([session]))),
        }
    }
    found
}

/// The events (of one server) about the target, each with where it
/// happened (names as they were then).
fn events_of<'e>(events: &[&'e TmuxEvent], target: &Target) -> Vec<(&'e TmuxEvent, Placement)> {
    let mut state = ServerState::default();
    let mut found = Vec::new();
    for &e in events {
        // A detaching client names no session: it is the one it was in.
        let client_session = e
            .client
            .as_ref()
            .and_then(|c| state.client_session(&c.name));
        state.apply(e);
        let session = e.session_id.or(client_session);
        let window = e
            .window_id
            .or_else(|| e.pane.as_deref().and_then(|p| state.window_of(p)));
        // Events about a whole session (renamed, clients) belong to the
        // timeline of each of its windows and panes.
        let of_session_of = |w: Option<i64>| {
            window.is_none() && session.is_some() && session == w.and_then(|w| state.session_of(w))
        };
        let in_scope = match target {
            Target::Sessions(sessions) => session.is_some_and(|s| sessions.contains(&s)),
            Target::Windows(windows) => {
                window.is_some_and(|w| windows.contains(&w))
                    || windows.iter().any(|&w| of_session_of(Some(w)))
            }
            Target::Pane(pane) => {
                let pane_window = state.window_of(pane);
                e.pane.as_ref() == Some(pane)
                    || (window.is_some() && window == pane_window)
                    || of_session_of(pane_window)
            }
        };
        if in_scope {
            let mut place = state.place(e.pane.as_deref(), session);
            // What is known of the client (its user, from when it
            // attached), when this event did not say.
            place.client = e
                .client
                .as_ref()
                .map(|c| state.client(&c.name).cloned().unwrap_or_else(|| c.clone()));
            found.push((e, place));
        }
    }
    found
}

fn command_of(command: &StoredCommand, target: &Target) -> bool {
    let place = command.placement.as_ref();
    match target {
        Target::Sessions(sessions) => place
            .and_then(|p| p.session_id)
            .or(command.record.tmux_session_id)
            .is_some_and(|s| sessions.contains(&s)),
        Target::Windows(windows) => place
            .and_then(|p| p.window_id)
            .is_some_and(|w| windows.contains(&w)),
        Target::Pane(pane) => command.record.tmux_pane.as_ref() == Some(pane),
    }
}
