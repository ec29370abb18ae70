//! `wharf-client`: an async Docker Engine API client, used by the `wharf`
//! command line and by tests.
//!
//! A [`Client`] talks HTTP/1.1 to a daemon at a [`Host`] (a unix socket, or
//! `tcp://host:port`), one connection per request (cheap on a local socket,
//! and it keeps hijacked streams independent). [`Client::connect`] pings the
//! daemon and negotiates the API version: the lower of the daemon's
//! `Api-Version` and [`MAX_API_VERSION`]; every later path is prefixed with
//! `/v<version>`. Calls return `serde_json::Value`s or small typed records;
//! a daemon error becomes [`ClientError::Daemon`] carrying the HTTP status
//! and the daemon's `message`. Streams: [`stream::JsonStream`] for progress
//! and events, [`stream::Demux`] for docker's 8-byte framed stdout/stderr,
//! and [`Client::hijack`] for attach/exec (101 `Upgrade: tcp`, then raw
//! bidirectional bytes). `tcp://` hosts may use TLS, verified or not
//! ([`Client::connect_tls`] with [`TlsOptions`]).
#![forbid(unsafe_code)]

pub mod api;
pub mod host;
pub mod stream;
pub mod tls;
mod transport;

pub use host::{Host, HostError};
pub use hyper::body::Incoming;
pub use tls::{ServerCheck, TlsError, TlsOptions};
pub use transport::{Body, Client, Hijacked};

/// The newest API version this client speaks.
pub const MAX_API_VERSION: &str = "1.50";

/// What can go wrong talking to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing answers at the host (no socket, refused, no permission).
    #[error("cannot connect to the wharf daemon at {host}")]
    Connect {
        host: String,
        #[source]
        source: std::io::Error,
    },
    /// The TLS settings cannot be used (unreadable or invalid files).
    #[error("invalid tls configuration")]
    Tls(#[source] TlsError),
    /// The TLS handshake with the daemon failed (untrusted or wrong certificate).
    #[error("tls handshake with the daemon at {host} failed")]
    TlsHandshake {
        host: String,
        #[source]
        source: std::io::Error,
    },
    /// The daemon answered with an error status.
    #[error("error response from daemon: {message}")]
    Daemon { status: u16, message: String },
    /// The HTTP exchange failed mid-way.
    #[error("http exchange with the daemon failed ({what})")]
    Http {
        what: &'static str,
        #[source]
        source: hyper::Error,
    },
    /// An I/O error on a stream or an upload source.
    #[error("i/o error on {what}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The daemon's answer could not be decoded.
    #[error("cannot decode the daemon's answer to {path}")]
    Decode {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    /// The daemon did not switch protocols for a hijacked stream.
    #[error("daemon did not upgrade the connection for {path} (status {status})")]
    NoUpgrade { path: String, status: u16 },
    /// A request could not be built (a bad header value, for example).
    #[error("invalid request {path}: {reason}")]
    Request { path: String, reason: String },
}

impl ClientError {
    /// The HTTP status of a daemon error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Daemon { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True for a daemon 404.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

/// Percent-encodes a query component (RFC 3986 unreserved kept).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Builds a query string from pairs, skipping `None` values.
#[derive(Debug, Default, Clone)]
pub struct Query(String);

impl Query {
    pub fn new() -> Query {
        Query::default()
    }

    /// Adds `key=value`.
    pub fn set(mut self, key: &str, value: impl AsRef<str>) -> Query {
        self.0.push(if self.0.is_empty() { '?' } else { '&' });
        self.0.push_str(&encode(key));
        self.0.push('=');
        self.0.push_str(&encode(value.as_ref()));
        self
    }

    /// Adds `key=value` when `value` is `Some`.
    pub fn opt(self, key: &str, value: Option<impl AsRef<str>>) -> Query {
        match value {
            Some(v) => self.set(key, v),
            None => self,
        }
    }

    /// Adds `key=1` when `flag` is set.
    pub fn flag(self, key: &str, flag: bool) -> Query {
        if flag { self.set(key, "1") } else { self }
    }

    /// Adds `key=true|false` always.
    pub fn bool(self, key: &str, flag: bool) -> Query {
        self.set(key, if flag { "true" } else { "false" })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_encodes_and_skips() {
        let q = Query::new()
            .set("filters", r#"{"label":["a=b"]}"#)
            .opt("name", None::<&str>)
            .flag("all", true)
            .flag("size", false)
            .bool("force", false);
        assert_eq!(
            q.as_str(),
            "?filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%7D&all=1&force=false"
        );
    }

    #[test]
    fn daemon_error_status() {
        let e = ClientError::Daemon {
            status: 404,
            message: "No such container: x".into(),
        };
        assert!(e.is_not_found());
        assert_eq!(
            e.to_string(),
            "error response from daemon: No such container: x"
        );
    }
}
