//! clap value parsers for the flags docker checks while it parses the
//! command line (pflag `Value.Set`), with docker's reasons: Go's
//! `strconv` wording for numbers and booleans, `time.ParseDuration`'s for
//! durations, and the docker option validators' for sizes, filters,
//! environment, labels, hosts, mounts and the rest.
//!
//! A failing parser makes clap stop with a value error; `main` prints it as
//! docker does (`invalid argument "V" for "-s, --long" flag: REASON`, the
//! usage line, exit 125). Parsers that only validate return the text as
//! written; the command converts it later with the same `opts` function.

use super::OptsError;

/// The reason alone: clap adds the value and the flag.
fn reason(e: OptsError) -> String {
    match e {
        OptsError::Invalid { reason, .. } => reason,
        OptsError::Message(m) => m,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`: sign, `0x`/`0o`/`0b`/leading-`0`
/// prefixes, underscores between digits when a prefix is given.
pub fn int(s: &str) -> Result<i64, String> {
    let syntax = || format!("strconv.ParseInt: parsing {s:?}: invalid syntax");
    let range = || format!("strconv.ParseInt: parsing {s:?}: value out of range");
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.to_owned(), true)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_owned(), true)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_owned(), true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_owned(), true)
    } else {
        (10, lower.clone(), false)
    };
    if digits.is_empty() {
        return Err(syntax());
    }
    if digits.contains('_') {
        // Go allows `_` only with a base prefix, only between digits.
        let b = digits.as_bytes();
        let ok = prefixed
            && (b[0] != b'_' || radix != 8)
            && b.last() != Some(&b'_')
            && !digits.contains("__");
        if !ok {
            return Err(syntax());
        }
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    if clean.is_empty() || !clean.chars().all(|c| c.is_digit(radix)) {
        return Err(syntax());
    }
    let magnitude = u128::from_str_radix(&clean, radix).map_err(|_| range())?;
    let value = if neg {
        i128::try_from(magnitude).map(|m| -m).map_err(|_| range())?
    } else {
        i128::try_from(magnitude).map_err(|_| range())?
    };
    i64::try_from(value).map_err(|_| range())
}

/// Go's `strconv.ParseBool`.
pub fn boolean(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("strconv.ParseBool: parsing {s:?}: invalid syntax")),
    }
}

/// `-f/--filter name=value`.
pub fn filter(s: &str) -> Result<String, String> {
    if s.contains('=') {
        Ok(s.to_owned())
    } else {
        Err("bad format of filter (expected name=value)".into())
    }
}

/// A size in docker's binary units (`--memory 512m`).
pub fn bytes(s: &str) -> Result<String, String> {
    crate::format::units::ram_in_bytes(s)
        .map(|_| s.to_owned())
        .map_err(|e| e.to_string())
}

/// `--memory-swap`: a size or `-1`.
pub fn swap_bytes(s: &str) -> Result<String, String> {
    super::memory_swap(s).map(|_| s.to_owned()).map_err(reason)
}

/// `--cpus 1.5`.
pub fn cpus(s: &str) -> Result<String, String> {
    super::nano_cpus(s).map(|_| s.to_owned()).map_err(reason)
}

/// A Go duration (`--health-interval 30s`).
pub fn duration(s: &str) -> Result<String, String> {
    crate::format::human::parse_go_duration(s)
        .map(|_| s.to_owned())
        .map_err(|e| e.to_string())
}

/// `--ulimit name=soft[:hard]`.
pub fn ulimit(s: &str) -> Result<String, String> {
    super::ulimit(s).map(|_| s.to_owned()).map_err(reason)
}

/// `-e KEY[=VALUE]`: a name is required.
pub fn env(s: &str) -> Result<String, String> {
    if s.split('=').next().unwrap_or("").is_empty() {
        return Err(format!("invalid environment variable: {s}"));
    }
    Ok(s.to_owned())
}

/// `-l/--label KEY[=VALUE]`: a name is required.
pub fn label(s: &str) -> Result<String, String> {
    if s.split('=').next().unwrap_or("").is_empty() {
        return Err(format!("invalid label '{s}': empty name"));
    }
    Ok(s.to_owned())
}

/// `--add-host name:ip`.
pub fn add_host(s: &str) -> Result<String, String> {
    super::extra_host(s).map(|_| s.to_owned()).map_err(reason)
}

/// `--mount type=...,source=...,target=...`.
pub fn mount(s: &str) -> Result<String, String> {
    super::mounts::mount(s)
        .map(|_| s.to_owned())
        .map_err(reason)
}

/// `--sysctl name=value`: a name and a value are required.
pub fn sysctl(s: &str) -> Result<String, String> {
    match s.split_once('=') {
        Some((k, _)) if !k.is_empty() => Ok(s.to_owned()),
        _ => Err(format!("sysctl '{s}' is not allowed")),
    }
}

/// `-a/--attach stdin|stdout|stderr`.
pub fn attach(s: &str) -> Result<String, String> {
    match s.to_lowercase().as_str() {
        "stdin" | "stdout" | "stderr" => Ok(s.to_owned()),
        _ => Err("valid streams are STDIN, STDOUT and STDERR".into()),
    }
}

/// `--dns 1.1.1.1`: an IP address.
pub fn ip(s: &str) -> Result<String, String> {
    s.trim()
        .parse::<std::net::IpAddr>()
        .map(|_| s.trim().to_owned())
        .map_err(|_| format!("IP address is not correctly formatted: {s}"))
}

/// `--link name[:alias]`.
pub fn link(s: &str) -> Result<String, String> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() > 2 || parts.iter().any(|p| p.is_empty()) {
        return Err(format!("bad format for links: {s}"));
    }
    Ok(s.to_owned())
}

/// `--device-read-bps /dev/sda:1mb` (a size per second).
pub fn throttle_bps(s: &str) -> Result<String, String> {
    let rate = device_path(s)?;
    match crate::format::units::ram_in_bytes(rate) {
        Ok(r) if r >= 0 => Ok(s.to_owned()),
        _ => Err(format!(
            "invalid rate for device: {s}. The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb"
        )),
    }
}

/// `--device-read-iops /dev/sda:1000`.
pub fn throttle_iops(s: &str) -> Result<String, String> {
    let rate = device_path(s)?;
    rate.parse::<u64>().map(|_| s.to_owned()).map_err(|_| {
        format!(
            "invalid rate for device: {s}. The correct format is <device-path>:<number>. Number must be a positive integer"
        )
    })
}

/// `/dev/x:rest` as docker's device validators check it; returns `rest`.
fn device_path(s: &str) -> Result<&str, String> {
    match s.split_once(':') {
        Some((p, rest)) if !p.is_empty() => {
            if p.starts_with("/dev/") {
                Ok(rest)
            } else {
                Err(format!("bad format for device path: {s}"))
            }
        }
        _ => Err(format!("bad format: {s}")),
    }
}

/// `--blkio-weight-device /dev/sda:300`.
pub fn weight_device(s: &str) -> Result<String, String> {
    let w = device_path(s)?;
    match w.parse::<u16>() {
        Ok(n) if n == 0 || (10..=1000).contains(&n) => Ok(s.to_owned()),
        _ => Err(format!("invalid weight for device: {s}")),
    }
}

/// Go's `strconv.ParseUint(s, 0, 16)` for `uint16` flags.
pub fn uint16(s: &str) -> Result<u16, String> {
    let syntax = || format!("strconv.ParseUint: parsing {s:?}: invalid syntax");
    if s.starts_with(['-', '+']) {
        return Err(syntax());
    }
    let v = int(s).map_err(|e| e.replace("ParseInt", "ParseUint"))?;
    u16::try_from(v).map_err(|_| format!("strconv.ParseUint: parsing {s:?}: value out of range"))
}

/// Go's `strconv.ParseUint(s, 0, 64)` for `uint` flags.
pub fn uint(s: &str) -> Result<u64, String> {
    if s.starts_with(['-', '+']) {
        return Err(format!("strconv.ParseUint: parsing {s:?}: invalid syntax"));
    }
    let v = int(s).map_err(|e| e.replace("ParseInt", "ParseUint"))?;
    u64::try_from(v).map_err(|_| format!("strconv.ParseUint: parsing {s:?}: value out of range"))
}

/// `--device-cgroup-rule 'c 1:3 mr'`.
pub fn cgroup_rule(s: &str) -> Result<String, String> {
    let bad = || format!("invalid device cgroup format '{s}'");
    let parts: Vec<&str> = s.split(' ').collect();
    let [kind, nums, perms] = parts.as_slice() else {
        return Err(bad());
    };
    let num_ok = |n: &str| n == "*" || (!n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
    let nums_ok = nums
        .split_once(':')
        .is_some_and(|(a, b)| num_ok(a) && num_ok(b));
    let perms_ok = (1..=3).contains(&perms.len()) && perms.chars().all(|c| "rwm".contains(c));
    if !matches!(*kind, "a" | "b" | "c") || !nums_ok || !perms_ok {
        return Err(bad());
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_as_go_parse_them() {
        assert_eq!(int("42"), Ok(42));
        assert_eq!(int("-1"), Ok(-1));
        assert_eq!(int("+7"), Ok(7));
        assert_eq!(int("0x1f"), Ok(31));
        assert_eq!(int("017"), Ok(15));
        assert_eq!(int("0b101"), Ok(5));
        assert_eq!(
            int("1_000"),
            Err(r#"strconv.ParseInt: parsing "1_000": invalid syntax"#.into())
        );
        assert_eq!(int("0x1_0"), Ok(16));
        assert_eq!(int("0"), Ok(0));
        assert_eq!(
            int("abc"),
            Err(r#"strconv.ParseInt: parsing "abc": invalid syntax"#.into())
        );
        assert_eq!(
            int(""),
            Err(r#"strconv.ParseInt: parsing "": invalid syntax"#.into())
        );
        assert_eq!(
            int("99999999999999999999"),
            Err(r#"strconv.ParseInt: parsing "99999999999999999999": value out of range"#.into())
        );
        assert_eq!(int("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(
            uint16("70000"),
            Err(r#"strconv.ParseUint: parsing "70000": value out of range"#.into())
        );
        assert_eq!(
            uint16("-1"),
            Err(r#"strconv.ParseUint: parsing "-1": invalid syntax"#.into())
        );
    }

    #[test]
    fn bools_and_validators() {
        assert_eq!(boolean("T"), Ok(true));
        assert_eq!(boolean("0"), Ok(false));
        assert_eq!(
            boolean("maybe"),
            Err(r#"strconv.ParseBool: parsing "maybe": invalid syntax"#.into())
        );
        assert!(filter("status=exited").is_ok());
        assert_eq!(
            filter("foo"),
            Err("bad format of filter (expected name=value)".into())
        );
        assert_eq!(bytes("abc"), Err("invalid size: 'abc'".into()));
        assert_eq!(bytes("512m"), Ok("512m".into()));
        assert_eq!(ulimit("bad"), Err("invalid ulimit argument: bad".into()));
        assert_eq!(env(""), Err("invalid environment variable: ".into()));
        assert_eq!(env("=x"), Err("invalid environment variable: =x".into()));
        assert_eq!(label(""), Err("invalid label '': empty name".into()));
        assert_eq!(sysctl("x"), Err("sysctl 'x' is not allowed".into()));
        assert_eq!(duration("x"), Err("time: invalid duration \"x\"".into()));
    }
}
