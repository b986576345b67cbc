#!/usr/bin/env python3
"""A real PyTorch training loop for the GPU proofs (tests/gpu/run.sh): a decoder-only
transformer (8 layers of width 1024, context 256, batch 32; --small: 4 of 256, context 128)
trained for --steps steps on random tokens, on one GPU.

  torch_train.py --steps N [--profile] [--json FILE]

Prints (and writes with --json) the median step time after --warmup steps. With --profile, the
whole loop runs under torch.profiler with CUDA activities, and the number of CUDA kernel events
the profiler saw is reported: the count ptb's record of an identical run must match. The model
is deterministic in its launches (same shapes every step), so two runs launch the same kernels.
"""
import argparse
import json
import re
import statistics
import time

import torch
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x, mask):
        h = self.ln1(x)
        a, _ = self.attn(h, h, h, attn_mask=mask, need_weights=False)
        x = x + a
        return x + self.mlp(self.ln2(x))


class LM(nn.Module):
    def __init__(self, vocab=256, d=256, heads=4, layers=4, ctx=128):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.zeros(1, ctx, d))
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)
        self.register_buffer("mask", torch.triu(torch.full((ctx, ctx), float("-inf")), 1))

    def forward(self, idx):
        x = self.emb(idx) + self.pos[:, : idx.shape[1]]
        for b in self.blocks:
            x = b(x, self.mask)
        return self.head(self.ln(x))


def train_step(model, opt, data):
    """One timed step (seconds, GPU work included) on tokens data[:, :-1] -> data[:, 1:]."""
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    x, y = data[:, :-1], data[:, 1:]
    loss = nn.functional.cross_entropy(model(x).reshape(-1, 256), y.reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    torch.cuda.synchronize()
    return time.perf_counter() - t0, loss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--json")
    # a medium transformer by default (GPU-bound steps, as in real fine-tuning); --small for a
    # launch-bound one
    ap.add_argument("--small", action="store_true")
    a = ap.parse_args()
    prof = None
    if a.profile:  # from the start: the same kernels as a recorded run, model setup included
        from torch.profiler import ProfilerActivity, profile
        prof = profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA])
        prof.__enter__()
    torch.manual_seed(0)
    dev = torch.device("cuda")
    if a.small:
        model, data = LM(), torch.randint(0, 256, (64, 129), device=dev)
    else:
        model = LM(d=1024, heads=16, layers=8, ctx=256)
        data = torch.randint(0, 256, (32, 257), device=dev)
    model = model.to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    times = []
    for step in range(a.steps):
        dt, loss = train_step(model, opt, data)
        if step >= a.warmup:
            times.append(dt)
    res = {"steps": a.steps, "median_step_ms": statistics.median(times) * 1e3,
           "loss": float(loss)}
    if prof:
        prof.__exit__(None, None, None)
        # kernels only: not copies, memsets, nor the profiler's own ranges drawn on the GPU
        # timeline ("Optimizer.step#AdamW.step": user annotations)
        kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA
                   and "Memcpy" not in e.name and "Memset" not in e.name
                   and not getattr(e, "is_user_annotation", False)
                   and not re.fullmatch(r"[\w.]+#[\w.]+", e.name)]
        res["profiler_kernels"] = len(kernels)
        names = {}
        for e in kernels:
            names[e.name] = names.get(e.name, 0) + 1
        res["profiler_names"] = names
    print(json.dumps({k: v for k, v in res.items() if k != "profiler_names"}))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f)


if __name__ == "__main__":
    main()
