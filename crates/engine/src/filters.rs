//! Docker's list and prune filters (the `filters` query parameter, Go's
//! `filters.Args`) with dockerd's matching rules, for the services that
//! filter networks, volumes, plugins, search results and build caches.
//!
//! A [`Filters`] is built from the parsed parameter (`key` → values) and
//! first checked against the keys the caller accepts ([`Filters::validate`]).
//! The matchers then follow dockerd exactly:
//! - [`Filters::exact`]: no value given for the key, or one equal to the source;
//! - [`Filters::matches`]: exact, or one value is a regular expression found
//!   anywhere in the source (unanchored; an invalid expression matches
//!   nothing), which is how `name=` and `id=` filters behave;
//! - [`Filters::matches_labels`]: every `key` / `key=value` given is present;
//! - [`Filters::bool_or`]: the key holds `1`/`true` or `0`/`false`, not both.
//!
//! Messages are dockerd's (`invalid filter 'x'`), so clients and users see
//! what they would see against Docker.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::error::ErrorKind;

/// Why a filter parameter was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// A key the list or prune does not know.
    #[error("invalid filter '{key}'")]
    UnknownKey { key: String },
    /// A key given without a value where one is needed.
    #[error("invalid filter '{key}'")]
    MissingValue { key: String },
    /// A value the key does not accept (rendered as Go prints the list).
    #[error("invalid filter '{key}=[{}]'", values.join(" "))]
    BadValue { key: String, values: Vec<String> },
    /// Prune filters take one `until`.
    #[error("more than one until filter specified")]
    SeveralUntil,
    /// `until` is neither a time nor a duration.
    #[error(
        "invalid until filter {value:?}: expected a Unix timestamp, an RFC 3339 date/time or a duration such as 24h"
    )]
    BadUntil { value: String },
}

impl FilterError {
    /// Every filter error is a bad request.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// A parsed `filters` parameter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters(BTreeMap<String, Vec<String>>);

impl From<BTreeMap<String, Vec<String>>> for Filters {
    fn from(m: BTreeMap<String, Vec<String>>) -> Filters {
        Filters(m)
    }
}

impl Filters {
    /// Refuses keys outside `accepted` (dockerd's `Validate`).
    pub fn validate(&self, accepted: &[&str]) -> Result<(), FilterError> {
        match self.0.keys().find(|k| !accepted.contains(&k.as_str())) {
            Some(key) => Err(FilterError::UnknownKey { key: key.clone() }),
            None => Ok(()),
        }
    }

    /// Whether no filter was given at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `key` was given (even without values).
    pub fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// The values of `key`.
    pub fn get(&self, key: &str) -> &[String] {
        self.0.get(key).map_or(&[], Vec::as_slice)
    }

    /// True when `key` has no values or one of them equals `source`.
    pub fn exact(&self, key: &str, source: &str) -> bool {
        let vals = self.get(key);
        vals.is_empty() || vals.iter().any(|v| v == source)
    }

    /// [`Filters::exact`], or a value that is a regular expression found
    /// in `source`.
    pub fn matches(&self, key: &str, source: &str) -> bool {
        self.exact(key, source)
            || self.get(key).iter().any(|v| {
                regex::Regex::new(v)
                    .map(|re| re.is_match(source))
                    .unwrap_or(false)
            })
    }

    /// True when every `k` / `k=v` value of `key` is among `labels`.
    pub fn matches_labels(&self, key: &str, labels: &BTreeMap<String, String>) -> bool {
        self.get(key).iter().all(|f| match f.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
            None => labels.contains_key(f.as_str()),
        })
    }

    /// `key` as a boolean: `default` when absent, an error when empty, when
    /// it is neither `1`/`true` nor `0`/`false`, or when it is both.
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, FilterError> {
        let Some(vals) = self.0.get(key) else {
            return Ok(default);
        };
        if vals.is_empty() {
            return Err(FilterError::MissingValue {
                key: key.to_owned(),
            });
        }
        let is_false = vals.iter().any(|v| v == "0" || v == "false");
        let is_true = vals.iter().any(|v| v == "1" || v == "true");
        if is_false == is_true {
            return Err(FilterError::BadValue {
                key: key.to_owned(),
                values: vals.clone(),
            });
        }
        Ok(is_true)
    }

