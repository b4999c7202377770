//! tmux-audit's library: everything but the command line. The binary
//! (`main.rs`, `cli.rs`, `cmd/`) parses flags with clap, turns them into
//! the plain values defined here, calls in, and prints.
//!
//! Layers, each using only those below it (ARCHITECTURE.md has the map and
//! what each layer must never do):
//!
//! - capture and storage: `capture` (each pane's output, `pipe-pane`d
//!   into segment files), `store` (the per-command path: one entry to the
//!   spool or the database), `spool`, `db` (schema, migrations, queries),
//!   `chain` and `trace` (the hash chains), `lifecycle` (tmux events and
//!   their replay), `render` (tables, JSON, CSV for a person or a program), `pick` (the
//!   interactive picker's model, without a terminal);
//! - the model and helpers: `record` (a command, an entry), `context`
//!   (where it ran), `filter` and `timespec` (what to look for), `redact`,
//!   `config`, `paths`, `private_files`, `error_log`, `text`.
//!
//! Nothing here imports clap, prints to the terminal, or exits the process.

pub mod capture;
pub mod central;
pub mod chain;
pub mod config;
pub mod context;
pub mod db;
pub mod error_log;
pub mod filter;
pub mod forward;
pub mod hook_cache;
pub mod hook_stream;
pub mod import;
pub mod lifecycle;
pub mod paths;
pub mod pick;
pub mod private_files;
pub mod record;
pub mod redact;
pub mod render;
pub mod spool;
pub mod store;
pub mod text;
pub mod timespec;
pub mod tls;
pub mod trace;
