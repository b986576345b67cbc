#!/usr/bin/env python3
"""ptb record on the cases a recorder must get right: exit status and signals, a command that
does not exist, bad stores, refused syscalls (io_uring, ptrace, int 0x80), exec from a thread,
job control, daemons and --grace, --budget and --kill-after, the recorder killed, 10,000 forks, odd file names, a 2 GB
file, a full disk, mmap writes, secrets. Real programs, real ptrace; each case checks the exit
status and the events of the store (`ptb query --format jsonl`).

usage: test_record_cases.py PTB [CASE...]     (exit 77: ptrace not permitted here)
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

from ptbcases import check, events, of_type, ptrace_forbidden, run

PTB = None
TOP = None




def record(name, cmd, *opts, env=None, timeout=120, cwd=None):
    store = os.path.join(TOP, name + ".ptb")
    shutil.rmtree(store, ignore_errors=True)
    wd = cwd or os.path.join(TOP, name)
    os.makedirs(wd, exist_ok=True)
    r = subprocess.run([PTB, "record", "--store", store, "--capture-root", wd, *opts, "--"] + cmd,
                       cwd=wd, env=env, capture_output=True, timeout=timeout)
    return r, store, wd






def cc(name, src, *flags):
    os.makedirs(os.path.join(TOP, "bin"), exist_ok=True)
    exe = os.path.join(TOP, "bin", name)
    with open(exe + ".c", "w") as f:
        f.write(src)
    subprocess.run(["cc", "-O1", "-pthread", "-o", exe, exe + ".c", *flags], check=True)
    return exe


# ---------------------------------------------------------------- cases

def case_exit():
    r, s, _ = record("exit", ["sh", "-c", "exit 7"])
    check(r.returncode == 7, f"exit: status {r.returncode}, wanted 7")
    end = of_type(events(s), "run.end")
    check(end and end[0].get("exit_code") == 7, "exit: run.end exit_code 7")
    r, s, _ = record("signal", ["sh", "-c", "kill -TERM $$"])
    check(r.returncode == 128 + 15, f"signal: status {r.returncode}, wanted 143")
    px = [e for e in of_type(events(s), "proc.exit") if e.get("signal") == 15]
    check(len(px) == 1, "signal: one proc.exit with signal 15")
    check(b"events" in r.stderr, "exit: a summary on stderr")


def case_not_found():
    r, s, _ = record("notfound", ["no-such-program-ptb"])
    check(r.returncode == 127, f"not found: status {r.returncode}, wanted 127")
    check(b"No such file" in r.stderr, f"not found: message {r.stderr!r}")
    end = of_type(events(s), "run.end")
    check(end and end[0].get("reason") == "exec_failed", "not found: run.end reason exec_failed")
    # the store exists already: refused, nothing overwritten
    r2 = subprocess.run([PTB, "record", "--store", s, "--", "true"], capture_output=True)
    check(r2.returncode == 2 and b"already exists" in r2.stderr, "existing store refused")
    r3 = subprocess.run([PTB, "record", "--store", "/proc/no/such.ptb", "--", "true"],
                        capture_output=True)
    check(r3.returncode == 5 and b"cannot create the store" in r3.stderr,
          f"unwritable store: {r3.returncode} {r3.stderr!r}")
    r4 = subprocess.run([PTB, "record", "--store", os.path.join(TOP, "x.ptb")],
                        capture_output=True)
    check(r4.returncode == 2, "no command: usage error")


REFUSED_C = r"""
#include <errno.h>
#include <stdio.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long r = -1, p = -1;
    int e1 = 0, e2 = 0;
    if (argc < 2) { /* with an argument: the int 0x80 probe alone (a native run) */
        r = syscall(425 /* io_uring_setup */, 8, (void *)0);
        e1 = errno;
        p = ptrace(PTRACE_TRACEME, 0, 0, 0);
        e2 = errno;
    }
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) { /* a kernel without IA-32 emulation kills int 0x80 with SIGSEGV */
        long g;
        __asm__ volatile("int $0x80" : "=a"(g) : "a"(20) /* i386 getpid */ : "memory");
        _exit(g == -38 ? 38 : 1);
    }
    int st;
    waitpid(c, &st, 0);
    printf("%ld %d %ld %d %s\n", r, e1, p, e2,
           WIFSIGNALED(st) ? "no-ia32" : WEXITSTATUS(st) == 38 ? "-38" : "ran");
    return 0;
}
"""


def case_refused():
    if os.uname().machine != "x86_64":
        return
    exe = cc("refused", REFUSED_C)
    native = subprocess.run([exe, "probe"], capture_output=True,
                            timeout=30).stdout.decode().split()
    r, s, _ = record("refused", [exe])
    out = r.stdout.decode().split()
    ia32 = native[-1:] != ["no-ia32"]
    check(out == ["-1", "38", "-1", "1", "-38" if ia32 else "no-ia32"], f"refused: results {out}")
    den = {e["syscall"] for e in of_type(events(s), "proc.denied")}
    want = {"io_uring_setup", "ptrace"} | ({"compat32"} if ia32 else set())
    check(den == want, f"refused: proc.denied {den}, wanted {want}")
    if not ia32:
        print("# refused: this kernel has no IA-32 emulation: int 0x80 not tried")


THREAD_EXEC_C = r"""
#include <pthread.h>
#include <unistd.h>
static void *run(void *a) { (void)a; execl("/bin/sh", "sh", "-c", "exit 5", (char *)0); return 0; }
int main(void) { pthread_t t; pthread_create(&t, 0, run, 0); pause(); return 1; }
"""


def case_thread_exec():
    exe = cc("threadexec", THREAD_EXEC_C)
    r, s, _ = record("threadexec", [exe], timeout=30)
    check(r.returncode == 5, f"exec from a thread: status {r.returncode}, wanted 5")
    ex = [e for e in of_type(events(s), "proc.exec") if e.get("filename") == "/bin/sh"]
    check(len(ex) == 1, "exec from a thread: proc.exec of /bin/sh")


def case_job_control():
    r, s, _ = record("jobs", ["sh", "-c", "sleep 0.3 & p=$!; kill -STOP $p; sleep 0.2; "
                              "kill -CONT $p; wait $p; echo resumed"], timeout=30)
    check(r.returncode == 0 and b"resumed" in r.stdout, f"job control: {r.returncode} {r.stdout!r}")
    r, s, _ = record("sigpass", ["python3", "-c",
                                 "import signal,os\nsignal.signal(signal.SIGUSR1, lambda *a: "
                                 "print('got usr1'))\nos.kill(os.getpid(), signal.SIGUSR1)"])
    check(b"got usr1" in r.stdout, "a signal reaches its handler unchanged")


def case_stopped_exit():
    # a process killed while in a group-stop: its exit is recorded and nothing hangs
    r, s, _ = record("stoppedexit", ["sh", "-c", "sleep 30 & p=$!; kill -STOP $p; sleep 0.2; "
                                     "kill -KILL $p; wait $p; echo status $?"], timeout=60)
    check(r.returncode == 0 and b"status 137" in r.stdout, f"stopped exit: {r.stdout!r}")
    sl = [e for e in of_type(events(s), "proc.exit") if e.get("signal") == 9]
    check(len(sl) == 1, f"stopped exit: proc.exit with signal 9 ({sl})")


RACE_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    for (int i = 0; i < 200; i++)
        if (fork() == 0) { /* write at once: the child's stops race its parent's fork event */
            char n[32];
            snprintf(n, sizeof n, "c%d", i);
            int fd = open(n, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (write(fd, n, 4) < 0) _exit(2);
            close(fd);
            _exit(0);
        }
    while (wait(0) > 0)
        ;
    return 0;
}
"""


