"""Side-by-side cold-pull benchmark; driven by bench/pull (see there).

Quick iterations: BENCH_TOOLS=wharf runs only wharf (no dockerd/podman/skopeo);
WHARF_PULL_VARIANTS="base=/tmp/wharf-pull-old new=target/release/wharf-pull"
times several wharf-pull binaries alternated in the same run. CPU time is
user+sys of the pulling process (for docker: the CLI only, so not shown).
"""
import hashlib, json, os, resource, socket, statistics, subprocess, sys, time
import urllib.request

from benchlib import (DOCKER_CLI, cli_answers, podman_env, remove, start, start_dockerd, stop_all,
                      stop_dockerd, unmount_under, wait_for)

runs, wharf_pull = int(sys.argv[1]), sys.argv[2]
variants = [v.split("=", 1) for v in os.environ.get("WHARF_PULL_VARIANTS", "").split()]
variants = variants or [["wharf", wharf_pull]]
only = os.environ.get("BENCH_TOOLS", "").split(",") if os.environ.get("BENCH_TOOLS") else None
cache = os.environ.get("WHARF_BENCH_CACHE", "/var/tmp/wharf-bench-pull")
work = os.path.join(cache, f"work-{os.getpid()}")
os.makedirs(work)


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def mirror():
    """The Debian mirror apt uses here."""
    cands = []
    for d, names in [("/etc/apt", ["sources.list"]), ("/etc/apt/sources.list.d", None)]:
        if not os.path.isdir(d):
            continue
        for n in names or sorted(os.listdir(d)):
            p = os.path.join(d, n)
            if not os.path.isfile(p):
                continue
            for line in open(p):
                w = line.split("#")[0].split()
                if not w:
                    continue
                if w[0] == "URIs:":
                    cands += w[1:]
                elif w[0] == "deb":
                    cands += [x for x in w[1:] if "://" in x][:1]
    for c in cands:
        if "security" not in c:
            return c
    sys.exit("bench/pull: no Debian mirror found in /etc/apt/sources.list*")


# 1. The image, built offline once.
def build_image():
    img = os.path.join(cache, "image")
    if os.path.exists(os.path.join(img, "done")):
        return json.load(open(os.path.join(img, "done")))
    rootfs = os.path.join(cache, "rootfs")
    if not os.path.exists(os.path.join(cache, "rootfs.done")):
        remove(rootfs)
        print(f"building the Debian rootfs with debootstrap from {mirror()} ...", flush=True)
        sh("debootstrap", "--variant=minbase", "--include=nginx", "bookworm", rootfs, mirror(),
           stdout=subprocess.DEVNULL)
        open(os.path.join(cache, "rootfs.done"), "w").close()
    remove(img)
    os.makedirs(img)
    common = ["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "--format=posix",
              "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
              "--sort=name", "-C", rootfs, "-cf"]
    specs = [
        ["--exclude=./usr/share", "--exclude=./usr/lib", "--exclude=./dev/*", "--exclude=./proc/*",
         "--exclude=./sys/*", "--exclude=./run/*", "--exclude=./tmp/*", "--exclude=./var/cache/apt/*",
         "--exclude=./var/lib/apt/lists/*", "."],
        ["./usr/share"],
        ["./usr/lib"],
    ]
    layers = []
    for i, spec in enumerate(specs):
        t = os.path.join(img, f"layer{i}.tar")
        sh(*common, t, *spec)
        raw = open(t, "rb").read()
        gz = os.path.join(img, f"layer{i}.tar.gz")
        sh("sh", "-c", f"gzip -6 -n -c {t} > {gz}")
        comp = open(gz, "rb").read()
        layers.append({"diff_id": "sha256:" + hashlib.sha256(raw).hexdigest(), "size_raw": len(raw),
                       "digest": "sha256:" + hashlib.sha256(comp).hexdigest(), "size": len(comp),
                       "path": gz})
        os.remove(t)
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["nginx", "-g", "daemon off;"]},
        "rootfs": {"type": "layers", "diff_ids": [l["diff_id"] for l in layers]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": f"bench layer {i}"}
                    for i in range(len(layers))],
    }, separators=(",", ":")).encode()
    open(os.path.join(img, "config.json"), "wb").write(config)
    meta = {"layers": layers, "config": os.path.join(img, "config.json")}
    json.dump(meta, open(os.path.join(img, "done"), "w"))
    return meta


