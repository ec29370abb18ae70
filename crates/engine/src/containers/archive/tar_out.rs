//! Reading out of a container root: the stat of a path and tar streams of
//! a path (`cp` from a container) or of the whole root (`export`).
//!
//! The walk is descriptor-based: each directory is opened relative to its
//! already-open parent with `O_NOFOLLOW`, each file opened the same way and
//! measured with `fstat` on the open descriptor, so a path swapped for a
//! symlink during the walk fails instead of leading elsewhere. A file that
//! shrinks while it is read is padded with zeros (the header already
//! promised its size); hard links within the stream are emitted as links.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rustix::fs::{Dir, FileType, Mode, OFlags, Stat};
use tokio::sync::mpsc;

use super::fsops::{go_mode, lstat_at, open_dir_in, open_in, resolve};
use super::{ArchiveError, CPath, PathStat, Root};

const CHUNK: usize = 64 << 10;

/// A `Write` that sends what it is given, in chunks, over a channel; a
/// closed channel (the client went away) is a broken pipe.
pub(super) struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    pub fn new(tx: mpsc::Sender<Result<Bytes, io::Error>>) -> ChannelWriter {
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

fn not_found(container: &str, p: &CPath) -> ArchiveError {
    ArchiveError::NotFound {
        container: container.to_owned(),
        path: p.raw.clone(),
    }
}

fn io_err(container: &str, op: &'static str, path: &str, source: io::Error) -> ArchiveError {
    ArchiveError::Io {
        op,
        container: container.to_owned(),
        path: path.to_owned(),
        source,
    }
}

fn is_missing(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR))
}

fn mtime(st: &Stat) -> SystemTime {
    let secs = u64::try_from(st.st_mtime).unwrap_or(0);
    let nanos = u32::try_from(st.st_mtime_nsec).unwrap_or(0);
    UNIX_EPOCH + Duration::new(secs, nanos)
}

/// The stat Docker reports for `p` (a final symlink is not followed unless
/// the path ends in `/` or `/.`).
pub(super) fn stat(root: &Root<'_>, p: &CPath, container: &str) -> Result<PathStat, ArchiveError> {
    let st = lookup(root, p, container)?;
    let link_target = if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
        let r = resolve(&root.fd, &p.comps).map_err(|e| io_err(container, "resolve", &p.raw, e))?;
        let mut s = String::from("/");
        s.push_str(&super::fsops::rel(&r).to_string_lossy());
        s.trim_end_matches("/.").to_owned()
    } else {
        String::new()
    };
    Ok(PathStat {
        name: p.base_name(),
        size: st.st_size,
        mode: go_mode(&st),
        mtime: crate::time::rfc3339_nano(mtime(&st)),
        link_target,
    })
}

fn lookup(root: &Root<'_>, p: &CPath, container: &str) -> Result<Stat, ArchiveError> {
    let wrap = |e: io::Error| {
        if is_missing(&e) {
            not_found(container, p)
        } else {
            io_err(container, "stat", &p.raw, e)
        }
    };
    let Some((name, parent)) = p.comps.split_last() else {
        return rustix::fs::fstat(&root.fd).map_err(|e| wrap(e.into()));
    };
    if p.follow {
        let fd = open_in(&root.fd, &p.comps, OFlags::PATH).map_err(wrap)?;
        return rustix::fs::fstat(&fd).map_err(|e| wrap(e.into()));
    }
    let dir = open_dir_in(&root.fd, parent).map_err(wrap)?;
    lstat_at(&dir, name)
        .map_err(wrap)?
        .ok_or_else(|| not_found(container, p))
}

/// Writes a tar of `p` (entries named after its base name) to `w`.
pub(super) fn write_path(root: &Root<'_>, p: &CPath, w: &mut impl Write) -> io::Result<()> {
    let mut t = Tar::new(w);
    let base = match p.base_name().as_str() {
        "/" => ".".to_owned(),
        b => b.to_owned(),
    };
    match p.comps.split_last() {
        Some((name, parent)) if !p.follow => {
            let dir = open_dir_in(&root.fd, parent)?;
            let st =
                lstat_at(&dir, name)?.ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
            t.entry(&dir, name, &st, &base)?;
        }
        _ => {
            // The root itself, or a path whose final symlink is followed.
            let fd = open_in(&root.fd, &p.comps, OFlags::PATH)?;
            let st = rustix::fs::fstat(&fd)?;
            if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                let dir = open_dir_in(&root.fd, &p.comps)?;
                t.header_only(&st, &format!("{base}/"), tar::EntryType::Directory)?;
                t.walk(&dir, &base)?;
            } else {
                let f = open_in(&root.fd, &p.comps, OFlags::RDONLY)?;
                t.file(f, &st, &base)?;
            }
        }
    }
    t.finish()
}

/// Writes a tar of the whole root (entries relative, no `./` prefix).
pub(super) fn write_tree(root: &Root<'_>, w: &mut impl Write) -> io::Result<()> {
    let mut t = Tar::new(w);
    let dir = open_dir_in(&root.fd, &[])?;
    t.walk(&dir, "")?;
    t.finish()
}

/// A tar written from descriptors. Two forms: a tree (`cp`, `export`:
/// directories with their contents) and an image layer (`commit`: each
/// entry alone, the caller walks the change list; regular files carry
/// their `security.capability`, the one extended attribute Docker's layers
/// keep; deletions are `.wh.` whiteout files).
pub(super) struct Tar<'w, W: Write> {
    b: tar::Builder<&'w mut W>,
    /// First name of each multiply-linked file written, by (dev, ino).
    links: HashMap<(u64, u64), String>,
    layer: bool,
}

