//! Secrets never stored: likely secrets in a command are replaced by
//! `[REDACTED]` before the record is written anywhere (database, spool,
//! hand-over).
//!
//! The recorder runs on every prompt, so the common case must cost next to
//! nothing: each built-in pattern names literals, one of which appears (in
//! any case) in every text it matches (the broad ones name a second set: an
//! assignment needs a `=`, an option a `-`). The command is lower-cased once and
//! searched for them; only the patterns whose literal is there are compiled
//! and run. The literals are a necessary condition, never a guess: a test
//! runs every pattern unfiltered over the corpus to check it.
//!
//! A pattern that starts with `(?i)` runs without the flag over the
//! lower-cased copy (same length, same offsets): the same matches (a test
//! checks it), compiled in one half to two thirds of the time.
//!
//! The spans all patterns find are merged, and each merged span of the text
//! as typed becomes one mark, so overlapping patterns (a JWT in an
//! `Authorization: Bearer` header) never see each other's marks.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, Input, MatchKind};
use regex::bytes::{Captures, Regex, RegexBuilder};

use crate::config::Redact;

pub const MARK: &[u8] = b"[REDACTED]";

/// A built-in pattern: what it finds, the literals (lower case) one of which
/// every match holds in some case (and one of `also`), and a regex whose group `secret` (or
/// whole match) is redacted unless `keep` says the match is no secret
/// (`keep` gets the command as typed and the match's groups, whose offsets
/// are the same in it).
pub struct Builtin {
    pub name: &'static str,
    pub literals: &'static [&'static str],
    /// When not empty, literals one of which every match also holds.
    pub also: &'static [&'static str],
    pub regex: &'static str,
    pub keep: fn(&[u8], &Captures<'_>) -> bool,
}

/// Names that hold a secret, as the last part of an environment variable,
/// option or key (`DB_PASSWORD`, `--db-password`, `apiKey`, `X-Api-Key`).
/// `password`-like words may be glued to what comes before them
/// (`PGPASSWORD`, `clientSecret`); `pass` and `pwd` need a separator, so
/// `BYPASS`, `COMPASS` and `OLDPWD` are no secrets.
macro_rules! secret_name {
    () => {
        r"(?:[A-Za-z0-9_.-]*(?:password|passwd|passphrase|token|secret|api[_-]?key|access[_-]?key|secret[_-]?key|private[_-]?key)|(?:[A-Za-z0-9_.-]*[_.-])?(?:pass|pwd))"
    };
}

/// Literals of [`secret_name!`]: one of them is in every name it matches
/// (`_key` and `-key` for the `…_key` and `…-key` names: `api` is in most
/// URLs, and Teddy, the automaton's prefilter, matched `api_key`'s first
/// bytes there in every line of a web server's log).
const NAME_LITERALS: &[&str] = &[
    "pass",
    "pwd",
    "token",
    "secret",
    "_key",
    "-key",
    "apikey",
    "accesskey",
    "privatekey",
];

/// A value as the shell reads it: a command substitution, quoted, or a run
/// of bytes up to a space or an operator. (A value that is partly quoted is
/// cut at the quote.)
macro_rules! value {
    () => {
        r#"(?:\$\([^()]*\)|"[^"]+"|'[^']+'|[^\s'"`;&|<>()]+)"#
    };
}

/// The same, for an option's separate argument: never another option.
macro_rules! argument {
    () => {
        r#"(?:\$\([^()]*\)|"[^"]+"|'[^']+'|[^\s'"`;&|<>()\-][^\s'"`;&|<>()]*)"#
    };
}

/// The arguments between a program and one of its options, in the same
/// simple command (lazy: up to the first such option).
macro_rules! then_option {
    () => {
        r"\s(?:[^;&|\n]*?\s)?"
    };
}

/// A program's name at the start of a word (or after a path).
macro_rules! program {
    () => {
        r#"(?:^|[\s;&|(/`'"])"#
    };
}

/// `user:password`, quoted (the password runs to the quote) or not.
macro_rules! user_password {
    () => {
        r#"(?:["'][^\s:'"]*:(?P<secret>[^'"]+)|[^\s:'"]*:(?P<secret2>[^\s'"`;&|<>()]+))"#
    };
}

fn keep_nothing(_: &[u8], _: &Captures<'_>) -> bool {
    false
}

