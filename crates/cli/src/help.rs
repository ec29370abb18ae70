//! `--help` in docker's shape, rendered from the clap command tree:
//! `Usage:  wharf ps [OPTIONS]`, the one-line description, `Aliases:`
//! (the top-level and management forms of one command), and an `Options:`
//! block laid out as docker's flag library does (`-s, --long type`, the
//! description in one column wrapped to the terminal width less one, and
//! `(default x)`). Management commands and the root list their commands.

use clap::{Arg, ArgAction, Command};

/// The root's "Common Commands", in docker's order.
const COMMON: &[&str] = &[
    "run", "exec", "ps", "build", "pull", "push", "images", "login", "logout", "search", "version",
    "info",
];

/// The command path named on the command line (`["container", "ls"]`),
/// skipping flags and their values.
pub fn path_from_args(root: &Command, args: &[String]) -> Vec<String> {
    let mut path = Vec::new();
    let mut cmd = root;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if let Some(flag) = a.strip_prefix("--") {
            if !flag.contains('=')
                && takes_value(cmd.get_arguments().find(|x| x.get_long() == Some(flag)))
            {
                it.next();
            }
            continue;
        }
        if let Some(shorts) = a.strip_prefix('-') {
            let last = shorts.chars().last();
            if shorts.len() == 1 && takes_value(cmd.get_arguments().find(|x| x.get_short() == last))
            {
                it.next();
            }
            continue;
        }
        match cmd.find_subcommand(a) {
            Some(sub) => {
                path.push(sub.get_name().to_owned());
                cmd = sub;
            }
            None => break,
        }
    }
    path
}

/// Whether `a` takes the next argument as its value (an optional value
/// only after `=`).
fn takes_value(a: Option<&Arg>) -> bool {
    a.is_some_and(|a| {
        matches!(a.get_action(), ArgAction::Set | ArgAction::Append) && !a.is_require_equals_set()
    })
}

/// The other names of `path` (`ps` is also `container ls/list/ps`).
fn aliases(root: &Command, path: &[String]) -> Vec<String> {
    let names = |p: &[&str]| -> Vec<String> {
        let mut cmd = root;
        for n in p {
            match cmd.find_subcommand(n) {
                Some(c) => cmd = c,
                None => return Vec::new(),
            }
        }
        let prefix = p[..p.len() - 1].join(" ");
        std::iter::once(cmd.get_name())
            .chain(cmd.get_visible_aliases())
            .map(|n| format!("wharf {prefix} {n}").replace("  ", " "))
            .collect()
    };
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    let pairs: &[(&[&str], &[&str])] = &[
        (&["ps"], &["container", "ls"]),
        (&["images"], &["image", "ls"]),
        (&["rmi"], &["image", "rm"]),
        (&["rm"], &["container", "rm"]),
        (&["events"], &["system", "events"]),
        (&["info"], &["system", "info"]),
    ];
    let mut forms: Vec<Vec<&str>> = Vec::new();
    // `inspect` (any object) and `container/image inspect` are different
    // commands in docker.
    if p.last() == Some(&"inspect") {
        return Vec::new();
    }
    for (top, managed) in pairs {
        if p == *top || p == *managed {
            forms = vec![managed.to_vec(), top.to_vec()];
        }
    }
    if forms.is_empty() {
        let leaf = *p.last().unwrap_or(&"");
        for group in ["container", "image"] {
            let in_group = root
                .find_subcommand(group)
                .and_then(|g| g.find_subcommand(leaf))
                .is_some();
            let top = root.find_subcommand(leaf).is_some();
            if in_group && top && (p.len() == 1 || p[0] == group) {
                forms = vec![vec![group, leaf], vec![leaf]];
            }
        }
    }
    if forms.is_empty() {
        return Vec::new();
    }
    forms.iter().flat_map(|f| names(f)).collect()
}