impl<'w, W: Write> Tar<'w, W> {
    fn new(w: &'w mut W) -> Self {
        let mut b = tar::Builder::new(w);
        b.follow_symlinks(false);
        Tar {
            b,
            links: HashMap::new(),
            layer: false,
        }
    }

    /// The image-layer form (see the type's documentation).
    pub(super) fn layer(w: &'w mut W) -> Self {
        Tar {
            layer: true,
            ..Tar::new(w)
        }
    }

    /// A whiteout: an empty `.wh.<name>` file, owned by root.
    pub(super) fn whiteout(&mut self, name: &str) -> io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o600);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(0);
        self.b.append_data(&mut h, name, io::empty())
    }

    pub(super) fn finish(self) -> io::Result<()> {
        let w = self.b.into_inner()?;
        w.flush()
    }

    fn header(st: &Stat, typ: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(typ);
        h.set_mode(st.st_mode & 0o7777);
        h.set_uid(u64::from(st.st_uid));
        h.set_gid(u64::from(st.st_gid));
        h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
        h.set_size(0);
        h
    }

    fn header_only(&mut self, st: &Stat, name: &str, typ: tar::EntryType) -> io::Result<()> {
        let mut h = Self::header(st, typ);
        self.b.append_data(&mut h, name, io::empty())
    }

    fn file(&mut self, f: OwnedFd, st: &Stat, name: &str) -> io::Result<()> {
        if self.layer {
            let mut buf = [0u8; 64];
            if let Ok(n) = rustix::fs::fgetxattr(&f, "security.capability", &mut buf) {
                self.b.append_pax_extensions([(
                    "SCHILY.xattr.security.capability",
                    &buf[..n.min(buf.len())],
                )])?;
            }
        }
        // Measure the open file, not the name.
        let st2 = rustix::fs::fstat(&f)?;
        let size = u64::try_from(st2.st_size).unwrap_or(0);
        let mut h = Self::header(st, tar::EntryType::Regular);
        h.set_size(size);
        let reader = Exact {
            f: File::from(f),
            left: size,
        };
        self.b.append_data(&mut h, name, reader)
    }

    /// One entry (and, for a directory of a tree, everything below it).
    pub(super) fn entry<D: AsFd>(
        &mut self,
        dir: D,
        name: &OsStr,
        st: &Stat,
        tar_name: &str,
    ) -> io::Result<()> {
        let dir = dir.as_fd();
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory if self.layer => {
                self.header_only(st, &format!("{tar_name}/"), tar::EntryType::Directory)
            }
            FileType::Directory => {
                let sub = rustix::fs::openat(
                    dir,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                self.header_only(st, &format!("{tar_name}/"), tar::EntryType::Directory)?;
                self.walk(&sub, tar_name)
            }
            FileType::RegularFile => {
                let key = (st.st_dev, st.st_ino);
                if st.st_nlink > 1 {
                    if let Some(first) = self.links.get(&key) {
                        let mut h = Self::header(st, tar::EntryType::Link);
                        let first = first.clone();
                        return self.b.append_link(&mut h, tar_name, first);
                    }
                    self.links.insert(key, tar_name.to_owned());
                }
                let f = rustix::fs::openat(
                    dir,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                self.file(f, st, tar_name)
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(dir, name, Vec::new())?;
                let mut h = Self::header(st, tar::EntryType::Symlink);
                self.b.append_link(
                    &mut h,
                    tar_name,
                    Path::new(OsStr::from_bytes(target.as_bytes())),
                )
            }
            t @ (FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo) => {
                let typ = match t {
                    FileType::CharacterDevice => tar::EntryType::Char,
                    FileType::BlockDevice => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                };
                let mut h = Self::header(st, typ);
                if typ != tar::EntryType::Fifo {
                    h.set_device_major(rustix::fs::major(st.st_rdev))?;
                    h.set_device_minor(rustix::fs::minor(st.st_rdev))?;
                }
                self.b.append_data(&mut h, tar_name, io::empty())
            }
            // Sockets (and unknown types) have no tar form.
            _ => Ok(()),
        }
    }

    /// Everything below the open directory `dir`, named under `prefix`.
    fn walk(&mut self, dir: &OwnedFd, prefix: &str) -> io::Result<()> {
        let mut names: Vec<OsString> = Vec::new();
        for ent in Dir::read_from(dir)? {
            let ent = ent?;
            let n = ent.file_name().to_bytes();
            if n == b"." || n == b".." {
                continue;
            }
            names.push(OsStr::from_bytes(n).to_owned());
        }
        names.sort();
        for n in names {
            let Some(st) = lstat_at(dir, &n)? else {
                continue; // removed meanwhile
            };
            let tar_name = if prefix.is_empty() {
                n.to_string_lossy().into_owned()
            } else {
                format!("{prefix}/{}", n.to_string_lossy())
            };
            match self.entry(dir, &n, &st, &tar_name) {
                Ok(()) => {}
                // Vanished or replaced by another type while we walked.
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ENOENT) | Some(libc::ELOOP) | Some(libc::ENOTDIR)
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Exactly `left` bytes of a file: zero-padded if it shrank meanwhile.
struct Exact {
    f: File,
    left: u64,
}

impl Read for Exact {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = usize::try_from(self.left.min(buf.len() as u64)).unwrap_or(buf.len());
        let n = match self.f.read(&mut buf[..want])? {
            0 => {
                buf[..want].fill(0);
                want
            }
            n => n,
        };
        self.left -= n as u64;
        Ok(n)
    }
}
