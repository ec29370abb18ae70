//! `wharf-runtime`: the OCI runtime library (placeholder while the core lands).
#![forbid(unsafe_code)]

pub mod seccomp;
