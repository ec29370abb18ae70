//! The CLI suites' view of the shared temporary wharfd
//! (`wharf-testkit-daemon`): wharfd and wharf-shim built by cargo next to
//! the `wharf` under test, the root-only busybox image, and the `wharf`
//! binary (with the real docker CLI alongside, for comparison) pointed at
//! it. Dropping the guard removes everything, also when the test failed.

#![allow(dead_code)] // each test binary uses a different subset

use std::ops::Deref;
use std::path::Path;
use std::process::{Command, Output};

use wharf_testkit_daemon::{Binaries, Busybox};
#[allow(unused_imports)] // each test binary uses a different subset
pub use wharf_testkit_daemon::{DOCKER, tail};

pub const WHARF: &str = env!("CARGO_BIN_EXE_wharf");

/// A running wharfd; `ok`/`fails`/`wharf*` drive the `wharf` CLI, the
/// rest (`docker`, `dir`, `socket`, `log`, ...) is the shared fixture's.
pub struct Daemon(wharf_testkit_daemon::Daemon);

impl Deref for Daemon {
    type Target = wharf_testkit_daemon::Daemon;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Daemon {
    pub fn start() -> Daemon {
        Daemon::start_with_setup(|_| Vec::new())
    }

    /// Starts wharfd with extra flags, made by `setup` in the daemon's
    /// directory before it starts (certificates, for example).
    pub fn start_with_setup(setup: impl FnOnce(&Path) -> Vec<String>) -> Daemon {
        let bin_dir = Path::new(WHARF).parent().unwrap();
        Daemon(
            wharf_testkit_daemon::Daemon::builder(Binaries::cargo_build(bin_dir))
                .busybox(Busybox::ROOT_ONLY)
                .start_with_setup(setup),
        )
    }

    /// A `wharf` command aimed at this daemon through `$WHARF_HOST`.
    pub fn wharf_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(WHARF);
        c.args(args)
            .env("WHARF_HOST", self.host())
            .env_remove("DOCKER_HOST")
            .env("DOCKER_CONFIG", self.docker_config());
        c
    }

    /// Runs wharf (bounded time, stdin closed).
    pub fn wharf(&self, args: &[&str]) -> Output {
        self.run(&format!("wharf {args:?}"), &mut self.wharf_cmd(args))
    }

    /// Runs wharf with `input` on stdin.
    pub fn wharf_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        self.run_stdin(&format!("wharf {args:?}"), self.wharf_cmd(args), input)
    }

    /// Runs wharf, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.expect_success(&format!("wharf {args:?}"), &self.wharf(args))
    }

    /// Runs wharf, asserts failure: (exit code, stderr).
    pub fn fails(&self, args: &[&str]) -> (i32, String) {
        self.expect_failure(&format!("wharf {args:?}"), &self.wharf(args))
    }
}
