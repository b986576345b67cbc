#!/usr/bin/env bash
# `ptb replay fs` against `tar -x` of the same tree (docs/BENCHMARKS.md, "ptb replay fs").
#
# 1. Generates (deterministic, --seed) the two halves of a workspace of FILES regular files and
#    about MB megabytes: source and docs, configs, logs and metrics (small text/JSON), MB-sized
#    JSONL and tokenized data shards, and 50-100 MB bf16-like model shards (the low byte of each
#    value random, the high byte from a few exponents: zlib level 1 keeps ~80% of them, text
#    ~30-40%), several folder levels, a few executables, 0600 files and 0700 folders, symbolic
#    links. Half 2 also rewrites 1% of half 1's small files and moves a symbolic link, as a
#    second checkpoint step would. Each half is a tar archive (p1.tar, p2.tar).
# 2. `sh -c 'tar -xf p1.tar -C D && tar -xf p2.tar -C D'` natively (timed REPS times) and under
#    `ptb record --net off --gpu off --capture-root WS` (the store S; timed once). The middle
#    seq is the first tar's proc.exit: the tree then is p1.tar's, about half of the final one.
# 3. Timed, alternating, caches warm (store and archives just written), each run into a new
#    folder on the same file system; between runs, the outputs synced and dropped from the page
#    cache and 3 x MB of memory (at most 3 GB) touched; nothing deleted while runs are timed
#    (see settle() below): `ptb replay fs S --at LAST --to OUT --root WS -q` beside
#    `tar -xf tree.tar -C OUT` (an archive of the final tree), and `--at MIDDLE` beside
#    `tar -xf p1.tar`. The trees of the first round are compared with the real ones (type,
#    mode, size, link target of every entry; `diff -r` of the contents): the benchmark fails on
#    any difference.
# 4. The final tree stored again by `ptb record --compress none --capture-root WS -- true` (the
#    snapshot), and `ptb replay fs` of that store at its last seq: replay without decompression.
# 5. The snapshot `ptb record` takes before the command starts: `ptb record --capture-root WS
#    -- true` on the final tree with the snapshot (contents stored, zstd level 1 as by default,
#    and level 0), with the snapshot but every content over --capture-file-max (hashes only),
#    and with --no-snapshot.
# Prints a report and, last, one JSON line. Everything lives in a /tmp/ptb-replayfs-* folder,
# removed at the end (--keep leaves it, for profiling). At the default size it needs about
# 22 GB of disk (every output is kept until the end) and 8 GB of free memory, and takes about
# 9 minutes on 2 cores (start it a minute or more after deleting many files: see settle()).
#   tests/bench/bench_replay_fs.sh PTB [--files N] [--mb MB] [--reps R] [--seed S] [--keep]
#                                      [--quick]      (10000 files, 1000 MB, 3 reps by default;
#                                                      --quick: 300 files, 30 MB, 1 rep)
set -u
ptb=${1:?usage: bench_replay_fs.sh PTB [--files N] [--mb MB] [--reps R] [--seed S] [--keep] [--quick]}
shift
files=10000 mb=1000 reps=3 seed=1 keep=0
while [ $# -gt 0 ]; do
  case $1 in
    --files) files=$2; shift ;;
    --mb) mb=$2; shift ;;
    --reps) reps=$2; shift ;;
    --seed) seed=$2; shift ;;
    --keep) keep=1 ;;
    --quick) files=300 mb=30 reps=1 ;;
    *) echo "bench_replay_fs.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
ptb=$(readlink -f "$ptb")
[ -x "$ptb" ] || { echo "bench_replay_fs.sh: $ptb is not executable" >&2; exit 2; }
umask 022
tmp=$(mktemp -d /tmp/ptb-replayfs-XXXXXX)
if [ "$keep" = 1 ]; then
  echo "keeping $tmp"
else
  trap 'rm -rf "$tmp"' EXIT
fi
cd "$tmp" || exit 1
python3 - "$ptb" "$tmp" "$files" "$mb" "$reps" "$seed" <<'PY'
import io, itertools, json, os, random, statistics, subprocess, sys, tarfile, tempfile, time

