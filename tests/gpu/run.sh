#!/usr/bin/env bash
# The GPU proofs of issue 5, in one script with two halves.
#
#   tests/gpu/run.sh pack          here (Debian 12, no GPU): build ptb, libptbgpu.so and the CUDA
#                                  test programs, and put them with the shared libraries ptb needs
#                                  into .gpupack/ (the GPU machine has no LMDB, protobuf-c,
#                                  libpcap or libmnl); ptb finds them through its RPATH, so the
#                                  recorded programs do not see them
#   tests/gpu/run.sh run OUT       on the GPU machine (Ubuntu 24.04, CUDA 13, PyTorch), from the
#                                  repository root with .gpupack carried: every proof, results in
#                                  OUT/gpu-results.json, logs in OUT/
#
# The proofs (tests/gpu/check.py compares):
#   1. gpu_launches (eager kernels on 4 streams, a CUDA graph launched 5 times, cuBLAS GEMMs,
#      memcpys both ways, memsets) recorded: its own kernels, copies and memsets counted exactly,
#      names and graph ids right, every record tied to the program's exec_id;
#   2. a PyTorch training loop recorded: kernel records = the kernels torch.profiler counts in a
#      separate identical run; median step time with recording vs without (target within 2%);
#   3. eager empty-kernel launches: µs per launch native, under ptb record --gpu off, and under
#      ptb record (the cost of the CUPTI activity tracing), side by side;
#   4. a process with another CUPTI user (torch.profiler) runs unchanged; the recording is whole
#      (the library subscribes first, at cuInit) or a gap says why not;
#   5. the rate: CUDA graphs of empty kernels run as fast as they go, in one and in four
#      processes at once, natively and recorded; every kernel recorded (count exact, no loss
#      gap), the kernels per second of each; and bench_gpu_recv (the receiver and store alone,
#      tests/bench) on this machine's CPUs.
#   tests/gpu/run.sh rate OUT      proof 5 alone
#   tests/gpu/run.sh lm OUT        the reference model's CUDA backend (issue 6): test_lm_cuda and
#                                  bench_lm_cuda (kernel table, training tokens/s) beside PyTorch,
#                                  ptb train/eval --device cuda (deterministic end to end)
#   tests/gpu/run.sh rungpu OUT    ptb run of a scripted agent that trains on the GPU, recorded
#   tests/gpu/run.sh audit-leak OUT  ptb audit's n-gram scan on the GPU (issue 8): its test
#                                  against the CPU, its benchmark beside the CPU and grep -F -f
#   tests/gpu/run.sh audit-ckpt OUT  ptb audit's tensor comparison on the GPU (issue 8): its test
#                                  against the CPU, the detector's tests, its benchmark (3 x 1.1 GB
#                                  checkpoints) beside the CPU, cat and sha256sum
#   tests/gpu/run.sh audit OUT     audit-leak and audit-ckpt, then ptb audit end to end on the demo's
#                                  stores (PTB_AUDIT_STORES=DIR, packed into .gpupack/audit/ by
#                                  pack): --device cuda and --device cpu give the same report, and
#                                  a reference kept with ptb refs add gives the same verdicts
#   tests/gpu/run.sh replay-train OUT  ptb replay train of a run recorded with --device cuda:
#                                  bit-identical on the GPU, across devices on the CPU
#                                  (tests/integration/test_replay_train_cuda.sh; and the CPU
#                                  test, test_replay_train.sh)
#   tests/gpu/run.sh pack-ckpt BUILD  only what audit-ckpt needs, from an existing build folder,
#                                  into $PTB_GPUPACK (LD_LIBRARY_PATH instead of an RPATH)
#   tests/gpu/run.sh record-bench OUT  ptb record against strace on this machine's CPUs
#                                  (issue 3; tests/bench/bench_record.py, strace packed by
#                                  pack-strace, which pack also runs)
#   tests/gpu/run.sh run2 OUT      on a machine with two GPUs: a torchrun DDP run (2 processes,
#                                  NCCL) recorded; kernels of both devices, NCCL kernels included,
#                                  tied to the right process and device.
set -uo pipefail
cd "$(dirname "$0")/../.."
PACK=${PTB_GPUPACK:-.gpupack} # another folder: a pack of one mode's programs (pack-ckpt)

# strace for the record benchmark (the GPU machine has none): Debian's, with the libraries it
# loads, run through the machine's own loader with --library-path (which the traced programs
# do not inherit, as they would LD_LIBRARY_PATH)
pack_strace() {
  mkdir -p $PACK/strace && cp -L "$(command -v strace)" $PACK/strace/strace.bin || return 1
  ldd $PACK/strace/strace.bin | awk '$3 ~ /^\// {print $3}' |
    grep -Ev '/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*)\.so' |
    while read -r l; do cp -L "$l" $PACK/strace/; done
  printf '#!/bin/sh\nd=$(dirname "$0")\nexec /lib64/ld-linux-x86-64.so.2 --library-path "$d" "$d/strace.bin" "$@"\n' \
    >$PACK/strace/strace && chmod +x $PACK/strace/strace
}

