//! Docker's human-readable times: `HumanDuration` ("2 hours",
//! "About a minute"), "... ago" columns, Go durations (`10s`, `1m30s`,
//! `1h`) for flags, and RFC 3339 timestamps to Unix seconds.

// Go's int() conversions truncate toward zero; docker's output depends on it.
#![allow(clippy::cast_possible_truncation)]

/// A duration or timestamp that cannot be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HumanError {
    #[error("time: invalid duration \"{0}\"")]
    Duration(String),
    #[error("invalid timestamp {0:?}")]
    Timestamp(String),
    #[error("invalid value for {flag:?}: failed to parse value as time or duration: {value:?}")]
    TimeArg { flag: &'static str, value: String },
}

/// go-units `HumanDuration` of `secs` seconds (fractional allowed).
pub fn human_duration(secs: f64) -> String {
    let seconds = secs as i64;
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = (secs / 60.0) as i64;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (secs / 3600.0 + 0.5) as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", (secs / 3600.0) as i64 / 24 / 365)
}

/// Seconds since the epoch, now.
pub fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// "2 hours ago" for a Unix time.
pub fn ago(unix: i64, now: f64) -> String {
    format!("{} ago", human_duration(now - unix as f64))
}

/// Parses a Go duration (`300ms`, `1.5h`, `1m30s`, `0`); nanoseconds.
pub fn parse_go_duration(s: &str) -> Result<i64, HumanError> {
    let bad = || HumanError::Duration(s.to_owned());
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if n == 0 {
            return Err(bad());
        }
        let v: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mul = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += v * mul;
        rest = &rest[u..];
    }
    if total > i64::MAX as f64 {
        return Err(bad());
    }
    #[allow(clippy::cast_possible_truncation)]
    let ns = total as i64;
    Ok(if neg { -ns } else { ns })
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Civil date of a day count since the epoch.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses RFC 3339 (`2024-01-02T03:04:05.123456789Z`, offsets allowed)
/// into Unix seconds with a fraction.
pub fn parse_rfc3339(s: &str) -> Result<f64, HumanError> {
    let bad = || HumanError::Timestamp(s.to_owned());
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b't' || b[10] == b' ')
    {
        return Err(bad());
    }
    let num = |a: usize, z: usize| -> Result<i64, HumanError> {
        s.get(a..z).and_then(|x| x.parse().ok()).ok_or_else(bad)
    };
    let (y, mo, d, h, mi, se) = (
        num(0, 4)?,
        num(5, 7)?,
        num(8, 10)?,
        num(11, 13)?,
        num(14, 16)?,
        num(17, 19)?,
    );
    let mut i = 19;
    let mut frac = 0f64;
    if b.get(i) == Some(&b'.') {
        let start = i;
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        frac = s[start..i].parse().map_err(|_| bad())?;
    }
    let offset = match s.get(i..) {
        Some("Z") | Some("z") => 0,
        Some(tz) if tz.len() == 6 && (tz.starts_with('+') || tz.starts_with('-')) => {
            let oh: i64 = tz[1..3].parse().map_err(|_| bad())?;
            let om: i64 = tz[4..6].parse().map_err(|_| bad())?;
            let o = oh * 3600 + om * 60;
            if tz.starts_with('-') { -o } else { o }
        }
        _ => return Err(bad()),
    };
    let days = days_from_civil(y, mo, d);
    Ok((days * 86_400 + h * 3600 + mi * 60 + se - offset) as f64 + frac)
}

