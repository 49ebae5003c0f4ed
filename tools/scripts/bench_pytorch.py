#!/usr/bin/env python3
"""PyTorch baseline for `iris bench`: the tools/bench/SR3_BENCH.md U-Net and step, timed the same way.

Builds the benchmark U-Net described in tools/bench/SR3_BENCH.md (97,807,491 parameters at the default
sizes) from that description, and times the training step (forward, L1 loss against the target noise,
backward, AdamW) or the sampling step (forward without gradients) with CUDA events: warm-up steps, then the median of timed
steps. Two random input sets alternate. Prints a JSON line like iris bench's, so both can be compared in
the same run on the same card.

  python3 tools/scripts/bench_pytorch.py --mode train --precision bf16 --batch 32 [--channels-last]
                                         [--compile none|default|reduce-overhead]

--compile runs the U-Net through torch.compile with that mode ("reduce-overhead" adds CUDA graphs on a GPU;
on the CPU it compiles as "default" does). Training compiles the forward and backward of the network; the
loss and the AdamW step stay eager, as in a usual training script. Compilation (and CUDA graph recording)
happens in the warm-up steps, which are never timed: the JSON line gives their wall time as compile_s (the
first step, where the compilation happens) and warmup_s (all warm-up steps). A bare --compile means
"default", as the flag meant before it took a mode.

On the CPU (--device cpu; f32 only; wall-clock timing) the smaller models of the family are available:

  python3 tools/scripts/bench_pytorch.py --device cpu --model sr3_cpu_bench_32 --batch 8 --threads 2 --precision f32

tools/scripts/bench_cpu_vs_pytorch.sh alternates this with `iris bench` and prints medians and ratios.
"""
import argparse
import json
import math
import resource
import statistics
import time

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


# The members of the family (tools/bench/SR3_BENCH.md): the UNet keyword arguments, the image size, and the
# work per image per training step (forward + backward of convolutions, matmuls and attention, 2 FLOPs per
# multiply-add: iris bench prints the same figure for its twin).
MODELS = {
    "sr3_bench_128": dict(res=128, cin=6, cout=3, base=64, mults=(1, 2, 4, 8, 8), nres=2, attn_res=(16,), groups=32),
    "sr3_cpu_bench_32": dict(res=32, cin=6, cout=3, base=32, mults=(1, 2, 2, 2), nres=2, attn_res=(8,), groups=8),
    "fmnist_sr3_7to28": dict(res=28, cin=2, cout=1, base=32, mults=(1, 2, 2), nres=2, attn_res=(7,), groups=8),
}


