"""Shared pieces of the reference programs: arguments, seed data, BLAS probe, JSON output.

Layout follows SEED.md: one sample per COLUMN, x is (D_in, B), w_l is (n_l, n_{l-1}).
Every script prints exactly one JSON line on stdout; anything else goes to stderr.
"""
import argparse
import ctypes
import json
import os
import sys


def parse_args(description, extra=None):
    """The options every reference shares; extra(parser) adds a script's own."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--model", default="1000-100-10", help="layer widths, input to output (seed: 1000-100-10)")
    p.add_argument("--batch", type=int, default=64, help="samples per step (seed: 64, full batch)")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--lr", type=float, default=1e-5)
    p.add_argument("--precision", choices=["float64", "float32"], default="float64")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default=None, help="row name in the JSON output")
    if extra:
        extra(p)
    args = p.parse_args()
    args.sizes = [int(s) for s in args.model.split("-")]
    if len(args.sizes) < 2 or min(args.sizes) <= 0:
        p.error("--model needs two or more positive widths, e.g. 1000-100-10")
    return args


def default_name(prefix, args):
    name = prefix
    if args.model != "1000-100-10" or args.batch != 64:
        name += f" {args.model} b{args.batch}"
    return name + ("" if args.precision == "float64" else " " + args.precision)


def seed_arrays(args):
    """x (D_in, B), y (D_out, B), weights (n_l, n_{l-1}): all N(0, 1), as in the seed."""
    import numpy as np
    rng = np.random.default_rng(args.seed)
    dtype = np.float64 if args.precision == "float64" else np.float32
    x = rng.standard_normal((args.sizes[0], args.batch)).astype(dtype)
    y = rng.standard_normal((args.sizes[-1], args.batch)).astype(dtype)
    ws = [rng.standard_normal((args.sizes[l + 1], args.sizes[l])).astype(dtype)
          for l in range(len(args.sizes) - 1)]
    return x, y, ws


def blas_info():
    """The OpenBLAS kernel actually running in this process, via OpenBLAS's own C API.

    threadpoolctl is not installed with Debian's numpy, so ask the loaded library directly.
    """
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line and line.rstrip().endswith(".so")
                     or "libopenblas" in line}
        for path in sorted(paths):
            lib = ctypes.CDLL(path)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            lib.openblas_get_config.restype = ctypes.c_char_p
            return {"blas": os.path.basename(path),
                    "blas_core": lib.openblas_get_corename().decode(),
                    "blas_config": lib.openblas_get_config().decode().strip(),
                    "blas_threads": lib.openblas_get_num_threads()}
    except (OSError, AttributeError) as e:
        return {"blas": f"unknown ({e})"}
    return {"blas": "not openblas"}


def emit(name, args, seconds, final_loss, **extra):
    record = {"name": name, "steps": args.steps, "seconds": seconds,
              "steps_per_second": args.steps / seconds if seconds > 0 else None,
              "final_loss": float(final_loss), "model": args.model, "batch": args.batch,
              "precision": args.precision}
    record.update(extra)
    print(json.dumps(record), flush=True)


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)
