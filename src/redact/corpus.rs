//! The redaction corpus (`tests/data/redaction-corpus.txt`): command lines
//! with their secrets marked, and near-misses that must come out as typed.
//! Prints recall and the false-positive rate; requires 100 % and 0 %.

use super::*;

const CORPUS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/redaction-corpus.txt"
));

/// One line of the corpus: the command as typed, the secrets in it, and
/// what it must become.
struct Case {
    line: usize,
    input: Vec<u8>,
    secrets: Vec<Vec<u8>>,
    expected: Vec<u8>,
}

/// `\t`, `\n` and `\\` stand for a tab, a newline and a backslash; `«` and
/// `»` enclose a secret.
fn parse(line: usize, text: &str) -> Case {
    let mut unescaped = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            unescaped.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => unescaped.push('\t'),
            Some('n') => unescaped.push('\n'),
            Some('\\') => unescaped.push('\\'),
            other => panic!("line {line}: unknown escape \\{other:?}"),
        }
    }
    let (mut input, mut expected, mut secrets) = (Vec::new(), Vec::new(), Vec::new());
    let mut rest = unescaped.as_str();
    while let Some(open) = rest.find('«') {
        let close = rest[open..]
            .find('»')
            .unwrap_or_else(|| panic!("line {line}: « without »"))
            + open;
        let secret = &rest[open + '«'.len_utf8()..close];
        input.extend_from_slice(&rest.as_bytes()[..open]);
        expected.extend_from_slice(&rest.as_bytes()[..open]);
        input.extend_from_slice(secret.as_bytes());
        expected.extend_from_slice(MARK);
        assert!(
            secret.len() >= 6,
            "line {line}: secret {secret:?} too short to look for"
        );
        secrets.push(secret.as_bytes().to_vec());
        rest = &rest[close + '»'.len_utf8()..];
    }
    input.extend_from_slice(rest.as_bytes());
    expected.extend_from_slice(rest.as_bytes());
    Case {
        line,
        input,
        secrets,
        expected,
    }
}

fn cases() -> Vec<Case> {
    CORPUS
        .lines()
        .enumerate()
        .filter(|(_, text)| !text.is_empty() && !text.starts_with('#'))
        .map(|(i, text)| parse(i + 1, text))
        .collect()
}

fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn the_corpus_is_redacted_with_full_recall_and_no_false_positive() {
    let cases = cases();
    let (mut secrets, mut caught, mut clean, mut touched) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for case in &cases {
        let out = redact(&case.input, &Redact::default())
            .text
            .unwrap_or_else(|| case.input.clone());
        if case.secrets.is_empty() {
            clean += 1;
            touched += usize::from(out != case.input);
        }
        for secret in &case.secrets {
            secrets += 1;
            caught += usize::from(!holds(&out, secret));
        }
        if out != case.expected {
            failures.push(format!(
                "line {}: {:?}\n   got      {:?}\n   expected {:?}",
                case.line,
                String::from_utf8_lossy(&case.input),
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&case.expected)
            ));
        }
    }
    let recall = 100.0 * caught as f64 / secrets as f64;
    let false_positives = 100.0 * touched as f64 / clean as f64;
    println!(
        "redaction corpus: {} lines; {secrets} secrets, recall {recall:.1} % ({caught} caught); \
         {clean} near-misses, false positives {false_positives:.1} % ({touched} changed); \
         {} lines not exactly as expected",
        cases.len(),
        failures.len()
    );
    assert!(secrets >= 300 && clean >= 150, "the corpus is too small");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!((caught, touched), (secrets, 0));
}

/// The literals are a necessary condition: on every line of the corpus,
/// each pattern that matches when compiled as written and unconditionally
/// is among the candidates the literal check picks.
#[test]
fn the_prefilter_hides_no_match_in_the_corpus() {
    let compiled: Vec<(&Builtin, Regex)> = BUILTIN.iter().map(|b| (b, as_written(b))).collect();
    for case in cases() {
        let lower = case.input.to_ascii_lowercase();
        let picked: Vec<&str> = candidates(&lower).map(|b| b.name).collect();
        for (builtin, regex) in &compiled {
            if regex.is_match(&case.input) {
                assert!(
                    picked.contains(&builtin.name),
                    "line {}: {} matches but was not picked",
                    case.line,
                    builtin.name
                );
            }
        }
    }
}

/// A `(?i)` pattern run without the flag over the lower-cased line finds
/// what it finds as written over the line as typed: same groups, same
/// offsets.
#[test]
fn any_case_patterns_find_the_same_over_the_lower_cased_line() {
    let spans = |regex: &Regex, text: &[u8]| -> Vec<Vec<Option<(usize, usize)>>> {
        regex
            .captures_iter(text)
            .map(|caps| {
                caps.iter()
                    .map(|m| m.map(|m| (m.start(), m.end())))
                    .collect()
            })
            .collect()
    };
    let mut any_case = 0;
    for builtin in BUILTIN {
        let (fast, lowered) = compile(builtin);
        if !lowered {
            continue;
        }
        any_case += 1;
        let written = as_written(builtin);
        for case in cases() {
            let lower = case.input.to_ascii_lowercase();
            assert_eq!(
                spans(&fast, &lower),
                spans(&written, &case.input),
                "line {}: {}",
                case.line,
                builtin.name
            );
        }
    }
    assert!(any_case >= 6);
}
