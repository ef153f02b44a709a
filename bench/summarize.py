#!/usr/bin/env python3
"""Aggregation for bench/run.sh (standard library only).

  summarize.py record ROW JOB REP EXIT STDOUT STDERR [--wall-seconds S] [--peak-rss-mb MB,MB...] [--samples N]
                                                      append one run's result to stdout as a JSON line
  summarize.py report RESULTS.jsonl --machine FILE --command CMD [--micro REPORT.md ...] [--section FILE.md ...] [--out FILE]
                                                      print the table of medians; write the markdown

A run's result is the LAST JSON object on its stdout that has "steps_per_second" (the python
references print one; `trainer train --json` ends with {"event": "completed", ...}). A run that
exits non-zero or prints no such line is a failure, reported with the first line of its stderr.
Ratios are steps/s divided by the numpy loop's steps/s for the same job, measured in the same run.
Workload F ("fashion": Fashion-MNIST, issue 16) has a table of its own: samples/s (the training
samples run.sh records, 60000 x epochs, over the training seconds), test accuracy and test loss,
and ratios over the PyTorch float32 row of the same run.
Every run's line also carries the CPU model it ran on, its wall time (the whole command, start-up
included) and, for rows on a cluster of their own, each silo's peak RSS when the job ended.
"""
import argparse
import json
import statistics
import sys

FASHION_WHAT = ("`--data idx:/usr/share/datasets/fashion-mnist --model 784-256-128-10 --activation relu --bias --loss ce "
                "--optimizer adam --lr 1e-3 --batch 128 --epochs E` (the SGD row: `--optimizer sgd --lr 0.05`; the b1024 rows, the compute-bound variant: "
                "`--batch 1024 --epochs E2`, the one-core row under `taskset -c 0`); "
                "samples/s = 60000 x epochs / training seconds; test accuracy on the 10,000 t10k images.")
BASELINE = {"seed": "numpy loop", "job3": "numpy loop job3 float64", "fashion": "torch fashion float32"}

