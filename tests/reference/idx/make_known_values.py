#!/usr/bin/python3
"""Records what Python reads from the real Fashion-MNIST files, for the trainer's IDX reader tests.

Run with Debian's python3 and numpy after `apt-get install dataset-fashion-mnist`:
    /usr/bin/python3 tests/reference/idx/make_known_values.py > tests/reference/idx/fashion_mnist_values.json

Read independently of the trainer (gzip, struct, numpy). Per split (train, t10k): the shape, the
label counts per class, the sum of every pixel byte, and the bytes and labels at a few fixed places
(first, last and scattered images). tests/fixtures/fashion-mnist-small holds the first 512 train
and 128 test images, so the places below those counts hold for the fixture too.
"""
import gzip
import json
import os
import struct

import numpy as np

SOURCE = "/usr/share/datasets/fashion-mnist"
# (image, row, col): corners, the centre, and places with ink in the first images.
PLACES = [(0, 0, 0), (0, 14, 14), (0, 10, 15), (1, 20, 13), (7, 12, 20), (100, 13, 13), (511, 14, 10), (127, 16, 9),
          (4000, 14, 14), (9999, 14, 14), (59999, 14, 14), (59999, 20, 14)]
LABEL_PLACES = [0, 1, 2, 7, 100, 127, 511, 4000, 9999, 59999]


def idx(name):
    with gzip.open(os.path.join(SOURCE, name + ".gz"), "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    dims = magic & 0xFF
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return magic, np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


splits = {}
for prefix in ("train", "t10k"):
    image_magic, images = idx(f"{prefix}-images-idx3-ubyte")
    label_magic, labels = idx(f"{prefix}-labels-idx1-ubyte")
    n = images.shape[0]
    splits[prefix] = {
        "image_magic": image_magic,
        "label_magic": label_magic,
        "shape": list(images.shape),
        "labels": len(labels),
        "label_counts": np.bincount(labels, minlength=10).tolist(),
        "pixel_sum": int(images.astype(np.int64).sum()),
        "pixels": [[i, r, c, int(images[i, r, c])] for i, r, c in PLACES if i < n],
        "label_at": [[i, int(labels[i])] for i in LABEL_PLACES if i < n],
    }
print(json.dumps(splits, indent=1))
