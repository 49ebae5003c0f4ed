"""Rewrites an Iris weights export (safetensors, Iris's layout) the way a PyTorch user's code would write
weights: every array through numpy, convolution weights transposed to PyTorch's [Cout, Cin, kh, kw], saved
with the safetensors library's own writer and without Iris's `layout` record (metadata only names the tool).

Used by tests/interop/test_init_from.cpp. Usage: torch_layout_numpy.py IN OUT
"""
import json
import sys

import numpy as np
from safetensors.numpy import load_file, save_file

tensors = load_file(sys.argv[1])
out = {}
for name, t in tensors.items():
    a = np.array(t, dtype=np.float32)  # a copy, as numpy arrays from anywhere
    out[name] = np.ascontiguousarray(a.transpose(0, 3, 1, 2)) if a.ndim == 4 else a
save_file(out, sys.argv[2], metadata={"written_by": "numpy"})
print(json.dumps({"tensors": len(out), "conv": sorted(n for n, a in out.items() if a.ndim == 4)}))