# (label, kind, row, other row, target), checked when the rows exist. Kinds:
#   ratio  row's steps/s (samples/s where both rows record them) over the other row's (target ">= x");
#   cost   row's time per step over the other row's, minus 1, in % (target "<= x%");
#   wall   row's median wall time; rss  row's median peak RSS per silo (no other row);
#   accuracy  row's median test accuracy in % (no other row; target ">= x%").
# Targets that are not ">= x" or "<= x%" ("(info)", "(reference)") are shown without a verdict.
TARGETS = [
    ("seed: embedded 2 workers / numpy", "ratio", "trainer embedded W=2", "numpy loop", ">= 1.25"),
    ("seed: 2 silos / numpy", "ratio", "trainer 2 silos W=2", "numpy loop", ">= 1.0"),
    ("seed: 2 silos / torch DDP gloo 2 processes", "ratio", "trainer 2 silos W=2", "torch DDP gloo 2 processes", ">= 3"),
    ("seed: 2 silos, a fresh cluster's first job (the default; first-call JIT and warm-up included) / numpy", "ratio", "trainer 2 silos W=2 first job", "numpy loop", "(info)"),
    ("seed: embedded 2 workers, first layer split / numpy", "ratio", "trainer embedded W=2 split", "numpy loop", ">= 1.25"),
    ("seed: 2 silos, first layer split / numpy", "ratio", "trainer 2 silos W=2 split", "numpy loop", ">= 1.0"),
    ("seed: 2 silos, first layer split / torch DDP gloo 2 processes", "ratio", "trainer 2 silos W=2 split", "torch DDP gloo 2 processes", ">= 3"),
    # The CLI's default path (no --parallel: data parallel, SGD applied by the parameter server).
    ("seed: embedded 2 workers, the CLI's default (data, SGD on the parameter server) / numpy", "ratio", "trainer embedded W=2 default", "numpy loop", ">= 1.25"),
    ("seed: 2 silos, the CLI's default (data, SGD on the parameter server) / numpy", "ratio", "trainer 2 silos W=2 default", "numpy loop", ">= 0.9"),
    ("seed: 2 silos float32 / numpy", "ratio", "trainer 2 silos W=2 float32", "numpy loop", "(info)"),
    # Against numpy without the allocator's per-step mmap/munmap of its 800 KB temporaries (run.sh says why).
    ("seed: embedded 2 workers, the CLI's default / numpy with malloc keeping memory", "ratio", "trainer embedded W=2 default", "numpy loop, malloc keeps memory", "(info)"),
    ("seed: embedded 2 workers, first layer split / numpy with malloc keeping memory", "ratio", "trainer embedded W=2 split", "numpy loop, malloc keeps memory", "(info)"),
    ("seed: 2 silos, the CLI's default / numpy with malloc keeping memory", "ratio", "trainer 2 silos W=2 default", "numpy loop, malloc keeps memory", "(info)"),
    ("seed: 2 silos, first layer split / numpy with malloc keeping memory", "ratio", "trainer 2 silos W=2 split", "numpy loop, malloc keeps memory", "(info)"),
    ("seed: embedded 2 workers, managed GEMM / numpy", "ratio", "trainer embedded W=2 managed GEMM", "numpy loop", ">= 1.25"),
    ("seed: autograd engine / hand engine (embedded W=2; cost <= 1.5x means >= 0.67)", "ratio", "trainer embedded W=2 autograd", "trainer embedded W=2", ">= 0.67"),
    ("seed: autograd / hand, managed GEMM", "ratio", "trainer embedded W=2 autograd managed GEMM", "trainer embedded W=2 managed GEMM", ">= 0.67"),
    ("job3: 2 silos W=2 / embedded W=1", "ratio", "trainer job3 2 silos W=2", "trainer job3 W=1", ">= 1.8"),
    ("job3: embedded W=2 / embedded W=1", "ratio", "trainer job3 W=2", "trainer job3 W=1", "(info)"),
    ("job3: torch DDP 2 processes / torch 1 process (DDP's scaling)", "ratio", "torch DDP job3 float64", "torch 1 process job3 float64", "(reference)"),
    ("job3: float32 / float64 (embedded W=2)", "ratio", "trainer job3 W=2 float32", "trainer job3 W=2", ">= 1.7"),
    ("job3: float32 / float64 (2 silos W=2)", "ratio", "trainer job3 2 silos W=2 float32", "trainer job3 2 silos W=2", "(info)"),
    # Adam on the parameter server: its step reads and writes two moments per parameter.
    ("job3: Adam's step time over SGD's (embedded W=2), cost", "cost", "trainer job3 W=2 adam", "trainer job3 W=2", "<= 10%"),
    ("50M parameters: 2 silos W=2 / embedded W=2 (the first step includes loading the parameters; drawn ones each worker draws)", "ratio", "trainer 50M params 2 silos W=2", "trainer 50M params embedded W=2", "(info)"),
    ("50M parameters, Adam, 2 silos W=2: wall time", "wall", "trainer 50M params 2 silos W=2 adam", None, "(info)"),
    ("50M parameters, Adam, 2 silos W=2: peak RSS per silo", "rss", "trainer 50M params 2 silos W=2 adam", None, "(info)"),
    ("50M parameters, SGD, 2 silos W=2: peak RSS per silo", "rss", "trainer 50M params 2 silos W=2", None, "(info)"),
    ("50M parameters, 2 silos W=2: Adam's step time over SGD's, cost", "cost", "trainer 50M params 2 silos W=2 adam", "trainer 50M params 2 silos W=2", "(info)"),
    ("job3: numpy float32 / float64", "ratio", "numpy loop job3 float32", "numpy loop job3 float64", "(reference)"),
    # Workload F (issue 16): Fashion-MNIST, 784-256-128-10 relu, Adam 1e-3, batch 128, against PyTorch float32.
    ("F: test accuracy, embedded W=2 (float64)", "accuracy", "trainer fashion W=2", None, ">= 88.5%"),
    ("F: test accuracy, embedded W=2 float32", "accuracy", "trainer fashion W=2 float32", None, "(info)"),
    ("F: test accuracy, 2 silos W=2", "accuracy", "trainer fashion 2 silos W=2", None, "(info)"),
    ("F: test accuracy, PyTorch float32", "accuracy", "torch fashion float32", None, "(reference)"),
    ("F: embedded W=2 float64 / PyTorch float32, samples/s", "ratio", "trainer fashion W=2", "torch fashion float32", ">= 1.5"),
    ("F: embedded W=2 float32 / PyTorch float32, samples/s", "ratio", "trainer fashion W=2 float32", "torch fashion float32", ">= 1.5"),
    ("F: 2 silos W=2 / PyTorch float32, samples/s", "ratio", "trainer fashion 2 silos W=2", "torch fashion float32", ">= 1.0"),
    ("F: 2 silos W=2 float32 / PyTorch float32, samples/s", "ratio", "trainer fashion 2 silos W=2 float32", "torch fashion float32", ">= 1.0"),
    ("F: test accuracy, 2 silos W=2 float32", "accuracy", "trainer fashion 2 silos W=2 float32", None, "(info)"),
    ("F: embedded W=2 / W=1 (float64)", "ratio", "trainer fashion W=2", "trainer fashion W=1", "(info)"),
    # The compute-bound variant: a second worker on a core of its own against one worker on one core.
    ("F batch 1024: embedded W=2 / W=1 on one core (taskset -c 0), samples/s", "ratio", "trainer fashion b1024 W=2", "trainer fashion b1024 W=1 one core", ">= 1.7"),
    ("F batch 1024: embedded W=2 / W=1 (both on the machine's 2 cores), samples/s", "ratio", "trainer fashion b1024 W=2", "trainer fashion b1024 W=1", "(info)"),
    ("F: Adam's time per step over SGD's (embedded W=2), cost", "cost", "trainer fashion W=2", "trainer fashion W=2 sgd", "<= 10%"),
    ("F: PyTorch float64 / float32", "ratio", "torch fashion float64", "torch fashion float32", "(reference)"),
    # PyTorch on 1 thread, where its 2 threads spin against OpenBLAS's (bench/notes.md): the fairer peer.
    ("F: PyTorch float32, 1 thread / 2 threads", "ratio", "torch fashion float32 1 thread", "torch fashion float32", "(reference)"),
    ("F: embedded W=2 float64 / PyTorch float32 1 thread, samples/s", "ratio", "trainer fashion W=2", "torch fashion float32 1 thread", "(info)"),
    ("F: embedded W=2 float32 / PyTorch float32 1 thread, samples/s", "ratio", "trainer fashion W=2 float32", "torch fashion float32 1 thread", "(info)"),
    ("F: 2 silos W=2 / PyTorch float32 1 thread, samples/s", "ratio", "trainer fashion 2 silos W=2", "torch fashion float32 1 thread", "(info)"),
]


