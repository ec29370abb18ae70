//! Keeps the removal of layers and blobs away from operations that are
//! adding layers and blobs for an image they have not recorded yet.
//!
//! A pull (or load, import, commit, push) writes blobs and commits layer
//! snapshots first and records the image last; `docker rmi` and `image
//! prune` decide which layers and blobs no *recorded* image needs and delete
//! them. Without coordination a removal could delete a layer a pull in
//! flight is about to reference. Operations that add hold a shared
//! [`Lease`] for their whole run; removals take the [`Exclusive`] side,
//! waiting for the leases in flight, and new leases wait while a removal is
//! waiting or running (removals are short; pulls are not, so a removal is not
//! starved by a stream of pulls).
//!
//! Every [`crate::image_store::ImageStore`] opened on the same directory in a
//! process shares one lock ([`GcLock::for_root`]). Guards are `Send`: an async
//! caller takes one on a blocking thread and holds it across `.await`s.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};

/// The lock of one image store.
#[derive(Debug, Default)]
pub struct GcLock {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    leases: usize,
    exclusive: bool,
    waiting_exclusive: usize,
}

/// Shared: layers and blobs are being added.
#[derive(Debug)]
#[must_use = "the lease ends when dropped"]
pub struct Lease(Arc<GcLock>);

/// Exclusive: layers and blobs are being removed.
#[derive(Debug)]
#[must_use = "the exclusive hold ends when dropped"]
pub struct Exclusive(Arc<GcLock>);

impl GcLock {
    /// The process-wide lock of the store in `root`.
    pub fn for_root(root: &Path) -> Arc<GcLock> {
        static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Weak<GcLock>>>> = OnceLock::new();
        let key = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        let mut map = LOCKS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.retain(|_, w| w.strong_count() > 0);
        if let Some(lock) = map.get(&key).and_then(Weak::upgrade) {
            return lock;
        }
        let lock = Arc::new(GcLock::default());
        map.insert(key, Arc::downgrade(&lock));
        lock
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'a>(&self, g: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed.wait(g).unwrap_or_else(|p| p.into_inner())
    }

    /// Blocks while a removal runs or waits, then holds a shared lease.
    pub fn lease(self: &Arc<Self>) -> Lease {
        let mut g = self.state();
        while g.exclusive || g.waiting_exclusive > 0 {
            g = self.wait(g);
        }
        g.leases += 1;
        Lease(self.clone())
    }

    /// Blocks until no lease and no other removal is held, then holds the
    /// lock exclusively.
    pub fn exclusive(self: &Arc<Self>) -> Exclusive {
        let mut g = self.state();
        g.waiting_exclusive += 1;
        while g.exclusive || g.leases > 0 {
            g = self.wait(g);
        }
        g.waiting_exclusive -= 1;
        g.exclusive = true;
        Exclusive(self.clone())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.0.state().leases -= 1;
        self.0.changed.notify_all();
    }
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        self.0.state().exclusive = false;
        self.0.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::*;

    #[test]
    fn one_lock_per_root() {
        let dir = tempfile::tempdir().unwrap();
        let a = GcLock::for_root(dir.path());
        let b = GcLock::for_root(&dir.path().join("."));
        assert!(Arc::ptr_eq(&a, &b));
        let other = tempfile::tempdir().unwrap();
        assert!(!Arc::ptr_eq(&a, &GcLock::for_root(other.path())));
    }

    #[test]
    fn removal_waits_for_leases_and_new_leases_wait_for_it() {
        let lock = Arc::new(GcLock::default());
        let lease = lock.lease();
        let removed = Arc::new(AtomicBool::new(false));
        let remover = {
            let (lock, removed) = (lock.clone(), removed.clone());
            std::thread::spawn(move || {
                let x = lock.exclusive();
                removed.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(50));
                drop(x);
            })
        };
        // The removal is queued behind the lease...
        while lock.state().waiting_exclusive == 0 {
            std::thread::yield_now();
        }
        assert!(
            !removed.load(Ordering::SeqCst),
            "removal ran during a lease"
        );
        // ...and a new lease queues behind the removal.
        let late = {
            let (lock, removed) = (lock.clone(), removed.clone());
            std::thread::spawn(move || {
                let _l = lock.lease();
                assert!(
                    removed.load(Ordering::SeqCst),
                    "lease overtook a waiting removal"
                );
            })
        };
        std::thread::sleep(Duration::from_millis(20));
        drop(lease);
        remover.join().unwrap();
        late.join().unwrap();
        let g = lock.state();
        assert_eq!((g.leases, g.exclusive, g.waiting_exclusive), (0, false, 0));
    }
}
