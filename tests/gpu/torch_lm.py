#!/usr/bin/env python3
"""The reference model (kernels/lm.h) in PyTorch, for the training tokens/s comparison of issue 6
(docs/BENCHMARKS.md): the same architecture, shapes and optimizer as ptb's CUDA backend.

GPT-2 blocks over a byte vocabulary of 257: pre-LayerNorm (eps 1e-5) causal self-attention
(F.scaled_dot_product_attention, as nanoGPT and most users write it: PyTorch picks its fastest
kernel) and a GELU (tanh) MLP of width 4C, the output projection tied to the token embedding,
cross-entropy on every position, AdamW (betas 0.9/0.95, eps 1e-8, no weight decay). fp32 is pure
fp32 (TF32 off, PyTorch's default for matmuls); bf16 is torch.autocast(bfloat16), what ptb's
LM_CUDA_BF16 mirrors.

    python3 torch_lm.py --layers 4 --heads 4 --channels 128 --batch 8 --seq 256 \
        --steps 50 --precision fp32 [--compile]

prints one JSON line: the configuration, parameters, tokens/s (median of timed windows).
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

V = 257


class Block(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.H = H
        self.ln1 = nn.LayerNorm(C)
        self.qkv = nn.Linear(C, 3 * C)
        self.proj = nn.Linear(C, C)
        self.ln2 = nn.LayerNorm(C)
        self.fc = nn.Linear(C, 4 * C)
        self.fcproj = nn.Linear(4 * C, C)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.H, C // self.H).transpose(1, 2) for t in (q, k, v))
        if hasattr(F, "scaled_dot_product_attention"):
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # PyTorch < 2.0 (Debian 12's 1.13): the same, written out
            att = (q @ k.transpose(-2, -1)) / math.sqrt(k.shape[-1])
            mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            y = att.masked_fill(~mask, float("-inf")).softmax(dim=-1) @ v
        x = x + self.proj(y.transpose(1, 2).contiguous().view(B, T, C))
        return x + self.fcproj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class LM(nn.Module):
    def __init__(self, L, H, C, maxT):
        super().__init__()
        self.wte = nn.Embedding(V, C)
        self.wpe = nn.Embedding(maxT, C)
        self.blocks = nn.ModuleList(Block(C, H) for _ in range(L))
        self.lnf = nn.LayerNorm(C)
        for n, p in self.named_parameters():  # GPT-2 initialisation, as lm_model_init
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * L) if n.endswith("proj.weight") else 0.02
                nn.init.normal_(p, 0.0, std)
            elif n.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, idx, targets):
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))
        for b in self.blocks:
            x = b(x)
        logits = self.lnf(x) @ self.wte.weight.t()  # tied, no bias
        return F.cross_entropy(logits.float().view(-1, V), targets.view(-1), ignore_index=-1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--channels", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    a = ap.parse_args()
    torch.manual_seed(1)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = a.device
    if a.threads:
        torch.set_num_threads(a.threads)
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    model = LM(a.layers, a.heads, a.channels, a.seq).to(dev)
    nparams = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), eps=1e-8,
                            weight_decay=0.0)
    step_fn = torch.compile(model) if a.compile else model
    g = torch.Generator(device=dev).manual_seed(1)
    idx = torch.randint(0, V, (a.batch, a.seq), device=dev, generator=g)
    tgt = torch.randint(0, V, (a.batch, a.seq), device=dev, generator=g)

    def step():
        with torch.autocast(dev, dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            loss = step_fn(idx, tgt)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    for _ in range(3 if dev == "cpu" else 10 if not a.compile else 20):  # warm up (and compile)
        step()
    sync()
    windows = []
    per = max(1, a.steps // 5)
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(per):
            loss = step()
        sync()
        windows.append(a.batch * a.seq * per / (time.perf_counter() - t0))
    windows.sort()
    print(json.dumps({"impl": "pytorch-" + ("compile" if a.compile else "eager"),
                      "torch": torch.__version__, "device": torch.cuda.get_device_name() if dev == "cuda" else "cpu",
                      "threads": torch.get_num_threads(),
                      "layers": a.layers, "heads": a.heads, "channels": a.channels,
                      "batch": a.batch, "seq": a.seq, "precision": a.precision,
                      "params": nparams, "tokens_per_s": round(windows[2]),
                      "loss": round(float(loss), 4)}))


if __name__ == "__main__":
    main()
