//! The docker CLI as the reference for wharf's own text: running both
//! binaries without a daemon (`unix:///nonexistent`), and docker's text
//! with the program name changed to `wharf`. docker must be installed: a
//! missing binary fails the test, it never skips it.

#![allow(dead_code)] // each test binary uses a different subset

use std::process::{Command, Output};

pub const WHARF: &str = env!("CARGO_BIN_EXE_wharf");
pub const DOCKER: &str = "/usr/local/bin/docker";

/// Runs `bin args` with no daemon reachable and 80 columns.
pub fn run(bin: &str, args: &[&str]) -> Output {
    assert!(
        std::path::Path::new(bin).is_file(),
        "{bin} is missing: the docker CLI is the reference for this test"
    );
    Command::new(bin)
        .args(args)
        .env("COLUMNS", "80")
        .env("DOCKER_HOST", "unix:///nonexistent")
        .env("WHARF_HOST", "unix:///nonexistent")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_TLS")
        .env_remove("DOCKER_CONTEXT")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"))
}

/// docker's text as wharf prints it: `docker` the program becomes `wharf`
/// (a whole word: `docker ps`, `'docker ps --help'`, `docker: ...`); the
/// product (`Docker`), paths (`~/.docker`) and addresses (`docs.docker.com`)
/// stay.
pub fn to_wharf(docker: &str) -> String {
    let mut out = String::with_capacity(docker.len());
    let mut rest = docker;
    while let Some(i) = rest.find("docker") {
        let before = rest[..i].chars().last().or_else(|| out.chars().last());
        let after = rest[i + 6..].chars().next();
        let word_start = before.is_none_or(|c| matches!(c, ' ' | '\'' | '"' | '\t' | '\n' | '('));
        let word_end = after.is_none_or(|c| matches!(c, ' ' | '\'' | '"' | ':' | '\n' | ')'));
        out.push_str(&rest[..i]);
        out.push_str(if word_start && word_end {
            "wharf"
        } else {
            "docker"
        });
        rest = &rest[i + 6..];
    }
    out.push_str(rest);
    out
}

#[test]
fn program_name_only() {
    assert_eq!(
        to_wharf(
            "Usage:  docker ps\nRun 'docker ps --help'\ndocker: bad\nShow docker disk usage (\"/root/.docker\") https://docs.docker.com/go/x Docker"
        ),
        "Usage:  wharf ps\nRun 'wharf ps --help'\nwharf: bad\nShow wharf disk usage (\"/root/.docker\") https://docs.docker.com/go/x Docker"
    );
}
