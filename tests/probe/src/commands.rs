//! Subcommands that make the probe do one thing and report it as JSON.
//!
//! Exit status contract: `0` when the requested operation succeeded (or, for
//! measurements such as `fork`, whenever the report was printed), `1` when the
//! operation failed (the JSON then holds `"ok": false`, `"errno"` and
//! `"error"`), `2` for a usage error (message on stderr). `exit N` exits `N`.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

/// Prints one compact JSON line and flushes; a closed stdout is ignored.
pub fn emit(value: &Value) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

/// The JSON for a failed operation.
fn failure(err: &io::Error) -> Value {
    json!({"ok": false, "errno": err.raw_os_error(), "error": err.to_string()})
}

/// Prints `value` (success) or the failure, and returns the exit status.
fn finish(result: io::Result<Value>) -> i32 {
    match result {
        Ok(mut value) => {
            if let Value::Object(map) = &mut value {
                map.insert("ok".to_owned(), Value::Bool(true));
                map.entry("errno").or_insert(Value::Null);
            }
            emit(&value);
            0
        }
        Err(err) => {
            emit(&failure(&err));
            1
        }
    }
}

/// Runs subcommand `cmd` with `args`; returns the process exit status.
pub fn run(cmd: &str, args: &[String]) -> i32 {
    let arg = |i: usize| args.get(i).map(String::as_str);
    match (cmd, arg(0)) {
        ("exit", Some(code)) => match code.parse() {
            Ok(code) => code,
            Err(_) => usage(&format!("exit: not an integer: {code}")),
        },
        ("sleep", Some(secs)) => match secs.parse::<f64>() {
            Ok(secs) if secs >= 0.0 && secs.is_finite() => {
                std::thread::sleep(Duration::from_secs_f64(secs));
                0
            }
            _ => usage(&format!("sleep: not a number of seconds: {secs}")),
        },
        ("cat", Some(path)) => cat(path),
        ("write", Some(path)) => {
            finish(fs::write(path, b"written by wharf-probe\n").map(|()| json!({"path": path})))
        }
        ("stat", Some(path)) => finish(stat(path)),
        ("ls", Some(dir)) => finish(ls(dir)),
        ("fork", Some(n)) => match n.parse() {
            Ok(n) => fork(n),
            Err(_) => usage(&format!("fork: not a count: {n}")),
        },
        ("alloc", Some(mb)) => match mb.parse() {
            Ok(mb) => alloc(mb),
            Err(_) => usage(&format!("alloc: not a number of MiB: {mb}")),
        },
        ("syscall", Some(name)) => syscall(name, arg(1)),
        ("sysctl", Some(name)) => {
            let path = format!("/proc/sys/{}", name.replace('.', "/"));
            finish(fs::read_to_string(&path).map(|v| json!({"name": name, "value": v.trim_end()})))
        }
        ("signals", count) => match count.map(str::parse::<usize>).transpose() {
            Ok(count) => signals(count),
            Err(_) => usage("signals: COUNT must be a number"),
        },
        ("echo", _) => {
            emit(&json!({"args": args}));
            0
        }
        _ => usage(&format!("unknown subcommand or missing argument: {cmd}")),
    }
}

fn usage(msg: &str) -> i32 {
    eprintln!("wharf-probe: {msg}");
    eprintln!(
        "usage: wharf-probe [exit N | sleep SECS | cat FILE | write PATH | stat PATH | ls DIR | \
         fork N | alloc MIB | syscall NAME [ARG] | sysctl NAME | signals [COUNT] | echo ARGS...]"
    );
    2
}

/// Prints the file's bytes unchanged, or a failure JSON line.
fn cat(path: &str) -> i32 {
    match fs::read(path) {
        Ok(bytes) => {
            let mut out = io::stdout().lock();
            let _ = out.write_all(&bytes);
            let _ = out.flush();
            0
        }
        Err(err) => {
            emit(&failure(&err));
            1
        }
    }
}

