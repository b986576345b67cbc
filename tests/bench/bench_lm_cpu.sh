#!/usr/bin/env bash
# Training tokens/s on the CPU, ptb's reference model (bench_lm_cpu) beside the same model in
# PyTorch (tests/gpu/torch_lm.py --device cpu; Debian's python3-torch), same configuration and
# thread count, for docs/BENCHMARKS.md. Skipped (77) when PyTorch is not installed.
#   tests/bench/bench_lm_cpu.sh BUILD_DIR [THREADS]
set -u
b=${1:?usage: bench_lm_cpu.sh BUILD_DIR [THREADS]}
threads=${2:-$(nproc)}
here=$(cd "$(dirname "$0")" && pwd)
# Debian's PyTorch is in the system Python's dist-packages (not in a pyenv or venv python3)
py=python3
$py -c 'import torch' 2>/dev/null || py=/usr/bin/python3
$py -c 'import torch' 2>/dev/null || { echo "bench_lm_cpu: no PyTorch (apt-get install python3-torch)"; exit 77; }
# the demo task's model (ptb demo-task), then ptb's default model
while read -r L H C B T N; do
  OMP_NUM_THREADS=$threads "$b/tests/bench/bench_lm_cpu" --layers "$L" --heads "$H" --channels "$C" \
    --batch "$B" --seq "$T" --steps "$N" || exit 1
  $py "$here/../gpu/torch_lm.py" --device cpu --threads "$threads" --layers "$L" --heads "$H" \
    --channels "$C" --batch "$B" --seq "$T" --steps "$N" || exit 1
done <<'CONFIGS'
2 4 64 32 24 100
4 4 128 8 128 25
CONFIGS
