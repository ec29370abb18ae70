//! The daemon suites' view of the shared temporary wharfd
//! (`wharf-testkit-daemon`): this package's wharfd with the test shim
//! (`$WHARF_TEST_SHIM` or built by cargo), debug logs, the busybox image
//! with the `web` user, and the real docker CLI pointed at it. Dropping
//! the guard removes everything, also when the test failed.

#![allow(dead_code)] // each test binary uses a different subset

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};

use wharf_testkit_daemon::{Binaries, Busybox, DaemonBuilder};
#[allow(unused_imports)] // each test binary uses a different subset
pub use wharf_testkit_daemon::{DOCKER, tail};

const WHARFD: &str = env!("CARGO_BIN_EXE_wharfd");

/// The shim the daemon runs (restarts pass it to `spawn`).
pub fn shim_binary() -> PathBuf {
    wharf_testkit_daemon::test_shim(Path::new(WHARFD).parent().unwrap())
}

/// A running wharfd; `ok`/`fails` drive the docker CLI (stdout trimmed),
/// the rest (`docker`, `spawn`, `stop_with`, `http`, ...) is the shared
/// fixture's.
pub struct Daemon(wharf_testkit_daemon::Daemon);

impl Deref for Daemon {
    type Target = wharf_testkit_daemon::Daemon;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for Daemon {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Daemon {
    fn builder() -> DaemonBuilder {
        wharf_testkit_daemon::Daemon::builder(Binaries::with_wharfd(WHARFD))
            .busybox(Busybox::WITH_WEB_USER)
            .log_level("debug")
    }

    /// A fresh daemon with the busybox image.
    pub fn start() -> Daemon {
        Daemon(Daemon::builder().start())
    }

    /// A fresh daemon with extra wharfd arguments.
    pub fn start_with(extra_args: Vec<String>) -> Daemon {
        Daemon(Daemon::builder().args(extra_args).start())
    }

    /// A fresh daemon with extra wharfd arguments made by `setup` in the
    /// daemon's directory first (they may name files it writes there).
    pub fn start_with_setup(setup: impl FnOnce(&Path) -> Vec<String>) -> Daemon {
        Daemon(Daemon::builder().start_with_setup(setup))
    }

    /// Runs docker and asserts success; returns trimmed stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let what = format!("docker {args:?}");
        let out = self.expect_success(&what, &self.docker(args));
        out.trim_end().to_owned()
    }

    /// Runs docker, asserts failure: (exit code, stderr).
    pub fn fails(&self, args: &[&str]) -> (i32, String) {
        self.expect_failure(&format!("docker {args:?}"), &self.docker(args))
    }
}
