//! Secrets never stored: likely secrets in a command are replaced by
//! `[REDACTED]` before the record is written anywhere (database, spool,
//! hand-over). The regexes are compiled only when a cheap literal check
//! says a command may hold one, which keeps the per-command cost low.

use anyhow::{Context, Result};
use regex::bytes::{Captures, Regex, RegexBuilder};

use crate::config::Redact;

pub const MARK: &[u8] = b"[REDACTED]";

/// A built-in pattern: the literal that must appear for it to match, and a
/// regex whose group `secret` (or whole match) is redacted.
pub struct Builtin {
    pub literal: &'static [u8],
    pub regex: &'static str,
}

pub const BUILTIN: &[Builtin] = &[
    // AWS access key ids.
    Builtin {
        literal: b"AKIA",
        regex: r"\b(?P<secret>AKIA[0-9A-Z]{16})\b",
    },
    Builtin {
        literal: b"ASIA",
        regex: r"\b(?P<secret>ASIA[0-9A-Z]{16})\b",
    },
    // GitHub tokens.
    Builtin {
        literal: b"gh",
        regex: r"\b(?P<secret>gh[pousr]_[A-Za-z0-9]{36,})",
    },
    Builtin {
        literal: b"github_pat_",
        regex: r"\b(?P<secret>github_pat_[A-Za-z0-9_]{22,})",
    },
    // GitLab personal access tokens.
    Builtin {
        literal: b"glpat-",
        regex: r"\b(?P<secret>glpat-[A-Za-z0-9_\-]{20,})",
    },
    // Slack tokens.
    Builtin {
        literal: b"xox",
        regex: r"\b(?P<secret>xox[abposr]-[A-Za-z0-9\-]{10,})",
    },
    // Stripe secret and restricted keys.
    Builtin {
        literal: b"_live_",
        regex: r"\b(?P<secret>[sr]k_live_[A-Za-z0-9]{16,})",
    },
    Builtin {
        literal: b"_test_",
        regex: r"\b(?P<secret>[sr]k_test_[A-Za-z0-9]{16,})",
    },
    // JSON Web Tokens.
    Builtin {
        literal: b"eyJ",
        regex: r"\b(?P<secret>eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,})",
    },
    // Authorization: Bearer <token>
    Builtin {
        literal: b"earer",
        regex: r"(?i)\bbearer\s+(?P<secret>[A-Za-z0-9._~+/\-]{8,}=*)",
    },
    // password=..., passwd: ..., pwd=...
    Builtin {
        literal: b"ass",
        regex: r#"(?i)\b(?:password|passwd|pass)\s*[=:]\s*(?P<secret>"[^"]*"|'[^']*'|[^\s&;'"]+)"#,
    },
    Builtin {
        literal: b"pwd",
        regex: r#"(?i)\bpwd\s*[=:]\s*(?P<secret>"[^"]*"|'[^']*'|[^\s&;'"]+)"#,
    },
    // --password X, --password=X
    Builtin {
        literal: b"--pass",
        regex: r#"--pass(?:word)?(?:\s+|=)(?P<secret>"[^"]*"|'[^']*'|[^\s'"-][^\s]*)"#,
    },
    // mysql-style -pSECRET, -p'SECRET' (a bare -p asks for the password: left alone)
    Builtin {
        literal: b" -p",
        regex: r#"\s-p(?P<secret>'[^']+'|"[^"]+"|[^\s'"]+)"#,
    },
    // scheme://user:password@host
    Builtin {
        literal: b"://",
        regex: r"://[^/\s:@]+:(?P<secret>[^/\s@]+)@",
    },
    // Private key blocks.
    Builtin {
        literal: b"PRIVATE KEY",
        regex: r"(?s)(?P<secret>-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----)",
    },
];

