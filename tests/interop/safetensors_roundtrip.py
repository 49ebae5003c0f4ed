"""Loads a safetensors file with the safetensors library (numpy), prints what it holds as JSON, and writes the
same tensors and metadata back with the library's own writer.

Used by tests/interop/test_safetensors.cpp. Usage: safetensors_roundtrip.py IN OUT
"""
import json
import sys

from safetensors import safe_open
from safetensors.numpy import load_file, save_file

tensors = load_file(sys.argv[1])
with safe_open(sys.argv[1], framework="numpy") as f:
    metadata = f.metadata()
print(json.dumps({
    "metadata": metadata,
    "tensors": {name: {"shape": list(t.shape), "dtype": str(t.dtype), "sum": float(t.astype("float64").sum()),
                       "first": float(t.reshape(-1)[0])} for name, t in tensors.items()},
}))
save_file(tensors, sys.argv[2], metadata=metadata)
