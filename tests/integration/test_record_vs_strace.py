#!/usr/bin/env python3
"""ptb record against a real peer: strace.

Each workload runs twice in the same fresh directory: once under `strace -f -ff -y`, once under
`ptb record`. From both we take the programs executed (the path given to each successful
execve, counted), the files opened for writing (regular files, by the path of the returned
descriptor), the renames and the deletions (resolved against their directory descriptors), and
they must be equal. Names that a workload makes at random (gcc's and git's temporary files) are
normalised first: two runs cannot agree on them. Then, from the ptb store alone: every file
opened for writing has a file.write; for every file under the capture root that exists at the
end, the last file.write has the file's final SHA-256 and its content was captured (`ptb verify`
checks that each blob hashes to its key, so the blob holds the final bytes).

usage: test_record_vs_strace.py PTB [WORKLOAD...]     (exit 77: skipped)
"""
import collections
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

PTB = None
RANDOM_NAMES = [
    (re.compile(r"/cc[A-Za-z0-9]{6}((\.[a-z]+)*)$"), r"/ccXXXXXX\1"),
    (re.compile(r"(/\.git/)t[A-Za-z0-9]{6}$"), r"\1tXXXXXX"),
    (re.compile(r"tmp_obj_[A-Za-z0-9]{6}$"), "tmp_obj_XXXXXX"),
    (re.compile(r"/\.tmp[A-Za-z0-9_]{6,}$"), "/.tmpXXXXXX"),
]
TRACE = ("execve,execveat,open,openat,openat2,creat,rename,renameat,renameat2,unlink,"
         "unlinkat,rmdir")
WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC")


def norm(p):
    for rx, rep in RANDOM_NAMES:
        p = rx.sub(rep, p)
    return p


def lexical(p):
    out = []
    for seg in p.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if out:
                out.pop()
            continue
        out.append(seg)
    return "/" + "/".join(out)


# ---------------------------------------------------------------- strace's side

def unescape(s):
    """A C string as strace prints it (between the quotes), as bytes -> str (surrogateescape)."""
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c != "\\":
            out += c.encode("utf-8", "surrogateescape")
            i += 1
            continue
        n = s[i + 1]
        if n == "x":
            out.append(int(s[i + 2:i + 4], 16))
            i += 4
        elif n in "01234567":
            j = i + 1
            while j < len(s) and j < i + 4 and s[j] in "01234567":
                j += 1
            out.append(int(s[i + 1:j], 8))
            i = j
        else:
            out += {"n": b"\n", "t": b"\t", "r": b"\r", "v": b"\v", "f": b"\f", "\\": b"\\",
                    '"': b'"'}.get(n, n.encode())
            i += 2
    return out.decode("utf-8", "surrogateescape")


TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|(AT_FDCWD|\d+)<((?:[^>\\]|\\.)*)>|([A-Z_|0-9]+)')


def args_of(line):
    """The arguments of a strace line as a list of ('str', s) / ('dirfd', path) / ('flags', f)."""
    m = re.match(r"^(\w+)\((.*)\)\s+=\s+(-?\d+)(?:<((?:[^>\\]|\\.)*)>)?", line)
    if not m:
        return None
    name, body, ret, retpath = m.group(1), m.group(2), int(m.group(3)), m.group(4)
    args = []
    for t in TOKEN.finditer(body):
        if t.group(1) is not None:
            args.append(("str", unescape(t.group(1))))
        elif t.group(2) is not None:
            args.append(("dirfd", unescape(t.group(3))))
        else:
            args.append(("flags", t.group(4)))
    return name, args, ret, unescape(retpath) if retpath else None


