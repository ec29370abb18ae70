//! The engine's side of the shim seam: errors of launching and talking to
//! per-container shims, and the types of attached streams handed to the API.
//!
//! The engine never links the runtime; it starts `wharf-shim` with
//! [`wharf_shim_api::spawn_shim`] and drives it through
//! [`wharf_shim_api::ShimClient`].

pub use wharf_shim_api::{AttachInput, AttachOutput, Frame, StreamKind};

/// Why a shim could not be launched or answered badly.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// Launching or adopting the shim failed.
    #[error("launch")]
    Spawn {
        #[source]
        source: wharf_shim_api::SpawnError,
    },
    /// A request to the shim failed.
    #[error("{op}")]
    Call {
        op: &'static str,
        #[source]
        source: wharf_shim_api::ClientError,
    },
}

pub(crate) fn call(op: &'static str) -> impl FnOnce(wharf_shim_api::ClientError) -> ShimError {
    move |source| ShimError::Call { op, source }
}

/// The streams of an attach or exec session: the process's output as
/// frames (stdout/stderr; with a terminal everything is stdout) and its
/// stdin when requested.
#[derive(Debug)]
pub struct AttachSession {
    /// Whether the process has a terminal (raw stream, no multiplexing).
    pub tty: bool,
    pub output: Option<AttachOutput>,
    pub input: Option<AttachInput>,
}
