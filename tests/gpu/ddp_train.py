#!/usr/bin/env python3
"""Two-GPU proof (tests/gpu/run.sh run2): the small transformer of torch_train.py trained with
DistributedDataParallel over NCCL, one process per GPU, started by torchrun. Each rank prints
one JSON line: rank, pid, device, steps, median step time."""
import json
import os
import statistics
import sys

import torch
import torch.distributed as dist
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_train import LM, train_step  # noqa: E402


def main():
    steps = int(os.environ.get("PTB_DDP_STEPS", "50"))
    dist.init_process_group("nccl")
    rank = dist.get_rank()
    torch.cuda.set_device(rank)
    dev = torch.device("cuda", rank)
    torch.manual_seed(0)
    model = nn.parallel.DistributedDataParallel(LM().to(dev), device_ids=[rank])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    data = torch.randint(0, 256, (32, 129), device=dev)
    times = []
    for _ in range(steps):
        times.append(train_step(model, opt, data)[0])
    print(json.dumps({"rank": rank, "pid": os.getpid(), "device": rank, "steps": steps,
                      "median_step_ms": statistics.median(times[5:]) * 1e3}), flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
