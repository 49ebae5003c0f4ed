#!/usr/bin/env python3
"""PyTorch baseline for `iris bench`: the tools/bench/SR3_BENCH.md U-Net and step, timed the same way.

Builds the benchmark U-Net described in tools/bench/SR3_BENCH.md (97,807,491 parameters at the default
sizes) from that description, and times the training step (forward, L1 loss against the target noise,
backward, AdamW) or the sampling step (forward without gradients) with CUDA events: warm-up steps, then the median of timed
steps. Two random input sets alternate. Prints a JSON line like iris bench's, so both can be compared in
the same run on the same card. Needs PyTorch with CUDA.

  python3 tools/scripts/bench_pytorch.py --mode train --precision bf16 --batch 32 [--channels-last] [--compile]
"""
import argparse
import json
import math
import statistics

import torch
import torch.nn as nn
import torch.nn.functional as F


class ResBlock(nn.Module):
    def __init__(self, cin, cout, emb, groups, attn):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb, cout)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None
        self.attn = Attention(cout, groups) if attn else None

    def forward(self, x, e):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(e)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        out = h + (self.skip(x) if self.skip is not None else x)
        return self.attn(out) if self.attn is not None else out


class Attention(nn.Module):
    def __init__(self, c, groups):
        super().__init__()
        self.norm = nn.GroupNorm(groups, c)
        self.qkv = nn.Conv2d(c, 3 * c, 1, bias=False)
        self.proj = nn.Conv2d(c, c, 1)

    def forward(self, x):
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, 1, c, h * w).transpose(-1, -2).unbind(1)
        o = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(c)) v, one head of width c
        return x + self.proj(o.transpose(-1, -2).reshape(n, c, h, w))


class UNet(nn.Module):
    def __init__(self, res=128, cin=6, cout=3, base=64, mults=(1, 2, 4, 8, 8), nres=2, attn_res=(16,), groups=32):
        super().__init__()
        emb = base
        self.emb_dim = emb
        self.mlp = nn.Sequential(nn.Linear(emb, 4 * emb), nn.SiLU(), nn.Linear(4 * emb, emb))
        self.stem = nn.Conv2d(cin, base, 3, padding=1)
        self.down, skips, ch, r = nn.ModuleList(), [base], base, res
        for i, m in enumerate(mults):
            for _ in range(nres):
                self.down.append(ResBlock(ch, base * m, emb, groups, r in attn_res))
                ch = base * m
                skips.append(ch)
            if i != len(mults) - 1:
                self.down.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
                skips.append(ch)
                r //= 2
        self.mid = nn.ModuleList([ResBlock(ch, ch, emb, groups, True), ResBlock(ch, ch, emb, groups, False)])
        self.up = nn.ModuleList()
        for i, m in reversed(list(enumerate(mults))):
            for _ in range(nres + 1):
                self.up.append(ResBlock(ch + skips.pop(), base * m, emb, groups, r in attn_res))
                ch = base * m
            if i != 0:
                self.up.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(ch, ch, 3, padding=1)))
                r *= 2
        self.out_norm = nn.GroupNorm(groups, ch)
        self.out = nn.Conv2d(ch, cout, 3, padding=1)

    def forward(self, x, g):
        half = self.emb_dim // 2
        f = torch.exp(-math.log(10000.0) * torch.arange(half, device=x.device) / half)
        a = (1000.0 * g.sqrt())[:, None] * f[None]
        e = self.mlp(torch.cat([a.sin(), a.cos()], 1))
        h = self.stem(x)
        hs = [h]
        for m in self.down:
            h = m(h, e) if isinstance(m, ResBlock) else m(h)
            hs.append(h)
        for m in self.mid:
            h = m(h, e)
        for m in self.up:
            h = m(torch.cat([h, hs.pop()], 1), e) if isinstance(m, ResBlock) else m(h)
        return self.out(F.silu(self.out_norm(h)))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mode", default="train", choices=["train", "sample"])
    p.add_argument("--precision", default="bf16", choices=["f32", "tf32", "bf16"])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true")
    a = p.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = a.precision == "tf32"
    torch.backends.cudnn.allow_tf32 = a.precision == "tf32"
    torch.backends.cudnn.benchmark = True
    dev = "cuda"
    net = UNet().to(dev)
    params = sum(t.numel() for t in net.parameters())
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4, weight_decay=0.0)
    step_net = torch.compile(net) if a.compile else net
    inputs = []
    for _ in range(2):
        inputs.append((torch.randn(a.batch, 6, 128, 128, device=dev).to(memory_format=fmt),
                       torch.rand(a.batch, device=dev) * 0.98 + 0.01,
                       torch.randn(a.batch, 3, 128, 128, device=dev)))
    train = a.mode == "train"
    net.train(train)

    def step(i):
        x, g, t = inputs[i % 2]
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            if train:
                loss = F.l1_loss(step_net(x, g).float(), t)
            else:
                with torch.no_grad():
                    step_net(x, g)
                return
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for i in range(a.warmup):
        step(i)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(a.steps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        step(i)
        e.record()
        e.synchronize()
        times.append(s.elapsed_time(e))
    ms = statistics.median(times)
    flops_per_img = 8.862e12 / 32 if train else 8.862e12 / 32 / 3
    print(json.dumps({"impl": "pytorch " + torch.__version__ + (" compile" if a.compile else "") +
                      (" channels_last" if a.channels_last else ""), "params": params, "batch": a.batch,
                      "mode": a.mode, "precision": a.precision, "device": torch.cuda.get_device_name(),
                      "step_ms": ms, "img_per_s": a.batch * 1000 / ms,
                      "tflops": flops_per_img * a.batch / (ms / 1000) / 1e12,
                      "peak_bytes": torch.cuda.max_memory_allocated()}))


if __name__ == "__main__":
    main()
