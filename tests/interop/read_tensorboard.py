"""Reads a TensorBoard log folder with TensorBoard's own reader and prints what it found as JSON.

Used by tests/interop/test_tensorboard.cpp: the event files Iris writes must load in the real client with the
right tags, steps and values. Usage: read_tensorboard.py LOGDIR
"""
import json
import sys

from tensorboard.backend.event_processing import event_accumulator
from tensorboard.util import tensor_util

acc = event_accumulator.EventAccumulator(
    sys.argv[1], size_guidance={"scalars": 0, "images": 0, "tensors": 0}, purge_orphaned_data=True)
acc.Reload()
tags = acc.Tags()
out = {
    "scalars": {t: [[e.step, e.value] for e in acc.Scalars(t)] for t in tags["scalars"]},
    "images": {t: [[e.step, e.width, e.height, len(e.encoded_image_string)] for e in acc.Images(t)]
               for t in tags["images"]},
    "text": {t: [[e.step, tensor_util.make_ndarray(e.tensor_proto).item().decode()] for e in acc.Tensors(t)]
             for t in tags["tensors"]},
}
print(json.dumps(out))
