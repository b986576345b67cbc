#!/usr/bin/env python3
"""ptb record's network recording, on real traffic of real programs: the command runs in its own
network namespace; servers and clients inside it talk over its loopback, and to a server of this
test on the host end of the veth pair. Checked from the store alone (`ptb query --format jsonl`):
HTTP requests and responses (credential headers only as fingerprints), TLS SNI and ALPN from a
real curl against a real openssl s_server (and the same SNI as tshark reads from `ptb export
--pcap`), DNS over UDP and TCP naming a later flow, every flow tied to the exec_id of the process
that connected, the namespace and its links and rules removed after a normal end, a crash of
the tree and a killed recorder, --net off, and the fallback without root.

Traffic goes only to loopback and to the namespace's own addresses.

usage: test_record_net.py PTB [CASE...]     (exit 77: not root, or no network namespaces)
"""
import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

from ptbcases import check, events, of_type, ptrace_forbidden, run

PTB = None
TOP = None




def record(name, cmd, *opts, timeout=120, user=None):
    store = os.path.join(TOP, name + ".ptb")
    shutil.rmtree(store, ignore_errors=True)
    wd = os.path.join(TOP, name)
    os.makedirs(wd, exist_ok=True)
    pre = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] if user else []
    r = subprocess.run(pre + [PTB, "record", "--store", store, "--capture-root", wd, *opts, "--"]
                       + cmd, cwd=wd, capture_output=True, timeout=timeout)
    if r.returncode not in (0,):
        print(r.stderr.decode(errors="replace"))
    return r, store, wd






def exec_of(evs, prog):
    """exec_ids of the processes that ran prog (basename of argv[0] or the exe)."""
    ids = set()
    for e in of_type(evs, "proc.exec"):
        names = {os.path.basename(e.get("exe", ""))}
        if e.get("argv"):
            names.add(os.path.basename(e["argv"][0]))
        if prog in names:
            ids.add(e["exec_id"])
    return ids


def links():
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return {l.split(": ")[1].split("@")[0] for l in out.splitlines()}


def nft_tables():
    if not shutil.which("nft"):
        return set()
    out = subprocess.run(["nft", "list", "tables", "ip"], capture_output=True, text=True).stdout
    return {l.split()[-1] for l in out.splitlines() if l.startswith("table")}


def ptb_leftovers(stderr):
    """The link and NAT table that the recorder said it made (its summary names them), if they
    are still there. Other recorders (tests running beside this one) are not looked at."""
    m = re.search(rb"<-> (ptbh\d+) [0-9.]+(?:, NAT table (ptb_\d+_\d+))?", stderr)
    if not m:
        return None
    link, table = m.group(1).decode(), (m.group(2) or b"").decode()
    return ({link} & links(), {table} & nft_tables() if table else set())


SCRIPT_HTTP = r"""
import http.server, socketserver, subprocess, sys, threading
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = b"hello from inside" * 100
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
srv = socketserver.TCPServer(("127.0.0.1", 0), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
port = srv.server_address[1]
rc = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-H", "Authorization: Bearer sk-ant-api03-" + "k" * 40,
                     f"http://127.0.0.1:{port}/a", f"http://127.0.0.1:{port}/b?token=abcdefabcdefabcdef"]).returncode
srv.shutdown()
sys.exit(rc)
"""


