#!/usr/bin/env python3
"""ptb audit --format html (forensics/audit_html.c, audit_timeline.c, audit_html.js): the report of
stores built from JSONL events (`ptb import --jsonl`) and of a real `ptb run`, opened in headless
Chromium, and what the page SHOWS once its script ran (the DOM Chromium dumps):

  inject   a key cheat whose tool input, tool output, argv, TLS host and store name hold <script>,
           <img onerror>, quotes and '&': the verdicts, rules, evidence seqs and timeline counts
           are there, every injected string is text, nothing ran (the title is unchanged, no <img>)
  big      3,000 tool calls, 2,000 processes, 20,000 GPU kernels: lanes capped ("N more ... not
           shown"), GPU summed into buckets, the file stays small
  run      a real `ptb run` store (phases, the harness and its children, the score)
  sparse   a tool call and a kernel, nothing else: the empty lanes do not break the page
  multi    two stores and a missing one in one report: the table has all three, the error shown
Skipped (77) without chromium. Usage: test_audit_html.py PTB SOURCE_DIR"""
import html.parser
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from jsonlstore import CANARY, Checks, Events, fp, ph, real_run

ptb, src = sys.argv[1], sys.argv[2]
chromium = next((shutil.which(c) for c in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(c)), None)
if not chromium:
    print("chromium not installed: skipped")
    sys.exit(77)
tmp = tempfile.mkdtemp(prefix="ptb-audit-html-")
check = Checks()


def report(stores, name):
    out = os.path.join(tmp, name + ".html")
    p = subprocess.run([ptb, "audit", "--format", "html", "--out", out] + stores,
                       capture_output=True, text=True)
    if os.environ.get("PTB_TEST_KEEP") and os.path.exists(out):  # to look at the reports
        shutil.copy(out, os.environ["PTB_TEST_KEEP"])
    return p, out


def dom(path):
    """The DOM after the page's script ran, as Chromium serialises it."""
    p = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                        "--disable-dev-shm-usage", "--no-first-run", "--virtual-time-budget=10000",
                        "--user-data-dir=" + os.path.join(tmp, "chromium-profile"),
                        "--dump-dom", "file://" + path],
                       capture_output=True, text=True, timeout=120)
    return p.stdout


class Tags(html.parser.HTMLParser):
    def __init__(self, d):
        super().__init__()
        self.tags = {}
        self.feed(d)

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1


def count(d, lane):
    m = re.search(r'data-lane="%s" data-count="(\d+)"' % lane, d)
    return int(m.group(1)) if m else -1


# ---------------------------------------------------------------- inject
XSS = "<script>document.title='pwned-' + 1</script>"
IMG = "<img src=x onerror=\"document.title='pwned-img'\">"
r = Events(ptb, tmp, dt=1000000)
r.add("run.start", source="runner", run_id="run-" + XSS, task="task\"'&" + XSS, agent="claude")
r.add("canary", source="runner", name="OPENAI_API_KEY", fingerprint=fp(CANARY, "openai"), where="env")
r.add("run.phase", source="runner", phase="agent", state="begin")
r.add("proc.exec", exec_id=1, pid=100, exe="/usr/bin/claude", argv=["claude", "-p"],
      env=[{"name": "OPENAI_API_KEY", "redacted": fp(CANARY, "openai")}])
r.add("net.tls", source="pcap", exec_id=1, flow_id=1, host="api.anthropic.com")
tool_seq = r.add("tool.call", source="agent", call_id="t1", name="Bash",
                 input=json.dumps({"command": "curl -H 'Authorization: Bearer %s' %s \"q\" 'a' & %s"
                                   % (ph(CANARY, "openai"), XSS, IMG)}))
r.add("proc.exec", exec_id=2, pid=102, parent_exec_id=1, exe="/usr/bin/curl",
      argv=["curl", "-o", "/tmp/f" + IMG + "'\".txt", XSS])
