//! docker's positional-argument counts: every docker command checks how
//! many arguments it was given once its flags have parsed, before anything
//! else (`'docker run' requires at least 1 argument`, usage line, exit 1),
//! and a management command (or the root) given an argument that names no
//! command answers `unknown command`. [`scan`] splits a command line as
//! docker's flag library does (flags and their values, `--`, and for the
//! commands that stop at their first argument, as `run`, everything after
//! it), [`Rule::of`] names each command's rule as docker's command
//! declares it, and [`check`] words a violation as docker does.

use clap::{Arg, ArgAction, Command};

/// How many positional arguments a command takes (docker's `cli.NoArgs`,
/// `cli.ExactArgs`, `cli.RequiresMinArgs`, `cli.RequiresMaxArgs`,
/// `cli.RequiresRangeArgs`), or any number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    Any,
    None,
    Exact(usize),
    Min(usize),
    Max(usize),
    Range(usize, usize),
}

impl Rule {
    /// The rule of the command at `path` (canonical names, `["container",
    /// "ls"]`), as docker declares it; a command docker does not have
    /// falls back to what its clap positionals accept.
    pub fn of(root: &Command, path: &[String]) -> Rule {
        let p: Vec<&str> = path.iter().map(String::as_str).collect();
        let cmd = lookup(root, path);
        if cmd.has_subcommands() {
            return Rule::None;
        }
        match p.as_slice() {
            ["ps"] | ["container", "ls"] => return Rule::None,
            ["images"] | ["image", "ls"] => return Rule::Max(1),
            _ => {}
        }
        let leaf = p.last().copied().unwrap_or_default();
        match leaf {
            "ps" | "version" | "info" | "events" | "df" | "load" | "prune" => Rule::None,
            "run" | "create" | "rm" | "rmi" | "start" | "stop" | "restart" | "kill" | "pause"
            | "unpause" | "wait" | "update" | "inspect" | "save" | "import" | "top" => Rule::Min(1),
            "exec" => Rule::Min(2),
            "pull" | "push" | "attach" | "diff" | "export" | "history" | "logs" => Rule::Exact(1),
            "rename" | "tag" | "cp" => Rule::Exact(2),
            "login" | "logout" => Rule::Max(1),
            "commit" | "port" => Rule::Range(1, 2),
            "stats" => Rule::Any,
            // wharf's own or clap-made (`completion SHELL`, `daemon
            // ARGS...`): clap's positionals already say it.
            "completion" | "daemon" | "help" => Rule::Any,
            _ => from_positionals(cmd),
        }
    }

    fn allows(self, n: usize) -> bool {
        match self {
            Rule::Any => true,
            Rule::None => n == 0,
            Rule::Exact(e) => n == e,
            Rule::Min(m) => n >= m,
            Rule::Max(m) => n <= m,
            Rule::Range(a, b) => (a..=b).contains(&n),
        }
    }

    /// A count this rule accepts, as close to `n` as possible.
    fn nearest(self, n: usize) -> usize {
        match self {
            Rule::Any => n,
            Rule::None => 0,
            Rule::Exact(e) => e,
            Rule::Min(m) => n.max(m),
            Rule::Max(m) => n.min(m),
            Rule::Range(a, b) => n.clamp(a, b),
        }
    }
}

/// The rule clap's positionals of `cmd` amount to.
fn from_positionals(cmd: &Command) -> Rule {
    let (mut min, mut max) = (0usize, Some(0usize));
    for a in cmd.get_positionals() {
        let many = matches!(a.get_action(), ArgAction::Append)
            || a.get_num_args().is_some_and(|n| n.max_values() > 1);
        if a.is_required_set() {
            min += a.get_num_args().map_or(1, |n| n.min_values().max(1));
        }
        max = match (max, many) {
            (Some(m), false) => Some(m + 1),
            _ => None,
        };
    }
    match (min, max) {
        (0, Some(0)) => Rule::None,
        (0, None) => Rule::Any,
        (a, Some(b)) if a == b => Rule::Exact(a),
        (a, None) => Rule::Min(a),
        (0, Some(b)) => Rule::Max(b),
        (a, Some(b)) => Rule::Range(a, b),
    }
}

