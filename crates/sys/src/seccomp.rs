//! Loading a compiled seccomp BPF filter into the calling thread.
//!
//! The runtime compiles an OCI seccomp section to classic BPF (in
//! `wharf-runtime`, with libseccomp) well before the container process
//! exists; this module only hands those bytes to the kernel with
//! `seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog)`. [`load_filter`] does not
//! allocate, so it is safe to call between `clone` and `execve` in a child
//! of a multi-threaded parent.
//!
//! The caller must hold `CAP_SYS_ADMIN` in its user namespace or have set
//! `no_new_privs` first (the kernel returns `EACCES` otherwise). The filter
//! applies to the calling thread only, unless [`FLAG_TSYNC`] is given.

use std::io;

/// Size of one `struct sock_filter` instruction in bytes.
pub const BPF_INSTRUCTION_LEN: usize = 8;

/// Most instructions the kernel accepts in one program (`BPF_MAXINSNS`).
pub const BPF_MAX_INSTRUCTIONS: usize = 4096;

/// `SECCOMP_FILTER_FLAG_TSYNC`: install the filter on every thread of the
/// process.
pub const FLAG_TSYNC: u32 = 1 << 0;
/// `SECCOMP_FILTER_FLAG_LOG`: log every action except `SECCOMP_RET_ALLOW`.
pub const FLAG_LOG: u32 = 1 << 1;
/// `SECCOMP_FILTER_FLAG_SPEC_ALLOW`: keep Speculative Store Bypass
/// mitigation off for the thread.
pub const FLAG_SPEC_ALLOW: u32 = 1 << 2;

/// Installs the classic BPF program `bpf` (native-endian `struct
/// sock_filter` records, 8 bytes each, as libseccomp exports them) as a
/// seccomp filter on the calling thread, with the kernel `flags` (a mix of
/// [`FLAG_TSYNC`], [`FLAG_LOG`], [`FLAG_SPEC_ALLOW`]).
///
/// Fails with `InvalidInput` when `bpf` is empty, not a whole number of
/// instructions, or longer than [`BPF_MAX_INSTRUCTIONS`]; otherwise with the
/// kernel's errno (`EACCES` without `no_new_privs` or `CAP_SYS_ADMIN`,
/// `EINVAL` for an invalid program or unknown flag). With [`FLAG_TSYNC`], a
/// thread that could not be synchronised is reported as an error naming it.
pub fn load_filter(bpf: &[u8], flags: u32) -> io::Result<()> {
    if bpf.is_empty() || !bpf.len().is_multiple_of(BPF_INSTRUCTION_LEN) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "seccomp bpf program length is not a positive multiple of 8 bytes",
        ));
    }
    let instructions = bpf.len() / BPF_INSTRUCTION_LEN;
    if instructions > BPF_MAX_INSTRUCTIONS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "seccomp bpf program has more than 4096 instructions",
        ));
    }
    let prog = libc::sock_fprog {
        // Cannot truncate: checked against BPF_MAX_INSTRUCTIONS (4096) above.
        len: u16::try_from(instructions).unwrap_or(u16::MAX),
        // The kernel copies the program with copy_from_user, which has no
        // alignment requirement; Rust never dereferences this pointer, so an
        // unaligned byte buffer is fine and no copy is needed.
        filter: bpf.as_ptr().cast::<libc::sock_filter>().cast_mut(),
    };
    // SAFETY: `prog` lives on this stack frame for the whole call and its
    // `filter` points to `instructions * 8` readable bytes borrowed from
    // `bpf`; the kernel only reads both. The syscall takes
    // (operation, flags, pointer) and touches no other memory of ours.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::c_ulong::from(flags),
            &raw const prog,
        )
    };
    match ret {
        0 => Ok(()),
        -1 => Err(io::Error::last_os_error()),
        tid => Err(io::Error::other(format!(
            "seccomp filter could not be synchronised to thread {tid}"
        ))),
    }
}

/// An anonymous in-memory file (`memfd`, close-on-exec) that libseccomp
/// can export a compiled program into (`seccomp_export_bpf` writes to a file
/// descriptor; libseccomp 2.5 has no export-to-memory call). The caller
/// rewinds and reads it back.
pub fn bpf_export_file() -> io::Result<std::fs::File> {
    let fd = rustix::fs::memfd_create("wharf-seccomp-bpf", rustix::fs::MemfdFlags::CLOEXEC)?;
    Ok(std::fs::File::from(fd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_malformed_programs_before_the_kernel() {
        for bad in [&[][..], &[0u8; 7][..], &[0u8; 12][..]] {
            let err = load_filter(bad, 0).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        }
        let too_long = vec![0u8; (BPF_MAX_INSTRUCTIONS + 1) * BPF_INSTRUCTION_LEN];
        let err = load_filter(&too_long, 0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn kernel_rejects_an_invalid_program() {
        // One instruction `BPF_LD|BPF_W|BPF_ABS k=0` without a return: the
        // kernel's checker refuses a program that does not end in RET, so
        // nothing is installed on this test thread. no_new_privs (set on
        // this test thread only) makes the kernel reach the program check
        // even without CAP_SYS_ADMIN.
        rustix::thread::set_no_new_privs(true).unwrap();
        let mut insn = [0u8; 8];
        insn[..2].copy_from_slice(&0x20u16.to_ne_bytes());
        let err = load_filter(&insn, 0).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");
    }

    #[test]
    fn export_file_round_trips_bytes() {
        use std::io::{Read, Seek, Write};
        let mut f = bpf_export_file().unwrap();
        f.write_all(b"12345678").unwrap();
        f.rewind().unwrap();
        let mut back = Vec::new();
        f.read_to_end(&mut back).unwrap();
        assert_eq!(back, b"12345678");
    }
}
