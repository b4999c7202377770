//! A report group's row as the running totals keep it ready to print
//! (`shown`, JSON), read back with only the texts its reader shows.
//!
//! The whole `report --by command` table reads 141,020 of these rows at a
//! million commands, and its columns show one text of each (the top
//! directory): making and freeing the five others (pane, socket, shell
//! session, users, hosts) was most of a sixth of the table's time spent
//! in malloc and free.

use std::fmt;

use serde::de::{self, Deserializer as _, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use super::ReportRow;

/// Which of a report row's texts a reader needs; the others are skipped
/// unread and left empty. The key, counts and times are always read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowTexts {
    /// Pane, socket, shell session, session and window names: where the
    /// group is.
    pub place: bool,
    pub users: bool,
    pub hosts: bool,
    pub top_cwd: bool,
    pub top_command: bool,
}

impl RowTexts {
    /// Every text (`--json`, the central store's copy).
    pub const ALL: RowTexts = RowTexts {
        place: true,
        users: true,
        hosts: true,
        top_cwd: true,
        top_command: true,
    };

    /// No text: the key, counts and times alone.
    pub const NONE: RowTexts = RowTexts {
        place: false,
        users: false,
        hosts: false,
        top_cwd: false,
        top_command: false,
    };

    /// The texts either needs.
    pub fn or(self, other: RowTexts) -> RowTexts {
        RowTexts {
            place: self.place || other.place,
            users: self.users || other.users,
            hosts: self.hosts || other.hosts,
            top_cwd: self.top_cwd || other.top_cwd,
            top_command: self.top_command || other.top_command,
        }
    }
}

/// The row kept as `shown`, with the texts `texts` names.
pub(super) fn decode(shown: &str, texts: RowTexts) -> serde_json::Result<ReportRow> {
    let mut de = serde_json::Deserializer::from_str(shown);
    let row = de.deserialize_map(Shown(texts))?;
    de.end()?;
    Ok(row)
}

/// A field of [`ReportRow`] as `shown` names it.
#[derive(Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Field {
    Key,
    Commands,
    Failures,
    FirstUs,
    LastUs,
    TotalDurationUs,
    LongestUs,
    TmuxPane,
    TmuxSocket,
    TmuxServerPid,
    TmuxSessionId,
    ShellSession,
    Users,
    Hosts,
    TopCwd,
    TopCommand,
    SessionName,
    WindowIndex,
    WindowName,
    #[serde(other)]
    Unknown,
}

struct Shown(RowTexts);

