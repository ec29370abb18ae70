//! The engine's error vocabulary: [`ErrorKind`] says what sort of failure an
//! error is (the API turns it into an HTTP status in one place), and
//! [`EngineError`] carries the context a user or a stranger needs.
//!
//! Messages follow Docker's wording where clients (the docker CLI, docker-py,
//! compose) match on them or users know them ("No such container: x").

use std::path::PathBuf;

/// What sort of failure an error is, independent of any transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The named object does not exist.
    NotFound,
    /// The request conflicts with the current state (name in use, wrong state).
    Conflict,
    /// The request is malformed or asks for something impossible.
    InvalidArgument,
    /// Nothing to do: the object is already in the requested state.
    NotModified,
    /// The operation is not allowed.
    Forbidden,
    /// Credentials are missing or were refused (by a registry).
    Unauthorized,
    /// A dependency is not available right now.
    Unavailable,
    /// A bug or an unexpected failure of the host.
    Internal,
}

/// Why an engine operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No container has this ID, ID prefix or name.
    #[error("No such container: {id}")]
    NoSuchContainer { id: String },
    /// No image matches the reference or ID.
    #[error("No such image: {reference}")]
    NoSuchImage { reference: String },
    /// No exec instance has this ID.
    #[error("No such exec instance: {id}")]
    NoSuchExec { id: String },
    /// An ID prefix matches several containers.
    #[error("multiple IDs found with provided prefix: {prefix}")]
    AmbiguousPrefix { prefix: String },
    /// The container name is taken.
    #[error(
        "Conflict. The container name \"{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
    )]
    NameInUse { name: String, id: String },
    /// The container name does not follow Docker's grammar.
    #[error("Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName { name: String },
    /// A request field has a value the engine cannot honour.
    #[error("invalid {field}: {reason}")]
    InvalidConfig { field: &'static str, reason: String },
    /// A request Docker refuses, in Docker's own words (the message is
    /// what `dockerd` answers, so clients and scripts see the same text).
    #[error("{reason}")]
    Refused { reason: String },
    /// The operation needs a running container.
    #[error("container {id} is not running")]
    NotRunning { id: String },
    /// The operation needs a stopped container.
    #[error(
        "cannot remove container \"{name}\": container is running: stop the container before removing or force remove"
    )]
    RemoveRunning { name: String },
    /// The container is paused.
    #[error("container {id} is paused, unpause the container before stopping or killing")]
    Paused { id: String },
    /// The container is already in the requested state (start of a running
    /// container, stop of a stopped one).
    #[error("container {id} is already {state}")]
    AlreadyInState { id: String, state: &'static str },
    /// The container is being removed by another request.
    #[error("removal of container {id} is already in progress")]
    RemovalInProgress { id: String },
    /// Persisting or loading container metadata failed.
    #[error("container metadata")]
    Store {
        #[from]
        source: crate::store::StoreError,
    },
    /// The image store or content store failed.
    #[error("image {reference}")]
    Image {
        reference: String,
        #[source]
        source: crate::images::ImageError,
    },
    /// Preparing or removing a container's root filesystem failed.
    #[error("root filesystem of container {id}")]
    Snapshot {
        id: String,
        #[source]
        source: wharf_image::snapshot::SnapshotError,
    },
    /// Talking to a container's shim failed.
    #[error("shim of container {id}")]
    Shim {
        id: String,
        #[source]
        source: crate::shim::ShimError,
    },
    /// A filesystem operation on the engine's own files failed.
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The container's process could not be started (command not found, ...).
    #[error("failed to create task for container: {reason}")]
    StartFailed { id: String, reason: String },
    /// Reading the container's cgroup failed.
    #[error("cgroup of container {id}")]
    Cgroup {
        id: String,
        #[source]
        source: wharf_cgroups::CgroupError,
    },
    /// The process ignored SIGKILL for longer than the engine waits.
    #[error("container {id} did not exit {secs}s after SIGKILL")]
    KillTimeout { id: String, secs: u64 },
    /// A background task of the engine failed (a panic: a bug).
    #[error("engine task {what} failed")]
    Task {
        what: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
    /// `cp`, `export` or `diff` failed.
    #[error(transparent)]
    Archive(#[from] crate::containers::archive::ArchiveError),
    /// An image operation on the engine's behalf (`commit`) failed; its
    /// messages are already Docker's.
    #[error(transparent)]
    ImageOps(#[from] wharf_image::ops::OpsError),
    /// The networks service failed (its state file, a lookup).
    #[error(transparent)]
    Network(#[from] crate::networks::NetworkError),
    /// A JSON document the engine wrote could not be (de)serialised.
    #[error("{what} of container {id}")]
    Json {
        what: &'static str,
        id: String,
        #[source]
        source: serde_json::Error,
    },
}

impl EngineError {
    /// The kind of failure, for transports to map to their own codes.
    pub fn kind(&self) -> ErrorKind {
        use EngineError as E;
        match self {
            E::NoSuchContainer { .. } | E::NoSuchImage { .. } | E::NoSuchExec { .. } => {
                ErrorKind::NotFound
            }
            E::AmbiguousPrefix { .. }
            | E::InvalidName { .. }
            | E::InvalidConfig { .. }
            | E::Refused { .. } => ErrorKind::InvalidArgument,
            E::NameInUse { .. }
            | E::NotRunning { .. }
            | E::RemoveRunning { .. }
            | E::Paused { .. }
            | E::RemovalInProgress { .. } => ErrorKind::Conflict,
            E::AlreadyInState { .. } => ErrorKind::NotModified,
            E::Image { source, .. } => source.kind(),
            E::Archive(a) => a.kind(),
            E::Network(n) => n.kind(),
            E::ImageOps(e) => match e.kind() {
                wharf_image::ops::ErrorKind::NotFound => ErrorKind::NotFound,
                wharf_image::ops::ErrorKind::Conflict => ErrorKind::Conflict,
                wharf_image::ops::ErrorKind::InvalidArgument => ErrorKind::InvalidArgument,
                wharf_image::ops::ErrorKind::Internal => ErrorKind::Internal,
            },
            E::Store { .. }
            | E::Snapshot { .. }
            | E::Shim { .. }
            | E::Io { .. }
            | E::StartFailed { .. }
            | E::Cgroup { .. }
            | E::KillTimeout { .. }
            | E::Task { .. }
            | E::Json { .. } => ErrorKind::Internal,
        }
    }

    /// The message with every source appended (`a: b: c`), as Docker prints
    /// wrapped errors.
    pub fn full_message(&self) -> String {
        let mut out = self.to_string();
        let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(self);
        while let Some(e) = cur {
            out.push_str(": ");
            out.push_str(&e.to_string());
            cur = e.source();
        }
        out
    }
}

pub(crate) fn io_err(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> EngineError {
    let path = path.into();
    move |source| EngineError::Io { op, path, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_chained_messages() {
        let e = EngineError::NoSuchContainer { id: "abc".into() };
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(e.full_message(), "No such container: abc");
        let e = EngineError::Io {
            op: "read",
            path: "/x".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        assert_eq!(e.kind(), ErrorKind::Internal);
        assert!(
            e.full_message().starts_with("read /x: "),
            "{}",
            e.full_message()
        );
        assert_eq!(
            EngineError::AlreadyInState {
                id: "a".into(),
                state: "started"
            }
            .kind(),
            ErrorKind::NotModified
        );
    }
}
