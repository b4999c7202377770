//! `tmux-audit export`: every record, streamed, in the fields of
//! `search --format jsonl` and of `docs/schema.json`, or as Elastic Common
//! Schema documents; and `search --all`, which streams the same way.

use std::collections::BTreeSet;
use std::process::Output;

use serde_json::Value;

use crate::search::history;
use crate::support::Sandbox;

fn run(sb: &Sandbox, args: &[&str]) -> Output {
    sb.cmd().env("TZ", "UTC").args(args).output().unwrap()
}

fn lines(out: &Output) -> Vec<Value> {
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn export_writes_every_record_oldest_first_in_search_s_fields() {
    let sb = history();
    let export = run(&sb, &["export"]);
    let records = lines(&export);
    assert_eq!(records.len(), 9);
    let ids: Vec<i64> = records.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, (1..=9).collect::<Vec<_>>(), "oldest first");
    // The same bytes as a search of everything, in every format both have.
    for format in ["jsonl", "json", "csv", "tsv"] {
        let export = run(&sb, &["export", "--format", format]);
        let search = run(&sb, &["search", "--all", "--format", format]);
        assert_eq!(export.status.code(), Some(0), "{export:?}");
        assert_eq!(export.stdout, search.stdout, "{format}");
    }
    // Filters and newest first, as search has them.
    let failed = lines(&run(&sb, &["export", "--failed", "--reverse"]));
    let exits: Vec<i64> = failed
        .iter()
        .map(|r| r["exit_status"].as_i64().unwrap())
        .collect();
    assert_eq!(exits, [127, 7, 2]);
    let pattern = lines(&run(&sb, &["export", "git", "--pane", "%1"]));
    assert_eq!(pattern.len(), 2, "{pattern:?}");
    // Nothing kept: nothing written, exit 1.
    let none = run(&sb, &["export", "--user", "nobody-at-all"]);
    assert_eq!(none.status.code(), Some(1));
    assert!(none.stdout.is_empty());
}

/// The streamed `search --all` (one row at a time from the database) and
/// the collected `search -n` (every row held, then written) print the same
/// bytes for the same rows, in every format.
#[test]
fn streamed_search_prints_what_the_collected_search_prints() {
    let sb = history();
    for format in [
        &["--format", "jsonl"][..],
        &["--format", "json"],
        &["--format", "csv"],
        &["--format", "tsv"],
        &["--format", "cmd"],
        &["--format", "cmd", "-0"],
    ] {
        for extra in [
            &[][..],
            &["--reverse"],
            &["--unique"],
            &["--unique", "--reverse"],
        ] {
            let all = run(&sb, &[&["search", "--all"][..], format, extra].concat());
            let limited = run(&sb, &[&["search", "-n", "100"][..], format, extra].concat());
            assert_eq!(all.status.code(), Some(0), "{all:?}");
            assert_eq!(all.stdout, limited.stdout, "{format:?} {extra:?}");
        }
    }
}

/// The subset of JSON Schema that docs/schema.json uses, checked by hand:
/// the type of each field, required fields, no field the schema does not
/// name, `const`, array items.
fn check(value: &Value, schema: &Value, path: &str) {
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().map(|t| t.as_str().unwrap()).collect(),
            other => panic!("type {other}"),
        };
        let ok = types.iter().any(|t| match *t {
            "null" => value.is_null(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            other => panic!("unknown type {other}"),
        });
        assert!(ok, "{path}: {value} is not {types:?}");
    }
    if let (Some("date-time"), Some(text)) =
        (schema.get("format").and_then(Value::as_str), value.as_str())
    {
        assert!(
            chrono::DateTime::parse_from_rfc3339(text).is_ok(),
            "{path}: {text:?} is not an RFC 3339 date-time"
        );
    }
    if let Some(expected) = schema.get("const") {
        assert_eq!(value, expected, "{path}");
    }
    if let (Some(min), Some(n)) = (schema.get("minimum"), value.as_f64()) {
        assert!(n >= min.as_f64().unwrap(), "{path}: {n} < {min}");
    }
    if let Some(Value::Object(properties)) = schema.get("properties") {
        let object = value.as_object().unwrap();
        for key in schema["required"].as_array().unwrap() {
            let key = key.as_str().unwrap();
            assert!(object.contains_key(key), "{path}: no {key}");
        }
        for (key, field) in object {
            let Some(field_schema) = properties.get(key) else {
                panic!("{path}: {key} is not in the schema");
            };
            check(field, field_schema, &format!("{path}.{key}"));
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            check(item, items, &format!("{path}[{i}]"));
        }
    }
}

fn schema() -> Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/schema.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn every_exported_record_follows_docs_schema_json() {
    let schema = schema();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    // Every field described, and every described field required.
    let properties: BTreeSet<&String> = schema["properties"].as_object().unwrap().keys().collect();
    let required: BTreeSet<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(
        properties
            .iter()
            .map(|p| p.as_str())
            .collect::<BTreeSet<_>>(),
        required
    );
    for (name, field) in schema["properties"].as_object().unwrap() {
        assert!(
            field["description"].as_str().is_some_and(|d| d.len() > 10),
            "{name} has no description"
        );
    }
    assert_eq!(
        schema["x-schema-version"],
        schema["properties"]["schema_version"]["const"]
    );
    let sb = history();
    let records = lines(&run(&sb, &["export"]));
    for (i, record) in records.iter().enumerate() {
        check(record, &schema, &format!("record {i}"));
    }
    // The CSV header names the same fields in the same order.
    let csv = run(&sb, &["export", "--format", "csv"]);
    let header = String::from_utf8(csv.stdout).unwrap();
    let header: Vec<&str> = header.lines().next().unwrap().split(',').collect();
    let keys: Vec<&String> = records[0].as_object().unwrap().keys().collect();
    assert_eq!(header, keys);
}

