//! Times and durations as people type them on a command line: RFC 3339,
//! dates, `2h`, `3 days ago`, `yesterday`, `5s`, `1h30m`.

use std::cell::RefCell;

use chrono::format::{Item, StrftimeItems};
use chrono::{
    DateTime, Datelike, Duration, Local, LocalResult, NaiveDate, NaiveDateTime, NaiveTime,
    TimeZone, Timelike, Utc,
};

/// A point in time, relative ones taken from `now`.
pub fn parse_time(input: &str, now: DateTime<Local>) -> Result<DateTime<Utc>, String> {
    let text = input.trim();
    let lower = text.to_ascii_lowercase();
    let midnight = |date: NaiveDate| local(date.and_time(NaiveTime::MIN), input);
    match lower.as_str() {
        "now" => return Ok(now.with_timezone(&Utc)),
        "today" => return midnight(now.date_naive()),
        "yesterday" => return midnight(now.date_naive() - Duration::days(1)),
        _ => {}
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return local(t, input);
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return midnight(date);
    }
    // "2h", "3 days ago", "90 minutes": that long before now. A bare number
    // is not a time (is `2026` a year?).
    let span = lower.strip_suffix("ago").unwrap_or(&lower).trim();
    let back = (!span.is_empty() && span.parse::<f64>().is_err())
        .then(|| parse_duration(span).ok())
        .flatten()
        .and_then(|d| now.with_timezone(&Utc).checked_sub_signed(d));
    match back {
        Some(t) => Ok(t),
        None => Err(format!(
            "cannot read {input:?} as a time: use RFC 3339 (2026-11-25T14:00:00Z), a date \
             (2026-11-25, 2026-11-25 14:00), `today`, `yesterday`, or a span back from now (2h, 3 days ago)"
        )),
    }
}

/// A time stored as microseconds since the epoch, in the local time zone,
/// in a chrono `format` ("?" for a time out of range). Each format is parsed
/// once per thread: a report of 141,020 groups formats half a million times.
pub fn local_format(us: i64, format: &'static str) -> String {
    thread_local! {
        static PARSED: RefCell<Vec<(&'static str, Vec<Item<'static>>)>> =
            const { RefCell::new(Vec::new()) };
    }
    let Some(t) = DateTime::<Utc>::from_timestamp_micros(us) else {
        return "?".to_string();
    };
    let t = t.with_timezone(&Local);
    PARSED.with_borrow_mut(|parsed| {
        let at = match parsed.iter().position(|(known, _)| *known == format) {
            Some(at) => at,
            None => {
                parsed.push((format, StrftimeItems::new(format).collect()));
                parsed.len() - 1
            }
        };
        t.format_with_items(parsed[at].1.iter()).to_string()
    })
}

/// A time stored as microseconds since the epoch, to the minute in the
/// local time zone: `%Y-%m-%d %H:%M`, or `%m-%d %H:%M` without the `year`.
/// The same text as [`local_format`] gives, written without chrono's
/// format machinery (a table of a report formats it for every group).
pub fn local_minute(us: i64, year: bool) -> String {
    let mut text = String::with_capacity(16);
    push_local_minute(&mut text, us, year);
    text
}

/// [`local_minute`] written at the end of `text`.
pub fn push_local_minute(text: &mut String, us: i64, year: bool) {
    let format = match year {
        true => "%Y-%m-%d %H:%M",
        false => "%m-%d %H:%M",
    };
    let Some(t) = DateTime::<Utc>::from_timestamp_micros(us) else {
        return text.push('?');
    };
    let t = t.with_timezone(&Local);
    if !(0..=9999).contains(&t.year()) {
        return text.push_str(&local_format(us, format));
    }
    let mut two = |n: u32, after: Option<char>| {
        text.push(char::from(b'0' + (n / 10 % 10) as u8));
        text.push(char::from(b'0' + (n % 10) as u8));
        if let Some(c) = after {
            text.push(c);
        }
    };
    if year {
        let y = t.year() as u32;
        two(y / 100, None);
        two(y % 100, Some('-'));
    }
    two(t.month(), Some('-'));
    two(t.day(), Some(' '));
    two(t.hour(), Some(':'));
    two(t.minute(), None);
}

/// A local wall-clock time; one that happens twice (when the clocks go
/// back) is the first of the two.
fn local(t: NaiveDateTime, input: &str) -> Result<DateTime<Utc>, String> {
    let t = match Local.from_local_datetime(&t) {
        LocalResult::Single(t) => Some(t),
        // Not `.earliest()`: for `Local`, chrono gives the two the other
        // way round (chrono issue #1625).
        LocalResult::Ambiguous(a, b) => Some(a.min(b)),
        LocalResult::None => None,
    };
    t.map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| format!("{input:?} does not exist in the local time zone"))
}

