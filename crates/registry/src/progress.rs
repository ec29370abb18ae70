//! Progress events of pulls and pushes, shaped after docker's JSON progress
//! stream so the daemon can forward them one to one.
//!
//! A pull or push sends [`ProgressEvent`]s over a `tokio::sync::mpsc`
//! channel given by the caller. Per-layer events carry the layer's short
//! digest (12 hex characters, docker's `id`) and a [`Phase`]; image-level
//! events carry a status line or the final digest. [`Phase::status`] gives
//! the exact text docker prints (`Pulling fs layer`, `Download complete`,
//! `Already exists`, `Mounted from library/busybox`, ...), and
//! [`Phase::progress`] the `current`/`total` pair of its `progressDetail`.
//!
//! Byte-count events are throttled by the sender (see [`ProgressSink`]);
//! phase changes are always delivered, in order. A dropped receiver is not an
//! error: the transfer goes on silently.

use tokio::sync::mpsc;

use wharf_image::Digest;

/// The state of one layer in a pull or push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Pull: queued behind the concurrency limit (`Pulling fs layer`).
    Waiting,
    /// Pull: bytes received so far (including resumed ones) and the size.
    Downloading { current: u64, total: u64 },
    /// Pull: all bytes received, digest being checked.
    VerifyingChecksum,
    /// Pull: digest verified, blob committed.
    DownloadComplete,
    /// Pull: compressed bytes consumed by the unpacker so far.
    Extracting { current: u64, total: u64 },
    /// Pull: layer unpacked and its diffID verified.
    PullComplete,
    /// Pull: the layer's snapshot already exists locally.
    AlreadyExists,
    /// Push: queued.
    Preparing,
    /// Push: bytes sent so far.
    Pushing { current: u64, total: u64 },
    /// Push: uploaded.
    Pushed,
    /// Push: the registry already has the blob in this repository.
    LayerAlreadyExists,
    /// Push: the registry mounted the blob from another repository.
    Mounted { from: String },
}

impl Phase {
    /// Docker's status text for this phase.
    pub fn status(&self) -> String {
        match self {
            Phase::Waiting => "Pulling fs layer".into(),
            Phase::Downloading { .. } => "Downloading".into(),
            Phase::VerifyingChecksum => "Verifying Checksum".into(),
            Phase::DownloadComplete => "Download complete".into(),
            Phase::Extracting { .. } => "Extracting".into(),
            Phase::PullComplete => "Pull complete".into(),
            Phase::AlreadyExists => "Already exists".into(),
            Phase::Preparing => "Preparing".into(),
            Phase::Pushing { .. } => "Pushing".into(),
            Phase::Pushed => "Pushed".into(),
            Phase::LayerAlreadyExists => "Layer already exists".into(),
            Phase::Mounted { from } => format!("Mounted from {from}"),
        }
    }

    /// `(current, total)` for byte-counting phases.
    pub fn progress(&self) -> Option<(u64, u64)> {
        match self {
            Phase::Downloading { current, total }
            | Phase::Extracting { current, total }
            | Phase::Pushing { current, total } => Some((*current, *total)),
            _ => None,
        }
    }
}

/// One progress event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressEvent {
    /// A layer changed phase or made progress; `id` is its short digest.
    Layer { id: String, phase: Phase },
    /// An image-level status line (`Pulling from library/busybox`,
    /// `Status: Downloaded newer image for busybox:latest`).
    Status(String),
    /// The manifest digest of the pulled or pushed image (`Digest: sha256:...`).
    Digest(Digest),
}

/// Docker's short layer id: the first 12 hex characters of the digest.
pub fn short_id(digest: &Digest) -> String {
    digest.hex()[..12].to_owned()
}

/// Bytes between two byte-count events for one layer.
const BYTES_BETWEEN_EVENTS: u64 = 256 << 10;

/// The sending side used by pulls and pushes: optional, throttled, and
/// indifferent to a receiver that went away.
#[derive(Debug, Clone, Default)]
pub struct ProgressSink {
    tx: Option<mpsc::Sender<ProgressEvent>>,
}

impl ProgressSink {
    /// A sink sending to `tx` (or nowhere).
    pub fn new(tx: Option<mpsc::Sender<ProgressEvent>>) -> ProgressSink {
        ProgressSink { tx }
    }

    /// Sends an event, waiting for channel capacity.
    pub async fn send(&self, event: ProgressEvent) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(event).await;
        }
    }

    /// Sends a layer phase.
    pub async fn layer(&self, digest: &Digest, phase: Phase) {
        self.send(ProgressEvent::Layer {
            id: short_id(digest),
            phase,
        })
        .await;
    }

    /// Sends a byte-count phase when `current` moved at least the throttle
    /// distance since `last_sent` or reached `total`; updates `last_sent`.
    pub async fn bytes(&self, digest: &Digest, phase: Phase, last_sent: &mut u64) {
        let Some((current, total)) = phase.progress() else {
            return self.layer(digest, phase).await;
        };
        if current == total || current >= *last_sent + BYTES_BETWEEN_EVENTS || *last_sent == 0 {
            *last_sent = current.max(1);
            self.layer(digest, phase).await;
        }
    }

    /// Sends a status line.
    pub async fn status(&self, text: impl Into<String>) {
        self.send(ProgressEvent::Status(text.into())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_texts() {
        assert_eq!(Phase::Waiting.status(), "Pulling fs layer");
        assert_eq!(Phase::AlreadyExists.status(), "Already exists");
        assert_eq!(
            Phase::Mounted {
                from: "library/busybox".into()
            }
            .status(),
            "Mounted from library/busybox"
        );
        assert_eq!(
            Phase::Downloading {
                current: 5,
                total: 9
            }
            .progress(),
            Some((5, 9))
        );
        assert_eq!(Phase::PullComplete.progress(), None);
    }

    #[tokio::test]
    async fn throttles_byte_events_but_not_phases() {
        let (tx, mut rx) = mpsc::channel(100);
        let sink = ProgressSink::new(Some(tx));
        let d = Digest::from_bytes(b"x");
        let mut last = 0;
        for current in (0..=1_000_000u64).step_by(10_000) {
            sink.bytes(
                &d,
                Phase::Downloading {
                    current,
                    total: 1_000_000,
                },
                &mut last,
            )
            .await;
        }
        sink.layer(&d, Phase::DownloadComplete).await;
        drop(sink);
        let mut events = Vec::new();
        while let Some(e) = rx.recv().await {
            events.push(e);
        }
        // First, every ~256 KiB, the last one, then the phase change.
        assert!(events.len() >= 4 && events.len() <= 8, "{events:?}");
        assert_eq!(
            events.last(),
            Some(&ProgressEvent::Layer {
                id: short_id(&d),
                phase: Phase::DownloadComplete
            })
        );
        assert!(events.contains(&ProgressEvent::Layer {
            id: short_id(&d),
            phase: Phase::Downloading {
                current: 1_000_000,
                total: 1_000_000
            }
        }));
        // A closed receiver is not an error.
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        ProgressSink::new(Some(tx)).status("nobody listens").await;
    }
}
