//! `wharf-probe`: a small static binary that wharf's tests run inside
//! containers. With no arguments it prints one JSON object describing what
//! the process sees (namespaces, credentials, capabilities, rlimits, mounts,
//! cgroup limits, environment, descriptors, terminal); with a subcommand it
//! performs one action and reports it as one JSON line (see `commands`).
//!
//! It is built with `+crt-static` by `wharf_testkit::probe_path()` so it runs
//! in a rootfs that holds nothing else; it must not depend on the dynamic
//! loader, NSS or any file in the container.
#![forbid(unsafe_code)]

mod commands;
mod procfs;
mod report;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.split_first() {
        None => {
            commands::emit(&report::report());
            0
        }
        Some((cmd, rest)) => commands::run(cmd, rest),
    };
    std::process::exit(code);
}