/// A duration: one or more `<number><unit>` parts (`5s`, `1h30m`, `2 days`,
/// `500ms`). A bare number is seconds.
pub fn parse_duration(input: &str) -> Result<Duration, String> {
    let err = || {
        format!("cannot read {input:?} as a duration: use forms like 500ms, 5s, 2m, 1h30m, 3 days")
    };
    let text = input.trim().to_ascii_lowercase();
    if text.is_empty() {
        return Err(err());
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return seconds_to_duration(seconds).ok_or_else(err);
    }
    let mut total = Duration::zero();
    let mut rest = text.as_str();
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().map_err(|_| err())?;
        rest = rest[number_len..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "ms" | "msec" | "millisecond" | "milliseconds" => 0.001,
            "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
            "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3600.0,
            "d" | "day" | "days" => 86_400.0,
            "w" | "week" | "weeks" => 604_800.0,
            _ => return Err(err()),
        };
        total = total
            .checked_add(&seconds_to_duration(number * seconds_per_unit).ok_or_else(err)?)
            .ok_or_else(err)?;
        rest = rest[unit_len..]
            .trim_start()
            .trim_start_matches(',')
            .trim_start();
    }
    Ok(total)
}

/// An age for deleting what is older (`prune --older-than`, `[retention]
/// older_than`): a duration with its unit (`180d`, `26 weeks`, `12h`).
/// Stricter than [`parse_duration`], because a slip here deletes history:
/// a bare number (is `180` days or seconds?) and a zero age (everything)
/// are refused, each with a one-line error saying what to write.
pub fn parse_age(input: &str) -> Result<Duration, String> {
    let text = input.trim();
    let every = || format!("{input:?} would delete every record: give an age such as 180d");
    match text.parse::<f64>() {
        Ok(0.0) => return Err(every()),
        Ok(_) => {
            return Err(format!(
            "{input:?} has no unit: write \"{text}d\" for {text} days (or a span such as 26w, 12h)"
        ))
        }
        Err(_) => {}
    }
    let unit = text
        .trim_start_matches(|c: char| c.is_ascii_digit() || c == '.' || c == ' ')
        .to_ascii_lowercase();
    if [
        "y", "yr", "yrs", "year", "years", "mo", "mon", "month", "months",
    ]
    .contains(&unit.as_str())
    {
        return Err(format!(
            "{input:?}: years and months differ in length, so they are not taken: give days or weeks (365d for a year, 30d for a month)"
        ));
    }
    let age = parse_duration(text)?;
    if age.is_zero() {
        return Err(format!(
            "{input:?} would delete every record: give an age such as 180d"
        ));
    }
    Ok(age)
}