def case_http_loopback():
    r, s, wd = record("http", ["python3", "-c", SCRIPT_HTTP])
    if not check(r.returncode == 0, f"http: exit {r.returncode}"):
        return
    evs = events(s)
    http = of_type(evs, "net.http")
    reqs = [h for h in http if not h.get("response")]
    resps = [h for h in http if h.get("response")]
    check([h.get("path") for h in reqs][:1] == ["/a"] and len(reqs) == 2,
          f"http: requests {[(h.get('method'), h.get('path')) for h in reqs]}")
    check(len(reqs) == 2 and "abcdefabcdefabcdef" not in reqs[1].get("path", ""),
          f"http: token in the path kept in clear: {reqs[1:]}")
    check([h.get("status") for h in resps] == [200, 200], f"http: statuses {resps}")
    creds = [hd for h in reqs for hd in h.get("headers", []) if hd.get("redacted")]
    check(len(creds) == 2 and all(c["redacted"].get("sha256") for c in creds),
          f"http: Authorization not fingerprinted: {creds}")
    raw = subprocess.run([PTB, "query", s, "--format", "jsonl", "type != net.packet"],
                         capture_output=True).stdout
    check(b"kkkkkkkkkkkkkkkkkkkk" not in raw, "http: the bearer token is in an event")
    curl = exec_of(evs, "curl")
    check(len(curl) == 1, f"http: curl execs {curl}")
    check(all(h["exec_id"] in curl for h in reqs), f"http: requests not tied to curl: "
          f"{[h.get('exec_id') for h in reqs]} vs {curl}")
    flows = [f for f in of_type(evs, "net.flow") if f.get("proto") == "tcp"]
    check(len(flows) == 1, f"http: {len(flows)} TCP flows (one keep-alive connection)")
    if flows:
        f = flows[0]
        check(f.get("exec_id") in curl, f"http: flow exec_id {f.get('exec_id')} vs {curl}")
        check(f.get("state") == "fin", f"http: flow state {f.get('state')}")
        check(f.get("bytes_in", 0) > 3400, f"http: bytes_in {f.get('bytes_in')}")
        pk = [p for p in of_type(evs, "net.packet") if p.get("flow_id") == f["flow_id"]]
        # loopback packets are captured once each, not twice
        check(len(pk) == f.get("packets_out", 0) + f.get("packets_in", 0),
              f"http: {len(pk)} packets stored, flow counts "
              f"{f.get('packets_out')}+{f.get('packets_in')}")
        check(all(len(bytes.fromhex(p["data"])) <= 256 if isinstance(p.get("data"), str) and
                  all(c in "0123456789abcdef" for c in p["data"]) else True for p in pk),
              "http: a packet stored over the snap length")
    left = ptb_leftovers(r.stderr)
    check(left == (set(), set()), f"http: left behind {left}")


SCRIPT_HOST = r"""
import socket, sys
gw = None
for line in open("/proc/net/route").read().splitlines()[1:]:
    f = line.split()
    if f[1] == "00000000":
        gw = socket.inet_ntoa(bytes.fromhex(f[2])[::-1])
port = int(sys.argv[1])
s = socket.create_connection((gw, port), timeout=10)
s.sendall(b"GET /from-ns HTTP/1.1\r\nHost: host.test\r\n\r\n")
print(s.recv(1000).decode())
"""


