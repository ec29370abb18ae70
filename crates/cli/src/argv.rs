//! pflag's boolean flags on top of clap: docker accepts `--rm=false`,
//! `--all=1`, `-a=true` for every switch, and refuses `--rm=maybe` with
//! `strconv.ParseBool`'s words. clap's switches take no value, so the
//! command line is rewritten before clap sees it: a true value becomes the
//! bare switch, a false one is dropped (a switch's default is off), along
//! with any earlier occurrence of the same switch, since the last one wins.

use clap::{Arg, ArgAction, Command};

use crate::opts::flags;

/// A switch given a value that is not a boolean: the flag as docker names
/// it (`-a, --all`), the value, and the reason.
#[derive(Debug, PartialEq, Eq)]
pub struct BadBool {
    pub flag: String,
    pub value: String,
    pub reason: String,
}

fn is_switch(a: &Arg) -> bool {
    matches!(a.get_action(), ArgAction::SetTrue)
}

/// Whether `a` takes the next argument as its value: a flag whose value
/// is optional (`--tlsverify[=false]`) takes one only after `=`.
fn takes_value(a: &Arg) -> bool {
    matches!(a.get_action(), ArgAction::Set | ArgAction::Append) && !a.is_require_equals_set()
}

/// Rewrites `args` (without the program name) as described above.
pub fn normalize_switches(root: &Command, args: &[String]) -> Result<Vec<String>, BadBool> {
    let mut out: Vec<String> = Vec::with_capacity(args.len());
    let mut cmd = root;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            out.push(a.clone());
            out.extend(it.cloned());
            break;
        }
        // `--long=value` or `-s=value`.
        let (name_part, value) = match a.split_once('=') {
            Some((n, v)) if n.starts_with('-') => (n, Some(v)),
            _ => (a.as_str(), None),
        };
        let arg = if let Some(long) = name_part.strip_prefix("--") {
            cmd.get_arguments().find(|x| x.get_long() == Some(long))
        } else if let Some(short) = name_part.strip_prefix('-') {
            let mut cs = short.chars();
            match (cs.next(), cs.next()) {
                (Some(c), None) => cmd.get_arguments().find(|x| x.get_short() == Some(c)),
                _ => None,
            }
        } else {
            None
        };
        match (arg, value) {
            (Some(arg), Some(v)) if is_switch(arg) => {
                let on = flags::boolean(v).map_err(|reason| BadBool {
                    flag: display(arg),
                    value: v.to_owned(),
                    reason,
                })?;
                let id = arg.get_id().clone();
                out.retain(|prev| !names_arg(cmd, prev, &id));
                if on {
                    out.push(name_part.to_owned());
                }
            }
            (Some(arg), None) if takes_value(arg) && !a.contains('=') => {
                out.push(a.clone());
                if let Some(v) = it.next() {
                    out.push(v.clone());
                }
            }
            (None, _) if !a.starts_with('-') => {
                out.push(a.clone());
                match cmd.find_subcommand(a) {
                    Some(sub) => cmd = sub,
                    None => {
                        // A positional: the rest may belong to the
                        // container's command, leave it as written. docker
                        // reads no flag after it (`exec c -it` runs `-it`):
                        // `--` tells clap so.
                        if cmd.get_positionals().any(|p| p.is_trailing_var_arg_set())
                            || cmd.get_arguments().any(Arg::is_trailing_var_arg_set)
                        {
                            if it.len() > 0 {
                                out.push("--".to_owned());
                            }
                            out.extend(it.cloned());
                            break;
                        }
                    }
                }
            }
            _ => out.push(a.clone()),
        }
    }
    Ok(out)
}

/// Whether the argument text `s` names the switch `id` of `cmd`.
fn names_arg(cmd: &Command, s: &str, id: &clap::Id) -> bool {
    let Some(arg) = cmd.get_arguments().find(|a| a.get_id() == id) else {
        return false;
    };
    let name = s.split('=').next().unwrap_or(s);
    arg.get_long().is_some_and(|l| name == format!("--{l}"))
        || arg.get_short().is_some_and(|c| name == format!("-{c}"))
}

/// pflag's name of a flag: `-a, --all` or `--rm`.
pub fn display(a: &Arg) -> String {
    let long = a.get_long().unwrap_or_default();
    match a.get_short() {
        Some(c) => format!("-{c}, --{long}"),
        None => format!("--{long}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(args: &[&str]) -> Result<Vec<String>, BadBool> {
        let v: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        normalize_switches(&crate::cli::Cli::tree(), &v)
    }

    #[test]
    fn switches_take_go_booleans() {
        assert_eq!(norm(&["ps", "--all=true"]).unwrap(), ["ps", "--all"]);
        assert_eq!(norm(&["ps", "-a", "--all=0"]).unwrap(), ["ps"]);
        assert_eq!(norm(&["ps", "-a=T"]).unwrap(), ["ps", "-a"]);
        assert_eq!(
            norm(&["run", "--rm=false", "-e", "--rm=true", "busybox", "--rm=x"]).unwrap(),
            ["run", "-e", "--rm=true", "busybox", "--", "--rm=x"],
            "a flag value and the container's command are left alone"
        );
        assert_eq!(
            norm(&["ps", "--all=maybe"]),
            Err(BadBool {
                flag: "-a, --all".into(),
                value: "maybe".into(),
                reason: "strconv.ParseBool: parsing \"maybe\": invalid syntax".into()
            })
        );
        assert_eq!(
            norm(&["container", "rm", "--force=1", "x"]).unwrap(),
            ["container", "rm", "--force", "x"]
        );
    }

    #[test]
    fn no_flags_after_the_image() {
        let cli = |args: &[&str]| {
            let v = norm(args).unwrap();
            crate::cli::Cli::parse_args(std::iter::once("wharf".to_owned()).chain(v)).unwrap()
        };
        let crate::cli::Cli {
            cmd: Some(crate::cli::Cmd::Exec(x)),
            ..
        } = cli(&["exec", "c", "-it"])
        else {
            panic!("not exec")
        };
        assert_eq!(x.command, ["-it"]);
        let crate::cli::Cli {
            cmd: Some(crate::cli::Cmd::Run(x)),
            ..
        } = cli(&["run", "--rm", "img", "--", "x", "-e"])
        else {
            panic!("not run")
        };
        assert_eq!(
            x.opts.command,
            ["--", "x", "-e"],
            "docker keeps a `--` after the image"
        );
    }
}
