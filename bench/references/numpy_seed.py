"""The seed's training loop in numpy (SEED.md section 1), with the correct g_w2 = g_y · aᵀ.

Timed: the training loop only (data and weights are drawn before the clock starts).
Usage: /usr/bin/python3 numpy_seed.py [--model 1000-100-10 --batch 64 --steps 3000 --precision float64]
Prints one JSON line: {"name", "steps", "seconds", "steps_per_second", "final_loss", ...}.
"""
import time

import numpy as np

from common import blas_info, default_name, emit, parse_args, seed_arrays


def sigmoid(h):
    with np.errstate(over="ignore"):    # exp(-h) overflows to inf for h << 0: sigmoid is then 0, as it should be
        return 1.0 / (1.0 + np.exp(-h))


def main():
    args = parse_args(__doc__)
    x, y, ws = seed_arrays(args)
    lr = ws[0].dtype.type(args.lr)
    layers = len(ws)
    loss = float("nan")
    start = time.perf_counter()
    for _ in range(args.steps):
        # forward: a_0 = x, a_l = sigmoid(w_l · a_{l-1}) for hidden layers, y_pred = w_L · a_{L-1}
        acts = [x]
        for l in range(layers - 1):
            acts.append(sigmoid(ws[l] @ acts[-1]))
        y_pred = ws[-1] @ acts[-1]
        diff = y_pred - y
        loss = float(np.dot(diff.ravel(), diff.ravel()))      # sum, not mean
        # backward: g_w_l = g_l · a_{l-1}ᵀ; g_{l-1} = (w_lᵀ · g_l) ⊙ a ⊙ (1 - a)
        g = 2.0 * diff
        for l in range(layers - 1, -1, -1):
            g_w = g @ acts[l].T
            if l > 0:
                a = acts[l]
                g = (ws[l].T @ g) * a * (1.0 - a)
            ws[l] -= lr * g_w
    seconds = time.perf_counter() - start
    emit(args.name or default_name("numpy loop", args), args, seconds, loss, **blas_info())


if __name__ == "__main__":
    main()
