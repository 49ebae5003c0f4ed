"""Converts the Inception-v3 weights that pytorch-fid uses (pt_inception-2015-12-05-6726825d.pth, TensorFlow's
2015-12-05 Inception ported to PyTorch) into a safetensors file that Iris reads for `iris fd --inception`
(diffusion/inception.h). Iris does not download or ship these weights: get the .pth file yourself (pytorch-fid
downloads it on first use into torch's hub cache, ~/.cache/torch/hub/checkpoints/).

The tensors keep their PyTorch names (Conv2d_1a_3x3.conv.weight, Mixed_5b.branch1x1.bn.running_mean, ...) and
layout ([Cout, Cin, kh, kw] convolutions); batch norm stays unfolded (Iris folds it into the convolutions
when it loads the file). Only what the 2048-d pool3 features need is kept: the classifier (fc.*) and the
num_batches_tracked counters are dropped. Every tensor is checked to be float32 and finite.

Needs torch (to unpickle the .pth) and numpy, e.g. in a throwaway virtual environment:
    python3 -m venv /tmp/fid && /tmp/fid/bin/pip install torch numpy
    /tmp/fid/bin/python tools/scripts/convert_fid_inception.py pt_inception-2015-12-05-6726825d.pth fid_inception.safetensors
"""
import json
import os
import struct
import sys

import numpy as np
import torch


def write_safetensors(path, tensors, metadata):
    """The safetensors format (8-byte little-endian header length, JSON header, raw little-endian data),
    written here so that the script needs no more than torch and numpy."""
    header, chunks, offset = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        chunks.append(a.tobytes())
        offset += a.nbytes
    text = json.dumps(header, separators=(",", ":"))
    text += " " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text.encode())
        for c in chunks:
            f.write(c)
    os.replace(tmp, path)


def main(src, dst):
    state = torch.load(src, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        sys.exit(f"{src}: expected a state dict (name -> tensor), got {type(state).__name__}")
    kept = {}
    for name, t in state.items():
        if name.startswith("fc.") or name.endswith("num_batches_tracked") or name.startswith("AuxLogits."):
            continue
        if not isinstance(t, torch.Tensor) or t.dtype != torch.float32:
            sys.exit(f"{src}: tensor '{name}' is {getattr(t, 'dtype', type(t))}, expected float32")
        a = t.detach().numpy()
        if not np.isfinite(a).all():
            sys.exit(f"{src}: tensor '{name}' holds NaN or infinite values")
        kept[name] = a
    convs = sum(1 for n in kept if n.endswith(".conv.weight"))
    if convs != 94:
        sys.exit(f"{src}: {convs} convolutions found, FID's Inception-v3 has 94: is this pytorch-fid's "
                 "pt_inception-2015-12-05 file?")
    write_safetensors(dst, kept, {"format": "iris-fid-inception", "source": os.path.basename(src),
                                  "layout": "PyTorch's: conv weights [Cout, Cin, kh, kw]; batch norm unfolded"})
    print(f"wrote {dst}: {len(kept)} tensors ({convs} convolutions with their batch norms) from {src}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: convert_fid_inception.py PT_INCEPTION.pth OUT.safetensors")
    main(sys.argv[1], sys.argv[2])
