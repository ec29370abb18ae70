//! `wharf`: the command line for wharfd, with docker's command tree,
//! flags, output and exit codes (`alias docker=wharf` should go unnoticed).
//!
//! `main` parses the command line ([`cli`]), runs the command on a
//! single-threaded tokio runtime against the daemon ([`app`]), prints any
//! error as one line on stderr ([`app::describe`]) and exits with docker's
//! status: the container's for run/start -a/attach/exec, 125 when a
//! run/create is refused, 1 for other failures (a wrong argument count
//! included, checked first as docker does: [`arity`]), 125 for bad flags.
#![forbid(unsafe_code)]

mod app;
mod argv;
mod arity;
mod cli;
mod cmd;
mod format;
mod help;
mod opts;
mod streams;
mod tty;

use app::{App, Exit};
use cli::{Cli, Cmd, ContainerCmd, ImageCmd, SystemCmd};
use cmd::{container as ctr, image as img, run, system as sys};

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let tls = app::TlsFlags {
        tls: cli.tls,
        verify: cli.tlsverify,
        cacert: cli.tlscacert.clone(),
        cert: cli.tlscert.clone(),
        key: cli.tlskey.clone(),
    };
    let mut app = App::new(cli.host.clone(), tls);
    let Some(command) = cli.cmd else {
        if cli.version {
            println!("Wharf version {}", env!("CARGO_PKG_VERSION"));
            return Ok(());
        }
        Cli::tree().print_help()?;
        return Ok(());
    };
    let a = &mut app;
    match command {
        Cmd::Run(x) | Cmd::Container(ContainerCmd::Run(x)) => run::cmd_run(a, &x).await,
        Cmd::Create(x) | Cmd::Container(ContainerCmd::Create(x)) => run::cmd_create(a, &x).await,
        Cmd::Start(x) | Cmd::Container(ContainerCmd::Start(x)) => ctr::start(a, &x).await,
        Cmd::Stop(x) | Cmd::Container(ContainerCmd::Stop(x)) => ctr::stop(a, &x, false).await,
        Cmd::Restart(x) | Cmd::Container(ContainerCmd::Restart(x)) => ctr::stop(a, &x, true).await,
        Cmd::Kill(x) | Cmd::Container(ContainerCmd::Kill(x)) => ctr::kill(a, &x).await,
        Cmd::Rm(x) | Cmd::Container(ContainerCmd::Rm(x)) => ctr::rm(a, &x).await,
        Cmd::Ps(x) | Cmd::Container(ContainerCmd::Ls(x)) => ctr::ps(a, &x).await,
        Cmd::Logs(x) | Cmd::Container(ContainerCmd::Logs(x)) => ctr::logs(a, &x).await,
        Cmd::Attach(x) | Cmd::Container(ContainerCmd::Attach(x)) => run::cmd_attach(a, &x).await,
        Cmd::Exec(x) | Cmd::Container(ContainerCmd::Exec(x)) => run::cmd_exec(a, &x).await,
        Cmd::Inspect(x) => {
            ctr::inspect(a, &x.names, x.format.as_deref(), x.size, x.kind.as_deref()).await
        }
        Cmd::Container(ContainerCmd::Inspect(x)) => {
            ctr::inspect(a, &x.names, x.format.as_deref(), x.size, Some("container")).await
        }
        Cmd::Top(x) | Cmd::Container(ContainerCmd::Top(x)) => ctr::top(a, &x).await,
        Cmd::Stats(x) | Cmd::Container(ContainerCmd::Stats(x)) => ctr::stats(a, &x).await,
        Cmd::Wait(x) | Cmd::Container(ContainerCmd::Wait(x)) => ctr::wait(a, &x).await,
        Cmd::Rename(x) | Cmd::Container(ContainerCmd::Rename(x)) => ctr::rename(a, &x).await,
        Cmd::Pause(x) | Cmd::Container(ContainerCmd::Pause(x)) => ctr::pause(a, &x, false).await,
        Cmd::Unpause(x) | Cmd::Container(ContainerCmd::Unpause(x)) => ctr::pause(a, &x, true).await,
        Cmd::Port(x) | Cmd::Container(ContainerCmd::Port(x)) => ctr::port(a, &x).await,
        Cmd::Cp(x) | Cmd::Container(ContainerCmd::Cp(x)) => ctr::cp(a, &x).await,
        Cmd::Diff(x) | Cmd::Container(ContainerCmd::Diff(x)) => ctr::diff(a, &x).await,
        Cmd::Export(x) | Cmd::Container(ContainerCmd::Export(x)) => ctr::export(a, &x).await,
        Cmd::Commit(x) | Cmd::Container(ContainerCmd::Commit(x)) => ctr::commit(a, &x).await,
        Cmd::Update(x) | Cmd::Container(ContainerCmd::Update(x)) => ctr::update(a, &x).await,
        Cmd::Container(ContainerCmd::Prune(x)) => ctr::prune(a, &x).await,
        Cmd::Pull(x) | Cmd::Image(ImageCmd::Pull(x)) => img::cmd_pull(a, &x).await,
        Cmd::Push(x) | Cmd::Image(ImageCmd::Push(x)) => img::cmd_push(a, &x).await,
        Cmd::Images(x) | Cmd::Image(ImageCmd::Ls(x)) => img::cmd_images(a, &x).await,
        Cmd::Rmi(x) | Cmd::Image(ImageCmd::Rm(x)) => img::cmd_rmi(a, &x).await,
        Cmd::Tag(x) | Cmd::Image(ImageCmd::Tag(x)) => img::cmd_tag(a, &x).await,
        Cmd::History(x) | Cmd::Image(ImageCmd::History(x)) => img::cmd_history(a, &x).await,
        Cmd::Save(x) | Cmd::Image(ImageCmd::Save(x)) => img::cmd_save(a, &x).await,
        Cmd::Load(x) | Cmd::Image(ImageCmd::Load(x)) => img::cmd_load(a, &x).await,
        Cmd::Import(x) | Cmd::Image(ImageCmd::Import(x)) => img::cmd_import(a, &x).await,
        Cmd::Image(ImageCmd::Inspect(x)) => img::cmd_inspect(a, &x).await,
        Cmd::Image(ImageCmd::Prune(x)) => img::cmd_prune(a, &x).await,
        Cmd::Login(x) => sys::login(a, &x).await,
        Cmd::Logout(x) => sys::logout(&x).await,
        Cmd::Version(x) => sys::version(a, &x).await,
        Cmd::Info(x) | Cmd::System(SystemCmd::Info(x)) => sys::info(a, &x).await,
        Cmd::Events(x) | Cmd::System(SystemCmd::Events(x)) => sys::events(a, &x).await,
        Cmd::System(SystemCmd::Df(x)) => sys::df(a, &x).await,
        Cmd::System(SystemCmd::Prune(x)) => sys::prune(a, &x).await,
        Cmd::Completion(x) => {
            clap_complete::generate(x.shell, &mut Cli::tree(), "wharf", &mut std::io::stdout());
            Ok(())
        }
        Cmd::Daemon(x) => {
            use std::os::unix::process::CommandExt as _;
            let bin = app::wharfd_binary()
                .ok_or_else(|| anyhow::anyhow!("no wharfd binary next to wharf or on PATH"))?;
            let err = std::process::Command::new(&bin).args(&x.args).exec();
            Err(anyhow::anyhow!("cannot run {}: {err}", bin.display()))
        }
    }
}

