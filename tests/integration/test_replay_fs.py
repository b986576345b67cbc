#!/usr/bin/env python3
"""ptb replay fs / diff against snapshots taken while recording.

Each workload is a shell script run under `ptb record --capture-root WS`. Between its steps it
calls `cp -a WS SNAPS/N`: while that cp runs nothing else changes WS, so the tree rebuilt at any
seq between the cp's proc.exec and its proc.exit must equal SNAPS/N exactly: the same names
(bytes), kinds, modes, file contents and link targets. The test picks a random seq in each such
window, and also checks the end of the run against WS itself, and `ptb replay diff` between
consecutive snapshots against the difference of the two snapshot folders.

Workloads: a git session (init, commits, branches, mv, gc), a make -j2 build (build, touch and
rebuild, clean, build), tar (create, extract with modes, symlinks and hard links), and a Python
program that writes from threads, renames folders, chmods, links (hard and symbolic, written
through the other name), truncates, swaps two paths with RENAME_EXCHANGE and uses names with a
newline and invalid UTF-8. Bad input: a seq past the end, a target folder that is not empty, a
file over the capture cap (listed, exit 1; --create-missing; --fill-from), a store recorded
with --no-snapshot (refused without --root; with it, the first state is listed as unknown).

usage: test_replay_fs.py PTB [WORKLOAD...]     (exit 77: skipped)
"""
import hashlib
import json
import os
import random
import shutil
import stat
import subprocess
import sys
import tempfile

PTB = None
SEED = int(os.environ.get("PTB_TEST_SEED", "0")) or random.randrange(1, 1 << 30)
rng = random.Random(SEED)
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)


