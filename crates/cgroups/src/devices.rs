//! Device access rules (`linux.resources.devices`) for both cgroup versions.
//!
//! The OCI list is applied in order, so the *last* rule matching an access
//! decides it. On v1 that order is replayed as `devices.allow` /
//! `devices.deny` writes ([`v1_writes`]); a list that starts with a deny-all
//! therefore starts from an empty allowlist. On v2 the same list becomes a
//! `BPF_PROG_TYPE_CGROUP_DEVICE` program ([`bpf_program`]) that checks the
//! rules from last to first and returns the verdict of the first one that
//! matches; an access no rule matches is denied.
//!
//! Matching an access against a rule: the device type and numbers must match
//! (`a` and a missing/`-1` number are wildcards). An *allow* rule matches when
//! every requested access bit (r, w, m) is in the rule's access; a *deny* rule
//! matches when any requested bit is. So `deny c 1:7 w` refuses an `O_RDWR`
//! open of `/dev/full` even after an earlier `allow a *:* rwm`.
//!
//! [`apply_v2`] loads the program, attaches it with `BPF_F_ALLOW_MULTI` and
//! then detaches the programs wharf attached before (recognised by their name,
//! [`PROG_NAME`]), so re-applying replaces rather than stacks filters.

use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
use wharf_sys::bpf::{self, BpfInsn};

use crate::error::CgroupError;

/// Name given to wharf's device programs, used to find them again.
pub const PROG_NAME: &str = "wharf_devices";

const ACC_MKNOD: u32 = 1;
const ACC_READ: u32 = 2;
const ACC_WRITE: u32 = 4;
const ACC_ALL: u32 = ACC_MKNOD | ACC_READ | ACC_WRITE;
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

/// Device kinds a rule can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DevKind {
    All,
    Char,
    Block,
}

/// A validated, normalised device rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DeviceRule {
    pub allow: bool,
    pub kind: DevKind,
    /// `None` = any.
    pub major: Option<u32>,
    /// `None` = any.
    pub minor: Option<u32>,
    /// Bit set of ACC_*; never empty.
    pub access: u32,
}

impl DeviceRule {
    fn matches_everything(&self) -> bool {
        self.kind == DevKind::All
            && self.major.is_none()
            && self.minor.is_none()
            && self.access == ACC_ALL
    }
}

fn device_number(
    v: Option<i64>,
    which: &str,
    rule: &LinuxDeviceCgroup,
) -> Result<Option<u32>, CgroupError> {
    match v {
        None | Some(-1) => Ok(None),
        Some(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| CgroupError::InvalidResource {
                reason: format!("device rule {rule}: {which} number {n} is out of range"),
            }),
    }
}

/// Validates OCI rules. `p` (FIFO) rules are dropped: the device controller
/// only sees character and block devices.
pub(crate) fn normalize(rules: &[LinuxDeviceCgroup]) -> Result<Vec<DeviceRule>, CgroupError> {
    let mut out = Vec::with_capacity(rules.len());
    for r in rules {
        let kind = match r.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => DevKind::All,
            LinuxDeviceType::C | LinuxDeviceType::U => DevKind::Char,
            LinuxDeviceType::B => DevKind::Block,
            LinuxDeviceType::P => {
                tracing::debug!(rule = %r, "fifo device rule ignored by the device controller");
                continue;
            }
        };
        let access_str = r.access().as_deref().unwrap_or("");
        let mut access = 0;
        for ch in access_str.chars() {
            access |= match ch {
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                'm' => ACC_MKNOD,
                other => {
                    return Err(CgroupError::InvalidResource {
                        reason: format!(
                            "device rule {r}: unknown access character {other:?} (expected r, w, m)"
                        ),
                    });
                }
            };
        }
        if access == 0 {
            access = ACC_ALL;
        }
        out.push(DeviceRule {
            allow: r.allow(),
            kind,
            major: device_number(r.major(), "major", r)?,
            minor: device_number(r.minor(), "minor", r)?,
            access,
        });
    }
    Ok(out)
}

/// The file a v1 rule line goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum V1File {
    Allow,
    Deny,
}

impl V1File {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Allow => "devices.allow",
            Self::Deny => "devices.deny",
        }
    }
}

fn access_string(bits: u32) -> String {
    let mut s = String::new();
    if bits & ACC_READ != 0 {
        s.push('r');
    }
    if bits & ACC_WRITE != 0 {
        s.push('w');
    }
    if bits & ACC_MKNOD != 0 {
        s.push('m');
    }
    s
}

fn num(n: Option<u32>) -> String {
    n.map_or_else(|| "*".to_owned(), |n| n.to_string())
}

