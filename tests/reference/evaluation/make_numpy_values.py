#!/usr/bin/python3
"""Records numpy's loss and accuracy of two classifiers on the small Fashion-MNIST fixture.

Run with Debian's python3 and numpy:
    /usr/bin/python3 tests/reference/evaluation/make_numpy_values.py > tests/reference/evaluation/numpy_values.json

Independent of the trainer: the IDX files are read with gzip and numpy here, the forward pass and
the losses are written out in numpy. Pixels are bytes / 255. The models' weights are not stored:
the C# test (tests/Trainer.Core.Tests/EvaluationTests.cs) builds them by the same rules:
  - "centroids": 784-10, linear. w_c = the mean training image of class c, b_c = -|w_c|^2 / 2,
    so argmax is the nearest class mean. Evaluated on the 128 test images.
  - "relu_formula": 784-32-10, relu, biases; w1[i] = 0.05 sin(0.37 i + 1), b1[j] = 0.1 cos(j),
    w2[i] = 0.3 sin(0.91 i + 2), b2[j] = 0.05 j (i counts the flat row-major weights from 0).
    Evaluated on the 512 training images.
For each: ce (mean over rows), mse (mean over rows x 10), sse (sum), and the count of rows whose
argmax output is their label. The smallest gap between a row's two largest outputs is asserted
large enough that rounding cannot change any argmax.
"""
import gzip
import json
import os
import struct

import numpy as np

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures", "fashion-mnist-small")


def idx(name):
    with gzip.open(os.path.join(FIXTURE, name + ".gz"), "rb") as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def split(prefix):
    images = idx(f"{prefix}-images-idx3-ubyte").reshape(-1, 784).astype(np.float64) / 255.0
    labels = idx(f"{prefix}-labels-idx1-ubyte").astype(np.int64)
    return images, labels


def losses(logits, labels):
    onehot = np.eye(10)[labels]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    ce = -(onehot * log_softmax).sum() / len(labels)
    sse = ((logits - onehot) ** 2).sum()
    return {"ce": ce, "mse": sse / logits.size, "sse": sse}


def record(name, logits, labels):
    top2 = np.sort(logits, axis=1)[:, -2:]
    gap = (top2[:, 1] - top2[:, 0]).min()
    assert gap > 1e-9, f"{name}: two outputs within {gap} of each other; rounding could flip an argmax"
    return {"name": name, "rows": len(labels), "losses": losses(logits, labels),
            "correct": int((logits.argmax(axis=1) == labels).sum()), "smallest_gap": gap}


x_train, y_train = split("train")
x_test, y_test = split("t10k")

centroids = np.stack([x_train[y_train == c].mean(axis=0) for c in range(10)])
biases = -0.5 * (centroids ** 2).sum(axis=1)
cases = [record("centroids", x_test @ centroids.T + biases, y_test)]

w1 = 0.05 * np.sin(0.37 * np.arange(32 * 784) + 1).reshape(32, 784)
b1 = 0.1 * np.cos(np.arange(32))
w2 = 0.3 * np.sin(0.91 * np.arange(10 * 32) + 2).reshape(10, 32)
b2 = 0.05 * np.arange(10)
hidden = np.maximum(x_train @ w1.T + b1, 0)
cases.append(record("relu_formula", hidden @ w2.T + b2, y_train))

print(json.dumps({"numpy": np.__version__, "cases": cases}, indent=1))