/// Renders the help of the command at `path`.
pub fn render(root: &Command, path: &[String], width: usize) -> String {
    let mut cmd = root;
    for n in path {
        cmd = cmd.find_subcommand(n).unwrap_or(cmd);
    }
    let name = if path.is_empty() {
        "wharf".to_owned()
    } else {
        format!("wharf {}", path.join(" "))
    };
    // The long description when there is one (`login`, `cp`).
    let text = |c: &Command| {
        c.get_long_about()
            .or_else(|| c.get_about())
            .map(|a| a.to_string())
    };
    let about = text(cmd)
        .or_else(|| {
            // A management form documented at the top level.
            path.last()
                .and_then(|l| root.find_subcommand(l))
                .and_then(text)
        })
        .or_else(|| {
            // `container ls` is documented as `ps`.
            aliases(root, path)
                .iter()
                .filter_map(|a| a.strip_prefix("wharf "))
                .filter(|a| !a.contains(' '))
                .find_map(|top| root.find_subcommand(top).and_then(text))
        })
        .unwrap_or_default();
    let mut out = String::new();
    let subs: Vec<&Command> = cmd.get_subcommands().filter(|c| !c.is_hide_set()).collect();
    if !subs.is_empty() {
        let usage = if path.is_empty() {
            "wharf [OPTIONS] COMMAND".to_owned()
        } else {
            format!("{name} COMMAND")
        };
        out.push_str(&format!("Usage:  {usage}\n\n{about}\n"));
        let about_of = |s: &Command| {
            s.get_about()
                .map(|a| a.to_string())
                .or_else(|| {
                    root.find_subcommand(s.get_name())
                        .and_then(|t| t.get_about().map(|a| a.to_string()))
                })
                .unwrap_or_default()
        };
        // The root groups its commands as docker's does; a management
        // command lists its own, sorted.
        let mut groups: Vec<(&str, Vec<&Command>)> = Vec::new();
        if path.is_empty() {
            let (common, management, rest): (Vec<&Command>, Vec<&Command>, Vec<&Command>) = {
                let c: Vec<&Command> = COMMON
                    .iter()
                    .filter_map(|n| subs.iter().copied().find(|s| s.get_name() == *n))
                    .collect();
                let m: Vec<&Command> = subs
                    .iter()
                    .copied()
                    .filter(|s| s.has_subcommands())
                    .collect();
                let r: Vec<&Command> = subs
                    .iter()
                    .copied()
                    .filter(|s| !s.has_subcommands() && !COMMON.contains(&s.get_name()))
                    .collect();
                (c, m, r)
            };
            groups.push(("Common Commands", common));
            groups.push(("Management Commands", management));
            groups.push(("Commands", rest));
        } else {
            groups.push(("Commands", subs));
        }
        for (title, mut list) in groups {
            if title != "Common Commands" {
                list.sort_by_key(|c| c.get_name());
            }
            out.push_str(&format!("\n{title}:\n"));
            for s in list {
                out.push_str(&format!("  {:<11} {}\n", s.get_name(), about_of(s)));
            }
        }
        if path.is_empty() {
            out.push_str("\nGlobal Options:\n");
            out.push_str(&options(cmd, width));
        }
        out.push_str(&format!(
            "\nRun '{name} COMMAND --help' for more information on a command.\n"
        ));
        if path.is_empty() {
            out.push_str(
                "\nFor more help on how to use Docker, head to https://docs.docker.com/go/guides/\n",
            );
        }
        return out;
    }
    out.push_str(&format!("Usage:  {}\n\n{about}\n", usage(root, path)));
    let al = aliases(root, path);
    if !al.is_empty() {
        out.push_str(&format!("\nAliases:\n  {}\n", al.join(", ")));
    }
    let opts = options(cmd, width);
    if !opts.is_empty() {
        out.push_str("\nOptions:\n");
        out.push_str(&opts);
    }
    out
}

/// The usage line of the command at `path` (`wharf ps [OPTIONS]`).
pub fn usage(root: &Command, path: &[String]) -> String {
    let cmd = lookup(root, path);
    let name = display_name(path);
    // cobra's use line of a command group, as its errors print it (its
    // help says `COMMAND` instead).
    if cmd.has_subcommands() {
        return if path.is_empty() {
            "wharf [OPTIONS] COMMAND [ARG...]".to_owned()
        } else {
            name
        };
    }
    match cmd.get_overridden_usage() {
        Some(u) => {
            let u = u.to_string();
            // `wharf run [...]` also fits `wharf container run [...]`;
            // further lines (cp's second form) stay as written.
            match u.split_once(' ').and_then(|(_, rest)| rest.split_once(' ')) {
                Some((_, args)) => format!("{name} {args}"),
                None => u,
            }
        }
        None => {
            // docker writes [OPTIONS] only for commands that have options.
            let mut u = if visible_flags(cmd).is_empty() {
                name
            } else {
                format!("{name} [OPTIONS]")
            };
            for a in cmd.get_positionals() {
                let v = a
                    .get_value_names()
                    .and_then(|v| v.first())
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| a.get_id().to_string().to_uppercase());
                let many = matches!(a.get_action(), ArgAction::Append)
                    || a.get_num_args().is_some_and(|n| n.max_values() > 1);
                let one = match (many, a.is_required_set()) {
                    (true, true) => format!(" {v} [{v}...]"),
                    (true, false) => format!(" [{v}...]"),
                    (false, true) => format!(" {v}"),
                    (false, false) => format!(" [{v}]"),
                };
                u.push_str(&one);
            }
            u
        }
    }
}

/// The flags a command documents: all but clap's own `--help` (a
/// command's own `--help`, as run's, documented "Print usage", stays).
fn visible_flags(cmd: &Command) -> Vec<&Arg> {
    cmd.get_arguments()
        .filter(|a| {
            !a.is_positional()
                && !a.is_hide_set()
                && (a.get_long() != Some("help")
                    || a.get_help().is_some_and(|h| h.to_string() == "Print usage"))
        })
        .collect()
}

/// docker's report of a command line it cannot parse: the message, the
/// usage line and where to read more (printed on stderr, exit 125).
pub fn usage_error(root: &Command, path: &[String], message: &str) -> String {
    format!(
        "{message}\n\nUsage:  {}\n\nRun '{} --help' for more information\n",
        usage(root, path),
        display_name(path)
    )
}

