#!/usr/bin/python3
"""Records PyTorch values for the autograd engine's composite-expression tests.

Run with Debian's python3 and python3-torch (torch 1.13):
    /usr/bin/python3 tests/reference/autograd/make_torch_values.py > tests/reference/autograd/torch_values.json

For each case: the inputs, the value f, the gradient of f with respect to every input, and a
Hessian-vector product H·v (v is recorded too), all in float64. The C# tests in
tests/Trainer.Core.Tests/Autograd/PyTorchReferenceTests.cs build the same expressions by name.
"""
import json

import torch

torch.manual_seed(20240603)
D = torch.float64


def randn(*shape, positive=False):
    t = torch.randn(*shape, dtype=D)
    return t.abs() + 0.5 if positive else t


def seed_example(x):
    y = x ** 2
    loss1 = y.mean()
    h1, = torch.autograd.grad(y[0], x, retain_graph=True, create_graph=True)
    h2, = torch.autograd.grad(y[1], x, retain_graph=True, create_graph=True)
    return loss1 + (h1 - h2).mean()


def mlp_sigmoid_sse(x, w1, b1, w2, y):
    return ((torch.sigmoid(x @ w1.T + b1) @ w2.T - y) ** 2).sum()


def tanh_div_mean_axis(a, c):
    return ((torch.tanh(a) / (1 + torch.exp(c))).mean(dim=0) ** 3).sum()


def logsumexp_index(z):
    return (torch.log(torch.exp(z).sum(1)) - z[:, 0]).mean()


def relu_slices_transpose(m):
    return (torch.relu(m)[1:, :2] * m[0, :2]).sum() + (m.T @ m)[0, 1] + (m[:, 2] ** 3).sum()


def broadcast_column_row_scalar(p, q, r):
    return ((p * q - r) / (2 + q ** 2) - p).sum() * 0.5 + (r.sum(0, keepdim=True) * p).mean()


def powers_and_log(u):
    return (-(u ** 0.5) + u ** -1.5 - u.log() + 3 / u).mean()


def gradient_penalty(x, w1, w2, y):
    # The trainer's penalized loss: sse + λ Σ‖∂sse/∂x‖², λ = 0.3 (tanh hidden layer, no biases).
    sse = ((torch.tanh(x @ w1.T) @ w2.T - y) ** 2).sum()
    gx, = torch.autograd.grad(sse, x, create_graph=True)
    return sse + 0.3 * (gx ** 2).sum()


CASES = [
    ("seed_example", seed_example, {"x": torch.tensor([5.0, 7.0], dtype=D)}),
    ("mlp_sigmoid_sse", mlp_sigmoid_sse,
     {"x": randn(4, 3), "w1": randn(5, 3), "b1": randn(5), "w2": randn(2, 5), "y": randn(4, 2)}),
    ("tanh_div_mean_axis", tanh_div_mean_axis, {"a": randn(3, 4), "c": randn(3, 1)}),
    ("logsumexp_index", logsumexp_index, {"z": randn(2, 4)}),
    ("relu_slices_transpose", relu_slices_transpose, {"m": randn(3, 4)}),
    ("broadcast_column_row_scalar", broadcast_column_row_scalar, {"p": randn(3, 1), "q": randn(4), "r": randn(3, 4)}),
    ("powers_and_log", powers_and_log, {"u": randn(5, positive=True)}),
    ("gradient_penalty", gradient_penalty, {"x": randn(4, 3), "w1": randn(5, 3), "w2": randn(2, 5), "y": randn(4, 2)}),
]


def record(name, f, inputs):
    leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
    names = list(leaves)
    value = f(*leaves.values())
    grads = torch.autograd.grad(value, [leaves[k] for k in names], create_graph=True, allow_unused=True)
    vs = {k: randn(*leaves[k].shape) for k in names}
    dot = sum((g * vs[k]).sum() for k, g in zip(names, grads) if g is not None)
    hvs = torch.autograd.grad(dot, [leaves[k] for k in names], allow_unused=True) if dot.requires_grad else [None] * len(names)

    def flat(t, like):
        return (t if t is not None else torch.zeros_like(like)).detach().reshape(-1).tolist()

    return {
        "name": name,
        "inputs": {k: {"shape": list(leaves[k].shape), "values": flat(leaves[k], leaves[k])} for k in names},
        "value": value.item(),
        "grad": {k: flat(g, leaves[k]) for k, g in zip(names, grads)},
        "v": {k: flat(vs[k], leaves[k]) for k in names},
        "hvp": {k: flat(h, leaves[k]) for k, h in zip(names, hvs)},
    }


if __name__ == "__main__":
    out = {"torch": torch.__version__, "cases": [record(*case) for case in CASES]}
    print(json.dumps(out, indent=1))
