//! Small cgroupfs file helpers: write a value (a missing file becomes
//! [`CgroupError::MissingFile`] naming the file and what was asked for), read
//! and parse the kernel's flat-keyed and nested-keyed formats.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use crate::error::CgroupError;

/// Writes `value` to `dir/file` in one `write(2)`, truncating like cgroupfs
/// expects and never creating the file. `what` names the requested setting
/// for the error when the file does not exist.
pub(crate) fn write(
    dir: &Path,
    file: &str,
    value: impl Display,
    what: &str,
) -> Result<(), CgroupError> {
    let path = dir.join(file);
    let value = value.to_string();
    let mut f = match std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(CgroupError::MissingFile {
                path,
                what: what.to_owned(),
            });
        }
        Err(source) => {
            return Err(CgroupError::Write {
                path,
                value,
                source,
            });
        }
    };
    tracing::trace!(path = %path.display(), %value, "cgroup write");
    f.write_all(value.as_bytes())
        .map_err(|source| CgroupError::Write {
            path,
            value,
            source,
        })
}

/// Reads `path` to a string.
pub(crate) fn read(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Reads `path`, or `None` if it does not exist.
pub(crate) fn read_opt(path: &Path) -> Result<Option<String>, CgroupError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Whether `dir/file` exists.
pub(crate) fn exists(dir: &Path, file: &str) -> bool {
    dir.join(file).exists()
}

pub(crate) fn parse_err(path: &Path, detail: impl Into<String>) -> CgroupError {
    CgroupError::Parse {
        path: path.to_owned(),
        detail: detail.into(),
    }
}

/// Parses a single unsigned number; `max` (v2) becomes `None`.
pub(crate) fn parse_u64_or_max(path: &Path, text: &str) -> Result<Option<u64>, CgroupError> {
    match text.trim() {
        "max" => Ok(None),
        t => t
            .parse()
            .map(Some)
            .map_err(|_| parse_err(path, format!("expected a number or \"max\", got {t:?}"))),
    }
}

/// Reads a single unsigned number (`max` → `None`), `Ok(None)` for a missing
/// file too; `Err` only for unreadable or malformed files.
pub(crate) fn read_u64_opt(dir: &Path, file: &str) -> Result<Option<u64>, CgroupError> {
    let path = dir.join(file);
    match read_opt(&path)? {
        Some(text) => parse_u64_or_max(&path, &text),
        None => Ok(None),
    }
}

/// Parses `key value` lines (memory.stat, cpu.stat, memory.events, ...).
/// Lines whose value is not a number are skipped.
pub(crate) fn parse_flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = it.next()?.parse().ok()?;
            Some((k.to_owned(), v))
        })
        .collect()
}

/// Reads and parses a flat-keyed file; `None` when it does not exist.
pub(crate) fn read_flat_keyed(
    dir: &Path,
    file: &str,
) -> Result<Option<BTreeMap<String, u64>>, CgroupError> {
    Ok(read_opt(&dir.join(file))?.map(|t| parse_flat_keyed(&t)))
}

/// Parses `major:minor` into numbers.
pub(crate) fn parse_devno(s: &str) -> Option<(u64, u64)> {
    let (a, b) = s.split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// `dir` joined with a relative or absolute-looking cgroup path, keeping only
/// normal components (callers validate against `..` beforehand).
pub(crate) fn join_cgroup(dir: &Path, rel: &Path) -> PathBuf {
    let mut out = dir.to_path_buf();
    out.extend(
        rel.components()
            .filter(|c| matches!(c, std::path::Component::Normal(_))),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_keyed_skips_garbage() {
        let m = parse_flat_keyed("cache 10\nrss 20\nbogus\nname x\n");
        assert_eq!(m.len(), 2);
        assert_eq!(m["rss"], 20);
    }

    #[test]
    fn max_is_none() {
        let p = Path::new("/x");
        assert_eq!(parse_u64_or_max(p, "max\n").unwrap(), None);
        assert_eq!(parse_u64_or_max(p, "42\n").unwrap(), Some(42));
        assert!(parse_u64_or_max(p, "nope").is_err());
    }

    #[test]
    fn write_to_missing_file_names_it() {
        let d = tempfile::tempdir().unwrap();
        let err = write(
            d.path(),
            "memory.memsw.limit_in_bytes",
            5,
            "memory swap limit",
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("memory.memsw.limit_in_bytes"), "{msg}");
        assert!(msg.contains("memory swap limit"), "{msg}");
        assert!(!d.path().join("memory.memsw.limit_in_bytes").exists());
    }

    #[test]
    fn devno_parses() {
        assert_eq!(parse_devno("8:16"), Some((8, 16)));
        assert_eq!(parse_devno("8"), None);
    }
}
