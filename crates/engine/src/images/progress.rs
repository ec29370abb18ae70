//! Progress of long image operations (pull, push), shaped like Docker's
//! progress stream but free of its JSON: the API renders [`Progress`].
//!
//! An operation runs in its own task (so a client that goes away does not
//! cancel a pull another client joined) and fans its messages out to every
//! subscriber ([`Operation`]) with back-pressure: a slow reader slows the
//! operation down rather than losing lines, a reader that went away is
//! dropped. The outcome is published once, after the last message, so a
//! subscriber reads every message before [`Step::Done`].

use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch};
use wharf_registry::progress::ProgressEvent;

use super::error::ImageServiceError;

/// One progress message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// An image-level line; `id` is set for `Pulling from ...` (the tag).
    Status { id: Option<String>, status: String },
    /// A layer's phase; `id` is its short digest (12 hex); `bytes` is
    /// `(current, total)` while bytes move.
    Layer {
        id: String,
        status: String,
        bytes: Option<(u64, u64)>,
    },
    /// A tag was pushed (Docker's `aux` message).
    Pushed {
        tag: String,
        digest: String,
        size: u64,
    },
}

impl From<ProgressEvent> for Progress {
    fn from(e: ProgressEvent) -> Progress {
        match e {
            ProgressEvent::Layer { id, phase } => Progress::Layer {
                id,
                status: phase.status(),
                bytes: phase.progress(),
            },
            ProgressEvent::Status(status) => Progress::Status { id: None, status },
            ProgressEvent::Digest(d) => Progress::Status {
                id: None,
                status: format!("Digest: {d}"),
            },
        }
    }
}

/// How an operation ended: `None` on success.
pub type Outcome = Option<Arc<ImageServiceError>>;

/// The producing side of an operation, shared by its task and (for pulls)
/// the table of operations in flight.
#[derive(Debug)]
pub(crate) struct Broadcast {
    subscribers: Mutex<Vec<mpsc::Sender<Progress>>>,
    done: watch::Sender<Option<Outcome>>,
}

impl Broadcast {
    pub(crate) fn new() -> Arc<Broadcast> {
        Arc::new(Broadcast {
            subscribers: Mutex::new(Vec::new()),
            done: watch::channel(None).0,
        })
    }

    /// A new subscriber, receiving the messages sent from now on.
    pub(crate) fn subscribe(&self) -> Operation {
        let (tx, rx) = mpsc::channel(64);
        self.subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(tx);
        Operation {
            rx,
            done: self.done.subscribe(),
            finished: false,
        }
    }

    /// Sends a message to every subscriber still listening.
    pub(crate) async fn send(&self, p: Progress) {
        let subs: Vec<mpsc::Sender<Progress>> = self
            .subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut gone = Vec::new();
        for s in subs {
            if s.send(p.clone()).await.is_err() {
                gone.push(s);
            }
        }
        if !gone.is_empty() {
            self.subscribers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|s| !gone.iter().any(|g| g.same_channel(s)));
        }
    }

    /// Publishes the outcome, then closes every subscriber's channel.
    pub(crate) fn finish(&self, outcome: Outcome) {
        self.done.send_replace(Some(outcome));
        self.subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

/// What a subscriber reads next.
#[derive(Debug)]
pub enum Step {
    Progress(Progress),
    /// The operation ended (`None`: success).
    Done(Outcome),
}

/// One subscriber of a running operation.
#[derive(Debug)]
pub struct Operation {
    rx: mpsc::Receiver<Progress>,
    done: watch::Receiver<Option<Outcome>>,
    finished: bool,
}

impl Operation {
    /// The next message, then the outcome, then `None`.
    pub async fn next(&mut self) -> Option<Step> {
        if self.finished {
            return None;
        }
        if let Some(p) = self.rx.recv().await {
            return Some(Step::Progress(p));
        }
        self.finished = true;
        let outcome = match self.done.wait_for(Option::is_some).await {
            Ok(v) => v.clone().flatten(),
            // The task went away without an outcome: it panicked.
            Err(_) => Some(Arc::new(ImageServiceError::Task { what: "progress" })),
        };
        Some(Step::Done(outcome))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_message_before_the_outcome() {
        let b = Broadcast::new();
        let mut a = b.subscribe();
        let mut c = b.subscribe();
        let producer = {
            let b = b.clone();
            tokio::spawn(async move {
                for i in 0..200u64 {
                    b.send(Progress::Layer {
                        id: "abc".into(),
                        status: "Downloading".into(),
                        bytes: Some((i, 200)),
                    })
                    .await;
                }
                b.finish(None);
            })
        };
        // `c` goes away half-way: the producer must not stall on it.
        for _ in 0..10 {
            assert!(matches!(c.next().await, Some(Step::Progress(_))));
        }
        drop(c);
        let mut n = 0;
        loop {
            match a.next().await {
                Some(Step::Progress(_)) => n += 1,
                Some(Step::Done(o)) => {
                    assert!(o.is_none());
                    break;
                }
                None => panic!("outcome missing"),
            }
        }
        assert_eq!(n, 200);
        assert!(a.next().await.is_none());
        producer.await.unwrap();
    }

    #[test]
    fn registry_events_map_to_docker_lines() {
        let p = Progress::from(ProgressEvent::Layer {
            id: "0123456789ab".into(),
            phase: wharf_registry::progress::Phase::Downloading {
                current: 5,
                total: 10,
            },
        });
        assert_eq!(
            p,
            Progress::Layer {
                id: "0123456789ab".into(),
                status: "Downloading".into(),
                bytes: Some((5, 10))
            }
        );
    }
}
