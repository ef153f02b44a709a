"""The seed's training loop in PyTorch 1.13, one process, CPU.

Backward is written out by hand (the same formulas as numpy_seed.py, g_w2 = g_y · aᵀ), the
fastest way to run this loop in PyTorch; --autograd uses loss.backward() instead.
Timed: the training loop only. Threads: torch's default (one per core) unless --threads.
Usage: /usr/bin/python3 torch_seed.py [--autograd] [--threads N] [--model ... --batch ... --steps ... --precision ...]
"""
import time

import torch

from common import default_name, emit, parse_args, seed_arrays


def options(p):
    p.add_argument("--autograd", action="store_true", help="backward by loss.backward() instead of by hand")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch's default)")


def train_manual(x, y, ws, args):
    layers = len(ws)
    loss = float("nan")
    with torch.no_grad():
        for _ in range(args.steps):
            acts = [x]
            for l in range(layers - 1):
                acts.append(torch.sigmoid(ws[l] @ acts[-1]))
            diff = ws[-1] @ acts[-1] - y
            loss = float(torch.dot(diff.reshape(-1), diff.reshape(-1)))   # sum, not mean
            g = 2.0 * diff
            for l in range(layers - 1, -1, -1):
                g_w = g @ acts[l].T
                if l > 0:
                    a = acts[l]
                    g = (ws[l].T @ g) * a * (1.0 - a)
                ws[l].sub_(args.lr * g_w)
    return loss


def train_autograd(x, y, ws, args):
    loss = float("nan")
    for w in ws:
        w.requires_grad_(True)
    for _ in range(args.steps):
        a = x
        for w in ws[:-1]:
            a = torch.sigmoid(w @ a)
        diff = ws[-1] @ a - y
        out = (diff * diff).sum()
        for w in ws:
            w.grad = None
        out.backward()
        with torch.no_grad():
            for w in ws:
                w -= args.lr * w.grad
        loss = out.item()
    return loss


def main():
    args = parse_args(__doc__, options)
    if args.threads:
        torch.set_num_threads(args.threads)
    x, y, ws = seed_arrays(args)
    x, y, ws = torch.from_numpy(x), torch.from_numpy(y), [torch.from_numpy(w) for w in ws]
    train = train_autograd if args.autograd else train_manual
    start = time.perf_counter()
    loss = train(x, y, ws, args)
    seconds = time.perf_counter() - start
    prefix = "torch 1 process" + (" autograd" if args.autograd else "")
    emit(args.name or default_name(prefix, args), args, seconds, loss,
         backward="autograd" if args.autograd else "manual", threads=torch.get_num_threads(),
         torch=torch.__version__)


if __name__ == "__main__":
    main()