def case_host_veth():
    """A server of this test, on the host, reached through the veth pair's host end."""
    srv = socket.socket()
    srv.bind(("0.0.0.0", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    got = []

    def serve():
        srv.settimeout(30)
        try:
            c, a = srv.accept()
            got.append((a, c.recv(1000)))
            c.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
            c.close()
        except OSError:
            pass
    t = threading.Thread(target=serve)
    t.start()
    r, s, wd = record("host", ["python3", "-c", SCRIPT_HOST, str(port)])
    t.join()
    srv.close()
    if not check(r.returncode == 0 and got, f"host: exit {r.returncode}, got {got}"):
        return
    peer = got[0][0][0]
    check(ipaddress.ip_address(peer) in ipaddress.ip_network("100.64.0.0/10"),
          f"host: the connection came from {peer}, not the namespace")
    evs = events(s)
    http = of_type(evs, "net.http")
    check([h.get("host") for h in http if not h.get("response")] == ["host.test"] and
          [h.get("status") for h in http if h.get("response")] == [204], f"host: http {http}")
    py = exec_of(evs, "python3")
    flows = [f for f in of_type(evs, "net.flow") if f.get("dst", {}).get("port") == port]
    check(len(flows) == 1 and flows[0].get("exec_id") in py and
          flows[0].get("src", {}).get("ip") == peer, f"host: flows {flows}")
    conn = [c for c in of_type(evs, "net.connect") if c.get("remote", {}).get("port") == port]
    check(len(conn) == 1 and flows and conn[0].get("local", {}).get("port") ==
          flows[0].get("src", {}).get("port"), f"host: connect {conn} vs flow")


def case_tls_sni():
    """curl against openssl s_server inside the namespace; SNI and ALPN, and tshark agrees."""
    if not (shutil.which("openssl") and shutil.which("curl")):
        print("# tls: openssl or curl missing: skipped")
        return
    d = os.path.join(TOP, "tlskeys")
    os.makedirs(d, exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=model-api.test", "-keyout", f"{d}/k.pem", "-out", f"{d}/c.pem"],
                   check=True, capture_output=True)
    script = f"""
openssl s_server -quiet -accept 127.0.0.1:4433 -key {d}/k.pem -cert {d}/c.pem -www >/dev/null 2>&1 &
srv=$!
sleep 1
curl -sk --http1.1 --resolve model-api.test:4433:127.0.0.1 https://model-api.test:4433/ -o /dev/null
rc=$?
kill $srv
exit $rc
"""
    r, s, wd = record("tls", ["sh", "-c", script])
    if not check(r.returncode == 0, f"tls: exit {r.returncode}"):
        return
    evs = events(s)
    tls = of_type(evs, "net.tls")
    check([t.get("host") for t in tls] == ["model-api.test"], f"tls: {tls}")
    check(tls and tls[0].get("alpn") == ["http/1.1"], f"tls: alpn {tls[:1]}")
    curl = exec_of(evs, "curl")
    check(tls and tls[0].get("exec_id") in curl, f"tls: exec_id {tls[:1]} vs curl {curl}")
    flows = [f for f in of_type(evs, "net.flow") if f.get("dst", {}).get("port") == 4433]
    check(len(flows) == 1 and flows[0].get("host") == "model-api.test", f"tls: flows {flows}")
    if shutil.which("tshark"):
        pcap = os.path.join(TOP, "tls.pcap")
        e = subprocess.run([PTB, "export", "--pcap", pcap, s], capture_output=True)
        if check(e.returncode == 0, f"tls: export {e.stderr}"):
            t = subprocess.run(["tshark", "-r", pcap, "-d", "tcp.port==4433,tls", "-Y",
                                "tls.handshake.type == 1", "-T",
                                "fields", "-e", "tls.handshake.extensions_server_name"],
                               capture_output=True, text=True)
            check(t.stdout.split() == ["model-api.test"],
                  f"tls: tshark reads SNI {t.stdout.split()} ({t.stderr.strip()[:200]})")


SCRIPT_DNS = r"""
import socket, struct, threading, sys
def name(n):
    return b"".join(bytes([len(p)]) + p.encode() for p in n.split(".")) + b"\0"
def answer(q, ip):
    return q[:2] + b"\x81\x80" + q[4:6] + b"\x00\x01\x00\x00\x00\x00" + q[12:] + \
        b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + socket.inet_aton(ip)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 53))
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("127.0.0.1", 53)); t.listen(1)
d = socket.socket(); d.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
d.bind(("127.0.0.2", 9000)); d.listen(1)
def udp_srv():
    q, a = u.recvfrom(512); u.sendto(answer(q, "127.0.0.2"), a)
def exactly(c, n):
    b = b""
    while len(b) < n:
        b += c.recv(n - len(b))
    return b
def tcp_srv():
    c, _ = t.accept(); n = struct.unpack(">H", exactly(c, 2))[0]; q = exactly(c, n)
    r = answer(q, "127.0.0.3"); c.sendall(struct.pack(">H", len(r)) + r); c.close()
def data_srv():
    c, _ = d.accept(); c.recv(100); c.close()
ths = [threading.Thread(target=f) for f in (udp_srv, tcp_srv, data_srv)]
[x.start() for x in ths]
q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + name("weights.models.test") + b"\x00\x01\x00\x01"
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.connect(("127.0.0.1", 53)); c.send(q)
r = c.recv(512); ip = socket.inet_ntoa(r[-4:])
s = socket.create_connection((ip, 9000)); s.sendall(b"\x00binary, no SNI, no Host\x00"); s.close()
q2 = b"\x56\x78\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + name("tcp.models.test") + b"\x00\x01\x00\x01"
k = socket.create_connection(("127.0.0.1", 53)); k.sendall(struct.pack(">H", len(q2))[:1])
k.sendall(struct.pack(">H", len(q2))[1:] + q2[:7]); k.sendall(q2[7:])
n = struct.unpack(">H", exactly(k, 2))[0]; exactly(k, n); k.close()
[x.join() for x in ths]
"""


def case_dns():
    r, s, wd = record("dns", ["python3", "-c", SCRIPT_DNS])
    if not check(r.returncode == 0, f"dns: exit {r.returncode}"):
        return
    evs = events(s)
    dns = of_type(evs, "net.dns")
    names = sorted((d.get("host"), bool(d.get("response")), bool(d.get("tcp"))) for d in dns)
    check(names == [("tcp.models.test", False, True), ("tcp.models.test", True, True),
                    ("weights.models.test", False, False), ("weights.models.test", True, False)],
          f"dns: {names}")
    ans = [a for d in dns if d.get("response") for a in d.get("answers", [])]
    check(sorted(a.get("data") for a in ans) == ["127.0.0.2", "127.0.0.3"], f"dns: answers {ans}")
    flows = [f for f in of_type(evs, "net.flow") if f.get("dst", {}).get("port") == 9000]
    check(len(flows) == 1 and flows[0].get("host") == "weights.models.test",
          f"dns: the flow to the answer is not named: {flows}")
    py = exec_of(evs, "python3")
    check(all(d.get("exec_id") in py for d in dns), f"dns: exec_ids {[d.get('exec_id') for d in dns]}")


SCRIPT_FLOOD = r"""
import socket, sys
n = int(sys.argv[1])
r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
r.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
r.bind(("127.0.0.1", 7000))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("127.0.0.1", 7000))
payload = b"x" * 1200
for i in range(n):
    s.send(payload)
"""


def case_drops():
    """A burst of UDP datagrams into the smallest ring: every packet is either stored or counted
    as dropped in a gap event; nothing goes missing silently."""
    n = 100000
    r, s, wd = record("drops", ["python3", "-c", SCRIPT_FLOOD, str(n)], "--net-buffer", "1M",
                      "--snaplen", "64")
    if not check(r.returncode == 0, f"drops: exit {r.returncode}"):
        return
    evs = events(s, "evt.type in (net.flow, gap)")
    flows = [f for f in of_type(evs, "net.flow") if f.get("dst", {}).get("port") == 7000]
    got = sum(f.get("packets_out", 0) for f in flows)
    dropped = sum(g.get("count", 0) for g in of_type(evs, "gap")
                  if g.get("origin") == "pcap" and g.get("reason") == "drops")
    print(f"# drops: {n} datagrams sent, {got} captured, {dropped} dropped by the kernel")
    # the namespace carries nothing else, so every drop is one of the datagrams
    check(got + dropped == n, f"drops: {got} captured + {dropped} dropped != {n} sent")
    m = re.search(rb"(\d+) dropped by the kernel", r.stderr)
    check(m and int(m.group(1)) == dropped, f"drops: summary {r.stderr[-200:]}")


def case_cleanup_crash():
    """The tree crashes (SIGSEGV), and then the recorder itself is killed: nothing left behind
    (the namespace's links die with it; the next record sweeps the nftables table)."""
    r, s, wd = record("crash", ["sh", "-c", "kill -SEGV $$"])
    check(r.returncode == 128 + signal.SIGSEGV, f"crash: exit {r.returncode}")
    left = ptb_leftovers(r.stderr)
    check(left == (set(), set()), f"crash: left {left}")
    store = os.path.join(TOP, "killed.ptb")
    p = subprocess.Popen([PTB, "record", "--store", store, "--", "sleep", "60"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # its table is ptb_<its pid>_<N>, its link ptbh<N>
    deadline, mine = time.monotonic() + 10, None
    while time.monotonic() < deadline and not mine:
        mine = [t for t in nft_tables() if t.startswith(f"ptb_{p.pid}_")]
        time.sleep(0.1)
    if not check(mine, "killed: no NAT table while recording"):
        p.kill()
        p.wait()
        return
    table = mine[0]
    link = "ptbh" + table.rsplit("_", 1)[1]
    check(link in links(), f"killed: no link {link} while recording")
    p.send_signal(signal.SIGKILL)
    p.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and link in links():
        time.sleep(0.1)
    check(link not in links(), f"killed: link {link} left")
    check(table in nft_tables(), f"killed: table {table} went away by itself?")
    r, s, wd = record("after-kill", ["true"])  # sweeps the table of the killed recorder
    check(table not in nft_tables(), f"killed: table {table} not swept")


def case_net_off():
    r, s, wd = record("off", ["sh", "-c", "cat /proc/net/dev"], "--net", "off")
    evs = events(s)
    check(r.returncode == 0 and not [e for e in evs if e["type"].startswith("net.")],
          "off: network events with --net off")
    check(not [g for g in of_type(evs, "gap") if g.get("origin") == "pcap"], "off: a pcap gap")
    def ifaces(out):
        return sorted(l.split(":")[0].strip() for l in out.decode().splitlines()[2:])
    check(ifaces(r.stdout) == sorted(links()), f"off: the command saw {ifaces(r.stdout)}")
    r2, s2, _ = record("on", ["sh", "-c", "cat /proc/net/dev"])
    # in its namespace the command sees lo and eth0, nothing of the host's
    check(r2.returncode == 0 and ifaces(r2.stdout) == ["eth0", "lo"],
          f"on: exit {r2.returncode}, the command saw {ifaces(r2.stdout)}")


def case_bad_filter():
    r, s, wd = record("badfilter", ["true"], "--net-filter", "tcp port")
    check(r.returncode == 2 and b"bad capture filter" in r.stderr,
          f"bad filter: exit {r.returncode}: {r.stderr[-200:]}")
    r, s, wd = record("goodfilter", ["python3", "-c", SCRIPT_DNS], "--net-filter", "udp port 53")
    evs = events(s, "evt.type in (net.dns, net.flow)")
    check(r.returncode == 0 and all(f.get("proto") == "udp" for f in of_type(evs, "net.flow"))
          and len(of_type(evs, "net.dns")) == 2, f"filter: udp port 53 gave {evs}")


def case_no_namespace():
    """Root without CAP_NET_ADMIN and CAP_SYS_ADMIN (but CAP_NET_RAW): no namespace, so the
    host's interfaces are captured instead, said in a gap; the command's flow still found."""
    if not shutil.which("setpriv"):
        print("# no_namespace: setpriv missing: skipped")
        return
    store = os.path.join(TOP, "nons.ptb")
    script = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
              "s.sendto(b'x' * 10, ('127.0.0.1', 9999))")
    r = subprocess.run(["setpriv", "--bounding-set", "-net_admin,-sys_admin", "--inh-caps",
                        "-net_admin,-sys_admin", "--", PTB, "record", "--store", store, "--",
                        "python3", "-c", script], capture_output=True, timeout=60)
    check(r.returncode == 0 and b"capturing on the host's interfaces" in r.stderr,
          f"no_namespace: exit {r.returncode}: {r.stderr[-300:]}")
    evs = events(store, "evt.type in (gap, net.flow, proc.exec)")
    gaps = [g for g in of_type(evs, "gap") if g.get("origin") == "pcap"]
    check([g.get("reason") for g in gaps] == ["no_namespace"], f"no_namespace: gaps {gaps}")
    py = exec_of(evs, "python3")
    flows = [f for f in of_type(evs, "net.flow") if f.get("dst", {}).get("port") == 9999]
    check(len(flows) == 1 and flows[0].get("exec_id") in py,
          f"no_namespace: flows {flows}, python {py}")


def case_no_root():
    """Without root the default mode cannot be set up: said on stderr and as a gap event; an
    explicit --net ns is an error."""
    if not shutil.which("setpriv"):
        print("# no_root: setpriv missing: skipped")
        return
    os.chmod(TOP, 0o777)
    wd = os.path.join(TOP, "noroot")
    os.makedirs(wd, exist_ok=True)
    os.chmod(wd, 0o777)
    r, s, _ = record("noroot", ["true"], user=65534)
    check(r.returncode == 0, f"no_root: exit {r.returncode}: {r.stderr[-300:]}")
    check(b"no packet capture" in r.stderr, f"no_root: stderr {r.stderr[-300:]}")
    gaps = [g for g in of_type(events(s), "gap") if g.get("origin") == "pcap"]
    check(len(gaps) == 1 and gaps[0].get("reason") == "no_capture", f"no_root: gaps {gaps}")
    r, s, _ = record("noroot2", ["true"], "--net", "ns", user=65534)
    check(r.returncode == 5, f"no_root: explicit --net ns exit {r.returncode}")


CASES = {
    "http_loopback": case_http_loopback,
    "host_veth": case_host_veth,
    "tls_sni": case_tls_sni,
    "dns": case_dns,
    "drops": case_drops,
    "cleanup_crash": case_cleanup_crash,
    "net_off": case_net_off,
    "bad_filter": case_bad_filter,
    "no_namespace": case_no_namespace,
    "no_root": case_no_root,
}


def bind(ptb, top):
    global PTB, TOP
    PTB, TOP = ptb, top


def main():
    if os.geteuid() != 0:
        print("not root: network namespaces cannot be made here: skipped")
        return 77
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        print("no network namespaces here: skipped")
        return 77
    if ptrace_forbidden():
        print("ptrace is not permitted here: skipped")
        return 77
    return run(sys.argv, CASES, "ptb-record-net-", bind)


if __name__ == "__main__":
    sys.exit(main())
