"""What the benchmark drivers share: starting and stopping the daemons they
run (wharfd, dockerd, the registry), podman's private configuration, the
offline busybox image, and cleaning up mounts under a work directory.

Every process started through `start` is stopped by `stop_all` (the drivers
call it in a `finally`), newest first, SIGTERM then SIGKILL after 30 s.
"""
import io, json, os, shutil, signal, subprocess, sys, tarfile, time

DOCKER_CLI = "/usr/local/bin/docker" if os.path.exists("/usr/local/bin/docker") else (
    shutil.which("docker") or "/usr/bin/docker")

_procs = []  # daemons started here, oldest first


def unmount_under(path):
    """Lazily unmounts every mount at or below path, deepest first."""
    path = os.path.realpath(path)
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == path or mp.startswith(path + "/"):
                mounts.append(mp)
    for mp in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], capture_output=True)


def remove(path):
    """Removes a file, socket or directory tree (unmounting what is under it)."""
    if os.path.isdir(path) and not os.path.islink(path):
        unmount_under(path)
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


def wait_for(check, what, timeout=60):
    """Polls check() every 0.1 s (exceptions count as not yet) for at most
    timeout seconds; exits the benchmark when it never holds."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.1)
    sys.exit(f"{os.path.basename(sys.argv[0])}: {what} did not come up")


def cli_answers(cli, env=None):
    """A check for wait_for: `<cli> version` succeeds."""
    return lambda: subprocess.run(cli + ["version"], capture_output=True, env=env).returncode == 0


def start(cmd, log, env=None):
    """Starts a daemon in its own session, output to log; stop_all stops it."""
    p = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env,
                         start_new_session=True)
    _procs.append(p)
    return p


def stop(p, timeout=30):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if p in _procs:
        _procs.remove(p)


def stop_all():
    for p in reversed(list(_procs)):
        stop(p)


def start_wharfd(wharfd, shim, work, exec_root, env=None):
    """wharfd with its own data root (work/wd), exec root and socket
    (work/wharf.sock); returns (process, socket path)."""
    sock = os.path.join(work, "wharf.sock")
    cfg = os.path.join(work, "wharf.json")
    open(cfg, "w").write("{}")
    p = start([wharfd, "--config-file", cfg, "--data-root", os.path.join(work, "wd"),
               "--exec-root", exec_root, "-H", f"unix://{sock}", "--shim-binary", shim,
               "--log-level", "warn"], os.path.join(work, "wharfd.log"), env)
    return p, sock


def start_dockerd(work, base, name="docker", insecure_registries=()):
    """Debian's dockerd (with its containerd) on its own data root
    (work/name), exec root `base`, socket base.sock: no bridge, no iptables
    changes, cgroupfs. Returns (process, socket path)."""
    cfg = os.path.join(work, f"{name}.json")
    json.dump({"storage-driver": "overlay2", "exec-opts": ["native.cgroupdriver=cgroupfs"],
               "bridge": "none", "iptables": False, "ip-masq": False,
               "insecure-registries": list(insecure_registries)}, open(cfg, "w"))
    p = start(["dockerd", "--host", f"unix://{base}.sock", "--data-root", os.path.join(work, name),
               "--exec-root", base, "--pidfile", f"{base}.pid", "--config-file", cfg],
              os.path.join(work, f"{name}d.log"))
    return p, f"{base}.sock"


def stop_dockerd(p, base):
    stop(p, 60)
    for x in (base, base + ".sock", base + ".pid"):
        remove(x)


def podman_env(work, runroot, graphroot, base_env, registries=""):
    """Private containers.conf / registries.conf / storage.conf for podman
    (runc: crun refuses this host's hybrid cgroups; ulimits pinned to the
    caller's hard limits, as CAP_SYS_RESOURCE is missing here). Returns the
    environment that points podman at them."""
    conf = os.path.join(work, "podman")
    os.makedirs(conf, exist_ok=True)
    hard = subprocess.run(["sh", "-c", "ulimit -Hn"], capture_output=True, text=True).stdout.strip()
    open(os.path.join(conf, "containers.conf"), "w").write(
        f'[containers]\ndefault_ulimits = ["nofile={hard}:{hard}", "nproc=32768:32768"]\n'
        '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n')
    open(os.path.join(conf, "registries.conf"), "w").write(registries)
    open(os.path.join(conf, "storage.conf"), "w").write(
        f'[storage]\ndriver = "overlay"\nrunroot = "{runroot}"\ngraphroot = "{graphroot}"\n')
    return dict(base_env, CONTAINERS_CONF=os.path.join(conf, "containers.conf"),
                CONTAINERS_REGISTRIES_CONF=os.path.join(conf, "registries.conf"),
                CONTAINERS_STORAGE_CONF=os.path.join(conf, "storage.conf"))


def busybox_tar(path, applets=("sh", "true", "sleep", "echo", "ls", "cat")):
    """An image root as a tar at path: Debian's static /bin/busybox, links
    for the applets, /etc/passwd and /etc/group for root."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for d in ("bin", "etc", "tmp", "root"):
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            t.addfile(ti)
        t.add("/bin/busybox", "bin/busybox")
        for a in applets:
            ti = tarfile.TarInfo(f"bin/{a}")
            ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, "busybox", 0o777
            t.addfile(ti)
        for name, body in (("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"), ("etc/group", b"root:x:0:\n")):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode = len(body), 0o644
            t.addfile(ti, io.BytesIO(body))
    open(path, "wb").write(buf.getvalue())
    return path


def client_env(work):
    """The environment for docker/podman/wharf clients: no DOCKER_*/WHARF_*
    from the caller, an empty client config of its own."""
    cfg = os.path.join(work, "cli-config")
    os.makedirs(cfg, exist_ok=True)
    open(os.path.join(cfg, "config.json"), "w").write("{}")  # podman reads it too
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "WHARF_"))}
    env["DOCKER_CONFIG"] = cfg
    return env
