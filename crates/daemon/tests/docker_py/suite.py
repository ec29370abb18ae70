"""docker-py against a wharfd: run by tests/docker_py.rs as
`python suite.py unix:///path/to/wharf.sock NAME_PREFIX`. Prints the
docker-py version first, then one line per check; exits non-zero on the
first failed check."""
import io
import sys
import tarfile
import time

import docker

base_url, prefix = sys.argv[1], sys.argv[2]
print("docker-py", docker.__version__, flush=True)
client = docker.DockerClient(base_url=base_url, version="auto", timeout=60)


def check(name, cond, detail=""):
    if not cond:
        print(f"FAIL {name}: {detail}", flush=True)
        sys.exit(1)
    print(f"ok {name}", flush=True)


check("ping", client.ping() is True)
v = client.version()
check("version", v["ApiVersion"] == "1.50" and v["Os"] == "linux", v)
info = client.info()
check("info", info["OSType"] == "linux" and info["Images"] >= 1, info.get("Images"))

# Images.
tags = [t for i in client.images.list() for t in i.tags]
check("images.list", "busybox:latest" in tags, tags)
img = client.images.get("busybox")
check("images.get", img.id.startswith("sha256:") and "busybox:latest" in img.tags, img.id)

# A detached container with environment and labels.
name = prefix + "-main"
c = client.containers.run(
    "busybox",
    ["sh", "-c", "echo hello $FOO; echo oops >&2; sleep 1000"],
    detach=True,
    environment={"FOO": "bar"},
    labels={"suite": prefix},
    name=name,
)
c.reload()
check("run detach", c.status == "running" and c.name == name, c.status)
check("labels", c.labels.get("suite") == prefix, c.labels)
check("env", "FOO=bar" in c.attrs["Config"]["Env"], c.attrs["Config"]["Env"])
listed = client.containers.list(filters={"label": f"suite={prefix}"})
check("containers.list filters", [x.id for x in listed] == [c.id], listed)

deadline = time.time() + 20
while b"hello bar" not in c.logs() and time.time() < deadline:
    time.sleep(0.1)
check("logs", c.logs(stdout=True, stderr=False) == b"hello bar\n", c.logs())
check("logs stderr", c.logs(stdout=False, stderr=True) == b"oops\n", c.logs(stdout=False))

r = c.exec_run(["sh", "-c", "echo out; echo err >&2; exit 3"])
check("exec_run exit code", r.exit_code == 3, r)
check("exec_run output", b"out\n" in r.output and b"err\n" in r.output, r.output)
r = c.exec_run(["sh", "-c", "echo out; echo err >&2"], demux=True)
check("exec_run demux", r.output == (b"out\n", b"err\n"), r.output)
r = c.exec_run("id -u", user="web")
check("exec_run user", r.output == b"1000\n", r.output)

# Archives both ways.
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    data = b"from docker-py\n"
    ti = tarfile.TarInfo("dir/x.txt")
    ti.size = len(data)
    ti.mode = 0o640
    t.addfile(ti, io.BytesIO(data))
check("put_archive", c.put_archive("/tmp", buf.getvalue()) is True)
r = c.exec_run("cat /tmp/dir/x.txt")
check("put_archive content", r.output == b"from docker-py\n", r.output)
bits, stat = c.get_archive("/tmp/dir/x.txt")
check("get_archive stat", stat["name"] == "x.txt" and stat["size"] == 15, stat)
raw = b"".join(bits)
with tarfile.open(fileobj=io.BytesIO(raw)) as t:
    m = t.getmember("x.txt")
    got = t.extractfile(m).read()
check("get_archive content", got == b"from docker-py\n" and m.mode == 0o640, (got, oct(m.mode)))
try:
    c.get_archive("/nope")
    check("get_archive missing", False, "no error")
except docker.errors.NotFound as e:
    check("get_archive missing", "Could not find the file /nope" in str(e), e)

# Update, diff.
c.update(cpu_shares=512, mem_limit="64m")
c.reload()
hc = c.attrs["HostConfig"]
check("update", hc["CpuShares"] == 512 and hc["Memory"] == 64 << 20, (hc["CpuShares"], hc["Memory"]))
changes = {d["Path"]: d["Kind"] for d in c.diff()}
check("diff", changes.get("/tmp/dir/x.txt") == 1 and changes.get("/tmp") == 0, changes)

# Stop, wait, attach logs, remove.
t0 = time.time()
c.stop(timeout=1)
check("stop", time.time() - t0 < 15)
res = c.wait(timeout=30)
check("wait", res["StatusCode"] == 137, res)
c.reload()
check("status exited", c.status == "exited" and c.attrs["State"]["ExitCode"] == 137, c.status)
out = c.attach(stdout=True, stderr=True, stream=False, logs=True)
check("attach logs", b"hello bar\n" in out, out)
c.remove()
try:
    client.containers.get(c.id)
    check("remove", False, "still there")
except docker.errors.NotFound:
    check("remove", True)

# Foreground run: output, exit status, auto-remove.
out = client.containers.run("busybox", ["echo", "hi"], remove=True, name=prefix + "-fg")
check("run foreground", out == b"hi\n", out)
check("run remove", not client.containers.list(all=True, filters={"name": prefix + "-fg"}))
try:
    client.containers.run("busybox", ["sh", "-c", "echo bad >&2; exit 4"], name=prefix + "-err")
    check("run error", False, "no ContainerError")
except docker.errors.ContainerError as e:
    check("run error", e.exit_status == 4 and b"bad" in (e.stderr or b""), (e.exit_status, e.stderr))
client.containers.get(prefix + "-err").remove(force=True)

try:
    client.containers.run("no-such-image-here:1", "true")
    check("missing image", False, "ran")
except (docker.errors.ImageNotFound, docker.errors.APIError) as e:
    check("missing image", True)

print("ALL OK", flush=True)