pub const BUILTIN: &[Builtin] = &[
    // NAME=value, NAME = value: env vars, options, query parameters, config
    // lines (`DB_PASSWORD=x`, `--db-password=x`, `?access_token=x`).
    Builtin {
        name: "secret assignment",
        literals: NAME_LITERALS,
        also: &["="],
        regex: concat!(
            r"(?i)(?:^|[^A-Za-z0-9_.-])(?P<key>",
            secret_name!(),
            r")(?:=|\s+=\s*)(?P<secret>",
            value!(),
            ")"
        ),
        keep: keep_assignment,
    },
    // NAME: value (headers such as `X-Api-Key: x`, YAML, `pass:x` of
    // openssl). Not in a path or URL (`-v ./secret:/run`, the user of
    // `https://x-access-token:TOKEN@host`, which the URL pattern redacts).
    Builtin {
        name: "secret field",
        literals: NAME_LITERALS,
        also: &[":"],
        regex: concat!(
            r"(?i)(?:^|[^A-Za-z0-9_./-])(?P<key>",
            secret_name!(),
            r#"):\s*(?P<secret>"[^"\s][^"]*"|'[^'\s][^']*'|[^\s'"`;&|<>()/][^\s'"`;&|<>()]*)"#
        ),
        keep: keep_assignment,
    },
    // "password": "x", also with the quotes escaped for the shell.
    Builtin {
        name: "JSON secret",
        literals: NAME_LITERALS,
        also: &["\""],
        regex: concat!(
            r#"(?i)\\?"(?P<key>"#,
            secret_name!(),
            r#")\\?"\s*:\s*\\?"(?P<secret>(?:[^"\\]|\\[^"])+)\\?""#
        ),
        keep: keep_assignment,
    },
    // --password X, --db-password X, -storepass X (a separate argument).
    Builtin {
        name: "secret option",
        literals: NAME_LITERALS,
        also: &["-"],
        regex: concat!(
            r"(?i)(?:^|\s)(?P<key>--?(?:[A-Za-z0-9]+[-_.])*(?:password|passwd|passphrase|pass|pwd|token|api[-_]?key|access[-_]key|secret[-_]key|[A-Za-z0-9]+[-_]secret|(?:src|dest)?(?:store|key)pass))\s+(?P<secret>",
            argument!(),
            ")"
        ),
        keep: keep_option,
    },
    // Authorization: Bearer|Basic|Token x (any case), Proxy-Authorization.
    Builtin {
        name: "Authorization header",
        literals: &["authorization"],
        also: &[],
        regex: r#"(?i)authorization["']?\s*[:=]\s*["']?(?:(?:bearer|basic|token|bot|apikey|key|sso-key)\s+)?(?P<secret>[^\s'"`;&|<>()]+)"#,
        keep: keep_nothing,
    },
    // A bearer token as a header's value or an option's (`X-Token: Bearer
    // x`, `--oauth2-bearer x`); not the word in prose (`grep Bearer src/`).
    Builtin {
        name: "bearer token",
        literals: &["bearer"],
        also: &[],
        regex: r#"(?i)(?:[:"'=]\s*bearer|--oauth2-bearer)\s+(?P<secret>[^\s'"`;&|<>()]{8,})"#,
        keep: keep_nothing,
    },
    // Programs where -p (or -a, -P, -U) is the password: mysql -pX (a bare
    // -p asks for it, and `-p X` names a database). Each needs its option
    // as an `also`: a program's name alone in a line of output (`7Z` ends
    // a time in many logs) runs no regex.
    Builtin {
        name: "mysql/mariadb -pPASSWORD",
        literals: &["mysql", "mariadb"],
        also: &["-p"],
        regex: concat!(
            program!(),
            r"(?:mysql|mariadb)[A-Za-z-]*",
            then_option!(),
            r"-p(?P<secret>",
            value!(),
            ")"
        ),
        keep: keep_nothing,
    },
    Builtin {
        name: "sshpass -p",
        literals: &["sshpass"],
        also: &["-p"],
        regex: concat!(
            program!(),
            r"sshpass\s+(?:-[^p\s]\S*\s+)*-p\s*(?P<secret>",
            value!(),
            ")"
        ),
        keep: keep_nothing,
    },
    Builtin {
        name: "registry login -p",
        literals: &["login"],
        also: &["-p"],
        regex: concat!(
            program!(),
            r"(?:docker|podman|nerdctl|buildah|skopeo|oras|helm\s+registry)\s+login",
            then_option!(),
            r"-p\s*(?P<secret>",
            value!(),
            ")"
        ),
        keep: keep_nothing,
    },
    Builtin {
        name: "redis-cli -a",
        literals: &["redis-cli"],
        also: &["-a"],
        regex: concat!(
            program!(),
            r"redis-cli",
            then_option!(),
            r"-a\s*(?P<secret>",
            value!(),
            ")"
        ),
        keep: keep_nothing,
    },
    Builtin {
        name: "mongo -p",
        literals: &["mongo"],
        also: &["-p"],
        regex: concat!(
            program!(),
            r"mongo(?:sh|dump|restore|export|import|stat|top)?",
            then_option!(),
            r"-p\s*(?P<secret>",
            value!(),
            ")"
        ),
        keep: keep_nothing,
    },
    Builtin {
        name: "7z -pPASSWORD",
        literals: &["7z"],
        also: &["-p"],
        regex: concat!(
            program!(),
            r"7z[az]?",
            then_option!(),
            r"-p(?P<secret>",
            value!(),
            ")"
        ),
        keep: keep_nothing,
    },
    Builtin {
        name: "zip/unzip/sqlcmd -P",
        literals: &["zip", "sqlcmd", "bcp"],
        also: &["-p"],
        regex: concat!(
            program!(),
            r"(?:zip|unzip|zipcloak|sqlcmd|bcp)",
            then_option!(),
            r"-P\s*(?P<secret>",
            value!(),
            ")"
        ),
        keep: keep_nothing,
    },
    Builtin {
        name: "smbclient -U user%password",
        literals: &["smbclient", "rpcclient", "smbmap"],
        also: &["-u"],
        regex: concat!(
            program!(),
            r"(?:smbclient|rpcclient|smbmap)",
            then_option!(),
            r#"-U\s*["']?[^\s%'"]+%(?P<secret>[^\s'"`;&|<>()]+)"#
        ),
        keep: keep_nothing,
    },
    // curl -u user:password, --user, --proxy-user; httpie/xh -a user:password.
    Builtin {
        name: "curl -u user:password",
        literals: &["curl"],
        // Every option it reads starts so (`--user`, `--proxy-user` too):
        // `curl` alone in a line of output runs no regex.
        also: &["-u"],
        regex: concat!(
            program!(),
            r"curl",
            then_option!(),
            r#"(?:-u\s*|-U\s*|--user(?:\s+|=)|--proxy-user(?:\s+|=))"#,
            user_password!()
        ),
        keep: keep_nothing,
    },
    Builtin {
        name: "httpie -a user:password",
        // `-a` or `--auth` looked for first: `http` is in most lines of a
        // web server's log, and each place it is found costs the search.
        literals: &["-a"],
        also: &["http", "xh"],
        regex: concat!(
            program!(),
            r"(?:https?|xhs?)",
            then_option!(),
            r#"(?:-a\s*|--auth(?:\s+|=))"#,
            user_password!()
        ),
        keep: keep_nothing,
    },
    // aws configure set aws_secret_access_key X
    Builtin {
        name: "aws configure set",
        literals: &["configure"],
        also: &[],
        regex: concat!(
            r"aws\s+configure\s+set\s+(?:[A-Za-z0-9_-]+\.)*(?:aws_secret_access_key|aws_session_token)\s+(?P<secret>",
            value!(),
            ")"
        ),
        keep: keep_nothing,
    },
    // scheme://user:password@host
    Builtin {
        name: "URL credentials",
        literals: &["://"],
        also: &["@"],
        regex: r#"[A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@'"]*:(?P<secret>[^/\s'"]+)@"#,
        keep: keep_nothing,
    },
    // Private-key blocks, to the END line or, pasted without it, to the end
    // of what can be a key.
    Builtin {
        name: "private key block",
        literals: &["private key"],
        also: &[],
        regex: r"(?s)-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?:[A-Za-z0-9+/=\s:,.\\\-]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s:,.\\\-]*)",
        keep: keep_nothing,
    },
    // Tokens known by their shape (case matters).
    Builtin {
        name: "AWS access key id",
        literals: &["akia", "asia"],
        also: &[],
        regex: r"(?:^|[^A-Za-z0-9])(?P<secret>(?:AKIA|ASIA)[0-9A-Z]{16})",
        keep: keep_nothing,
    },
    Builtin {
        name: "AWS session token",
        literals: &["fwogzxivyxdz", "iqojb3jpz2lux2vj"],
        also: &[],
        regex: r"(?:FwoGZXIvYXdz|IQoJb3JpZ2luX2Vj)[A-Za-z0-9/+=]{40,}",
        keep: keep_nothing,
    },
    Builtin {
        name: "GitHub token",
        literals: &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
        also: &[],
        regex: r"gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}",
        keep: keep_nothing,
    },
    Builtin {
        name: "GitLab token",
        literals: &[
            "glpat-", "glrt-", "gldt-", "glptt-", "glcbt-", "glsoat-", "glft-", "glimt-", "gloas-",
            "glagent-",
        ],
        also: &[],
        regex: r"gl(?:pat|rt|dt|ptt|cbt|soat|ft|imt|oas|agent)-[A-Za-z0-9_\-]{20,}",
        keep: keep_nothing,
    },
    Builtin {
        name: "Slack token",
        literals: &["xox", "xapp-"],
        also: &[],
        regex: r"xox[abeoprs]-[A-Za-z0-9\-]{10,}|xapp-[0-9]-[A-Za-z0-9\-]{10,}",
        keep: keep_nothing,
    },
    Builtin {
        name: "Slack webhook",
        literals: &["hooks.slack.com"],
        also: &[],
        regex: r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<secret>[A-Za-z0-9_/\-]+)",
        keep: keep_nothing,
    },
    Builtin {
        name: "Stripe key",
        literals: &["_live_", "_test_", "whsec_"],
        also: &[],
        regex: r"[sr]k_(?:live|test)_[A-Za-z0-9]{16,}|whsec_[A-Za-z0-9]{24,}",
        keep: keep_nothing,
    },
    // OpenAI (sk-…, sk-proj-…) and Anthropic (sk-ant-…) keys.
    Builtin {
        name: "OpenAI/Anthropic key",
        literals: &["sk-"],
        also: &[],
        regex: r"(?:^|[^A-Za-z0-9_\-])(?P<secret>sk-[A-Za-z0-9_\-]{20,})",
        keep: keep_nothing,
    },
    Builtin {
        name: "Google key",
        literals: &["aiza", "ya29.", "gocspx-"],
        also: &[],
        regex: r"AIza[0-9A-Za-z_\-]{35}|ya29\.[0-9A-Za-z_\-]{20,}|GOCSPX-[0-9A-Za-z_\-]{20,}",
        keep: keep_nothing,
    },
    Builtin {
        name: "npm token",
        literals: &["npm_"],
        also: &[],
        regex: r"npm_[A-Za-z0-9]{36}",
        keep: keep_nothing,
    },
    Builtin {
        name: "JSON Web Token",
        literals: &["eyj"],
        also: &[],
        regex: r"eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*",
        keep: keep_nothing,
    },
];

