//! `run` in the foreground with `process.terminal: true` and no
//! `--console-socket` (what `wharf-runtime spec` + `run` does): the runtime
//! allocates the pty itself and proxies it to its own stdio, as runc does.

use wharf_testkit::{Bundle, Runtime, require_root, unique_id};

#[test]
fn run_with_terminal_proxies_the_pty() {
    require_root();
    let rt = Runtime::new(env!("CARGO_BIN_EXE_wharf-runtime")).expect("runtime");
    let mut bundle = Bundle::new().expect("bundle");
    bundle.process_mut().set_terminal(Some(true));
    bundle.probe_args::<&str>(&[]);
    let id = unique_id("fgtty");
    let out = rt.run(&bundle, &id).expect("run");
    assert!(out.status.success(), "run failed: {out:?}");
    // The pty turns \n into \r\n; the JSON parser does not mind.
    let text = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    let start = text
        .find('{')
        .unwrap_or_else(|| panic!("no JSON in {text:?}"));
    let report: serde_json::Value =
        serde_json::from_str(text[start..].trim()).expect("probe JSON through the pty");
    for stream in ["stdin", "stdout", "stderr"] {
        assert_eq!(
            report["tty"][stream]["isatty"], true,
            "{stream} must be the pty: {report}"
        );
    }
    assert_eq!(report["pid"], 1);
}

#[test]
fn run_with_terminal_returns_the_exit_code() {
    require_root();
    let rt = Runtime::new(env!("CARGO_BIN_EXE_wharf-runtime")).expect("runtime");
    let mut bundle = Bundle::new().expect("bundle");
    bundle.process_mut().set_terminal(Some(true));
    bundle.probe_args(&["exit", "9"]);
    let out = rt.run(&bundle, &unique_id("fgtty")).expect("run");
    assert_eq!(out.status.code(), Some(9), "{out:?}");
}
