"""Side-by-side runtime benchmark; driven by bench/runtime."""
import json, os, shutil, statistics, subprocess, sys, time

iters, work, wharf = int(sys.argv[1]), sys.argv[2], sys.argv[3]
bundle = os.path.join(work, "bundle")
os.makedirs(os.path.join(bundle, "rootfs/bin"))
shutil.copy("/bin/busybox", os.path.join(bundle, "rootfs/bin/busybox"))
for a in ("sh", "true"):
    os.symlink("busybox", os.path.join(bundle, "rootfs/bin", a))
subprocess.run(["runc", "spec"], cwd=bundle, check=True)
cfg = json.load(open(os.path.join(bundle, "config.json")))
cfg["process"]["terminal"] = False
cfg["process"]["args"] = ["/bin/true"]
json.dump(cfg, open(os.path.join(bundle, "config.json"), "w"))

runtimes = {"wharf": wharf, "crun": shutil.which("crun"), "runc": shutil.which("runc")}
ok = {}
for name, path in runtimes.items():
    if not path:
        print(f"{name}: not installed"); continue
    root = os.path.join(work, "root-" + name)
    r = subprocess.run([path, "--root", root, "run", "--bundle", bundle, f"warm-{name}"], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"{name}: cannot run here: {(r.stderr or r.stdout).strip()[:200]}")
        subprocess.run([path, "--root", root, "delete", "--force", f"warm-{name}"], capture_output=True)
        continue
    ok[name] = (path, root)

times = {n: [] for n in ok}
for i in range(iters):
    for name, (path, root) in ok.items():
        t = time.perf_counter()
        r = subprocess.run([path, "--root", root, "run", "--bundle", bundle, f"b{i}"], capture_output=True)
        times[name].append((time.perf_counter() - t) * 1000)
        if r.returncode != 0:
            sys.exit(f"{name} failed: {r.stderr.decode()[:300]}")

def peak_rss(path, root):
    # Peak RSS (KB) of the runtime process itself, from GNU time.
    out = subprocess.run(["/usr/bin/time", "-f", "%M", path, "--root", root, "run", "--bundle", bundle, "rss"],
                         capture_output=True, text=True)
    return int(out.stderr.strip().splitlines()[-1])

print(f"\ncreate+start+wait+delete of /bin/true, {iters} iterations, alternated (ms)")
print(f"{'runtime':8} {'median':>8} {'p10':>8} {'p90':>8} {'peak RSS':>10}")
med = {}
for name, ts in times.items():
    ts.sort()
    med[name] = statistics.median(ts)
    rss = peak_rss(*ok[name])
    print(f"{name:8} {med[name]:8.2f} {ts[len(ts)//10]:8.2f} {ts[(len(ts)*9)//10]:8.2f} {rss/1024:8.1f}MiB")
for peer in ("crun", "runc"):
    if "wharf" in med and peer in med:
        print(f"wharf/{peer}: {med['wharf']/med[peer]:.2f}")
