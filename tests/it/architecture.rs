//! The layers keep to their places (see ARCHITECTURE.md): only the binary's
//! command line (`src/cli.rs`, `src/cmd/`, `src/main.rs`) knows clap or
//! prints; the library below it imports neither the binary nor clap, and
//! never prints or exits. A plain reading of the source, as `grep` would.

use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The library's source files, each without its test module (the part
/// from `#[cfg(test)]` on) and its comments.
fn library() -> Vec<(PathBuf, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    files
        .into_iter()
        .filter(|path| {
            let rel = path.strip_prefix(&src).unwrap();
            !(rel.starts_with("cmd") || rel == Path::new("cli.rs") || rel == Path::new("main.rs"))
        })
        // Test-only modules (declared under #[cfg(test)]).
        .filter(|path| !path.ends_with("redact/corpus.rs"))
        .map(|path| {
            let text = fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let code: Vec<&str> = code
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect();
            (path, code.join("\n"))
        })
        .collect()
}

/// What a library file must not hold.
const FORBIDDEN: [&str; 8] = [
    "clap",
    "crate::cli",
    "crate::cmd",
    "tmux_audit::",
    "println!",
    "eprintln!",
    "print!(",
    "process::exit",
];

fn crossings(code: &str) -> Vec<&'static str> {
    FORBIDDEN.into_iter().filter(|w| code.contains(w)).collect()
}

#[test]
fn the_library_knows_neither_clap_nor_the_binary_and_never_prints() {
    let library = library();
    assert!(library.len() > 20, "read the library: {}", library.len());
    let found: Vec<String> = library
        .iter()
        .flat_map(|(path, code)| {
            crossings(code)
                .into_iter()
                .map(move |w| format!("{}: {w}", path.display()))
        })
        .collect();
    assert!(found.is_empty(), "layers crossed:\n{}", found.join("\n"));
}

#[test]
fn the_check_sees_a_crossing() {
    assert_eq!(crossings("use clap::Args;\nfn f() {}"), ["clap"]);
    assert_eq!(
        crossings("use crate::cli::Shell;\neprintln!(\"x\");"),
        ["crate::cli", "println!", "eprintln!"]
    );
    assert!(crossings("use crate::db::Database;").is_empty());
}

/// The storage and rendering layers work on what they are given: none of
/// them runs tmux (`lifecycle::hooks` is the side that asks the tmux server)
/// or any other program; the commands ask, and pass the answers down.
#[test]
fn storage_and_rendering_never_ask_tmux() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found: Vec<String> = library()
        .iter()
        .filter(|(path, _)| {
            let rel = path.strip_prefix(&src).unwrap();
            ["db", "render", "filter.rs", "spool.rs"]
                .iter()
                .any(|layer| rel.starts_with(layer))
        })
        .flat_map(|(path, code)| {
            ["hooks::", "Command::new("]
                .into_iter()
                .filter(|w| code.contains(w))
                .map(move |w| format!("{}: {w}", path.display()))
        })
        .collect();
    assert!(found.is_empty(), "layers crossed:\n{}", found.join("\n"));
}