def flop_count(net, cin, res, dev):
    """FLOPs of one image's forward pass (2 per multiply-add of convolutions, linears and attention), and the
    stem convolution's share, counted with forward hooks on one image."""
    counts = {"total": 0.0, "stem": 0.0}

    def conv(m, inp, out):
        f = 2.0 * out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        counts["total"] += f
        if m is net.stem:
            counts["stem"] = f

    def linear(m, inp, out):
        counts["total"] += 2.0 * out.numel() * m.in_features

    def attention(m, inp, out):
        n, c, h, w = inp[0].shape
        counts["total"] += 2.0 * 2.0 * n * c * (h * w) ** 2  # q k^T and (softmax) v

    hooks = []
    for m in net.modules():
        hook = {nn.Conv2d: conv, nn.Linear: linear, Attention: attention}.get(type(m))
        if hook:
            hooks.append(m.register_forward_hook(hook))
    with torch.no_grad():
        net(torch.randn(1, cin, res, res, device=dev), torch.full((1,), 0.5, device=dev))
    for h in hooks:
        h.remove()
    return counts["total"], counts["stem"]


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--model", default="sr3_bench_128", choices=sorted(MODELS))
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: PyTorch's choice)")
    p.add_argument("--mode", default="train", choices=["train", "sample"])
    p.add_argument("--precision", default="bf16", choices=["f32", "tf32", "bf16"])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", nargs="?", const="default", default="none",
                   choices=["none", "default", "reduce-overhead"])
    a = p.parse_args()
    compiled = a.compile != "none"
    if compiled and a.warmup < 3:
        # reduce-overhead runs one step eagerly and records the CUDA graph on the next: 3 warm-up steps leave
        # the timed steps replaying it (the same floor for "default", so the two compare alike).
        p.error("--compile needs --warmup >= 3 (compilation and graph recording happen in the warm-up)")
    torch.backends.cuda.matmul.allow_tf32 = a.precision == "tf32"
    torch.backends.cudnn.allow_tf32 = a.precision == "tf32"
    torch.backends.cudnn.benchmark = True
    dev = a.device
    cpu = dev == "cpu"
    if cpu and a.precision != "f32":
        p.error("--device cpu times f32 only")
    if a.threads:
        torch.set_num_threads(a.threads)
    spec = MODELS[a.model]
    res, cin, cout = spec["res"], spec["cin"], spec["cout"]
    rss_start = rss_bytes()
    net = UNet(**spec).to(dev)
    params = sum(t.numel() for t in net.parameters())
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4, weight_decay=0.0)
    step_net = torch.compile(net, mode=a.compile) if compiled else net
    # With CUDA graphs, each step's outputs live in memory the next replay overwrites: telling the compiler
    # where a step begins lets it reuse that memory (PyTorch's recommended loop for reduce-overhead).
    mark_step = torch.compiler.cudagraph_mark_step_begin if a.compile == "reduce-overhead" else (lambda: None)
    inputs = []
    for _ in range(2):
        inputs.append((torch.randn(a.batch, cin, res, res, device=dev).to(memory_format=fmt),
                       torch.rand(a.batch, device=dev) * 0.98 + 0.01,
                       torch.randn(a.batch, cout, res, res, device=dev)))
    train = a.mode == "train"
    net.train(train)

    def step(i):
        x, g, t = inputs[i % 2]
        mark_step()
        with torch.autocast(dev, dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            if train:
                loss = F.l1_loss(step_net(x, g).float(), t)
            else:
                with torch.no_grad():
                    step_net(x, g)
                return
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    # The warm-up: for a compiled model, the first step compiles (minutes for the largest model) and later
    # ones may record CUDA graphs; none of it is timed. Wall-clock times, synchronised on a GPU.
    sync = torch.cuda.synchronize if not cpu else (lambda: None)
    warm_times = []
    for i in range(a.warmup):
        t0 = time.perf_counter()
        step(i)
        sync()
        warm_times.append(time.perf_counter() - t0)
    times = []
    if cpu:
        for i in range(a.steps):
            t0 = time.perf_counter()
            step(i)
            times.append((time.perf_counter() - t0) * 1000)
        # The CPU has no allocator statistics: the process's peak resident memory above what it held before the
        # model was built (the PyTorch libraries themselves excluded). With --compile it includes what tracing
        # and compiling held in this process (the compiler's worker processes are not counted).
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_start
        device_name = "cpu (%d threads)" % torch.get_num_threads()
    else:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        for i in range(a.steps):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            step(i)
            e.record()
            e.synchronize()
            times.append(s.elapsed_time(e))
        # Allocated bytes at their peak over the timed steps (reset after the warm-up, so compilation's
        # temporaries are not counted; a CUDA graph's private pool is, while its blocks are live).
        peak = torch.cuda.max_memory_allocated()
        device_name = torch.cuda.get_device_name()
    ms = statistics.median(times)
    forward_flops, stem_flops = flop_count(net, cin, res, dev)
    # Backward costs two forwards (data and weight gradients), except the stem's data gradient, never needed:
    # 8.862e12 per training step of 32 images of sr3_bench_128, as SR3_BENCH.md and iris bench say.
    flops_per_img = 3 * forward_flops - stem_flops if train else forward_flops
    print(json.dumps({"impl": "pytorch " + torch.__version__ + (" compile=" + a.compile if compiled else "") +
                      (" channels_last" if a.channels_last else ""), "model": a.model, "params": params,
                      "batch": a.batch, "mode": a.mode, "precision": a.precision, "device": device_name,
                      "compile": a.compile, "compile_s": warm_times[0] if warm_times else None,
                      "warmup_s": sum(warm_times), "step_ms": ms, "steps_ms": times,
                      "img_per_s": a.batch * 1000 / ms, "tflops": flops_per_img * a.batch / (ms / 1000) / 1e12,
                      "peak_bytes": peak}))


if __name__ == "__main__":
    main()
