//! RFC 3339 timestamps in UTC with nine fractional digits
//! (`2026-11-22T08:00:00.123456789Z`), the form Docker writes in json-file
//! logs and in `State.StartedAt`/`FinishedAt`; and a parser accepting any
//! RFC 3339 timestamp (fraction optional, `Z` or a numeric offset).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Formats `t` (UTC, nanoseconds). Times before 1970 are clamped to the epoch.
pub fn format_rfc3339_nano(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (y, m, day) = civil_from_days(secs / 86_400);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// The current time, formatted.
pub fn now_rfc3339_nano() -> String {
    format_rfc3339_nano(SystemTime::now())
}

/// Parses an RFC 3339 timestamp (`T` or space separator; fraction of up to
/// nine digits; `Z` or `±hh:mm`). Returns `None` for anything else or for
/// times before 1970.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 {
        return None;
    }
    if sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &s[start..i];
        if digits.is_empty() || digits.len() > 9 {
            return None;
        }
        let padded = format!("{digits:0<9}");
        nanos = padded.parse().ok()?;
    }
    let offset: i64 = match &s[i..] {
        "Z" | "z" => 0,
        tz if tz.len() == 6
            && matches!(tz.as_bytes()[0], b'+' | b'-')
            && tz.as_bytes()[3] == b':' =>
        {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let v = i64::try_from(oh * 3600 + om * 60).ok()?;
            if tz.starts_with('-') { -v } else { v }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d)?;
    let local = i64::try_from(days * 86_400 + h * 3600 + mi * 60 + sec).ok()?;
    let utc = u64::try_from(local - offset).ok()?;
    Some(UNIX_EPOCH + Duration::new(utc, nanos))
}

fn is_leap(y: u64) -> bool {
    (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
}

fn days_in_month(y: u64, m: u64) -> u64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 to (year, month, day), for non-negative days
/// (the proleptic Gregorian calendar, in 400-year eras).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// Inverse of [`civil_from_days`]; `None` before 1970.
fn days_from_civil(y: u64, m: u64, d: u64) -> Option<u64> {
    let y = if m <= 2 { y.checked_sub(1)? } else { y };
    let era = y / 400;
    let yoe = y % 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).checked_sub(719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(
            format_rfc3339_nano(UNIX_EPOCH),
            "1970-01-01T00:00:00.000000000Z"
        );
        let t = UNIX_EPOCH + Duration::new(1_795_852_800, 123_456_789);
        assert_eq!(format_rfc3339_nano(t), "2026-11-28T08:00:00.123456789Z");
        // A leap day.
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(format_rfc3339_nano(t), "2000-02-29T00:00:00.000000000Z");
    }

    #[test]
    fn parses_what_it_formats_and_offsets() {
        for secs in [0u64, 59, 86_399, 951_782_400, 1_795_852_800, 4_102_444_800] {
            let t = UNIX_EPOCH + Duration::new(secs, 987_654_321);
            assert_eq!(parse_rfc3339(&format_rfc3339_nano(t)), Some(t));
        }
        let a = parse_rfc3339("2026-11-22T10:00:00+02:00").unwrap();
        let b = parse_rfc3339("2026-11-22T08:00:00Z").unwrap();
        assert_eq!(a, b);
        let c = parse_rfc3339("2026-11-22T08:00:00.5Z").unwrap();
        assert_eq!(c.duration_since(b).unwrap(), Duration::from_millis(500));
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "2026-11-22",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-22T08:00:00",
            "2026-11-22T08:00:00.Z",
            "2026-11-22T08:00:00.1234567890Z",
            "1969-12-31T23:59:59Z",
            "2026-11-22T08:00:00+0200",
        ] {
            assert_eq!(parse_rfc3339(s), None, "{s}");
        }
    }
}