def record(a):
    result, failure = None, None
    try:
        with open(a.stdout, errors="replace") as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    try:
                        obj = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(obj, dict) and "steps_per_second" in obj:
                        result = obj
    except OSError as e:
        failure = str(e)
    cpu = cpu_model()
    if a.exit != 0 or result is None:
        failure = failure or first_error_line(a.stderr) or first_error_line(a.stdout) or f"exit code {a.exit}, no result line"
        if a.exit == 124:
            failure = "timed out; " + failure
        result = None
    rss = [float(v) for v in a.peak_rss_mb.split(",") if v] if a.peak_rss_mb else None
    line = {"row": a.row, "job": a.job, "rep": a.rep, "exit": a.exit, "result": result, "failed": failure,
            "cpu": cpu, "wall_seconds": a.wall_seconds, "peak_rss_mb": rss}
    if a.samples:
        line["samples"] = a.samples
    print(json.dumps(line))


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def first_error_line(path):
    try:
        with open(path, errors="replace") as f:
            lines = [l.strip() for l in f if l.strip()]
    except OSError:
        return None
    for l in lines:   # prefer a line that looks like the error over log noise
        if any(w in l.lower() for w in ("error", "exception", "not found", "no such", "failed")):
            return l[:200]
    return lines[0][:200] if lines else None


