#!/usr/bin/python3
"""Independent numpy implementation of the seed job (SEED.md section 1), recorded for the tests.

Tutorial layout: x is (D_in, B) with one sample per COLUMN, w1 (H, D_in), w2 (D_out, H).
The files are written with samples as ROWS (x.T, y.T), the layout the C# core uses.
Run with Debian's numpy:  /usr/bin/python3 make_reference.py   (writes next to this script)
"""
import os
import sys

import numpy as np

D_IN, H, D_OUT, B = 1000, 100, 10, 64
LR = 1e-5
STEPS = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
SEED = 1234

here = os.path.dirname(os.path.abspath(__file__))

rng = np.random.default_rng(SEED)
x = rng.standard_normal((D_IN, B))
y = rng.standard_normal((D_OUT, B))
w1 = rng.standard_normal((H, D_IN))
w2 = rng.standard_normal((D_OUT, H))
w1_init, w2_init = w1.copy(), w2.copy()

losses = np.empty(STEPS)
for t in range(STEPS):
    h = w1 @ x                        # (H, B)
    a = 1.0 / (1.0 + np.exp(-h))      # (H, B)
    y_pred = w2 @ a                   # (D_out, B)
    losses[t] = np.sum((y_pred - y) ** 2)
    g_y = 2.0 * (y_pred - y)          # (D_out, B)
    g_w2 = g_y @ a.T                  # (D_out, H)  a, not h: the tutorial's h.T is not the gradient
    g_a = w2.T @ g_y                  # (H, B)
    g_h = g_a * a * (1.0 - a)         # (H, B)
    g_w1 = g_h @ x.T                  # (H, D_in)
    w1 -= LR * g_w1
    w2 -= LR * g_w2


def save(name, array):
    np.save(os.path.join(here, name), np.ascontiguousarray(array, dtype=np.float64))


save("x.npy", x.T)          # (B, D_in), samples as rows
save("y.npy", y.T)          # (B, D_out)
save("w1.npy", w1_init)     # (H, D_in), initial
save("w2.npy", w2_init)     # (D_out, H), initial
save("losses.npy", losses)  # (STEPS,), loss of each step's forward pass, before its update
save("w1_final.npy", w1)
save("w2_final.npy", w2)
print(f"steps={STEPS} loss[0]={losses[0]:.6f} loss[-1]={losses[-1]:.6f}")
