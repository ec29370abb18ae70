//! eBPF program load and cgroup attach, for the cgroup v2 device controller.
//!
//! cgroup v2 has no `devices.allow`/`devices.deny` files: device access is
//! decided by `BPF_PROG_TYPE_CGROUP_DEVICE` programs attached to the cgroup.
//! The cgroups crate assembles such a program (plain [`BpfInsn`] values) and
//! calls in here to load it ([`load_cgroup_device_prog`]), attach it
//! ([`attach`]), find what is already attached ([`query_attached`],
//! [`prog_fd_by_id`], [`prog_info`]) and detach old programs ([`detach`]).
//!
//! Everything here is a thin wrapper over `bpf(2)`: arguments are laid out in
//! a zeroed, full-size `union bpf_attr` buffer at the offsets fixed by the
//! kernel uapi (`include/uapi/linux/bpf.h`), and `errno` becomes
//! [`std::io::Error`]. Policy (which program, which cgroup, what to replace)
//! lives in the caller.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `BPF_PROG_TYPE_CGROUP_DEVICE`.
pub const PROG_TYPE_CGROUP_DEVICE: u32 = 15;
/// `BPF_CGROUP_DEVICE` attach type.
pub const ATTACH_CGROUP_DEVICE: u32 = 6;
/// `BPF_F_ALLOW_OVERRIDE` attach flag.
pub const F_ALLOW_OVERRIDE: u32 = 1;
/// `BPF_F_ALLOW_MULTI` attach flag: several programs may be attached to one
/// cgroup; all of them must allow an access.
pub const F_ALLOW_MULTI: u32 = 2;
/// `BPF_OBJ_NAME_LEN`: program names are at most 15 bytes plus a NUL.
pub const OBJ_NAME_LEN: usize = 16;

// bpf(2) commands (enum bpf_cmd).
const CMD_PROG_LOAD: libc::c_int = 5;
const CMD_PROG_ATTACH: libc::c_int = 8;
const CMD_PROG_DETACH: libc::c_int = 9;
const CMD_PROG_GET_FD_BY_ID: libc::c_int = 13;
const CMD_OBJ_GET_INFO_BY_FD: libc::c_int = 15;
const CMD_PROG_QUERY: libc::c_int = 16;

/// One eBPF instruction, laid out exactly like the kernel's `struct bpf_insn`
/// (8 bytes: opcode, destination and source register nibbles, 16-bit offset,
/// 32-bit immediate).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BpfInsn {
    /// Opcode (class | size/op | mode/source).
    pub code: u8,
    /// Destination register in the low nibble, source register in the high one.
    pub regs: u8,
    /// Signed offset (memory offset or jump distance in instructions).
    pub off: i16,
    /// Signed immediate.
    pub imm: i32,
}

impl BpfInsn {
    /// Builds an instruction from its fields; registers are 0..=10.
    pub const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        Self {
            code,
            regs: (src << 4) | (dst & 0x0f),
            off,
            imm,
        }
    }

    /// Destination register.
    pub const fn dst(&self) -> u8 {
        self.regs & 0x0f
    }

    /// Source register.
    pub const fn src(&self) -> u8 {
        self.regs >> 4
    }
}

/// What [`prog_info`] reports about a loaded program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgInfo {
    /// Program type (`BPF_PROG_TYPE_*`).
    pub prog_type: u32,
    /// Kernel-wide program id.
    pub id: u32,
    /// Name given at load time (may be empty).
    pub name: String,
}

/// Size of our `union bpf_attr` buffer. The real union is smaller (about 150
/// bytes in 6.x); the kernel requires the bytes it does not know to be zero,
/// which they are. A full-size buffer matters because some commands write
/// back into fields past the ones we fill (`BPF_PROG_QUERY` writes
/// `query.revision`).
const ATTR_SIZE: usize = 256;
/// [`ATTR_SIZE`] as the syscall's `size` argument.
const ATTR_SIZE_ARG: libc::c_uint = 256;
const _: () = assert!(ATTR_SIZE_ARG as usize == ATTR_SIZE);

