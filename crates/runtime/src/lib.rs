//! `wharf-runtime`: an OCI runtime-spec implementation for Linux, as a
//! library. The `wharf-runtime` binary (crates/runtime-cli) is a thin
//! runc-compatible command line over [`container::Runtime`]; wharf's shim
//! uses the same library.
//!
//! Process model: the caller (single-threaded) validates the bundle,
//! prepares the cgroup, seccomp BPF and exec fifo, then `clone3`s the init
//! into its new namespaces. The init ([`init`]) builds the rootfs and waits
//! on the exec fifo; `start` opens the fifo and the init execs the user's
//! program. The two sides talk over a socketpair ([`sync`]).
#![forbid(unsafe_code)]

pub mod config;
pub mod console;
pub mod container;
pub mod hooks;
pub mod init;
pub mod mounts;
pub mod process;
pub mod rootfs;
pub mod safepath;
pub mod seccomp;
pub mod selfexe;
pub mod state;
pub mod sync;

pub use container::{CreateOptions, ExecOptions, Runtime, RuntimeError, Started};
pub use state::{OciState, Status};