fn lookup<'a>(root: &'a Command, path: &[String]) -> &'a Command {
    let mut cmd = root;
    for n in path {
        cmd = cmd.find_subcommand(n).unwrap_or(cmd);
    }
    cmd
}

fn display_name(path: &[String]) -> String {
    if path.is_empty() {
        "wharf".to_owned()
    } else {
        format!("wharf {}", path.join(" "))
    }
}

/// pflag's `FlagUsagesWrapped`: flags sorted by long name.
fn options(cmd: &Command, width: usize) -> String {
    let mut flags = visible_flags(cmd);
    flags.sort_by_key(|a| a.get_long().unwrap_or("").to_owned());
    let mut lines = Vec::new();
    let mut maxlen = 0;
    for a in &flags {
        let long = a.get_long().unwrap_or("");
        let mut line = match a.get_short() {
            Some(s) => format!("  -{s}, --{long}"),
            None => format!("      --{long}"),
        };
        let varname = match a.get_action() {
            ArgAction::Set | ArgAction::Append => a
                .get_value_names()
                .and_then(|v| v.first())
                .map(|s| s.to_string())
                .filter(|v| v != "bool")
                .unwrap_or_default(),
            _ => String::new(),
        };
        if !varname.is_empty() {
            line.push(' ');
            line.push_str(&varname);
        }
        // pflag counts the separator it appends.
        maxlen = maxlen.max(line.len() + 1);
        let mut usage = a.get_help().map(|h| h.to_string()).unwrap_or_default();
        let defaults: Vec<String> = a
            .get_default_values()
            .iter()
            .map(|d| d.to_string_lossy().into_owned())
            .collect();
        if let Some(d) = defaults.first()
            && d != "false"
            && !d.is_empty()
            && !usage.contains("(default")
        {
            if varname == "string" {
                usage.push_str(&format!(" (default {d:?})"));
            } else {
                usage.push_str(&format!(" (default {d})"));
            }
        }
        lines.push((line, usage));
    }
    let mut out = String::new();
    for (line, usage) in lines {
        let spacing = " ".repeat(maxlen - line.len());
        out.push_str(&format!(
            "{line} {spacing} {}\n",
            wrap(maxlen + 2, width.saturating_sub(1), &usage)
        ));
    }
    out
}

/// pflag's `wrapN`: splits `s` at the last space before `i` unless it fits
/// within `i + slop`.
fn wrap_n(i: usize, slop: usize, s: &str) -> (String, String) {
    if i + slop > s.len() {
        return (s.to_owned(), String::new());
    }
    let head = &s[..s.floor_char_boundary(i)];
    let Some(w) = head.rfind([' ', '\t', '\n']).filter(|w| *w > 0) else {
        return (s.to_owned(), String::new());
    };
    if let Some(nl) = head.rfind('\n').filter(|n| *n > 0 && *n < w) {
        return (s[..nl].to_owned(), s[nl + 1..].to_owned());
    }
    (s[..w].to_owned(), s[w + 1..].to_owned())
}

/// pflag's `wrap`: `s` wrapped into columns `i..w`, continuation lines
/// indented by `i`.
fn wrap(i: usize, w: usize, s: &str) -> String {
    let mut i = i;
    let mut r = String::new();
    let mut room = w.saturating_sub(i);
    if room < 24 {
        i = 16;
        room = w.saturating_sub(i);
        r.push('\n');
        r.push_str(&" ".repeat(i));
    }
    if room < 24 {
        let sep = r.clone();
        return r + &s.replace('\n', &sep);
    }
    let slop = 5;
    let room = room - slop;
    let indent = format!("\n{}", " ".repeat(i));
    let (l, mut rest) = wrap_n(room, slop, s);
    r.push_str(&l.replace('\n', &indent));
    while !rest.is_empty() {
        let (t, next) = wrap_n(room, slop, &rest);
        r.push_str(&indent);
        r.push_str(&t.replace('\n', &indent));
        rest = next;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_help_as_docker() {
        let root = crate::cli::Cli::tree();
        let path = path_from_args(
            &root,
            &[
                "-H".into(),
                "unix:///x".into(),
                "ps".into(),
                "--help".into(),
            ],
        );
        assert_eq!(path, ["ps"]);
        let h = render(&root, &path, 80);
        assert!(h.starts_with("Usage:  wharf ps [OPTIONS]\n\nList containers\n\nAliases:\n  wharf container ls, wharf container list, wharf container ps, wharf ps\n\nOptions:\n"), "{h}");
        assert!(
            h.contains(
                "\n  -a, --all             Show all containers (default shows just running)\n"
            ),
            "{h}"
        );
        assert!(
            h.contains("\n  -q, --quiet           Only display container IDs\n"),
            "{h}"
        );
    }

    #[test]
    fn wraps_as_pflag() {
        assert_eq!(
            wrap(
                24,
                79,
                "Show n last created containers (includes all states) (default -1)"
            ),
            "Show n last created containers (includes all\n                        states) (default -1)"
        );
    }
}
