//! `wharf-spec`: Docker's container defaults expressed as OCI runtime-spec
//! values.
//!
//! The engine starts every container from [`default_spec`] and edits it
//! (image config, `docker run` flags); `wharf-runtime spec` writes it as the
//! bundle template, like `runc spec`. The pieces are public on their own so
//! callers can rebuild parts after a change: [`apply_cap_changes`] for
//! `--cap-add/--cap-drop`, [`default_seccomp`] to regenerate the seccomp
//! section for the final capability set, [`SeccompProfile`] to convert a
//! `--security-opt seccomp=<profile>` (Docker's format) the same way, [`docker_masked_paths`] and
//! [`docker_readonly_paths`] for `--privileged` toggles.
//!
//! Everything here is pure data: no I/O apart from reading this process's
//! `RLIMIT_NOFILE` hard limit from `/proc/self/limits` and, for profiles
//! with `minKernel` rules, the kernel release.
#![forbid(unsafe_code)]

mod caps;
mod defaults;
mod seccomp;
pub mod seccomp_profile;

pub use caps::{
    ALL_CAPABILITIES, CapError, CapabilityInfo, DEFAULT_CAPABILITIES, apply_cap_changes,
    capability_info, capability_name, capability_number, parse_capability,
};
pub use defaults::{
    DEFAULT_NOFILE, DEFAULT_PATH_ENV, OCI_VERSION, default_mounts, default_spec,
    docker_masked_paths, docker_readonly_paths,
};
pub use seccomp::{
    ALLOWED_PERSONALITIES, CLONE_NAMESPACE_FLAGS, DEFAULT_ERRNO, HOST_ARCHITECTURES,
    default_profile, default_seccomp,
};
pub use seccomp_profile::{SeccompProfile, SeccompProfileError};
