//! Which host this is, for the central store: its name, and an id that
//! stays apart from every other host's even when two share a name
//! (`/etc/machine-id`, else an id generated once and kept in the state
//! directory). `TMUX_AUDIT_HOST_ID` overrides both, for machines cloned
//! with one machine-id (and for tests that stand for many hosts).

use std::io::Write;
use std::path::Path;

use anyhow::{Context as _, Result};

/// A host as the central store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostIdentity {
    /// What `hostname` says (the `host` of its records).
    pub name: String,
    /// `name/` followed by the machine id.
    pub id: String,
}

impl HostIdentity {
    /// This host: `TMUX_AUDIT_HOST_ID`, else /etc/machine-id, else an id
    /// made once in `state_dir`.
    pub fn of_this_host(state_dir: &Path) -> Result<HostIdentity> {
        let name = whoami::fallible::hostname().unwrap_or_default();
        let machine = match std::env::var("TMUX_AUDIT_HOST_ID") {
            Ok(id) if !id.trim().is_empty() => id.trim().to_string(),
            _ => match std::fs::read_to_string("/etc/machine-id") {
                Ok(id) if !id.trim().is_empty() => id.trim().to_string(),
                _ => generated_id(state_dir)?,
            },
        };
        Ok(HostIdentity {
            id: format!("{name}/{machine}"),
            name,
        })
    }
}

/// An id made from random bytes the first time, kept in `host-id`.
fn generated_id(state_dir: &Path) -> Result<String> {
    let file = state_dir.join("host-id");
    if let Ok(id) = std::fs::read_to_string(&file)
        && !id.trim().is_empty()
    {
        return Ok(id.trim().to_string());
    }
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .context("cannot read /dev/urandom for a host id")?;
    let id = crate::text::hex(&bytes);
    crate::private_files::dir(state_dir)
        .with_context(|| format!("cannot make {}", state_dir.display()))?;
    // Written whole under a name of its own, then linked into place:
    // a process that finds `host-id` finds it written (one made with
    // `create_new` and read by another before its writer wrote was empty).
    let own = state_dir.join(format!("host-id.{id}.new"));
    let _ = std::fs::remove_file(&own);
    let written = crate::private_files::create_new(&own)
        .and_then(|mut out| writeln!(out, "{id}").and_then(|()| out.sync_all()));
    let linked = written.and_then(|()| std::fs::hard_link(&own, &file));
    let _ = std::fs::remove_file(&own);
    match linked {
        Ok(()) => Ok(id),
        // Another process made it first: theirs is the id.
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?
                .trim()
                .to_string())
        }
        Err(err) => Err(err).with_context(|| format!("cannot write {}", file.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Many processes' first sync at once (a fleet's hosts run by one
    /// config management at the same second, or panes at once): each finds
    /// the same id, never an empty one read before its writer wrote it.
    #[test]
    fn first_ids_made_at_once_are_one_and_never_empty() {
        for _ in 0..100 {
            let dir = tempfile::tempdir().unwrap();
            let state = dir.path().join("state");
            let ids: Vec<String> = std::thread::scope(|scope| {
                let makers: Vec<_> = (0..8)
                    .map(|_| scope.spawn(|| generated_id(&state).unwrap()))
                    .collect();
                makers.into_iter().map(|m| m.join().unwrap()).collect()
            });
            assert_eq!(ids[0].len(), 32, "{ids:?}");
            assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
            let left: Vec<_> = std::fs::read_dir(&state).unwrap().flatten().collect();
            assert_eq!(left.len(), 1, "only host-id is left: {left:?}");
        }
    }
}
