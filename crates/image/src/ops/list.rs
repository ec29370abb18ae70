//! `docker images`: summaries of every image, filtered as docker filters
//! them (`reference`, `label`, `dangling`, `before`, `since`), newest first.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{Images, OpsError, repo_digests, repo_tags, resolve_in, time};
use crate::digest::Digest;
use crate::reference::Reference;
use crate::snapshot::chain_ids;

/// Docker's image list filters. Several values of one filter: any
/// `reference` may match, every `label` must.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageFilters {
    /// Glob patterns (`*`, `?`, `[...]`) on the familiar name or `name:tag`.
    pub reference: Vec<String>,
    /// `key` (present) or `key=value`.
    pub label: Vec<String>,
    /// `Some(true)`: untagged images only; `Some(false)`: tagged only.
    pub dangling: Option<bool>,
    /// Images created before the one this names.
    pub before: Option<String>,
    /// Images created after the one this names.
    pub since: Option<String>,
}

impl ImageFilters {
    /// From the API's `filters` query (`{"dangling":["true"],...}`).
    pub fn from_map(map: &BTreeMap<String, Vec<String>>) -> Result<ImageFilters, OpsError> {
        let mut f = ImageFilters::default();
        for (name, values) in map {
            match name.as_str() {
                "reference" => f.reference.extend(values.iter().cloned()),
                "label" => f.label.extend(values.iter().cloned()),
                "dangling" => {
                    for v in values {
                        f.dangling = Some(match v.as_str() {
                            "true" | "1" => true,
                            "false" | "0" => false,
                            _ => {
                                return Err(OpsError::InvalidFilterValue {
                                    name: name.clone(),
                                    value: v.clone(),
                                });
                            }
                        });
                    }
                }
                "before" => f.before = values.last().cloned(),
                "since" => f.since = values.last().cloned(),
                _ => {
                    return Err(OpsError::InvalidFilter { name: name.clone() });
                }
            }
        }
        Ok(f)
    }
}

/// What to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    pub filters: ImageFilters,
    /// Compute `SharedSize` (bytes in layers other images also use).
    pub shared_size: bool,
}

impl Images {
    /// `GET /images/json`.
    pub fn list(&self, opts: &ListOptions) -> Result<Vec<super::ImageSummary>, OpsError> {
        let contents = self.store.contents()?;
        let f = &opts.filters;
        let created_of = |id: &Digest| -> Result<i64, OpsError> {
            Ok(self
                .config(id)?
                .file()
                .created
                .as_deref()
                .and_then(time::parse_rfc3339)
                .unwrap_or(0))
        };
        let before = match &f.before {
            Some(n) => Some(created_of(&resolve_in(&contents, n)?.id)?),
            None => None,
        };
        let since = match &f.since {
            Some(n) => Some(created_of(&resolve_in(&contents, n)?.id)?),
            None => None,
        };
        // Chains per image, and how many images use each layer.
        let mut chains = HashMap::new();
        let mut configs = HashMap::new();
        let mut users: HashMap<Digest, usize> = HashMap::new();
        for id in contents.images.keys() {
            let config = match self.config(id) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(image = %id, error = %e, "skipping image with unreadable config");
                    continue;
                }
            };
            let c = chain_ids(config.diff_ids());
            for l in c.iter().collect::<HashSet<_>>() {
                *users.entry(l.clone()).or_default() += 1;
            }
            chains.insert(id.clone(), c);
            configs.insert(id.clone(), config);
        }
        let mut sizes: HashMap<Digest, u64> = HashMap::new();
        let mut size_of = |l: &Digest| -> u64 {
            *sizes
                .entry(l.clone())
                .or_insert_with(|| self.layer_sizes(std::slice::from_ref(l))[0])
        };
        let mut out = Vec::new();
        for (id, rec) in &contents.images {
            let Some(config) = configs.get(id) else {
                continue;
            };
            let file = config.file();
            let tags = repo_tags(&contents, id);
            let created = file
                .created
                .as_deref()
                .and_then(time::parse_rfc3339)
                .unwrap_or(0);
            let labels = file
                .config
                .as_ref()
                .and_then(|c| c.labels.clone())
                .unwrap_or_default();
            if f.dangling.is_some_and(|d| d != tags.is_empty())
                || before.is_some_and(|b| created >= b)
                || since.is_some_and(|s| created <= s)
                || !f.label.iter().all(|l| label_matches(&labels, l))
            {
                continue;
            }
            if !f.reference.is_empty() {
                let refs: Vec<&String> = contents
                    .refs
                    .iter()
                    .filter(|(_, i)| *i == id)
                    .map(|(r, _)| r)
                    .collect();
                if !f
                    .reference
                    .iter()
                    .any(|p| refs.iter().any(|r| reference_matches(p, r)))
                {
                    continue;
                }
            }
            let layers = &chains[id];
            let size: u64 = layers.iter().map(&mut size_of).sum();
            let shared_size = if opts.shared_size {
                let shared: u64 = layers
                    .iter()
                    .filter(|l| users.get(*l).copied().unwrap_or(0) > 1)
                    .map(&mut size_of)
                    .sum();
                i64::try_from(shared).unwrap_or(i64::MAX)
            } else {
                -1
            };
            out.push(super::ImageSummary {
                id: id.to_string(),
                parent_id: String::new(),
                repo_tags: tags,
                repo_digests: repo_digests(&contents, rec),
                created,
                size: i64::try_from(size).unwrap_or(i64::MAX),
                shared_size,
                labels,
                containers: i64::try_from(self.containers.containers_using(id).len())
                    .unwrap_or(i64::MAX),
            });
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }
}