def tree(root):
    """{relative path bytes: (kind, mode, content or target)} of a folder."""
    out = {}
    rootb = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(rootb):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, rootb)
            st = os.lstat(p)
            m = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("symlink", m, os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", m, b"")
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    out[rel] = ("file", m, hashlib.sha256(f.read()).hexdigest())
            else:
                out[rel] = ("other", m, b"")
    out[b"."] = ("dir", stat.S_IMODE(os.lstat(rootb).st_mode), b"")
    return out


def compare(want, got, what):
    if want == got:
        return True
    for k in sorted(set(want) | set(got)):
        if want.get(k) != got.get(k):
            check(False, f"{what}: {k!r}: snapshot {want.get(k)} rebuilt {got.get(k)}")
            break
    return False


def ptb(*args, ok=(0,), **kw):
    r = subprocess.run([PTB] + list(args), capture_output=True, **kw)
    if r.returncode not in ok:
        check(False, f"ptb {' '.join(map(str, args))}: exit {r.returncode}\n"
                     f"{r.stdout.decode(errors='replace')}{r.stderr.decode(errors='replace')}")
    return r


def events(store):
    out = ptb("query", store, "--format", "jsonl").stdout
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def record(top, name, ws, script, extra=()):
    store = os.path.join(top, name + ".ptb")
    env = dict(os.environ, HOME=os.path.join(top, "home"), SNAPS=os.path.join(top, "snaps-" + name),
               WS=ws, GIT_CONFIG_NOSYSTEM="1", LC_ALL="C")
    os.makedirs(env["HOME"], exist_ok=True)
    os.makedirs(env["SNAPS"])
    with open(os.path.join(top, name + ".sh"), "w") as f:
        f.write("set -e\nsnap() { cp -a \"$WS\" \"$SNAPS/$1\"; }\n" + script)
    r = subprocess.run([PTB, "record", "-q", "--net", "off", "--gpu", "off", "--store", store,
                        "--capture-root", ws] + list(extra) +
                       ["--", "bash", os.path.join(top, name + ".sh")], cwd=ws, env=env,
                       capture_output=True)
    check(r.returncode == 0, f"{name}: ptb record exit {r.returncode}: {r.stderr.decode()}")
    return store, env["SNAPS"]


def windows(evs, snaps):
    """{snapshot name: (first seq, last seq)} of each `cp -a WS SNAPS/N`."""
    execs, out = {}, {}
    for e in evs:
        if e["type"] == "proc.exec" and e.get("argv", [""])[0] == "cp" and \
                e["argv"][-1].startswith(snaps + "/"):
            execs[e["exec_id"]] = (e["seq"], os.path.basename(e["argv"][-1]))
        elif e["type"] == "proc.exit" and e.get("exec_id") in execs:
            first, name = execs.pop(e["exec_id"])
            out[name] = (first, e["seq"])
    return out


def rebuild(top, store, seq, root, tag):
    to = os.path.join(top, "rebuilt", tag)
    r = ptb("replay", "fs", store, "--at", str(seq), "--to", to, "--root", root, "-q")
    check(b"complete" in r.stdout, f"{tag}: not complete: {r.stdout.decode(errors='replace')}")
    return to


def snapshot_diff(a, b):
    added = {k for k in b if k not in a}
    removed = {k for k in a if k not in b}
    changed = {k for k in a if k in b and a[k] != b[k]}
    return added, removed, changed


def verify_workload(top, name, ws, script, extra=()):
    store, snaps = record(top, name, ws, script, extra)
    evs = events(store)
    win = windows(evs, snaps)
    names = sorted(os.listdir(snaps), key=int)
    check(len(win) == len(names) and names, f"{name}: {len(win)} windows for {len(names)} snapshots")
    prev = None
    for n in names:
        lo, hi = win[n]
        seq = rng.randint(lo, hi)
        want = tree(os.path.join(snaps, n))
        got_dir = rebuild(top, store, seq, ws, f"{name}-{n}-{seq}")
        compare(want, tree(got_dir), f"{name}: snapshot {n} at seq {seq} (window {lo}..{hi})")
        if prev:
            # ptb replay diff between the two windows = the difference of the two snapshots
            pseq, pwant = prev
            r = ptb("replay", "diff", store, "--from", str(pseq), "--to", str(seq), "--root", ws,
                    "--json")
            d = json.loads(r.stdout)
            rel = lambda p: os.path.relpath(os.fsencode(p), os.fsencode(ws))
            got = {c["change"]: set() for c in d["changes"]}
            for c in d["changes"]:
                path = bytes.fromhex(c["path_hex"]) if "path_hex" in c else os.fsencode(c["path"])
                got.setdefault(c["change"], set()).add(rel(path))
            add, rem, chg = snapshot_diff(pwant, want)
            check(got.get("A", set()) == add, f"{name}: diff {pseq}->{seq} added "
                                              f"{sorted(got.get('A', set()))} want {sorted(add)}")
            check(got.get("D", set()) == rem, f"{name}: diff {pseq}->{seq} removed "
                                              f"{sorted(got.get('D', set()))} want {sorted(rem)}")
            gchg = got.get("M", set()) | got.get("P", set()) | got.get("T", set()) | \
                got.get("L", set())
            # a folder's mtime is not compared, and a file rewritten with the same bytes is not
            # a change: compare what the snapshots can see
            check(gchg == chg, f"{name}: diff {pseq}->{seq} changed {sorted(gchg)} want "
                               f"{sorted(chg)}")
        prev = (seq, want)
    last = evs[-1]["seq"]
    got_dir = rebuild(top, store, last, ws, f"{name}-end")
    compare(tree(ws), tree(got_dir), f"{name}: the end of the run")
    print(f"{name}: {len(names)} snapshots and the end rebuilt", flush=True)
    return store


# ---------------------------------------------------------------- workloads

def w_git(top):
    ws = os.path.join(top, "git")
    os.makedirs(ws + "/docs/empty")
    with open(ws + "/a.txt", "w") as f:
        f.write("hello\n")
    with open(ws + "/docs/secret", "w") as f:
        f.write("x" * 5000)
    os.chmod(ws + "/docs/secret", 0o600)
    os.symlink("docs/secret", ws + "/link")
    g = "git -c user.name=t -c user.email=t@t -c init.defaultBranch=main"
    return ws, f"""snap 0
{g} init -q .
snap 1
{g} add -A && {g} commit -q -m one
snap 2
echo more >> a.txt && {g} commit -q -am two && {g} mv a.txt b.txt && {g} commit -q -m mv
snap 3
{g} checkout -q -b br && echo new > n.txt && chmod 755 n.txt && {g} add n.txt && {g} commit -q -m n
{g} checkout -q main && {g} merge -q --no-edit br
snap 4
{g} gc -q
snap 5
"""


def w_make(top):
    ws = os.path.join(top, "make")
    os.makedirs(ws)
    for i in range(6):
        with open(f"{ws}/m{i}.c", "w") as f:
            f.write(f"int f{i}(int x) {{ return x * {i + 1}; }}\n")
    with open(f"{ws}/main.c", "w") as f:
        f.write("".join(f"int f{i}(int);\n" for i in range(6)))
        f.write("int main(void) { return f0(1) + f5(0) - 1; }\n")
    objs = " ".join(f"m{i}.o" for i in range(6))
    with open(f"{ws}/Makefile", "w") as f:
        f.write(f"prog: main.o {objs}\n\tcc -o $@ $^\n%.o: %.c\n\tcc -pipe -O1 -c -o $@ $<\n"
                f"clean:\n\trm -f prog *.o\n")
    return ws, """snap 0
make -s -j2
snap 1
sleep 1.1; touch m3.c; make -s -j2; ./prog
snap 2
make -s clean
snap 3
make -s -j2
snap 4
"""


def w_tar(top):
    ws = os.path.join(top, "tar")
    src = os.path.join(top, "tarsrc")
    os.makedirs(ws)
    os.makedirs(src + "/d/e")
    for i in range(12):
        with open(f"{src}/d/f{i}", "wb") as f:
            f.write(os.urandom(100 * i))
        os.chmod(f"{src}/d/f{i}", [0o644, 0o600, 0o755, 0o444][i % 4])
    os.symlink("f1", src + "/d/sym")
    os.link(src + "/d/f2", src + "/d/e/hard")
    os.chmod(src + "/d/e", 0o750)
    subprocess.run(["tar", "cf", ws + "/in.tar", "-C", src, "d"], check=True)
    return ws, """snap 0
mkdir out && tar xpf in.tar -C out
snap 1
tar czf out.tgz -C out d && rm -r out
snap 2
mkdir again && tar xzpf out.tgz -C again && rm out.tgz
snap 3
"""


PY_FS = r"""
import ctypes, os, subprocess, threading
def snap(n):
    subprocess.run(["cp", "-a", os.environ["WS"], os.environ["SNAPS"] + "/" + n], check=True)
def work(i):
    for k in range(6):
        p = f"t{i}_{k}.tmp"
        with open(p, "w") as f:
            f.write("x" * (i * 100 + k))
        os.rename(p, f"t{i}_{k}.dat")
        if k % 2:
            os.unlink(f"t{i}_{k}.dat")
ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
snap("1")
os.makedirs("d/sub"); open("d/sub/x", "w").write("y" * 10)
os.rename("d", "e")
os.chmod("e/sub/x", 0o640); os.chmod("e/sub", 0o700)
os.link("e/sub/x", "hard"); os.symlink("e/sub/x", "soft"); os.symlink("../nowhere", "dangling")
with open("hard", "r+") as f:
    f.write("Z")
snap("2")
open("big", "wb").write(b"q" * 10000)
os.truncate("big", 100)
with open("big", "r+b") as f:
    f.truncate(5000)
open(b"nl\nname", "w").write("newline")
open(b"bad\xff\xfename", "w").write("bytes")
open("one", "w").write("1"); open("two", "w").write("22")
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2
r = libc.syscall(316 if os.uname().machine == "x86_64" else 276, AT_FDCWD, b"one", AT_FDCWD,
                 b"two", RENAME_EXCHANGE)
assert r == 0, ctypes.get_errno()
snap("3")
os.unlink("hard"); os.rename("e/sub", "moved"); os.rmdir("e")
fd = os.open("made", os.O_WRONLY | os.O_CREAT, 0o600); os.write(fd, b"abc"); os.fchmod(fd, 0o604)
os.close(fd)
snap("4")
"""


def w_python(top):
    ws = os.path.join(top, "python")
    os.makedirs(ws)
    with open(os.path.join(top, "fs.py"), "w") as f:
        f.write(PY_FS)
    return ws, f"""snap 0
python3 {top}/fs.py
"""


WORKLOADS = {"git": w_git, "make": w_make, "tar": w_tar, "python": w_python}


def host_ip():
    """An address of this host other than loopback (what a recorded namespace reaches by NAT)."""
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))  # no packet is sent: only the route is looked up
        return s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()


