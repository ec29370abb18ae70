//! Inode flags (`FS_IOC_GETFLAGS`/`FS_IOC_SETFLAGS`, `chattr`).
//!
//! wharf sets one: `FS_TOPDIR_FL` ("T") on the directories that hold one
//! subtree per container (`containers/`, the container snapshots, the shims'
//! and the runtime's state directories). ext4's Orlov allocator then treats
//! each container's directory as the top of a hierarchy and spreads them
//! over the block groups instead of packing them into their parent's group.
//! That matters on ext4 without a journal: there every inode allocation
//! skips, one buffer-cache lookup each, the inodes of its group deleted in
//! the last one to six minutes (`find_inode_bit` → `recently_deleted`), so
//! with every container's files in one group, churn (create, remove, create)
//! made each new file scan past thousands of them. The flag has a price:
//! Orlov scans every block group for each directory created under it
//! (0.1-0.3 ms on a 2,000-group filesystem), so [`spread_subtrees`] sets
//! it only where the scan it saves exists: ext4 without a journal (a
//! journaled ext4, the common case, never checks recently deleted inodes).

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustix::fs::{IFlags, Mode, OFlags};

/// Sets `FS_TOPDIR_FL` on the directory `dir`. Returns `Ok(true)` when it
/// set the flag, `Ok(false)` when it was already set, and the error when the
/// filesystem has no inode flags (`ENOTTY`, `EOPNOTSUPP`, `EINVAL`) or the
/// caller may not change them: callers treat it as a hint and log at most.
pub fn mark_top_directory(dir: &Path) -> io::Result<bool> {
    let fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )?;
    let flags = rustix::fs::ioctl_getflags(&fd)?;
    if flags.contains(IFlags::TOPDIR) {
        return Ok(false);
    }
    rustix::fs::ioctl_setflags(&fd, flags | IFlags::TOPDIR)?;
    Ok(true)
}

/// Marks `dir` with [`mark_top_directory`] when it is on ext4 without a
/// journal (see the module documentation); `Ok(false)` elsewhere.
pub fn spread_subtrees(dir: &Path) -> io::Result<bool> {
    if !ext4_without_journal(dir) {
        return Ok(false);
    }
    mark_top_directory(dir)
}

/// `statfs` magic of ext2/3/4.
const EXT4_SUPER_MAGIC: i64 = 0xEF53;

/// Whether `path` is on an ext4 filesystem that has no journal: ext4 names
/// each mounted filesystem after its block device in `/sys/fs/ext4`, whose
/// `journal_task` reads `<none>` without a journal.
pub fn ext4_without_journal(path: &Path) -> bool {
    let Ok(fs) = rustix::fs::statfs(path) else {
        return false;
    };
    #[allow(clippy::unnecessary_cast)] // f_type's type differs between libcs
    if fs.f_type as i64 != EXT4_SUPER_MAGIC {
        return false;
    }
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    let dev = meta.dev();
    let (major, minor) = (rustix::fs::major(dev), rustix::fs::minor(dev));
    let Ok(link) = std::fs::read_link(format!("/sys/dev/block/{major}:{minor}")) else {
        return false;
    };
    let Some(name) = link.file_name() else {
        return false;
    };
    std::fs::read_to_string(Path::new("/sys/fs/ext4").join(name).join("journal_task"))
        .is_ok_and(|t| no_journal(&t))
}

fn no_journal(journal_task: &str) -> bool {
    journal_task.trim() == "<none>"
}

/// Whether `dir` carries `FS_TOPDIR_FL` (`None`: the filesystem has no inode
/// flags).
pub fn is_top_directory(dir: &Path) -> io::Result<Option<bool>> {
    let fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )?;
    match rustix::fs::ioctl_getflags(&fd) {
        Ok(f) => Ok(Some(f.contains(IFlags::TOPDIR))),
        Err(rustix::io::Errno::NOTTY | rustix::io::Errno::OPNOTSUPP) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ext4_without_a_journal_is_spread() {
        assert!(no_journal("<none>\n"));
        assert!(!no_journal("jbd2/vda-8\n"));
        assert!(!ext4_without_journal(Path::new("/proc")));
        assert!(!ext4_without_journal(Path::new("/sys")));
        assert!(!ext4_without_journal(Path::new("/nonexistent")));
        // This host's temporary directory: agrees with the kernel's own view
        // when it is ext4 (the CI machine's root is ext4 without a journal).
        let tmp = std::env::temp_dir();
        let is_ext4 = rustix::fs::statfs(&tmp).is_ok_and(|f| {
            #[allow(clippy::unnecessary_cast)]
            let t = f.f_type as i64;
            t == EXT4_SUPER_MAGIC
        });
        if !is_ext4 {
            assert!(!ext4_without_journal(&tmp));
            assert!(!spread_subtrees(&tmp).unwrap());
            return;
        }
        // ext4: a journaled filesystem has a jbd2 entry named after its
        // device (`/proc/fs/jbd2/<dev>-8`).
        let dev = std::fs::metadata(&tmp).unwrap().dev();
        let link = std::fs::read_link(format!(
            "/sys/dev/block/{}:{}",
            rustix::fs::major(dev),
            rustix::fs::minor(dev)
        ))
        .unwrap();
        let name = link.file_name().unwrap().to_string_lossy().into_owned();
        let journaled = std::fs::read_dir("/proc/fs/jbd2").is_ok_and(|d| {
            d.flatten().any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("{name}-"))
            })
        });
        assert_eq!(ext4_without_journal(&tmp), !journaled, "{name}");
    }

    #[test]
    fn marks_a_directory_once_where_the_filesystem_has_inode_flags() {
        let base = std::env::temp_dir().join(format!("wharf-topdir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("sub")).unwrap();
        let supported = is_top_directory(&base).unwrap();
        match supported {
            Some(before) => {
                assert!(!before, "a fresh directory is not a top directory");
                assert!(mark_top_directory(&base).unwrap());
                assert_eq!(is_top_directory(&base).unwrap(), Some(true));
                assert!(
                    !mark_top_directory(&base).unwrap(),
                    "second call is a no-op"
                );
                assert_eq!(
                    is_top_directory(&base.join("sub")).unwrap(),
                    Some(false),
                    "the flag is not inherited by existing children"
                );
            }
            None => assert!(mark_top_directory(&base).is_err()),
        }
        // A symlink is refused rather than followed.
        std::os::unix::fs::symlink(&base, base.join("link")).unwrap();
        assert!(mark_top_directory(&base.join("link")).is_err());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
