#!/usr/bin/env python3
"""ptb record against strace: the cost of recording, as ratios to the native run.

For each workload, in one run of this program, side by side: native, `ptb record` (content
capture on: the workload's directory is the capture root), `strace -f` and
`strace -f --seccomp-bpf`, both with the syscall set ptb stops on and output to a file (so strace
does the work of recording, as ptb does). Each is run --runs times (default 5) after one warm-up
run; the table gives the median wall time and the ratio to native.

ptb runs three times: with content capture (the default), with --no-capture, to show what the
capture costs apart from the tracing, and with --no-capture --wait-spin 0 (the recorder sleeps
at once for each stop instead of polling while a CPU is spare), to show what the polling gives.

Workloads: a fork+exec storm (1000 x /bin/true from one shell), tar of /usr/include into the
work directory, dd bs=1 of 200 KB, and a make -j2 build of a generated C project (60 files).

usage: bench_record.py PTB [--runs N] [--only NAME] [--json FILE] [--strace CMD]
  --strace CMD   how to run strace (default "strace"; tests/gpu/run.sh passes its packed one)
"""
import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TRACE = ("execve,execveat,open,openat,openat2,creat,close,close_range,dup,dup2,dup3,fcntl,"
         "rename,renameat,renameat2,unlink,unlinkat,rmdir,mkdir,mkdirat,link,linkat,symlink,"
         "symlinkat,truncate,ftruncate,mmap,connect,accept,accept4,bind,sendto,io_uring_setup,"
         "io_uring_enter,io_uring_register,ptrace,process_vm_writev")


def setup_make(d):
    for i in range(60):
        with open(f"{d}/m{i}.c", "w") as f:
            f.write("#include <stdio.h>\n#include <string.h>\n#include <stdlib.h>\n")
            for k in range(20):
                f.write(f"int f{i}_{k}(const char *s) {{ char b[64]; snprintf(b, sizeof b, "
                        f"\"%s-{k}\", s); return (int)strlen(b) * {k + 1}; }}\n")
    with open(f"{d}/main.c", "w") as f:
        f.write("int main(void) { return 0; }\n")
    objs = " ".join(f"m{i}.o" for i in range(60))
    with open(f"{d}/Makefile", "w") as f:
        f.write(f"prog: main.o {objs}\n\tcc -o $@ $^\n%.o: %.c\n\tcc -O1 -c -o $@ $<\n"
                "clean:\n\trm -f *.o prog\n")


WORKLOADS = {
    "fork-exec": (None, ["sh", "-c", "i=0; while [ $i -lt 1000 ]; do /bin/true; i=$((i+1)); done"]),
    "tar": (None, ["tar", "cf", "include.tar", "/usr/include"]),
    "dd": (None, ["dd", "if=/dev/zero", "of=dd.out", "bs=1", "count=200000", "status=none"]),
    "make": (setup_make, ["make", "-s", "-j2"]),
}


def timed(cmd, cwd):
    t0 = time.monotonic()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ptb")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only")
    ap.add_argument("--json")
    ap.add_argument("--strace", default="strace")
    a = ap.parse_args()
    strace = shlex.split(a.strace)
    ptb = os.path.abspath(a.ptb)
    top = tempfile.mkdtemp(prefix="ptb-bench-record-")
    results = []
    try:
        names = [a.only] if a.only else list(WORKLOADS)
        print(f"{'workload':<10} {'native s':>9} {'ptb s':>9} {'nocap s':>9} {'nospin s':>9} "
              f"{'strace s':>9} "
              f"{'strace-bpf s':>12} {'ptb/nat':>8} {'nocap/nat':>9} {'strace/nat':>10} "
              f"{'bpf/nat':>8} {'bpf/ptb':>8} {'bpf/nocap':>9}")
        for name in names:
            setup, cmd = WORKLOADS[name]
            d = os.path.join(top, name)
            variants = {
                "native": lambda: cmd,
                # --net off: this compares process and file recording with strace; the network
                # capture has its own benchmark (bench_net.py)
                "ptb": lambda: [ptb, "record", "-q", "--net", "off", "--store",
                                os.path.join(top, "s.ptb"), "--capture-root", d, "--"] + cmd,
                "ptb-nocap": lambda: [ptb, "record", "-q", "--net", "off", "--store",
                                      os.path.join(top, "s.ptb"), "--no-capture", "--"] + cmd,
                "ptb-nospin": lambda: [ptb, "record", "-q", "--net", "off", "--store",
                                       os.path.join(top, "s.ptb"), "--no-capture",
                                       "--wait-spin", "0", "--"] + cmd,
                "strace": lambda: strace + ["-f", "-qq", "-o", os.path.join(top, "st.out"),
                                   "-e", "trace=" + TRACE] + cmd,
                "strace-bpf": lambda: strace + ["-f", "-qq", "--seccomp-bpf", "-o",
                                       os.path.join(top, "st.out"), "-e", "trace=" + TRACE] + cmd,
            }
            times = {}
            for v, mk in variants.items():
                ts = []
                for r in range(a.runs + 1):
                    shutil.rmtree(d, ignore_errors=True)
                    shutil.rmtree(os.path.join(top, "s.ptb"), ignore_errors=True)
                    os.makedirs(d)
                    if setup:
                        setup(d)
                    t = timed(mk(), d)
                    if r:  # the first run warms the caches
                        ts.append(t)
                times[v] = statistics.median(ts)
            n = times["native"]
            row = {"workload": name, **{k + "_s": v for k, v in times.items()},
                   "ptb_ratio": times["ptb"] / n, "ptb_nocap_ratio": times["ptb-nocap"] / n,
                   "ptb_nospin_ratio": times["ptb-nospin"] / n,
                   "strace_ratio": times["strace"] / n,
                   "strace_bpf_ratio": times["strace-bpf"] / n}
            results.append(row)
            print(f"{name:<10} {n:9.3f} {times['ptb']:9.3f} {times['ptb-nocap']:9.3f} "
                  f"{times['ptb-nospin']:9.3f} "
                  f"{times['strace']:9.3f} {times['strace-bpf']:12.3f} {row['ptb_ratio']:8.2f} "
                  f"{row['ptb_nocap_ratio']:9.2f} {row['strace_ratio']:10.2f} "
                  f"{row['strace_bpf_ratio']:8.2f} {times['strace-bpf'] / times['ptb']:8.2f} "
                  f"{times['strace-bpf'] / times['ptb-nocap']:9.2f}", flush=True)
    finally:
        shutil.rmtree(top, ignore_errors=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"runs": a.runs, "load_at_start": os.getloadavg()[0], "results": results},
                      f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
