//! Integration tests: the real binary, real shells in a real tmux server
//! on a private socket, and a real SQLite file. One test binary; a module
//! per topic.

mod pg;
mod support;
mod users;

mod architecture;
mod capture;
mod central;
mod cli;
mod doctor;
mod export;
mod faults;
mod files;
mod forward;
mod guests;
mod hooks;
mod import;
mod init;
mod lifecycle;
mod load;
mod mutants;
mod pick;
mod prune;
mod record;
mod recorder;
mod redact;
mod redact_command;
mod schemas;
mod search;
mod shared;
mod verify;