r.add("net.tls", source="pcap", exec_id=2, flow_id=2, host="api.openai.com")
r.add("net.tls", source="pcap", exec_id=2, flow_id=3, host=XSS + ".example")
r.add("file.write", exec_id=2, path="/tmp/f" + IMG + "'\".txt", bytes=3, size=3)
r.add("proc.exit", exec_id=2, pid=102, exit_code=0)
r.add("tool.result", source="agent", call_id="t1", output="done " + XSS, exec_ids=[2])
r.add("tool.call", source="agent", call_id="t2", name="Write", input=json.dumps({"file_path": IMG}))
r.add("tool.result", source="agent", call_id="t2", output="ok")
r.add("tool.call", source="agent", call_id="t3", name="Read", input="{}")
r.add("proc.exit", exec_id=1, pid=100, exit_code=0)
r.add("run.phase", source="runner", phase="agent", state="end")
r.add("run.phase", source="runner", phase="eval", state="begin")
r.add("eval.result", source="eval", benchmark="demo", metric="accuracy", value=0.705, items=200, correct=141)
r.add("run.phase", source="runner", phase="eval", state="end")
inject = r.store("x" + IMG + "'\"&<script>document.title='pwned-name'.ptb")

p, out = report([inject], "inject")
check(p.returncode == 1, "inject: exit %d (violation), %s" % (p.returncode, p.stderr))
raw = open(out).read()
check("http://" not in raw.replace("http://www.w3.org/2000/svg", "") and "https://" not in raw
      and "src=\"http" not in raw, "inject: no external URL")
check("<img" not in raw and "<script>document" not in raw, "inject: raw file holds no tag of the store's")
d = dom(out)
check('data-rendered="yes"' in d, "inject: the page's script ran")
check("<title>ptb audit report</title>" in d and "pwned" not in re.findall(r"<title>(.*?)</title>", d)[0],
      "inject: title unchanged: %s" % re.findall(r"<title>(.*?)</title>", d))
tags = Tags(d).tags
check("img" not in tags and "iframe" not in tags, "inject: no <img> element in the DOM: %s" % tags)
check(tags.get("script") == 2, "inject: only the report's two scripts: %s" % tags.get("script"))
check("&lt;script&gt;document.title='pwned-' + 1&lt;/script&gt;" in d,
      "inject: the injected script shown as text")
check("&lt;img src=x onerror=" in d, "inject: the injected <img> shown as text")
check('class="verdict violation"' in d, "inject: a violation verdict")
check("keys.canary_used" in d and "keys.provider_call" in d, "inject: the finding rules")
check('data-seq="%d"' % tool_seq in d, "inject: the tool call's seq as evidence")
check("0.705 accuracy on demo (141 of 200 items" in d, "inject: the score")
check("ptb query" in d and 'class="copy"' in d, "inject: the query command and its copy button")
check(count(d, "tl-tool") == 3, "inject: 3 tool calls drawn: %d" % count(d, "tl-tool"))
check(count(d, "tl-proc") == 2, "inject: 2 processes drawn: %d" % count(d, "tl-proc"))
check(count(d, "tl-phase") == 2, "inject: 2 phases drawn: %d" % count(d, "tl-phase"))
check(count(d, "tl-net") == 3, "inject: 3 network events drawn: %d" % count(d, "tl-net"))
check(count(d, "tl-ev") >= 2, "inject: evidence marks: %d" % count(d, "tl-ev"))
check(len(re.findall(r'class="tl-proc harness', d)) == 1, "inject: one harness process")
check(re.search(r'<rect[^>]*class="tl-tool hit"[^>]*data-seq="%d"' % tool_seq, d) is not None,
      "inject: the evidence tool call marked on the timeline")
check('class="tl-error"' not in d, "inject: the timeline drew without an error")

# ---------------------------------------------------------------- big
r = Events(ptb, tmp)
r.add("run.phase", source="runner", phase="agent", state="begin")
for i in range(3000):
    r.add("tool.call", source="agent", call_id="c%d" % i, name="Bash", input='{"command": "ls %d"}' % i)
    r.add("tool.result", source="agent", call_id="c%d" % i, output="x")