impl<'de> Visitor<'de> for Shown {
    type Value = ReportRow;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a report row")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ReportRow, A::Error> {
        let texts = self.0;
        let mut row = ReportRow::default();
        // The fields read so far: each once, as the derived decoder has it.
        let mut seen = 0u32;
        while let Some(field) = map.next_key::<Field>()? {
            if field != Field::Unknown {
                let bit = 1 << field as u32;
                if seen & bit != 0 {
                    return Err(de::Error::custom("a report row with a field twice"));
                }
                seen |= bit;
            }
            match field {
                Field::Commands => row.commands = map.next_value()?,
                Field::Failures => row.failures = map.next_value()?,
                Field::FirstUs => row.first_us = map.next_value()?,
                Field::LastUs => row.last_us = map.next_value()?,
                Field::TotalDurationUs => row.total_duration_us = map.next_value()?,
                Field::LongestUs => row.longest_us = map.next_value()?,
                Field::TmuxServerPid => row.tmux_server_pid = map.next_value()?,
                Field::TmuxSessionId => row.tmux_session_id = map.next_value()?,
                Field::WindowIndex => row.window_index = map.next_value()?,
                Field::Key => row.key = map.next_value()?,
                Field::TmuxPane if texts.place => row.tmux_pane = map.next_value()?,
                Field::TmuxSocket if texts.place => row.tmux_socket = map.next_value()?,
                Field::ShellSession if texts.place => row.shell_session = map.next_value()?,
                Field::SessionName if texts.place => row.session_name = map.next_value()?,
                Field::WindowName if texts.place => row.window_name = map.next_value()?,
                Field::Users if texts.users => row.users = map.next_value()?,
                Field::Hosts if texts.hosts => row.hosts = map.next_value()?,
                Field::TopCwd if texts.top_cwd => row.top_cwd = map.next_value()?,
                Field::TopCommand if texts.top_command => row.top_command = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        // What the derived decoder requires (the rest may be left out).
        let required = [
            Field::Commands,
            Field::Failures,
            Field::FirstUs,
            Field::LastUs,
            Field::TotalDurationUs,
            Field::LongestUs,
            Field::ShellSession,
            Field::Users,
            Field::Hosts,
        ];
        if required.into_iter().any(|f| seen & (1 << f as u32) == 0) {
            return Err(de::Error::custom(
                "a report row without its counts, times or people",
            ));
        }
        Ok(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row with every field set (no `..`: a new field must be added here).
    fn every_field() -> ReportRow {
        ReportRow {
            key: "k\u{e9}y \"quoted\"\n".into(),
            commands: 7,
            failures: 2,
            first_us: -1,
            last_us: i64::MAX,
            total_duration_us: 30,
            longest_us: 20,
            tmux_pane: Some("%3".into()),
            tmux_socket: Some("/tmp/tmux-0/s\tock".into()),
            tmux_server_pid: Some(42),
            tmux_session_id: Some(3),
            shell_session: "bash.1.2".into(),
            users: "alice,bob".into(),
            hosts: "h1,h2".into(),
            top_cwd: Some("/home/\u{1F600}".into()),
            top_command: Some("make \\ test".into()),
            session_name: Some("work".into()),
            window_index: Some(1),
            window_name: Some("vim".into()),
        }
    }

    #[test]
    fn every_text_asked_for_is_the_row_as_kept() {
        let row = every_field();
        let kept = serde_json::to_string(&row).unwrap();
        assert_eq!(decode(&kept, RowTexts::ALL).unwrap(), row);
        // As the totals keep it: without the key (their column) and what
        // is unknown.
        let bare = ReportRow {
            key: String::new(),
            tmux_pane: None,
            top_command: None,
            ..row
        };
        let kept = serde_json::to_string(&bare).unwrap();
        assert_eq!(decode(&kept, RowTexts::ALL).unwrap(), bare);
    }

    #[test]
    fn texts_not_asked_for_are_left_empty_and_the_rest_read() {
        let row = every_field();
        let kept = serde_json::to_string(&row).unwrap();
        let none = RowTexts::NONE;
        let figures = ReportRow {
            key: row.key.clone(),
            commands: row.commands,
            failures: row.failures,
            first_us: row.first_us,
            last_us: row.last_us,
            total_duration_us: row.total_duration_us,
            longest_us: row.longest_us,
            tmux_server_pid: row.tmux_server_pid,
            tmux_session_id: row.tmux_session_id,
            window_index: row.window_index,
            ..ReportRow::default()
        };
        assert_eq!(decode(&kept, none).unwrap(), figures);
        let top_cwd = RowTexts {
            top_cwd: true,
            ..none
        };
        let with_cwd = ReportRow {
            top_cwd: row.top_cwd.clone(),
            ..figures.clone()
        };
        assert_eq!(decode(&kept, top_cwd).unwrap(), with_cwd);
        let place = RowTexts {
            place: true,
            ..none
        };
        let placed = ReportRow {
            tmux_pane: row.tmux_pane.clone(),
            tmux_socket: row.tmux_socket.clone(),
            shell_session: row.shell_session.clone(),
            session_name: row.session_name.clone(),
            window_name: row.window_name.clone(),
            ..figures.clone()
        };
        assert_eq!(decode(&kept, place).unwrap(), placed);
        let people = RowTexts {
            users: true,
            hosts: true,
            top_command: true,
            ..none
        };
        let with_people = ReportRow {
            users: row.users.clone(),
            hosts: row.hosts.clone(),
            top_command: row.top_command.clone(),
            ..figures
        };
        assert_eq!(decode(&kept, people).unwrap(), with_people);
    }

    #[test]
    fn a_kept_row_that_is_not_one_is_an_error() {
        let figures = r#""commands":1,"failures":0,"first_us":0,"last_us":0,"total_duration_us":0,"longest_us":0"#;
        let people = r#""shell_session":"s","users":"u","hosts":"h""#;
        for bad in [
            String::new(),
            "[]".into(),
            "{}".into(),
            r#"{"commands":1}"#.into(),
            format!("{{{figures}}}"),
            format!("{{{people}}}"),
            format!("{{{figures},{people}}} x"),
            format!("{{{figures},{people},\"users\":\"v\"}}"),
            format!("{{{figures},{people},\"key\":7}}"),
            format!("{{{},{people}}}", figures.replace(":1,", ":\"1\",")),
        ] {
            for texts in [RowTexts::ALL, RowTexts::NONE] {
                assert!(decode(&bad, texts).is_err(), "{bad:?}");
            }
            // As the decoder it stands in for judges them.
            assert!(serde_json::from_str::<ReportRow>(&bad).is_err(), "{bad:?}");
        }
        // Fields a later version may add are skipped.
        let later = format!("{{{figures},{people},\"colour\":[1,2]}}");
        assert_eq!(decode(&later, RowTexts::ALL).unwrap().commands, 1);
        assert_eq!(decode(&later, RowTexts::ALL).unwrap().users, "u");
    }
}