/// A zeroed `union bpf_attr` with helpers to place fields at uapi offsets.
#[repr(C, align(8))]
struct Attr([u8; ATTR_SIZE]);

impl Attr {
    fn new() -> Self {
        Self([0; ATTR_SIZE])
    }
    fn put_u32(&mut self, off: usize, v: u32) {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
    }
    fn put_u64(&mut self, off: usize, v: u64) {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
    }
    fn get_u32(&self, off: usize) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.0[off..off + 4]);
        u32::from_ne_bytes(b)
    }
}

/// Calls `bpf(cmd, attr, sizeof attr)`; returns the non-negative result.
fn sys_bpf(cmd: libc::c_int, attr: &mut Attr) -> io::Result<libc::c_int> {
    // SAFETY: `attr` is a live, exclusively borrowed, 8-aligned buffer of
    // ATTR_SIZE bytes and we pass exactly that size, so every kernel read or
    // write through the pointer stays inside it. Any pointers stored inside
    // the buffer were set by our callers to buffers that outlive this call.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.0.as_mut_ptr(), ATTR_SIZE_ARG) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    libc::c_int::try_from(ret)
        .map_err(|_| io::Error::other("bpf(2) returned an out-of-range value"))
}

/// Takes ownership of a file descriptor the kernel just returned.
fn owned_fd(fd: libc::c_int) -> OwnedFd {
    // SAFETY: `fd` was returned by a successful bpf(2) call that creates a new
    // descriptor; nothing else owns or has closed it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn fd_u32(fd: BorrowedFd<'_>) -> u32 {
    // File descriptors of a live BorrowedFd are non-negative.
    u32::try_from(fd.as_raw_fd()).unwrap_or(u32::MAX)
}

