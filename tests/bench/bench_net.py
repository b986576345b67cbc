#!/usr/bin/env python3
"""Network recording benchmark (docs/BENCHMARKS.md): capture side by side with tcpdump -w, and
decode throughput of stored packets side by side with tcpdump -r and tshark -r.

Capture (needs root and network namespaces): iperf3 server and client in one network namespace,
over its loopback, for --seconds at --rate (default 1 Gbit/s), once with TCP (64 KiB loopback
segments) and once with UDP datagrams of 1400 bytes (~90,000 packets/s at 1 Gbit/s). Variants,
each in a fresh namespace:
  native      iperf3 alone (unshare -n), no capture;
  tcpdump     tcpdump -i lo -w FILE -s 256 -B 32768 next to it (256 bytes kept per packet, the
              same 32 MiB ring as ptb);
  ptb-off     ptb record --net off (the tracer alone: the baseline for ptb's capture cost);
  ptb         ptb record (its own namespace, capture of "any", 256-byte snap length, flows and
              decoders).
Reported: packets captured, kernel drops, and CPU per packet: tcpdump's own process (from
/proc/PID/stat), and ptb's own process (its "recorder CPU": tracer, capture, decoders, store
writer) less the same with --net off. Wall and whole-tree CPU are shown too.

Decode: a pcap of --packets packets (default 1,000,000; a mix of TCP flows with HTTP heads and
bulk data, TLS ClientHellos, DNS over UDP) is written, imported with `ptb import --pcap`, and
then bench_net_decode reads the stored packets back (read, decode, flows); tcpdump -nn -r and
tshark -r print the same file to /dev/null for comparison.

usage: bench_net.py PTB BENCH_NET_DECODE [--seconds S] [--rate R] [--packets N] [--json FILE]
"""
import argparse
import json
import os
import random
import re
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time


