//! CVE-2019-5736 class: the runtime binary executing inside a container's
//! namespaces (the init before `start`) must not be writable through
//! `/proc/<pid>/exe`, and the host binary must stay unchanged.

use std::io::ErrorKind;

use wharf_testkit::{Bundle, Runtime, require_root, unique_id};

#[test]
fn init_exe_cannot_be_written() {
    require_root();
    let rt = Runtime::new(env!("CARGO_BIN_EXE_wharf-runtime")).expect("runtime");
    let mut bundle = Bundle::new().expect("bundle");
    bundle.probe_args(&["exit", "0"]);
    let id = unique_id("seal");
    rt.create(&bundle, &id).expect("create");
    let pid = rt.state(&id).expect("state")["pid"].as_i64().expect("pid");
    let exe = format!("/proc/{pid}/exe");
    let err = std::fs::OpenOptions::new()
        .append(true)
        .open(&exe)
        .expect_err("the init's exe must not open for writing");
    // EROFS (read-only overlay view), EPERM (sealed memfd fallback), or
    // ETXTBSY (the cached read-only bind view: the kernel checks that the
    // inode is executing before it checks the mount).
    assert!(
        matches!(
            err.kind(),
            ErrorKind::ReadOnlyFilesystem
                | ErrorKind::PermissionDenied
                | ErrorKind::ExecutableFileBusy
        ),
        "unexpected error writing {exe}: {err}"
    );
    // Busy is not enough (it ends when the binary stops running, which is
    // when CVE-2019-5736 writes): the view itself must refuse writes, as a
    // sealed memfd or a file on a read-only mount.
    assert!(
        unwritable_view(&exe),
        "{exe} is neither sealed nor read-only"
    );
    let host = std::fs::canonicalize(env!("CARGO_BIN_EXE_wharf-runtime")).unwrap();
    let target = std::fs::read_link(&exe).unwrap();
    assert_ne!(target, host, "the init must not execute the host binary");
    rt.delete_force(&id).expect("delete");
}

/// Whether the file behind `exe` refuses writes for good: write-sealed
/// (memfd) or on a read-only mount.
fn unwritable_view(exe: &str) -> bool {
    let f = std::fs::File::open(exe).unwrap();
    let sealed =
        rustix::fs::fcntl_get_seals(&f).is_ok_and(|s| s.contains(rustix::fs::SealFlags::WRITE));
    let ro = rustix::fs::fstatvfs(&f)
        .unwrap()
        .f_flag
        .contains(rustix::fs::StatVfsMountFlags::RDONLY);
    sealed || ro
}

const CACHE: &str = wharf_runtime::selfexe::SEALED_CACHE_DIR;

/// How many mounts sit on `path` (from our mountinfo).
fn mounts_on(path: &std::path::Path) -> usize {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let p = path.to_string_lossy();
    info.lines()
        .filter(|l| l.split(' ').nth(4) == Some(&*p))
        .count()
}

/// The cache entry of a binary: named by its device and inode.
fn entry_of(binary: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(binary).unwrap();
    std::path::Path::new(CACHE).join(format!("{:x}-{:x}", m.dev(), m.ino()))
}

#[test]
fn cached_view_is_read_only_and_reused() {
    require_root();
    let rt = Runtime::new(env!("CARGO_BIN_EXE_wharf-runtime")).expect("runtime");
    let entry = entry_of(std::path::Path::new(env!("CARGO_BIN_EXE_wharf-runtime")));
    let mut bundle = Bundle::new().expect("bundle");
    bundle.probe_args(&["exit", "0"]);
    let ids = [unique_id("cache-a"), unique_id("cache-b")];
    for id in &ids {
        rt.create(&bundle, id).expect("create");
        let pid = rt.state(id).expect("state")["pid"].as_i64().expect("pid");
        let exe = format!("/proc/{pid}/exe");
        assert_eq!(
            std::fs::read_link(&exe).unwrap(),
            entry,
            "the init runs from the cached view"
        );
        let err = std::fs::OpenOptions::new()
            .append(true)
            .open(&exe)
            .expect_err("the cached view must not open for writing");
        assert!(
            matches!(
                err.kind(),
                ErrorKind::ReadOnlyFilesystem | ErrorKind::ExecutableFileBusy
            ),
            "{exe}: {err}"
        );
        assert!(unwritable_view(&exe), "{exe} is not on a read-only mount");
        // One mount, made by the first invocation that needed it and reused.
        assert_eq!(mounts_on(&entry), 1, "mounts on {}", entry.display());
    }
    for id in &ids {
        rt.delete_force(id).expect("delete");
    }
}

/// Removes a copied runtime binary and its cache entry, even on failure.
struct CopiedBinary {
    path: std::path::PathBuf,
    entry: std::path::PathBuf,
}

impl CopiedBinary {
    fn new(dir: &std::path::Path, name: &str) -> Self {
        let path = dir.join(name);
        std::fs::copy(env!("CARGO_BIN_EXE_wharf-runtime"), &path).unwrap();
        let entry = entry_of(&path);
        CopiedBinary { path, entry }
    }
}

impl Drop for CopiedBinary {
    fn drop(&mut self) {
        while rustix::mount::unmount(
            &self.entry,
            rustix::mount::UnmountFlags::DETACH | rustix::mount::UnmountFlags::NOFOLLOW,
        )
        .is_ok()
        {}
        let _ = std::fs::remove_file(&self.entry);
        let _ = std::fs::remove_file(&self.path);
    }
}

#[test]
fn views_of_deleted_binaries_are_removed() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let mut bundle = Bundle::new().expect("bundle");
    bundle.probe_args(&["exit", "0"]);
    // 1. An "old" build runs once: its view is cached.
    let old = CopiedBinary::new(dir.path(), "wharf-runtime-old");
    let rt = Runtime::new(&old.path).expect("runtime");
    let id = unique_id("cache-old");
    rt.create(&bundle, &id).expect("create with the old binary");
    rt.delete_force(&id).expect("delete");
    assert_eq!(mounts_on(&old.entry), 1, "the old binary's view is mounted");
    // 2. It is replaced: the next new view removes the old one.
    std::fs::remove_file(&old.path).unwrap();
    let new = CopiedBinary::new(dir.path(), "wharf-runtime-new");
    let rt = Runtime::new(&new.path).expect("runtime");
    let id = unique_id("cache-new");
    rt.create(&bundle, &id).expect("create with the new binary");
    rt.delete_force(&id).expect("delete");
    assert_eq!(mounts_on(&new.entry), 1, "the new binary's view is mounted");
    assert_eq!(
        mounts_on(&old.entry),
        0,
        "the deleted binary's view is gone"
    );
    assert!(!old.entry.exists(), "{} removed", old.entry.display());
}
