//! `--help` in docker's shape: the same usage line, description, aliases
//! and Options block layout as the docker CLI's help for the same command,
//! and the same option names for run, ps, images and logs (wharf may lack
//! docker's swarm/volume-driver options, never invent others).

use std::collections::BTreeSet;
use std::process::Command;

const WHARF: &str = env!("CARGO_BIN_EXE_wharf");
const DOCKER: &str = "/usr/local/bin/docker";

fn help(bin: &str, args: &[&str]) -> String {
    let o = Command::new(bin)
        .args(args)
        .arg("--help")
        .env("COLUMNS", "80")
        .output()
        .unwrap();
    assert!(o.status.success(), "{bin} {args:?} --help");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `--long` names in an Options block.
fn option_names(h: &str) -> BTreeSet<String> {
    h.lines()
        .filter_map(|l| {
            let t = l.trim_start();
            let t = t.strip_prefix(|c: char| c == '-').map_or(t, |_| t);
            let i = t.find("--")?;
            (l.starts_with("  -") || l.starts_with("      --"))
                .then(|| t[i..].split_whitespace().next().unwrap().to_owned())
        })
        .collect()
}

#[test]
fn help_has_dockers_structure() {
    for (cmd, must) in [
        (
            &["run"][..],
            &[
                "--detach",
                "--rm",
                "--env",
                "--publish",
                "--volume",
                "--memory",
                "--restart",
                "--name",
                "--interactive",
                "--tty",
            ][..],
        ),
        (
            &["ps"],
            &[
                "--all",
                "--filter",
                "--format",
                "--last",
                "--latest",
                "--no-trunc",
                "--quiet",
                "--size",
            ],
        ),
        (
            &["images"],
            &[
                "--all",
                "--digests",
                "--filter",
                "--format",
                "--no-trunc",
                "--quiet",
            ],
        ),
        (
            &["logs"],
            &[
                "--details",
                "--follow",
                "--since",
                "--tail",
                "--timestamps",
                "--until",
            ],
        ),
        (&["container", "ls"], &["--all", "--quiet"]),
    ] {
        let w = help(WHARF, cmd);
        let d = help(DOCKER, cmd).replace("docker", "wharf");
        let wl: Vec<&str> = w.lines().collect();
        let dl: Vec<&str> = d.lines().collect();
        // Usage line, blank, description, blank, Aliases, the aliases line.
        assert_eq!(wl[..6], dl[..6], "{cmd:?}:\n{w}\n---\n{d}");
        assert!(wl.contains(&"Options:"), "{w}");
        let wn = option_names(&w);
        let dn = option_names(&d);
        for m in must {
            assert!(wn.contains(*m), "{cmd:?} lacks {m}:\n{w}");
        }
        let extra: Vec<&String> = wn.difference(&dn).collect();
        assert!(
            extra.is_empty(),
            "{cmd:?}: options docker does not have: {extra:?}"
        );
        // The description column starts where docker's does.
        let desc_col = |h: &str, flag: &str| {
            h.lines().find(|l| l.contains(flag)).map(|l| {
                let after = l.find(flag).unwrap() + flag.len();
                after + l[after..].len() - l[after..].trim_start().len()
            })
        };
        let probe = must[0];
        assert_eq!(
            desc_col(&w, probe),
            desc_col(&d, probe),
            "{cmd:?} column of {probe}:\n{w}"
        );
    }
    // logs has nothing wharf lacks: byte for byte.
    assert_eq!(
        help(WHARF, &["logs"]),
        help(DOCKER, &["logs"]).replace("docker", "wharf")
    );
    // Management commands list their commands.
    let c = help(WHARF, &["container"]);
    assert!(
        c.starts_with("Usage:  wharf container COMMAND\n\nManage containers\n\nCommands:\n"),
        "{c}"
    );
    assert!(
        c.ends_with("\nRun 'wharf container COMMAND --help' for more information on a command.\n"),
        "{c}"
    );
    let top = help(WHARF, &[]);
    assert!(
        top.starts_with("Usage:  wharf [OPTIONS] COMMAND\n"),
        "{top}"
    );
    assert!(
        top.contains("\nGlobal Options:\n") && top.contains("      --tlsverify "),
        "{top}"
    );
}
