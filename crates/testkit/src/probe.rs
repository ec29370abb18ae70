//! The static probe binary (`tests/probe`) and its output.
//!
//! [`probe_path`] builds `wharf-probe` once per test process as a static
//! executable (`+crt-static`, release) into `<workspace>/target/probe`, a
//! target directory of its own so it never waits on the lock of the outer
//! `cargo test` build; cargo's own lock makes concurrent test processes safe.
//! Set `$WHARF_PROBE` to use a prebuilt probe instead. [`probe_json`] and
//! [`probe_lines`] parse what the probe printed.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

/// Errors from locating, building or checking the probe.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("$WHARF_PROBE points at {path}, which does not exist")]
    MissingOverride { path: PathBuf },
    #[error("failed to run cargo to build the probe in {workspace}")]
    Spawn {
        workspace: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("building the probe failed ({status}):\n{stderr}")]
    Build {
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("failed to read ELF headers of {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not a 64-bit little-endian ELF file")]
    NotElf { path: PathBuf },
    #[error("{path} is dynamically linked (has a PT_INTERP program header)")]
    NotStatic { path: PathBuf },
}

/// The workspace root (two levels above this crate's manifest).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(Path::parent)
        .unwrap_or(manifest)
        .to_owned()
}

/// Path of the static probe; builds it on first use. Panics (failing the
/// test, with cargo's output) when it cannot be built or is not static.
pub fn probe_path() -> PathBuf {
    match try_probe_path() {
        Ok(path) => path.to_owned(),
        Err(err) => panic!("wharf-probe unavailable: {err}"),
    }
}

/// Like [`probe_path`], returning the error instead of panicking. The result
/// (success or failure) is computed once per process.
pub fn try_probe_path() -> Result<&'static Path, &'static ProbeError> {
    static PROBE: OnceLock<Result<PathBuf, ProbeError>> = OnceLock::new();
    PROBE
        .get_or_init(locate_or_build)
        .as_ref()
        .map(PathBuf::as_path)
}

fn locate_or_build() -> Result<PathBuf, ProbeError> {
    if let Some(path) = std::env::var_os("WHARF_PROBE") {
        let path = PathBuf::from(path);
        if !path.exists() {
            return Err(ProbeError::MissingOverride { path });
        }
        ensure_static(&path)?;
        return Ok(path);
    }
    let workspace = workspace_root();
    let target_dir = workspace.join("target").join("probe");
    let triple = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "-p",
            "wharf-probe",
            "--release",
            "--target",
            &triple,
        ])
        .current_dir(&workspace)
        .env("CARGO_TARGET_DIR", &target_dir)
        // With --target, RUSTFLAGS apply to target crates only (not build
        // scripts or proc macros); the encoded form would take precedence.
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .output()
        .map_err(|source| ProbeError::Spawn {
            workspace: workspace.clone(),
            source,
        })?;
    if !output.status.success() {
        return Err(ProbeError::Build {
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    let path = target_dir.join(&triple).join("release").join("wharf-probe");
    ensure_static(&path)?;
    Ok(path)
}

fn ensure_static(path: &Path) -> Result<(), ProbeError> {
    if is_static_elf(path)? {
        Ok(())
    } else {
        Err(ProbeError::NotStatic {
            path: path.to_owned(),
        })
    }
}

/// Whether `path` is an ELF64 little-endian executable without a `PT_INTERP`
/// program header, i.e. one that runs without the dynamic loader (static or
/// static-pie).
pub fn is_static_elf(path: &Path) -> Result<bool, ProbeError> {
    const PT_INTERP: u32 = 3;
    let read_err = |source| ProbeError::Read {
        path: path.to_owned(),
        source,
    };
    let not_elf = || ProbeError::NotElf {
        path: path.to_owned(),
    };
    let data = fs::read(path).map_err(read_err)?;
    // e_ident: magic, EI_CLASS = 2 (64-bit), EI_DATA = 1 (little-endian).
    if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 || data[5] != 1 {
        return Err(not_elf());
    }
    let u16_at = |off: usize| {
        data.get(off..off + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |off: usize| {
        data.get(off..off + 4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    };
    let u64_at = |off: usize| {
        data.get(off..off + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    };
    let phoff = u64_at(0x20)
        .and_then(|v| usize::try_from(v).ok())
        .ok_or_else(not_elf)?;
    let phentsize = usize::from(u16_at(0x36).ok_or_else(not_elf)?);
    let phnum = usize::from(u16_at(0x38).ok_or_else(not_elf)?);
    for i in 0..phnum {
        let p_type = u32_at(phoff + i * phentsize).ok_or_else(not_elf)?;
        if p_type == PT_INTERP {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Parses the probe's stdout as one JSON value; panics with the stdout,
/// stderr and exit status when it is not valid JSON.
pub fn probe_json(output: &Output) -> Value {
    match serde_json::from_slice(&output.stdout) {
        Ok(value) => value,
        Err(err) => panic!(
            "probe output is not one JSON value ({err})\n{}",
            describe(output)
        ),
    }
}

/// Parses every non-empty stdout line as JSON (subcommands such as `alloc`
/// and `signals` print one object per event); panics like [`probe_json`].
pub fn probe_lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| match serde_json::from_str(line) {
            Ok(value) => value,
            Err(err) => panic!(
                "probe line {line:?} is not JSON ({err})\n{}",
                describe(output)
            ),
        })
        .collect()
}

/// Status, stdout and stderr of a finished command, for failure messages.
pub fn describe(output: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_elf_is_rejected() {
        let err = is_static_elf(Path::new("/proc/self/status")).unwrap_err();
        assert!(matches!(err, ProbeError::NotElf { .. }), "{err}");
    }

    #[test]
    fn dynamic_executable_is_not_static() {
        // The test binary itself is linked dynamically against glibc.
        let me = std::env::current_exe().unwrap();
        assert!(!is_static_elf(&me).unwrap());
    }
}