/// The v1 writes replaying `rules` in order.
///
/// The kernel reads any line starting with `a` as "everything" (it ignores
/// numbers and access), so a type-`a` rule that is not a full wildcard is
/// written as a `c` line and a `b` line.
pub(crate) fn v1_writes(rules: &[DeviceRule]) -> Vec<(V1File, String)> {
    let mut out = Vec::new();
    for r in rules {
        let file = if r.allow { V1File::Allow } else { V1File::Deny };
        if r.matches_everything() {
            out.push((file, "a *:* rwm".to_owned()));
            continue;
        }
        let kinds: &[char] = match r.kind {
            DevKind::All => &['c', 'b'],
            DevKind::Char => &['c'],
            DevKind::Block => &['b'],
        };
        for k in kinds {
            out.push((
                file,
                format!(
                    "{k} {}:{} {}",
                    num(r.major),
                    num(r.minor),
                    access_string(r.access)
                ),
            ));
        }
    }
    out
}

/// Applies rules on a v1 devices hierarchy directory.
pub(crate) fn apply_v1(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
    // One rule per write(2), as the kernel wants, but one open per run of
    // writes to the same file (a default spec has a deny and ~10 allows).
    let mut open: Option<(V1File, std::fs::File)> = None;
    for (file, line) in v1_writes(&normalize(rules)?) {
        let path = dir.join(file.name());
        let f = match &mut open {
            Some((cur, f)) if *cur == file => f,
            _ => {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|source| match source.kind() {
                        std::io::ErrorKind::NotFound => CgroupError::MissingFile {
                            path: path.clone(),
                            what: "device rules".to_owned(),
                        },
                        _ => CgroupError::Write {
                            path: path.clone(),
                            value: line.clone(),
                            source,
                        },
                    })?;
                &mut open.insert((file, f)).1
            }
        };
        std::io::Write::write_all(f, line.as_bytes()).map_err(|source| CgroupError::Write {
            path,
            value: line,
            source,
        })?;
    }
    Ok(())
}

// eBPF opcodes used by the program.
const LDX_W_MEM: u8 = 0x61; // dst = *(u32 *)(src + off)
const ALU32_AND_K: u8 = 0x54; // dst &= imm
const ALU32_RSH_K: u8 = 0x74; // dst >>= imm
const ALU32_MOV_X: u8 = 0xbc; // dst = src
const ALU32_MOV_K: u8 = 0xb4; // dst = imm
const JMP_JNE_K: u8 = 0x56; // JMP32: if (u32)dst != (u32)imm goto pc + off
const JMP_JEQ_K: u8 = 0x16; // JMP32: if (u32)dst == (u32)imm goto pc + off
const JMP_EXIT: u8 = 0x95;

// Registers: r1 = ctx (then scratch), r2 = type, r3 = access, r4 = major, r5 = minor.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

/// Number of instructions of the prologue loading the context.
pub(crate) const PROLOGUE_LEN: usize = 6;