def push(meta, host, repo, tag):
    def upload(data):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        head = urllib.request.Request(f"http://{host}/v2/{repo}/blobs/{digest}", method="HEAD")
        try:
            urllib.request.urlopen(head)
            return digest
        except urllib.error.HTTPError:
            pass
        r = urllib.request.urlopen(urllib.request.Request(
            f"http://{host}/v2/{repo}/blobs/uploads/", method="POST", data=b""))
        loc = r.headers["Location"]
        if loc.startswith("/"):
            loc = f"http://{host}{loc}"
        sep = "&" if "?" in loc else "?"
        urllib.request.urlopen(urllib.request.Request(
            f"{loc}{sep}digest={digest}", method="PUT", data=data,
            headers={"Content-Type": "application/octet-stream"}))
        return digest

    config = open(meta["config"], "rb").read()
    cdig = upload(config)
    for l in meta["layers"]:
        upload(open(l["path"], "rb").read())
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": cdig,
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "digest": l["digest"], "size": l["size"]} for l in meta["layers"]],
    }).encode()
    urllib.request.urlopen(urllib.request.Request(
        f"http://{host}/v2/{repo}/manifests/{tag}", method="PUT", data=manifest,
        headers={"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"}))


def main():
    meta = build_image()
    comp = sum(l["size"] for l in meta["layers"])
    raw = sum(l["size_raw"] for l in meta["layers"])
    sizes = ", ".join("%.1f" % (l["size"] / 1e6) for l in meta["layers"])
    print(f"image: {len(meta['layers'])} layers, {comp / 1e6:.1f} MB gzip, {raw / 1e6:.1f} MB unpacked "
          f"({sizes} MB)")

    # 2. The registry, with its own storage.
    port = free_port()
    host = f"127.0.0.1:{port}"
    cfg = os.path.join(work, "registry.yml")
    open(cfg, "w").write(
        f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {work}/registry\n"
        f"http:\n  addr: {host}\n")
    start(["docker-registry", "serve", cfg], os.path.join(work, "registry.log"))
    wait_for(lambda: urllib.request.urlopen(f"http://{host}/v2/").status == 200, "docker-registry", timeout=30)
    push(meta, host, "bench/debian", "v1")
    ref = f"{host}/bench/debian:v1"

    # 3. dockerd with its own roots, no bridge, no iptables changes; one
    # fresh daemon (data root) per run, started and stopped outside the timing.
    def start_dockerd_n(i):
        base = f"/run/wharf-bench-{os.getpid()}-{i}"
        p, sock = start_dockerd(work, base, name=f"docker-{i}", insecure_registries=[host])
        cli = [DOCKER_CLI, "-H", f"unix://{sock}"]
        wait_for(cli_answers(cli), "dockerd", timeout=30)
        return p, cli, base

    # 4. podman's own config files.
    penv = podman_env(work, f"/run/wbp-{os.getpid()}", f"{work}/podman-root", dict(os.environ),
                      registries=f'[[registry]]\nlocation = "{host}"\ninsecure = true\n')

    def child_cpu():
        u = resource.getrusage(resource.RUSAGE_CHILDREN)
        return u.ru_utime + u.ru_stime

    cpu = {}

    def run_wharf_variant(name, binary):
        def run(i):
            root = os.path.join(work, f"{name}-{i}")
            c, t = child_cpu(), time.perf_counter()
            r = subprocess.run([binary, "--root", root, ref], capture_output=True, text=True)
            dt = time.perf_counter() - t
            cpu.setdefault(name, []).append(child_cpu() - c)
            if r.returncode != 0:
                sys.exit(f"wharf-pull ({name}) failed: {r.stderr[-500:]}")
            out = json.loads(r.stdout.strip().splitlines()[-1])
            return dt, out["peak_rss_kib"]
        return run

    def run_docker(i):
        p, cli, base = start_dockerd_n(i)
        t = time.perf_counter()
        sh(*cli, "pull", "-q", ref, stdout=subprocess.DEVNULL)
        dt = time.perf_counter() - t
        stop_dockerd(p, base)
        return dt, None

    def run_podman(i):
        # podman refuses a runroot path longer than 50 characters.
        root, runroot = os.path.join(work, f"podman-root-{i}"), f"/run/wbp-{os.getpid()}-{i}"
        t = time.perf_counter()
        c = child_cpu()
        r = subprocess.run(["podman", "--root", root, "--runroot", runroot, "pull", "-q", ref],
                           env=penv, capture_output=True, text=True)
        dt = time.perf_counter() - t
        cpu.setdefault("podman", []).append(child_cpu() - c)
        if r.returncode != 0:
            sys.exit(f"podman pull failed: {r.stderr[-800:]}")
        unmount_under(root)
        remove(runroot)
        return dt, None

    def run_skopeo(i):
        d = os.path.join(work, f"skopeo-{i}")
        c, t = child_cpu(), time.perf_counter()
        sh("skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}", f"dir:{d}")
        dt = time.perf_counter() - t
        cpu.setdefault("skopeo", []).append(child_cpu() - c)
        return dt, None

    # Every run pulls into a fresh root and nothing is deleted until the end:
    # on ext4 without a journal (as here) each file creation skips inodes
    # deleted in the last seconds, one by one, so deleting a 7,000-file tree
    # makes whichever pull comes next several times slower.
    tools = {name: run_wharf_variant(name, b) for name, b in variants}
    tools.update({"docker": run_docker, "podman": run_podman, "skopeo": run_skopeo})
    if only:
        wharf_names = {v[0] for v in variants}
        tools = {n: f for n, f in tools.items() if n in only or ("wharf" in only and n in wharf_names)}
    for name, f in tools.items():  # warm-up: binaries and daemons paged in
        f("warm")
    times = {n: [] for n in tools}
    rss = {}
    for i in range(runs):
        order = list(tools.items())
        order = order[i % len(order):] + order[:i % len(order)]
        for name, f in order:
            sh("sync")
            dt, r = f(i)
            times[name].append(dt)
            if r:
                rss.setdefault(name, []).append(r)
    for n in cpu:  # drop the warm-up run
        cpu[n] = cpu[n][1:]

    med = {n: statistics.median(v) for n, v in times.items()}
    print(f"\ncold pull of {ref}, {runs} runs, order rotated (seconds)")
    print(f"{'tool':8} {'median':>8} {'min':>8} {'max':>8} {'MB/s gz':>8} {'MB/s raw':>9} {'cpu med':>8}")
    for n, v in times.items():
        c = f"{statistics.median(cpu[n]):8.3f}" if cpu.get(n) else f"{'-':>8}"
        print(f"{n:8} {med[n]:8.3f} {min(v):8.3f} {max(v):8.3f} {comp / 1e6 / med[n]:8.1f} "
              f"{raw / 1e6 / med[n]:9.1f} {c}")
    w = variants[0][0]
    print()
    for other, note in [("docker", "   (target <= 0.25)"), ("podman", ""),
                        ("skopeo", "   (target <= 2; skopeo only downloads)")]:
        if w in med and other in med:
            print(f"{w} / {other} = {med[w] / med[other]:.3f}{note}")
    for n, v in rss.items():
        print(f"{n} peak RSS: median {statistics.median(v) / 1024:.1f} MiB, max {max(v) / 1024:.1f} MiB")


try:
    main()
finally:
    stop_all()
    remove(work)
    for p in os.listdir("/run"):
        if p.startswith((f"wbp-{os.getpid()}", f"wharf-bench-{os.getpid()}-")):
            remove(os.path.join("/run", p))