    /// The `until` of a prune: at most one value, a Unix time, an RFC 3339
    /// time or a Go duration counted back from `now`.
    pub fn until(&self, now: SystemTime) -> Result<Option<SystemTime>, FilterError> {
        let vals = self.get("until");
        match vals {
            [] => Ok(None),
            [v] => parse_until(v, now)
                .map(Some)
                .ok_or_else(|| FilterError::BadUntil { value: v.clone() }),
            _ => Err(FilterError::SeveralUntil),
        }
    }
}

fn parse_until(v: &str, now: SystemTime) -> Option<SystemTime> {
    if let Some(d) = parse_go_duration(v) {
        return now.checked_sub(d);
    }
    crate::time::parse_time(v)
}

/// Go's `time.ParseDuration` for non-negative values: a sequence of
/// decimal numbers with units `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`.
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * secs;
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(pairs: &[(&str, &[&str])]) -> Filters {
        Filters(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect(),
        )
    }

    #[test]
    fn validation_and_matching_follow_dockerd() {
        let fl = f(&[("name", &["on"]), ("bogus", &[])]);
        assert_eq!(
            fl.validate(&["name"]).unwrap_err().to_string(),
            "invalid filter 'bogus'"
        );
        assert!(f(&[("name", &["x"])]).validate(&["name", "id"]).is_ok());
        // Regular expressions, unanchored; exact values; no value at all.
        assert!(fl.matches("name", "none"));
        assert!(!fl.matches("name", "host"));
        assert!(f(&[("name", &["^ho"])]).matches("name", "host"));
        assert!(!f(&[("name", &["^ost"])]).matches("name", "host"));
        // An invalid expression matches only exactly.
        assert!(!f(&[("name", &["("])]).matches("name", "x("));
        assert!(f(&[("name", &["("])]).matches("name", "("));
        assert!(f(&[("driver", &[])]).exact("driver", "null"));
        assert!(!f(&[("driver", &["nul"])]).exact("driver", "null"));
        assert!(f(&[]).matches("name", "anything"));
    }

    #[test]
    fn labels_and_booleans() {
        let mut labels = BTreeMap::new();
        labels.insert("a".to_owned(), "1".to_owned());
        assert!(f(&[("label", &["a"])]).matches_labels("label", &labels));
        assert!(f(&[("label", &["a=1"])]).matches_labels("label", &labels));
        assert!(!f(&[("label", &["a=2"])]).matches_labels("label", &labels));
        assert!(!f(&[("label", &["a", "b"])]).matches_labels("label", &labels));
        assert!(f(&[]).matches_labels("label", &BTreeMap::new()));
        assert!(f(&[("d", &["true"])]).bool_or("d", false).unwrap());
        assert!(!f(&[("d", &["0"])]).bool_or("d", true).unwrap());
        assert!(f(&[]).bool_or("d", true).unwrap());
        assert_eq!(
            f(&[("d", &["maybe"])])
                .bool_or("d", false)
                .unwrap_err()
                .to_string(),
            "invalid filter 'd=[maybe]'"
        );
        assert!(f(&[("d", &["1", "0"])]).bool_or("d", false).is_err());
        assert!(f(&[("d", &[])]).bool_or("d", false).is_err());
    }

    #[test]
    fn until_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(f(&[]).until(now).unwrap(), None);
        assert_eq!(
            f(&[("until", &["1h30m"])]).until(now).unwrap(),
            Some(now - Duration::from_secs(5400))
        );
        assert_eq!(
            f(&[("until", &["1000"])]).until(now).unwrap(),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1000))
        );
        assert!(
            f(&[("until", &["1970-01-02T00:00:00Z"])])
                .until(now)
                .unwrap()
                .is_some()
        );
        assert_eq!(
            f(&[("until", &["a", "b"])]).until(now).unwrap_err(),
            FilterError::SeveralUntil
        );
        assert!(f(&[("until", &["soon"])]).until(now).is_err());
        assert_eq!(parse_go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
    }
}