/// Imported times no clock gives (fish `when: 99999999999999999`, bash
/// `#300000000000`, year 11476) are stored as unknown and said so: the
/// export still follows docs/schema.json (date-times RFC 3339), ECS has
/// no empty time, and the export imports back whole.
#[test]
fn impossible_imported_times_are_unknown_and_the_export_stays_valid() {
    let sb = Sandbox::new();
    let fish = sb.path().join("fish_history");
    std::fs::write(
        &fish,
        "- cmd: far\n  when: 99999999999999999\n- cmd: fine\n  when: 1700000000\n",
    )
    .unwrap();
    let bash = sb.path().join("bash_history");
    std::fs::write(&bash, "#300000000000\nyear-11476\n#1700000001\nok\n").unwrap();
    for (tool, file) in [("fish", &fish), ("bash", &bash)] {
        let out = run(&sb, &["import", tool, file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("1 entry had a time or duration no clock gives")
                && stderr.contains("stored as unknown"),
            "{tool}: {stderr}"
        );
    }
    let out = run(&sb, &["export"]);
    let records = lines(&out);
    assert_eq!(records.len(), 4);
    let schema = schema();
    for (i, record) in records.iter().enumerate() {
        check(record, &schema, &format!("record {i}"));
    }
    let ecs = lines(&run(&sb, &["export", "--ecs"]));
    for document in &ecs {
        let at = document["@timestamp"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(at).is_ok(),
            "{document}"
        );
    }
    let exported = sb.path().join("all.jsonl");
    std::fs::write(&exported, &out.stdout).unwrap();
    let other = sb.path().join("other.db");
    let out = run(
        &sb,
        &[
            "import",
            "--db",
            other.to_str().unwrap(),
            "tmux-audit",
            exported.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("added 4, already there 0"),
        "{out:?}"
    );
}

/// A full disk under the output is said as such, not blamed on the
/// database.
#[test]
fn a_full_disk_under_the_export_is_named_not_the_database() {
    let sb = history();
    for format in ["jsonl", "csv"] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = sb
            .cmd()
            .args(["export", "--format", format])
            .stdout(full)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "tmux-audit: error: cannot write to standard output: No space left on device (os error 28)\n"
        );
    }
}

#[test]
fn ecs_documents_carry_the_fields_a_siem_reads() {
    let sb = history();
    let docs = lines(&run(&sb, &["export", "--ecs", "--failed"]));
    assert_eq!(docs.len(), 3);
    let make = &docs[0];
    assert_eq!(make["process"]["command_line"], "make test");
    assert_eq!(make["process"]["exit_code"], 2);
    assert_eq!(make["process"]["working_directory"], "/srv/api");
    assert_eq!(make["@timestamp"], "2026-11-25T10:01:00.000000Z");
    assert_eq!(make["event"]["start"], make["@timestamp"]);
    assert_eq!(make["event"]["end"], "2026-11-25T10:02:05.000000Z");
    assert_eq!(make["event"]["duration"], 65_000_000_000_i64);
    assert_eq!(make["event"]["outcome"], "failure");
    assert!(make["user"]["name"].is_string() && make["host"]["name"].is_string());
    assert_eq!(make["tmux"]["pane"], "%1");
    assert_eq!(make["tmux"]["session"]["id"], 3);
    assert_eq!(make["tmux_audit"]["seq"], 2);
    // A JSON array of the same documents.
    let array = run(&sb, &["export", "--ecs", "--failed", "--format", "json"]);
    let array: Value = serde_json::from_slice(&array.stdout).unwrap();
    assert_eq!(array.as_array().unwrap(), &docs);
}

#[test]
fn bad_export_flags_are_one_line_naming_the_fix_with_exit_2() {
    let sb = history();
    for (args, says) in [
        (
            &["export", "--ecs", "--format", "csv"][..],
            "--format jsonl",
        ),
        (&["export", "--since", "the day after never"], "since"),
        (&["export", "--format", "xml"], "xml"),
        (
            &["export", "--format", "asciicast"],
            "give --pane %N, --here or --session NAME",
        ),
        (
            &[
                "export",
                "--format",
                "asciicast",
                "--pane",
                "%1",
                "--session",
                "w",
            ],
            "(one of them)",
        ),
        (
            &[
                "export",
                "--format",
                "asciicast",
                "--pane",
                "%1",
                "--failed",
            ],
            "not --exit/--failed/--succeeded",
        ),
        (
            &["export", "--format", "asciicast", "--pane", "%99"],
            "no captured output of pane %99",
        ),
    ] {
        let out = run(&sb, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

/// A session tmux-audit knows but whose panes were never captured: the
/// asciicast export and `replay` say so in one line, exit 1, write nothing.
#[test]
fn a_session_with_nothing_captured_is_said_in_one_line() {
    let sb = history();
    let out = sb
        .cmd()
        .args([
            "tmux-event",
            "session-created",
            "socket_path=/tmp/s",
            "pid=42",
            "hook_session=$1",
            "session_id=$1",
            "session_name=quiet",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", sb.log());
    sb.record_in_pane("9", "echo in-quiet", "/tmp/s,42,1", "%3");
    for args in [
        &["export", "--format", "asciicast", "--session", "quiet"][..],
        &["replay", "--session", "quiet"],
    ] {
        let out = run(&sb, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.contains("no captured output of session quiet"),
            "{args:?}: {stderr}"
        );
    }
}
