//! Parsing OCI mount options into mount(2) flags, propagation changes,
//! recursive attributes (mount_setattr) and filesystem data.

/// What one OCI mount's option list means.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// MS_* flags for the mount (and the bind remount).
    pub flags: u64,
    /// Flags explicitly cleared (e.g. `rw`, `suid`), used when remounting.
    pub cleared: u64,
    /// Propagation changes applied after mounting (MS_SHARED|MS_REC, ...).
    pub propagation: Vec<u64>,
    /// Recursive attributes to set / clear with mount_setattr(AT_RECURSIVE).
    pub rec_set: u64,
    pub rec_clear: u64,
    /// Comma-joined filesystem-specific options.
    pub data: String,
    pub bind: bool,
    pub recursive_bind: bool,
    /// `tmpcopyup`: copy the original directory's content into the new tmpfs.
    pub tmpcopyup: bool,
    /// `idmap`/`ridmap` requested.
    pub idmap: bool,
}

const MS_RDONLY: u64 = libc::MS_RDONLY;
const MS_NOSUID: u64 = libc::MS_NOSUID;
const MS_NODEV: u64 = libc::MS_NODEV;
const MS_NOEXEC: u64 = libc::MS_NOEXEC;
const MS_SYNCHRONOUS: u64 = libc::MS_SYNCHRONOUS;
const MS_MANDLOCK: u64 = libc::MS_MANDLOCK;
const MS_DIRSYNC: u64 = libc::MS_DIRSYNC;
const MS_NOATIME: u64 = libc::MS_NOATIME;
const MS_NODIRATIME: u64 = libc::MS_NODIRATIME;
const MS_RELATIME: u64 = libc::MS_RELATIME;
const MS_STRICTATIME: u64 = libc::MS_STRICTATIME;
const MS_LAZYTIME: u64 = libc::MS_LAZYTIME;
const MS_SILENT: u64 = libc::MS_SILENT;
const MS_NOSYMFOLLOW: u64 = 256;
const MS_REC: u64 = libc::MS_REC;
const MS_I_VERSION: u64 = libc::MS_I_VERSION;

