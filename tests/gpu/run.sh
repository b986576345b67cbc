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
#   tests/gpu/run.sh run2 OUT      on a machine with two GPUs: a torchrun DDP run (2 processes,
#                                  NCCL) recorded; kernels of both devices, NCCL kernels included,
#                                  tied to the right process and device.
set -uo pipefail
cd "$(dirname "$0")/../.."
PACK=.gpupack

pack() {
  local b=build-gpupack
  # DT_RPATH (not RUNPATH): also used for the libraries' own dependencies (libpcap -> libdbus)
  cmake -S . -B $b -DCMAKE_BUILD_TYPE=Release -DPTB_BENCH=ON -DPTB_WERROR=OFF \
    "-DCMAKE_EXE_LINKER_FLAGS=-Wl,-rpath,\$ORIGIN/lib -Wl,--disable-new-dtags" >/dev/null || return 1
  cmake --build $b -j"$(nproc)" --target ptb ptbgpu gpu_launches launch_bench bench_gpu_recv || return 1
  rm -rf $PACK && mkdir -p $PACK/lib
  cp $b/runner/ptb $b/recorder/gpu/libptbgpu.so $b/tests/gpu/gpu_launches \
    $b/tests/gpu/launch_bench $b/tests/bench/bench_gpu_recv tests/gpu/torch_train.py \
    tests/gpu/check.py $PACK/
  # every shared library ptb loads, but the C library's own (the GPU machine's are newer)
  ldd $b/runner/ptb | awk '$3 ~ /^\// {print $3}' |
    grep -Ev '/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*|libgcc_s)\.so' |
    while read -r l; do cp -L "$l" $PACK/lib/; done
  # the injection library runs inside CUDA programs: it must need nothing but libc and libdl
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
*) echo "usage: tests/gpu/run.sh pack | run OUT | run2 OUT | rate OUT" >&2; exit 2 ;;
esac