/// docker's (pflag's) words for a flag clap could not take: a value that
/// does not parse, an unknown flag, a flag without its value.
fn flag_error(
    e: &clap::Error,
    root: &clap::Command,
    path: &[String],
    args: &[String],
) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let ctx = |k| match e.get(k) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    // "--filter <filter>" -> the flag as pflag names it ("-f, --filter"),
    // and as the user wrote it ("--last" or "'n' in -n").
    let flag_names = |rendered: &str| -> Option<(String, String)> {
        let long = rendered.split([' ', '=', '[']).next()?.strip_prefix("--")?;
        // The command named last, else an ancestor (`--tlsverify=x ps`
        // fails on the root's flag).
        let mut cmds = vec![root];
        for n in path {
            cmds.push(cmds.last()?.find_subcommand(n)?);
        }
        let arg = cmds
            .iter()
            .rev()
            .find_map(|c| c.get_arguments().find(|a| a.get_long() == Some(long)))?;
        let written_long = args.iter().rev().any(|a| a == &format!("--{long}"));
        let as_written = match arg.get_short() {
            Some(c) if !written_long => format!("'{c}' in -{c}"),
            _ => format!("--{long}"),
        };
        Some((argv::display(arg), as_written))
    };
    match e.kind() {
        ErrorKind::ValueValidation | ErrorKind::InvalidValue => {
            let arg = ctx(ContextKind::InvalidArg)?;
            let value = ctx(ContextKind::InvalidValue).unwrap_or_default();
            let (both, needs) = flag_names(&arg)?;
            if value.is_empty() && e.kind() == ErrorKind::InvalidValue {
                return Some(format!("flag needs an argument: {needs}"));
            }
            let reason = match std::error::Error::source(e) {
                Some(s) => s.to_string(),
                None => match e.get(ContextKind::ValidValue) {
                    Some(ContextValue::Strings(v)) => format!("must be one of {}", v.join(", ")),
                    _ => "invalid value".to_owned(),
                },
            };
            Some(format!(
                "invalid argument {value:?} for \"{both}\" flag: {reason}"
            ))
        }
        ErrorKind::UnknownArgument => {
            let arg = ctx(ContextKind::InvalidArg)?;
            if let Some(long) = arg.strip_prefix("--") {
                let long = long.split('=').next().unwrap_or(long);
                Some(format!("unknown flag: --{long}"))
            } else if let Some(shorts) = arg.strip_prefix('-') {
                let c = shorts.chars().next()?;
                Some(format!("unknown shorthand flag: '{c}' in {arg}"))
            } else {
                None
            }
        }
        _ => None,
    }
}

