"""Side-by-side cold-pull benchmark; driven by bench/pull (see there).

Quick iterations: BENCH_TOOLS=wharf runs only wharf (no dockerd/podman/skopeo);
WHARF_PULL_VARIANTS="base=/tmp/wharf-pull-old new=target/release/wharf-pull"
times several wharf-pull binaries alternated in the same run. CPU time is
user+sys of the pulling process (for docker: the CLI only, so not shown).
"""
import gzip, hashlib, json, os, resource, shutil, signal, socket, statistics, subprocess, sys, time
import urllib.request

runs, wharf_pull = int(sys.argv[1]), sys.argv[2]
variants = [v.split("=", 1) for v in os.environ.get("WHARF_PULL_VARIANTS", "").split()]
variants = variants or [["wharf", wharf_pull]]
only = os.environ.get("BENCH_TOOLS", "").split(",") if os.environ.get("BENCH_TOOLS") else None
cache = os.environ.get("WHARF_BENCH_CACHE", "/var/tmp/wharf-bench-pull")
work = os.path.join(cache, f"work-{os.getpid()}")
os.makedirs(work)
procs = []  # daemons started here: stopped at exit


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


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
    if os.path.exists(path):
        unmount_under(path)
        shutil.rmtree(path, ignore_errors=True)


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


def wait_for(check, what, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.1)
    sys.exit(f"bench/pull: {what} did not come up")


def start(cmd, log, env=None):
    p = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env,
                         start_new_session=True)
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
    wait_for(lambda: urllib.request.urlopen(f"http://{host}/v2/").status == 200, "docker-registry")
    push(meta, host, "bench/debian", "v1")
    ref = f"{host}/bench/debian:v1"

    # 3. dockerd with its own roots, no bridge, no iptables changes; one
    # fresh daemon (data root) per run, started and stopped outside the timing.
    dcfg = os.path.join(work, "daemon.json")
    json.dump({"storage-driver": "overlay2", "exec-opts": ["native.cgroupdriver=cgroupfs"],
               "bridge": "none", "iptables": False, "ip-masq": False,
               "insecure-registries": [host]}, open(dcfg, "w"))
    docker_cli = shutil.which("docker") or "/usr/bin/docker"

    def start_dockerd(i):
        base = f"/run/wharf-bench-{os.getpid()}-{i}"
        sock = f"unix://{base}.sock"
        p = start(["dockerd", "--host", sock, "--data-root", os.path.join(work, f"docker-{i}"),
                   "--exec-root", base, "--pidfile", f"{base}.pid", "--config-file", dcfg],
                  os.path.join(work, f"dockerd-{i}.log"))
        cli = [docker_cli, "-H", sock]
        wait_for(lambda: subprocess.run(cli + ["version"], capture_output=True).returncode == 0, "dockerd")
        return p, cli, base

    def stop_dockerd(p, base):
        p.send_signal(signal.SIGTERM)
        p.wait(60)
        procs.remove(p)
        for x in (base, base + ".sock", base + ".pid"):
            if os.path.isdir(x):
                unmount_under(x)
                shutil.rmtree(x, ignore_errors=True)
            elif os.path.exists(x):
                os.remove(x)

    # 4. podman's own config files.
    pconf = os.path.join(work, "podman")
    os.makedirs(pconf)
    hard = subprocess.run(["sh", "-c", "ulimit -Hn"], capture_output=True, text=True).stdout.strip()
    open(os.path.join(pconf, "containers.conf"), "w").write(
        f'[containers]\ndefault_ulimits = ["nofile={hard}:{hard}", "nproc=32768:32768"]\n'
        '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n')
    open(os.path.join(pconf, "registries.conf"), "w").write(
        f'[[registry]]\nlocation = "{host}"\ninsecure = true\n')
    open(os.path.join(pconf, "storage.conf"), "w").write(
        f'[storage]\ndriver = "overlay"\nrunroot = "/run/wbp-{os.getpid()}"\ngraphroot = "{work}/podman-root"\n')
    penv = dict(os.environ, CONTAINERS_CONF=os.path.join(pconf, "containers.conf"),
                CONTAINERS_REGISTRIES_CONF=os.path.join(pconf, "registries.conf"),
                CONTAINERS_STORAGE_CONF=os.path.join(pconf, "storage.conf"))

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
        p, cli, base = start_dockerd(i)
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
            p = os.path.join("/run", p)
            if os.path.isdir(p):
                remove(p)
            elif os.path.exists(p):
                os.remove(p)