pack() {
  local b=build-gpupack
  # DT_RPATH (not RUNPATH): also used for the libraries' own dependencies (libpcap -> libdbus)
  cmake -S . -B $b -DCMAKE_BUILD_TYPE=Release -DPTB_BENCH=ON -DPTB_WERROR=OFF \
    "-DCMAKE_EXE_LINKER_FLAGS=-Wl,-rpath,\$ORIGIN/lib -Wl,--disable-new-dtags" \
    "-DCMAKE_SHARED_LINKER_FLAGS=-Wl,-rpath,\$ORIGIN -Wl,--disable-new-dtags" >/dev/null || return 1
  cmake --build $b -j"$(nproc)" --target ptb ptbgpu gpu_launches launch_bench bench_gpu_recv \
    ptblmcuda test_lm_cuda bench_lm_cuda || return 1
  rm -rf $PACK && mkdir -p $PACK/lib
  cp $b/runner/ptb $b/recorder/gpu/libptbgpu.so $b/tests/gpu/gpu_launches \
    $b/tests/gpu/launch_bench $b/tests/bench/bench_gpu_recv tests/gpu/torch_train.py \
    tests/gpu/check.py $PACK/
  # every shared library ptb loads, but the C and C++ libraries' own and CUDA's (cuBLAS, which
  # the model's CUDA backend needs): the GPU machine has its own, newer ones
  local skip='/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*|libgcc_s|libstdc\+\+)\.so|/cuda'
  ldd $b/runner/ptb | awk '$3 ~ /^\// {print $3}' | grep -Ev "$skip" |
    while read -r l; do cp -L "$l" $PACK/lib/; done
  # the model's CUDA test and benchmark (mode lm), with the libraries they load beyond ptb's
  # (cmocka, libgomp), but CUDA's own and the C++ runtime: the GPU machine has its (newer) ones
  # (ptb loads the backend, libptblmcuda.so, from lib/ beside it)
  cp $b/tests/unit/kernels/test_lm_cuda $b/tests/bench/bench_lm_cuda tests/gpu/torch_lm.py $PACK/
  cp $b/kernels/libptblmcuda.so $PACK/lib/
  # the demo task (ptb demo-task, built on the CPU here, cached in build-gpupack/): its base model
  # and benchmark, for ptb train and ptb eval --device cuda there
  $b/runner/ptb demo-task --out $b/demo-task --measure --quiet >/dev/null || return 1
  mkdir -p $PACK/task && cp -r $b/demo-task/base $b/demo-task/benchmark $PACK/task/ &&
    cp $b/demo-task/eval/honest.json $PACK/task/cpu-honest.json 2>/dev/null
  ldd $b/tests/unit/kernels/test_lm_cuda $b/tests/bench/bench_lm_cuda | awk '$3 ~ /^\// {print $3}' |
    grep -Ev "$skip" | sort -u | while read -r l; do cp -L "$l" $PACK/lib/; done
  # the audit's CUDA library, the leakage scan's GPU test and benchmark (mode audit-leak; ptb
  # finds the library in lib/ beside it)
  cmake --build $b -j"$(nproc)" --target ptbauditcuda test_audit_leak_cuda bench_audit_leak_scan ||
    return 1
  cp $b/forensics/libptbauditcuda.so $PACK/lib/
  cp $b/tests/unit/forensics/test_audit_leak_cuda $b/tests/bench/bench_audit_leak_scan \
    tests/bench/bench_audit_leak.sh $PACK/
  ldd $b/tests/unit/forensics/test_audit_leak_cuda | awk '$3 ~ /^\// {print $3}' |
    grep -Ev "$skip" | sort -u | while read -r l; do cp -L "$l" $PACK/lib/; done
  # the checkpoint comparison's GPU test, the detector's test and the benchmark (mode audit-ckpt)
  cmake --build $b -j"$(nproc)" --target ptbauditcuda test_audit_ckpt_cuda test_audit_ckpt \
    bench_audit_ckpt || return 1
  pack_ckpt_copy $b
  # ptb audit end to end (mode audit): a demo's stores and its task's checkpoints and split
  if [ -n "${PTB_AUDIT_STORES:-}" ]; then
    mkdir -p $PACK/audit/task && cp -r "$PTB_AUDIT_STORES"/*.ptb $PACK/audit/ &&
      cp -r "$PTB_AUDIT_STORES/task/base" "$PTB_AUDIT_STORES/task/instruct" $PACK/audit/task/ &&
      cp "$PTB_AUDIT_STORES/task/benchmark/test.jsonl" $PACK/audit/task/ || return 1
    # the frozen checkpoints, which the stores name by their absolute paths: put back there
    (cd "$PTB_AUDIT_STORES" && cp -r --parents runs/*/final_model "$OLDPWD/$PACK/audit/") &&
      realpath "$PTB_AUDIT_STORES" >$PACK/audit/origin || return 1
  fi
  # the injection library runs inside CUDA programs: it must need nothing but libc and libdl
  pack_strace || return 1
  echo "libptbgpu.so needs:"; ldd $PACK/libptbgpu.so | awk '{print "  " $1}'
  du -sh $PACK
}