/// `lstat` of `path`: type, permission bits (octal string), owner, device
/// numbers and, for a symlink, its target.
fn stat(path: &str) -> io::Result<Value> {
    let meta = fs::symlink_metadata(path)?;
    let ft = meta.file_type();
    let kind = if ft.is_symlink() {
        "symlink"
    } else if ft.is_dir() {
        "dir"
    } else if ft.is_file() {
        "file"
    } else if ft.is_char_device() {
        "char"
    } else if ft.is_block_device() {
        "block"
    } else if ft.is_fifo() {
        "fifo"
    } else if ft.is_socket() {
        "socket"
    } else {
        "unknown"
    };
    let target = if ft.is_symlink() {
        Some(fs::read_link(path)?.to_string_lossy().into_owned())
    } else {
        None
    };
    Ok(json!({
        "path": path,
        "type": kind,
        "mode": format!("{:04o}", meta.mode() & 0o7777),
        "uid": meta.uid(),
        "gid": meta.gid(),
        "size": meta.size(),
        "nlink": meta.nlink(),
        "ino": meta.ino(),
        "rdev_major": rustix::fs::major(meta.rdev()),
        "rdev_minor": rustix::fs::minor(meta.rdev()),
        "target": target,
    }))
}

/// Sorted entries of `dir` with their types (as `stat` names them).
fn ls(dir: &str) -> io::Result<Value> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let ft = entry.file_type()?;
        let kind = if ft.is_symlink() {
            "symlink"
        } else if ft.is_dir() {
            "dir"
        } else if ft.is_file() {
            "file"
        } else {
            "other"
        };
        entries.push((entry.file_name().to_string_lossy().into_owned(), kind));
    }
    entries.sort();
    let entries: Vec<Value> = entries
        .into_iter()
        .map(|(name, kind)| json!({"name": name, "type": kind}))
        .collect();
    Ok(json!({"path": dir, "entries": entries}))
}

