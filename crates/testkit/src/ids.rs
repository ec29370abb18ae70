//! Unique names for everything a test creates (container ids, cgroup names,
//! directories, later bridges and netns names), so tests running in parallel
//! (threads of one process, or several test processes) never collide.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Longest id [`unique_id`] returns.
pub const MAX_ID_LEN: usize = 30;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh name: `<prefix>-<pid hex>-<counter hex><4 random hex>`.
///
/// The pid separates concurrent test processes, the counter separates calls
/// within one process, and the random tail separates this run from leftovers
/// of an earlier run that had the same pid. The prefix is truncated so the
/// result is at most [`MAX_ID_LEN`] characters; it only contains characters
/// valid in container ids and cgroup names (`[A-Za-z0-9_.-]`), other prefix
/// characters become `_`.
pub fn unique_id(prefix: &str) -> String {
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(count);
    if let Ok(now) = SystemTime::now().duration_since(UNIX_EPOCH) {
        hasher.write_u128(now.as_nanos());
    }
    let random = hasher.finish() & 0xffff;
    let suffix = format!("-{:x}-{count:x}{random:04x}", std::process::id());
    let room = MAX_ID_LEN.saturating_sub(suffix.len());
    let prefix: String = prefix
        .chars()
        .take(room)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{prefix}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_differ_and_stay_short() {
        let ids: Vec<String> = (0..1000)
            .map(|_| unique_id("a-rather-long-test-prefix"))
            .collect();
        let mut dedup = ids.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), ids.len(), "ids repeat");
        for id in &ids {
            assert!(id.len() <= MAX_ID_LEN, "{id} longer than {MAX_ID_LEN}");
            assert!(id.starts_with("a-rather"), "{id} lost its prefix");
        }
    }

    #[test]
    fn odd_prefix_characters_are_replaced() {
        let id = unique_id("a b/c");
        assert!(id.starts_with("a_b_c-"), "{id}");
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        );
    }
}