def strace_facts(prefix_dir, cwd):
    execs, written, renamed, deleted = collections.Counter(), set(), set(), set()
    for fn in os.listdir(prefix_dir):
        if not fn.startswith("st."):
            continue
        with open(os.path.join(prefix_dir, fn), encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                a = args_of(line.strip())
                if not a:
                    continue
                name, args, ret, retpath = a
                strs = [v for k, v in args if k == "str"]
                dirs = [v for k, v in args if k == "dirfd"]
                flags = " ".join(v for k, v in args if k == "flags")

                def path(i, d=None):
                    p = strs[i]
                    if p.startswith("/"):
                        return lexical(p)
                    base = d if d is not None else (dirs[0] if dirs else cwd)
                    return lexical(base + "/" + p)

                if ret < 0:
                    continue
                if name in ("execve", "execveat") and strs:
                    execs[strs[0]] += 1
                elif name in ("open", "openat", "openat2", "creat"):
                    if (name == "creat" or any(w in flags for w in WRITE_FLAGS)) and retpath \
                            and retpath.startswith("/") and not retpath.startswith(("/dev/", "/proc/")):
                        written.add(norm(retpath))
                elif name in ("rename", "renameat", "renameat2") and len(strs) >= 2:
                    d1 = dirs[0] if dirs else None
                    d2 = dirs[1] if len(dirs) > 1 else d1
                    renamed.add((norm(path(0, d1)), norm(path(1, d2))))
                elif name in ("unlink", "unlinkat", "rmdir") and strs:
                    deleted.add(norm(path(0)))
    return execs, written, renamed, deleted


# ---------------------------------------------------------------- ptb's side

def ptb_events(store):
    out = subprocess.run([PTB, "query", store, "--format", "jsonl"], check=True,
                         capture_output=True).stdout
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def ptb_facts(evs):
    execs, written, renamed, deleted = collections.Counter(), set(), set(), set()
    for e in evs:
        t = e["type"]
        if t == "proc.exec" and not e.get("first_seen"):
            execs[e.get("filename", "")] += 1
        elif t == "file.open" and e.get("result", 0) >= 0:
            fl = e.get("flags", 0)
            if (fl & 3) or (fl & (os.O_CREAT | os.O_TRUNC)):
                p = e["path"]
                if not p.startswith(("/dev/", "/proc/")):
                    written.add(norm(p))
        elif t == "file.rename" and e.get("result", 0) == 0:
            renamed.add((norm(e["path"]), norm(e["new_path"])))
        elif t == "file.unlink" and e.get("result", 0) == 0:
            deleted.add(norm(e["path"]))
    return execs, written, renamed, deleted


# ---------------------------------------------------------------- workloads

def w_make(d):
    for i in range(6):
        with open(f"{d}/m{i}.c", "w") as f:
            f.write(f"int f{i}(int x) {{ return x * {i + 1}; }}\n")
    with open(f"{d}/main.c", "w") as f:
        f.write("".join(f"int f{i}(int);\n" for i in range(6)))
        f.write("int main(void) { return f0(1) + f5(0) - 1; }\n")
    objs = " ".join(f"m{i}.o" for i in range(6))
    with open(f"{d}/Makefile", "w") as f:
        f.write(f"prog: main.o {objs}\n\tcc -o $@ $^\n%.o: %.c\n\tcc -pipe -O1 -c -o $@ $<\n")
    return ["make", "-s", "-j2"]


def w_tar(d):
    os.makedirs(f"{d}/src/sub")
    for i in range(20):
        with open(f"{d}/src/sub/f{i}.txt", "w") as f:
            f.write("line %d\n" % i * (i + 1))
    return ["sh", "-c", "tar czf a.tgz src && mkdir out && tar xzf a.tgz -C out && rm a.tgz"]


def w_git(d):
    with open(f"{d}/a.txt", "w") as f:
        f.write("hello\n")
    return ["sh", "-c", "git init -q . && git add a.txt && git -c user.name=t "
            "-c user.email=t@t commit -q -m one && echo more >> a.txt && git -c user.name=t "
            "-c user.email=t@t commit -q -am two"]


PY_THREADS = r"""
import os, threading
def work(i):
    for k in range(5):
        p = f"t{i}_{k}.tmp"
        with open(p, "w") as f:
            f.write("x" * (i * 100 + k))
        os.rename(p, f"t{i}_{k}.dat")
        if k % 2:
            os.unlink(f"t{i}_{k}.dat")
ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
os.mkdir("d"); open("d/x", "w").write("y"); os.rename("d", "e"); os.unlink("e/x"); os.rmdir("e")
"""


def w_python(d):
    with open(f"{d}/w.py", "w") as f:
        f.write(PY_THREADS)
    return ["python3", "w.py"]


def w_busybox(d):
    bb = shutil.which("busybox")
    if not bb or "statically linked" not in subprocess.run(["file", "-L", bb], capture_output=True,
                                                          text=True).stdout + _static(bb):
        return None
    return [bb, "sh", "-c", "echo hi > f && " + bb + " mv f g && " + bb + " cp g h && " + bb +
            " rm g && " + bb + " mkdir -p q/r && " + bb + " rm -r q"]


def _static(path):
    try:
        out = subprocess.run(["ldd", path], capture_output=True, text=True)
        return "statically linked" if "not a dynamic" in out.stdout + out.stderr else ""
    except OSError:
        return ""


RAW_C = r"""
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>
static long raw(long n, long a, long b, long c, long d) {
    long r;
    register long r10 __asm__("r10") = d;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10)
                     : "rcx", "r11", "memory");
    return r;
}
int main(void) {
    long fd = raw(SYS_openat, AT_FDCWD, (long)"raw.out", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    raw(SYS_write, fd, (long)"raw bytes\n", 10, 0);
    raw(SYS_close, fd, 0, 0, 0);
    raw(SYS_renameat, AT_FDCWD, (long)"raw.out", AT_FDCWD, (long)"raw.moved");
    fd = raw(SYS_openat, AT_FDCWD, (long)"gone", O_WRONLY | O_CREAT, 0644);
    raw(SYS_close, fd, 0, 0, 0);
    raw(SYS_unlinkat, AT_FDCWD, (long)"gone", 0, 0);
    return 0;
}
"""


def w_raw(d):
    if os.uname().machine != "x86_64":
        return None
    exe = os.path.join(os.path.dirname(d), "rawsys")
    if not os.path.exists(exe):
        with open(exe + ".c", "w") as f:
            f.write(RAW_C)
        subprocess.run(["cc", "-O1", "-static", "-o", exe, exe + ".c"], check=True)
    return [exe]


WORKLOADS = {"make": w_make, "tar": w_tar, "git": w_git, "python": w_python,
             "busybox": w_busybox, "raw": w_raw}


def ptb_side(name, top, d, fresh, env, want, extra):
    """ptb record of the workload (with the extra options); its facts against strace's."""
    label_run = " ".join(extra) or "default"
    cmd = fresh()
    store = os.path.join(top, f"{name}.ptb")
    shutil.rmtree(store, ignore_errors=True)
    r = subprocess.run([PTB, "record", "--quiet", "--store", store, "--capture-root", d] +
                       extra + ["--"] + cmd, cwd=d, env=env)
    if r.returncode != 0:
        print(f"FAIL {name} ({label_run}): ptb record exited {r.returncode}")
        return False
    evs = ptb_events(store)
    got = ptb_facts(evs)
    ok = True
    for label, w, g in zip(("programs executed", "files opened for writing", "renames",
                            "deletions"), want, got):
        if w != g:
            ok = False
            print(f"FAIL {name} ({label_run}): {label} differ")
            if isinstance(w, collections.Counter):
                print(f"  strace only: {dict(w - g)}\n  ptb only: {dict(g - w)}")
            else:
                print(f"  strace only: {sorted(w - g)[:20]}\n  ptb only: {sorted(g - w)[:20]}")
    # every file opened for writing has a file.write; final contents match
    writes = {}
    for e in evs:
        if e["type"] == "file.write":
            writes[e["path"]] = e
    for p in want[1]:
        if "XXXXXX" in p:
            continue
        if not any(norm(k) == p for k in writes) and not any(
                r_[0] == p for r_ in want[2]):
            ok = False
            print(f"FAIL {name} ({label_run}): no file.write for {p}")
    for root, _, files in os.walk(d):
        for fn in files:
            p = os.path.join(root, fn)
            if os.path.islink(p) or not os.path.isfile(p) or p not in writes:
                continue
            with open(p, "rb") as f:
                h = hashlib.sha256(f.read()).hexdigest()
            e = writes[p]
            if e.get("sha256") != h or not e.get("captured"):
                ok = False
                print(f"FAIL {name} ({label_run}): {p}: last file.write sha256 {e.get('sha256')} "
                      f"captured {e.get('captured')}, the file is {h}")
    v = subprocess.run([PTB, "verify", store], capture_output=True, text=True)
    if v.returncode != 0:
        ok = False
        print(f"FAIL {name} ({label_run}): ptb verify: {v.stdout}{v.stderr}")
    print(f"# {name} ({label_run}): {len(evs)} events")
    return ok


def run_one(name, top):
    d = os.path.join(top, "w")  # the same path for both runs

    def fresh():
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        return WORKLOADS[name](d)

    env = dict(os.environ, GIT_AUTHOR_DATE="2026-01-01T00:00:00Z",
               GIT_COMMITTER_DATE="2026-01-01T00:00:00Z", LC_ALL="C")
    cmd = fresh()
    if cmd is None:
        print(f"# {name}: skipped (not available here)")
        return True
    sdir = os.path.join(top, "strace")
    shutil.rmtree(sdir, ignore_errors=True)
    os.makedirs(sdir)
    subprocess.run(["strace", "-f", "-ff", "-y", "-qq", "-s", "65536", "-e", "signal=none",
                    "-e", "trace=" + TRACE, "-o", os.path.join(sdir, "st")] + cmd, cwd=d,
                   env=env, check=True)
    want = strace_facts(sdir, d)
    ok = True
    for extra in ([], ["--wait-spin", "0"]):
        ok = ptb_side(name, top, d, fresh, env, want, extra) and ok
    n_exec = sum(want[0].values())
    print(f"# {name}: {n_exec} execs, {len(want[1])} files written, {len(want[2])} renames, "
          f"{len(want[3])} deletions: {'same' if ok else 'DIFFERENT'} (ptb record polling for "
          f"stops, and with --wait-spin 0)")
    return ok


def main():
    global PTB
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    PTB = os.path.abspath(sys.argv[1])
    if not shutil.which("strace"):
        print("strace is not installed: skipped")
        return 77
    probe = subprocess.run(["strace", "-qq", "-e", "trace=none", "true"], capture_output=True)
    if probe.returncode != 0:
        print("ptrace is not permitted here: skipped")
        return 77
    names = sys.argv[2:] or list(WORKLOADS)
    top = tempfile.mkdtemp(prefix="ptb-record-test-")
    try:
        ok = all([run_one(n, top) for n in names])
    finally:
        shutil.rmtree(top, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
