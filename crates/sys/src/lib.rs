//! `wharf-sys`: every `unsafe` block and raw syscall wharf needs, behind safe
//! functions. Other crates `#![forbid(unsafe_code)]` and call in here.
//!
//! Rules for this crate:
//! - each `unsafe` block carries a `// SAFETY:` comment stating the invariant
//!   it relies on (fd validity, single-threadedness, buffer lengths);
//! - functions are thin: they translate arguments, make the call, and turn
//!   `errno` into `std::io::Error`; policy lives in the callers;
//! - functions that are only sound in a single-threaded process (fork/clone
//!   without exec) say so in their docs and are `unsafe fn`-free only when the
//!   caller cannot break the invariant.
#![allow(unsafe_code)]

pub mod arena;
pub mod bpf;
pub mod fsflags;
pub mod libm_abi;
pub mod malloc;
pub mod mount;
pub mod process;
pub mod sealed_view;
pub mod seccomp;
