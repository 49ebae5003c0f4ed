"""Generates the test vectors that check Iris's FID Inception network (diffusion/inception.h) against
pytorch-fid's, on RANDOM weights (the published weights are not in the repository and are never downloaded).

The weights and the input image are not random draws but a hash of (tensor name, element index) that
tests/diffusion/test_inception.cpp computes the same way (splitmix64 of FNV-1a-64(name) + index, the top 53
bits as a uniform in [0, 1)), so the C++ test rebuilds them exactly and only the outputs are stored: the
2048 pool3 features of one image and per-block summaries (mean, mean |x|) of pytorch-fid's four output
blocks, computed in float64 by pytorch-fid's own InceptionV3 module (resize to 299 bilinear, 2x - 1, its
FIDInceptionA/C/E_1/E_2 blocks over torchvision's Inception-v3), with the network built as its
fid_inception_v3() builds it but without loading the published weights.

Run once, in a throwaway virtual environment outside the repository (never a dependency of Iris):
    python3 -m venv /tmp/fid && /tmp/fid/bin/pip install torch torchvision pytorch-fid numpy
    /tmp/fid/bin/python tools/scripts/inception_reference.py tests/diffusion/inception_random.json
"""
import base64
import json
import sys

import numpy as np
import torch
import torchvision
import pytorch_fid
import pytorch_fid.inception as fid

MASK = (1 << 64) - 1


def fnv1a64(name):
    h = 0xCBF29CE484222325
    for b in name.encode():
        h = ((h ^ b) * 0x100000001B3) & MASK
    return h


def hash_uniform(name, n):
    """n uniforms in [0, 1): splitmix64(fnv1a64(name) + i), top 53 bits."""
    with np.errstate(over="ignore"):
        z = np.arange(n, dtype=np.uint64) + np.uint64(fnv1a64(name)) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


def hash_values(name, shape):
    """The value of every element (row-major, PyTorch's layout) of tensor `name`, as float32: convolution
    weights uniform in +-sqrt(6 / fan_in) (He), batch norm weight and running_var in [0.8, 1.2), bias and
    running_mean in [-0.1, 0.1)."""
    n = int(np.prod(shape))
    u = hash_uniform(name, n)
    if name.endswith("conv.weight"):
        bound = np.sqrt(6.0 / (shape[1] * shape[2] * shape[3]))
        v = -bound + 2.0 * bound * u
    elif name.endswith("bn.weight") or name.endswith("bn.running_var"):
        v = 0.8 + 0.4 * u
    elif name.endswith("bn.bias") or name.endswith("bn.running_mean"):
        v = -0.1 + 0.2 * u
    else:
        raise ValueError("unexpected tensor " + name)
    return v.astype(np.float32).reshape(shape)


def random_fid_inception():
    """fid_inception_v3() without its download: torchvision's Inception-v3 with pytorch-fid's blocks."""
    inception = fid._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    inception.Mixed_5b = fid.FIDInceptionA(192, pool_features=32)
    inception.Mixed_5c = fid.FIDInceptionA(256, pool_features=64)
    inception.Mixed_5d = fid.FIDInceptionA(288, pool_features=64)
    inception.Mixed_6b = fid.FIDInceptionC(768, channels_7x7=128)
    inception.Mixed_6c = fid.FIDInceptionC(768, channels_7x7=160)
    inception.Mixed_6d = fid.FIDInceptionC(768, channels_7x7=160)
    inception.Mixed_6e = fid.FIDInceptionC(768, channels_7x7=192)
    inception.Mixed_7b = fid.FIDInceptionE_1(1280)
    inception.Mixed_7c = fid.FIDInceptionE_2(2048)
    state = {}
    for name, t in inception.state_dict().items():
        if name.endswith("num_batches_tracked") or name.startswith("fc."):
            state[name] = t  # unused by the pool3 features
        else:
            state[name] = torch.from_numpy(hash_values(name, tuple(t.shape)))
    inception.load_state_dict(state)
    return inception


def main(out_path):
    fid.fid_inception_v3 = random_fid_inception  # InceptionV3 builds its network through it
    model = fid.InceptionV3(output_blocks=[0, 1, 2, 3]).eval()
    size = (1, 3, 21, 17)  # a reduced, non-square input; resized to 299x299 by the model
    image = hash_uniform("input", int(np.prod(size))).reshape(size)
    result = {"pytorch_fid": pytorch_fid.__version__, "torch": torch.__version__,
              "torchvision": torchvision.__version__, "input_shape_nchw": list(size), "blocks": []}
    outs = {}
    for dtype in (torch.float64, torch.float32):
        with torch.no_grad():
            outs[dtype] = model.to(dtype)(torch.from_numpy(image).to(dtype))
    for k, (o64, o32) in enumerate(zip(outs[torch.float64], outs[torch.float32])):
        a = o64.numpy()
        err = np.abs(o32.double().numpy() - a)
        result["blocks"].append({"block": k, "shape_nchw": list(a.shape), "mean": float(a.mean()),
                                 "mean_abs": float(np.abs(a).mean()),
                                 "torch_f32_max_abs_err": float(err.max()),
                                 "torch_f32_max_rel_err": float((err / (np.abs(a) + 1e-3)).max())})
    features = outs[torch.float64][3].numpy().reshape(-1).astype("<f4")
    result["pool3_f32_base64"] = base64.b64encode(features.tobytes()).decode()
    with open(out_path, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(json.dumps({k: v for k, v in result.items() if k != "pool3_f32_base64"}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
