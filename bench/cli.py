"""The command line's latency, wharf vs the docker CLI; driven by bench/cli (see there)."""
import os, statistics, subprocess, sys, time

from benchlib import (DOCKER_CLI as DOCKER, busybox_tar, cli_answers, client_env, remove, start_dockerd,
                      start_wharfd, stop_all, wait_for)

runs, release = int(sys.argv[1]), sys.argv[2]
WHARF, WHARFD, SHIM = (os.path.join(release, n) for n in ("wharf", "wharfd", "wharf-shim"))
work = f"/tmp/wcb-{os.getpid()}"  # short: unix socket paths are limited to 108 bytes
os.makedirs(work)
N_CTR, N_IMG = 50, 20


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
    tar = busybox_tar(os.path.join(work, "busybox.tar"), applets=("sh", "true", "sleep"))
    env = client_env(work)
    _, wsock = start_wharfd(WHARFD, SHIM, work, f"/run/wcb-wharf-{os.getpid()}")
    _, dsock = start_dockerd(work, f"/run/wcb-docker-{os.getpid()}")
    clients = [
        Client("wharf->wharfd", [WHARF, "-H", f"unix://{wsock}"], env),
        Client("docker->wharfd", [DOCKER, "-H", f"unix://{wsock}"], env),
        Client("docker->dockerd", [DOCKER, "-H", f"unix://{dsock}"], env),
    ]
    wait_for(cli_answers(clients[1].cli, env), "wharfd")
    wait_for(cli_answers(clients[2].cli, env), "dockerd")

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
    for x in ("/run/wcb-docker-{}", "/run/wcb-docker-{}.sock", "/run/wcb-docker-{}.pid", "/run/wcb-wharf-{}"):
        remove(x.format(os.getpid()))
    remove(work)