ptb, tmp, NFILES, MB, REPS, SEED = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), \
    int(sys.argv[5]), int(sys.argv[6])
TOTAL = MB * 1000 * 1000
rng = random.Random(SEED)
out = {"bench": "replay_fs", "files": NFILES, "mb": MB, "reps": REPS, "seed": SEED,
       "load_start": os.getloadavg()[0]}

def log(*a):
    print(*a, flush=True)

# ------------------------------------------------------------------ content
syll = ["ka", "to", "ri", "mon", "el", "sa", "ver", "qu", "in", "da", "lo", "pre", "tion", "al",
        "x", "ex", "str", "an", "ge", "or", "um", "ba", "ne", "fi"]
words = sorted({"".join(rng.choice(syll) for _ in range(rng.randint(1, 4))) for _ in range(6000)})
kw = ["def", "return", "import", "from", "self", "if", "else", "for", "in", "None", "class",
      "torch", "np", "with", "as", "assert", "yield", "lambda", "True", "False"]
wcum = list(itertools.accumulate(1.0 / (i + 1) for i in range(len(words))))

def zwords(n):
    return rng.choices(words, cum_weights=wcum, k=n)

code_lines = []
for _ in range(30000):
    ind = "    " * rng.choice([0, 1, 1, 2, 2, 3])
    w = zwords(rng.randint(1, 6))
    shape = rng.randrange(6)
    if shape == 0:
        code_lines.append(f"{ind}def {w[0]}_{w[-1]}(self, {', '.join(w[1:])}):\n")
    elif shape == 1:
        code_lines.append(f"{ind}{w[0]} = {rng.choice(kw)}.{'_'.join(w[1:]) or 'x'}({rng.randint(0, 4096)})\n")
    elif shape == 2:
        code_lines.append(f"{ind}# {' '.join(zwords(rng.randint(3, 14)))}\n")
    elif shape == 3:
        code_lines.append(f"{ind}{rng.choice(kw)} {' '.join(w)}\n")
    elif shape == 4:
        code_lines.append(f"{ind}return {w[0]}[{rng.randint(0, 63)}] * {rng.random():.6f}\n")
    else:
        code_lines.append("\n")
doc_lines = [" ".join(zwords(rng.randint(4, 20))).capitalize() + ".\n" for _ in range(15000)]
json_lines = []
for i in range(20000):
    rec = {"id": f"{rng.getrandbits(64):016x}", "lang": rng.choice(["en", "de", "fr", "py", "c"]),
           "text": " ".join(zwords(rng.randint(10, 80))), "score": round(rng.random(), 5),
           "tokens": rng.randint(10, 4000)}
    json_lines.append(json.dumps(rec) + "\n")