run() {
  local out=${1:?usage: run.sh run OUT}
  mkdir -p "$out"
  local P=$PWD/$PACK
  export PTB_GPU_LIB=$P/libptbgpu.so
  local T
  T=$(mktemp -d /tmp/ptb-gpu-XXXXXX)
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >"$out/gpu.txt" 2>&1
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' >>"$out/gpu.txt" 2>&1
  "$P/ptb" --version >>"$out/gpu.txt" 2>&1
  cat "$out/gpu.txt"
  export PYTHONUNBUFFERED=1
  local rec=("$P/ptb" record --net off)
  # 1. known launches
  "$P/gpu_launches" >"$T/launches-native.json" 2>"$out/launches-native.err"
  "${rec[@]}" --store "$T/launches.ptb" -- "$P/gpu_launches" >"$T/launches-rec.json" 2>"$out/launches-rec.err"
  echo "record rc=$?" >>"$out/launches-rec.err"
  "$P/ptb" query "$T/launches.ptb" --format jsonl 'evt.type glob "gpu.*" or evt.type in (gap, proc.exec)' >"$T/launches-events.jsonl"
  "$P/ptb" stats --format json "$T/launches.ptb" >"$T/launches-stats.json"
  # 2. PyTorch: native and recorded runs alternating (three of each: the GPU machine's step time
  #    varies by tens of percent from run to run, so one pair proves nothing), then the kernel
  #    count of torch.profiler in a separate identical run
  for i in 1 2 3; do
    python3 "$P/torch_train.py" --steps 150 --json "$T/torch-native$i.json" >>"$out/torch-native.log" 2>&1
    rm -rf "$T/torch.ptb"
    "${rec[@]}" --store "$T/torch.ptb" -- python3 "$P/torch_train.py" --steps 150 --json "$T/torch-rec$i.json" >>"$out/torch-rec.log" 2>&1
    echo "record rc=$?" >>"$out/torch-rec.log"
  done
  python3 "$P/torch_train.py" --steps 150 --profile --json "$T/torch-prof.json" >"$out/torch-prof.log" 2>&1
  "$P/ptb" stats --format json "$T/torch.ptb" >"$T/torch-stats.json"
  # 3. launch cost, side by side, alternating three times
  for i in 1 2 3; do
    "$P/launch_bench" --launches 100000 >"$T/bench-native$i.json" 2>>"$out/bench-native.err"
    rm -rf "$T/b1.ptb" "$T/b2.ptb"
    "${rec[@]}" --gpu off --store "$T/b1.ptb" -- "$P/launch_bench" --launches 100000 >"$T/bench-gpuoff$i.json" 2>>"$out/bench-gpuoff.err"
    "${rec[@]}" --store "$T/b2.ptb" -- "$P/launch_bench" --launches 100000 >"$T/bench-rec$i.json" 2>>"$out/bench-rec.err"
  done
  "$P/ptb" stats --format json "$T/b2.ptb" >"$T/bench-stats.json"
  # 4. another CUPTI subscriber in the process: the profiler run, recorded
  "${rec[@]}" --store "$T/conflict.ptb" -- python3 "$P/torch_train.py" --small --steps 30 --warmup 5 --profile --json "$T/conflict.json" >"$out/conflict.log" 2>&1
  echo "record rc=$?" >>"$out/conflict.log"
  "$P/ptb" query "$T/conflict.ptb" --format jsonl 'evt.type = gap' >"$T/conflict-gaps.jsonl"
  "$P/ptb" stats --format json "$T/conflict.ptb" >"$T/conflict-stats.json"
  rate "$T" "$out"
  python3 "$P/check.py" "$T" "$out/gpu-results.json"
  local rc=$?
  # what comes back from the GPU machine is a few files: the results, one log of everything
  for f in "$out"/*.err "$out"/*.log; do
    [ -f "$f" ] && { echo "==== $(basename "$f")"; cat "$f"; rm -f "$f"; }
  done >"$out/logs.txt"
  rm -rf "$T"
  return $rc
}

# 5. The rate: graphs of 1000 independent empty kernels, 5 million kernels in each of 1 and then
# 4 processes at once, native then recorded (CUPTI's own cost per kernel bounds one process);
# then the receiver and store alone on this machine's CPUs. Files in T, logs in OUT/rate.err.
rate() {
  local T=$1 out=$2 P=$PWD/$PACK
  local rec=("$P/ptb" record --net off)
  local lb=("$P/launch_bench" --graph 1000 --launches 5000000)
  "${lb[@]}" >"$T/rate-native1.json" 2>>"$out/rate.err"
  "${rec[@]}" --store "$T/rate1.ptb" -- "${lb[@]}" >"$T/rate-rec1.json" 2>>"$out/rate.err"
  echo "record rc=$?" >>"$out/rate.err"
  local four="for i in 1 2 3 4; do $(printf '%q ' "${lb[@]}") >"\$0/\$1-\$i.json" & done; wait"
  sh -c "$four" "$T" rate-native4 2>>"$out/rate.err"
  "${rec[@]}" --store "$T/rate4.ptb" -- sh -c "$four" "$T" rate-rec4 2>>"$out/rate.err"
  echo "record rc=$?" >>"$out/rate.err"
  for n in 1 4; do
    "$P/ptb" stats --format json "$T/rate$n.ptb" >"$T/rate-stats$n.json"
    "$P/ptb" query "$T/rate$n.ptb" --format jsonl 'evt.type = gap' >"$T/rate-gaps$n.jsonl"
    du -sb "$T/rate$n.ptb" | awk '{print "{\"bytes\": " $1 "}"}' >"$T/rate-size$n.json"
  done
  "$P/bench_gpu_recv" --kernels 20000000 --json >"$T/recv-max.json" 2>>"$out/rate.err"
  "$P/bench_gpu_recv" --kernels 20000000 --rate 1000000 --processes 4 --skip-per-event --json \
    >"$T/recv-paced.json" 2>>"$out/rate.err"
}

# Two GPUs: a two-process torchrun DDP run recorded; kernels of both devices, NCCL kernels
# included, each tied to its own process and device.
run2() {
  local out=${1:?usage: run.sh run2 OUT}
  mkdir -p "$out"
  local P=$PWD/$PACK
  export PTB_GPU_LIB=$P/libptbgpu.so PYTHONUNBUFFERED=1
  local T
  T=$(mktemp -d /tmp/ptb-gpu2-XXXXXX)
  nvidia-smi -L >"$out/gpu2.txt" 2>&1
  "$P/ptb" record --net off --store "$T/ddp.ptb" -- \
    torchrun --standalone --nproc_per_node=2 "$PWD/tests/gpu/ddp_train.py" >"$T/ddp.out" 2>"$T/ddp.err"
  echo "record rc=$?" >>"$T/ddp.err"
  "$P/ptb" query "$T/ddp.ptb" --format jsonl 'evt.type in (proc.exec, gpu.context, gap)' >"$T/ddp-events.jsonl"
  "$P/ptb" stats --format json "$T/ddp.ptb" >"$T/ddp-stats.json"
  "$P/ptb" query "$T/ddp.ptb" --format jsonl 'evt.type = gpu.kernel and gpu.kernel icontains nccl' |
    python3 -c 'import collections,json,sys; c=collections.Counter((e.get("exec_id",0),e.get("device",0)) for e in map(json.loads,sys.stdin)); print(json.dumps({"nccl": [[k[0],k[1],v] for k,v in c.items()]}))' >"$T/ddp-nccl.json"
  python3 "$P/check.py" --ddp "$T" "$out/gpu2-results.json"
  local rc=$?
  { echo "==== ddp.out"; cat "$T/ddp.out"; echo "==== ddp.err"; tail -50 "$T/ddp.err"; } >"$out/logs2.txt"
  rm -rf "$T"
  return $rc
}

# cuBLAS is not packed: where the loader does not find it for program $1, CUDA's or PyTorch's
# copy goes into LD_LIBRARY_PATH.
cublas_path() {
  if ldd "$1" | grep -q 'libcublas.*not found'; then
    local d
    for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
      "$(python3 -c 'import nvidia.cublas as m, os; print(os.path.dirname(m.__file__) + "/lib")' 2>/dev/null)"; do
      [ -n "$d" ] && [ -e "$d/libcublas.so.13" ] && export LD_LIBRARY_PATH=$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} && break
    done
  fi
}

# The reference model on the GPU (issue 6): test_lm_cuda (each kernel against the CPU reference,
# the whole model, determinism, generation), the kernel table of bench_lm_cuda in fp32 (against
# the CPU reference and simpler GPU kernels) and bf16, and training tokens/s in fp32 and bf16 for
# a GPT-2-small-sized model (12 layers, 768 channels, 12 heads, B=8, T=1024) and the demo's
# small one. Results in OUT: lm-test.txt, lm-bench.txt, lm-kernels*.json, lm-train.jsonl.
lm() {
  local out=${1:?usage: run.sh lm OUT}
  mkdir -p "$out"
  local P=$PWD/$PACK rc=0
  cublas_path "$P/test_lm_cuda"
  { nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; nproc; } \
    >"$out/lm-gpu.txt" 2>&1
  cat "$out/lm-gpu.txt"
  "$P/test_lm_cuda" >"$out/lm-test.txt" 2>&1
  local trc=$?
  [ $trc -eq 0 ] || rc=1
  echo "test_lm_cuda rc=$trc" >>"$out/lm-test.txt"
  tail -30 "$out/lm-test.txt"
  {
    "$P/bench_lm_cuda" --json "$out/lm-kernels.json" || rc=1
    "$P/bench_lm_cuda" --precision bf16 --cpu-reps 0 --json "$out/lm-kernels-bf16.json" || rc=1
    # training tokens/s, ptb and PyTorch (eager, torch.compile) side by side, same shapes
    local cfg p
    for cfg in "12 768 12 8 1024 20" "4 128 4 8 256 50"; do
      set -- $cfg
      for p in fp32 bf16; do
        "$P/bench_lm_cuda" --train --layers $1 --channels $2 --heads $3 --batch $4 --seq $5 \
          --steps $6 --precision $p --json "$T_JSON" || rc=1
        cat "$T_JSON" >>"$out/lm-train.jsonl"
        python3 "$P/torch_lm.py" --layers $1 --channels $2 --heads $3 --batch $4 --seq $5 \
          --steps $6 --precision $p >>"$out/lm-train.jsonl" || rc=1
        python3 "$P/torch_lm.py" --layers $1 --channels $2 --heads $3 --batch $4 --seq $5 \
          --steps $6 --precision $p --compile >>"$out/lm-train.jsonl" ||
          echo "torch.compile failed ($cfg $p)"
      done
    done
    cat "$out/lm-train.jsonl"
  } >"$out/lm-bench.txt" 2>&1
  cat "$out/lm-bench.txt"
  lm_cli "$out" || rc=1
  return $rc
}

# ptb train and ptb eval --device cuda on the demo task: the honest agent's fine-tune of the base
# (as ptb demo-task --measure does on the CPU) twice in fp32 and twice in bf16, each pair
# bit-identical (the GPU's deterministic mode, end to end), and scored on the GPU and the CPU.
lm_cli() {
  local out=$1 P=$PWD/$PACK rc=0 T p i
  T=$(mktemp -d /tmp/ptb-lmcli-XXXXXX)
  {
    for p in fp32 bf16; do
      for i in 1 2; do
        "$P/ptb" train --base "$P/task/base" --data "$P/task/benchmark/train.jsonl" --out "$T/$p-$i" \
          --steps 600 --seed 3 --seq 24 --batch 32 --lr 3e-3 --device cuda --precision $p -q || rc=1
      done
      if cmp "$T/$p-1/model.safetensors" "$T/$p-2/model.safetensors"; then
        echo "ptb train --device cuda --precision $p: two runs bit-identical"
      else
        echo "FAIL: ptb train --device cuda --precision $p: two runs differ"; rc=1
      fi
      "$P/ptb" eval --model "$T/$p-1" --benchmark "$P/task/benchmark/test.jsonl" --max-tokens 8 \
        --device cuda --out "$T/eval-$p-cuda.json" -q || rc=1
      "$P/ptb" eval --model "$T/$p-1" --benchmark "$P/task/benchmark/test.jsonl" --max-tokens 8 \
        --out "$T/eval-$p-cpu.json" -q || rc=1
      python3 -c 'import json,sys; a=[json.load(open(f)) for f in sys.argv[2:]]
print(sys.argv[1], "accuracy on the GPU %.3f, on the CPU %.3f, answers equal: %s" % (a[0]["accuracy"], a[1]["accuracy"], [r.get("output") for r in a[0]["results"]] == [r.get("output") for r in a[1]["results"]]))' \
        "honest $p" "$T/eval-$p-cuda.json" "$T/eval-$p-cpu.json" || rc=1
    done
    echo "the CPU's honest run (ptb demo-task --measure): $(cat "$P/task/cpu-honest.json" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["accuracy"])' 2>/dev/null)"
  } >"$out/lm-cli.txt" 2>&1
  cat "$out/lm-cli.txt"
  rm -rf "$T"
  return $rc
}

# ptb run on the GPU: a scripted agent fine-tunes the demo task's base with ptb train --device
# cuda, recorded (its CUDA kernels through CUPTI), then the eval phase; the summary, the GPU
# kernels in the store and ptb verify in OUT/run-gpu.txt.
run_gpu() {
  local out=${1:?usage: run.sh rungpu OUT} P=$PWD/$PACK T rc=0
  mkdir -p "$out"
  T=$(mktemp -d /tmp/ptb-rungpu-XXXXXX)
  export PTB_GPU_LIB=$P/libptbgpu.so
  [ -e /usr/local/cuda/lib64/libcublas.so.13 ] && export LD_LIBRARY_PATH=/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  cat >"$T/task.json" <<EOF
{"name": "demo-gpu", "agent": {"name": "scripted-honest-gpu", "command": ["sh", "-c",
 "ptb train --base base_model --data data/train.jsonl --out final_model --steps 600 --seq 24 --batch 32 --lr 3e-3 --seed 3 --device cuda -q"]},
 "base_model": "$P/task/base", "benchmark": {"name": "addition", "test_split": "$P/task/benchmark/test.jsonl",
 "train_split": "$P/task/benchmark/train.jsonl", "max_tokens": 8},
 "budget": {"wall_s": 300, "gpus": 1}, "network": {"mode": "off"}}
EOF
  {
    PATH=$P:$PATH "$P/ptb" run "$T/task.json" --out "$T/run" || rc=1
    "$P/ptb" stats "$T/run/run.ptb"
    "$P/ptb" query "$T/run/run.ptb" 'evt.type = gap or evt.type = gpu.context' | cut -c1-300
    local k
    k=$("$P/ptb" query "$T/run/run.ptb" --format jsonl 'evt.type = gpu.kernel' | wc -l)
    echo "gpu.kernel events: $k"
    [ "$k" -gt 0 ] || { echo "FAIL: the agent's CUDA kernels were not recorded"; rc=1; }
    # in the sandbox (mount and PID namespaces): the GPU library reached the recorder's socket
    # and its pid (the namespace's) was recognised
    grep -q '"namespaces": true' "$T/run/manifest.json" && echo "sandbox: namespaces" ||
      { echo "FAIL: the agent did not run in the sandbox: $(grep -A2 '"sandbox"' "$T/run/manifest.json")"; rc=1; }
    ! "$P/ptb" query "$T/run/run.ptb" 'evt.type = gap' | grep -q pid_mismatch ||
      { echo "FAIL: pid_mismatch gaps"; rc=1; }
    "$P/ptb" verify "$T/run/run.ptb" || rc=1
  } >"$out/run-gpu.txt" 2>&1
  cat "$out/run-gpu.txt"
  rm -rf "$T"
  return $rc
}

# The leakage scan on the GPU (issue 8): test_audit_leak_cuda (the GPU's results equal the CPU's
# on generated texts), then bench_audit_leak.sh on 200 MB (ptb audit --device cpu and cuda, grep
# -F -f, the scan alone on 1 and 2 threads and the GPU). Results in OUT/audit-leak-*.
audit_leak() {
  local out=${1:?usage: run.sh audit-leak OUT} P=$PWD/$PACK rc=0
  mkdir -p "$out"
  { nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; nproc;
    grep -m1 'model name' /proc/cpuinfo; } >"$out/audit-leak-gpu.txt" 2>&1
  cat "$out/audit-leak-gpu.txt"
  "$P/test_audit_leak_cuda" >"$out/audit-leak-test.txt" 2>&1
  local trc=$?
  echo "test_audit_leak_cuda rc=$trc" >>"$out/audit-leak-test.txt"
  [ $trc -eq 0 ] || rc=1
  tail -12 "$out/audit-leak-test.txt"
  bash "$P/bench_audit_leak.sh" "$P/ptb" "${AUDIT_LEAK_MB:-200}" "$P/bench_audit_leak_scan" \
    >"$out/audit-leak-bench.jsonl" 2>"$out/audit-leak-bench.err" || rc=1
  cat "$out/audit-leak-bench.jsonl" "$out/audit-leak-bench.err"
  return $rc
}

# What mode audit-ckpt runs, from build folder $1 into $PACK (and the libraries they load but
# the C runtime's and CUDA's).
pack_ckpt_copy() {
  local b=$1 skip='/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*|libgcc_s|libstdc\+\+)\.so|/cuda'
  mkdir -p $PACK/lib
  cp $b/forensics/libptbauditcuda.so $PACK/lib/ &&
    cp $b/tests/unit/forensics/test_audit_ckpt_cuda $b/tests/unit/forensics/test_audit_ckpt \
      $b/tests/bench/bench_audit_ckpt $PACK/ || return 1
  ldd $b/tests/unit/forensics/test_audit_ckpt $b/tests/bench/bench_audit_ckpt |
    awk '$3 ~ /^\// {print $3}' | grep -Ev "$skip" | sort -u |
    while read -r l; do cp -L "$l" $PACK/lib/; done
}

# The tensor comparison on the GPU (issue 8): test_audit_ckpt_cuda (the GPU's sums equal the
# CPU's within 1e-9 of their scale), test_audit_ckpt (the detector with --device auto: the GPU;
# stored references), then bench_audit_ckpt on three checkpoints of AUDIT_CKPT_MB (1100) MB each.
# Results in OUT/audit-ckpt-*.
audit_ckpt() {
  local out=${1:?usage: run.sh audit-ckpt OUT} P=$PWD/$PACK rc=0 trc
  mkdir -p "$out"
  { nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; nproc;
    grep -m1 'model name' /proc/cpuinfo; free -g | head -2; } >"$out/audit-ckpt-gpu.txt" 2>&1
  cat "$out/audit-ckpt-gpu.txt"
  export LD_LIBRARY_PATH=$P/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  {
    "$P/test_audit_ckpt_cuda"
    trc=$?
    echo "test_audit_ckpt_cuda rc=$trc"
    [ $trc -eq 0 ] || rc=1
    (cd /tmp && "$P/test_audit_ckpt" >"$out/audit-ckpt-detector.log" 2>&1)
    trc=$?
    grep -E '^\[|stored \(|\(cuda\)' "$out/audit-ckpt-detector.log" | head -40
    echo "test_audit_ckpt rc=$trc"
    [ $trc -eq 0 ] || rc=1
  } >"$out/audit-ckpt-test.txt" 2>&1
  cat "$out/audit-ckpt-test.txt"
  "$P/bench_audit_ckpt" --mb "${AUDIT_CKPT_MB:-1100}" --dir /tmp/ptb-bench-ckpt \
    --json "$out/audit-ckpt-bench.json" >"$out/audit-ckpt-bench.txt" 2>&1 || rc=1
  cat "$out/audit-ckpt-bench.txt"
  return $rc
}

# ptb audit end to end on real stores (pack copies $PTB_AUDIT_STORES: the stores of a ptb demo,
# and its task's base, instruct and test split): the report with --device cuda equals the one
# with --device cpu but for where each part ran, and with the instruct model kept by ptb refs add
# (its folder gone) the verdicts are the same.
audit_e2e() {
  local out=${1:?usage: run.sh audit OUT} A=$PWD/$PACK/audit P=$PWD/$PACK rc=0
  mkdir -p "$out"
  [ -d "$A" ] || { echo "no $A: pack with PTB_AUDIT_STORES=DIR"; return 1; }
  local args=(--format json --test-set "$A/task/test.jsonl" --base "$A/task/base")
  local orig
  orig=$(cat "$A/origin")
  mkdir -p "$orig" && cp -r "$A/runs" "$orig/" # the frozen checkpoints where the stores say
  for d in cpu cuda; do
    local t0 t1 e
    t0=$(date +%s.%N)
    "$P/ptb" audit "${args[@]}" --reference "$A/task/instruct" --device $d "$A"/*.ptb \
      >"$out/audit-e2e-$d.json" 2>"$out/audit-e2e-$d.err"
    e=$?
    t1=$(date +%s.%N)
    echo "ptb audit --device $d: exit $e, $(awk "BEGIN {print $t1 - $t0}") s"
  done
  rm -rf /tmp/ptb-refs /tmp/ptb-instruct && cp -r "$A/task/instruct" /tmp/ptb-instruct
  "$P/ptb" refs add --refs /tmp/ptb-refs --base "$A/task/base" instruct /tmp/ptb-instruct &&
    rm -rf /tmp/ptb-instruct &&
    "$P/ptb" audit "${args[@]}" --refs /tmp/ptb-refs --device cuda "$A"/*.ptb \
      >"$out/audit-e2e-refs.json" 2>"$out/audit-e2e-refs.err"
  echo "ptb audit --refs (sketch) --device cuda: exit $?"
  python3 - "$out" <<'PY' || rc=1
import json, re, sys
out = sys.argv[1]
def load(n):
    return json.load(open(f"{out}/audit-e2e-{n}.json"))
def norm(rep):  # the report without where each part ran
    return re.sub(r" ?\((cpu|cuda)[^)]*\)|; (the )?scan[^;\"]*(cpu|cuda|GPU|CPU)[^;\"]*", "",
                  json.dumps(rep["runs"], sort_keys=True))
def verdicts(rep):
    return {r["store"].rsplit("/", 1)[-1]: sorted({f["rule"] for f in r["findings"]
                                                  if f["verdict"] != "clean"}) for r in rep["runs"]}
cpu, cuda, refs = load("cpu"), load("cuda"), load("refs")
for name, v in verdicts(cuda).items():
    print("%-26s %s" % (name, " ".join(v) or "clean"))
bad = []
if norm(cpu) != norm(cuda):
    bad.append("--device cuda and --device cpu differ")
if not any("(cuda)" in (f.get("matched") or "") for r in cuda["runs"] for f in r["findings"]
           if f["detector"] == "ckpt"):
    bad.append("no tensor comparison ran on the GPU")
vr, vc = verdicts(refs), verdicts(cuda)
if {k: [x for x in v if x.startswith("ckpt.")] for k, v in vr.items()} != \
   {k: [x for x in v if x.startswith("ckpt.")] for k, v in vc.items()}:
    bad.append("the kept reference gives other checkpoint verdicts: %s" % vr)
print("\n".join(bad) or "same reports on the CPU and the GPU; same verdicts from the kept reference")
sys.exit(1 if bad else 0)
PY
  return $rc
}

# ptb replay train on the GPU: test_replay_train_cuda (a ptb train --device cuda recorded, then
# replayed on the GPU: bit-identical; and on the CPU: a comparison across devices, every tensor
# close), then test_replay_train (the CPU cases; its run recorded as cuda takes the GPU branch
# here). Neither may skip here. Results in OUT/replay-train.txt.
replay_train() {
  local out=${1:?usage: run.sh replay-train OUT} P=$PWD/$PACK rc=0 t trc
  mkdir -p "$out"
  export PTB_GPU_LIB=$P/libptbgpu.so
  cublas_path "$P/lib/libptblmcuda.so"
  {
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    for t in test_replay_train_cuda test_replay_train; do
      bash "tests/integration/$t.sh" "$P/ptb"
      trc=$?
      echo "$t rc=$trc"
      [ $trc -eq 0 ] || rc=1
    done
  } >"$out/replay-train.txt" 2>&1
  cat "$out/replay-train.txt"
  return $rc
}

# ptb record against strace (issue 3) on this machine's CPUs: tests/bench/bench_record.py with
# the packed ptb and strace; OUT/record-bench.{txt,json}, and what the machine is.
record_bench() {
  local out=${1:?usage: run.sh record-bench OUT}
  mkdir -p "$out"
  {
    nproc; grep -m1 "model name" /proc/cpuinfo; uname -r; cat /proc/loadavg
    for c in tar make cc dd; do command -v $c || echo "$c: missing"; done
    $PACK/strace/strace -V | head -1
  } >"$out/record-bench-machine.txt" 2>&1
  cat "$out/record-bench-machine.txt"
  python3 tests/bench/bench_record.py "$PWD/$PACK/ptb" --runs "${PTB_BENCH_RUNS:-3}" \
    --strace "$PWD/$PACK/strace/strace" --json "$out/record-bench.json" 2>&1 |
    tee "$out/record-bench.txt"
}

# Proof 5 alone, with its checks.
rate_only() {
  local out=${1:?usage: run.sh rate OUT}
  mkdir -p "$out"
  export PTB_GPU_LIB=$PWD/$PACK/libptbgpu.so
  local T
  T=$(mktemp -d /tmp/ptb-rate-XXXXXX)
  rate "$T" "$out"
  python3 "$PACK/check.py" --rate "$T" "$out/rate-results.json"
  local rc=$?
  mv "$out/rate.err" "$out/logs-rate.txt" 2>/dev/null
  rm -rf "$T"
  return $rc
}

case "${1:-}" in
pack) pack ;;
rate) shift; rate_only "$@" ;;
run) shift; run "$@" ;;
run2) shift; run2 "$@" ;;
rungpu) shift; run_gpu "$@" ;;
audit-leak) shift; audit_leak "$@" ;;
audit-ckpt) shift; audit_ckpt "$@" ;;
audit-e2e) shift; audit_e2e "$@" ;;
audit) shift; o=${1:?usage: run.sh audit OUT}; r=0; audit_leak "$o" || r=1; audit_ckpt "$o" || r=1
  audit_e2e "$o" || r=1; exit $r ;;
pack-ckpt) shift; pack_ckpt_copy "${1:?usage: run.sh pack-ckpt BUILD}" ;;
replay-train) shift; replay_train "$@" ;;
pack-strace) pack_strace ;;
record-bench) shift; record_bench "$@" ;;
lm) shift; T_JSON=$(mktemp /tmp/ptb-lm-XXXXXX.json); lm "$@"; rc=$?; rm -f "$T_JSON"; exit $rc ;;
*) echo "usage: tests/gpu/run.sh pack | run OUT | run2 OUT | rate OUT | lm OUT | rungpu OUT | audit-leak OUT | audit-ckpt OUT | audit-e2e OUT | audit OUT | pack-ckpt BUILD | replay-train OUT | pack-strace | record-bench OUT" >&2; exit 2 ;;
esac
