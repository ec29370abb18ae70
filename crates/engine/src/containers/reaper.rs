//! The files of removed containers, deleted after the removal has answered.
//!
//! A removal is complete for its caller once the container is out of the
//! store: its record directory and writable layer renamed to temporary names
//! (one rename each, so nothing half-removed is ever listed) and its root
//! filesystem detached from the mount table. What is left needs no answer
//! and is the slow part: the overlay's final teardown (a sync of the upper
//! filesystem) and the unlinking of the trees (where the filesystem is
//! mounted with `discard`, each freed extent is a discard request the
//! unlinking thread waits for). One background thread does it, one job at a
//! time, so a burst of removals (`docker rm -f $(docker ps -aq)`, many
//! `run --rm` exiting) answers as fast as the stop allows and the deletions
//! follow in order instead of competing with it. containerd's snapshot
//! garbage collection defers the same work.
//!
//! Crash safety: a job lost with the process leaves only temporary names,
//! which the next start sweeps ([`crate::store::ContainerStore::sweep_hidden`]
//! and the snapshot store's own temp-dir sweep); the detached mount dies
//! with the process that held it.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use wharf_image::snapshot::Detached;

/// What is left of one removed container.
#[derive(Debug, Default)]
pub(crate) struct Leftovers {
    /// Its root filesystem, detached but not yet torn down.
    pub root: Option<OwnedFd>,
    /// Its writable layer, out of the snapshot store.
    pub snapshot: Option<Detached>,
    /// Directory trees to delete (the hidden record directory).
    pub trees: Vec<PathBuf>,
}

impl Leftovers {
    fn is_empty(&self) -> bool {
        self.root.is_none() && self.snapshot.is_none() && self.trees.is_empty()
    }

    /// Tears down and deletes, in that order (the mount first: its upper
    /// directory is among the trees).
    fn clear(self) {
        drop(self.root);
        if let Some(s) = self.snapshot {
            let path = s.path().to_owned();
            if let Err(err) = s.delete() {
                tracing::warn!(path = %path.display(), error = %err, "cannot delete a removed container's layer");
            }
        }
        for t in self.trees {
            match std::fs::remove_dir_all(&t) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => {
                    tracing::warn!(path = %t.display(), error = %err, "cannot delete a removed container's files")
                }
            }
        }
    }
}

/// The background deleter; its thread starts with the first job and ends
/// when the reaper is dropped, after the queued jobs.
pub(crate) struct Reaper {
    queue: Mutex<Option<mpsc::Sender<Leftovers>>>,
    /// Jobs submitted and not yet finished.
    pending: Arc<(Mutex<usize>, Condvar)>,
}

impl Reaper {
    pub(crate) fn new() -> Reaper {
        Reaper {
            queue: Mutex::new(None),
            pending: Arc::new((Mutex::new(0), Condvar::new())),
        }
    }

    /// Queues `job`; does it on the calling thread if no thread can be
    /// started.
    pub(crate) fn submit(&self, job: Leftovers) {
        if job.is_empty() {
            return;
        }
        *self.pending.0.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if queue.is_none() {
            let (tx, rx) = mpsc::channel::<Leftovers>();
            let pending = self.pending.clone();
            let spawned = std::thread::Builder::new()
                .name("reaper".into())
                .spawn(move || {
                    // Behind the requests it makes room for.
                    let _ =
                        rustix::process::setpriority_process(Some(rustix::thread::gettid()), 10);
                    for job in rx {
                        job.clear();
                        one_done(&pending);
                    }
                });
            match spawned {
                Ok(_) => *queue = Some(tx),
                Err(err) => {
                    tracing::warn!(error = %err, "cannot start the reaper thread; deleting inline");
                }
            }
        }
        let job = match queue.as_ref() {
            Some(tx) => match tx.send(job) {
                Ok(()) => return,
                Err(mpsc::SendError(job)) => job,
            },
            None => job,
        };
        drop(queue);
        job.clear();
        one_done(&self.pending);
    }

    /// Waits until every job submitted so far is done, at most `timeout`;
    /// whether they are.
    pub(crate) fn settle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (count, cv) = &*self.pending;
        let mut n = count.lock().unwrap_or_else(|p| p.into_inner());
        while *n > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            n = cv
                .wait_timeout(n, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }
}

/// Counts one submitted job as finished and wakes [`Reaper::settle`].
fn one_done(pending: &(Mutex<usize>, Condvar)) {
    let (count, cv) = pending;
    *count.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
    cv.notify_all();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletes_in_the_background_and_settles() {
        let dir = tempfile::tempdir().unwrap();
        let r = Reaper::new();
        let mut trees = Vec::new();
        for i in 0..20 {
            let t = dir.path().join(format!("t{i}"));
            std::fs::create_dir_all(t.join("a/b")).unwrap();
            std::fs::write(t.join("a/b/f"), b"x").unwrap();
            trees.push(t.clone());
            r.submit(Leftovers {
                trees: vec![t, dir.path().join("never-existed")],
                ..Leftovers::default()
            });
        }
        assert!(r.settle(Duration::from_secs(10)));
        for t in trees {
            assert!(!t.exists(), "{} left", t.display());
        }
        // Nothing pending: settles at once; an empty job is not queued.
        r.submit(Leftovers::default());
        assert!(r.settle(Duration::ZERO));
    }
}