/// The terminal's width for help text (80 when unknown).
fn help_width() -> usize {
    tty::size()
        .map(|(_, c)| usize::from(c))
        .filter(|w| *w > 0)
        .unwrap_or(80)
}

/// Prints docker's refusal of an argument count and exits 1, as docker.
fn refuse(refusal: Option<arity::Refusal>) -> ! {
    if let Some(r) = refusal {
        eprint!("{}", r.message);
    }
    std::process::exit(1);
}

fn main() {
    let root = Cli::tree();
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let args = match argv::normalize_switches(&root, &raw) {
        Ok(a) => a,
        Err(b) => {
            let path = help::path_from_args(&root, &raw);
            let msg = format!(
                "invalid argument {:?} for \"{}\" flag: {}",
                b.value, b.flag, b.reason
            );
            eprint!("{}", help::usage_error(&root, &path, &msg));
            std::process::exit(125);
        }
    };
    // docker checks the argument count once the flags have parsed: a
    // flag error or --help in a command line with the wrong count still
    // comes first, found by parsing it with an acceptable count.
    let refusal = arity::check(&root, &args);
    let parsed_args = refusal.as_ref().map_or(&args, |r| &r.stand_in);
    let parsed = Cli::parse_with(
        root,
        std::iter::once("wharf".to_owned()).chain(parsed_args.clone()),
    );
    let cli = match parsed {
        Ok(_) if refusal.is_some() => refuse(refusal),
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            // The parse consumed the tree; errors and help are rare.
            let root = Cli::tree();
            let path = help::path_from_args(&root, &args);
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                if refusal.is_some() {
                    refuse(refusal);
                }
                // A command group named alone: its help, on stderr.
                eprint!("{}", help::render(&root, &path, help_width()));
                std::process::exit(0);
            }
            if e.kind() == ErrorKind::DisplayHelp {
                print!("{}", help::render(&root, &path, help_width()));
                std::process::exit(0);
            }
            if let Some(msg) = flag_error(&e, &root, &path, &args) {
                eprint!("{}", help::usage_error(&root, &path, &msg));
                std::process::exit(125);
            }
            if refusal.is_some() {
                refuse(refusal);
            }
            let code = match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                _ => 125,
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let result = rt.block_on(dispatch(cli));
    // Leave stdin readers and signal tasks behind: exit now.
    let code = match result {
        Ok(()) => 0,
        Err(e) => match e.downcast_ref::<Exit>() {
            Some(x) => {
                if let Some(m) = &x.message {
                    eprintln!("{m}");
                }
                x.code
            }
            None => {
                eprintln!("{}", app::describe(&e));
                1
            }
        },
    };
    rt.shutdown_background();
    std::process::exit(code);
}
