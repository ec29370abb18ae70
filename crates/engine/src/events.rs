//! The events bus: every lifecycle change (container create, start, die,
//! destroy, ...) is published here once; `/events` subscribers receive them
//! live and the most recent ones are kept for `since` queries.
//!
//! Publishing never blocks: a subscriber that falls more than the channel's
//! capacity behind misses events (it is told by a `Lagged` error from the
//! receiver) rather than slowing the engine down.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::broadcast;

/// How many past events are kept for `since`.
const HISTORY: usize = 1024;

/// Who an event is about.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

/// One event, in the shape Docker's `/events` streams.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Object type: `container`, `image`, `network`, `volume`, `daemon`.
    #[serde(rename = "Type")]
    pub typ: &'static str,
    /// What happened: `create`, `start`, `die`, `destroy`, `exec_create: sh`, ...
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub scope: &'static str,
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
    /// Legacy fields (API < 1.22 clients still read them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

impl Event {
    /// A container event; `image` is the image name the container was created from.
    pub fn container(
        action: impl Into<String>,
        id: &str,
        attributes: BTreeMap<String, String>,
    ) -> Event {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let action = action.into();
        Event {
            typ: "container",
            status: Some(action.clone()),
            id: Some(id.to_owned()),
            from: attributes.get("image").cloned(),
            action,
            actor: Actor {
                id: id.to_owned(),
                attributes,
            },
            scope: "local",
            time: i64::try_from(now.as_secs()).unwrap_or(i64::MAX),
            time_nano: i64::try_from(now.as_nanos()).unwrap_or(i64::MAX),
        }
    }
}

/// The bus.
#[derive(Debug)]
pub struct Events {
    tx: broadcast::Sender<Event>,
    history: Mutex<VecDeque<Event>>,
}

impl Default for Events {
    fn default() -> Self {
        Events::new()
    }
}

impl Events {
    pub fn new() -> Events {
        Events {
            tx: broadcast::channel(256).0,
            history: Mutex::new(VecDeque::with_capacity(HISTORY)),
        }
    }

    /// Publishes an event to every subscriber and the history.
    pub fn publish(&self, e: Event) {
        tracing::debug!(typ = e.typ, action = %e.action, id = %e.actor.id, "event");
        {
            let mut h = self.history.lock().unwrap_or_else(|p| p.into_inner());
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back(e.clone());
        }
        let _ = self.tx.send(e);
    }

    /// Past events (oldest first) and a receiver for the following ones,
    /// taken atomically so none is lost or repeated.
    pub fn subscribe(&self) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        let rx = self.tx.subscribe();
        (h.iter().cloned().collect(), rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn history_then_live() {
        let bus = Events::new();
        bus.publish(Event::container("create", "a", BTreeMap::new()));
        let (past, mut rx) = bus.subscribe();
        assert_eq!(past.len(), 1);
        bus.publish(Event::container("start", "a", BTreeMap::new()));
        let e = rx.recv().await.unwrap();
        assert_eq!(e.action, "start");
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["Type"], "container");
        assert_eq!(json["Actor"]["ID"], "a");
        assert_eq!(json["status"], "start");
    }
}
