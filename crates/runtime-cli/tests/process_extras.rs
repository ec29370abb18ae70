//! `linux.personality`, `process.ioPriority`, and the spec features that are
//! refused with a clear error instead of being silently ignored.

use oci_spec::runtime::{
    IOPriorityClass, LinuxIOPriorityBuilder, LinuxPersonalityBuilder, LinuxPersonalityDomain,
    SchedulerBuilder,
};
use wharf_testkit::{Bundle, Runtime, require_root, unique_id};

fn runtime() -> Runtime {
    Runtime::new(env!("CARGO_BIN_EXE_wharf-runtime")).expect("runtime")
}

#[test]
fn personality_linux32_changes_uname() {
    require_root();
    let rt = runtime();
    let mut bundle = Bundle::new().expect("bundle");
    bundle.args(&["/bin/uname", "-m"]);
    let p = LinuxPersonalityBuilder::default()
        .domain(LinuxPersonalityDomain::PerLinux32)
        .build()
        .unwrap();
    bundle
        .spec_mut()
        .linux_mut()
        .as_mut()
        .unwrap()
        .set_personality(Some(p));
    let out = rt.run(&bundle, &unique_id("pers")).expect("run");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "i686");
}

#[test]
fn io_priority_is_applied() {
    require_root();
    let rt = runtime();
    let mut bundle = Bundle::new().expect("bundle");
    bundle.args(&["/bin/ionice", "-p", "1"]);
    let io = LinuxIOPriorityBuilder::default()
        .class(IOPriorityClass::IoprioClassBe)
        .priority(6i64)
        .build()
        .unwrap();
    bundle.process_mut().set_io_priority(Some(io));
    let out = rt.run(&bundle, &unique_id("ioprio")).expect("run");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("best-effort") && text.contains('6'),
        "ionice said: {text}"
    );
}

#[test]
fn unsupported_fields_are_refused() {
    require_root();
    let rt = runtime();
    let mut bundle = Bundle::new().expect("bundle");
    let sched = SchedulerBuilder::default().build().unwrap();
    bundle.process_mut().set_scheduler(Some(sched));
    let id = unique_id("refuse");
    let out = rt.run(&bundle, &id).expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("process.scheduler is not supported by wharf-runtime"),
        "stderr: {err}"
    );
    // Refused before anything was created.
    assert!(!rt.root().join(&id).exists());
}

#[test]
fn no_signal_is_ignored_or_blocked_in_the_container() {
    require_root();
    let rt = runtime();
    let mut bundle = Bundle::new().expect("bundle");
    // grep itself is the container's process: its status shows what it inherited.
    bundle.args(&["/bin/grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"]);
    let out = rt.run(&bundle, &unique_id("sigs")).expect("run");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("SigBlk:\t0000000000000000"), "{text}");
    assert!(text.contains("SigIgn:\t0000000000000000"), "{text}");
}
