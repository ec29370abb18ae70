//! Argument counts as docker checks them: for every command wharf has (read
//! from wharf's own help, as tests/help.rs does, so a new command is
//! checked without touching this file), wharf and docker run with 0 to 4
//! arguments; wherever docker refuses the count (`requires at least 1
//! argument`, `accepts no arguments`, `unknown command` for a command
//! group...) wharf must print the same text and exit with the same status,
//! and wherever docker accepts it wharf must not refuse it. A few command
//! lines check the order of docker's checks (flag errors and --help before
//! the count). Both run with no daemon and a throwaway config directory.

mod docker_text;

use std::process::{Command, Output};

use docker_text::{DOCKER, WHARF, to_wharf};

/// wharf commands not compared, and why.
const NOT_COMPARED: &[(&str, &str)] = &[
    (
        "completion",
        "clap_complete's command taking a shell, not cobra's command group",
    ),
    ("daemon", "wharf's own: runs wharfd with any arguments"),
];

/// Runs `bin args` with no daemon, no stdin and its config in `config`.
fn run(bin: &str, config: &std::path::Path, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .env("COLUMNS", "80")
        .env("DOCKER_HOST", "unix:///nonexistent")
        .env("WHARF_HOST", "unix:///nonexistent")
        .env("DOCKER_CONFIG", config)
        .env("HOME", config)
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_TLS")
        .env_remove("DOCKER_CONTEXT")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"))
}

/// Command names listed under the `*Commands:` headings of a help text.
fn listed(h: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut on = false;
    for l in h.lines() {
        if l.ends_with("Commands:") {
            on = true;
        } else if l.is_empty() {
            on = false;
        } else if on {
            out.push(l.split_whitespace().next().unwrap().to_owned());
        }
    }
    out
}

/// Whether `stderr` is cobra's refusal of an argument count.
fn is_count_refusal(stderr: &str) -> bool {
    let first = stderr.lines().next().unwrap_or_default();
    first.contains("' requires ")
        || first.ends_with("' accepts no arguments")
        || first.contains(": unknown command: ")
}

/// Every command path wharf's help lists (`["container", "rm"]`).
fn command_paths(config: &std::path::Path) -> Vec<Vec<String>> {
    let help = |p: &[&str]| {
        let mut args = p.to_vec();
        args.push("--help");
        String::from_utf8(run(WHARF, config, &args).stdout).unwrap()
    };
    let mut paths = vec![Vec::new()];
    for name in listed(&help(&[])) {
        if NOT_COMPARED.iter().any(|(n, _)| *n == name) {
            continue;
        }
        paths.push(vec![name.clone()]);
        for leaf in listed(&help(&[&name])) {
            paths.push(vec![name.clone(), leaf]);
        }
    }
    paths
}

/// docker's and wharf's answers to `args`, or why they differ.
fn compare(config: &std::path::Path, args: &[&str]) -> Result<bool, String> {
    let d = run(DOCKER, config, args);
    let w = run(WHARF, config, args);
    let want = to_wharf(&String::from_utf8_lossy(&d.stderr));
    let got = String::from_utf8_lossy(&w.stderr).into_owned();
    let refused = is_count_refusal(&want);
    let same = if refused {
        got == want && w.status.code() == d.status.code() && w.stdout.is_empty()
    } else {
        !is_count_refusal(&got)
    };
    if same {
        Ok(refused)
    } else {
        Err(format!(
            "{args:?} (docker exit {:?}, wharf exit {:?}):\n--- docker\n{want}--- wharf\n{got}",
            d.status.code(),
            w.status.code()
        ))
    }
}

#[test]
fn every_command_counts_arguments_as_docker() {
    let config = tempfile::tempdir().unwrap();
    let paths = command_paths(config.path());
    assert!(paths.len() > 60, "too few commands found: {paths:?}");
    let names: Vec<String> = (1..=4).map(|i| format!("a{i}")).collect();
    let mut failures = Vec::new();
    let mut refusals = 0;
    // Each command on its own thread: two cores, mostly process start-up.
    let results: Vec<Result<bool, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = paths
            .iter()
            .map(|path| {
                let config = config.path();
                let names = &names;
                s.spawn(move || {
                    (0..=names.len())
                        .map(|n| {
                            let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
                            args.extend(names[..n].iter().map(String::as_str));
                            compare(config, &args)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    for r in results {
        match r {
            Ok(true) => refusals += 1,
            Ok(false) => {}
            Err(e) => failures.push(e),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Most commands refuse some count: the comparison did compare.
    assert!(
        refusals > paths.len(),
        "only {refusals} refusals seen: is docker answering?"
    );
}

#[test]
fn count_checked_after_flags_as_docker() {
    let config = tempfile::tempdir().unwrap();
    let cases: &[&[&str]] = &[
        // Refused for the count, with flags around.
        &["container", "rm", "-f"],
        &["-H", "unix:///x", "rm"],
        &["image", "tag", "--", "a"],
        &["ps", "-a", "--", "x"],
        &["container", "list", "x"],
        &["exec", "-it", "c"],
        &["run", "--rm", "-e", "A=1"],
        &["logs", "-f", "--tail", "3"],
        &["images", "-q", "a", "b"],
        &["system", "bogus"],
        &["image", "-x", "bogus"],
        // A flag error comes first.
        &["run", "--memory", "abc"],
        &["ps", "x", "--bogus"],
        &["rename", "--bogus", "a"],
        &["tag", "-z"],
        &["stop", "-t"],
        &["run", "-e"],
        // Accepted counts.
        &["exec", "c", "-it"],
        &["top", "c", "-ef"],
        &["cp", "-a", "c:/x", "-"],
    ];
    let mut failures = Vec::new();
    for args in cases {
        let d = run(DOCKER, config.path(), args);
        let w = run(WHARF, config.path(), args);
        let want = to_wharf(&String::from_utf8_lossy(&d.stderr));
        let got = String::from_utf8_lossy(&w.stderr).into_owned();
        let refused_or_flag = is_count_refusal(&want) || d.status.code() == Some(125);
        let same = if refused_or_flag {
            got == want && w.status.code() == d.status.code()
        } else {
            !is_count_refusal(&got) && w.status.code() != Some(125)
        };
        if !same {
            failures.push(format!(
                "{args:?} (docker exit {:?}, wharf exit {:?}):\n--- docker\n{want}--- wharf\n{got}",
                d.status.code(),
                w.status.code()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn help_wins_over_the_count() {
    let config = tempfile::tempdir().unwrap();
    for args in [
        &["ps", "x", "--help"][..],
        &["tag", "--help"],
        &["container"],
    ] {
        let d = run(DOCKER, config.path(), args);
        let w = run(WHARF, config.path(), args);
        assert_eq!(w.status.code(), Some(0), "wharf {args:?}");
        assert_eq!(d.status.code(), Some(0), "docker {args:?}");
        let text = |o: &Output| {
            let mut t = String::from_utf8_lossy(&o.stdout).into_owned();
            t.push_str(&String::from_utf8_lossy(&o.stderr));
            t
        };
        let (want, got) = (to_wharf(&text(&d)), text(&w));
        // Both print the command's help (compared in full by help.rs).
        assert_eq!(
            want.lines().next(),
            got.lines().next(),
            "{args:?}:\n--- docker\n{want}--- wharf\n{got}"
        );
        assert!(!is_count_refusal(&got), "{args:?}: {got}");
    }
}