def case_fork_race():
    exe = cc("forkrace", RACE_C)
    r, s, _ = record("forkrace", [exe], "-q", timeout=120)
    check(r.returncode == 0, f"fork race: status {r.returncode}")
    evs = events(s)
    root = [e for e in of_type(evs, "proc.exec") if e.get("filename") == exe]
    procs = {e["exec_id"]: e for e in of_type(evs, "proc.exec")}
    fw = [e for e in of_type(evs, "file.write") if os.path.basename(e["path"]).startswith("c")]
    ids = {e["exec_id"] for e in fw}
    check(len(fw) == 200 and len(ids) == 200, f"fork race: {len(fw)} writes from {len(ids)} ids")
    check(root and all(procs[i].get("parent_exec_id") == root[0]["exec_id"] and
                       procs[i].get("first_seen") for i in ids),
          "fork race: every child is a first_seen process whose parent is the forker")


def case_daemon():
    t0 = time.monotonic()
    r, s, _ = record("daemon", ["sh", "-c", "setsid sleep 1.5 > /dev/null 2>&1 < /dev/null & exit 0"])
    dt = time.monotonic() - t0
    check(r.returncode == 0 and dt >= 1.4, f"daemon: waited {dt:.1f}s for the daemon")
    check(any(e.get("filename", "").endswith("sleep") for e in of_type(events(s), "proc.exec")),
          "daemon: its exec is recorded")
    t0 = time.monotonic()
    r, s, _ = record("grace", ["sh", "-c", "setsid sleep 60 > /dev/null 2>&1 < /dev/null & exit 3"],
                     "--grace", "1")
    dt = time.monotonic() - t0
    check(r.returncode == 3 and dt < 10 and b"killed 1" in r.stderr,
          f"grace: status {r.returncode} after {dt:.1f}s, {r.stderr!r}")


