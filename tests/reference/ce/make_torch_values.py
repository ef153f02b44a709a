#!/usr/bin/python3
"""Records PyTorch's softmax cross-entropy of small MLPs, for the trainer's --loss ce tests.

Run with Debian's python3 and python3-torch (torch 1.13):
    /usr/bin/python3 tests/reference/ce/make_torch_values.py > tests/reference/ce/torch_values.json

Each case is a model (layer widths, hidden activation, biases), fixed float64 weights in PyTorch's
Linear layout (w1 is H x D_in), a batch x (N x D_in, one sample per row) and its targets: class
labels, or probability rows. Recorded: the loss torch.nn.functional.cross_entropy gives (its
default, the mean over the batch), its gradient with respect to every weight, and the targets as
one-hot (or probability) rows, the form the trainer trains on. The C# tests in
tests/Trainer.Core.Tests/CrossEntropyPyTorchTests.cs read this file.
"""
import json

import torch
import torch.nn.functional as F

torch.manual_seed(20241203)
D = torch.float64
ACTIVATIONS = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}


def case(name, sizes, activation, bias, samples, weight_std=0.5, out_scale=1.0, soft=False):
    weights = {}
    for l in range(1, len(sizes)):
        w = torch.randn(sizes[l], sizes[l - 1], dtype=D) * weight_std
        if l == len(sizes) - 1:
            w = w * out_scale
        weights[f"w{l}"] = w
        if bias:
            weights[f"b{l}"] = torch.randn(sizes[l], dtype=D) * weight_std
    x = torch.randn(samples, sizes[0], dtype=D)
    classes = sizes[-1]
    if soft:
        targets = torch.softmax(torch.randn(samples, classes, dtype=D) * 2, dim=1)
        rows = targets
    else:
        labels = torch.randint(0, classes, (samples,))
        targets = labels
        rows = F.one_hot(labels, classes).to(D)

    leaves = {k: v.clone().requires_grad_(True) for k, v in weights.items()}
    a = x
    for l in range(1, len(sizes)):
        a = a @ leaves[f"w{l}"].T
        if bias:
            a = a + leaves[f"b{l}"]
        if l < len(sizes) - 1:
            a = ACTIVATIONS[activation](a)
    loss = F.cross_entropy(a, targets)
    grads = torch.autograd.grad(loss, list(leaves.values()))
    return {
        "name": name,
        "sizes": sizes,
        "activation": activation,
        "bias": bias,
        "targets": "probabilities" if soft else "labels",
        "x": x.flatten().tolist(),
        "y": rows.flatten().tolist(),
        "labels": None if soft else labels.tolist(),
        "weights": {k: v.flatten().tolist() for k, v in weights.items()},
        "logits": a.detach().flatten().tolist(),
        "loss": loss.item(),
        "grad": {k: g.flatten().tolist() for k, g in zip(leaves, grads)},
    }


cases = [
    case("relu_bias_labels", [5, 4, 3], "relu", True, samples=6),
    case("tanh_three_layers_labels", [6, 5, 4, 3], "tanh", True, samples=7),
    case("sigmoid_probabilities", [4, 6, 5], "sigmoid", False, samples=5, soft=True),
    # Logits in the hundreds: exp without the max subtracted overflows float64 (e^710 = inf).
    case("relu_large_logits", [5, 4, 3], "relu", True, samples=6, weight_std=1.0, out_scale=400.0),
]
for c in cases:
    if c["name"] == "relu_large_logits":
        assert max(abs(v) for v in c["logits"]) > 710, "the large-logit case must overflow a naive exp"

print(json.dumps({"torch": torch.__version__, "cases": cases}, indent=1))