/// Loads a `BPF_PROG_TYPE_CGROUP_DEVICE` program.
///
/// `name` is truncated to 15 bytes (kernel limit; allowed characters are
/// alphanumerics, `_` and `.`). On a verifier rejection the error message
/// carries the verifier log.
pub fn load_cgroup_device_prog(
    insns: &[BpfInsn],
    license: &CStr,
    name: &str,
) -> io::Result<OwnedFd> {
    let insn_cnt =
        u32::try_from(insns.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut log = vec![0u8; 64 * 1024];
    let log_size = u32::try_from(log.len()).unwrap_or(u32::MAX);
    let load = |log_level: u32, log: &mut Vec<u8>| {
        let mut attr = Attr::new();
        attr.put_u32(0, PROG_TYPE_CGROUP_DEVICE); // prog_type
        attr.put_u32(4, insn_cnt); // insn_cnt
        attr.put_u64(8, insns.as_ptr() as u64); // insns
        attr.put_u64(16, license.as_ptr() as u64); // license
        attr.put_u32(24, log_level); // log_level
        attr.put_u32(28, if log_level > 0 { log_size } else { 0 }); // log_size
        attr.put_u64(
            32,
            if log_level > 0 {
                log.as_mut_ptr() as u64
            } else {
                0
            },
        ); // log_buf
        let bytes = name.as_bytes();
        let n = bytes.len().min(OBJ_NAME_LEN - 1);
        attr.0[48..48 + n].copy_from_slice(&bytes[..n]); // prog_name
        sys_bpf(CMD_PROG_LOAD, &mut attr)
    };
    match load(0, &mut log) {
        Ok(fd) => Ok(owned_fd(fd)),
        Err(first) => {
            // Retry with the verifier log on, only to explain the failure.
            match load(1, &mut log) {
                Ok(fd) => Ok(owned_fd(fd)),
                Err(_) => {
                    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                    let text = String::from_utf8_lossy(&log[..end]).trim().to_string();
                    if text.is_empty() {
                        Err(first)
                    } else {
                        Err(io::Error::new(
                            first.kind(),
                            format!("{first}; verifier log: {text}"),
                        ))
                    }
                }
            }
        }
    }
}

/// Attaches `prog` to the cgroup open at `cgroup` (a directory fd).
pub fn attach(
    cgroup: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    attach_type: u32,
    flags: u32,
) -> io::Result<()> {
    let mut attr = Attr::new();
    attr.put_u32(0, fd_u32(cgroup)); // target_fd
    attr.put_u32(4, fd_u32(prog)); // attach_bpf_fd
    attr.put_u32(8, attach_type); // attach_type
    attr.put_u32(12, flags); // attach_flags
    sys_bpf(CMD_PROG_ATTACH, &mut attr).map(drop)
}

/// Detaches `prog` from the cgroup open at `cgroup`.
pub fn detach(cgroup: BorrowedFd<'_>, prog: BorrowedFd<'_>, attach_type: u32) -> io::Result<()> {
    let mut attr = Attr::new();
    attr.put_u32(0, fd_u32(cgroup)); // target_fd
    attr.put_u32(4, fd_u32(prog)); // attach_bpf_fd
    attr.put_u32(8, attach_type); // attach_type
    sys_bpf(CMD_PROG_DETACH, &mut attr).map(drop)
}

/// Ids of the programs attached directly (not inherited) to the cgroup at
/// `cgroup` for `attach_type`.
pub fn query_attached(cgroup: BorrowedFd<'_>, attach_type: u32) -> io::Result<Vec<u32>> {
    let mut cap: usize = 64;
    loop {
        let mut ids = vec![0u32; cap];
        let mut attr = Attr::new();
        attr.put_u32(0, fd_u32(cgroup)); // query.target_fd
        attr.put_u32(4, attach_type); // query.attach_type
        attr.put_u64(16, ids.as_mut_ptr() as u64); // query.prog_ids
        attr.put_u32(24, u32::try_from(cap).unwrap_or(u32::MAX)); // query.prog_cnt
        match sys_bpf(CMD_PROG_QUERY, &mut attr) {
            Ok(_) => {
                let n = usize::try_from(attr.get_u32(24)).unwrap_or(0).min(cap);
                ids.truncate(n);
                return Ok(ids);
            }
            // ENOSPC: more programs than room; prog_cnt holds the real count.
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && cap < 1 << 16 => {
                cap = usize::try_from(attr.get_u32(24))
                    .unwrap_or(cap * 2)
                    .max(cap * 2);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Opens a new fd for the loaded program with kernel id `id`.
pub fn prog_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = Attr::new();
    attr.put_u32(0, id); // prog_id
    sys_bpf(CMD_PROG_GET_FD_BY_ID, &mut attr).map(owned_fd)
}

/// Type, id and name of the program open at `prog`.
pub fn prog_info(prog: BorrowedFd<'_>) -> io::Result<ProgInfo> {
    // struct bpf_prog_info: type@0, id@4, ..., name[16]@64. 80 bytes cover
    // the fields we read; the kernel copies at most info_len bytes.
    const INFO_LEN: u32 = 80;
    let mut info = Attr::new();
    let mut attr = Attr::new();
    attr.put_u32(0, fd_u32(prog)); // info.bpf_fd
    attr.put_u32(4, INFO_LEN); // info.info_len
    attr.put_u64(8, info.0.as_mut_ptr() as u64); // info.info
    sys_bpf(CMD_OBJ_GET_INFO_BY_FD, &mut attr)?;
    let name_bytes = &info.0[64..64 + OBJ_NAME_LEN];
    let end = name_bytes
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(OBJ_NAME_LEN);
    Ok(ProgInfo {
        prog_type: info.get_u32(0),
        id: info.get_u32(4),
        name: String::from_utf8_lossy(&name_bytes[..end]).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insn_layout_matches_kernel() {
        assert_eq!(std::mem::size_of::<BpfInsn>(), 8);
        let i = BpfInsn::new(0x61, 2, 1, 4, -1);
        assert_eq!(i.dst(), 2);
        assert_eq!(i.src(), 1);
        assert_eq!(i.regs, 0x12);
    }

    #[test]
    fn attr_fields_land_at_offsets() {
        let mut a = Attr::new();
        a.put_u32(24, 0xdead_beef);
        a.put_u64(16, 7);
        assert_eq!(a.get_u32(24), 0xdead_beef);
        assert_eq!(a.0[16], 7);
        assert!(a.0[..16].iter().all(|&b| b == 0));
    }
}