def case_budget():
    # a command that stops on SIGTERM: ended by the budget, exit 143, run.end says "budget"
    t0 = time.monotonic()
    r, s, _ = record("budget", ["sh", "-c", "sleep 60"], "--budget", "1")
    dt = time.monotonic() - t0
    end = of_type(events(s), "run.end")
    check(r.returncode == 143 and dt < 8 and end and end[0].get("reason") == "budget",
          f"budget: status {r.returncode} after {dt:.1f}s, run.end {end}")
    # one that ignores SIGTERM and leaves a daemon that ignores it too: SIGKILL after
    # --kill-after, every process of the tree counted
    t0 = time.monotonic()
    r, s, _ = record("budget-kill", ["sh", "-c", "trap '' TERM; (setsid sleep 60 &); sleep 60"],
                     "--budget", "1", "--kill-after", "1")
    dt = time.monotonic() - t0
    check(r.returncode == 137 and 1.8 < dt < 8 and b"processes killed 1 s later" in r.stderr,
          f"budget-kill: status {r.returncode} after {dt:.1f}s, {r.stderr!r}")
    check(len(of_type(events(s), "proc.exit")) >= 3, "budget-kill: every exit recorded")


def case_recorder_killed():
    store = os.path.join(TOP, "killed.ptb")
    p = subprocess.Popen([PTB, "record", "-q", "--store", store, "--", "sleep", "61.2345"])
    time.sleep(1.0)
    p.kill()
    p.wait()
    time.sleep(0.5)
    left = subprocess.run(["pgrep", "-f", "sleep 61.2345"], capture_output=True).stdout
    check(not left, f"recorder killed: the tree died with it (left: {left!r})")
    v = subprocess.run([PTB, "verify", store], capture_output=True)
    check(v.returncode == 0, f"recorder killed: the store verifies {v.stdout!r} {v.stderr!r}")


FORKS_C = r"""
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int n = atoi(argv[1]);
    for (int i = 0; i < n; i++) {
        pid_t p = fork();
        if (p == 0)
            _exit(i % 7);
        if (p < 0 || waitpid(p, 0, 0) != p)
            return 1;
    }
    return 0;
}
"""


