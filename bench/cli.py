"""The command line's latency, wharf vs the docker CLI; driven by bench/cli (see there)."""
import io, json, os, shutil, signal, statistics, subprocess, sys, tarfile, time

runs, release = int(sys.argv[1]), sys.argv[2]
WHARF, WHARFD, SHIM = (os.path.join(release, n) for n in ("wharf", "wharfd", "wharf-shim"))
DOCKER = "/usr/local/bin/docker" if os.path.exists("/usr/local/bin/docker") else shutil.which("docker")
work = f"/tmp/wcb-{os.getpid()}"  # short: unix socket paths are limited to 108 bytes
os.makedirs(work)
procs = []
N_CTR, N_IMG = 50, 20


def unmount_under(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        mps = [l.split()[4] for l in f]
    for mp in sorted((m for m in mps if m == path or m.startswith(path + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], capture_output=True)


def start(cmd, log):
    p = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
    procs.append(p)
    return p


def stop_all():
    for p in reversed(procs):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def wait_for(cli, env, what):
    end = time.time() + 60
    while time.time() < end:
        if subprocess.run(cli + ["version"], capture_output=True, env=env).returncode == 0:
            return
        time.sleep(0.1)
    sys.exit(f"bench/cli: {what} did not come up")


def rootfs_tar():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for d in ("bin", "etc", "tmp"):
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            t.addfile(ti)
        t.add("/bin/busybox", "bin/busybox")
        for a in ("sh", "true", "sleep"):
            ti = tarfile.TarInfo(f"bin/{a}")
            ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, "busybox", 0o777
            t.addfile(ti)
        body = b"root:x:0:0:root:/root:/bin/sh\n"
        ti = tarfile.TarInfo("etc/passwd")
        ti.size, ti.mode = len(body), 0o644
        t.addfile(ti, io.BytesIO(body))
    path = os.path.join(work, "busybox.tar")
    open(path, "wb").write(buf.getvalue())
    return path


class Client:
    def __init__(self, name, cli, env):
        self.name, self.cli, self.env = name, cli, env

    def run(self, *args):
        r = subprocess.run(self.cli + list(args), capture_output=True, text=True, env=self.env)
        if r.returncode != 0:
            sys.exit(f"{self.name}: {' '.join(args)} failed: {r.stderr[-800:]}")
        return r.stdout

    def time(self, *args):
        t = time.perf_counter()
        r = subprocess.run(self.cli + list(args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=self.env)
        dt = time.perf_counter() - t
        if r.returncode != 0:
            sys.exit(f"{self.name}: {' '.join(args)} failed: {r.stderr[-800:]}")
        return dt * 1000


def main():
    tar = rootfs_tar()
    cfg = os.path.join(work, "cli-config")
    os.makedirs(cfg)
    open(os.path.join(cfg, "config.json"), "w").write("{}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "WHARF_"))}
    env["DOCKER_CONFIG"] = cfg

    wsock = f"{work}/wharf.sock"
    open(f"{work}/wharf.json", "w").write("{}")
    start([WHARFD, "--config-file", f"{work}/wharf.json", "--data-root", f"{work}/wd", "--exec-root",
           f"/run/wcb-wharf-{os.getpid()}", "-H", f"unix://{wsock}", "--shim-binary", SHIM, "--log-level", "warn"],
          f"{work}/wharfd.log")
    dbase = f"/run/wcb-docker-{os.getpid()}"
    json.dump({"storage-driver": "overlay2", "exec-opts": ["native.cgroupdriver=cgroupfs"],
               "bridge": "none", "iptables": False, "ip-masq": False}, open(f"{work}/docker.json", "w"))
    start(["dockerd", "--host", f"unix://{dbase}.sock", "--data-root", f"{work}/docker", "--exec-root",
           dbase, "--pidfile", f"{dbase}.pid", "--config-file", f"{work}/docker.json"], f"{work}/dockerd.log")
    clients = [
        Client("wharf->wharfd", [WHARF, "-H", f"unix://{wsock}"], env),
        Client("docker->wharfd", [DOCKER, "-H", f"unix://{wsock}"], env),
        Client("docker->dockerd", [DOCKER, "-H", f"unix://{dbase}.sock"], env),
    ]
    wait_for(clients[1].cli, env, "wharfd")
    wait_for(clients[2].cli, env, "dockerd")

    # Fixtures on each daemon (the two wharfd clients share one): 20 images,
    # 50 running containers.
    for c in (clients[0], clients[2]):
        c.run("import", tar, "busybox:latest")
        for i in range(N_IMG - 1):
            c.run("tag", "busybox:latest", f"bench/img{i}:latest")
        for _ in range(2):
            c.run("run", "--rm", "--network", "none", "busybox", "true")
    results = {c.name: {} for c in clients}
    workloads = [
        ("run --rm busybox true (ms)", ["run", "--rm", "--network", "none", "busybox", "true"]),
        ("images, 20 images (ms)", ["images"]),
        ("CLI start: version --format Client.Version (ms)", ["version", "--format", "{{.Client.Version}}"]),
        ("CLI start + connect: version (ms)", ["version"]),
    ]
    for label, args in workloads:
        for c in clients:
            c.time(*args)  # warm
        for _ in range(runs):
            for c in clients:
                results[c.name].setdefault(label, []).append(c.time(*args))
    for c in (clients[0], clients[2]):
        for i in range(N_CTR):
            c.run("run", "-d", "--network", "none", "--name", f"bench{i}", "busybox", "sleep", "100000")
    label = "ps, 50 running (ms)"
    for _ in range(runs):
        for c in clients:
            results[c.name].setdefault(label, []).append(c.time("ps"))
    for c in (clients[0], clients[2]):
        ids = c.run("ps", "-aq").split()
        if ids:
            c.run("rm", "-f", *ids)

    labels = [w[0] for w in workloads[:2]] + [label] + [w[0] for w in workloads[2:]]
    med = {n: {l: statistics.median(v) for l, v in r.items()} for n, r in results.items()}
    names = [c.name for c in clients]
    print(f"\nbench/cli: medians of {runs} runs, clients alternated\n")
    w = max(len(l) for l in labels)
    print(f"{'':{w}}  " + "  ".join(f"{n:>16}" for n in names))
    for l in labels:
        print(f"{l:{w}}  " + "  ".join(f"{med[n][l]:16.1f}" for n in names))
    print("\nratios (docker CLI / wharf CLI):")
    for l in labels:
        a, b, k = med[names[0]][l], med[names[1]][l], med[names[2]][l]
        print(f"  {l:{w}}  same daemon {b / a:5.2f}x   docker->dockerd {k / a:5.2f}x")
    run_l = labels[0]
    for n in names:
        own = med[n][labels[-1]]
        print(f"{n}: CLI start+connect {own:.1f} ms = {100 * own / med[n][run_l]:.1f}% of its run --rm "
              f"(process start alone {med[n][labels[-2]]:.1f} ms)")


try:
    main()
finally:
    stop_all()
    for d in (f"{work}/wd", f"{work}/docker", work):
        if os.path.exists(d):
            unmount_under(d)
            shutil.rmtree(d, ignore_errors=True)
    for p in (f"/run/wcb-docker-{os.getpid()}", f"/run/wcb-wharf-{os.getpid()}"):
        shutil.rmtree(p, ignore_errors=True)
