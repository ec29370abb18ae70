//! `wharf X --help` is `docker X --help` with the program named wharf, for
//! every command wharf has: the commands are read from wharf's own help
//! (the root's lists and each management command's), so a new command is
//! compared without touching this test. Byte for byte, except where a
//! table below names what wharf leaves out on purpose (docker options it
//! does not implement, docker commands it does not have) with the reason;
//! those entries are removed from docker's text and the rest compared
//! (option text with its wrapping normalised, since a removed long flag
//! narrows docker's columns). The docker CLI must be installed.

mod docker_text;

use docker_text::{DOCKER, WHARF, run, to_wharf};

/// docker options wharf does not offer, per command, and why.
const OMITTED_OPTIONS: &[(&str, &[&str], &str)] = &[
    (
        "run",
        &["--gpus", "--use-api-socket"],
        "no GPU device requests; no API-socket bind with credentials",
    ),
    (
        "create",
        &["--gpus", "--use-api-socket"],
        "no GPU device requests; no API-socket bind with credentials",
    ),
    (
        "start",
        &["--checkpoint", "--checkpoint-dir"],
        "no checkpoint/restore",
    ),
    ("images", &["--tree"], "docker's experimental tree view"),
    ("image ls", &["--tree"], "docker's experimental tree view"),
    (
        "push",
        &["--platform"],
        "no single-platform push of a multi-platform image",
    ),
    ("rmi", &["--platform"], "no per-platform removal"),
    ("image rm", &["--platform"], "no per-platform removal"),
    ("history", &["--platform"], "no per-platform history"),
    ("save", &["--platform"], "no per-platform save"),
    ("load", &["--platform"], "no per-platform load"),
    ("image inspect", &["--platform"], "no per-platform inspect"),
];

/// docker commands wharf does not have, as listed in a command list.
const MISSING_COMMANDS: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "build",
            "search",
            "builder",
            "checkpoint",
            "context",
            "manifest",
            "network",
            "plugin",
            "trust",
            "volume",
        ],
    ),
    ("image", &["build"]),
];

/// wharf commands not compared, and why.
const NOT_COMPARED: &[(&str, &str)] = &[
    (
        "completion",
        "scripts come from clap_complete, not cobra: other install notes and flags",
    ),
    ("daemon", "wharf's own: runs wharfd"),
];

fn help(bin: &str, path: &[&str]) -> String {
    let mut args = path.to_vec();
    args.push("--help");
    let o = run(bin, &args);
    assert!(o.status.success(), "{bin} {args:?}");
    String::from_utf8(o.stdout).unwrap()
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

/// `text` without the Options entries of `flags` (an entry: its flag line
/// and the continuation lines under it).
fn drop_options(text: &str, flags: &[&str]) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for l in text.lines() {
        let entry_start = l.starts_with("  -") || l.starts_with("      --");
        if entry_start {
            let long = l.split_whitespace().find(|w| w.starts_with("--"));
            skipping = long.is_some_and(|f| flags.contains(&f));
        } else if !l.starts_with("        ") {
            skipping = false;
        }
        if !skipping {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

/// The Options block with each entry's whitespace collapsed.
fn normalised(text: &str) -> (String, Vec<String>) {
    let (head, opts) = text.split_once("\nOptions:\n").unwrap_or((text, ""));
    let mut entries: Vec<String> = Vec::new();
    for l in opts.lines() {
        if l.starts_with("  -") || l.starts_with("      --") || entries.is_empty() {
            entries.push(String::new());
        }
        let e = entries.last_mut().unwrap();
        e.push(' ');
        e.push_str(l.trim());
    }
    (
        head.to_owned(),
        entries
            .iter()
            .map(|e| e.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect(),
    )
}

/// docker's list lines of commands wharf lacks removed.
fn drop_commands(text: &str, names: &[&str]) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(l) = lines.next() {
        // docker's swarm group: all of it.
        if l == "Swarm Commands:" {
            while lines.peek().is_some_and(|n| !n.is_empty()) {
                lines.next();
            }
            lines.next();
            continue;
        }
        let name = l
            .strip_prefix("  ")
            .and_then(|r| r.split_whitespace().next());
        if l.starts_with("  ") && !l.starts_with("   ") && name.is_some_and(|n| names.contains(&n))
        {
            continue;
        }
        out.push_str(l);
        out.push('\n');
    }
    out
}

#[test]
fn every_command_as_docker() {
    let root = help(WHARF, &[]);
    let mut paths: Vec<Vec<String>> = Vec::new();
    for name in listed(&root) {
        if NOT_COMPARED.iter().any(|(n, _)| *n == name) {
            continue;
        }
        let sub = help(WHARF, &[&name]);
        paths.push(vec![name.clone()]);
        for leaf in listed(&sub) {
            paths.push(vec![name.clone(), leaf]);
        }
    }
    assert!(paths.len() > 60, "too few commands found: {paths:?}");
    let mut failures = Vec::new();
    for path in &paths {
        let p: Vec<&str> = path.iter().map(String::as_str).collect();
        let key = p.join(" ");
        let w = help(WHARF, &p);
        let d = to_wharf(&help(DOCKER, &p));
        // A management form shares its top-level command's omissions.
        let omitted = OMITTED_OPTIONS
            .iter()
            .find(|(k, _, _)| *k == key)
            .or_else(|| {
                OMITTED_OPTIONS
                    .iter()
                    .find(|(k, _, _)| p.len() == 2 && *k == p[1] && p[0] != "system")
            })
            .map(|(_, f, _)| *f);
        let missing = MISSING_COMMANDS
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, n)| *n);
        let ok = match (omitted, missing) {
            (Some(flags), _) => {
                let d = drop_options(&d, flags);
                for f in flags {
                    assert!(
                        !w.contains(&format!("--{}", f.trim_start_matches('-'))),
                        "{key}: {f} is listed as omitted but wharf shows it"
                    );
                }
                normalised(&w) == normalised(&d)
            }
            (None, Some(names)) => w == drop_commands(&d, names),
            (None, None) => w == d,
        };
        if !ok {
            failures.push(format!(
                "wharf {key} --help:\n--- docker\n{d}--- wharf\n{w}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn root_as_docker() {
    let w = help(WHARF, &[]);
    let d = to_wharf(&help(DOCKER, &[]));
    let missing = MISSING_COMMANDS
        .iter()
        .find(|(k, _)| k.is_empty())
        .unwrap()
        .1;
    // docker's contexts do not exist in wharf; `daemon` is wharf's own.
    let d = drop_options(&drop_commands(&d, missing), &["--context"]);
    let w = drop_commands(&w, &["daemon"]);
    assert_eq!(w, d);
}

#[test]
fn not_compared_commands_still_answer() {
    for (name, _) in NOT_COMPARED {
        let o = run(WHARF, &[name, "--help"]);
        assert!(o.status.success(), "wharf {name} --help");
    }
    // completion is hidden from the root list, as docker's is.
    assert!(!listed(&help(WHARF, &[])).contains(&"completion".to_owned()));
}

#[test]
fn table_helpers() {
    let text = "Options:\n  -a, --all   x\n      --gpus gpu-request   GPU\n                           more\n  -q, --quiet   y\n";
    assert_eq!(
        drop_options(text, &["--gpus"]),
        "Options:\n  -a, --all   x\n  -q, --quiet   y\n"
    );
    assert_eq!(
        drop_commands("Commands:\n  build       B\n  run         R\n", &["build"]),
        "Commands:\n  run         R\n"
    );
}
