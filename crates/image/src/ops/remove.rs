//! `docker rmi` and `docker image prune`.
//!
//! Removal follows docker's rules. By name: the reference is untagged; when
//! it was the image's last tag, the digest references of that repository go
//! too, and when no reference is left the image is deleted. By ID: every
//! reference is untagged and the image deleted; an image tagged in several
//! repositories needs `force`. An image a container uses is refused unless
//! forced, and never deleted while one of them runs. Deleting writes the
//! image store first (the image disappears atomically), then removes the
//! layer snapshots no other image or container uses, top down, then the
//! blobs no remaining image references.

use std::collections::{BTreeMap, HashSet};

use super::{DeleteItem, Images, OpsError, PruneReport, familiar, resolve_in, time};
use crate::digest::Digest;
use crate::image_store::StoreContents;
use crate::reference::Reference;
use crate::snapshot::{SnapshotError, chain_ids};

/// `DELETE /images/{name}` options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemoveOptions {
    /// Untag every reference and delete even when stopped containers use the
    /// image or it is tagged in several repositories.
    pub force: bool,
}

/// `POST /images/prune` options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneOptions {
    /// Every image no container uses, not only untagged ones.
    pub all: bool,
    /// `key`, `key=value`, `key!=value`, `!key`: each must hold.
    pub label: Vec<String>,
    /// Only images created before this (Unix seconds).
    pub until: Option<i64>,
}

impl PruneOptions {
    /// From the API's `filters` query (`dangling`, `label`, `label!`, `until`).
    pub fn from_map(map: &BTreeMap<String, Vec<String>>) -> Result<PruneOptions, OpsError> {
        let mut o = PruneOptions::default();
        for (name, values) in map {
            for v in values {
                match name.as_str() {
                    "dangling" => match v.as_str() {
                        "true" | "1" => o.all = false,
                        "false" | "0" => o.all = true,
                        _ => {
                            return Err(OpsError::InvalidFilterValue {
                                name: name.clone(),
                                value: v.clone(),
                            });
                        }
                    },
                    "label" => o.label.push(v.clone()),
                    "label!" => o.label.push(format!("!{v}")),
                    "until" => {
                        o.until =
                            Some(parse_until(v).ok_or_else(|| OpsError::InvalidFilterValue {
                                name: name.clone(),
                                value: v.clone(),
                            })?);
                    }
                    _ => return Err(OpsError::InvalidFilter { name: name.clone() }),
                }
            }
        }
        Ok(o)
    }
}

/// `until` values: Unix seconds, RFC 3339, or a duration before now
/// (`90m`, `24h`, `1h30m`).
fn parse_until(v: &str) -> Option<i64> {
    if let Ok(n) = v.parse::<i64>() {
        return Some(n);
    }
    if let Some(t) = time::parse_rfc3339(v) {
        return Some(t);
    }
    let mut total = 0i64;
    let mut num = String::new();
    for c in v.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: i64 = num.parse().ok()?;
        num.clear();
        total += n * match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
    }
    if !num.is_empty() || total == 0 {
        return None;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    Some(i64::try_from(now).ok()? - total)
}

fn prune_label_matches(labels: &BTreeMap<String, String>, f: &str) -> bool {
    if let Some(k) = f.strip_prefix('!') {
        return match k.split_once('=') {
            Some((k, v)) => labels.get(k).is_none_or(|have| have != v),
            None => !labels.contains_key(k),
        };
    }
    if let Some((k, v)) = f.split_once("!=") {
        return labels.get(k).is_none_or(|have| have != v);
    }
    match f.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
        None => labels.contains_key(f),
    }
}

fn repo_of(full: &str) -> String {
    Reference::parse_full(full)
        .map(|r| r.name())
        .unwrap_or_else(|_| full.to_owned())
}

fn refs_of(c: &StoreContents, id: &Digest) -> Vec<String> {
    c.refs
        .iter()
        .filter(|(_, i)| *i == id)
        .map(|(r, _)| r.clone())
        .collect()
}

