//! docker-py (the Python SDK, from PyPI) against a temporary wharfd: the
//! script `docker_py/suite.py` drives ping, version, info, images,
//! containers.run (detached, environment, labels, foreground, errors),
//! logs, exec_run, put_archive/get_archive, update, diff, stop, wait,
//! attach with logs and remove, checking every result.
//!
//! docker-py comes from the system Python when it has it, else the test
//! makes a venv in its scratch directory and `pip install`s it, so a fresh
//! machine only needs python3 with venv and access to PyPI. The version
//! used is printed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Daemon;

fn has_docker_py(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import docker"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A python with docker-py importable.
fn python_with_docker_py(scratch: &Path) -> PathBuf {
    let system = PathBuf::from("python3");
    if std::env::var_os("WHARF_TEST_FRESH_VENV").is_none() && has_docker_py(&system) {
        return system;
    }
    let venv = scratch.join("venv");
    let st = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .expect("run python3 -m venv");
    assert!(st.success(), "python3 -m venv failed");
    let py = venv.join("bin/python");
    let out = Command::new(&py)
        .args(["-m", "pip", "install", "-q", "docker"])
        .output()
        .expect("run pip");
    assert!(
        out.status.success(),
        "pip install docker failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        has_docker_py(&py),
        "docker-py not importable after pip install"
    );
    py
}

#[test]
fn docker_py_suite() {
    let d = Daemon::start();
    let py = python_with_docker_py(&d.dir);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/docker_py/suite.py");
    let prefix = format!("py{}", std::process::id());
    let out = wharf_testkit::run_bounded(
        Command::new(&py)
            .arg(&script)
            .arg(format!("unix://{}", d.socket.display()))
            .arg(&prefix)
            .env_remove("DOCKER_HOST"),
        std::time::Duration::from_secs(240),
    )
    .expect("run the docker-py suite");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("ALL OK"),
        "docker-py suite failed ({}):\n{stdout}\nstderr:\n{}\ndaemon log tail:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        common::tail(&d.log(), 60)
    );
    assert!(stdout.starts_with("docker-py "), "{stdout}");
}
