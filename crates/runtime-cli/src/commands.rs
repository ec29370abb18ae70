//! One function per command; each parses its flags into library calls.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use oci_spec::runtime::{LinuxCapabilities, Process, Spec};
use wharf_runtime::{CreateOptions, ExecOptions, Runtime};

use crate::cli::{Cli, Command, CreateArgs, OutFormat};
use crate::log::Logger;
use crate::signals;

/// Commands that put a process of ours into a container run from a sealed
/// view of this binary (CVE-2019-5736): re-executes from one for those
/// (returns only on failure), does nothing for the others.
pub fn reexec_sealed(cli: &Cli) -> anyhow::Result<()> {
    if cli.systemd_cgroup {
        bail!("--systemd-cgroup is not supported yet: use cgroupfs paths");
    }
    if matches!(
        cli.command,
        Command::Create(_) | Command::Run { .. } | Command::Exec { .. }
    ) {
        std::fs::create_dir_all(&cli.root).context("creating the runtime root")?;
        wharf_runtime::selfexe::reexec_sealed(&cli.root)
            .context("re-executing from a sealed copy")?;
    }
    Ok(())
}

pub fn dispatch(cli: &Cli, log: &Logger) -> anyhow::Result<i32> {
    let rt = || Runtime::open(&cli.root).context("opening the runtime root");
    match &cli.command {
        Command::Create(a) => {
            let t = Instant::now();
            rt()?.create(&create_opts(a))?;
            log.debug(&format!("create took {:?}", t.elapsed()));
            Ok(0)
        }
        Command::Start { id } => {
            rt()?.start(id)?;
            Ok(0)
        }
        Command::Run {
            create,
            detach,
            keep,
        } => run(&rt()?, create, *detach, *keep, log),
        Command::State { id } => {
            let st = rt()?.state(id)?;
            println!("{}", serde_json::to_string_pretty(&st)?);
            Ok(0)
        }
        Command::Kill { all, id, signal } => {
            rt()?.kill(id, signals::parse_signal(signal)?, *all)?;
            Ok(0)
        }
        Command::Delete { force, id } => {
            let r = rt()?;
            match r.delete(id, *force) {
                Ok(()) => Ok(0),
                // runc: deleting a missing container with --force succeeds.
                Err(wharf_runtime::RuntimeError::State(
                    wharf_runtime::state::StateError::NotFound(_),
                )) if *force => Ok(0),
                Err(e) => Err(e.into()),
            }
        }
        Command::Exec {
            process,
            tty,
            cwd,
            env,
            user,
            additional_gids,
            cap,
            no_new_privs,
            detach,
            pid_file,
            console_socket,
            preserve_fds,
            id,
            command,
            ..
        } => {
            let r = rt()?;
            let rec = r.load(id)?;
            let proc = match process {
                Some(p) => load_process(p)?,
                None => {
                    if command.is_empty() {
                        bail!("exec: no command given (use --process or pass arguments)");
                    }
                    let mut p = rec.spec.process().clone().unwrap_or_default();
                    p.set_args(Some(command.clone()));
                    p.set_terminal(Some(*tty));
                    if let Some(c) = cwd {
                        p.set_cwd(c.into());
                    }
                    let mut e = p.env().clone().unwrap_or_default();
                    e.extend(env.iter().cloned());
                    p.set_env(Some(e));
                    if let Some(u) = user {
                        let (uid, gid) = match u.split_once(':') {
                            Some((a, b)) => (a.parse()?, b.parse()?),
                            None => (u.parse()?, 0),
                        };
                        p.user_mut().set_uid(uid);
                        p.user_mut().set_gid(gid);
                    }
                    if !additional_gids.is_empty() {
                        p.user_mut()
                            .set_additional_gids(Some(additional_gids.clone()));
                    }
                    if *no_new_privs {
                        p.set_no_new_privileges(Some(true));
                    }
                    if !cap.is_empty() {
                        let mut caps = p
                            .capabilities()
                            .clone()
                            .unwrap_or_else(LinuxCapabilities::default);
                        for c in cap {
                            let c = wharf_spec::parse_capability(c)?;
                            let add = |s: Option<&oci_spec::runtime::Capabilities>| {
                                let mut s = s.cloned().unwrap_or_default();
                                s.insert(c);
                                Some(s)
                            };
                            let b = add(caps.bounding().as_ref());
                            let e = add(caps.effective().as_ref());
                            let pm = add(caps.permitted().as_ref());
                            caps.set_bounding(b);
                            caps.set_effective(e);
                            caps.set_permitted(pm);
                        }
                        p.set_capabilities(Some(caps));
                    }
                    p
                }
            };
            let opts = ExecOptions {
                process: proc,
                console_socket: console_socket.clone(),
                pid_file: pid_file.clone(),
                preserve_fds: *preserve_fds,
            };
            let started = r.exec(id, &opts)?;
            if *detach {
                return Ok(0);
            }
            signals::wait_forwarding(started.pid, &started.pidfd, None)
        }
        Command::Ps {
            format,
            id,
            ps_args,
        } => ps(&rt()?, id, *format, ps_args),
        Command::List { format, quiet } => list(&rt()?, *format, *quiet),
        Command::Pause { id } => {
            rt()?.pause(id)?;
            Ok(0)
        }
        Command::Resume { id } => {
            rt()?.resume(id)?;
            Ok(0)
        }
        Command::Update { resources, id } => {
            let r = rt()?;
            let rec = r.load(id)?;
            let bytes = match resources.as_deref() {
                Some(p) if p != Path::new("-") => {
                    std::fs::read(p).with_context(|| format!("reading {}", p.display()))?
                }
                _ => {
                    let mut v = Vec::new();
                    std::io::Read::read_to_end(&mut std::io::stdin(), &mut v)?;
                    v
                }
            };
            let res: oci_spec::runtime::LinuxResources =
                serde_json::from_slice(&bytes).context("parsing resources")?;
            let setup = wharf_cgroups::CgroupSetup::detect()?;
            wharf_cgroups::manager(&setup, &rec.cgroups_path)?.set(&res)?;
            Ok(0)
        }
        Command::Features => {
            println!("{}", serde_json::to_string_pretty(&features())?);
            Ok(0)
        }
        Command::Spec { bundle, rootless } => {
            let path = bundle.join("config.json");
            if path.exists() {
                bail!("File {} exists. Remove it first", path.display());
            }
            let mut spec = wharf_spec::default_spec();
            if *rootless {
                make_rootless(&mut spec);
            }
            std::fs::write(&path, serde_json::to_string_pretty(&spec)?)
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(0)
        }
    }
}