/// `$PWD` is the working directory; a value that is a relative or home
/// path names a file (`--from-file=password=./pw.txt`), and a private key
/// given as any path or `@file` is only its file.
fn keep_assignment(command: &[u8], caps: &Captures<'_>) -> bool {
    let group = |name| caps.name(name).map_or(&b""[..], |m| &command[m.range()]);
    let key = group("key");
    if key == b"PWD" {
        return true;
    }
    let secret = group("secret");
    let starts = |prefixes: &[&[u8]]| prefixes.iter().any(|p| secret.starts_with(p));
    if starts(&[b"./", b"../", b"~/"]) {
        return true;
    }
    let key = key.to_ascii_lowercase();
    starts(&[b"/", b"@"]) && (key.ends_with(b"private_key") || key.ends_with(b"private-key"))
}

/// Options that only ask for a password or say how (`--ask-pass`,
/// `--no-password`): the next word is no secret. Nor is it for mysql and
/// mariadb, where `--password X` asks for the password and X is the
/// database (their password is `--password=X` or `-pX`).
fn keep_option(command: &[u8], caps: &Captures<'_>) -> bool {
    let key = caps.name("key").map_or(&b""[..], |k| &command[k.range()]);
    let name = key.to_ascii_lowercase();
    let name = &name[name.iter().take_while(|b| **b == b'-').count()..];
    let asks = [
        &b"ask-"[..],
        b"ask_",
        b"no-",
        b"prompt-",
        b"show-",
        b"print-",
        b"with-",
    ]
    .iter()
    .any(|p| name.starts_with(p));
    let before = &command[..caps.name("key").map_or(0, |k| k.start())];
    let simple_command = before
        .rsplit(|b| matches!(b, b';' | b'&' | b'|' | b'\n'))
        .next()
        .unwrap_or(before);
    let mysql = simple_command
        .split(|b| b.is_ascii_whitespace())
        .map(|word| word.rsplit(|b| *b == b'/').next().unwrap_or(word))
        .any(|program| program.starts_with(b"mysql") || program.starts_with(b"mariadb"));
    asks || (mysql && name.starts_with(b"password"))
}

/// A value that only names a shell variable or command substitution
/// (`$TOKEN`, `"${DB_PASSWORD}"`, `$(pass show db)`): the shell puts the
/// secret there, the command text holds none.
fn is_reference(secret: &[u8]) -> bool {
    let inner = match secret {
        [b'"', inner @ .., b'"'] => inner,
        _ => secret,
    };
    let name = |s: &[u8]| {
        !s.is_empty()
            && !s[0].is_ascii_digit()
            && s.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
    };
    match inner {
        [b'$', b'{', rest @ .., b'}'] => name(rest),
        [b'$', b'(', rest @ .., b')'] => !rest.contains(&b')'),
        [b'$', rest @ ..] => name(rest),
        _ => false,
    }
}

/// What redaction made of a command.
pub struct Redacted {
    /// The text with its secrets marked, or None when none was found (the
    /// common case, decided without compiling a regex).
    pub text: Option<Vec<u8>>,
    /// User patterns that do not compile: skipped, each to be logged.
    pub broken: Vec<anyhow::Error>,
}

/// Redacts `command` as `settings` say. A user pattern that does not
/// compile is skipped (and returned to be logged); it never turns the other
/// patterns off.
pub fn redact(command: &[u8], settings: &Redact) -> Redacted {
    let mut redactor = Redactor::new(settings);
    let text = redactor.redact(command);
    Redacted {
        text,
        broken: std::mem::take(&mut redactor.broken),
    }
}

