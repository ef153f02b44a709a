"""Workload F in PyTorch 1.13, as a practitioner writes it: Fashion-MNIST, 784-256-128-10 relu MLP.

nn.Sequential of nn.Linear (PyTorch's default init), Adam, CrossEntropyLoss (mean over the batch),
mini-batches of 128 from a torch.randperm shuffle per epoch by tensor indexing (no DataLoader),
the last short batch kept; then loss and accuracy on the 10,000 test images.
Timed: the training epochs only (not reading the IDX files, not the test pass), as `trainer --json`.
Threads: 2 (torch.set_num_threads), the machine's cores; --threads to change it.
Usage: /usr/bin/python3 torch_fashion.py [--data DIR] [--epochs 10] [--precision float32|float64] [--seed 0]
"""
import argparse
import gzip
import os
import time

import numpy as np
import torch

from common import blas_info, emit, log


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist", help="folder of the IDX files (.gz or not)")
    p.add_argument("--model", default="784-256-128-10", help="layer widths, input to output")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    p.add_argument("--precision", choices=["float32", "float64"], default="float32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--name", default=None, help="row name in the JSON output")
    p.add_argument("--init", choices=["torch", "he"], default="torch",
                   help="torch: nn.Linear's default (kaiming_uniform(a=sqrt(5)) weights, U(±1/sqrt(fan_in)) biases); "
                        "he: the trainer's --init he (N(0, 2/fan_in) weights on every layer, zero biases)")
    p.add_argument("--save-init", default=None, metavar="DIR",
                   help="also write the initial weights as w1.npy, b1.npy, ... (float64) for `trainer --init npy:DIR`")
    args = p.parse_args()
    args.sizes = [int(s) for s in args.model.split("-")]
    return args


def read_idx(folder, stem):
    """An IDX file as a numpy array of its shape (uint8), gzipped or not."""
    path = os.path.join(folder, stem)
    opener, path = (gzip.open, path + ".gz") if os.path.exists(path + ".gz") else (open, path)
    with opener(path, "rb") as f:
        raw = f.read()
    if raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes")
    dims = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(folder, prefix, dtype):
    """x (N, 784) scaled to [0, 1] in dtype, y (N,) int64 class labels."""
    images = read_idx(folder, f"{prefix}-images-idx3-ubyte")
    labels = read_idx(folder, f"{prefix}-labels-idx1-ubyte")
    x = torch.from_numpy(images.reshape(len(images), -1).astype(np.float64) / 255.0).to(dtype)
    return x, torch.from_numpy(labels.astype(np.int64))


def build(sizes):
    layers = []
    for l in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[l], sizes[l + 1]))
        if l < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def init_he(model):
    for m in model:
        if isinstance(m, torch.nn.Linear):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")   # N(0, 2 / fan_in)
            torch.nn.init.zeros_(m.bias)


def save_init(model, folder):
    os.makedirs(folder, exist_ok=True)
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    for l, m in enumerate(linears, start=1):
        np.save(os.path.join(folder, f"w{l}.npy"), m.weight.detach().double().numpy())   # (out, in), as the trainer's
        np.save(os.path.join(folder, f"b{l}.npy"), m.bias.detach().double().numpy())


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    dtype = torch.float32 if args.precision == "float32" else torch.float64
    x, y = load(args.data, "train", dtype)
    x_test, y_test = load(args.data, "t10k", dtype)
    model = build(args.sizes).to(dtype)
    if args.init == "he":
        init_he(model)
    if args.save_init:
        save_init(model, args.save_init)
    optimizer = (torch.optim.Adam(model.parameters(), lr=args.lr) if args.optimizer == "adam"
                 else torch.optim.SGD(model.parameters(), lr=args.lr))
    criterion = torch.nn.CrossEntropyLoss()
    n = len(x)
    steps, loss = 0, float("nan")

    start = time.perf_counter()
    for epoch in range(args.epochs):
        order = torch.randperm(n)
        for i in range(0, n, args.batch):
            idx = order[i:i + args.batch]
            out = criterion(model(x[idx]), y[idx])
            optimizer.zero_grad()
            out.backward()
            optimizer.step()
            steps += 1
        loss = out.item()
        log(f"epoch {epoch + 1}: last batch loss {loss:.4f}")
    seconds = time.perf_counter() - start

    with torch.no_grad():
        logits = model(x_test)
        test_loss = criterion(logits, y_test).item()
        test_accuracy = (logits.argmax(1) == y_test).double().mean().item()
    args.steps = steps
    emit(args.name or f"torch fashion {args.precision}", args, seconds, loss,
         samples_per_second=n * args.epochs / seconds, epochs=args.epochs, optimizer=args.optimizer, init=args.init,
         test_loss=test_loss, test_accuracy=test_accuracy, test_samples=len(x_test),
         threads=torch.get_num_threads(), torch=torch.__version__, **blas_info())


if __name__ == "__main__":
    main()