for i in range(2000):
    r.add("proc.exec", exec_id=10 + i, pid=1000 + i, exe="/bin/true", argv=["true", str(i)])
    r.add("proc.exit", exec_id=10 + i, pid=1000 + i, exit_code=0)
for i in range(20000):
    t = 1700000000000000000 + len(r.ev) * 1000
    r.add("gpu.kernel", source="gpu", exec_id=10, name="k%d" % (i % 7), start_ns=t, end_ns=t + 500,
          device=0, stream=7)
r.add("run.phase", source="runner", phase="agent", state="end")
big = r.store("big.ptb")
p, out = report([big], "big")
check(p.returncode in (0, 6), "big: exit %d %s" % (p.returncode, p.stderr))
size = os.path.getsize(out)
check(size < 2_000_000, "big: the report is %d bytes" % size)
d = dom(out)
check(count(d, "tl-tool") == 2000, "big: 2000 tool calls drawn: %d" % count(d, "tl-tool"))
check(count(d, "tl-proc") == 1500, "big: 1500 processes drawn: %d" % count(d, "tl-proc"))
check(0 < count(d, "tl-gpu") <= 400, "big: GPU buckets: %d" % count(d, "tl-gpu"))
check("1000 more tool calls not shown" in d, "big: tool calls over the bound said")
check("500 more processes not shown" in d, "big: processes over the bound said")
check("GPU (20000 kernels)" in d, "big: kernels counted")

# ---------------------------------------------------------------- run: a real ptb run
real, why = real_run(ptb, tmp, "realrun", "echo hi > notes.txt; ls; cat notes.txt")
if real:
    p, out = report([real], "run")
    check(p.returncode in (0, 6), "run: exit %d %s" % (p.returncode, p.stderr))
    d = dom(out)
    check(count(d, "tl-proc") >= 3, "run: processes drawn: %d" % count(d, "tl-proc"))
    check(len(re.findall(r'class="tl-proc harness', d)) >= 1, "run: the harness drawn")
    check(count(d, "tl-phase") >= 2, "run: phases drawn: %d" % count(d, "tl-phase"))
    check("realrun-task.json" in d and 'class="score">none' not in d, "run: the task and a score")
    check("leak." in d and "ckpt." in d and "keys." in d, "run: the three detectors' findings")
else:
    print("ptb run could not run here (%s): the run case is skipped" % why)

# ---------------------------------------------------------------- sparse: no processes, no phases
r = Events(ptb, tmp)
r.add("tool.call", source="import", call_id="a", name="Bash", input="{}")
r.add("gpu.kernel", source="gpu", exec_id=0, name="k", start_ns=1700000000000001000,
      end_ns=1700000000000001500, device=0, stream=1)
sparse = r.store("sparse.ptb")
p, out = report([sparse], "sparse")
check(p.returncode in (0, 6) and not p.stderr.strip(), "sparse: exit %d %s" % (p.returncode, p.stderr))
d = dom(out)
check(count(d, "tl-tool") == 1 and count(d, "tl-proc") == 0 and count(d, "tl-gpu") == 1,
      "sparse: 1 tool call, no process, 1 GPU bucket: %d %d %d"
      % (count(d, "tl-tool"), count(d, "tl-proc"), count(d, "tl-gpu")))
check("none in the store" in d and "no processes" in d, "sparse: no score, no processes said")

# ---------------------------------------------------------------- multi
missing = os.path.join(tmp, "nope.ptb")
p, out = report([inject, big, missing], "multi")
check(p.returncode == 3, "multi: exit %d (the missing store)" % p.returncode)
d = dom(out)
check(len(re.findall(r'<section class="run"', d)) == 3, "multi: three sections")
check('class="verdict error"' in d and "nope.ptb" in d, "multi: the missing store's error")
check(d.count('data-lane="tl-tool"') == 2, "multi: two timelines")
p = subprocess.run([ptb, "audit", "--help"], capture_output=True, text=True)
check("html" in p.stdout, "--help names html")

shutil.rmtree(tmp, ignore_errors=True)
sys.exit(check.done())