type Keep = fn(&[u8], &Captures<'_>) -> bool;

/// Redaction for many texts in turn (a pane's output, line after line):
/// each built-in regex is compiled the first time a text holds one of its
/// literals, then kept.
pub struct Redactor {
    enabled: bool,
    allow: Vec<Vec<u8>>,
    builtins: Vec<std::cell::OnceCell<(Regex, bool)>>,
    user: Vec<Regex>,
    /// User patterns that do not compile: skipped, each to be logged.
    pub broken: Vec<anyhow::Error>,
}

impl Redactor {
    pub fn new(settings: &Redact) -> Redactor {
        let mut broken = Vec::new();
        let mut user = Vec::new();
        for pattern in &settings.patterns {
            match Regex::new(pattern) {
                Ok(regex) => user.push(regex),
                Err(err) => broken.push(anyhow::anyhow!(
                    "redact pattern {pattern:?} in the config file: {}",
                    regex_error_line(&err)
                )),
            }
        }
        Redactor {
            enabled: settings.enabled,
            allow: settings
                .allow
                .iter()
                .map(|a| a.as_bytes().to_vec())
                .collect(),
            builtins: BUILTIN.iter().map(|_| std::cell::OnceCell::new()).collect(),
            user,
            broken,
        }
    }

    /// `text` with its secrets marked, or None when none was found (the
    /// common case, decided without compiling a regex).
    pub fn redact(&self, command: &[u8]) -> Option<Vec<u8>> {
        let spans = self.spans(command);
        (!spans.is_empty()).then(|| mark(command, spans))
    }

    /// Where the secrets of `command` are (byte ranges, in no order, may
    /// overlap): what [`Redactor::redact`] marks.
    pub fn spans(&self, command: &[u8]) -> Vec<(usize, usize)> {
        let lower = command.to_ascii_lowercase();
        // Each regex, whether it runs over the lower-cased copy, and its `keep`.
        let mut regexes: Vec<(&Regex, bool, Keep)> = Vec::new();
        if self.enabled {
            let found = literals_in(&lower);
            for (index, builtin) in BUILTIN.iter().enumerate() {
                if !is_candidate(index, found) {
                    continue;
                }
                let (regex, any_case) = self.builtins[index].get_or_init(|| compile(builtin));
                regexes.push((regex, *any_case, builtin.keep));
            }
        }
        for regex in &self.user {
            regexes.push((regex, false, keep_nothing));
        }
        let mut spans: Vec<(usize, usize)> = Vec::new();
        for (regex, any_case, keep) in &regexes {
            let haystack = if *any_case { &lower[..] } else { command };
            for caps in regex.captures_iter(haystack) {
                // The group `secret` (or `secret2`, its other spelling), or
                // else the whole match.
                let secret = caps
                    .name("secret")
                    .or_else(|| caps.name("secret2"))
                    .unwrap_or_else(|| caps.get(0).expect("group 0"))
                    .range();
                let typed = &command[secret.clone()];
                if typed.is_empty()
                    || keep(command, &caps)
                    || is_reference(typed)
                    || self.allow.iter().any(|a| a == typed)
                {
                    continue;
                }
                spans.push((secret.start, secret.end));
            }
        }
        spans
    }
}

/// The built-in patterns' own literals of three bytes or more in two
/// automata, so that a command is read twice for all of them (not once
/// per literal: an import reads a million commands), and which literals
/// each pattern needs, as bit sets of their numbers.
///
/// Only the literals a pattern has among its `literals` are in the
/// automata; those that are only an `also` (`=`, `-p`, `http`) are looked
/// for one by one (memchr, memmem), and only once a pattern needing them
/// has its other literal. Literals of one byte are in most lines of
/// output: a search reporting each of them cost a quarter of a capture
/// process's time. Literals of two bytes (`7z`) are looked for one by one
/// too: the automata's SIMD prefilter (Teddy) skips most of a line by
/// the first bytes of each literal, up to four, as many as the shortest
/// has; over two bytes it would stop at most places. For the same reason
/// the literals of three bytes (`pwd`, `://`) have an automaton of their
/// own: the 52 literals of four bytes or more and the 7 of three take
/// 0.25 and 0.16 ms per MB of log lines, where 55 literals in one
/// automaton took 0.80. Each literal found restarts the search, so a
/// literal in most lines (`http` in a web server's log) is better an
/// `also`.
struct Literals {
    /// The automata, and per literal of each: its number and those of the
    /// other literals it starts with, which are there wherever it is (the
    /// search reports only the longest literal at each place). None only
    /// if one could not be built: then every pattern is tried.
    automata: Option<Vec<(AhoCorasick, Vec<u128>)>>,
    /// The literals of two bytes or more looked for apart (of two bytes,
    /// or only an `also`), and their numbers.
    apart: Vec<(memchr::memmem::Finder<'static>, usize)>,
    /// The literals of one byte, and their numbers.
    bytes: Vec<(u8, usize)>,
    /// The literals some pattern has among its `literals` (not only as an
    /// `also`): those looked for apart are looked for in every text.
    primary: u128,
    /// Per built-in pattern: its `literals` and its `also`.
    needs: Vec<(u128, u128)>,
}

static LITERALS: LazyLock<Literals> = LazyLock::new(Literals::builtin);

impl Literals {
    /// The built-in patterns' literals.
    fn builtin() -> Literals {
        let sets: Vec<_> = BUILTIN.iter().map(|b| (b.literals, b.also)).collect();
        Literals::new(&sets)
    }

    /// The literals of each pattern's two sets (`literals`, `also`),
    /// numbered in the order they first come.
    fn new(sets: &[(&[&'static str], &[&'static str])]) -> Literals {
        let mut all: Vec<&str> = Vec::new();
        let mut set = |literals: &[&'static str]| {
            literals.iter().fold(0u128, |bits, literal| {
                let number = match all.iter().position(|l| l == literal) {
                    Some(number) => number,
                    None => {
                        all.push(literal);
                        all.len() - 1
                    }
                };
                // More than 128 literals would need a wider set: a test checks.
                bits | 1u128.checked_shl(number as u32).unwrap_or(0)
            })
        };
        let needs: Vec<(u128, u128)> = sets
            .iter()
            .map(|(literals, also)| (set(literals), set(also)))
            .collect();
        let primary = needs.iter().fold(0, |bits, (literals, _)| bits | literals);
        let (searched, apart): (Vec<_>, Vec<_>) = all
            .iter()
            .copied()
            .enumerate()
            .partition(|(number, literal)| literal.len() > 2 && primary & bit(*number) != 0);
        let (three, longer): (Vec<_>, Vec<_>) = searched
            .into_iter()
            .partition(|(_, literal)| literal.len() == 3);
        let automata = [three, longer]
            .into_iter()
            .filter(|group| !group.is_empty())
            .map(|group| {
                let automaton = AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(group.iter().map(|(_, literal)| literal))
                    .ok()?;
                let holds = group
                    .iter()
                    .map(|(_, outer)| {
                        group
                            .iter()
                            .filter(|(_, inner)| outer.starts_with(inner))
                            .fold(0, |bits, (number, _)| bits | bit(*number))
                    })
                    .collect();
                Some((automaton, holds))
            })
            .collect();
        Literals {
            automata,
            bytes: apart
                .iter()
                .filter(|(_, literal)| literal.len() == 1)
                .map(|(number, literal)| (literal.as_bytes()[0], *number))
                .collect(),
            apart: apart
                .iter()
                .filter(|(_, literal)| literal.len() > 1)
                .map(|(number, literal)| {
                    (
                        memchr::memmem::Finder::new(literal.as_bytes()).into_owned(),
                        *number,
                    )
                })
                .collect(),
            primary,
            needs,
        }
    }

    /// The literals `lower` (a lower-cased text) holds: see [`literals_in`].
    fn found_in(&self, lower: &[u8]) -> u128 {
        let Some(automata) = &self.automata else {
            return u128::MAX;
        };
        // The longest literal starting at each place where one starts: the
        // search starts again one byte after each match's start, so every
        // place is reached; a shorter literal starting at the same place
        // is in `holds`.
        let mut found = 0;
        for (automaton, holds) in automata {
            let mut at = 0;
            while let Some(m) = automaton.find(Input::new(lower).range(at..)) {
                found |= holds[m.pattern().as_usize()];
                at = m.start() + 1;
            }
        }
        found |= self.apart_in(lower, self.primary);
        let wanted = self
            .needs
            .iter()
            .filter(|(needs, _)| found & needs != 0)
            .fold(0, |bits, (_, also)| bits | also);
        found | self.apart_in(lower, wanted & !self.primary)
    }

    /// Whether pattern `index` may match a text holding the literals
    /// `found`: one of its `literals`, and one of its `also` if it has any.
    fn may_match(&self, index: usize, found: u128) -> bool {
        let (literals, also) = self.needs[index];
        found & literals != 0 && (also == 0 || found & also != 0)
    }

    /// Which of the literals looked for apart in `which` `lower` holds.
    fn apart_in(&self, lower: &[u8], which: u128) -> u128 {
        let mut found = 0;
        for (finder, number) in &self.apart {
            if which & bit(*number) != 0 && finder.find(lower).is_some() {
                found |= bit(*number);
            }
        }
        for &(byte, number) in &self.bytes {
            if which & bit(number) != 0 && memchr::memchr(byte, lower).is_some() {
                found |= bit(number);
            }
        }
        found
    }
}

fn bit(number: usize) -> u128 {
    1u128.checked_shl(number as u32).unwrap_or(0)
}

/// The literals the lower-cased command holds, as a bit set; a literal of
/// one byte only when a pattern whose other literal it holds needs it
/// (no pattern's literals are all of one byte: a test checks).
fn literals_in(lower: &[u8]) -> u128 {
    LITERALS.found_in(lower)
}

/// Whether the built-in pattern `index` may match a command holding the
/// literals `found`.
fn is_candidate(index: usize, found: u128) -> bool {
    LITERALS.may_match(index, found)
}

/// The built-in patterns whose literals the lower-cased command holds.
pub fn candidates(lower: &[u8]) -> impl Iterator<Item = &'static Builtin> + '_ {
    let found = literals_in(lower);
    BUILTIN
        .iter()
        .enumerate()
        .filter(move |(index, _)| is_candidate(*index, found))
        .map(|(_, builtin)| builtin)
}

/// The pattern as written, `(?i)` and all: what [`compile`] must match
/// the same as, for the tests.
#[cfg(test)]
pub fn as_written(builtin: &Builtin) -> Regex {
    RegexBuilder::new(builtin.regex)
        .unicode(false)
        .build()
        .expect("built-in patterns compile")
}

/// A regex error on one line: the `regex` crate's message draws the
/// pattern with a caret under the fault, over three lines; its last line
/// says what is wrong.
fn regex_error_line(err: &regex::Error) -> String {
    let text = err.to_string();
    let last = text
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("invalid");
    last.trim_start_matches("error: ").to_string()
}

pub fn compile(builtin: &Builtin) -> (Regex, bool) {
    let (regex, any_case) = match builtin.regex.strip_prefix("(?i)") {
        Some(rest) => (rest, true),
        None => (builtin.regex, false),
    };
    let regex = RegexBuilder::new(regex)
        .unicode(false)
        .build()
        .expect("built-in patterns compile");
    (regex, any_case)
}

/// `command` with each of the (possibly overlapping) spans replaced by one
/// mark.
fn mark(command: &[u8], spans: Vec<(usize, usize)>) -> Vec<u8> {
    mark_after(command, spans, 0, false).0
}

/// `text[from..]` with its secrets marked, the `spans` found in all of
/// `text`: the part before `from` was written already (a line written in
/// pieces). A secret that began there is marked from `from` on, unless
/// `marked` says the piece before already ended in its mark. Also says
/// whether `text` ends inside a secret (that the next piece may go on).
pub fn mark_after(
    text: &[u8],
    mut spans: Vec<(usize, usize)>,
    from: usize,
    marked: bool,
) -> (Vec<u8>, bool) {
    spans.sort_unstable();
    let mut out = Vec::with_capacity(text.len() - from);
    let mut done = from;
    let mut ends_inside = false;
    let mut spans = spans.into_iter().peekable();
    while let Some((start, mut end)) = spans.next() {
        while let Some(&(next_start, next_end)) = spans.peek() {
            if next_start > end {
                break;
            }
            end = end.max(next_end);
            spans.next();
        }
        if end <= from {
            continue;
        }
        out.extend_from_slice(&text[done..start.max(from)]);
        if !(start < from && marked) {
            out.extend_from_slice(MARK);
        }
        done = end;
        ends_inside = end == text.len();
    }
    out.extend_from_slice(&text[done..]);
    (out, ends_inside)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The literals fit the bit sets, and the automaton is built: else
    /// every pattern would be tried on every command.
    #[test]
    fn every_literal_has_its_bit() {
        let distinct: std::collections::HashSet<&str> = BUILTIN
            .iter()
            .flat_map(|b| b.literals.iter().chain(b.also))
            .copied()
            .collect();
        assert!(distinct.len() <= 128, "{} literals", distinct.len());
        // An empty literal would be in no search (nor two bytes long, nor
        // one): the pattern needing it would never run.
        assert!(!distinct.contains(""), "an empty literal");
        // aho-corasick's SIMD prefilter (Teddy) takes at most 64 literals
        // per automaton: past that the search steps through every byte
        // again (correct, but a capture process's redaction costs twice as
        // much). Past 32 it takes half as many bytes a step (Fat Teddy).
        let automata = LITERALS.automata.as_ref().expect("the automata are built");
        for (automaton, _) in automata {
            let n = automaton.patterns_len();
            assert!(
                n <= 64,
                "{n} literals in one automaton: make some an `also`"
            );
        }
        assert_eq!(literals_in(b"nothing here at all"), 0);
        // Literals of one byte are looked for only beside another.
        for builtin in BUILTIN {
            assert!(
                builtin.literals.iter().all(|l| l.len() > 1),
                "{}: a literal of one byte is looked for only as an `also`",
                builtin.name
            );
        }
    }

    /// Should an automaton fail to build, redaction is slower, not
    /// weaker: every pattern is tried on every text.
    #[test]
    fn without_its_automata_every_pattern_is_tried() {
        let literals = Literals {
            automata: None,
            ..Literals::builtin()
        };
        let found = literals.found_in(b"nothing here at all");
        for (index, builtin) in BUILTIN.iter().enumerate() {
            assert!(literals.may_match(index, found), "{}", builtin.name);
        }
    }

    fn on(command: &str) -> String {
        let settings = Redact::default();
        match redact(command.as_bytes(), &settings).text {
            Some(bytes) => String::from_utf8(bytes).unwrap(),
            None => command.to_string(),
        }
    }

    fn check(cases: &[(&str, &str)]) {
        let mut failed = Vec::new();
        for (command, expected) in cases {
            let out = on(command);
            if out != *expected {
                failed.push(format!(
                    "{command:?}\n  got      {out:?}\n  expected {expected:?}"
                ));
            }
        }
        assert!(failed.is_empty(), "{}", failed.join("\n"));
    }

    /// A literal that is only an `also` (`=`, `:`, `"`, `-`, `-p`,
    /// `http`) is looked for apart from the automaton, and only
    /// once a pattern needing it has its other literal: found as the first
    /// byte of the text (and nowhere else), before or after that literal,
    /// at the text's end, and in a text with many of them (a log line).
    #[test]
    fn also_literals_are_found_anywhere_beside_their_pattern() {
        check(&[
            ("mysql -u root -phunter2", "mysql -u root -p[REDACTED]"),
            ("7z a -phunter2 x.7z", "7z a -p[REDACTED] x.7z"),
            ("zip -e -P hunter2 x.zip y", "zip -e -P [REDACTED] x.zip y"),
            ("redis-cli -a hunter2 ping", "redis-cli -a [REDACTED] ping"),
            (
                "http -a bob:hunter2 example.org",
                "http -a bob:[REDACTED] example.org",
            ),
            ("xh -a bob:hunter2 x.org", "xh -a bob:[REDACTED] x.org"),
            (
                "smbclient //h/s -U bob%hunter2",
                "smbclient //h/s -U bob%[REDACTED]",
            ),
            (
                "see https://bob:hunter2@host/",
                "see https://bob:[REDACTED]@host/",
            ),
            ("-storepass hunter2", "-storepass [REDACTED]"),
            ("--password hunter2", "--password [REDACTED]"),
            ("\"password\":\"hunter2\"", "\"password\":\"[REDACTED]\""),
            ("api_key:hunter2", "api_key:[REDACTED]"),
            (
                "x=1 y=2 DB_PASSWORD=hunter2",
                "x=1 y=2 DB_PASSWORD=[REDACTED]",
            ),
            (
                "2026-11-29 INFO a=1 b-2 c:3 token=abc123 d=4",
                "2026-11-29 INFO a=1 b-2 c:3 token=[REDACTED] d=4",
            ),
        ]);
        // `=` alone makes no pattern a candidate; nor a program's name
        // without its option (a time ending in `7Z`, a URL without `@`),
        // nor an option without its program (`-a`).
        assert_eq!(candidates(b"a=1 b=2 c:3 -d").count(), 0);
        assert_eq!(candidates(b"ls -a /srv/www").count(), 0);
        let log = b"2026-11-29t12:00:00.007z info http get https://h/x -- mysql login mongo";
        assert_eq!(candidates(log).count(), 0);
    }

    /// Every literal of two bytes or more is found wherever it is: two
    /// literals one after the other, the second starting inside the first
    /// (at each of its bytes) or after it, one inside another, before and
    /// after other text. The oracle is a plain substring test.
    #[test]
    fn every_literal_is_found_where_another_overlaps_or_holds_it() {
        let mut all: Vec<&str> = Vec::new();
        for builtin in BUILTIN {
            for literal in builtin.literals.iter().chain(builtin.also) {
                if !all.contains(literal) {
                    all.push(literal);
                }
            }
        }
        // Those looked for in every text: not those that are only an
        // `also` (the test above).
        let multi = all
            .iter()
            .enumerate()
            .filter(|(n, l)| l.len() > 1 && LITERALS.primary & bit(*n) != 0)
            .fold(0u128, |bits, (n, _)| bits | bit(n));
        let expected = |text: &str| {
            all.iter()
                .enumerate()
                .filter(|(n, _)| multi & bit(*n) != 0)
                .filter(|(_, l)| text.contains(**l))
                .fold(0u128, |bits, (n, _)| bits | bit(n))
        };
        for a in &all {
            for b in &all {
                for cut in 0..=a.len() {
                    for text in [format!("{}{b}", &a[..cut]), format!("x {}{b} y", &a[..cut])] {
                        assert_eq!(
                            literals_in(text.as_bytes()) & multi,
                            expected(&text),
                            "{text:?}"
                        );
                    }
                }
            }
        }
    }

    /// A literal that starts where a longer one does (`ghp` in `ghp_x`)
    /// is found with it (the search reports only the longest at each
    /// place), and one inside it at its own start. (No built-in literal is
    /// the start of another today; one added would be.)
    #[test]
    fn a_literal_at_the_start_of_a_longer_one_is_found_with_it() {
        let literals =
            Literals::new(&[(&["ghp", "ghp_x", "tok", "_xtok"], &[]), (&["zz"], &["="])]);
        let numbers = |text: &str| -> Vec<usize> {
            let found = literals.found_in(text.as_bytes());
            (0..128).filter(|n| found & bit(*n) != 0).collect()
        };
        assert_eq!(numbers("a ghp_x b"), [0, 1]);
        assert_eq!(numbers("ghp_xtok"), [0, 1, 2, 3]);
        assert_eq!(numbers("ghp_tok"), [0, 2]);
        assert_eq!(numbers("zz ="), [4, 5]);
        assert_eq!(numbers("a = b"), Vec::<usize>::new());
        // Both in the automaton of literals of four bytes or more.
        let literals = Literals::new(&[(&["ghp_", "ghp_x", "xtok"], &[])]);
        assert_eq!(literals.found_in(b"a ghp_xtok b"), 0b111);
        assert_eq!(literals.found_in(b"a ghp_tok b"), 0b001);
    }

    /// The leaks of issue 9, each as typed.
    #[test]
    fn secrets_the_review_saw_leak_are_redacted() {
        check(&[
            ("echo PASSWORD=hunter2", "echo PASSWORD=[REDACTED]"),
            ("DB_PASSWORD=x ./migrate up", "DB_PASSWORD=[REDACTED] ./migrate up"),
            ("export MYSQL_ROOT_PASSWORD=x", "export MYSQL_ROOT_PASSWORD=[REDACTED]"),
            (
                "docker run -e POSTGRES_PASSWORD=x postgres:16",
                "docker run -e POSTGRES_PASSWORD=[REDACTED] postgres:16",
            ),
            (
                "curl -H 'Authorization: BEARER abc123456789' https://api.example.com",
                "curl -H 'Authorization: BEARER [REDACTED]' https://api.example.com",
            ),
            ("MYSQL_PWD=x mysql -uroot app", "MYSQL_PWD=[REDACTED] mysql -uroot app"),
            ("mysql -uroot\t-pSECRET app", "mysql -uroot\t-p[REDACTED] app"),
            (
                r#"curl -d '{"password":"x"}' https://api.example.com/login"#,
                r#"curl -d '{"password":"[REDACTED]"}' https://api.example.com/login"#,
            ),
            (
                "echo '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\nAAAAAAABAAAAMwAAAAtzc2gtZW' > id",
                "echo '[REDACTED]' > id",
            ),
        ]);
    }

    /// The over-redactions of issue 9: `-p` is a password only where the
    /// program says so.
    #[test]
    fn options_that_are_no_password_are_left_alone() {
        for command in [
            "mkdir -pv a/b",
            "cp -pr src dst",
            "ssh -p2222 deploy@db",
            "docker run -p8080:80 nginx",
            "tar -xpf backup.tar",
            "ssh -p 2222 deploy@db",
            "docker run -p 8080:80 nginx",
            "mysql -uroot -p app",
            "mysql --password app",
            "sshpass -e ssh -p 2222 host",
            "ansible-playbook --ask-pass site.yml",
        ] {
            assert_eq!(on(command), command);
        }
    }

    #[test]
    fn each_builtin_pattern_is_redacted() {
        check(&[
            ("aws s3 ls --key AKIAIOSFODNN7EXAMPLE", "aws s3 ls --key [REDACTED]"),
            ("export AWS=ASIAIOSFODNN7EXAMPLE", "export AWS=[REDACTED]"),
            ("git clone https://ghp_0123456789abcdefghijABCDEFGHIJ012345@github.com/x", "git clone https://[REDACTED]@github.com/x"),
            ("gh auth login --with-token github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "gh auth login --with-token [REDACTED]"),
            ("curl -H 'PRIVATE-TOKEN: glpat-abcdefghij0123456789'", "curl -H 'PRIVATE-TOKEN: [REDACTED]'"),
            ("gitlab-runner register --token glrt-abcdefghij0123456789", "gitlab-runner register --token [REDACTED]"),
            ("SLACK=xoxb-1234567890-abcdefghij", "SLACK=[REDACTED]"),
            ("curl -X POST https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/abcdefghijklmnopqrstuvwx -d @m.json", "curl -X POST https://hooks.slack.com/services/[REDACTED] -d @m.json"),
            ("stripe --api-key sk_live_0123456789abcdefABCD", "stripe --api-key [REDACTED]"),
            ("llm keys set openai sk-proj-abcdefghijklmnopqrstuvwxyz0123", "llm keys set openai [REDACTED]"),
            ("claude-cli x sk-ant-api03-abcdefghijklmnopqrstuvwxyz-0123456789", "claude-cli x [REDACTED]"),
            ("gcloud x AIzaSyA-abcdefghijklmnopqrstuvwxyz01234", "gcloud x [REDACTED]"),
            ("npm config set //registry.npmjs.org/:_authToken npm_abcdefghijklmnopqrstuvwxyz0123456789", "npm config set //registry.npmjs.org/:_authToken [REDACTED]"),
            ("curl -d token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N", "curl -d token=[REDACTED]"),
            ("curl -H 'Authorization: Bearer abc.def-123456'", "curl -H 'Authorization: Bearer [REDACTED]'"),
            ("curl -H 'authorization: basic dXNlcjpwYXNz'", "curl -H 'authorization: basic [REDACTED]'"),
            ("curl -H 'x-api-key: k3y-value-1'", "curl -H 'x-api-key: [REDACTED]'"),
            ("curl -u admin:hunter22 https://x", "curl -u admin:[REDACTED] https://x"),
            ("curl --user 'admin:hunter 22' https://x", "curl --user 'admin:[REDACTED]' https://x"),
            ("sshpass -p hunter22 ssh host", "sshpass -p [REDACTED] ssh host"),
            ("docker login -u me -p hunter22 registry.example.com", "docker login -u me -p [REDACTED] registry.example.com"),
            ("redis-cli -h cache -a hunter22 ping", "redis-cli -h cache -a [REDACTED] ping"),
            ("mysql --password=hunter22 db", "mysql --password=[REDACTED] db"),
            ("mongosh --password 'hunter 22' db", "mongosh --password [REDACTED] db"),
            ("app --db-password x", "app --db-password [REDACTED]"),
            ("PGPASSWORD=x psql -h db", "PGPASSWORD=[REDACTED] psql -h db"),
            ("mysql -uroot -phunter22 db", "mysql -uroot -p[REDACTED] db"),
            ("mysql -uroot -p'hunter 22' db", "mysql -uroot -p[REDACTED] db"),
            ("curl 'https://api/x?user=a&password=hunter22&x=1'", "curl 'https://api/x?user=a&password=[REDACTED]&x=1'"),
            ("curl 'https://api/x?access_token=abc123&x=1'", "curl 'https://api/x?access_token=[REDACTED]&x=1'"),
            ("psql postgres://admin:s3cret@db:5432/app", "psql postgres://admin:[REDACTED]@db:5432/app"),
            ("aws configure set aws_secret_access_key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws configure set aws_secret_access_key [REDACTED]"),
            ("export AWS_SESSION_TOKEN=IQoJb3JpZ2luX2VjEJr", "export AWS_SESSION_TOKEN=[REDACTED]"),
            ("DB_PASSWORD=${DB_PASSWORD:-devpass1} make", "DB_PASSWORD=[REDACTED] make"),
            (
                "echo '-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----' > k",
                "echo '[REDACTED]' > k",
            ),
        ]);
    }

    #[test]
    fn near_misses_are_left_alone() {
        for command in [
            "ls -la",
            "grep -p AKIA file", // too short to be a key
            "git log --pretty=oneline",
            "echo password",                      // the word alone
            "ssh user@host",                      // no password in it
            "curl https://example.com:8080/path", // a port, not a password
            "cat ~/.ssh/id_rsa.pub",
            "export PASS_THRESHOLD=3",
            "export BYPASS=1",
            "cd \"$OLDPWD\"",
            "docker run -v $PWD:/src img",
            "passwd alice",
            "grep -r token src/",
            "curl -H \"Authorization: Bearer $TOKEN\" https://api",
            "mysql -p\"$MYSQL_PASSWORD\" app",
            "export GITHUB_TOKEN=$(gh auth token)",
            "ansible all --private-key=~/.ssh/deploy -m ping",
            "read -rsp 'Password: ' pw; echo done 'x'",
            // `-p` is an option only as a word of its own.
            "mysql-proxy --help",
            "mysql --ssl-pem=/etc/ca.pem app",
            "sshpass -f pwfile ssh-pkcs11 host",
            // A private key given as a file is only its file.
            "deploy --private-key=/etc/keys/deploy.pem",
            "DEPLOY_PRIVATE_KEY=/etc/keys/deploy.pem ./ship",
        ] {
            assert_eq!(on(command), command);
        }
    }

    #[test]
    fn config_patterns_and_exclusions() {
        let settings = Redact {
            enabled: true,
            patterns: vec![r"corp_[a-z0-9]{8}".into()],
            allow: vec!["AKIAIOSFODNN7EXAMPLE".into()],
        };
        let out = redact(b"use corp_abcd1234 and AKIAIOSFODNN7EXAMPLE", &settings);
        assert_eq!(
            out.text.unwrap(),
            b"use [REDACTED] and AKIAIOSFODNN7EXAMPLE"
        );
        let off = Redact {
            enabled: false,
            ..Redact::default()
        };
        assert_eq!(redact(b"--password=x", &off).text, None);
    }

    /// A pattern that does not compile is skipped and reported; the
    /// built-in patterns and the other user patterns still apply.
    #[test]
    fn a_broken_pattern_turns_no_other_pattern_off() {
        let settings = Redact {
            patterns: vec!["(".into(), r"corp_[a-z0-9]{8}".into()],
            ..Redact::default()
        };
        let out = redact(b"deploy corp_abcd1234 --password=x", &settings);
        assert_eq!(
            out.text.unwrap(),
            b"deploy [REDACTED] --password=[REDACTED]"
        );
        assert_eq!(out.broken.len(), 1);
        assert!(format!("{:#}", out.broken[0]).contains("redact pattern \"(\""));
    }

    #[test]
    fn invalid_utf8_is_redacted_too() {
        let out = redact(b"\xff --password=hunter22", &Redact::default())
            .text
            .unwrap();
        assert_eq!(out, b"\xff --password=[REDACTED]");
    }

    #[test]
    fn overlapping_secrets_become_one_mark() {
        check(&[(
            "curl -H 'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N' x",
            "curl -H 'Authorization: Bearer [REDACTED]' x",
        )]);
    }

    #[test]
    fn secrets_side_by_side_become_one_mark() {
        assert_eq!(
            mark(b"abcdef!", vec![(3, 6), (0, 3)]),
            [MARK, b"!"].concat()
        );
        assert_eq!(
            mark(b"abc-def", vec![(4, 7), (0, 3)]),
            [MARK, b"-", MARK].concat()
        );
    }

    #[test]
    fn every_literal_is_lower_case_and_every_pattern_compiles() {
        for builtin in BUILTIN {
            compile(builtin);
            for literal in builtin.literals.iter().chain(builtin.also) {
                assert_eq!(literal.to_ascii_lowercase(), *literal, "{}", builtin.name);
            }
        }
    }
}

#[cfg(test)]
mod corpus;

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    type Compiled = (&'static Builtin, Regex, (Regex, bool));

    /// Every built-in pattern as written (`(?i)` and all) and as run,
    /// compiled once for all cases.
    fn compiled() -> &'static [Compiled] {
        static COMPILED: std::sync::OnceLock<Vec<Compiled>> = std::sync::OnceLock::new();
        COMPILED.get_or_init(|| {
            BUILTIN
                .iter()
                .map(|b| (b, as_written(b), compile(b)))
                .collect()
        })
    }

    fn spans(regex: &Regex, text: &[u8]) -> Vec<(usize, usize)> {
        regex
            .captures_iter(text)
            .flat_map(|caps| {
                caps.iter()
                    .flatten()
                    .map(|m| (m.start(), m.end()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    proptest! {
        /// Any command, secret-looking or not: no panic, and a redacted one
        /// says so with the mark.
        #[test]
        fn redaction_never_panics(
            prefix in "\\PC{0,20}",
            literal in "(AKIA|--password=|-p|://a:|eyJ|Bearer |password=|PRIVATE KEY|mysql -p|DB_PASSWORD=)",
            suffix in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let mut command = format!("{prefix} {literal}").into_bytes();
            command.extend(suffix);
            if let Some(out) = redact(&command, &Redact::default()).text {
                prop_assert!(out.windows(MARK.len()).any(|w| w == MARK));
            }
        }

        /// The literal check never hides a match: a pattern that matches
        /// was among the candidates; and a `(?i)` pattern run over the
        /// lower-cased text finds what it finds as written.
        #[test]
        fn the_prefilter_never_hides_a_match(
            words in proptest::collection::vec(
                "(PassWord|PWD|_pwd|ToKeN|sEcReT|API-KEY|apikey|Access_Key|PRIVATE_KEY|Authorization|BEARER|MySQL|MariaDB|sshpass|LOGIN|docker|redis-cli|mongosh|7z|zip|sqlcmd|smbclient|curl|HTTP|aws configure set|://|-----BEGIN RSA PRIVATE KEY-----|AKIA0123456789ABCDEF|ghp_|glpat-|xoxb-|hooks.slack.com/services/|sk_live_|sk-|AIza|npm_|eyJ|[=: @]|-p|-a|-P|-u|-U|--|[a-zA-Z0-9]{1,12}|\"|'|\\.)",
                0..12,
            ),
        ) {
            let command = words.concat().into_bytes();
            let names: Vec<&str> = candidates(&command.to_ascii_lowercase())
                .map(|b| b.name)
                .collect();
            let lower = command.to_ascii_lowercase();
            for (builtin, written, (run, lowered)) in compiled() {
                let over = if *lowered { &lower } else { &command };
                prop_assert_eq!(spans(run, over), spans(written, &command), "{}", builtin.name);
                if written.is_match(&command) {
                    prop_assert!(names.contains(&builtin.name), "{} on {:?}", builtin.name, String::from_utf8_lossy(&command));
                }
            }
        }
    }
}