def run_timed(cmd, **kw):
    """Run cmd; returns (wall s, cpu s of it and all its waited-for descendants, result)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    out, err = p.communicate()
    # the children's rusage after this child: RUSAGE_CHILDREN grows by its tree's CPU
    wall = time.monotonic() - t0
    return wall, out, err, p.returncode


def cpu_of(fn):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = fn()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), r


def iperf_script(proto, seconds, rate):
    udp = "-u -l 1400" if proto == "udp" else ""
    return (f"iperf3 -s -1 -p 5201 >/dev/null 2>&1 & s=$!; sleep 0.5; "
            f"iperf3 -c 127.0.0.1 -p 5201 {udp} -b {rate} -t {seconds} >/dev/null; "
            f"rc=$?; wait $s; exit $rc")


def capture_bench(ptb, top, seconds, rate):
    if os.geteuid() != 0 or not shutil.which("iperf3") or not shutil.which("tcpdump"):
        print("capture: needs root, iperf3 and tcpdump: skipped")
        return None
    res = {}
    for proto in ("tcp", "udp"):
        body = iperf_script(proto, seconds, rate)
        pcap = os.path.join(top, f"{proto}.pcap")
        variants = {
            "native": ["unshare", "-n", "sh", "-c", "ip link set lo up; " + body],
            "tcpdump": ["unshare", "-n", "sh", "-c",
                        f"ip link set lo up; tcpdump -i lo -w {pcap} -s 256 -B 32768 -U "
                        f"2>{top}/td.err & t=$!; sleep 1; ({body}); rc=$?; sleep 0.5; "
                        f"cat /proc/$t/stat >{top}/td.stat; kill -INT $t; wait $t; exit $rc"],
            "ptb-off": [ptb, "record", "--net", "off", "--store", os.path.join(top, "off.ptb"),
                        "--", "sh", "-c", "unshare -n sh -c 'ip link set lo up; " +
                        body.replace("'", "'\\''") + "'"],
            "ptb": [ptb, "record", "--store", os.path.join(top, "ns.ptb"), "--", "sh", "-c",
                    body],
        }
        row = {}
        for name, cmd in variants.items():
            for d in ("off.ptb", "ns.ptb"):
                shutil.rmtree(os.path.join(top, d), ignore_errors=True)
            cpu, (wall, out, err, rc) = cpu_of(lambda: run_timed(cmd))
            r = {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "rc": rc}
            if name == "tcpdump":
                st = open(f"{top}/td.stat").read().rsplit(")", 1)[1].split()
                hz = os.sysconf("SC_CLK_TCK")
                r["own_cpu_s"] = round((int(st[11]) + int(st[12])) / hz, 3)  # utime + stime
                e = open(f"{top}/td.err").read()
                m = re.search(r"(\d+) packets captured", e)
                d = re.search(r"(\d+) packets dropped by kernel", e)
                r["packets"] = int(m.group(1)) if m else None
                r["drops"] = int(d.group(1)) if d else None
            if name.startswith("ptb"):
                m = re.search(rb"recorder CPU ([0-9.]+) s", err)
                r["own_cpu_s"] = float(m.group(1)) if m else None
            if name == "ptb":
                m = re.search(rb"network: (\d+) packets.* (\d+) dropped by the kernel", err)
                r["packets"] = int(m.group(1)) if m else None
                r["drops"] = int(m.group(2)) if m else None
            if rc != 0:
                print(f"capture {proto} {name}: exit {rc}: {err.decode(errors='replace')[-400:]}")
            row[name] = r
        # CPU per packet: tcpdump's own process; ptb's own process (tracer, capture, decoders,
        # store writer) less the same without capture (--net off: the tracer alone)
        pk = row["tcpdump"].get("packets")
        if pk and row["tcpdump"].get("own_cpu_s") is not None:
            row["tcpdump"]["cpu_us_per_packet"] = round(row["tcpdump"]["own_cpu_s"] / pk * 1e6, 3)
        pk = row["ptb"].get("packets")
        if pk and row["ptb"].get("own_cpu_s") is not None and row["ptb-off"].get("own_cpu_s") is not None:
            row["ptb"]["cpu_us_per_packet"] = round(
                (row["ptb"]["own_cpu_s"] - row["ptb-off"]["own_cpu_s"]) / pk * 1e6, 3)
        res[proto] = row
        print(f"capture {proto} at {rate}bit/s for {seconds} s:")
        for name, r in row.items():
            extra = "".join(f"  {k} {r[k]}" for k in ("own_cpu_s", "packets", "drops",
                                                       "cpu_us_per_packet") if k in r)
            print(f"  {name:8} wall {r['wall_s']:7.2f} s  cpu {r['cpu_s']:7.2f} s{extra}")
    return res


# ---------------------------------------------------------------- decode

def write_pcap(path, n, seed=1):
    """A raw-IP (101) pcap of n packets: TCP flows (SYN, SYN-ACK, HTTP head or TLS hello,
    bulk data, FIN), DNS queries and answers over UDP."""
    rnd = random.Random(seed)

    def ip4(src, dst, proto, payload):
        return struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0x4000, 64, proto,
                           0, bytes(src), bytes(dst)) + payload

    def tcp(sp, dp, seq, flags, data=b""):
        return struct.pack(">HHIIBBHHH", sp, dp, seq, 0, 5 << 4, flags, 65535, 0, 0) + data

    def dns(qid, name, resp):
        q = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0\0\1\0\1"
        h = struct.pack(">HHHHHH", qid, 0x8180 if resp else 0x0100, 1, 1 if resp else 0, 0, 0)
        a = b"\xc0\x0c\0\1\0\1\0\0\0\x3c\0\4\xc0\0\2\x63" if resp else b""
        return h + q + a

    hello = bytes.fromhex("16030100") + b"\x00"  # patched below with a real-shaped hello
    sni = b"api.example.com"
    ext = b"\0\0" + struct.pack(">HHBH", len(sni) + 5, len(sni) + 3, 0, len(sni)) + sni
    hs = b"\3\3" + b"\x11" * 32 + b"\0" + b"\0\2\x13\1" + b"\1\0" + struct.pack(">H", len(ext)) + ext
    hsm = b"\1" + struct.pack(">I", len(hs))[1:] + hs
    hello = b"\x16\3\1" + struct.pack(">H", len(hsm)) + hsm
    http = b"GET /model.safetensors HTTP/1.1\r\nHost: hf.example\r\nUser-Agent: bench\r\n\r\n"
    bulk = bytes(1400)
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 101))
        t = 1_700_000_000.0
        written = 0
        port = 10000
        while written < n:
            t += 0.00001
            if rnd.random() < 0.1:
                c, s = [100, 64, 0, 2], [100, 64, 0, 1]
                for resp in (False, True):
                    p = ip4(s if resp else c, c if resp else s, 17,
                            struct.pack(">HHHH", 53 if resp else port, port if resp else 53, 0, 0)
                            + dns(port, f"h{port % 97}.example.org", resp))
                    f.write(struct.pack("<IIII", int(t), int(t % 1 * 1e6), len(p), len(p)) + p)
                    written += 1
                port = port % 50000 + 10001
                continue
            c, s = [100, 64, 0, 2], [192, 0, 2, rnd.randrange(1, 250)]
            sp, dp = port, 443 if rnd.random() < 0.5 else 80
            port = port % 50000 + 10001
            segs = [(0, (sp, dp, 999, 0x02, b"")), (1, (dp, sp, 4999, 0x12, b"")),
                    (0, (sp, dp, 1000, 0x10, hello if dp == 443 else http))]
            seq_s = 5000
            for _ in range(rnd.randrange(4, 30)):
                segs.append((1, (dp, sp, seq_s, 0x10, bulk)))
                seq_s += len(bulk)
            segs += [(0, (sp, dp, 1000 + len(hello if dp == 443 else http), 0x11, b"")),
                     (1, (dp, sp, seq_s, 0x11, b""))]
            for back, (a, b, seq, fl, d) in segs:
                p = ip4(s if back else c, c if back else s, 6, tcp(a, b, seq, fl, d))
                f.write(struct.pack("<IIII", int(t), int(t % 1 * 1e6), len(p), len(p)) + p)
                written += 1
                t += 0.000001
    return written


def decode_bench(ptb, bench_bin, top, packets):
    pcap = os.path.join(top, "mix.pcap")
    n = write_pcap(pcap, packets)
    store = os.path.join(top, "mix.ptb")
    shutil.rmtree(store, ignore_errors=True)
    t0 = time.monotonic()
    r = subprocess.run([ptb, "import", "--pcap", pcap, store], capture_output=True)
    imp = time.monotonic() - t0
    if r.returncode != 0:
        print("decode: import failed:", r.stderr.decode(errors="replace")[-400:])
        return None
    out = subprocess.run([bench_bin, store, "--json"], capture_output=True, check=True).stdout
    res = {"packets": n, "pcap_bytes": os.path.getsize(pcap), "ptb_import_s": round(imp, 3),
           "ptb": json.loads(out)}
    for tool, cmd in (("tcpdump", ["tcpdump", "-nn", "-r", pcap]),
                      ("tshark", ["tshark", "-n", "-r", pcap])):
        if not shutil.which(tool):
            continue
        best = None
        for _ in range(2 if tool == "tshark" else 3):
            t0 = time.monotonic()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            dt = time.monotonic() - t0
            best = dt if best is None or dt < best else best
        res[tool] = {"seconds": round(best, 3), "packets_per_s": round(n / best)}
    print(f"decode: {n} packets; ptb import --pcap {imp:.2f} s ({n / imp:,.0f} packets/s)")
    for k, v in res["ptb"].items():
        print(f"  ptb {k:7} {v['packets_per_s']:>12,.0f} packets/s ({v['seconds']} s)")
    for tool in ("tcpdump", "tshark"):
        if tool in res:
            print(f"  {tool:11} {res[tool]['packets_per_s']:>12,.0f} packets/s "
                  f"({res[tool]['seconds']} s, printing to /dev/null)")
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ptb")
    ap.add_argument("bench_net_decode")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rate", default="1G")
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--json")
    ap.add_argument("--only", choices=("capture", "decode"))
    a = ap.parse_args()
    top = tempfile.mkdtemp(prefix="ptb-bench-net-")
    try:
        res = {"host": os.uname().nodename, "cpus": os.cpu_count()}
        if a.only != "decode":
            res["capture"] = capture_bench(os.path.abspath(a.ptb), top, a.seconds, a.rate)
        if a.only != "capture":
            res["decode"] = decode_bench(os.path.abspath(a.ptb), os.path.abspath(a.bench_net_decode),
                                         top, a.packets)
        if a.json:
            with open(a.json, "w") as f:
                json.dump(res, f, indent=1)
    finally:
        shutil.rmtree(top, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