def record_cmd(top, name, ws, cmd, extra=()):
    store = os.path.join(top, name + ".ptb")
    r = subprocess.run([PTB, "record", "-q", "--gpu", "off", "--store", store, "--capture-root",
                        ws] + list(extra) + ["--", "bash", "-c", cmd], cwd=ws, capture_output=True)
    check(r.returncode == 0, f"{name}: ptb record exit {r.returncode}: {r.stderr.decode()}")
    return store


def replay_exec(top, store, name, ok=(0, 1)):
    r = ptb("replay", "exec", store, "--work", os.path.join(top, "exec-" + name), "--json", "-q",
            ok=ok)
    try:
        return json.loads(r.stdout)
    except ValueError:
        check(False, f"{name}: replay exec printed no JSON: {r.stdout[:300]} {r.stderr[:500]}")
        return {"steps": []}


def exec_cases(top):
    """ptb replay exec of plain recorded commands: a build gives the same files, a command
    that writes the time diverges, a plain HTTP fetch is served again from the stored packets
    (when they were kept whole) or listed as not replayable (when the snap length cut them)."""
    ws = os.path.join(top, "xmake")
    ws_ok, _ = w_make(os.path.join(top, "x"))
    shutil.move(ws_ok, ws)
    store = record_cmd(top, "xmake", ws, "make -s -j2 && ./prog")
    j = replay_exec(top, store, "xmake")
    check([s["state"] for s in j["steps"]] == ["same"], f"exec make: {j['steps']}")
    ws = os.path.join(top, "xdate")
    os.makedirs(ws)
    store = record_cmd(top, "xdate", ws, "date +%s%N > stamp; echo fixed > same")
    j = replay_exec(top, store, "xdate")
    st = j["steps"][0] if j["steps"] else {}
    check(st.get("state") == "diverged" and len(st.get("differences", [])) == 1 and
          "stamp" in st["differences"][0] and "other content" in st["differences"][0],
          f"exec date: {st}")
    ip = host_ip()
    if not ip:
        print("no address other than loopback: the HTTP replay is not checked", flush=True)
        return
    srv_dir = os.path.join(top, "www")
    os.makedirs(srv_dir)
    body = os.urandom(300000)
    open(srv_dir + "/big.bin", "wb").write(body)
    open(srv_dir + "/small.txt", "w").write("small reply\n")
    srv = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", ip, "0"], cwd=srv_dir,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = int(srv.stdout.readline().split("port ")[1].split()[0])
        fetch = (f"curl -sf -o got.bin http://{ip}:{port}/big.bin && "
                 f"curl -sf -o got.txt http://{ip}:{port}/small.txt")
        ws = os.path.join(top, "xhttp")
        os.makedirs(ws)
        store = record_cmd(top, "xhttp", ws, fetch, ["--keep-host", ip])
        check(open(ws + "/got.bin", "rb").read() == body, "http: the recorded fetch")
        ws2 = os.path.join(top, "xhttpcut")
        os.makedirs(ws2)
        store2 = record_cmd(top, "xhttpcut", ws2, fetch)
    finally:
        srv.kill()
        srv.wait()
    # the server is gone: only the stored packets can answer now
    j = replay_exec(top, store, "xhttp")
    st = j["steps"][0] if j["steps"] else {}
    check(st.get("state") == "same" and "served from the stored packets" in st.get("why", ""),
          f"exec http (kept whole): {st}")
    j = replay_exec(top, store2, "xhttpcut", ok=(1,))
    st = j["steps"][0] if j["steps"] else {}
    check(st.get("state") == "not replayable" and "snap length" in st.get("why", ""),
          f"exec http (cut): {st}")
    print("exec: build same, time diverged, HTTP served / not replayable", flush=True)