/// A command line split as docker's flag parser splits it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// The command named (canonical names).
    pub path: Vec<String>,
    /// Where in the arguments the command's positional arguments are.
    pub positionals: Vec<usize>,
    /// The last flag wants a value and has none: a flag error comes first.
    pub dangling: bool,
}

/// Whether `a` takes the next argument as its value (an optional value
/// only after `=`).
fn takes_value(a: &Arg) -> bool {
    matches!(a.get_action(), ArgAction::Set | ArgAction::Append)
        && !a.is_require_equals_set()
        && a.get_num_args().is_none_or(|n| n.min_values() != 0)
}

/// Splits `args` (without the program name) against the tree `root`.
pub fn scan(root: &Command, args: &[String]) -> Scan {
    let mut out = Scan::default();
    let mut chain: Vec<&Command> = vec![root];
    let find = |chain: &[&Command], f: &dyn Fn(&Arg) -> bool| -> Option<Arg> {
        chain
            .iter()
            .rev()
            .find_map(|c| c.get_arguments().find(|a| f(a)).cloned())
    };
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let cmd = *chain.last().unwrap_or(&root);
        if a == "--" {
            out.positionals.extend(i + 1..args.len());
            break;
        }
        if let Some(long) = a.strip_prefix("--") {
            if !long.contains('=')
                && find(&chain, &|x| x.get_long() == Some(long)).is_some_and(|x| takes_value(&x))
            {
                i += 1;
                out.dangling = i >= args.len();
            }
        } else if let Some(shorts) = a.strip_prefix('-').filter(|s| !s.is_empty()) {
            // `-it`, `-uroot`, `-u root`: a short taking a value takes the
            // rest of the cluster, else the next argument.
            for (k, c) in shorts.char_indices() {
                if c == '=' {
                    break;
                }
                if find(&chain, &|x| x.get_short() == Some(c)).is_some_and(|x| takes_value(&x)) {
                    if k + c.len_utf8() == shorts.len() {
                        i += 1;
                        out.dangling = i >= args.len();
                    }
                    break;
                }
            }
        } else if out.positionals.is_empty()
            && let Some(sub) = cmd.find_subcommand(a)
        {
            out.path.push(sub.get_name().to_owned());
            chain.push(sub);
        } else {
            out.positionals.push(i);
            // docker's `run`, `exec`, `top`...: flags end at the first
            // argument, the rest is the container's command.
            if cmd.get_arguments().any(Arg::is_trailing_var_arg_set) {
                out.positionals.extend(i + 1..args.len());
                break;
            }
        }
        i += 1;
    }
    out
}

/// A command line whose argument count docker refuses: the message to
/// print, and the same command line with an acceptable count (extra
/// arguments dropped, missing ones stood in for) so that a flag error,
/// which docker reports first, can still be found.
pub struct Refusal {
    pub message: String,
    pub stand_in: Vec<String>,
}

/// docker's refusal of `args` for its argument count, if it refuses it.
pub fn check(root: &Command, args: &[String]) -> Option<Refusal> {
    let s = scan(root, args);
    if s.dangling {
        return None;
    }
    let rule = Rule::of(root, &s.path);
    let n = s.positionals.len();
    if rule.allows(n) {
        return None;
    }
    let name = if s.path.is_empty() {
        "wharf".to_owned()
    } else {
        format!("wharf {}", s.path.join(" "))
    };
    let usage = crate::help::usage(root, &s.path);
    let plural = |k: usize| if k == 1 { "argument" } else { "arguments" };
    let cmd = lookup(root, &s.path);
    let (what, read) = match rule {
        // docker's root has a `help` command: clap's answers for it.
        _ if s.path.is_empty() && args[s.positionals[0]] == "help" => return None,
        _ if cmd.has_subcommands() => {
            let first = &args[s.positionals[0]];
            let message = if s.path.is_empty() {
                format!(
                    "wharf: unknown command: wharf {first}\n\nRun 'wharf --help' for more information\n"
                )
            } else {
                format!(
                    "wharf: unknown command: {name} {first}\n\nUsage:  {usage}\n\nRun '{name} --help' for more information\n"
                )
            };
            return Some(Refusal {
                message,
                stand_in: stand_in(args, &s, 0),
            });
        }
        Rule::Any => return None,
        Rule::None => ("accepts no arguments".to_owned(), "Run"),
        Rule::Exact(e) => (format!("requires {e} {}", plural(e)), "Run"),
        Rule::Min(m) => (format!("requires at least {m} {}", plural(m)), "See"),
        // docker's own text, stray "S" included.
        Rule::Max(m) => (format!("requires at most {m} {}", plural(m)), "SRun"),
        Rule::Range(a, b) => (
            format!("requires at least {a} and at most {b} {}", plural(b)),
            "Run",
        ),
    };
    Some(Refusal {
        message: format!(
            "wharf: '{name}' {what}\n\nUsage:  {usage}\n\n{read} '{name} --help' for more information\n"
        ),
        stand_in: stand_in(args, &s, rule.nearest(n)),
    })
}