/// Parses an OCI mount option list (runtime-spec config.md "Mounts").
pub fn parse(options: &[String]) -> MountOptions {
    use wharf_sys::mount as a;
    let mut o = MountOptions::default();
    let mut data = Vec::new();
    for opt in options {
        let (set, clear): (u64, u64) = match opt.as_str() {
            "defaults" => (0, 0),
            "ro" => (MS_RDONLY, 0),
            "rw" => (0, MS_RDONLY),
            "suid" => (0, MS_NOSUID),
            "nosuid" => (MS_NOSUID, 0),
            "dev" => (0, MS_NODEV),
            "nodev" => (MS_NODEV, 0),
            "exec" => (0, MS_NOEXEC),
            "noexec" => (MS_NOEXEC, 0),
            "sync" => (MS_SYNCHRONOUS, 0),
            "async" => (0, MS_SYNCHRONOUS),
            "dirsync" => (MS_DIRSYNC, 0),
            "remount" => (0, 0),
            "mand" => (MS_MANDLOCK, 0),
            "nomand" => (0, MS_MANDLOCK),
            "atime" => (0, MS_NOATIME),
            "noatime" => (MS_NOATIME, 0),
            "diratime" => (0, MS_NODIRATIME),
            "nodiratime" => (MS_NODIRATIME, 0),
            "relatime" => (MS_RELATIME, 0),
            "norelatime" => (0, MS_RELATIME),
            "strictatime" => (MS_STRICTATIME, 0),
            "nostrictatime" => (0, MS_STRICTATIME),
            "lazytime" => (MS_LAZYTIME, 0),
            "nolazytime" => (0, MS_LAZYTIME),
            "iversion" => (MS_I_VERSION, 0),
            "noiversion" => (0, MS_I_VERSION),
            "silent" => (MS_SILENT, 0),
            "loud" => (0, MS_SILENT),
            "symfollow" => (0, MS_NOSYMFOLLOW),
            "nosymfollow" => (MS_NOSYMFOLLOW, 0),
            "bind" => {
                o.bind = true;
                (0, 0)
            }
            "rbind" => {
                o.bind = true;
                o.recursive_bind = true;
                (0, 0)
            }
            "tmpcopyup" => {
                o.tmpcopyup = true;
                (0, 0)
            }
            "idmap" | "ridmap" => {
                o.idmap = true;
                (0, 0)
            }
            p @ ("private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave"
            | "unbindable" | "runbindable") => {
                let base = match p.trim_start_matches('r') {
                    "private" => libc::MS_PRIVATE,
                    "shared" => libc::MS_SHARED,
                    "slave" => libc::MS_SLAVE,
                    _ => libc::MS_UNBINDABLE,
                };
                let rec = if p.starts_with('r') && p != "rw" {
                    MS_REC
                } else {
                    0
                };
                o.propagation.push(base | rec);
                (0, 0)
            }
            r @ ("rro" | "rrw" | "rnosuid" | "rsuid" | "rnodev" | "rdev" | "rnoexec" | "rexec"
            | "rnodiratime" | "rdiratime" | "rrelatime" | "rnorelatime" | "rnoatime"
            | "ratime" | "rstrictatime" | "rnostrictatime" | "rnosymfollow" | "rsymfollow") => {
                let (s, c) = match r {
                    "rro" => (a::MOUNT_ATTR_RDONLY, 0),
                    "rrw" => (0, a::MOUNT_ATTR_RDONLY),
                    "rnosuid" => (a::MOUNT_ATTR_NOSUID, 0),
                    "rsuid" => (0, a::MOUNT_ATTR_NOSUID),
                    "rnodev" => (a::MOUNT_ATTR_NODEV, 0),
                    "rdev" => (0, a::MOUNT_ATTR_NODEV),
                    "rnoexec" => (a::MOUNT_ATTR_NOEXEC, 0),
                    "rexec" => (0, a::MOUNT_ATTR_NOEXEC),
                    "rnodiratime" => (a::MOUNT_ATTR_NODIRATIME, 0),
                    "rdiratime" => (0, a::MOUNT_ATTR_NODIRATIME),
                    "rrelatime" => (a::MOUNT_ATTR_RELATIME, a::MOUNT_ATTR__ATIME),
                    "rnorelatime" | "ratime" | "rnostrictatime" => (0, a::MOUNT_ATTR__ATIME),
                    "rnoatime" => (a::MOUNT_ATTR_NOATIME, a::MOUNT_ATTR__ATIME),
                    "rstrictatime" => (a::MOUNT_ATTR_STRICTATIME, a::MOUNT_ATTR__ATIME),
                    "rnosymfollow" => (a::MOUNT_ATTR_NOSYMFOLLOW, 0),
                    _ => (0, a::MOUNT_ATTR_NOSYMFOLLOW),
                };
                o.rec_set |= s;
                o.rec_clear |= c;
                (0, 0)
            }
            other => {
                data.push(other.to_string());
                (0, 0)
            }
        };
        o.flags = (o.flags | set) & !clear;
        o.cleared = (o.cleared | clear) & !set;
    }
    o.data = data.join(",");
    o
}

/// Flags that a bind mount needs a second, remount call to apply.
pub fn needs_remount(o: &MountOptions) -> bool {
    o.flags
        & (MS_RDONLY
            | MS_NOSUID
            | MS_NODEV
            | MS_NOEXEC
            | MS_NOATIME
            | MS_NODIRATIME
            | MS_RELATIME
            | MS_STRICTATIME
            | MS_NOSYMFOLLOW)
        != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> MountOptions {
        parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_and_data() {
        let o = p(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(o.flags, MS_NOSUID | MS_STRICTATIME);
        assert_eq!(o.data, "mode=755,size=65536k");
        let o = p(&["rbind", "ro", "rw"]);
        assert!(o.bind && o.recursive_bind);
        assert_eq!(o.flags & MS_RDONLY, 0);
        assert!(!needs_remount(&o));
        let o = p(&["bind", "ro", "rprivate"]);
        assert!(needs_remount(&o));
        assert_eq!(o.propagation, vec![libc::MS_PRIVATE | MS_REC]);
        let o = p(&["rro", "rnosuid"]);
        assert_eq!(
            o.rec_set,
            wharf_sys::mount::MOUNT_ATTR_RDONLY | wharf_sys::mount::MOUNT_ATTR_NOSUID
        );
        assert_eq!(o.flags, 0);
    }
}
