"""Side-by-side container lifecycle benchmark; driven by bench/run (see there)."""
import concurrent.futures, os, statistics, subprocess, sys, time

from benchlib import (DOCKER_CLI as CLI, busybox_tar, cli_answers, client_env, podman_env, remove,
                      start_dockerd, start_wharfd, stop_all, wait_for)

runs, release = int(sys.argv[1]), sys.argv[2]
WHARFD, SHIM = os.path.join(release, "wharfd"), os.path.join(release, "wharf-shim")
WCLI = os.path.join(release, "wharf")  # the wharf CLI: a fourth column, same wharfd
work = f"/tmp/wb-{os.getpid()}"  # short: unix socket paths are limited to 108 bytes
os.makedirs(work)
N, PAR = 50, 8


def tree_rss_kib(pid):
    """RSS of a process and its descendants (dockerd + containerd)."""
    children = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                ppid = int(open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(p))
            except (OSError, IndexError, ValueError):
                pass
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rollup(p)[0]
        todo += children.get(p, [])
    return total


def rollup(pid):
    """(Rss, Pss) in KiB from /proc/<pid>/smaps_rollup."""
    rss = pss = 0
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def monitors(exe_name, marker):
    """(Rss, Pss) of every process named exe_name whose command line names marker."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            comm = open(f"/proc/{p}/comm").read().strip()
            cmdline = open(f"/proc/{p}/cmdline", "rb").read().decode(errors="replace")
        except OSError:
            continue
        if comm == exe_name[:15] and marker in cmdline:  # comm is cut at 15 bytes
            out.append(rollup(int(p)))
    return out


class Peer:
    def __init__(self, name, cli, env=None, daemon=None, monitor=None):
        self.name, self.cli, self.env, self.daemon, self.monitor = name, cli, env, daemon, monitor

    def run(self, *args, check=True):
        r = subprocess.run(self.cli + list(args), capture_output=True, text=True, env=self.env)
        if check and r.returncode != 0:
            sys.exit(f"{self.name}: {' '.join(args)} failed: {r.stderr[-800:]}")
        return r.stdout


def main():
    tar = busybox_tar(os.path.join(work, "busybox.tar"))
    base_env = client_env(work)
    peers = []

    # 1. wharfd (release), own roots.
    # The exec root under /run, as wharfd's default (/run/wharf) and as
    # dockerd's and podman's below (a tmpfs on most hosts).
    wx = f"/run/wb-wharf-{os.getpid()}"
    wd, wsock = start_wharfd(WHARFD, SHIM, work, wx)
    wharf = Peer("wharf", [CLI, "-H", f"unix://{wsock}"], base_env, wd.pid, ("wharf-shim", wx))
    wait_for(cli_answers(wharf.cli, base_env), "wharfd")
    peers.append(wharf)
    # The same daemon driven by the wharf CLI (the issue's "the same with
    # the wharf CLI"); its daemon figures are wharfd's again.
    wcli = Peer("wharf-cli", [WCLI, "-H", f"unix://{wsock}"], base_env, wd.pid, ("wharf-shim", wx))

    # 2. dockerd with its own roots, no bridge, no iptables changes.
    dd, dsock = start_dockerd(work, f"/run/wb-docker-{os.getpid()}")
    docker = Peer("docker", [CLI, "-H", f"unix://{dsock}"], base_env, dd.pid,
                  ("containerd-shim-runc-v2", f"/run/wb-docker-{os.getpid()}"))
    wait_for(cli_answers(docker.cli, base_env), "dockerd")
    peers.append(docker)

    # 3. podman: own root/runroot and config files.
    runroot = f"/run/wbp-{os.getpid()}"
    penv = podman_env(work, runroot, f"{work}/podman-root", base_env)
    podman = Peer("podman", ["podman", "--root", f"{work}/podman-root", "--runroot", runroot], penv,
                  None, ("conmon", f"{work}/podman-root"))
    peers.append(podman)

    for p in peers:
        p.run("import", tar, "busybox:latest")
        for _ in range(2):  # warm-up: binaries and images paged in
            p.run("run", "--rm", "--network", "none", "busybox", "true")
    peers.append(wcli)  # after the import: the image is wharfd's already
    wcli.run("run", "--rm", "--network", "none", "busybox", "true")

    # 4. run --rm true, alternated.
    lat = {p.name: [] for p in peers}
    for i in range(runs):
        for p in peers[i % len(peers):] + peers[:i % len(peers)]:
            t = time.perf_counter()
            p.run("run", "--rm", "--network", "none", "busybox", "true")
            lat[p.name].append((time.perf_counter() - t) * 1000)
    time.sleep(3)  # idle: every daemon settles (wharfd trims its heap after 1 s without requests)
    idle = {p.name: tree_rss_kib(p.daemon) / 1024 if p.daemon else None for p in peers}

    # 5. 50 sleep containers, 8 at a time; ps; monitors; rm -f.
    res = {}
    for p in peers:
        t = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(PAR) as ex:
            ids = list(ex.map(lambda _: p.run("run", "-d", "--network", "none", "busybox", "sleep", "3600").strip(),
                              range(N)))
        start50 = time.perf_counter() - t
        running = len(p.run("ps", "-q").split())
        assert running == N, f"{p.name}: {running} running"
        pss = []
        for _ in range(5):
            t = time.perf_counter()
            p.run("ps")
            pss.append((time.perf_counter() - t) * 1000)
        mons = monitors(*p.monitor)
        busy = tree_rss_kib(p.daemon) / 1024 if p.daemon else None
        t = time.perf_counter()
        # docker rm -f kills at once; podman's waits for the stop timeout
        # unless told -t 0.
        p.run("rm", "-f", *(["-t", "0"] if p.name == "podman" else []), *ids)
        rm50 = time.perf_counter() - t
        res[p.name] = dict(start50=start50, ps=statistics.median(pss), rm50=rm50, busy=busy,
                           mon_n=len(mons),
                           mon_rss=statistics.mean(r for r, _ in mons) / 1024 if mons else None,
                           mon_pss=statistics.mean(s for _, s in mons) / 1024 if mons else None)

    # 6. The table.
    med = {n: statistics.median(v) for n, v in lat.items()}

    def f(v, fmt):
        return "n/a" if v is None else fmt % v

    names = [p.name for p in peers]
    rows = [
        (f"run --rm --network none busybox true, median of {runs} (ms)", {n: med[n] for n in names}, "%.1f"),
        ("  p10 (ms)", {n: sorted(lat[n])[len(lat[n]) // 10] for n in names}, "%.1f"),
        ("  p90 (ms)", {n: sorted(lat[n])[(len(lat[n]) * 9) // 10] for n in names}, "%.1f"),
        (f"start {N} sleep containers, {PAR} at a time (s)", {n: res[n]["start50"] for n in names}, "%.2f"),
        (f"ps with {N} running, median of 5 (ms)", {n: res[n]["ps"] for n in names}, "%.1f"),
        (f"rm -f of {N} running (s)", {n: res[n]["rm50"] for n in names}, "%.2f"),
        ("daemon RSS idle (MiB; dockerd+containerd)", idle, "%.1f"),
        (f"daemon RSS with {N} running (MiB)", {n: res[n]["busy"] for n in names}, "%.1f"),
        ("per-container monitor RSS (MiB)", {n: res[n]["mon_rss"] for n in names}, "%.2f"),
        ("per-container monitor PSS (MiB)", {n: res[n]["mon_pss"] for n in names}, "%.2f"),
    ]
    print(f"\ndocker CLI {subprocess.run([CLI, '--version'], capture_output=True, text=True).stdout.strip()}; "
          f"monitors: wharf-shim / containerd-shim-runc-v2 / conmon "
          f"({', '.join(str(res[n]['mon_n']) for n in names)} found)")
    print(f"{'':52} {'wharf':>9} {'docker':>9} {'podman':>9} {'w/docker':>9} {'w/podman':>9} {'wharf-cli':>9} {'wc/docker':>9}")
    for label, vals, fmt in rows:
        w = vals.get("wharf")
        ratio = lambda o: f"{w / vals[o]:.3f}" if w is not None and vals.get(o) else "n/a"
        wc = vals.get("wharf-cli")
        wc_ratio = f"{wc / vals['docker']:.3f}" if wc is not None and vals.get("docker") else "n/a"
        print(f"{label:52} {f(vals.get('wharf'), fmt):>9} {f(vals.get('docker'), fmt):>9} "
              f"{f(vals.get('podman'), fmt):>9} {ratio('docker'):>9} {ratio('podman'):>9} "
              f"{f(wc, fmt):>9} {wc_ratio:>9}")


try:
    main()
finally:
    stop_all()
    subprocess.run(["podman", "--root", f"{work}/podman-root", "--runroot", f"/run/wbp-{os.getpid()}",
                    "system", "reset", "-f"], capture_output=True,
                   env=dict(os.environ, CONTAINERS_STORAGE_CONF=os.path.join(work, "podman", "storage.conf")))
    for x in ("/run/wb-docker-{}", "/run/wb-docker-{}.sock", "/run/wb-docker-{}.pid", "/run/wbp-{}",
              "/run/wb-wharf-{}"):
        remove(x.format(os.getpid()))
    remove(work)
