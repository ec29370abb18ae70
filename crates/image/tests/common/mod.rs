//! Fixture layers built in-test with the `tar` crate: raw headers so that
//! hostile names (`..`, absolute) can be written, PAX records for xattrs and
//! long names, and archives with or without the end-of-archive footer.
#![allow(dead_code)] // each test file uses a different subset

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub struct LayerBuilder {
    b: tar::Builder<Vec<u8>>,
}

impl Default for LayerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

pub const MTIME: u64 = 1_600_000_000;

impl LayerBuilder {
    pub fn new() -> Self {
        LayerBuilder {
            b: tar::Builder::new(Vec::new()),
        }
    }

    /// Appends one entry with a raw name (no validation) and optional link name.
    #[allow(clippy::too_many_arguments)]
    pub fn raw(
        &mut self,
        name: &str,
        kind: tar::EntryType,
        mode: u32,
        uid: u64,
        gid: u64,
        link: &str,
        data: &[u8],
    ) -> &mut Self {
        if name.len() > 99 || link.len() > 99 {
            let mut recs = Vec::new();
            if name.len() > 99 {
                recs.push(("path", name.as_bytes()));
            }
            if link.len() > 99 {
                recs.push(("linkpath", link.as_bytes()));
            }
            self.pax(&recs);
        }
        let mut h = tar::Header::new_ustar();
        {
            let u = h.as_ustar_mut().unwrap();
            let n = name.as_bytes();
            let n = &n[..n.len().min(99)];
            u.name[..n.len()].copy_from_slice(n);
            let l = link.as_bytes();
            let l = &l[..l.len().min(99)];
            u.linkname[..l.len()].copy_from_slice(l);
        }
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(MTIME);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    /// Appends a PAX extended header applying to the next entry.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut body = Vec::new();
        for (k, v) in records {
            let rest = k.len() + v.len() + 3; // ' ' '=' '\n'
            let mut len = rest + 1;
            while len.to_string().len() + rest != len {
                len = len.to_string().len() + rest;
            }
            body.extend_from_slice(format!("{len} {k}=").as_bytes());
            body.extend_from_slice(v);
            body.push(b'\n');
        }
        let mut h = tar::Header::new_ustar();
        h.as_ustar_mut().unwrap().name[..9].copy_from_slice(b"PaxHeader");
        h.set_entry_type(tar::EntryType::XHeader);
        h.set_mode(0o644);
        h.set_size(body.len() as u64);
        h.set_cksum();
        self.b.append(&h, &body[..]).unwrap();
        self
    }

    pub fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
        self.raw(name, tar::EntryType::Directory, mode, 0, 0, "", b"")
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.raw(name, tar::EntryType::Regular, 0o644, 0, 0, "", data)
    }

    pub fn file_full(
        &mut self,
        name: &str,
        data: &[u8],
        mode: u32,
        uid: u64,
        gid: u64,
    ) -> &mut Self {
        self.raw(name, tar::EntryType::Regular, mode, uid, gid, "", data)
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(name, tar::EntryType::Symlink, 0o777, 0, 0, target, b"")
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(name, tar::EntryType::Link, 0o644, 0, 0, target, b"")
    }

    pub fn device(
        &mut self,
        name: &str,
        kind: tar::EntryType,
        major: u32,
        minor: u32,
    ) -> &mut Self {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_entry_type(kind);
        h.set_mode(0o620);
        h.set_uid(0);
        h.set_gid(5);
        h.set_mtime(MTIME);
        h.set_size(0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        h.set_cksum();
        self.b.append(&h, &[][..]).unwrap();
        self
    }

    pub fn whiteout(&mut self, dir: &str, name: &str) -> &mut Self {
        let p = if dir.is_empty() {
            format!(".wh.{name}")
        } else {
            format!("{dir}/.wh.{name}")
        };
        self.file(&p, b"")
    }

    pub fn opaque(&mut self, dir: &str) -> &mut Self {
        self.file(&format!("{dir}/.wh..wh..opq"), b"")
    }

    /// The archive with its two zero blocks.
    pub fn finish(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }

    /// The archive without the end-of-archive blocks (as umoci writes).
    pub fn finish_without_footer(self) -> Vec<u8> {
        let mut v = self.b.into_inner().unwrap();
        v.truncate(v.len() - 1024);
        v
    }
}

/// A temp dir holding `target/` (what a layer is applied to) and
/// `outside/` (a sentinel that must never change).
pub struct Arena {
    pub tmp: tempfile::TempDir,
    pub target: PathBuf,
    pub outside: PathBuf,
}

impl Arena {
    pub fn new() -> Arena {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("target");
        let outside = tmp.path().join("outside");
        fs::create_dir(&target).unwrap();
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("secret"), b"secret").unwrap();
        Arena {
            tmp,
            target,
            outside,
        }
    }

    /// Panics unless `outside/` still holds exactly the untouched `secret`.
    pub fn assert_outside_untouched(&self) {
        let names: Vec<_> = fs::read_dir(&self.outside)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            names,
            vec!["secret".to_owned()],
            "something was written outside the target"
        );
        let md = fs::symlink_metadata(self.outside.join("secret")).unwrap();
        assert!(md.is_file());
        assert_eq!(md.nlink(), 1, "a hardlink to the outside file was created");
        assert_eq!(fs::read(self.outside.join("secret")).unwrap(), b"secret");
        // Nothing else appeared beside target/ and outside/ either.
        let mut top: Vec<_> = fs::read_dir(self.tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        top.sort();
        assert_eq!(top, vec!["outside".to_owned(), "target".to_owned()]);
    }
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

/// Lists a tree as sorted relative paths (for failure messages).
pub fn tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            out.push(p.strip_prefix(root).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}