/// Assembles the device program for `rules` (see the module docs for the
/// semantics). Layout:
///
/// 1. prologue: split `struct bpf_cgroup_dev_ctx` into r2 = type
///    (`access_type & 0xffff`), r3 = access (`access_type >> 16`), r4 = major,
///    r5 = minor;
/// 2. one block per rule, last rule first: each check jumps past the end of
///    its block on mismatch; the block ends `r0 = verdict; exit`;
/// 3. a final `r0 = 0; exit` (deny), omitted when some rule matches
///    everything (blocks before it in the list are unreachable and dropped).
pub(crate) fn bpf_program(rules: &[DeviceRule]) -> Vec<BpfInsn> {
    let mut prog = vec![
        BpfInsn::new(LDX_W_MEM, R2, R1, 0, 0),
        BpfInsn::new(ALU32_AND_K, R2, 0, 0, 0xffff),
        BpfInsn::new(LDX_W_MEM, R3, R1, 0, 0),
        BpfInsn::new(ALU32_RSH_K, R3, 0, 0, 16),
        BpfInsn::new(LDX_W_MEM, R4, R1, 4, 0),
        BpfInsn::new(LDX_W_MEM, R5, R1, 8, 0),
    ];
    debug_assert_eq!(prog.len(), PROLOGUE_LEN);
    for rule in rules.iter().rev() {
        // Checks jump to the end of the block; `true` marks a jump whose
        // offset is filled in once the block length is known.
        let mut block: Vec<(BpfInsn, bool)> = Vec::new();
        match rule.kind {
            DevKind::All => {}
            DevKind::Char => block.push((BpfInsn::new(JMP_JNE_K, R2, 0, 0, DEV_CHAR), true)),
            DevKind::Block => block.push((BpfInsn::new(JMP_JNE_K, R2, 0, 0, DEV_BLOCK), true)),
        }
        if rule.access != ACC_ALL {
            block.push((BpfInsn::new(ALU32_MOV_X, R1, R3, 0, 0), false));
            if rule.allow {
                // Mismatch when the request has a bit outside the rule's access.
                let outside = i32::try_from(!rule.access & ACC_ALL).unwrap_or(0);
                block.push((BpfInsn::new(ALU32_AND_K, R1, 0, 0, outside), false));
                block.push((BpfInsn::new(JMP_JNE_K, R1, 0, 0, 0), true));
            } else {
                // Mismatch when the request shares no bit with the rule's access.
                let inside = i32::try_from(rule.access).unwrap_or(0);
                block.push((BpfInsn::new(ALU32_AND_K, R1, 0, 0, inside), false));
                block.push((BpfInsn::new(JMP_JEQ_K, R1, 0, 0, 0), true));
            }
        }
        // Device numbers are u32 in the context; JMP32 compares the low 32
        // bits, so the immediate's bit pattern is exactly the number.
        if let Some(major) = rule.major {
            block.push((BpfInsn::new(JMP_JNE_K, R4, 0, 0, major.cast_signed()), true));
        }
        if let Some(minor) = rule.minor {
            block.push((BpfInsn::new(JMP_JNE_K, R5, 0, 0, minor.cast_signed()), true));
        }
        block.push((
            BpfInsn::new(ALU32_MOV_K, R0, 0, 0, i32::from(rule.allow)),
            false,
        ));
        block.push((BpfInsn::new(JMP_EXIT, 0, 0, 0, 0), false));
        let len = block.len();
        for (i, (mut insn, is_jump)) in block.into_iter().enumerate() {
            if is_jump {
                insn.off = i16::try_from(len - i - 1).unwrap_or(i16::MAX);
            }
            prog.push(insn);
        }
        if rule.matches_everything() {
            return prog;
        }
    }
    prog.push(BpfInsn::new(ALU32_MOV_K, R0, 0, 0, 0));
    prog.push(BpfInsn::new(JMP_EXIT, 0, 0, 0, 0));
    prog
}

/// Installs `rules` as the device filter of the v2 cgroup `dir`, replacing
/// the filters wharf attached to it before.
pub(crate) fn apply_v2(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
    let rules = normalize(rules)?;
    let insns = bpf_program(&rules);
    let bpf_err = |op: &'static str| {
        move |source| CgroupError::Bpf {
            op,
            path: dir.to_owned(),
            source,
        }
    };
    // 1. Open the cgroup directory: programs attach to its fd.
    let cgroup = std::fs::File::open(dir).map_err(|source| CgroupError::Read {
        path: dir.to_owned(),
        source,
    })?;
    use std::os::fd::AsFd;
    // 2. Find the programs a previous apply left behind.
    let ids =
        bpf::query_attached(cgroup.as_fd(), bpf::ATTACH_CGROUP_DEVICE).map_err(bpf_err("query"))?;
    let mut old = Vec::new();
    for id in ids {
        // A program can vanish between query and open; skip it then.
        let Ok(fd) = bpf::prog_fd_by_id(id) else {
            continue;
        };
        match bpf::prog_info(fd.as_fd()) {
            Ok(info) if info.name == PROG_NAME => old.push(fd),
            Ok(_) => {}
            Err(err) => tracing::debug!(id, %err, "cannot inspect attached device program"),
        }
    }
    // 3. Load and attach the new program; until the old ones are detached
    //    both apply, and the kernel allows only what all of them allow.
    let prog =
        bpf::load_cgroup_device_prog(&insns, c"Apache-2.0", PROG_NAME).map_err(bpf_err("load"))?;
    bpf::attach(
        cgroup.as_fd(),
        prog.as_fd(),
        bpf::ATTACH_CGROUP_DEVICE,
        bpf::F_ALLOW_MULTI,
    )
    .map_err(bpf_err("attach"))?;
    // 4. Detach the previous wharf programs.
    for fd in old {
        bpf::detach(cgroup.as_fd(), fd.as_fd(), bpf::ATTACH_CGROUP_DEVICE)
            .map_err(bpf_err("detach old"))?;
    }
    tracing::debug!(dir = %dir.display(), rules = rules.len(), insns = insns.len(), "device filter attached");
    Ok(())
}

#[cfg(test)]
mod tests;
