#!/usr/bin/env python3
"""ptb import --pcap and ptb export --pcap on real captures (issue 4).

usage: test_pcap_import.py PTB [CASE...]

Cases (default: all but dns, which is its own ctest):
  roundtrip  every capture in tcpdump-pcaps/ (pcap and pcapng; many crafted to crash parsers):
             import, export, and the exported file holds the same packets as the input, record by
             record (time to the nanosecond, caplen, len, bytes), read by the small pcap/pcapng
             reader below (independent of libpcap, which both ptb commands use); wiretap
             (capinfos) reads every export, tshark one of each common link type. Two exceptions,
             each checked as what it is: a packet stamped exactly 1970-01-01T00:00:00 comes
             back with the time of its import (the store reads ts_ns 0 as "not set"), and a
             pcapng time after 2106 makes export refuse (a pcap cannot hold it)
  damaged    captures cut off mid-record, in a record header, mid-block (pcapng), with a
             garbled length; not a capture at all; a pcapng with interfaces of two link types:
             the packets before the fault are kept, a gap event records the fault, exit 4, and
             the store verifies
  linktypes  two captures of different link types in one store (--append): export refuses
             without --iface and lists them, --iface N exports one
  export     empty stores, --from/--to, standard output, a time a pcap cannot hold, usage errors
  dns        the DNS query names ptb extracts equal tshark's, capture by capture (see case_dns)

Every ptb run is checked for sanitizer reports and signals, so this test run with the ASan+UBSan
build's ptb (scripts/test.sh runs every ctest in both builds) is the sanitizer test of the
importer over every capture. Exit 77 when the captures (or, for dns, tshark) are missing.
"""
import concurrent.futures
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

import ptbcases
from ptbcases import check

PTB = None
TOP = None
DATA = None
NS = 10**9
PCAP_MAX_NS = (2**32) * NS  # classic pcap: 32-bit unsigned seconds
JOBS = max(2, min(8, 2 * (os.cpu_count() or 1)))  # ptb waits on its writer thread: oversubscribe


def ptb(*args, input=None, timeout=300):
    """Run ptb; a sanitizer report or a signal is a failure whatever the case expects."""
    r = subprocess.run([PTB, *args], capture_output=True, timeout=timeout, input=input)
    err = r.stderr.decode(errors="replace")
    if "Sanitizer" in err or "runtime error:" in err or r.returncode < 0:
        check(False, f"ptb {' '.join(args)}: status {r.returncode}, sanitizer or signal:\n"
              + err[-3000:])
    return r


def events(store, flt):
    r = ptb("query", "--format", "jsonl", store, flt)
    check(r.returncode == 0, f"query {store} {flt}: status {r.returncode} {r.stderr[-300:]!r}")
    return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]


def verify(store, what):
    r = ptb("verify", store)
    check(r.returncode == 0, f"{what}: ptb verify {store}: status {r.returncode}: "
          f"{(r.stdout + r.stderr)[-400:]!r}")


# ---------------------------------------------------------------- a pcap / pcapng reader

# The packets of a capture as libpcap delivers them, which is what ptb import stores:
# - a record longer than the file's snap length (pcap header, pcapng interface) is cut to it
#   (libpcap's snap length: the header's, or 262144 when that is 0 or larger); several crafted
#   captures have such records, and tcpdump shows them cut too;
# - pcap record seconds and fractions are unsigned 32-bit (the format), up to 2106; libpcap 1.10
#   reads them signed and ptb import undoes that (import_pcap_time);
# - pcapng: 64-bit times in if_tsresol units, plus if_tsoffset seconds.
# Checked against `tcpdump -r F -w -` on the whole corpus when this was written.
SNAP_MAX = 262144


def snap_of(snaplen):
    return snaplen if 0 < snaplen <= SNAP_MAX else SNAP_MAX


def read_capture(path):
    """(linktypes, packets, error) of a pcap or pcapng file; packets are tuples
    (ts_ns, caplen, len, bytes)."""
    with open(path, "rb") as f:
        buf = f.read()
    if buf[:4] == b"\x0a\x0d\x0d\x0a":
        return read_pcapng(buf)
    return read_pcap(buf)


def read_pcap(buf):
    if len(buf) < 24:
        return [], [], "short file header"
    end = None
    for e in "<>":
        m = struct.unpack(e + "I", buf[:4])[0]
        if m in (0xA1B2C3D4, 0xA1B23C4D, 0xA1B2CD34):
            end, mul, rl = e, 1 if m == 0xA1B23C4D else 1000, 24 if m == 0xA1B2CD34 else 16
    if end is None:
        return [], [], "bad magic"
    snap = snap_of(struct.unpack(end + "I", buf[16:20])[0])
    lt = struct.unpack(end + "I", buf[20:24])[0] & 0x03FFFFFF  # upper bits: FCS length
    pk, off = [], 24
    while off < len(buf):
        if off + rl > len(buf):
            return [lt], pk, "truncated record header"
        s, fr, cl, ol = struct.unpack(end + "IIII", buf[off:off + 16])
        off += rl
        if off + cl > len(buf):
            return [lt], pk, "truncated record"
        kept = min(cl, snap)
        pk.append((s * NS + fr * mul, kept, ol, buf[off:off + kept]))
        off += cl
    return [lt], pk, None


