//! CVE-2019-5736 class: the runtime binary executing inside a container's
//! namespaces (the init before `start`) must not be writable through
//! `/proc/<pid>/exe`, and the host binary must stay unchanged.

use std::io::ErrorKind;

use wharf_testkit::{Bundle, Runtime, require_root, unique_id};

#[test]
fn init_exe_cannot_be_written() {
    require_root();
    let rt = Runtime::new(env!("CARGO_BIN_EXE_wharf-runtime")).expect("runtime");
    let mut bundle = Bundle::new().expect("bundle");
    bundle.probe_args(&["exit", "0"]);
    let id = unique_id("seal");
    rt.create(&bundle, &id).expect("create");
    let pid = rt.state(&id).expect("state")["pid"].as_i64().expect("pid");
    let exe = format!("/proc/{pid}/exe");
    let err = std::fs::OpenOptions::new()
        .append(true)
        .open(&exe)
        .expect_err("the init's exe must not open for writing");
    // EROFS (read-only overlay view) or EPERM (sealed memfd fallback); never
    // ETXTBSY, which would mean the host binary itself is being executed.
    assert!(
        err.kind() == ErrorKind::ReadOnlyFilesystem || err.kind() == ErrorKind::PermissionDenied,
        "unexpected error writing {exe}: {err}"
    );
    let host = std::fs::canonicalize(env!("CARGO_BIN_EXE_wharf-runtime")).unwrap();
    let target = std::fs::read_link(&exe).unwrap();
    assert_ne!(target, host, "the init must not execute the host binary");
    rt.delete_force(&id).expect("delete");
}