/// `args` with `want` positionals: the first `want` kept, or stand-ins
/// appended.
fn stand_in(args: &[String], s: &Scan, want: usize) -> Vec<String> {
    let drop: Vec<usize> = s.positionals.iter().copied().skip(want).collect();
    let mut out: Vec<String> = args
        .iter()
        .enumerate()
        .filter(|(i, _)| !drop.contains(i))
        .map(|(_, a)| a.clone())
        .collect();
    out.extend((s.positionals.len()..want).map(|_| "x".to_owned()));
    out
}

fn lookup<'a>(root: &'a Command, path: &[String]) -> &'a Command {
    let mut cmd = root;
    for n in path {
        cmd = cmd.find_subcommand(n).unwrap_or(cmd);
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn splits_as_pflag() {
        let root = crate::cli::Cli::tree();
        let s = scan(
            &root,
            &strings(&["-H", "x", "container", "rm", "-f", "a", "--", "-b"]),
        );
        assert_eq!(s.path, ["container", "rm"]);
        assert_eq!(s.positionals, [5, 7]);
        let s = scan(&root, &strings(&["run", "-e", "A=1", "img", "-e", "x"]));
        assert_eq!(s.positionals, [3, 4, 5], "run's flags end at the image");
        let s = scan(&root, &strings(&["exec", "-uroot", "c"]));
        assert_eq!(s.positionals, [2]);
        assert!(scan(&root, &strings(&["run", "-e"])).dangling);
        let s = scan(&root, &strings(&["container", "list", "x"]));
        assert_eq!(s.path, ["container", "ls"]);
    }

    #[test]
    fn words_as_docker() {
        let root = crate::cli::Cli::tree();
        let r = check(&root, &strings(&["container", "rm", "-f"])).unwrap();
        assert_eq!(
            r.message,
            "wharf: 'wharf container rm' requires at least 1 argument\n\nUsage:  wharf container rm [OPTIONS] CONTAINER [CONTAINER...]\n\nSee 'wharf container rm --help' for more information\n"
        );
        assert_eq!(r.stand_in, ["container", "rm", "-f", "x"]);
        let r = check(&root, &strings(&["tag", "a", "b", "c"])).unwrap();
        assert!(
            r.message
                .starts_with("wharf: 'wharf tag' requires 2 arguments\n")
        );
        assert_eq!(r.stand_in, ["tag", "a", "b"]);
        assert!(check(&root, &strings(&["tag", "a", "b"])).is_none());
        assert!(check(&root, &strings(&["run", "-e"])).is_none());
    }

    #[test]
    fn rule_from_positionals() {
        let cmd = Command::new("x")
            .arg(Arg::new("a").required(true))
            .arg(Arg::new("b"));
        assert_eq!(from_positionals(&cmd), Rule::Range(1, 2));
        let cmd = Command::new("x").arg(Arg::new("a").required(true).num_args(1..));
        assert_eq!(from_positionals(&cmd), Rule::Min(1));
        assert_eq!(from_positionals(&Command::new("x")), Rule::None);
    }
}