/// Formats Unix seconds (and nanoseconds) as RFC 3339 in UTC with
/// nanoseconds trimmed as Go's `RFC3339Nano` does.
pub fn format_rfc3339_nano(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut out = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    if nanos > 0 {
        let f = format!("{nanos:09}");
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Go's `time.Time.String()` in UTC for Unix seconds: `2006-01-02 15:04:05 +0000 UTC`.
pub fn go_time_string(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} +0000 UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A `--since`/`--until` value for the API: a Unix timestamp (kept), an
/// RFC 3339 time, or a Go duration meaning "that long before now".
pub fn timestamp_arg(flag: &'static str, value: &str, now: f64) -> Result<String, HumanError> {
    if value.parse::<f64>().is_ok() {
        return Ok(value.to_owned());
    }
    // Go's GetTimestamp layouts: RFC 3339 (with or without fraction and
    // zone), a date with or without a zone; no zone means local time,
    // taken as UTC here.
    let b = value.as_bytes();
    let is_date = b.len() >= 10
        && b[..10].iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    let candidates: Vec<String> = if is_date && b.len() == 10 {
        vec![format!("{value}T00:00:00Z")]
    } else if is_date
        && b.get(10)
            .is_some_and(|c| matches!(c, b'Z' | b'z' | b'+' | b'-'))
    {
        vec![format!("{}T00:00:00{}", &value[..10], &value[10..])]
    } else {
        vec![value.to_owned(), format!("{value}Z")]
    };
    for c in &candidates {
        if let Ok(t) = parse_rfc3339(c) {
            return Ok(format!("{t:.9}"));
        }
    }
    if let Ok(d) = parse_go_duration(value) {
        return Ok(format!("{:.9}", now - d as f64 / 1e9));
    }
    Err(HumanError::TimeArg {
        flag,
        value: value.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_as_docker() {
        assert_eq!(human_duration(0.3), "Less than a second");
        assert_eq!(human_duration(1.0), "1 second");
        assert_eq!(human_duration(5.0), "5 seconds");
        assert_eq!(human_duration(59.9), "59 seconds");
        assert_eq!(human_duration(60.0), "About a minute");
        assert_eq!(human_duration(119.0), "About a minute");
        assert_eq!(human_duration(120.0), "2 minutes");
        assert_eq!(human_duration(3599.0), "59 minutes");
        assert_eq!(human_duration(3600.0), "About an hour");
        assert_eq!(human_duration(2.0 * 3600.0), "2 hours");
        assert_eq!(human_duration(47.0 * 3600.0), "47 hours");
        assert_eq!(human_duration(48.0 * 3600.0), "2 days");
        assert_eq!(human_duration(20.0 * 86400.0), "2 weeks");
        assert_eq!(human_duration(90.0 * 86400.0), "3 months");
        assert_eq!(human_duration(800.0 * 86400.0), "2 years");
        assert_eq!(ago(100, 220.0), "2 minutes ago");
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("10s"), Ok(10_000_000_000));
        assert_eq!(parse_go_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_go_duration("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(parse_go_duration("300ms"), Ok(300_000_000));
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert_eq!(parse_go_duration("-2s"), Ok(-2_000_000_000));
        for bad in ["", "10", "s", "1x", "1.s5"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rfc3339_round_trip() {
        let t = parse_rfc3339("2024-01-02T03:04:05.5Z").unwrap();
        assert_eq!(t, 1_704_164_645.5);
        assert_eq!(
            parse_rfc3339("2024-01-02T05:04:05+02:00").unwrap(),
            1_704_164_645.0
        );
        assert_eq!(
            format_rfc3339_nano(1_704_164_645, 500_000_000),
            "2024-01-02T03:04:05.5Z"
        );
        assert_eq!(format_rfc3339_nano(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(
            go_time_string(1_704_164_645),
            "2024-01-02 03:04:05 +0000 UTC"
        );
        assert!(parse_rfc3339("yesterday").is_err());
        assert_eq!(
            timestamp_arg("since", "1700000000", 0.0).unwrap(),
            "1700000000"
        );
        assert_eq!(
            timestamp_arg("since", "10s", 100.0).unwrap(),
            "90.000000000"
        );
        assert_eq!(
            timestamp_arg("until", "2024-01-02", 0.0).unwrap(),
            "1704153600.000000000"
        );
        assert_eq!(
            timestamp_arg("until", "2024-01-02+01:00", 0.0).unwrap(),
            "1704150000.000000000"
        );
        assert_eq!(
            timestamp_arg("since", "2024-01-02T03:04:05", 0.0).unwrap(),
            "1704164645.000000000"
        );
        assert_eq!(
            timestamp_arg("since", "bogus", 0.0)
                .unwrap_err()
                .to_string(),
            "invalid value for \"since\": failed to parse value as time or duration: \"bogus\""
        );
    }
}
