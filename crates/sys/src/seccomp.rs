//! Loading a compiled seccomp BPF filter into the calling thread.