def bad_input(top):
    ws = os.path.join(top, "bad")
    os.makedirs(ws)
    with open(ws + "/big.bin", "wb") as f:
        f.write(os.urandom(300000))
    with open(ws + "/small", "w") as f:
        f.write("s")
    store, _ = record(top, "bad", ws, "echo more > small\nsnap 0\n",
                      ["--capture-file-max", "100K"])
    last = events(store)[-1]["seq"]
    r = ptb("replay", "fs", store, "--at", str(last + 1), "--to", top + "/b1", ok=(2,))
    check(b"outside the store" in r.stderr, f"seq past the end: {r.stderr}")
    check(not os.path.exists(top + "/b1"), "seq past the end: nothing written")
    os.makedirs(top + "/b2")
    open(top + "/b2/x", "w").close()
    r = ptb("replay", "fs", store, "--to", top + "/b2", ok=(2,))
    check(b"not empty" in r.stderr, f"target not empty: {r.stderr}")
    r = ptb("replay", "fs", store, "--to", top + "/b3", "--root", ws, ok=(1,))
    check(b"INCOMPLETE" in r.stdout and b"big.bin" in r.stdout, f"uncaptured file: {r.stdout}")
    check(not os.path.exists(top + "/b3/big.bin"), "uncaptured file written")
    check(open(top + "/b3/small").read() == "more\n", "small file")
    r = ptb("replay", "fs", store, "--to", top + "/b4", "--root", ws, "--create-missing", ok=(1,))
    check(os.path.getsize(top + "/b4/big.bin") == 0, "--create-missing: empty file")
    r = ptb("replay", "fs", store, "--to", top + "/b5", "--root", ws, "--fill-from", ws,
            "--json")
    j = json.loads(r.stdout)
    check(j["complete"] and j["filled"] == 1, f"--fill-from: {j}")
    check(open(top + "/b5/big.bin", "rb").read() == open(ws + "/big.bin", "rb").read(),
          "--fill-from: content")
    # a fill-from file with other bytes is not taken
    other = top + "/other"
    shutil.copytree(ws, other)
    with open(other + "/big.bin", "r+b") as f:
        f.write(b"\0")
    r = ptb("replay", "fs", store, "--to", top + "/b6", "--root", ws, "--fill-from", other,
            ok=(1,))
    check(not os.path.exists(top + "/b6/big.bin"), "--fill-from with other bytes taken")
    # no snapshot
    ws2 = os.path.join(top, "nosnap")
    os.makedirs(ws2)
    open(ws2 + "/old", "w").write("o")
    store2, _ = record(top, "nosnap", ws2, "echo new > new\n", ["--no-snapshot"])
    r = ptb("replay", "fs", store2, "--to", top + "/b7", ok=(2,))
    check(b"no snapshot" in r.stderr, f"--no-snapshot store: {r.stderr}")
    r = ptb("replay", "fs", store2, "--to", top + "/b8", "--root", ws2, ok=(1,))
    check(b"first state" in r.stdout and open(top + "/b8/new").read() == "new\n",
          f"--no-snapshot with --root: {r.stdout}")
    r = ptb("replay", "fs", top + "/nothere.ptb", "--to", top + "/b9", ok=(3,))
    # a link that points out of the tree, and a folder made through it: never followed
    ws3, outside = os.path.join(top, "escape"), os.path.join(top, "outside")
    os.makedirs(ws3)
    os.makedirs(outside)
    store3, _ = record(top, "escape", ws3, f"ln -s {outside} a && mkdir a/evil && echo x > a/f\n")
    shutil.rmtree(outside)
    os.makedirs(outside)
    r = ptb("replay", "fs", store3, "--to", top + "/b10", "--root", ws3)
    check(os.listdir(outside) == [], f"escape: replay wrote {os.listdir(outside)} outside the tree")
    check(os.readlink(top + "/b10/a") == outside and os.listdir(top + "/b10") == ["a"],
          "escape: the link itself is rebuilt, what went through it is not")
    # a crafted store: a snapshot that names entries under a link (JSONL import)
    root = os.path.join(top, "crafted")
    evs = [{"type": "file.state", "path": root, "kind": "dir", "mode": 493, "root": True},
           {"type": "file.state", "path": root + "/a", "kind": "symlink", "mode": 511,
            "target": outside},
           {"type": "file.state", "path": root + "/a/x", "kind": "dir", "mode": 493},
           {"type": "file.state", "path": root + "/a/x/f", "kind": "file", "mode": 420,
            "size": 0, "captured": True, "sha256": hashlib.sha256(b"").hexdigest()}]
    with open(top + "/crafted.jsonl", "w") as f:
        f.write("".join(json.dumps(e) + "\n" for e in evs))
    ptb("import", "--jsonl", top + "/crafted.jsonl", top + "/crafted.ptb")
    r = ptb("replay", "fs", top + "/crafted.ptb", "--to", top + "/b11", "--root", root, ok=(1,))
    check(b"symbolic link" in r.stdout and b"a/x" in r.stdout, f"crafted: {r.stdout}")
    check(os.listdir(outside) == [], f"crafted: replay wrote {os.listdir(outside)} outside")
    r = ptb("replay", "diff", store, "--from", str(last), "--to", "1", ok=(2,))
    print("bad input: checked", flush=True)


def main():
    global PTB
    PTB = sys.argv[1]
    top = tempfile.mkdtemp(prefix="ptb-replay-fs-")
    probe = subprocess.run([PTB, "record", "-q", "--net", "off", "--store", top + "/probe.ptb",
                            "--", "true"], capture_output=True)
    if probe.returncode != 0:
        print("skipped: ptb record cannot trace here:", probe.stderr.decode())
        shutil.rmtree(top, ignore_errors=True)
        return 77
    print("seed", SEED, "(PTB_TEST_SEED to repeat)", flush=True)
    names = sys.argv[2:] or list(WORKLOADS) + ["bad", "exec"]
    try:
        for n in names:
            if n == "bad":
                bad_input(top)
                continue
            if n == "exec":
                exec_cases(top)
                continue
            ws, script = WORKLOADS[n](top)
            verify_workload(top, n, ws, script)
    finally:
        if not failures:
            shutil.rmtree(top, ignore_errors=True)
        else:
            print("kept", top)
    print(f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
