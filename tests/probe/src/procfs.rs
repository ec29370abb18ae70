//! Pure parsers for the `/proc` text formats the probe reads.
//!
//! Every function here takes the file's text (or one link target) and returns
//! plain values or JSON, so the parsing is unit-tested without a container.
//! Reading the files is the caller's job (see `report`).

use serde_json::{Map, Value, json};

/// Capability names indexed by bit number, as in `linux/capability.h`.
const CAP_NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Sorted capability names for a capability mask; bits without a known name
/// appear as `CAP_<bit>` so nothing is silently dropped.
pub fn cap_names(mask: u64) -> Vec<String> {
    let mut names: Vec<String> = (0..64u32)
        .filter(|bit| mask & (1u64 << bit) != 0)
        .map(|bit| match CAP_NAMES.get(bit as usize) {
            Some(name) => (*name).to_owned(),
            None => format!("CAP_{bit}"),
        })
        .collect();
    names.sort();
    names
}

/// The value of `Key:` in `/proc/<pid>/status` text, trimmed.
pub fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k == key).then(|| v.trim())
    })
}

/// The whitespace-separated numbers of a status field such as `Uid:`.
pub fn status_numbers(status: &str, key: &str) -> Vec<u64> {
    status_field(status, key)
        .map(|v| {
            v.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// A hexadecimal status field such as `CapEff:`.
pub fn status_hex(status: &str, key: &str) -> Option<u64> {
    status_field(status, key).and_then(|v| u64::from_str_radix(v, 16).ok())
}

/// The inode number in a namespace link target such as `pid:[4026531836]`.
pub fn ns_inode(link: &str) -> Option<u64> {
    let start = link.find('[')?;
    let end = link.rfind(']')?;
    link.get(start + 1..end)?.parse().ok()
}

/// Undoes the octal escapes (`\040` for space, `\011`, `\012`, `\134`) that
/// the kernel applies to paths in mountinfo.
pub fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            let digits = &bytes[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(byte) = u8::try_from(value) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One mountinfo line as JSON, or `None` when the line is malformed.
///
/// Fields: `id`, `parent`, `dev` ("major:minor"), `root`, `mount_point`,
/// `options` (per-mount, list), `propagation` (optional fields, list),
/// `fstype`, `source`, `super_options` (list).
pub fn parse_mountinfo_line(line: &str) -> Option<Value> {
    let (left, right) = line.split_once(" - ")?;
    let mut l = left.split(' ');
    let id: u64 = l.next()?.parse().ok()?;
    let parent: u64 = l.next()?.parse().ok()?;
    let dev = l.next()?;
    let root = unescape_octal(l.next()?);
    let mount_point = unescape_octal(l.next()?);
    let options: Vec<&str> = l.next()?.split(',').collect();
    let propagation: Vec<&str> = l.filter(|f| !f.is_empty()).collect();
    let mut r = right.split(' ');
    let fstype = r.next()?;
    let source = unescape_octal(r.next()?);
    let super_options: Vec<&str> = r.next().map(|s| s.split(',').collect()).unwrap_or_default();
    Some(json!({
        "id": id,
        "parent": parent,
        "dev": dev,
        "root": root,
        "mount_point": mount_point,
        "options": options,
        "propagation": propagation,
        "fstype": fstype,
        "source": source,
        "super_options": super_options,
    }))
}

/// Every well-formed line of a mountinfo file, in file order.
pub fn parse_mountinfo(text: &str) -> Vec<Value> {
    text.lines().filter_map(parse_mountinfo_line).collect()
}

/// One `/proc/self/cgroup` line (`hierarchy-id:controllers:path`).
#[derive(Debug, PartialEq, Eq)]
pub struct CgroupLine {
    pub hierarchy: u32,
    /// Controllers of a v1 hierarchy (`name=systemd` included); empty for v2.
    pub controllers: Vec<String>,
    pub path: String,
}

/// Parses `/proc/self/cgroup` text.
pub fn parse_cgroup(text: &str) -> Vec<CgroupLine> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let hierarchy = parts.next()?.parse().ok()?;
            let controllers = parts
                .next()?
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect();
            let path = parts.next()?.to_owned();
            Some(CgroupLine {
                hierarchy,
                controllers,
                path,
            })
        })
        .collect()
}

/// Fields of `/proc/self/stat` after the command name, indexed from 0 at
/// the state letter (so ppid is 1, pgrp 2, session 3, tty_nr 4).
pub fn stat_fields(stat: &str) -> Vec<&str> {
    match stat.rfind(')') {
        Some(end) => stat[end + 1..].split_whitespace().collect(),
        None => Vec::new(),
    }
}

/// Puts `key: value` into a JSON map (small helper for readable builders).
pub fn put(map: &mut Map<String, Value>, key: &str, value: impl Into<Value>) {
    map.insert(key.to_owned(), value.into());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_names_are_sorted_and_cover_unknown_bits() {
        assert_eq!(cap_names(0), Vec::<String>::new());
        // CAP_CHOWN (0), CAP_KILL (5), CAP_NET_BIND_SERVICE (10), bit 63.
        let mask = 1 | (1 << 5) | (1 << 10) | (1 << 63);
        assert_eq!(
            cap_names(mask),
            ["CAP_63", "CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
        );
        assert_eq!(cap_names(1 << 40), ["CAP_CHECKPOINT_RESTORE"]);
    }

    #[test]
    fn status_fields_parse() {
        let status = "Name:\tprobe\nUmask:\t0022\nUid:\t1000\t1001\t1002\t1003\nCapEff:\t00000000a80425fb\nNoNewPrivs:\t1\n";
        assert_eq!(status_field(status, "Umask"), Some("0022"));
        assert_eq!(status_numbers(status, "Uid"), [1000, 1001, 1002, 1003]);
        assert_eq!(status_hex(status, "CapEff"), Some(0xa80425fb));
        assert_eq!(status_field(status, "Missing"), None);
        assert_eq!(status_field(status, "Uid:"), None);
    }

    #[test]
    fn ns_inode_parses_link_target() {
        assert_eq!(ns_inode("pid:[4026531836]"), Some(4026531836));
        assert_eq!(ns_inode("garbage"), None);
    }

    #[test]
    fn octal_escapes_decode() {
        assert_eq!(unescape_octal(r"/a\040b\011c\134d"), "/a b\tc\\d");
        assert_eq!(unescape_octal(r"/trailing\04"), r"/trailing\04");
        assert_eq!(unescape_octal(r"\"), r"\");
    }

    #[test]
    fn mountinfo_line_with_optional_fields() {
        let line = "36 35 98:0 /mnt1 /mnt/my\\040dir rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue";
        let v = parse_mountinfo_line(line).expect("parses");
        assert_eq!(v["id"], 36);
        assert_eq!(v["parent"], 35);
        assert_eq!(v["root"], "/mnt1");
        assert_eq!(v["mount_point"], "/mnt/my dir");
        assert_eq!(v["options"], json!(["rw", "noatime"]));
        assert_eq!(v["propagation"], json!(["master:1", "shared:2"]));
        assert_eq!(v["fstype"], "ext3");
        assert_eq!(v["source"], "/dev/root");
        assert_eq!(v["super_options"], json!(["rw", "errors=continue"]));
        assert!(parse_mountinfo_line("not a mountinfo line").is_none());
    }

    #[test]
    fn cgroup_lines_parse_v1_and_v2() {
        let text = "12:cpu,cpuacct:/a/b\n1:name=systemd:/x\n0::/c:d\n";
        let lines = parse_cgroup(text);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].controllers, ["cpu", "cpuacct"]);
        assert_eq!(lines[0].path, "/a/b");
        assert_eq!(lines[1].controllers, ["name=systemd"]);
        assert_eq!(
            lines[2],
            CgroupLine {
                hierarchy: 0,
                controllers: vec![],
                path: "/c:d".into()
            }
        );
    }

    #[test]
    fn stat_fields_skip_command_with_parens() {
        let stat = "42 (we (ird) name) S 1 42 42 0 -1";
        let f = stat_fields(stat);
        assert_eq!(f[0], "S");
        assert_eq!(f[1], "1");
        assert_eq!(f[3], "42");
    }
}