fn seconds_to_duration(seconds: f64) -> Option<Duration> {
    (0.0..1e12)
        .contains(&seconds)
        .then(|| Duration::microseconds((seconds * 1e6) as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Local> {
        Local.with_ymd_and_hms(2026, 11, 25, 14, 30, 0).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn rfc3339_keeps_its_offset() {
        assert_eq!(
            parse_time("2026-11-25T10:00:00+02:00", now()),
            Ok(utc("2026-11-25T08:00:00Z"))
        );
        assert_eq!(
            parse_time("2026-11-25T08:00:00Z", now()),
            Ok(utc("2026-11-25T08:00:00Z"))
        );
    }

    #[test]
    fn dates_and_words_are_local_midnights() {
        let midnight = Local
            .with_ymd_and_hms(2026, 11, 25, 0, 0, 0)
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(parse_time("2026-11-25", now()), Ok(midnight));
        assert_eq!(parse_time("today", now()), Ok(midnight));
        assert_eq!(
            parse_time("Yesterday", now()),
            Ok(midnight - Duration::days(1))
        );
        let at = Local
            .with_ymd_and_hms(2026, 11, 24, 9, 15, 0)
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(parse_time("2026-11-24 09:15", now()), Ok(at));
    }

    #[test]
    fn spans_count_back_from_now() {
        let now_utc = now().with_timezone(&Utc);
        assert_eq!(parse_time(" Now ", now()), Ok(now_utc));
        assert_eq!(parse_time("2h", now()), Ok(now_utc - Duration::hours(2)));
        assert_eq!(
            parse_time("3 days ago", now()),
            Ok(now_utc - Duration::days(3))
        );
        assert_eq!(
            parse_time("1h30m", now()),
            Ok(now_utc - Duration::minutes(90))
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::seconds(5)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::milliseconds(500)));
        assert_eq!(parse_duration("1h 2m"), Ok(Duration::minutes(62)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::milliseconds(1500)));
        assert_eq!(parse_duration("2 weeks"), Ok(Duration::days(14)));
    }

    #[test]
    fn an_age_needs_its_unit_and_may_not_be_zero() {
        assert_eq!(parse_age("180d"), Ok(Duration::days(180)));
        assert_eq!(parse_age("26 weeks"), Ok(Duration::weeks(26)));
        assert_eq!(parse_age("1ms"), Ok(Duration::milliseconds(1)));
        assert_eq!(
            parse_age("180"),
            Err(
                "\"180\" has no unit: write \"180d\" for 180 days (or a span such as 26w, 12h)"
                    .into()
            )
        );
        assert!(parse_age(" 1.5 ").unwrap_err().contains("\"1.5d\""));
        for zero in ["0", "0.0", "0s", "0d", "0ms", "0h0m"] {
            let err = parse_age(zero).unwrap_err();
            assert!(err.contains("would delete every record"), "{zero}: {err}");
        }
        for calendar in ["1y", "2 years", "6mo", "1 month"] {
            let err = parse_age(calendar).unwrap_err();
            assert!(
                err.contains("365d for a year, 30d for a month"),
                "{calendar}: {err}"
            );
        }
        assert!(parse_age("6 fortnights")
            .unwrap_err()
            .starts_with("cannot read \"6 fortnights\""));
    }

    #[test]
    fn nonsense_is_an_error_naming_the_value() {
        for bad in [
            "",
            "soon",
            "3 dayz",
            "5 parsecs",
            "-2h",
            "2026-13-45",
            "1e400",
        ] {
            let err = parse_time(bad, now()).unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
        assert!(parse_duration("fast").unwrap_err().contains("\"fast\""));
    }

    #[test]
    fn a_bare_number_is_not_a_time() {
        for bare in ["2026", "5", "1.5", " 90 "] {
            let err = parse_time(bare, now()).unwrap_err();
            assert!(err.contains("cannot read"), "{bare:?}: {err}");
        }
        // As a duration it is seconds.
        assert_eq!(parse_duration("90"), Ok(Duration::seconds(90)));
    }

    /// [`local_minute`] writes what chrono's format gives, in any zone, for
    /// times either side of daylight saving changes, before 1970, around
    /// year 10,000 (chrono's own text then) and out of range.
    fn minutes_are_the_formatted_times() {
        let hour = 3_600_000_000_i64;
        let mut times = vec![0, -1, i64::MIN, i64::MAX, 1, 59_999_999, 60_000_000];
        // 2026-03-08 and 2026-11-01 around 06:00 UTC, each quarter hour.
        for day in [1_772_942_400_000_000_i64, 1_793_491_200_000_000] {
            times.extend((0..48).map(|q| day + q * hour / 4 - 1));
        }
        // Year 1 to past year 9999, and before year 0.
        times.extend([
            -62_135_596_800_000_000,
            -62_167_219_200_000_001,
            253_402_300_799_999_999,
            253_402_300_800_000_000 + 9 * hour,
            -70_000_000_000_000_000,
        ]);
        for us in times {
            for (year, format) in [(true, "%Y-%m-%d %H:%M"), (false, "%m-%d %H:%M")] {
                assert_eq!(local_minute(us, year), local_format(us, format), "{us}");
            }
        }
    }

    #[test]
    fn minutes_here_are_the_formatted_times() {
        minutes_are_the_formatted_times();
    }

    /// The variable that tells [`local_times_follow_the_time_zone`] it is
    /// the child run in a named zone.
    const CHILD_ZONE: &str = "TMUX_AUDIT_TEST_ZONE";

    /// Local times need a zone other than UTC to be told from UTC, whatever
    /// zone the host has: this test runs itself again as a child process
    /// of the test binary with `TZ` set (chrono's `Local` follows `TZ`),
    /// once per zone, and the child checks that zone's answers.
    #[test]
    fn local_times_follow_the_time_zone() {
        match std::env::var(CHILD_ZONE).as_deref() {
            Ok("Asia/Tokyo") => in_tokyo(),
            Ok("America/New_York") => in_new_york(),
            Ok(other) => panic!("no checks for {other}"),
            Err(_) => {
                for zone in ["Asia/Tokyo", "America/New_York"] {
                    let out = std::process::Command::new(std::env::current_exe().unwrap())
                        .args([
                            "--exact",
                            "timespec::tests::local_times_follow_the_time_zone",
                            "--test-threads",
                            "1",
                        ])
                        .env("TZ", zone)
                        .env(CHILD_ZONE, zone)
                        .output()
                        .unwrap();
                    let stdout = String::from_utf8_lossy(&out.stdout);
                    assert!(
                        out.status.success() && stdout.contains("1 passed"),
                        "in {zone}: {stdout}{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
        }
    }

    /// UTC+9 all year: local midnight is 15:00 UTC the day before.
    fn in_tokyo() {
        let now = Local.with_ymd_and_hms(2026, 11, 25, 14, 30, 0).unwrap();
        assert_eq!(now.with_timezone(&Utc), utc("2026-11-25T05:30:00Z"));
        let midnight = utc("2026-11-24T15:00:00Z");
        assert_eq!(parse_time("2026-11-25", now), Ok(midnight));
        assert_eq!(parse_time("today", now), Ok(midnight));
        assert_eq!(
            parse_time("yesterday", now),
            Ok(midnight - Duration::days(1))
        );
        assert_eq!(
            parse_time("2026-11-24 09:15", now),
            Ok(utc("2026-11-24T00:15:00Z"))
        );
        assert_eq!(
            parse_time("2026-11-24T09:15:30", now),
            Ok(utc("2026-11-24T00:15:30Z"))
        );
        assert_eq!(local_format(0, "%Y-%m-%d %H:%M"), "1970-01-01 09:00");
        assert_eq!(local_format(i64::MAX, "%Y"), "?", "out of range");
        assert_eq!(local_minute(0, true), "1970-01-01 09:00");
        assert_eq!(local_minute(0, false), "01-01 09:00");
        minutes_are_the_formatted_times();
        // A span back from now and RFC 3339 do not depend on the zone.
        assert_eq!(parse_time("2h", now), Ok(utc("2026-11-25T03:30:00Z")));
        assert_eq!(
            parse_time("2026-11-25T08:00:00Z", now),
            Ok(utc("2026-11-25T08:00:00Z"))
        );
    }

    /// Daylight saving time: on 2026-11-01 01:30 happens twice (EDT, then
    /// EST); the earlier one is meant. On 2026-03-08 02:30 never happens.
    fn in_new_york() {
        minutes_are_the_formatted_times();
        let now = Local.with_ymd_and_hms(2026, 11, 25, 14, 30, 0).unwrap();
        assert_eq!(
            parse_time("2026-11-01 01:30", now),
            Ok(utc("2026-11-01T05:30:00Z"))
        );
        assert_eq!(
            parse_time("2026-11-01", now),
            Ok(utc("2026-11-01T04:00:00Z"))
        );
        let err = parse_time("2026-03-08 02:30", now).unwrap_err();
        assert!(
            err.contains("does not exist in the local time zone"),
            "{err}"
        );
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Any text gives a time or an error naming it, never a panic.
        #[test]
        fn time_parsing_never_panics(input in "\\PC{0,40}") {
            let now = Local.with_ymd_and_hms(2026, 11, 25, 14, 30, 0).unwrap();
            let named = format!("{:?}", input);
            if let Err(err) = parse_time(&input, now) {
                prop_assert!(err.contains(&named) || err.contains("does not exist"), "{}", err);
            }
            match parse_duration(&input) {
                Ok(d) => prop_assert!(d >= Duration::zero(), "{input:?}: {d}"),
                Err(err) => prop_assert!(err.contains(&named), "{}", err),
            }
        }

        /// Spans of any size: the duration its number times its unit (to
        /// the float's precision), or an error naming the text when that is
        /// past the limit (10^12 s); the time that long before now, or an
        /// error naming the text.
        #[test]
        fn spans_near_the_limits_are_their_size_or_an_error_naming_them(
            // Any number, and numbers on both sides of the limit.
            n in prop_oneof![any::<u64>(), 0..2_000_000_000_000_000u64, 0..10_000_000u64],
            unit in "(ms|s|m|h|d|w|weeks|days)",
        ) {
            let now = Local.with_ymd_and_hms(2026, 11, 25, 14, 30, 0).unwrap();
            let seconds_per_unit = match unit.as_str() {
                "ms" => 0.001,
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                "d" | "days" => 86_400.0,
                _ => 604_800.0,
            };
            let seconds = n as f64 * seconds_per_unit;
            let typed = format!("{n} {unit}");
            let span = parse_duration(&typed);
            match &span {
                Ok(d) => {
                    prop_assert!(seconds < 1e12, "{typed:?}: {d}");
                    let us = d.num_microseconds().unwrap() as f64;
                    prop_assert!((us - seconds * 1e6).abs() <= 1.0 + seconds * 1e-9, "{typed:?}: {d}");
                }
                Err(err) => {
                    prop_assert!(seconds >= 1e12, "{typed:?}: {err}");
                    prop_assert!(err.contains(&format!("{typed:?}")), "{err}");
                }
            }
            let typed = format!("{n}{unit} ago");
            match parse_time(&typed, now) {
                Ok(t) => prop_assert_eq!(Ok(t), span.map(|d| now.with_timezone(&Utc) - d)),
                Err(err) => {
                    prop_assert!(span.is_err(), "{typed:?}: {err}");
                    prop_assert!(err.contains(&format!("{typed:?}")), "{err}");
                }
            }
        }
    }
}