def case_forks():
    n = 10000
    exe = cc("forks", FORKS_C)
    r, s, _ = record("forks", [exe, str(n)], "-q", timeout=600)
    check(r.returncode == 0, f"forks: status {r.returncode}")
    exits = of_type(events(s, "evt.type = proc.exit"), "proc.exit")
    check(len(exits) == n + 1, f"forks: {len(exits)} proc.exit, wanted {n + 1}")
    check(sum(1 for e in exits if e.get("exit_code") == 6) == len(range(6, n, 7)),
          "forks: exit codes kept")


def case_names():
    r, s, wd = record("names", ["python3", "-c",
                                "open(b'new\\nline.txt','wb').write(b'a')\n"
                                "open(b'bad\\xff\\xfe.txt','wb').write(b'b')\n"
                                "import os; os.rename(b'new\\nline.txt', b'tab\\there')"])
    check(r.returncode == 0, "names: status 0")
    evs = events(s)  # every line parsed: the JSON is valid
    paths = [e["path"] for e in of_type(evs, "file.write")]
    check(any(p.endswith("/new\nline.txt") for p in paths), f"names: newline path {paths}")
    check(any(p.endswith("/bad\ufffd\ufffd.txt") for p in paths), f"names: invalid UTF-8 {paths}")
    check(any(e["new_path"].endswith("/tab\there") for e in of_type(evs, "file.rename")),
          "names: rename with a tab")


def case_big_file():
    r, s, wd = record("big", ["python3", "-c",
                              "f = open('big', 'wb'); f.truncate(2 << 30); f.seek((2 << 30) - 1);"
                              " f.write(b'x'); f.close()"], timeout=300)
    check(r.returncode == 0, "big file: status 0")
    evs = events(s)
    fw = [e for e in of_type(evs, "file.write") if e["path"].endswith("/big")]
    gaps = [e for e in of_type(evs, "gap") if e.get("reason") == "capture_cap"]
    h = hashlib.sha256()
    with open(os.path.join(wd, "big"), "rb") as f:
        while True:
            b = f.read(1 << 22)
            if not b:
                break
            h.update(b)
    check(len(fw) == 1 and fw[0]["size"] == 2 << 30 and not fw[0].get("captured") and
          fw[0]["sha256"] == h.hexdigest(), f"big file: file.write {fw}")
    check(len(gaps) == 1 and gaps[0].get("sha256") == h.hexdigest(), f"big file: gap {gaps}")
    os.unlink(os.path.join(wd, "big"))


COMPRESS_GEN = """
import os
open('text', 'w').write('the quick brown fox jumps over the lazy dog ' * 50000)
open('rand', 'wb').write(os.urandom(1 << 20))
open('lines', 'w').write(''.join('%d: a line of the log\\n' % i for i in range(400000)))
open('one', 'w').write('x')
open('empty', 'w').close()
"""


def case_compress():
    """Captured contents under each --compress: every blob decodes to its file (ptb verify),
    compressible ones take less room than with none; bad values are usage errors."""
    sizes = {}
    for spec in ("zstd", "zstd:19", "zlib", "zlib:1", "none"):
        name = "compress-" + spec.replace(":", "-")
        r, s, wd = record(name, ["python3", "-c", COMPRESS_GEN], "--no-snapshot",
                          "--compress", spec)
        check(r.returncode == 0, f"compress {spec}: status {r.returncode} {r.stderr[-300:]!r}")
        fw = {os.path.basename(e["path"]): e for e in of_type(events(s), "file.write")}
        for f in ("text", "rand", "lines", "one", "empty"):
            with open(os.path.join(wd, f), "rb") as fh:
                h = hashlib.sha256(fh.read()).hexdigest()
            e = fw.get(f, {})
            check(e.get("captured") and e.get("sha256") == h, f"compress {spec}: {f}: {e}")
        v = subprocess.run([PTB, "verify", s], capture_output=True)
        check(v.returncode == 0, f"compress {spec}: verify {v.returncode} {v.stdout[-300:]!r}")
        st = subprocess.run([PTB, "stats", s, "--format", "json"], capture_output=True)
        sizes[spec] = json.loads(st.stdout).get("blob_zbytes") if st.returncode == 0 else None
    if all(sizes.values()):
        check(sizes["zstd"] < sizes["none"] / 4 and sizes["zlib"] < sizes["none"] / 4,
              f"compress: stored blob bytes {sizes}")
    for bad in ("zstd:0", "zstd:20", "zlib:0", "zlib:10", "none:1", "lz4", "zstd:", "zstd:x", ""):
        r = subprocess.run([PTB, "record", "--store", os.path.join(TOP, "bad.ptb"),
                            "--compress", bad, "--", "true"], capture_output=True)
        check(r.returncode == 2 and b"--compress" in r.stderr,
              f"compress {bad!r}: {r.returncode} {r.stderr!r}")
        check(not os.path.exists(os.path.join(TOP, "bad.ptb")), f"compress {bad!r}: no store")


