//! Compiling the OCI seccomp section to BPF, with a cache.
