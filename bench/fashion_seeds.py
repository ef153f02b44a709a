#!/usr/bin/env python3
"""Workload F's test accuracy over several seeds: the trainer against PyTorch, in one run (issue 16).

  /usr/bin/python3 bench/fashion_seeds.py [--seeds 1-7] [--precision float32] [--out FILE.md]

One run's final test accuracy moves by about half a point with the seed (the initial weights and the
epochs' shuffles), so a single run cannot tell whether a trainer reaches a target such as 88.5%. This
runs the issue's workload F command (`--model 784-256-128-10 --activation relu --bias --loss ce
--optimizer adam --lr 1e-3 --batch 128 --epochs 10 --workers 2`) once per seed on an embedded silo,
and bench/references/torch_fashion.py (PyTorch 1.13, 1 thread: the peer that is not slowed by its
threads fighting OpenBLAS's) with the same seeds, interleaved, and reports each side's accuracies,
median and range. The two sides draw their initial weights and shuffles differently, so seed s is
not the same run on both: only the distributions compare. Speed is bench/run.sh's.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAINER = os.path.join(ROOT, "src", "Trainer.Client", "bin", "Release", "net10.0", "trainer.dll")
TORCH = os.path.join(ROOT, "bench", "references", "torch_fashion.py")
DATA = "/usr/share/datasets/fashion-mnist"
WORKLOAD = ["--model", "784-256-128-10", "--activation", "relu", "--bias", "--loss", "ce", "--optimizer", "adam",
            "--lr", "1e-3", "--batch", "128", "--epochs", "10"]


def seeds_of(text):
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def trainer_accuracy(seed, precision):
    args = ["dotnet", TRAINER, "train", "--data", f"idx:{DATA}", *WORKLOAD, "--workers", "2",
            "--precision", precision, "--seed", str(seed), "--json"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=1800, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited with {out.returncode}: {out.stderr.strip()}")
    completed = [json.loads(line) for line in out.stdout.splitlines() if '"completed"' in line]
    return completed[-1]["test_accuracy"]


def torch_accuracy(seed, precision):
    args = [sys.executable, TORCH, "--data", DATA, "--threads", "1", "--precision", precision, "--seed", str(seed)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=1800, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited with {out.returncode}: {out.stderr.strip()}")
    return json.loads(out.stdout.strip().splitlines()[-1])["test_accuracy"]


def cpu_model():
    with open("/proc/cpuinfo") as info:
        return next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "unknown")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="1-7", help="seeds, as FIRST-LAST")
    p.add_argument("--precision", choices=["float32", "float64"], default="float32")
    p.add_argument("--out", default=None, help="markdown file to write")
    args = p.parse_args()
    if not os.path.exists(TRAINER):
        subprocess.run(["dotnet", "build", "-c", "Release", "src/Trainer.Client"], check=True, cwd=ROOT, capture_output=True)
    rows = {"trainer embedded W=2": [], "PyTorch 1.13, 1 thread": []}
    for seed in seeds_of(args.seeds):
        # Interleaved, seed by seed, so a long run's drift in the machine touches both sides alike.
        rows["trainer embedded W=2"].append(trainer_accuracy(seed, args.precision))
        rows["PyTorch 1.13, 1 thread"].append(torch_accuracy(seed, args.precision))
        print(f"seed {seed}: " + ", ".join(f"{name} {values[-1]:.2%}" for name, values in rows.items()), file=sys.stderr)
    lines = [f"Workload F, {args.precision}, 10 epochs, test accuracy by seed ({args.seeds}); CPU: {cpu_model()}.",
             "`/usr/bin/python3 bench/fashion_seeds.py" + (f" --seeds {args.seeds}" if args.seeds != "1-7" else "")
             + (f" --precision {args.precision}" if args.precision != "float32" else "") + "`", "",
             "| run | median | min | max | every seed |", "|---|---:|---:|---:|---|"]
    for name, values in rows.items():
        lines.append(f"| {name} | {statistics.median(values):.2%} | {min(values):.2%} | {max(values):.2%} | "
                     + " ".join(f"{v:.2%}" for v in values) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