fn create_opts(a: &CreateArgs) -> CreateOptions {
    CreateOptions {
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        console_socket: a.console_socket.clone(),
        pid_file: a.pid_file.clone(),
        no_pivot: a.no_pivot,
        preserve_fds: a.preserve_fds,
    }
}

fn run(
    rt: &Runtime,
    a: &CreateArgs,
    detach: bool,
    keep: bool,
    log: &Logger,
) -> anyhow::Result<i32> {
    let t = Instant::now();
    let mut opts = create_opts(a);
    // Foreground with a terminal and no console socket: proxy the pty
    // ourselves, as runc does.
    wharf_runtime::config::validate_id(&a.id)?;
    let bundle = wharf_runtime::config::Bundle::load(&a.bundle)?;
    let terminal = bundle.process().terminal().unwrap_or(false);
    let console = if !detach && a.console_socket.is_none() && terminal {
        let l = crate::tty::ConsoleListener::bind(rt.store().root())?;
        opts.console_socket = Some(l.path.clone());
        Some(l)
    } else {
        None
    };
    let started = rt.create_bundle(&opts, bundle)?;
    log.debug(&format!("create took {:?}", t.elapsed()));
    let master = match &console {
        Some(l) => match l.receive_master() {
            Ok(m) => Some(m),
            Err(e) => {
                let _ = rt.delete(&a.id, true);
                return Err(e);
            }
        },
        None => None,
    };
    drop(console);
    if let Err(e) = rt.start(&a.id) {
        let _ = rt.delete(&a.id, true);
        return Err(e.into());
    }
    log.debug(&format!("create+start took {:?}", t.elapsed()));
    if detach {
        return Ok(0);
    }
    let code = {
        let _raw = master.as_ref().map(|_| crate::tty::RawMode::enter());
        signals::wait_forwarding(started.pid, &started.pidfd, master.as_ref())?
    };
    log.debug(&format!("create+start+wait took {:?}", t.elapsed()));
    if !keep {
        rt.delete(&a.id, true)?;
    }
    log.debug(&format!("run took {:?}", t.elapsed()));
    Ok(code)
}

fn load_process(p: &Path) -> anyhow::Result<Process> {
    let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing process {}", p.display()))
}