/// Redacts `command` as `settings` say. Returns None when nothing was
/// redacted (the common case, decided without compiling a regex).
pub fn redact(command: &[u8], settings: &Redact) -> Result<Option<Vec<u8>>> {
    let mut regexes: Vec<Regex> = Vec::new();
    if settings.enabled {
        for builtin in BUILTIN {
            if contains(command, builtin.literal) {
                // ASCII classes (secrets are ASCII): compiled in a fraction
                // of the time Unicode classes take, on the prompt's clock.
                // Non-ASCII bytes still count as "not a space".
                let regex = RegexBuilder::new(builtin.regex)
                    .unicode(false)
                    .build()
                    .expect("built-in patterns compile");
                regexes.push(regex);
            }
        }
    }
    for pattern in &settings.patterns {
        regexes.push(
            Regex::new(pattern)
                .with_context(|| format!("redact pattern {pattern:?} in the config file"))?,
        );
    }
    let mut text = command.to_vec();
    let mut changed = false;
    for regex in &regexes {
        let replaced = regex.replace_all(&text, |caps: &Captures<'_>| {
            let whole = caps.get(0).expect("group 0");
            let secret = caps.name("secret").unwrap_or(whole);
            if settings
                .allow
                .iter()
                .any(|a| a.as_bytes() == secret.as_bytes())
            {
                return whole.as_bytes().to_vec();
            }
            changed = true;
            let mut out = text[whole.start()..secret.start()].to_vec();
            out.extend_from_slice(MARK);
            out.extend_from_slice(&text[secret.end()..whole.end()]);
            out
        });
        text = replaced.into_owned();
    }
    Ok(changed.then_some(text))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(command: &str) -> String {
        let settings = Redact::default();
        match redact(command.as_bytes(), &settings).unwrap() {
            Some(bytes) => String::from_utf8(bytes).unwrap(),
            None => command.to_string(),
        }
    }

    #[test]
    fn each_builtin_pattern_is_redacted() {
        let cases = [
            ("aws s3 ls --key AKIAIOSFODNN7EXAMPLE", "aws s3 ls --key [REDACTED]"),
            ("export AWS=ASIAIOSFODNN7EXAMPLE", "export AWS=[REDACTED]"),
            ("git clone https://ghp_0123456789abcdefghijABCDEFGHIJ012345@github.com/x", "git clone https://[REDACTED]@github.com/x"),
            ("gh auth login --with-token github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "gh auth login --with-token [REDACTED]"),
            ("curl -H 'PRIVATE-TOKEN: glpat-abcdefghij0123456789'", "curl -H 'PRIVATE-TOKEN: [REDACTED]'"),
            ("SLACK=xoxb-1234567890-abcdefghij", "SLACK=[REDACTED]"),
            ("stripe --api-key sk_live_0123456789abcdefABCD", "stripe --api-key [REDACTED]"),
            ("curl -d token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N", "curl -d token=[REDACTED]"),
            ("curl -H 'Authorization: Bearer abc.def-123456'", "curl -H 'Authorization: Bearer [REDACTED]'"),
            ("mysql --password=hunter22 db", "mysql --password=[REDACTED] db"),
            ("mysql --password 'hunter 22' db", "mysql --password [REDACTED] db"),
            ("mysql -uroot -phunter22 db", "mysql -uroot -p[REDACTED] db"),
            ("mysql -uroot -p'hunter 22' db", "mysql -uroot -p[REDACTED] db"),
            ("curl 'https://api/x?user=a&password=hunter22&x=1'", "curl 'https://api/x?user=a&password=[REDACTED]&x=1'"),
            ("psql postgres://admin:s3cret@db:5432/app", "psql postgres://admin:[REDACTED]@db:5432/app"),
            (
                "echo '-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----' > k",
                "echo '[REDACTED]' > k",
            ),
        ];
        for (command, expected) in cases {
            assert_eq!(on(command), expected, "{command}");
        }
    }

    #[test]
    fn near_misses_are_left_alone() {
        for command in [
            "ls -la",
            "mysql -uroot -p db", // asks for the password
            "grep -p AKIA file",  // too short to be a key
            "git log --pretty=oneline",
            "echo password",                      // the word alone
            "ssh user@host",                      // no password in it
            "curl https://example.com:8080/path", // a port, not a password
            "cat ~/.ssh/id_rsa.pub",
            "export PASS_THRESHOLD=3",
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
        let out = redact(b"use corp_abcd1234 and AKIAIOSFODNN7EXAMPLE", &settings)
            .unwrap()
            .unwrap();
        assert_eq!(out, b"use [REDACTED] and AKIAIOSFODNN7EXAMPLE");
        let off = Redact {
            enabled: false,
            ..Redact::default()
        };
        assert_eq!(redact(b"--password=x", &off).unwrap(), None);
        let bad = Redact {
            patterns: vec!["(".into()],
            ..Redact::default()
        };
        assert!(redact(b"x", &bad).is_err());
    }

    #[test]
    fn invalid_utf8_is_redacted_too() {
        let out = redact(b"\xff --password=hunter22", &Redact::default())
            .unwrap()
            .unwrap();
        assert_eq!(out, b"\xff --password=[REDACTED]");
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Any command, secret-looking or not: no panic, and a redacted one
        /// says so with the mark.
        #[test]
        fn redaction_never_panics(
            prefix in "\\PC{0,20}",
            literal in "(AKIA|--password=|-p|://a:|eyJ|Bearer |password=|PRIVATE KEY)",
            suffix in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let mut command = format!("{prefix} {literal}").into_bytes();
            command.extend(suffix);
            if let Some(out) = redact(&command, &Redact::default()).unwrap() {
                prop_assert!(out.windows(MARK.len()).any(|w| w == MARK));
            }
        }
    }
}