def text_of(pool, size, head):
    parts, n = [head], len(head)
    while n < size:
        k = max(1, (size - n) // 60)
        for line in rng.choices(pool, k=k):
            parts.append(line)
            n += len(line)
            if n >= size:
                break
    return "".join(parts).encode()[:size]

def small_json(size, head):
    d = {"path": head, "step": rng.randint(0, 100000),
         "lr": rng.random() * 1e-3, "loss": [round(rng.random() * 4, 4) for _ in range(8)]}
    s = (json.dumps(d, indent=2) + "\n").encode()
    return (s + text_of(json_lines, size - len(s), ""))[:size] if size > len(s) else s[:size]

# bf16-like weights: exponent bytes of N(0, 0.02) values, mantissa bytes random
exp_table = bytes(([0x3c] * 62 + [0xbc] * 62 + [0x3b] * 30 + [0xbb] * 30 + [0x3d] * 26 +
                   [0xbd] * 26 + [0x3a] * 8 + [0xba] * 8 + [0x3e] * 2 + [0xbe] * 2)[:256])
# tokens < 50257 in uint16: high byte skewed toward small values (frequent tokens)
tok_table = bytes(min(195, int(195 * (i / 256.0) ** 3)) for i in range(256))

def interleave(lo_len, table):
    lo = rng.randbytes(lo_len)
    hi = rng.randbytes(lo_len).translate(table)
    b = bytearray(2 * lo_len)
    b[0::2] = lo
    b[1::2] = hi
    return b

def shard(size, name):
    head = json.dumps({"__metadata__": {"format": "pt", "name": name},
                       "model.layers.0.weight": {"dtype": "BF16", "shape": [4096, 4096]}}).encode()
    head = len(head).to_bytes(8, "little") + head
    body = interleave((size - len(head) + 1) // 2, exp_table)
    return head + bytes(body[:size - len(head)])

def tokens(size):
    return bytes(interleave((size + 1) // 2, tok_table)[:size])

# ------------------------------------------------------------------ the tree
# sizes: 6 model shards ~45% of the bytes, MB-sized data files ~40%, the rest small files
nshards = 6 if NFILES >= 60 else 2
nmb = max(4, NFILES * 16 // 1000)
nsmall = NFILES - nshards - nmb
small_sizes = [min(200000, max(40, int(rng.lognormvariate(8.0, 1.25)))) for _ in range(nsmall)]
rest = TOTAL - sum(small_sizes)
mb_w = [rng.uniform(0.5, 4.5) for _ in range(nmb)]
mb_sizes = [int(rest * 0.47 * w / sum(mb_w)) for w in mb_w]
sh_w = [rng.uniform(50, 100) for _ in range(nshards)]
sh_sizes = [int((rest - sum(mb_sizes)) * w / sum(sh_w)) for w in sh_w]

entries = []  # (phase, relpath, kind, size, mode)
pk = [f"{w}" for w in rng.sample(words, 12)]
half = nshards // 2
for i, s in enumerate(sh_sizes):
    step = 1000 if i < half else 2000
    k, n = (i % half) + 1, half
    entries.append((1 if i < half else 2, f"checkpoints/step-{step}/model-{k:05d}-of-{n:05d}.safetensors",
                    "shard", s, 0o644))
for i, s in enumerate(mb_sizes):
    ph = 1 + i % 2
    if i % 2 == 0:
        entries.append((ph, f"data/raw/{rng.choice(['train', 'train', 'valid'])}/"
                        f"{rng.choice(['en', 'de', 'code'])}/part-{i:05d}.jsonl", "jsonl", s, 0o644))
    else:
        entries.append((ph, f"data/tokenized/{rng.choice(['train', 'valid'])}/shard-{i:05d}.bin",
                        "tok", s, 0o644))
for i, s in enumerate(small_sizes):
    ph = 1 + i % 2
    r = rng.random()
    if r < 0.45:
        p, kind, mode = f"repo/src/{rng.choice(pk)}/{rng.choice(pk[:6])}/{rng.choice(words)}_{i}.py", "code", 0o644
    elif r < 0.55:
        p, kind, mode = f"repo/tests/{rng.choice(pk[:4])}/test_{rng.choice(words)}_{i}.py", "code", 0o644
    elif r < 0.62:
        p, kind, mode = f"repo/docs/{rng.choice(pk[:3])}/{rng.choice(words)}_{i}.md", "doc", 0o644
    elif r < 0.64:
        p, kind, mode = f"repo/scripts/{rng.choice(words)}_{i}.sh", "code", 0o755
    elif r < 0.82:
        p, kind, mode = f"runs/run-{rng.randint(1, 8):02d}/logs/step-{i:06d}.json", "json", 0o644
    elif r < 0.84:
        p, kind, mode = f"runs/run-{rng.randint(1, 8):02d}/private/token-{i}.json", "json", 0o600
    else:
        h = f"{rng.getrandbits(160):040x}"
        p, kind, mode = f"cache/hub/{h[:2]}/{h[2:]}.json", "json", 0o644
    entries.append((ph, p, kind, s, mode))
entries.append((1, "checkpoints/step-1000/config.json", "json", 1200, 0o644))
entries.append((2, "checkpoints/step-2000/config.json", "json", 1200, 0o644))
assert len(entries) == NFILES + 2 and len({e[1] for e in entries}) == len(entries)
# config.json twice: keep NFILES exactly by dropping two small files
drop = [i for i, e in enumerate(entries) if e[2] in ("code", "doc")][:2]
entries = [e for i, e in enumerate(entries) if i not in drop]
# half 2 rewrites 1% of half 1's small files
rewrites = [e for e in entries if e[0] == 1 and e[2] in ("json", "code")][:max(2, NFILES // 100)]

def content(kind, size, path):
    head = f"# {path}\n"
    if kind == "shard":
        return shard(size, path)
    if kind == "tok":
        return tokens(size)
    if kind == "jsonl":
        return text_of(json_lines, size, "")
    if kind == "json":
        return small_json(size, path)
    if kind == "doc":
        return text_of(doc_lines, size, "# " + path + "\n\n")
    return text_of(code_lines, size, "#!/bin/sh\n" + head if path.endswith(".sh") else head)

# The archives are written directly (no source tree on disk: nothing is deleted before the
# timed runs, see settle() below), members in the order of `tar --sort=name`.
t0 = time.monotonic()
for ph in (1, 2):
    todo = [e for e in entries if e[0] == ph] + ([(2,) + e[1:] for e in rewrites] if ph == 2 else [])
    links = [("checkpoints/latest", f"step-{1000 * ph}")] + \
        ([("repo/src/data", "../../data")] if ph == 1 else [])
    members = {}
    for _, p, kind, size, mode in todo:
        members[p] = ("f", kind, size, mode)
    for p, target in links:
        members[p] = ("l", target)
    for p in list(members):
        parts = p.split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            members[d] = ("d", 0o700 if d.endswith("/private") else 0o755)
    with tarfile.open(f"{tmp}/p{ph}.tar", "w", format=tarfile.GNU_FORMAT) as tf:
        for p in sorted(members, key=lambda x: x.split("/")):
            m = members[p]
            ti = tarfile.TarInfo("./" + p)
            ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = 1767225600, 0, 0, "root", "root"
            if m[0] == "d":
                ti.type, ti.mode = tarfile.DIRTYPE, m[1]
                tf.addfile(ti)
            elif m[0] == "l":
                ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, m[1], 0o777
                tf.addfile(ti)
            else:
                data = content(m[1], m[2], p + ("@2" if ph == 2 else ""))
                ti.size, ti.mode = len(data), m[3]
                tf.addfile(ti, io.BytesIO(data))
out["generate_s"] = round(time.monotonic() - t0, 1)

# ------------------------------------------------------------------ helpers
def run(cmd, quiet=True, **kw):
    """wall seconds, user, sys CPU seconds of one command (its own rusage)"""
    with tempfile.TemporaryFile() as errf:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL if quiet else None, stderr=errf, **kw)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            errf.seek(0)
            log(f"FAILED ({p.returncode}): {' '.join(cmd)}\n{errf.read().decode(errors='replace')}")
            sys.exit(1)
    return wall, ru.ru_utime, ru.ru_stime

HOT = min(3 << 30, max(256 << 20, 3 * MB << 20))
TOUCH = "import sys\nb = bytearray(int(sys.argv[1]))\nb[::4096] = b'\\1' * len(range(0, len(b), 4096))"
outs, dropped = [], set()

def settle():
    """Before each timed run: the outputs so far written to disk and dropped from the page cache
    (posix_fadvise DONTNEED), then HOT bytes of memory touched by a process that exits, so that
    the run's page cache comes from memory the guest just used. This VM hands free memory back
    to the host little by little (free page reporting), and taking such memory again costs a
    fault in the host: writing 1 GB into it cost tar 5.2-5.9 s of system time, into memory just
    freed 1.4-1.9 s. Touching it first puts every run in the second case, the one closest to a
    machine of its own.
    Nothing is deleted while runs are timed: on ext4 without a journal (as on this VM) the
    inode allocator skips, after a read of its inode table block, every inode freed in the last
    60 s (300 s while that block is dirty), so creating 10,000 files after deleting 10,000
    others took tar 5 to 11 s instead of 3 (perf: ext4_create -> recently_deleted, 56-69% of
    its time) and kept growing with every round. Every output stays until the end."""
    subprocess.run(["sync"], check=True)
    for d in outs:
        if d in dropped or not os.path.isdir(d):
            continue
        dropped.add(d)
        for dd, _, fs in os.walk(d):
            for n in fs:
                f = os.path.join(dd, n)
                if os.path.islink(f):
                    continue
                fd = os.open(f, os.O_RDONLY)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                os.close(fd)
    subprocess.run([sys.executable, "-c", TOUCH, str(HOT)], check=True)
    time.sleep(0.5)

def fresh(name):
    """a new, empty output folder on the same file system (after settle())"""
    d = f"{tmp}/{name}"
    os.mkdir(d)
    outs.append(d)
    return d

def listing(root):
    res = {}
    for d, dirs, fs in os.walk(root):
        for n in dirs + fs:
            p = os.path.join(d, n)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                res[rel] = ("l", os.readlink(p))
            elif os.path.isdir(p):
                res[rel] = ("d", st.st_mode & 0o7777)
            else:
                res[rel] = ("f", st.st_mode & 0o7777, st.st_size, st.st_nlink)
    return res

def same_tree(a, b, what):
    la, lb = listing(a), listing(b)
    if la != lb:
        diff = sorted(set(la.items()) ^ set(lb.items()))[:10]
        log(f"FAILED: {what}: the trees differ in entries/modes/sizes: {diff}")
        sys.exit(1)
    r = subprocess.run(["diff", "-r", "--no-dereference", "-q", a, b], capture_output=True, text=True)
    if r.returncode != 0:
        log(f"FAILED: {what}: contents differ:\n{r.stdout[:2000]}{r.stderr[:2000]}")
        sys.exit(1)
    return la

def med(v):
    return statistics.median(v)

def q(store, flt):
    r = subprocess.run([ptb, "query", "--format", "jsonl", store, flt], capture_output=True,
                       text=True, check=True)
    return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]

ws, store = f"{tmp}/ws", f"{tmp}/S"
cmd = f"tar -xf {tmp}/p1.tar -C {{d}} && tar -xf {tmp}/p2.tar -C {{d}}"

# ------------------------------------------------------------------ record vs native
nat = []
for i in range(REPS):  # the archives were just written: the page cache holds them
    settle()
    d = fresh(f"native{i}")
    nat.append(run(["sh", "-c", cmd.format(d=d)]))
final = outs[0]
os.mkdir(ws)
settle()
rec = run([ptb, "record", "--net", "off", "--gpu", "off", "--capture-root", ws,
           "--capture-file-max", "1G", "--capture-total-max", "64G", "--store", store, "--",
           "sh", "-c", cmd.format(d=ws)])
fl = same_tree(ws, final, "the recorded run's tree vs the native run's")
nfiles = sum(1 for v in fl.values() if v[0] == "f")
nbytes = sum(v[2] for v in fl.values() if v[0] == "f")
ndirs = sum(1 for v in fl.values() if v[0] == "d")
store_bytes = sum(os.path.getsize(os.path.join(store, f)) for f in os.listdir(store))
subprocess.run(["tar", "--sort=name", "--owner=0", "--group=0", "--numeric-owner", "-cf",
                f"{tmp}/tree.tar", "-C", final, "."], check=True)
last = q(store, "evt.type = run.end")[-1]["seq"]
tar1 = [e for e in q(store, "evt.type = proc.exec")
        if e.get("argv", [""])[0] == "tar" and f"{tmp}/p1.tar" in e["argv"]]
middle = [e for e in q(store, "evt.type = proc.exit") if e["exec_id"] == tar1[0]["exec_id"]][0]["seq"]
nwrites = len(q(store, "evt.type = file.write"))
out.update({"tree_files": nfiles, "tree_dirs": ndirs, "tree_bytes": nbytes, "last_seq": last,
            "middle_seq": middle, "file_writes": nwrites, "store_bytes": store_bytes,
            "native_s": [round(x[0], 3) for x in nat], "record_s": round(rec[0], 3),
            "record_user_s": round(rec[1], 2), "record_sys_s": round(rec[2], 2),
            "record_over_native": round(rec[0] / med([x[0] for x in nat]), 2)})
log(f"tree: {nfiles} files, {ndirs} folders, {nbytes / 1e6:.1f} MB; store {store_bytes / 1e6:.1f} MB "
    f"({nwrites} file.write events, {last} events; middle seq {middle})  "
    f"[generated in {out['generate_s']} s]")
log(f"record: native {med([x[0] for x in nat]):.3f} s (median of {REPS}), recorded {rec[0]:.3f} s "
    f"(one run; ptb's CPU {rec[1]:.2f} user + {rec[2]:.2f} sys): {out['record_over_native']}x")

# ------------------------------------------------------------------ replay vs tar
def replay_cmd(s, at):
    return lambda d: [ptb, "replay", "fs", s, "--at", str(at), "--to", d, "--root", ws, "-q"]

configs = [
    ("replay_last", replay_cmd(store, last)),
    ("tar_last", lambda d: ["tar", "-xf", f"{tmp}/tree.tar", "-C", d]),
    ("replay_middle", replay_cmd(store, middle)),
    ("tar_middle", lambda d: ["tar", "-xf", f"{tmp}/p1.tar", "-C", d]),
]
times = {c[0]: [] for c in configs}
first = {}
out["load_replay"] = os.getloadavg()[0]
for rep in range(REPS):  # the store and the archives were just written: all in the page cache
    for name, mk in configs:
        settle()
        d = fresh(f"{name}{rep}")
        if name.startswith("replay"):
            os.rmdir(d)  # replay makes it
        times[name].append(run(mk(d)))
        first.setdefault(name, d)
# the trees of the first round against the real ones: the final tree and p1.tar's
ml = listing(first["tar_middle"])
mid_files = sum(1 for v in ml.values() if v[0] == "f")
mid_bytes = sum(v[2] for v in ml.values() if v[0] == "f")
same_tree(first["tar_last"], final, "tar_last vs the real tree")
same_tree(first["replay_last"], final, "replay_last vs the real tree")
same_tree(first["replay_middle"], first["tar_middle"], "replay_middle vs p1.tar's tree")
out.update({"mid_files": mid_files, "mid_bytes": mid_bytes})

def summary(v, nf, nb):
    m = med([x[0] for x in v])
    return {"s": [round(x[0], 3) for x in v], "median_s": round(m, 3),
            "mb_per_s": round(nb / 1e6 / m, 1), "files_per_s": round(nf / m),
            "user_s": round(med([x[1] for x in v]), 2), "sys_s": round(med([x[2] for x in v]), 2)}

def row(name, r, label=None):
    log(f"{label or name:24}{r['median_s']:9.3f}{min(r['s']):8.3f}{max(r['s']):8.3f}"
        f"{r['mb_per_s']:8.1f}{r['files_per_s']:9d}{r['user_s']:8.2f}{r['sys_s']:8.2f}")

log(f"\n{'':24}{'median s':>9}{'min':>8}{'max':>8}{'MB/s':>8}{'files/s':>9}{'user s':>8}{'sys s':>8}")
for name, _ in configs:
    at_last = name.endswith("last")
    out[name] = summary(times[name], nfiles if at_last else mid_files,
                        nbytes if at_last else mid_bytes)
    row(name, out[name])
for at in ("last", "middle"):
    out[f"ratio_{at}"] = round(out[f"replay_{at}"]["median_s"] / out[f"tar_{at}"]["median_s"], 2)

# ------------------------------------------------------------------ replay without inflation
# The final tree as the snapshot of `ptb record --compress none -- true` stores it (blobs as
# stored deflate blocks: inflating them is a copy and an Adler-32): `ptb replay fs` of that
# store at its last seq rebuilds the same tree through the same blob reads, without decompression.
s0 = f"{tmp}/S0"
settle()
r0 = run([ptb, "record", "--net", "off", "--gpu", "off", "--capture-root", ws,
          "--capture-file-max", "1G", "--capture-total-max", "64G", "--compress", "none",
          "--store", s0, "--", "true"])
last0 = q(s0, "evt.type = run.end")[-1]["seq"]
v = []
for rep in range(REPS):
    settle()
    d = f"{tmp}/replay_level0{rep}"
    outs.append(d)
    v.append(run(replay_cmd(s0, last0)(d)))
    if rep == 0:
        same_tree(d, final, "replay_last (level 0 store) vs the real tree")
out["replay_last_level0"] = summary(v, nfiles, nbytes)
out["replay_last_level0"]["store_bytes"] = sum(os.path.getsize(os.path.join(s0, f))
                                               for f in os.listdir(s0))
out["ratio_last_level0"] = round(out["replay_last_level0"]["median_s"] /
                                 out["tar_last"]["median_s"], 2)
row("replay_last_level0", out["replay_last_level0"], "replay_last, stored as is")
log(f"replay / tar: last {out['ratio_last']}x, middle {out['ratio_middle']}x; from a store of "
    f"stored as is: {out['ratio_last_level0']}x (every rebuilt tree equal to the real one; "
    f"middle: {mid_files} files, {mid_bytes / 1e6:.1f} MB)")

# ------------------------------------------------------------------ the snapshot's cost
# (after the runs above: from here on removing a store costs no timed run anything)
snap = {"snapshot": ["--capture-file-max", "1G", "--capture-total-max", "64G"],
        "snapshot_zlib0": ["--capture-file-max", "1G", "--capture-total-max", "64G",
                           "--compress", "none"],
        "snapshot_hash_only": ["--capture-file-max", "1"],
        "no_snapshot": ["--no-snapshot"]}
st = {k: [] for k in snap}
st["snapshot_zlib0"].append(r0)
sdir = f"{tmp}/S2"
for rep in range(min(REPS, 2)):
    for k, extra in snap.items():
        if k == "snapshot_zlib0" and rep == 0:
            continue
        subprocess.run(["rm", "-rf", sdir], check=True)
        settle()
        r = run([ptb, "record", "--net", "off", "--gpu", "off", "--capture-root", ws] + extra +
                ["--store", sdir, "--", "true"])
        if k == "snapshot" and rep == 0:
            out["snapshot_store_bytes"] = sum(os.path.getsize(os.path.join(sdir, f))
                                              for f in os.listdir(sdir))
            out["snapshot_states"] = len(q(sdir, "evt.type = file.state"))
        st[k].append(r)
subprocess.run(["rm", "-rf", sdir], check=True)
log(f"\n`ptb record --capture-root WS -- true` on the final tree ({nfiles} files, "
    f"{nbytes / 1e6:.1f} MB), median of {len(st['snapshot'])}:")
for k in snap:
    v = st[k]
    m = med([x[0] for x in v])
    out[k] = {"s": [round(x[0], 3) for x in v], "median_s": round(m, 3),
              "user_s": round(med([x[1] for x in v]), 2), "sys_s": round(med([x[2] for x in v]), 2)}
    log(f"{k:20}{m:9.3f} s  (user {out[k]['user_s']:.2f}, sys {out[k]['sys_s']:.2f}; "
        f"{nbytes / 1e6 / m:.0f} MB/s)")
out["snapshot_cost_s"] = round(out["snapshot"]["median_s"] - out["no_snapshot"]["median_s"], 3)
log(f"the snapshot adds {out['snapshot_cost_s']:.3f} s (stored as is: "
    f"{out['snapshot_zlib0']['median_s'] - out['no_snapshot']['median_s']:.3f} s; hashes only: "
    f"{out['snapshot_hash_only']['median_s'] - out['no_snapshot']['median_s']:.3f} s); "
    f"{out.get('snapshot_states')} file.state events, store {out.get('snapshot_store_bytes', 0) / 1e6:.1f} MB")
out["load_end"] = os.getloadavg()[0]
print(json.dumps(out), flush=True)
PY
