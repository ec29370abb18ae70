//! Test fixtures around a running wharfd, shared by the end-to-end suites
//! of `wharf-cli` and `wharf-daemon` (a separate crate from
//! `wharf-testkit` because it needs `wharf-image`, whose own tests use
//! `wharf-testkit`).
//!
//! - [`Daemon`]: a temporary wharfd with its own data root, exec root and
//!   socket under a fresh `/tmp` directory, a [`Busybox`] image written
//!   straight into its stores, and the docker CLI pointed at it; dropping
//!   it removes the containers, stops the daemon, kills what is left,
//!   unmounts and deletes everything, also when the test panicked.
//! - [`Registry`]: a real `docker-registry` on 127.0.0.1, optionally behind
//!   htpasswd Basic auth, seeded with skopeo from OCI layouts made by
//!   [`write_oci_layout`].
//! - [`make_certs`]: a test CA with a server and a client pair (openssl).
//!
//! Everything here panics with context on failure: these are fixtures for
//! tests, where a panic is the report.

#![forbid(unsafe_code)]

mod busybox;
mod daemon;
mod http;
mod oci;
mod registry;
mod tls;

pub use busybox::{Busybox, install_busybox, tar_of};
pub use daemon::{Binaries, Daemon, DaemonBuilder, test_shim};
pub use http::http;
pub use oci::{daemon_busybox_layer, write_oci_layout};
pub use registry::Registry;
pub use tls::{Certs, make_certs};

/// The real docker CLI (client only), driven against wharfd.
pub const DOCKER: &str = "/usr/local/bin/docker";

/// The last `n` lines of `s` (daemon logs in panic messages).
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .expect("local address of a bound listener")
        .port()
}