def load(path):
    rows = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                rows.setdefault(r["row"], {"job": r["job"], "runs": []})["runs"].append(r)
    return rows


def medians(rows):
    out = {}
    for name, row in rows.items():
        ok = [r["result"] for r in row["runs"] if r["result"]]
        failed = [r["failed"] for r in row["runs"] if not r["result"]]
        m = {"job": row["job"], "reps": len(row["runs"]), "ok": len(ok), "failed": failed[0] if failed else None}
        walls = [r["wall_seconds"] for r in row["runs"] if r["result"] and r.get("wall_seconds") is not None]
        if walls:
            m["wall_seconds"] = statistics.median(walls)
        # Peak RSS per silo (index i is silo-i), median over the runs that read it.
        rss = [r["peak_rss_mb"] for r in row["runs"] if r["result"] and r.get("peak_rss_mb")]
        if rss:
            m["peak_rss_mb"] = [statistics.median(run[i] for run in rss if len(run) > i) for i in range(max(map(len, rss)))]
        if ok:
            m["seconds"] = statistics.median(r["seconds"] for r in ok)
            m["steps_per_second"] = statistics.median(r["steps_per_second"] for r in ok)
            m["steps"] = ok[0]["steps"]
            m["final_loss"] = statistics.median(r["final_loss"] for r in ok)
            samples = [r["samples"] / r["result"]["seconds"] for r in row["runs"] if r["result"] and r.get("samples")]
            if samples:
                m["samples"] = next(r["samples"] for r in row["runs"] if r.get("samples"))
                m["samples_per_second"] = statistics.median(samples)
            for key in ("test_accuracy", "test_loss"):
                values = [r[key] for r in ok if r.get(key) is not None]
                if values:
                    m[key] = statistics.median(values)
                    m[key + "_range"] = (min(values), max(values))
            m["note"] = "; ".join(filter(None, [note_of(ok[0]), rss_text(m) if "peak_rss_mb" in m else ""]))
        out[name] = m
    return out


def note_of(r):
    keys = [("optimizer", "{}"), ("blas_core", "OpenBLAS kernel {}"), ("backward", "backward {}"), ("threads", "{} threads"),
            ("threads_per_rank", "{} threads/rank")]
    return ", ".join(fmt.format(r[k]) for k, fmt in keys if k in r)


def rss_text(m):
    return "peak RSS " + ", ".join(f"silo-{i} {mb:.0f} MB" for i, mb in enumerate(m["peak_rss_mb"]))


def ratio(med, num, den):
    a, b = med.get(num, {}), med.get(den, {})
    if a.get("samples_per_second") and b.get("samples_per_second"):
        return a["samples_per_second"] / b["samples_per_second"]
    if a.get("steps_per_second") and b.get("steps_per_second"):
        return a["steps_per_second"] / b["steps_per_second"]
    return None