impl Images {
    /// `docker rmi NAME`: the `Untagged:`/`Deleted:` lines, in docker's order.
    pub fn remove(&self, name: &str, opts: RemoveOptions) -> Result<Vec<DeleteItem>, OpsError> {
        // Waits for pulls, loads, imports and commits in flight (their
        // layers are not referenced by a recorded image yet).
        let _gc = self.store.gc().exclusive();
        let contents = self.store.contents()?;
        let r = resolve_in(&contents, name)?;
        let id = r.id.clone();
        let short = id.hex()[..12].to_owned();
        let refs = refs_of(&contents, &id);
        let users = self.containers.containers_using(&id);
        let running = users.iter().find(|u| u.running);

        if let Some(named) = &r.reference {
            // By name: untag it (and, with the repository's last tag, its digests).
            let tags_left = refs
                .iter()
                .filter(|x| *x != named && !x.contains('@'))
                .count();
            let last = tags_left == 0;
            if last
                && !opts.force
                && let Some(u) = users.first()
            {
                return Err(OpsError::InUse {
                    image: short,
                    container: u.id.clone(),
                    running: u.running,
                });
            }
            let repo = repo_of(named);
            let same_repo_tag_left = refs
                .iter()
                .any(|x| x != named && !x.contains('@') && repo_of(x) == repo);
            let mut untag = vec![named.clone()];
            if !same_repo_tag_left {
                untag.extend(
                    refs.iter()
                        .filter(|x| *x != named && x.contains('@') && repo_of(x) == repo)
                        .cloned(),
                );
            }
            let remaining = refs.len() - untag.len();
            if remaining > 0 || running.is_some() {
                // Still named (or in use by a running container): untag only.
                let untag_set: HashSet<String> = untag.iter().cloned().collect();
                self.store.update(|c| {
                    c.refs.retain(|k, _| !untag_set.contains(k));
                    if let Some(rec) = c.images.get_mut(&id) {
                        rec.repo_digests.retain(|d| !untag_set.contains(d));
                    }
                    Ok::<_, OpsError>(())
                })?;
                return Ok(untag
                    .iter()
                    .map(|u| DeleteItem::untagged(familiar(u)))
                    .collect());
            }
            return Ok(self.delete_image(&id, untag)?.0);
        }

        // By ID.
        if let Some(u) = running {
            return Err(OpsError::InUse {
                image: short,
                container: u.id.clone(),
                running: true,
            });
        }
        if !opts.force {
            let repos: HashSet<String> = refs
                .iter()
                .filter(|x| !x.contains('@'))
                .map(|x| repo_of(x))
                .collect();
            if repos.len() > 1 {
                return Err(OpsError::MultipleRepositories { image: short });
            }
            if let Some(u) = users.first() {
                return Err(OpsError::InUse {
                    image: short,
                    container: u.id.clone(),
                    running: false,
                });
            }
        }
        Ok(self.delete_image(&id, refs)?.0)
    }

    /// `docker image prune [-a]`: deletes untagged images (or, with `all`,
    /// every image) that no container uses.
    pub fn prune(&self, opts: &PruneOptions) -> Result<PruneReport, OpsError> {
        let _gc = self.store.gc().exclusive();
        let contents = self.store.contents()?;
        let mut report = PruneReport::default();
        for id in contents.images.keys() {
            let refs = refs_of(&contents, id);
            let tagged = refs.iter().any(|r| !r.contains('@'));
            if (tagged && !opts.all) || !self.containers.containers_using(id).is_empty() {
                continue;
            }
            if !opts.label.is_empty() || opts.until.is_some() {
                let config = self.config(id)?;
                let file = config.file();
                let labels = file
                    .config
                    .as_ref()
                    .and_then(|c| c.labels.clone())
                    .unwrap_or_default();
                if !opts.label.iter().all(|l| prune_label_matches(&labels, l)) {
                    continue;
                }
                let created = file
                    .created
                    .as_deref()
                    .and_then(time::parse_rfc3339)
                    .unwrap_or(0);
                if opts.until.is_some_and(|u| created >= u) {
                    continue;
                }
            }
            let (items, reclaimed) = self.delete_image(id, refs)?;
            report.images_deleted.extend(items);
            report.space_reclaimed += reclaimed;
        }
        Ok(report)
    }

