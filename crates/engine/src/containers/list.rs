//! `ps`: which containers a listing shows, with Docker's filters (`id`,
//! `name`, `label`, `status`, `exited`, `ancestor`, `before`, `since`).

use std::collections::BTreeMap;

use super::Containers;
use crate::error::EngineError;
use crate::model::{Container, Status};

/// A listing request.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Include stopped containers.
    pub all: bool,
    /// At most this many, newest first (implies `all`, as in Docker).
    pub limit: Option<usize>,
    pub filters: BTreeMap<String, Vec<String>>,
}

fn invalid(reason: String) -> EngineError {
    EngineError::InvalidConfig {
        field: "filters",
        reason,
    }
}

/// Docker's name filter is a regular expression; this supports the forms
/// people use: substrings, `^prefix`, `suffix$`, `^exact$`.
fn name_matches(pattern: &str, name: &str) -> bool {
    let bare = name.trim_start_matches('/');
    let (anchored_start, p) = match pattern.strip_prefix('^') {
        Some(p) => (true, p),
        None => (false, pattern),
    };
    let (anchored_end, p) = match p.strip_suffix('$') {
        Some(p) => (true, p),
        None => (false, p),
    };
    let p = p.strip_prefix('/').unwrap_or(p);
    match (anchored_start, anchored_end) {
        (true, true) => bare == p,
        (true, false) => bare.starts_with(p),
        (false, true) => bare.ends_with(p),
        (false, false) => bare.contains(p),
    }
}

impl Containers {
    /// The containers a listing shows, newest first.
    pub fn list_filtered(&self, opts: &ListOptions) -> Result<Vec<Container>, EngineError> {
        for (k, vals) in &opts.filters {
            match k.as_str() {
                "id" | "name" | "label" | "ancestor" | "before" | "since" => {}
                "status" => {
                    for v in vals {
                        if Status::parse(v).is_none() {
                            return Err(invalid(format!("invalid filter 'status={v}'")));
                        }
                    }
                }
                "exited" => {
                    for v in vals {
                        if v.parse::<i32>().is_err() {
                            return Err(invalid(format!("invalid filter 'exited={v}'")));
                        }
                    }
                }
                other => return Err(invalid(format!("invalid filter '{other}'"))),
            }
        }
        let all_list = self.list();
        let position = |input: &str| -> Result<usize, EngineError> {
            let c = self.lookup(input)?;
            Ok(all_list.iter().position(|x| x.id == c.id).unwrap_or(0))
        };
        // Newest first: "before X" keeps those after X's index, "since X" before.
        let before = opts
            .filters
            .get("before")
            .and_then(|v| v.first())
            .map(|v| position(v))
            .transpose()?;
        let since = opts
            .filters
            .get("since")
            .and_then(|v| v.first())
            .map(|v| position(v))
            .transpose()?;
        let f = |k: &str| opts.filters.get(k).filter(|v| !v.is_empty());
        let show_all =
            opts.all || opts.limit.is_some() || f("status").is_some() || f("exited").is_some();
        let mut out = Vec::new();
        for (i, c) in all_list.into_iter().enumerate() {
            if before.is_some_and(|b| i <= b) || since.is_some_and(|s| i >= s) {
                continue;
            }
            if !show_all && !c.state.is_running() {
                continue;
            }
            if let Some(ids) = f("id")
                && !ids.iter().any(|p| c.id.starts_with(p.as_str()))
            {
                continue;
            }
            if let Some(ns) = f("name")
                && !ns.iter().any(|p| name_matches(p, &c.name))
            {
                continue;
            }
            if let Some(st) = f("status")
                && !st.iter().any(|s| s == c.state.status.as_str())
            {
                continue;
            }
            if let Some(codes) = f("exited")
                && !(c.state.status == Status::Exited
                    && codes
                        .iter()
                        .any(|x| x.parse::<i32>().ok() == Some(c.state.exit_code)))
            {
                continue;
            }
            if let Some(labels) = f("label")
                && !labels.iter().all(|l| match l.split_once('=') {
                    Some((k, v)) => c.config.labels.get(k).map(String::as_str) == Some(v),
                    None => c.config.labels.contains_key(l),
                })
            {
                continue;
            }
            if let Some(anc) = f("ancestor")
                && !anc.iter().any(|a| {
                    c.config.image == *a
                        || c.image
                            .trim_start_matches("sha256:")
                            .starts_with(a.trim_start_matches("sha256:"))
                        || self
                            .images
                            .resolve(a)
                            .is_ok_and(|r| r.record.id.to_string() == c.image)
                })
            {
                continue;
            }
            out.push(c);
            if opts.limit.is_some_and(|l| out.len() >= l) {
                break;
            }
        }
        Ok(out)
    }

    /// Removes every stopped container matching `filters` (`label`,
    /// `label!`, `until`); returns the removed IDs and the bytes their
    /// writable layers held.
    pub async fn prune(
        self: &std::sync::Arc<Self>,
        filters: &BTreeMap<String, Vec<String>>,
    ) -> Result<(Vec<String>, u64), EngineError> {
        let mut until = None;
        for (k, vals) in filters {
            match k.as_str() {
                "label" | "label!" => {}
                "until" => {
                    let v = vals.first().map(String::as_str).unwrap_or("");
                    until = Some(
                        crate::time::parse_time(v)
                            .ok_or_else(|| invalid(format!("invalid until value: {v}")))?,
                    );
                }
                other => return Err(invalid(format!("invalid filter '{other}'"))),
            }
        }
        let label_ok = |c: &Container, key: &str, want: bool| {
            filters.get(key).is_none_or(|ls| {
                ls.iter().all(|l| {
                    let has = match l.split_once('=') {
                        Some((k, v)) => c.config.labels.get(k).map(String::as_str) == Some(v),
                        None => c.config.labels.contains_key(l),
                    };
                    has == want
                })
            })
        };
        let mut removed = Vec::new();
        let mut space = 0u64;
        for c in self.list() {
            if c.state.is_running()
                || !label_ok(&c, "label", true)
                || !label_ok(&c, "label!", false)
            {
                continue;
            }
            if let Some(u) = until
                && crate::time::parse_time(&c.created).is_some_and(|t| t > u)
            {
                continue;
            }
            space += self
                .images
                .snapshots()
                .usage(&c.snapshot_key)
                .map_or(0, |u| u.size);
            match self.remove(&c.id, false).await {
                Ok(()) => removed.push(c.id.clone()),
                Err(e) => {
                    tracing::warn!(container_id = %c.id, error = %e.full_message(), "prune: cannot remove")
                }
            }
        }
        Ok((removed, space))
    }

    /// IDs of the exec instances of a container.
    pub fn exec_ids(&self, container_id: &str) -> Vec<String> {
        self.execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|x| x.container_id == container_id)
            .map(|x| x.id.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::name_matches;

    #[test]
    fn names() {
        assert!(name_matches("web", "/my-web-1"));
        assert!(name_matches("^my", "/my-web-1"));
        assert!(!name_matches("^web", "/my-web-1"));
        assert!(name_matches("^/my-web-1$", "/my-web-1"));
        assert!(name_matches("1$", "/my-web-1"));
    }
}