fn ps(rt: &Runtime, id: &str, format: OutFormat, args: &[String]) -> anyhow::Result<i32> {
    let pids = rt.ps(id)?;
    if format == OutFormat::Json {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(0);
    }
    let args: Vec<String> = if args.is_empty() {
        vec!["-ef".into()]
    } else {
        args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("running ps")?;
    if !out.status.success() {
        bail!("ps failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .context("ps output has no PID column")?;
    println!("{header}");
    for l in lines {
        if l.split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok())
            .is_some_and(|p| pids.contains(&p))
        {
            println!("{l}");
        }
    }
    Ok(0)
}

fn list(rt: &Runtime, format: OutFormat, quiet: bool) -> anyhow::Result<i32> {
    let all = rt.list()?;
    if quiet {
        for c in &all {
            println!("{}", c.id);
        }
        return Ok(0);
    }
    if format == OutFormat::Json {
        println!("{}", serde_json::to_string(&all)?);
        return Ok(0);
    }
    let rows: Vec<[String; 6]> =
        std::iter::once(["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from))
            .chain(all.iter().map(|c| {
                [
                    c.id.clone(),
                    c.pid.to_string(),
                    c.status.to_string(),
                    c.bundle.display().to_string(),
                    c.created.clone(),
                    c.owner.clone(),
                ]
            }))
            .collect();
    let mut w = [0usize; 6];
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = w[i] + 3))
            .collect();
        println!("{}", line.concat().trim_end());
    }
    Ok(0)
}

fn make_rootless(spec: &mut Spec) {
    use oci_spec::runtime::{LinuxIdMappingBuilder, LinuxNamespaceBuilder, LinuxNamespaceType};
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
    if let Some(linux) = spec.linux_mut() {
        let mut ns: Vec<_> = linux.namespaces().clone().unwrap_or_default();
        ns.retain(|n| {
            n.typ() != LinuxNamespaceType::Network && n.typ() != LinuxNamespaceType::Cgroup
        });
        ns.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::User)
                .build()
                .expect("valid namespace"),
        );
        linux.set_namespaces(Some(ns));
        let map = |host| {
            vec![
                LinuxIdMappingBuilder::default()
                    .container_id(0u32)
                    .host_id(host)
                    .size(1u32)
                    .build()
                    .expect("valid mapping"),
            ]
        };
        linux.set_uid_mappings(Some(map(uid)));
        linux.set_gid_mappings(Some(map(gid)));
        linux.set_resources(None);
    }
    if let Some(mounts) = spec.mounts_mut() {
        mounts.retain(|m| m.destination() != Path::new("/sys/fs/cgroup"));
        for m in mounts.iter_mut() {
            if m.destination() == Path::new("/sys") {
                m.set_typ(Some("none".into()));
                m.set_source(Some("/sys".into()));
                m.set_options(Some(vec![
                    "rbind".into(),
                    "nosuid".into(),
                    "noexec".into(),
                    "nodev".into(),
                    "ro".into(),
                ]));
            }
            if let Some(o) = m.options().clone() {
                m.set_options(Some(o.into_iter().filter(|o| o != "gid=5").collect()));
            }
        }
    }
}

fn features() -> serde_json::Value {
    let caps: Vec<&str> = wharf_spec::ALL_CAPABILITIES
        .iter()
        .map(|c| c.name)
        .collect();
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": [
            "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "iversion", "lazytime",
            "loud", "mand", "noatime", "nodev", "nodiratime", "noexec", "noiversion", "nolazytime", "nomand",
            "norelatime", "nostrictatime", "nosuid", "nosymfollow", "private", "ratime", "rbind", "rdev",
            "rdiratime", "relatime", "remount", "ro", "rprivate", "rrelatime", "rro", "rrw", "rshared", "rslave",
            "rstrictatime", "rsuid", "rsymfollow", "runbindable", "rw", "shared", "silent", "slave",
            "strictatime", "suid", "symfollow", "sync", "unbindable", "rnoatime", "rnodev", "rnodiratime",
            "rnoexec", "rnosuid", "rnosymfollow", "rexec", "idmap", "ridmap"
        ],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                              "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
                "knownFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_LOG"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_LOG"]
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": true}}
        },
        "annotations": {
            "io.github.wharf.runtime.version": env!("CARGO_PKG_VERSION"),
            "io.github.wharf.runtime.libseccomp": "yes"
        }
    })
}