    /// Untags `untag`, deletes the record, then the layers and blobs only
    /// this image used. Returns the lines and the bytes of layers removed.
    fn delete_image(
        &self,
        id: &Digest,
        untag: Vec<String>,
    ) -> Result<(Vec<DeleteItem>, u64), OpsError> {
        let config = self.config(id).ok();
        let untag_set: HashSet<String> = untag.iter().cloned().collect();
        let (record, remaining) = self.store.update(|c| {
            c.refs.retain(|k, _| !untag_set.contains(k));
            let rec = c.images.remove(id);
            c.refs.retain(|_, v| v != id);
            Ok::<_, OpsError>((rec, c.clone()))
        })?;
        let mut items: Vec<DeleteItem> = untag
            .iter()
            .map(|u| DeleteItem::untagged(familiar(u)))
            .collect();
        let Some(record) = record else {
            // Deleted meanwhile by someone else.
            return Ok((items, 0));
        };
        items.push(DeleteItem::deleted(id.to_string()));
        tracing::info!(image = %id, "image deleted");

        // Layers and blobs the remaining images still need.
        let mut keep_layers = HashSet::new();
        let mut keep_blobs = HashSet::new();
        for rec in remaining.images.values() {
            keep_blobs.insert(rec.id.clone());
            keep_blobs.insert(rec.manifest.clone());
            keep_blobs.extend(rec.index.iter().cloned());
            keep_blobs.extend(rec.layers.iter().cloned());
            match self.config(&rec.id) {
                Ok(c) => keep_layers.extend(chain_ids(c.diff_ids())),
                Err(e) => {
                    // Unknown layers: keep every layer rather than guess.
                    tracing::warn!(image = %rec.id, error = %e, "image config unreadable; keeping all layers");
                    return Ok((items, 0));
                }
            }
        }
        let mut reclaimed = 0;
        if let Some(config) = &config {
            for chain in chain_ids(config.diff_ids()).iter().rev() {
                if keep_layers.contains(chain) {
                    break;
                }
                let size = self.snapshots.usage(&chain.to_string()).map(|u| u.size);
                match self.snapshots.remove(&chain.to_string()) {
                    Ok(()) => {
                        reclaimed += size.unwrap_or(0);
                        items.push(DeleteItem::deleted(chain.to_string()));
                    }
                    Err(SnapshotError::NotFound { .. }) => {}
                    Err(SnapshotError::InUse { children, .. }) => {
                        tracing::debug!(%chain, ?children, "layer still used; kept");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(%chain, error = %e, "cannot remove layer snapshot");
                        break;
                    }
                }
            }
        }
        let blobs = std::iter::once(&record.id)
            .chain(std::iter::once(&record.manifest))
            .chain(record.index.iter())
            .chain(record.layers.iter());
        for b in blobs {
            if keep_blobs.contains(b) {
                continue;
            }
            match self.content.delete(b) {
                Ok(()) | Err(crate::content::ContentError::NotFound { .. }) => {}
                Err(e) => tracing::warn!(blob = %b, error = %e, "cannot delete blob"),
            }
        }
        Ok((items, reclaimed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_filters() {
        let mut l = BTreeMap::new();
        l.insert("a".to_owned(), "1".to_owned());
        assert!(prune_label_matches(&l, "a"));
        assert!(prune_label_matches(&l, "a=1"));
        assert!(!prune_label_matches(&l, "a!=1"));
        assert!(prune_label_matches(&l, "!b"));
        assert!(!prune_label_matches(&l, "!a"));
        assert_eq!(parse_until("1700000000"), Some(1_700_000_000));
        assert_eq!(parse_until("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert!(parse_until("1h30m").is_some());
        assert!(parse_until("soon").is_none());
        let mut m = BTreeMap::new();
        m.insert("dangling".to_owned(), vec!["false".to_owned()]);
        m.insert("until".to_owned(), vec!["24h".to_owned()]);
        let o = PruneOptions::from_map(&m).unwrap();
        assert!(o.all && o.until.is_some());
    }
}
