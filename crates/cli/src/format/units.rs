//! Docker's sizes (`github.com/docker/go-units` semantics): parsing
//! `--memory 512m` as binary units ([`ram_in_bytes`]), and printing sizes
//! as docker does
//! (`77.8MB` with three significant digits, [`human_size_precision`];
//! `1.5GiB` for stats, [`bytes_size`]), formatting numbers as Go's `%.Ng`.

/// A size that cannot be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UnitsError {
    #[error("invalid size: '{0}'")]
    InvalidSize(String),
    #[error("invalid suffix: '{0}'")]
    Suffix(String),
    #[error("strconv.ParseFloat: parsing {0:?}: invalid syntax")]
    Float(String),
}

const DECIMAL: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
const BINARY: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

/// go-units' `parseSize`: a number (an optional space), then `b` or a
/// `k m g t p` multiple with an optional `b`/`ib`, in any case.
fn parse_size(s: &str, base: f64) -> Result<i64, UnitsError> {
    let bad = || UnitsError::InvalidSize(s.to_owned());
    let sep = s
        .rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ')
        .ok_or_else(bad)?;
    let (num, sfx) = if s.as_bytes()[sep] == b' ' {
        (&s[..sep], &s[sep + 1..])
    } else {
        (&s[..=sep], &s[sep + 1..])
    };
    let size: f64 = go_float(num).ok_or_else(|| UnitsError::Float(num.to_owned()))?;
    if size < 0.0 {
        return Err(bad());
    }
    let bad_suffix = |sfx: &str| UnitsError::Suffix(sfx.to_owned());
    let mul = if sfx.is_empty() {
        1.0
    } else if sfx.len() > 3 {
        return Err(bad_suffix(sfx));
    } else {
        let sfx = sfx.to_ascii_lowercase();
        let b = sfx.as_bytes();
        if b[0] == b'b' {
            if b.len() > 1 {
                return Err(bad_suffix(&sfx));
            }
            1.0
        } else {
            let exp = match b[0] {
                b'k' => 1,
                b'm' => 2,
                b'g' => 3,
                b't' => 4,
                b'p' => 5,
                _ => return Err(bad_suffix(&sfx)),
            };
            if (b.len() == 2 && b[1] != b'b') || (b.len() == 3 && &sfx[1..] != "ib") {
                return Err(bad_suffix(&sfx));
            }
            base.powi(exp)
        }
    };
    let v = size * mul;
    if !v.is_finite() || v > i64::MAX as f64 {
        return Err(bad());
    }
    // Truncation toward zero is go-units' int64(size * mul).
    #[allow(clippy::cast_possible_truncation)]
    Ok(v as i64)
}

/// Go's `strconv.ParseFloat` for the decimal forms (digits, one dot, an
/// exponent, a sign); `None` where Go reports a syntax error.
fn go_float(s: &str) -> Option<f64> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let ok = !body.is_empty()
        && body
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == '.')
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
    ok.then(|| s.parse().ok()).flatten()
}

/// `--memory 512m` = 512 MiB: binary multiples whatever the suffix's case
/// or an `i`/`b` after it.
pub fn ram_in_bytes(s: &str) -> Result<i64, UnitsError> {
    parse_size(s, 1024.0)
}

/// Go's `%.{prec}g` of a finite value.
pub fn go_g(v: f64, prec: usize) -> String {
    let prec = prec.max(1);
    if v == 0.0 {
        return "0".into();
    }
    let sci = format!("{:.*e}", prec - 1, v);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let p = i32::try_from(prec).unwrap_or(i32::MAX);
    if exp < -4 || exp >= p {
        let mant = trim_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        let decimals = usize::try_from(p - 1 - exp).unwrap_or(0);
        trim_zeros(&format!("{v:.decimals$}")).to_owned()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

fn custom_size(size: f64, prec: usize, base: f64, units: &[&str]) -> String {
    let mut size = size;
    let mut i = 0;
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    format!("{}{}", go_g(size, prec), units[i])
}

/// Docker's `HumanSizeWithPrecision`: decimal units, `prec` significant
/// digits (`docker images` and `ps -s` use 3).
pub fn human_size_precision(size: f64, prec: usize) -> String {
    custom_size(size, prec, 1000.0, &DECIMAL)
}

/// Docker's `HumanSize` (4 significant digits).
pub fn human_size(size: f64) -> String {
    human_size_precision(size, 4)
}

/// Docker's `BytesSize`: binary units, 4 significant digits (stats).
pub fn bytes_size(size: f64) -> String {
    custom_size(size, 4, 1024.0, &BINARY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ram_in_bytes_is_binary() {
        assert_eq!(ram_in_bytes("512m"), Ok(512 << 20));
        assert_eq!(ram_in_bytes("512M"), Ok(512 << 20));
        assert_eq!(ram_in_bytes("1g"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("1 GB"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("32kb"), Ok(32 << 10));
        assert_eq!(ram_in_bytes("1.5k"), Ok(1536));
        assert_eq!(ram_in_bytes("1024"), Ok(1024));
        assert_eq!(ram_in_bytes("10b"), Ok(10));
        assert_eq!(ram_in_bytes(".5m"), Ok(512 << 10));
        assert_eq!(ram_in_bytes("1e3"), Ok(1000));
        // Messages as `docker run -m X` prints them.
        for (bad, why) in [
            ("", "invalid size: ''"),
            ("abc", "invalid size: 'abc'"),
            ("-1", "invalid size: '-1'"),
            ("m", "invalid size: 'm'"),
            ("1x", "invalid suffix: 'x'"),
            ("1kk", "invalid suffix: 'kk'"),
            ("1mbb", "invalid suffix: 'mbb'"),
            (
                "1..5m",
                "strconv.ParseFloat: parsing \"1..5\": invalid syntax",
            ),
            (
                "1.5.6",
                "strconv.ParseFloat: parsing \"1.5.6\": invalid syntax",
            ),
            ("x1", "strconv.ParseFloat: parsing \"x1\": invalid syntax"),
        ] {
            assert_eq!(ram_in_bytes(bad).unwrap_err().to_string(), why, "{bad}");
        }
    }

    #[test]
    fn go_percent_g() {
        assert_eq!(go_g(77.8123, 3), "77.8");
        assert_eq!(go_g(100.0, 3), "100");
        assert_eq!(go_g(999.6, 3), "1e+03");
        assert_eq!(go_g(1.0, 3), "1");
        assert_eq!(go_g(4.096, 4), "4.096");
        assert_eq!(go_g(0.00001234, 3), "1.23e-05");
        assert_eq!(go_g(0.5, 3), "0.5");
    }

    #[test]
    fn docker_sizes() {
        assert_eq!(human_size_precision(77_812_345.0, 3), "77.8MB");
        assert_eq!(human_size_precision(0.0, 3), "0B");
        assert_eq!(human_size_precision(999.0, 3), "999B");
        assert_eq!(human_size_precision(1000.0, 3), "1kB");
        assert_eq!(human_size_precision(4_261_000.0, 3), "4.26MB");
        assert_eq!(human_size_precision(13_256.0, 3), "13.3kB");
        assert_eq!(human_size(1_234_567_890.0), "1.235GB");
        assert_eq!(bytes_size(1_572_864.0), "1.5MiB");
        assert_eq!(bytes_size(512.0), "512B");
        assert_eq!(bytes_size(2_147_483_648.0), "2GiB");
    }
}