def case_disk_full():
    mnt = os.path.join(TOP, "small")
    os.makedirs(mnt)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", mnt],
                      capture_output=True).returncode != 0:
        print("# disk full: skipped (cannot mount a tmpfs here)")
        return
    try:
        store = os.path.join(mnt, "full.ptb")
        wd = os.path.join(TOP, "fullw")
        os.makedirs(wd)
        r = subprocess.run([PTB, "record", "--store", store, "--no-capture", "--", "sh", "-c",
                            "i=0; while [ $i -lt 200000 ]; do : > f; i=$((i+1)); done"],
                           cwd=wd, capture_output=True, timeout=600)
        check(r.returncode == 5, f"disk full: status {r.returncode}, wanted 5 ({r.stderr!r})")
        v = subprocess.run([PTB, "verify", store], capture_output=True)
        check(v.returncode == 0, f"disk full: the store verifies: {v.stdout!r}")
    finally:
        subprocess.run(["umount", mnt])


def case_mmap():
    r, s, wd = record("mmap", ["python3", "-c",
                               "import mmap, os\nfd = os.open('m.bin', os.O_RDWR | os.O_CREAT)\n"
                               "os.ftruncate(fd, 4096)\nm = mmap.mmap(fd, 4096)\nos.close(fd)\n"
                               "m[0:5] = b'hello'\nm.flush()"])
    with open(os.path.join(wd, "m.bin"), "rb") as f:
        h = hashlib.sha256(f.read()).hexdigest()
    fw = [e for e in of_type(events(s), "file.write") if e["path"].endswith("/m.bin")]
    check(fw and fw[-1]["sha256"] == h and fw[-1].get("trigger") == "mmap",
          f"mmap: last file.write {fw[-1:]} has the final content {h}")


def case_secrets():
    key = "sk-ant-api03-" + "Q" * 40 + "xyz"
    env = dict(os.environ, ANTHROPIC_API_KEY=key, MY_DB_PASSWORD="hunter2hunter2")
    r, s, _ = record("secrets", ["sh", "-c", f"echo curl -H 'x-api-key: {key}' > /dev/null"],
                     env=env)
    check(r.returncode == 0, "secrets: status 0")
    raw = subprocess.run([PTB, "query", s, "--format", "jsonl"], capture_output=True).stdout
    check(key.encode() not in raw and b"hunter2hunter2" not in raw, "secrets: not in clear")
    data = open(os.path.join(s, "data.mdb"), "rb").read()
    check(key.encode() not in data and b"hunter2hunter2" not in data,
          "secrets: not in the store file")
    h = hashlib.sha256(key.encode()).hexdigest()
    check(h.encode() in raw, "secrets: the key's fingerprint is there")


CASES = {n[5:]: f for n, f in dict(globals()).items() if n.startswith("case_")}


def bind(ptb, top):
    global PTB, TOP
    PTB, TOP = ptb, top


def main():
    if ptrace_forbidden():
        print("ptrace is not permitted here: skipped")
        return 77
    return run(sys.argv, CASES, "ptb-record-cases-", bind)


if __name__ == "__main__":
    sys.exit(main())