/// Spawns up to `n` copies of itself running `sleep 5`, stopping at the first
/// failure; reports `{"requested", "spawned", "errno", "error"}`, then kills
/// and reaps every child it made. Always exits 0 once the report is printed.
fn fork(n: usize) -> i32 {
    let exe = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
    let mut children: Vec<Child> = Vec::new();
    let mut first_error: Option<io::Error> = None;
    for _ in 0..n {
        let spawned = Command::new(&exe)
            .args(["sleep", "5"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match spawned {
            Ok(child) => children.push(child),
            Err(err) => {
                first_error = Some(err);
                break;
            }
        }
    }
    let spawned = children.len();
    for child in &mut children {
        let _ = child.kill();
    }
    for child in &mut children {
        let _ = child.wait();
    }
    emit(&json!({
        "requested": n,
        "spawned": spawned,
        "errno": first_error.as_ref().and_then(io::Error::raw_os_error),
        "error": first_error.as_ref().map(ToString::to_string),
    }));
    0
}

/// Allocates and touches `mib` MiB, one MiB at a time, printing
/// `{"allocated_mb": i}` after each, then `{"ok": true, "allocated_mb": mib}`.
/// Under a memory limit the kernel's OOM killer ends it part way.
fn alloc(mib: usize) -> i32 {
    const MIB: usize = 1 << 20;
    let mut held: Vec<Vec<u8>> = Vec::with_capacity(mib);
    for i in 1..=mib {
        // A non-zero fill writes every byte, so every page is really touched.
        held.push(std::hint::black_box(vec![0xa5u8; MIB]));
        emit(&json!({"allocated_mb": i}));
    }
    emit(&json!({"ok": true, "allocated_mb": held.len()}));
    0
}

/// Runs one harmless system call through rustix's safe API and reports
/// `{"syscall", "ok", "ret", "value", "errno"}`. Useful for seccomp tests:
/// a filtered call reports the errno the filter returned.
fn syscall(name: &str, arg: Option<&str>) -> i32 {
    use rustix::process;
    let result: io::Result<(i64, Value)> = match name {
        "getcwd" => process::getcwd(Vec::new())
            .map(|cwd| (0, Value::String(cwd.to_string_lossy().into_owned())))
            .map_err(io::Error::from),
        "getpriority" => process::getpriority_process(None)
            .map(|p| (i64::from(p), Value::Null))
            .map_err(io::Error::from),
        "getgroups" => process::getgroups()
            .map(|g| (0, json!(g.iter().map(|g| g.as_raw()).collect::<Vec<_>>())))
            .map_err(io::Error::from),
        "getsid" => process::getsid(None)
            .map(|p| (i64::from(p.as_raw_nonzero().get()), Value::Null))
            .map_err(io::Error::from),
        "getpgid" => process::getpgid(None)
            .map(|p| (i64::from(p.as_raw_nonzero().get()), Value::Null))
            .map_err(io::Error::from),
        "chdir" => process::chdir(arg.unwrap_or("/"))
            .map(|()| (0, Value::Null))
            .map_err(io::Error::from),
        "mkdir" => match arg {
            Some(path) => fs::create_dir(path).map(|()| (0, Value::Null)),
            None => return usage("syscall mkdir PATH"),
        },
        "sethostname" => match arg {
            Some(host) => rustix::system::sethostname(host.as_bytes())
                .map(|()| (0, Value::Null))
                .map_err(io::Error::from),
            None => return usage("syscall sethostname NAME"),
        },
        other => {
            return usage(&format!(
                "syscall: unsupported: {other} (getcwd getpriority getgroups getsid getpgid chdir mkdir sethostname)"
            ));
        }
    };
    match result {
        Ok((ret, value)) => {
            emit(&json!({"syscall": name, "ok": true, "ret": ret, "value": value, "errno": null}));
            0
        }
        Err(err) => {
            emit(
                &json!({"syscall": name, "ok": false, "ret": -1, "value": null,
                         "errno": err.raw_os_error(), "error": err.to_string()}),
            );
            1
        }
    }
}

/// Catchable signals watched by `signals`, with their names.
const WATCHED: &[(i32, &str)] = &[
    (signal_hook::consts::SIGHUP, "SIGHUP"),
    (signal_hook::consts::SIGINT, "SIGINT"),
    (signal_hook::consts::SIGQUIT, "SIGQUIT"),
    (signal_hook::consts::SIGUSR1, "SIGUSR1"),
    (signal_hook::consts::SIGUSR2, "SIGUSR2"),
    (signal_hook::consts::SIGPIPE, "SIGPIPE"),
    (signal_hook::consts::SIGALRM, "SIGALRM"),
    (signal_hook::consts::SIGTERM, "SIGTERM"),
    (signal_hook::consts::SIGCONT, "SIGCONT"),
    (signal_hook::consts::SIGWINCH, "SIGWINCH"),
];

/// Installs handlers, prints `{"ready": true}`, then one
/// `{"signal": NAME, "number": N}` line per delivered signal. Exits 0 after
/// `count` signals, or (without a count) after SIGTERM or SIGINT.
fn signals(count: Option<usize>) -> i32 {
    let numbers: Vec<i32> = WATCHED.iter().map(|(n, _)| *n).collect();
    let mut signals = match signal_hook::iterator::Signals::new(&numbers) {
        Ok(s) => s,
        Err(err) => {
            emit(&failure(&err));
            return 1;
        }
    };
    emit(&json!({"ready": true, "pid": std::process::id()}));
    let mut seen = 0;
    for number in signals.forever() {
        let name = WATCHED
            .iter()
            .find(|(n, _)| *n == number)
            .map_or("?", |(_, name)| name);
        emit(&json!({"signal": name, "number": number}));
        seen += 1;
        let done = match count {
            Some(count) => seen >= count,
            None => number == signal_hook::consts::SIGTERM || number == signal_hook::consts::SIGINT,
        };
        if done {
            break;
        }
    }
    0
}