def table(med):
    head = "| row | job | steps | median s | median wall s | median steps/s | vs numpy (same job) | final loss | runs ok | note |"
    lines = [head, "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for name, m in med.items():
        if m["job"] == "fashion":
            continue
        if "steps_per_second" in m:
            r = ratio(med, name, BASELINE.get(m["job"], ""))
            wall = f"{m['wall_seconds']:.2f}" if "wall_seconds" in m else ""
            lines.append(f"| {name} | {m['job']} | {m['steps']} | {m['seconds']:.3f} | {wall} | {m['steps_per_second']:.2f} | "
                         f"{'%.2fx' % r if r else 'n/a'} | {m['final_loss']:.6g} | {m['ok']}/{m['reps']} | "
                         f"{m['note']}{'; some runs failed: ' + m['failed'] if m['failed'] else ''} |")
        else:
            lines.append(f"| {name} | {m['job']} | | | | | | | 0/{m['reps']} | failed: {m['failed']} |")
    return lines if len(lines) > 2 else []   # a run of workload F alone has no rows here


def fashion_table(med):
    """Workload F's rows: samples/s and test accuracy, ratios over PyTorch float32 of the same run."""
    head = ("| row | epochs | steps | median s | median wall s | median samples/s | vs PyTorch float32 | "
            "test accuracy (median; min-max) | test loss | runs ok | note |")
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for name, m in med.items():
        if m["job"] != "fashion":
            continue
        if "steps_per_second" not in m:
            lines.append(f"| {name} | | | | | | | | | 0/{m['reps']} | failed: {m['failed']} |")
            continue
        r = ratio(med, name, BASELINE["fashion"])
        epochs = f"{m['samples'] / 60000:g}" if "samples" in m else ""
        rate = f"{m['samples_per_second']:.0f}" if "samples_per_second" in m else ""
        wall = f"{m['wall_seconds']:.2f}" if "wall_seconds" in m else ""
        acc = ""
        if "test_accuracy" in m:
            lo, hi = m["test_accuracy_range"]
            acc = f"{100 * m['test_accuracy']:.2f}%" + ("" if lo == hi else f"; {100 * lo:.2f}-{100 * hi:.2f}%")
        loss = f"{m['test_loss']:.4f}" if "test_loss" in m else ""
        lines.append(f"| {name} | {epochs} | {m['steps']} | {m['seconds']:.2f} | {wall} | {rate} | "
                     f"{'%.2fx' % r if r else 'n/a'} | {acc} | {loss} | {m['ok']}/{m['reps']} | "
                     f"{m['note']}{'; some runs failed: ' + m['failed'] if m['failed'] else ''} |")
    return lines if len(lines) > 2 else []


def measure(med, kind, row, other):
    """(value, shown) of one target's measure, or (None, "not measured")."""
    m = med.get(row, {})
    if kind == "ratio":
        r = ratio(med, row, other)
        return (r, f"{r:.2f}x") if r else (None, "not measured")
    if kind == "cost":
        r = ratio(med, other, row)   # time per step is 1 / steps per second
        return (100 * (r - 1), f"{100 * (r - 1):+.1f}%") if r else (None, "not measured")
    if kind == "wall" and "wall_seconds" in m and "steps_per_second" in m:
        return m["wall_seconds"], f"{m['wall_seconds']:.2f} s ({m['seconds']:.2f} s training)"
    if kind == "accuracy" and "test_accuracy" in m:
        return 100 * m["test_accuracy"], f"{100 * m['test_accuracy']:.2f}%"
    if kind == "rss" and "peak_rss_mb" in m:
        return max(m["peak_rss_mb"]), rss_text(m).removeprefix("peak RSS ")
    return None, "not measured"


def verdict(value, target):
    """pass/FAIL for ">= x" and "<= x%" targets, nothing for the others."""
    if target[:2] not in (">=", "<="):
        return ""
    if value is None:
        return "not measured"
    bound = float(target[2:].strip().rstrip("%"))
    return "pass" if (value >= bound if target.startswith(">=") else value <= bound) else "FAIL"


def targets(med, rows):
    lines = ["| measure | value | target | met | repetition by repetition |", "|---|---:|---|---|---|"]
    for label, kind, row, other, target in TARGETS:
        if row not in med and other not in med:
            continue   # a job the run skipped (BENCH_*_STEPS=0)
        value, shown = measure(med, kind, row, other)
        lines.append(f"| {label} | {shown} | {target} | {verdict(value, target)} | {by_repetition(rows, kind, row, other)} |")
    return lines


def by_repetition(rows, kind, num, den):
    """A ratio or cost taken within each repetition (the two rows' runs of the same rep), in rep order:
    the value above is taken between the rows' medians, which on a VM whose speed drifts can pair a
    fast run of one row with a slow run of the other; these show how far the pairs spread."""
    if kind not in ("ratio", "cost") or num not in rows or den not in rows:
        return ""
    def seconds(name):
        return {r["rep"]: r["result"]["seconds"] for r in rows[name]["runs"] if r["result"] and r["result"].get("seconds")}
    a, b = seconds(num), seconds(den)
    shown = []
    for rep in sorted(set(a) & set(b)):
        if kind == "ratio":
            # Both rows' work per run is fixed (samples, or steps), but may differ between them: time per unit.
            ua = rows[num]["runs"][0].get("samples") or rows[num]["runs"][0]["result"]["steps"]
            ub = rows[den]["runs"][0].get("samples") or rows[den]["runs"][0]["result"]["steps"]
            shown.append(f"{(ua / a[rep]) / (ub / b[rep]):.2f}x")
        else:
            shown.append(f"{100 * (a[rep] / b[rep] - 1):+.1f}%")
    return ", ".join(shown)


def report(a):
    rows = load(a.results)
    med = medians(rows)
    main, fashion = table(med), fashion_table(med)
    main_md = ["", "## Results (medians)", ""] + main if main else []
    fashion_md = ["", "## Workload F: Fashion-MNIST (medians)", "", FASHION_WHAT, ""] + fashion if fashion else []
    body = main + ([""] + fashion if main and fashion else fashion) + [""] + targets(med, rows)
    print("\n".join(body))
    if not a.out:
        return
    with open(a.machine) as f:
        machine = [l.rstrip("\n") for l in f if l.strip()]
    md = ["# Benchmarks", "",
          "Written by `bench/run.sh` (medians over the repetitions; ratios are taken between rows of the same run).", "",
          "## Machine", ""] + [f"- {l}" for l in machine] + [
          "", "## Command", "", "```", a.command, "```"] + main_md + fashion_md + ["", "## Targets", ""] + targets(med, rows)
    for path in a.section or []:   # sections written by other benches of the run (e.g. status_latency.py), as they are
        try:
            with open(path) as f:
                md += ["", f.read().strip()]
        except OSError:
            continue
    for path in a.micro or []:
        try:
            with open(path) as f:
                micro = f.read().strip()
        except OSError:
            continue
        md += ["", f"## Micro-benchmarks: {path.rsplit('/', 1)[-1].removesuffix('.md')}", "", micro]
    if a.notes:
        with open(a.notes) as f:
            md += ["", f.read().strip()]
    with open(a.out, "w") as f:
        f.write("\n".join(md) + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    for name in ("row", "job"):
        r.add_argument(name)
    r.add_argument("rep", type=int)
    r.add_argument("exit", type=int)
    r.add_argument("stdout")
    r.add_argument("stderr")
    r.add_argument("--wall-seconds", type=float, help="the whole command's elapsed time")
    r.add_argument("--peak-rss-mb", help="each silo's peak RSS when the run ended, comma-separated, silo-0 first")
    r.add_argument("--samples", type=int, help="training samples the run went through (samples/s = this / its seconds)")
    s = sub.add_parser("report")
    s.add_argument("results")
    s.add_argument("--machine", required=True)
    s.add_argument("--command", required=True)
    s.add_argument("--micro", nargs="*")
    s.add_argument("--section", nargs="*", help="markdown files appended as they are, before the micro-benchmarks")
    s.add_argument("--notes", help="markdown appended at the end (e.g. bench/NOTES.md)")
    s.add_argument("--out")
    a = p.parse_args()
    (record if a.cmd == "record" else report)(a)


if __name__ == "__main__":
    sys.exit(main())