def read_pcapng(buf):
    pk, lts, ifs, off, e = [], [], [], 0, "<"
    while off < len(buf):
        if off + 12 > len(buf):
            return lts, pk, "truncated block header"
        if buf[off:off + 4] == b"\x0a\x0d\x0d\x0a":  # section header: byte order, new ifaces
            bom = buf[off + 8:off + 12]
            e = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">" if bom == b"\x1a\x2b\x3c\x4d" else None
            if e is None:
                return lts, pk, "bad byte-order magic"
            ifs = []
        bt, bl = struct.unpack(e + "II", buf[off:off + 8])
        if bl < 12 or bl % 4 or off + bl > len(buf):
            return lts, pk, "bad block length"
        body = buf[off + 8:off + bl - 4]
        if bt == 1:  # interface description
            lt, _, snap = struct.unpack(e + "HHI", body[:8])
            res, tsoff, o = 10**6, 0, 8
            while o + 4 <= len(body):
                code, ln = struct.unpack(e + "HH", body[o:o + 4])
                v = body[o + 4:o + 4 + ln]
                if code == 0:
                    break
                if code == 9 and ln >= 1:  # if_tsresol
                    res = 2 ** (v[0] & 0x7F) if v[0] & 0x80 else 10 ** v[0]
                if code == 14 and ln == 8:  # if_tsoffset
                    tsoff = struct.unpack(e + "q", v)[0]
                o += 4 + ((ln + 3) & ~3)
            ifs.append((snap_of(snap), res, tsoff))
            lts.append(lt)
        elif bt in (2, 6):  # obsolete packet, enhanced packet
            if bt == 6:
                iid, th, tl, cl, ol = struct.unpack(e + "IIIII", body[:20])
            else:
                iid, _, th, tl, cl, ol = struct.unpack(e + "HHIIII", body[:20])
            if iid >= len(ifs):
                return lts, pk, "packet of an unknown interface"
            snap, res, tsoff = ifs[iid]
            t = (th << 32) | tl
            kept = min(cl, snap)
            pk.append(((t // res + tsoff) * NS + (t % res) * NS // res, kept, ol,
                       body[20:20 + kept]))
        elif bt == 3:  # simple packet: no time
            snap = ifs[0][0]
            ol = struct.unpack(e + "I", body[:4])[0]
            cl = min(ol, snap)
            pk.append((0, cl, ol, body[4:4 + cl]))
        off += bl
    return lts, pk, None


def same_packets(what, got, want):
    """Record-by-record comparison; reports the first difference."""
    if not check(len(got) == len(want), f"{what}: {len(got)} packets, wanted {len(want)}"):
        return False
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            return check(False, f"{what}: packet {i + 1}: (ts_ns, caplen, len) {g[:3]}, wanted "
                         f"{w[:3]}{'' if g[3] == w[3] else '; bytes differ'}")
    return True


# ---------------------------------------------------------------- helpers

def captures():
    d = os.path.join(DATA, "tcpdump-pcaps")
    return sorted(os.path.join(d, n) for n in os.listdir(d) if n.endswith((".pcap", ".pcapng")))


def import_pcap(path, store, *opts):
    shutil.rmtree(store, ignore_errors=True)
    return ptb("import", *opts, "--pcap", path, store)


def export(store, out, *opts):
    return ptb("export", "--pcap", out, *opts, store)


def pmap(fn, items):
    with concurrent.futures.ThreadPoolExecutor(JOBS) as ex:
        return list(ex.map(fn, items))


def write_pcap(path, linktype, packets, nano=True):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B23C4D if nano else 0xA1B2C3D4, 2, 4, 0, 0, 262144,
                            linktype))
        for ts, cl, ol, data in packets:
            f.write(struct.pack("<IIII", ts // NS, ts % NS if nano else ts % NS // 1000, cl, ol))
            f.write(data)


def pcapng_block(bt, body):
    body += b"\0" * (-len(body) % 4)
    return struct.pack("<II", bt, len(body) + 12) + body + struct.pack("<I", len(body) + 12)


def pcapng_file(path, interfaces, packets):
    """interfaces: link types; packets: (iface, ts_ns, bytes). if_tsresol 9 (ns)."""
    out = pcapng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    blocks = [pcapng_block(1, struct.pack("<HHI", lt, 0, 262144)
                           + struct.pack("<HHB3x", 9, 1, 9) + struct.pack("<HH", 0, 0))
              for lt in interfaces]
    for iface, ts, data in packets:
        blocks.append(pcapng_block(6, struct.pack("<IIIII", iface, ts >> 32, ts & 0xFFFFFFFF,
                                                  len(data), len(data)) + data))
    with open(path, "wb") as f:
        f.write(out + b"".join(blocks))


# ---------------------------------------------------------------- cases

def roundtrip_one(path):
    """Returns (name, linktype of the export or None, export path or None)."""
    name = os.path.basename(path)
    store = os.path.join(TOP, "rt", name + ".ptb")
    out = os.path.join(TOP, "rt", name + ".out.pcap")
    lts, want, err = read_capture(path)
    t0 = time.time_ns()
    r = import_pcap(path, store)
    t1 = time.time_ns()
    if err:  # not seen in the corpus as shipped: damaged files are case_damaged's
        check(r.returncode == 4, f"{name}: reader says '{err}', import status {r.returncode}")
        return name, None, None
    if not check(r.returncode == 0, f"{name}: import status {r.returncode}: {r.stderr[-300:]!r}"):
        return name, None, None
    if not dns_candidate(lts, want):  # case_dns compares the names of the others with tshark's
        dns = [w for w in r.stderr.decode(errors="replace").split(", ") if w.endswith(" dns")]
        check(dns == ["0 dns"], f"{name}: no DNS port in the capture or a link type ptb does not "
              f"decode, yet the import says {dns}")
    # libpcap reads a pcapng as one link type (case_damaged tests the refusal); none here has two
    check(len(set(lts)) == 1, f"{name}: link types {lts}")
    r = export(store, out)
    if any(p[0] < 0 or p[0] >= PCAP_MAX_NS for p in want):
        # a pcapng can hold a time after 2106-02-07 (time_2106_overflow, time_2107); a pcap
        # cannot, and export says so instead of writing a wrong time
        check(r.returncode == 2 and b"cannot hold" in r.stderr,
              f"{name}: export of a time past 2106: status {r.returncode} {r.stderr[-300:]!r}")
        return name, None, None
    if not check(r.returncode == 0, f"{name}: export status {r.returncode}: {r.stderr[-300:]!r}"):
        return name, None, None
    glts, got, gerr = read_capture(out)
    check(gerr is None, f"{name}: the export does not read: {gerr}")
    with open(out, "rb") as f:
        magic = struct.unpack("<I", f.read(4))[0]
    check(magic == 0xA1B23C4D, f"{name}: export magic {magic:#x}, wanted nanosecond pcap")
    if want:
        check(glts == lts[:1], f"{name}: export link type {glts}, wanted {lts[:1]}")
    else:
        check(glts == [101] and b"no net.packet" in r.stderr,
              f"{name}: empty capture: link type {glts}, {r.stderr[-200:]!r}")
    # The store reads ts_ns 0 as "not set" and puts the time of the append (store.h,
    # store_append), so a packet stamped exactly 1970-01-01T00:00:00 (crafted captures have them)
    # comes back with the time of its import: expected so, and checked as that.
    want = [(g[0],) + w[1:] if w[0] == 0 and t0 <= g[0] <= t1 else w
            for w, g in zip(want, got)] + want[len(got):]
    same_packets(name, got, want)
    return name, glts[0] if glts else None, out


def case_roundtrip():
    os.makedirs(os.path.join(TOP, "rt"), exist_ok=True)
    files = captures()
    t0 = time.monotonic()
    res = pmap(roundtrip_one, files)
    print(f"# {len(files)} captures imported and exported in {time.monotonic() - t0:.1f}s",
          flush=True)
    check(len(files) > 600, f"only {len(files)} captures")
    done = [(name, lt, out) for name, lt, out in res if out]
    if shutil.which("capinfos"):
        # wiretap, tshark's file reader, reads every export (one capinfos run for all): as many
        # packets as the input, and refused only where the input's link type is one that
        # wiretap does not support
        def counts(paths):
            r = subprocess.run(["capinfos", "-c", "-M", "-T", *paths], capture_output=True)
            got = dict(l.rsplit("\t", 1) for l in r.stdout.decode().splitlines()[1:] if "\t" in l)
            return got, r.stderr.decode(errors="replace")
        src = os.path.join(DATA, "tcpdump-pcaps")
        cin, ein = counts([os.path.join(src, n) for n, _, _ in done])
        cout, eout = counts([out for _, _, out in done])
        for name, lt, out in done:
            want = cin.get(os.path.join(src, name))
            if want is None:
                check(out not in cout and "unknown or unsupported" in ein,
                      f"{name}: wiretap refuses the input but reads the export")
            else:
                check(cout.get(out) == want, f"{name}: capinfos reads {cout.get(out)} packets of "
                      f"the export, {want} of the input")
        print(f"# capinfos read {len(cout)} exports ({len(done) - len(cout)} of link types "
              "wiretap does not support, like their inputs)")
    if not shutil.which("tshark"):
        print("# tshark not installed: the exports are not opened with tshark")
        return
    # tshark -r on one export of each common link type (each tshark run costs ~0.5 s)
    first = {}
    for name, lt, out in done:
        if lt in (0, 1, 101, 108, 113, 127, 228, 229, 276) and lt not in first:
            first[lt] = (name, out)

    def tshark(item):
        name, out = item
        r = subprocess.run(["tshark", "-n", "-r", out, "-T", "fields", "-e", "frame.number"],
                           capture_output=True)
        want = len(read_capture(out)[1])
        lines = len(r.stdout.splitlines())
        err = r.stderr.decode(errors="replace")
        err = "\n".join(l for l in err.splitlines() if "Running as user" not in l)
        check(r.returncode == 0 and lines == want and "error" not in err.lower(),
              f"{name}: tshark -r on the export: status {r.returncode}, {lines}/{want} packets, "
              f"{err[-300:]!r}")

    pmap(tshark, sorted(first.values()))
    print(f"# tshark opened {len(first)} exports (link types {sorted(first)})")


def pick_capture(ng, at_least=4):
    """A capture of the corpus with at least this many packets (the first by name), and its
    packets."""
    for path in captures():
        if path.endswith(".pcapng") != ng:
            continue
        lts, pk, err = read_capture(path)
        if not err and len(pk) >= at_least and all(0 < p[0] < PCAP_MAX_NS for p in pk):
            return path, lts, pk
    raise RuntimeError("no capture to cut")


def damaged_one(what, src, cut, keep, want, err_text=None):
    """src bytes with cut applied must import the first `keep` packets of want, then fail."""
    d = os.path.join(TOP, "damaged")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, what.replace(" ", "_") + (".pcapng" if src[:4] == b"\x0a\x0d\x0d\x0a"
                                                     else ".pcap"))
    with open(path, "wb") as f:
        f.write(cut)
    store = path + ".ptb"
    r = import_pcap(path, store)
    err = r.stderr.decode(errors="replace")
    check(r.returncode == 4, f"damaged {what}: import status {r.returncode}, wanted 4: {err!r}")
    check(os.path.basename(path) in err and "damaged" in err,
          f"damaged {what}: the message names the file: {err!r}")
    if err_text:
        check(err_text in err, f"damaged {what}: libpcap's '{err_text}' not in {err!r}")
    verify(store, f"damaged {what}")
    gaps = events(store, "evt.type = gap")
    check(len(gaps) == 1 and gaps[0].get("origin") == "import"
          and gaps[0].get("reason") == "pcap_error"
          and gaps[0].get("detail", "").startswith(f"after packet {keep}:")
          and gaps[0].get("path") == path,
          f"damaged {what}: one gap event (import, pcap_error, after packet {keep}): {gaps}")
    out = store + ".out.pcap"
    r = export(store, out)
    if check(r.returncode == 0, f"damaged {what}: export status {r.returncode} {r.stderr!r}"):
        same_packets(f"damaged {what}", read_capture(out)[1], want[:keep])


def case_damaged():
    path, lts, pk = pick_capture(False)
    src = open(path, "rb").read()
    n = len(pk)
    last = len(src) - 16 - pk[-1][1]  # offset of the last record header
    print(f"# cutting {os.path.basename(path)} ({n} packets)")
    damaged_one("cut mid-record", src, src[:-max(1, pk[-1][1] // 2)], n - 1, pk,
                "truncated dump file")
    damaged_one("cut in a record header", src, src[:last + 8], n - 1, pk, "truncated dump file")
    # the third record's caplen made huge: libpcap refuses it (bigger than any snaplen)
    third = 24 + sum(16 + p[1] for p in pk[:2])
    end = "<" if struct.unpack("<I", src[:4])[0] in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    bad = src[:third + 8] + struct.pack(end + "I", 0x7FFFFFF0) + src[third + 12:]
    damaged_one("garbled caplen", src, bad, 2, pk, "invalid packet capture length")

    ngpath, nglts, ngpk = pick_capture(True, 2)
    ng = open(ngpath, "rb").read()
    print(f"# cutting {os.path.basename(ngpath)} ({len(ngpk)} packets)")
    # cut 8 bytes before the end: inside the last block (the last packet, or a block after it)
    lts2, pk2, _ = read_capture_bytes(ng[:-8])
    damaged_one("pcapng cut mid-block", ng, ng[:-8], len(pk2), ngpk)

    # two interfaces of different link types: libpcap (1.10) reads a pcapng as one link type and
    # stops at the description of the second one ("an interface has a type ... different from
    # the type of the first interface"). Expected: the packets before that block, the fault on
    # record, exit 4; export such a capture per interface first (tshark -r F -Y
    # frame.interface_id==N -w ...). One link type on two interfaces imports whole (iface 0).
    eth = bytes.fromhex("ffffffffffff0000000000010800") + bytes(20)
    raw = bytes.fromhex("4500001400000000400000007f0000017f000001")
    t = 1_700_000_000 * NS + 123456789
    pk3 = [(t, len(eth), len(eth), eth), (t + 1, len(eth), len(eth), eth)]
    two = os.path.join(TOP, "two-link-types.pcapng")
    pcapng_file(two, [1], [(0, t, eth), (0, t + 1, eth)])
    extra = open(two, "rb").read() + pcapng_block(1, struct.pack("<HHI", 101, 0, 262144)) + \
        pcapng_block(6, struct.pack("<IIIII", 1, (t + 2) >> 32, (t + 2) & 0xFFFFFFFF, len(raw),
                                    len(raw)) + raw)
    damaged_one("pcapng of two link types", extra, extra, 2, pk3, "different from the type")
    same = os.path.join(TOP, "one-link-type-two-ifaces.pcapng")
    pcapng_file(same, [1, 1], [(0, t, eth), (1, t + 1, eth)])
    store = same + ".ptb"
    r = import_pcap(same, store)
    check(r.returncode == 0, f"pcapng, two ifaces of one link type: import {r.returncode} "
          f"{r.stderr!r}")
    r = export(store, store + ".out")
    if check(r.returncode == 0, f"pcapng, two ifaces: export {r.returncode} {r.stderr!r}"):
        same_packets("pcapng, two ifaces of one link type", read_capture(store + ".out")[1], pk3)

    # not a capture, an empty file, no file: refused before a store is made
    for what, data, code in (("not a capture", b"hello, world\n" * 4, 4), ("empty file", b"", 4),
                             ("no such file", None, 5)):
        p = os.path.join(TOP, what.replace(" ", "_"))
        if data is not None:
            with open(p, "wb") as f:
                f.write(data)
        r = import_pcap(p, p + ".ptb")
        check(r.returncode == code and not os.path.exists(p + ".ptb") and p.encode() in r.stderr,
              f"{what}: import status {r.returncode} (wanted {code}), store made "
              f"{os.path.exists(p + '.ptb')}: {r.stderr!r}")


def read_capture_bytes(data):
    p = os.path.join(TOP, "tmp-read")
    with open(p, "wb") as f:
        f.write(data)
    return read_capture(p)


def case_linktypes():
    eth_path, _, eth_pk = pick_capture(False)
    t = 1_600_000_000 * NS + 5
    raw = bytes.fromhex("4500001c0001000040110000c0000201c000020204d2003500080000")
    raw_pk = [(t + i * 1000, len(raw), len(raw), raw) for i in range(3)]
    raw_path = os.path.join(TOP, "raw.pcap")
    write_pcap(raw_path, 101, raw_pk)
    store = os.path.join(TOP, "two.ptb")
    r = import_pcap(eth_path, store)
    check(r.returncode == 0, f"linktypes: import 1: {r.returncode} {r.stderr!r}")
    r = ptb("import", "--append", "--pcap", raw_path, store)
    check(r.returncode == 0 and b"iface 1" in r.stderr,
          f"linktypes: import --append: {r.returncode} {r.stderr!r}")
    r = ptb("import", "--pcap", raw_path, store)
    check(r.returncode == 5 and b"already exists" in r.stderr,
          f"linktypes: import into an existing store without --append: {r.returncode}")
    if shutil.which("mdb_dump"):
        meta = subprocess.run(["mdb_dump", "-p", "-s", "meta", store], capture_output=True).stdout
        for want in (b"net.iface.0", b"import:" + os.path.basename(eth_path).encode(),
                     b"net.iface.1", b"import:raw.pcap", b"import.pcap"):
            check(want in meta, f"linktypes: meta has {want!r}")
    out = os.path.join(TOP, "two.pcap")
    r = export(store, out)
    err = r.stderr.decode(errors="replace")
    check(r.returncode == 2 and not os.path.exists(out) and "--iface" in err
          and f"iface 0: link type EN10MB (1): {len(eth_pk)} packet" in err
          and "iface 1: link type RAW (12): 3 packets" in err,
          f"linktypes: export of two link types: status {r.returncode}, message {err!r}")
    r = export(store, out, "--iface", "1")
    if check(r.returncode == 0, f"linktypes: --iface 1: {r.returncode} {r.stderr!r}"):
        lts, got, _ = read_capture(out)
        check(lts == [101], f"linktypes: --iface 1 link type {lts}")
        same_packets("linktypes --iface 1", got, raw_pk)
    r = export(store, out, "--iface", "0")
    if check(r.returncode == 0, f"linktypes: --iface 0: {r.returncode} {r.stderr!r}"):
        same_packets("linktypes --iface 0", read_capture(out)[1], eth_pk)
    r = export(store, out, "--iface", "7")
    check(r.returncode == 0 and b"no net.packet events on iface 7" in r.stderr
          and read_capture(out)[:2] == ([101], []),
          f"linktypes: --iface 7: {r.returncode} {r.stderr!r}")


def case_export():
    path, lts, pk = pick_capture(False, 5)
    store = os.path.join(TOP, "exp.ptb")
    check(import_pcap(path, store).returncode == 0, "export: import")
    seqs = [e["seq"] for e in events(store, "evt.type = net.packet")]
    check(len(seqs) == len(pk), f"export: {len(seqs)} net.packet events, wanted {len(pk)}")
    out = os.path.join(TOP, "exp.pcap")
    r = export(store, out, "--from", str(seqs[1]), "--to", str(seqs[-2]))
    if check(r.returncode == 0, f"export --from/--to: {r.returncode} {r.stderr!r}"):
        same_packets("export --from/--to", read_capture(out)[1], pk[1:-1])
    r = export(store, out, "--from", str(seqs[-1] + 1))
    check(r.returncode == 0 and read_capture(out)[:2] == ([101], []),
          f"export --from past the end: {r.returncode} {r.stderr!r}")
    # standard output: the same bytes as a file
    export(store, out)
    r = export(store, "-")
    check(r.returncode == 0 and r.stdout == open(out, "rb").read(),
          f"export to stdout: {r.returncode}, {len(r.stdout)} bytes")
    # an existing output is replaced
    r = export(store, out, "--to", str(seqs[0]))
    check(r.returncode == 0 and len(read_capture(out)[1]) == 1, "export over an existing file")

    # from a pipe, where the magic number cannot be read ahead: the same packets, also where
    # libpcap reads a fraction of 2^31 or more as negative (ptb import undoes that)
    for n in ("timestamp_invalid_micro.pcap", "timestamp_invalid_nano.pcap", path):
        src = os.path.join(DATA, "tcpdump-pcaps", n)
        if not os.path.exists(src):
            continue
        pst = os.path.join(TOP, "pipe-" + os.path.basename(n) + ".ptb")
        with open(src, "rb") as f:
            r = ptb("import", "--pcap", "-", pst, input=f.read())
        check(r.returncode == 0 and b"iface 0" in r.stderr, f"import from a pipe: {n}: "
              f"{r.returncode} {r.stderr!r}")
        r = export(pst, out)
        if check(r.returncode == 0, f"export after a pipe: {n}: {r.returncode} {r.stderr!r}"):
            same_packets(f"import from a pipe: {os.path.basename(n)}", read_capture(out)[1],
                         read_capture(src)[1])

    # a store without packets: an empty pcap of link type RAW
    jl = os.path.join(TOP, "nopk.jsonl")
    with open(jl, "w") as f:
        f.write(json.dumps({"ts_ns": 1, "type": "run.start"}) + "\n")
    nopk = os.path.join(TOP, "nopk.ptb")
    check(ptb("import", "--jsonl", jl, nopk).returncode == 0, "export: JSONL import")
    r = export(nopk, out)
    check(r.returncode == 0 and b"no net.packet events" in r.stderr
          and read_capture(out)[:2] == ([101], []) and os.path.getsize(out) == 24,
          f"export of a store without packets: {r.returncode} {r.stderr!r}")

    # a time a pcap cannot hold (after 2106-02-07): refused, nothing written
    far = os.path.join(TOP, "far.jsonl")
    with open(far, "w") as f:
        for ts in (NS, PCAP_MAX_NS):
            f.write(json.dumps({"ts_ns": ts, "type": "net.packet", "linktype": 1, "caplen": 1,
                                "origlen": 1, "data": "AA=="}) + "\n")
    farstore = os.path.join(TOP, "far.ptb")
    check(ptb("import", "--jsonl", far, farstore).returncode == 0, "export: JSONL import (far)")
    os.unlink(out)
    r = export(farstore, out)
    check(r.returncode == 2 and b"cannot hold" in r.stderr and b"seq 2" in r.stderr
          and not os.path.exists(out), f"export of a time past 2106: {r.returncode} {r.stderr!r}")
    r = export(farstore, out, "--to", "1")
    check(r.returncode == 0 and len(read_capture(out)[1]) == 1, "export --to before that time")

    # usage and missing stores
    for args, code in ((["export", store], 2), (["export", "--pcap", out], 2),
                       (["export", "--pcap", out, "--from", "5", "--to", "3", store], 2),
                       (["export", "--pcap", out, "--iface", "x", store], 2),
                       (["export", "--pcap", out, os.path.join(TOP, "nothing.ptb")], 3),
                       (["import", "--pcap", path, "--skip-bad", os.path.join(TOP, "n.ptb")], 2),
                       (["import", "--pcap", path, "--jsonl", jl, os.path.join(TOP, "n.ptb")], 2)):
        r = ptb(*args)
        check(r.returncode == code, f"ptb {' '.join(args)}: status {r.returncode}, wanted {code}")


# ---------------------------------------------------------------- DNS against tshark

# What the comparison covers, and why it is restricted where it is:
# - ptb reads DNS in UDP datagrams to or from port 53 or 5353 and in TCP port 53 (net_flow.h),
#   carried directly by the packet's one IP header. tshark decodes more: DNS on other ports
#   (dns_udp_8053.pcap, LLMNR at 5355, "Decode As" defaults), DNS quoted inside ICMP errors, and
#   DNS inside tunnels (GRE, IP-in-IP, 6in4, VXLAN), which ptb does not look into. tshark's names
#   are therefore taken only from frames whose protocol stack is one IP layer (IPv6 extension
#   headers allowed), then UDP or TCP at those ports, then DNS/mDNS (ptb_reads below).
# - tshark shows a query name even from a message whose rest is malformed; ptb's decoder may
#   refuse the whole message. So: every name tshark reads from a sound frame (no malformed mark,
#   no expert error) must be among ptb's (strict), and every name of ptb's must be among tshark's
#   from any frame ptb reads (loose). When tshark finds nothing malformed the two are equal.
# - ptb decodes the link types of net_decode.h (Ethernet, BSD null/loop, raw IP, Linux SLL and
#   SLL2); a capture of another link type (PKTAP, NFLOG, 802.11 ...) is stored as packets only,
#   so it must give ptb no names, whatever tshark finds in it.
# - tshark writes the root name as "<Root>", ptb as "." (both compared as "").
# - A capture is a candidate when some packet holds the bytes of port 53 or 5353 anywhere: a DNS
#   message at those ports cannot be in a packet without them, so tshark runs on the candidates
#   only, and every other capture must give ptb no names at all (checked in case_roundtrip, from
#   the import's summary, since that case imports every capture anyway).
PI_ERROR = 0x00800000  # tshark's expert severity "error"
PTB_LINKTYPES = {0, 1, 101, 108, 113, 228, 229, 276}  # LINKTYPE_ values net_decode reads


def ptb_reads(layers, udp, tcp):
    ips = [i for i, l in enumerate(layers) if l in ("ip", "ipv6")]
    if len(ips) != 1:
        return False
    rest = [l for l in layers[ips[0] + 1:] if not l.startswith("ipv6.")]
    if rest in (["udp", "dns"], ["udp", "mdns"]):
        return bool({53, 5353} & udp)
    return rest == ["tcp", "dns"] and 53 in tcp


TSHARK_FIELDS = ["frame.interface_id", "dns.qry.name", "frame.protocols", "udp.port", "tcp.port",
                 "_ws.expert.severity", "_ws.malformed"]
# frames whose decoding depends on other frames of their capture (TCP reassembly at port 53, IP
# defragmentation): a capture with any is read by tshark on its own, never merged with others
STATEFUL = "tcp.port == 53 || ip.flags.mf == 1 || ip.frag_offset > 0 || ipv6.fraghdr"


def tshark_frames(path, flt=None):
    args = ["tshark", "-n", "-r", path, "-T", "json"] + (["-Y", flt] if flt else [])
    r = subprocess.run(args + [x for f in TSHARK_FIELDS for x in ("-e", f)], capture_output=True)
    try:
        return [fr.get("_source", {}).get("layers", {}) for fr in json.loads(r.stdout or b"[]")]
    except ValueError:
        check(False, f"{path}: tshark json: {r.stdout[:200]!r} {r.stderr[-200:]!r}")
        return []


def names_of(frames):
    """(strict, loose) sets of query names, as described above."""
    strict, loose = set(), set()
    for f in frames:
        layers = f.get("frame.protocols", [""])[0].split(":")
        udp = {int(p) for p in f.get("udp.port", [])}
        tcp = {int(p) for p in f.get("tcp.port", [])}
        if "dns.qry.name" not in f or not ptb_reads(layers, udp, tcp):
            continue
        names = {norm(n) for n in f["dns.qry.name"]}
        loose |= names
        sev = max([int(x) for x in f.get("_ws.expert.severity", [])] or [0])
        if "_ws.malformed" not in f and sev < PI_ERROR:
            strict |= names
    return strict, loose


def tshark_names(cands):
    """{path: (strict, loose)}. tshark costs ~0.5 s a run to start, so the captures are merged
    into one file (mergecap -a -I none: each capture keeps its own interfaces, which say where
    a frame came from), except those with frames of STATEFUL, which are read one by one."""
    if not shutil.which("mergecap"):
        return dict(zip(cands, pmap(lambda p: names_of(tshark_frames(p)), cands)))
    merged = os.path.join(TOP, "dns-candidates.pcapng")
    r = subprocess.run(["mergecap", "-a", "-I", "none", "-w", merged, *cands],
                       capture_output=True)
    check(r.returncode == 0, f"mergecap: {r.stderr[-300:]!r}")
    owner, want = [], {}
    for p in cands:
        lts, pk, _ = read_capture(p)
        owner += [p] * (len(lts) if p.endswith(".pcapng") else 1)
        want[p] = len(pk)
    frames = tshark_frames(merged)
    by = {p: [] for p in cands}
    for f in frames:
        by[owner[int(f["frame.interface_id"][0])]].append(f)
    for p in cands:  # the interfaces map back to the captures: same packet counts
        check(len(by[p]) == want[p], f"dns: merged capture: {len(by[p])} frames of "
              f"{os.path.basename(p)}, wanted {want[p]}")
    alone = {owner[int(f["frame.interface_id"][0])] for f in tshark_frames(merged, STATEFUL)}
    out = {p: names_of(by[p]) for p in cands if p not in alone}
    out.update(zip(sorted(alone), pmap(lambda p: names_of(tshark_frames(p)), sorted(alone))))
    print(f"# dns: tshark read {len(cands) - len(alone)} captures merged, {len(alone)} alone")
    return out


def norm(name):
    return "" if name in ("<Root>", ".") else name


def dns_candidate(lts, pk):
    return bool(lts) and lts[0] in PTB_LINKTYPES and \
        any(b"\x00\x35" in p[3] or b"\x14\xe9" in p[3] for p in pk)


def dns_ptb(path):
    store = os.path.join(TOP, "dns", os.path.basename(path) + ".ptb")
    r = import_pcap(path, store)
    check(r.returncode in (0, 4), f"dns {path}: import status {r.returncode}")
    return {norm(e.get("host", "")) for e in events(store, "evt.type = net.dns")}


def case_dns():
    if not shutil.which("tshark"):
        print("tshark not installed: dns skipped")
        return 77
    os.makedirs(os.path.join(TOP, "dns"), exist_ok=True)
    t0 = time.monotonic()
    # the other captures must give no names: case_roundtrip checks that (it imports them all)
    cands = [p for p in captures() if dns_candidate(*read_capture(p)[:2])]
    ptb_names = dict(zip(cands, pmap(dns_ptb, cands)))
    ts = tshark_names(cands)
    agree = named = equal = names = 0
    for p in cands:
        name, mine, (strict, loose) = os.path.basename(p), ptb_names[p], ts[p]
        ok = check(strict <= mine, f"dns {name}: tshark names missing from ptb's: "
                   f"{sorted(strict - mine)[:10]}")
        ok &= check(mine <= loose, f"dns {name}: ptb names tshark does not see: "
                    f"{sorted(mine - loose)[:10]}")
        agree += ok
        named += bool(mine)
        equal += bool(mine) and strict == loose == mine
        names += len(mine)
    print(f"# dns: {agree} of {len(cands)} candidate captures agree with tshark; {named} with "
          f"names ({names} names), {equal} of them with equal sets; "
          f"{time.monotonic() - t0:.1f}s")
    check(named >= 10, f"dns: only {named} captures with DNS names")


CASES = {"roundtrip": case_roundtrip, "damaged": case_damaged, "linktypes": case_linktypes,
         "export": case_export, "dns": case_dns}
DEFAULT = ["roundtrip", "damaged", "linktypes", "export"]


def main():
    global PTB, TOP, DATA
    PTB = os.path.abspath(sys.argv[1])
    src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    DATA = os.environ.get("PTB_TEST_DATA") or os.path.join(src, "..", "shared", "data")
    if not os.path.isdir(os.path.join(DATA, "tcpdump-pcaps")):
        print(f"no captures at {DATA}/tcpdump-pcaps: skipped")
        return 77
    # not ptbcases.run: the stores go on tmpfs where there is one (each import fsyncs; 700 of
    # them), and a case may skip the whole test (77)
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    TOP = tempfile.mkdtemp(prefix="ptb-pcap-", dir=shm)
    try:
        for name in sys.argv[2:] or DEFAULT:
            t0 = time.monotonic()
            if CASES[name]() == 77:
                return 77
            print(f"# {name}: {time.monotonic() - t0:.1f}s", flush=True)
    finally:
        shutil.rmtree(TOP, ignore_errors=True)
    print(f"{len(ptbcases.FAILS)} failures")
    return 1 if ptbcases.FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