fn label_matches(labels: &BTreeMap<String, String>, filter: &str) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
        None => labels.contains_key(filter),
    }
}

/// Docker's `FamiliarMatch`: the pattern against the familiar name, then
/// against the familiar string (`name:tag`).
fn reference_matches(pattern: &str, full: &str) -> bool {
    let Ok(r) = Reference::parse_full(full) else {
        return false;
    };
    glob_match(pattern, &r.familiar_name()) || glob_match(pattern, &r.familiar_string())
}

/// Shell-style matching as Go's `path.Match`: `*` and `?` never match `/`,
/// `[abc]`, `[a-z]` and `[^a]` classes, `\` escapes.
pub(crate) fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    glob_at(&p, &n)
}

fn glob_at(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => {
            // `*` takes any run of non-separators.
            let mut i = 0;
            loop {
                if glob_at(&p[1..], &n[i..]) {
                    return true;
                }
                if i == n.len() || n[i] == '/' {
                    return false;
                }
                i += 1;
            }
        }
        Some('?') => n.first().is_some_and(|c| *c != '/') && glob_at(&p[1..], &n[1..]),
        Some('[') => {
            let Some((&c, rest)) = n.split_first() else {
                return false;
            };
            match class_match(&p[1..], c) {
                Some((true, after)) if c != '/' => glob_at(after, rest),
                _ => false,
            }
        }
        Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && glob_at(&p[2..], &n[1..]),
        Some(c) => n.first() == Some(c) && glob_at(&p[1..], &n[1..]),
    }
}

/// Matches `c` against a class body (after `[`); returns the verdict and the
/// pattern after `]`, or `None` for an unterminated class.
fn class_match(p: &[char], c: char) -> Option<(bool, &[char])> {
    let (negate, mut i) = match p.first() {
        Some('^') | Some('!') => (true, 1),
        _ => (false, 0),
    };
    let mut matched = false;
    let mut first = true;
    loop {
        let lo = *p.get(i)?;
        if lo == ']' && !first {
            return Some((matched != negate, &p[i + 1..]));
        }
        first = false;
        i += 1;
        if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|h| *h != ']') {
            let hi = p[i + 1];
            matched |= lo <= c && c <= hi;
            i += 2;
        } else {
            matched |= lo == c;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_like_go_path_match() {
        assert!(glob_match("busy*", "busybox"));
        assert!(glob_match("busybox:*", "busybox:latest"));
        assert!(!glob_match("*", "user/app"));
        assert!(glob_match("*/app", "user/app"));
        assert!(glob_match("b?sybox", "busybox"));
        assert!(glob_match("[a-c]usybox", "busybox"));
        assert!(!glob_match("[^b]usybox", "busybox"));
        assert!(glob_match("a\\*", "a*"));
        assert!(!glob_match("a\\*", "ab"));
        assert!(!glob_match("[ab", "a"));
    }

    #[test]
    fn references_match_familiar_forms() {
        let full = "docker.io/library/busybox:latest";
        assert!(reference_matches("busybox", full));
        assert!(reference_matches("busybox:latest", full));
        assert!(reference_matches("busy*:lat*", full));
        assert!(!reference_matches("busybox:1", full));
        assert!(reference_matches("host:5000/a/*", "host:5000/a/b:t"));
    }

    #[test]
    fn filters_from_the_query_map() {
        let mut m = BTreeMap::new();
        m.insert("dangling".to_owned(), vec!["true".to_owned()]);
        m.insert("label".to_owned(), vec!["a=b".to_owned()]);
        let f = ImageFilters::from_map(&m).unwrap();
        assert_eq!(f.dangling, Some(true));
        assert_eq!(f.label, vec!["a=b".to_owned()]);
        m.insert("bogus".to_owned(), vec![]);
        assert!(matches!(
            ImageFilters::from_map(&m),
            Err(OpsError::InvalidFilter { .. })
        ));
        let mut m = BTreeMap::new();
        m.insert("dangling".to_owned(), vec!["maybe".to_owned()]);
        assert!(ImageFilters::from_map(&m).is_err());
    }
}
